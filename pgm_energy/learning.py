"""Learning: gradient estimators, optimizers, monitors and the ``fit`` loop.

Every estimator returns ``d mean log P(X) / d theta`` as a dict shaped like
``model.params``:

    grad = E_model[dE/dtheta] - mean over the batch of E_{h|x}[dE/dtheta]

(negative phase minus positive phase). Estimators never look at terms: they produce
*expected states* (rows of the flat graph's units, with units summed in closed form replaced
by their conditional means) and the flat graph maps unit and pair moments of those rows to
``E[dE/dtheta]`` for every parameter (``FlatGraph.grad_from_moments``).
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.special import logsumexp

from . import exact
from ._checks import (nonnegative_float, nonnegative_int, positive_float,
                      positive_int)
from ._kernels import _learning
from .graph import MAX_ENERGY, independent_split
from .io import model_arrays, model_from_arrays
from .model import EnergyModel
from .sampling import GibbsSampler, ParallelTempering

__all__ = ["CD", "PCD", "PT", "ExactGradient", "SGD", "Adam", "fit", "History",
           "PseudoLogLikelihood", "ReconstructionError", "ExactLogLikelihood",
           "exponential_decay", "expected_states", "moments_gradient", "TrainingDiverged"]


class TrainingDiverged(FloatingPointError):
    """Raised by ``fit`` when a gradient or an update is not finite or explodes."""


# -- sufficient statistics ------------------------------------------------------------------
class _Layout:
    """What estimators need of a model's flat graph, built once per model."""

    def __init__(self, model: EnergyModel):
        graph = model.graph
        self.graph = graph
        self.visible = np.zeros(graph.n_units, bool)
        for g in model.visible:
            self.visible[graph.slots(g)] = True
        free = np.flatnonzero(~self.visible)
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        hidden_edges = graph.edges[~self.visible[ei] & ~self.visible[ej]]
        # Hidden units summed in closed form given the visible ones (and the other hidden);
        # units read by generic terms never are.
        compiled = ~graph.generic
        _, self.hidden_closed = independent_split(free[compiled[free]], hidden_edges,
                                                         site=graph.site)
        self.hidden_independent = len(self.hidden_closed) == len(free)
        # Units replaced by conditional means in the negative phase (Rao-Blackwellisation),
        # hidden units first: for an RBM, E[h | x] of the chains' x.
        _, self.model_closed = independent_split(np.flatnonzero(compiled), graph.edges,
                                                        first=~self.visible, site=graph.site)
        self.model = model
        self.dense_gram = graph.n_units ** 2 <= 4 * max(graph.n_edges, 1)


