"""Continuous unit kinds (Gaussian, ReLU, DReLU) and the exact functions over them.

Oracles: numerical quadrature (scipy.integrate, ``tests/reference/continuous.py``) with the
discrete part listed state by state, finite differences of log Z and of the mean
log-likelihood, scipy.stats distributions for the single-unit conditionals.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import integrate, optimize, stats
from scipy.special import logsumexp

import pgm_energy as pe
from pgm_energy.units import half_normal_log_integral, truncated_moments
from reference import continuous as quadrature
from reference.terms import GatedCoupling, Quartic

KINDS = {
    "gaussian": lambda n: pe.Gaussian(n, sigma=np.linspace(0.6, 1.3, n)),
    "relu": lambda n: pe.ReLU(n),
    "drelu": lambda n: pe.DReLU(n, gamma_plus=np.linspace(0.8, 2.0, n),
                                gamma_minus=np.linspace(1.5, 0.7, n),
                                theta_plus=np.linspace(0.3, -0.4, n),
                                theta_minus=np.linspace(-0.2, 0.6, n)),
}
DISCRETE = {"binary": pe.Binary, "spin": pe.Spin, "categorical": lambda n: pe.Categorical(n, 3)}


def mixed_model(kind, n_c, discrete, n_d, seed, *, visible="c", lateral=0.0, scale=0.6,
                learn=False):
    """Group "c" of continuous units and "d" of discrete ones, biases and W between them,
    an optional Gaussian lateral; parameters N(0, scale^2) from ``seed``; with ``learn`` the
    continuous kind's own parameters are model parameters too."""
    continuous = KINDS[kind](n_c)
    if learn:
        continuous = type(continuous)(n_c, learn=True, **{
            p: getattr(continuous, p) for p in continuous.param_names})
    units = {"c": continuous, "d": DISCRETE[discrete](n_d)}
    terms = [pe.Bias("c", name="b"), pe.Bias("d", name="a"), pe.Pairwise("d", "c", name="W")]
    if lateral:
        terms.append(pe.Lateral("c", name="U"))
    model = pe.EnergyModel(units, terms, visible=[visible])
    rng = np.random.default_rng(seed)
    for name, value in model.params.items():
        if "." not in name:                     # the units' own keep their values
            value[...] = scale * rng.normal(size=value.shape)
    if lateral:
        model.params["U"][...] = lateral * (1 - np.eye(n_c))
    return model


def finite_difference(model, function, name, eps=1e-6):
    """Central differences entry by entry; a lateral's pair ``(i, j), (j, i)`` moves
    together (the matrix stays symmetric) and shares the difference (zero diagonal)."""
    value = model.params[name]
    grad = np.zeros_like(value)
    lateral = name == "U"
    for idx in np.ndindex(grad.shape):
        if lateral and idx[0] == idx[1]:
            continue
        entries = [idx, idx[::-1]] if lateral else [idx]
        old = value[idx]
        for sign in (1, -1):
            for e in entries:
                value[e] = old + sign * eps
            grad[idx] += sign * function() / (2 * eps * len(entries))
        for e in entries:
            value[e] = old
    return grad


# -- the unit kinds -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("beta", [1.0, 0.4, 2.5])
def test_conditional_matches_quadrature(kind, beta):
    unit = KINDS[kind](3)
    field = np.array([[0.7, -1.3, 2.1], [-6.0, 0.0, 4.0]])
    for row in field:
        for i in range(3):
            def density(x, power):
                return x ** power * np.exp(beta * (row[i] * x - unit.unit_energy(
                    np.full(3, x))[i]))
            lo = unit.lower
            z = integrate.quad(density, lo, np.inf, args=(0,), epsabs=0, epsrel=1e-12)[0]
            mean = integrate.quad(density, lo, np.inf, args=(1,), epsabs=0, epsrel=1e-12)[0] / z
            second = integrate.quad(density, lo, np.inf, args=(2,), epsabs=0,
                                    epsrel=1e-12)[0] / z
            assert unit.log_normaliser(row[None], beta)[0, i] == pytest.approx(np.log(z),
                                                                             rel=1e-9, abs=1e-9)
            assert unit.mean(row[None], beta)[0, i] == pytest.approx(mean, rel=1e-8, abs=1e-10)
            assert unit.variance(row[None], beta)[0, i] == pytest.approx(second - mean ** 2,
                                                                         rel=1e-7, abs=1e-10)


