"""pe.plotting: figures under Agg, their argument checks, and the numeric helpers."""
import io
import pathlib
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import pgm_energy as pe  # noqa: E402
from pgm_energy.diagnostics import autocorrelation  # noqa: E402
from pgm_energy.plotting import (plot_autocorrelation, plot_filters, plot_history,  # noqa: E402
                                 plot_log_z, plot_samples, plot_swap_rates, tile_images)


def renders(fig):
    """The figure draws to PNG without error (Agg)."""
    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    return fig


def new_axes(n=1):
    fig = Figure()
    axes = fig.subplots(1, n, squeeze=False).ravel().tolist()
    return fig, axes


# -- import ----------------------------------------------------------------------------------
def test_import_pgm_energy_does_not_import_pyplot():
    code = ("import sys, pgm_energy as pe\n"
            "assert pe.plotting.plot_filters\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported eagerly'\n"
            "pe.plotting.plot_filters(pe.RBM(4, 2, rng=0), (2, 2)).savefig(\n"
            "    __import__('io').BytesIO(), format='png')\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    # Run next to the package the tests import (the installed one, or the in-place build),
    # not in the source tree, whose package has no compiled kernels.
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=pathlib.Path(pe.__file__).resolve().parents[1])


def test_plotting_is_public():
    assert "plotting" in pe.__all__
    for name in pe.plotting.__all__:
        assert callable(getattr(pe.plotting, name))


# -- tile_images -------------------------------------------------------------------------------
def test_tile_images_places_images_row_major_with_nan_gaps():
    images = np.arange(5 * 6, dtype=float).reshape(5, 6)      # five 2x3 images
    mosaic = tile_images(images, (2, 3), n_cols=2, padding=1, scale="none")
    assert mosaic.shape == (3 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_array_equal(mosaic[0:2, 0:3], images[0].reshape(2, 3))
    np.testing.assert_array_equal(mosaic[0:2, 4:7], images[1].reshape(2, 3))
    np.testing.assert_array_equal(mosaic[6:8, 0:3], images[4].reshape(2, 3))
    assert np.isnan(mosaic[2]).all() and np.isnan(mosaic[:, 3]).all()   # padding
    assert np.isnan(mosaic[6:8, 4:7]).all()                               # empty cell


def test_tile_images_scales_each_image_to_unit_range():
    images = np.array([[-2.0, 0.0, 2.0, 4.0], [3.0, 3.0, 3.0, 3.0]])
    mosaic = tile_images(images, (2, 2), n_cols=2, padding=0)
    np.testing.assert_allclose(mosaic[:, :2], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_allclose(mosaic[:, 2:], 0.5)                      # constant image


def test_tile_images_default_grid_is_about_square():
    assert tile_images(np.zeros((10, 4)), (2, 2), padding=0).shape == (3 * 2, 4 * 2)
    assert tile_images(np.zeros((3, 4)), (2, 2), n_cols=10, padding=0).shape == (2, 6)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(image_shape=(3, 3)), ValueError, "9"),
    (dict(image_shape=4), TypeError, "image_shape"),
    (dict(image_shape=(2, 0)), ValueError, "image_shape"),
    (dict(image_shape=(2, 2.0)), TypeError, "image_shape"),
    (dict(image_shape=(2, 2), scale="all"), ValueError, "scale"),
    (dict(image_shape=(2, 2), padding=-1), ValueError, "padding"),
    (dict(image_shape=(2, 2), padding=1.5), TypeError, "padding"),
    (dict(image_shape=(2, 2), n_cols=0), ValueError, "n_cols"),
])
def test_tile_images_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tile_images(np.zeros((3, 4)), **kwargs)


@pytest.mark.parametrize("images, error", [
    (np.zeros((0, 4)), ValueError), (np.zeros(4), ValueError),
    (np.full((1, 4), np.nan), ValueError), (np.array([["a"] * 4]), TypeError),
])
def test_tile_images_rejects_bad_images(images, error):
    with pytest.raises(error, match="images"):
        tile_images(images, (2, 2))


