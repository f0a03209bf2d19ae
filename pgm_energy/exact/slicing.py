"""Slicing an elimination into pieces for an executor (cutset conditioning).

Variable elimination is one sweep of contractions, not a set of independent pieces. To
spread a large one over workers, ``k`` binary units of its largest tables (the *slice units*)
are held at each of their ``2^k`` joint values in turn: each value is an elimination with
those units clamped (smaller tables), and the values combine exactly,

    log Z = log sum_c Z_c,      E[f] = sum_c (Z_c / Z) E_c[f],      max = max_c max_c,

with ``Z_c`` the sum over the states whose slice units are ``c``. Each piece is a block of
values, run on the workers (:mod:`pgm_energy.distributed`) by an elimination plan the worker
builds once from the graph. Slicing pays when the largest tables dominate the cost: it is
used with the most slice units (up to one value per wanted piece) for which the pieces,
together, cost at most ``_MAX_EXTRA`` times the plain elimination.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .._checks import n_threads as check_n_threads
from .elimination import Elimination, order_cost
from .plan import Plan

__all__ = ["slice_elimination", "Sliced"]

_MAX_BITS = 12            # slice units, at most (4096 values)
_MAX_EXTRA = 4.0          # total work of the pieces over that of the plain elimination
_SECONDS_PER_OPERATION = 3e-9


def slice_elimination(plan: Elimination, runner, *, entry_cost: float, step_overhead: float):
    """``plan`` sliced into pieces of about ``runner.piece_seconds`` (a :class:`Sliced`), or
    ``plan`` itself when it is small or slicing does not pay (see module docstring).

    ``entry_cost``, ``step_overhead``: the cost model's (:mod:`pgm_energy.exact.cost`).
    """
    def seconds(cost, n_free):
        return (entry_cost * cost.operations + step_overhead * n_free) * _SECONDS_PER_OPERATION

    free = ~plan.clamped
    total = seconds(plan.cost, len(plan.plan.free_sites))
    wanted = total / runner.piece_seconds
    if wanted < 2 or (free & plan.graph.categorical).any():    # order_cost counts bits
        return plan
    candidates = _slice_candidates(plan, free)
    best = 0
    for k in range(1, min(int(np.ceil(np.log2(wanted))), _MAX_BITS, len(candidates)) + 1):
        inner_free = ~plan.clamped.copy()
        inner_free[candidates[:k]] = False
        inner = order_cost(plan.n_units, plan.graph.edges, inner_free,
                           max_table=plan.max_table)
        if 2 ** k * seconds(inner, int(inner_free.sum())) <= _MAX_EXTRA * total:
            best = k
    if not best:
        return plan
    return Sliced(plan, candidates[:best], runner, int(np.ceil(wanted)))


def _slice_candidates(plan, free):
    """Free binary units in the scopes of the plan's steps, the largest tables first."""
    steps, graph = plan.plan.steps, plan.graph
    order = sorted(range(len(steps)), key=lambda s: -len(steps[s].scope))
    out = []
    for s in order:
        for site in steps[s].scope:
            slot = int(graph.site_start[site])
            if graph.site_size[site] == 1 and free[slot] and slot not in out:
                out.append(slot)
    return np.array(out, np.int64)


class Sliced(Plan):
    """An elimination plan over the values of its slice units, run on a runner.

    Parameters
    ----------
    base : Elimination
        The plan being sliced (its clamped units stay clamped).
    units : ndarray of int
        The slice units (free binary slots).
    runner : pgm_energy.distributed.Runner
    n_pieces : int
        Pieces per row of the plan (each a block of slice values).
    """

    def __init__(self, base: Elimination, units: np.ndarray, runner, n_pieces: int):
        super().__init__(base.graph, base.clamped, base.beta, base.n_threads)
        self.runner = runner
        self.units = units
        self.inner_clamped = base.clamped.copy()
        self.inner_clamped[units] = True
        self.max_table = base.max_table
        self.n_pieces = n_pieces
        #: Every joint value of the slice units, one row each (unit ``units[i]`` is bit i
        #: of the row number).
        self.values = (np.arange(2 ** len(units))[:, None] >> np.arange(len(units))) & 1

    def _expanded(self, x):
        """Each row of ``x`` repeated for every value of the slice units, those set."""
        rows = np.repeat(x, len(self.values), axis=0)
        rows[:, self.units] = np.tile(self.values, (len(x), 1))
        return rows

    def _run(self, x, what):
        """``what`` ("log_sum", "moments", "max") of the inner plan for every expanded row,
        in pieces of blocks of slice values on the runner, in row order."""
        rows = self._expanded(x)
        n_pieces = min(len(rows), self.n_pieces * len(x))
        bounds = np.linspace(0, len(rows), n_pieces + 1).round().astype(int)
        pieces = [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        shared = (self.graph, self.inner_clamped, self.beta, self.max_table,
                  self.runner.n_threads, what)
        parts = self.runner.map(_slice_task, shared, pieces, what="sliced elimination")
        return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]

    def log_sum(self, x) -> np.ndarray:
        (log_sums,) = self._run(x, "log_sum")
        return logsumexp(log_sums.reshape(len(x), -1), axis=1)

    def mean_moments(self, x):
        log_sums, m_unit, m_pair = self._run(x, "moments")
        weights = np.exp(log_sums.reshape(len(x), -1)
                         - logsumexp(log_sums.reshape(len(x), -1), axis=1, keepdims=True))
        weights = weights.reshape(-1, 1) / len(x)
        return (weights * m_unit).sum(axis=0), (weights * m_pair).sum(axis=0)

    def max_state(self, x):
        best, bits = self._run(x, "max")
        best = best.reshape(len(x), -1)
        first = np.argmax(best, axis=1)             # the first slice value reaching the max
        chosen = np.arange(len(x)) * len(self.values) + first
        return best[np.arange(len(x)), first], bits[chosen]


def _slice_task(shared, rows):
    """One piece: the inner elimination (units and slice units clamped) for ``rows``."""
    graph, clamped, beta, max_table, n_threads, what = shared
    inner = Elimination(graph, clamped, beta, check_n_threads(n_threads), max_table=max_table)
    if what == "log_sum":
        return (inner.log_sum(rows),)
    if what == "max":
        return inner.max_state(rows)
    moments = [inner.mean_moments(row[None]) for row in rows]
    return (inner.log_sum(rows), np.array([m[0] for m in moments]),
            np.array([m[1] for m in moments]))
