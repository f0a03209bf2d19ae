"""Saving and loading models as ``.npz`` files: arrays plus a JSON description, no pickle.

The format is described in :mod:`pgm_energy._format`: a JSON text naming the unit groups,
the terms (by registered class name, with their constructor arguments) and the visible
groups, and one array per parameter. Loading reads it with ``allow_pickle=False`` and builds
terms only from classes registered by subclassing ``pe.Term``: nothing in a file can run
code. :func:`save` adds ``.npz`` to a name that does not end in it, and :func:`load` finds
that name again, so ``model.save("m")`` then ``pe.load("m")`` works.
"""
from __future__ import annotations

from . import _format
from ._format import model_arrays
from .model import EnergyModel

__all__ = ["save", "load", "model_arrays", "model_from_arrays"]


def model_from_arrays(arrays) -> EnergyModel:
    """Rebuild a model from :func:`model_arrays` output (or an opened ``.npz``).

    Raises ``ValueError`` saying the arrays are not a pgm_energy model (and what is
    missing or wrong) for anything but a well-formed description.
    """
    try:
        kwargs, params = _format.model_parts(arrays)
        model = _format.build(EnergyModel, kwargs, "the model")
        for name in model.params:       # a learnable unit's stored array overrides the
            model.params[name] = (      # rounded value of its config
                params[name] if name in params else _format.array(arrays, f"param/{name}"))
    except TypeError as exc:        # an array of the wrong kind where a term wants numbers
        raise ValueError(f"not a pgm_energy model file, or a damaged one: {exc}") from exc
    return model


def save(model: EnergyModel, path) -> None:
    """Write ``model`` to ``path`` (the same as ``model.save(path)``).

    Parameters
    ----------
    model : EnergyModel
        The model; a user's term is saved through its ``config()`` (or, without one, its
        attributes, which must be JSON values, tuples or arrays).
    path : str, path-like or binary file
        Where to write; ``.npz`` is added to a name that does not end in it.
    """
    _format.write(model, path)


def load(path) -> EnergyModel:
    """Read a model written by :func:`save` (no code is executed: ``allow_pickle=False``).

    Parameters
    ----------
    path : str, path-like or binary file
        The file; when ``path`` does not exist and does not end in ``.npz``,
        ``path + ".npz"`` (the name :func:`save` wrote) is read.

    Raises
    ------
    ValueError
        If the file is not a pgm_energy model (another kind of file, an empty or truncated
        one, a description missing a key, a format this version does not know).
    """
    with _format.read(path) as data:
        return model_from_arrays(data)
