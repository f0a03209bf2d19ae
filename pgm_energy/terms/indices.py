"""Validation of unit-index tuples, shared by every term and preset that takes them: the edges
of ``SparsePairwise`` and ``pe.Ising``, the cliques of ``Interaction``.

A tuple lists unit indices of one group: integers in ``[0, n)``, no unit twice, and no tuple
twice (as a set). The tuples are stored as an int64 array ``(n_tuples, width)`` padded with
-1, the layout the Gibbs kernels read (-1 is padding there, so a negative index given by a
user must never reach them).
"""
from __future__ import annotations

import numpy as np

__all__ = ["as_index_tuples", "check_index_range"]


def as_index_tuples(tuples, what: str, *, kind: str, size: int | None = None) -> np.ndarray:
    """Validate unit-index tuples; return them as int64 ``(n_tuples, width)`` padded with -1.

    Parameters
    ----------
    tuples : sequence of sequences of int
        The tuples (edges, cliques), each listing distinct unit indices.
    what : str
        How error messages name the argument, e.g. ``"SparsePairwise 'J' edges"``.
    kind : str
        What one tuple is called in messages (``"edge"``, ``"clique"``).
    size : int, optional
        The number of units every tuple must have (2 for edges); any size >= 1 when omitted.

    Raises
    ------
    TypeError
        If the tuples are not sequences of integers (floats and bools are refused).
    ValueError
        For a wrong size, an empty tuple, a negative index, a unit listed twice in one tuple
        or a tuple listed twice.
    """
    members, real = _padded(tuples, what, kind, size)
    negative = real & (members < 0)
    if negative.any():
        k = int(np.flatnonzero(negative.any(axis=1))[0])
        raise ValueError(f"{what}: unit indices must lie in [0, n), got "
                         f"{int(members[k][negative[k]][0])} in {kind} {k} "
                         f"{_show(members[k], real[k])}")
    # Sort each tuple with distinct negative stand-ins for the padding, so that a repeated unit
    # shows as two equal neighbours and equal sets as equal rows.
    width = members.shape[1]
    key = np.sort(np.where(real, members, -1 - np.arange(width)), axis=1)
    repeated = (key[:, 1:] == key[:, :-1]) & (key[:, 1:] >= 0)
    if repeated.any():
        k = int(np.flatnonzero(repeated.any(axis=1))[0])
        raise ValueError(f"{what}: each {kind} must join distinct units, got "
                         f"{_show(members[k], real[k])} at {k}")
    if len(key) > 1:
        _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
        if np.any(counts > 1):
            k = int(first[counts > 1][0])
            raise ValueError(f"{what}: {kind}s must be distinct (as sets of units); "
                             f"{_show(members[k], real[k])} appears twice")
    members.flags.writeable = False
    return members


def check_index_range(members: np.ndarray, n: int, what: str, *, kind: str,
                      group: str) -> None:
    """Raise ``ValueError`` unless every index of ``members`` (from :func:`as_index_tuples`)
    is below ``n``, the size of ``group``."""
    above = members >= n
    if above.any():
        k = int(np.flatnonzero(above.any(axis=1))[0])
        raise ValueError(f"{what}: unit indices must lie in [0, {n}) for group {group!r} of "
                         f"{n} units, got {int(members[k][above[k]][0])} in {kind} {k} "
                         f"{_show(members[k], members[k] >= 0)}")


def _padded(tuples, what, kind, size):
    """The tuples as int64 (n_tuples, width) padded with -1, and the mask of real entries."""
    try:
        arr = np.asarray(tuples)
    except (TypeError, ValueError):      # ragged: tuples of several sizes
        arr = None
    if arr is not None and arr.dtype != object and arr.ndim == 2:
        rows = arr
        _require_integers(rows, what, kind)
        lengths = np.full(len(rows), rows.shape[1])
    elif arr is not None and arr.dtype != object and arr.ndim == 1 and arr.size == 0:
        rows, lengths = np.zeros((0, size or 0), np.int64), np.zeros(0, np.int64)
    else:
        try:
            listed = [np.asarray(t) for t in tuples]
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a sequence of {kind}s, each a sequence of unit "
                            f"indices (ints), got {type(tuples).__name__}") from None
        for k, row in enumerate(listed):
            if row.ndim != 1:
                raise ValueError(f"{what}: each {kind} must be a flat sequence of unit "
                                 f"indices, got {row.tolist()!r} at {k}")
            _require_integers(row, what, kind)
        lengths = np.array([len(row) for row in listed], np.int64)
        rows = np.full((len(listed), int(lengths.max(initial=0))), -1, np.int64)
        for k, row in enumerate(listed):
            rows[k, :len(row)] = row
    if size is not None and np.any(lengths != size):
        k = int(np.flatnonzero(lengths != size)[0])
        raise ValueError(f"{what} must have shape (n_{kind}s, {size}): every {kind} joins "
                         f"{size} units, got {int(lengths[k])} at {k}")
    if np.any(lengths == 0):
        raise ValueError(f"{what}: each {kind} lists at least one unit, got an empty one at "
                         f"{int(np.flatnonzero(lengths == 0)[0])}")
    try:
        members = np.asarray(rows).astype(np.int64)
    except OverflowError:
        raise ValueError(f"{what}: unit indices must fit in int64") from None
    real = np.arange(members.shape[1]) < lengths[:, None]
    return np.where(real, members, -1), real


def _require_integers(row, what, kind):
    if row.size and row.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer unit indices, got dtype {row.dtype} "
                        f"(each {kind} lists units by index)")
    if row.dtype.kind == "u" and row.size and row.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what}: unit indices must fit in int64, got {row.max()}")


def _show(row, real):
    """One tuple as a Python tuple of its real entries."""
    return tuple(int(i) for i in row[real])