def test_half_normal_integral_is_finite_and_stable_far_out():
    t = np.array([-1e8, -1e4, -40.0, -39.0, 0.0, 39.0, 1e3])
    out = half_normal_log_integral(t)
    assert np.all(np.isfinite(out))
    # Far left: int_0^inf exp(-y^2/2 + t y) dy ~ 1/|t|; far right ~ t^2/2 + log sqrt(2 pi).
    assert out[0] == pytest.approx(-np.log(1e8), rel=1e-12)
    assert out[-1] == pytest.approx(1e6 / 2 + 0.5 * np.log(2 * np.pi), rel=1e-14)
    mean, var = truncated_moments(t)
    assert np.all(np.isfinite(mean)) and np.all(var > 0)
    assert mean[1] == pytest.approx(1e-4, rel=1e-7) and var[1] == pytest.approx(1e-8, rel=1e-6)
    # The tail series and the erfcx form agree where they meet.
    left, right = truncated_moments(np.array([-40.0 - 1e-9, -40.0 + 1e-9]))
    assert left[0] == pytest.approx(left[1], rel=1e-9)
    assert right[0] == pytest.approx(right[1], rel=1e-8)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_quantile_draws_follow_the_conditional(kind):
    """Kolmogorov-Smirnov of 20000 draws (fixed seed) against the CDF by quadrature."""
    unit = KINDS[kind](1)
    field, beta = np.array([[0.4]]), 1.3
    u = pe.units.open_uniforms(np.random.default_rng(5), (20000, 1))
    draws = unit.quantile(field, u, beta)[:, 0]
    log_z = unit.log_normaliser(field, beta)[0, 0]

    def cdf(x):
        return np.array([integrate.quad(
            lambda y: np.exp(beta * (field[0, 0] * y - unit.unit_energy(np.array([y]))[0])
                             - log_z), unit.lower if unit.lower > -np.inf else -40, v,
            epsabs=1e-12)[0] for v in np.atleast_1d(x)])

    grid = np.quantile(draws, np.linspace(0.001, 0.999, 400))
    empirical = np.searchsorted(np.sort(draws), grid, side="right") / len(draws)
    # The largest gap on a fine grid: the KS statistic to within the grid's resolution.
    gap = np.max(np.abs(empirical - cdf(grid)))
    assert gap < 1.63 / np.sqrt(len(draws)) + 0.003       # p ~ 0.01, plus the grid


def test_rectified_draws_deep_in_the_tail():
    """ReLU with field -1000: x ~ Exp-like with mean 1/1000, no stall, no inf."""
    unit = pe.ReLU(1)
    u = pe.units.open_uniforms(np.random.default_rng(0), (100000, 1))
    draws = unit.quantile(np.array([[-1000.0]]), u)
    assert np.all(np.isfinite(draws)) and np.all(draws >= 0)
    assert draws.mean() == pytest.approx(unit.mean(np.array([[-1000.0]]))[0, 0], rel=0.02)
    # The open uniforms' extremes stay inside (0, 1), so no quantile is ever infinite.
    extremes = (np.array([0, 2**52 - 1]) + 0.5) * 2.0 ** -52
    assert 0 < extremes[0] and extremes[1] < 1
    for kind in KINDS.values():
        assert np.all(np.isfinite(kind(2).quantile(np.array([[-50.0, 50.0]]), extremes[:, None])))


def test_bad_parameters_and_values_are_refused():
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        pe.Gaussian(2, sigma=[1.0, 0.0])
    with pytest.raises(ValueError, match="sigma"):
        pe.Gaussian(2, sigma=np.nan)
    with pytest.raises(ValueError, match="gamma_minus"):
        pe.DReLU(2, gamma_minus=-1.0)
    with pytest.raises(ValueError, match="theta_plus"):
        pe.DReLU(1, theta_plus=np.inf)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        pe.Gaussian(2, sigma=[1.0, 2.0, 3.0])
    model = mixed_model("relu", 2, "binary", 2, 0)
    with pytest.raises(ValueError, match="relu units take finite values >= 0"):
        model.energy({"c": [[-1.0, 2.0]], "d": [[0, 1]]})
    with pytest.raises(ValueError, match="finite"):
        pe.exact.log_likelihood(model, [[np.inf, 1.0]])
    gaussian = mixed_model("gaussian", 2, "binary", 1, 0)
    with pytest.raises(ValueError, match="read-only"):          # written by assignment
        gaussian.units["c"].sigma[0] = 2.0
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        gaussian.units["c"].sigma = [1.0, -1.0]
    learned = pe.EnergyModel({"x": pe.Gaussian(2, learn=True)}, [pe.Bias("x")])
    learned.params["x.log_sigma"][0] = np.inf                # as a diverging step would
    with pytest.raises(ValueError, match=r"units\['x'\]: sigma must be finite"):
        pe.exact.log_partition(learned)
    with pytest.raises(TypeError, match="learn must be a bool"):
        pe.Gaussian(2, learn="yes")


