/*
 * _gibbs.h -- the vectorisable Gibbs update of one unit.
 *
 * Random numbers: one xoshiro256+ stream per chain (_random.h), state stored as four arrays
 * (structure of arrays) so a loop over chains vectorises.
 *
 * Update: a unit with local field f takes the "on" value low + scale (1 for binary, +1 for
 * spin) when u < sigmoid(scale * beta * f), else low (0 or -1). A continuous unit (Gaussian,
 * ReLU, DReLU; _random.h's pe__continuous_draw) takes the inverse CDF of its conditional at
 * its uniform.
 *
 * State: for discrete models, one byte per unit and chain (pe_state), the top byte of the
 * unit's value as a double:
 * 0x3F for +1, 0xBF for -1, 0 for 0. A byte moves an eighth of the memory of a double: one
 * thread's share of 100 chains of 1e4 units (56 chains, 560 KB) fits its core's L2, so two
 * threads no longer compete for the shared cache. Widening a byte back is exact and
 * vectorises (zero-extend, shift): asdouble(byte << 56) = value * 2^-15. So the vector path
 * sums fields in units of 2^-15 and scales them back by 2^15; powers of two commute with
 * rounding, so the field has the bits of the plain double sum, except at the ends of the
 * double range: a term under 2^-1022 after scaling (a coupling under about 1e-303 in
 * magnitude) rounds differently, and a partial sum that overflows the plain sum (fields near
 * 1e308) stays finite here. Scalar code reads values from a table instead (pe__state_value).
 * Models with continuous units keep one double per unit and chain instead (the same sweep,
 * _gibbs_sweep.h, instantiated for both states: pe_gibbs_sweeps_bytes and _real).
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


/* The kinds, parameters and special functions of the slots, for models with continuous units
 * (the real-valued state): kind[i] is PE_TWO_VALUED for binary, spin and categorical slots,
 * param[4 i ...] the unit's parameters (see pe__continuous_draw). */
typedef struct {
    const uint8_t *kind;
    const double *param;
    pe_special special;
} pe_continuous;

/* The sweep for the byte state (discrete models) ... */
#define PE__T pe_state
#define PE__NAME(name) name##_bytes
#define PE__REAL 0
#define PE__SCALED(x) pe__state_scaled(x)
#define PE__VALUE(x) pe__state_value(x)
#define PE__TWO(on, low, scale) pe__updated_byte(on, pe__state_byte(low))
#define PE__HOLD(new, old, hold) ((pe_state)(((new) & ~(hold)) | ((old) & (hold))))
#define PE__ONE PE__STATE_ONE
#include "_gibbs_sweep.h"      /* (it #undefs its parameters) */

/* ... and for the real-valued state (models with continuous units): the same arithmetic on
 * the values themselves (times 2^-15 where the byte path scales, which is exact). */
#define PE__T double
#define PE__NAME(name) name##_real
#define PE__REAL 1
#define PE__SCALED(x) ((x) * PE__STATE_UNIT)
#define PE__VALUE(x) (x)
#define PE__TWO(on, low, scale) ((low) + (scale) * (on))
#define PE__HOLD(new, old, hold) ((hold) ? (old) : (new))
#define PE__ONE 1.0
#include "_gibbs_sweep.h"      /* (it #undefs its parameters) */

/* A unit's values v (PE_LANES lanes) into the rows of m <= PE_LANES chains: row[c * stride + k]
 * = v[c], except where hold (NULL, or the unit's keep bytes, lane c at hold[c]) is set. */
static inline void pe__store_unit(double *PE_RESTRICT row, long stride, long k,
                                  const double *PE_RESTRICT v, long m,
                                  const unsigned char *PE_RESTRICT hold)
{
    if (hold) {
        /* branch-free: which chains hold a unit is as random as the masks */
        for (long c = 0; c < m; ++c) {
            double *x = row + c * stride + k;
            uint64_t held = (uint64_t)0 - (uint64_t)(hold[c] != 0);
            *x = pe__asdouble((pe__asuint(*x) & held) | (pe__asuint(v[c]) & ~held));
        }
    } else {
        for (long c = 0; c < m; ++c)
            row[c * stride + k] = v[c];
    }
}

