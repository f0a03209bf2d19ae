"""Gibbs sampling: the Python face of the ``_gibbs`` kernels.

Each chain owns a xoshiro256+ random stream seeded from the user's ``rng`` through
``numpy.random.SeedSequence``, so the samples depend on the seed only, never on the thread
count. Draw order (which the numpy twin in ``tests/reference/gibbs.py`` reproduces): per
chain, one uniform per unit update, in the order the units are updated.

Clamping (``run(n_sweeps, clamp={group: values})``, NaN marking a free unit): a unit held in
every chain is left out of the update order (no draws, as for a whole clamped group); when
the chains hold different units, a unit held in some chains only is updated in every chain,
its uniform drawn, and the chains that hold it keep their value. So one clamp row for all
chains (or rows that agree) draws exactly as the same units clamped by groups.

Schedules (all sample the same distribution):

* ``"sequential"``: one unit at a time in index order, any graph.
* ``"chromatic"``: colour by colour (a greedy colouring of the unit graph); the units of a
  colour are conditionally independent, so each colour is one block.
* ``"block"``: for models whose units form two colours with dense couplings (RBM layers):
  each layer is updated for all chains at once from a BLAS matrix product.
* ``"auto"``: ``"block"`` for dense bipartite models, else ``"chromatic"`` for sparse graphs,
  else ``"sequential"``.

Continuous units (``pe.Gaussian``, ``pe.ReLU``, ``pe.DReLU``): a model with any keeps its
chains as float64 values (discrete models keep one byte per unit and chain), and a continuous
unit draws from its conditional given its local field ``f`` by inversion, from its one uniform
``u`` of the update made open as ``u + 2^-53`` (:meth:`pgm_energy.units.ContinuousUnits.quantile`:
Gaussian ``sigma^2 f + sigma / sqrt(beta) ndtri(u)``, truncated normals in log space). Models
whose continuous precision is not positive definite are refused (``ValueError``).

Users' terms that read continuous groups through ``energy`` only (no ``compile()``) leave
those units without a closed-form conditional: each such unit takes a Metropolis-Hastings
step instead (``_SparseEngine._metropolis``). The proposal is the unit's conditional given
the field of the compiled terms alone (drawn as above, one uniform), accepted with
probability ``min(1, exp(-beta (E_gen(x') - E_gen(x))))`` over the users' terms ``E_gen``
(a second uniform); it is exact when those terms are flat in the unit and mixes well while
they change the energy little across the conditional's width.
:attr:`GibbsSampler.acceptance_rate` reports the fraction accepted. Keeping such a model
normalisable is the user's part.

A sampler's whole state (unit values, random streams, inverse temperatures) is a public value,
:class:`GibbsState`: :meth:`GibbsSampler.get_state` returns it and
:meth:`GibbsSampler.load_state` restores it exactly, so checkpoints, tempering and learning
never read the sampler's private attributes. Parallel tempering lives in
:mod:`pgm_energy.tempering`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import _run
from ._chains import (chain_block, chain_streams, check_chain_memory, one_blas_thread,
                      random_state, slabs, state_bytes, state_values)
from ._checks import check_beta, nonnegative_int, positive_int, real_array
from ._checks import n_threads as check_n_threads
from ._kernels import _gibbs
from ._run import openmp_threads, timed_chunks
from .distributed import as_runner, n_pieces_for
from .model import EnergyModel
from .terms.base import energy_change

__all__ = ["GibbsSampler", "GibbsState"]

SCHEDULES = ("auto", "sequential", "chromatic", "block")
_DENSE_FRACTION = 0.25
#: The kernels' slot kinds of the continuous units (``_random.h``: PE_GAUSSIAN, PE_RELU,
#: PE_DRELU; 0, PE_TWO_VALUED, for discrete slots).
_SLOT_KIND = {"gaussian": 1, "relu": 2, "drelu": 3}


def slot_kinds(graph) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The kernels' description of the continuous units of a flat graph: ``kind``
    ``(n_units,)`` uint8 (:data:`_SLOT_KIND`, 0 for discrete slots) and ``param``
    ``(n_units, 4)``, each continuous unit's parameters in the order of its kind's
    ``param_names`` (Gaussian: sigma; DReLU: gamma_plus, gamma_minus, theta_plus,
    theta_minus); ``(None, None)`` for a discrete model. Read at every sweep: the units'
    parameters are live, and checked here."""
    if not graph.continuous.any():
        return None, None
    kind = np.zeros(graph.n_units, np.uint8)
    param = np.zeros((graph.n_units, 4))
    for g, unit in graph.units.items():
        if unit.continuous:
            unit.check(f"units[{g!r}]")
            slots = graph.slots(g)
            kind[slots] = _SLOT_KIND[unit.kind]
            for k, name in enumerate(unit.param_names):
                param[slots, k] = getattr(unit, name)
    return kind, param


def _per_chain(values, n_chains: int) -> np.ndarray:
    """``values`` as a contiguous float64 array of shape ``(n_chains,)`` (a scalar is
    broadcast)."""
    if type(values) is np.ndarray and values.dtype == np.float64 and values.shape == (n_chains,):
        return values
    return np.ascontiguousarray(np.broadcast_to(np.asarray(values, np.float64), (n_chains,)))


