"""Variable elimination against enumeration, closed forms, transfer matrices and BP."""
import itertools
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats
from scipy.special import logsumexp

import pgm_energy as pe
from pgm_energy import exact
from pgm_energy._kernels import _eliminate, _order
from pgm_energy.exact.cost import make_plan
from pgm_energy.exact.elimination import Elimination, EliminationPlan, order_cost
from pgm_energy.exact.enumeration import Enumeration
from pgm_energy.testing import models, states

from reference import exact as ref

REL = 1e-10
K_CRITICAL = 0.5 * np.log(1 + np.sqrt(2))


def close(a, b, rel=REL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=0, atol=rel * scale)


def lattice(rows, cols, periodic=False):
    """Edges of a rows x cols square lattice, unit r * cols + c; periodic = a torus."""
    edges = []
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols or periodic:
                edges.append((r * cols + c, r * cols + (c + 1) % cols))
            if r + 1 < rows or periodic:
                edges.append((r * cols + c, ((r + 1) % rows) * cols + c))
    return edges


# -- the kernels against their numpy twins ----------------------------------------------------
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("seed", range(6))
def test_contract_matches_numpy_twin(seed, n_threads):
    rng = np.random.default_rng(seed)
    n_out = int(rng.integers(0, 16))
    n_axes = n_out + 1
    axes = [np.concatenate([[0], np.sort(rng.choice(np.arange(1, n_axes), k, replace=False))])
            for k in rng.integers(0, n_out + 1, size=4)]
    axes.append(np.arange(n_axes))                        # a contiguous (full) table
    axes.append(np.array([0]))                            # a constant one over the block
    tables = [rng.normal(scale=3.0, size=2 ** len(a)) for a in axes]
    out = np.empty(2 ** n_out)
    _eliminate.contract(tables, axes, out, n_threads=n_threads, parallel_min=2**10)
    marginal = rng.dirichlet(np.ones(2 ** n_out))
    want_out, want_joint = ref.contract(tables, axes, n_axes, marginal)
    np.testing.assert_allclose(out, want_out, rtol=1e-13, atol=1e-12)
    joint = np.empty(2 ** n_axes)
    _eliminate.contract(tables, axes, out, marginal, joint, n_threads=n_threads,
                        parallel_min=2**10)
    np.testing.assert_allclose(joint, want_joint, rtol=1e-12, atol=1e-15)


def test_contract_rejects_inconsistent_arrays():
    axes = [np.array([0, 1])]
    with pytest.raises(ValueError, match="2\\^n_out"):
        _eliminate.contract([np.zeros(4)], axes, np.empty(3))
    with pytest.raises(ValueError, match="axes"):
        _eliminate.contract([np.zeros(4)], [np.array([0, 2])], np.empty(2))
    with pytest.raises(ValueError, match="backward"):
        _eliminate.contract([np.zeros(4)], axes, np.empty(2), np.ones(2), np.empty(3))
    plan = EliminationPlan(3, np.array([(0, 1), (1, 2)]), np.ones(3, bool))
    field, coupling = np.zeros(3), np.zeros(2)
    with pytest.raises(ValueError, match="at least 3 and 2 entries"):
        _eliminate.forward(plan.program, field[:2], coupling)
    with pytest.raises(ValueError, match="at least 3 and 2 entries"):
        _eliminate.forward(plan.program, field, coupling[:1])
    _, tables = plan.forward(field, coupling, keep=True)
    with pytest.raises(ValueError, match="store"):
        _eliminate.backward(plan.program, field, coupling, tables[:-1], np.zeros(3),
                            np.zeros(2))
    with pytest.raises(ValueError, match="unit_marginal"):
        _eliminate.backward(plan.program, field, coupling, tables, np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="x must have"):
        _eliminate.sample(plan.program, field, coupling, tables, np.zeros((1, 3)),
                          np.zeros((1, 2), np.int8))
    with pytest.raises(TypeError):
        _eliminate.forward(None, field, coupling)



