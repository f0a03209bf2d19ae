"""Energy terms: one module per family, all written against the ``Term`` protocol."""
from .base import LinearCoupling, Term
from .interaction import Interaction
from .linear import Bias, Lateral, Pairwise, SparsePairwise

__all__ = ["Term", "LinearCoupling", "Bias", "Pairwise", "Lateral", "SparsePairwise",
           "Interaction"]
