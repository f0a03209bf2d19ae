"""Cluster moves: Swendsen-Wang against single-site Gibbs and against a numpy Swendsen-Wang.

The model is the ferromagnetic Ising model on an L x L torus (J = 1, no field) at the critical
point beta_c = log(1 + sqrt 2) / 2, where single-site updates slow down most.

1. Mixing per second. ``pe.GibbsSampler`` (chromatic schedule) and
   ``pe.ClusterSampler(algorithm="swendsen-wang")`` run the same chains side by side in one
   process, on one thread. For each, the trace of |m| (the absolute magnetisation per spin) is
   recorded after every sweep, its integrated autocorrelation time ``tau`` comes from
   ``pe.diagnostics.integrated_time`` (Sokal's window, chains combined), and the time to one
   effective sample is ``t_sweep * tau / n_chains`` (``t_sweep``: best-of time of one sweep of
   all chains, without the recording). Target: Swendsen-Wang >= 10x sooner than Gibbs.
2. Update speed. Time per spin of one Swendsen-Wang sweep: pgm_energy (1 and 2 threads) against
   a well-written numpy Swendsen-Wang (bonds drawn for all chains at once, clusters by
   ``scipy.sparse.csgraph.connected_components`` on the block-diagonal bond graph of all
   chains, one flip decision per cluster), 16 chains (8 per thread on 2 threads). Target: >= 10x numpy per spin; reported for 1 thread
   and for 2 (the sampler's default uses all cores; numpy's clusters come from single-threaded
   C code).

Checks (exit status 1 on failure): the mean energy per spin of each sampler agrees with the
exact value of the finite torus (Kaufman's formula, ``pe.testing.ising_torus_log_partition``,
differentiated numerically) within 4 standard errors from ``pe.diagnostics.mcse``.

Run from the repository root, on the installed package:

    python benchmarks/bench_cluster.py            # L = 64 (about 2 minutes)
    python benchmarks/bench_cluster.py --quick    # L = 32, short runs
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

import pgm_energy as pe
from _common import Table, best_of, environment_report, fmt_time

BETA_C = float(np.log1p(np.sqrt(2.0)) / 2)
N_SIGMA = 4.0


@dataclass
class Sizes:
    """Lattice side, chains and sweeps for one run (full or --quick)."""

    side: int
    n_chains: int
    gibbs_sweeps: int         # recorded sweeps of the Gibbs chains (after burn-in)
    cluster_sweeps: int       # recorded sweeps of the Swendsen-Wang chains
    burn_in: int
    timed_sweeps: int         # sweeps per timed call
    repeat: int
    speed_chains: int         # chains of the update-speed comparison (part 2)


FULL = Sizes(side=64, n_chains=8, gibbs_sweeps=40_000, cluster_sweeps=4000, burn_in=2000,
             timed_sweeps=20, repeat=9, speed_chains=16)
QUICK = Sizes(side=32, n_chains=8, gibbs_sweeps=8000, cluster_sweeps=1000, burn_in=500,
              timed_sweeps=10, repeat=3, speed_chains=16)


def torus(side: int) -> pe.EnergyModel:
    """The ferromagnetic Ising model on a side x side torus, site (r, c) -> r * side + c."""
    site = np.arange(side * side).reshape(side, side)
    right = np.stack([site.ravel(), np.roll(site, -1, axis=1).ravel()], axis=1)
    down = np.stack([site.ravel(), np.roll(site, -1, axis=0).ravel()], axis=1)
    return pe.Ising(np.concatenate([right, down]), 1.0)


def exact_energy_per_spin(side: int, beta: float, step: float = 1e-5) -> float:
    """``u = -(1/N) d log Z / d beta`` of the torus, by a central difference of Kaufman's
    ``log Z`` (its error, about step^2 and 1e-16 log Z / step, is far below the samplers')."""
    log_z = pe.testing.ising_torus_log_partition
    slope = (log_z(side, side, 1.0, beta + step) - log_z(side, side, 1.0, beta - step)) / (2 * step)
    return -slope / side ** 2


class NumpySwendsenWang:
    """Swendsen-Wang for many chains of a zero-field Ising model, in numpy and scipy.

    Per sweep: the satisfied edges (``J s_i s_j > 0``) of every chain bond with probability
    ``1 - exp(-2 beta |J|)``; the bonds of all chains form one block-diagonal graph whose
    connected components (scipy's C code) are the clusters; each cluster flips with
    probability 1/2.
    """

    def __init__(self, edges, couplings, n_spins, n_chains, beta, rng):
        self.i, self.j = edges[:, 0], edges[:, 1]
        self.J = np.asarray(couplings, float)
        self.p = -np.expm1(-2 * beta * np.abs(self.J))
        self.n_spins, self.n_chains = n_spins, n_chains
        self.gen = np.random.default_rng(rng)
        self.s = self.gen.choice(np.array([-1, 1], np.int8), size=(n_chains, n_spins))
        self.chain_offset = (np.arange(n_chains) * n_spins)[:, None]

    def sweep(self, n_sweeps: int = 1):
        n = self.n_spins * self.n_chains
        for _ in range(n_sweeps):
            satisfied = self.J * self.s[:, self.i] * self.s[:, self.j] > 0
            bond = satisfied & (self.gen.random(satisfied.shape) < self.p)
            rows = (self.i + self.chain_offset)[bond]
            cols = (self.j + self.chain_offset)[bond]
            graph = sp.csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
            n_clusters, label = connected_components(graph, directed=False)
            flip = self.gen.random(n_clusters) < 0.5
            self.s[flip[label].reshape(self.s.shape)] *= -1


def traces(sampler, n_sweeps: int, side: int):
    """|m| and the energy per spin of every chain after each of ``n_sweeps`` sweeps."""
    model = sampler.model
    abs_m = np.empty((n_sweeps, sampler.n_chains))
    energy = np.empty((n_sweeps, sampler.n_chains))
    for k in range(n_sweeps):
        state = sampler.run(1).state
        abs_m[k] = np.abs(state["s"].mean(axis=1))
        energy[k] = model.energy(state) / side ** 2
    return abs_m, energy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="L = 32 and short runs")
    sizes = QUICK if parser.parse_args(argv).quick else FULL
    print(environment_report())
    side, n_chains = sizes.side, sizes.n_chains
    model = torus(side)
    n_spins = side * side
    exact_u = exact_energy_per_spin(side, BETA_C)
    failures = []

    samplers = {
        "Gibbs (chromatic)": (pe.GibbsSampler(model, n_chains, schedule="chromatic",
                                              beta=BETA_C, rng=0, n_threads=1),
                              sizes.gibbs_sweeps),
        "Swendsen-Wang": (pe.ClusterSampler(model, n_chains, algorithm="swendsen-wang",
                                            beta=BETA_C, rng=0, n_threads=1),
                          sizes.cluster_sweeps),
    }
    table = Table(f"1. Ising {side}x{side} torus at beta_c, {n_chains} chains, 1 thread: "
                  "time to one effective sample of |m|",
                  ["sampler", "sweep (all chains)", "tau_int(|m|)", "R-hat(|m|)",
                   "time / eff. sample", "u - u_exact (SE)"])
    per_sample = {}
    for name, (sampler, n_sweeps) in samplers.items():
        sampler.run(sizes.burn_in)
        t_sweep = best_of(lambda s=sampler: s.run(sizes.timed_sweeps),
                          sizes.repeat)[0] / sizes.timed_sweeps
        abs_m, energy = traces(sampler, n_sweeps, side)
        tau = float(pe.diagnostics.integrated_time(abs_m))
        rhat = float(pe.diagnostics.rhat(abs_m))
        se = float(pe.diagnostics.mcse(energy))
        off = float(energy.mean()) - exact_u
        per_sample[name] = t_sweep * tau / n_chains
        table.add(name, fmt_time(t_sweep), f"{tau:.1f}", f"{rhat:.3f}",
                  fmt_time(per_sample[name]), f"{off:+.2e} ({off / se:+.1f})")
        if abs(off) > N_SIGMA * se:
            failures.append(f"{name}: mean energy per spin {energy.mean():.6f} is "
                            f"{abs(off) / se:.1f} standard errors from the exact {exact_u:.6f}")
    table.print()
    mixing = per_sample["Gibbs (chromatic)"] / per_sample["Swendsen-Wang"]
    print(f"Swendsen-Wang reaches an effective sample of |m| {mixing:.1f}x sooner than "
          "Gibbs (target >= 10x)\n")

    edges = np.asarray(model.terms[0].edges)
    n_chains = sizes.speed_chains
    table = Table(f"2. One Swendsen-Wang sweep of {n_chains} chains of the {side}x{side} torus",
                  ["implementation", "threads", "sweep", "per spin", "vs numpy"])
    reference = NumpySwendsenWang(edges, np.ones(len(edges)), n_spins, n_chains, BETA_C, 0)
    reference.sweep(sizes.burn_in // 10)
    t_numpy = best_of(lambda: reference.sweep(sizes.timed_sweeps),
                      sizes.repeat)[0] / sizes.timed_sweeps
    table.add("numpy + scipy.sparse.csgraph", 1, fmt_time(t_numpy),
              f"{t_numpy / (n_spins * n_chains) * 1e9:.1f} ns", "1.00x")
    speed = {}
    for threads in (1, 2):
        sampler = pe.ClusterSampler(model, n_chains, beta=BETA_C, rng=0, n_threads=threads)
        sampler.run(sizes.burn_in // 10)
        t = best_of(lambda s=sampler: s.run(sizes.timed_sweeps),
                    sizes.repeat)[0] / sizes.timed_sweeps
        speed[threads] = t_numpy / t
        table.add("pe.ClusterSampler", threads, fmt_time(t),
                  f"{t / (n_spins * n_chains) * 1e9:.1f} ns", f"{speed[threads]:.1f}x")
    table.print()
    print(f"pgm_energy's Swendsen-Wang sweep is {speed[1]:.1f}x faster per spin than numpy on "
          f"1 thread, {speed[2]:.1f}x on 2 (the sampler's default: all cores; numpy's "
          "connected_components has no threads) (target >= 10x)\n")

    # The numpy reference samples the same distribution: its energy agrees with the exact one.
    start = time.perf_counter()
    energies = []
    for _ in range(sizes.cluster_sweeps // 4):
        reference.sweep()
        s = reference.s.astype(float)
        energies.append(-(s[:, edges[:, 0]] * s[:, edges[:, 1]]).sum(axis=1) / n_spins)
    energies = np.array(energies)
    se = float(pe.diagnostics.mcse(energies))
    off = float(energies.mean()) - exact_u
    print(f"numpy Swendsen-Wang: u - u_exact = {off:+.2e} ({off / se:+.1f} SE) "
          f"[{time.perf_counter() - start:.1f} s]")
    if abs(off) > N_SIGMA * se:
        failures.append(f"numpy Swendsen-Wang: {abs(off) / se:.1f} SE from the exact energy")
    print(f"\ntargets: mixing {'met' if mixing >= 10 else 'MISSED'} ({mixing:.1f}x >= 10x), "
          f"update speed on 2 threads {'met' if speed[2] >= 10 else 'MISSED'} "
          f"({speed[2]:.1f}x >= 10x), on 1 thread {'met' if speed[1] >= 10 else 'MISSED'} "
          f"({speed[1]:.1f}x >= 10x)")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
