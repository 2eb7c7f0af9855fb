/* kernels_avx2.c — AVX2 + FMA kernels (built with -mavx2 -mfma -mf16c): the
 * 6x16 sgemm micro-kernel for the shared driver (gemm.c) and the vector
 * kernels (bodies in kernels_vec.h, instantiated here on 8-lane __m256). */
#include "simd/kernels.h"
#include "simd/probe.h"
#include "simd/gemm.h"
#include <immintrin.h>
#include <string.h>

/* 6x16 micro-tile: 12 accumulators + 2 B vectors + 1 broadcast of 16 ymm. */
static void gemm_ukr_6x16(int kc, const float *a, const float *b, float *c, long ldc, int accum) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int i = 0; i < 6; i++) { /* C lines arrive while the K loop runs */
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
    for (int k = 0; k < kc; k++, a += 6, b += 16) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
        x = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
#define ST(r, v0, v1)                                                                      \
    do {                                                                                   \
        float *cr = c + (long)(r) * ldc;                                                   \
        if (accum) {                                                                       \
            v0 = _mm256_add_ps(_mm256_loadu_ps(cr), v0);                                   \
            v1 = _mm256_add_ps(_mm256_loadu_ps(cr + 8), v1);                               \
        }                                                                                  \
        _mm256_storeu_ps(cr, v0);                                                          \
        _mm256_storeu_ps(cr + 8, v1);                                                      \
    } while (0)
    ST(0, c00, c01); ST(1, c10, c11); ST(2, c20, c21); ST(3, c30, c31); ST(4, c40, c41); ST(5, c50, c51);
#undef ST
}

/* ---- the vector vocabulary of kernels_vec.h on 8-lane ymm ---- */
#define VF __m256
#define VM __m256
#define VL 8
#define VNAME(x) x##_avx2
static inline __m256i tail_mask_avx2(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256 loadn_avx2(const float *p, int n, float fill) {
    __m256i m = tail_mask_avx2(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float hmax_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_LOAD_BF16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_LOADN(p, n, fill) loadn_avx2(p, n, fill)
#define V_STOREN(p, v, n) _mm256_maskstore_ps(p, tail_mask_avx2(n), v)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_MIN(a, b) _mm256_min_ps(a, b)
#define V_SQRT(a) _mm256_sqrt_ps(a)
#define V_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.f), a)
#define V_ROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_LDEXP(p, n) \
    _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)))
#define V_LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define V_SEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define V_HSUM(v) hsum_avx2(v)
#define V_HMAX(v) hmax_avx2(v)
#include "simd/kernels_vec.h"

static const gemm_arch gemm_avx2 = {6, 16, gemm_ukr_6x16, NULL, dot_f32_avx2, fmav_avx2};

static void gemm_f32_avx2(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                          int ldb, float beta, float *C, int ldc) {
    gemm_f32_blocked(&gemm_avx2, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
static void gemm_bf16_rounded_avx2(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                                   int ldb, float beta, float *C, int ldc) {
    gemm_f32_rounded_blocked(&gemm_avx2, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}


/* ---- conversions: exact, the scalar reference's rounding and NaN results ---- */

static inline __m256 bf16x8_to_f32(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }

/* Round to nearest even on the top 16 bits; NaN -> (u >> 16) | 0x40 (quiet). */
static inline __m128i f32x8_to_bf16(__m256 x) {
    __m256i u = _mm256_castps_si256(x);
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                                     _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))));
    r = _mm256_srli_epi32(r, 16);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
    r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08); /* lanes 0-3 | 4-7 */
    return _mm256_castsi256_si128(r);
}

/* F16C, with NaNs rebuilt as the scalar does (payload kept, no quieting). */
static inline __m256 f16x8_to_f32(__m128i h) {
    __m256 f = _mm256_cvtph_ps(h);
    __m256i w = _mm256_cvtepu16_epi32(h);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x7fff)), _mm256_set1_epi32(0x7c00));
    __m256i nv = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x8000)), 16),
                                                 _mm256_set1_epi32(0x7f800000)),
                                 _mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x3ff)), 13));
    return _mm256_blendv_ps(f, _mm256_castsi256_ps(nv), _mm256_castsi256_ps(nan));
}

