"""Argument checks shared by the public entry points (TypeError for a wrong type,
ValueError for a wrong value, the message naming the argument and the value)."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["check_beta", "positive_int", "nonnegative_int", "positive_float",
           "nonnegative_float"]


def _int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def _float(value, name):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1."""
    value = _int(value, name)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def nonnegative_int(value, name: str) -> int:
    """``value`` as an int >= 0."""
    value = _int(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def positive_float(value, name: str) -> float:
    """``value`` as a finite float > 0."""
    value = _float(value, name)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return value


def nonnegative_float(value, name: str) -> float:
    """``value`` as a finite float >= 0."""
    value = _float(value, name)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


def check_beta(beta) -> float:
    """An inverse temperature: a finite float > 0."""
    return positive_float(beta, "beta")
