/*
 * _cluster.h -- cluster moves for one chain: Swendsen-Wang and Wolff on spins with a ghost
 * spin for the fields, Swendsen-Wang on Potts sites with heat-bath colours.
 *
 * The Python face (pgm_energy/cluster.py) turns the model into the form these loops read:
 *
 *   spins  s_u in {-1, +1}:   E(s) = -sum_e J_e s_i s_j - sum_u h_u s_u   (+ a constant)
 *   Potts  x_u in {0..k-1}:   E(x) = -sum_e J_e [x_i = x_j] - sum_u f_{u, x_u}, J_e >= 0
 *
 * Edges e join edge_i[e] < edge_j[e], listed in order; the same graph as CSR rows (the
 * neighbours of u in increasing order, with the edge of each entry). The ghost spin is index
 * n, always +1: unit u bonds to it when h_u s_u > 0 with probability 1 - e^(-2 beta |h_u|), a
 * clamped unit always. Every function below advances one chain by n_sweeps sweeps, its
 * xoshiro256+ stream held in t[0..3]; the draw order is the module docstring of
 * pgm_energy/cluster.py (the numpy twin, tests/reference/cluster.py, follows it bit for bit).
 *
 * Clusters of Swendsen-Wang: the bonds are drawn in "bond order" (edges sorted by their
 * larger end j, then i) and listed; one pass over the listed bonds gives every unit j a
 * provisional root (the smallest provisional root among its bonded smaller neighbours, or j),
 * which is its parent, and lists the pairs of different provisional roots met at one unit;
 * a union-find over those pairs (the larger root linked under the smaller) completes the
 * clusters. Every parent is then no larger than its child and every root is the smallest unit
 * of its set, so one pass in unit order resolves every root. The provisional pass follows
 * no chain of parents and has no branch on a random outcome (a union per bond waits on the
 * stores of the last one, at a place only known once its finds are done). Wolff grows one
 * cluster at a time by a FIFO queue, members marked by the cluster's number (no clearing
 * between clusters).
 */
#ifndef PGM_ENERGY_CLUSTER_H
#define PGM_ENERGY_CLUSTER_H

#include <math.h>
#include <stdint.h>

#include "_random.h"

/* 0 turns Swendsen-Wang's AVX2 bond pass off (to test the portable one); read at each pass. */
static int pe_cluster_avx2 = 1;

typedef struct {
    long n;                          /* units (sites) */
    long n_edges;
    const int32_t *edge_i;           /* (n_edges,) edge e joins edge_i[e] < edge_j[e] */
    const int32_t *edge_j;
    const double *coupling;          /* (n_edges,) J_e */
    const int64_t *indptr;           /* (n + 1,) CSR rows */
    const int32_t *neighbour;        /* (2 n_edges,) */
    const int32_t *neighbour_edge;   /* (2 n_edges,) the edge of each CSR entry */
    const double *field;             /* spins: (n,) h_u; Potts: (n, k) f_{u, c} */
    const uint8_t *free_unit;        /* (n,) 0 for clamped units */
    const int8_t *edge_sign;         /* (n_edges,) sign of J_e, 0 where both ends are clamped */
    const int32_t *bond_order;       /* (n_edges,) the edges by larger end, then smaller end */
    int ghost_bonds;                 /* spins: 0 when no unit is clamped and every h_u = 0 */
    long k;                          /* Potts: colours per site */
} pe_cluster_graph;

/* Four edges of Swendsen-Wang's bond pass, in bond order: their ends, the top 13 bits of
 * their integer thresholds (see pe__bond) and the value x_i ^ x_j takes when one is satisfied
 * (spins, compared as bytes: 0 for J > 0, -2 for J < 0; Potts: 0; -1, never, where it cannot
 * bond). Edge q is entry q % 4 of block q / 4. */
typedef struct {
    int32_t i[4], j[4], threshold[4], satisfied[4];
} pe_bond_block;

