"""The split of the exact engine: a maximum-weight independent set of the free sites, summed in
closed form (``graph.independent_split``), against brute force, the greedy set and a transfer
matrix on Potts grids."""
import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.special import logsumexp

import pgm_energy as pe
from pgm_energy.exact.cost import make_plan
from pgm_energy.exact.enumeration import Enumeration
from pgm_energy.graph import independent_split

TOL = 1e-9


@st.composite
def site_graphs(draw, max_sites=9, bipartite=None):
    """Sites of 1 to 4 slots (1: a binary unit, weight log 2; k > 1: a categorical unit,
    weight log k), edges between slots of distinct sites, some sites free, a ``first`` mask;
    ``bipartite=True`` keeps edges between two colour classes."""
    n_sites = draw(st.integers(1, max_sites))
    sizes = np.array(draw(st.lists(st.sampled_from([1, 1, 2, 3, 4]), min_size=n_sites,
                                   max_size=n_sites)))
    site = np.repeat(np.arange(n_sites), sizes)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    colour = np.array(draw(st.lists(st.booleans(), min_size=n_sites, max_size=n_sites)))
    site_pairs = [(a, b) for a in range(n_sites) for b in range(a + 1, n_sites)
                  if not bipartite or colour[a] != colour[b]]
    chosen = draw(st.lists(st.sampled_from(site_pairs), unique=True)) if site_pairs else []
    edges = np.array([(start[a] + draw(st.integers(0, sizes[a] - 1)),
                       start[b] + draw(st.integers(0, sizes[b] - 1))) for a, b in chosen],
                     np.int64).reshape(-1, 2)
    free_sites = np.array(draw(st.lists(st.booleans(), min_size=n_sites, max_size=n_sites)))
    first_sites = np.array(draw(st.lists(st.booleans(), min_size=n_sites, max_size=n_sites)))
    return sizes, site, edges, np.flatnonzero(free_sites[site]), first_sites[site]


def site_weight(sizes, sites):
    return float(np.sum(np.log(np.maximum(sizes[sites], 2))))


def site_pairs_within(site, edges, units):
    """The pairs of distinct sites joined by an edge with both ends in ``units``."""
    inside = np.isin(edges, units).all(axis=1)
    pairs = site[edges[inside]]
    return pairs[pairs[:, 0] != pairs[:, 1]]


def greedy_sites(sites, pairs, first):
    """Twin of the former split: lowest degree first (``first`` sites before the others),
    each site taken unless a neighbour was."""
    degree = {s: 0 for s in sites}
    for a, b in {tuple(sorted(p)) for p in pairs.tolist()}:
        degree[a] += 1
        degree[b] += 1
    taken, blocked = [], set()
    for s in sorted(sites, key=lambda s: (not first[s], degree[s])):
        if s not in blocked:
            taken.append(s)
            blocked |= {b for a, b in pairs.tolist() if a == s} | {a for a, b in pairs.tolist()
                                                                    if b == s}
    return np.array(taken, np.int64)


def best_weight(sizes, sites, pairs):
    """Brute force: the largest weight of an independent set of ``sites``, over all
    subsets."""
    bits = (np.arange(2 ** len(sites))[:, None] >> np.arange(len(sites))) & 1
    place = np.searchsorted(sites, pairs)
    independent = ~(bits[:, place[:, 0]] & bits[:, place[:, 1]]).any(axis=1)
    return float((bits[independent] @ np.log(np.maximum(sizes[sites], 2))).max())


def check_split(site, edges, free, S, A):
    """``S`` and ``A`` part ``free`` by whole sites and no edge joins two units of ``A``;
    returns the sites of ``A``."""
    assert np.array_equal(np.sort(np.concatenate([S, A])), free)
    assert not np.intersect1d(site[S], site[A]).size
    assert not np.isin(edges, A).all(axis=1).any()
    return np.unique(site[A])


