"""AIS: the kernel equals its numpy twin; estimates agree with exact and closed-form log Z."""
import numpy as np
import pytest
import threadpoolctl
from hypothesis import given, settings, strategies as st
from scipy.special import expit, gammaln, logsumexp

import pgm_energy as pe
from pgm_energy.ais import _estimate
from pgm_energy._chains import chain_streams
from pgm_energy.testing import models

from reference import ais as ais_twin
from reference.gibbs import xoshiro_uniform
from reference.terms import CountPenalty


def xoshiro_source(streams):
    """``uniform(n)`` for the twin: n draws per run, in unit order, from the kernel's streams."""
    return lambda n: np.stack([xoshiro_uniform(streams) for _ in range(n)], axis=1)


def random_rbm(n_visible, n_hidden, seed, scale=1.0):
    gen = np.random.default_rng(seed)
    return pe.RBM(n_visible, n_hidden, W=scale * gen.standard_normal((n_hidden, n_visible)),
                  b=gen.standard_normal(n_visible), c=gen.standard_normal(n_hidden))


# -- the kernel against its numpy twin -----------------------------------------------------
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("delta_fraction", [0.0, 0.1, 1.0])     # products, mixed, row updates
def test_kernel_equals_numpy_twin(dtype, rtol, direction, delta_fraction, monkeypatch):
    monkeypatch.setattr(pe.ais, "DELTA_FRACTION", delta_fraction)
    model, n_runs, seed = random_rbm(7, 5, 3), 13, 5          # 13 runs: a padded last block
    betas = pe.ais.sigmoid_schedule(25)
    b, c, W = model.params["b"], model.params["c"], model.params["W"]
    gen = np.random.default_rng(seed)
    if direction == "forward":
        estimate = pe.ais.log_partition(model, betas=betas, n_runs=n_runs, rng=seed,
                                        dtype=dtype, n_threads=2)
        x = (gen.random((n_runs, 7)) < expit(b)).astype(dtype)
        streams = chain_streams(gen, n_runs)
    else:
        x = np.random.default_rng(9).integers(0, 2, (n_runs, 7)).astype(dtype)
        estimate = pe.ais.reverse_log_partition(model, x, betas=betas, rng=seed, dtype=dtype,
                                                n_threads=2)
        streams, betas = chain_streams(gen, n_runs), betas[::-1]
    log_w = ais_twin.anneal_bipartite(x, W.astype(dtype), b, c, b, betas,
                                            xoshiro_source(streams[:, :n_runs]))
    np.testing.assert_allclose(estimate.log_weights, log_w, rtol=rtol, atol=rtol)


def test_twin_with_spins_matches_binary_form():
    """Spin units go through the binary form: same estimate as the exact log Z."""
    model = pe.RBM(6, 4, W=0.3 * np.random.default_rng(0).standard_normal((4, 6)),
                   b=np.linspace(-1, 1, 6), visible_units=pe.Spin, hidden_units=pe.Spin)
    estimate = pe.ais.log_partition(model, n_betas=400, n_runs=64, rng=1)
    assert abs(estimate.log_z - pe.exact.log_partition(model)) < 3 * estimate.stderr + 1e-3


# -- agreement with exact log Z on small models --------------------------------------------
@settings(max_examples=25)
@given(model=models(large_weights=False, scale=0.7), seed=st.integers(0, 2**16))
def test_small_models_agree_with_exact(model, seed):
    exact = pe.exact.log_partition(model)
    # 4 standard errors: 64 runs estimate the standard error itself only roughly (3 failed
    # one draw in about 100, as in test_bipartite_and_joint_paths_agree_with_exact)
    forward = pe.ais.log_partition(model, n_betas=300, n_runs=64, rng=seed)
    assert abs(forward.log_z - exact) < 4 * forward.stderr + 1e-6
    assert forward.stderr < 0.1         # precise, so the test above has power
    samples = pe.exact.sample(model, 64, rng=seed)
    reverse = pe.ais.reverse_log_partition(model, samples, n_betas=300, rng=seed)
    assert abs(reverse.log_z - exact) < 4 * reverse.stderr + 1e-6
    assert forward.lower <= exact <= reverse.upper


