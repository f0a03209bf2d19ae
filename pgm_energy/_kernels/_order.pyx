"""The elimination order search: greedy orders over bitset neighbourhoods.

``greedy_order`` is the greedy elimination (min-fill, min-degree or a given layout) over
bitset neighbourhoods (the bit counts in ``_bitset.h``) with an indexed heap; its twin is
``tests/reference/exact.py:greedy_order`` (identical orders). ``best_order`` keeps the
cheapest of six such candidates. An order found here becomes a step list for the sweeps of
``_eliminate`` (``build_program``). ``symmetric_csr`` is the graph's adjacency for the
layout (reverse Cuthill-McKee) that ranks the units.
"""
from libc.math cimport ldexp
from libc.stdint cimport int8_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import numpy as np

cdef extern from "_bitset.h" nogil:
    int pe_ctz64(uint64_t x)
    int64_t pe_count_bits(const uint64_t *x, int64_t n_words)
    int64_t pe_common_bits(const uint64_t *x, const uint64_t *y, int64_t n_words)
    int64_t pe_fill_in(const uint64_t *adj, const uint64_t *nb, int64_t n_words)

# order search criteria (``greedy_order``)
cdef enum:
    ORDER_LAYOUT = 0
    ORDER_MIN_DEGREE = 1
    ORDER_MIN_FILL = 2
    KEY = 5                 # key words per unit
LAYOUT, MIN_DEGREE, MIN_FILL = ORDER_LAYOUT, ORDER_MIN_DEGREE, ORDER_MIN_FILL


def symmetric_csr(int64_t n, const int64_t[:, ::1] pairs):
    """``(indptr, indices)`` (int32) of the symmetric adjacency of ``pairs`` in canonical CSR
    form: each row's columns sorted, no duplicates, no diagonal."""
    cdef int64_t p, u, i, j, k, row_start, kept = 0, n_pairs = pairs.shape[0]
    if n >= 2**31 or 2 * n_pairs >= 2**31:
        raise ValueError("symmetric_csr: more than 2^31 units or entries")
    count_a = np.zeros(n + 1, np.int64)
    cols_a = np.empty(2 * n_pairs, np.int32)
    indptr_a = np.zeros(n + 1, np.int32)
    cdef int64_t[::1] count = count_a
    cdef int[::1] cols = cols_a, indptr = indptr_a
    cdef int c
    for p in range(n_pairs):
        count[pairs[p, 0] + 1] += 1
        count[pairs[p, 1] + 1] += 1
    for u in range(n):
        count[u + 1] += count[u]
    for p in range(n_pairs):            # (count[u] is the next free slot of row u)
        i, j = pairs[p, 0], pairs[p, 1]
        if i == j:
            continue
        cols[count[i]] = <int> j
        count[i] += 1
        cols[count[j]] = <int> i
        count[j] += 1
    row_start = 0
    for u in range(n):                  # count[u] is now the end of row u
        for k in range(row_start + 1, count[u]):      # insertion sort (rows are short)
            c = cols[k]
            j = k
            while j > row_start and cols[j - 1] > c:
                cols[j] = cols[j - 1]
                j -= 1
            cols[j] = c
        for k in range(row_start, count[u]):
            if k == row_start or cols[k] != cols[k - 1]:
                cols[kept] = cols[k]
                kept += 1
        indptr[u + 1] = <int> kept
        row_start = count[u]
    return indptr_a, cols_a[:kept].copy()



# -- the order search --------------------------------------------------------------------------------
cdef inline bint key_less(const int64_t *a, const int64_t *b) noexcept nogil:
    cdef int i
    for i in range(KEY):
        if a[i] != b[i]:
            return a[i] < b[i]
    return False


cdef struct Heap:
    int64_t size
    int64_t *unit           # heap slots -> unit
    int64_t *slot           # unit -> heap slot (-1 when out)
    const int64_t *key      # (n, KEY)


cdef inline void heap_swap(Heap *H, int64_t i, int64_t j) noexcept nogil:
    cdef int64_t u = H.unit[i], w = H.unit[j]
    H.unit[i] = w
    H.unit[j] = u
    H.slot[w] = i
    H.slot[u] = j


