"""A pure-numpy twin of the Gibbs kernels, with the same random draws.

Each chain has a xoshiro256+ stream (state column ``streams[:, c]``); each unit update draws
one uniform per chain, in visiting order, and sets the unit "on" when
``u < sigmoid(scale * beta * f)``, ``f`` the local field, scale 2 for spins and 1 for binary
units; a categorical unit takes the first value ``v`` whose cumulative softmax weight
exceeds ``u`` times the total. The kernels must give the same chains (up to ties at rounding level).
Units a chain holds (``keep``, partial clamping that differs between chains) are updated with
their uniform drawn, and the chain keeps its value. A continuous unit takes
``unit.quantile(f, u + 2**-53, beta)`` (its kind's inverse CDF at the open uniform, as the
kernels' ``pe__continuous_draw``).
"""
import numpy as np
from scipy.special import expit


def xoshiro_next(streams):
    """Advance every stream (a (4, n) uint64 array, in place); their 64-bit outputs."""
    s0, s1, s2, s3 = streams
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3[:] = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    return result


def xoshiro_uniform(streams):
    """Advance every stream (a (4, n) uint64 array, in place); uniforms in [0, 1): the top 52
    bits of each output over 2^52."""
    bits = (xoshiro_next(streams) >> np.uint64(12)) | np.uint64(0x3FF0000000000000)
    return bits.view(np.float64) - 1.0


def sweeps(model, flat, order, betas, streams, n_sweeps, keep=None):
    """Run sweeps on ``flat`` (n_chains, n_units) in place, visiting ``order``; ``keep``
    (n_chains, n_units) bool: the slots each chain holds (None: none)."""
    held = np.zeros(flat.shape, bool) if keep is None else keep
    start = flat.copy()
    graph = model.graph
    adj = graph.adjacency()
    scale, low = graph.scale, graph.low
    size = np.ones(graph.n_units, int)
    size[graph.site_start[:-1]] = graph.site_size
    for _ in range(n_sweeps):
        for i in order:
            if graph.continuous[i]:    # a continuous unit: inverse CDF at the open uniform
                f = np.ravel(graph.field[i] + adj[i] @ flat.T)
                u = xoshiro_uniform(streams) + 2.0 ** -53
                flat[:, i] = continuous_draw(graph, i, f, u, betas)
                flat[held[:, i], i] = start[held[:, i], i]
                continue
            if size[i] > 1:            # a categorical unit: softmax over its slots' fields
                k = size[i]
                z = betas * (graph.field[i:i + k, None] + adj[i:i + k] @ flat.T)
                w = np.exp(z - z.max(axis=0))
                u = xoshiro_uniform(streams) * w.sum(axis=0)
                pick = np.minimum(np.sum(np.cumsum(w, axis=0) <= u, axis=0), k - 1)
                flat[:, i:i + k] = (np.arange(k)[:, None] == pick).T
                flat[held[:, i], i:i + k] = start[held[:, i], i:i + k]
                continue
            if graph.generic[i]:       # a user term reads the unit: total energy difference
                z = energy_with(model, flat, i, low[i]) - energy_with(model, flat, i,
                                                                       low[i] + scale[i])
            else:
                z = scale[i] * np.ravel(graph.field[i] + adj[i] @ flat.T)
            u = xoshiro_uniform(streams)
            flat[:, i] = low[i] + scale[i] * (u < expit(betas * z))
            flat[held[:, i], i] = start[held[:, i], i]
    return flat


def energy_with(model, flat, unit, value):
    """model.energy of the rows of ``flat`` with ``unit`` set to ``value``."""
    rows = flat.copy()
    rows[:, unit] = value
    return model.energy(model.graph.decode(rows))


def continuous_draw(graph, slot, field, u, betas):
    """The draws of the continuous unit at ``slot`` for fields ``field`` and open uniforms
    ``u`` (one per chain): its kind's ``quantile``, evaluated with the unit's own
    parameters (the other units of its group get a dummy field)."""
    group = next(g for g in graph.offsets if graph.slots(g).start <= slot < graph.slots(g).stop)
    unit = graph.units[group]
    index = slot - graph.offsets[group]
    fields = np.zeros((len(field), unit.n))
    uniforms = np.full((len(field), unit.n), 0.5)
    fields[:, index] = field
    uniforms[:, index] = u
    return unit.quantile(fields, uniforms, np.asarray(betas, float)[:, None])[:, index]
