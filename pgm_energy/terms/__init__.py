"""Energy terms: one module per family, all written against the ``Term`` protocol."""
from .base import FactorCoupling, LinearCoupling, Term
from .interaction import Interaction
from .linear import Bias, Lateral, Pairwise, SparsePairwise

__all__ = ["Term", "LinearCoupling", "FactorCoupling", "Bias", "Pairwise", "Lateral", "SparsePairwise",
           "Interaction"]
