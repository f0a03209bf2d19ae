"""Gradient estimators: ``d mean log P(X) / d theta`` as a dict shaped like ``model.params``,

    grad = E_model[dE/dtheta] - mean over the batch of E_{h|x}[dE/dtheta]

(negative phase minus positive phase). Estimators never look at terms: they produce
*expected states* (rows of the flat graph's units, with units summed in closed form replaced
by their conditional means) and the flat graph maps unit and pair moments of those rows to
``E[dE/dtheta]`` for every parameter (``FlatGraph.grad_from_moments``).

Persistent estimators hand their chains out as public sampler states
(:meth:`~pgm_energy.GibbsSampler.get_state`, :meth:`~pgm_energy.ParallelTempering.get_state`)
for checkpoints, and read the chains only through the samplers' public ``state``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .. import exact
from .._checks import positive_int
from ..graph import independent_split
from ..model import EnergyModel
from ..sampling import GibbsSampler, GibbsState
from .centering import Centering
from .positive import positive_phase
from ..tempering import ParallelTempering, TemperingState, check_move, ladder, make_sampler

__all__ = ["CD", "PCD", "PT", "ExactGradient", "expected_states", "moments", "moments_gradient",
           "visible_data"]


# -- sufficient statistics ------------------------------------------------------------------
class _Layout:
    """What estimators need of a model's flat graph, built once per model."""

    def __init__(self, model: EnergyModel):
        graph = model.graph
        self.graph = graph
        self.visible = np.zeros(graph.n_units, bool)
        for g in model.visible:
            self.visible[graph.slots(g)] = True
        free = np.flatnonzero(~self.visible)
        ei, ej = graph.edges[:, 0], graph.edges[:, 1]
        hidden_edges = graph.edges[~self.visible[ei] & ~self.visible[ej]]
        # Hidden units summed in closed form given the visible ones (and the other hidden);
        # units read by generic terms never are.
        compiled = ~graph.generic
        _, self.hidden_closed = independent_split(free[compiled[free]], hidden_edges,
                                                         site=graph.site)
        self.hidden_independent = len(self.hidden_closed) == len(free)
        # Units replaced by conditional means in the negative phase (Rao-Blackwellisation),
        # hidden units first: for an RBM, E[h | x] of the chains' x.
        _, self.model_closed = independent_split(np.flatnonzero(compiled), graph.edges,
                                                        first=~self.visible, site=graph.site)
        self.model = model
        # The Gram matrix (one BLAS product) beats gathering the edge ends unless the graph
        # is sparse: a deep Boltzmann machine [64, 100, 100] has n^2 / edges = 4.25.
        self.dense_gram = graph.n_units ** 2 <= 16 * max(graph.n_edges, 1)
        #: ``fit``'s compiled epoch's reading of the layers (``learning.compiled``), found
        #: at its first use (False: the model has none).
        self.compiled = None


