"""Gibbs sampling speed: pgm_energy side by side with numpy samplers and dwave-samplers.

Two comparisons, all in one run, each printed as a table with speed ratios:

1. Spin updates per second on a sparse random Ising model: 10^4 spins, 3*10^4 distinct random
   edges (mean degree 6), J ~ N(0, 1), no fields, beta = 1.
   (a) pgm_energy ``schedule="chromatic"``, 100 chains, 1 thread; (b) the same on 2 threads;
   (c) a numpy chromatic sampler (greedy colouring, colours made contiguous, each colour's
   fields for all chains from one scipy.sparse CSR product, then the sigmoid test, in place);
   (c') for reference, its textbook form (fancy-indexed colour rows, 1 / (1 + exp), where);
   (d) a numpy sequential scan, vectorised over the 100 chains;
   (e) dwave-samplers' ``SimulatedAnnealingSampler``, one chain, fixed beta = 1 (its default
   Metropolis acceptance, and its Gibbs acceptance for information);
   (f) pgm_energy ``schedule="sequential"``, one chain, 1 thread.
   Rate = n_sweeps * n_spins * n_chains / time.
   Targets: (a) >= 3x (c) and >= 2.5e8 updates/s; (b) >= 1.8x (a); (f) >= 1x (e).
   Checks: 1 and 2 threads give identical chains from the same seed, and the mean
   energy per spin at beta = 0.3 after burn-in agrees between pgm_energy and the numpy
   chromatic sampler within 4 standard errors.
2. RBM(784, 500), W ~ N(0, 0.01^2), zero biases, 1000 chains: the time of one
   ``schedule="block"`` sweep against the two float64 GEMMs it needs, timed with numpy in the
   same run, (1000x784)@(784x500) and (1000x500)@(500x784): on 2 threads (BLAS on its
   default 2 threads) and on 1 thread (BLAS limited to 1 thread by threadpoolctl); for
   information also OpenMP on 2 threads with BLAS on 1.
   Target: sweep <= 1.3x the GEMMs on 2 threads.

Timings are best-of-N; before each row the script waits for other processes in the VM to
go quiet and retries a row they disturbed, then prints the CPU they used meanwhile ('other
load', in cores). Rows on 2 threads also print how a float64 GEMM scaled from 1 to 2 BLAS
threads right after them ('2-core', about 2.0 when both cores are free; on this VM it
sometimes drops under 1.8 while no process in the VM is busy), and rows under 1.8 are retried
too.

Peers that are not installed are skipped (``pip install dwave-samplers threadpoolctl``).

Run from the repository root; for fair numpy timings, let numpy's OpenBLAS pick its own
kernel (the variables below pin an older one):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gibbs.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gibbs.py --quick

The exit status is 1 if a correctness check fails, else 0 (missed speed targets are
reported, not failed).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


import pgm_energy as pe

from _common import (OtherLoad, Table, best_of, environment_report, fmt_rate,
                     fmt_ratio, fmt_time, optional_import)

N_SIGMA = 4.0             # allowed distance between mean energies, in standard errors


@dataclass
class Sizes:
    """Problem sizes, sweep counts and repeats for one run (full or --quick)."""

    n_spins: int              # spins of the sparse model (3 n edges)
    n_chains: int             # chains for rows (a)-(d)
    sweeps_pe: int            # sweeps per timed call, pgm_energy many chains
    sweeps_chromatic: int     # numpy chromatic
    sweeps_sequential: int    # numpy sequential scan
    sweeps_one_chain: int     # dwave-samplers and pgm_energy with one chain
    rbm_chains: int           # chains of the RBM sampler
    rbm_sweeps: int           # block sweeps per timed call
    burn_in: int              # sweeps before measuring the energy at beta = 0.3
    n_measure: int            # energy snapshots per chain (one per sweep)
    repeat: int               # timed repeats (best of)


FULL = Sizes(n_spins=10_000, n_chains=100, sweeps_pe=200, sweeps_chromatic=40,
             sweeps_sequential=4, sweeps_one_chain=5000, rbm_chains=1000, rbm_sweeps=20,
             burn_in=200, n_measure=100, repeat=5)
QUICK = Sizes(n_spins=2000, n_chains=20, sweeps_pe=50, sweeps_chromatic=10,
              sweeps_sequential=1, sweeps_one_chain=500, rbm_chains=100, rbm_sweeps=3,
              burn_in=50, n_measure=20, repeat=2)


class Timer:
    """Best-of timing that avoids other processes' load where it can, and reports it.

    ``time(fn, repeat)`` waits (up to ``max_wait`` seconds) until other processes used under
    0.1 core for half a second, then times ``repeat`` calls after a warm-up; if other
    processes used 0.1 core or more meanwhile, it tries again (``retries`` times in all) and
    keeps the attempt they disturbed least. With ``parallel=True`` (rows that need both
    cores) it also measures, right after the timing, how much faster a float64 GEMM runs on
    2 BLAS threads than on 1 (``two_core_scaling``): on this VM two cores are sometimes not
    really available although no process in the VM is busy, and an attempt that scaled
    under 1.8x is retried too.

    Returns ``(best_s, other, scaling)``: the best time, the CPU other processes used during
    that attempt in cores (1.0 = one core busy), and the GEMM scaling (None unless parallel).
    """

    QUIET = 0.1
    TWO_CORES = 1.8

    def __init__(self, max_wait: float, retries: int = 3):
        self.max_wait = max_wait
        self.retries = retries
        self.waited = 0.0

    def wait_quiet(self):
        deadline = time.perf_counter() + self.max_wait
        while time.perf_counter() < deadline:
            meter = LoadMeter()
            time.sleep(0.5)
            if meter.cores() < self.QUIET:
                return
            self.waited += 0.5

    def time(self, fn, repeat: int, warmup: int = 1, parallel: bool = False):
        attempts = []
        for _ in range(max(self.retries, 1)):
            self.wait_quiet()
            meter = LoadMeter()
            best, _ = best_of(fn, repeat, warmup)
            other = meter.cores()
            scaling = two_core_scaling() if parallel else None
            disturbed = other >= self.QUIET or (parallel and scaling < self.TWO_CORES)
            attempts.append((disturbed, other, best, scaling))
            if not disturbed:
                break
        _, other, best, scaling = min(attempts, key=lambda a: a[:2])
        return best, other, scaling


_CHECK = {}


def two_core_scaling() -> float:
    """Time of a 600^3 float64 GEMM on 1 BLAS thread over its time on 2 (about 2.0 when both
    cores are free; nan without threadpoolctl)."""
    tpc = optional_import("threadpoolctl")
    if tpc is None:
        return float("nan")
    if not _CHECK:
        gen = np.random.default_rng(0)
        _CHECK["a"], _CHECK["b"] = gen.random((600, 600)), gen.random((600, 600))
    a, b = _CHECK["a"], _CHECK["b"]
    with tpc.threadpool_limits(limits=2, user_api="blas"):
        two, _ = best_of(lambda: a @ b, 5)
    with tpc.threadpool_limits(limits=1, user_api="blas"):
        one, _ = best_of(lambda: a @ b, 5)
    return one / two


class LoadMeter(OtherLoad):
    """OtherLoad as a number: CPU used by other processes since creation, in cores."""

    def cores(self) -> float:
        end = self._snapshot()
        if self._start is None or end is None:
            return float("nan")
        busy, own, wall = (e - s for e, s in zip(end, self._start))
        return max(busy - own, 0.0) / wall


def fmt_load(cores: float, scaling=None) -> str:
    """Other processes' CPU use during a timing, in cores, and the 2-core GEMM check."""
    return f"{cores:.2f}" if scaling is None else f"{cores:.2f}; 2-core {scaling:.2f}x"


