"""Hypothesis strategies and checks for testing models and users' own terms.

Strategies build random small models from the built-in terms, small enough for brute-force
enumeration, so any identity of ``DESIGN.md`` can be checked against the exact answer.
Requires the optional dependency ``hypothesis``.
"""
from __future__ import annotations

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without hypothesis
    raise ImportError("pgm_energy.testing needs hypothesis: pip install hypothesis") from exc

from .model import EnergyModel
from .terms import Bias, Lateral, Pairwise, SparsePairwise
from .units import Binary, Spin

__all__ = ["unit_groups", "models", "states", "weights"]


def weights(shape, *, scale: float = 2.0, large: bool = True):
    """Strategy for a float64 parameter array: mostly ``N(0, scale)``, sometimes huge (1e3)."""
    @st.composite
    def build(draw):
        seed = draw(st.integers(0, 2**32 - 1), label="weight seed")
        rng = np.random.default_rng(seed)
        w = scale * rng.standard_normal(shape)
        if large and draw(st.booleans(), label="large weights"):
            w *= 500.0
        return w
    return build()


@st.composite
def unit_groups(draw, max_units: int = 4, kinds=(Binary, Spin)):
    """Strategy for one unit group: ``Binary(n)`` or ``Spin(n)`` with 1 <= n <= max_units."""
    kind = draw(st.sampled_from(kinds))
    return kind(draw(st.integers(1, max_units)))


@st.composite
def models(draw, max_groups: int = 3, max_units: int = 4, max_total: int = 9,
           kinds=(Binary, Spin), large_weights: bool = True, scale: float = 2.0):
    """Strategy for a random small ``EnergyModel``: any mix of built-in terms.

    Up to ``max_groups`` groups of at most ``max_units`` units (``max_total`` in all), each
    group binary or spin; biases, dense pairwise couplings between groups, laterals and sparse
    couplings within groups, all with random ``N(0, scale)`` (sometimes very large)
    parameters; a non-empty random subset of the groups is visible.
    """
    def w(shape):
        return draw(weights(shape, scale=scale, large=large_weights))

    n_groups = draw(st.integers(1, max_groups))
    units, total = {}, 0
    for k in range(n_groups):
        grp = draw(unit_groups(max_units=min(max_units, max_total - total), kinds=kinds))
        units[f"g{k}"] = grp
        total += grp.n
        if total >= max_total:
            break
    names = list(units)
    terms = []
    for g in names:
        n = units[g].n
        if draw(st.booleans()):
            terms.append(Bias(g, name=f"b_{g}", value=w((n,))))
        if n >= 2 and draw(st.booleans()):
            U = w((n, n))
            U = np.triu(U, 1)
            terms.append(Lateral(g, name=f"U_{g}", value=U + U.T))
        elif n >= 2 and draw(st.booleans()):
            pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
            edges = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True))
            terms.append(SparsePairwise(g, edges, name=f"J_{g}",
                                        value=w((len(edges),))))
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            if draw(st.booleans()):
                shape = (units[names[a]].n, units[names[b]].n)
                terms.append(Pairwise(names[a], names[b], name=f"W_{names[a]}{names[b]}",
                                      value=w(shape)))
    if not terms:
        terms.append(Bias(names[0], name="b", value=w((units[names[0]].n,))))
    visible = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    return EnergyModel(units, terms, visible=visible)


def states(model: EnergyModel, groups=None, *, min_batch: int = 1, max_batch: int = 6):
    """Strategy for a valid state dict of ``model`` (default all groups), random batch size."""
    groups = list(model.units) if groups is None else list(groups)

    @st.composite
    def build(draw):
        batch = draw(st.integers(min_batch, max_batch), label="batch")
        seed = draw(st.integers(0, 2**32 - 1), label="state seed")
        rng = np.random.default_rng(seed)
        return {g: rng.choice(model.units[g].values, size=(batch, model.units[g].n)).astype(float)
                for g in groups}
    return build()
