"""The elimination engine: exact inference by variable elimination over the flat unit graph.

The problem is the binary form of the flat graph (see :class:`~pgm_energy.graph.BinaryForm`)
over its free units, with the clamped units folded into the fields:

    log Z = log sum_x exp(const + sum_i f_i x_i + sum_e c_e x_i x_j).

Elimination runs over *sites*: a binary or spin unit (one slot, states off and on) or a
categorical unit of ``k`` values (``k`` one-hot slots, state ``a`` = slot ``a`` on). Sites are
summed out one at a time in an elimination order. Summing site ``v`` out of the log tables
that mention it (its *bucket*) gives a table over its current neighbours ``N(v)``,

    tau(x_N) = log sum_{x_v} exp(phi_v(x_v) + sum_{u in N} psi_vu(x_v, x_u)
                                  + sum_{T in bucket} T(x_v, x_N)),

with ``phi_v(a)`` the field of the slot on in state ``a`` (0 for a binary unit's state 0) and
``psi_vu(a, b)`` the sum of the couplings between the slots on in states ``a`` and ``b``; the
table joins the bucket of the next site of ``N(v)`` to be eliminated. A binary unit whose
bucket holds only its own field and couplings is summed in closed form, ``tau =
softplus(f_v + c . x_N)``, as the enumeration path does for its conditionally independent
units. With ``(max, +)`` in place of log-sum-exp the same sweep gives the largest log weight,
and back-tracking a state that reaches it (:meth:`Elimination.max_state`).

Cost, known before any work (:mod:`pgm_energy.exact.cost` decides on it): with ``w`` = the
largest ``|N(v)|`` along the order (the *width*, an upper bound of the treewidth), the
largest table spans ``w + 1`` sites (``k_v prod_{u in N(v)} k_u`` entries, ``2^(w+1)`` for
binary units), and a contraction reads every table of its bucket once per entry of its joint
table. The order is the cheapest (largest table, then operations) of greedy
min-fill and min-degree orders, each with and without a closed-form phase first (a greedy
maximal independent set, lowest degree first).

Marginals come from one backward sweep: the marginal of each table's scope spreads back
through the contraction that made it (``P(x_v, x_N) = P(x_N) exp(S(x_v, x_N) - tau(x_N))``),
which gives every unit and edge marginal in two passes, not one run per parameter. The same
conditionals, read in reverse elimination order, draw exact independent samples.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._kernels import _eliminate, _order
from ..graph import symmetric_csr
from .plan import Plan

__all__ = ["Cost", "EliminationPlan", "Elimination", "order_cost", "DEFAULT_MAX_TABLE"]

#: Default cap on the entries of the largest elimination table (2^27 float64 = 1 GiB).
DEFAULT_MAX_TABLE = 2**27
_PARALLEL_MIN = 2**17      # outputs with fewer entries run on one thread (see _eliminate)
_ORDER_BUDGET = 2 * 10**6   # word operations one greedy order search may spend on scores
_PLAN_CACHE_SIZE = 8
_PLANS = {}                 # (structure key) -> EliminationPlan, least recently used first


@dataclass(frozen=True)
class Cost:
    """What an elimination order costs, computed before any table is built.

    Attributes
    ----------
    width : int
        Most neighbours a site has when it is eliminated (the treewidth of the order).
    largest_table : float
        Entries of the largest joint table, ``k_v prod_{u in N(v)} k_u`` over the states
        ``k`` of the site summed out and of its neighbours: ``2^(width + 1)`` for binary
        units, ``k^(width + 1)`` for ``k``-state Potts units.
    stored_entries : float
        Entries of all tables the order produces, ``sum_v prod_{u in N(v)} k_u`` (what the
        backward sweep keeps).
    operations : float
        Table entries read by all contractions (joint entries times tables in the bucket).
    n_closed_form : int
        Sites whose bucket holds only their own field and couplings.
    """

    width: int
    largest_table: float
    stored_entries: float
    operations: float
    n_closed_form: int


class EliminationPlan:
    """An elimination order over the free sites of a graph, and its contractions.

    A *site* is a binary unit (one slot, two states: slot off, slot on) or a categorical unit
    of ``k`` values (``k`` one-hot slots, ``k`` states: slot ``a`` on). The structure depends
    only on the graph, its sites and which of them are free; the numbers (fields and
    couplings in binary form over the slots, see module docstring) come with each call. The
    order and its :class:`Cost` are found on construction, before any table is built (the
    caller refuses an order that costs too much); the steps are flat arrays (the *step
    list*, a ``Program`` of :mod:`pgm_energy._kernels._eliminate`), built and checked once, on
    first use, and each sweep (forward, backward, sampling, back-tracking) is one kernel call
    over all of them.

    Parameters
    ----------
    n_units : int
        Slots of the flat graph.
    edges : ndarray of shape (n_edges, 2)
        Coupled slot pairs ``i < j`` (never two slots of one site).
    free : ndarray of bool, shape (n_units,)
        Slots to sum out, whole sites (the others are clamped: their couplings are folded
        into fields by the caller and their edges are ignored here).
    site_start : ndarray of int, shape (n_sites + 1,), optional
        Site ``s`` is slots ``site_start[s]:site_start[s + 1]`` (default: every slot a binary
        site), as :attr:`~pgm_energy.graph.FlatGraph.site_start`.
    max_table : int
        The cap the order is searched under (sites with more than ``log2(max_table)``
        neighbours are not scored).
    """

    def __init__(self, n_units: int, edges: np.ndarray, free: np.ndarray, *,
                 site_start: np.ndarray | None = None, max_table: int = DEFAULT_MAX_TABLE):
        self.n_units = int(n_units)
        free = np.asarray(free, bool)
        start = (np.arange(self.n_units + 1) if site_start is None
                 else np.asarray(site_start, np.int64))
        size = np.diff(start)
        site = np.repeat(np.arange(len(size)), size)
        #: Free sites, the steps' units (flat site ids).
        self.free_sites = np.flatnonzero(free[start[:-1]])
        self._sites = np.stack([start[:-1], size], axis=1)
        self.edges = np.asarray(edges, np.int64).reshape(-1, 2)
        free_edge = free[self.edges[:, 0]] & free[self.edges[:, 1]]
        self.free_edges = np.flatnonzero(free_edge)
        local = np.full(len(size), -1, np.int64)
        local[self.free_sites] = np.arange(len(self.free_sites))
        slots = self.edges[free_edge]
        self._pairs = np.ascontiguousarray(local[site[slots]])
        # state of a slot in its site: a binary site's slot is its state 1
        ends = site[slots]
        self._pair_state = np.ascontiguousarray(slots - start[ends] + (size[ends] == 1))
        card = np.where(size == 1, 2, size)[self.free_sites]
        site_pairs = np.unique(np.sort(self._pairs, axis=1), axis=0).reshape(-1, 2)
        order, *self._scopes, self.cost = _best_order(len(self.free_sites), site_pairs,
                                                      max_table, card)
        self._local_order = order
        self.order = self.free_sites[order]
        self.width = self.cost.width

    @functools.cached_property
    def program(self):
        """The step list: one ``Program`` of :mod:`pgm_energy._kernels._eliminate` (the
        arrays every sweep kernel takes), built and checked on first use."""
        return _eliminate.build_program(self._pairs, self._pair_state, self._local_order,
                                        *self._scopes, self.free_sites, self.free_edges,
                                        self._sites, self.n_units, len(self.edges))

    @property
    def n_stored(self) -> int:
        """Entries of all tables together (the flat store a kept forward sweep fills)."""
        return self.program.n_stored

    @property
    def steps(self):
        """Read-only view of the steps: ``len()`` and ``steps[s]`` -> :class:`Step`."""
        return _Steps(self.program)

    # -- numbers --------------------------------------------------------------------------
    def forward(self, field: np.ndarray, coupling: np.ndarray, *, keep: bool = False,
                maximum: bool = False, n_threads: int = 1):
        """``log sum_x exp(sum_i f_i x_i + sum_e c_e x_i x_j)`` over the states of the free
        sites (with ``maximum``, ``max_x`` of the exponent: max-product).

        ``field`` has one entry per slot (clamped slots' entries are not read) and
        ``coupling`` one per edge of the graph. Returns ``(value, tables)``; ``tables`` is
        the flat store of every step's table when ``keep`` (for :meth:`backward`,
        :meth:`sample` and :meth:`argmax`), else None.
        """
        field, coupling = _as_float(field), _as_float(coupling)
        tables = np.empty(self.program.n_stored) if keep else None
        total = _eliminate.forward(self.program, field, coupling, tables, n_threads,
                                   _PARALLEL_MIN, maximum)
        return total, tables

    def backward(self, field: np.ndarray, coupling: np.ndarray, tables, *, n_threads: int = 1):
        """Slot marginals ``P(x_i = 1)`` and edge marginals ``P(x_i = 1, x_j = 1)``.

        Entries of clamped slots and of edges with a clamped end are left at 0.
        """
        p_unit = np.zeros(self.n_units)
        p_pair = np.zeros(len(self.edges))
        _eliminate.backward(self.program, _as_float(field), _as_float(coupling), tables,
                            p_unit, p_pair, n_threads, _PARALLEL_MIN)
        return p_unit, p_pair

    def sample(self, field: np.ndarray, coupling: np.ndarray, tables, uniforms: np.ndarray,
               *, n_threads: int = 1):
        """Exact samples of the free sites by backward sampling, as slot bits.

        ``uniforms`` has shape ``(n_samples, n_free_sites)``; column ``k`` draws the ``k``-th
        site sampled, which is the ``k``-th site of the *reversed* elimination order, from
        ``P(x_v = a | sites eliminated after v)`` (binary: ``x_v = [u < P(x_v = 1 | ...)]``).
        Returns ``(n_samples, n_units)`` int8 with zeros at clamped slots.
        """
        uniforms = np.ascontiguousarray(uniforms, np.float64)
        x = self._states(uniforms.shape[0])
        _eliminate.sample(self.program, _as_float(field), _as_float(coupling), tables,
                          uniforms, x, n_threads)
        return self._bits(x)

    def argmax(self, field: np.ndarray, coupling: np.ndarray, tables) -> np.ndarray:
        """A maximising state of the free sites from the tables of a max-product
        :meth:`forward` (``maximum=True``): back-tracking in reverse elimination order, each
        site at the lowest state of largest ``S(a, x_N)`` given the sites chosen after it.
        Returns ``(n_units,)`` int8 slot bits with zeros at clamped slots."""
        x = self._states(1)
        _eliminate.sample(self.program, _as_float(field), _as_float(coupling), tables,
                          np.zeros((1, 0)), x, 1, True)
        return self._bits(x)[0]

    def _states(self, n):
        """Zeroed output of the sampling kernel: each site's state at its first slot's
        column, int8 unless a site has more than 127 states."""
        dtype = np.int8 if self._sites[:, 1].max(initial=1) <= 127 else np.intc
        return np.zeros((n, self.n_units), dtype)

    def _bits(self, x):
        """Slot bits ``(n, n_units)`` int8 from the sampling kernel's output (in place when
        int8): a binary site's column is its bit already; a categorical site's state ``a``
        at its first slot becomes slot ``a`` on."""
        first, size = self._sites[self.free_sites].T
        categorical = first[size > 1]
        if len(categorical):
            state = x[:, categorical].astype(np.intp)
            x[:, categorical] = 0
            np.put_along_axis(x, categorical + state, 1, axis=1)
        return x.astype(np.int8, copy=False)


class _Steps:
    """Read-only view of a plan's steps: ``len()`` and ``steps[s]`` -> :class:`Step`."""

    def __init__(self, program):
        self._program = program

    def __len__(self):
        return len(self._program.steps)

    def __getitem__(self, s):
        program = self._program
        steps, scope, edge = program.steps, program.scope, program.edge
        edge_axis, incoming = program.edge_axis, program.incoming
        row = steps[range(len(self))[s]]
        unit, sc, n_sc, e, n_e, i, n_i, _ = (int(v) for v in row)
        return Step(unit, scope[sc:sc + n_sc].copy(), edge[e:e + n_e].copy(),
                    edge_axis[e:e + n_e].copy(), incoming[i:i + n_i, 0].copy())


