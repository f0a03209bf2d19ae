"""Compilation of a model to one flat graph of units.

The compiled form of a model whose terms all compile is

    E(s) = -sum_i field_i s_i - sum_e coupling_e s_{i_e} s_{j_e}

over the *slots* of all groups laid end to end (group ``g`` starts at ``offsets[g]``), with each
unordered pair ``i_e < j_e`` once. A binary or spin unit is one slot holding its value; a
categorical unit with ``k`` values is ``k`` binary slots holding the one-hot vector of its value
(one *site*: slots of one site are never coupled, and samplers and the exact engine move a
site's slots together). Lateral couplings land with both entries ``U_ij + U_ji =
2 U_ij``, the convention of ``docs/maths.md``. The graph keeps, for each parameter, where each of its entries
lands, so that :meth:`FlatGraph.sync` re-reads live parameters with two ``bincount`` calls and
:meth:`FlatGraph.grad_from_moments` maps unit and pair moments back to ``E[dE/dtheta]``.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

#: Largest ``beta * max_s |E(s)|`` the engines accept. Beyond it, sums of fields (scaled by up
#: to 4 in the binary form and by 2^15 inside the Gibbs kernel) may overflow float64.
MAX_ENERGY = 1e300

__all__ = ["MAX_ENERGY", "FlatGraph", "BinaryForm", "ParameterSlots", "independent_split",
           "symmetric_csr", "site_log_sum_exp", "site_softmax"]


@dataclass
class _Landing:
    """Where the flattened entries of one parameter land (see ``LinearCoupling``)."""

    param: str
    array: np.ndarray          # the live parameter array
    pair: bool                 # lands on couplings (True) or fields (False)
    target: np.ndarray         # (size,) flat unit / edge index, -1 where the entry is dropped
    coef: np.ndarray           # (size,)


@dataclass(frozen=True, eq=False)
class ParameterSlots:
    """Where the flattened entries of one parameter land in the flat graph (read-only).

    Entry ``p`` of ``theta.ravel()`` adds ``coef[p] * theta_p`` to ``field[target[p]]`` (or,
    when ``pair``, to ``coupling[target[p]]``, an edge of ``FlatGraph.edges``); entries with
    ``target[p] == -1`` are dropped. So ``dE/dtheta_p = -coef[p] s_i`` (or ``-coef[p] s_i s_j``
    for the edge ``(i, j)``).
    """

    param: str
    pair: bool
    target: np.ndarray
    coef: np.ndarray


@dataclass
class BinaryForm:
    """The energy rewritten over binary variables ``x`` in {0, 1}, scaled by ``-beta``.

    ``-beta * E = const + sum_i field_i x_i + sum_e coupling_e x_{i_e} x_{j_e}``, where a spin
    is ``s = 2 x - 1`` and a binary unit is ``s = x``.
    """

    field: np.ndarray
    coupling: np.ndarray
    const: float


class FlatGraph:
    """The flat unit graph of a model (see module docstring).

    Parameters
    ----------
    model : EnergyModel
        A model whose terms all compile (``term.compile`` returns couplings).
    """

    def __init__(self, model):
        self._lay_out(model.units)
        n = self.n_units
        linears = []
        #: Terms that do not compile (a user's own ``energy``/``energy_grad`` only): they run
        #: through the generic path, and ``generic`` marks the units of the groups they read.
        self.generic_terms = []
        self.generic = np.zeros(n, dtype=bool)
        #: Units read by generic terms that have no product-factor form (or that read a
        #: continuous group): the Gibbs sampler updates them in Python from energy differences.
        self.python_units = np.zeros(n, dtype=bool)
        factors = []
        for term in model.terms:
            compiled = term.compile(self.offsets)
            if compiled is not None:
                linears.extend((term, lin) for lin in compiled)
                continue
            self.generic_terms.append(term)
            product_form = term.compile_factors(self.offsets)
            if any(model.units[g].width != model.units[g].n or model.units[g].continuous
                   for g in term.groups):
                # The kernels multiply values, not one-hot slots; continuous units read by
                # such terms take a Metropolis step (their conditional has no closed form).
                product_form = None
            for g in term.groups:
                units = self.slots(g)
                self.generic[units] = True
                self.python_units[units] |= product_form is None
            factors.extend((term, f) for f in product_form or ())
        self._build_factors(factors)

        # Unique unordered pairs over all pairwise couplings.
        keys = []
        for _, lin in linears:
            if lin.j is not None:
                i, j = np.asarray(lin.i, np.int64), np.asarray(lin.j, np.int64)
                keys.append(np.minimum(i, j) * n + np.maximum(i, j))
        all_keys = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        all_keys = all_keys[self.site[all_keys // n] != self.site[all_keys % n]]
        self.edges = np.stack([all_keys // n, all_keys % n], axis=1).astype(np.int64)
        self.n_edges = len(self.edges)

        self._landings = []
        for term, lin in linears:
            i = np.asarray(lin.i, np.int64).ravel()
            coef = np.broadcast_to(np.asarray(lin.coef, float), i.shape).copy()
            if lin.j is None:
                target = i
            else:
                j = np.asarray(lin.j, np.int64).ravel()
                key = np.minimum(i, j) * n + np.maximum(i, j)
                target = np.searchsorted(all_keys, key)
                target[self.site[i] == self.site[j]] = -1
            self._landings.append(
                _Landing(lin.param, term.params[lin.param], lin.j is not None, target, coef)
            )
        self.field = np.zeros(n)
        self.coupling = np.zeros(self.n_edges)
        self._csr = None           # symmetric_csr(n_units, edges), built on first use
        self._adjacency = None
        self._synced = None         # the parameter values the last sync read
        #: Counts the syncs that wrote new values: engines that keep their own copy of
        #: ``field`` or ``coupling`` refresh it when this moves.
        self.version = 0
        self.sync()

    @classmethod
    def fixed(cls, units, field: np.ndarray, edges: np.ndarray,
              coupling: np.ndarray) -> "FlatGraph":
        """A graph of given arrays over the slots of ``units``, with no terms behind them
        (nothing to sync, no parameters): the problem the exact engines solve after the
        Gaussian units are integrated out (:mod:`pgm_energy.exact.continuous`). ``edges``
        ``(n_edges, 2)`` with ``i < j``, sorted, in different sites."""
        graph = cls.__new__(cls)
        graph._lay_out(units)
        n = graph.n_units
        graph.generic_terms = []
        graph.generic = np.zeros(n, dtype=bool)
        graph.python_units = np.zeros(n, dtype=bool)
        graph._build_factors([])
        graph.edges = np.asarray(edges, np.int64).reshape(-1, 2)
        graph.n_edges = len(graph.edges)
        graph._landings = []
        graph.field = np.array(field, dtype=np.float64)
        graph.coupling = np.array(coupling, dtype=np.float64)
        graph._csr = graph._adjacency = None
        graph._synced = []
        graph.version = 0
        return graph

    def _lay_out(self, units) -> None:
        """Slots, sites and per-slot unit kinds of the groups ``units``."""
        self.units = dict(units)
        self.offsets = {}
        n = 0
        for g, grp in self.units.items():
            self.offsets[g] = n
            n += grp.width
        #: Number of slots (units, counting a categorical unit once per value).
        self.n_units = n
        #: Per slot, what its unit kind says (precomputed once): a slot holds
        #: ``low + scale * bit`` with ``bit`` in {0, 1} (binary 0, 1; spin -1, 2; a one-hot
        #: slot of a categorical unit 0, 1).
        self.low = np.concatenate([np.full(grp.width, float(grp.low))
                                   for grp in self.units.values()])
        self.scale = np.concatenate([np.full(grp.width, float(grp.scale))
                                     for grp in self.units.values()])
        #: Site (unit) of each slot, the first slot of each site and the sites' sizes: a
        #: site is one slot, or the ``k`` slots of a categorical unit.
        starts = [self.offsets[g] + np.arange(grp.n) * (grp.width // grp.n)
                  for g, grp in self.units.items()]
        self.site_start = np.append(np.concatenate(starts), n).astype(np.int64)
        self.site_size = np.diff(self.site_start)
        self.n_sites = len(self.site_size)
        self.site = np.repeat(np.arange(self.n_sites), self.site_size)
        #: Slots of categorical units.
        self.categorical = np.repeat(self.site_size > 1, self.site_size)
        #: Slots of continuous units (``pe.Gaussian``, ``pe.ReLU``, ``pe.DReLU``): one slot
        #: holding the value; their self energies stay with the unit kinds.
        self.continuous = np.concatenate([np.full(grp.width, grp.continuous)
                                          for grp in self.units.values()])

    def _build_factors(self, factors):
        """Product factors for the Gibbs kernels: members (n_factors, width) padded with -1,
        a unit -> factors CSR, and the live parameter behind each factor's weight."""
        width = max((f.members.shape[1] for _, f in factors), default=1)
        members = [np.pad(np.asarray(f.members, np.int64), ((0, 0), (0, width - f.members.shape[1])),
                          constant_values=-1) for _, f in factors]
        self.factor_members = (np.concatenate(members) if members
                               else np.zeros((0, width), np.int64)).astype(np.int32)
        self._factor_sources = [(term.params[f.param], np.asarray(f.coef, float))
                                for term, f in factors]
        self.factor_weight = np.zeros(len(self.factor_members))
        rows, cols = np.nonzero(self.factor_members >= 0)
        units = self.factor_members[rows, cols]
        order = np.lexsort((rows, units))
        self.factor_ptr = np.zeros(self.n_units + 1, np.int64)
        np.cumsum(np.bincount(units, minlength=self.n_units), out=self.factor_ptr[1:])
        self.factor_ids = rows[order].astype(np.int32)

    # -- slots ----------------------------------------------------------------------------
    def parameter_slots(self) -> list[ParameterSlots]:
        """Where every parameter's entries land, one :class:`ParameterSlots` per landing
        (a parameter may land more than once), in the order :meth:`sync` sums them."""
        return [ParameterSlots(land.param, land.pair, _read_only_view(land.target),
                               _read_only_view(land.coef)) for land in self._landings]

    def dense_coupling_index(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """For every edge, its flat index ``r * len(cols) + c`` in a dense
        ``(len(rows), len(cols))`` coupling matrix, ``r`` the position of its end in the
        slots ``rows`` and ``c`` of its other end in ``cols`` (every edge must join the two)."""
        pos = np.empty(self.n_units, np.int64)
        pos[rows] = np.arange(len(rows))
        pos[cols] = np.arange(len(cols))
        in_rows = np.zeros(self.n_units, bool)
        in_rows[rows] = True
        i, j = self.edges[:, 0], self.edges[:, 1]
        return pos[np.where(in_rows[i], i, j)] * len(cols) + pos[np.where(in_rows[i], j, i)]

    def slots(self, group: str) -> slice:
        """The flat slots of ``group``."""
        return slice(self.offsets[group], self.offsets[group] + self.units[group].width)

    def encode(self, state, groups=None, batch: int | None = None) -> np.ndarray:
        """Flat slots ``(batch, n_units)`` from native values ``{group: (batch, n)}``; the
        groups not in ``state`` (or not in ``groups``) are left 0."""
        groups = list(state) if groups is None else groups
        if batch is None:
            batch = len(next(iter(state.values()))) if state else 1
        flat = np.zeros((batch, self.n_units))
        for g in groups:
            flat[:, self.slots(g)] = self.units[g].encode(state[g])
        return flat

    def decode(self, flat: np.ndarray, groups=None) -> dict:
        """Native values ``{group: (batch, n)}`` of flat slots ``(batch, n_units)``."""
        groups = self.units if groups is None else groups
        return {g: self.units[g].decode(flat[:, self.slots(g)]) for g in groups}

    def to_bits(self, flat: np.ndarray) -> np.ndarray:
        """Bits ``(flat - low) / scale`` of slot values (the last axis holds the slots)."""
        return (flat - self.low) / self.scale

    def from_bits(self, bits: np.ndarray) -> np.ndarray:
        """Slot values ``low + scale * bits`` of bits (the last axis holds the slots)."""
        return self.low + self.scale * bits

    def unit_mean(self, field: np.ndarray, slots: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """``E[s_a | rest]`` of the slots ``slots`` (whole sites, in slot order) given their
        local fields ``field`` (batch, len(slots)), each unit independently: each group's unit
        kind says how (:meth:`UnitGroup.mean`: sigmoid, tanh, softmax per site)."""
        out = np.empty(np.shape(field))
        for g, grp in self.units.items():
            sl = self.slots(g)
            inside = (slots >= sl.start) & (slots < sl.stop)
            if inside.any():
                out[:, inside] = grp.mean(field[:, inside], beta)
        return out

    def require_compiled(self, what: str) -> None:
        """Raise ``TypeError`` if a term only has the generic path, naming ``what`` needs more."""
        if self.generic_terms:
            names = ", ".join(type(t).__name__ for t in self.generic_terms)
            raise TypeError(
                f"{what} needs every term compiled to the flat graph, but {names} only "
                "define(s) energy/energy_grad. pe.exact (enumeration), GibbsSampler "
                "(every schedule), pe.fit, pe.ais and model.conditional handle such terms; or "
                "give the term a compile() method")

    def require_discrete(self, what: str) -> None:
        """Raise ``TypeError`` if the model has continuous units, naming ``what`` cannot
        serve them."""
        if self.continuous.any():
            groups = [g for g, u in self.units.items() if u.continuous]
            raise TypeError(
                f"{what} serves discrete units only (binary, spin, categorical), but the "
                f"group(s) {groups} are continuous; pe.exact and model.free_energy "
                "integrate continuous units")

    def generic_energy(self, flat: np.ndarray, terms=None) -> np.ndarray:
        """Energy of the generic terms (or of ``terms``) for flat states ``(batch, n_units)``."""
        total = np.zeros(len(flat))
        terms = self.generic_terms if terms is None else terms
        if terms:
            state = self.decode(flat)
            for term in terms:
                total += term.energy(state)
        return total

    def generic_delta(self, flat: np.ndarray, unit: int, model) -> np.ndarray:
        """``E_generic(unit off) - E_generic(unit on)`` for each row of ``flat`` (batch, n),
        from the generic terms that read the unit's group (their ``delta_energy``); ``unit``
        is the slot of a binary or spin unit."""
        group = next(g for g, off in self.offsets.items()
                     if off <= unit < off + model.units[g].width)
        state = self.decode(flat)
        delta = np.zeros(len(flat))
        for term in self.generic_terms:
            if group in term.groups:
                delta -= term.delta_energy(state, group, unit - self.offsets[group],
                                           model.units[group].values)
        return delta

    def generic_choice_delta(self, flat: np.ndarray, group: str, model) -> np.ndarray:
        """``E_generic(x_i = 0) - E_generic(x_i = v)``, shape (batch, n, k), for every unit
        ``i`` and value ``v`` of the categorical ``group`` (the rest as in ``flat``)."""
        unit = model.units[group]
        state = self.decode(flat)
        out = np.zeros((len(flat), unit.n, unit.k))
        for term in self.generic_terms:
            if group in term.groups:
                for i in range(unit.n):
                    for v in range(1, unit.k):
                        out[:, i, v] -= term.delta_energy(state, group, i, (0, v))
        return out

    def sync(self) -> None:
        """Re-read the live parameters into ``field``, ``coupling``, the adjacency's weights
        and the product factors' weights.

        The new values are computed apart and written in place only where they differ, so a
        kernel reading this graph in another thread while it is re-synced with unchanged
        parameters never sees a half-built array. (Writing parameters while another thread
        samples or sums the same model is not supported: the result then mixes both.) When
        no parameter changed since the last sync, nothing is recomputed.
        """
        sources = [land.array for land in self._landings]
        sources += [theta for theta, _ in self._factor_sources]
        if self._synced is not None and all(
                np.array_equal(now, then) for now, then in zip(sources, self._synced)):
            return
        field = np.zeros(self.n_units)
        coupling = np.zeros(self.n_edges)
        with np.errstate(over="ignore", invalid="ignore"):     # checked just below
            for land in self._landings:
                keep = land.target >= 0
                out = coupling if land.pair else field
                out += np.bincount(land.target[keep],
                                   weights=(land.coef * land.array.ravel())[keep],
                                   minlength=out.size)
        factor_weight = (np.concatenate([coef * np.ravel(theta)
                                         for theta, coef in self._factor_sources])
                         if self._factor_sources else self.factor_weight)
        _check_energy_scale(_energy_bound(field, coupling, factor_weight), 1.0, "the model")
        _store(self.field, field)
        _store(self.coupling, coupling)
        _store(self.factor_weight, factor_weight)
        if self._adjacency is not None:
            _store(self._adjacency.data, coupling[self._csr[2]])
        self._synced = [np.array(source) for source in sources]
        self.version += 1

    def energy_bound(self) -> float:
        """An upper bound of ``max_s |E(s)|`` over the compiled terms: ``sum_i |field_i| +
        sum_e |coupling_e| + sum_f |factor weight_f|`` (every slot value lies in [-1, 1])."""
        return _energy_bound(self.field, self.coupling, self.factor_weight)

    def check_energy_scale(self, beta: float, what: str) -> None:
        """Raise ``ValueError`` if ``beta * max|E|`` may exceed :data:`MAX_ENERGY`."""
        _check_energy_scale(self.energy_bound(), beta, what)

    # -- continuous units ---------------------------------------------------------------
    def self_precision(self) -> np.ndarray:
        """Per slot, the curvature of its unit's self energy (:meth:`ContinuousUnits.curvature`:
        ``1/sigma^2`` Gaussian, 1 ReLU, ``min(gamma_plus, gamma_minus)`` DReLU); 0 for
        discrete slots."""
        return np.concatenate([grp.curvature() if grp.continuous else np.zeros(grp.width)
                               for grp in self.units.values()])

    def continuous_precision(self, what: str, slots: np.ndarray | None = None) -> np.ndarray:
        """The precision ``P = diag(self precision) - C`` over the continuous ``slots``
        (default all continuous slots; ``C`` their couplings, ``C_ij = C_ji = coupling``, so a
        lateral ``U`` gives ``2U``), after checking that it is positive definite; otherwise a
        ``ValueError`` naming ``what``: ``exp(-E)`` then does not normalise over those units
        (for Gaussian units alone, ``Z`` is infinite), so neither exact sums nor samplers can
        serve the model.
        """
        slots = np.flatnonzero(self.continuous) if slots is None else np.asarray(slots)
        position = np.full(self.n_units, -1)
        position[slots] = np.arange(len(slots))
        i, j = position[self.edges[:, 0]], position[self.edges[:, 1]]
        inside = (i >= 0) & (j >= 0)
        precision = np.diag(self.self_precision()[slots])
        np.subtract.at(precision, (i[inside], j[inside]), self.coupling[inside])
        np.subtract.at(precision, (j[inside], i[inside]), self.coupling[inside])
        try:
            np.linalg.cholesky(precision)
        except np.linalg.LinAlgError:
            groups = sorted({g for g, u in self.units.items() if u.continuous
                             and np.any((slots >= self.offsets[g])
                                        & (slots < self.offsets[g] + u.width))})
            raise ValueError(
                f"{what}: the precision diag(1/sigma^2) - 2U of the continuous units of "
                f"{groups} is not positive definite, so exp(-E) does not normalise over "
                "them (Z is infinite); shrink the laterals or the couplings between "
                "continuous units, or raise the units' precisions") from None
        return precision

    # -- derived forms ------------------------------------------------------------------
    def adjacency(self, coupling: np.ndarray | None = None):
        """Symmetric ``scipy.sparse`` CSR matrix ``A`` with ``A_ij = A_ji = coupling_e`` for
        each edge ``e = (i, j)`` (:func:`symmetric_csr` of :attr:`edges`).

        Without ``coupling``: the live couplings, one matrix kept in step by :meth:`sync`.
        With ``coupling`` (one value per edge, such as a :class:`BinaryForm`'s): a new matrix
        over the same structure.
        """
        if self._csr is None:
            self._csr = symmetric_csr(self.n_units, self.edges)
        indptr, indices, edge_of = self._csr
        shape = (self.n_units, self.n_units)
        if coupling is not None:
            return sp.csr_matrix((np.asarray(coupling, float)[edge_of], indices, indptr),
                                 shape=shape)
        if self._adjacency is None:
            self._adjacency = sp.csr_matrix((self.coupling[edge_of], indices, indptr),
                                            shape=shape)
        return self._adjacency

    def colouring(self, units: np.ndarray | None = None) -> np.ndarray:
        """Greedy colouring of the unit graph restricted to the slots ``units`` (default all).

        Returns ``colour`` per slot (-1 outside ``units``): units of one colour share no
        coupling and no product factor, so they are conditionally independent given the other
        colours; all slots of a categorical unit get its colour. Units are coloured in index
        order with the smallest colour free among their neighbours: an RBM gets 2 colours, a
        square lattice 2 (a checkerboard), a dense Boltzmann machine n.
        """
        adj = self.adjacency()
        units = np.arange(self.n_units) if units is None else np.asarray(units)
        colour = np.full(self.n_units, -1, np.int64)
        for site in np.unique(self.site[units]):
            lo, hi = self.site_start[site], self.site_start[site + 1]
            fellows = self.factor_members[self.factor_ids[self.factor_ptr[lo]:self.factor_ptr[hi]]]
            taken = colour[np.concatenate([adj.indices[adj.indptr[lo]:adj.indptr[hi]],
                                           fellows[fellows >= 0]])]
            free = np.ones(len(taken) + 1, bool)
            free[taken[(taken >= 0) & (taken <= len(taken))]] = False
            colour[lo:hi] = int(np.argmax(free))
        keep = np.zeros(self.n_units, bool)
        keep[units] = True
        colour[~keep] = -1
        return colour

    def local_field(self, s: np.ndarray) -> np.ndarray:
        """``f_i = -dE/ds_i = field_i + sum_j A_ij s_j`` for a batch ``s`` of shape (batch, n)."""
        return self.field + (self.adjacency() @ s.T).T

    def binary_form(self, beta: float = 1.0) -> BinaryForm:
        """The energy over binary variables, scaled by ``-beta`` (see :class:`BinaryForm`).

        With ``s_i = alpha_i x_i + gamma_i`` (``alpha, gamma = scale, low``: 1, 0 for binary
        and 2, -1 for spin units): ``field'_i = alpha_i (field_i + sum_{e ni i} coupling_e
        gamma_other)``, ``coupling'_e = alpha_i alpha_j coupling_e``,
        ``const = sum_i field_i gamma_i + sum_e coupling_e gamma_i gamma_j``.
        """
        alpha, gamma = self.scale, self.low
        i, j = self.edges[:, 0], self.edges[:, 1]
        field = self.field.copy()
        field += np.bincount(i, weights=self.coupling * gamma[j], minlength=self.n_units)
        field += np.bincount(j, weights=self.coupling * gamma[i], minlength=self.n_units)
        const = float(self.field @ gamma + self.coupling @ (gamma[i] * gamma[j]))
        return BinaryForm(beta * alpha * field, beta * self.coupling * alpha[i] * alpha[j],
                          beta * const)

    def native_moments(self, p_unit: np.ndarray, p_pair: np.ndarray):
        """Turn binary moments ``E[x_i]``, ``E[x_i x_j]`` into ``E[s_i]``, ``E[s_i s_j]``.

        Works on the last axis, so a batch of per-sample moments converts at once.
        """
        alpha, gamma = self.scale, self.low
        i, j = self.edges[:, 0], self.edges[:, 1]
        m_unit = alpha * p_unit + gamma
        m_pair = (alpha[i] * alpha[j] * p_pair + alpha[i] * gamma[j] * p_unit[..., i]
                  + gamma[i] * alpha[j] * p_unit[..., j] + gamma[i] * gamma[j])
        return m_unit, m_pair

    def grad_from_moments(self, m_unit: np.ndarray, m_pair: np.ndarray) -> dict:
        """``E[dE/dtheta]`` for every parameter from native moments ``E[s_i]``, ``E[s_i s_j]``.

        Since ``dE/dtheta_p = -coef_p s_i s_j`` (or ``-coef_p s_i``), the expectation is
        ``-coef_p`` times the moment where entry ``p`` lands (0 for dropped entries).
        """
        grads = {}
        for land in self._landings:
            moments = m_pair if land.pair else m_unit
            keep = land.target >= 0
            g = np.zeros(land.array.size)
            g[keep] = -land.coef[keep] * moments[land.target[keep]]
            g = g.reshape(land.array.shape)
            grads[land.param] = grads[land.param] + g if land.param in grads else g
        return grads



def _energy_bound(field, coupling, factor_weight) -> float:
    with np.errstate(over="ignore"):
        return float(np.abs(field).sum() + np.abs(coupling).sum() + np.abs(factor_weight).sum())


def _check_energy_scale(bound: float, beta: float, what: str) -> None:
    with np.errstate(over="ignore"):
        scaled = beta * bound
    if not scaled <= MAX_ENERGY:
        raise ValueError(
            f"{what}: beta * max|E| may reach {scaled:.3g}, past what float64 arithmetic holds "
            f"(the engines need it below {MAX_ENERGY:g}); the parameters or beta are too "
            "large: rescale them")


def _store(target: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` into ``target`` in place, only the entries that differ."""
    changed = target != values
    if changed.any():
        target[changed] = values[changed]


def _read_only_view(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view


def site_log_sum_exp(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``log sum_{a in site} exp(values[:, a])`` per site: ``values`` (batch, sum(sizes))
    holds the sites' slots one site after another; returns (batch, len(sizes))."""
    if len(sizes) == 0:
        return np.zeros((len(values), 0))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    top = np.maximum.reduceat(values, starts, axis=1)
    total = np.add.reduceat(np.exp(values - np.repeat(top, sizes, axis=1)), starts, axis=1)
    return top + np.log(total)


def site_softmax(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``softmax`` over each site's slots (layout as :func:`site_log_sum_exp`): the mean of
    a categorical unit's one-hot vector given its slot fields."""
    return np.exp(values - np.repeat(site_log_sum_exp(values, sizes), sizes, axis=1))


#: The local search of :func:`independent_split` (on graphs that are not bipartite) makes at
#: most this many passes over its set, each of order the number of edges.
_LOCAL_SEARCH_PASSES = 8
#: Its minimum cut scales the weights to integer capacities summing to about this (scipy's
#: ``maximum_flow`` counts in int32).
_FLOW_TOTAL = 2**30


def independent_split(free: np.ndarray, edges: np.ndarray, first: np.ndarray | None = None,
                      site: np.ndarray | None = None):
    """Split the units ``free`` into ``S`` (enumerated) and ``A`` (summed in closed form),
    with no edge of ``edges`` joining two units of ``A``: given ``S`` they are independent.

    The choice is made over sites (``site``: the site of each slot, see ``FlatGraph``; by
    default each unit is its own site): all slots of a categorical unit land in ``A`` or all
    in ``S``. ``A`` maximises the log of the number of states it removes from the
    enumeration,

        w(A) = sum_{sites a in A} log k_a,     k_a = 2 for a binary or spin unit,

    a maximum-weight independent set of the graph of the free sites. On its bipartite
    components the set is exact: the complement of a minimum-weight vertex cover, a minimum
    cut between the two colour classes (a maximum flow, the weights scaled to integers: optimal
    to within ``n_sites * w_total * 2^-31``). On the other components a greedy set (the site
    of least ``(degree + 1) / weight`` in the graph left, again and again) is improved by
    local search: a chosen site gives way to a heavier independent set of the neighbours whose
    only chosen neighbour it is, in at most ``_LOCAL_SEARCH_PASSES`` passes over the set. The
    greedy maximal set of the whole graph (lowest degree first, degrees counted once) is kept
    unless the result is heavier.

    ``first`` (a boolean mask over units) sets priorities: ``A`` first takes the heaviest set
    of the sites where ``first`` is set, then the heaviest set of the others those leave free.

    Returns ``(S, A)``.

    Examples
    --------
    >>> import numpy as np
    >>> S, A = independent_split(np.arange(3), np.array([[0, 1], [1, 2]]))
    >>> S.tolist(), A.tolist()
    ([1], [0, 2])
    """
    free = np.asarray(free, np.int64)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    if site is None:
        site = np.arange(max(free.max(initial=-1), edges.max(initial=-1)) + 1)
    n_slots = np.bincount(site)
    sites = np.unique(site[free])
    local = np.full(len(n_slots), -1, np.int64)
    local[sites] = np.arange(len(sites))
    pairs = np.sort(local[site[edges]], axis=1)
    pairs = pairs[(pairs[:, 0] >= 0) & (pairs[:, 0] != pairs[:, 1])]
    key = np.sort(pairs[:, 0] * len(sites) + pairs[:, 1])
    key = key[np.diff(key, prepend=-1) != 0]                      # each pair of sites once
    pairs = np.stack([key // len(sites), key % len(sites)], axis=1)
    weight = np.log(np.maximum(n_slots[sites], 2))
    prior = None if first is None else np.isin(sites, site[first])
    in_a = _max_weight_independent(pairs, weight, prior)[local[site[free]]]
    return free[~in_a], free[in_a]


def _max_weight_independent(pairs: np.ndarray, weight: np.ndarray,
                            prior: np.ndarray | None) -> np.ndarray:
    """The set of :func:`independent_split` (a boolean mask) on the graph of ``pairs`` over
    ``len(weight)`` sites: with ``prior``, a stage for the sites it marks, then one for the
    others left free; the greedy set where that is not heavier."""
    n = len(weight)
    if len(pairs) == 0:
        return np.ones(n, bool)
    indptr, indices, _ = symmetric_csr(n, pairs)
    degree = np.diff(indptr)
    rank = degree if prior is None else degree - n * prior
    greedy = _greedy_independent(indptr, indices, np.argsort(rank, kind="stable"))
    chosen = np.zeros(n, bool)
    for stage in [np.ones(n, bool)] if prior is None else [prior, ~prior]:
        blocked = np.zeros(n, bool)
        blocked[indices[np.repeat(chosen, degree)]] = True
        nodes = np.flatnonzero(stage & ~blocked)
        chosen[nodes] = _stage_independent(_induced(pairs, nodes, n), weight[nodes])
    for w in [weight] if prior is None else [weight * prior, weight]:
        gain = w[chosen].sum() - w[greedy].sum()
        if abs(gain) > 1e-9 * w.sum():
            return chosen if gain > 0 else greedy
    return greedy


def _stage_independent(pairs: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A heavy independent set (boolean mask) of the graph of ``pairs``: by minimum cut on
    its bipartite components, by local search from the greedy set on the others."""
    n = len(weight)
    # The bipartite double cover joins i to j' and i' to j for each edge (i, j): i and i' are
    # connected when the component of i has an odd cycle; otherwise the order of their
    # labels is a 2-colouring.
    rows = np.concatenate([pairs[:, 0], pairs[:, 0] + n])
    cols = np.concatenate([pairs[:, 1] + n, pairs[:, 1]])
    _, label = connected_components(
        sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(2 * n, 2 * n)), directed=False)
    bipartite = label[:n] != label[n:]
    chosen = np.zeros(n, bool)
    nodes = np.flatnonzero(bipartite)
    chosen[nodes] = _min_cut_independent(_induced(pairs, nodes, n), weight[nodes],
                                         (label[:n] < label[n:])[nodes])
    nodes = np.flatnonzero(~bipartite)
    chosen[nodes] = _local_search(_induced(pairs, nodes, n), weight[nodes])
    return chosen


def _induced(pairs: np.ndarray, nodes: np.ndarray, n: int) -> np.ndarray:
    """The pairs of the subgraph induced by ``nodes`` (of ``0..n-1``), relabelled by their
    place in ``nodes``."""
    local = np.full(n, -1, np.int64)
    local[nodes] = np.arange(len(nodes))
    sub = local[pairs].reshape(-1, 2)
    return sub[(sub >= 0).all(axis=1)]


def _min_cut_independent(pairs: np.ndarray, weight: np.ndarray,
                         side: np.ndarray) -> np.ndarray:
    """A maximum-weight independent set of a bipartite graph (``side`` colours it): the
    complement of a minimum-weight vertex cover, read off a minimum cut of the network
    source -> i (capacity w_i) for ``side[i]``, i -> j (unbounded) along each edge,
    j -> sink (w_j) otherwise. The cover is the sites i that the residual network does not
    reach from the source, and the sites j it reaches."""
    n = len(weight)
    if n == 0:
        return np.zeros(0, bool)
    capacity = np.maximum(np.rint(weight * (_FLOW_TOTAL / weight.sum())), 1).astype(np.int32)
    unbounded = int(capacity.sum()) + 1
    source, sink = n, n + 1
    forward = side[pairs[:, 0]]
    tail = np.where(forward, pairs[:, 0], pairs[:, 1])
    head = np.where(forward, pairs[:, 1], pairs[:, 0])
    left, right = np.flatnonzero(side), np.flatnonzero(~side)
    rows = np.concatenate([np.full(len(left), source), tail, right])
    cols = np.concatenate([left, head, np.full(len(right), sink)])
    data = np.concatenate([capacity[left], np.full(len(pairs), unbounded),
                           capacity[right]]).astype(np.int32)
    network = sp.csr_array((data, (rows, cols)), shape=(n + 2, n + 2))
    residual = (network - maximum_flow(network, source, sink).flow).tocsr()
    residual.data = (residual.data > 0).astype(np.int32)
    residual.eliminate_zeros()
    reached = np.zeros(n + 2, bool)
    reached[breadth_first_order(residual, source, return_predecessors=False)] = True
    return np.where(side, reached[:n], ~reached[:n])


def _local_search(pairs: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A heavy independent set of the graph of ``pairs``: the greedy set that takes the site
    of least ``(degree + 1) / weight`` among those left, degrees counted in the graph left
    (taken sites and their neighbours removed), improved by :func:`_swaps`."""
    n = len(weight)
    indptr, indices, _ = symmetric_csr(n, pairs)
    degree = np.diff(indptr)
    left = np.ones(n, bool)
    chosen = np.zeros(n, bool)
    heap = [((degree[u] + 1) / weight[u], u, degree[u]) for u in range(n)]
    heapq.heapify(heap)
    while heap:
        _, u, d = heapq.heappop(heap)
        if not left[u] or d != degree[u]:
            continue                                # taken, blocked, or an outdated entry
        chosen[u], left[u] = True, False
        around = indices[indptr[u]:indptr[u + 1]]
        around = around[left[around]]
        left[around] = False
        if len(around):
            second = np.concatenate([indices[indptr[v]:indptr[v + 1]] for v in around])
            second = second[left[second]]
            np.subtract.at(degree, second, 1)
            for w in np.unique(second):
                heapq.heappush(heap, ((degree[w] + 1) / weight[w], w, degree[w]))
    return _swaps(indptr, indices, weight, chosen)


def _swaps(indptr: np.ndarray, indices: np.ndarray, weight: np.ndarray,
           chosen: np.ndarray) -> np.ndarray:
    """Improve the maximal independent set ``chosen`` in place by swaps: a chosen site ``x``
    gives way to the greedy (heaviest first) independent set of its neighbours whose only
    chosen neighbour is ``x``, when that set is heavier. Swaps keep the set maximal; at most
    ``_LOCAL_SEARCH_PASSES`` passes, fewer when one makes no swap."""
    n = len(weight)
    tight = np.bincount(indices[np.repeat(chosen, np.diff(indptr))], minlength=n)
    taken = np.zeros(n, bool)
    for _ in range(_LOCAL_SEARCH_PASSES):
        swapped = False
        for x in np.flatnonzero(chosen):
            around = indices[indptr[x]:indptr[x + 1]]
            loose = around[tight[around] == 1]
            if weight[loose].sum() <= weight[x]:
                continue
            for u in loose[np.argsort(-weight[loose], kind="stable")]:
                taken[u] = not taken[indices[indptr[u]:indptr[u + 1]]].any()
            picks = loose[taken[loose]]
            taken[picks] = False
            if weight[picks].sum() - weight[x] <= 1e-9 * weight[x]:
                continue
            chosen[x] = False
            chosen[picks] = True
            tight[around] -= 1
            for u in picks:
                tight[indices[indptr[u]:indptr[u + 1]]] += 1
            swapped = True
        if not swapped:
            break
    return chosen


def _greedy_independent(indptr: np.ndarray, indices: np.ndarray,
                        order: np.ndarray) -> np.ndarray:
    """The maximal independent set (boolean mask) that takes each site in ``order`` unless
    a neighbour was taken."""
    blocked = np.zeros(len(indptr) - 1, bool)
    chosen = np.zeros(len(indptr) - 1, bool)
    for u in order:
        if not blocked[u]:
            chosen[u] = True
            blocked[indices[indptr[u]:indptr[u + 1]]] = True
    return chosen


def symmetric_csr(n_units: int, edges: np.ndarray):
    """CSR structure of the undirected graph with ``edges`` over ``n_units`` units.

    Each edge ``e = (i, j)`` (``i != j``, every unordered pair at most once) appears as
    ``(i, j)`` and ``(j, i)``: row ``i`` lists the neighbours of ``i`` in increasing order,
    ``indices[indptr[i]:indptr[i + 1]]``, and ``edge_of`` the edge of each entry, so that
    ``weights[edge_of]`` is the data of the symmetric matrix ``A_ij = A_ji = weights_e``. The
    one place the library builds a symmetric adjacency (the graph's couplings, the exact
    engines, the order search, the independent split).

    Returns
    -------
    indptr : ndarray of int64, shape (n_units + 1,)
    indices : ndarray of int64, shape (2 n_edges,)
    edge_of : ndarray of int64, shape (2 n_edges,)

    Examples
    --------
    >>> import numpy as np
    >>> indptr, indices, edge_of = symmetric_csr(3, np.array([[0, 2], [1, 2]]))
    >>> indptr.tolist(), indices.tolist(), edge_of.tolist()
    ([0, 1, 2, 4], [2, 2, 0, 1], [0, 1, 0, 1])
    """
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_units + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_units), out=indptr[1:])
    edge_of = np.concatenate([np.arange(len(edges), dtype=np.int64)] * 2)[order]
    return indptr, cols[order], edge_of
