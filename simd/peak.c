/* simd/peak.c — measures the register-only peak probes of a kernel table
 * (kernels.h, probe_fma_f32 / probe_dot_bf16): what one core and the threads in
 * use can reach at most, the yardstick hone info and bench_gemm print beside
 * their numbers. Timed by each thread's CPU clock (a shared machine's other
 * load does not lower it) and by the wall clock. */
#include "simd/kernels.h"
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