cdef void heap_fix(Heap *H, int64_t i) noexcept nogil:
    """Restore the heap order around slot ``i`` after its key changed."""
    cdef int64_t parent
    while i > 0:
        parent = (i - 1) // 2
        if not key_less(H.key + KEY * H.unit[i], H.key + KEY * H.unit[parent]):
            break
        heap_swap(H, i, parent)
        i = parent
    heap_down(H, i)


cdef void heap_down(Heap *H, int64_t i) noexcept nogil:
    """Sift slot ``i`` down to its place (its subtrees are heaps)."""
    cdef int64_t child, best
    while True:
        best = i
        for child in range(2 * i + 1, 2 * i + 3):
            if child < H.size and key_less(H.key + KEY * H.unit[child], H.key + KEY * H.unit[best]):
                best = child
        if best == i:
            return
        heap_swap(H, i, best)
        i = best


cdef void set_key(int64_t u, int criterion, const uint64_t *adj, int64_t n_words,
                  const int8_t *first, int64_t cap_bits, const int64_t *rank,
                  int64_t *key) noexcept nogil:
    """The greedy key of unit ``u`` (lexicographic, smallest first; see greedy_order)."""
    cdef const uint64_t *nb = adj + u * n_words
    cdef int64_t degree, fill
    cdef int64_t *k = key + KEY * u
    k[0] = 0 if first[u] else 1
    k[4] = rank[u]
    if criterion == ORDER_LAYOUT:
        k[1] = k[2] = k[3] = 0
        return
    degree = pe_count_bits(nb, n_words)
    if degree > cap_bits:
        k[1] = 1
        k[2] = k[3] = degree
        return
    fill = pe_fill_in(adj, nb, n_words)
    k[1] = 0
    if criterion == ORDER_MIN_FILL:
        k[2] = fill
        k[3] = degree
    else:
        k[2] = degree
        k[3] = fill


cdef struct Search:
    int64_t n
    int64_t n_words
    const int64_t *rank         # (n,) distinct tie-break ranks
    uint64_t *adj0              # (n, n_words) the graph
    uint64_t *adj               # (n, n_words) the graph with fill, as the search goes
    uint64_t *done              # (n_words,) eliminated units
    uint64_t *touched           # (n_words,) units to re-key
    int8_t *first               # (n,) in the closed-form set
    int64_t *key                # (n, KEY)
    int64_t *work               # (2 n + 2,) counting sort, positions, table counts
    int64_t *unit               # heap slots
    int64_t *slot
    int64_t *order              # (n,) the order found
    int64_t *start              # (n + 1,) scope of each step in scope
    int64_t *scope              # (capacity,) neighbours when eliminated
    int64_t capacity


