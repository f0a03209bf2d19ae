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

``evidence={group: values}`` (NaN marks a free unit, :mod:`~pgm_energy.exact.evidence`)
conditions every query: the held units are clamped, so the engines sum over the free units
only; a batch of evidence rows gives one result per row.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from .._checks import nonnegative_int
from ..graph import FlatGraph
from .cost import DEFAULT_MAX_STATES, METHODS, make_plan
from .elimination import DEFAULT_MAX_TABLE, order_cost
from .evidence import Evidence, combine, nothing_held, read_evidence

if TYPE_CHECKING:                  # the engines and this face never import the model module:
    from ..model import EnergyModel  # EnergyModel.free_energy imports them

__all__ = ["log_partition", "log_likelihood", "expectations", "gradient", "marginals",
           "sample", "map_state", "treewidth", "DEFAULT_MAX_STATES", "DEFAULT_MAX_TABLE",
           "METHODS"]


def log_partition(model: EnergyModel, beta: float = 1.0, *, evidence=None,
                  method: str = "auto", max_states: int = DEFAULT_MAX_STATES,
                  max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None,
                  executor=None):
    """Exact ``log Z = log sum_s exp(-beta E(s))`` over all joint states.

    With ``evidence``, ``log Z_e = log sum_{s agreeing with e} exp(-beta E(s))`` (so
    ``log P(e) = log Z_e - log Z``): a float for one evidence row, shape ``(batch,)`` for a
    batch.

    Parameters
    ----------
    model : EnergyModel
    beta : float
        Inverse temperature (> 0).
    evidence : dict, optional
        ``{group: values}``, values ``(n,)`` or ``(batch, n)`` in the units' domain, NaN
        where a unit is free; groups left out are free.
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
    executor : concurrent.futures.Executor or pgm_energy.distributed.Runner, optional
        Runs the pieces of a large enumeration (each about a second of work) on its
        workers, with the same result (:mod:`pgm_energy.distributed`: a dask Client's
        ``get_executor()`` for a cluster, checkpoints, progress); a large elimination is
        sliced over the values of a few of its units (:mod:`pgm_energy.exact.slicing`).

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
    >>> end = pe.exact.log_partition(grid, evidence={"s": np.r_[1.0, [np.nan] * 99]})
    >>> bool(abs(end - 99 * np.log(2 * np.cosh(0.4))) < 1e-10)     # s_0 = +1 held
    True
    """
    held = _evidence(model, evidence)
    options = _options(method, max_states, max_table, n_threads, executor)
    out = _per_pattern(model, held, beta, options, lambda plan, rows: plan.log_sum(rows))
    return float(out[0]) if held.single else out


def log_likelihood(model: EnergyModel, X, *, evidence=None, beta: float = 1.0,
                   method: str = "auto", max_states: int = DEFAULT_MAX_STATES,
                   max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None,
                   executor=None):
    """Exact ``log P(x) = -F(x) - log Z`` for each sample, shape ``(batch,)``.

    ``X`` is an array when the model has one visible group, else a dict of visible groups;
    it must hold at least one row. NaN in ``X`` marks a missing value: ``log P`` is then
    that of the observed entries, the missing ones summed over. With ``evidence`` (units not
    given in ``X``, see :func:`log_partition`; one row, or one per row of ``X``):
    ``log P(x | e) = log Z_{x, e} - log Z_e``. ``method``, ``max_states``, ``max_table``,
    ``n_threads``, ``executor``: as for :func:`log_partition`.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> model = pe.RBM(2, 1, W=np.zeros((1, 2)))
    >>> pe.exact.log_likelihood(model, [[1.0, np.nan]]) / np.log(0.5)   # one unit observed
    array([1.])
    """
    data = _data(model, X)
    options = _options(method, max_states, max_table, n_threads, executor)
    given = None if evidence is None else _evidence(model, evidence)
    held = data if given is None else combine(model.graph, data, given)
    log_sums = _per_pattern(model, held, beta, options, lambda plan, rows: plan.log_sum(rows),
                            what="the free energy")
    if given is None:
        return log_sums - log_partition(model, beta, **options)
    return log_sums - np.broadcast_to(
        _per_pattern(model, given, beta, options, lambda plan, rows: plan.log_sum(rows)),
        log_sums.shape)


def expectations(model: EnergyModel, *, evidence=None, beta: float = 1.0,
                 method: str = "auto", max_states: int = DEFAULT_MAX_STATES,
                 max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None,
                 executor=None) -> dict:
    """``E_model[dE/dtheta]`` for every parameter, a dict shaped like ``model.params``.

    With ``evidence`` (see :func:`log_partition`), ``E[dE/dtheta | e]``; for a batch of
    evidence rows each array gains a leading batch axis. ``method``, ``max_states``,
    ``max_table``, ``n_threads``, ``executor``: as for :func:`log_partition` (elimination
    gets every moment from one forward and one backward sweep).
    """
    held = _evidence(model, evidence)
    options = _options(method, max_states, max_table, n_threads, executor)
    if held.single:
        plan = make_plan(_graph(model), held.held[0], beta, backward=True,
                         what="expectations", **options)
        return plan.mean_grads(held.bits)
    return _per_pattern(model, held, beta, options, _row_grads, backward=True,
                        what="expectations")


