"""Built-in terms linear in their parameters: biases and pairwise couplings.

All of them are first- or second-order in the units and compile to the flat graph's unary
fields and symmetric pairwise couplings.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .base import LinearCoupling, Term
from .indices import as_index_tuples, check_index_range

__all__ = ["Bias", "Pairwise", "Lateral", "SparsePairwise"]


class Bias(Term):
    """Unit biases: ``E = -sum_i b_i s_i`` (``-sum_i b[i, x_i]`` for categorical units).

    Parameters
    ----------
    group : str
        The unit group.
    name : str
        Parameter name (``b`` by default); shape ``(n,)``, or ``(n, k)`` for
        ``Categorical(n, k)`` units.
    value : array_like, optional
        Initial biases; zeros when omitted.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> m = pe.EnergyModel({"x": 3}, [pe.Bias("x", name="b", value=[1.0, 0.0, -1.0])])
    >>> m.energy({"x": [[1, 1, 0]]})
    array([-1.])
    """

    def __init__(self, group: str, *, name: str = "b", value=None):
        super().__init__(groups=(group,), params={name: value})

    def param_shapes(self, units: Mapping) -> dict[str, tuple]:
        return {self.param_names[0]: units[self.groups[0]].feature_shape}

    def config(self):
        return {"group": self.groups[0], "name": self.param_names[0]}

    def energy(self, state):
        b = self.params[self.param_names[0]]
        return -(self.features(state, self.groups[0]) @ b.ravel())

    def energy_grad(self, state):
        b = self.params[self.param_names[0]]
        feats = self.features(state, self.groups[0])
        return {self.param_names[0]: -feats.reshape(len(feats), *b.shape)}

    def compile(self, offsets):
        b = self.params[self.param_names[0]]
        i = offsets[self.groups[0]] + np.arange(b.size)
        return [LinearCoupling(self.param_names[0], i, None, np.ones(b.size))]


class Pairwise(Term):
    """Dense couplings between two different groups: ``E = -a^T W b = -sum_jk W_jk a_j b_k``.

    Parameters
    ----------
    group_a, group_b : str
        The two groups; ``W`` has shape ``(n_a, n_b)``. ``Pairwise("h", "x")`` is the
        ``-h^T W x`` of an RBM. A categorical group enters one-hot: its axis becomes
        ``(n, k)``, e.g. ``W`` of shape ``(n_h, k, n_x)`` for ``Categorical(n_h, k)`` hidden
        units, ``E = -sum_ij W[i, h_i, j] x_j``.
    name : str
        Parameter name (``W`` by default).
    value : array_like, optional
        Initial weights; zeros when omitted.
    """

    def __init__(self, group_a: str, group_b: str, *, name: str = "W", value=None):
        if group_a == group_b:
            raise ValueError(
                f"Pairwise({group_a!r}, {group_b!r}): the groups must differ; use "
                "Lateral(group) or SparsePairwise(group, edges) for couplings within a group"
            )
        super().__init__(groups=(group_a, group_b), params={name: value})

    def param_shapes(self, units):
        a, b = self.groups
        return {self.param_names[0]: units[a].feature_shape + units[b].feature_shape}

    def config(self):
        return {"group_a": self.groups[0], "group_b": self.groups[1],
                "name": self.param_names[0]}

    def _matrix(self):
        """``W`` as a (width_a, width_b) matrix over the two groups' features."""
        a = self.groups[0]
        return self.params[self.param_names[0]].reshape(self.unit_groups[a].width, -1)

    def energy(self, state):
        a, b = self.groups
        return -np.einsum("bj,bj->b", self.features(state, a) @ self._matrix(),
                          self.features(state, b))

    def energy_grad(self, state):
        a, b = self.groups
        fa, fb = self.features(state, a), self.features(state, b)
        W = self.params[self.param_names[0]]
        return {self.param_names[0]: -(fa[:, :, None] * fb[:, None, :]).reshape(len(fa),
                                                                                 *W.shape)}

    def compile(self, offsets):
        a, b = self.groups
        W = self._matrix()
        i, j = np.indices(W.shape)
        return [LinearCoupling(self.param_names[0], (offsets[a] + i).ravel(),
                               (offsets[b] + j).ravel(), np.ones(W.size))]


