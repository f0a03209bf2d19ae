"""Exact computation for small models: log Z, likelihood, expectations, gradient, marginals.

Everything here reduces to one operation on the flat graph: the log of the sum of
``exp(-beta E)`` over the free units while some units are clamped (none for ``log Z``, the
visible ones for the free energy), and the moments of the free units under that weighting.
Free units that are conditionally independent given the other free units are summed in
closed form (``softplus`` in the binary form); the rest are enumerated by the Gray-code kernel
in ``_exact.pyx``, in pieces that run on threads and combine exactly.

Models of small treewidth (lattices, chains, trees, sparse graphs of hundreds of units) go to
variable elimination instead (:mod:`pgm_energy.exact.elimination`). ``method="auto"`` estimates both
costs before any work (enumerated states, or table entries read by the contractions) and runs
the cheaper; ``"enumerate"`` and ``"eliminate"`` force one.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from .. import _exact
from .._checks import check_beta
from .elimination import DEFAULT_MAX_TABLE, Elimination, order_cost
from ..graph import independent_split, site_log_sum_exp, site_softmax
from ..model import EnergyModel

__all__ = ["log_partition", "log_likelihood", "expectations", "gradient", "marginals",
           "sample", "treewidth", "DEFAULT_MAX_STATES", "DEFAULT_MAX_TABLE", "METHODS"]

#: Values of ``method=``: pick by estimated cost, or force one engine.
METHODS = ("auto", "enumerate", "eliminate")

#: Default cap on enumerated states (after the closed-form sums); ``max_states=`` overrides.
DEFAULT_MAX_STATES = 2**32
_MIN_PIECE_BITS = 14      # pieces hold at least 2^14 states ...
_MAX_PREFIX_BITS = 6      # ... and there are at most 64 of them
_BATCH_CHUNK = 256
_MAX_GENERIC_BITS = 24    # user terms: their energy is tabulated over at most 2^24 states
_CODE_CHUNK = 1 << 14     # ... evaluated this many states at a time
# Elimination cost in units of one enumerated state-unit (each about 2-5 ns here): a table
# entry read costs about as much, a contraction step about 10^3 (its setup in the compiled
# sweep), measured on dense Boltzmann machines, grids, chains and RBMs.
_ENTRY_COST = 1.0
_STEP_OVERHEAD = 1_000


def log_partition(model: EnergyModel, beta: float = 1.0, *, method: str = "auto",
                  max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
                  n_threads: int | None = None) -> float:
    """Exact ``log Z = log sum_s exp(-beta E(s))`` over all joint states.

    Parameters
    ----------
    model : EnergyModel
    beta : float
        Inverse temperature (> 0).
    method : {"auto", "enumerate", "eliminate"}
        ``"auto"`` runs whichever of enumeration and variable elimination is estimated to be
        cheaper (see :mod:`pgm_energy.exact.elimination` for the cost model).
    max_states : int
        Refuse (``ValueError``) if more states than this would be enumerated after the
        closed-form sums; use ``pe.ais.log_partition`` for an estimate instead. Under
        ``"auto"`` it also caps the entries of an elimination table.
    max_table : int
        Refuse elimination when its largest table would have more entries than this
        (default ``2^27``, 1 GiB of float64); the message names the treewidth found.
    n_threads : int, optional
        Threads for large enumerations and contractions (default: all cores). The result
        does not depend on it.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> model = pe.RBM(3, 2, W=np.zeros((2, 3)))
    >>> bool(abs(pe.exact.log_partition(model) - 5 * np.log(2)) < 1e-12)
    True
    >>> grid = pe.Ising([(i, i + 1) for i in range(99)], couplings=0.4)  # 100 spins
    >>> bool(abs(pe.exact.log_partition(grid) - (np.log(2) + 99 * np.log(2 * np.cosh(0.4))))
    ...      < 1e-10)
    True
    """
    plan = _plan(model, (), beta, method, max_states, max_table, n_threads)
    return float(plan.log_sum(np.zeros((1, plan.n_units)))[0])


def log_likelihood(model: EnergyModel, X, *, beta: float = 1.0, method: str = "auto",
                   max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
                   n_threads: int | None = None):
    """Exact ``log P(x) = -F(x) - log Z`` for each sample, shape ``(batch,)``.

    ``X`` is an array when the model has one visible group, else a dict of visible groups.
    ``method``, ``max_states``, ``max_table``, ``n_threads``: as for :func:`log_partition`.
    """
    limits = dict(method=method, max_states=max_states, max_table=max_table,
                  n_threads=n_threads)
    log_z = log_partition(model, beta, **limits)
    return _hidden_log_sum(model, X, beta=beta, **limits)[0] - log_z


def expectations(model: EnergyModel, *, beta: float = 1.0, method: str = "auto",
                 max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
                 n_threads: int | None = None) -> dict:
    """``E_model[dE/dtheta]`` for every parameter, a dict shaped like ``model.params``.

    ``method``, ``max_states``, ``max_table``, ``n_threads``: as for :func:`log_partition`
    (elimination gets every moment from one forward and one backward sweep).
    """
    plan = _plan(model, (), beta, method, max_states, max_table, n_threads,
                 backward=True, what="expectations")
    return _mean_grads(plan, np.zeros((1, plan.n_units)))


def gradient(model: EnergyModel, X, *, beta: float = 1.0, method: str = "auto",
             max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
             n_threads: int | None = None) -> dict:
    """``d mean log P(X) / d theta = beta (E_model[dE/dtheta] - mean_x E_{h|x}[dE/dtheta])``.

    Entry by entry, shaped like ``model.params`` (for laterals: symmetric, zero diagonal).
    ``method``, ``max_states``, ``max_table``, ``n_threads``: as for :func:`log_partition`.
    """
    model_side = expectations(model, beta=beta, method=method, max_states=max_states,
                              max_table=max_table, n_threads=n_threads)
    plan = _plan(model, model.visible, beta, method, max_states, max_table, n_threads,
                 backward=True, what="the data side of the gradient")
    data_side = _mean_grads(plan, plan.clamped_flat(X))
    return {k: beta * (model_side[k] - data_side[k]) for k in model_side}


def _mean_grads(plan, x) -> dict:
    """``E[dE/dtheta]`` for every parameter, averaged over the clamped rows of ``x``."""
    if isinstance(plan, _Plan):
        return plan.mean_grads(x)
    return plan.graph.grad_from_moments(*plan.mean_moments(x))


def marginals(model: EnergyModel, *, beta: float = 1.0, pairwise: bool = False,
              method: str = "auto", max_states: int = DEFAULT_MAX_STATES,
              max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None):
    """Exact single-unit marginals: ``{group: P(unit on)}`` (on = 1, or +1 for spins).

    With ``pairwise=True``, returns ``(singles, edges, pair_moments)``: the dict above, the
    coupled pairs of the flat graph (``model.graph.edges``: flat unit indices ``i < j``,
    group ``g`` starting at ``model.graph.offsets[g]``) and ``E[s_i s_j]`` for each, in
    native values (spins +-1). ``method``, ``max_states``, ``max_table``, ``n_threads``: as
    for :func:`log_partition`; elimination gets all of them from one forward and one
    backward sweep.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> chain = pe.Ising([(0, 1), (1, 2)], couplings=0.5)
    >>> singles, edges, pairs = pe.exact.marginals(chain, pairwise=True, method="eliminate")
    >>> bool(abs(pairs[0] - np.tanh(0.5)) < 1e-12)
    True
    """
    plan = _plan(model, (), beta, method, max_states, max_table, n_threads,
                 backward=True, what="marginals")
    m_unit, m_pair = plan.mean_moments(np.zeros((1, plan.n_units)))
    p_on = plan.graph.to_bits(m_unit)
    singles = {g: p_on[plan.graph.slots(g)].reshape(u.feature_shape)
               for g, u in model.units.items()}
    return (singles, plan.graph.edges.copy(), m_pair) if pairwise else singles


def sample(model: EnergyModel, n_samples: int, *, rng=None, beta: float = 1.0,
           max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None) -> dict:
    """Exact independent samples of all units, ``{group: (n_samples, n)}`` in native values.

    Backward sampling through variable elimination: after the forward sweep, units are drawn
    in reverse elimination order from ``P(s_v | units eliminated after v)``, which the tables
    of ``v``'s bucket give exactly. One uniform per unit and sample, drawn at once as
    ``rng.random((n_samples, n_units))`` (column ``k`` for the ``k``-th unit drawn). Refused
    like :func:`marginals` (the sweep keeps all tables) beyond ``max_table``.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> ring = pe.Ising([(0, 1), (1, 2), (2, 0)], couplings=0.5)
    >>> pe.exact.sample(ring, 4, rng=0)["s"].shape
    (4, 3)
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise TypeError(f"n_samples must be an int, got {n_samples!r}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    gen = np.random.default_rng(rng)
    if isinstance(model, EnergyModel) and model.graph.categorical.any():
        raise ValueError("pe.exact.sample draws through variable elimination, which sums "
                         "binary and spin units; for a model with categorical units use "
                         "pe.GibbsSampler (pe.testing.check_sampler checks it against the "
                         "exact distribution)")
    plan = _plan(model, (), beta, "eliminate", DEFAULT_MAX_STATES, max_table, n_threads,
                 backward=True, what="samples")
    return plan.graph.decode(plan.sample(int(n_samples), gen))


def treewidth(model: EnergyModel) -> int:
    """Width of the elimination order the engine would use for ``log Z``.

    The most neighbours a unit has when it is summed out (an upper bound of the graph's
    treewidth; the largest table spans ``width + 1`` units). Computed without building a
    table, so it also answers for models that elimination refuses.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> pe.exact.treewidth(pe.Ising([(i, i + 1) for i in range(9)]))
    1
    """
    if not isinstance(model, EnergyModel):
        raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
    graph = model.graph
    return order_cost(graph.n_units, graph.edges).width


def _hidden_log_sum(model, X, *, beta=1.0, method="auto", max_states=DEFAULT_MAX_STATES,
                    max_table=DEFAULT_MAX_TABLE, n_threads=None):
    """``log sum_h exp(-beta E(x, h))`` per sample, and the plan used."""
    plan = _plan(model, model.visible, beta, method, max_states, max_table, n_threads,
                 what="the free energy")
    return plan.log_sum(plan.clamped_flat(X)), plan


def _plan(model, clamped_groups, beta, method, max_states, max_table, n_threads, *,
          backward=False, what="log Z"):
    """The enumeration :class:`_Plan` or an :class:`~pgm_energy.exact.elimination.Elimination`.

    ``"auto"`` builds both plans (no state is visited yet) and keeps the one with the lower
    estimated cost: ``2^m (1 + m + |A|)`` for enumerating ``m`` units with ``|A|`` summed in
    closed form; ``_ENTRY_COST`` per table entry read plus ``_STEP_OVERHEAD`` per contraction
    for elimination, which ``"auto"`` also holds to ``max_states`` table entries.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "enumerate" or (method == "auto" and isinstance(model, EnergyModel)
                                 and model.graph.generic_terms):
        return _Plan(model, clamped_groups, beta, max_states, n_threads)
    beta = check_beta(beta)
    if not isinstance(model, EnergyModel):
        raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
    model.check_params()
    options = dict(n_threads=_n_threads(n_threads), backward=backward, what=what)
    if method == "eliminate":
        return Elimination(model, clamped_groups, beta, max_table=max_table, **options)
    enumeration_error = None
    try:
        enumeration = _Plan(model, clamped_groups, beta, max_states, n_threads)
    except ValueError as exc:
        enumeration, enumeration_error = None, exc
    if max_table > max_states:
        options.update(max_table=int(max_states), limit_name="max_states")
    else:
        options.update(max_table=max_table)
    try:
        eliminating = Elimination(model, clamped_groups, beta, **options)
    except ValueError as exc:
        if enumeration is None:
            raise ValueError(f"{enumeration_error}; and {exc}") from exc
        return enumeration
    if enumeration is None:
        return eliminating
    enumeration_cost = 2.0 ** enumeration.log2_states * (1 + enumeration.m + len(enumeration.A))
    elimination_cost = (_ENTRY_COST * eliminating.cost.operations
                        + _STEP_OVERHEAD * len(eliminating.plan.steps))
    return eliminating if elimination_cost < enumeration_cost else enumeration


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
            clamped[graph.slots(g)] = True
        self.clamped = clamped
        free = np.flatnonzero(~clamped)
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        free_edge = ~clamped[ei] & ~clamped[ej]
        # Units read by generic terms are enumerated; their energy is a table over their
        # states (a mixed-radix code the kernel keeps as it moves units).
        generic_free = graph.generic & ~clamped
        self.generic_sites = np.unique(graph.site[generic_free])
        self.generic_clamped = bool(np.any(graph.generic & clamped))
        S, A = independent_split(free[~graph.generic[free]], graph.edges[free_edge],
                                  site=graph.site)
        S = np.union1d(S, np.flatnonzero(generic_free)).astype(np.int64)
        # Binary slots first, then categorical sites (each a contiguous run of slots).
        cat = graph.categorical
        self.S = np.concatenate([S[~cat[S]], S[cat[S]]])
        self.A = np.concatenate([A[~cat[A]], A[cat[A]]]).astype(np.int64)
        self.s_site_ptr = _site_ptr(graph, self.S)
        self.a_site_ptr = _site_ptr(graph, self.A)
        self.m = len(self.S)
        self.m_b = int(np.sum(~cat[self.S]))
        self.beta = beta
        radix = graph.site_size[self.generic_sites] + (graph.site_size[self.generic_sites] == 1)
        self.generic_radix = radix
        n_codes = float(np.prod(radix.astype(float)))
        if n_codes > 2.0 ** _MAX_GENERIC_BITS:
            raise ValueError(
                f"exact computation tabulates the energy of user terms over the states of the "
                f"{len(radix)} free units they read ({n_codes:.3g} entries), more than "
                f"2^{_MAX_GENERIC_BITS}; give the term a compile() method, or estimate log Z "
                "with pe.ais.log_partition")
        #: log2 of the number of enumerated states (after the closed-form sums).
        self.log2_states = self.m_b + float(np.sum(np.log2(np.diff(self.s_site_ptr))))
        states = 2.0 ** self.log2_states
        if self.log2_states > 62 or states > max_states:
            sizes, counts = np.unique(np.diff(self.s_site_ptr), return_counts=True)
            count = f"2^{self.m_b}" + "".join(f" x {k}^{c}" for k, c in zip(sizes, counts))
            raise ValueError(
                f"exact computation would enumerate {count} = {states:.3g} states (after summing "
                f"{len(np.unique(graph.site[self.A]))} conditionally independent units in "
                f"closed form), more than max_states={max_states}; estimate log Z with "
                "pe.ais.log_partition instead, or raise max_states= if you can wait"
            )
        # Pieces for threads: the top binary slots, then (when there are too few binary
        # slots) the last categorical sites, fixed by the piece number.
        wanted = int(np.clip(np.floor(self.log2_states) - _MIN_PIECE_BITS, 0, _MAX_PREFIX_BITS))
        self.n_prefix = min(wanted, self.m_b)
        self.n_fixed_sites = 0
        while self.n_pieces < 1 << wanted and self.n_fixed_sites < len(self.s_site_ptr) - 1:
            self.n_fixed_sites += 1

        # Symmetric binary coupling matrix, for fields induced by clamped units.
        n = graph.n_units
        c = self.form.coupling
        self.adjacency = sp.csr_matrix(
            (np.concatenate([c, c]), (np.concatenate([ei, ej]), np.concatenate([ej, ei]))),
            shape=(n, n))
        self._build_kernel_arrays(ei, ej, c)

    @property
    def n_pieces(self) -> int:
        """``2^n_prefix`` times the sizes of the ``n_fixed_sites`` last categorical sites."""
        sizes = np.diff(self.s_site_ptr)[len(self.s_site_ptr) - 1 - self.n_fixed_sites:]
        return (1 << self.n_prefix) * int(np.prod(sizes, dtype=np.int64))

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
        # Mixed-radix code of the generic-term units: site r with value v adds v * place_r.
        place = np.concatenate([[1], np.cumprod(self.generic_radix)[:-1]]).astype(np.int64)
        self.generic_place = place
        site_place = np.zeros(self.model.graph.n_sites, np.int64)
        site_place[self.generic_sites] = place
        graph = self.graph
        value = np.where(graph.categorical, np.arange(n) - graph.site_start[graph.site], 1)
        self.gen_step = np.ascontiguousarray((value * site_place[graph.site])[self.S], np.int64)

    # -- inputs ---------------------------------------------------------------------------
    def clamped_flat(self, X) -> np.ndarray:
        """Flat binary-form state with the clamped groups from ``X``, zeros elsewhere."""
        state = self.model.as_state(X, self.clamped_groups, what="X")
        flat = self.graph.encode(state)
        return self.graph.to_bits(flat) * self.clamped

    def _conditioned(self, x):
        """Fields of all units and the constant of log weight, given clamped values ``x``."""
        fields = self.form.field + (self.adjacency @ x.T).T
        const = self.form.const + x @ self.form.field + 0.5 * np.einsum(
            "bi,bi->b", x, (self.adjacency @ x.T).T)
        return fields, const

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
            -self.beta * self.graph.generic_energy(self._generic_rows(x_row, codes), self.model)
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
        """``log sum over free units of exp(-beta E)`` for each clamped row of ``x``."""
        out = np.empty(len(x))
        shared = None if self.generic_clamped else self.generic_table(x[0])
        for lo in range(0, len(x), _BATCH_CHUNK):
            fields, const = self._conditioned(x[lo:lo + _BATCH_CHUNK])
            closed = self._closed_log_sum(fields)
            for b in range(len(fields)):
                table = self.generic_table(x[lo + b]) if shared is None else shared
                if self.m:
                    out[lo + b] = const[b] + self._enumerate(fields[b], table)[0]
                else:
                    out[lo + b] = const[b] + closed[b] + (table[0] if len(table) else 0.0)
        return out

    def _enumerate(self, fields, table, moments=False, shift=0.0):
        args = (np.ascontiguousarray(fields[self.S]), *self.ss,
                np.ascontiguousarray(fields[self.A]), *self.sa, self.sa_first, self.gen_step,
                table, self.s_site_ptr, self.a_site_ptr, self.graph.n_edges, self.n_prefix, 0,
                self.n_pieces, self.n_fixed_sites)
        if moments:
            accs = _exact.enumerate_pieces(*args, moments=True, shift=shift,
                                           n_threads=self.n_threads)
            return tuple(acc.sum(axis=0) for acc in accs)
        top, total = _exact.enumerate_pieces(*args, n_threads=self.n_threads)
        peak = top.max()
        return (peak + np.log(np.sum(total * np.exp(top - peak))),)

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
        return np.concatenate([_sigmoid(f[:, :n_ab]),
                               site_softmax(f[:, n_ab:], np.diff(self.a_site_ptr))], axis=1)

    def mean_moments(self, x):
        """Native moments ``E[s_i]``, ``E[s_i s_j]`` averaged over the clamped rows of ``x``."""
        return self._moments(x)[:2]

    def mean_grads(self, x) -> dict:
        """``E[dE/dtheta]`` for every parameter (compiled and generic terms), averaged over
        the clamped rows of ``x``."""
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
            fields, const = self._conditioned(xb)
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
            q[:, self.free_edges] = q_free[:, self.free_edges]
            sum_unit += p.sum(axis=0)
            sum_pair += q.sum(axis=0)
        m_unit, m_pair = graph.native_moments(sum_unit / len(x), sum_pair / len(x))
        return m_unit, m_pair, {name: g / len(x) for name, g in generic.items()}


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


def _site_ptr(graph, slots):
    """Slot ranges, within ``slots`` (binary slots first, then whole categorical sites), of
    its categorical sites: ``(n_sites + 1,)`` int64 starting at the number of binary slots."""
    cat = graph.categorical[slots]
    sizes = graph.site_size[np.unique(graph.site[slots[cat]])]
    return np.concatenate([[np.sum(~cat)], np.sum(~cat) + np.cumsum(sizes)]).astype(np.int64)


def _csr(rows, cols, weights, eids, n_rows):
    """CSR arrays (ptr, idx, w, eid) sorted by row then column, for the kernel."""
    order = np.lexsort((cols, rows))
    ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return (ptr, np.ascontiguousarray(cols[order], np.int32),
            np.ascontiguousarray(weights[order], np.float64),
            np.ascontiguousarray(eids[order], np.int32))
