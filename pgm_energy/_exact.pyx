"""Exact enumeration kernel: Gray-code walk with incremental energies and an analytic sum.

The problem is a binary energy over enumerated units ``S`` (``m`` of them) and analytic units
``A`` that are conditionally independent given ``S`` (no coupling inside ``A``), scaled so that
the log weight of a state ``x_S`` summed over ``x_A`` is

    lw(x_S) = sum_j field_s[j] x_j + sum_{j<k in S} J_jk x_j x_k + sum_a softplus(f_a(x_S)),
    f_a(x_S) = field_a[a] + sum_j J_aj x_j.

The states of ``S`` are split into pieces: the top ``n_prefix`` units of ``S`` are fixed to the
bits of the piece number and the other ``m - n_prefix`` run through a Gray code, one unit flip
per state, updating the local fields of its neighbours only (O(degree) per state plus the
softplus of the changed analytic fields). Every 4096 states the fields are recomputed from
scratch so rounding cannot drift. Pieces are independent (DESIGN.md "Beyond one machine"):
they run on OpenMP threads and their results combine exactly in piece order, so the answer
does not depend on the thread count.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN, exp
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free

import numpy as np

cdef extern from "_vecmath.h" nogil:
    double pe_softplus(double x)
    void pe_update_softplus(double *field, double *sp, const double *weight, double delta,
                            long n)
    void pe_softplus_array(const double *x, double *out, long n)
    double pe_sum(const double *x, long n)
    void pe_sigmoid_array(const double *x, double *out, long n)

cdef enum:
    RESYNC_MASK = 4095


cdef struct Problem:
    int m                       # enumerated units
    int n_a                     # analytic units
    const double *field_s       # (m,)
    const int64_t *ss_ptr       # (m+1,) CSR of S-S couplings, both directions
    const int32_t *ss_idx
    const double *ss_w
    const int32_t *ss_eid       # edge id of each entry (for pair moments)
    const double *field_a       # (n_a,)
    const int64_t *sa_ptr       # (m+1,) CSR rows of S, columns in A
    const int32_t *sa_idx
    const double *sa_w
    const int32_t *sa_eid
    const int32_t *sa_first     # (m,) first column of a row whose columns are consecutive, else -1
    const int32_t *gen_bit      # (m,) bit of the unit in the generic-term code, else -1
    const double *gen_table     # (2^g,) log weight of the generic terms per code, or NULL


cdef struct Scratch:
    unsigned char *x            # (m,) state of S
    double *g                   # (m,) local field of each S unit from field_s and S neighbours
    double *f                   # (n_a,) fields of A
    double *sp                  # (n_a,) softplus(f)
    double *sig                 # (n_a,) sigmoid(f), moments only


cdef int scratch_alloc(Scratch *s, int m, int n_a) noexcept nogil:
    s.x = <unsigned char *> calloc(m + 1, sizeof(unsigned char))
    s.g = <double *> calloc(m + 1, sizeof(double))
    s.f = <double *> calloc(n_a + 1, sizeof(double))
    s.sp = <double *> calloc(n_a + 1, sizeof(double))
    s.sig = <double *> calloc(n_a + 1, sizeof(double))
    return s.x != NULL and s.g != NULL and s.f != NULL and s.sp != NULL and s.sig != NULL


cdef void scratch_free(Scratch *s) noexcept nogil:
    free(s.x)
    free(s.g)
    free(s.f)
    free(s.sp)
    free(s.sig)


cdef double resync(const Problem *P, Scratch *s) noexcept nogil:
    """Recompute all fields from the state; return the S part of the log weight."""
    cdef int j, a
    cdef int64_t q
    cdef double lw_s = 0.0
    for j in range(P.m):
        s.g[j] = P.field_s[j]
    for a in range(P.n_a):
        s.f[a] = P.field_a[a]
    for j in range(P.m):
        if s.x[j]:
            for q in range(P.ss_ptr[j], P.ss_ptr[j + 1]):
                s.g[P.ss_idx[q]] += P.ss_w[q]
            for q in range(P.sa_ptr[j], P.sa_ptr[j + 1]):
                s.f[P.sa_idx[q]] += P.sa_w[q]
    for j in range(P.m):
        if s.x[j]:
            lw_s += 0.5 * (P.field_s[j] + s.g[j])
    pe_softplus_array(s.f, s.sp, P.n_a)
    return lw_s


cdef double flip(const Problem *P, Scratch *s, int j, double lw_s) noexcept nogil:
    """Flip unit j of S; update neighbour fields; return the new S part of the log weight."""
    cdef double d
    cdef int64_t q, start = P.sa_ptr[j], length = P.sa_ptr[j + 1] - P.sa_ptr[j]
    cdef int a, first = P.sa_first[j]
    if s.x[j]:
        lw_s -= s.g[j]
        s.x[j] = 0
        d = -1.0
    else:
        lw_s += s.g[j]
        s.x[j] = 1
        d = 1.0
    for q in range(P.ss_ptr[j], P.ss_ptr[j + 1]):
        s.g[P.ss_idx[q]] += d * P.ss_w[q]
    if first >= 0:
        pe_update_softplus(s.f + first, s.sp + first, P.sa_w + start, d, length)
    else:
        for q in range(start, start + length):
            a = P.sa_idx[q]
            s.f[a] += d * P.sa_w[q]
            s.sp[a] = pe_softplus(s.f[a])
    return lw_s


cdef void accumulate_moments(const Problem *P, Scratch *s, double w,
                             double *unit_acc, double *edge_acc) noexcept nogil:
    """Add w * x_j, w * x_j x_k and w * E[x_a | x_S], w * x_j E[x_a | x_S]."""
    cdef int j, a
    cdef int64_t q
    if P.n_a:
        pe_sigmoid_array(s.f, s.sig, P.n_a)
        for a in range(P.n_a):
            unit_acc[P.m + a] += w * s.sig[a]
    for j in range(P.m):
        if s.x[j]:
            unit_acc[j] += w
            for q in range(P.ss_ptr[j], P.ss_ptr[j + 1]):
                if P.ss_idx[q] > j and s.x[P.ss_idx[q]]:
                    edge_acc[P.ss_eid[q]] += w
            for q in range(P.sa_ptr[j], P.sa_ptr[j + 1]):
                edge_acc[P.sa_eid[q]] += w * s.sig[P.sa_idx[q]]


cdef inline int lowest_bit(uint64_t t) noexcept nogil:
    cdef int j = 0
    while not (t & 1):
        t >>= 1
        j += 1
    return j


cdef void walk_piece(const Problem *P, int n_free, uint64_t prefix, bint moments, double shift,
                     double *out, double *unit_acc, double *edge_acc,
                     double *code_acc) noexcept nogil:
    """Enumerate one piece. out = (max log weight, sum exp(lw - max)); NaN on no memory.

    With ``moments``, accumulate exp(lw - shift)-weighted moments instead (and the weight of
    each code of the generic-term units in ``code_acc``).
    """
    cdef Scratch s
    cdef int j
    cdef uint64_t t, code = 0, n_states = (<uint64_t> 1) << n_free
    cdef double lw_s, lw, w, top = -INFINITY, total = 0.0
    if not scratch_alloc(&s, P.m, P.n_a):
        scratch_free(&s)
        out[0] = NAN
        return
    for j in range(P.m):
        s.x[j] = (prefix >> (j - n_free)) & 1 if j >= n_free else 0
        if s.x[j] and P.gen_bit[j] >= 0:
            code |= (<uint64_t> 1) << P.gen_bit[j]
    lw_s = resync(P, &s)
    for t in range(n_states):
        if t:
            j = lowest_bit(t)
            lw_s = flip(P, &s, j, lw_s)
            if P.gen_bit[j] >= 0:
                code ^= (<uint64_t> 1) << P.gen_bit[j]
            if (t & RESYNC_MASK) == 0:
                lw_s = resync(P, &s)
        lw = lw_s + pe_sum(s.sp, P.n_a)
        if P.gen_table != NULL:
            lw += P.gen_table[code]
        if moments:
            w = exp(lw - shift)
            if w > 0.0:
                accumulate_moments(P, &s, w, unit_acc, edge_acc)
                if code_acc != NULL:
                    code_acc[code] += w
        elif lw > top:
            total = total * exp(top - lw) + 1.0
            top = lw
        else:
            total += exp(lw - top)
    out[0] = top
    out[1] = total
    scratch_free(&s)


def enumerate_pieces(
    const double[::1] field_s,      # IN (m,)
    const int64_t[::1] ss_ptr,      # IN (m+1,)
    const int32_t[::1] ss_idx,      # IN
    const double[::1] ss_w,         # IN
    const int32_t[::1] ss_eid,      # IN
    const double[::1] field_a,      # IN (n_a,)
    const int64_t[::1] sa_ptr,      # IN (m+1,)
    const int32_t[::1] sa_idx,      # IN
    const double[::1] sa_w,         # IN
    const int32_t[::1] sa_eid,      # IN
    const int32_t[::1] sa_first,    # IN (m,)
    const int32_t[::1] gen_bit,     # IN (m,) bit in the generic code, -1 for others
    const double[::1] gen_table,    # IN (2^g,) generic log weights per code; empty: none
    int n_edges,
    int n_prefix,
    uint64_t piece_start,
    uint64_t piece_stop,
    bint moments=False,
    double shift=0.0,
    int n_threads=1,
):
    """Run pieces ``piece_start <= p < piece_stop`` of the enumeration.

    Returns ``(top, total)`` arrays, one entry per piece (``log sum = top + log total``),
    or, with ``moments``, ``(unit_acc, edge_acc, code_acc)`` per piece: sums of
    ``exp(lw - shift)`` times ``x_j`` / ``E[x_a | x_S]`` (units S then A), times the pair
    products for each edge id, and per code of the generic-term units.
    """
    cdef Problem P
    cdef int m = field_s.shape[0], n_a = field_a.shape[0]
    cdef int n_free = m - n_prefix
    cdef Py_ssize_t p, n_pieces = <Py_ssize_t> (piece_stop - piece_start)
    if n_prefix < 0 or n_free < 0 or n_free > 62 or piece_stop > ((<uint64_t> 1) << n_prefix):
        raise ValueError("enumerate_pieces: invalid piece range")
    if (ss_ptr.shape[0] != m + 1 or sa_ptr.shape[0] != m + 1 or sa_first.shape[0] != m
            or gen_bit.shape[0] != m):
        raise ValueError("enumerate_pieces: inconsistent problem arrays")
    cdef Py_ssize_t n_codes = gen_table.shape[0]
    for p in range(m):
        if gen_bit[p] >= 0 and (gen_bit[p] > 62 or (<uint64_t> 1) << gen_bit[p] >= n_codes):
            raise ValueError("enumerate_pieces: gen_bit does not fit gen_table")
    P.m = m
    P.n_a = n_a
    P.field_s = &field_s[0] if m else NULL
    P.ss_ptr = &ss_ptr[0]
    P.ss_idx = &ss_idx[0] if ss_idx.shape[0] else NULL
    P.ss_w = &ss_w[0] if ss_w.shape[0] else NULL
    P.ss_eid = &ss_eid[0] if ss_eid.shape[0] else NULL
    P.field_a = &field_a[0] if n_a else NULL
    P.sa_ptr = &sa_ptr[0]
    P.sa_idx = &sa_idx[0] if sa_idx.shape[0] else NULL
    P.sa_w = &sa_w[0] if sa_w.shape[0] else NULL
    P.sa_eid = &sa_eid[0] if sa_eid.shape[0] else NULL
    P.sa_first = &sa_first[0] if m else NULL
    P.gen_bit = &gen_bit[0] if m else NULL
    P.gen_table = &gen_table[0] if n_codes else NULL

    summary = np.zeros((n_pieces, 2))
    unit_acc = np.zeros((n_pieces if moments else 0, m + n_a))
    edge_acc = np.zeros((n_pieces if moments else 0, n_edges))
    code_acc = np.zeros((n_pieces if moments else 0, n_codes))
    cdef double[:, ::1] out = summary
    cdef double[:, ::1] ua = unit_acc
    cdef double[:, ::1] ea = edge_acc
    cdef double[:, ::1] ca = code_acc
    cdef double *ua_row
    cdef double *ea_row
    cdef double *ca_row
    with nogil:
        for p in prange(n_pieces, schedule="dynamic", num_threads=max(n_threads, 1)):
            ua_row = &ua[p, 0] if moments and m + n_a else NULL
            ea_row = &ea[p, 0] if moments and n_edges else NULL
            ca_row = &ca[p, 0] if moments and n_codes else NULL
            walk_piece(&P, n_free, piece_start + p, moments, shift, &out[p, 0], ua_row, ea_row,
                       ca_row)
    if np.isnan(summary[:, 0]).any():
        raise MemoryError("exact enumeration: could not allocate scratch memory")
    if moments:
        return unit_acc, edge_acc, code_acc
    return summary[:, 0], summary[:, 1]
