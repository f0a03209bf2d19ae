"""ClusterSampler: identical to its numpy twin, independent of the thread count, and
statistically exact against brute force (spins, binary units, RBMs, Potts; fields, frustrated
couplings, clamping, beta != 1)."""
import numpy as np
import pytest
from scipy import stats

import pgm_energy as pe
from pgm_energy._kernels import _cluster
from pgm_energy.testing import brute_force, check_sampler, state_index

from reference import cluster as twin

P_FLOOR = 1e-6      # false-alarm rate of each goodness-of-fit test
ALGORITHMS = ("swendsen-wang", "wolff")


def frustrated_spins(n=6, seed=1):
    """Spins on a dense random graph, couplings of both signs, fields."""
    rng = np.random.default_rng(seed)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.7]
    return pe.Ising(edges, rng.normal(0, 0.7, len(edges)), fields=rng.normal(0, 0.5, n))


def binary_machine(seed=2):
    """Binary units with laterals of both signs and biases (a small Boltzmann machine)."""
    model = pe.BoltzmannMachine(4, 2, rng=seed)
    rng = np.random.default_rng(seed)
    for name, value in model.params.items():
        value[...] = rng.normal(0, 0.8, value.shape)
    for name in ("U", "V"):
        u = model.params[name]
        u[...] = np.triu(u, 1) + np.triu(u, 1).T
    return model


def rbm(seed=3):
    model = pe.RBM(4, 3, rng=seed)
    rng = np.random.default_rng(seed)
    for value in model.params.values():
        value[...] = rng.normal(0, 1.0, value.shape)
    return model


def potts(n=5, k=3, theta=0.9, seed=4, ring=True):
    """A Potts ring (plus one chord) with random fields."""
    edges = [(i, (i + 1) % n) for i in range(n if ring else n - 1)] + [(0, 2)]
    tables = theta * np.stack([np.eye(k)] * len(edges))
    model = pe.EnergyModel({"x": pe.Categorical(n, k)},
                           [pe.Bias("x", name="b"), pe.SparsePairwise("x", edges, value=tables)])
    model.params["b"][...] = np.random.default_rng(seed).normal(0, 0.7, (n, k))
    return model


# -- the kernels against the numpy twin -----------------------------------------------------
def twin_run(sampler, n_sweeps, clamp=None):
    """Run the twin from the sampler's state: (values of every group, streams)."""
    model, graph = sampler.model, sampler.model.graph
    saved = sampler.get_state()
    streams = np.array(saved.streams)
    betas = np.broadcast_to(saved.beta, (sampler.n_chains,)).astype(float)
    free = np.ones(graph.n_units, bool)
    for g in clamp or {}:
        free[graph.slots(g)] = False
    flat = graph.encode(saved.values)
    if sampler.algorithm == "swendsen-wang" and graph.categorical.any():
        edges, J, f = twin.potts_form(graph)
        k = f.shape[1]
        colours = flat.reshape(len(flat), -1, k).argmax(-1)
        twin.swendsen_wang_potts(colours, edges, J, f, free[graph.site_start[:-1]], betas,
                                 streams, n_sweeps)
        flat = (colours[..., None] == np.arange(k)).reshape(len(flat), -1).astype(float)
    else:
        J, h = twin.spin_form(graph)
        spins = (2 * graph.to_bits(flat) - 1).astype(np.int8)
        sweeps = twin.wolff if sampler.algorithm == "wolff" else twin.swendsen_wang
        sweeps(spins, graph.edges, J, h, free, betas, streams, n_sweeps)
        flat = graph.from_bits((spins + 1) / 2)
    return graph.decode(flat), streams


CASES = [
    ("swendsen-wang", frustrated_spins, None),
    ("wolff", frustrated_spins, None),
    ("swendsen-wang", binary_machine, {"x": [1, 0, 1, 1]}),
    ("wolff", binary_machine, {"x": [1, 0, 1, 1]}),
    ("wolff", rbm, {"h": [0, 1, 1]}),
    ("swendsen-wang", potts, None),
]


@pytest.mark.parametrize("algorithm, make, clamp", CASES)
def test_kernel_matches_numpy_twin(algorithm, make, clamp):
    model = make()
    n_chains = 5
    sampler = pe.ClusterSampler(model, n_chains, algorithm=algorithm, rng=7,
                                beta=np.linspace(0.4, 1.6, n_chains))
    if clamp is not None:
        sampler.state = clamp
    expected, streams = twin_run(sampler, 6, clamp)
    sampler.run(6, clamp=clamp)
    for g, values in sampler.state.items():
        np.testing.assert_array_equal(values, expected[g])
    np.testing.assert_array_equal(sampler.get_state().streams, streams)


