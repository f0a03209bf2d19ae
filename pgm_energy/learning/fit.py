"""The training loop: ``fit``, its ``History``, divergence checks and progress lines."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Sequence

import numpy as np

from .._checks import nonnegative_int, positive_int
from ..graph import MAX_ENERGY
from ..model import EnergyModel
from . import checkpoints
from .compiled import CompiledPCD, NotCompiled
from .estimators import PCD, visible_data
from .optimizers import SGD

__all__ = ["fit", "History", "TrainingDiverged"]


class TrainingDiverged(FloatingPointError):
    """Raised by ``fit`` when a gradient or an update is not finite or explodes."""


class History(dict):
    """Per-epoch monitor values: ``history[name]`` is a list, ``history["epoch"]`` too."""


def fit(model: EnergyModel, X, method=None, optimizer=None, *, epochs: int = 10,
        batch_size: int = 100, rng=None, callbacks: Sequence[Callable] = (), verbose: int = 0,
        checkpoint: str | os.PathLike | None = None, resume: bool = False,
        max_grad: float = 1e6, compiled: bool = True, expected_data: bool = False) -> History:
    """Train ``model`` on ``X`` by stochastic gradient ascent on the mean log-likelihood.

    Parameters
    ----------
    model : EnergyModel
    X : array or dict
        Training data for the visible groups, ``(n_samples, n)`` per group. NaN marks a
        missing entry: the run then maximises the log marginal likelihood of the observed
        entries, the positive phase sampling the missing ones given the rest (CD, PCD and PT;
        see docs/learning.md, "Missing values"; the minibatch loop in Python runs).
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
        After every epoch, write the model, optimizer, estimator chains, centering offsets,
        random state and history there (``.npz``, no pickle). With ``resume=True`` and an existing file, the
        run continues from it; with ``ExactGradient``, and with ``PCD`` or ``PT`` on a model
        whose hidden units are independent given the visible ones, it ends with the same
        parameters as an uninterrupted run. (CD's chains, and the clamped positive-phase
        chains of models with coupled hidden units, are not in the file: they restart from
        the random state, so such a run goes on correctly but not draw for draw.) A file
        written with another method or optimizer (class or hyperparameters, ``n_chains``
        included), or a damaged one, is a ``ValueError``.
    max_grad : float
        A gradient entry larger than this in magnitude counts as divergence.
    compiled : bool
        Run whole epochs in compiled code where that applies (``PCD`` with ``SGD`` on a
        model whose units form two layers: an RBM, or a deep Boltzmann machine with the
        mean-field positive phase): the same estimator and update, without Python overhead
        per minibatch. False forces the minibatch loop in Python.
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
    ValueError
        ``X`` has no rows or does not fit the model; a checkpoint to resume from does not fit
        the run or cannot be read.
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
    data, missing = visible_data(model, X, expected_data=expected_data)
    compiled = compiled and not missing
    n_samples = next(iter(data.values())).shape[0]
    if n_samples == 0:
        raise ValueError("X must hold at least one row of training data, got 0 rows")
    gen = np.random.default_rng(rng)
    history = History(epoch=[])
    start = 0
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        start = checkpoints.restore(checkpoint, model, method, optimizer, gen, history)

    progress = _Progress(epochs, start, verbose)
    extra = {"expected_data": True} if expected_data else {}   # custom estimators need not know
    fast = None
    try:
        for epoch in range(start, epochs):
            order = gen.permutation(n_samples)
            if compiled and fast is None:
                try:
                    fast = CompiledPCD(model, method, optimizer, gen, expected_data)
                    data_a = fast.visible_rows(data)
                except NotCompiled:
                    compiled = False
            if fast is not None:
                largest, updated = fast.epoch(model, data_a, order, batch_size, epoch)
                _check_finite({"any parameter": np.array([largest])}, epoch, "gradient",
                              max_grad)
                _check_finite(updated, epoch, "update", MAX_ENERGY)
                fast.commit(model, updated)
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
            if fast is not None and (callbacks or checkpoint is not None):
                fast.store()            # the sampler as callbacks and checkpoints see it
            for callback in callbacks:
                callback(model, epoch + 1, history)
            if checkpoint is not None:
                checkpoints.save(checkpoint, model, method, optimizer, gen, history, epoch + 1)
            progress.update(history)
    finally:
        if fast is not None:
            fast.store()
        progress.close()
    return history


def _check_finite(arrays, epoch, what, limit):
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)) or np.max(np.abs(value), initial=0.0) > limit:
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1}: the {what} of {name!r} is not finite "
                f"or exceeds {limit:g}; the model keeps its last finite parameters. Lower the "
                "learning rate (or add weight decay)")


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
