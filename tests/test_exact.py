"""The exact oracle against brute force, identities, known answers and refusals."""
import ast
import pathlib

import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgm_energy as pe
from pgm_energy import exact
from pgm_energy.exact.enumeration import Enumeration
from pgm_energy.testing import models, states

from reference import exact as ref

REL = 1e-10


def close(a, b, rel=REL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=0, atol=rel * scale)


@given(models())
def test_log_partition_matches_brute_force(model):
    close(exact.log_partition(model), ref.log_partition(model))


@given(models(), st.floats(0.1, 3.0))
def test_log_partition_beta_scaling(model, beta):
    """log Z at beta equals log Z at 1 of the model with every parameter times beta."""
    expected = ref.log_partition(model, beta)
    close(exact.log_partition(model, beta), expected)
    for name in model.params:
        model.params[name] *= beta
    close(exact.log_partition(model), expected)


@given(st.data())
def test_log_likelihood_and_free_energy_match_brute_force(data):
    model = data.draw(models())
    X = data.draw(states(model, model.visible))
    close(exact.log_likelihood(model, X), ref.log_likelihood(model, X))
    close(model.free_energy(X), ref.free_energy(model, X))
    close(model.free_energy(X, beta=0.5), ref.free_energy(model, X, beta=0.5))


@given(models(max_total=8))
def test_likelihood_normalises(model):
    """sum over every visible configuration of P(x) is 1."""
    X = ref.all_states(model, model.visible)
    total = np.exp(exact.log_likelihood(model, X)).sum()
    assert total == pytest.approx(1.0, rel=1e-9)


@given(models(), st.floats(0.2, 2.0))
def test_expectations_match_brute_force(model, beta):
    got = exact.expectations(model, beta=beta)
    want = ref.expectations(model, beta)
    assert got.keys() == want.keys()
    for name in want:
        close(got[name], want[name])


@given(st.data())
def test_gradient_matches_brute_force(data):
    model = data.draw(models())
    X = data.draw(states(model, model.visible))
    got = exact.gradient(model, X)
    model_side, data_side = ref.expectations(model), ref.data_expectations(model, X)
    for name in model_side:
        close(got[name], model_side[name] - data_side[name])


@given(st.data())
def test_gradient_equals_finite_differences(data):
    """d mean log P(X)/d theta by central differences; laterals move as symmetric pairs."""
    model = data.draw(models(max_total=7, large_weights=False))
    X = data.draw(states(model, model.visible))
    grad = exact.gradient(model, X)
    eps = 1e-5
    lateral = {t.param_names[0] for t in model.terms if isinstance(t, pe.Lateral)}
    for name, theta in model.params.items():
        for idx in np.ndindex(theta.shape):
            if name in lateral and idx[0] >= idx[1]:
                continue
            partner = (idx[1], idx[0]) if name in lateral else None
            values = []
            for sign in (1, -1):
                theta[idx] += sign * eps
                if partner:
                    theta[partner] += sign * eps
                values.append(exact.log_likelihood(model, X).mean())
                theta[idx] -= sign * eps
                if partner:
                    theta[partner] -= sign * eps
            fd = (values[0] - values[1]) / (2 * eps)
            want = grad[name][idx] + (grad[name][partner] if partner else 0.0)
            assert fd == pytest.approx(want, abs=1e-6, rel=1e-5), (name, idx)
    for name in lateral:
        g = grad[name]
        np.testing.assert_array_equal(g, g.T)
        assert np.all(np.diag(g) == 0)


def test_marginals_match_brute_force():
    rng = np.random.default_rng(3)
    model = pe.BoltzmannMachine(4, 3, rng=3)
    model.params["W"][...] = rng.normal(size=(3, 4))
    s, p = ref.joint_probabilities(model)
    got = exact.marginals(model)
    close(got["x"], p @ s["x"])
    close(got["h"], p @ s["h"])
    ising = pe.Ising([(0, 1), (1, 2)], couplings=[0.5, -1.0], fields=[0.3, 0.0, -0.2])
    s, p = ref.joint_probabilities(ising)
    close(exact.marginals(ising)["s"], p @ (s["s"] + 1) / 2)


# -- known answers -----------------------------------------------------------------------
def test_rbm_without_weights_is_a_sum_of_softplus():
    rng = np.random.default_rng(0)
    b, c = rng.normal(size=7), rng.normal(size=5)
    model = pe.RBM(7, 5, W=np.zeros((5, 7)), b=b, c=c)
    want = np.logaddexp(0, b).sum() + np.logaddexp(0, c).sum()
    assert exact.log_partition(model) == pytest.approx(want, rel=1e-13)