def expected_states(model: EnergyModel, flat: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """Replace the units ``closed`` (no coupling among them) by their conditional means.

    ``E[s_a | rest] = sigmoid(f_a)`` for binary and ``tanh(f_a)`` for spins (beta = 1), and
    ``softmax`` over the slots of a categorical unit (its one-hot mean); since the
    ``closed`` units are independent given the rest, the moments of the returned rows are the
    moments of the samples with those units summed exactly.
    """
    graph = model.graph
    out = flat.copy()
    if len(closed):
        out[:, closed] = graph.unit_mean(graph.local_field(flat)[:, closed], closed)
    return out


def moments_gradient(layout: _Layout, rows: np.ndarray) -> dict:
    """``E[dE/dtheta]`` from expected-state rows: their mean unit and pair products for the
    compiled terms, the mean of ``energy_grad`` for generic terms (whose units are never
    replaced by means)."""
    graph = layout.graph
    m_unit = rows.mean(axis=0)
    ei, ej = graph.edges[:, 0], graph.edges[:, 1]
    if layout.dense_gram:
        m_pair = (rows.T @ rows)[ei, ej] / len(rows)
    else:
        m_pair = np.einsum("bi,bi->i", rows[:, ei], rows[:, ej]) / len(rows)
    grads = graph.grad_from_moments(m_unit, m_pair)
    if graph.generic_terms:
        state = graph.decode(rows)
        for term in graph.generic_terms:
            grads.update({name: g.mean(axis=0) for name, g in term.energy_grad(state).items()})
    return grads


def _flat_visible(model, layout, X, expected_data=False):
    """Flat rows with the visible groups from ``X`` (validated), zeros elsewhere."""
    state = model.as_state(X, model.visible, what="X", expectations=expected_data)
    return layout.graph.encode(state)


class _Estimator:
    """Shared positive phase; subclasses supply the negative phase."""

    #: Sweeps of the clamped chains for the positive phase when hidden units interact.
    positive_sweeps = 5
    #: Whether ``gradient(..., expected_data=True)`` is meaningful (persistent chains only).
    accepts_expected_data = True

    def __init__(self):
        self._layout = None
        self._model = None
        self._positive = None

    def _bind(self, model, rng):
        if self._model is not model:
            self._model = model
            self._layout = _Layout(model)
            self._positive = None
            self._start(model, rng)
        return self._layout

    def _start(self, model, rng):
        """Create persistent state (chains) on first use."""

    def positive_rows(self, model, X, rng, expected_data=False) -> np.ndarray:
        """Expected states given the data: exact conditional means where the hidden units
        are independent given x, else clamped Gibbs chains (the last samples, with the
        closed-form hidden units as conditional means)."""
        layout = self._layout
        flat = _flat_visible(model, layout, X, expected_data)
        if not layout.hidden_independent:
            if expected_data:
                raise ValueError("expected_data needs hidden units that are conditionally "
                                 "independent given the visible ones (a mean-field positive "
                                 "phase); this model's hidden units interact")
            if self._positive is None or self._positive.n_chains != len(flat):
                self._positive = GibbsSampler(model, len(flat), rng=rng, n_threads=None)
            clamp = layout.graph.decode(flat, model.visible)
            self._positive.run(self.positive_sweeps, clamp=clamp)
            flat = self._positive._engine.flat()
        return expected_states(model, flat, layout.hidden_closed)

    def gradient(self, model: EnergyModel, X, rng=None, *, expected_data: bool = False) -> dict:
        """Estimate ``d mean log P(X) / d theta`` on the batch ``X``.

        With ``expected_data``, ``X`` may hold expected values of the visible units (e.g.
        grey levels in [0, 1] as probabilities of binary pixels); the positive phase then uses
        them as expected states (scikit-learn's BernoulliRBM rule).
        """
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        layout = self._bind(model, rng)
        if expected_data and not self.accepts_expected_data:
            raise ValueError(f"{type(self).__name__} cannot learn from expected data (its "
                             "chains or its exact likelihood need states); use PCD or PT")
        positive = moments_gradient(layout, self.positive_rows(model, X, rng, expected_data))
        negative = moments_gradient(layout, self.negative_rows(model, X, rng))
        return {k: negative[k] - positive[k] for k in positive}

    def negative_rows(self, model, X, rng) -> np.ndarray:
        raise NotImplementedError

    # checkpoints: arrays of persistent state
    def get_state(self) -> dict:
        return {}

    def set_state(self, model, state: Mapping, rng) -> None:
        pass


class ExactGradient(_Estimator):
    """The exact gradient (``pe.exact.gradient``), for models small enough to enumerate."""

    accepts_expected_data = False

    def gradient(self, model, X, rng=None, *, expected_data: bool = False):
        if expected_data:
            raise ValueError("ExactGradient cannot learn from expected data (the exact "
                             "likelihood needs states); use PCD or PT")
        return exact.gradient(model, X)


class CD(_Estimator):
    """Contrastive divergence: the negative phase from ``k`` Gibbs sweeps started at the data.

    The hidden units are first drawn from ``P(h | x)``; the last state's closed-form units
    are replaced by their conditional means (Rao-Blackwellised statistics).
    """

    accepts_expected_data = False

    def __init__(self, k: int = 1, *, schedule: str = "auto"):
        super().__init__()
        self.k = positive_int(k, "k")
        self.schedule = schedule
        self._chains = None

    def negative_rows(self, model, X, rng):
        layout = self._layout
        flat = _flat_visible(model, layout, X)
        if self._chains is None or self._chains.n_chains != len(flat):
            self._chains = GibbsSampler(model, len(flat), schedule=self.schedule, rng=rng)
        clamp = layout.graph.decode(flat, model.visible)
        self._chains.run(1, clamp=clamp).run(self.k)
        return expected_states(model, self._chains._engine.flat(), layout.model_closed)


class PCD(_Estimator):
    """Persistent contrastive divergence: ``n_chains`` model chains kept across updates,
    advanced ``k`` sweeps per gradient (Tieleman 2008)."""

    def __init__(self, n_chains: int = 100, k: int = 1, *, schedule: str = "auto"):
        super().__init__()
        self.n_chains = positive_int(n_chains, "n_chains")
        self.k = positive_int(k, "k")
        self.schedule = schedule
        self.sampler = None

    def _start(self, model, rng):
        self.sampler = GibbsSampler(model, self.n_chains, schedule=self.schedule, rng=rng)

    def negative_rows(self, model, X, rng):
        self.sampler.run(self.k)
        return expected_states(model, self.sampler._engine.flat(), self._layout.model_closed)

    def get_state(self):
        return {"flat": self.sampler._engine.flat(), "streams": self.sampler._streams.copy()}

    def set_state(self, model, state, rng):
        self._bind(model, rng)
        self.sampler._engine.load(np.asarray(state["flat"]))
        self.sampler._streams[...] = state["streams"]


class PT(_Estimator):
    """Persistent parallel tempering: chains at ``betas`` (one of them 1) with swaps; the
    negative phase uses the chains at beta = 1 after ``k`` sweeps."""

    def __init__(self, betas: Sequence[float] = (1.0, 0.8, 0.6, 0.4), n_chains: int = 100,
                 k: int = 1, *, schedule: str = "auto"):
        super().__init__()
        self.betas = list(betas)
        self.n_chains = positive_int(n_chains, "n_chains")
        self.k = positive_int(k, "k")
        self.schedule = schedule
        self.tempering = None

    def _start(self, model, rng):
        self.tempering = ParallelTempering(model, self.betas, self.n_chains, rng=rng,
                                           schedule=self.schedule)

    def negative_rows(self, model, X, rng):
        self.tempering.run(self.k)
        flat = self.tempering.sampler._engine.flat()[:self.n_chains]
        return expected_states(model, flat, self._layout.model_closed)

    def get_state(self):
        pt = self.tempering
        return {"flat": pt.sampler._engine.flat(), "streams": pt.sampler._streams.copy(),
                "swap_counts": np.stack([pt._accepted, pt._proposed]),
                "parity": np.array(pt._parity),
                "swap_rng": np.array(json.dumps(pt._gen.bit_generator.state))}

    def set_state(self, model, state, rng):
        self._bind(model, rng)
        pt = self.tempering
        pt.sampler._engine.load(np.asarray(state["flat"]))
        pt.sampler._streams[...] = state["streams"]
        pt._accepted[:], pt._proposed[:] = state["swap_counts"]
        pt._parity = int(state["parity"])
        pt._gen.bit_generator.state = json.loads(str(state["swap_rng"][()]))


# -- optimizers -----------------------------------------------------------------------------
def exponential_decay(lr: float, rate: float) -> Callable[[int], float]:
    """Learning-rate schedule ``lr * rate ** epoch`` (epochs count from 0)."""
    return lambda epoch: lr * rate ** epoch


class _Optimizer:
    """Gradient *ascent* on the log-likelihood with optional L2/L1 penalties.

    ``lr`` is a float or a schedule ``epoch -> float``.
    """

    def __init__(self, lr, weight_decay: float, l1: float):
        if not callable(lr):
            lr = positive_float(lr, "lr")
        self.lr = lr
        self.weight_decay = nonnegative_float(weight_decay, "weight_decay")
        self.l1 = nonnegative_float(l1, "l1")
        self.slots: dict[str, dict[str, np.ndarray]] = {}

    def rate(self, epoch: int) -> float:
        return self.lr(epoch) if callable(self.lr) else self.lr

    def penalised(self, theta, grad):
        """``grad - weight_decay * theta - l1 * sign(theta)``."""
        return grad - self.weight_decay * theta - self.l1 * np.sign(theta)

    def updates(self, params: Mapping, grads: Mapping, epoch: int) -> dict:
        """The step for every parameter (not yet applied)."""
        raise NotImplementedError

    def get_state(self) -> dict:
        return {f"{slot}/{name}": arr for name, slots in self.slots.items()
                for slot, arr in slots.items()}

    def set_state(self, state: Mapping) -> None:
        for key, arr in state.items():
            slot, name = key.split("/", 1)
            self.slots.setdefault(name, {})[slot] = np.array(arr)


class SGD(_Optimizer):
    """Stochastic gradient ascent with momentum: ``v = momentum v + lr g; theta += v``,
    with ``g`` the gradient minus ``weight_decay * theta + l1 * sign(theta)``."""

    def __init__(self, lr=0.05, momentum: float = 0.0, weight_decay: float = 0.0,
                 l1: float = 0.0):
        super().__init__(lr, weight_decay, l1)
        self.momentum = nonnegative_float(momentum, "momentum")
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum}")

    def updates(self, params, grads, epoch):
        lr = self.rate(epoch)
        out = {}
        for name, theta in params.items():
            slot = self.slots.setdefault(name, {})
            step = lr * self.penalised(theta, grads[name])
            if self.momentum:
                step = slot["velocity"] = self.momentum * slot.get("velocity", 0.0) + step
            out[name] = step
        return out