/* Per-thread work space, allocated once per kernel call. */
typedef struct {
    int32_t *parent;                 /* (n + 1,) union-find */
    int32_t *label;                  /* (n + 1,) per root: what happens to its cluster */
    int32_t *queue;                  /* (n + 1,) Wolff's cluster, in growing order */
    int32_t *free_list;              /* (n,) the free units, in order */
    int64_t *mark;                   /* (n + 1,) Wolff: number of the last cluster holding u */
    int32_t *bonded;                 /* (2 n_edges + 8,) Swendsen-Wang: ends of the bonded edges */
    int32_t *pairs;                  /* (2 n_edges,) Swendsen-Wang: provisional roots to join */
    double beta;                     /* the beta p_edge and p_field are for (NaN: none yet) */
    double *p_edge;                  /* (n_edges,) bond probability of each edge */
    pe_bond_block *bond_block;       /* (ceil(n_edges / 4),) Swendsen-Wang: edges in bond order */
    uint64_t *threshold_low;         /* (n_edges,) the low 39 bits of their thresholds */
    double *p_field;                 /* (n,) bond probability to the ghost */
    double *weight;                  /* Potts: (n, k) per root, the cluster's summed fields */
} pe_cluster_scratch;

enum { PE_UNSEEN = -3, PE_PENDING = -2, PE_KEEP = -1 };   /* labels; >= 0: a new colour */

#define PE_UNIFORM(t) pe__uniform(&(t)[0], &(t)[1], &(t)[2], &(t)[3])

/* The root of u's set, and u linked straight to it. The first two steps run without a test
 * (a root is its own parent), so the usual shallow trees cost no unpredictable branch (two
 * steps measured faster than one, three or four). */
static inline long pe__find(int32_t *parent, long u)
{
    long r = parent[parent[u]];
    while (parent[r] != r)
        r = parent[parent[r]];
    parent[u] = (int32_t)r;
    return r;
}

/* Join the sets of a and b: the larger root linked under the smaller, without a branch (which
 * way it goes is random; a root equal to the other is linked to itself). */
static inline void pe__union(int32_t *parent, long a, long b)
{
    a = pe__find(parent, a);
    b = pe__find(parent, b);
    long low = a < b ? a : b;
    parent[a ^ b ^ low] = (int32_t)low;
}

/* Each edge's sign for Swendsen-Wang's bonds, once per call: sign(J_e), or 0 when both its
 * ends are clamped (such an edge never bonds: both ends are in the ghost's cluster anyway). */
static void pe_cluster_edge_signs(const pe_cluster_graph *g, int8_t *edge_sign)
{
    for (long e = 0; e < g->n_edges; ++e) {
        double J = g->coupling[e];
        edge_sign[e] = (int8_t)(((J > 0.0) - (J < 0.0))
                                * (g->free_unit[g->edge_i[e]] | g->free_unit[g->edge_j[e]]));
    }
}

/* Swendsen-Wang's bond order, once per call: the edges (listed by smaller end, then larger)
 * stably sorted by their larger end; count: (n + 1,) work space. */
static void pe_cluster_bond_order(const pe_cluster_graph *g, int64_t *count, int32_t *order)
{
    for (long u = 0; u <= g->n; ++u)
        count[u] = 0;
    for (long e = 0; e < g->n_edges; ++e)
        count[g->edge_j[e] + 1] += 1;
    for (long u = 0; u < g->n; ++u)
        count[u + 1] += count[u];
    for (long e = 0; e < g->n_edges; ++e)
        order[count[g->edge_j[e]]++] = (int32_t)e;
}

/* Bond probabilities at this chain's beta: 1 - e^(-2 beta |J_e|) (Potts: 1 - e^(-beta J_e)),
 * 1 - e^(-2 beta |h_u|), and Swendsen-Wang's edges in bond order with their thresholds
 * ceil(p_e 2^52); kept while the thread's chains share one beta. */
static void pe_cluster_probabilities(const pe_cluster_graph *g, double beta,
                                     pe_cluster_scratch *w)
{
    double scale = g->k ? 1.0 : 2.0;
    if (beta == w->beta)
        return;
    w->beta = beta;
    for (long e = 0; e < g->n_edges; ++e)
        w->p_edge[e] = -expm1(-scale * beta * fabs(g->coupling[e]));
    for (long q = 0; q < g->n_edges; ++q) {
        long e = g->bond_order[q];
        uint64_t threshold = (uint64_t)ceil(ldexp(w->p_edge[e], 52));
        pe_bond_block *block = w->bond_block + q / 4;
        block->i[q % 4] = g->edge_i[e];
        block->j[q % 4] = g->edge_j[e];
        block->threshold[q % 4] = (int32_t)(threshold >> 39);
        block->satisfied[q % 4] = g->edge_sign[e] > 0 ? 0 : g->edge_sign[e] < 0 ? -2 : -1;
        w->threshold_low[q] = threshold & ((UINT64_C(1) << 39) - 1);
    }
    if (g->ghost_bonds)              /* otherwise never read: no field, nothing clamped */
        for (long u = 0; u < g->n; ++u)
            w->p_field[u] = -expm1(-2.0 * beta * fabs(g->field[u]));
}

