"""Exact inference by variable elimination over the flat unit graph.

The problem is the binary form of the flat graph (see :class:`~pgm_energy.graph.BinaryForm`)
over its free units, with the clamped units folded into the fields:

    log Z = log sum_x exp(const + sum_i f_i x_i + sum_e c_e x_i x_j).

Units are summed out one at a time in an elimination order. Summing unit ``v`` out of the
log tables that mention it (its *bucket*) gives a table over its current neighbours
``N(v)``,

    tau(x_N) = log sum_{x_v} exp(x_v (f_v + sum_{u in N} c_vu x_u) + sum_{T in bucket} T(x_v, x_N)),

which joins the bucket of the next unit of ``N(v)`` to be eliminated. A unit whose bucket holds
only its own field and couplings is summed in closed form, ``tau = softplus(f_v + c . x_N)``,
as the enumeration path does for its conditionally independent units.

Cost model, known before any work: with ``w`` = the largest ``|N(v)|`` along the order (the
*width*, an upper bound of the treewidth), the largest table spans ``w + 1`` units
(``2^(w+1)`` entries), and a contraction reads every table of its bucket once per entry of
its joint table. The order is the cheapest (largest table, then operations) of greedy
min-fill and min-degree orders, each with and without a closed-form phase first (a greedy
maximal independent set, lowest degree first).

Marginals come from one backward sweep: the marginal of each table's scope spreads back
through the contraction that made it (``P(x_v, x_N) = P(x_N) exp(S(x_v, x_N) - tau(x_N))``),
which gives every unit and edge marginal in two passes, not one run per parameter. The same
conditionals, read in reverse elimination order, draw exact independent samples.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _eliminate

__all__ = ["Cost", "EliminationPlan", "Elimination", "order_cost", "DEFAULT_MAX_TABLE"]

#: Default cap on the entries of the largest elimination table (2^27 float64 = 1 GiB).
DEFAULT_MAX_TABLE = 2**27
#: The backward sweep (marginals, moments, samples) keeps every table: it refuses when
#: their entries add up to more than this many times the table cap.
BACKWARD_STORE = 4
_BLOCK_AXES = 10            # a kernel block spans the last 10 output axes (1024 entries)
_PARALLEL_MIN = 2**14       # smaller outputs run on one thread
_ORDER_BUDGET = 2 * 10**6   # word operations one greedy order search may spend on scores
_PLAN_CACHE_SIZE = 8
_PLANS = {}                 # (structure key) -> EliminationPlan, least recently used first
_GATHER, _CONTIGUOUS, _CONSTANT = 0, 1, 2


@dataclass(frozen=True)
class Cost:
    """What an elimination order costs, computed before any table is built.

    Attributes
    ----------
    width : int
        Most neighbours a unit has when it is eliminated (the treewidth of the order).
    largest_table : float
        Entries of the largest joint table, ``2^(width + 1)`` for binary units.
    stored_entries : float
        Entries of all tables the order produces (what the backward sweep keeps).
    operations : float
        Table entries read by all contractions (joint entries times tables in the bucket).
    n_closed_form : int
        Units whose bucket holds only their own field and couplings.
    """

    width: int
    largest_table: float
    stored_entries: float
    operations: float
    n_closed_form: int


@dataclass
class _Step:
    """One contraction: unit ``unit`` summed out of its bucket into a table over ``scope``."""

    unit: int                   # the unit summed out
    scope: np.ndarray           # its neighbours when eliminated, in elimination order
    edges: np.ndarray           # edge ids in the bucket (first end eliminated here)
    edge_axis: np.ndarray       # joint axis (1..) of the other end of each bucket edge
    incoming: list              # steps whose tables are in the bucket
    axes: list                  # joint axes of each input table (local table first)
    stride: np.ndarray          # (1 + len(incoming), 1 + len(scope)) strides over the joint
    inner_axes: int
    inner_offset: np.ndarray    # (1 + len(incoming), n_inner)
    kind: np.ndarray            # (1 + len(incoming),)


class EliminationPlan:
    """An elimination order over the free units of a graph, and its contractions.

    The structure depends only on the graph and on which units are free; the numbers
    (fields and couplings in binary form, see module docstring) come with each call.

    Parameters
    ----------
    n_units : int
        Units of the flat graph.
    edges : ndarray of shape (n_edges, 2)
        Coupled pairs ``i < j``.
    free : ndarray of bool, shape (n_units,)
        Units to sum out (the others are clamped: their couplings are folded into fields
        by the caller and their edges are ignored here).
    max_table : int
        Refuse (``ValueError``) an order whose largest table would exceed this many entries.
    backward : bool
        Whether the backward sweep will run: then also refuse when all tables together
        exceed ``BACKWARD_STORE * max_table`` entries.
    what : str
        What the caller computes, for the refusal message.
    limit_name : str
        The caller's name for the cap, for the refusal message.
    """

    def __init__(self, n_units: int, edges: np.ndarray, free: np.ndarray, *,
                 max_table: int = DEFAULT_MAX_TABLE, backward: bool = False,
                 what: str = "log Z", limit_name: str = "max_table"):
        if isinstance(max_table, bool) or not isinstance(max_table, (int, np.integer)):
            raise TypeError(f"max_table must be an int, got {max_table!r}")
        if max_table < 2:
            raise ValueError(f"max_table must be >= 2, got {max_table}")
        self.n_units = int(n_units)
        self.free_units = np.flatnonzero(free)
        self.edges = np.asarray(edges, np.int64).reshape(-1, 2)
        free_edge = free[self.edges[:, 0]] & free[self.edges[:, 1]]
        self.free_edges = np.flatnonzero(free_edge)
        local = np.full(self.n_units, -1, np.int64)
        local[self.free_units] = np.arange(len(self.free_units))
        pairs = local[self.edges[free_edge]]

        order, scopes, self.cost = _best_order(len(self.free_units), pairs, max_table)
        self.order = self.free_units[order]
        self.width = self.cost.width
        budget = (self.cost.largest_table > max_table
                  or (backward and self.cost.stored_entries > BACKWARD_STORE * max_table))
        if budget:
            held = (f"a largest table of 2^{self.width + 1} = {self.cost.largest_table:.3g} "
                    f"entries over {self.width + 1} units")
            if self.cost.largest_table <= max_table:
                held = (f"{self.cost.stored_entries:.3g} table entries kept for the backward "
                        f"sweep (more than {BACKWARD_STORE} x max_table)")
            raise ValueError(
                f"exact elimination for {what} would need {held}: the best elimination order "
                f"found has treewidth {self.width} over {len(self.free_units)} free units, "
                f"more than {limit_name}={max_table}; estimate log Z with "
                f"pe.ais.log_partition instead, or raise {limit_name}= if you have the memory"
            )
        self._build_steps(order, scopes, pairs, local)

    # -- structure ------------------------------------------------------------------------
    def _build_steps(self, order, scopes, pairs, local):
        n_free = len(order)
        position = np.empty(n_free, np.int64)
        position[order] = np.arange(n_free)
        # each edge goes to the bucket of its first eliminated end
        first = np.where(position[pairs[:, 0]] < position[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
        other = pairs[:, 0] + pairs[:, 1] - first
        by_bucket = np.argsort(position[first], kind="stable")
        starts = np.searchsorted(position[first][by_bucket], np.arange(n_free + 1))
        incoming = [[] for _ in range(n_free)]
        self.steps = []
        for s, v in enumerate(order):
            scope = np.array(sorted(scopes[s], key=position.__getitem__), np.int64)
            if len(scope):
                incoming[position[scope[0]]].append(s)
            bucket = by_bucket[starts[s]:starts[s + 1]]
            axis = {u: a + 1 for a, u in enumerate(scope)}
            edge_axis = np.array([axis[u] for u in other[bucket]], np.int64)
            # axis 0 is v; an incoming table's scope starts with v (its first eliminated unit)
            tables = [np.concatenate([[0], np.sort(edge_axis)]).astype(np.int64)]
            tables += [np.array([0] + [axis[u] for u in self.steps[t].scope[1:]], np.int64)
                       for t in incoming[s]]
            stride, inner_axes, offset, kind = _addressing(tables, len(scope))
            self.steps.append(_Step(int(v), scope, self.free_edges[bucket], edge_axis,
                                    incoming[s], tables, stride, inner_axes, offset, kind))
        for step in self.steps:            # flat unit ids from here on
            step.unit = int(self.free_units[step.unit])
            step.scope = self.free_units[step.scope]

    # -- numbers --------------------------------------------------------------------------
    def _local_table(self, step, field, coupling):
        """``x_v (f_v + sum_u c_vu x_u)`` over ``(x_v, x_u...)``, the bucket edges' ends sorted."""
        order = np.argsort(step.edge_axis, kind="stable")
        g = np.array([field[step.unit]])
        for c in coupling[step.edges[order]]:
            g = (g[:, None] + np.array([0.0, c])).ravel()
        return np.concatenate([np.zeros_like(g), g])

    def _contract(self, step, inputs, out, n_threads, marginal=None, joint=None):
        threads = n_threads if out.size >= _PARALLEL_MIN else 1
        _eliminate.contract(inputs, step.stride, np.full(len(step.scope) + 1, 2, np.int64),
                            step.inner_axes, step.inner_offset, step.kind, out,
                            marginal, joint, threads)

    def forward(self, field: np.ndarray, coupling: np.ndarray, *, keep: bool = False,
                n_threads: int = 1):
        """``log sum_x exp(sum_i f_i x_i + sum_e c_e x_i x_j)`` over the free units.

        ``field`` has one entry per unit (clamped units' entries are not read) and
        ``coupling`` one per edge of the graph. Returns ``(log_sum, tables)``; ``tables``
        holds every step's output when ``keep`` (for :meth:`backward` and :meth:`sample`).
        """
        tables = [None] * len(self.steps)
        total = 0.0
        for s, step in enumerate(self.steps):
            inputs = [self._local_table(step, field, coupling)]
            inputs += [tables[t] for t in step.incoming]
            out = np.empty(1 << len(step.scope))
            self._contract(step, inputs, out, n_threads)
            tables[s] = out
            if not len(step.scope):
                total += out[0]
            if not keep:
                for t in step.incoming:
                    tables[t] = None
        return total, tables

    def backward(self, field: np.ndarray, coupling: np.ndarray, tables, *, n_threads: int = 1):
        """Unit marginals ``P(x_i = 1)`` and edge marginals ``P(x_i = 1, x_j = 1)``.

        Entries of clamped units and of edges with a clamped end are left at 0.
        """
        p_unit = np.zeros(self.n_units)
        p_pair = np.zeros(len(self.edges))
        marginal = [None] * len(self.steps)
        for s in range(len(self.steps) - 1, -1, -1):
            step = self.steps[s]
            d = len(step.scope)
            inputs = [self._local_table(step, field, coupling)]
            inputs += [tables[t] for t in step.incoming]
            joint = np.empty(2 << d)
            self._contract(step, inputs, tables[s],
                           n_threads, np.ones(1) if d == 0 else marginal[s], joint)
            marginal[s] = tables[s] = None
            on = joint[1 << d:]
            p_unit[step.unit] = on.sum()
            p_pair[step.edges] = [_axis_sum(on, d, a - 1)[1] for a in step.edge_axis]
            cube = joint.reshape((2,) * (d + 1))
            for t, axes in zip(step.incoming, step.axes[1:]):
                drop = tuple(np.setdiff1d(np.arange(d + 1), axes))
                marginal[t] = cube.sum(axis=drop).ravel() if drop else joint
        return p_unit, p_pair

    def sample(self, field: np.ndarray, coupling: np.ndarray, tables, uniforms: np.ndarray):
        """Exact samples of the free units by backward sampling, binary values.

        ``uniforms`` has shape ``(n_samples, n_free)``; column ``k`` draws the ``k``-th unit
        sampled, which is the ``k``-th unit of the *reversed* elimination order:
        ``x_v = [u < P(x_v = 1 | units eliminated after v)]``.
        Returns ``(n_samples, n_units)`` with zeros at clamped units.
        """
        n = uniforms.shape[0]
        x = np.zeros((n, self.n_units), np.int64)
        for k, s in enumerate(range(len(self.steps) - 1, -1, -1)):
            step = self.steps[s]
            inputs = [self._local_table(step, field, coupling)]
            inputs += [tables[t] for t in step.incoming]
            index = x[:, step.scope] @ step.stride[:, 1:].T          # (n, n_tables)
            logit = np.zeros(n)
            for f, table in enumerate(inputs):
                logit += table[index[:, f] + step.stride[f, 0]] - table[index[:, f]]
            with np.errstate(over="ignore"):
                x[:, step.unit] = uniforms[:, k] * (1.0 + np.exp(-logit)) < 1.0
        return x


