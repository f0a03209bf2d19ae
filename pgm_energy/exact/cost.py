"""The cost model: which engine computes an exact answer, and when to refuse.

Both costs are known before any state is visited or table built:

* enumeration (:class:`~pgm_energy.exact.enumeration.Enumeration`) visits ``2^log2_states``
  states of the ``m`` enumerated units, each costing about ``1 + m + |A|`` unit operations
  (``|A|`` units summed in closed form); it is refused beyond ``max_states`` states;
* elimination (:class:`~pgm_energy.exact.elimination.Elimination`) reads
  :attr:`~pgm_energy.exact.elimination.Cost.operations` table entries (``_ENTRY_COST`` each)
  in one contraction per free unit (``_STEP_OVERHEAD`` each, its setup in the compiled
  sweep); it is refused when its largest table exceeds ``max_table`` entries, or, for a
  backward sweep (marginals, moments, samples) that keeps every table, when all tables
  together exceed ``BACKWARD_STORE * max_table``.

``method="auto"`` builds both (no state is visited yet) and keeps the cheaper, holding
elimination to ``max_states`` table entries as well; ``"enumerate"`` and ``"eliminate"``
force one. Costs are compared, and counts of states formatted, in log2 space, so a model of
thousands of units is refused by enumeration (and eliminated) rather than overflowing. Each
refusal says the cost and what can work instead.
"""
from __future__ import annotations

import math
from typing import Sequence

from .._checks import check_beta, int_at_least, n_threads as check_n_threads
from ..distributed import as_runner
from ..graph import FlatGraph
from .continuous import Continuous
from .elimination import DEFAULT_MAX_TABLE, Elimination
from .enumeration import Enumeration
from .plan import Plan
from .slicing import slice_elimination

__all__ = ["make_plan", "METHODS", "DEFAULT_MAX_STATES", "BACKWARD_STORE"]

#: Values of ``method=``: pick by estimated cost, or force one engine.
METHODS = ("auto", "enumerate", "eliminate")
#: Default cap on enumerated states (after the closed-form sums); ``max_states=`` overrides.
DEFAULT_MAX_STATES = 2**32
#: The backward sweep (marginals, moments, samples) keeps every table: it is refused when
#: their entries add up to more than this many times the table cap.
BACKWARD_STORE = 4
_MAX_LOG2_STATES = 62     # the enumeration kernel counts states in int64
_MAX_GENERIC_BITS = 24    # users' terms: their energy is tabulated over at most 2^24 states
# Elimination cost in units of one enumerated state-unit (each about 2-5 ns here): a table
# entry read costs about as much, a contraction step about 10^3 (its setup in the compiled
# sweep), measured on dense Boltzmann machines, grids, chains and RBMs.
_ENTRY_COST = 1.0
_STEP_OVERHEAD = 1_000


def make_plan(graph: FlatGraph, clamped_groups: Sequence[str], beta: float = 1.0, *,
              method: str = "auto", max_states: int = DEFAULT_MAX_STATES,
              max_table: int = DEFAULT_MAX_TABLE, n_threads: int | None = None,
              backward: bool = False, what: str = "log Z", executor=None) -> Plan:
    """The engine's :class:`~pgm_energy.exact.plan.Plan` for summing out the free units of
    ``graph`` with ``clamped_groups`` held, or a ``ValueError`` saying why none can.

    ``method``, ``max_states``, ``max_table``, ``n_threads``, ``executor``: as for
    :func:`pgm_energy.exact.log_partition`; ``backward``: whether marginals or moments will be
    read (elimination then keeps every table); ``what``: what the caller computes, for the
    refusal messages.
    """
    options = (method, max_states, max_table, n_threads, backward, what, executor)
    if graph.continuous.any():
        return Continuous(graph, clamped_groups, check_beta(beta), check_n_threads(n_threads),
                          inner=lambda reduced, mask: _discrete_plan(reduced, mask, beta,
                                                                     *options),
                          max_states=max_states, what=what)
    return _discrete_plan(graph, clamped_groups, beta, *options)


def _discrete_plan(graph, clamped_groups, beta, method, max_states, max_table, n_threads,
                   backward, what, executor) -> Plan:
    """The plan of the engines, with every continuous slot held (or none in the graph)."""
    plan = _make_plan(graph, clamped_groups, beta, method, max_states, max_table, n_threads,
                      backward, what)
    plan.runner = as_runner(executor)
    if plan.runner is not None and isinstance(plan, Elimination):
        return slice_elimination(plan, plan.runner, entry_cost=_ENTRY_COST,
                                 step_overhead=_STEP_OVERHEAD)
    return plan


