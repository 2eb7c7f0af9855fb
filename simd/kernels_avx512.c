/* kernels_avx512.c — AVX-512 kernels (built with -mavx512f/bw/dq/vl -mfma):
 * the sgemm micro-kernel for the shared driver (gemm.c) and the vector kernels
 * (bodies in kernels_vec.h on 16-lane __m512 with masked tails).
 * Entries not set here keep the AVX2 ones (AVX-512 CPUs all have AVX2). */
#include "kernels.h"
#include "gemm.h"
#include <immintrin.h>

/* MR x 32 micro-tile: 2*MR zmm accumulators, 2 B vectors, A broadcast from
 * memory (folded into the FMA as an embedded broadcast). */
#define GEMM_UKR_X32(MR)                                                                        \
    static void gemm_ukr_##MR##x32(int kc, const float *a, const float *b, float *c, long ldc,  \
                                   int accum) {                                                 \
        __m512 acc0[MR], acc1[MR];                                                              \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc0[i] = acc1[i] =               \
            _mm512_setzero_ps();                                                                \
        for (int k = 0; k < kc; k++, a += MR, b += 32) {                                        \
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);                       \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                             \
                __m512 x = _mm512_set1_ps(a[i]);                                                \
                acc0[i] = _mm512_fmadd_ps(x, b0, acc0[i]);                                      \
                acc1[i] = _mm512_fmadd_ps(x, b1, acc1[i]);                                      \
            }                                                                                   \
        }                                                                                       \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                 \
            float *cr = c + i * ldc;                                                            \
            if (accum) {                                                                        \
                acc0[i] = _mm512_add_ps(_mm512_loadu_ps(cr), acc0[i]);                          \
                acc1[i] = _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc1[i]);                     \
            }                                                                                   \
            _mm512_storeu_ps(cr, acc0[i]);                                                      \
            _mm512_storeu_ps(cr + 16, acc1[i]);                                                 \
        }                                                                                       \
    }
GEMM_UKR_X32(12)
GEMM_UKR_X32(14)
GEMM_UKR_X32(8)

#ifndef HONE_GEMM512_MR
#define HONE_GEMM512_MR 12
#endif
#define UKR_NAME_(m) gemm_ukr_##m##x32
#define UKR_NAME(m) UKR_NAME_(m)
static const gemm_arch gemm_avx512 = {HONE_GEMM512_MR, 32, UKR_NAME(HONE_GEMM512_MR)};

static void gemm_f32_avx512(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                            int ldb, float beta, float *C, int ldc) {
    gemm_f32_blocked(&gemm_avx512, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

static void axpy_f32_avx512(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

void kernels_fill_avx512(hone_kernels *t) {
    t->isa = "avx512";
    t->gemm_f32 = gemm_f32_avx512;
    t->axpy_f32 = axpy_f32_avx512;
}