def test_continuous_groups_save_and_load(tmp_path):
    model = mixed_model("drelu", 2, "spin", 2, 3)
    model.save(tmp_path / "m")
    loaded = pe.load(tmp_path / "m.npz")
    assert loaded.units == model.units
    assert pe.exact.log_partition(loaded) == pytest.approx(pe.exact.log_partition(model),
                                                           rel=1e-14)


# -- exact functions against quadrature ----------------------------------------------------
@pytest.mark.parametrize("kind, discrete, lateral, beta", [
    ("gaussian", "binary", 0.25, 1.0), ("gaussian", "spin", -0.3, 0.7),
    ("relu", "binary", 0.0, 1.0), ("drelu", "categorical", 0.0, 1.4)])
def test_log_partition_of_two_continuous_units_matches_quadrature(kind, discrete, lateral, beta):
    model = mixed_model(kind, 2, discrete, 2 if discrete != "categorical" else 1, 11,
                        lateral=lateral)
    assert pe.exact.log_partition(model, beta) == pytest.approx(
        quadrature.log_partition(model, beta), rel=1e-9)


@given(kind=st.sampled_from(sorted(KINDS)), discrete=st.sampled_from(sorted(DISCRETE)),
       n_d=st.integers(1, 2), seed=st.integers(0, 2**16), beta=st.sampled_from([1.0, 0.6]))
