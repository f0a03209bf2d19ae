"""Exact sums over continuous units: Gaussian units integrated out, rectified units in closed form.

Write ``G`` for the free Gaussian slots and ``O`` for all other slots (discrete units,
held units, rectified units). The energy is quadratic in ``x_G``:

    E = E_O(o) + x_G^T A x_G / 2 - m(o)^T x_G,   m(o) = f_G + J o,

with ``A = diag(1/sigma^2) - C_GG`` the precision (:meth:`FlatGraph.continuous_precision`,
positive definite or refused), ``f_G`` the Gaussian units' fields and ``J`` their couplings
to ``O``. Integrating ``x_G`` out,

    log int exp(-beta E) dx_G = -beta E_red(o) + |G|/2 log(2 pi / beta) - log det A / 2,
    E_red(o) = E_O(o) - m(o)^T A^{-1} m(o) / 2,

and ``E_red`` is again quadratic in ``o``: fields ``J^T A^{-1} f_G`` and couplings
``K = J^T A^{-1} J`` among the neighbours of each connected block of ``G`` (a binary unit's
``K_ii o_i^2 = K_ii o_i`` is a field, a spin's a constant, a held value's a constant per row).
So the *reduced* problem is a discrete model the engines already solve, enumerated or
eliminated as before (:func:`~pgm_energy.exact.cost.make_plan` on a
:meth:`FlatGraph.fixed` graph over the same slots, the Gaussian slots held at 0 with no
couplings). Given ``o``, ``x_G ~ N(A^{-1} m(o), A^{-1} / beta)``: its moments follow from the
first and second moments of ``o``, its samples from those of ``o``, its mode is its mean.

Free rectified units (``pe.ReLU``, ``pe.DReLU``) must be conditionally independent given the
discrete units (no coupling to another free continuous unit). Each is summed in closed form,
``log int exp(beta (f x - u(x))) dx = unit.log_normaliser(f)``, a non-quadratic function of
its field, so with free discrete neighbours the discrete units are enumerated here, in numpy
chunks (:class:`RectifiedEnumeration`); with held neighbours only (the free energy of an RBM
with rectified hidden units) that is one state per row. A held continuous unit adds its
self energy ``-beta u(x)`` to the log weight.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.special import logsumexp

from ..graph import FlatGraph
from ..units import Gaussian, open_uniforms
from .plan import Plan

__all__ = ["Continuous", "RectifiedEnumeration", "MAX_RECTIFIED_STATES"]

#: Most discrete states the numpy enumeration beside rectified units visits per row.
MAX_RECTIFIED_STATES = 2**26
_CHUNK_ENTRIES = 2**22      # states x slots per chunk of that enumeration


class Continuous(Plan):
    """A plan for a graph with continuous units (see module docstring).

    Parameters
    ----------
    graph, clamped_groups, beta, n_threads
        As for :class:`~pgm_energy.exact.plan.Plan`.
    inner : callable
        ``inner(graph, clamped_mask)``: the engines' plan for the reduced discrete problem
        (:func:`~pgm_energy.exact.cost.make_plan` with the caller's options).
    max_states : int
        Cap on the states :class:`RectifiedEnumeration` visits per row.
    what : str
        What the caller computes, for the refusals.
    """

    def __init__(self, graph: FlatGraph, clamped_groups, beta: float, n_threads: int, *,
                 inner, max_states: int, what: str):
        super().__init__(graph, clamped_groups, beta, n_threads)
        gaussian = np.concatenate([np.full(u.width, isinstance(u, Gaussian))
                                   for u in graph.units.values()])
        free = ~self.clamped
        self.G = np.flatnonzero(free & gaussian)
        self.R = np.flatnonzero(free & graph.continuous & ~gaussian)
        _check_structure(graph, free, what)
        #: ``|G|/2 log(2 pi/beta) - log det A / 2`` and the constant ``c`` of ``E_red``
        #: (both 0 without free Gaussian units).
        self.gauss_norm = self.const_energy = 0.0
        self.reduced = graph if not len(self.G) else self._reduce(what)
        mask = self.clamped.copy()
        mask[self.G] = True
        if len(self.R):
            self.inner = RectifiedEnumeration(self.reduced, mask, self.R, beta,
                                              max_states=max_states, what=what)
        else:
            self.inner = inner(self.reduced, mask)

    # -- the reduction ------------------------------------------------------------------
    def _reduce(self, what: str):
        """The reduced graph; sets :attr:`gauss_norm` and :attr:`const_energy` and keeps
        ``A``'s Cholesky factor, ``f_G`` and ``J``."""
        graph, G, beta, n = self.graph, self.G, self.beta, self.graph.n_units
        precision = graph.continuous_precision(what, G)
        self.chol = cho_factor(precision, lower=True)
        in_g = np.zeros(n, bool)
        in_g[G] = True
        pos = np.full(n, -1)
        pos[G] = np.arange(len(G))
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        mixed = in_g[ei] != in_g[ej]
        g_end = np.where(in_g[ei], ei, ej)[mixed]
        o_end = np.where(in_g[ei], ej, ei)[mixed]
        self.f_G = graph.field[G]
        self.J = np.zeros((len(G), n))                  # m(o) = f_G + J o
        np.add.at(self.J, (pos[g_end], o_end), graph.coupling[mixed])
        self.neighbours = np.unique(o_end)
        self.mixed_edges = np.flatnonzero(mixed)
        self.gauss_edges = np.flatnonzero(in_g[ei] & in_g[ej])
        # E_red(o) = E_O(o) - (f + J o)^T S (f + J o) / 2, S = A^{-1}.
        J_N = self.J[:, self.neighbours]
        S_f = cho_solve(self.chol, self.f_G)
        K = J_N.T @ cho_solve(self.chol, J_N)                   # (|N|, |N|)
        field = graph.field.copy()
        field[G] = 0.0
        field[self.neighbours] += J_N.T @ S_f
        diag = np.diag(K).copy()
        kind_low = graph.low[self.neighbours]
        discrete_n = ~graph.continuous[self.neighbours]
        # o_i^2: = o_i for binary and one-hot slots (low 0, scale 1), = 1 for spins.
        spin = discrete_n & (kind_low == -1.0)
        as_field = discrete_n & ~spin
        field[self.neighbours[as_field]] += diag[as_field] / 2
        self.const_energy = -self.f_G @ S_f / 2 - diag[spin].sum() / 2
        #: Held continuous neighbours keep their K_cc x_c^2 / 2 (a constant per row).
        self.held_diag = np.where(graph.continuous[self.neighbours], diag, 0.0)
        # Couplings: the edges away from G, plus every pair of neighbours (kept even where
        # K is 0, so that their pair moments exist), except pairs within one site.
        a, b = np.triu_indices(len(self.neighbours), k=1)
        ni, nj = self.neighbours[a], self.neighbours[b]
        keep = graph.site[ni] != graph.site[nj]
        away = ~in_g[ei] & ~in_g[ej]
        keys = np.concatenate([ei[away] * n + ej[away], ni[keep] * n + nj[keep]])
        weights = np.concatenate([graph.coupling[away], K[a, b][keep]])
        unique, inverse = np.unique(keys, return_inverse=True)
        coupling = np.bincount(inverse.ravel(), weights=weights, minlength=len(unique))
        edges = np.stack([unique // n, unique % n], axis=1)
        reduced = FlatGraph.fixed(graph.units, field, edges, coupling)
        self.gauss_norm = (len(G) / 2 * np.log(2 * np.pi / beta)
                           - np.log(np.diag(self.chol[0])).sum())
        return reduced

    def _row_terms(self, x: np.ndarray, *, integral: bool = True) -> np.ndarray:
        """Per row: ``-beta u(x_c)`` of the held continuous units, ``beta K_cc x_c^2 / 2`` of
        those next to G, and the constant (without the Gaussian normaliser when
        ``integral`` is False: a maximum, not a sum)."""
        graph, beta = self.graph, self.beta
        out = np.zeros(len(x))
        for g, unit in graph.units.items():
            if unit.continuous:
                sl = graph.slots(g)
                held = self.clamped[sl]
                if held.any():
                    out -= beta * unit.unit_energy(x[:, sl])[:, held].sum(axis=1)
        if len(self.G):
            out += beta * (x[:, self.neighbours] ** 2) @ self.held_diag / 2
        return out - beta * self.const_energy + (self.gauss_norm if integral else 0.0)

    def _gaussian_mean(self, o: np.ndarray) -> np.ndarray:
        """``A^{-1} (f_G + J o)`` for native rows ``o`` ``(batch, n_units)``."""
        return cho_solve(self.chol, (self.f_G + o @ self.J.T).T).T

    # -- the plan interface -------------------------------------------------------------
    def log_sum(self, x):
        return self.inner.log_sum(x) + self._row_terms(x)

    def max_state(self, x):
        best, bits = self.inner.max_state(x)
        best = best + self._row_terms(x, integral=False)
        if len(self.G):
            bits = bits.copy()
            bits[:, self.G] = self._gaussian_mean(self.graph.from_bits(bits))
        return best, bits

    def sample(self, n_samples, rng, x=None):
        """Samples of the reduced problem, then ``x_G = A^{-1} m(o) + L^{-T} z / sqrt(beta)``
        with ``A = L L^T`` and ``z = rng.standard_normal((n_samples, |G|))`` drawn after."""
        x = np.zeros(self.n_units) if x is None else x
        flat = self.inner.sample(n_samples, rng, x)
        if len(self.G):
            z = rng.standard_normal((n_samples, len(self.G)))
            noise = solve_triangular(self.chol[0], z.T, lower=True, trans="T").T
            flat[:, self.G] = self._gaussian_mean(flat) + noise / np.sqrt(self.beta)
        return flat

    def mean_moments(self, x):
        return self._moments(x)[:2]

    def moments_with_squares(self, x):
        """:meth:`mean_moments` and ``E[s_i^2]`` per slot, averaged over the clamped rows of
        ``x``, in one pass: for a Gaussian unit ``(A^{-1})_gg / beta + E[mu_g^2]``, for a
        rectified one ``E[Var + mean^2 | d]``."""
        return self._moments(x)[:3]

    def mean_grads(self, x) -> dict:
        """``E[dE/dtheta]`` of the terms' parameters (from the moments) and of the learnable
        units' own (``"<group>.<name>"``): a held unit's ``du/dtheta`` at its value, a
        Gaussian one's from ``E[x^2]`` (its statistic), a rectified one's conditional
        expectation given the discrete units, averaged over them."""
        m_unit, m_pair, squares, rectified = self._moments(x)
        grads = self.graph.grad_from_moments(m_unit, m_pair)
        values = self.graph.from_bits(x)
        for g, unit in self.graph.units.items():
            if not (unit.continuous and unit.learn):
                continue
            slots = np.arange(self.graph.slots(g).start, self.graph.slots(g).stop)
            out = {name: np.zeros(unit.n) for name in unit.params}
            held = self.clamped[slots]
            if held.any():
                for name, v in unit.take(np.flatnonzero(held)).param_grad(
                        values[:, slots[held]]).items():
                    out[name][held] = v.mean(axis=0)
            gauss = np.isin(slots, self.G)
            if gauss.any():                  # u depends on x^2 only: E[du] = du(sqrt E[x^2])
                for name, v in unit.take(np.flatnonzero(gauss)).param_grad(
                        np.sqrt(squares[slots[gauss]])).items():
                    out[name][gauss] = v
            for name, v in rectified.get(g, {}).items():
                rect = np.isin(slots, self.R)
                out[name][rect] = v
            grads.update({f"{g}.{name}": v for name, v in out.items()})
        return grads

    def _moments(self, x):
        """``(E[s_i], E[s_i s_j] per edge, E[s_i^2], {group: E[du/dtheta] of its rectified
        units}`` averaged over the rows of ``x``."""
        if len(self.R):
            m_unit, m_pair_reduced, squares, rectified = self.inner.moments(x)
        else:
            m_unit, m_pair_reduced = self.inner.mean_moments(x)
            squares, rectified = _discrete_squares(self.graph, m_unit, x), {}
        if self.reduced is self.graph:
            return m_unit, m_pair_reduced, squares, rectified
        graph, G, N = self.graph, self.G, self.neighbours
        n = graph.n_units
        red = self.reduced
        key_red = red.edges[:, 0] * n + red.edges[:, 1]

        def pair(i, j):
            lo, hi = np.minimum(i, j), np.maximum(i, j)
            return m_pair_reduced[np.searchsorted(key_red, lo * n + hi)]

        # Second moments of o over the neighbours N: pairs from the reduced edges, 0 within a
        # categorical site, and the diagonal E[o_i^2].
        values = graph.from_bits(x)
        second = np.zeros((len(N), len(N)))
        a, b = np.triu_indices(len(N), k=1)
        keep = graph.site[N[a]] != graph.site[N[b]]
        second[a[keep], b[keep]] = pair(N[a[keep]], N[b[keep]])
        second += second.T
        square = np.where(graph.low[N] == -1.0, 1.0, m_unit[N])
        held_c = graph.continuous[N]
        square[held_c] = (values[:, N[held_c]] ** 2).mean(axis=0)
        second[np.diag_indices(len(N))] = square
        J_N, mean_o = self.J[:, N], m_unit[N]
        f = self.f_G
        S_f = cho_solve(self.chol, f)
        S_J = cho_solve(self.chol, J_N)                        # A^{-1} J_N
        mean_g = S_f + S_J @ mean_o
        m_unit = m_unit.copy()
        m_unit[G] = mean_g
        m_pair = np.empty(graph.n_edges)
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        away = np.ones(graph.n_edges, bool)
        away[self.mixed_edges] = away[self.gauss_edges] = False
        m_pair[away] = pair(ei[away], ej[away])
        pos_g = np.full(n, -1)
        pos_g[G] = np.arange(len(G))
        pos_n = np.full(n, -1)
        pos_n[N] = np.arange(len(N))
        # E[x_g o_j] = (A^{-1} (f E[o_j] + J E[o o_j]))_g.
        e = self.mixed_edges
        g_end = np.where(pos_g[ei[e]] >= 0, ei[e], ej[e])
        o_end = np.where(pos_g[ei[e]] >= 0, ej[e], ei[e])
        cross = np.outer(S_f, mean_o) + S_J @ second           # (|G|, |N|)
        m_pair[e] = cross[pos_g[g_end], pos_n[o_end]]
        # E[x_g x_h] = (A^{-1})_gh / beta + E[mu_g mu_h], mu = A^{-1} f + A^{-1} J o.
        cov = cho_solve(self.chol, np.eye(len(G))) / self.beta
        mu_mu = (np.outer(S_f, S_f) + np.outer(S_f, S_J @ mean_o)
                 + np.outer(S_J @ mean_o, S_f) + S_J @ second @ S_J.T)
        e = self.gauss_edges
        m_pair[e] = (cov + mu_mu)[pos_g[ei[e]], pos_g[ej[e]]]
        squares = squares.copy()
        squares[G] = np.diag(cov + mu_mu)
        return m_unit, m_pair, squares, rectified


class RectifiedEnumeration(Plan):
    """The discrete units enumerated in numpy chunks beside free rectified units summed in
    closed form (see module docstring).

    For each row, every state ``d`` of the free discrete sites gets the log weight
    ``lw(d) = const + f.d + sum_e c_e d_i d_j + sum_r log Z_r(f_r(d))`` (binary form of
    ``graph``, the rectified slots at 0 there), ``f_r`` the native field of rectified unit
    ``r``. Sums are two passes over chunks (the log normaliser, then the moments).
    """

    def __init__(self, graph, clamped, rectified, beta, *, max_states: int, what: str):
        super().__init__(graph, clamped, beta, 1)
        self.R = np.asarray(rectified)
        free = ~self.clamped
        free[self.R] = False
        sites = np.unique(graph.site[free])
        self.site_first = graph.site_start[sites]
        self.site_size = graph.site_size[sites]
        self.n_states = int(np.prod(np.where(self.site_size == 1, 2, self.site_size),
                                    dtype=np.float64))
        cap = min(int(max_states), MAX_RECTIFIED_STATES)
        if self.n_states > cap:
            raise ValueError(
                f"exact computation for {what} enumerates the {len(sites)} free discrete "
                f"units beside rectified (ReLU/DReLU) units in closed form: "
                f"{self.n_states:.3g} states, more than {cap} (max_states, at most "
                f"2^26 here); estimate log Z with pe.ais.log_partition instead")
        self.radix = np.where(self.site_size == 1, 2, self.site_size)
        self.place = np.concatenate([[1], np.cumprod(self.radix)[:-1]]).astype(np.int64)
        self._groups = []       # (group, slots of R in it, its kind restricted to them)
        for g, unit in graph.units.items():
            if unit.continuous:
                sl = graph.slots(g)
                inside = self.R[(self.R >= sl.start) & (self.R < sl.stop)]
                if len(inside):
                    self._groups.append((g, inside, unit.take(inside - sl.start)))

    def _states(self, x_row, lo, hi):
        """Bits ``(hi - lo, n_units)``: ``x_row`` with the free sites at states ``lo..hi``."""
        codes = np.arange(lo, hi, dtype=np.int64)
        bits = np.repeat(x_row[None, :], hi - lo, axis=0)
        digits = (codes[:, None] // self.place) % self.radix
        for k, (first, size) in enumerate(zip(self.site_first, self.site_size)):
            if size == 1:
                bits[:, first] = digits[:, k]
            else:
                bits[:, first:first + size] = digits[:, k, None] == np.arange(size)
        return bits

    def _chunks(self, x_row):
        step = max(1, _CHUNK_ENTRIES // max(self.n_units, 1))
        for lo in range(0, self.n_states, step):
            bits = self._states(x_row, lo, min(lo + step, self.n_states))
            native = self.graph.from_bits(bits)
            fields = self.graph.field + (self.graph.adjacency() @ native.T).T
            lw = (self.form.const + bits @ self.form.field
                  + 0.5 * np.einsum("bi,bi->b", bits, (self.coupling_matrix() @ bits.T).T))
            yield bits, native, fields, lw

    def _closed(self, fields, how):
        """Per state, the rectified units' ``how``: ``"log"`` (sum of log normalisers),
        ``"peak"`` (sum of ``beta`` times peaks), or the per-unit ``"mean"``, ``"variance"``
        or ``"mode"``."""
        parts = []
        for _, slots, unit in self._groups:
            f = fields[:, slots]
            if how == "log":
                parts.append(unit.log_normaliser(f, self.beta).sum(axis=1))
            elif how == "peak":
                parts.append(self.beta * unit.peak(f).sum(axis=1))
            else:
                parts.append(unit.mode(f) if how == "mode" else getattr(unit, how)(f, self.beta))
        if how in ("log", "peak"):
            return np.sum(parts, axis=0)
        return np.concatenate(parts, axis=1)

    def log_sum(self, x):
        return np.array([self._row_log_sum(row) for row in x])

    def _row_log_sum(self, row):
        return logsumexp([logsumexp(lw + self._closed(fields, "log"))
                          for _, _, fields, lw in self._chunks(row)])

    def mean_moments(self, x):
        return self.moments(x)[:2]

    def moments(self, x):
        """``(E[s_i], E[s_i s_j] per edge, E[s_i^2], {group: {name: E[du/dtheta]}})``
        averaged over the rows of ``x``; a rectified unit's ``E[. | d]`` is its conditional
        mean (variance, :meth:`ContinuousUnits.conditional_param_grad`), the last for groups
        built with ``learn=True``."""
        graph = self.graph
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        r_slots = np.concatenate([s for _, s, _ in self._groups])
        unit_sum, pair_sum = np.zeros(self.n_units), np.zeros(graph.n_edges)
        square_sum = np.zeros(self.n_units)
        learned = {g: {name: np.zeros(len(slots)) for name in unit.params}
                   for g, slots, unit in self._groups if graph.units[g].learn}
        for row in x:
            total = self._row_log_sum(row)
            for _, native, fields, lw in self._chunks(row):
                p = np.exp(lw + self._closed(fields, "log") - total)
                native = native.copy()
                native[:, r_slots] = self._closed(fields, "mean")
                unit_sum += p @ native
                pair_sum += p @ (native[:, ei] * native[:, ej])
                squares = native ** 2
                squares[:, r_slots] += self._closed(fields, "variance")
                square_sum += p @ squares
                for g, slots, unit in self._groups:
                    if g in learned:
                        for name, v in unit.conditional_param_grad(fields[:, slots],
                                                                   self.beta).items():
                            learned[g][name] += p @ v
        learned = {g: {name: v / len(x) for name, v in grads.items()}
                   for g, grads in learned.items()}
        return unit_sum / len(x), pair_sum / len(x), square_sum / len(x), learned

    def max_state(self, x):
        r_slots = np.concatenate([s for _, s, _ in self._groups])
        best = np.full(len(x), -np.inf)
        out = np.zeros_like(x)
        for b, row in enumerate(x):
            for bits, _, fields, lw in self._chunks(row):
                score = lw + self._closed(fields, "peak")
                k = int(np.argmax(score))
                if score[k] > best[b]:
                    best[b] = score[k]
                    out[b] = bits[k]
                    out[b, r_slots] = self._closed(fields[k:k + 1], "mode")[0]
        return best, out

    def sample(self, n_samples, rng, x=None):
        """Discrete states by inverse CDF over their weights (``rng.random(n_samples)``),
        then each rectified unit by its quantile at ``open_uniforms(rng, (n_samples, |R|))``."""
        row = np.zeros(self.n_units) if x is None else x
        log_weights = np.concatenate([lw + self._closed(fields, "log")
                                      for _, _, fields, lw in self._chunks(row)])
        cdf = np.cumsum(np.exp(log_weights - logsumexp(log_weights)))
        picks = np.minimum(np.searchsorted(cdf, rng.random(n_samples) * cdf[-1], side="right"),
                           self.n_states - 1)
        bits = np.concatenate([self._states(row, k, k + 1) for k in picks]) if n_samples \
            else np.zeros((0, self.n_units))
        native = self.graph.from_bits(bits)
        fields = (self.graph.field + (self.graph.adjacency() @ native.T).T)
        u = open_uniforms(rng, (n_samples, len(self.R)))
        column = 0
        for _, slots, unit in self._groups:
            native[:, slots] = unit.quantile(fields[:, slots], u[:, column:column + len(slots)],
                                             self.beta)
            column += len(slots)
        return native


def _discrete_squares(graph: FlatGraph, m_unit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``E[s_i^2]`` of discrete and held slots: ``E[s_i]`` for binary and one-hot slots, 1 for
    spins, the mean of ``x_i^2`` over the rows for held continuous slots."""
    squares = np.where(graph.low == -1.0, 1.0, m_unit)
    held = graph.continuous
    squares[held] = (graph.from_bits(x)[:, held] ** 2).mean(axis=0)
    return squares


def _check_structure(graph: FlatGraph, free: np.ndarray, what: str) -> None:
    """Refuse what has no closed form: terms outside the flat graph (users' terms,
    ``pe.Interaction``) reading free continuous units (held ones are values like any other),
    and free rectified units coupled to another free continuous unit."""
    free_groups = {g for g, u in graph.units.items()
                   if u.continuous and free[graph.slots(g)].any()}
    for term in graph.generic_terms:
        if free_groups & set(term.groups):
            raise TypeError(
                f"{what}: {type(term).__name__} reads the free continuous group(s) "
                f"{sorted(free_groups & set(term.groups))} through its energy only, "
                "which has no closed-form integral; exact functions integrate continuous "
                "units under biases and pairwise terms (Bias, Pairwise, Lateral, "
                "SparsePairwise), and evaluate users' terms where those units are given "
                "(free_energy, evidence). Sample such models with pe.GibbsSampler")
    gaussian = np.concatenate([np.full(u.width, isinstance(u, Gaussian))
                               for u in graph.units.values()])
    free_c = free & graph.continuous
    rect = free_c & ~gaussian
    ei, ej = graph.edges[:, 0], graph.edges[:, 1]
    bad = (rect[ei] & free_c[ej]) | (free_c[ei] & rect[ej])
    if bad.any():
        i, j = graph.edges[np.argmax(bad)]
        names = [next(g for g in graph.units if graph.slots(g).start <= s < graph.slots(g).stop)
                 for s in (i, j)]
        raise ValueError(
            f"{what}: free rectified (ReLU/DReLU) units are summed in closed form only when "
            f"they are conditionally independent given the discrete units, but groups "
            f"{names[0]!r} and {names[1]!r} couple a rectified unit to another free "
            "continuous unit; hold one of them (evidence=), or estimate with pe.ais")
