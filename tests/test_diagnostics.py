"""Diagnostics of chain output: autocorrelation against direct sums and AR(1) chains,
integrated autocorrelation time."""
import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy.diagnostics import autocorrelation, integrated_autocorrelation_time


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_autocorrelation_of_ar1_chains_is_geometric(seed):
    # 20 chains x 5000 steps: the standard error of rho(t) is below 0.01, so 0.05 holds
    # for any seed.
    phi = 0.7
    rho = autocorrelation(ar1(phi, 5000, 20, seed), max_lag=8)
    np.testing.assert_allclose(rho, phi ** np.arange(9), atol=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integrated_time_of_ar1_and_iid(seed):
    phi = 0.7
    tau = integrated_autocorrelation_time(ar1(phi, 5000, 20, seed))
    assert tau == pytest.approx((1 + phi) / (1 - phi), rel=0.1)
    iid = np.random.default_rng(seed).normal(size=(5000, 20))
    assert integrated_autocorrelation_time(iid) == pytest.approx(1.0, abs=0.1)


def test_integrated_time_of_gibbs_chains_grows_with_coupling():
    # Two modes (all off; x and h on) separated by a barrier: Gibbs chains stick in them.
    sticky = pe.RBM(6, 3, W=np.full((3, 6), 2.0), b=np.full(6, -3.0), c=np.full(3, -6.0))
    free = pe.RBM(6, 3, W=np.zeros((3, 6)))
    taus = [integrated_autocorrelation_time(
        pe.GibbsSampler(model, n_chains=10, rng=0).sample(300, burn_in=20)["x"])
        for model in (sticky, free)]
    assert taus[0] > 10 and taus[1] == pytest.approx(1.0, abs=0.2)


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


def test_integrated_time_rejects_bad_window():
    with pytest.raises(ValueError, match="window"):
        integrated_autocorrelation_time(np.arange(10.0), window=0)
