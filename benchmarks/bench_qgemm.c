/* bench_qgemm.c — the products with a held (frozen, quantised) weight against the fp32 GEMM on the
 * same shapes, side by side in one run (simd/qgemm.c): X W^T (forward) and dY W (input gradient) for
 * W held as bf16, int8, NF4 and nested NF4, on a QLoRA step's linears (N tokens x Llama-3.2-1B's q_proj,
 * gate_proj, down_proj), with fp32 products (qgemm_xwt / qgemm_xw against gemm_f32 on the fp32 weight)
 * and with bf16 ones (qgemm_*_bf16 against gemm_bf16, the `bf16: true` path: the dot unit where the CPU
 * has one). Prints ms per product (best of BENCH_REPS, default 5) and the ratio to the fp32-held weight's:
 * the cost of dequantising inside the GEMM's packing. BENCH_N sets N (default 512). */
#include "simd/kernels.h"
#include "simd/quant.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct { int type, nested; const char *name; } fmt;

int main(void) {
    kernels_init();
    int N = getenv("BENCH_N") ? atoi(getenv("BENCH_N")) : 512, reps = getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 5;
    static const int shapes[][2] = {{2048, 2048}, {8192, 2048}, {2048, 8192}}; /* (OC, IC) */
    static const char *names[] = {"q_proj 2048x2048", "gate_proj 8192x2048", "down_proj 2048x8192"};
    fmt fm[] = {{HONE_Q_F32, 0, "fp32"}, {HONE_Q_BF16, 0, "bf16"}, {HONE_Q_INT8, 0, "int8"}, {HONE_Q_NF4, 0, "nf4"}, {HONE_Q_NF4, 1, "nf4 nested"}};
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    printf("bench_qgemm: ISA %s, %d threads, N %d tokens, best of %d (ms per product; ratio to the fp32 GEMM)\n", hone_kt.isa, nth, N,
           reps);
    printf("bf16 products: %s\n", hone_kt.gemm_bf16_path);
    printf("%-22s %-5s %-11s %10s %7s %10s %7s\n", "linear", "math", "held as", "X W^T ms", "x fp32", "dY W ms", "x fp32");
    for (int prec = 0; prec < 2; prec++)
    for (int s = 0; s < 3; s++) {
        int OC = shapes[s][0], IC = shapes[s][1];
        float *w = malloc(sizeof(float) * OC * IC), *x = malloc(sizeof(float) * N * IC), *dy = malloc(sizeof(float) * N * OC);
        float *y = malloc(sizeof(float) * N * OC), *dx = malloc(sizeof(float) * N * IC);
        unsigned long long r = 88172645463325252ULL;
        for (size_t i = 0; i < (size_t)OC * IC; i++) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; w[i] = ((r >> 40) / 16777216.f - 0.5f) * 0.05f; }
        for (size_t i = 0; i < (size_t)N * IC; i++) x[i] = w[i % ((size_t)OC * IC)] * 20.f;
        for (size_t i = 0; i < (size_t)N * OC; i++) dy[i] = w[(i * 7) % ((size_t)OC * IC)] * 20.f;
        double base_f = 0, base_b = 0;
        for (size_t k = 0; k < sizeof fm / sizeof *fm; k++) {
            hone_qtensor W;
            if (qtensor_alloc(&W, fm[k].type, fm[k].nested, OC, IC) < 0) { fprintf(stderr, "out of memory\n"); return 1; }
            qtensor_quantize(&W, w);
            double bf = 1e30, bb = 1e30;
            for (int i = 0; i < reps + 1; i++) { /* the first call grows the packing buffers: not timed */
                double t0 = now();
                (prec ? qgemm_xwt_bf16 : qgemm_xwt)(N, x, IC, &W, 0.f, y, OC);
                double t1 = now();
                (prec ? qgemm_xw_bf16 : qgemm_xw)(N, dy, OC, &W, 0.f, dx, IC);
                double t2 = now();
                if (i) { if (t1 - t0 < bf) bf = t1 - t0; if (t2 - t1 < bb) bb = t2 - t1; }
            }
            if (!k) base_f = bf, base_b = bb;
            printf("%-22s %-5s %-11s %10.2f %7.2f %10.2f %7.2f\n", names[s], prec ? "bf16" : "fp32", fm[k].name, bf * 1e3,
                   bf / base_f, bb * 1e3, bb / base_b);
            qtensor_free(&W);
        }
        free(w); free(x); free(dy); free(y); free(dx);
    }
    return 0;
}
