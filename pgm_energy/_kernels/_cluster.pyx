"""Cluster-move kernels (``_cluster.h``): Swendsen-Wang and Wolff sweeps, many chains.

Chains run on OpenMP threads (a ``prange`` over chains, never over the units of one chain),
each with its own xoshiro256+ stream and inverse temperature, so results do not depend on
the thread count. Each thread has its own work space (union-find, queue, bond
probabilities and thresholds), allocated once per call; Swendsen-Wang's bond order (edges by
larger end) is computed once per call. The draw order is documented in
``pgm_energy/cluster.py``.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.math cimport NAN

import numpy as np

cdef extern from "_cluster.h" nogil:
    ctypedef struct pe_cluster_graph:
        long n
        long n_edges
        const int32_t *edge_i
        const int32_t *edge_j
        const double *coupling
        const int64_t *indptr
        const int32_t *neighbour
        const int32_t *neighbour_edge
        const double *field
        const uint8_t *free_unit
        const int8_t *edge_sign
        const int32_t *bond_order
        int ghost_bonds
        long k
    ctypedef struct pe_bond_block:
        pass
    int pe_cluster_avx2
    ctypedef struct pe_cluster_scratch:
        int32_t *parent
        int32_t *label
        int32_t *queue
        int32_t *free_list
        int64_t *mark
        int32_t *bonded
        int32_t *pairs
        double beta
        double *p_edge
        pe_bond_block *bond_block
        uint64_t *threshold_low
        double *p_field
        double *weight
    void pe_cluster_edge_signs(const pe_cluster_graph *g, int8_t *edge_sign)
    void pe_cluster_bond_order(const pe_cluster_graph *g, int64_t *count, int32_t *order)
    void pe_cluster_probabilities(const pe_cluster_graph *g, double beta,
                                  pe_cluster_scratch *w)
    void pe_swendsen_wang_spins(const pe_cluster_graph *g, int8_t *s, pe_cluster_scratch *w,
                                uint64_t *t, long n_sweeps, int64_t *stats)
    void pe_wolff_spins(const pe_cluster_graph *g, int8_t *s, pe_cluster_scratch *w,
                        uint64_t *t, long n_sweeps, int64_t *stats)
    void pe_swendsen_wang_potts(const pe_cluster_graph *g, uint16_t *x, double beta,
                                pe_cluster_scratch *w, uint64_t *t, long n_sweeps,
                                int64_t *stats)

cdef enum:
    _SWENDSEN_WANG = 0
    _WOLFF = 1
    _POTTS = 2

#: Algorithm codes of ``sweep``.
SWENDSEN_WANG, WOLFF, POTTS = _SWENDSEN_WANG, _WOLFF, _POTTS


def set_avx2(bint on):
    """Let Swendsen-Wang's bond pass use AVX2 where the CPU has it (the default), or not: a
    hook for the tests of the portable loop; both give the same chains."""
    global pe_cluster_avx2
    pe_cluster_avx2 = on


cdef void run_chain(const pe_cluster_graph *graph, const uint8_t *free_unit, char *state,
                    int algorithm, double beta, pe_cluster_scratch *w, uint64_t *streams,
                    Py_ssize_t stride, long n_sweeps, int64_t *stats) noexcept nogil:
    """One chain: its stream and counters copied to the thread's stack (neighbouring chains'
    counters share a cache line), its bond probabilities, its sweeps, with its own row of
    free units."""
    cdef pe_cluster_graph chain_graph = graph[0]
    chain_graph.free_unit = free_unit
    cdef const pe_cluster_graph *g = &chain_graph
    cdef uint64_t t[4]
    cdef int64_t counts[2]
    cdef int r
    for r in range(4):
        t[r] = streams[r * stride]
    counts[0] = counts[1] = 0
    pe_cluster_probabilities(g, beta, w)
    if algorithm == _SWENDSEN_WANG:
        pe_swendsen_wang_spins(g, <int8_t *> state, w, t, n_sweeps, counts)
    elif algorithm == _WOLFF:
        pe_wolff_spins(g, <int8_t *> state, w, t, n_sweeps, counts)
    else:
        pe_swendsen_wang_potts(g, <uint16_t *> state, beta, w, t, n_sweeps, counts)
    for r in range(4):
        streams[r * stride] = t[r]
    stats[0] += counts[0]
    stats[1] += counts[1]


def sweep(
    state,                           # IN/OUT (n_chains, n): int8 spins (+-1) or uint16 colours
    const int32_t[::1] edge_i,       # IN (n_edges,) edge e joins edge_i[e] < edge_j[e]
    const int32_t[::1] edge_j,       # IN (n_edges,)
    const double[::1] coupling,      # IN (n_edges,) J_e (Potts: >= 0)
    const int64_t[::1] indptr,       # IN (n + 1,) CSR rows of the same graph
    const int32_t[::1] neighbour,    # IN (2 n_edges,)
    const int32_t[::1] neighbour_edge,  # IN (2 n_edges,)
    const double[::1] field,         # IN (n,) h_u, or (n * k,) Potts f_{u, c}
    const uint8_t[:, ::1] free_unit, # IN (1 or n_chains, n) 0 for clamped units: one row
                                     #    for every chain, or one per chain
    const double[::1] beta,          # IN (n_chains,)
    uint64_t[:, ::1] streams,        # IN/OUT (4, >= n_chains)
    int64_t[:, ::1] stats,           # IN/OUT (n_chains, 2) clusters drawn, units in them
    int algorithm,                   # SWENDSEN_WANG, WOLFF (int8 state) or POTTS (uint16)
    long k,                          # Potts colours (0 for spins)
    int n_sweeps,
    int n_threads,
):
    """Advance every chain by ``n_sweeps`` cluster sweeps of ``algorithm``."""
    potts = algorithm == POTTS
    if algorithm not in (SWENDSEN_WANG, WOLFF, POTTS) or potts != (k > 0):
        raise ValueError("sweep: unknown algorithm or colour count")
    state = np.asarray(state)
    if state.dtype != (np.uint16 if potts else np.int8):
        raise ValueError("sweep: state must be int8 spins or uint16 colours")
    cdef int8_t[:, ::1] values = state.view(np.int8)
    cdef Py_ssize_t n_chains = beta.shape[0], n = free_unit.shape[1]
    cdef Py_ssize_t free_stride = n if free_unit.shape[0] > 1 else 0
    cdef Py_ssize_t n_edges = edge_i.shape[0], c, tid
    cdef Py_ssize_t width = 2 * n if potts else n
    if (values.shape[0] != n_chains or values.shape[1] != width or edge_j.shape[0] != n_edges
            or coupling.shape[0] != n_edges or indptr.shape[0] != n + 1
            or neighbour.shape[0] != 2 * n_edges or neighbour_edge.shape[0] != 2 * n_edges
            or field.shape[0] != (n * k if potts else n) or streams.shape[0] != 4
            or streams.shape[1] < n_chains or stats.shape[0] != n_chains
            or stats.shape[1] != 2 or n_threads < 1 or n >= 2**31 - 1
            or (potts and k > 65535)
            or (free_unit.shape[0] != 1 and free_unit.shape[0] != n_chains)):
        raise ValueError("sweep: inconsistent array shapes")
    if n_edges and (np.min(edge_i) < 0 or np.max(edge_j) >= n
                    or np.any(np.asarray(edge_i) >= np.asarray(edge_j))
                    or np.min(neighbour) < 0 or np.max(neighbour) >= n
                    or np.min(neighbour_edge) < 0 or np.max(neighbour_edge) >= n_edges
                    or indptr[0] != 0 or indptr[n] != 2 * n_edges
                    or np.any(np.diff(np.asarray(indptr)) < 0)):
        raise ValueError("sweep: edges or CSR rows outside the graph")
    if n_chains == 0 or n == 0 or n_sweeps <= 0:
        return
    if not potts and not np.all(np.abs(state) == 1):
        raise ValueError("sweep: spins must be -1 or +1")
    if potts and np.max(state) >= k:
        raise ValueError("sweep: colours must lie in [0, k)")
    cdef int threads = <int> min(n_threads, n_chains)
    # per-thread work space
    cdef int32_t[:, ::1] parent = np.empty((threads, n + 1), np.int32)
    cdef int32_t[:, ::1] label = np.empty((threads, n + 1), np.int32)
    cdef int32_t[:, ::1] queue = np.empty((threads, n + 1), np.int32)
    cdef int32_t[:, ::1] free_list = np.empty((threads, n), np.int32)
    cdef int64_t[:, ::1] mark = np.empty((threads, n + 1), np.int64)
    cdef int32_t[:, ::1] bonded = np.empty((threads, 2 * n_edges + 8), np.int32)
    cdef int32_t[:, ::1] pairs = np.empty((threads, 2 * max(n_edges, 1)), np.int32)
    cdef double[:, ::1] p_edge = np.empty((threads, max(n_edges, 1)))
    cdef uint8_t[:, ::1] bond_block = np.empty(
        (threads, (n_edges // 4 + 1) * sizeof(pe_bond_block)), np.uint8)
    cdef uint64_t[:, ::1] threshold_low = np.empty((threads, max(n_edges, 1)), np.uint64)
    cdef int8_t[::1] edge_sign = np.empty(max(n_edges, 1), np.int8)
    cdef int32_t[::1] bond_order = np.empty(max(n_edges, 1), np.int32)
    cdef int64_t[::1] count = np.empty(n + 1, np.int64)
    cdef double[:, ::1] p_field = np.empty((threads, n))
    cdef double[:, ::1] weight = np.empty((threads, n * k if potts else 1))
    cdef pe_cluster_graph g
    g.n = n
    g.n_edges = n_edges
    g.edge_i = &edge_i[0] if n_edges else NULL
    g.edge_j = &edge_j[0] if n_edges else NULL
    g.coupling = &coupling[0] if n_edges else NULL
    g.indptr = &indptr[0]
    g.neighbour = &neighbour[0] if n_edges else NULL
    g.neighbour_edge = &neighbour_edge[0] if n_edges else NULL
    g.field = &field[0]
    # Edge signs from the units free in some chain: an edge whose ends a chain holds may bond
    # there, which changes nothing (both ends are in the ghost's cluster).
    cdef uint8_t[::1] free_any = np.asarray(free_unit).any(axis=0).astype(np.uint8)
    g.free_unit = &free_any[0]
    g.k = k
    g.edge_sign = &edge_sign[0]
    g.bond_order = &bond_order[0]
    g.ghost_bonds = not potts and (not np.all(free_unit) or bool(np.any(np.asarray(field))))
    pe_cluster_edge_signs(&g, &edge_sign[0])
    pe_cluster_bond_order(&g, &count[0], &bond_order[0])
    cdef pe_cluster_scratch *work = <pe_cluster_scratch *> malloc(
        threads * sizeof(pe_cluster_scratch))
    if work == NULL:
        raise MemoryError("sweep: no memory for the threads' work space")
    for tid in range(threads):
        work[tid].parent = &parent[tid, 0]
        work[tid].label = &label[tid, 0]
        work[tid].queue = &queue[tid, 0]
        work[tid].free_list = &free_list[tid, 0]
        work[tid].mark = &mark[tid, 0]
        work[tid].bonded = &bonded[tid, 0]
        work[tid].pairs = &pairs[tid, 0]
        work[tid].bond_block = <pe_bond_block *> &bond_block[tid, 0]
        work[tid].threshold_low = &threshold_low[tid, 0]
        work[tid].p_edge = &p_edge[tid, 0]
        work[tid].beta = NAN
        work[tid].p_field = &p_field[tid, 0]
        work[tid].weight = &weight[tid, 0]
    cdef Py_ssize_t stride = streams.shape[1]
    try:
        with nogil:
            for c in prange(n_chains, schedule="dynamic", num_threads=threads):
                run_chain(&g, &free_unit[0, 0] + c * free_stride, <char *> &values[c, 0],
                          algorithm, beta[c], &work[threadid()], &streams[0, c], stride,
                          n_sweeps, &stats[c, 0])
    finally:
        free(work)
