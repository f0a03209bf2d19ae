"""Diagnostics of chain output: autocorrelation against direct sums and AR(1) chains;
integrated time, ess, mcse and R-hat against AR(1) chains with known tau, against direct
(non-FFT) formulas, and on chains that have not mixed; summary; bad input."""
import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy.diagnostics import autocorrelation, ess, integrated_time, mcse, rhat, summary

SEEDS = [0, 1, 2]           # the statistical tests were checked for seeds 0..99


def autocorrelation_reference(trace, max_lag):
    """Direct sums: rho(t) = sum_series sum_s d_s d_{s+t} / sum_series sum_s d_s^2."""
    x = np.asarray(trace, float)
    x = x.reshape(x.shape[0], -1)
    d = x - x.mean(axis=0)
    gamma = np.array([np.sum(d[:len(d) - t] * d[t:]) for t in range(max_lag + 1)])
    return gamma / gamma[0]


def ar1(phi, n_steps, n_chains, seed):
    """Stationary AR(1) chains x_t = phi x_{t-1} + noise: rho(t) = phi^t."""
    gen = np.random.default_rng(seed)
    x = np.empty((n_steps, n_chains))
    x[0] = gen.normal(size=n_chains) / np.sqrt(1 - phi ** 2)
    noise = gen.normal(size=(n_steps, n_chains))
    for t in range(1, n_steps):
        x[t] = phi * x[t - 1] + noise[t]
    return x


# -- autocorrelation ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(50,), (40, 3), (30, 4, 5)])
def test_autocorrelation_equals_direct_sums(shape):
    trace = np.random.default_rng(1).normal(size=shape).cumsum(axis=0)
    rho = autocorrelation(trace, max_lag=shape[0] - 1)
    np.testing.assert_allclose(rho, autocorrelation_reference(trace, shape[0] - 1),
                               rtol=1e-10, atol=1e-12)
    assert rho[0] == pytest.approx(1.0, rel=1e-12)


def test_autocorrelation_known_values_and_default_lag():
    np.testing.assert_allclose(autocorrelation([1.0, -1.0, 1.0, -1.0]),
                               [1.0, -0.75, 0.5, -0.25], rtol=1e-12)
    assert autocorrelation(np.arange(7.0)).shape == (7,)


def test_autocorrelation_ignores_constant_series():
    gen = np.random.default_rng(2)
    varying = gen.normal(size=(30, 2))
    with_constant = np.concatenate([varying, np.ones((30, 1))], axis=1)
    np.testing.assert_allclose(autocorrelation(with_constant, 10), autocorrelation(varying, 10))


@pytest.mark.parametrize("seed", SEEDS)
def test_autocorrelation_of_ar1_chains_is_geometric(seed):
    # 20 chains x 5000 steps: the standard error of rho(t) is below 0.01, so 0.05 holds
    # for any seed.
    phi = 0.7
    rho = autocorrelation(ar1(phi, 5000, 20, seed), max_lag=8)
    np.testing.assert_allclose(rho, phi ** np.arange(9), atol=0.05)


def tau_spread(tau, n_samples, n_chains, window=5.0):
    """Sokal's standard deviation of the windowed estimate: var(tau) = 2 (2M + 1) tau^2 / N
    with M = window * tau and N = n_samples * n_chains samples."""
    return tau * np.sqrt(2 * (2 * window * tau + 1) / (n_samples * n_chains))


def integrated_time_reference(x, window=5.0):
    """Direct O(n^2) sums for one quantity x (n, m): the combined rho_t of Vehtari et al.
    and the first M >= window * tau(M)."""
    n, m = x.shape
    d = x - x.mean(axis=0)
    gamma = np.array([[np.sum(d[:n - t, c] * d[t:, c]) / n for c in range(m)]
                      for t in range(n)])
    within = np.mean([np.sum(d[:, c] ** 2) / (n - 1) for c in range(m)])
    var_plus = (n - 1) / n * within + np.var(x.mean(axis=0), ddof=1)
    tau = 1.0
    for t in range(1, n):
        tau += 2 * (1 - (within - gamma[t].mean()) / var_plus)
        if t >= window * tau:
            break
    return tau


def rhat_reference(x):
    """Vehtari et al. 2021 written out for one quantity x (n, m), with scipy's ranks."""
    from scipy.stats import norm, rankdata

    def split_rhat(y):
        half = len(y) // 2
        chains = [y[:half, c] for c in range(y.shape[1])] + \
            [y[len(y) - half:, c] for c in range(y.shape[1])]
        z = norm.ppf((rankdata(np.concatenate(chains)) - 0.375) / (2 * half * y.shape[1] + 0.25))
        z = z.reshape(len(chains), half)
        within = np.mean([np.var(c, ddof=1) for c in z])
        between = half * np.var([c.mean() for c in z], ddof=1)
        return np.sqrt(((half - 1) / half * within + between / half) / within)

    return max(split_rhat(x), split_rhat(np.abs(x - np.median(x))))