@pytest.mark.parametrize("avx2", [True, False])
def test_twin_on_a_torus_with_tied_chunks(avx2):
    """Enough bond draws (about 40 000) that some 13-bit chunks tie with their edge's
    threshold and take a second draw; couplings of both signs and a field; more than 32
    units (several flip words), and edges whose count is not a multiple of 4. The bond pass
    with AVX2 (where the CPU has it) and without."""
    side = 10
    site = np.arange(side * side).reshape(side, side)
    edges = np.concatenate([np.stack([site.ravel(), np.roll(site, -1, 1).ravel()], 1),
                            np.stack([site.ravel(), np.roll(site, -1, 0).ravel()], 1)])[:-2]
    rng = np.random.default_rng(0)
    model = pe.Ising(edges, rng.choice([-0.6, 0.3, 1.0], len(edges)),
                     fields=rng.normal(0, 0.2, side * side))
    sampler = pe.ClusterSampler(model, 8, rng=3, beta=np.linspace(0.3, 1.2, 8))
    expected, streams = twin_run(sampler, 25)
    _cluster.set_avx2(avx2)
    try:
        sampler.run(25)
    finally:
        _cluster.set_avx2(True)
    np.testing.assert_array_equal(sampler.state["s"], expected["s"])
    np.testing.assert_array_equal(sampler.get_state().streams, streams)


def test_potts_twin_with_clamped_site():
    model = potts()
    model.params["b"][1] = [0.0, 0.0, 3.0]
    sampler = pe.ClusterSampler(model, 4, rng=11, beta=[0.5, 1.0, 1.5, 2.0])
    # one group: clamp it all after checking the free kernel, then a clamp through the state
    expected, streams = twin_run(sampler, 5)
    sampler.run(5)
    np.testing.assert_array_equal(sampler.state["x"], expected["x"])
    np.testing.assert_array_equal(sampler.get_state().streams, streams)
    before = sampler.state["x"].copy()
    sampler.run(3, clamp={"x": before})           # every site clamped: nothing moves
    np.testing.assert_array_equal(sampler.state["x"], before)


@pytest.mark.parametrize("algorithm, make", [("swendsen-wang", frustrated_spins),
                                             ("wolff", frustrated_spins),
                                             ("swendsen-wang", potts)])
def test_same_result_on_any_thread_count(algorithm, make):
    runs = [pe.ClusterSampler(make(), 37, algorithm=algorithm, rng=3, n_threads=t).run(20)
            for t in (1, 2)]
    for g in runs[0].state:
        np.testing.assert_array_equal(runs[0].state[g], runs[1].state[g])
    np.testing.assert_array_equal(runs[0].get_state().streams, runs[1].get_state().streams)


# -- statistics against brute force -----------------------------------------------------------
def factory(algorithm, beta=1.0):
    return lambda model, n_chains, rng: pe.ClusterSampler(model, n_chains, algorithm=algorithm,
                                                          beta=beta, rng=rng)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("make", [frustrated_spins, binary_machine, rbm])
def test_joint_distribution_is_exact(algorithm, make):
    check_sampler(factory(algorithm), make(), n_chains=4000, n_sweeps=60, p_floor=P_FLOOR)


def test_potts_joint_distribution_is_exact():
    check_sampler(factory("swendsen-wang"), potts(), n_chains=4000, n_sweeps=60,
                  p_floor=P_FLOOR)


def chi_square(model, state, p):
    """p-value of the chains' joint states against the probabilities ``p`` (brute-force
    order), cells with expected counts under 5 pooled."""
    codes = state_index(model, state)
    observed = np.bincount(codes, minlength=len(p)).astype(float)
    expected = len(codes) * p
    keep = expected >= 5
    obs = np.append(observed[keep], observed[~keep].sum())
    exp_ = np.append(expected[keep], expected[~keep].sum())
    if exp_[-1] < 5:
        obs, exp_ = obs[:-1], exp_[:-1]
        obs[-1] += observed[~keep].sum()
        exp_[-1] += expected[~keep].sum()
    return stats.chisquare(obs, exp_).pvalue


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("beta", [0.45, 2.0])
def test_joint_distribution_at_other_beta(algorithm, beta):
    model = frustrated_spins(seed=5)
    _, p = brute_force(model, beta)
    # frustrated bonds at beta = 2: clusters of about one spin, slow mixing
    sampler = pe.ClusterSampler(model, 4000, algorithm=algorithm, beta=beta, rng=1).run(400)
    assert chi_square(model, sampler.state, p) > P_FLOOR


