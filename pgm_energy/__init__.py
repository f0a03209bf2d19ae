"""pgm_energy: energy-based probabilistic models with compiled samplers and exact oracles.

A model is a sum of pluggable energy terms over groups of units::

    P(s) = exp(-beta E(s)) / Z

See ``DESIGN.md`` for the conventions (``E(x, h) = -b.x - c.h - h^T W x - x^T U x - h^T V h``).
"""
from . import exact
from .model import RBM, BoltzmannMachine, EnergyModel, Ising
from .terms import Bias, Lateral, Pairwise, SparsePairwise, Term
from .units import Binary, Spin

__version__ = "0.1.0"

__all__ = [
    "Binary", "Spin",
    "Term", "Bias", "Pairwise", "Lateral", "SparsePairwise",
    "EnergyModel", "RBM", "BoltzmannMachine", "Ising",
    "exact",
]
