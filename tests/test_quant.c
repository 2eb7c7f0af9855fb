/* test_quant.c — held-weight quantisation against bitsandbytes 0.50's CPU backend
 * (tests/fixtures/quant/quant.safetensors, written by tests/reference/quant_ref.py):
 * NF4 and FP4, plain and nested (compress_statistics), and int8 (Int8Params). Every
 * comparison is bitwise (tolerance 0): the packed codes, the absmax / nested statistics,
 * and the dequantised values both from hone's own quantisation and from bitsandbytes'
 * stored state. Runs under the best ISA of this CPU (the dequant kernels); the per-ISA
 * kernels against the scalar reference are in test_kernels_quant.c. */
#include "simd/kernels.h"
#include "simd/quant.h"
#include "model/safetensors.h"
#include "test.h"

static st_file fx;
static int fx_ok;

static const st_tensor *get(const char *name) {
    const st_tensor *t = st_find(&fx, name);
    CHECK(t != NULL, "fixture tensor %s missing", name);
    return t;
}
static const void *raw(const st_tensor *t) { return fx.data + t->offset; }

/* count of differing 32-bit words / bytes, first one reported */
static int diff_f32(const float *a, const float *b, size_t n, const char *what) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4)) {
            if (!bad) CHECK(0, "%s[%zu]: got %.9g want %.9g (bitwise)", what, i, a[i], b[i]);
            bad++;
        }
    if (bad) printf("  %s: %d of %zu differ\n", what, bad, n);
    return bad;
}
static int diff_u8(const uint8_t *a, const uint8_t *b, size_t n, const char *what) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            if (!bad) CHECK(0, "%s[%zu]: got 0x%02x want 0x%02x", what, i, a[i], b[i]);
            bad++;
        }
    if (bad) printf("  %s: %d of %zu differ\n", what, bad, n);
    return bad;
}

static void test_dynamic_map(void) {
    if (!fx_ok) { test_skip("no fixture"); return; }
    const st_tensor *t = get("code.dynamic");
    if (t) diff_f32(quant_dynamic_map(), raw(t), 256, "dynamic map");
}

static const char *cases[] = {"small", "rem", "nest", "edge"};

static void check_4bit(const char *cs, int type, int nested) {
    char k[128];
    snprintf(k, sizeof k, "%s.shape", cs);
    const int32_t *shape = raw(get(k));
    int R = shape[0], Cc = shape[1];
    size_t n = (size_t)R * Cc, nb = (n + 63) / 64;
    snprintf(k, sizeof k, "%s.x", cs);
    const float *x = raw(get(k));
    char pre[96];
    snprintf(pre, sizeof pre, "%s.%s%s", cs, quant_type_name(type), nested ? ".nested" : "");
    hone_qtensor q;
    CHECK(qtensor_alloc(&q, type, nested, R, Cc) == 0, "alloc");
    qtensor_quantize(&q, x);
    snprintf(k, sizeof k, "%s.packed", pre);
    diff_u8(q.data, raw(get(k)), (n + 1) / 2, k);
    if (nested) {
        snprintf(k, sizeof k, "%s.offset", pre);
        const float *off = raw(get(k));
        CHECK(!memcmp(&q.offset, off, 4), "%s: got %.9g want %.9g (bitwise)", k, q.offset, *off);
        snprintf(k, sizeof k, "%s.qabsmax", pre);
        diff_u8(q.qabsmax, raw(get(k)), nb, k);
        snprintf(k, sizeof k, "%s.absmax2", pre);
        diff_f32(q.absmax, raw(get(k)), (nb + 255) / 256, k);
    } else {
        snprintf(k, sizeof k, "%s.absmax", pre);
        diff_f32(q.absmax, raw(get(k)), nb, k);
    }
    snprintf(k, sizeof k, "%s.deq", pre);
    const float *want = raw(get(k));
    float *got = malloc(sizeof(float) * n);
    qtensor_dequant_rect(&q, 0, R, 0, Cc, got, Cc);
    diff_f32(got, want, n, k);
    /* bitsandbytes' own state through hone's dequantiser */
    snprintf(k, sizeof k, "%s.packed", pre);
    memcpy(q.data, raw(get(k)), (n + 1) / 2);
    if (nested) {
        snprintf(k, sizeof k, "%s.qabsmax", pre);
        memcpy(q.qabsmax, raw(get(k)), nb);
        snprintf(k, sizeof k, "%s.absmax2", pre);
        memcpy(q.absmax, raw(get(k)), 4 * ((nb + 255) / 256));
        snprintf(k, sizeof k, "%s.offset", pre);
        memcpy(&q.offset, raw(get(k)), 4);
    } else {
        snprintf(k, sizeof k, "%s.absmax", pre);
        memcpy(q.absmax, raw(get(k)), 4 * nb);
    }
    qtensor_dequant_rect(&q, 0, R, 0, Cc, got, Cc);
    snprintf(k, sizeof k, "%s.deq from bnb state", pre);
    diff_f32(got, want, n, k);
    free(got);
    qtensor_free(&q);
}

