"""Exact elimination: pgm_energy side by side with dwave-samplers and pgmpy on Ising lattices,
spin-glass ground states and a Potts grid.

Models: spins with couplings J = 0.4 and no fields (E = -0.4 sum_<ij> s_i s_j), beta = 1.

1. 10x10 open grid, log Z and all single-unit marginals: ``pe.exact.marginals`` (elimination,
   one forward and one backward kernel call; planning included on a first call, and shown
   alone) against dwave-samplers' ``TreeDecompositionSampler`` (``marginals=True``) and
   pgmpy's ``VariableElimination`` (one ``query`` per unit, its greedy order).
   Targets: >= 5x dwave-samplers, >= 10x pgmpy.
2. 16x16 open grid, the same. pgmpy is timed on a few queries and scaled to all 256 units
   (printed as such).
3. 12x12 torus, log Z: pgm_energy against Kaufman's exact finite-lattice formula (target:
   < 10 s on 2 cores, agreement to 1e-9); dwave-samplers is tried (it refuses treewidth > 25).
4. MAP of a 16x16 open-grid +-J spin glass (``pe.Ising``, couplings +-1 at a fixed seed, no
   fields): max-product elimination (``Elimination.max_state``, one forward sweep with (max, +)
   and one back-tracking sweep) against dwave-samplers' ``TreeDecompositionSolver`` on the same
   energy; both must find the same ground energy. Target: >= 5x. Then the 20x20 one (timed;
   dwave-samplers refuses treewidth > 25).
5. Exact marginals of a 10x10 three-state Potts grid (random fields and coupling tables):
   ``pe.exact.marginals`` (k-state tables, largest 3^11 entries) with pgmpy's
   ``VariableElimination`` side by side on a few queries, scaled to all 100 units, when one
   query finishes within ``PGMPY_TIMEOUT`` seconds.

Peers that are not installed are skipped with a note
(``pip install dwave-samplers pgmpy``). Run from the repository root:

    python benchmarks/bench_eliminate.py            # full
    python benchmarks/bench_eliminate.py --quick    # fewer repeats

The exit status is 1 if two methods disagree (log Z to 1e-9 relative, marginals to 1e-9).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import numpy as np
from scipy.special import logsumexp


import pgm_energy as pe
from pgm_energy.exact.cost import make_plan

from _common import (OtherLoad, Table, best_of, environment_report, fmt_ratio,
                     fmt_time, optional_import, rel_diff)

J = 0.4
TOLERANCE = 1e-9
PGMPY_QUERIES = 8          # pgmpy queries timed on the 16x16 grid (then scaled)
PGMPY_TIMEOUT = 120        # seconds one pgmpy query on the Potts grid may take


def lattice(rows, cols, periodic=False):
    """Edges of a rows x cols square lattice, unit r * cols + c; periodic = a torus."""
    edges = []
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols or periodic:
                edges.append((r * cols + c, r * cols + (c + 1) % cols))
            if r + 1 < rows or periodic:
                edges.append((r * cols + c, ((r + 1) % rows) * cols + c))
    return edges


def kaufman_log_z(m, n, K):
    """log Z of the m x n periodic Ising lattice (Kaufman 1949; see tests/test_eliminate.py)."""
    k = np.arange(2 * n)
    gamma = np.arccosh(np.cosh(2 * K) / np.tanh(2 * K) - np.cos(np.pi * k / n))
    gamma[0] = 2 * K + np.log(np.tanh(K))
    logs, signs = [], []
    for values in (gamma[1::2], gamma[0::2]):
        for fn in (np.cosh, np.sinh):
            v = 2 * fn(m * values / 2)
            logs.append(np.sum(np.log(np.abs(v))))
            signs.append(np.prod(np.sign(v)))
    return -np.log(2) + m * n / 2 * np.log(2 * np.sinh(2 * K)) + logsumexp(logs, b=signs)


def ours_marginals(model, n_threads, cold=True):
    """P(s_i = +1) for every unit from one forward and one backward sweep.

    ``cold`` forgets the cached elimination plans first, so the order search is timed too.
    """
    if cold:
        pe.exact.elimination._PLANS.clear()
    return pe.exact.marginals(model, method="eliminate", n_threads=n_threads)["s"]


def dwave_marginals(samplers, bqm, n):
    info = samplers.TreeDecompositionSampler().sample(bqm, num_reads=1, marginals=True).info
    return info["log_partition_function"], np.array([info["variable_marginals"][i]
                                                     for i in range(n)])


def pgmpy_engine(n_nodes, edges, factors):
    """pgmpy's VariableElimination over a Markov network of ``n_nodes`` and ``edges`` with
    ``factors`` ``[(variables, cards, values)]``, or None when pgmpy is not installed."""
    models = optional_import("pgmpy.models")
    inference = optional_import("pgmpy.inference")
    if models is None or inference is None:
        return None
    from pgmpy.factors.discrete import DiscreteFactor

    network_class = getattr(models, "DiscreteMarkovNetwork", None) or models.MarkovNetwork
    net = network_class()
    net.add_nodes_from(range(n_nodes))
    net.add_edges_from(edges)
    net.add_factors(*[DiscreteFactor(v, c, values) for v, c, values in factors])
    return inference.VariableElimination(net)


def pgmpy_setup(edges, n):
    """(VariableElimination over the grid, factor state 1 = spin +1), or None."""
    spins = np.array([-1.0, 1.0])
    return pgmpy_engine(n, edges, [([i, j], [2, 2], np.exp(J * np.outer(spins, spins)).ravel())
                                   for i, j in edges])


def pgmpy_marginals(engine, units):
    values = [engine.query([u], show_progress=False).values for u in units]
    return np.array([v[1] / v.sum() for v in values])


def grid_case(L, samplers, dimod, quick, failures):
    n = L * L
    edges = lattice(L, L)
    model = pe.Ising(edges, couplings=J)
    repeat = 2 if quick else 5
    table = Table(f"{L}x{L} open Ising grid (J = {J}), log Z and all {n} single-unit marginals "
                  f"(treewidth {pe.exact.treewidth(model)})",
                  ["method", "time", "pe speed-up", "target", "max |dP|", "log Z"])
    t1, p1 = best_of(lambda: ours_marginals(model, 1), repeat=repeat)
    t2, p2 = best_of(lambda: ours_marginals(model, 2), repeat=repeat)
    tw, pw = best_of(lambda: ours_marginals(model, 2, cold=False), repeat=repeat)
    edge_array = np.array(edges, np.int64)
    tp, _ = best_of(lambda: pe.exact.elimination.EliminationPlan(n, edge_array,
                                                                 np.ones(n, bool)).program,
                    repeat=repeat)
    log_z = pe.exact.log_partition(model, method="eliminate")
    table.add("pgm_energy, 2 threads (planning included)", fmt_time(t2), None, None, "0",
              f"{log_z:.12f}")
    table.add("pgm_energy, 1 thread (planning included)", fmt_time(t1), fmt_ratio(t1 / t2),
              None, f"{np.max(np.abs(p1 - p2)):.1e}", None)
    table.add("pgm_energy, 2 threads, plan cached (repeat calls)", fmt_time(tw),
              fmt_ratio(tw / t2), None, f"{np.max(np.abs(pw - p2)):.1e}", None)
    table.add("  of which planning (order search + step list)", fmt_time(tp), None, None,
              None, None)
    if samplers is not None and dimod is not None:
        bqm = dimod.BinaryQuadraticModel({i: 0.0 for i in range(n)},
                                         {e: -J for e in edges}, 0.0, dimod.SPIN)
        td, (dz, dp) = best_of(lambda: dwave_marginals(samplers, bqm, n),
                               repeat=max(1, repeat // 2))
        diff = np.max(np.abs(dp - p2))
        table.add("dwave-samplers TreeDecompositionSampler", fmt_time(td), fmt_ratio(td / t2),
                  ">= 5x", f"{diff:.1e}", f"{dz:.12f}")
        if rel_diff(dz, log_z) > TOLERANCE or diff > TOLERANCE:
            failures.append(f"{L}x{L}: dwave-samplers disagrees")
    else:
        table.add("dwave-samplers: not installed (pip install dwave-samplers)",
                  None, None, None, None, None)
    engine = pgmpy_setup(edges, n)
    if engine is not None:
        units = list(range(n)) if L <= 10 else list(range(0, n, n // PGMPY_QUERIES))
        start = time.perf_counter()
        pp = pgmpy_marginals(engine, units)
        tp = (time.perf_counter() - start) * n / len(units)
        diff = np.max(np.abs(pp - p2[units]))
        label = "pgmpy VariableElimination (one query per unit)"
        if len(units) < n:
            label += f", {len(units)} queries scaled to {n}"
        table.add(label, fmt_time(tp), fmt_ratio(tp / t2), ">= 10x", f"{diff:.1e}", None)
        if diff > TOLERANCE:
            failures.append(f"{L}x{L}: pgmpy disagrees")
    else:
        table.add("pgmpy: not importable, skipped", None, None, None, None, None)
    table.print()


def torus_case(samplers, dimod, quick, failures):
    L = 12
    edges = lattice(L, L, periodic=True)
    model = pe.Ising(edges, couplings=J)
    cost = pe.exact.elimination.order_cost(L * L, edges)
    want = kaufman_log_z(L, L, J)
    table = Table(f"{L}x{L} Ising torus (J = {J}), log Z (order width {cost.width}, largest "
                  f"table 2^{cost.width + 1}, {cost.operations:.3g} entries read)",
                  ["method", "time", "log Z", "rel. error vs Kaufman", "target"])
    repeat = 1 if quick else 3
    pe.exact.elimination._PLANS.clear()
    t2, z2 = best_of(lambda: pe.exact.log_partition(model, n_threads=2), repeat=repeat,
                     warmup=0)
    t1, z1 = best_of(lambda: pe.exact.log_partition(model, n_threads=1), repeat=1, warmup=0)
    table.add("Kaufman (closed form)", None, f"{want:.12f}", None, None)
    table.add("pgm_energy, 2 threads", fmt_time(t2), f"{z2:.12f}", f"{rel_diff(z2, want):.1e}",
              "< 10 s")
    table.add("pgm_energy, 1 thread", fmt_time(t1), f"{z1:.12f}", f"{rel_diff(z1, want):.1e}",
              None)
    if rel_diff(z2, want) > TOLERANCE or z1 != z2:
        failures.append("torus: pgm_energy disagrees with Kaufman or across threads")
    if samplers is not None and dimod is not None:
        bqm = dimod.BinaryQuadraticModel({i: 0.0 for i in range(L * L)},
                                         {e: -J for e in edges}, 0.0, dimod.SPIN)
        try:
            samplers.TreeDecompositionSampler().sample(bqm, num_reads=1, marginals=False)
            table.add("dwave-samplers: ran (unexpected)", None, None, None, None)
        except ValueError as exc:
            table.add(f"dwave-samplers: refused ({str(exc).splitlines()[0]})",
                      None, None, None, None)
    table.print()


def spin_glass(L, seed=0):
    """An L x L open-grid +-J spin glass: ``pe.Ising`` with couplings +-1 (E = -sum J s s)."""
    edges = lattice(L, L)
    J_e = np.random.default_rng(seed).choice([-1.0, 1.0], size=len(edges))
    return edges, J_e, pe.Ising(edges, couplings=J_e)


def ours_map(model, cold=True):
    """(ground energy, state) by max-product elimination (plans forgotten first when cold)."""
    if cold:
        pe.exact.elimination._PLANS.clear()
    plan = make_plan(model.graph, (), method="eliminate")
    best, bits = plan.max_state(plan.clamped_flat({}))
    return -best[0], model.graph.decode(model.graph.from_bits(bits))["s"][0]


def map_case(samplers, dimod, quick, failures):
    repeat = 2 if quick else 5
    table = Table("MAP of open-grid +-J spin glasses (couplings +-1, seed 0): ground energy",
                  ["grid", "method", "time", "pe speed-up", "target", "ground energy"])
    for L in (16, 20):
        edges, J_e, model = spin_glass(L)
        t, (energy, state) = best_of(lambda: ours_map(model), repeat=repeat)
        tw, _ = best_of(lambda: ours_map(model, cold=False), repeat=repeat)
        if not np.isclose(model.energy({"s": state[None]})[0], energy, rtol=0, atol=1e-9):
            failures.append(f"{L}x{L} MAP: the state's energy is not the one reported")
        table.add(f"{L}x{L}", "pgm_energy max_state (planning included)", fmt_time(t), None,
                  None, f"{energy:.1f}")
        table.add(f"{L}x{L}", "pgm_energy max_state, plan cached", fmt_time(tw), None, None,
                  None)
        if samplers is None or dimod is None:
            table.add(f"{L}x{L}", "dwave-samplers: not installed", None, None, None, None)
            continue
        bqm = dimod.BinaryQuadraticModel({i: 0.0 for i in range(L * L)},
                                         {e: -j for e, j in zip(edges, J_e)}, 0.0, dimod.SPIN)
        solver = samplers.TreeDecompositionSolver()
        try:
            td, found = best_of(lambda: solver.sample(bqm, num_reads=1),
                                repeat=max(1, repeat // 2))
        except ValueError as exc:
            table.add(f"{L}x{L}", f"dwave-samplers: refused ({str(exc).splitlines()[0]})",
                      None, None, None, None)
            continue
        dwave_energy = float(found.first.energy)
        table.add(f"{L}x{L}", "dwave-samplers TreeDecompositionSolver", fmt_time(td),
                  fmt_ratio(td / t), ">= 5x", f"{dwave_energy:.1f}")
        if abs(dwave_energy - energy) > 1e-9:
            failures.append(f"{L}x{L} MAP: dwave-samplers finds another ground energy")
    table.print()


def potts_grid(L, k, seed=0):
    """(edges, fields b (n, k), coupling tables J (n_edges, k, k), model), -E = sum b + sum J."""
    rng = np.random.default_rng(seed)
    edges = lattice(L, L)
    b = rng.normal(scale=0.5, size=(L * L, k))
    J_e = rng.normal(scale=0.5, size=(len(edges), k, k))
    model = pe.EnergyModel({"x": pe.Categorical(L * L, k)},
                           [pe.Bias("x", value=b), pe.SparsePairwise("x", edges, value=J_e)])
    return edges, b, J_e, model


def pgmpy_potts(edges, b, J_e):
    """VariableElimination over the Potts grid's factors exp(b_i), exp(J_e), or None."""
    n, k = b.shape
    return pgmpy_engine(n, edges, [([i], [k], np.exp(b[i])) for i in range(n)]
                        + [([i, j], [k, k], np.exp(t).ravel()) for (i, j), t in zip(edges, J_e)])


