"""Exact enumeration kernel: Gray-code walk with incremental energies and an analytic sum.

The problem is a binary energy over enumerated slots ``S`` (``m`` of them) and analytic slots
``A`` that are conditionally independent given ``S`` (no coupling inside ``A``), scaled so that
the log weight of a state ``x_S`` summed over ``x_A`` is

    lw(x_S) = sum_j field_s[j] x_j + sum_{j<k in S} J_jk x_j x_k + sum_a softplus(f_a(x_S))
              + sum_c log sum_{a in c} exp(f_a(x_S)),
    f_a(x_S) = field_a[a] + sum_j J_aj x_j.

A slot is a binary unit, or one value of a categorical unit (its one-hot indicator; the ``k``
slots of a categorical unit, a *site*, hold exactly one 1). ``S`` lists its ``m_b`` binary
slots first, then the slots of its categorical sites (``s_site_ptr``); ``A`` its ``n_ab``
binary slots (summed by softplus) first, then its categorical sites (``a_site_ptr``, summed
by log-sum-exp: the closed form of a product of categorical experts).

With ``maximize``, the same walk finds ``max_{x_S} lw_max(x_S)`` instead, where the analytic
slots are maximised in closed form (``max(0, f_a)`` for a binary slot, ``max_{a in c} f_a``
for a categorical site): exact MAP. Each piece keeps the first state of its walk that reaches
its maximum (a strict ``>``), so ties are broken the same way on every run.

The states of ``S`` are split into pieces: the top ``n_prefix`` binary slots and the last
``n_fixed_sites`` categorical sites are fixed by the piece number; the other binary slots run through a Gray code, one flip per state,
and after each full Gray run the categorical sites step through a reflected mixed-radix Gray
code (one site moves its value by +-1: two slot flips), so every state differs from the last
by one unit and only the fields of its neighbours change (O(degree) per state plus the
softplus of the changed analytic fields). Every 4096 states the fields are recomputed from
scratch so rounding cannot drift. Pieces are independent (DESIGN.md "Beyond one machine"):
they run on OpenMP threads and their results combine exactly in piece order, so the answer
does not depend on the thread count.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN, exp, log
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

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
    int m                       # enumerated slots
    int m_b                     # ... of which binary (the first m_b)
    int n_sc                    # categorical sites of S
    int n_walk                  # ... of which the first n_walk walk; the others are fixed
                                #     by the piece number
    const int64_t *s_site_ptr   # (n_sc+1,) their slot ranges in S
    int n_a                     # analytic slots
    int n_ab                    # ... of which binary (the first n_ab)
    int n_ac                    # categorical sites of A
    const int64_t *a_site_ptr   # (n_ac+1,) their slot ranges in A
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
    const int64_t *gen_step     # (m,) what the slot adds to the generic-term code when on
    const double *gen_table     # (n_codes,) log weight of the generic terms per code, or NULL


cdef struct Scratch:
    unsigned char *x            # (m,) state of S
    int *value                  # (n_sc,) value of each categorical site of S
    int *direction              # (n_sc,) its mixed-radix Gray direction, +1 or -1
    double *g                   # (m,) local field of each S unit from field_s and S neighbours
    double *f                   # (n_a,) fields of A
    double *sp                  # (n_a,) softplus(f)
    double *sig                 # (n_a,) sigmoid(f), moments only


cdef int scratch_alloc(Scratch *s, int m, int n_sc, int n_a) noexcept nogil:
    s.x = <unsigned char *> calloc(m + 1, sizeof(unsigned char))
    s.value = <int *> calloc(n_sc + 1, sizeof(int))
    s.direction = <int *> calloc(n_sc + 1, sizeof(int))
    s.g = <double *> calloc(m + 1, sizeof(double))
    s.f = <double *> calloc(n_a + 1, sizeof(double))
    s.sp = <double *> calloc(n_a + 1, sizeof(double))
    s.sig = <double *> calloc(n_a + 1, sizeof(double))
    return (s.x != NULL and s.value != NULL and s.direction != NULL and s.g != NULL
            and s.f != NULL and s.sp != NULL and s.sig != NULL)


cdef void scratch_free(Scratch *s) noexcept nogil:
    free(s.x)
    free(s.value)
    free(s.direction)
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


cdef inline double flip(const Problem *P, Scratch *s, int j, double lw_s) noexcept nogil:
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
    cdef int j, a, c
    cdef int64_t q
    cdef double top, total
    if P.n_a:
        pe_sigmoid_array(s.f, s.sig, P.n_ab)
        for c in range(P.n_ac):
            top = site_log_sum(s.f, P.a_site_ptr[c], P.a_site_ptr[c + 1])
            for a in range(P.a_site_ptr[c], P.a_site_ptr[c + 1]):
                s.sig[a] = exp(s.f[a] - top)
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


cdef inline double site_log_sum(const double *f, int64_t lo, int64_t hi) noexcept nogil:
    """``log sum_{a in [lo, hi)} exp(f[a])``, the closed form of one categorical site."""
    cdef int64_t a
    cdef double top = f[lo], total = 0.0
    for a in range(lo + 1, hi):
        if f[a] > top:
            top = f[a]
    for a in range(lo, hi):
        total += exp(f[a] - top)
    return top + log(total)


cdef inline double analytic_log_sum(const Problem *P, const Scratch *s) noexcept nogil:
    """Closed-form log weight of the analytic slots given the current fields."""
    cdef int c
    cdef double total = pe_sum(s.sp, P.n_ab)
    for c in range(P.n_ac):
        total += site_log_sum(s.f, P.a_site_ptr[c], P.a_site_ptr[c + 1])
    return total


cdef inline double analytic_max(const Problem *P, const Scratch *s) noexcept nogil:
    """Closed-form max of the log weight of the analytic slots given the current fields."""
    cdef int a, c
    cdef int64_t q
    cdef double top, total = 0.0
    for a in range(P.n_ab):
        if s.f[a] > 0.0:
            total += s.f[a]
    for c in range(P.n_ac):
        top = s.f[P.a_site_ptr[c]]
        for q in range(P.a_site_ptr[c] + 1, P.a_site_ptr[c + 1]):
            if s.f[q] > top:
                top = s.f[q]
        total += top
    return total


cdef int next_site(const Problem *P, Scratch *s) noexcept nogil:
    """Advance the reflected mixed-radix Gray code of the categorical sites of S: the
    lowest site that can move one step in its direction does (sites below it that cannot
    turn round). Returns the site moved, or -1 when every state has been visited."""
    cdef int c, size
    for c in range(P.n_walk):
        size = <int> (P.s_site_ptr[c + 1] - P.s_site_ptr[c])
        if 0 <= s.value[c] + s.direction[c] < size:
            return c
        s.direction[c] = -s.direction[c]
    return -1


cdef inline int lowest_bit(uint64_t t) noexcept nogil:
    cdef int j = 0
    while not (t & 1):
        t >>= 1
        j += 1
    return j


cdef void walk_piece(const Problem *P, int n_free, uint64_t piece, bint moments, double shift,
                     double *out, double *unit_acc, double *edge_acc,
                     double *code_acc, unsigned char *best_x) noexcept nogil:
    """Enumerate one piece. out = (max log weight, sum exp(lw - max)); NaN on no memory.

    With ``moments``, accumulate exp(lw - shift)-weighted moments instead (and the weight of
    each code of the generic-term units in ``code_acc``). With ``best_x`` (not NULL), find
    the largest ``lw_max`` instead: out = (that maximum, 1) and ``best_x`` the first state
    of ``S`` that reaches it.
    """
    cdef Scratch s
    cdef int j, c, size
    cdef int64_t code = 0
    cdef uint64_t t, visited = 0, n_states = (<uint64_t> 1) << n_free
    cdef uint64_t digits = piece >> (P.m_b - n_free)
    cdef double lw_s, lw, w, top = -INFINITY, total = 0.0
    if not scratch_alloc(&s, P.m, P.n_sc, P.n_a):
        scratch_free(&s)
        out[0] = NAN
        return
    for j in range(P.m_b):          # the binary prefix: the low bits of the piece number
        s.x[j] = (piece >> (j - n_free)) & 1 if j >= n_free else 0
    for c in range(P.n_sc):         # fixed sites: the piece number's higher mixed-radix digits
        size = <int> (P.s_site_ptr[c + 1] - P.s_site_ptr[c])
        if c >= P.n_walk:
            s.value[c] = <int> (digits % <uint64_t> size)
            digits //= <uint64_t> size
        s.x[P.s_site_ptr[c] + s.value[c]] = 1
        s.direction[c] = 1
    for j in range(P.m):
        if s.x[j]:
            code += P.gen_step[j]
    lw_s = resync(P, &s)
    while True:
        for t in range(n_states):
            if t:
                j = lowest_bit(t)
                lw_s = flip(P, &s, j, lw_s)
                if P.gen_table != NULL:
                    code += P.gen_step[j] if s.x[j] else -P.gen_step[j]
                if ((visited + t) & RESYNC_MASK) == 0:
                    lw_s = resync(P, &s)
            if best_x != NULL:
                lw = lw_s + analytic_max(P, &s)
            else:
                lw = lw_s + analytic_log_sum(P, &s)
            if P.gen_table != NULL:
                lw += P.gen_table[code]
            if best_x != NULL:
                if lw > top:
                    top = lw
                    total = 1.0
                    memcpy(best_x, s.x, P.m)
            elif moments:
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
        visited += n_states
        c = next_site(P, &s)
        if c < 0:
            break
        j = <int> P.s_site_ptr[c] + s.value[c]
        lw_s = flip(P, &s, j, lw_s)
        code -= P.gen_step[j]
        s.value[c] += s.direction[c]
        lw_s = flip(P, &s, j + s.direction[c], lw_s)
        code += P.gen_step[j + s.direction[c]]
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
    const int64_t[::1] gen_step,    # IN (m,) code added by each slot when on (0: none)
    const double[::1] gen_table,    # IN (n_codes,) generic log weights per code; empty: none
    const int64_t[::1] s_site_ptr,  # IN (n_sc+1,) categorical sites of S (after m_b binary)
    const int64_t[::1] a_site_ptr,  # IN (n_ac+1,) categorical sites of A (after n_ab binary)
    int n_edges,
    int n_prefix,
    uint64_t piece_start,
    uint64_t piece_stop,
    int n_fixed_sites=0,
    bint moments=False,
    double shift=0.0,
    int n_threads=1,
    bint maximize=False,
):
    """Run pieces ``piece_start <= p < piece_stop`` of the enumeration.

    Piece ``p`` fixes the top ``n_prefix`` binary slots of ``S`` to the low bits of ``p`` and
    the last ``n_fixed_sites`` categorical sites to the higher mixed-radix digits of ``p``;
    there are ``2^n_prefix`` times the product of those sites' sizes.

    Returns ``(top, total)`` arrays, one entry per piece (``log sum = top + log total``),
    or, with ``moments``, ``(unit_acc, edge_acc, code_acc)`` per piece: sums of
    ``exp(lw - shift)`` times ``x_j`` / ``E[x_a | x_S]`` (units S then A), times the pair
    products for each edge id, and per code of the generic-term units; or, with
    ``maximize``, ``(top, best_x)``: each piece's largest ``lw_max`` and the ``(n_pieces, m)``
    uint8 state of ``S`` that first reaches it.
    """
    cdef Problem P
    cdef int m = field_s.shape[0], n_a = field_a.shape[0]
    cdef int n_sc = s_site_ptr.shape[0] - 1, n_ac = a_site_ptr.shape[0] - 1
    cdef int m_b = m - (s_site_ptr[n_sc] - s_site_ptr[0]) if n_sc >= 0 else -1
    cdef int n_ab = n_a - (a_site_ptr[n_ac] - a_site_ptr[0]) if n_ac >= 0 else -1
    cdef int n_free = m_b - n_prefix
    cdef Py_ssize_t p, q, n_pieces = <Py_ssize_t> (piece_stop - piece_start)
    if n_sc < 0 or n_ac < 0 or s_site_ptr[0] != m_b or a_site_ptr[0] != n_ab:
        raise ValueError("enumerate_pieces: inconsistent categorical sites")
    for p in range(n_sc):
        if s_site_ptr[p + 1] - s_site_ptr[p] < 2:
            raise ValueError("enumerate_pieces: a categorical site needs >= 2 slots")
    for p in range(n_ac):
        if a_site_ptr[p + 1] - a_site_ptr[p] < 2:
            raise ValueError("enumerate_pieces: a categorical site needs >= 2 slots")
    cdef uint64_t n_all_pieces = (<uint64_t> 1) << n_prefix if 0 <= n_prefix <= 62 else 0
    if n_fixed_sites < 0 or n_fixed_sites > n_sc:
        raise ValueError("enumerate_pieces: invalid number of fixed sites")
    for p in range(n_sc - n_fixed_sites, n_sc):
        n_all_pieces *= <uint64_t> (s_site_ptr[p + 1] - s_site_ptr[p])
        if n_all_pieces > (<uint64_t> 1) << 40:
            raise ValueError("enumerate_pieces: too many pieces")
    if moments and maximize:
        raise ValueError("enumerate_pieces: moments and maximize are exclusive")
    if n_prefix < 0 or n_free < 0 or n_free > 62 or piece_stop > n_all_pieces:
        raise ValueError("enumerate_pieces: invalid piece range")
    if (ss_ptr.shape[0] != m + 1 or sa_ptr.shape[0] != m + 1 or sa_first.shape[0] != m
            or gen_step.shape[0] != m):
        raise ValueError("enumerate_pieces: inconsistent problem arrays")
    cdef Py_ssize_t n_codes = gen_table.shape[0]
    cdef int64_t top_code = 0, step
    for p in range(m):
        if gen_step[p] < 0:
            raise ValueError("enumerate_pieces: gen_step must be >= 0")
        if p < m_b:
            top_code += gen_step[p]
    for p in range(n_sc):
        step = 0
        for q in range(s_site_ptr[p], s_site_ptr[p + 1]):
            step = max(step, gen_step[q])
        top_code += step
    if n_codes and top_code >= n_codes:
        raise ValueError("enumerate_pieces: gen_step does not fit gen_table")
    P.m = m
    P.m_b = m_b
    P.n_sc = n_sc
    P.n_walk = n_sc - n_fixed_sites
    P.s_site_ptr = &s_site_ptr[0]
    P.n_a = n_a
    P.n_ab = n_ab
    P.n_ac = n_ac
    P.a_site_ptr = &a_site_ptr[0]
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
    P.gen_step = &gen_step[0] if m else NULL
    P.gen_table = &gen_table[0] if n_codes else NULL

    summary = np.zeros((n_pieces, 2))
    unit_acc = np.zeros((n_pieces if moments else 0, m + n_a))
    edge_acc = np.zeros((n_pieces if moments else 0, n_edges))
    code_acc = np.zeros((n_pieces if moments else 0, n_codes))
    best_state = np.zeros((n_pieces if maximize else 0, m + 1), np.uint8)
    cdef double[:, ::1] out = summary
    cdef double[:, ::1] ua = unit_acc
    cdef double[:, ::1] ea = edge_acc
    cdef double[:, ::1] ca = code_acc
    cdef unsigned char[:, ::1] bx = best_state
    cdef double *ua_row
    cdef double *ea_row
    cdef double *ca_row
    with nogil:
        for p in prange(n_pieces, schedule="dynamic", num_threads=max(n_threads, 1)):
            ua_row = &ua[p, 0] if moments and m + n_a else NULL
            ea_row = &ea[p, 0] if moments and n_edges else NULL
            ca_row = &ca[p, 0] if moments and n_codes else NULL
            walk_piece(&P, n_free, piece_start + p, moments, shift, &out[p, 0], ua_row, ea_row,
                       ca_row, &bx[p, 0] if maximize else NULL)
    if np.isnan(summary[:, 0]).any():
        raise MemoryError("exact enumeration: could not allocate scratch memory")
    if moments:
        return unit_acc, edge_acc, code_acc
    if maximize:
        return summary[:, 0], best_state[:, :m]
    return summary[:, 0], summary[:, 1]
