"""Gibbs sampling of models with continuous units (Gaussian, ReLU, DReLU): the compiled chains
equal their numpy twin, and their moments and marginals match exact answers computed here
independently (the discrete units enumerated; given them, the continuous units are Gaussian,
or integrated by scipy.integrate.quad)."""
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy import integrate, stats
from scipy.special import expit, logsumexp, ndtr, ndtri

import pgm_energy as pe
from pgm_energy._kernels import _gibbs
from pgm_energy.sampling import GibbsState, slot_kinds

from reference import continuous as quadrature
from reference.terms import GatedCoupling, Quartic
from reference import gibbs as twin

P_FLOOR = 1e-6      # false-alarm rate of each goodness-of-fit test
K_SIGMA = 5.0       # band of the moment checks, in standard errors from the ESS


def rbm_like(visible, hidden, seed=0, scale=0.5):
    """``visible`` and ``hidden`` groups with biases and a pairwise term, random parameters."""
    model = pe.EnergyModel(units={"x": visible, "h": hidden},
                           terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                                  pe.Pairwise("h", "x", name="W")], visible=["x"])
    rng = np.random.default_rng(seed)
    for value in model.params.values():
        value[...] = scale * rng.normal(size=value.shape)
    return model


def gaussian_lateral_model(seed=0):
    """Gaussian(3) with a lateral (precision diag(1/sigma^2) - 2U positive definite) and
    Binary(2) hidden units."""
    model = pe.EnergyModel(units={"x": pe.Gaussian(3, sigma=[0.8, 1.0, 1.2]),
                                  "h": pe.Binary(2)},
                           terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                                  pe.Pairwise("h", "x", name="W"), pe.Lateral("x", name="U")],
                           visible=["x"])
    rng = np.random.default_rng(seed)
    model.params["b"][:] = 0.5 * rng.normal(size=3)
    model.params["c"][:] = 0.5 * rng.normal(size=2)
    model.params["W"][:] = 0.7 * rng.normal(size=(2, 3))
    model.params["U"][:] = [[0, 0.2, -0.15], [0.2, 0, 0.1], [-0.15, 0.1, 0]]
    return model


def mixed_model(seed=0):
    """Every kind in one model: Gaussian, binary, ReLU, DReLU, spin and categorical groups
    (pairwise terms between them) and a lateral over the Gaussian units."""
    model = pe.EnergyModel(
        units={"x": pe.Gaussian(3, sigma=[0.5, 1.0, 1.5]), "h": pe.Binary(2),
               "r": pe.ReLU(2), "d": pe.DReLU(2, gamma_plus=[1.0, 2.0], gamma_minus=1.5,
                                             theta_plus=0.3, theta_minus=-0.2),
               "s": pe.Spin(2), "k": pe.Categorical(1, 3)},
        terms=[pe.Bias("x"), pe.Bias("h", name="c"), pe.Bias("r", name="br"),
               pe.Bias("d", name="bd"), pe.Bias("k", name="bk"),
               pe.Pairwise("h", "x", name="W"), pe.Pairwise("r", "h", name="V"),
               pe.Pairwise("d", "x", name="D"), pe.Pairwise("s", "r", name="S"),
               pe.Pairwise("k", "d", name="K"), pe.Lateral("x", name="U")],
        visible=["x"])
    rng = np.random.default_rng(seed)
    for name, value in model.params.items():
        value[...] = 0.5 * rng.normal(size=value.shape)
    model.params["U"][...] = 0.0
    model.params["U"][0, 1] = model.params["U"][1, 0] = 0.3
    model.params["D"] *= 0.3           # keeps the continuous precision positive definite
    return model


