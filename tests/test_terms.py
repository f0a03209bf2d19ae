"""Users' own terms (only energy and energy_grad) in every face, against brute force."""
import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy import learning as L

from reference import exact as ref
from reference.terms import CountPenalty
from test_sampling import P_FLOOR, chi_square_pvalue, exact_state_probabilities, state_codes


class Parity(pe.Term):
    """E = -theta * s_0 s_1 s_2 on a spin group: a three-unit interaction."""

    def __init__(self, group, theta=0.0):
        super().__init__(groups=(group,), params={"parity": np.array(theta, dtype=float)})

    def energy(self, state):
        s = state[self.groups[0]]
        return -self.params["parity"] * s[:, 0] * s[:, 1] * s[:, 2]

    def energy_grad(self, state):
        s = state[self.groups[0]]
        return {"parity": -s[:, 0] * s[:, 1] * s[:, 2]}


class Agreement(pe.Term):
    """E = -a (sum x)(sum h): a term over two groups."""

    def __init__(self, a=0.0):
        super().__init__(groups=("x", "h"), params={"a": np.array(a, dtype=float)})

    def energy(self, state):
        return -self.params["a"] * state["x"].sum(axis=1) * state["h"].sum(axis=1)

    def energy_grad(self, state):
        return {"a": -state["x"].sum(axis=1) * state["h"].sum(axis=1)}


def models_with_user_terms():
    rng = np.random.default_rng(0)
    count = pe.EnergyModel(
        {"x": 6, "h": 3},
        [pe.Bias("x", value=rng.normal(size=6)), pe.Pairwise("h", "x", value=rng.normal(size=(3, 6))),
         CountPenalty("x", k=3, theta=0.3)], visible=["x"])
    parity = pe.EnergyModel(
        {"s": pe.Spin(4), "h": 2},
        [pe.Bias("s", value=0.3 * rng.normal(size=4)), Parity("s", theta=0.8),
         pe.Pairwise("h", "s", value=0.5 * rng.normal(size=(2, 4)))], visible=["s"])
    two_groups = pe.EnergyModel(
        {"x": pe.Spin(3), "h": 3},
        [pe.Bias("h", value=rng.normal(size=3)), pe.Pairwise("h", "x", value=0.5 * rng.normal(size=(3, 3))),
         Agreement(a=0.3)], visible=["x"])
    interaction = pe.EnergyModel(
        {"s": pe.Spin(5), "h": 2},
        [pe.Bias("s", value=0.2 * rng.normal(size=5)),
         pe.Interaction("s", [(0, 1, 2), (1, 3, 4), (0, 4), (2, 3, 4, 1)],
                        value=0.8 * rng.normal(size=4)),
         pe.Pairwise("h", "s", value=0.5 * rng.normal(size=(2, 5)))], visible=["s"])
    return {"count": count, "parity": parity, "two_groups": two_groups,
            "interaction": interaction}


MODELS = models_with_user_terms()


@pytest.mark.parametrize("name", MODELS)
def test_exact_functions_match_brute_force(name):
    model = MODELS[name]
    X = ref.all_states(model, model.visible)
    np.testing.assert_allclose(pe.exact.log_partition(model), ref.log_partition(model),
                               rtol=1e-12)
    np.testing.assert_allclose(pe.exact.log_likelihood(model, X), ref.log_likelihood(model, X),
                               rtol=1e-11, atol=1e-11)
    got, want = pe.exact.expectations(model), ref.expectations(model)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=1e-11)
    grad = pe.exact.gradient(model, X)
    data = ref.data_expectations(model, X)
    for k in want:
        np.testing.assert_allclose(grad[k], want[k] - data[k], atol=1e-11)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("schedule", ["sequential", "chromatic", "block"])
def test_every_schedule_samples_the_exact_distribution(name, schedule):
    """The block schedule keeps BLAS for a layer no user term reads and updates the other
    unit by unit (it applies where the compiled couplings form two dense layers)."""
    model = MODELS[name]
    if schedule == "block" and name == "interaction":
        with pytest.raises(ValueError, match="two layers"):
            pe.GibbsSampler(model, 2, schedule="block")
        return
    _, p = exact_state_probabilities(model)
    sampler = pe.GibbsSampler(model, n_chains=4000, schedule=schedule, rng=3)
    codes = state_codes(model, sampler.run(40).state)
    assert chi_square_pvalue(codes, p) > P_FLOOR


def test_conditional_with_a_user_term():
    model = MODELS["count"]
    state = {"x": np.array([[1, 1, 0, 0, 1, 0.0]]), "h": np.array([[0, 1, 0.0]])}
    got = model.conditional("x", state)
    for i in range(6):
        on, off = {k: v.copy() for k, v in state.items()}, {k: v.copy() for k, v in state.items()}
        on["x"][:, i], off["x"][:, i] = 1, 0
        d = model.energy(off) - model.energy(on)
        np.testing.assert_allclose(got[:, i], 1 / (1 + np.exp(-d)), rtol=1e-12)


