"""Categorical units: exact engine, Gibbs kernel and learning against brute force."""
import numpy as np
import pytest
from hypothesis import given, settings

import pgm_energy as pe
from pgm_energy.exact.cost import make_plan
from pgm_energy.exact.elimination import Elimination
from pgm_energy.exact.enumeration import Enumeration
from pgm_energy.testing import brute_force, check_sampler, models, state_index

from reference import exact as ref
from reference import gibbs as twin
from reference.models import random_model

KINDS = (pe.Binary, pe.Spin, pe.Categorical)
P_FLOOR = 1e-6      # false-alarm rate of each goodness-of-fit test


class ZeroCount(pe.Term):
    """E = theta (number of units at value 0 - 1)^2: a user term over categorical units."""

    def __init__(self, group, theta=0.7, name="zc"):
        super().__init__(groups=(group,), params={name: np.array(theta)})

    def energy(self, state):
        return self.params[self.param_names[0]] * ((state[self.groups[0]] == 0).sum(1) - 1.0) ** 2

    def energy_grad(self, state):
        return {self.param_names[0]: ((state[self.groups[0]] == 0).sum(1) - 1.0) ** 2}




def test_weight_shapes_and_energy_are_one_hot():
    model = pe.EnergyModel({"x": pe.Binary(3), "h": pe.Categorical(2, 4)},
                           [pe.Bias("h", name="c"), pe.Pairwise("h", "x"),
                            pe.Lateral("h", name="V")], visible=["x"])
    assert model.params["c"].shape == (2, 4)
    assert model.params["W"].shape == (2, 4, 3)
    assert model.params["V"].shape == (2, 4, 2, 4)
    rng = np.random.default_rng(0)
    model.params["c"] = rng.normal(size=(2, 4))
    model.params["W"] = rng.normal(size=(2, 4, 3))
    V = np.zeros((2, 4, 2, 4))
    V[0, :, 1, :] = rng.normal(size=(4, 4))
    V[1, :, 0, :] = V[0, :, 1, :].T
    model.params["V"] = V
    x, h = np.array([1.0, 0.0, 1.0]), np.array([3, 1])
    want = -(model.params["c"][0, 3] + model.params["c"][1, 1]
             + model.params["W"][0, 3] @ x + model.params["W"][1, 1] @ x
             + 2 * V[0, 3, 1, 1])
    assert np.isclose(model.energy({"x": x, "h": h})[0], want)


@settings(max_examples=25, deadline=None)
@given(model=models(kinds=KINDS, max_units=3, max_total=6, large_weights=False))
def test_exact_matches_brute_force(model):
    assert np.isclose(pe.exact.log_partition(model), ref.log_partition(model), atol=1e-9)
    states, p = brute_force(model)
    X = {g: states[g][::7][:5] for g in model.visible}
    assert np.allclose(pe.exact.log_likelihood(model, X), ref.log_likelihood(model, X),
                       atol=1e-9)
    assert np.allclose(model.free_energy(X), ref.free_energy(model, X), atol=1e-9)
    got, want = pe.exact.expectations(model), ref.expectations(model)
    data = ref.data_expectations(model, X)
    grad = pe.exact.gradient(model, X)
    for name in got:
        assert np.allclose(got[name], want[name], atol=1e-9), name
        assert np.allclose(grad[name], want[name] - data[name], atol=1e-9), name
    singles = pe.exact.marginals(model)
    for g, unit in model.units.items():
        for i in range(unit.n):
            on = [np.sum(p[states[g][:, i] == v]) for v in unit.values]
            expect = np.array(on) if isinstance(unit, pe.Categorical) else on[-1]
            assert np.allclose(singles[g][i], expect, atol=1e-9)


