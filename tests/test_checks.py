"""The shared argument checks (pgm_energy._checks), and that every kernel entry uses them."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy._checks import int_at_least, n_threads

CAP = max(32, 4 * (os.cpu_count() or 1))


def test_n_threads_accepts_none_and_counts_up_to_the_cap():
    assert n_threads(None) == (os.cpu_count() or 1)
    assert n_threads(1) == 1 and n_threads(np.int64(3)) == 3
    assert n_threads(CAP) == CAP


@pytest.mark.parametrize("value, error, match", [
    (0, ValueError, "between 1 and"), (-2, ValueError, "between 1 and"),
    (CAP + 1, ValueError, r"between 1 and \d+ \(max\(32, 4 x the \d+ cores"),
    (10**5, ValueError, "got 100000"), (2.0, TypeError, "int or None"),
    (True, TypeError, "int or None"), ("4", TypeError, "int or None")])
def test_n_threads_refuses(value, error, match):
    with pytest.raises(error, match=f"n_threads.*{match}|{match}"):
        n_threads(value)


def test_int_at_least():
    assert int_at_least(np.int32(2), 2, "n_betas") == 2
    with pytest.raises(ValueError, match="n_betas must be >= 2, got 1"):
        int_at_least(1, 2, "n_betas")
    with pytest.raises(TypeError, match="n_betas must be an int"):
        int_at_least(2.0, 2, "n_betas")


ENTRIES = {
    "exact": "pe.exact.log_partition(pe.RBM(6, 3, rng=0), n_threads={n})",
    "exact-eliminate": "pe.exact.marginals(pe.RBM(6, 3, rng=0), method='eliminate', "
                       "n_threads={n})",
    "ais": "pe.ais.log_partition(pe.RBM(6, 3, rng=0), n_betas=10, n_runs=4, rng=0, "
           "n_threads={n})",
    "sparse-gibbs": "pe.GibbsSampler(pe.Ising([(0, 1), (1, 2)]), 8, schedule='sequential', "
                    "rng=0, n_threads={n}).run(2)",
}


@pytest.mark.parametrize("n", [1000, 10**5])
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_too_many_threads_is_a_value_error_not_a_crash(entry, n):
    """Issue 19: n_threads went unchecked into OpenMP (10^5: SIGSEGV; 1000: libgomp exits)."""
    code = ("import pgm_energy as pe\n"
            "try:\n"
            f"    {ENTRIES[entry].format(n=n)}\n"
            "except ValueError as exc:\n"
            "    assert 'n_threads' in str(exc), exc\n"
            "    print('refused')\n")
    # Run next to the package the tests import (the installed one, or the in-place build).
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=pathlib.Path(pe.__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "refused"
