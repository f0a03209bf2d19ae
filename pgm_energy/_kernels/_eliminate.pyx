"""Variable elimination kernels: the step list (one ``Program``) and the log-space sweeps.

**Sites.** The units of elimination are *sites*: a binary unit (one slot of the flat graph,
two states: off, on) or a categorical unit of ``k`` values (``k`` one-hot slots, ``k`` states:
slot ``a`` on). Every axis has its cardinality (``card``); tables are mixed-radix, the
stride of an axis the product of the cardinalities after it.

**Contraction.** One elimination step sums a site ``v`` out of the log-space tables ``T_f``
that mention it. Over the joint axes ``(v, o_1, ..., o_n)`` (``v`` first, the output axes
after it) every table is addressed through a stride per axis (0 where the table does not
have that axis), and

    forward:   out[o] = log sum_{x_v} exp(S(x_v, o)),      S(x_v, o) = sum_f T_f[x_v, o]
    max-product forward:  out[o] = max_{x_v} S(x_v, o)
    backward:  joint[x_v, o] = marginal[o] * exp(S(x_v, o) - out[o])

The output index runs in blocks: the trailing output axes whose product is at most
``BLOCK_ENTRIES`` (1024: the last 10 binary axes) form one block, the leading ones pick the
block. Per block each table is read at precomputed inner
offsets, as a contiguous run, or as one constant, so the inner loops are plain array adds;
blocks are independent and run on OpenMP threads (``prange``) when the output has at least
``PARALLEL_MIN`` (2^17) entries, so the result does not depend on the thread count. Binary axes
take the vectorised ``logaddexp`` through ``pe_softplus_array``. ``contract`` runs one step
(the numpy twin ``tests/reference/exact.py:contract`` checks it); the sweeps run every step of a
plan through the same block loop.

**Step list.** A plan is a :class:`Program`: flat int64 arrays, built once by
``build_program`` from an order of ``_order`` and checked once, which ``forward``,
``backward`` and ``sample`` all take:

* ``steps`` (n_steps, 8): site (flat site id), scope start and length, bucket-edge start and
  count, incoming start and count, offset of the step's table in the table store;
* ``scope``: each step's scope (flat site ids), in elimination order: output axis ``a``
  (1-based) is ``scope[start + a - 1]``; the step's table is over its scope, axis 1 most
  significant;
* ``edge``, ``edge_axis``, ``edge_state``: the graph's slot edges in each bucket (first end
  eliminated at that step), the joint axis of their other end (sorted, several edges may
  share one) and the state in which each end's slot is on (summed site first);
* ``incoming`` (n_incoming, 2): the steps whose tables are in the bucket, and where their
  joint axes start in ``incoming_axes`` (a table of scope length ``d`` has ``d`` axes, the
  first one 0: its first site is the one summed out);
* ``sites`` (n_sites, 2): each site's first slot and slot count (1: binary, two states).

Each step's local table ``phi_v(x_v) + sum_u psi_vu(x_v, x_u)`` (over ``v`` and the bucket
edges' other ends, in axis order; ``phi`` the slot fields, ``psi`` the couplings between the
slots on in each pair of states) is built in the kernel from ``field`` and ``coupling``.
Steps over binary sites only keep the binary fast paths (softplus, sigmoid, bit-lane sums).

The elimination order comes from ``_order`` (the order search); the table memory and the
block sums' inner loops are C in ``_tables.h``.
"""
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, exp, log
from libc.stdint cimport int8_t, int64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

import numpy as np

cdef extern from "_vecmath.h" nogil:
    void pe_softplus_array(const double *x, double *out, long n)
    void pe_sigmoid_array(const double *x, double *out, long n)
    double pe_sum(const double *x, long n)

cdef extern from "_tables.h" nogil:
    double *pe_table_alloc(int64_t n, int zero)
    void pe_add_gather(double *row, const double *t, const int64_t *off, long n)
    void pe_add_run(double *row, const double *t, long n)

cdef enum:
    GATHER = 0        # table read at inner_offset[f, k]
    CONTIGUOUS = 1    # table read at base + k
    CONSTANT = 2      # table constant over the block

cdef enum:
    BLOCK_ENTRIES = 1024    # a block spans the trailing output axes whose product is at most
                            # this (the last 10 binary axes; at least one axis)
    PARALLEL_MIN = 131072   # default: smaller outputs run on one thread: each step opens its own
                            # parallel region, and waking the other thread cost as much as
                            # it saved on 2^16-entry steps (16x16 grid, 2 cores)
    MAX_AXES = 63           # joint axes of one step (tables of 2^62 entries are refused long before)

# columns of ``steps``
cdef enum:
    UNIT = 0
    SCOPE = 1
    N_SCOPE = 2
    EDGE = 3
    N_EDGE = 4
    IN = 5
    N_IN = 6
    TABLE = 7
    STEP_FIELDS = 8



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
    int zero_first              # table 0 is 0 wherever x_v = 0 (a binary unit's local table)
    int max_product             # forward: out = max_x S(x, o) in place of log sum exp


cdef int64_t BINARY[MAX_AXES + 1]
for _a in range(MAX_AXES + 1):
    BINARY[_a] = 2


# -- the contraction (one block at a time) -------------------------------------------------------
cdef inline int64_t block_base(const Contraction *C, int f, int64_t block) noexcept nogil:
    """Offset of table ``f`` at the first entry of ``block`` (x_v = 0)."""
    cdef int a
    cdef int64_t rest = block, base = 0, digit
    for a in range(C.n_outer, 0, -1):
        digit = rest % C.card[a]
        rest = rest // C.card[a]
        base += digit * C.stride[f * C.n_axes + a]
    return base


cdef void block_sums(const Contraction *C, int64_t block, double *acc) noexcept nogil:
    """acc[x_v * n_inner + k] = S(x_v, block entry k) for every state x_v of the summed unit."""
    cdef int f
    cdef int64_t k, x, base, card_v = C.card[0], n = C.n_inner
    cdef const double *t
    cdef const int64_t *off
    cdef double *row
    cdef double c
    for k in range(card_v * n):
        acc[k] = 0.0
    for f in range(C.n_tables):
        base = block_base(C, f, block)
        off = C.inner_offset + f * n
        for x in range(1 if f == 0 and C.zero_first else 0, card_v):
            t = C.table[f] + base + x * C.stride[f * C.n_axes]
            row = acc + x * n
            if C.kind[f] == CONTIGUOUS:
                pe_add_run(row, t, n)
            elif C.kind[f] == CONSTANT:
                c = t[0]
                for k in range(n):
                    row[k] += c
            else:
                pe_add_gather(row, t, off, n)


cdef void log_sum_block(const Contraction *C, double *acc, double *out) noexcept nogil:
    """out[k] = log sum_x exp(acc[x * n_inner + k]) (max_x with ``max_product``); acc is
    overwritten."""
    cdef int64_t k, x, card_v = C.card[0], n = C.n_inner
    cdef double *a = acc
    cdef double *b = acc + n
    cdef double hi, total
    if C.max_product:
        for k in range(n):
            hi = acc[k]
            for x in range(1, card_v):
                if acc[x * n + k] > hi:
                    hi = acc[x * n + k]
            out[k] = hi
        return
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