# -- plot_filters ----------------------------------------------------------------------------
def test_plot_filters_from_model_and_weights():
    model = pe.RBM(12, 5, rng=0)
    fig = renders(plot_filters(model, (3, 4)))
    (ax,) = fig.axes
    image = ax.get_images()[0].get_array()
    expected = tile_images(model.params["W"], (3, 4))
    np.testing.assert_array_equal(image.filled(np.nan), expected)
    renders(plot_filters(model.params["W"], (4, 3), n=2, n_cols=1, title=None))


def test_plot_filters_of_categorical_experts_one_row_per_expert():
    model = pe.EnergyModel({"x": pe.Binary(6), "h": pe.Categorical(4, 3)},
                           [pe.Pairwise("h", "x")], visible=["x"])
    model.params["W"] = np.random.default_rng(0).normal(size=(4, 3, 6))
    fig = renders(plot_filters(model, (2, 3), n=2))
    image = fig.axes[0].get_images()[0].get_array()
    expected = tile_images(model.params["W"][:2].reshape(6, 6), (2, 3), n_cols=3)
    np.testing.assert_array_equal(image.filled(np.nan), expected)


def test_plot_filters_draws_on_given_axes():
    fig, (ax,) = new_axes()
    assert plot_filters(pe.RBM(4, 3, rng=0), (2, 2), ax=ax) is fig
    assert len(ax.get_images()) == 1


def test_plot_filters_of_another_parameter():
    model = pe.BoltzmannMachine(4, 3, rng=0)
    renders(plot_filters(model, (2, 2), param="U"))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(image_shape=(3, 3)), ValueError, "image_shape"),
    (dict(image_shape=(2, 2), n=4), ValueError, "n = 4"),
    (dict(image_shape=(2, 2), n=0), ValueError, "n must"),
    (dict(image_shape=(2, 2), param="V"), KeyError, "V"),
    (dict(image_shape=(2, 2), ax="left"), TypeError, "ax"),
])
def test_plot_filters_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_filters(pe.RBM(4, 3, rng=0), **kwargs)


def test_plot_filters_rejects_non_matrix_weights():
    with pytest.raises(ValueError, match="weights"):
        plot_filters(np.zeros(4), (2, 2))


# -- plot_samples ----------------------------------------------------------------------------
def test_plot_samples_from_sampler_next_to_data():
    model = pe.RBM(9, 4, rng=0)
    samples = pe.GibbsSampler(model, n_chains=3, rng=0).sample(4, burn_in=5)
    data = np.eye(9)
    fig = renders(plot_samples(samples, (3, 3), data=data))
    assert [a.get_title() for a in fig.axes] == ["data", "model"]
    model_image = fig.axes[1].get_images()[0].get_array().filled(np.nan)
    rows = samples["x"].reshape(-1, 9)                  # 12 images, sample-major
    np.testing.assert_array_equal(model_image, tile_images(rows, (3, 3), scale="none"))


def test_plot_samples_alone_limits_and_axes():
    samples = np.random.default_rng(0).random((150, 4))
    fig = renders(plot_samples(samples, (2, 2), titles=("data", "chains")))
    assert [a.get_title() for a in fig.axes] == ["chains"]
    assert tile_images(samples[:100], (2, 2)).shape == fig.axes[0].get_images()[0] \
        .get_array().shape                                  # at most 100 by default
    fig, axes = new_axes(2)
    assert plot_samples(samples, (2, 2), data=samples, n=3, ax=axes) is fig


def test_plot_samples_constant_values():
    renders(plot_samples(np.ones((4, 4)), (2, 2)))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(samples=np.zeros((3, 5))), ValueError, "samples have 5"),
    (dict(samples=np.zeros((3, 4)), data=np.zeros((2, 6))), ValueError, "data have 6"),
    (dict(samples={"h": np.zeros((1, 2, 4))}), ValueError, "group 'x'"),
    (dict(samples=np.zeros((0, 4))), ValueError, "no images"),
    (dict(samples=np.zeros(4)), ValueError, "samples"),
    (dict(samples=np.zeros((3, 4)), data=np.zeros((3, 4)), ax=new_axes(1)[1][0]),
     TypeError, "2 matplotlib Axes"),
])
def test_plot_samples_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_samples(image_shape=(2, 2), **kwargs)


