"""Gibbs sweep kernels over the flat graph, many chains at once.

``sweep_sparse``: chains are split into blocks (one per thread, a multiple of 8 chains each),
and each block has its own slab: state (n_units, lanes) and streams (4, lanes), so that
threads never write to the same cache line (nor to neighbouring ones, which the hardware
prefetchers fetch in pairs). Units are visited in a given order (index order for the
sequential schedule, colour by colour for the chromatic one), and for each unit the local
field and the update run over the block's chains as one vector loop. Each chain has its own
xoshiro256+ stream, so results do not depend on the thread count.

``sweep_block``: two dense layers, state (n_chains, n_layer); each layer's fields for all
chains come from one BLAS ``dgemm``, written unit by unit (n_layer, n_chains), so that the
sampling runs over chains in groups of 8 lanes (each chain its own stream, draws in unit
order).

Continuous units (models with any: the state is float64, one value per unit and chain; else
one byte): ``kind`` and ``param`` give each slot's kind (``PE_TWO_VALUED`` 0, ``PE_GAUSSIAN`` 1,
``PE_RELU`` 2, ``PE_DRELU`` 3) and its four parameters (sigma; none; gamma_plus, gamma_minus,
theta_plus, theta_minus), and a continuous unit draws by the inverse CDF of its conditional at
its uniform (``_random.h``'s ``pe__continuous_draw``, with scipy.special's functions).
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from scipy.linalg.cython_blas cimport dgemm
cimport scipy.special.cython_special as special

cdef extern from "_random.h" nogil:
    double pe__uniform(uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3)
    double pe__normal_quantile(double u)
    double pe__continuous_draw(int kind, const double *p, double f, double beta, double u,
                               const pe_special *sp)

cdef extern from "_gibbs.h" nogil:
    double pe_sigmoid(double x)
    enum: PE_LANES
    void pe_gibbs_sweeps_bytes(uint8_t *state, long stride, const int32_t *order, long n_order,
                               const int32_t *size, const int64_t *indptr,
                               const int32_t *indices, const double *weight,
                               const double *field, const int64_t *factor_ptr,
                               const int32_t *factor_ids, const int32_t *factor_members,
                               long factor_width, const double *factor_weight,
                               const double *scale, const double *low, const double *beta,
                               uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3, long n,
                               long n_sweeps, const uint8_t *keep, const pe_continuous *cont)
    void pe_gibbs_sweeps_real(double *state, long stride, const int32_t *order, long n_order,
                              const int32_t *size, const int64_t *indptr,
                              const int32_t *indices, const double *weight,
                              const double *field, const int64_t *factor_ptr,
                              const int32_t *factor_ids, const int32_t *factor_members,
                              long factor_width, const double *factor_weight,
                              const double *scale, const double *low, const double *beta,
                              uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3, long n,
                              long n_sweeps, const uint8_t *keep, const pe_continuous *cont)
    void pe_gibbs_layer_chains(double *value, long value_stride, double *prob, long ld,
                               const double *scale, const double *low,
                               const unsigned char *free, const double *beta, uint64_t *s0,
                               uint64_t *s1, uint64_t *s2, uint64_t *s3, long n_chains,
                               long n, const unsigned char *keep, long keep_ld,
                               const pe_continuous *cont)

ctypedef fused state_t:
    uint8_t
    double


# scipy.special's functions for the continuous draws, as plain C function pointers
cdef double _log_ndtr(double x) noexcept nogil:
    return special.log_ndtr(x)

cdef double _ndtri_exp(double x) noexcept nogil:
    return special.ndtri_exp(x)

cdef double _erfcx(double x) noexcept nogil:
    return special.erfcx(x)


cdef pe_continuous continuous_units(const uint8_t[::1] kind, const double[:, ::1] param,
                                    Py_ssize_t start) noexcept:
    """The kinds and parameters of slots ``start...`` with scipy.special's functions (kind
    NULL when ``kind`` is None: a discrete model)."""
    cdef pe_continuous cont
    cont.kind = &kind[start] if kind is not None else NULL
    cont.param = &param[start, 0] if kind is not None else NULL
    cont.special.log_ndtr = _log_ndtr
    cont.special.ndtri_exp = _ndtri_exp
    cont.special.erfcx = _erfcx
    return cont


def normal_quantiles(const double[::1] u):
    """``Phi^-1(u)`` by ``_random.h``'s ``pe__normal_quantile`` (AS241), u in (0, 1): the
    Python hook of the kernels' normal quantile, for tests."""
    import numpy as np
    out = np.empty(u.shape[0])
    cdef double[::1] x = out
    cdef Py_ssize_t i
    for i in range(u.shape[0]):
        if not 0.0 < u[i] < 1.0:
            raise ValueError("normal_quantiles: u must lie in (0, 1)")
        x[i] = pe__normal_quantile(u[i])
    return out


