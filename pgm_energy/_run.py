"""Running compiled kernels: interruptible chunks of work, and OpenMP after ``fork``.

Interrupts. A kernel runs without the GIL and cannot see Ctrl-C; Python handles a pending
SIGINT between two bytecodes of the main thread. Every long kernel call is therefore cut into
chunks of about :data:`CHUNK_SECONDS` of work (sweeps, enumeration pieces, temperatures) by
:func:`timed_chunks`, and the caller's loop returns to Python between chunks, where
``KeyboardInterrupt`` is raised. Chunks end at whole units of work (a sweep of every chain, a
whole piece, a temperature step of every run), so an interrupted sampler holds valid chains
and results never depend on where the chunks fall.

Fork. libgomp's thread pool does not survive ``fork``: a child forked after its parent ran a
parallel region hangs in its first parallel region with more than one thread. The child
therefore runs every kernel on one thread (:func:`openmp_threads`).
"""
from __future__ import annotations

import os
import time
from typing import Iterator

__all__ = ["CHUNK_SECONDS", "timed_chunks", "openmp_threads"]

#: Target duration of one kernel call between two interrupt checks.
CHUNK_SECONDS = 0.1

_openmp_used = False          # this process ran a kernel on more than one thread
_forked_after_openmp = False  # ... and this is a child forked from such a process


def _after_fork_in_child() -> None:
    global _forked_after_openmp
    _forked_after_openmp = _forked_after_openmp or _openmp_used


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def openmp_threads(n_threads: int) -> int:
    """The thread count a kernel may use: ``n_threads``, or 1 in a process forked from one
    that already ran OpenMP threads (where more would hang)."""
    global _openmp_used
    if _forked_after_openmp:
        return 1
    if n_threads > 1:
        _openmp_used = True
    return n_threads


def timed_chunks(total: int, first: int = 1, seconds: float = CHUNK_SECONDS
                 ) -> Iterator[tuple[int, int]]:
    """Split ``total`` units of work into chunks ``(start, size)`` of about ``seconds``.

    The first chunk has ``first`` units; each next one is sized from the measured time of
    the one before (at most doubling, at least one unit). The caller runs the chunk between
    two ``yield`` s, so a pending Ctrl-C is raised between chunks.

    Examples
    --------
    >>> [size for _, size in timed_chunks(5, first=2, seconds=1e9)]
    [2, 3]
    """
    start, size = 0, max(1, int(first))
    while start < total:
        size = min(size, total - start)
        began = time.perf_counter()
        yield start, size
        elapsed = time.perf_counter() - began
        start += size
        grow = seconds / elapsed if elapsed > 0 else 2.0
        size = max(1, int(size * min(2.0, grow)))
