/* simd/quant_avx2.c — AVX2 dequantisation of held weights (kernels.h's dequant_* entries,
 * simd/quant.h). Multiplies only (no FMA), so bitwise the scalar reference. */
#include "simd/kernels.h"
#include "simd/quant.h"
#include <immintrin.h>
#include <string.h>

/* 8 nibbles of 4 packed bytes, in element order (high nibble first), as 32-bit lanes */
static inline __m256i nibbles8(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    __m128i w = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(v));
    __m128i nib = _mm_or_si128(_mm_srli_epi16(w, 4), _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(15)), 8));
    return _mm256_cvtepu8_epi32(nib);
}

static void dequant_4bit_avx2(float *dst, const uint8_t *packed, size_t i0, int n, const float *code, const float *scale) {
    size_t b0 = i0 / HONE_Q_BLOCK;
    int k = 0;
    /* scalar up to an 8-element boundary: 8-groups then never straddle a block */
    int head = (int)((8 - (i0 & 7)) & 7);
    if (head > n) head = n;
    if (head) dequant_4bit_scalar(dst, packed, i0, head, code, scale);
    k = head;
    __m256 clo = _mm256_loadu_ps(code), chi = _mm256_loadu_ps(code + 8);
    for (; k + 8 <= n; k += 8) {
        size_t i = i0 + k;
        __m256i idx = nibbles8(packed + i / 2);
        __m256 lo = _mm256_permutevar8x32_ps(clo, idx), hi = _mm256_permutevar8x32_ps(chi, idx);
        __m256 v = _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
        _mm256_storeu_ps(dst + k, _mm256_mul_ps(v, _mm256_set1_ps(scale[i / HONE_Q_BLOCK - b0])));
    }
    if (k < n) dequant_4bit_scalar(dst + k, packed, i0 + k, n - k, code, scale + ((i0 + k) / HONE_Q_BLOCK - b0));
}

static void dequant_int8_avx2(float *dst, const int8_t *q, int n, float s) {
    __m256 vs = _mm256_set1_ps(s), vi = _mm256_set1_ps(7.874015718698502e-3f);
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        int64_t v;
        memcpy(&v, q + k, 8);
        __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v)));
        _mm256_storeu_ps(dst + k, _mm256_mul_ps(_mm256_mul_ps(f, vs), vi));
    }
    if (k < n) dequant_int8_scalar(dst + k, q + k, n - k, s);
}

void quant_fill_avx2(hone_kernels *t) {
    t->dequant_4bit_f32 = dequant_4bit_avx2;
    t->dequant_int8_f32 = dequant_int8_avx2;
}
