"""Unit domains: a group of ``n`` units that all take values in the same finite set."""
from __future__ import annotations

import numpy as np

__all__ = ["UnitGroup", "Binary", "Spin", "as_unit_group", "UNIT_REGISTRY"]

#: Unit group classes by name, for loading saved models without executing code.
UNIT_REGISTRY: dict[str, type] = {}


class UnitGroup:
    """A group of ``n`` discrete units sharing one domain.

    Subclasses fix ``values`` (the allowed values, sorted) and ``kind`` (a short name).
    """

    values: tuple = ()
    kind: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        UNIT_REGISTRY[cls.__name__] = cls

    def __init__(self, n: int):
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}(n): n must be an int, got {n!r}")
        if n < 1:
            raise ValueError(f"{type(self).__name__}(n): n must be >= 1, got {n}")
        self.n = int(n)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.n == other.n

    def config(self) -> dict:
        """Constructor arguments that rebuild this group."""
        return {"n": self.n}

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.n))

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


def as_unit_group(spec, name: str) -> UnitGroup:
    """Turn a user's unit specification (an int ``n`` or a ``UnitGroup``) into a group."""
    if isinstance(spec, UnitGroup):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, (bool, np.bool_)):
        return Binary(int(spec))
    raise TypeError(
        f"units[{name!r}] must be an int (number of binary units) or a unit group such as "
        f"pe.Binary(n) or pe.Spin(n), got {spec!r}"
    )
