"""Independent pieces of work on an executor: one machine's processes, or a Dask cluster.

Exact enumeration (ranges of its pieces), AIS (blocks of runs) and many Gibbs chains
(blocks of chains) split into pieces that combine exactly, in a fixed order. Any
:class:`concurrent.futures.Executor` runs them: a ``ProcessPoolExecutor`` on one machine, or
the executor of a ``dask.distributed`` Client (``client.get_executor()``) on a cluster.
``executor=`` of the functions that split takes the executor itself, or a :class:`Runner`
around it with the options of the run:

* **same result**: pieces are fixed by the problem (never by the executor or the number of
  workers), each piece's random streams are drawn in the calling process before any piece
  runs, and results are combined in piece order; so a run on an executor gives what the
  plain call gives, for the same seed;
* **sizing**: each piece is about ``piece_seconds`` of work by the cost model, and work
  under two pieces runs in the calling process;
* **what is sent**: the piece's arrays (the problem, already compiled: no model, no code);
  on Dask the shared part is scattered once to every worker, elsewhere it travels with each
  piece;
* **faults**: a piece that raises is submitted again, up to ``retries`` times, then the
  run stops with an error naming the piece (nothing is dropped from a sum); Dask itself
  reruns the pieces of a worker that died; a ``ProcessPoolExecutor`` whose worker died is
  broken, and the error says to start a new one and resume from the checkpoint;
* **checkpoint**: with ``checkpoint=path``, finished pieces are written to an ``.npz`` file
  (arrays only, no pickle) as they arrive, and a run of the same problem resumes from it;
* **progress**: ``progress=True`` shows a bar over pieces (needs ``tqdm``).
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib.util
import os
import pickle
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

import numpy as np

from ._checks import nonnegative_int, positive_int

__all__ = ["Runner", "as_runner", "n_pieces_for"]

#: Seconds of work per piece that a Runner aims at by default.
DEFAULT_PIECE_SECONDS = 1.0
#: A checkpoint is rewritten at most this often (and when the run ends or stops).
SAVE_SECONDS = 5.0


class Runner:
    """An executor and the options of a run of pieces (see module docstring).

    Parameters
    ----------
    executor : concurrent.futures.Executor
        Anything with ``submit(fn, *args)`` returning a future: a ``ProcessPoolExecutor``,
        ``dask.distributed.Client(...).get_executor()``, ...
    checkpoint : str or os.PathLike, optional
        An ``.npz`` file of finished pieces, written as they finish; a run of the same
        problem (the same arrays and pieces) resumes from it, another one is refused.
    progress : bool
        Show a progress bar over pieces (``tqdm``, installed with ``pip install tqdm``).
    retries : int
        Times a failing piece is submitted again before the run stops (default 2).
    piece_seconds : float
        Work per piece the splitting aims at, by the cost model (default 1 s).
    n_threads : int
        OpenMP threads each piece uses in its worker (default 1: one piece per worker
        thread, the usual layout of a ``ProcessPoolExecutor`` or Dask worker; more where each
        worker runs one piece at a time on a node of several cores). The result does not
        depend on it.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import pgm_energy as pe
    >>> with ThreadPoolExecutor(2) as ex:
    ...     log_z = pe.exact.log_partition(pe.RBM(4, 3, rng=0), executor=pe.distributed.Runner(ex))
    """

    def __init__(self, executor, *, checkpoint=None, progress: bool = False, retries: int = 2,
                 piece_seconds: float = DEFAULT_PIECE_SECONDS, n_threads: int = 1):
        if not callable(getattr(executor, "submit", None)):
            raise TypeError("executor must be a concurrent.futures.Executor (anything with "
                            "submit(fn, *args)), such as a ProcessPoolExecutor or a dask "
                            f"Client's get_executor(); got {type(executor).__name__}")
        if progress and importlib.util.find_spec("tqdm") is None:
            raise ValueError("progress=True needs tqdm: pip install tqdm (or "
                             "pip install 'pgm_energy[progress]')")
        piece_seconds = float(piece_seconds)
        if not np.isfinite(piece_seconds) or piece_seconds <= 0:
            raise ValueError(f"piece_seconds must be a positive number, got {piece_seconds}")
        self.executor = executor
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.progress = bool(progress)
        self.retries = nonnegative_int(retries, "retries")
        self.piece_seconds = piece_seconds
        self.n_threads = positive_int(n_threads, "n_threads")

    def map(self, task: Callable, shared: Any, pieces: Sequence, *, what: str) -> list:
        """``[task(shared, piece) for piece in pieces]``, each on the executor.

        ``task`` is a module-level function; ``shared`` and the pieces are picklable (arrays
        and numbers), and each result a tuple of arrays (what the checkpoint stores).
        ``what`` names the run in messages (``"exact enumeration"``).
        """
        pieces = list(pieces)
        key = None if self.checkpoint is None else _fingerprint(task, shared, pieces)
        done = self._resume(key, len(pieces), what)
        shared_arg = self._share(shared)
        futures = {i: self.executor.submit(task, shared_arg, p)
                   for i, p in enumerate(pieces) if i not in done}
        failures = dict.fromkeys(futures, 0)
        bar = self._bar(len(pieces), len(done), what)
        saved_at = time.monotonic()
        try:
            while futures:
                finished, _ = cf.wait(list(futures.values()), return_when=cf.FIRST_COMPLETED)
                for i in [i for i, f in futures.items() if f in finished]:
                    future = futures.pop(i)
                    try:
                        done[i] = tuple(np.asarray(r) for r in future.result())
                    except BrokenProcessPool as exc:
                        raise RuntimeError(
                            f"{what}: piece {i} of {len(pieces)} was lost with its worker, "
                            "and this ProcessPoolExecutor is now broken; start a new one and "
                            "run again (with checkpoint= the finished pieces are kept)") from exc
                    except Exception as exc:          # the piece raised: run it again
                        failures[i] += 1
                        if failures[i] > self.retries:
                            raise RuntimeError(
                                f"{what}: piece {i} of {len(pieces)} ({pieces[i]!r}) failed "
                                f"{failures[i]} times; the last error: {exc!r}") from exc
                        futures[i] = self.executor.submit(task, shared_arg, pieces[i])
                        continue
                    if time.monotonic() - saved_at > SAVE_SECONDS:
                        self._save(key, done)
                        saved_at = time.monotonic()
                    if bar is not None:
                        bar.update(1)
        finally:
            for future in futures.values():
                future.cancel()
            self._save(key, done)
            if bar is not None:
                bar.close()
        return [done[i] for i in range(len(pieces))]

    def check_importable(self, obj, what: str) -> None:
        """Refuse ``obj`` for the workers unless it pickles, and without code defined in
        ``__main__`` (a script or notebook), which workers cannot import."""
        try:
            _MainFinder(_Discard()).dump(obj)
        except _DefinedInMain as exc:
            raise ValueError(
                f"{what} uses {exc.args[0]}, defined in __main__ (a script or notebook): "
                "workers load code by module name, so define it in a module they can import "
                "(a .py file on their path)") from None
        except Exception as exc:
            raise TypeError(f"{what} cannot be pickled to be sent to the workers: "
                            f"{exc}") from exc

    # -- the parts ------------------------------------------------------------------------
    def _share(self, shared):
        """``shared`` as the argument of every piece: scattered once to every Dask worker,
        else the object itself (pickled with each piece by the executor)."""
        client = getattr(self.executor, "_client", None)
        if client is not None and hasattr(client, "scatter"):
            return client.scatter([shared], broadcast=True, hash=False)[0]
        return shared

    def _bar(self, total, initial, what):
        if not self.progress:
            return None
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, desc=what, unit="piece")

    def _resume(self, key, n_pieces, what) -> dict:
        """Finished pieces from the checkpoint, ``{index: results}`` (none without one)."""
        if self.checkpoint is None or not os.path.exists(self.checkpoint):
            return {}
        with np.load(self.checkpoint, allow_pickle=False) as saved:
            if str(saved["key"]) != key:
                raise ValueError(f"checkpoint {self.checkpoint!r} holds pieces of another "
                                 f"problem than this {what}; give a new path, or delete it")
            done = {}
            for name in saved.files:
                if name.startswith("p"):
                    i, k = (int(v) for v in name[1:].split("_"))
                    done.setdefault(i, {})[k] = saved[name]
        return {i: tuple(parts[k] for k in range(len(parts))) for i, parts in done.items()
                if i < n_pieces}

    def _save(self, key, done) -> None:
        """Write every finished piece (a new file, then renamed over the old one)."""
        if self.checkpoint is None:
            return
        arrays = {f"p{i}_{k}": r for i, results in done.items() for k, r in enumerate(results)}
        partial = self.checkpoint + ".partial.npz"
        np.savez(partial, key=np.array(key), **arrays)
        os.replace(partial, self.checkpoint)


class _DefinedInMain(Exception):
    pass


class _Discard:
    def write(self, data):
        pass


class _MainFinder(pickle.Pickler):
    """A pickler that stops at the first class or function defined in ``__main__``."""

    def reducer_override(self, obj):
        owner = obj if isinstance(obj, type) or callable(obj) else type(obj)
        if getattr(owner, "__module__", None) == "__main__":
            raise _DefinedInMain(getattr(owner, "__qualname__", repr(owner)))
        return NotImplemented


def as_runner(executor) -> Runner | None:
    """``executor=`` as a :class:`Runner` (None stays None: run in this process)."""
    if executor is None or isinstance(executor, Runner):
        return executor
    return Runner(executor)


def n_pieces_for(work_seconds: float, runner: Runner | None, most: int) -> int:
    """How many pieces ``work_seconds`` of work splits into on ``runner``: one per
    ``piece_seconds``, at most ``most``; 0 (run here) without a runner or under two pieces."""
    if runner is None:
        return 0
    n = int(min(work_seconds / runner.piece_seconds, most))
    return n if n >= 2 else 0


def _fingerprint(task, shared, pieces) -> str:
    """A hash of the task's name, the shared arrays and the pieces (the checkpoint's key)."""
    digest = hashlib.sha256(f"{task.__module__}.{task.__qualname__}".encode())
    digest.update(pickle.dumps((shared, pieces), protocol=4))
    return digest.hexdigest()
