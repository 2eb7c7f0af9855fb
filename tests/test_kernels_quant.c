/* test_kernels_quant.c — the held-weight kernels (simd/quant.h) checkasm style: every ISA
 * this CPU runs (AVX2, AVX-512; NEON under make check-neon) against the scalar reference on
 * odd offsets and lengths (dequant_4bit_f32 with NF4 and FP4 codebooks, dequant_int8_f32),
 * and the quantised GEMMs (simd/qgemm.c: the weight dequantised inside the GEMM's B packing)
 * against the table's GEMM of the fully dequantised weight for bf16, int8, NF4, FP4 (plain and
 * nested) on odd shapes (odd K: the pair path's padded last pair; shapes past one KC / NC block
 * of the packs), beta 0 and 1, and at 1 and several threads: qgemm_xwt / qgemm_xw against
 * gemm_f32 on every ISA (scalar: its plain-loop GEMM), qgemm_*_bf16 against gemm_bf16 with
 * gemm_bf16 set to the dot-unit path (where the CPU has one) and to the rounded-operand path.
 * LoRA's dropout_f32 (kept here with the held-weight kernels) against the scalar reference on odd
 * element offsets and lengths, plain and accumulating, p from 0 to 0.999, with inf / NaN / -0
 * inputs (their products with a dropped 0 must match too).
 * Tolerance: 0 everywhere. The dequant kernels only multiply (no FMA, no reassociation), and
 * the GEMM's sum order over K never depends on the column range or thread count
 * (simd/gemm.h), so all of these are bitwise equalities. */
#include "simd/kernels.h"
#include "simd/quant.h"
#include "test.h"
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static unsigned long long rs = 0x9e3779b97f4a7c15ULL;
static float frand(void) { return test_uniform(&rs); }

static hone_kernels cur;
static const char *cur_isa;

static void test_dequant_kernels(void) {
    hone_kernels ref;
    kernels_get("scalar", &ref);
    if (kernels_get(cur_isa, &cur) < 0) { test_skip("%s not supported by this CPU/OS/build", cur_isa); return; }
    uint8_t packed[512];
    int8_t q8[600];
    float scale[16], a[1100], b[1100];
    for (int i = 0; i < 512; i++) packed[i] = (uint8_t)(frand() * 127.f + 128.f);
    for (int i = 0; i < 600; i++) q8[i] = (int8_t)(frand() * 127.f);
    for (int i = 0; i < 16; i++) scale[i] = 0.01f + fabsf(frand());
    const float *codes[2] = {hone_q_nf4, hone_q_fp4};
    int bad = 0;
    for (int c = 0; c < 2; c++)
        for (size_t i0 = 0; i0 < 80; i0 += 7)
            for (int n = 0; n < 300 && !bad; n += 13) {
                ref.dequant_4bit_f32(a, packed, i0, n, codes[c], scale);
                cur.dequant_4bit_f32(b, packed, i0, n, codes[c], scale);
                if (memcmp(a, b, sizeof(float) * n)) {
                    CHECK(0, "%s dequant_4bit code %d i0 %zu n %d differs from scalar", cur_isa, c, i0, n);
                    bad = 1;
                }
            }
    for (int off = 0; off < 9; off++)
        for (int n = 0; n < 520; n += 17) {
            ref.dequant_int8_f32(a, q8 + off, n, 0.37f);
            cur.dequant_int8_f32(b, q8 + off, n, 0.37f);
            CHECK(!memcmp(a, b, sizeof(float) * n), "%s dequant_int8 off %d n %d differs from scalar", cur_isa, off, n);
        }
}

