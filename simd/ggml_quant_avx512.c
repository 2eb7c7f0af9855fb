/* simd/ggml_quant_avx512.c — q8_0 and q4_0 block quantisers with AVX-512, bitwise equal to
 * the scalar references in ggml_quant.c (same scale arithmetic per block; roundf's
 * half-away-from-zero and the int8 truncation reproduced exactly, no fused operations). */
#include "simd/ggml_quant.h"
#include "simd/kernels.h"
#include <immintrin.h>

/* roundf of each lane: trunc, then one step away from zero where the dropped fraction is >= 0.5 */
static inline __m512 roundf_avx512(__m512 t) {
    __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_abs_ps(_mm512_sub_ps(t, r));
    __mmask16 up = _mm512_cmp_ps_mask(f, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(t, _mm512_set1_ps(-0.0f)));
    return _mm512_mask_add_ps(r, up, r, one);
}

static void quant_q8_0_avx512(const float *x, void *y, int64_t nb) {
    uint8_t *o = y;
    for (int64_t i = 0; i < nb; i++, x += 32, o += 34) {
        __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t h = ggml_f32_to_f16(d);
        o[0] = (uint8_t)h;
        o[1] = (uint8_t)(h >> 8);
        __m512 vid = _mm512_set1_ps(id);
        __m512i qa = _mm512_cvttps_epi32(roundf_avx512(_mm512_mul_ps(a, vid)));
        __m512i qb = _mm512_cvttps_epi32(roundf_avx512(_mm512_mul_ps(b, vid)));
        _mm_storeu_si128((__m128i *)(o + 2), _mm512_cvtepi32_epi8(qa));
        _mm_storeu_si128((__m128i *)(o + 18), _mm512_cvtepi32_epi8(qb));
    }
}

static void quant_q4_0_avx512(const float *x, void *y, int64_t nb) {
    uint8_t *o = y;
    for (int64_t i = 0; i < nb; i++, x += 32, o += 18) {
        __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
        __m512 aa = _mm512_abs_ps(a), ab = _mm512_abs_ps(b);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(aa, ab));
        /* the scalar loop keeps the first value of largest magnitude */
        uint32_t hit = (uint32_t)_mm512_cmp_ps_mask(aa, _mm512_set1_ps(amax), _CMP_EQ_OQ) |
                       (uint32_t)_mm512_cmp_ps_mask(ab, _mm512_set1_ps(amax), _CMP_EQ_OQ) << 16;
        float max = amax > 0.0f ? x[__builtin_ctz(hit)] : 0.0f;
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t h = ggml_f32_to_f16(d);
        o[0] = (uint8_t)h;
        o[1] = (uint8_t)(h >> 8);
        __m512 vid = _mm512_set1_ps(id), half = _mm512_set1_ps(8.5f);
        __m512i qa = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(a, vid), half));
        __m512i qb = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(b, vid), half));
        __m512i m15 = _mm512_set1_epi32(15);
        qa = _mm512_min_epi32(qa, m15);
        qb = _mm512_min_epi32(qb, m15);
        __m512i q = _mm512_or_si512(qa, _mm512_slli_epi32(qb, 4));
        _mm_storeu_si128((__m128i *)(o + 2), _mm512_cvtepi32_epi8(q));
    }
}

void ggml_quant_fill_avx512(struct hone_kernels *t) {
    t->quant_q8_0 = quant_q8_0_avx512;
    t->quant_q4_0 = quant_q4_0_avx512;
}