cdef int search_init(Search *S, int64_t n, const int64_t[:, ::1] pairs,
                     const int64_t *rank) noexcept nogil:
    """Buffers and the graph's bitsets; -1 if out of memory (search_free either way)."""
    cdef int64_t p, i, j, n_words = (n + 63) // 64
    S.n = n
    S.n_words = n_words
    S.rank = rank
    S.capacity = 16
    S.adj0 = <uint64_t *> calloc(n * n_words + 1, sizeof(uint64_t))
    S.adj = <uint64_t *> malloc((n * n_words + 1) * sizeof(uint64_t))
    S.done = <uint64_t *> malloc((n_words + 1) * sizeof(uint64_t))
    S.touched = <uint64_t *> malloc((n_words + 1) * sizeof(uint64_t))
    S.first = <int8_t *> malloc((n + 1) * sizeof(int8_t))
    S.key = <int64_t *> malloc((n + 1) * KEY * sizeof(int64_t))
    S.work = <int64_t *> malloc((2 * n + 2) * sizeof(int64_t))
    S.unit = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    S.slot = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    S.order = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    S.start = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    S.scope = <int64_t *> malloc(S.capacity * sizeof(int64_t))
    if (S.adj0 == NULL or S.adj == NULL or S.done == NULL or S.touched == NULL
            or S.first == NULL or S.key == NULL or S.work == NULL or S.unit == NULL
            or S.slot == NULL or S.order == NULL or S.start == NULL or S.scope == NULL):
        return -1
    for p in range(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        S.adj0[i * n_words + j // 64] |= (<uint64_t> 1) << (j % 64)
        S.adj0[j * n_words + i // 64] |= (<uint64_t> 1) << (i % 64)
    return 0


cdef void search_free(Search *S) noexcept nogil:
    free(S.adj0)
    free(S.adj)
    free(S.done)
    free(S.touched)
    free(S.first)
    free(S.key)
    free(S.work)
    free(S.unit)
    free(S.slot)
    free(S.order)
    free(S.start)
    free(S.scope)


cdef int run_search(Search *S, int criterion, bint closed_first, int64_t cap_bits,
                    int64_t bound, int64_t budget) noexcept nogil:
    """One greedy search (see greedy_order) into S.order, S.start, S.scope: 0 done, 1 gave up,
    -1 out of memory."""
    cdef int64_t n = S.n, n_words = S.n_words, i, u, v, w, word, s, degree, n_scope = 0
    cdef int64_t work = 0
    cdef uint64_t bits, low
    cdef uint64_t *adj = S.adj
    cdef uint64_t *nb
    cdef int64_t *count = S.work
    cdef int64_t *scope
    cdef Heap H
    memcpy(adj, S.adj0, n * n_words * sizeof(uint64_t))
    memset(S.done, 0, n_words * sizeof(uint64_t))
    memset(S.touched, 0, n_words * sizeof(uint64_t))
    memset(S.first, 0, n * sizeof(int8_t))
    if closed_first:        # greedy maximal independent set, lowest degree first (stable)
        memset(count, 0, (n + 2) * sizeof(int64_t))
        for u in range(n):
            count[pe_count_bits(adj + u * n_words, n_words) + 1] += 1
        for i in range(n):
            count[i + 1] += count[i]
        for u in range(n):
            degree = pe_count_bits(adj + u * n_words, n_words)
            S.work[n + 1 + count[degree]] = u
            count[degree] += 1
        for i in range(n):          # touched serves as the blocked set here
            u = S.work[n + 1 + i]
            if not (S.touched[u // 64] >> (u % 64)) & 1:
                S.first[u] = 1
                for w in range(n_words):
                    S.touched[w] |= adj[u * n_words + w]
    H.size = n
    H.key = S.key
    H.unit = S.unit
    H.slot = S.slot
    for u in range(n):
        set_key(u, criterion, adj, n_words, S.first, cap_bits, S.rank, S.key)
        H.unit[u] = u
        H.slot[u] = u
    for i in range(n // 2 - 1, -1, -1):
        heap_down(&H, i)
    S.start[0] = 0
    for s in range(n):
        v = H.unit[0]
        H.size -= 1
        if H.size:
            heap_swap(&H, 0, H.size)
            heap_down(&H, 0)
        H.slot[v] = -1
        nb = adj + v * n_words
        degree = pe_count_bits(nb, n_words)
        if degree > bound:
            return 1
        S.order[s] = v
        if n_scope + degree > S.capacity:
            while n_scope + degree > S.capacity:
                S.capacity *= 2
            scope = <int64_t *> realloc(S.scope, S.capacity * sizeof(int64_t))
            if scope == NULL:
                return -1
            S.scope = scope
        S.done[v // 64] |= (<uint64_t> 1) << (v % 64)
        for w in range(n_words):
            S.touched[w] = 0 if criterion == ORDER_LAYOUT else nb[w]
        for word in range(n_words):
            bits = nb[word]
            while bits:
                low = bits & (~bits + 1)
                u = word * 64 + pe_ctz64(low)
                bits ^= low
                S.scope[n_scope] = u
                n_scope += 1
                for w in range(n_words):
                    adj[u * n_words + w] |= nb[w]
                adj[u * n_words + u // 64] &= ~((<uint64_t> 1) << (u % 64))
                adj[u * n_words + v // 64] &= ~((<uint64_t> 1) << (v % 64))
                if criterion == ORDER_MIN_FILL:
                    for w in range(n_words):
                        S.touched[w] |= adj[u * n_words + w]
        S.start[s + 1] = n_scope
        for word in range(n_words):
            bits = S.touched[word] & ~S.done[word]
            while bits:
                low = bits & (~bits + 1)
                u = word * 64 + pe_ctz64(low)
                bits ^= low
                # A unit next to at most one of nb (and not in it) keeps its neighbours and
                # gains no edge among them: its key is unchanged (the twin re-pushes the same).
                if (criterion != ORDER_MIN_FILL or (nb[u // 64] >> (u % 64)) & 1
                        or pe_common_bits(adj + u * n_words, nb, n_words) > 1):
                    set_key(u, criterion, adj, n_words, S.first, cap_bits, S.rank, S.key)
                    heap_fix(&H, H.slot[u])
                work += pe_count_bits(adj + u * n_words, n_words)
        if work > budget:
            return 1
    return 0


cdef void search_cost(Search *S, const int64_t *card, double *cost) noexcept nogil:
    """(width, largest_table, stored_entries, operations, n_closed_form) of S's order, ``card``
    the states of each unit (NULL: two each): a step's table has the product of its scope's
    cardinalities as entries, its joint table that times the summed unit's."""
    cdef int64_t n = S.n, s, i, target, d, width = 0, n_closed = 0
    cdef int64_t *position = S.work
    cdef int64_t *n_tables = S.work + n
    cdef double stored = 0.0, operations = 0.0, largest = 0.0, size, joint
    for s in range(n):
        position[S.order[s]] = s
        n_tables[s] = 1                     # the local table of each bucket
    for s in range(n):
        if S.start[s + 1] > S.start[s]:
            target = n
            for i in range(S.start[s], S.start[s + 1]):
                if position[S.scope[i]] < target:
                    target = position[S.scope[i]]
            n_tables[target] += 1
    for s in range(n):
        d = S.start[s + 1] - S.start[s]
        if card == NULL:
            size = ldexp(1.0, <int> d)
            joint = 2.0 * size
        else:
            size = 1.0
            for i in range(S.start[s], S.start[s + 1]):
                size *= card[S.scope[i]]
            joint = card[S.order[s]] * size
        width = d if d > width else width
        largest = joint if joint > largest else largest
        stored += size
        operations += joint * (n_tables[s] + 1)
        n_closed += n_tables[s] == 1
    cost[0] = width
    cost[1] = largest if n else 1.0
    cost[2] = stored
    cost[3] = operations
    cost[4] = n_closed


cdef tuple search_result(Search *S, const double *cost):
    """(order, scope_start, scope_units, cost) as numpy arrays and a tuple."""
    order = np.empty(S.n, np.int64)
    start = np.empty(S.n + 1, np.int64)
    scope = np.empty(S.start[S.n], np.int64)
    cdef int64_t[::1] o = order, st = start, sc = scope
    if S.n:
        memcpy(&o[0], S.order, S.n * sizeof(int64_t))
    memcpy(&st[0], S.start, (S.n + 1) * sizeof(int64_t))
    if S.start[S.n]:
        memcpy(&sc[0], S.scope, S.start[S.n] * sizeof(int64_t))
    return order, start, scope, (int(cost[0]), cost[1], cost[2], cost[3], int(cost[4]))


def greedy_order(
    int64_t n,                              # IN  units (local ids 0..n-1)
    const int64_t[:, ::1] pairs,            # IN  (n_pairs, 2) edges
    int criterion,                          # IN  LAYOUT, MIN_DEGREE or MIN_FILL
    bint closed_first,                      # IN  eliminate a greedy maximal independent set first
    int64_t cap_bits,                       # IN  units with more neighbours are not scored
    const int64_t[::1] rank,                # IN  (n,) distinct tie-break ranks
    int64_t bound,                          # IN  give up when a unit has more neighbours
    int64_t budget,                         # IN  give up after this many word operations
):
    """Greedy elimination order: ``(order, scope_start, scope_units, cost)`` or None.

    The key of a unit, smallest first: ``(not in the closed-form set, 0, fill, degree, rank)``
    for min-fill, ``(..., 0, degree, fill, rank)`` for min-degree, ``(..., 1, degree, degree,
    rank)`` for a unit with more than ``cap_bits`` neighbours (not scored) and ``(..., rank)``
    for the layout. Keys are recomputed for the units whose degree (min-degree) or
    neighbourhood (min-fill: the neighbours of the eliminated unit's neighbours) changed, as
    the twin's lazy heap does. The search gives up when a unit has more than ``bound``
    neighbours or after ``budget`` re-keyed neighbourhood sizes. ``scope_units[scope_start[s]:
    scope_start[s+1]]`` are the neighbours of ``order[s]`` when eliminated (increasing ids);
    ``cost = (width, largest_table, stored_entries, operations, n_closed_form)``.
    """
    cdef Search S
    cdef double cost[5]
    cdef int status
    check_search(n, pairs, rank)
    with nogil:
        status = search_init(&S, n, pairs, &rank[0] if n else NULL)
        if status == 0:
            status = run_search(&S, criterion, closed_first, cap_bits, bound, budget)
        if status == 0:
            search_cost(&S, NULL, cost)
    try:
        if status < 0:
            raise MemoryError("greedy_order: could not allocate the search buffers")
        return None if status else search_result(&S, cost)
    finally:
        search_free(&S)


def best_order(
    int64_t n,                              # IN  units (local ids 0..n-1)
    const int64_t[:, ::1] pairs,            # IN  (n_pairs, 2) edges
    int64_t cap_bits,                       # IN  as for greedy_order
    const int64_t[::1] rank,                # IN  (n,) the layout's ranks
    int64_t budget,                         # IN  per candidate, as for greedy_order
    const int64_t[::1] card=None,           # IN  (n,) states of each unit (default two each)
):
    """The cheapest of six greedy candidates (largest table, then operations; the first on
    ties): the layout, min-degree and min-fill orders, each without then with the closed-form
    set first. Each search is bounded by the width of the best so far; costs count ``card``
    states per unit (greedy keys count neighbours whatever their states). Returns
    ``greedy_order``'s tuple (never None for n >= 1: the first candidate is unbounded)."""
    cdef Search S
    cdef double cost[5]
    cdef double best[5]
    cdef int status = 0, criterion, found = 0
    cdef bint first
    cdef int64_t bound = n
    cdef int64_t *swap
    cdef int64_t *best_order_ = NULL
    cdef int64_t *best_start = NULL
    cdef int64_t *best_scope = NULL
    cdef int64_t best_capacity = 0
    check_search(n, pairs, rank)
    if card is not None and (card.shape[0] != n or (n and np.min(card) < 1)):
        raise ValueError("best_order: card must have n entries >= 1")
    cdef const int64_t *card_p = &card[0] if card is not None and n else NULL
    with nogil:
        status = search_init(&S, n, pairs, &rank[0] if n else NULL)
        best_order_ = <int64_t *> malloc((n + 1) * sizeof(int64_t))
        best_start = <int64_t *> malloc((n + 1) * sizeof(int64_t))
        best_scope = <int64_t *> malloc(16 * sizeof(int64_t))
        best_capacity = 16
        if best_order_ == NULL or best_start == NULL or best_scope == NULL:
            status = -1
        for criterion in range(3):
            if status < 0:
                break
            for first in range(2):
                status = run_search(&S, criterion, first, cap_bits, bound, budget)
                if status < 0:
                    break
                if status:
                    continue
                search_cost(&S, card_p, cost)
                if found and (cost[1] > best[1] or (cost[1] == best[1] and cost[3] >= best[3])):
                    continue
                found = 1       # keep it: swap S's buffers with the best ones
                memcpy(best, cost, 5 * sizeof(double))
                bound = <int64_t> cost[0]
                swap = S.order; S.order = best_order_; best_order_ = swap
                swap = S.start; S.start = best_start; best_start = swap
                swap = S.scope; S.scope = best_scope; best_scope = swap
                S.capacity, best_capacity = best_capacity, S.capacity
    try:
        if status < 0:
            raise MemoryError("best_order: could not allocate the search buffers")
        swap = S.order; S.order = best_order_; best_order_ = swap
        swap = S.start; S.start = best_start; best_start = swap
        swap = S.scope; S.scope = best_scope; best_scope = swap
        return search_result(&S, best) if found else None
    finally:
        search_free(&S)
        free(best_order_)
        free(best_start)
        free(best_scope)


cdef int check_search(int64_t n, const int64_t[:, ::1] pairs,
                      const int64_t[::1] rank) except -1:
    cdef int64_t p
    if n < 0 or rank.shape[0] != n or (pairs.shape[0] and pairs.shape[1] != 2):
        raise ValueError("order search: rank must have n entries and pairs two columns")
    for p in range(pairs.shape[0]):
        if not (0 <= pairs[p, 0] < n and 0 <= pairs[p, 1] < n) or pairs[p, 0] == pairs[p, 1]:
            raise ValueError(f"order search: pair {p} is not two distinct units below {n}")
    return 0
