"""Parallel tempering: replicas of chains at several inverse temperatures, with swaps, walker
round trips and an adaptive ladder.

The replicas are one sampler (:func:`make_sampler`: a :class:`~pgm_energy.GibbsSampler`, or a
cluster sampler for ``move="swendsen-wang"`` or ``"wolff"``) whose chains carry their own
inverse temperature (its ``beta`` per chain). Its state, the walkers' labels, the swap counts,
the alternation of even and odd pairs, the adaptation clock and the random state of the swap
draws make up :class:`TemperingState`, a public value (:meth:`ParallelTempering.get_state`,
:meth:`ParallelTempering.load_state`); the swap statistics are a value too
(:class:`SwapStatistics`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ._chains import check_chain_memory
from ._checks import check_beta, int_at_least, nonnegative_int, positive_float, positive_int
from ._run import timed_chunks
from .model import EnergyModel
from .sampling import GibbsSampler, GibbsState, clamp_values

__all__ = ["ParallelTempering", "TemperingState", "SwapStatistics"]

#: The moves a tempering (and a persistent estimator) can run its chains with.
MOVES = ("gibbs", "swendsen-wang", "wolff")

#: Walker labels (:attr:`TemperingState.labels`): no extreme visited yet; up (the last extreme
#: visited was beta = 1); down after a visit to beta = 1 (the next arrival at beta = 1
#: completes a round trip); down without an earlier visit to beta = 1.
UNLABELLED, UP, DOWN, DOWN_UNSTARTED = 0, 1, -1, -2


def check_move(move) -> str:
    """``move`` if it names one of :data:`MOVES`, else a ``ValueError`` listing them."""
    if not isinstance(move, str) or move not in MOVES:
        raise ValueError(f"move must be one of {', '.join(map(repr, MOVES))}, got {move!r}")
    return move


def make_sampler(model: EnergyModel, n_chains: int, move: str = "gibbs",
                 schedule: str = "auto", rng=None, n_threads: int | None = None):
    """The chains of a move: ``GibbsSampler(model, n_chains, schedule=schedule, ...)`` for
    ``move="gibbs"``, ``pgm_energy.cluster.ClusterSampler(model, n_chains, algorithm=move,
    ...)`` for a cluster algorithm (imported here, on first use). Both have the same
    ``state`` / per-chain ``beta`` / ``run`` / ``get_state`` / ``load_state`` interface.

    Raises
    ------
    ValueError
        ``move`` is not one of :data:`MOVES`, or a Gibbs ``schedule`` other than ``"auto"``
        is asked of a cluster move.
    """
    if check_move(move) == "gibbs":
        return GibbsSampler(model, n_chains, schedule=schedule, rng=rng, n_threads=n_threads)
    if schedule != "auto":
        raise ValueError(f"schedule={schedule!r} is a Gibbs schedule; move={move!r} has none "
                         "(leave schedule='auto')")
    from .cluster import ClusterSampler

    return ClusterSampler(model, n_chains, algorithm=move, rng=rng, n_threads=n_threads)


def ladder(betas, beta_min: float | None = None) -> np.ndarray:
    """Inverse temperatures from 1 downwards, strictly decreasing.

    ``betas`` is a sequence (one value exactly 1, all distinct and > 0; sorted here), or an
    int ``n >= 2`` with ``beta_min`` in (0, 1): the geometric ladder
    ``beta_k = beta_min ** (k / (n - 1))``, ``k = 0 .. n - 1``.
    """
    if isinstance(betas, (int, np.integer)) and not isinstance(betas, (bool, np.bool_)):
        n = int_at_least(betas, 2, "betas")
        if beta_min is None:
            raise ValueError(f"betas={n} (a number of temperatures) needs beta_min, the "
                             "smallest inverse temperature of the geometric ladder")
        beta_min = check_beta(beta_min)
        if beta_min >= 1:
            raise ValueError(f"beta_min must be < 1, got {beta_min!r}")
        return beta_min ** (np.arange(n) / (n - 1))
    if beta_min is not None:
        raise ValueError(f"beta_min={beta_min!r} goes with betas=<number of temperatures>; "
                         "a sequence of betas holds its own smallest value")
    betas = np.array([check_beta(b) for b in np.atleast_1d(betas)])
    if len(betas) < 2 or not np.any(betas == 1.0):
        raise ValueError(f"betas must hold at least two values, one of them 1.0, got "
                         f"{betas.tolist()}")
    if len(np.unique(betas)) != len(betas):
        raise ValueError(f"betas must be distinct, got {betas.tolist()}")
    return np.sort(betas)[::-1]


@dataclass(frozen=True, eq=False)
class SwapStatistics:
    """Swap moves and walker travel, counted since the start of the tempering, or since
    :meth:`ParallelTempering.reset_statistics` (which :meth:`ParallelTempering.adapt` calls
    when it returns), across ladder changes made meanwhile.

    Attributes
    ----------
    betas : numpy.ndarray, shape (n_betas,)
        The inverse temperatures now, from 1 downwards; pair ``k`` is ``betas[k], betas[k+1]``.
    accepted, proposed : numpy.ndarray of int, shape (n_betas - 1,)
        Accepted and proposed swaps of each pair (one proposal per chain and round).
    round_trips : numpy.ndarray of int, shape (n_chains,)
        Round trips completed in each chain column (the ``n_betas`` replicas that swap with
        each other): arrivals at beta = 1 of a walker that came from beta = 1 down to
        ``beta_min`` since its last visit to beta = 1. ``round_trips.sum()`` is the total.
    up_visits, down_visits : numpy.ndarray of int, shape (n_betas,)
        Walkers counted at each temperature after every round, by label: up (the last extreme
        they visited is beta = 1) and down (it is ``beta_min``); walkers that visited neither
        yet are not counted.
    """

    betas: np.ndarray
    accepted: np.ndarray
    proposed: np.ndarray
    round_trips: np.ndarray
    up_visits: np.ndarray
    down_visits: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        """Acceptance rate ``accepted / proposed`` of each pair (0 before any proposal)."""
        return self.accepted / np.maximum(self.proposed, 1)

    @property
    def up_fraction(self) -> np.ndarray:
        """The fraction of up-moving walkers at each temperature (Katzgraber et al. 2006),

        ``f_k = up_visits[k] / (up_visits[k] + down_visits[k])``,

        1 at beta = 1 and 0 at ``beta_min``; NaN where no labelled walker was counted. A
        ladder whose walkers flow freely has ``f`` falling steadily from 1 to 0; a plateau
        of ``f`` between two steep drops marks the bottleneck.
        """
        counted = self.up_visits + self.down_visits
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counted > 0, self.up_visits / np.maximum(counted, 1), np.nan)


@dataclass(frozen=True, eq=False)
class TemperingState:
    """The complete state of a :class:`ParallelTempering`, as a value.

    Attributes
    ----------
    replicas : GibbsState
        All chains: those at ``betas[k]`` are chains ``k * n_chains`` to
        ``(k + 1) * n_chains - 1``; their ``beta`` is the ladder.
    swaps : SwapStatistics
        The counts (and the ladder ``betas``).
    parity : int
        0 if the next swap round proposes the pairs (0, 1), (2, 3), ..., 1 for (1, 2), ...
    swap_rng : dict
        The state of the generator that draws the swap decisions
        (``numpy.random.Generator.bit_generator.state``).
    walkers : numpy.ndarray of int, shape (n_betas, n_chains)
        ``walkers[k, c]``: the walker (the replica state, which moves with the swaps) at
        ``betas[k]`` in chain column ``c``, named by the temperature it started at.
    labels : numpy.ndarray of int8, shape (n_betas, n_chains)
        The label of the walker at ``[k, c]``: 1 up (the last extreme it visited is beta = 1),
        -1 down after a visit to beta = 1 (its next arrival at beta = 1 completes a round
        trip), -2 down without an earlier visit to beta = 1, 0 no extreme visited yet.
    adapt_rounds : int
        Rounds run by :meth:`ParallelTempering.adapt` so far (the clock ``t`` of its gain).
    acceptance : numpy.ndarray, shape (n_betas - 1,)
        The latest mean swap acceptance probability of each pair (NaN before its first
        proposal), which adaptation reads.
    """

    replicas: GibbsState
    swaps: SwapStatistics
    parity: int
    swap_rng: dict
    walkers: np.ndarray
    labels: np.ndarray
    adapt_rounds: int
    acceptance: np.ndarray


class ParallelTempering:
    """Replicas of the chains at several inverse temperatures, with neighbour swaps.

    Parameters
    ----------
    model : EnergyModel
    betas : sequence of float, or int
        Inverse temperatures, each > 0, one of them exactly 1 (the target); sorted
        internally from 1 downwards. Or the number of temperatures ``n >= 2`` of the
        geometric ladder ``beta_k = beta_min ** (k / (n - 1))`` from 1 down to ``beta_min``.
    n_chains : int
        Chains per temperature.
    rng : None, int or numpy.random.Generator
    beta_min : float, optional
        The smallest inverse temperature, in (0, 1), when ``betas`` is a number.
    move : {"gibbs", "swendsen-wang", "wolff"}
        How the chains move between swaps: Gibbs sweeps (:class:`~pgm_energy.GibbsSampler`,
        with ``schedule``), or a cluster algorithm (``pgm_energy.cluster.ClusterSampler``).
    schedule, n_threads :
        As for :class:`~pgm_energy.GibbsSampler`.

    Notes
    -----
    A round is one sweep of every chain, then a swap step: neighbouring temperatures
    ``k, k+1`` (the even pairs in one round, the odd ones in the next) propose to swap their
    states, chain column by chain column, accepted with probability

    ``p_k = min(1, exp((beta_k - beta_{k+1}) (E_k - E_{k+1})))``;

    swapping states keeps every chain's distribution the product of the tempered ones. The
    swap draws come from the tempering's generator: per round, for each proposed pair in
    increasing ``k``, ``n_chains`` uniforms ``u`` (one per column, in column order), the swap
    accepted where ``log u < log p_k``. Adaptation draws nothing.

    Walkers (the replica states) are followed through the swaps (Katzgraber et al. 2006):
    after each round the walkers at beta = 1 are labelled up and those at ``beta_min``
    down; a walker labelled down after a visit to beta = 1 that arrives at beta = 1 completes
    a round trip (beta = 1 -> ``beta_min`` -> beta = 1). At construction the walkers at the
    extremes take their labels, so a walker that starts at beta = 1 counts that start.
    :attr:`swap_statistics` holds the swap counts per pair, the round trips per chain column
    and the up/down visits per temperature.

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
    >>> pt = pe.ParallelTempering(pe.RBM(6, 3, rng=0), 4, beta_min=0.25, n_chains=4, rng=0)
    >>> pt.betas.round(3).tolist()                # geometric ladder from 1 to beta_min
    [1.0, 0.63, 0.397, 0.25]
    >>> pt = pt.adapt(50)                         # the inner betas move, the extremes stay
    >>> float(pt.betas[0]), float(pt.betas[-1])
    (1.0, 0.25)
    """

    def __init__(self, model: EnergyModel, betas: Sequence[float] | int, n_chains: int = 100,
                 rng=None, *, beta_min: float | None = None, move: str = "gibbs",
                 schedule: str = "auto", n_threads: int | None = None):
        self.betas = ladder(betas, beta_min)
        self.n_chains = positive_int(n_chains, "n_chains")
        self.move = check_move(move)
        R, n = len(self.betas), self.n_chains
        if isinstance(model, EnergyModel):
            check_chain_memory(R * n, model.graph.n_units, "len(betas) * n_chains")
        gen = np.random.default_rng(rng)
        self._gen = gen
        self.sampler = make_sampler(model, R * n, move, schedule, gen, n_threads)
        self.sampler.beta = np.repeat(self.betas, n)
        self._model = model
        self._walkers = np.repeat(np.arange(R)[:, None], n, axis=1)
        self._labels = np.full((R, n), UNLABELLED, np.int8)
        self._round_trips = np.zeros(n, np.int64)
        self._label_extremes()
        self._accepted = np.zeros(R - 1, np.int64)
        self._proposed = np.zeros(R - 1, np.int64)
        self._up = np.zeros(R, np.int64)
        self._down = np.zeros(R, np.int64)
        self._acceptance = np.full(R - 1, np.nan)
        self._parity = 0
        self._adapt_rounds = 0

    @property
    def swap_statistics(self) -> SwapStatistics:
        """Swap counts per pair, round trips per chain column and up/down visits per
        temperature, since the start or :meth:`reset_statistics` (a value)."""
        return SwapStatistics(self.betas.copy(), self._accepted.copy(), self._proposed.copy(),
                              self._round_trips.copy(), self._up.copy(), self._down.copy())

    @property
    def swap_rates(self) -> np.ndarray:
        """Acceptance rate of swaps between temperatures k and k+1, shape (n_betas - 1,)."""
        return self.swap_statistics.rates

    def reset_statistics(self) -> None:
        """Set the counts of :attr:`swap_statistics` to zero (swaps, round trips, visits).
        The walkers keep their places and labels, so a round trip under way still counts
        when it completes."""
        for counts in (self._accepted, self._proposed, self._round_trips, self._up,
                       self._down):
            counts[:] = 0

    @property
    def state(self) -> dict:
        """State of the chains at beta = 1: ``{group: (n_chains, n)}``."""
        return {g: v[:self.n_chains] for g, v in self.sampler.state.items()}

    def get_state(self) -> TemperingState:
        """The complete state as a value: every replica's chains and streams, the walkers and
        their labels, the counts, the parity of the next swap round, the adaptation clock and
        the swap draws' random state.

        Returns
        -------
        TemperingState
        """
        return TemperingState(self.sampler.get_state(), self.swap_statistics, self._parity,
                              copy.deepcopy(self._gen.bit_generator.state),
                              self._walkers.copy(), self._labels.copy(), self._adapt_rounds,
                              self._acceptance.copy())

    def load_state(self, state: TemperingState) -> None:
        """Restore a state from :meth:`get_state` (of a ``ParallelTempering`` over the same
        model, with as many temperatures and chains and the same ``beta_min``); the run then
        continues exactly. The inner betas are taken from the state (adaptation may have
        moved them).

        Raises
        ------
        TypeError
            ``state`` is not a :class:`TemperingState`.
        ValueError
            A ladder of another length or other extremes, another number of chains, or parts
            that do not fit (the message says what differs).
        """
        if not isinstance(state, TemperingState):
            raise TypeError(f"state must be a TemperingState (from get_state()), got "
                            f"{type(state).__name__}")
        R, n = len(self.betas), self.n_chains
        swaps = state.swaps
        betas = np.asarray(swaps.betas, float)
        if (betas.shape != (R,) or betas[0] != 1.0 or betas[-1] != self.betas[-1]
                or not np.all(np.diff(betas) < 0)):
            raise ValueError(f"state is for the betas {betas.tolist()}, which this tempering "
                             f"cannot take: it has {self.betas.tolist()} (a state may move the "
                             "inner betas, not their number, 1 or beta_min)")
        replicas = state.replicas
        if not isinstance(replicas, GibbsState):
            raise TypeError(f"state.replicas must be a GibbsState, got "
                            f"{type(replicas).__name__}")
        if replicas.n_chains != self.sampler.n_chains:
            raise ValueError(f"state holds {replicas.n_chains // R} chains per "
                             f"temperature, this tempering has n_chains={n}")
        for name, value, shape in (("swaps.accepted", swaps.accepted, (R - 1,)),
                                   ("swaps.proposed", swaps.proposed, (R - 1,)),
                                   ("swaps.round_trips", swaps.round_trips, (n,)),
                                   ("swaps.up_visits", swaps.up_visits, (R,)),
                                   ("swaps.down_visits", swaps.down_visits, (R,)),
                                   ("walkers", state.walkers, (R, n)),
                                   ("labels", state.labels, (R, n)),
                                   ("acceptance", state.acceptance, (R - 1,))):
            if np.shape(value) != shape:
                raise ValueError(f"state.{name} must have shape {shape}, got "
                                 f"{np.shape(value)}")
        if not np.array_equal(np.sort(state.walkers, axis=0),
                              np.repeat(np.arange(R)[:, None], n, axis=1)):
            raise ValueError(f"state.walkers must hold each walker 0 .. {R - 1} once per "
                             "chain column")
        if not np.isin(state.labels, (UNLABELLED, UP, DOWN, DOWN_UNSTARTED)).all():
            raise ValueError("state.labels must hold only the labels 1, 0, -1 and -2")
        if state.parity not in (0, 1):
            raise ValueError(f"state.parity must be 0 or 1, got {state.parity!r}")
        adapt_rounds = nonnegative_int(state.adapt_rounds, "state.adapt_rounds")
        if not np.array_equal(np.broadcast_to(replicas.beta, (R * n,)), np.repeat(betas, n)):
            raise ValueError("state.replicas carries inverse temperatures other than the "
                             "state's ladder")
        if not isinstance(state.swap_rng, dict) or state.swap_rng.get(
                "bit_generator") != type(self._gen.bit_generator).__name__:
            raise ValueError("state.swap_rng is not the state of this tempering's "
                             f"{type(self._gen.bit_generator).__name__} generator")
        self.sampler.load_state(replicas)
        self._gen.bit_generator.state = copy.deepcopy(state.swap_rng)
        self.betas = betas.copy()
        self._accepted[:] = swaps.accepted
        self._proposed[:] = swaps.proposed
        self._round_trips[:] = swaps.round_trips
        self._up[:] = swaps.up_visits
        self._down[:] = swaps.down_visits
        self._walkers[:] = state.walkers
        self._labels[:] = state.labels
        self._acceptance[:] = state.acceptance
        self._parity = int(state.parity)
        self._adapt_rounds = adapt_rounds

    def run(self, n_sweeps: int, clamp: Mapping | None = None) -> "ParallelTempering":
        """``n_sweeps`` rounds of one sweep at every temperature plus a swap step, on a
        fixed ladder.

        ``clamp`` holds units fixed as for :meth:`GibbsSampler.run
        <pgm_energy.GibbsSampler.run>` (``(n_chains, n)`` or ``(n,)`` per group, NaN marking
        a free unit), in the chains at beta = 1 and, column by column, in every replica at
        the other temperatures; swaps then exchange the free units only, and the chains
        sample the tempered conditionals given the held units.

        Ctrl-C stops the run between two whole rounds (:mod:`pgm_energy._run`) with
        ``KeyboardInterrupt``; the replicas, their streams, the walkers, the counts and the
        swap draws stay consistent, and the run can go on.
        """
        return self._rounds(n_sweeps, None, clamp)

    def adapt(self, n_sweeps: int, *, nu: float = 10.0, t0: float = 1000.0,
              reset_statistics: bool = True,
              clamp: Mapping | None = None) -> "ParallelTempering":
        """``n_sweeps`` rounds as :meth:`run`, each followed by a move of the inner betas
        that evens out the swap acceptance of neighbouring pairs (Vousden, Farr & Mandel
        2016); beta = 1 and ``beta_min`` stay. For burn-in: the ladder stays fixed after.

        In temperatures ``T_k = 1 / beta_k`` the ladder is the log-spacings
        ``S_k = log(T_{k+1} - T_k)``, ``k = 0 .. n_betas - 2``. After round ``t`` (counted
        over all ``adapt`` calls, :attr:`TemperingState.adapt_rounds`),

        ``S_k += kappa(t) (A_k - A_{k+1})``,  ``k = 0 .. n_betas - 3``,
        ``kappa(t) = t0 / (nu (t + t0))``,

        then all ``S_k`` shift by one amount so that the spacings still sum to
        ``1 / beta_min - 1``. ``A_k`` is the latest mean acceptance probability
        ``mean_c min(1, exp((beta_k - beta_{k+1}) (E_k - E_{k+1})))`` of pair ``k`` over the
        chain columns (pairs alternate, so one of ``A_k, A_{k+1}`` is from the round before;
        probabilities instead of accepted counts: less noise). A pair easier than the next
        gets a wider spacing; the fixed point has equal ``A_k``. The first move waits until
        every pair has been proposed; a two-temperature ladder has nothing to move.

        Parameters
        ----------
        n_sweeps : int
            Rounds to run.
        nu : float
            Adaptation time in rounds: the initial gain is ``1 / nu``. The default 10 settles
            a ladder of a few temperatures within some hundred rounds (Vousden et al.'s 100
            suits their runs of many thousands; it left the rates of a six-temperature
            Curie-Weiss ladder 1.4 apart, max/min, after 3000 rounds, where 10 brought them to
            1.01 in 1000).
        t0 : float
            Adaptation lag in rounds: the gain halves after ``t0`` rounds and decays as
            ``1 / t`` after, so the ladder converges and its noise dies out. ``numpy.inf``
            keeps the gain ``1 / nu`` for ever (a ladder that follows a changing model, as
            ``pe.PT(adapt=True)`` does).
        reset_statistics : bool
            Call :meth:`reset_statistics` at the end, so that :attr:`swap_statistics` then
            counts on the fixed ladder only.
        clamp : dict, optional
            Units held fixed, as for :meth:`run` (the ladder then adapts to the conditional).

        Returns
        -------
        ParallelTempering
            ``self``; :attr:`betas` and the chains' ``sampler.beta`` hold the new ladder.
        """
        gain = (positive_float(nu, "nu"), _lag(t0))
        self._rounds(n_sweeps, gain, clamp)
        if reset_statistics:
            self.reset_statistics()
        return self

    def sample(self, n_samples: int, thin: int = 1, burn_in: int = 0,
               clamp: Mapping | None = None) -> dict:
        """Samples at beta = 1: ``{group: (n_samples, n_chains, n)}``; ``clamp`` as for
        :meth:`run`."""
        n_samples = nonnegative_int(n_samples, "n_samples")
        thin = positive_int(thin, "thin")
        self.run(nonnegative_int(burn_in, "burn_in"), clamp)
        out = {g: np.empty((n_samples, self.n_chains, u.n)) for g, u in self._model.units.items()}
        for k in range(n_samples):
            self.run(thin, clamp)
            for g, arr in self.state.items():
                out[g][k] = arr
        return out

    # -- one round -------------------------------------------------------------------------
    def _replica_clamp(self, clamp):
        """``clamp`` of the chains at beta = 1, validated, repeated for every temperature."""
        if clamp is None:
            return None
        R = len(self.betas)
        return {g: np.tile(np.where(held, values, np.nan), (R, 1))
                for g, (values, held) in clamp_values(self._model, clamp,
                                                      self.n_chains).items()}

    def _rounds(self, n_sweeps, gain, clamp=None):
        n_sweeps = nonnegative_int(n_sweeps, "n_sweeps")
        clamp = self._replica_clamp(clamp)
        for _, size in timed_chunks(n_sweeps):
            for _ in range(size):
                self.sampler.run(1, clamp)
                self._swap()
                if gain is not None:
                    self._move_ladder(*gain)
        return self

    def _swap(self):
        R, n = len(self.betas), self.n_chains
        state = self.sampler.state
        energy = self._model.energy(state).reshape(R, n)
        replicas = {g: v.reshape(R, n, -1) for g, v in state.items()}
        for k in range(self._parity, R - 1, 2):
            log_accept = (self.betas[k] - self.betas[k + 1]) * (energy[k] - energy[k + 1])
            accept = np.log(self._gen.random(n)) < log_accept
            self._acceptance[k] = np.exp(np.minimum(log_accept, 0.0)).mean()
            for v in (*replicas.values(), self._walkers, self._labels):
                v[k, accept], v[k + 1, accept] = v[k + 1, accept], v[k, accept].copy()
            self._accepted[k] += accept.sum()
            self._proposed[k] += n
        self._parity = 1 - self._parity
        self.sampler.state = {g: v.reshape(R * n, -1) for g, v in replicas.items()}
        self._label_extremes()
        self._up += (self._labels == UP).sum(axis=1)
        self._down += (self._labels < 0).sum(axis=1)

    def _label_extremes(self):
        """Label the walkers at beta = 1 up (counting the round trips they complete) and
        those at beta_min down."""
        top, bottom = self._labels[0], self._labels[-1]
        self._round_trips += top == DOWN
        top[:] = UP
        bottom[:] = np.where(bottom == UP, DOWN, np.where(bottom == UNLABELLED,
                                                           DOWN_UNSTARTED, bottom))

    def _move_ladder(self, nu, t0):
        """One adaptation step of the inner betas (see :meth:`adapt`)."""
        t = self._adapt_rounds
        self._adapt_rounds += 1
        A = self._acceptance
        if len(A) < 2 or np.isnan(A).any():
            return
        kappa = 1.0 / nu if np.isinf(t0) else t0 / (nu * (t + t0))
        T = 1.0 / self.betas
        S = np.log(np.diff(T))
        S[:-1] += kappa * (A[:-1] - A[1:])
        gaps = np.exp(S - S.max())
        gaps *= (T[-1] - T[0]) / gaps.sum()
        betas = 1.0 / (T[0] + np.concatenate(([0.0], np.cumsum(gaps))))
        betas[0], betas[-1] = 1.0, self.betas[-1]
        self.betas = betas
        self.sampler.beta = np.repeat(betas, self.n_chains)


def _lag(t0) -> float:
    """The adaptation lag: a float > 0, or ``numpy.inf`` (a constant gain)."""
    return np.inf if isinstance(t0, float) and t0 == np.inf else positive_float(t0, "t0")
