"""A compiled epoch of PCD-k with SGD for two-layer models (the RBM fast path).

The model's units form two dense layers: ``a`` (the visible units) and ``b`` (the hidden
units), with ``-E = field_a.a + field_b.b + a^T C b``. Per minibatch ``X`` (rows of a):

* positive phase: ``P = E[b | a = X]``, the layer means ``low + scale * sigmoid(scale f)``;
* negative phase: ``k`` block sweeps of the persistent chains (``a`` given ``b``, then ``b``
  given ``a``, as ``sweep_block``: the same fields unit by unit and draws), then
  ``Q = E[b | a = chains]`` (from the last sampling's probabilities, unit by unit);
* gradient: ``g_C = X^T P / B - A^T Q / N``, ``g_a = mean X - mean A``,
  ``g_b = mean P - mean Q``;
* SGD ascent: ``v = momentum v + lr (g - weight_decay theta - l1 sign(theta))``,
  ``theta += v``.

This is exactly what ``PCD`` and ``SGD`` compute in Python, in one call per epoch.
"""
from libc.math cimport fabs
from libc.stdint cimport int64_t, uint64_t
from scipy.linalg.cython_blas cimport dgemm

from ._gibbs cimport layer_fields, layer_fields_by_unit, sample_layer

import numpy as np

cdef extern from "_gibbs.h" nogil:
    void pe_layer_probabilities(double *field, double beta, const double *scale, long n)


cdef void layer_means(double[:, ::1] fields, const double[::1] scale,
                      const double[::1] low) noexcept nogil:
    """fields <- E[unit | field] = low + scale * sigmoid(scale * field), in place."""
    cdef Py_ssize_t c, k
    for c in range(fields.shape[0]):
        pe_layer_probabilities(&fields[c, 0], 1.0, &scale[0], fields.shape[1])
        for k in range(fields.shape[1]):
            fields[c, k] = low[k] + scale[k] * fields[c, k]


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


cdef double sgd_step(double *theta, double *velocity, const double *grad, Py_ssize_t n,
                     double lr, double momentum, double weight_decay,
                     double l1) noexcept nogil:
    """SGD with momentum on n entries; returns max |grad|."""
    cdef Py_ssize_t k
    cdef double g, sign, largest = 0.0
    for k in range(n):
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
    const double[:, ::1] data,       # IN (n_samples, n_a) visible rows
    const int64_t[::1] order,        # IN row order of this epoch
    int batch_size,
    double[:, ::1] coupling,         # IN/OUT (n_a, n_b)
    double[::1] field_a,             # IN/OUT (n_a,)
    double[::1] field_b,             # IN/OUT (n_b,)
    double[:, ::1] velocity_c,       # IN/OUT (n_a, n_b)
    double[::1] velocity_a,          # IN/OUT (n_a,)
    double[::1] velocity_b,          # IN/OUT (n_b,)
    double[:, ::1] chains_a,         # IN/OUT (n_chains, n_a) persistent chains
    double[:, ::1] chains_b,         # IN/OUT (n_chains, n_b)
    const double[::1] scale_a, const double[::1] low_a,   # IN unit domains
    const double[::1] scale_b, const double[::1] low_b,
    uint64_t[:, ::1] streams,        # IN/OUT (4, >= n_chains) chain streams
    int k, double lr, double momentum, double weight_decay, double l1,
    int n_threads,
):
    """One epoch of minibatch PCD-k + SGD; returns the largest |gradient| entry seen."""
    cdef Py_ssize_t n_a = coupling.shape[0], n_b = coupling.shape[1]
    cdef Py_ssize_t n_chains = chains_a.shape[0], n_rows = order.shape[0]
    cdef Py_ssize_t lo, r, j, size, sweep
    cdef double largest = 0.0
    if (data.shape[1] != n_a or chains_b.shape[1] != n_b or chains_b.shape[0] != n_chains
            or batch_size < 1 or streams.shape[1] < (n_chains + 7) // 8 * 8 or k < 1):
        raise ValueError("pcd_sgd_epoch: inconsistent arguments")
    cdef double[:, ::1] batch_full = np.empty((batch_size, n_a))
    cdef double[:, ::1] positive_full = np.empty((batch_size, n_b))
    cdef Py_ssize_t n_padded = (n_chains + 7) // 8 * 8     # the sampler's lanes
    cdef double[:, ::1] fields_a = np.empty((n_a, n_padded))   # unit by unit
    cdef double[:, ::1] fields_b = np.empty((n_b, n_padded))
    cdef double[:, ::1] grad_c = np.empty((n_a, n_b))
    cdef double[::1] grad_a = np.empty(n_a)
    cdef double[::1] grad_b = np.empty(n_b)
    cdef double[::1] beta = np.ones(n_padded)
    cdef unsigned char[::1] free_a = np.ones(n_a, np.uint8)
    cdef unsigned char[::1] free_b = np.ones(n_b, np.uint8)
    cdef double[:, ::1] batch, positive
    for lo in range(0, n_rows, batch_size):
        size = min(batch_size, n_rows - lo)
        batch = batch_full[:size]
        positive = positive_full[:size]
        with nogil:
            for r in range(size):
                for j in range(n_a):
                    batch[r, j] = data[order[lo + r], j]
            layer_fields(positive, field_b, batch, coupling, False)
            layer_means(positive, scale_b, low_b)
            for sweep in range(k):
                layer_fields_by_unit(fields_a, field_a, chains_b, coupling, True)
                sample_layer(chains_a, fields_a, scale_a, low_a, free_a, beta, streams,
                             n_threads)
                layer_fields_by_unit(fields_b, field_b, chains_a, coupling, False)
                sample_layer(chains_b, fields_b, scale_b, low_b, free_b, beta, streams,
                             n_threads)
            layer_means_by_unit(fields_b, scale_b, low_b, n_chains)
            outer_mean(grad_c, batch, positive, 1.0 / size, 0.0)
            outer_mean_by_unit(grad_c, chains_a, fields_b, -1.0 / n_chains, 1.0)
            for j in range(n_a):
                grad_a[j] = 0.0
            for j in range(n_b):
                grad_b[j] = 0.0
            column_means(&grad_a[0], batch, 1.0)
            column_means(&grad_a[0], chains_a, -1.0)
            column_means(&grad_b[0], positive, 1.0)
            row_means(&grad_b[0], fields_b, n_chains, -1.0)
            largest = max(largest, sgd_step(&coupling[0, 0], &velocity_c[0, 0], &grad_c[0, 0],
                                            n_a * n_b, lr, momentum, weight_decay, l1))
            largest = max(largest, sgd_step(&field_a[0], &velocity_a[0], &grad_a[0], n_a, lr,
                                            momentum, weight_decay, l1))
            largest = max(largest, sgd_step(&field_b[0], &velocity_b[0], &grad_b[0], n_b, lr,
                                            momentum, weight_decay, l1))
    return largest