class Adam(_Optimizer):
    """Adam (Kingma & Ba) for ascent: ``m, v`` moving moments of ``g``;
    ``theta += lr * m_hat / (sqrt(v_hat) + eps)``."""

    def __init__(self, lr=1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(lr, weight_decay, l1)
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.beta1, self.beta2, self.eps = beta1, beta2, positive_float(eps, "eps")

    def updates(self, params, grads, epoch):
        lr = self.rate(epoch)
        out = {}
        for name, theta in params.items():
            slot = self.slots.setdefault(name, {})
            g = self.penalised(theta, grads[name])
            t = slot["t"] = slot.get("t", np.zeros(())) + 1
            m = slot["m"] = self.beta1 * slot.get("m", 0.0) + (1 - self.beta1) * g
            v = slot["v"] = self.beta2 * slot.get("v", 0.0) + (1 - self.beta2) * g * g
            m_hat = m / (1 - self.beta1 ** t)
            v_hat = v / (1 - self.beta2 ** t)
            out[name] = lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return out


# -- monitors -------------------------------------------------------------------------------
class PseudoLogLikelihood:
    """Mean pseudo-log-likelihood ``sum_i log P(x_i | x_-i)`` of the data, from free
    energies: ``log P(x_i | x_-i) = -log(1 + exp(F(x) - F(x with unit i flipped)))``.

    All visible units are used when there are at most ``max_units``; otherwise a random unit
    per sample, scaled by the number of units (scikit-learn's estimate). The monitor has its
    own ``rng``, so it never changes the training run.
    """

    name = "pseudo_log_likelihood"

    def __init__(self, X, *, max_units: int = 64, rng=0):
        self.X, self.max_units, self.rng = X, max_units, np.random.default_rng(rng)

    def __call__(self, model, epoch, history):
        history.setdefault(self.name, []).append(pseudo_log_likelihood(
            model, self.X, max_units=self.max_units, rng=self.rng))


def pseudo_log_likelihood(model, X, *, max_units=64, rng=0) -> float:
    """See :class:`PseudoLogLikelihood`; returns the mean over the rows of ``X``."""
    state = model.as_state(X, model.visible, what="X")
    free = model.free_energy(state)
    sites = [(g, i) for g in model.visible for i in range(model.units[g].n)]
    rows = np.arange(len(free))

    n_values = max(len(model.units[g].values) for g in model.visible)

    def log_conditional(chosen):
        """``log P(x_i | x_-i) = -F(x) - log sum_v exp(-F(x with x_i = v))``, with site
        ``chosen[r]`` for row ``r`` (the free energies of the other values only)."""
        neg_f = np.full((n_values, len(rows)), -np.inf)
        for t in range(n_values):
            edited = {g: v.copy() for g, v in state.items()}
            changed = np.zeros(len(rows), bool)
            for k, (g, i) in enumerate(sites):
                values = model.units[g].values
                pick = rows[(chosen == k) & (t < len(values))]
                pick = pick[state[g][pick, i] != values[min(t, len(values) - 1)]]
                if len(pick):
                    edited[g][pick, i] = values[t]
                    changed[pick] = True
            if changed.any():
                neg_f[t, changed] = -model.free_energy(
                    {g: v[changed] for g, v in edited.items()})
        return -free - np.logaddexp(-free, logsumexp(neg_f, axis=0))

    if len(sites) <= max_units:
        total = sum(log_conditional(np.full(len(rows), k)) for k in range(len(sites)))
    else:
        total = len(sites) * log_conditional(np.random.default_rng(rng).integers(
            0, len(sites), len(rows)))
    return float(np.mean(total))


class ReconstructionError:
    """Mean squared error between ``x`` and its mean-field reconstruction
    ``E[x | h = E[h | x]]`` (one up-down pass; over the one-hot slots of categorical units)."""

    name = "reconstruction_error"

    def __init__(self, X):
        self.X = X

    def __call__(self, model, epoch, history):
        layout = _Layout(model)
        flat = _flat_visible(model, layout, self.X)
        rows = expected_states(model, flat, layout.hidden_closed)
        vis = layout.visible
        mean = expected_states(model, rows, np.flatnonzero(vis))
        err = ((mean[:, vis] - flat[:, vis]) ** 2).sum(axis=1).mean()
        history.setdefault(self.name, []).append(float(err))


class ExactLogLikelihood:
    """Mean exact log-likelihood of ``X`` (``pe.exact``; refuses models too large)."""

    name = "exact_log_likelihood"

    def __init__(self, X):
        self.X = X

    def __call__(self, model, epoch, history):
        history.setdefault(self.name, []).append(
            float(exact.log_likelihood(model, self.X).mean()))


# -- the fit loop -----------------------------------------------------------------------------
class History(dict):
    """Per-epoch monitor values: ``history[name]`` is a list, ``history["epoch"]`` too."""


class _CompiledPCD:
    """The compiled epoch (``_learning.pcd_sgd_epoch``) for ``PCD`` + ``SGD`` on a model
    whose visible and hidden units form the two dense layers of the block sampler and whose
    parameters map one to one onto its fields and couplings (an RBM, binary or spin)."""

    def __init__(self, model, method, optimizer, gen):
        method._bind(model, gen)
        self.method, self.optimizer = method, optimizer
        sampler = method.sampler
        graph = model.graph
        engine = sampler._engine
        layout = method._layout
        if graph.generic_terms or graph.categorical.any() or not (sampler.schedule == "block"
                and np.array_equal(engine.units_a, np.flatnonzero(layout.visible))
                and graph.n_edges == len(engine.units_a) * len(engine.units_b)):
            raise _NotCompiled
        # Flat slot of every parameter entry: fields of a, then of b, then couplings.
        n_a, n_b = len(engine.units_a), len(engine.units_b)
        slot_of_unit = np.empty(graph.n_units, np.int64)
        slot_of_unit[engine.units_a] = np.arange(n_a)
        slot_of_unit[engine.units_b] = n_a + np.arange(n_b)
        self.slots, covered = {}, []
        for land in graph._landings:
            if np.any(land.coef != 1) or np.any(land.target < 0):
                raise _NotCompiled
            slots = (n_a + n_b + engine._coupling_index[land.target] if land.pair
                     else slot_of_unit[land.target])
            self.slots[land.param] = slots
            covered.append(slots)
        covered = np.concatenate(covered)
        if len(covered) != n_a + n_b + n_a * n_b or len(np.unique(covered)) != len(covered):
            raise _NotCompiled
        self.n_a, self.n_b, self.engine = n_a, n_b, engine

    def epoch(self, model, data_a, order, batch_size, epoch, max_grad):
        model.check_params()
        engine, n_a, n_b = self.engine, self.n_a, self.n_b
        flat = np.empty(n_a + n_b + n_a * n_b)
        for name, slots in self.slots.items():
            flat[slots] = model.params[name].ravel()
        velocity = np.zeros_like(flat)
        for name, slots in self.slots.items():
            velocity[slots] = np.ravel(self.optimizer.slots.get(name, {}).get("velocity", 0.0))
        field_a, field_b = flat[:n_a], flat[n_a:n_a + n_b]
        coupling = flat[n_a + n_b:].reshape(n_a, n_b)
        opt = self.optimizer
        largest = _learning.pcd_sgd_epoch(
            data_a, order.astype(np.int64), batch_size, coupling, field_a, field_b,
            velocity[n_a + n_b:].reshape(n_a, n_b), velocity[:n_a], velocity[n_a:n_a + n_b],
            engine.sa, engine.sb, engine.scale[engine.units_a], engine.low[engine.units_a],
            engine.scale[engine.units_b], engine.low[engine.units_b], self.method.sampler._streams,
            self.method.k, opt.rate(epoch), opt.momentum, opt.weight_decay, opt.l1,
            _threads_for(len(engine.sa), self.method.sampler.n_threads))
        updated = {name: flat[slots].reshape(model.params[name].shape)
                   for name, slots in self.slots.items()}
        _check_finite({"any parameter": np.array([largest])}, epoch, "gradient", max_grad)
        _check_finite(updated, epoch, "update", MAX_ENERGY)
        for name, value in updated.items():
            model.params[name] = value
            if opt.momentum:
                opt.slots.setdefault(name, {})["velocity"] = velocity[
                    self.slots[name]].reshape(value.shape)


class _NotCompiled(Exception):
    """The compiled epoch does not apply to this model / method / optimizer."""


def _threads_for(n_chains, n_threads):
    """Threads worth using for per-chain work in a layer (small batches: one)."""
    return max(1, min(n_threads, n_chains // 64))


def fit(model: EnergyModel, X, method=None, optimizer=None, *, epochs: int = 10,
        batch_size: int = 100, rng=None, callbacks: Sequence[Callable] = (), verbose: int = 0,
        checkpoint: str | os.PathLike | None = None, resume: bool = False,
        max_grad: float = 1e6, compiled: bool = True, expected_data: bool = False) -> History:
    """Train ``model`` on ``X`` by stochastic gradient ascent on the mean log-likelihood.

    Parameters
    ----------
    model : EnergyModel
    X : array or dict
        Training data for the visible groups, ``(n_samples, n)`` per group.
    method : estimator, optional
        ``CD(k)``, ``PCD(n_chains, k)``, ``PT(betas, n_chains)`` or ``ExactGradient()``
        (default ``PCD()``).
    optimizer : SGD or Adam, optional
        Default ``SGD(lr=0.05, momentum=0.5)``.
    epochs, batch_size : int
        Passes over the data; rows per update (the data are shuffled each epoch by ``rng``).
    rng : None, int or numpy.random.Generator
        The run's only source of randomness (shuffles and chains).
    callbacks : sequence of callables ``f(model, epoch, history)``
        Monitors (e.g. :class:`PseudoLogLikelihood`), called after every epoch.
    verbose : int
        1 for a progress bar (``tqdm`` when installed, plain lines otherwise).
    checkpoint : path, optional
        After every epoch, write the model, optimizer, estimator chains, random state and
        history there (``.npz``, no pickle). With ``resume=True`` and an existing file, the
        run continues from it and ends with the same parameters as an uninterrupted run.
    max_grad : float
        A gradient entry larger than this in magnitude counts as divergence.
    compiled : bool
        Run whole epochs in compiled code where that applies (``PCD`` with ``SGD`` on a
        two-layer model such as an RBM): the same estimator and update, without Python
        overhead per minibatch. False forces the minibatch loop in Python.
    expected_data : bool
        ``X`` holds expected values of the visible units (e.g. grey levels in [0, 1] read as
        probabilities of binary pixels), used as expected states in the positive phase
        (scikit-learn's BernoulliRBM rule). Needs PCD or PT and hidden units that are
        conditionally independent given the visible ones.

    Returns
    -------
    History
        Monitor values per epoch.

    Raises
    ------
    TrainingDiverged
        When a gradient or an update is not finite or exceeds ``max_grad``; the model keeps
        its last finite parameters.
    """
    if not isinstance(model, EnergyModel):
        raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
    method = PCD() if method is None else method
    optimizer = SGD(lr=0.05, momentum=0.5) if optimizer is None else optimizer
    epochs = nonnegative_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    data = model.as_state(X, model.visible, what="X", expectations=expected_data)
    n_samples = next(iter(data.values())).shape[0]
    gen = np.random.default_rng(rng)
    history = History(epoch=[])
    start = 0
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        start = _restore(checkpoint, model, method, optimizer, gen, history)

    progress = _Progress(epochs, start, verbose)
    extra = {"expected_data": True} if expected_data else {}   # custom estimators need not know
    fast = None
    for epoch in range(start, epochs):
        order = gen.permutation(n_samples)
        if compiled and fast is None and type(method) is PCD and type(optimizer) is SGD:
            try:
                fast = _CompiledPCD(model, method, optimizer, gen)
                layout = method._layout
                data_a = np.ascontiguousarray(
                    _flat_visible(model, layout, data, expected_data)[:, fast.engine.units_a])
            except _NotCompiled:
                compiled = False
        if fast is not None:
            fast.epoch(model, data_a, order, batch_size, epoch, max_grad)
        for lo in range(0, n_samples, batch_size) if fast is None else ():
            rows = order[lo:lo + batch_size]
            batch = {g: arr[rows] for g, arr in data.items()}
            grads = method.gradient(model, batch, gen, **extra)
            _check_finite(grads, epoch, "gradient", max_grad)
            steps = optimizer.updates(model.params, grads, epoch)
            updated = {name: model.params[name] + step for name, step in steps.items()}
            _check_finite(updated, epoch, "update", MAX_ENERGY)
            for name, value in updated.items():
                model.params[name] = value
        history["epoch"].append(epoch + 1)
        for callback in callbacks:
            callback(model, epoch + 1, history)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, model, method, optimizer, gen, history, epoch + 1)
        progress.update(history)
    progress.close()
    return history


def _check_finite(arrays, epoch, what, limit):
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)) or np.max(np.abs(value), initial=0.0) > limit:
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1}: the {what} of {name!r} is not finite "
                f"or exceeds {limit:g}; the model keeps its last finite parameters. Lower the "
                "learning rate (or add weight decay)")


