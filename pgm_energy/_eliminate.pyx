"""Log-space factor contraction: the one kernel of variable elimination.

One elimination step sums a unit ``v`` out of the log-space tables ``T_f`` that mention it.
Over the joint axes ``(v, o_1, ..., o_n)`` (``v`` first, the output axes after it) every
table is addressed through a stride per axis (0 where the table does not have that axis), and

    forward:   out[o] = log sum_{x_v} exp(S(x_v, o)),      S(x_v, o) = sum_f T_f[x_v, o]
    backward:  joint[x_v, o] = marginal[o] * exp(S(x_v, o) - out[o])

(``backward`` turns the marginal of the output scope into the marginal of the joint scope,
from which the Python side reads the marginals of every input table by summing axes).

The output index runs in blocks: the trailing output axes (``n_inner`` entries) form one block,
the leading ones pick the block. Per block each table is read at precomputed inner offsets,
as a contiguous run, or as one constant, so the inner loops are plain array adds; blocks are
independent and run on OpenMP threads (``prange``), so the result does not depend on the
thread count. Cardinalities are general (``card``), binary axes take the vectorised
``logaddexp`` through ``pe_softplus_array``.
"""
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, exp, log
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

import numpy as np

cdef extern from "_vecmath.h" nogil:
    void pe_softplus_array(const double *x, double *out, long n)

cdef enum:
    GATHER = 0        # table read at inner_offset[f, k]
    CONTIGUOUS = 1    # table read at base + k
    CONSTANT = 2      # table constant over the block


cdef struct Contraction:
    int n_tables
    int n_axes                  # 1 + number of output axes
    int n_outer                 # output axes that pick the block (axes 1 .. n_outer)
    int64_t n_inner             # output entries per block
    const double **table        # (n_tables,) log tables
    const int64_t *stride       # (n_tables, n_axes) row-major
    const int64_t *card         # (n_axes,)
    const int64_t *inner_offset # (n_tables, n_inner)
    const int *kind             # (n_tables,) GATHER / CONTIGUOUS / CONSTANT


cdef void block_sums(const Contraction *C, int64_t block, double *acc) noexcept nogil:
    """acc[x_v * n_inner + k] = S(x_v, block entry k) for every state x_v of the summed unit."""
    cdef int f, a
    cdef int64_t k, x, rest, base, digit, card_v = C.card[0], n = C.n_inner
    cdef const double *t
    cdef const int64_t *off
    cdef double *row
    cdef double c
    for k in range(card_v * n):
        acc[k] = 0.0
    for f in range(C.n_tables):
        base = 0
        rest = block
        for a in range(C.n_outer, 0, -1):
            digit = rest % C.card[a]
            rest = rest // C.card[a]
            base += digit * C.stride[f * C.n_axes + a]
        off = C.inner_offset + f * n
        for x in range(card_v):
            t = C.table[f] + base + x * C.stride[f * C.n_axes]
            row = acc + x * n
            if C.kind[f] == CONTIGUOUS:
                for k in range(n):
                    row[k] += t[k]
            elif C.kind[f] == CONSTANT:
                c = t[0]
                for k in range(n):
                    row[k] += c
            else:
                for k in range(n):
                    row[k] += t[off[k]]


cdef void log_sum_block(const Contraction *C, double *acc, double *out) noexcept nogil:
    """out[k] = log sum_x exp(acc[x * n_inner + k]); acc is overwritten."""
    cdef int64_t k, x, card_v = C.card[0], n = C.n_inner
    cdef double *a = acc
    cdef double *b = acc + n
    cdef double hi, total
    if card_v == 2:
        for k in range(n):          # logaddexp(a, b) = max + softplus(min - max)
            hi = a[k] if a[k] > b[k] else b[k]
            b[k] = (b[k] if a[k] > b[k] else a[k]) - hi
            a[k] = hi
        pe_softplus_array(b, b, n)
        for k in range(n):
            out[k] = a[k] + b[k] if a[k] > -INFINITY else -INFINITY
        return
    for k in range(n):
        hi = -INFINITY
        for x in range(card_v):
            if acc[x * n + k] > hi:
                hi = acc[x * n + k]
        total = 0.0
        if hi > -INFINITY:
            for x in range(card_v):
                total += exp(acc[x * n + k] - hi)
        out[k] = hi + log(total) if hi > -INFINITY else -INFINITY


