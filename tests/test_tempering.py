"""Parallel tempering: its state as a value (exact continuation), swap statistics, walkers
and round trips, the adaptive ladder, the choice of move."""
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


# -- walkers and round trips ------------------------------------------------------------------
def _nearly_one_ladder(n_betas):
    """Betas 1, 1 - 1e-9, ...: every swap is accepted (log p ~ 1e-9 |E_k - E_{k+1}|, so a
    refusal needs a uniform above 1 - 1e-8), so the walkers' paths follow the alternation."""
    return 1.0 - 1e-9 * np.arange(n_betas)


def test_round_trips_of_two_temperatures_count_by_hand():
    """Pair (0, 1) swaps in rounds 1, 3, 5, ...: walker 0 (labelled up at the start) reaches
    beta_min in round 1 and is back in round 3 (one round trip); walker 1, down from the
    start without a visit to beta = 1, reaches beta = 1 in round 3 and completes its first
    trip in round 5; so 11 rounds (6 swaps) make 5 round trips in every column."""
    pt = pe.ParallelTempering(pe.RBM(4, 2, rng=0), _nearly_one_ladder(2), n_chains=3, rng=0)
    stats = pt.run(11).swap_statistics
    assert stats.accepted.tolist() == stats.proposed.tolist() == [18]
    assert stats.round_trips.tolist() == [5, 5, 5]
    assert stats.up_visits.tolist() == [33, 0] and stats.down_visits.tolist() == [0, 33]
    assert stats.up_fraction.tolist() == [1.0, 0.0]
    state = pt.get_state()
    assert state.walkers.tolist() == [[0, 0, 0], [1, 1, 1]]         # after 6 swaps
    assert state.labels.tolist() == [[1, 1, 1], [-1, -1, -1]]


def test_round_trips_of_three_temperatures_count_by_hand():
    """Alternating pairs (0, 1), (1, 2) cycle the walkers a, b, c through the places with
    period 6 (round 1: b a c, 2: b c a, 3: c b a, 4: c a b, 5: a c b, 6: a b c). Round trips
    end in round 5 (a), 7 (b), 9 (c), 11 (a): 4 in 12 rounds. The middle temperature sees an
    up walker after every odd round and a down one after every even round: f = 1/2."""
    pt = pe.ParallelTempering(pe.RBM(4, 2, rng=0), _nearly_one_ladder(3), n_chains=2, rng=0)
    trips = []
    for _ in range(12):
        trips.append(int(pt.run(1).swap_statistics.round_trips[0]))
    assert trips == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    stats = pt.swap_statistics
    assert stats.round_trips.tolist() == [4, 4]
    assert stats.up_visits.tolist() == [24, 12, 0]
    assert stats.down_visits.tolist() == [0, 12, 24]
    np.testing.assert_array_equal(stats.up_fraction, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(pt.get_state().walkers, [[0, 0], [1, 1], [2, 2]])
    pt.reset_statistics()
    stats = pt.swap_statistics
    assert stats.round_trips.tolist() == [0, 0] and stats.proposed.tolist() == [0, 0]
    assert np.isnan(stats.up_fraction).all()
    assert pt.run(1).swap_statistics.round_trips.tolist() == [1, 1]  # a's trip under way


# -- adaptive ladder ----------------------------------------------------------------------
def _curie_weiss(n, coupling, field=0.0):
    """All pairs coupled by ``coupling / n``: two modes (all up, all down) for coupling > 1."""
    edges = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    return pe.Ising(edges, np.full(len(edges), coupling / n), np.full(n, field))


def test_adapt_evens_out_the_swap_rates_and_keeps_the_extremes():
    """On a bimodal Curie-Weiss model the geometric ladder's rates differ 2.5-fold (0.37 at
    the cold end, 0.95 at the hot one); after adaptation they are within 25% (about 10%
    for seeds 0 to 7)."""
    model = _curie_weiss(12, 2.0)
    fixed = pe.ParallelTempering(model, 6, beta_min=0.1, n_chains=40, rng=0)
    np.testing.assert_allclose(fixed.betas, 0.1 ** (np.arange(6) / 5))
    rates = fixed.run(200).swap_rates
    assert rates.max() / rates.min() > 2
    pt = pe.ParallelTempering(model, 6, beta_min=0.1, n_chains=40, rng=0).adapt(300)
    assert pt.swap_statistics.proposed.tolist() == [0] * 5       # reset when adapt returns
    assert pt.get_state().adapt_rounds == 300
    assert pt.betas[0] == 1.0 and pt.betas[-1] == 0.1 and np.all(np.diff(pt.betas) < 0)
    np.testing.assert_array_equal(pt.sampler.beta, np.repeat(pt.betas, 40))
    assert not np.allclose(pt.betas, fixed.betas)
    betas = pt.betas.copy()
    rates = pt.run(300).swap_rates
    np.testing.assert_array_equal(pt.betas, betas)                # run keeps the ladder
    assert rates.max() / rates.min() < 1.25
    f = pt.swap_statistics.up_fraction
    assert f[0] == 1.0 and f[-1] == 0.0 and np.all((f >= 0) & (f <= 1))


def test_adapted_tempering_samples_the_exact_distribution():
    """Single-site Gibbs does not cross between this model's two modes in 100 sweeps (its
    chi-square p is below 1e-3 for most seeds); tempering on an adapted ladder does."""
    model = _curie_weiss(8, 2.5, field=0.05)
    pe.testing.check_sampler(
        lambda m, n, rng: pe.ParallelTempering(m, 4, beta_min=0.2, n_chains=n,
                                               rng=rng).adapt(150),
        model, n_chains=1500, n_sweeps=100, rng=0)


def test_adaptation_state_continues_exactly():
    """A state taken in the middle of adaptation holds the moved ladder, the clock and the
    latest acceptance: a fresh tempering with the starting ladder continues bit for bit."""
    model = _curie_weiss(6, 2.0)
    pt = pe.ParallelTempering(model, 4, beta_min=0.2, n_chains=5, rng=0)
    pt.adapt(7, reset_statistics=False)
    saved = pt.get_state()
    assert saved.adapt_rounds == 7 and not np.isnan(saved.acceptance).any()
    want = pt.adapt(9, reset_statistics=False).get_state()
    other = pe.ParallelTempering(model, 4, beta_min=0.2, n_chains=5, rng=3)
    other.load_state(saved)
    got = other.adapt(9, reset_statistics=False).get_state()
    np.testing.assert_array_equal(other.betas, pt.betas)
    for name in ("walkers", "labels", "acceptance"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    for name in ("accepted", "proposed", "round_trips", "up_visits", "down_visits", "betas"):
        np.testing.assert_array_equal(getattr(got.swaps, name), getattr(want.swaps, name))
    np.testing.assert_array_equal(got.replicas.values["s"], want.replicas.values["s"])
    assert got.adapt_rounds == want.adapt_rounds == 16 and got.parity == want.parity


def test_constant_gain_keeps_moving_a_ladder_and_two_temperatures_stay():
    model = _curie_weiss(6, 2.0)
    pt = pe.ParallelTempering(model, [1.0, 0.3], n_chains=5, rng=0).adapt(20)
    assert pt.betas.tolist() == [1.0, 0.3]
    pt = pe.ParallelTempering(model, 3, beta_min=0.2, n_chains=5, rng=0)
    before = pt.betas.copy()
    pt.adapt(40, t0=np.inf)
    assert pt.betas[1] != before[1] and pt.betas[[0, 2]].tolist() == [1.0, 0.2]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"betas": 4}, ValueError, "needs beta_min"),
    ({"betas": 4, "beta_min": 1.5}, ValueError, "beta_min must be < 1"),
    ({"betas": 1, "beta_min": 0.5}, ValueError, "betas must be >= 2"),
    ({"betas": [1.0, 0.5], "beta_min": 0.5}, ValueError, "a sequence of betas"),
    ({"betas": [1.0, 0.5], "move": "metropolis"}, ValueError,
     "move must be one of 'gibbs', 'swendsen-wang', 'wolff', got 'metropolis'"),
    ({"betas": [1.0, 0.5], "move": "wolff", "schedule": "block"}, ValueError,
     "Gibbs schedule"),
])
def test_bad_ladders_and_moves_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        pe.ParallelTempering(pe.RBM(4, 2, rng=0), n_chains=2, **kwargs)