# -- integrated_time, ess, mcse ----------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_integrated_time_and_ess_of_ar1_chains(phi, seed):
    # 20 chains x 5000 steps; the tolerance is 4 of Sokal's standard deviations (checked for
    # seeds 0..99). The window's truncation bias 2 phi^(M+1) / (1 - phi) is below 1e-3.
    tau_true = (1 + phi) / (1 - phi)
    x = ar1(phi, 5000, 20, seed)
    tau = integrated_time(x)
    assert abs(tau - tau_true) < 4 * tau_spread(tau_true, 5000, 20)
    assert ess(x) == pytest.approx(5000 * 20 / tau, rel=1e-12)
    # The mean of 100000 AR(1) draws of variance 1 / (1 - phi^2) has standard error
    # sqrt(tau / N / (1 - phi^2)): mcse estimates it.
    want = np.sqrt(tau_true / 1e5 / (1 - phi ** 2))
    assert mcse(x) == pytest.approx(want, rel=4 * tau_spread(tau_true, 5000, 20) / tau_true
                                    + 0.02)


@pytest.mark.parametrize("seed", SEEDS)
def test_integrated_time_of_iid_draws_is_one(seed):
    iid = np.random.default_rng(seed).normal(size=(2000, 10))
    assert abs(integrated_time(iid) - 1) < 4 * tau_spread(1.0, 2000, 10)


def test_integrated_time_matches_direct_sums():
    gen = np.random.default_rng(5)
    x = gen.normal(size=(40, 3, 2)).cumsum(axis=0) * 0.3 + gen.normal(size=(1, 3, 2))
    tau = integrated_time(x, window=2.0)
    want = [integrated_time_reference(x[:, :, k], window=2.0) for k in range(2)]
    np.testing.assert_allclose(tau, want, rtol=1e-10)
    assert tau.shape == (2,)


def test_rhat_matches_direct_formula():
    gen = np.random.default_rng(6)
    x = gen.normal(size=(21, 3, 2)) * [1.0, 2.0] + gen.normal(size=(1, 3, 2))
    np.testing.assert_allclose(rhat(x), [rhat_reference(x[:, :, k]) for k in range(2)],
                               rtol=1e-10)


def test_chains_stuck_apart_have_a_large_time_and_a_small_ess():
    x = ar1(0.5, 2000, 8, 3)
    stuck = x + 5 * np.arange(8)                   # same chains, centred far apart
    assert integrated_time(x) < 4 < 1000 < integrated_time(stuck)
    assert ess(stuck) < 16
    # Each chain constant but at its own value: rho_t = 1, tau = 2 n - 1, ess about m / 2.
    constant_apart = np.tile(np.arange(4.0), (50, 1))
    assert integrated_time(constant_apart) == pytest.approx(99.0)
    assert rhat(constant_apart) == np.inf


