"""Saving and loading models as ``.npz`` files: arrays plus a JSON description, no pickle.

A file holds ``__pgm_energy__``, a JSON text naming the unit groups, the terms (by
registered class name, with their constructor arguments) and the visible groups, and one
array per parameter (``param/<name>``) and per array-valued constructor argument
(``term<k>/<key>``). Loading reads it with ``allow_pickle=False`` and builds terms only from
classes registered by subclassing ``pe.Term``: nothing in a file can run code.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .model import EnergyModel
from .terms.base import term_class
from .units import UNIT_REGISTRY

__all__ = ["save", "load", "model_arrays", "model_from_arrays"]

FORMAT = 1
_HEADER = "__pgm_energy__"


def model_arrays(model: EnergyModel) -> dict:
    """The model as a dict of arrays (the contents of its ``.npz`` file)."""
    arrays = {}
    terms = []
    for k, term in enumerate(model.terms):
        config, array_keys = {}, []
        for key, value in term.config().items():
            if isinstance(value, np.ndarray):
                arrays[f"term{k}/{key}"] = value
                array_keys.append(key)
            else:
                config[key] = value
        terms.append({"class": type(term).__name__, "config": config, "arrays": array_keys})
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
        terms.append(term_class(spec["class"])(**kwargs))
    model = EnergyModel(units, terms, visible=header["visible"])
    for name in model.params:
        model.params[name] = arrays[f"param/{name}"]
    return model


def save(model: EnergyModel, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` (``.npz``): see the module docstring for the format."""
    np.savez(path, **model_arrays(model))


def load(path: str | os.PathLike) -> EnergyModel:
    """Read a model written by :func:`save` (no code is executed: ``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as data:
        return model_from_arrays(data)
