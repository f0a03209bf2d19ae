"""Inpainting throughput: partial clamps (NaN marks a free unit) against whole-group clamps.

RBM(784, 200), W ~ N(0, 0.05^2), random biases, 256 chains, one thread (BLAS too, by
threadpoolctl), time per sweep of
``sampler.run(n_sweeps, clamp)`` (the clamp validated and set at every call, as a user runs
it), best of several repeats taken in turns, all rows in one run:

(a) the whole visible group clamped (no NaN: the hidden layer alone is sampled);
(b) nothing clamped (both layers sampled);
(c) half of the visible units clamped, the same half in every chain (one clamp row);
(d) half of the visible units clamped, a different random half in each chain (the held units
    draw their uniforms and keep their values).

for the block schedule (BLAS products) and for the chromatic one (the sparse kernel). A
sweep with free visible units needs the visible layer's fields, a second matrix product that
(a) skips, so (c) and (d) are compared with (b), the sweep that does the same work, and with
(a) for information. Target: (d) <= 1.2x (b).

    PYTHONPATH=. python benchmarks/bench_clamp.py [--quick]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import threadpoolctl

import pgm_energy as pe

from _common import Table, best_of, environment_report, fmt_time


def clamps(n_chains, n_visible, rng):
    X = rng.integers(0, 2, (n_chains, n_visible)).astype(np.float64)
    row = X.copy()
    row[:, rng.permutation(n_visible)[:n_visible // 2]] = np.nan
    row = row[0]
    per_chain = X.copy()
    for c in range(n_chains):
        per_chain[c, rng.permutation(n_visible)[:n_visible // 2]] = np.nan
    return {"(a) whole group clamped": {"x": X}, "(b) no clamp": None,
            "(c) half clamped, one row": {"x": row},
            "(d) half clamped, per chain": {"x": per_chain}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sweeps and repeats")
    args = parser.parse_args(argv)
    n_visible, n_hidden, n_chains = 784, 200, 256
    n_sweeps, repeat = (20, 3) if args.quick else (20, 9)
    rng = np.random.default_rng(0)
    model = pe.RBM(n_visible, n_hidden, W=0.05 * rng.standard_normal((n_hidden, n_visible)),
                   b=0.1 * rng.standard_normal(n_visible), c=0.1 * rng.standard_normal(n_hidden))
    print(environment_report())
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        for schedule in ("block", "chromatic"):
            bench_schedule(model, schedule, n_visible, n_hidden, n_chains, n_sweeps, repeat)
    return 0


def bench_schedule(model, schedule, n_visible, n_hidden, n_chains, n_sweeps, repeat):
    table = Table(f"RBM({n_visible}, {n_hidden}), {n_chains} chains, schedule={schedule!r}, "
                  f"1 thread, BLAS on 1: time per sweep of run({n_sweeps}, clamp)",
                  ["clamp", "time / sweep", "/ (b) no clamp", "/ (a) whole group"])
    variants = clamps(n_chains, n_visible, np.random.default_rng(1))
    samplers = {name: pe.GibbsSampler(model, n_chains, schedule=schedule, rng=0,
                                      n_threads=1) for name in variants}
    times = dict.fromkeys(variants, np.inf)
    for _ in range(repeat):        # the rows take turns, so load from elsewhere hits all
        for name, clamp in variants.items():
            t, _ = best_of(lambda: samplers[name].run(n_sweeps, clamp), repeat=1,
                           warmup=0 if np.isfinite(times[name]) else 1)
            times[name] = min(times[name], t / n_sweeps)
    a, b = times["(a) whole group clamped"], times["(b) no clamp"]
    for name, t in times.items():
        table.add(name, fmt_time(t), f"{t / b:.2f}x", f"{t / a:.2f}x")
    table.print()
    ratio = times["(d) half clamped, per chain"] / b
    print(f"target (d) <= 1.2x (b), {schedule}: {ratio:.2f}x "
          f"{'met' if ratio <= 1.2 else 'MISSED'}\n")


if __name__ == "__main__":
    sys.exit(main())