/* One edge's bond draw from a 13-bit chunk c of a random word: bonded when its 52-bit uniform
 * U = c 2^39 + L (L drawn only if needed) is below its threshold T = ceil(p_e 2^52), i.e.
 * when U / 2^52 < p_e, and it is satisfied. c < T >> 39 decides it, and so does c > T >> 39;
 * on a tie (probability 2^-13) L is the top 39 bits of one more draw. The tie draw does not
 * depend on the edge being satisfied. */
static inline long pe__bond(uint64_t c, long threshold, uint64_t low, long satisfied,
                            uint64_t *t0, uint64_t *t1, uint64_t *t2, uint64_t *t3)
{
    long bond = c < (uint64_t)threshold;
    if (__builtin_expect(c == (uint64_t)threshold, 0))
        bond = (pe__next(t0, t1, t2, t3) >> 25) < low;
    return bond & satisfied;
}

/* The bonds of the first count edges of a block from its word: their ends appended to bonded
 * (i, j in turn). Spins compare s_i ^ s_j as bytes. */
static inline long pe__bond_block(const pe_bond_block *block, const uint64_t *low,
                                  const void *state, int potts, long count, uint64_t word,
                                  int32_t *bonded, long n_bonded, uint64_t *t0, uint64_t *t1,
                                  uint64_t *t2, uint64_t *t3)
{
    const int8_t *s = (const int8_t *)state;
    const uint16_t *x = (const uint16_t *)state;
    for (long k = 0; k < count; ++k) {
        long i = block->i[k], j = block->j[k];
        long satisfied = potts ? (long)(x[i] ^ x[j]) == block->satisfied[k]
                               : (uint8_t)(s[i] ^ s[j]) == (uint8_t)block->satisfied[k];
        bonded[2 * n_bonded] = (int32_t)i;
        bonded[2 * n_bonded + 1] = (int32_t)j;
        n_bonded += pe__bond(word >> 51, block->threshold[k], low[k], satisfied, t0, t1, t2, t3);
        word <<= 13;
    }
    return n_bonded;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define PE_AVX2 1

/* pe__bond_block for spins and a whole block, in AVX2 (chosen at run time, see
 * pe__bond_draws): the four chunks compared with the thresholds at once, the bonded pairs
 * packed to the front by a table and stored in one go (bonded has 8 entries to spare); a tie
 * (any of the four) goes through pe__bond_block with the same word. pe__pack[m]: the entries
 * of the (i, j) pairs of the edges in mask m, first. */
static const int32_t pe__pack[16][8] = {
    {0}, {0, 1}, {2, 3}, {0, 1, 2, 3}, {4, 5}, {0, 1, 4, 5}, {2, 3, 4, 5}, {0, 1, 2, 3, 4, 5},
    {6, 7}, {0, 1, 6, 7}, {2, 3, 6, 7}, {0, 1, 2, 3, 6, 7}, {4, 5, 6, 7}, {0, 1, 4, 5, 6, 7},
    {2, 3, 4, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6, 7}};

__attribute__((target("avx2")))
static long pe__bond_draws_avx2(const pe_bond_block *block, const uint64_t *low,
                                const int8_t *s, long n_blocks, int32_t *bonded, uint64_t *t)
{
    uint64_t t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3];
    long n_bonded = 0;
    const __m256i shift = _mm256_set_epi64x(12, 25, 38, 51);
    const __m256i chunk_bits = _mm256_set1_epi64x(0x1FFF);
    const __m256i low_halves = _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0);
    for (long b = 0; b < n_blocks; ++b) {
        const pe_bond_block *k = block + b;
        uint64_t word = pe__next(&t0, &t1, &t2, &t3);
        __m256i chunks = _mm256_srlv_epi64(_mm256_set1_epi64x((long long)word), shift);
        __m128i c = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
            _mm256_and_si256(chunks, chunk_bits), low_halves));
        __m128i threshold = _mm_loadu_si128((const __m128i *)k->threshold);
        if (__builtin_expect(_mm_movemask_epi8(_mm_cmpeq_epi32(c, threshold)) != 0, 0)) {
            n_bonded = pe__bond_block(k, low + 4 * b, s, 0, 4, word, bonded, n_bonded,
                                      &t0, &t1, &t2, &t3);
            continue;
        }
        int satisfied = 0;
        for (int q = 0; q < 4; ++q)
            satisfied |= ((uint8_t)(s[k->i[q]] ^ s[k->j[q]]) == (uint8_t)k->satisfied[q]) << q;
        int m = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(threshold, c))) & satisfied;
        __m128i i = _mm_loadu_si128((const __m128i *)k->i);
        __m128i j = _mm_loadu_si128((const __m128i *)k->j);
        __m256i pairs = _mm256_set_m128i(_mm_unpackhi_epi32(i, j), _mm_unpacklo_epi32(i, j));
        _mm256_storeu_si256((__m256i *)(bonded + 2 * n_bonded), _mm256_permutevar8x32_epi32(
            pairs, _mm256_loadu_si256((const __m256i *)pe__pack[m])));
        n_bonded += (0x4332322132212110 >> (4 * m)) & 0xF;         /* bits set in m */
    }
    t[0] = t0; t[1] = t1; t[2] = t2; t[3] = t3;
    return n_bonded;
}
#endif

