"""Mean-field inference: the fixed point of the factorised posterior over the hidden units,
and the variational lower bound on ``log P(x)`` it gives (Salakhutdinov & Hinton 2009).

For a pairwise model (biases and couplings only, as a deep Boltzmann machine) with the visible
units held at ``x``, a fully factorised ``q(h) = prod_j q_j(h_j)`` bounds the log-likelihood
from below (Jensen's inequality on ``log sum_h``):

    log P(x) >= -E_q[E(x, h)] + H(q) - log Z  =  -E(x, mu) + H(q) - log Z,

with ``mu = E_q[h]`` (the energy is linear in each unit, so its mean under a factorised ``q``
is the energy of the means) and ``H(q)`` the sum of the units' entropies. The gap is
``KL(q || P(h | x))``. The bound is largest (locally) at a fixed point of

    mu_j = E[h_j | field f_j(x, mu)]     (sigmoid(f_j) for a binary unit),

which :func:`mean_field` reaches by block coordinate ascent: the hidden units are split into
colour classes of the unit graph (units of a class share no coupling: for a DBM, the odd and
the even hidden layers), and each class is updated in turn from the current means of the
others. Undamped, every block update maximises the bound over that block, so the bound never
decreases and the iteration converges; ``damping`` in [0, 1) mixes the previous means in
(``mu <- damping * mu + (1 - damping) * update``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import xlogy

from ._checks import nonnegative_float, positive_float, positive_int
from .model import EnergyModel

__all__ = ["MeanFieldResult", "mean_field", "log_likelihood_bound", "check_mean_field",
           "Blocks", "fixed_point"]


class MeanFieldResult(NamedTuple):
    """What :func:`mean_field` returns.

    Attributes
    ----------
    means : dict
        Group -> ``(batch, n)`` expected values: the data for the visible groups, ``mu`` for
        the hidden ones.
    n_iter : int
        Sweeps over the hidden colour classes made.
    converged : bool
        Whether the largest change of a mean in the last sweep fell below ``tol``.
    """
    means: dict
    n_iter: int
    converged: bool


def check_mean_field(tol, max_iter, damping) -> tuple[float, int, float]:
    """The mean-field settings checked: ``tol`` finite and > 0, ``max_iter`` an int >= 1,
    ``damping`` in [0, 1) (a fixed point cannot be reached otherwise)."""
    tol = positive_float(tol, "tol")
    max_iter = positive_int(max_iter, "max_iter")
    damping = nonnegative_float(damping, "damping")
    if damping >= 1:
        raise ValueError(f"damping must be in [0, 1) (1 never moves the means), got {damping!r}")
    return tol, max_iter, damping


def _require_pairwise(graph, what):
    graph.require_discrete(what)
    if graph.generic_terms or len(graph.factor_members):
        raise TypeError(f"{what} needs a model of biases and pairwise couplings only (its "
                        "energy then is linear in each unit); this model has higher-order or "
                        "user terms: use the clamped Gibbs positive phase or the exact "
                        "functions")


class Blocks:
    """The hidden colour classes of a graph (units of a class share no coupling) and how to
    read their rows of the coupling matrix from the live couplings: a dense matrix over the
    class's neighbours, filled from ``graph.coupling``, where at least a tenth of it is
    non-zero (one BLAS product per update), else a sparse row slice. Built once per model
    structure; :meth:`couplings` reads the current values."""

    def __init__(self, graph, hidden: np.ndarray):
        colour = graph.colouring(hidden)[hidden]
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        self.hidden = _index(hidden)
        self.blocks = []
        for c in np.unique(colour):
            slots = hidden[colour == c]
            pos = np.full(graph.n_units, -1)
            pos[slots] = np.arange(len(slots))
            at_i, at_j = np.flatnonzero(pos[i] >= 0), np.flatnonzero(pos[j] >= 0)
            rows = np.concatenate([pos[i[at_i]], pos[j[at_j]]])
            ends = np.concatenate([j[at_i], i[at_j]])
            cols = np.unique(ends)
            fill = None
            if len(rows) > 0.1 * len(slots) * max(len(cols), 1):
                fill = (rows, np.searchsorted(cols, ends), np.concatenate([at_i, at_j]),
                        (len(slots), len(cols)))
            else:
                cols = np.arange(graph.n_units)
            group = [g for g in graph.units
                     if graph.slots(g).start <= slots[0] and slots[-1] < graph.slots(g).stop]
            one_group = group and len(slots) == graph.slots(group[0]).stop - slots[0] \
                and slots[0] == graph.slots(group[0]).start
            mean = (graph.units[group[0]].mean if one_group
                    else lambda field, slots=slots: graph.unit_mean(field, slots))
            self.blocks.append((slots, _index(slots), _index(cols), fill, mean))

    def couplings(self, graph):
        """``(slots, index, cols, matrix, mean)`` per class: ``s[cols] @ matrix.T`` is the
        coupling part of the class's fields, ``mean(field)`` the units' means (``index``,
        ``cols``: slices where contiguous)."""
        for slots, index, cols, fill, mean in self.blocks:
            if fill is None:
                matrix = graph.adjacency()[slots]
            else:
                matrix = np.zeros(fill[3])
                matrix[fill[0], fill[1]] = graph.coupling[fill[2]]
            yield slots, index, cols, matrix, mean


def _index(slots: np.ndarray):
    """``slots`` as a slice when they are contiguous (views instead of copies)."""
    if len(slots) and np.array_equal(slots, np.arange(slots[0], slots[0] + len(slots))):
        return slice(int(slots[0]), int(slots[0]) + len(slots))
    return slots


def fixed_point(graph, rows: np.ndarray, blocks: Blocks, tol: float, max_iter: int,
                damping: float) -> tuple[np.ndarray, int, bool]:
    """The mean-field fixed point on flat rows (modified in place and returned): ``rows``
    hold the visible slots' values; the slots of ``blocks`` are replaced by their means.
    Returns ``(rows, n_iter, converged)``; the settings are those of :func:`mean_field`,
    checked."""
    hidden = blocks.hidden
    couplings = list(blocks.couplings(graph))
    # Start from the means given the visible units alone (the hidden ones at zero).
    rows[:, hidden] = 0.0
    start = [mean(graph.field[slots] + rows[:, cols] @ matrix.T)
             for slots, _, cols, matrix, mean in couplings]
    for (_, index, *_), value in zip(couplings, start):
        rows[:, index] = value
    n_iter, change = 0, np.inf
    while n_iter < max_iter and not change < tol:
        change = 0.0
        for slots, index, cols, matrix, mean in couplings:
            new = mean(graph.field[slots] + rows[:, cols] @ matrix.T)
            if damping:
                new = damping * rows[:, index] + (1.0 - damping) * new
            change = max(change, float(np.max(np.abs(new - rows[:, index]), initial=0.0)))
            rows[:, index] = new
        n_iter += 1
    return rows, n_iter, bool(change < tol)


def mean_field(model: EnergyModel, X, *, tol: float = 1e-6, max_iter: int = 100,
               damping: float = 0.0) -> MeanFieldResult:
    """The mean-field posterior over the hidden units given the visible data ``X``.

    Iterates ``mu_j <- damping * mu_j + (1 - damping) * E[h_j | f_j(x, mu)]`` over the colour
    classes of the hidden units in turn (the module docstring), from the means given ``x``
    alone, until the largest change of a mean in a sweep is below ``tol`` or ``max_iter``
    sweeps are done.

    Parameters
    ----------
    model : EnergyModel
        A model of biases and pairwise couplings (any unit kinds).
    X : array or dict
        Visible data, ``(batch, n)`` per visible group.
    tol : float
        Convergence tolerance on the largest change of a mean in one sweep (> 0).
    max_iter : int
        Most sweeps (>= 1).
    damping : float
        Weight in [0, 1) of the previous means in each update (0: plain coordinate ascent,
        which already converges).

    Returns
    -------
    MeanFieldResult

    Raises
    ------
    TypeError
        The model has higher-order or user terms.
    ValueError
        ``tol <= 0``, ``max_iter < 1``, ``damping`` outside [0, 1), or ``X`` not fitting.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> dbm = pe.DBM([4, 3, 2], rng=0)
    >>> result = pe.variational.mean_field(dbm, np.ones((1, 4)))
    >>> result.converged, result.means["h2"].shape
    (True, (1, 2))
    """
    tol, max_iter, damping = check_mean_field(tol, max_iter, damping)
    graph = model.graph
    _require_pairwise(graph, "mean_field")
    rows = graph.encode(model.as_state(X, model.visible, what="X"))
    blocks = Blocks(graph, _hidden_slots(model))
    rows, n_iter, converged = fixed_point(graph, rows, blocks, tol, max_iter, damping)
    return MeanFieldResult(graph.decode(rows), n_iter, converged)


def log_likelihood_bound(model: EnergyModel, X, log_z: float, *, tol: float = 1e-6,
                         max_iter: int = 100, damping: float = 0.0) -> np.ndarray:
    """Mean-field lower bound on ``log P(x)`` per row of ``X``:

        -E(x, mu) + H(q_mu) - log_z,

    ``q_mu`` the mean-field posterior of :func:`mean_field`. With the exact ``log_z``
    (``pe.exact.log_partition``) this is a true lower bound on the exact log-likelihood (the
    gap is ``KL(q || P(h | x))``). With an AIS estimate (``pe.ais.log_partition(...).log_z``)
    it is the standard DBM evaluation (Salakhutdinov & Hinton 2009): AIS tends to
    underestimate ``log Z`` (its ``Z`` estimate is unbiased, so ``log`` of it is biased low
    by Jensen), which moves the estimated bound up, so it is a bound only up to the error of
    ``log_z``.

    Parameters
    ----------
    model : EnergyModel
        A model of biases and pairwise couplings.
    X : array or dict
        Visible data, ``(batch, n)`` per visible group.
    log_z : float
        ``log Z`` of the model (exact or estimated).
    tol, max_iter, damping
        As for :func:`mean_field`.

    Returns
    -------
    numpy.ndarray
        Shape ``(batch,)``.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> dbm = pe.DBM([4, 3, 2], rng=0)
    >>> x = np.array([[1.0, 0.0, 1.0, 1.0]])
    >>> bound = pe.variational.log_likelihood_bound(dbm, x, pe.exact.log_partition(dbm))
    >>> bool(bound[0] <= pe.exact.log_likelihood(dbm, x)[0])
    True
    """
    log_z = float(log_z)
    if not np.isfinite(log_z):
        raise ValueError(f"log_z must be finite, got {log_z!r}")
    result = mean_field(model, X, tol=tol, max_iter=max_iter, damping=damping)
    graph = model.graph
    rows = graph.encode(result.means)
    i, j = graph.edges[:, 0], graph.edges[:, 1]
    energy = -(rows @ graph.field + (rows[:, i] * rows[:, j]) @ graph.coupling)
    return -energy + _entropy(graph, rows, _hidden_slots(model)) - log_z


def _hidden_slots(model) -> np.ndarray:
    graph = model.graph
    visible = np.zeros(graph.n_units, bool)
    for g in model.visible:
        visible[graph.slots(g)] = True
    return np.flatnonzero(~visible)


def _entropy(graph, rows, slots) -> np.ndarray:
    """Entropy of independent units with means ``rows[:, slots]``: ``-sum_v p_v log p_v`` per
    unit, ``p`` the probability of the high value (two-valued) or of each value (categorical)."""
    cat = graph.categorical[slots]
    two = slots[~cat]
    p = (rows[:, two] - graph.low[two]) / graph.scale[two]
    h = -(xlogy(p, p) + xlogy(1.0 - p, 1.0 - p)).sum(axis=1)
    return h - xlogy(rows[:, slots[cat]], rows[:, slots[cat]]).sum(axis=1)
