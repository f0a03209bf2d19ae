"""Gibbs sampling: the Python face of the ``_gibbs`` kernels, and parallel tempering.

Each chain owns a xoshiro256+ random stream seeded from the user's ``rng`` through
``numpy.random.SeedSequence``, so the samples depend on the seed only, never on the thread
count. Draw order (which the numpy twin in ``tests/reference_gibbs.py`` reproduces): per
chain, one uniform per unit update, in the order the units are updated.

Schedules (all sample the same distribution):

* ``"sequential"``: one unit at a time in index order, any graph.
* ``"chromatic"``: colour by colour (a greedy colouring of the unit graph); the units of a
  colour are conditionally independent, so each colour is one block.
* ``"block"``: for models whose units form two colours with dense couplings (RBM layers):
  each layer is updated for all chains at once from a BLAS matrix product.
* ``"auto"``: ``"block"`` for dense bipartite models, else ``"chromatic"`` for sparse graphs,
  else ``"sequential"``.
"""
from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np
from scipy.special import expit

from . import _gibbs
from ._checks import check_beta, nonnegative_int, positive_int
from ._checks import n_threads as check_n_threads
from .model import EnergyModel

__all__ = ["GibbsSampler", "ParallelTempering"]

SCHEDULES = ("auto", "sequential", "chromatic", "block")
_DENSE_FRACTION = 0.25
_SCALAR_BELOW = 8          # fewer chains than this: the kernel's one-chain-at-a-time path


def chain_streams(rng, n_chains: int) -> np.ndarray:
    """Seed one xoshiro256+ stream per chain: a (4, >= n_chains) uint64 state array.

    Column ``c`` is chain ``c``'s state; columns are padded to a multiple of 8 and the array
    is 64-byte aligned, so blocks of 8k chains never share a cache line.
    """
    gen = np.random.default_rng(rng)
    seq = np.random.SeedSequence(gen.integers(0, 2**63, size=4))
    words = seq.generate_state(4 * n_chains, np.uint64).reshape(n_chains, 4).T
    state = aligned_zeros((4, _padded(n_chains)), np.uint64)
    state[:, :n_chains] = words
    state[0, ~state.any(axis=0)] = 1        # xoshiro's state must not be all zero
    return state


