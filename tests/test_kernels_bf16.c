/* test_kernels_bf16.c — checkasm-style tests of the bf16 matrix products
 * (kernels.h gemm_bf16_dot / gemm_bf16_rounded / round_bf16) on every ISA this
 * CPU runs, all transpose forms, odd shapes (odd K: the last pair padded; K over
 * several KC blocks; edge tiles), leading dimensions past the matrix, beta 0 (C
 * holding NaN) and 1, and 1 vs 2 vs 3 threads.
 *
 * Tolerances:
 * - dot path (AVX512-BF16 vdpbf16ps; Arm BF16 BFDOT, under qemu-aarch64 -cpu max in
 *   make check-neon) against the table's gemm_bf16_dot_ref, the C emulation of that
 *   instruction's order and rounding (gemm_bf16_dot_scalar: fused, to nearest;
 *   gemm_bf16_bfdot_scalar: products summed first, round to odd): bitwise (0 ulp), on
 *   inputs that include bf16 subnormals (read as zero), fp32 subnormal sums (flushed)
 *   and values whose products leave the fp32 range, and on directed cases where the
 *   two roundings differ (each emulation's expected bits stated).
 * - dot path and both emulations against the fp32 gemm of the rounded operands and
 *   the exact product: 1e-5 * (|c| + K).
 * - rounded path against the same table's gemm_f32 on operands rounded beforehand:
 *   bitwise for M > 2 (the same kernel on the same values; the scalar table's
 *   gemm_f32 is a plain loop, so there within the tolerance below).
 * - either path against the exact product of the rounded operands (in double):
 *   |err| <= 1e-5 * (|c| + K), reassociation only (as test_kernels.c).
 * - threads: bitwise. */
#include "simd/kernels.h"
#include "test.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static unsigned long long rng_state = 0x2545F4914F6CDD1DULL;
static unsigned long long next_u64(void) { return test_xorshift(&rng_state); }
static float frand(void) { return test_uniform(&rng_state); }
static void fill(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = frand(); }
/* Mostly [-1, 1], about 1 in 64 a bf16 subnormal, an fp32 subnormal, or a value
 * near 2^+-100 (products overflow or underflow fp32; exact in the hardware). */
static void fill_edgy(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned long long r = next_u64();
        float v = frand();
        switch (r % 64) {
        case 0: v *= 1e-39f; break;             /* subnormal in fp32 and in bf16 */
        case 1: v = ldexpf(v, -100); break;     /* tiny: products below fp32's range */
        case 2: v = ldexpf(v, 70); break;       /* large: a product of two near 2^140 */
        default: break;
        }
        x[i] = v;
    }
}
static float round_bf16_ref(float x) {
    uint16_t h;
    float y;
    hone_kt.f32_to_bf16(&h, &x, 1);
    hone_kt.bf16_to_f32(&y, &h, 1);
    return y;
}

typedef void (*gemm_fn)(int, int, int, int, int, const float *, int, const float *, int, float, float *, int);

/* One product by f and by ref on the same inputs; bitwise (tol < 0) or within
 * 1e-5 * (|c| + K) (tol >= 0), padding columns untouched. */