def test_potts_at_other_beta():
    model = potts(seed=6)
    _, p = brute_force(model, 1.7)
    sampler = pe.ClusterSampler(model, 4000, beta=1.7, rng=2).run(60)
    assert chi_square(model, sampler.state, p) > P_FLOOR


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_clamping_samples_the_conditional(algorithm):
    model = binary_machine()
    x = np.array([1.0, 0.0, 0.0, 1.0])
    states, p = brute_force(model)
    agree = (states["x"] == x).all(axis=1)
    p_h = np.where(agree, p, 0.0)
    p_h /= p_h.sum()
    sampler = pe.ClusterSampler(model, 4000, algorithm=algorithm, rng=4)
    sampler.run(40, clamp={"x": x})
    assert (sampler.state["x"] == x).all()
    assert chi_square(model, sampler.state, p_h) > P_FLOOR


def test_potts_clamping_samples_the_conditional():
    model = pe.EnergyModel({"x": pe.Categorical(3, 3), "y": pe.Categorical(2, 3)},
                           [pe.Bias("x"), pe.Bias("y", name="c"),
                            pe.SparsePairwise("x", [(0, 1), (1, 2)],
                                              value=1.2 * np.stack([np.eye(3)] * 2)),
                            pe.Pairwise("y", "x", name="W")])
    model.params["b"][...] = np.random.default_rng(0).normal(0, 0.6, (3, 3))
    W = np.zeros((2, 3, 3, 3))          # y_0 ~ x_0 and y_1 ~ x_2, delta couplings of 0.8
    W[0, :, 0, :] = W[1, :, 2, :] = 0.8 * np.eye(3)
    model.params["W"][...] = W
    y = np.array([2, 0])
    states, p = brute_force(model)
    p_x = np.where((states["y"] == y).all(axis=1), p, 0.0)
    sampler = pe.ClusterSampler(model, 4000, rng=5).run(40, clamp={"y": y})
    assert (sampler.state["y"] == y).all()
    assert chi_square(model, sampler.state, p_x / p_x.sum()) > P_FLOOR


def test_critical_ising_energy_of_a_torus():
    """Energy per spin of the 16 x 16 torus at the critical point against the exact value
    (derivative of log Z of the finite torus)."""
    L, beta = 16, np.log(1 + np.sqrt(2)) / 2
    edges = [(r * L + c, r * L + (c + 1) % L) for r in range(L) for c in range(L)]
    edges += [(r * L + c, ((r + 1) % L) * L + c) for r in range(L) for c in range(L)]
    model = pe.Ising(edges, 1.0)
    log_z = [pe.testing.ising_torus_log_partition(L, L, 1.0, beta=b)
             for b in (beta - 1e-5, beta + 1e-5)]
    exact = -(log_z[1] - log_z[0]) / 2e-5 / L**2
    sampler = pe.ClusterSampler(model, 200, beta=beta, rng=0).run(20)
    energies = np.array([model.energy(s)
                         for s in sampler.sample(50)["s"].transpose(1, 0, 2)])  # (chains, 50)
    per_chain = energies.mean(axis=1) / L**2
    error = per_chain.std(ddof=1) / np.sqrt(len(per_chain))
    assert abs(per_chain.mean() - exact) < 5 * error


# -- interface ---------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_get_state_load_state_continue_exactly(algorithm):
    sampler = pe.ClusterSampler(frustrated_spins(), 9, algorithm=algorithm, rng=0)
    sampler.run(3)
    saved = sampler.get_state()
    first = sampler.sample(4)["s"]
    other = pe.ClusterSampler(frustrated_spins(), 9, algorithm=algorithm, rng=99)
    other.load_state(saved)
    np.testing.assert_array_equal(other.sample(4)["s"], first)
    gibbs = pe.GibbsSampler(frustrated_spins(), 9, rng=5)
    gibbs.load_state(saved)                         # the same state value as Gibbs
    np.testing.assert_array_equal(gibbs.state["s"], saved.values["s"])


