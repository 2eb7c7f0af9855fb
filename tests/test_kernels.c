/* test_kernels.c — checkasm-style tests of the sgemm kernels: every ISA this
 * CPU runs against the scalar reference, all transpose forms, odd shapes,
 * tails, leading dimensions larger than the matrix, unaligned pointers, beta 0
 * (C holding NaN must not leak) and 1, and bitwise determinism across thread
 * counts. The vector kernels are in test_kernels_vec.c.
 *
 * Tolerance: the ISA kernels sum K products in a different order (blocks of
 * KC, FMA without intermediate rounding) than the scalar loop, so results
 * differ by reassociation only: |err| <= K * 2^-23 * sum_k |a_k b_k| is the
 * classic bound; with entries in [-1, 1] we check |err| <= 1e-5 * (|c| + K)
 * (a few ulps of the partial-sum magnitudes times K), which is far tighter
 * than any indexing bug could pass. */
#include "simd/kernels.h"
#include "test.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static unsigned long long rng_state = 88172645463325252ULL;
static float frand(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}
static void fill(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = frand(); }

/* The ISA under test (main() runs each case per ISA of this architecture). */
static hone_kernels cur;
static const char *cur_isa;
static void skip_isa(void) { test_skip("%s not supported by this CPU/OS/build", cur_isa); }

/* One gemm of every form against the reference; pads leading dims by `pad`. */
static void check_gemm(const hone_kernels *ref, const hone_kernels *t, int ta, int tb, int M, int N, int K,
                       int pad, float beta) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1, nc = (size_t)M * ldc + 1;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C0 = malloc(sizeof(float) * nc), *C1 = malloc(sizeof(float) * nc);
    fill(A, na); fill(B, nb); fill(C0, nc);
    if (beta == 0.f)
        for (size_t i = 0; i < nc; i++) C0[i] = NAN; /* beta=0 must never read C */
    memcpy(C1, C0, sizeof(float) * nc);
    ref->gemm_f32(ta, tb, M, N, K, A + 1, lda, B + 1, ldb, beta, C0 + 1, ldc);
    t->gemm_f32(ta, tb, M, N, K, A + 1, lda, B + 1, ldb, beta, C1 + 1, ldc);
    char what[128];
    snprintf(what, sizeof what, "%s gemm ta=%d tb=%d %dx%dx%d pad %d beta %g", t->isa, ta, tb, M, N, K, pad, beta);
    int bad = 0;
    for (int i = 0; i < M && bad < 3; i++)
        for (int j = 0; j < ldc && bad < 3; j++) {
            size_t o = 1 + (size_t)i * ldc + j;
            if (j >= N) { /* padding columns must be untouched */
                if (memcmp(&C0[o], &C1[o], 4)) { CHECK(0, "%s: wrote C(%d,%d) past N", what, i, j); bad++; }
                continue;
            }
            double tol = 1e-5 * (fabs(C0[o]) + K);
            if (!(fabs(C1[o] - C0[o]) <= tol)) {
                CHECK(0, "%s: C(%d,%d) got %.9g want %.9g", what, i, j, C1[o], C0[o]);
                bad++;
            }
        }
    free(A); free(B); free(C0); free(C1);
}

static void test_gemm_all_forms(void) {
    hone_kernels ref;
    kernels_get("scalar", &ref);
    static const int shapes[][3] = {{1, 1, 1},     {7, 13, 5},    {33, 17, 65},  {64, 48, 96},
                                    {129, 31, 257}, {6, 16, 400},  {12, 32, 385}, {97, 161, 771},
                                    {200, 70, 3},  {3, 300, 130}, {0, 5, 5},     {5, 5, 0},
                                    {1, 300, 130}, {2, 77, 515},  {1, 7, 3},     {2, 1, 33}}; /* M <= 2: GEMV */
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                check_gemm(&ref, &cur, ta, tb, M, N, K, (int)(s % 3) * 3, (s + ta + tb) % 2 ? 1.f : 0.f);
            }
}

/* Shapes large enough to take the threaded, multi-block paths (K > KC, M > MC). */
static void test_gemm_large(void) {
    hone_kernels ref;
    kernels_get("scalar", &ref);
    check_gemm(&ref, &cur, 0, 1, 301, 190, 900, 5, 0.f);
    check_gemm(&ref, &cur, 1, 0, 250, 77, 1100, 0, 1.f);
    check_gemm(&ref, &cur, 0, 0, 1030, 45, 700, 2, 0.f);
    check_gemm(&ref, &cur, 1, 1, 40, 2000, 500, 1, 1.f); /* N > M: threads split N */
    check_gemm(&ref, &cur, 0, 1, 1, 5000, 900, 3, 0.f);  /* threaded GEMV */
    check_gemm(&ref, &cur, 1, 0, 2, 4100, 700, 0, 1.f);
}

#if defined(__x86_64__)
/* The AVX-512 table's gemm depends on the vendor (12x32 on Intel, the AVX2
 * 6x16 with 24x16 for the dW forms on AMD); both AVX-512 micro-kernels are
 * checked here whatever this CPU's vendor is. */
static void test_gemm_avx512_both_shapes(void) {
    const char *shapes[] = {"12x32", "24x16"};
    for (int i = 0; i < 2; i++) {
        setenv("HONE_AVX512_GEMM", shapes[i], 1);
        if (kernels_get("avx512", &cur) < 0) {
            unsetenv("HONE_AVX512_GEMM");
            test_skip("avx512 not supported by this CPU/OS/build");
            return;
        }
        test_gemm_all_forms();
        test_gemm_large();
    }
    unsetenv("HONE_AVX512_GEMM");
}

