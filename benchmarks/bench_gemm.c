/* bench_gemm.c — sgemm GFLOP/s of hone's kernels (the AVX-512 micro-kernel
 * and the AVX2 one) next to OpenBLAS cblas_sgemm in the same run, on 1 and 2
 * threads, for square sizes and the SmolLM2-135M training shapes in their three forms:
 *   fwd  Y  (T,out) = X (T,in) @ W^T        ta=0 tb=1
 *   dX   dX (T,in)  = dY (T,out) @ W        ta=0 tb=0
 *   dW   dW (out,in)= dY^T @ X              ta=1 tb=0
 * (the vocabulary-sized product both for all 4096 tokens and for one 512-row chunk of the
 * loss head, the shape the training step runs),
 * plus the peaks of the register-only probes (simd/peak.c: fp32 FMA, bf16 dot) and
 * % of the fp32 one. The OpenBLAS column names the core OpenBLAS chose; when that
 * is a fallback older than the CPU (Debian's 0.3.21 does not know every CPU and
 * runs SSE3 Prescott kernels), the column is measured again with OPENBLAS_CORETYPE
 * set to the CPU's family, in a child process (the variable is only read when the
 * library initialises). With a Python that has torch (HONE_PYTHON, else
 * /work/venv/bin/python, else python3), benchmarks/gemm_ref.py adds torch.mm fp32
 * and bf16 columns measured in the same run. Column hbf16 is hone's gemm_bf16 (`bf16: true`'s
 * products: the path kernels_select_bf16 picks, named in the header), with its ratio to
 * hone's fp32 (x32) and to torch.mm bf16 (tb).
 * Usage: bench_gemm [quick]   (quick: skip the vocabulary-sized shape)
 * Environment: BENCH_THREADS (1 or 2), BENCH_REPS (extra reps), BENCH_ONLY (shape
 * name substring), BENCH_OBLAS_CORETYPE (force the re-run with that core type). */
#include "simd/kernels.h"
#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }

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

#define MAXS 64
static shape shapes[MAXS];
static char names[MAXS][48];

/* Square sizes, then the SmolLM2-135M training shapes in their three forms. */
static int build_shapes(int quick) {
    int ns = 0;
    for (int n = 256; n <= 2048; n *= 2) {
        snprintf(names[ns], 48, "square %d", n);
        shapes[ns] = (shape){names[ns], 0, 0, n, n, n};
        ns++;
    }
    /* the last: one chunk of the loss head as the training step runs it (transformer.c
     * head_chunk_rows: 512 rows of logits at a time for this vocabulary) */
    int tr[][3] = {{4096, 576, 1536}, {4096, 1536, 576}, {4096, 576, 49152}, {512, 576, 49152}};
    for (int t = 0; t < 4; t++) {
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
    return ns;
}

/* Deterministic operands of shape s (freed by the caller). */
static void make_operands(const shape *s, float **A, float **B, float **C) {
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4);
    for (size_t j = 0; j < na; j++) (*A)[j] = (float)((j * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t j = 0; j < nb; j++) (*B)[j] = (float)((j * 104729) % 1000) * 1e-3f - 0.5f;
    memset(*C, 0, nc * 4);
}

static int reps_for(const shape *s, int extra) {
    double fl = 2.0 * s->M * s->N * s->K;
    return (fl > 50e9 ? 1 : fl > 5e9 ? 4 : 8) + extra; /* per round */
}

/* The OPENBLAS_CORETYPE to measure OpenBLAS again with, or NULL when the core it
 * chose already fits the ISA hone dispatches to: AVX-512 (Intel, AMD Zen 4) wants
 * SkylakeX or newer, AVX2 Haswell (Intel) or Zen (AMD Zen 1-3) or newer. */
static const char *oblas_fix(const char *isa, int amd) {
    const char *forced = getenv("BENCH_OBLAS_CORETYPE");
    if (forced && *forced) return forced;
    if (getenv("OPENBLAS_CORETYPE")) return NULL; /* the user chose */
    char core[64];
    snprintf(core, sizeof core, "%s", openblas_get_corename());
    for (char *c = core; *c; c++) *c = (char)tolower((unsigned char)*c);
    static const char *k512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    static const char *k256[] = {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"};
    if (!strcmp(isa, "avx512")) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(core, k512[i])) return NULL;
        return "SkylakeX";
    }
    if (!strcmp(isa, "avx2")) {
        for (int i = 0; i < 5; i++)
            if (!strcmp(core, k256[i])) return NULL;
        return amd ? "Zen" : "Haswell";
    }
    return NULL;
}

/* Child mode (BENCH_GEMM_CHILD set by the parent): OpenBLAS alone, one line per
 * shape and thread count: "ROW index threads wall cpu". */
static int child_main(int ns, int maxth, int extra, const char *only) {
    printf("CORE %s\n", openblas_get_corename());
    for (int i = 0; i < ns; i++) {
        shape *s = &shapes[i];
        if (only && !strstr(s->name, only)) continue;
        float *A, *B, *C;
        make_operands(s, &A, &B, &C);
        hone_kernels *none[1] = {NULL};
        for (int t = 0; t < maxth; t++) {
            double w, c;
            time_gemms(none, 1, t + 1, s, A, B, C, reps_for(s, extra), &w, &c);
            printf("ROW %d %d %.3f %.3f\n", i, t + 1, w, c);
            fflush(stdout);
        }
        free(A); free(B); free(C);
    }
    return 0;
}

