"""Positive phases for models whose hidden units interact given the visible ones.

The positive phase of a gradient estimator is ``E_{h|x}[dE/dtheta]`` on the data. Where the
hidden units are conditionally independent given ``x`` (an RBM) it is exact, in closed form,
and these classes are not used. Otherwise (a deep Boltzmann machine, lateral hidden
couplings) it is approximated, one of two ways:

* :class:`MeanField`: the mean-field fixed point ``mu`` of ``q(h) = prod_j q_j(h_j)``
  (:func:`pgm_energy.variational.mean_field`), and the moments of ``(x, mu)``: deterministic,
  biased by the gap ``KL(q || P(h | x))``; the ascent then follows the variational lower
  bound on the log-likelihood (Salakhutdinov & Hinton 2009). The default for models of
  biases and pairwise couplings whose hidden couplings only join different groups (a DBM).
* :class:`ClampedGibbs`: ``n_sweeps`` sweeps of Gibbs chains with ``x`` held, one chain per
  data row, kept from one batch to the next; the last states, with the hidden units that are
  independent given the others replaced by their conditional means. Unbiased as the chains
  mix; the default otherwise.

``positive="auto"`` on an estimator chooses between them as just said.
"""
from __future__ import annotations

import numpy as np

from .._checks import positive_int
from ..sampling import GibbsSampler
from ..variational import Blocks, check_mean_field, fixed_point

__all__ = ["MeanField", "ClampedGibbs", "positive_phase"]


class MeanField:
    """The mean-field positive phase (see the module docstring).

    Parameters
    ----------
    tol : float
        Stop when no mean moves by ``tol`` or more in a sweep (> 0).
    max_iter : int
        At most this many sweeps over the hidden colour classes (>= 1).
    damping : float
        Weight in [0, 1) of the previous means in each update.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> pe.PCD(n_chains=50, positive=pe.learning.MeanField(tol=1e-5, max_iter=30))
    ... # doctest: +ELLIPSIS
    <pgm_energy.learning.estimators.PCD object at ...>
    """

    def __init__(self, tol: float = 1e-6, max_iter: int = 50, damping: float = 0.0):
        self.tol, self.max_iter, self.damping = check_mean_field(tol, max_iter, damping)

    def __repr__(self):
        return f"MeanField(tol={self.tol!r}, max_iter={self.max_iter}, damping={self.damping!r})"

    def rows(self, model, layout, flat, rng, cache: dict) -> np.ndarray:
        """Expected-state rows: the visible slots of ``flat``, the hidden ones at ``mu``."""
        graph = model.graph                     # synced with the current parameters
        if graph.generic_terms or len(graph.factor_members):
            raise TypeError("the mean-field positive phase needs a model of biases and "
                            "pairwise couplings only; use positive=pe.learning.ClampedGibbs()")
        if "blocks" not in cache:
            cache["blocks"] = Blocks(graph, np.flatnonzero(~layout.visible))
        return fixed_point(graph, flat, cache["blocks"], self.tol, self.max_iter,
                           self.damping)[0]


class ClampedGibbs:
    """The clamped-chain positive phase (see the module docstring).

    Parameters
    ----------
    n_sweeps : int
        Gibbs sweeps of the clamped chains per gradient (>= 1).
    """

    def __init__(self, n_sweeps: int = 5):
        self.n_sweeps = positive_int(n_sweeps, "n_sweeps")

    def __repr__(self):
        return f"ClampedGibbs(n_sweeps={self.n_sweeps})"

    def rows(self, model, layout, flat, rng, cache: dict) -> np.ndarray:
        """Expected-state rows from the clamped chains (``cache`` keeps them)."""
        from .estimators import expected_states     # estimators imports this module

        chains = cache.get("chains")
        if chains is None or chains.n_chains != len(flat):
            chains = cache["chains"] = GibbsSampler(model, len(flat), rng=rng, n_threads=None)
        graph = layout.graph
        chains.run(self.n_sweeps, clamp=graph.decode(flat, model.visible))
        return expected_states(model, graph.encode(chains.state), layout.hidden_closed)


def positive_phase(positive, layout=None):
    """``positive`` as a positive-phase object: ``"mean-field"``, ``"gibbs"`` (default
    settings), a :class:`MeanField` or :class:`ClampedGibbs`, or ``"auto"`` (with ``layout``:
    mean field for a model of biases and pairwise couplings with no coupling between two
    hidden units of one group, clamped Gibbs otherwise; without: ``"auto"`` itself)."""
    if isinstance(positive, (MeanField, ClampedGibbs)):
        return positive
    if positive == "mean-field":
        return MeanField()
    if positive == "gibbs":
        return ClampedGibbs()
    if positive != "auto":
        raise ValueError(f"positive must be 'auto', 'mean-field', 'gibbs', a "
                         f"pe.learning.MeanField or a pe.learning.ClampedGibbs, got {positive!r}")
    if layout is None:
        return "auto"
    graph = layout.graph
    group = np.empty(graph.n_units, np.int64)
    for k, g in enumerate(graph.units):
        group[graph.slots(g)] = k
    i, j = graph.edges[:, 0], graph.edges[:, 1]
    hidden_pair = ~layout.visible[i] & ~layout.visible[j]
    layered = not np.any(hidden_pair & (group[i] == group[j]))
    pairwise = not (graph.generic_terms or len(graph.factor_members))
    return MeanField() if layered and pairwise else ClampedGibbs()
