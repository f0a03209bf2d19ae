"""Slow, obviously correct references for models with continuous units: numerical quadrature.

The discrete groups are listed with ``itertools.product`` (as in ``exact.py``); the continuous
units (one to three of them) are integrated by tensor Gauss-Legendre quadrature over
``[-L, 0]`` and ``[0, L]`` (the kink of a rectified unit at 0 falls on a panel edge), through
the model's own ``energy`` evaluated on the whole grid at once. Nothing here uses the flat
graph, the reduction or a kernel.
"""
import itertools

import numpy as np
from scipy.special import logsumexp

_HALF_WIDTH = 14.0           # the test models' densities are negligible beyond
_NODES = 120                 # per panel: exact to rounding for these smooth integrands


def _nodes(lower):
    """Nodes and log weights on [lower, L] (lower = -L or 0)."""
    x, w = np.polynomial.legendre.leggauss(_NODES)
    panels = [(0.0, _HALF_WIDTH)] + ([(-_HALF_WIDTH, 0.0)] if lower < 0 else [])
    xs = np.concatenate([(b - a) / 2 * x + (a + b) / 2 for a, b in panels])
    ws = np.concatenate([(b - a) / 2 * w for a, b in panels])
    return xs, np.log(ws)


def _states(model, held):
    """Every discrete state and grid point: a state dict of (n_points, n) arrays and the log
    quadrature weight of each point; ``held`` fixes some units ``{(group, index): value}``
    and discrete groups ``{group: row}`` under ``"discrete"``."""
    held = dict(held)
    fixed = held.pop("discrete", {})
    axes, log_w = [], []
    for g, u in model.units.items():
        if u.continuous:
            for i in range(u.n):
                if (g, i) in held:
                    axes.append(np.array([held[(g, i)]]))
                    log_w.append(np.zeros(1))
                else:
                    xs, lw = _nodes(u.lower)
                    axes.append(xs)
                    log_w.append(lw)
        elif g in fixed:
            axes += [np.array([v]) for v in np.ravel(fixed[g])]
            log_w += [np.zeros(1)] * u.n
        else:
            axes += [np.array(u.values, float)] * u.n
            log_w += [np.zeros(len(u.values))] * u.n
    grid = np.array(list(itertools.product(*axes)))
    weights = np.array(list(itertools.product(*log_w))).sum(axis=1)
    state, col = {}, 0
    for g, u in model.units.items():
        state[g] = grid[:, col:col + u.n]
        col += u.n
    return state, weights


def log_partition(model, beta=1.0, held=None):
    """``log sum_d int exp(-beta E) dx`` over the discrete states and the free continuous
    units (``held`` as for ``_states``)."""
    state, log_w = _states(model, held or {})
    return float(logsumexp(log_w - beta * model.energy(state)))


def expectation(model, statistic, beta=1.0, held=None):
    """``E[statistic(state)]`` under ``exp(-beta E)`` (``held`` as for ``_states``), where
    ``statistic`` maps a state dict of (n_points, n) arrays to (n_points,) values."""
    state, log_w = _states(model, held or {})
    lw = log_w - beta * model.energy(state)
    return float(np.exp(lw - logsumexp(lw)) @ statistic(state))


def moments(model, beta=1.0):
    """``{(group, index): (mean, variance)}`` of every continuous unit by quadrature."""
    state, log_w = _states(model, {})
    lw = log_w - beta * model.energy(state)
    p = np.exp(lw - logsumexp(lw))
    out = {}
    for g, u in model.units.items():
        if u.continuous:
            for i in range(u.n):
                x = state[g][:, i]
                mean = p @ x
                out[(g, i)] = (mean, p @ (x - mean) ** 2)
    return out
