"""What the library promises beyond correct answers (docs/reliability.md): results that do
not depend on other threads, and clear errors instead of crashes or silent wrong answers."""
import _thread
import os
import pathlib
import selectors
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy.exact import enumeration
from pgm_energy.exact.enumeration import Enumeration
from reference.terms import CountPenalty


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

# built in the parent, before the fork, with several threads
BUILT_BEFORE = pe.GibbsSampler(pe.RBM(30, 14, rng=0), n_chains=64, schedule="chromatic",
                               rng=0, n_threads=2)

def work(k):
    model = pe.RBM(30, 14, rng=0)
    sampler = pe.GibbsSampler(pe.RBM(30, 14, rng=0), n_chains=64, schedule="chromatic", rng=k)
    sampler.run(5)
    BUILT_BEFORE.run(5)
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
# -- Ctrl-C: long kernel calls stop between chunks, with a consistent state -----------------
LONG_CALLS = {
    "exact": "pe.exact.log_partition(pe.RBM(784, 27, rng=0), method='enumerate')",
    "gibbs-block": "pe.GibbsSampler(pe.RBM(784, 500, rng=0), n_chains=100, rng=0)"
                   ".run(10**6)",
    "gibbs-sparse": "pe.GibbsSampler(pe.RBM(300, 200, rng=0), n_chains=64, "
                    "schedule='sequential', rng=0).run(10**6)",
    "tempering": "pe.ParallelTempering(pe.RBM(300, 200, rng=0), [1.0, 0.5], n_chains=64, "
                 "rng=0).run(10**6)",
    "ais": "pe.ais.log_partition(pe.RBM(784, 500, rng=0), n_betas=10**6, n_runs=100)",
    "ais-joint": "pe.ais.log_partition(pe.BoltzmannMachine(100, 50, rng=0), n_betas=10**6, "
                 "n_runs=100)",
}


@pytest.mark.parametrize("call", list(LONG_CALLS))
def test_ctrl_c_stops_a_long_call_within_two_seconds(call):
    """Issue 19: compiled kernels ran to the end after SIGINT (over 60 s for each of these).
    The child starts the call, gets SIGINT 0.5 s later and must end with KeyboardInterrupt
    within 2 s."""
    code = ("import pgm_energy as pe\n"
            "print('started', flush=True)\n"
            "try:\n"
            f"    {LONG_CALLS[call]}\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             cwd=pathlib.Path(pe.__file__).resolve().parents[1])
    try:
        with selectors.DefaultSelector() as wait:
            wait.register(child.stdout, selectors.EVENT_READ)
            assert wait.select(timeout=60), "the child did not start"
        assert child.stdout.readline().strip() == "started", child.stderr.read()
        time.sleep(0.5)                     # well inside the kernel by now
        child.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        out, err = child.communicate(timeout=10)
        took = time.perf_counter() - sent
    finally:
        child.kill()
        child.wait()
    assert out.strip() == "interrupted", err[-2000:]
    assert took < 2.0, f"{call} took {took:.2f} s to stop after SIGINT"


def _interrupted(run, n_sweeps, after=0.15):
    """``run(n_sweeps)`` with Ctrl-C (as the terminal sends it) ``after`` seconds; it must
    raise KeyboardInterrupt within a second."""
    sent = []
    timer = threading.Timer(after, lambda: (sent.append(time.perf_counter()),
                                            _thread.interrupt_main()))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run(n_sweeps)
        stopped = time.perf_counter()
    finally:
        timer.cancel()
        timer.join()
    assert stopped - sent[0] < 1.0, f"stopped {stopped - sent[0]:.2f} s after Ctrl-C"


@pytest.mark.parametrize("schedule", ["block", "sequential"])
def test_an_interrupted_sampler_holds_the_chains_of_whole_sweeps(schedule):
    """After Ctrl-C, the chains and their streams are those of some number k of whole sweeps
    (of a sampler that was never interrupted), and the sampler goes on from there."""
    model = pe.RBM(400, 300, rng=1)
    sampler = pe.GibbsSampler(model, n_chains=24, schedule=schedule, rng=3)
    _interrupted(sampler.run, 10000)          # 5 to 10 s uninterrupted
    stopped = sampler.get_state()
    reference = pe.GibbsSampler(model, n_chains=24, schedule=schedule, rng=3)
    for k in range(10**5):
        if np.array_equal(reference.get_state().streams, stopped.streams):
            break
        reference.run(1)
    assert k > 0
    for g in model.units:
        np.testing.assert_array_equal(reference.state[g], stopped.values[g])
    np.testing.assert_array_equal(sampler.run(5).state["x"], reference.run(5).state["x"])
    assert set(np.unique(sampler.state["h"])) <= {0.0, 1.0}


def test_an_interrupted_tempering_run_keeps_its_counts_and_replicas_in_step():
    model = pe.RBM(100, 50, rng=1)
    pt = pe.ParallelTempering(model, [1.0, 0.7, 0.4], n_chains=16, rng=2)
    _interrupted(pt.run, 10000)               # 5 s uninterrupted
    stopped = pt.get_state()
    reference = pe.ParallelTempering(model, [1.0, 0.7, 0.4], n_chains=16, rng=2)
    while reference.swap_statistics.proposed.sum() < stopped.swaps.proposed.sum():
        reference.run(1)
    np.testing.assert_array_equal(reference.swap_statistics.accepted, stopped.swaps.accepted)
    np.testing.assert_array_equal(reference.get_state().replicas.streams,
                                  stopped.replicas.streams)
    np.testing.assert_array_equal(reference.state["x"], pt.state["x"])
    np.testing.assert_array_equal(pt.run(3).state["x"], reference.run(3).state["x"])


def test_a_sigint_handler_of_the_user_runs_between_chunks():
    """SIGINT is held while a chunk runs, then given to the handler that was installed."""
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        sampler = pe.GibbsSampler(pe.RBM(200, 100, rng=1), n_chains=24, rng=3)
        timer = threading.Timer(0.1, _thread.interrupt_main)
        timer.start()
        sampler.run(1000)                           # not stopped: the handler only counts
        timer.join()
        assert calls == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is not None
        assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGINT, previous)