/* The bonds of one Swendsen-Wang sweep, listed in w->bonded (their ends, in bond order);
 * returns their number. Draws: one 64-bit word per block of four edges in bond order, whose
 * top 52 bits are their four 13-bit chunks, highest first (a partial block at the end takes
 * a word too); a tie takes its draw at once. Spins go through AVX2 where the CPU has it and
 * pe_cluster_avx2 is set (the same draws and bonds as the portable loop). */
static inline long pe__bond_draws(const pe_cluster_graph *g, const void *state, int potts,
                                  pe_cluster_scratch *w, uint64_t *t)
{
    long n_bonded = 0, n_edges = g->n_edges, b = 0;
#ifdef PE_AVX2
    if (!potts && pe_cluster_avx2 && __builtin_cpu_supports("avx2")) {
        b = n_edges / 4;
        n_bonded = pe__bond_draws_avx2(w->bond_block, w->threshold_low, (const int8_t *)state,
                                       b, w->bonded, t);
    }
#endif
    for (; 4 * b < n_edges; ++b) {              /* whole blocks: the loop of 4 unrolled */
        uint64_t word = pe__next(&t[0], &t[1], &t[2], &t[3]);
        if (4 * b + 4 <= n_edges)
            n_bonded = pe__bond_block(w->bond_block + b, w->threshold_low + 4 * b, state, potts,
                                      4, word, w->bonded, n_bonded, &t[0], &t[1], &t[2], &t[3]);
        else
            n_bonded = pe__bond_block(w->bond_block + b, w->threshold_low + 4 * b, state, potts,
                                      n_edges - 4 * b, word, w->bonded, n_bonded,
                                      &t[0], &t[1], &t[2], &t[3]);
    }
    return n_bonded;
}

/* The clusters of the listed bonds, as a union-find forest on parent[0..n] (parent[n] = n):
 * every parent no larger than its child, every root the smallest unit of its set. The bonds
 * come by larger end j: j's parent is the smallest parent (a provisional root) of its bonded
 * smaller neighbours, taken on the way (the running minimum r), or j; each neighbour whose
 * provisional root differs from the running minimum adds the pair to be joined afterwards. */
static inline void pe__clusters(const pe_cluster_graph *g, pe_cluster_scratch *w,
                                long n_bonded)
{
    const int32_t *bonded = w->bonded;
    int32_t *parent = w->parent, *pairs = w->pairs;
    long n_pairs = 0, previous = -1, r = 0;
    for (long u = 0; u <= g->n; ++u)
        parent[u] = (int32_t)u;
    for (long b = 0; b < n_bonded; ++b) {
        long j = bonded[2 * b + 1], r_i = parent[bonded[2 * b]], same = j == previous;
        long base = j ^ ((r ^ j) & -same);      /* j's running minimum before this bond */
        pairs[2 * n_pairs] = (int32_t)r_i;
        pairs[2 * n_pairs + 1] = (int32_t)base;
        n_pairs += same & (r_i != base);
        r = r_i < base ? r_i : base;
        parent[j] = (int32_t)r;
        previous = j;
    }
    for (long k = 0; k < n_pairs; ++k)
        pe__union(parent, pairs[2 * k], pairs[2 * k + 1]);
}

