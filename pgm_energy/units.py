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
from scipy.special import erfcx, expit, log_ndtr, ndtr, ndtri, ndtri_exp

from ._checks import positive_int
from .terms.base import TermParams

__all__ = ["UnitGroup", "Binary", "Spin", "Categorical", "ContinuousUnits", "Gaussian", "ReLU",
           "DReLU", "as_unit_group", "open_uniforms", "UNIT_REGISTRY"]

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
    #: Whether the kind's own parameters are trained (continuous kinds built with learn=True).
    learn: bool = False
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

    @property
    def domain(self) -> str:
        """The domain in words, for error messages: ``values [0, 1]``."""
        return f"values {list(self.values)}"

    @property
    def fill_value(self) -> float:
        """A value in the domain, standing in where a unit is free."""
        return self.values[0]

    def in_domain(self, values: np.ndarray) -> np.ndarray:
        """Whether each entry of ``values`` lies in the domain (boolean, same shape)."""
        values = np.asarray(values)
        inside = np.zeros(values.shape, bool)
        for v in self.values:              # (faster than np.isin for a few values)
            inside |= values == v
        return inside

    def validate(self, values: np.ndarray, what: str) -> None:
        """Raise ``ValueError`` unless every entry of ``values`` lies in the domain."""
        ok = self.in_domain(values)
        if not ok.all():
            bad = values[~ok].flat[0]
            raise ValueError(f"{what}: {self.kind} units take {self.domain}, got {bad!r}")


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

    def in_domain(self, values: np.ndarray) -> np.ndarray:
        """Integers in ``[0, k)``."""
        values = np.asarray(values)
        with np.errstate(invalid="ignore"):
            return (values >= 0) & (values < self.k) & (values == np.floor(values))

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
    ``log Z``, the mean and variance of ``p``, and its inverse CDF.

    Per-unit parameters (``param_names``, each of shape ``(n,)``) are stored in
    :attr:`params` in the form training moves them: a positive one (``sigma``, a precision)
    by its logarithm (``log_sigma``), so that no step can make it negative, the others
    (thresholds) as they are. Read them as attributes (``group.sigma``: a read-only array
    for a log-stored parameter, the live array otherwise) and write them by assignment
    (``group.sigma = values``). With ``learn=True`` the model exposes :attr:`params` in
    ``model.params`` as ``"<group>.<name>"`` (``"x.log_sigma"``), so ``pe.fit`` and
    ``pe.exact.gradient`` train them like the terms' parameters.
    """

    continuous = True
    #: Lower end of the domain (``-inf``, or 0 for rectified units).
    lower: float = -np.inf
    #: Names of the per-unit parameters (constructor arguments, arrays of shape ``(n,)``).
    param_names: tuple = ()
    #: The per-unit parameters that are positive (stored by their logarithm).
    positive_params: tuple = ()

    def __init__(self, n: int, learn: bool = False, **params):
        super().__init__(n)
        if not isinstance(learn, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: learn must be a bool, got {learn!r}")
        self.learn = bool(learn)
        self.params = TermParams(f"{type(self).__name__} units",
                                 {_stored_name(p, self): np.zeros(n) for p in self.param_names})
        self.params.freeze()
        self._set_params(**params)

    def _set_params(self, **params) -> None:
        for name, value in params.items():
            arr = np.asarray(value, dtype=np.float64) if not isinstance(value, (bool, np.bool_)) \
                else None
            if arr is None or arr.ndim > 1 or (arr.ndim == 1 and arr.shape != (self.n,)):
                raise ValueError(f"{type(self).__name__}: {name} must be a float or an array of "
                                 f"shape ({self.n},), got {value!r}")
            arr = np.broadcast_to(arr, (self.n,))
            if name in self.positive_params:
                if not np.all(np.isfinite(arr) & (arr > 0)):
                    raise ValueError(f"{type(self).__name__}: {name} must be finite and > 0 for "
                                     f"every unit, got {arr!r}")
                arr = np.log(arr)
            self.params[_stored_name(name, self)] = arr
        self.check(type(self).__name__)

    def _value(self, name: str) -> np.ndarray:
        """Parameter ``name`` per unit: ``exp`` of the stored log (read-only), or the live
        stored array."""
        stored = self.params[_stored_name(name, self)]
        if name not in self.positive_params:
            return stored
        value = np.exp(stored)
        value.flags.writeable = False
        return value

    def check(self, what: str) -> None:
        """Raise ``ValueError`` unless every parameter is finite (and positive where it must
        be, which its stored logarithm being finite, not huge, ensures)."""
        for name in self.param_names:
            value = self._value(name)
            if not np.all(np.isfinite(value)) or (name in self.positive_params
                                                  and not np.all(value > 0)):
                kind = "finite and > 0" if name in self.positive_params else "finite"
                raise ValueError(f"{what}: {name} must be {kind} for every unit, got "
                                 f"{np.asarray(value)!r}")

    def __repr__(self) -> str:
        extra = "".join(f", {p}={_short(getattr(self, p))}" for p in self.param_names)
        return f"{type(self).__name__}({self.n}{extra}{', learn=True' if self.learn else ''})"

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.n == other.n and self.learn == other.learn
                and all(np.array_equal(getattr(self, p), getattr(other, p))
                        for p in self.param_names))

    __hash__ = UnitGroup.__hash__

    def config(self) -> dict:
        return {"n": self.n, **{p: getattr(self, p).tolist() for p in self.param_names},
                **({"learn": True} if self.learn else {})}

    def param_grad(self, x: np.ndarray) -> dict:
        """``du_i/dtheta_i`` at ``x`` (``(..., n)``) for every stored parameter, a dict of
        arrays shaped like ``x``: the per-unit ``dE/dtheta`` of the self energy."""
        return {}

    def conditional_param_grad(self, field: np.ndarray, beta: float = 1.0) -> dict:
        """``E[du_i/dtheta_i | f]`` under ``p(x | f)``, as :meth:`param_grad` (closed form:
        the Rao-Blackwellised statistic of a unit summed given its field)."""
        return {}

    @property
    def domain(self) -> str:
        return ("finite real values" if self.lower == -np.inf
                else f"finite values >= {self.lower:g}")

    fill_value = 0.0

    def in_domain(self, values):
        values = np.asarray(values, dtype=np.float64)
        return np.isfinite(values) & (values >= self.lower)

    validate_mean = UnitGroup.validate

    def self_energy(self, values: np.ndarray) -> np.ndarray:
        """``U(x) = sum_i u_i(x_i)`` per sample, for values ``(batch, n)``."""
        return self.unit_energy(np.asarray(values, dtype=np.float64)).sum(axis=-1)

    def take(self, index) -> "ContinuousUnits":
        """The units ``index`` of the group as a group of their own (same kind, their
        parameters): the free units of a partly held group."""
        index = np.asarray(index)
        return type(self)(len(index), **{p: getattr(self, p)[index] for p in self.param_names})

    def peak(self, field: np.ndarray) -> np.ndarray:
        """``max_x (f x - u(x))`` per unit, reached at :meth:`mode`."""
        best = self.mode(field)
        return np.asarray(field) * best - self.unit_energy(best)

    # -- to implement ------------------------------------------------------------------
    def mode(self, field: np.ndarray) -> np.ndarray:
        """``argmax_x (f x - u(x))`` per unit (the most probable value, at any beta)."""
        raise NotImplementedError

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

    def cdf(self, x: np.ndarray, field: np.ndarray, beta: float = 1.0) -> np.ndarray:
        """``P(X <= x | f)`` per unit (shapes broadcast)."""
        raise NotImplementedError


def _stored_name(name: str, unit: ContinuousUnits) -> str:
    """``log_<name>`` for a positive parameter, ``name`` otherwise."""
    return f"log_{name}" if name in unit.positive_params else name


def _unit_parameter(name: str, doc: str) -> property:
    """The attribute ``name`` of a continuous kind: read as :meth:`ContinuousUnits._value`,
    assigned through :meth:`ContinuousUnits._set_params`."""
    def get(self):
        return self._value(name)

    def set(self, value):
        self._set_params(**{name: value})

    return property(get, set, doc=doc)


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
    param_names = positive_params = ("sigma",)
    sigma = _unit_parameter("sigma", "Standard deviations, shape ``(n,)`` (read-only; assign "
                                     "``group.sigma = values``).")

    def __init__(self, n: int, sigma=1.0, *, learn: bool = False):
        super().__init__(n, learn, sigma=sigma)

    def param_grad(self, x):
        """``d/dlog(sigma) [x^2 / (2 sigma^2)] = -x^2 / sigma^2``."""
        return {"log_sigma": -np.asarray(x) ** 2 / self.sigma ** 2}

    def conditional_param_grad(self, field, beta: float = 1.0):
        """``-E[x^2 | f] / sigma^2 = -(1/beta + sigma^2 f^2)``."""
        return {"log_sigma": -(1.0 / beta + self.sigma ** 2 * np.asarray(field) ** 2)}

    def curvature(self):
        return 1.0 / self.sigma ** 2

    def unit_energy(self, x):
        return x ** 2 / (2.0 * self.sigma ** 2)

    def mean(self, field, beta: float = 1.0):
        """``sigma^2 f``."""
        return self.sigma ** 2 * np.asarray(field, dtype=np.float64)

    def mode(self, field):
        return self.mean(field)

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

    def cdf(self, x, field, beta: float = 1.0):
        return ndtr((np.asarray(x) - self.mean(field)) * np.sqrt(beta) / self.sigma)


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

    def __init__(self, n: int):
        super().__init__(n)

    def curvature(self):
        return np.ones(self.n)

    def unit_energy(self, x):
        return x ** 2 / 2.0

    def mode(self, field):
        return np.maximum(np.asarray(field, dtype=np.float64), 0.0)

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

    def cdf(self, x, field, beta: float = 1.0):
        return truncated_cdf(self._t(field, beta), np.sqrt(beta) * np.asarray(x))


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
    positive_params = ("gamma_plus", "gamma_minus")
    gamma_plus = _unit_parameter("gamma_plus", "Precisions of the positive halves (read-only).")
    gamma_minus = _unit_parameter("gamma_minus", "Precisions of the negative halves "
                                                 "(read-only).")
    theta_plus = _unit_parameter("theta_plus", "Thresholds of the positive halves (live).")
    theta_minus = _unit_parameter("theta_minus", "Thresholds of the negative halves (live).")

    def __init__(self, n: int, gamma_plus=1.0, gamma_minus=1.0, theta_plus=0.0,
                 theta_minus=0.0, *, learn: bool = False):
        super().__init__(n, learn, gamma_plus=gamma_plus, gamma_minus=gamma_minus,
                         theta_plus=theta_plus, theta_minus=theta_minus)

    def param_grad(self, x):
        """``gamma x_+^2 / 2`` for ``log gamma_plus``, ``x_+`` for ``theta_plus``, and the
        same of ``x_-`` for the negative half."""
        x = np.asarray(x, dtype=np.float64)
        pos, neg = np.maximum(x, 0.0), np.minimum(x, 0.0)
        return {"log_gamma_plus": self.gamma_plus * pos ** 2 / 2, "theta_plus": pos,
                "log_gamma_minus": self.gamma_minus * neg ** 2 / 2, "theta_minus": neg}

    def conditional_param_grad(self, field, beta: float = 1.0):
        """The halves' weighted moments: ``E[x_+] = w_+ m_+``,
        ``E[x_+^2] = w_+ (v_+ + m_+^2)``, likewise for ``x_-``."""
        w, m_plus, m_minus, v_plus, v_minus = self._mixture(field, beta)
        return {"log_gamma_plus": self.gamma_plus * w * (v_plus + m_plus ** 2) / 2,
                "theta_plus": w * m_plus,
                "log_gamma_minus": self.gamma_minus * (1 - w) * (v_minus + m_minus ** 2) / 2,
                "theta_minus": (1 - w) * m_minus}

    def curvature(self):
        return np.minimum(self.gamma_plus, self.gamma_minus)

    def unit_energy(self, x):
        pos, neg = np.maximum(x, 0.0), np.minimum(x, 0.0)
        return (self.gamma_plus * pos ** 2 / 2 + self.theta_plus * pos
                + self.gamma_minus * neg ** 2 / 2 + self.theta_minus * neg)

    def mode(self, field):
        """The better of ``max((f - theta_plus) / gamma_plus, 0)`` and
        ``min((f - theta_minus) / gamma_minus, 0)`` (the positive one on a tie)."""
        f = np.asarray(field, dtype=np.float64)
        up = np.maximum((f - self.theta_plus) / self.gamma_plus, 0.0)
        down = np.minimum((f - self.theta_minus) / self.gamma_minus, 0.0)
        gain = lambda x: f * x - self.unit_energy(x)   # noqa: E731
        return np.where(gain(up) >= gain(down), up, down)

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

    def cdf(self, x, field, beta: float = 1.0):
        """``w_- P_-(X <= x)`` below 0, ``w_- + w_+ P_+(X <= x)`` from 0 on."""
        t_plus, t_minus, s_plus, s_minus, log_plus, log_minus = self._halves(field, beta)
        w_minus = expit(log_minus - log_plus)
        x = np.asarray(x, dtype=np.float64)
        below = w_minus * (1.0 - truncated_cdf(t_minus, np.maximum(-x, 0.0) / s_minus))
        above = w_minus + (1.0 - w_minus) * truncated_cdf(t_plus, np.maximum(x, 0.0) / s_plus)
        return np.where(x < 0, below, above)

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


def open_uniforms(gen: np.random.Generator, shape) -> np.ndarray:
    """Uniforms in the open interval ``(0, 1)`` for :meth:`ContinuousUnits.quantile`: the
    midpoints ``(k + 1/2) 2^-52`` of a 2^-52 grid (exact in float64, so never 0 or 1), the
    rule of the compiled samplers' ``u + 2^-53``."""
    return (gen.integers(0, 2**52, size=shape) + 0.5) * 2.0 ** -52


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


def truncated_cdf(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``P(Y <= y)`` for ``Y ~ N(t, 1)`` truncated to ``Y >= 0`` (0 below 0):
    ``1 - Phi(t - y) / Phi(t)``, the ratio taken in log space."""
    y = np.asarray(y, dtype=np.float64)
    survival = np.exp(log_ndtr(np.asarray(t) - y) - log_ndtr(t))
    return np.where(y < 0, 0.0, 1.0 - np.minimum(survival, 1.0))


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