class Elimination:
    """Elimination over a model with some groups clamped: what ``pe.exact`` dispatches to.

    The same face as the enumeration plan of :mod:`pgm_energy.exact`: ``clamped_flat``,
    ``log_sum`` and ``mean_moments`` per clamped row, plus ``sample``. Clamped units enter as
    fields: ``f = field + A x_clamped`` and ``const = const + x.field + x.A.x / 2`` in
    binary form.

    Parameters
    ----------
    model : EnergyModel
    clamped_groups : sequence of str
        Groups held at given values (the visible ones for the free energy; none for log Z).
    beta : float
    max_table, backward, what, limit_name
        As for :class:`EliminationPlan`.
    n_threads : int
        OpenMP threads for the large contractions.

    Plans (orders and addressing, no numbers) are kept for the last ``_PLAN_CACHE_SIZE``
    graph structures, so repeated calls on one model (a training loop) plan once.
    """

    def __init__(self, model, clamped_groups, beta: float, *, max_table: int,
                 n_threads: int, backward: bool = False, what: str = "log Z",
                 limit_name: str = "max_table"):
        self.model = model
        self.graph = graph = model.graph
        graph.require_compiled("variable elimination (method='eliminate')")
        self.form = graph.binary_form(beta)
        self.n_units = graph.n_units
        self.clamped_groups = list(clamped_groups)
        self.n_threads = n_threads
        self.clamped = np.zeros(graph.n_units, bool)
        for g in self.clamped_groups:
            self.clamped[graph.offsets[g]:graph.offsets[g] + model.units[g].n] = True
        key = (graph.n_units, graph.edges.tobytes(), self.clamped.tobytes(), max_table, backward)
        self.plan = _PLANS.pop(key, None)
        if self.plan is None:
            self.plan = EliminationPlan(graph.n_units, graph.edges, ~self.clamped,
                                        max_table=max_table, backward=backward, what=what,
                                        limit_name=limit_name)
        _PLANS[key] = self.plan                 # most recently used last
        while len(_PLANS) > _PLAN_CACHE_SIZE:
            _PLANS.pop(next(iter(_PLANS)))
        self.cost = self.plan.cost
        self.adjacency = symmetric_adjacency(graph.n_units, graph.edges, self.form.coupling)

    def clamped_flat(self, X) -> np.ndarray:
        """Flat binary-form state with the clamped groups from ``X``, zeros elsewhere."""
        state = self.model.as_state(X, self.clamped_groups, what="X")
        x = np.zeros((next(iter(state.values())).shape[0], self.n_units))
        for g, arr in state.items():
            x[:, self.graph.offsets[g]:self.graph.offsets[g] + arr.shape[1]] = arr
        return np.where(self.graph.spin, (x + 1.0) / 2.0, x) * self.clamped

    def _conditioned(self, x):
        induced = (self.adjacency @ x.T).T
        const = self.form.const + x @ self.form.field + 0.5 * np.einsum("bi,bi->b", x, induced)
        return self.form.field + induced, const

    def log_sum(self, x) -> np.ndarray:
        """``log sum over free units of exp(-beta E)`` for each clamped row of ``x``."""
        fields, const = self._conditioned(x)
        return np.array([c + self.plan.forward(f, self.form.coupling,
                                               n_threads=self.n_threads)[0]
                         for f, c in zip(fields, const)])

    def mean_moments(self, x):
        """Native moments ``E[s_i]``, ``E[s_i s_j]`` averaged over the clamped rows of ``x``."""
        fields, _ = self._conditioned(x)
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

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """``n_samples`` exact samples of all units (none clamped), native values, flat."""
        field, coupling = self.form.field, self.form.coupling
        _, tables = self.plan.forward(field, coupling, keep=True, n_threads=self.n_threads)
        uniforms = rng.random((n_samples, len(self.plan.free_units)))
        x = self.plan.sample(field, coupling, tables, uniforms).astype(float)
        return np.where(self.graph.spin, 2.0 * x - 1.0, x)


