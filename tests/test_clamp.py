"""Partial clamping (NaN marks a free unit): the samplers against the exact conditionals
(brute force over the states that agree with the clamp), the draw rule against the numpy
twin, bad input."""
import functools

import numpy as np
import pytest
from scipy import stats

import pgm_energy as pe
from pgm_energy.testing import brute_force, state_index

from reference import gibbs as twin
from reference import models
from reference.terms import CountPenalty

P_FLOOR = 1e-6      # false-alarm rate of each goodness-of-fit test


random_model = functools.partial(models.random_model, scale=1.5)


def per_chain_clamp(rows, n_chains):
    """Chain ``c`` takes clamp row ``c % len(rows)``: ``{group: (n_chains, n)}``."""
    return {g: np.stack([rows[c % len(rows)][g] for c in range(n_chains)]) for g in rows[0]}


def exact_conditional(model, row):
    """P(s | the clamp row) over brute_force's states: zero where a state disagrees."""
    states, p = brute_force(model)
    agree = np.ones(len(p), bool)
    for g, values in row.items():
        held = ~np.isnan(values)
        agree &= np.all(states[g][:, held] == values[held], axis=1)
    q = np.where(agree, p, 0.0)
    return q / q.sum()


def chi_square_pvalue(codes, probabilities):
    """Pearson chi-square of observed state codes against exact probabilities (cells with
    probability 0 must be empty; the others pooled to expected counts >= 5)."""
    n = len(codes)
    observed = np.bincount(codes, minlength=len(probabilities)).astype(float)
    assert observed[probabilities == 0].sum() == 0, "a chain left its clamp"
    expected = n * probabilities
    obs, exp = [], []
    acc_o = acc_e = 0.0
    for k in np.argsort(expected):
        if expected[k] == 0:
            continue
        acc_o, acc_e = acc_o + observed[k], acc_e + expected[k]
        if acc_e >= 5:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o = acc_e = 0.0
    if exp:
        obs[-1] += acc_o
        exp[-1] += acc_e
    if len(exp) < 2:
        return 1.0
    return stats.chisquare(obs, exp).pvalue


def check_conditionals(model, sampler, rows, n_sweeps=30, pt=None):
    """Run ``sampler`` with the rows clamped chain by chain; each row's chains against its
    exact conditional."""
    n = sampler.n_chains
    clamp = per_chain_clamp(rows, n)
    sampler.run(n_sweeps, clamp=clamp)
    state = sampler.state
    for g, values in clamp.items():
        held = ~np.isnan(values)
        np.testing.assert_array_equal(state[g][held], values[held])
    codes = state_index(model, state)
    for r, row in enumerate(rows):
        p = chi_square_pvalue(codes[r::len(rows)], exact_conditional(model, row))
        assert p > P_FLOOR, (r, p)


NAN = np.nan


@pytest.mark.parametrize("schedule", ["sequential", "chromatic", "block"])
def test_gibbs_partial_clamps_per_chain(schedule):
    rng = np.random.default_rng(0)
    model = random_model({"x": pe.Binary(4), "h": pe.Binary(3)}, ["x"], rng)
    rows = [{"x": np.array([1, NAN, 0, NAN])}, {"x": np.array([NAN, 0, NAN, NAN])},
            {"x": np.array([NAN, NAN, NAN, NAN])}]
    sampler = pe.GibbsSampler(model, 3 * 2000, schedule=schedule, rng=1)
    check_conditionals(model, sampler, rows)


def test_gibbs_partial_clamps_across_groups_lateral_spins_categorical():
    rng = np.random.default_rng(1)
    model = random_model({"x": pe.Categorical(2, 3), "s": pe.Spin(3), "h": pe.Binary(2)},
                         ["x"], rng, lateral=("s",))
    rows = [{"x": np.array([2, NAN]), "s": np.array([NAN, 1, NAN])},
            {"x": np.array([NAN, 0]), "s": np.array([-1, NAN, NAN])}]
    sampler = pe.GibbsSampler(model, 2 * 3000, schedule="sequential", rng=2)
    check_conditionals(model, sampler, rows)


