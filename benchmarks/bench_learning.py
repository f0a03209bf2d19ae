"""RBM training speed against scikit-learn's BernoulliRBM (issue: learning).

Digits (8x8, 1797 images, binarised at 0.5), PCD-1, batch 10, learning rate 0.1, no
momentum: the settings of scikit-learn's BernoulliRBM, on 64 and 256 hidden units. Both
libraries run the same algorithm (persistent chains as many as the batch, hidden means in
the statistics); time per epoch is the best of several fits divided by the epochs, and the
quality check is the exact pseudo-log-likelihood (all 64 units) of both trained models,
computed by pgm_energy from their parameters.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_learning.py
"""
from __future__ import annotations

import argparse

from _common import OtherLoad, Table, best_of, environment_report, fmt_time, optional_import

import pgm_energy as pe
from pgm_energy.learning import pseudo_log_likelihood


def digits():
    datasets = optional_import("sklearn.datasets")
    if datasets is None:
        raise SystemExit("this benchmark needs scikit-learn: pip install '.[bench]'")
    return (datasets.load_digits().data / 16.0 > 0.5).astype(float)


def fit_sklearn(X, n_hidden, epochs, seed):
    from sklearn.neural_network import BernoulliRBM

    rbm = BernoulliRBM(n_components=n_hidden, learning_rate=0.1, batch_size=10,
                       n_iter=epochs, random_state=seed)
    rbm.fit(X)
    return pe.RBM(X.shape[1], n_hidden, W=rbm.components_, b=rbm.intercept_visible_,
                  c=rbm.intercept_hidden_)


def fit_pgm_energy(X, n_hidden, epochs, seed):
    model = pe.RBM(X.shape[1], n_hidden, rng=seed)
    pe.fit(model, X, pe.PCD(n_chains=10, k=1), pe.SGD(lr=0.1), epochs=epochs, batch_size=10,
           rng=seed)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    args = parser.parse_args(argv)
    epochs, repeat = (3, 1) if args.quick else (20, 3)
    X = digits()
    load = OtherLoad()
    print(environment_report())
    table = Table(f"RBM on digits, PCD-1, batch 10, lr 0.1: time per epoch ({epochs} epochs, "
                  f"best of {repeat}) and exact pseudo-log-likelihood",
                  ["hidden", "library", "s/epoch", "time vs sklearn", "PLL", "target"])
    for n_hidden in (64, 256):
        t_sk, sk_model = best_of(lambda: fit_sklearn(X, n_hidden, epochs, 0), repeat, 0)
        t_pe, pe_model = best_of(lambda: fit_pgm_energy(X, n_hidden, epochs, 0), repeat, 0)
        pll_sk = pseudo_log_likelihood(sk_model, X)
        pll_pe = pseudo_log_likelihood(pe_model, X)
        table.add(n_hidden, "scikit-learn BernoulliRBM", fmt_time(t_sk / epochs), "1.00",
                  f"{pll_sk:.3f}", None)
        table.add(n_hidden, "pgm_energy fit(PCD, SGD)", fmt_time(t_pe / epochs),
                  f"{t_pe / t_sk:.2f}", f"{pll_pe:.3f}", "<= 0.50, PLL >= sklearn")
    table.print()
    print(load.report())


if __name__ == "__main__":
    main()
