/*
 * _vecmath.h -- softplus / sigmoid kernels that GCC's auto-vectoriser can handle.
 *
 * libm's exp/log1p are opaque scalar calls, so a loop that uses them stays
 * scalar. Here exp and log1p are branch-free polynomials in plain C99 with no
 * libm calls and no -ffast-math. The array functions are built as GCC
 * target_clones. At load time an ifunc resolver picks x86-64-v4 (AVX-512),
 * x86-64-v3 (AVX2 + FMA) or the baseline build (SSE2 on x86-64).
 *
 * Accuracy against mpmath on 1.05e6 points in [-1e4, 1e4], every clone:
 * pe_softplus max 1.65 ulp, pe_sigmoid max 2.12 ulp. Special values:
 * softplus(+inf) = inf and softplus(-inf) = 0, sigmoid(+-inf) = 1 and 0, and NaN
 * gives NaN. For x <= -744.8 both return 0; the exact value there is at most
 * about 2^-1074 (the smallest subnormal), so this is off by at most 1 subnormal ulp.
 *
 * Build notes
 *  - Loops vectorise at -O3, or at -O2 under -fopenmp / -fopenmp-simd (they carry
 *    "omp simd" then). Plain -O2 in GCC 12 uses the "very-cheap" cost model, which
 *    skips loops that need a scalar tail. Check with -fopt-info-vec.
 *  - GNU C contracts a*b+c into FMA (-ffp-contract=fast is the default). It does
 *    so in the FMA clones only, so their last bit can differ from the SSE2 clone
 *    (about 0.7% of softplus results, by 1 ulp). Both stay within the bounds above.
 *    pe_update_softplus: field + delta*weight is one FMA in the v3/v4 clones and
 *    two roundings in SSE2. They agree when delta*weight is exact (e.g. delta = +-1, +-2).
 *    pe_sum has no products: every clone gives the same bits.
 *  - The clones are "arch=x86-64-vN", not "arch=haswell": for arch=<cpu> GCC's
 *    resolver tests the CPU *model* (__builtin_cpu_is), so a Skylake or any AMD
 *    would get the SSE2 code. For x86-64-vN it tests CPU features.
 *  - Clones only with GCC >= 12 on x86-64 ELF + glibc (ifunc). Elsewhere (clang,
 *    MSVC, musl, aarch64, ...) or with -DPE_VECMATH_NO_CLONES there is one build
 *    for the compile flags. -DPE_VECMATH_NO_AVX512 drops the x86-64-v4 clone.
 *  - target_clones functions are not inlined into callers: a call goes through
 *    the ifunc (one indirect call), which is nothing next to n = 784.
 *  - Where double arithmetic has excess precision (i386 x87, FLT_EVAL_METHOD != 0)
 *    the bit tricks do not hold, and the header falls back to libm (scalar).
 *
 * The functions have no state and no tables, so they are thread-safe.
 */
#ifndef PGM_ENERGY_VECMATH_H
#define PGM_ENERGY_VECMATH_H

#include <float.h>
#include <math.h>
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

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
#  define PE_VECMATH_LIBM 1
#else
#  define PE_VECMATH_LIBM 0
#endif

#if !defined(PE_VECMATH_NO_CLONES) && !PE_VECMATH_LIBM && defined(__GNUC__)        \
    && !defined(__clang__) && !defined(__INTEL_COMPILER) && __GNUC__ >= 12         \
    && defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__)
#  if defined(PE_VECMATH_NO_AVX512)
#    define PE_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#  else
#    define PE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#  endif
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

/* The bits of a double and back (both builds; _gibbs.h uses them too). */
static inline double pe__asdouble(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t pe__asuint(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

#if PE_VECMATH_LIBM
/* Fallback: correct but scalar. */
static inline double pe_exp_negabs(double x) { return exp(-fabs(x)); }
static inline double pe_softplus(double x) { return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x))); }
static inline double pe_sigmoid(double x)
{
    double e = exp(-fabs(x));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}
static inline int pe_below_sigmoid(double u, double x)
{
    double e = exp(-fabs(x));
    return u * (1.0 + e) < (x >= 0.0 ? 1.0 : e);
}
#else

/* Selections are done with 64-bit integer masks built by subtraction and shift,
 * never with ?: or FP compares:
 *  - a ?: is a branch in GCC's IR. PRE/threading can then constant-fold one arm
 *    (e.g. the clamped exp) and leave FP ops that may trap in the other; with
 *    -ftrapping-math (the default) if-conversion then gives up ("control flow in
 *    loop") and the loop is not vectorised;
 *  - an FP compare turned into a 64-bit integer mask needs SSE4.2 (no SSE2 clone).
 * For a, b < 2^63, (a - b) >> 63 is 1 iff a < b. The masks depend on x only, so
 * they are computed while exp runs (the latency chain is what limits speed). */
