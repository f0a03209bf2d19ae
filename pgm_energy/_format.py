"""The model file format: ``.npz`` arrays plus a JSON description, no pickle.

This module sits below the model (it reads a model's units and terms but imports no model
class), so ``EnergyModel.save`` writes through it; :mod:`pgm_energy.io` is the public face
(``pe.load`` builds the model from the parts read here).

A file holds ``__pgm_energy__``, a JSON text naming the unit groups, the terms (by
registered class name, with their constructor arguments, or for a user's term without
``config()`` its own attributes) and the visible groups, and one
array per parameter (``param/<name>``) and per array-valued constructor argument
(``term<k>/<key>``). Loading reads it with ``allow_pickle=False`` and builds terms only from
classes registered by subclassing ``pe.Term``: nothing in a file can run code.

Values of a term's ``config()`` (or attributes) round-trip exactly: JSON has no tuples, so a
tuple is written as ``{"__tuple__": [...]}`` (recursively; a dict whose only key is one of
the two tags is written as ``{"__dict__": {...}}``). Format 1 files (before the tags) hold
lists where tuples were, and still load.

File names follow numpy's rule: :func:`write` adds ``.npz`` to a name that does not end in
it, and :func:`read` reads ``path``, or ``path + ".npz"`` when ``path`` does not exist and
does not end in ``.npz``; so ``model.save("m")`` then ``pe.load("m")`` works.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .terms.base import Term, term_class, term_key
from .units import UNIT_REGISTRY

__all__ = ["model_arrays", "model_parts", "write", "read", "array"]

FORMAT = 2
#: Formats this version reads (1: tuples stored as lists).
_READABLE = (1, 2)
_HEADER = "__pgm_energy__"
_TUPLE, _DICT = "__tuple__", "__dict__"
#: Errors numpy and zipfile raise on a damaged or foreign file (not on a missing one).
_CONTENT_ERRORS = (ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def model_arrays(model) -> dict:
    """The model as a dict of arrays (the contents of its ``.npz`` file)."""
    arrays = {}
    terms = []
    for k, term in enumerate(model.terms):
        values, how = term_values(term)
        config, array_keys = {}, []
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                arrays[f"term{k}/{key}"] = value
                array_keys.append(key)
            else:
                config[key] = _to_json(value, f"{type(term).__name__} {how} {key!r}")
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
    for name, value in model.params.items():   # learnable units' too (exact, unrounded)
        arrays[f"param/{name}"] = value
    return arrays


def model_parts(arrays) -> tuple[dict, dict]:
    """The parts of a model held in :func:`model_arrays` output (or an opened ``.npz``):
    ``(kwargs, params)`` with ``EnergyModel(**kwargs)`` the model and ``params`` its
    parameter values by name.

    Raises ``ValueError`` saying the arrays are not a pgm_energy model (and what is
    missing or wrong) for anything but a well-formed description.
    """
    header = _read_header(arrays)
    tagged = header["format"] >= 2
    units = {}
    section = _field(header, "units", dict, "the description")
    for g in section:
        spec = dict(_field(section, g, dict, "'units'"))
        cls = UNIT_REGISTRY.get(spec.pop("class", None))
        if cls is None:
            raise ValueError(f"unknown unit group class in file for group {g!r}")
        units[g] = build(cls, spec, f"unit group {g!r}")
    terms = []
    params = {}
    for k, spec in enumerate(_field(header, "terms", list, "the description")):
        where = f"term {k}"
        config = _field(spec, "config", dict, where)
        kwargs = {key: _from_json(value) if tagged else value for key, value in config.items()}
        for key in _field(spec, "arrays", list, where):
            kwargs[key] = array(arrays, f"term{k}/{key}")
        cls = term_class(_field(spec, "class", str, where))
        names = _field(spec, "params", list, where)
        params.update({name: array(arrays, f"param/{name}") for name in names})
        if spec.get("how", "config") == "config":
            terms.append(build(cls, kwargs, f"{where} ({cls.__name__})"))
        else:
            term = cls.__new__(cls)
            Term.__init__(term, _field(spec, "groups", list, where),
                          {name: params[name] for name in names})
            vars(term).update(kwargs)
            terms.append(term)
    visible = _field(header, "visible", list, "the description")
    return {"units": units, "terms": terms, "visible": visible}, params


def write(model, path) -> None:
    """Write ``model`` to ``path`` (``.npz`` added to a name that does not end in it)."""
    np.savez(path, **model_arrays(model))


def read(path):
    """The opened ``.npz`` file of a model (a context manager), found by the suffix rule of
    the module docstring; ``ValueError`` for a file that is not one."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        if not path.exists() and path.suffix != ".npz" and path.with_name(
                path.name + ".npz").exists():
            path = path.with_name(path.name + ".npz")
    try:
        data = np.load(path, allow_pickle=False)
    except _CONTENT_ERRORS as exc:
        raise ValueError(f"{path} is not a pgm_energy model file (cannot read it as .npz: "
                         f"{exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not a pgm_energy model file (it holds a single array, "
                         "as .npy files do; models are .npz files written by model.save)")
    return data


