/*
 * _bitset.h -- bit counts over bitset neighbourhoods, for the elimination order search
 * (_order.pyx): a unit's neighbours are n_words 64-bit words, bit u of word u / 64 set when u
 * is a neighbour.
 *
 * The counts run in the feature-dispatched clones of _vecmath.h where GCC makes them (the
 * x86-64-v3/v4 clones count with POPCNT); the results are integers, so every clone agrees.
 */
#ifndef PGM_ENERGY_BITSET_H
#define PGM_ENERGY_BITSET_H

#include <stdint.h>

#include "_vecmath.h"   /* PE_CLONES, PE_UNUSED, PE_VECMATH_HAVE_CLONES */

/* Bits set in x. The builtin is a library call unless the build targets POPCNT (the
 * default build does not), so without it: the branch-free SWAR count, inlined. */
#if defined(__POPCNT__) && (defined(__GNUC__) || defined(__clang__))
static inline int pe_popcount64(unsigned long long x) { return __builtin_popcountll(x); }
#else
static inline int pe_popcount64(unsigned long long x)
{
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}
#endif

/* Index of the lowest set bit (x != 0). */
#if defined(_MSC_VER)
static inline int pe_ctz64(unsigned long long x)
{
    unsigned long i;
    _BitScanForward64(&i, x);
    return (int)i;
}
#else
static inline int pe_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
#endif

#if PE_VECMATH_HAVE_CLONES
#  define PE_POPCOUNT(x) __builtin_popcountll(x)
#else
#  define PE_POPCOUNT(x) pe_popcount64(x)
#endif

/* Bits set in the n_words words of x. */
PE_CLONES PE_UNUSED
static int64_t pe_count_bits(const uint64_t *x, int64_t n_words)
{
    int64_t total = 0;
    for (int64_t w = 0; w < n_words; ++w)
        total += PE_POPCOUNT(x[w]);
    return total;
}

/* Bits set in both x and y. */
PE_CLONES PE_UNUSED
static int64_t pe_common_bits(const uint64_t *x, const uint64_t *y, int64_t n_words)
{
    int64_t total = 0;
    for (int64_t w = 0; w < n_words; ++w)
        total += PE_POPCOUNT(x[w] & y[w]);
    return total;
}

/* Fill edges of eliminating a unit with neighbourhood nb: the pairs of nb not yet
 * adjacent, sum over u in nb of (|nb without adj[u]| - 1), halved. */
PE_CLONES PE_UNUSED
static int64_t pe_fill_in(const uint64_t *adj, const uint64_t *nb, int64_t n_words)
{
    int64_t fill = 0;
    for (int64_t word = 0; word < n_words; ++word) {
        uint64_t bits = nb[word];
        while (bits) {
            const uint64_t *other = adj + (word * 64 + pe_ctz64(bits)) * n_words;
            bits &= bits - 1;
            for (int64_t w = 0; w < n_words; ++w)
                fill += PE_POPCOUNT(nb[w] & ~other[w]);
            fill -= 1;
        }
    }
    return fill / 2;
}

#endif /* PGM_ENERGY_BITSET_H */