@given(graph=site_graphs(bipartite=True), with_first=st.booleans())
def test_split_is_a_maximum_weight_independent_set_on_bipartite_graphs(graph, with_first):
    sizes, site, edges, free, first = graph
    S, A = independent_split(free, edges, first=first if with_first else None, site=site)
    chosen = check_split(site, edges, free, S, A)
    sites = np.unique(site[free])
    pairs = site_pairs_within(site, edges, free)
    if not with_first:
        assert site_weight(sizes, chosen) == pytest.approx(best_weight(sizes, sites, pairs),
                                                           abs=TOL)
    else:
        # First the heaviest set of the first sites, then the others they leave free.
        prior = sites[first[np.searchsorted(site, sites)]]
        prior_pairs = pairs[np.isin(pairs, prior).all(axis=1)]
        assert site_weight(sizes, np.intersect1d(chosen, prior)) == pytest.approx(
            best_weight(sizes, prior, prior_pairs), abs=TOL)


def test_split_matches_brute_force_on_random_bipartite_graphs():
    """Fixed seeds: 200 bipartite graphs of 10 sites of 1 to 4 slots, edge density 0.3."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.choice([1, 1, 2, 3, 4], size=10)
        site = np.repeat(np.arange(10), sizes)
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        colour = rng.integers(0, 2, 10)
        a, b = np.triu_indices(10, 1)
        keep = (colour[a] != colour[b]) & (rng.random(len(a)) < 0.3)
        edges = np.stack([start[a[keep]], start[b[keep]] + sizes[b[keep]] - 1], axis=1)
        free = np.arange(len(site))
        S, A = independent_split(free, edges, site=site)
        chosen = check_split(site, edges, free, S, A)
        want = best_weight(sizes, np.arange(10), site[edges])
        assert site_weight(sizes, chosen) == pytest.approx(want, abs=TOL)


@given(graph=site_graphs(max_sites=12), with_first=st.booleans())
def test_split_is_independent_and_never_lighter_than_greedy(graph, with_first):
    sizes, site, edges, free, first = graph
    first_site = np.zeros(len(sizes), bool)
    first_site[site[first]] = True
    mask = first if with_first else None
    S, A = independent_split(free, edges, first=mask, site=site)
    chosen = check_split(site, edges, free, S, A)
    greedy = greedy_sites(np.unique(site[free]), site_pairs_within(site, edges, free),
                          first_site if with_first else np.zeros(len(sizes), bool))
    # Lexicographic: the weight of the first sites, then the whole weight.
    keys = [(site_weight(sizes, s[first_site[s]]) if with_first else 0.0, site_weight(sizes, s))
            for s in (chosen, greedy)]
    assert keys[0][0] >= keys[1][0] - TOL
    if abs(keys[0][0] - keys[1][0]) <= TOL:
        assert keys[0][1] >= keys[1][1] - TOL


@pytest.mark.parametrize("seed", range(3))
def test_local_search_improves_greedy_on_graphs_with_odd_cycles(seed):
    """Random graphs of 300 binary units and 900 edges: the greedy set leaves swaps that
    the local search takes."""
    rng = np.random.default_rng(seed)
    n = 300
    edges = np.unique(np.sort(rng.integers(0, n, (900, 2)), axis=1), axis=0)
    edges = edges[edges[:, 0] != edges[:, 1]]
    free = np.arange(n)
    S, A = independent_split(free, edges)
    check_split(free, edges, free, S, A)
    greedy = greedy_sites(free, edges, np.zeros(n, bool))
    assert len(A) > len(greedy)


def test_triangular_lattice_sums_more_than_greedy():
    """12 x 12 triangular lattice (the best set has 48 sites): greedy by static degree takes
    38, the split 45."""
    L = 12
    index = np.arange(L * L).reshape(L, L)
    edges = np.concatenate([grid_edges(L, L), np.stack([index[:-1, :-1].ravel(),
                                                        index[1:, 1:].ravel()], axis=1)])
    free = np.arange(L * L)
    S, A = independent_split(free, edges)
    check_split(free, edges, free, S, A)
    assert len(greedy_sites(free, edges, np.zeros(L * L, bool))) == 38
    assert len(A) == 45


def test_grid_sums_a_checkerboard():
    L = 6
    edges = grid_edges(L, L)
    S, A = independent_split(np.arange(L * L), edges)
    assert len(A) == L * L // 2
    assert len(np.unique(np.add(*np.divmod(A, L)) % 2)) == 1


def grid_edges(rows, cols):
    index = np.arange(rows * cols).reshape(rows, cols)
    return np.concatenate([np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], axis=1),
                           np.stack([index[:-1].ravel(), index[1:].ravel()], axis=1)])


def potts_grid(rows, cols, k, theta, rng):
    """Free-boundary Potts grid, ``E = -theta sum_<ij> [x_i = x_j] - sum_i b_{i, x_i}``."""
    edges = grid_edges(rows, cols)
    model = pe.EnergyModel({"x": pe.Categorical(rows * cols, k)},
                           [pe.Bias("x", name="b"),
                            pe.SparsePairwise("x", edges, value=theta * np.stack(
                                [np.eye(k)] * len(edges)))])
    model.params["b"][...] = rng.normal(scale=0.5, size=(rows * cols, k))
    return model


def potts_transfer_matrix_log_z(rows, cols, k, theta, b):
    """log Z of ``potts_grid`` by a row transfer matrix over the k^cols states of a row."""
    states = np.array(list(itertools.product(range(k), repeat=cols)))
    across = theta * (states[:, 1:] == states[:, :-1]).sum(axis=1)
    down = theta * (states[:, None, :] == states[None, :, :]).sum(axis=2)

    def row(r):
        return across + b[r * cols + np.arange(cols), states].sum(axis=1)

    log_v = row(0)
    for r in range(1, rows):
        log_v = logsumexp(log_v[:, None] + down, axis=0) + row(r)
    return logsumexp(log_v)


def test_potts_grid_enumerates_with_the_checkerboard_split():
    """A 4 x 6 three-state Potts grid: the greedy set summed 9 sites (3^15 states left), the
    checkerboard sums 12, so 3^12 states are enough."""
    rows, cols, k, theta = 4, 6, 3, 0.8
    model = potts_grid(rows, cols, k, theta, np.random.default_rng(0))
    got = pe.exact.log_partition(model, method="enumerate", max_states=k ** 12)
    want = potts_transfer_matrix_log_z(rows, cols, k, theta, model.params["b"])
    assert got == pytest.approx(want, rel=1e-10)


def test_six_by_six_potts_grid_is_accepted():
    """The 6 x 6 three-state Potts grid enumerates 3^18 states (within the default
    ``max_states``), its other 18 sites summed in closed form; the greedy set summed 14 and
    left 3^22, which was refused. (Its log Z agrees with the transfer matrix; enumerating it
    takes minutes, so the test reads the plan.)"""
    model = potts_grid(6, 6, 3, 0.8, np.random.default_rng(0))
    plan = make_plan(model.graph, [], method="enumerate")
    assert isinstance(plan, Enumeration)
    assert plan.log2_states == pytest.approx(18 * np.log2(3))
    assert len(np.unique(model.graph.site[plan.A])) == 18


def test_split_keeps_users_terms_and_clamped_groups_out_of_the_closed_form():
    """Units read by a user's term are enumerated, clamped units neither enumerated nor
    summed; the closed-form set stays independent."""

    class Count(pe.Term):
        def __init__(self):
            super().__init__(groups=("y",), params={"t": np.array(0.3)})

        def energy(self, state):
            return self.params["t"] * state["y"].sum(1) ** 2

        def energy_grad(self, state):
            return {"t": state["y"].sum(1) ** 2.0}

    model = pe.EnergyModel({"x": pe.Categorical(6, 3), "y": 4, "z": 3},
                           [pe.Pairwise("y", "x", name="V"), pe.Pairwise("z", "x"), Count()],
                           visible=["x"])
    graph = model.graph
    y, z = (np.arange(graph.n_units)[graph.slots(g)] for g in "yz")
    for clamped in ([], ["z"]):
        plan = Enumeration(graph, clamped, 1.0, 1)
        units = np.concatenate([plan.S, plan.A])
        assert not np.isin(y, plan.A).any()
        assert np.isin(y, plan.S).all()
        assert len(units) == len(np.unique(units))
        assert not np.isin(graph.edges, plan.A).all(axis=1).any()
        if clamped:
            assert not np.isin(z, units).any()
