"""Diagnostics of Markov chain output: correlation, effective sample size, convergence.

Chain output is an array ``x`` of shape ``(n_samples, n_chains)`` (one scalar per chain and
sample, e.g. the energy) or ``(n_samples, n_chains, ...)`` (e.g. a group of
:meth:`GibbsSampler.sample`, one series per unit); every diagnostic returns one value per
trailing index, a 0-d value when there is none.

- :func:`autocorrelation`: the normalised autocorrelation ``rho(t)`` pooled over series.
- :func:`integrated_time`: ``tau = 1 + 2 sum_{t=1}^{M} rho(t)`` with Sokal's window ``M``
  and the between-chain correction of Vehtari et al. (2021), so chains stuck apart give a large
  ``tau``.
- :func:`ess`: the effective sample size ``N / tau``, ``N = n_samples * n_chains``.
- :func:`mcse`: the Monte Carlo standard error of the mean, ``sd / sqrt(ess)``.
- :func:`rhat`: the rank-normalised split R-hat of Vehtari et al. (2021).
- :func:`summary`: mean, sd, mcse, ess and R-hat of every unit of a sampler's output (and of
  the energy), as a :class:`Summary`.

The figure is :func:`pgm_energy.plotting.plot_autocorrelation`.

References: A. D. Sokal, "Monte Carlo methods in statistical mechanics" (1997); A. Vehtari,
A. Gelman, D. Simpson, B. Carpenter, P.-C. Buerkner, "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16
(2021).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._checks import positive_float, positive_int, real_array

if TYPE_CHECKING:
    from .model import EnergyModel

__all__ = ["autocorrelation", "integrated_time", "ess", "mcse", "rhat", "summary", "Summary"]

#: Fewest samples per chain for :func:`integrated_time`, :func:`ess` and :func:`mcse`.
MIN_SAMPLES = 4
#: Fewest samples per chain for :func:`rhat` (4 in each half of a split chain).
MIN_RHAT_SAMPLES = 8


def autocorrelation(trace, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation of Markov chain output, averaged over chains.

    For each series ``x`` (a chain, or a unit of a chain) of length ``n`` with mean ``m``,

        gamma(t) = (1 / n) sum_{s=0}^{n-t-1} (x_s - m) (x_{s+t} - m),

    and the result is ``rho(t) = sum_series gamma(t) / sum_series gamma(0)`` for
    ``t = 0..max_lag`` (so ``rho(0) = 1``). The ``1/n`` (not ``1/(n-t)``) estimator is the
    usual one for MCMC: biased towards 0 at large lags but never above 1 in magnitude.
    Computed with FFTs, O(n log n) per series. Constant series carry no information and are
    left out. Each series is centred on its own mean, so chains stuck apart look well mixed
    here; :func:`integrated_time` corrects for that.

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
    gamma = _autocovariance(x)[:max_lag + 1].sum(axis=1)
    return gamma / gamma[0]


def _autocovariance(d: np.ndarray) -> np.ndarray:
    """``sum_{s=0}^{n-t-1} d_s d_{s+t}`` for ``t = 0..n-1`` of every column of the centred
    ``d`` (axis 0 is time), by FFT with zero padding (no circular wrap-around)."""
    n = d.shape[0]
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(d, n=size, axis=0)
    return np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=0)[:n]


def _chains(x, name: str, min_samples: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` as a finite float64 array ``(n_samples, n_chains, K)`` and its trailing shape."""
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_chains) or (n_samples, "
                         f"n_chains, ...), got shape {arr.shape}")
    arr = real_array(arr, name, (arr.ndim,))
    n, m = arr.shape[:2]
    if m < 1:
        raise ValueError(f"{name} needs at least 1 chain, got shape {arr.shape}")
    if n < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples per chain, got {n} "
                         f"(shape {arr.shape})")
    return arr.reshape(n, m, -1), arr.shape[2:]