def test_bipartite_and_joint_paths_agree_with_exact():
    rbm = random_rbm(10, 8, 0)
    bm = pe.BoltzmannMachine(6, 4, rng=0, W=np.random.default_rng(1).standard_normal((4, 6)))
    for model in (rbm, bm):
        exact = pe.exact.log_partition(model)
        data = np.random.default_rng(2).integers(0, 2, (20, model.units["x"].n))
        for base in ("biases", "uniform", data):
            est = pe.ais.log_partition(model, n_betas=500, n_runs=100, rng=3, base=base)
            assert abs(est.log_z - exact) < 4 * est.stderr + 1e-6    # 3 fails 1 seed in 100
            assert abs(est.log_z - exact) < 0.05


def test_log_likelihood_agrees_with_exact():
    model = random_rbm(12, 6, 4)
    X = pe.exact.sample(model, 40, rng=0)["x"]
    samples = pe.exact.sample(model, 64, rng=1)
    est = pe.ais.log_likelihood(model, X, n_betas=400, n_runs=64, rng=0, samples=samples)
    exact = pe.exact.log_likelihood(model, X)
    assert est.values.shape == (40,)
    assert abs(est.mean - exact.mean()) < 3 * est.stderr + 1e-6
    np.testing.assert_allclose(est.values - exact, est.mean - exact.mean(), atol=1e-9)
    assert est.lower <= exact.mean() <= est.upper


# -- known answers far beyond enumeration ---------------------------------------------------
def uniform_rbm_log_z(n_visible, n_hidden, b, c, w):
    """log Z of an RBM with all biases b (visible), c (hidden) and weights w: sum over the
    number k of active hidden units, log Z = logsumexp_k [log C(n_h, k) + k c
    + n_v softplus(b + k w)]."""
    k = np.arange(n_hidden + 1)
    log_binomial = gammaln(n_hidden + 1) - gammaln(k + 1) - gammaln(n_hidden - k + 1)
    return float(logsumexp(log_binomial + k * c + n_visible * np.logaddexp(0.0, b + k * w)))


