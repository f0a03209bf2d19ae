"""The one interface of the exact engines: a plan to sum out the free units of a flat graph.

Both engines (:class:`~pgm_energy.exact.enumeration.Enumeration`, Gray-code enumeration with
closed-form sums; :class:`~pgm_energy.exact.elimination.Elimination`, variable elimination)
work on the binary form of the flat graph (:class:`~pgm_energy.graph.BinaryForm`) with some
groups clamped,

    log sum_{x free} exp(const + sum_i f_i x_i + sum_e c_e x_i x_j),

and the clamped units folded into the fields: ``f = field + A x_clamped`` and
``const = const + x.field + x.A.x / 2`` (``A`` the symmetric coupling matrix). A plan is built
once per call from the graph alone (never from the model or the exact face, so that
``EnergyModel.free_energy`` can use it), and answers per clamped row.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from ..graph import FlatGraph

__all__ = ["Plan", "clamped_mask"]


def clamped_mask(graph: FlatGraph, groups: Sequence[str] | np.ndarray) -> np.ndarray:
    """The slots of ``groups``, a boolean mask of shape ``(graph.n_units,)`` (a boolean mask
    of held slots, as evidence gives, is returned as it is)."""
    if isinstance(groups, np.ndarray) and groups.dtype == bool:
        return groups
    mask = np.zeros(graph.n_units, bool)
    for g in groups:
        mask[graph.slots(g)] = True
    return mask


class Plan(ABC):
    """How one engine sums out the free units of a graph with some groups clamped.

    Parameters
    ----------
    graph : FlatGraph
        The model's flat graph, synced with its parameters.
    clamped_groups : sequence of str, or ndarray of bool
        Groups held at given values (the visible ones for the free energy; none for log Z),
        or a mask of the held slots ``(n_units,)`` (evidence; whole sites).
    beta : float
        Inverse temperature, already checked.
    n_threads : int
        OpenMP threads for the engine's kernels, already checked.

    Attributes
    ----------
    graph, beta, n_threads
        As given.
    n_units : int
        Slots of the flat graph (the width of every row ``x`` below).
    clamped : ndarray of bool, shape (n_units,)
        The slots of the clamped groups.
    form : BinaryForm
        The energy over bits, scaled by ``-beta``.
    """

    def __init__(self, graph: FlatGraph, clamped_groups: Sequence[str], beta: float,
                 n_threads: int):
        self.graph = graph
        self.beta = beta
        self.n_threads = n_threads
        self.n_units = graph.n_units
        self.form = graph.binary_form(beta)
        self.clamped = clamped_mask(graph, clamped_groups)
        self.clamped_groups = [] if clamped_groups is self.clamped else list(clamped_groups)
        self._adjacency = None
        #: Where independent pieces run (:class:`pgm_energy.distributed.Runner`), or None.
        self.runner = None

    def clamped_flat(self, state: dict) -> np.ndarray:
        """Rows of bits ``(batch, n_units)``: the clamped groups from ``state``, zeros elsewhere.

        ``state`` holds validated native values ``{group: (batch, n)}`` of the clamped groups
        (``EnergyModel.as_state``); ``{}`` gives the one row of a plan with nothing clamped.
        """
        flat = self.graph.encode(state, self.clamped_groups)
        return self.graph.to_bits(flat) * self.clamped

    def coupling_matrix(self):
        """The symmetric sparse matrix ``A`` of the binary-form couplings (built once)."""
        if self._adjacency is None:
            self._adjacency = self.graph.adjacency(self.form.coupling)
        return self._adjacency

    def conditioned(self, x: np.ndarray):
        """Fields ``f = field + A x`` of all units and constants ``const + x.field + x.A.x / 2``
        of the log weight, one per clamped row of ``x`` (binary form)."""
        if not self.clamped.any():          # nothing to fold in
            return (np.broadcast_to(self.form.field, x.shape),
                    np.full(len(x), float(self.form.const)))
        induced = (self.coupling_matrix() @ x.T).T
        const = self.form.const + x @ self.form.field + 0.5 * np.einsum("bi,bi->b", x, induced)
        return self.form.field + induced, const

    @abstractmethod
    def log_sum(self, x: np.ndarray) -> np.ndarray:
        """``log sum over the free units of exp(-beta E)`` for each clamped row of ``x``
        (rows of :meth:`clamped_flat`), shape ``(batch,)``."""

    @abstractmethod
    def mean_moments(self, x: np.ndarray):
        """Native moments ``(E[s_i], E[s_i s_j])`` over the free units given each clamped row
        of ``x``, averaged over the rows: shapes ``(n_units,)`` and ``(n_edges,)`` (a clamped
        unit's moment is its value)."""

    def mean_grads(self, x: np.ndarray) -> dict:
        """``E[dE/dtheta]`` for every parameter, averaged over the clamped rows of ``x``:
        :meth:`FlatGraph.grad_from_moments` of :meth:`mean_moments` (an engine that also
        serves terms outside the flat graph adds theirs)."""
        return self.graph.grad_from_moments(*self.mean_moments(x))

    def max_state(self, x: np.ndarray):
        """``(best, bits)``: for each clamped row of ``x``, the largest log weight over the
        free units, ``max_x (const + f.x + sum_e c_e x_i x_j)`` (``-beta`` times the lowest
        energy), shape ``(batch,)``, and the bits ``(batch, n_units)`` of a state reaching it
        (the clamped entries those of ``x``), the same one on every run."""
        raise NotImplementedError(f"{type(self).__name__} does not maximise")

    def sample(self, n_samples: int, rng: np.random.Generator, x: np.ndarray | None = None):
        """``n_samples`` exact independent samples of all units given the clamped row ``x``
        (a row of :meth:`clamped_flat`; default nothing clamped), native flat values
        ``(n_samples, n_units)``; engines that cannot draw raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} does not draw samples")
