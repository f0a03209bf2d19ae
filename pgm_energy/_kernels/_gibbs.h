/*
 * _gibbs.h -- the vectorisable Gibbs update of one unit.
 *
 * Random numbers: one xoshiro256+ stream per chain (_random.h), state stored as four arrays
 * (structure of arrays) so a loop over chains vectorises.
 *
 * Update: a unit with local field f takes the "on" value low + scale (1 for binary, +1 for
 * spin) when u < sigmoid(scale * beta * f), else low (0 or -1).
 *
 * State: one byte per unit and chain (pe_state), the top byte of the unit's value as a double:
 * 0x3F for +1, 0xBF for -1, 0 for 0. A byte moves an eighth of the memory of a double: one
 * thread's share of 100 chains of 1e4 units (56 chains, 560 KB) fits its core's L2, so two
 * threads no longer compete for the shared cache. Widening a byte back is exact and
 * vectorises (zero-extend, shift): asdouble(byte << 56) = value * 2^-15. So the vector path
 * sums fields in units of 2^-15 and scales them back by 2^15; powers of two commute with
 * rounding, so the field has the bits of the plain double sum, except at the ends of the
 * double range: a term under 2^-1022 after scaling (a coupling under about 1e-303 in
 * magnitude) rounds differently, and a partial sum that overflows the plain sum (fields near
 * 1e308) stays finite here. Scalar code reads values from a table instead (pe__state_value).
 *
 * Held units (partial clamping that differs between chains): `keep`, NULL or bytes laid out as
 * the state, 0xFF where a chain holds the unit (0xFF at the first slot of a categorical unit),
 * else 0. A held unit is updated as usual, its uniform drawn, but keeps its value; so chains
 * draw the same numbers whatever they hold.
 */
#ifndef PGM_ENERGY_GIBBS_H
#define PGM_ENERGY_GIBBS_H

#include <stdlib.h>

#include "_random.h"   /* pe__uniform */
#include "_vecmath.h"

typedef uint8_t pe_state;

#define PE__STATE_UNIT 0x1p-15     /* the value of a state byte is asdouble(byte << 56) / this */
#define PE__STATE_ONE 0x3F         /* the state byte of +1 (and of a categorical slot that is on) */

/* value * 2^-15 for a state byte (exact). */
static inline double pe__state_scaled(pe_state b) { return pe__asdouble((uint64_t)b << 56); }

/* The value of a state byte, by table (in scalar code, cheaper than widening). */
static inline double pe__state_value(pe_state b)
{
    static const double value[256] = {[0x3F] = 1.0, [0xBF] = -1.0};
    return value[b];
}

/* The state byte of a value in {-1, 0, 1}: value and value * 2^-15 have the same top byte. */
static inline pe_state pe__state_byte(double value) { return (pe_state)(pe__asuint(value) >> 56); }

/* 1.0 if u < sigmoid(z) else 0.0, branch-free: the compare becomes a mask on the bits of 1.0
 * (as (double)(u < p), GCC would branch in scalar code, on a coin flip). */
static inline double pe__bernoulli(double u, double z)
{
    uint64_t on = (uint64_t)0 - (uint64_t)pe_below_sigmoid(u, z);
    return pe__asdouble(on & UINT64_C(0x3FF0000000000000));
}

/* The state byte after an update: the "on" value low + scale, which is +1 (byte 0x3F) for
 * both unit kinds, when on = 1.0 (pe__bernoulli), else off, the byte of low. The top byte of
 * 1.0 is 0x3F too, so this is integer work on the bits of `on`, without a branch. */
static inline pe_state pe__updated_byte(double on, pe_state off)
{
    uint64_t top = pe__asuint(on) >> 56;                /* 0x3F or 0 */
    return (pe_state)(top | (off & ~(0 - (top & 1))));
}

