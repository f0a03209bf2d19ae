/*
 * _tables.h -- the log tables of variable elimination (_eliminate.pyx): their memory and the
 * inner loops of the block sums that read them.
 */
#ifndef PGM_ENERGY_TABLES_H
#define PGM_ENERGY_TABLES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "_vecmath.h"   /* PE_CLONES, PE_SIMD, PE_RESTRICT, PE_UNUSED */

/* A table of n doubles (zeroed when zero != 0). Large ones get transparent huge pages,
 * as numpy's allocator does (>= 4 MiB): the gathers of a big contraction then miss the
 * TLB far less often. Freed with free(). */
static double *pe_table_alloc(int64_t n, int zero)
{
    size_t size = (size_t)n * sizeof(double);
    double *p = zero ? (double *)calloc((size_t)n, sizeof(double)) : (double *)malloc(size);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p != NULL && size >= ((size_t)1 << 22)) {
        uintptr_t offset = 4096u - (uintptr_t)p % 4096u;
        madvise((char *)p + offset, size - offset, MADV_HUGEPAGE);
    }
#endif
    return p;
}

/* row[k] += t[off[k]] and row[k] += t[k]: the block sums' inner loops, in the same
 * feature-dispatched clones as the vecmath calls (AVX2/AVX-512 gathers and adds where
 * the CPU has them). Plain adds in the same order: every clone gives the same bits. */
PE_CLONES PE_UNUSED
static void pe_add_gather(double *PE_RESTRICT row, const double *PE_RESTRICT t,
                          const int64_t *PE_RESTRICT off, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k)
        row[k] += t[off[k]];
}

PE_CLONES PE_UNUSED
static void pe_add_run(double *PE_RESTRICT row, const double *PE_RESTRICT t, long n)
{
    PE_SIMD
    for (long k = 0; k < n; ++k)
        row[k] += t[k];
}

#endif /* PGM_ENERGY_TABLES_H */
