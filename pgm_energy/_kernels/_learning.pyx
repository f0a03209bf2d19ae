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
  chain per unit in unit order; continuous units of ``a``, ``kind_a``, by their inverse
  CDF: a Gaussian-Bernoulli RBM), then the layer summed in closed form replaced by its
  conditional means: ``Q_b = E[b | a = chains]`` (from the last sampling's probabilities) or,
  with ``closed_a``, ``Q_a = E[a | b = chains]``;
* gradient: ``g_C = P_a^T P_b / B - (chains or Q)_a^T (Q or chains)_b / N`` on the ``edge``
  entries, ``g_a = mean P_a - mean of the negative a``, ``g_b`` likewise;
* SGD ascent: ``v = momentum v + lr (g - weight_decay theta - l1 sign(theta))``,
  ``theta += v`` (entries of ``C`` off ``edge`` stay 0).

This is exactly what ``PCD`` (positive phase ``MeanField`` where hidden units interact) and
``SGD`` compute in Python, in one call per epoch. Every product over layer ``a`` is split at
its visible units (:class:`Layers`): one BLAS product per coupling block (``W1``, ``W2`` of a
DBM [x, h1, h2]), each small enough for BLAS's small-matrix kernels.
"""
from libc.math cimport INFINITY
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dgemm

from ._gibbs cimport continuous_units, pe_continuous, sample_layer

import numpy as np

cdef extern from "_learning.h" nogil:
    void pe_layer_means(double *field, const double *scale, const double *low, long n)
    double pe_mean_field_update(double *mean, const double *product, const double *bias,
                                const double *scale, const double *low, double damping,
                                long n)
    double pe_sgd_step(double *theta, double *velocity, const double *grad,
                       const unsigned char *on, double lr, double momentum,
                       double weight_decay, double l1, long n)


cdef void product(double *out, int ld_out, const double *a, int ld_a, bint transpose_a,
                  const double *b, int ld_b, bint transpose_b, int m, int n, int inner,
                  double alpha, double beta) noexcept nogil:
    """out (m, n) <- alpha op(a) @ op(b) + beta out, all row-major with leading dimensions
    ``ld_*``; ``op(a)`` (m, inner) is ``a`` or, with ``transpose_a``, the transpose of
    ``a`` (inner, m); ``op(b)`` (inner, n) likewise. Row-major ``out`` is column-major
    ``out^T = op(b)^T op(a)^T``, one dgemm."""
    cdef char *op_a = b"T" if transpose_a else b"N"
    cdef char *op_b = b"T" if transpose_b else b"N"
    if m == 0 or n == 0:
        return
    dgemm(op_b, op_a, &n, &m, &inner, &alpha, <double *> b, &ld_b, <double *> a, &ld_a,
          &beta, out, &ld_out)


cdef void fill_rows(double *out, Py_ssize_t m, Py_ssize_t n, Py_ssize_t ld,
                    const double *row) noexcept nogil:
    """Every row of out (m, n; leading dimension ld) <- row."""
    cdef Py_ssize_t r
    for r in range(m):
        memcpy(&out[r * ld], row, n * sizeof(double))


cdef void transpose(double[:, ::1] out, const double[:, ::1] matrix) noexcept nogil:
    """out (n, m) <- matrix (m, n) transposed."""
    cdef Py_ssize_t i, j
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            out[j, i] = matrix[i, j]


cdef void layer_means_by_unit(double[:, ::1] probabilities, const double[::1] scale,
                              const double[::1] low, Py_ssize_t n_chains) noexcept nogil:
    """probabilities (n, >= n_chains), unit by unit, P(on) -> E[unit] = low + scale P, in
    place (first n_chains columns)."""
    cdef Py_ssize_t c, k
    for k in range(probabilities.shape[0]):
        for c in range(n_chains):
            probabilities[k, c] = low[k] + scale[k] * probabilities[k, c]


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


cdef class Layers:
    """The scratch of one epoch and the products of its layers, split at ``cut`` (the
    visible units of ``a``, then its hidden ones): one BLAS product per part, so that each
    is a product of a coupling block (for a DBM, of ``W1``, of ``W2``), in the forms BLAS
    runs fastest at these sizes (never op(b)^T untransposed with op(a)^T transposed).

    ``coupling_t`` (n_b, n_a) is the coupling matrix transposed (kept by :meth:`retranspose`
    where ``a`` has hidden units or the negative phase sums ``a``)."""
    cdef Py_ssize_t n_a, n_b, cuts[3]
    cdef bint transposed
    cdef double[:, ::1] coupling_t
    # mean field: tiled (batch, n) unit domains and fields, contiguous means and products
    cdef double[:, ::1] scale_b, low_b, scale_h, low_h, field_h, base_b, work_b, work_h, mu_h

    def __init__(self, Py_ssize_t n_a, Py_ssize_t n_b, Py_ssize_t n_visible,
                 Py_ssize_t batch_size, bint transposed, const double[::1] scale_a,
                 const double[::1] low_a, const double[::1] scale_b,
                 const double[::1] low_b):
        cdef Py_ssize_t n_h = n_a - n_visible
        self.n_a, self.n_b, self.transposed = n_a, n_b, transposed
        self.cuts[0], self.cuts[1], self.cuts[2] = 0, n_visible, n_a
        self.coupling_t = np.empty((n_b if transposed else 1, n_a if transposed else 1))
        tile = lambda row: (np.tile(np.asarray(row), (batch_size, 1)) if len(row)
                            else np.zeros((batch_size, 1)))
        self.scale_b, self.low_b = tile(scale_b), tile(low_b)
        self.scale_h, self.low_h = tile(scale_a[n_visible:]), tile(low_a[n_visible:])
        self.field_h = np.empty((batch_size, max(n_h, 1)))
        self.mu_h = np.empty((batch_size, max(n_h, 1)))
        self.work_h = np.empty((batch_size, max(n_h, 1)))
        self.base_b = np.empty((batch_size, n_b))
        self.work_b = np.empty((batch_size, n_b))

    cdef void retranspose(self, const double[:, ::1] coupling) noexcept nogil:
        if self.transposed:
            transpose(self.coupling_t, coupling)

    cdef void fields_a_by_unit(self, double[:, ::1] out, const double[::1] field,
                               double[:, ::1] chains_b,
                               const double[:, ::1] coupling) noexcept nogil:
        """out (n_a, >= n_chains) <- field + coupling @ chains_b^T, unit by unit (every
        column set: the field alone beyond the chains)."""
        cdef int p, lo, hi, n_chains = chains_b.shape[0], ld = out.shape[1]
        cdef Py_ssize_t k
        for k in range(self.n_a):
            for p in range(ld):
                out[k, p] = field[k]
        if not self.transposed:
            product(&out[0, 0], ld, &coupling[0, 0], self.n_b, False, &chains_b[0, 0],
                    self.n_b, True, self.n_a, n_chains, self.n_b, 1.0, 1.0)
            return
        for p in range(2):
            lo, hi = self.cuts[p], self.cuts[p + 1]
            if hi > lo:         # (an empty part: no address inside the arrays)
                product(&out[lo, 0], ld, &self.coupling_t[0, lo], self.n_a, True,
                        &chains_b[0, 0], self.n_b, True, hi - lo, n_chains, self.n_b, 1.0,
                        1.0)

    cdef void fields_b_by_unit(self, double[:, ::1] out, const double[::1] field,
                               double[:, ::1] chains_a,
                               const double[:, ::1] coupling) noexcept nogil:
        """out (n_b, >= n_chains) <- field + coupling^T @ chains_a^T, unit by unit."""
        cdef int p, lo, hi, n_chains = chains_a.shape[0], ld = out.shape[1]
        cdef Py_ssize_t k
        for k in range(self.n_b):
            for p in range(ld):
                out[k, p] = field[k]
        for p in range(2):
            lo, hi = self.cuts[p], self.cuts[p + 1]
            if hi > lo:
                product(&out[0, 0], ld, &coupling[lo, 0], self.n_b, True, &chains_a[0, lo],
                        self.n_a, True, self.n_b, n_chains, hi - lo, 1.0, 1.0)

    cdef void means_a(self, double[:, ::1] out, const double[::1] field,
                      double[:, ::1] rows_b, const double[::1] scale,
                      const double[::1] low) noexcept nogil:
        """out (m, n_a) <- E[a | b = rows_b (m, n_b)] (needs ``coupling_t``)."""
        cdef int p, lo, hi, m = rows_b.shape[0]
        cdef Py_ssize_t r
        fill_rows(&out[0, 0], m, self.n_a, self.n_a, &field[0])
        for p in range(2):
            lo, hi = self.cuts[p], self.cuts[p + 1]
            if hi > lo:
                product(&out[0, lo], self.n_a, &rows_b[0, 0], self.n_b, False,
                        &self.coupling_t[0, lo], self.n_a, False, m, hi - lo, self.n_b, 1.0,
                        1.0)
        for r in range(m):
            pe_layer_means(&out[r, 0], &scale[0], &low[0], self.n_a)

    cdef void outer(self, double[:, ::1] out, double[:, ::1] rows_a, double[:, ::1] rows_b,
                    double alpha, double beta) noexcept nogil:
        """out (n_a, n_b) <- alpha rows_a^T rows_b + beta out (rows (m, n_a), (m, n_b))."""
        cdef int p, lo, hi, m = rows_a.shape[0]
        for p in range(2):
            lo, hi = self.cuts[p], self.cuts[p + 1]
            if hi > lo:
                product(&out[lo, 0], self.n_b, &rows_a[0, lo], self.n_a, True,
                        &rows_b[0, 0], self.n_b, False, hi - lo, self.n_b, m, alpha, beta)

    cdef void mean_field(self, double[:, ::1] pa, double[:, ::1] pb,
                         const double[:, ::1] coupling, const double[::1] field_a,
                         const double[::1] field_b, const double[::1] scale_b,
                         const double[::1] low_b, double tol, int max_iter, double damping,
                         bint b_first) noexcept nogil:
        """The positive phase's hidden means of the batch ``pa[:, :cut]`` (the module
        docstring): ``pa[:, cut:]`` and ``pb`` (m, n_b) are written."""
        cdef int m = pa.shape[0], n_a = self.n_a, n_b = self.n_b
        cdef int n_v = self.cuts[1], n_h = n_a - n_v
        cdef int n_iter = 0, step
        cdef Py_ssize_t r
        cdef bint same
        cdef double change = INFINITY
        # b given the visible units (the hidden ones of a at 0): exact when a has none
        fill_rows(&self.base_b[0, 0], m, n_b, n_b, &field_b[0])
        product(&self.base_b[0, 0], n_b, &pa[0, 0], n_a, False, &coupling[0, 0], n_b, False,
                m, n_b, n_v, 1.0, 1.0)
        memcpy(&pb[0, 0], &self.base_b[0, 0], m * n_b * sizeof(double))
        for r in range(m):
            pe_layer_means(&pb[r, 0], &scale_b[0], &low_b[0], n_b)
        if n_h == 0:
            return
        # the hidden units of a given b at 0: one row for all
        fill_rows(&self.field_h[0, 0], m, n_h, n_h, &field_a[n_v])
        memcpy(&self.mu_h[0, 0], &field_a[n_v], n_h * sizeof(double))
        pe_layer_means(&self.mu_h[0, 0], &self.scale_h[0, 0], &self.low_h[0, 0], n_h)
        if m > 1:
            fill_rows(&self.mu_h[1, 0], m - 1, n_h, n_h, &self.mu_h[0, 0])
        while n_iter < max_iter and not change < tol:
            change = 0.0
            for step in range(2):
                if (step == 0) == b_first:      # b given a's hidden means
                    # (at first, the start's: the same in every row, one row's product)
                    same = n_iter == 0 and b_first
                    product(&self.work_b[0, 0], n_b, &self.mu_h[0, 0], n_h, False,
                            &coupling[n_v, 0], n_b, False, 1 if same else m, n_b, n_h, 1.0,
                            0.0)
                    if same and m > 1:
                        fill_rows(&self.work_b[1, 0], m - 1, n_b, n_b, &self.work_b[0, 0])
                    change = max(change, pe_mean_field_update(
                        &pb[0, 0], &self.work_b[0, 0], &self.base_b[0, 0],
                        &self.scale_b[0, 0], &self.low_b[0, 0], damping, m * n_b))
                else:                           # a's hidden units given b
                    product(&self.work_h[0, 0], n_h, &pb[0, 0], n_b, False,
                            &self.coupling_t[0, n_v], n_a, False, m, n_h, n_b, 1.0, 0.0)
                    change = max(change, pe_mean_field_update(
                        &self.mu_h[0, 0], &self.work_h[0, 0], &self.field_h[0, 0],
                        &self.scale_h[0, 0], &self.low_h[0, 0], damping, m * n_h))
            n_iter += 1
        for r in range(m):
            memcpy(&pa[r, n_v], &self.mu_h[r, 0], n_h * sizeof(double))


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
    const unsigned char[:, ::1] edge,  # IN (n_a, n_b): 1 where C is a parameter, 0 where it
                                       #    stays 0
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
    const uint8_t[::1] kind_a=None,  # IN None, or (n_a,) slot kinds of a (continuous units,
    const double[:, ::1] param_a=None,  #    as sampling.slot_kinds), and (n_a, 4) parameters
):
    """One epoch of minibatch PCD-k + SGD; returns the largest |gradient| entry seen."""
    cdef Py_ssize_t n_a = coupling.shape[0], n_b = coupling.shape[1]
    cdef Py_ssize_t n_chains = chains_a.shape[0], n_rows = order.shape[0]
    cdef Py_ssize_t n_visible = data.shape[1], n_hidden = n_a - data.shape[1]
    cdef Py_ssize_t lo, r, j, size, sweep
    cdef double largest = 0.0
    if (n_visible > n_a or n_visible < 1 or chains_a.shape[1] != n_a or n_b < 1
            or chains_b.shape[1] != n_b or chains_b.shape[0] != n_chains
            or scale_a.shape[0] != n_a or low_a.shape[0] != n_a or scale_b.shape[0] != n_b
            or low_b.shape[0] != n_b or field_a.shape[0] != n_a or field_b.shape[0] != n_b
            or velocity_c.shape[0] != n_a or velocity_c.shape[1] != n_b
            or velocity_a.shape[0] != n_a or velocity_b.shape[0] != n_b
            or batch_size < 1 or streams.shape[1] < (n_chains + 7) // 8 * 8 or k < 1
            or edge.shape[0] != n_a or edge.shape[1] != n_b
            or (n_hidden and (max_iter < 1 or not tol > 0 or not 0 <= damping < 1))
            or (kind_a is not None and (kind_a.shape[0] != n_a or param_a is None
                                        or param_a.shape[0] != n_a or closed_a))):
        raise ValueError("pcd_sgd_epoch: inconsistent arguments")
    cdef pe_continuous cont_a = continuous_units(kind_a, param_a, 0)
    cdef const pe_continuous *units_a = &cont_a if kind_a is not None else NULL
    for r in range(n_rows):
        if order[r] < 0 or order[r] >= data.shape[0]:
            raise ValueError("pcd_sgd_epoch: order names a row outside the data")
    cdef unsigned char[::1] every = np.ones(max(n_a, n_b), np.uint8)
    cdef Layers layers = Layers(n_a, n_b, n_visible, batch_size, n_hidden > 0 or closed_a,
                                scale_a, low_a, scale_b, low_b)
    cdef double[:, ::1] batch_full = np.empty((batch_size, n_a))
    cdef double[:, ::1] positive_full = np.empty((batch_size, n_b))
    cdef Py_ssize_t n_padded = (n_chains + 7) // 8 * 8     # the sampler's lanes
    cdef double[:, ::1] fields_a = np.empty((n_a, n_padded))   # unit by unit
    cdef double[:, ::1] fields_b = np.empty((n_b, n_padded))
    cdef double[:, ::1] closed = np.empty((n_chains if closed_a else 1, n_a))
    cdef double[:, ::1] grad_c = np.empty((n_a, n_b))
    cdef double[::1] grad_a = np.empty(n_a)
    cdef double[::1] grad_b = np.empty(n_b)
    cdef double[::1] beta = np.ones(n_padded)
    cdef unsigned char[::1] free_a = np.ones(n_a, np.uint8)
    cdef unsigned char[::1] free_b = np.ones(n_b, np.uint8)
    cdef double[:, ::1] batch, positive
    for lo in range(0, n_rows, batch_size):
        size = min(batch_size, n_rows - lo)
        batch, positive = batch_full[:size], positive_full[:size]
        with nogil:
            for r in range(size):
                for j in range(n_visible):
                    batch[r, j] = data[order[lo + r], j]
            layers.retranspose(coupling)
            layers.mean_field(batch, positive, coupling, field_a, field_b, scale_b, low_b,
                              tol, max_iter, damping, b_first)
            for sweep in range(k):
                layers.fields_a_by_unit(fields_a, field_a, chains_b, coupling)
                sample_layer(chains_a, fields_a, scale_a, low_a, free_a, beta, streams,
                             n_threads, units_a)
                layers.fields_b_by_unit(fields_b, field_b, chains_a, coupling)
                sample_layer(chains_b, fields_b, scale_b, low_b, free_b, beta, streams,
                             n_threads, NULL)
            for j in range(n_a):
                grad_a[j] = 0.0
            for j in range(n_b):
                grad_b[j] = 0.0
            layers.outer(grad_c, batch, positive, 1.0 / size, 0.0)
            column_means(&grad_a[0], batch, 1.0)
            column_means(&grad_b[0], positive, 1.0)
            if closed_a:
                layers.means_a(closed, field_a, chains_b, scale_a, low_a)
                layers.outer(grad_c, closed, chains_b, -1.0 / n_chains, 1.0)
                column_means(&grad_a[0], closed, -1.0)
                column_means(&grad_b[0], chains_b, -1.0)
            else:
                layer_means_by_unit(fields_b, scale_b, low_b, n_chains)
                # grad_c -= chains_a^T Q_b / n_chains, Q_b (n_b, >= n_chains) unit by unit
                product(&grad_c[0, 0], n_b, &chains_a[0, 0], n_a, True, &fields_b[0, 0],
                        n_padded, True, n_a, n_b, n_chains, -1.0 / n_chains, 1.0)
                column_means(&grad_a[0], chains_a, -1.0)
                row_means(&grad_b[0], fields_b, n_chains, -1.0)
            largest = max(largest, pe_sgd_step(&coupling[0, 0], &velocity_c[0, 0],
                                               &grad_c[0, 0], &edge[0, 0], lr, momentum,
                                               weight_decay, l1, n_a * n_b))
            largest = max(largest, pe_sgd_step(&field_a[0], &velocity_a[0], &grad_a[0],
                                               &every[0], lr, momentum, weight_decay, l1, n_a))
            largest = max(largest, pe_sgd_step(&field_b[0], &velocity_b[0], &grad_b[0],
                                               &every[0], lr, momentum, weight_decay, l1, n_b))
    return largest

