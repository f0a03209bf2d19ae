"""Matplotlib figures for models, samples and training runs.

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure`. Those that draw on one
axes take ``ax=``: given, they draw there and return ``ax.figure``; omitted, they make a new
figure with :class:`matplotlib.figure.Figure` directly, without ``pyplot``, so they work under
any backend (``Agg`` included) and never open a window. Save one with ``fig.savefig(path)``.
``matplotlib`` is imported on the first call, not with ``pgm_energy``.

The helper :func:`tile_images` returns a plain array; the numbers behind
:func:`plot_autocorrelation` come from :mod:`pgm_energy.diagnostics`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import diagnostics
from ._checks import nonnegative_int, positive_int, real_array
from .model import EnergyModel
from .tempering import ParallelTempering, SwapStatistics

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["tile_images", "plot_filters", "plot_samples", "plot_history", "plot_log_z",
           "plot_autocorrelation", "plot_swap_rates"]


# -- helpers --------------------------------------------------------------------------------
def _image_shape(image_shape) -> tuple[int, int]:
    """Validate ``(height, width)``."""
    if (not isinstance(image_shape, Sequence) or isinstance(image_shape, str)
            or len(image_shape) != 2):
        raise TypeError(f"image_shape must be a pair (height, width), got {image_shape!r}")
    return (positive_int(image_shape[0], "image_shape[0]"),
            positive_int(image_shape[1], "image_shape[1]"))


def _rows(value, name: str, group: str) -> np.ndarray:
    """Images as rows ``(n_images, n_pixels)``.

    Accepts a 2-D array, a 3-D array ``(n_samples, n_chains, n)`` as returned by
    :meth:`GibbsSampler.sample` (flattened sample-major) or such a dict, from which
    ``group`` is taken.
    """
    if isinstance(value, Mapping):
        if group not in value:
            raise ValueError(f"{name} has no group {group!r}; it has {sorted(value)}")
        value = value[group]
    arr = real_array(value, name, (2, 3))
    return arr.reshape(-1, arr.shape[-1])


def _new_axes(ax, figsize, nrows: int = 1, ncols: int = 1, **kwargs):
    """``(figure, axes)``: ``ax`` and its figure, or a new pyplot-free figure."""
    if ax is not None:
        from matplotlib.axes import Axes

        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != nrows * ncols or not all(isinstance(a, Axes) for a in axes):
            wanted = ("a matplotlib Axes" if nrows * ncols == 1
                      else f"a sequence of {nrows * ncols} matplotlib Axes")
            raise TypeError(f"ax must be {wanted}, got {ax!r}")
        return axes[0].figure, axes
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs).ravel().tolist()
    return fig, axes


def tile_images(images, image_shape, *, n_cols: int | None = None, padding: int = 1,
                scale: str = "each") -> np.ndarray:
    """Arrange flat images in a grid, one mosaic array (NaN in the gaps).

    Parameters
    ----------
    images : array_like, shape (n_images, height * width)
        One image per row, pixels in row-major (C) order.
    image_shape : (int, int)
        ``(height, width)`` of one image.
    n_cols : int, optional
        Images per row of the grid (default ``ceil(sqrt(n_images))``).
    padding : int
        Pixels of gap (NaN, drawn as background) between images.
    scale : {"each", "none"}
        ``"each"`` maps every image linearly onto [0, 1], ``(x - min) / (max - min)``
        (a constant image becomes 0.5), so filters of different magnitude stay visible;
        ``"none"`` keeps the values.

    Returns
    -------
    numpy.ndarray
        The mosaic, of shape ``(rows (height + padding) - padding,
        n_cols (width + padding) - padding)`` with ``rows = ceil(n_images / n_cols)``; gaps
        and cells without an image are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.plotting import tile_images
    >>> tile_images(np.eye(4), (2, 2), n_cols=4, scale="none").shape
    (2, 11)
    """
    height, width = _image_shape(image_shape)
    images = real_array(images, "images", (2,))
    if images.shape[0] == 0:
        raise ValueError("images must hold at least one image, got 0 rows")
    if images.shape[1] != height * width:
        raise ValueError(f"images have {images.shape[1]} pixels, but image_shape "
                         f"{(height, width)} needs {height * width}")
    if scale not in ("each", "none"):
        raise ValueError(f"scale must be 'each' or 'none', got {scale!r}")
    padding = nonnegative_int(padding, "padding")
    n = images.shape[0]
    n_cols = math.ceil(math.sqrt(n)) if n_cols is None else positive_int(n_cols, "n_cols")
    n_cols = min(n_cols, n)
    n_rows = math.ceil(n / n_cols)
    if scale == "each":
        low = images.min(axis=1, keepdims=True)
        span = images.max(axis=1, keepdims=True) - low
        images = np.where(span > 0, (images - low) / np.where(span > 0, span, 1.0), 0.5)
    mosaic = np.full((n_rows * (height + padding) - padding,
                      n_cols * (width + padding) - padding), np.nan)
    for k, image in enumerate(images):
        r, c = divmod(k, n_cols)
        top, left = r * (height + padding), c * (width + padding)
        mosaic[top:top + height, left:left + width] = image.reshape(height, width)
    return mosaic


#: Colour of the gaps between tiles: no grey level, so tiles stay apart in grey colormaps.
GAP_COLOR = "#6a8caf"


def _show_mosaic(ax, mosaic, cmap, vmin, vmax, title):
    import matplotlib

    colormap = matplotlib.colormaps[cmap].with_extremes(bad=GAP_COLOR)
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=colormap, vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


# -- figures --------------------------------------------------------------------------------
def plot_filters(model, image_shape, *, n: int | None = None, param: str = "W",
                 n_cols: int | None = None, cmap: str = "gray", ax: Axes | None = None,
                 title: str | None = "filters") -> Figure:
    """Receptive fields of the hidden units as image tiles.

    Row ``j`` of the weights ``W`` (shape ``(n_hidden, n_visible)``, ``E = -h^T W x``) holds
    what hidden unit ``j`` responds to: its input is ``c_j + sum_i W_ji x_i``. Each row is
    reshaped to ``image_shape`` and scaled onto [0, 1] on its own (see :func:`tile_images`).
    For categorical hidden units (``W`` of shape ``(n_hidden, k, n_visible)``) each state
    ``v`` of expert ``j`` gets a tile ``W[j, v]``, one row of ``k`` tiles per expert.

    Parameters
    ----------
    model : EnergyModel or array_like
        A model with a ``(n_hidden, n_visible)`` parameter ``param`` (an RBM's ``W``), or the
        weight matrix itself.
    image_shape : (int, int)
        ``(height, width)`` with ``height * width = n_visible``.
    n : int, optional
        Show the first ``n`` hidden units (default all).
    param : str
        Name of the weight parameter when ``model`` is a model.
    n_cols : int, optional
        Tiles per row (default about square).
    cmap : str
        Matplotlib colormap.
    ax : matplotlib.axes.Axes, optional
        Draw here instead of a new figure.
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pgm_energy as pe
    >>> fig = pe.plotting.plot_filters(pe.RBM(16, 8, rng=0), (4, 4))
    >>> fig.savefig(__import__("io").BytesIO(), format="png")
    """
    if isinstance(model, EnergyModel):
        weights = model.params[param]
        what = f"params[{param!r}]"
    else:
        weights, what = model, "weights"
    weights = real_array(weights, what, (2, 3))
    if n is not None:
        n = positive_int(n, "n")
        if n > weights.shape[0]:
            raise ValueError(f"n = {n} exceeds the {weights.shape[0]} hidden units")
        weights = weights[:n]
    if weights.ndim == 3:                 # categorical experts: one row of k states each
        n_cols = weights.shape[1] if n_cols is None else n_cols
        weights = weights.reshape(-1, weights.shape[2])
    height, width = _image_shape(image_shape)
    if weights.shape[1] != height * width:
        raise ValueError(f"{what} has {weights.shape[1]} visible units per filter, but "
                         f"image_shape {(height, width)} needs {height * width}")
    mosaic = tile_images(weights, (height, width), n_cols=n_cols, scale="each")
    fig, (axes,) = _new_axes(ax, _mosaic_figsize(mosaic))
    _show_mosaic(axes, mosaic, cmap, 0.0, 1.0, title)
    return fig


def _mosaic_figsize(mosaic, panels: int = 1):
    h, w = mosaic.shape
    scale = 6.0 / max(h, w * panels)
    return (max(2.5, w * panels * scale + 0.5), max(2.0, h * scale + 0.6))


def plot_samples(samples, image_shape, *, data=None, n: int | None = None,
                 group: str = "x", n_cols: int | None = None, cmap: str = "gray",
                 ax=None, titles: tuple[str, str] = ("data", "model")) -> Figure:
    """Grid of samples as images, optionally next to data.

    Values are drawn on a common linear scale from the smallest to the largest value shown
    (black to white in ``gray``), so binary samples and probabilities compare directly.

    Parameters
    ----------
    samples : array_like or dict
        ``(n_images, height * width)``, or ``(n_samples, n_chains, n)`` / the dict returned by
        :meth:`GibbsSampler.sample` (``group`` is taken; sample-major order).
    image_shape : (int, int)
        ``(height, width)`` of one image.
    data : array_like or dict, optional
        Training data shown in a panel on the left, in the same layout.
    n : int, optional
        Show the first ``n`` images of each (default all, at most 100).
    group : str
        Group to take from dicts.
    n_cols : int, optional
        Images per row.
    cmap : str
    ax : matplotlib.axes.Axes, or a pair of them when ``data`` is given, optional
    titles : (str, str)
        Titles of the data and model panels (the model's alone when ``data`` is None).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pgm_energy as pe
    >>> sampler = pe.GibbsSampler(pe.RBM(16, 8, rng=0), n_chains=4, rng=0)
    >>> fig = pe.plotting.plot_samples(sampler.sample(4, burn_in=10), (4, 4))
    """
    panels = [_rows(samples, "samples", group)]
    if data is not None:
        panels.insert(0, _rows(data, "data", group))
    if n is not None:
        n = positive_int(n, "n")
    height, width = _image_shape(image_shape)
    for name, rows in zip(["data", "samples"][-len(panels):], panels):
        if rows.shape[1] != height * width:
            raise ValueError(f"{name} have {rows.shape[1]} units per image, but image_shape "
                             f"{(height, width)} needs {height * width}")
        if rows.shape[0] == 0:
            raise ValueError(f"{name} hold no images")
    limit = 100 if n is None else n
    panels = [rows[:limit] for rows in panels]
    vmin = min(rows.min() for rows in panels)
    vmax = max(rows.max() for rows in panels)
    if vmax == vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    mosaics = [tile_images(rows, (height, width), n_cols=n_cols, scale="none")
               for rows in panels]
    fig, axes = _new_axes(ax, _mosaic_figsize(mosaics[0], len(mosaics)), 1, len(mosaics))
    names = list(titles)[-len(mosaics):] if len(mosaics) == 1 else list(titles)
    for axes_k, mosaic, title in zip(axes, mosaics, names):
        _show_mosaic(axes_k, mosaic, cmap, vmin, vmax, title)
    return fig


def _x_values(history, key, length):
    """Epochs of ``history[key]``: ``<prefix>_epoch`` for the longest matching prefix (e.g.
    ``ais_epoch`` for ``ais_log_z``), else ``epoch``, else 1..length."""
    parts = key.split("_")
    for k in range(len(parts) - 1, 0, -1):
        candidate = "_".join(parts[:k]) + "_epoch"
        if candidate in history and len(history[candidate]) == length:
            return np.asarray(history[candidate], float)
    if "epoch" in history and len(history["epoch"]) == length:
        return np.asarray(history["epoch"], float)
    return np.arange(1.0, length + 1)


def plot_history(history: Mapping, keys: Sequence[str] | None = None, *,
                 ax: Axes | None = None, reference: Mapping[str, float] | None = None) -> Figure:
    """Training curves: monitor values per epoch from a :class:`pe.History`.

    Parameters
    ----------
    history : mapping of str to sequence of float
        E.g. the dict returned by ``pe.fit`` with monitors such as
        ``PseudoLogLikelihood``, ``ReconstructionError``, ``ExactLogLikelihood`` or
        ``pe.ais.AISMonitor``. The x values of ``key`` are ``history["<prefix>_epoch"]``
        when present with the same length (``ais_epoch`` for ``ais_log_z``), else
        ``history["epoch"]``, else 1, 2, ...
    keys : sequence of str, optional
        Monitors to draw (default every key except epochs and ``*_stderr``).
    ax : matplotlib.axes.Axes, optional
        Draw every curve on this axes (with a legend). Without it, each curve gets its own
        panel, sharing the epoch axis, since monitors have different scales.
    reference : mapping of str to float, optional
        Known values drawn as dashed horizontal lines on the panel of their key, e.g.
        ``{"exact_log_likelihood": -np.log(30)}``, the optimum on bars and stripes 4x4.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    A key ``k`` with a companion ``k + "_stderr"`` of the same length is drawn with a band
    of plus or minus one standard error.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> fig = pe.plotting.plot_history({"epoch": [1, 2, 3],
    ...                                 "pseudo_log_likelihood": [-9.0, -8.0, -7.5]})
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a mapping of monitor name to values, got "
                        f"{type(history).__name__}")
    if keys is None:
        keys = [k for k in history if k != "epoch" and not k.endswith(("_epoch", "_stderr"))]
        if not keys:
            raise ValueError(f"history has no monitor values to plot (keys {list(history)}); "
                             "pass callbacks= to pe.fit")
    else:
        if isinstance(keys, str):
            keys = [keys]
        keys = list(keys)
        if not keys:
            raise ValueError("keys must name at least one monitor")
        missing = [k for k in keys if k not in history]
        if missing:
            raise ValueError(f"history has no {missing}; it has {list(history)}")
    reference = {} if reference is None else dict(reference)
    unknown = set(reference) - set(keys)
    if unknown:
        raise ValueError(f"reference names {sorted(unknown)}, which are not plotted {keys}")
    series = {k: real_array(history[k], f"history[{k!r}]", (1,)) for k in keys}
    if ax is None:
        fig, axes = _new_axes(None, (6.0, 1.2 + 2.0 * len(keys)), len(keys), 1, sharex=True)
    else:
        fig, (one,) = _new_axes(ax, None)
        axes = [one] * len(keys)
    for axes_k, key in zip(axes, keys):
        y = series[key]
        x = _x_values(history, key, len(y))
        (line,) = axes_k.plot(x, y, marker="o" if len(y) < 30 else None, markersize=3,
                              label=key.replace("_", " "))
        stderr = history.get(key + "_stderr")
        if stderr is not None and len(stderr) == len(y):
            err = real_array(stderr, f"history[{key + '_stderr'!r}]", (1,))
            axes_k.fill_between(x, y - err, y + err, color=line.get_color(), alpha=0.25,
                                linewidth=0)
        if key in reference:
            value = float(reference[key])
            axes_k.axhline(value, color=line.get_color(), linestyle="--", linewidth=1,
                           label=f"{key.replace('_', ' ')}: reference {value:.4g}")
        if ax is None:
            axes_k.set_ylabel(key.replace("_", " "))
            if key in reference:
                axes_k.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("epoch")
    if ax is not None:
        ax.legend(loc="best", fontsize="small")
    return fig


def plot_log_z(exact, estimates, stderr=None, *, x=None, xlabel: str | None = None,
               label: str = "estimate", ax: Axes | None = None) -> Figure:
    """Exact against estimated ``log Z``, with error bars.

    Parameters
    ----------
    exact : float or sequence of float
        ``pe.exact.log_partition`` of the model (a horizontal line), or one value per
        estimate (e.g. per epoch of training).
    estimates : float, AISEstimate, or a sequence of either
        Estimates of ``log Z``; ``AISEstimate`` objects (``pe.ais.log_partition``) bring
        their own ``stderr``.
    stderr : float or sequence of float, optional
        Standard errors of plain-number estimates (error bars of plus or minus one; ``inf``,
        an unknown error, draws no bar).
    x : sequence of float, optional
        Where to place the estimates (e.g. epochs or numbers of betas; default 1, 2, ...).
    xlabel : str, optional
    label : str
        Legend label of the estimates.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pgm_energy as pe
    >>> fig = pe.plotting.plot_log_z(10.2, [10.0, 10.1, 10.25], stderr=[0.3, 0.2, 0.1],
    ...                              x=[10, 100, 1000], xlabel="n_betas")
    """
    items = list(estimates) if isinstance(estimates, (Sequence, np.ndarray)) else [estimates]
    if not items:
        raise ValueError("estimates must hold at least one value")
    has_stderr = [hasattr(e, "log_z") and hasattr(e, "stderr") for e in items]
    if any(has_stderr):
        if not all(has_stderr):
            raise TypeError("estimates must be all numbers or all AIS estimates, not a mix")
        if stderr is not None:
            raise ValueError("stderr was given twice: the AIS estimates carry their own")
        values = np.array([e.log_z for e in items], float)
        errors = np.array([e.stderr for e in items], float)
    else:
        values = real_array(items, "estimates", (1,))
        errors = None
        if stderr is not None:
            errors = real_array(stderr, "stderr", (0, 1), finite=False)
            if errors.ndim == 1 and len(errors) != len(values):
                raise ValueError(f"stderr has {len(errors)} values for {len(values)} estimates")
            if not np.all(errors >= 0):
                raise ValueError(f"stderr must be >= 0 (inf for unknown), got {errors.tolist()}")
            errors = np.broadcast_to(errors, values.shape)
    if errors is not None:
        # An unknown error (inf, e.g. AIS from a single run): the estimate without a bar.
        errors = np.where(np.isfinite(errors), errors, 0.0)
    if x is None:
        positions = np.arange(1.0, len(values) + 1)
    else:
        positions = real_array(x, "x", (1,))
        if len(positions) != len(values):
            raise ValueError(f"x has {len(positions)} values for {len(values)} estimates")
    truth = real_array(exact, "exact", (0, 1))
    if truth.ndim == 1 and len(truth) != len(values):
        raise ValueError(f"exact has {len(truth)} values for {len(values)} estimates")
    fig, (axes,) = _new_axes(ax, (6.0, 4.0))
    if truth.ndim == 0:
        axes.axhline(float(truth), color="black", linestyle="--", linewidth=1,
                     label=f"exact {float(truth):.4f}")
    else:
        axes.plot(positions, truth, color="black", linestyle="--", marker="_", label="exact")
    axes.errorbar(positions, values, yerr=errors, fmt="o", capsize=3, label=label)
    axes.set_ylabel("log Z")
    if xlabel:
        axes.set_xlabel(xlabel)
    if x is not None and len(positions) > 2 and positions.min() > 0 \
            and positions.max() / positions.min() >= 100:
        axes.set_xscale("log")
    axes.legend(loc="best", fontsize="small")
    return fig


def plot_autocorrelation(trace, max_lag: int | None = None, *, ax: Axes | None = None,
                         label: str | None = None) -> Figure:
    """Autocorrelation of chain output against lag, with its integrated time in the legend.

    Parameters
    ----------
    trace : array_like
        ``(n_steps,)``, ``(n_steps, n_chains)`` or ``(n_steps, n_chains, n_units)``, at least
        4 steps; see :func:`~pgm_energy.diagnostics.autocorrelation`.
    max_lag : int, optional
        Largest lag shown (default ``min(n_steps - 1, 100)``).
    ax : matplotlib.axes.Axes, optional
        Draw here (e.g. to compare samplers on one axes).
    label : str, optional
        Legend label; ``tau = ...`` (:func:`~pgm_energy.diagnostics.integrated_time` of the
        trace, the largest over units for a 3-D trace) is appended.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> import pgm_energy as pe
    >>> sampler = pe.GibbsSampler(pe.RBM(8, 4, rng=0), n_chains=20, rng=0)
    >>> trace = sampler.sample(200)["x"]          # (200 sweeps, 20 chains, 8 units)
    >>> fig = pe.plotting.plot_autocorrelation(trace, max_lag=20)
    """
    steps = np.shape(trace)[0] if np.ndim(trace) else 0
    if max_lag is None:
        max_lag = max(1, min(steps - 1, 100))
    rho = diagnostics.autocorrelation(trace, max_lag)
    chains = np.reshape(trace, (steps, 1)) if np.ndim(trace) == 1 else trace
    tau = np.max(diagnostics.integrated_time(chains))
    fig, (axes,) = _new_axes(ax, (6.0, 4.0))
    text = f"tau = {tau:.3g}" if label is None else f"{label} (tau = {tau:.3g})"
    axes.plot(np.arange(len(rho)), rho, marker="o" if len(rho) <= 40 else None, markersize=3,
              label=text)
    axes.axhline(0.0, color="gray", linewidth=0.8)
    axes.set_xlabel("lag (sweeps)")
    axes.set_ylabel("autocorrelation")
    axes.legend(loc="best", fontsize="small")
    return fig


def plot_swap_rates(rates, betas=None, *, ax: Axes | None = None) -> Figure:
    """Acceptance rates of swaps between neighbouring temperatures of parallel tempering.

    Pair ``k`` swaps the states at ``beta_k`` and ``beta_{k+1}`` with probability
    ``min(1, exp((beta_k - beta_{k+1}) (E_k - E_{k+1})))``; a rate near 0 cuts the
    ladder in two (add a temperature there), rates near 1 waste temperatures.

    Parameters
    ----------
    rates : ParallelTempering, SwapStatistics or array_like, shape (n_betas - 1,)
        A tempering sampler or its ``swap_statistics`` (their rates and betas are used), or
        the rates.
    betas : array_like, shape (n_betas,), optional
        The inverse temperatures, in the order of the pairs (labels the bars); not with a
        ``ParallelTempering``, which has its own.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pgm_energy as pe
    >>> pt = pe.ParallelTempering(pe.RBM(8, 4, rng=0), [1.0, 0.7, 0.4], n_chains=10, rng=0)
    >>> fig = pe.plotting.plot_swap_rates(pt.run(20))
    """
    if isinstance(rates, ParallelTempering):
        rates = rates.swap_statistics
    if isinstance(rates, SwapStatistics):
        if betas is not None:
            raise ValueError("betas are taken from the tempering statistics; do not pass them")
        rates, betas = rates.rates, rates.betas
    rates = real_array(rates, "rates", (1,))
    if len(rates) == 0:
        raise ValueError("rates must hold at least one pair")
    if np.any((rates < 0) | (rates > 1)):
        raise ValueError(f"rates must lie in [0, 1], got {rates.tolist()}")
    if betas is None:
        labels = [f"{k}\N{LEFT RIGHT ARROW}{k + 1}" for k in range(len(rates))]
    else:
        betas = real_array(betas, "betas", (1,))
        if len(betas) != len(rates) + 1:
            raise ValueError(f"{len(rates)} rates need {len(rates) + 1} betas, got {len(betas)}")
        labels = [f"{betas[k]:.3g}\N{LEFT RIGHT ARROW}{betas[k + 1]:.3g}"
                  for k in range(len(rates))]
    fig, (axes,) = _new_axes(ax, (max(4.0, 0.6 * len(rates) + 2.0), 3.5))
    axes.bar(np.arange(len(rates)), rates, color="tab:blue")
    axes.set_xticks(np.arange(len(rates)), labels, rotation=45 if len(rates) > 6 else 0,
                    ha="right" if len(rates) > 6 else "center")
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("beta pair" if betas is not None else "pair of temperatures")
    axes.set_ylabel("swap acceptance rate")
    return fig
