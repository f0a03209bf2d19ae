"""EnergyModel: unit groups plus a sum of energy terms (the presets are in ``presets.py``)."""
from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Iterator, Sequence

import numpy as np

from . import _format
from ._checks import check_beta
from .exact.cost import make_plan
from .graph import FlatGraph
from .terms import Term
from .units import UnitGroup, as_unit_group

__all__ = ["EnergyModel"]

_REBUILD = ("build a new model instead, e.g. pe.EnergyModel(model.units, [*model.terms, term], "
            "visible=model.visible); parameter values are written in place: "
            "model.params[name][...] = value")


class Terms(list):
    """A model's terms: a list that refuses changes.

    The model compiles its terms once (``model.graph``), so adding, removing or replacing one
    afterwards would leave the exact functions and samplers on the old structure. Reading,
    iterating and ``model.terms + [term]`` (a new plain list) work as for any list.
    """

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"model.terms cannot change once the model is built; {_REBUILD}")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self):
        return type(self), (list(self),)


class Params(MutableMapping):
    """The model's parameters by name: live arrays owned by the terms, and by continuous
    unit groups built with ``learn=True`` (``"<group>.<name>"``, e.g. ``"x.log_sigma"``).

    ``params[name]`` is the term's own array, so writing into it changes the model;
    ``params[name] = value`` copies ``value`` into that array (same shape required). The
    arrays themselves never change (see ``pe.terms.TermParams``): a parameter of another shape
    needs a new model.
    """

    def __init__(self, terms: Sequence[Term], units: Mapping | None = None):
        #: name -> (the mapping holding the array, its name there)
        self._terms: dict[str, tuple] = {}
        for term in terms:
            for name in term.param_names:
                if name in self._terms:
                    raise ValueError(
                        f"two terms use the parameter name {name!r}; give each term a "
                        "distinct name=..."
                    )
                self._terms[name] = (term.params, name)
        for g, unit in (units or {}).items():
            if unit.learn:                      # continuous units built with learn=True
                for own in unit.params:
                    self._terms[f"{g}.{own}"] = (unit.params, own)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            holder, own = self._terms[name]
        except KeyError:
            raise KeyError(f"no parameter {name!r}; the model has {list(self._terms)}") from None
        return holder[own]

    def __setitem__(self, name: str, value) -> None:
        if name not in self._terms:
            raise KeyError(f"no parameter {name!r}; the model has {list(self._terms)}, and "
                           f"none can be added: {_REBUILD}")
        holder, own = self._terms[name]
        holder[own] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"parameters cannot be deleted; {_REBUILD}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def __repr__(self) -> str:
        return "Params(" + ", ".join(f"{k}: {self[k].shape}" for k in self._terms) + ")"


