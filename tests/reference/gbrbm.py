"""A plain numpy Gaussian-Bernoulli RBM: PCD written out with matrix products.

``E(x, h) = sum_i x_i^2 / (2 sigma_i^2) - b.x - c.h - h^T W x``; ``x | h ~ N(sigma^2 (b +
W^T h), sigma^2)`` and ``P(h_j = 1 | x) = sigmoid(c_j + W_j x)``. The baseline a competent
user would write (vectorised over the batch and the chains, BLAS products only), for
``benchmarks/bench_gaussian_rbm.py``: the same algorithm as ``pe.fit`` with ``pe.PCD`` and
``pe.SGD`` (Rao-Blackwellised statistics: the hidden units at their conditional means on both
sides).
"""
import numpy as np
from scipy.special import expit


def gibbs_sweep(W, b, c, sigma2, x, gen):
    """One block sweep of the chains ``x`` (n_chains, n_x): ``h | x``, then ``x | h``."""
    p = expit(c + x @ W.T)
    h = (gen.random(p.shape) < p).astype(float)
    mean = sigma2 * (b + h @ W)
    return mean + np.sqrt(sigma2) * gen.standard_normal(mean.shape)


def pcd_epoch(W, b, c, sigma2, chains, X, batch_size, lr, k, gen):
    """One epoch of PCD with plain SGD, in place; returns the chains."""
    order = gen.permutation(len(X))
    for start in range(0, len(X), batch_size):
        x = X[order[start:start + batch_size]]
        for _ in range(k):
            chains = gibbs_sweep(W, b, c, sigma2, chains, gen)
        h_pos = expit(c + x @ W.T)
        h_neg = expit(c + chains @ W.T)
        n, m = len(x), len(chains)
        W += lr * (h_pos.T @ x / n - h_neg.T @ chains / m)
        b += lr * (x.mean(0) - chains.mean(0))
        c += lr * (h_pos.mean(0) - h_neg.mean(0))
    return chains