/* One unit over a run of n chains (lanes = chains, each with its own stream), n a multiple
 * of PE_LANES: the loops run over whole groups of PE_LANES chains, so they compile to full
 * vectors with no remainder (a single chain pays for one group, not for loop overhead).
 * The state is row-major (n_units, stride) bytes: unit k of chain c is state[k * stride + c].
 * First the local field f[c] = field + sum_q weight[q] s[neighbour[q], c], then
 * s[unit, c] = low + scale * [u_c < sigmoid(scale * beta[c] * f[c])] (s the values of the
 * state bytes, see the top). */
#define PE_LANES 8

/* The k-ary product factors of the flat graph (all may be empty): factor f has members
 * members[f * width + k] (-1 padded) and weight weight[f]; it adds
 * weight * prod_{other members} s to each member's local field. */
typedef struct {
    const int32_t *ids;      /* factor ids of the unit being updated */
    long count;
    const int32_t *members;  /* (n_factors, width) */
    long width;
    const double *weight;    /* (n_factors,) */
} pe_factors;

static inline void pe__gibbs_unit(pe_state *state, long stride, long unit,
                                  const int32_t *PE_RESTRICT neighbour,
                                  const double *PE_RESTRICT weight, long degree, double field,
                                  pe_factors factors,
                                  const double *PE_RESTRICT beta, double scale, double low,
                                  uint64_t *PE_RESTRICT s0, uint64_t *PE_RESTRICT s1,
                                  uint64_t *PE_RESTRICT s2, uint64_t *PE_RESTRICT s3, long n,
                                  const pe_state *PE_RESTRICT keep)
{
    pe_state *value = state + unit * stride;
    const pe_state *hold = keep ? keep + unit * stride : NULL;
    pe_state off = pe__state_byte(low);      /* the byte of the "off" value, for every group */
    for (long g = 0; g < n; g += PE_LANES) {
        double acc[PE_LANES];       /* the field in units of 2^-15 (see the top) */
        for (int c = 0; c < PE_LANES; ++c)
            acc[c] = field * PE__STATE_UNIT;
        for (long q = 0; q < degree; ++q) {
            const pe_state *x = state + neighbour[q] * stride + g;
            double w = weight[q];
            for (int c = 0; c < PE_LANES; ++c)
                acc[c] += w * pe__state_scaled(x[c]);
        }
        for (long q = 0; q < factors.count; ++q) {
            const int32_t *member = factors.members + factors.ids[q] * factors.width;
            double product[PE_LANES];
            for (int c = 0; c < PE_LANES; ++c)
                product[c] = factors.weight[factors.ids[q]];
            for (long k = 0; k < factors.width; ++k) {
                if (member[k] < 0 || member[k] == unit)
                    continue;
                const pe_state *x = state + member[k] * stride + g;
                for (int c = 0; c < PE_LANES; ++c)
                    product[c] *= pe__state_scaled(x[c]) / PE__STATE_UNIT;
            }
            for (int c = 0; c < PE_LANES; ++c)
                acc[c] += product[c] * PE__STATE_UNIT;
        }
        double on[PE_LANES];
        for (int c = 0; c < PE_LANES; ++c) {
            double u = pe__uniform(s0 + g + c, s1 + g + c, s2 + g + c, s3 + g + c);
            on[c] = pe__bernoulli(u, scale * beta[g + c] * (acc[c] / PE__STATE_UNIT));
        }
        if (hold)                               /* held lanes keep their byte */
            for (int c = 0; c < PE_LANES; ++c)
                value[g + c] = (pe_state)((pe__updated_byte(on[c], off) & ~hold[g + c])
                                          | (value[g + c] & hold[g + c]));
        else
            for (int c = 0; c < PE_LANES; ++c)  /* (a loop of its own, so both vectorise) */
                value[g + c] = pe__updated_byte(on[c], off);
    }
}

/* Inlined into its callers whatever the compiler's size estimate: a copy left out of line
 * would be compiled for the baseline target only, not for the caller's clone. */
#if defined(__GNUC__)
#  define PE__ALWAYS_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#  define PE__ALWAYS_INLINE static __forceinline
#else
#  define PE__ALWAYS_INLINE static inline
#endif

