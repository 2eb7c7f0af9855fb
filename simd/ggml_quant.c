/* simd/ggml_quant.c — scalar references of ggml's block formats (ggml_quant.h): ports of
 * ggml-quants.c's quantize_row_*_ref and dequantize_row_* in the same order of floating-point
 * operations (this file is built without FMA flags, so nothing is contracted), the fp16
 * conversion ggml uses, and the dispatch of a row to the kernel table. */
#include "simd/ggml_quant.h"
#include "simd/kernels.h"
#include <math.h>
#include <string.h>

#define QK 32
#define QKK 256
#define GROUP_MAX_EPS 1e-15f
#define MINI(a, b) ((a) < (b) ? (a) : (b))
#define MAXI(a, b) ((a) > (b) ? (a) : (b))

int ggml_type_block(int type) {
    switch (type) {
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16: return 1;
    case GGML_T_Q4_0: case GGML_T_Q5_0: case GGML_T_Q8_0: return QK;
    case GGML_T_Q4_K: case GGML_T_Q6_K: return QKK;
    default: return 0;
    }
}

size_t ggml_type_bytes(int type) {
    switch (type) {
    case GGML_T_F32: return 4;
    case GGML_T_F16: case GGML_T_BF16: return 2;
    case GGML_T_Q4_0: return 18;
    case GGML_T_Q5_0: return 22;
    case GGML_T_Q8_0: return 34;
    case GGML_T_Q4_K: return 144;
    case GGML_T_Q6_K: return 210;
    default: return 0;
    }
}

const char *ggml_type_name(int type) {
    switch (type) {
    case GGML_T_F32: return "f32";
    case GGML_T_F16: return "f16";
    case GGML_T_BF16: return "bf16";
    case GGML_T_Q4_0: return "q4_0";
    case GGML_T_Q5_0: return "q5_0";
    case GGML_T_Q8_0: return "q8_0";
    case GGML_T_Q4_K: return "q4_K";
    case GGML_T_Q6_K: return "q6_K";
    default: return NULL;
    }
}

