/* bench_attention.c — causal attention forward and backward (src/model/layers.c's
 * attention_forward / attention_backward over hone_kt.attn_fwd / attn_bwd: the tiled
 * kernels, VL queries as the vector lanes) next to PyTorch's
 * F.scaled_dot_product_attention (benchmarks/attention_ref.py, fp32 and bf16, when the
 * Python tooling is present), on the heads of the project's reference models:
 *   SmolLM2-135M  B 4 x T 256 and B 1 x T 1024, 9 heads / 3 KV heads, D 64 (the training-step batch)
 *   Llama-2-7B    B 1 x T 512, 32 heads, D 128
 * 1 and 2 threads (BENCH_THREADS=1 limits it). Best of 5 calls after a warm-up, wall clock;
 * GFLOP/s count the causal products only: forward 4 D per (query, visible key) per head
 * (q.k and p.v), backward 2.5 times that (q.k again, dO.v, dS.k, dS^T.q, P^T.dO).
 * Usage: bench_attention   Environment: BENCH_THREADS, HONE_PYTHON, HONE_SRCDIR */
#include "model/batch.h"
#include "model/layers.h"
#include "simd/kernels.h"
#include "base/threads.h"
#include "base/util.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { const char *name; int B, T, H, KV, D; } shape;
static const shape SHAPES[] = {
    {"SmolLM2-135M 4x256", 4, 256, 9, 3, 64},
    {"SmolLM2-135M 1x1024", 1, 1024, 9, 3, 64},
    {"Llama-2-7B 1x512", 1, 512, 32, 32, 128},
};
enum { NS = sizeof SHAPES / sizeof SHAPES[0] };

static float *alloc_rand(size_t n, unsigned *seed) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "bench_attention: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
    return p;
}

/* torch rows: [shape][threads - 1][fwd32, bwd32, fwd16, bwd16] in ms */
static int read_torch(const char *py, const char *src, int maxth, double t[NS][2][4]) {
    char cmd[2048];
    int len = snprintf(cmd, sizeof cmd, "%s %s/benchmarks/attention_ref.py %d", py, src, maxth);
    for (int i = 0; i < NS; i++)
        len += snprintf(cmd + len, sizeof cmd - len, " %d,%d,%d,%d,%d,%d", i, SHAPES[i].B, SHAPES[i].T, SHAPES[i].H,
                        SHAPES[i].KV, SHAPES[i].D);
    snprintf(cmd + len, sizeof cmd - len, " 2>/dev/null");
    FILE *f = popen(cmd, "r");
    if (!f) return 0;
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        int i, th;
        double a, b, c, d;
        if (sscanf(line, "ROW %d %d %lf %lf %lf %lf", &i, &th, &a, &b, &c, &d) == 6 && i >= 0 && i < NS && th >= 1 && th <= 2) {
            t[i][th - 1][0] = a, t[i][th - 1][1] = b, t[i][th - 1][2] = c, t[i][th - 1][3] = d;
            rows++;
        }
    }
    pclose(f);
    return rows;
}

int main(void) {
    hone_error err = {{0}};
    hone_topology topo;
    int maxth = getenv("BENCH_THREADS") ? atoi(getenv("BENCH_THREADS")) : 2;
    if (maxth < 1) maxth = 1;
    if (maxth > 2) maxth = 2;
    const char *py = getenv("HONE_PYTHON");
    if (!py) py = access("/work/venv/bin/python", X_OK) == 0 ? "/work/venv/bin/python" : "python3";
    const char *src = getenv("HONE_SRCDIR") ? getenv("HONE_SRCDIR") : ".";
    static double tt[NS][2][4];
    /* PyTorch first, before threads_init pins this process (a child would inherit the binding) */
    int have_torch = read_torch(py, src, maxth, tt) > 0;
    if (threads_init(&topo, maxth, 1, &err) < 0) { fprintf(stderr, "bench_attention: %s\n", err.msg); return 1; }
    if (topo.threads < maxth) maxth = topo.threads;
    kernels_init();
    printf("hone attention benchmark: ISA %s, tiles of %s queries; PyTorch F.scaled_dot_product_attention: %s\n",
           hone_kt.isa, !strcmp(hone_kt.isa, "avx512") ? "16" : !strcmp(hone_kt.isa, "avx2") ? "8" : "VL",
           have_torch ? py : "not available (set HONE_PYTHON)");
    printf("ms per call (best of 5), GFLOP/s of the causal products; t = torch fp32 ms / hone ms, t16 = torch bf16 ms / hone ms\n\n");
    printf("%-20s %3s | %8s %7s %8s %7s | %8s %8s %5s %5s | %8s %8s %5s %5s\n", "shape", "thr", "fwd ms", "GF/s", "bwd ms",
           "GF/s", "t32 fwd", "t32 bwd", "t", "t", "t16 fwd", "t16 bwd", "t16", "t16");
    for (int si = 0; si < NS; si++) {
        const shape *s = &SHAPES[si];
        int N = s->B * s->T;
        unsigned seed = 1234 + si;
        size_t nq = (size_t)N * s->H * s->D, nk = (size_t)N * s->KV * s->D;
        float *q = alloc_rand(nq, &seed), *k = alloc_rand(nk, &seed), *v = alloc_rand(nk, &seed), *g = alloc_rand(nq, &seed);
        float *o = alloc_rand(nq, &seed), *dq = alloc_rand(nq, &seed), *dk = alloc_rand(nk, &seed), *dv = alloc_rand(nk, &seed);
        float *lse = alloc_rand((size_t)s->B * s->H * s->T, &seed);
        hone_batch b;
        if (batch_alloc(&b, s->B, s->T) < 0) return 1;
        batch_reset(&b, 0);
        int32_t *ids = calloc(s->T, sizeof(int32_t));
        for (int r = 0; r < s->B; r++) batch_put_doc(&b, r, 0, ids, s->T, 0, NULL);
        double flops = 4.0 * s->D * s->H * s->B * ((double)s->T * (s->T + 1) / 2);
        for (int th = 1; th <= maxth; th++) {
            omp_set_num_threads(th);
            double bf = 1e9, bb = 1e9;
            for (int rep = 0; rep < 6; rep++) { /* rep 0 warms up */
                double t0 = hone_now();
                attention_forward(o, lse, q, k, v, &b, s->H, s->KV, s->D);
                double t1 = hone_now();
                attention_backward(dq, dk, dv, g, o, lse, q, k, v, &b, s->H, s->KV, s->D);
                double t2 = hone_now();
                if (rep && t1 - t0 < bf) bf = t1 - t0;
                if (rep && t2 - t1 < bb) bb = t2 - t1;
            }
            printf("%-20s %3d | %8.2f %7.1f %8.2f %7.1f |", s->name, th, bf * 1e3, flops / bf * 1e-9, bb * 1e3,
                   2.5 * flops / bb * 1e-9);
            double *t = tt[si][th - 1];
            if (have_torch && t[0] > 0)
                printf(" %8.2f %8.2f %5.2f %5.2f | %8.2f %8.2f %5.2f %5.2f\n", t[0], t[1], t[0] / (bf * 1e3), t[1] / (bb * 1e3),
                       t[2], t[3], t[2] / (bf * 1e3), t[3] / (bb * 1e3));
            else printf(" %8s %8s %5s %5s | %8s %8s %5s %5s\n", "-", "-", "-", "-", "-", "-", "-", "-");
        }
        batch_free(&b);
        free(ids);
        float *all[] = {q, k, v, g, o, dq, dk, dv, lse};
        for (int a = 0; a < 9; a++) free(all[a]);
    }
    return 0;
}
