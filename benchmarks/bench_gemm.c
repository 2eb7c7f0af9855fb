/* bench_gemm.c — sgemm GFLOP/s of hone's kernels (the AVX-512 micro-kernel
 * and the AVX2 one) next to OpenBLAS cblas_sgemm in the same run, on 1 and 2
 * threads, for square sizes and the SmolLM2-135M training shapes in their three forms:
 *   fwd  Y  (T,out) = X (T,in) @ W^T        ta=0 tb=1
 *   dX   dX (T,in)  = dY (T,out) @ W        ta=0 tb=0
 *   dW   dW (out,in)= dY^T @ X              ta=1 tb=0
 * plus the measured FMA peak (register-only FMA loop) and % of it.
 * Usage: bench_gemm [quick]   (quick: skip the vocabulary-sized shape) */
#include "simd/kernels.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* Register-only FMA loops: 12 independent chains cover latency x pipes. */
#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) static double fma_loop_512(long iters) {
    __m512 a[12], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    float s = 0;
    for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(a[i]);
    return s;
}
__attribute__((target("avx2,fma"))) static double fma_loop_256(long iters) {
    __m256 a[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    float s = 0, t[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(t, a[i]);
        for (int j = 0; j < 8; j++) s += t[j];
    }
    return s;
}
#endif

/* GFLOP/s of the FMA loop on nth threads (each thread runs its own loop),
 * best of 6: by the wall clock, and (*cpu) summed over the threads by each
 * thread's own CPU time, which a busy machine does not distort. */
static double fma_peak(int nth, int w512, double *cpu) {
    long iters = 10000000;
    double best = 0;
    *cpu = 0;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now(), sink = 0, csum = 0;
#pragma omp parallel num_threads(nth) reduction(+ : sink, csum)
        {
            double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
#if defined(__x86_64__)
            sink += w512 ? fma_loop_512(iters) : fma_loop_256(iters);
#endif
            csum += (double)iters * 12 * (w512 ? 16 : 8) * 2 / (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e9;
        }
        double t = now() - t0;
        double flops = (double)nth * iters * 12 * (w512 ? 16 : 8) * 2;
        if (flops / t / 1e9 > best) best = flops / t / 1e9;
        if (csum > *cpu) *cpu = csum;
        if (sink == 42) printf(" ");
    }
    return best;
}

typedef struct { const char *name; int ta, tb, M, N, K; } shape;

static void run_one(hone_kernels *kt, int ta, int tb, int M, int N, int K, const float *A, int lda,
                    const float *B, int ldb, float *C, int ldc) {
    if (kt)
        kt->gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, 0.f, C, ldc);
    else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                    1.f, A, lda, B, ldb, 0.f, C, ldc);
}

/* Best-of-reps GFLOP/s of each implementation (kts[i], NULL = OpenBLAS):
 * wall[i] by the wall clock, and cpu[i] by CPU time (what it would reach with
 * the cores to itself: on a shared machine descheduled time does not count,
 * spinning or waiting threads do): on one thread the thread's CPU clock per
 * call; on two the process CPU clock / 2 over each block of reps (Linux
 * updates other threads' times at scheduler ticks, so one call is too short).
 * Two rounds, each running every implementation's reps in a block after a
 * pause: OpenBLAS's idle workers spin for a long while after a call (and
 * OpenMP's briefly), which would steal a core from whatever runs next. */
static void time_gemms(hone_kernels **kts, int nk, int nth, const shape *s, const float *A, const float *B,
                       float *C, int reps, double *wall, double *cpu) {
    omp_set_num_threads(nth);
    openblas_set_num_threads(nth);
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double flops = 2.0 * s->M * s->N * s->K;
    clockid_t cid = CLOCK_THREAD_CPUTIME_ID;
    for (int i = 0; i < nk; i++) wall[i] = cpu[i] = 0;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < nk; i++) {
            struct timespec pause = {0, 150000000};
            nanosleep(&pause, NULL);
            if (round == 0 && reps > 1) run_one(kts[i], s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, C, s->N);
            double p0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            int nr = (reps + 1) / 2;
            for (int r = 0; r < nr; r++) {
                double t0 = now(), c0 = clock_s(cid);
                run_one(kts[i], s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, C, s->N);
                double w = flops / (now() - t0) / 1e9, c = flops / (clock_s(cid) - c0) / 1e9;
                if (w > wall[i]) wall[i] = w;
                if (nth == 1 && c > cpu[i]) cpu[i] = c;
            }
            double cb = flops * nr / ((clock_s(CLOCK_PROCESS_CPUTIME_ID) - p0) / nth) / 1e9;
            if (nth > 1 && cb > cpu[i]) cpu[i] = cb;
        }
}