def _make_plan(graph, clamped_groups, beta, method, max_states, max_table, n_threads,
               backward, what) -> Plan:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    beta = check_beta(beta)
    graph.check_energy_scale(beta, what)
    n_threads = check_n_threads(n_threads)
    if method == "enumerate" or (method == "auto" and graph.generic_terms):
        return _enumeration(graph, clamped_groups, beta, n_threads, max_states)
    max_table = int_at_least(max_table, 2, "max_table")
    options = dict(backward=backward, what=what)
    if method == "eliminate":
        return _elimination(graph, clamped_groups, beta, n_threads, max_table, "max_table",
                            **options)
    enumeration_error = None
    try:
        enumeration = _enumeration(graph, clamped_groups, beta, n_threads, max_states)
    except ValueError as exc:
        enumeration, enumeration_error = None, exc
    cap, limit_name = ((int(max_states), "max_states") if max_table > max_states
                       else (max_table, "max_table"))
    try:
        elimination = _elimination(graph, clamped_groups, beta, n_threads, cap, limit_name,
                                   **options)
    except ValueError as exc:
        if enumeration is None:
            raise ValueError(f"{enumeration_error}; and {exc}") from exc
        return enumeration
    if enumeration is None:
        return elimination
    log2_enumeration = enumeration.log2_operations
    log2_elimination = _log2(_ENTRY_COST * elimination.cost.operations
                             + _STEP_OVERHEAD * len(elimination.plan.free_sites))
    return elimination if log2_elimination < log2_enumeration else enumeration


def _enumeration(graph, clamped_groups, beta, n_threads, max_states) -> Enumeration:
    engine = Enumeration(graph, clamped_groups, beta, n_threads)
    if engine.n_generic_codes > 2.0 ** _MAX_GENERIC_BITS:
        raise ValueError(
            f"exact computation tabulates the energy of user terms over the states of the "
            f"{len(engine.generic_radix)} free units they read ({engine.n_generic_codes:.3g} "
            f"entries), more than 2^{_MAX_GENERIC_BITS}; give the term a compile() method, or "
            "estimate log Z with pe.ais.log_partition")
    log2_states = engine.log2_states
    if log2_states > _MAX_LOG2_STATES or 2.0 ** log2_states > max_states:
        sizes = [int(b - a) for a, b in zip(engine.s_site_ptr[:-1], engine.s_site_ptr[1:])]
        count = f"2^{engine.m_b}" + "".join(f" x {k}^{sizes.count(k)}"
                                            for k in sorted(set(sizes)))
        n_closed = len(set(graph.site[engine.A].tolist()))
        raise ValueError(
            f"exact computation would enumerate {count} = {_power_of_two(log2_states)} states "
            f"(after summing {n_closed} conditionally independent units in closed form), more "
            f"than max_states={max_states}; estimate log Z with pe.ais.log_partition instead, "
            "or raise max_states= if you can wait (with executor= the pieces of the "
            "enumeration run on many workers: see pgm_energy.distributed)")
    return engine


def _elimination(graph, clamped_groups, beta, n_threads, max_table, limit_name, *, backward,
                 what) -> Elimination:
    graph.require_compiled("variable elimination (method='eliminate')")
    engine = Elimination(graph, clamped_groups, beta, n_threads, max_table=max_table)
    cost, width = engine.cost, engine.plan.width
    if cost.largest_table > max_table:
        held = (f"a largest table of {cost.largest_table:.3g} entries (the product of the "
                f"states of {width + 1} units)")
    elif backward and cost.stored_entries > BACKWARD_STORE * max_table:
        held = (f"{cost.stored_entries:.3g} table entries kept for the backward sweep (more "
                f"than {BACKWARD_STORE} x max_table)")
    else:
        return engine
    raise ValueError(
        f"exact elimination for {what} would need {held}: the best elimination order found "
        f"has treewidth {width} over {len(engine.plan.free_sites)} free units, more than "
        f"{limit_name}={max_table}; estimate log Z with pe.ais.log_partition instead, or raise "
        f"{limit_name}= if you have the memory")


def _power_of_two(log2: float) -> str:
    """``2^log2`` for a message, without overflow: ``1.23e+45``, or ``10^1234`` beyond floats."""
    if log2 < 1000:
        return f"{2.0 ** log2:.3g}"
    return f"10^{log2 * math.log10(2):.0f}"


def _log2(x: float) -> float:
    return math.log2(x) if x > 0 else -math.inf