static void compare(const char *what, gemm_fn f, gemm_fn ref, int ta, int tb, int M, int N, int K, int pad, float beta,
                    int edgy, double tol) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1, nc = (size_t)M * ldc + 1;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C0 = malloc(sizeof(float) * nc), *C1 = malloc(sizeof(float) * nc);
    if (edgy) fill_edgy(A, na), fill_edgy(B, nb);
    else fill(A, na), fill(B, nb);
    fill(C0, nc);
    if (beta == 0.f)
        for (size_t i = 0; i < nc; i++) C0[i] = NAN;
    memcpy(C1, C0, sizeof(float) * nc);
    ref(ta, tb, M, N, K, A + 1, lda, B + 1, ldb, beta, C0 + 1, ldc);
    f(ta, tb, M, N, K, A + 1, lda, B + 1, ldb, beta, C1 + 1, ldc);
    int bad = 0;
    for (int i = 0; i < M && bad < 3; i++)
        for (int j = 0; j < ldc && bad < 3; j++) {
            size_t o = 1 + (size_t)i * ldc + j;
            int same = !memcmp(&C0[o], &C1[o], 4) || (isnan(C0[o]) && isnan(C1[o]));
            if (j >= N || tol < 0) {
                if (!same) {
                    CHECK(0, "%s ta=%d tb=%d %dx%dx%d pad %d beta %g: C(%d,%d) got %a want %a", what, ta, tb, M, N, K, pad,
                          beta, i, j, C1[o], C0[o]);
                    bad++;
                }
                continue;
            }
            if (!(fabs(C1[o] - C0[o]) <= tol * (fabs(C0[o]) + K))) {
                CHECK(0, "%s ta=%d tb=%d %dx%dx%d: C(%d,%d) got %.9g want %.9g", what, ta, tb, M, N, K, i, j, C1[o], C0[o]);
                bad++;
            }
        }
    free(A); free(B); free(C0); free(C1);
}

/* The shapes every path runs: edge tiles in both directions, odd K, K = 1, K over
 * two KC blocks of the pair path (KC <= 768, whole K up to 5/3 of it). */
static const int shapes[][3] = {{1, 1, 1},   {3, 5, 7},    {13, 33, 2},  {24, 32, 64},  {25, 47, 129},
                                {37, 70, 1}, {50, 17, 301}, {2, 40, 33},  {41, 65, 1500}, {130, 129, 96}};
#define NSHAPES (int)(sizeof shapes / sizeof *shapes)

/* The table under test and its rounded path's fp32 reference (the table's gemm_f32
 * on operands rounded first). */
static hone_kernels cur;
static const char *cur_isa;
static void skip_isa(void) { test_skip("%s not supported by this CPU/OS/build", cur_isa); }

static void gemm_f32_on_rounded(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                float beta, float *C, int ldc) {
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
    for (size_t i = 0; i < na; i++) a[i] = round_bf16_ref(A[i]);
    for (size_t i = 0; i < nb; i++) b[i] = round_bf16_ref(B[i]);
    cur.gemm_f32(ta, tb, M, N, K, a, lda, b, ldb, beta, C, ldc);
    free(a); free(b);
}
/* The exact product of the rounded operands, in double (operands rounded once, into
 * a (M,K) and b (N,K): qemu runs this too). */
static void gemm_exact_rounded(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                               float beta, float *C, int ldc) {
    float *a = malloc(sizeof(float) * ((size_t)M * K + 1)), *b = malloc(sizeof(float) * ((size_t)N * K + 1));
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) a[(size_t)i * K + k] = round_bf16_ref(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
    for (int j = 0; j < N; j++)
        for (int k = 0; k < K; k++) b[(size_t)j * K + k] = round_bf16_ref(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)a[(size_t)i * K + k] * b[(size_t)j * K + k];
            float *c = C + (size_t)i * ldc + j;
            *c = beta != 0.f ? (float)(*c + s) : (float)s;
        }
    free(a); free(b);
}

static void test_dot_bitwise(void) {
    if (!cur.gemm_bf16_dot) {
        test_skip("%s: no bf16 dot-product unit here", cur.isa);
        return;
    }
    char what[96];
    snprintf(what, sizeof what, "%s %s vs scalar emulation", cur.isa, cur.gemm_bf16_dot_name);
    for (int s = 0; s < NSHAPES; s++)
        for (int form = 0; form < 4; form++)
            compare(what, cur.gemm_bf16_dot, cur.gemm_bf16_dot_ref, form >> 1, form & 1, shapes[s][0], shapes[s][1],
                    shapes[s][2], (s % 3) * 3, (s + form) % 2 ? 1.f : 0.f, s % 2, -1);
}

/* The dot path (where there is one; with the scalar table, both emulations) within
 * bf16 tolerance of the exact product and of this table's fp32 gemm of the rounded
 * operands. */
