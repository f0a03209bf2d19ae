/*
 * _vecmath.h -- softplus / sigmoid kernels that the auto-vectoriser can handle.
 *
 * No libm calls: libm's exp/log1p are opaque scalar calls, so any loop that uses
 * them stays scalar. Here exp and log1p are branch-free polynomials in plain
 * C99 (no -ffast-math needed). The array functions are built twice with GCC
 * function multiversioning: an x86-64-v3 (AVX2 + FMA) clone picked at load time
 * where the CPU has it, and a baseline (SSE2 on x86-64) clone.
 *
 * Accuracy (checked against mpmath, see the PR notes): pe_softplus is within
 * about 1.5 ulp of the exact result for all finite x; pe_sigmoid is within
 * about 2 ulp.
 *
 * Build notes
 *  - Loops vectorise at -O3, or at -O2 with -fvect-cost-model=dynamic. Plain
 *    -O2 in GCC 12 uses the "very-cheap" model, which skips loops that need a
 *    scalar tail. Under -fopenmp the loops also carry "omp simd".
 *  - GCC contracts a*b+c into FMA in the AVX2 clone (the GNU C default is
 *    -ffp-contract=fast) and cannot in the SSE2 clone, so the last bit can
 *    differ between clones (every result is still within the bound above).
 *    pe_sum adds no products, so both clones give the same bits.
 *  - The clone is "arch=x86-64-v3", not "arch=haswell": GCC dispatches arch=<cpu>
 *    on the CPU *model* (so on a Haswell only, not on Skylake or AMD), but dispatches
 *    the x86-64-vN levels on CPU features.
 *  - No clones (one build for the compile flags) where ifunc is not there or not
 *    tested: non-x86-64, non-glibc, clang, MSVC, GCC < 12, or -DPE_VECMATH_NO_CLONES.
 *  - target_clones functions cannot be inlined into their callers. A call costs
 *    one indirect jump, which is nothing next to n = 784 elements.
 *
 * Not thread-unsafe anywhere: no state, no tables.
 */
#ifndef PGM_ENERGY_VECMATH_H
#define PGM_ENERGY_VECMATH_H

#include <stdint.h>
#include <string.h>   /* memcpy; also pulls in <features.h>, which defines __GLIBC__ */

#if defined(__cplusplus) || defined(_MSC_VER)
#  define PE_RESTRICT __restrict
#else
#  define PE_RESTRICT restrict
#endif

#if defined(__GNUC__)
#  define PE_UNUSED __attribute__((unused))
#else
#  define PE_UNUSED
#endif

#if !defined(PE_VECMATH_NO_CLONES) && defined(__GNUC__) && !defined(__clang__) \
    && !defined(__INTEL_COMPILER) && __GNUC__ >= 12 && defined(__x86_64__)     \
    && defined(__ELF__) && defined(__GLIBC__)
#  define PE_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#  define PE_VECMATH_HAVE_CLONES 1
#else
#  define PE_CLONES
#  define PE_VECMATH_HAVE_CLONES 0
#endif

#if defined(_OPENMP) && _OPENMP >= 201307
#  define PE_SIMD _Pragma("omp simd")
#else
#  define PE_SIMD
#endif

