"""Hypothesis strategies and checks for testing models, users' own terms and samplers.

Strategies build random small models (built-in terms, and optionally the user's own term
classes), small enough for brute-force enumeration, so any identity of the mathematics (``docs/maths.md``) can be
checked against the exact answer. The checks (:func:`check_term`, :func:`check_model`,
:func:`check_sampler`) raise ``AssertionError`` with what went wrong, and return a short
report when all is well. Closed-form log partition functions
(:func:`ising_chain_log_partition`, :func:`curie_weiss_log_partition`,
:func:`ising_torus_log_partition`) give known answers to check any method against. Requires
the optional dependency ``hypothesis`` (``pip install "pgm_energy[test]"``).
"""
from __future__ import annotations

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without hypothesis
    raise ImportError('pgm_energy.testing needs the optional dependency hypothesis: '
                      'pip install "pgm_energy[test]" (or pip install hypothesis)') from exc

from .model import EnergyModel
from .terms import Bias, Lateral, Pairwise, SparsePairwise, Term
from .units import Binary, Categorical, DReLU, Gaussian, Spin

__all__ = ["unit_groups", "models", "states", "datasets", "weights", "brute_force",
           "state_index", "check_term", "check_model", "check_sampler",
           "ising_chain_log_partition", "curie_weiss_log_partition", "ising_torus_log_partition"]


def weights(shape, *, scale: float = 2.0, large: bool = True):
    """Strategy for a float64 parameter array: mostly ``N(0, scale)``, sometimes huge (1e3)."""
    @st.composite
    def build(draw):
        seed = draw(st.integers(0, 2**32 - 1), label="weight seed")
        rng = np.random.default_rng(seed)
        w = scale * rng.standard_normal(shape)
        if large and draw(st.booleans(), label="large weights"):
            w *= 500.0
        return w
    return build()


@st.composite
def unit_groups(draw, max_units: int = 4, kinds=(Binary, Spin), max_categories: int = 3):
    """Strategy for one unit group of a kind in ``kinds`` with 1 <= n <= max_units:
    ``Binary(n)``, ``Spin(n)``, ``Categorical(n, k)`` with 2 <= k <= max_categories, or a
    continuous kind with random parameters: ``Gaussian(n, sigma)`` (sigma in [0.5, 2]),
    ``ReLU(n)``, ``DReLU(n, ...)`` (precisions in [0.5, 2], thresholds in [-1, 1])."""
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(1, max_units))
    if kind is Categorical:
        return Categorical(n, draw(st.integers(2, max_categories)))
    if kind in (Gaussian, DReLU):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="unit seed"))
        if kind is Gaussian:
            return Gaussian(n, sigma=rng.uniform(0.5, 2.0, n))
        return DReLU(n, gamma_plus=rng.uniform(0.5, 2.0, n), gamma_minus=rng.uniform(0.5, 2.0, n),
                     theta_plus=rng.uniform(-1, 1, n), theta_minus=rng.uniform(-1, 1, n))
    return kind(n)


