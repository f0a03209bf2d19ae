"""Saving and loading models as ``.npz`` files: arrays plus a JSON description, no pickle.

A file holds ``__pgm_energy__``, a JSON text naming the unit groups, the terms (by
registered class name, with their constructor arguments, or for a user's term without
``config()`` its own attributes) and the visible groups, and one
array per parameter (``param/<name>``) and per array-valued constructor argument
(``term<k>/<key>``). Loading reads it with ``allow_pickle=False`` and builds terms only from
classes registered by subclassing ``pe.Term``: nothing in a file can run code.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .model import EnergyModel
from .terms.base import Term, term_class, term_key
from .units import UNIT_REGISTRY

__all__ = ["save", "load", "model_arrays", "model_from_arrays"]

FORMAT = 1
_HEADER = "__pgm_energy__"


def model_arrays(model: EnergyModel) -> dict:
    """The model as a dict of arrays (the contents of its ``.npz`` file)."""
    arrays = {}
    terms = []
    for k, term in enumerate(model.terms):
        try:
            values, how = term.config(), "config"
        except NotImplementedError:
            values, how = _attributes(term), "attributes"
        config, array_keys = {}, []
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                arrays[f"term{k}/{key}"] = value
                array_keys.append(key)
            else:
                config[key] = value
        terms.append({"class": term_key(type(term)), "how": how, "config": config,
                      "arrays": array_keys, "groups": list(term.groups),
                      "params": list(term.param_names)})
    header = {
        "format": FORMAT,
        "units": {g: {"class": type(u).__name__, **u.config()} for g, u in model.units.items()},
        "visible": model.visible,
        "terms": terms,
    }
    arrays[_HEADER] = np.array(json.dumps(header))
    for name, value in model.params.items():
        arrays[f"param/{name}"] = value
    return arrays


def model_from_arrays(arrays) -> EnergyModel:
    """Rebuild a model from :func:`model_arrays` output (or an opened ``.npz``)."""
    if _HEADER not in arrays:
        raise ValueError("not a pgm_energy model file (no model description inside)")
    header = json.loads(str(arrays[_HEADER][()]))
    if header.get("format") != FORMAT:
        raise ValueError(f"unsupported model file format {header.get('format')!r}")
    units = {}
    for g, spec in header["units"].items():
        spec = dict(spec)
        cls = UNIT_REGISTRY.get(spec.pop("class"))
        if cls is None:
            raise ValueError(f"unknown unit group class in file for group {g!r}")
        units[g] = cls(**spec)
    terms = []
    for k, spec in enumerate(header["terms"]):
        kwargs = dict(spec["config"])
        for key in spec["arrays"]:
            kwargs[key] = arrays[f"term{k}/{key}"]
        cls = term_class(spec["class"])
        if spec.get("how", "config") == "config":
            terms.append(cls(**kwargs))
        else:
            term = cls.__new__(cls)
            Term.__init__(term, spec["groups"],
                          {name: arrays[f"param/{name}"] for name in spec["params"]})
            vars(term).update(kwargs)
            terms.append(term)
    model = EnergyModel(units, terms, visible=header["visible"])
    for name in model.params:
        model.params[name] = arrays[f"param/{name}"]
    return model


def _attributes(term) -> dict:
    """A user term without ``config()``: its own attributes (JSON values or arrays), restored
    on load without calling its ``__init__``."""
    out = {}
    for key, value in vars(term).items():
        if key in ("groups", "params", "param_names", "unit_groups"):
            continue
        if isinstance(value, np.ndarray):
            out[key] = value
            continue
        try:
            json.dumps(value)
        except TypeError:
            raise TypeError(
                f"cannot save {type(term).__name__}: attribute {key!r} is neither a JSON value "
                "nor an array; give the term a config() method returning its constructor "
                "arguments") from None
        out[key] = value
    return out


def save(model: EnergyModel, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` (``.npz``): see the module docstring for the format."""
    np.savez(path, **model_arrays(model))


def load(path: str | os.PathLike) -> EnergyModel:
    """Read a model written by :func:`save` (no code is executed: ``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as data:
        return model_from_arrays(data)