/* A categorical unit: the k slots first..first+k-1 hold the one-hot vector of its value.
 * Over a run of n chains in groups of `lanes` (PE_LANES on the vector path, 1 on the scalar
 * one; chain c of the run at state[... + c], its stream at s0[c]...): each slot's local field
 * f_v (couplings only; slots of one unit are never coupled), then value v with probability
 * softmax_v(beta f_v), drawn by one uniform u per chain: the first v with
 * sum_{w <= v} p_w > u sum_w p_w. The weights p_v = e^(beta f_v - max) come from
 * pe_exp_negabs, a polynomial, so every loop runs over the chains as vectors. */

PE__ALWAYS_INLINE void pe__gibbs_choice_lanes(pe_state *state, long stride, long first, long k,
                                              const int64_t *PE_RESTRICT indptr,
                                              const int32_t *PE_RESTRICT indices,
                                              const double *PE_RESTRICT weight,
                                              const double *PE_RESTRICT field,
                                              const double *PE_RESTRICT beta,
                                              uint64_t *PE_RESTRICT s0, uint64_t *PE_RESTRICT s1,
                                              uint64_t *PE_RESTRICT s2, uint64_t *PE_RESTRICT s3,
                                              long n, const long lanes,
                                              const pe_state *PE_RESTRICT keep)
{
    /* z[v * lanes + c]: on the stack up to 32 KiB, else on the heap (k <= 1024). */
    double buffer[4096], top[PE_LANES], total[PE_LANES], acc[PE_LANES], u[PE_LANES];
    int64_t pick[PE_LANES];
    double *z = k * lanes <= 4096 ? buffer : (double *)malloc(k * lanes * sizeof(double));
    if (z == NULL)
        return;                 /* out of memory: the unit keeps its value */
    for (long g = 0; g < n; g += lanes) {
        for (long c = 0; c < lanes; ++c)
            top[c] = -HUGE_VAL;
        for (long v = 0; v < k; ++v) {
            long i = first + v;
            double *zv = z + v * lanes;
            for (long c = 0; c < lanes; ++c)
                acc[c] = field[i] * PE__STATE_UNIT;
            for (int64_t q = indptr[i]; q < indptr[i + 1]; ++q) {
                const pe_state *x = state + indices[q] * stride + g;
                double w = weight[q];
                for (long c = 0; c < lanes; ++c)
                    acc[c] += w * pe__state_scaled(x[c]);
            }
            for (long c = 0; c < lanes; ++c) {
                zv[c] = beta[g + c] * (acc[c] / PE__STATE_UNIT);
                top[c] = zv[c] > top[c] ? zv[c] : top[c];
            }
        }
        /* p_v = e^(z_v - top) (<= 1, exponent <= 0), total = sum_v p_v */
        for (long c = 0; c < lanes; ++c)
            total[c] = 0.0;
        for (long v = 0; v < k; ++v)
            for (long c = 0; c < lanes; ++c) {
                z[v * lanes + c] = pe_exp_negabs(z[v * lanes + c] - top[c]);
                total[c] += z[v * lanes + c];
            }
        /* the value: the number of v whose cumulative weight is <= u total (at most k - 1),
         * i.e. the first v whose cumulative weight exceeds it */
        for (long c = 0; c < lanes; ++c) {
            u[c] = pe__uniform(s0 + g + c, s1 + g + c, s2 + g + c, s3 + g + c) * total[c];
            acc[c] = 0.0;
            pick[c] = 0;
        }
        for (long v = 0; v < k; ++v)
            for (long c = 0; c < lanes; ++c) {
                acc[c] += z[v * lanes + c];
                pick[c] += acc[c] <= u[c];
            }
        for (long v = 0; v < k; ++v)
            for (long c = 0; c < lanes; ++c)
                if (!keep || !keep[first * stride + g + c])
                    state[(first + v) * stride + g + c] =
                        (v == pick[c] || (v == k - 1 && pick[c] >= k)) ? PE__STATE_ONE : 0;
    }
    if (z != buffer)
        free(z);
}

