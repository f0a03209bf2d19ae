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
 *
 * Continuous units draw by inversion, one uniform per unit update (pe__continuous_draw): the
 * formulas of pgm_energy.units' quantile methods, step for step, with scipy.special's
 * functions (passed in as pe_special by the .pyx, from scipy.special.cython_special) for the
 * truncated normals and AS241 for the normal quantile (as scipy's ndtri to rounding, and
 * vectorisable), so the numpy twin (which calls the units' quantile) gives the same values
 * to rounding.
 */
#ifndef PGM_ENERGY_RANDOM_H
#define PGM_ENERGY_RANDOM_H

#include <stdint.h>

#include "_vecmath.h"   /* pe__asdouble, PE_RESTRICT */

/* Inlined into its callers whatever the compiler's size estimate: a copy left out of line
 * would be compiled for the baseline target only, not for the caller's clone. */
#if defined(__GNUC__)
#  define PE__ALWAYS_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#  define PE__ALWAYS_INLINE static __forceinline
#else
#  define PE__ALWAYS_INLINE static inline
#endif

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

/* The uniform in the open interval (0, 1) that the inverse CDFs take: u + 2^-53, the midpoint
 * of u's cell of the 2^-52 grid (exact: (2k + 1) 2^-53 has 53 significant bits), so 0 maps to
 * 2^-53 and the largest u to 1 - 2^-53; the grid stays symmetric about 1/2. */
static inline double pe__open_uniform(double u) { return u + 0x1p-53; }

/* log(x) for a positive normal double x, branch-free and vectorisable (no libm): fdlibm's
 * e_log.c (as in musl), error under 1 ulp. x = 2^k m with m in [sqrt(2)/2, sqrt(2)) by integer
 * work on the bits (k converted to double exactly through the 2^52 trick), then with
 * f = m - 1, s = f / (2 + f): log(x) = k ln2 + f - hfsq + s (hfsq + R(s^2)), hfsq = f^2/2. */
static inline double pe__log(double x)
{
    uint64_t bits = pe__asuint(x) + (UINT64_C(0x3ff0000000000000) - UINT64_C(0x3fe6a09e00000000));
    double k = pe__asdouble(UINT64_C(0x4330000000000000) | (bits >> 52)) - 4503599627371519.0;
    double f = pe__asdouble((bits & UINT64_C(0x000fffffffffffff))
                            + UINT64_C(0x3fe6a09e00000000)) - 1.0;
    double hfsq = 0.5 * f * f, s = f / (2.0 + f), z = s * s, w = z * z;
    double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01
                                                     + w * 1.531383769920937332e-01));
    double t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01
                     + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    return s * (hfsq + t2 + t1) + k * 1.90821492927058770002e-10 - hfsq + f
           + k * 6.93147180369123816490e-01;
}

/* The standard normal quantile Phi^-1(u), u in (0, 1): Wichura's AS241 PPND16 (Applied
 * Statistics 37, 1988), relative error about 1e-16, agreeing with scipy.special.ndtri to
 * rounding (tests/test_continuous_sampling.py). In three parts, so that the common cases
 * vectorise: the central rational function (|u - 1/2| <= 0.425, 85% of draws), the near tail
 * (r = sqrt(-log(min(u, 1 - u))) <= 5, down to u = 1.4e-11) and the far tail. */
#define PE__NORMAL_CENTRAL 0.425

static inline double pe__normal_quantile_central(double u)
{
    double q = u - 0.5, r = 0.180625 - q * q;
    return q * (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r
                     + 6.7265770927008700853e+4) * r + 4.5921953931549871457e+4) * r
                   + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r
                 + 1.3314166789178437745e+2) * r + 3.3871328727963666080e+0)
           / (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r
                   + 3.9307895800092710610e+4) * r + 2.1213794301586595867e+4) * r
                 + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r
               + 4.2313330701600911252e+1) * r + 1.0);
}

/* r = sqrt(-log(min(u, 1 - u))), the tails' variable (1 - u is exact for u > 1/2); the choice
 * by a mask on the sign of u - 1/2, no branch (so that loops over lanes vectorise). */
static inline double pe__normal_tail_r(double u)
{
    uint64_t below = (uint64_t)((int64_t)pe__asuint(u - 0.5) >> 63);    /* all ones if u < 1/2 */
    double p = pe__asdouble((pe__asuint(u) & below) | (pe__asuint(1.0 - u) & ~below));
    return sqrt(-pe__log(p));
}

/* |Phi^-1(u)| in the near tail from r <= 5, and in the far tail from r > 5. */
static inline double pe__normal_quantile_near(double r)
{
    r -= 1.6;
    return (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
                 + 2.41780725177450611770e-1) * r + 1.27045825245236838258e+0) * r
               + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r
             + 4.63033784615654529590e+0) * r + 1.42343711074968357734e+0)
           / (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
                   + 1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r
                 + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r
               + 2.05319162663775882187e+0) * r + 1.0);
}

static inline double pe__normal_quantile_far(double r)
{
    r -= 5.0;
    return (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                 + 1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r
               + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r
             + 5.46378491116411436990e+0) * r + 6.65790464350110377720e+0)
           / (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
                   + 1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r
                 + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
               + 5.99832206555887937690e-1) * r + 1.0);
}