#define PE__SIGN   UINT64_C(0x8000000000000000)
#define PE__ABS    UINT64_C(0x7fffffffffffffff)
#define PE__B_INF  UINT64_C(0x7ff0000000000000)   /* bits of +inf   */
#define PE__B_746  UINT64_C(0x4087500000000000)   /* bits of 746    */
#define PE__B_37H  UINT64_C(0x4042c00000000000)   /* bits of 37.5   */
#define PE__B_C    UINT64_C(0x3fe62e42ff7b6d2b)   /* bits of 0.6931471815 = ln2 + 9.4e-10 */
#define PE__B_ONE  UINT64_C(0x3ff0000000000000)   /* bits of 1.0    */
#define PE__B_HALF UINT64_C(0x3fe0000000000000)   /* bits of 0.5    */
#define PE__B_MHALF UINT64_C(0xbfe0000000000000)  /* bits of -0.5   */
#define PE__B_LN2  UINT64_C(0x3fe62e42fefa39ef)   /* ln2 rounded to double */
#define PE__B_TAIL UINT64_C(0x3c7abc9e3b39803f)   /* ln2 - that = 2.319e-17 */

/* ---- e^-|x| = 2^k (1 + w) -------------------------------------------------
 * a = -|x|.  exp(a) = 2^k e^r,  k = round(a/ln2),  r = a - k ln2 (Cody-Waite,
 * |r| <= ln2/2). k comes from the shifter trick: t = a*log2(e) + (1.5*2^52 + 1087)
 * holds k+1087 in its low mantissa bits, so bits(t) << 52 is 2^(k+64), and
 * *s = that * 2^-64 is 2^k (subnormal for k < -1022, 0 for k < -1074).
 * Returns w = e^r - 1 = r + r^2 Q(r), Q of degree 9 (minimax, relative error of
 * e^r 2^-56.7 after rounding the coefficients), Estrin's scheme.
 * The caller forms w * s' + s'': one rounding with FMA, also for subnormal results
 * (without FMA, w*s rounds first; that matters for subnormal results only).
 * For |x| > 746 (and inf) k is garbage: callers mask the result with pe__kill.
 */
#define PE__LOG2E   1.4426950408889634
#define PE__SHIFT   6755399441056831.0        /* 0x1.8p52 + 1087 */
#define PE__LN2_HI  0.69314718036912382       /* 0x1.62e42feep-1: k*LN2_HI exact for |k| < 2^11 */
#define PE__LN2_LO  1.9082149292705877e-10
#define PE__TWOM64  5.4210108624275222e-20    /* 2^-64 */

static inline double pe__expm1_negabs(double x, double *s)
{
    double a = pe__asdouble(pe__asuint(x) | PE__SIGN);             /* -|x| */
    double t = a * PE__LOG2E + PE__SHIFT;
    double k = t - PE__SHIFT;
    double r = (a - k * PE__LN2_HI) - k * PE__LN2_LO;
    double r2 = r * r, r4 = r2 * r2, r6 = r2 * r4;
    /* Q(r) = E2 + E3 r + ... + E11 r^9;  w = (r + r^2 q01) + r^6 (q23 + r^4 q4) */
    double p0 = 0.500000000000001 + 0.16666666666666674 * r;
    double p1 = 0.041666666666523064 + 0.0083333333333232649 * r;
    double p2 = 0.0013888888947551411 + 0.00019841269883944318 * r;
    double p3 = 2.4801487592754968e-05 + 2.7557244950661242e-06 * r;
    double p4 = 2.7632564691854987e-07 + 2.5109158999650104e-08 * r;
    double q01 = p0 + p1 * r2;
    double q24 = (p2 + p3 * r2) + r4 * p4;
    *s = pe__asdouble(pe__asuint(t) << 52) * PE__TWOM64;           /* 2^k */
    return (r + r2 * q01) + r6 * q24;
}

/* all ones iff 746 < |x| <= inf: e^-|x| is 0 there (it is 0 from |x| > 744.8 on) */
static inline uint64_t pe__kill(double x)
{
    uint64_t ax = pe__asuint(x) & PE__ABS;
    return ((PE__B_INF - ax) >> 63) - ((PE__B_746 - ax) >> 63);
}

