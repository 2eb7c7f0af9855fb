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

/* the low 64 bits of a * c on 4 lanes, c a constant split in 32-bit halves (AVX2 has no vpmullq) */
static inline __m256i mul64c(__m256i a, uint64_t c) {
    __m256i clo = _mm256_set1_epi64x((long long)(c & 0xffffffffu)), chi = _mm256_set1_epi64x((long long)(c >> 32));
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(a, chi), _mm256_mul_epu32(_mm256_srli_epi64(a, 32), clo));
    return _mm256_add_epi64(_mm256_mul_epu32(a, clo), _mm256_slli_epi64(cross, 32));
}
/* (splitmix64's finaliser of seed + G * i) >> 40 on 4 lanes, as 4 int32 */
static inline __m128i hash24_avx2(__m256i i, __m256i s) {
    __m256i z = _mm256_add_epi64(s, mul64c(i, 0x9e3779b97f4a7c15ULL));
    z = mul64c(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xbf58476d1ce4e5b9ULL);
    z = mul64c(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94d049bb133111ebULL);
    z = _mm256_srli_epi64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 31)), 40);
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(z, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)));
}

/* 8 elements a step: two 4-lane hashes, the scalar's compare */
static void dropout_avx2(float *y, const float *x, size_t i0, size_t n, float p, uint64_t seed, int acc) {
    const __m256i S = _mm256_set1_epi64x((long long)seed), iota = _mm256_setr_epi64x(1, 2, 3, 4), four = _mm256_set1_epi64x(4);
    const __m256 vp = _mm256_set1_ps(p), vk = _mm256_set1_ps(1.0f / (1.0f - p)), sc = _mm256_set1_ps(1.0f / 16777216.0f);
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256i i_lo = _mm256_add_epi64(_mm256_set1_epi64x((long long)(i0 + k)), iota);
        __m256i u32 = _mm256_inserti128_si256(_mm256_castsi128_si256(hash24_avx2(i_lo, S)),
                                              hash24_avx2(_mm256_add_epi64(i_lo, four), S), 1);
        __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(u32), sc);
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + k), _mm256_and_ps(_mm256_cmp_ps(u, vp, _CMP_GE_OQ), vk));
        if (acc) v = _mm256_add_ps(_mm256_loadu_ps(y + k), v);
        _mm256_storeu_ps(y + k, v);
    }
    if (k < n) dropout_f32_scalar(y + k, x + k, i0 + k, n - k, p, seed, acc);
}

void quant_fill_avx2(hone_kernels *t) {
    t->dequant_4bit_f32 = dequant_4bit_avx2;
    t->dequant_int8_f32 = dequant_int8_avx2;
    t->dropout_f32 = dropout_avx2;
}
