/*
 * _random.h -- the random numbers of the kernels: one xoshiro256+ stream per chain or run.
 *
 * xoshiro256+ (Blackman & Vigna): a stream is four 64-bit state words, seeded in Python from
 * the caller's numpy Generator (sampling.chain_streams) and stored as four arrays (structure
 * of arrays, s0[c] .. s3[c] for chain c), so a loop over chains vectorises. A uniform in
 * [0, 1) takes the top 52 bits of the output as the mantissa of a double in [1, 2), minus 1
 * (integer ops only, so it vectorises without AVX-512). The numpy twin is
 * tests/reference/gibbs.py's xoshiro_uniform; _gibbs.uniforms calls pe__uniform from Python.
 *
 * Continuous units draw by inversion, one uniform per unit update (pe__continuous_draw): the
 * formulas of pgm_energy.units' quantile methods, step for step, with scipy.special's
 * functions (passed in as pe_special by the .pyx, from scipy.special.cython_special), so the
 * numpy twin (which calls the units' quantile) gives the same values to rounding.
 */
#ifndef PGM_ENERGY_RANDOM_H
#define PGM_ENERGY_RANDOM_H

#include <stdint.h>

#include "_vecmath.h"   /* pe__asdouble, PE_RESTRICT */

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

/* Draw n uniforms in [0, 1) from one stream into u (the state held in registers meanwhile). */
static inline void pe__uniforms(double *PE_RESTRICT u, uint64_t *s0, uint64_t *s1,
                                uint64_t *s2, uint64_t *s3, long n)
{
    uint64_t t0 = *s0, t1 = *s1, t2 = *s2, t3 = *s3;
    for (long j = 0; j < n; ++j)
        u[j] = pe__uniform(&t0, &t1, &t2, &t3);
    *s0 = t0; *s1 = t1; *s2 = t2; *s3 = t3;
}

/* The uniform in the open interval (0, 1) that the inverse CDFs take: u + 2^-53, the midpoint
 * of u's cell of the 2^-52 grid (exact: (2k + 1) 2^-53 has 53 significant bits), so 0 maps to
 * 2^-53 and the largest u to 1 - 2^-53; the grid stays symmetric about 1/2. */
static inline double pe__open_uniform(double u) { return u + 0x1p-53; }

/* Kinds of a slot for the draws (sampling's _SLOT_KIND): binary, spin and categorical slots are
 * PE_TWO_VALUED (their own update), the continuous kinds draw by pe__continuous_draw. */
enum { PE_TWO_VALUED = 0, PE_GAUSSIAN = 1, PE_RELU = 2, PE_DRELU = 3 };

/* The special functions of scipy.special the draws use (nogil C functions of
 * scipy.special.cython_special, filled in by the .pyx). */
typedef struct {
    double (*ndtri)(double);         /* inverse of the standard normal CDF */
    double (*log_ndtr)(double);      /* log of the standard normal CDF */
    double (*ndtri_exp)(double);     /* ndtri(exp(y)), accurate for very negative y */
    double (*erfcx)(double);         /* exp(x^2) erfc(x) */
} pe_special;

/* T(t) = log int_0^inf exp(-y^2/2 + t y) dy (units.half_normal_log_integral): for t >= 0,
 * t^2/2 + log(2 pi)/2 + log_ndtr(t); else log(pi/2)/2 + log(erfcx(-t / sqrt 2)). */
static inline double pe__half_normal_log_integral(double t, const pe_special *sp)
{
    if (t >= 0.0)
        return t * t / 2 + 0.9189385332046727 + sp->log_ndtr(t);
    return 0.2257913526447274 + log(sp->erfcx(-t / 1.4142135623730951));
}

/* The inverse CDF of y ~ N(t, 1) truncated to y >= 0 at the upper-tail probability u in
 * (0, 1] (units.truncated_quantile): max(t - ndtri_exp(log u + log_ndtr(t)), 0), in log space,
 * so exact deep in the tail, with no rejection loop. */
static inline double pe__truncated_quantile(double t, double u, const pe_special *sp)
{
    double q = t - sp->ndtri_exp(log(u) + sp->log_ndtr(t));
    return q > 0.0 ? q : 0.0;
}

/* A continuous unit's draw given its local field f, inverse temperature beta and uniform u in
 * [0, 1) (made open by pe__open_uniform), by the quantile of its kind (pgm_energy.units):
 *   PE_GAUSSIAN, p = (sigma):   sigma^2 f + sigma / sqrt(beta) ndtri(u)
 *   PE_RELU:                    truncated_quantile(sqrt(beta) f, u) / sqrt(beta)
 *   PE_DRELU, p = (gamma_plus, gamma_minus, theta_plus, theta_minus): with
 *     s_+- = 1 / sqrt(beta gamma_+-), t_+ = beta (f - theta_plus) s_+,
 *     t_- = -beta (f - theta_minus) s_-, log Z_+- = T(t_+-) + log s_+-,
 *     w = P(x < 0) = expit(log Z_- - log Z_+):
 *     u < w: -s_- truncated_quantile(t_-, u / w), else s_+ truncated_quantile(t_+, (1-u)/(1-w)).
 * Out of line: a few special-function calls, nothing to vectorise. */
static PE_UNUSED double pe__continuous_draw(int kind, const double *p, double f, double beta,
                                            double u, const pe_special *sp)
{
    u = pe__open_uniform(u);
    if (kind == PE_GAUSSIAN)
        return p[0] * p[0] * f + p[0] / sqrt(beta) * sp->ndtri(u);
    if (kind == PE_RELU) {
        double root = sqrt(beta);
        return pe__truncated_quantile(root * f, u, sp) / root;
    }
    double s_plus = 1.0 / sqrt(beta * p[0]), s_minus = 1.0 / sqrt(beta * p[1]);
    double t_plus = beta * (f - p[2]) * s_plus, t_minus = -beta * (f - p[3]) * s_minus;
    double log_plus = pe__half_normal_log_integral(t_plus, sp) + log(s_plus);
    double log_minus = pe__half_normal_log_integral(t_minus, sp) + log(s_minus);
    double w_minus = 1.0 / (1.0 + exp(-(log_minus - log_plus)));
    if (u < w_minus)
        return -s_minus * pe__truncated_quantile(t_minus, u / w_minus, sp);
    return s_plus * pe__truncated_quantile(t_plus, (1.0 - u) / (1.0 - w_minus), sp);
}

#endif /* PGM_ENERGY_RANDOM_H */