@st.composite
def models(draw, max_groups: int = 3, max_units: int = 4, max_total: int = 9,
           kinds=(Binary, Spin), large_weights: bool = True, scale: float = 2.0,
           extra_terms=()):
    """Strategy for a random small ``EnergyModel``: any mix of built-in terms.

    Up to ``max_groups`` groups of at most ``max_units`` units (``max_total`` in all), each
    group of one of ``kinds`` (add ``pe.Categorical`` for categorical groups with 2 or 3
    values, ``pe.Gaussian``, ``pe.ReLU``, ``pe.DReLU`` for continuous ones); biases, dense
    pairwise couplings between groups, laterals and sparse couplings (Potts tables for
    categorical groups) within groups, all with random ``N(0, scale)`` (sometimes very large)
    parameters; a non-empty random subset of the groups is visible. ``extra_terms`` are
    factories ``f(group_name, unit_group, rng) -> Term`` (e.g. a user's term class with
    random parameters): each is applied, or not, to a random group.

    Continuous groups are drawn so that the exact functions serve the model: couplings
    between continuous units only among Gaussian units, scaled down to keep their precision
    diagonally dominant (so positive definite); rectified units couple to discrete units only.
    """
    def w(shape):
        return draw(weights(shape, scale=scale, large=large_weights))

    n_groups = draw(st.integers(1, max_groups))
    units, total = {}, 0
    for k in range(n_groups):
        grp = draw(unit_groups(max_units=min(max_units, max_total - total), kinds=kinds))
        units[f"g{k}"] = grp
        total += grp.n
        if total >= max_total:
            break
    names = list(units)
    terms = []
    def joinable(a, b):          # couplings between continuous units: Gaussian ones only
        ua, ub = units[a], units[b]
        return not (ua.continuous and ub.continuous) or (
            isinstance(ua, Gaussian) and isinstance(ub, Gaussian))

    for g in names:
        n, shape, width = units[g].n, units[g].feature_shape, units[g].width
        if draw(st.booleans()):
            terms.append(Bias(g, name=f"b_{g}", value=w(shape)))
        if not joinable(g, g):
            continue
        if n >= 2 and draw(st.booleans()):
            U = w((width, width))
            site = np.arange(width) // (width // n)
            U[site[:, None] >= site[None, :]] = 0.0
            terms.append(Lateral(g, name=f"U_{g}", value=(U + U.T).reshape(shape + shape)))
        elif n >= 2 and draw(st.booleans()):
            pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
            edges = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True))
            terms.append(SparsePairwise(g, edges, name=f"J_{g}",
                                        value=w((len(edges),) + 2 * shape[1:])))
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            if joinable(names[a], names[b]) and draw(st.booleans()):
                shape = units[names[a]].feature_shape + units[names[b]].feature_shape
                terms.append(Pairwise(names[a], names[b], name=f"W_{names[a]}{names[b]}",
                                      value=w(shape)))
    if not terms:
        terms.append(Bias(names[0], name="b", value=w(units[names[0]].feature_shape)))
    for k, factory in enumerate(extra_terms):
        if draw(st.booleans(), label="use extra term"):
            g = draw(st.sampled_from(names))
            seed = draw(st.integers(0, 2**32 - 1), label="extra term seed")
            terms.append(factory(g, units[g], np.random.default_rng(seed)))
    visible = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    model = EnergyModel(units, terms, visible=visible)
    _keep_precision_positive(model)
    return model


def _keep_precision_positive(model: EnergyModel) -> None:
    """Scale the couplings between continuous units so that every row of their coupling
    matrix sums (in absolute value) to at most half the unit's self precision."""
    graph = model.graph
    if not graph.continuous.any():
        return
    i, j = graph.edges[:, 0], graph.edges[:, 1]
    both = graph.continuous[i] & graph.continuous[j]
    if not both.any():
        return
    row = np.bincount(np.r_[i[both], j[both]], minlength=graph.n_units,
                      weights=np.abs(np.r_[graph.coupling[both], graph.coupling[both]]))
    precision = graph.self_precision()
    worst = np.max(row[graph.continuous] / precision[graph.continuous])
    if worst > 0.5:
        for term in model.terms:
            if all(model.units[g].continuous for g in term.groups) and not isinstance(term,
                                                                                      Bias):
                for value in term.params.values():
                    value *= 0.5 / worst


def states(model: EnergyModel, groups=None, *, min_batch: int = 1, max_batch: int = 6):
    """Strategy for a valid state dict of ``model`` (default all groups), random batch size."""
    groups = list(model.units) if groups is None else list(groups)

    @st.composite
    def build(draw):
        batch = draw(st.integers(min_batch, max_batch), label="batch")
        seed = draw(st.integers(0, 2**32 - 1), label="state seed")
        rng = np.random.default_rng(seed)
        return {g: _random_values(model.units[g], rng, batch) for g in groups}
    return build()


def _random_values(unit, rng, batch):
    """``(batch, n)`` values in the unit's domain: uniform over the values of a discrete
    unit, ``N(0, 1)`` for a continuous one (its absolute value for ReLU units)."""
    if unit.continuous:
        x = rng.standard_normal((batch, unit.n))
        return np.abs(x) if unit.lower == 0 else x
    return rng.choice(unit.values, size=(batch, unit.n)).astype(float)


def datasets(model: EnergyModel, *, min_rows: int = 1, max_rows: int = 20):
    """Strategy for a data set of the model's visible groups (a dict of (rows, n) arrays)."""
    return states(model, model.visible, min_batch=min_rows, max_batch=max_rows)