def continuous_draws(const uint8_t[::1] kind, const double[:, ::1] param,
                     const double[::1] field, const double[::1] beta,
                     const double[::1] u):
    """``pe__continuous_draw`` of slot kinds ``kind`` (n,) with parameters ``param`` (n, 4)
    at fields, inverse temperatures and uniforms in [0, 1) (each (n,)): the Python hook of
    the continuous units' draw, for tests."""
    import numpy as np
    cdef Py_ssize_t n = kind.shape[0], i
    if (param.shape[0] != n or param.shape[1] != 4 or field.shape[0] != n
            or beta.shape[0] != n or u.shape[0] != n):
        raise ValueError("continuous_draws: inconsistent array shapes")
    for i in range(n):
        if kind[i] < 1 or kind[i] > 3:
            raise ValueError("continuous_draws: kind must be 1, 2 or 3")
    out = np.empty(n)
    cdef double[::1] x = out
    cdef pe_continuous cont = continuous_units(kind, param, 0)
    for i in range(n):
        x[i] = pe__continuous_draw(kind[i], &param[i, 0], field[i], beta[i], u[i], &cont.special)
    return out

cdef struct Graph:
    const int32_t *size
    const double *field
    const int64_t *indptr
    const int32_t *indices
    const double *weights
    const int64_t *factor_ptr
    const int32_t *factor_ids
    const int32_t *factor_members
    long factor_width
    const double *factor_weight
    const double *scale
    const double *low