def test_one_continuous_unit_matches_quadrature(kind, discrete, n_d, seed, beta):
    model = mixed_model(kind, 1, discrete, n_d, seed, scale=0.8)
    assert pe.exact.log_partition(model, beta) == pytest.approx(
        quadrature.log_partition(model, beta), rel=1e-9, abs=1e-9)
    singles = pe.exact.marginals(model, beta=beta)["c"]
    mean, var = quadrature.moments(model, beta)[("c", 0)]
    assert singles[0] == pytest.approx([mean, var], rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("kind", ["gaussian", "relu"])
def test_log_likelihood_is_a_density(kind):
    """int exp(log P(x)) dx = 1 over one continuous visible unit."""
    model = mixed_model(kind, 1, "binary", 2, 4)
    lower = -30.0 if kind == "gaussian" else 0.0
    total = integrate.quad(lambda x: np.exp(pe.exact.log_likelihood(model, [[x]])[0]),
                           lower, 30.0, epsabs=1e-12, limit=200)[0]
    assert total == pytest.approx(1.0, rel=1e-9)


def test_free_energy_of_a_gaussian_bernoulli_rbm():
    """F(x) = sum x^2 / (2 sigma^2) - b.x - sum_j softplus(c_j + (W x)_j), no 2 pi."""
    model = mixed_model("gaussian", 3, "binary", 2, 8, visible="c")
    p, sigma = model.params, model.units["c"].sigma
    X = np.random.default_rng(0).normal(size=(4, 3))
    expected = ((X / sigma) ** 2 / 2).sum(1) - X @ p["b"] - np.logaddexp(
        0, p["a"] + X @ p["W"].T).sum(1)
    assert model.free_energy(X) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_evidence_and_missing_values(kind):
    """A held continuous unit: log Z_e by quadrature over the other one; a missing visible
    value is integrated out: log P(x_0) = log Z_{x_0} - log Z."""
    model = mixed_model(kind, 2, "binary", 2, 6)
    x0 = 0.8
    held = pe.exact.log_partition(model, evidence={"c": [x0, np.nan]})
    assert held == pytest.approx(quadrature.log_partition(model, held={("c", 0): x0}),
                                 rel=1e-9)
    observed = pe.exact.log_likelihood(model, [[x0, np.nan]])[0]
    assert observed == pytest.approx(held - pe.exact.log_partition(model), rel=1e-10)
    rows = pe.exact.log_partition(model, evidence={"c": [[x0, np.nan], [np.nan, 0.5]]})
    assert rows[0] == pytest.approx(held, rel=1e-12)


def test_elimination_and_enumeration_agree_beside_gaussian_units():
    """A binary chain of 10 units, each pair sharing a Gaussian hidden unit with a lateral
    chain: the reduced model is a banded Boltzmann machine, eliminated or enumerated."""
    n = 10
    units = {"v": pe.Binary(n), "g": pe.Gaussian(n - 1, sigma=0.8)}
    edges = [(i, i + 1) for i in range(n - 2)]
    terms = [pe.Bias("v"), pe.Bias("g", name="c"), pe.Pairwise("g", "v", name="W"),
             pe.SparsePairwise("g", edges=edges, name="J")]
    model = pe.EnergyModel(units, terms, visible=["v"])
    rng = np.random.default_rng(0)
    model.params["W"][...] = np.where(np.abs(np.subtract.outer(np.arange(n - 1),
                                                               np.arange(n))) <= 1, 1, 0) * \
        rng.normal(size=(n - 1, n)) * 0.5
    model.params["J"][...] = 0.2
    model.params["c"][...] = rng.normal(size=n - 1)
    by_elimination = pe.exact.log_partition(model, method="eliminate")
    assert by_elimination == pytest.approx(pe.exact.log_partition(model, method="enumerate"),
                                           rel=1e-12)
    assert pe.exact.treewidth(model) >= 1
    singles = pe.exact.marginals(model, method="eliminate")
    assert singles["g"] == pytest.approx(pe.exact.marginals(model, method="enumerate")["g"],
                                         rel=1e-9)


def test_conditional_of_a_continuous_group_is_its_mean():
    model = mixed_model("gaussian", 2, "binary", 2, 1, visible="c")
    h = np.array([[1.0, 0.0]])
    field = model.params["b"] + h @ model.params["W"]
    assert model.conditional("c", {"c": np.zeros((1, 2)), "d": h}) == pytest.approx(
        model.units["c"].sigma ** 2 * field)


# -- expectations and gradients against finite differences ----------------------------------
@given(kind=st.sampled_from(sorted(KINDS)), discrete=st.sampled_from(sorted(DISCRETE)),
       n_c=st.integers(1, 3), n_d=st.integers(1, 3), seed=st.integers(0, 2**16),
       lateral=st.sampled_from([0.0, 0.15]), beta=st.sampled_from([1.0, 0.5]))
def test_expectations_are_derivatives_of_log_partition(kind, discrete, n_c, n_d, seed, lateral,
                                                       beta):
    """d log Z / d theta = -beta E[dE/dtheta]."""
    lateral = lateral if kind == "gaussian" and n_c > 1 else 0.0
    model = mixed_model(kind, n_c, discrete, n_d, seed, lateral=lateral)
    expected = pe.exact.expectations(model, beta=beta)
    for name in model.params:
        numeric = finite_difference(model, lambda: pe.exact.log_partition(model, beta), name)
        assert -beta * expected[name] == pytest.approx(numeric, abs=2e-6), name


@pytest.mark.parametrize("kind, visible", [("gaussian", "c"), ("gaussian", "d"),
                                           ("relu", "d"), ("drelu", "d"), ("relu", "c")])
def test_gradient_is_derivative_of_mean_log_likelihood(kind, visible):
    model = mixed_model(kind, 2, "binary", 2, 2, visible=visible,
                        lateral=0.2 if kind == "gaussian" else 0.0)
    rng = np.random.default_rng(1)
    if visible == "c":
        X = np.abs(rng.normal(size=(5, 2)))
        X[0, 1] = np.nan                                     # a missing value
    else:
        X = rng.integers(0, 2, size=(5, 2)).astype(float)
    grad = pe.exact.gradient(model, X)
    for name in model.params:
        numeric = finite_difference(model, lambda: pe.exact.log_likelihood(model, X).mean(),
                                    name)
        assert grad[name] == pytest.approx(numeric, abs=2e-6), name


@pytest.mark.parametrize("kind, visible, lateral", [
    ("gaussian", "c", 0.2), ("gaussian", "d", 0.2), ("drelu", "d", 0.0), ("drelu", "c", 0.0)])
def test_gradient_of_learned_unit_parameters(kind, visible, lateral):
    """log sigma of Gaussian units and the precisions (by their logs) and thresholds of
    dReLU units: expectations and gradients against finite differences, held or free."""
    model = mixed_model(kind, 2, "spin", 2, 3, visible=visible, lateral=lateral, learn=True)
    assert any("." in name for name in model.params)
    expected = pe.exact.expectations(model)
    for name in model.params:
        numeric = finite_difference(model, lambda: pe.exact.log_partition(model), name)
        assert -expected[name] == pytest.approx(numeric, abs=2e-6), name
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(4, 2)) if visible == "c"
         else rng.choice([-1.0, 1.0], size=(4, 2)))
    grad = pe.exact.gradient(model, X)
    for name in model.params:
        numeric = finite_difference(model, lambda: pe.exact.log_likelihood(model, X).mean(),
                                    name)
        assert grad[name] == pytest.approx(numeric, abs=2e-6), name


def test_learned_unit_parameters_save_and_load_exactly(tmp_path):
    model = mixed_model("drelu", 2, "binary", 2, 1, learn=True)
    model.params["c.log_gamma_plus"][...] = [0.1, -0.3]
    model.save(tmp_path / "m")
    loaded = pe.load(tmp_path / "m.npz")
    for name in model.params:
        assert np.array_equal(loaded.params[name], model.params[name]), name
    assert loaded.units["c"].learn