# -- brute force ------------------------------------------------------------------------------
def brute_force(model: EnergyModel, beta: float = 1.0):
    """Every joint state and its exact probability, by listing them (no kernel involved).

    Returns ``(states, p)``: a state dict of ``(n_states, n)`` arrays and ``P(s)`` from
    ``model.energy``, states in ``itertools.product`` order (the first unit varies
    slowest); refuses models with more than 2^20 joint states.
    """
    import itertools

    continuous = [g for g, u in model.units.items() if u.continuous]
    if continuous:
        raise ValueError(f"brute force lists states, but {continuous} are continuous; the "
                         "exact functions (pe.exact) integrate them, and tests check those "
                         "against numerical quadrature")
    n = sum(u.n for u in model.units.values())
    n_states = float(np.prod([float(len(u.values)) ** u.n for u in model.units.values()]))
    if n_states > 2**20:
        raise ValueError(f"brute force would list {n_states:.3g} states; use models with at "
                         "most 2^20 joint states")
    values = [v for u in model.units.values() for v in [u.values] * u.n]
    grid = np.array(list(itertools.product(*values)), dtype=float).reshape(-1, n)
    cuts = np.cumsum([u.n for u in model.units.values()])[:-1]
    states = dict(zip(model.units, np.split(grid, cuts, axis=1)))
    log_w = -beta * model.energy(states)
    p = np.exp(log_w - log_w.max())
    return states, p / p.sum()


# -- checks -------------------------------------------------------------------------------------
def check_term(term, units=None, *, n_states: int = 32, rng=0, eps: float = 1e-6,
               rtol: float = 1e-5, atol: float = 1e-7) -> str:
    """Check a term: shapes, ``energy_grad`` against central differences of ``energy``, its
    fast paths (an overridden ``delta_energy``, a compiled form) against ``energy``, and that
    it survives ``pe.io.save``/``pe.load`` (``config()``, or without one the attributes,
    and the parameters come back equal, tuples as tuples, and give the same energies).

    Parameters
    ----------
    term : Term
        The term to check. If it is not part of a model yet, ``units`` (group name to
        ``UnitGroup`` or int) gives its groups (default ``Binary(4)`` each).
    n_states : int
        Random states to test on.

    Notes
    -----
    For a parameter named in ``term.symmetric_params`` (symmetric, zero diagonal, as
    ``Lateral``), entries ``(i, j)`` and ``(j, i)`` move together and the diagonal is skipped.
    Returns a one-line report; raises ``AssertionError`` on the first mismatch.
    """
    import itertools

    from .units import as_unit_group

    gen = np.random.default_rng(rng)
    given = units is not None
    units = {g: as_unit_group(u, g) for g, u in
             (units if given else {g: Binary(4) for g in term.groups}).items()}
    if given or any(v is None for v in term.params.values()):
        term.bind(units)
    shapes = term.param_shapes(units)
    for name, shape in shapes.items():
        if term.params[name].shape != tuple(shape):
            raise ValueError(f"check_term: parameter {name!r} has shape "
                             f"{term.params[name].shape}; pass units= with the group sizes "
                             "the term was built for")
    state = {g: _random_values(units[g], gen, n_states) for g in term.groups}
    energy = np.asarray(term.energy(state))
    assert energy.shape == (n_states,), f"energy must have shape ({n_states},), got {energy.shape}"
    grads = term.energy_grad(state)
    assert set(grads) == set(term.param_names), (
        f"energy_grad must return {sorted(term.param_names)}, got {sorted(grads)}")
    for name in term.param_names:
        shape = (n_states,) + term.params[name].shape
        assert np.shape(grads[name]) == shape, (
            f"energy_grad[{name!r}] must have shape {shape}, got {np.shape(grads[name])}")
    checked = 0
    for name, entries, fd in _central_differences(
            term.params, getattr(term, "symmetric_params", ()), lambda: term.energy(state), eps):
        want = sum(np.asarray(grads[name])[(slice(None),) + e] for e in entries)
        bad = ~np.isclose(fd, want, rtol=rtol, atol=atol)
        assert not bad.any(), (
            f"energy_grad[{name!r}]{entries[0]} = {want[bad][0]:.6g} but central differences "
            f"of energy give {fd[bad][0]:.6g} (state {int(np.flatnonzero(bad)[0])})")
        checked += 1
    fast_delta = type(term).delta_energy is not Term.delta_energy
    if fast_delta:      # (the samplers move continuous units through energy itself)
        for g in (g for g in term.groups if not units[g].continuous):
            for unit, on in itertools.product(range(units[g].n), units[g].values[1:]):
                values = (units[g].values[0], on)
                got = np.asarray(term.delta_energy(state, g, unit, values))
                want = Term.delta_energy(term, state, g, unit, values)
                assert np.allclose(got, want, rtol=1e-10, atol=1e-10), (
                    f"delta_energy for unit {unit} of {g!r} differs from energy(on) - "
                    "energy(off)")
    compiled = term.compile({g: sum(units[h].width for h in list(units)[:k])
                             for k, g in enumerate(units)})
    if compiled is not None:
        flat = np.concatenate([units[g].encode(state[g]) if g in state
                               else np.zeros((n_states, units[g].width)) for g in units], axis=1)
        e = np.zeros(n_states)
        for lin in compiled:
            theta = term.params[lin.param].ravel()
            i = np.asarray(lin.i)
            j = i if lin.j is None else np.asarray(lin.j)
            keep = (i != j) | (lin.j is None)
            prod = flat[:, i] if lin.j is None else flat[:, i] * flat[:, j]
            e -= (prod[:, keep] * (np.asarray(lin.coef) * theta)[keep]).sum(axis=1)
        assert np.allclose(e, energy, rtol=1e-10, atol=1e-10), (
            "the compiled form of the term gives other energies than term.energy")
    how = _check_saves(term, units, state, energy)
    return (f"{type(term).__name__}: {checked} parameter entries match central differences"
            + ("; delta_energy matches energy" if fast_delta else "")
            + ("; compiled form matches energy" if compiled is not None else "")
            + f"; its {how} and parameters round-trip through save/load")


