r"""Cluster moves: Swendsen-Wang and Wolff, the Python face of the ``_cluster`` kernels.

Near a phase transition single-site Gibbs updates slow down by orders of magnitude; cluster
moves flip whole correlated regions at once. :class:`ClusterSampler` serves

* **pairwise binary/spin models** on any graph (RBMs, Boltzmann machines, Ising models),
  couplings of either sign and fields, with ``"swendsen-wang"`` or ``"wolff"``;
* **Potts models** (every unit :class:`~pgm_energy.Categorical` with one ``k``, delta
  couplings), with ``"swendsen-wang"``.

Spin form. Over the slots of the flat graph (:mod:`pgm_energy.graph`) a binary or spin unit
holds ``v_u = low_u + scale_u b_u``, ``b_u`` in {0, 1}. With ``s_u = 2 b_u - 1`` in {-1, +1},
``v_u = c_u + a_u s_u`` (``a_u = scale_u / 2``, ``c_u = low_u + scale_u / 2``: 1, 0 for
spins, 1/2, 1/2 for binary units), and up to a constant

.. math::

    E(s) = -\sum_e J_e s_i s_j - \sum_u h_u s_u, \qquad J_e = a_i a_j\,\mathrm{coupling}_e,
    \quad h_u = a_u \big(\mathrm{field}_u + \sum_{w \sim u} \mathrm{coupling}_{uw} c_w\big).

The fields enter through a ghost spin fixed at +1, coupled to unit ``u`` by ``h_u``. Bonds
(each drawn at the chain's inverse temperature ``beta``):

* an edge whose bond is satisfied, ``J_e s_i s_j > 0``, is bonded with probability
  ``p_e = 1 - exp(-2 beta |J_e|)`` (frustrated models are valid, only slower);
* unit ``u`` is bonded to the ghost when ``h_u s_u > 0`` with probability
  ``1 - exp(-2 beta |h_u|)``; a clamped unit always (so it never moves).

Swendsen-Wang then flips every cluster without the ghost with probability 1/2. Wolff grows
one cluster from a random free seed and flips it; a cluster that reaches the ghost flips the
ghost too, which, the energy being even under a global flip, is the same as flipping the free
units *outside* it, and that is what is done (the ghost stays +1).

Potts form. Every unit is categorical with ``k`` values ``x_u``; the coupling block between two
sites must be ``J I + C`` (``C`` constant, which only shifts ``E``) with ``J >= 0``:
``E(x) = -sum_e J_e [x_i = x_j] - sum_u f_{u, x_u}`` up to a constant, ``f`` the slot fields.
Equal neighbours are bonded with probability ``1 - exp(-beta J_e)``; a cluster holding a
clamped site keeps its colour, every other cluster draws its colour from the heat bath
``P(c) ∝ exp(beta sum_{u in C} f_{u, c})`` (exact given the bonds, the fields factorising over
sites).

Sweeps. A Swendsen-Wang sweep is one bond draw and one cluster decomposition of the whole
graph. A Wolff sweep is one cluster, grown and flipped. (Not "clusters until their sizes add
up to N": a stopping rule that depends on the clusters grown makes the states seen at the
end of a sweep size-biased, towards states whose clusters are large, and the test against
the exact distribution catches it. ``N / mean_cluster_size`` Wolff sweeps visit about N
units.)

Draw order (per chain, from its own xoshiro256+ stream; the numpy twin in
``tests/reference/cluster.py`` reproduces it bit for bit):

* Swendsen-Wang, spins: the edge bonds in bond order (edges ``(i, j)``, ``i < j``, stably
  sorted by ``j``), each from a 52-bit uniform ``U = c 2^39 + L``: a satisfied edge with at
  least one free end bonds when ``U < ceil(p_e 2^52)``, i.e. ``U / 2^52 < p_e``. One 64-bit
  draw per four edges gives their 13-bit chunks ``c`` (its top 52 bits, highest first; a
  last group of fewer edges takes a draw too); ``L`` is drawn (the top 39 bits of one more
  draw, at once) only when ``c`` ties with the top 13 bits of the threshold, satisfied edge
  or not. Then, unit by unit, one uniform per free unit with ``h_u s_u > 0`` (bonded to the
  ghost when ``u < p_u``); then one 64-bit draw per block of 32 units, in unit order: the
  cluster whose smallest unit is ``u`` (not the ghost's) flips when bit ``63 - (u mod 32)``
  of its block's draw is 1.
* Wolff: one uniform for the seed, ``free[floor(u n_free)]`` (free units in order); the
  cluster grows from a FIFO queue (the seed first): a popped unit ``x`` draws one uniform
  per neighbour ``y`` (in increasing order) not yet in the cluster with ``J s_x s_y > 0``
  (joins when ``u < p_e``), then, if the ghost is not yet in, joins it without a draw when
  clamped, else with one draw when ``h_x s_x > 0``; the popped ghost takes every unit not
  yet in, in order: clamped ones without a draw, free ones with ``h_u s_u > 0`` with one.
  No draw to flip.
* Swendsen-Wang, Potts: the edge bonds drawn as for spins; an edge with at least one free
  end, ``J_e > 0`` and equal colours bonds when ``U < ceil(p_e 2^52)``; then one uniform per
  cluster without a clamped site, in the order of its smallest site: colour ``c`` the first
  whose cumulative weight ``exp(beta F_c - max)`` exceeds ``u`` times their total (``F_c``
  summed over the cluster's sites in order).

Clamps that differ between chains (``run(n, clamp={group: (n_chains, n)})`` with NaN marking
free units): each chain treats its own held units as clamped above (bonded to the ghost, or
keeping their colour) and draws from its own free units (Wolff's seed list); an edge whose
ends every chain holds never bonds, and every edge takes its chunk as before.

The sampler's state, temperature, clamping and sampling loop are those of every sampler of
many chains (``sampling._ChainSampler``, which :class:`~pgm_energy.GibbsSampler` shares,
reading the chains through this module's engine), and its state value is a
:class:`~pgm_energy.sampling.GibbsState`, so checkpoints and tempering treat both alike.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ._kernels import _cluster
from .graph import symmetric_csr
from .model import EnergyModel
from .sampling import _ChainSampler

__all__ = ["ClusterSampler", "ALGORITHMS"]

ALGORITHMS = ("swendsen-wang", "wolff")

_SUPPORTED = ("ClusterSampler serves pairwise models of binary/spin units (couplings of either "
              "sign and fields, RBMs included) with 'swendsen-wang' or 'wolff', and Potts "
              "models (every unit pe.Categorical with one k, coupling blocks J * I with "
              "J >= 0, any fields) with 'swendsen-wang'")


class ClusterSampler(_ChainSampler):
    r"""Chains of cluster moves (Swendsen-Wang or Wolff) over ``P(s) ∝ exp(-beta E(s))``.

    For pairwise binary/spin models (any graph, couplings of either sign, fields through a
    ghost spin) and, with Swendsen-Wang, Potts models; the bond probabilities, the
    treatment of fields and clamped units and the exact draw order are in
    :mod:`pgm_energy.cluster`. Same interface as :class:`~pgm_energy.GibbsSampler`:
    :meth:`run`, :meth:`sample`, :attr:`state`, :attr:`beta`, :meth:`get_state` and
    :meth:`load_state` (a :class:`~pgm_energy.sampling.GibbsState`).

    Parameters
    ----------
    model : EnergyModel
        Binary/spin units and pairwise terms only, or categorical units with delta couplings
        (others are refused with a ``ValueError``: use :class:`~pgm_energy.GibbsSampler`).
        Its parameters are re-read at every :meth:`run`.
    n_chains : int
        Number of independent chains (>= 1).
    algorithm : {"swendsen-wang", "wolff"}
        Swendsen-Wang: every sweep decomposes the whole graph into clusters and flips each
        with probability 1/2 (Potts: draws each one's colour). Wolff (binary/spin models
        only): every sweep grows one cluster from a random free seed and flips it; about
        ``n_units / mean_cluster_size`` Wolff sweeps visit each unit once.
    beta : float or array of shape (n_chains,)
        Inverse temperature (> 0), for all chains or one per chain.
    rng : None, int or numpy.random.Generator
        Seeds the chains' streams and their random initial states (the same initial states
        as a :class:`~pgm_energy.GibbsSampler` with the same seed).
    n_threads : int, optional
        Threads across chains (default: all cores); results do not depend on it.
    initial_state : dict, optional
        ``{group: (n_chains, n) or (n,)}`` starting values; uniform random by default.

    Notes
    -----
    :attr:`mean_cluster_size` reports the mean number of free units per cluster drawn, a
    measure of how far each move reaches (and, for Wolff, how many sweeps make one pass over
    the units).

    Examples
    --------
    >>> import numpy as np
    >>> import pgm_energy as pe
    >>> ring = [(i, (i + 1) % 10) for i in range(10)]
    >>> model = pe.Ising(ring, np.ones(10), fields=0.1 * np.ones(10))
    >>> sampler = pe.ClusterSampler(model, n_chains=4, algorithm="wolff", rng=0)
    >>> sampler.sample(3, burn_in=10)["s"].shape
    (3, 4, 10)
    >>> saved = sampler.get_state()
    >>> first = sampler.run(2).state["s"]
    >>> sampler.load_state(saved)
    >>> bool((sampler.run(2).state["s"] == first).all())
    True
    """

    def __init__(self, model: EnergyModel, n_chains: int = 100,
                 algorithm: str = "swendsen-wang", beta: float | np.ndarray = 1.0, rng=None,
                 *, n_threads: int | None = None, initial_state: Mapping | None = None):
        graph = self._setup(model, n_chains, n_threads)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        self.algorithm = algorithm
        engine = (_PottsEngine if _potts(graph, algorithm) else _SpinEngine)(
            graph, algorithm, self.n_chains)
        engine.form(graph)                       # refuses a Potts block that is not J I + C
        self._start(engine, beta, rng, initial_state)

    def _config(self) -> dict:
        return {"algorithm": self.algorithm}

    @property
    def mean_cluster_size(self) -> float:
        """Mean number of free units per cluster drawn, over all chains since the sampler
        was made (NaN before the first cluster). Not part of :meth:`get_state`."""
        clusters, units = self._engine.stats.sum(axis=0)
        return float(units / clusters) if clusters else float("nan")

    def __repr__(self) -> str:
        return (f"ClusterSampler({self.model!r}, n_chains={self.n_chains}, "
                f"algorithm={self.algorithm!r})")


def _potts(graph, algorithm: str) -> bool:
    """Whether ``graph`` is served as a Potts model (True) or in spin form (False); raises
    ``ValueError`` for models neither serves."""
    kinds = {g: u.kind for g, u in graph.units.items()}
    other = {g: k for g, k in kinds.items() if k not in ("binary", "spin", "categorical")}
    if other:
        raise ValueError(f"{_SUPPORTED}; this model has units of kind {other}: use "
                         "pe.GibbsSampler")
    if graph.generic_terms:
        names = ", ".join(type(t).__name__ for t in graph.generic_terms)
        raise ValueError(f"{_SUPPORTED}; this model has terms without a pairwise compiled "
                         f"form ({names}): use pe.GibbsSampler")
    categorical = [g for g, k in kinds.items() if k == "categorical"]
    if not categorical:
        return False
    if len(categorical) < len(kinds):
        raise ValueError(f"{_SUPPORTED}; this model mixes categorical groups {categorical} "
                         "with binary/spin ones: use pe.GibbsSampler")
    ks = {g: graph.units[g].k for g in categorical}
    if len(set(ks.values())) > 1:
        raise ValueError(f"{_SUPPORTED}; this model's categorical groups have different k "
                         f"{ks}: use pe.GibbsSampler")
    if algorithm != "swendsen-wang":
        raise ValueError(f"algorithm={algorithm!r} is not available for Potts (categorical) "
                         "models; use algorithm='swendsen-wang'")
    return True


class _Engine:
    """The chains of one algorithm, their graph (edges in order and CSR rows) and their
    cluster counters; subclasses hold the state and the model's current form."""

    def __init__(self, n_sites: int, site_edges: np.ndarray, n_chains: int):
        self.n_chains = n_chains
        self.edge_i = np.ascontiguousarray(site_edges[:, 0], np.int32)
        self.edge_j = np.ascontiguousarray(site_edges[:, 1], np.int32)
        indptr, neighbour, edge_of = symmetric_csr(n_sites, site_edges)
        self.csr = (indptr, neighbour.astype(np.int32), edge_of.astype(np.int32))
        #: (n_chains, 2): clusters drawn and free units in them, per chain
        self.stats = np.zeros((n_chains, 2), np.int64)
        self._seen = None            # (graph, graph.version) the form was made from

    def form(self, graph):
        """(couplings, fields) of the kernel, recomputed when the parameters changed."""
        if self._seen != (graph, graph.version):
            self._form = self.compute_form(graph)
            self._seen = (graph, graph.version)
        return self._form

    def run_kernel(self, state, graph, free, betas, streams, n_sweeps, n_threads, code, k):
        """``free``: (n_sites,) for every chain, or (n_chains, n_sites) per chain."""
        coupling, field = self.form(graph)
        free = np.ascontiguousarray(np.atleast_2d(free), np.uint8)
        _cluster.sweep(state, self.edge_i, self.edge_j, coupling, *self.csr, field, free,
                       betas, streams, self.stats, code, k, n_sweeps, n_threads)


