"""Slow, obviously correct references: brute-force enumeration through ``term.energy``.

Nothing here uses the flat graph or a kernel: it lists every joint state with
``itertools.product`` and evaluates the model's own ``energy`` and ``energy_grad``.
"""
import itertools

import numpy as np
from scipy.special import logsumexp


def all_states(model, groups=None):
    """Every joint state of ``groups`` (default all) as a state dict of (n_states, n) arrays."""
    groups = list(model.units) if groups is None else list(groups)
    values = []
    for g in groups:
        values += [model.units[g].values] * model.units[g].n
    grid = np.array(list(itertools.product(*values)), dtype=float).reshape(-1, len(values))
    out, col = {}, 0
    for g in groups:
        n = model.units[g].n
        out[g] = grid[:, col:col + n]
        col += n
    return out


def log_partition(model, beta=1.0):
    s = all_states(model)
    return float(logsumexp(-beta * model.energy(s)))


def joint_probabilities(model, beta=1.0):
    """(states dict, P(s)) over all joint states."""
    s = all_states(model)
    lw = -beta * model.energy(s)
    return s, np.exp(lw - logsumexp(lw))


def log_likelihood(model, X, beta=1.0):
    """log P(x) for each row of X (dict of visible groups) by summing the joint table."""
    s = all_states(model)
    lw = -beta * model.energy(s)
    log_z = logsumexp(lw)
    vis = np.concatenate([s[g] for g in model.visible], axis=1)
    Xf = np.concatenate([np.atleast_2d(X[g]) for g in model.visible], axis=1)
    return np.array([logsumexp(lw[np.all(vis == row, axis=1)]) - log_z for row in Xf])


def free_energy(model, X, beta=1.0):
    """F(x) = -log sum_h exp(-beta E(x, h)) by listing the hidden states."""
    Xd = {g: np.atleast_2d(np.asarray(X[g], float)) for g in model.visible}
    batch = next(iter(Xd.values())).shape[0]
    if not model.hidden:
        return beta * model.energy(Xd)
    h = all_states(model, model.hidden)
    n_h = next(iter(h.values())).shape[0]
    out = []
    for b in range(batch):
        state = {g: np.repeat(Xd[g][b:b + 1], n_h, axis=0) for g in model.visible}
        state.update(h)
        out.append(-logsumexp(-beta * model.energy(state)))
    return np.array(out)


def expectations(model, beta=1.0):
    """E_model[dE/dtheta] by weighting every state's energy_grad."""
    s, p = joint_probabilities(model, beta)
    out = {}
    for term in model.terms:
        for name, g in term.energy_grad(s).items():
            out[name] = np.tensordot(p, g, axes=1)
    return out


def data_expectations(model, X, beta=1.0):
    """mean over rows of X of E_{h|x}[dE/dtheta]."""
    Xd = {g: np.atleast_2d(np.asarray(X[g], float)) for g in model.visible}
    batch = next(iter(Xd.values())).shape[0]
    h = all_states(model, model.hidden) if model.hidden else {}
    n_h = next(iter(h.values())).shape[0] if h else 1
    out = {}
    for b in range(batch):
        state = {g: np.repeat(Xd[g][b:b + 1], n_h, axis=0) for g in model.visible}
        state.update(h)
        lw = -beta * model.energy(state)
        p = np.exp(lw - logsumexp(lw))
        for term in model.terms:
            for name, g in term.energy_grad(state).items():
                out[name] = out.get(name, 0.0) + np.tensordot(p, g, axes=1) / batch
    return out


def contract(tables, axes, n_axes, marginal=None):
    """Numpy twin of ``_eliminate.contract`` for binary axes.

    ``tables[f]`` is a flat log table over the joint axes ``axes[f]`` (most significant
    first); the joint axes are ``0..n_axes-1`` with axis 0 summed. Returns
    ``out = log sum_{x_0} exp(sum_f T_f)`` (shape ``2^(n_axes-1)``), and with ``marginal``
    also ``joint = marginal * exp(sum_f T_f - out)`` (shape ``2^n_axes``, axis 0 first).
    """
    total = np.zeros((2,) * n_axes)
    for table, ax in zip(tables, axes):
        shape = [2 if a in ax else 1 for a in range(n_axes)]
        order = np.argsort(ax)
        cube = np.transpose(np.asarray(table).reshape((2,) * len(ax)), order)
        total = total + cube.reshape(shape)
    out = logsumexp(total, axis=0).ravel()
    if marginal is None:
        return out
    joint = np.asarray(marginal).reshape((1,) + (2,) * (n_axes - 1)) * np.exp(
        total - out.reshape((1,) + (2,) * (n_axes - 1)))
    return out, joint.ravel()