cdef void joint_block(const Contraction *C, double *acc, const double *out,
                      const double *marginal, double *joint, int64_t n_out) noexcept nogil:
    """joint[x * n_out + k] = marginal[k] * exp(acc[x * n_inner + k] - out[k]); acc is
    overwritten. Binary: P(x | o) = sigmoid(S(x, o) - S(1 - x, o)), vectorised, without out."""
    cdef int64_t k, x, n = C.n_inner
    cdef double diff
    if C.card[0] == 2:
        for k in range(n):
            diff = acc[n + k] - acc[k]
            acc[k] = -diff
            acc[n + k] = diff
        pe_sigmoid_array(acc, acc, 2 * n)
        for x in range(2):
            for k in range(n):
                joint[x * n_out + k] = marginal[k] * acc[x * n + k]
        return
    for x in range(C.card[0]):
        for k in range(n):
            joint[x * n_out + k] = marginal[k] * exp(acc[x * n + k] - out[k])


cdef inline void one_block(const Contraction *C, int64_t block, double *acc, double *out,
                           const double *marginal, double *joint, int64_t n_out) noexcept nogil:
    """Block ``block`` of one contraction, in the scratch ``acc``: forward when ``marginal``
    is NULL, else backward."""
    block_sums(C, block, acc)
    if marginal != NULL:
        joint_block(C, acc, out + block * C.n_inner, marginal + block * C.n_inner,
                    joint + block * C.n_inner, n_out)
    else:
        log_sum_block(C, acc, out + block * C.n_inner)


cdef int run_blocks(const Contraction *C, double *out, const double *marginal, double *joint,
                    int64_t n_out, int n_threads, int64_t parallel_min) noexcept nogil:
    """Every block of one contraction: forward when ``marginal`` is NULL, else backward
    (``out`` then holds the forward result). Returns -1 if a block buffer failed."""
    cdef int64_t n_blocks = n_out // C.n_inner, block
    cdef int64_t size = C.card[0] * C.n_inner
    cdef double *acc = NULL
    cdef int failed = 0
    if n_out < parallel_min or n_threads <= 1 or n_blocks < 2:
        acc = <double *> malloc(size * sizeof(double))
        if acc == NULL:
            return -1
        for block in range(n_blocks):
            one_block(C, block, acc, out, marginal, joint, n_out)
        free(acc)
        return 0
    with parallel(num_threads=n_threads if n_threads < n_blocks else n_blocks):
        acc = <double *> malloc(size * sizeof(double))
        for block in prange(n_blocks, schedule="static"):
            if acc == NULL:
                failed += 1
                continue
            one_block(C, block, acc, out, marginal, joint, n_out)
        free(acc)
    return -1 if failed else 0


# -- addressing of mixed-radix tables ------------------------------------------------------------
cdef inline void set_stride(int64_t *row, const int64_t *axes, int64_t n,
                            const int64_t *card) noexcept nogil:
    """Strides of a table over the joint axes ``axes`` (its own order, most significant first),
    ``card`` the cardinality of each joint axis."""
    cdef int64_t i, step = 1
    for i in range(n - 1, -1, -1):
        row[axes[i]] = step
        step *= card[axes[i]]


cdef inline int inner_axes(const int64_t *card, int n_out, int64_t *n_inner) noexcept nogil:
    """How many trailing output axes (of ``card[1..n_out]``) one block spans: as many as keep
    their product at most ``BLOCK_ENTRIES`` (at least one); their product in ``n_inner``."""
    cdef int inner = 0
    n_inner[0] = 1
    while inner < n_out and (inner == 0 or n_inner[0] * card[n_out - inner] <= BLOCK_ENTRIES):
        n_inner[0] *= card[n_out - inner]
        inner += 1
    return inner


cdef void finish_addressing(Contraction *C, const int64_t *card, int64_t *stride,
                            int64_t *offset, int *kind, int n_out) noexcept nogil:
    """Blocks over the trailing output axes (``inner_axes``): in-block offsets and kinds from
    the strides (rows of ``stride`` already set, ``n_out + 1`` per table)."""
    cdef int64_t n_inner, k, size, step, run
    cdef int inner = inner_axes(card, n_out, &n_inner)
    cdef int f, b
    cdef bint contiguous, constant
    cdef int64_t *off
    C.n_axes = n_out + 1
    C.n_outer = n_out - inner
    C.n_inner = n_inner
    C.card = card
    C.stride = stride
    C.inner_offset = offset
    C.kind = kind
    for f in range(C.n_tables):
        contiguous = constant = True    # from the inner axes' strides
        run = 1
        for b in range(inner):          # inner axis b (from the least significant) = n_out - b
            step = stride[f * (n_out + 1) + n_out - b]
            contiguous = contiguous and step == run
            constant = constant and step == 0
            run *= card[n_out - b]
        if constant or contiguous:      # offsets not read
            kind[f] = CONSTANT if constant else CONTIGUOUS
            continue
        kind[f] = GATHER
        off = offset + f * n_inner
        off[0] = 0
        size = 1
        for b in range(inner):          # each state of the axis: the previous one's + step
            step = stride[f * (n_out + 1) + n_out - b]
            for k in range(size, size * card[n_out - b]):
                off[k] = off[k - size] + step
            size *= card[n_out - b]


def contract(
    list tables,                            # IN  n_tables C-contiguous float64 log tables
    list axes,                              # IN  joint axes of each table (int64, increasing)
    double[::1] out,                        # IN/OUT (2^n_out,) log sums (written when forward)
    const double[::1] marginal=None,        # IN  (2^n_out,) marginal of the output (backward)
    double[::1] joint=None,                 # OUT (2^(n_out + 1),) joint marginal (backward)
    int n_threads=1,
    int64_t parallel_min=PARALLEL_MIN,      # IN  outputs with fewer entries run on one thread
):
    """One contraction of binary tables: sum axis 0 out (forward) or spread a marginal back.

    ``tables[f]`` is a flat log table over the joint axes ``axes[f]`` (most significant
    first; axis 0 is the summed unit, ``1..n_out`` the output). Forward (``marginal`` None):
    ``out[o] = log sum_x exp(sum_f T_f[x, o])``. Backward: ``joint[x, o] = marginal[o]
    exp(sum_f T_f[x, o] - out[o])`` with ``out`` from the forward call. The sweeps run every
    step of a plan through the same block loop.
    """
    cdef int n_tables = len(tables), f, n_out = 0, failed = 0
    cdef int64_t n_entries = out.shape[0]
    cdef bint backward = marginal is not None
    cdef const double[::1] view
    cdef const int64_t[::1] ax
    cdef Contraction C
    while ((<int64_t> 1) << n_out) < n_entries and n_out < MAX_AXES - 1:
        n_out += 1
    if ((<int64_t> 1) << n_out) != n_entries:
        raise ValueError(f"contract: out must have 2^n_out entries, got {n_entries}")
    if len(axes) != n_tables:
        raise ValueError("contract: one axes list per table")
    if backward and (marginal.shape[0] != n_entries or joint is None
                     or joint.shape[0] != 2 * n_entries):
        raise ValueError("contract: backward needs marginal (2^n_out,) and joint (2^(n_out+1),)")
    cdef int64_t inner
    inner_axes(BINARY, n_out, &inner)
    stride = np.zeros((max(n_tables, 1), n_out + 1), np.int64)
    offset = np.zeros((max(n_tables, 1), inner), np.int64)
    kind = np.zeros(max(n_tables, 1), np.intc)
    cdef int64_t[:, ::1] stride_v = stride
    cdef int64_t[:, ::1] offset_v = offset
    cdef int[::1] kind_v = kind
    pointers = <const double **> malloc((n_tables + 1) * sizeof(double *))
    if pointers == NULL:
        raise MemoryError()
    try:
        for f in range(n_tables):
            axis_array = np.ascontiguousarray(axes[f], np.int64)
            ax = axis_array
            view = tables[f]
            if (ax.shape[0] < 1 or ax[0] != 0 or np.any(np.diff(axis_array) <= 0)
                    or ax[ax.shape[0] - 1] > n_out
                    or view.shape[0] != (<int64_t> 1) << ax.shape[0]):
                raise ValueError(f"contract: table {f} must have axes 0 < ... <= {n_out} "
                                 f"and 2^len(axes) entries")
            set_stride(&stride_v[f, 0], &ax[0], ax.shape[0], BINARY)
            pointers[f] = &view[0]
        C.n_tables = n_tables
        C.table = pointers
        C.zero_first = 0
        C.max_product = 0
        finish_addressing(&C, BINARY, &stride_v[0, 0], &offset_v[0, 0], &kind_v[0], n_out)
        with nogil:
            failed = run_blocks(&C, &out[0], &marginal[0] if backward else NULL,
                                &joint[0] if backward else NULL, n_entries, n_threads,
                                parallel_min)
    finally:
        free(pointers)
    if failed:
        raise MemoryError("contract: could not allocate a block buffer")


