"""Hypothesis strategies and checks for testing models, users' own terms and samplers.

Strategies build random small models (built-in terms, and optionally the user's own term
classes), small enough for brute-force enumeration, so any identity of ``DESIGN.md`` can be
checked against the exact answer. The checks (:func:`check_term`, :func:`check_model`,
:func:`check_sampler`) raise ``AssertionError`` with what went wrong, and return a short
report when all is well. Requires the optional dependency ``hypothesis``.
"""
from __future__ import annotations

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without hypothesis
    raise ImportError("pgm_energy.testing needs hypothesis: pip install hypothesis") from exc

from .model import EnergyModel
from .terms import Bias, Lateral, Pairwise, SparsePairwise, Term
from .units import Binary, Categorical, Spin

__all__ = ["unit_groups", "models", "states", "datasets", "weights", "brute_force",
           "state_index", "check_term", "check_model", "check_sampler"]


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
    ``Binary(n)``, ``Spin(n)`` or ``Categorical(n, k)`` with 2 <= k <= max_categories."""
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(1, max_units))
    if kind is Categorical:
        return Categorical(n, draw(st.integers(2, max_categories)))
    return kind(n)


@st.composite
def models(draw, max_groups: int = 3, max_units: int = 4, max_total: int = 9,
           kinds=(Binary, Spin), large_weights: bool = True, scale: float = 2.0,
           extra_terms=()):
    """Strategy for a random small ``EnergyModel``: any mix of built-in terms.

    Up to ``max_groups`` groups of at most ``max_units`` units (``max_total`` in all), each
    group of one of ``kinds`` (add ``pe.Categorical`` for categorical groups with 2 or 3
    values); biases, dense pairwise couplings between groups, laterals and sparse couplings
    (Potts tables for categorical groups) within groups, all with random ``N(0, scale)`` (sometimes
    very large) parameters; a non-empty random subset of the groups is visible. ``extra_terms`` are
    factories ``f(group_name, unit_group, rng) -> Term`` (e.g. a user's term class with
    random parameters): each is applied, or not, to a random group.
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
    for g in names:
        n, shape, width = units[g].n, units[g].feature_shape, units[g].width
        if draw(st.booleans()):
            terms.append(Bias(g, name=f"b_{g}", value=w(shape)))
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
            if draw(st.booleans()):
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
    return EnergyModel(units, terms, visible=visible)


def states(model: EnergyModel, groups=None, *, min_batch: int = 1, max_batch: int = 6):
    """Strategy for a valid state dict of ``model`` (default all groups), random batch size."""
    groups = list(model.units) if groups is None else list(groups)

    @st.composite
    def build(draw):
        batch = draw(st.integers(min_batch, max_batch), label="batch")
        seed = draw(st.integers(0, 2**32 - 1), label="state seed")
        rng = np.random.default_rng(seed)
        return {g: rng.choice(model.units[g].values, size=(batch, model.units[g].n)).astype(float)
                for g in groups}
    return build()


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
    """Check a term: shapes, ``energy_grad`` against central differences of ``energy``, and
    its fast paths (an overridden ``delta_energy``, a compiled form) against ``energy``.

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
    state = {g: gen.choice(units[g].values, size=(n_states, units[g].n)).astype(float)
             for g in term.groups}
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
    if fast_delta:
        for g in term.groups:
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
    return (f"{type(term).__name__}: {checked} parameter entries match central differences"
            + ("; delta_energy matches energy" if fast_delta else "")
            + ("; compiled form matches energy" if compiled is not None else ""))


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

    Returns a report; raises ``AssertionError`` on the first failure.
    """
    from . import exact
    from .sampling import GibbsSampler

    gen = np.random.default_rng(rng)
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
    grad = exact.gradient(model, data)
    symmetric = {name for t in model.terms for name in getattr(t, "symmetric_params", ())}
    for name, entries, fd in _central_differences(
            model.params, symmetric, lambda: exact.log_likelihood(model, data).mean(), eps):
        want = sum(grad[name][e] for e in entries)
        assert np.isclose(fd, want, rtol=1e-4, atol=1e-6), (
            f"gradient[{name!r}]{entries[0]} = {want:.6g}, central differences {fd:.6g}")
    report = check_sampler(lambda m, n, r: GibbsSampler(m, n, rng=r), model, n_chains=n_chains,
                           n_sweeps=n_sweeps, p_floor=p_floor, rng=gen)
    return f"exact identities hold; {report}"


def state_index(model: EnergyModel, state) -> np.ndarray:
    """Index of each joint state in :func:`brute_force`'s list (mixed radix over the units'
    values, the first unit most significant)."""
    digits = np.concatenate([np.searchsorted(u.values, np.asarray(state[g]))
                             for g, u in model.units.items()], axis=1).astype(np.int64)
    radix = np.concatenate([np.full(u.n, len(u.values)) for u in model.units.values()])
    place = np.concatenate([np.cumprod(radix[::-1])[::-1][1:], [1]]).astype(np.int64)
    return digits @ place


def check_sampler(sampler_factory, model: EnergyModel, *, n_chains: int = 4000,
                  n_sweeps: int = 200, p_floor: float = 1e-6, rng=0) -> str:
    """Chi-square test of a sampler's joint distribution against the exact one.

    ``sampler_factory(model, n_chains, rng)`` returns an object with ``run(n_sweeps)``
    whose ``state`` (after the run) is ``{group: (n_chains, n)}``; one state per chain,
    after ``n_sweeps`` sweeps from the sampler's own start, is one sample. Cells with an
    expected count under 5 are pooled. A correct sampler that has mixed fails with
    probability ``p_floor``; one that has not mixed (strong couplings, too few sweeps) fails
    too, so give strongly coupled models more sweeps. Returns a report; raises ``AssertionError`` if ``p < p_floor``.
    """
    from scipy import stats

    _, p = brute_force(model)
    sampler = sampler_factory(model, n_chains, np.random.default_rng(rng))
    sampler.run(n_sweeps)
    codes = state_index(model, sampler.state)
    observed = np.bincount(codes, minlength=len(p)).astype(float)
    expected = n_chains * p
    order = np.argsort(expected)
    obs, exp_, acc_o, acc_e = [], [], 0.0, 0.0
    for k in order:
        acc_o, acc_e = acc_o + observed[k], acc_e + expected[k]
        if acc_e >= 5:
            obs.append(acc_o)
            exp_.append(acc_e)
            acc_o = acc_e = 0.0
    if exp_:
        obs[-1] += acc_o
        exp_[-1] += acc_e
    p_value = 1.0 if len(exp_) < 2 else float(stats.chisquare(obs, exp_).pvalue)
    assert p_value >= p_floor, (
        f"the sampler's states are unlikely under the exact distribution: chi-square p = "
        f"{p_value:.3g} < {p_floor:g} ({len(exp_)} cells, {n_chains} chains)")
    return f"sampler agrees with the exact distribution (chi-square p = {p_value:.3g})"
