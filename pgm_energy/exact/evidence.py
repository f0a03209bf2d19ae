"""Evidence for the exact functions: units held at observed values, NaN marking free ones.

Evidence is ``{group: values}``, each of shape ``(n,)`` (one row) or ``(batch, n)`` (one row
per query): native values (0/1, -1/+1, 0..k-1) where a unit is held, NaN where it is free;
groups left out are free. The same form reads data with missing entries (``X`` of
``log_likelihood`` and ``gradient``: NaN marks a missing value, summed over).

Rows are grouped by which units they hold (:meth:`Evidence.patterns`). Each pattern is one
plan of the exact engines with those units clamped: the held units leave the graph (their
couplings fold into the fields of their neighbours), so enumeration and elimination run over
the free units only, and the plan answers all rows of its pattern.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["Evidence", "read_evidence", "nothing_held", "combine"]


@dataclass(frozen=True)
class Evidence:
    """Held units of a batch of rows, in the binary form of the flat graph.

    Attributes
    ----------
    bits : ndarray, shape (batch, n_units)
        Bits of the held slots (``(value - low) / scale``; one-hot for categorical units),
        0 at free slots.
    held : ndarray of bool, shape (batch, n_units)
        The held slots (whole sites: a categorical unit is held or free as a whole).
    single : bool
        Given as one row (1-D arrays): the exact functions then drop the batch axis.
    """

    bits: np.ndarray
    held: np.ndarray
    single: bool

    @property
    def batch(self) -> int:
        return len(self.bits)

    def patterns(self):
        """``(held_mask, rows)`` for each distinct set of held slots, in the order of the
        first row that has it; ``rows`` are row indices."""
        if (self.held == self.held[0]).all():
            yield self.held[0], np.arange(self.batch)
            return
        unique, first, inverse = np.unique(self.held, axis=0, return_index=True,
                                           return_inverse=True)
        inverse = inverse.ravel()
        for u in np.argsort(first):
            yield unique[u], np.flatnonzero(inverse == u)


def nothing_held(graph) -> Evidence:
    """One row with every unit free (no evidence)."""
    return Evidence(np.zeros((1, graph.n_units)), np.zeros((1, graph.n_units), bool), True)


def read_evidence(model, values, groups: Sequence[str] | None = None,
                  what: str = "evidence") -> Evidence:
    """Validate ``values`` (see module docstring) and return them as :class:`Evidence`.

    ``groups``: the groups ``values`` must hold, all of them (``X``: the visible groups; a
    bare array is then accepted for one group); ``None`` (evidence): any of the model's
    groups. 1-D groups are one row, broadcast against 2-D ones. Refused with a
    ``ValueError`` naming the group, row and unit: a value outside the unit's domain, inf,
    a wrong shape, an unknown or missing group, batches that disagree.
    """
    if groups is not None and not isinstance(values, Mapping):
        if len(groups) != 1:
            raise TypeError(f"{what} must be a dict of group name to array covering "
                            f"{list(groups)}, got {type(values).__name__}")
        values = {groups[0]: values}
    if not isinstance(values, Mapping):
        raise TypeError(f"{what} must be a dict of group name to array (NaN marks a free "
                        f"unit), got {type(values).__name__}")
    unknown = sorted(set(values) - set(model.units))
    if unknown:
        raise ValueError(f"{what} has unknown groups {unknown}; the model's groups are "
                         f"{list(model.units)}")
    if groups is not None and set(groups) - set(values):
        raise ValueError(f"{what} is missing groups {sorted(set(groups) - set(values))} "
                         f"(needs {list(groups)}; NaN marks a missing value)")
    arrays = {g: _group_values(model.units[g], values[g], f"{what}[{g!r}]") for g in values}
    batches = {len(a) for a in arrays.values() if a.ndim == 2}
    if len(batches) > 1:
        raise ValueError(f"{what}: groups have different batch sizes {sorted(batches)}")
    single = not batches
    batch = batches.pop() if batches else 1
    graph = model.graph
    bits = np.zeros((batch, graph.n_units))
    held = np.zeros((batch, graph.n_units), bool)
    for g, arr in arrays.items():
        unit = model.units[g]
        rows = np.broadcast_to(np.atleast_2d(arr), (batch, unit.n))
        known = ~np.isnan(rows)
        slots = graph.slots(g)
        filled = np.where(known, rows, unit.fill_value)
        bits[:, slots] = (unit.encode(filled) - graph.low[slots]) / graph.scale[slots]
        held[:, slots] = np.repeat(known, unit.width // unit.n, axis=1)
    bits *= held
    return Evidence(bits, held, single)


def combine(graph, first: Evidence, second: Evidence, names=("X", "evidence")) -> Evidence:
    """The units held by either (rows broadcast: one row, or the same batch); a unit held by
    both is refused, naming its group and index in the flat ``graph``, since the query
    would then be empty or contradictory."""
    if first.batch != second.batch and 1 not in (first.batch, second.batch):
        raise ValueError(f"{names[0]} has {first.batch} rows and {names[1]} {second.batch}: "
                         "give one evidence row, or one per row")
    batch = max(first.batch, second.batch)
    held_a = np.broadcast_to(first.held, (batch, first.held.shape[1]))
    held_b = np.broadcast_to(second.held, (batch, second.held.shape[1]))
    both = held_a & held_b
    if both.any():
        row, slot = np.argwhere(both)[0]
        group = next(g for g in graph.units if graph.slots(g).start <= slot < graph.slots(g).stop)
        unit = graph.units[group]
        index = (slot - graph.offsets[group]) // (unit.width // unit.n)
        raise ValueError(f"{names[0]} and {names[1]} both hold unit {index} of group "
                         f"{group!r} (row {row}): give each unit in one of them (NaN in "
                         f"{names[0]} where {names[1]} holds it)")
    return Evidence(first.bits + second.bits, held_a | held_b,
                    first.single and second.single)


def _group_values(unit, values, what) -> np.ndarray:
    """One group's values as float64 ``(n,)`` or ``(batch, n)``, NaN free, others checked."""
    arr = np.asarray(values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{what} must be a numeric array (NaN marks a free unit), got dtype "
                        f"{arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != unit.n or (arr.ndim == 2 and not len(arr)):
        raise ValueError(f"{what} must have shape ({unit.n},) or (batch, {unit.n}) with "
                         f"batch >= 1, got {arr.shape}")
    rows = np.atleast_2d(arr)
    bad = ~np.isnan(rows) & ~unit.in_domain(rows)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{what}: unit {col} of row {row} is {float(rows[row, col])!r}, but "
                         f"{unit.kind} units take {unit.domain} (NaN marks a free unit)")
    return arr
