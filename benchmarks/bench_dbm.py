"""DBM training speed: a PCD epoch of pgm_energy against a plain numpy DBM (issue 16).

Binarised digits (8x8, 1797 images, pixels > 0.5), a DBM [64, 100, 100], mean-field positive
phase (tolerance 1e-6, at most 50 sweeps), 100 persistent chains advanced k = 1 block Gibbs
sweep per update, batch 100, plain SGD with lr 0.01. Both sides run the same algorithm from
the same parameters: pgm_energy's ``fit(PCD(positive=MeanField(...)), SGD)`` (whole epochs in
the compiled kernel of ``pgm_energy.learning.compiled``: mean field and block sweeps over the
even layers x, h2 and the odd layer h1, one BLAS product per coupling block) and the numpy DBM
of ``tests/reference/dbm.py`` (mean field layer-block by layer-block and block Gibbs sweeps,
BLAS products only, no Python loop over units). Both run with BLAS on one thread (at
these sizes, 100 x 264 products, threads only add waits; on a shared machine they cost 10x).
Time per epoch is the best of several epochs, each one call of ``fit`` (its setup
included); the check of the result is the mean-field bound on the training data with the same
log Z estimate (AIS) for both trained models.

    python benchmarks/bench_dbm.py [--quick]
"""
from __future__ import annotations

import argparse

import numpy as np
import threadpoolctl
from _common import (OtherLoad, Table, best_of, environment_report, fmt_time, load_reference,
                     optional_import)

import pgm_energy as pe

SIZES, N_CHAINS, K, BATCH, LR, TOL, MAX_ITER = [64, 100, 100], 100, 1, 100, 0.01, 1e-6, 50


twin = load_reference("dbm")


def digits():
    datasets = optional_import("sklearn.datasets")
    if datasets is None:
        raise SystemExit("this benchmark needs scikit-learn: pip install '.[bench]'")
    return (datasets.load_digits().data / 16.0 > 0.5).astype(float)


class NumpyDBM:
    def __init__(self, model, seed):
        p = model.params
        self.W = [p[f"W{l}"].copy() for l in range(1, len(SIZES))]
        self.b = p["b"].copy()
        self.c = [p[f"c{l}"].copy() for l in range(1, len(SIZES))]
        self.gen = np.random.default_rng(seed)
        self.chains = [(self.gen.random((N_CHAINS, n)) < 0.5).astype(float) for n in SIZES]

    def epoch(self, X):
        twin.pcd_epoch(self.W, self.b, self.c, self.chains, X, BATCH, LR, K, self.gen, TOL,
                       MAX_ITER)

    def to_model(self):
        model = pe.DBM(SIZES)
        model.params["b"][...] = self.b
        for l in range(1, len(SIZES)):
            model.params[f"W{l}"][...] = self.W[l - 1]
            model.params[f"c{l}"][...] = self.c[l - 1]
        return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else 5
    X = digits()
    load = OtherLoad()
    print(environment_report())
    model = pe.DBM(SIZES, rng=0)
    reference = NumpyDBM(model, 0)
    method = pe.PCD(n_chains=N_CHAINS, k=K, positive=pe.learning.MeanField(TOL, MAX_ITER))
    gen = np.random.default_rng(0)

    def ours():
        pe.fit(model, X, method, pe.SGD(lr=LR, momentum=0.0), epochs=1, batch_size=BATCH,
               rng=gen)

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        t_numpy, _ = best_of(lambda: reference.epoch(X), epochs, 1)
        t_ours, _ = best_of(ours, epochs, 1)
    bounds = []
    for trained in (reference.to_model(), model):
        log_z = pe.ais.log_partition(trained, n_betas=1000, n_runs=100, rng=0).log_z
        bounds.append(pe.variational.log_likelihood_bound(trained, X, log_z).mean())
    table = Table(f"DBM {SIZES} on binarised digits, PCD (k={K}, {N_CHAINS} chains, batch "
                  f"{BATCH}, SGD lr {LR}), mean-field positive phase: time per epoch (best "
                  f"of {epochs}) and the mean-field bound with AIS log Z after "
                  f"{epochs + 1} epochs",
                  ["library", "s/epoch", "speed-up", "bound (nats)", "target"])
    table.add("numpy DBM (tests/reference/dbm.py)", fmt_time(t_numpy), "1.00",
              f"{bounds[0]:.2f}", None)
    table.add("pgm_energy fit(PCD, SGD)", fmt_time(t_ours), f"{t_numpy / t_ours:.2f}",
              f"{bounds[1]:.2f}", ">= 2.00")
    table.print()
    print(load.report())


if __name__ == "__main__":
    main()