def test_clamping_every_unit_of_a_model_with_a_user_term_moves_nothing():
    model = pe.EnergyModel({"x": pe.Binary(3)}, [CountPenalty("x", k=1, theta=0.5)])
    sampler = pe.GibbsSampler(model, 4, schedule="sequential", rng=0)
    streams = sampler._streams.copy()
    state = sampler.run(1, clamp={"x": [1.0, 0.0, 1.0]}).state
    np.testing.assert_array_equal(state["x"], np.tile([1.0, 0.0, 1.0], (4, 1)))
    np.testing.assert_array_equal(sampler._streams, streams)     # no draws either


def test_block_schedule_keeps_product_factors():
    """A layer with product factors (here single-unit cliques of an Interaction) is updated
    unit by unit, never by the BLAS layer update, which knows no factors."""
    rbm = pe.RBM(3, 2, rng=0)
    model = pe.EnergyModel(rbm.units, list(rbm.terms) + [pe.Interaction("x", [(0,), (1,)],
                                                                        value=[3.0, -2.0])],
                           visible=["x"])
    _, p = exact_state_probabilities(model)
    sampler = pe.GibbsSampler(model, n_chains=4000, schedule="block", rng=3)
    assert chi_square_pvalue(state_codes(model, sampler.run(40).state), p) > P_FLOOR


def test_elimination_refuses_user_terms_clearly_and_auto_avoids_block():
    model = MODELS["count"]
    with pytest.raises(TypeError, match="CountPenalty only define"):
        pe.exact.log_partition(model, method="eliminate")
    assert pe.GibbsSampler(model, 2).schedule in ("sequential", "chromatic")


@pytest.mark.parametrize("name", MODELS)
def test_ais_with_user_terms_agrees_with_exact(name):
    model = MODELS[name]
    estimate = pe.ais.log_partition(model, n_betas=300, n_runs=200, rng=2)
    assert abs(estimate.log_z - pe.exact.log_partition(model)) < max(4 * estimate.stderr, 0.02)


@pytest.mark.parametrize("method", [lambda: L.ExactGradient(), lambda: L.PCD(n_chains=200, k=3)])
def test_training_with_a_user_term_improves_the_likelihood(method):
    rng = np.random.default_rng(5)
    X = np.array([rng.permutation([1.0, 1, 1, 0, 0, 0]) for _ in range(80)])  # three on
    model = pe.EnergyModel({"x": 6, "h": 3},
                           [pe.Bias("x"), pe.Pairwise("h", "x", value=0.01 * rng.normal(size=(3, 6))),
                            CountPenalty("x", k=3)], visible=["x"])
    before = pe.exact.log_likelihood(model, X).mean()
    L.fit(model, X, method(), L.SGD(lr=0.05, momentum=0.5), epochs=30, batch_size=20, rng=1)
    after = pe.exact.log_likelihood(model, X).mean()
    assert after > before + 0.1
    assert model.params["theta"] > 0.05               # the penalty learned to favour k = 3


def test_save_and_load_a_user_term(tmp_path):
    model = MODELS["count"]
    model.save(tmp_path / "m.npz")
    loaded = pe.load(tmp_path / "m.npz")
    assert isinstance(loaded.terms[2], CountPenalty) and loaded.terms[2].k == 3
    assert pe.exact.log_partition(loaded) == pytest.approx(pe.exact.log_partition(model))


def test_a_user_term_with_unsaveable_state(tmp_path):
    class Opaque(CountPenalty):
        pass

    model = pe.EnergyModel({"x": 2}, [Opaque("x", k=1)])
    model.terms[0].k = object()
    with pytest.raises(TypeError, match="config"):
        model.save(tmp_path / "m.npz")


@pytest.mark.parametrize("name", MODELS)
def test_generic_updates_equal_the_numpy_twin(name):
    """Units read by user terms use the chains' own streams, one draw per update."""
    from reference import gibbs as twin

    model = MODELS[name]
    sampler = pe.GibbsSampler(model, n_chains=9, schedule="sequential", rng=4)
    streams = sampler._streams[:, :9].copy()
    flat = sampler._engine.flat()
    twin.sweeps(model, flat, np.arange(model.graph.n_units), np.ones(9), streams, 3)
    sampler.run(3)
    np.testing.assert_array_equal(sampler._engine.flat(), flat)


