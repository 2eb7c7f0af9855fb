/* simd/qgemm.c — products with a held weight (simd/quant.h): Y = X W^T (forward) and
 * dX = dY W (input gradient) with W bf16, int8, NF4 or FP4, in fp32 (gemm_f32's sums) or
 * with bf16 operands (gemm_bf16's: `bf16: true`).
 *
 * W is the GEMM's B operand read through a source (simd/gemm.h gemm_bsrc): the B packs ask
 * for short runs of W's rows (a kc-long run of one row for the forward, an nc-wide run of one
 * row for dX) and this file dequantises each run with the kernel table's dequantisers straight
 * into the packing, so no fp32 copy of W (nor of a panel of it) is ever made. A bf16-held W
 * needs no conversion at all on the bf16 pair path: its runs are copied into the pair layout.
 * The packed values are those of packing the fully dequantised weight, so each product is
 * bitwise the table's GEMM of that weight at any thread count (tests/test_kernels_quant.c). */
#include "simd/quant.h"
#include "simd/kernels.h"
#include "simd/gemm.h"
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* gemm_bsrc rows of a held weight: dequantised to fp32, or (bf16-held) copied as bf16 */
static void row_f32(const void *ctx, int r, int c, int n, float *dst) {
    qtensor_dequant_rect((const hone_qtensor *)ctx, r, r + 1, c, c + n, dst, (size_t)n);
}
static void row_bf16_held(const void *ctx, int r, int c, int n, uint16_t *dst) {
    const hone_qtensor *t = ctx;
    memcpy(dst, (const uint16_t *)t->data + (size_t)r * t->cols + c, sizeof(uint16_t) * (size_t)n);
}
static gemm_bsrc source_of(const hone_qtensor *W) {
    gemm_bsrc s = {W, row_f32, W->type == HONE_Q_BF16 ? row_bf16_held : NULL, 0, 0};
    return s;
}

/* gemm_f32_scalar's loops (kernels_scalar.c: a plain loop, not the blocked driver) with B's rows
 * dequantised once each: every element the same products summed in the same order, so
 * bitwise that kernel on the dequantised weight. tb: B stored (N, K); else (K, N). */
static void gemm_plain_src(int tb, int M, int N, int K, const float *A, int lda, const hone_qtensor *W, float beta,
                           float *C, int ldc) {
    if (tb) {
#pragma omp parallel
        {
            float buf[1024];
            /* a row of K floats: on the stack up to 1024, else one allocation per thread */
            float *row = K <= 1024 ? buf : malloc(sizeof(float) * (size_t)K);
            if (!row) abort(); /* a few KB: nothing sensible to do inside a kernel */
#pragma omp for schedule(static)
            for (int j = 0; j < N; j++) {
                row_f32(W, j, 0, K, row);
                for (int i = 0; i < M; i++) {
                    const float *a = A + (size_t)i * lda;
                    float acc = 0.f;
                    for (int k = 0; k < K; k++) acc += a[k] * row[k];
                    float *c = C + (size_t)i * ldc + j;
                    *c = beta != 0.f ? *c + acc : acc;
                }
            }
            if (row != buf) free(row);
        }
        return;
    }
    float *row = malloc(sizeof(float) * (size_t)N);
    if (!row) abort();
    for (int i = 0; i < M; i++)
        if (beta == 0.f) memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
    for (int k = 0; k < K; k++) {
        row_f32(W, k, 0, N, row);
#pragma omp parallel for schedule(static) if ((long)M * N >= 65536)
        for (int i = 0; i < M; i++) {
            float a = A[(size_t)i * lda + k], *c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++) c[j] += a * row[j];
        }
    }
    free(row);
}

/* C (M, N) = beta C + A op(W) with the table's fp32 GEMM (tb: op(W) = W^T, N = rows) */
static void qgemm_f32(int tb, int M, int N, int K, const float *A, int lda, const hone_qtensor *W, float beta, float *C,
                      int ldc) {
    if (W->type == HONE_Q_F32) {
        hone_kt.gemm_f32(0, tb, M, N, K, A, lda, W->data, W->cols, beta, C, ldc);
        return;
    }
    if (!hone_kt.gemm_f32_arch) {
        gemm_plain_src(tb, M, N, K, A, lda, W, beta, C, ldc);
        return;
    }
    gemm_bsrc s = source_of(W);
    gemm_f32_blocked_src(hone_kt.gemm_f32_arch, 0, tb, M, N, K, A, lda, &s, beta, C, ldc);
}

/* the same with gemm_bf16's contract: the pair unit where gemm_bf16 is the dot path, else the
 * fp32 kernels on bf16-rounded operands */
static void qgemm_bf16(int tb, int M, int N, int K, const float *A, int lda, const hone_qtensor *W, float beta, float *C,
                       int ldc) {
    if (W->type == HONE_Q_F32) {
        hone_kt.gemm_bf16(0, tb, M, N, K, A, lda, W->data, W->cols, beta, C, ldc);
        return;
    }
    gemm_bsrc s = source_of(W);
    if (hone_kt.gemm_bf16 == hone_kt.gemm_bf16_dot) {
        /* the dot unit: every filler that installs one names its micro-kernel, so a held W
         * gets the same products as a plain one */
        if (!hone_kt.gemm_bf16_dot_arch) abort();
        gemm_bf16_blocked_src(hone_kt.gemm_bf16_dot_arch, 0, tb, M, N, K, A, lda, &s, beta, C, ldc);
    }
    else if (hone_kt.gemm_bf16_rounded_arch)
        gemm_f32_rounded_blocked_src(hone_kt.gemm_bf16_rounded_arch, 0, tb, M, N, K, A, lda, &s, beta, C, ldc);
    else
        abort(); /* every ISA's filler names its rounded path's micro-kernel */
}

void qgemm_xwt(int N, const float *X, int ldx, const hone_qtensor *W, float beta, float *Y, int ldy) {
    qgemm_f32(1, N, W->rows, W->cols, X, ldx, W, beta, Y, ldy);
}

void qgemm_xw(int N, const float *dY, int ldy, const hone_qtensor *W, float beta, float *dX, int ldx) {
    qgemm_f32(0, N, W->cols, W->rows, dY, ldy, W, beta, dX, ldx);
}

void qgemm_xwt_bf16(int N, const float *X, int ldx, const hone_qtensor *W, float beta, float *Y, int ldy) {
    qgemm_bf16(1, N, W->rows, W->cols, X, ldx, W, beta, Y, ldy);
}

void qgemm_xw_bf16(int N, const float *dY, int ldy, const hone_qtensor *W, float beta, float *dX, int ldx) {
    qgemm_bf16(0, N, W->cols, W->rows, dY, ldy, W, beta, dX, ldx);
}