def test_bad_adaptation_constants_are_refused():
    pt = pe.ParallelTempering(pe.RBM(4, 2, rng=0), 3, beta_min=0.5, n_chains=2, rng=0)
    with pytest.raises(ValueError, match="nu must be finite and > 0"):
        pt.adapt(1, nu=0.0)
    with pytest.raises(ValueError, match="t0 must be finite and > 0"):
        pt.adapt(1, t0=-1.0)
    with pytest.raises(TypeError, match="n_sweeps must be an int"):
        pt.adapt(1.5)


# -- cluster moves as the replicas' move ------------------------------------------------------
@pytest.mark.parametrize("move", ["swendsen-wang", "wolff"])
def test_tempering_with_cluster_moves_samples_the_exact_distribution(move):
    """A frustrated spin model with fields: replicas moved by ``pe.ClusterSampler`` at every
    temperature, swapped as usual; the chains at beta = 1 pass the chi-square test against
    the exact distribution."""
    model = pe.Ising([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 0)],
                     [1.2, -0.8, 1.0, 0.9, -1.1, 0.7], fields=[0.3, -0.4, 0.2, 0.5, -0.1])
    pt = pe.ParallelTempering(model, [1.0, 0.6, 0.3], n_chains=4, rng=0, move=move)
    assert type(pt.sampler).__name__ == "ClusterSampler" and pt.move == move
    pe.testing.check_sampler(
        lambda m, n, rng: pe.ParallelTempering(m, [1.0, 0.6, 0.3], n_chains=n, rng=rng,
                                               move=move),
        model, n_chains=1500, n_sweeps=60, rng=0)


def test_tempering_with_a_cluster_move_continues_exactly_from_its_state():
    model = _curie_weiss(6, 2.0)
    pt = pe.ParallelTempering(model, 3, beta_min=0.3, n_chains=5, rng=0, move="wolff")
    pt.run(5)
    saved = pt.get_state()
    after = pt.run(7).state["s"]
    pt.load_state(saved)
    np.testing.assert_array_equal(pt.run(7).state["s"], after)