def test_constant_quantity_is_defined():
    x = np.full((20, 3, 2), 0.1)
    np.testing.assert_array_equal(integrated_time(x), [1.0, 1.0])
    np.testing.assert_array_equal(ess(x), [60.0, 60.0])
    np.testing.assert_allclose(mcse(x), [0.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(rhat(x), [1.0, 1.0])


def test_shapes_zero_d_and_trailing():
    x = np.random.default_rng(0).normal(size=(50, 4, 2, 3))
    for f in (integrated_time, ess, mcse, rhat):
        assert f(x).shape == (2, 3)
        scalar = f(x[:, :, 0, 0])
        assert np.ndim(scalar) == 0 and isinstance(scalar, float)
        assert scalar == pytest.approx(f(x)[0, 0], rel=1e-12)
    assert integrated_time(x[:, :1, 0, 0]) > 0                      # one chain is fine


def test_integrated_time_of_gibbs_chains_grows_with_coupling():
    # Two modes (all off; x and h on) separated by a barrier: Gibbs chains stick in them.
    sticky = pe.RBM(6, 3, W=np.full((3, 6), 2.0), b=np.full(6, -3.0), c=np.full(3, -6.0))
    free = pe.RBM(6, 3, W=np.zeros((3, 6)))
    taus = [integrated_time(
        pe.GibbsSampler(model, n_chains=10, rng=0).sample(300, burn_in=20)["x"])
        for model in (sticky, free)]
    assert taus[0].min() > 10 and np.all(np.abs(taus[1] - 1) < 0.3)


# -- rhat ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_rhat_of_mixed_shifted_and_rescaled_chains(seed):
    x = ar1(0.5, 2000, 4, seed)
    assert rhat(x) < 1.01
    assert rhat(x + [0.0, 0.0, 0.0, 2.0]) > 1.1                    # one chain elsewhere
    assert rhat(x * [1.0, 1.0, 1.0, 4.0]) > 1.1                    # same centre, wider: folded
    assert rhat(ar1(0.5, 2000, 1, seed) + np.linspace(0, 3, 2000)[:, None]) > 1.1   # drift


# -- summary -------------------------------------------------------------------------------------
def test_summary_of_sampler_output_and_traces():
    model = pe.RBM(3, 2, rng=0)
    samples = pe.GibbsSampler(model, n_chains=8, rng=0).sample(100, burn_in=10)
    energy = model.energy({g: v.reshape(800, -1) for g, v in samples.items()}).reshape(100, 8)
    table = summary({**samples, "trace": energy}, model)
    assert table.names == ("x[0]", "x[1]", "x[2]", "h[0]", "h[1]", "trace", "energy")
    assert len(table) == 7
    np.testing.assert_allclose(table.mean[:3], samples["x"].mean(axis=(0, 1)))
    np.testing.assert_allclose(table.sd[3:5], samples["h"].reshape(800, 2).std(axis=0, ddof=1))
    for got, f in ((table.ess, ess), (table.mcse, mcse), (table.rhat, rhat)):
        np.testing.assert_allclose(got[:3], f(samples["x"]))
        np.testing.assert_allclose(got[5:], f(energy))
    assert table.as_dict()["energy"]["mean"] == pytest.approx(energy.mean())
    text = repr(table)
    assert text.splitlines()[0].split() == ["quantity", "mean", "sd", "mcse", "ess", "rhat"]
    assert "x[2]" in str(table) and len(text.splitlines()) == 8
    with pytest.raises(AttributeError):
        table.mean = None


@pytest.mark.parametrize("f", [integrated_time, ess, mcse, rhat])
@pytest.mark.parametrize("x, error, match", [
    (np.arange(10.0), ValueError, r"shape \(n_samples, n_chains"),
    (np.ones((10, 0)), ValueError, "at least 1 chain"),
    (np.ones((3, 2)), ValueError, "at least"),
    (np.array([[0.0, 1.0]] * 9 + [[np.nan, 0.0]]), ValueError, "finite"),
    (np.array([[0.0, 1.0]] * 9 + [[np.inf, 0.0]]), ValueError, "finite"),
    (np.ones((10, 2), complex), TypeError, "real"),
    (np.array([["a", "b"]] * 10), TypeError, "numeric"),
])
def test_diagnostics_reject_bad_chains(f, x, error, match):
    with pytest.raises(error, match=match):
        f(x)


def test_rhat_needs_four_samples_per_split_chain_and_window_positive():
    with pytest.raises(ValueError, match="at least 8 samples per chain, got 7"):
        rhat(np.random.default_rng(0).normal(size=(7, 4)))
    assert np.isfinite(rhat(np.random.default_rng(0).normal(size=(8, 1))))
    for f in (integrated_time, ess, mcse):
        with pytest.raises(ValueError, match="window"):
            f(np.ones((10, 2)), window=0)


@pytest.mark.parametrize("samples, kwargs, error, match", [
    ([1, 2], {}, TypeError, "mapping"),
    ({}, {}, ValueError, "empty"),
    ({"x": np.ones(10)}, {}, ValueError, r"samples\['x'\]"),
    ({"x": np.ones((10, 2, 3)), "y": np.ones((10, 3))}, {}, ValueError, r"samples\['y'\]"),
    ({"x": np.ones((7, 2, 3))}, {}, ValueError, "at least 8"),
    ({"x": np.ones((10, 2, 3))}, dict(model=pe.RBM(3, 2)), ValueError, "lacks"),
    ({"x": np.ones((10, 2, 3)), "h": np.ones((10, 2, 2)), "energy": np.ones((10, 2))},
     dict(model=pe.RBM(3, 2)), ValueError, "energy"),
])
def test_summary_rejects_bad_input(samples, kwargs, error, match):
    with pytest.raises(error, match=match):
        summary(samples, **kwargs)


@pytest.mark.parametrize("trace, kwargs, error, match", [
    ([1.0], {}, ValueError, "2 steps"),
    (np.ones((10, 3)), {}, ValueError, "constant"),
    (np.zeros((10, 2, 2, 2)), {}, ValueError, "trace"),
    (np.arange(10.0), dict(max_lag=10), ValueError, "max_lag"),
    (np.arange(10.0), dict(max_lag=0), ValueError, "max_lag"),
    (np.arange(10.0), dict(max_lag=2.0), TypeError, "max_lag"),
    ([1.0, np.inf, 2.0], {}, ValueError, "finite"),
])
def test_autocorrelation_rejects_bad_input(trace, kwargs, error, match):
    with pytest.raises(error, match=match):
        autocorrelation(trace, **kwargs)
