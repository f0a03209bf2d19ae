"""Learning: estimators against the exact gradient, training to known optima, optimizers,
monitors, checkpoints and divergence."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pgm_energy as pe
from pgm_energy import learning as L
from pgm_energy.cli import bars_and_stripes
from pgm_energy.testing import models, states

from reference import exact as ref

BAS = bars_and_stripes(3)


def max_error(estimate, exact):
    return max(float(np.max(np.abs(estimate[k] - exact[k]))) for k in exact)


# -- estimators converge to the exact gradient -------------------------------------------------
@settings(max_examples=6)
@given(st.data())
def test_persistent_estimators_converge_to_the_exact_gradient(data):
    """With N chains the moments (bounded by 1) have standard error <= 1/sqrt(N): the
    estimate must be within 6/sqrt(N) of the exact gradient, entry by entry. The data rows
    are repeated N / batch times, so that a clamped-chain positive phase has N chains too."""
    model = data.draw(models(max_total=6, large_weights=False, scale=0.4))
    X = data.draw(states(model, model.visible, min_batch=2, max_batch=5))
    n = 10000
    exact = pe.exact.gradient(model, X)
    repeated = {g: np.repeat(v, n // len(v), axis=0) for g, v in X.items()}
    gibbs = L.ClampedGibbs(n_sweeps=30)
    for estimator in (L.PCD(n_chains=n, k=30, positive=gibbs),
                      L.PT([1.0, 0.6], n_chains=n, k=30, positive=gibbs)):
        got = estimator.gradient(model, repeated, rng=1)
        assert got.keys() == exact.keys()
        assert max_error(got, exact) < 6 / np.sqrt(n), type(estimator).__name__


@pytest.mark.parametrize("estimator", [
    lambda n: L.PCD(n_chains=n, k=10, move="swendsen-wang"),
    lambda n: L.PCD(n_chains=n, k=10, move="wolff"),
    lambda n: L.PT([1.0, 0.6], n_chains=n, k=10, move="swendsen-wang")],
    ids=["PCD-swendsen-wang", "PCD-wolff", "PT-swendsen-wang"])
def test_cluster_moves_in_the_negative_phase_converge_to_the_exact_gradient(estimator):
    """The negative phase moved by ``pe.ClusterSampler``: the same 6/sqrt(N) band as above,
    on an RBM with strong weights and fields."""
    gen = np.random.default_rng(3)
    model = pe.RBM(5, 3, W=gen.normal(size=(3, 5)), b=gen.normal(size=5),
                   c=gen.normal(size=3))
    X = gen.integers(0, 2, (4, 5)).astype(float)
    n = 10000
    got = estimator(n).gradient(model, np.repeat(X, n // 4, axis=0), rng=1)
    assert max_error(got, pe.exact.gradient(model, X)) < 6 / np.sqrt(n)


def test_cd_with_many_steps_converges_to_the_exact_gradient():
    """CD-k runs one chain per data row: repeat the rows to average over many chains."""
    rng = np.random.default_rng(0)
    model = pe.RBM(5, 4, W=rng.normal(size=(4, 5)), b=rng.normal(size=5))
    X = rng.integers(0, 2, (10, 5)).astype(float)
    exact = pe.exact.gradient(model, X)
    got = L.CD(k=40).gradient(model, np.repeat(X, 2000, axis=0), rng=2)
    assert max_error(got, exact) < 6 / np.sqrt(20000)


def test_clamped_chain_positive_phase_matches_the_exact_one():
    """With lateral hidden couplings the positive phase needs clamped chains."""
    rng = np.random.default_rng(1)
    model = pe.BoltzmannMachine(4, 3, rng=1)
    V = np.triu(rng.normal(size=(3, 3)), 1)
    model.params["V"][...] = V + V.T
    model.params["W"][...] = rng.normal(size=(3, 4))
    X = np.repeat(rng.integers(0, 2, (4, 4)).astype(float), 5000, axis=0)
    estimator = L.PCD(n_chains=10, positive=L.ClampedGibbs(n_sweeps=20))
    layout = estimator._bind(model, np.random.default_rng(0))
    assert not layout.hidden_independent
    rows = estimator.positive_rows(model, X, np.random.default_rng(3))
    got = L.moments_gradient(layout, rows)
    want = ref.data_expectations(model, {"x": X[::5000]})
    assert max_error(got, want) < 6 / np.sqrt(len(X))


def test_exact_gradient_estimator_is_pe_exact_gradient():
    model = pe.RBM(4, 3, rng=0)
    X = BAS[:5, :4]
    got = L.ExactGradient().gradient(model, X)
    want = pe.exact.gradient(model, X)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


# -- training to known optima -----------------------------------------------------------------
def test_exact_gradient_learns_bars_and_stripes():
    model = pe.RBM(9, 16, rng=0)
    L.fit(model, BAS, L.ExactGradient(), L.Adam(lr=0.1), epochs=300, batch_size=14, rng=0)
    assert pe.exact.log_likelihood(model, BAS).mean() > -3.1     # optimum -log 14 = -2.64


def test_pcd_learns_bars_and_stripes():
    model = pe.RBM(9, 16, rng=0)
    L.fit(model, BAS, L.PCD(n_chains=100, k=5), L.Adam(lr=L.exponential_decay(0.1, 0.997)),
          epochs=1500, batch_size=14, rng=0)
    assert pe.exact.log_likelihood(model, BAS).mean() > -3.2


def test_boltzmann_machine_with_laterals_improves():
    rng = np.random.default_rng(2)
    X = (rng.random((60, 5)) < [0.9, 0.8, 0.2, 0.5, 0.5]).astype(float)
    X[:, 4] = X[:, 3]                                   # a visible correlation U can learn
    model = pe.BoltzmannMachine(5, 3, rng=2)
    before = pe.exact.log_likelihood(model, X).mean()
    L.fit(model, X, L.PCD(n_chains=200, k=3), L.SGD(lr=0.05, momentum=0.5), epochs=60,
          batch_size=20, rng=2)
    after = pe.exact.log_likelihood(model, X).mean()
    assert after > before + 0.3
    assert model.params["U"][3, 4] > 0.2
    np.testing.assert_array_equal(model.params["V"], model.params["V"].T)


def test_fit_is_reproducible_and_uses_the_rng():
    runs = []
    for seed in (5, 5, 6):
        model = pe.RBM(9, 4, rng=0)
        L.fit(model, BAS, L.PCD(n_chains=20), epochs=3, batch_size=5, rng=seed)
        runs.append(model.params["W"].copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


# -- optimizers ---------------------------------------------------------------------------------
def test_sgd_momentum_and_penalties():
    theta = {"w": np.array([1.0, -2.0, 0.0])}
    g = {"w": np.array([0.5, 0.5, 0.5])}
    opt = L.SGD(lr=0.1, momentum=0.5, weight_decay=0.2, l1=0.1)
    first = opt.updates(theta, g, 0)["w"]
    want = 0.1 * (g["w"] - 0.2 * theta["w"] - 0.1 * np.sign(theta["w"]))
    np.testing.assert_allclose(first, want)
    np.testing.assert_allclose(opt.updates(theta, g, 0)["w"], 0.5 * want + want)
    sched = L.SGD(lr=L.exponential_decay(1.0, 0.5))
    assert sched.updates({"w": np.zeros(1)}, {"w": np.ones(1)}, 2)["w"][0] == 0.25


def test_adam_first_step_is_lr_times_sign():
    opt = L.Adam(lr=0.01)
    step = opt.updates({"w": np.zeros(3)}, {"w": np.array([3.0, -0.5, 0.0])}, 0)["w"]
    np.testing.assert_allclose(step, [0.01, -0.01, 0.0], atol=1e-8)


@pytest.mark.parametrize("make, error", [
    (lambda: L.SGD(lr=0), ValueError), (lambda: L.SGD(lr="fast"), TypeError),
    (lambda: L.SGD(momentum=1.0), ValueError), (lambda: L.SGD(weight_decay=-1), ValueError),
    (lambda: L.Adam(beta1=1.0), ValueError), (lambda: L.PCD(n_chains=0), ValueError),
    (lambda: L.CD(k=0), ValueError),
])
def test_bad_optimizer_and_estimator_arguments(make, error):
    with pytest.raises(error):
        make()


def test_bad_fit_arguments():
    model = pe.RBM(9, 4)
    with pytest.raises(ValueError, match=r"shape \(batch, 9\)"):
        L.fit(model, BAS[:, :5], epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        L.fit(model, BAS, batch_size=0)
    with pytest.raises(TypeError, match="EnergyModel"):
        L.fit("model", BAS)


# -- divergence and checkpoints ------------------------------------------------------------------
class NaNOnSecondCall(L.ExactGradient):
    """An estimator that breaks down on its second call."""

    calls = 0

    def gradient(self, model, X, rng=None):
        self.calls += 1
        grads = super().gradient(model, X)
        if self.calls == 2:
            grads["W"][0, 0] = np.nan
        return grads


def test_divergence_stops_with_a_clear_error_and_keeps_finite_parameters():
    model = pe.RBM(9, 4, rng=0)
    with pytest.raises(L.TrainingDiverged, match="epoch 2.*'W'.*Lower the learning rate"):
        L.fit(model, BAS, NaNOnSecondCall(), L.SGD(lr=0.1), epochs=3, batch_size=14, rng=0)
    after_one = pe.RBM(9, 4, rng=0)
    L.fit(after_one, BAS, L.ExactGradient(), L.SGD(lr=0.1), epochs=1, batch_size=14, rng=0)
    for name in model.params:
        np.testing.assert_array_equal(model.params[name], after_one.params[name])
    with pytest.raises(L.TrainingDiverged, match="exceeds 0.001"):
        L.fit(model, BAS, L.ExactGradient(), epochs=1, max_grad=1e-3)
    with pytest.raises(L.TrainingDiverged, match="update"):
        L.fit(model, BAS, L.ExactGradient(), L.SGD(lr=1e308, momentum=0.9), epochs=5,
              batch_size=1)


def test_save_load_round_trip(tmp_path):
    model = pe.BoltzmannMachine(4, 3, rng=0)
    path = tmp_path / "bm.npz"
    model.save(path)
    loaded = pe.load(path)
    assert loaded.visible == model.visible and list(loaded.units) == list(model.units)
    for name in model.params:
        np.testing.assert_array_equal(loaded.params[name], model.params[name])
    assert pe.exact.log_partition(loaded) == pe.exact.log_partition(model)
    ising = pe.Ising([(0, 1), (1, 2)], couplings=[0.5, -1.0], fields=[1.0, 0.0, 0.0])
    ising.save(tmp_path / "ising.npz")
    assert np.array_equal(pe.load(tmp_path / "ising.npz").terms[0].edges, ising.terms[0].edges)


def test_load_refuses_unknown_terms_and_non_model_files(tmp_path):
    np.savez(tmp_path / "junk.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a pgm_energy model"):
        pe.load(tmp_path / "junk.npz")
    arrays = pe.io.model_arrays(pe.RBM(3, 2))
    arrays["__pgm_energy__"] = np.array(str(arrays["__pgm_energy__"][()]).replace(
        '"pgm_energy.terms.linear.Bias"', '"os.system"'))
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ValueError, match="unknown term class 'os.system'"):
        pe.load(tmp_path / "evil.npz")


@pytest.mark.parametrize("method", [lambda: L.PCD(n_chains=30, k=2),
                                    lambda: L.PT([1.0, 0.5], n_chains=20),
                                    lambda: L.PT(3, beta_min=0.4, n_chains=10, k=2,
                                                 adapt=True),
                                    lambda: L.CD(k=1)])
@pytest.mark.parametrize("optimizer", [lambda: L.SGD(lr=0.05, momentum=0.9),
                                       lambda: L.Adam(lr=0.01)])
def test_resume_equals_uninterrupted(tmp_path, method, optimizer):
    whole = pe.RBM(9, 6, rng=1)
    L.fit(whole, BAS, method(), optimizer(), epochs=4, batch_size=5, rng=3)
    path = tmp_path / "run.npz"
    part = pe.RBM(9, 6, rng=1)
    L.fit(part, BAS, method(), optimizer(), epochs=2, batch_size=5, rng=3, checkpoint=path)
    resumed = pe.RBM(9, 6, rng=99)                       # other parameters: all come from disk
    history = L.fit(resumed, BAS, method(), optimizer(), epochs=4, batch_size=5, rng=3,
                    checkpoint=path, resume=True)
    for name in whole.params:
        np.testing.assert_array_equal(resumed.params[name], whole.params[name])
    assert history["epoch"] == [1, 2, 3, 4]


# -- monitors ---------------------------------------------------------------------------------------
def test_pseudo_log_likelihood_matches_brute_force_conditionals():
    rng = np.random.default_rng(4)
    model = pe.BoltzmannMachine(4, 2, rng=4)
    model.params["W"][...] = rng.normal(size=(2, 4))
    X = rng.integers(0, 2, (6, 4)).astype(float)
    want = 0.0
    for i in range(4):
        flipped = X.copy()
        flipped[:, i] = 1 - flipped[:, i]
        lp = ref.log_likelihood(model, {"x": X})
        lq = ref.log_likelihood(model, {"x": flipped})
        want += lp - np.logaddexp(lp, lq)
    assert L.pseudo_log_likelihood(model, X) == pytest.approx(want.mean(), rel=1e-10)
    # the random-unit estimate is unbiased for the same quantity
    est = np.mean([L.pseudo_log_likelihood(model, X, max_units=1, rng=s) for s in range(400)])
    assert est == pytest.approx(want.mean(), rel=0.05)


def test_monitors_and_plain_progress_lines(capsys):
    model = pe.RBM(9, 4, rng=0)
    history = L.fit(model, BAS, L.PCD(n_chains=20), epochs=2, batch_size=7, rng=0, verbose=1,
                    callbacks=[L.PseudoLogLikelihood(BAS), L.ReconstructionError(BAS),
                               L.ExactLogLikelihood(BAS)])
    assert history["epoch"] == [1, 2]
    for name in ("pseudo_log_likelihood", "reconstruction_error", "exact_log_likelihood"):
        assert len(history[name]) == 2 and np.isfinite(history[name]).all()
    assert 0 <= history["reconstruction_error"][-1] <= 9


@pytest.mark.parametrize("hidden_units", [pe.Binary, pe.Spin])
def test_compiled_epoch_equals_the_python_loop(hidden_units):
    """PCD + SGD on an RBM runs whole epochs in compiled code: same chains, same updates."""
    runs = []
    for compiled in (True, False):
        model = pe.RBM(9, 5, rng=0, hidden_units=hidden_units)
        method = L.PCD(n_chains=7, k=2)
        L.fit(model, BAS, method, L.SGD(lr=0.1, momentum=0.5, weight_decay=0.01, l1=0.001),
              epochs=3, batch_size=4, rng=1, compiled=compiled)
        runs.append((model, method.sampler.state))
    (fast, fast_chains), (slow, slow_chains) = runs
    for name in fast.params:
        np.testing.assert_allclose(fast.params[name], slow.params[name], rtol=1e-10, atol=1e-12)
    for g in fast_chains:
        np.testing.assert_array_equal(fast_chains[g], slow_chains[g])


def test_compiled_epoch_reports_divergence():
    model = pe.RBM(9, 4, rng=0)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(L.TrainingDiverged, match="epoch 1"):
        L.fit(model, BAS, L.PCD(n_chains=5), L.SGD(lr=1.0), epochs=2, batch_size=2,
              max_grad=1e-6)
    for name in before:
        np.testing.assert_array_equal(model.params[name], before[name])


def test_expected_data_in_the_positive_phase():
    """Grey levels as pixel probabilities: the compiled and Python loops agree, and only
    estimators with persistent chains accept them."""
    rng = np.random.default_rng(0)
    X = rng.random((30, 9))
    runs = []
    for compiled in (True, False):
        model = pe.RBM(9, 4, rng=0)
        L.fit(model, X, L.PCD(n_chains=6), L.SGD(lr=0.1), epochs=2, batch_size=5, rng=1,
              compiled=compiled, expected_data=True)
        runs.append(model.params["W"].copy())
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"values \[0, 1\]"):
        L.fit(pe.RBM(9, 4), X, epochs=1)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        L.fit(pe.RBM(9, 4), X + 1, epochs=1, expected_data=True)
    for method in (L.CD(), L.ExactGradient()):
        with pytest.raises(ValueError, match="expected data"):
            L.fit(pe.RBM(9, 4), X, method, epochs=1, expected_data=True)
    with pytest.raises(ValueError, match="hidden units interact"):
        L.fit(pe.BoltzmannMachine(9, 3), X, L.PCD(n_chains=4), epochs=1, expected_data=True)


# -- hardening: empty data, damaged or mismatched checkpoints, BLAS threads ------------------------
def test_fit_refuses_data_without_rows():
    model = pe.RBM(9, 4, rng=0)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match="at least one row"):
        L.fit(model, np.zeros((0, 9)), epochs=2)
    for name in before:
        np.testing.assert_array_equal(model.params[name], before[name])


@pytest.mark.parametrize("damage", ["truncated", "empty", "not a zip"])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "run.npz"
    L.fit(pe.RBM(9, 4, rng=0), BAS, L.PCD(n_chains=10), epochs=1, batch_size=7, rng=0,
          checkpoint=path)
    content = path.read_bytes()
    path.write_bytes({"truncated": content[:len(content) // 2], "empty": b"",
                      "not a zip": b"hello"}[damage])
    with pytest.raises(ValueError, match=r"checkpoint '.*run\.npz' cannot be read"):
        L.fit(pe.RBM(9, 4, rng=0), BAS, L.PCD(n_chains=10), epochs=2, batch_size=7, rng=0,
              checkpoint=path, resume=True)


@pytest.mark.parametrize("method, optimizer, match", [
    (lambda: L.PCD(n_chains=12), lambda: L.SGD(lr=0.05), r"method PCD\(n_chains=10.*n_chains=12"),
    (lambda: L.CD(), lambda: L.SGD(lr=0.05), r"method PCD\(n_chains=10.*not CD\(k=1"),
    (lambda: L.PT([1.0, 0.5], n_chains=10), lambda: L.SGD(lr=0.05), "not PT"),
    (lambda: L.PCD(n_chains=10), lambda: L.Adam(lr=0.05), r"optimizer SGD\(lr=0.05.*not Adam"),
    (lambda: L.PCD(n_chains=10), lambda: L.SGD(lr=0.05, momentum=0.9), "momentum=0.9"),
])
def test_resume_with_another_method_or_optimizer_is_refused(tmp_path, method, optimizer,
                                                             match):
    path = tmp_path / "run.npz"
    L.fit(pe.RBM(9, 4, rng=0), BAS, L.PCD(n_chains=10), L.SGD(lr=0.05), epochs=1,
          batch_size=7, rng=0, checkpoint=path)
    with pytest.raises(ValueError, match=match):
        L.fit(pe.RBM(9, 4, rng=0), BAS, method(), optimizer(), epochs=2, batch_size=7, rng=0,
              checkpoint=path, resume=True)


def test_adaptive_pt_moves_its_ladder_during_training_and_checkpoints_it(tmp_path):
    path = tmp_path / "run.npz"
    method = L.PT(4, beta_min=0.3, n_chains=10, adapt=True)
    L.fit(pe.RBM(9, 4, rng=0), BAS, method, epochs=3, batch_size=7, rng=0, checkpoint=path)
    betas = method.tempering.betas
    assert betas[0] == 1.0 and betas[-1] == 0.3 and np.all(np.diff(betas) < 0)
    assert not np.allclose(betas, 0.3 ** (np.arange(4) / 3))
    assert method.tempering.get_state().adapt_rounds == 3 * 2      # epochs x updates x k
    assert method.tempering.swap_statistics.proposed.sum() > 0     # never reset in training
    with np.load(path) as data:
        np.testing.assert_array_equal(data["method/betas"], betas)


def test_checkpoint_of_an_older_tempering_state_is_a_clear_error(tmp_path):
    path = tmp_path / "run.npz"
    L.fit(pe.RBM(9, 4, rng=0), BAS, L.PT([1.0, 0.5], n_chains=10), epochs=1, batch_size=7,
          rng=0, checkpoint=path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if not k.startswith("method/") or k in (
            "method/config", "method/betas", "method/swaps", "method/parity",
            "method/swap_rng", "method/streams", "method/beta") or k.startswith(
            "method/values/")}
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="older pgm_energy, without the walkers"):
        L.fit(pe.RBM(9, 4, rng=0), BAS, L.PT([1.0, 0.5], n_chains=10), epochs=2,
              batch_size=7, rng=0, checkpoint=path, resume=True)


@pytest.mark.parametrize("make, error, match", [
    (lambda: L.PCD(move="heat-bath"), ValueError, "move must be one of 'gibbs'"),
    (lambda: L.PT(move="heat-bath"), ValueError, "move must be one of 'gibbs'"),
    (lambda: L.PT(4), ValueError, "needs beta_min"),
    (lambda: L.PT([1.0, 0.5], beta_min=0.2), ValueError, "a sequence of betas"),
    (lambda: L.PT(adapt="yes"), TypeError, "adapt must be True or False"),
])
def test_bad_estimator_arguments_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_compiled_fit_does_not_depend_on_the_blas_thread_count():
    """The compiled epoch's products run on one BLAS thread: the same parameters whatever
    BLAS is allowed (with several BLAS threads they differed in the last bits)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X = (np.random.default_rng(0).random((200, 300)) < 0.3).astype(float)
    runs = []
    for limit in (1, 4):
        with threadpoolctl.threadpool_limits(limit, user_api="blas"):
            model = pe.RBM(300, 100, rng=0)
            L.fit(model, X, L.PCD(n_chains=100), L.SGD(lr=0.01, momentum=0.5), epochs=2,
                  batch_size=100, rng=0)
            runs.append(model.params["W"].copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_compiled_fit_hands_the_chains_back_to_the_sampler():
    """Chains taken out for compiled epochs are in the sampler when callbacks run and after
    the run, and a change callbacks make to the sampler counts."""
    seen = []

    def watch(model, epoch, history):
        seen.append(method.sampler.state["x"].copy())

    runs = []
    for callbacks in ((), (watch,)):
        model = pe.RBM(9, 5, rng=0)
        method = L.PCD(n_chains=7, k=2)
        L.fit(model, BAS, method, L.SGD(lr=0.1), epochs=3, batch_size=4, rng=1,
              callbacks=callbacks)
        runs.append((model.params["W"].copy(), method.sampler.get_state()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1].streams, runs[1][1].streams)
    np.testing.assert_array_equal(seen[-1], runs[1][1].values["x"])
    assert not np.array_equal(seen[0], seen[-1])