# -- plot_history ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def history():
    X = np.random.default_rng(0).integers(0, 2, size=(40, 6)).astype(float)
    model = pe.RBM(6, 3, rng=0)
    callbacks = [pe.learning.PseudoLogLikelihood(X), pe.learning.ReconstructionError(X),
                 pe.learning.ExactLogLikelihood(X)]
    return pe.fit(model, X, pe.PCD(20, 1), pe.SGD(0.1), epochs=4, batch_size=10, rng=0,
                  callbacks=callbacks)


def test_plot_history_one_panel_per_monitor(history):
    fig = renders(plot_history(history))
    assert [a.get_ylabel() for a in fig.axes] == [
        "pseudo log likelihood", "reconstruction error", "exact log likelihood"]
    x, y = fig.axes[2].get_lines()[0].get_data()
    np.testing.assert_array_equal(x, [1, 2, 3, 4])
    np.testing.assert_array_equal(y, history["exact_log_likelihood"])


def test_plot_history_on_one_axes_with_reference(history):
    fig, (ax,) = new_axes()
    keys = ["exact_log_likelihood", "pseudo_log_likelihood"]
    out = plot_history(history, keys, ax=ax, reference={"exact_log_likelihood": -3.0})
    assert out is fig
    assert len(ax.get_lines()) == 3                       # two curves and the reference
    assert ax.get_lines()[1].get_ydata()[0] == -3.0
    assert ax.get_legend() is not None
    renders(plot_history(history, "reconstruction_error"))


def test_plot_history_uses_companion_epochs_and_stderr():
    history = {"epoch": [1, 2, 3, 4], "pseudo_log_likelihood": [-4.0, -3.5, -3.2, -3.1],
               "ais_epoch": [2, 4], "ais_log_z": [5.0, 6.0], "ais_log_z_stderr": [0.1, 0.2]}
    fig = renders(plot_history(history, reference={"ais_log_z": 6.1}))
    assert len(fig.axes) == 2
    ais_axes = fig.axes[1]
    np.testing.assert_array_equal(ais_axes.get_lines()[0].get_xdata(), [2, 4])
    assert any(isinstance(c, PolyCollection) for c in ais_axes.collections)
    # without a matching epoch list the x values count from 1
    fig = plot_history({"loss": [3.0, 2.0, 1.5]})
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), [1, 2, 3])


@pytest.mark.parametrize("history, kwargs, error, match", [
    ([1, 2], {}, TypeError, "mapping"),
    ({"epoch": [1, 2]}, {}, ValueError, "no monitor"),
    ({"epoch": [1], "loss": [1.0]}, dict(keys=["gain"]), ValueError, "gain"),
    ({"epoch": [1], "loss": [1.0]}, dict(keys=[]), ValueError, "at least one"),
    ({"epoch": [1], "loss": [1.0]}, dict(reference={"gain": 1.0}), ValueError, "gain"),
    ({"epoch": [1], "loss": [[1.0]]}, {}, ValueError, "loss"),
    ({"epoch": [1], "loss": ["a"]}, {}, TypeError, "loss"),
])
def test_plot_history_rejects_bad_arguments(history, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_history(history, **kwargs)


# -- plot_log_z ------------------------------------------------------------------------------
def test_plot_log_z_with_ais_estimates():
    model = pe.RBM(8, 4, W=np.random.default_rng(0).normal(size=(4, 8)), rng=0)
    exact = pe.exact.log_partition(model)
    estimates = [pe.ais.log_partition(model, n_betas=n, n_runs=20, rng=0) for n in (10, 100)]
    fig = renders(plot_log_z(exact, estimates, x=[10, 100], xlabel="n_betas"))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "n_betas" and ax.get_ylabel() == "log Z"
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(exact)
    data = [c for c in ax.containers][0]                 # the ErrorbarContainer
    np.testing.assert_allclose(data.lines[0].get_ydata(), [e.log_z for e in estimates])


def test_plot_log_z_numbers_per_epoch_on_axes():
    fig, (ax,) = new_axes()
    out = plot_log_z([1.0, 2.0, 3.0], [1.1, 1.9, 3.2], stderr=0.1, x=[1, 2, 3], ax=ax,
                     label="AIS")
    assert out is fig
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1.0, 2.0, 3.0])
    renders(plot_log_z(1.0, 1.1))
    renders(plot_log_z(1.0, [1.1, 0.9], stderr=[np.inf, 0.1], x=[1, 1000]))


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((1.0, []), {}, ValueError, "at least one"),
    ((1.0, [1.0, 2.0]), dict(stderr=[0.1]), ValueError, "stderr has 1"),
    ((1.0, [1.0]), dict(stderr=-0.1), ValueError, "stderr"),
    ((1.0, [1.0]), dict(stderr=np.nan), ValueError, "stderr"),
    ((1.0, [1.0, 2.0]), dict(x=[1]), ValueError, "x has 1"),
    (([1.0, 2.0, 3.0], [1.0, 2.0]), {}, ValueError, "exact has 3"),
    ((1.0, ["a"]), {}, TypeError, "estimates"),
])
def test_plot_log_z_rejects_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_log_z(*args, **kwargs)