def test_enumeration_in_pieces_with_a_user_term(monkeypatch):
    """Several pieces (small pieces forced), categorical sites enumerated and summed in
    closed form, a user term tabulated over mixed-radix codes."""
    monkeypatch.setattr(pe.exact.enumeration, "_MIN_PIECE_BITS", 4)
    rng = np.random.default_rng(2)
    units = {"x": pe.Categorical(3, 3), "y": pe.Binary(10), "h": pe.Categorical(2, 4)}
    model = random_model(units, ["x", "y"], rng, lateral=("y",), extra=[ZeroCount("x")],
                         scale=0.5)
    plan = Enumeration(model.graph, (), 1.0, 2)
    assert plan.n_prefix > 0 and len(plan.s_site_ptr) > 1 and len(plan.a_site_ptr) > 1
    assert np.isclose(pe.exact.log_partition(model), ref.log_partition(model), atol=1e-9)
    got, want = pe.exact.expectations(model), ref.expectations(model)
    for name in got:
        assert np.allclose(got[name], want[name], atol=1e-9), name


def test_product_of_categorical_experts_has_closed_form_free_energy():
    """F(x) = -b.x - sum_i log sum_k exp(c_ik + W_ik . x), without enumerating h."""
    rng = np.random.default_rng(1)
    model = random_model({"x": pe.Binary(6), "h": pe.Categorical(12, 5)}, ["x"], rng)
    X = rng.integers(0, 2, size=(4, 6)).astype(float)
    b, c, W = model.params["b_x"], model.params["b_h"], model.params["W_xh"]
    from scipy.special import logsumexp
    want = -X @ b - logsumexp(c[None] + np.einsum("bj,jik->bik", X, W), axis=2).sum(axis=1)
    # 5^12 hidden states: only the closed form can answer within max_states.
    assert np.allclose(model.free_energy(X, max_states=1), want, atol=1e-9)
    log_z = pe.exact.log_partition(model, max_states=64)
    states = ref.all_states(model, ["x"])["x"]
    assert np.isclose(log_z, logsumexp(-model.free_energy(states)), atol=1e-9)


def test_elimination_sums_free_categorical_units_and_clamped_ones():
    rng = np.random.default_rng(3)
    model = random_model({"x": pe.Categorical(3, 3), "h": pe.Binary(2)}, ["x"], rng)
    assert np.isclose(pe.exact.log_partition(model, method="eliminate"),
                      ref.log_partition(model))
    assert np.isclose(pe.exact.log_partition(model), ref.log_partition(model))
    # With the categorical units clamped, elimination sums the binary hidden units.
    X = ref.all_states(model, ["x"])["x"][:4]
    plan = make_plan(model.graph, ["x"], method="eliminate")
    assert isinstance(plan, Elimination)
    hidden_sum = plan.log_sum(plan.clamped_flat({"x": X}))
    assert np.allclose(-hidden_sum, ref.free_energy(model, {"x": X}))


def test_conditional_is_softmax_of_slot_fields():
    rng = np.random.default_rng(4)
    model = random_model({"x": pe.Categorical(2, 3), "h": pe.Categorical(2, 4)}, ["x"], rng,
                         lateral=("x",), extra=[ZeroCount("x", 1.3)])
    states, _ = brute_force(model)
    rows = {g: v[::50] for g, v in states.items()}
    got = model.conditional("x", rows)
    assert got.shape == (len(rows["x"]), 2, 3)
    for i in range(2):
        energies = []
        for v in range(3):
            edited = {g: a.copy() for g, a in rows.items()}
            edited["x"][:, i] = v
            energies.append(-model.energy(edited))
        p = np.exp(np.array(energies) - np.max(energies, axis=0))
        assert np.allclose(got[:, i], (p / p.sum(axis=0)).T, atol=1e-12)


@pytest.mark.parametrize("schedule", ["sequential", "chromatic"])
@pytest.mark.parametrize("with_user_term", [False, True])
def test_sampler_matches_exact_distribution(schedule, with_user_term):
    rng = np.random.default_rng(5)
    extra = [ZeroCount("x", 0.9)] if with_user_term else []
    model = random_model({"x": pe.Categorical(2, 3), "s": pe.Spin(2),
                          "h": pe.Categorical(2, 3)}, ["x", "s"], rng, lateral=("x",),
                         extra=extra)
    check_sampler(lambda m, n, r: pe.GibbsSampler(m, n, schedule=schedule, rng=r), model,
                  n_chains=4000, n_sweeps=60, p_floor=P_FLOOR, rng=0)


