"""Compiled fast paths of ``fit``: whole epochs in one kernel call.

:class:`CompiledPCD` runs ``_learning.pcd_sgd_epoch`` for ``PCD`` + ``SGD`` on a model whose
units form the two dense layers of the block sampler and whose parameters map one to one onto
its fields and couplings (an RBM, binary or spin; a deep Boltzmann machine, its even and odd
layers, with the mean-field positive phase): the same estimator and update as the minibatch
loop in Python, without Python overhead per minibatch. It reads the
model through public graph data (``FlatGraph.parameter_slots``,
``FlatGraph.dense_coupling_index``) and the chains through the sampler's public state
(``get_state`` / ``load_state``): it takes the chains out of the sampler at its first epoch,
keeps them across consecutive epochs, and puts them back (:meth:`CompiledPCD.store`) whenever
``fit`` lets anything else see the sampler (callbacks, checkpoints, the end of the run).

The epoch's matrix products run with BLAS held to one thread, so that their rounding, and the
trained parameters, do not depend on the BLAS thread count.
"""
from __future__ import annotations

import numpy as np

from .._kernels import _learning
from .._chains import one_blas_thread, padded_streams
from ..sampling import GibbsState, slot_kinds
from ..variational import Blocks
from .estimators import PCD
from .positive import MeanField
from .optimizers import SGD

__all__ = ["CompiledPCD", "NotCompiled"]


class NotCompiled(Exception):
    """The compiled epoch does not apply to this model / method / optimizer."""


class CompiledPCD:
    """The compiled epoch for ``method`` (a :class:`PCD` of Gibbs moves) and ``optimizer``
    (an :class:`SGD`) on ``model``; raises :class:`NotCompiled` where it does not apply.

    It applies to models whose units form the two dense layers of the block sampler (the
    two colours of the graph's greedy colouring): ``a`` (colour 0), holding the visible units
    first, and ``b``, coupled to each other only (an RBM, binary or spin: ``a`` the visible
    units; a deep Boltzmann machine: ``a`` the layers x, h2, h4, ..., ``b`` h1, h3, ...), with
    parameters that map one to one onto fields and couplings. Where hidden units interact
    the estimator's positive phase must be a :class:`~pgm_energy.learning.MeanField`, which
    the kernel runs over the same two blocks in the same order; the negative phase's closed
    form units (``expected_states``) must be one whole layer. Parameters are laid out flat:
    the fields of layer ``a``, then of layer ``b``, then the dense ``(n_a, n_b)`` coupling
    matrix (zero, and kept so, where two units share no coupling).
    """

    def __init__(self, model, method, optimizer, gen, expected_data=False):
        if (type(method) is not PCD or method.move != "gibbs" or type(optimizer) is not SGD
                or method.centering is not None):
            raise NotCompiled
        layout = method._bind(model, gen)
        if layout.compiled is None:
            layout.compiled = _Layers.of(model.graph, layout) or False
        layers = layout.compiled
        if not layers or method.sampler.schedule != "block":
            raise NotCompiled
        self.mean_field = None
        if not layout.hidden_independent:
            positive = method._positive_phase
            if expected_data or type(positive) is not MeanField:
                raise NotCompiled
            self.mean_field = (positive.tol, positive.max_iter, positive.damping,
                               layers.b_first)
        self.method, self.optimizer, self.layers = method, optimizer, layers
        self.graph, self.units_a, self.units_b = model.graph, layers.units_a, layers.units_b
        self.slots = layers.slots
        self._chains = None        # (layer a, layer b, padded streams, beta) while taken out

    def visible_rows(self, data: dict) -> np.ndarray:
        """The validated visible data ``{group: (n_samples, n)}`` as the kernel reads it:
        flat slots of the visible groups, in slot order (layer ``a``'s first units)."""
        graph = self.graph
        groups = sorted(data, key=lambda g: graph.slots(g).start)
        return np.ascontiguousarray(np.concatenate(
            [graph.units[g].encode(data[g]) for g in groups], axis=1), dtype=float)

    def epoch(self, model, data_a, order, batch_size, epoch):
        """One epoch over the rows ``order`` of ``data_a``: the chains advance (held here
        until :meth:`store`), the parameters do not change yet. Returns ``(largest gradient
        entry, {name: updated parameter})``; :meth:`commit` applies the update."""
        model.check_params()
        graph, a, b = self.graph, self.units_a, self.units_b
        n_a, n_b = len(a), len(b)
        flat = np.zeros(n_a + n_b + n_a * n_b)
        for name, slots in self.slots.items():
            flat[slots] = model.params[name].ravel()
        self.velocity = velocity = np.zeros_like(flat)
        for name, slots in self.slots.items():
            velocity[slots] = np.ravel(self.optimizer.slots.get(name, {}).get("velocity", 0.0))
        field_a, field_b = flat[:n_a], flat[n_a:n_a + n_b]
        coupling = flat[n_a + n_b:].reshape(n_a, n_b)
        sampler, opt = self.method.sampler, self.optimizer
        if self._chains is None:
            state = sampler.get_state()
            chains = graph.encode(state.values)
            self._chains = (np.ascontiguousarray(chains[:, a]), np.ascontiguousarray(chains[:, b]),
                            padded_streams(state.streams), state.beta)
        chains_a, chains_b, streams, _ = self._chains
        kind, param = slot_kinds(graph)          # the units' current parameters, each epoch
        continuous = {} if kind is None else {"kind_a": kind[a], "param_a": param[a]}
        with one_blas_thread():
            largest = _learning.pcd_sgd_epoch(
                data_a, order.astype(np.int64), batch_size, coupling, field_a, field_b,
                velocity[n_a + n_b:].reshape(n_a, n_b), velocity[:n_a], velocity[n_a:n_a + n_b],
                self.layers.edge, chains_a, chains_b, graph.scale[a], graph.low[a],
                graph.scale[b], graph.low[b], streams, self.method.k, opt.rate(epoch),
                opt.momentum, opt.weight_decay, opt.l1,
                _threads_for(sampler.n_chains, sampler.n_threads),
                *(self.mean_field or (1.0, 1, 0.0, True)), self.layers.closed_a, **continuous)
        return largest, {name: flat[slots].reshape(model.params[name].shape)
                         for name, slots in self.slots.items()}

    def store(self) -> None:
        """Put the chains back into the sampler (``load_state``); the next epoch takes them
        out again (so that changes made to the sampler in between count)."""
        if self._chains is not None:
            chains_a, chains_b, streams, beta = self._chains
            self._chains = None
            sampler = self.method.sampler
            chains = np.empty((sampler.n_chains, self.graph.n_units))
            chains[:, self.units_a], chains[:, self.units_b] = chains_a, chains_b
            sampler.load_state(GibbsState(self.graph.decode(chains),
                                          streams[:, :sampler.n_chains], beta))

    def commit(self, model, updated):
        """Write the parameters (and the momentum) of the last :meth:`epoch`."""
        for name, value in updated.items():
            model.params[name] = value
            if self.optimizer.momentum:
                self.optimizer.slots.setdefault(name, {})["velocity"] = self.velocity[
                    self.slots[name]].reshape(value.shape)