/* (Out of line, target-cloned: the binary/spin loops that call it stay small, and its loops
 * over chains still vectorise for the CPU; a copy for each `lanes`, PE_LANES or 1, so that
 * they have constant trip counts.) */
PE_CLONES
static void pe__gibbs_choice(pe_state *state, long stride, long first, long k,
                             const int64_t *indptr, const int32_t *indices, const double *weight,
                             const double *field, const double *beta, uint64_t *s0,
                             uint64_t *s1, uint64_t *s2, uint64_t *s3, long n, long lanes,
                             const pe_state *keep)
{
    if (lanes == 1)
        pe__gibbs_choice_lanes(state, stride, first, k, indptr, indices, weight, field, beta,
                               s0, s1, s2, s3, n, 1, keep);
    else
        pe__gibbs_choice_lanes(state, stride, first, k, indptr, indices, weight, field, beta,
                               s0, s1, s2, s3, n, PE_LANES, keep);
}

/* The same update for one chain with stride-`stride` state (unit k at state[k * stride]) and
 * its stream in s0..s3: the path for fewer chains than PE_LANES, where a vector group would
 * mostly compute padding. Same arithmetic in the same order as pe__gibbs_unit, so a chain's
 * values do not depend on the path. */
static inline void pe__gibbs_unit_scalar(pe_state *state, long stride, long unit,
                                         const int32_t *PE_RESTRICT neighbour,
                                         const double *PE_RESTRICT weight, long degree,
                                         double field, pe_factors factors, double beta,
                                         double scale, double low, uint64_t *s0, uint64_t *s1,
                                         uint64_t *s2, uint64_t *s3, const pe_state *keep)
{
    double acc = field;
    for (long q = 0; q < degree; ++q)
        acc += weight[q] * pe__state_value(state[neighbour[q] * stride]);
    for (long q = 0; q < factors.count; ++q) {
        const int32_t *member = factors.members + factors.ids[q] * factors.width;
        double product = factors.weight[factors.ids[q]];
        for (long k = 0; k < factors.width; ++k) {
            if (member[k] < 0 || member[k] == unit)
                continue;
            product *= pe__state_value(state[member[k] * stride]);
        }
        acc += product;
    }
    double u = pe__uniform(s0, s1, s2, s3);
    if (!keep || !keep[unit * stride])
        state[unit * stride] = pe__updated_byte(pe__bernoulli(u, scale * beta * acc),
                                                pe__state_byte(low));
}

/* n_sweeps sweeps of one chain (see pe__gibbs_unit_scalar), its stream held in registers.
 * A NULL factor_weight means no product factors. */
static inline void pe__gibbs_sweeps_scalar(pe_state *state, long stride, const int32_t *order,
                                           long n_order, const int32_t *size,
                                           const int64_t *indptr,
                                           const int32_t *indices, const double *weight,
                                           const double *field, const int64_t *factor_ptr,
                                           const int32_t *factor_ids,
                                           const int32_t *factor_members, long factor_width,
                                           const double *factor_weight, const double *scale,
                                           const double *low, double beta, uint64_t *s0,
                                           uint64_t *s1, uint64_t *s2, uint64_t *s3,
                                           long n_sweeps, const pe_state *keep)
{
    uint64_t t0 = *s0, t1 = *s1, t2 = *s2, t3 = *s3;
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        for (long t = 0; t < n_order; ++t) {
            long i = order[t];
            if (i < 0) {
                pe__gibbs_choice(state, stride, -i - 1, size[-i - 1], indptr, indices, weight,
                                 field, &beta, &t0, &t1, &t2, &t3, 1, 1, keep);
                continue;
            }
            pe_factors factors = {NULL, 0, NULL, 0, NULL};
            if (factor_weight)
                factors = (pe_factors){factor_ids + factor_ptr[i],
                                       factor_ptr[i + 1] - factor_ptr[i], factor_members,
                                       factor_width, factor_weight};
            pe__gibbs_unit_scalar(state, stride, i, indices + indptr[i], weight + indptr[i],
                                  indptr[i + 1] - indptr[i], field[i], factors, beta,
                                  scale[i], low[i], &t0, &t1, &t2, &t3, keep);
        }
    }
    *s0 = t0;
    *s1 = t1;
    *s2 = t2;
    *s3 = t3;
}