class _SpinEngine(_Engine):
    """Binary/spin models: int8 spins (n_chains, n_units), the spin form of the module
    docstring."""

    def __init__(self, graph, algorithm, n_chains):
        super().__init__(graph.n_units, graph.edges, n_chains)
        self.code = _cluster.WOLFF if algorithm == "wolff" else _cluster.SWENDSEN_WANG
        self.low, self.scale = graph.low, graph.scale
        self.spins = np.ones((n_chains, graph.n_units), np.int8)

    def compute_form(self, graph):
        """``J_e = a_i a_j coupling_e``, ``h_u = a_u (field_u + sum_w coupling_uw c_w)``."""
        a, c = graph.scale / 2, graph.low + graph.scale / 2
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        field = graph.field.copy()
        field += np.bincount(i, weights=graph.coupling * c[j], minlength=graph.n_units)
        field += np.bincount(j, weights=graph.coupling * c[i], minlength=graph.n_units)
        return np.ascontiguousarray(graph.coupling * a[i] * a[j]), a * field

    def flat(self):
        return self.low + self.scale * (self.spins + 1.0) / 2

    def load(self, flat):
        self.spins[...] = 2 * np.rint((flat - self.low) / self.scale) - 1

    def sweep(self, graph, free, betas, streams, n_sweeps, n_threads, keep=None):
        free = free if keep is None else free & ~keep
        self.run_kernel(self.spins, graph, free, betas, streams, n_sweeps, n_threads,
                        self.code, 0)