def _check_saves(term, units, state, energy) -> str:
    """Save a one-term model to memory, load it, and compare the term's ``config()`` (or,
    without one, its attributes), parameters and energies on ``state`` with the original's;
    returns which of config() or attributes."""
    import io as _bytes

    from ._format import term_values
    from .io import load, save

    model = EnergyModel(units, [term], visible=list(units)[:1])
    buffer = _bytes.BytesIO()
    try:
        save(model, buffer)
        buffer.seek(0)
        loaded = load(buffer).terms[0]
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"the term does not survive save/load: {exc}") from exc
    (before, how), (after, _) = term_values(term), term_values(loaded)
    assert type(loaded) is type(term), (
        f"save/load gave a {type(loaded).__name__}, not a {type(term).__name__}")
    for key in sorted(set(before) | set(after)):
        assert key in before and key in after and _same_value(before[key], after[key]), (
            f"{how} value {key!r} does not round-trip through save/load: "
            f"{before.get(key)!r} became {after.get(key)!r}")
    for name in term.param_names:
        assert np.array_equal(term.params[name], loaded.params[name], equal_nan=True), (
            f"parameter {name!r} does not round-trip through save/load")
    assert np.allclose(loaded.energy(state), energy, rtol=1e-12, atol=1e-12), (
        "the term loaded by save/load gives other energies: does config() return every "
        "constructor argument?")
    return "config()" if how == "config" else "attributes"


