/*
 * _gibbs_sweep.h -- the sparse Gibbs sweep over one chain block, written once for both
 * states: included twice by _gibbs.h, with PE__T = pe_state (one byte per unit and chain,
 * discrete models) and with PE__T = double (models with continuous units), each under its own
 * names (PE__NAME). The macros it uses (set by _gibbs.h):
 *   PE__T              the state's element type
 *   PE__NAME(name)     the function names of this state
 *   PE__REAL           1 for the double state (continuous units possible), else 0
 *   PE__SCALED(x)      a state value times 2^-15 (exact)
 *   PE__VALUE(x)       a state value
 *   PE__TWO(on, low, scale)    the state value low + scale * on, on in {0.0, 1.0}
 *   PE__HOLD(new, old, hold)   old where the keep byte hold is set, else new
 *   PE__ONE            the state value of a categorical slot that is on
 * No include guard: it is meant to be included more than once.
 */

/* One unit over a run of n chains (lanes = chains, each with its own stream), n a multiple
 * of PE_LANES: the loops run over whole groups of PE_LANES chains, so they compile to full
 * vectors with no remainder (a single chain pays for one group, not for loop overhead).
 * The state is row-major (n_units, stride) PE__T: unit k of chain c is state[k * stride + c].
 * First the local field f[c] = field + sum_q weight[q] s[neighbour[q], c], then
 * s[unit, c] = low + scale * [u_c < sigmoid(scale * beta[c] * f[c])] (s the values of the
 * state, see the top), or, for a continuous unit (`cont` not NULL and its kind not
 * PE_TWO_VALUED; the real-valued state only), its inverse-CDF draw (pe__continuous_draw). */
static inline void PE__NAME(pe__gibbs_unit)(PE__T *state, long stride, long unit,
                                  const int32_t *PE_RESTRICT neighbour,
                                  const double *PE_RESTRICT weight, long degree, double field,
                                  pe_factors factors,
                                  const double *PE_RESTRICT beta, double scale, double low,
                                  uint64_t *PE_RESTRICT s0, uint64_t *PE_RESTRICT s1,
                                  uint64_t *PE_RESTRICT s2, uint64_t *PE_RESTRICT s3, long n,
                                  const pe_state *PE_RESTRICT keep,
                                  const pe_continuous *PE_RESTRICT cont)
{
    PE__T *value = state + unit * stride;
    const pe_state *hold = keep ? keep + unit * stride : NULL;
    int kind = PE__REAL && cont ? cont->kind[unit] : PE_TWO_VALUED;
    for (long g = 0; g < n; g += PE_LANES) {
        double acc[PE_LANES];       /* the field in units of 2^-15 (see the top) */
        for (int c = 0; c < PE_LANES; ++c)
            acc[c] = field * PE__STATE_UNIT;
        for (long q = 0; q < degree; ++q) {
            const PE__T *x = state + neighbour[q] * stride + g;
            double w = weight[q];
            for (int c = 0; c < PE_LANES; ++c)
                acc[c] += w * PE__SCALED(x[c]);
        }
        for (long q = 0; q < factors.count; ++q) {
            const int32_t *member = factors.members + factors.ids[q] * factors.width;
            double product[PE_LANES];
            for (int c = 0; c < PE_LANES; ++c)
                product[c] = factors.weight[factors.ids[q]];
            for (long k = 0; k < factors.width; ++k) {
                if (member[k] < 0 || member[k] == unit)
                    continue;
                const PE__T *x = state + member[k] * stride + g;
                for (int c = 0; c < PE_LANES; ++c)
                    product[c] *= PE__SCALED(x[c]) / PE__STATE_UNIT;
            }
            for (int c = 0; c < PE_LANES; ++c)
                acc[c] += product[c] * PE__STATE_UNIT;
        }
        if (kind == PE_GAUSSIAN) {           /* (real state only) in vector loops */
            double u[PE_LANES], f[PE_LANES], x[PE_LANES], noise[PE_LANES];
            pe__noise_scales(noise, beta + g);
            for (int c = 0; c < PE_LANES; ++c) {
                u[c] = pe__uniform(s0 + g + c, s1 + g + c, s2 + g + c, s3 + g + c);
                f[c] = acc[c] / PE__STATE_UNIT;
            }
            pe__gaussian_draws(x, u, f, noise, cont->param[4 * unit]);
            for (int c = 0; c < PE_LANES; ++c)
                if (!hold || !hold[g + c])
                    value[g + c] = (PE__T)x[c];
            continue;
        }
        if (kind != PE_TWO_VALUED) {         /* ReLU, DReLU (real state only) */
            for (int c = 0; c < PE_LANES; ++c) {
                double u = pe__uniform(s0 + g + c, s1 + g + c, s2 + g + c, s3 + g + c);
                double x = pe__continuous_draw(kind, cont->param + 4 * unit,
                                               acc[c] / PE__STATE_UNIT, beta[g + c], u,
                                               &cont->special);
                if (!hold || !hold[g + c])
                    value[g + c] = (PE__T)x;
            }
            continue;
        }
        double on[PE_LANES];
        for (int c = 0; c < PE_LANES; ++c) {
            double u = pe__uniform(s0 + g + c, s1 + g + c, s2 + g + c, s3 + g + c);
            on[c] = pe__bernoulli(u, scale * beta[g + c] * (acc[c] / PE__STATE_UNIT));
        }
        if (hold)                               /* held lanes keep their value */
            for (int c = 0; c < PE_LANES; ++c)
                value[g + c] = PE__HOLD(PE__TWO(on[c], low, scale), value[g + c], hold[g + c]);
        else
            for (int c = 0; c < PE_LANES; ++c)  /* (a loop of its own, so both vectorise) */
                value[g + c] = PE__TWO(on[c], low, scale);
    }
}

