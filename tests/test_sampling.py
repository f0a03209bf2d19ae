"""Gibbs engine: identical to its numpy twin, and statistically exact against pe.exact."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats
from scipy.special import expit

import pgm_energy as pe
from pgm_energy._chains import chain_streams, state_bytes, state_values
from pgm_energy._kernels import _gibbs
from pgm_energy.sampling import SCHEDULES
from pgm_energy.testing import models

from reference import exact as ref
from reference import gibbs as twin

P_FLOOR = 1e-6      # false-alarm rate of each goodness-of-fit test


def schedules_for(model):
    out = ["sequential", "chromatic"]
    try:
        pe.GibbsSampler(model, 1, schedule="block")
        out.append("block")
    except ValueError:
        pass
    return out


def state_codes(model, samples):
    """Integer code of each joint state (rows of the flat state)."""
    flat = np.concatenate([samples[g].reshape(-1, model.units[g].n) for g in model.units], 1)
    lows = np.concatenate([np.full(u.n, u.values[0]) for u in model.units.values()])
    bits = (flat != lows).astype(np.int64)
    return bits @ (1 << np.arange(flat.shape[1]))


def chi_square_pvalue(codes, probabilities):
    """Pearson chi-square of observed codes against exact probabilities (cells pooled so
    that every expected count is >= 5)."""
    n = len(codes)
    observed = np.bincount(codes, minlength=len(probabilities)).astype(float)
    expected = n * probabilities
    order = np.argsort(expected)
    obs, exp = [], []
    acc_o = acc_e = 0.0
    for k in order:
        acc_o += observed[k]
        acc_e += expected[k]
        if acc_e >= 5:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0:
        if exp:
            obs[-1] += acc_o
            exp[-1] += acc_e
        else:
            obs.append(acc_o)
            exp.append(acc_e)
    if len(exp) < 2:
        return 1.0
    return stats.chisquare(obs, exp).pvalue


def exact_state_probabilities(model, beta=1.0):
    s, p = ref.joint_probabilities(model, beta)
    return s, p[np.argsort(state_codes(model, s))]


# -- the twin: same draws, same chains ----------------------------------------------------
def test_random_streams_equal_numpy_twin():
    # _random.h's generator, through its Python hook, against the twin's xoshiro256+
    streams = chain_streams(7, 13)                   # 16 columns, 13 of them chains
    want = streams[:, :13].copy()
    got = [_gibbs.uniforms(streams, 13) for _ in range(5)]
    np.testing.assert_array_equal(got, [twin.xoshiro_uniform(want) for _ in range(5)])
    np.testing.assert_array_equal(streams[:, :13], want)
    assert np.all((np.asarray(got) >= 0.0) & (np.asarray(got) < 1.0))
    with pytest.raises(ValueError, match="more chains than streams"):
        _gibbs.uniforms(streams, 17)


@pytest.mark.parametrize("n_chains", [11, 3])      # vector groups of 8 lanes; one at a time
@settings(max_examples=15)
@given(models(large_weights=False), st.integers(0, 2**32 - 1), st.floats(0.3, 2.0))
def test_kernels_equal_numpy_twin(n_chains, model, seed, beta):
    graph = model.graph
    for schedule in schedules_for(model):
        sampler = pe.GibbsSampler(model, n_chains=n_chains, schedule=schedule, beta=beta,
                                  rng=seed)
        streams = sampler._streams[:, :n_chains].copy()
        flat = sampler._engine.flat()
        order = (np.argsort(sampler._colour, kind="stable") if schedule != "sequential"
                 else np.arange(graph.n_units))
        twin.sweeps(model, flat, order, np.full(n_chains, beta), streams, 3)
        sampler.run(3)
        np.testing.assert_array_equal(sampler._engine.flat(), flat, err_msg=schedule)


# -- distributions ------------------------------------------------------------------------
def exact_sweep_law(model, order, beta, n_sweeps):
    """The exact law (by state code) of a Gibbs chain after ``n_sweeps`` sweeps visiting the
    units in ``order``, from the uniform start (the sampler's start for binary and spin
    units): each update moves the mass of every pair of states that differ in unit ``i``
    to its exact conditional, P(s_i on | rest) = sigmoid(-beta (E(on) - E(off)))."""
    n = sum(u.n for u in model.units.values())
    codes = np.arange(2 ** n)
    bits = (codes[:, None] >> np.arange(n)) & 1
    lows = np.concatenate([np.full(u.n, u.values[0]) for u in model.units.values()])
    flat = lows + (1.0 - lows) * bits
    ends = np.cumsum([u.n for u in model.units.values()])
    energy = model.energy(dict(zip(model.units, np.split(flat, ends[:-1], axis=1))))
    law = np.full(2 ** n, 2.0 ** -n)
    for _ in range(n_sweeps):
        for i in order:
            off = codes[bits[:, i] == 0]
            on = off | (1 << i)
            mass = law[off] + law[on]
            law[on] = mass * expit(-beta * (energy[on] - energy[off]))
            law[off] = mass - law[on]
    return law


@settings(max_examples=12)
@given(models(max_total=7, large_weights=False, scale=0.8), st.floats(0.5, 1.5))
def test_every_schedule_follows_the_exact_sweep_law(model, beta):
    """4000 independent chains after 30 sweeps from the uniform start: chi-square against
    the exact law of 30 sweeps of the schedule's visiting order. For any coupling strength;
    where the chain mixes within 30 sweeps, this law is the exact joint."""
    for schedule in schedules_for(model):
        sampler = pe.GibbsSampler(model, n_chains=4000, schedule=schedule, beta=beta, rng=7)
        order = (np.arange(sampler._colour.size) if schedule == "sequential"
                 else np.argsort(sampler._colour, kind="stable"))
        codes = state_codes(model, sampler.run(30).state)
        law = exact_sweep_law(model, order, beta, 30)
        assert chi_square_pvalue(codes, law) > P_FLOOR, schedule


def test_the_sweep_law_converges_to_the_exact_joint():
    """The oracle above is the Gibbs chain: for a fast-mixing model its law is the joint."""
    model = tempered_model()
    _, p = exact_state_probabilities(model)
    law = exact_sweep_law(model, np.arange(sum(u.n for u in model.units.values())), 1.0, 200)
    np.testing.assert_allclose(law, p, atol=1e-9)


def test_a_wrong_sampler_is_caught():
    """The goodness-of-fit test has power: sampling at the wrong beta fails it."""
    model = tempered_model()
    _, p = exact_state_probabilities(model)
    codes = state_codes(model, pe.GibbsSampler(model, 4000, beta=0.8, rng=1).run(60).state)
    assert chi_square_pvalue(codes, p) < P_FLOOR


def test_clamped_sampling_matches_exact_conditional():
    rng = np.random.default_rng(0)
    model = pe.BoltzmannMachine(4, 3, rng=0)
    model.params["W"][...] = rng.normal(size=(3, 4))
    V = np.triu(rng.normal(size=(3, 3)), 1)
    model.params["V"][...] = V + V.T
    x = np.array([1.0, 0.0, 1.0, 1.0])
    hs = ref.all_states(model, ["h"])["h"]
    lw = -model.energy({"x": np.repeat(x[None], len(hs), 0), "h": hs})
    p = np.exp(lw - np.logaddexp.reduce(lw))
    p = p[np.argsort(hs @ (1 << np.arange(3)))]
    for schedule in ("sequential", "chromatic"):
        sampler = pe.GibbsSampler(model, n_chains=4000, schedule=schedule, rng=3)
        state = sampler.run(40, clamp={"x": x}).state
        assert np.all(state["x"] == x)
        codes = (state["h"] @ (1 << np.arange(3))).astype(int)
        assert chi_square_pvalue(codes, p) > P_FLOOR


def test_clamped_block_sampling_matches_analytic_conditional():
    rng = np.random.default_rng(1)
    model = pe.RBM(6, 5, W=rng.normal(size=(5, 6)), c=rng.normal(size=5))
    X = rng.integers(0, 2, (4000, 6)).astype(float)
    sampler = pe.GibbsSampler(model, n_chains=4000, schedule="block", rng=2)
    h = sampler.run(1, clamp={"x": X}).state["h"]
    p = 1 / (1 + np.exp(-(X @ model.params["W"].T + model.params["c"])))
    z = (h - p).sum(0) / np.sqrt((p * (1 - p)).sum(0))      # per-unit standardised sums
    assert np.all(np.abs(z) < 5)


def test_ising_torus_mean_energy():
    L, beta = 4, 0.44
    edges = [(r * L + c, r * L + (c + 1) % L) for r in range(L) for c in range(L)]
    edges += [(r * L + c, ((r + 1) % L) * L + c) for r in range(L) for c in range(L)]
    model = pe.Ising(edges)
    s, p = ref.joint_probabilities(model, beta)
    exact_mean = p @ model.energy(s)
    sampler = pe.GibbsSampler(model, n_chains=500, beta=beta, rng=11)
    samples = sampler.sample(200, burn_in=100)["s"]       # every sweep; mcse from the ESS
    energies = model.energy({"s": samples.reshape(-1, L * L)}).reshape(200, 500)
    assert pe.diagnostics.rhat(energies) < 1.05     # 1 + (tau - 1) / (2 x 100) when mixed
    assert abs(energies.mean() - exact_mean) < 4 * pe.diagnostics.mcse(energies)


def tempered_model():
    """A small Boltzmann machine with strong random couplings."""
    model = pe.BoltzmannMachine(3, 2, rng=0)
    rng = np.random.default_rng(4)
    for name, v in model.params.items():
        v[...] = 1.5 * rng.normal(size=v.shape)
        if name in "UV":
            v[...] = np.triu(v, 1) + np.triu(v, 1).T
    return model


def test_parallel_tempering_samples_the_target():
    model = tempered_model()
    _, p = exact_state_probabilities(model)
    pt = pe.ParallelTempering(model, [1.0, 0.7, 0.4], n_chains=3000, rng=5)
    codes = state_codes(model, pt.run(60).state)
    assert chi_square_pvalue(codes, p) > P_FLOOR
    assert pt.swap_rates.shape == (2,) and np.all((pt.swap_rates > 0) & (pt.swap_rates <= 1))
    assert pt.sample(3)["x"].shape == (3, 3000, 3)


# -- reproducibility ----------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["sequential", "chromatic", "block"])
def test_same_seed_same_samples_whatever_the_thread_count(schedule):
    model = pe.RBM(20, 12, rng=0)
    model.params["W"] *= 100
    runs = [pe.GibbsSampler(model, 150, schedule=schedule, rng=42, n_threads=t).run(5).state
            for t in (1, 2, 2)]
    for other in runs[1:]:
        for g in runs[0]:
            np.testing.assert_array_equal(runs[0][g], other[g])
    different = pe.GibbsSampler(model, 150, schedule=schedule, rng=43).run(5).state
    assert not np.array_equal(different["x"], runs[0]["x"])


def test_generator_rng_and_initial_state():
    model = pe.RBM(5, 3, rng=0)
    a = pe.GibbsSampler(model, 4, rng=np.random.default_rng(9)).run(2).state
    b = pe.GibbsSampler(model, 4, rng=np.random.default_rng(9)).run(2).state
    np.testing.assert_array_equal(a["x"], b["x"])
    init = {"x": np.ones(5), "h": np.zeros((4, 3))}
    sampler = pe.GibbsSampler(model, 4, rng=0, initial_state=init)
    assert np.all(sampler.state["x"] == 1) and np.all(sampler.state["h"] == 0)
    samples = sampler.sample(6, thin=2, burn_in=3)
    assert samples["x"].shape == (6, 4, 5) and samples["h"].shape == (6, 4, 3)


def test_sampler_sees_live_parameters():
    model = pe.RBM(4, 2, rng=0)
    sampler = pe.GibbsSampler(model, 200, rng=0)
    model.params["b"][...] = 50.0
    assert np.all(sampler.run(1).state["x"] == 1)
    model.params["b"][...] = -50.0
    model.params["W"][...] = 0.0
    assert np.all(sampler.run(1).state["x"] == 0)


def test_block_sampler_sees_live_couplings():
    """The block engine keeps its own coupling matrix (refreshed when the graph's version
    moves): an edit of W alone, biases fixed, changes the draws at the next run."""
    model = pe.RBM(4, 2, rng=0)
    model.params["b"][...] = 0.0
    model.params["c"][...] = 50.0                   # every hidden unit on
    model.params["W"][...] = 50.0
    sampler = pe.GibbsSampler(model, 200, rng=0)
    assert sampler.schedule == "block"
    assert np.all(sampler.run(2).state["x"] == 1)
    model.params["W"][...] = -50.0
    assert np.all(sampler.run(1).state["x"] == 0)


def test_spin_units_stay_in_domain():
    model = pe.Ising([(0, 1), (1, 2)], couplings=[1.0, -0.5], fields=[0.1, 0, 0])
    state = pe.GibbsSampler(model, 10, rng=0).run(3).state["s"]
    assert set(np.unique(state)) <= {-1.0, 1.0}


def test_kernel_state_is_one_byte_per_unit_and_chain():
    """The sparse kernel stores each value as the top byte of its double (0xBF for -1, 0 for
    0, 0x3F for +1), and reads it back exactly."""
    values = np.array([[-1.0, 0.0, 1.0], [1.0, 1.0, -1.0]])
    state = state_bytes(values)
    assert state.dtype == np.uint8
    assert state.tolist() == [[0xBF, 0, 0x3F], [0x3F, 0x3F, 0xBF]]
    np.testing.assert_array_equal(state_values(state), values)
    model = pe.EnergyModel({"x": pe.Binary(3), "s": pe.Spin(2)},
                           [pe.Bias("x", name="b"), pe.Bias("s", name="c"), pe.Pairwise("s", "x")])
    for value in model.params.values():
        value[...] = np.random.default_rng(0).normal(scale=2.0, size=value.shape)
    sampler = pe.GibbsSampler(model, 16, schedule="chromatic", rng=0)
    assert sampler._engine.state.dtype == np.uint8
    state = sampler.run(5).state
    assert set(np.unique(state["x"])) <= {0.0, 1.0}
    assert set(np.unique(state["s"])) <= {-1.0, 1.0}


# -- bad input ----------------------------------------------------------------------------
def test_bad_sampler_arguments():
    model = pe.RBM(3, 2)
    with pytest.raises(ValueError, match="n_chains"):
        pe.GibbsSampler(model, 0)
    with pytest.raises(TypeError, match="n_chains"):
        pe.GibbsSampler(model, 2.5)
    for beta in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="beta"):
            pe.GibbsSampler(model, 2, beta=beta)
    with pytest.raises(ValueError, match="schedule"):
        pe.GibbsSampler(model, 2, schedule="random")
    with pytest.raises(ValueError, match="chromatic"):
        pe.GibbsSampler(pe.BoltzmannMachine(3, 2), 2, schedule="block")
    with pytest.raises(TypeError, match="EnergyModel"):
        pe.GibbsSampler("model", 2)
    sampler = pe.GibbsSampler(model, 4)
    with pytest.raises(ValueError, match="n_sweeps"):
        sampler.run(-1)
    with pytest.raises(ValueError, match="thin"):
        sampler.sample(2, thin=0)


def test_bad_clamps():
    sampler = pe.GibbsSampler(pe.RBM(3, 2), 4)
    with pytest.raises(ValueError, match=r"clamp\['x'\] must have shape \(4, 3\)"):
        sampler.run(1, clamp={"x": np.zeros((4, 2))})
    with pytest.raises(ValueError, match="one row for all chains"):
        sampler.run(1, clamp={"x": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"values \[0, 1\]"):
        sampler.run(1, clamp={"x": [0, 5, 1]})
    with pytest.raises(ValueError, match="unknown group 'z'"):
        sampler.run(1, clamp={"z": [0]})
    with pytest.raises(TypeError, match="dict"):
        sampler.run(1, clamp=np.zeros(3))


def test_bad_tempering_arguments():
    model = pe.RBM(3, 2)
    with pytest.raises(ValueError, match="1.0"):
        pe.ParallelTempering(model, [0.5, 0.8])
    with pytest.raises(ValueError, match="distinct"):
        pe.ParallelTempering(model, [1.0, 1.0])
    with pytest.raises(ValueError, match="beta"):
        pe.ParallelTempering(model, [1.0, -0.5])


def test_schedule_names():
    assert SCHEDULES == ("auto", "sequential", "chromatic", "block")
    assert pe.GibbsSampler(pe.RBM(30, 20), 2).schedule == "block"
    ring = pe.Ising([(i, (i + 1) % 50) for i in range(50)])
    assert pe.GibbsSampler(ring, 2).schedule == "chromatic"
    assert pe.GibbsSampler(pe.BoltzmannMachine(5, 3), 2).schedule == "sequential"


# -- public state ------------------------------------------------------------------------------
STATE_MODELS = {
    "block": lambda: pe.RBM(7, 4, rng=0),
    "chromatic": lambda: pe.Ising([(i, i + 1) for i in range(12)], couplings=np.full(12, 0.4),
                                  fields=np.linspace(-1, 1, 13)),
    "sequential": lambda: pe.BoltzmannMachine(4, 3, rng=0),
    "categorical": lambda: pe.EnergyModel(
        units={"x": pe.Categorical(3, 4), "h": 2},
        terms=[pe.Bias("x"), pe.Pairwise("h", "x", name="W")], visible=["x"]),
}


@pytest.mark.parametrize("kind", list(STATE_MODELS))
@pytest.mark.parametrize("n_chains", [3, 21])
def test_load_state_continues_exactly(kind, n_chains):
    """A state restored into the same sampler, or into a fresh one with another seed,
    continues draw for draw as the original run."""
    model = STATE_MODELS[kind]()
    sampler = pe.GibbsSampler(model, n_chains, rng=1).run(5)
    saved = sampler.get_state()
    assert saved.n_chains == n_chains and saved.streams.shape == (4, n_chains)
    assert not saved.streams.flags.writeable
    assert not any(v.flags.writeable for v in saved.values.values())
    want = sampler.sample(4)
    sampler.load_state(saved)
    again = pe.GibbsSampler(model, n_chains, rng=99)
    again.load_state(saved)
    for other in (sampler, again):
        got = other.sample(4)
        for g in want:
            np.testing.assert_array_equal(got[g], want[g])


def test_state_is_a_copy_and_beta_is_part_of_it():
    sampler = pe.GibbsSampler(pe.RBM(5, 3, rng=0), 8, beta=0.5, rng=0)
    saved = sampler.get_state()
    sampler.run(3)
    assert saved.beta == 0.5
    assert not np.array_equal(saved.streams, sampler.get_state().streams)
    sampler.beta = 2.0
    sampler.load_state(saved)
    assert sampler.beta == 0.5


def test_beta_setter_equals_the_constructor_argument():
    model = pe.RBM(6, 3, rng=0)
    direct = pe.GibbsSampler(model, 16, beta=0.3, rng=2)
    later = pe.GibbsSampler(model, 16, rng=2)
    later.beta = 0.3
    assert later.beta == 0.3
    np.testing.assert_array_equal(direct.sample(5)["x"], later.sample(5)["x"])
    per_chain = np.linspace(0.2, 1.0, 16)
    later.beta = per_chain
    np.testing.assert_array_equal(later.beta, per_chain)
    later.beta = 1
    assert later.beta == 1.0


@pytest.mark.parametrize("value, error, match", [
    (0.0, ValueError, "beta"), (np.inf, ValueError, "beta"), ("hot", TypeError, "beta"),
    (np.ones(3), ValueError, r"shape \(4,\)"), (np.array([1.0, 1.0, -1.0, 1.0]), ValueError, "> 0"),
    (np.array([1.0, np.nan, 1.0, 1.0]), ValueError, "finite"),
])
def test_bad_beta(value, error, match):
    sampler = pe.GibbsSampler(pe.RBM(3, 2), 4, rng=0)
    with pytest.raises(error, match=match):
        sampler.beta = value
    assert sampler.beta == 1.0


def test_load_state_says_what_differs():
    model = pe.RBM(4, 2, rng=0)
    state = pe.GibbsSampler(model, 6, rng=0).get_state()
    with pytest.raises(ValueError, match=r"holds 6 chains, this sampler has n_chains=5"):
        pe.GibbsSampler(model, 5, rng=0).load_state(state)
    with pytest.raises(ValueError, match=r"groups \['x', 'h'\].*\['s'\]"):
        pe.GibbsSampler(pe.Ising([(0, 1)]), 6, rng=0).load_state(state)
    with pytest.raises(ValueError, match=r"values\['x'\] has shape \(6, 4\).*\(6, 5\)"):
        pe.GibbsSampler(pe.RBM(5, 2), 6, rng=0).load_state(state)
    with pytest.raises(ValueError, match="uint64"):
        pe.GibbsSampler(model, 6, rng=0).load_state(type(state)(
            state.values, state.streams.astype(float), 1.0))
    with pytest.raises(ValueError, match=r"values \[0, 1\]"):
        pe.GibbsSampler(model, 6, rng=0).load_state(type(state)(
            {"x": np.full((6, 4), 3.0), "h": state.values["h"]}, state.streams, 1.0))
    with pytest.raises(TypeError, match="GibbsState"):
        pe.GibbsSampler(model, 6, rng=0).load_state({"x": state.values["x"]})


def test_too_many_chains_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"n_chains=1000000000000 needs about .* GiB"):
        pe.GibbsSampler(pe.RBM(6, 3, rng=0), n_chains=10**12)


def test_too_many_chains_under_a_memory_limit_say_how_much_they_need():
    """Under a 4 GB address-space cap (``ulimit -v``), 10**9 chains fail with a ValueError
    before anything is allocated, not with numpy's MemoryError."""
    import os
    import subprocess
    import sys

    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
            "import pgm_energy as pe\n"
            "try:\n"
            "    pe.GibbsSampler(pe.RBM(6, 3, rng=0), n_chains=10**9)\n"
            "except ValueError as err:\n"
            "    print('ValueError', err)\n")
    # Run next to the package the tests import (the installed one, or the in-place build),
    # not in the source tree, whose package has no compiled kernels.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=_package_root(), env={**os.environ, "OPENBLAS_NUM_THREADS": "1",
                                           "OMP_NUM_THREADS": "1",
                                           "PYTHONPATH": str(_package_root())})
    assert out.stdout.startswith("ValueError n_chains=1000000000 needs about"), out.stderr


def _package_root():
    import pathlib

    return pathlib.Path(pe.__file__).resolve().parents[1]