static void test_dot_accuracy(void) {
    int scalar = !strcmp(cur.isa, "scalar");
    gemm_fn fs[3] = {cur.gemm_bf16_dot, scalar ? gemm_bf16_dot_scalar : NULL, scalar ? gemm_bf16_bfdot_scalar : NULL};
    const char *names[3] = {cur.gemm_bf16_dot_name, "vdpbf16ps emulation", "BFDOT emulation"};
    for (int f = 0; f < 3; f++) {
        if (!fs[f]) continue;
        char what[128];
        snprintf(what, sizeof what, "%s %s vs exact", cur.isa, names[f]);
        for (int s = 0; s < NSHAPES; s++)
            for (int form = 0; form < 4; form++)
                compare(what, fs[f], gemm_exact_rounded, form >> 1, form & 1, shapes[s][0], shapes[s][1], shapes[s][2], 1,
                        form % 2 ? 1.f : 0.f, 0, 1e-5);
        snprintf(what, sizeof what, "%s %s vs gemm_f32 on rounded", cur.isa, names[f]);
        for (int s = 0; s < NSHAPES; s += 2)
            compare(what, fs[f], gemm_f32_on_rounded, s % 2, s / 2 % 2, shapes[s][0], shapes[s][1], shapes[s][2], 2,
                    0.f, 0, 1e-5);
    }
}

/* 1 x 1 products where the two units' arithmetic differs, each emulation's bits
 * stated, and the table's dot path bitwise its own emulation on them. */
static void test_dot_directed(void) {
    static const struct {
        int K;
        float a[6], b[6];
        uint32_t vdp, bfdot;
    } cs[] = {
        /* 1 + 2^-30: vdpbf16ps adds the odd k's product first and rounds to nearest (1);
         * BFDOT sums the pair first and rounds to odd (1 + 2^-23) */
        {2, {1.f, 0x1p-15f}, {1.f, 0x1p-15f}, 0x3f800000u, 0x3f800001u},
        /* 3 + 2^-24, a quarter of 3's ulp: to nearest 3, to odd 3 + 2^-22 */
        {2, {3.f, 0x1p-12f}, {1.f, 0x1p-12f}, 0x40400000u, 0x40400001u},
        /* -2^-128, below fp32's normals: flushed to -0; BFDOT adds the padding's +0
         * product to it first, giving +0; vdpbf16ps keeps -0 */
        {1, {-0x1p-64f}, {0x1p-64f}, 0x80000000u, 0x00000000u},
        /* 2^-120 - (2^-120 + 2^-127) at the third (last, odd) pair: flushed to -0 by both;
         * the +0 pair after an odd count gives BFDOT's path +0 */
        {6, {0.f, 0.f, 0x1p-60f, 0.f, -0x1.02p-60f, 0.f}, {0.f, 0.f, 0x1p-60f, 0.f, 0x1p-60f, 0.f}, 0x80000000u,
         0x00000000u},
        /* an exact sum: both agree */
        {2, {1.5f, -0.25f}, {2.f, 4.f}, 0x40000000u, 0x40000000u},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        float c[3];
        uint32_t u[3];
        gemm_fn fs[3] = {gemm_bf16_dot_scalar, gemm_bf16_bfdot_scalar, cur.gemm_bf16_dot};
        for (int f = 0; f < 3; f++) {
            c[f] = NAN;
            if (fs[f]) fs[f](0, 0, 1, 1, cs[i].K, cs[i].a, cs[i].K, cs[i].b, 1, 0.f, &c[f], 1);
            memcpy(&u[f], &c[f], 4);
        }
        CHECK(u[0] == cs[i].vdp, "case %zu: vdpbf16ps emulation %08x (%a), want %08x", i, u[0], c[0], cs[i].vdp);
        CHECK(u[1] == cs[i].bfdot, "case %zu: BFDOT emulation %08x (%a), want %08x", i, u[1], c[1], cs[i].bfdot);
        if (cur.gemm_bf16_dot) {
            float r = NAN;
            uint32_t ur;
            cur.gemm_bf16_dot_ref(0, 0, 1, 1, cs[i].K, cs[i].a, cs[i].K, cs[i].b, 1, 0.f, &r, 1);
            memcpy(&ur, &r, 4);
            CHECK(u[2] == ur, "%s %s case %zu: %08x (%a), its emulation %08x", cur.isa, cur.gemm_bf16_dot_name, i, u[2],
                  c[2], ur);
        }
    }
}

