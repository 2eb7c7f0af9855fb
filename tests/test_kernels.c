/* test_kernels.c — checkasm-style tests: every kernel of every ISA this CPU runs
 * against the scalar reference, on odd shapes and unaligned pointers.
 * Tolerances are stated per check (relative to the reference's magnitude). */
#include "kernels.h"
#include "test.h"

static unsigned long long rng_state = 88172645463325252ULL;
static float frand(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}
static void fill(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = frand(); }

static const char *isas[] = {"avx2", "avx512", "neon"};

static void test_gemm_all_forms(void) {
    hone_kernels ref, t;
    kernels_get("scalar", &ref);
    int ran = 0;
    for (int ii = 0; ii < 3; ii++) {
        if (kernels_get(isas[ii], &t) < 0) continue;
        ran++;
        int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {64, 48, 96}, {129, 31, 257}};
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    float *A = malloc(sizeof(float) * (M * K + 1)), *B = malloc(sizeof(float) * (K * N + 1));
                    float *C0 = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * (M * N + 1));
                    fill(A, M * K + 1); fill(B, K * N + 1); fill(C0, M * N);
                    memcpy(C1 + 1, C0, sizeof(float) * M * N);
                    int lda = ta ? M : K, ldb = tb ? K : N;
                    ref.gemm_f32(ta, tb, M, N, K, A + 1, lda, B + 1, ldb, 1.f, C0, N);
                    t.gemm_f32(ta, tb, M, N, K, A + 1, lda, B + 1, ldb, 1.f, C1 + 1, N);
                    for (int i = 0; i < M * N; i++)
                        CHECK_CLOSE(C1[i + 1], C0[i], 1e-5, 1e-5 * K, t.isa); /* fp32 reassociation */
                    free(A); free(B); free(C0); free(C1);
                }
    }
    if (!ran) test_skip("no SIMD ISA runs on this CPU");
}

int main(void) {
    TEST_RUN(test_gemm_all_forms);
    return test_finish();
}
