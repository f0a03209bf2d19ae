"""pgm_energy.sklearn.BernoulliRBM: scikit-learn's estimator checks, agreement with
pgm_energy's own functions and scikit-learn's formulas, and the digits pipeline."""
import pickle
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from scipy.special import expit  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import DataConversionWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import BernoulliRBM as SklearnRBM  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import pgm_energy as pe  # noqa: E402
from pgm_energy.sklearn import BernoulliRBM  # noqa: E402


def grey_data(n=60, n_features=6, seed=0):
    return np.random.default_rng(seed).random((n, n_features))


def binary_data(n=60, n_features=6, seed=0):
    return (grey_data(n, n_features, seed) < 0.3).astype(float)


@pytest.fixture(scope="module")
def fitted():
    return BernoulliRBM(n_components=4, n_iter=5, learning_rate=0.1, random_state=0).fit(
        binary_data())


# -- scikit-learn's own checks ----------------------------------------------------------------
@parametrize_with_checks([BernoulliRBM(n_components=8, n_iter=3, random_state=0),
                          BernoulliRBM(n_components=8, n_iter=3, random_state=0,
                                       binarize="sample"),
                          BernoulliRBM(n_components=8, n_iter=3, random_state=0,
                                       binarize="threshold", momentum=0.5)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_import_pgm_energy_does_not_import_sklearn():
    code = "import sys, pgm_energy\nassert 'sklearn' not in sys.modules\n"
    # Run next to the package the tests import (the installed one, or the in-place build),
    # not in the source tree, whose package has no compiled kernels.
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=pathlib.Path(pe.__file__).resolve().parents[1])


def test_defaults_match_scikit_learn():
    ours, theirs = BernoulliRBM().get_params(), SklearnRBM().get_params()
    assert {k: ours[k] for k in theirs} == theirs


# -- agreement with the model and with scikit-learn's formulas ---------------------------------
def test_attributes_are_live_views_of_the_model(fitted):
    model = fitted.model_
    assert isinstance(model, pe.EnergyModel)
    assert fitted.components_ is model.params["W"]
    assert fitted.intercept_hidden_ is model.params["c"]
    assert fitted.intercept_visible_ is model.params["b"]
    assert fitted.components_.shape == (4, 6) and fitted.n_features_in_ == 6
    clone = pickle.loads(pickle.dumps(fitted))
    clone.components_ = np.zeros((4, 6))
    np.testing.assert_array_equal(clone.model_.params["W"], 0.0)
    with pytest.raises(ValueError, match="shape"):
        clone.intercept_hidden_ = np.zeros(5)
    clone.intercept_visible_ = np.ones(6)
    np.testing.assert_array_equal(clone.model_.params["b"], 1.0)


def test_transform_and_free_energy_equal_the_model(fitted):
    X = binary_data(seed=1)
    H = np.zeros((len(X), 4))
    np.testing.assert_allclose(fitted.transform(X),
                               fitted.model_.conditional("h", {"x": X, "h": H}), rtol=1e-12)
    np.testing.assert_allclose(fitted.free_energy(X), fitted.model_.free_energy(X),
                               rtol=1e-12)
    grey = grey_data(seed=2)
    np.testing.assert_allclose(
        fitted.transform(grey),
        expit(grey @ fitted.components_.T + fitted.intercept_hidden_), rtol=1e-12)


def test_score_samples_is_the_full_pseudo_log_likelihood(fitted):
    X = binary_data(seed=3)
    scores = fitted.score_samples(X)
    assert scores.shape == (len(X),) and np.all(scores < 0)
    assert scores.mean() == pytest.approx(
        pe.learning.pseudo_log_likelihood(fitted.model_, X), rel=1e-12)


@pytest.mark.parametrize("data", [binary_data, grey_data])
def test_score_samples_is_the_mean_of_scikit_learns_estimate(fitted, data):
    """scikit-learn scores n * log sigmoid(F(x^(i)) - F(x)) for one random unit i; its mean
    over i is our score, on binary and on grey inputs."""
    X = data(seed=4)
    theirs = SklearnRBM(n_components=4)
    theirs.components_ = fitted.components_.copy()
    theirs.intercept_hidden_ = fitted.intercept_hidden_.copy()
    theirs.intercept_visible_ = fitted.intercept_visible_.copy()
    free = theirs._free_energy(X)
    per_unit = []
    for i in range(X.shape[1]):
        flipped = X.copy()
        flipped[:, i] = 1 - flipped[:, i]
        per_unit.append(-X.shape[1] * np.logaddexp(0, -(theirs._free_energy(flipped) - free)))
    np.testing.assert_allclose(fitted.score_samples(X), np.mean(per_unit, axis=0), rtol=1e-10)
    np.testing.assert_allclose(fitted.transform(X), theirs.transform(X), rtol=1e-12)


def test_gibbs_step_has_the_exact_transition_law():
    """P(v' | v) = sum_h P(h | v) P(v' | h); 20000 steps from one state, every outcome within
    5 standard errors."""
    W = np.array([[1.5, -1.0, 0.5], [-0.5, 2.0, 1.0]])
    b, c = np.array([0.2, -0.3, 0.1]), np.array([-0.4, 0.3])
    rbm = BernoulliRBM(n_components=2, n_iter=0, random_state=0).fit(np.zeros((2, 3)))
    rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_ = W, b, c
    v = np.array([1.0, 0.0, 1.0])
    states = np.array([[(s >> k) & 1 for k in range(3)] for s in range(8)], float)
    hiddens = np.array([[(s >> k) & 1 for k in range(2)] for s in range(4)], float)
    p_h = expit(W @ v + c)
    law = np.zeros(8)
    for h in hiddens:
        weight = np.prod(np.where(h == 1, p_h, 1 - p_h))
        p_v = expit(h @ W + b)
        law += weight * np.prod(np.where(states == 1, p_v, 1 - p_v), axis=1)
    n = 20000
    out = rbm.gibbs(np.tile(v, (n, 1)))
    assert out.dtype == bool and out.shape == (n, 3)
    counts = np.bincount(out @ (1 << np.arange(3)), minlength=8)
    assert np.all(np.abs(counts - n * law) <= 5 * np.sqrt(n * law * (1 - law)) + 1)


def test_h_samples_are_the_chains_hidden_states(fitted):
    assert fitted.h_samples_.shape == (10, 4)
    assert set(np.unique(fitted.h_samples_)) <= {0.0, 1.0}
    rbm = BernoulliRBM(n_components=3, n_chains=7, random_state=0).fit(binary_data())
    assert rbm.h_samples_.shape == (7, 3)
    with pytest.raises(AttributeError, match="h_samples_"):
        BernoulliRBM(n_iter=0).fit(binary_data()).h_samples_


def test_model_works_with_the_rest_of_pgm_energy(fitted):
    X = binary_data(seed=5)
    log_p = pe.exact.log_likelihood(fitted.model_, X)
    np.testing.assert_allclose(log_p, -fitted.free_energy(X)
                               - pe.exact.log_partition(fitted.model_), rtol=1e-10)


# -- fitting -----------------------------------------------------------------------------------
def test_fit_is_reproducible_and_equals_repeated_partial_fit():
    X = grey_data()
    a = BernoulliRBM(n_components=5, n_iter=4, momentum=0.5, random_state=3).fit(X)
    b = BernoulliRBM(n_components=5, n_iter=4, momentum=0.5, random_state=3).fit(X)
    c = BernoulliRBM(n_components=5, momentum=0.5, random_state=3)
    for _ in range(4):
        c.partial_fit(X)
    for other in (b, c):
        np.testing.assert_array_equal(a.components_, other.components_)
        np.testing.assert_array_equal(a.intercept_visible_, other.intercept_visible_)
        np.testing.assert_array_equal(a.h_samples_, other.h_samples_)
    d = BernoulliRBM(n_components=5, n_iter=4, momentum=0.5, random_state=4).fit(X)
    assert not np.array_equal(a.components_, d.components_)


@pytest.mark.parametrize("random_state", [None, 7, np.random.RandomState(7),
                                          np.random.default_rng(7)])
def test_random_state_kinds(random_state):
    rbm = BernoulliRBM(n_components=3, n_iter=1, random_state=random_state).fit(grey_data())
    assert isinstance(rbm.random_state_, np.random.Generator)


def test_threshold_equals_fitting_thresholded_data():
    X = grey_data()
    a = BernoulliRBM(n_components=4, n_iter=3, random_state=0, binarize="threshold").fit(X)
    b = BernoulliRBM(n_components=4, n_iter=3, random_state=0).fit((X >= 0.5).astype(float))
    np.testing.assert_array_equal(a.components_, b.components_)


@pytest.mark.parametrize("binarize, low, high", [(None, 0.7, 0.9), ("sample", 0.7, 0.9),
                                                 ("threshold", 0.95, 1.0)])
def test_grey_levels_are_read_as_binarize_says(binarize, low, high):
    """Pixels all at 0.8: read as expectations or sampled, the model's visible marginals
    approach 0.8; thresholded, the data are all ones."""
    X = np.full((200, 4), 0.8)
    rbm = BernoulliRBM(n_components=2, n_iter=30, random_state=0, binarize=binarize).fit(X)
    marginals = pe.exact.marginals(rbm.model_)["x"]
    assert np.all((marginals > low) & (marginals < high)), marginals


def test_expected_data_accepts_only_the_unit_interval():
    model = pe.RBM(3, 2)
    model.as_state(np.array([[0.0, 0.25, 1.0]]), ["x"], expectations=True)
    for bad in ([[0.5, 1.5, 0.0]], [[-0.1, 0.5, 0.0]], [[np.nan, 0.5, 0.0]]):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            model.as_state(np.array(bad), ["x"], expectations=True)


@pytest.mark.parametrize("binarize", [None, "sample"])
def test_values_outside_unit_interval_are_clipped_with_a_warning(binarize):
    X = grey_data() * 2.0
    with pytest.warns(DataConversionWarning, match="clipped"):
        a = BernoulliRBM(n_components=3, n_iter=2, random_state=0, binarize=binarize).fit(X)
    b = BernoulliRBM(n_components=3, n_iter=2, random_state=0, binarize=binarize).fit(
        np.clip(X, 0, 1))
    np.testing.assert_array_equal(a.components_, b.components_)


def test_sparse_input_equals_dense():
    sparse = pytest.importorskip("scipy.sparse")
    X = binary_data()
    a = BernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(X)
    b = BernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(sparse.csr_matrix(X))
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.transform(X), b.transform(sparse.csr_matrix(X)))