def test_rbm_log_partition_by_listing_the_small_side():
    """Wide RBM: log Z = logsumexp_h (c.h + sum_i softplus(b_i + (W^T h)_i))."""
    rng = np.random.default_rng(1)
    W, b, c = rng.normal(size=(3, 200)), rng.normal(size=200), rng.normal(size=3)
    model = pe.RBM(200, 3, W=W, b=b, c=c)
    H = ref.all_states(pe.RBM(3, 1), ["x"])["x"]
    want = np.logaddexp.reduce(H @ c + np.logaddexp(0, b + H @ W).sum(axis=1))
    assert exact.log_partition(model) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("beta", [0.3, 1.0, 2.5])
def test_ising_ring_closed_form(beta):
    """Periodic chain, uniform J: Z = (2 cosh bJ)^N + (2 sinh bJ)^N."""
    N, J = 12, 0.7
    model = pe.Ising([(i, (i + 1) % N) for i in range(N)], couplings=J)
    want = np.log((2 * np.cosh(beta * J)) ** N + (2 * np.sinh(beta * J)) ** N)
    assert exact.log_partition(model, beta) == pytest.approx(want, rel=1e-12)


def test_open_chain_closed_form_with_large_couplings():
    """Open chain: Z = 2 prod_e 2 cosh(J_e), stable for |J| up to 1e3."""
    J = np.array([1e3, -7e2, 3.0, -1e3, 0.5, 999.0])
    model = pe.Ising([(i, i + 1) for i in range(len(J))], couplings=J)
    want = np.log(2) + np.sum(np.abs(J) + np.log1p(np.exp(-2 * np.abs(J))))
    assert exact.log_partition(model) == pytest.approx(want, rel=1e-13)
    X = np.ones((1, 7))
    assert np.isfinite(exact.log_likelihood(model, X)).all()
    assert all(np.isfinite(v).all() for v in exact.gradient(model, X).values())


def test_large_weights_stay_finite():
    rng = np.random.default_rng(2)
    model = pe.BoltzmannMachine(6, 4, rng=2)
    for v in model.params.values():
        v[...] = 1e3 * np.sign(rng.normal(size=v.shape)) * (v.ndim < 2 or 1)
    model.params["U"][...] = np.triu(model.params["U"], 1) + np.triu(model.params["U"], 1).T
    model.params["V"][...] = np.triu(model.params["V"], 1) + np.triu(model.params["V"], 1).T
    close(exact.log_partition(model), ref.log_partition(model))
    got = exact.expectations(model)
    assert all(np.isfinite(g).all() for g in got.values())


# -- pieces and threads ------------------------------------------------------------------
def _dense_model(n, seed):
    rng = np.random.default_rng(seed)
    U = np.triu(0.3 * rng.normal(size=(n, n)), 1)
    return pe.EnergyModel({"x": pe.Binary(n)},
                          [pe.Bias("x", value=rng.normal(size=n)), pe.Lateral("x", value=U + U.T)])


def test_pieces_and_threads_give_the_same_answer():
    model = _dense_model(19, 4)   # 18 units enumerated: 16 pieces by default
    plan = Enumeration(model.graph, (), 1.0, 1)
    assert plan.m == 18 and plan.n_prefix > 0
    zero = plan.clamped_flat({})
    results = []
    for n_prefix in (0, 3, 6):
        plan.n_prefix = n_prefix
        results.append(plan.log_sum(zero)[0])
    s = ref.all_states(model)
    want = float(np.logaddexp.reduce(-model.energy(s)))
    for r in results:
        assert r == pytest.approx(want, rel=1e-12)
    one = exact.log_partition(model, n_threads=1)
    two = exact.log_partition(model, n_threads=2)
    assert one == two
    e1 = exact.expectations(model, n_threads=1)
    e2 = exact.expectations(model, n_threads=2)
    np.testing.assert_array_equal(e1["U"], e2["U"])


# -- refusals and bad input ----------------------------------------------------------------
def test_refuses_too_many_states_with_a_useful_message():
    model = _dense_model(45, 0)
    with pytest.raises(ValueError, match=r"2\^44.*pe\.ais"):
        exact.log_partition(model)
    small = _dense_model(12, 0)
    with pytest.raises(ValueError, match="max_states=100"):
        exact.log_partition(small, max_states=100)
    assert np.isfinite(exact.log_partition(small, max_states=2**11))


@pytest.mark.parametrize("beta", [0.0, -1.0, np.nan, np.inf])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        exact.log_partition(pe.RBM(3, 2), beta=beta)


