"""Categorical (Potts) Gibbs: pgm_energy's compiled kernel against a numpy chromatic sampler.

The model: a k-state Potts model on the sparse random graph of bench_gibbs.py (1e4 sites,
3e4 edges, mean degree 6), ``E = -sum_e theta_e [x_i = x_j]`` with ``theta_e = J_e / 2``,
``J_e ~ N(0, 1)``, beta = 1, for k = 3 and k = 10.

Rows: pgm_energy ``schedule="chromatic"`` with 100 chains on 1 and 2 threads, and one chain;
a numpy chromatic sampler, all chains at once: per colour, the slot fields of its sites for
every chain are one CSR (colour slots x all slots) product with the one-hot state, then a
softmax and one uniform per chain. The numpy sampler runs twice: with the k x k table of
every edge stored whole (k^2 couplings per edge, as pgm_energy's flat graph stores a
``SparsePairwise`` table), and with only the Potts diagonal (k per edge), the sampler a user
would write for this very model. Reported: site updates per second and the ratios.

Check: the mean energy per site after 100 sweeps at beta = 0.5 agrees between the two
samplers within 4 standard errors (over chains). No targets: information only.

Run from the repository root: ``python benchmarks/bench_categorical.py`` (``--quick``: small).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import scipy.sparse as sp


import pgm_energy as pe

from _common import Table, best_of, environment_report, fmt_rate, fmt_ratio
from bench_gibbs import greedy_colouring, sparse_graph


def potts(n, k, edges, theta):
    """The pgm_energy model: SparsePairwise tables theta_e I (k x k) per edge."""
    tables = theta[:, None, None] * np.eye(k)
    return pe.EnergyModel({"x": pe.Categorical(n, k)}, [pe.SparsePairwise("x", edges, value=tables)])


class NumpyPotts:
    """Chromatic Gibbs for the Potts model in numpy; values (n, chains) int.

    Sites are renumbered so that each colour is a contiguous slice; slot (i, v) is row
    i k + v of the one-hot state (n k, chains). The slot-to-slot couplings are theta_ij
    between (i, v) and (j, v); with ``diagonal=False`` the zeros between (i, v) and (j, w),
    w != v, are stored too (the whole k x k table of each edge).
    """

    def __init__(self, n, k, edges, theta, n_chains, beta, seed, diagonal=True):
        adj = sp.coo_matrix((np.ones(2 * len(edges)), (np.r_[edges[:, 0], edges[:, 1]],
                                                       np.r_[edges[:, 1], edges[:, 0]])),
                            shape=(n, n)).tocsr()
        colour = greedy_colouring(adj)
        self.perm = np.argsort(colour, kind="stable")          # new index -> old index
        new = np.empty(n, np.int64)
        new[self.perm] = np.arange(n)
        i, j = new[edges[:, 0]], new[edges[:, 1]]
        v, w = (np.arange(k), np.arange(k)) if diagonal else np.divmod(np.arange(k * k), k)
        rows = np.r_[i, j][:, None] * k + v
        cols = np.r_[j, i][:, None] * k + w
        table = np.r_[theta, theta][:, None] * (v == w)
        slots = sp.csr_matrix((table.ravel(), (rows.ravel(), cols.ravel())),
                              shape=(n * k, n * k))
        bounds = np.searchsorted(colour[self.perm], np.arange(colour.max() + 2))
        self.blocks = [(lo, hi, slots[lo * k:hi * k]) for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.n, self.k, self.beta = n, k, beta
        self.rng = np.random.default_rng(seed)
        self.values = self.rng.integers(0, k, size=(n, n_chains))
        self.onehot = np.zeros((n * k, n_chains))
        self.onehot[np.arange(n)[:, None] * k + self.values, np.arange(n_chains)] = 1.0

    def run(self, n_sweeps):
        k, chains = self.k, self.values.shape[1]
        for _ in range(n_sweeps):
            for lo, hi, rows in self.blocks:
                z = self.beta * (rows @ self.onehot).reshape(hi - lo, k, chains)
                z = np.exp(z - z.max(axis=1, keepdims=True))
                cumulative = np.cumsum(z, axis=1)
                u = self.rng.random((hi - lo, 1, chains)) * cumulative[:, -1:]
                pick = np.minimum((cumulative <= u).sum(axis=1), k - 1)
                self.onehot[lo * k:hi * k] = 0.0
                self.onehot[(np.arange(lo, hi)[:, None] * k + pick), np.arange(chains)] = 1.0
                self.values[lo:hi] = pick
        return self

    def sites(self):
        """Values (n, chains) in the original site numbering."""
        out = np.empty_like(self.values)
        out[self.perm] = self.values
        return out


def energy_per_site(values, edges, theta):
    """Per chain ``E / n = -sum_e theta_e [x_i = x_j] / n`` for values (n, chains)."""
    same = values[edges[:, 0]] == values[edges[:, 1]]
    return -(theta[:, None] * same).sum(0) / len(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    args = parser.parse_args(argv)
    n, chains, sweeps, repeat = (2000, 40, 5, 2) if args.quick else (10000, 100, 10, 3)
    print(environment_report() + "\n")
    edges, couplings = sparse_graph(n, seed=7)
    theta = 0.5 * couplings
    failures = []
    for k in (3, 10):
        model = potts(n, k, edges, theta)
        table = Table(f"Potts, {n} sites, k = {k}, {len(edges)} edges, beta = 1",
                      ["method", "chains", "threads", "site updates/s", "/ numpy tables",
                       "/ numpy diagonal"])
        rates = {}
        for label, n_chains, threads in [("pgm_energy chromatic", chains, 1),
                                         ("pgm_energy chromatic", chains, 2),
                                         ("pgm_energy chromatic", 1, 1)]:
            sampler = pe.GibbsSampler(model, n_chains, schedule="chromatic", rng=0,
                                      n_threads=threads)
            t, _ = best_of(lambda: sampler.run(sweeps), repeat)
            rates[(n_chains, threads)] = sweeps * n * n_chains / t
        numpy_rates = []
        for diagonal in (False, True):
            reference = NumpyPotts(n, k, edges, theta, chains, 1.0, 0, diagonal)
            t, _ = best_of(lambda: reference.run(max(1, sweeps // 2)), repeat)
            numpy_rates.append(max(1, sweeps // 2) * n * chains / t)
        for (n_chains, threads), rate in rates.items():
            table.add("pgm_energy chromatic", n_chains, threads, fmt_rate(rate),
                      fmt_ratio(rate / numpy_rates[0]), fmt_ratio(rate / numpy_rates[1]))
        table.add("numpy chromatic, whole k x k tables", chains, 1, fmt_rate(numpy_rates[0]),
                  "1.0x", None)
        table.add("numpy chromatic, Potts diagonal only", chains, 1, fmt_rate(numpy_rates[1]),
                  None, "1.0x")
        table.print()
        # the same distribution: mean energy per site at beta = 0.5
        ours = pe.GibbsSampler(model, chains, schedule="chromatic", beta=0.5, rng=1).run(100)
        e_ours = energy_per_site(ours.state["x"].T, edges, theta)
        e_ref = energy_per_site(NumpyPotts(n, k, edges, theta, chains, 0.5, 1).run(100).sites(),
                                edges, theta)
        se = np.hypot(e_ours.std(ddof=1), e_ref.std(ddof=1)) / np.sqrt(chains)
        distance = abs(e_ours.mean() - e_ref.mean()) / se
        print(f"mean energy per site at beta = 0.5: pgm_energy {e_ours.mean():.5f}, numpy "
              f"{e_ref.mean():.5f} ({distance:.2f} standard errors apart)\n")
        if distance > 4.0:
            failures.append(f"k = {k}: mean energies {distance:.1f} standard errors apart")
    if failures:
        print("CHECK FAILED: " + "; ".join(failures))
        return 1
    print("All correctness checks passed.")
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    status = main()
    print(f"total {time.perf_counter() - start:.1f} s")
    sys.exit(status)