def sweep_sparse(
    state_t[:, ::1] state,           # IN/OUT (n_blocks, >= n_units * lanes): block b's slab
                                     #   holds (n_units, lanes) row-major; chain c is lane
                                     #   c % lanes of block c // lanes; values as state
                                     #   bytes (uint8, _chains.state_bytes) or, for models
                                     #   with continuous units, float64 values
    const double[::1] field,         # IN (n_units,)
    const int64_t[::1] indptr,       # IN (n_units+1,) symmetric CSR adjacency
    const int32_t[::1] indices,      # IN
    const double[::1] weights,       # IN
    const int64_t[::1] factor_ptr,   # IN (n_units+1,) unit -> product factors (CSR)
    const int32_t[::1] factor_ids,   # IN
    const int32_t[:, ::1] factor_members,  # IN (n_factors, width), -1 padded
    const double[::1] factor_weight, # IN (n_factors,)
    const int32_t[::1] order,        # IN units to update, in order; -(i + 1) for the
                                     #    categorical unit whose slots start at i
    const int32_t[::1] size,         # IN (n_units,) slots of a categorical unit at its first
    const double[::1] scale,         # IN (n_units,) 1 binary, 2 spin
    const double[::1] low,           # IN (n_units,) 0 binary, -1 spin
    const double[:, ::1] beta,       # IN (n_blocks, lanes) per lane, 1 in padding lanes
    uint64_t[:, ::1] streams,        # IN/OUT (n_blocks, >= 4 * lanes): (4, lanes) per block
    Py_ssize_t n_chains,
    Py_ssize_t lanes,
    int n_sweeps,
    int n_threads,
    const uint8_t[:, ::1] keep=None, # IN None, or laid out as state: 0xFF where a chain holds
                                     #    the unit (at a categorical unit's first slot)
    const uint8_t[::1] kind=None,    # IN None (discrete), or (n_units,) slot kinds (float64
                                     #    state only)
    const double[:, ::1] param=None, # IN (n_units, 4) the continuous units' parameters
):
    """Run ``n_sweeps`` sweeps of single-unit Gibbs updates in ``order`` on every chain.

    A unit's local field sums its pairwise couplings and its product factors. Each block of
    ``lanes`` chains (a multiple of 8) has its own state slab and streams, so threads never
    share a cache line; the kernel computes whole groups of 8 lanes (the padding lanes of
    the last block are scratch). With fewer than 8 chains, ``lanes = n_chains`` (one block,
    no padding) and the kernel updates one chain at a time. Units held by ``keep`` are
    updated (their uniform drawn) but keep their values.
    """
    cdef Py_ssize_t n_blocks = state.shape[0], n_units = field.shape[0]
    # lanes a multiple of 8: whole vector groups (the last block's padding lanes run too);
    # else one block of exactly n_chains lanes, run one chain at a time
    cdef Py_ssize_t n_lanes = ((n_chains + PE_LANES - 1) // PE_LANES * PE_LANES
                               if lanes % PE_LANES == 0 else n_chains)
    cdef Py_ssize_t blk, c0
    cdef Graph G
    if (state.shape[1] < n_units * lanes or indptr.shape[0] != n_units + 1
            or factor_ptr.shape[0] != n_units + 1 or factor_weight.shape[0] != factor_members.shape[0]
            or lanes < 1 or (lanes % PE_LANES and lanes != n_chains) or n_chains < 1
            or n_blocks != (n_chains + lanes - 1) // lanes
            or beta.shape[0] != n_blocks or beta.shape[1] != lanes
            or streams.shape[0] != n_blocks or streams.shape[1] < 4 * lanes
            or scale.shape[0] != n_units or low.shape[0] != n_units
            or size.shape[0] != n_units
            or (keep is not None and (keep.shape[0] != n_blocks
                                      or keep.shape[1] < n_units * lanes))
            or (kind is not None and (state_t is uint8_t or kind.shape[0] != n_units
                                      or param is None or param.shape[0] != n_units
                                      or param.shape[1] != 4))):
        raise ValueError("sweep_sparse: inconsistent array shapes")
    cdef Py_ssize_t t, i
    for t in range(order.shape[0]):
        i = order[t] if order[t] >= 0 else -order[t] - 1
        if i >= n_units or (order[t] < 0 and (size[i] < 2 or size[i] > 1024
                                               or i + size[i] > n_units)):
            raise ValueError("sweep_sparse: order names a unit outside the graph")
    if n_units == 0:
        return
    G.size = &size[0]
    G.field = &field[0]
    G.indptr = &indptr[0]
    G.indices = &indices[0] if indices.shape[0] else NULL
    G.weights = &weights[0] if weights.shape[0] else NULL
    G.factor_ptr = &factor_ptr[0]
    G.factor_ids = &factor_ids[0] if factor_ids.shape[0] else NULL
    G.factor_members = &factor_members[0, 0] if factor_members.shape[0] else NULL
    G.factor_width = factor_members.shape[1]
    G.factor_weight = &factor_weight[0] if factor_weight.shape[0] else NULL
    G.scale = &scale[0]
    G.low = &low[0]
    cdef const int32_t *units = &order[0] if order.shape[0] else NULL
    cdef bint held = keep is not None
    cdef pe_continuous cont = continuous_units(kind, param, 0)
    cdef const pe_continuous *units_kind = &cont if kind is not None else NULL
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=max(n_threads, 1)):
            c0 = blk * lanes
            if state_t is uint8_t:
                pe_gibbs_sweeps_bytes(
                    &state[blk, 0], lanes, units, order.shape[0], G.size, G.indptr, G.indices,
                    G.weights, G.field, G.factor_ptr, G.factor_ids, G.factor_members,
                    G.factor_width, G.factor_weight, G.scale, G.low, &beta[blk, 0],
                    &streams[blk, 0], &streams[blk, lanes], &streams[blk, 2 * lanes],
                    &streams[blk, 3 * lanes], min(lanes, n_lanes - c0), n_sweeps,
                    &keep[blk, 0] if held else NULL, NULL)
            else:
                pe_gibbs_sweeps_real(
                    &state[blk, 0], lanes, units, order.shape[0], G.size, G.indptr, G.indices,
                    G.weights, G.field, G.factor_ptr, G.factor_ids, G.factor_members,
                    G.factor_width, G.factor_weight, G.scale, G.low, &beta[blk, 0],
                    &streams[blk, 0], &streams[blk, lanes], &streams[blk, 2 * lanes],
                    &streams[blk, 3 * lanes], min(lanes, n_lanes - c0), n_sweeps,
                    &keep[blk, 0] if held else NULL, units_kind)