/* ---- softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e),  e = e^-|x| --------
 * |x| <  c (e >= 1/2 - 5e-10):  log1p(e) = ln2 + log1p(t),  t = (e-1)/2
 * |x| >= c (e < 1/2):           log1p(e) = log1p(t),        t = e
 * with c = ln2 + 9.4e-10, so that every e >= 1/2 takes the first form (finer t).
 * t is formed straight from e = s (1 + w): t = w*(s*c) + (s*c + o) with c = 1/2 or 1,
 * o = -1/2 or 0. That is exact or one rounding (for |x| < ln2, k is 0 or -1), no
 * rounded e in between, and no division. t in [-1/4 - 3e-10, 1/2].
 * log1p(t) = t + t^2 P(t), P of degree 20 (minimax on [-1/4, 1/2], relative
 * error 2^-57.3 after rounding; the 3e-10 past -1/4 costs nothing), Estrin.
 * For |x| >= 37.5 (e < 2^-54) log1p(e) rounds to e; P then gets u = 0, which keeps
 * u^2 .. u^18 out of the subnormal range (slow on many x86 CPUs).
 * The branch is picked from |x| rather than e, so that all masks are ready early.
 */
static inline double pe_softplus(double x)
{
    uint64_t bx = pe__asuint(x), ax = bx & PE__ABS;
    uint64_t big = (uint64_t)0 - ((ax - PE__B_C) >> 63);           /* |x| < c ~ ln2 */
    uint64_t pol = (uint64_t)0 - ((ax - PE__B_37H) >> 63);         /* |x| < 37.5   */
    double c  = pe__asdouble(PE__B_ONE ^ ((PE__B_ONE ^ PE__B_HALF) & big));   /* 1/2 or 1 */
    double o  = pe__asdouble(PE__B_MHALF & big);                              /* -1/2 or 0 */
    double mx = pe__asdouble(bx & ((bx >> 63) - 1));               /* x >= +0 ? x : +0 */
    double hi = pe__asdouble(PE__B_LN2 & big);
    double base = hi + mx;
    /* |x| < c: base = ln2 + max(x,0) rounded; lo = its error (Fast2Sum, exact as
     * ln2 >= mx up to 1e-9) + the ln2 tail.  Otherwise lo = 0 (also for x = inf). */
    double lo = pe__asdouble(pe__asuint((mx - (base - hi)) + pe__asdouble(PE__B_TAIL)) & big);

    double s;
    double w = pe__expm1_negabs(x, &s);
    double sc = s * c;
    double tt = w * sc + (sc + o);
    double t = pe__asdouble(pe__asuint(tt) & ~pe__kill(x));
    double u = pe__asdouble(pe__asuint(tt) & pol);
    double u2 = u * u, u4 = u2 * u2, u8 = u4 * u4, u10 = u2 * u8;
    /* P(u) = L0 + L1 u + ... + L20 u^20 = c0 + u^8 c1 + u^16 c2 */
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
    double c0 = (a0 + a1 * u2) + (a2 + a3 * u2) * u4;
    double c1 = (a4 + a5 * u2) + (a6 + a7 * u2) * u4;
    double c2 = (a8 + a9 * u2) + -0.0070167430798754767 * u4;
    /* lo + u^2 P = (lo + u^2 c0) + u^10 (c1 + u^8 c2) */
    double l = (lo + u2 * c0) + u10 * (c1 + u8 * c2);
    return base + (t + l);
}

/* e^-|x| (0 for |x| > 746 and for infinite x). */
static inline double pe_exp_negabs(double x)
{
    double s;
    double w = pe__expm1_negabs(x, &s);
    return pe__asdouble(pe__asuint(w * s + s) & ~pe__kill(x));
}

/* sigmoid(x) = 1/(1 + e^-x) = (x >= 0 ? 1 : e) / (1 + e),  e = e^-|x|. */
static inline double pe_sigmoid(double x)
{
    uint64_t neg = (uint64_t)0 - (pe__asuint(x) >> 63);
    double e = pe_exp_negabs(x);
    double num = pe__asdouble((pe__asuint(e) & neg) | (PE__B_ONE & ~neg));
    return num / (1.0 + e);
}

/* u < sigmoid(x) (u >= 0) without the division: u (1 + e) < (x >= 0 ? 1 : e), e = e^-|x|. */
static inline int pe_below_sigmoid(double u, double x)
{
    uint64_t neg = (uint64_t)0 - (pe__asuint(x) >> 63);
    double e = pe_exp_negabs(x);
    double num = pe__asdouble((pe__asuint(e) & neg) | (PE__B_ONE & ~neg));
    return u * (1.0 + e) < num;
}

#endif /* PE_VECMATH_LIBM */

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

/* out[k] = softplus(x[k]). No restrict: out == x (in place) is allowed; GCC adds a
 * runtime overlap check, and in place takes the vector loop. */
PE_CLONES PE_UNUSED
static void pe_softplus_array(const double *x, double *out, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k)
        out[k] = pe_softplus(x[k]);
}

/* out[k] = sigmoid(x[k]). out == x is allowed, as above. */
PE_CLONES PE_UNUSED
static void pe_sigmoid_array(const double *x, double *out, long n)
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