# -- the step list -----------------------------------------------------------------------------------
cdef struct StepList:           # a Program's arrays, as C pointers
    int64_t n_steps
    const int64_t *steps            # (n_steps, STEP_FIELDS)
    const int64_t *scope
    const int64_t *edge
    const int64_t *edge_axis
    const int64_t *edge_state       # (n_edge, 2) state of the summed site, of the other end
    const int64_t *incoming         # (n_incoming, 2)
    const int64_t *incoming_axes
    const int64_t *sites            # (n_sites, 2) first slot, slots
    const int64_t *card             # (n_sites,) states of each site
    const int64_t *size             # (n_steps,) entries of each step's table
    int64_t max_tables              # the largest step's tables (its own and incoming ones),
    int64_t max_axes                # joint axes, local table, block entries and states: the
    int64_t max_local               # sizes of the scratch (work_alloc)
    int64_t max_inner
    int64_t max_card


cdef struct Work:               # per-step scratch, sized once for the largest step
    double *local                   # the step's local table
    double *pair                    # (max_card^2,) one site pair's coupling table
    int64_t *card                   # (max_axes,) the joint axes' cardinalities
    const double **table            # (max tables,) pointers
    int64_t *stride                 # (max tables, max axes)
    int64_t *offset                 # (max tables, max inner)
    int *kind
    bint binary                     # every site of the step is binary (one slot)


cdef int work_alloc(const StepList *P, Work *W) noexcept nogil:
    """Allocate the scratch (the pointers are NULL on failure or valid; work_free either way)."""
    W.local = <double *> malloc(P.max_local * sizeof(double))
    W.pair = <double *> malloc(P.max_card * P.max_card * sizeof(double))
    W.card = <int64_t *> malloc(P.max_axes * sizeof(int64_t))
    W.table = <const double **> malloc(P.max_tables * sizeof(double *))
    W.stride = <int64_t *> malloc(P.max_tables * P.max_axes * sizeof(int64_t))
    W.offset = <int64_t *> malloc(P.max_tables * P.max_inner * sizeof(int64_t))
    W.kind = <int *> malloc(P.max_tables * sizeof(int))
    if (W.local == NULL or W.pair == NULL or W.card == NULL or W.table == NULL
            or W.stride == NULL or W.offset == NULL or W.kind == NULL):
        return -1
    return 0


cdef void work_free(Work *W) noexcept nogil:
    free(W.local)
    free(W.pair)
    free(W.card)
    free(W.table)
    free(W.stride)
    free(W.offset)
    free(W.kind)


cdef double **step_buffers(const StepList *P, Work *W, str what) except NULL:
    """The per-step table pointers (zeroed) and the scratch ``W`` of a sweep, or a
    ``MemoryError`` naming the sweep; the caller frees them (``free``, ``work_free``)."""
    cdef double **tables = <double **> calloc(P.n_steps + 1, sizeof(double *))
    if work_alloc(P, W) < 0 or tables == NULL:       # work_alloc sets every pointer of W
        free(tables)
        work_free(W)
        raise MemoryError(f"{what}: could not allocate the step buffers")
    return tables


cdef inline double unary(const int64_t *site, const double *field, int64_t a) noexcept nogil:
    """Log weight of state ``a`` of a site from its slots' fields: a binary site's state 0 has
    no slot on (0), its state 1 is its slot; a categorical site's state ``a`` is slot ``a``."""
    if site[1] == 1:
        return field[site[0]] if a else 0.0
    return field[site[0] + a]