@dataclass(frozen=True)
class Step:
    """One contraction: site ``unit`` summed out of its bucket into a table over ``scope``."""

    unit: int                   # the site summed out (flat site id; a slot's for binary units)
    scope: np.ndarray           # its neighbouring sites when eliminated, in elimination order
    edges: np.ndarray           # graph edges in the bucket (first end eliminated here)
    edge_axis: np.ndarray       # joint axis (1..) of the other end of each bucket edge
    incoming: np.ndarray        # steps whose tables are in the bucket


def _as_float(x):
    return np.ascontiguousarray(x, np.float64)


class Elimination(Plan):
    """Variable elimination over a graph with some groups clamped: the
    :class:`~pgm_energy.exact.plan.Plan` over an :class:`EliminationPlan` of its sites
    (binary, spin and categorical units).

    Parameters
    ----------
    graph, clamped_groups, beta, n_threads
        As for :class:`~pgm_energy.exact.plan.Plan`.
    max_table : int
        The cap the order is searched under (see :class:`EliminationPlan`).

    Plans (orders and addressing, no numbers) are kept for the last ``_PLAN_CACHE_SIZE``
    graph structures, so repeated calls on one model (a training loop) plan once. Nothing is
    refused here: :mod:`~pgm_energy.exact.cost` reads :attr:`cost` before any sweep.
    """

    def __init__(self, graph, clamped_groups, beta, n_threads, *, max_table: int):
        super().__init__(graph, clamped_groups, beta, n_threads)
        key = (graph.n_units, graph.edges.tobytes(), graph.site_start.tobytes(),
               self.clamped.tobytes(), max_table)
        self.plan = _PLANS.pop(key, None)
        if self.plan is None:
            self.plan = EliminationPlan(graph.n_units, graph.edges, ~self.clamped,
                                        site_start=graph.site_start, max_table=max_table)
        _PLANS[key] = self.plan                 # most recently used last
        while len(_PLANS) > _PLAN_CACHE_SIZE:
            _PLANS.pop(next(iter(_PLANS)))
        self.cost = self.plan.cost
        #: The cap the order was searched under.
        self.max_table = max_table

    def log_sum(self, x) -> np.ndarray:
        fields, const = self.conditioned(x)
        return np.array([c + self.plan.forward(f, self.form.coupling,
                                               n_threads=self.n_threads)[0]
                         for f, c in zip(fields, const)])

    def max_state(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Max-product elimination: for each clamped row of ``x`` (rows of
        :meth:`~pgm_energy.exact.plan.Plan.clamped_flat`), the largest log weight over the
        free units and a state that reaches it,

            best = max_{x free} (const + f.x + x.C.x)   (= -beta E, on the scale of log_sum),

        the forward sweep with ``(max, +)`` in place of log-sum-exp, the state by
        back-tracking in reverse elimination order (ties: the lowest state of each site, so
        the answer is deterministic).

        Returns
        -------
        best : ndarray of shape (batch,)
        bits : ndarray of shape (batch, n_units)
            Binary-form slot bits (float) of a maximising state: the clamped entries copied
            from ``x``, one-hot slots for categorical units.
        """
        fields, const = self.conditioned(x)
        coupling = self.form.coupling
        best = np.empty(len(x))
        bits = np.array(x, float)
        for r, (f, c) in enumerate(zip(fields, const)):
            total, tables = self.plan.forward(f, coupling, keep=True, maximum=True,
                                              n_threads=self.n_threads)
            best[r] = c + total
            bits[r, ~self.clamped] = self.plan.argmax(f, coupling, tables)[~self.clamped]
        return best, bits

    def mean_moments(self, x):
        fields, _ = self.conditioned(x)
        ei, ej = self.graph.edges[:, 0], self.graph.edges[:, 1]
        free_pairs = self.plan.free_edges
        sum_unit = np.zeros(self.n_units)
        sum_pair = np.zeros(self.graph.n_edges)
        for row, f in zip(x, fields):
            _, tables = self.plan.forward(f, self.form.coupling, keep=True,
                                          n_threads=self.n_threads)
            p_free, q_free = self.plan.backward(f, self.form.coupling, tables,
                                                n_threads=self.n_threads)
            p = np.where(self.clamped, row, p_free)
            q = p[ei] * p[ej]                 # a clamped end is a constant
            q[free_pairs] = q_free[free_pairs]
            sum_unit += p
            sum_pair += q
        return self.graph.native_moments(sum_unit / len(x), sum_pair / len(x))

    def sample(self, n_samples: int, rng: np.random.Generator, x=None) -> np.ndarray:
        """Backward sampling (see :meth:`EliminationPlan.sample`) given the clamped row ``x``
        (default: nothing clamped): one uniform per free site and sample, drawn at once as
        ``rng.random((n_samples, n_free_sites))``."""
        x = np.zeros(self.n_units) if x is None else x
        field, coupling = self.conditioned(x[None])[0][0], self.form.coupling
        _, tables = self.plan.forward(field, coupling, keep=True, n_threads=self.n_threads)
        uniforms = rng.random((n_samples, len(self.plan.free_sites)))
        bits = self.plan.sample(field, coupling, tables, uniforms) + x * self.clamped
        return self.graph.from_bits(bits)


def order_cost(n_units: int, edges, free=None, *, site_start=None,
               max_table: int = DEFAULT_MAX_TABLE) -> Cost:
    """:class:`Cost` of the elimination order the engine picks, without building anything.

    Parameters
    ----------
    n_units : int
        Slots of the flat graph.
    edges : array_like of shape (n_edges, 2)
    free : ndarray of bool, optional
        Slots to sum out, whole sites (default all).
    site_start : ndarray of int, optional
        Sites as for :class:`EliminationPlan` (default: every slot a binary unit).
    max_table : int
        The cap the order is searched under (sites with more than ``log2(max_table)``
        neighbours are not scored).

    Examples
    --------
    >>> from pgm_energy.exact.elimination import order_cost
    >>> order_cost(4, [(0, 1), (1, 2), (2, 3), (3, 0)]).width   # a ring has treewidth 2
    2
    """
    free = np.ones(n_units, bool) if free is None else np.asarray(free, bool)
    return EliminationPlan(n_units, edges, free, site_start=site_start,
                           max_table=max_table).cost


def _best_order(n_free, pairs, max_table, card=None):
    """The cheapest candidate order (largest table, then operations; see
    ``_order.best_order``: layout, min-degree and min-fill, each without and with the
    closed-form set first), ``card`` the states of each free site (default two each).

    Returns ``(order, scope_start, scope_units, cost)``: ``scope_units[scope_start[s]:
    scope_start[s + 1]]`` are the neighbours (local ids) of ``order[s]`` when eliminated.
    """
    if n_free == 0:
        empty = np.zeros(0, np.int64)
        return empty, np.zeros(1, np.int64), empty, Cost(0, 1.0, 0.0, 0.0, 0)
    cap_bits = int(np.floor(np.log2(max_table)))
    pairs = np.ascontiguousarray(pairs, np.int64).reshape(-1, 2)
    card = None if card is None else np.ascontiguousarray(card, np.int64)
    order, scope_start, scope_units, cost = _order.best_order(
        n_free, pairs, cap_bits, _layout_rank(n_free, pairs), _ORDER_BUDGET, card)
    return order, scope_start, scope_units, Cost(*cost)


def _layout_rank(n, pairs):
    """Rank of each unit in the reverse Cuthill-McKee layout of the graph.

    Eliminating along a layout of bandwidth ``b`` has width at most ``b``: this is the sweep
    (transfer-matrix) order on lattices, where greedy orders are known to be poor. The
    adjacency goes to scipy in canonical CSR form (sorted, no duplicates).
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    indptr, indices, _ = symmetric_csr(n, pairs)
    adjacency = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, n))
    rank = np.empty(n, np.int64)
    rank[reverse_cuthill_mckee(adjacency, symmetric_mode=True)] = np.arange(n)
    return rank