def test_program_is_checked_once_when_built():
    """A Program refuses any index that would make a sweep read or write out of bounds."""
    plan = EliminationPlan(4, np.array([(0, 1), (1, 2), (2, 3), (0, 3)]), np.ones(4, bool))
    p = plan.program
    arrays = [p.steps, p.scope, p.edge, p.edge_axis, p.edge_state, p.incoming,
              p.incoming_axes, p.sites]
    assert not p.steps.flags.writeable
    assert p.n_stored == sum(2 ** d for d in p.steps[:, 2])
    rebuilt = _eliminate.Program(*arrays, 4, 4)
    assert rebuilt.n_stored == p.n_stored
    consumer = int(np.flatnonzero(p.steps[:, 6])[0])

    def broken(index, at, value, n_units=4, n_edges=4):
        changed = [a.copy() for a in arrays]
        changed[index][at] = value
        return lambda: _eliminate.Program(*changed, n_units, n_edges)

    for make, match in [
        (lambda: _eliminate.Program(*arrays, 3, 4), "below the 3 units"),
        (lambda: _eliminate.Program(*arrays[:7], p.sites[:3], 4, 4), "outside the 3 sites"),
        (lambda: _eliminate.Program(*arrays, 4, 3), "outside the 3 edges"),
        (lambda: _eliminate.Program(p.steps[:, :7], *arrays[1:], 4, 4), "shape"),
        (broken(0, (0, 2), 70), "scope"),                          # scope length
        (broken(0, (0, 4), 9), "bucket"),                          # bucket size
        (broken(3, 0, 9), "axes"),                                 # bucket edge axis
        (broken(4, (0, 0), 0), "no slot"),                         # binary state 0: no slot
        (broken(5, (0, 0), consumer), "earlier step"),             # incoming from later
        (broken(0, (consumer, 5), 10**6), "incoming"),             # incoming start
        (broken(6, 0, 1), "axes of incoming"),                     # first axis must be 0
        (broken(7, (0, 1), 0), "runs of >= 1 slots"),              # a site of no slot
        (broken(0, (0, 7), -1), "table offset"),
    ]:
        with pytest.raises(ValueError, match=match):
            make()
    if len(p.incoming) > 1:                                        # a table read twice
        twice = p.incoming.copy()
        twice[1, 0] = twice[0, 0]
        with pytest.raises(ValueError, match="exactly one"):
            _eliminate.Program(*arrays[:5], twice, *arrays[6:], 4, 4)

