/*
 * _learning.h -- the elementwise steps of the compiled learning epoch (_learning.pyx):
 * layer means, one mean-field update with its largest change, one SGD step. Loops over
 * restrict pointers that GCC vectorises (target clones as in _vecmath.h).
 */
#ifndef PGM_ENERGY_LEARNING_H
#define PGM_ENERGY_LEARNING_H

#include "_vecmath.h"   /* pe_sigmoid, PE_CLONES, PE_SIMD, PE_RESTRICT */

#if defined(_OPENMP) && _OPENMP >= 201307
#  define PE__PRAGMA(x) _Pragma(#x)
#  define PE__SIMD_MAX(v) PE__PRAGMA(omp simd reduction(max:v))
#else
#  define PE__SIMD_MAX(v)
#endif

/* In place over a layer of one row: field[k] <- E[unit k] = low[k] + scale[k] sigmoid(scale[k]
 * field[k]) (beta 1). */
PE_CLONES PE_UNUSED
static void pe_layer_means(double *PE_RESTRICT field, const double *PE_RESTRICT scale,
                           const double *PE_RESTRICT low, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k)
        field[k] = low[k] + scale[k] * pe_sigmoid(scale[k] * field[k]);
}

/* One mean-field update of a layer of one row: the new mean of unit k is
 * low[k] + scale[k] sigmoid(scale[k] (product[k] + bias[k])), mixed with the old one as
 * damping mean[k] + (1 - damping) new (exactly new for damping 0, the means being finite);
 * mean[k] takes it. Returns the largest |change| of a mean. */
PE_CLONES PE_UNUSED
static double pe_mean_field_update(double *PE_RESTRICT mean, const double *PE_RESTRICT product,
                                   const double *PE_RESTRICT bias,
                                   const double *PE_RESTRICT scale,
                                   const double *PE_RESTRICT low, double damping, long n)
{
    double change = 0.0;
    PE__SIMD_MAX(change)
    for (long k = 0; k < n; ++k) {
        double f = product[k] + bias[k];
        double v = low[k] + scale[k] * pe_sigmoid(scale[k] * f);
        v = damping * mean[k] + (1.0 - damping) * v;
        double d = fabs(v - mean[k]);
        change = d > change ? d : change;
        mean[k] = v;
    }
    return change;
}

/* One SGD step with momentum on n entries, those where on[k] is 1 (an entry with on[k] 0 and
 * theta, velocity 0 stays so): g = grad - weight_decay theta - l1 sign(theta),
 * velocity = momentum velocity + lr g, theta += velocity. Returns the largest |grad| of the
 * entries on. */
PE_CLONES PE_UNUSED
static double pe_sgd_step(double *PE_RESTRICT theta, double *PE_RESTRICT velocity,
                          const double *PE_RESTRICT grad, const unsigned char *PE_RESTRICT on,
                          double lr, double momentum, double weight_decay, double l1, long n)
{
    double largest = 0.0;
    PE__SIMD_MAX(largest)
    for (long k = 0; k < n; ++k) {
        double w = (double)on[k];
        double a = w * fabs(grad[k]);
        double sign = (double)(theta[k] > 0.0) - (double)(theta[k] < 0.0);
        double g = grad[k] - weight_decay * theta[k] - l1 * sign;
        velocity[k] = w * (momentum * velocity[k] + lr * g);
        theta[k] += velocity[k];
        largest = a > largest ? a : largest;
    }
    return largest;
}

#endif /* PGM_ENERGY_LEARNING_H */