@pytest.mark.parametrize("with_user_term", [False, True])
def test_block_schedule_with_a_categorical_layer(with_user_term):
    """Block schedule on an RBM with categorical hidden units: the binary layer by BLAS, the
    categorical one unit by unit (and a user term on the visible layer moves it there too)."""
    rng = np.random.default_rng(13)
    model = random_model({"x": pe.Binary(4), "h": pe.Categorical(3, 3)}, ["x"], rng)
    if with_user_term:
        model = pe.EnergyModel(model.units, model.terms + [CountPenaltyX()], visible=["x"])
    assert pe.GibbsSampler(model, 2).schedule != "block"     # "auto": block for plain RBMs
    sampler = pe.GibbsSampler(model, 2, schedule="block")
    assert sampler._engine.slow == (False, True) or sampler._engine.slow == (True, True)
    check_sampler(lambda m, n, r: pe.GibbsSampler(m, n, schedule="block", rng=r), model,
                  n_chains=4000, n_sweeps=40, p_floor=P_FLOOR, rng=0)


class CountPenaltyX(pe.Term):
    """E = 0.4 (sum x - 2)^2 on the binary visible layer."""

    def __init__(self):
        super().__init__(groups=("x",), params={"t": np.array(0.4)})

    def energy(self, state):
        return self.params["t"] * (state["x"].sum(axis=1) - 2.0) ** 2

    def energy_grad(self, state):
        return {"t": (state["x"].sum(axis=1) - 2.0) ** 2}


def test_clamped_sampling_matches_exact_conditional():
    rng = np.random.default_rng(6)
    model = random_model({"x": pe.Binary(3), "h": pe.Categorical(2, 4)}, ["x"], rng)
    x = np.array([1.0, 0.0, 1.0])
    sampler = pe.GibbsSampler(model, 20000, rng=1)
    sampler.run(2, clamp={"x": x})
    h = sampler.state["h"]
    p = model.conditional("h", {"x": x, "h": [0, 0]})[0]          # h independent given x
    for i in range(2):
        counts = np.bincount(h[:, i].astype(int), minlength=4)
        se = np.sqrt(p[i] * (1 - p[i]) / len(h))
        assert np.all(np.abs(counts / len(h) - p[i]) < 5 * se + 1e-12)
    assert np.all(sampler.state["x"] == x)


@pytest.mark.parametrize("n_chains", [1, 3, 11])
def test_kernel_equals_numpy_twin(n_chains):
    """The vector path (8-lane groups) and the one-chain-at-a-time path (< 8 chains)."""
    rng = np.random.default_rng(7)
    model = random_model({"x": pe.Categorical(3, 3), "s": pe.Spin(2), "y": pe.Binary(2)},
                         ["x"], rng, lateral=("x",))
    sampler = pe.GibbsSampler(model, n_chains, schedule="sequential", rng=3)
    flat = sampler._engine.flat()
    streams = sampler._streams.copy()
    sampler.run(3)
    order = model.graph.site_start[:-1]
    twin.sweeps(model, flat, order, np.ones(n_chains), streams[:, :n_chains].copy(), 3)
    assert np.array_equal(sampler._engine.flat(), flat)


@pytest.mark.parametrize("with_user_term", [False, True])
def test_same_seed_same_samples_for_any_thread_count(with_user_term):
    """Also through the generic path, which copies the chains out of several blocks."""
    rng = np.random.default_rng(8)
    extra = [ZeroCount("x", 0.4)] if with_user_term else []
    model = random_model({"x": pe.Categorical(4, 3), "h": pe.Categorical(3, 5)}, ["x"], rng,
                         extra=extra)
    runs = [pe.GibbsSampler(model, 40, rng=9, n_threads=t).run(5).state for t in (1, 2)]
    for g in model.units:
        assert np.array_equal(runs[0][g], runs[1][g])


