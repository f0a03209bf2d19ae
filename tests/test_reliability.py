"""What the library promises beyond correct answers (docs/reliability.md): results that do
not depend on other threads, and clear errors instead of crashes or silent wrong answers."""
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import pgm_energy as pe


def _child_env():
    """The environment of a child Python that imports this pgm_energy (installed or built in
    place) and has several OpenMP threads."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(pathlib.Path(pe.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    return env


def _hammer(target, stop):
    while not stop.is_set():
        target()


def test_exact_log_partition_is_not_disturbed_by_graph_reads_in_another_thread():
    """model.graph re-syncs the fields; a kernel summing them in another thread must never
    see them half rebuilt (it did: wrong log Z in most runs)."""
    model = pe.RBM(12, 10, rng=0)
    model.params["c"][...] = 3.0
    want = pe.exact.log_partition(model, n_threads=1)
    stop = threading.Event()
    reader = threading.Thread(target=_hammer, args=(lambda: model.graph, stop))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)         # switch threads often, between any two bytecodes
    reader.start()
    try:
        got = [pe.exact.log_partition(model, n_threads=1) for _ in range(300)]
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert got == [want] * len(got)


def test_two_samplers_on_one_model_in_two_threads():
    """Two samplers of one model, run in two threads, give the chains each gives alone."""
    n = 2000
    model = pe.Ising(np.stack([np.arange(n - 1), np.arange(1, n)], axis=1),
                     couplings=np.full(n - 1, 0.5), fields=np.full(n, 5.0))

    def chains(seed):
        sampler = pe.GibbsSampler(model, n_chains=8, rng=seed)
        sampler.run(20)
        return sampler.state["s"]

    alone = [chains(seed) for seed in (1, 2)]
    results = [None, None]

    def run(k):
        for _ in range(5):
            results[k] = chains(k + 1)
            if not np.array_equal(results[k], alone[k]):
                return

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    for k in range(2):
        np.testing.assert_array_equal(results[k], alone[k])


@pytest.mark.parametrize("name, value", [("W", 1e308), ("W", -1e308), ("b", 1e308),
                                         ("c", 1e301)])
def test_parameters_past_float64_are_refused(name, value):
    """Parameters whose energies overflow float64 give a ValueError, not nan/-inf results."""
    model = pe.RBM(4, 3, rng=0)
    model.params[name][...] = value
    with pytest.raises(ValueError, match="past what float64"):
        pe.exact.log_partition(model)
    with pytest.raises(ValueError, match="past what float64"):
        pe.exact.marginals(model)
    with pytest.raises(ValueError, match="past what float64"):
        pe.GibbsSampler(model, n_chains=2, rng=0)
    with pytest.raises(ValueError, match="past what float64"):
        pe.ais.log_partition(model, n_betas=10, n_runs=2)


def test_large_but_representable_parameters_still_work():
    model = pe.RBM(4, 3, rng=0)
    model.params["W"][...] = 1e3
    assert np.isfinite(pe.exact.log_partition(model))


FORKED_CHILD = """
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
import pgm_energy as pe

def work(k):
    model = pe.RBM(30, 14, rng=0)
    sampler = pe.GibbsSampler(pe.RBM(30, 14, rng=0), n_chains=64, schedule="chromatic", rng=k)
    sampler.run(5)
    return (pe.exact.log_partition(model),
            pe.ais.log_partition(model, n_betas=50, n_runs=16, rng=k).log_z)

if __name__ == "__main__":
    parent = work(0)                    # the parent runs every kernel on several threads
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        children = list(ex.map(work, [0, 1]))
    assert children[0] == parent, (children, parent)
    print("ok")
"""


def test_kernels_run_in_a_child_forked_after_the_parent_used_openmp(tmp_path):
    """libgomp's pool does not survive fork: a forked child runs kernels on one thread (it
    used to hang in its first kernel call) and gets the parent's numbers."""
    script = tmp_path / "forked.py"
    script.write_text(FORKED_CHILD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=_child_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_beta_past_float64_is_refused():
    model = pe.RBM(4, 3, rng=0)
    with pytest.raises(ValueError, match="past what float64"):
        pe.exact.log_partition(model, beta=1e308)
    with pytest.raises(ValueError, match="past what float64"):
        pe.exact.marginals(model, beta=1e308)
    with pytest.raises(ValueError, match="past what float64"):
        pe.GibbsSampler(model, n_chains=2, beta=1e308, rng=0)
    sampler = pe.GibbsSampler(model, n_chains=2, rng=0)
    with pytest.raises(ValueError, match="past what float64"):
        sampler.beta = 1e308
    with pytest.raises(ValueError, match="past what float64"):
        pe.ParallelTempering(model, [1e308, 1.0], n_chains=2, rng=0)


def test_likelihoods_of_no_rows_are_refused():
    model = pe.RBM(4, 3, rng=0)
    empty = np.zeros((0, 4))
    with pytest.raises(ValueError, match="no rows"):
        pe.ais.log_likelihood(model, empty, n_betas=10, n_runs=2)
    with pytest.raises(ValueError, match="no rows"):
        pe.exact.log_likelihood(model, empty)