def test_chunks_and_beta_setting():
    a = pe.ClusterSampler(rbm(), 6, rng=2).run(7)
    b = pe.ClusterSampler(rbm(), 6, rng=2).run(3).run(4)
    np.testing.assert_array_equal(a.state["x"], b.state["x"])
    a.beta = 0.5
    assert a.beta == 0.5
    a.beta = np.linspace(0.5, 1.0, 6)
    np.testing.assert_array_equal(a.get_state().beta, np.linspace(0.5, 1.0, 6))
    assert a.mean_cluster_size >= 1.0


def test_same_initial_state_as_gibbs():
    cluster = pe.ClusterSampler(potts(), 5, rng=8)
    gibbs = pe.GibbsSampler(potts(), 5, rng=8)
    np.testing.assert_array_equal(cluster.state["x"], gibbs.state["x"])


def test_parameters_are_reread_at_every_run():
    model = pe.Ising([(0, 1)], 0.0, fields=np.zeros(2))
    sampler = pe.ClusterSampler(model, 200, rng=0).run(2)
    model.params["h"][...] = 50.0                   # a huge field: every spin goes up
    assert (sampler.run(60).state["s"] == 1).all()  # (a spin against it flips with p 1/2)
    model.params["h"][...] = -50.0
    assert (sampler.run(60).state["s"] == -1).all()


@pytest.mark.parametrize("model, match", [
    (pe.EnergyModel({"x": pe.Binary(3)}, [pe.Interaction("x", cliques=[(0, 1, 2)])]),
     "Interaction"),
    (pe.EnergyModel({"x": pe.Categorical(2, 3), "y": pe.Binary(2)}, [pe.Bias("x")]),
     "mixes"),
    (pe.EnergyModel({"x": pe.Categorical(2, 3), "y": pe.Categorical(2, 4)}, [pe.Bias("x")]),
     "different k"),
])
def test_unsupported_models_are_refused(model, match):
    with pytest.raises(ValueError, match=match) as info:
        pe.ClusterSampler(model, 2)
    assert "pe.GibbsSampler" in str(info.value)


def test_non_delta_and_antiferromagnetic_potts_are_refused():
    model = potts()
    model.params["J"][0, 0, 1] = 0.3                # an off-diagonal entry: not J * I
    with pytest.raises(ValueError, match="not J \\* identity"):
        pe.ClusterSampler(model, 2)
    model = potts(theta=-0.5)
    with pytest.raises(ValueError, match="negative Potts coupling"):
        pe.ClusterSampler(model, 2)
    model = potts()
    sampler = pe.ClusterSampler(model, 2)
    model.params["J"][...] += 0.25                  # J * I + a constant: still served
    sampler.run(1)
    model.params["J"][0, 1, 1] = 2.0                # learning broke the delta form
    with pytest.raises(ValueError, match="not J \\* identity"):
        sampler.run(1)
    with pytest.raises(ValueError, match="not available for Potts"):
        pe.ClusterSampler(potts(), 2, algorithm="wolff")


def test_user_terms_are_refused():
    from reference.terms import CountPenalty

    model = pe.EnergyModel({"x": 4}, [pe.Bias("x"), CountPenalty("x", k=2)])
    with pytest.raises(ValueError, match="CountPenalty"):
        pe.ClusterSampler(model, 2)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"algorithm": "metropolis"}, ValueError, "algorithm must be one of"),
    ({"n_chains": 0}, ValueError, "n_chains must be >= 1"),
    ({"n_chains": 2.5}, TypeError, "n_chains must be an int"),
    ({"beta": -1.0}, ValueError, "beta must be finite and > 0"),
    ({"beta": np.nan}, ValueError, "beta must be finite"),
    ({"beta": [1.0, 2.0, 3.0]}, ValueError, "one per chain"),
    ({"n_threads": 0}, ValueError, "n_threads"),
])
def test_bad_arguments(kwargs, error, match):
    args = {"n_chains": 2, **kwargs}
    with pytest.raises(error, match=match):
        pe.ClusterSampler(frustrated_spins(), **args)


def test_bad_model_and_parameters():
    with pytest.raises(TypeError, match="EnergyModel"):
        pe.ClusterSampler("not a model", 2)
    model = frustrated_spins()
    sampler = pe.ClusterSampler(model, 2)
    model.params["J"][0] = np.nan
    with pytest.raises(ValueError):
        sampler.run(1)
