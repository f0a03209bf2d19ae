"""Pieces on an executor: the same answers as the plain calls, faults, checkpoints, Dask."""
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy import exact
from pgm_energy.distributed import Runner

TINY = 1e-6            # piece_seconds: split even small problems into many pieces


def dense_ising(n, seed=0):
    rng = np.random.default_rng(seed)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n)]
    return pe.Ising(edges, couplings=rng.normal(0, 0.3, len(edges)),
                    fields=rng.normal(0, 0.3, n))


def bm_with_hidden():
    return pe.BoltzmannMachine(14, 4, rng=1)


class Faulty:
    """An executor around a thread pool whose pieces in ``fail`` raise (``times`` times
    each); it counts the pieces submitted."""

    def __init__(self, pool, fail=(), times=1):
        self.pool, self.fail, self.times = pool, set(fail), times
        self.submitted, self.failed = [], {}

    def submit(self, fn, shared, piece):
        index = len(self.submitted)
        self.submitted.append(piece)
        key = repr(piece)
        if key in self._failing and self.failed.get(key, 0) < self.times:
            self.failed[key] = self.failed.get(key, 0) + 1
            return self.pool.submit(_fail, f"injected fault in submission {index}")
        return self.pool.submit(fn, shared, piece)

    def fail_pieces(self, pieces):
        self._failing = {repr(pieces[i]) for i in self.fail}


def _fail(message):
    raise MemoryError(message)


def pieces_of(model, runner):
    """The piece ranges an enumeration of ``model`` sends to ``runner``."""
    seen = []

    class Recorder:
        def submit(self, fn, shared, piece):
            seen.append(piece)
            future = Future()
            future.set_result(fn(shared, piece))
            return future
    exact.log_partition(model, method="enumerate", executor=Runner(
        Recorder(), piece_seconds=runner.piece_seconds))
    return seen


@pytest.fixture(scope="module")
def process_pool():
    """Forked workers, after this process has run OpenMP threads (fork-safety)."""
    exact.log_partition(dense_ising(20), method="enumerate", n_threads=2)
    pe.GibbsSampler(pe.RBM(30, 10, rng=0), n_chains=64, rng=0, n_threads=2).run(3)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