/* Runs cmd and reads its "ROW index threads x y" lines into x[index][threads-1],
 * y[...]; *first gets the first line that is not a ROW. Returns the rows read. */
static int read_rows(const char *cmd, double (*x)[2], double (*y)[2], char *first, size_t nfirst) {
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[512];
    int n = 0;
    if (first) first[0] = 0;
    while (fgets(line, sizeof line, p)) {
        int i, t;
        double a, b;
        if (sscanf(line, "ROW %d %d %lf %lf", &i, &t, &a, &b) == 4 && i >= 0 && i < MAXS && t >= 1 && t <= 2) {
            x[i][t - 1] = a, y[i][t - 1] = b, n++;
        } else if (first && !first[0]) {
            line[strcspn(line, "\n")] = 0;
            snprintf(first, nfirst, "%.200s", line);
        }
    }
    pclose(p);
    return n;
}

static void col(double v) {
    if (v > 0) printf(" %6.1f", v);
    else printf(" %6s", "-");
}
static void ratio(double a, double b) {
    if (a > 0 && b > 0) printf(" %5.2f", a / b);
    else printf(" %5s", "-");
}

int main(int argc, char **argv) {
    int quick = argc > 1 && !strcmp(argv[1], "quick");
    int maxth = getenv("BENCH_THREADS") ? atoi(getenv("BENCH_THREADS")) : 2; /* 1 or 2 */
    if (maxth < 1 || maxth > 2) maxth = 2;
    int extra = getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 0;
    const char *only = getenv("BENCH_ONLY"); /* substring filter on the shape name */
    int ns = build_shapes(quick);
    if (getenv("BENCH_GEMM_CHILD")) return child_main(ns, maxth, extra, only);
    kernels_init();
    /* Columns: the AVX-512 table (12x32 forced elsewhere; on AMD the dispatched
     * one: the AVX2 6x16 tile, 24x16 for the dW forms), the AVX2 table, OpenBLAS. */
    hone_kernels best = hone_kt, avx2, k512;
    int have_avx2 = kernels_get("avx2", &avx2) == 0;
    int w512 = !strcmp(best.isa, "avx512");
    const char *shape512 = "";
    int disp = 0; /* the column hone's dispatch uses: the ratios are taken from it */
    int amd = 0;
#if defined(__x86_64__)
    unsigned ca, cb, cc, cd;
    amd = __get_cpuid(0, &ca, &cb, &cc, &cd) && cb == 0x68747541;
#endif
    if (w512 && amd) {
        shape512 = "6x16, dW 24x16";
        k512 = best;
    } else if (w512) {
        shape512 = "12x32";
        setenv("HONE_AVX512_GEMM", shape512, 1);
        kernels_get("avx512", &k512);
        unsetenv("HONE_AVX512_GEMM");
        kernels_init();
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("hone gemm benchmark: dispatch picks %s; columns: %s%s%s, avx2 6x16, OpenBLAS\n", best.isa,
           w512 ? "avx512 " : best.isa, shape512, w512 ? (amd ? " (dispatched)" : " (forced)") : "");
    printf("OpenBLAS %s, core %s, OPENBLAS_CORETYPE=%s\n", openblas_get_config(), openblas_get_corename(),
           ct ? ct : "(unset)");
    /* bf16: true's products, timed through the same harness as a table whose gemm_f32
     * is the chosen gemm_bf16 */
    char bwhy[256];
    kernels_select_bf16(&best, bwhy, sizeof bwhy);
    hone_kernels kbf = best;
    kbf.gemm_f32 = best.gemm_bf16;
    printf("hbf16 (bf16: true's gemm_bf16): %s\n", bwhy);
    hone_peak pk[2], bk[2];
    for (int t = 0; t < 2; t++) {
        kernels_peak(&best, 0, t + 1, &pk[t]);
        kernels_peak(&best, 1, t + 1, &bk[t]);
    }
    printf("fp32 peak (%s, register-only): %.1f GFLOP/s on 1 thread, %.1f on 2 by the wall clock; %.1f and %.1f\n"
           "by CPU time (the peak of cores to ourselves: %%pk is against these)\n",
           best.probe_fma_unit, pk[0].wall, pk[1].wall, pk[0].cpu, pk[1].cpu);
    if (best.probe_dot_bf16)
        printf("bf16 dot peak (%s): %.1f GFLOP/s on 1 thread, %.1f on 2 by CPU time (%.2fx fp32)\n",
               best.probe_bf16_unit, bk[0].cpu, bk[1].cpu, bk[0].cpu / pk[0].cpu);
    else
        printf("bf16 dot peak: none (no bf16 dot-product unit in the %s kernels on this CPU)\n", best.isa);

    /* OpenBLAS again on the right core type, and torch.mm: both measured before
     * hone's table so that nothing else runs beside them. */
    static double obx_w[MAXS][2], obx_c[MAXS][2], tf[MAXS][2], tb[MAXS][2];
    char cmd[8192], first[256];
    const char *fix = oblas_fix(best.isa, amd);
    int have_obx = 0;
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (fix && sl > 0) {
        self[sl] = 0;
        snprintf(cmd, sizeof cmd, "BENCH_GEMM_CHILD=1 OPENBLAS_CORETYPE=%s '%s' %s", fix, self, quick ? "quick" : "");
        have_obx = read_rows(cmd, obx_w, obx_c, first, sizeof first) > 0;
        printf("OpenBLAS core %s %s: column oblX re-runs it in a child with OPENBLAS_CORETYPE=%s (%s)\n",
               openblas_get_corename(), getenv("BENCH_OBLAS_CORETYPE") ? "(BENCH_OBLAS_CORETYPE set)" : "is older than this CPU",
               fix, have_obx ? first : "failed");
    }
    const char *py = getenv("HONE_PYTHON");
    if (!py) py = access("/work/venv/bin/python", X_OK) == 0 ? "/work/venv/bin/python" : "python3";
    const char *src = getenv("HONE_SRCDIR") ? getenv("HONE_SRCDIR") : ".";
    int len = snprintf(cmd, sizeof cmd, "%s %s/benchmarks/gemm_ref.py %d", py, src, maxth);
    for (int i = 0; i < ns; i++)
        if (!only || strstr(shapes[i].name, only))
            len += snprintf(cmd + len, sizeof cmd - len, " %d,%d,%d,%d,%d,%d", i, shapes[i].M, shapes[i].N,
                            shapes[i].K, shapes[i].ta, shapes[i].tb);
    snprintf(cmd + len, sizeof cmd - len, " 2>/dev/null");
    int have_torch = read_rows(cmd, tf, tb, NULL, 0) > 0;
    if (have_torch) {
        printf("torch.mm columns (fp32, bf16) from %s benchmarks/gemm_ref.py, by the wall clock\n", py);
    } else {
        printf("torch.mm columns: none (%s has no torch: set HONE_PYTHON)\n", py);
    }

    char la[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (!fgets(la, sizeof la, lf)) la[0] = 0;
        la[strcspn(la, "\n")] = 0;
        fclose(lf);
    }
    printf("load average at start: %s\n\n", la);
    printf("GFLOP/s by the wall clock (second line: by CPU time), per thread count; hone = %s (what dispatch\n"
           "uses); ob = hone / %s, t = hone / torch.mm fp32; %%pk = hone / fp32 peak by CPU time;\n"
           "hbf16 = hone gemm_bf16, x32 = hbf16 / hone, tb = hbf16 / torch.mm bf16\n",
           disp ? "the avx2 column" : "the first column", have_obx ? "oblX" : "oblas");
    printf("%-22s %5s %5s %5s |", "shape", "M", "N", "K");
    for (int t = 0; t < maxth; t++)
        printf(" %6s %6s %6s %6s %6s %6s %5s %5s %5s %6s %5s %5s|", t ? "512_2" : "512_1", "avx2", "oblas", "oblX", "torch",
               "tbf16", "ob", "t", "%pk", "hbf16", "x32", "tb");
    printf("\n");
    for (int i = 0; i < ns; i++) {
        shape *s = &shapes[i];
        if (only && !strstr(s->name, only)) continue;
        float *A, *B, *C;
        make_operands(s, &A, &B, &C);
        double w[2][4], c[2][4];
        memset(w, 0, sizeof w);
        memset(c, 0, sizeof c);
        hone_kernels *kts[4] = {w512 ? &k512 : &best, have_avx2 ? &avx2 : &best, NULL, &kbf};
        for (int t = 0; t < maxth; t++) time_gemms(kts, 4, t + 1, s, A, B, C, reps_for(s, extra), w[t], c[t]);
        if (!have_avx2) w[0][1] = w[1][1] = c[0][1] = c[1][1] = 0;
        for (int line = 0; line < 2; line++) {
            double(*v)[4] = line ? c : w;
            printf("%-22s", line ? "  (by CPU time)" : s->name);
            if (line) printf(" %5s %5s %5s |", "", "", "");
            else printf(" %5d %5d %5d |", s->M, s->N, s->K);
            for (int t = 0; t < maxth; t++) {
                double obx = line ? obx_c[i][t] : obx_w[i][t], ob = have_obx ? obx : v[t][2];
                col(v[t][0]), col(v[t][1]), col(v[t][2]), col(obx);
                col(line ? 0 : tf[i][t]), col(line ? 0 : tb[i][t]);
                ratio(v[t][disp], ob);
                ratio(line ? 0 : v[t][disp], tf[i][t]);
                printf(" %5.0f", 100 * v[t][disp] / pk[t].cpu);
                col(v[t][3]);
                ratio(v[t][3], v[t][disp]);
                ratio(line ? 0 : v[t][3], tb[i][t]);
                printf("|");
            }
            printf("\n");
        }
        fflush(stdout);
        free(A); free(B); free(C);
    }
    return 0;
}
