"""The ``pgm-energy`` command line: ``demo``, ``verify`` and ``bench``.

Errors in the arguments or the files named (a value out of range, a file that is not a
model, a model too large for the checks asked) end the command with one message on stderr
and exit status 2; a failed check of ``verify`` gives status 1.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "bars_and_stripes"]


def bars_and_stripes(side: int) -> np.ndarray:
    """All bars-and-stripes images of ``side x side`` pixels, flattened, without duplicates.

    Every image has whole rows on or off (bars) or whole columns on or off (stripes); there
    are ``2^(side+1) - 2`` of them (the all-off and all-on images appear once).
    """
    rows = ((np.arange(2**side)[:, None] >> np.arange(side)) & 1).astype(float)
    bars = np.repeat(rows[:, :, None], side, axis=2).reshape(len(rows), -1)
    stripes = np.repeat(rows[:, None, :], side, axis=1).reshape(len(rows), -1)
    return np.unique(np.concatenate([bars, stripes]), axis=0)


# -- demo ------------------------------------------------------------------------------------
def demo(args) -> int:
    """Train an RBM on bars-and-stripes with PCD; print exact and AIS answers; write figures."""
    import pgm_energy as pe
    from pgm_energy import learning

    data = bars_and_stripes(args.side)
    n_visible = data.shape[1]
    model = pe.RBM(n_visible, args.hidden, rng=args.seed)
    optimum = -np.log(len(data))
    print(f"bars-and-stripes {args.side}x{args.side}: {len(data)} patterns; RBM({n_visible}, "
          f"{args.hidden}) trained by PCD-5 for {args.epochs} epochs")
    start = time.perf_counter()
    try:
        history = pe.fit(model, data, pe.PCD(n_chains=100, k=5),
                         pe.SGD(lr=learning.exponential_decay(args.lr, 0.99), momentum=0.9),
                         epochs=args.epochs, batch_size=2, rng=args.seed, verbose=1,
                         callbacks=[learning.ExactLogLikelihood(data)])
    except pe.TrainingDiverged as exc:
        print(f"pgm-energy demo: {exc}", file=sys.stderr)
        return 2
    trained = time.perf_counter() - start
    log_lik = history["exact_log_likelihood"][-1]
    log_z = pe.exact.log_partition(model)
    estimate = pe.ais.log_partition(model, n_betas=10000, n_runs=100, rng=args.seed)
    print(f"trained in {trained:.1f} s")
    print(f"mean exact log-likelihood  {log_lik:9.4f}   (optimum -log {len(data)} = "
          f"{optimum:.4f})")
    print(f"exact log Z                {log_z:9.4f}")
    print(f"AIS estimate of log Z      {estimate.log_z:9.4f} +- {estimate.stderr:.4f} "
          f"(10000 temperatures, 100 runs; off by {estimate.log_z - log_z:+.4f})")
    if args.out:
        written = _demo_figures(model, data, history, args)
        print("figures: " + ", ".join(written))
    if args.save:
        model.save(args.save)
        print(f"model saved to {_npz_name(args.save)} (pgm-energy verify or pe.load read it)")
    return 0


def _npz_name(path: str) -> str:
    """The name ``model.save(path)`` writes: ``.npz`` added unless the name ends in it."""
    return path if path.endswith(".npz") else path + ".npz"


def _demo_figures(model, data, history, args):
    import pgm_energy as pe

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shape = (args.side, args.side)
    samples = pe.exact.sample(model, len(data), rng=args.seed)["x"]
    figures = {
        "filters.png": pe.plotting.plot_filters(model, shape),
        "samples.png": pe.plotting.plot_samples(samples, shape, data=data),
        "training.png": pe.plotting.plot_history(history),
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=100)
    return [str(out / name) for name in figures]


# -- verify ----------------------------------------------------------------------------------
#: Most unit updates (``n_betas * n_runs * units``) and chain values (``n_runs * units``)
#: ``verify`` runs AIS with: minutes of work, about a gigabyte of chains.
_AIS_MAX_UPDATES = 10**11
_AIS_MAX_VALUES = 10**8


def verify(args) -> int:
    """Check a saved model against exact answers (AIS when too large); print a report."""
    import pgm_energy as pe

    for name in args.imports:
        error = _import_user_module(name)
        if error:
            print(f"pgm-energy verify: cannot import {name}: {error}", file=sys.stderr)
            return 2
    try:
        model = pe.load(args.model)
    except (OSError, ValueError) as exc:
        hint = "" if args.imports else " (a model with your own terms? pass --import MODULE)"
        print(f"pgm-energy verify: cannot read {args.model}: {exc}"
              + (hint if "unknown term class" in str(exc) else ""), file=sys.stderr)
        return 2
    try:
        model.check_params()
    except ValueError as exc:
        print(f"pgm-energy verify: cannot verify {args.model}: {exc}", file=sys.stderr)
        return 2
    n_units = sum(u.n for u in model.units.values())
    if (args.n_betas * args.n_runs * n_units > _AIS_MAX_UPDATES
            or args.n_runs * n_units > _AIS_MAX_VALUES):
        print(f"pgm-energy verify: AIS with --n-betas {args.n_betas} and --n-runs {args.n_runs} "
              f"on {n_units} units would make {args.n_betas * args.n_runs * n_units:.3g} unit "
              f"updates on {args.n_runs * n_units:.3g} chain values (at most "
              f"{_AIS_MAX_UPDATES:.0e} and {_AIS_MAX_VALUES:.0e}); lower them",
              file=sys.stderr)
        return 2
    print(f"model {args.model}: {n_units} units in groups "
          + ", ".join(f"{g} ({u!r})" for g, u in model.units.items())
          + f"; terms {', '.join(type(t).__name__ for t in model.terms)}; "
          f"visible {model.visible}")
    checks = []
    try:
        log_z = pe.exact.log_partition(model)
        print(f"exact log Z = {log_z:.6f} (treewidth {pe.exact.treewidth(model)})")
    except (ValueError, OverflowError, MemoryError) as exc:   # too large: AIS only
        log_z = None
        print(f"exact log Z: refused ({type(exc).__name__}: {exc}); AIS only")
    try:
        estimate = pe.ais.log_partition(model, n_betas=args.n_betas, n_runs=args.n_runs, rng=0)
    except ValueError as exc:
        print(f"pgm-energy verify: AIS refused {args.model}: {exc}", file=sys.stderr)
        return 2
    print(f"AIS log Z = {estimate.log_z:.6f} +- {estimate.stderr:.6f} (ESS {estimate.ess:.1f})")
    if log_z is not None:
        error = abs(estimate.log_z - log_z)
        checks.append(("AIS agrees with exact log Z (within 4 stderr + 0.05)",
                       error <= 4 * estimate.stderr + 0.05))
        log2_states = sum(model.units[g].n * math.log2(len(model.units[g].values))
                          for g in model.visible)
        if log2_states <= 16:
            from itertools import product

            values = [v for g in model.visible for v in [model.units[g].values] * model.units[g].n]
            rows = np.array(list(product(*values)), dtype=float)
            split = np.cumsum([model.units[g].n for g in model.visible])[:-1]
            X = dict(zip(model.visible, np.split(rows, split, axis=1)))
            total = np.exp(pe.exact.log_likelihood(model, X)).sum()
            checks.append((f"sum over all visible states of P(x) = {total:.12f}",
                           abs(total - 1) < 1e-8))
        marginals = pe.exact.marginals(model)
        sampler = pe.GibbsSampler(model, n_chains=2000, rng=0)
        state = sampler.run(200).state
        worst = 0.0
        for g, p in marginals.items():
            unit = model.units[g]          # frequency of "on", or of each categorical value
            on = (state[g] == unit.values[-1]).mean(axis=0) if unit.width == unit.n else (
                unit.encode(state[g]).reshape(-1, unit.n, unit.k).mean(axis=0))
            stderr = np.sqrt(np.maximum(p * (1 - p), 1e-12) / 2000)
            worst = max(worst, float(np.max(np.abs(on - p) / stderr)))
        checks.append((f"Gibbs single-unit frequencies vs exact marginals: worst {worst:.1f} "
                       "standard errors (<= 5)", worst <= 5))
    for text, ok in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


# -- bench -----------------------------------------------------------------------------------
def bench(args) -> int:
    """Run every ``benchmarks/bench_*.py`` (quick mode unless --full) and show their tables.

    The scripts live in the source repository (they are not installed): run this from a
    checkout, or pass ``--dir``. They measure the pgm_energy this command runs, the installed
    one (an in-place build when run as ``python -m pgm_energy.cli`` from a checkout).
    """
    import pgm_energy

    directory = Path(args.dir) if args.dir else Path.cwd() / "benchmarks"
    scripts = sorted(directory.glob("bench_*.py"))
    if not scripts:
        print(f"pgm-energy bench: no benchmarks/bench_*.py under {directory}; run it from the "
              "repository root or pass --dir", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE",
                                                              "OPENBLAS_L2_SIZE")}
    root = Path(pgm_energy.__file__).resolve().parent.parent
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if root not in installed:     # not in site-packages: let the scripts find the same copy
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    print(f"pgm_energy {pgm_energy.__version__} from {root / 'pgm_energy'}", flush=True)
    status = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        command = [sys.executable, str(script)] + ([] if args.full else ["--quick"])
        status |= subprocess.run(command, env=env).returncode
    return 1 if status else 0


def _import_user_module(name: str) -> str | None:
    """Import module ``name`` (the current folder on the path, as for ``python -m``), so
    the ``pe.Term`` subclasses it defines register; the error text, or None."""
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        importlib.import_module(name)
    except Exception as exc:     # a user's module may raise anything while importing
        return f"{type(exc).__name__}: {exc}"
    finally:
        if added:
            sys.path.remove(here)
    return None


def _seed(text: str) -> int:
    """argparse type: a seed, an int >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def main(argv=None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="pgm-energy",
        description="Energy-based models with compiled samplers and exact oracles.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train an RBM on bars-and-stripes; print exact and AIS "
                                    "answers; write figures",
                       description=demo.__doc__)
    p.add_argument("--out", default="pgm_energy_demo", help="folder for the figures "
                   "(default ./pgm_energy_demo; '' to skip)")
    p.add_argument("--side", type=int, default=4, choices=range(2, 5),
                   help="image side of bars-and-stripes (default 4)")
    p.add_argument("--hidden", type=int, default=32, help="hidden units (default 32)")
    p.add_argument("--epochs", type=int, default=400, help="passes over the data (default 400)")
    p.add_argument("--lr", type=float, default=0.05, help="initial learning rate (default 0.05)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, >= 0 (default 0)")
    p.add_argument("--save", help="also write the trained model there (.npz added unless "
                   "the name ends in it; read it back with pe.load or pgm-energy verify)")
    p.set_defaults(run=demo)

    p = sub.add_parser("verify", help="check a saved model against exact answers",
                       description=verify.__doc__)
    p.add_argument("model", help="a model file written by model.save")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (repeatable), so the pe.Term subclasses it defines "
                        "are known: needed for models with your own terms. The current "
                        "folder is on the path (a file ./MODULE.py is found)")
    p.add_argument("--n-betas", type=int, default=1000, help="AIS temperatures (default 1000)")
    p.add_argument("--n-runs", type=int, default=100, help="AIS runs (default 100)")
    p.set_defaults(run=verify)

    p = sub.add_parser("bench", help="run the benchmarks (from a checkout) and print their "
                                     "tables", description=bench.__doc__)
    p.add_argument("--full", action="store_true", help="full sizes (default: --quick runs)")
    p.add_argument("--dir", help="the benchmarks folder (default ./benchmarks)")
    p.set_defaults(run=bench)

    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.epochs < 1 or args.hidden < 1:
            parser.error(f"--epochs and --hidden must be >= 1, got {args.epochs} and "
                         f"{args.hidden}")
        if not (math.isfinite(args.lr) and args.lr > 0):
            parser.error(f"--lr must be a finite number > 0, got {args.lr}")
        if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
            parser.error(f"--out {args.out} is a file; the figures need a folder")
        if args.save is not None:
            target = Path(_npz_name(args.save))
            if not args.save or target.is_dir():
                parser.error(f"--save {args.save!r}: {target} is a folder; give a file name")
            made = args.out and target.parent.resolve() == Path(args.out).resolve()
            if not (target.parent.is_dir() or made):      # the demo makes the --out folder
                parser.error(f"--save {args.save}: its folder does not exist")
    if args.command == "verify" and (args.n_betas < 2 or args.n_runs < 1):
        parser.error(f"--n-betas must be >= 2 and --n-runs >= 1, got {args.n_betas} and "
                     f"{args.n_runs}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
