"""scikit-learn estimators: :class:`BernoulliRBM` and :class:`GaussianRBM`, trained by PCD.

:class:`BernoulliRBM` is a drop-in replacement for :class:`sklearn.neural_network.BernoulliRBM`
(same constructor arguments, attributes and methods); :class:`GaussianRBM` is its counterpart
for real-valued data (Gaussian visible units). Both fit in a :class:`~sklearn.pipeline.Pipeline`
as feature extractors, while their fitted ``model_`` is an ordinary ``pe.EnergyModel`` that
every other part of pgm_energy accepts (``pe.exact``, ``pe.ais``, ``pe.plotting``,
``pe.GibbsSampler``).

scikit-learn is an optional dependency: this module is the only one that imports it, and
``import pgm_energy`` does not import this module.
"""
from __future__ import annotations

import sys
import time
import warnings
from numbers import Integral

import numpy as np
from scipy.special import expit

try:
    import scipy.sparse as _sparse
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
    from sklearn.exceptions import DataConversionWarning
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as error:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("pgm_energy.sklearn needs scikit-learn >= 1.6: "
                      "pip install 'scikit-learn>=1.6'") from error

from ._checks import nonnegative_float, nonnegative_int, positive_float, positive_int
from .learning import PCD, SGD, fit
from .model import EnergyModel
from .presets import RBM
from .terms import Bias, Pairwise
from .units import Binary, Gaussian

__all__ = ["BernoulliRBM", "GaussianRBM"]

BINARIZE = (None, "sample", "threshold")