# -- samples and MAP ----------------------------------------------------------------------
def test_exact_samples_of_a_gaussian_bernoulli_rbm():
    """x_0's draws against the exact mixture CDF sum_h P(h) Phi((x - mu_h) / sd) (KS, fixed
    seed), and the mean of h within 5 standard errors."""
    model = mixed_model("gaussian", 2, "binary", 2, 9, lateral=0.2)
    draws = pe.exact.sample(model, 20000, rng=3)
    H = np.array(list(itertools.product([0, 1], repeat=2)), float)
    p = model.params
    precision = np.diag(1 / model.units["c"].sigma ** 2) - 2 * p["U"]
    cov = np.linalg.inv(precision)
    log_w = [-model.energy({"c": np.zeros((1, 2)), "d": h[None]})[0]
             + (p["b"] + p["W"].T @ h) @ cov @ (p["b"] + p["W"].T @ h) / 2 for h in H]
    weights = np.exp(np.array(log_w) - logsumexp(log_w))
    means = [cov @ (p["b"] + p["W"].T @ h) for h in H]

    def cdf(x):
        return sum(w * stats.norm.cdf(x, m[0], np.sqrt(cov[0, 0])) for w, m in zip(weights, means))

    assert stats.kstest(draws["c"][:, 0], cdf).pvalue > 0.001
    exact_h = pe.exact.marginals(model)["d"]
    se = np.sqrt(exact_h * (1 - exact_h) / 20000)
    assert np.all(np.abs(draws["d"].mean(0) - exact_h) < 5 * se)


@pytest.mark.parametrize("kind", ["relu", "drelu"])
def test_exact_samples_of_rectified_units(kind):
    model = mixed_model(kind, 2, "spin", 2, 12)
    draws = pe.exact.sample(model, 20000, rng=4)["c"]
    exact = pe.exact.marginals(model)["c"]
    se = np.sqrt(exact[:, 1] / 20000)
    assert np.all(np.abs(draws.mean(0) - exact[:, 0]) < 5 * se)
    assert draws.var(0) == pytest.approx(exact[:, 1], rel=0.05)
    if kind == "relu":
        assert np.all(draws >= 0)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_map_state_matches_a_numerical_optimum(kind):
    """For each discrete state, the best continuous values by scipy.optimize; the best of all."""
    model = mixed_model(kind, 2, "binary", 2, 13, lateral=0.2 if kind == "gaussian" else 0.0)
    best = np.inf
    for d in itertools.product([0.0, 1.0], repeat=2):
        start = np.full(2, 0.5)
        bounds = [(0, None)] * 2 if kind == "relu" else None
        result = optimize.minimize(
            lambda x: model.energy({"c": x[None], "d": np.array([d])})[0], start,
            bounds=bounds, method="L-BFGS-B" if bounds else "BFGS", tol=1e-12)
        best = min(best, result.fun)
    state, energy = pe.exact.map_state(model)
    assert energy == pytest.approx(best, abs=1e-7)
    assert model.energy({g: v[None] for g, v in state.items()})[0] == pytest.approx(energy)


# -- what has no closed form is refused -----------------------------------------------------
def test_precision_not_positive_definite_is_refused():
    model = mixed_model("gaussian", 2, "binary", 1, 0, lateral=2.0)
    with pytest.raises(ValueError, match="not positive definite"):
        pe.exact.log_partition(model)


def test_rectified_units_coupled_to_free_continuous_units_are_refused():
    units = {"x": pe.Gaussian(2), "h": pe.ReLU(2)}
    model = pe.EnergyModel(units, [pe.Bias("x"), pe.Pairwise("h", "x")], visible=["x"])
    model.params["W"][...] = 0.1
    with pytest.raises(ValueError, match="conditionally independent"):
        pe.exact.log_partition(model)
    # Given x, h is summed in closed form: the free energy works.
    X = np.array([[0.3, -0.2]])
    expected = (X ** 2 / 2).sum() - pe.ReLU(2).log_normaliser(X @ model.params["W"].T).sum()
    assert model.free_energy(X)[0] == pytest.approx(expected - model.params["b"] @ X[0])


def test_product_factors_over_continuous_units_are_refused():
    model = pe.EnergyModel({"x": pe.Gaussian(3)},
                           [pe.Interaction("x", cliques=[(0, 1, 2)], name="T")])
    with pytest.raises(TypeError, match="no closed-form integral"):
        pe.exact.log_partition(model)