class _Layers:
    """What the kernel needs of a model's structure, found once per estimator layout
    (:meth:`of`): the layers ``units_a`` (colour 0 of the graph's greedy colouring, the
    block sampler's first layer, its ``n_visible`` visible units first) and ``units_b``
    (colour 1); ``b_first``, whether the mean-field positive phase updates ``b`` before
    the hidden units of ``a``; ``closed_a``, whether the negative phase sums ``a`` (else
    ``b``) in closed form; ``slots``, the flat slot of every parameter entry; ``edge``, the
    ``(n_a, n_b)`` mask of the coupling entries that are parameters."""

    def __init__(self, units_a, units_b, n_visible, b_first, closed_a, slots, edge):
        self.units_a, self.units_b, self.n_visible = units_a, units_b, n_visible
        self.b_first, self.closed_a, self.slots, self.edge = b_first, closed_a, slots, edge

    @classmethod
    def of(cls, graph, layout) -> "_Layers | None":
        """The layers of ``graph`` (None where the kernel does not apply)."""
        if (graph.generic_terms or len(graph.factor_members) or graph.categorical.any()
                or not graph.n_units or any(u.learn for u in graph.units.values())):
            return None
        colour = graph.colouring()
        a, b = np.flatnonzero(colour == 0), np.flatnonzero(colour == 1)
        visible = layout.visible
        n_visible = int(visible.sum())
        if len(a) + len(b) != graph.n_units or not visible[a[:n_visible]].all():
            return None
        # Continuous units: the visible units of an RBM-like model (a Gaussian-Bernoulli
        # RBM), sampled by the block kernel's continuous draw; the hidden layer b summed.
        if graph.continuous.any() and (graph.continuous[b].any() or n_visible != len(a)
                                       or not layout.hidden_independent):
            return None
        b_first = True
        if not layout.hidden_independent:
            # The mean field's colour classes must be b and a's hidden units.
            blocks = [slots for slots, *_ in Blocks(graph, np.flatnonzero(~visible)).blocks]
            hidden_a = a[n_visible:]
            if not (_same(blocks, [b, hidden_a]) or _same(blocks, [hidden_a, b])):
                return None
            b_first = _same(blocks[:1], [b])
        elif n_visible != len(a):
            return None
        closed = np.sort(layout.model_closed)
        if not (_same([closed], [a]) or _same([closed], [b])) or (
                graph.continuous.any() and not _same([closed], [b])):
            return None
        n_a, n_b = len(a), len(b)
        coupling_index = graph.dense_coupling_index(a, b)
        slot_of_unit = np.empty(graph.n_units, np.int64)
        slot_of_unit[a] = np.arange(n_a)
        slot_of_unit[b] = n_a + np.arange(n_b)
        slots, covered = {}, []
        for land in graph.parameter_slots():
            if np.any(land.coef != 1) or np.any(land.target < 0):
                return None
            slots[land.param] = (n_a + n_b + coupling_index[land.target] if land.pair
                                 else slot_of_unit[land.target])
            covered.append(slots[land.param])
        covered = np.concatenate(covered)
        if (len(covered) != n_a + n_b + graph.n_edges
                or len(np.unique(covered)) != len(covered)):
            return None
        edge = np.zeros((n_a, n_b), np.uint8)
        edge.ravel()[coupling_index] = 1
        return cls(a, b, n_visible, b_first, _same([closed], [a]), slots, edge)


def _same(groups, others) -> bool:
    """Whether the slot arrays ``groups`` hold the same slots as ``others``, one by one."""
    return len(groups) == len(others) and all(
        len(g) == len(o) and np.array_equal(np.sort(g), np.sort(o)) for g, o in zip(groups, others))


def _threads_for(n_chains, n_threads):
    """Threads worth using for per-chain work in a layer (small batches: one)."""
    return max(1, min(n_threads, n_chains // 64))
