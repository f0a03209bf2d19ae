"""Annealed importance sampling kernel for bipartite models, the summed layer marginalised.

``anneal_bipartite`` runs steps ``start <= k < stop`` of an annealing schedule on all runs in
one call; the caller walks the schedule in chunks of steps (to see Ctrl-C between them). Runs
are independent, so they are split into blocks (their size chosen by the caller from the
number of runs only) that walk the chunk on OpenMP threads without ever waiting for each
other. Each run keeps the fields ``a = c + C x`` of the summed units and ``g = b + C^T h`` of
the kept ones. After a layer is resampled, its field on the other layer is updated by adding
the rows of ``C`` (or ``C^T``) of the units that changed, or, when more than
``delta_fraction`` of the block's units changed, recomputed by one BLAS product over the
block (``dgemm`` or ``sgemm`` as the unit dtype; the caller keeps BLAS on one thread). Both
give the same fields up to rounding; the choice depends on the states only. The fields and
the lists of changed units live in the caller's arrays from one call to the next (the walk's
whole state, with the units, log weights and streams), so a walk in chunks is the walk in one
call, bit for bit, wherever the chunks end.

Draws: each run has its own xoshiro256+ stream; per step, one uniform per summed unit (unit
order), then one per kept unit (unit order). Results do not depend on the thread count.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint64_t
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as np

ctypedef fused floating:
    float
    double

cdef extern from "_ais.h" nogil:
    double pe_ais_summed_weight(const double *a, double beta, double beta_prev, double *buf,
                                long n)
    double pe_ais_dot_d(const double *x, const double *slope, double *buf, long n)
    double pe_ais_dot_f(const float *x, const double *slope, double *buf, long n)
    long pe_ais_layer_d(double *value, const double *field, const double *base, double beta,
                        double *u, int32_t *changed, uint64_t *s0, uint64_t *s1,
                        uint64_t *s2, uint64_t *s3, long n)
    long pe_ais_layer_f(float *value, const double *field, const double *base, double beta,
                        double *u, int32_t *changed, uint64_t *s0, uint64_t *s1,
                        uint64_t *s2, uint64_t *s3, long n)
    void pe_ais_add_rows_d(double *field, const double *rows, const int32_t *changed,
                           const double *value, long m, long n)
    void pe_ais_add_rows_f(double *field, const float *rows, const int32_t *changed,
                           const float *value, long m, long n)


cdef void refresh(double[:, ::1] field, const double[::1] bias, floating[:, ::1] product,
                  const floating[:, ::1] coupling, floating[:, ::1] units, Py_ssize_t r0,
                  int n) noexcept nogil:
    """Rows r0 .. r0+n-1: field = bias + units @ coupling^T, coupling (n_out, n_in).

    Row-major arrays are column-major transposes, so BLAS computes
    ``product^T = coupling units^T`` with ``coupling`` transposed back (op "T").
    """
    cdef int n_out = field.shape[1], n_in = units.shape[1]
    cdef int ld_coupling = coupling.shape[1], ld_product = product.shape[1]
    cdef char *op = b"T"
    cdef char *no = b"N"
    cdef double one_d = 1.0, zero_d = 0.0
    cdef float one_f = 1.0, zero_f = 0.0
    cdef Py_ssize_t r, k
    if floating is double:
        dgemm(op, no, &n_out, &n, &n_in, &one_d, <double *> &coupling[0, 0], &ld_coupling,
              &units[r0, 0], &n_in, &zero_d, &product[r0, 0], &ld_product)
    else:
        sgemm(op, no, &n_out, &n, &n_in, &one_f, <float *> &coupling[0, 0], &ld_coupling,
              &units[r0, 0], &n_in, &zero_f, &product[r0, 0], &ld_product)
    for r in range(r0, r0 + n):
        for k in range(n_out):
            field[r, k] = bias[k] + product[r, k]


cdef void update_field(double[:, ::1] field, const double[::1] bias, floating[:, ::1] product,
                       const floating[:, ::1] coupling, const floating[:, ::1] rows,
                       floating[:, ::1] units, const int32_t[:, ::1] changed,
                       const int64_t[::1] n_changed, bint valid, double delta_fraction,
                       Py_ssize_t r0, int n) noexcept nogil:
    """Bring ``field = bias + units @ coupling^T`` up to date for rows r0 .. r0+n-1.

    By adding the changed ``rows`` (``rows`` is ``coupling^T``, contiguous) when the field
    was ``valid`` and at most ``delta_fraction`` of the units changed, else by a product.
    """
    cdef Py_ssize_t r
    cdef int64_t total = 0
    for r in range(r0, r0 + n):
        total += n_changed[r]
    if not valid or total > delta_fraction * n * units.shape[1]:
        refresh(field, bias, product, coupling, units, r0, n)
        return
    for r in range(r0, r0 + n):
        if floating is double:
            pe_ais_add_rows_d(&field[r, 0], &rows[0, 0], &changed[r, 0], &units[r, 0],
                              n_changed[r], field.shape[1])
        else:
            pe_ais_add_rows_f(&field[r, 0], &rows[0, 0], &changed[r, 0], &units[r, 0],
                              n_changed[r], field.shape[1])


cdef void anneal_block(floating[:, ::1] x, floating[:, ::1] h, const floating[:, ::1] coupling,
                       const floating[:, ::1] coupling_t, const double[::1] field_kept,
                       const double[::1] field_summed, const double[::1] base_kept,
                       const double[::1] base_summed, const double[::1] slope,
                       const double[::1] betas, double[::1] log_w, uint64_t[:, ::1] streams,
                       double delta_fraction, double[:, ::1] a, double[:, ::1] g,
                       floating[:, ::1] product_a, floating[:, ::1] product_g,
                       double[:, ::1] scratch, int32_t[:, ::1] changed_x,
                       int32_t[:, ::1] changed_h, int64_t[::1] n_changed_x,
                       int64_t[::1] n_changed_h, Py_ssize_t start, Py_ssize_t stop,
                       Py_ssize_t r0, int n) noexcept nogil:
    """Steps start .. stop-1 of the schedule for runs r0 .. r0+n-1 (the other arrays:
    per-run rows). The fields are valid from the second step on."""
    cdef Py_ssize_t k, r
    cdef long n_kept = x.shape[1], n_summed = h.shape[1]
    cdef bint sample
    cdef double beta, beta_prev
    for k in range(start, stop):
        beta = betas[k]
        beta_prev = betas[k - 1]
        sample = k < betas.shape[0] - 1
        update_field(a, field_summed, product_a, coupling, coupling_t, x, changed_x,
                     n_changed_x, k > 1, delta_fraction, r0, n)
        for r in range(r0, r0 + n):
            log_w[r] += pe_ais_summed_weight(&a[r, 0], beta, beta_prev, &scratch[r, 0],
                                             n_summed)
            if not sample:
                continue
            if floating is double:
                n_changed_h[r] = pe_ais_layer_d(&h[r, 0], &a[r, 0], &base_summed[0], beta,
                                                &scratch[r, 0], &changed_h[r, 0],
                                                &streams[0, r], &streams[1, r],
                                                &streams[2, r], &streams[3, r], n_summed)
            else:
                n_changed_h[r] = pe_ais_layer_f(&h[r, 0], &a[r, 0], &base_summed[0], beta,
                                                &scratch[r, 0], &changed_h[r, 0],
                                                &streams[0, r], &streams[1, r],
                                                &streams[2, r], &streams[3, r], n_summed)
        if sample:
            update_field(g, field_kept, product_g, coupling_t, coupling, h, changed_h,
                         n_changed_h, k > 1, delta_fraction, r0, n)
        for r in range(r0, r0 + n):
            if floating is double:
                log_w[r] += (beta - beta_prev) * pe_ais_dot_d(&x[r, 0], &slope[0],
                                                              &scratch[r, 0], n_kept)
            else:
                log_w[r] += (beta - beta_prev) * pe_ais_dot_f(&x[r, 0], &slope[0],
                                                              &scratch[r, 0], n_kept)
            if not sample:
                continue
            if floating is double:
                n_changed_x[r] = pe_ais_layer_d(&x[r, 0], &g[r, 0], &base_kept[0], beta,
                                                &scratch[r, 0], &changed_x[r, 0],
                                                &streams[0, r], &streams[1, r],
                                                &streams[2, r], &streams[3, r], n_kept)
            else:
                n_changed_x[r] = pe_ais_layer_f(&x[r, 0], &g[r, 0], &base_kept[0], beta,
                                                &scratch[r, 0], &changed_x[r, 0],
                                                &streams[0, r], &streams[1, r],
                                                &streams[2, r], &streams[3, r], n_kept)


def anneal_bipartite(
    floating[:, ::1] x,                # IN/OUT (n_runs, n_kept) kept units
    floating[:, ::1] h,                # IN/OUT (n_runs, n_summed) summed units last sampled
    const floating[:, ::1] coupling,   # IN (n_summed, n_kept) C: log f has softplus(c + C x)
    const floating[:, ::1] coupling_t, # IN (n_kept, n_summed) C^T, contiguous
    const double[::1] field_kept,      # IN (n_kept,) target fields b
    const double[::1] field_summed,    # IN (n_summed,) target fields c
    const double[::1] base_kept,       # IN (n_kept,) base fields b0
    const double[::1] betas,           # IN (n_betas,) the whole schedule, in the order walked
    double[::1] log_w,                 # IN/OUT (n_runs,) log weights, accumulated
    uint64_t[:, ::1] streams,          # IN/OUT (4, >= n_runs)
    double[:, ::1] a,                  # IN/OUT (n_runs, n_summed) fields c + C x
    double[:, ::1] g,                  # IN/OUT (n_runs, n_kept) fields b + C^T h
    int32_t[:, ::1] changed_x,         # IN/OUT (n_runs, n_kept) kept units changed last step
    int32_t[:, ::1] changed_h,         # IN/OUT (n_runs, n_summed) summed units changed
    int64_t[:, ::1] n_changed,         # IN/OUT (2, n_runs) how many: kept, summed
    Py_ssize_t start,                  # first step walked (1: the start of the schedule)
    Py_ssize_t stop,                   # one past the last (n_betas: the end)
    int run_block,                     # runs per block (the last block may be smaller)
    double delta_fraction,             # recompute a field by BLAS above this change rate
    int n_threads,
):
    """Walk steps ``start <= k < stop`` of ``betas``: per step ``k`` the weight update from
    ``betas[k - 1]`` to ``betas[k]``, then (but at the schedule's last step) one transition
    at ``betas[k]``. The state carried from the previous call (units, fields, changed units,
    streams, log weights) is the whole state of the walk: steps 1 to ``n_betas`` in chunks
    give the walk of one call, bit for bit."""
    cdef Py_ssize_t n_runs = x.shape[0], n_kept = x.shape[1], n_summed = h.shape[1]
    cdef Py_ssize_t n_blocks, blk
    if (h.shape[0] != n_runs or coupling.shape[0] != n_summed
            or coupling.shape[1] != n_kept or coupling_t.shape[0] != n_kept
            or coupling_t.shape[1] != n_summed or field_kept.shape[0] != n_kept
            or field_summed.shape[0] != n_summed or base_kept.shape[0] != n_kept
            or log_w.shape[0] != n_runs or streams.shape[1] < n_runs or n_kept == 0
            or n_summed == 0 or n_runs == 0 or run_block < 1
            or a.shape[0] != n_runs or a.shape[1] != n_summed or g.shape[0] != n_runs
            or g.shape[1] != n_kept or changed_x.shape[0] != n_runs
            or changed_x.shape[1] != n_kept or changed_h.shape[0] != n_runs
            or changed_h.shape[1] != n_summed or n_changed.shape[0] != 2
            or n_changed.shape[1] != n_runs):
        raise ValueError("anneal_bipartite: inconsistent array shapes")
    if not 1 <= start <= stop <= betas.shape[0]:
        raise ValueError("anneal_bipartite: steps outside the schedule")
    cdef Py_ssize_t r, t
    for r in range(n_runs):
        if not (0 <= n_changed[0, r] <= n_kept and 0 <= n_changed[1, r] <= n_summed):
            raise ValueError("anneal_bipartite: invalid counts of changed units")
    if start > 1:
        for r in range(n_runs):
            for t in range(n_changed[0, r]):
                if not 0 <= changed_x[r, t] < n_kept:
                    raise ValueError("anneal_bipartite: changed units outside the layer")
            for t in range(n_changed[1, r]):
                if not 0 <= changed_h[r, t] < n_summed:
                    raise ValueError("anneal_bipartite: changed units outside the layer")
    n_blocks = (n_runs + run_block - 1) // run_block
    dtype = np.float64 if floating is double else np.float32
    cdef double[::1] slope = np.subtract(field_kept, base_kept)
    cdef double[::1] base_summed = np.zeros(n_summed)
    cdef floating[:, ::1] product_a = np.empty((n_runs, n_summed), dtype)
    cdef floating[:, ::1] product_g = np.empty((n_runs, n_kept), dtype)
    cdef double[:, ::1] scratch = np.empty((n_runs, max(n_kept, n_summed)))
    cdef int64_t[::1] n_changed_x = n_changed[0], n_changed_h = n_changed[1]
    with nogil:
        for blk in prange(n_blocks, schedule="dynamic", num_threads=max(n_threads, 1)):
            anneal_block(x, h, coupling, coupling_t, field_kept, field_summed, base_kept,
                         base_summed, slope, betas, log_w, streams, delta_fraction, a, g,
                         product_a, product_g, scratch, changed_x, changed_h, n_changed_x,
                         n_changed_h, start, stop, blk * run_block,
                         <int> min(<Py_ssize_t> run_block, n_runs - blk * run_block))