def test_users_terms_on_given_continuous_units_are_evaluated():
    """A users' term reading continuous units has no closed-form integral, so log Z is
    refused (pointing to the Gibbs sampler); where those units are given, the term is a
    value like any other: the free energy sums h with it, as quadrature does."""
    model = pe.EnergyModel(units={"x": pe.Gaussian(2, sigma=[0.8, 1.3]), "h": pe.Binary(2)},
                           terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                                  pe.Pairwise("h", "x", name="W"), Quartic("x"),
                                  GatedCoupling("h", "x")], visible=["x"])
    rng = np.random.default_rng(0)
    for name in ("b", "c", "W"):
        model.params[name][...] = 0.8 * rng.normal(size=model.params[name].shape)
    with pytest.raises(TypeError, match=r"Quartic reads the free continuous group\(s\) "
                                        r"\['x'\].*pe.GibbsSampler"):
        pe.exact.log_partition(model)
    X = rng.normal(size=(4, 2))
    expected = [-quadrature.log_partition(model, held={("x", 0): a, ("x", 1): b})
                for a, b in X]
    np.testing.assert_allclose(model.free_energy(X), expected, rtol=1e-12)


def test_cluster_moves_refuse_continuous_units():
    model = mixed_model("gaussian", 2, "binary", 2, 0)
    with pytest.raises(TypeError, match="continuous"):
        pe.ClusterSampler(model, n_chains=2, rng=0)


# -- AIS with a Gaussian base ---------------------------------------------------------------
def test_ais_with_a_users_term_on_the_visible_units():
    """A quartic of one's own over Gaussian visible units: forward AIS, with its Metropolis
    step, and reverse AIS from Gibbs samples agree with quadrature's log Z within 4 standard
    errors; a users' term that reads the hidden units is refused."""
    model = pe.EnergyModel(units={"x": pe.Gaussian(2, sigma=[0.8, 1.3]), "h": pe.Binary(3)},
                           terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                                  pe.Pairwise("h", "x", name="W"), Quartic("x")],
                           visible=["x"])
    rng = np.random.default_rng(0)
    for name in ("b", "c", "W"):
        model.params[name][...] = 0.8 * rng.normal(size=model.params[name].shape)
    exact = quadrature.log_partition(model)
    forward = pe.ais.log_partition(model, n_betas=1000, n_runs=200, rng=0)
    X = pe.GibbsSampler(model, 200, rng=1).sample(1, burn_in=100)["x"][0]
    reverse = pe.ais.reverse_log_partition(model, X, n_betas=1000, rng=0)
    for estimate in (forward, reverse):
        assert abs(estimate.log_z - exact) < 4 * estimate.stderr + 1e-3

    gated = pe.EnergyModel(units=model.units, terms=model.terms + [GatedCoupling("h", "x")],
                           visible=["x"])
    with pytest.raises(TypeError, match="may read the visible groups only"):
        pe.ais.log_partition(gated, n_betas=10, n_runs=2, rng=0)


@pytest.mark.parametrize("hidden", ["binary", "spin"])
def test_ais_of_a_gaussian_bernoulli_rbm_brackets_the_exact_log_partition(hidden):
    """Forward AIS from a Gaussian base (the model's own visible part, or fitted to data)
    and reverse AIS from exact samples agree with exact log Z within 4 standard errors."""
    model = mixed_model("gaussian", 6, hidden, 5, 0, scale=0.5)
    exact = pe.exact.log_partition(model)
    X = pe.exact.sample(model, 200, rng=1)["c"]
    for base in ("biases", X):
        forward = pe.ais.log_partition(model, n_betas=300, n_runs=100, rng=0, base=base)
        reverse = pe.ais.reverse_log_partition(model, X[:100], n_betas=300, rng=0, base=base)
        for estimate in (forward, reverse):
            assert abs(estimate.log_z - exact) < 4 * estimate.stderr + 0.01
    ll = pe.ais.log_likelihood(model, X[:20], n_betas=300, n_runs=100, rng=0)
    assert ll.mean == pytest.approx(pe.exact.log_likelihood(model, X[:20]).mean(), abs=0.1)


def test_ais_refuses_continuous_models_it_cannot_anneal():
    model = mixed_model("relu", 2, "binary", 2, 0, visible="d")
    with pytest.raises(TypeError, match="Gaussian visible"):
        pe.ais.log_partition(model, n_betas=10, n_runs=2, rng=0)
    with pytest.raises(ValueError, match="float64"):
        pe.ais.log_partition(mixed_model("gaussian", 2, "binary", 2, 0), n_betas=10,
                             n_runs=2, rng=0, dtype=np.float32)