static inline double pe__asdouble(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t pe__asuint(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* Selections are done with 64-bit integer masks built by subtraction and shift,
 * never with ?: or FP compares:
 *  - a ?: is a branch in GCC's IR. PRE/threading can then constant-fold one arm
 *    (e.g. the clamped exp) and leave FP ops that may trap in the other; with
 *    -ftrapping-math (the default) if-conversion then gives up ("control flow in
 *    loop") and the loop is not vectorised;
 *  - an FP compare turned into a 64-bit integer mask needs SSE4.2 (no SSE2 clone).
 * (b - a) >> 63 is 1 iff a > b, for a, b < 2^63. */
#define PE__SIGN   UINT64_C(0x8000000000000000)
#define PE__ABS    UINT64_C(0x7fffffffffffffff)
#define PE__B_INF  UINT64_C(0x7ff0000000000000)   /* bits of +inf    */
#define PE__B_746  UINT64_C(0x4087500000000000)   /* bits of 746.0   */
#define PE__B_HALF UINT64_C(0x3fe0000000000000)   /* bits of 0.5     */
#define PE__B_ONE  UINT64_C(0x3ff0000000000000)   /* bits of 1.0     */
#define PE__B_TINY UINT64_C(0x3c90000000000000)   /* bits of 2^-54   */

/* ---- e^-|x| ---------------------------------------------------------------
 * a = -min(|x|, 746) (NaN passes through); for |x| >= 746 the result is 0.
 * exp(a) = 2^k e^r,  k = round(a/ln2),  r = a - k ln2 (Cody-Waite, |r| <= ln2/2).
 * k comes from the shifter trick: t = a*log2(e) + (1.5*2^52 + 1087) holds k+1087
 * in its low mantissa bits, so bits(t) << 52 is 2^(k+64) (a normal number: the
 * clamp keeps k >= -1077). e^r = 1 + r + r^2 Q(r), Q of degree 9 (minimax,
 * relative error 2^-56.7 after rounding the coefficients), evaluated as
 * (1 + w)*2^-64 = w*2^-64 + 2^-64 (exact scaling), then times 2^(k+64): one
 * rounding, which is correct also when the result is subnormal.
 */
#define PE__LOG2E   1.4426950408889634
#define PE__SHIFT   6755399441056831.0        /* 0x1.8p52 + 1087 */
#define PE__LN2_HI  0.69314718036912382       /* 0x1.62e42feep-1: k*LN2_HI exact for |k| < 2^11 */
#define PE__LN2_LO  1.9082149292705877e-10
#define PE__TWOM64  5.4210108624275222e-20    /* 2^-64 */

static inline double pe__exp_negabs(double x)
{
    uint64_t ax = pe__asuint(x) & PE__ABS;
    /* all ones iff 746 < |x| <= inf */
    uint64_t m = ((PE__B_INF - ax) >> 63) - ((PE__B_746 - ax) >> 63);
    ax ^= (ax ^ PE__B_746) & m;
    double a = pe__asdouble(ax | PE__SIGN);

    double t = a * PE__LOG2E + PE__SHIFT;
    double k = t - PE__SHIFT;
    double r = (a - k * PE__LN2_HI) - k * PE__LN2_LO;
    double r2 = r * r, r4 = r2 * r2;
    /* Q(r) = E2 + E3 r + ... + E11 r^9, Estrin's scheme */
    double p0 = 0.500000000000001 + 0.16666666666666674 * r;
    double p1 = 0.041666666666523064 + 0.0083333333333232649 * r;
    double p2 = 0.0013888888947551411 + 0.00019841269883944318 * r;
    double p3 = 2.4801487592754968e-05 + 2.7557244950661242e-06 * r;
    double p4 = 2.7632564691854987e-07 + 2.5109158999650104e-08 * r;
    double q = (p0 + p1 * r2) + r4 * ((p2 + p3 * r2) + r4 * p4);
    double w = r + r2 * q;                                   /* e^r - 1 */
    double scale = pe__asdouble(pe__asuint(t) << 52);       /* 2^(k+64) */
    return (w * PE__TWOM64 + PE__TWOM64) * scale;
}

/* ---- log1p(e) for e in [0, 1] -------------------------------------------
 * e <  1/2:  log1p(e) = log1p(t),         t = e
 * e >= 1/2:  log1p(e) = ln2 + log1p(t),   t = (e-1)/2  (exact: Sterbenz)
 * so t in [-1/4, 1/2] is exact and no division is needed.
 * log1p(t) = t + t^2 P(t), P of degree 20 (minimax on [-1/4, 1/2], relative
 * error 2^-57.3 after rounding), Estrin's scheme. For e < 2^-54, log1p(e) rounds
 * to e; P is then evaluated at u = 0, which keeps u^2 .. u^16 out of the
 * subnormal range (slow on many x86 CPUs).
 */
#define PE__B_LN2   UINT64_C(0x3fe62e42fefa39ef)   /* ln2 rounded to double */
#define PE__B_TAIL  UINT64_C(0x3c7abc9e3b39803f)   /* ln2 - that, 2.319e-17 */

static inline double pe__log1p_unit(double e)
{
    uint64_t be = pe__asuint(e);
    uint64_t big = (uint64_t)0 - (((PE__B_HALF - 1) - be) >> 63);   /* e >= 1/2 */
    uint64_t bt = be ^ ((be ^ pe__asuint((e - 1.0) * 0.5)) & big);
    double t  = pe__asdouble(bt);
    double hi = pe__asdouble(PE__B_LN2 & big);
    double lo = pe__asdouble(PE__B_TAIL & big);
    double u  = pe__asdouble(bt & (((be - PE__B_TINY) >> 63) - 1));  /* e < 2^-54 ? 0 : t */
    double u2 = u * u, u4 = u2 * u2, u8 = u4 * u4, u16 = u8 * u8;
    /* P(u) = L0 + L1 u + ... + L20 u^20 */
    double a0 = -0.49999999999999994 + 0.33333333333333198 * u;
    double a1 = -0.25000000000004319 + 0.20000000000050133 * u;
    double a2 = -0.16666666665924687 + 0.14285714278167233 * u;
    double a3 = -0.12500000051896876 + 0.11111111689963307 * u;
    double a4 = -0.099999985361087437 + 0.090908846078866387 * u;
    double a5 = -0.083333305273180974 + 0.076928778168477041 * u;
    double a6 = -0.071440066165535235 + 0.066602527924499472 * u;
    double a7 = -0.062233546496687796 + 0.058925431327991711 * u;
    double a8 = -0.057856433114451399 + 0.056683636549153586 * u;
    double a9 = -0.047183494334690108 + 0.026463349802157244 * u;
    double b0 = a0 + a1 * u2;
    double b1 = a2 + a3 * u2;
    double b2 = a4 + a5 * u2;
    double b3 = a6 + a7 * u2;
    double b4 = a8 + a9 * u2;
    double b5 = -0.0070167430798754767;
    double P = ((b0 + b1 * u4) + (b2 + b3 * u4) * u8) + (b4 + b5 * u4) * u16;
    return hi + (t + (lo + u2 * P));
}

/* softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|). Branch-free. */
static inline double pe_softplus(double x)
{
    uint64_t bx = pe__asuint(x);
    double mx = pe__asdouble(bx & ((bx >> 63) - 1));        /* x >= +0 ? x : +0 */
    return mx + pe__log1p_unit(pe__exp_negabs(x));
}

/* sigmoid(x) = 1/(1 + e^-x) = (x >= 0 ? 1 : e) / (1 + e),  e = e^-|x|. */
static inline double pe_sigmoid(double x)
{
    double e = pe__exp_negabs(x);
    uint64_t neg = (uint64_t)0 - (pe__asuint(x) >> 63);
    double num = pe__asdouble(PE__B_ONE ^ ((PE__B_ONE ^ pe__asuint(e)) & neg));
    return num / (1.0 + e);
}

/* field[k] += delta * weight[k];  sp[k] = softplus(field[k])  for k in [0, n). */
PE_CLONES PE_UNUSED
static void pe_update_softplus(double *PE_RESTRICT field, double *PE_RESTRICT sp,
                               const double *PE_RESTRICT weight, double delta, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k) {
        double f = field[k] + delta * weight[k];
        field[k] = f;
        sp[k] = pe_softplus(f);
    }
}

/* out[k] = softplus(x[k]). */
PE_CLONES PE_UNUSED
static void pe_softplus_array(const double *PE_RESTRICT x, double *PE_RESTRICT out, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k)
        out[k] = pe_softplus(x[k]);
}

/* out[k] = sigmoid(x[k]). */
PE_CLONES PE_UNUSED
static void pe_sigmoid_array(const double *PE_RESTRICT x, double *PE_RESTRICT out, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k)
        out[k] = pe_sigmoid(x[k]);
}

/* Sum with 8 partial sums: s[j] gets x[j], x[j+8], x[j+16], ... (the tail too),
 * and then ((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7)). The order is fixed, so the result
 * depends only on x and n, and is the same for both clones. */
PE_CLONES PE_UNUSED
static double pe_sum(const double *PE_RESTRICT x, long n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0;
    long k = 0;
    for (; k + 8 <= n; k += 8) {
        s0 += x[k];     s1 += x[k + 1]; s2 += x[k + 2]; s3 += x[k + 3];
        s4 += x[k + 4]; s5 += x[k + 5]; s6 += x[k + 6]; s7 += x[k + 7];
    }
    if (k < n) s0 += x[k++];
    if (k < n) s1 += x[k++];
    if (k < n) s2 += x[k++];
    if (k < n) s3 += x[k++];
    if (k < n) s4 += x[k++];
    if (k < n) s5 += x[k++];
    if (k < n) s6 += x[k++];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

#endif /* PGM_ENERGY_VECMATH_H */
