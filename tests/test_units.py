"""Unit kinds own their single-unit conditional: mean and log normaliser against sums over
each kind's values, and the slot encoding ``value = low + scale * bit``."""
import numpy as np
import pytest

import pgm_energy as pe

KINDS = [pe.Binary(3), pe.Spin(3), pe.Categorical(3, 4)]


def _features(unit):
    """Each value's feature vector for one unit: (n_values, width // n)."""
    return unit.encode(np.array(unit.values)[:, None] * np.ones((1, unit.n)))[:, :unit.width // unit.n]


@pytest.mark.parametrize("unit", KINDS, ids=repr)
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_mean_and_log_normaliser_are_sums_over_values(unit, beta):
    field = np.random.default_rng(0).normal(scale=3.0, size=(5, unit.width))
    phi = _features(unit)                                   # (n_values, d)
    d = phi.shape[1]
    f = field.reshape(5, unit.n, d)
    logits = beta * np.einsum("bid,vd->biv", f, phi)        # (batch, n, n_values)
    log_z = np.log(np.exp(logits).sum(axis=-1))
    mean = np.einsum("biv,vd->bid", np.exp(logits - log_z[..., None]), phi)
    np.testing.assert_allclose(unit.log_normaliser(field, beta), log_z, rtol=1e-12)
    np.testing.assert_allclose(unit.mean(field, beta), mean.reshape(5, -1), rtol=1e-12, atol=1e-15)
    assert np.all(unit.self_energy(np.zeros((5, unit.n))) == 0)


@pytest.mark.parametrize("unit", KINDS, ids=repr)
def test_slots_hold_low_plus_scale_times_bit(unit):
    model = pe.EnergyModel({"x": unit}, [pe.Bias("x")])
    graph = model.graph
    flat = graph.encode({"x": np.array([unit.values[:1] * unit.n, unit.values[-1:] * unit.n])})
    bits = graph.to_bits(flat)
    assert set(np.unique(bits)) <= {0.0, 1.0}
    np.testing.assert_array_equal(graph.from_bits(bits), flat)


def test_log_normaliser_is_finite_for_large_fields():
    for unit in KINDS:
        assert np.all(np.isfinite(unit.log_normaliser(np.full((1, unit.width), 1e300))))


def test_expected_states_are_checked_by_the_unit_kind():
    pe.Binary(2).validate_mean(np.array([[0.0, 0.3]]), "X")
    pe.Spin(2).validate_mean(np.array([[-0.5, 1.0]]), "X")
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        pe.Binary(2).validate_mean(np.array([[-0.1, 0.3]]), "X")
    with pytest.raises(ValueError, match="binary and spin units only"):
        pe.Categorical(2, 3).validate_mean(np.array([[0.0, 1.0]]), "X")
