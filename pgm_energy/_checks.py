"""Argument checks shared by the public entry points (TypeError for a wrong type,
ValueError for a wrong value, the message naming the argument and the value)."""
from __future__ import annotations

import math
import os

import numpy as np

from ._run import openmp_threads

__all__ = ["check_beta", "positive_int", "nonnegative_int", "positive_float",
           "nonnegative_float", "real_array", "int_at_least", "n_threads"]


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
    return int_at_least(value, 1, name)


def nonnegative_int(value, name: str) -> int:
    """``value`` as an int >= 0."""
    return int_at_least(value, 0, name)


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


def int_at_least(value, low: int, name: str) -> int:
    """``value`` as an int >= ``low``."""
    value = _int(value, name)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


#: Most OpenMP threads a kernel may be asked for, per core (and at least ``_MIN_THREAD_CAP``):
#: more only oversubscribes the cores, and thousands make libgomp fail to create them (it
#: then exits the process) or crash.
_THREADS_PER_CORE = 4
_MIN_THREAD_CAP = 32


def n_threads(value) -> int:
    """A kernel's thread count: ``None`` for all cores (``os.cpu_count()``), else an int
    from 1 to ``max(32, 4 x os.cpu_count())``; every compiled entry point checks it here
    before OpenMP sees it. In a process forked after its parent ran OpenMP threads, 1
    (see :func:`pgm_energy._run.openmp_threads`)."""
    cores = os.cpu_count() or 1
    if value is None:
        return openmp_threads(cores)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"n_threads must be an int or None, got {value!r}")
    cap = max(_MIN_THREAD_CAP, _THREADS_PER_CORE * cores)
    if not 1 <= value <= cap:
        raise ValueError(f"n_threads must be between 1 and {cap} (max(32, 4 x the "
                         f"{cores} cores here)), got {value}")
    return openmp_threads(int(value))
