/* kernels_avx512.c — AVX-512 kernels (built with -mavx512f/bw/dq/vl -mfma):
 * the sgemm micro-kernel for the shared driver (gemm.c) and the vector kernels
 * (bodies in kernels_vec.h on 16-lane __m512 with masked tails).
 * Entries not set here keep the AVX2 ones (AVX-512 CPUs all have AVX2). */
#include "simd/kernels.h"
#include "simd/probe.h"
#include "simd/gemm.h"
#include <cpuid.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* MR x 32 micro-tile: 2*MR zmm accumulators, 2 B vectors, A broadcast from
 * memory. The C tile is prefetched first: C is usually far bigger than L2
 * and is touched once per KC block, so its lines would otherwise arrive
 * from L3/DRAM at the end of the tile, on the critical path.
 * Written once for fp32 (T float, one FMA per k) and for bf16 pairs (T uint32_t,
 * one vdpbf16ps per pair of k: gemm.h's gemm_arch_bf16): VB the B vector type,
 * LOADB / BCAST load B and broadcast one A element, MAC(acc, x, b) accumulates. */
#define GEMM_UKR_X32_T(NAME, ATTR, T, VB, LOADB, BCAST, MAC, MR)                                          \
    ATTR static void NAME(int kc, const T *a, const T *b, float *c, long ldc, int accum) {                \
        __m512 acc0[MR], acc1[MR];                                                                        \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                           \
            acc0[i] = acc1[i] = _mm512_setzero_ps();                                                      \
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);                                       \
            _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T0);                                  \
        }                                                                                                 \
        for (int k = 0; k < kc; k++, a += MR, b += 32) {                                                  \
            VB b0 = LOADB(b), b1 = LOADB(b + 16);                                                         \
            _mm_prefetch((const char *)(b + 32 * GEMM_PF_K), _MM_HINT_T0);                                \
            _mm_prefetch((const char *)(b + 32 * GEMM_PF_K + 16), _MM_HINT_T0);                           \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                       \
                VB x = BCAST(a[i]);                                                                       \
                acc0[i] = MAC(acc0[i], x, b0);                                                            \
                acc1[i] = MAC(acc1[i], x, b1);                                                            \
            }                                                                                             \
        }                                                                                                 \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                           \
            float *cr = c + i * ldc;                                                                      \
            if (accum) {                                                                                  \
                acc0[i] = _mm512_add_ps(_mm512_loadu_ps(cr), acc0[i]);                                    \
                acc1[i] = _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc1[i]);                               \
            }                                                                                             \
            _mm512_storeu_ps(cr, acc0[i]);                                                                \
            _mm512_storeu_ps(cr + 16, acc1[i]);                                                           \
        }                                                                                                 \
    }
/* MR x 16 micro-tile: MR zmm accumulators, one B vector per k. */
#define GEMM_UKR_X16_T(NAME, ATTR, T, VB, LOADB, BCAST, MAC, MR)                                          \
    ATTR static void NAME(int kc, const T *a, const T *b, float *c, long ldc, int accum) {                \
        __m512 acc[MR];                                                                                   \
        _Pragma("GCC unroll 32") for (int i = 0; i < MR; i++) {                                           \
            acc[i] = _mm512_setzero_ps();                                                                 \
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);                                       \
            _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);                                  \
        }                                                                                                 \
        for (int k = 0; k < kc; k++, a += MR, b += 16) {                                                  \
            VB b0 = LOADB(b);                                                                             \
            _Pragma("GCC unroll 32") for (int i = 0; i < MR; i++) acc[i] = MAC(acc[i], BCAST(a[i]), b0);  \
        }                                                                                                 \
        _Pragma("GCC unroll 32") for (int i = 0; i < MR; i++) {                                           \
            float *cr = c + i * ldc;                                                                      \
            if (accum) acc[i] = _mm512_add_ps(_mm512_loadu_ps(cr), acc[i]);                               \
            _mm512_storeu_ps(cr, acc[i]);                                                                 \
        }                                                                                                 \
    }
#define F32_MAC(acc, x, b) _mm512_fmadd_ps(x, b, acc)
#define GEMM_UKR_X32(MR) GEMM_UKR_X32_T(gemm_ukr_##MR##x32, , float, __m512, _mm512_loadu_ps, _mm512_set1_ps, F32_MAC, MR)
#define GEMM_UKR_X16(MR) GEMM_UKR_X16_T(gemm_ukr_##MR##x16, , float, __m512, _mm512_loadu_ps, _mm512_set1_ps, F32_MAC, MR)
/* 12x32 measured best on Zen 4 among 8x32, 12x32 and 14x32 (all reach the
 * FMA peak with operands in L1; 12 rows halve the B loads per FMA of 8x32
 * and keep the A micro-panel small). */
