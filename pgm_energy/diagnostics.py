"""Diagnostics of Markov chain output: how strongly successive samples are correlated.

For chain output ``x_t`` the normalised autocorrelation ``rho(t)`` (:func:`autocorrelation`)
and the integrated autocorrelation time ``tau = 1 + 2 sum_{t=1}^{M} rho(t)``
(:func:`integrated_autocorrelation_time`, Sokal's window ``M``): a chain of ``n`` steps holds
about ``n / tau`` independent samples. The figure is
:func:`pgm_energy.plotting.plot_autocorrelation`.
"""
from __future__ import annotations

import numpy as np

from ._checks import positive_float, positive_int, real_array

__all__ = ["autocorrelation", "integrated_autocorrelation_time"]


def autocorrelation(trace, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation of Markov chain output, averaged over chains.

    For each series ``x`` (a chain, or a unit of a chain) of length ``n`` with mean ``m``,

        gamma(t) = (1 / n) sum_{s=0}^{n-t-1} (x_s - m) (x_{s+t} - m),

    and the result is ``rho(t) = sum_series gamma(t) / sum_series gamma(0)`` for
    ``t = 0..max_lag`` (so ``rho(0) = 1``). The ``1/n`` (not ``1/(n-t)``) estimator is the
    usual one for MCMC: biased towards 0 at large lags but never above 1 in magnitude.
    Computed with FFTs, O(n log n) per series. Constant series carry no information and are
    left out.

    Parameters
    ----------
    trace : array_like
        ``(n_steps,)`` for one chain, ``(n_steps, n_chains)`` for several chains of a scalar
        (e.g. the energy), or ``(n_steps, n_chains, n_units)`` as returned by
        :meth:`GibbsSampler.sample` (every unit of every chain is a series).
    max_lag : int, optional
        Largest lag (default and maximum ``n_steps - 1``).

    Returns
    -------
    numpy.ndarray, shape (max_lag + 1,)

    Raises
    ------
    ValueError
        Fewer than 2 steps, or every series constant.

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.diagnostics import autocorrelation
    >>> np.round(autocorrelation([1.0, -1.0, 1.0, -1.0]), 3)
    array([ 1.  , -0.75,  0.5 , -0.25])
    """
    x = real_array(trace, "trace", (1, 2, 3))
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"trace needs at least 2 steps, got {n}")
    max_lag = n - 1 if max_lag is None else positive_int(max_lag, "max_lag")
    if max_lag > n - 1:
        raise ValueError(f"max_lag must be at most n_steps - 1 = {n - 1}, got {max_lag}")
    x = x.reshape(n, -1)
    x = x - x.mean(axis=0)
    x = x[:, np.any(x != 0, axis=0)]
    if x.shape[1] == 0:
        raise ValueError("every series of trace is constant; its autocorrelation is undefined")
    size = 1 << (2 * n - 1).bit_length()       # zero padding: no circular wrap-around
    spectrum = np.fft.rfft(x, n=size, axis=0)
    gamma = np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=0)[:max_lag + 1].sum(axis=1)
    return gamma / gamma[0]


def integrated_autocorrelation_time(trace, *, window: float = 5.0) -> float:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_{t=1}^{M} rho(t)``.

    ``rho`` is :func:`autocorrelation`; the window ``M`` is Sokal's automatic choice, the
    smallest ``M`` with ``M >= window * tau(M)``. Independent draws have ``tau = 1``; a
    chain of ``n`` steps carries about ``n / tau`` independent samples (its effective
    sample size).

    Parameters
    ----------
    trace : array_like
        As for :func:`autocorrelation`.
    window : float
        Sokal's constant ``c`` (> 0); 5 is customary.

    Returns
    -------
    float
        ``tau``; the whole trace is summed when no ``M`` qualifies (then ``tau`` is a lower
        estimate: the trace is too short for its correlation).

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.diagnostics import integrated_autocorrelation_time
    >>> tau = integrated_autocorrelation_time(np.random.default_rng(0).normal(size=10000))
    >>> bool(abs(tau - 1) < 0.1)
    True
    """
    window = positive_float(window, "window")
    rho = autocorrelation(trace)
    taus = 1.0 + 2.0 * np.cumsum(rho[1:])
    lags = np.arange(1, len(rho))
    ok = lags >= window * taus
    return float(taus[np.argmax(ok)] if ok.any() else taus[-1])