def test_interaction_runs_in_the_gibbs_kernel_and_checks_out():
    from pgm_energy import testing

    model = MODELS["interaction"]
    graph = model.graph
    assert not graph.python_units.any() and len(graph.factor_members) == 4
    colour = graph.colouring()
    for clique in [(0, 1, 2), (1, 3, 4), (0, 4), (2, 3, 4, 1)]:
        assert len(set(colour[list(clique)])) == len(clique)    # colouring respects cliques
    assert "delta_energy matches" in testing.check_term(
        pe.Interaction("x", [(0, 1, 2), (2, 3)], value=[0.5, -1.0]), {"x": pe.Spin(4)})
    assert "delta_energy matches" in testing.check_term(
        pe.Interaction("x", [(0, 1, 2)], value=[0.7]), {"x": 4})
    assert "exact identities hold" in testing.check_model(model)


def test_interaction_validation():
    with pytest.raises(ValueError, match="distinct units"):
        pe.Interaction("x", [(0, 0, 1)])
    with pytest.raises(ValueError, match="distinct"):
        pe.Interaction("x", [(0, 1, 2), (2, 1, 0)])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        pe.EnergyModel({"x": 3}, [pe.Interaction("x", [(0, 1, 3)])])


def test_interaction_refuses_negative_unit_indices():
    """Issue 19: -2 was read by numpy indexing in the exact path and as padding in the Gibbs
    kernel, so the two disagreed."""
    with pytest.raises(ValueError, match=r"Interaction 'T' cliques: unit indices must lie in "
                                         r"\[0, n\), got -2 in clique 0 \(0, -2\)"):
        pe.Interaction("x", cliques=[(0, -2)])
    with pytest.raises(ValueError, match="got -1 in clique 1"):
        pe.Interaction("x", cliques=[(0,), (1, 2, -1)])


# The one shared validation of unit-index tuples (pgm_energy.terms.indices), used by every term
# and preset that takes edges or cliques: the same input gives the same error everywhere.
INDEX_TAKERS = {
    "SparsePairwise": lambda e: pe.SparsePairwise("x", e),
    "Interaction": lambda e: pe.Interaction("x", e),
    "Ising": lambda e: pe.Ising(e, n=4),
}


@pytest.mark.parametrize("take", list(INDEX_TAKERS.values()), ids=list(INDEX_TAKERS))
@pytest.mark.parametrize("tuples, error, match", [
    ([(0, -1)], ValueError, r"unit indices must lie in \[0, n\), got -1 in \w+ 0 \(0, -1\)"),
    ([(0, 1), (2, 2)], ValueError, r"must join distinct units, got \(2, 2\) at 1"),
    ([(0, 1), (1, 0)], ValueError, r"must be distinct \(as sets of units\); \(0, 1\) appears"),
    ([(0, 1.0)], TypeError, "must hold integer unit indices, got dtype float64"),
    ([(True, False)], TypeError, "must hold integer unit indices, got dtype bool"),
    ([("a", "b")], TypeError, "must hold integer unit indices"),
    ([[(0, 1)]], ValueError, "flat sequence|shape"),
    (5, TypeError, "must be a sequence of"),
])
def test_edges_and_cliques_share_one_validation(take, tuples, error, match):
    with pytest.raises(error, match=match):
        take(tuples)


@pytest.mark.parametrize("make", [
    lambda: pe.EnergyModel({"x": 3}, [pe.SparsePairwise("x", [(0, 3)])]),
    lambda: pe.EnergyModel({"x": 3}, [pe.Interaction("x", [(0, 1), (3,)])]),
    lambda: pe.Ising([(0, 3)], n=3),
])
def test_indices_past_the_group_are_refused(make):
    with pytest.raises(ValueError, match=r"unit indices must lie in \[0, 3\) for group '\w' of "
                                         r"3 units, got 3"):
        make()


def test_edge_and_clique_sizes():
    with pytest.raises(ValueError, match=r"shape \(n_edges, 2\).*got 3 at 1"):
        pe.SparsePairwise("x", [(0, 1), (0, 1, 2)])
    with pytest.raises(ValueError, match="at least one unit, got an empty one at 1"):
        pe.Interaction("x", [(0, 1), ()])
    t = pe.Interaction("x", np.array([[0, 1, 2], [1, 2, 3]], dtype=np.uint8))
    assert t.cliques == [(0, 1, 2), (1, 2, 3)]
    assert pe.SparsePairwise("x", []).edges.shape == (0, 2)
    assert pe.Interaction("x", [(2,), (0, 3, 1)]).cliques == [(2,), (0, 3, 1)]


def test_edges_and_cliques_are_read_only():
    """The compiled graph is built from them once; writing them would desynchronise it."""
    sparse, inter = pe.SparsePairwise("x", [(0, 1)]), pe.Interaction("x", [(0, 1, 2)])
    with pytest.raises(ValueError, match="read-only"):
        sparse.edges[0, 0] = 2
    with pytest.raises(ValueError, match="read-only"):
        inter._members[0, 0] = 2
