/* simd/quant_neon.c — NEON dequantisation of held weights (kernels.h's dequant_* entries,
 * simd/quant.h): the 16-entry codebook is 64 table bytes looked up with TBL, four floats at a
 * time. Multiplies only (no FMA), so bitwise the scalar reference. */
#include "simd/kernels.h"
#include "simd/quant.h"
#include <arm_neon.h>

static void dequant_4bit_neon(float *dst, const uint8_t *packed, size_t i0, int n, const float *code, const float *scale) {
    size_t b0 = i0 / HONE_Q_BLOCK;
    /* scalar up to a 16-element boundary: 16-groups then never straddle a block */
    int head = (int)((16 - (i0 & 15)) & 15);
    if (head > n) head = n;
    if (head) dequant_4bit_scalar(dst, packed, i0, head, code, scale);
    int k = head;
    const uint8_t *cb = (const uint8_t *)code;
    uint8x16x4_t tbl = {{vld1q_u8(cb), vld1q_u8(cb + 16), vld1q_u8(cb + 32), vld1q_u8(cb + 48)}};
    static const uint8_t rep[4][16] = {{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
                                       {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
                                       {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
                                       {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};
    static const uint8_t lane[16] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    uint8x16_t vlane = vld1q_u8(lane);
    for (; k + 16 <= n; k += 16) {
        size_t i = i0 + k;
        uint8x8_t b = vld1_u8(packed + i / 2);
        uint8x8x2_t z = vzip_u8(vshr_n_u8(b, 4), vand_u8(b, vdup_n_u8(15))); /* element order: high nibble first */
        uint8x16_t nib = vcombine_u8(z.val[0], z.val[1]);
        float32x4_t s = vdupq_n_f32(scale[i / HONE_Q_BLOCK - b0]);
        for (int g = 0; g < 4; g++) {
            uint8x16_t idx = vaddq_u8(vshlq_n_u8(vqtbl1q_u8(nib, vld1q_u8(rep[g])), 2), vlane); /* byte 4 * code + lane */
            float32x4_t v = vreinterpretq_f32_u8(vqtbl4q_u8(tbl, idx));
            vst1q_f32(dst + k + 4 * g, vmulq_f32(v, s));
        }
    }
    if (k < n) dequant_4bit_scalar(dst + k, packed, i0 + k, n - k, code, scale + ((i0 + k) / HONE_Q_BLOCK - b0));
}

static void dequant_int8_neon(float *dst, const int8_t *q, int n, float s) {
    float32x4_t vs = vdupq_n_f32(s), vi = vdupq_n_f32(7.874015718698502e-3f);
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        int16x8_t w = vmovl_s8(vld1_s8(q + k));
        float32x4_t lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w)));
        vst1q_f32(dst + k, vmulq_f32(vmulq_f32(lo, vs), vi));
        vst1q_f32(dst + k + 4, vmulq_f32(vmulq_f32(hi, vs), vi));
    }
    if (k < n) dequant_int8_scalar(dst + k, q + k, n - k, s);
}

void quant_fill_neon(hone_kernels *t) {
    t->dequant_4bit_f32 = dequant_4bit_neon;
    t->dequant_int8_f32 = dequant_int8_neon;
}
