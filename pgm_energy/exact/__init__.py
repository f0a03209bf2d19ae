"""Exact computation for small models: log Z, likelihood, expectations, gradient, marginals.

Everything here reduces to one operation on the flat graph: the log of the sum of
``exp(-beta E)`` over the free units while some units are clamped (none for ``log Z``, the
visible ones for the free energy), and the moments of the free units under that weighting.
Two engines do it behind one interface (:class:`~pgm_energy.exact.plan.Plan`):

* :mod:`~pgm_energy.exact.enumeration`: free units that are conditionally independent given
  the other free units are summed in closed form (``softplus`` in the binary form); the rest
  are enumerated by the Gray-code kernel in ``_exact.pyx``, in pieces that run on threads and
  combine exactly;
* :mod:`~pgm_energy.exact.elimination`: variable elimination, for models of small treewidth
  (lattices, chains, trees, sparse graphs of hundreds of units).

``method="auto"`` estimates both costs before any work (enumerated states, or table entries
read by the contractions) and runs the cheaper (:mod:`~pgm_energy.exact.cost`);
``"enumerate"`` and ``"eliminate"`` force one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._checks import nonnegative_int
from ..graph import FlatGraph
from .cost import DEFAULT_MAX_STATES, METHODS, make_plan
from .elimination import DEFAULT_MAX_TABLE, order_cost

if TYPE_CHECKING:                  # the engines and this face never import the model module:
    from ..model import EnergyModel  # EnergyModel.free_energy imports them

__all__ = ["log_partition", "log_likelihood", "expectations", "gradient", "marginals",
           "sample", "treewidth", "DEFAULT_MAX_STATES", "DEFAULT_MAX_TABLE", "METHODS"]


def log_partition(model: EnergyModel, beta: float = 1.0, *, method: str = "auto",
                  max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
                  n_threads: int | None = None) -> float:
    """Exact ``log Z = log sum_s exp(-beta E(s))`` over all joint states.

    Parameters
    ----------
    model : EnergyModel
    beta : float
        Inverse temperature (> 0).
    method : {"auto", "enumerate", "eliminate"}
        ``"auto"`` runs whichever of enumeration and variable elimination is estimated to be
        cheaper (see :mod:`pgm_energy.exact.cost` for the cost model).
    max_states : int
        Refuse (``ValueError``) if more states than this would be enumerated after the
        closed-form sums; use ``pe.ais.log_partition`` for an estimate instead. Under
        ``"auto"`` it also caps the entries of an elimination table.
    max_table : int
        Refuse elimination when its largest table would have more entries than this
        (default ``2^27``, 1 GiB of float64); the message names the treewidth found.
    n_threads : int, optional
        Threads for large enumerations and contractions (default: all cores; at most
        ``max(32, 4 x cores)``, a ``ValueError`` beyond). The result does not depend on it.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> model = pe.RBM(3, 2, W=np.zeros((2, 3)))
    >>> bool(abs(pe.exact.log_partition(model) - 5 * np.log(2)) < 1e-12)
    True
    >>> grid = pe.Ising([(i, i + 1) for i in range(99)], couplings=0.4)  # 100 spins
    >>> bool(abs(pe.exact.log_partition(grid) - (np.log(2) + 99 * np.log(2 * np.cosh(0.4))))
    ...      < 1e-10)
    True
    """
    plan = _plan(model, (), beta, method, max_states, max_table, n_threads)
    return float(plan.log_sum(plan.clamped_flat({}))[0])


def log_likelihood(model: EnergyModel, X, *, beta: float = 1.0, method: str = "auto",
                   max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
                   n_threads: int | None = None):
    """Exact ``log P(x) = -F(x) - log Z`` for each sample, shape ``(batch,)``.

    ``X`` is an array when the model has one visible group, else a dict of visible groups;
    it must hold at least one row. ``method``, ``max_states``, ``max_table``, ``n_threads``:
    as for :func:`log_partition`.
    """
    data = _data(model, X)
    log_z = log_partition(model, beta, method=method, max_states=max_states,
                          max_table=max_table, n_threads=n_threads)
    plan = _plan(model, model.visible, beta, method, max_states, max_table, n_threads,
                 what="the free energy")
    return plan.log_sum(plan.clamped_flat(data)) - log_z


def expectations(model: EnergyModel, *, beta: float = 1.0, method: str = "auto",
                 max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
                 n_threads: int | None = None) -> dict:
    """``E_model[dE/dtheta]`` for every parameter, a dict shaped like ``model.params``.

    ``method``, ``max_states``, ``max_table``, ``n_threads``: as for :func:`log_partition`
    (elimination gets every moment from one forward and one backward sweep).
    """
    plan = _plan(model, (), beta, method, max_states, max_table, n_threads,
                 backward=True, what="expectations")
    return plan.mean_grads(plan.clamped_flat({}))


def gradient(model: EnergyModel, X, *, beta: float = 1.0, method: str = "auto",
             max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
             n_threads: int | None = None) -> dict:
    """``d mean log P(X) / d theta = beta (E_model[dE/dtheta] - mean_x E_{h|x}[dE/dtheta])``.

    Entry by entry, shaped like ``model.params`` (for laterals: symmetric, zero diagonal).
    ``X`` as for :func:`log_likelihood`; ``method``, ``max_states``, ``max_table``,
    ``n_threads``: as for :func:`log_partition`.
    """
    data = _data(model, X)
    model_side = expectations(model, beta=beta, method=method, max_states=max_states,
                              max_table=max_table, n_threads=n_threads)
    plan = _plan(model, model.visible, beta, method, max_states, max_table, n_threads,
                 backward=True, what="the data side of the gradient")
    data_side = plan.mean_grads(plan.clamped_flat(data))
    return {k: beta * (model_side[k] - data_side[k]) for k in model_side}


def marginals(model: EnergyModel, *, beta: float = 1.0, pairwise: bool = False,
              method: str = "auto", max_states: int = DEFAULT_MAX_STATES,
              max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None):
    """Exact single-unit marginals: ``{group: P(unit on)}`` (on = 1, or +1 for spins).

    With ``pairwise=True``, returns ``(singles, edges, pair_moments)``: the dict above, the
    coupled pairs of the flat graph (``model.graph.edges``: flat unit indices ``i < j``,
    group ``g`` starting at ``model.graph.offsets[g]``) and ``E[s_i s_j]`` for each, in
    native values (spins +-1). ``method``, ``max_states``, ``max_table``, ``n_threads``: as
    for :func:`log_partition`; elimination gets all of them from one forward and one
    backward sweep.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> chain = pe.Ising([(0, 1), (1, 2)], couplings=0.5)
    >>> singles, edges, pairs = pe.exact.marginals(chain, pairwise=True, method="eliminate")
    >>> bool(abs(pairs[0] - np.tanh(0.5)) < 1e-12)
    True
    """
    plan = _plan(model, (), beta, method, max_states, max_table, n_threads,
                 backward=True, what="marginals")
    m_unit, m_pair = plan.mean_moments(plan.clamped_flat({}))
    p_on = plan.graph.to_bits(m_unit)
    singles = {g: p_on[plan.graph.slots(g)].reshape(u.feature_shape)
               for g, u in model.units.items()}
    return (singles, plan.graph.edges.copy(), m_pair) if pairwise else singles


def sample(model: EnergyModel, n_samples: int, *, rng=None, beta: float = 1.0,
           max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None) -> dict:
    """Exact independent samples of all units, ``{group: (n_samples, n)}`` in native values.

    Backward sampling through variable elimination: after the forward sweep, units are drawn
    in reverse elimination order from ``P(s_v | units eliminated after v)``, which the tables
    of ``v``'s bucket give exactly. One uniform per unit and sample, drawn at once as
    ``rng.random((n_samples, n_units))`` (column ``k`` for the ``k``-th unit drawn). Refused
    like :func:`marginals` (the sweep keeps all tables) beyond ``max_table``.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> ring = pe.Ising([(0, 1), (1, 2), (2, 0)], couplings=0.5)
    >>> pe.exact.sample(ring, 4, rng=0)["s"].shape
    (4, 3)
    """
    n_samples = nonnegative_int(n_samples, "n_samples")
    gen = np.random.default_rng(rng)
    graph = _graph(model)
    if graph.generic_terms:
        raise ValueError("pe.exact.sample draws through variable elimination, which sums "
                         "units coupled by compiled pairwise terms; for a model with "
                         "pe.Interaction or terms of your own, "
                         "use pe.GibbsSampler (pe.testing.check_sampler checks it against "
                         "the exact distribution)")
    plan = make_plan(graph, (), beta, method="eliminate", max_table=max_table,
                     n_threads=n_threads, backward=True, what="samples")
    return graph.decode(plan.sample(n_samples, gen))


def treewidth(model: EnergyModel) -> int:
    """Width of the elimination order the engine would use for ``log Z``.

    The most neighbours a unit has when it is summed out (an upper bound of the graph's
    treewidth; the largest table spans ``width + 1`` units), over the pairwise couplings:
    product factors (``pe.Interaction``, users' factor terms) are not counted, since
    elimination does not take such models. Computed without building a table, so it also
    answers for models that elimination refuses.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> pe.exact.treewidth(pe.Ising([(i, i + 1) for i in range(9)]))
    1
    """
    graph = _graph(model)
    return order_cost(graph.n_units, graph.edges, site_start=graph.site_start).width


def _graph(model) -> FlatGraph:
    """The flat graph of ``model`` (parameters checked, synced); ``TypeError`` for anything
    but an EnergyModel (recognised by its graph: this face does not import the model)."""
    graph = getattr(model, "graph", None)
    if not isinstance(graph, FlatGraph):
        raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
    return graph


def _data(model, X) -> dict:
    """``X`` as validated visible groups, refusing an ``X`` with no rows."""
    data = model.as_state(X, model.visible, what="X")
    if any(len(rows) == 0 for rows in data.values()):
        raise ValueError("X has no rows: the likelihood and its gradient need at least one "
                         "sample")
    return data


def _plan(model, clamped_groups, beta, method, max_states, max_table, n_threads, *,
          backward=False, what="log Z"):
    """The plan :func:`~pgm_energy.exact.cost.make_plan` picks for ``model``'s graph."""
    return make_plan(_graph(model), clamped_groups, beta, method=method,
                     max_states=max_states, max_table=max_table, n_threads=n_threads,
                     backward=backward, what=what)

