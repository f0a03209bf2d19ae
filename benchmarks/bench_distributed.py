"""Exact log Z on a Dask LocalCluster: one worker against two, per-piece overhead, and the
projected wall time of an RBM(784, 40) on 100 workers.

1. An RBM(500, 23) (about 10 s of exact enumeration on one thread here): plain
   ``pe.exact.log_partition(n_threads=1)``, then on a ``LocalCluster`` of one worker and of
   two workers (one thread each, processes), through ``pe.distributed.Runner`` (pieces of
   about 1 s). Target: two workers >= 1.7x faster than one. All log Z must be equal.
2. Overhead per piece: 200 pieces that do nothing, through the same Runner on two workers.
3. RBM(784, 40): time a few of its enumeration pieces on one thread, then project the time
   of all of them on 100 workers of one core each (the enumeration's pieces are
   independent, so the projection is pieces x seconds per piece / workers).

Run from ``benchmarks/`` with the package installed (``pip install ".[bench,distributed]"``):

    python bench_distributed.py            # or --quick for a 2-s problem
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import Table, best_of, environment_report, fmt_ratio, fmt_time


def _nothing(shared, piece):
    return (np.zeros(1),)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import distributed
    import pgm_energy as pe
    from pgm_energy._kernels import _exact
    from pgm_energy.exact.cost import make_plan

    print(environment_report())
    n_hidden = 19 if args.quick else 23
    model = pe.RBM(500, n_hidden, rng=0)
    rng = np.random.default_rng(0)
    model.params["W"][...] = rng.normal(0, 0.05, model.params["W"].shape)
    plain_s, plain = best_of(lambda: pe.exact.log_partition(model, method="enumerate",
                                                            n_threads=1), repeat=1, warmup=0)
    table = Table(f"exact log Z of RBM(500, {n_hidden}) (enumerates 2^{n_hidden} states)",
                  ["run", "time", "vs one worker", "log Z equal"])
    table.add("plain, one thread", fmt_time(plain_s), "", "")
    times = {}
    for n_workers in (1, 2):
        with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                      processes=True, dashboard_address=None,
                                      silence_logs=40) as cluster, \
                distributed.Client(cluster) as client:
            runner = pe.distributed.Runner(client.get_executor(),
                                           piece_seconds=0.25 if args.quick else 1.0)
            pe.exact.log_partition(pe.RBM(50, 12, rng=0), executor=runner)    # warm up
            seconds, value = best_of(lambda: pe.exact.log_partition(
                model, method="enumerate", executor=runner), repeat=2, warmup=0)
            times[n_workers] = seconds
            table.add(f"LocalCluster, {n_workers} worker(s)", fmt_time(seconds),
                      fmt_ratio(times[1] / seconds), str(value == plain))
            if n_workers == 2:
                overhead, _ = best_of(lambda: runner.map(_nothing, np.zeros(10),
                                                         list(range(200)), what="nothing"),
                                      repeat=3, warmup=1)
    print(table.render())
    print(f"two workers vs one: {times[1] / times[2]:.2f}x (target >= 1.7x)")
    print(f"overhead per piece (200 empty pieces, two workers): {overhead / 200 * 1e3:.2f} ms")

    big = pe.RBM(784, 40, rng=0)
    plan = make_plan(big.graph, (), method="enumerate", max_states=2**41)
    plan.runner = None
    fields, _ = plan.conditioned(plan.clamped_flat({}))
    kernel = plan._kernel
    arguments = (np.ascontiguousarray(fields[0][plan.S]), *kernel.ss,
                 np.ascontiguousarray(fields[0][plan.A]), *kernel.sa, kernel.sa_first,
                 kernel.gen_step, np.zeros(0), plan.s_site_ptr, plan.a_site_ptr,
                 big.graph.n_edges, plan.n_prefix)
    n_timed = 2
    start = time.perf_counter()
    _exact.enumerate_pieces(*arguments, 0, n_timed, n_fixed_sites=plan.n_fixed_sites,
                            n_threads=1)
    per_piece = (time.perf_counter() - start) / n_timed
    total = per_piece * plan.n_pieces
    print(f"RBM(784, 40): {plan.n_pieces} pieces of 2^{40 - int(np.log2(plan.n_pieces))} "
          f"states, {per_piece:.2f} s each on one core: {total / 3600:.0f} core-hours; "
          f"on 100 one-core workers {total / 100 / 3600:.1f} h (plus "
          f"{plan.n_pieces / 100 * overhead / 200:.0f} s of piece overhead)")


if __name__ == "__main__":
    main()