/* The vector path of pe_gibbs_sweeps (n a multiple of PE_LANES), inlined into it twice:
 * with the held lanes' mask and with a constant NULL. */
PE__ALWAYS_INLINE void pe__gibbs_sweeps_lanes(pe_state *state, long stride,
                                              const int32_t *order, long n_order,
                                              const int32_t *size, const int64_t *indptr,
                                              const int32_t *indices, const double *weight,
                                              const double *field, const int64_t *factor_ptr,
                                              const int32_t *factor_ids,
                                              const int32_t *factor_members, long factor_width,
                                              const double *factor_weight, const double *scale,
                                              const double *low, const double *beta,
                                              uint64_t *s0, uint64_t *s1, uint64_t *s2,
                                              uint64_t *s3, long n, long n_sweeps,
                                              const pe_state *keep)
{
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        for (long t = 0; t < n_order; ++t) {
            long i = order[t];
            if (i < 0) {
                pe__gibbs_choice(state, stride, -i - 1, size[-i - 1], indptr, indices, weight,
                                 field, beta, s0, s1, s2, s3, n, PE_LANES, keep);
                continue;
            }
            pe_factors factors = {factor_ids + factor_ptr[i], factor_ptr[i + 1] - factor_ptr[i],
                                  factor_members, factor_width, factor_weight};
            pe__gibbs_unit(state, stride, i, indices + indptr[i], weight + indptr[i],
                           indptr[i + 1] - indptr[i], field[i], factors, beta, scale[i],
                           low[i], s0, s1, s2, s3, n, keep);
        }
    }
}

/* n_sweeps sweeps over the units in order[] for a block of n chains (n a multiple of
 * PE_LANES; see pe__gibbs_unit; fewer chains run one by one, pe__gibbs_sweeps_scalar); the
 * whole loop is one call. An entry -(i + 1) of order[] is the categorical unit whose size[i]
 * slots start at i (pe__gibbs_choice); binary and spin units never read size[]. */
PE_CLONES PE_UNUSED
static void pe_gibbs_sweeps(pe_state *state, long stride, const int32_t *order, long n_order,
                            const int32_t *size, const int64_t *indptr, const int32_t *indices,
                            const double *weight, const double *field,
                            const int64_t *factor_ptr, const int32_t *factor_ids,
                            const int32_t *factor_members, long factor_width,
                            const double *factor_weight, const double *scale,
                            const double *low, const double *beta, uint64_t *s0,
                            uint64_t *s1, uint64_t *s2, uint64_t *s3, long n, long n_sweeps,
                            const pe_state *keep)
{
    if (n % PE_LANES) {
        /* Fewer chains than a vector group: chain by chain, each its whole run (chains do not
         * interact, so this gives every chain the same values as the vector path). */
        for (long c = 0; c < n; ++c) {
            if (n == 1 && !factor_weight && !keep)
                /* the common case, a copy of the loop compiled for it: unit stride, and the
                 * constant NULL folds the product factors' code away (about 5% faster) */
                pe__gibbs_sweeps_scalar(state, 1, order, n_order, size, indptr, indices, weight,
                                        field, factor_ptr, factor_ids, factor_members,
                                        factor_width, NULL, scale, low, beta[0], s0,
                                        s1, s2, s3, n_sweeps, NULL);
            else
                pe__gibbs_sweeps_scalar(state + c, n, order, n_order, size, indptr, indices, weight,
                                        field, factor_ptr, factor_ids, factor_members,
                                        factor_width, factor_weight, scale, low, beta[c],
                                        s0 + c, s1 + c, s2 + c, s3 + c, n_sweeps,
                                        keep ? keep + c : NULL);
        }
        return;
    }
    if (keep)
        pe__gibbs_sweeps_lanes(state, stride, order, n_order, size, indptr, indices, weight,
                               field, factor_ptr, factor_ids, factor_members, factor_width,
                               factor_weight, scale, low, beta, s0, s1, s2, s3, n, n_sweeps,
                               keep);
    else        /* a copy without the held lanes' code: the common path runs as before */
        pe__gibbs_sweeps_lanes(state, stride, order, n_order, size, indptr, indices, weight,
                               field, factor_ptr, factor_ids, factor_members, factor_width,
                               factor_weight, scale, low, beta, s0, s1, s2, s3, n, n_sweeps,
                               NULL);
}