/* F16C round-to-nearest-even; NaN -> sign | 0x7e00 as the scalar does. */
static inline __m128i f32x8_to_f16(__m256 x) {
    __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i u = _mm256_castps_si256(x);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    __m256i nv = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x8000)),
                                 _mm256_set1_epi32(0x7e00));
    __m128i nv16 = _mm_packus_epi32(_mm256_castsi256_si128(nv), _mm256_extracti128_si256(nv, 1));
    __m128i m16 = _mm_packs_epi32(_mm256_castsi256_si128(nan), _mm256_extracti128_si256(nan, 1));
    return _mm_blendv_epi8(h, nv16, m16);
}

/* Each conversion: full vectors of 8, then the tail through a zeroed local. */
#define CONV_LOOP(name, dst_t, src_t, body)                                                  \
    static void name(dst_t *dst, const src_t *src, size_t n) {                               \
        size_t i = 0;                                                                        \
        for (; i + 8 <= n; i += 8) body(dst + i, src + i);                                   \
        if (i < n) {                                                                         \
            src_t s[8] = {0};                                                                \
            dst_t d[8];                                                                      \
            memcpy(s, src + i, (n - i) * sizeof(src_t));                                     \
            body(d, s);                                                                      \
            memcpy(dst + i, d, (n - i) * sizeof(dst_t));                                     \
        }                                                                                    \
    }
#define BODY_BF16_F32(d, s) _mm256_storeu_ps(d, bf16x8_to_f32(_mm_loadu_si128((const __m128i *)(s))))
#define BODY_F16_F32(d, s) _mm256_storeu_ps(d, f16x8_to_f32(_mm_loadu_si128((const __m128i *)(s))))
#define BODY_F32_BF16(d, s) _mm_storeu_si128((__m128i *)(d), f32x8_to_bf16(_mm256_loadu_ps(s)))
#define BODY_F32_F16(d, s) _mm_storeu_si128((__m128i *)(d), f32x8_to_f16(_mm256_loadu_ps(s)))
CONV_LOOP(bf16_to_f32_avx2, float, uint16_t, BODY_BF16_F32)
CONV_LOOP(f16_to_f32_avx2, float, uint16_t, BODY_F16_F32)
CONV_LOOP(f32_to_bf16_avx2, uint16_t, float, BODY_F32_BF16)
CONV_LOOP(f32_to_f16_avx2, uint16_t, float, BODY_F32_F16)

/* kernels.h round_bf16: x = bf16(x) in fp32, round_bf16_scalar's integer steps on 8 lanes (a NaN
 * made quiet, the rest rounded to nearest even), then the scalar on the tail */
static void round_bf16_avx2(float *x, size_t n) {
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), hi = _mm256_set1_epi32((int)0xffff0000u);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
        r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x400000)), nan);
        _mm256_storeu_si256((__m256i *)(x + i), _mm256_and_si256(r, hi));
    }
    for (; i < n; i++) { /* the scalar reference's steps */
        uint32_t u;
        memcpy(&u, x + i, 4);
        if ((u & 0x7fffffff) > 0x7f800000) u |= 0x400000;
        else u += 0x7fff + ((u >> 16) & 1);
        u &= 0xffff0000u;
        memcpy(x + i, &u, 4);
    }
}

HONE_PROBE_FMA(probe_fma_f32_avx2, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32, 8)

void kernels_fill_avx2(hone_kernels *t) {
    t->isa = "avx2";
    t->gemm_f32 = gemm_f32_avx2;
    t->gemm_bf16_rounded = t->gemm_bf16 = gemm_bf16_rounded_avx2;
    t->gemm_f32_arch = t->gemm_bf16_rounded_arch = &gemm_avx2;
    t->round_bf16 = round_bf16_avx2;
    t->gemm_bf16_rounded_name = t->gemm_bf16_path = "ymm FMA 6x16 on bf16-rounded operands";
    fill_vec_avx2(t);
    t->bf16_to_f32 = bf16_to_f32_avx2;
    t->f16_to_f32 = f16_to_f32_avx2;
    t->f32_to_bf16 = f32_to_bf16_avx2;
    t->f32_to_f16 = f32_to_f16_avx2;
    t->probe_fma_f32 = probe_fma_f32_avx2;
    t->probe_fma_unit = "ymm FMA";
    t->probe_dot_bf16 = NULL;
    t->probe_bf16_unit = NULL;
}
