"""Model core: energies, live parameters, fixed structure, conditionals and validation."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgm_energy as pe
from pgm_energy.testing import models, states

from reference import exact as ref


def test_rbm_energy_formula():
    rng = np.random.default_rng(0)
    model = pe.RBM(5, 3, rng=0, b=rng.normal(size=5), c=rng.normal(size=3))
    x = rng.integers(0, 2, (4, 5)).astype(float)
    h = rng.integers(0, 2, (4, 3)).astype(float)
    p = model.params
    want = -x @ p["b"] - h @ p["c"] - np.einsum("bj,jk,bk->b", h, p["W"], x)
    np.testing.assert_allclose(model.energy({"x": x, "h": h}), want, rtol=1e-14)


def test_boltzmann_machine_energy_counts_lateral_pairs_twice():
    U = np.array([[0, 1.5, 0], [1.5, 0, 0], [0, 0, 0]])
    model = pe.BoltzmannMachine(3, 1, W=np.zeros((1, 3)), U=U, V=np.zeros((1, 1)))
    assert model.energy({"x": [[1, 1, 0]], "h": [[0]]})[0] == pytest.approx(-3.0)
    # conditional: sigmoid(b_i + 2 (U x)_i)
    p = model.conditional("x", {"x": [[0, 1, 0]], "h": [[0]]})
    assert p[0, 0] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_params_are_live_views():
    model = pe.RBM(4, 2, rng=0)
    W = model.params["W"]
    W[0, 0] = 2.0
    assert model.terms[2].params["W"][0, 0] == 2.0
    model.params["W"] = np.ones((2, 4))
    assert W[1, 3] == 1.0 and model.params["W"] is W
    x, h = np.ones((1, 4)), np.ones((1, 2))
    assert model.energy({"x": x, "h": h})[0] == pytest.approx(-8.0)
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        model.params["W"] = np.ones((4, 2))
    with pytest.raises(KeyError, match="no parameter 'Q'"):
        model.params["Q"]


# -- the structure is fixed once the model is built (issue 19) ---------------------------
@pytest.mark.parametrize("change", [
    lambda m: m.terms.__delitem__(0),
    lambda m: m.terms.append(pe.Bias("x", name="b2")),
    lambda m: m.terms.insert(0, pe.Bias("x", name="b2")),
    lambda m: m.terms.extend([pe.Bias("x", name="b2")]),
    lambda m: m.terms.pop(),
    lambda m: m.terms.__setitem__(0, pe.Bias("x", name="b2")),
    lambda m: m.terms.__iadd__([pe.Bias("x", name="b2")]),
])
def test_terms_refuse_changes(change):
    model = pe.RBM(4, 2, rng=0)
    before = pe.exact.log_partition(model)
    with pytest.raises(TypeError, match=r"model.terms cannot change.*pe.EnergyModel\(model.units"):
        change(model)
    assert len(model.terms) == 3 and pe.exact.log_partition(model) == before


def test_terms_params_and_term_params_cannot_be_replaced():
    model = pe.RBM(4, 2, rng=0)
    with pytest.raises(AttributeError, match=r"model.terms cannot be replaced"):
        model.terms = model.terms[:2]
    with pytest.raises(AttributeError,
                       match=r"model.params cannot be replaced.*\[\.\.\.\] = value"):
        model.params = {"W": np.ones((2, 4))}
    with pytest.raises(AttributeError, match=r"Pairwise.params cannot be replaced"):
        model.terms[2].params = {"W": np.ones((2, 4))}
    with pytest.raises(KeyError, match="none can be added"):
        model.params["Q"] = 1.0
    with pytest.raises(KeyError, match="none can be added"):
        model.terms[2].params["Q"] = 1.0
    with pytest.raises(TypeError, match="cannot be removed"):
        del model.terms[2].params["W"]
    with pytest.raises(ValueError, match=r"shape \(2, 4\), got \(3, 4\).*new pe.EnergyModel"):
        model.terms[2].params["W"] = np.ones((3, 4))


def test_writing_a_term_parameter_copies_in_place():
    """Before: term.params["W"] = array replaced the array and the exact functions kept the
    old one; now the values are copied into the array the model compiled."""
    model = pe.RBM(4, 2, rng=0)
    pe.exact.log_partition(model)                 # compile the graph
    W = model.params["W"]
    new = np.random.default_rng(1).normal(size=(2, 4))
    model.terms[2].params["W"] = new
    assert model.params["W"] is W and model.terms[2].params["W"] is W
    np.testing.assert_array_equal(W, new)
    fresh = pe.RBM(4, 2, W=new)
    assert pe.exact.log_partition(model) == pytest.approx(pe.exact.log_partition(fresh),
                                                          rel=1e-12)
    model.params["b"][...] = 0.5                  # the documented live view keeps working
    model.params["c"] = [0.1, -0.2]
    fresh.params["b"][...], fresh.params["c"][...] = 0.5, [0.1, -0.2]
    assert pe.exact.log_partition(model) == pytest.approx(pe.exact.log_partition(fresh),
                                                          rel=1e-12)


def test_a_new_model_from_the_terms_of_another():
    model = pe.RBM(4, 2, rng=0)
    extended = pe.EnergyModel(model.units, model.terms + [pe.Lateral("x", name="U")],
                              visible=model.visible)
    assert set(extended.params) == {"b", "c", "W", "U"} and len(model.terms) == 3
    assert extended.params["W"] is model.params["W"]      # the terms are shared
    fewer = pe.EnergyModel(model.units, [*model.terms[:2]], visible=model.visible)
    assert set(fewer.params) == {"b", "c"}
    assert pe.exact.log_partition(fewer) == pytest.approx(6 * np.log(2))


def test_a_model_pickles_with_its_structure():
    import pickle

    model = pe.RBM(4, 2, rng=0)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.params["W"] is copy.terms[2].params["W"]
    assert pe.exact.log_partition(copy) == pe.exact.log_partition(model)
    with pytest.raises(TypeError, match="cannot change"):
        copy.terms.append(pe.Bias("x", name="b2"))


@given(st.data())
def test_conditional_is_a_ratio_of_exact_probabilities(data):
    """P(unit on | rest) = P(s with unit on) / (P(on) + P(off)), from energies."""
    model = data.draw(models(large_weights=False))
    group = data.draw(st.sampled_from(list(model.units)))
    s = data.draw(states(model))
    beta = data.draw(st.floats(0.2, 2.0))
    got = model.conditional(group, s, beta=beta)
    values = model.units[group].values
    for i in range(model.units[group].n):
        on, off = dict(s), dict(s)
        on[group], off[group] = s[group].copy(), s[group].copy()
        on[group][:, i], off[group][:, i] = values[1], values[0]
        d = beta * (model.energy(off) - model.energy(on))
        np.testing.assert_allclose(got[:, i], 1 / (1 + np.exp(-d)), rtol=1e-9, atol=1e-12)


@given(st.data())
def test_term_grad_is_the_derivative_of_energy(data):
    """energy is linear in each built-in term's parameters: E(theta + e_p) - E(theta) = grad_p."""
    model = data.draw(models(large_weights=False))
    s = data.draw(states(model))
    for term in model.terms:
        grad = term.energy_grad(s)
        lateral = isinstance(term, pe.Lateral)
        for name, theta in term.params.items():
            for idx in np.ndindex(theta.shape):
                if lateral and idx[0] >= idx[1]:
                    continue          # the diagonal is not free; pairs move together
                entries = [idx, idx[::-1]] if lateral else [idx]
                before = term.energy(s)
                for e in entries:
                    theta[e] += 1.0
                after = term.energy(s)
                for e in entries:
                    theta[e] -= 1.0
                want = sum(grad[name][(slice(None),) + e] for e in entries)
                np.testing.assert_allclose(after - before, want, atol=1e-9)