def _random_graph(rng, n, kind):
    """Edges (i < j) of a random graph: a tree, a sparse graph or a grid with extra edges."""
    if kind == "tree":
        edges = {(int(rng.integers(0, i)), i) for i in range(1, n)}
    elif kind == "sparse":
        edges = {tuple(sorted(map(int, rng.choice(n, 2, replace=False))))
                 for _ in range(2 * n)}
    else:
        side = int(np.sqrt(n))
        edges = {tuple(sorted(e)) for e in lattice(side, n // side)}
        edges |= {tuple(sorted(map(int, rng.choice(side * (n // side), 2, replace=False))))
                  for _ in range(n // 8)}
    return np.array(sorted(edges), np.int64).reshape(-1, 2)


@pytest.mark.parametrize("kind", ["tree", "sparse", "grid"])
@pytest.mark.parametrize("seed", range(4))
def test_order_search_matches_numpy_twin(kind, seed):
    """The compiled greedy search gives the twin's orders, scopes and costs exactly."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 90))
    pairs = _random_graph(rng, n, kind)
    rank = rng.permutation(n).astype(np.int64)
    for criterion in (_order.LAYOUT, _order.MIN_DEGREE, _order.MIN_FILL):
        for first in (False, True):
            for cap_bits, bound, budget in [(27, n, 10**9), (3, n, 10**9), (27, 3, 10**9),
                                            (27, n, 200)]:
                got = _order.greedy_order(n, pairs, criterion, first, cap_bits, rank,
                                              bound, budget)
                want = ref.greedy_order(n, pairs, criterion, first, cap_bits, rank, bound,
                                        budget)
                assert (got is None) == (want is None)
                if got is not None:
                    for g, w in zip(got[:3], want[:3]):
                        np.testing.assert_array_equal(g, w)
                    assert got[3] == want[3]


@pytest.mark.parametrize("kind", ["tree", "sparse", "grid"])
@pytest.mark.parametrize("seed", range(4))
def test_best_order_is_the_cheapest_twin_candidate(kind, seed):
    rng = np.random.default_rng(20 + seed)
    n = int(rng.integers(1, 90))
    pairs = _random_graph(rng, n, kind) if n > 1 else np.zeros((0, 2), np.int64)
    rank = rng.permutation(n).astype(np.int64)
    got = _order.best_order(n, pairs, 27, rank, 10**9)
    want, bound = None, n
    for criterion in (_order.LAYOUT, _order.MIN_DEGREE, _order.MIN_FILL):
        for first in (False, True):
            found = ref.greedy_order(n, pairs, criterion, first, 27, rank, bound, 10**9)
            if found is not None and (want is None or (found[3][1], found[3][3])
                                      < (want[3][1], want[3][3])):
                want, bound = found, found[3][0]
    for g, w in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(g, w)
    assert got[3] == want[3]


def _random_sites(rng, n_sites, pairs, max_states):
    """Sites of 1 to ``max_states`` slots (1: binary) over a site graph, and slot edges:
    for each site pair, a random nonempty set of slot pairs between the two sites."""
    size = rng.integers(1, max_states + 1, size=n_sites)
    start = np.concatenate([[0], np.cumsum(size)])
    edges = set()
    for a, b in pairs:
        for i in range(start[a], start[a + 1]):
            for j in range(start[b], start[b + 1]):
                if rng.random() < 0.6 or (i == start[a + 1] - 1 and j == start[b + 1] - 1):
                    edges.add((min(i, j), max(i, j)))
    return start, np.array(sorted(edges), np.int64).reshape(-1, 2)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("kind", ["tree", "sparse", "grid"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("max_states", [1, 4])
def test_sweeps_match_numpy_twin(kind, seed, n_threads, max_states, monkeypatch):
    """Forward (sum and max), backward, sampling and back-tracking sweeps of a whole plan
    against the per-step twin: binary units (one slot per site), then sites of 1 to 4 slots."""
    monkeypatch.setattr(pe.exact.elimination, "_PARALLEL_MIN", 2**10 if n_threads > 1 else 2**17)
    rng = np.random.default_rng(10 + seed)
    n_sites = int(rng.integers(2, 60 if max_states == 1 else 24))
    start, edges = _random_sites(rng, n_sites, _random_graph(rng, n_sites, kind), max_states)
    n = int(start[-1])
    free = np.repeat(rng.random(n_sites) < 0.9, np.diff(start))
    plan = EliminationPlan(n, edges, free, site_start=start, max_table=2**16)
    program = plan.program
    field, coupling = rng.normal(size=n), rng.normal(size=len(edges))
    total, tables = plan.forward(field, coupling, keep=True, n_threads=n_threads)
    want_total, want_tables = ref.forward_sweep(program, field, coupling)
    assert total == pytest.approx(want_total, rel=1e-13)
    assert plan.forward(field, coupling, n_threads=n_threads)[0] == total
    offsets = program.steps[:, 7]
    for t, want in zip(offsets, want_tables):
        np.testing.assert_allclose(tables[t:t + len(want)], want, rtol=1e-13, atol=1e-12)
    p_unit, p_pair = plan.backward(field, coupling, tables, n_threads=n_threads)
    want_unit, want_pair = ref.backward_sweep(program, field, coupling, want_tables, n,
                                              len(edges))
    np.testing.assert_allclose(p_unit, want_unit, rtol=0, atol=1e-13)
    np.testing.assert_allclose(p_pair, want_pair, rtol=0, atol=1e-13)
    uniforms = rng.random((500, len(plan.free_sites)))
    first = program.sites[:, 0]             # each site's state at its first slot's column
    for dtype in (np.int8, np.intc):
        x = np.zeros((500, n), dtype)
        _eliminate.sample(program, field, coupling, tables, uniforms, x, n_threads)
        np.testing.assert_array_equal(
            x[:, first], ref.sample_sweep(program, field, coupling, want_tables, uniforms))
    best, max_tables = plan.forward(field, coupling, keep=True, maximum=True)
    want_best, want_max_tables = ref.forward_sweep(program, field, coupling, maximum=True)
    assert best == pytest.approx(want_best, rel=1e-13)
    x = np.zeros((1, n), np.int8)
    _eliminate.sample(program, field, coupling, max_tables, np.zeros((1, 0)), x, 1, True)
    np.testing.assert_array_equal(x[:, first], ref.sample_sweep(
        program, field, coupling, want_max_tables, np.zeros((1, 0)), maximum=True))
    bits = plan.sample(field, coupling, tables, uniforms[:5])       # states -> slot bits
    want = ref.sample_sweep(program, field, coupling, want_tables, uniforms[:5])
    for site in plan.free_sites:
        lo, k = program.sites[site]
        one_hot = want[:, [site]] if k == 1 else np.eye(k, dtype=np.int8)[want[:, site]]
        np.testing.assert_array_equal(bits[:, lo:lo + k], one_hot)


# -- against enumeration on random small models -----------------------------------------------
@pytest.mark.parametrize("kinds", [(pe.Binary, pe.Spin), (pe.Binary, pe.Spin, pe.Categorical)],
                         ids=["binary", "categorical"])
@given(data=st.data(), beta=st.floats(0.2, 2.0))
def test_log_partition_and_marginals_match_enumeration(kinds, data, beta):
    model = data.draw(models(kinds=kinds))
    close(exact.log_partition(model, beta, method="eliminate"),
          exact.log_partition(model, beta, method="enumerate"))
    got = exact.marginals(model, beta=beta, pairwise=True, method="eliminate")
    want = exact.marginals(model, beta=beta, pairwise=True, method="enumerate")
    for g in want[0]:
        close(got[0][g], want[0][g])
    np.testing.assert_array_equal(got[1], want[1])
    close(got[2], want[2])
    got, want = exact.expectations(model, beta=beta, method="eliminate"), ref.expectations(
        model, beta)
    for name in want:
        close(got[name], want[name])


@pytest.mark.parametrize("kinds", [(pe.Binary, pe.Spin), (pe.Binary, pe.Spin, pe.Categorical)],
                         ids=["binary", "categorical"])
@given(data=st.data())
def test_likelihood_and_gradient_match_enumeration(kinds, data):
    model = data.draw(models(kinds=kinds))
    X = data.draw(states(model, model.visible))
    close(exact.log_likelihood(model, X, method="eliminate"),
          exact.log_likelihood(model, X, method="enumerate"))
    got = exact.gradient(model, X, method="eliminate")
    want = exact.gradient(model, X, method="enumerate")
    for name in want:
        close(got[name], want[name])


def test_auto_picks_elimination_for_lattices_and_enumeration_for_wide_rbms():
    grid = pe.Ising(lattice(8, 8), couplings=0.4)
    assert isinstance(make_plan(grid.graph, (), n_threads=1), Elimination)
    wide = pe.RBM(784, 12, rng=0)      # 2^12 states of h, each a vectorised softplus sum
    assert isinstance(make_plan(wide.graph, (), n_threads=1), Enumeration)
    with pytest.raises(ValueError, match="method must be one of"):
        exact.log_partition(grid, method="bp")


# -- known answers: Kaufman's finite torus -------------------------------------------------------
def kaufman_log_z(m, n, K):
    """log Z of the m x n periodic Ising lattice with uniform coupling K (Kaufman 1949).

    Z = 1/2 (2 sinh 2K)^(mn/2) (Z1 + Z2 + Z3 + Z4), with
    Z1, Z2 = prod_{r<n} 2 cosh, 2 sinh (m gamma_{2r+1} / 2),
    Z3, Z4 = prod_{r<n} 2 cosh, 2 sinh (m gamma_{2r} / 2),
    cosh gamma_k = cosh 2K coth 2K - cos(pi k / n) for k > 0, gamma_0 = 2K + log tanh K
    (negative below the critical point, so Z4 may be negative: summed with signs).
    """
    k = np.arange(2 * n)
    gamma = np.arccosh(np.cosh(2 * K) / np.tanh(2 * K) - np.cos(np.pi * k / n))
    gamma[0] = 2 * K + np.log(np.tanh(K))
    logs, signs = [], []
    for values in (gamma[1::2], gamma[0::2]):
        for fn in (np.cosh, np.sinh):
            v = 2 * fn(m * values / 2)
            logs.append(np.sum(np.log(np.abs(v))))
            signs.append(np.prod(np.sign(v)))
    total, sign = logsumexp(logs, b=signs, return_sign=True)
    assert sign > 0
    return -np.log(2) + m * n / 2 * np.log(2 * np.sinh(2 * K)) + total


@pytest.mark.parametrize("m, n", [(4, 4), (3, 5)])
@pytest.mark.parametrize("K", [0.2, K_CRITICAL, 0.6])
def test_kaufman_formula_against_enumeration(m, n, K):
    model = pe.Ising(lattice(m, n, periodic=True), couplings=K)
    want = exact.log_partition(model, method="enumerate")
    assert kaufman_log_z(m, n, K) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("L, K", [(10, 0.2), (10, K_CRITICAL), (10, 0.6),
                                  (12, 0.3), (12, K_CRITICAL)])
def test_torus_matches_kaufman(L, K):
    model = pe.Ising(lattice(L, L, periodic=True), couplings=K)
    assert exact.log_partition(model) == pytest.approx(kaufman_log_z(L, L, K), rel=1e-9)


def test_torus_at_other_beta_and_sign():
    """Antiferromagnet on an even torus: Z(-K) = Z(K) (flip one sublattice)."""
    model = pe.Ising(lattice(10, 10, periodic=True), couplings=-0.25)
    want = kaufman_log_z(10, 10, 0.5)
    assert exact.log_partition(model, beta=2.0) == pytest.approx(want, rel=1e-9)


# -- open grids by transfer matrix, trees by belief propagation ---------------------------------
def transfer_matrix_log_z(rows, cols, J_right, J_down, h):
    """log Z of an open rows x cols spin grid, column by column (2^rows column states).

    ``J_right[r, c]`` couples (r, c)-(r, c+1), ``J_down[r, c]`` couples (r, c)-(r+1, c),
    ``h[r, c]`` is the field of (r, c).
    """
    s = 1.0 - 2.0 * ((np.arange(2 ** rows)[:, None] >> np.arange(rows)) & 1)  # (2^rows, rows)

    def column(c):
        return s @ h[:, c] + np.sum(s[:, :-1] * s[:, 1:] * J_down[:-1, c], axis=1)

    log_v = column(0)
    for c in range(1, cols):
        pair = (s * J_right[:, c - 1]) @ s.T                     # (previous, next)
        log_v = logsumexp(log_v[:, None] + pair, axis=0) + column(c)
    return float(logsumexp(log_v))


def test_open_grid_matches_transfer_matrix():
    rows, cols = 10, 24                                       # 240 spins
    rng = np.random.default_rng(5)
    J_right, J_down = rng.normal(0.3, 0.5, (rows, cols)), rng.normal(0.3, 0.5, (rows, cols))
    h = rng.normal(0.0, 0.3, (rows, cols))
    edges, J = [], []
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols:
                edges.append((r * cols + c, r * cols + c + 1))
                J.append(J_right[r, c])
            if r + 1 < rows:
                edges.append((r * cols + c, (r + 1) * cols + c))
                J.append(J_down[r, c])
    model = pe.Ising(edges, couplings=J, fields=h.ravel())
    want = transfer_matrix_log_z(rows, cols, J_right, J_down, h)
    assert exact.log_partition(model) == pytest.approx(want, rel=1e-11)
    assert exact.treewidth(model) <= rows + 1          # the sweep order (RCM layout)


def tree_bp(n, parent, J, h):
    """Sum-product on a spin tree rooted at 0 (``parent[i] < i``): log Z, P(s_i = +1), E[s_i s_p].

    ``J[i]`` couples i to parent[i] (i >= 1).
    """
    s = np.array([-1.0, 1.0])
    up = np.zeros((n, 2))                      # log of the subtree sum below i, by s_i
    for i in range(n):
        up[i] = h[i] * s
    for i in range(n - 1, 0, -1):              # children have larger indices
        up[parent[i]] += logsumexp(up[i][None, :] + J[i] * np.outer(s, s), axis=1)
    log_z = float(logsumexp(up[0]))
    belief = np.zeros((n, 2))
    pair = np.zeros(n)
    belief[0] = up[0] - log_z
    for i in range(1, n):
        p = parent[i]
        msg = logsumexp(up[i][None, :] + J[i] * np.outer(s, s), axis=1)     # into p, by s_p
        outside_p = belief[p] + log_z - msg                                  # by s_p
        joint = outside_p[:, None] + J[i] * np.outer(s, s) + up[i][None, :] - log_z
        belief[i] = logsumexp(joint, axis=0)
        pair[i] = np.sum(np.exp(joint) * np.outer(s, s))
    return log_z, np.exp(belief[:, 1]), pair


def test_tree_matches_belief_propagation():
    n = 400
    rng = np.random.default_rng(7)
    parent = np.concatenate([[0], [rng.integers(0, i) for i in range(1, n)]])
    J, h = rng.normal(0, 1.0, n), rng.normal(0, 0.5, n)
    model = pe.Ising([(int(parent[i]), i) for i in range(1, n)], couplings=J[1:], fields=h)
    log_z, p_up, pair = tree_bp(n, parent, J, h)
    assert exact.log_partition(model) == pytest.approx(log_z, rel=1e-12)
    assert exact.treewidth(model) == 1
    singles, edges, moments = exact.marginals(model, pairwise=True)
    close(singles["s"], p_up)
    child = edges.max(axis=1)                   # the child end of each tree edge
    close(moments, pair[child])


# -- exact samples ----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_samples_follow_the_exact_distribution(seed):
    """Chi-square goodness of fit over all joint states; false alarm 1e-6 per test."""
    rng = np.random.default_rng(100 + seed)
    model = pe.BoltzmannMachine(4, 3, rng=seed)
    for v in model.params.values():
        v += rng.normal(scale=0.8, size=v.shape) * (v.ndim == 1)
    model.params["W"][...] = rng.normal(scale=0.8, size=(3, 4))
    s, p = ref.joint_probabilities(model)
    n = 40_000
    draws = exact.sample(model, n, rng=seed)
    assert draws["x"].shape == (n, 4) and draws["h"].shape == (n, 3)
    code_of = {tuple(row): k for k, row in enumerate(np.concatenate([s["x"], s["h"]], 1))}
    codes = np.array([code_of[tuple(row)] for row in np.concatenate([draws["x"], draws["h"]], 1)])
    observed = np.bincount(codes, minlength=len(p))
    expected = n * p
    big = expected >= 5                         # pool the rare states into one bin
    obs = np.append(observed[big], observed[~big].sum())
    exp_ = np.append(expected[big], expected[~big].sum())
    assert stats.chisquare(obs, exp_).pvalue > 1e-6


def test_sample_frequencies_match_grid_marginals():
    rng = np.random.default_rng(11)
    edges = lattice(8, 8)
    model = pe.Ising(edges, couplings=rng.normal(0.3, 0.3, len(edges)),
                     fields=rng.normal(0, 0.3, 64))
    n = 20_000
    spins = exact.sample(model, n, rng=3)["s"]
    assert set(np.unique(spins)) <= {-1.0, 1.0}
    p = exact.marginals(model)["s"]
    z = ((spins > 0).mean(axis=0) - p) / np.sqrt(p * (1 - p) / n)
    assert np.max(np.abs(z)) < 5.6              # two-sided 1e-6 over the 64 units (Bonferroni)
    again = exact.sample(model, 50, rng=3)["s"]
    np.testing.assert_array_equal(again, exact.sample(model, 50, rng=3)["s"])


def test_sample_argument_checks():
    model = pe.Ising([(0, 1)])
    with pytest.raises(TypeError, match="n_samples"):
        exact.sample(model, 2.5)
    with pytest.raises(ValueError, match="n_samples"):
        exact.sample(model, -1)
    assert exact.sample(model, 0)["s"].shape == (0, 2)


# -- cost, refusal, threads -------------------------------------------------------------------
def test_treewidth_of_known_graphs():
    assert exact.treewidth(pe.Ising([(i, i + 1) for i in range(20)])) == 1
    assert exact.treewidth(pe.Ising([(i, (i + 1) % 20) for i in range(20)])) == 2
    assert exact.treewidth(pe.Ising(lattice(12, 12))) == 12
    assert exact.treewidth(pe.Ising(lattice(12, 12, periodic=True))) <= 24
    assert exact.treewidth(pe.RBM(30, 4)) == 4


def _dense(n, seed=0):
    rng = np.random.default_rng(seed)
    U = np.triu(0.1 * rng.normal(size=(n, n)), 1)
    return pe.EnergyModel({"x": pe.Binary(n)}, [pe.Bias("x"), pe.Lateral("x", value=U + U.T)])


def test_refuses_a_dense_model_quickly():
    model = _dense(200)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"1\.61e\+60 entries.*states of 200 units.*"
                                         r"treewidth 199.*max_table.*pe\.ais"):
        exact.log_partition(model, method="eliminate")
    with pytest.raises(ValueError, match=r"2\^199.*treewidth 199.*pe\.ais"):
        exact.marginals(model)
    assert exact.treewidth(model) == 199
    assert time.perf_counter() - start < 5.0


def test_refusal_names_the_cap_and_the_backward_store():
    grid = pe.Ising(lattice(10, 10), couplings=0.4)
    with pytest.raises(ValueError, match=r"treewidth 10.*max_table=1000\b"):
        exact.log_partition(grid, method="eliminate", max_table=1000)
    assert np.isfinite(exact.log_partition(grid, method="eliminate", max_table=2048))
    with pytest.raises(ValueError, match="backward sweep"):
        exact.marginals(grid, method="eliminate", max_table=2048)
    with pytest.raises(TypeError, match="max_table"):
        exact.log_partition(grid, method="eliminate", max_table=1e6)


def test_threads_give_identical_answers(monkeypatch):
    monkeypatch.setattr(pe.exact.elimination, "_PARALLEL_MIN", 2**10)   # thread the 16x16 grid's steps
    rng = np.random.default_rng(2)
    edges = lattice(16, 16)
    model = pe.Ising(edges, couplings=rng.normal(0.4, 0.2, len(edges)),
                     fields=rng.normal(0, 0.2, 256))
    one = exact.marginals(model, pairwise=True, n_threads=1)
    two = exact.marginals(model, pairwise=True, n_threads=2)
    np.testing.assert_array_equal(one[0]["s"], two[0]["s"])
    np.testing.assert_array_equal(one[2], two[2])
    assert exact.log_partition(model, n_threads=1) == exact.log_partition(model, n_threads=2)


def test_plan_cost_is_known_before_work():
    cost = order_cost(144, lattice(12, 12, periodic=True))
    assert cost.largest_table == 2.0 ** (cost.width + 1)
    plan = EliminationPlan(100, np.array(lattice(10, 10)), np.ones(100, bool))
    assert plan.cost.width == 10 and len(plan.steps) == 100


# -- k-state tables: Potts lattices and categorical units ----------------------------------------
KINDS = (pe.Binary, pe.Spin, pe.Categorical)


def potts(rows, cols, k, seed, scale=0.7):
    """A rows x cols open-grid k-state Potts model with random fields and coupling tables:
    ``-E = sum_i b[i, x_i] + sum_e J[e, x_i, x_j]``."""
    rng = np.random.default_rng(seed)
    edges = lattice(rows, cols)
    return pe.EnergyModel({"x": pe.Categorical(rows * cols, k)},
                          [pe.Bias("x", value=rng.normal(scale=scale, size=(rows * cols, k))),
                           pe.SparsePairwise("x", edges, value=rng.normal(
                               scale=scale, size=(len(edges), k, k)))])


def potts_transfer_matrix(model, rows, cols, k):
    """``(log Z, P(x_i = a))`` of a :func:`potts` lattice by a column transfer matrix: the
    k^rows states of a column, forward and backward messages in log space."""
    b, J = model.params["b"], model.params["J"]
    index = {e: n for n, e in enumerate(lattice(rows, cols))}
    S = np.array(list(itertools.product(range(k), repeat=rows)))
    unit = [np.arange(rows) * cols + c for c in range(cols)]
    own = [b[unit[c], S].sum(axis=1) + sum(J[index[(unit[c][r], unit[c][r + 1])],
                                               S[:, r], S[:, r + 1]] for r in range(rows - 1))
           for c in range(cols)]
    step = [sum(J[index[(unit[c][r], unit[c][r] + 1)]][S[:, r][:, None], S[:, r][None, :]]
                for r in range(rows)) for c in range(cols - 1)]
    alpha, beta = [own[0]], [np.zeros(len(S))]
    for c in range(cols - 1):
        alpha.append(logsumexp(alpha[-1][:, None] + step[c], axis=0) + own[c + 1])
        m = cols - 2 - c
        beta.insert(0, logsumexp(step[m] + (own[m + 1] + beta[0])[None, :], axis=1))
    log_z = logsumexp(alpha[-1])
    p = np.zeros((rows * cols, k))
    for c in range(cols):
        column = np.exp(alpha[c] + beta[c] - log_z)
        for r in range(rows):
            p[unit[c][r]] = np.bincount(S[:, r], weights=column, minlength=k)
    return log_z, p


@pytest.mark.parametrize("rows, cols, k", [(3, 8, 3), (2, 6, 4)])
def test_potts_lattice_matches_transfer_matrix(rows, cols, k):
    model = potts(rows, cols, k, seed=rows + k)
    assert isinstance(make_plan(model.graph, (), n_threads=1), Elimination)   # auto picks it
    want_z, want_p = potts_transfer_matrix(model, rows, cols, k)
    close(exact.log_partition(model, method="eliminate"), want_z)
    close(exact.marginals(model, method="eliminate")["x"], want_p)


def test_potts_grid_ten_by_ten_is_eliminated():
    """Issue 15: 3^58 states refused enumeration; elimination sums it with tables of 3^11."""
    model = potts(10, 10, 3, seed=0)
    plan = make_plan(model.graph, (), n_threads=1, backward=True)
    assert isinstance(plan, Elimination)
    assert plan.cost.largest_table == 3.0 ** (plan.cost.width + 1) <= 3.0 ** 11
    assert exact.treewidth(model) == plan.cost.width == 10    # over sites, not slots
    p = exact.marginals(model)["x"]
    close(p.sum(axis=1), np.ones(100))


def test_potts_samples_follow_exact_marginals():
    model = potts(3, 4, 3, seed=5, scale=1.0)
    n = 4000
    x = exact.sample(model, n, rng=11)["x"]
    freq = np.stack([(x == a).mean(axis=0) for a in range(3)], axis=1)
    p = exact.marginals(model)["x"]
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 4.5 * se + 1e-3)
    np.testing.assert_array_equal(exact.sample(model, 20, rng=11)["x"], x[:20])


# -- max-product: exact MAP ---------------------------------------------------------------------
def brute_force_minimum(model, clamped, row):
    """Lowest energy over the free groups' states with ``clamped`` groups at ``row``."""
    free = [g for g in model.units if g not in clamped]
    grid = ref.all_states(model, free) if free else {}
    n = len(next(iter(grid.values()))) if free else 1
    full = {g: (grid[g] if g in grid else np.repeat(row[g][None], n, axis=0))
            for g in model.units}
    return model.energy(full).min()


@given(st.data())
def test_max_state_matches_brute_force_minimum(data):
    model = data.draw(models(kinds=KINDS, max_total=7))
    beta = data.draw(st.floats(0.3, 2.0))
    clamped = data.draw(st.sampled_from([[], list(model.visible)]))
    X = data.draw(states(model, clamped, max_batch=3)) if clamped else {}
    plan = make_plan(model.graph, clamped, beta, method="eliminate")
    x = plan.clamped_flat(X)
    best, bits = plan.max_state(x)
    assert best.shape == (len(x),) and bits.shape == (len(x), model.graph.n_units)
    found = model.graph.decode(model.graph.from_bits(bits))
    energy = model.energy(found)
    for r in range(len(x)):
        want = brute_force_minimum(model, clamped, {g: X[g][r] for g in clamped})
        close(-best[r] / beta, want, rel=1e-9)
        close(energy[r], want, rel=1e-9)
        for g in clamped:
            np.testing.assert_array_equal(found[g][r], X[g][r])
    np.testing.assert_array_equal(bits[:, plan.clamped], x[:, plan.clamped])


def test_max_state_breaks_ties_at_the_lowest_state():
    """All-zero parameters: every state ties; each site gets its lowest state (bits 0, the
    first value of a categorical unit), every call the same."""
    units = {"b": pe.Binary(3), "s": pe.Spin(2), "c": pe.Categorical(2, 3)}
    model = pe.EnergyModel(units, [pe.Bias(g, name=f"b_{g}") for g in units]
                           + [pe.Pairwise("b", "c"), pe.Lateral("s")])
    for value in model.params.values():
        value[...] = 0.0
    plan = make_plan(model.graph, (), method="eliminate")
    best, bits = plan.max_state(plan.clamped_flat({}))
    assert best[0] == 0.0
    state = model.graph.decode(model.graph.from_bits(bits))
    np.testing.assert_array_equal(state["b"], [[0, 0, 0]])
    np.testing.assert_array_equal(state["s"], [[-1, -1]])
    np.testing.assert_array_equal(state["c"], [[0, 0]])
    np.testing.assert_array_equal(plan.max_state(plan.clamped_flat({}))[1], bits)


def test_max_state_of_a_spin_glass_grid():
    """A 6 x 6 +-J spin glass: elimination's ground energy is the brute-force one found by
    enumerating the 2^18 states of one checkerboard colour (the other minimised in closed
    form, each spin against its local field)."""
    rng = np.random.default_rng(4)
    edges = lattice(6, 6)
    J = rng.choice([-1.0, 1.0], size=len(edges))
    model = pe.Ising(edges, couplings=J)
    plan = make_plan(model.graph, (), method="eliminate")
    best, bits = plan.max_state(plan.clamped_flat({}))
    s = model.graph.decode(model.graph.from_bits(bits))["s"]
    close(-best[0], model.energy({"s": s})[0])
    black = np.array([(i // 6 + i % 6) % 2 == 0 for i in range(36)])
    A = np.zeros((36, 36))
    A[tuple(np.array(edges).T)] = J
    A = A + A.T
    S = np.array(list(itertools.product([-1.0, 1.0], repeat=18)))
    local = S @ A[np.ix_(black, ~black)]                 # field on each white spin
    want = -(np.abs(local).sum(axis=1)).max()            # E = -sum J s s (no fields)
    close(-best[0], want)


def test_sites_of_more_than_127_states_sample_and_maximise():
    """The sampling kernel's int output (int8 holds at most 127 states)."""
    rng = np.random.default_rng(2)
    b, J = rng.normal(size=(2, 130)), rng.normal(size=(1, 130, 130))
    model = pe.EnergyModel({"x": pe.Categorical(2, 130)},
                           [pe.Bias("x", value=b), pe.SparsePairwise("x", [(0, 1)], value=J)])
    close(exact.log_partition(model, method="eliminate"),
          exact.log_partition(model, method="enumerate"))
    x = exact.sample(model, 50, rng=0)["x"]
    assert x.shape == (50, 2) and x.min() >= 0 and x.max() < 130
    plan = make_plan(model.graph, (), method="eliminate")
    best, bits = plan.max_state(plan.clamped_flat({}))
    close(best[0], (b[0][:, None] + b[1][None, :] + J[0]).max())      # -E = b + J
    close(model.energy(model.graph.decode(model.graph.from_bits(bits)))[0], -best[0])