def test_one_row_for_all_chains():
    rng = np.random.default_rng(2)
    model = random_model({"x": pe.Binary(3), "h": pe.Binary(3)}, ["x"], rng, lateral=("h",))
    row = {"x": np.array([NAN, 1, 0]), "h": np.array([NAN, NAN, 1])}
    sampler = pe.GibbsSampler(model, 4000, rng=3)
    sampler.run(30, clamp=row)
    codes = state_index(model, sampler.state)
    assert chi_square_pvalue(codes, exact_conditional(model, row)) > P_FLOOR


def test_generic_path_partial_clamps():
    rng = np.random.default_rng(3)
    model = random_model({"x": pe.Binary(4), "h": pe.Binary(2)}, ["x"], rng,
                         extra=[CountPenalty("x", 2, theta=0.7)])
    rows = [{"x": np.array([1, NAN, NAN, 0])}, {"x": np.array([NAN, NAN, 1, NAN])}]
    check_conditionals(model, pe.GibbsSampler(model, 2 * 2500, rng=4), rows)


@pytest.mark.parametrize("algorithm", ["swendsen-wang", "wolff"])
def test_cluster_partial_clamps(algorithm):
    rng = np.random.default_rng(4)
    ring = [(i, (i + 1) % 6) for i in range(6)]
    model = pe.Ising(ring, rng.normal(size=6), fields=0.3 * rng.normal(size=6))
    rows = [{"s": np.array([1, NAN, NAN, -1, NAN, NAN])},
            {"s": np.array([NAN, NAN, -1, NAN, NAN, NAN])}]
    sampler = pe.ClusterSampler(model, 2 * 2500, algorithm=algorithm, rng=5)
    check_conditionals(model, sampler, rows, n_sweeps=60)


def test_cluster_potts_partial_clamps():
    ring = [(i, (i + 1) % 4) for i in range(4)]
    model = pe.EnergyModel({"x": pe.Categorical(4, 3)},
                           [pe.Bias("x", name="b"), pe.SparsePairwise("x", edges=ring,
                                                                     name="J")],
                           visible=["x"])
    rng = np.random.default_rng(5)
    model.params["b"] = 0.5 * rng.normal(size=model.params["b"].shape)
    J = np.zeros(model.params["J"].shape)
    for e in range(len(ring)):
        J[e] = 0.8 * np.eye(3)
    model.params["J"] = J
    rows = [{"x": np.array([2, NAN, NAN, NAN])}, {"x": np.array([NAN, 0, NAN, 1])}]
    sampler = pe.ClusterSampler(model, 2 * 2500, rng=6)
    check_conditionals(model, sampler, rows, n_sweeps=40)


def test_parallel_tempering_partial_clamps():
    rng = np.random.default_rng(6)
    model = random_model({"x": pe.Binary(4), "h": pe.Binary(2)}, ["x"], rng)
    rows = [{"x": np.array([1, NAN, NAN, 0])}, {"x": np.array([NAN, 1, NAN, NAN])}]
    pt = pe.ParallelTempering(model, [1.0, 0.6, 0.3], n_chains=2 * 2000, rng=7)
    clamp = per_chain_clamp(rows, pt.n_chains)
    samples = pt.sample(1, burn_in=30, clamp=clamp)
    state = {g: v[0] for g, v in samples.items()}
    codes = state_index(model, state)
    for r, row in enumerate(rows):
        assert chi_square_pvalue(codes[r::2], exact_conditional(model, row)) > P_FLOOR
    # the hotter replicas hold the clamp too
    held = ~np.isnan(clamp["x"])
    for k in range(3):
        replica = pt.sampler.state["x"][k * pt.n_chains:(k + 1) * pt.n_chains]
        np.testing.assert_array_equal(replica[held], clamp["x"][held])


