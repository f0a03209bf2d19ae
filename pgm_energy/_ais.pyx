"""Annealed importance sampling kernel for bipartite models, the summed layer marginalised.

``anneal_bipartite`` runs every step of an annealing schedule on all runs in one call. Runs
are independent, so they are split into blocks (their size chosen by the caller from the
number of runs only) that walk the whole schedule on OpenMP threads without ever waiting for
each other. Per step a block does two BLAS products over its runs (``a = C x`` and
``g = C^T h``, ``dgemm`` or ``sgemm`` as the unit dtype; the caller keeps BLAS itself on one
thread) and, after each, the per-unit updates of ``_ais.h``. Each run draws from its own
xoshiro256+ stream, in this order per step: one uniform per summed unit (unit order), then one
per kept unit (unit order). So results do not depend on the thread count.
"""
from cython.parallel cimport prange
from libc.stdint cimport uint64_t
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as np

ctypedef fused floating:
    float
    double

cdef extern from "_ais.h" nogil:
    void pe_ais_summed_unit_d(const double *a, double *h, double *log_w, double c,
                              double beta, double beta_prev, int sample, uint64_t *s0,
                              uint64_t *s1, uint64_t *s2, uint64_t *s3, long n)
    void pe_ais_summed_unit_f(const float *a, float *h, double *log_w, double c,
                              double beta, double beta_prev, int sample, uint64_t *s0,
                              uint64_t *s1, uint64_t *s2, uint64_t *s3, long n)
    void pe_ais_kept_unit_d(const double *g, double *x, double *log_w, double b, double b0,
                            double beta, double beta_prev, int sample, uint64_t *s0,
                            uint64_t *s1, uint64_t *s2, uint64_t *s3, long n)
    void pe_ais_kept_unit_f(const float *g, float *x, double *log_w, double b, double b0,
                            double beta, double beta_prev, int sample, uint64_t *s0,
                            uint64_t *s1, uint64_t *s2, uint64_t *s3, long n)


cdef void product(floating[:, ::1] out, const floating[:, ::1] coupling,
                  floating[:, ::1] units, Py_ssize_t c0, int n, bint transpose) noexcept nogil:
    """Columns c0 .. c0+n-1 of out = coupling @ units (or coupling^T @ units).

    Row-major ``out (n_out, stride)`` is column-major ``out^T``, so BLAS computes
    ``out^T = units^T coupling^T`` (``transpose`` False) or ``units^T coupling`` on the rows
    c0 .. c0+n-1 of the transposes.
    """
    cdef int n_out = out.shape[0], n_in = units.shape[0], stride = out.shape[1]
    cdef int ld_coupling = coupling.shape[1]
    cdef char *op = b"T" if transpose else b"N"
    cdef char *no = b"N"
    cdef double one_d = 1.0, zero_d = 0.0
    cdef float one_f = 1.0, zero_f = 0.0
    if floating is double:
        dgemm(no, op, &n, &n_out, &n_in, &one_d, &units[0, c0], &stride,
              <double *> &coupling[0, 0], &ld_coupling, &zero_d, &out[0, c0], &stride)
    else:
        sgemm(no, op, &n, &n_out, &n_in, &one_f, &units[0, c0], &stride,
              <float *> &coupling[0, 0], &ld_coupling, &zero_f, &out[0, c0], &stride)