# -- the twin: same draws, same chains --------------------------------------------------
def test_normal_quantile_equals_scipy_ndtri():
    # the kernels' AS241 against scipy.special.ndtri (the units' quantile), centre and tails
    rng = np.random.default_rng(0)
    u = np.concatenate([rng.random(200_000), 10.0 ** -rng.uniform(0, 300, 20_000),
                        1 - 2.0 ** -53 * rng.integers(1, 2 ** 40, 20_000),
                        (2 * np.arange(1000) + 1) * 2.0 ** -53, [0.5, 0.075, 0.925]])
    u = u[(u > 0) & (u < 1)]
    np.testing.assert_allclose(_gibbs.normal_quantiles(u), ndtri(u), rtol=2e-15, atol=0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        _gibbs.normal_quantiles(np.array([0.0]))


@pytest.mark.parametrize("unit", [pe.Gaussian(1, sigma=0.7), pe.ReLU(1),
                                  pe.DReLU(1, gamma_plus=2.0, gamma_minus=0.5, theta_plus=0.4,
                                           theta_minus=-1.0),
                                  pe.DReLU(1, theta_plus=-0.3, theta_minus=0.3)])
def test_kernel_draw_equals_the_units_quantile(unit):
    # _random.h's pe__continuous_draw against units.quantile at u + 2^-53, fields from deep
    # in one tail to deep in the other, several beta
    rng = np.random.default_rng(1)
    n = 4000
    field = np.concatenate([rng.normal(0, 3, n - 8), [-1e3, -60.0, -30.0, -8.0, 8.0, 30.0,
                                                      60.0, 1e3]])
    beta = rng.choice([0.3, 1.0, 2.5], size=n)
    u = np.concatenate([rng.random(n - 2), [0.0, 1 - 2.0 ** -52]])
    graph = pe.EnergyModel(units={"x": unit}, terms=[pe.Bias("x")]).graph
    kind, param = slot_kinds(graph)
    got = _gibbs.continuous_draws(np.repeat(kind, n), np.repeat(param, n, axis=0), field, beta,
                                  u)
    want = unit.quantile(field[:, None], (u + 2.0 ** -53)[:, None], beta[:, None])[:, 0]
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.all(got >= unit.lower)


def twin_run(model, schedule, n_chains, beta, seed, n_sweeps=4, keep=None, clamp=None):
    """The sampler's chains and the twin's after ``n_sweeps`` from the same start."""
    sampler = pe.GibbsSampler(model, n_chains=n_chains, schedule=schedule, beta=beta, rng=seed)
    streams = sampler._streams[:, :n_chains].copy()
    if clamp is not None:
        sampler.run(0, clamp=clamp)             # sets the held values
    flat = sampler._engine.flat()
    order = (np.argsort(sampler._colour, kind="stable") if schedule != "sequential"
             else np.arange(model.graph.n_units))
    order = order[np.isin(order, model.graph.site_start[:-1])]   # a categorical unit once
    if keep is not None and keep.all(axis=0).any():
        order = order[~keep.all(axis=0)[order]]
    twin.sweeps(model, flat, order, np.full(n_chains, beta), streams, n_sweeps, keep=keep)
    sampler.run(n_sweeps, clamp=clamp)
    return sampler._engine.flat(), flat


@pytest.mark.parametrize("n_chains", [11, 3])       # vector groups of 8 lanes; one at a time
@pytest.mark.parametrize("schedule", ["sequential", "chromatic"])
@pytest.mark.parametrize("seed, beta", [(0, 1.0), (5, 0.6), (9, 1.7)])
def test_kernels_equal_numpy_twin_on_a_mixed_model(n_chains, schedule, seed, beta):
    got, want = twin_run(mixed_model(seed), schedule, n_chains, beta, seed)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


KINDS = {"binary": lambda n, p: pe.Binary(n), "spin": lambda n, p: pe.Spin(n),
         "gaussian": lambda n, p: pe.Gaussian(n, sigma=0.5 + p[:n]),
         "relu": lambda n, p: pe.ReLU(n),
         "drelu": lambda n, p: pe.DReLU(n, gamma_plus=0.5 + p[:n], gamma_minus=1.5 - p[:n] / 2,
                                        theta_plus=p[:n] - 0.5, theta_minus=0.5 - p[:n])}


@st.composite
def mixed_models(draw):
    """Two or three groups of random kinds (at least one continuous), biases, pairwise terms
    between consecutive groups and, for a Gaussian group, a lateral; small random
    parameters, the continuous precision positive definite."""
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=2, max_size=3))
    assume(any(k in ("gaussian", "relu", "drelu") for k in kinds))
    sizes = draw(st.lists(st.integers(1, 3), min_size=len(kinds), max_size=len(kinds)))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    names = [f"g{i}" for i in range(len(kinds))]
    units = {g: KINDS[k](n, rng.random(3)) for g, k, n in zip(names, kinds, sizes)}
    terms = [pe.Bias(g, name=f"b{g}") for g in names]
    terms += [pe.Pairwise(a, b, name=f"W{a}{b}") for a, b in zip(names, names[1:])]
    terms += [pe.Lateral(g, name=f"U{g}") for g, k, n in zip(names, kinds, sizes)
              if k == "gaussian" and n > 1]
    model = pe.EnergyModel(units=units, terms=terms)
    for name, value in model.params.items():
        value[...] = draw(st.sampled_from([0.2, 0.5])) * rng.normal(size=value.shape)
        if name.startswith("U"):
            value[...] = (value + value.T) / 4
            np.fill_diagonal(value, 0.0)
    try:
        model.graph.continuous_precision("test")
    except ValueError:
        assume(False)
    return model