# -- learning --------------------------------------------------------------------------------
def test_exact_gradient_training_raises_the_log_density():
    """A Gaussian-Bernoulli RBM trained by the exact gradient on two Gaussian clusters: the
    exact mean log density rises, the reconstruction error falls, and the
    pseudo-log-likelihood monitor is refused for real-valued data."""
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, -1.0, 0.5], [-1.5, 1.0, -0.5]])
    X = centres[rng.integers(0, 2, 200)] + 0.3 * rng.normal(size=(200, 3))
    model = mixed_model("gaussian", 3, "binary", 2, 0, scale=0.01)
    before = pe.exact.log_likelihood(model, X).mean()
    monitors = [pe.learning.ReconstructionError(X), pe.learning.ExactLogLikelihood(X)]
    history = pe.fit(model, X, method=pe.ExactGradient(), optimizer=pe.SGD(lr=0.2, momentum=0.5),
                     epochs=30, batch_size=50, rng=0, callbacks=monitors, verbose=0)
    assert history["exact_log_likelihood"][-1] > before + 3.0
    assert history["reconstruction_error"][-1] < 0.5 * history["reconstruction_error"][0]
    with pytest.raises(ValueError, match="ReconstructionError"):
        pe.learning.pseudo_log_likelihood(model, X)


# -- pe.testing draws continuous groups -----------------------------------------------------
@given(data=st.data())
def test_testing_strategies_draw_models_the_exact_functions_serve(data):
    """Random mixed models from pe.testing.models: exact log Z is finite, and expectations
    are the derivatives of log Z; random states lie in the domain."""
    from pgm_energy import testing

    kinds = (pe.Binary, pe.Spin, pe.Gaussian, pe.ReLU, pe.DReLU)
    model = data.draw(testing.models(max_groups=3, max_units=2, max_total=5, kinds=kinds,
                                     large_weights=False, scale=0.5))
    log_z = pe.exact.log_partition(model)
    assert np.isfinite(log_z)
    state = data.draw(testing.states(model))
    assert np.all(np.isfinite(model.energy(state)))
    expected = pe.exact.expectations(model)
    symmetric = {n for t in model.terms for n in getattr(t, "symmetric_params", ())}
    for name in model.params:
        if name in symmetric:
            continue
        numeric = finite_difference(model, lambda: pe.exact.log_partition(model), name)
        assert -expected[name] == pytest.approx(numeric, abs=5e-6), name


def test_check_term_accepts_continuous_groups():
    from pgm_energy import testing

    report = testing.check_term(pe.Pairwise("h", "x"), units={"h": pe.Binary(2),
                                                               "x": pe.Gaussian(3)})
    assert "match central differences" in report
    with pytest.raises(ValueError, match="continuous"):
        testing.brute_force(mixed_model("relu", 1, "binary", 1, 0))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_cdf_inverts_quantile(kind):
    """The quantile maps u to the point whose upper tail is u for a ReLU unit, whose lower
    tail is u otherwise: the CDF at the draw is 1 - u or u, to rounding, for fields from
    deep tails to large."""
    unit = KINDS[kind](4)
    field = np.array([[-30.0, -1.0, 0.5, 12.0]])
    u = np.random.default_rng(2).random((200, 4)) * 0.98 + 0.01
    back = unit.cdf(unit.quantile(field, u, 0.8), field, 0.8)
    assert back == pytest.approx(1 - u if kind == "relu" else u, abs=1e-7)


def test_training_learns_sigma():
    """Data with spread 2.5 around two centres: sigma, learned (by its log) with the exact
    gradient, grows from 1 towards the data's scale, and the log density beats fixed sigma."""
    rng = np.random.default_rng(1)
    centres = np.array([[2.0, -1.0], [-1.5, 1.0]])
    X = centres[rng.integers(0, 2, 300)] + 2.5 * rng.normal(size=(300, 2))
    results = {}
    for learn in (False, True):
        model = mixed_model("gaussian", 2, "binary", 2, 0, scale=0.01, learn=learn)
        model.units["c"].sigma = 1.0
        pe.fit(model, X, method=pe.ExactGradient(), optimizer=pe.SGD(lr=0.05, momentum=0.5),
               epochs=20, batch_size=50, rng=0, verbose=0)
        results[learn] = (pe.exact.log_likelihood(model, X).mean(), model.units["c"].sigma)
    assert np.all(results[True][1] > 1.5)
    assert results[True][0] > results[False][0] + 0.5


# -- sampled training and pe.testing.check_model (need the continuous Gibbs sampler) ---------
@pytest.mark.parametrize("kind, discrete", [("gaussian", "binary"), ("relu", "spin"),
                                            ("drelu", "categorical")])
def test_check_model_passes_continuous_models(kind, discrete):
    from pgm_energy import testing

    model = mixed_model(kind, 2, discrete, 2 if discrete != "categorical" else 1, 5,
                        lateral=0.2 if kind == "gaussian" else 0.0)
    report = testing.check_model(model, n_chains=3000, n_sweeps=100, rng=0)
    assert "KS" in report


