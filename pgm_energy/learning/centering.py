"""Centering (Montavon & Mueller 2012; Melchior, Fischer & Wiskott 2016): the gradient of the
model written around offsets ``o`` (one per unit),

    E(s) = -sum_i a_i (s_i - o_i) - sum_e J_e (s_i - o_i)(s_j - o_j)      (e = (i, j)),

the same family as the uncentered ``E = -sum_i f_i s_i - sum_e J_e s_i s_j`` with
``f_i = a_i - sum_{e ni i} J_e o_{other end}`` (and a constant). Gradient ascent in ``(a, J)``
rather than in ``(f, J)`` takes the steps

    dJ_e = <(s_i - o_i)(s_j - o_j)>_data - <(s_i - o_i)(s_j - o_j)>_model
    da_i = <s_i>_data - <s_i>_model,

which, mapped back to the uncentered parameters the model keeps (so every exact function
still applies), are ``dJ_e`` and ``df_i = da_i - sum_{e ni i} dJ_e o_{other end}``. For an
RBM with offsets ``lambda`` (visible) and ``mu`` (hidden): ``dW = <(h - mu)(x - lambda)^T>``
differences, ``db = d<x> - dW^T mu``, ``dc = d<h> - dW lambda`` (Melchior et al., eq. 10-12).
With all offsets at 0 it is the ordinary gradient; both vanish together (the map is
invertible), so the two ascents have the same fixed points. Offsets near the units' means
decouple the bias and weight steps (a better-conditioned ascent: Melchior et al. found it
makes DBMs train reliably).

The offsets are running means of the positive phase (the data for visible units, the
conditional or mean-field means for hidden ones): ``o <- (1 - rate) o + rate <s>_data``,
starting from the first batch's means (or ``offsets`` when given). ``fit``'s checkpoint file
keeps them (:attr:`Centering.offsets`, :meth:`Centering.set_offsets`): a resumed run goes on
from them.

The flat graph's parameters map to fields and couplings by ``coef``: the step each landing
gets is ``coef`` times its slot's step, so the coupling of edge ``e`` moves by ``k_e`` times
``dJ_e`` (``k_e`` the sum of the squared coefficients landing on it: 2 for a symmetric
lateral matrix), and the field correction uses the coupling's actual move, divided by the
field's own ``k_i``. Every unit with a coupling needs a bias that reaches it.
"""
from __future__ import annotations

import numpy as np

from .._checks import nonnegative_float

__all__ = ["Centering"]


class Centering:
    """Centered gradients with running-mean offsets (see the module docstring).

    Parameters
    ----------
    rate : float
        Weight in [0, 1] of each batch's positive-phase means in the running offsets (0 keeps
        the starting offsets).
    offsets : dict, optional
        Starting offsets, group -> array of its units' values (one-hot slot means, ``n * k``
        of them, for a categorical group; groups not given start at 0); default: the first
        batch's positive-phase means.

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> from pgm_energy.cli import bars_and_stripes
    >>> model = pe.DBM([9, 8, 6], rng=0)
    >>> method = pe.PCD(n_chains=50, centering=pe.learning.Centering(rate=0.05))
    >>> _ = pe.fit(model, bars_and_stripes(3), method, epochs=2, batch_size=14, rng=0)
    >>> sorted(method.centering.offsets)
    ['h1', 'h2', 'x']
    """

    def __init__(self, rate: float = 0.01, offsets: dict | None = None):
        self.rate = nonnegative_float(rate, "rate")
        if self.rate > 1:
            raise ValueError(f"rate must be in [0, 1], got {rate!r}")
        self._start = None if offsets is None else dict(offsets)
        self._flat = None
        self._graph = None

    def __repr__(self):
        return f"Centering(rate={self.rate!r})"

    @property
    def offsets(self) -> dict:
        """The current offsets, group -> array of its slots (empty before the first
        gradient)."""
        if self._flat is None:
            return {}
        return {g: self._flat[self._graph.slots(g)].copy() for g in self._graph.units}

    def gradient(self, layout, positive_rows: np.ndarray, negative_rows: np.ndarray,
                 moments) -> dict:
        """The centered gradient in the uncentered parameters, from the expected-state rows of
        the two phases; ``moments(rows) -> (mean unit, mean pair products)``."""
        graph = layout.graph
        if graph.generic_terms or len(graph.factor_members):
            raise TypeError("centering needs a model of biases and pairwise couplings only; "
                            "this model has higher-order or user terms")
        if self._graph is not graph:
            self._graph, self._weights = graph, _landing_weights(graph)
            self._flat = None if self._start is None else _flat_offsets(graph, self._start)
        batch_mean = positive_rows.mean(axis=0)
        self._flat = (batch_mean if self._flat is None
                      else (1 - self.rate) * self._flat + self.rate * batch_mean)
        o = self._flat
        out = None
        for sign, rows in ((-1.0, positive_rows), (1.0, negative_rows)):
            grads = graph.grad_from_moments(*self._centered(graph, rows, o, moments))
            out = ({k: sign * v for k, v in grads.items()} if out is None
                   else {k: out[k] + sign * v for k, v in grads.items()})
        return out

    def set_offsets(self, graph, offsets: dict) -> None:
        """Set the running offsets on ``graph`` (a model's flat graph) to ``offsets``, group
        -> array of its slots (as :attr:`offsets` gives them; groups not given at 0), as if
        the gradients so far had reached them (a checkpoint's resume)."""
        self._graph, self._weights = graph, _landing_weights(graph)
        self._flat = _flat_offsets(graph, offsets)

    def _centered(self, graph, rows, o, moments):
        """``(<s_i> - sum_e (k_e / k_i) o_other <pair'_e>, <pair'_e>)`` with
        ``pair'_e = (s_i - o_i)(s_j - o_j)``."""
        k_unit, k_pair = self._weights
        _, pair = moments(rows - o)
        unit = rows.mean(axis=0)
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        move = k_pair * pair
        unit = unit - (np.bincount(i, move * o[j], graph.n_units)
                       + np.bincount(j, move * o[i], graph.n_units)) / k_unit
        return unit, pair


def _flat_offsets(graph, offsets: dict) -> np.ndarray:
    """``offsets`` (group -> array of its slots) as one value per slot of ``graph``, checked;
    groups not given at 0."""
    flat = np.zeros(graph.n_units)
    for g, value in offsets.items():
        if g not in graph.units:
            raise ValueError(f"offsets: no group {g!r} in the model (groups "
                             f"{list(graph.units)})")
        slots = graph.slots(g)
        value = np.asarray(value, float)
        if value.shape != (slots.stop - slots.start,):
            raise ValueError(f"offsets[{g!r}] must have shape "
                             f"{(slots.stop - slots.start,)}, got {value.shape}")
        flat[slots] = value
    return flat


def _landing_weights(graph) -> tuple[np.ndarray, np.ndarray]:
    """``k_i`` and ``k_e``: the sums of squared coefficients landing on each field and each
    coupling; a ``ValueError`` when a coupled unit has no bias."""
    k_unit, k_pair = np.zeros(graph.n_units), np.zeros(graph.n_edges)
    for land in graph.parameter_slots():
        keep = land.target >= 0
        target = k_pair if land.pair else k_unit
        target += np.bincount(land.target[keep], land.coef[keep] ** 2, len(target))
    coupled = np.unique(graph.edges)
    if np.any(k_unit[coupled] == 0):
        raise ValueError("centering moves the biases of every coupled unit; these units have "
                         f"none: slots {coupled[k_unit[coupled] == 0].tolist()}")
    return np.where(k_unit > 0, k_unit, 1.0), k_pair