def test_bad_beta_type_and_threads():
    with pytest.raises(TypeError, match="beta"):
        exact.log_partition(pe.RBM(3, 2), beta="hot")
    with pytest.raises(ValueError, match="n_threads"):
        exact.log_partition(pe.RBM(3, 2), n_threads=0)
    with pytest.raises(TypeError, match="EnergyModel"):
        exact.log_partition("model")


def test_nonfinite_parameters_are_refused():
    model = pe.RBM(3, 2)
    model.params["W"][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite.*'W'|'W'.*NaN or infinite"):
        exact.log_partition(model)


def test_bad_data_is_refused():
    model = pe.RBM(3, 2)
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(batch, 3\)"):
        exact.log_likelihood(model, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"values \[0, 1\]"):
        exact.log_likelihood(model, [[0, 2, 1]])
    with pytest.raises(TypeError, match="numeric"):
        exact.log_likelihood(model, [["a", "b", "c"]])
    spins = pe.Ising([(0, 1)])
    with pytest.raises(ValueError, match=r"values \[-1, 1\]"):
        exact.log_likelihood(spins, [[0, 1]])


@pytest.mark.parametrize("method", ["enumerate", "eliminate"])
def test_data_without_rows_is_refused(method):
    """Issue 19: the likelihood and the gradient raised IndexError on zero rows."""
    model = pe.RBM(3, 2, rng=0)
    empty = np.zeros((0, 3))
    for compute in (exact.log_likelihood, exact.gradient):
        with pytest.raises(ValueError, match="X has no rows"):
            compute(model, empty, method=method)
    assert model.free_energy(empty).shape == (0,)


def test_models_too_large_to_count_are_refused_not_overflowed():
    """Issue 19: counting 2^log2_states in a float overflowed (OverflowError) for models of
    thousands of units, before "auto" could choose elimination."""
    n, J = 2048, 0.3
    chain = pe.Ising([(i, i + 1) for i in range(n - 1)], couplings=J)
    want = np.log(2) + (n - 1) * np.log(2 * np.cosh(J))
    assert exact.log_partition(chain) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match=r"= 10\^\d+ states.*max_states.*pe\.ais"):
        exact.log_partition(chain, method="enumerate")
    L = 46
    grid = pe.Ising([(r * L + c, r * L + c + 1) for r in range(L) for c in range(L - 1)]
                    + [(r * L + c, (r + 1) * L + c) for r in range(L - 1) for c in range(L)])
    with pytest.raises(ValueError, match=r"10\^\d+ states.*treewidth 46.*pe\.ais"):
        exact.log_partition(grid)


def test_categorical_model_too_large_names_what_can_work():
    """Issue 13: under "auto" the refusal recommended method='enumerate', which refuses too;
    elimination now sums categorical units and counts their states in its tables."""
    model = pe.EnergyModel({"x": pe.Categorical(30, 3)}, [pe.Bias("x"), pe.Lateral("x")])
    with pytest.raises(ValueError,
                       match=r"3\^29 .*and exact elimination.*2\.06e\+14 entries") as info:
        exact.log_partition(model)
    message = str(info.value)
    assert "method='enumerate'" not in message
    assert "pe.ais.log_partition" in message
    small = pe.EnergyModel({"x": pe.Categorical(3, 3)}, [pe.Bias("x")])
    assert exact.log_partition(small, method="eliminate") == pytest.approx(3 * np.log(3))


def test_model_and_exact_import_no_cycle():
    """EnergyModel.free_energy uses the engines through exact.cost, imported at the top of
    model.py; no module of exact/ imports the model back at run time (type hints only)."""
    package = pathlib.Path(exact.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        hints = {id(node) for branch in tree.body if isinstance(branch, ast.If)
                 and getattr(branch.test, "id", None) == "TYPE_CHECKING"
                 for node in ast.walk(branch)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and id(node) not in hints:
                assert node.module not in ("model", "pgm_energy.model"), path.name
    model_source = ast.parse((package.parent / "model.py").read_text())
    inner = [node for fn in ast.walk(model_source) if isinstance(fn, ast.FunctionDef)
             for node in ast.walk(fn) if isinstance(node, ast.ImportFrom)
             and "exact" in (node.module or "")]
    assert not inner


def test_exact_sample_names_what_to_use_for_models_elimination_does_not_take():
    model = pe.EnergyModel({"x": 4}, [pe.Bias("x"), pe.Interaction("x", cliques=[(0, 1, 2)])])
    with pytest.raises(ValueError, match="GibbsSampler"):
        pe.exact.sample(model, 3, rng=0)