def _generator(random_state) -> np.random.Generator:
    """None, an int seed, a ``RandomState`` (one seed drawn from it) or a ``Generator``."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, Integral):
        raise TypeError("random_state must be None, an int, a numpy RandomState or a numpy "
                        f"Generator, got {random_state!r}")
    if random_state < 0:
        raise ValueError(f"random_state must be >= 0, got {random_state}")
    return np.random.default_rng(int(random_state))


class _RBMEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What the RBM transformers share: the parameters as views of ``model_``, the PCD fit,
    ``partial_fit`` and ``transform``. Subclasses build the model (:meth:`_new_model`), read
    the training data (:meth:`_training_data`) and score samples."""

    #: Whether the positive phase takes the data as expected states (grey levels).
    _expected_data = False

    def __init__(self, n_components, *, learning_rate, batch_size, n_iter, verbose,
                 random_state, n_chains, k, momentum, weight_decay):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.n_chains = n_chains
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # -- parameters as views of the model -------------------------------------------------
    @property
    def components_(self) -> np.ndarray:
        return self.model_.params["W"]

    @components_.setter
    def components_(self, value) -> None:
        self.model_.params["W"] = value

    @property
    def intercept_hidden_(self) -> np.ndarray:
        return self.model_.params["c"]

    @intercept_hidden_.setter
    def intercept_hidden_(self, value) -> None:
        self.model_.params["c"] = value

    @property
    def intercept_visible_(self) -> np.ndarray:
        return self.model_.params["b"]

    @intercept_visible_.setter
    def intercept_visible_(self, value) -> None:
        self.model_.params["b"] = value

    @property
    def h_samples_(self) -> np.ndarray:
        sampler = self._method.sampler
        if sampler is None:
            raise AttributeError("h_samples_ exists once the chains have run (n_iter >= 1)")
        return sampler.state["h"]

    # -- fitting --------------------------------------------------------------------------
    def _check_params(self) -> None:
        positive_int(self.n_components, "n_components")
        positive_float(self.learning_rate, "learning_rate")
        positive_int(self.batch_size, "batch_size")
        nonnegative_int(self.n_iter, "n_iter")
        if not isinstance(self.verbose, (bool, np.bool_, Integral)):
            raise TypeError(f"verbose must be an int, got {self.verbose!r}")
        if self.n_chains is not None:
            positive_int(self.n_chains, "n_chains")
        positive_int(self.k, "k")
        momentum = nonnegative_float(self.momentum, "momentum")
        if momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {self.momentum!r}")
        nonnegative_float(self.weight_decay, "weight_decay")

    def _validate(self, X, reset: bool) -> np.ndarray:
        """``X`` as a dense float64 array with the fitted number of features."""
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=reset)
        return X.toarray() if _sparse.issparse(X) else X

    def _start(self, n_features: int) -> None:
        """A fresh model, chains and optimizer from ``random_state``."""
        self.random_state_ = _generator(self.random_state)
        self.model_ = self._new_model(n_features)
        self._method = PCD(n_chains=self.batch_size if self.n_chains is None else self.n_chains,
                           k=self.k)
        self._optimizer = SGD(lr=self.learning_rate, momentum=self.momentum,
                              weight_decay=self.weight_decay)
        self._n_features_out = self.n_components

    def _epoch(self, X, data, iteration: int) -> None:
        """One epoch of PCD over ``data`` (what :meth:`_training_data` made of ``X``)."""
        start = time.perf_counter()
        fit(self.model_, self._epoch_data(X, data), self._method, self._optimizer, epochs=1,
            batch_size=self.batch_size, rng=self.random_state_,
            expected_data=self._expected_data)
        if self.verbose:
            print(f"[{type(self).__name__}] Iteration {iteration}, {self._score_name} = "
                  f"{self.score_samples(X).mean():.2f}, time = "
                  f"{time.perf_counter() - start:.2f}s", file=sys.stderr)

    def _epoch_data(self, X, data) -> np.ndarray:
        return data

    def fit(self, X, y=None):
        """Fit the model to ``X`` from a fresh start: ``n_iter`` epochs of PCD.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (see the class docstring for its domain).
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._check_params()
        X = self._validate(X, reset=True)
        data = self._training_data(X)
        self._start(X.shape[1])
        for iteration in range(1, self.n_iter + 1):
            self._epoch(X, data, iteration)
        return self

    def partial_fit(self, X, y=None):
        """One epoch over ``X``, continuing the current fit (starting one if there is none).

        The model, chains, momentum and random stream carry over, so ``n_iter`` calls of
        ``partial_fit(X)`` on a fresh estimator end where ``fit(X)`` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._check_params()
        first = not hasattr(self, "model_")
        X = self._validate(X, reset=first)
        data = self._training_data(X)
        if first:
            self._start(X.shape[1])
        self._epoch(X, data, 1)
        return self

    # -- using the model --------------------------------------------------------------------
    def _fitted(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._validate(X, reset=False)

    def transform(self, X) -> np.ndarray:
        """Hidden unit means ``P(h_j = 1 | x) = sigmoid(c_j + sum_i W_ji x_i)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_components)
        """
        X = self._fitted(X)
        return expit(X @ self.components_.T + self.intercept_hidden_)


class BernoulliRBM(_RBMEstimator):
    """Restricted Boltzmann machine with binary units, as a scikit-learn transformer.

    The model is ``pe.RBM``, ``E(x, h) = -b.x - c.h - h^T W x``, trained by persistent
    contrastive divergence (Tieleman 2008) with stochastic gradient ascent on the mean
    log-likelihood, in pgm_energy's compiled PCD epoch. The update per minibatch ``B``,

        W += learning_rate * (mean_{x in B} E[h | x] x^T - mean_chains E[h | x'] x'^T),

    (and likewise ``b``, ``c``) with ``x'`` the persistent chains after ``k`` Gibbs sweeps,
    is scikit-learn's with its defaults (``n_chains = batch_size``, ``k = 1``, no momentum,
    no weight decay); the weights start as ``N(0, 0.01^2)`` draws, the biases as zeros.

    **Inputs in [0, 1].** Like scikit-learn's, the estimator takes values in [0, 1] (grey
    levels) although its visible units are binary. ``binarize`` chooses how training reads
    them:

    * ``None`` (default): as expectations of the units, scikit-learn's rule: the positive
      phase uses ``E[h | X] X^T`` at the grey levels themselves (a mean-field reading of a
      grey pixel as an average of binary ones), and the model's units, chains and samples
      stay binary;
    * ``"sample"``: every epoch draws fresh binary data ``x_i ~ Bernoulli(X_i)``, so the
      model is fitted by PCD to binary data whose pixel probabilities are ``X``;
    * ``"threshold"``: ``x_i = [X_i >= 0.5]``, once.

    On scikit-learn's digits example (the RBM-features pipeline, nudged digits) the default
    gives the best classification accuracy, on par with scikit-learn's ``BernoulliRBM``, and
    ``"sample"`` and ``"threshold"`` one and two points less; on the smaller plain digits,
    binarising gives one and two points more (``docs/sklearn.md``). :meth:`transform`,
    :meth:`score_samples` and :meth:`gibbs` use ``X`` as given (their formulas extend to real
    values). Values outside [0, 1] are clipped to it for training, with a
    ``DataConversionWarning``, unless ``binarize="threshold"``.

    Parameters
    ----------
    n_components : int
        Number of binary hidden units.
    learning_rate : float
        SGD step size (> 0) on the minibatch-mean gradient.
    batch_size : int
        Examples per minibatch.
    n_iter : int
        Epochs (passes over the training data).
    verbose : int
        When > 0, print the pseudo-log-likelihood after every epoch (to stderr).
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Seeds initial weights, chains, shuffles, binary draws, and :meth:`gibbs`.
    n_chains : int, optional
        Persistent chains of the negative phase (default ``batch_size``).
    k : int
        Gibbs sweeps of the chains per update.
    momentum : float
        SGD momentum in [0, 1).
    weight_decay : float
        L2 penalty: the gradient gets ``- weight_decay * theta`` (biases included).
    binarize : {None, "sample", "threshold"}
        How training reads data in [0, 1] (see above).

    Attributes
    ----------
    model_ : EnergyModel
        The trained ``pe.RBM`` (groups ``"x"``, ``"h"``; parameters ``b``, ``c``, ``W``).
    components_ : numpy.ndarray, shape (n_components, n_features)
        ``W``, a live view of ``model_.params["W"]`` (assigning it copies into the model).
    intercept_hidden_ : numpy.ndarray, shape (n_components,)
        ``c``, likewise.
    intercept_visible_ : numpy.ndarray, shape (n_features,)
        ``b``, likewise.
    h_samples_ : numpy.ndarray, shape (n_chains, n_components)
        Hidden states (0 or 1) of the persistent chains.
    random_state_ : numpy.random.Generator
        The generator of the current fit, used again by :meth:`partial_fit` and :meth:`gibbs`.
    n_features_in_ : int
    feature_names_in_ : numpy.ndarray
        Defined when ``X`` had string feature names.

    See Also
    --------
    sklearn.neural_network.BernoulliRBM : scikit-learn's implementation (NumPy).
    pgm_energy.fit : the training loop used here.

    Notes
    -----
    :meth:`score_samples` is deterministic: it sums the pseudo-log-likelihood over every
    unit, where scikit-learn draws one unit per sample and multiplies by ``n_features``
    (an unbiased but noisy estimate of the same sum).

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.sklearn import BernoulliRBM
    >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    >>> rbm = BernoulliRBM(n_components=2, random_state=0).fit(X)
    >>> rbm.transform(X).shape
    (4, 2)
    """

    def __init__(self, n_components: int = 256, *, learning_rate: float = 0.1,
                 batch_size: int = 10, n_iter: int = 10, verbose: int = 0, random_state=None,
                 n_chains: int | None = None, k: int = 1, momentum: float = 0.0,
                 weight_decay: float = 0.0, binarize: str | None = None):
        super().__init__(n_components, learning_rate=learning_rate, batch_size=batch_size,
                         n_iter=n_iter, verbose=verbose, random_state=random_state,
                         n_chains=n_chains, k=k, momentum=momentum, weight_decay=weight_decay)
        self.binarize = binarize

    _score_name = "pseudo-likelihood"

    @property
    def _expected_data(self) -> bool:
        return self.binarize is None

    def _check_params(self) -> None:
        super()._check_params()
        if self.binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {BINARIZE}, got {self.binarize!r}")

    def _new_model(self, n_features: int) -> EnergyModel:
        return RBM(n_features, self.n_components, rng=self.random_state_)

    def _training_data(self, X) -> np.ndarray:
        """``X`` clipped to [0, 1] unless ``binarize="threshold"``, with a warning when that
        changed it."""
        if self.binarize != "threshold" and (X.min(initial=0.0) < 0 or X.max(initial=0.0) > 1):
            warnings.warn(
                f"with binarize={self.binarize!r}, X holds grey levels in [0, 1]; got values "
                f"in [{X.min():.4g}, {X.max():.4g}], clipped to [0, 1] for training. Scale X "
                "(e.g. sklearn.preprocessing.MinMaxScaler) or use binarize='threshold'",
                DataConversionWarning, stacklevel=3)
            return np.clip(X, 0.0, 1.0)
        return X

    def _epoch_data(self, X, data) -> np.ndarray:
        """The epoch's data, binarised as ``binarize`` says."""
        if self.binarize == "sample":
            return (self.random_state_.random(data.shape) < data).astype(np.float64)
        if self.binarize == "threshold":
            return (X >= 0.5).astype(np.float64)
        return data

    def free_energy(self, X) -> np.ndarray:
        """``F(x) = -b.x - sum_j softplus(c_j + sum_i W_ji x_i)``, shape ``(n_samples,)``.

        For binary ``x``, ``log P(x) = -F(x) - log Z`` (``pe.exact.log_partition(model_)``
        for a small model, ``pe.ais.log_partition`` otherwise).
        """
        X = self._fitted(X)
        return -X @ self.intercept_visible_ - np.logaddexp(
            0.0, X @ self.components_.T + self.intercept_hidden_).sum(axis=1)

    def score_samples(self, X) -> np.ndarray:
        """Pseudo-log-likelihood of each sample, summed over all units.

        ``PL(x) = sum_i log P(x_i | x_-i) = sum_i log sigmoid(F(x^(i)) - F(x))`` with
        ``x^(i)`` equal to ``x`` but ``x_i`` replaced by ``1 - x_i`` (for binary ``x``, the
        other value). The same quantity as scikit-learn's, which estimates this sum from one
        random unit per sample; here it is exact and deterministic, at ``O(n_features)``
        times the cost of one free energy.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        X = self._fitted(X)
        W, b = self.components_, self.intercept_visible_
        field = X @ W.T + self.intercept_hidden_
        softplus = np.logaddexp(0.0, field).sum(axis=1)
        total = np.zeros(X.shape[0])
        for i in range(X.shape[1]):
            delta = 1.0 - 2.0 * X[:, i]             # x_i -> 1 - x_i
            flipped = np.logaddexp(0.0, field + delta[:, None] * W[:, i]).sum(axis=1)
            gap = -delta * b[i] - (flipped - softplus)      # F(x^(i)) - F(x)
            total -= np.logaddexp(0.0, -gap)
        return total

    def gibbs(self, v) -> np.ndarray:
        """One Gibbs step from ``v``: ``h ~ P(h | v)``, then ``v' ~ P(v | h)``.

        Draws from ``random_state_``. ``P(v_i = 1 | h) = sigmoid(b_i + sum_j W_ji h_j)``.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of bool, shape (n_samples, n_features)
            The new visible states (boolean, as scikit-learn returns them).
        """
        v = self._fitted(v)
        gen = self.random_state_
        W = self.components_
        h = gen.random((v.shape[0], W.shape[0])) < expit(v @ W.T + self.intercept_hidden_)
        p = expit(h @ W + self.intercept_visible_)
        return gen.random(p.shape) < p


class GaussianRBM(_RBMEstimator):
    """Gaussian-Bernoulli restricted Boltzmann machine for real-valued data, as a scikit-learn
    transformer.

    The model has Gaussian visible units and binary hidden units,

        E(x, h) = sum_i x_i^2 / (2 sigma_i^2) - b.x - c.h - h^T W x,

    so ``x | h ~ N(sigma^2 (b + W^T h), sigma^2)`` and ``P(h_j = 1 | x) = sigmoid(c_j +
    W_j x)``. It is trained by persistent contrastive divergence with SGD, as
    :class:`BernoulliRBM` is; ``sigma`` is fixed. Standardise the data first (e.g.
    ``make_pipeline(StandardScaler(), GaussianRBM(...))``): with ``sigma = 1`` the model then
    starts at the scale of the data. The learning rate of a Gaussian-Bernoulli RBM must be
    smaller than a binary one's (the visible units are unbounded), hence the default 0.01.

    Parameters
    ----------
    n_components : int
        Number of binary hidden units.
    learning_rate : float
        SGD step size (> 0) on the minibatch-mean gradient.
    batch_size : int
        Examples per minibatch.
    n_iter : int
        Epochs.
    verbose : int
        When > 0, print the mean log density up to ``log Z`` (``-F(x)``) after every epoch.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
    n_chains : int, optional
        Persistent chains (default ``batch_size``).
    k : int
        Gibbs sweeps of the chains per update.
    momentum : float
        SGD momentum in [0, 1).
    weight_decay : float
        L2 penalty on every parameter.
    sigma : float
        Standard deviation of every visible unit (> 0).

    Attributes
    ----------
    model_ : EnergyModel
        Groups ``"x"`` (``pe.Gaussian``) and ``"h"`` (``pe.Binary``); parameters ``b``, ``c``,
        ``W``: ``pe.exact`` (small ``n_components``) and ``pe.ais`` give its log density.
    components_, intercept_hidden_, intercept_visible_, h_samples_, random_state_,
    n_features_in_, feature_names_in_
        As for :class:`BernoulliRBM`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgm_energy.sklearn import GaussianRBM
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> rbm = GaussianRBM(n_components=3, n_iter=2, random_state=0).fit(X)
    >>> rbm.transform(X).shape
    (50, 3)
    """

    _score_name = "-F(x)"

    def __init__(self, n_components: int = 256, *, learning_rate: float = 0.01,
                 batch_size: int = 10, n_iter: int = 10, verbose: int = 0, random_state=None,
                 n_chains: int | None = None, k: int = 1, momentum: float = 0.0,
                 weight_decay: float = 0.0, sigma: float = 1.0):
        super().__init__(n_components, learning_rate=learning_rate, batch_size=batch_size,
                         n_iter=n_iter, verbose=verbose, random_state=random_state,
                         n_chains=n_chains, k=k, momentum=momentum, weight_decay=weight_decay)
        self.sigma = sigma

    def _check_params(self) -> None:
        super()._check_params()
        positive_float(self.sigma, "sigma")

    def _new_model(self, n_features: int) -> EnergyModel:
        model = EnergyModel(
            units={"x": Gaussian(n_features, sigma=self.sigma), "h": Binary(self.n_components)},
            terms=[Bias("x", name="b"), Bias("h", name="c"), Pairwise("h", "x", name="W")],
            visible=["x"])
        model.params["W"][...] = 0.01 * self.random_state_.standard_normal(
            (self.n_components, n_features))
        return model

    def _training_data(self, X) -> np.ndarray:
        return X

    def free_energy(self, X) -> np.ndarray:
        """``F(x) = sum_i x_i^2 / (2 sigma^2) - b.x - sum_j softplus(c_j + W_j x)``, shape
        ``(n_samples,)``; ``log p(x) = -F(x) - log Z``."""
        return self.model_.free_energy(self._fitted(X))

    def score_samples(self, X) -> np.ndarray:
        """``-F(x)``: the log density up to the constant ``log Z`` (``pe.exact.log_partition``
        of ``model_`` for a small one, ``pe.ais.log_partition`` otherwise), which is what
        compares samples; the pseudo-log-likelihood has no closed form for real values."""
        return -self.free_energy(X)

    def gibbs(self, v) -> np.ndarray:
        """One Gibbs step from ``v``: ``h ~ P(h | v)``, then ``v' ~ N(sigma^2 (b + W^T h),
        sigma^2)``, drawn from ``random_state_``.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_features)
        """
        v = self._fitted(v)
        gen = self.random_state_
        W = self.components_
        h = gen.random((v.shape[0], W.shape[0])) < expit(v @ W.T + self.intercept_hidden_)
        var = self.sigma ** 2
        mean = var * (h @ W + self.intercept_visible_)
        return mean + np.sqrt(var) * gen.standard_normal(mean.shape)
