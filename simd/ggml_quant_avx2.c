/* simd/ggml_quant_avx2.c — q8_0 and q4_0 block quantisers with AVX2, bitwise equal to the
 * scalar references in ggml_quant.c (see ggml_quant_avx512.c for the rounding argument). */
#include "simd/ggml_quant.h"
#include "simd/kernels.h"
#include <immintrin.h>

static inline __m256 abs_avx2(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
static inline float hmax_avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline __m256 roundf_avx2(__m256 t) {
    __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 up = _mm256_cmp_ps(abs_avx2(_mm256_sub_ps(t, r)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(t, _mm256_set1_ps(-0.0f)));
    return _mm256_add_ps(r, _mm256_and_ps(up, one));
}

static void quant_q8_0_avx2(const float *x, void *y, int64_t nb) {
    uint8_t *o = y;
    for (int64_t i = 0; i < nb; i++, x += 32, o += 34) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k), m = _mm256_max_ps(m, abs_avx2(v[k]));
        const float amax = hmax_avx2(m);
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t h = ggml_f32_to_f16(d);
        o[0] = (uint8_t)h;
        o[1] = (uint8_t)(h >> 8);
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(roundf_avx2(_mm256_mul_ps(v[k], vid)));
        /* int32 -> int16 -> int8 with saturation (values are within [-127, 127]); packs work per
         * 128-bit lane, so the result is put back in order with a permute */
        __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(o + 2), p);
    }
}

static void quant_q4_0_avx2(const float *x, void *y, int64_t nb) {
    uint8_t *o = y;
    for (int64_t i = 0; i < nb; i++, x += 32, o += 18) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k), m = _mm256_max_ps(m, abs_avx2(v[k]));
        const float amax = hmax_avx2(m);
        uint32_t hit = 0;
        for (int k = 0; k < 4; k++)
            hit |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(abs_avx2(v[k]), _mm256_set1_ps(amax), _CMP_EQ_OQ)) << (8 * k);
        float max = amax > 0.0f ? x[__builtin_ctz(hit)] : 0.0f;
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t h = ggml_f32_to_f16(d);
        o[0] = (uint8_t)h;
        o[1] = (uint8_t)(h >> 8);
        __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(8.5f);
        __m256i m15 = _mm256_set1_epi32(15), q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[k], vid), half)), m15);
        __m256i lo = _mm256_or_si256(q[0], _mm256_slli_epi32(q[2], 4)); /* values 0..15 | 16..31 << 4 */
        __m256i hi = _mm256_or_si256(q[1], _mm256_slli_epi32(q[3], 4));
        __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(lo, hi), _mm256_setzero_si256());
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm_storeu_si128((__m128i *)(o + 2), _mm256_castsi256_si128(p));
    }
}

void ggml_quant_fill_avx2(struct hone_kernels *t) {
    t->quant_q8_0 = quant_q8_0_avx2;
    t->quant_q4_0 = quant_q4_0_avx2;
}