class EnergyModel:
    """A model ``P(s) = exp(-beta E(s)) / Z`` with ``E`` the sum of its terms' energies.

    Parameters
    ----------
    units : mapping of str to int or UnitGroup
        The unit groups by name; an int ``n`` means ``Binary(n)``.
    terms : sequence of Term
        The energy terms; their parameter names must be distinct.
    visible : sequence of str, optional
        The visible groups (all groups when omitted); the others are hidden.

    Notes
    -----
    The structure is fixed when the model is built, because the model compiles it once
    (:attr:`graph`) and reuses the compiled form: ``terms`` is a list that refuses changes,
    ``params`` cannot be replaced, and the terms' parameter arrays can be written but not
    swapped for others (``model.params[name] = value`` and
    ``model.terms[k].params[name] = value`` copy ``value`` in, same shape required). To add
    or remove a term, build a new model, e.g.
    ``pe.EnergyModel(model.units, [*model.terms, term], visible=model.visible)``; it shares
    the terms, and so the parameter arrays, with the old one.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> model = pe.EnergyModel(
    ...     units={"x": 4, "h": 2},
    ...     terms=[pe.Bias("x", name="b"), pe.Bias("h", name="c"), pe.Pairwise("h", "x")],
    ...     visible=["x"])
    >>> model.params["W"].shape
    (2, 4)
    >>> model.params["W"][...] = 0.5          # a live view: the model sees the new values
    >>> bigger = pe.EnergyModel(model.units, [*model.terms, pe.Lateral("x")], visible=["x"])
    >>> sorted(bigger.params)
    ['U', 'W', 'b', 'c']
    """

    def __init__(self, units: Mapping, terms: Sequence[Term], visible: Sequence[str] | None = None):
        if not isinstance(units, Mapping) or not units:
            raise TypeError("units must be a non-empty mapping of group name to size or group")
        self.units: dict[str, UnitGroup] = {}
        for name, spec in units.items():
            if not isinstance(name, str):
                raise TypeError(f"group names must be str, got {name!r}")
            self.units[name] = as_unit_group(spec, name)
        terms = Terms(terms)
        for term in terms:
            if not isinstance(term, Term):
                raise TypeError(f"terms must be pe.Term instances, got {term!r}")
            term.bind(self.units)
        self._params = Params(terms, self.units)
        for term in terms:
            term.params.freeze()
        self._terms = terms
        if visible is None:
            visible = list(self.units)
        if isinstance(visible, str):
            visible = [visible]
        for g in visible:
            if g not in self.units:
                raise ValueError(f"visible group {g!r} is not one of the groups {list(self.units)}")
        self.visible = [g for g in self.units if g in visible]
        self.hidden = [g for g in self.units if g not in visible]
        self._graph = None

    @property
    def terms(self) -> Terms:
        """The energy terms, fixed when the model is built (a list that refuses changes)."""
        return self._terms

    @terms.setter
    def terms(self, value) -> None:
        raise AttributeError(f"model.terms cannot be replaced; {_REBUILD}")

    @property
    def params(self) -> Params:
        """The parameters by name: a live view of the terms' arrays.

        Writing into ``params[name]`` (or ``params[name] = value``, which copies ``value`` in,
        same shape required) changes the model; the mapping itself cannot be replaced.
        """
        return self._params

    @params.setter
    def params(self, value) -> None:
        raise AttributeError(f"model.params cannot be replaced; {_REBUILD}")

    def __repr__(self) -> str:
        units = ", ".join(f"{g}: {u!r}" for g, u in self.units.items())
        return f"EnergyModel(units={{{units}}}, terms={self.terms!r}, visible={self.visible})"

    def save(self, path) -> None:
        """Write the model to an ``.npz`` file (arrays + JSON, no pickle); see ``pe.load``.

        ``.npz`` is added to a name that does not end in it (``pe.load`` finds it again).
        """
        _format.write(self, path)

    # -- validation ---------------------------------------------------------------------
    def check_params(self) -> None:
        """Raise ``ValueError`` for NaN/inf parameters, invalid laterals or invalid unit
        parameters (e.g. a Gaussian sigma <= 0)."""
        for term in self.terms:
            term.check_params()
        for g, unit in self.units.items():
            unit.check(f"units[{g!r}]")

    def as_state(self, state, groups: Sequence[str] | None = None, what: str = "state", *,
                 expectations: bool = False):
        """Validate and coerce a state: ``{group: (batch, n_group) float64}``.

        ``state`` is a mapping holding every group of ``groups`` (all groups by default), or a
        bare array when ``groups`` has one group. 1-D arrays are one sample. With
        ``expectations``, values may lie anywhere between a unit's two values (expected
        states, such as grey levels read as pixel probabilities).
        """
        groups = list(self.units) if groups is None else list(groups)
        if not isinstance(state, Mapping):
            if len(groups) != 1:
                raise TypeError(
                    f"{what} must be a dict of group name to array covering {groups}, "
                    f"got {type(state).__name__}"
                )
            state = {groups[0]: state}
        unknown = set(state) - set(self.units)
        if unknown:
            raise ValueError(f"{what} has unknown groups {sorted(unknown)}; "
                             f"the model's groups are {list(self.units)}")
        out, batch = {}, None
        for g in groups:
            if g not in state:
                raise ValueError(f"{what} is missing group {g!r} (needs {groups})")
            arr = np.asarray(state[g])
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                           or arr.dtype == bool):
                raise TypeError(f"{what}[{g!r}] must be a numeric array, got dtype {arr.dtype}")
            if arr.ndim == 1:
                arr = arr[None, :]
            n = self.units[g].n
            if arr.ndim != 2 or arr.shape[1] != n:
                raise ValueError(f"{what}[{g!r}] must have shape (batch, {n}), got {arr.shape}")
            if batch is not None and arr.shape[0] != batch:
                raise ValueError(f"{what}: groups have different batch sizes "
                                 f"({batch} and {arr.shape[0]} for {g!r})")
            batch = arr.shape[0]
            arr = arr.astype(np.float64)
            if expectations:
                self.units[g].validate_mean(arr, f"{what}[{g!r}]")
            else:
                self.units[g].validate(arr, f"{what}[{g!r}]")
            out[g] = arr
        return out

    # -- compiled form ------------------------------------------------------------------
    @property
    def graph(self) -> FlatGraph:
        """The flat graph, validated and synced with the live parameters."""
        self.check_params()
        if self._graph is None:
            self._graph = FlatGraph(self)
        else:
            self._graph.sync()
        return self._graph

    def flat_state(self, state) -> np.ndarray:
        """A validated state dict as flat-graph slots, shape (batch, n_units) (one-hot for
        categorical units)."""
        return np.concatenate([self.units[g].encode(state[g]) for g in self.units], axis=1)

    # -- energies -----------------------------------------------------------------------
    def energy(self, state) -> np.ndarray:
        """``E(s) = sum over terms of term.energy(s) + sum over groups of the unit kind's
        self energy`` (0 for discrete units) for a batch, shape ``(batch,)``."""
        self.check_params()
        s = self.as_state(state)
        batch = next(iter(s.values())).shape[0]
        total = np.zeros(batch)
        for term in self.terms:
            total += term.energy(s)
        for g, unit in self.units.items():
            total += unit.self_energy(s[g])
        return total

    def free_energy(self, X, *, beta: float = 1.0, max_states: int = 2**32) -> np.ndarray:
        """``F(x) = -log sum_h exp(-beta E(x, h))``, shape ``(batch,)``.

        Hidden units that are conditionally independent given the rest are summed in closed
        form (``softplus`` for binary, ``log 2 cosh`` for spins); the remaining hidden units
        are enumerated or eliminated, whichever the exact engines estimate cheaper
        (:mod:`pgm_energy.exact.cost`), refused beyond ``max_states`` joint states (or table
        entries). With ``beta = 1``, ``log P(x) = -F(x) - log Z``.
        """
        plan = make_plan(self.graph, self.visible, beta, max_states=max_states,
                         what="the free energy")
        return -plan.log_sum(plan.clamped_flat(self.as_state(X, self.visible, what="X")))

    def conditional(self, group: str, state, *, beta: float = 1.0) -> np.ndarray:
        """``P(unit on | all other units)`` for every unit of ``group``, shape (batch, n).

        "On" is 1 for binary units and +1 for spins. With the local field
        ``f_i = -dE/ds_i`` (which counts a lateral pair twice, ``2 (U x)_i``):
        ``sigmoid(beta f_i)`` for binary units and ``sigmoid(2 beta f_i)`` for spins. Terms
        that only define ``energy`` add their energy difference
        ``E(unit off) - E(unit on)`` inside the sigmoid (times beta). For
        ``Categorical(n, k)`` units: ``P(x_i = v | rest) = softmax_v(beta f_iv)``, shape
        (batch, n, k), with ``f_iv`` the local field of the unit's slot ``v`` (and the energy
        differences ``E(x_i = 0) - E(x_i = v)`` of terms that only define ``energy``). For
        continuous units, the conditional mean ``E[x_i | rest]`` (:meth:`UnitGroup.mean` of
        the field: ``sigma_i^2 f_i`` for Gaussian units).
        """
        if group not in self.units:
            raise ValueError(f"unknown group {group!r}; the groups are {list(self.units)}")
        beta = check_beta(beta)
        graph = self.graph
        s = self.flat_state(self.as_state(state))
        unit = self.units[group]
        z = graph.local_field(s)[:, graph.slots(group)]
        if unit.continuous:
            if graph.generic[graph.slots(group)].any():
                raise TypeError(f"model.conditional({group!r}): a term outside the flat graph "
                                "reads this continuous group, so its conditional has no "
                                "closed form")
            return unit.mean(z, beta)
        if unit.width != unit.n:                     # one-hot slots: a softmax over values
            z = z.reshape(len(s), unit.n, unit.k)
            if graph.generic[graph.slots(group)].any():
                z = z + graph.generic_choice_delta(s, group, self)
            from scipy.special import softmax

            return softmax(beta * z, axis=-1)
        z = unit.scale * z
        for k, slot in enumerate(range(graph.offsets[group], graph.offsets[group] + unit.n)):
            if graph.generic[slot]:
                z[:, k] += graph.generic_delta(s, slot, self)
        from scipy.special import expit

        return expit(beta * z)