cdef void layer_fields_by_unit(double[:, ::1] out, const double[::1] field,
                               double[:, ::1] other, const double[:, ::1] coupling,
                               bint transpose) noexcept nogil:
    """``field + other @ coupling`` (or ``other @ coupling^T``) unit by unit: ``out[k, c]``
    for chain ``c`` (the rows of ``other``), ``out (n_out, >= n_chains)``; every column is
    set (field only beyond ``n_chains``).

    Row-major ``out`` is column-major ``(n_chains, n_out)`` = ``other coupling`` (or
    ``other coupling^T``) with ``other`` the transpose of its column-major reading.
    """
    cdef int n_chains = other.shape[0], n_out = out.shape[0], n_in = other.shape[1]
    cdef int ld_out = out.shape[1], ld_coupling = coupling.shape[1]
    cdef double one = 1.0
    cdef char *tr = b"T"
    cdef char *op = b"N" if transpose else b"T"
    cdef Py_ssize_t c, k
    for k in range(n_out):
        for c in range(ld_out):
            out[k, c] = field[k]
    if n_in == 0 or n_chains == 0:
        return
    dgemm(tr, op, &n_chains, &n_out, &n_in, &one, &other[0, 0], &n_in,
          <double *> &coupling[0, 0], &ld_coupling, &one, &out[0, 0], &ld_out)


cdef void sample_layer(double[:, ::1] value, double[:, ::1] fields, const double[::1] scale,
                       const double[::1] low, const unsigned char[::1] free_units,
                       const double[::1] beta, uint64_t[:, ::1] streams,
                       int n_threads, const pe_continuous *cont) noexcept nogil:
    """Sample every chain's layer ``value (n_chains, n)`` from its fields, given unit by unit
    (``fields (n, >= n_padded)``, from ``layer_fields_by_unit``), which become P(unit on) in
    place (continuous units of ``cont``, NULL for none, draw by their inverse CDF). ``beta``
    and ``streams`` have ``n_padded`` (n_chains rounded up to 8) lanes; the chains go to the
    threads in groups of 8."""
    cdef Py_ssize_t n_chains = value.shape[0], n = value.shape[1], blk, c0
    cdef Py_ssize_t groups = (n_chains + PE_LANES - 1) // PE_LANES
    cdef Py_ssize_t n_blocks = max(1, min(n_threads, groups))
    cdef Py_ssize_t per = (groups + n_blocks - 1) // n_blocks * PE_LANES
    for blk in prange(n_blocks, schedule="static", num_threads=n_blocks):
        c0 = blk * per
        if c0 < n_chains:
            pe_gibbs_layer_chains(&value[c0, 0], n, &fields[0, c0], fields.shape[1], &scale[0],
                                  &low[0], &free_units[0], &beta[c0], &streams[0, c0],
                                  &streams[1, c0], &streams[2, c0], &streams[3, c0],
                                  min(per, n_chains - c0), n, NULL, 0, cont)


