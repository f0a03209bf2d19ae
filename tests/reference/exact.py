"""Slow, obviously correct references: brute-force enumeration through ``term.energy``.

Nothing here uses the flat graph or a kernel: it lists every joint state with
``itertools.product`` and evaluates the model's own ``energy`` and ``energy_grad``.
"""
import heapq
import itertools

import numpy as np
from scipy.special import logsumexp


def all_states(model, groups=None):
    """Every joint state of ``groups`` (default all) as a state dict of (n_states, n) arrays."""
    groups = list(model.units) if groups is None else list(groups)
    values = []
    for g in groups:
        values += [model.units[g].values] * model.units[g].n
    grid = np.array(list(itertools.product(*values)), dtype=float).reshape(-1, len(values))
    out, col = {}, 0
    for g in groups:
        n = model.units[g].n
        out[g] = grid[:, col:col + n]
        col += n
    return out


def log_partition(model, beta=1.0):
    s = all_states(model)
    return float(logsumexp(-beta * model.energy(s)))


def joint_probabilities(model, beta=1.0):
    """(states dict, P(s)) over all joint states."""
    s = all_states(model)
    lw = -beta * model.energy(s)
    return s, np.exp(lw - logsumexp(lw))


def log_likelihood(model, X, beta=1.0):
    """log P(x) for each row of X (dict of visible groups) by summing the joint table."""
    s = all_states(model)
    lw = -beta * model.energy(s)
    log_z = logsumexp(lw)
    vis = np.concatenate([s[g] for g in model.visible], axis=1)
    Xf = np.concatenate([np.atleast_2d(X[g]) for g in model.visible], axis=1)
    return np.array([logsumexp(lw[np.all(vis == row, axis=1)]) - log_z for row in Xf])


def free_energy(model, X, beta=1.0):
    """F(x) = -log sum_h exp(-beta E(x, h)) by listing the hidden states."""
    Xd = {g: np.atleast_2d(np.asarray(X[g], float)) for g in model.visible}
    batch = next(iter(Xd.values())).shape[0]
    if not model.hidden:
        return beta * model.energy(Xd)
    h = all_states(model, model.hidden)
    n_h = next(iter(h.values())).shape[0]
    out = []
    for b in range(batch):
        state = {g: np.repeat(Xd[g][b:b + 1], n_h, axis=0) for g in model.visible}
        state.update(h)
        out.append(-logsumexp(-beta * model.energy(state)))
    return np.array(out)


def expectations(model, beta=1.0):
    """E_model[dE/dtheta] by weighting every state's energy_grad."""
    s, p = joint_probabilities(model, beta)
    out = {}
    for term in model.terms:
        for name, g in term.energy_grad(s).items():
            out[name] = np.tensordot(p, g, axes=1)
    return out


def data_expectations(model, X, beta=1.0):
    """mean over rows of X of E_{h|x}[dE/dtheta]."""
    Xd = {g: np.atleast_2d(np.asarray(X[g], float)) for g in model.visible}
    batch = next(iter(Xd.values())).shape[0]
    h = all_states(model, model.hidden) if model.hidden else {}
    n_h = next(iter(h.values())).shape[0] if h else 1
    out = {}
    for b in range(batch):
        state = {g: np.repeat(Xd[g][b:b + 1], n_h, axis=0) for g in model.visible}
        state.update(h)
        lw = -beta * model.energy(state)
        p = np.exp(lw - logsumexp(lw))
        for term in model.terms:
            for name, g in term.energy_grad(state).items():
                out[name] = out.get(name, 0.0) + np.tensordot(p, g, axes=1) / batch
    return out


def contract(tables, axes, n_axes, marginal=None, card=None, maximum=False):
    """Numpy twin of ``_eliminate.contract`` (and of one step of the sweeps).

    ``tables[f]`` is a flat log table over the joint axes ``axes[f]`` (most significant
    first); the joint axes are ``0..n_axes-1`` with axis 0 summed, of ``card`` states each
    (default 2). Returns ``out = log sum_{x_0} exp(sum_f T_f)`` (``max_{x_0}`` with
    ``maximum``; shape ``prod(card[1:])``), and with ``marginal`` also ``joint = marginal *
    exp(sum_f T_f - out)`` (axis 0 first).
    """
    card = (2,) * n_axes if card is None else tuple(int(c) for c in card)
    total = np.zeros(card)
    for table, ax in zip(tables, axes):
        shape = [card[a] if a in ax else 1 for a in range(n_axes)]
        order = np.argsort(ax)
        cube = np.transpose(np.asarray(table).reshape([card[a] for a in ax]), order)
        total = total + cube.reshape(shape)
    out = (total.max(axis=0) if maximum else logsumexp(total, axis=0)).ravel()
    if marginal is None:
        return out
    joint = np.asarray(marginal).reshape((1,) + card[1:]) * np.exp(
        total - out.reshape((1,) + card[1:]))
    return out, joint.ravel()