def test_check_model_catches_a_wrong_conditional():
    """A sampler of the wrong model (sigma changed after the chains ran) fails the check."""
    from pgm_energy import testing

    model = mixed_model("gaussian", 2, "binary", 2, 5)
    original = pe.GibbsSampler

    class Wrong(original):
        def run(self, n_sweeps, **kwargs):
            sigma = self.model.units["c"].sigma
            self.model.units["c"].sigma = sigma * 1.3
            try:
                return super().run(n_sweeps, **kwargs)
            finally:
                self.model.units["c"].sigma = sigma

    import pgm_energy.sampling as sampling
    sampling.GibbsSampler, pe.GibbsSampler = Wrong, Wrong
    try:
        with pytest.raises(AssertionError, match="conditional|marginals"):
            testing.check_model(model, n_chains=3000, n_sweeps=100, rng=0)
    finally:
        sampling.GibbsSampler, pe.GibbsSampler = original, original


def test_pcd_trains_a_gaussian_bernoulli_rbm_like_the_exact_gradient():
    """PCD on two Gaussian clusters reaches within 0.3 nats of exact-gradient training."""
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, -1.0, 0.5], [-1.5, 1.0, -0.5]])
    X = centres[rng.integers(0, 2, 400)] + 0.3 * rng.normal(size=(400, 3))
    results = {}
    for method in (pe.ExactGradient(), pe.PCD(n_chains=100, k=5)):
        model = mixed_model("gaussian", 3, "binary", 2, 0, scale=0.01)
        pe.fit(model, X, method=method, optimizer=pe.SGD(lr=0.1, momentum=0.5), epochs=30,
               batch_size=50, rng=0, verbose=0)
        results[type(method).__name__] = pe.exact.log_likelihood(model, X).mean()
    assert results["PCD"] > results["ExactGradient"] - 0.3


@pytest.mark.parametrize("kind, visible", [("gaussian", "c"), ("drelu", "d")])
def test_sampled_gradient_of_learned_unit_parameters_matches_exact(kind, visible):
    """PCD's gradient of the units' own parameters (many equilibrated chains, the closed
    hidden units by their conditional expectations) against the exact gradient."""
    model = mixed_model(kind, 2, "binary", 2, 3, visible=visible, learn=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)) if visible == "c" else rng.integers(0, 2, (50, 2)) * 1.0
    exact = pe.exact.gradient(model, X)
    method = pe.PCD(n_chains=20000, k=200)
    sampled = method.gradient(model, X, rng=1)
    for name in model.params:
        if "." in name:
            assert sampled[name] == pytest.approx(exact[name], abs=0.05), name


def test_compiled_epoch_of_a_gaussian_bernoulli_rbm_equals_the_python_loop():
    """PCD + SGD on a Gaussian-Bernoulli RBM runs whole epochs in the compiled kernel (the
    visible layer drawn by the Gaussian inverse CDF): the same chains and updates as the
    minibatch loop, to rounding."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 4))
    runs = []
    for compiled in (True, False):
        model = mixed_model("gaussian", 4, "binary", 3, 2, scale=0.3)
        model.units["c"].sigma = [0.7, 1.0, 1.2, 0.9]
        method = pe.PCD(n_chains=9, k=2)
        pe.fit(model, X, method, pe.SGD(lr=0.05, momentum=0.5, weight_decay=0.01), epochs=3,
               batch_size=5, rng=1, compiled=compiled)
        runs.append((model, method.sampler.state))
    (fast, fast_chains), (slow, slow_chains) = runs
    for name in fast.params:
        np.testing.assert_allclose(fast.params[name], slow.params[name], rtol=1e-9, atol=1e-11)
    for g in fast_chains:
        np.testing.assert_allclose(fast_chains[g], slow_chains[g], rtol=1e-9, atol=1e-11)
    learned = mixed_model("gaussian", 4, "binary", 3, 2, learn=True)   # stays in Python
    method = pe.PCD(n_chains=9)
    with pytest.raises(pe.learning.compiled.NotCompiled):
        pe.learning.compiled.CompiledPCD(learned, method, pe.SGD(), np.random.default_rng(0))


@pytest.mark.parametrize("method", [pe.CD(k=1), pe.PT(n_chains=50, betas=[0.3, 0.6, 1.0])])
def test_cd_and_tempering_train_a_learned_sigma(method):
    """CD and parallel tempering on data of spread 2: sigma, learned, grows from 1."""
    X = 2.0 * np.random.default_rng(0).normal(size=(100, 3))
    model = mixed_model("gaussian", 3, "binary", 2, 0, scale=0.01, learn=True)
    model.units["c"].sigma = 1.0
    pe.fit(model, X, method=method, optimizer=pe.SGD(lr=0.02), epochs=3, batch_size=50, rng=0,
           verbose=0)
    assert np.all(model.units["c"].sigma > 1.2)