class _PottsEngine(_Engine):
    """Potts models: uint16 colours (n_chains, n_sites); the coupling block of every pair of
    coupled sites must be ``J I + C``, ``J >= 0`` (checked whenever the parameters change)."""

    def __init__(self, graph, algorithm, n_chains):
        self.k = int(graph.site_size[0]) if graph.n_sites else 2
        self.n_sites = graph.n_sites
        sites = graph.site[graph.edges]                       # (n_edges, 2), i < j
        pairs, self.pair_of = np.unique(sites[:, 0] * graph.n_sites + sites[:, 1],
                                        return_inverse=True)
        self.pairs = np.stack([pairs // max(graph.n_sites, 1),
                               pairs % max(graph.n_sites, 1)], axis=1).reshape(-1, 2)
        super().__init__(graph.n_sites, self.pairs, n_chains)
        slot = graph.edges - graph.site_start[sites]          # the values a, b of each edge
        self.diagonal = slot[:, 0] == slot[:, 1]
        self.colours = np.zeros((n_chains, graph.n_sites), np.uint16)

    def compute_form(self, graph):
        """Per pair of sites ``J`` from its block ``J I + C``; the slot fields (n_sites * k)."""
        n_pairs, k = len(self.pairs), self.k
        d_low, d_high = _value_range(self.pair_of[self.diagonal], graph.coupling[self.diagonal],
                                     n_pairs, k)
        o_low, o_high = _value_range(self.pair_of[~self.diagonal],
                                     graph.coupling[~self.diagonal], n_pairs, k * (k - 1))
        bad = np.flatnonzero((d_low != d_high) | (o_low != o_high))
        if bad.size:
            i, j = self.pairs[bad[0]]
            raise ValueError(f"{_SUPPORTED}; the coupling block of sites {i} and {j} is not "
                             "J * identity (plus a constant): use pe.GibbsSampler")
        coupling = d_low - o_low
        if np.any(coupling < 0):
            i, j = self.pairs[np.argmin(coupling)]
            raise ValueError(f"{_SUPPORTED}; sites {i} and {j} have a negative Potts coupling "
                             f"J = {coupling.min():.6g} (antiferromagnetic): use "
                             "pe.GibbsSampler")
        return coupling, np.ascontiguousarray(graph.field)

    def flat(self):
        onehot = self.colours[:, :, None] == np.arange(self.k)
        return onehot.reshape(self.n_chains, -1).astype(np.float64)

    def load(self, flat):
        self.colours[...] = np.reshape(flat, (self.n_chains, self.n_sites, self.k)).argmax(-1)

    def sweep(self, graph, free, betas, streams, n_sweeps, n_threads, keep=None):
        free = free if keep is None else free & ~keep
        self.run_kernel(self.colours, graph, free[..., graph.site_start[:-1]], betas, streams,
                        n_sweeps, n_threads, _cluster.POTTS, self.k)


def _value_range(pair, value, n_pairs, size):
    """Smallest and largest entry of each pair's ``size`` block entries, of which ``value``
    lists those present (for ``pair``); absent entries are 0."""
    low, high = np.full(n_pairs, np.inf), np.full(n_pairs, -np.inf)
    np.minimum.at(low, pair, value)
    np.maximum.at(high, pair, value)
    partial = np.bincount(pair, minlength=n_pairs) < size
    low[partial] = np.minimum(low[partial], 0.0)
    high[partial] = np.maximum(high[partial], 0.0)
    return low, high
