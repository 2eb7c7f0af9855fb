/* simd/quant.c — quantisation of held weights, bit-equal to bitsandbytes 0.50's CPU
 * backend (see quant.h for the exact rules), the scalar dequantisation references and
 * the rectangle dequantiser the quantised GEMMs (qgemm.c) call. Built without ISA flags:
 * the per-ISA dequant kernels are in quant_avx2.c / quant_avx512.c behind the kernel table. */
#include "simd/quant.h"
#include "simd/kernels.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* bitsandbytes.functional.get_4bit_type("nf4") (create_normal_map(0.9677083)), as fp32 */
const float hone_q_nf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                              -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                              0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                              0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
/* get_4bit_type("fp4"): 1 sign, 2 exponent, 1 mantissa bit, bias 2, divided by its max 12 */
const float hone_q_fp4[16] = {0.0f, 0.0625f / 12.f, 8.f / 12.f, 1.0f, 4.f / 12.f, 0.5f, 2.f / 12.f, 0.25f,
                              -0.0f, -0.0625f / 12.f, -8.f / 12.f, -1.0f, -4.f / 12.f, -0.5f, -2.f / 12.f, -0.25f};
/* torch.argsort of each codebook (the bucket -> code map of the default backend's
 * quantize_4bit). FP4 holds +0 and -0: argsort puts +0 (code 0) first, so a scaled value
 * in (0, midpoint] takes code 8 (-0), as bitsandbytes does. */
static const uint8_t order_fp4[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};

const float *quant_code4(int type) { return type == HONE_Q_FP4 ? hone_q_fp4 : hone_q_nf4; }

/* bitsandbytes' CPU dequantiser gives FP4 code 8 the value +0 in its vector path (rows of a
 * multiple of 16 columns) and -0 in its scalar one (measured on 0.50.2): the codebook a
 * dequantisation of t uses, so that even the sign of zero matches */
static const float fp4_pos0[16] = {0.0f, 0.0625f / 12.f, 8.f / 12.f, 1.0f, 4.f / 12.f, 0.5f, 2.f / 12.f, 0.25f,
                                   0.0f, -0.0625f / 12.f, -8.f / 12.f, -1.0f, -4.f / 12.f, -0.5f, -2.f / 12.f, -0.25f};
static const float *dequant_code(const hone_qtensor *t) {
    if (t->type != HONE_Q_FP4) return hone_q_nf4;
    return t->cols % 16 == 0 ? fp4_pos0 : hone_q_fp4;
}

/* create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), sorted, as the state of
 * bitsandbytes' quantize_blockwise keeps it (entry 0 is -0.99297, not -1): the codebook of
 * the nested absmax. Written out from tests/fixtures/quant (code.dynamic) rather than
 * rebuilt, since it is a product of torch.linspace's own rounding. */