/* A categorical unit: the k slots first..first+k-1 hold the one-hot vector of its value.
 * Over a run of n chains in groups of `lanes` (PE_LANES on the vector path, 1 on the scalar
 * one; chain c of the run at state[... + c], its stream at s0[c]...): each slot's local field
 * f_v (couplings only; slots of one unit are never coupled), then value v with probability
 * softmax_v(beta f_v), drawn by one uniform u per chain: the first v with
 * sum_{w <= v} p_w > u sum_w p_w. The weights p_v = e^(beta f_v - max) come from
 * pe_exp_negabs, a polynomial, so every loop runs over the chains as vectors. */

PE__ALWAYS_INLINE void PE__NAME(pe__gibbs_choice_lanes)(PE__T *state, long stride, long first, long k,
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
                const PE__T *x = state + indices[q] * stride + g;
                double w = weight[q];
                for (long c = 0; c < lanes; ++c)
                    acc[c] += w * PE__SCALED(x[c]);
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
                        (v == pick[c] || (v == k - 1 && pick[c] >= k)) ? PE__ONE : 0;
    }
    if (z != buffer)
        free(z);
}

/* (Out of line, target-cloned: the binary/spin loops that call it stay small, and its loops
 * over chains still vectorise for the CPU; a copy for each `lanes`, PE_LANES or 1, so that
 * they have constant trip counts.) */
PE_CLONES
static void PE__NAME(pe__gibbs_choice)(PE__T *state, long stride, long first, long k,
                             const int64_t *indptr, const int32_t *indices, const double *weight,
                             const double *field, const double *beta, uint64_t *s0,
                             uint64_t *s1, uint64_t *s2, uint64_t *s3, long n, long lanes,
                             const pe_state *keep)
{
    if (lanes == 1)
        PE__NAME(pe__gibbs_choice_lanes)(state, stride, first, k, indptr, indices, weight, field, beta,
                               s0, s1, s2, s3, n, 1, keep);
    else
        PE__NAME(pe__gibbs_choice_lanes)(state, stride, first, k, indptr, indices, weight, field, beta,
                               s0, s1, s2, s3, n, PE_LANES, keep);
}

/* The same update for one chain with stride-`stride` state (unit k at state[k * stride]) and
 * its stream in s0..s3: the path for fewer chains than PE_LANES, where a vector group would
 * mostly compute padding. Same arithmetic in the same order as pe__gibbs_unit, so a chain's
 * values do not depend on the path. */