def _shaped(values: np.ndarray, trailing: tuple[int, ...]):
    """One value per trailing index; a 0-d ``numpy.float64`` when there is none."""
    return values.reshape(trailing)[()]


def _integrated_time(x: np.ndarray, window: float) -> np.ndarray:
    """:func:`integrated_time` of checked chains ``(n, m, K)``: shape ``(K,)``, in blocks of
    quantities whose padded transforms hold about 2^24 numbers."""
    n, m, k = x.shape
    step = max(1, (1 << 24) // ((1 << (2 * n - 1).bit_length()) * m))
    return np.concatenate([_block_integrated_time(x[:, :, i:i + step], window)
                           for i in range(0, k, step)])


def _block_integrated_time(x: np.ndarray, window: float) -> np.ndarray:
    n, m, _ = x.shape
    acov = _autocovariance(x - x.mean(axis=0)) / n              # gamma_c(t): (n, m, K)
    within = acov[0].mean(axis=0) * n / (n - 1)                 # W
    between = x.mean(axis=0).var(axis=0, ddof=1) if m > 1 else 0.0   # B / n
    var_plus = (n - 1) / n * within + between
    varying = np.ptp(x, axis=(0, 1)) > 0
    rho = np.zeros((n - 1, x.shape[2]))
    rho[:, varying] = 1.0 - (within[varying] - acov[1:, :, varying].mean(axis=1)) \
        / var_plus[varying]
    taus = 1.0 + 2.0 * np.cumsum(rho, axis=0)
    ok = np.arange(1, n)[:, None] >= window * taus
    cut = np.where(ok.any(axis=0), ok.argmax(axis=0), n - 2)
    tau = taus[cut, np.arange(x.shape[2])]
    return np.maximum(tau, 1.0 / np.log10(max(n * m, 10)))


def integrated_time(x, *, window: float = 5.0) -> float | np.ndarray:
    """Integrated autocorrelation time over several chains, ``tau = 1 + 2 sum_{t=1}^{M} rho_t``.

    For ``m`` chains of ``n`` samples, with chain ``c``'s autocovariance
    ``gamma_c(t) = (1/n) sum_{s=0}^{n-t-1} (x_s - xbar_c)(x_{s+t} - xbar_c)`` (by FFT), the
    mean within-chain variance ``W = mean_c n gamma_c(0) / (n - 1)``, the variance of the chain
    means ``B / n`` (0 for one chain) and ``var_plus = (n - 1) W / n + B / n``, the combined
    autocorrelation is (Vehtari et al. 2021, as in Stan and ArviZ)

        rho_t = 1 - (W - mean_c gamma_c(t)) / var_plus,

    so chains that sit in different places (``B`` large against ``W``) have ``rho_t`` near 1
    and a large ``tau``. The window ``M`` is Sokal's: the smallest ``M >= window * tau(M)``;
    when none qualifies the whole series is summed (then ``tau`` is a lower estimate: the
    chains are too short for their correlation). Independent draws have ``tau = 1``.

    Special cases: a quantity equal in every sample of every chain has ``tau = 1``; chains each
    constant at different values have ``rho_t = 1``, ``tau = 2 n - 1``. ``tau`` is floored at
    ``1 / log10(N)`` (``N = n m``, at least 10), the cap ``ess <= N log10 N`` of ArviZ, so
    anticorrelated chains cannot give a zero or negative time.

    Parameters
    ----------
    x : array_like, shape (n_samples, n_chains) or (n_samples, n_chains, ...)
        Chain output, finite, at least 4 samples per chain; e.g. a group of
        :meth:`GibbsSampler.sample` (one value per unit).
    window : float
        Sokal's constant ``c`` (> 0); 5 is customary.

    Returns
    -------
    numpy.float64 or numpy.ndarray
        ``tau``, one per trailing index (shape ``x.shape[2:]``; 0-d without trailing axes).

    Raises
    ------
    ValueError
        ``x`` with fewer than 2 axes, no chain, fewer than 4 samples, NaN or inf; ``window``
        not positive.
    TypeError
        ``x`` not a real numeric array.

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.diagnostics import integrated_time
    >>> draws = np.random.default_rng(0).normal(size=(2000, 4))     # independent draws
    >>> bool(abs(integrated_time(draws) - 1) < 0.1)
    True
    >>> walk = np.random.default_rng(0).normal(size=(2000, 4, 3)).cumsum(axis=0)
    >>> integrated_time(walk).shape, bool(np.all(integrated_time(walk) > 50))
    ((3,), True)
    """
    window = positive_float(window, "window")
    chains, trailing = _chains(x, "x", MIN_SAMPLES)
    return _shaped(_integrated_time(chains, window), trailing)


def ess(x, *, window: float = 5.0) -> float | np.ndarray:
    """Effective sample size over all chains, ``ess = N / tau``.

    ``N = n_samples * n_chains`` and ``tau`` is :func:`integrated_time` (its ``window``):
    roughly, the number of independent draws that estimate the mean as well as ``x`` does.
    Chains stuck in different places have a small ``ess`` (about ``n_chains / 2`` when each is
    constant), a quantity constant over everything ``ess = N``.

    Parameters
    ----------
    x : array_like, shape (n_samples, n_chains) or (n_samples, n_chains, ...)
        As for :func:`integrated_time`.
    window : float
        Sokal's constant.

    Returns
    -------
    numpy.float64 or numpy.ndarray
        One per trailing index.

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.diagnostics import ess
    >>> draws = np.random.default_rng(0).normal(size=(1000, 4))
    >>> bool(3000 < ess(draws) < 5000)
    True
    """
    window = positive_float(window, "window")
    chains, trailing = _chains(x, "x", MIN_SAMPLES)
    n, m, _ = chains.shape
    return _shaped(n * m / _integrated_time(chains, window), trailing)


def mcse(x, *, window: float = 5.0) -> float | np.ndarray:
    """Monte Carlo standard error of the mean over all samples, ``sd / sqrt(ess)``.

    ``sd`` is the standard deviation of the ``N`` pooled samples (``ddof=1``) and ``ess`` is
    :func:`ess`: the estimate of the mean ``x.mean(axis=(0, 1))`` is typically within a few
    ``mcse`` of the true mean once the chains have mixed. A constant quantity has
    ``mcse = 0`` (up to rounding).

    Parameters
    ----------
    x : array_like, shape (n_samples, n_chains) or (n_samples, n_chains, ...)
        As for :func:`integrated_time`.
    window : float
        Sokal's constant.

    Returns
    -------
    numpy.float64 or numpy.ndarray
        One per trailing index.

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.diagnostics import mcse
    >>> draws = np.random.default_rng(0).normal(size=(1000, 4))       # sd 1, N = 4000
    >>> bool(abs(mcse(draws) - 1 / np.sqrt(4000)) < 0.002)
    True
    """
    window = positive_float(window, "window")
    chains, trailing = _chains(x, "x", MIN_SAMPLES)
    n, m, k = chains.shape
    sd = chains.reshape(n * m, k).std(axis=0, ddof=1)
    return _shaped(sd * np.sqrt(_integrated_time(chains, window) / (n * m)), trailing)


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain's first and last ``n // 2`` samples as two chains (the middle one of an
    odd ``n`` is dropped)."""
    half = x.shape[0] // 2
    return np.concatenate([x[:half], x[x.shape[0] - half:]], axis=1)


def _rank_normalised(x: np.ndarray) -> np.ndarray:
    """``Phi^{-1}((r - 3/8) / (N + 1/4))`` of the pooled ranks ``r`` (ties averaged)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    n, m, k = x.shape
    ranks = rankdata(x.reshape(n * m, k), axis=0)
    return ndtri((ranks - 0.375) / (n * m + 0.25)).reshape(n, m, k)