def gradient(model: EnergyModel, X, *, beta: float = 1.0, method: str = "auto",
             max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
             n_threads: int | None = None, executor=None) -> dict:
    """``d mean log P(X) / d theta = beta (E_model[dE/dtheta] - mean_x E_{h|x}[dE/dtheta])``.

    Entry by entry, shaped like ``model.params`` (for laterals: symmetric, zero diagonal).
    ``X`` as for :func:`log_likelihood`: with missing values (NaN), the data side averages
    ``E[dE/dtheta | observed entries]``, the gradient of the log-likelihood of the observed
    entries. ``method``, ``max_states``, ``max_table``, ``n_threads``, ``executor``: as for
    :func:`log_partition`.
    """
    data = _data(model, X)
    options = _options(method, max_states, max_table, n_threads, executor)
    model_side = expectations(model, beta=beta, **options)
    data_side = {k: np.zeros_like(v) for k, v in model_side.items()}
    for mask, rows in data.patterns():
        plan = make_plan(_graph(model), mask, beta, backward=True,
                         what="the data side of the gradient", **options)
        for k, v in plan.mean_grads(data.bits[rows]).items():
            data_side[k] += v * (len(rows) / data.batch)
    return {k: beta * (model_side[k] - data_side[k]) for k in model_side}


def marginals(model: EnergyModel, *, evidence=None, beta: float = 1.0, pairwise: bool = False,
              method: str = "auto", max_states: int = DEFAULT_MAX_STATES,
              max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None,
              executor=None):
    """Exact single-unit marginals: ``{group: P(unit on)}`` (on = 1, or +1 for spins;
    ``(n, k)`` value probabilities for categorical units).

    With ``pairwise=True``, returns ``(singles, edges, pair_moments)``: the dict above, the
    coupled pairs of the flat graph (``model.graph.edges``: flat unit indices ``i < j``,
    group ``g`` starting at ``model.graph.offsets[g]``) and ``E[s_i s_j]`` for each, in
    native values (spins +-1). With ``evidence`` (see :func:`log_partition`), the
    conditional marginals given it, held units at their evidence value; a batch of evidence
    rows adds a leading batch axis to every array (``P(label | image)`` of a batch of images
    in one call). ``method``, ``max_states``, ``max_table``, ``n_threads``, ``executor``: as
    for :func:`log_partition`; elimination gets all of them from one forward and one backward
    sweep.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> chain = pe.Ising([(0, 1), (1, 2)], couplings=0.5)
    >>> singles, edges, pairs = pe.exact.marginals(chain, pairwise=True, method="eliminate")
    >>> bool(abs(pairs[0] - np.tanh(0.5)) < 1e-12)
    True
    """
    held = _evidence(model, evidence)
    graph = _graph(model)
    continuous = graph.continuous.any()

    def answer(plan, rows):
        moments = plan.moments_with_squares if continuous else plan.mean_moments
        per_row = [moments(rows[r:r + 1]) for r in range(len(rows))]
        return tuple(np.stack(m) for m in zip(*per_row))

    m_unit, m_pair, *squares = _per_pattern(
        model, held, beta, _options(method, max_states, max_table, n_threads, executor),
        answer, backward=True, what="marginals")
    p_on = graph.to_bits(m_unit)
    if continuous:          # (mean, variance) of each continuous unit
        p_on = np.where(graph.continuous, np.stack([m_unit, squares[0] - m_unit ** 2]), p_on)
    lead = () if held.single else (held.batch,)
    if held.single:
        p_on, m_pair = p_on[..., 0, :], m_pair[0]
    singles = {g: _single(p_on, graph.slots(g), u, lead) for g, u in model.units.items()}
    return (singles, graph.edges.copy(), m_pair) if pairwise else singles


def _single(p_on, slots, unit, lead):
    """One group's marginals: ``(*lead, n, 2)`` mean and variance of continuous units (from
    the stacked ``(2, *lead, n_units)``), else ``(*lead, *feature_shape)``."""
    if unit.continuous:
        return np.moveaxis(p_on[..., slots], 0, -1).reshape(lead + (unit.n, 2))
    if p_on.ndim > len(lead) + 1:
        p_on = p_on[0]
    return p_on[..., slots].reshape(lead + unit.feature_shape)