def test_plot_log_z_rejects_mixed_or_doubled_errors():
    estimate = pe.ais.log_partition(pe.RBM(4, 2, rng=0), n_betas=10, n_runs=5, rng=0)
    with pytest.raises(TypeError, match="mix"):
        plot_log_z(1.0, [estimate, 1.0])
    with pytest.raises(ValueError, match="twice"):
        plot_log_z(1.0, estimate, stderr=0.1)


# -- plot_autocorrelation and plot_swap_rates -------------------------------------------------
def test_plot_autocorrelation_of_sampler_output():
    sampler = pe.GibbsSampler(pe.RBM(8, 4, rng=0), n_chains=10, rng=0)
    trace = sampler.sample(60)["x"]
    fig = renders(plot_autocorrelation(trace, max_lag=15, label="block Gibbs"))
    (ax,) = fig.axes
    x, y = ax.get_lines()[0].get_data()
    np.testing.assert_array_equal(x, np.arange(16))
    np.testing.assert_allclose(y, autocorrelation(trace, 15))
    assert "block Gibbs (tau = " in ax.get_legend().get_texts()[0].get_text()
    fig, (ax,) = new_axes()
    assert plot_autocorrelation(np.arange(5.0) % 2, ax=ax) is fig
    assert len(ax.get_lines()[0].get_xdata()) == 5


def test_plot_swap_rates_from_tempering_and_arrays():
    pt = pe.ParallelTempering(pe.RBM(6, 3, rng=0), [1.0, 0.5, 0.25], n_chains=10, rng=0)
    fig = renders(plot_swap_rates(pt.run(10)))
    (ax,) = fig.axes
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, pt.swap_rates)
    arrow = "\N{LEFT RIGHT ARROW}"
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"1{arrow}0.5", f"0.5{arrow}0.25"]
    fig, (ax,) = new_axes()
    assert plot_swap_rates(np.linspace(0, 1, 8), ax=ax) is fig
    assert len(ax.patches) == 8


@pytest.mark.parametrize("rates, betas, error, match", [
    ([0.5, 1.5], None, ValueError, r"\[0, 1\]"),
    ([0.5], [1.0, 0.5, 0.2], ValueError, "need 2 betas"),
    ([], None, ValueError, "at least one"),
    ([[0.5]], None, ValueError, "rates"),
])
def test_plot_swap_rates_rejects_bad_arguments(rates, betas, error, match):
    with pytest.raises(error, match=match):
        plot_swap_rates(rates, betas)


def test_plot_swap_rates_takes_betas_from_tempering_only():
    pt = pe.ParallelTempering(pe.RBM(4, 2, rng=0), [1.0, 0.5], n_chains=2, rng=0)
    with pytest.raises(ValueError, match="betas"):
        plot_swap_rates(pt, [1.0, 0.5])


def test_plot_swap_rates_takes_the_swap_statistics_value():
    pt = pe.ParallelTempering(pe.RBM(8, 4, rng=0), [1.0, 0.7, 0.4], n_chains=10, rng=0).run(20)
    fig = pe.plotting.plot_swap_rates(pt.swap_statistics)
    assert len(fig.axes) == 1
