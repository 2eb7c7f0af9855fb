/* test_kernels_ggml.c — the GGML block quantisers (simd/ggml_quant.h): every ISA's q8_0 and
 * q4_0 against the scalar reference, bitwise (tolerance: none — the block bytes are a file
 * format), on 1..37 blocks with guard bytes after the output, on data with exact ties
 * (x * id landing on .5), all-zero blocks, equal magnitudes of both signs and wide ranges.
 * The scalar references themselves are checked against llama.cpp's bytes in test_gguf.c;
 * here every type also round-trips through its dequantiser within its step (q8_0: d/2 per
 * value, q4_0/q5_0: d/2 plus the clamp at the top, q4_K / q6_K: their 6-bit scale steps). */
#include "simd/ggml_quant.h"
#include "simd/kernels.h"
#include "test.h"
#include <stdint.h>

static unsigned long long rng_state = 0x2545F4914F6CDD1DULL;
static uint64_t rnd64(void) { return test_xorshift(&rng_state); }
static float frand(void) { return test_uniform(&rng_state); }

static hone_kernels ref, cur;
static const char *cur_isa;
static void skip_isa(void) { test_skip("%s not supported by this CPU/OS/build", cur_isa); }

/* block kind k of a test input: random, ties, zeros, +-equal, tiny, huge */
static void fill_block(float *x, int kind) {
    for (int j = 0; j < 32; j++) {
        switch (kind % 6) {
        case 0: x[j] = frand(); break;
        case 1: x[j] = (float)((int)(rnd64() % 253) - 126) + 0.5f; break; /* with amax 127: d = 1, x*id = n + .5 */
        case 2: x[j] = 0.0f; break;
        case 3: x[j] = (j % 3 == 0 ? -1.f : 1.f) * (j % 5 == 0 ? 2.f : frand()); break;
        case 4: x[j] = frand() * 1e-6f; break;
        case 5: x[j] = frand() * 3e4f; break;
        }
    }
    if (kind % 6 == 1) x[(kind / 6) % 32] = (kind & 1) ? 127.0f : -127.0f;
}

static void check_type(void (*f_ref)(const float *, void *, int64_t), void (*f)(const float *, void *, int64_t),
                       size_t bb, const char *what) {
    for (int nb = 1; nb <= 37; nb++) {
        float *x = malloc(sizeof(float) * 32 * nb + 4);
        uint8_t *a = malloc(bb * nb + 8), *b = malloc(bb * nb + 8);
        for (int i = 0; i < nb; i++) fill_block(x + 1 + 32 * i - 1, i + nb);
        memset(a, 0xA5, bb * nb + 8);
        memset(b, 0xA5, bb * nb + 8);
        f_ref(x, a, nb);
        f(x, b, nb);
        int diff = -1;
        for (size_t k = 0; k < bb * nb + 8; k++)
            if (a[k] != b[k]) { diff = (int)k; break; }
        CHECK(diff < 0, "%s %s: %d blocks differ from the scalar reference at byte %d", cur_isa, what, nb, diff);
        free(x); free(a); free(b);
    }
}

static void test_q8_0(void) { check_type(ref.quant_q8_0, cur.quant_q8_0, 34, "q8_0"); }
static void test_q4_0(void) { check_type(ref.quant_q4_0, cur.quant_q4_0, 18, "q4_0"); }

/* round trip of n values through type t: |x - dq(q(x))| <= bound(block) for every value */
static void roundtrip(int t, int n, double rel_step) {
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = frand() * (1 + (i / 256) % 4);
    size_t bytes = ggml_row_bytes(t, n);
    void *q = malloc(bytes);
    CHECK(bytes > 0, "%s: row bytes", ggml_type_name(t));
    CHECK(ggml_quant_row(t, x, q, n) == 0, "%s: quantise", ggml_type_name(t));
    CHECK(ggml_dequant_row(t, q, y, n) == 0, "%s: dequantise", ggml_type_name(t));
    int bs = ggml_type_block(t) < 32 ? 32 : ggml_type_block(t);
    for (int b = 0; b < n / bs; b++) {
        float amax = 0;
        for (int j = 0; j < bs; j++) amax = fmaxf(amax, fabsf(x[b * bs + j]));
        for (int j = 0; j < bs; j++) {
            int i = b * bs + j;
            CHECK(fabs(x[i] - y[i]) <= rel_step * amax + 1e-12, "%s: value %d: %g back as %g (bound %g * amax %g)",
                  ggml_type_name(t), i, x[i], y[i], rel_step, amax);
            if (fabs(x[i] - y[i]) > rel_step * amax + 1e-12) { b = n; break; }
        }
    }
    free(x); free(y); free(q);
}

/* bounds: half a step of the block scale (amax/127, amax/8, amax/16), plus the fp16 rounding
 * of the scale; the k-quants' 6-bit sub-block scales add up to a step of their own */
static void test_roundtrip(void) {
    roundtrip(GGML_T_Q8_0, 32 * 40, 0.5 / 127 + 1e-3);
    roundtrip(GGML_T_Q4_0, 32 * 40, 1.0 / 8 + 1e-3);   /* top value clamps at 7: one whole step */
    roundtrip(GGML_T_Q5_0, 32 * 40, 1.0 / 16 + 1e-3);
    roundtrip(GGML_T_Q4_K, 256 * 6, 1.5 / 15);
    roundtrip(GGML_T_Q6_K, 256 * 6, 1.5 / 31);
    roundtrip(GGML_T_F16, 256, 1e-3);
    roundtrip(GGML_T_BF16, 256, 8e-3);
}

static void test_f16(void) { /* ggml's fp16: round to nearest even, subnormals, overflow to inf */
    CHECK(ggml_f32_to_f16(1.0f) == 0x3c00, "1.0");
    CHECK(ggml_f32_to_f16(65504.f) == 0x7bff, "max");
    CHECK(ggml_f32_to_f16(65520.f) == 0x7c00, "rounds to inf");
    CHECK(ggml_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie to even down");
    CHECK(ggml_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie to even up");
    CHECK(ggml_f32_to_f16(0x1p-24f) == 0x0001, "smallest subnormal");
    CHECK(ggml_f32_to_f16(-0.0f) == 0x8000, "-0");
    for (uint32_t h = 0; h < 0x7c00; h++) CHECK(ggml_f32_to_f16(ggml_f16_to_f32((uint16_t)h)) == h, "round trip %x", h);
}

int main(void) {
    kernels_get("scalar", &ref);
    kernels_init();
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
        snprintf(name, sizeof name, "%s q8_0", cur_isa);
        test_run(name, ok ? test_q8_0 : skip_isa);
        snprintf(name, sizeof name, "%s q4_0", cur_isa);
        test_run(name, ok ? test_q4_0 : skip_isa);
    }
    TEST_RUN(test_roundtrip);
    TEST_RUN(test_f16);
    return test_finish();
}