/* On AMD the AVX-512 table runs the AVX2 6x16 gemm but 24x16 for op(A) stored
 * (K, M) (kernels_avx512.c gemm_f32_avx512_amd): both tiles are 16 wide, so KC and
 * every sum are the same and C must be bitwise the 6x16 one, in every form (M > 2:
 * one or two rows take the GEMV path, whose dot products differ per ISA). */
static void test_gemm_24x16_bitwise_6x16(void) {
    hone_kernels a2, z;
    setenv("HONE_AVX512_GEMM", "24x16", 1);
    int ok = kernels_get("avx2", &a2) == 0 && kernels_get("avx512", &z) == 0;
    unsetenv("HONE_AVX512_GEMM");
    if (!ok) {
        test_skip("avx512 not supported by this CPU/OS/build");
        return;
    }
    static const int shapes[][3] = {{3, 17, 5}, {37, 45, 83}, {100, 64, 400}, {301, 190, 900}, {50, 33, 1300}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int form = 0; form < 4; form++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = form >> 1, tb = form & 1;
            int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2;
            size_t na = (size_t)lda * (ta ? K : M), nb = (size_t)ldb * (tb ? N : K);
            float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
            float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
            fill(A, na); fill(B, nb); fill(C1, (size_t)M * N);
            memcpy(C2, C1, sizeof(float) * M * N);
            float beta = s % 2 ? 1.f : 0.f;
            a2.gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, beta, C1, N);
            z.gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, beta, C2, N);
            CHECK(!memcmp(C1, C2, sizeof(float) * M * N), "24x16 vs 6x16 %dx%dx%d ta=%d tb=%d differ", M, N, K, ta, tb);
            free(A); free(B); free(C1); free(C2);
        }
}
#endif

#ifdef _OPENMP
/* One shape, all forms, every ISA: 2 and 3 threads against 1, bitwise. */
static void check_determinism(int M, int N, int K) {
    hone_kernels t;
    const char *names[] = {"scalar", "avx2", "avx512", "neon"};
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    fill(A, (size_t)M * K); fill(B, (size_t)K * N);
    for (int ii = 0; ii < 4; ii++) {
        if (kernels_get(names[ii], &t) < 0) continue;
        for (int form = 0; form < 3; form++) {
            int ta = form == 2, tb = form == 0;
            int lda = ta ? M : K, ldb = tb ? K : N;
            omp_set_num_threads(1);
            t.gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, 0.f, C1, N);
            for (int nth = 2; nth <= 3; nth++) {
                omp_set_num_threads(nth);
                t.gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, 0.f, C2, N);
                CHECK(!memcmp(C1, C2, sizeof(float) * M * N), "%s gemm %dx%dx%d ta=%d tb=%d: 1 vs %d threads differ",
                      t.isa, M, N, K, ta, tb, nth);
            }
        }
    }
    free(A); free(B); free(C1); free(C2);
}
#endif

/* Same inputs on 1, 2 and 3 threads (uneven splits) must give bitwise the
 * same C: threads split output tiles only, never the K sum. Shapes above the
 * threading threshold, split along M and along N. */
static void test_gemm_thread_determinism(void) {
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    check_determinism(203, 301, 777);
    check_determinism(60, 900, 700);
    check_determinism(2, 3000, 1500); /* GEMV, split over columns */
    omp_set_num_threads(saved);
#else
    test_skip("built without OpenMP");
#endif
}

/* HONE_ISA forces a path; a name this machine cannot run is refused. */
static void test_dispatch(void) {
    setenv("HONE_ISA", "scalar", 1);
    CHECK(kernels_init() == 0 && !strcmp(hone_kt.isa, "scalar"), "HONE_ISA=scalar gave %s", hone_kt.isa);
    setenv("HONE_ISA", "sse9", 1);
    CHECK(kernels_init() == -1, "HONE_ISA=sse9 was accepted");
    CHECK(hone_kt.gemm_f32 && hone_kt.attn_bwd && hone_kt.f32_to_f16, "table left incomplete");
    unsetenv("HONE_ISA");
    CHECK(kernels_init() == 0, "default dispatch failed");
    printf("    dispatch picks %s\n", hone_kt.isa);
}

int main(void) {
#if defined(__x86_64__)
    const char *isas[] = {"avx2", "avx512"};
#elif defined(__aarch64__)
    const char *isas[] = {"neon"};
#else
    const char *isas[] = {"none"};
#endif
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        cur_isa = isas[i];
        int ok = kernels_get(cur_isa, &cur) == 0;
        char name[64];
        snprintf(name, sizeof name, "%s gemm_all_forms", cur_isa);
        test_run(name, ok ? test_gemm_all_forms : skip_isa);
        snprintf(name, sizeof name, "%s gemm_large", cur_isa);
        test_run(name, ok ? test_gemm_large : skip_isa);
    }
#if defined(__x86_64__)
    TEST_RUN(test_gemm_avx512_both_shapes);
    TEST_RUN(test_gemm_24x16_bitwise_6x16);
#endif
    TEST_RUN(test_gemm_thread_determinism);
    TEST_RUN(test_dispatch);
    return test_finish();
}
