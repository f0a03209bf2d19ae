"""Greedy layer-wise pretraining of a deep Boltzmann machine (Salakhutdinov & Hinton 2009).

A DBM's hidden layer ``h_l`` hears both neighbours; an RBM trained on one pair of layers
hears only one. The 2009 scheme compensates by doubling the input from the side that is
present: the stack of RBMs ``(x, h1), (h1, h2), ..., (h_{L-1}, h_L)`` is trained bottom-up,
each by CD-k on the layer below's conditional means given the data, with the conditionals

    P(upper_j = 1 | lower) = sigmoid(c_j + u (W lower)_j)
    P(lower_i = 1 | upper) = sigmoid(b_i + d (W^T upper)_i),

``u = 2`` (the lower layer counted twice) except for the top RBM, ``d = 2`` except for the
bottom one (``u = d = 1`` for a DBM of one hidden layer: a plain RBM). The weight step is the
usual CD step ``<upper lower^T>_data - <upper lower^T>_reconstruction``. The DBM then takes
``W_l`` of each RBM as it is, ``b`` of the bottom RBM, ``c_L`` of the top one and the mean of
the two biases each middle layer got from its two RBMs; the means of layer ``l`` given the
data, passed up, are ``sigmoid(c_l + 2 W_l mean_{l-1})`` (the doubled input standing in for the
layer above).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._checks import positive_float, positive_int
from ..model import EnergyModel

__all__ = ["pretrain"]


def pretrain(model: EnergyModel, X, *, epochs: int = 100, lr: float = 0.05,
             batch_size: int = 100, k: int = 1, rng=None) -> EnergyModel:
    """Set a DBM's parameters by greedy layer-wise pretraining (module docstring).

    Parameters
    ----------
    model : EnergyModel
        A ``pe.DBM`` (groups ``x, h1, ...``; parameters ``b, c1, ..., W1, ...``), changed in
        place; its current weights are the RBMs' starting weights.
    X : array
        Binary training data ``(n_samples, n_x)``.
    epochs, lr, batch_size, k : int, float, int, int
        Per RBM: passes over the data, SGD step, rows per step, Gibbs steps of CD-k.
    rng : None, int or numpy.random.Generator
        Shuffles and Gibbs draws.

    Returns
    -------
    EnergyModel
        ``model``.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> from pgm_energy.cli import bars_and_stripes
    >>> X = bars_and_stripes(3)
    >>> dbm = pe.learning.pretrain(pe.DBM([9, 8, 6], rng=0), X, epochs=1000, lr=0.5,
    ...                            batch_size=14, rng=0)
    >>> bool(pe.exact.log_likelihood(dbm, X).mean() > -5.0)     # uniform: -9 log 2 = -6.24
    True
    """
    names = _dbm_layers(model)
    epochs = positive_int(epochs, "epochs")
    lr = positive_float(lr, "lr")
    batch_size = positive_int(batch_size, "batch_size")
    k = positive_int(k, "k")
    gen = np.random.default_rng(rng)
    data = model.as_state(X, ["x"], what="X")["x"]
    n_layers = len(names) - 1
    p = model.params
    biases = [p["b"]] + [p[f"c{l}"] for l in range(1, n_layers + 1)]
    lower_bias = {}
    for l in range(1, n_layers + 1):
        up = 1.0 if l == n_layers else 2.0
        down = 1.0 if l == 1 else 2.0
        b = biases[l - 1].copy()
        W, c = p[f"W{l}"], biases[l]
        for _ in range(epochs):
            _cd_epoch(W, b, c, data, up, down, lr, batch_size, k, gen)
        lower_bias[l - 1] = b
        if l < n_layers:
            data = expit(c + 2.0 * data @ W.T)
    p["b"][...] = lower_bias[0]
    for l in range(1, n_layers):
        p[f"c{l}"][...] = 0.5 * (p[f"c{l}"] + lower_bias[l])
    return model


def _cd_epoch(W, b, c, data, up, down, lr, batch_size, k, gen):
    """One epoch of CD-k (in place) on the RBM with conditionals scaled by ``up``/``down``."""
    order = gen.permutation(len(data))
    for start in range(0, len(data), batch_size):
        v0 = data[order[start:start + batch_size]]
        h0 = expit(c + up * v0 @ W.T)
        h = (gen.random(h0.shape) < h0).astype(float)
        for step in range(k):
            v = expit(b + down * h @ W)
            v = (gen.random(v.shape) < v).astype(float)
            hk = expit(c + up * v @ W.T)
            if step + 1 < k:
                h = (gen.random(hk.shape) < hk).astype(float)
        n = len(v0)
        W += lr * (h0.T @ v0 - hk.T @ v) / n
        b += lr * (v0 - v).mean(axis=0)
        c += lr * (h0 - hk).mean(axis=0)


def _dbm_layers(model) -> list:
    """The group names ``x, h1, ..., hL`` of a ``pe.DBM``, or a ``ValueError``."""
    if not isinstance(model, EnergyModel):
        raise TypeError(f"expected a pe.EnergyModel (a pe.DBM), got {type(model).__name__}")
    names = list(model.units)
    n = len(names)
    want = ["x"] + [f"h{l}" for l in range(1, n)]
    params = {"b"} | {f"c{l}" for l in range(1, n)} | {f"W{l}" for l in range(1, n)}
    if (n < 2 or names != want or set(model.params) != params or model.visible != ["x"]
            or any(list(model.units[g].values) != [0, 1] for g in names)
            or any(model.params[f"W{l}"].shape != (model.units[names[l]].n,
                                                   model.units[names[l - 1]].n)
                   for l in range(1, n))):
        raise ValueError("pretrain needs a pe.DBM (binary groups x, h1, ..., parameters b, "
                         f"c1, ..., W1, ...); got groups {names} and parameters "
                         f"{sorted(model.params)}")
    return names
