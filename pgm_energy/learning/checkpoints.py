"""Checkpoints of ``fit``: one ``.npz`` file (no pickle) written after every epoch.

It holds the model (``pgm_energy.io.model_arrays``), the configuration of the method and of
the optimizer (class and hyperparameters, as JSON), the persistent chains as the samplers'
public states (:class:`~pgm_energy.sampling.GibbsState`,
:class:`~pgm_energy.tempering.TemperingState`), the optimizer's slots, the run's random state,
the epoch, the history and the running offsets of a centered gradient
(:class:`~pgm_energy.learning.Centering`). Resuming refuses a file written with another
method, optimizer or number of chains, and a damaged file, with a ``ValueError`` that says
so.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ..io import model_arrays, model_from_arrays
from ..sampling import GibbsState
from ..tempering import SwapStatistics, TemperingState

__all__ = ["save", "restore", "config"]


def config(obj) -> dict:
    """The configuration of an estimator or optimizer, as a checkpoint records it: its class
    name and the attributes it lists in ``hyperparameters`` (a callable learning-rate
    schedule is recorded as ``"schedule"``)."""
    out = {"class": type(obj).__name__}
    for key in getattr(obj, "hyperparameters", ()):
        value = getattr(obj, key)
        if callable(value):
            value = "schedule"
        elif isinstance(value, (list, tuple, np.ndarray)):
            value = np.asarray(value, float).tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def save(path, model, method, optimizer, gen, history, epoch) -> None:
    """Write the checkpoint of a run after ``epoch`` epochs (atomically: a temporary file
    renamed over ``path``)."""
    arrays = model_arrays(model)
    arrays["method/config"] = np.array(json.dumps(config(method)))
    arrays["optimizer/config"] = np.array(json.dumps(config(optimizer)))
    arrays.update({f"method/{k}": v for k, v in _state_arrays(method.get_state()).items()})
    arrays.update({f"optimizer/slots/{k}": v for k, v in optimizer.get_state().items()})
    centering = getattr(method, "centering", None)
    if centering is not None:
        arrays.update({f"centering/{g}": v for g, v in centering.offsets.items()})
    arrays["train/rng"] = np.array(json.dumps(gen.bit_generator.state))
    arrays["train/epoch"] = np.array(epoch)
    arrays["train/history"] = np.array(json.dumps(history))
    tmp = f"{os.fspath(path)}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def restore(path, model, method, optimizer, gen, history) -> int:
    """Continue a run from the checkpoint ``path``: set the model's parameters, the
    optimizer's slots, the method's chains and centering offsets, ``gen`` and ``history``;
    return the epochs done.

    Raises
    ------
    ValueError
        The file is damaged or not a checkpoint, or it was written with another method,
        optimizer (class or hyperparameters), number of chains or kind of ``rng``.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        saved = model_from_arrays(arrays)
        header = {k: json.loads(str(arrays[f"{k}/config"][()])) for k in ("method", "optimizer")}
        chain_arrays = {k[len("method/"):]: v for k, v in arrays.items()
                        if k.startswith("method/") and k != "method/config"}
        # Tempering states written before the walkers were followed cannot continue exactly.
        outdated = "swaps" in chain_arrays and "walkers" not in chain_arrays
        chains = None if outdated else _state_from_arrays(chain_arrays)
        slots = {k[len("optimizer/slots/"):]: v for k, v in arrays.items()
                 if k.startswith("optimizer/slots/")}
        offsets = {k[len("centering/"):]: v for k, v in arrays.items()
                   if k.startswith("centering/")}
        rng_state = json.loads(str(arrays["train/rng"][()]))
        saved_history = json.loads(str(arrays["train/history"][()]))
        epoch = int(arrays["train/epoch"])
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise ValueError(f"checkpoint {os.fspath(path)!r} cannot be read: it is truncated, "
                         f"empty or not written by pe.fit ({type(err).__name__}: {err}); "
                         "delete it or pass resume=False") from None
    if outdated:
        raise ValueError(f"checkpoint {os.fspath(path)!r} holds a parallel-tempering state "
                         "written by an older pgm_energy, without the walkers' labels and "
                         "round trips; it cannot continue exactly: start a new checkpoint "
                         "(resume=False, or another path)")
    for what, obj in (("method", method), ("optimizer", optimizer)):
        if header[what] != config(obj):
            raise ValueError(f"checkpoint {os.fspath(path)!r} was written with the {what} "
                             f"{_describe(header[what])}, not {_describe(config(obj))}; "
                             f"resume with the same {what}, or start a new checkpoint")
    if rng_state.get("bit_generator") != type(gen.bit_generator).__name__:
        raise ValueError(f"checkpoint used a {rng_state.get('bit_generator')} generator; pass "
                         "the same kind of rng to resume")
    for name in model.params:
        model.params[name] = saved.params[name]
    optimizer.set_state(slots)
    if chains is not None:
        method.set_state(model, chains, gen)
    if offsets:                  # (the same centering: its configuration was checked above)
        method.centering.set_offsets(model.graph, offsets)
    gen.bit_generator.state = rng_state
    history.update(saved_history)
    return epoch


def _describe(conf: dict) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in conf.items() if k != "class")
    return f"{conf['class']}({args})"


def _state_arrays(state) -> dict:
    """A sampler state as named arrays (``values/<group>``, ``streams``, ``beta``, and for
    tempering ``betas``, ``swaps`` (accepted and proposed), ``round_trips``, ``visits`` (up
    and down), ``walkers``, ``labels``, ``acceptance``, ``adapt_rounds``, ``parity``,
    ``swap_rng``)."""
    if state is None:
        return {}
    if isinstance(state, TemperingState):
        swaps = state.swaps
        return {**_state_arrays(state.replicas), "betas": np.asarray(swaps.betas),
                "swaps": np.stack([swaps.accepted, swaps.proposed]),
                "round_trips": np.asarray(swaps.round_trips),
                "visits": np.stack([swaps.up_visits, swaps.down_visits]),
                "walkers": np.asarray(state.walkers), "labels": np.asarray(state.labels),
                "acceptance": np.asarray(state.acceptance),
                "adapt_rounds": np.array(state.adapt_rounds),
                "parity": np.array(state.parity),
                "swap_rng": np.array(json.dumps(state.swap_rng))}
    return {**{f"values/{g}": v for g, v in state.values.items()},
            "streams": state.streams, "beta": np.asarray(state.beta)}


def _state_from_arrays(arrays: dict):
    """The inverse of :func:`_state_arrays` (None for no arrays)."""
    if not arrays:
        return None
    beta = arrays["beta"]
    replicas = GibbsState({k[len("values/"):]: v for k, v in arrays.items()
                           if k.startswith("values/")}, arrays["streams"],
                          float(beta) if beta.ndim == 0 else beta)
    if "swaps" not in arrays:
        return replicas
    accepted, proposed = arrays["swaps"]
    up, down = arrays["visits"]
    swaps = SwapStatistics(arrays["betas"], accepted, proposed, arrays["round_trips"], up,
                           down)
    return TemperingState(replicas, swaps, int(arrays["parity"]),
                          json.loads(str(arrays["swap_rng"][()])), arrays["walkers"],
                          arrays["labels"], int(arrays["adapt_rounds"]), arrays["acceptance"])