# -- helpers ---------------------------------------------------------------------------------
def term_values(term: Term) -> tuple[dict, str]:
    """``(values, how)``: the term's ``config()`` (``how == "config"``) or, for a user's term
    without one, its own attributes (``"attributes"``), restored on load without calling its
    ``__init__``."""
    try:
        return term.config(), "config"
    except NotImplementedError:
        return {key: value for key, value in vars(term).items()
                if key not in ("groups", "params", "param_names", "unit_groups")}, "attributes"


def _to_json(value, where: str):
    """``value`` as JSON data, tuples tagged (see the module docstring); ``TypeError`` for a
    value JSON cannot hold."""
    if isinstance(value, tuple):
        return {_TUPLE: [_to_json(v, where) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError(f"cannot save {where}: dict keys must be str, got "
                            f"{list(value)!r}")
        out = {key: _to_json(v, where) for key, v in value.items()}
        return {_DICT: out} if set(value) in ({_TUPLE}, {_DICT}) else out
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"cannot save {where}: {type(value).__name__} is neither a JSON value (None, bool, "
        "int, float, str, or a list, tuple or str-keyed dict of them) nor, at the top level, "
        "an array; give the term a config() method returning its constructor arguments")


def _from_json(value):
    """Undo :func:`_to_json`."""
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and _TUPLE in value and isinstance(value[_TUPLE], list):
            return tuple(_from_json(v) for v in value[_TUPLE])
        if len(value) == 1 and _DICT in value and isinstance(value[_DICT], dict):
            return {key: _from_json(v) for key, v in value[_DICT].items()}
        return {key: _from_json(v) for key, v in value.items()}
    return value


def _read_header(arrays) -> dict:
    """The JSON description, checked to be a dict of a readable format."""
    text = array(arrays, _HEADER, what="no model description inside")
    if text.shape != () or text.dtype.kind != "U":
        raise ValueError("not a pgm_energy model file (its description is not a text)")
    try:
        header = json.loads(str(text[()]))
    except ValueError as exc:
        raise ValueError(f"not a pgm_energy model file (its description is not JSON: {exc})"
                         ) from None
    if not isinstance(header, dict):
        raise ValueError("not a pgm_energy model file (its description is not a JSON object)")
    if header.get("format") not in _READABLE:
        raise ValueError(f"not a pgm_energy model file of a known format: format "
                         f"{header.get('format')!r}; this version reads formats "
                         f"{', '.join(map(str, _READABLE))}")
    return header


def _field(spec, key: str, kind: type, where: str):
    """``spec[key]``, or a ``ValueError`` naming the missing key or the wrong kind."""
    if not isinstance(spec, dict) or key not in spec:
        raise ValueError(f"not a pgm_energy model file: {where} has no {key!r}")
    if not isinstance(spec[key], kind):
        raise ValueError(f"not a pgm_energy model file: {key!r} of {where} is a "
                         f"{type(spec[key]).__name__}, not a {kind.__name__}")
    return spec[key]


def array(arrays, key: str, what: str | None = None) -> np.ndarray:
    """``arrays[key]``; a missing or unreadable entry is a ``ValueError``."""
    if key not in arrays:
        raise ValueError(f"not a pgm_energy model file ({what or f'array {key!r} is missing'})")
    try:
        return np.asarray(arrays[key])
    except _CONTENT_ERRORS as exc:
        raise ValueError(f"not a pgm_energy model file, or a damaged one (cannot read "
                         f"{key!r}: {exc})") from exc


def build(cls, kwargs: dict, where: str):
    """``cls(**kwargs)``, a ``TypeError``/``ValueError`` from it reported as the file's."""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot rebuild {where} from the file: {exc}") from exc
