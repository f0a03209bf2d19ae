"""A compiled epoch of PCD-k with SGD for layered models (RBMs and deep Boltzmann machines).

The model's units form two dense layers: ``a`` (colour 0 of the unit graph: the visible
units first, then any hidden units of that colour, as the even layers x, h2, ... of a DBM)
and ``b`` (colour 1: the odd layers h1, h3, ...), with ``-E = field_a.a + field_b.b + a^T C b``
(``C`` zero where two units share no coupling; ``edge`` marks the entries that are
parameters). Per minibatch ``X`` (rows of the visible units):

* positive phase: ``P_a = [X, mu_a]``, ``P_b = mu_b``, the hidden means. With no hidden unit
  in ``a`` (an RBM) ``mu_b = E[b | a = X]`` exactly. Otherwise the mean-field fixed point of
  ``pgm_energy.variational.fixed_point``: starting from the means given ``X`` alone (every
  hidden mean at 0), the two blocks (``b``, the hidden part of ``a``; in the order given by
  ``b_first``) are updated in turn, ``mu <- damping mu + (1 - damping) E[unit | field]``,
  until the largest change of a mean in a sweep is below ``tol`` or ``max_iter`` sweeps are
  done; the layer means are ``low + scale * sigmoid(scale f)``;
* negative phase: ``k`` block sweeps of the persistent chains (``a`` given ``b``, then ``b``
  given ``a``, as ``sweep_block``: the same fields unit by unit and draws, one uniform per
  chain per unit in unit order), then the layer summed in closed form replaced by its
  conditional means: ``Q_b = E[b | a = chains]`` (from the last sampling's probabilities) or,
  with ``closed_a``, ``Q_a = E[a | b = chains]``;
* gradient: ``g_C = P_a^T P_b / B - (chains or Q)_a^T (Q or chains)_b / N`` on the ``edge``
  entries, ``g_a = mean P_a - mean of the negative a``, ``g_b`` likewise;
* SGD ascent: ``v = momentum v + lr (g - weight_decay theta - l1 sign(theta))``,
  ``theta += v`` (entries of ``C`` off ``edge`` stay 0).

This is exactly what ``PCD`` (positive phase ``MeanField`` where hidden units interact) and
``SGD`` compute in Python, in one call per epoch.
"""
from libc.math cimport INFINITY, fabs
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dgemm

from ._gibbs cimport layer_fields_by_unit, sample_layer

import numpy as np

cdef extern from "_gibbs.h" nogil:
    void pe_layer_means(double *field, const double *scale, const double *low, long n)
    double pe_mean_field_update(double *mean, const double *product, const double *bias,
                                const double *scale, const double *low, double damping,
                                long n)


cdef void layer_means_by_unit(double[:, ::1] probabilities, const double[::1] scale,
                              const double[::1] low, Py_ssize_t n_chains) noexcept nogil:
    """probabilities (n, >= n_chains), unit by unit, P(on) -> E[unit] = low + scale P, in
    place (first n_chains columns)."""
    cdef Py_ssize_t c, k
    for k in range(probabilities.shape[0]):
        for c in range(n_chains):
            probabilities[k, c] = low[k] + scale[k] * probabilities[k, c]


cdef void outer_mean_by_unit(double[:, ::1] out, double[:, ::1] rows_a,
                             double[:, ::1] units_b, double alpha, double beta) noexcept nogil:
    """out (n_a, n_b) <- alpha * rows_a^T units_b^T + beta * out, ``units_b (n_b, >= n)``
    unit by unit, through dgemm."""
    cdef int n_a = rows_a.shape[1], n_b = units_b.shape[0], n = rows_a.shape[0]
    cdef int ld = units_b.shape[1]
    cdef char *tr = b"T"
    dgemm(tr, tr, &n_b, &n_a, &n, &alpha, &units_b[0, 0], &ld, &rows_a[0, 0], &n_a, &beta,
          &out[0, 0], &n_b)


cdef void outer_mean(double[:, ::1] out, double[:, ::1] rows_a, double[:, ::1] rows_b,
                     double alpha, double beta) noexcept nogil:
    """out (n_a, n_b) <- alpha * rows_a^T rows_b + beta * out, through dgemm."""
    cdef int n_a = rows_a.shape[1], n_b = rows_b.shape[1], n = rows_a.shape[0]
    cdef char *no = b"N"
    cdef char *tr = b"T"
    dgemm(no, tr, &n_b, &n_a, &n, &alpha, &rows_b[0, 0], &n_b, &rows_a[0, 0], &n_a, &beta,
          &out[0, 0], &n_b)


