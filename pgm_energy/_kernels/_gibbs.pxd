# The block-sweep building blocks that _learning.pyx reuses.
from libc.stdint cimport uint8_t, uint64_t

cdef extern from "_gibbs.h" nogil:
    ctypedef struct pe_special:
        double (*log_ndtr)(double) noexcept nogil
        double (*ndtri_exp)(double) noexcept nogil
        double (*erfcx)(double) noexcept nogil
    ctypedef struct pe_continuous:
        const uint8_t *kind
        const double *param
        pe_special special

cdef pe_continuous continuous_units(const uint8_t[::1] kind, const double[:, ::1] param,
                                    Py_ssize_t start) noexcept

cdef void sample_layer(double[:, ::1] value, double[:, ::1] fields, const double[::1] scale,
                       const double[::1] low, const unsigned char[::1] free_units,
                       const double[::1] beta, uint64_t[:, ::1] streams,
                       int n_threads, const pe_continuous *cont) noexcept nogil
