"""Unit domains: a group of ``n`` units that all take values in the same finite set."""
from __future__ import annotations

import numpy as np

from ._checks import positive_int

__all__ = ["UnitGroup", "Binary", "Spin", "Categorical", "as_unit_group", "UNIT_REGISTRY"]

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


def _sigmoid(z):
    from scipy.special import expit

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
        f"pe.Binary(n), pe.Spin(n) or pe.Categorical(n, k), got {spec!r}"
    )
