"""A pure-numpy twin of the cluster kernels (``_cluster.h``), with the same random draws.

One chain at a time, in plain loops: union-find for Swendsen-Wang, a FIFO queue for Wolff,
the draw order of ``pgm_energy/cluster.py``'s module docstring. The model's spin or Potts
form is computed here from the flat graph, independently of the Python face.
"""
import numpy as np

from .gibbs import xoshiro_next, xoshiro_uniform


class _Stream:
    """Chain ``c``'s xoshiro256+ stream, a view of column ``c`` of the (4, n) state: called, a
    uniform in [0, 1); ``bits()``, the next 64-bit output as a Python int."""

    def __init__(self, streams, c):
        self.state = streams[:, c:c + 1]

    def __call__(self):
        return float(xoshiro_uniform(self.state)[0])

    def bits(self):
        return int(xoshiro_next(self.state)[0])


def bond_draws(edges, p_edge, satisfied, uniform):
    """Swendsen-Wang's bonds: the edges ``(i, j)`` (``i < j``, sorted) that bond, in bond order.

    Bond order: the edges stably sorted by their larger end. Each edge's 52-bit uniform is
    ``U = c 2^39 + L`` and it bonds when ``U < T = ceil(p_e 2^52)`` and ``satisfied(e)``: one
    64-bit draw per four edges in bond order gives their 13-bit chunks ``c`` (its top 52 bits,
    highest first); ``L`` (the top 39 bits of one more draw, taken at once) only when ``c``
    equals ``T >> 39``, whether or not the edge is satisfied.
    """
    threshold = [int(t) for t in np.ceil(np.ldexp(np.asarray(p_edge, float), 52))]
    bonded = []
    for q, e in enumerate(np.argsort(edges[:, 1], kind="stable")):
        if q % 4 == 0:
            word = uniform.bits()
        c = (word >> (51 - 13 * (q % 4))) & 0x1FFF
        high = threshold[e] >> 39
        bond = c < high
        if c == high:
            bond = (uniform.bits() >> 25) < threshold[e] & (2**39 - 1)
        if bond and satisfied(e):
            bonded.append(e)
    return bonded


def spin_form(graph):
    """``(J, h)``: ``s = 2 b - 1``, ``v = c + a s`` with ``a = scale / 2``, ``c = low + a``."""
    a = graph.scale / 2
    c = graph.low + a
    J = np.array([graph.coupling[e] * a[i] * a[j] for e, (i, j) in enumerate(graph.edges)])
    h = graph.field * a
    for e, (i, j) in enumerate(graph.edges):
        h[i] += a[i] * graph.coupling[e] * c[j]
        h[j] += a[j] * graph.coupling[e] * c[i]
    return J.reshape(-1), h


def potts_form(graph):
    """``(site_edges, J, f)``: each coupled pair of sites once (sorted), ``J`` its block's
    diagonal minus its off-diagonal entry, ``f`` (n_sites, k) slot fields."""
    k = int(graph.site_size[0])
    blocks = {}
    for e, (i, j) in enumerate(graph.edges):
        si, sj = graph.site[i], graph.site[j]
        block = blocks.setdefault((si, sj), np.zeros((k, k)))
        block[i - graph.site_start[si], j - graph.site_start[sj]] = graph.coupling[e]
    pairs = sorted(blocks)
    J = np.array([blocks[p][0, 0] - blocks[p][0, 1] for p in pairs])
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), J, graph.field.reshape(-1, k)


def _find(parent, u):
    while parent[u] != u:
        u = parent[u]
    return u


def _union(parent, a, b):
    a, b = _find(parent, a), _find(parent, b)
    parent[max(a, b)] = min(a, b)