@settings(max_examples=20, deadline=None)
@given(mixed_models(), st.sampled_from([11, 3]), st.floats(0.3, 2.0))
def test_kernels_equal_numpy_twin_on_random_mixed_models(model, n_chains, beta):
    for schedule in ("sequential", "chromatic", "block"):
        try:
            got, want = twin_run(model, schedule, n_chains, beta, seed=0, n_sweeps=3)
        except ValueError as error:       # block: only for two dense layers
            assert schedule == "block" and "two layers" in str(error)
            continue
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=schedule)


@pytest.mark.parametrize("n_chains", [19, 3])
@pytest.mark.parametrize("visible, hidden", [
    (pe.Gaussian(5, sigma=[0.5, 1.0, 1.5, 2.0, 0.8]), pe.Binary(4)),
    (pe.Binary(5), pe.ReLU(4)),
    (pe.Gaussian(3), pe.DReLU(4, gamma_plus=[1, 2, 3, 4], gamma_minus=1.5, theta_plus=0.3,
                              theta_minus=-0.5)),
    (pe.Spin(4), pe.Gaussian(3, sigma=0.7)),
])
def test_block_schedule_equals_numpy_twin(n_chains, visible, hidden):
    model = rbm_like(visible, hidden, seed=2)
    sampler = pe.GibbsSampler(model, n_chains=n_chains, rng=0)
    assert sampler.schedule == "block"      # "auto" picks the BLAS path for these
    got, want = twin_run(model, "block", n_chains, 0.8, seed=4)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("schedule", ["sequential", "block"])
def test_partial_clamps_per_chain_equal_numpy_twin(schedule):
    model = rbm_like(pe.Gaussian(3, sigma=[0.5, 1.0, 1.2]), pe.ReLU(3), seed=3, scale=0.3)
    n_chains = 9
    rng = np.random.default_rng(0)
    x = np.where(rng.random((n_chains, 3)) < 0.4, rng.normal(size=(n_chains, 3)), np.nan)
    h = np.where(rng.random((n_chains, 3)) < 0.3, rng.exponential(size=(n_chains, 3)), np.nan)
    keep = np.concatenate([~np.isnan(x), ~np.isnan(h)], axis=1)
    got, want = twin_run(model, schedule, n_chains, 1.0, seed=1, keep=keep,
                         clamp={"x": x, "h": h})
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(got[:, :3][keep[:, :3]], x[keep[:, :3]])
    np.testing.assert_array_equal(got[:, 3:][keep[:, 3:]], h[keep[:, 3:]])