class Lateral(Term):
    """Dense symmetric couplings within a group: ``E = -s^T U s = -sum_{i != j} U_ij s_i s_j``.

    ``U`` is symmetric with a zero diagonal, so every pair is counted twice and
    ``P(x_i = 1 | rest) = sigmoid(b_i + ... + 2 (U x)_i)`` for binary units. The gradient is
    taken entry by entry, ``dE/dU_ij = -s_i s_j`` off the diagonal and 0 on it, so it is
    symmetric with a zero diagonal too.

    Parameters
    ----------
    group : str
        The unit group; ``U`` has shape ``(n, n)``, or ``(n, k, n, k)`` for
        ``Categorical(n, k)`` units (one-hot; then the zero "diagonal" is the blocks
        ``U[i, :, i, :]``, and symmetry is ``U[i, a, j, b] = U[j, b, i, a]``).
    name : str
        Parameter name (``U`` by default).
    value : array_like, optional
        Initial couplings (symmetric, zero diagonal); zeros when omitted.
    """

    def __init__(self, group: str, *, name: str = "U", value=None):
        super().__init__(groups=(group,), params={name: value})
        self.symmetric_params = (name,)

    def param_shapes(self, units):
        shape = units[self.groups[0]].feature_shape
        return {self.param_names[0]: shape + shape}

    def _matrix(self):
        """``U`` as a (width, width) matrix over the group's features."""
        return self.params[self.param_names[0]].reshape(self.unit_groups[self.groups[0]].width,
                                                        -1)

    def _same_unit(self):
        """(width, width) mask of feature pairs that belong to one unit (the diagonal)."""
        group = self.unit_groups[self.groups[0]]
        unit = np.arange(group.width) // (group.width // group.n)
        return unit[:, None] == unit[None, :]

    def check_params(self):
        super().check_params()
        name = self.param_names[0]
        U = self._matrix()
        one_hot = U.shape != self.params[name].shape
        if np.any(U[self._same_unit()] != 0):
            raise ValueError(
                f"lateral couplings {name!r} must have a zero diagonal; set "
                + (f"model.params[{name!r}][i, :, i, :] = 0 for every unit i" if one_hot else
                   f"np.fill_diagonal(model.params[{name!r}], 0)"))
        if not np.allclose(U, U.T, rtol=1e-12, atol=1e-12):
            raise ValueError(
                f"lateral couplings {name!r} must be symmetric; symmetrise them, e.g. "
                + ("U[...] = (U + U.transpose(2, 3, 0, 1)) / 2" if one_hot else
                   "U[...] = (U + U.T) / 2"))

    def config(self):
        return {"group": self.groups[0], "name": self.param_names[0]}

    def energy(self, state):
        s = self.features(state, self.groups[0])
        return -np.einsum("bi,bi->b", s @ self._matrix(), s)

    def energy_grad(self, state):
        s = self.features(state, self.groups[0])
        g = -s[:, :, None] * s[:, None, :]
        g[:, self._same_unit()] = 0.0
        return {self.param_names[0]: g.reshape(len(s), *self.params[self.param_names[0]].shape)}

    def compile(self, offsets):
        U = self._matrix()
        i, j = np.indices(U.shape)
        off = offsets[self.groups[0]]
        return [LinearCoupling(self.param_names[0], (off + i).ravel(), (off + j).ravel(),
                               np.ones(U.size))]


class SparsePairwise(Term):
    """Couplings on an edge list within one group: ``E = -sum_e J_e s_{i_e} s_{j_e}``.

    For ``Categorical(n, k)`` units each edge has a ``k x k`` table (one-hot on both ends):
    ``E = -sum_e J[e, x_{i_e}, x_{j_e}]``, a Potts-type model (``J[e] = theta * I`` is the
    Potts coupling ``theta [x_i = x_j]``).

    Parameters
    ----------
    group : str
        The unit group.
    edges : sequence of (int, int)
        Distinct pairs of distinct unit indices of the group, integers in ``[0, n)``; each
        unordered pair at most once (checked by ``pgm_energy.terms.indices``).
    name : str
        Parameter name (``J`` by default); shape ``(n_edges,)``, or ``(n_edges, k, k)`` for
        categorical units.
    value : array_like, optional
        Initial couplings; zeros when omitted.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> potts = pe.EnergyModel({"x": pe.Categorical(3, 4)},
    ...     [pe.SparsePairwise("x", [(0, 1), (1, 2)], value=np.stack([np.eye(4)] * 2))])
    >>> potts.energy({"x": [[2, 2, 0]]})
    array([-1.])
    """

    def __init__(self, group: str, edges: Sequence, *, name: str = "J", value=None):
        super().__init__(groups=(group,), params={name: value})
        #: The edges, int64 (n_edges, 2), read-only.
        self.edges = as_index_tuples(edges, f"SparsePairwise {name!r} edges", kind="edge",
                                     size=2)

    def param_shapes(self, units):
        unit = units[self.groups[0]]
        check_index_range(self.edges, unit.n, f"SparsePairwise {self.param_names[0]!r} edges",
                          kind="edge", group=self.groups[0])
        return {self.param_names[0]: (len(self.edges),) + 2 * unit.feature_shape[1:]}

    def config(self):
        return {"group": self.groups[0], "edges": self.edges, "name": self.param_names[0]}

    def _ends(self, state):
        """Features of both ends of every edge: (batch, n_edges, per-unit features)."""
        unit = self.unit_groups[self.groups[0]]
        f = self.features(state, self.groups[0]).reshape(-1, *unit.feature_shape)
        return f[:, self.edges[:, 0]], f[:, self.edges[:, 1]]

    def energy(self, state):
        grad = self.energy_grad(state)[self.param_names[0]]      # dE/dJ, E is linear in J
        return grad.reshape(len(grad), -1) @ self.params[self.param_names[0]].ravel()

    def energy_grad(self, state):
        a, b = self._ends(state)
        if a.ndim == 2:
            return {self.param_names[0]: -a * b}
        return {self.param_names[0]: -a[:, :, :, None] * b[:, :, None, :]}

    def compile(self, offsets):
        off = offsets[self.groups[0]]
        J = self.params[self.param_names[0]]
        k = J.shape[1] if J.ndim == 3 else 1
        e, a, b = np.indices(J.shape if J.ndim == 3 else J.shape + (1, 1))
        i = off + self.edges[e, 0] * k + a
        j = off + self.edges[e, 1] * k + b
        return [LinearCoupling(self.param_names[0], i.ravel(), j.ravel(), np.ones(J.size))]


def _require_unit_values(term, units):
    """Refuse categorical groups for terms that multiply unit values (not one-hot)."""
    for g in term.groups:
        if units[g].width != units[g].n:
            raise TypeError(
                f"{type(term).__name__} multiplies unit values, so it needs binary or spin "
                f"units; group {g!r} is {units[g]!r}. Couple categorical units with "
                "Pairwise, Lateral or SparsePairwise (one-hot weights) or a term of your own")
