"""Unit kinds: a group of ``n`` units sharing one domain and one single-unit conditional.

Discrete kinds (``Binary``, ``Spin``, ``Categorical``) take values in a finite set; continuous
kinds (``Gaussian``, ``ReLU``, ``DReLU``) take real values and add a self energy ``U(x)``.
Given the local field ``f = -dE/dx`` of its terms, a unit follows
``P(x) = exp(beta (f x - U(x))) / Z(f)`` (a sum over values for discrete units, an integral
for continuous ones); each kind gives ``Z``'s logarithm, the mean, and, for continuous kinds,
the variance and an inverse-CDF draw.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erfcx, expit, log_ndtr, ndtri, ndtri_exp

from ._checks import positive_int

__all__ = ["UnitGroup", "Binary", "Spin", "Categorical", "ContinuousUnits", "Gaussian", "ReLU",
           "DReLU", "as_unit_group", "UNIT_REGISTRY"]

#: Largest number of values of a categorical unit (the Gibbs kernels keep one field per value
#: and chain lane on the stack).
MAX_CATEGORIES = 1024

#: Unit group classes by name, for loading saved models without executing code.
UNIT_REGISTRY: dict[str, type] = {}


class UnitGroup:
    """A group of ``n`` discrete units sharing one domain.

    Subclasses fix ``values`` (the allowed values, sorted) and ``kind`` (a short name).
    In the flat graph and in the terms' parameters a unit is represented by its *features*:
    the value itself for binary and spin units (one slot each), the one-hot vector of its
    value for categorical units (``k`` slots each); ``width`` is the number of slots of the
    group and ``feature_shape`` the shape a bias over the group has.
    """

    values: tuple = ()
    kind: str = ""
    #: Real-valued units (``ContinuousUnits``): no finite set of values.
    continuous: bool = False
    #: A slot holds ``low + scale * bit`` with ``bit`` in {0, 1}: the kernels and the exact
    #: engine work on bits, the terms on values (``bit = (value - low) / scale``).
    low: float = 0.0
    scale: float = 1.0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        UNIT_REGISTRY[cls.__name__] = cls

    def __init__(self, n: int):
        self.n = positive_int(n, f"{type(self).__name__}(n): n")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.n == other.n

    def config(self) -> dict:
        """Constructor arguments that rebuild this group."""
        return {"n": self.n}

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.n))

    @property
    def width(self) -> int:
        """Number of flat-graph slots of the group (``n``, or ``n k`` for categorical)."""
        return self.n

    @property
    def feature_shape(self) -> tuple:
        """Shape of the group's features per sample: ``(n,)``, or ``(n, k)`` one-hot."""
        return (self.n,)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Features of native values ``(batch, n)``: ``(batch, width)`` float64."""
        return np.asarray(values, dtype=np.float64)

    def decode(self, slots: np.ndarray) -> np.ndarray:
        """Native values ``(batch, n)`` from features ``(batch, width)``."""
        return np.asarray(slots, dtype=np.float64)

    # -- the single-unit conditional ----------------------------------------------------
    # Given the local fields ``f = -dE/d(feature)`` of some of the group's units (``m``
    # units, ``(..., m * width // n)`` slot fields), a unit's features ``phi`` follow
    # ``P(phi) = exp(beta f.phi) / Z(f)``, independently of each other.
    def mean(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """``E[phi | f]`` per slot, the shape of ``field``.

        Two-valued units: ``low + scale * sigmoid(beta * scale * f)`` (sigmoid for binary,
        tanh for spins).
        """
        return self.low + self.scale * _sigmoid(beta * self.scale * np.asarray(field))

    def log_normaliser(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """``log Z(f) = log sum_phi exp(beta f.phi)`` per unit, shape ``(..., m)``.

        Two-valued units: ``beta f low + softplus(beta * scale * f)``.
        """
        z = beta * np.asarray(field, dtype=np.float64)
        return z * self.low + np.logaddexp(0.0, self.scale * z)

    def self_energy(self, values: np.ndarray) -> np.ndarray:
        """Energy a unit kind adds on its own, per sample, for values ``(batch, n)``: 0 for
        discrete units (a continuous kind adds e.g. ``sum_i x_i^2 / (2 sigma_i^2)``)."""
        return np.zeros(np.shape(values)[0])

    def check(self, what: str) -> None:
        """Raise ``ValueError`` if the kind's own parameters are invalid (none here)."""

    def validate_mean(self, values: np.ndarray, what: str) -> None:
        """Raise ``ValueError`` unless ``values`` can be expected values (grey levels) of the
        units: each in ``[min(values), max(values)]`` of the domain."""
        low, high = self.values[0], self.values[-1]
        if not np.all((values >= low) & (values <= high)):
            raise ValueError(f"{what}: expected values of {self.kind} units lie in "
                             f"[{low}, {high}]")

    def validate(self, values: np.ndarray, what: str) -> None:
        """Raise ``ValueError`` unless every entry of ``values`` lies in the domain."""
        ok = np.isin(values, self.values)
        if not ok.all():
            bad = values[~ok].flat[0]
            raise ValueError(
                f"{what}: {self.kind} units take values {list(self.values)}, got {bad!r}"
            )


