/*
 * _ais.h -- one run's updates in annealed importance sampling on a bipartite model.
 *
 * Layout: runs in rows; a run's units are contiguous, so each loop below runs over the units
 * of one run (vectorised), and each run draws from its own xoshiro256+ stream, serially, in
 * unit order.
 *
 * The model is in binary form (units in {0, 1}). Kept units x, summed units h, couplings C,
 * and the fields a = c + C x (summed) and g = b + C^T h (kept) kept up to date per run:
 *   log f_beta(x) = (1 - beta) b0.x + beta b.x + sum_j softplus(beta a_j)
 * A step from beta_prev to beta adds log f_beta(x) - log f_beta_prev(x) to the run's log
 * weight, then (unless it is the last step) makes one Gibbs transition that leaves f_beta
 * invariant: h_j ~ Bernoulli(sigmoid(beta a_j)), then
 * x_i ~ Bernoulli(sigmoid((1 - beta) b0_i + beta g_i)).
 * Units that changed are listed, so the fields can be updated by adding the changed rows of
 * C (or C^T) when few changed, instead of a full matrix product.
 *
 * Sums go through pe_sum (fixed order), so results do not depend on the thread count. Unit
 * and coupling arrays are double (suffix _d) or float (suffix _f); fields, log weights and
 * all arithmetic are double.
 */
#ifndef PGM_ENERGY_AIS_H
#define PGM_ENERGY_AIS_H

#include "_random.h"   /* pe__uniforms */
#include "_vecmath.h"   /* pe_softplus, pe_sigmoid, pe_sum */

/* sum_j softplus(beta a_j) - softplus(beta_prev a_j); buf: n doubles of scratch. */
PE_CLONES PE_UNUSED
static double pe_ais_summed_weight(const double *PE_RESTRICT a, double beta, double beta_prev,
                                   double *PE_RESTRICT buf, long n)
{
    PE_SIMD
    for (long j = 0; j < n; ++j)
        buf[j] = pe_softplus(beta * a[j]) - pe_softplus(beta_prev * a[j]);
    return pe_sum(buf, n);
}

#define PE_AIS_DEFINE(S, T)                                                                    \
/* sum_i slope_i x_i; buf: n doubles of scratch. */                                            \
PE_CLONES PE_UNUSED                                                                            \
static double pe_ais_dot_##S(const T *PE_RESTRICT x, const double *PE_RESTRICT slope,          \
                             double *PE_RESTRICT buf, long n)                                  \
{                                                                                              \
    PE_SIMD                                                                                    \
    for (long i = 0; i < n; ++i)                                                               \
        buf[i] = slope[i] * (double)x[i];                                                      \
    return pe_sum(buf, n);                                                                     \
}                                                                                              \
                                                                                               \
/* Resample a layer of one run: value[j] = [u_j < sigmoid(beta field_j + (1 - beta) base_j)],  \
 * u_j drawn in unit order from the run's stream (u: n doubles of scratch). Lists the units    \
 * that changed in changed[0 .. m) and returns m. */                                           \
PE_CLONES PE_UNUSED                                                                            \
static long pe_ais_layer_##S(T *PE_RESTRICT value, const double *PE_RESTRICT field,            \
                             const double *PE_RESTRICT base, double beta,                      \
                             double *PE_RESTRICT u, int32_t *PE_RESTRICT changed,              \
                             uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3, long n)   \
{                                                                                              \
    pe__uniforms(u, s0, s1, s2, s3, n);                                                        \
    PE_SIMD                                                                                    \
    for (long j = 0; j < n; ++j)                                                               \
        u[j] = (double)(u[j] < pe_sigmoid(beta * field[j] + (1.0 - beta) * base[j]));          \
    long m = 0;                                                                                \
    for (long j = 0; j < n; ++j) {                                                             \
        changed[m] = (int32_t)j;                                                               \
        m += u[j] != (double)value[j];                                                         \
        value[j] = (T)u[j];                                                                    \
    }                                                                                          \
    return m;                                                                                  \
}                                                                                              \
                                                                                               \
/* field[k] += sum_t (2 value[changed[t]] - 1) rows[changed[t]][k], rows of length n: the     \
 * change in C x (or C^T h) when the listed units flipped to their current values. */          \
PE_CLONES PE_UNUSED                                                                            \
static void pe_ais_add_rows_##S(double *PE_RESTRICT field, const T *PE_RESTRICT rows,          \
                                const int32_t *PE_RESTRICT changed,                            \
                                const T *PE_RESTRICT value, long m, long n)                    \
{                                                                                              \
    for (long t = 0; t < m; ++t) {                                                             \
        const T *row = rows + (long)changed[t] * n;                                            \
        double sign = 2.0 * (double)value[changed[t]] - 1.0;                                   \
        PE_SIMD                                                                                \
        for (long k = 0; k < n; ++k)                                                           \
            field[k] += sign * (double)row[k];                                                 \
    }                                                                                          \
}

PE_AIS_DEFINE(d, double)
PE_AIS_DEFINE(f, float)

#undef PE_AIS_DEFINE

#endif /* PGM_ENERGY_AIS_H */
