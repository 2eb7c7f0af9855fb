/* simd/ggml_quant_neon.c — q8_0 and q4_0 block quantisers with NEON, bitwise equal to the
 * scalar references in ggml_quant.c: the reference's scale arithmetic per block, roundf as
 * vrndaq (to nearest, ties away from zero: roundf exactly), the int8 truncation by vcvtq
 * (toward zero), separate multiply and add (no fused vmla / vfma). */
#include "simd/ggml_quant.h"
#include "simd/kernels.h"
#include <arm_neon.h>
#include <math.h>

static float block_amax(const float *x, float32x4_t v[8]) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; k++) v[k] = vld1q_f32(x + 4 * k), m = vmaxq_f32(m, vabsq_f32(v[k]));
    return vmaxvq_f32(m);
}

static void quant_q8_0_neon(const float *x, void *y, int64_t nb) {
    uint8_t *o = y;
    for (int64_t i = 0; i < nb; i++, x += 32, o += 34) {
        float32x4_t v[8];
        const float amax = block_amax(x, v);
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t h = ggml_f32_to_f16(d);
        o[0] = (uint8_t)h;
        o[1] = (uint8_t)(h >> 8);
        for (int k = 0; k < 8; k += 2) {
            int32x4_t a = vcvtq_s32_f32(vrndaq_f32(vmulq_n_f32(v[k], id)));
            int32x4_t b = vcvtq_s32_f32(vrndaq_f32(vmulq_n_f32(v[k + 1], id)));
            int8x8_t q = vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)));
            vst1_s8((int8_t *)(o + 2 + 4 * k), q);
        }
    }
}

static void quant_q4_0_neon(const float *x, void *y, int64_t nb) {
    uint8_t *o = y;
    for (int64_t i = 0; i < nb; i++, x += 32, o += 18) {
        float32x4_t v[8];
        const float amax = block_amax(x, v);
        int first = 0; /* the scalar loop keeps the first value of largest magnitude */
        while (first < 31 && fabsf(x[first]) != amax) first++;
        const float max = amax > 0.0f ? x[first] : 0.0f;
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t h = ggml_f32_to_f16(d);
        o[0] = (uint8_t)h;
        o[1] = (uint8_t)(h >> 8);
        const float32x4_t half = vdupq_n_f32(8.5f);
        const uint32x4_t m15 = vdupq_n_u32(15);
        for (int k = 0; k < 4; k += 2) { /* values 4k.. with 16 + 4k.. in the high nibble */
            uint32x4_t lo0 = vminq_u32(vcvtq_u32_f32(vaddq_f32(vmulq_n_f32(v[k], id), half)), m15);
            uint32x4_t lo1 = vminq_u32(vcvtq_u32_f32(vaddq_f32(vmulq_n_f32(v[k + 1], id), half)), m15);
            uint32x4_t hi0 = vminq_u32(vcvtq_u32_f32(vaddq_f32(vmulq_n_f32(v[k + 4], id), half)), m15);
            uint32x4_t hi1 = vminq_u32(vcvtq_u32_f32(vaddq_f32(vmulq_n_f32(v[k + 5], id), half)), m15);
            uint32x4_t b0 = vorrq_u32(lo0, vshlq_n_u32(hi0, 4)), b1 = vorrq_u32(lo1, vshlq_n_u32(hi1, 4));
            uint8x8_t q = vmovn_u16(vcombine_u16(vmovn_u32(b0), vmovn_u32(b1)));
            vst1_u8(o + 2 + 4 * k, q);
        }
    }
}

void ggml_quant_fill_neon(struct hone_kernels *t) {
    t->quant_q8_0 = quant_q8_0_neon;
    t->quant_q4_0 = quant_q4_0_neon;
}