# -- twins of the elimination kernels (pgm_energy/_kernels/_eliminate.pyx) ----------------------
def _unary(program, site, field):
    """Log weight of each state of a site: binary [0, f], categorical its slots' fields."""
    first, size = program.sites[site]
    return np.concatenate([[0.0], field[first:first + 1]]) if size == 1 else \
        np.asarray(field[first:first + size], float)


def _step_inputs(program, s, field, coupling, tables):
    """Tables, joint axes and cardinalities of step ``s`` (local table first: the summed
    site's unary table and one pair table per bucket slot edge), and its scope length."""
    steps, scope, edge, edge_axis = program.steps, program.scope, program.edge, program.edge_axis
    incoming, incoming_axes, card = program.incoming, program.incoming_axes, program.card
    unit, sc, d, e, n_e, i, n_i, _ = (int(v) for v in steps[s])
    cards = np.concatenate([[card[unit]], card[scope[sc:sc + d]]])
    inputs, axes = [_unary(program, unit, field)], [np.array([0])]
    for k, a, (sa, sb) in zip(edge[e:e + n_e], edge_axis[e:e + n_e],
                              program.edge_state[e:e + n_e]):
        pair = np.zeros((cards[0], cards[a]))
        pair[sa, sb] = coupling[k]
        inputs.append(pair.ravel())
        axes.append(np.array([0, a]))
    for t, a in incoming[i:i + n_i]:
        inputs.append(tables[t])
        axes.append(incoming_axes[a:a + steps[t, 2]])
    return inputs, axes, cards, d


def forward_sweep(program, field, coupling, maximum=False):
    """Twin of ``_eliminate.forward``: ``(log_sum, [table of each step])``."""
    tables, total = [], 0.0
    for s in range(len(program.steps)):
        inputs, axes, cards, d = _step_inputs(program, s, field, coupling, tables)
        tables.append(contract(inputs, axes, d + 1, card=cards, maximum=maximum))
        if d == 0:
            total += tables[s][0]
    return total, tables


def backward_sweep(program, field, coupling, tables, n_units, n_edges):
    """Twin of ``_eliminate.backward``: ``(P(slot i on), P(slot i on, slot j on))``."""
    steps, edge, edge_axis, incoming = (program.steps, program.edge, program.edge_axis,
                                        program.incoming)
    p_unit, p_pair = np.zeros(n_units), np.zeros(n_edges)
    marginal = [None] * len(steps)
    for s in range(len(steps) - 1, -1, -1):
        inputs, axes, cards, d = _step_inputs(program, s, field, coupling, tables)
        _, joint = contract(inputs, axes, d + 1, np.ones(1) if d == 0 else marginal[s], cards)
        cube = joint.reshape(cards)
        first, size = program.sites[steps[s, 0]]
        states = cube.reshape(cards[0], -1).sum(axis=1)
        p_unit[first:first + size] = states[1:] if size == 1 else states
        e, n_e = steps[s, 3], steps[s, 4]
        for k, a, (sa, sb) in zip(edge[e:e + n_e], edge_axis[e:e + n_e],
                                  program.edge_state[e:e + n_e]):
            p_pair[k] = np.take(cube[sa], sb, axis=a - 1).sum()
        n_in = len(inputs) - steps[s, 6]
        for f, t in enumerate(incoming[steps[s, 5]:steps[s, 5] + steps[s, 6], 0], start=n_in):
            drop = tuple(sorted(set(range(d + 1)) - set(axes[f].tolist())))
            marginal[t] = cube.sum(axis=drop).ravel()
    return p_unit, p_pair


def sample_sweep(program, field, coupling, tables, uniforms, maximum=False):
    """Twin of ``_eliminate.sample``: steps in reverse, each site's state drawn from
    ``exp(S(a, x_N))``: ``x = [u (1 + e^-logit) < 1]`` for two states, else by inversion of
    the cumulative weights (the argmax, lowest state on ties, with ``maximum``). Returns the
    states ``(n_samples, n_sites)``."""
    steps, scope = program.steps, program.scope
    x = np.zeros((uniforms.shape[0], len(program.sites)), np.intc)
    for k, s in enumerate(range(len(steps) - 1, -1, -1)):
        inputs, axes, cards, d = _step_inputs(program, s, field, coupling, tables)
        units = scope[steps[s, 1]:steps[s, 1] + d]
        score = np.zeros((len(x), cards[0]))
        for table, ax in zip(inputs, axes):
            stride = np.zeros(d + 1, np.int64)
            stride[ax] = np.cumprod(np.concatenate([[1], cards[ax][::-1][:-1]]))[::-1]
            index = x[:, units].astype(np.int64) @ stride[1:]
            score += table[index[:, None] + stride[0] * np.arange(cards[0])]
        if maximum:
            x[:, steps[s, 0]] = np.argmax(score, axis=1)
            continue
        if cards[0] == 2:
            with np.errstate(over="ignore"):
                x[:, steps[s, 0]] = uniforms[:, k] * (1.0 + np.exp(score[:, 0] - score[:, 1])) < 1
            continue
        weight = np.exp(score - score.max(axis=1, keepdims=True))
        cumulative = np.cumsum(weight, axis=1)
        target = uniforms[:, k] * cumulative[:, -1]
        x[:, steps[s, 0]] = np.minimum((cumulative <= target[:, None]).sum(axis=1),
                                       cards[0] - 1)
    return x


