"""Compiled fast paths of ``fit``: whole epochs in one kernel call.

:class:`CompiledPCD` runs ``_learning.pcd_sgd_epoch`` for ``PCD`` + ``SGD`` on a model whose
visible and hidden units form the two dense layers of the block sampler and whose parameters
map one to one onto its fields and couplings (an RBM, binary or spin): the same estimator and
update as the minibatch loop in Python, without Python overhead per minibatch. It reads the
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
from ..sampling import GibbsState
from .estimators import PCD
from .optimizers import SGD

__all__ = ["CompiledPCD", "NotCompiled"]


class NotCompiled(Exception):
    """The compiled epoch does not apply to this model / method / optimizer."""


class CompiledPCD:
    """The compiled epoch for ``method`` (a :class:`PCD` of Gibbs moves) and ``optimizer`` (an :class:`SGD`)
    on ``model``; raises :class:`NotCompiled` where it does not apply.

    Parameters are laid out flat: the fields of layer ``a`` (the visible units, colour 0 of
    the graph), then of layer ``b``, then the dense ``(n_a, n_b)`` coupling matrix.
    """

    def __init__(self, model, method, optimizer, gen):
        if (type(method) is not PCD or method.move != "gibbs" or type(optimizer) is not SGD
                or method.centering is not None):
            raise NotCompiled
        layout = method._bind(model, gen)
        self.method, self.optimizer = method, optimizer
        graph = model.graph
        # The block sampler's layers are the two colours of the graph's greedy colouring;
        # when the edges join every visible unit to every hidden one and the first slot is
        # visible, those are the visible (colour 0) and the hidden units.
        visible = layout.visible
        a, b = np.flatnonzero(visible), np.flatnonzero(~visible)
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        if graph.generic_terms or graph.categorical.any() or graph.continuous.any() or not (
                method.sampler.schedule == "block" and graph.n_units and visible[0]
                and graph.n_edges == len(a) * len(b) and np.all(visible[i] != visible[j])):
            raise NotCompiled
        n_a, n_b = len(a), len(b)
        coupling_index = graph.dense_coupling_index(a, b)
        slot_of_unit = np.empty(graph.n_units, np.int64)
        slot_of_unit[a] = np.arange(n_a)
        slot_of_unit[b] = n_a + np.arange(n_b)
        # Flat slot of every parameter entry: fields of a, then of b, then couplings.
        self.slots, covered = {}, []
        for land in graph.parameter_slots():
            if np.any(land.coef != 1) or np.any(land.target < 0):
                raise NotCompiled
            slots = (n_a + n_b + coupling_index[land.target] if land.pair
                     else slot_of_unit[land.target])
            self.slots[land.param] = slots
            covered.append(slots)
        covered = np.concatenate(covered)
        if len(covered) != n_a + n_b + n_a * n_b or len(np.unique(covered)) != len(covered):
            raise NotCompiled
        self.graph, self.units_a, self.units_b = graph, a, b
        self._chains = None        # (layer a, layer b, padded streams, beta) while taken out

    def visible_rows(self, rows: np.ndarray) -> np.ndarray:
        """Layer ``a``'s columns of flat rows (the data as the kernel reads it)."""
        return np.ascontiguousarray(rows[:, self.units_a])

    def epoch(self, model, data_a, order, batch_size, epoch):
        """One epoch over the rows ``order`` of ``data_a``: the chains advance (held here
        until :meth:`store`), the parameters do not change yet. Returns ``(largest gradient
        entry, {name: updated parameter})``; :meth:`commit` applies the update."""
        model.check_params()
        graph, a, b = self.graph, self.units_a, self.units_b
        n_a, n_b = len(a), len(b)
        flat = np.empty(n_a + n_b + n_a * n_b)
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
        with one_blas_thread():
            largest = _learning.pcd_sgd_epoch(
                data_a, order.astype(np.int64), batch_size, coupling, field_a, field_b,
                velocity[n_a + n_b:].reshape(n_a, n_b), velocity[:n_a], velocity[n_a:n_a + n_b],
                chains_a, chains_b, graph.scale[a], graph.low[a], graph.scale[b], graph.low[b],
                streams, self.method.k, opt.rate(epoch), opt.momentum, opt.weight_decay, opt.l1,
                _threads_for(sampler.n_chains, sampler.n_threads))
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


def _threads_for(n_chains, n_threads):
    """Threads worth using for per-chain work in a layer (small batches: one)."""
    return max(1, min(n_threads, n_chains // 64))