cdef void joint_block(const Contraction *C, const double *acc, const double *out,
                      const double *marginal, double *joint, int64_t n_out) noexcept nogil:
    """joint[x * n_out + k] = marginal[k] * exp(acc[x * n_inner + k] - out[k])."""
    cdef int64_t k, x, n = C.n_inner
    for x in range(C.card[0]):
        for k in range(n):
            joint[x * n_out + k] = marginal[k] * exp(acc[x * n + k] - out[k])


def contract(
    list tables,                            # IN  n_tables C-contiguous float64 log tables
    const int64_t[:, ::1] stride,           # IN  (n_tables, n_axes) strides over the joint axes
    const int64_t[::1] card,                # IN  (n_axes,) states per axis; axis 0 is summed
    int n_inner_axes,                       # IN  trailing output axes that form a block
    const int64_t[:, ::1] inner_offset,     # IN  (n_tables, n_inner) offsets within a block
    const int[::1] kind,                    # IN  (n_tables,) GATHER, CONTIGUOUS or CONSTANT
    double[::1] out,                        # IN/OUT (n_out,) log sums (written when forward)
    const double[::1] marginal=None,        # IN  (n_out,) marginal of the output (backward)
    double[::1] joint=None,                 # OUT (card[0] * n_out,) joint marginal (backward)
    int n_threads=1,
):
    """Sum axis 0 out of the log tables (forward), or spread a marginal back (backward).

    Forward (``marginal is None``): ``out[o] = log sum_x exp(sum_f T_f[x, o])``.
    Backward: ``joint[x, o] = marginal[o] exp(sum_f T_f[x, o] - out[o])`` with ``out`` from
    the forward call. Blocks are split over ``n_threads`` OpenMP threads.
    """
    cdef Contraction C
    cdef int n_tables = len(tables), n_axes = card.shape[0], f
    cdef int64_t n_out = out.shape[0], n_blocks, block, n_inner
    cdef bint backward = marginal is not None
    cdef const double[::1] view
    cdef double *acc
    cdef int failed = 0
    if stride.shape[0] != n_tables or stride.shape[1] != n_axes or kind.shape[0] != n_tables:
        raise ValueError("contract: stride and kind must have one row per table")
    if n_inner_axes < 0 or n_inner_axes > n_axes - 1:
        raise ValueError("contract: n_inner_axes out of range")
    n_inner = inner_offset.shape[1]
    if inner_offset.shape[0] != n_tables or n_inner < 1 or n_out % n_inner:
        raise ValueError("contract: inner_offset does not tile the output")
    if backward and (marginal.shape[0] != n_out or joint is None
                     or joint.shape[0] != card[0] * n_out):
        raise ValueError("contract: backward needs marginal (n_out,) and joint (card[0] * n_out,)")
    pointers = <const double **> malloc((n_tables + 1) * sizeof(double *))
    if pointers == NULL:
        raise MemoryError()
    try:
        for f in range(n_tables):
            view = tables[f]
            pointers[f] = &view[0]
        C.n_tables = n_tables
        C.n_axes = n_axes
        C.n_outer = n_axes - 1 - n_inner_axes
        C.n_inner = n_inner
        C.table = pointers
        C.stride = &stride[0, 0] if n_tables else NULL
        C.card = &card[0]
        C.inner_offset = &inner_offset[0, 0] if n_tables else NULL
        C.kind = &kind[0] if n_tables else NULL
        n_blocks = n_out // n_inner
        with nogil, parallel(num_threads=max(1, min(n_threads, n_blocks))):
            acc = <double *> malloc(card[0] * n_inner * sizeof(double))
            for block in prange(n_blocks, schedule="static"):
                if acc == NULL:
                    failed += 1
                    continue
                block_sums(&C, block, acc)
                if backward:
                    joint_block(&C, acc, &out[block * n_inner], &marginal[block * n_inner],
                                &joint[block * n_inner], n_out)
                else:
                    log_sum_block(&C, acc, &out[block * n_inner])
            free(acc)
    finally:
        free(pointers)
    if failed:
        raise MemoryError("contract: could not allocate a block buffer")