def test_block_schedule_equals_numpy_twin_on_wide_gaussian_layers():
    """The block sweep draws a layer's Gaussian units in batches of 64 (``_gibbs.h``): a layer
    of 150 Gaussian units (3 batches, the last one partial) next to ReLU units in the same
    layer, chains held per chain here and there, a partial group of chains, beta != 1."""
    n_chains, n_x = 11, 150
    model = pe.EnergyModel(
        units={"x": pe.Gaussian(n_x, sigma=np.linspace(0.4, 1.6, n_x)), "r": pe.ReLU(3),
               "h": pe.Binary(5)},
        terms=[pe.Bias("x", name="b"), pe.Bias("r", name="a"), pe.Bias("h", name="c"),
               pe.Pairwise("h", "x", name="W"), pe.Pairwise("h", "r", name="V")],
        visible=["x", "r"])
    rng = np.random.default_rng(7)
    for value in model.params.values():
        value[...] = 0.3 * rng.normal(size=value.shape)
    assert pe.GibbsSampler(model, n_chains=n_chains, rng=0).schedule == "block"
    x = np.where(rng.random((n_chains, n_x)) < 0.1, rng.normal(size=(n_chains, n_x)), np.nan)
    keep = np.concatenate([~np.isnan(x), np.zeros((n_chains, 8), bool)], axis=1)
    got, want = twin_run(model, "block", n_chains, 0.7, seed=3, keep=keep, clamp={"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(got[:, :n_x][keep[:, :n_x]], x[keep[:, :n_x]])


@pytest.mark.parametrize("schedule", ["sequential", "chromatic", "block"])
def test_same_seed_same_chains_whatever_the_thread_count(schedule):
    model = (rbm_like(pe.Gaussian(6), pe.Binary(5), seed=1) if schedule == "block"
             else mixed_model(1))
    runs = []
    for n_threads in (1, 2):
        sampler = pe.GibbsSampler(model, n_chains=40, schedule=schedule, rng=7,
                                  n_threads=n_threads)
        runs.append(sampler.sample(3, thin=2, burn_in=1))
    for g in model.units:
        np.testing.assert_array_equal(runs[0][g], runs[1][g], err_msg=g)


# -- exact moments, computed independently ----------------------------------------------
def binary_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def gaussian_exact(model, beta=1.0):
    """Mixture form of a model of Gaussian ``x`` (any PD lateral) and binary ``h``: for each
    ``h``, ``x | h ~ N(P^-1 f, P^-1 / beta)`` with ``P = diag(1/sigma^2) - 2U`` and
    ``f = b + W^T h``; ``P(h) ∝ exp(beta (c.h + f^T P^-1 f / 2))``. Returns the weights, the
    states ``h``, the conditional means and the covariance."""
    p = model.params
    sigma = model.units["x"].sigma
    precision = np.diag(1 / sigma ** 2) - 2 * p.get("U", np.zeros((len(sigma),) * 2))
    cov = np.linalg.inv(precision)
    hs = binary_states(model.units["h"].n)
    f = p["b"] + hs @ p["W"]
    means = f @ cov
    log_w = beta * (hs @ p["c"] + 0.5 * np.einsum("ki,ki->k", f, means))
    return np.exp(log_w - logsumexp(log_w)), hs, means, cov / beta


def check_moments(samples, exact, what):
    """Each statistic's sample mean (samples: name -> (n_samples, n_chains)) within K_SIGMA
    standard errors (from the effective sample size over all chains) of the exact value."""
    for name, trace in samples.items():
        n_eff = pe.diagnostics.ess(trace)
        stderr = trace.std() / np.sqrt(n_eff)
        assert abs(trace.mean() - exact[name]) <= K_SIGMA * stderr + 1e-12, (
            f"{what}: {name} = {trace.mean():.5f}, exact {exact[name]:.5f}, stderr "
            f"{stderr:.2g} (ess {n_eff:.0f})")


def gaussian_statistics(model, beta, out):
    """Sample traces and exact values of E[x_i], E[x_i^2], E[h_j], E[x_i h_j]."""
    w, hs, means, cov = gaussian_exact(model, beta)
    x, h = out["x"], out["h"]
    traces, exact = {}, {}
    for i in range(x.shape[2]):
        traces[f"x{i}"], exact[f"x{i}"] = x[..., i], w @ means[:, i]
        traces[f"x{i}^2"], exact[f"x{i}^2"] = x[..., i] ** 2, w @ (means[:, i] ** 2 + cov[i, i])
        for j in range(h.shape[2]):
            traces[f"x{i}h{j}"] = x[..., i] * h[..., j]
            exact[f"x{i}h{j}"] = w @ (hs[:, j] * means[:, i])
    for j in range(h.shape[2]):
        traces[f"h{j}"], exact[f"h{j}"] = h[..., j], w @ hs[:, j]
    if x.shape[2] > 1:
        traces["x0x1"] = x[..., 0] * x[..., 1]
        exact["x0x1"] = w @ (means[:, 0] * means[:, 1] + cov[0, 1])
    return traces, exact


@pytest.mark.parametrize("schedule", ["sequential", "chromatic", "block"])
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_gaussian_bernoulli_moments(schedule, beta):
    model = rbm_like(pe.Gaussian(3, sigma=[0.6, 1.0, 1.4]), pe.Binary(2), seed=0, scale=0.8)
    sampler = pe.GibbsSampler(model, n_chains=64, schedule=schedule, beta=beta, rng=11)
    out = sampler.sample(400, burn_in=30)
    check_moments(*gaussian_statistics(model, beta, out), f"{schedule}, beta={beta}")


@pytest.mark.parametrize("schedule", ["sequential", "chromatic"])
def test_gaussian_lateral_moments(schedule):
    model = gaussian_lateral_model()
    sampler = pe.GibbsSampler(model, n_chains=64, schedule=schedule, rng=3)
    out = sampler.sample(400, burn_in=30)
    check_moments(*gaussian_statistics(model, 1.0, out), schedule)


def rectified_exact(model):
    """Binary ``x`` enumerated; given it, each hidden unit ``h_j`` has the density
    ``exp(f_j y - u(y))`` on its domain, ``f = c + W x``, integrated by quad. Returns
    ``(weights of the x states, states, E[h | x], E[h^2 | x])``."""
    unit = model.units["h"]
    p = model.params
    xs = binary_states(model.units["x"].n)
    fields = p["c"] + xs @ p["W"].T
    lower = 0.0 if unit.kind == "relu" else -np.inf
    log_w = xs @ p["b"]
    m1, m2 = np.zeros(fields.shape), np.zeros(fields.shape)
    for k, f in enumerate(fields):
        for j in range(unit.n):
            energy = lambda y: unit.unit_energy(np.full(unit.n, y))[j]    # noqa: E731
            density = lambda y, a: y ** a * np.exp(f[j] * y - energy(y))   # noqa: E731
            z = sum(integrate.quad(density, *ends, args=(0,), epsabs=0, epsrel=1e-12)[0]
                    for ends in ((lower, 0.0), (0.0, np.inf)) if ends[0] < ends[1])
            moments = [sum(integrate.quad(density, *ends, args=(a,), epsabs=0,
                                          epsrel=1e-12)[0]
                           for ends in ((lower, 0.0), (0.0, np.inf)) if ends[0] < ends[1]) / z
                       for a in (1, 2)]
            log_w[k] += np.log(z)
            m1[k, j], m2[k, j] = moments
    return np.exp(log_w - logsumexp(log_w)), xs, m1, m2


@pytest.mark.parametrize("hidden", [
    pe.ReLU(2),
    pe.DReLU(2, gamma_plus=[1.0, 2.0], gamma_minus=[0.7, 1.5], theta_plus=[0.5, -0.2],
             theta_minus=[-0.5, 0.3]),
])
@pytest.mark.parametrize("schedule", ["sequential", "block"])
def test_rectified_hidden_moments(hidden, schedule):
    model = rbm_like(pe.Binary(3), hidden, seed=4, scale=0.8)
    w, xs, m1, m2 = rectified_exact(model)
    sampler = pe.GibbsSampler(model, n_chains=64, schedule=schedule, rng=5)
    out = sampler.sample(400, burn_in=30)
    x, h = out["x"], out["h"]
    traces, exact = {}, {}
    for j in range(2):
        traces[f"h{j}"], exact[f"h{j}"] = h[..., j], w @ m1[:, j]
        traces[f"h{j}^2"], exact[f"h{j}^2"] = h[..., j] ** 2, w @ m2[:, j]
        for i in range(3):
            traces[f"x{i}h{j}"] = x[..., i] * h[..., j]
            exact[f"x{i}h{j}"] = w @ (xs[:, i] * m1[:, j])
    for i in range(3):
        traces[f"x{i}"], exact[f"x{i}"] = x[..., i], w @ xs[:, i]
    check_moments(traces, exact, f"{hidden!r}, {schedule}")
    if hidden.kind == "relu":
        assert np.all(h >= 0)


def test_gaussian_marginal_passes_kolmogorov_smirnov():
    # independent chains, one draw each after burn-in, against the exact mixture CDF
    model = rbm_like(pe.Gaussian(3, sigma=[0.6, 1.0, 1.4]), pe.Binary(2), seed=0, scale=0.8)
    w, _, means, cov = gaussian_exact(model)
    sampler = pe.GibbsSampler(model, n_chains=3000, rng=2)
    sampler.run(60)
    for i in range(3):
        cdf = lambda t: w @ ndtr((np.subtract.outer(means[:, i], t) * -1)  # noqa: E731
                                 / np.sqrt(cov[i, i]))
        assert stats.kstest(sampler.state["x"][:, i], cdf).pvalue > P_FLOOR


def test_relu_marginal_passes_kolmogorov_smirnov():
    model = rbm_like(pe.Binary(3), pe.ReLU(2), seed=4, scale=0.8)
    p = model.params
    xs = binary_states(3)
    fields = p["c"] + xs @ p["W"].T
    w = rectified_exact(model)[0]
    sampler = pe.GibbsSampler(model, n_chains=3000, rng=8)
    sampler.run(60)
    for j in range(2):
        f = fields[:, j]

        def cdf(t, f=f):    # N(f, 1) truncated to [0, inf), mixed over x
            t = np.maximum(np.atleast_1d(t), 0.0)[:, None]
            return ((ndtr(t - f) - ndtr(-f)) / ndtr(f)) @ w
        assert stats.kstest(sampler.state["h"][:, j], cdf).pvalue > P_FLOOR


def test_clamped_conditionals():
    model = rbm_like(pe.Gaussian(3, sigma=[0.6, 1.0, 1.4]), pe.Binary(2), seed=0, scale=0.8)
    p, sigma = model.params, model.units["x"].sigma
    sampler = pe.GibbsSampler(model, n_chains=2000, rng=3)
    # x held (any real values): h | x ~ Bernoulli(sigmoid(c + W x)), independent draws
    x = np.array([0.3, -1.7, 2.5])
    out = sampler.sample(1, burn_in=1, clamp={"x": x})
    np.testing.assert_array_equal(out["x"][0], np.broadcast_to(x, (2000, 3)))
    prob = expit(p["c"] + p["W"] @ x)
    for j in range(2):
        assert stats.binomtest(int(out["h"][0, :, j].sum()), 2000, prob[j]).pvalue > P_FLOOR
    # h held per chain: x | h ~ N(sigma^2 (b + W^T h), sigma^2), by KS per pattern
    h = np.tile([[0.0, 1.0], [1.0, 1.0]], (1000, 1))
    out = sampler.sample(1, burn_in=1, clamp={"h": h})
    for pattern in ([0.0, 1.0], [1.0, 1.0]):
        rows = (h == pattern).all(axis=1)
        mean = sigma ** 2 * (p["b"] + np.asarray(pattern) @ p["W"])
        for i in range(3):
            z = (out["x"][0, rows, i] - mean[i]) / sigma[i]
            assert stats.kstest(z, "norm").pvalue > P_FLOOR
    # one unit of x held, NaN = free: the others follow the exact conditional law
    sampler = pe.GibbsSampler(model, n_chains=64, rng=4)
    held = np.array([np.nan, 1.2, np.nan])
    out = sampler.sample(400, burn_in=30, clamp={"x": held})
    assert np.all(out["x"][..., 1] == 1.2)
    cond = pe.EnergyModel(units={"x": pe.Gaussian(2, sigma=sigma[[0, 2]]), "h": pe.Binary(2)},
                          terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                                 pe.Pairwise("h", "x", name="W")], visible=["x"])
    cond.params["b"][:] = p["b"][[0, 2]]
    cond.params["c"][:] = p["c"] + 1.2 * p["W"][:, 1]
    cond.params["W"][:] = p["W"][:, [0, 2]]
    traces, exact = gaussian_statistics(cond, 1.0, {"x": out["x"][..., [0, 2]],
                                                     "h": out["h"]})
    check_moments(traces, exact, "x1 held")


def test_parallel_tempering_samples_the_target():
    # swaps use the full energy, the Gaussian self energy included
    model = rbm_like(pe.Gaussian(3, sigma=[0.6, 1.0, 1.4]), pe.Binary(2), seed=0, scale=0.8)
    state = {"x": np.array([[0.5, -1.0, 2.0]]), "h": np.array([[1.0, 0.0]])}
    sigma = model.units["x"].sigma
    want = (-model.params["b"] @ state["x"][0] - model.params["c"] @ state["h"][0]
            - state["h"][0] @ model.params["W"] @ state["x"][0]
            + np.sum(state["x"][0] ** 2 / (2 * sigma ** 2)))
    assert model.energy(state)[0] == pytest.approx(want, rel=1e-12)
    pt = pe.ParallelTempering(model, [1.0, 0.6, 0.3], n_chains=64, rng=6)
    out = pt.sample(400, burn_in=30)
    assert pt.swap_rates.min() > 0
    check_moments(*gaussian_statistics(model, 1.0, out), "tempering")


def test_state_and_load_state_round_trip():
    model = mixed_model(2)
    sampler = pe.GibbsSampler(model, n_chains=10, rng=0)
    sampler.run(3)
    saved = sampler.get_state()
    first = sampler.run(4).state
    sampler.load_state(saved)
    again = sampler.run(4).state
    for g in model.units:
        np.testing.assert_array_equal(first[g], again[g])
    # real values in, the same values out
    x = np.random.default_rng(0).normal(size=(10, 3))
    sampler.state = {"x": x, "r": np.abs(x[:, :2])}
    np.testing.assert_array_equal(sampler.state["x"], x)
    np.testing.assert_array_equal(sampler.state["r"], np.abs(x[:, :2]))
    with pytest.raises(ValueError, match=">= 0"):
        sampler.state = {"r": -np.ones((10, 2))}
    with pytest.raises(ValueError, match="finite"):
        sampler.state = {"x": np.full((10, 3), np.inf)}
    bad = GibbsState({**saved.values, "d": np.full((10, 2), np.nan)}, saved.streams,
                        saved.beta)
    with pytest.raises(ValueError, match="finite"):
        sampler.load_state(bad)


def test_bad_clamps_name_the_group_and_the_domain():
    model = rbm_like(pe.Gaussian(3), pe.ReLU(2), seed=0, scale=0.2)
    sampler = pe.GibbsSampler(model, n_chains=4, rng=0)
    sampler.run(1, clamp={"x": [1e6, -3.0, np.nan], "h": [np.nan, 0.0]})   # fine
    with pytest.raises(ValueError, match=r"clamp\['h'\] holds -0.5 .*>= 0"):
        sampler.run(1, clamp={"h": [-0.5, 1.0]})
    with pytest.raises(ValueError, match=r"clamp\['x'\] holds inf .*finite real values"):
        sampler.run(1, clamp={"x": [np.inf, 0.0, 0.0]})


# -- users' terms over continuous groups: a Metropolis step per unit ------------------------
def users_term_model(visible, seed=0):
    """``visible`` (two continuous units) and Binary(2) hidden units with biases and W, plus
    the two users' terms above reading ``x``."""
    model = pe.EnergyModel(units={"x": visible, "h": pe.Binary(2)},
                           terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                                  pe.Pairwise("h", "x", name="W"), Quartic("x"),
                                  GatedCoupling("h", "x")], visible=["x"])
    rng = np.random.default_rng(seed)
    for name in ("b", "c", "W"):
        model.params[name][...] = 0.8 * rng.normal(size=model.params[name].shape)
    return model


