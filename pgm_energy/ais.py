"""Annealed importance sampling (AIS): log Z and log-likelihoods of models too large to enumerate.

AIS (Neal 2001) walks runs from a base model with a known partition function ``Z_0`` to the
target through the geometric path

    f_k(s) = exp(-beta_k E(s) - (1 - beta_k) E_0(s)),    0 = beta_0 < ... < beta_K = 1,

with ``E_0(s) = -sum_i a_i s_i`` (independent units). A run starts from an exact sample of
the base, and at each step adds ``log f_k(s) - log f_{k-1}(s)`` to its log weight ``log w``,
then makes one Gibbs transition that leaves ``f_k`` invariant. ``E[w] = Z / Z_0``, so

    log Z ≈ log Z_0 + log mean_r w_r.

Models whose hidden units are conditionally independent given the visible ones, and the
visible ones given the hidden (RBMs), are annealed on the visible marginal with the hidden
units summed in closed form (Salakhutdinov & Murray 2008); a deep Boltzmann machine likewise
on its even layers ``x, h2, ...`` with the odd ones summed (any model whose groups split in
two sides with no coupling inside a side, the visible groups on the kept side):

    f_k(x) = exp((1 - beta_k) a.x + beta_k b.x) prod_j (1 + exp(beta_k (c_j + W_j x)))

(in the binary form of the model, see :meth:`FlatGraph.binary_form`), with the compiled
kernel ``_ais.anneal_bipartite`` walking the schedule for blocks of runs on threads, in
chunks of steps so that Ctrl-C is seen between them (:mod:`pgm_energy._run`); it keeps each
run's fields ``c + W x`` and ``b + W^T h`` up to date by adding the rows of the units that
changed, or by a BLAS product over the block when many changed. Models with Gaussian
visible units and discrete hidden ones are annealed on ``x`` from a Gaussian base
(:class:`_GaussianPath`; users' terms over ``x`` by a Metropolis step). Other models are
annealed on the joint state by the Gibbs sampler (``pe.GibbsSampler``), tempered.
Every run has its own random stream, so the estimate depends on the seed only, never on the
thread count.

Reverse AIS walks the same path from 1 down to 0, starting from samples of the target; its
weights estimate ``Z_0 / Z``. The forward estimate of ``log Z`` is too low on average (by
Jensen's inequality) and the reverse one too high, so the two bracket ``log Z``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import threadpoolctl
from scipy.special import expit, logit, logsumexp

from ._checks import int_at_least, n_threads as check_n_threads
from ._kernels import _ais
from ._run import timed_chunks
from .model import EnergyModel
from .graph import site_softmax
from ._chains import chain_streams, padded_streams
from .distributed import as_runner, n_pieces_for
from .sampling import GibbsSampler, GibbsState
from .terms import Bias
from .units import Gaussian

__all__ = ["AISEstimate", "LogLikelihoodEstimate", "log_partition", "reverse_log_partition",
           "log_likelihood", "sigmoid_schedule", "AISMonitor"]

DEFAULT_N_BETAS = 1000
#: Runs per block of the bipartite kernel at most: blocks share the runs evenly, and each
#: block's BLAS products are large enough to reuse the weights from cache.
RUN_BLOCK = 64
#: The bipartite kernel updates a layer's field on the other layer by adding the rows of the
#: units that changed while at most this fraction of them changed, else by a BLAS product.
DELTA_FRACTION = 0.1
# Seconds per unit update of the kernels (about 1 ns here), to size executor pieces.
_SECONDS_PER_UPDATE = 1e-9
BASES = ("biases", "uniform")


@dataclass(frozen=True)
class AISEstimate:
    """An AIS estimate of ``log Z`` with its uncertainty.

    Attributes
    ----------
    log_z : float
        The estimate: ``log Z_0 + log mean_r w_r`` (forward) or ``log Z_0 - log mean_r w_r``
        (reverse), the mean taken stably in log space.
    stderr : float
        Standard error of ``log_z`` from the spread of the weights (delta method):
        ``std(w) / (sqrt(n_runs) mean(w))``, computed on ``w / max(w)``; ``inf`` for one run.
    ess : float
        Effective sample size of the weights, ``(sum w)^2 / sum w^2``, between 1 and n_runs.
    log_weights : numpy.ndarray
        Per-run log weights, shape ``(n_runs,)``.
    log_z_base : float
        ``log Z_0`` of the base model (in the model's own energy scale).
    direction : {"forward", "reverse"}
    n_betas : int
        Number of inverse temperatures of the schedule.
    confidence : float
        Probability with which :attr:`lower` (forward) or :attr:`upper` (reverse) holds.
    """

    log_z: float
    stderr: float
    ess: float
    log_weights: np.ndarray = field(repr=False)
    log_z_base: float
    direction: str
    n_betas: int
    confidence: float = 0.95

    @property
    def lower(self) -> float | None:
        """A lower bound on ``log Z`` that holds with probability >= ``confidence``.

        Forward AIS only (``None`` for reverse): the weights' mean is unbiased for ``Z/Z_0``,
        so by Markov's inequality ``log Z >= log_z - log(1 / (1 - confidence))`` with that
        probability, however poorly the runs mixed.
        """
        if self.direction != "forward":
            return None
        return self.log_z + float(np.log1p(-self.confidence))

    @property
    def upper(self) -> float | None:
        """An upper bound on ``log Z`` that holds with probability >= ``confidence``.

        Reverse AIS only (``None`` for forward): its weights' mean is unbiased for ``Z_0/Z``
        when the runs start from exact samples of the target, so
        ``log Z <= log_z + log(1 / (1 - confidence))`` with that probability.
        """
        if self.direction != "reverse":
            return None
        return self.log_z - float(np.log1p(-self.confidence))


@dataclass(frozen=True)
class LogLikelihoodEstimate:
    """Per-sample log-likelihoods ``log P(x) = -F(x) - log Z`` with ``log Z`` from AIS.

    Attributes
    ----------
    values : numpy.ndarray
        ``-F(x) - log_partition.log_z`` per sample, shape ``(batch,)``.
    mean : float
        Their mean.
    stderr : float
        Standard error from the AIS estimate of ``log Z`` (it shifts every value alike).
    log_partition : AISEstimate
        The forward estimate of ``log Z``.
    reverse : AISEstimate or None
        The reverse estimate, when samples of the model were given.
    """

    values: np.ndarray = field(repr=False)
    mean: float
    stderr: float
    log_partition: AISEstimate = field(repr=False)
    reverse: AISEstimate | None = field(default=None, repr=False)

    @property
    def upper(self) -> float:
        """Upper bound on the mean log-likelihood, from :attr:`AISEstimate.lower` of log Z."""
        return self.mean + self.log_partition.log_z - self.log_partition.lower

    @property
    def lower(self) -> float | None:
        """Lower bound on the mean log-likelihood from the reverse estimate (None without)."""
        if self.reverse is None:
            return None
        return self.mean + self.log_partition.log_z - self.reverse.upper


def sigmoid_schedule(n_betas: int, delta: float = 4.0) -> np.ndarray:
    """The sigmoidal annealing schedule of Grosse, Ghahramani & Adams (2016).

    ``beta_k = (s_k - s_0) / (s_{K} - s_0)``, ``s_k = sigmoid(delta (2 k / K - 1))``,
    ``k = 0 .. K = n_betas - 1``: strictly increasing from 0 to 1, denser at both ends.

    Examples
    --------
    >>> import pgm_energy as pe
    >>> betas = pe.ais.sigmoid_schedule(5)
    >>> float(betas[0]), float(betas[-1]), len(betas)
    (0.0, 1.0, 5)
    """
    n_betas = int_at_least(n_betas, 2, "n_betas")
    s = expit(delta * (2.0 * np.arange(n_betas) / (n_betas - 1) - 1.0))
    betas = (s - s[0]) / (s[-1] - s[0])
    betas[0], betas[-1] = 0.0, 1.0
    return betas


def log_partition(model: EnergyModel, n_betas: int | None = None, n_runs: int = 100, rng=0, *,
                  base="biases", betas=None, dtype=np.float64,
                  n_threads: int | None = None, executor=None) -> AISEstimate:
    """Estimate ``log Z = log sum_s exp(-E(s))`` by forward annealed importance sampling.

    ``log Z ≈ log Z_0 + log mean_r w_r``, ``log w_r = sum_k log f_k(s_{r,k-1}) -
    log f_{k-1}(s_{r,k-1})`` along ``f_k = exp(-beta_k E - (1 - beta_k) E_0)`` (module
    docstring). ``E[w] = Z / Z_0``, so the estimate of ``log Z`` is low on average (Jensen)
    and :attr:`AISEstimate.lower` is a high-probability lower bound.

    Parameters
    ----------
    model : EnergyModel
        A model whose terms compile to the flat graph.
    n_betas : int, optional
        Number of inverse temperatures (>= 2) of the :func:`sigmoid_schedule`; default 1000.
    n_runs : int
        Number of independent annealing runs (>= 1).
    rng : None, int or numpy.random.Generator
        Seeds the runs' streams and their initial states.
    base : {"biases", "uniform"} or array_like or dict
        The base model ``E_0 = -sum_i a_i s_i``: the target's own unit fields ("biases"),
        zero fields ("uniform"), or data of the visible groups (an array when there is one
        visible group, else a dict), whose smoothed unit means ``p_i`` give the base rate
        ``P_0(unit on) = p_i`` for the visible units (hidden units keep their own fields).
    betas : array_like, optional
        An explicit schedule instead of ``n_betas``: strictly increasing from 0 to 1.
    dtype : {numpy.float64, numpy.float32}
        Unit and weight-matrix precision of the RBM kernel (float32 uses ``sgemm``; fields and
        log weights stay double). The joint path runs in float64 only.
    n_threads : int, optional
        Threads over runs (default: all cores). BLAS uses its own thread pool (set with
        ``threadpoolctl``). The estimate does not depend on either.
    executor : concurrent.futures.Executor or pgm_energy.distributed.Runner, optional
        Runs blocks of runs (each about a second of work) on its workers; every run's
        stream is drawn here first, so the estimate is the same as without it
        (:mod:`pgm_energy.distributed`).

    Returns
    -------
    AISEstimate

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> model = pe.RBM(20, 10, rng=0)
    >>> est = pe.ais.log_partition(model, n_betas=200, n_runs=50, rng=0)
    >>> abs(est.log_z - pe.exact.log_partition(model)) < 5 * est.stderr + 1e-3
    True
    """
    path = _path(model, base, dtype)
    schedule = _schedule(n_betas, betas)
    n_runs = int_at_least(n_runs, 1, "n_runs")
    gen = np.random.default_rng(rng)
    state = path.base_sample(gen, n_runs)
    log_w = path.anneal(state, schedule, gen, check_n_threads(n_threads), as_runner(executor))
    return _estimate(log_w, path.log_z_base, "forward", len(schedule))


def reverse_log_partition(model: EnergyModel, samples, n_betas: int | None = None, rng=0, *,
                          base="biases", betas=None, dtype=np.float64,
                          n_threads: int | None = None, executor=None) -> AISEstimate:
    """Estimate ``log Z`` by reverse AIS, from samples of the target down to the base.

    One run per sample walks the schedule from ``beta = 1`` to 0; its weight ``w_r`` has
    ``E[w] = Z_0 / Z`` when the samples are exact draws of the model, so
    ``log Z ≈ log Z_0 - log mean_r w_r`` is high on average and :attr:`AISEstimate.upper` is a
    high-probability upper bound. Samples from long (persistent) Gibbs chains are close to
    that; data make it a heuristic only.

    Parameters
    ----------
    model : EnergyModel
    samples : array_like or dict
        States of the target, ``(n_runs, n)`` per group: the visible groups suffice for an
        RBM-like model (hidden units summed out), the other models need every group (e.g.
        ``GibbsSampler.state``).
    n_betas, rng, base, betas, dtype, n_threads, executor :
        As for :func:`log_partition`.

    Returns
    -------
    AISEstimate

    Examples
    --------
    >>> import pgm_energy as pe
    >>> model = pe.RBM(20, 10, rng=0)
    >>> chains = pe.GibbsSampler(model, n_chains=50, rng=1).run(200)
    >>> est = pe.ais.reverse_log_partition(model, chains.state["x"], n_betas=200, rng=0)
    >>> est.direction
    'reverse'
    """
    path = _path(model, base, dtype)
    schedule = _schedule(n_betas, betas)[::-1].copy()
    state = path.load(samples)
    log_w = path.anneal(state, schedule, np.random.default_rng(rng), check_n_threads(n_threads),
                        as_runner(executor))
    return _estimate(log_w, path.log_z_base, "reverse", len(schedule))


def log_likelihood(model: EnergyModel, X, n_betas: int | None = None, n_runs: int = 100,
                   rng=0, *, base="data", samples=None, betas=None, dtype=np.float64,
                   n_threads: int | None = None, executor=None) -> LogLikelihoodEstimate:
    """Estimate ``log P(x) = -F(x) - log Z`` for each row of ``X``, with ``log Z`` from AIS.

    The free energy ``F(x)`` is exact (:meth:`EnergyModel.free_energy`); ``log Z`` comes from
    :func:`log_partition`, whose low bias makes the log-likelihood high on average. With
    ``samples`` of the model, :func:`reverse_log_partition` also runs and
    :attr:`LogLikelihoodEstimate.lower` brackets the mean from below.

    Parameters
    ----------
    model : EnergyModel
    X : array_like or dict
        Visible data: an array when the model has one visible group, else a dict.
    n_betas, n_runs, rng, betas, dtype, n_threads, executor :
        As for :func:`log_partition`.
    base : "data", "biases", "uniform", array_like or dict
        The base model; "data" (default) fits the base rate of the visible units to ``X``.
    samples : array_like or dict, optional
        Samples of the model for reverse AIS (see :func:`reverse_log_partition`).

    Returns
    -------
    LogLikelihoodEstimate

    Examples
    --------
    >>> import numpy as np, pgm_energy as pe
    >>> model = pe.RBM(12, 6, rng=0)
    >>> X = np.random.default_rng(0).integers(0, 2, size=(30, 12))
    >>> est = pe.ais.log_likelihood(model, X, n_betas=200, n_runs=50, rng=0)
    >>> est.values.shape
    (30,)
    """
    data = model.as_state(X, model.visible, what="X")
    if len(next(iter(data.values()))) == 0:
        raise ValueError("X has no rows: the log-likelihood needs at least one sample")
    if isinstance(base, str) and base == "data":
        base = X
    gen = np.random.default_rng(rng)
    options = dict(n_betas=n_betas, base=base, betas=betas, dtype=dtype, n_threads=n_threads,
                   executor=executor)
    forward = log_partition(model, n_runs=n_runs, rng=gen, **options)
    reverse = (None if samples is None
               else reverse_log_partition(model, samples, rng=gen, **options))
    values = -model.free_energy(X) - forward.log_z
    return LogLikelihoodEstimate(values, float(values.mean()), forward.stderr, forward, reverse)


class AISMonitor:
    """A ``pe.fit`` callback that estimates ``log Z`` (and the log-likelihood) every few epochs.

    Called as ``monitor(model, epoch, history)``; on epochs that are multiples of ``every`` it
    appends the epoch to ``history["ais_epoch"]``, the AIS estimate of ``log Z`` to
    ``history["ais_log_z"]`` and its standard error to ``history["ais_log_z_stderr"]``, and,
    when data ``X`` were given, the mean estimated log-likelihood of ``X`` to
    ``history["ais_log_likelihood"]``.

    Parameters
    ----------
    n_betas : int
        Inverse temperatures per estimate (>= 2).
    n_runs : int
        Runs per estimate (>= 1).
    every : int
        Estimate on epochs divisible by ``every`` (>= 1).
    rng : None, int or numpy.random.Generator
        Turned into one generator at construction; each estimate draws fresh streams from it.
    X : array_like or dict, optional
        Visible data whose log-likelihood to track (e.g. a validation set); also the base rate.
    n_threads : int, optional

    Examples
    --------
    >>> import pgm_energy as pe
    >>> monitor = pe.ais.AISMonitor(n_betas=100, n_runs=20, rng=0)
    >>> history = {}
    >>> monitor(pe.RBM(10, 5, rng=0), 0, history)
    >>> len(history["ais_log_z"])
    1
    """

    def __init__(self, n_betas: int = DEFAULT_N_BETAS, n_runs: int = 100, every: int = 1,
                 rng=None, *, X=None, n_threads: int | None = None):
        self.n_betas = int_at_least(n_betas, 2, "n_betas")
        self.n_runs = int_at_least(n_runs, 1, "n_runs")
        self.every = int_at_least(every, 1, "every")
        self.X = X
        self.n_threads = n_threads
        self._rng = np.random.default_rng(rng)

    def __call__(self, model: EnergyModel, epoch: int, history: dict) -> None:
        if epoch % self.every:
            return
        options = dict(n_betas=self.n_betas, n_runs=self.n_runs, rng=self._rng,
                       n_threads=self.n_threads)
        if self.X is None:
            estimate = log_partition(model, **options)
        else:
            likelihood = log_likelihood(model, self.X, **options)
            estimate = likelihood.log_partition
            history.setdefault("ais_log_likelihood", []).append(likelihood.mean)
        history.setdefault("ais_epoch", []).append(epoch)
        history.setdefault("ais_log_z", []).append(estimate.log_z)
        history.setdefault("ais_log_z_stderr", []).append(estimate.stderr)


# -- the estimate ---------------------------------------------------------------------------
def _estimate(log_w, log_z_base, direction, n_betas) -> AISEstimate:
    """Mean, standard error and ESS of the weights, all from ``w / max(w)``."""
    n = len(log_w)
    if not np.all(np.isfinite(log_w)):
        raise ValueError("AIS produced non-finite log weights: the model's parameters are "
                         "too large to evaluate; rescale them")
    log_mean = float(logsumexp(log_w) - np.log(n))
    ratio = np.exp(log_w - log_w.max())
    stderr = float(ratio.std(ddof=1) / (np.sqrt(n) * ratio.mean())) if n > 1 else np.inf
    ess = float(ratio.sum() ** 2 / (ratio ** 2).sum())
    log_z = log_z_base + log_mean if direction == "forward" else log_z_base - log_mean
    return AISEstimate(log_z, stderr, ess, log_w, log_z_base, direction, n_betas)


# -- annealing paths ------------------------------------------------------------------------
def _path(model, base, dtype):
    """The annealing path for ``model``: bipartite (summed layer) or joint."""
    if not isinstance(model, EnergyModel):
        raise TypeError(f"expected a pe.EnergyModel, got {type(model).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype}")
    graph = model.graph                    # validates: finite parameters, valid laterals
    if graph.continuous.any():
        return _GaussianPath(model, graph, base, dtype)
    form = graph.binary_form(1.0)
    base_field = _base_field(model, graph, base)
    kept_groups = _alternation(model, graph)
    if (kept_groups is not None and not graph.generic_terms and not graph.categorical.any()
            and len(kept_groups) < len(model.units)):
        return _BipartitePath(model, graph, form, base_field, kept_groups, dtype)
    if dtype != np.float64:
        raise ValueError("dtype=float32 is for RBM-like models (hidden units conditionally "
                         "independent given the visible ones and vice versa); this model is "
                         "annealed on the joint state in float64")
    return _JointPath(model, graph, form, base_field)


def _alternation(model, graph) -> list | None:
    """The groups on the visible side of a two-colouring of the groups in which no coupling
    joins two units of one side (an RBM: ``x``; a deep Boltzmann machine: ``x, h2, h4,
    ...``), in model order; None when there is none."""
    names = list(model.units)
    group = np.empty(graph.n_units, np.int64)
    for k, g in enumerate(names):
        group[graph.slots(g)] = k
    pairs = np.unique(np.sort(group[graph.edges], axis=1), axis=0).reshape(-1, 2)
    if np.any(pairs[:, 0] == pairs[:, 1]):
        return None
    side = np.full(len(names), -1)
    for k in [names.index(g) for g in model.visible] + list(range(len(names))):
        if side[k] >= 0:
            continue
        side[k], stack = 0 if names[k] in model.visible else 1, [k]
        while stack:
            a = stack.pop()
            for b in np.concatenate([pairs[pairs[:, 0] == a, 1], pairs[pairs[:, 1] == a, 0]]):
                if side[b] < 0:
                    side[b] = 1 - side[a]
                    stack.append(b)
                elif side[b] == side[a]:
                    return None
    if any(side[names.index(g)] for g in model.visible):
        return None
    return [g for k, g in enumerate(names) if side[k] == 0]


def _base_field(model, graph, base):
    """Base fields ``a`` in the binary form: ``-E_0 = a.x`` up to a constant."""
    alpha = graph.scale
    if isinstance(base, str):
        if base not in BASES:
            raise ValueError(f"base must be one of {BASES}, data, or an array of visible data; "
                             f"got {base!r}")
        return alpha * graph.field if base == "biases" else np.zeros(graph.n_units)
    data = model.as_state(base, model.visible, what="base")
    out = alpha * graph.field
    for g, values in data.items():
        unit = model.units[g]
        if unit.width != unit.n:        # categorical: smoothed log frequency of each value
            counts = unit.encode(values).sum(axis=0)
            out[graph.slots(g)] = np.log((counts + 1.0) / (len(values) + unit.k))
            continue
        on = (values == unit.values[-1]).sum(axis=0)
        out[graph.slots(g)] = logit((on + 1.0) / (len(values) + 2.0))
    return out


class _Path:
    """What a path anneals: the units of ``groups`` (binary form), from base fields ``base``.

    States are (n_runs, n) arrays of 0/1 in ``dtype``; ``log_z_base`` includes the binary
    form's constant, so ``log Z = log_z_base + log E[w]``.
    """

    model: EnergyModel
    groups: list
    base: np.ndarray
    dtype: np.dtype
    log_z_base: float

    def base_sample(self, gen, n_runs):
        """Exact samples of the base, one row per run."""
        return (gen.random((n_runs, len(self.base))) < expit(self.base)).astype(self.dtype)

    def load(self, samples):
        """Validated samples of the target as rows of the annealed units."""
        return np.ascontiguousarray(_binary_rows(self.model, samples, self.groups, "samples"),
                                    dtype=self.dtype)


class _BipartitePath(_Path):
    """Kept units (the visible side of :func:`_alternation`) annealed, the others summed in
    closed form: ``_ais`` kernel."""

    def __init__(self, model, graph, form, base_field, groups, dtype):
        self.model, self.groups, self.dtype = model, groups, dtype
        kept = np.zeros(graph.n_units, bool)
        for g in groups:
            kept[graph.slots(g)] = True
        kept_units, summed_units = np.flatnonzero(kept), np.flatnonzero(~kept)
        pos = np.empty(graph.n_units, np.int64)
        pos[kept_units] = np.arange(len(kept_units))
        pos[summed_units] = np.arange(len(summed_units))
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        s_end, k_end = np.where(kept[i], j, i), np.where(kept[i], i, j)
        coupling = np.zeros((len(summed_units), len(kept_units)))
        coupling[pos[s_end], pos[k_end]] = form.coupling
        self.coupling = np.ascontiguousarray(coupling, dtype)
        self.coupling_t = np.ascontiguousarray(coupling.T, dtype)
        self.field_kept = form.field[kept_units]
        self.field_summed = form.field[summed_units]
        self.base = base_field[kept_units]
        self.log_z_base = float(form.const + np.logaddexp(0.0, self.base).sum()
                                + len(summed_units) * np.log(2.0))

    def anneal(self, x, betas, gen, n_threads, runner=None):
        """Walk ``betas`` from states ``x``; return the log weights.

        Each run's stream is seeded from ``gen`` (``_chains.chain_streams``); runs go to the
        kernel in blocks of at most ``RUN_BLOCK`` (on ``runner``: whole blocks per piece,
        the same blocks, so the same weights)."""
        n_runs = len(x)
        streams = chain_streams(gen, n_runs)[:, :n_runs]
        block = -(-n_runs // -(-n_runs // RUN_BLOCK))
        arrays = (self.coupling, self.coupling_t, self.field_kept, self.field_summed,
                  self.base)
        seconds = _SECONDS_PER_UPDATE * len(betas) * n_runs * self.coupling.size
        return _split_runs(_bipartite_runs, arrays, x, streams, betas, block, n_threads,
                           runner, seconds)


def _bipartite_runs(arrays, x, streams, betas, block, n_threads):
    """The RBM kernel over the runs ``x`` (updated in place), blocks of ``block`` runs: the
    log weights. It walks the schedule in chunks of steps of about 0.1 s (Ctrl-C is seen
    between them), carrying the walk's whole state, so the chunks do not change the result."""
    coupling, coupling_t, field_kept, field_summed, base = arrays
    n_runs, n_kept, n_summed = len(x), len(field_kept), len(field_summed)
    streams = padded_streams(streams)
    log_w = np.zeros(n_runs)
    summed = np.zeros((n_runs, n_summed), x.dtype)
    walk = (np.zeros((n_runs, n_summed)), np.zeros((n_runs, n_kept)),     # fields a, g
            np.zeros((n_runs, n_kept), np.int32), np.zeros((n_runs, n_summed), np.int32),
            np.zeros((2, n_runs), np.int64))                           # changed units
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        for start, size in timed_chunks(len(betas) - 1):
            _ais.anneal_bipartite(x, summed, coupling, coupling_t, field_kept, field_summed,
                                  base, betas, log_w, streams, *walk, 1 + start,
                                  1 + start + size, block, DELTA_FRACTION, n_threads)
    return log_w


def _split_runs(run, shared, x, streams, betas, block, n_threads, runner, seconds):
    """``run(shared, x, streams, betas, block, n_threads)`` over all runs here, or, where
    ``runner`` gets at least two pieces of ``seconds`` of work, over ranges of whole blocks
    of runs on it (:mod:`pgm_energy.distributed`), the log weights concatenated in order."""
    n_blocks = -(-len(x) // block)
    n_tasks = n_pieces_for(seconds, runner, n_blocks)
    if not n_tasks:
        return run(shared, x, streams, betas, block, n_threads)
    bounds = np.minimum(block * np.linspace(0, n_blocks, n_tasks + 1).round().astype(int),
                        len(x))
    pieces = [(np.ascontiguousarray(x[a:b]), np.ascontiguousarray(streams[:, a:b]))
              for a, b in zip(bounds[:-1], bounds[1:])]
    parts = runner.map(_runs_task, (run, shared, betas, block, runner.n_threads), pieces,
                       what="annealed importance sampling")
    return np.concatenate([part[0] for part in parts])


def _runs_task(shared, piece):
    """One executor piece of AIS: a range of runs (on the Runner's ``n_threads``)."""
    run, arrays, betas, block, n_threads = shared
    x, streams = piece
    return (run(arrays, x.copy(), streams, betas, block, check_n_threads(n_threads)),)


class _JointPath(_Path):
    """All units annealed by the Gibbs sampler, at inverse temperature ``beta``, on the model
    plus one bias term per group: ``-beta E - (1 - beta) E_0 = -beta (E + E_0 (1 - beta) /
    beta)``, so the bias holds ``(1 - beta) / beta`` times the base fields. Any term works
    (users' own too): nothing is rescaled but the temperature.
    """

    def __init__(self, model, graph, form, base_field):
        self.model, self.groups, self.dtype = model, list(model.units), np.dtype(np.float64)
        self.graph = graph
        self.low = graph.low
        self.base = base_field                              # binary form: -E_0 = base.x + ...
        self.base_native = base_field / graph.scale  # E_0 = -base_native.s
        self.sizes = graph.site_size[graph.site_size > 1]          # categorical sites
        # The base is independent units: log Z_0 sums each unit kind's log normaliser.
        self.log_z_base = float(sum(
            unit.log_normaliser(self.base_native[None, graph.slots(g)]).sum()
            for g, unit in model.units.items()))

    def base_sample(self, gen, n_runs):
        """Exact samples of the base (binary form, one-hot for categorical units)."""
        graph = self.graph
        x = super().base_sample(gen, n_runs)
        cat = graph.categorical
        if cat.any():       # each categorical unit: the first v with cumsum_v p > u
            p = site_softmax(self.base[None, cat], self.sizes)[0]
            starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
            total = np.cumsum(p)
            within = total - np.repeat(total[starts] - p[starts], self.sizes)
            above = np.repeat(gen.random((n_runs, len(self.sizes))), self.sizes, axis=1) < within
            above[:, starts + self.sizes - 1] = True        # the last value takes any rounding
            first = above.copy()
            first[:, 1:] &= ~above[:, :-1]
            first[:, starts] = above[:, starts]
            x[:, cat] = first
        return x

    def anneal(self, x, betas, gen, n_threads, runner=None):
        """Per step: ``log w += (beta_k - beta_{k-1}) (-E(s) + E_0(s))``, then one sweep at
        inverse temperature ``beta_k`` with the base bias set for ``beta_k``. Each run is a
        Gibbs chain with its own stream (seeded from ``gen``), so runs split into pieces on
        ``runner`` anneal as they would here."""
        streams = chain_streams(gen, len(x))[:, :len(x)]
        n_edges = self.graph.n_edges + self.graph.n_units
        seconds = _SECONDS_PER_UPDATE * 10 * len(betas) * len(x) * n_edges
        if runner is not None:
            runner.check_importable(self.model, "the model")
        return _split_runs(_joint_runs, (self.model, self.base_native), x, streams, betas, 1,
                           n_threads, runner, seconds)


def _joint_runs(shared, x, streams, betas, block, n_threads):
    """The Gibbs sampler over the runs ``x`` (binary form) of the joint path: log weights."""
    model, base_native = shared
    graph = model.graph
    names = {g: f"ais_base_{g}" for g in model.units}
    tempered = EnergyModel(model.units,
                           model.terms + [Bias(g, name=names[g]) for g in model.units],
                           visible=model.visible)
    sampler = GibbsSampler(tempered, n_chains=len(x), rng=0, n_threads=n_threads)
    sampler.load_state(GibbsState(graph.decode(graph.low + (1.0 - graph.low) * x),
                                  streams, 1.0))           # s = low + (1 - low) x
    log_w = np.zeros(len(x))
    for k in range(1, len(betas)):
        state = sampler.state
        log_w += (betas[k] - betas[k - 1]) * (-model.energy(state)
                                              - graph.encode(state) @ base_native)
        if k == len(betas) - 1:
            break
        beta = betas[k]
        sampler.beta = beta
        for g in model.units:
            bias = tempered.params[names[g]]
            bias[...] = (1.0 - beta) / beta * base_native[graph.slots(g)].reshape(bias.shape)
        sampler.run(1)
    return log_w


class _GaussianPath(_Path):
    """Gaussian visible units annealed, discrete hidden units summed in closed form (a
    Gaussian-Bernoulli RBM and its relatives), in native values:

        log f_k(x) = -(1 - beta_k) E_0(x) - beta_k (u(x) - b.x)
                     + sum_j log sum_{h_j} exp(beta_k h_j (c_j + W_j x)),

    with the Gaussian base ``E_0(x) = sum_i (x_i - mu_i)^2 / (2 s_i^2)`` (``base``: the
    model's own visible part ``mu = sigma^2 b, s = sigma`` for "biases", ``mu = 0, s =
    sigma`` for "uniform", the mean and standard deviation of data) and
    ``log Z_0 = sum_i log(sqrt(2 pi) s_i) + sum_j log |values of h_j|``. The transition at
    ``beta_k`` draws ``h`` given ``x`` (``P(bit) = sigmoid(beta_k scale_j (c_j + W_j x))``),
    then ``x`` given ``h`` from the Gaussian of precision ``(1 - beta_k)/s^2 + beta_k/sigma^2``
    and mean ``((1 - beta_k) mu / s^2 + beta_k (b + W^T h)) / precision``: it leaves ``f_k``
    invariant. Runs are rows of numpy arrays with BLAS products, one generator for all.

    Users' terms that read only the visible groups add ``-beta_k E_own(x)`` to ``log f_k``;
    the Gaussian draw of ``x`` is then a proposal that is accepted with probability
    ``min(1, exp(-beta_k (E_own(x') - E_own(x))))`` (a Metropolis step, as in the Gibbs
    sampler: the Gaussian's density cancels the rest of ``f_k``).
    """

    def __init__(self, model, graph, base, dtype):
        if np.dtype(dtype) != np.float64:
            raise ValueError("dtype=float32 is for the discrete RBM kernel; models with "
                             "continuous units are annealed in float64")
        kept = _alternation(model, graph)
        visible = np.zeros(graph.n_units, bool)
        for g in model.visible:
            visible[graph.slots(g)] = True
        gaussian_visible = all(isinstance(model.units[g], Gaussian) for g in model.visible)
        hidden_discrete = not graph.continuous[~visible].any()
        #: Users' terms, all reading visible groups only (their energy at the runs' x).
        self.own_terms = graph.generic_terms
        own_visible = all(set(t.groups) <= set(model.visible) for t in self.own_terms)
        if (kept != model.visible or not gaussian_visible or not hidden_discrete
                or not own_visible or graph.categorical.any()):
            raise TypeError(
                "pe.ais anneals models with continuous units when they are RBM-like with "
                "Gaussian visible groups and binary or spin hidden groups (no coupling within "
                "a side; terms of your own may read the visible groups only); for other "
                "continuous models use pe.exact where it applies, or pe.GibbsSampler")
        self.model, self.groups, self.dtype = model, list(model.visible), np.dtype(np.float64)
        v, h = np.flatnonzero(visible), np.flatnonzero(~visible)
        pos = np.empty(graph.n_units, np.int64)
        pos[v], pos[h] = np.arange(len(v)), np.arange(len(h))
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        self.W = np.zeros((len(h), len(v)))                     # native: -h^T W x
        self.W[pos[np.where(visible[i], j, i)], pos[np.where(visible[i], i, j)]] = graph.coupling
        self.b, self.c = graph.field[v], graph.field[h]
        self.sigma2 = graph.self_precision()[v] ** -1.0
        self.low, self.scale = graph.low[h], graph.scale[h]
        self.mu, self.s2 = self._base(model, base)
        self.log_z_base = float(0.5 * np.log(2 * np.pi * self.s2).sum() + len(h) * np.log(2))

    def _base(self, model, base):
        """Mean and variance of the base Gaussian of each visible unit."""
        if isinstance(base, str):
            if base not in BASES:
                raise ValueError(f"base must be one of {BASES}, data, or an array of visible "
                                 f"data; got {base!r}")
            return (self.sigma2 * self.b if base == "biases" else np.zeros_like(self.b),
                    self.sigma2.copy())
        data = model.as_state(base, model.visible, what="base")
        x = np.concatenate([data[g] for g in model.visible], axis=1)
        if len(x) < 2:
            raise ValueError("base data must hold at least 2 rows to fit a Gaussian base")
        return x.mean(axis=0), np.maximum(x.var(axis=0), 1e-6 * self.sigma2)

    def base_sample(self, gen, n_runs):
        return self.mu + np.sqrt(self.s2) * gen.standard_normal((n_runs, len(self.mu)))

    def load(self, samples):
        if not isinstance(samples, Mapping) and len(self.groups) != 1:
            raise TypeError(f"samples must be a dict covering the groups {self.groups}")
        state = self.model.as_state(samples, self.groups, what="samples")
        rows = np.concatenate([state[g] for g in self.groups], axis=1)
        if len(rows) == 0:
            raise ValueError("samples must hold at least one sample")
        return rows

    def _hidden(self, beta, phi):
        """``sum_j log sum_{h_j} exp(beta h_j phi_j)`` per run, ``phi = c + x W^T``."""
        return (beta * self.low * phi + np.logaddexp(0.0, beta * self.scale * phi)).sum(axis=1)

    def anneal(self, x, betas, gen, n_threads, runner=None):
        """Per step ``log w += log f_k(x) - log f_{k-1}(x)``, then the transition at
        ``beta_k`` (class docstring); ``n_threads`` and ``runner`` are not used (BLAS)."""
        x = np.array(x, dtype=np.float64)
        log_w = np.zeros(len(x))
        users = self._users_energy(x)           # E_own(x), kept up to date with x
        for k in range(1, len(betas)):
            phi = self.c + x @ self.W.T
            # log f_k - log f_{k-1}: the beta-linear part once, the hidden sums at both betas
            base = ((x - self.mu) ** 2 / (2 * self.s2)).sum(axis=1)
            own = (x ** 2 / (2 * self.sigma2)).sum(axis=1) - x @ self.b + users
            log_w += ((betas[k] - betas[k - 1]) * (base - own) + self._hidden(betas[k], phi)
                      - self._hidden(betas[k - 1], phi))
            if k == len(betas) - 1:
                break
            beta = betas[k]
            bits = gen.random(phi.shape) < expit(beta * self.scale * phi)
            h = self.low + self.scale * bits
            precision = (1 - beta) / self.s2 + beta / self.sigma2
            mean = ((1 - beta) * self.mu / self.s2 + beta * (self.b + h @ self.W)) / precision
            proposal = mean + gen.standard_normal(x.shape) / np.sqrt(precision)
            if self.own_terms:
                proposed = self._users_energy(proposal)
                accept = gen.random(len(x)) < np.exp(-beta * (proposed - users))
                proposal = np.where(accept[:, None], proposal, x)
                users = np.where(accept, proposed, users)
            x = proposal
        return log_w

    def _users_energy(self, x) -> np.ndarray | float:
        """``E_own(x)``, the users' terms' energy at the visible rows ``x`` (0 without)."""
        if not self.own_terms:
            return 0.0
        ends = np.cumsum([0] + [self.model.units[g].n for g in self.groups])
        state = {g: x[:, a:b] for g, a, b in zip(self.groups, ends[:-1], ends[1:])}
        return sum(term.energy(state) for term in self.own_terms)


def _binary_rows(model, samples, groups, what):
    """Validated samples of ``groups`` as (n_runs, n) binary-form rows (spins -> (s+1)/2)."""
    if not isinstance(samples, Mapping) and len(groups) != 1:
        raise TypeError(f"{what} must be a dict covering the groups {groups} for this model")
    state = model.as_state(samples, groups, what=what)
    rows = np.concatenate([(state[g] == model.units[g].values[-1]).astype(float)
                           if model.units[g].width == model.units[g].n
                           else model.units[g].encode(state[g]) for g in groups], axis=1)
    if len(rows) == 0:
        raise ValueError(f"{what} must hold at least one sample")
    return rows


# -- validation -----------------------------------------------------------------------------
def _schedule(n_betas, betas):
    if betas is None:
        return sigmoid_schedule(DEFAULT_N_BETAS if n_betas is None else n_betas)
    if n_betas is not None:
        raise ValueError("give n_betas or betas, not both")
    betas = np.array(betas, dtype=np.float64, ndmin=1)
    if (betas.ndim != 1 or len(betas) < 2 or not np.all(np.isfinite(betas))
            or betas[0] != 0.0 or betas[-1] != 1.0 or np.any(np.diff(betas) <= 0)):
        raise ValueError("betas must be a 1-D schedule of at least 2 finite values, strictly "
                         f"increasing from 0 to 1; got {np.array2string(betas, threshold=8)}")
    return betas
