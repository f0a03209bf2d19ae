"""Plain numpy AIS for bipartite models: the twin of ``_kernels._ais.anneal_bipartite``.

Vectorised over runs, states ``(n_runs, n)``, the summed layer marginalised in closed form,
the same steps in the same order as the kernel (see ``_ais.h``):

    log f_beta(x) = (1 - beta) b0.x + beta b.x + sum_j softplus(beta (c_j + (C x)_j))

per step ``log w += log f_beta(x) - log f_beta_prev(x)``, then (but at the last step)
``h ~ sigmoid(beta (c + C x))`` and ``x ~ sigmoid((1 - beta) b0 + beta (b + C^T h))``.
``uniform(n)`` supplies the draws, shape ``(n_runs, n)``: the tests pass the kernel's
xoshiro streams (same chains), the benchmark a ``numpy.random.Generator``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import expit


def anneal_bipartite(x: np.ndarray, coupling: np.ndarray, field_kept: np.ndarray,
                     field_summed: np.ndarray, base_kept: np.ndarray, betas: np.ndarray,
                     uniform: Callable[[int], np.ndarray]) -> np.ndarray:
    """Walk ``betas`` from state ``x`` (n_runs, n_kept), updated in place; return log weights.

    ``coupling`` is (n_summed, n_kept); its dtype (float32 or float64) sets the precision of
    the products, while the log weights accumulate in float64.
    """
    n_runs = x.shape[0]
    log_w = np.zeros(n_runs)
    slope = field_kept - base_kept
    for k in range(1, len(betas)):
        beta, beta_prev = betas[k], betas[k - 1]
        z = field_summed + (x @ coupling.T)                # float64: the fields are double
        log_w += (beta - beta_prev) * (x @ slope)
        log_w += (np.logaddexp(0.0, beta * z) - np.logaddexp(0.0, beta_prev * z)).sum(axis=1)
        if k == len(betas) - 1:
            break
        h = (uniform(z.shape[1]) < expit(beta * z)).astype(x.dtype)
        g = (1.0 - beta) * base_kept + beta * (field_kept + h @ coupling)
        x[...] = uniform(x.shape[1]) < expit(g)
    return log_w
