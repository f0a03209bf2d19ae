"""Argument checks shared by the public entry points (TypeError for a wrong type,
ValueError for a wrong value, the message naming the argument and the value)."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["check_beta", "positive_int", "nonnegative_int", "positive_float",
           "nonnegative_float", "real_array"]


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


def real_array(value, name: str, ndim: tuple[int, ...], *, finite: bool = True) -> np.ndarray:
    """``value`` as a float64 array (finite unless ``finite=False``) with one of the
    dimensions ``ndim``."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.ndim not in ndim:
        wanted = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {wanted}, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return arr


def check_beta(beta) -> float:
    """An inverse temperature: a finite float > 0."""
    return positive_float(beta, "beta")