static const float dyn_map[256] = {
    -0x1.fc6666p-1f, -0x1.f53334p-1f, -0x1.eep-1f, -0x1.e6ccccp-1f, -0x1.df999ap-1f, -0x1.d86666p-1f,
    -0x1.d13334p-1f, -0x1.cap-1f, -0x1.c2ccccp-1f, -0x1.bb999ap-1f, -0x1.b46666p-1f, -0x1.ad3334p-1f,
    -0x1.a6p-1f, -0x1.9eccccp-1f, -0x1.97999ap-1f, -0x1.906666p-1f, -0x1.893334p-1f, -0x1.82p-1f,
    -0x1.7accccp-1f, -0x1.73999ap-1f, -0x1.6c6668p-1f, -0x1.653334p-1f, -0x1.5ep-1f, -0x1.56ccccp-1f,
    -0x1.4f999ap-1f, -0x1.486668p-1f, -0x1.413334p-1f, -0x1.3ap-1f, -0x1.32ccccp-1f, -0x1.2b999ap-1f,
    -0x1.246668p-1f, -0x1.1d3334p-1f, -0x1.16p-1f, -0x1.0eccccp-1f, -0x1.079998p-1f, -0x1.006666p-1f,
    -0x1.f26664p-2f, -0x1.e4p-2f, -0x1.d59998p-2f, -0x1.c73334p-2f, -0x1.b8ccccp-2f, -0x1.aa6666p-2f,
    -0x1.9cp-2f, -0x1.8d9998p-2f, -0x1.7f3334p-2f, -0x1.70ccccp-2f, -0x1.626666p-2f, -0x1.54p-2f,
    -0x1.459998p-2f, -0x1.373334p-2f, -0x1.28ccccp-2f, -0x1.1a6668p-2f, -0x1.0cp-2f, -0x1.fb3332p-3f,
    -0x1.de6666p-3f, -0x1.c1999ap-3f, -0x1.a4ccccp-3f, -0x1.88p-3f, -0x1.6b3334p-3f, -0x1.4e6666p-3f,
    -0x1.31999ap-3f, -0x1.14ccccp-3f, -0x1.fp-4f, -0x1.b66668p-4f, -0x1.93d70ap-4f, -0x1.8851eep-4f,
    -0x1.7ccccep-4f, -0x1.7147aep-4f, -0x1.65c29p-4f, -0x1.5a3d7p-4f, -0x1.4eb854p-4f, -0x1.433334p-4f,
    -0x1.37ae14p-4f, -0x1.2c28f6p-4f, -0x1.20a3d6p-4f, -0x1.151ebap-4f, -0x1.09999ap-4f, -0x1.fc28f6p-5f,
    -0x1.e51ebap-5f, -0x1.ce147ap-5f, -0x1.b70a3ep-5f, -0x1.ap-5f, -0x1.88f5c2p-5f, -0x1.71eb86p-5f,
    -0x1.5ae146p-5f, -0x1.43d70ap-5f, -0x1.2ccccep-5f, -0x1.15c29p-5f, -0x1.fd70a4p-6f, -0x1.cf5c2ap-6f,
    -0x1.a147aep-6f, -0x1.733334p-6f, -0x1.451ebap-6f, -0x1.170a3ep-6f, -0x1.d1eb86p-7f, -0x1.75c29p-7f,
    -0x1.3e76c8p-7f, -0x1.2c083p-7f, -0x1.19999ap-7f, -0x1.072b02p-7f, -0x1.e978d4p-8f, -0x1.c49ba6p-8f,
    -0x1.9fbe76p-8f, -0x1.7ae148p-8f, -0x1.56041ap-8f, -0x1.3126e8p-8f, -0x1.0c49bap-8f, -0x1.ced914p-9f,
    -0x1.851eb8p-9f, -0x1.3b645ap-9f, -0x1.e353f8p-10f, -0x1.4fdf3ap-10f, -0x1.eecbfep-11f, -0x1.b3d07cp-11f,
    -0x1.78d5p-11f, -0x1.3dd982p-11f, -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
    -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f, -0x1.040bfep-17f, -0x1.b43528p-19f,
    -0x1.27476ep-21f, 0.0f, 0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f,
    0x1.6f0068p-15f, 0x1.15df66p-14f, 0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f,
    0x1.02de02p-11f, 0x1.3dd982p-11f, 0x1.78d5p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f,
    0x1.e353f8p-10f, 0x1.3b645ap-9f, 0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f,
    0x1.56041ap-8f, 0x1.7ae148p-8f, 0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f,
    0x1.19999ap-7f, 0x1.2c083p-7f, 0x1.3e76c8p-7f, 0x1.75c29p-7f, 0x1.d1eb86p-7f, 0x1.170a3ep-6f,
    0x1.451ebap-6f, 0x1.733334p-6f, 0x1.a147aep-6f, 0x1.cf5c2ap-6f, 0x1.fd70a4p-6f, 0x1.15c29p-5f,
    0x1.2ccccep-5f, 0x1.43d70ap-5f, 0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.ap-5f,
    0x1.b70a3ep-5f, 0x1.ce147ap-5f, 0x1.e51ebap-5f, 0x1.fc28f6p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f,
    0x1.20a3d6p-4f, 0x1.2c28f6p-4f, 0x1.37ae14p-4f, 0x1.433334p-4f, 0x1.4eb854p-4f, 0x1.5a3d7p-4f,
    0x1.65c29p-4f, 0x1.7147aep-4f, 0x1.7ccccep-4f, 0x1.8851eep-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f,
    0x1.fp-4f, 0x1.14ccccp-3f, 0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3334p-3f, 0x1.88p-3f,
    0x1.a4ccccp-3f, 0x1.c1999ap-3f, 0x1.de6666p-3f, 0x1.fb3332p-3f, 0x1.0cp-2f, 0x1.1a6668p-2f,
    0x1.28ccccp-2f, 0x1.373334p-2f, 0x1.459998p-2f, 0x1.54p-2f, 0x1.626666p-2f, 0x1.70ccccp-2f,
    0x1.7f3334p-2f, 0x1.8d9998p-2f, 0x1.9cp-2f, 0x1.aa6666p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f,
    0x1.d59998p-2f, 0x1.e4p-2f, 0x1.f26664p-2f, 0x1.006666p-1f, 0x1.079998p-1f, 0x1.0eccccp-1f,
    0x1.16p-1f, 0x1.1d3334p-1f, 0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3ap-1f,
    0x1.413334p-1f, 0x1.486668p-1f, 0x1.4f999ap-1f, 0x1.56ccccp-1f, 0x1.5ep-1f, 0x1.653334p-1f,
    0x1.6c6668p-1f, 0x1.73999ap-1f, 0x1.7accccp-1f, 0x1.82p-1f, 0x1.893334p-1f, 0x1.906666p-1f,
    0x1.97999ap-1f, 0x1.9eccccp-1f, 0x1.a6p-1f, 0x1.ad3334p-1f, 0x1.b46666p-1f, 0x1.bb999ap-1f,
    0x1.c2ccccp-1f, 0x1.cap-1f, 0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df999ap-1f, 0x1.e6ccccp-1f,
    0x1.eep-1f, 0x1.f53334p-1f, 0x1.fc6666p-1f, 0x1p+0f,
};
const float *quant_dynamic_map(void) { return dyn_map; }

