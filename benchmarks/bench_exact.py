"""Exact log Z: pgm_energy side by side with dimod, pgmpy, dwave-samplers and numpy.

Three comparisons, all in one run, each printed as a table with speed ratios:

1. A 20-spin sparse Ising model (random graph, 30 edges, J and h ~ N(0, 1)): pgm_energy's
   ``pe.exact.log_partition`` against dimod's ``ExactSolver`` (all 2^20 energies, then a
   log-sum-exp in numpy), pgmpy's ``get_partition_function`` (product of all factors) and,
   for reference, dwave-samplers' ``TreeDecompositionSampler`` (variable elimination).
   Targets: >= 100x dimod, >= 7x pgmpy. All log Z must agree.
2. States per second on a 26-spin sparse Ising model on one core: (a) the Gray-code kernel
   walking all 2^26 states (no unit summed in closed form), (b) the public
   ``log_partition`` (which sums an independent set in closed form), as 2^26 / time.
   Target for (a): >= 1e8 states/s.
3. RBM(784, 20), W ~ N(0, 0.1^2), b, c ~ N(0, 1): pgm_energy on 2 threads and 1 thread
   against a chunked numpy enumeration of the 2^20 hidden states on one BLAS thread.
   Targets: <= 1 s on 2 cores, >= 5x numpy; agreement to 1e-9 relative.

Peers that are not installed are skipped. Install them with
``pip install dimod dwave-samplers pgmpy threadpoolctl``.

Run from the repository root; for fair numpy timings, let numpy's OpenBLAS pick its own
kernel (the variables below pin an older one):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_exact.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_exact.py --quick

The exit status is 1 if any two methods disagree on a log Z, else 0.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np


import pgm_energy as pe
from pgm_energy._kernels import _exact
from pgm_energy.exact.enumeration import Enumeration

from _common import (OtherLoad, Table, best_of, environment_report, fmt_rate,
                     fmt_ratio, fmt_time, optional_import, rel_diff)

TOLERANCE = 1e-9          # relative agreement required between log Z values
SPINS = np.array([-1.0, 1.0])


@dataclass
class Sizes:
    """Problem sizes and repeat counts for one run (full or --quick)."""

    n_sparse: int          # spins in comparison 1
    n_walk: int            # spins in comparison 2
    n_hidden: int          # hidden units of the RBM in comparison 3
    repeat_fast: int       # repeats for calls well under a second
    repeat_slow: int       # repeats for calls of seconds


FULL = Sizes(n_sparse=20, n_walk=26, n_hidden=20, repeat_fast=7, repeat_slow=3)
QUICK = Sizes(n_sparse=12, n_walk=18, n_hidden=12, repeat_fast=2, repeat_slow=1)


class Checks:
    """Collects log Z agreement checks; any failure makes the run exit with status 1."""

    def __init__(self):
        self.failures = []

    def compare(self, label: str, reference: float, value: float) -> str:
        diff = rel_diff(reference, value)
        if not diff <= TOLERANCE:
            self.failures.append(f"{label}: {value!r} vs {reference!r} (rel diff {diff:.2e})")
        return f"{diff:.1e}"


def logsumexp(a: np.ndarray) -> float:
    """Stable ``log sum exp(a)``."""
    peak = a.max()
    return float(peak + np.log(np.exp(a - peak).sum()))


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------
def sparse_ising(n: int, seed: int):
    """A random graph on n spins with 3n/2 edges (mean degree 3), J and h ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    edges = pairs[np.sort(rng.choice(len(pairs), size=3 * n // 2, replace=False))]
    couplings = rng.standard_normal(len(edges))
    fields = rng.standard_normal(n)
    return edges, couplings, fields, pe.Ising(edges, couplings, fields)


def random_rbm(n_visible: int, n_hidden: int, seed: int):
    """RBM with W ~ N(0, 0.1^2), b, c ~ N(0, 1); returns (W, b, c, model)."""
    rng = np.random.default_rng(seed)
    W = 0.1 * rng.standard_normal((n_hidden, n_visible))
    b = rng.standard_normal(n_visible)
    c = rng.standard_normal(n_hidden)
    return W, b, c, pe.RBM(n_visible, n_hidden, W=W, b=b, c=c, rng=0)


def enumerated_units(model, n_threads=1) -> int:
    """How many units pgm_energy enumerates (the rest it sums in closed form)."""
    return Enumeration(model.graph, (), 1.0, n_threads).m


# ---------------------------------------------------------------------------------------
# 1. Peers on a 20-spin sparse model
# ---------------------------------------------------------------------------------------
def dimod_bqm(dimod, edges, couplings, fields):
    """The same Ising model as a dimod BQM (dimod's sign: E = sum h s + sum J s s)."""
    return dimod.BinaryQuadraticModel.from_ising(
        {i: -f for i, f in enumerate(fields)},
        {(int(i), int(j)): -w for (i, j), w in zip(edges, couplings)})


def dimod_log_z(dimod, bqm) -> float:
    """All 2^n energies from ExactSolver, then the Boltzmann log-sum-exp in numpy."""
    energies = dimod.ExactSolver().sample(bqm).record.energy
    return logsumexp(-np.asarray(energies, dtype=np.float64))


def tree_log_z(samplers, bqm) -> float:
    """dwave-samplers' tree decomposition: log Z by variable elimination."""
    result = samplers.TreeDecompositionSampler().sample(bqm, num_reads=1, marginals=False)
    return float(result.info["log_partition_function"])


def pgmpy_network_class():
    """pgmpy's discrete Markov network class (renamed in pgmpy 1.0), or None if missing."""
    models = optional_import("pgmpy.models")
    return getattr(models, "DiscreteMarkovNetwork", None) or getattr(models, "MarkovNetwork", None)


def pgmpy_network(network_class, edges, couplings, fields):
    """The Ising model as a pgmpy Markov network; factor state 0 is spin -1, state 1 is +1."""
    from pgmpy.factors.discrete import DiscreteFactor

    net = network_class()
    net.add_nodes_from(range(len(fields)))
    net.add_edges_from((int(i), int(j)) for i, j in edges)
    pair = [DiscreteFactor([int(i), int(j)], [2, 2], np.exp(w * np.outer(SPINS, SPINS)).ravel())
            for (i, j), w in zip(edges, couplings)]
    unary = [DiscreteFactor([i], [2], np.exp(f * SPINS)) for i, f in enumerate(fields)]
    net.add_factors(*pair, *unary)
    return net


@dataclass
class Peer:
    """One peer in comparison 1: ``log_z`` is None when the package is not installed."""

    name: str
    log_z: object
    repeat: int
    warmup: int
    target: str


def peers(edges, couplings, fields, sizes: Sizes):
    """The peers of comparison 1, built on the same model (outside the timed calls)."""
    dimod = optional_import("dimod")
    samplers = optional_import("dwave.samplers")
    network_class = pgmpy_network_class()
    bqm = dimod_bqm(dimod, edges, couplings, fields) if dimod else None
    net = pgmpy_network(network_class, edges, couplings, fields) if network_class else None
    return [
        Peer("dimod ExactSolver + numpy LSE",
             (lambda: dimod_log_z(dimod, bqm)) if dimod else None,
             sizes.repeat_slow, 0, ">= 100x"),
        Peer("pgmpy get_partition_function",
             (lambda: float(np.log(net.get_partition_function()))) if net else None,
             sizes.repeat_fast, 1, ">= 7x"),
        Peer("dwave-samplers TreeDecomposition (elimination)",
             (lambda: tree_log_z(samplers, bqm)) if samplers and bqm else None,
             sizes.repeat_fast, 1, "(info)"),
    ]


def bench_sparse(sizes: Sizes, checks: Checks):
    n = sizes.n_sparse
    edges, couplings, fields, model = sparse_ising(n, seed=1)
    m = enumerated_units(model)
    ours_t, ours = best_of(lambda: pe.exact.log_partition(model), sizes.repeat_fast)
    table = Table(f"1. Exact log Z, {n}-spin sparse Ising ({len(edges)} edges, J, h ~ N(0,1)); "
                  f"pgm_energy enumerates 2^{m} after closed-form sums",
                  ["method", "log Z", "rel diff", "time", f"2^{n} states/s",
                   "pgm_energy speedup", "target"])
    table.add("pgm_energy log_partition (all threads)", f"{ours:.12f}", "ref", fmt_time(ours_t),
              fmt_rate(2**n / ours_t), "1.0x", None)
    for peer in peers(edges, couplings, fields, sizes):
        if peer.log_z is None:
            table.add(peer.name, "not installed", None, None, None, None, peer.target)
            continue
        t, value = best_of(peer.log_z, peer.repeat, peer.warmup)
        table.add(peer.name, f"{value:.12f}", checks.compare(peer.name, ours, value),
                  fmt_time(t), fmt_rate(2**n / t), fmt_ratio(t / ours_t), peer.target)
    table.print()


# ---------------------------------------------------------------------------------------
# 2. States per second of the Gray-code kernel
# ---------------------------------------------------------------------------------------
def _csr_both_directions(edges, weights, n):
    """CSR (ptr, idx, w, eid) of the symmetric coupling matrix, rows then columns sorted."""
    eid = np.arange(len(edges), dtype=np.int32)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    order = np.lexsort((cols, rows))
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=ptr[1:])
    return (ptr, np.ascontiguousarray(cols[order], np.int32),
            np.ascontiguousarray(np.concatenate([weights, weights])[order], np.float64),
            np.ascontiguousarray(np.concatenate([eid, eid])[order], np.int32))


def walk_all_states(model, n_threads: int) -> float:
    """log Z by the Gray-code kernel over all 2^n states: every unit enumerated, none summed.

    Calls ``_exact.enumerate_pieces`` once with an empty closed-form set ``A`` and the
    library's split for threads (64 pieces of 2^(n-6) states for n >= 20; the library cuts
    larger models finer, to see Ctrl-C between pieces).
    """
    graph = model.graph
    form = graph.binary_form(1.0)
    n = graph.n_units
    no_a = (np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float64),
            np.zeros(0, np.int32))
    n_prefix = int(np.clip(n - 14, 0, 6))
    top, total = _exact.enumerate_pieces(
        np.ascontiguousarray(form.field, np.float64),
        *_csr_both_directions(graph.edges, form.coupling, n),
        np.zeros(0, np.float64), *no_a, np.full(n, -1, np.int32),
        np.zeros(n, np.int64), np.zeros(0, np.float64),        # no generic-term table
        np.array([n], np.int64), np.array([0], np.int64),     # no categorical sites
        graph.n_edges, n_prefix, 0, 1 << n_prefix, n_threads=n_threads)
    peak = top.max()
    return float(form.const + peak + np.log(np.sum(total * np.exp(top - peak))))


def bench_states_per_second(sizes: Sizes, checks: Checks):
    n = sizes.n_walk
    edges, _, _, model = sparse_ising(n, seed=2)
    m = enumerated_units(model)
    table = Table(f"2. States/s, {n}-spin sparse Ising ({len(edges)} edges); "
                  f"rate = 2^{n} / time",
                  ["method", "threads", "enumerated", "log Z", "rel diff", "time",
                   "states/s", "target"])
    reference = None
    for n_threads in (1, 2):
        rows = [("(a) Gray-code walk, all units enumerated", n,
                 lambda: walk_all_states(model, n_threads), ">= 1e8" if n_threads == 1 else None),
                ("(b) public log_partition (closed-form sums)", m,
                 lambda: pe.exact.log_partition(model, n_threads=n_threads), None)]
        for name, enumerated, fn, target in rows:
            t, value = best_of(fn, sizes.repeat_slow)
            reference = value if reference is None else reference
            diff = "ref" if value is reference else checks.compare(name, reference, value)
            table.add(name, n_threads, f"2^{enumerated}", f"{value:.12f}", diff, fmt_time(t),
                      fmt_rate(2**n / t), target)
    table.print()


# ---------------------------------------------------------------------------------------
# 3. RBM(784, 20) against numpy
# ---------------------------------------------------------------------------------------
def numpy_rbm_log_z(W, b, c, chunk: int = 4096) -> float:
    """log Z of a binary RBM by enumerating the hidden states in chunks, in plain numpy.

    For each chunk H of hidden states: ``log sum_x exp(-E) = c.h + sum_i softplus(b + W^T h)_i``
    (a BLAS matmul and a stable softplus, ``logaddexp(0, .)``), folded into a streaming
    log-sum-exp.
    """
    n_hidden, n_visible = W.shape
    n_states = 1 << n_hidden
    chunk = min(chunk, n_states)
    bits = np.arange(n_hidden)
    fields = np.empty((chunk, n_visible))
    top, total = -np.inf, 0.0
    for start in range(0, n_states, chunk):
        ids = np.arange(start, start + chunk)
        H = ((ids[:, None] >> bits) & 1).astype(np.float64)
        np.matmul(H, W, out=fields)
        fields += b
        np.logaddexp(0.0, fields, out=fields)
        lw = fields.sum(axis=1) + H @ c
        peak = lw.max()
        if peak > top:
            total *= np.exp(top - peak)
            top = peak
        total += np.exp(lw - top).sum()
    return float(top + np.log(total))


def numpy_one_thread(fn):
    """Wrap fn to run with BLAS on one thread; returns (wrapped fn, thread label for the table).

    Without threadpoolctl the BLAS keeps its default thread count, and the label says so.
    """
    tpc = optional_import("threadpoolctl")
    if tpc is None:
        return fn, "default (BLAS)"

    def run():
        with tpc.threadpool_limits(limits=1, user_api="blas"):
            return fn()
    return run, "1 (BLAS)"


def bench_rbm(sizes: Sizes, checks: Checks):
    n_visible, n_hidden = 784, sizes.n_hidden
    W, b, c, model = random_rbm(n_visible, n_hidden, seed=3)
    m = enumerated_units(model)
    table = Table(f"3. Exact log Z, RBM({n_visible}, {n_hidden}), W ~ N(0, 0.1^2), "
                  f"b, c ~ N(0, 1); pgm_energy enumerates 2^{m}",
                  ["method", "threads", "log Z", "rel diff", "time", "speedup vs numpy 1T",
                   "target"])
    numpy_fn, numpy_threads = numpy_one_thread(lambda: numpy_rbm_log_z(W, b, c))
    numpy_t, numpy_z = best_of(numpy_fn, sizes.repeat_slow, warmup=0)
    for n_threads, target in ((2, "<= 1 s, >= 5x"), (1, None)):
        t, value = best_of(lambda: pe.exact.log_partition(model, n_threads=n_threads),
                           sizes.repeat_slow)
        table.add("pgm_energy log_partition", n_threads, f"{value:.12f}",
                  checks.compare(f"RBM pgm_energy {n_threads}T", numpy_z, value), fmt_time(t),
                  fmt_ratio(numpy_t / t), target)
    table.add("numpy chunked enumeration (4096 / chunk)", numpy_threads, f"{numpy_z:.12f}",
              "ref", fmt_time(numpy_t), "1.0x", None)
    table.print()


# ---------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, few repeats: a smoke run of a few seconds")
    parser.add_argument("--only", choices=["sparse", "walk", "rbm"], action="append",
                        help="run only these comparisons (repeatable)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    load = OtherLoad()
    print(environment_report())
    print(f"sizes: {sizes}\n")
    checks = Checks()
    benches = {"sparse": bench_sparse, "walk": bench_states_per_second, "rbm": bench_rbm}
    for name, bench in benches.items():
        if not args.only or name in args.only:
            bench(sizes, checks)
    print(load.report())
    if checks.failures:
        print("LOG Z MISMATCH (relative tolerance {:.0e}):".format(TOLERANCE))
        for failure in checks.failures:
            print("  " + failure)
        return 1
    print(f"All log Z values agree to {TOLERANCE:.0e} relative.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
