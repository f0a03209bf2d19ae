/*
 * _random.h -- the random numbers of the kernels: one xoshiro256+ stream per chain or run.
 *
 * xoshiro256+ (Blackman & Vigna): a stream is four 64-bit state words, seeded in Python from
 * the caller's numpy Generator (sampling.chain_streams) and stored as four arrays (structure
 * of arrays, s0[c] .. s3[c] for chain c), so a loop over chains vectorises. A uniform in
 * [0, 1) takes the top 52 bits of the output as the mantissa of a double in [1, 2), minus 1
 * (integer ops only, so it vectorises without AVX-512). The numpy twin is
 * tests/reference/gibbs.py's xoshiro_next and xoshiro_uniform; _gibbs.uniforms calls
 * pe__uniform from Python.
 */
#ifndef PGM_ENERGY_RANDOM_H
#define PGM_ENERGY_RANDOM_H

#include <stdint.h>

#include "_vecmath.h"   /* pe__asdouble, PE_RESTRICT */

static inline uint64_t pe__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Advance one xoshiro256+ stream (its four state words) and return its 64-bit output (the
 * top bits are the good ones: use them first). */
static inline uint64_t pe__next(uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3)
{
    uint64_t result = *s0 + *s3;
    uint64_t t = *s1 << 17;
    *s2 ^= *s0;
    *s3 ^= *s1;
    *s1 ^= *s2;
    *s0 ^= *s3;
    *s2 ^= t;
    *s3 = pe__rotl(*s3, 45);
    return result;
}

/* Advance one xoshiro256+ stream and return a uniform in [0, 1): the top 52 bits of its
 * output over 2^52. */
static inline double pe__uniform(uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3)
{
    return pe__asdouble((pe__next(s0, s1, s2, s3) >> 12) | UINT64_C(0x3FF0000000000000)) - 1.0;
}

/* Draw n uniforms in [0, 1) from one stream into u (the state held in registers meanwhile). */
static inline void pe__uniforms(double *PE_RESTRICT u, uint64_t *s0, uint64_t *s1,
                                uint64_t *s2, uint64_t *s3, long n)
{
    uint64_t t0 = *s0, t1 = *s1, t2 = *s2, t3 = *s3;
    for (long j = 0; j < n; ++j)
        u[j] = pe__uniform(&t0, &t1, &t2, &t3);
    *s0 = t0; *s1 = t1; *s2 = t2; *s3 = t3;
}

#endif /* PGM_ENERGY_RANDOM_H */
