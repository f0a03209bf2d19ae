/*
 * _ais.h -- the per-unit updates of annealed importance sampling on a bipartite model.
 *
 * Layout: every array is (units, stride) row-major, runs in columns, so one unit's values over
 * a block of runs are contiguous and each loop below runs over runs (lanes), each run with its
 * own xoshiro256+ stream (structure of arrays, as in _gibbs.h).
 *
 * The model is in binary form (units in {0, 1}). Kept units x, summed units h, couplings C:
 *   log f_beta(x) = (1 - beta) base.x + beta field.x + sum_j softplus(beta (c_j + (C x)_j))
 * A step from beta_prev to beta adds log f_beta(x) - log f_beta_prev(x) to each run's log
 * weight, then (unless it is the last step) makes one Gibbs transition that leaves f_beta
 * invariant: h_j ~ Bernoulli(sigmoid(beta (c_j + (C x)_j))), then
 * x_i ~ Bernoulli(sigmoid((1 - beta) base_i + beta (field_i + (C^T h)_i))).
 *
 * Bernoulli draw: a unit is on iff u < sigmoid(z) (pe_sigmoid of _vecmath.h, vectorisable),
 * u a uniform in [0, 1) from the run's stream.
 *
 * Each function is defined for double (suffix _d) and float (suffix _f) unit arrays; the
 * fields, the log weights and all arithmetic are double.
 */
#ifndef PGM_ENERGY_AIS_H
#define PGM_ENERGY_AIS_H

#include "_gibbs.h"   /* pe__uniform; it includes _vecmath.h (pe_softplus, pe_sigmoid) */

#define PE_AIS_DEFINE(S, T)                                                                    \
/* A summed unit with field c over n runs: a[r] = (C x)_j of run r.                            \
 * log_w[r] += softplus(beta z) - softplus(beta_prev z), z = c + a[r]; if sample, also         \
 * h[r] = [u_r < sigmoid(beta z)] with one uniform from run r's stream. */                     \
PE_CLONES PE_UNUSED                                                                            \
static void pe_ais_summed_unit_##S(const T *PE_RESTRICT a, T *PE_RESTRICT h,                   \
                                   double *PE_RESTRICT log_w, double c, double beta,            \
                                   double beta_prev, int sample, uint64_t *PE_RESTRICT s0,      \
                                   uint64_t *PE_RESTRICT s1, uint64_t *PE_RESTRICT s2,          \
                                   uint64_t *PE_RESTRICT s3, long n)                            \
{                                                                                              \
    if (!sample) {                                                                             \
        PE_SIMD                                                                                \
        for (long r = 0; r < n; ++r) {                                                         \
            double z = c + (double)a[r];                                                       \
            log_w[r] += pe_softplus(beta * z) - pe_softplus(beta_prev * z);                    \
        }                                                                                      \
        return;                                                                                \
    }                                                                                          \
    PE_SIMD                                                                                    \
    for (long r = 0; r < n; ++r) {                                                             \
        double z = c + (double)a[r];                                                           \
        log_w[r] += pe_softplus(beta * z) - pe_softplus(beta_prev * z);                        \
        double u = pe__uniform(s0 + r, s1 + r, s2 + r, s3 + r);                                \
        h[r] = (T)(u < pe_sigmoid(beta * z));                                                    \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* A kept unit with target field b and base field b0 over n runs: g[r] = (C^T h)_i of run r.   \
 * log_w[r] += (beta - beta_prev) (b - b0) x[r]; if sample, then                               \
 * x[r] = [u_r < sigmoid((1 - beta) b0 + beta (b + g[r]))]. */                                 \
PE_CLONES PE_UNUSED                                                                            \
static void pe_ais_kept_unit_##S(const T *PE_RESTRICT g, T *PE_RESTRICT x,                     \
                                 double *PE_RESTRICT log_w, double b, double b0, double beta,   \
                                 double beta_prev, int sample, uint64_t *PE_RESTRICT s0,        \
                                 uint64_t *PE_RESTRICT s1, uint64_t *PE_RESTRICT s2,            \
                                 uint64_t *PE_RESTRICT s3, long n)                              \
{                                                                                              \
    double slope = (beta - beta_prev) * (b - b0);                                              \
    PE_SIMD                                                                                    \
    for (long r = 0; r < n; ++r)                                                               \
        log_w[r] += slope * (double)x[r];                                                      \
    if (!sample)                                                                               \
        return;                                                                                \
    double base = (1.0 - beta) * b0;                                                           \
    PE_SIMD                                                                                    \
    for (long r = 0; r < n; ++r) {                                                             \
        double u = pe__uniform(s0 + r, s1 + r, s2 + r, s3 + r);                                \
        x[r] = (T)(u < pe_sigmoid(base + beta * (b + (double)g[r])));                        \
    }                                                                                          \
}

PE_AIS_DEFINE(d, double)
PE_AIS_DEFINE(f, float)

#undef PE_AIS_DEFINE

#endif /* PGM_ENERGY_AIS_H */