def _save_checkpoint(path, model, method, optimizer, gen, history, epoch):
    arrays = model_arrays(model)
    arrays.update({f"method/{k}": v for k, v in method.get_state().items()})
    arrays.update({f"optimizer/{k}": v for k, v in optimizer.get_state().items()})
    arrays["train/rng"] = np.array(json.dumps(gen.bit_generator.state))
    arrays["train/epoch"] = np.array(epoch)
    arrays["train/history"] = np.array(json.dumps(history))
    tmp = f"{os.fspath(path)}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _restore(path, model, method, optimizer, gen, history):
    with np.load(path, allow_pickle=False) as data:
        saved = model_from_arrays(data)
        for name in model.params:
            model.params[name] = saved.params[name]
        optimizer.set_state({k[len("optimizer/"):]: data[k] for k in data.files
                             if k.startswith("optimizer/")})
        state = json.loads(str(data["train/rng"][()]))
        if state["bit_generator"] != type(gen.bit_generator).__name__:
            raise ValueError(f"checkpoint used a {state['bit_generator']} generator; pass the "
                             "same kind of rng to resume")
        method_state = {k[len("method/"):]: data[k] for k in data.files
                        if k.startswith("method/")}
        if method_state:
            method.set_state(model, method_state, gen)
        gen.bit_generator.state = state
        history.update(json.loads(str(data["train/history"][()])))
        return int(data["train/epoch"])


class _Progress:
    """A tqdm bar over epochs when available and verbose; otherwise a plain line for about
    every twentieth epoch and the last one."""

    def __init__(self, epochs, start, verbose):
        self.verbose, self.bar, self.t0 = verbose, None, time.perf_counter()
        self.epochs, self.every = epochs, max(1, epochs // 20)
        if verbose:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=epochs, initial=start, unit="epoch")
            except ImportError:
                pass

    def update(self, history):
        if not self.verbose:
            return
        latest = {k: v[-1] for k, v in history.items() if k != "epoch" and v}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in latest.items()})
            self.bar.update(1)
        elif history["epoch"][-1] % self.every == 0 or history["epoch"][-1] == self.epochs:
            items = "  ".join(f"{k} {v:.4g}" for k, v in latest.items())
            print(f"epoch {history['epoch'][-1]}  {items}  "
                  f"({time.perf_counter() - self.t0:.1f} s)", file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()