const char *quant_type_name(int type) {
    static const char *n[] = {"float32", "bfloat16", "int8", "nf4", "fp4"};
    return type >= 0 && type < HONE_Q_NTYPES ? n[type] : "?";
}
int quant_type_from_name(const char *s) {
    for (int t = 0; t < HONE_Q_NTYPES; t++)
        if (!strcmp(s, quant_type_name(t))) return t;
    return -1;
}

static size_t nblocks(size_t n, size_t b) { return (n + b - 1) / b; }

/* the pieces of one allocation, 64-byte aligned each */
static size_t part(size_t bytes) { return (bytes + 63) / 64 * 64; }
static void layout(int type, int nested, long rows, long cols, size_t sz[3]) {
    size_t n = (size_t)rows * cols, nb = nblocks(n, HONE_Q_BLOCK);
    sz[0] = sz[1] = sz[2] = 0;
    switch (type) {
    case HONE_Q_F32: sz[0] = n * 4; break;
    case HONE_Q_BF16: sz[0] = n * 2; break;
    case HONE_Q_INT8: sz[0] = n; sz[1] = (size_t)rows * 4; break;
    default:
        sz[0] = (n + 1) / 2;
        if (nested) sz[1] = nblocks(nb, HONE_Q_NEST_BLOCK) * 4, sz[2] = nb;
        else sz[1] = nb * 4;
    }
}

size_t qweight_bytes(int type, int nested, long rows, long cols) {
    size_t sz[3];
    layout(type, nested, rows, cols, sz);
    return sz[0] + sz[1] + sz[2];
}

int qtensor_alloc(hone_qtensor *t, int type, int nested, int rows, int cols) {
    memset(t, 0, sizeof *t);
    size_t sz[3];
    if (type != HONE_Q_NF4 && type != HONE_Q_FP4) nested = 0;
    layout(type, nested, rows, cols, sz);
    size_t total = part(sz[0]) + part(sz[1]) + part(sz[2]);
    char *p = aligned_alloc(64, total ? total : 64);
    if (!p) return -1;
    memset(p, 0, total);
    t->type = type, t->nested = nested, t->rows = rows, t->cols = cols;
    t->mem = p;
    t->data = p;
    if (sz[1]) t->absmax = (float *)(p + part(sz[0]));
    if (sz[2]) t->qabsmax = (uint8_t *)(p + part(sz[0]) + part(sz[1]));
    return 0;
}

void qtensor_free(hone_qtensor *t) {
    free(t->mem);
    memset(t, 0, sizeof *t);
}

/* ---- 4-bit quantisation (bitsandbytes' default-backend quantize_4bit) ---- */

/* the bucket of s among the 15 midpoints: the number of midpoints strictly below s
 * (torch.bucketize, right=False), mapped to the code */
static uint8_t code4_of(float s, const float mid[15], int fp4) {
    int i = 0;
    while (i < 15 && mid[i] < s) i++;
    return fp4 ? order_fp4[i] : (uint8_t)i;
}