def quadrature_statistics(model, beta, out, held=None):
    """Sample traces and quadrature values (``tests/reference/continuous.py``) of E[x_i],
    E[x_i^2], E[h_j], E[x_i h_j] and E[h_0 x_0 x_1]."""
    x, h = out["x"], out["h"]
    statistics = {"h0x0x1": lambda s: s["h"][:, 0] * s["x"][:, 0] * s["x"][:, 1]}
    for i in range(2):
        statistics[f"x{i}"] = lambda s, i=i: s["x"][:, i]
        statistics[f"x{i}^2"] = lambda s, i=i: s["x"][:, i] ** 2
        statistics[f"h{i}"] = lambda s, i=i: s["h"][:, i]
        for j in range(2):
            statistics[f"x{i}h{j}"] = lambda s, i=i, j=j: s["x"][:, i] * s["h"][:, j]
    traces = {name: f({"x": x.reshape(-1, 2), "h": h.reshape(-1, 2)}).reshape(x.shape[:2])
              for name, f in statistics.items()}
    exact = {name: quadrature.expectation(model, f, beta, held)
             for name, f in statistics.items()}
    if held:
        for g, i in held:           # a held unit's statistics are constants
            for name in [n for n in traces if f"{g}{i}" in n]:
                del traces[name], exact[name]
    return traces, exact