# -- the draw rule ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_chains", [11, 3])
@pytest.mark.parametrize("schedule", ["sequential", "chromatic"])
def test_per_chain_clamps_equal_numpy_twin(n_chains, schedule):
    """Held units draw their uniform and keep their value; units held everywhere draw
    nothing."""
    rng = np.random.default_rng(7)
    model = random_model({"x": pe.Categorical(3, 3), "s": pe.Spin(2), "y": pe.Binary(3)},
                         ["x"], rng, lateral=("y",))
    sampler = pe.GibbsSampler(model, n_chains, schedule=schedule, rng=3)
    x = rng.integers(0, 3, size=(n_chains, 3)).astype(float)
    x[rng.random(x.shape) < 0.5] = NAN
    y = rng.integers(0, 2, size=(n_chains, 3)).astype(float)
    y[:, 1:] = NAN                                 # y_0 held in every chain
    clamp = {"x": x, "y": y}
    # the twin: start from the clamped state, sweep the units free somewhere, keep the held
    sampler.run(0, clamp=clamp)
    flat = sampler._engine.flat()
    streams = sampler._streams[:, :n_chains].copy()
    graph = model.graph
    keep = np.zeros(flat.shape, bool)
    keep[:, graph.slots("x")] = np.repeat(~np.isnan(x), 3, axis=1)
    keep[:, graph.slots("y")] = ~np.isnan(y)
    first = graph.site_start[:-1]
    order = first if schedule == "sequential" else first[np.argsort(sampler._colour[first],
                                                                    kind="stable")]
    order = order[~keep[:, order].all(axis=0)]
    twin.sweeps(model, flat, order, np.ones(n_chains), streams, 3, keep=keep)
    sampler.run(3, clamp=clamp)
    np.testing.assert_array_equal(sampler._engine.flat(), flat)


@pytest.mark.parametrize("n_chains", [11, 3])
def test_block_per_chain_clamps_equal_numpy_twin(n_chains):
    model = pe.RBM(5, 3, rng=4)
    sampler = pe.GibbsSampler(model, n_chains, schedule="block", rng=5)
    rng = np.random.default_rng(6)
    x = rng.integers(0, 2, size=(n_chains, 5)).astype(float)
    x[rng.random(x.shape) < 0.5] = NAN
    h = np.full((n_chains, 3), NAN)
    h[0, 1] = 1.0                                  # a hidden unit held in one chain
    sampler.run(0, clamp={"x": x, "h": h})
    flat = sampler._engine.flat()
    streams = sampler._streams[:, :n_chains].copy()
    keep = np.concatenate([~np.isnan(x), ~np.isnan(h)], axis=1)
    order = np.argsort(sampler._colour, kind="stable")
    order = order[~keep[:, order].all(axis=0)]
    twin.sweeps(model, flat, order, np.ones(n_chains), streams, 3, keep=keep)
    sampler.run(3, clamp={"x": x, "h": h})
    np.testing.assert_array_equal(sampler._engine.flat(), flat)


@pytest.mark.parametrize("schedule", ["sequential", "block"])
def test_whole_rows_and_shared_rows_draw_as_group_clamps(schedule):
    """A fully observed row is today's group clamp; rows that agree on their NaN draw as the
    same units clamped in every chain; an all-NaN group is no clamp."""
    model = pe.RBM(5, 3, rng=0)
    X = np.random.default_rng(1).integers(0, 2, size=(16, 5)).astype(float)

    def run(clamp):
        return pe.GibbsSampler(model, 16, schedule=schedule, rng=2).run(4, clamp).state["h"]

    np.testing.assert_array_equal(run({"x": X}), run({"x": X, "h": np.full(3, NAN)}))
    row = np.array([1, NAN, 0, NAN, 1])
    a = pe.GibbsSampler(model, 16, schedule=schedule, rng=2).run(4, {"x": row}).state
    b = pe.GibbsSampler(model, 16, schedule=schedule, rng=2).run(
        4, {"x": np.tile(row, (16, 1))}).state
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["h"], b["h"])
    np.testing.assert_array_equal(run({"x": np.full((16, 5), NAN)}), run(None))