int main(int argc, char **argv) {
    int quick = argc > 1 && !strcmp(argv[1], "quick");
    int maxth = getenv("BENCH_THREADS") ? atoi(getenv("BENCH_THREADS")) : 2; /* 1 or 2 */
    int extra = getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 0;
    const char *only = getenv("BENCH_ONLY"); /* substring filter on the shape name */
    kernels_init();
    /* Columns: the AVX-512 table with a 512-bit micro-kernel forced (24x16 on
     * AMD, 12x32 elsewhere: on AMD the dispatched AVX-512 table keeps the AVX2
     * 6x16 gemm), the AVX2 table, OpenBLAS. */
    hone_kernels best = hone_kt, avx2, k512;
    int have_avx2 = kernels_get("avx2", &avx2) == 0;
    int w512 = !strcmp(best.isa, "avx512");
    const char *shape512 = "";
    int disp = 0; /* the column hone's dispatch uses: the ratios are taken from it */
    if (w512) {
        unsigned a, b, c, d;
        int amd = __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541;
        shape512 = amd ? "24x16" : "12x32";
        disp = amd ? 1 : 0; /* on AMD the dispatched table's gemm is the AVX2 one */
        setenv("HONE_AVX512_GEMM", shape512, 1);
        kernels_get("avx512", &k512);
        unsetenv("HONE_AVX512_GEMM");
        kernels_init();
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("hone gemm benchmark: dispatch picks %s; columns: %s%s%s, avx2 6x16, OpenBLAS\n", best.isa,
           w512 ? "avx512 " : best.isa, shape512, w512 ? " (forced)" : "");
    printf("OpenBLAS %s, core %s, OPENBLAS_CORETYPE=%s\n", openblas_get_config(), openblas_get_corename(),
           ct ? ct : "(unset)");
    double cp1, cp2, pk1 = fma_peak(1, w512, &cp1), pk2 = fma_peak(2, w512, &cp2);
    printf("measured FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f on 2 by the wall clock; %.1f and %.1f by CPU\n"
           "time (the peak of cores to ourselves: %%pk is against these)\n\n",
           w512 ? "zmm" : "ymm", pk1, pk2, cp1, cp2);
    shape shapes[64];
    int ns = 0;
    static char names[64][48];
    for (int n = 256; n <= 2048; n *= 2) {
        snprintf(names[ns], 48, "square %d", n);
        shapes[ns] = (shape){names[ns], 0, 0, n, n, n};
        ns++;
    }
    int tr[][3] = {{4096, 576, 1536}, {4096, 1536, 576}, {4096, 576, 49152}};
    for (int t = 0; t < 3; t++) {
        if (quick && t == 2) continue;
        int T = tr[t][0], in = tr[t][1], out = tr[t][2];
        snprintf(names[ns], 48, "%dx%dx%d fwd", T, in, out);
        shapes[ns] = (shape){names[ns], 0, 1, T, out, in};
        ns++;
        snprintf(names[ns], 48, "%dx%dx%d dX", T, in, out);
        shapes[ns] = (shape){names[ns], 0, 0, T, in, out};
        ns++;
        snprintf(names[ns], 48, "%dx%dx%d dW", T, in, out);
        shapes[ns] = (shape){names[ns], 1, 0, out, in, T};
        ns++;
    }
    char la[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (!fgets(la, sizeof la, lf)) la[0] = 0;
        la[strcspn(la, "\n")] = 0;
        fclose(lf);
    }
    printf("load average at start: %s\n", la);
    printf("GFLOP/s by the wall clock, and by CPU time (per thread count);\n"
           "w, c = %s (what dispatch uses) / OpenBLAS\n", disp ? "avx2" : "the first column");
    printf("%-22s %5s %5s %5s |%6s %6s %6s %5s %5s %5s|%6s %6s %6s %5s %5s %5s\n", "shape", "M", "N", "K",
           "512_1", "avx2", "oblas", "w", "c", "%pk", "512_2", "avx2", "oblas", "w", "c", "%pk");
    for (int i = 0; i < ns; i++) {
        shape *s = &shapes[i];
        if (only && !strstr(s->name, only)) continue;
        size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
        float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4);
        for (size_t j = 0; j < na; j++) A[j] = (float)((j * 7919) % 1000) * 1e-3f - 0.5f;
        for (size_t j = 0; j < nb; j++) B[j] = (float)((j * 104729) % 1000) * 1e-3f - 0.5f;
        memset(C, 0, nc * 4);
        double fl = 2.0 * s->M * s->N * s->K;
        int reps = (fl > 50e9 ? 1 : fl > 5e9 ? 4 : 8) + extra; /* per round */
        double w[2][3], c[2][3];
        memset(w, 0, sizeof w);
        memset(c, 0, sizeof c);
        hone_kernels *kts[3] = {w512 ? &k512 : &best, have_avx2 ? &avx2 : &best, NULL};
        for (int t = 0; t < maxth; t++) time_gemms(kts, 3, t + 1, s, A, B, C, reps, w[t], c[t]);
        if (!have_avx2) w[0][1] = w[1][1] = c[0][1] = c[1][1] = 0;
        printf("%-22s %5d %5d %5d |%6.1f %6.1f %6.1f %5.2f %5.2f %5.0f|%6.1f %6.1f %6.1f %5.2f %5.2f %5.0f\n",
               s->name, s->M, s->N, s->K, w[0][0], w[0][1], w[0][2], w[0][disp] / w[0][2], c[0][disp] / c[0][2],
               100 * w[0][disp] / cp1, w[1][0], w[1][1], w[1][2], w[1][disp] / w[1][2], c[1][disp] / c[1][2],
               100 * w[1][disp] / cp2);
        printf("%-22s %5s %5s %5s |%6.1f %6.1f %6.1f %5s %5s %5.0f|%6.1f %6.1f %6.1f %5s %5s %5.0f\n", "  (by CPU time)",
               "", "", "", c[0][0], c[0][1], c[0][2], "", "", 100 * c[0][disp] / cp1, c[1][0], c[1][1], c[1][2], "", "",
               100 * c[1][disp] / cp2);
        fflush(stdout);
        free(A); free(B); free(C);
    }
    return 0;
}