/* The Gaussian units of one group of chains, drawn in two passes (pe_gibbs_layer_chains).
 * The tails of the normal quantile (a log, a square root and a rational function) cost more
 * than everything else of a draw; a group of 8 lanes has a tail lane for 73% of units, but
 * only 15% of lanes are tails. So each unit's uniforms are drawn and its central quantiles
 * computed at its turn, its tail lanes' uniforms set aside; every PE__GAUSSIAN_BATCH units
 * (and at the end of the group), pe__gaussian_batch_finish computes the tails set aside, 8 at
 * a time in full vectors, and stores the units' values. The values are those of
 * pe__gaussian_draws. */
#define PE__GAUSSIAN_BATCH 64
typedef struct {
    long unit[PE__GAUSSIAN_BATCH];                     /* the units, in draw order */
    double z[PE__GAUSSIAN_BATCH * PE_LANES];           /* Phi^-1 of each unit's lanes */
    double tail_u[PE__GAUSSIAN_BATCH * PE_LANES + PE_LANES];    /* the tails' uniforms */
    int32_t tail_at[PE__GAUSSIAN_BATCH * PE_LANES + PE_LANES];  /* ... and their slot of z */
    long n_units, n_tails;
} pe__gaussian_batch;

/* Unit k's open uniforms u (8 lanes) into the batch: its central quantiles now, the lanes in a
 * tail set aside (appended without a branch: every lane is written, the count moves by 0/1). */
PE__ALWAYS_INLINE void pe__gaussian_batch_add(pe__gaussian_batch *PE_RESTRICT batch, long k,
                                              const double *PE_RESTRICT u)
{
    double *z = batch->z + batch->n_units * PE_LANES;
    uint64_t tail[PE_LANES];
    PE_SIMD
    for (int c = 0; c < PE_LANES; ++c) {
        z[c] = pe__normal_quantile_central(u[c]);
        tail[c] = pe__normal_in_tail(u[c]);
    }
    long n = batch->n_tails;
    int32_t at = (int32_t)(batch->n_units * PE_LANES);
    for (int c = 0; c < PE_LANES; ++c) {
        batch->tail_u[n] = u[c];
        batch->tail_at[n] = at + c;
        n += (long)tail[c];
    }
    batch->n_tails = n;
    batch->unit[batch->n_units++] = k;
}

/* The tails set aside, then x = sigma^2 f + sigma noise z for every unit of the batch (f its
 * row of prob, sigma its parameter) into the chains' rows (pe__store_unit); empties it. */
PE__ALWAYS_INLINE void pe__gaussian_batch_finish(pe__gaussian_batch *PE_RESTRICT batch,
                                                 double *PE_RESTRICT row, long value_stride,
                                                 const double *PE_RESTRICT prob, long ld,
                                                 const double *PE_RESTRICT noise,
                                                 const double *PE_RESTRICT param, long m,
                                                 const unsigned char *PE_RESTRICT keep,
                                                 long keep_ld)
{
    long n = batch->n_tails;
    for (long j = n; j < n + PE_LANES; ++j)
        batch->tail_u[j] = 0.25;               /* padding: a tail uniform, its value unused */
    for (long j = 0; j < n; j += PE_LANES) {
        double t[PE_LANES];
        pe__normal_tail_quantiles(batch->tail_u + j, t);
        for (long c = 0; c < PE_LANES && j + c < n; ++c)
            batch->z[batch->tail_at[j + c]] = t[c];
    }
    for (long i = 0; i < batch->n_units; ++i) {
        long k = batch->unit[i];
        const double *f = prob + k * ld, *z = batch->z + i * PE_LANES;
        double sigma = param[4 * k], v[PE_LANES];
        PE_SIMD
        for (int c = 0; c < PE_LANES; ++c)
            v[c] = sigma * sigma * f[c] + sigma * noise[c] * z[c];
        pe__store_unit(row, value_stride, k, v, m, keep ? keep + k * keep_ld : NULL);
    }
    batch->n_units = batch->n_tails = 0;
}

/* A layer of n units for a block of chains, lanes = chains (loops over groups of PE_LANES
 * chains, each chain with its own stream; per chain, one uniform per free unit, in unit order).
 * prob (n, ld) holds the fields, row k for unit k, chain c in column c (ld >= n_chains rounded
 * up to PE_LANES: the padding columns, beta and streams lanes are scratch); it becomes
 * P(unit on) = sigmoid(scale[k] beta[c] field). The values go to the chains' rows:
 * value[c * value_stride + k] = low[k] + scale[k] [u < P], free units only, and not where
 * keep (NULL, or bytes (n, keep_ld), row k for unit k, chain c in column c, as prob) is set:
 * a held unit draws its uniform and keeps its value. With `cont` (NULL, or the layer's units'
 * kinds and parameters, unit k at kind[k]), a continuous unit takes its inverse-CDF draw
 * (pe__continuous_draw; Gaussian units in batches, pe__gaussian_batch) and its row of prob
 * keeps the fields. A group's streams stay in registers for the whole layer. */
