r"""Simulated annealing: low-energy states of models past exact answers.

The chains of a compiled sampler (:class:`~pgm_energy.GibbsSampler` or
:class:`~pgm_energy.ClusterSampler`) are cooled along an increasing schedule of inverse
temperatures ``beta_1 < ... < beta_T``, ``n_sweeps_per_beta`` sweeps at each; after every
step each chain's state is compared with the lowest-energy state it has visited so far (at
the ends of steps), which is kept. Annealing finds low-energy states, not provably lowest
ones: exact minima of small or low-treewidth models are the job of the exact engines.

Default schedule (the rule of dwave-samplers' simulated annealing, on the flat graph): with
``Delta_u`` an upper bound on the energy change of moving unit slot ``u``,
``Delta_u = scale_u (|f_u| + sum_w |J_uw| max(|low_w|, |low_w + scale_w|))``, and
``delta_u`` its smallest non-zero contribution (``scale_u`` times the smallest non-zero
``|f_u|`` or ``|J_uw| max(...)``),

    beta_1 = log 2 / max_u Delta_u,        beta_T = log 100 / min_u delta_u,

geometric in between: at the start the largest possible move is accepted at least half the
time, at the end the smallest one at most one time in a hundred.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import positive_int, real_array
from .model import EnergyModel

__all__ = ["anneal", "AnnealResult", "default_schedule"]

SAMPLERS = ("gibbs", "swendsen-wang", "wolff")


@dataclass(frozen=True, eq=False)
class AnnealResult:
    """What :func:`anneal` found.

    Attributes
    ----------
    states : dict of str to numpy.ndarray
        ``{group: (n_chains, n)}``: each chain's lowest-energy state among those it held at
        the end of a step of the schedule.
    energies : numpy.ndarray, shape (n_chains,)
        Their energies ``E(s)`` (``model.energy(states)``).
    betas : numpy.ndarray
        The schedule that was run.
    """

    states: dict
    energies: np.ndarray
    betas: np.ndarray

    @property
    def best_energy(self) -> float:
        """The lowest energy found by any chain."""
        return float(self.energies.min())

    @property
    def best_state(self) -> dict:
        """A state of energy :attr:`best_energy` (of the first chain that found it):
        ``{group: (n,)}``."""
        c = int(np.argmin(self.energies))
        return {g: v[c].copy() for g, v in self.states.items()}


def default_schedule(model: EnergyModel, n_betas: int = 100) -> np.ndarray:
    """The default annealing schedule of ``model`` (module docstring): ``n_betas`` inverse
    temperatures, geometric from ``log 2 / max_u Delta_u`` to ``log 100 / min_u delta_u``.

    Raises
    ------
    ValueError
        The model has terms without a compiled form (their energy changes have no bound
        here: give ``betas``) or no non-zero parameter.
    """
    n_betas = positive_int(n_betas, "n_betas")
    graph = model.graph
    if graph.generic_terms or len(graph.factor_weight):
        raise ValueError("default_schedule needs a model of compiled pairwise terms (fields and "
                         "couplings) to bound its energy changes; give betas= explicitly")
    reach = np.maximum(np.abs(graph.low), np.abs(graph.low + graph.scale))
    adjacency = abs(graph.adjacency())
    pair = adjacency.multiply(reach[None, :]).tocsr()          # |J_uw| max|s_w|
    largest = graph.scale * (np.abs(graph.field) + np.asarray(pair.sum(axis=1)).ravel())
    contributions = np.concatenate([np.abs(graph.field) * graph.scale,
                                    pair.data * np.repeat(graph.scale, np.diff(pair.indptr))])
    contributions = contributions[contributions > 0]
    if not contributions.size:
        raise ValueError("every field and coupling of the model is 0: every state has the "
                         "same energy")
    hot, cold = np.log(2.0) / largest.max(), np.log(100.0) / contributions.min()
    if n_betas == 1:
        return np.array([cold])
    return np.geomspace(hot, max(cold, hot), n_betas)


def anneal(model: EnergyModel, betas=None, n_chains: int = 32, n_sweeps_per_beta: int = 10,
           rng=None, *, sampler: str = "gibbs", n_threads: int | None = None) -> AnnealResult:
    """Simulated annealing of ``n_chains`` chains along an increasing ``betas`` schedule.

    At each ``beta`` of the schedule every chain runs ``n_sweeps_per_beta`` sweeps of the
    sampler at that inverse temperature; then each chain's state replaces its best so far
    when its energy is lower.

    Parameters
    ----------
    model : EnergyModel
    betas : array_like, optional
        Strictly increasing inverse temperatures (> 0); :func:`default_schedule` by default.
    n_chains : int
        Independent chains (>= 1).
    n_sweeps_per_beta : int
        Sweeps at each inverse temperature (>= 1).
    rng : None, int or numpy.random.Generator
    sampler : {"gibbs", "swendsen-wang", "wolff"}
        The move: :class:`~pgm_energy.GibbsSampler` or one of the algorithms of
        :class:`~pgm_energy.ClusterSampler` (pairwise binary/spin models; Potts models with
        Swendsen-Wang).
    n_threads : int, optional
        Threads across chains; the result does not depend on it.

    Returns
    -------
    AnnealResult

    Examples
    --------
    >>> import pgm_energy as pe
    >>> ring = pe.Ising([(0, 1), (1, 2), (2, 3), (3, 0)], [1.0, 1.0, 1.0, -1.0])
    >>> result = pe.anneal(ring, n_chains=4, rng=0)
    >>> result.best_energy                       # a frustrated ring: one bond unsatisfied
    -2.0
    """
    from .cluster import ClusterSampler
    from .sampling import GibbsSampler

    if not isinstance(model, EnergyModel):
        raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    n_sweeps_per_beta = positive_int(n_sweeps_per_beta, "n_sweeps_per_beta")
    if betas is None:
        schedule = default_schedule(model)
    else:
        schedule = real_array(betas, "betas", (1,))
        if schedule.size == 0 or not np.all(schedule > 0):
            raise ValueError(f"betas must be one or more inverse temperatures > 0, got "
                             f"{np.array2string(schedule, threshold=8)}")
        if np.any(np.diff(schedule) <= 0):
            raise ValueError("betas must be strictly increasing (annealing cools the chains)")
    if sampler == "gibbs":
        chains = GibbsSampler(model, n_chains, beta=schedule[0], rng=rng, n_threads=n_threads)
    else:
        chains = ClusterSampler(model, n_chains, algorithm=sampler, beta=schedule[0], rng=rng,
                                n_threads=n_threads)
    best = chains.state
    best_energy = model.energy(best)
    for beta in schedule:
        chains.beta = float(beta)
        state = chains.run(n_sweeps_per_beta).state
        energy = model.energy(state)
        lower = energy < best_energy
        for g in best:
            best[g][lower] = state[g][lower]
        best_energy = np.where(lower, energy, best_energy)
    return AnnealResult(best, best_energy, schedule.copy())