static inline void PE__NAME(pe__gibbs_unit_scalar)(PE__T *state, long stride, long unit,
                                         const int32_t *PE_RESTRICT neighbour,
                                         const double *PE_RESTRICT weight, long degree,
                                         double field, pe_factors factors, double beta,
                                         double scale, double low, uint64_t *s0, uint64_t *s1,
                                         uint64_t *s2, uint64_t *s3, const pe_state *keep,
                                         const pe_continuous *cont)
{
    double acc = field;
    for (long q = 0; q < degree; ++q)
        acc += weight[q] * PE__VALUE(state[neighbour[q] * stride]);
    for (long q = 0; q < factors.count; ++q) {
        const int32_t *member = factors.members + factors.ids[q] * factors.width;
        double product = factors.weight[factors.ids[q]];
        for (long k = 0; k < factors.width; ++k) {
            if (member[k] < 0 || member[k] == unit)
                continue;
            product *= PE__VALUE(state[member[k] * stride]);
        }
        acc += product;
    }
    double u = pe__uniform(s0, s1, s2, s3);
    int kind = PE__REAL && cont ? cont->kind[unit] : PE_TWO_VALUED;
    double x = kind != PE_TWO_VALUED
        ? pe__continuous_draw(kind, cont->param + 4 * unit, acc, beta, u, &cont->special)
        : 0.0;
    if (!keep || !keep[unit * stride])
        state[unit * stride] = kind != PE_TWO_VALUED
            ? (PE__T)x : PE__TWO(pe__bernoulli(u, scale * beta * acc), low, scale);
}

/* n_sweeps sweeps of one chain (see pe__gibbs_unit_scalar), its stream held in registers.
 * A NULL factor_weight means no product factors. */
static inline void PE__NAME(pe__gibbs_sweeps_scalar)(PE__T *state, long stride, const int32_t *order,
                                           long n_order, const int32_t *size,
                                           const int64_t *indptr,
                                           const int32_t *indices, const double *weight,
                                           const double *field, const int64_t *factor_ptr,
                                           const int32_t *factor_ids,
                                           const int32_t *factor_members, long factor_width,
                                           const double *factor_weight, const double *scale,
                                           const double *low, double beta, uint64_t *s0,
                                           uint64_t *s1, uint64_t *s2, uint64_t *s3,
                                           long n_sweeps, const pe_state *keep,
                                           const pe_continuous *cont)
{
    uint64_t t0 = *s0, t1 = *s1, t2 = *s2, t3 = *s3;
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        for (long t = 0; t < n_order; ++t) {
            long i = order[t];
            if (i < 0) {
                PE__NAME(pe__gibbs_choice)(state, stride, -i - 1, size[-i - 1], indptr, indices, weight,
                                 field, &beta, &t0, &t1, &t2, &t3, 1, 1, keep);
                continue;
            }
            pe_factors factors = {NULL, 0, NULL, 0, NULL};
            if (factor_weight)
                factors = (pe_factors){factor_ids + factor_ptr[i],
                                       factor_ptr[i + 1] - factor_ptr[i], factor_members,
                                       factor_width, factor_weight};
            PE__NAME(pe__gibbs_unit_scalar)(state, stride, i, indices + indptr[i], weight + indptr[i],
                                  indptr[i + 1] - indptr[i], field[i], factors, beta,
                                  scale[i], low[i], &t0, &t1, &t2, &t3, keep, cont);
        }
    }
    *s0 = t0;
    *s1 = t1;
    *s2 = t2;
    *s3 = t3;
}

/* The vector path of pe_gibbs_sweeps (n a multiple of PE_LANES), inlined into it twice:
 * with the held lanes' mask and with a constant NULL. */
