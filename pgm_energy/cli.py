"""The ``pgm-energy`` command line: ``demo`` (and later ``verify``, ``bench``)."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main", "bars_and_stripes"]


def bars_and_stripes(side: int) -> np.ndarray:
    """All bars-and-stripes images of ``side x side`` pixels, flattened, without duplicates.

    There are ``2^(side+1) - 2`` of them (the all-off and all-on images appear once).
    """
    rows = ((np.arange(2**side)[:, None] >> np.arange(side)) & 1).astype(float)
    bars = np.repeat(rows[:, :, None], side, axis=2).reshape(len(rows), -1)
    stripes = np.repeat(rows[:, None, :], side, axis=1).reshape(len(rows), -1)
    return np.unique(np.concatenate([bars, stripes]), axis=0)


def demo(args) -> int:
    """Fit an RBM to bars-and-stripes by exact gradient ascent; print exact log Z and log P."""
    import pgm_energy as pe

    data = bars_and_stripes(args.side)
    model = pe.RBM(data.shape[1], args.hidden, rng=args.seed)
    print(f"bars-and-stripes {args.side}x{args.side}: {len(data)} patterns; "
          f"RBM({data.shape[1]}, {args.hidden}); optimum mean log P = "
          f"-log {len(data)} = {-np.log(len(data)):.4f}")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        grad = pe.exact.gradient(model, data)
        for name, g in grad.items():
            model.params[name] += args.lr * g
        if epoch % max(1, args.epochs // 10) == 0 or epoch == args.epochs:
            print(f"  epoch {epoch:4d}  exact mean log P = "
                  f"{pe.exact.log_likelihood(model, data).mean():.4f}")
    print(f"exact log Z = {pe.exact.log_partition(model):.6f}  "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pgm-energy", description="Energy-based models with exact oracles.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small RBM and print exact answers")
    p.add_argument("--side", type=int, default=3, choices=range(2, 5),
                   help="image side of bars-and-stripes (default 3)")
    p.add_argument("--hidden", type=int, default=8, help="hidden units (default 8)")
    p.add_argument("--epochs", type=int, default=2000, help="gradient steps (default 2000)")
    p.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=demo)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.hidden < 1 or not args.lr > 0:
        parser.error("--epochs and --hidden must be >= 1 and --lr > 0")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