def _axis_sum(flat, d, a):
    """Sum a ``2^d`` table (axis 0 most significant) over every axis but ``a``: shape (2,)."""
    return flat.reshape(1 << a, 2, 1 << (d - 1 - a)).sum(axis=(0, 2))


def _addressing(tables, n_out):
    """Kernel addressing of binary tables over joint axes ``0..n_out``.

    ``tables[f]`` lists the joint axes of table ``f`` in its own order (most significant
    first). Returns strides ``(n_tables, 1 + n_out)``, the number of trailing output axes in
    a block, the in-block offsets ``(n_tables, 2^inner)`` and each table's read kind.
    """
    stride = np.zeros((len(tables), n_out + 1), np.int64)
    for f, axes in enumerate(tables):
        stride[f, np.asarray(axes, np.int64)] = 1 << np.arange(len(axes) - 1, -1, -1)
    inner = min(n_out, _BLOCK_AXES)
    bits = (np.arange(1 << inner)[:, None] >> np.arange(inner - 1, -1, -1)) & 1
    offset = np.ascontiguousarray(bits @ stride[:, n_out + 1 - inner:].T).T
    kind = np.full(len(tables), _GATHER, np.int32)
    kind[np.all(offset == np.arange(1 << inner), axis=1)] = _CONTIGUOUS
    kind[np.all(offset == 0, axis=1)] = _CONSTANT
    return stride, inner, np.ascontiguousarray(offset, np.int64), kind