static void test_dropout_kernel(void) {
    hone_kernels ref;
    kernels_get("scalar", &ref);
    if (kernels_get(cur_isa, &cur) < 0) { test_skip("%s not supported by this CPU/OS/build", cur_isa); return; }
    enum { L = 1200 };
    float x[L], y0[L], y1[L], base[L];
    for (int i = 0; i < L; i++) x[i] = frand(), base[i] = frand();
    x[3] = 1.f / 0.f, x[17] = -0.f, x[40] = 0.f / 0.f, x[41] = -1.f / 0.f;
    static const float ps[] = {0.f, 0.05f, 0.5f, 0.999f};
    int bad = 0;
    for (size_t pi = 0; pi < sizeof ps / sizeof *ps && !bad; pi++)
        for (size_t i0 = 0; i0 < 40 && !bad; i0 += 7)
            for (int n = 0; n < 1100 && !bad; n += 37)
                for (int acc = 0; acc < 2; acc++) {
                    memcpy(y0, base, sizeof y0);
                    memcpy(y1, base, sizeof y1);
                    uint64_t seed = 0x1234567ULL * (pi + 1) + i0;
                    ref.dropout_f32(y0, x, i0 * 1000003, (size_t)n, ps[pi], seed, acc);
                    cur.dropout_f32(y1, x, i0 * 1000003, (size_t)n, ps[pi], seed, acc);
                    if (memcmp(y0, y1, sizeof y0)) {
                        CHECK(0, "%s dropout p %g i0 %zu n %d acc %d differs from scalar", cur_isa, ps[pi], i0 * 1000003, n, acc);
                        bad = 1;
                        break;
                    }
                }
}

/* one held weight (OC, IC) of type, both products against the fp32 GEMM of its dequantised
 * copy, at 1 thread and at the default count */
static void check_qgemm(int type, int nested, int N, int OC, int IC, float beta, int bf16) {
    hone_qtensor W;
    float *w = malloc(sizeof(float) * OC * IC), *wd = malloc(sizeof(float) * OC * IC);
    float *x = malloc(sizeof(float) * N * IC), *dy = malloc(sizeof(float) * N * OC);
    float *y0 = malloc(sizeof(float) * N * OC), *y1 = malloc(sizeof(float) * N * OC), *y2 = malloc(sizeof(float) * N * OC);
    float *d0 = malloc(sizeof(float) * N * IC), *d1 = malloc(sizeof(float) * N * IC), *d2 = malloc(sizeof(float) * N * IC);
    for (int i = 0; i < OC * IC; i++) w[i] = 0.05f * frand();
    for (int i = 0; i < N * IC; i++) x[i] = frand();
    for (int i = 0; i < N * OC; i++) dy[i] = frand(), y0[i] = y1[i] = y2[i] = frand();
    for (int i = 0; i < N * IC; i++) d0[i] = d1[i] = d2[i] = frand();
    CHECK(qtensor_alloc(&W, type, nested, OC, IC) == 0, "alloc");
    qtensor_quantize(&W, w);
    qtensor_dequant_rect(&W, 0, OC, 0, IC, wd, IC);
    void (*gemm)(int, int, int, int, int, const float *, int, const float *, int, float, float *, int) =
        bf16 ? hone_kt.gemm_bf16 : hone_kt.gemm_f32;
    void (*xwt)(int, const float *, int, const hone_qtensor *, float, float *, int) = bf16 ? qgemm_xwt_bf16 : qgemm_xwt;
    void (*xw)(int, const float *, int, const hone_qtensor *, float, float *, int) = bf16 ? qgemm_xw_bf16 : qgemm_xw;
    gemm(0, 1, N, OC, IC, x, IC, wd, IC, beta, y0, OC);
    gemm(0, 0, N, IC, OC, dy, OC, wd, IC, beta, d0, IC);
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    xwt(N, x, IC, &W, beta, y1, OC);
    xw(N, dy, OC, &W, beta, d1, IC);
#ifdef _OPENMP
    omp_set_num_threads(nt > 1 ? nt : 3);
#endif
    xwt(N, x, IC, &W, beta, y2, OC);
    xw(N, dy, OC, &W, beta, d2, IC);
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    const char *tn = quant_type_name(type), *pn = bf16 ? hone_kt.gemm_bf16_path : "fp32";
    CHECK(!memcmp(y0, y1, sizeof(float) * N * OC), "%s%s X W^T %dx%dx%d beta %g (1 thread) != %s gemm of dequantised W", tn,
          nested ? " nested" : "", N, OC, IC, beta, pn);
    CHECK(!memcmp(y0, y2, sizeof(float) * N * OC), "%s X W^T %dx%dx%d (%s): thread count changed bits", tn, N, OC, IC, pn);
    CHECK(!memcmp(d0, d1, sizeof(float) * N * IC), "%s%s dY W %dx%dx%d beta %g (1 thread) != %s gemm of dequantised W", tn,
          nested ? " nested" : "", N, OC, IC, beta, pn);
    CHECK(!memcmp(d0, d2, sizeof(float) * N * IC), "%s dY W %dx%dx%d (%s): thread count changed bits", tn, N, OC, IC, pn);
    qtensor_free(&W);
    free(w); free(wd); free(x); free(dy); free(y0); free(y1); free(y2); free(d0); free(d1); free(d2);
}

