"""Evidence (NaN marks a free unit) and exact MAP against brute force over agreeing states."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.special import logsumexp

import pgm_energy as pe
from pgm_energy import exact

from reference import exact as ref

REL = 1e-9
KINDS = (pe.Binary, pe.Spin, pe.Categorical)


def close(a, b, rel=REL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=0, atol=rel * scale)


@st.composite
def evidence_for(draw, model, groups=None, single=None):
    """Random evidence: each group of ``groups`` (default a random subset) with random
    values and NaN at random units; one row (1-D) or a batch of up to 4 rows."""
    names = list(model.units) if groups is None else groups
    if groups is None:
        names = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    single = draw(st.booleans()) if single is None else single
    batch = 1 if single else draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = {}
    for g in names:
        unit = model.units[g]
        values = rng.choice(unit.values, size=(batch, unit.n)).astype(float)
        values[rng.random((batch, unit.n)) < draw(st.floats(0, 1))] = np.nan
        out[g] = values[0] if single else values
    return out


def agreeing(states, evidence):
    """Boolean (n_evidence_rows, n_states): which listed states agree with each row."""
    rows = None
    for g, values in evidence.items():
        v = np.atleast_2d(values)
        ok = np.isnan(v[:, None, :]) | (states[g][None] == v[:, None, :])
        ok = ok.all(axis=2)
        rows = ok if rows is None else rows & ok
    return rows


def brute(model):
    s = ref.all_states(model)
    return s, -model.energy(s)


@given(st.data())
def test_log_partition_with_evidence_matches_brute_force(data):
    model = data.draw(pe.testing.models(kinds=KINDS, max_total=7))
    evidence = data.draw(evidence_for(model))
    s, lw = brute(model)
    expected = [logsumexp(lw[row]) for row in agreeing(s, evidence)]
    single = np.ndim(next(iter(evidence.values()))) == 1
    for method in ("auto", "enumerate"):
        got = exact.log_partition(model, evidence=evidence, method=method)
        assert isinstance(got, float) == single
        close(np.atleast_1d(got), expected)


@given(st.data())
def test_marginals_with_evidence_match_brute_force(data):
    model = data.draw(pe.testing.models(kinds=KINDS, max_total=7))
    evidence = data.draw(evidence_for(model, single=False))
    s, lw = brute(model)
    rows = agreeing(s, evidence)
    got = exact.marginals(model, evidence=evidence)
    for g, unit in model.units.items():
        features = unit.encode(s[g])                     # (n_states, width)
        bits = (features - unit.low) / unit.scale
        for r, keep in enumerate(rows):
            p = np.exp(lw[keep] - logsumexp(lw[keep]))
            close(got[g][r].reshape(-1), p @ bits[keep])


@given(st.data())
def test_expectations_with_evidence_match_brute_force(data):
    model = data.draw(pe.testing.models(max_total=6))
    evidence = data.draw(evidence_for(model, single=False))
    s, lw = brute(model)
    rows = agreeing(s, evidence)
    got = exact.expectations(model, evidence=evidence)
    for r, keep in enumerate(rows):
        p = np.exp(lw[keep] - logsumexp(lw[keep]))
        sub = {g: v[keep] for g, v in s.items()}
        for term in model.terms:
            for name, grad in term.energy_grad(sub).items():
                close(got[name][r], np.tensordot(p, grad, axes=1))


@given(st.data())
def test_log_likelihood_with_missing_values_and_evidence(data):
    model = data.draw(pe.testing.models(kinds=KINDS, max_total=7))
    X = data.draw(evidence_for(model, groups=model.visible, single=False))
    s, lw = brute(model)
    x_rows = agreeing(s, X)
    got = exact.log_likelihood(model, X)
    close(got, [logsumexp(lw[row]) - logsumexp(lw) for row in x_rows])
    hidden = [g for g in model.units if g not in model.visible]
    if hidden:                       # P(x | e) with evidence on the hidden groups
        evidence = data.draw(evidence_for(model, groups=hidden, single=True))
        e_row = agreeing(s, evidence)[0]
        got = exact.log_likelihood(model, X, evidence=evidence)
        close(got, [logsumexp(lw[row & e_row]) - logsumexp(lw[e_row]) for row in x_rows])


def test_gradient_with_missing_values_matches_finite_differences():
    model = pe.RBM(5, 3, rng=1)
    X = np.array([[1, np.nan, 0, 1, np.nan], [0, 1, 1, np.nan, 0], [1, 1, 0, 0, 1]])
    grad = exact.gradient(model, X)
    eps = 1e-6
    for name, value in model.params.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + eps
            up = exact.log_likelihood(model, X).mean()
            value[idx] = old - eps
            down = exact.log_likelihood(model, X).mean()
            value[idx] = old
            fd[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad[name], fd, atol=1e-7)


def test_classification_rbm_conditional_in_one_call():
    """P(label | image) of a batch of images: one marginals call, against brute force."""
    rng = np.random.default_rng(3)
    units = {"x": pe.Binary(6), "y": pe.Categorical(1, 3), "h": pe.Binary(4)}
    terms = [pe.Bias("x", name="b"), pe.Bias("y", name="d"), pe.Bias("h", name="c"),
             pe.Pairwise("h", "x", name="W"), pe.Pairwise("h", "y", name="V")]
    model = pe.EnergyModel(units, terms, visible=["x", "y"])
    for p in model.params.values():
        p[...] = rng.normal(0, 1, p.shape)
    images = rng.integers(0, 2, (5, 6)).astype(float)
    p_label = exact.marginals(model, evidence={"x": images})["y"][:, 0, :]
    assert p_label.shape == (5, 3)
    s, lw = brute(model)
    for r, keep in enumerate(agreeing(s, {"x": images})):
        joint = [logsumexp(lw[keep & (s["y"][:, 0] == c)]) for c in range(3)]
        close(p_label[r], np.exp(np.array(joint) - logsumexp(joint)))


@given(st.data())
def test_map_state_matches_brute_force_minimum(data):
    model = data.draw(pe.testing.models(kinds=KINDS, max_total=7))
    evidence = data.draw(st.none() | evidence_for(model, single=False))
    s, lw = brute(model)
    rows = np.ones((1, len(lw)), bool) if evidence is None else agreeing(s, evidence)
    method = data.draw(st.sampled_from(["enumerate", "eliminate"]))
    state, energy = exact.map_state(model, evidence, method=method)
    energy = np.atleast_1d(energy)
    for r, keep in enumerate(rows):
        close(energy[r], -lw[keep].max())
        row_state = {g: np.atleast_2d(v)[r:r + 1] for g, v in state.items()}
        close(model.energy(row_state), energy[r:r + 1])
        for g, v in (evidence or {}).items():          # held units keep their values
            v = np.atleast_2d(v)[r]
            np.testing.assert_array_equal(row_state[g][0][~np.isnan(v)], v[~np.isnan(v)])
    again, _ = exact.map_state(model, evidence, method=method)
    for g in state:
        np.testing.assert_array_equal(again[g], state[g])


def test_map_state_of_a_spin_glass_and_ties():
    rng = np.random.default_rng(0)
    L = 4
    edges = [(r * L + c, r * L + c + 1) for r in range(L) for c in range(L - 1)]
    edges += [(r * L + c, (r + 1) * L + c) for r in range(L - 1) for c in range(L)]
    glass = pe.Ising(edges, couplings=rng.choice([-1.0, 1.0], len(edges)))
    s, lw = brute(glass)
    for method in ("enumerate", "eliminate"):
        state, energy = exact.map_state(glass, method=method)
        assert state["s"].shape == (16,)
        close(energy, -lw.max())
    flat = pe.Ising([(0, 1)], couplings=0.0)         # every state ties: all spins at -1
    for method in ("enumerate", "eliminate"):
        state, energy = exact.map_state(flat, method=method)
        np.testing.assert_array_equal(state["s"], [-1.0, -1.0])
        assert energy == 0.0


def test_evidence_refusals_name_the_problem():
    model = pe.RBM(3, 2, rng=0)
    with pytest.raises(ValueError, match="unknown groups"):
        exact.log_partition(model, evidence={"z": [1.0]})
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(batch, 3\)"):
        exact.log_partition(model, evidence={"x": [1.0, 0.0]})
    with pytest.raises(ValueError, match="unit 1 of row 0 is 0.5"):
        exact.marginals(model, evidence={"x": [1.0, 0.5, np.nan]})
    with pytest.raises(ValueError, match="unit 0 of row 1 is inf"):
        exact.map_state(model, {"h": [[1.0, 0.0], [np.inf, 0.0]]})
    with pytest.raises(ValueError, match="different batch sizes"):
        exact.log_partition(model, evidence={"x": np.zeros((2, 3)), "h": np.zeros((3, 2))})
    with pytest.raises(TypeError, match="dict of group name"):
        exact.log_partition(model, evidence=np.zeros(3))
    with pytest.raises(ValueError, match="both hold unit 0 of group 'x'"):
        exact.log_likelihood(model, [[1.0, 0.0, 1.0]], evidence={"x": [1.0, np.nan, np.nan]})
    with pytest.raises(ValueError, match="one evidence row, or one per row"):
        exact.log_likelihood(model, np.zeros((2, 3)), evidence={"h": np.zeros((3, 2))})
    cat = pe.EnergyModel({"y": pe.Categorical(2, 3)}, [pe.Bias("y", name="b")])
    with pytest.raises(ValueError, match="categorical units take values"):
        exact.log_partition(cat, evidence={"y": [3.0, np.nan]})


def test_samples_with_evidence_follow_the_exact_conditional():
    """Each evidence row's samples against P(free units | row) by brute force: a chi-square
    over the agreeing states, refused beyond the 1e-4 tail at a fixed seed."""
    from scipy.stats import chi2

    rng = np.random.default_rng(2)
    edges = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    model = pe.Ising(edges, couplings=rng.normal(0, 0.5, len(edges)),
                     fields=rng.normal(0, 0.5, 6))
    evidence = {"s": np.array([[1.0, np.nan, -1.0, np.nan, np.nan, np.nan],
                               [np.nan, np.nan, np.nan, 1.0, np.nan, np.nan]])}
    n = 20000
    drawn = exact.sample(model, n, evidence=evidence, rng=0)["s"]
    assert drawn.shape == (2, n, 6)
    s, lw = brute(model)
    codes = (s["s"] > 0) @ (2 ** np.arange(6))
    for r, keep in enumerate(agreeing(s, evidence)):
        p = np.exp(lw[keep] - logsumexp(lw[keep]))
        got = (drawn[r] > 0) @ (2 ** np.arange(6))
        assert np.isin(got, codes[keep]).all()          # held units kept their values
        counts = np.array([(got == c).sum() for c in codes[keep]])
        stat = np.sum((counts - n * p) ** 2 / (n * p))
        assert stat < chi2.isf(1e-4, keep.sum() - 1)
    one = exact.sample(model, 5, evidence={"s": evidence["s"][0]}, rng=0)["s"]
    np.testing.assert_array_equal(one, drawn[0, :5])    # one row: the same draws


def test_potts_samples_with_evidence_keep_it_and_follow_the_conditional():
    """A 3-state Potts chain of 5 sites, the middle one held: exact samples through the
    k-state elimination, against the brute-force conditional (chi-square, fixed seed)."""
    from scipy.stats import chi2

    rng = np.random.default_rng(4)
    units = {"y": pe.Categorical(5, 3)}
    J = np.zeros((4, 3, 3))
    J[:, np.arange(3), np.arange(3)] = rng.normal(0, 1, (4, 3))
    model = pe.EnergyModel(units, [pe.Bias("y", name="b", value=rng.normal(0, 0.5, (5, 3))),
                                   pe.SparsePairwise("y", [(i, i + 1) for i in range(4)],
                                                     name="J", value=J)])
    evidence = {"y": np.array([np.nan, np.nan, 2.0, np.nan, np.nan])}
    n = 20000
    drawn = exact.sample(model, n, evidence=evidence, rng=1)["y"]
    assert (drawn[:, 2] == 2).all()
    s, lw = brute(model)
    keep = agreeing(s, evidence)[0]
    p = np.exp(lw[keep] - logsumexp(lw[keep]))
    codes = s["y"][keep] @ (3 ** np.arange(5))
    got = drawn @ (3 ** np.arange(5))
    counts = np.array([(got == c).sum() for c in codes])
    assert np.sum((counts - n * p) ** 2 / (n * p)) < chi2.isf(1e-4, keep.sum() - 1)
