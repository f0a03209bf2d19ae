"""Gibbs sweeps per second with a user's term on the generic path vs the same model compiled.

The model: RBM(64, 32) plus a sparse chain of couplings on the visible units. "Compiled" uses
the built-in SparsePairwise; "generic" replaces it with a user term that defines only
energy/energy_grad (the same energy), so every visible unit is updated from numpy energy
differences and the hidden units stay in the kernel; a third row gives the user term the
optional closed-form ``delta_energy``. All sample the same distribution. Target: the generic
path within 50x of the compiled one.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_terms.py
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import OtherLoad, Table, best_of, environment_report, fmt_time

import pgm_energy as pe


class ChainCouplings(pe.Term):
    """E = -sum_i J_i x_i x_{i+1}: the user's version of a SparsePairwise chain."""

    def __init__(self, group, J):
        super().__init__(groups=(group,), params={"J": np.asarray(J, dtype=float)})

    def energy(self, state):
        x = state[self.groups[0]]
        return -(x[:, :-1] * x[:, 1:]) @ self.params["J"]

    def energy_grad(self, state):
        x = state[self.groups[0]]
        return {"J": -(x[:, :-1] * x[:, 1:])}


class ChainCouplingsWithDelta(ChainCouplings):
    """The same term with the optional closed-form ``delta_energy`` (one unit's change)."""

    def delta_energy(self, state, group, unit, values):
        x, J = state[group], self.params["J"]
        gain = (x[:, unit - 1] * J[unit - 1] if unit > 0 else 0.0) + (
            x[:, unit + 1] * J[unit] if unit + 1 < x.shape[1] else 0.0)
        return -(values[1] - values[0]) * gain


def build(n_visible, n_hidden, generic, seed=0):
    rng = np.random.default_rng(seed)
    W = 0.3 * rng.normal(size=(n_hidden, n_visible))
    J = 0.5 * rng.normal(size=n_visible - 1)
    kinds = {"generic": ChainCouplings, "generic + delta_energy": ChainCouplingsWithDelta}
    chain = (kinds[generic]("x", J) if generic else
             pe.SparsePairwise("x", [(i, i + 1) for i in range(n_visible - 1)], value=J))
    return pe.EnergyModel({"x": n_visible, "h": n_hidden},
                          [pe.Bias("x", name="b"), pe.Bias("h", name="c"),
                           pe.Pairwise("h", "x", value=W), chain],
                          visible=["x"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sweeps and repeats")
    args = parser.parse_args(argv)
    n_sweeps, repeat = (5, 2) if args.quick else (50, 5)
    print(environment_report())
    load = OtherLoad()
    table = Table(f"Gibbs sweeps/s, RBM(64, 32) + a chain on x, {n_sweeps} sweeps, best of "
                  f"{repeat}", ["chains", "path", "time/sweep", "sweeps/s", "generic/compiled",
                               "target"])
    paths = (None, "generic", "generic + delta_energy")
    for n_chains in (1, 100):
        times = {}
        for path in paths:
            sampler = pe.GibbsSampler(build(64, 32, path), n_chains, schedule="sequential",
                                      rng=0, n_threads=1)
            t, _ = best_of(lambda: sampler.run(n_sweeps), repeat)
            times[path] = t / n_sweeps
        for path in paths:
            ratio = times[path] / times[None]
            table.add(n_chains, path or "compiled", fmt_time(times[path]),
                      f"{1 / times[path]:.3g}", f"{ratio:.1f}x" if path else None,
                      "<= 50x" if path else None)
    table.print()
    print(load.report())


if __name__ == "__main__":
    main()