@pytest.mark.parametrize("visible, schedule, beta", [
    (pe.Gaussian(2, sigma=[0.8, 1.3]), "sequential", 1.0),
    (pe.Gaussian(2, sigma=[0.8, 1.3]), "chromatic", 0.5),
    (pe.Gaussian(2, sigma=[0.8, 1.3]), "block", 1.0),
    (pe.ReLU(2), "chromatic", 1.0),
    (pe.DReLU(2, gamma_plus=[1.0, 2.0], gamma_minus=1.5, theta_plus=0.3, theta_minus=-0.2),
     "sequential", 1.0),
])
def test_users_terms_on_continuous_units_sample_the_model(visible, schedule, beta):
    """Users' energy-only terms reading continuous units (a quartic, and a coupling gated by
    a hidden unit): the Metropolis-within-Gibbs chains' moments equal quadrature's."""
    model = users_term_model(visible)
    sampler = pe.GibbsSampler(model, n_chains=64, schedule=schedule, beta=beta, rng=7)
    out = sampler.sample(400, burn_in=30)
    check_moments(*quadrature_statistics(model, beta, out), f"{visible!r}, {schedule}")
    assert 0.2 < sampler.acceptance_rate < 1.0
    if visible.kind == "relu":
        assert np.all(out["x"] >= 0)