def sweep_block(
    double[:, ::1] state_a,          # IN/OUT (n_chains, n_a) layer a (colour 0)
    double[:, ::1] state_b,          # IN/OUT (n_chains, n_b) layer b (colour 1)
    const double[:, ::1] coupling,   # IN (n_a, n_b): E has -sum a_i C_ij b_j
    const double[::1] field_a,       # IN (n_a,)
    const double[::1] field_b,       # IN (n_b,)
    const double[::1] scale_a,       # IN (n_a,)
    const double[::1] low_a,         # IN (n_a,)
    const double[::1] scale_b,       # IN (n_b,)
    const double[::1] low_b,         # IN (n_b,)
    const unsigned char[::1] free_a, # IN (n_a,) 0 for clamped units
    const unsigned char[::1] free_b, # IN (n_b,)
    const double[::1] beta,          # IN (n_chains,)
    uint64_t[:, ::1] streams,        # IN/OUT (4, >= n_chains rounded up to 8)
    int n_sweeps,
    int n_threads,
    const uint8_t[:, ::1] keep_a=None,  # IN None or (n_a, n_chains): nonzero where a chain
    const uint8_t[:, ::1] keep_b=None,  #    holds a free unit; IN None or (n_b, n_chains)
    const uint8_t[::1] kind=None,       # IN None (discrete), or (n_a + n_b,) the slot kinds
    const double[:, ::1] param=None,    #    of layer a then b; IN (n_a + n_b, 4) parameters
):
    """Run ``n_sweeps`` block sweeps: layer a given b, then layer b given a. A unit held by
    a chain (``keep_a``, ``keep_b``) draws its uniform and keeps its value; continuous units
    (``kind``) draw by their inverse CDF."""
    cdef Py_ssize_t n_chains = state_a.shape[0], n_a = state_a.shape[1], n_b = state_b.shape[1]
    cdef Py_ssize_t groups = (n_chains + PE_LANES - 1) // PE_LANES
    cdef int sweep
    if (state_b.shape[0] != n_chains or coupling.shape[0] != n_a or coupling.shape[1] != n_b
            or beta.shape[0] != n_chains or streams.shape[1] < groups * PE_LANES or n_a == 0
            or n_b == 0
            or (keep_a is not None and (keep_a.shape[0] != n_a or keep_a.shape[1] != n_chains))
            or (keep_b is not None and (keep_b.shape[0] != n_b or keep_b.shape[1] != n_chains))
            or (kind is not None and (kind.shape[0] != n_a + n_b or param is None
                                      or param.shape[0] != n_a + n_b or param.shape[1] != 4))):
        raise ValueError("sweep_block: inconsistent array shapes")
    import numpy as np
    cdef int n_blocks = <int> max(1, min(n_threads, groups))
    cdef Py_ssize_t per = (groups + n_blocks - 1) // n_blocks * PE_LANES
    # each block's fields, unit by unit, in its own slab
    cdef double[:, :, ::1] fields_a = np.empty((n_blocks, n_a, per))
    cdef double[:, :, ::1] fields_b = np.empty((n_blocks, n_b, per))
    padded = np.ones(n_blocks * per)
    padded[:n_chains] = beta
    cdef const double[::1] lanes_beta = padded
    cdef bint any_a = any_nonzero(free_a), any_b = any_nonzero(free_b)
    cdef const uint8_t *hold_a = &keep_a[0, 0] if keep_a is not None else NULL
    cdef const uint8_t *hold_b = &keep_b[0, 0] if keep_b is not None else NULL
    cdef pe_continuous cont_a = continuous_units(kind, param, 0)
    cdef pe_continuous cont_b = continuous_units(kind, param, n_a)
    cdef const pe_continuous *units_a = &cont_a if kind is not None else NULL
    cdef const pe_continuous *units_b = &cont_b if kind is not None else NULL
    with nogil:
        for sweep in range(n_sweeps):
            if any_a:
                update_layer(state_a, fields_a, field_a, state_b, coupling, True, scale_a,
                             low_a, free_a, lanes_beta, streams, per, hold_a, units_a)
            if any_b:
                update_layer(state_b, fields_b, field_b, state_a, coupling, False, scale_b,
                             low_b, free_b, lanes_beta, streams, per, hold_b, units_b)


cdef bint any_nonzero(const unsigned char[::1] values) noexcept nogil:
    """Whether any of ``values`` is nonzero (a layer with a free unit)."""
    cdef Py_ssize_t i
    for i in range(values.shape[0]):
        if values[i]:
            return True
    return False


cdef void update_layer(double[:, ::1] value, double[:, :, ::1] fields,
                       const double[::1] field, double[:, ::1] other,
                       const double[:, ::1] coupling, bint transpose,
                       const double[::1] scale, const double[::1] low,
                       const unsigned char[::1] free_units, const double[::1] beta,
                       uint64_t[:, ::1] streams, Py_ssize_t per,
                       const uint8_t *keep, const pe_continuous *cont) noexcept nogil:
    """Sample one layer of every chain given the other layer.

    The chains go in slices of ``per`` (a multiple of 8), one per thread and ``fields``
    slab; each thread runs its slice's product and sampling, so no second thread pool
    competes (with several slices the caller keeps BLAS on one thread; with one, BLAS may
    thread the product itself).
    """
    cdef Py_ssize_t blk, c0, m, n_chains = value.shape[0], n = value.shape[1]
    cdef int n_blocks = fields.shape[0]
    for blk in prange(n_blocks, schedule="static", num_threads=n_blocks):
        c0 = blk * per
        if c0 < n_chains:
            m = min(per, n_chains - c0)
            layer_fields_by_unit(fields[blk], field, other[c0:c0 + m], coupling, transpose)
            pe_gibbs_layer_chains(&value[c0, 0], n, &fields[blk, 0, 0], per, &scale[0],
                                  &low[0], &free_units[0], &beta[c0], &streams[0, c0],
                                  &streams[1, c0], &streams[2, c0], &streams[3, c0], m, n,
                                  keep + c0 if keep != NULL else NULL, n_chains, cont)