cdef void prepare(const StepList *P, int64_t s, const double *field, const double *coupling,
                  double **tables, Work *W, Contraction *C) noexcept nogil:
    """Local table, table pointers and addressing of step ``s`` (inputs from ``tables``)."""
    cdef const int64_t *row = P.steps + s * STEP_FIELDS
    cdef int64_t d = row[N_SCOPE], k = row[N_EDGE], i, j, b, size, t, axis, cv, cu, per_state
    cdef int64_t n_axes = d + 1, step
    cdef const int64_t *edges = P.edge + row[EDGE]
    cdef const int64_t *edge_axis = P.edge_axis + row[EDGE]
    cdef const int64_t *edge_state = P.edge_state + 2 * row[EDGE]
    cdef const int64_t *site = P.sites + 2 * row[UNIT]
    cdef const int64_t *entry
    cdef double base
    cdef int f
    C.n_tables = <int> (1 + row[N_IN])
    memset(W.stride, 0, C.n_tables * n_axes * sizeof(int64_t))
    W.card[0] = cv = P.card[row[UNIT]]
    W.binary = site[1] == 1
    for i in range(d):
        W.card[i + 1] = P.card[P.scope[row[SCOPE] + i]]
        W.binary = W.binary and P.sites[2 * P.scope[row[SCOPE] + i] + 1] == 1
    # local table: unary(x_v) + sum over the bucket's site pairs of pair(x_v, x_u), over
    # (x_v, the distinct other ends in axis order), grown one other end at a time
    for i in range(cv):
        W.local[i] = unary(site, field, i)
    size = cv
    i = 0
    while i < k:
        axis = edge_axis[i]
        cu = W.card[axis]
        for j in range(cv * cu):
            W.pair[j] = 0.0
        while i < k and edge_axis[i] == axis:     # the slot edges between v and this site
            W.pair[edge_state[2 * i] * cu + edge_state[2 * i + 1]] += coupling[edges[i]]
            i += 1
        per_state = size // cv
        for j in range(size - 1, -1, -1):         # in place, from the end
            base = W.local[j]
            t = (j // per_state) * cu
            for b in range(cu - 1, -1, -1):
                W.local[j * cu + b] = base + W.pair[t + b]
        size *= cu
    step = 1
    for i in range(k - 1, -1, -1):
        if i == k - 1 or edge_axis[i] != edge_axis[i + 1]:
            W.stride[edge_axis[i]] = step
            step *= W.card[edge_axis[i]]
    W.stride[0] = step
    W.table[0] = W.local
    for f in range(1, C.n_tables):
        entry = P.incoming + 2 * (row[IN] + f - 1)
        t = entry[0]
        W.table[f] = tables[t]
        set_stride(W.stride + f * n_axes, P.incoming_axes + entry[1],
                   P.steps[t * STEP_FIELDS + N_SCOPE], W.card)
    C.table = W.table
    C.zero_first = site[1] == 1
    C.max_product = 0
    finish_addressing(C, W.card, W.stride, W.offset, W.kind, <int> d)


cdef object frozen(object array, int ndim, int64_t columns, str name):
    """A read-only C-contiguous int64 copy of ``array`` with ``ndim`` dimensions (and
    ``columns`` columns when 2-d)."""
    out = np.array(array, dtype=np.int64, order="C", copy=True)
    if out.ndim != ndim or (ndim == 2 and out.shape[1] != columns):
        shape = "(n, %d)" % columns if ndim == 2 else "(n,)"
        raise ValueError(f"Program: {name} must have shape {shape}, got {out.shape}")
    out.flags.writeable = False
    return out


cdef class Program:
    """The step list of an elimination order (see the module docstring), checked once.

    ``Program(steps, scope, edge, edge_axis, edge_state, incoming, incoming_axes, sites,
    n_units, n_edges)`` keeps read-only copies of the arrays and raises ``ValueError`` unless
    every index in them is in range: sites of ``>= 1`` slots below ``n_units``, steps' and
    scopes' sites below ``len(sites)``, edges below ``n_edges``, each step's scope, bucket and
    incoming tables inside their arrays, scopes of at most ``MAX_AXES - 1`` sites, bucket
    edges' axes inside the step's scope and their states naming a slot of each end, each step
    with a scope the input of exactly one later step (at axes ``0 = a_0 < a_1 < ... <= d`` of
    that step's ``d`` scope sites), tables at offsets ``>= 0``. :func:`forward`,
    :func:`backward` and :func:`sample` all take it and only check their own arrays' lengths
    against ``n_units``, ``n_edges``, ``n_sites`` and ``n_stored`` (the entries of the table
    store: step ``s``'s table at ``steps[s, 7]``, of ``table_size[s]`` entries, the product of
    its scope's cardinalities). Built by :func:`build_program`.
    """
    cdef readonly object steps, scope, edge, edge_axis, edge_state, incoming, incoming_axes
    cdef readonly object sites, card, table_size
    cdef readonly int64_t n_units, n_edges, n_sites, n_stored
    cdef StepList P

    def __init__(self, steps, scope, edge, edge_axis, edge_state, incoming, incoming_axes,
                 sites, int64_t n_units, int64_t n_edges):
        if n_units < 0 or n_edges < 0:
            raise ValueError(f"Program: n_units and n_edges must be >= 0, got {n_units}, "
                             f"{n_edges}")
        steps = frozen(steps, 2, STEP_FIELDS, "steps")
        scope = frozen(scope, 1, 0, "scope")
        edge = frozen(edge, 1, 0, "edge")
        edge_axis = frozen(edge_axis, 1, 0, "edge_axis")
        edge_state = frozen(np.reshape(edge_state, (-1, 2)), 2, 2, "edge_state")
        incoming = frozen(incoming, 2, 2, "incoming")
        incoming_axes = frozen(incoming_axes, 1, 0, "incoming_axes")
        sites = frozen(np.reshape(sites, (-1, 2)), 2, 2, "sites")
        if edge_axis.shape[0] != edge.shape[0] or edge_state.shape[0] != edge.shape[0]:
            raise ValueError("Program: edge, edge_axis and edge_state must have the same length")
        if len(sites) and (sites[:, 1].min() < 1 or sites[:, 0].min() < 0
                           or (sites[:, 0] + sites[:, 1]).max() > n_units):
            raise ValueError(f"Program: sites must be runs of >= 1 slots below the {n_units} "
                             "units")
        card = frozen(np.where(sites[:, 1] == 1, 2, sites[:, 1]), 1, 0, "card")
        table_size = np.zeros(steps.shape[0], np.int64)
        cdef const int64_t[:, ::1] st = steps
        cdef const int64_t[::1] sc = scope, e = edge, ea = edge_axis
        cdef const int64_t[:, ::1] es = edge_state, si = sites
        cdef const int64_t[:, ::1] inc = incoming
        cdef const int64_t[::1] ia = incoming_axes, cd = card
        cdef int64_t[::1] ts = table_size
        cdef StepList P
        P.n_steps = st.shape[0]
        P.steps = &st[0, 0] if st.shape[0] else NULL
        P.scope = &sc[0] if sc.shape[0] else NULL
        P.edge = &e[0] if e.shape[0] else NULL
        P.edge_axis = &ea[0] if ea.shape[0] else NULL
        P.edge_state = &es[0, 0] if es.shape[0] else NULL
        P.incoming = &inc[0, 0] if inc.shape[0] else NULL
        P.incoming_axes = &ia[0] if ia.shape[0] else NULL
        P.sites = &si[0, 0] if si.shape[0] else NULL
        P.card = &cd[0] if cd.shape[0] else NULL
        P.size = &ts[0] if ts.shape[0] else NULL
        n_stored = check_steps(&P, &ts[0] if ts.shape[0] else NULL, si.shape[0], n_edges,
                               sc.shape[0], e.shape[0], inc.shape[0], ia.shape[0])
        table_size.flags.writeable = False
        # all checked: only now does the object take the arrays
        self.steps, self.scope, self.edge, self.edge_axis = steps, scope, edge, edge_axis
        self.edge_state, self.incoming, self.incoming_axes = edge_state, incoming, incoming_axes
        self.sites, self.card, self.table_size = sites, card, table_size
        self.n_units, self.n_edges, self.n_sites = n_units, n_edges, si.shape[0]
        self.n_stored = n_stored
        self.P = P


cdef int64_t check_steps(StepList *P, int64_t *size, int64_t n_sites, int64_t n_edges,
                         int64_t n_scope, int64_t n_edge, int64_t n_incoming,
                         int64_t n_axes) except -1:
    """Check every index of a step list (see Program), write each step's table size into
    ``size`` and set the scratch sizes; return the entries of its table store. O(size of the
    list)."""
    cdef int64_t s, i, j, t, a, d, dt, inner, local, cv, stored = 0
    cdef const int64_t *row
    cdef const int64_t *axes
    cdef int64_t card[MAX_AXES + 1]
    consumed_a = np.zeros(P.n_steps, np.int64)
    cdef int64_t[::1] consumed = consumed_a
    P.max_tables, P.max_axes, P.max_local, P.max_inner, P.max_card = 1, 1, 1, 1, 1
    for s in range(n_sites):
        P.max_card = max(P.max_card, P.card[s])
    for s in range(P.n_steps):
        row = P.steps + s * STEP_FIELDS
        d = row[N_SCOPE]
        if not 0 <= row[UNIT] < n_sites:
            raise ValueError(f"step {s}: unit {row[UNIT]} outside the {n_sites} sites")
        if not (0 <= d < MAX_AXES and 0 <= row[SCOPE] <= n_scope - d):
            raise ValueError(f"step {s}: its scope is outside the scope array or has more "
                             f"than {MAX_AXES - 1} units")
        card[0] = cv = P.card[row[UNIT]]
        size[s] = 1
        for i in range(row[SCOPE], row[SCOPE] + d):
            if not 0 <= P.scope[i] < n_sites:
                raise ValueError(f"step {s}: unit {P.scope[i]} outside the {n_sites} sites")
            card[i - row[SCOPE] + 1] = P.card[P.scope[i]]
            if size[s] > ((<int64_t> 1) << 62) // P.card[P.scope[i]] // cv:
                raise ValueError(f"step {s}: its joint table has more than 2^62 entries")
            size[s] *= P.card[P.scope[i]]
        if not (0 <= row[N_EDGE] and 0 <= row[EDGE] <= n_edge - row[N_EDGE]):
            raise ValueError(f"step {s}: its bucket is outside the edge array")
        local = cv
        for i in range(row[EDGE], row[EDGE] + row[N_EDGE]):
            if not 0 <= P.edge[i] < n_edges:
                raise ValueError(f"step {s}: edge {P.edge[i]} outside the {n_edges} edges")
            if not (1 <= P.edge_axis[i] <= d
                    and (i == row[EDGE] or P.edge_axis[i - 1] <= P.edge_axis[i])):
                raise ValueError(f"step {s}: bucket edge axes must be nondecreasing in 1..{d}")
            if not (P.sites[2 * row[UNIT] + 1] == 1 <= P.edge_state[2 * i] < cv
                    or P.sites[2 * row[UNIT] + 1] > 1 and 0 <= P.edge_state[2 * i] < cv):
                raise ValueError(f"step {s}: bucket edge {i} names no slot of the summed site")
            t = P.scope[row[SCOPE] + P.edge_axis[i] - 1]
            if not (P.sites[2 * t + 1] == 1 <= P.edge_state[2 * i + 1] < P.card[t]
                    or P.sites[2 * t + 1] > 1 and 0 <= P.edge_state[2 * i + 1] < P.card[t]):
                raise ValueError(f"step {s}: bucket edge {i} names no slot of its other end")
            if i == row[EDGE] or P.edge_axis[i - 1] != P.edge_axis[i]:
                local *= card[P.edge_axis[i]]
        if not (0 <= row[N_IN] and 0 <= row[IN] <= n_incoming - row[N_IN]):
            raise ValueError(f"step {s}: its incoming tables are outside the incoming array")
        for i in range(row[IN], row[IN] + row[N_IN]):
            t = P.incoming[2 * i]
            a = P.incoming[2 * i + 1]
            if not 0 <= t < s:
                raise ValueError(f"step {s}: incoming table {t} is not from an earlier step")
            dt = P.steps[t * STEP_FIELDS + N_SCOPE]
            consumed[t] += 1
            if not 0 <= a <= n_axes - dt:
                raise ValueError(f"step {s}: the axes of incoming table {t} are outside the "
                                 f"incoming_axes array")
            axes = P.incoming_axes + a
            for j in range(dt):
                if not (axes[j] <= d and (axes[j] == 0 if j == 0 else axes[j - 1] < axes[j])):
                    raise ValueError(f"step {s}: the axes of incoming table {t} must be "
                                     f"0 < ... <= {d}")
        if not 0 <= row[TABLE] < (<int64_t> 1) << 62:
            raise ValueError(f"step {s}: table offset {row[TABLE]} out of range")
        if row[TABLE] + size[s] > stored:
            stored = row[TABLE] + size[s]
        inner_axes(card, <int> d, &inner)
        P.max_tables = max(P.max_tables, 1 + row[N_IN])
        P.max_axes = max(P.max_axes, d + 1)
        P.max_local = max(P.max_local, local)
        P.max_inner = max(P.max_inner, inner)
    for s in range(P.n_steps):
        if consumed[s] != (P.steps[s * STEP_FIELDS + N_SCOPE] > 0):
            raise ValueError(f"step {s}: its table must be the input of exactly one later step "
                             f"when it has a scope, and of none otherwise")
    return stored


cdef int check_lengths(Program program, const double[::1] field, const double[::1] coupling,
                       const double[::1] store, str name) except -1:
    """ValueError unless the number arrays cover the program's units, edges and table store
    (``store`` None: no store)."""
    if field.shape[0] < program.n_units or coupling.shape[0] < program.n_edges:
        raise ValueError(f"{name}: field and coupling must have at least {program.n_units} "
                         f"and {program.n_edges} entries (the program's units and edges), got "
                         f"{field.shape[0]} and {coupling.shape[0]}")
    if store is not None and store.shape[0] < program.n_stored:
        raise ValueError(f"{name}: the table store must have at least {program.n_stored} "
                         f"entries, got {store.shape[0]}")
    return 0


def forward(
    Program program not None,               # IN  the step list (see Program)
    const double[::1] field,                # IN  (n_units,) binary-form fields
    const double[::1] coupling,             # IN  (n_edges,) binary-form couplings
    double[::1] store=None,                 # OUT every step's table at steps[:, TABLE], or None
    int n_threads=1,
    int64_t parallel_min=PARALLEL_MIN,      # IN  outputs with fewer entries run on one thread
    bint maximum=False,                     # IN  max-product: (max, +) in place of log-sum-exp
):
    """The whole forward sweep: ``log sum_x exp(sum_i f_i x_i + sum_e c_e x_i x_j)`` over the
    states of the program's sites (``max_x`` of the same with ``maximum``).

    With ``store`` every table is kept there (for :func:`backward` and :func:`sample`);
    without, each table is freed once its consumer has run.
    """
    cdef const StepList *P = &program.P
    cdef Work W
    cdef Contraction C
    cdef bint keep = store is not None
    cdef double **tables = NULL
    cdef double total = 0.0
    cdef const double *field_p = &field[0] if field.shape[0] else NULL
    cdef const double *coupling_p = &coupling[0] if coupling.shape[0] else NULL
    check_lengths(program, field, coupling, store, "forward")
    cdef int64_t s, f, d, t
    cdef int status = 0
    cdef const int64_t *row
    tables = step_buffers(P, &W, "forward")
    with nogil:
        for s in range(P.n_steps):
            row = P.steps + s * STEP_FIELDS
            d = row[N_SCOPE]
            if keep:
                tables[s] = &store[row[TABLE]]
            else:
                tables[s] = pe_table_alloc(P.size[s], 0)
                if tables[s] == NULL:
                    status = -1
                    break
            prepare(P, s, field_p, coupling_p, tables, &W, &C)
            C.max_product = maximum
            if run_blocks(&C, tables[s], NULL, NULL, P.size[s], n_threads, parallel_min) < 0:
                status = -1
                break
            if d == 0:
                total += tables[s][0]
            if not keep:
                for f in range(row[N_IN]):
                    t = P.incoming[2 * (row[IN] + f)]
                    free(tables[t])
                    tables[t] = NULL
                if d == 0:
                    free(tables[s])
                    tables[s] = NULL
        if not keep:
            for s in range(P.n_steps):
                free(tables[s])
        free(tables)
        work_free(&W)
    if status < 0:
        raise MemoryError("forward: could not allocate a table")
    return total


cdef double bit_sums(const double *on, int64_t n_out, int64_t d, const int64_t *edge,
                     const int64_t *edge_axis, int64_t n_edges,
                     double *edge_marginal) noexcept nogil:
    """Sum of ``on`` (2^d entries), and into ``edge_marginal[edge[i]]`` the sum of the entries
    whose output axis ``edge_axis[i]`` is 1. Eight independent partial sums per lane of the
    lowest three bits (no serial add chain); runs of 8 or more by ``pe_sum``."""
    cdef double lane[8]
    cdef double acc
    cdef int64_t h, j, i, bit, base, run
    if n_out < 8:
        acc = 0.0
        for j in range(n_out):
            acc += on[j]
        for i in range(n_edges):
            bit = d - edge_axis[i]
            edge_marginal[edge[i]] = 0.0
            for j in range(n_out):
                if (j >> bit) & 1:
                    edge_marginal[edge[i]] += on[j]
        return acc
    for j in range(8):
        lane[j] = 0.0
    for h in range(0, n_out, 8):
        for j in range(8):
            lane[j] += on[h + j]
    for i in range(n_edges):
        bit = d - edge_axis[i]
        acc = 0.0
        if bit < 3:
            for j in range(8):
                if (j >> bit) & 1:
                    acc += lane[j]
        else:
            run = (<int64_t> 1) << bit
            base = run
            while base < n_out:
                acc += pe_sum(on + base, run)
                base += 2 * run
        edge_marginal[edge[i]] = acc
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))