static void midpoints(int type, float mid[15]) {
    const float *c = quant_code4(type);
    float sorted[16];
    for (int i = 0; i < 16; i++) sorted[i] = type == HONE_Q_FP4 ? c[order_fp4[i]] : c[i];
    for (int i = 0; i < 15; i++) mid[i] = (sorted[i] + sorted[i + 1]) / 2.0f;
}

/* one block of m elements starting at element e0 (even, a block start); codes into the
 * packed bytes; returns the stored absmax */
static float quant4_block(const float *x, size_t e0, int m, int full, const float mid[15], int fp4, uint8_t *packed) {
    float am = 0.f;
    for (int k = 0; k < m; k++) am = fmaxf(am, fabsf(x[k]));
    float amc = fmaxf(am, 1e-38f);
    float inv = 1.0f / amc;
    for (int k = 0; k < m; k += 2) {
        uint8_t q[2];
        for (int h = 0; h < 2; h++) {
            float s = 0.f; /* the pad of an odd count scales to 0 */
            if (k + h < m) {
                s = full ? x[k + h] * inv : x[k + h] / amc;
                s = s < -1.f ? -1.f : s > 1.f ? 1.f : s;
            }
            q[h] = code4_of(s, mid, fp4);
        }
        packed[(e0 + k) / 2] = (uint8_t)(q[0] << 4 | q[1]);
    }
    return full ? am : amc;
}

/* bitsandbytes 0.50's quantize_cpu (the nested absmax): a 65536-bin table over [-1, 1]
 * maps a normalised value to the first map entry whose upper midpoint is not below the
 * bin's value, so codes are the nearest entry up to the bin width (3e-5): reproduced bin
 * for bin (measured equal on every fixture block). */
#define LUT_BINS 65536
static uint8_t q8_lut[LUT_BINS];
static pthread_once_t q8_once = PTHREAD_ONCE_INIT;

static void q8_build(void) {
    float mid[255];
    for (int i = 0; i < 255; i++) mid[i] = 0.5f * (dyn_map[i] + dyn_map[i + 1]);
    int c = 0;
    for (int i = 0; i < LUT_BINS; i++) {
        float v = -1.0f + (2.0f * (float)i) / (float)(LUT_BINS - 1);
        while (c < 255 && mid[c] < v) c++;
        q8_lut[i] = (uint8_t)c;
    }
}

/* one block of up to 256: codes through the table of v = x * (1 / absmax); an all-zero
 * block codes 0; returns the block's absmax */
static float quant8_block(const float *x, int m, uint8_t *out) {
    pthread_once(&q8_once, q8_build);
    float am = 0.f;
    for (int k = 0; k < m; k++) am = fmaxf(am, fabsf(x[k]));
    if (am == 0.f) {
        memset(out, 0, (size_t)m);
        return am;
    }
    float inv = 1.0f / am;
    for (int k = 0; k < m; k++) {
        float v = x[k] * inv;
        v = v < -1.f ? -1.f : v > 1.f ? 1.f : v;
        out[k] = q8_lut[(uint16_t)((v + 1.0f) * 0.5f * (float)(LUT_BINS - 1) + 0.5f)];
    }
    return am;
}

/* torch.Tensor.sum of a contiguous fp32 vector on one thread (x86 builds: 8-lane vectors),
 * which .mean() divides by n: lanes summed in 4 interleaved rows of vectors through a
 * 4-level cascade (ATen's multi_row_sum / row_sum), the scalar tail first, then the lanes in
 * order. With more torch threads bitsandbytes' own offset depends on the thread count;
 * hone matches its single-thread value (measured equal for n from 41 to 1.4M). */
