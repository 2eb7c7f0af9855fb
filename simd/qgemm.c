/* simd/qgemm.c — products with a held weight (simd/quant.h): Y = X W^T (forward) and
 * dX = dY W (input gradient) with W bf16, int8, NF4 or FP4.
 *
 * W is never expanded beyond a fixed panel: at most 4M floats (16 MB; whole rows of W for the
 * forward, whole columns for dX; a smaller weight fits in one) are dequantised into a
 * per-thread buffer, then the table's fp32 GEMM runs on the panel. Each panel repacks the
 * other operand, so panels are as large as that bound allows (measured, bench_qgemm, 2048x8192
 * at N 512: 4 MB panels 1.8x the fp32 GEMM's time, 16 MB panels 1.3x). The GEMM's summation order over K depends on K
 * and the cache sizes only, never on N or the column range of C (simd/gemm.h), so each
 * output is bitwise the fp32 GEMM of the fully dequantised weight, at any thread count.
 * The panel pass costs one write and one read of the panel next to its 2 * N * 4M flops. */
#include "simd/quant.h"
#include "simd/kernels.h"
#include <pthread.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PANEL_FLOATS ((size_t)1 << 22) /* 16 MB */

/* the caller thread's panel buffer: grown to the largest panel met (the first step of a
 * training loop), freed when the thread exits */
static _Thread_local float *panel;
static _Thread_local size_t panel_cap;
static pthread_key_t panel_key;
static pthread_once_t panel_once = PTHREAD_ONCE_INIT;
static void panel_key_init(void) { pthread_key_create(&panel_key, free); }

static float *panel_get(size_t n) {
    if (n <= panel_cap) return panel;
    pthread_once(&panel_once, panel_key_init);
    free(panel);
    panel = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    panel_cap = panel ? n : 0;
    pthread_setspecific(panel_key, panel);
    return panel;
}

/* rows [r0, r1), columns [c0, c1) of W into dst (row stride c1 - c0), rows over threads */
static void dequant_panel(const hone_qtensor *W, int r0, int r1, int c0, int c1, float *dst) {
    int w = c1 - c0;
#pragma omp parallel for schedule(static) if ((size_t)(r1 - r0) * w >= 65536)
    for (int r = r0; r < r1; r += 8) {
        int e = r + 8 < r1 ? r + 8 : r1;
        qtensor_dequant_rect(W, r, e, c0, c1, dst + (size_t)(r - r0) * w, (size_t)w);
    }
}

void qgemm_xwt(int N, const float *X, int ldx, const hone_qtensor *W, float beta, float *Y, int ldy) {
    int OC = W->rows, IC = W->cols;
    if (W->type == HONE_Q_F32) {
        hone_kt.gemm_f32(0, 1, N, OC, IC, X, ldx, W->data, IC, beta, Y, ldy);
        return;
    }
    size_t rows = PANEL_FLOATS / (size_t)IC;
    rows = rows / 16 * 16;
    if (rows < 16) rows = 16;
    if (rows > (size_t)OC) rows = OC;
    float *P = panel_get(rows * IC);
    if (!P) abort(); /* a 4 MB buffer: nothing sensible to do inside a kernel */
    for (int r0 = 0; r0 < OC; r0 += (int)rows) {
        int r1 = r0 + (int)rows < OC ? r0 + (int)rows : OC;
        dequant_panel(W, r0, r1, 0, IC, P);
        hone_kt.gemm_f32(0, 1, N, r1 - r0, IC, X, ldx, P, IC, beta, Y + r0, ldy);
    }
}

void qgemm_xw(int N, const float *dY, int ldy, const hone_qtensor *W, float beta, float *dX, int ldx) {
    int OC = W->rows, IC = W->cols;
    if (W->type == HONE_Q_F32) {
        hone_kt.gemm_f32(0, 0, N, IC, OC, dY, ldy, W->data, IC, beta, dX, ldx);
        return;
    }
    size_t cols = PANEL_FLOATS / (size_t)OC;
    cols = cols / 64 * 64;
    if (cols < 64) cols = 64;
    if (cols > (size_t)IC) cols = IC;
    float *P = panel_get(cols * OC);
    if (!P) abort();
    for (int c0 = 0; c0 < IC; c0 += (int)cols) {
        int c1 = c0 + (int)cols < IC ? c0 + (int)cols : IC;
        dequant_panel(W, 0, OC, c0, c1, P);
        hone_kt.gemm_f32(0, 0, N, c1 - c0, OC, dY, ldy, P, c1 - c0, beta, dX + c0, ldx);
    }
}