def test_free_energy_closed_forms():
    """RBM: F(x) = -b.x - sum softplus(c + W x); spin hidden: -sum log 2 cosh(c + W x)."""
    rng = np.random.default_rng(5)
    W, b, c = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    x = rng.integers(0, 2, (6, 4)).astype(float)
    rbm = pe.RBM(4, 3, W=W, b=b, c=c)
    np.testing.assert_allclose(rbm.free_energy(x),
                               -x @ b - np.logaddexp(0, x @ W.T + c).sum(1), rtol=1e-13)
    spin = pe.RBM(4, 3, W=W, b=b, c=c, hidden_units=pe.Spin)
    a = x @ W.T + c
    np.testing.assert_allclose(spin.free_energy(x),
                               -x @ b - np.log(2 * np.cosh(a)).sum(1), rtol=1e-13)
    np.testing.assert_allclose(rbm.free_energy(x[0]), rbm.free_energy(x[:1]))


def test_free_energy_refuses_too_many_hidden_states():
    n = 30
    V = np.triu(np.full((n, n), 0.1), 1)
    model = pe.BoltzmannMachine(2, n, V=V + V.T, rng=0)
    with pytest.raises(ValueError, match="max_states=1000"):
        model.free_energy(np.zeros((1, 2)), max_states=1000)