def _order_cost(scopes, order):
    """(width, largest_table, stored_entries, operations, n_closed_form) of an order."""
    n_free = len(order)
    position = np.empty(n_free, np.int64)
    position[order] = np.arange(n_free)
    n_tables = np.ones(n_free)                     # the local table of each bucket
    closed = np.ones(n_free, bool)
    for scope in scopes:
        if scope:
            target = min(position[u] for u in scope)
            n_tables[target] += 1
            closed[target] = False
    size = np.array([2.0 ** len(s) for s in scopes])
    return (max((len(s) for s in scopes), default=0),
            float(2 * size.max()) if n_free else 1.0,
            float(size.sum()),
            float(np.sum(2 * size * (n_tables + 1))),
            int(closed.sum()))


def _bits(mask):
    """Indices of the set bits of a Python int, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def greedy_order(n, pairs, criterion, closed_first, cap_bits, rank, bound, budget):
    """Twin of ``_order.greedy_order`` (the engine's Python order search until the
    kernel took it over): Python-int bitsets and a lazy heap.

    Greedy elimination order on ``n`` units joined by ``pairs`` (local ids).

    ``criterion`` is ``"min_fill"`` (fewest fill edges, then fewest neighbours),
    ``"min_degree"`` (the reverse) or ``"layout"`` (by ``rank`` alone); ties go to the lower
    ``rank``. With ``closed_first``, a greedy maximal independent set (lowest degree first)
    is eliminated before everything else. Units with more than ``cap_bits`` neighbours are
    not scored (their tables are over the cap anyway). A search gives up (returns None) when
    a unit has more than ``bound`` neighbours (the width of the best order so far) or after
    ``budget`` word operations on scores, so planning stays cheap next to the work.
    Returns ``(order, scope_start, scope_units, cost)`` as the kernel does.
    Neighbourhoods are Python-int bitsets, so a step costs O(degree^2) word operations.
    """
    criterion = {0: "layout", 1: "min_degree", 2: "min_fill"}[criterion]
    adj = [0] * n
    for i, j in pairs:
        adj[i] |= 1 << int(j)
        adj[j] |= 1 << int(i)
    first = np.zeros(n, bool)
    if closed_first:
        blocked = 0
        for u in sorted(range(n), key=lambda u: adj[u].bit_count()):
            if not blocked >> u & 1:
                first[u] = True
                blocked |= adj[u]

    def key(u):
        nb = adj[u]
        degree = nb.bit_count()
        if criterion == "layout":
            return (not first[u], rank[u])
        if degree > cap_bits:
            return (not first[u], 1, degree, degree, rank[u])
        fill = sum((nb & ~adj[w]).bit_count() - 1 for w in _bits(nb)) // 2
        score = (fill, degree) if criterion == "min_fill" else (degree, fill)
        return (not first[u], 0, *score, rank[u])

    work = 0
    version = [0] * n
    heap = [(key(u), 0, u) for u in range(n)]
    heapq.heapify(heap)
    done = 0
    order, scopes = [], []
    while heap:
        _, ver, v = heapq.heappop(heap)
        if done >> v & 1 or ver != version[v]:
            continue
        nb = adj[v]
        if nb.bit_count() > bound:
            return None
        order.append(v)
        scopes.append(list(_bits(nb)))
        done |= 1 << v
        touched = 0 if criterion == "layout" else nb      # units whose key changed
        for u in _bits(nb):
            adj[u] = (adj[u] | nb) & ~(1 << u) & ~(1 << v)
            if criterion == "min_fill":
                touched |= adj[u]
        for u in _bits(touched & ~done):
            version[u] += 1
            heapq.heappush(heap, (key(u), version[u], u))
            work += adj[u].bit_count()
        if work > budget:
            return None
    order = np.array(order, np.int64)
    start = np.cumsum([0] + [len(sc) for sc in scopes]).astype(np.int64)
    units = np.array([u for sc in scopes for u in sc], np.int64)
    return order, start, units, _order_cost(scopes, order)
