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
 * Clusters of Swendsen-Wang come from a union-find (path halving, the larger root linked
 * under the smaller, so a root is the smallest unit of its set and one pass in unit order
 * resolves every root); Wolff grows one cluster at a
 * time by a FIFO queue, members marked by the cluster's number (no clearing between clusters).
 */
#ifndef PGM_ENERGY_CLUSTER_H
#define PGM_ENERGY_CLUSTER_H

#include <math.h>
#include <stdint.h>

#include "_random.h"

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
    int ghost_bonds;                 /* spins: 0 when no unit is clamped and every h_u = 0 */
    long k;                          /* Potts: colours per site */
} pe_cluster_graph;

/* Per-thread work space, allocated once per kernel call. */
typedef struct {
    int32_t *parent;                 /* (n + 1,) union-find */
    int32_t *label;                  /* (n + 1,) per root: what happens to its cluster */
    int32_t *queue;                  /* (n + 1,) Wolff's cluster, in growing order */
    int32_t *free_list;              /* (n,) the free units, in order */
    int64_t *mark;                   /* (n + 1,) Wolff: number of the last cluster holding u */
    int32_t *bonded;                 /* (n_edges,) Swendsen-Wang: the bonded edges */
    double beta;                     /* the beta p_edge and p_field are for (NaN: none yet) */
    double *p_edge;                  /* (n_edges,) bond probability of each edge */
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

static inline void pe__union(int32_t *parent, long a, long b)
{
    a = pe__find(parent, a);
    b = pe__find(parent, b);
    if (a < b)
        parent[b] = (int32_t)a;
    else if (b < a)
        parent[a] = (int32_t)b;
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

/* Bond probabilities at this chain's beta: 1 - e^(-2 beta |J_e|) (Potts: 1 - e^(-beta J_e)),
 * 1 - e^(-2 beta |h_u|); kept while the thread's chains share one beta. */
static void pe_cluster_probabilities(const pe_cluster_graph *g, double beta,
                                     pe_cluster_scratch *w)
{
    double scale = g->k ? 1.0 : 2.0;
    if (beta == w->beta)
        return;
    w->beta = beta;
    for (long e = 0; e < g->n_edges; ++e)
        w->p_edge[e] = -expm1(-scale * beta * fabs(g->coupling[e]));
    if (!g->k)
        for (long u = 0; u < g->n; ++u)
            w->p_field[u] = -expm1(-2.0 * beta * fabs(g->field[u]));
}

/* Edge bonds of Swendsen-Wang: one uniform per edge, in edge order; edge e bonds when it is
 * satisfied (spins: sign_e s_i s_j > 0; Potts: x_i = x_j and sign_e > 0, see
 * pe_cluster_edge_signs) and its uniform is < p_e. The bonded edges are listed without
 * branches on the random outcomes (they would be mispredicted about half the time), then
 * joined. */
static inline void pe__edge_bonds(const pe_cluster_graph *g, const void *state, int potts,
                                  pe_cluster_scratch *w, uint64_t *t)
{
    const int8_t *s = (const int8_t *)state;
    const uint16_t *x = (const uint16_t *)state;
    uint64_t t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3];
    long n_bonded = 0;
    for (long e = 0; e < g->n_edges; ++e) {
        double u = pe__uniform(&t0, &t1, &t2, &t3);
        long i = g->edge_i[e], j = g->edge_j[e];
        int sign = g->edge_sign[e];
        int satisfied = potts ? (x[i] == x[j]) & (sign > 0) : s[i] * s[j] * sign > 0;
        w->bonded[n_bonded] = (int32_t)e;
        n_bonded += satisfied & (u < w->p_edge[e]);
    }
    t[0] = t0; t[1] = t1; t[2] = t2; t[3] = t3;
    for (long b = 0; b < n_bonded; ++b)
        pe__union(w->parent, g->edge_i[w->bonded[b]], g->edge_j[w->bonded[b]]);
}

/* Set parent[u] to u's root for every unit u < n, in one pass in increasing order (a parent
 * is never larger than its child, so the parent's root is known by then). */
static inline void pe__roots(int32_t *parent, long n)
{
    for (long u = 0; u < n; ++u)
        parent[u] = parent[parent[u]];
}

/* Swendsen-Wang on spins: edge bonds; then, unit by unit, a clamped unit joins the ghost, a
 * free one with h_u s_u > 0 draws its ghost bond; then every cluster without the ghost, in
 * the order of its smallest unit, flips when its uniform is < 1/2. */
static void pe_swendsen_wang_spins(const pe_cluster_graph *g, int8_t *s, pe_cluster_scratch *w,
                                   uint64_t *t, long n_sweeps, int64_t *stats)
{
    long n = g->n;
    int32_t *parent = w->parent, *label = w->label;
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        for (long u = 0; u <= n; ++u)
            parent[u] = (int32_t)u;
        pe__edge_bonds(g, s, 0, w, t);
        for (long u = 0; u < n * g->ghost_bonds; ++u)
            if (!g->free_unit[u] || (g->field[u] * s[u] > 0.0 && PE_UNIFORM(t) < w->p_field[u]))
                pe__union(parent, u, n);
        long ghost = pe__find(parent, n), n_clusters = 0, n_moved = 0;
        for (long u = 0; u < n; ++u) {
            long r = parent[parent[u]];          /* a root: parent[u] <= u came before */
            parent[u] = (int32_t)r;
            if (r == u && r != ghost) {          /* a cluster's smallest unit: its draw */
                label[u] = PE_UNIFORM(t) < 0.5;
                n_clusters += 1;
            }
            n_moved += r != ghost;
            s[u] = (int8_t)(s[u] * (1 - 2 * (r != ghost) * label[r]));
        }
        stats[0] += n_clusters;
        stats[1] += n_moved;
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
        for (long u = 0; u < n; ++u) {
            parent[u] = (int32_t)u;
            label[u] = PE_UNSEEN;
        }
        pe__edge_bonds(g, x, 1, w, t);
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
