"""A plain numpy deep Boltzmann machine: mean field and PCD written out with matrix products.

The twin of ``pe.variational.mean_field`` on a ``pe.DBM`` (same start, same block order: the
odd hidden layers h1, h3, ... then the even ones h2, h4, ...; same stopping rule), and the
baseline of ``benchmarks/bench_dbm.py`` (a well-written numpy DBM: mean-field positive phase,
persistent chains updated layer-block by layer-block, BLAS products only).
"""
import numpy as np
from scipy.special import expit


def mean_field(W, c, x, tol=1e-6, max_iter=100, damping=0.0):
    """Means of the hidden layers given ``x`` (batch, n_x): ``W[l]`` of shape
    (n_{l+1}, n_l) couples layer l+1 to layer l (layer 0 is x), ``c[l]`` the bias of hidden
    layer l+1. Returns (list of (batch, n) means, n_iter, converged)."""
    L = len(W)
    mu = [np.zeros((len(x), len(b))) for b in c]

    def field(l):                              # of hidden layer l (0-based), from its neighbours
        below = x if l == 0 else mu[l - 1]
        f = c[l] + below @ W[l].T
        if l + 1 < L:
            f = f + mu[l + 1] @ W[l + 1]
        return f

    mu = [expit(f) for f in [field(l) for l in range(L)]]   # given x, the hidden at zero
    n_iter, change = 0, np.inf
    while n_iter < max_iter and not change < tol:
        change = 0.0
        for parity in (0, 1):                      # h1, h3, ... then h2, h4, ...
            new = {l: expit(field(l)) for l in range(parity, L, 2)}
            for l, m in new.items():
                if damping:
                    m = damping * mu[l] + (1 - damping) * m
                change = max(change, float(np.max(np.abs(m - mu[l]))))
                mu[l] = m
        n_iter += 1
    return mu, n_iter, change < tol


def gibbs_sweep(W, b, c, layers, gen):
    """One block Gibbs sweep of the persistent chains ``layers`` ([x, h1, ...], updated in
    place): the odd layers given the even ones, then the even ones."""
    L = len(layers)
    bias = [b] + list(c)

    def field(l):
        f = bias[l].copy() if l == 0 else bias[l]
        f = f + (layers[l - 1] @ W[l - 1].T if l > 0 else 0.0)
        if l + 1 < L:
            f = f + layers[l + 1] @ W[l]
        return f

    for parity in (1, 0):
        for l in range(parity, L, 2):
            p = expit(field(l))
            layers[l] = (gen.random(p.shape) < p).astype(float)


def pcd_epoch(W, b, c, chains, X, batch_size, lr, k, gen, tol=1e-6, max_iter=50):
    """One epoch of PCD with a mean-field positive phase and plain SGD (in place)."""
    order = gen.permutation(len(X))
    for start in range(0, len(X), batch_size):
        x = X[order[start:start + batch_size]]
        mu, _, _ = mean_field(W, c, x, tol, max_iter)
        for _ in range(k):
            gibbs_sweep(W, b, c, chains, gen)
        pos, neg = [x] + mu, chains
        n, m = len(x), len(neg[0])
        b += lr * (pos[0].mean(0) - neg[0].mean(0))
        for l in range(len(W)):
            W[l] += lr * (pos[l + 1].T @ pos[l] / n - neg[l + 1].T @ neg[l] / m)
            c[l] += lr * (pos[l + 1].mean(0) - neg[l + 1].mean(0))