class Binary(UnitGroup):
    """``n`` binary units with values in {0, 1}.

    For a binary unit with local field ``f = -dE/dx_i``,
    ``P(x_i = 1 | rest) = sigmoid(beta * f)``.
    """

    values = (0, 1)
    kind = "binary"


class Spin(UnitGroup):
    """``n`` Ising spins with values in {-1, +1}.

    For a spin with local field ``f = -dE/ds_i``,
    ``P(s_i = +1 | rest) = sigmoid(2 * beta * f)``.
    """

    values = (-1, 1)
    kind = "spin"
    low = -1.0
    scale = 2.0


class Categorical(UnitGroup):
    """``n`` categorical units, each with a value in {0, 1, ..., k-1}.

    A categorical unit enters pairwise terms as the one-hot vector of its value, so a bias
    over the group has shape ``(n, k)`` (``E = -sum_i b[i, x_i]``), ``Pairwise("h", "x")``
    with categorical ``h`` and binary ``x`` has ``W`` of shape ``(n_h, k, n_x)``
    (``E = -sum_ij W[i, h_i, j] x_j``), and a lateral over the group has shape
    ``(n, k, n, k)`` (symmetric, zero on the blocks ``[i, :, i, :]``). Given the rest, a unit
    takes value ``v`` with probability ``softmax_v(beta f_iv)``, where ``f_iv`` is the local
    field of its slot ``v``.

    Parameters
    ----------
    n : int
        Number of units.
    k : int
        Number of values of each unit (2 <= k <= 1024).

    Examples
    --------
    >>> import pgm_energy as pe
    >>> pe.Categorical(3, 4).encode([[0, 3, 1]]).reshape(3, 4)
    array([[1., 0., 0., 0.],
           [0., 0., 0., 1.],
           [0., 1., 0., 0.]])
    """

    kind = "categorical"

    def __init__(self, n: int, k: int):
        super().__init__(n)
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"Categorical(n, k): k must be an int, got {k!r}")
        if not 2 <= k <= MAX_CATEGORIES:
            raise ValueError(f"Categorical(n, k): k must lie in [2, {MAX_CATEGORIES}], got {k}")
        self.k = int(k)
        self.values = tuple(range(self.k))

    def __repr__(self) -> str:
        return f"Categorical({self.n}, {self.k})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and (self.n, self.k) == (other.n, other.k)

    def __hash__(self) -> int:
        return hash(("Categorical", self.n, self.k))

    def config(self) -> dict:
        return {"n": self.n, "k": self.k}

    @property
    def width(self) -> int:
        return self.n * self.k

    @property
    def feature_shape(self) -> tuple:
        return (self.n, self.k)

    def encode(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        self.validate(values, "Categorical.encode")
        onehot = values[..., None] == np.arange(self.k)
        return onehot.reshape(*values.shape[:-1], self.width).astype(np.float64)

    def decode(self, slots: np.ndarray) -> np.ndarray:
        slots = np.asarray(slots)
        return slots.reshape(*slots.shape[:-1], self.n, self.k).argmax(axis=-1).astype(np.float64)

    def validate_mean(self, values: np.ndarray, what: str) -> None:
        """Expected states of categorical units are one-hot means, not values: refused."""
        raise ValueError(f"{what}: categorical units take values {list(self.values)}; "
                         "expected states (grey levels) apply to binary and spin units only")

    def mean(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """One-hot mean ``softmax_v(beta f_iv)`` per slot (the shape of ``field``)."""
        z = beta * np.asarray(field, dtype=np.float64)
        z = z.reshape(*z.shape[:-1], -1, self.k)
        return np.exp(z - _log_sum_exp(z)[..., None]).reshape(np.shape(field))

    def log_normaliser(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """``log sum_v exp(beta f_iv)`` per unit, shape ``(..., m)``."""
        z = beta * np.asarray(field, dtype=np.float64)
        return _log_sum_exp(z.reshape(*z.shape[:-1], -1, self.k))


class ContinuousUnits(UnitGroup):
    """A group of ``n`` real-valued units with a self energy ``U(x) = sum_i u_i(x_i)``.

    A continuous unit is one slot holding its value. Given its local field
    ``f = -dE/dx`` (the energy of the terms, without ``U``), it follows the density
    ``p(x) = exp(beta (f x - u(x))) / Z(f)`` on its domain. Subclasses give ``u`` and
    ``log Z``, the mean and variance of ``p``, and its inverse CDF; per-unit parameters are
    float64 arrays of shape ``(n,)`` (live: writing them changes the model).
    """

    continuous = True
    #: Lower end of the domain (``-inf``, or 0 for rectified units).
    lower: float = -np.inf
    #: Names of the per-unit parameters (constructor arguments, arrays of shape ``(n,)``).
    param_names: tuple = ()

    def _set_params(self, **params) -> None:
        for name, value in params.items():
            arr = np.asarray(value, dtype=np.float64) if not isinstance(value, (bool, np.bool_)) \
                else None
            if arr is None or arr.ndim > 1 or (arr.ndim == 1 and arr.shape != (self.n,)):
                raise ValueError(f"{type(self).__name__}: {name} must be a float or an array of "
                                 f"shape ({self.n},), got {value!r}")
            setattr(self, name, np.array(np.broadcast_to(arr, (self.n,))))
        self.check(type(self).__name__)

    def _positive(self, name: str, what: str) -> None:
        value = getattr(self, name)
        if np.shape(value) != (self.n,) or not np.all(np.isfinite(value) & (value > 0)):
            raise ValueError(f"{what}: {name} must be finite and > 0 for every unit, got "
                             f"{np.asarray(value)!r}")

    def _finite(self, name: str, what: str) -> None:
        value = getattr(self, name)
        if np.shape(value) != (self.n,) or not np.all(np.isfinite(value)):
            raise ValueError(f"{what}: {name} must be finite for every unit, got "
                             f"{np.asarray(value)!r}")

    def __repr__(self) -> str:
        extra = "".join(f", {p}={_short(getattr(self, p))}" for p in self.param_names)
        return f"{type(self).__name__}({self.n}{extra})"

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.n == other.n
                and all(np.array_equal(getattr(self, p), getattr(other, p))
                        for p in self.param_names))

    __hash__ = UnitGroup.__hash__

    def config(self) -> dict:
        return {"n": self.n, **{p: getattr(self, p).tolist() for p in self.param_names}}

    def validate(self, values: np.ndarray, what: str) -> None:
        """Raise ``ValueError`` unless every entry is finite and in the domain."""
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what}: {self.kind} units take finite real values, got NaN or "
                             "inf")
        if np.any(values < self.lower):
            raise ValueError(f"{what}: {self.kind} units take values >= {self.lower:g}, got "
                             f"{values[values < self.lower].flat[0]!r}")

    validate_mean = validate

    def self_energy(self, values: np.ndarray) -> np.ndarray:
        """``U(x) = sum_i u_i(x_i)`` per sample, for values ``(batch, n)``."""
        return self.unit_energy(np.asarray(values, dtype=np.float64)).sum(axis=-1)

    # -- to implement ------------------------------------------------------------------
    def curvature(self) -> np.ndarray:
        """``min_x u_i''(x)`` per unit, shape ``(n,)``: the diagonal of the precision of the
        continuous units (the self energy grows at least as ``curvature x^2 / 2``)."""
        raise NotImplementedError

    def unit_energy(self, x: np.ndarray) -> np.ndarray:
        """``u_i(x_i)`` per unit, the shape of ``x`` (``(..., n)``)."""
        raise NotImplementedError

    def variance(self, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """``Var[x | f]`` per unit, the shape of ``field`` (``(..., n)``)."""
        raise NotImplementedError

    def quantile(self, field: np.ndarray, u: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """A monotone map of ``u`` in the open interval ``(0, 1)`` to the domain that turns a
        uniform ``u`` into a draw from ``p(x | f)`` (one uniform per unit; the compiled
        samplers draw the same way). Shapes of ``field`` and ``u`` broadcast."""
        raise NotImplementedError


class Gaussian(ContinuousUnits):
    """``n`` Gaussian units, ``u_i(x) = x^2 / (2 sigma_i^2)``.

    Given the field ``f``, ``x ~ N(sigma^2 f, sigma^2 / beta)``:
    ``log Z(f) = beta sigma^2 f^2 / 2 + log(2 pi sigma^2 / beta) / 2``. With ``Bias`` and
    ``Pairwise`` terms this is the Gaussian-Bernoulli RBM
    ``E = sum x^2/(2 sigma^2) - b.x - c.h - h^T W x``. A ``Lateral`` over Gaussian units
    makes them jointly Gaussian with precision ``diag(1/sigma^2) - 2 U`` (a lateral counts
    each pair twice); it must be positive definite for the model to have a finite ``Z``.

    Parameters
    ----------
    n : int
        Number of units.
    sigma : float or array of shape (n,)
        Standard deviations (finite, > 0); a live float64 array ``group.sigma``.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> pe.Gaussian(2, sigma=0.5).mean([[1.0, -2.0]])
    array([[ 0.25, -0.5 ]])
    """

    kind = "gaussian"
    param_names = ("sigma",)

    def __init__(self, n: int, sigma=1.0):
        super().__init__(n)
        self._set_params(sigma=sigma)

    def check(self, what: str) -> None:
        self._positive("sigma", what)

    def curvature(self):
        return 1.0 / self.sigma ** 2

    def unit_energy(self, x):
        return x ** 2 / (2.0 * self.sigma ** 2)

    def mean(self, field, beta: float = 1.0):
        """``sigma^2 f``."""
        return self.sigma ** 2 * np.asarray(field, dtype=np.float64)

    def variance(self, field, beta: float = 1.0):
        """``sigma^2 / beta``."""
        return np.broadcast_to(self.sigma ** 2 / beta, np.shape(field)).copy()

    def log_normaliser(self, field, beta: float = 1.0):
        """``beta sigma^2 f^2 / 2 + log(2 pi sigma^2 / beta) / 2``."""
        var = self.sigma ** 2
        return (beta * var * np.asarray(field, dtype=np.float64) ** 2 / 2
                + 0.5 * np.log(2 * np.pi * var / beta))

    def quantile(self, field, u, beta: float = 1.0):
        """``sigma^2 f + sigma / sqrt(beta) * ndtri(u)``."""
        return self.mean(field) + self.sigma / np.sqrt(beta) * ndtri(u)


class ReLU(ContinuousUnits):
    """``n`` rectified linear units: ``x >= 0``, ``u(x) = x^2 / 2``.

    Given the field ``f``, ``x`` is ``N(f, 1/beta)`` truncated to ``x >= 0``, and
    ``log Z(f) = T(sqrt(beta) f) - log(beta) / 2`` with
    ``T(t) = log int_0^inf exp(-y^2/2 + t y) dy`` evaluated through ``log erfcx`` for
    ``t < 0`` (finite for any ``f``: no ``exp(f^2)`` overflow, no cancellation).

    Examples
    --------
    >>> import pgm_energy as pe
    >>> round(float(pe.ReLU(1).log_normaliser([[0.0]])[0, 0]), 12)     # log sqrt(pi / 2)
    0.225791352645
    """

    kind = "relu"
    lower = 0.0

    def curvature(self):
        return np.ones(self.n)

    def unit_energy(self, x):
        return x ** 2 / 2.0

    def _t(self, field, beta):
        return np.sqrt(beta) * np.asarray(field, dtype=np.float64)

    def log_normaliser(self, field, beta: float = 1.0):
        return half_normal_log_integral(self._t(field, beta)) - 0.5 * np.log(beta)

    def mean(self, field, beta: float = 1.0):
        return truncated_moments(self._t(field, beta))[0] / np.sqrt(beta)

    def variance(self, field, beta: float = 1.0):
        return truncated_moments(self._t(field, beta))[1] / beta

    def quantile(self, field, u, beta: float = 1.0):
        return truncated_quantile(self._t(field, beta), u) / np.sqrt(beta)


class DReLU(ContinuousUnits):
    """``n`` double-rectified units (Tubiana, Cocco & Monasson 2019), real-valued with
    ``u(x) = gamma_plus x_+^2 / 2 + theta_plus x_+ + gamma_minus x_-^2 / 2 + theta_minus x_-``,
    where ``x_+ = max(x, 0)`` and ``x_- = min(x, 0)``. Given the field ``f``, ``p(x | f)`` is
    a mixture of ``N((f - theta_plus) / gamma_plus, 1 / (beta gamma_plus))`` truncated to
    ``x >= 0`` and ``N((f - theta_minus) / gamma_minus, 1 / (beta gamma_minus))`` truncated to
    ``x <= 0``, weighted by their integrals ``Z_+`` and ``Z_-``; ``log Z = logaddexp(log Z_+,
    log Z_-)`` with ``log Z_+ = T(sqrt(beta / gamma_plus) (f - theta_plus))
    - log(beta gamma_plus) / 2`` and ``log Z_- = T(-sqrt(beta / gamma_minus) (f -
    theta_minus)) - log(beta gamma_minus) / 2`` (``T`` as for :class:`ReLU`). With equal
    precisions and thresholds it is a Gaussian unit shifted by ``theta``; with
    ``theta_plus = -theta_minus > 0`` it has a gap around 0.

    Parameters
    ----------
    n : int
        Number of units.
    gamma_plus, gamma_minus : float or array of shape (n,)
        Precisions of the two halves (finite, > 0).
    theta_plus, theta_minus : float or array of shape (n,)
        Thresholds (finite).
    """

    kind = "drelu"
    param_names = ("gamma_plus", "gamma_minus", "theta_plus", "theta_minus")

    def __init__(self, n: int, gamma_plus=1.0, gamma_minus=1.0, theta_plus=0.0,
                 theta_minus=0.0):
        super().__init__(n)
        self._set_params(gamma_plus=gamma_plus, gamma_minus=gamma_minus,
                         theta_plus=theta_plus, theta_minus=theta_minus)

    def check(self, what: str) -> None:
        self._positive("gamma_plus", what)
        self._positive("gamma_minus", what)
        self._finite("theta_plus", what)
        self._finite("theta_minus", what)

    def curvature(self):
        return np.minimum(self.gamma_plus, self.gamma_minus)

    def unit_energy(self, x):
        pos, neg = np.maximum(x, 0.0), np.minimum(x, 0.0)
        return (self.gamma_plus * pos ** 2 / 2 + self.theta_plus * pos
                + self.gamma_minus * neg ** 2 / 2 + self.theta_minus * neg)

    def _halves(self, field, beta):
        """Standardised fields ``t_+, t_-``, scales ``1/sqrt(beta gamma)`` and
        ``log Z_+, log Z_-``."""
        f = np.asarray(field, dtype=np.float64)
        s_plus = 1.0 / np.sqrt(beta * self.gamma_plus)
        s_minus = 1.0 / np.sqrt(beta * self.gamma_minus)
        t_plus = beta * (f - self.theta_plus) * s_plus
        t_minus = -beta * (f - self.theta_minus) * s_minus
        log_plus = half_normal_log_integral(t_plus) + np.log(s_plus)
        log_minus = half_normal_log_integral(t_minus) + np.log(s_minus)
        return t_plus, t_minus, s_plus, s_minus, log_plus, log_minus

    def log_normaliser(self, field, beta: float = 1.0):
        return np.logaddexp(*self._halves(field, beta)[4:])

    def _mixture(self, field, beta):
        t_plus, t_minus, s_plus, s_minus, log_plus, log_minus = self._halves(field, beta)
        w_plus = expit(log_plus - log_minus)
        m_plus, v_plus = truncated_moments(t_plus)
        m_minus, v_minus = truncated_moments(t_minus)
        return (w_plus, s_plus * m_plus, -s_minus * m_minus, s_plus ** 2 * v_plus,
                s_minus ** 2 * v_minus)

    def mean(self, field, beta: float = 1.0):
        w, m_plus, m_minus, _, _ = self._mixture(field, beta)
        return w * m_plus + (1 - w) * m_minus

    def variance(self, field, beta: float = 1.0):
        """The mixture's variance: ``w (v_+ + m_+^2) + (1 - w)(v_- + m_-^2) - mean^2``."""
        w, m_plus, m_minus, v_plus, v_minus = self._mixture(field, beta)
        mean = w * m_plus + (1 - w) * m_minus
        return w * (v_plus + (m_plus - mean) ** 2) + (1 - w) * (v_minus + (m_minus - mean) ** 2)

    def quantile(self, field, u, beta: float = 1.0):
        """With ``w = P(x < 0)``: for ``u < w`` the negative half at ``u / w``, else the
        positive half at ``(1 - u) / (1 - w)`` (both in ``(0, 1]``; one uniform per unit)."""
        t_plus, t_minus, s_plus, s_minus, log_plus, log_minus = self._halves(field, beta)
        w_minus = expit(log_minus - log_plus)
        u = np.asarray(u, dtype=np.float64)
        negative = u < w_minus
        with np.errstate(divide="ignore", invalid="ignore"):
            u_minus = np.where(negative, u / w_minus, 1.0)
            u_plus = np.where(negative, 1.0, (1.0 - u) / (1.0 - w_minus))
        return np.where(negative, -s_minus * truncated_quantile(t_minus, u_minus),
                        s_plus * truncated_quantile(t_plus, u_plus))


_LOG_SQRT_PI_2 = 0.5 * np.log(np.pi / 2)
_SQRT_2_PI = np.sqrt(2 / np.pi)


def half_normal_log_integral(t: np.ndarray) -> np.ndarray:
    """``T(t) = log int_0^inf exp(-y^2/2 + t y) dy = log(sqrt(pi/2) erfcx(-t/sqrt 2))``.

    For ``t >= 0`` the form ``t^2/2 + log(sqrt(2 pi)) + log_ndtr(t)`` is used (``erfcx``
    would overflow); for ``t < 0`` the ``erfcx`` form (no cancellation between ``t^2/2`` and
    ``log_ndtr``). Finite for every finite ``t``.
    """
    t = np.asarray(t, dtype=np.float64)
    out = np.empty_like(t)
    pos = t >= 0
    out[pos] = t[pos] ** 2 / 2 + 0.5 * np.log(2 * np.pi) + log_ndtr(t[pos])
    out[~pos] = _LOG_SQRT_PI_2 + np.log(erfcx(-t[~pos] / np.sqrt(2)))
    return out


def truncated_moments(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``y ~ N(t, 1)`` truncated to ``y >= 0``.

    With the inverse Mills ratio ``lam = phi(t) / Phi(t) = sqrt(2/pi) / erfcx(-t/sqrt 2)``:
    mean ``t + lam`` and variance ``1 - lam (t + lam)``. Deep in the tail (``t < -40``) both
    differences cancel, and the asymptotic series in ``e = 1/t^2`` are used instead:
    mean ``(1/|t|)(1 - 2e + 10e^2 - 74e^3 + 706e^4)``,
    variance ``e (1 - 6e + 50e^2 - 518e^3 + 6354e^4)``.
    """
    t = np.asarray(t, dtype=np.float64)
    lam = _SQRT_2_PI / erfcx(-t / np.sqrt(2))
    mean = t + lam
    var = 1.0 - lam * mean
    tail = t < -40.0
    if np.any(tail):
        e = 1.0 / t[tail] ** 2
        mean[tail] = (1 - 2 * e + 10 * e ** 2 - 74 * e ** 3 + 706 * e ** 4) / -t[tail]
        var[tail] = e * (1 - 6 * e + 50 * e ** 2 - 518 * e ** 3 + 6354 * e ** 4)
    return mean, var


def truncated_quantile(t: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse CDF of ``y ~ N(t, 1)`` truncated to ``y >= 0``, at ``u`` in ``(0, 1]``.

    ``P(y > q) = u P(y > 0)`` gives ``q = t - ndtri_exp(log u + log_ndtr(t))``: computed in
    log space, it stays finite and exact deep in the tail (``t`` very negative), where a
    rejection sampler would stall. ``u`` is the probability of the upper tail, so ``u = 1``
    gives 0.
    """
    t = np.asarray(t, dtype=np.float64)
    q = t - ndtri_exp(np.log(u) + log_ndtr(t))
    return np.maximum(q, 0.0)


def _short(value: np.ndarray):
    return float(value[0]) if np.all(value == value[0]) else value.tolist()


def _sigmoid(z):
    return expit(z)


def _log_sum_exp(z):
    """``log sum exp`` over the last axis, stable for any finite ``z``."""
    top = z.max(axis=-1)
    return top + np.log(np.exp(z - top[..., None]).sum(axis=-1))


def as_unit_group(spec, name: str) -> UnitGroup:
    """Turn a user's unit specification (an int ``n`` or a ``UnitGroup``) into a group."""
    if isinstance(spec, UnitGroup):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, (bool, np.bool_)):
        return Binary(int(spec))
    raise TypeError(
        f"units[{name!r}] must be an int (number of binary units) or a unit group such as "
        f"pe.Binary(n), pe.Spin(n), pe.Categorical(n, k), pe.Gaussian(n), pe.ReLU(n) or "
        f"pe.DReLU(n), got {spec!r}"
    )