def test_learning_improves_exact_likelihood():
    rng = np.random.default_rng(9)
    model = random_model({"x": pe.Categorical(3, 3), "h": pe.Categorical(2, 3)}, ["x"], rng,
                         scale=0.01)
    data = np.array([[0, 1, 2], [0, 1, 2], [2, 1, 0], [1, 1, 1]] * 8, dtype=float)
    before = pe.exact.log_likelihood(model, data).mean()
    pe.fit(model, data, method=pe.PCD(n_chains=50, k=3), optimizer=pe.SGD(lr=0.1),
           epochs=30, batch_size=8, rng=0, verbose=0)
    after_pcd = pe.exact.log_likelihood(model, data).mean()
    pe.fit(model, data, method=pe.ExactGradient(), optimizer=pe.SGD(lr=0.1), epochs=30,
           batch_size=32, rng=0, verbose=0)
    after_exact = pe.exact.log_likelihood(model, data).mean()
    assert after_pcd > before + 0.5
    assert after_exact > after_pcd


def test_pseudo_log_likelihood_matches_definition():
    rng = np.random.default_rng(10)
    model = random_model({"x": pe.Categorical(2, 3), "y": pe.Binary(2),
                          "h": pe.Binary(2)}, ["x", "y"], rng)
    X = {"x": np.array([[0, 2], [1, 1]], float), "y": np.array([[1, 0], [0, 0]], float)}
    got = pe.learning.pseudo_log_likelihood(model, X)
    total = np.zeros(2)
    for g in ("x", "y"):
        for i in range(2):
            log_p = []
            for v in model.units[g].values:
                edited = {k: a.copy() for k, a in X.items()}
                edited[g][:, i] = v
                log_p.append(-model.free_energy(edited))
            log_p = np.array(log_p)
            mine = -model.free_energy(X)
            total += mine - np.logaddexp.reduce(log_p, axis=0)
    assert np.isclose(got, total.mean())


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(11)
    model = random_model({"x": pe.Categorical(2, 3), "h": pe.Binary(2)}, ["x"], rng,
                         lateral=("x",))
    model.save(tmp_path / "m.npz")
    loaded = pe.load(tmp_path / "m.npz")
    assert loaded.units["x"] == pe.Categorical(2, 3)
    assert np.isclose(pe.exact.log_partition(loaded), pe.exact.log_partition(model))


@pytest.mark.parametrize("make, error, match", [
    (lambda: pe.Categorical(3, 1), ValueError, r"k must lie in \[2, 1024\]"),
    (lambda: pe.Categorical(3, 2.5), TypeError, "k must be an int"),
    (lambda: pe.EnergyModel({"x": pe.Categorical(3, 3)},
                            [pe.SparsePairwise("x", [(0, 1)], value=[1.0])]), ValueError,
     r"shape \(1, 3, 3\)"),
    (lambda: pe.EnergyModel({"x": pe.Categorical(3, 3)},
                            [pe.Interaction("x", cliques=[(0, 1, 2)])]), TypeError, "one-hot"),
])
def test_bad_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_values_and_unsupported_faces():
    model = pe.EnergyModel({"x": pe.Categorical(2, 3), "h": pe.Binary(4)},
                           [pe.Bias("x"), pe.Pairwise("h", "x"), pe.Lateral("x", name="U")],
                           visible=["x"])
    with pytest.raises(ValueError, match=r"categorical units take values \[0, 1, 2\]"):
        model.energy({"x": [[0, 3]], "h": [[0, 0, 0, 0]]})
    with pytest.raises(ValueError, match="grey levels"):
        model.as_state({"x": [[0.5, 1]]}, ["x"], expectations=True)
    model.params["U"][0, 1, 0, 2] = model.params["U"][0, 2, 0, 1] = 1.0
    with pytest.raises(ValueError, match="zero diagonal"):
        pe.exact.log_partition(model)
    model.params["U"][...] = 0.0
    with pytest.raises(ValueError, match="two layers"):
        pe.GibbsSampler(model, 4, schedule="block")       # the lateral needs a third colour
    assert pe.exact.sample(model, 3, rng=0)["x"].shape == (3, 2)   # elimination draws them