PE__ALWAYS_INLINE void PE__NAME(pe__gibbs_sweeps_lanes)(PE__T *state, long stride,
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
                                              const pe_state *keep, const pe_continuous *cont)
{
    for (long sweep = 0; sweep < n_sweeps; ++sweep) {
        for (long t = 0; t < n_order; ++t) {
            long i = order[t];
            if (i < 0) {
                PE__NAME(pe__gibbs_choice)(state, stride, -i - 1, size[-i - 1], indptr, indices, weight,
                                 field, beta, s0, s1, s2, s3, n, PE_LANES, keep);
                continue;
            }
            pe_factors factors = {factor_ids + factor_ptr[i], factor_ptr[i + 1] - factor_ptr[i],
                                  factor_members, factor_width, factor_weight};
            PE__NAME(pe__gibbs_unit)(state, stride, i, indices + indptr[i], weight + indptr[i],
                           indptr[i + 1] - indptr[i], field[i], factors, beta, scale[i],
                           low[i], s0, s1, s2, s3, n, keep, cont);
        }
    }
}

/* n_sweeps sweeps over the units in order[] for a block of n chains (n a multiple of
 * PE_LANES; see pe__gibbs_unit; fewer chains run one by one, pe__gibbs_sweeps_scalar); the
 * whole loop is one call. An entry -(i + 1) of order[] is the categorical unit whose size[i]
 * slots start at i (pe__gibbs_choice); binary and spin units never read size[]. `cont`: NULL,
 * or the slots' kinds and parameters (continuous units; the real-valued state only). */
PE_CLONES PE_UNUSED
static void PE__NAME(pe_gibbs_sweeps)(PE__T *state, long stride, const int32_t *order, long n_order,
                            const int32_t *size, const int64_t *indptr, const int32_t *indices,
                            const double *weight, const double *field,
                            const int64_t *factor_ptr, const int32_t *factor_ids,
                            const int32_t *factor_members, long factor_width,
                            const double *factor_weight, const double *scale,
                            const double *low, const double *beta, uint64_t *s0,
                            uint64_t *s1, uint64_t *s2, uint64_t *s3, long n, long n_sweeps,
                            const pe_state *keep, const pe_continuous *cont)
{
    if (n % PE_LANES) {
        /* Fewer chains than a vector group: chain by chain, each its whole run (chains do not
         * interact, so this gives every chain the same values as the vector path). */
        for (long c = 0; c < n; ++c) {
            if (n == 1 && !factor_weight && !keep)
                /* the common case, a copy of the loop compiled for it: unit stride, and the
                 * constant NULL folds the product factors' code away (about 5% faster) */
                PE__NAME(pe__gibbs_sweeps_scalar)(state, 1, order, n_order, size, indptr, indices, weight,
                                        field, factor_ptr, factor_ids, factor_members,
                                        factor_width, NULL, scale, low, beta[0], s0,
                                        s1, s2, s3, n_sweeps, NULL, cont);
            else
                PE__NAME(pe__gibbs_sweeps_scalar)(state + c, n, order, n_order, size, indptr, indices, weight,
                                        field, factor_ptr, factor_ids, factor_members,
                                        factor_width, factor_weight, scale, low, beta[c],
                                        s0 + c, s1 + c, s2 + c, s3 + c, n_sweeps,
                                        keep ? keep + c : NULL, cont);
        }
        return;
    }
    if (keep)
        PE__NAME(pe__gibbs_sweeps_lanes)(state, stride, order, n_order, size, indptr, indices, weight,
                               field, factor_ptr, factor_ids, factor_members, factor_width,
                               factor_weight, scale, low, beta, s0, s1, s2, s3, n, n_sweeps,
                               keep, cont);
    else        /* a copy without the held lanes' code: the common path runs as before */
        PE__NAME(pe__gibbs_sweeps_lanes)(state, stride, order, n_order, size, indptr, indices, weight,
                               field, factor_ptr, factor_ids, factor_members, factor_width,
                               factor_weight, scale, low, beta, s0, s1, s2, s3, n, n_sweeps,
                               NULL, cont);
}

/* The template's parameters, set by the includer for one state type. */
#undef PE__T
#undef PE__NAME
#undef PE__REAL
#undef PE__SCALED
#undef PE__VALUE
#undef PE__TWO
#undef PE__HOLD
#undef PE__ONE
