"""pgm_energy: energy-based probabilistic models with compiled samplers and exact oracles.

A model is a sum of pluggable energy terms over groups of units::

    P(s) = exp(-beta E(s)) / Z

with ``E(x, h) = -b.x - c.h - h^T W x - x^T U x - h^T V h`` for the classic Boltzmann
machine; the conventions are on the documentation's "The mathematics" page (docs/maths.md).
"""
import os as _os

# The kernels' OpenMP threads and OpenBLAS's own threads take turns on the same cores; with
# OpenMP's default busy-waiting they fight for them. Sleep instead, unless the user chose.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import ais, diagnostics, distributed, exact, variational  # noqa: E402
from . import io
from .io import load
from .learning import (CD, PCD, PT, SGD, Adam, ExactGradient, History, TrainingDiverged,
                       fit)
from .model import EnergyModel
from .presets import DBM, RBM, BoltzmannMachine, Ising
from .sampling import GibbsSampler
from .cluster import ClusterSampler
from .tempering import ParallelTempering
from .annealing import AnnealResult, anneal
from .terms import (Bias, FactorCoupling, Interaction, Lateral, LinearCoupling, Pairwise,
                    SparsePairwise, Term)
from .units import Binary, Categorical, DReLU, Gaussian, ReLU, Spin
from . import plotting  # noqa: E402  (matplotlib itself is imported on first use)

__version__ = "0.1.0"

__all__ = [
    "Binary", "Spin", "Categorical", "Gaussian", "ReLU", "DReLU",
    "Term", "LinearCoupling", "FactorCoupling", "Bias", "Pairwise", "Lateral", "SparsePairwise", "Interaction",
    "EnergyModel", "RBM", "BoltzmannMachine", "Ising", "DBM",
    "GibbsSampler", "ClusterSampler", "ParallelTempering", "anneal", "AnnealResult",
    "CD", "PCD", "PT", "ExactGradient", "SGD", "Adam", "fit", "History", "TrainingDiverged",
    "ais", "diagnostics", "distributed", "exact", "variational", "io", "load", "plotting",
]


def __getattr__(name: str):
    """``pe.testing`` is imported on first use: it needs the optional hypothesis (an
    ``ImportError`` naming ``pip install "pgm_energy[test]"`` when missing)."""
    if name == "testing":
        import importlib

        return importlib.import_module(".testing", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"testing"})
