/* simd/peak.c — measures the register-only peak probes of a kernel table
 * (kernels.h, probe_fma_f32 / probe_dot_bf16): what one core and the threads in
 * use can reach at most, the yardstick hone info and bench_gemm print beside
 * their numbers. Timed by each thread's CPU clock (a shared machine's other
 * load does not lower it) and by the wall clock. */
#include "simd/kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int kernels_peak(const hone_kernels *t, int bf16, int nthreads, hone_peak *p) {
    double (*fn)(long, float *) = bf16 ? t->probe_dot_bf16 : t->probe_fma_f32;
    memset(p, 0, sizeof *p);
    if (!fn) return -1;
    if (nthreads < 1) nthreads = 1;
    float out[HONE_PROBE_CHAINS];
    /* Calibrate on one thread: grow until a run takes 2 ms, then aim at 25 ms. */
    long iters = 1000;
    for (;;) {
        double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        fn(iters, out);
        double dt = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        if (dt >= 2e-3 || iters >= (1L << 40)) {
            iters = (long)(iters * (0.025 / (dt > 1e-6 ? dt : 1e-6)));
            break;
        }
        iters *= 8;
    }
    if (iters < 1) iters = 1;
    for (int rep = 0; rep < 3; rep++) {
        double cpu = 0, flops = 0, w0 = clock_s(CLOCK_MONOTONIC);
        int ran = 1;
#pragma omp parallel num_threads(nthreads) reduction(+ : cpu, flops)
        {
            float o[HONE_PROBE_CHAINS];
            double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            double f = fn(iters, o);
            double dt = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
            cpu += f / (dt > 1e-9 ? dt : 1e-9) / 1e9;
            flops += f;
#ifdef _OPENMP
#pragma omp single
            ran = omp_get_num_threads();
#endif
        }
        double wall = flops / (clock_s(CLOCK_MONOTONIC) - w0) / 1e9;
        if (cpu > p->cpu) p->cpu = cpu;
        if (wall > p->wall) p->wall = wall;
        p->threads = ran;
    }
    return 0;
}

void kernels_select_bf16(hone_kernels *t, char *why, size_t why_size) {
    const char *force = getenv("HONE_BF16_PATH");
    char tmp[8];
    if (!why || !why_size) why = tmp, why_size = sizeof tmp;
    if (!t->gemm_bf16_dot) {
        t->gemm_bf16 = t->gemm_bf16_rounded, t->gemm_bf16_path = t->gemm_bf16_rounded_name;
        snprintf(why, why_size, "%s (no bf16 dot-product unit in the %s kernels on this CPU)", t->gemm_bf16_path, t->isa);
        return;
    }
    if (force && (!strcmp(force, "dot") || !strcmp(force, "rounded"))) {
        int dot = !strcmp(force, "dot");
        t->gemm_bf16 = dot ? t->gemm_bf16_dot : t->gemm_bf16_rounded;
        t->gemm_bf16_path = dot ? t->gemm_bf16_dot_name : t->gemm_bf16_rounded_name;
        snprintf(why, why_size, "%s (HONE_BF16_PATH=%s)", t->gemm_bf16_path, force);
        return;
    }
    hone_peak f, b;
    kernels_peak(t, 0, 1, &f);
    kernels_peak(t, 1, 1, &b);
    /* the dot unit only where it beats fp32 FMA: on Intel's AVX-512 cores vdpbf16ps
     * peaks near half the FMA rate (issue 15), on Zen 4 at twice it */
    int dot = b.cpu > f.cpu;
    t->gemm_bf16 = dot ? t->gemm_bf16_dot : t->gemm_bf16_rounded;
    t->gemm_bf16_path = dot ? t->gemm_bf16_dot_name : t->gemm_bf16_rounded_name;
    snprintf(why, why_size, "%s (bf16 dot peak %.1f vs fp32 FMA %.1f GFLOP/s per core: %.2fx)", t->gemm_bf16_path, b.cpu,
             f.cpu, f.cpu > 0 ? b.cpu / f.cpu : 0.0);
}
