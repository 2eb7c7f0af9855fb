/* test_rng.c — the xoshiro256** / splitmix64 generator: published splitmix64 values,
 * fixed xoshiro outputs for seed 42 (from an independent Python transcription of the
 * reference C), ranges, moments, and the Fisher-Yates shuffle being a permutation. */
#include "base/rng.h"
#include "test.h"

static void test_known_values(void) {
    uint64_t x = 0;
    CHECK(rng_splitmix64(&x) == 0xe220a8397b1dcdafULL, "splitmix64(0) first output");
    CHECK(rng_splitmix64(&x) == 0x6e789e6aa1b965f4ULL, "splitmix64(0) second output");
    hone_rng r;
    rng_seed(&r, 42);
    CHECK(rng_next_u64(&r) == 0x15780b2e0c2ec716ULL, "xoshiro 1");
    CHECK(rng_next_u64(&r) == 0x6104d9866d113a7eULL, "xoshiro 2");
    CHECK(rng_next_u64(&r) == 0xae17533239e499a1ULL, "xoshiro 3");
}

static void test_distributions(void) {
    hone_rng r;
    rng_seed(&r, 7);
    double s = 0, s2 = 0, u = 0;
    int n = 200000, bad = 0;
    for (int i = 0; i < n; i++) {
        float f = rng_uniform_f32(&r);
        bad += !(f >= 0 && f < 1);
        u += f;
        float g = rng_normal_f32(&r);
        s += g, s2 += (double)g * g;
        bad += rng_below(&r, 10) >= 10;
    }
    CHECK(bad == 0, "%d out of range", bad);
    CHECK_CLOSE(u / n, 0.5, 0, 0.005, "uniform mean");
    CHECK_CLOSE(s / n, 0.0, 0, 0.01, "normal mean");
    CHECK_CLOSE(s2 / n, 1.0, 0, 0.02, "normal variance");
}

static void test_shuffle(void) {
    size_t idx[100], seen[100] = {0};
    for (int i = 0; i < 100; i++) idx[i] = (size_t)i;
    hone_rng r, r2;
    rng_seed(&r, 1), rng_seed(&r2, 1);
    rng_shuffle_indices(&r, idx, 100);
    int moved = 0;
    for (int i = 0; i < 100; i++) seen[idx[i]]++, moved += idx[i] != (size_t)i;
    int perm = 1;
    for (int i = 0; i < 100; i++) perm &= seen[i] == 1;
    CHECK(perm, "shuffle is a permutation");
    CHECK(moved > 80, "shuffle moved only %d", moved);
    size_t idx2[100];
    for (int i = 0; i < 100; i++) idx2[i] = (size_t)i;
    rng_shuffle_indices(&r2, idx2, 100);
    CHECK(!memcmp(idx, idx2, sizeof idx), "same seed, same shuffle");
}

int main(void) {
    TEST_RUN(test_known_values);
    TEST_RUN(test_distributions);
    TEST_RUN(test_shuffle);
    return test_finish();
}