def test_uniform_rbm_closed_form():
    assert uniform_rbm_log_z(784, 500, -1.0, -1.0, 0.01) == pytest.approx(2650.8459, abs=1e-4)
    small = pe.RBM(5, 3, W=np.full((3, 5), 0.3), b=np.full(5, -0.2), c=np.full(3, 0.1))
    assert uniform_rbm_log_z(5, 3, -0.2, 0.1, 0.3) == pytest.approx(
        pe.exact.log_partition(small), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_uniform_rbm_784x500(dtype):
    model = pe.RBM(784, 500, W=np.full((500, 784), 0.01), b=np.full(784, -1.0),
                   c=np.full(500, -1.0))
    exact = uniform_rbm_log_z(784, 500, -1.0, -1.0, 0.01)
    est = pe.ais.log_partition(model, n_betas=3000, n_runs=32, rng=0, dtype=dtype)
    # The weights are heavy-tailed here (ESS ~ 8 of 32: the runs must cross from the sparse
    # to the dense mode), so the stderr is itself noisy: 4 of them hold for seeds 0..59.
    assert abs(est.log_z - exact) < 4 * est.stderr
    assert est.stderr < 1.0


def torus_edges(rows, cols):
    edges = [(r * cols + c, r * cols + (c + 1) % cols) for r in range(rows) for c in range(cols)]
    edges += [(r * cols + c, ((r + 1) % rows) * cols + c) for r in range(rows) for c in range(cols)]
    return edges


def kaufman_log_z(rows, cols, K):
    """Kaufman (1949): log Z of the rows x cols Ising torus, E = -J sum s_i s_j, K = beta J.

    Z = 1/2 (2 sinh 2K)^(rows cols / 2) sum_{i=1..4} Z_i with
    Z_1,2 = prod_{r=0}^{cols-1} 2 cosh, 2 sinh (rows gamma_{2r+1} / 2),
    Z_3,4 = prod_{r=0}^{cols-1} 2 cosh, 2 sinh (rows gamma_{2r} / 2),
    cosh gamma_l = cosh 2K coth 2K - cos(pi l / cols), and gamma_0 = 2K + log tanh K
    (negative below the critical temperature, which makes Z_4 change sign).
    Sums run in log space with signs.
    """
    l = np.arange(2 * cols)
    gamma = np.arccosh(np.cosh(2 * K) / np.tanh(2 * K) - np.cos(np.pi * l / cols))
    gamma[0] = 2 * K + np.log(np.tanh(K))
    half = rows * gamma / 2
    log_cosh = np.abs(half) + np.log1p(np.exp(-2 * np.abs(half)))      # log 2 cosh
    log_sinh = np.abs(half) + np.log1p(-np.exp(-2 * np.abs(half)))     # log 2 |sinh|
    odd, even = l[1::2], l[0::2]
    terms = [log_cosh[odd].sum(), log_sinh[odd].sum(), log_cosh[even].sum(),
             log_sinh[even].sum()]
    signs = [1.0, 1.0, 1.0, float(np.prod(np.sign(half[even])))]
    total = logsumexp(terms, b=signs)
    return float(-np.log(2) + rows * cols / 2 * np.log(2 * np.sinh(2 * K)) + total)


@pytest.mark.parametrize("rows, cols, K", [(4, 4, 0.44), (4, 4, 0.9), (4, 6, 0.3), (6, 4, 0.6)])
def test_kaufman_formula_against_exact(rows, cols, K):
    model = pe.Ising(torus_edges(rows, cols), couplings=K)
    assert kaufman_log_z(rows, cols, K) == pytest.approx(pe.exact.log_partition(model),
                                                         rel=1e-10)


def test_ising_16x16_torus_near_critical_point():
    K = 0.44                                                 # K_c = 0.4407
    model = pe.Ising(torus_edges(16, 16), couplings=K)
    exact = kaufman_log_z(16, 16, K)
    est = pe.ais.log_partition(model, n_betas=6000, n_runs=64, rng=0)
    assert abs(est.log_z - exact) < 3 * est.stderr + 0.02
    assert est.stderr < 0.1


# -- reproducibility --------------------------------------------------------------------------
@pytest.mark.parametrize("model, dtype", [(random_rbm(30, 20, 1, scale=2.0), np.float64),
                                          (random_rbm(30, 20, 1, scale=2.0), np.float32),
                                          (pe.Ising(torus_edges(6, 6), couplings=0.5),
                                           np.float64)])
def test_same_seed_same_estimate_whatever_the_thread_count(model, dtype):
    runs = []
    for n_threads in (1, 2, 2):
        with threadpoolctl.threadpool_limits(n_threads):
            runs.append(pe.ais.log_partition(model, n_betas=50, n_runs=70, rng=42,
                                             dtype=dtype, n_threads=n_threads))
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0].log_weights, other.log_weights)
    different = pe.ais.log_partition(model, n_betas=50, n_runs=70, rng=43, dtype=dtype)
    assert not np.array_equal(different.log_weights, runs[0].log_weights)


# -- the estimate -------------------------------------------------------------------------------
def test_estimate_is_stable_and_matches_direct_formulas():
    log_w = np.random.default_rng(0).normal(size=50)
    est = _estimate(log_w + 1e4, 2.0, "forward", 10)
    w = np.exp(log_w)
    assert est.log_z == pytest.approx(2.0 + 1e4 + np.log(w.mean()), rel=1e-14)
    assert est.stderr == pytest.approx(w.std(ddof=1) / np.sqrt(50) / w.mean(), rel=1e-12)
    assert est.ess == pytest.approx(w.sum() ** 2 / (w ** 2).sum(), rel=1e-12)
    assert est.lower == pytest.approx(est.log_z + np.log(0.05)) and est.upper is None
    reverse = _estimate(log_w, 2.0, "reverse", 10)
    assert reverse.log_z == pytest.approx(2.0 - np.log(w.mean()))
    assert reverse.upper == pytest.approx(reverse.log_z - np.log(0.05)) and reverse.lower is None
    flat = _estimate(np.full(8, -3.0), 0.0, "forward", 10)
    assert flat.ess == pytest.approx(8) and flat.stderr == 0.0
    assert _estimate(np.zeros(1), 0.0, "forward", 10).stderr == np.inf


def test_sigmoid_schedule():
    betas = pe.ais.sigmoid_schedule(101)
    assert betas[0] == 0.0 and betas[-1] == 1.0 and np.all(np.diff(betas) > 0)
    np.testing.assert_allclose(betas, 1.0 - betas[::-1], atol=1e-15)     # symmetric
    assert np.diff(betas)[0] < np.diff(betas)[50]                        # dense at the ends