# -- validation ---------------------------------------------------------------------------
def test_unit_groups_validate():
    with pytest.raises(ValueError, match=">= 1"):
        pe.Binary(0)
    with pytest.raises(TypeError, match="int"):
        pe.Spin(2.5)
    with pytest.raises(TypeError, match="units"):
        pe.EnergyModel({"x": "four"}, [])


@pytest.mark.parametrize("make, match", [
    (lambda: pe.EnergyModel({"x": 3}, [pe.Bias("y")]), "group 'y'"),
    (lambda: pe.EnergyModel({"x": 3}, [pe.Bias("x"), pe.Bias("x")]), "name 'b'"),
    (lambda: pe.EnergyModel({"x": 3}, [pe.Bias("x", value=[1.0, 2.0])]), r"shape \(3,\)"),
    (lambda: pe.EnergyModel({"x": 3}, [pe.Bias("x")], visible=["z"]), "visible group 'z'"),
    (lambda: pe.Pairwise("x", "x"), "Lateral"),
    (lambda: pe.SparsePairwise("x", [(0, 1), (1, 0)]), "distinct"),
    (lambda: pe.SparsePairwise("x", [(1, 1)]), "distinct units"),
    (lambda: pe.SparsePairwise("x", [(0, 1, 2)]), "shape"),
    (lambda: pe.EnergyModel({"x": 3}, [pe.SparsePairwise("x", [(0, 3)])]), r"\[0, 3\)"),
])
def test_construction_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_term_type_errors():
    with pytest.raises(TypeError, match="pe.Term"):
        pe.EnergyModel({"x": 2}, ["bias"])
    with pytest.raises(TypeError, match="numeric"):
        pe.Bias("x", value="abc")
    with pytest.raises(TypeError, match="integer unit indices"):
        pe.SparsePairwise("x", [("a", "b")])


def test_lateral_must_be_symmetric_with_zero_diagonal():
    model = pe.BoltzmannMachine(3, 2, rng=0)
    model.params["U"][0, 1] += 1.0
    with pytest.raises(ValueError, match="symmetric"):
        model.energy({"x": np.zeros((1, 3)), "h": np.zeros((1, 2))})
    model.params["U"][0, 1] -= 1.0
    model.params["V"][1, 1] = 0.5
    with pytest.raises(ValueError, match="zero diagonal"):
        pe.exact.log_partition(model)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_parameters(bad):
    model = pe.RBM(3, 2)
    model.params["c"][1] = bad
    with pytest.raises(ValueError, match="'c'.*NaN or infinite"):
        model.energy({"x": np.zeros((1, 3)), "h": np.zeros((1, 2))})


def test_state_validation():
    model = pe.RBM(3, 2)
    ok = {"x": np.zeros((2, 3)), "h": np.zeros((2, 2))}
    assert model.energy(ok).shape == (2,)
    with pytest.raises(ValueError, match="missing group 'h'"):
        model.energy({"x": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="unknown groups"):
        model.energy({**ok, "z": np.zeros((2, 1))})
    with pytest.raises(ValueError, match="different batch sizes"):
        model.energy({"x": np.zeros((2, 3)), "h": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"values \[0, 1\]"):
        model.energy({"x": np.full((2, 3), 0.5), "h": np.zeros((2, 2))})
    with pytest.raises(TypeError, match="dict"):
        model.energy(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="unknown group"):
        model.conditional("q", ok)
    assert model.energy({"x": np.zeros(3, bool), "h": np.zeros(2, int)}).shape == (1,)
