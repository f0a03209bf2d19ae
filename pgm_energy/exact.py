"""Exact computation for small models: log Z, likelihood, expectations, gradient, marginals.

Everything here reduces to one operation on the flat graph: the log of the sum of
``exp(-beta E)`` over the free units while some units are clamped (none for ``log Z``, the
visible ones for the free energy), and the moments of the free units under that weighting.
Free units that are conditionally independent given the other free units are summed in
closed form (``softplus`` in the binary form); the rest are enumerated by the Gray-code kernel
in ``_exact.pyx``, in pieces that run on threads and combine exactly.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from . import _exact
from ._checks import check_beta
from .model import EnergyModel

__all__ = ["log_partition", "log_likelihood", "expectations", "gradient", "marginals",
           "DEFAULT_MAX_STATES"]

#: Default cap on enumerated states (after the closed-form sums); ``max_states=`` overrides.
DEFAULT_MAX_STATES = 2**32
_MIN_PIECE_BITS = 14      # pieces hold at least 2^14 states ...
_MAX_PREFIX_BITS = 6      # ... and there are at most 64 of them
_BATCH_CHUNK = 256


def log_partition(model: EnergyModel, beta: float = 1.0, *, max_states: int = DEFAULT_MAX_STATES,
                  n_threads: int | None = None) -> float:
    """Exact ``log Z = log sum_s exp(-beta E(s))`` over all joint states.

    Parameters
    ----------
    model : EnergyModel
    beta : float
        Inverse temperature (> 0).
    max_states : int
        Refuse (``ValueError``) if more states than this would be enumerated after the
        closed-form sums; use ``pe.ais.log_partition`` for an estimate instead.
    n_threads : int, optional
        Threads for large enumerations (default: all cores). The result does not depend on it.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> model = pe.RBM(3, 2, W=np.zeros((2, 3)))
    >>> round(pe.exact.log_partition(model), 6) == round(5 * np.log(2), 6)
    True
    """
    plan = _Plan(model, (), beta, max_states, n_threads)
    return float(plan.log_sum(np.zeros((1, plan.n_units)))[0])


def log_likelihood(model: EnergyModel, X, *, beta: float = 1.0,
                   max_states: int = DEFAULT_MAX_STATES, n_threads: int | None = None):
    """Exact ``log P(x) = -F(x) - log Z`` for each sample, shape ``(batch,)``.

    ``X`` is an array when the model has one visible group, else a dict of visible groups.
    """
    log_z = log_partition(model, beta, max_states=max_states, n_threads=n_threads)
    return _hidden_log_sum(model, X, beta=beta, max_states=max_states,
                           n_threads=n_threads)[0] - log_z


def expectations(model: EnergyModel, *, beta: float = 1.0, max_states: int = DEFAULT_MAX_STATES,
                 n_threads: int | None = None) -> dict:
    """``E_model[dE/dtheta]`` for every parameter, a dict shaped like ``model.params``."""
    plan = _Plan(model, (), beta, max_states, n_threads)
    m_unit, m_pair = plan.mean_moments(np.zeros((1, plan.n_units)))
    return plan.graph.grad_from_moments(m_unit, m_pair)


def gradient(model: EnergyModel, X, *, beta: float = 1.0, max_states: int = DEFAULT_MAX_STATES,
             n_threads: int | None = None) -> dict:
    """``d mean log P(X) / d theta = beta (E_model[dE/dtheta] - mean_x E_{h|x}[dE/dtheta])``.

    Entry by entry, shaped like ``model.params`` (for laterals: symmetric, zero diagonal).
    """
    model_side = expectations(model, beta=beta, max_states=max_states, n_threads=n_threads)
    plan = _Plan(model, model.visible, beta, max_states, n_threads)
    m_unit, m_pair = plan.mean_moments(plan.clamped_flat(X))
    data_side = plan.graph.grad_from_moments(m_unit, m_pair)
    return {k: beta * (model_side[k] - data_side[k]) for k in model_side}


def marginals(model: EnergyModel, *, beta: float = 1.0, max_states: int = DEFAULT_MAX_STATES,
              n_threads: int | None = None) -> dict:
    """Exact single-unit marginals: ``{group: P(unit on)}`` (on = 1, or +1 for spins)."""
    plan = _Plan(model, (), beta, max_states, n_threads)
    m_unit, _ = plan.mean_moments(np.zeros((1, plan.n_units)))
    p_on = np.where(plan.graph.spin, (m_unit + 1.0) / 2.0, m_unit)
    return {g: p_on[off:off + model.units[g].n] for g, off in plan.graph.offsets.items()}


def _hidden_log_sum(model, X, *, beta=1.0, max_states=DEFAULT_MAX_STATES, n_threads=None):
    """``log sum_h exp(-beta E(x, h))`` per sample, and the plan used."""
    plan = _Plan(model, model.visible, beta, max_states, n_threads)
    return plan.log_sum(plan.clamped_flat(X)), plan


class _Plan:
    """How to sum out the free units of a model with some groups clamped.

    Free units split into ``A`` (a greedy maximal independent set of the free subgraph, summed
    in closed form) and ``S`` (enumerated). Built once per call; holds the binary form.
    """

    def __init__(self, model, clamped_groups, beta, max_states, n_threads):
        beta = check_beta(beta)
        if not isinstance(model, EnergyModel):
            raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
        self.model = model
        self.graph = graph = model.graph
        self.form = graph.binary_form(beta)
        self.n_units = graph.n_units
        self.clamped_groups = list(clamped_groups)
        self.n_threads = _n_threads(n_threads)

        clamped = np.zeros(graph.n_units, bool)
        for g in self.clamped_groups:
            off = graph.offsets[g]
            clamped[off:off + model.units[g].n] = True
        self.clamped = clamped
        free = np.flatnonzero(~clamped)
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        free_edge = ~clamped[ei] & ~clamped[ej]
        self.S, self.A = _split_independent(free, graph.edges[free_edge])
        self.m = len(self.S)
        states = 2.0 ** self.m
        if self.m > 62 or states > max_states:
            raise ValueError(
                f"exact computation would enumerate 2^{self.m} = {states:.3g} states (after "
                f"summing {len(self.A)} conditionally independent units in closed form), more "
                f"than max_states={max_states}; estimate log Z with pe.ais.log_partition "
                "instead, or raise max_states= if you can wait"
            )
        self.n_prefix = int(np.clip(self.m - _MIN_PIECE_BITS, 0, _MAX_PREFIX_BITS))

        # Symmetric binary coupling matrix, for fields induced by clamped units.
        n = graph.n_units
        c = self.form.coupling
        self.adjacency = sp.csr_matrix(
            (np.concatenate([c, c]), (np.concatenate([ei, ej]), np.concatenate([ej, ei]))),
            shape=(n, n))
        self._build_kernel_arrays(ei, ej, c)

    def _build_kernel_arrays(self, ei, ej, c):
        n = self.n_units
        pos = np.full(n, -1, np.int64)
        pos[self.S] = np.arange(self.m)
        pos[self.A] = np.arange(len(self.A))
        in_s = np.zeros(n, bool)
        in_s[self.S] = True
        in_a = np.zeros(n, bool)
        in_a[self.A] = True
        eid = np.arange(len(ei), dtype=np.int64)

        ss = in_s[ei] & in_s[ej]
        rows = np.concatenate([pos[ei[ss]], pos[ej[ss]]])
        cols = np.concatenate([pos[ej[ss]], pos[ei[ss]]])
        self.ss = _csr(rows, cols, np.concatenate([c[ss]] * 2),
                       np.concatenate([eid[ss]] * 2), self.m)

        sa = (in_s[ei] & in_a[ej]) | (in_a[ei] & in_s[ej])
        s_end = np.where(in_s[ei], ei, ej)[sa]
        a_end = np.where(in_s[ei], ej, ei)[sa]
        self.sa = _csr(pos[s_end], pos[a_end], c[sa], eid[sa], self.m)
        ptr, idx = self.sa[0], self.sa[1]
        first = np.full(self.m, -1, np.int32)
        for r in range(self.m):
            cols_r = idx[ptr[r]:ptr[r + 1]]
            if len(cols_r) and np.all(np.diff(cols_r) == 1):
                first[r] = cols_r[0]
        self.sa_first = first
        self.free_edges = np.flatnonzero(ss | sa)

    # -- inputs ---------------------------------------------------------------------------
    def clamped_flat(self, X) -> np.ndarray:
        """Flat binary-form state with the clamped groups from ``X``, zeros elsewhere."""
        state = self.model.as_state(X, self.clamped_groups, what="X")
        batch = next(iter(state.values())).shape[0]
        flat = np.zeros((batch, self.n_units))
        for g, arr in state.items():
            off = self.graph.offsets[g]
            flat[:, off:off + arr.shape[1]] = arr
        return np.where(self.graph.spin, (flat + 1.0) / 2.0, flat) * self.clamped

    def _conditioned(self, x):
        """Fields of all units and the constant of log weight, given clamped values ``x``."""
        fields = self.form.field + (self.adjacency @ x.T).T
        const = self.form.const + x @ self.form.field + 0.5 * np.einsum(
            "bi,bi->b", x, (self.adjacency @ x.T).T)
        return fields, const

    # -- sums -----------------------------------------------------------------------------
    def log_sum(self, x) -> np.ndarray:
        """``log sum over free units of exp(-beta E)`` for each clamped row of ``x``."""
        out = np.empty(len(x))
        for lo in range(0, len(x), _BATCH_CHUNK):
            fields, const = self._conditioned(x[lo:lo + _BATCH_CHUNK])
            closed = np.logaddexp(0.0, fields[:, self.A]).sum(axis=1)
            for b in range(len(fields)):
                out[lo + b] = const[b] + (self._enumerate(fields[b])[0] if self.m else closed[b])
        return out

    def _enumerate(self, fields, moments=False, shift=0.0):
        args = (np.ascontiguousarray(fields[self.S]), *self.ss,
                np.ascontiguousarray(fields[self.A]), *self.sa, self.sa_first,
                self.graph.n_edges, self.n_prefix, 0, 1 << self.n_prefix)
        if moments:
            unit_acc, edge_acc = _exact.enumerate_pieces(*args, moments=True, shift=shift,
                                                         n_threads=self.n_threads)
            return unit_acc.sum(axis=0), edge_acc.sum(axis=0)
        top, total = _exact.enumerate_pieces(*args, n_threads=self.n_threads)
        peak = top.max()
        return (peak + np.log(np.sum(total * np.exp(top - peak))),)

    def mean_moments(self, x):
        """Native moments ``E[s_i]``, ``E[s_i s_j]`` averaged over the clamped rows of ``x``."""
        graph = self.graph
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        sum_unit = np.zeros(self.n_units)
        sum_pair = np.zeros(graph.n_edges)
        for lo in range(0, len(x), _BATCH_CHUNK):
            xb = x[lo:lo + _BATCH_CHUNK]
            fields, const = self._conditioned(xb)
            p = xb.copy()
            q_free = np.zeros((len(xb), graph.n_edges))
            if self.m == 0:
                p[:, self.A] = _sigmoid(fields[:, self.A])
            else:
                for b in range(len(xb)):
                    shift = self._enumerate(fields[b])[0]
                    unit_acc, edge_acc = self._enumerate(fields[b], True, shift)
                    p[b, self.S] = unit_acc[:self.m]
                    p[b, self.A] = unit_acc[self.m:]
                    q_free[b] = edge_acc
            # Pair moments: from the kernel where both ends are free; products otherwise
            # (a clamped end is a constant, a free end contributes its mean).
            q = p[:, ei] * p[:, ej]
            q[:, self.free_edges] = q_free[:, self.free_edges]
            sum_unit += p.sum(axis=0)
            sum_pair += q.sum(axis=0)
        return graph.native_moments(sum_unit / len(x), sum_pair / len(x))


def _sigmoid(z):
    from scipy.special import expit

    return expit(z)


def _n_threads(n_threads) -> int:
    if n_threads is None:
        return os.cpu_count() or 1
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads must be an int or None, got {n_threads!r}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return int(n_threads)


def _split_independent(free: np.ndarray, edges: np.ndarray):
    """Greedy maximal independent set ``A`` of the free subgraph (lowest degree first).

    Returns ``(S, A)``: the units to enumerate and the units to sum in closed form.
    """
    n = int(free.max()) + 1 if free.size else 0
    i, j = edges[:, 0], edges[:, 1]
    adj = sp.csr_matrix((np.ones(2 * len(i)), (np.concatenate([i, j]), np.concatenate([j, i]))),
                        shape=(n, n))
    degree = np.diff(adj.indptr)
    blocked = np.zeros(n, bool)
    chosen = np.zeros(n, bool)
    for u in free[np.argsort(degree[free], kind="stable")]:
        if not blocked[u]:
            chosen[u] = True
            blocked[adj.indices[adj.indptr[u]:adj.indptr[u + 1]]] = True
    A = free[chosen[free]]
    S = free[~chosen[free]]
    return S, A


def _csr(rows, cols, weights, eids, n_rows):
    """CSR arrays (ptr, idx, w, eid) sorted by row then column, for the kernel."""
    order = np.lexsort((cols, rows))
    ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return (ptr, np.ascontiguousarray(cols[order], np.int32),
            np.ascontiguousarray(weights[order], np.float64),
            np.ascontiguousarray(eids[order], np.int32))
