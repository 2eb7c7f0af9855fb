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

/* splitmix64's finaliser on 8 lanes (vpmullq: AVX-512 DQ) */
static inline __m512i mix64_avx512(__m512i z) {
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xbf58476d1ce4e5b9ULL));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94d049bb133111ebULL));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

/* 16 elements a step: two 8-lane hashes, their top 24 bits as floats, the scalar's compare */
static void dropout_avx512(float *y, const float *x, size_t i0, size_t n, float p, uint64_t seed, int acc) {
    const __m512i G = _mm512_set1_epi64((long long)0x9e3779b97f4a7c15ULL), S = _mm512_set1_epi64((long long)seed);
    const __m512i iota = _mm512_setr_epi64(1, 2, 3, 4, 5, 6, 7, 8), eight = _mm512_set1_epi64(8);
    const __m512 vp = _mm512_set1_ps(p), vk = _mm512_set1_ps(1.0f / (1.0f - p)), sc = _mm512_set1_ps(1.0f / 16777216.0f);
    size_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m512i i_lo = _mm512_add_epi64(_mm512_set1_epi64((long long)(i0 + k)), iota), i_hi = _mm512_add_epi64(i_lo, eight);
        __m512i h_lo = mix64_avx512(_mm512_add_epi64(S, _mm512_mullo_epi64(G, i_lo)));
        __m512i h_hi = mix64_avx512(_mm512_add_epi64(S, _mm512_mullo_epi64(G, i_hi)));
        __m256i u_lo = _mm512_cvtepi64_epi32(_mm512_srli_epi64(h_lo, 40)), u_hi = _mm512_cvtepi64_epi32(_mm512_srli_epi64(h_hi, 40));
        __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_inserti64x4(_mm512_castsi256_si512(u_lo), u_hi, 1)), sc);
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + k), _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(u, vp, _CMP_GE_OQ), vk));
        if (acc) v = _mm512_add_ps(_mm512_loadu_ps(y + k), v);
        _mm512_storeu_ps(y + k, v);
    }
    if (k < n) dropout_f32_scalar(y + k, x + k, i0 + k, n - k, p, seed, acc);
}

void quant_fill_avx512(hone_kernels *t) {
    t->dequant_4bit_f32 = dequant_4bit_avx512;
    t->dequant_int8_f32 = dequant_int8_avx512;
    t->dropout_f32 = dropout_avx512;
}
