/*
 * _gibbs.h -- per-chain random streams and the vectorisable Gibbs update of one unit.
 *
 * Random numbers: xoshiro256+ (Blackman & Vigna), one stream per chain, state stored as
 * four arrays (structure of arrays) so a loop over chains vectorises. A uniform in [0, 1)
 * takes the top 52 bits of the output as the mantissa of a double in [1, 2), minus 1
 * (integer ops only, so it vectorises without AVX-512).
 *
 * Update: a unit with local field f takes the "on" value low + scale (1 for binary, +1 for
 * spin) when u < sigmoid(scale * beta * f), else low (0 or -1).
 */
#ifndef PGM_ENERGY_GIBBS_H
#define PGM_ENERGY_GIBBS_H

#include "_vecmath.h"

static inline uint64_t pe__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Advance one xoshiro256+ stream (its four state words) and return a uniform in [0, 1). */
static inline double pe__uniform(uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3)
{
    uint64_t result = *s0 + *s3;
    uint64_t t = *s1 << 17;
    *s2 ^= *s0;
    *s3 ^= *s1;
    *s1 ^= *s2;
    *s0 ^= *s3;
    *s2 ^= t;
    *s3 = pe__rotl(*s3, 45);
    return pe__asdouble((result >> 12) | UINT64_C(0x3FF0000000000000)) - 1.0;
}

/* 1.0 if u < sigmoid(z) else 0.0 (branch-free: a compare turned into a number). */
static inline double pe__bernoulli(double u, double z)
{
    return (double)(u < pe_sigmoid(z));
}

/* One unit over a run of n chains (lanes = chains, each with its own stream). The state is
 * row-major (n_units, stride): unit k of chain c is state[k * stride + c]. First the local
 * field f[c] = field + sum_q weight[q] state[neighbour[q], c], then
 * state[unit, c] = low + scale * [u_c < sigmoid(scale * beta[c] * f[c])]. */
PE_CLONES PE_UNUSED
static void pe_gibbs_unit(double *state, long stride, long unit,
                          const int32_t *PE_RESTRICT neighbour,
                          const double *PE_RESTRICT weight, long degree, double field,
                          const double *PE_RESTRICT beta, double scale, double low,
                          uint64_t *PE_RESTRICT s0, uint64_t *PE_RESTRICT s1,
                          uint64_t *PE_RESTRICT s2, uint64_t *PE_RESTRICT s3,
                          double *PE_RESTRICT f, long n)
{
    for (long c = 0; c < n; ++c)
        f[c] = field;
    for (long q = 0; q < degree; ++q) {
        const double *x = state + neighbour[q] * stride;
        double w = weight[q];
        PE_SIMD
        for (long c = 0; c < n; ++c)
            f[c] += w * x[c];
    }
    double *value = state + unit * stride;
    PE_SIMD
    for (long c = 0; c < n; ++c) {
        double u = pe__uniform(s0 + c, s1 + c, s2 + c, s3 + c);
        value[c] = low + scale * pe__bernoulli(u, scale * beta[c] * f[c]);
    }
}

/* In place over a layer of one chain: field[k] <- P(unit k on) = sigmoid(scale[k] beta field[k]). */
PE_CLONES PE_UNUSED
static void pe_layer_probabilities(double *PE_RESTRICT field, double beta,
                                   const double *PE_RESTRICT scale, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k)
        field[k] = pe_sigmoid(scale[k] * beta * field[k]);
}

/* A layer of units of one chain (one stream, draws in unit order, free units only):
 * value[k] = low[k] + scale[k] * [u < prob[k]]. */
static inline void pe_gibbs_layer(double *PE_RESTRICT value, const double *PE_RESTRICT prob,
                                  const double *PE_RESTRICT scale, const double *PE_RESTRICT low,
                                  const unsigned char *PE_RESTRICT free,
                                  uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3, long n)
{
    for (long k = 0; k < n; ++k) {
        if (!free[k])
            continue;
        double u = pe__uniform(s0, s1, s2, s3);
        value[k] = low[k] + scale[k] * (double)(u < prob[k]);
    }
}

#endif /* PGM_ENERGY_GIBBS_H */