def test_exact_functions_on_a_process_pool_equal_the_plain_calls(process_pool):
    runner = Runner(process_pool, piece_seconds=TINY)
    model = dense_ising(20)
    assert exact.log_partition(model, method="enumerate", executor=runner) == \
        exact.log_partition(model, method="enumerate")
    plain = exact.marginals(model, method="enumerate", pairwise=True)
    spread = exact.marginals(model, method="enumerate", pairwise=True, executor=runner)
    np.testing.assert_allclose(spread[0]["s"], plain[0]["s"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(spread[2], plain[2], rtol=0, atol=1e-12)
    state, energy = exact.map_state(model, method="enumerate", executor=runner)
    assert (state["s"] == exact.map_state(model, method="enumerate")[0]["s"]).all()
    bm = bm_with_hidden()
    X = np.random.default_rng(0).integers(0, 2, (3, 14)).astype(float)
    for compute in (exact.log_likelihood, exact.gradient):
        a = compute(bm, X, method="enumerate")
        b = compute(bm, X, method="enumerate", executor=runner)
        for key in (a if isinstance(a, dict) else [None]):
            np.testing.assert_allclose(b if key is None else b[key],
                                       a if key is None else a[key], rtol=0, atol=1e-12)


def test_ais_and_samplers_on_a_process_pool_give_the_same_draws(process_pool):
    runner = Runner(process_pool, piece_seconds=TINY)
    rbm = pe.RBM(20, 8, rng=0)
    a = pe.ais.log_partition(rbm, n_betas=100, n_runs=150, rng=0)
    b = pe.ais.log_partition(rbm, n_betas=100, n_runs=150, rng=0, executor=runner)
    np.testing.assert_array_equal(a.log_weights, b.log_weights)      # bit for bit
    bm = bm_with_hidden()                   # the joint path: Gibbs chains as runs
    a = pe.ais.reverse_log_partition(bm, pe.GibbsSampler(bm, 20, rng=1).run(5).state,
                                     n_betas=50, rng=0)
    b = pe.ais.reverse_log_partition(bm, pe.GibbsSampler(bm, 20, rng=1).run(5).state,
                                     n_betas=50, rng=0, executor=runner)
    np.testing.assert_allclose(a.log_weights, b.log_weights, rtol=0, atol=1e-12)
    for make in (lambda: pe.GibbsSampler(rbm, n_chains=40, rng=2, schedule="sequential"),
                 lambda: pe.ClusterSampler(rbm, n_chains=40, rng=2)):
        here, there = make(), make()
        np.testing.assert_array_equal(here.sample(4, thin=2, burn_in=3)["h"],
                                      there.sample(4, thin=2, burn_in=3, executor=runner)["h"])
        np.testing.assert_array_equal(here.run(2).state["x"], there.run(2).state["x"])


def test_a_failing_piece_is_retried_then_named():
    model = dense_ising(18)
    plain = exact.log_partition(model, method="enumerate")
    with ThreadPoolExecutor(2) as pool:
        runner = Runner(pool, piece_seconds=TINY)
        pieces = pieces_of(model, runner)
        assert len(pieces) >= 4
        flaky = Faulty(pool, fail=[1, 3], times=2)
        flaky.fail_pieces(pieces)
        assert exact.log_partition(model, method="enumerate",
                                   executor=Runner(flaky, piece_seconds=TINY)) == plain
        assert len(flaky.submitted) == len(pieces) + 4
        broken = Faulty(pool, fail=[2], times=10)
        broken.fail_pieces(pieces)
        with pytest.raises(RuntimeError, match=r"piece 2 of \d+ .* failed 3 times"):
            exact.log_partition(model, method="enumerate",
                                executor=Runner(broken, piece_seconds=TINY, retries=2))


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    model = dense_ising(18)
    plain = exact.log_partition(model, method="enumerate")
    path = tmp_path / "pieces.npz"
    with ThreadPoolExecutor(1) as pool:
        pieces = pieces_of(model, Runner(pool, piece_seconds=TINY))
        stop = Faulty(pool, fail=range(3, len(pieces)), times=99)
        stop.fail_pieces(pieces)
        with pytest.raises(RuntimeError, match="failed"):
            exact.log_partition(model, method="enumerate", executor=Runner(
                stop, piece_seconds=TINY, retries=0, checkpoint=path))
        assert path.exists()
        again = Faulty(pool)
        again.fail_pieces(pieces)
        resumed = exact.log_partition(model, method="enumerate", executor=Runner(
            again, piece_seconds=TINY, checkpoint=path))
        assert resumed == plain
        assert 0 < len(again.submitted) <= len(pieces) - 3      # finished pieces kept
        with pytest.raises(ValueError, match="another problem"):
            exact.log_partition(dense_ising(18, seed=5), method="enumerate",
                                executor=Runner(pool, piece_seconds=TINY, checkpoint=path))


def test_bad_executors_and_models_are_refused():
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        exact.log_partition(dense_ising(4), executor=object())
    with pytest.raises(ValueError, match="piece_seconds"):
        Runner(ThreadPoolExecutor(1), piece_seconds=0)

    class Mine(pe.Bias):
        pass
    Mine.__module__ = "__main__"
    model = pe.EnergyModel({"s": pe.Spin(6)}, [Mine("s", name="b", value=np.ones(6)),
                                              pe.Lateral("s", name="U")])
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ValueError, match="defined in __main__"):
            pe.ais.log_partition(model, n_betas=10, n_runs=4, rng=0,
                                 executor=Runner(pool, piece_seconds=TINY))


def test_unpicklable_models_are_refused_and_progress_is_shown(capsys):
    model = pe.BoltzmannMachine(6, 2, rng=0)
    model.terms[0].note = lambda: None          # a lambda does not pickle
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(TypeError, match="cannot be pickled"):
            pe.ais.log_partition(model, n_betas=10, n_runs=4, rng=0,
                                 executor=Runner(pool, piece_seconds=TINY))
        runner = Runner(pool, piece_seconds=TINY, progress=True)
        exact.log_partition(dense_ising(18), method="enumerate", executor=runner)
    assert "exact enumeration" in capsys.readouterr().err


def test_refusal_past_max_states_names_the_executor():
    with pytest.raises(ValueError, match="executor="):
        exact.log_partition(dense_ising(30), method="enumerate", max_states=2**10)


def test_a_dask_cluster_gives_the_plain_answers_even_when_a_worker_dies():
    """Two worker processes; then one is killed while the pieces run: Dask reruns its
    pieces on the worker that replaces it, and the sum is the same."""
    distributed = pytest.importorskip("distributed")
    model = dense_ising(26)
    plain = exact.log_partition(model, method="enumerate")
    rbm = pe.RBM(16, 6, rng=0)
    ais = pe.ais.log_partition(rbm, n_betas=60, n_runs=130, rng=0)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        runner = Runner(client.get_executor(), piece_seconds=0.05)
        assert exact.log_partition(model, method="enumerate", executor=runner) == plain
        spread = pe.ais.log_partition(rbm, n_betas=60, n_runs=130, rng=0,
                                      executor=Runner(client.get_executor(), piece_seconds=TINY))
        np.testing.assert_array_equal(spread.log_weights, ais.log_weights)
        victim = next(iter(client.run(os.getpid).values()))
        killed_at = []

        def kill():
            os.kill(victim, signal.SIGKILL)
            killed_at.append(time.monotonic())
        killer = threading.Timer(0.2, kill)
        killer.start()
        try:
            assert exact.log_partition(model, method="enumerate", executor=runner) == plain
            ended = time.monotonic()
        finally:
            killer.join()
        assert killed_at and killed_at[0] < ended          # it died while pieces ran
        assert victim not in client.run(os.getpid).values()


def test_a_large_elimination_is_sliced_into_pieces_with_the_same_answers():
    """Cutset conditioning: a 14 x 14 grid's elimination, its widest units held at each of
    their values in pieces, gives log Z and marginals of the plain sweep."""
    from pgm_energy.exact.cost import make_plan
    from pgm_energy.exact.slicing import Sliced

    L = 14
    edges = [(r * L + c, r * L + c + 1) for r in range(L) for c in range(L - 1)]
    edges += [(r * L + c, (r + 1) * L + c) for r in range(L - 1) for c in range(L)]
    rng = np.random.default_rng(0)
    grid = pe.Ising(edges, couplings=rng.normal(0, 0.5, len(edges)),
                    fields=rng.normal(0, 0.3, L * L))
    with ThreadPoolExecutor(2) as pool:
        runner = Runner(pool, piece_seconds=1e-4)
        plan = make_plan(grid.graph, (), method="eliminate", executor=runner)
        assert isinstance(plan, Sliced) and len(plan.units) >= 2
        plain = exact.log_partition(grid, method="eliminate")
        np.testing.assert_allclose(exact.log_partition(grid, method="eliminate",
                                                       executor=runner), plain, rtol=1e-13)
        a = exact.marginals(grid, method="eliminate", pairwise=True)
        b = exact.marginals(grid, method="eliminate", pairwise=True, executor=runner)
        np.testing.assert_allclose(b[0]["s"], a[0]["s"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(b[2], a[2], rtol=0, atol=1e-12)
        state, energy = exact.map_state(grid, method="eliminate", executor=runner)
        assert energy == pytest.approx(exact.map_state(grid, method="eliminate")[1], abs=1e-9)
        small = pe.Ising(edges[:20], couplings=0.3)        # too small to slice
        assert not isinstance(make_plan(small.graph, (), method="eliminate",
                                        executor=Runner(pool)), Sliced)


def test_partial_clamps_travel_with_their_chains():
    rbm = pe.RBM(12, 5, rng=0)
    clamp = {"x": np.where(np.random.default_rng(1).random((30, 12)) < 0.5, np.nan, 1.0)}
    makers = (lambda: pe.GibbsSampler(rbm, n_chains=30, rng=4, schedule="sequential"),
              lambda: pe.ClusterSampler(rbm, n_chains=30, rng=4))
    with ThreadPoolExecutor(2) as pool:
        for make in makers:
            here, there = make(), make()
            a = here.sample(3, burn_in=2, clamp=clamp)
            b = there.sample(3, burn_in=2, clamp=clamp,
                             executor=Runner(pool, piece_seconds=TINY))
            for g in a:
                np.testing.assert_array_equal(a[g], b[g])