# -- chunks change nothing --------------------------------------------------------------
CHUNKINGS = ["one call", "one unit", "growing"]


def _chunked(monkeypatch, module, how):
    """Run the kernels of ``module`` in one call, in chunks of one unit of work, or in
    chunks doubling in size."""
    if how == "one call":
        monkeypatch.setattr(module, "timed_chunks",
                            lambda total, first=1: iter([(0, total)] if total else []))
    else:
        monkeypatch.setattr("pgm_energy._run.CHUNK_SECONDS", 0.0 if how == "one unit" else 1e9)


def _gibbs_models():
    rng = np.random.default_rng(5)
    user = pe.EnergyModel({"x": 8, "h": 4}, [pe.Bias("x"), pe.Pairwise("h", "x"),
                                              CountPenalty("x", 3, theta=0.3)], visible=["x"])
    user.params["W"][...] = rng.normal(size=(4, 8))
    cat = pe.EnergyModel({"x": pe.Categorical(5, 3), "h": 4},
                         [pe.Bias("x"), pe.Bias("h", name="c"), pe.Pairwise("h", "x")],
                         visible=["x"])
    cat.params["W"][...] = rng.normal(size=cat.params["W"].shape)
    return [(pe.RBM(12, 7, rng=0), "block"), (pe.RBM(12, 7, rng=0), "sequential"),
            (pe.Ising([(0, 1), (1, 2), (2, 3)], np.ones(3)), "chromatic"), (user, "auto"),
            (cat, "auto")]


@pytest.mark.parametrize("n_threads", [1, 2])
def test_gibbs_chains_do_not_depend_on_the_chunks(monkeypatch, n_threads):
    """run(n) is run(a) then run(n - a), and the same in chunks of one sweep or of many."""
    for model, schedule in _gibbs_models():
        results = []
        for how, parts in [("one call", (40,)), ("one call", (13, 27)), ("one unit", (40,)),
                           ("one unit", (1, 39)), ("growing", (40,))]:
            with monkeypatch.context() as patch:
                _chunked(patch, pe.sampling, how)
                sampler = pe.GibbsSampler(model, n_chains=19, schedule=schedule, rng=7,
                                          n_threads=n_threads)
                for n in parts:
                    sampler.run(n)
            results.append(sampler.get_state())
        for got in results[1:]:
            np.testing.assert_array_equal(got.streams, results[0].streams)
            for g in model.units:
                np.testing.assert_array_equal(got.values[g], results[0].values[g])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("delta_fraction", [0.0, 0.1, 1.0])     # products, mixed, row updates