def expected_states(model: EnergyModel, flat: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """Replace the units ``closed`` (no coupling among them) by their conditional means.

    ``E[s_a | rest] = sigmoid(f_a)`` for binary and ``tanh(f_a)`` for spins (beta = 1), and
    ``softmax`` over the slots of a categorical unit (its one-hot mean); since the
    ``closed`` units are independent given the rest, the moments of the returned rows are the
    moments of the samples with those units summed exactly.
    """
    graph = model.graph
    out = flat.copy()
    if len(closed):
        out[:, closed] = graph.unit_mean(graph.local_field(flat)[:, closed], closed)
    return out


def moments_gradient(layout: _Layout, rows: np.ndarray) -> dict:
    """``E[dE/dtheta]`` from expected-state rows: their mean unit and pair products for the
    compiled terms, the mean of ``energy_grad`` for generic terms (whose units are never
    replaced by means)."""
    graph = layout.graph
    grads = graph.grad_from_moments(*moments(layout, rows))
    if graph.generic_terms:
        state = graph.decode(rows)
        for term in graph.generic_terms:
            grads.update({name: g.mean(axis=0) for name, g in term.energy_grad(state).items()})
    return grads


def unit_gradients(model: EnergyModel, layout: _Layout, rows: np.ndarray,
                   closed: np.ndarray) -> dict:
    """``E[dE/dtheta]`` of the learnable units' own parameters (``"<group>.<name>"``) from
    expected-state rows: ``du/dtheta`` at the value of a sampled or held unit, its
    conditional expectation given the field for a unit of ``closed`` (whose row holds its
    mean; units of ``closed`` are not coupled, so their fields come from the rows)."""
    graph = layout.graph
    is_closed = np.zeros(graph.n_units, bool)
    is_closed[closed] = True
    field = None
    out = {}
    for g, unit in model.units.items():
        if not unit.learn:
            continue
        slots = graph.slots(g)
        summed = is_closed[slots]
        sampled = unit.param_grad(rows[:, slots])
        if summed.any():
            field = graph.local_field(rows) if field is None else field
            given = unit.conditional_param_grad(field[:, slots])
            sampled = {k: np.where(summed, given[k], v) for k, v in sampled.items()}
        out.update({f"{g}.{k}": v.mean(axis=0) for k, v in sampled.items()})
    return out


def moments(layout: _Layout, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean unit values and mean pair products (one per edge of the flat graph) of rows."""
    ei, ej = layout.graph.edges[:, 0], layout.graph.edges[:, 1]
    if layout.dense_gram:
        return rows.mean(axis=0), (rows.T @ rows)[ei, ej] / len(rows)
    return rows.mean(axis=0), np.einsum("bi,bi->i", rows[:, ei], rows[:, ej]) / len(rows)


def _flat_visible(model, layout, X, expected_data=False):
    """Flat rows with the visible groups from ``X`` (validated), zeros elsewhere."""
    state = model.as_state(X, model.visible, what="X", expectations=expected_data)
    return layout.graph.encode(state)


def _has_missing(X) -> bool:
    """Whether the data ``X`` (an array or a dict of them) hold a NaN."""
    arrays = X.values() if isinstance(X, Mapping) else [X]
    for arr in arrays:
        arr = np.asarray(arr)
        if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
            return True
    return False


def visible_data(model: EnergyModel, X, *, expected_data: bool = False) -> tuple[dict, bool]:
    """The visible data ``{group: (batch, n)}`` (float64), validated as ``model.as_state``
    does, NaN allowed as a missing entry; and whether any entry is missing.

    Missing values are refused with ``expected_data`` (a ``ValueError``).
    """
    if not _has_missing(X):
        return model.as_state(X, model.visible, what="X", expectations=expected_data), False
    if expected_data:
        raise ValueError("X holds missing values (NaN); expected_data takes complete rows of "
                         "expected values: fill them in, or train on states")
    if not isinstance(X, Mapping):
        if len(model.visible) != 1:
            model.as_state(X, model.visible, what="X")        # raises: a dict is needed
        X = {model.visible[0]: X}
    # Validate with the missing entries filled by a value of the domain, then mark them.
    missing = {g: np.isnan(np.asarray(v, np.float64)) if g in model.units else None
               for g, v in X.items()}
    filled = {g: (np.where(missing[g], model.units[g].fill_value, v) if missing[g] is not None
                  else v) for g, v in X.items()}
    data = model.as_state(filled, model.visible, what="X")
    for g in data:
        data[g][np.reshape(missing[g], data[g].shape)] = np.nan
    return data, True


class _Estimator:
    """Shared positive phase; subclasses supply the negative phase."""

    #: Sweeps of the clamped chains for the positive phase of rows with missing entries
    #: (NaN).
    positive_sweeps = 5
    #: Whether ``gradient(..., expected_data=True)`` is meaningful (persistent chains only).
    accepts_expected_data = True
    #: Attributes a checkpoint records and a resumed run must match.
    hyperparameters: tuple[str, ...] = ("positive_phase", "centering_config")

    def __init__(self, positive="auto", centering: Centering | None = None):
        if centering is not None and not isinstance(centering, Centering):
            raise TypeError(f"centering must be None or a pe.learning.Centering, got "
                            f"{centering!r}")
        #: Centered gradients (:mod:`~pgm_energy.learning.centering`), or None.
        self.centering = centering
        #: The positive phase where hidden units interact: "auto", "mean-field", "gibbs", a
        #: ``MeanField`` or a ``ClampedGibbs`` (:mod:`~pgm_energy.learning.positive`).
        self.positive = positive_phase(positive)
        self._positive_phase = None
        self._positive = None               # the clamped chains of rows with missing entries
        self._layout = None
        self._model = None
        self._positive_cache = {}

    @property
    def positive_phase(self) -> str:
        """The positive phase in words (as checkpoints record it)."""
        return repr(self.positive)

    @property
    def centering_config(self) -> str:
        """The centering in words (as checkpoints record it)."""
        return repr(self.centering)

    def _bind(self, model, rng):
        if self._model is not model:
            self._model = model
            self._layout = _Layout(model)
            self._positive_cache = {}
            self._positive_phase = positive_phase(self.positive, self._layout)
            self._start(model, rng)
        return self._layout

    def _start(self, model, rng):
        """Create persistent state (chains) on first use."""

    def positive_rows(self, model, X, rng, expected_data=False) -> np.ndarray:
        """Expected states given the data: exact conditional means where the hidden units
        are independent given x, else those of the positive phase ``self.positive``
        (:mod:`~pgm_energy.learning.positive`).

        Rows with missing values (NaN) always take clamped Gibbs chains: the observed
        entries clamped, the missing ones sampled with the hidden units for
        ``positive_sweeps`` sweeps, so the moments estimate ``E[dE/dtheta | observed
        entries]``, the positive phase of the log marginal likelihood of what was observed.
        """
        layout = self._layout
        data, missing = visible_data(model, X, expected_data=expected_data)
        if missing:
            self._positive_chains(model, len(next(iter(data.values()))), rng).run(
                self.positive_sweeps, clamp=data)
            return expected_states(model, layout.graph.encode(self._positive.state),
                                   layout.hidden_closed)
        flat = layout.graph.encode(data)
        if not layout.hidden_independent:
            if expected_data:
                raise ValueError("expected_data needs hidden units that are conditionally "
                                 "independent given the visible ones (a mean-field positive "
                                 "phase); this model's hidden units interact")
            return self._positive_phase.rows(model, layout, flat, rng, self._positive_cache)
        return expected_states(model, flat, layout.hidden_closed)

    def _positive_chains(self, model, n_chains, rng) -> GibbsSampler:
        """The positive phase's clamped chains, one per row of the batch (kept while the
        batch size stays)."""
        if self._positive is None or self._positive.n_chains != n_chains:
            self._positive = GibbsSampler(model, n_chains, rng=rng, n_threads=None)
        return self._positive

    def gradient(self, model: EnergyModel, X, rng=None, *, expected_data: bool = False) -> dict:
        """Estimate ``d mean log P(X) / d theta`` on the batch ``X``.

        ``X`` may hold missing values (NaN) in the visible groups: the estimate is then that
        of the gradient of the mean log marginal likelihood of the observed entries,
        ``log sum_{missing} P(x)``, its positive phase from chains that clamp the observed
        entries and sample the missing ones (:meth:`positive_rows`).

        With ``expected_data``, ``X`` may hold expected values of the visible units (e.g.
        grey levels in [0, 1] as probabilities of binary pixels); the positive phase then uses
        them as expected states (scikit-learn's BernoulliRBM rule).
        """
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        layout = self._bind(model, rng)
        if expected_data and not self.accepts_expected_data:
            raise ValueError(f"{type(self).__name__} cannot learn from expected data (its "
                             "chains or its exact likelihood need states); use PCD or PT")
        positive_rows = self.positive_rows(model, X, rng, expected_data)
        negative_rows = self.negative_rows(model, X, rng)
        learned = any(u.learn for u in model.units.values())
        if self.centering is not None:
            if learned:
                raise ValueError("centering applies to the terms' parameters; train the units' "
                                 "own parameters (learn=True) without it")
            return self.centering.gradient(layout, positive_rows, negative_rows,
                                           lambda rows: moments(layout, rows))
        positive = moments_gradient(layout, positive_rows)
        negative = moments_gradient(layout, negative_rows)
        if learned:
            positive.update(unit_gradients(model, layout, positive_rows, layout.hidden_closed))
            negative.update(unit_gradients(model, layout, negative_rows, layout.model_closed))
        return {k: negative[k] - positive[k] for k in positive}

    def negative_rows(self, model, X, rng) -> np.ndarray:
        raise NotImplementedError

    # checkpoints: the persistent chains as a public sampler state
    def get_state(self) -> GibbsState | TemperingState | None:
        """The state of the persistent chains (None: the estimator keeps none)."""
        return None

    def set_state(self, model, state, rng) -> None:
        """Restore the persistent chains from :meth:`get_state`'s value."""


class ExactGradient(_Estimator):
    """The exact gradient (``pe.exact.gradient``), for models small enough to enumerate;
    rows with missing values (NaN) give the gradient of the log-likelihood of their observed
    entries, the missing ones summed over exactly."""

    accepts_expected_data = False

    def gradient(self, model, X, rng=None, *, expected_data: bool = False):
        if expected_data:
            raise ValueError("ExactGradient cannot learn from expected data (the exact "
                             "likelihood needs states); use PCD or PT")
        return exact.gradient(model, X)


class CD(_Estimator):
    """Contrastive divergence: the negative phase from ``k`` Gibbs sweeps started at the data.

    The hidden units are first drawn from ``P(h | x)``; the last state's closed-form units
    are replaced by their conditional means (Rao-Blackwellised statistics). Rows with
    missing values (NaN) start from the data as the positive phase completed them.
    """

    accepts_expected_data = False
    hyperparameters = ("k", "schedule", "positive_phase", "centering_config")

    def __init__(self, k: int = 1, *, schedule: str = "auto", positive="auto",
                 centering: Centering | None = None):
        super().__init__(positive, centering)
        self.k = positive_int(k, "k")
        self.schedule = schedule
        self._chains = None

    def negative_rows(self, model, X, rng):
        layout = self._layout
        data, missing = visible_data(model, X)
        if missing:            # the data as the positive phase's chains completed them
            data = {g: self._positive.state[g] for g in model.visible}
        n_rows = len(next(iter(data.values())))
        if self._chains is None or self._chains.n_chains != n_rows:
            self._chains = GibbsSampler(model, n_rows, schedule=self.schedule, rng=rng)
        self._chains.run(1, clamp=data).run(self.k)
        return expected_states(model, layout.graph.encode(self._chains.state),
                               layout.model_closed)


class PCD(_Estimator):
    """Persistent contrastive divergence: ``n_chains`` model chains kept across updates,
    advanced ``k`` sweeps per gradient (Tieleman 2008).

    ``move`` is how the chains move: ``"gibbs"`` (Gibbs sweeps with ``schedule``) or a
    cluster algorithm, ``"swendsen-wang"`` or ``"wolff"`` (``pgm_energy.cluster``), for
    pairwise binary and spin models.

    ``positive`` is the positive phase where the hidden units interact given the visible
    ones (:mod:`~pgm_energy.learning.positive`): ``"auto"`` (mean field for a deep Boltzmann
    machine and other models whose hidden couplings join different groups, clamped Gibbs
    otherwise), ``"mean-field"``, ``"gibbs"``, or a ``pe.learning.MeanField(tol, max_iter,
    damping)`` / ``pe.learning.ClampedGibbs(n_sweeps)`` with its settings. ``centering``, a
    ``pe.learning.Centering(rate)``, makes the gradient the centered one (offsets as running
    means; :mod:`~pgm_energy.learning.centering`). CD and PT take both too.
    """

    hyperparameters = ("n_chains", "k", "move", "schedule", "positive_phase",
                       "centering_config")

    def __init__(self, n_chains: int = 100, k: int = 1, *, move: str = "gibbs",
                 schedule: str = "auto", positive="auto",
                 centering: Centering | None = None):
        super().__init__(positive, centering)
        self.n_chains = positive_int(n_chains, "n_chains")
        self.k = positive_int(k, "k")
        self.move = check_move(move)
        self.schedule = schedule
        self.sampler = None

    def _start(self, model, rng):
        self.sampler = make_sampler(model, self.n_chains, self.move, self.schedule, rng)

    def negative_rows(self, model, X, rng):
        self.sampler.run(self.k)
        layout = self._layout
        return expected_states(model, layout.graph.encode(self.sampler.state),
                               layout.model_closed)

    def get_state(self) -> GibbsState:
        return self.sampler.get_state()

    def set_state(self, model, state: GibbsState, rng) -> None:
        self._bind(model, rng)
        self.sampler.load_state(state)


class PT(_Estimator):
    """Persistent parallel tempering: chains at ``betas`` (one of them 1; or a number of
    temperatures, geometric from 1 down to ``beta_min``) with swaps; the negative phase uses
    the chains at beta = 1 after ``k`` rounds (:class:`~pgm_energy.ParallelTempering`).

    With ``adapt=True`` the ladder follows the model as it learns: every negative phase's
    ``k`` rounds run :meth:`~pgm_energy.ParallelTempering.adapt` with a constant gain
    (``nu = 10``, ``t0 = inf``: the log-spacings move by ``(A_k - A_{k+1}) / 10`` per round),
    beta = 1 and the smallest beta fixed; its swap statistics then count since the start of
    training, across the ladder's moves. ``move`` is as for :class:`PCD`.
    """

    hyperparameters = ("betas", "beta_min", "n_chains", "k", "adapt", "move", "schedule",
                       "positive_phase", "centering_config")

    def __init__(self, betas: Sequence[float] | int = (1.0, 0.8, 0.6, 0.4),
                 n_chains: int = 100, k: int = 1, *, beta_min: float | None = None,
                 adapt: bool = False, move: str = "gibbs", schedule: str = "auto",
                 positive="auto", centering: Centering | None = None):
        super().__init__(positive, centering)
        ladder(betas, beta_min)                      # validated here, built at the first use
        self.betas = betas if isinstance(betas, (int, np.integer)) else list(betas)
        self.beta_min = beta_min
        self.n_chains = positive_int(n_chains, "n_chains")
        self.k = positive_int(k, "k")
        if not isinstance(adapt, (bool, np.bool_)):
            raise TypeError(f"adapt must be True or False, got {adapt!r}")
        self.adapt = bool(adapt)
        self.move = check_move(move)
        self.schedule = schedule
        self.tempering = None

    def _start(self, model, rng):
        self.tempering = ParallelTempering(model, self.betas, self.n_chains, rng=rng,
                                           beta_min=self.beta_min, move=self.move,
                                           schedule=self.schedule)

    def negative_rows(self, model, X, rng):
        if self.adapt:
            self.tempering.adapt(self.k, nu=10.0, t0=np.inf,
                                 reset_statistics=False)
        else:
            self.tempering.run(self.k)
        layout = self._layout
        return expected_states(model, layout.graph.encode(self.tempering.state),
                               layout.model_closed)

    def get_state(self) -> TemperingState:
        return self.tempering.get_state()

    def set_state(self, model, state: TemperingState, rng) -> None:
        self._bind(model, rng)
        self.tempering.load_state(state)