/* Set parent[u] to u's root for every unit u < n, in one pass in increasing order (a parent
 * is never larger than its child, so the parent's root is known by then). */
static inline void pe__roots(int32_t *parent, long n)
{
    for (long u = 0; u < n; ++u)
        parent[u] = parent[parent[u]];
}

/* The flips of Swendsen-Wang on spins: one 64-bit draw per block of 32 units (in unit order),
 * bit 63 - (u mod 32) of its block's word the flip of the cluster whose smallest unit is u
 * (not the ghost's cluster: its bit goes unused, as do those of units that are not the
 * smallest of their cluster). Each unit's root goes into parent[u] with its cluster's flip in
 * the top bit (PE_FLIP). has_ghost = 0: no unit is in the ghost's cluster (ghost = n). */
#define PE_FLIP (UINT32_C(1) << 31)

static inline void pe__flips(uint32_t *root_flip, int8_t *s, long n, long ghost, int has_ghost,
                             uint64_t *t, int64_t *stats)
{
    long n_clusters = 0, n_moved = 0;
    for (long u0 = 0; u0 < n; u0 += 32) {
        uint32_t bits = (uint32_t)(pe__next(&t[0], &t[1], &t[2], &t[3]) >> 32);
        long u_end = n - u0 < 32 ? n : u0 + 32;
        for (long u = u0; u < u_end; ++u) {
            /* parent[u] <= u: its entry, if not u itself, was rewritten before */
            uint32_t v = root_flip[root_flip[u]];     /* u itself, unmarked, for a root */
            long moved = has_ghost ? (long)(v & ~PE_FLIP) != ghost : 1;
            long smallest = (v == (uint32_t)u) & moved;
            v |= bits & PE_FLIP & -(uint32_t)smallest;
            bits <<= 1;
            root_flip[u] = v;
            n_clusters += smallest;
            n_moved += moved;
            s[u] ^= (int8_t)(((int32_t)v >> 31) & 0xFE);       /* +-1 -> -+1 */
        }
    }
    stats[0] += n_clusters;
    stats[1] += n_moved;
}

/* Swendsen-Wang on spins: edge bonds; then, unit by unit, a clamped unit joins the ghost, a
 * free one with h_u s_u > 0 draws its ghost bond; then the flips (pe__flips). */
static void pe_swendsen_wang_spins(const pe_cluster_graph *g, int8_t *s, pe_cluster_scratch *w,
                                   uint64_t *t, long n_sweeps, int64_t *stats)
{
    long n = g->n;
    int32_t *parent = w->parent;
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        pe__clusters(g, w, pe__bond_draws(g, s, 0, w, t));
        for (long u = 0; u < n * g->ghost_bonds; ++u)
            if (!g->free_unit[u] || (g->field[u] * s[u] > 0.0 && PE_UNIFORM(t) < w->p_field[u]))
                pe__union(parent, u, n);
        long ghost = pe__find(parent, n);
        if (ghost < n)
            pe__flips((uint32_t *)parent, s, n, ghost, 1, t, stats);
        else
            pe__flips((uint32_t *)parent, s, n, ghost, 0, t, stats);
    }
}

/* Wolff on spins: one cluster per sweep, grown from a seed free_list[floor(u n_free)]. Growing
 * pops the queue in order; a unit x draws one uniform per neighbour y (CSR order) not yet in
 * the cluster with J s_x s_y > 0 (bonded when u < p_e), then, if the ghost is not yet in,
 * joins it without a draw when clamped, else with one when h_x s_x > 0; the ghost, popped,
 * takes every unit not yet in: clamped ones without a draw, free ones with h_u s_u > 0 with
 * one. A cluster without the ghost flips; with it, the free units outside flip (the same
 * move, globally flipped). */