/* A layer of n units for a block of chains, lanes = chains (loops over groups of PE_LANES
 * chains, each chain with its own stream; per chain, one uniform per free unit, in unit order).
 * prob (n, ld) holds the fields, row k for unit k, chain c in column c (ld >= n_chains rounded
 * up to PE_LANES: the padding columns, beta and streams lanes are scratch); it becomes
 * P(unit on) = sigmoid(scale[k] beta[c] field). The values go to the chains' rows:
 * value[c * value_stride + k] = low[k] + scale[k] [u < P], free units only, and not where
 * keep (NULL, or bytes (n, keep_ld), row k for unit k, chain c in column c, as prob) is set:
 * a held unit draws its uniform and keeps its value.
 * A group's streams stay in registers for the whole layer. */
PE_CLONES PE_UNUSED
static void pe_gibbs_layer_chains(double *PE_RESTRICT value, long value_stride,
                                  double *PE_RESTRICT prob, long ld,
                                  const double *PE_RESTRICT scale,
                                  const double *PE_RESTRICT low,
                                  const unsigned char *PE_RESTRICT free,
                                  const double *PE_RESTRICT beta, uint64_t *PE_RESTRICT s0,
                                  uint64_t *PE_RESTRICT s1, uint64_t *PE_RESTRICT s2,
                                  uint64_t *PE_RESTRICT s3, long n_chains, long n,
                                  const unsigned char *PE_RESTRICT keep, long keep_ld)
{
    for (long g = 0; g < n_chains; g += PE_LANES) {
        uint64_t t0[PE_LANES], t1[PE_LANES], t2[PE_LANES], t3[PE_LANES];
        double b[PE_LANES];
        for (int c = 0; c < PE_LANES; ++c) {
            t0[c] = s0[g + c];
            t1[c] = s1[g + c];
            t2[c] = s2[g + c];
            t3[c] = s3[g + c];
            b[c] = beta[g + c];
        }
        long m = n_chains - g < PE_LANES ? n_chains - g : PE_LANES;
        double *row = value + g * value_stride;
        for (long k = 0; k < n; ++k) {
            double *f = prob + k * ld + g;
            if (!free[k]) {
                for (int c = 0; c < PE_LANES; ++c)
                    f[c] = pe_sigmoid(scale[k] * b[c] * f[c]);
                continue;
            }
            double v[PE_LANES];
            for (int c = 0; c < PE_LANES; ++c) {
                double p = pe_sigmoid(scale[k] * b[c] * f[c]);
                double u = pe__uniform(t0 + c, t1 + c, t2 + c, t3 + c);
                f[c] = p;
                v[c] = low[k] + scale[k] * (double)(u < p);
            }
            if (keep) {
                /* branch-free: which chains hold a unit is as random as the masks */
                const unsigned char *hold = keep + k * keep_ld + g;
                for (long c = 0; c < m; ++c) {
                    double *x = row + c * value_stride + k;
                    uint64_t held = (uint64_t)0 - (uint64_t)(hold[c] != 0);
                    *x = pe__asdouble((pe__asuint(*x) & held) | (pe__asuint(v[c]) & ~held));
                }
            } else {
                for (long c = 0; c < m; ++c)
                    row[c * value_stride + k] = v[c];
            }
        }
        for (int c = 0; c < PE_LANES; ++c) {
            s0[g + c] = t0[c];
            s1[g + c] = t1[c];
            s2[g + c] = t2[c];
            s3[g + c] = t3[c];
        }
    }
}

#endif /* PGM_ENERGY_GIBBS_H */