def uniforms(uint64_t[:, ::1] streams, Py_ssize_t n_chains):
    """One uniform in [0, 1) from each of the first ``n_chains`` streams (advancing them).

    The Python face of ``_random.h``'s ``pe__uniform``, the generator every drawing kernel
    uses: ``streams`` is (4, >= n_chains) xoshiro256+ state words, column c chain c's.
    """
    import numpy as np
    if n_chains < 0 or streams.shape[1] < n_chains:
        raise ValueError("uniforms: more chains than streams")
    out = np.empty(n_chains)
    cdef double[::1] values = out
    cdef Py_ssize_t c
    for c in range(n_chains):
        values[c] = pe__uniform(&streams[0, c], &streams[1, c], &streams[2, c], &streams[3, c])
    return out


cdef class UnitUpdater:
    """Single-unit Gibbs updates with an energy difference from outside the graph (users'
    terms), for the generic path: built once per sweep call over the engine's arrays, so
    each update converts only ``delta``.

    ``update(unit, delta)``: ``f = field + sum_q w_q s_q`` over the unit's couplings, then
    ``s_unit = low + scale [u < sigmoid(beta (scale f - delta))]`` on every chain, with
    ``delta = E_outside(on) - E_outside(off)`` per chain and one uniform per chain.
    """
    cdef double[:, ::1] state
    cdef const int64_t[::1] indptr
    cdef const int32_t[::1] indices
    cdef const double[::1] weights
    cdef const double[::1] field
    cdef const double[::1] beta
    cdef const double[::1] scale
    cdef const double[::1] low
    cdef uint64_t[:, ::1] streams

    def __init__(self, double[:, ::1] state, const int64_t[::1] indptr,
                 const int32_t[::1] indices, const double[::1] weights,
                 const double[::1] field, const double[::1] beta, const double[::1] scale,
                 const double[::1] low, uint64_t[:, ::1] streams):
        cdef Py_ssize_t n = state.shape[0]
        if (indptr.shape[0] != n + 1 or field.shape[0] != n or scale.shape[0] != n
                or low.shape[0] != n or state.shape[1] < beta.shape[0]
                or streams.shape[1] < beta.shape[0] or indices.shape[0] < indptr[n]
                or weights.shape[0] < indptr[n]):
            raise ValueError("UnitUpdater: inconsistent array shapes")
        for q in range(indptr[n]):
            if indices[q] < 0 or indices[q] >= n:
                raise ValueError("UnitUpdater: neighbour index outside the graph")
        self.state, self.indptr, self.indices, self.weights = state, indptr, indices, weights
        self.field, self.beta, self.scale, self.low, self.streams = (field, beta, scale, low,
                                                                      streams)

    def update(self, Py_ssize_t unit, const double[::1] delta):
        cdef Py_ssize_t c, n_chains = self.beta.shape[0]
        cdef int64_t q
        cdef double f, scale, low
        if unit < 0 or unit >= self.state.shape[0] or delta.shape[0] != n_chains:
            raise ValueError("UnitUpdater.update: unit or delta out of range")
        scale, low = self.scale[unit], self.low[unit]
        with nogil:
            for c in range(n_chains):
                f = self.field[unit]
                for q in range(self.indptr[unit], self.indptr[unit + 1]):
                    f = f + self.weights[q] * self.state[self.indices[q], c]
                self.state[unit, c] = low + scale * (
                    pe__uniform(&self.streams[0, c], &self.streams[1, c],
                                &self.streams[2, c], &self.streams[3, c])
                    < pe_sigmoid(self.beta[c] * (scale * f - delta[c])))