def test_users_terms_on_continuous_units_under_clamps():
    """x_0 held (in every chain, then in half of them): the free units sample the
    conditional, by quadrature with x_0 given; the held chains keep their value."""
    model = users_term_model(pe.Gaussian(2, sigma=[0.8, 1.3]))
    sampler = pe.GibbsSampler(model, n_chains=64, rng=8)
    out = sampler.sample(400, burn_in=30, clamp={"x": [0.7, np.nan]})
    assert np.all(out["x"][..., 0] == 0.7)
    check_moments(*quadrature_statistics(model, 1.0, out, held={("x", 0): 0.7}), "clamped")

    half = np.full((64, 2), np.nan)
    half[::2, 0] = -0.4
    out = sampler.sample(200, clamp={"x": half})
    assert np.all(out["x"][:, ::2, 0] == -0.4)
    free_chains = {g: v[:, 1::2] for g, v in out.items()}
    exact_x0 = quadrature.expectation(model, lambda s: s["x"][:, 0])
    check_moments({"x0": free_chains["x"][..., 0]}, {"x0": exact_x0}, "half clamped")


def test_metropolis_steps_do_not_depend_on_the_thread_count():
    model = users_term_model(pe.Gaussian(2))
    runs = [pe.GibbsSampler(model, n_chains=40, rng=3, n_threads=t).run(20).state
            for t in (1, 2)]
    for g in runs[0]:
        np.testing.assert_array_equal(runs[0][g], runs[1][g])


