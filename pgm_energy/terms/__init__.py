"""Energy terms: one module per family, all written against the ``Term`` protocol."""
from .base import FactorCoupling, LinearCoupling, Term, TermParams
from .interaction import Interaction
from .linear import Bias, Lateral, Pairwise, SparsePairwise

__all__ = ["Term", "TermParams", "LinearCoupling", "FactorCoupling", "Bias", "Pairwise",
           "Lateral", "SparsePairwise", "Interaction"]