GEMM_UKR_X16(24)

#ifndef GEMM_PF_K
#define GEMM_PF_K 8
#endif
GEMM_UKR_X32(12)

/* Transposing pack of an A micro-panel (d[k*W + i] = s[i*ld + k]), 16 k at a
 * time: per group of up to 16 rows, load 16 values of each row (missing rows
 * zero), 16x16 in-register transpose (unpack, shuffle within 128-bit lanes,
 * then 128-bit lane shuffles), store the group's lanes of each k. About 1.3x
 * the scalar loop with A in L3, more from L2. */
static inline void pack_t16_group(const float *s, size_t ld, int rows, int k, float *d, int W) {
    __m512 r[16], t[16], u[16];
    __mmask16 m = (__mmask16)((1u << rows) - 1);
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(s + i * ld + k) : _mm512_setzero_ps();
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* u[4g+j], lane L: column 4L+j, rows 4g..4g+3 */
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44), v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
        _mm512_mask_storeu_ps(d + (size_t)(0 + j) * W, m, _mm512_shuffle_f32x4(v0, v2, 0x88));
        _mm512_mask_storeu_ps(d + (size_t)(4 + j) * W, m, _mm512_shuffle_f32x4(v0, v2, 0xDD));
        _mm512_mask_storeu_ps(d + (size_t)(8 + j) * W, m, _mm512_shuffle_f32x4(v1, v3, 0x88));
        _mm512_mask_storeu_ps(d + (size_t)(12 + j) * W, m, _mm512_shuffle_f32x4(v1, v3, 0xDD));
    }
}

static inline void pack_a_t(const float *s, size_t ld, int kc, float *d, int W) {
    int k = 0;
    for (; k + 16 <= kc; k += 16, d += 16 * W)
        for (int g = 0; g < W; g += 16) pack_t16_group(s + g * ld, ld, W - g < 16 ? W - g : 16, k, d + g, W);
    for (; k < kc; k++, d += W)
        for (int i = 0; i < W; i++) d[i] = s[i * ld + k];
}
static void gemm_pack_a12(const float *s, size_t ld, int kc, float *d) { pack_a_t(s, ld, kc, d, 12); }
static void gemm_pack_a24(const float *s, size_t ld, int kc, float *d) { pack_a_t(s, ld, kc, d, 24); }

/* Two shapes. Intel's server cores run two 512-bit FMAs per cycle, so loads
 * must stay under one per FMA: 12x32 (14 loads per 24 FMAs). AMD Zen 4 splits
 * each 512-bit FMA over its two 256-bit pipes (one per cycle) and has loads to
 * spare: 24x16 keeps the KC x 16 B micro-panel in L1 (24 KB at KC = 384,
 * where 12x32's 48 KB is not): 102 vs 96 GFLOP/s on dW there. */
static int cpu_is_amd(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    return b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163; /* "AuthenticAMD" */
}

/* ---- the vector vocabulary of kernels_vec.h on 16-lane zmm, masked tails ---- */
#define VF __m512
#define VM __mmask16
#define VL 16
#define VNAME(x) x##_avx512
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_LOAD_BF16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_LOADN(p, n, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << (n)) - 1), p)
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_MIN(a, b) _mm512_min_ps(a, b)
#define V_SQRT(a) _mm512_sqrt_ps(a)
#define V_ABS(a) _mm512_abs_ps(a)
#define V_ROUND(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_LDEXP(p, n) _mm512_scalef_ps(p, n)
#define V_LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define V_SEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_HMAX(v) _mm512_reduce_max_ps(v)
#include "simd/kernels_vec.h"

static const gemm_arch gemm_avx512 = {12, 32, gemm_ukr_12x32, gemm_pack_a12, dot_f32_avx512, fmav_avx512};
static const gemm_arch gemm_avx512_zen = {24, 16, gemm_ukr_24x16, gemm_pack_a24, dot_f32_avx512, fmav_avx512};