static void test_qgemm(void) {
    if (kernels_get(cur_isa, &hone_kt) < 0) { test_skip("%s not supported by this CPU/OS/build", cur_isa); return; }
    /* (N, OC, IC): one and two rows (the GEMV path), odd sizes, K past one KC block both ways,
     * N past one NC block of B (the dX product's 9000 columns) */
    static const int shapes[][3] = {{1, 37, 70}, {2, 64, 128}, {7, 130, 96}, {33, 257, 75}, {64, 96, 1100}, {5, 1100, 1031},
                                    {3, 16, 9000}, {3, 4100, 1030}, {4, 1030, 4100}, {40, 77, 9000}};
    /* under qemu (make check-neon: HONE_TEST_QEMU, set by tests/run.sh) the last three, each
     * 8-30 M multiply-adds per product over every type and path, would take most of CI's
     * emulated minutes; {3, 16, 9000} keeps K past one KC block (X W^T) and N past one NC
     * block (dY W) there */
    size_t nshapes = sizeof shapes / sizeof *shapes;
    if (getenv("HONE_TEST_QEMU")) nshapes -= 3;
    /* fp32; bf16 on the dot unit (when there is one); bf16 on rounded operands */
    for (int prec = 0; prec < 3; prec++) {
        if (prec == 1 && !hone_kt.gemm_bf16_dot) continue;
        if (prec) hone_kt.gemm_bf16 = prec == 1 ? hone_kt.gemm_bf16_dot : hone_kt.gemm_bf16_rounded;
        if (prec) hone_kt.gemm_bf16_path = prec == 1 ? hone_kt.gemm_bf16_dot_name : hone_kt.gemm_bf16_rounded_name;
        for (int t = HONE_Q_F32; t < HONE_Q_NTYPES; t++)
            for (size_t s = 0; s < nshapes; s++)
                for (int nested = 0; nested < (t >= HONE_Q_NF4 ? 2 : 1); nested++)
                    check_qgemm(t, nested, shapes[s][0], shapes[s][1], shapes[s][2], s & 1 ? 1.f : 0.f, prec > 0);
    }
    kernels_init();
}

int main(void) {
    kernels_init();
#if defined(__x86_64__)
    const char *isas[] = {"scalar", "avx2", "avx512"};
#elif defined(__aarch64__)
    const char *isas[] = {"scalar", "neon"};
#else
    const char *isas[] = {"scalar"};
#endif
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        cur_isa = isas[i];
        char name[64];
        snprintf(name, sizeof name, "%s dequant_kernels", cur_isa);
        test_run(name, test_dequant_kernels);
        snprintf(name, sizeof name, "%s dropout", cur_isa);
        test_run(name, test_dropout_kernel);
        snprintf(name, sizeof name, "%s qgemm", cur_isa);
        test_run(name, test_qgemm);
    }
    return test_finish();
}
