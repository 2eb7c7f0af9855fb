/* simd/quant_avx512.c — AVX-512 dequantisation of held weights (kernels.h's dequant_*
 * entries, simd/quant.h): a 16-entry codebook is one zmm, looked up with vpermps.
 * Multiplies only (no FMA), so bitwise the scalar reference. */
#include "simd/kernels.h"
#include "simd/quant.h"
#include <immintrin.h>
#include <string.h>

/* 16 nibbles of 8 packed bytes, in element order (high nibble first), as 32-bit lanes */
static inline __m512i nibbles16(const uint8_t *p) {
    __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)p));
    __m128i nib = _mm_or_si128(_mm_srli_epi16(w, 4), _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(15)), 8));
    return _mm512_cvtepu8_epi32(nib);
}

static void dequant_4bit_avx512(float *dst, const uint8_t *packed, size_t i0, int n, const float *code,
                                const float *scale) {
    size_t b0 = i0 / HONE_Q_BLOCK;
    /* scalar up to a 16-element boundary: 16-groups then never straddle a block */
    int head = (int)((16 - (i0 & 15)) & 15);
    if (head > n) head = n;
    if (head) dequant_4bit_scalar(dst, packed, i0, head, code, scale);
    int k = head;
    __m512 cv = _mm512_loadu_ps(code);
    for (; k + 16 <= n; k += 16) {
        size_t i = i0 + k;
        __m512 v = _mm512_permutexvar_ps(nibbles16(packed + i / 2), cv);
        _mm512_storeu_ps(dst + k, _mm512_mul_ps(v, _mm512_set1_ps(scale[i / HONE_Q_BLOCK - b0])));
    }
    if (k < n) dequant_4bit_scalar(dst + k, packed, i0 + k, n - k, code, scale + ((i0 + k) / HONE_Q_BLOCK - b0));
}

static void dequant_int8_avx512(float *dst, const int8_t *q, int n, float s) {
    __m512 vs = _mm512_set1_ps(s), vi = _mm512_set1_ps(7.874015718698502e-3f);
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + k))));
        _mm512_storeu_ps(dst + k, _mm512_mul_ps(_mm512_mul_ps(f, vs), vi));
    }
    if (k < n) dequant_int8_scalar(dst + k, q + k, n - k, s);
}

void quant_fill_avx512(hone_kernels *t) {
    t->dequant_4bit_f32 = dequant_4bit_avx512;
    t->dequant_int8_f32 = dequant_int8_avx512;
}