static void gemm_f32_avx512(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                            int ldb, float beta, float *C, int ldc) {
    gemm_f32_blocked(&gemm_avx512, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
static void gemm_bf16_rounded_avx512(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                                     int ldb, float beta, float *C, int ldc) {
    gemm_f32_rounded_blocked(&gemm_avx512, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
static void gemm_bf16_rounded_avx512_zen(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                                         int ldb, float beta, float *C, int ldc) {
    gemm_f32_rounded_blocked(&gemm_avx512_zen, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
static void gemm_f32_avx512_zen(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                                int ldb, float beta, float *C, int ldc) {
    gemm_f32_blocked(&gemm_avx512_zen, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* AMD's default: the AVX2 table's 6x16 gemm (set by kernels_fill_avx2 before this
 * file's fill; the same function every time), except for op(A) stored (K, M) with
 * more than two rows (the weight gradients dW = dY^T X), which take 24x16: its A
 * panels are 24-float row copies instead of 6, and each B micro-panel is read once
 * per 24 rows. Zen 4, bench_gemm by CPU time, same runs: dW forms +0-2% on a
 * lightly loaded machine, +7-16% at load 4-7 (1 and 2 threads). Both tiles have
 * NR = 16, so the same KC and the same sums: C is bitwise the 6x16 result. */
static void (*gemm_f32_amd_6x16)(int, int, int, int, int, const float *, int, const float *, int, float, float *, int);
static void gemm_f32_avx512_amd(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                float beta, float *C, int ldc) {
    if (ta && M > 2) gemm_f32_blocked(&gemm_avx512_zen, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    else gemm_f32_amd_6x16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}


/* ---- conversions: exact, the scalar reference's rounding and NaN results;
 * 16 per step, the tail with masked loads and stores. (AVX-512 BF16's
 * vcvtneps2bf16 flushes subnormal inputs, so the integer rounding is used.) */

static inline __mmask16 tail16(size_t r) { return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1); }

static void bf16_to_f32_avx512(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
}

static void f32_to_bf16_avx512(uint16_t *dst, const float *src, size_t n) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + i));
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one))), 16);
        __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_blend_epi32(nan, r, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
    }
}

static void f16_to_f32_avx512(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m256i h = _mm256_maskz_loadu_epi16(m, src + i);
        __m512 f = _mm512_cvtph_ps(h);
        __m512i w = _mm512_cvtepu16_epi32(h);
        __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(w, _mm512_set1_epi32(0x7fff)), _mm512_set1_epi32(0x7c00));
        __m512i nv = _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(w, _mm512_set1_epi32(0x8000)), 16),
                                                     _mm512_set1_epi32(0x7f800000)),
                                     _mm512_slli_epi32(_mm512_and_si512(w, _mm512_set1_epi32(0x3ff)), 13));
        f = _mm512_mask_blend_ps(nan, f, _mm512_castsi512_ps(nv));
        _mm512_mask_storeu_ps(dst + i, m, f);
    }
}

static void f32_to_f16_avx512(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, src + i);
        __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512i u = _mm512_castps_si512(x);
        __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        __m512i nv = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000)),
                                     _mm512_set1_epi32(0x7e00));
        h = _mm256_mask_blend_epi16(nan, h, _mm512_cvtepi32_epi16(nv));
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

HONE_PROBE_FMA(probe_fma_f32_avx512, __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32, 16)

/* vdpbf16ps needs the avx512bf16 target (GCC 10+, clang 9+); dispatch.c keeps
 * this probe only where CPUID says the CPU has AVX512-BF16. */
#if defined(__clang__) ? __clang_major__ >= 9 : __GNUC__ >= 10
#define HONE_PROBE_AVX512BF16 1
#define BF16_SET1(u) ((__m512bh)_mm512_set1_epi16((short)(u)))
__attribute__((target("avx512bf16"))) HONE_PROBE_DOT(probe_dot_bf16_avx512, __m512, __m512bh, _mm512_set1_ps,
                                                     BF16_SET1, _mm512_dpbf16_ps, _mm512_cvtss_f32, 16)

/* The pair micro-kernels of gemm_bf16_dot (gemm.h, gemm_arch_bf16): MR x 32 and MR x 16
 * tiles as the fp32 ones, one vdpbf16ps per 16 columns and row adding two k's
 * products, the A pair broadcast from memory. Each lane's sum is the order gemm.h
 * states (the instruction's own), so the tiles differ only in speed. */
#define BF16_LOAD(p) ((__m512bh)_mm512_loadu_si512(p))
#define BF16_BCAST(u) ((__m512bh)_mm512_set1_epi32((int)(u)))
#define GEMM_UKR_BF16_X32(MR)                                                                                  \
    GEMM_UKR_X32_T(gemm_ukr_bf16_##MR##x32, __attribute__((target("avx512bf16"))), uint32_t, __m512bh, BF16_LOAD, \
                   BF16_BCAST, _mm512_dpbf16_ps, MR)
#define GEMM_UKR_BF16_X16(MR)                                                                                  \
    GEMM_UKR_X16_T(gemm_ukr_bf16_##MR##x16, __attribute__((target("avx512bf16"))), uint32_t, __m512bh, BF16_LOAD, \
                   BF16_BCAST, _mm512_dpbf16_ps, MR)