def clamp_values(model: EnergyModel, clamp, n_chains: int) -> dict:
    """Validate a clamp of ``n_chains`` chains of ``model``, ``{group: (n_chains, n) or (n,)
    or (1, n)}`` with NaN marking free units: ``{group: (values, held)}``, both
    ``(n_chains, n)`` (values NaN where free, held a bool mask). Held values lie in the
    unit's domain: one of its values for discrete units, any finite value for Gaussian and
    DReLU units, a finite value >= 0 for ReLU units."""
    if not isinstance(clamp, Mapping):
        raise TypeError(f"clamp must be a dict of group name to array, got "
                        f"{type(clamp).__name__}")
    out = {}
    for g, value in clamp.items():
        if g not in model.units:
            raise ValueError(f"clamp has unknown group {g!r}; the groups are "
                             f"{list(model.units)}")
        unit = model.units[g]
        arr = np.asarray(value)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       or arr.dtype == bool):
            raise TypeError(f"clamp[{g!r}] must be a numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != unit.n or arr.shape[0] not in (1, n_chains):
            raise ValueError(f"clamp[{g!r}] must have shape ({n_chains}, {unit.n}) "
                             f"(one row per chain) or ({unit.n},) (one row for all "
                             f"chains), got {np.shape(value)}")
        free = np.isnan(arr)
        with np.errstate(invalid="ignore"):
            bad = ~(free | unit.in_domain(arr))
        if bad.any():
            chain, i = np.argwhere(bad)[0]
            where = f"unit {i}" if arr.shape[0] == 1 else f"chain {chain}, unit {i}"
            raise ValueError(f"clamp[{g!r}] holds {float(arr[chain, i])!r} at {where}: "
                             f"{unit.kind} units take {unit.domain}, or NaN for a free unit")
        out[g] = (np.broadcast_to(arr, (n_chains, unit.n)),
                  np.broadcast_to(~free, (n_chains, unit.n)))
    return out


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class GibbsState:
    """The complete state of a :class:`GibbsSampler`, as a value (read-only copies).

    Restoring it with :meth:`GibbsSampler.load_state` makes the sampler continue exactly,
    draw for draw, as it would have from the moment the state was taken.

    Attributes
    ----------
    values : dict of str to numpy.ndarray
        ``{group: (n_chains, n)}`` unit values of every chain (as :attr:`GibbsSampler.state`).
    streams : numpy.ndarray, shape (4, n_chains), uint64
        Each chain's xoshiro256+ random stream state (column ``c`` for chain ``c``).
    beta : float or numpy.ndarray of shape (n_chains,)
        The inverse temperature (one per chain where they differ, as under tempering).
    """

    values: Mapping[str, np.ndarray]
    streams: np.ndarray
    beta: float | np.ndarray

    @property
    def n_chains(self) -> int:
        """Number of chains the state holds."""
        return self.streams.shape[1] if np.ndim(self.streams) == 2 else 0


class _ChainSampler:
    """What every sampler of many chains shares: the model, the chains' inverse temperatures,
    their state (and its value, :class:`GibbsState`) and the run / sample loop.

    A subclass's ``__init__`` calls :meth:`_setup`, builds its engine (an object with
    ``load(flat)``, ``flat()`` and ``sweep(graph, free, betas, streams, n_sweeps, n_threads,
    keep)`` over the chains' slot values ``(n_chains, n_units)``: ``free`` the slots updated,
    ``keep`` None or the ``(n_chains, n_units)`` slots each chain holds among them) and hands
    it to :meth:`_start`.
    """

    def _setup(self, model: EnergyModel, n_chains: int, n_threads: int | None):
        """Check and store the model, ``n_chains`` and ``n_threads``; refuse chains that do
        not fit in memory. Returns the model's flat graph."""
        if not isinstance(model, EnergyModel):
            raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
        self.model = model
        self.n_chains = positive_int(n_chains, "n_chains")
        self.n_threads = check_n_threads(n_threads)
        graph = model.graph
        if not self._continuous:
            graph.require_discrete(type(self).__name__)
        self._check_continuous(graph)
        check_chain_memory(self.n_chains, graph.n_units)
        return graph

    #: Whether the sampler serves continuous units (Gibbs does; cluster moves do not).
    _continuous = False
    #: (graph, whether it couples continuous units to each other), for the last graph seen.
    _coupled = (None, False)

    def _check_continuous(self, graph) -> None:
        """Refuse what a Gibbs chain over continuous units cannot sample: a ``ValueError``
        (naming the groups) for a precision of the compiled terms that is not positive
        definite (``exp(-E)`` does not normalise). Users' terms reading continuous groups
        are the user's to keep normalisable."""
        if graph.continuous.any() and self._coupled_continuous(graph):
            graph.continuous_precision(type(self).__name__)   # diagonal otherwise: > 0

    def _coupled_continuous(self, graph) -> bool:
        """Whether ``graph`` couples continuous units to each other (kept per graph: its
        edges do not change)."""
        if self._coupled[0] is not graph:
            self._coupled = (graph, bool(graph.continuous[graph.edges].all(axis=1).any()))
        return self._coupled[1]

    def _start(self, engine, beta, rng, initial_state) -> None:
        """Set the engine, the inverse temperatures, the chains' streams and their uniform
        random initial states (both drawn from ``rng``: the same seed gives every sampler
        the same initial states), then ``initial_state`` if given."""
        self._engine = engine
        self._betas = self._chain_betas(beta)
        gen = np.random.default_rng(rng)
        self._streams = chain_streams(gen, self.n_chains)
        engine.load(random_state(self.model.graph, gen, self.n_chains))
        if initial_state is not None:
            self.state = initial_state

    # -- temperature ---------------------------------------------------------------------
    @property
    def beta(self) -> float | np.ndarray:
        """The inverse temperature of the chains: a float when they all share it, else an
        array of one value per chain (as :class:`~pgm_energy.ParallelTempering` sets).

        Settable with a float > 0 (every chain) or an array of ``n_chains`` of them.
        """
        if np.all(self._betas == self._betas[0]):
            return float(self._betas[0])
        return self._betas.copy()

    @beta.setter
    def beta(self, value: float | np.ndarray) -> None:
        self._betas[:] = self._chain_betas(value)

    def _chain_betas(self, value) -> np.ndarray:
        """``value`` (a float or one per chain), validated, as (n_chains,) float64."""
        if np.ndim(value) == 0:
            value = np.full(self.n_chains, check_beta(value))
        betas = real_array(value, "beta", (1,))
        if betas.shape != (self.n_chains,):
            raise ValueError(f"beta must be a float or an array of shape ({self.n_chains},) "
                             f"(one per chain), got shape {betas.shape}")
        if not np.all(betas > 0):
            raise ValueError(f"beta must be > 0 for every chain, got "
                             f"{np.array2string(betas, threshold=8)}")
        self.model.graph.check_energy_scale(float(betas.max()), type(self).__name__)
        return betas

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        """Current state of every chain: ``{group: (n_chains, n) array}`` (a copy).

        Settable (``{group: (n_chains, n) or (n,)}``, the groups given are replaced). For the
        sampler's whole state, random streams included, see :meth:`get_state`.
        """
        return self.model.graph.decode(self._engine.flat())

    @state.setter
    def state(self, value: Mapping) -> None:
        flat = self._engine.flat()
        graph = self.model.graph
        for g, arr in self._per_chain(value, "state").items():
            flat[:, graph.slots(g)] = self.model.units[g].encode(arr)
        self._engine.load(flat)

    def get_state(self) -> GibbsState:
        """The sampler's complete state as a value: unit values of every chain, the chains'
        random streams and their inverse temperatures (read-only copies).

        (A method, not ``state()``: :attr:`state` is the property of the unit values.)

        Returns
        -------
        GibbsState
        """
        beta = self.beta
        return GibbsState(
            values={g: _read_only(v) for g, v in self.state.items()},
            streams=_read_only(self._streams[:, :self.n_chains].copy()),
            beta=beta if np.ndim(beta) == 0 else _read_only(beta))

    def load_state(self, state: GibbsState) -> None:
        """Restore a state from :meth:`get_state` (of this sampler or of another over the
        same model with as many chains); the chains then continue exactly as from the
        moment it was taken.

        Raises
        ------
        TypeError
            ``state`` is not a :class:`GibbsState`.
        ValueError
            Its groups, number of chains, array shapes or values do not fit this sampler
            (the message says what differs).
        """
        if not isinstance(state, GibbsState):
            raise TypeError(f"state must be a GibbsState (from get_state()), got "
                            f"{type(state).__name__}")
        groups = list(self.model.units)
        if not isinstance(state.values, Mapping) or set(state.values) != set(groups):
            got = list(state.values) if isinstance(state.values, Mapping) else state.values
            raise ValueError(f"state holds the groups {got}, this sampler's model has "
                             f"{groups}")
        streams = np.asarray(state.streams)
        if streams.ndim != 2 or streams.shape[0] != 4 or streams.dtype != np.uint64:
            raise ValueError(f"state.streams must be a (4, n_chains) uint64 array, got shape "
                             f"{streams.shape} and dtype {streams.dtype}")
        if streams.shape[1] != self.n_chains:
            raise ValueError(f"state holds {streams.shape[1]} chains, this sampler has "
                             f"n_chains={self.n_chains}")
        for g in groups:
            want = (self.n_chains, self.model.units[g].n)
            if np.shape(state.values[g]) != want:
                raise ValueError(f"state.values[{g!r}] has shape {np.shape(state.values[g])}, "
                                 f"this sampler needs {want}")
        betas = self._chain_betas(state.beta)
        self.state = state.values                 # validates the values' domain
        self._streams[:, :self.n_chains] = streams
        self._betas[:] = betas

    def _per_chain(self, value, what):
        """Validate ``{group: (n_chains, n) or (n,) or (1, n)}``, broadcast to all chains."""
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} must be a dict of group name to array")
        out = {}
        for g, arr in value.items():
            if g not in self.model.units:
                raise ValueError(f"{what} has unknown group {g!r}; the groups are "
                                 f"{list(self.model.units)}")
            arr = self.model.as_state({g: arr}, [g], what=what)[g]
            if arr.shape[0] == 1:
                arr = np.repeat(arr, self.n_chains, axis=0)
            if arr.shape[0] != self.n_chains:
                raise ValueError(f"{what}[{g!r}] must have shape ({self.n_chains}, "
                                 f"{self.model.units[g].n}) or one row for all chains, "
                                 f"got {arr.shape[0]} rows")
            out[g] = arr
        return out

    def _clamp(self, clamp, graph) -> tuple[np.ndarray, np.ndarray | None]:
        """Set the clamped units to their values; return the slots to update, ``free``
        (n_units,) (those some chain leaves free), and ``keep``: None when every chain holds
        the same units, else the (n_chains, n_units) slots each chain holds. ``graph``: the
        model's, as ``model.graph`` just returned it."""
        if clamp is None:
            return np.ones(graph.n_units, bool), None
        values = clamp_values(self.model, clamp, self.n_chains)
        held = np.zeros((self.n_chains, graph.n_units), bool)
        flat = self._engine.flat()
        for g, (arr, units_held) in values.items():
            if not units_held.any():            # every unit NaN: the group is not clamped
                continue
            unit = self.model.units[g]
            slots = graph.slots(g)
            held[:, slots] = np.repeat(units_held, unit.width // unit.n, axis=1)
            fill = 0.0 if unit.continuous else unit.values[0]
            encoded = unit.encode(np.where(units_held, arr, fill))
            flat[:, slots] = np.where(held[:, slots], encoded, flat[:, slots])
        self._engine.load(flat)
        free = ~held.all(axis=0)
        if self._sweep_units is not None:     # a piece of a run on an executor: the run's
            free = self._sweep_units          # units (a superset), drawn as in the run
            keep = held & free
            return free, keep if keep.any() else None
        if (held == held[0]).all():
            return free, None
        return free, held & free

    # -- running -------------------------------------------------------------------------
    def run(self, n_sweeps: int, clamp: Mapping | None = None) -> "_ChainSampler":
        """Advance every chain by ``n_sweeps`` sweeps; ``clamp`` holds units fixed.

        ``clamp = {group: values}`` with values of shape ``(n_chains, n)`` (one row per
        chain) or ``(n,)`` / ``(1, n)`` (one row for all chains); NaN marks a free unit, every
        other entry is held at its value (for categorical groups, the value 0..k-1; for
        continuous groups, any finite value, >= 0 for ReLU units). The free
        units sample from their conditional given the held ones. A group given without NaN
        is held whole, as before; a group given all NaN is not clamped at all.

        Draws: a unit held in every chain is left out of the sweep (no draws). When the
        chains hold different units, a unit held in some of them is still updated in every
        chain (its uniform drawn, as for a free unit) and the chains holding it keep their
        value; one row for all chains therefore draws exactly as clamping whole groups.

        Raises ``ValueError`` (naming the group, and the unit) for an unknown group, a wrong
        shape, or a value outside the unit's domain (inf included); ``TypeError`` for a
        non-numeric array.

        The sweeps run in chunks of about 0.1 s (:mod:`pgm_energy._run`): Ctrl-C stops the
        run between two whole sweeps with ``KeyboardInterrupt``, leaving valid chains and
        their streams in step, from which the sampler can go on. The chunks change nothing:
        ``run(a)`` then ``run(b)`` gives the chains of ``run(a + b)``, draw for draw.
        """
        n_sweeps = nonnegative_int(n_sweeps, "n_sweeps")
        graph = self.model.graph            # validates and re-syncs live parameters
        if graph.continuous.any():          # (live parameters: the precision may have moved)
            self._check_continuous(graph)
        free, keep = self._clamp(clamp, graph)
        # Ctrl-C between whole sweeps. An unclamped run sizes its first chunk from the time
        # per sweep of the last unclamped one (a clamped sweep may cost far less), so that a
        # short run is one kernel call.
        seconds = self._sweep_seconds if clamp is None else None
        first = max(1, round(_run.CHUNK_SECONDS / seconds)) if seconds else 1
        for _, size in timed_chunks(n_sweeps, first):
            began = time.perf_counter()
            self._engine.sweep(graph, free, self._betas, self._streams, size,
                               openmp_threads(self.n_threads), keep)
            if clamp is None:
                self._sweep_seconds = (time.perf_counter() - began) / size
        return self

    def sample(self, n_samples: int, thin: int = 1, burn_in: int = 0,
               clamp: Mapping | None = None, *, executor=None) -> dict:
        """Run ``burn_in`` sweeps, then record the state every ``thin`` sweeps; ``clamp``
        as for :meth:`run` (NaN marks a free unit).

        With ``executor`` (a ``concurrent.futures.Executor`` or a
        :class:`pgm_energy.distributed.Runner`), blocks of chains run on its workers, each
        from its chains' state and streams, and the sampler ends in the state it would have
        reached here (:meth:`_sample_on`).

        Returns ``{group: (n_samples, n_chains, n)}``.
        """
        n_samples = nonnegative_int(n_samples, "n_samples")
        thin = positive_int(thin, "thin")
        burn_in = nonnegative_int(burn_in, "burn_in")
        if executor is not None:
            return self._sample_on(as_runner(executor), n_samples, thin, burn_in, clamp)
        self.run(burn_in, clamp)
        out = {g: np.empty((n_samples, self.n_chains, u.n)) for g, u in self.model.units.items()}
        for k in range(n_samples):
            self.run(thin, clamp)
            for g, arr in self.state.items():
                out[g][k] = arr
        return out


    def _config(self) -> dict:
        """Constructor arguments (besides model, chains, beta, rng) that rebuild the sampler."""
        raise NotImplementedError

    #: Slots every sweep updates, set only in a piece of :meth:`_sample_on` (the slots the
    #: whole run updates, so that the piece draws as the run does); None: from the clamp.
    _sweep_units = None

    #: Seconds per sweep of the last kernel call of an unclamped :meth:`run` (None before
    #: the first): sizes the first chunk of the next unclamped one.
    _sweep_seconds = None

    def _sample_on(self, runner, n_samples, thin, burn_in, clamp) -> dict:
        """:meth:`sample` with blocks of chains on ``runner`` (:mod:`pgm_energy.distributed`).

        Each piece rebuilds the sampler for its chains from the model (sent to the workers),
        loads their part of :meth:`get_state` and samples; the pieces' samples and final
        states are joined in chain order. Chains are independent and each has its own
        stream, so the draws are those of a run here (the block schedule's BLAS products
        may round differently with fewer chains).
        """
        graph = self.model.graph
        sweeps = burn_in + n_samples * thin
        seconds = 2e-9 * sweeps * self.n_chains * (graph.n_units + graph.n_edges)
        n_tasks = n_pieces_for(seconds, runner, self.n_chains)
        if not n_tasks:
            return self.sample(n_samples, thin, burn_in, clamp)
        runner.check_importable(self.model, "the model")
        sweep_units = None
        if clamp is not None:       # per chain, NaN where free; the run's swept slots
            clamp = {g: values for g, (values, _) in
                     clamp_values(self.model, clamp, self.n_chains).items()}
            sweep_units = self._clamp(clamp, graph)[0]
        state = self.get_state()
        bounds = np.linspace(0, self.n_chains, n_tasks + 1).round().astype(int)
        pieces = [({g: v[a:b] for g, v in state.values.items()}, state.streams[:, a:b],
                   self._betas[a:b], None if clamp is None else
                   {g: v[a:b] for g, v in clamp.items()})
                  for a, b in zip(bounds[:-1], bounds[1:])]
        shared = (type(self), self.model, dict(self._config(), n_threads=runner.n_threads),
                  n_samples, thin, burn_in, sweep_units)
        parts = runner.map(_sample_task, shared, pieces, what="sampling")
        groups = list(self.model.units)
        k = len(groups)
        self.load_state(GibbsState(
            {g: np.concatenate([p[k + i] for p in parts]) for i, g in enumerate(groups)},
            np.concatenate([p[2 * k] for p in parts], axis=1), self.beta))
        return {g: np.concatenate([p[i] for p in parts], axis=1) for i, g in enumerate(groups)}


def _sample_task(shared, piece) -> tuple:
    """One executor piece of :meth:`_ChainSampler.sample`: samples of each group, then the
    final values of each group and the streams."""
    cls, model, config, n_samples, thin, burn_in, sweep_units = shared
    values, streams, betas, clamp = piece
    sampler = cls(model, n_chains=len(betas), rng=0, **config)
    sampler._sweep_units = sweep_units
    sampler.load_state(GibbsState(values, streams, betas if np.ptp(betas) else betas[0]))
    out = sampler.sample(n_samples, thin, burn_in, clamp)
    final = sampler.get_state()
    return (*out.values(), *final.values.values(), final.streams)


class GibbsSampler(_ChainSampler):
    """Many Gibbs chains over a model's joint distribution ``P(s) ∝ exp(-beta E(s))``.

    Parameters
    ----------
    model : EnergyModel
    n_chains : int
        Number of independent chains (>= 1); chains that would not fit in the memory this
        process may use are refused up front (a ``ValueError`` saying how much they need).
    schedule : {"auto", "sequential", "chromatic", "block"}
        Update order / kernel (see module docstring).
    beta : float or array of shape (n_chains,)
        Inverse temperature (> 0), for all chains or one per chain.
    rng : None, int or numpy.random.Generator
        Seeds the chains' streams and their random initial states.
    n_threads : int, optional
        Threads across chains (default: all cores); results do not depend on it.
    initial_state : dict, optional
        ``{group: (n_chains, n) or (n,)}`` starting values; uniform random by default
        (continuous units start at 0 or 1).

    Raises
    ------
    ValueError
        A bad argument, or a model whose continuous units' precision is not positive
        definite (naming the groups).

    Examples
    --------
    >>> import pgm_energy as pe
    >>> sampler = pe.GibbsSampler(pe.RBM(6, 3, rng=0), n_chains=10, rng=0)
    >>> samples = sampler.sample(5, burn_in=10)
    >>> samples["x"].shape
    (5, 10, 6)
    >>> saved = sampler.get_state()            # a value: unit values, streams, beta
    >>> first = sampler.run(3).state["x"]
    >>> sampler.load_state(saved)
    >>> bool((sampler.run(3).state["x"] == first).all())
    True

    Continuous units: a Gaussian-Bernoulli RBM runs the block schedule (``"auto"``).

    >>> gauss = pe.EnergyModel(units={"x": pe.Gaussian(4, sigma=0.5), "h": pe.Binary(3)},
    ...                        terms=[pe.Bias("x"), pe.Bias("h", name="c"),
    ...                               pe.Pairwise("h", "x", name="W")], visible=["x"])
    >>> sampler = pe.GibbsSampler(gauss, n_chains=10, rng=0)
    >>> sampler.schedule
    'block'
    >>> sampler.sample(5, burn_in=10)["x"].shape
    (5, 10, 4)
    """

    _continuous = True

    def __init__(self, model: EnergyModel, n_chains: int = 100, schedule: str = "auto",
                 beta: float | np.ndarray = 1.0, rng=None, *, n_threads: int | None = None,
                 initial_state: Mapping | None = None):
        graph = self._setup(model, n_chains, n_threads)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self._colour = graph.colouring()
        self.schedule = _resolve_schedule(schedule, graph, self._colour)
        if self.schedule == "block":
            engine = _BlockEngine(model, graph, self._colour, self.n_chains)
        else:
            first = graph.site_start[:-1]      # a categorical unit is updated at its first slot
            order = (first[np.argsort(self._colour[first], kind="stable")]
                     if self.schedule == "chromatic" else first)
            engine = _SparseEngine(model, graph, order, self.n_chains, self.n_threads)
        self._start(engine, beta, rng, initial_state)

    def _config(self) -> dict:
        return {"schedule": self.schedule}

    @property
    def acceptance_rate(self) -> float | None:
        """The fraction of Metropolis proposals accepted since the sampler was built (the
        updates of continuous units that users' terms read; see the module docstring), or
        None when it has made none. Near 1 when those terms change the energy little
        across the unit's conditional; a low rate means slow mixing."""
        engine = self._engine if self.schedule != "block" else self._engine.sparse
        if engine is None or not engine.proposals[0]:
            return None
        return float(engine.proposals[1] / engine.proposals[0])


class _SparseEngine:
    """State in one slab per chain block: ``state[b]`` is (n_units, lanes) state bytes, or
    float64 values for a model with continuous units (:attr:`dtype`), chain ``c`` is
    lane ``c % lanes`` of block ``c // lanes``; each block runs on its own thread and owns its
    memory (slabs start on separate pages), so threads share no cache line. With one block,
    ``state[0][:, :n_chains]`` is the plain (n_units, n_chains) layout.

    The blocks follow the thread count (``_chains.chain_block``); a sweep on another thread count
    moves the chains to its layout first. The chains' streams live in the sampler's
    (4, n_padded) array; each sweep copies them into per-block slabs and back.
    """

    def __init__(self, model, graph, order, n_chains, n_threads=1):
        self.model = model
        self.offsets = graph.offsets
        self.order = np.asarray(order, np.int32)
        self.scale, self.low = graph.scale, graph.low
        self.size = np.ones(graph.n_units, np.int32)
        self.size[graph.site_start[:-1]] = graph.site_size
        self.n_chains = n_chains
        self.n_units = graph.n_units
        #: Models with continuous units keep float64 values, others one byte per slot.
        self.dtype = np.float64 if graph.continuous.any() else np.uint8
        #: Metropolis steps of continuous units read by users' terms: (proposed, accepted).
        self.proposals = np.zeros(2, np.int64)
        self._group_of = np.empty(graph.n_units, dtype=object)
        for g in graph.offsets:
            self._group_of[graph.slots(g)] = g
        self.lanes = None
        self._relayout(n_threads)

    def _relayout(self, n_threads):
        lanes = chain_block(self.n_chains, n_threads)
        if lanes == self.lanes:
            return
        flat = self.flat() if self.lanes is not None else None
        self.lanes = lanes
        n_blocks = -(-self.n_chains // lanes)
        self.blocks = [(b, b * lanes, min((b + 1) * lanes, self.n_chains))
                       for b in range(n_blocks)]
        self._state_buffer, self.state = slabs((n_blocks, self.n_units, lanes), self.dtype)
        self._stream_buffer, self._block_streams = slabs((n_blocks, 4, lanes), np.uint64)
        if flat is not None:
            self.load(flat)

    def load(self, flat):
        self.load_columns(flat.T)

    def flat(self):
        return np.ascontiguousarray(self.columns().T)

    def load_columns(self, columns):
        """Set the chains from ``columns`` (n_units, n_chains), chain ``c`` in column ``c``."""
        real = self.dtype == np.float64
        for b, c0, c1 in self.blocks:
            self.state[b, :, :c1 - c0] = (columns[:, c0:c1] if real
                                          else state_bytes(columns[:, c0:c1]))

    def columns(self, out=None):
        """The chains as float64 ``(n_units, n_chains)``, chain ``c`` in column ``c`` (into
        ``out`` if given)."""
        out = np.empty((self.n_units, self.n_chains)) if out is None else out
        for b, c0, c1 in self.blocks:
            if self.dtype == np.float64:
                out[:, c0:c1] = self.state[b, :, :c1 - c0]
            else:
                state_values(self.state[b, :, :c1 - c0], out=out[:, c0:c1])
        return out

    def _keep_slabs(self, keep):
        """The (n_chains, n_units) held slots ``keep`` as the kernel's bytes (None: none),
        laid out as the state slabs: 0xFF where a chain holds the slot."""
        if keep is None:
            return None
        buffer, slab = slabs((len(self.blocks), self.n_units, self.lanes), np.uint8)
        for b, c0, c1 in self.blocks:
            slab[b, :, :c1 - c0] = keep[c0:c1].T * np.uint8(0xFF)
        return buffer

    def _kernel(self, arrays, order, betas, streams, n_sweeps, n_threads, keep=None,
                kinds=(None, None)):
        """``sweep_sparse`` on the slabs, the streams copied in and out (padding lanes
        included, so that they stay the sampler's scratch); ``keep`` from
        :meth:`_keep_slabs`, ``kinds`` from :func:`slot_kinds`."""
        lanes, block_streams = self.lanes, self._block_streams
        beta = np.ones((len(self.blocks), lanes))
        for b, c0, c1 in self.blocks:
            beta[b, :c1 - c0] = betas[c0:c1]
            block_streams[b, :, :streams.shape[1] - c0] = streams[:, c0:c0 + lanes]
        order = np.where(self.size[order] > 1, -order - 1, order).astype(np.int32)  # categorical
        _gibbs.sweep_sparse(self._state_buffer, *arrays, order, self.size, self.scale, self.low,
                            beta, self._stream_buffer, self.n_chains, lanes, n_sweeps,
                            n_threads, keep, *kinds)
        for b, c0, c1 in self.blocks:
            streams[:, c0:c0 + lanes] = block_streams[b, :, :streams.shape[1] - c0]

    def sweep(self, graph, free, betas, streams, n_sweeps, n_threads, keep=None):
        self._relayout(n_threads)
        adj = graph.adjacency()
        order = self.order[free[self.order]]
        if order.size == 0:            # every unit clamped: nothing moves, no draws
            return
        arrays = (graph.field, adj.indptr.astype(np.int64), adj.indices.astype(np.int32),
                  adj.data, graph.factor_ptr, graph.factor_ids, graph.factor_members,
                  graph.factor_weight)
        keep_slabs = self._keep_slabs(keep)
        kinds = slot_kinds(graph)
        if not graph.python_units.any():
            self._kernel(arrays, order, betas, streams, n_sweeps, n_threads, keep_slabs, kinds)
            return
        # Units read by generic terms without a product-factor form are updated here, from
        # energy differences, with the same draws as the kernel (one uniform per chain per
        # update); runs of other units go to the kernel.
        cut = np.flatnonzero(np.diff(graph.python_units[order].astype(np.int8))) + 1
        runs = np.split(order, cut)
        readers = {g: [t for t in graph.generic_terms if g in t.groups] for g in self.offsets}
        # Per Python-updated unit: (slot, how it is updated, group, index in the group,
        # (off, on) or for a continuous unit its kind alone, its first reader, the others).
        how = np.where(graph.continuous, "metropolis", np.where(self.size > 1, "choice", "bit"))
        steps = []
        for run in runs:
            if not graph.python_units[run[0]]:
                steps.append(None)
                continue
            run_steps = []
            for u in run:
                group = self._group_of[u]
                index = int(u - self.offsets[group])
                values = (graph.units[group].take([index]) if graph.continuous[u]
                          else (self.low[u], self.low[u] + self.scale[u]))
                run_steps.append((int(u), how[u], group, index, values, readers[group][0],
                                  readers[group][1:]))
            steps.append(run_steps)
        # The Python updates work on a float64 copy of the chains, (n_units, n_chains),
        # refreshed after kernel runs and written back after each Python run. (Categorical
        # units that generic terms read move only in Python runs, so their decoded views in
        # ``views`` stay current.)
        chains = self.columns()
        # Held slots of each chain keep their values: (n_units, n_chains) mask and values.
        held = None if keep is None else (keep.T, chains.copy())
        updater = _gibbs.UnitUpdater(chains, *arrays[1:4], arrays[0], betas, self.scale,
                                     self.low, streams)
        views = self._views(graph, chains)
        current = True
        for _ in range(n_sweeps):
            for run, run_steps in zip(runs, steps):
                if run_steps is None:
                    self._kernel(arrays, run, betas, streams, 1, n_threads, keep_slabs, kinds)
                    current = False
                    continue
                if not current:
                    self.columns(out=chains)
                for unit, update, group, index, values, first, others in run_steps:
                    if update == "choice":
                        self._generic_choice(graph, arrays, unit, chains, views, readers,
                                             betas, streams, held)
                        continue
                    if update == "metropolis":
                        self._metropolis(arrays, unit, group, index, values, chains, views,
                                         readers[group], betas, streams, held)
                        continue
                    # s_unit = low + scale [u < sigmoid(beta (scale f - E(on) + E(off)))],
                    # E(on) - E(off) from the readers' delta_energy.
                    delta = first.delta_energy(views, group, index, values)
                    for term in others:
                        delta = delta + term.delta_energy(views, group, index, values)
                    updater.update(unit, _per_chain(delta, self.n_chains))
                    if held is not None:
                        np.copyto(chains[unit], held[1][unit], where=held[0][unit])
                self.load_columns(chains)
                current = True

    def _views(self, graph, chains):
        """What the generic terms read: native values of every group, live views of
        ``chains`` for binary and spin groups, decoded arrays for categorical ones (only
        :meth:`_generic_choice` moves the categorical units such terms read, and it keeps
        them up to date)."""
        return {g: (chains[graph.slots(g)].T if u.width == u.n
                    else u.decode(chains[graph.slots(g)].T)) for g, u in graph.units.items()}

    def _generic_choice(self, graph, arrays, first, chains, views, readers, betas, streams,
                        held=None):
        """A categorical unit read by generic terms: value ``v`` with probability
        ``softmax_v(beta (f_v + E_gen(0) - E_gen(v)))``, drawn as the kernel draws (the first
        ``v`` whose cumulative weight exceeds ``u`` times the total); chains that hold it
        (``held``: the (n_units, n_chains) mask and values) keep their value."""
        field, indptr, indices, weights = arrays[:4]
        k = int(self.size[first])
        group = self._group_of[first]
        unit = graph.units[group]
        index = (first - self.offsets[group]) // unit.k
        z = np.empty((k, self.n_chains))
        for v in range(k):
            lo, hi = indptr[first + v], indptr[first + v + 1]
            z[v] = field[first + v] + weights[lo:hi] @ chains[indices[lo:hi]]
            if v:
                z[v] -= sum(term.delta_energy(views, group, index, (0, v))
                            for term in readers[group])
        z = np.exp(betas * z - np.max(betas * z, axis=0))
        u = _gibbs.uniforms(streams, self.n_chains) * z.sum(axis=0)
        pick = np.minimum(np.sum(np.cumsum(z, axis=0) <= u, axis=0), k - 1)
        if held is not None:
            pick = np.where(held[0][first], np.argmax(chains[first:first + k], axis=0), pick)
        chains[first:first + k] = np.arange(k)[:, None] == pick
        views[group][:, index] = pick

    def _metropolis(self, arrays, unit, group, index, kind, chains, views, readers, betas,
                    streams, held=None):
        """A continuous unit read by users' terms: one Metropolis-Hastings step per chain.

        The proposal is the unit's conditional given its compiled local field ``f`` alone,
        ``x' = quantile(f, u_1 + 2^-53)`` at the chain's ``beta``; since its density is
        ``exp(-beta (u(x') - f x'))`` up to a constant, the compiled part of the energy
        cancels in the Hastings ratio, and ``x'`` is accepted when
        ``u_2 < exp(-beta (E_gen(x') - E_gen(x)))``, ``E_gen`` the users' terms reading the
        unit (``kind``: the unit's own kind, ``group[index]``). Two uniforms per chain (the
        proposal's, then the test's); chains that hold the unit (``held``) keep their value.
        Counts the proposals and acceptances in :attr:`proposals`.
        """
        field, indptr, indices, weights = arrays[:4]
        lo, hi = indptr[unit], indptr[unit + 1]
        local = field[unit] + weights[lo:hi] @ chains[indices[lo:hi]]
        u = _gibbs.uniforms(streams, self.n_chains) + 2.0 ** -53
        proposal = kind.quantile(local[:, None], u[:, None], betas[:, None])[:, 0]
        current = chains[unit].copy()
        delta = sum(energy_change(term, views, group, index, current, proposal)
                    for term in readers)
        if np.isnan(delta).any():
            raise ValueError(
                f"the energy of {', '.join(type(t).__name__ for t in readers)} changed by NaN "
                f"when unit {index} of the continuous group {group!r} moved from "
                f"{current[np.isnan(delta)][0]!r} to {proposal[np.isnan(delta)][0]!r}; "
                "a term's energy must be finite (or +inf) on the whole domain")
        accept = _gibbs.uniforms(streams, self.n_chains) < np.exp(-betas * delta)
        if held is not None:
            accept &= ~held[0][unit]
        chains[unit] = np.where(accept, proposal, current)
        moved = self.n_chains if held is None else int(np.sum(~held[0][unit]))
        self.proposals += (moved, int(accept.sum()))


class _BlockEngine:
    """Two dense layers ``a`` (colour 0) and ``b`` (colour 1), each (n_chains, n_layer).

    A layer holding categorical units or units read by users' terms (without a compiled
    form, product factors included) is updated unit by unit instead, by the sparse engine on a copy of the chains (the
    same draws: one uniform per chain per unit, in unit order); the other layer keeps the
    BLAS block update.
    """

    def __init__(self, model, graph, colour, n_chains):
        self.offsets = graph.offsets
        self.units_a = np.flatnonzero(colour == 0)
        self.units_b = np.flatnonzero(colour == 1)
        self.layers = np.concatenate([self.units_a, self.units_b])
        self.n_units = graph.n_units
        self.coupling_index = graph.dense_coupling_index(self.units_a, self.units_b)
        self.coupling = np.zeros((len(self.units_a), len(self.units_b)))
        self._coupling_of = None     # (graph, graph.version) that self.coupling holds
        self.sa = np.zeros((n_chains, len(self.units_a)))
        self.sb = np.zeros((n_chains, len(self.units_b)))
        self._kinds_of = None   # (graph, its continuous units' parameters, kind, param)
        self.scale, self.low = graph.scale, graph.low
        slow = graph.generic | graph.categorical      # users' terms, softmax units
        self.slow = (bool(slow[self.units_a].any()), bool(slow[self.units_b].any()))
        self.sparse = (_SparseEngine(model, graph, graph.site_start[:-1], n_chains)
                       if any(self.slow) else None)

    def load(self, flat):
        self.sa[...] = flat[:, self.units_a]
        self.sb[...] = flat[:, self.units_b]

    def flat(self):
        out = np.empty((self.sa.shape[0], self.n_units))
        out[:, self.units_a] = self.sa
        out[:, self.units_b] = self.sb
        return out

    def sweep(self, graph, free, betas, streams, n_sweeps, n_threads, keep=None):
        if self._coupling_of != (graph, graph.version):      # parameters moved since
            self.coupling.ravel()[self.coupling_index] = graph.coupling
            self._coupling_of = (graph, graph.version)
        if not any(self.slow):
            self._block(graph, free, betas, streams, n_sweeps, n_threads, keep)
            return
        layers = [np.zeros(graph.n_units, bool) for _ in range(2)]
        layers[0][self.units_a] = True
        layers[1][self.units_b] = True
        for _ in range(n_sweeps):
            for layer, slow in zip(layers, self.slow):
                if not (free & layer).any():
                    continue
                if slow:
                    self.sparse.load(self.flat())
                    self.sparse.sweep(graph, free & layer, betas, streams, 1, n_threads, keep)
                    self.load(self.sparse.flat())
                else:
                    self._block(graph, free & layer, betas, streams, 1, n_threads, keep)

    def _slot_kinds(self, graph):
        """:func:`slot_kinds` of layer a's slots, then b's; kept while the graph and its
        continuous units' parameters (live, sigma included) are those it was built from."""
        params = [value for unit in graph.units.values() if unit.continuous
                  for value in unit.params.values()]
        kept = self._kinds_of
        if (kept is None or kept[0] is not graph or len(kept[1]) != len(params)
                or not all(np.array_equal(now, then) for now, then in zip(params, kept[1]))):
            kind, param = slot_kinds(graph)
            if kind is not None:
                kind, param = kind[self.layers], param[self.layers]
            kept = self._kinds_of = (graph, [np.array(value) for value in params], kind, param)
        return kept[2], kept[3]

    def _block(self, graph, free, betas, streams, n_sweeps, n_threads, keep=None):
        """``n_sweeps`` BLAS block sweeps of the layers' ``free`` units, those a chain
        holds (``keep``) kept."""
        a, b = self.units_a, self.units_b
        held = ((None, None) if keep is None else     # (n_layer, n_chains), as the fields
                tuple(np.ascontiguousarray(keep.T[u], np.uint8) for u in (a, b)))
        kind, param = self._slot_kinds(graph)
        args = (self.sa, self.sb, self.coupling, graph.field[a], graph.field[b],
                self.scale[a], self.low[a], self.scale[b], self.low[b],
                free[a].astype(np.uint8), free[b].astype(np.uint8), betas, streams, n_sweeps,
                n_threads, *held, kind, param)
        if n_threads == 1:
            _gibbs.sweep_block(*args)
            return
        # Each kernel thread runs its own slice's products: BLAS stays on one thread, so its
        # idle workers do not spin on the cores the kernel uses.
        with one_blas_thread():
            _gibbs.sweep_block(*args)


def _resolve_schedule(schedule, graph, colour):
    """The schedule to run: ``"block"`` (forced, or for ``"auto"`` when the compiled
    couplings form two dense layers and no unit is categorical or read by a user's term:
    binary, spin and continuous units), else ``"chromatic"`` for sparse graphs, else ``"sequential"``."""
    n_colours = int(colour.max()) + 1 if colour.size else 0
    dense_bipartite = False
    if n_colours == 2:
        n_a = int(np.sum(colour == 0))
        dense_bipartite = graph.n_edges >= _DENSE_FRACTION * n_a * (graph.n_units - n_a)
    if schedule == "block" and not dense_bipartite:
        raise ValueError(
            "schedule='block' needs a model whose units form two layers with dense couplings "
            f"between them (this one needs {n_colours} colours); use 'chromatic' or "
            "'sequential'")
    if schedule != "auto":
        return schedule
    if dense_bipartite and not graph.generic_terms and not graph.categorical.any():
        return "block"
    sparse = graph.n_edges <= _DENSE_FRACTION * graph.n_units * (graph.n_units - 1) / 2
    return "chromatic" if sparse else "sequential"