def _split_rhat(z: np.ndarray) -> np.ndarray:
    """Classic R-hat ``sqrt(var_plus / W)`` of chains ``(n, m >= 2, K)``."""
    n = z.shape[0]
    within = z.var(axis=0, ddof=1).mean(axis=0)
    var_plus = (n - 1) / n * within + z.mean(axis=0).var(axis=0, ddof=1)
    out = np.ones_like(within)                       # all equal: nothing to disagree on
    out[np.ptp(z, axis=(0, 1)) > 0] = np.inf         # each chain constant, chains apart
    good = np.any(np.ptp(z, axis=0) > 0, axis=0)
    out[good] = np.sqrt(var_plus[good] / within[good])
    return out


def _rhat(x: np.ndarray) -> np.ndarray:
    bulk = _split_rhat(_rank_normalised(_split(x)))
    n, m, k = x.shape
    folded = np.abs(x - np.median(x.reshape(n * m, k), axis=0))
    return np.maximum(bulk, _split_rhat(_rank_normalised(_split(folded))))


def rhat(x) -> float | np.ndarray:
    """Rank-normalised split R-hat (Vehtari et al. 2021): near 1 when the chains agree.

    Each chain is split into its first and last ``n // 2`` samples (so one chain is enough:
    its halves are compared), giving ``m' = 2 m`` chains of ``n' = n // 2``. The pooled values
    are replaced by normal scores ``z = Phi^{-1}((r - 3/8) / (N + 1/4))`` of their ranks ``r``
    (ties averaged, ``N = n' m'``), and for those

        R = sqrt(var_plus / W),  var_plus = (n' - 1) W / n' + B / n',

    with ``W`` the mean within-chain variance and ``B / n'`` the variance of the chain means.
    The result is the larger of the bulk value (of ``x``) and the folded one (of
    ``|x - median(x)|``, which catches chains with equal centres but different scales). Values
    above 1.01 signal chains that have not mixed, once the split chains are long against the
    integrated time: even mixed chains give about ``1 + (tau - 1) / (2 n')``. A quantity equal
    everywhere has ``R = 1``; split chains each constant but at different values have
    ``R = inf``.

    Parameters
    ----------
    x : array_like, shape (n_samples, n_chains) or (n_samples, n_chains, ...)
        Chain output, finite, at least 8 samples per chain (4 per split half), any number of
        chains.

    Returns
    -------
    numpy.float64 or numpy.ndarray
        One per trailing index.

    Raises
    ------
    ValueError
        Fewer than 8 samples per chain, fewer than 2 axes, no chain, NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.diagnostics import rhat
    >>> draws = np.random.default_rng(0).normal(size=(1000, 4))
    >>> bool(rhat(draws) < 1.01)
    True
    >>> bool(rhat(draws + np.arange(4)) > 1.1)          # chains centred apart
    True
    """
    chains, trailing = _chains(x, "x", MIN_RHAT_SAMPLES)
    return _shaped(_rhat(chains), trailing)


