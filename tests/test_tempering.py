"""Parallel tempering: its state as a value (exact continuation), swap statistics."""
import numpy as np
import pytest

import pgm_energy as pe
from pgm_energy.tempering import SwapStatistics, TemperingState


def test_load_state_continues_exactly():
    model = pe.BoltzmannMachine(4, 2, rng=0)
    pt = pe.ParallelTempering(model, [1.0, 0.7, 0.4], n_chains=9, rng=0).run(7)
    saved = pt.get_state()
    assert isinstance(saved, TemperingState) and saved.parity == 1
    want = pt.sample(6)["x"]
    stats = pt.swap_statistics
    for target in (pt, pe.ParallelTempering(model, [0.4, 1.0, 0.7], n_chains=9, rng=42)):
        target.load_state(saved)
        np.testing.assert_array_equal(target.sample(6)["x"], want)
        np.testing.assert_array_equal(target.swap_statistics.accepted, stats.accepted)
        np.testing.assert_array_equal(target.swap_statistics.proposed, stats.proposed)


def test_swap_statistics_are_values():
    pt = pe.ParallelTempering(pe.RBM(5, 3, rng=0), [1.0, 0.6, 0.3], n_chains=10, rng=0)
    before = pt.swap_statistics
    pt.run(11)
    stats = pt.swap_statistics
    assert isinstance(stats, SwapStatistics)
    assert before.proposed.tolist() == [0, 0] and before.rates.tolist() == [0.0, 0.0]
    assert stats.proposed.tolist() == [60, 50]      # pair 0 in rounds 1, 3, ..., 11
    assert np.all(stats.accepted <= stats.proposed)
    np.testing.assert_array_equal(stats.rates, pt.swap_rates)
    np.testing.assert_array_equal(stats.betas, [1.0, 0.6, 0.3])
    assert pt.sampler.beta.tolist() == [1.0] * 10 + [0.6] * 10 + [0.3] * 10


def test_load_state_says_what_differs():
    model = pe.RBM(4, 2, rng=0)
    state = pe.ParallelTempering(model, [1.0, 0.5], n_chains=4, rng=0).run(3).get_state()
    with pytest.raises(ValueError, match=r"betas \[1.0, 0.5\].*\[1.0, 0.6\]"):
        pe.ParallelTempering(model, [1.0, 0.6], n_chains=4).load_state(state)
    with pytest.raises(ValueError, match="4 chains per temperature.*n_chains=5"):
        pe.ParallelTempering(model, [1.0, 0.5], n_chains=5).load_state(state)
    with pytest.raises(TypeError, match="TemperingState"):
        pe.ParallelTempering(model, [1.0, 0.5], n_chains=4).load_state(state.replicas)