GEMM_UKR_BF16_X32(12)
GEMM_UKR_BF16_X16(24)
static const gemm_arch_bf16 gemm_bf16_12x32 = {12, 32, gemm_ukr_bf16_12x32, f32_to_bf16_avx512};
static const gemm_arch_bf16 gemm_bf16_24x16 = {24, 16, gemm_ukr_bf16_24x16, f32_to_bf16_avx512};
static void gemm_bf16_dot_12x32(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                float beta, float *C, int ldc) {
    gemm_bf16_blocked(&gemm_bf16_12x32, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
static void gemm_bf16_dot_24x16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                float beta, float *C, int ldc) {
    gemm_bf16_blocked(&gemm_bf16_24x16, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
#endif

void kernels_fill_avx512(hone_kernels *t) {
    t->isa = "avx512";
    /* gemm: 12x32 on Intel; on AMD the AVX2 6x16 kernel already in the table
     * (kernels_get fills AVX2 first) measured level with or slightly ahead of
     * 24x16 (medians of 5 on the six training forms, Zen 4: 5 of 6 ahead by
     * 0.7-4%), since Zen 4 runs 512-bit FMAs as two 256-bit halves anyway;
     * but 24x16 for the dW forms (gemm_f32_avx512_amd).
     * HONE_AVX512_GEMM=12x32|24x16|6x16 overrides (tests, tuning; 6x16: 6x16 for all). */
    const char *e = getenv("HONE_AVX512_GEMM");
    if (e && !strcmp(e, "24x16")) t->gemm_f32 = gemm_f32_avx512_zen;
    else if (e && !strcmp(e, "12x32")) t->gemm_f32 = gemm_f32_avx512;
    else if (!(e && !strcmp(e, "6x16")) && !cpu_is_amd()) t->gemm_f32 = gemm_f32_avx512;
    else if (!(e && !strcmp(e, "6x16")) && t->gemm_f32) { /* AMD: 6x16, dW forms 24x16 (above) */
        gemm_f32_amd_6x16 = t->gemm_f32;
        t->gemm_f32 = gemm_f32_avx512_amd;
    }
    /* bf16 rounded operands through whichever fp32 kernel was chosen (AVX2's already set) */
    if (t->gemm_f32 == gemm_f32_avx512) {
        t->gemm_bf16_rounded = t->gemm_bf16 = gemm_bf16_rounded_avx512;
        t->gemm_f32_arch = t->gemm_bf16_rounded_arch = &gemm_avx512;
        t->gemm_bf16_rounded_name = t->gemm_bf16_path = "zmm FMA 12x32 on bf16-rounded operands";
    } else if (t->gemm_f32 == gemm_f32_avx512_zen) {
        t->gemm_bf16_rounded = t->gemm_bf16 = gemm_bf16_rounded_avx512_zen;
        t->gemm_f32_arch = t->gemm_bf16_rounded_arch = &gemm_avx512_zen;
        t->gemm_bf16_rounded_name = t->gemm_bf16_path = "zmm FMA 24x16 on bf16-rounded operands";
    }
    fill_vec_avx512(t);
    t->bf16_to_f32 = bf16_to_f32_avx512;
    t->f16_to_f32 = f16_to_f32_avx512;
    t->f32_to_bf16 = f32_to_bf16_avx512;
    t->f32_to_f16 = f32_to_f16_avx512;
    t->probe_fma_f32 = probe_fma_f32_avx512;
    t->probe_fma_unit = "zmm FMA";
#ifdef HONE_PROBE_AVX512BF16
    if (kernels_cpu_has("avx512bf16")) {
        t->probe_dot_bf16 = probe_dot_bf16_avx512;
        t->probe_bf16_unit = "AVX512-BF16 vdpbf16ps zmm";
        /* 12x32 by default; HONE_BF16_GEMM=24x16 for tuning and tests */
        const char *eb = getenv("HONE_BF16_GEMM");
        int x16 = eb && !strcmp(eb, "24x16");
        t->gemm_bf16_dot = t->gemm_bf16 = x16 ? gemm_bf16_dot_24x16 : gemm_bf16_dot_12x32;
        t->gemm_bf16_dot_name = t->gemm_bf16_path = x16 ? "AVX512-BF16 vdpbf16ps 24x16" : "AVX512-BF16 vdpbf16ps 12x32";
        t->gemm_bf16_dot_arch = x16 ? &gemm_bf16_24x16 : &gemm_bf16_12x32;
    }
#endif
}