def _same_value(a, b) -> bool:
    """Equal values of the same container kinds (a tuple is not a list), arrays of the same
    dtype and shape, NaN equal to NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same_value(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_same_value(a[k], b[k]) for k in a))
    return a == b or (a != a and b != b)


def _central_differences(params, symmetric, function, eps):
    """Yield ``(name, entries, fd)``: the central difference of ``function()`` for every free
    entry of every parameter; a parameter in ``symmetric`` moves ``(i, j)`` and ``(j, i)``
    together (``entries`` lists both) and skips its diagonal."""
    for name, theta in params.items():
        for idx in np.ndindex(theta.shape):
            entries = [idx]
            if name in symmetric:       # (row, column) halves; units idx[0] and idx[half]
                half = len(idx) // 2
                if idx[0] >= idx[half]:
                    continue
                entries.append(idx[half:] + idx[:half])
            values = []
            for sign in (1.0, -1.0):
                for e in entries:
                    theta[e] += sign * eps
                values.append(np.asarray(function(), dtype=float))
                for e in entries:
                    theta[e] -= sign * eps
            yield name, entries, (values[0] - values[1]) / (2 * eps)


def check_model(model: EnergyModel, *, rng=0, n_chains: int = 4000, n_sweeps: int = 200,
                p_floor: float = 1e-6, eps: float = 1e-5) -> str:
    """Check a small model's exact identities and its Gibbs sampler against brute force.

    * ``pe.exact.log_partition`` equals the brute-force ``log Z``;
    * ``sum_x P(x) = 1`` and ``-F(x) - log Z`` equals the brute-force marginal;
    * ``pe.exact.gradient`` equals central differences of the mean log-likelihood of a
      random data set (laterals' symmetric pairs move together);
    * the joint distribution of ``GibbsSampler`` chains passes a chi-square test against the
      exact one; the test fails a correct sampler with probability ``p_floor``.

    Models with continuous units (no brute force over real values) are checked by
    :func:`_check_continuous_model`: the gradient against central differences, each
    continuous unit's conditional by a probability-integral-transform test, and the sampled
    means against the exact marginals.

    Returns a report; raises ``AssertionError`` on the first failure.
    """
    from . import exact
    from .sampling import GibbsSampler

    gen = np.random.default_rng(rng)
    if model.graph.continuous.any():
        return _check_continuous_model(model, gen, n_chains, n_sweeps, p_floor, eps)
    states, p = brute_force(model)
    log_w = -model.energy(states)
    log_z = float(np.logaddexp.reduce(log_w))
    got = exact.log_partition(model)
    assert np.isclose(got, log_z, rtol=1e-10, atol=1e-10), (
        f"exact log Z {got!r} differs from brute force {log_z!r}")
    vis = np.concatenate([states[g] for g in model.visible], axis=1)
    rows, inverse = np.unique(vis, axis=0, return_inverse=True)
    marginal = np.log(np.bincount(inverse.ravel(), weights=p))
    cuts = np.cumsum([model.units[g].n for g in model.visible])[:-1]
    X = dict(zip(model.visible, np.split(rows, cuts, axis=1)))
    log_p = exact.log_likelihood(model, X)
    assert np.isclose(np.exp(log_p).sum(), 1.0, atol=1e-9), "sum over x of P(x) is not 1"
    assert np.allclose(log_p, marginal, atol=1e-9), "log P(x) differs from the brute-force marginal"
    data = {g: v[gen.integers(0, len(rows), 5)] for g, v in X.items()}
    _check_gradient(model, data, eps)
    report = check_sampler(lambda m, n, r: GibbsSampler(m, n, rng=r), model, n_chains=n_chains,
                           n_sweeps=n_sweeps, p_floor=p_floor, rng=gen)
    return f"exact identities hold; {report}"


def _check_gradient(model, data, eps) -> None:
    """``pe.exact.gradient`` against central differences of the mean log-likelihood of
    ``data`` (laterals' symmetric pairs move together)."""
    from . import exact

    grad = exact.gradient(model, data)
    symmetric = {name for t in model.terms for name in getattr(t, "symmetric_params", ())}
    for name, entries, fd in _central_differences(
            model.params, symmetric, lambda: exact.log_likelihood(model, data).mean(), eps):
        want = sum(grad[name][e] for e in entries)
        assert np.isclose(fd, want, rtol=1e-4, atol=1e-6), (
            f"gradient[{name!r}]{entries[0]} = {want:.6g}, central differences {fd:.6g}")


def _check_continuous_model(model, gen, n_chains, n_sweeps, p_floor, eps) -> str:
    """``check_model`` for a model with continuous units.

    * ``pe.exact.gradient`` equals central differences of the mean log density of random
      data (values in each unit's domain);
    * after ``n_sweeps`` sweeps of ``n_chains`` independent Gibbs chains, for every
      continuous unit ``i``, ``u = F_i(x_i | rest)`` (its exact conditional CDF given the
      chain's other units, :meth:`ContinuousUnits.cdf`) is uniform: at equilibrium
      ``x_i | rest`` follows the exact conditional whatever the update order
      (Kolmogorov-Smirnov against U(0, 1));
    * every unit's sampled mean (``P(on)`` for binary and spin units, the value
      probabilities of categorical ones) lies within the normal quantile of ``p_floor`` over
      the number of tests standard errors of ``pe.exact.marginals``.

    Each test is held to ``p_floor`` divided by the number of tests (Bonferroni).
    """
    from scipy import stats

    from . import exact
    from .sampling import GibbsSampler

    data = {g: _random_values(model.units[g], gen, 5) for g in model.visible}
    _check_gradient(model, data, eps)
    graph = model.graph
    sampler = GibbsSampler(model, n_chains, rng=gen).run(n_sweeps)
    state = sampler.state
    flat = graph.encode(state)
    field = graph.local_field(flat)
    marginals = exact.marginals(model)
    n_tests = sum(u.width for u in model.units.values()) + int(graph.continuous.sum())
    level = p_floor / n_tests
    z_max = stats.norm.isf(level / 2)
    for g, unit in model.units.items():
        slots = np.arange(graph.slots(g).start, graph.slots(g).stop)
        if unit.continuous:
            for i, slot in enumerate(slots):
                u = unit.take([i]).cdf(state[g][:, i:i + 1], field[:, slot:slot + 1])[:, 0]
                p = stats.kstest(u, "uniform").pvalue
                assert p >= level, (f"the draws of unit {i} of {g!r} do not follow its exact "
                                    f"conditional (KS of F(x | rest): p = {p:.3g})")
            mean, var = marginals[g][:, 0], marginals[g][:, 1]
            sampled = state[g]
        else:
            mean = marginals[g].reshape(-1)
            var = mean * (1 - mean)
            sampled = graph.to_bits(flat)[:, slots]
        se = np.sqrt(np.maximum(var, 1e-300) / n_chains)
        z = np.abs(sampled.mean(axis=0) - mean) / se
        assert np.all(z <= z_max), (f"sampled means of {g!r} differ from the exact marginals "
                                    f"by {z.max():.2f} standard errors (limit {z_max:.2f})")
    return (f"exact gradient matches central differences; {n_chains} Gibbs chains after "
            f"{n_sweeps} sweeps match the exact conditionals (KS of F(x | rest)) and "
            "marginal means")


def state_index(model: EnergyModel, state) -> np.ndarray:
    """Index of each joint state in :func:`brute_force`'s list (mixed radix over the units'
    values, the first unit most significant)."""
    digits = np.concatenate([np.searchsorted(u.values, np.asarray(state[g]))
                             for g, u in model.units.items()], axis=1).astype(np.int64)
    radix = np.concatenate([np.full(u.n, len(u.values)) for u in model.units.values()])
    place = np.concatenate([np.cumprod(radix[::-1])[::-1][1:], [1]]).astype(np.int64)
    return digits @ place


def check_sampler(sampler_factory, model: EnergyModel, *, n_chains: int = 4000,
                  n_sweeps: int = 200, n_samples: int = 1, p_floor: float = 1e-6,
                  rng=0) -> str:
    """Chi-square test of a sampler's joint distribution against the exact one.

    ``sampler_factory(model, n_chains, rng)`` returns an object with ``run(n_sweeps)``
    whose ``state`` (after the run) is ``{group: (n_chains, n)}``. After ``n_sweeps`` sweeps
    from the sampler's own start (burn-in), ``n_samples`` states per chain are recorded, one
    after each further sweep, ``N = n_chains * n_samples`` states in all. Cells with an
    expected effective count ``N p / tau`` under 5 are pooled, and the statistic is

        X^2 = sum_cells (O - N p)^2 / (N p) / tau

    on ``cells - 1`` degrees of freedom. With ``n_samples = 1`` (the default) the states are
    independent and ``tau = 1``: the plain chi-square test. With ``n_samples >= 4``, ``tau``
    is the largest :func:`pgm_energy.diagnostics.integrated_time` among the indicators of the
    pooled cells and the energy. Why it holds the false-failure rate at ``p_floor``: for
    correlated samples of a reversible chain the counts' covariance is the multinomial one
    with each direction inflated by the integrated time of some function of the state, so
    the undeflated ``X^2`` is distributed as ``sum_i lambda_i chi2_1`` with ``lambda_i`` at
    most the largest integrated time of any function of the state. Dividing by (an estimate of) that largest
    time makes the statistic no larger than ``chi2_{cells-1}`` in distribution, so a correct,
    mixed sampler fails with probability at most about ``p_floor``. The slowest function is
    a combination of cell indicators; in practice its time is that of the energy or of the
    indicator of the slowest cell, and the maximum of many noisy estimates errs high (a
    conservative test). Successive sweeps cost less than fresh chains, so ``n_samples`` trades
    chains for sweeps at equal power where ``tau`` is small.

    A sampler that has not mixed by the end of the burn-in (strong couplings, too few
    ``n_sweeps``) fails too, so give strongly coupled models more sweeps. Returns a report;
    raises ``AssertionError`` if ``p < p_floor``.
    """
    from scipy import stats

    from .diagnostics import integrated_time

    n_samples = _count(n_samples, "n_samples", 1)
    if n_samples in (2, 3):
        raise ValueError(f"n_samples must be 1 or at least 4 (for the integrated time), "
                         f"got {n_samples}")
    _, p = brute_force(model)
    sampler = sampler_factory(model, n_chains, np.random.default_rng(rng))
    sampler.run(n_sweeps)
    codes, energy = [], []
    for k in range(n_samples):
        if k:
            sampler.run(1)
        codes.append(state_index(model, sampler.state))
        if n_samples > 1:
            energy.append(model.energy(sampler.state))
    codes = np.array(codes)
    observed = np.bincount(codes.ravel(), minlength=len(p)).astype(float)
    tau = 1.0
    if n_samples > 1:
        cells = _pool(observed, n_chains * n_samples * p)[2]
        cell_of = np.empty(len(p), np.int64)
        for j, members in enumerate(cells):
            cell_of[members] = j
        sampled_cells = cell_of[codes][:, :, None]
        tau = float(integrated_time(np.array(energy)))
        for first in range(0, len(cells), 64):         # in blocks: (n_samples, n_chains, 64)
            indicators = sampled_cells == np.arange(first, min(first + 64, len(cells)))
            tau = max(tau, float(np.max(integrated_time(indicators))))
    obs, exp_, _ = _pool(observed, n_chains * n_samples * p / tau, tau)
    p_value = 1.0 if len(exp_) < 2 else float(
        stats.chi2.sf(np.sum((obs - exp_) ** 2 / exp_), len(exp_) - 1))
    assert p_value >= p_floor, (
        f"the sampler's states are unlikely under the exact distribution: chi-square p = "
        f"{p_value:.3g} < {p_floor:g} ({len(exp_)} cells, {n_chains} chains x {n_samples} "
        f"samples, tau = {tau:.3g})")
    return (f"sampler agrees with the exact distribution (chi-square p = {p_value:.3g}, "
            f"tau = {tau:.3g})")


def _pool(observed: np.ndarray, expected: np.ndarray, scale: float = 1.0):
    """Cells pooled in increasing ``expected`` until each holds at least 5 (the last takes
    the remainder): the pooled ``observed / scale``, ``expected`` and the member states."""
    obs, exp_, members, acc_o, acc_e, acc_m = [], [], [], 0.0, 0.0, []
    for k in np.argsort(expected):
        acc_o, acc_e = acc_o + observed[k], acc_e + expected[k]
        acc_m.append(k)
        if acc_e >= 5:
            obs.append(acc_o)
            exp_.append(acc_e)
            members.append(acc_m)
            acc_o, acc_e, acc_m = 0.0, 0.0, []
    if exp_:
        obs[-1] += acc_o
        exp_[-1] += acc_e
        members[-1] += acc_m
    return np.array(obs) / scale, np.array(exp_), members


# -- closed-form references -------------------------------------------------------------------
def ising_chain_log_partition(n: int, J: float, h: float = 0.0, beta: float = 1.0, *,
                              periodic: bool = False) -> float:
    """``log Z`` of an Ising chain of ``n`` spins by its 2 x 2 transfer matrix.

    The energy is ``E(s) = -J sum_i s_i s_{i+1} - h sum_i s_i`` with ``s_i = +-1``, the bond
    sum over ``i = 1 .. n-1`` (open chain) or ``i = 1 .. n`` with ``s_{n+1} = s_1``
    (``periodic=True``, a ring: ``n >= 3``). With the symmetric transfer matrix
    ``T(s, s') = exp(beta J s s' + beta h (s + s') / 2)``,

    ``Z_ring = tr T^n = lambda_+^n + lambda_-^n``, ``Z_open = v^T T^(n-1) v``,
    ``v(s) = exp(beta h s / 2)``,

    where ``lambda_+- = e^{beta J} cosh(beta h) +- sqrt(e^{2 beta J} sinh^2(beta h) +
    e^{-2 beta J})``. The same model is ``pe.Ising(edges, J * ones, h * ones)`` with edges
    ``(i, i + 1)`` (and ``(n - 1, 0)`` for the ring).

    Examples
    --------
    >>> from pgm_energy import testing
    >>> round(testing.ising_chain_log_partition(3, 1.0, beta=0.5), 9)  # log(2 (2 cosh 0.5)^2)
    2.319670556
    """
    n = _count(n, "n", 3 if periodic else 1)
    K, H = beta * float(J), beta * float(h)
    # T = exp(c) M with the entries of M at most 1; M's eigenvalues mu_+ >= |mu_-|.
    c = abs(K) + abs(H)
    M = np.exp(np.array([[K + H, -K], [-K, K - H]]) - c)
    mu, u = np.linalg.eigh(M)                      # ascending: mu[1] = mu_+
    ratio = mu[0] / mu[1]
    if periodic:
        return float(n * (c + np.log(mu[1])) + np.log1p(ratio ** n))
    weights = (u.T @ np.exp(np.array([H, -H]) / 2)) ** 2    # (u_k . v)^2
    return float((n - 1) * (c + np.log(mu[1]))
                 + np.log(weights[1] + weights[0] * ratio ** (n - 1)))


def curie_weiss_log_partition(n: int, J: float, h: float = 0.0, beta: float = 1.0) -> float:
    """``log Z`` of the Curie-Weiss model of ``n`` spins, an exact finite sum.

    The energy is ``E(s) = -(J / n) sum_{i<j} s_i s_j - h sum_i s_i`` (every pair coupled,
    each pair once), the model ``pe.Ising(all pairs, J / n * ones, h * ones)``. With
    ``M = sum_i s_i = 2k - n`` for ``k`` spins up, ``sum_{i<j} s_i s_j = (M^2 - n) / 2``, so

    ``Z = sum_{k=0}^{n} C(n, k) exp(beta (J (M^2 - n) / (2 n) + h M))``,

    summed with log-sum-exp (``n + 1`` terms, any ``n``).

    Examples
    --------
    >>> from pgm_energy import testing
    >>> round(testing.curie_weiss_log_partition(4, 1.0), 9)
    3.025415442
    """
    from scipy.special import gammaln, logsumexp

    n = _count(n, "n", 1)
    k = np.arange(n + 1, dtype=float)
    M = 2 * k - n
    log_binomial = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return float(logsumexp(log_binomial + beta * (J * (M ** 2 - n) / (2 * n) + h * M)))


def ising_torus_log_partition(L1: int, L2: int, J: float, beta: float = 1.0) -> float:
    """``log Z`` of the zero-field Ising model on an ``L1 x L2`` torus: Kaufman's formula.

    The energy is ``E(s) = -J sum_<ij> s_i s_j`` over the ``2 L1 L2`` nearest-neighbour
    bonds of the periodic square lattice (``L1, L2 >= 3``, so no bond is doubled), the model
    ``pe.Ising(edges, J * ones)`` with site ``(r, c) -> r L2 + c`` joined to ``(r, c+1)`` and
    ``(r+1, c)`` modulo the sides. For ``K = beta J > 0`` (B. Kaufman, Phys. Rev. 76, 1232
    (1949)), with ``m = L1`` rows of ``n = L2`` spins,

    ``Z = 1/2 (2 sinh 2K)^{mn/2} [prod_{r=0}^{n-1} 2 cosh(m g_{2r+1} / 2)
    + prod 2 sinh(m g_{2r+1} / 2) + prod 2 cosh(m g_{2r} / 2) + prod 2 sinh(m g_{2r} / 2)]``,

    ``cosh g_q = cosh 2K coth 2K - cos(pi q / n)`` with ``g_q >= 0``, except
    ``g_0 = 2K + log tanh K`` (negative above the critical temperature). The products are
    summed in logarithms, with their signs, so large lattices and strong couplings do not
    overflow. ``K = 0`` gives ``mn log 2``; an antiferromagnet (``K < 0``) is mapped to
    ``-K`` when both sides are even (the lattice is bipartite) and refused otherwise.

    Examples
    --------
    >>> from pgm_energy import testing
    >>> round(testing.ising_torus_log_partition(4, 4, 1.0, beta=0.3), 9)
    12.785523326
    """
    from scipy.special import logsumexp

    m, n = _count(L1, "L1", 3), _count(L2, "L2", 3)
    K = beta * float(J)
    if not np.isfinite(K):
        raise ValueError(f"beta * J must be finite, got {K!r}")
    if K == 0:
        return float(m * n * np.log(2.0))
    if K < 0:
        if m % 2 or n % 2:
            raise ValueError(f"an antiferromagnet (beta J = {K!r} < 0) on a torus with an odd "
                             f"side ({m} x {n}) is frustrated; Kaufman's formula needs J > 0 "
                             "or both sides even")
        K = -K
    theta = np.pi * np.arange(2 * n) / n
    log_sinh = 2 * K + np.log(-np.expm1(-4 * K)) - np.log(2.0)        # log sinh 2K
    log_a = 2 * (2 * K + np.log1p(np.exp(-4 * K)) - np.log(2.0)) - log_sinh
    if log_a < 18:   # a = cosh 2K coth 2K; g = arccosh(1 + d) with, for s = sinh 2K,
        s = np.sinh(2 * K)   # d = a - cos(theta) - 1 = (s - 1)^2 / s + 2 sin^2(theta / 2)
        d = (s - 1) ** 2 / s + 2 * np.sin(theta / 2) ** 2
        g = np.log1p(d + np.sqrt(d * (d + 2)))
    else:            # a > 6e7: arccosh(x) = log(2x) to double precision
        g = np.log(2.0) + log_a + np.log1p(-np.cos(theta) * np.exp(-log_a))
    g[0] = 2 * K + np.log(np.tanh(K))
    half = m * g / 2
    log_2cosh = np.abs(half) + np.log1p(np.exp(-2 * np.abs(half)))
    with np.errstate(divide="ignore"):      # sinh(0) = 0 (at the critical point): log 0
        log_2sinh = np.abs(half) + np.log1p(-np.exp(-2 * np.abs(half)))
    odd, even = slice(1, None, 2), slice(0, None, 2)
    logs = [log_2cosh[odd].sum(), log_2sinh[odd].sum(), log_2cosh[even].sum(),
            log_2sinh[even].sum()]
    signs = [1.0, 1.0, 1.0, float(np.sign(g[0]))]
    total, sign = logsumexp(logs, b=signs, return_sign=True)
    assert sign > 0
    return float(np.log(0.5) + m * n / 2 * (np.log(2.0) + log_sinh) + total)


def _count(value, name: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, or a ``TypeError``/``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)
