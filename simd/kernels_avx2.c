/* kernels_avx2.c — AVX2 + FMA kernels (built with -mavx2 -mfma -mf16c): the
 * 6x16 sgemm micro-kernel for the shared driver (gemm.c) and the vector
 * kernels (bodies in kernels_vec.h, instantiated here on 8-lane __m256). */
#include "kernels.h"
#include "gemm.h"
#include <immintrin.h>

/* 6x16 micro-tile: 12 accumulators + 2 B vectors + 1 broadcast of 16 ymm. */
static void gemm_ukr_6x16(int kc, const float *a, const float *b, float *c, long ldc, int accum) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
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

static const gemm_arch gemm_avx2 = {6, 16, gemm_ukr_6x16};

static void gemm_f32_avx2(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                          int ldb, float beta, float *C, int ldc) {
    gemm_f32_blocked(&gemm_avx2, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

static float dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void axpy_f32_avx2(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

void kernels_fill_avx2(hone_kernels *t) {
    t->isa = "avx2";
    t->gemm_f32 = gemm_f32_avx2;
    t->dot_f32 = dot_f32_avx2;
    t->axpy_f32 = axpy_f32_avx2;
}
