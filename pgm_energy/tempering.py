"""Parallel tempering: replicas of Gibbs chains at several inverse temperatures, with swaps.

The replicas are one :class:`~pgm_energy.GibbsSampler` whose chains carry their own inverse
temperature (its ``beta`` per chain). Its state, the swap counts, the alternation of even and
odd pairs and the random state of the swap draws make up :class:`TemperingState`, a public
value (:meth:`ParallelTempering.get_state`, :meth:`ParallelTempering.load_state`); the swap
statistics are a value too (:class:`SwapStatistics`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._chains import check_chain_memory
from ._checks import check_beta, nonnegative_int, positive_int
from ._run import timed_chunks
from .model import EnergyModel
from .sampling import GibbsSampler, GibbsState

__all__ = ["ParallelTempering", "TemperingState", "SwapStatistics"]


@dataclass(frozen=True, eq=False)
class SwapStatistics:
    """Swap moves between neighbouring temperatures, counted since the start.

    Attributes
    ----------
    betas : numpy.ndarray, shape (n_betas,)
        The inverse temperatures, from 1 downwards; pair ``k`` is ``betas[k], betas[k+1]``.
    accepted, proposed : numpy.ndarray of int, shape (n_betas - 1,)
        Accepted and proposed swaps of each pair (one proposal per chain and round).
    """

    betas: np.ndarray
    accepted: np.ndarray
    proposed: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        """Acceptance rate ``accepted / proposed`` of each pair (0 before any proposal)."""
        return self.accepted / np.maximum(self.proposed, 1)


@dataclass(frozen=True, eq=False)
class TemperingState:
    """The complete state of a :class:`ParallelTempering`, as a value.

    Attributes
    ----------
    replicas : GibbsState
        All chains: those at ``betas[k]`` are chains ``k * n_chains`` to
        ``(k + 1) * n_chains - 1``.
    swaps : SwapStatistics
        The swap counts (and the ladder ``betas``).
    parity : int
        0 if the next swap round proposes the pairs (0, 1), (2, 3), ..., 1 for (1, 2), ...
    swap_rng : dict
        The state of the generator that draws the swap decisions
        (``numpy.random.Generator.bit_generator.state``).
    """

    replicas: GibbsState
    swaps: SwapStatistics
    parity: int
    swap_rng: dict


class ParallelTempering:
    """Replicas of the chains at several inverse temperatures, with neighbour swaps.

    Parameters
    ----------
    model : EnergyModel
    betas : sequence of float
        Inverse temperatures, each > 0, one of them exactly 1 (the target); sorted
        internally from 1 downwards.
    n_chains : int
        Chains per temperature.
    rng : None, int or numpy.random.Generator
    schedule, n_threads :
        As for :class:`~pgm_energy.GibbsSampler`.

    Notes
    -----
    After each sweep, neighbouring temperatures ``k, k+1`` (alternating even and odd pairs)
    propose to swap their states, chain by chain, accepted with probability
    ``min(1, exp((beta_k - beta_{k+1}) (E_k - E_{k+1})))``; swapping states keeps every
    chain's distribution the product of the tempered ones. :attr:`swap_statistics` counts the
    accepted and proposed swaps of each neighbour pair (``swap_rates``: their ratio).

    Examples
    --------
    >>> import pgm_energy as pe
    >>> pt = pe.ParallelTempering(pe.RBM(6, 3, rng=0), [1.0, 0.5], n_chains=4, rng=0)
    >>> stats = pt.run(10).swap_statistics
    >>> stats.proposed.tolist()                   # pair (0, 1) is proposed every other round
    [20]
    >>> saved = pt.get_state()
    >>> after = pt.run(5).state["x"]
    >>> pt.load_state(saved)
    >>> bool((pt.run(5).state["x"] == after).all())
    True
    """

    def __init__(self, model: EnergyModel, betas: Sequence[float], n_chains: int = 100,
                 rng=None, *, schedule: str = "auto", n_threads: int | None = None):
        betas = np.array([check_beta(b) for b in np.atleast_1d(betas)])
        if len(betas) < 2 or not np.any(betas == 1.0):
            raise ValueError(f"betas must hold at least two values, one of them 1.0, got "
                             f"{betas.tolist()}")
        if len(np.unique(betas)) != len(betas):
            raise ValueError(f"betas must be distinct, got {betas.tolist()}")
        self.betas = np.sort(betas)[::-1]
        self.n_chains = positive_int(n_chains, "n_chains")
        if isinstance(model, EnergyModel):
            check_chain_memory(len(self.betas) * self.n_chains, model.graph.n_units,
                               "len(betas) * n_chains")
        gen = np.random.default_rng(rng)
        self._gen = gen
        self.sampler = GibbsSampler(model, len(self.betas) * self.n_chains, schedule=schedule,
                                    rng=gen, n_threads=n_threads)
        self.sampler.beta = np.repeat(self.betas, self.n_chains)
        self._accepted = np.zeros(len(self.betas) - 1, np.int64)
        self._proposed = np.zeros(len(self.betas) - 1, np.int64)
        self._parity = 0

    @property
    def swap_statistics(self) -> SwapStatistics:
        """Accepted and proposed swaps of each neighbour pair so far (a value)."""
        return SwapStatistics(self.betas.copy(), self._accepted.copy(), self._proposed.copy())

    @property
    def swap_rates(self) -> np.ndarray:
        """Acceptance rate of swaps between temperatures k and k+1, shape (n_betas - 1,)."""
        return self.swap_statistics.rates

    @property
    def state(self) -> dict:
        """State of the chains at beta = 1: ``{group: (n_chains, n)}``."""
        return {g: v[:self.n_chains] for g, v in self.sampler.state.items()}

    def get_state(self) -> TemperingState:
        """The complete state as a value: every replica's chains and streams, the swap
        counts, the parity of the next swap round and the swap draws' random state.

        Returns
        -------
        TemperingState
        """
        return TemperingState(self.sampler.get_state(), self.swap_statistics, self._parity,
                              copy.deepcopy(self._gen.bit_generator.state))

    def load_state(self, state: TemperingState) -> None:
        """Restore a state from :meth:`get_state` (of a ``ParallelTempering`` over the same
        model, ladder and number of chains); the run then continues exactly.

        Raises
        ------
        TypeError
            ``state`` is not a :class:`TemperingState`.
        ValueError
            Another ladder of ``betas``, another number of chains, or replica states that do
            not fit (the message says what differs).
        """
        if not isinstance(state, TemperingState):
            raise TypeError(f"state must be a TemperingState (from get_state()), got "
                            f"{type(state).__name__}")
        swaps = state.swaps
        if not np.array_equal(np.asarray(swaps.betas, float), self.betas):
            raise ValueError(f"state is for the betas {np.asarray(swaps.betas).tolist()}, this "
                             f"tempering has {self.betas.tolist()}")
        pairs = (len(self.betas) - 1,)
        if np.shape(swaps.accepted) != pairs or np.shape(swaps.proposed) != pairs:
            raise ValueError(f"state.swaps must count {pairs[0]} pairs, got shapes "
                             f"{np.shape(swaps.accepted)} and {np.shape(swaps.proposed)}")
        if state.parity not in (0, 1):
            raise ValueError(f"state.parity must be 0 or 1, got {state.parity!r}")
        replicas = state.replicas
        if not isinstance(replicas, GibbsState):
            raise TypeError(f"state.replicas must be a GibbsState, got "
                            f"{type(replicas).__name__}")
        if replicas.n_chains != self.sampler.n_chains:
            raise ValueError(f"state holds {replicas.n_chains // len(self.betas)} chains per "
                             f"temperature, this tempering has n_chains={self.n_chains}")
        if not np.array_equal(np.broadcast_to(replicas.beta, (self.sampler.n_chains,)),
                              np.repeat(self.betas, self.n_chains)):
            raise ValueError("state.replicas carries inverse temperatures other than this "
                             "tempering's ladder")
        if not isinstance(state.swap_rng, dict) or state.swap_rng.get(
                "bit_generator") != type(self._gen.bit_generator).__name__:
            raise ValueError("state.swap_rng is not the state of this tempering's "
                             f"{type(self._gen.bit_generator).__name__} generator")
        self.sampler.load_state(replicas)
        self._gen.bit_generator.state = copy.deepcopy(state.swap_rng)
        self._accepted[:] = swaps.accepted
        self._proposed[:] = swaps.proposed
        self._parity = int(state.parity)

    def run(self, n_sweeps: int) -> "ParallelTempering":
        """``n_sweeps`` rounds of one Gibbs sweep at every temperature plus a swap step.

        Ctrl-C stops the run between two whole rounds (:mod:`pgm_energy._run`) with
        ``KeyboardInterrupt``; the replicas, their streams, the swap counts and the swap
        draws stay consistent, and the run can go on.
        """
        for _, size in timed_chunks(nonnegative_int(n_sweeps, "n_sweeps")):
            for _ in range(size):
                self.sampler.run(1)
                self._swap()
        return self

    def sample(self, n_samples: int, thin: int = 1, burn_in: int = 0) -> dict:
        """Samples at beta = 1: ``{group: (n_samples, n_chains, n)}``."""
        n_samples = nonnegative_int(n_samples, "n_samples")
        thin = positive_int(thin, "thin")
        self.run(nonnegative_int(burn_in, "burn_in"))
        out = {g: np.empty((n_samples, self.n_chains, u.n))
               for g, u in self.sampler.model.units.items()}
        for k in range(n_samples):
            self.run(thin)
            for g, arr in self.state.items():
                out[g][k] = arr
        return out

    def _swap(self):
        model, R, n = self.sampler.model, len(self.betas), self.n_chains
        state = self.sampler.state
        energy = model.energy(state).reshape(R, n)
        replicas = {g: v.reshape(R, n, -1) for g, v in state.items()}
        for k in range(self._parity, R - 1, 2):
            log_accept = (self.betas[k] - self.betas[k + 1]) * (energy[k] - energy[k + 1])
            accept = np.log(self._gen.random(n)) < log_accept
            for v in replicas.values():
                v[k, accept], v[k + 1, accept] = v[k + 1, accept], v[k, accept].copy()
            self._accepted[k] += accept.sum()
            self._proposed[k] += n
        self._parity = 1 - self._parity
        self.sampler.state = {g: v.reshape(R * n, -1) for g, v in replicas.items()}