cdef void state_sums(const double *joint, int64_t n_out, const int64_t *card, int64_t d,
                     const int64_t *site, const int64_t *edge, const int64_t *edge_axis,
                     const int64_t *edge_state, int64_t n_edges, double *unit_marginal,
                     double *edge_marginal) noexcept nogil:
    """Slot marginals of the summed site (``P(x_v = a)`` at the slot of state ``a``) and, into
    ``edge_marginal[edge[i]]``, ``P(x_v = a_i, x_u = b_i)`` for each bucket edge (its states
    ``edge_state[i]``), from the joint over axes ``0..d`` of cardinalities ``card``."""
    cdef int64_t a, i, hi, run, cu, b
    cdef bint binary = site[1] == 1
    cdef const double *src
    cdef double acc
    for a in range(1 if binary else 0, card[0]):
        unit_marginal[site[0] + a - binary] = pe_sum(joint + a * n_out, n_out)
    for i in range(n_edges):
        run = 1
        for b in range(edge_axis[i] + 1, d + 1):
            run *= card[b]
        cu = card[edge_axis[i]]
        src = joint + edge_state[2 * i] * n_out + edge_state[2 * i + 1] * run
        acc = 0.0
        for hi in range(n_out // (run * cu)):
            acc += pe_sum(src + hi * run * cu, run)
        edge_marginal[edge[i]] = acc


cdef void sum_out_axis(const double *src, double *dst, int64_t size, int64_t run,
                       int64_t card) noexcept nogil:
    """``dst[hi, lo] = sum_c src[hi, c, lo]`` over an axis of ``card`` states and ``run``
    entries below it, of ``size`` entries (``dst == src`` is allowed: every entry is read
    before it is written)."""
    cdef int64_t hi, lo, c
    cdef const double *a
    cdef const double *b
    cdef double *o
    if card == 2:
        for hi in range(size // (2 * run)):
            a = src + 2 * hi * run
            b = a + run
            o = dst + hi * run
            for lo in range(run):
                o[lo] = a[lo] + b[lo]
        return
    for hi in range(size // (run * card)):
        a = src + hi * run * card
        o = dst + hi * run
        for lo in range(run):
            o[lo] = a[lo]
            for c in range(1, card):
                o[lo] += a[c * run + lo]


cdef int sum_out_axes(const double *joint, int64_t d, const int64_t *card, const int64_t *axes,
                      int64_t n_axes, double *out) noexcept nogil:
    """Marginal of a table over the joint axes ``axes`` (increasing, axis 0 among them) from
    the joint over axes ``0..d`` (cardinalities ``card``): the other axes summed out one at a
    time, from the most significant. Returns -1 if the scratch could not be allocated."""
    cdef int64_t a, b, i = 0, size = 1, run, n_missing = d + 1 - n_axes, done = 0
    cdef const double *src = joint
    cdef double *scratch = NULL
    for a in range(d + 1):
        size *= card[a]
    if n_missing == 0:
        memcpy(out, joint, size * sizeof(double))
        return 0
    if n_missing > 1:
        scratch = pe_table_alloc(size // 2, 0)
        if scratch == NULL:
            return -1
    for a in range(d + 1):
        if i < n_axes and axes[i] == a:
            i += 1
            continue
        done += 1
        run = 1
        for b in range(a + 1, d + 1):
            run *= card[b]
        sum_out_axis(src, out if done == n_missing else scratch, size, run, card[a])
        src = scratch
        size //= card[a]
    free(scratch)
    return 0


def backward(
    Program program not None,               # IN  the step list (see Program)
    const double[::1] field,                # IN  (n_units,)
    const double[::1] coupling,             # IN  (n_edges,)
    const double[::1] store,                # IN  the tables of a forward sweep with store
    double[::1] unit_marginal,              # OUT (n_units,) P(slot on) at each step's slots
    double[::1] edge_marginal,              # OUT (n_edges,) P(both slots on) at bucket edges
    int n_threads=1,
    int64_t parallel_min=PARALLEL_MIN,      # IN  outputs with fewer entries run on one thread
):
    """The whole backward sweep: slot and edge marginals from the forward tables.

    In reverse order, ``joint = P(x_N) exp(S(x_v, x_N) - tau(x_N))`` per step; its sums give
    the slot marginals of the summed site, ``P(slot i on, slot j on)`` for the bucket edges,
    and the marginal of each incoming table's scope (summed in a fixed order, so the result
    does not depend on the thread count). Entries of slots and edges not in the plan are not
    written.
    """
    cdef const StepList *P = &program.P
    cdef Work W
    cdef Contraction C
    cdef double **tables = NULL
    cdef double **marginal = NULL
    cdef double *joint = NULL
    cdef double *m
    cdef double one = 1.0
    cdef int64_t s, f, d, t, n_out, dt
    cdef const double *field_p = &field[0] if field.shape[0] else NULL
    cdef const double *coupling_p = &coupling[0] if coupling.shape[0] else NULL
    cdef double *edge_p = &edge_marginal[0] if edge_marginal.shape[0] else NULL
    check_lengths(program, field, coupling, store, "backward")
    if unit_marginal.shape[0] < program.n_units or edge_marginal.shape[0] < program.n_edges:
        raise ValueError(f"backward: unit_marginal and edge_marginal must have at least "
                         f"{program.n_units} and {program.n_edges} entries, got "
                         f"{unit_marginal.shape[0]} and {edge_marginal.shape[0]}")
    cdef int status = 0
    cdef const int64_t *row
    tables = step_buffers(P, &W, "backward")
    marginal = <double **> calloc(P.n_steps + 1, sizeof(double *))
    if marginal == NULL:
        free(tables)
        work_free(&W)
        raise MemoryError("backward: could not allocate the step buffers")
    with nogil:
        for s in range(P.n_steps):
            tables[s] = <double *> &store[P.steps[s * STEP_FIELDS + TABLE]]
        for s in range(P.n_steps - 1, -1, -1):
            row = P.steps + s * STEP_FIELDS
            d = row[N_SCOPE]
            n_out = P.size[s]
            m = &one if d == 0 else marginal[s]
            prepare(P, s, field_p, coupling_p, tables, &W, &C)
            joint = pe_table_alloc(W.card[0] * n_out, 0)
            if joint == NULL or m == NULL:
                status = -1
                break
            if run_blocks(&C, tables[s], m, joint, n_out, n_threads, parallel_min) < 0:
                status = -1
                break
            if W.binary:            # 2^(d+1) entries: the lanes of bit_sums
                unit_marginal[P.sites[2 * row[UNIT]]] = bit_sums(
                    joint + n_out, n_out, d, P.edge + row[EDGE], P.edge_axis + row[EDGE],
                    row[N_EDGE], edge_p)
            else:
                state_sums(joint, n_out, W.card, d, P.sites + 2 * row[UNIT], P.edge + row[EDGE],
                           P.edge_axis + row[EDGE], P.edge_state + 2 * row[EDGE],
                           row[N_EDGE], &unit_marginal[0], edge_p)
            for f in range(1, C.n_tables):        # marginal of each incoming table's scope
                t = P.incoming[2 * (row[IN] + f - 1)]
                dt = P.steps[t * STEP_FIELDS + N_SCOPE]
                marginal[t] = pe_table_alloc(P.size[t], 0)
                if marginal[t] == NULL or sum_out_axes(
                        joint, d, W.card,
                        P.incoming_axes + P.incoming[2 * (row[IN] + f - 1) + 1], dt,
                        marginal[t]) < 0:
                    status = -1
                    break
            if status < 0:
                break
            free(joint)
            joint = NULL
            if d > 0:
                free(marginal[s])
                marginal[s] = NULL
        free(joint)
        for s in range(P.n_steps):
            free(marginal[s])
        free(marginal)
        free(tables)
        work_free(&W)
    if status < 0:
        raise MemoryError("backward: could not allocate a marginal table")


ctypedef fused state_t:      # the states of sample's output: int8 up to 127 states, else int
    int8_t
    int


cdef inline double state_score(const Contraction *C, const state_t *x, const int64_t *column,
                               int64_t d, int64_t a) noexcept nogil:
    """``S(a, x_N) = sum_f T_f[a, x_N]``: the bucket's log weight of state ``a`` of the summed
    site given the states of its scope, ``x[column[b]]`` for scope axis ``b``."""
    cdef int f
    cdef int64_t index, b
    cdef const int64_t *st
    cdef double total = 0.0
    for f in range(C.n_tables):
        st = C.stride + f * C.n_axes
        index = a * st[0]
        for b in range(1, d + 1):
            index = index + x[column[b]] * st[b]
        total = total + C.table[f][index]
    return total


def sample(
    Program program not None,               # IN  the step list (see Program)
    const double[::1] field,                # IN  (n_units,)
    const double[::1] coupling,             # IN  (n_edges,)
    const double[::1] store,                # IN  the tables of a forward sweep with store
    const double[:, ::1] uniforms,          # IN  (n_samples, n_steps): column k for step n-1-k
    state_t[:, ::1] x,                      # OUT (n_samples, n_units) each plan site's state at
                                            #     its first slot (a binary site: its bit)
    int n_threads=1,
    bint maximum=False,                     # IN  argmax (tables of a max-product forward sweep)
):
    """Backward sampling: steps in reverse order, the summed site's state drawn from
    ``P(x_v = a | x_N) ~ exp(S(a, x_N))``, ``S(a, x_N) = sum_f T_f[a, x_N]`` (samples are
    independent: any thread count gives the same draws). Two states: ``x_v = [u (1 +
    exp(-logit)) < 1]`` with ``logit = S(1) - S(0)``; more: the first state whose cumulative
    weight exceeds ``u`` times the total. With ``maximum`` (after a max-product forward sweep)
    the uniforms are not read (shape ``(n_samples, 0)`` will do) and ``x_v`` is the lowest
    state of largest ``S``: back-tracking, a maximising state. Each site's state is written
    at its first slot's column, so binary sites' columns are their bits; ``x`` is int8 when
    every site has at most 127 states."""
    cdef const StepList *P = &program.P
    cdef Work W
    cdef Contraction C
    cdef double **tables = NULL
    cdef int64_t s, k, n, a, index, d, v, cv, n_samples = x.shape[0]
    cdef int f, pick
    cdef double logit, hi, score, total, target
    cdef const int64_t *row
    cdef const int64_t *st
    cdef int64_t *column = NULL
    cdef const double *field_p = &field[0] if field.shape[0] else NULL
    cdef const double *coupling_p = &coupling[0] if coupling.shape[0] else NULL
    if uniforms.shape[0] != n_samples or (uniforms.shape[1] != P.n_steps and not maximum):
        raise ValueError("sample: uniforms must have shape (n_samples, n_steps)")
    check_lengths(program, field, coupling, store, "sample")
    if x.shape[1] < program.n_units:
        raise ValueError(f"sample: x must have at least {program.n_units} columns, got "
                         f"{x.shape[1]}")
    if state_t is int8_t and P.max_card > 127:
        raise ValueError("sample: x must be int (not int8) for sites of more than 127 states")
    tables = step_buffers(P, &W, "sample")
    column = <int64_t *> malloc(P.max_axes * sizeof(int64_t))
    if column == NULL:
        free(tables)
        work_free(&W)
        raise MemoryError("sample: could not allocate the step buffers")
    with nogil:
        for s in range(P.n_steps):
            tables[s] = <double *> &store[P.steps[s * STEP_FIELDS + TABLE]]
        for k in range(P.n_steps):
            s = P.n_steps - 1 - k
            row = P.steps + s * STEP_FIELDS
            d = row[N_SCOPE]
            v = P.sites[2 * row[UNIT]]
            cv = P.card[row[UNIT]]
            for a in range(1, d + 1):       # the scope's columns in x
                column[a] = P.sites[2 * P.scope[row[SCOPE] + a - 1]]
            prepare(P, s, field_p, coupling_p, tables, &W, &C)
            for n in prange(n_samples, schedule="static",
                            num_threads=n_threads if n_samples >= 4096 else 1):
                if cv == 2:
                    logit = 0.0
                    for f in range(C.n_tables):
                        st = C.stride + f * C.n_axes
                        index = 0
                        for a in range(1, d + 1):
                            index = index + x[n, column[a]] * st[a]
                        logit = logit + (C.table[f][index + st[0]] - C.table[f][index])
                    if maximum:
                        x[n, v] = logit > 0.0
                    else:
                        x[n, v] = uniforms[n, k] * (1.0 + exp(-logit)) < 1.0
                    continue
                hi = -INFINITY
                pick = 0
                for a in range(cv):
                    score = state_score(&C, &x[n, 0], column, d, a)
                    if score > hi:
                        hi = score
                        pick = <int> a
                if not maximum:
                    total = 0.0
                    for a in range(cv):
                        total = total + exp(state_score(&C, &x[n, 0], column, d, a) - hi)
                    target = uniforms[n, k] * total
                    total = 0.0
                    pick = <int> (cv - 1)
                    for a in range(cv):
                        total = total + exp(state_score(&C, &x[n, 0], column, d, a) - hi)
                        if target < total:
                            pick = <int> a
                            break
                x[n, v] = <state_t> pick
        free(column)
        free(tables)
        work_free(&W)


# -- building the step list ------------------------------------------------------------------------
def build_program(
    const int64_t[:, ::1] pairs,            # IN  (n_pairs, 2) slot edges between plan sites
                                            #     (local site ids of their two ends)
    const int64_t[:, ::1] pair_state,       # IN  (n_pairs, 2) state of each end in its site
    const int64_t[::1] order,               # IN  (n,) local site eliminated at each step
    const int64_t[::1] scope_start,         # IN  (n + 1,) each step's scope in scope_units
    const int64_t[::1] scope_units,         # IN  neighbours when eliminated (local ids, any order)
    const int64_t[::1] unit_id,             # IN  (n,) flat site id of each local site
    const int64_t[::1] pair_id,             # IN  (n_pairs,) graph edge id of each pair
    sites,                                  # IN  (n_sites, 2) first slot and slots of each site
    int64_t n_units,                        # IN  slots of the flat graph
    int64_t n_edges,                        # IN  edges of the flat graph
):
    """The :class:`Program` (step list ``steps, scope, edge, edge_axis, edge_state, incoming,
    incoming_axes`` and ``sites``) of an order.

    Scopes are sorted by elimination position; each slot edge goes to the bucket of its first
    eliminated end (its states oriented summed site first); a step's table goes to the bucket
    of its scope's first site.
    """
    cdef int64_t n = order.shape[0], n_pairs = pairs.shape[0], s, i, j, u, p, c, a, tmp
    cdef int64_t total_scope = scope_units.shape[0], n_incoming = 0, n_axes_total = 0, table = 0
    cdef int64_t first, other, size
    sites_a = np.ascontiguousarray(np.reshape(sites, (-1, 2)), np.int64)
    card_a = np.where(sites_a[:, 1] == 1, 2, sites_a[:, 1])
    position_a = np.empty(n, np.int64)
    axis_a = np.zeros(n, np.int64)
    steps_a = np.zeros((n, STEP_FIELDS), np.int64)
    scope_a = np.empty(total_scope, np.int64)
    local_a = np.empty(total_scope, np.int64)
    edge_a = np.empty(n_pairs, np.int64)
    edge_axis_a = np.empty(n_pairs, np.int64)
    edge_state_a = np.empty((n_pairs, 2), np.int64)
    cdef int64_t[::1] position = position_a, axis_of = axis_a, card = card_a
    cdef int64_t[:, ::1] steps = steps_a, edge_state = edge_state_a
    cdef int64_t[::1] scope = scope_a, local = local_a, edge = edge_a, edge_axis = edge_axis_a
    for s in range(n):
        position[order[s]] = s
    for s in range(n):              # scopes in elimination order (insertion sort: short)
        steps[s, UNIT] = unit_id[order[s]]
        steps[s, SCOPE] = scope_start[s]
        steps[s, N_SCOPE] = scope_start[s + 1] - scope_start[s]
        steps[s, TABLE] = table
        size = 1
        for i in range(scope_start[s], scope_start[s + 1]):
            u = scope_units[i]
            size *= card[unit_id[u]]
            j = i
            while j > scope_start[s] and position[local[j - 1]] > position[u]:
                local[j] = local[j - 1]
                j -= 1
            local[j] = u
        table += size
        for i in range(scope_start[s], scope_start[s + 1]):
            scope[i] = unit_id[local[i]]
        if steps[s, N_SCOPE]:
            c = position[local[scope_start[s]]]
            steps[c, N_IN] += 1
            n_incoming += 1
            n_axes_total += steps[s, N_SCOPE]
    for p in range(n_pairs):        # bucket sizes
        first = pairs[p, 0] if position[pairs[p, 0]] < position[pairs[p, 1]] else pairs[p, 1]
        steps[position[first], N_EDGE] += 1
    a = 0
    c = 0
    for s in range(n):
        steps[s, EDGE] = a
        a += steps[s, N_EDGE]
        steps[s, IN] = c
        c += steps[s, N_IN]
        steps[s, N_EDGE] = 0
        steps[s, N_IN] = 0
    incoming_a = np.empty((n_incoming, 2), np.int64)
    incoming_axes_a = np.empty(n_axes_total, np.int64)
    cdef int64_t[:, ::1] incoming = incoming_a
    cdef int64_t[::1] incoming_axes = incoming_axes_a
    for p in range(n_pairs):        # pairs in bucket order (stable), other end's local id for now
        i = 0 if position[pairs[p, 0]] < position[pairs[p, 1]] else 1
        first, other = pairs[p, i], pairs[p, 1 - i]
        s = position[first]
        j = steps[s, EDGE] + steps[s, N_EDGE]
        steps[s, N_EDGE] += 1
        edge[j] = pair_id[p]
        edge_axis[j] = other
        edge_state[j, 0] = pair_state[p, i]
        edge_state[j, 1] = pair_state[p, 1 - i]
    for s in range(n):              # tables into their consumer's bucket, in step order
        if steps[s, N_SCOPE]:
            c = position[local[scope_start[s]]]
            incoming[steps[c, IN] + steps[c, N_IN], 0] = s
            steps[c, N_IN] += 1
    a = 0
    for c in range(n):
        for i in range(steps[c, SCOPE], steps[c, SCOPE] + steps[c, N_SCOPE]):
            axis_of[local[i]] = i - steps[c, SCOPE] + 1
        for i in range(steps[c, EDGE], steps[c, EDGE] + steps[c, N_EDGE]):
            edge_axis[i] = axis_of[edge_axis[i]]
            j = i               # sort the bucket by axis (stable)
            while j > steps[c, EDGE] and edge_axis[j - 1] > edge_axis[j]:
                tmp = edge_axis[j]; edge_axis[j] = edge_axis[j - 1]; edge_axis[j - 1] = tmp
                tmp = edge[j]; edge[j] = edge[j - 1]; edge[j - 1] = tmp
                for u in range(2):
                    tmp = edge_state[j, u]
                    edge_state[j, u] = edge_state[j - 1, u]
                    edge_state[j - 1, u] = tmp
                j -= 1
        for i in range(steps[c, IN], steps[c, IN] + steps[c, N_IN]):
            s = incoming[i, 0]
            incoming[i, 1] = a
            incoming_axes[a] = 0
            for j in range(1, steps[s, N_SCOPE]):
                incoming_axes[a + j] = axis_of[local[steps[s, SCOPE] + j]]
            a += steps[s, N_SCOPE]
    return Program(steps_a, scope_a, edge_a, edge_axis_a, edge_state_a, incoming_a,
                   incoming_axes_a, sites_a, n_units, n_edges)