static void test_rounded(void) {
    char what[96];
    /* the scalar table's gemm_f32 is a plain loop, not the blocked driver: its order differs */
    int same_kernel = strcmp(cur.isa, "scalar") != 0;
    snprintf(what, sizeof what, "%s %s vs gemm_f32 on rounded", cur.isa, cur.gemm_bf16_rounded_name);
    for (int s = 0; s < NSHAPES; s++)
        for (int form = 0; form < 4; form++)
            compare(what, cur.gemm_bf16_rounded, shapes[s][0] > 2 ? gemm_f32_on_rounded : gemm_exact_rounded, form >> 1,
                    form & 1, shapes[s][0], shapes[s][1], shapes[s][2], (s % 2) * 5, (s + form) % 2 ? 1.f : 0.f, 0,
                    shapes[s][0] > 2 && same_kernel ? -1 : 1e-5);
    snprintf(what, sizeof what, "%s rounded path vs exact", cur.isa);
    for (int s = 0; s < NSHAPES; s++)
        compare(what, cur.gemm_bf16_rounded, gemm_exact_rounded, s % 2, s / 2 % 2, shapes[s][0], shapes[s][1], shapes[s][2],
                0, 0.f, 0, 1e-5);
}

/* round_bf16 against f32_to_bf16 + bf16_to_f32 (both RNE, NaN quiet), ties included. */
static void test_round(void) {
    float x[] = {1.0f + 0x1p-8f, 1.0f + 0x3p-8f, -1.0f - 0x1p-8f, 0x1.fffffep127f, INFINITY, -INFINITY, NAN, 0.f, -0.f,
                 1e-40f, -3e-39f, 0x1.0101p0f, 65504.f, 3.14159265f};
    float want[] = {1.0f, 1.0f + 0x4p-8f, -1.0f, INFINITY, INFINITY, -INFINITY, NAN, 0.f, -0.f};
    size_t n = sizeof x / sizeof *x;
    float y[16];
    memcpy(y, x, sizeof x);
    cur.round_bf16(y, n);
    for (size_t i = 0; i < n; i++) {
        float r = round_bf16_ref(x[i]);
        CHECK(!memcmp(&r, &y[i], 4) || (isnan(r) && isnan(y[i])), "%s round_bf16(%a) = %a, want %a", cur.isa, x[i], y[i], r);
        if (i < sizeof want / sizeof *want)
            CHECK(!memcmp(&want[i], &y[i], 4) || (isnan(want[i]) && isnan(y[i])), "%s round_bf16(%a) = %a, want %a",
                  cur.isa, x[i], y[i], want[i]);
    }
    /* long runs: every tail length */
    float a[203], b[203];
    fill_edgy(a, 203);
    for (int len = 0; len <= 203; len += 29) {
        memcpy(b, a, sizeof a);
        cur.round_bf16(b, (size_t)len);
        for (int i = 0; i < 203; i++) {
            float r = i < len ? round_bf16_ref(a[i]) : a[i];
            CHECK(!memcmp(&r, &b[i], 4), "%s round_bf16 len %d: [%d] %a want %a", cur.isa, len, i, b[i], r);
        }
    }
}