static void test_nf4(void) {
    if (!fx_ok) { test_skip("no fixture"); return; }
    for (int c = 0; c < 4; c++) check_4bit(cases[c], HONE_Q_NF4, 0);
}
static void test_fp4(void) {
    if (!fx_ok) { test_skip("no fixture"); return; }
    for (int c = 0; c < 4; c++) check_4bit(cases[c], HONE_Q_FP4, 0);
}
static void test_nf4_nested(void) {
    if (!fx_ok) { test_skip("no fixture"); return; }
    for (int c = 0; c < 4; c++) check_4bit(cases[c], HONE_Q_NF4, 1);
}
static void test_fp4_nested(void) {
    if (!fx_ok) { test_skip("no fixture"); return; }
    for (int c = 0; c < 4; c++) check_4bit(cases[c], HONE_Q_FP4, 1);
}

static void test_int8(void) {
    if (!fx_ok) { test_skip("no fixture"); return; }
    for (int c = 0; c < 4; c++) {
        char k[128];
        snprintf(k, sizeof k, "%s.shape", cases[c]);
        const int32_t *shape = raw(get(k));
        int R = shape[0], Cc = shape[1];
        size_t n = (size_t)R * Cc;
        snprintf(k, sizeof k, "%s.x", cases[c]);
        const float *x = raw(get(k));
        hone_qtensor q;
        CHECK(qtensor_alloc(&q, HONE_Q_INT8, 0, R, Cc) == 0, "alloc");
        qtensor_quantize(&q, x);
        snprintf(k, sizeof k, "%s.int8.q", cases[c]);
        diff_u8(q.data, raw(get(k)), n, k);
        snprintf(k, sizeof k, "%s.int8.scb", cases[c]);
        diff_f32(q.absmax, raw(get(k)), R, k);
        float *got = malloc(sizeof(float) * n);
        qtensor_dequant_rect(&q, 0, R, 0, Cc, got, Cc);
        snprintf(k, sizeof k, "%s.int8.deq", cases[c]);
        diff_f32(got, raw(get(k)), n, k);
        free(got);
        qtensor_free(&q);
    }
}

/* bytes per parameter as documented in docs/quantization.md */
static void test_bytes(void) {
    long R = 4096, C = 4096;
    double n = (double)R * C;
    CHECK(qweight_bytes(HONE_Q_F32, 0, R, C) == (size_t)(4 * n), "f32 bytes");
    CHECK(qweight_bytes(HONE_Q_BF16, 0, R, C) == (size_t)(2 * n), "bf16 bytes");
    CHECK(qweight_bytes(HONE_Q_INT8, 0, R, C) == (size_t)n + 4 * R, "int8 bytes");
    CHECK(qweight_bytes(HONE_Q_NF4, 0, R, C) == (size_t)(n / 2 + n / 64 * 4), "nf4 bytes");
    CHECK(qweight_bytes(HONE_Q_NF4, 1, R, C) == (size_t)(n / 2 + n / 64 + n / 64 / 256 * 4), "nf4 nested bytes");
}

int main(void) {
    kernels_init();
    hone_error err = {{0}};
    fx_ok = st_open(&fx, test_src("tests/fixtures/quant/quant.safetensors"), &err) == 0;
    if (!fx_ok) printf("  fixture: %s\n", err.msg);
    TEST_RUN(test_dynamic_map);
    TEST_RUN(test_nf4);
    TEST_RUN(test_fp4);
    TEST_RUN(test_nf4_nested);
    TEST_RUN(test_fp4_nested);
    TEST_RUN(test_int8);
    TEST_RUN(test_bytes);
    if (fx_ok) st_close(&fx);
    return test_finish();
}