# -- the monitor ----------------------------------------------------------------------------------
def test_monitor_appends_estimates():
    model = random_rbm(8, 4, 0)
    X = pe.exact.sample(model, 20, rng=0)["x"]
    monitor = pe.ais.AISMonitor(n_betas=100, n_runs=16, every=2, rng=0, X=X)
    history = {}
    for epoch in range(1, 6):
        monitor(model, epoch, history)
    assert history["ais_epoch"] == [2, 4]
    assert len(history["ais_log_z"]) == len(history["ais_log_likelihood"]) == 2
    assert history["ais_log_z"][0] != history["ais_log_z"][1]       # fresh draws each time
    assert abs(history["ais_log_z"][0] - pe.exact.log_partition(model)) < 0.1
    bare = {}
    pe.ais.AISMonitor(n_betas=10, n_runs=4, rng=0)(model, 0, bare)
    assert set(bare) == {"ais_epoch", "ais_log_z", "ais_log_z_stderr"}


# -- bad input --------------------------------------------------------------------------------
def test_bad_input():
    model = random_rbm(5, 3, 0)
    with pytest.raises(ValueError, match="n_betas"):
        pe.ais.log_partition(model, n_betas=1)
    with pytest.raises(ValueError, match="n_runs"):
        pe.ais.log_partition(model, n_runs=0)
    with pytest.raises(TypeError, match="n_runs"):
        pe.ais.log_partition(model, n_runs=2.5)
    with pytest.raises(TypeError, match="n_betas"):
        pe.ais.log_partition(model, n_betas=True)
    with pytest.raises(ValueError, match="betas"):
        pe.ais.log_partition(model, betas=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ValueError, match="betas"):
        pe.ais.log_partition(model, betas=[0.1, 1.0])
    with pytest.raises(ValueError, match="not both"):
        pe.ais.log_partition(model, n_betas=10, betas=[0.0, 1.0])
    with pytest.raises(ValueError, match="base"):
        pe.ais.log_partition(model, base="data")
    with pytest.raises(ValueError, match="shape"):
        pe.ais.log_partition(model, base=np.zeros((4, 3)))
    with pytest.raises(ValueError):
        pe.ais.log_partition(model, base=np.full((4, 5), 2.0))         # not binary
    with pytest.raises(TypeError, match="dtype"):
        pe.ais.log_partition(model, dtype=np.int64)
    with pytest.raises(ValueError, match="float32"):
        pe.ais.log_partition(pe.Ising(torus_edges(3, 3)), dtype=np.float32)
    with pytest.raises(TypeError, match="EnergyModel"):
        pe.ais.log_partition("model")
    with pytest.raises(ValueError, match="n_threads"):
        pe.ais.log_partition(model, n_threads=0)
    bm = pe.BoltzmannMachine(4, 2, rng=0)
    with pytest.raises(TypeError, match="groups"):
        pe.ais.reverse_log_partition(bm, np.zeros((3, 4)))             # hidden units missing
    with pytest.raises(ValueError, match="at least one"):
        pe.ais.reverse_log_partition(model, np.zeros((0, 5)))
    with pytest.raises(ValueError, match="every"):
        pe.ais.AISMonitor(every=0)


def test_terms_without_compiled_form_are_annealed_on_the_joint_state():
    """A user term (energy/energy_grad only) goes through the joint path, tempered by beta."""
    rng = np.random.default_rng(3)
    model = pe.EnergyModel(units={"x": 6, "h": 3},
                           terms=[pe.Bias("x", value=0.5 * rng.normal(size=6)),
                                  pe.Pairwise("h", "x", value=rng.normal(size=(3, 6))),
                                  CountPenalty("x", 2, theta=0.4)],
                           visible=["x"])
    estimate = pe.ais.log_partition(model, n_betas=300, n_runs=200, rng=1)
    exact = pe.exact.log_partition(model)
    assert abs(estimate.log_z - exact) < max(3 * estimate.stderr, 0.02)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_parameters_are_refused(value):
    model = random_rbm(5, 3, 0)
    model.params["W"][1, 2] = value
    with pytest.raises(ValueError):
        pe.ais.log_partition(model)
    with pytest.raises(ValueError):
        pe.ais.log_likelihood(model, np.zeros((2, 5)))