def aligned_zeros(shape, dtype=np.float64, alignment: int = 64) -> np.ndarray:
    """C-contiguous zeros whose data pointer is a multiple of ``alignment`` bytes."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    buf = np.zeros(size + alignment // dtype.itemsize, dtype)
    skip = (-buf.ctypes.data % alignment) // dtype.itemsize
    return buf[skip:skip + size].reshape(shape)


def _per_chain(values, n_chains: int) -> np.ndarray:
    """``values`` as a contiguous float64 array of shape ``(n_chains,)`` (a scalar is
    broadcast)."""
    if type(values) is np.ndarray and values.dtype == np.float64 and values.shape == (n_chains,):
        return values
    return np.ascontiguousarray(np.broadcast_to(np.asarray(values, np.float64), (n_chains,)))


def _slabs(shape, dtype=np.float64):
    """Zeros of ``shape`` = (n_blocks, ...) whose blocks each start on their own 4096-byte
    page: ``(buffer, view)``, the buffer (n_blocks, page-rounded block size) C-contiguous,
    the view of ``shape`` on it (C-contiguous within each block)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape[1:]))
    per = -(-size * dtype.itemsize // 4096) * 4096 // dtype.itemsize
    buf = aligned_zeros((shape[0], per), dtype, alignment=4096)
    inner = np.zeros(shape[1:], dtype).strides
    return buf, np.lib.stride_tricks.as_strided(buf, shape, (per * dtype.itemsize, *inner))


def _state_bytes(values: np.ndarray) -> np.ndarray:
    """The sparse kernel's state bytes of unit values in {-1, 0, 1}: the top byte of each
    value as a double (0x3F for +1, 0xBF for -1, 0 for 0). Widening a byte back,
    ``asdouble(byte << 56) = value * 2**-15``, is exact and cheap."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return (values.view(np.uint64) >> np.uint64(56)).astype(np.uint8)


#: The value of each state byte (the kernel's pe__state_value table).
_BYTE_VALUES = np.zeros(256)
_BYTE_VALUES[_state_bytes(np.array([-1.0, 1.0]))] = [-1.0, 1.0]


def _state_values(state: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Unit values (float64) of the kernel's state bytes, into ``out`` if given; the inverse
    of :func:`_state_bytes`."""
    return np.take(_BYTE_VALUES, state, out=out, mode="clip")


def _padded(n_chains: int) -> int:
    return -(-n_chains // 8) * 8


def _chain_block(n_chains: int, n_threads: int) -> int:
    """Chains per kernel block: one block per thread (longer vector loops run faster), a
    multiple of 8 (whole groups of 8 lanes, split evenly); fewer than 8 chains: one block of
    exactly ``n_chains``, which the kernel runs one chain at a time (a vector group would
    mostly compute padding). Each chain's numbers do not depend on the blocking."""
    if n_chains < _SCALAR_BELOW:
        return n_chains
    groups = -(-n_chains // 8)
    return 8 * -(-groups // max(1, min(n_threads, groups)))


class GibbsSampler:
    """Many Gibbs chains over a model's joint distribution ``P(s) ∝ exp(-beta E(s))``.

    Parameters
    ----------
    model : EnergyModel
    n_chains : int
        Number of independent chains (>= 1).
    schedule : {"auto", "sequential", "chromatic", "block"}
        Update order / kernel (see module docstring).
    beta : float
        Inverse temperature (> 0).
    rng : None, int or numpy.random.Generator
        Seeds the chains' streams and their random initial states.
    n_threads : int, optional
        Threads across chains (default: all cores); results do not depend on it.
    initial_state : dict, optional
        ``{group: (n_chains, n) or (n,)}`` starting values; uniform random by default.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> sampler = pe.GibbsSampler(pe.RBM(6, 3, rng=0), n_chains=10, rng=0)
    >>> samples = sampler.sample(5, burn_in=10)
    >>> samples["x"].shape
    (5, 10, 6)
    """

    def __init__(self, model: EnergyModel, n_chains: int = 100, schedule: str = "auto",
                 beta: float = 1.0, rng=None, *, n_threads: int | None = None,
                 initial_state: Mapping | None = None):
        if not isinstance(model, EnergyModel):
            raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
        self.model = model
        self.n_chains = positive_int(n_chains, "n_chains")
        self.n_threads = check_n_threads(n_threads)
        self._betas = np.full(self.n_chains, check_beta(beta))
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        graph = model.graph
        self._colour = graph.colouring()
        self.schedule = _resolve_schedule(schedule, graph, self._colour)
        gen = np.random.default_rng(rng)
        self._streams = chain_streams(gen, self.n_chains)
        if self.schedule == "block":
            self._engine = _BlockEngine(model, graph, self._colour, self.n_chains)
        else:
            first = graph.site_start[:-1]      # a categorical unit is updated at its first slot
            order = (first[np.argsort(self._colour[first], kind="stable")]
                     if self.schedule == "chromatic" else first)
            self._engine = _SparseEngine(model, graph, order, self.n_chains, self.n_threads)
        random_flat = graph.from_bits(gen.integers(0, 2, size=(self.n_chains, graph.n_units)))
        for g, unit in model.units.items():
            if unit.width != unit.n:
                random_flat[:, graph.slots(g)] = unit.encode(
                    gen.integers(0, unit.k, size=(self.n_chains, unit.n)))
        self._engine.load(random_flat)
        if initial_state is not None:
            self.state = initial_state

    @property
    def beta(self) -> float:
        """The inverse temperature of the chains."""
        return float(self._betas[0])

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        """Current state of every chain: ``{group: (n_chains, n) array}`` (a copy)."""
        return self.model.graph.decode(self._engine.flat())

    @state.setter
    def state(self, value: Mapping) -> None:
        flat = self._engine.flat()
        graph = self.model.graph
        for g, arr in self._per_chain(value, "state").items():
            flat[:, graph.slots(g)] = self.model.units[g].encode(arr)
        self._engine.load(flat)

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

    # -- running -------------------------------------------------------------------------
    def run(self, n_sweeps: int, clamp: Mapping | None = None) -> "GibbsSampler":
        """Advance every chain by ``n_sweeps`` sweeps; ``clamp`` holds groups fixed.

        ``clamp = {group: values}`` with values of shape ``(n_chains, n)``, ``(n,)`` or
        ``(1, n)``; those units keep the given values and the others sample from their
        conditional given them.
        """
        n_sweeps = nonnegative_int(n_sweeps, "n_sweeps")
        graph = self.model.graph            # validates and re-syncs live parameters
        free = np.ones(graph.n_units, bool)
        if clamp is not None:
            self.state = clamp
            for g in self._per_chain(clamp, "clamp"):
                free[graph.slots(g)] = False
        if n_sweeps:
            self._engine.sweep(graph, free, self._betas, self._streams, n_sweeps,
                               self.n_threads)
        return self

    def sample(self, n_samples: int, thin: int = 1, burn_in: int = 0,
               clamp: Mapping | None = None) -> dict:
        """Run ``burn_in`` sweeps, then record the state every ``thin`` sweeps.

        Returns ``{group: (n_samples, n_chains, n)}``.
        """
        n_samples = nonnegative_int(n_samples, "n_samples")
        thin = positive_int(thin, "thin")
        burn_in = nonnegative_int(burn_in, "burn_in")
        self.run(burn_in, clamp)
        out = {g: np.empty((n_samples, self.n_chains, u.n)) for g, u in self.model.units.items()}
        for k in range(n_samples):
            self.run(thin, clamp)
            for g, arr in self.state.items():
                out[g][k] = arr
        return out


class _SparseEngine:
    """State in one slab per chain block: ``state[b]`` is (n_units, lanes), chain ``c`` is
    lane ``c % lanes`` of block ``c // lanes``; each block runs on its own thread and owns its
    memory (slabs start on separate pages), so threads share no cache line. With one block,
    ``state[0][:, :n_chains]`` is the plain (n_units, n_chains) layout.

    The blocks follow the thread count (``_chain_block``); a sweep on another thread count
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
        self._group_of = np.empty(graph.n_units, dtype=object)
        for g in graph.offsets:
            self._group_of[graph.slots(g)] = g
        self.lanes = None
        self._relayout(n_threads)

    def _relayout(self, n_threads):
        lanes = _chain_block(self.n_chains, n_threads)
        if lanes == self.lanes:
            return
        flat = self.flat() if self.lanes is not None else None
        self.lanes = lanes
        n_blocks = -(-self.n_chains // lanes)
        self.blocks = [(b, b * lanes, min((b + 1) * lanes, self.n_chains))
                       for b in range(n_blocks)]
        self._state_buffer, self.state = _slabs((n_blocks, self.n_units, lanes), np.uint8)
        self._stream_buffer, self._block_streams = _slabs((n_blocks, 4, lanes), np.uint64)
        if flat is not None:
            self.load(flat)

    def load(self, flat):
        self.load_columns(flat.T)

    def flat(self):
        return np.ascontiguousarray(self.columns().T)

    def load_columns(self, columns):
        """Set the chains from ``columns`` (n_units, n_chains), chain ``c`` in column ``c``."""
        for b, c0, c1 in self.blocks:
            self.state[b, :, :c1 - c0] = _state_bytes(columns[:, c0:c1])

    def columns(self, out=None):
        """The chains as float64 ``(n_units, n_chains)``, chain ``c`` in column ``c`` (into
        ``out`` if given)."""
        out = np.empty((self.n_units, self.n_chains)) if out is None else out
        for b, c0, c1 in self.blocks:
            _state_values(self.state[b, :, :c1 - c0], out=out[:, c0:c1])
        return out

    def _kernel(self, arrays, order, betas, streams, n_sweeps, n_threads):
        """``sweep_sparse`` on the slabs, the streams copied in and out (padding lanes
        included, so that they stay the sampler's scratch)."""
        lanes, block_streams = self.lanes, self._block_streams
        beta = np.ones((len(self.blocks), lanes))
        for b, c0, c1 in self.blocks:
            beta[b, :c1 - c0] = betas[c0:c1]
            block_streams[b, :, :streams.shape[1] - c0] = streams[:, c0:c0 + lanes]
        order = np.where(self.size[order] > 1, -order - 1, order).astype(np.int32)  # categorical
        _gibbs.sweep_sparse(self._state_buffer, *arrays, order, self.size, self.scale, self.low,
                            beta, self._stream_buffer, self.n_chains, lanes, n_sweeps,
                            n_threads)
        for b, c0, c1 in self.blocks:
            streams[:, c0:c0 + lanes] = block_streams[b, :, :streams.shape[1] - c0]

    def sweep(self, graph, free, betas, streams, n_sweeps, n_threads):
        self._relayout(n_threads)
        adj = graph.adjacency()
        order = self.order[free[self.order]]
        if order.size == 0:            # every unit clamped: nothing moves, no draws
            return
        arrays = (graph.field, adj.indptr.astype(np.int64), adj.indices.astype(np.int32),
                  adj.data, graph.factor_ptr, graph.factor_ids, graph.factor_members,
                  graph.factor_weight)
        if not graph.python_units.any():
            self._kernel(arrays, order, betas, streams, n_sweeps, n_threads)
            return
        # Units read by generic terms without a product-factor form are updated here, from
        # energy differences, with the same draws as the kernel (one uniform per chain per
        # update); runs of other units go to the kernel.
        cut = np.flatnonzero(np.diff(graph.python_units[order].astype(np.int8))) + 1
        runs = np.split(order, cut)
        readers = {g: [t for t in graph.generic_terms if g in t.groups] for g in self.offsets}
        # Per Python-updated unit: (slot, categorical?, group, index in the group, (off, on),
        # its first reader, the other readers).
        steps = [[(int(u), bool(self.size[u] > 1), self._group_of[u],
                   int(u - self.offsets[self._group_of[u]]),
                   (self.low[u], self.low[u] + self.scale[u]), readers[self._group_of[u]][0],
                   readers[self._group_of[u]][1:]) for u in run]
                 if graph.python_units[run[0]] else None for run in runs]
        # The Python updates work on a float64 copy of the chains, (n_units, n_chains),
        # refreshed after kernel runs and written back after each Python run. (Categorical
        # units that generic terms read move only in Python runs, so their decoded views in
        # ``views`` stay current.)
        chains = self.columns()
        updater = _gibbs.UnitUpdater(chains, *arrays[1:4], arrays[0], betas, self.scale,
                                     self.low, streams)
        views = self._views(graph, chains)
        current = True
        for _ in range(n_sweeps):
            for run, run_steps in zip(runs, steps):
                if run_steps is None:
                    self._kernel(arrays, run, betas, streams, 1, n_threads)
                    current = False
                    continue
                if not current:
                    self.columns(out=chains)
                for unit, choice, group, index, values, first, others in run_steps:
                    if choice:
                        self._generic_choice(graph, arrays, unit, chains, views, readers,
                                             betas, streams)
                        continue
                    # s_unit = low + scale [u < sigmoid(beta (scale f - E(on) + E(off)))],
                    # E(on) - E(off) from the readers' delta_energy.
                    delta = first.delta_energy(views, group, index, values)
                    for term in others:
                        delta = delta + term.delta_energy(views, group, index, values)
                    updater.update(unit, _per_chain(delta, self.n_chains))
                self.load_columns(chains)
                current = True

    def _views(self, graph, chains):
        """What the generic terms read: native values of every group, live views of
        ``chains`` for binary and spin groups, decoded arrays for categorical ones (only
        :meth:`_generic_choice` moves the categorical units such terms read, and it keeps
        them up to date)."""
        return {g: (chains[graph.slots(g)].T if u.width == u.n
                    else u.decode(chains[graph.slots(g)].T)) for g, u in graph.units.items()}

    def _generic_choice(self, graph, arrays, first, chains, views, readers, betas, streams):
        """A categorical unit read by generic terms: value ``v`` with probability
        ``softmax_v(beta (f_v + E_gen(0) - E_gen(v)))``, drawn as the kernel draws (the first
        ``v`` whose cumulative weight exceeds ``u`` times the total)."""
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
        chains[first:first + k] = np.arange(k)[:, None] == pick
        views[group][:, index] = pick


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
        self.n_units = graph.n_units
        pos = np.empty(graph.n_units, np.int64)
        pos[self.units_a] = np.arange(len(self.units_a))
        pos[self.units_b] = np.arange(len(self.units_b))
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        a_end = np.where(colour[i] == 0, i, j)
        b_end = np.where(colour[i] == 0, j, i)
        self._coupling_index = pos[a_end] * len(self.units_b) + pos[b_end]
        self.coupling = np.zeros((len(self.units_a), len(self.units_b)))
        self.sa = np.zeros((n_chains, len(self.units_a)))
        self.sb = np.zeros((n_chains, len(self.units_b)))
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

    def sweep(self, graph, free, betas, streams, n_sweeps, n_threads):
        self.coupling.ravel()[self._coupling_index] = graph.coupling
        if not any(self.slow):
            self._block(graph, free, betas, streams, n_sweeps, n_threads)
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
                    self.sparse.sweep(graph, free & layer, betas, streams, 1, n_threads)
                    self.load(self.sparse.flat())
                else:
                    self._block(graph, free & layer, betas, streams, 1, n_threads)

    def _block(self, graph, free, betas, streams, n_sweeps, n_threads):
        """``n_sweeps`` BLAS block sweeps of the layers' ``free`` units."""
        a, b = self.units_a, self.units_b
        args = (self.sa, self.sb, self.coupling, graph.field[a], graph.field[b],
                self.scale[a], self.low[a], self.scale[b], self.low[b],
                free[a].astype(np.uint8), free[b].astype(np.uint8), betas, streams, n_sweeps,
                n_threads)
        if n_threads == 1:
            _gibbs.sweep_block(*args)
            return
        # Each kernel thread runs its own slice's products: BLAS stays on one thread, so its
        # idle workers do not spin on the cores the kernel uses.
        with _blas_controller().limit(limits=1, user_api="blas"):
            _gibbs.sweep_block(*args)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """One ``threadpoolctl`` controller (scanning the loaded libraries is slow)."""
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()


def _resolve_schedule(schedule, graph, colour):
    """The schedule to run: ``"block"`` (forced, or for ``"auto"`` when the compiled
    couplings form two dense layers and every unit is binary or spin, read by compiled
    terms only), else ``"chromatic"`` for sparse graphs, else ``"sequential"``."""
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
        As for :class:`GibbsSampler`.

    Notes
    -----
    After each sweep, neighbouring temperatures ``k, k+1`` (alternating even and odd pairs)
    propose to swap their states, chain by chain, accepted with probability
    ``min(1, exp((beta_k - beta_{k+1}) (E_k - E_{k+1})))``; swapping states keeps every
    chain's distribution the product of the tempered ones. ``swap_rates`` reports the
    acceptance rate of each neighbour pair.
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
        gen = np.random.default_rng(rng)
        self._gen = gen
        self.sampler = GibbsSampler(model, len(self.betas) * self.n_chains, schedule=schedule,
                                    rng=gen, n_threads=n_threads)
        self.sampler._betas[:] = np.repeat(self.betas, self.n_chains)
        self._accepted = np.zeros(len(self.betas) - 1)
        self._proposed = np.zeros(len(self.betas) - 1)
        self._parity = 0

    @property
    def swap_rates(self) -> np.ndarray:
        """Acceptance rate of swaps between temperatures k and k+1, shape (n_betas - 1,)."""
        return self._accepted / np.maximum(self._proposed, 1)

    @property
    def state(self) -> dict:
        """State of the chains at beta = 1: ``{group: (n_chains, n)}``."""
        return {g: v[:self.n_chains] for g, v in self.sampler.state.items()}

    def run(self, n_sweeps: int) -> "ParallelTempering":
        """``n_sweeps`` rounds of one Gibbs sweep at every temperature plus a swap step."""
        for _ in range(nonnegative_int(n_sweeps, "n_sweeps")):
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
        flat = self.sampler._engine.flat().reshape(R, n, -1)
        for k in range(self._parity, R - 1, 2):
            log_accept = (self.betas[k] - self.betas[k + 1]) * (energy[k] - energy[k + 1])
            accept = np.log(self._gen.random(n)) < log_accept
            flat[k, accept], flat[k + 1, accept] = flat[k + 1, accept], flat[k, accept].copy()
            self._accepted[k] += accept.sum()
            self._proposed[k] += n
        self._parity = 1 - self._parity
        self.sampler._engine.load(flat.reshape(R * n, -1))
