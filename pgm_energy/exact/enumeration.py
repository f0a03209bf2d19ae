"""The enumeration engine: Gray-code enumeration of the free units, with closed-form sums.

Free units that are conditionally independent given the other free units (an independent
set ``A`` of the heaviest weight found, :func:`~pgm_energy.graph.independent_split`) are
summed in closed form (``softplus`` in the binary form, a log-sum-exp over each categorical
site); the rest (``S``) are enumerated by the Gray-code kernel in ``_exact.pyx``, in pieces that run on threads and combine exactly, in batches of
about 0.1 s so that Ctrl-C is seen between them (:mod:`pgm_energy._run`). The energy of
users' terms that do not compile (the generic path) is tabulated over the states of the free
units they read, a mixed-radix code the kernel keeps as it moves units.

Its cost, known before any work: ``2^log2_states`` enumerated states (after the closed-form
sums), each costing ``1 + m + |A|`` unit operations (:mod:`pgm_energy.exact.cost`).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy.special import expit

from .._checks import n_threads as check_n_threads
from .._kernels import _exact
from .._run import timed_chunks
from ..distributed import n_pieces_for
from ..graph import independent_split, site_log_sum_exp, site_softmax, symmetric_csr
from .plan import Plan

__all__ = ["Enumeration"]

# Pieces for threads hold at least 2^_MIN_PIECE_BITS states, and there are up to
# 2^_THREAD_PIECE_BITS of them; a model whose pieces would then cost more than _PIECE_WORK
# unit operations (about 0.05 s) gets more, smaller pieces, so that Ctrl-C is seen between
# them, up to 2^_MAX_PIECE_BITS pieces. The split depends on the model only.
_MIN_PIECE_BITS = 14
_THREAD_PIECE_BITS = 6
_PIECE_WORK = 2**24
_MAX_PIECE_BITS = 20
_BATCH_CHUNK = 256
#: Seconds per unit operation of the cost model (each 2-5 ns here), to size executor pieces.
_SECONDS_PER_OPERATION = 3e-9
_MAX_TASKS = 10_000        # executor pieces of one enumeration, at most
_CODE_CHUNK = 1 << 14     # generic terms' energy is evaluated this many states at a time


class _KernelArrays(NamedTuple):
    ss: tuple                  # CSR (ptr, idx, w, eid) of the couplings within S
    sa: tuple                  # CSR of the couplings from S (rows) to A (columns)
    sa_first: np.ndarray       # per S row, its first A column when they run contiguous, or -1
    free_edges: np.ndarray     # graph edges with both ends free
    gen_step: np.ndarray       # per S slot, its step of the generic-term code


class Enumeration(Plan):
    """Enumeration of the free units of a graph with some groups clamped (see module
    docstring); parameters as for :class:`~pgm_energy.exact.plan.Plan`.

    Free units split into ``A`` (summed in closed form) and ``S`` (enumerated), binary slots
    first, then categorical sites (each a contiguous run of slots). Built once per call, it
    refuses nothing: :mod:`~pgm_energy.exact.cost` reads :attr:`log2_states` and
    :attr:`n_generic_codes` first.
    """

    def __init__(self, graph, clamped_groups, beta, n_threads):
        super().__init__(graph, clamped_groups, beta, n_threads)
        clamped = self.clamped
        free = np.flatnonzero(~clamped)
        free_edge = ~clamped[graph.edges[:, 0]] & ~clamped[graph.edges[:, 1]]
        # Units read by generic terms are enumerated; their energy is a table over their
        # states (a mixed-radix code the kernel keeps as it moves units).
        generic_free = graph.generic & ~clamped
        self.generic_sites = np.unique(graph.site[generic_free])
        self.generic_clamped = bool(np.any(graph.generic & clamped))
        S, A = independent_split(free[~graph.generic[free]], graph.edges[free_edge],
                                  site=graph.site)
        S = np.union1d(S, np.flatnonzero(generic_free)).astype(np.int64)
        cat = graph.categorical
        self.S = np.concatenate([S[~cat[S]], S[cat[S]]])
        self.A = np.concatenate([A[~cat[A]], A[cat[A]]]).astype(np.int64)
        self.s_site_ptr = _site_ptr(graph, self.S)
        self.a_site_ptr = _site_ptr(graph, self.A)
        self.m = len(self.S)
        self.m_b = int(np.sum(~cat[self.S]))
        radix = graph.site_size[self.generic_sites] + (graph.site_size[self.generic_sites] == 1)
        self.generic_radix = radix
        #: Entries of the generic terms' energy table (states of the free units they read).
        self.n_generic_codes = float(np.prod(radix.astype(float)))
        #: log2 of the number of enumerated states (after the closed-form sums).
        self.log2_states = self.m_b + float(np.sum(np.log2(np.diff(self.s_site_ptr))))
        #: log2 of the estimated work: ``1 + m + |A|`` unit operations per state.
        self.log2_operations = self.log2_states + float(np.log2(1 + self.m + len(self.A)))
        # Pieces (module constants): the top binary slots, then (when there are too few
        # binary slots) the last categorical sites, fixed by the piece number.
        for_threads = np.clip(np.floor(self.log2_states) - _MIN_PIECE_BITS, 0,
                              _THREAD_PIECE_BITS)
        for_interrupts = np.ceil(self.log2_operations - np.log2(_PIECE_WORK))
        wanted = int(min(max(for_threads, for_interrupts), _MAX_PIECE_BITS,
                         np.floor(self.log2_states)))
        self.n_prefix = min(wanted, self.m_b)
        self.n_fixed_sites = 0
        while self.n_pieces < 1 << wanted and self.n_fixed_sites < len(self.s_site_ptr) - 1:
            self.n_fixed_sites += 1
        self.generic_place = np.concatenate(
            [[1], np.cumprod(self.generic_radix)[:-1]]).astype(np.int64)

    @property
    def n_pieces(self) -> int:
        """``2^n_prefix`` times the sizes of the ``n_fixed_sites`` last categorical sites."""
        sizes = np.diff(self.s_site_ptr)[len(self.s_site_ptr) - 1 - self.n_fixed_sites:]
        return (1 << self.n_prefix) * int(np.prod(sizes, dtype=np.int64))

    @functools.cached_property
    def _kernel(self) -> _KernelArrays:
        """The kernel's arrays, built on first use (after the cost model accepted the plan)."""
        graph, n, c = self.graph, self.n_units, self.form.coupling
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        pos = np.full(n, -1, np.int64)
        pos[self.S] = np.arange(self.m)
        pos[self.A] = np.arange(len(self.A))
        in_s = np.zeros(n, bool)
        in_s[self.S] = True
        in_a = np.zeros(n, bool)
        in_a[self.A] = True

        ss = in_s[ei] & in_s[ej]
        ss_csr = _csr(self.m, pos[graph.edges[ss]], c, np.flatnonzero(ss))
        # S-A edges: a symmetric CSR over S (0..m-1) then A (m..), of which the S rows.
        sa = (in_s[ei] & in_a[ej]) | (in_a[ei] & in_s[ej])
        local = pos[graph.edges[sa]] + np.where(in_a[graph.edges[sa]], self.m, 0)
        sa_csr = _csr(self.m + len(self.A), local, c, np.flatnonzero(sa), rows=self.m,
                      col_offset=self.m)
        ptr, idx = sa_csr[0], sa_csr[1]
        first = np.full(self.m, -1, np.int32)
        for r in range(self.m):
            cols_r = idx[ptr[r]:ptr[r + 1]]
            if len(cols_r) and np.all(np.diff(cols_r) == 1):
                first[r] = cols_r[0]
        # Mixed-radix code of the generic-term units: site r with value v adds v * place_r.
        site_place = np.zeros(graph.n_sites, np.int64)
        site_place[self.generic_sites] = self.generic_place
        value = np.where(graph.categorical, np.arange(n) - graph.site_start[graph.site], 1)
        gen_step = np.ascontiguousarray((value * site_place[graph.site])[self.S], np.int64)
        return _KernelArrays(ss_csr, sa_csr, first, np.flatnonzero(ss | sa), gen_step)

    # -- generic terms ----------------------------------------------------------------------
    def _generic_rows(self, x_row, codes):
        """Native flat states: clamped units from ``x_row``, free generic units from their
        digits in ``codes`` (mixed radix), other units 0 (generic terms do not read them)."""
        graph = self.graph
        rows = np.repeat(graph.from_bits(x_row)[None] * self.clamped,
                         len(codes), axis=0)
        digits = (codes[:, None] // self.generic_place) % self.generic_radix
        for r, site in enumerate(self.generic_sites):
            lo, size = graph.site_start[site], graph.site_size[site]
            if size > 1:
                rows[:, lo:lo + size] = digits[:, r, None] == np.arange(size)
            else:
                rows[:, lo] = graph.low[lo] + graph.scale[lo] * digits[:, r]
        return rows

    def _chunks(self):
        n_codes = int(np.prod(self.generic_radix))
        for lo in range(0, n_codes, _CODE_CHUNK):
            yield np.arange(lo, min(lo + _CODE_CHUNK, n_codes), dtype=np.int64)

    def generic_table(self, x_row) -> np.ndarray:
        """``-beta E_generic`` for each code of the free generic units (empty: no such terms)."""
        if not self.graph.generic_terms:
            return np.zeros(0)
        return np.concatenate([
            -self.beta * self.graph.generic_energy(self._generic_rows(x_row, codes))
            for codes in self._chunks()])

    def _generic_grads(self, x_row, code_weights) -> dict:
        """``sum_c P(c) dE/dtheta`` of the generic terms' parameters."""
        out = {}
        for codes in self._chunks():
            state = self.graph.decode(self._generic_rows(x_row, codes))
            for term in self.graph.generic_terms:
                for name, grad in term.energy_grad(state).items():
                    part = np.tensordot(code_weights[codes], grad, axes=1)
                    out[name] = out[name] + part if name in out else part
        return out

    # -- sums -----------------------------------------------------------------------------
    def log_sum(self, x) -> np.ndarray:
        out = np.empty(len(x))
        shared = None if self.generic_clamped or not len(x) else self.generic_table(x[0])
        for lo in range(0, len(x), _BATCH_CHUNK):
            fields, const = self.conditioned(x[lo:lo + _BATCH_CHUNK])
            closed = self._closed_log_sum(fields)
            for b in range(len(fields)):
                table = self.generic_table(x[lo + b]) if shared is None else shared
                if self.m:
                    out[lo + b] = const[b] + self._enumerate(fields[b], table)[0]
                else:
                    out[lo + b] = const[b] + closed[b] + (table[0] if len(table) else 0.0)
        return out

    def _enumerate(self, fields, table, moments=False, shift=0.0, maximize=False):
        """``(log sum,)`` over the enumerated states, or with ``moments`` the sums
        ``(unit_acc, edge_acc, code_acc)`` of ``enumerate_pieces``, over all pieces, or with
        ``maximize`` ``(max lw, x_S)``: the largest log weight (analytic slots maximised) and
        the state of ``S`` that first reaches it (the first piece of those that do).

        The kernel runs batches of pieces of about 0.1 s (:func:`~pgm_energy._run.timed_chunks`:
        Ctrl-C is seen between batches); the pieces' results are combined in piece order,
        whatever the batches, so the answer does not depend on them."""
        kernel = self._kernel
        args = (np.ascontiguousarray(fields[self.S]), *kernel.ss,
                np.ascontiguousarray(fields[self.A]), *kernel.sa, kernel.sa_first,
                kernel.gen_step,
                table, self.s_site_ptr, self.a_site_ptr, self.graph.n_edges, self.n_prefix)
        n_pieces = self.n_pieces
        n_tasks = n_pieces_for(2.0 ** self.log2_operations * _SECONDS_PER_OPERATION,
                               self.runner, min(n_pieces, _MAX_TASKS))
        if n_tasks:
            return self._enumerate_on_runner(args, n_tasks, moments, shift, maximize)
        options = dict(n_fixed_sites=self.n_fixed_sites, n_threads=self.n_threads)
        piece_work = 2.0 ** self.log2_operations / n_pieces
        first = self.n_threads * max(1, int(_PIECE_WORK / piece_work))
        if moments:
            sums = None
            for start, size in timed_chunks(n_pieces, first):
                accs = _exact.enumerate_pieces(*args, start, start + size, moments=True,
                                               shift=shift, **options)
                if sums is None:
                    sums, accs = [acc[0].copy() for acc in accs], [acc[1:] for acc in accs]
                for total, acc in zip(sums, accs):
                    for row in acc:                   # piece by piece, in piece order
                        total += row
            return tuple(sums)
        top = np.empty(n_pieces)
        total = np.empty((n_pieces, self.m), np.uint8) if maximize else np.empty(n_pieces)
        for start, size in timed_chunks(n_pieces, first):
            top[start:start + size], total[start:start + size] = _exact.enumerate_pieces(
                *args, start, start + size, maximize=maximize, **options)
        if maximize:
            best = int(np.argmax(top))
            return top[best], total[best]
        peak = top.max()
        return (peak + np.log(np.sum(total * np.exp(top - peak))),)

    def _enumerate_on_runner(self, args, n_tasks, moments, shift, maximize):
        """:meth:`_enumerate` with the pieces in ``n_tasks`` contiguous ranges on
        :attr:`runner` (:mod:`pgm_energy.distributed`): the same pieces, so the same
        ``(top, total)`` and best states per piece as here; moments are summed piece by piece
        within a range and range by range in order."""
        bounds = np.linspace(0, self.n_pieces, n_tasks + 1).round().astype(np.int64)
        ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        options = dict(n_fixed_sites=self.n_fixed_sites, moments=moments, shift=shift,
                       maximize=maximize, n_threads=self.runner.n_threads)
        parts = self.runner.map(_enumeration_task, (args, options), ranges,
                                what="exact enumeration")
        if moments:
            sums = [part.copy() for part in parts[0]]
            for part in parts[1:]:
                for total, acc in zip(sums, part):
                    total += acc
            return tuple(sums)
        top = np.concatenate([part[0] for part in parts])
        second = np.concatenate([part[1] for part in parts])
        if maximize:
            best = int(np.argmax(top))
            return top[best], second[best]
        peak = top.max()
        return (peak + np.log(np.sum(second * np.exp(top - peak))),)

    def max_state(self, x):
        """As :meth:`Plan.max_state`: the walk keeps the best state of ``S`` (the kernel's
        ``maximize``), then each analytic slot takes its best value given it, ``x_a = [f_a >
        0]`` or the first largest ``f_a`` of its site (ties: off, the lowest value)."""
        best = np.empty(len(x))
        bits = np.array(x, float)
        shared = None if self.generic_clamped or not len(x) else self.generic_table(x[0])
        fields, const = self.conditioned(x)
        adjacency = self.coupling_matrix()
        n_ab = self.a_site_ptr[0]
        for b in range(len(x)):
            table = self.generic_table(x[b]) if shared is None else shared
            top = table[0] if len(table) else 0.0
            if self.m:
                top, bits[b, self.S] = self._enumerate(fields[b], table, maximize=True)
            f_a = (fields[b] + adjacency @ (bits[b] * ~self.clamped))[self.A]
            bits[b, self.A] = np.concatenate(
                [f_a[:n_ab] > 0, _site_first_max(f_a[n_ab:], np.diff(self.a_site_ptr))])
            if not self.m:
                top = top + np.maximum(f_a[:n_ab], 0).sum() + f_a[n_ab:] @ bits[b, self.A[n_ab:]]
            best[b] = const[b] + top
        return best, bits

    def _closed_log_sum(self, fields):
        """Closed-form log sum over the analytic units, per row of ``fields``: softplus for
        binary slots, log-sum-exp over each categorical site."""
        f = fields[:, self.A]
        n_ab = self.a_site_ptr[0]
        return (np.logaddexp(0.0, f[:, :n_ab]).sum(axis=1)
                + site_log_sum_exp(f[:, n_ab:], np.diff(self.a_site_ptr)).sum(axis=1))

    def _closed_means(self, fields):
        """``E[x_a | clamped]`` of the analytic slots: sigmoid, or softmax per site."""
        f = fields[:, self.A]
        n_ab = self.a_site_ptr[0]
        return np.concatenate([expit(f[:, :n_ab]),
                               site_softmax(f[:, n_ab:], np.diff(self.a_site_ptr))], axis=1)

    def mean_moments(self, x):
        return self._moments(x)[:2]

    def mean_grads(self, x) -> dict:
        """As :meth:`Plan.mean_grads`, plus the generic terms' ``E[dE/dtheta]``."""
        m_unit, m_pair, generic = self._moments(x)
        grads = self.graph.grad_from_moments(m_unit, m_pair)
        grads.update(generic)
        return grads

    def _moments(self, x):
        graph = self.graph
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        sum_unit = np.zeros(self.n_units)
        sum_pair = np.zeros(graph.n_edges)
        generic = {}
        shared = None if self.generic_clamped else self.generic_table(x[0])
        for lo in range(0, len(x), _BATCH_CHUNK):
            xb = x[lo:lo + _BATCH_CHUNK]
            fields, const = self.conditioned(xb)
            p = xb.copy()
            q_free = np.zeros((len(xb), graph.n_edges))
            if self.m == 0:
                p[:, self.A] = self._closed_means(fields)
            for b in range(len(xb)):
                table = self.generic_table(xb[b]) if shared is None else shared
                code_weights = np.ones(1)
                if self.m:
                    shift = self._enumerate(fields[b], table)[0]
                    unit_acc, edge_acc, code_weights = self._enumerate(fields[b], table, True,
                                                                       shift)
                    p[b, self.S] = unit_acc[:self.m]
                    p[b, self.A] = unit_acc[self.m:]
                    q_free[b] = edge_acc
                if graph.generic_terms:
                    for name, g in self._generic_grads(xb[b], code_weights).items():
                        generic[name] = generic[name] + g if name in generic else g
            # Pair moments: from the kernel where both ends are free; products otherwise
            # (a clamped end is a constant, a free end contributes its mean).
            q = p[:, ei] * p[:, ej]
            free_edges = self._kernel.free_edges
            q[:, free_edges] = q_free[:, free_edges]
            sum_unit += p.sum(axis=0)
            sum_pair += q.sum(axis=0)
        m_unit, m_pair = graph.native_moments(sum_unit / len(x), sum_pair / len(x))
        return m_unit, m_pair, {name: g / len(x) for name, g in generic.items()}


def _enumeration_task(shared, piece_range):
    """One executor piece: the enumeration pieces ``start <= p < stop`` (on the Runner's
    ``n_threads``); moments summed piece by piece in order (one row per accumulator)."""
    args, options = shared
    start, stop = piece_range
    options = dict(options, n_threads=check_n_threads(options["n_threads"]))
    out = _exact.enumerate_pieces(*args, start, stop, **options)
    if not options["moments"]:
        return out
    sums = []
    for acc in out:
        total = acc[0].copy()
        for row in acc[1:]:
            total += row
        sums.append(total)
    return tuple(sums)


def _site_first_max(values, sizes):
    """One-hot of the first largest entry of each consecutive run of ``sizes`` entries."""
    out = np.zeros(len(values))
    start = 0
    for size in sizes:
        out[start + int(np.argmax(values[start:start + size]))] = 1.0
        start += size
    return out


def _site_ptr(graph, slots):
    """Slot ranges, within ``slots`` (binary slots first, then whole categorical sites), of
    its categorical sites: ``(n_sites + 1,)`` int64 starting at the number of binary slots."""
    cat = graph.categorical[slots]
    sizes = graph.site_size[np.unique(graph.site[slots[cat]])]
    return np.concatenate([[np.sum(~cat)], np.sum(~cat) + np.cumsum(sizes)]).astype(np.int64)


def _csr(n, edges, weights, edge_ids, rows=None, col_offset=0):
    """Kernel CSR arrays ``(ptr, idx, w, eid)`` of the symmetric adjacency of ``edges`` over
    ``n`` local units (:func:`~pgm_energy.graph.symmetric_csr`), keeping the first ``rows``
    rows (default all) with ``col_offset`` taken off their columns; ``edge_ids`` are the
    graph edges of ``edges``, whose ``weights`` the entries carry."""
    ptr, idx, edge_of = symmetric_csr(n, edges)
    rows = n if rows is None else rows
    ptr = ptr[:rows + 1]
    eid = edge_ids[edge_of[:ptr[-1]]]
    return (ptr, np.ascontiguousarray(idx[:ptr[-1]] - col_offset, np.int32),
            np.ascontiguousarray(weights[eid], np.float64), np.ascontiguousarray(eid, np.int32))