@pytest.mark.parametrize("base", ["biases", "uniform", "data"])
def test_ais_matches_exact_log_partition(base):
    """The joint path anneals categorical units (softmax base, one-hot base fields); the
    estimate lies within 4 of its standard errors (plus a small bias allowance)."""
    rng = np.random.default_rng(12)
    model = random_model({"x": pe.Categorical(4, 3), "y": pe.Spin(3),
                          "h": pe.Categorical(3, 4)}, ["x", "y"], rng, lateral=("x",),
                         extra=[ZeroCount("x", 0.5)], scale=0.7)
    if base == "data":
        base = {"x": rng.integers(0, 3, (30, 4)).astype(float),
                "y": rng.choice([-1.0, 1.0], (30, 3))}
    est = pe.ais.log_partition(model, n_betas=300, n_runs=100, rng=0, base=base)
    assert abs(est.log_z - pe.exact.log_partition(model)) < 4 * est.stderr + 0.02


class OneHotCoupling(pe.Term):
    """The energy of ``pe.Pairwise("h", "x")`` with categorical ``h``, written by a user:
    ``E = -sum_ij W[i, h_i, j] x_j`` from integer values (no compiled form)."""

    def __init__(self, W):
        super().__init__(groups=("h", "x"), params={"V": np.asarray(W, float)})

    def energy(self, state):
        h = state["h"].astype(int)
        rows = self.params["V"][np.arange(h.shape[1]), h]          # (batch, n_h, n_x)
        return -np.einsum("bij,bj->b", rows, state["x"])

    def energy_grad(self, state):
        h = state["h"].astype(int)
        onehot = h[..., None] == np.arange(self.params["V"].shape[1])
        return {"V": -(onehot[..., None] * state["x"][:, None, None, :])}


def test_categorical_pairwise_agrees_with_its_generic_path_version():
    rng = np.random.default_rng(14)
    compiled = random_model({"x": pe.Binary(4), "h": pe.Categorical(2, 3)}, ["x"], rng)
    generic = pe.EnergyModel(compiled.units,
                             [pe.Bias("x", name="b_x", value=compiled.params["b_x"]),
                              pe.Bias("h", name="b_h", value=compiled.params["b_h"]),
                              OneHotCoupling(compiled.params["W_xh"].transpose(1, 2, 0))],
                             visible=["x"])
    assert generic.graph.generic_terms and not compiled.graph.generic_terms
    assert np.isclose(pe.exact.log_partition(generic), pe.exact.log_partition(compiled))
    X = ref.all_states(compiled, ["x"])["x"]
    grad_c, grad_g = pe.exact.gradient(compiled, X[:5]), pe.exact.gradient(generic, X[:5])
    assert np.allclose(grad_g["V"], grad_c["W_xh"].transpose(1, 2, 0))
    assert np.allclose(generic.conditional("h", {"x": X, "h": np.zeros((16, 2))}),
                       compiled.conditional("h", {"x": X, "h": np.zeros((16, 2))}))
    for schedule in ("sequential", "chromatic"):     # (no compiled layers for "block")
        check_sampler(lambda m, n, r: pe.GibbsSampler(m, n, schedule=schedule, rng=r),
                      generic, n_chains=4000, n_sweeps=30, p_floor=P_FLOOR, rng=0)


def test_potts_model_on_a_ring():
    """``SparsePairwise`` with ``J[e] = theta I`` is the Potts model: on a ring of n units
    with q values, ``Z = (e^theta + q - 1)^n + (q - 1)(e^theta - 1)^n``."""
    n, q, theta = 7, 3, 0.8
    edges = [(i, (i + 1) % n) for i in range(n)]
    model = pe.EnergyModel({"x": pe.Categorical(n, q)},
                           [pe.SparsePairwise("x", edges, value=theta * np.stack([np.eye(q)] * n))])
    a = np.exp(theta)
    want = np.log((a + q - 1) ** n + (q - 1) * (a - 1) ** n)
    assert np.isclose(pe.exact.log_partition(model), want, rtol=1e-12)
    check_sampler(lambda m, c, r: pe.GibbsSampler(m, c, schedule="chromatic", rng=r), model,
                  n_chains=20000, n_sweeps=30, p_floor=P_FLOOR, rng=0)