cdef void rows_times(double *out, int ld_out, const double *rows, int ld_rows,
                     const double *matrix, int ld_matrix, int m, int n, int inner,
                     double beta) noexcept nogil:
    """out (m, n) <- rows (m, inner) @ matrix (inner, n) + beta * out, all row-major with
    leading dimensions ``ld_*`` (row-major ``out`` is column-major ``out^T = matrix^T
    rows^T``: a product of untransposed operands, BLAS's quickest form at these sizes)."""
    cdef double one = 1.0
    cdef char *no = b"N"
    if m == 0 or n == 0:
        return
    dgemm(no, no, &n, &m, &inner, &one, <double *> matrix, &ld_matrix, <double *> rows,
          &ld_rows, &beta, out, &ld_out)


cdef void transpose(double[:, ::1] out, const double[:, ::1] matrix) noexcept nogil:
    """out (n, m) <- matrix (m, n) transposed."""
    cdef Py_ssize_t i, j
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            out[j, i] = matrix[i, j]


cdef void field_means(double[:, ::1] out, const double[::1] field, double[:, ::1] rows,
                      const double[:, ::1] matrix, const double[::1] scale,
                      const double[::1] low) noexcept nogil:
    """out (m, n) <- E[unit | field + rows @ matrix] (``rows`` (m, inner), ``matrix``
    (inner, n))."""
    cdef Py_ssize_t r, m = out.shape[0], n = out.shape[1]
    for r in range(m):
        memcpy(&out[r, 0], &field[0], n * sizeof(double))
    rows_times(&out[0, 0], n, &rows[0, 0], rows.shape[1], &matrix[0, 0], n, m, n,
               rows.shape[1], 1.0)
    for r in range(m):
        pe_layer_means(&out[r, 0], &scale[0], &low[0], n)


cdef void mean_field(double[:, ::1] pa, double[:, ::1] pb, double[:, ::1] base_b,
                     double[:, ::1] work_a, double[:, ::1] work_b,
                     const double[:, ::1] coupling, const double[:, ::1] coupling_t,
                     const double[::1] field_a, const double[::1] field_b,
                     const double[::1] scale_a, const double[::1] low_a,
                     const double[::1] scale_b, const double[::1] low_b,
                     Py_ssize_t n_visible, double tol, int max_iter, double damping,
                     bint b_first) noexcept nogil:
    """The positive phase's hidden means of the batch ``pa[:, :n_visible]`` (the module
    docstring): ``pa[:, n_visible:]`` and ``pb`` (m, n_b) are written; ``base_b``,
    ``work_a`` (m, n_a - n_visible) and ``work_b`` are scratch; ``coupling_t`` is
    ``coupling`` transposed (unused where ``a`` has no hidden unit)."""
    cdef int m = pa.shape[0], n_a = pa.shape[1], n_b = pb.shape[1]
    cdef int n_h = n_a - n_visible, n_v = n_visible
    cdef int n_iter = 0, step, r
    cdef double change = INFINITY
    # b given the visible units (the hidden ones of a at 0): exact when a has none
    for r in range(m):
        memcpy(&base_b[r, 0], &field_b[0], n_b * sizeof(double))
    rows_times(&base_b[0, 0], n_b, &pa[0, 0], n_a, &coupling[0, 0], n_b, m, n_b, n_v, 1.0)
    memcpy(&pb[0, 0], &base_b[0, 0], m * n_b * sizeof(double))
    for r in range(m):
        pe_layer_means(&pb[r, 0], &scale_b[0], &low_b[0], n_b)
    if n_h == 0:
        return
    # the hidden units of a given b at 0
    memcpy(&work_a[0, 0], &field_a[n_v], n_h * sizeof(double))
    pe_layer_means(&work_a[0, 0], &scale_a[n_v], &low_a[n_v], n_h)
    for r in range(m):
        memcpy(&pa[r, n_v], &work_a[0, 0], n_h * sizeof(double))
    while n_iter < max_iter and not change < tol:
        change = 0.0
        for step in range(2):
            if (step == 0) == b_first:      # b given a's hidden means
                rows_times(&work_b[0, 0], n_b, &pa[0, n_v], n_a, &coupling[n_v, 0], n_b, m,
                           n_b, n_h, 0.0)
                for r in range(m):
                    change = max(change, pe_mean_field_update(
                        &pb[r, 0], &work_b[r, 0], &base_b[r, 0], &scale_b[0], &low_b[0],
                        damping, n_b))
            else:                           # a's hidden units given b
                rows_times(&work_a[0, 0], n_h, &pb[0, 0], n_b, &coupling_t[0, n_v], n_a, m,
                           n_h, n_b, 0.0)
                for r in range(m):
                    change = max(change, pe_mean_field_update(
                        &pa[r, n_v], &work_a[r, 0], &field_a[n_v], &scale_a[n_v],
                        &low_a[n_v], damping, n_h))
        n_iter += 1