def test_ais_weights_do_not_depend_on_the_chunks(monkeypatch, dtype, delta_fraction):
    """The kernel walks the schedule in chunks, the fields and changed units carried from
    one call to the next: the same log weights, bit for bit, as the walk in one call."""
    monkeypatch.setattr(pe.ais, "DELTA_FRACTION", delta_fraction)
    model = pe.RBM(30, 20, rng=1)
    model.params["W"][...] *= 4.0
    samples = np.random.default_rng(0).integers(0, 2, (21, 30))
    results = []
    for how in CHUNKINGS:
        for n_threads in (1, 2):
            with monkeypatch.context() as patch:
                _chunked(patch, pe.ais, how)
                forward = pe.ais.log_partition(model, n_betas=60, n_runs=70, rng=3, dtype=dtype,
                                               n_threads=n_threads)
                reverse = pe.ais.reverse_log_partition(model, samples, n_betas=60, rng=4,
                                                       dtype=dtype, n_threads=n_threads)
            results.append((forward.log_weights, reverse.log_weights))
    for got in results[1:]:
        np.testing.assert_array_equal(got[0], results[0][0])
        np.testing.assert_array_equal(got[1], results[0][1])


def _enumeration_models():
    rng = np.random.default_rng(8)
    user = pe.EnergyModel({"x": pe.Categorical(3, 3), "y": 14, "h": 3},
                          [pe.Bias("y"), pe.Pairwise("h", "y"), pe.Lateral("y"),
                           pe.Pairwise("h", "x", name="V"), CountPenalty("y", 5, theta=0.3)],
                          visible=["x", "y"])
    for name in ("W", "U", "V"):
        values = 0.3 * rng.normal(size=user.params[name].shape)
        user.params[name][...] = (np.triu(values, 1) + np.triu(values, 1).T if name == "U"
                                  else values)
    return [pe.RBM(24, 18, rng=0), user]


@pytest.mark.parametrize("n_threads", [1, 2])
def test_enumeration_does_not_depend_on_the_batches_of_pieces(monkeypatch, n_threads):
    """The kernel runs batches of pieces; their results combine in piece order."""
    for model in _enumeration_models():
        plan = Enumeration(model.graph, (), 1.0, n_threads)
        assert plan.n_pieces >= 4
        results = []
        for how in CHUNKINGS:
            with monkeypatch.context() as patch:
                _chunked(patch, pe.exact.enumeration, how)
                results.append((pe.exact.log_partition(model, method="enumerate",
                                                       n_threads=n_threads),
                                pe.exact.expectations(model, method="enumerate",
                                                      n_threads=n_threads)))
        for log_z, expectations in results[1:]:
            assert log_z == results[0][0]
            for name, value in expectations.items():
                np.testing.assert_array_equal(value, results[0][1][name])


def test_large_enumerations_come_in_pieces_small_enough_to_interrupt(monkeypatch):
    """Pieces hold at most _PIECE_WORK unit operations (about 0.05 s), their number depends
    on the model only; small models keep their split, and a finer split the same answer."""
    big = pe.RBM(784, 27, rng=0).graph
    plans = [Enumeration(big, (), 1.0, n_threads) for n_threads in (1, 2, 8)]
    assert len({(p.n_prefix, p.n_pieces) for p in plans}) == 1
    assert 2.0 ** plans[0].log2_operations / plans[0].n_pieces <= enumeration._PIECE_WORK
    small = pe.RBM(40, 20, rng=0)
    assert Enumeration(small.graph, (), 1.0, 1).n_pieces == 64     # 2^6 pieces for threads
    want = pe.exact.log_partition(small, method="enumerate")
    want_expectations = pe.exact.expectations(small, method="enumerate")
    monkeypatch.setattr(enumeration, "_PIECE_WORK", 2**12)
    assert Enumeration(small.graph, (), 1.0, 1).n_pieces == 2**14
    assert pe.exact.log_partition(small, method="enumerate") == pytest.approx(want, rel=1e-13)
    for name, value in pe.exact.expectations(small, method="enumerate").items():
        np.testing.assert_allclose(value, want_expectations[name], rtol=1e-11, atol=1e-14)


def test_samplers_in_threads_leave_the_blas_thread_count_as_they_found_it():
    """Block sweeps hold BLAS to one thread (a process-wide setting): overlapping holders in
    two threads must restore the count the process had, not each other's one."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"]

    before = blas_threads()
    model = pe.RBM(100, 50, rng=0)

    def run(n):
        pe.GibbsSampler(model, n_chains=200, n_threads=2, schedule="block", rng=0).run(n)

    for _ in range(3):
        first = threading.Thread(target=run, args=(300,))
        second = threading.Thread(target=run, args=(900,))
        first.start()
        time.sleep(0.01)
        second.start()
        first.join()
        second.join()
        assert blas_threads() == before
