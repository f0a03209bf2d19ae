"""Running compiled kernels: interruptible chunks of work, and OpenMP after ``fork``.

Interrupts. A kernel runs without the GIL and cannot see Ctrl-C; Python handles a pending
SIGINT between two bytecodes of the main thread. Every long kernel call is therefore cut into
chunks of about :data:`CHUNK_SECONDS` of work (sweeps, enumeration pieces, temperatures) by
:func:`timed_chunks`, and the caller's loop returns to Python between chunks. Chunks end at
whole units of work (a sweep of every chain, a whole piece, a temperature step of every run),
and the caller's state is carried whole from one chunk to the next, so results never depend
on where the chunks fall, and an interrupted sampler holds valid chains.

While such a loop runs in the main thread, a SIGINT is only recorded; the handler it would
have run (``KeyboardInterrupt`` by default) runs at the next boundary between two chunks of
the outermost loop. So the code of a chunk (a kernel call and the bookkeeping after it, such
as copying the random streams back) always runs to its end, and an interrupt never leaves
chains and streams out of step. Loops nested in one (a tempering round's Gibbs sweep) chunk
their work but leave the interrupt to the outermost one.

Fork. libgomp's thread pool does not survive ``fork``: a child forked after its parent ran a
parallel region hangs in its first parallel region with more than one thread. The child
therefore runs every kernel on one thread (:func:`openmp_threads`).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
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


def timed_chunks(total: int, first: int = 1, seconds: float | None = None
                 ) -> Iterator[tuple[int, int]]:
    """Split ``total`` units of work into chunks ``(start, size)`` of about ``seconds``
    (default :data:`CHUNK_SECONDS`, read at the call).

    The first chunk has ``first`` units; each next one is sized from the measured time of
    the one before (at most doubling, at least one unit). The caller runs the chunk between
    two ``yield`` s. In the main thread a SIGINT that arrives meanwhile is held until the
    chunk is done and then handled (``KeyboardInterrupt`` by default) by the outermost such
    loop, between two chunks or after the last (module docstring).

    Examples
    --------
    >>> [size for _, size in timed_chunks(5, first=2, seconds=1e9)]
    [2, 3]
    """
    seconds = CHUNK_SECONDS if seconds is None else seconds
    start, size = 0, max(1, int(first))
    if total <= 0:
        return
    with _held_interrupts() as outermost:
        while start < total:
            size = min(size, total - start)
            began = time.perf_counter()
            yield start, size
            elapsed = time.perf_counter() - began
            start += size
            if outermost:
                _handle_held_interrupt()
            grow = seconds / elapsed if elapsed > 0 else 2.0
            size = max(1, int(size * min(2.0, grow)))


class _Held:
    """The SIGINT held by the outermost chunk loop of the main thread."""

    depth = 0            # chunk loops running in the main thread, nested
    handler = None       # the SIGINT handler the outermost loop replaced
    pending = False      # a SIGINT arrived since it last was handled


def _hold(signum, frame) -> None:
    _Held.pending = True


def _handle_held_interrupt() -> None:
    """Run the replaced handler for a SIGINT that arrived while held (raises
    ``KeyboardInterrupt`` for Python's default handler)."""
    if _Held.pending:
        _Held.pending = False
        _Held.handler(signal.SIGINT, None)


@contextlib.contextmanager
def _held_interrupts() -> Iterator[bool]:
    """Hold SIGINT within (in the main thread, when a Python-level handler is installed;
    elsewhere nothing changes); yields whether this is the outermost such context, the one
    that handles a held interrupt. Leaving the outermost one restores the handler and raises
    an interrupt still held again, so that it reaches that handler at the next bytecode
    (also when the context is left by an exception or by closing its generator)."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    if _Held.depth == 0:
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):          # SIG_IGN, SIG_DFL or not set from Python
            yield False
            return
        # Before installing _hold: a SIGINT it catches right away must not be reset.
        _Held.handler, _Held.pending = handler, False
        signal.signal(signal.SIGINT, _hold)
    _Held.depth += 1
    try:
        yield _Held.depth == 1
    finally:
        _Held.depth -= 1
        if _Held.depth == 0:
            signal.signal(signal.SIGINT, _Held.handler)
            if _Held.pending:
                _Held.pending = False
                signal.raise_signal(signal.SIGINT)
