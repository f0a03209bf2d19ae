"""AIS for RBM(784, 500): pgm_energy's kernel side by side with a plain numpy AIS.

The model has all weights 0.01 and all biases -1 (a "uniform" RBM), so log Z has a closed
form (a sum over the number k of active hidden units):

    log Z = logsumexp_k [log C(500, k) - k + 784 softplus(-1 + 0.01 k)] = 2650.8459...

Both sides anneal the visible marginal (hidden units summed out) over the same sigmoidal
schedule of 1e4 inverse temperatures with 100 runs, from the base model of the visible biases.
numpy: ``tests/reference/ais.py:anneal_bipartite`` (the kernel's twin: vectorised over runs,
two matrix products and the element-wise updates per step, uniforms from a
``numpy.random.Generator``).
pgm_energy: ``pe.ais.log_partition`` in float64 and float32 (``sgemm``, log weights in
double). Each is timed on 1 and 2 threads (numpy: BLAS threads; pgm_energy: threads over
blocks of runs, BLAS on one thread each); ratios compare equal thread counts.
Targets: float64 >= 2x numpy, float32 >= 3x, every estimate within 3 standard errors.

Run from the repository root; let numpy's OpenBLAS pick its own kernel (the variables below
pin an older one):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_ais.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_ais.py --quick

The exit status is 1 if an estimate is more than 3 standard errors from the exact log Z.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import threadpoolctl
from scipy.special import expit, gammaln, logsumexp

import pgm_energy as pe

from _common import (OtherLoad, Table, best_of, environment_report, fmt_ratio, load_reference,
                     fmt_time)

N_VISIBLE, N_HIDDEN, BIAS, WEIGHT = 784, 500, -1.0, 0.01


ais_twin = load_reference("ais")


def exact_log_z() -> float:
    k = np.arange(N_HIDDEN + 1)
    log_binomial = gammaln(N_HIDDEN + 1) - gammaln(k + 1) - gammaln(N_HIDDEN - k + 1)
    return float(logsumexp(log_binomial + k * BIAS
                           + N_VISIBLE * np.logaddexp(0.0, BIAS + k * WEIGHT)))


def numpy_ais(betas, n_runs, seed):
    """Plain numpy AIS; returns (log Z, stderr) like ``pe.ais.AISEstimate``."""
    gen = np.random.default_rng(seed)
    W = np.full((N_HIDDEN, N_VISIBLE), WEIGHT)
    b, c = np.full(N_VISIBLE, BIAS), np.full(N_HIDDEN, BIAS)
    x = (gen.random((n_runs, N_VISIBLE)) < expit(b)).astype(np.float64)
    log_w = ais_twin.anneal_bipartite(x, W, b, c, b, betas,
                                      lambda n: gen.random((n_runs, n)))
    log_z_base = np.logaddexp(0.0, b).sum() + N_HIDDEN * np.log(2.0)
    ratio = np.exp(log_w - log_w.max())
    return (float(log_z_base + logsumexp(log_w) - np.log(n_runs)),
            float(ratio.std(ddof=1) / (np.sqrt(n_runs) * ratio.mean())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e3 betas, one repeat")
    parser.add_argument("--n-betas", type=int, default=None)
    parser.add_argument("--n-runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=None, help="timed repeats (best of)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    n_betas = args.n_betas or (1000 if args.quick else 10000)
    repeat = args.repeat or 1
    print(environment_report())
    print()
    load = OtherLoad()

    model = pe.RBM(N_VISIBLE, N_HIDDEN, W=np.full((N_HIDDEN, N_VISIBLE), WEIGHT),
                   b=np.full(N_VISIBLE, BIAS), c=np.full(N_HIDDEN, BIAS))
    betas = pe.ais.sigmoid_schedule(n_betas)
    exact = exact_log_z()
    table = Table(f"AIS log Z of the uniform RBM({N_VISIBLE}, {N_HIDDEN}): {n_betas} betas "
                  f"(sigmoidal), {args.n_runs} runs; exact log Z = {exact:.4f}",
                  ["method", "threads", "time", "vs numpy", "log Z", "stderr", "error",
                   "error/stderr"])
    failed = False
    for n_threads in args.threads:
        with threadpoolctl.threadpool_limits(n_threads, user_api="blas"):
            numpy_time, (log_z, stderr) = best_of(
                lambda: numpy_ais(betas, args.n_runs, 0), repeat=repeat, warmup=0)
        rows = [("numpy (reference)", numpy_time, log_z, stderr)]
        for dtype in (np.float64, np.float32):
            seconds, est = best_of(
                lambda: pe.ais.log_partition(model, betas=betas, n_runs=args.n_runs, rng=0,
                                             dtype=dtype, n_threads=n_threads),
                repeat=repeat, warmup=0)
            rows.append((f"pgm_energy {np.dtype(dtype).name}", seconds, est.log_z, est.stderr))
        for name, seconds, log_z, stderr in rows:
            error = log_z - exact
            failed |= abs(error) > 3 * stderr
            table.add(name, n_threads, fmt_time(seconds), fmt_ratio(numpy_time / seconds),
                      f"{log_z:.4f}", f"{stderr:.4f}", f"{error:+.4f}",
                      f"{error / stderr:+.2f}")
    table.print()
    print(load.report())
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
