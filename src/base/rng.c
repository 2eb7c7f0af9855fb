/* base/rng.c — xoshiro256** seeded by splitmix64 (see rng.h). Reference:
 * https://prng.di.unimi.it/xoshiro256starstar.c and splitmix64.c (public domain). */
#include "base/rng.h"
#include <math.h>

uint64_t rng_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(hone_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next_u64(hone_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rng_below(hone_rng *r, uint64_t n) {
    /* reject the top partial bucket so every residue is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_next_u64(r);
    while (x >= limit);
    return x % n;
}

float rng_uniform_f32(hone_rng *r) { return (float)(rng_next_u64(r) >> 40) * (1.0f / 16777216.0f); }

double rng_uniform_f64(hone_rng *r) { return (double)(rng_next_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

float rng_normal_f32(hone_rng *r) {
    /* u1 in (0, 1] so log(u1) is finite */
    double u1 = 1.0 - rng_uniform_f64(r);
    double u2 = rng_uniform_f64(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rng_shuffle_indices(hone_rng *r, size_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