def sample(model: EnergyModel, n_samples: int, *, evidence=None, rng=None, beta: float = 1.0,
           max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None) -> dict:
    """Exact independent samples of all units, ``{group: (n_samples, n)}`` in native values.

    Backward sampling through variable elimination: after the forward sweep, units are drawn
    in reverse elimination order from ``P(s_v | units eliminated after v)``, which the tables
    of ``v``'s bucket give exactly. One uniform per free unit and sample, drawn at once as
    ``rng.random((n_samples, n_free))`` (column ``k`` for the ``k``-th unit drawn). With
    ``evidence`` (see :func:`log_partition`), samples of ``P(s | e)`` with the held units at
    their values; a batch of evidence rows gives ``{group: (batch, n_samples, n)}``, the rows
    drawn in order from one generator. Refused like :func:`marginals` (the sweep keeps all
    tables) beyond ``max_table``.

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
    held = _evidence(model, evidence)
    drawn = np.empty((held.batch, n_samples, graph.n_units))
    for mask, rows in held.patterns():
        plan = make_plan(graph, mask, beta, method="eliminate", max_table=max_table,
                         n_threads=n_threads, backward=True, what="samples")
        for r in rows:
            drawn[r] = plan.sample(n_samples, gen, held.bits[r])
    if held.single:
        return graph.decode(drawn[0])
    return {g: v.reshape(held.batch, n_samples, -1)
            for g, v in graph.decode(drawn.reshape(-1, graph.n_units)).items()}


def map_state(model: EnergyModel, evidence=None, *, method: str = "auto",
              max_states: int = DEFAULT_MAX_STATES, max_table: int = DEFAULT_MAX_TABLE,
              n_threads: int | None = None, executor=None):
    """A lowest-energy state, exact: ``argmin_s E(s)`` (given ``evidence``, over the states
    agreeing with it), and its energy.

    Enumeration keeps the best state of its walk, with the conditionally independent units
    at their best values given it (``x_a = [f_a > 0]``, the largest field of a categorical
    unit); elimination runs the forward sweep in ``(max, +)`` and back-tracks the argmax in
    reverse elimination order. Ties are broken the same way on every run (the first state
    reached; a unit with no preference off, or at its lowest value). ``method``,
    ``max_states``, ``max_table``, ``n_threads``: as for :func:`log_partition`.

    Returns
    -------
    state : dict
        ``{group: (n,)}`` native values, held units included; ``(batch, n)`` for a batch of
        evidence rows.
    energy : float or ndarray
        ``E(state)`` (``model.energy``), shape ``(batch,)`` for a batch.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> chain = pe.Ising([(0, 1), (1, 2)], couplings=[1.0, -1.0], fields=[0.5, 0.0, 0.0])
    >>> state, energy = pe.exact.map_state(chain)
    >>> state["s"], float(energy)
    (array([ 1.,  1., -1.]), -2.5)
    """
    held = _evidence(model, evidence)
    options = _options(method, max_states, max_table, n_threads, executor)
    bits = _per_pattern(model, held, 1.0, options, lambda plan, rows: plan.max_state(rows)[1],
                        what="the MAP state")
    graph = _graph(model)
    state = graph.decode(graph.from_bits(bits))
    energy = model.energy(state)
    if held.single:
        return {g: v[0] for g, v in state.items()}, float(energy[0])
    return state, energy


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


def _data(model, X) -> Evidence:
    """``X`` as the held visible units of each row (NaN: missing), refusing no rows."""
    for rows in (X.values() if isinstance(X, Mapping) else [X]):
        if np.ndim(rows) == 2 and len(rows) == 0:
            raise ValueError("X has no rows: the likelihood and its gradient need at least "
                             "one sample")
    data = read_evidence(model, X, model.visible, what="X")
    return Evidence(data.bits, data.held, single=False)


def _evidence(model, evidence) -> Evidence:
    """``evidence`` read for ``model`` (checked to be a model); None: nothing held."""
    graph = _graph(model)
    return nothing_held(graph) if evidence is None else read_evidence(model, evidence)


def _options(method, max_states, max_table, n_threads, executor) -> dict:
    return dict(method=method, max_states=max_states, max_table=max_table,
                n_threads=n_threads, executor=executor)


def _per_pattern(model, held: Evidence, beta, options, answer, *, backward=False,
                 what="log Z"):
    """``answer(plan, rows)`` for the rows of each pattern of held units (one plan each,
    :func:`~pgm_energy.exact.cost.make_plan`), put back in row order: an array with a
    leading batch axis, or a tuple or dict of them (as ``answer`` returns)."""
    graph = _graph(model)
    out = None
    for mask, rows in held.patterns():
        plan = make_plan(graph, mask, beta, backward=backward, what=what, **options)
        part = answer(plan, held.bits[rows])
        if len(rows) == held.batch:
            return part
        if out is None:
            out = _like(part, held.batch)
        _scatter(out, part, rows)
    return out


def _like(part, batch):
    if isinstance(part, dict):
        return {k: _like(v, batch) for k, v in part.items()}
    if isinstance(part, tuple):
        return tuple(_like(v, batch) for v in part)
    return np.empty((batch,) + np.shape(part)[1:])


def _scatter(out, part, rows):
    if isinstance(part, dict):
        for k in part:
            _scatter(out[k], part[k], rows)
    elif isinstance(part, tuple):
        for o, p in zip(out, part):
            _scatter(o, p, rows)
    else:
        out[rows] = part


def _row_grads(plan, rows) -> dict:
    """``E[dE/dtheta | row]`` for each row, stacked: ``{param: (len(rows), *shape)}``."""
    grads = [plan.mean_grads(rows[r:r + 1]) for r in range(len(rows))]
    return {k: np.stack([g[k] for g in grads]) for k in grads[0]}