class MatchPair(pe.Term):
    """E = -theta [x_0 = 2][x_1 = 1], offering a product form over the one-hot slots (which
    the kernels cannot use: they multiply unit values), so it must take the generic path."""

    def __init__(self, group, theta=3.0):
        super().__init__(groups=(group,), params={"mt": np.array([theta])})

    def energy(self, state):
        x = state[self.groups[0]]
        return -self.params["mt"][0] * ((x[:, 0] == 2) & (x[:, 1] == 1))

    def energy_grad(self, state):
        x = state[self.groups[0]]
        return {"mt": -((x[:, 0] == 2) & (x[:, 1] == 1))[:, None] * 1.0}

    def compile_factors(self, offsets):
        first = offsets[self.groups[0]]
        return [pe.FactorCoupling("mt", np.array([[first + 2, first + 4]]), np.ones(1))]


@pytest.mark.parametrize("schedule", ["sequential", "chromatic"])
def test_product_factors_on_categorical_slots_take_the_generic_path(schedule):
    rng = np.random.default_rng(15)
    model = random_model({"x": pe.Categorical(2, 3), "h": pe.Binary(2)}, ["x"], rng,
                         extra=[MatchPair("x")], scale=0.3)
    assert model.graph.python_units[model.graph.slots("x")].all()
    check_sampler(lambda m, n, r: pe.GibbsSampler(m, n, schedule=schedule, rng=r), model,
                  n_chains=4000, n_sweeps=50, p_floor=P_FLOOR, rng=0)


def test_site_helpers_match_scipy_per_site():
    from scipy.special import logsumexp, softmax

    from pgm_energy.graph import site_log_sum_exp, site_softmax

    sizes = np.array([3, 2, 5])
    values = 300.0 * np.random.default_rng(16).normal(size=(4, sizes.sum()))
    parts = np.split(values, np.cumsum(sizes)[:-1], axis=1)
    assert np.allclose(site_log_sum_exp(values, sizes),
                       np.stack([logsumexp(p, axis=1) for p in parts], axis=1))
    assert np.allclose(site_softmax(values, sizes),
                       np.concatenate([softmax(p, axis=1) for p in parts], axis=1))
    assert site_log_sum_exp(values[:, :0], sizes[:0]).shape == (4, 0)


def test_pieces_fix_categorical_sites_when_binary_slots_run_out(monkeypatch):
    """An all-categorical model still splits into pieces (the last sites fixed by the piece
    number) that threads share; every thread count gives the brute-force answer."""
    monkeypatch.setattr(pe.exact.enumeration, "_MIN_PIECE_BITS", 2)
    rng = np.random.default_rng(17)
    model = random_model({"x": pe.Categorical(4, 3), "y": pe.Categorical(1, 4)}, ["x"], rng,
                         lateral=("x",), extra=[ZeroCount("x", 0.5)])
    plan = Enumeration(model.graph, (), 1.0, 2)
    assert plan.m_b == 0 and plan.n_fixed_sites >= 2 and plan.n_pieces >= 9
    want = ref.log_partition(model)
    expect = ref.expectations(model)
    for n_threads in (1, 2, 3):
        assert np.isclose(pe.exact.log_partition(model, n_threads=n_threads), want)
        got = pe.exact.expectations(model, n_threads=n_threads)
        for name in got:
            assert np.allclose(got[name], expect[name], atol=1e-10), name


def test_state_index_is_the_position_in_the_brute_force_list():
    rng = np.random.default_rng(18)
    model = random_model({"x": pe.Categorical(2, 3), "s": pe.Spin(2), "y": pe.Binary(1)},
                         ["x"], rng)
    states, p = brute_force(model)
    assert len(p) == 9 * 4 * 2
    np.testing.assert_array_equal(state_index(model, states), np.arange(len(p)))
