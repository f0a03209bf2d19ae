"""Gaussian-Bernoulli RBM PCD epoch: pgm_energy's fit(PCD, SGD) against a numpy GB-RBM.

Standardised 8x8 digits (1797 images, the 47 pixels that vary), GB-RBM(47, 64), sigma = 1,
100 persistent chains, k = 1 block sweep per update, batch 100, plain SGD lr 0.005. Both sides
run the same algorithm from the same parameters (tests/reference/gbrbm.py is the numpy twin:
BLAS products, vectorised draws) with BLAS on one thread. Time per epoch: a training run of
``RUN`` epochs (one ``fit(..., epochs=RUN)`` call; ``RUN`` passes of the twin's epoch), divided
by ``RUN``, best of several runs; the per-call cost of ``fit`` (validating the data, handing the
persistent chains out of and back into the sampler) is printed apart. Then the result of
training: for seeds 1..3, both sides train the same fresh model for ``QUALITY_EPOCHS``
epochs, and each model's mean log density is estimated (64 hidden units: 2^64 states are too
many for the exact sum, so AIS from a data-fitted Gaussian base, forward, 100 runs); the
table shows the mean over the seeds and the spread (max - min).

    python benchmarks/bench_gaussian_rbm_pcd.py [--quick]
"""
from __future__ import annotations

import argparse

import numpy as np
import threadpoolctl
from _common import (OtherLoad, Table, best_of, environment_report, fmt_time, load_reference,
                     optional_import)

import pgm_energy as pe

N_HIDDEN, N_CHAINS, K, BATCH, LR, RUN, QUALITY_EPOCHS = 64, 100, 1, 100, 0.005, 5, 30
twin = load_reference("gbrbm")


def standardised_digits():
    datasets = optional_import("sklearn.datasets")
    if datasets is None:
        raise SystemExit("this benchmark needs scikit-learn: pip install '.[bench]'")
    X = datasets.load_digits().data
    X = X[:, X.std(axis=0) > 1.0]
    return (X - X.mean(axis=0)) / X.std(axis=0)


def gbrbm(n_visible, seed):
    model = pe.EnergyModel(
        units={"x": pe.Gaussian(n_visible), "h": pe.Binary(N_HIDDEN)},
        terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"), pe.Pairwise("h", "x", name="W")],
        visible=["x"])
    model.params["W"][...] = 0.01 * np.random.default_rng(seed).standard_normal(
        (N_HIDDEN, n_visible))
    return model


class NumpyGBRBM:
    def __init__(self, model, seed):
        p = model.params
        self.W, self.b, self.c = p["W"].copy(), p["b"].copy(), p["c"].copy()
        self.sigma2 = model.units["x"].sigma ** 2
        self.gen = np.random.default_rng(seed)
        self.chains = self.gen.standard_normal((N_CHAINS, len(self.b)))

    def epoch(self, X):
        self.chains = twin.pcd_epoch(self.W, self.b, self.c, self.sigma2, self.chains, X, BATCH,
                                     LR, K, self.gen)

    def to_model(self, n_visible):
        model = gbrbm(n_visible, 0)
        for name in ("W", "b", "c"):
            model.params[name][...] = getattr(self, name)
        return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 5
    X = standardised_digits()
    n_visible = X.shape[1]
    load = OtherLoad()
    print(environment_report())
    model = gbrbm(n_visible, 0)
    reference = NumpyGBRBM(model, 0)
    method = pe.PCD(n_chains=N_CHAINS, k=K)
    gen = np.random.default_rng(0)

    def ours(epochs):
        pe.fit(model, X, method, pe.SGD(lr=LR), epochs=epochs, batch_size=BATCH, rng=gen)

    def theirs():
        for _ in range(RUN):
            reference.epoch(X)

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        t_numpy, _ = best_of(theirs, repeats, 1)
        t_ours, _ = best_of(lambda: ours(RUN), repeats, 1)
        t_call, _ = best_of(lambda: ours(1), repeats, 1)
    t_numpy, t_ours = t_numpy / RUN, t_ours / RUN
    results = ([], [])
    for seed in (1, 2, 3):
        model = gbrbm(n_visible, 0)
        reference = NumpyGBRBM(model, seed)
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            pe.fit(model, X, pe.PCD(n_chains=N_CHAINS, k=K), pe.SGD(lr=LR),
                   epochs=QUALITY_EPOCHS, batch_size=BATCH, rng=seed)
            for _ in range(QUALITY_EPOCHS):
                reference.epoch(X)
        for out, trained in zip(results, (reference.to_model(n_visible), model)):
            out.append(pe.ais.log_likelihood(trained, X, n_betas=1000, n_runs=100, rng=0).mean)
    scores = [f"{np.mean(r):.3f} (spread {np.ptp(r):.3f})" for r in results]
    table = Table(f"Gaussian-Bernoulli RBM({n_visible}, {N_HIDDEN}) on standardised digits, "
                  f"PCD (k={K}, {N_CHAINS} chains, batch {BATCH}, SGD lr {LR}): time per "
                  f"epoch in runs of {RUN} (best of {repeats}); AIS mean log density after "
                  f"{QUALITY_EPOCHS} epochs, mean over 3 seeds",
                  ["library", "s/epoch", "speed-up", "log density (nats)", "target"])
    table.add("numpy GB-RBM (tests/reference/gbrbm.py)", fmt_time(t_numpy), "1.00",
              scores[0], None)
    table.add("pgm_energy fit(PCD, SGD), compiled epoch", fmt_time(t_ours),
              f"{t_numpy / t_ours:.2f}", scores[1], ">= 2.00")
    table.print()
    print(f"one epoch per fit call: {fmt_time(t_call)} ({t_numpy / t_call:.2f}x the twin's "
          "epoch)")
    print(load.report())


if __name__ == "__main__":
    main()