def fmt_x(ratio: float) -> str:
    """A ratio with two decimals ('1.79x'), for ratios compared with a target."""
    return f"{ratio:.2f}x"


class Checks:
    """Collects correctness checks; any failure makes the run exit with status 1."""

    def __init__(self):
        self.failures = []

    def require(self, ok: bool, message: str):
        if not ok:
            self.failures.append(message)


class Targets:
    """Collects speed targets, met or missed, for the summary at the end."""

    def __init__(self):
        self.lines = []

    def check(self, label: str, value: float, bound: float, at_least: bool = True) -> str:
        met = value >= bound if at_least else value <= bound
        rel = ">=" if at_least else "<="
        self.lines.append(f"{'met   ' if met else 'MISSED'} {label}: {value:.4g} {rel} {bound:g}")
        return "met" if met else "MISSED"


# ---------------------------------------------------------------------------------------
# The sparse model
# ---------------------------------------------------------------------------------------
def sparse_graph(n: int, seed: int):
    """3n distinct random edges (i < j) on n spins and J ~ N(0, 1) per edge."""
    rng = np.random.default_rng(seed)
    m = 3 * n
    keys = np.empty(0, np.int64)
    while len(keys) < m:              # draw pairs until 3n distinct ones
        i = rng.integers(0, n, 2 * m)
        j = rng.integers(0, n, 2 * m)
        i, j = np.minimum(i, j), np.maximum(i, j)
        keys = np.unique(np.concatenate([keys, (i * n + j)[i != j]]))
    keys = rng.permutation(keys)[:m]
    keys = np.sort(keys)
    edges = np.stack([keys // n, keys % n], axis=1)        # i < j, sorted by (i, j)
    return edges, rng.standard_normal(m)


def coupling_matrix(edges, couplings, n) -> sp.csr_matrix:
    """The symmetric coupling matrix A (A_ij = A_ji = J_e), as CSR."""
    i, j = edges[:, 0], edges[:, 1]
    a = sp.coo_matrix((np.concatenate([couplings, couplings]),
                       (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))
    return a.tocsr()


def greedy_colouring(adj: sp.csr_matrix) -> np.ndarray:
    """Colour units in index order with the smallest colour none of their neighbours has."""
    n = adj.shape[0]
    colour = np.full(n, -1, np.int64)
    for u in range(n):
        taken = set(colour[adj.indices[adj.indptr[u]:adj.indptr[u + 1]]].tolist())
        c = 0
        while c in taken:
            c += 1
        colour[u] = c
    return colour


def energy_per_spin(spins: np.ndarray, edges, couplings) -> np.ndarray:
    """Per chain ``E / n = -sum_e J_e s_i s_j / n`` for spins of shape (n, chains)."""
    return -(couplings[:, None] * spins[edges[:, 0]] * spins[edges[:, 1]]).sum(0) / len(spins)


# ---------------------------------------------------------------------------------------
# numpy samplers (both exact Gibbs: P(s_i = +1 | rest) = sigmoid(2 beta f_i))
# ---------------------------------------------------------------------------------------
class NumpyChromatic:
    """Chromatic Gibbs in numpy, all chains at once; state (n, chains) float64.

    Units are renumbered so each colour is a contiguous slice; per colour, the fields of its
    units for all chains are one CSR (colour rows) times dense (n, chains) product, then
    ``s = +1`` where ``u (1 + exp(-2 beta f)) < 1``, else -1.
    """

    def __init__(self, adj, n_chains, beta, seed):
        colour = greedy_colouring(adj)
        self.perm = np.argsort(colour, kind="stable")       # new index -> old index
        permuted = adj[self.perm][:, self.perm].tocsr()
        bounds = np.searchsorted(colour[self.perm], np.arange(colour.max() + 2))
        self.blocks = [(lo, hi, permuted[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.n_colours = len(self.blocks)
        self.beta = beta
        self.rng = np.random.default_rng(seed)
        self.state = self.rng.choice([-1.0, 1.0], size=(adj.shape[0], n_chains))
        widest = max(hi - lo for lo, hi, _ in self.blocks)
        self._u = np.empty((widest, n_chains))

    def run(self, n_sweeps):
        s, minus_two_beta = self.state, -2.0 * self.beta
        for _ in range(n_sweeps):
            for lo, hi, rows in self.blocks:
                z = rows @ s                           # (hi - lo, chains) local fields
                z *= minus_two_beta
                np.exp(z, out=z)
                z += 1.0
                u = self.rng.random(out=self._u[:hi - lo])
                u *= z
                np.copysign(1.0, 1.0 - u, out=s[lo:hi])   # +1 where u (1 + e^{-2bf}) < 1
        return self

    def spins(self):
        """State (n, chains) in the original unit numbering."""
        out = np.empty_like(self.state)
        out[self.perm] = self.state
        return out


class NumpySequential:
    """Sequential-scan Gibbs in numpy, vectorised over chains; state (n, chains).

    The uniforms of a sweep are drawn at once and turned into thresholds
    ``t = logit(u) / (2 beta)``; unit i becomes +1 for the chains where
    ``sum_j J_ij s_j > t`` (the same as ``u < sigmoid(2 beta f)``).
    """

    def __init__(self, adj, n_chains, beta, seed):
        n = adj.shape[0]
        self.neighbours = [adj.indices[adj.indptr[i]:adj.indptr[i + 1]] for i in range(n)]
        self.weights = [adj.data[adj.indptr[i]:adj.indptr[i + 1]] for i in range(n)]
        self.beta = beta
        self.rng = np.random.default_rng(seed)
        self.state = self.rng.choice([-1.0, 1.0], size=(n, n_chains))

    def run(self, n_sweeps):
        s = self.state
        for _ in range(n_sweeps):
            u = self.rng.random(s.shape)
            threshold = (np.log(u) - np.log1p(-u)) / (2.0 * self.beta)
            for i, (nb, w) in enumerate(zip(self.neighbours, self.weights)):
                np.copysign(1.0, w @ s[nb] - threshold[i], out=s[i])
        return self


class NumpyChromaticTextbook:
    """The straightforward version of :class:`NumpyChromatic`, for reference.

    No renumbering and no in-place work: per colour, ``p = 1 / (1 + exp(-2 beta A[c] @ s))``
    and ``s[c] = where(u < p, 1, -1)`` with fancy-indexed rows ``c`` of the state (n, chains).
    """

    def __init__(self, adj, n_chains, beta, seed):
        colour = greedy_colouring(adj)
        self.groups = [np.flatnonzero(colour == k) for k in range(colour.max() + 1)]
        self.rows = [adj[g] for g in self.groups]
        self.beta = beta
        self.rng = np.random.default_rng(seed)
        self.state = self.rng.choice([-1.0, 1.0], size=(adj.shape[0], n_chains))

    def run(self, n_sweeps):
        s = self.state
        for _ in range(n_sweeps):
            for units, rows in zip(self.groups, self.rows):
                p = 1.0 / (1.0 + np.exp(-2.0 * self.beta * (rows @ s)))
                s[units] = np.where(self.rng.random(p.shape) < p, 1.0, -1.0)
        return self


# ---------------------------------------------------------------------------------------
# 1. Sparse Ising: updates per second
# ---------------------------------------------------------------------------------------
def pe_sampler(model, n_chains, schedule, n_threads, beta=1.0, rng=0):
    return pe.GibbsSampler(model, n_chains=n_chains, schedule=schedule, beta=beta, rng=rng,
                           n_threads=n_threads)


def time_sweeps(timer, run, n_sweeps, repeat, parallel=False):
    """``(best time, other load, 2-core scaling)`` of ``run(n_sweeps)`` (after a warm-up)."""
    return timer.time(lambda: run(n_sweeps), repeat, parallel=parallel)


def chain_blocks(n_chains, n_threads) -> str:
    """How pgm_energy splits the chains into blocks for its threads (e.g. '56+44')."""
    from pgm_energy._chains import chain_block

    block = chain_block(n_chains, n_threads)
    sizes = [min(block, n_chains - c0) for c0 in range(0, n_chains, block)]
    return "+".join(map(str, sizes))


def dwave_bqm(dimod, edges, couplings, n):
    """The Ising model as a dimod BQM (dimod's sign: E = sum J s s, so J -> -J)."""
    bqm = dimod.BinaryQuadraticModel.from_ising(
        {}, {(int(i), int(j)): -float(w) for (i, j), w in zip(edges, couplings)})
    bqm.add_linear_from({i: 0.0 for i in range(n)})
    return bqm


def dwave_time(timer, samplers, bqm, criterion, sizes):
    """(wall time, sampling_ns-only time, other load) of dwave SA at fixed beta = 1."""
    sampler = samplers.SimulatedAnnealingSampler()
    kernel = []

    def call():
        result = sampler.sample(bqm, num_reads=1, num_sweeps=sizes.sweeps_one_chain,
                                beta_range=(1.0, 1.0), beta_schedule_type="linear",
                                proposal_acceptance_criteria=criterion, seed=1)
        kernel.append(result.info["timing"]["sampling_ns"] * 1e-9)
        return result
    t, load, _ = timer.time(call, sizes.repeat)
    return t, min(kernel), load


def bench_sparse(sizes: Sizes, timer: Timer, checks: Checks, targets: Targets):
    n, chains = sizes.n_spins, sizes.n_chains
    edges, couplings = sparse_graph(n, seed=7)
    adj = coupling_matrix(edges, couplings, n)
    model = pe.Ising(edges, couplings, n=n)

    def rate(t, n_sweeps, n_chains=chains):
        return n_sweeps * n * n_chains / t

    # (a), (b): pgm_energy chromatic, 1 and 2 threads.
    pe_rows = {}
    for n_threads in (1, 2):
        sampler = pe_sampler(model, chains, "chromatic", n_threads)
        pe_rows[n_threads] = time_sweeps(timer, sampler.run, sizes.sweeps_pe, sizes.repeat,
                                         parallel=n_threads > 1)
    # Same seed and sweeps on fresh samplers: the chains must not depend on the thread count.
    states = [pe_sampler(model, chains, "chromatic", k).run(10).state["s"] for k in (1, 2)]
    same = np.array_equal(*states)
    checks.require(same, "pgm_energy chromatic: 1 and 2 threads gave different chains")
    n_colours = int(pe_sampler(model, 1, "chromatic", 1)._colour.max()) + 1
    rate_a, rate_b = (rate(pe_rows[k][0], sizes.sweeps_pe) for k in (1, 2))

    # (c), (c'), (d): numpy
    chromatic = NumpyChromatic(adj, chains, 1.0, seed=0)
    t_c, load_c, _ = time_sweeps(timer, chromatic.run, sizes.sweeps_chromatic, sizes.repeat)
    textbook = NumpyChromaticTextbook(adj, chains, 1.0, seed=0)
    t_c2, load_c2, _ = time_sweeps(timer, textbook.run, sizes.sweeps_chromatic, sizes.repeat)
    sequential = NumpySequential(adj, chains, 1.0, seed=0)
    t_d, load_d, _ = time_sweeps(timer, sequential.run, sizes.sweeps_sequential,
                                 max(sizes.repeat // 2, 1))
    rate_c, rate_c2 = rate(t_c, sizes.sweeps_chromatic), rate(t_c2, sizes.sweeps_chromatic)
    rate_d = rate(t_d, sizes.sweeps_sequential)

    # (e), (f): one chain
    one = pe_sampler(model, 1, "sequential", 1)
    t_f, load_f, _ = time_sweeps(timer, one.run, sizes.sweeps_one_chain, sizes.repeat)
    rate_f = rate(t_f, sizes.sweeps_one_chain, 1)
    samplers, dimod = optional_import("dwave.samplers"), optional_import("dimod")
    bqm = dwave_bqm(dimod, edges, couplings, n) if samplers and dimod else None

    table = Table(f"1. Spin updates/s, sparse Ising: {n} spins, {len(edges)} edges (mean degree "
                  f"{2 * len(edges) / n:.0f}), J ~ N(0,1), beta = 1; {n_colours} colours "
                  f"(pgm_energy), {chromatic.n_colours} (numpy); pgm_energy chain blocks "
                  f"{chain_blocks(chains, 1)} (1 thread), {chain_blocks(chains, 2)} (2)",
                  ["method", "chains", "threads", "sweeps", "time", "updates/s", "ratio",
                   "other load", "target"])
    table.add("(a) pgm_energy chromatic", chains, 1, sizes.sweeps_pe, fmt_time(pe_rows[1][0]),
              fmt_rate(rate_a), f"{fmt_x(rate_a / rate_c)} (c)", fmt_load(pe_rows[1][1]),
              targets.check("(a) / (c)", rate_a / rate_c, 3.0) + " >=3x (c)")
    table.add("", None, None, None, None, None, f"{fmt_x(rate_a / rate_c2)} (c')", None,
              targets.check("(a) updates/s", rate_a, 2.5e8) + " >=2.5e8")
    table.add("(b) pgm_energy chromatic", chains, 2, sizes.sweeps_pe, fmt_time(pe_rows[2][0]),
              fmt_rate(rate_b), f"{fmt_x(rate_b / rate_a)} (a)", fmt_load(*pe_rows[2][1:]),
              targets.check("(b) / (a)", rate_b / rate_a, 1.8) + " >=1.8x (a)")
    table.add("(c) numpy chromatic (CSR @ state per colour)", chains, 1,
              sizes.sweeps_chromatic, fmt_time(t_c), fmt_rate(rate_c), "1.0x", fmt_load(load_c),
              "(7-9e7)")
    table.add("(c') same, textbook (fancy index, 1/(1+exp))", chains, 1,
              sizes.sweeps_chromatic, fmt_time(t_c2), fmt_rate(rate_c2),
              f"{fmt_ratio(rate_c2 / rate_c)} (c)", fmt_load(load_c2), "(info)")
    table.add("(d) numpy sequential scan over chains", chains, 1, sizes.sweeps_sequential,
              fmt_time(t_d), fmt_rate(rate_d), f"{fmt_ratio(rate_d / rate_c)} (c)",
              fmt_load(load_d), "(2.2-2.4e7)")
    table.add("(f) pgm_energy sequential", 1, 1, sizes.sweeps_one_chain, fmt_time(t_f),
              fmt_rate(rate_f), "1.0x", fmt_load(load_f), None)
    if bqm is None:
        table.add("(e) dwave-samplers SA", 1, 1, None, "not installed", None, None, None, None)
    for label, criterion in (("(e)", "Metropolis"), ("(e')", "Gibbs")):
        if bqm is None:
            break
        t, kernel, load = dwave_time(timer, samplers, bqm, criterion, sizes)
        r, r_kernel = rate(t, sizes.sweeps_one_chain, 1), rate(kernel, sizes.sweeps_one_chain, 1)
        target = (targets.check(f"(f) / {label} dwave {criterion}", rate_f / r, 1.0)
                  + " (f) >=1x" if criterion == "Metropolis" else "(info)")
        table.add(f"{label} dwave-samplers SA, {criterion}, beta=1", 1, 1,
                  sizes.sweeps_one_chain, fmt_time(t), fmt_rate(r),
                  f"(f) is {fmt_x(rate_f / r)}", fmt_load(load), target)
        table.add("     same, sampling_ns only (no BQM conversion)", 1, 1,
                  sizes.sweeps_one_chain, fmt_time(kernel), fmt_rate(r_kernel),
                  f"(f) is {fmt_x(rate_f / r_kernel)}", None, None)
    table.print()
    print(f"1 and 2 threads give identical chains (same seed, 10 sweeps): {same}.\n'other load': "
          "CPU used by other processes while a row was timed, in cores (of 2); '2-core': GEMM "
          "speed-up from 1 to 2 BLAS threads measured right after a 2-thread row (about 2.0 "
          "when both cores were really available)\n")

    check_energy(model, adj, edges, couplings, sizes, checks)


def check_energy(model, adj, edges, couplings, sizes: Sizes, checks: Checks, beta=0.3):
    """Mean energy per spin at beta after burn-in: pgm_energy (both schedules) vs numpy."""
    chains = sizes.n_chains
    table = Table(f"   Check: mean energy per spin at beta = {beta} after {sizes.burn_in} "
                  f"sweeps, {sizes.n_measure} snapshots x {chains} chains (SE over chains)",
                  ["method", "E / n", "std err", "distance to numpy (SE)"])

    def measure(run, spins):
        run(sizes.burn_in)
        total = np.zeros(chains)
        for _ in range(sizes.n_measure):
            run(1)
            total += energy_per_spin(spins(), edges, couplings)
        per_chain = total / sizes.n_measure
        return per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(chains)

    reference = NumpyChromatic(adj, chains, beta, seed=11)
    ref_mean, ref_se = measure(reference.run, reference.spins)
    for schedule in ("chromatic", "sequential"):
        sampler = pe_sampler(model, chains, schedule, 2, beta=beta, rng=12)
        mean, se = measure(sampler.run, lambda: sampler.state["s"].T)
        distance = abs(mean - ref_mean) / np.hypot(se, ref_se)
        checks.require(distance <= N_SIGMA, f"pgm_energy {schedule} energy {mean:.5f} vs numpy "
                       f"{ref_mean:.5f}: {distance:.1f} standard errors apart")
        table.add(f"pgm_energy {schedule}", f"{mean:.5f}", f"{se:.5f}", f"{distance:.2f}")
    table.add("numpy chromatic", f"{ref_mean:.5f}", f"{ref_se:.5f}", "ref")
    table.print()


# ---------------------------------------------------------------------------------------
# 2. RBM block sweep against its two GEMMs
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def blas_threads(limit):
    """Limit every loaded BLAS (numpy's and scipy's) to ``limit`` threads; None: no change."""
    tpc = optional_import("threadpoolctl")
    if limit is None or tpc is None:
        yield
        return
    with tpc.threadpool_limits(limits=limit, user_api="blas"):
        yield


def bench_rbm(sizes: Sizes, timer: Timer, targets: Targets):
    n_visible, n_hidden, chains = 784, 500, sizes.rbm_chains
    rng = np.random.default_rng(5)
    model = pe.RBM(n_visible, n_hidden, W=0.01 * rng.standard_normal((n_hidden, n_visible)))
    W = model.params["W"].T.copy()                     # (784, 500)
    x = rng.integers(0, 2, (chains, n_visible)).astype(np.float64)
    h = rng.integers(0, 2, (chains, n_hidden)).astype(np.float64)
    out_h, out_x = np.empty((chains, n_hidden)), np.empty((chains, n_visible))

    def gemms():
        np.matmul(x, W, out=out_h)           # (chains x 784) @ (784 x 500)
        np.matmul(h, W.T, out=out_x)         # (chains x 500) @ (500 x 784)

    have_tpc = optional_import("threadpoolctl") is not None
    flop = 2 * 2 * chains * n_visible * n_hidden
    table = Table(f"2. RBM({n_visible}, {n_hidden}), W ~ N(0, 0.01^2), {chains} chains: one "
                  f"block sweep vs its two float64 GEMMs ({flop / 1e9:.2f} GFLOP)",
                  ["method", "threads", "BLAS threads", "time / sweep", "GFLOP/s",
                   "sweep / GEMMs", "other load", "target"])
    gemm_times = {}
    # (pgm_energy threads, BLAS limit): the target row, the same-thread-count row, and a row
    # with OpenMP on 2 threads but BLAS on 1 (no hand-over between the two thread pools).
    for n_threads, limit in ((2, None), (1, 1), (2, 1)):
        blas_label = "default" if limit is None else (str(limit) if have_tpc else "default")
        with blas_threads(limit):
            if limit not in gemm_times:
                gemm_times[limit] = timer.time(gemms, 3 * sizes.repeat, parallel=limit is None)
            t_gemm, load_gemm, scaling_gemm = gemm_times[limit]
            sampler = pe_sampler(model, chains, "block", n_threads)
            t_sweep, load, scaling = time_sweeps(timer, sampler.run, sizes.rbm_sweeps,
                                                 sizes.repeat, parallel=n_threads > 1)
            t_sweep /= sizes.rbm_sweeps
        if n_threads == 2:          # both 2-thread rows against the 2-thread GEMMs
            t_gemm = gemm_times[None][0]
        ratio = t_sweep / t_gemm
        if (n_threads, limit) == (2, None):
            target = targets.check("RBM sweep / GEMMs (2 threads)", ratio, 1.3, at_least=False)
            target += " <=1.3x"
        else:
            target = "(info)"
        table.add("pgm_energy block sweep", n_threads, blas_label, fmt_time(t_sweep),
                  f"{flop / t_sweep / 1e9:.1f}", f"{ratio:.2f}x", fmt_load(load, scaling), target)
        if n_threads != 2 or limit is None:
            table.add("numpy: the two GEMMs", "-", blas_label, fmt_time(t_gemm),
                      f"{flop / t_gemm / 1e9:.1f}", "1.00x", fmt_load(load_gemm, scaling_gemm),
                      None)
    table.print()
    print("The last row (OpenMP on 2 threads, BLAS on 1) is compared with the 2-thread GEMMs.\n")


# ---------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, few repeats: a smoke run of a few seconds")
    parser.add_argument("--only", choices=["sparse", "rbm"], action="append",
                        help="run only these comparisons (repeatable)")
    parser.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                        help="before each timing, wait up to this long for other processes "
                             "to go quiet (default 10, 0 with --quick)")
    parser.add_argument("--retries", type=int, default=3, metavar="N",
                        help="time a row up to N times while other processes disturb it, "
                             "keeping the least disturbed attempt (default 3)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    timer = Timer(args.max_wait if args.max_wait is not None else (0.0 if args.quick else 10.0),
                  args.retries)

    load = OtherLoad()
    start = time.perf_counter()
    print(environment_report())
    print(f"sizes: {sizes}\n")
    checks, targets = Checks(), Targets()
    if not args.only or "sparse" in args.only:
        bench_sparse(sizes, timer, checks, targets)
    if not args.only or "rbm" in args.only:
        bench_rbm(sizes, timer, targets)
    print("Targets:" + (" (--quick sizes: indicative only)" if args.quick else ""))
    for line in targets.lines:
        print("  " + line)
    print(load.report())
    print(f"total {time.perf_counter() - start:.1f} s, of which {timer.waited:.1f} s waiting "
          "for other processes to go quiet")
    if checks.failures:
        print("CHECK FAILED:")
        for failure in checks.failures:
            print("  " + failure)
        return 1
    print("All correctness checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