size_t ggml_row_bytes(int type, int64_t n) {
    int b = ggml_type_block(type);
    if (b == 0 || n < 0 || n % b) return 0;
    return (size_t)(n / b) * ggml_type_bytes(type);
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ggml_compute_fp32_to_fp16 (round to nearest even through float arithmetic) */
uint16_t ggml_f32_to_f16(float f) {
    const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = f2u(f), shl1_w = w + w, sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = u2f((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f2u(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u, mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

float ggml_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    if (exp == 31) return u2f(sign | 0x7f800000u | (man << 13));
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

void ggml_quant_q8_0_ref(const float *x, void *y, int64_t n) {
    uint8_t *o = y;
    for (int64_t i = 0; i < n / QK; i++, x += QK, o += 34) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]); /* ggml's MAX */
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        put16(o, ggml_f32_to_f16(d));
        for (int j = 0; j < QK; j++) o[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

void ggml_quant_q4_0_ref(const float *x, void *y, int64_t n) {
    uint8_t *o = y;
    for (int64_t i = 0; i < n / QK; i++, x += QK, o += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        put16(o, ggml_f32_to_f16(d));
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t xi0 = (uint8_t)MINI(15, (int8_t)(x[j] * id + 8.5f));
            const uint8_t xi1 = (uint8_t)MINI(15, (int8_t)(x[QK / 2 + j] * id + 8.5f));
            o[2 + j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

void ggml_quant_q5_0_ref(const float *x, void *y, int64_t n) {
    uint8_t *o = y;
    for (int64_t i = 0; i < n / QK; i++, x += QK, o += 22) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        put16(o, ggml_f32_to_f16(d));
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t xi0 = (uint8_t)MINI(31, (int8_t)(x[j] * id + 16.5f));
            const uint8_t xi1 = (uint8_t)MINI(31, (int8_t)(x[QK / 2 + j] * id + 16.5f));
            o[6 + j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
        }
        for (int b = 0; b < 4; b++) o[2 + b] = (uint8_t)(qh >> (8 * b));
    }
}

/* ggml's nearest_int: round half to even through the 1.5 * 2^23 trick (|fval| <= 4194303) */
static int nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

/* make_qx_quants with rmse_type 1 and no importance weights (q6_K's only use) */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = MAXI(-nmax, MINI(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = MAXI(-nmax, MINI(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAXI(-nmax, MINI(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAXI(0, MINI(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAXI(0, MINI(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* q4_K block: d (0), dmin (2), scales (4..15), qs (16..143) */
void ggml_quant_q4_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *o = y;
    uint8_t L[QKK], Laux[32];
    float weights[32], mins[QKK / 32], scales[QKK / 32];
    for (int64_t i = 0; i < n / QKK; i++, x += QKK, o += 144) {
        uint8_t *sc8 = o + 4;
        memset(sc8, 0, 12);
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QKK / 32; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < QKK / 32; ++j) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = MINI(63, ls);
            lm = MINI(63, lm);
            if (j < 4) {
                sc8[j] = ls;
                sc8[j + 4] = lm;
            } else {
                sc8[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                sc8[j - 4] |= (uint8_t)((ls >> 4) << 6);
                sc8[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        uint16_t dh = ggml_f32_to_f16(max_scale / 63.f), mh = ggml_f32_to_f16(max_min / 63.f);
        put16(o, dh);
        put16(o + 2, mh);
        for (int j = 0; j < QKK / 32; ++j) {
            uint8_t sc, m;
            get_scale_min_k4(j, sc8, &sc, &m);
            const float d = ggml_f16_to_f32(dh) * sc;
            if (!d) continue;
            const float dm = ggml_f16_to_f32(mh) * m;
            for (int ii = 0; ii < 32; ++ii) {
                int l = nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)MAXI(0, MINI(15, l));
            }
        }
        uint8_t *q = o + 16;
        for (int j = 0; j < QKK; j += 64) {
            for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }
}

/* q6_K block: ql (0..127), qh (128..191), scales (192..207), d (208) */
void ggml_quant_q6_K_ref(const float *x, void *y, int64_t n) {
    uint8_t *o = y;
    int8_t L[QKK];
    float scales[QKK / 16];
    for (int64_t i = 0; i < n / QKK; i++, x += QKK, o += 210) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QKK / 16; ++ib) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(o, 0, 210);
            continue;
        }
        float iscale = -128.f / max_scale;
        uint16_t dh = ggml_f32_to_f16(1 / iscale);
        put16(o + 208, dh);
        int8_t *sc = (int8_t *)(o + 192);
        for (int ib = 0; ib < QKK / 16; ++ib) sc[ib] = (int8_t)MINI(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QKK / 16; ++j) {
            float d = ggml_f16_to_f32(dh) * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                l = MAXI(-32, MINI(31, l));
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = o, *qh = o + 128;
        for (int j = 0; j < QKK; j += 128) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

int ggml_dequant_row(int type, const void *src, float *y, int64_t n) {
    int bs = ggml_type_block(type);
    if (bs == 0 || n % bs) return -1;
    const uint8_t *p = src;
    int64_t nb = n / bs;
    switch (type) {
    case GGML_T_F32: memcpy(y, src, sizeof(float) * (size_t)n); return 0;
    case GGML_T_F16:
        for (int64_t i = 0; i < n; i++) y[i] = ggml_f16_to_f32(get16(p + 2 * i));
        return 0;
    case GGML_T_BF16:
        for (int64_t i = 0; i < n; i++) y[i] = u2f((uint32_t)get16(p + 2 * i) << 16);
        return 0;
    case GGML_T_Q8_0:
        for (int64_t i = 0; i < nb; i++, p += 34, y += QK) {
            const float d = ggml_f16_to_f32(get16(p));
            for (int j = 0; j < QK; j++) y[j] = (int8_t)p[2 + j] * d;
        }
        return 0;
    case GGML_T_Q4_0:
        for (int64_t i = 0; i < nb; i++, p += 18, y += QK) {
            const float d = ggml_f16_to_f32(get16(p));
            for (int j = 0; j < QK / 2; j++) {
                y[j] = ((p[2 + j] & 0x0F) - 8) * d;
                y[j + QK / 2] = ((p[2 + j] >> 4) - 8) * d;
            }
        }
        return 0;
    case GGML_T_Q5_0:
        for (int64_t i = 0; i < nb; i++, p += 22, y += QK) {
            const float d = ggml_f16_to_f32(get16(p));
            uint32_t qh = (uint32_t)p[2] | (uint32_t)p[3] << 8 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 24;
            for (int j = 0; j < QK / 2; j++) {
                const uint8_t xh_0 = (uint8_t)(((qh >> (j + 0)) << 4) & 0x10);
                const uint8_t xh_1 = (uint8_t)(((qh >> (j + 12))) & 0x10);
                y[j] = (((p[6 + j] & 0x0F) | xh_0) - 16) * d;
                y[j + QK / 2] = (((p[6 + j] >> 4) | xh_1) - 16) * d;
            }
        }
        return 0;
    case GGML_T_Q4_K:
        for (int64_t i = 0; i < nb; i++, p += 144) {
            const float d = ggml_f16_to_f32(get16(p)), min = ggml_f16_to_f32(get16(p + 2));
            const uint8_t *q = p + 16;
            int is = 0;
            uint8_t sc, m;
            for (int j = 0; j < QKK; j += 64) {
                get_scale_min_k4(is + 0, p + 4, &sc, &m);
                const float d1 = d * sc, m1 = min * m;
                get_scale_min_k4(is + 1, p + 4, &sc, &m);
                const float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
                q += 32;
                is += 2;
            }
        }
        return 0;
    case GGML_T_Q6_K:
        for (int64_t i = 0; i < nb; i++, p += 210) {
            const float d = ggml_f16_to_f32(get16(p + 208));
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *sc = (const int8_t *)(p + 192);
            for (int k = 0; k < QKK; k += 128) {
                for (int l = 0; l < 32; ++l) {
                    int is = l / 16;
                    const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l + 0] = d * sc[is + 0] * q1;
                    y[l + 32] = d * sc[is + 2] * q2;
                    y[l + 64] = d * sc[is + 4] * q3;
                    y[l + 96] = d * sc[is + 6] * q4;
                }
                y += 128;
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
        return 0;
    default: return -1;
    }
}

int ggml_quant_row(int type, const float *x, void *y, int64_t n) {
    int bs = ggml_type_block(type);
    if (bs == 0 || n % bs) return -1;
    switch (type) {
    case GGML_T_F32: memcpy(y, x, sizeof(float) * (size_t)n); return 0;
    case GGML_T_F16: {
        uint8_t *o = y;
        for (int64_t i = 0; i < n; i++) put16(o + 2 * i, ggml_f32_to_f16(x[i]));
        return 0;
    }
    case GGML_T_BF16: hone_kt.f32_to_bf16((uint16_t *)y, x, (size_t)n); return 0;
    case GGML_T_Q8_0: hone_kt.quant_q8_0(x, y, n / QK); return 0;
    case GGML_T_Q4_0: hone_kt.quant_q4_0(x, y, n / QK); return 0;
    case GGML_T_Q5_0: ggml_quant_q5_0_ref(x, y, n); return 0;
    case GGML_T_Q4_K: ggml_quant_q4_K_ref(x, y, n); return 0;
    case GGML_T_Q6_K: ggml_quant_q6_K_ref(x, y, n); return 0;
    default: return -1;
    }
}

static void quant_q8_0_scalar(const float *x, void *y, int64_t nb) { ggml_quant_q8_0_ref(x, y, nb * QK); }
static void quant_q4_0_scalar(const float *x, void *y, int64_t nb) { ggml_quant_q4_0_ref(x, y, nb * QK); }

void ggml_quant_fill_scalar(struct hone_kernels *t) {
    t->quant_q8_0 = quant_q8_0_scalar;
    t->quant_q4_0 = quant_q4_0_scalar;
}
