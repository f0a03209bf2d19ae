"""Gaussian-Bernoulli RBM block Gibbs sweep: pgm_energy against its two GEMMs and numpy.

Gaussian-Bernoulli RBM(784, 500) (``pe.Gaussian(784)`` visible, sigma = 1, ``pe.Binary(500)``
hidden), W ~ N(0, 0.01^2), small random biases, 1000 chains, float64. Time per sweep, best of
several repeats taken in turns (so that load from elsewhere hits every row), all rows in one
run, on 1 thread (BLAS limited to 1 thread by threadpoolctl) and on 2 threads (BLAS on its
default). In each turn a row is run once untimed right before its timed run: after a threaded
GEMM, OpenBLAS's idle workers spin for about 0.1 s, so without it the row after a numpy row
would be timed while a worker still holds one of the cores (measured on 2 cores: the 2-thread
sweep right after the numpy sweep takes about 30 ms instead of 20).

(a) pgm_energy ``GibbsSampler(schedule="block")`` (the ``"auto"`` choice): the hidden layer
    from one GEMM and a sigmoid draw per unit, the visible layer from the other GEMM and a
    Gaussian draw per unit (the normal quantile of one uniform, AS241);
(b) the same sweep of a binary RBM(784, 500) (same GEMMs, a sigmoid draw instead of the
    Gaussian one), for information: (a) - (b) over 784 000 draws is what a Gaussian draw
    costs more than a sigmoid draw (about 0 since the tails are batched: within the noise);
(c) numpy: the two GEMMs alone, (1000x784)@(784x500) and (1000x500)@(500x784) into
    preallocated outputs;
(d) numpy: a vectorised Gaussian-Bernoulli block Gibbs sweep, ``h = random < expit(c + x W^T)``,
    ``x = sigma^2 (b + h W) + sigma * standard_normal`` (numpy's Generator, ziggurat normals).

Target (issue 14): (a) <= 1.3x (c). Ratios (a)/(c) and (d)/(a) are printed per thread count.

    PYTHONPATH=. python benchmarks/bench_gaussian_rbm.py [--quick]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import threadpoolctl
from scipy.special import expit

import pgm_energy as pe

from _common import OtherLoad, Table, best_of, environment_report, fmt_time

N_VISIBLE, N_HIDDEN = 784, 500


def gaussian_rbm(rng) -> pe.EnergyModel:
    model = pe.EnergyModel(units={"x": pe.Gaussian(N_VISIBLE, sigma=1.0),
                                  "h": pe.Binary(N_HIDDEN)},
                           terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                                  pe.Pairwise("h", "x", name="W")], visible=["x"])
    model.params["W"][...] = 0.01 * rng.standard_normal((N_HIDDEN, N_VISIBLE))
    model.params["b"][...] = 0.1 * rng.standard_normal(N_VISIBLE)
    model.params["c"][...] = 0.1 * rng.standard_normal(N_HIDDEN)
    return model


def numpy_sweep(model, n_chains, rng):
    """A vectorised numpy Gaussian-Bernoulli block sweep over ``n_chains`` chains (in place)."""
    W, b, c = model.params["W"], model.params["b"], model.params["c"]
    sigma = model.units["x"].sigma
    var = sigma ** 2
    x = rng.standard_normal((n_chains, N_VISIBLE))
    field_h = np.empty((n_chains, N_HIDDEN))
    field_x = np.empty((n_chains, N_VISIBLE))

    def sweep():
        np.matmul(x, W.T, out=field_h)
        np.add(field_h, c, out=field_h)
        h = (rng.random((n_chains, N_HIDDEN)) < expit(field_h)).astype(np.float64)
        np.matmul(h, W, out=field_x)
        np.add(field_x, b, out=field_x)
        np.multiply(field_x, var, out=field_x)
        x[...] = field_x + sigma * rng.standard_normal((n_chains, N_VISIBLE))

    return sweep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 chains, few repeats")
    args = parser.parse_args(argv)
    n_chains, n_sweeps, repeat = (100, 2, 2) if args.quick else (1000, 5, 7)
    rng = np.random.default_rng(0)
    model = gaussian_rbm(rng)
    binary = pe.RBM(N_VISIBLE, N_HIDDEN, W=model.params["W"], b=model.params["b"],
                    c=model.params["c"])
    x = rng.standard_normal((n_chains, N_VISIBLE))
    h = rng.integers(0, 2, (n_chains, N_HIDDEN)).astype(np.float64)
    out_h, out_x = np.empty((n_chains, N_HIDDEN)), np.empty((n_chains, N_VISIBLE))
    W = model.params["W"].T.copy()                       # (784, 500)

    def gemms():
        np.matmul(x, W, out=out_h)
        np.matmul(h, W.T, out=out_x)

    flop = 2 * 2 * n_chains * N_VISIBLE * N_HIDDEN
    load = OtherLoad()
    print(environment_report())
    print()
    targets = []
    for n_threads, blas in ((1, 1), (2, None)):
        limit = threadpoolctl.threadpool_limits(blas, user_api="blas") if blas else None
        try:
            samplers = {"gaussian": pe.GibbsSampler(model, n_chains, rng=0, n_threads=n_threads),
                        "binary": pe.GibbsSampler(binary, n_chains, schedule="block", rng=0,
                                                  n_threads=n_threads)}
            assert samplers["gaussian"].schedule == "block"
            rows = {
                "(a) pgm_energy block sweep, Gaussian-Bernoulli":
                    (lambda: samplers["gaussian"].run(n_sweeps), n_sweeps),
                "(b) pgm_energy block sweep, binary RBM (info)":
                    (lambda: samplers["binary"].run(n_sweeps), n_sweeps),
                "(c) numpy: the two GEMMs": (gemms, 1),
                "(d) numpy Gaussian-Bernoulli block sweep":
                    (numpy_sweep(model, n_chains, np.random.default_rng(1)), 1),
            }
            times = dict.fromkeys(rows, np.inf)
            for _ in range(repeat):
                for name, (fn, per) in rows.items():
                    t, _ = best_of(fn, repeat=1, warmup=1)
                    times[name] = min(times[name], t / per)
        finally:
            if limit is not None:
                limit.unregister()
        gemm = times["(c) numpy: the two GEMMs"]
        table = Table(f"Gaussian-Bernoulli RBM({N_VISIBLE}, {N_HIDDEN}), {n_chains} chains, "
                      f"{n_threads} thread(s), BLAS threads "
                      f"{'default' if blas is None else blas}: time per sweep",
                      ["method", "time / sweep", "GFLOP/s", "/ (c) GEMMs"])
        for name, t in times.items():
            table.add(name, fmt_time(t), f"{flop / t / 1e9:.1f}", f"{t / gemm:.2f}x")
        table.print()
        a = times["(a) pgm_energy block sweep, Gaussian-Bernoulli"]
        b = times["(b) pgm_energy block sweep, binary RBM (info)"]
        d = times["(d) numpy Gaussian-Bernoulli block sweep"]
        per_draw = (a - b) / (n_chains * N_VISIBLE)
        print(f"Gaussian draw less a sigmoid draw (a - b per visible unit): "
              f"{per_draw * 1e9:.1f} ns; "
              f"numpy sweep / pgm_energy sweep: {d / a:.2f}x\n")
        ratio = a / gemm
        targets.append(f"{'met   ' if ratio <= 1.3 else 'MISSED'} (a) <= 1.3x (c), "
                       f"{n_threads} thread(s): {ratio:.2f}x")
    print("Targets:" + (" (--quick sizes: indicative only)" if args.quick else ""))
    for line in targets:
        print("  " + line)
    print(load.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