def swendsen_wang(spins, edges, J, h, free, betas, streams, n_sweeps):
    """Swendsen-Wang sweeps with a ghost spin on ``spins`` (n_chains, n) in place."""
    n = spins.shape[1]
    for c, s in enumerate(spins):
        uniform = _Stream(streams, c)
        p_edge = -np.expm1(-2 * betas[c] * np.abs(J))
        p_field = -np.expm1(-2 * betas[c] * np.abs(h))
        for _ in range(n_sweeps):
            parent = list(range(n + 1))
            satisfied = lambda e: ((free[edges[e, 0]] or free[edges[e, 1]])
                                   and J[e] * s[edges[e, 0]] * s[edges[e, 1]] > 0)
            for e in bond_draws(edges, p_edge, satisfied, uniform):
                _union(parent, *edges[e])
            for u in range(n):
                if not free[u] or (h[u] * s[u] > 0 and uniform() < p_field[u]):
                    _union(parent, u, n)
            # one draw per block of 32 units; bit 63 - (u mod 32): the flip of the cluster
            # whose smallest unit is u (the ghost's cluster never flips)
            flip = {_find(parent, n): False}
            for u in range(n):
                if u % 32 == 0:
                    word = uniform.bits()
                r = _find(parent, u)
                if r not in flip:
                    flip[r] = bool((word >> (63 - u % 32)) & 1)
                if flip[r]:
                    s[u] = -s[u]
    return spins


def wolff(spins, edges, J, h, free, betas, streams, n_sweeps):
    """Wolff sweeps (one cluster each) with a ghost spin on ``spins`` (n_chains, n) in place."""
    n = spins.shape[1]
    neighbours = [[] for _ in range(n)]
    for e, (i, j) in enumerate(edges):
        neighbours[i].append((j, e))
        neighbours[j].append((i, e))
    for row in neighbours:
        row.sort()
    free_list = [u for u in range(n) if free[u]]
    for c, s in enumerate(spins):
        uniform = _Stream(streams, c)
        p_edge = -np.expm1(-2 * betas[c] * np.abs(J))
        p_field = -np.expm1(-2 * betas[c] * np.abs(h))
        for _ in range(n_sweeps if free_list else 0):
            pick = int(uniform() * len(free_list))
            queue = [free_list[min(pick, len(free_list) - 1)]]
            inside = set(queue)
            head = 0
            while head < len(queue):
                x = queue[head]
                head += 1
                if x == n:
                    for u in range(n):
                        if u not in inside and (not free[u] or (
                                h[u] * s[u] > 0 and uniform() < p_field[u])):
                            inside.add(u)
                            queue.append(u)
                    continue
                for y, e in neighbours[x]:
                    if y not in inside and J[e] * s[x] * s[y] > 0 and uniform() < p_edge[e]:
                        inside.add(y)
                        queue.append(y)
                if n not in inside and (not free[x] or (
                        h[x] * s[x] > 0 and uniform() < p_field[x])):
                    inside.add(n)
                    queue.append(n)
            if n in inside:
                for u in free_list:
                    if u not in inside:
                        s[u] = -s[u]
            else:
                for u in queue:
                    s[u] = -s[u]
    return spins


def swendsen_wang_potts(colours, edges, J, f, free, betas, streams, n_sweeps):
    """Swendsen-Wang sweeps with heat-bath cluster colours on ``colours`` (n_chains, n)."""
    n, k = f.shape
    for c, x in enumerate(colours):
        uniform = _Stream(streams, c)
        p_edge = -np.expm1(-betas[c] * np.abs(J))
        for _ in range(n_sweeps):
            parent = list(range(n))
            satisfied = lambda e: ((free[edges[e, 0]] or free[edges[e, 1]])
                                   and x[edges[e, 0]] == x[edges[e, 1]] and J[e] > 0)
            for e in bond_draws(edges, p_edge, satisfied, uniform):
                _union(parent, *edges[e])
            keep = {_find(parent, u) for u in range(n) if not free[u]}
            fields = {}
            for u in range(n):
                r = _find(parent, u)
                if r not in keep:
                    fields[r] = fields.get(r, np.zeros(k)) + f[u]
            colour = {}
            for u in range(n):
                r = _find(parent, u)
                if r in keep:
                    continue
                if r not in colour:
                    z = betas[c] * fields[r]
                    w = np.exp(z - z.max())
                    v = uniform() * np.cumsum(w)[-1]      # summed in order, as the kernel
                    colour[r] = min(int(np.sum(np.cumsum(w) <= v)), k - 1)
                x[u] = colour[r]
    return colours