PE_CLONES PE_UNUSED
static void pe_gibbs_layer_chains(double *PE_RESTRICT value, long value_stride,
                                  double *PE_RESTRICT prob, long ld,
                                  const double *PE_RESTRICT scale,
                                  const double *PE_RESTRICT low,
                                  const unsigned char *PE_RESTRICT free,
                                  const double *PE_RESTRICT beta, uint64_t *PE_RESTRICT s0,
                                  uint64_t *PE_RESTRICT s1, uint64_t *PE_RESTRICT s2,
                                  uint64_t *PE_RESTRICT s3, long n_chains, long n,
                                  const unsigned char *PE_RESTRICT keep, long keep_ld,
                                  const pe_continuous *PE_RESTRICT cont)
{
    pe__gaussian_batch batch;
    batch.n_units = batch.n_tails = 0;
    for (long g = 0; g < n_chains; g += PE_LANES) {
        uint64_t t0[PE_LANES], t1[PE_LANES], t2[PE_LANES], t3[PE_LANES];
        double b[PE_LANES], noise[PE_LANES];
        for (int c = 0; c < PE_LANES; ++c) {
            t0[c] = s0[g + c];
            t1[c] = s1[g + c];
            t2[c] = s2[g + c];
            t3[c] = s3[g + c];
            b[c] = beta[g + c];
        }
        pe__noise_scales(noise, b);
        long m = n_chains - g < PE_LANES ? n_chains - g : PE_LANES;
        double *row = value + g * value_stride;
        const unsigned char *hold = keep ? keep + g : NULL;
        for (long k = 0; k < n; ++k) {
            double *f = prob + k * ld + g;
            int kind = cont ? cont->kind[k] : PE_TWO_VALUED;
            double v[PE_LANES];
            if (kind == PE_GAUSSIAN) {
                /* the Gaussian-Bernoulli RBM's visible layer, in vector loops */
                if (!free[k])
                    continue;
                double u[PE_LANES];
                PE_SIMD
                for (int c = 0; c < PE_LANES; ++c)
                    u[c] = pe__open_uniform(pe__uniform(t0 + c, t1 + c, t2 + c, t3 + c));
                pe__gaussian_batch_add(&batch, k, u);
                if (batch.n_units == PE__GAUSSIAN_BATCH)
                    pe__gaussian_batch_finish(&batch, row, value_stride, prob + g, ld, noise,
                                              cont->param, m, hold, keep_ld);
                continue;
            } else if (kind != PE_TWO_VALUED) {
                if (!free[k])
                    continue;
                for (int c = 0; c < PE_LANES; ++c) {
                    double u = pe__uniform(t0 + c, t1 + c, t2 + c, t3 + c);
                    v[c] = pe__continuous_draw(kind, cont->param + 4 * k, f[c], b[c], u,
                                               &cont->special);
                }
            } else {
                if (!free[k]) {
                    for (int c = 0; c < PE_LANES; ++c)
                        f[c] = pe_sigmoid(scale[k] * b[c] * f[c]);
                    continue;
                }
                for (int c = 0; c < PE_LANES; ++c) {
                    double p = pe_sigmoid(scale[k] * b[c] * f[c]);
                    double u = pe__uniform(t0 + c, t1 + c, t2 + c, t3 + c);
                    f[c] = p;
                    v[c] = low[k] + scale[k] * (double)(u < p);
                }
            }
            pe__store_unit(row, value_stride, k, v, m, hold ? hold + k * keep_ld : NULL);
        }
        if (batch.n_units)
            pe__gaussian_batch_finish(&batch, row, value_stride, prob + g, ld, noise,
                                      cont->param, m, hold, keep_ld);
        for (int c = 0; c < PE_LANES; ++c) {
            s0[g + c] = t0[c];
            s1[g + c] = t1[c];
            s2[g + c] = t2[c];
            s3[g + c] = t3[c];
        }
    }
}

#endif /* PGM_ENERGY_GIBBS_H */