cdef void anneal_block(floating[:, ::1] x, floating[:, ::1] h, floating[:, ::1] a,
                       floating[:, ::1] g, const floating[:, ::1] coupling,
                       const double[::1] field_kept, const double[::1] field_summed,
                       const double[::1] base_kept, const double[::1] betas,
                       double[::1] log_w, uint64_t[:, ::1] streams, Py_ssize_t c0,
                       int n) noexcept nogil:
    """The whole schedule for runs c0 .. c0+n-1 (``a``, ``g``: scratch like ``h``, ``x``)."""
    cdef Py_ssize_t k, i, j
    cdef int sample
    cdef double beta, beta_prev
    cdef uint64_t *s0 = &streams[0, c0]
    cdef uint64_t *s1 = &streams[1, c0]
    cdef uint64_t *s2 = &streams[2, c0]
    cdef uint64_t *s3 = &streams[3, c0]
    for k in range(1, betas.shape[0]):
        beta = betas[k]
        beta_prev = betas[k - 1]
        sample = k < betas.shape[0] - 1
        product(a, coupling, x, c0, n, False)
        for j in range(h.shape[0]):
            if floating is double:
                pe_ais_summed_unit_d(&a[j, c0], &h[j, c0], &log_w[c0], field_summed[j], beta,
                                     beta_prev, sample, s0, s1, s2, s3, n)
            else:
                pe_ais_summed_unit_f(&a[j, c0], &h[j, c0], &log_w[c0], field_summed[j], beta,
                                     beta_prev, sample, s0, s1, s2, s3, n)
        if sample:
            product(g, coupling, h, c0, n, True)
        for i in range(x.shape[0]):
            if floating is double:
                pe_ais_kept_unit_d(&g[i, c0], &x[i, c0], &log_w[c0], field_kept[i],
                                   base_kept[i], beta, beta_prev, sample, s0, s1, s2, s3, n)
            else:
                pe_ais_kept_unit_f(&g[i, c0], &x[i, c0], &log_w[c0], field_kept[i],
                                   base_kept[i], beta, beta_prev, sample, s0, s1, s2, s3, n)


def anneal_bipartite(
    floating[:, ::1] x,              # IN/OUT (n_kept, stride) kept units, runs in columns
    floating[:, ::1] h,              # OUT (n_summed, stride) last summed units sampled
    const floating[:, ::1] coupling, # IN (n_summed, n_kept): log f has softplus(c + C x)
    const double[::1] field_kept,    # IN (n_kept,) target fields b
    const double[::1] field_summed,  # IN (n_summed,) target fields c
    const double[::1] base_kept,     # IN (n_kept,) base fields b0
    const double[::1] betas,         # IN (n_betas,) the schedule, in the order walked
    double[::1] log_w,               # IN/OUT (n_runs,) log weights, accumulated
    uint64_t[:, ::1] streams,        # IN/OUT (4, >= n_runs)
    int run_block,                   # runs per block (the last block may be smaller)
    int n_threads,
):
    """Walk ``betas``: per step the weight update, then (but at the last) one transition."""
    cdef Py_ssize_t n_runs = log_w.shape[0], n_kept = x.shape[0], n_summed = h.shape[0]
    cdef Py_ssize_t stride = x.shape[1]
    cdef Py_ssize_t n_blocks = (n_runs + run_block - 1) // run_block if run_block > 0 else 0
    cdef Py_ssize_t blk
    if (h.shape[1] != stride or coupling.shape[0] != n_summed or coupling.shape[1] != n_kept
            or field_kept.shape[0] != n_kept or field_summed.shape[0] != n_summed
            or base_kept.shape[0] != n_kept or stride < n_runs or streams.shape[1] < n_runs
            or n_kept == 0 or n_summed == 0 or n_runs == 0 or run_block < 1):
        raise ValueError("anneal_bipartite: inconsistent array shapes")
    dtype = np.float64 if floating is double else np.float32
    cdef floating[:, ::1] a = np.empty((n_summed, stride), dtype)
    cdef floating[:, ::1] g = np.empty((n_kept, stride), dtype)
    with nogil:
        for blk in prange(n_blocks, schedule="dynamic", num_threads=max(n_threads, 1)):
            anneal_block(x, h, a, g, coupling, field_kept, field_summed, base_kept, betas,
                         log_w, streams, blk * run_block,
                         <int> min(<Py_ssize_t> run_block, n_runs - blk * run_block))