#define TS_W 8
static float torch_sum_f32(const float *x, size_t n) {
    size_t vs = n / TS_W, size = vs / 4;
    float acc[4][4][TS_W] = {{{0}}};
    int cl = 0;
    while (((size_t)1 << cl) < size) cl++;
    int lp = cl / 4 > 4 ? cl / 4 : 4;
    size_t step = (size_t)1 << lp, mask = step - 1, i = 0;
    while (i + step <= size) {
        for (size_t j = 0; j < step; j++, i++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < TS_W; l++) acc[0][k][l] += x[(i * 4 + k) * TS_W + l];
        for (int j = 1; j < 4; j++) {
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < TS_W; l++) acc[j][k][l] += acc[j - 1][k][l], acc[j - 1][k][l] = 0.f;
            if (i & (mask << (j * lp))) break;
        }
    }
    for (; i < size; i++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < TS_W; l++) acc[0][k][l] += x[(i * 4 + k) * TS_W + l];
    for (int j = 1; j < 4; j++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < TS_W; l++) acc[0][k][l] += acc[j][k][l];
    for (size_t v = size * 4; v < vs; v++)
        for (int l = 0; l < TS_W; l++) acc[0][0][l] += x[v * TS_W + l];
    for (int k = 1; k < 4; k++)
        for (int l = 0; l < TS_W; l++) acc[0][0][l] += acc[0][k][l];
    float s = 0.f;
    for (size_t k = vs * TS_W; k < n; k++) s += x[k];
    for (int l = 0; l < TS_W; l++) s += acc[0][0][l];
    return s;
}

void qtensor_nest_absmax(hone_qtensor *t, float *absmax, float offset) {
    size_t n = (size_t)t->rows * t->cols, nb = nblocks(n, HONE_Q_BLOCK);
    t->offset = offset;
    for (size_t b = 0; b < nb; b++) absmax[b] -= offset;
    size_t n2 = nblocks(nb, HONE_Q_NEST_BLOCK);
    for (size_t b = 0; b < n2; b++) {
        size_t e0 = b * HONE_Q_NEST_BLOCK;
        int m = nb - e0 < HONE_Q_NEST_BLOCK ? (int)(nb - e0) : HONE_Q_NEST_BLOCK;
        t->absmax[b] = quant8_block(absmax + e0, m, t->qabsmax + e0);
    }
}

float quant_absmax_mean(const float *absmax, size_t nb) { return torch_sum_f32(absmax, nb) / (float)nb; }

void quant_4bit_codes(const hone_qtensor *t, const float *x, float *absmax) {
    size_t n = (size_t)t->rows * t->cols, nb = nblocks(n, HONE_Q_BLOCK);
    float mid[15];
    midpoints(t->type, mid);
    int fp4 = t->type == HONE_Q_FP4;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t e0 = b * HONE_Q_BLOCK;
        int m = n - e0 < HONE_Q_BLOCK ? (int)(n - e0) : HONE_Q_BLOCK;
        absmax[b] = quant4_block(x + e0, e0, m, m == HONE_Q_BLOCK, mid, fp4, t->data);
    }
}

static void quantize4(hone_qtensor *t, const float *x) {
    size_t nb = nblocks((size_t)t->rows * t->cols, HONE_Q_BLOCK);
    if (!t->nested) {
        quant_4bit_codes(t, x, t->absmax);
        return;
    }
    float *am = malloc(sizeof(float) * nb);
    if (!am) abort(); /* 1/16 of the weight's own bytes, just allocated: nothing sensible to do */
    quant_4bit_codes(t, x, am);
    qtensor_nest_absmax(t, am, quant_absmax_mean(am, nb));
    free(am);
}

/* ---- int8 (bitsandbytes' Int8Params: fp16 first, then int8_vectorwise_quant) ---- */

static void quantize_int8(hone_qtensor *t, const float *x) {
    int8_t *q = t->data;
#pragma omp parallel
    {
        uint16_t h[256];
        float w[256];
#pragma omp for schedule(static)
        for (int r = 0; r < t->rows; r++) {
            const float *xr = x + (size_t)r * t->cols;
            float am = 0.f;
            /* round the row through fp16 in chunks (the table's exact conversions) */
            for (int c0 = 0; c0 < t->cols; c0 += 256) {
                int m = t->cols - c0 < 256 ? t->cols - c0 : 256;
                hone_kt.f32_to_f16(h, xr + c0, m);
                hone_kt.f16_to_f32(w, h, m);
                for (int k = 0; k < m; k++) am = fmaxf(am, fabsf(w[k]));
            }
            t->absmax[r] = am;
            float sc = am > 0.f ? 127.0f * (1.0f / am) : 0.f; /* torch: 127.0 / t is 127 * reciprocal(t) */
            for (int c0 = 0; c0 < t->cols; c0 += 256) {
                int m = t->cols - c0 < 256 ? t->cols - c0 : 256;
                hone_kt.f32_to_f16(h, xr + c0, m);
                hone_kt.f16_to_f32(w, h, m);
                for (int k = 0; k < m; k++) q[(size_t)r * t->cols + c0 + k] = (int8_t)nearbyintf(w[k] * sc);
            }
        }
    }
}

