"""Monitors: callables ``f(model, epoch, history)`` that ``fit`` calls after every epoch, each
appending one value to ``history[name]``."""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .. import exact
from .estimators import _flat_visible, _Layout, expected_states

__all__ = ["PseudoLogLikelihood", "ReconstructionError", "ExactLogLikelihood",
           "pseudo_log_likelihood"]


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
    """See :class:`PseudoLogLikelihood`; returns the mean over the rows of ``X``.

    Discrete visible units only: for a continuous unit, ``P(x_i | x_-i)`` is a density whose
    normaliser is an integral of ``exp(-F)`` over ``x_i`` with no closed form, so the monitor
    is refused; on real-valued data, :class:`ReconstructionError` (the mean squared error of
    one up-down pass) and, for models small enough, :class:`ExactLogLikelihood` or an AIS
    estimate take its place.
    """
    continuous = [g for g in model.visible if model.units[g].continuous]
    if continuous:
        raise ValueError(
            f"the pseudo-log-likelihood needs discrete visible units, but {continuous} are "
            "continuous (P(x_i | x_-i) is a density with no closed-form normaliser); on "
            "real-valued data monitor ReconstructionError (mean squared error), or "
            "ExactLogLikelihood / pe.ais.log_likelihood for the log density")
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
    ``E[x | h = E[h | x]]`` (one up-down pass; over the one-hot slots of categorical units;
    for Gaussian visible units ``sigma^2 (b + W^T E[h | x])``): the monitor for real-valued
    data."""

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
