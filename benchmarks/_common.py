"""Shared helpers for the benchmarks: best-of-N timing, optional peers, BLAS report, tables.

Benchmarks import this as ``from _common import ...``: run as scripts
(``python benchmarks/bench_exact.py``, from any folder), their own folder is on ``sys.path``.
They import ``pgm_energy`` as installed (``pip install ".[bench]"``), never the source tree;
:func:`environment_report` says which copy they measured.
"""
from __future__ import annotations

import importlib
import os
import platform
import time

__all__ = ["best_of", "optional_import", "load_reference", "blas_report", "environment_report", "OtherLoad",
           "Table", "fmt_time", "fmt_rate", "fmt_ratio", "rel_diff"]

_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def best_of(fn, repeat: int = 5, warmup: int = 1):
    """Run ``fn()`` ``warmup`` times untimed, then ``repeat`` times; return ``(best_s, result)``.

    The best (minimum) wall time of the timed runs, measured with ``time.perf_counter``,
    and the result of the last call.
    """
    result = None
    for _ in range(warmup):
        result = fn()
    best = float("inf")
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def optional_import(name: str):
    """Import module ``name``, or return None if it (or a dependency) is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def load_reference(name: str):
    """The module ``tests/reference/<name>.py`` (the numpy twins, not in the package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tests" / "reference" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pgm_energy_reference_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blas_report() -> str:
    """One line per BLAS library numpy loaded: API, version, kernel (architecture), threads."""
    import numpy  # noqa: F401  (loads the BLAS so threadpoolctl can see it)

    tpc = optional_import("threadpoolctl")
    if tpc is None:
        return "BLAS: threadpoolctl not installed, kernel unknown"
    lines = []
    for info in tpc.threadpool_info():
        if info.get("user_api") != "blas":
            continue
        lines.append(f"BLAS: {info.get('internal_api')} {info.get('version')}, "
                     f"kernel {info.get('architecture', '?')}, "
                     f"{info.get('num_threads')} threads ({os.path.basename(info['filepath'])})")
    return "\n".join(lines) or "BLAS: none found by threadpoolctl"


def environment_report() -> str:
    """The pgm_energy measured (version, folder), Python, numpy, CPU count and the OpenBLAS
    override variables, for the table header."""
    import numpy as np

    import pgm_energy

    lines = [f"pgm_energy {pgm_energy.__version__} from {os.path.dirname(pgm_energy.__file__)}",
             f"python {platform.python_version()}, numpy {np.__version__}, "
             f"{os.cpu_count()} CPUs ({platform.machine()})"]
    set_vars = [f"{v}={os.environ[v]}" for v in _OPENBLAS_VARS if v in os.environ]
    if set_vars:
        lines.append("WARNING: " + ", ".join(set_vars) + " set: numpy's BLAS is pinned to an "
                     "older kernel; for fair numpy timings run with "
                     "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...`")
    lines.append(blas_report())
    return "\n".join(lines)


class OtherLoad:
    """CPU time that *other* processes used while this one ran (Linux ``/proc/stat``).

    Timings on a small shared machine are only meaningful if nothing else ran meanwhile:
    create one at the start and print ``report()`` at the end.
    """

    def __init__(self):
        self._start = self._snapshot()

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # - idle, iowait
        own = os.times()
        return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.perf_counter()

    def report(self) -> str:
        end = self._snapshot()
        if self._start is None or end is None:
            return "CPU use by other processes: unknown (no /proc/stat)"
        busy, own, wall = (e - s for e, s in zip(end, self._start))
        other = max(busy - own, 0.0)
        note = "" if other < 0.05 * wall else "  <- timings may be disturbed"
        return (f"CPU use by other processes during the run: {other:.1f} CPU-s over "
                f"{wall:.1f} s wall ({100 * other / wall:.0f}% of one core){note}")


class Table:
    """A plain-text table, printed with columns sized to their widest cell."""

    def __init__(self, title: str, columns):
        self.title = title
        self.columns = list(columns)
        self.rows = []

    def add(self, *cells):
        """Append a row; cells are turned into strings (None prints as '-')."""
        if len(cells) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} cells, got {len(cells)}")
        self.rows.append(["-" if c is None else str(c) for c in cells])

    def render(self) -> str:
        widths = [max(len(r[k]) for r in [self.columns] + self.rows)
                  for k in range(len(self.columns))]

        def line(cells):
            # First column left-aligned (labels), the rest right-aligned (numbers).
            return "  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                             for k, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(line(self.columns))
        return "\n".join([self.title, rule, line(self.columns), rule]
                         + [line(r) for r in self.rows] + [rule])

    def print(self):
        print(self.render(), flush=True)
        print()


def fmt_time(seconds) -> str:
    """Seconds with a unit that keeps three significant digits."""
    if seconds is None:
        return None
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def fmt_rate(per_second) -> str:
    """A rate such as states/s, in scientific notation."""
    return None if per_second is None else f"{per_second:.3g}"


def fmt_ratio(ratio) -> str:
    """A speed ratio ('12.3x'); None prints as '-'."""
    return None if ratio is None else f"{ratio:.1f}x"


def rel_diff(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)`` (0 when both are 0)."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale
