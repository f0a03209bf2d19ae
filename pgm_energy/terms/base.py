"""The energy-term protocol: every term, built in or a user's own, is a ``Term``."""
from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

__all__ = ["Term", "TermParams", "LinearCoupling", "FactorCoupling", "TERM_REGISTRY",
           "term_class", "term_key"]

#: Term classes by qualified name (``module.QualName``), filled by ``Term.__init_subclass__``;
#: ``pe.load`` builds terms only from this registry (never by importing or unpickling).
TERM_REGISTRY: dict[str, type] = {}


def term_key(cls: type) -> str:
    """The registry key of a term class: ``module.QualName``, so equal names in two modules
    do not collide."""
    return f"{cls.__module__}.{cls.__qualname__}"


def term_class(name: str) -> type:
    """The registered term class with key ``name`` (``ValueError`` if there is none)."""
    try:
        return TERM_REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown term class {name!r}; define or import it (subclassing pe.Term registers "
            f"it) before loading. Known: {sorted(TERM_REGISTRY)}"
        ) from None


@dataclass(frozen=True)
class LinearCoupling:
    """How one parameter of a term lands in the flat graph.

    The parameter ``theta`` contributes ``-sum_p coef[p] * theta[p] * s[i[p]] * s[j[p]]`` to
    the energy (``-sum_p coef[p] * theta[p] * s[i[p]]`` when ``j`` is None), the sum running
    over the flattened entries ``p`` of the parameter. ``i`` and ``j`` index flat-graph slots
    (a categorical unit has one slot per value, see ``pe.Categorical``). Entries pairing a
    unit with itself (``i[p] == j[p]``, or two slots of one categorical unit) are dropped
    (they must be zero, as on a lateral diagonal). Hence
    ``dE/dtheta[p] = -coef[p] * s[i[p]] * s[j[p]]``.
    """

    param: str
    i: np.ndarray
    j: np.ndarray | None
    coef: np.ndarray


@dataclass(frozen=True)
class FactorCoupling:
    """Products of units that one parameter of a term weights (k-ary factors).

    Parameter entry ``p`` contributes ``-coef[p] * theta[p] * prod_k s[members[p, k]]`` to
    the energy (``members`` is (size, width), padded with -1). The energy is linear in each
    unit, so a Gibbs kernel adds ``coef theta prod_{others} s`` to a member's local field.
    """

    param: str
    members: np.ndarray
    coef: np.ndarray


class TermParams(MutableMapping):
    """A term's parameters by name: float64 arrays (``None`` until :meth:`Term.bind` sizes a
    parameter whose shape depends on the groups).

    While no model holds the term, ``params[name] = value`` stores ``value`` as a new float64
    array. Once a model holds it (:meth:`freeze`, called by ``pe.EnergyModel``), the model and
    its compiled graph read these very arrays, so they are fixed: ``params[name] = value``
    copies ``value`` into the existing array (same shape required, as
    ``params[name][...] = value``), and parameters cannot be added or removed. A parameter of
    another shape needs a new term in a new ``pe.EnergyModel``.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> bias = pe.Bias("x", value=[0.0, 0.0])
    >>> model = pe.EnergyModel({"x": 2}, [bias])
    >>> array = bias.params["b"]
    >>> bias.params["b"] = [1.0, -1.0]          # copied into the array the model reads
    >>> bias.params["b"] is array, model.params["b"].tolist()
    (True, [1.0, -1.0])
    """

    def __init__(self, owner: str, values: Mapping[str, object]):
        self._owner = owner
        self._arrays: dict[str, np.ndarray | None] = {}
        self._frozen = False
        for name, value in values.items():
            self[name] = value

    @property
    def frozen(self) -> bool:
        """Whether a model holds the term (its arrays are then fixed)."""
        return self._frozen

    def freeze(self) -> None:
        """Fix the arrays: from now on values are only written in place."""
        missing = [name for name, value in self._arrays.items() if value is None]
        if missing:
            raise ValueError(f"{self._owner}: parameters {missing} have no value")
        self._frozen = True

    def __getitem__(self, name: str) -> np.ndarray | None:
        return self._arrays[name]

    def __setitem__(self, name: str, value) -> None:
        if not self._frozen:
            if not isinstance(name, str) or not name:
                raise TypeError(f"{self._owner}: parameter names must be non-empty str")
            self._arrays[name] = None if value is None else _as_float_array(value, name)
            return
        if name not in self._arrays:
            raise KeyError(f"{self._owner} has no parameter {name!r} (it has "
                           f"{list(self._arrays)}), and a model holds it, so none can be "
                           "added: build a new term and a new pe.EnergyModel")
        target = self._arrays[name]
        value = _as_float_array(value, name)
        if value.shape != target.shape:
            raise ValueError(
                f"{self._owner}: parameter {name!r} has shape {target.shape}, got "
                f"{value.shape}; a model holds this term and reads this very array, so new "
                "values are copied into it. For another shape, build a new term and a new "
                "pe.EnergyModel")
        target[...] = value

    def __delitem__(self, name: str) -> None:
        if self._frozen:
            raise TypeError(f"{self._owner}: a model holds this term, so its parameters cannot "
                            "be removed; build a new pe.EnergyModel without it")
        del self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return ("TermParams(" + ", ".join(f"{k}: {None if v is None else v.shape}"
                                          for k, v in self._arrays.items()) + ")")


class Term:
    """Base class of energy terms: ``E(state) = sum over terms of term.energy(state)``.

    Parameters
    ----------
    groups : sequence of str
        Names of the unit groups the term reads.
    params : mapping of str to array_like
        The term's parameters by name (copied to float64 arrays, held in a
        :class:`TermParams`). Built-in terms whose shape depends on the group sizes may pass
        ``None`` and create the array in :meth:`bind`. Once a model holds the term its
        arrays are fixed: new values are copied into them (see :class:`TermParams`).

    Notes
    -----
    A subclass implements :meth:`energy` (shape ``(batch,)``) and :meth:`energy_grad`
    (``{name: (batch, *param.shape)}``, the derivative ``dE/dtheta`` per sample). It may also
    implement :meth:`compile`, giving its parameters as linear couplings of the flat graph,
    which lets the compiled kernels handle it.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        TERM_REGISTRY[term_key(cls)] = cls

    def __init__(self, groups: Sequence[str], params: Mapping[str, object]):
        if isinstance(groups, str):
            groups = (groups,)
        self.groups = tuple(groups)
        for g in self.groups:
            if not isinstance(g, str):
                raise TypeError(f"{type(self).__name__}: group names must be str, got {g!r}")
        self.params = params

    # The mapping lives in the instance dict under "params" (as a plain attribute would), so
    # ``vars(term)``, pickles and saved files see the same attributes as before.
    @property
    def params(self) -> TermParams:
        """The parameters by name (see :class:`TermParams`)."""
        return self.__dict__["params"]

    @params.setter
    def params(self, values: Mapping[str, object]) -> None:
        current = self.__dict__.get("params")
        if current is not None and current.frozen:
            raise AttributeError(
                f"{type(self).__name__}.params cannot be replaced: a model holds this term and "
                f"reads its arrays. Write values in place (term.params[name][...] = value) or "
                "build a new term and a new pe.EnergyModel")
        self.__dict__["params"] = TermParams(type(self).__name__, values)
        self.param_names = tuple(self.params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(groups={self.groups}, params={list(self.param_names)})"

    # -- set-up -------------------------------------------------------------------------
    def bind(self, units: Mapping) -> None:
        """Check the term against the model's unit groups; create parameters if needed."""
        for g in self.groups:
            if g not in units:
                raise ValueError(
                    f"{type(self).__name__} reads group {g!r}, which the model does not have "
                    f"(its groups are {list(units)})"
                )
        #: The unit groups the term reads, as bound to a model.
        self.unit_groups = {g: units[g] for g in self.groups}
        shapes = self.param_shapes(units)
        for name, value in self.params.items():
            shape = shapes.get(name)
            if value is None and shape is None:
                raise ValueError(f"{type(self).__name__}: parameter {name!r} has no value")
            if value is None:
                self.params[name] = np.zeros(shape)
            elif shape is not None and value.shape != tuple(shape):
                raise ValueError(
                    f"{type(self).__name__}: parameter {name!r} must have shape "
                    f"{tuple(shape)}, got {value.shape}"
                )

    def param_shapes(self, units: Mapping) -> dict[str, tuple]:
        """Required parameter shapes given the model's unit groups (none by default)."""
        return {}

    def features(self, state: Mapping[str, np.ndarray], group: str) -> np.ndarray:
        """The group's features ``(batch, width)``: values of binary and spin units, one-hot
        vectors of categorical ones (see ``pe.Categorical``); needs a bound term."""
        return self.unit_groups[group].encode(state[group])

    def check_params(self) -> None:
        """Raise ``ValueError`` if a parameter is NaN or infinite (or otherwise invalid)."""
        for name, value in self.params.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"parameter {name!r} of {type(self).__name__} has NaN or infinite entries; "
                    "reset it (a diverging training run often causes this: lower the "
                    "learning rate)"
                )

    # -- the protocol -------------------------------------------------------------------
    def energy(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Energy of each state in the batch, shape ``(batch,)``."""
        raise NotImplementedError

    def energy_grad(self, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``dE/dtheta`` per sample: ``{name: (batch, *param.shape)}``."""
        raise NotImplementedError

    def delta_energy(self, state: Mapping[str, np.ndarray], group: str, unit: int,
                     values: tuple) -> np.ndarray:
        """``E(unit on) - E(unit off)`` for each state of the batch, the rest as in ``state``.

        ``values = (off, on)`` are the unit's two values (0, 1 or -1, +1; for a categorical
        unit, value 0 and another value). This generic version evaluates :meth:`energy` once
        on the batch stacked twice; a term may override it with a closed form, which
        makes Gibbs updates of the units it reads faster (``pe.testing.check_term`` compares
        the two).
        """
        return energy_change(self, state, group, unit, values[0], values[1])

    def config(self) -> dict:
        """Constructor arguments (JSON values or arrays) that rebuild this term, parameters
        excepted: ``type(term)(**term.config())`` then gets its parameter values loaded."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement config(); add it to save models with it"
        )

    def compile_factors(self, offsets: Mapping[str, int]) -> list[FactorCoupling] | None:
        """For a term that does not :meth:`compile`: the term as k-ary product factors, which
        the Gibbs kernels evaluate natively (or None, the default: Python energy differences).
        The other engines keep using ``energy``/``energy_grad``."""
        return None

    def compile(self, offsets: Mapping[str, int]) -> list[LinearCoupling] | None:
        """The term as linear couplings of the flat graph, or None if it cannot compile.

        ``offsets[group]`` is the flat index of the group's first unit.
        """
        return None


def energy_change(term: Term, state: Mapping[str, np.ndarray], group: str, unit: int,
                  old, new) -> np.ndarray:
    """``E(unit = new) - E(unit = old)`` of ``term`` for each state of the batch, the rest as
    in ``state``, from :meth:`EnergyTerm.energy` evaluated once on the batch stacked twice.

    ``old`` and ``new`` are values of the unit: scalars, or one per state (``(batch,)``, as
    the Gibbs sampler's Metropolis step for continuous units passes them).
    """
    batch = len(state[group])
    rows = {g: np.concatenate((state[g], state[g]), dtype=np.float64) for g in term.groups}
    edited = rows[group]
    edited[:batch, unit] = new
    edited[batch:, unit] = old
    energy = term.energy(rows)
    return energy[:batch] - energy[batch:]


def _as_float_array(value, name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"parameter {name!r} must be numeric, got {type(value).__name__}") from None
    return arr