def test_acceptance_rate():
    """None without Metropolis steps; exactly 1 for a users' term that is flat in the
    unit (its energy change is 0); between 0 and 1 otherwise."""
    assert pe.GibbsSampler(rbm_like(pe.Gaussian(2), pe.Binary(2)), 8, rng=0).acceptance_rate \
        is None
    model = pe.EnergyModel(units={"x": pe.Gaussian(2), "h": pe.Binary(2)},
                           terms=[pe.Pairwise("h", "x"), Quartic("x", q=0.0)], visible=["x"])
    sampler = pe.GibbsSampler(model, n_chains=8, rng=0)
    assert sampler.acceptance_rate is None
    assert sampler.run(5).acceptance_rate == 1.0
    model.params["q"][...] = 2.0
    assert 0.0 < sampler.run(20).acceptance_rate < 1.0


def test_a_users_term_with_nan_energy_is_a_value_error():
    class LogTerm(Quartic):
        def energy(self, state):
            with np.errstate(invalid="ignore"):
                return np.log(state[self.groups[0]]).sum(axis=1)

    model = pe.EnergyModel(units={"x": pe.Gaussian(2)}, terms=[LogTerm("x")])
    sampler = pe.GibbsSampler(model, n_chains=16, rng=0)
    with pytest.raises(ValueError, match=r"LogTerm changed by NaN .* continuous group 'x'"):
        sampler.run(5)


def test_pcd_gradient_of_users_terms_on_continuous_units():
    """PCD's estimate of ``d mean log P(X) / d theta`` for the users' terms' parameters,
    ``E_model[dE/dtheta] - E_data[dE/dtheta | x]``, within 5 standard errors of quadrature's
    (the errors from the statistics' exact variances over the chains and the rows)."""
    model = users_term_model(pe.Gaussian(2, sigma=[0.8, 1.3]))
    X = np.random.default_rng(1).normal(size=(2000, 2))
    grad = pe.PCD(n_chains=2000, k=20).gradient(model, X, rng=2)
    p_h0 = model.conditional("h", {"x": X, "h": np.zeros((len(X), 2))})[:, 0]
    gate = X[:, 0] * X[:, 1]
    statistics = {  # dE/dq, dE/dt: (statistic, positive phase, its variance over the rows)
        "q": (lambda s: (s["x"] ** 4).sum(axis=1), (X ** 4).sum(axis=1).mean(), 0.0),
        "t": (lambda s: -s["h"][:, 0] * s["x"][:, 0] * s["x"][:, 1], -(p_h0 * gate).mean(),
              (p_h0 * (1 - p_h0) * gate ** 2).mean()),
    }
    for name, (statistic, positive, positive_var) in statistics.items():
        mean = quadrature.expectation(model, statistic)
        var = quadrature.expectation(model, lambda s: statistic(s) ** 2) - mean ** 2
        stderr = np.sqrt((var + positive_var) / 2000)
        assert abs(grad[name] - (mean - positive)) < 5 * stderr, name
    # Training follows it: the data have heavier tails (more x^4) than the model, so q falls.
    pe.fit(model, X[:500], pe.PCD(n_chains=50), epochs=2, rng=0)
    assert model.params["q"] < 0.3 and all(np.isfinite(v).all() for v in model.params.values())


def test_refusals():
    # a precision that is not positive definite: a ValueError naming the group, at
    # construction and when a live parameter makes it so
    model = gaussian_lateral_model()
    model.params["U"][0, 1] = model.params["U"][1, 0] = 3.0
    with pytest.raises(ValueError, match=r"\['x'\].*not positive definite"):
        pe.GibbsSampler(model, n_chains=4, rng=0)
    model.params["U"][0, 1] = model.params["U"][1, 0] = 0.1
    sampler = pe.GibbsSampler(model, n_chains=4, rng=0)
    model.params["U"][0, 1] = model.params["U"][1, 0] = 3.0
    with pytest.raises(ValueError, match="not positive definite"):
        sampler.run(1)

    # cluster moves serve discrete units only, and say which
    model = rbm_like(pe.Gaussian(3), pe.Binary(2))
    with pytest.raises(TypeError, match="binary, spin, categorical"):
        pe.ClusterSampler(model, n_chains=4, rng=0)