cdef double sgd_step(double *theta, double *velocity, const double *grad, Py_ssize_t n,
                     double lr, double momentum, double weight_decay, double l1,
                     const unsigned char *keep) noexcept nogil:
    """SGD with momentum on the n entries (those where ``keep`` is set, all when it is
    NULL); returns their max |grad|."""
    cdef Py_ssize_t k
    cdef double g, sign, largest = 0.0
    for k in range(n):
        if keep != NULL and not keep[k]:
            continue
        largest = max(largest, fabs(grad[k]))
        sign = (theta[k] > 0) - (theta[k] < 0)
        g = grad[k] - weight_decay * theta[k] - l1 * sign
        velocity[k] = momentum * velocity[k] + lr * g
        theta[k] += velocity[k]
    return largest


cdef void row_means(double *out, double[:, ::1] units, Py_ssize_t n,
                    double alpha) noexcept nogil:
    """out[k] += alpha * mean of units[k, :n] (units unit by unit)."""
    cdef Py_ssize_t c, k
    cdef double w = alpha / n
    for k in range(units.shape[0]):
        for c in range(n):
            out[k] += w * units[k, c]


cdef void column_means(double *out, double[:, ::1] rows, double alpha) noexcept nogil:
    """out[k] += alpha * mean over rows of rows[:, k]."""
    cdef Py_ssize_t r, k
    cdef double w = alpha / rows.shape[0]
    for r in range(rows.shape[0]):
        for k in range(rows.shape[1]):
            out[k] += w * rows[r, k]


