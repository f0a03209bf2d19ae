"""Simulated annealing: the exact ground states of small models, the result's consistency,
bad input."""
import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy.testing import brute_force


def spin_glass(seed, n=14, density=0.3):
    """A random +-J spin glass with weak random fields (fields break the ground state's
    global flip symmetry)."""
    gen = np.random.default_rng(seed)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if gen.random() < density]
    return pe.Ising(edges, gen.choice([-1.0, 1.0], len(edges)), fields=0.1 * gen.normal(size=n))


def ground_energy(model):
    states, _ = brute_force(model)
    return float(model.energy(states).min())


@pytest.mark.parametrize("sampler", ["gibbs", "swendsen-wang", "wolff"])
@pytest.mark.parametrize("seed", range(3))
def test_annealing_reaches_the_ground_state_of_small_spin_glasses(sampler, seed):
    model = spin_glass(seed)
    result = pe.anneal(model, n_chains=8, rng=0, sampler=sampler)
    assert result.best_energy == pytest.approx(ground_energy(model), abs=1e-12)


def test_annealing_binary_and_potts_models():
    bm = pe.BoltzmannMachine(6, 4, rng=3)
    assert pe.anneal(bm, n_chains=8, rng=0).best_energy == pytest.approx(ground_energy(bm),
                                                                          abs=1e-12)
    n, k = 8, 3
    gen = np.random.default_rng(1)
    ring = [(i, (i + 1) % n) for i in range(n)]
    potts = pe.EnergyModel({"x": pe.Categorical(n, k)},
                           [pe.Bias("x", name="b", value=gen.normal(size=(n, k))),
                            pe.SparsePairwise("x", ring, value=0.8 * np.stack([np.eye(k)] * n))])
    for sampler in ("gibbs", "swendsen-wang"):
        result = pe.anneal(potts, n_chains=8, rng=0, sampler=sampler)
        assert result.best_energy == pytest.approx(ground_energy(potts), abs=1e-12)


def test_the_result_is_consistent_and_reproducible():
    model = spin_glass(5, n=20)
    a = pe.anneal(model, n_chains=6, n_sweeps_per_beta=2, rng=4)
    b = pe.anneal(model, n_chains=6, n_sweeps_per_beta=2, rng=4, n_threads=1)
    np.testing.assert_array_equal(a.energies, b.energies)
    np.testing.assert_array_equal(a.states["s"], b.states["s"])
    np.testing.assert_allclose(a.energies, model.energy(a.states), rtol=0, atol=1e-12)
    best = a.best_state
    assert model.energy({"s": best["s"][None]})[0] == a.best_energy == a.energies.min()
    np.testing.assert_array_equal(a.betas, pe.annealing.default_schedule(model))
    assert np.all(np.diff(a.betas) > 0)


def test_a_hot_schedule_does_not_find_the_ground_state():
    """Annealing must be able to fail: chains kept at a high temperature for a few sweeps do
    not reach the ground state of a 16-spin glass."""
    model = spin_glass(7, n=16, density=0.4)
    hot = pe.anneal(model, betas=[0.05, 0.06], n_chains=4, n_sweeps_per_beta=1, rng=0)
    assert hot.best_energy > ground_energy(model) + 1


@pytest.mark.parametrize("kwargs, error", [
    (dict(betas=[1.0, 0.5]), ValueError),
    (dict(betas=[0.0, 1.0]), ValueError),
    (dict(betas=[]), ValueError),
    (dict(betas=[np.nan]), ValueError),
    (dict(n_chains=0), ValueError),
    (dict(n_sweeps_per_beta=0), ValueError),
    (dict(sampler="metropolis"), ValueError),
])
def test_bad_arguments_are_refused(kwargs, error):
    with pytest.raises(error):
        pe.anneal(spin_glass(0, n=5), **kwargs)


def test_default_schedule_needs_bounded_terms():
    with pytest.raises(TypeError):
        pe.anneal("not a model")
    flat = pe.Ising([(0, 1)], 0.0)
    with pytest.raises(ValueError, match="same energy"):
        pe.annealing.default_schedule(flat)