static void pe_wolff_spins(const pe_cluster_graph *g, int8_t *s, pe_cluster_scratch *w,
                           uint64_t *t, long n_sweeps, int64_t *stats)
{
    long n = g->n, n_free = 0;
    int32_t *queue = w->queue;
    int64_t *mark = w->mark, id = 0;
    for (long u = 0; u <= n; ++u)
        mark[u] = 0;
    for (long u = 0; u < n; ++u)
        if (g->free_unit[u])
            w->free_list[n_free++] = (int32_t)u;
    if (n_free == 0)
        return;
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        long pick = (long)(PE_UNIFORM(t) * (double)n_free);
        long head = 0, tail = 0, size = 0;
        ++id;
        queue[tail++] = w->free_list[pick < n_free ? pick : n_free - 1];
        mark[queue[0]] = id;
        while (head < tail) {
            long x = queue[head++];
            if (x == n) {
                for (long u = 0; u < n; ++u)
                    if (mark[u] != id && (!g->free_unit[u] || (g->field[u] * s[u] > 0.0
                                            && PE_UNIFORM(t) < w->p_field[u]))) {
                        mark[u] = id;
                        queue[tail++] = (int32_t)u;
                    }
                continue;
            }
            size += g->free_unit[x];
            for (int64_t q = g->indptr[x]; q < g->indptr[x + 1]; ++q) {
                long y = g->neighbour[q], e = g->neighbour_edge[q];
                if (mark[y] != id && g->coupling[e] * s[x] * s[y] > 0.0
                        && PE_UNIFORM(t) < w->p_edge[e]) {
                    mark[y] = id;
                    queue[tail++] = (int32_t)y;
                }
            }
            if (mark[n] != id && (!g->free_unit[x] || (g->field[x] * s[x] > 0.0
                                                      && PE_UNIFORM(t) < w->p_field[x]))) {
                mark[n] = id;
                queue[tail++] = (int32_t)n;
            }
        }
        if (mark[n] != id) {
            for (long q = 0; q < tail; ++q)
                s[queue[q]] = (int8_t)-s[queue[q]];
        } else {
            for (long q = 0; q < n_free; ++q)
                if (mark[w->free_list[q]] != id)
                    s[w->free_list[q]] = (int8_t)-s[w->free_list[q]];
        }
        stats[0] += 1;
        stats[1] += size;
    }
}

/* Swendsen-Wang on Potts sites: edge bonds between equal neighbours; clusters holding a
 * clamped site keep their colour; every other cluster, in the order of its smallest site,
 * draws its colour c with probability proportional to e^(beta F_c), F_c = sum_{u in C}
 * f_{u, c} (summed in site order), by one uniform: the first c whose cumulative weight
 * e^(beta F_c - max) exceeds u times their total. */
static void pe_swendsen_wang_potts(const pe_cluster_graph *g, uint16_t *x, double beta,
                                   pe_cluster_scratch *w, uint64_t *t, long n_sweeps,
                                   int64_t *stats)
{
    long n = g->n, k = g->k;
    int32_t *parent = w->parent, *label = w->label;
    double *weight = w->weight;
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        for (long u = 0; u < n; ++u)
            label[u] = PE_UNSEEN;
        pe__clusters(g, w, pe__bond_draws(g, x, 1, w, t));
        pe__roots(parent, n);
        for (long u = 0; u < n; ++u)
            if (!g->free_unit[u])
                label[parent[u]] = PE_KEEP;
        for (long u = 0; u < n; ++u) {
            long r = parent[u];
            if (label[r] == PE_KEEP)
                continue;
            if (label[r] == PE_UNSEEN) {
                label[r] = PE_PENDING;
                for (long c = 0; c < k; ++c)
                    weight[r * k + c] = 0.0;
            }
            for (long c = 0; c < k; ++c)
                weight[r * k + c] += g->field[u * k + c];
            stats[1] += 1;
        }
        for (long u = 0; u < n; ++u) {
            long r = parent[u];
            if (label[r] == PE_PENDING) {
                double *z = weight + r * k, top = -HUGE_VAL, total = 0.0, acc = 0.0;
                long pick = 0;
                for (long c = 0; c < k; ++c) {
                    z[c] *= beta;
                    top = z[c] > top ? z[c] : top;
                }
                for (long c = 0; c < k; ++c) {
                    z[c] = exp(z[c] - top);
                    total += z[c];
                }
                double v = PE_UNIFORM(t) * total;
                for (long c = 0; c < k; ++c) {
                    acc += z[c];
                    pick += acc <= v;
                }
                label[r] = (int32_t)(pick < k ? pick : k - 1);
                stats[0] += 1;
            }
            if (label[r] >= 0)
                x[u] = (uint16_t)label[r];
        }
    }
}

#endif /* PGM_ENERGY_CLUSTER_H */
