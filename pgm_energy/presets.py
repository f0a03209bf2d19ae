"""Presets: the classic models, built from the same terms as any ``EnergyModel``.

Each preset checks its own arguments (a wrong shape is a ``ValueError`` naming the argument,
the shape expected and the shape received) before it builds the model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ._checks import positive_int
from .model import EnergyModel
from .terms import Bias, Lateral, Pairwise, SparsePairwise
from .terms.indices import as_index_tuples, check_index_range
from .units import Binary, Spin

__all__ = ["RBM", "BoltzmannMachine", "Ising", "DBM"]


def RBM(n_visible: int, n_hidden: int, *, W=None, b=None, c=None, rng=None,
        visible_units=None, hidden_units=None) -> EnergyModel:
    """Restricted Boltzmann machine ``E(x, h) = -b.x - c.h - h^T W x``.

    Groups ``"x"`` (visible) and ``"h"`` (hidden); parameters ``b`` (n_visible,),
    ``c`` (n_hidden,) and ``W`` (n_hidden, n_visible). Weights not given start as
    ``N(0, 0.01^2)`` draws from ``rng`` (Hinton's practical guide), biases as zeros.
    ``visible_units``/``hidden_units`` choose the domain (default ``Binary``), e.g. ``pe.Spin``.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> model = pe.RBM(6, 3, rng=0)
    >>> model.params["W"].shape
    (3, 6)
    """
    vis = (visible_units or Binary)(n_visible)
    hid = (hidden_units or Binary)(n_hidden)
    if W is None:
        W = 0.01 * np.random.default_rng(rng).standard_normal((hid.n, vis.n))
    return EnergyModel(
        units={"x": vis, "h": hid},
        terms=[Bias("x", name="b", value=_argument("RBM", "b", b, vis.feature_shape)),
               Bias("h", name="c", value=_argument("RBM", "c", c, hid.feature_shape)),
               Pairwise("h", "x", name="W",
                        value=_argument("RBM", "W", W, hid.feature_shape + vis.feature_shape))],
        visible=["x"],
    )


def BoltzmannMachine(n_visible: int, n_hidden: int, *, W=None, U=None, V=None, b=None, c=None,
                     rng=None) -> EnergyModel:
    """General Boltzmann machine ``E = -b.x - c.h - h^T W x - x^T U x - h^T V h``.

    ``U`` (n_visible, n_visible) and ``V`` (n_hidden, n_hidden) are symmetric with zero
    diagonals (each pair counted twice); ``W`` is (n_hidden, n_visible). Parameters not given
    start as small symmetric ``N(0, 0.01^2)`` draws from ``rng``; biases as zeros.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> model = pe.BoltzmannMachine(4, 2, rng=0)
    >>> sorted(model.params)
    ['U', 'V', 'W', 'b', 'c']
    """
    n_visible = positive_int(n_visible, "n_visible")
    n_hidden = positive_int(n_hidden, "n_hidden")
    gen = np.random.default_rng(rng)
    if W is None:
        W = 0.01 * gen.standard_normal((n_hidden, n_visible))
    U = _small_symmetric(gen, n_visible) if U is None else U
    V = _small_symmetric(gen, n_hidden) if V is None else V
    bm = "BoltzmannMachine"
    return EnergyModel(
        units={"x": Binary(n_visible), "h": Binary(n_hidden)},
        terms=[Bias("x", name="b", value=_argument(bm, "b", b, (n_visible,))),
               Bias("h", name="c", value=_argument(bm, "c", c, (n_hidden,))),
               Pairwise("h", "x", name="W", value=_argument(bm, "W", W, (n_hidden, n_visible))),
               Lateral("x", name="U", value=_argument(bm, "U", U, (n_visible, n_visible))),
               Lateral("h", name="V", value=_argument(bm, "V", V, (n_hidden, n_hidden)))],
        visible=["x"],
    )


def Ising(edges, couplings=None, fields=None, *, n: int | None = None) -> EnergyModel:
    """Ising model ``E(s) = -sum_e J_e s_i s_j - sum_i h_i s_i`` over spins ``s`` in {-1, +1}.

    Parameters
    ----------
    edges : sequence of (int, int)
        The interacting pairs: distinct pairs of distinct spin indices in ``[0, n)``.
    couplings : float or array_like, optional
        ``J`` per edge (a scalar is broadcast; an array has one entry per edge); 1.0 when
        omitted.
    fields : float or array_like, optional
        ``h`` per spin (a scalar is broadcast; an array has one entry per spin); when given,
        a ``Bias`` term named ``"h"`` is added.
    n : int, optional
        Number of spins (default: the length of ``fields`` when it is an array, otherwise
        the largest index in ``edges`` plus one).

    Raises
    ------
    ValueError
        For an invalid edge (see ``pe.SparsePairwise``), or ``couplings``/``fields`` whose
        length is not the number of edges/spins (the message gives both lengths).

    Examples
    --------
    >>> import pgm_energy as pe
    >>> ring = pe.Ising([(0, 1), (1, 2), (2, 0)], couplings=0.5)
    >>> float(ring.energy({"s": [[1, 1, 1]]})[0])
    -1.5
    """
    e = as_index_tuples(edges, "Ising edges", kind="edge", size=2)
    reach = int(e.max()) + 1 if e.size else 0
    J = np.asarray(1.0 if couplings is None else couplings, dtype=float)
    if J.ndim > 1 or (J.ndim == 1 and len(J) != len(e)):
        raise ValueError(f"Ising: couplings must be a scalar or have one entry per edge: "
                         f"expected length {len(e)}, got "
                         + (f"length {len(J)}" if J.ndim == 1 else f"shape {J.shape}"))
    h = None if fields is None else np.asarray(fields, dtype=float)
    if h is not None and h.ndim > 1:
        raise ValueError(f"Ising: fields must be a scalar or have one entry per spin, got "
                         f"shape {h.shape}")
    if n is not None:
        n = positive_int(n, "n")
        check_index_range(e, n, "Ising edges", kind="edge", group="s")
        if h is not None and h.ndim == 1 and len(h) != n:
            raise ValueError(f"Ising: fields must have one entry per spin: expected length "
                             f"n = {n}, got length {len(h)}")
    elif h is not None and h.ndim == 1:
        if len(h) < reach:
            raise ValueError(f"Ising: fields must have one entry per spin: expected length "
                             f"{reach} (the edges reach spin {reach - 1}), got length {len(h)}")
        n = len(h)
    elif reach:
        n = reach
    else:
        raise ValueError("Ising: give n= (no edges and no per-spin fields to size the model)")
    terms = [SparsePairwise("s", e, name="J", value=np.broadcast_to(J, (len(e),)))]
    if h is not None:
        terms.append(Bias("s", name="h", value=np.broadcast_to(h, (n,))))
    return EnergyModel(units={"s": Spin(n)}, terms=terms, visible=["s"])


def DBM(layer_sizes: Sequence[int], *, rng=None) -> EnergyModel:
    """Deep Boltzmann machine (Salakhutdinov & Hinton 2009): binary layers ``x, h1, h2, ...``
    coupled only to their neighbours,

        E(x, h1, ..., hL) = -b.x - sum_l c_l.h_l - h1^T W1 x - sum_{l>1} h_l^T W_l h_{l-1}.

    Groups ``"x"`` (visible), ``"h1"``, ``"h2"``, ...; parameters ``b`` (n_x,), ``c1``,
    ``c2``, ... and ``W1`` (n_h1, n_x), ``W2`` (n_h2, n_h1), .... Weights start as
    ``N(0, 0.01^2)`` draws from ``rng``, biases as zeros. The layers alternate: given the
    odd layers the even ones (x, h2, ...) are independent, and the reverse, so the exact
    functions enumerate the smaller alternation and sum the other in closed form, and the
    Gibbs sampler updates the two alternations as blocks.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_x, n_h1, n_h2, ...]``: at least two layers, each of at least one unit.
    rng : None, int or numpy.random.Generator
        The source of the initial weights.

    Raises
    ------
    TypeError
        ``layer_sizes`` is not a sequence of ints.
    ValueError
        Fewer than two layers, or a layer size below 1.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> dbm = pe.DBM([9, 8, 6], rng=0)
    >>> list(dbm.units), dbm.params["W2"].shape
    (['x', 'h1', 'h2'], (6, 8))
    """
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
        if not isinstance(layer_sizes, np.ndarray):
            raise TypeError(f"DBM: layer_sizes must be a sequence of ints [n_x, n_h1, ...], "
                            f"got {layer_sizes!r}")
    sizes = [positive_int(n, f"DBM: layer_sizes[{i}]") for i, n in enumerate(layer_sizes)]
    if len(sizes) < 2:
        raise ValueError(f"DBM: layer_sizes needs at least two layers (visible and one "
                         f"hidden), got {list(layer_sizes)!r}")
    gen = np.random.default_rng(rng)
    names = ["x"] + [f"h{l}" for l in range(1, len(sizes))]
    terms = [Bias("x", name="b")]
    terms += [Bias(names[l], name=f"c{l}") for l in range(1, len(sizes))]
    terms += [Pairwise(names[l], names[l - 1], name=f"W{l}",
                       value=0.01 * gen.standard_normal((sizes[l], sizes[l - 1])))
              for l in range(1, len(sizes))]
    return EnergyModel(units={g: Binary(n) for g, n in zip(names, sizes)}, terms=terms,
                       visible=["x"])


def _argument(preset: str, name: str, value, shape: tuple):
    """``value`` checked against ``shape`` (None passes: the term makes zeros)."""
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{preset}: {name} must be a numeric array, got "
                        f"{type(value).__name__}") from None
    if arr.shape != tuple(shape):
        raise ValueError(f"{preset}: {name} must have shape {tuple(shape)}, got shape "
                         f"{arr.shape}")
    return arr


def _small_symmetric(gen, n):
    A = 0.01 * gen.standard_normal((n, n))
    A = np.triu(A, 1)
    return A + A.T
