# The block-sweep building block that _learning.pyx reuses.
from libc.stdint cimport uint64_t

cdef void sample_layer(double[:, ::1] value, double[:, ::1] fields, const double[::1] scale,
                       const double[::1] low, const unsigned char[::1] free_units,
                       const double[::1] beta, uint64_t[:, ::1] streams,
                       int n_threads) noexcept nogil