def _cost(scopes, order):
    """:class:`Cost` of an order from the scopes its steps produce."""
    n_free = len(order)
    position = np.empty(n_free, np.int64)
    position[order] = np.arange(n_free)
    n_tables = np.ones(n_free)                     # the local table of each bucket
    closed = np.ones(n_free, bool)
    for scope in scopes:
        if scope:
            target = min(position[u] for u in scope)
            n_tables[target] += 1
            closed[target] = False
    size = np.array([2.0 ** len(s) for s in scopes])
    return Cost(width=max((len(s) for s in scopes), default=0),
                largest_table=float(2 * size.max()) if n_free else 1.0,
                stored_entries=float(size.sum()),
                operations=float(np.sum(2 * size * (n_tables + 1))),
                n_closed_form=int(closed.sum()))


def _bits(mask):
    """Indices of the set bits of a Python int, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def order_cost(n_units: int, edges, free=None, *, max_table: int = DEFAULT_MAX_TABLE) -> Cost:
    """:class:`Cost` of the elimination order the engine picks, without building anything.

    Parameters
    ----------
    n_units : int
    edges : array_like of shape (n_edges, 2)
    free : ndarray of bool, optional
        Units to sum out (default all).
    max_table : int
        The cap the order is searched under (units with more than ``log2(max_table)``
        neighbours are not scored).

    Examples
    --------
    >>> from pgm_energy.eliminate import order_cost
    >>> order_cost(4, [(0, 1), (1, 2), (2, 3), (3, 0)]).width   # a ring has treewidth 2
    2
    """
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    free = np.ones(n_units, bool) if free is None else np.asarray(free, bool)
    local = np.full(n_units, -1, np.int64)
    local[free] = np.arange(int(free.sum()))
    pairs = local[edges[free[edges[:, 0]] & free[edges[:, 1]]]]
    return _best_order(int(free.sum()), pairs, max_table)[2]


def _best_order(n_free, pairs, max_table):
    """The cheapest candidate order (largest table, then operations): (order, scopes, cost)."""
    if n_free == 0:
        return np.zeros(0, np.int64), [], Cost(0, 1.0, 0.0, 0.0, 0)
    cap_bits = int(np.floor(np.log2(max_table)))
    rank = _layout_rank(n_free, pairs)
    best, bound = None, n_free
    for criterion in ("layout", "min_degree", "min_fill"):
        for first in (False, True):
            found = _greedy_order(n_free, pairs, criterion, first, cap_bits, rank, bound)
            if found is None:
                continue
            candidate = (*found, _cost(found[1], found[0]))
            if best is None or ((candidate[2].largest_table, candidate[2].operations)
                                < (best[2].largest_table, best[2].operations)):
                best, bound = candidate, candidate[2].width
    return best


def _layout_rank(n, pairs):
    """Rank of each unit in the reverse Cuthill-McKee layout of the graph.

    Eliminating along a layout of bandwidth ``b`` has width at most ``b``: this is the sweep
    (transfer-matrix) order on lattices, where greedy orders are known to be poor.
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    adjacency = symmetric_adjacency(n, pairs, np.ones(len(pairs)))
    rank = np.empty(n, np.int64)
    rank[reverse_cuthill_mckee(adjacency, symmetric_mode=True)] = np.arange(n)
    return rank