void qtensor_quantize(hone_qtensor *t, const float *x) {
    size_t n = (size_t)t->rows * t->cols;
    switch (t->type) {
    case HONE_Q_F32: memcpy(t->data, x, n * 4); break;
    case HONE_Q_BF16: hone_kt.f32_to_bf16(t->data, x, n); break;
    case HONE_Q_INT8: quantize_int8(t, x); break;
    default: quantize4(t, x);
    }
}

void qtensor_quantize_bf16(hone_qtensor *t, const uint16_t *x, float *scratch) {
    size_t n = (size_t)t->rows * t->cols;
    if (t->type == HONE_Q_BF16) { memcpy(t->data, x, n * 2); return; }
    hone_kt.bf16_to_f32(scratch, x, n);
    qtensor_quantize(t, scratch);
}

/* ---- dequantisation ---- */

void dequant_4bit_scalar(float *dst, const uint8_t *packed, size_t i0, int n, const float *code, const float *scale) {
    size_t b0 = i0 / HONE_Q_BLOCK;
    for (int k = 0; k < n; k++) {
        size_t i = i0 + k;
        uint8_t byte = packed[i >> 1];
        int nib = (i & 1) ? byte & 15 : byte >> 4;
        dst[k] = code[nib] * scale[i / HONE_Q_BLOCK - b0];
    }
}

void dequant_int8_scalar(float *dst, const int8_t *q, int n, float s) {
    const float inv127 = 7.874015718698502e-3f;
    for (int k = 0; k < n; k++) dst[k] = ((float)q[k] * s) * inv127;
}

void qtensor_block_scales(const hone_qtensor *t, size_t b0, size_t b1, float *out) {
    if (!t->nested) {
        memcpy(out, t->absmax + b0, sizeof(float) * (b1 - b0));
        return;
    }
    const float *code = quant_dynamic_map();
    for (size_t b = b0; b < b1; b++) {
        float v = code[t->qabsmax[b]] * t->absmax[b / HONE_Q_NEST_BLOCK];
        out[b - b0] = v + t->offset;
    }
}

void qtensor_dequant_rect(const hone_qtensor *t, int r0, int r1, int c0, int c1, float *dst, size_t ld) {
    int w = c1 - c0;
    if (w <= 0) return;
    const float *code = dequant_code(t);
    for (int r = r0; r < r1; r++) {
        float *d = dst + (size_t)(r - r0) * ld;
        size_t i0 = (size_t)r * t->cols + c0;
        switch (t->type) {
        case HONE_Q_F32: memcpy(d, (const float *)t->data + i0, sizeof(float) * w); break;
        case HONE_Q_BF16: hone_kt.bf16_to_f32(d, (const uint16_t *)t->data + i0, w); break;
        case HONE_Q_INT8: hone_kt.dequant_int8_f32(d, (const int8_t *)t->data + i0, w, t->absmax[r]); break;
        default: {
            /* the scales of the blocks this run touches, 64 at a time */
            float sc[64];
            size_t i = i0, end = i0 + w;
            while (i < end) {
                size_t b0 = i / HONE_Q_BLOCK, lim = (b0 + 64) * HONE_Q_BLOCK;
                size_t e = end < lim ? end : lim, b1 = (e - 1) / HONE_Q_BLOCK + 1;
                qtensor_block_scales(t, b0, b1, sc);
                hone_kt.dequant_4bit_f32(d + (i - i0), t->data, i, (int)(e - i), code, sc);
                i = e;
            }
        }
        }
    }
}

/* kernels.h dropout_f32 (LoRA dropout; it sits with the held-weight kernels, which LoRA runs
 * use too): the reference every ISA's version is bitwise equal to */
void dropout_f32_scalar(float *y, const float *x, size_t i0, size_t n, float p, uint64_t seed, int acc) {
    const float keep = 1.0f / (1.0f - p);
    for (size_t k = 0; k < n; k++) {
        uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i0 + k + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        float u = (float)(z >> 40) * (1.0f / 16777216.0f); /* [0, 1) on 24 bits */
        float m = u >= p ? keep : 0.0f;
        y[k] = acc ? y[k] + x[k] * m : x[k] * m;
    }
}