static inline double pe__normal_quantile(double u)
{
    if (fabs(u - 0.5) <= PE__NORMAL_CENTRAL)
        return pe__normal_quantile_central(u);
    double r = pe__normal_tail_r(u);
    double value = r <= 5.0 ? pe__normal_quantile_near(r) : pe__normal_quantile_far(r);
    return u < 0.5 ? -value : value;
}

/* Whether u lies in a tail of pe__normal_quantile (|u - 1/2| > 0.425), as 0 or 1, by integer
 * work on the bits (for a, b < 2^63, (a - b) >> 63 is 1 iff a < b), so that loops over lanes
 * vectorise. */
static inline uint64_t pe__normal_in_tail(double u)
{
    return (pe__asuint(PE__NORMAL_CENTRAL)
            - (pe__asuint(u - 0.5) & ~UINT64_C(0x8000000000000000))) >> 63;
}

/* pe__normal_quantile of 8 uniforms that may lie in a tail (the value for a central u is
 * finite and not Phi^-1(u)): the near tail in a vector loop (the sign of u - 1/2 on the bits),
 * then the far tail lane by lane (r > 5: u < 1.4e-11 or 1 - u < 1.4e-11; never for a
 * central u, whose r is under 1.6). */
PE__ALWAYS_INLINE void pe__normal_tail_quantiles(const double *PE_RESTRICT u,
                                                 double *PE_RESTRICT z)
{
    const uint64_t five = pe__asuint(5.0), sign = UINT64_C(0x8000000000000000);
    double r[8];
    uint64_t far = 0;
    for (int c = 0; c < 8; ++c) {
        r[c] = pe__normal_tail_r(u[c]);
        z[c] = pe__asdouble(pe__asuint(pe__normal_quantile_near(r[c]))
                            ^ (pe__asuint(u[c] - 0.5) & sign));
        far |= (five - pe__asuint(r[c])) >> 63;
    }
    if (far)
        for (int c = 0; c < 8; ++c)
            if (r[c] > 5.0)
                z[c] = u[c] < 0.5 ? -pe__normal_quantile_far(r[c])
                                  : pe__normal_quantile_far(r[c]);
}

/* pe__normal_quantile of 8 uniforms (the same values), in loops that vectorise: the central
 * part for every lane, and the tails (pe__normal_tail_quantiles) for every lane when one needs
 * them (73% of groups of 8), chosen by mask. */
PE__ALWAYS_INLINE void pe__normal_quantiles(const double *PE_RESTRICT u, double *PE_RESTRICT z)
{
    uint64_t tails = 0;
    for (int c = 0; c < 8; ++c) {
        z[c] = pe__normal_quantile_central(u[c]);
        tails |= pe__normal_in_tail(u[c]);
    }
    if (!tails)
        return;
    double t[8];
    pe__normal_tail_quantiles(u, t);
    for (int c = 0; c < 8; ++c) {
        uint64_t tail = 0 - pe__normal_in_tail(u[c]);            /* all ones in a tail */
        z[c] = pe__asdouble((pe__asuint(t[c]) & tail) | (pe__asuint(z[c]) & ~tail));
    }
}

/* Kinds of a slot for the draws (sampling's _SLOT_KIND): binary, spin and categorical slots are
 * PE_TWO_VALUED (their own update), the continuous kinds draw by pe__continuous_draw. */
enum { PE_TWO_VALUED = 0, PE_GAUSSIAN = 1, PE_RELU = 2, PE_DRELU = 3 };

/* The special functions of scipy.special the truncated normals use (nogil C functions of
 * scipy.special.cython_special, filled in by the .pyx). */
typedef struct {
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
 *   PE_GAUSSIAN, p = (sigma):   sigma^2 f + sigma (1 / sqrt(beta)) Phi^-1(u) (pe__normal_quantile)
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
        return p[0] * p[0] * f + p[0] * (1.0 / sqrt(beta)) * pe__normal_quantile(u);
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

/* pe__continuous_draw of a Gaussian unit (sigma) over 8 lanes at once, in vector loops:
 * x[c] = sigma^2 f[c] + sigma noise[c] Phi^-1(u[c] + 2^-53), u[c] the raw uniforms and
 * noise[c] = 1 / sqrt(beta[c]) (pe__noise_scales: computed once per chain by callers that
 * draw many units of the same chains). */
PE__ALWAYS_INLINE void pe__gaussian_draws(double *PE_RESTRICT x, const double *PE_RESTRICT u,
                                          const double *PE_RESTRICT f,
                                          const double *PE_RESTRICT noise, double sigma)
{
    double open[8];
    for (int c = 0; c < 8; ++c)
        open[c] = pe__open_uniform(u[c]);
    pe__normal_quantiles(open, x);
    PE_SIMD
    for (int c = 0; c < 8; ++c)
        x[c] = sigma * sigma * f[c] + sigma * noise[c] * x[c];
}

/* noise[c] = 1 / sqrt(beta[c]) for 8 lanes, the Gaussian draws' factor. */
PE__ALWAYS_INLINE void pe__noise_scales(double *PE_RESTRICT noise, const double *PE_RESTRICT beta)
{
    PE_SIMD
    for (int c = 0; c < 8; ++c)
        noise[c] = 1.0 / sqrt(beta[c]);
}

#endif /* PGM_ENERGY_RANDOM_H */
