"""Higher-order interactions: ``E = -sum_c theta_c prod_{i in c} s_i`` over k-ary cliques."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .base import FactorCoupling, Term
from .indices import as_index_tuples, check_index_range
from .linear import _require_unit_values

__all__ = ["Interaction"]


class Interaction(Term):
    """k-ary couplings within one group: ``E = -sum_c theta_c prod_{i in c} s_i``.

    Parameters
    ----------
    group : str
        The unit group.
    cliques : sequence of sequences of int
        Each clique lists distinct unit indices of the group, integers in ``[0, n)`` (any
        size >= 1; pairs are allowed but ``SparsePairwise`` compiles them faster); no clique
        twice. Checked by ``pgm_energy.terms.indices``, as ``SparsePairwise`` edges are.
    name : str
        Parameter name (``T`` by default); shape ``(n_cliques,)``.
    value : array_like, optional
        Initial couplings; zeros when omitted.

    Notes
    -----
    ``dE/dtheta_c = -prod_{i in c} s_i``. The energy is linear in each unit, so the change
    when unit ``i`` goes from ``off`` to ``on`` is
    ``-(on - off) sum_{c ni i} theta_c prod_{j in c, j != i} s_j`` (:meth:`delta_energy`,
    used to check the sampler). The Gibbs kernels evaluate the cliques natively as product
    factors (:meth:`compile_factors`); the exact functions tabulate the term's energy over
    the states of its units and look it up in the Gray-code walk.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> model = pe.EnergyModel({"s": pe.Spin(3)}, [pe.Interaction("s", [(0, 1, 2)], value=[1.0])])
    >>> model.energy({"s": [[1, -1, -1]]})
    array([-1.])
    """

    def __init__(self, group: str, cliques: Sequence[Sequence[int]], *, name: str = "T",
                 value=None):
        super().__init__(groups=(group,), params={name: value})
        self._members = as_index_tuples(cliques, f"Interaction {name!r} cliques",
                                        kind="clique")
        self.cliques = [tuple(int(i) for i in row[row >= 0]) for row in self._members]

    def param_shapes(self, units: Mapping) -> dict:
        _require_unit_values(self, units)
        check_index_range(self._members, units[self.groups[0]].n,
                          f"Interaction {self.param_names[0]!r} cliques", kind="clique",
                          group=self.groups[0])
        return {self.param_names[0]: (len(self.cliques),)}

    def config(self):
        return {"group": self.groups[0], "cliques": [list(c) for c in self.cliques],
                "name": self.param_names[0]}

    def compile_factors(self, offsets):
        members = np.where(self._members >= 0, self._members + offsets[self.groups[0]], -1)
        return [FactorCoupling(self.param_names[0], members, np.ones(len(self.cliques)))]

    def _products(self, s: np.ndarray, skip: int | None = None) -> np.ndarray:
        """``prod_{i in c, i != skip} s_i`` for every clique, shape (batch, n_cliques)."""
        padded = np.concatenate([s, np.ones((len(s), 1))], axis=1)   # index -1 reads 1
        members = self._members if skip is None else np.where(self._members == skip, -1,
                                                               self._members)
        return padded[:, members].prod(axis=2)

    def energy(self, state):
        theta = self.params[self.param_names[0]]
        return -self._products(np.asarray(state[self.groups[0]], float)) @ theta

    def energy_grad(self, state):
        return {self.param_names[0]: -self._products(np.asarray(state[self.groups[0]], float))}

    def delta_energy(self, state, group, unit, values):
        theta = self.params[self.param_names[0]]
        touching = np.any(self._members == unit, axis=1)
        s = np.asarray(state[group], float)
        others = self._products(s, skip=unit)[:, touching]
        return -(values[1] - values[0]) * (others @ theta[touching])
