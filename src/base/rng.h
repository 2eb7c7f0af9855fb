/* base/rng.h — the one pseudo-random generator of hone: xoshiro256** (Blackman & Vigna 2018)
 * seeded through splitmix64. Every random choice (data shuffling, mixtures, splits,
 * weight init, dropout) draws from an explicit hone_rng value, never from hidden
 * state, so the same seed gives bitwise the same run on any machine and thread count.
 * The state is 4 x u64 and may be saved in checkpoints as is. */
#ifndef HONE_RNG_H
#define HONE_RNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct hone_rng {
    uint64_t s[4];
} hone_rng;

/* Seeds the state with four successive splitmix64 outputs of `seed`. */
void rng_seed(hone_rng *r, uint64_t seed);
/* Next 64 random bits (xoshiro256**). */
uint64_t rng_next_u64(hone_rng *r);
/* Uniform integer in [0, n), unbiased (rejection sampling); n > 0. */
uint64_t rng_below(hone_rng *r, uint64_t n);
/* Uniform float in [0, 1): the top 24 bits times 2^-24. */
float rng_uniform_f32(hone_rng *r);
/* Uniform double in [0, 1): the top 53 bits times 2^-53. */
double rng_uniform_f64(hone_rng *r);
/* Standard normal N(0, 1) by the Box-Muller transform (two uniforms per value, the
 * sine branch discarded so a value depends only on the state, no cached spare). */
float rng_normal_f32(hone_rng *r);
/* Fisher-Yates shuffle of idx[0..n) in place, i from n-1 down to 1 swapping with
 * rng_below(i+1). */
void rng_shuffle_indices(hone_rng *r, size_t *idx, size_t n);
/* splitmix64 step: advances *x and returns the mixed value (also handy for deriving
 * independent sub-seeds, e.g. one per data source). */
uint64_t rng_splitmix64(uint64_t *x);

#endif