def test_block_partial_equals_sequential_engine_statistics_free_units_move():
    model = pe.RBM(6, 4, rng=1)
    X = np.full((32, 6), NAN)
    X[np.arange(32), np.arange(32) % 6] = 1.0
    sampler = pe.GibbsSampler(model, 32, rng=0)
    assert sampler.schedule == "block"
    before = sampler.run(0, clamp={"x": X}).state["x"]
    after = sampler.run(20, clamp={"x": X}).state["x"]
    held = ~np.isnan(X)
    np.testing.assert_array_equal(after[held], 1.0)
    assert (after[~held] != before[~held]).any()


# -- bad input --------------------------------------------------------------------------------
def test_bad_partial_clamps_name_group_and_unit():
    model = pe.EnergyModel({"x": pe.Binary(3), "c": pe.Categorical(2, 3)},
                           [pe.Bias("x"), pe.Pairwise("c", "x")], visible=["x"])
    sampler = pe.GibbsSampler(model, 4, rng=0)
    with pytest.raises(ValueError, match=r"clamp\['x'\] holds 2.0 at unit 1: binary units "
                                         r"take values \[0, 1\], or NaN"):
        sampler.run(1, clamp={"x": [0, 2, NAN]})
    with pytest.raises(ValueError, match=r"clamp\['x'\] holds inf at chain 2, unit 0"):
        sampler.run(1, clamp={"x": np.where(np.arange(12).reshape(4, 3) == 6, np.inf, NAN)})
    with pytest.raises(ValueError, match=r"clamp\['c'\] holds 3.0 at unit 0: categorical"):
        sampler.run(1, clamp={"c": [3, NAN]})
    with pytest.raises(ValueError, match=r"clamp\['c'\] must have shape \(4, 2\)"):
        sampler.run(1, clamp={"c": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="unknown group 'z'"):
        sampler.run(1, clamp={"z": [NAN]})
    with pytest.raises(TypeError, match=r"clamp\['x'\] must be a numeric array"):
        sampler.run(1, clamp={"x": ["a", "b", "c"]})
    pt = pe.ParallelTempering(model, [1.0, 0.5], n_chains=4, rng=0)
    with pytest.raises(ValueError, match=r"clamp\['x'\] must have shape \(4, 3\)"):
        pt.run(1, clamp={"x": np.zeros((8, 3))})


# -- training with missing values -------------------------------------------------------------
def log_marginal_likelihood(model, X):
    """Mean over the rows of log sum over the states agreeing with the observed entries of
    P(s), by brute force."""
    states, p = brute_force(model)
    out = []
    for row in X:
        held = ~np.isnan(row)
        agree = np.all(states["x"][:, held] == row[held], axis=1)
        out.append(np.log(p[agree].sum()))
    return np.mean(out)


def exact_marginal_gradient(model, X, eps=1e-5):
    """d mean log P(observed entries) / d theta by central differences of the brute force,
    entry by entry (a lateral's symmetric pair moved together, its derivative shared)."""
    grads = {}
    for name, value in model.params.items():
        g = np.zeros(value.shape)
        lateral = name.startswith("U_")
        for idx in np.ndindex(value.shape):
            if lateral and idx[0] >= idx[1]:
                continue
            entries = [idx, idx[::-1]] if lateral else [idx]
            old = value[idx]
            moved = []
            for step in (eps, -eps):
                for e in entries:
                    value[e] = old + step
                moved.append(log_marginal_likelihood(model, X))
            up, down = moved
            for e in entries:
                value[e] = old
                g[e] = (up - down) / (2 * eps) / len(entries)
        grads[name] = g
    return grads


MISSING_ROWS = np.array([[1, NAN, 0, NAN], [NAN, NAN, 1, 1], [0, 1, 1, 0], [NAN] * 4])


@pytest.mark.parametrize("lateral", [False, True])
def test_missing_values_gradient_matches_exact_marginal_gradient(lateral):
    """The positive phase samples the missing entries: averaged over calls, PCD's gradient
    on rows with NaN is the gradient of the log marginal likelihood of the observed ones."""
    rng = np.random.default_rng(8)
    model = random_model({"x": pe.Binary(4), "h": pe.Binary(2)}, ["x"], rng,
                         lateral=("h",) if lateral else (), scale=0.8)
    X = np.repeat(MISSING_ROWS, 250, axis=0)
    want = exact_marginal_gradient(model, MISSING_ROWS)
    method = pe.PCD(n_chains=2000, k=2)
    calls = [method.gradient(model, X, rng=np.random.default_rng(9)) for _ in range(40)]
    for name in want:
        got = np.array([c[name] for c in calls])
        mean, se = got.mean(axis=0), got.std(axis=0) / np.sqrt(len(got))
        assert np.all(np.abs(mean - want[name]) < 5 * se + 0.01), (name, mean, want[name])


def test_fully_observed_rows_give_todays_gradient():
    model = pe.BoltzmannMachine(4, 2, rng=0)
    X = np.random.default_rng(1).integers(0, 2, size=(20, 4)).astype(float)
    a = pe.CD(k=1).gradient(model, X, rng=3)
    b = pe.CD(k=1).gradient(model, {"x": X}, rng=3)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize("method", [pe.CD(k=1), pe.PCD(n_chains=20, k=1),
                                    pe.PT([1.0, 0.5], n_chains=20), pe.ExactGradient()])
def test_fit_with_missing_values(method):
    rng = np.random.default_rng(10)
    X = rng.integers(0, 2, size=(60, 6)).astype(float)
    X[rng.random(X.shape) < 0.3] = NAN
    model = pe.RBM(6, 3, rng=0)
    before = {k: v.copy() for k, v in model.params.items()}
    pe.fit(model, X, method=method, epochs=2, batch_size=20, rng=0)
    assert all(np.isfinite(v).all() for v in model.params.values())
    assert any((model.params[k] != before[k]).any() for k in before)


def test_missing_values_bad_input():
    model = pe.RBM(3, 2, rng=0)
    X = np.array([[1, NAN, 0]])
    exact_step = pe.ExactGradient().gradient(model, X)      # the missing entry summed over
    for name, value in pe.exact.gradient(model, X).items():
        np.testing.assert_array_equal(exact_step[name], value)
    with pytest.raises(ValueError, match="expected_data"):
        pe.fit(model, np.array([[0.5, NAN, 0.2]]), method=pe.PCD(n_chains=4),
               expected_data=True, epochs=1)
    with pytest.raises(ValueError, match=r"X\['x'\]: binary units take values \[0, 1\]"):
        pe.fit(model, np.array([[2, NAN, 0]]), method=pe.CD(), epochs=1)
    with pytest.raises(ValueError, match=r"X\['x'\]"):
        pe.fit(model, np.array([[np.inf, NAN, 0]]), method=pe.CD(), epochs=1)


def test_sklearn_refuses_missing_values():
    pytest.importorskip("sklearn")
    from pgm_energy.sklearn import BernoulliRBM

    X = np.random.default_rng(0).random((10, 4))
    X[0, 1] = NAN
    with pytest.raises(ValueError, match="Input X contains NaN"):
        BernoulliRBM(n_components=2, n_iter=1).fit(X)


@pytest.mark.parametrize("schedule", ["chromatic", "block"])
def test_per_chain_clamps_do_not_depend_on_the_thread_count(schedule):
    model = pe.RBM(7, 4, rng=2)
    X = np.random.default_rng(3).integers(0, 2, size=(40, 7)).astype(float)
    X[np.random.default_rng(4).random(X.shape) < 0.5] = NAN
    runs = [pe.GibbsSampler(model, 40, schedule=schedule, rng=5, n_threads=t)
            .run(6, clamp={"x": X}).state for t in (1, 2)]
    for g in runs[0]:
        np.testing.assert_array_equal(runs[0][g], runs[1][g])