def test_verbose_reports_each_epoch(capsys):
    BernoulliRBM(n_components=3, n_iter=2, verbose=1, random_state=0).fit(grey_data())
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("[BernoulliRBM] Iteration 2, pseudo-likelihood = ")


@pytest.mark.parametrize("params, error, match", [
    (dict(n_components=0), ValueError, "n_components"),
    (dict(n_components=2.5), TypeError, "n_components"),
    (dict(learning_rate=0.0), ValueError, "learning_rate"),
    (dict(learning_rate="fast"), TypeError, "learning_rate"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(n_iter=-1), ValueError, "n_iter"),
    (dict(verbose="yes"), TypeError, "verbose"),
    (dict(n_chains=0), ValueError, "n_chains"),
    (dict(k=0), ValueError, "k"),
    (dict(momentum=1.0), ValueError, "momentum"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (dict(binarize="round"), ValueError, "binarize"),
    (dict(random_state=-1), ValueError, "random_state"),
    (dict(random_state="seed"), TypeError, "random_state"),
    (dict(random_state=1.5), TypeError, "random_state"),
])
def test_bad_parameters_are_rejected_at_fit(params, error, match):
    rbm = BernoulliRBM(**params)                       # scikit-learn: no checks in __init__
    for method in (rbm.fit, rbm.partial_fit):
        with pytest.raises(error, match=match):
            method(grey_data())


def test_methods_need_a_fitted_estimator_with_the_same_features(fitted):
    rbm = BernoulliRBM()
    for method in (rbm.transform, rbm.score_samples, rbm.gibbs, rbm.free_energy):
        with pytest.raises(NotFittedError):
            method(grey_data())
    with pytest.raises(ValueError, match="features"):
        fitted.transform(grey_data(n_features=5))
    with pytest.raises(ValueError, match="features"):
        fitted.partial_fit(grey_data(n_features=5))


# -- the digits pipeline of scikit-learn's RBM example ----------------------------------------
def test_digits_pipeline_reaches_scikit_learns_accuracy():
    """The pipeline of scikit-learn's example "Restricted Boltzmann Machine features for
    digit classification", with its settings (100 components, learning rate 0.06, 10 epochs,
    then logistic regression with C = 6000), on the plain digits scaled to [0, 1] to fit in
    CI time (the example's nudged data set: docs/sklearn.md). Same settings and seeds for
    both RBMs; averaged over five seeds, ours, with either reading of grey levels, does at
    least as well as scikit-learn's."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    settings = dict(n_components=100, learning_rate=0.06, n_iter=10)

    def accuracy(rbm):
        pipeline = Pipeline([("rbm", rbm),
                             ("logistic", LogisticRegression(C=6000, solver="newton-cg"))])
        return pipeline.fit(X_train, y_train).score(X_test, y_test)

    seeds = range(5)
    start = time.perf_counter()
    theirs = np.mean([accuracy(SklearnRBM(random_state=s, **settings)) for s in seeds])
    ours = np.mean([accuracy(BernoulliRBM(random_state=s, **settings)) for s in seeds])
    sampled = np.mean([accuracy(BernoulliRBM(random_state=s, binarize="sample", **settings))
                       for s in seeds])
    print(f"digits pipeline, mean accuracy: scikit-learn {theirs:.4f}, pgm_energy {ours:.4f}, "
          f"with binarize='sample' {sampled:.4f} ({time.perf_counter() - start:.1f} s)")
    assert ours >= theirs
    assert sampled >= theirs


# -- GaussianRBM ------------------------------------------------------------------------------
from pgm_energy.sklearn import GaussianRBM  # noqa: E402


@parametrize_with_checks([GaussianRBM(n_components=4, n_iter=2, random_state=0)])
def test_gaussian_rbm_estimator_checks(estimator, check):
    check(estimator)


def test_gaussian_rbm_in_a_pipeline_on_standardised_digits():
    """StandardScaler + GaussianRBM features + logistic regression beat chance by far, and
    training raises the exact mean log density of a small model."""
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = X[:, X.std(axis=0) > 1.0]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("rbm", GaussianRBM(n_components=64, n_iter=10, learning_rate=0.005,
                                         random_state=0)),
                     ("clf", LogisticRegression(max_iter=2000))]).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.8
    small = GaussianRBM(n_components=8, n_iter=5, learning_rate=0.005, random_state=0)
    Z = StandardScaler().fit_transform(X)
    before = pe.exact.log_likelihood(GaussianRBM(n_components=8, n_iter=0, random_state=0)
                                     .fit(Z).model_, Z).mean()
    after = pe.exact.log_likelihood(small.fit(Z).model_, Z).mean()
    assert after > before
    assert small.score_samples(Z) == pytest.approx(-small.model_.free_energy(Z))
    assert small.gibbs(Z[:5]).shape == (5, Z.shape[1])
