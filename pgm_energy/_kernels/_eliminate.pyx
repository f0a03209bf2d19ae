"""Variable elimination kernels: the step list (one ``Program``) and the log-space sweeps.

**Contraction.** One elimination step sums a unit ``v`` out of the log-space tables ``T_f``
that mention it. Over the joint axes ``(v, o_1, ..., o_n)`` (``v`` first, the output axes
after it) every table is addressed through a stride per axis (0 where the table does not
have that axis), and

    forward:   out[o] = log sum_{x_v} exp(S(x_v, o)),      S(x_v, o) = sum_f T_f[x_v, o]
    backward:  joint[x_v, o] = marginal[o] * exp(S(x_v, o) - out[o])

The output index runs in blocks: the trailing output axes (up to ``BLOCK_AXES``) form one
block, the leading ones pick the block. Per block each table is read at precomputed inner
offsets, as a contiguous run, or as one constant, so the inner loops are plain array adds;
blocks are independent and run on OpenMP threads (``prange``) when the output has at least
``PARALLEL_MIN`` (2^17) entries, so the result does not depend on the thread count. Binary axes
take the vectorised ``logaddexp`` through ``pe_softplus_array``. ``contract`` runs one step
(the numpy twin ``tests/reference/exact.py:contract`` checks it); the sweeps run every step of a
plan through the same block loop.

**Step list.** A plan is a :class:`Program`: six flat int64 arrays, built once by
``build_program`` from an order of ``_order`` and checked once, which ``forward``,
``backward`` and ``sample`` all take:

* ``steps`` (n_steps, 8): unit (flat id), scope start and length, bucket-edge start and
  count, incoming start and count, offset of the step's table in the table store;
* ``scope``: each step's scope (flat unit ids), in elimination order: output axis ``a``
  (1-based) is ``scope[start + a - 1]``; the step's table is over its scope, axis 1 most
  significant;
* ``edge``, ``edge_axis``: the graph edges in each bucket (first end eliminated at that
  step) and the joint axis of their other end, sorted by axis;
* ``incoming`` (n_incoming, 2): the steps whose tables are in the bucket, and where their
  joint axes start in ``incoming_axes`` (a table of scope length ``d`` has ``d`` axes, the
  first one 0: its first unit is the one summed out).

Each step's local table ``x_v (f_v + sum_e c_e x_u)`` (over ``v`` and the bucket edges' other
ends, in axis order) is built in the kernel from ``field`` and ``coupling``.

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
    BLOCK_AXES = 10         # a block spans the last 10 output axes (1024 entries)
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
    int zero_first              # table 0 is 0 wherever x_v = 0 (a step's local table): skip it


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


# -- addressing of binary tables -------------------------------------------------------------------
cdef inline void set_stride(int64_t *row, const int64_t *axes, int64_t n) noexcept nogil:
    """Strides of a table over the joint axes ``axes`` (its own order, most significant first)."""
    cdef int64_t i
    for i in range(n):
        row[axes[i]] = (<int64_t> 1) << (n - 1 - i)


cdef void finish_addressing(Contraction *C, int64_t *stride, int64_t *offset, int *kind,
                            int n_out) noexcept nogil:
    """Blocks over the last ``min(n_out, BLOCK_AXES)`` output axes: in-block offsets and kinds
    from the strides (rows of ``stride`` already set, ``n_out + 1`` per table)."""
    cdef int inner = n_out if n_out < BLOCK_AXES else BLOCK_AXES
    cdef int64_t n_inner = (<int64_t> 1) << inner, k, half, step
    cdef int f, b
    cdef bint contiguous, constant
    cdef int64_t *off
    C.n_axes = n_out + 1
    C.n_outer = n_out - inner
    C.n_inner = n_inner
    C.card = BINARY
    C.stride = stride
    C.inner_offset = offset
    C.kind = kind
    for f in range(C.n_tables):
        contiguous = constant = True    # from the inner axes' strides
        for b in range(inner):          # bit b of k (from the least significant) = axis n_out - b
            step = stride[f * (n_out + 1) + n_out - b]
            contiguous = contiguous and step == (<int64_t> 1) << b
            constant = constant and step == 0
        if constant or contiguous:      # offsets not read
            kind[f] = CONSTANT if constant else CONTIGUOUS
            continue
        kind[f] = GATHER
        off = offset + f * n_inner
        off[0] = 0
        for b in range(inner):
            half = (<int64_t> 1) << b
            step = stride[f * (n_out + 1) + n_out - b]
            for k in range(half):
                off[half + k] = off[k] + step


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
    inner = (<int64_t> 1) << (n_out if n_out < BLOCK_AXES else BLOCK_AXES)
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
            set_stride(&stride_v[f, 0], &ax[0], ax.shape[0])
            pointers[f] = &view[0]
        C.n_tables = n_tables
        C.table = pointers
        C.zero_first = 0
        finish_addressing(&C, &stride_v[0, 0], &offset_v[0, 0], &kind_v[0], n_out)
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
    const int64_t *incoming         # (n_incoming, 2)
    const int64_t *incoming_axes
    int64_t max_tables              # the largest step's tables (its own and incoming ones),
    int64_t max_axes                # joint axes, bucket edges and block entries: the sizes
    int64_t max_edges               # of the scratch (work_alloc)
    int64_t max_inner


cdef struct Work:               # per-step scratch, sized once for the largest step
    double *local                   # the step's local table
    const double **table            # (max tables,) pointers
    int64_t *stride                 # (max tables, max axes)
    int64_t *offset                 # (max tables, max inner)
    int *kind


cdef int work_alloc(const StepList *P, Work *W) noexcept nogil:
    """Allocate the scratch (the pointers are NULL on failure or valid; work_free either way)."""
    W.local = <double *> malloc((<int64_t> 2 << P.max_edges) * sizeof(double))
    W.table = <const double **> malloc(P.max_tables * sizeof(double *))
    W.stride = <int64_t *> malloc(P.max_tables * P.max_axes * sizeof(int64_t))
    W.offset = <int64_t *> malloc(P.max_tables * P.max_inner * sizeof(int64_t))
    W.kind = <int *> malloc(P.max_tables * sizeof(int))
    if (W.local == NULL or W.table == NULL or W.stride == NULL or W.offset == NULL
            or W.kind == NULL):
        return -1
    return 0


cdef void work_free(Work *W) noexcept nogil:
    free(W.local)
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


cdef void prepare(const StepList *P, int64_t s, const double *field, const double *coupling,
                  double **tables, Work *W, Contraction *C) noexcept nogil:
    """Local table, table pointers and addressing of step ``s`` (inputs from ``tables``)."""
    cdef const int64_t *row = P.steps + s * STEP_FIELDS
    cdef int64_t d = row[N_SCOPE], k = row[N_EDGE], i, j, size, t, n_axes = d + 1
    cdef const int64_t *edges = P.edge + row[EDGE]
    cdef const int64_t *edge_axis = P.edge_axis + row[EDGE]
    cdef const int64_t *entry
    cdef double *g = W.local + ((<int64_t> 1) << k)
    cdef double c
    cdef int f
    C.n_tables = <int> (1 + row[N_IN])
    memset(W.stride, 0, C.n_tables * n_axes * sizeof(int64_t))
    # local table x_v (f_v + sum_e c_e x_u) over (x_v, the edges' other ends in axis order)
    for i in range((<int64_t> 1) << k):
        W.local[i] = 0.0
    g[0] = field[row[UNIT]]
    size = 1
    for i in range(k):
        c = coupling[edges[i]]
        for j in range(size - 1, -1, -1):
            g[2 * j + 1] = g[j] + c
            g[2 * j] = g[j]
        size *= 2
    W.table[0] = W.local
    W.stride[0] = (<int64_t> 1) << k
    for i in range(k):
        W.stride[edge_axis[i]] = (<int64_t> 1) << (k - 1 - i)
    for f in range(1, C.n_tables):
        entry = P.incoming + 2 * (row[IN] + f - 1)
        t = entry[0]
        W.table[f] = tables[t]
        set_stride(W.stride + f * n_axes, P.incoming_axes + entry[1],
                   P.steps[t * STEP_FIELDS + N_SCOPE])
    C.table = W.table
    C.zero_first = 1
    finish_addressing(C, W.stride, W.offset, W.kind, <int> d)


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

    ``Program(steps, scope, edge, edge_axis, incoming, incoming_axes, n_units, n_edges)``
    keeps read-only copies of the six arrays and raises ``ValueError`` unless every index in
    them is in range: units below ``n_units``, edges below ``n_edges``, each step's scope,
    bucket and incoming tables inside their arrays, scopes of at most ``MAX_AXES - 1`` units,
    bucket edges' axes inside the step's scope, each step with a scope the input of exactly
    one later step (at axes ``0 = a_0 < a_1 < ... <= d`` of that step's ``d`` scope units),
    tables at offsets ``>= 0``. :func:`forward`, :func:`backward` and :func:`sample` all take
    it and only check their own arrays' lengths against ``n_units``, ``n_edges`` and
    ``n_stored`` (the entries of the table store: step ``s``'s table at ``steps[s, 7]``, of
    ``2^scope`` entries). Built by :func:`build_program`.
    """
    cdef readonly object steps, scope, edge, edge_axis, incoming, incoming_axes
    cdef readonly int64_t n_units, n_edges, n_stored
    cdef StepList P

    def __init__(self, steps, scope, edge, edge_axis, incoming, incoming_axes,
                 int64_t n_units, int64_t n_edges):
        if n_units < 0 or n_edges < 0:
            raise ValueError(f"Program: n_units and n_edges must be >= 0, got {n_units}, "
                             f"{n_edges}")
        steps = frozen(steps, 2, STEP_FIELDS, "steps")
        scope = frozen(scope, 1, 0, "scope")
        edge = frozen(edge, 1, 0, "edge")
        edge_axis = frozen(edge_axis, 1, 0, "edge_axis")
        incoming = frozen(incoming, 2, 2, "incoming")
        incoming_axes = frozen(incoming_axes, 1, 0, "incoming_axes")
        if edge_axis.shape[0] != edge.shape[0]:
            raise ValueError("Program: edge and edge_axis must have the same length")
        cdef const int64_t[:, ::1] st = steps
        cdef const int64_t[::1] sc = scope, e = edge, ea = edge_axis
        cdef const int64_t[:, ::1] inc = incoming
        cdef const int64_t[::1] ia = incoming_axes
        cdef StepList P
        P.n_steps = st.shape[0]
        P.steps = &st[0, 0] if st.shape[0] else NULL
        P.scope = &sc[0] if sc.shape[0] else NULL
        P.edge = &e[0] if e.shape[0] else NULL
        P.edge_axis = &ea[0] if ea.shape[0] else NULL
        P.incoming = &inc[0, 0] if inc.shape[0] else NULL
        P.incoming_axes = &ia[0] if ia.shape[0] else NULL
        n_stored = check_steps(&P, n_units, n_edges, sc.shape[0], e.shape[0], inc.shape[0],
                               ia.shape[0])
        # all checked: only now does the object take the arrays
        self.steps, self.scope, self.edge, self.edge_axis = steps, scope, edge, edge_axis
        self.incoming, self.incoming_axes = incoming, incoming_axes
        self.n_units, self.n_edges, self.n_stored = n_units, n_edges, n_stored
        self.P = P