/* 1 vs 2 vs 3 threads, both paths, split along M and along N. */
static void test_threads(void) {
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    static const int sh[][3] = {{203, 301, 777}, {60, 900, 1501}};
    for (int s = 0; s < 2; s++) {
        int M = sh[s][0], N = sh[s][1], K = sh[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
        fill(A, (size_t)M * K); fill(B, (size_t)K * N);
        /* a dot-kernel variant of a table already run (neon/bfmmla, avx512/24x16) shares
         * its rounded path: only the dot path again (qemu is slow) */
        gemm_fn fns[2] = {cur.gemm_bf16_dot, strchr(cur_isa, '/') ? NULL : cur.gemm_bf16_rounded};
        for (int p = 0; p < 2; p++) {
            if (!fns[p]) continue;
            for (int form = 0; form < 3; form++) {
                int ta = form == 2, tb = form == 0, lda = ta ? M : K, ldb = tb ? K : N;
                omp_set_num_threads(1);
                fns[p](ta, tb, M, N, K, A, lda, B, ldb, 0.f, C1, N);
                for (int nth = 2; nth <= 3; nth++) {
                    omp_set_num_threads(nth);
                    fns[p](ta, tb, M, N, K, A, lda, B, ldb, 0.f, C2, N);
                    CHECK(!memcmp(C1, C2, sizeof(float) * M * N), "%s %s %dx%dx%d form %d: 1 vs %d threads differ",
                          cur.isa, p ? "rounded" : "dot", M, N, K, form, nth);
                }
            }
        }
        free(A); free(B); free(C1); free(C2);
    }
    omp_set_num_threads(saved);
#else
    test_skip("built without OpenMP");
#endif
}

/* kernels_select_bf16 keeps a path that exists; HONE_BF16_PATH forces it. */
static void test_select(void) {
    hone_kernels t = cur;
    char why[256];
    setenv("HONE_BF16_PATH", "rounded", 1);
    kernels_select_bf16(&t, why, sizeof why);
    CHECK(t.gemm_bf16 == t.gemm_bf16_rounded && strstr(why, t.gemm_bf16_rounded_name), "%s: forced rounded gave %s", cur.isa,
          why);
    setenv("HONE_BF16_PATH", "dot", 1);
    kernels_select_bf16(&t, why, sizeof why);
    CHECK(t.gemm_bf16 == (t.gemm_bf16_dot ? t.gemm_bf16_dot : t.gemm_bf16_rounded), "%s: forced dot gave %s", cur.isa, why);
    unsetenv("HONE_BF16_PATH");
    kernels_select_bf16(&t, why, sizeof why);
    CHECK(t.gemm_bf16 && t.gemm_bf16_path && strstr(why, t.gemm_bf16_path), "%s: chose %s", cur.isa, why);
    printf("    %s: %s\n", cur.isa, why);
}

int main(void) {
    kernels_init();
#if defined(__x86_64__)
    const char *isas[] = {"scalar", "avx2", "avx512", "avx512/24x16"};
#elif defined(__aarch64__)
    const char *isas[] = {"scalar", "neon", "neon/bfmmla"};
#else
    const char *isas[] = {"scalar"};
#endif
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        cur_isa = isas[i];
        int x16 = !strcmp(cur_isa, "avx512/24x16"), mmla = !strcmp(cur_isa, "neon/bfmmla");
        if (x16) setenv("HONE_BF16_GEMM", "24x16", 1);
        if (mmla) setenv("HONE_BF16_GEMM", "bfmmla", 1);
        int ok = kernels_get(x16 ? "avx512" : mmla ? "neon" : cur_isa, &cur) == 0;
        if (mmla && ok && !cur.gemm_bf16_dot) ok = 0; /* no Arm BF16 here */
        unsetenv("HONE_BF16_GEMM");
        struct { const char *name; void (*fn)(void); } cases[] = {
            {"dot_bitwise", test_dot_bitwise}, {"dot_accuracy", test_dot_accuracy}, {"dot_directed", test_dot_directed},
            {"rounded", test_rounded},
            {"round", test_round}, {"threads", test_threads}, {"select", test_select}};
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            char name[96];
            snprintf(name, sizeof name, "%s %s", cur_isa, cases[c].name);
            test_run(name, ok ? cases[c].fn : skip_isa);
        }
    }
    return test_finish();
}