@dataclass(frozen=True, repr=False, eq=False)
class Summary:
    """Diagnostics of sampled quantities, one row per quantity (:func:`summary`).

    Attributes
    ----------
    names : tuple of str
        ``"x[3]"`` for unit 3 of group ``"x"``, a trace's own name, ``"energy"``.
    mean, sd, mcse, ess, rhat : numpy.ndarray, shape (len(names),)
        Pooled mean and standard deviation (``ddof=1``), :func:`mcse`, :func:`ess`,
        :func:`rhat`.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    mcse: np.ndarray
    ess: np.ndarray
    rhat: np.ndarray

    _COLUMNS = ("mean", "sd", "mcse", "ess", "rhat")

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{name: {"mean": ..., "sd": ..., "mcse": ..., "ess": ..., "rhat": ...}}``."""
        return {name: {c: float(getattr(self, c)[i]) for c in self._COLUMNS}
                for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        width = max([len("quantity")] + [len(n) for n in self.names])
        lines = [f"{'quantity':<{width}}" + "".join(f"{c:>11}" for c in self._COLUMNS)]
        for i, name in enumerate(self.names):
            lines.append(f"{name:<{width}}" + "".join(
                f"{getattr(self, c)[i]:>11.4g}" for c in self._COLUMNS))
        return "\n".join(lines)

    __str__ = __repr__


def summary(samples: Mapping, model: EnergyModel | None = None, *,
            window: float = 5.0) -> Summary:
    """Mean, sd, mcse, ess and R-hat of every sampled quantity, one row each.

    Parameters
    ----------
    samples : mapping of str to array_like
        What :meth:`GibbsSampler.sample` or :meth:`ParallelTempering.sample` return,
        ``{group: (n_samples, n_chains, n)}`` (one row ``"group[i]"`` per unit), and/or named
        scalar traces ``{name: (n_samples, n_chains)}`` (one row ``name``), all with the same
        ``n_samples >= 8`` and ``n_chains``.
    model : EnergyModel, optional
        With a model, a last row ``"energy"``: ``model.energy`` of every sampled state (at
        ``beta = 1``), so ``samples`` must hold every group of the model.
    window : float
        Sokal's constant of :func:`integrated_time`.

    Returns
    -------
    Summary
        Prints as a table; :meth:`Summary.as_dict` for the numbers by name.

    Raises
    ------
    ValueError
        Empty ``samples``, arrays not 2-D or 3-D, of different ``(n_samples, n_chains)``,
        fewer than 8 samples, NaN or inf; a group of ``model`` missing; a trace named
        ``"energy"`` together with ``model``.
    TypeError
        ``samples`` not a mapping.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> model = pe.RBM(3, 2, rng=0)
    >>> samples = pe.GibbsSampler(model, n_chains=8, rng=0).sample(100, burn_in=10)
    >>> table = pe.diagnostics.summary(samples, model)
    >>> table.names
    ('x[0]', 'x[1]', 'x[2]', 'h[0]', 'h[1]', 'energy')
    >>> bool(table.rhat.max() < 1.1)
    True
    """
    window = positive_float(window, "window")
    if not isinstance(samples, Mapping):
        raise TypeError(f"samples must be a mapping of name to array, got "
                        f"{type(samples).__name__}")
    if not samples:
        raise ValueError("samples is empty")
    names, columns, lead = [], [], None
    for key, value in samples.items():
        arr = np.asarray(value)
        if arr.ndim not in (2, 3):
            raise ValueError(f"samples[{key!r}] must have shape (n_samples, n_chains) or "
                             f"(n_samples, n_chains, n), got shape {arr.shape}")
        arr, _ = _chains(arr, f"samples[{key!r}]", MIN_RHAT_SAMPLES)
        if lead is None:
            lead = arr.shape[:2]
        elif arr.shape[:2] != lead:
            raise ValueError(f"samples[{key!r}] has (n_samples, n_chains) = {arr.shape[:2]}, "
                             f"the first array {lead}")
        names += [str(key)] if np.ndim(value) == 2 else [f"{key}[{i}]"
                                                         for i in range(arr.shape[2])]
        columns.append(arr)
    if model is not None:
        if "energy" in samples:
            raise ValueError('samples has a trace named "energy"; with a model the energy row '
                             "is computed, so rename the trace or leave model out")
        missing = [g for g in model.units if g not in samples]
        if missing:
            raise ValueError(f"samples lacks group(s) {missing} of the model, needed for the "
                             "energy")
        n, m = lead
        state = {g: np.asarray(samples[g], np.float64).reshape(n * m, -1) for g in model.units}
        columns.append(model.energy(state).reshape(n, m, 1))
        names.append("energy")
    x = np.concatenate(columns, axis=2)
    n, m, k = x.shape
    pooled = x.reshape(n * m, k)
    tau = _integrated_time(x, window)
    sd = pooled.std(axis=0, ddof=1)
    return Summary(tuple(names), pooled.mean(axis=0), sd, sd * np.sqrt(tau / (n * m)),
                   n * m / tau, _rhat(x))