def _greedy_order(n, pairs, criterion, closed_first, cap_bits, rank, bound):
    """Greedy elimination order on ``n`` units joined by ``pairs`` (local ids).

    ``criterion`` is ``"min_fill"`` (fewest fill edges, then fewest neighbours),
    ``"min_degree"`` (the reverse) or ``"layout"`` (by ``rank`` alone); ties go to the lower
    ``rank``. With ``closed_first``, a greedy maximal independent set (lowest degree first)
    is eliminated before everything else. Units with more than ``cap_bits`` neighbours are
    not scored (their tables are over the cap anyway). A search gives up (returns None) when
    a unit has more than ``bound`` neighbours (the width of the best order so far) or after
    ``_ORDER_BUDGET`` word operations on scores, so planning stays cheap next to the work.
    Returns ``(order, scopes)``: ``scopes[s]`` = the neighbours of ``order[s]`` when eliminated.
    Neighbourhoods are Python-int bitsets, so a step costs O(degree^2) word operations.
    """
    adj = [0] * n
    for i, j in pairs:
        adj[i] |= 1 << int(j)
        adj[j] |= 1 << int(i)
    first = np.zeros(n, bool)
    if closed_first:
        blocked = 0
        for u in sorted(range(n), key=lambda u: adj[u].bit_count()):
            if not blocked >> u & 1:
                first[u] = True
                blocked |= adj[u]

    def key(u):
        nb = adj[u]
        degree = nb.bit_count()
        if criterion == "layout":
            return (not first[u], rank[u])
        if degree > cap_bits:
            return (not first[u], 1, degree, degree, rank[u])
        fill = sum((nb & ~adj[w]).bit_count() - 1 for w in _bits(nb)) // 2
        score = (fill, degree) if criterion == "min_fill" else (degree, fill)
        return (not first[u], 0, *score, rank[u])

    work = 0
    version = [0] * n
    heap = [(key(u), 0, u) for u in range(n)]
    heapq.heapify(heap)
    done = 0
    order, scopes = [], []
    while heap:
        _, ver, v = heapq.heappop(heap)
        if done >> v & 1 or ver != version[v]:
            continue
        nb = adj[v]
        if nb.bit_count() > bound:
            return None
        order.append(v)
        scopes.append(list(_bits(nb)))
        done |= 1 << v
        touched = 0 if criterion == "layout" else nb      # units whose key changed
        for u in _bits(nb):
            adj[u] = (adj[u] | nb) & ~(1 << u) & ~(1 << v)
            if criterion == "min_fill":
                touched |= adj[u]
        for u in _bits(touched & ~done):
            version[u] += 1
            heapq.heappush(heap, (key(u), version[u], u))
            work += adj[u].bit_count()
        if work > _ORDER_BUDGET:
            return None
    return np.array(order, np.int64), scopes


def symmetric_adjacency(n_units, edges, weights):
    """CSR matrix with ``A_ij = A_ji = weights_e`` for each edge (folds clamped units)."""
    i, j = edges[:, 0], edges[:, 1]
    return sp.csr_matrix((np.concatenate([weights, weights]),
                          (np.concatenate([i, j]), np.concatenate([j, i]))),
                         shape=(n_units, n_units))