def pcd_sgd_epoch(
    const double[:, ::1] data,       # IN (n_samples, n_visible) rows of a's first units
    const int64_t[::1] order,        # IN row order of this epoch
    int batch_size,
    double[:, ::1] coupling,         # IN/OUT (n_a, n_b)
    double[::1] field_a,             # IN/OUT (n_a,)
    double[::1] field_b,             # IN/OUT (n_b,)
    double[:, ::1] velocity_c,       # IN/OUT (n_a, n_b)
    double[::1] velocity_a,          # IN/OUT (n_a,)
    double[::1] velocity_b,          # IN/OUT (n_b,)
    const unsigned char[:, ::1] edge,  # IN None (every entry) or (n_a, n_b): 1 where C is a
                                       #    parameter, 0 where it stays 0
    double[:, ::1] chains_a,         # IN/OUT (n_chains, n_a) persistent chains
    double[:, ::1] chains_b,         # IN/OUT (n_chains, n_b)
    const double[::1] scale_a, const double[::1] low_a,   # IN unit domains
    const double[::1] scale_b, const double[::1] low_b,
    uint64_t[:, ::1] streams,        # IN/OUT (4, >= n_chains) chain streams
    int k, double lr, double momentum, double weight_decay, double l1,
    int n_threads,
    double tol, int max_iter, double damping,   # IN the mean-field positive phase
    bint b_first,                    # IN whether its sweeps update b before a's hidden units
    bint closed_a,                   # IN the negative phase sums a (else b) in closed form
):
    """One epoch of minibatch PCD-k + SGD; returns the largest |gradient| entry seen."""
    cdef Py_ssize_t n_a = coupling.shape[0], n_b = coupling.shape[1]
    cdef Py_ssize_t n_chains = chains_a.shape[0], n_rows = order.shape[0]
    cdef Py_ssize_t n_visible = data.shape[1], n_hidden = n_a - data.shape[1]
    cdef Py_ssize_t lo, r, j, size, sweep
    cdef double largest = 0.0
    if (n_visible > n_a or n_visible < 1 or chains_a.shape[1] != n_a
            or chains_b.shape[1] != n_b or chains_b.shape[0] != n_chains
            or batch_size < 1 or streams.shape[1] < (n_chains + 7) // 8 * 8 or k < 1
            or (edge is not None and (edge.shape[0] != n_a or edge.shape[1] != n_b))
            or (n_hidden and (max_iter < 1 or not tol > 0 or not 0 <= damping < 1))):
        raise ValueError("pcd_sgd_epoch: inconsistent arguments")
    for r in range(n_rows):
        if order[r] < 0 or order[r] >= data.shape[0]:
            raise ValueError("pcd_sgd_epoch: order names a row outside the data")
    cdef const unsigned char *keep = &edge[0, 0] if edge is not None else NULL
    cdef double[:, ::1] batch_full = np.empty((batch_size, n_a))
    cdef double[:, ::1] positive_full = np.empty((batch_size, n_b))
    cdef double[:, ::1] base_full = np.empty((batch_size, n_b))
    cdef double[:, ::1] work_b_full = np.empty((batch_size, n_b))
    cdef double[:, ::1] work_a_full = np.empty((batch_size, max(n_hidden, 1)))
    cdef Py_ssize_t n_padded = (n_chains + 7) // 8 * 8     # the sampler's lanes
    cdef double[:, ::1] fields_a = np.empty((n_a, n_padded))   # unit by unit
    cdef double[:, ::1] fields_b = np.empty((n_b, n_padded))
    cdef double[:, ::1] closed = np.empty((n_chains, n_a if closed_a else 1))
    cdef bint need_t = closed_a or n_hidden > 0
    cdef double[:, ::1] coupling_t = np.empty((n_b if need_t else 1, n_a if need_t else 1))
    cdef double[:, ::1] grad_c = np.empty((n_a, n_b))
    cdef double[::1] grad_a = np.empty(n_a)
    cdef double[::1] grad_b = np.empty(n_b)
    cdef double[::1] beta = np.ones(n_padded)
    cdef unsigned char[::1] free_a = np.ones(n_a, np.uint8)
    cdef unsigned char[::1] free_b = np.ones(n_b, np.uint8)
    cdef double[:, ::1] batch, positive, base, work_a, work_b
    for lo in range(0, n_rows, batch_size):
        size = min(batch_size, n_rows - lo)
        batch, positive, base = batch_full[:size], positive_full[:size], base_full[:size]
        work_a, work_b = work_a_full[:size], work_b_full[:size]
        with nogil:
            for r in range(size):
                for j in range(n_visible):
                    batch[r, j] = data[order[lo + r], j]
            if need_t:
                transpose(coupling_t, coupling)
            mean_field(batch, positive, base, work_a, work_b, coupling, coupling_t, field_a, field_b, scale_a, low_a,
                       scale_b, low_b, n_visible, tol, max_iter, damping, b_first)
            for sweep in range(k):
                layer_fields_by_unit(fields_a, field_a, chains_b, coupling, True)
                sample_layer(chains_a, fields_a, scale_a, low_a, free_a, beta, streams,
                             n_threads)
                layer_fields_by_unit(fields_b, field_b, chains_a, coupling, False)
                sample_layer(chains_b, fields_b, scale_b, low_b, free_b, beta, streams,
                             n_threads)
            for j in range(n_a):
                grad_a[j] = 0.0
            for j in range(n_b):
                grad_b[j] = 0.0
            outer_mean(grad_c, batch, positive, 1.0 / size, 0.0)
            column_means(&grad_a[0], batch, 1.0)
            column_means(&grad_b[0], positive, 1.0)
            if closed_a:
                field_means(closed, field_a, chains_b, coupling_t, scale_a, low_a)
                outer_mean(grad_c, closed, chains_b, -1.0 / n_chains, 1.0)
                column_means(&grad_a[0], closed, -1.0)
                column_means(&grad_b[0], chains_b, -1.0)
            else:
                layer_means_by_unit(fields_b, scale_b, low_b, n_chains)
                outer_mean_by_unit(grad_c, chains_a, fields_b, -1.0 / n_chains, 1.0)
                column_means(&grad_a[0], chains_a, -1.0)
                row_means(&grad_b[0], fields_b, n_chains, -1.0)
            largest = max(largest, sgd_step(&coupling[0, 0], &velocity_c[0, 0], &grad_c[0, 0],
                                            n_a * n_b, lr, momentum, weight_decay, l1, keep))
            largest = max(largest, sgd_step(&field_a[0], &velocity_a[0], &grad_a[0], n_a, lr,
                                            momentum, weight_decay, l1, NULL))
            largest = max(largest, sgd_step(&field_b[0], &velocity_b[0], &grad_b[0], n_b, lr,
                                            momentum, weight_decay, l1, NULL))
    return largest