cdef int64_t check_steps(StepList *P, int64_t n_units, int64_t n_edges, int64_t n_scope,
                         int64_t n_edge, int64_t n_incoming, int64_t n_axes) except -1:
    """Check every index of a step list (see Program) and set its scratch sizes; return the
    entries of its table store. O(size of the list)."""
    cdef int64_t s, i, j, t, a, d, dt, inner, stored = 0
    cdef const int64_t *row
    cdef const int64_t *axes
    consumed_a = np.zeros(P.n_steps, np.int64)
    cdef int64_t[::1] consumed = consumed_a
    P.max_tables, P.max_axes, P.max_edges, P.max_inner = 1, 1, 0, 1
    for s in range(P.n_steps):
        row = P.steps + s * STEP_FIELDS
        d = row[N_SCOPE]
        if not 0 <= row[UNIT] < n_units:
            raise ValueError(f"step {s}: unit {row[UNIT]} outside the {n_units} units")
        if not (0 <= d < MAX_AXES and 0 <= row[SCOPE] <= n_scope - d):
            raise ValueError(f"step {s}: its scope is outside the scope array or has more "
                             f"than {MAX_AXES - 1} units")
        for i in range(row[SCOPE], row[SCOPE] + d):
            if not 0 <= P.scope[i] < n_units:
                raise ValueError(f"step {s}: unit {P.scope[i]} outside the {n_units} units")
        if not (0 <= row[N_EDGE] <= d and 0 <= row[EDGE] <= n_edge - row[N_EDGE]):
            raise ValueError(f"step {s}: its bucket is outside the edge array or larger than "
                             f"its scope")
        for i in range(row[EDGE], row[EDGE] + row[N_EDGE]):
            if not 0 <= P.edge[i] < n_edges:
                raise ValueError(f"step {s}: edge {P.edge[i]} outside the {n_edges} edges")
            if not (1 <= P.edge_axis[i] <= d
                    and (i == row[EDGE] or P.edge_axis[i - 1] <= P.edge_axis[i])):
                raise ValueError(f"step {s}: bucket edge axes must be increasing in 1..{d}")
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
        if row[TABLE] + ((<int64_t> 1) << d) > stored:
            stored = row[TABLE] + ((<int64_t> 1) << d)
        inner = (<int64_t> 1) << (d if d < BLOCK_AXES else BLOCK_AXES)
        P.max_tables = max(P.max_tables, 1 + row[N_IN])
        P.max_axes = max(P.max_axes, d + 1)
        P.max_edges = max(P.max_edges, row[N_EDGE])
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
):
    """The whole forward sweep: ``log sum_x exp(sum_i f_i x_i + sum_e c_e x_i x_j)``.

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
                tables[s] = pe_table_alloc((<int64_t> 1) << d, 0)
                if tables[s] == NULL:
                    status = -1
                    break
            prepare(P, s, field_p, coupling_p, tables, &W, &C)
            if run_blocks(&C, tables[s], NULL, NULL, (<int64_t> 1) << d, n_threads,
                          parallel_min) < 0:
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


cdef void sum_out_bit(const double *src, double *dst, int64_t size, int64_t bit) noexcept nogil:
    """``dst[hi, lo] = src[hi, 0, lo] + src[hi, 1, lo]`` over bit ``bit`` of ``size`` entries
    (``dst == src`` is allowed: every entry is read before it is written)."""
    cdef int64_t run = (<int64_t> 1) << bit, hi, lo
    cdef const double *a
    cdef const double *b
    cdef double *o
    for hi in range(size >> (bit + 1)):
        a = src + 2 * hi * run
        b = a + run
        o = dst + hi * run
        for lo in range(run):
            o[lo] = a[lo] + b[lo]


cdef int sum_out_axes(const double *joint, int64_t d, const int64_t *axes, int64_t n_axes,
                      double *out) noexcept nogil:
    """Marginal of a table over the joint axes ``axes`` (increasing, axis 0 among them) from
    the joint over axes ``0..d`` (2^(d+1) entries): the other axes summed out one at a time,
    from the most significant. Returns -1 if the scratch could not be allocated."""
    cdef int64_t a, i = 0, size = (<int64_t> 2) << d, n_missing = d + 1 - n_axes, done = 0
    cdef const double *src = joint
    cdef double *scratch = NULL
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
        sum_out_bit(src, out if done == n_missing else scratch, size, d - a)
        src = scratch
        size //= 2
    free(scratch)
    return 0


def backward(
    Program program not None,               # IN  the step list (see Program)
    const double[::1] field,                # IN  (n_units,)
    const double[::1] coupling,             # IN  (n_edges,)
    const double[::1] store,                # IN  the tables of a forward sweep with store
    double[::1] unit_marginal,              # OUT (n_units,) P(x_v = 1) at each step's unit
    double[::1] edge_marginal,              # OUT (n_edges,) P(x_i = 1, x_j = 1) at bucket edges
    int n_threads=1,
    int64_t parallel_min=PARALLEL_MIN,      # IN  outputs with fewer entries run on one thread
):
    """The whole backward sweep: unit and edge marginals from the forward tables.

    In reverse order, ``joint = P(x_N) exp(S(x_v, x_N) - tau(x_N))`` per step; its sums give
    ``P(x_v = 1)``, ``P(x_v = 1, x_u = 1)`` for the bucket edges, and the marginal of each
    incoming table's scope (summed in a fixed order, so the result does not depend on the
    thread count). Entries of units and edges not in the plan are not written.
    """
    cdef const StepList *P = &program.P
    cdef Work W
    cdef Contraction C
    cdef double **tables = NULL
    cdef double **marginal = NULL
    cdef double *joint = NULL
    cdef double *m
    cdef double *on
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
            n_out = (<int64_t> 1) << d
            m = &one if d == 0 else marginal[s]
            prepare(P, s, field_p, coupling_p, tables, &W, &C)
            joint = pe_table_alloc(2 * n_out, 0)
            if joint == NULL or m == NULL:
                status = -1
                break
            if run_blocks(&C, tables[s], m, joint, n_out, n_threads, parallel_min) < 0:
                status = -1
                break
            on = joint + n_out
            unit_marginal[row[UNIT]] = bit_sums(on, n_out, d, P.edge + row[EDGE],
                                                P.edge_axis + row[EDGE], row[N_EDGE],
                                                edge_p)
            for f in range(1, C.n_tables):        # marginal of each incoming table's scope
                t = P.incoming[2 * (row[IN] + f - 1)]
                dt = P.steps[t * STEP_FIELDS + N_SCOPE]
                marginal[t] = pe_table_alloc((<int64_t> 1) << dt, 0)
                if marginal[t] == NULL or sum_out_axes(
                        joint, d, P.incoming_axes + P.incoming[2 * (row[IN] + f - 1) + 1],
                        dt, marginal[t]) < 0:
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


def sample(
    Program program not None,               # IN  the step list (see Program)
    const double[::1] field,                # IN  (n_units,)
    const double[::1] coupling,             # IN  (n_edges,)
    const double[::1] store,                # IN  the tables of a forward sweep with store
    const double[:, ::1] uniforms,          # IN  (n_samples, n_steps): column k for step n-1-k
    int8_t[:, ::1] x,                       # OUT (n_samples, n_units) 0/1 at the plan's units
    int n_threads=1,
):
    """Backward sampling: steps in reverse order, ``x_v = [u (1 + exp(-logit)) < 1]`` with
    ``logit = sum_f T_f[1, x_N] - T_f[0, x_N]`` (samples are independent: any thread count
    gives the same draws)."""
    cdef const StepList *P = &program.P
    cdef Work W
    cdef Contraction C
    cdef double **tables = NULL
    cdef int64_t s, k, n, a, index, d, v, n_samples = x.shape[0]
    cdef int f
    cdef double logit
    cdef const int64_t *row
    cdef const int64_t *sc
    cdef const int64_t *st
    cdef const double *field_p = &field[0] if field.shape[0] else NULL
    cdef const double *coupling_p = &coupling[0] if coupling.shape[0] else NULL
    if uniforms.shape[0] != n_samples or uniforms.shape[1] != P.n_steps:
        raise ValueError("sample: uniforms must have shape (n_samples, n_steps)")
    check_lengths(program, field, coupling, store, "sample")
    if x.shape[1] < program.n_units:
        raise ValueError(f"sample: x must have at least {program.n_units} columns, got "
                         f"{x.shape[1]}")
    tables = step_buffers(P, &W, "sample")
    with nogil:
        for s in range(P.n_steps):
            tables[s] = <double *> &store[P.steps[s * STEP_FIELDS + TABLE]]
        for k in range(P.n_steps):
            s = P.n_steps - 1 - k
            row = P.steps + s * STEP_FIELDS
            d = row[N_SCOPE]
            v = row[UNIT]
            sc = P.scope + row[SCOPE]
            prepare(P, s, field_p, coupling_p, tables, &W, &C)
            for n in prange(n_samples, schedule="static",
                            num_threads=n_threads if n_samples >= 4096 else 1):
                logit = 0.0
                for f in range(C.n_tables):
                    st = C.stride + f * C.n_axes
                    index = 0
                    for a in range(1, d + 1):
                        index = index + x[n, sc[a - 1]] * st[a]
                    logit = logit + (C.table[f][index + st[0]] - C.table[f][index])
                x[n, v] = uniforms[n, k] * (1.0 + exp(-logit)) < 1.0
        free(tables)
        work_free(&W)


# -- building the step list ------------------------------------------------------------------------
def build_program(
    const int64_t[:, ::1] pairs,            # IN  (n_pairs, 2) edges between plan units (local ids)
    const int64_t[::1] order,               # IN  (n,) local unit eliminated at each step
    const int64_t[::1] scope_start,         # IN  (n + 1,) each step's scope in scope_units
    const int64_t[::1] scope_units,         # IN  neighbours when eliminated (local ids, any order)
    const int64_t[::1] unit_id,             # IN  (n,) flat id of each local unit
    const int64_t[::1] pair_id,             # IN  (n_pairs,) graph edge id of each pair
    int64_t n_units,                        # IN  units of the flat graph (flat ids below it)
    int64_t n_edges,                        # IN  edges of the flat graph
):
    """The :class:`Program` (step list ``steps, scope, edge, edge_axis, incoming,
    incoming_axes``) of an order.

    Scopes are sorted by elimination position; each pair goes to the bucket of its first
    eliminated end; a step's table goes to the bucket of its scope's first unit.
    """
    cdef int64_t n = order.shape[0], n_pairs = pairs.shape[0], s, i, j, u, p, c, a, tmp
    cdef int64_t total_scope = scope_units.shape[0], n_incoming = 0, n_axes_total = 0, table = 0
    cdef int64_t first, other
    position_a = np.empty(n, np.int64)
    axis_a = np.zeros(n, np.int64)
    steps_a = np.zeros((n, STEP_FIELDS), np.int64)
    scope_a = np.empty(total_scope, np.int64)
    local_a = np.empty(total_scope, np.int64)
    edge_a = np.empty(n_pairs, np.int64)
    edge_axis_a = np.empty(n_pairs, np.int64)
    cdef int64_t[::1] position = position_a, axis_of = axis_a
    cdef int64_t[:, ::1] steps = steps_a
    cdef int64_t[::1] scope = scope_a, local = local_a, edge = edge_a, edge_axis = edge_axis_a
    for s in range(n):
        position[order[s]] = s
    for s in range(n):              # scopes in elimination order (insertion sort: short)
        steps[s, UNIT] = unit_id[order[s]]
        steps[s, SCOPE] = scope_start[s]
        steps[s, N_SCOPE] = scope_start[s + 1] - scope_start[s]
        steps[s, TABLE] = table
        table += (<int64_t> 1) << steps[s, N_SCOPE]
        for i in range(scope_start[s], scope_start[s + 1]):
            u = scope_units[i]
            j = i
            while j > scope_start[s] and position[local[j - 1]] > position[u]:
                local[j] = local[j - 1]
                j -= 1
            local[j] = u
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
        if position[pairs[p, 0]] < position[pairs[p, 1]]:
            first, other = pairs[p, 0], pairs[p, 1]
        else:
            first, other = pairs[p, 1], pairs[p, 0]
        s = position[first]
        i = steps[s, EDGE] + steps[s, N_EDGE]
        steps[s, N_EDGE] += 1
        edge[i] = pair_id[p]
        edge_axis[i] = other
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
                j -= 1
        for i in range(steps[c, IN], steps[c, IN] + steps[c, N_IN]):
            s = incoming[i, 0]
            incoming[i, 1] = a
            incoming_axes[a] = 0
            for j in range(1, steps[s, N_SCOPE]):
                incoming_axes[a + j] = axis_of[local[steps[s, SCOPE] + j]]
            a += steps[s, N_SCOPE]
    return Program(steps_a, scope_a, edge_a, edge_axis_a, incoming_a, incoming_axes_a, n_units,
                   n_edges)