def potts_case(quick, failures):
    L, k = 10, 3
    edges, b, J_e, model = potts_grid(L, k)
    plan = make_plan(model.graph, (), method="eliminate", backward=True)
    table = Table(f"{L}x{L} {k}-state Potts grid, exact marginals of all {L * L} units "
                  f"(order width {plan.cost.width}, largest table {plan.cost.largest_table:.3g}"
                  f" entries; {k}^{L * L} states)", ["method", "time", "pe speed-up", "max |dP|"])
    repeat = 2 if quick else 5

    def ours(n_threads, cold=True):
        if cold:
            pe.exact.elimination._PLANS.clear()
        return pe.exact.marginals(model, method="eliminate", n_threads=n_threads)["x"]

    t2, p2 = best_of(lambda: ours(2), repeat=repeat)
    t1, p1 = best_of(lambda: ours(1), repeat=repeat)
    tw, _ = best_of(lambda: ours(2, cold=False), repeat=repeat)
    table.add("pgm_energy, 2 threads (planning included)", fmt_time(t2), None, "0")
    table.add("pgm_energy, 1 thread (planning included)", fmt_time(t1), fmt_ratio(t1 / t2),
              f"{np.max(np.abs(p1 - p2)):.1e}")
    table.add("pgm_energy, 2 threads, plan cached", fmt_time(tw), fmt_ratio(tw / t2), None)
    engine = pgmpy_potts(edges, b, J_e)
    if engine is None:
        table.add("pgmpy: not importable, skipped", None, None, None)
    else:
        units = list(range(0, L * L, L * L // (2 if quick else PGMPY_QUERIES)))
        signal.signal(signal.SIGALRM, _timeout)
        done, start = [], time.perf_counter()
        try:
            for u in units:
                signal.alarm(PGMPY_TIMEOUT)
                v = engine.query([u], show_progress=False).values
                signal.alarm(0)
                done.append(v / v.sum())
        except TimeoutError:
            table.add(f"pgmpy VariableElimination: one query over {PGMPY_TIMEOUT} s, stopped",
                      None, None, None)
        else:
            tp = (time.perf_counter() - start) * L * L / len(units)
            diff = np.max(np.abs(np.array(done) - p2[units]))
            table.add(f"pgmpy VariableElimination ({len(units)} queries scaled to {L * L})",
                      fmt_time(tp), fmt_ratio(tp / t2), f"{diff:.1e}")
            if diff > TOLERANCE:
                failures.append("Potts grid: pgmpy disagrees")
        finally:
            signal.alarm(0)
    table.print()


def _timeout(signum, frame):
    raise TimeoutError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    load = OtherLoad()
    print(environment_report())
    print(f"OMP threads available: {os.cpu_count()}\n")
    samplers = optional_import("dwave.samplers")
    dimod = optional_import("dimod")
    failures = []
    grid_case(10, samplers, dimod, args.quick, failures)
    grid_case(16, samplers, dimod, args.quick, failures)
    torus_case(samplers, dimod, args.quick, failures)
    map_case(samplers, dimod, args.quick, failures)
    potts_case(args.quick, failures)
    print(load.report())
    for f in failures:
        print("DISAGREEMENT:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
