/* bench_generate.c — generation speed: prompt processing (prefill) and decoding
 * tokens/s of the KV-cache engine for stories260K (../shared), a random-init 15M
 * Llama (llama2.c's: dim 288, 6 layers, 6 heads, hidden 768, vocab 32000) and a
 * random-init SmolLM2-135M (../shared/models/configs), with 1 and 2 threads, for the
 * engine's weight formats (engine_set_weights; arithmetic stays fp32): fp32 row-major,
 * bf16 panels, fp32 panels (what `hone generate` uses for an fp32 model; run last,
 * since it permutes the model in place).
 * Anchors in the same run: transformers generation (PyTorch in the same dtype, same
 * threads, by benchmarks/generate_ref.py when HONE_PYTHON or /work/venv/bin/python has
 * torch) and the memory-bandwidth bound of decoding (every weight byte read once per
 * token, plus the KV cache) from a streaming read measured here. On a shared machine
 * wall-clock rates depend on the load; the CPU-time columns show the rate while hone
 * runs. BENCH_DTYPES=fp32,bf16,fp32p (default all) and BENCH_MODELS=260k,15m,135m select.
 * Usage: bench_generate [PROMPT_TOKENS [NEW_TOKENS]]   (default 64 16) */
#include "model/convert.h"
#include "generate/generate.h"
#include "simd/kernels.h"
#include "base/threads.h"
#include "base/util.h"
#include <math.h>
#include <sched.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NTHR 2
#define NDT 3 /* weight formats: fp32 rows, bf16 panels, fp32 panels (in place: last) */
static const char *dt_name[NDT] = {"fp32", "bf16", "fp32p"};
static const char *dt_torch[NDT] = {"float32", "bfloat16", "float32"};
static const int dt_fmt[NDT] = {HONE_WEIGHTS_F32, HONE_WEIGHTS_BF16, HONE_WEIGHTS_F32_PANELS};

typedef struct {
    const char *name, *key;
    hone_model m;
    int ok;
    char dir[256];   /* what generate_ref.py loads */
    double pf[NDT][NTHR], dec[NDT][NTHR], tpf[NDT][NTHR], tdec[NDT][NTHR];
    double dec_cpu[NDT][NTHR]; /* decode tokens per second of process CPU time / threads */
    double dec8[NDT][NTHR];    /* decode tokens/s with 8 sequences at once */
    double bw[NDT][NTHR];      /* GB/s of a streaming read: the mean of the medians just before and after the run */
    int have_ref[NDT][NTHR], ran[NDT];
} bench_model;

static int listed(const char *env, const char *key) {
    const char *l = getenv(env);
    if (!l || !*l) return 1;
    size_t n = strlen(key);
    for (const char *p = l; (p = strstr(p, key)); p += n)
        if ((p == l || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static const char *llama15m_json =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 288, "
    "\"intermediate_size\": 768, \"num_hidden_layers\": 6, \"num_attention_heads\": 6, \"num_key_value_heads\": 6, "
    "\"vocab_size\": 32000, \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
    "\"tie_word_embeddings\": true, \"hidden_act\": \"silu\", \"bos_token_id\": 1, \"eos_token_id\": 2}";

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* GB/s of a streaming read of a buffer much larger than the last-level cache: the
 * median of 5 passes (one pass can land on a quiet or a busy moment of the host). */
static double bandwidth(int threads) {
    size_t n = (size_t)128 << 20; /* 512 MiB of floats */
    float *buf = hone_alloc(n * sizeof(float), NULL);
    if (!buf) return 0;
    omp_set_num_threads(threads);
    for (size_t i = 0; i < n; i += 1024) buf[i] = 1.f;
    double t[5];
    const size_t chunk = 1 << 16;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = hone_now(), sink = 0;
#pragma omp parallel for schedule(static) reduction(+ : sink)
        for (size_t i = 0; i < n; i += chunk) sink += hone_kt.dot_f32(buf + i, buf + i, (int)chunk);
        t[rep] = hone_now() - t0;
        if (sink < 0) printf("?");
    }
    for (int i = 1; i < 5; i++) /* insertion sort: the median */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) { double x = t[j]; t[j] = t[j - 1]; t[j - 1] = x; }
    free(buf);
    return n * sizeof(float) / t[2] / 1e9;
}

/* Prefill P tokens then decode N greedily; best of 2 after a warm-up. */
static void run_hone(bench_model *b, int dt, int t, int P, int N) {
    hone_error err = {{0}};
    hone_engine e;
    const hone_model_config *c = &b->m.cfg;
    int fmt = dt_fmt[dt];
    if (engine_init(&e, &b->m, 1, P + N + 1, P, &err) < 0 || engine_set_weights(&e, fmt, &err) < 0) {
        printf("  %s: %s\n", b->name, err.msg);
        return;
    }
    int32_t *prompt = malloc(sizeof(int32_t) * P);
    float *logits = malloc(sizeof(float) * c->vocab_size);
    for (int i = 0; i < P; i++) prompt[i] = 3 + (int32_t)((i * 7919u) % (unsigned)(c->vocab_size - 3));
    double bpf = 1e30, bdec = 1e30, bcpu = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = hone_now();
        engine_prefill(&e, 0, prompt, P, 0, logits);
        double t1 = hone_now(), c1 = cpu_now();
        int32_t tok = 0, slot = 0, row = 0;
        for (int i = 0; i < N; i++) {
            float mx = -INFINITY;
            for (int v = 0; v < c->vocab_size; v++)
                if (logits[v] > mx) { mx = logits[v]; tok = v; }
            int32_t pos = P + i;
            engine_forward(&e, 1, &tok, &slot, &pos, 0, 1, &row, logits);
        }
        double t2 = hone_now(), c2 = cpu_now();
        if (rep > 0) {
            bpf = fmin(bpf, t1 - t0);
            bdec = fmin(bdec, t2 - t1);
            bcpu = fmin(bcpu, (c2 - c1) / (t + 1));
        }
    }
    b->pf[dt][t] = P / bpf;
    b->dec[dt][t] = N / bdec;
    b->dec_cpu[dt][t] = N / bcpu;
    engine_free(&e);
    /* 8 sequences decoded together: each weight row read once for all 8 */
    enum { NB = 8 };
    float *lg8 = malloc(sizeof(float) * NB * c->vocab_size);
    if (lg8 && engine_init(&e, &b->m, NB, P + N + 1, P, &err) == 0 && engine_set_weights(&e, fmt, &err) == 0) {
        int32_t tk[NB], sl[NB], ps[NB], rows[NB];
        double best = 1e30;
        for (int rep = 0; rep < 2; rep++) {
            for (int s = 0; s < NB; s++) engine_prefill(&e, s, prompt, P, 0, NULL);
            double t0 = hone_now();
            for (int i = 0; i < N; i++) {
                for (int s = 0; s < NB; s++) { tk[s] = 3 + (i * 31 + s) % (c->vocab_size - 3); sl[s] = s; ps[s] = P + i; rows[s] = s; }
                engine_forward(&e, NB, tk, sl, ps, 0, NB, rows, lg8);
            }
            if (rep > 0) best = fmin(best, hone_now() - t0);
        }
        b->dec8[dt][t] = NB * N / best;
        engine_free(&e);
    }
    free(lg8);
    free(prompt);
    free(logits);
}

static void run_ref(bench_model *b, int dt, int P, int N) {
    const char *py = getenv("HONE_PYTHON");
    if (!py) py = access("/work/venv/bin/python", X_OK) == 0 ? "/work/venv/bin/python" : "python3";
    const char *src = getenv("HONE_SRCDIR") ? getenv("HONE_SRCDIR") : ".";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s/benchmarks/generate_ref.py %s %d %d --dtype %s 1 2 2>/dev/null", py, src, b->dir, P, N,
             dt_torch[dt]);
    /* the reference must not inherit this thread's pinning to one core */
    cpu_set_t mine, all;
    int pinned = sched_getaffinity(0, sizeof mine, &mine) == 0;
    CPU_ZERO(&all);
    for (int c = 0; c < CPU_SETSIZE && c < 1024; c++) CPU_SET(c, &all);
    if (pinned) sched_setaffinity(0, sizeof all, &all);
    FILE *p = popen(cmd, "r");
    if (pinned) sched_setaffinity(0, sizeof mine, &mine);
    if (!p) return;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        int t;
        double pf, dec;
        if (sscanf(line, "{\"threads\": %d, \"prefill_tps\": %lf, \"decode_tps\": %lf", &t, &pf, &dec) == 3 && t >= 1 &&
            t <= NTHR) {
            b->tpf[dt][t - 1] = pf;
            b->tdec[dt][t - 1] = dec;
            b->have_ref[dt][t - 1] = 1;
        }
    }
    pclose(p);
}

int main(int argc, char **argv) {
    int P = argc > 1 ? atoi(argv[1]) : 64, N = argc > 2 ? atoi(argv[2]) : 16;
    if (P < 1 || N < 2) { fprintf(stderr, "usage: bench_generate [PROMPT_TOKENS [NEW_TOKENS >= 2]]\n"); return 2; }
    kernels_init();
    hone_topology pin;
    hone_error perr = {{0}};
    if (threads_init(&pin, NTHR, 1, &perr) < 0) printf("thread pinning: %s\n", perr.msg); /* as the CLI: one per core */
    const char *shared = getenv("HONE_SHARED") ? getenv("HONE_SHARED") : "../shared";
    hone_error err = {{0}};
    bench_model bm[3];
    memset(bm, 0, sizeof bm);
    bm[0].name = "stories260K";
    bm[1].name = "llama-15M (random)";
    bm[2].name = "smollm2-135M (random)";
    bm[0].key = "260k";
    bm[1].key = "15m";
    bm[2].key = "135m";
    char path[1024], tmp[] = "/tmp/hone-bench-gen-XXXXXX";
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    snprintf(path, sizeof path, "%s/models/stories260K/stories260K.bin", shared);
    if (hone_file_exists(path) && convert_llama2c_load(&bm[0].m, path, &err) == 0) {
        bm[0].ok = 1;
        snprintf(bm[0].dir, sizeof bm[0].dir, "%s/stories260K", tmp);
        if (model_save(&bm[0].m, bm[0].dir, NULL, &err) < 0) bm[0].dir[0] = 0;
    } else {
        printf("stories260K: %s absent, skipped\n", path);
    }
    hone_model_config c;
    if (model_config_parse(&c, llama15m_json, "llama-15M", &err) == 0 && model_init(&bm[1].m, &c, &err) == 0) {
        model_init_random(&bm[1].m, 1, 0.02f);
        bm[1].ok = 1;
    }
    snprintf(path, sizeof path, "%s/models/configs/smollm2-135m.json", shared);
    if (model_config_load(&c, path, &err) == 0 && model_init(&bm[2].m, &c, &err) == 0) {
        model_init_random(&bm[2].m, 1, 0.02f);
        bm[2].ok = 1;
    } else {
        printf("smollm2-135M: %s\n", err.msg);
    }
    for (int i = 1; i < 3; i++) { /* the reference initialises these from their config alone */
        if (!bm[i].ok) continue;
        snprintf(bm[i].dir, sizeof bm[i].dir, "%s/m%d", tmp, i);
        hone_mkdirs(bm[i].dir, &err);
        char *js = model_config_to_json(&bm[i].m.cfg);
        hone_path_join(path, sizeof path, bm[i].dir, "config.json");
        if (!js || hone_write_file(path, js, strlen(js), &err) < 0) bm[i].dir[0] = 0;
        free(js);
    }
    /* the bandwidth is measured right before and after each run: on a shared machine
     * (a VM here) it moves with the neighbours' load and with where the host runs the
     * two vCPUs (two threads read 33-35 GB/s, at moments 60), so each row's bound
     * uses the bandwidth of its own moment */
    for (int i = 0; i < 3; i++) {
        if (!bm[i].ok || !listed("BENCH_MODELS", bm[i].key)) continue;
        for (int dt = 0; dt < NDT; dt++) {
            if (!listed("BENCH_DTYPES", dt_name[dt])) continue;
            bm[i].ran[dt] = 1;
            for (int t = 0; t < NTHR; t++) {
                double b0 = bandwidth(t + 1);
                omp_set_num_threads(t + 1);
                run_hone(&bm[i], dt, t, P, N);
                bm[i].bw[dt][t] = 0.5 * (b0 + bandwidth(t + 1));
            }
            if (dt == 2 && bm[i].ran[0]) { /* the same PyTorch fp32 run serves both fp32 layouts */
                memcpy(bm[i].tpf[2], bm[i].tpf[0], sizeof bm[i].tpf[0]);
                memcpy(bm[i].tdec[2], bm[i].tdec[0], sizeof bm[i].tdec[0]);
                memcpy(bm[i].have_ref[2], bm[i].have_ref[0], sizeof bm[i].have_ref[0]);
            } else if (bm[i].dir[0] && !getenv("BENCH_NO_PY")) {
                run_ref(&bm[i], dt, P, N);
            }
        }
    }
    printf("bound = streaming-read bandwidth (512 MiB, median of 5, mean of before and after each run) / bytes read per "
           "token; threads pinned one per core; isa %s\n", hone_kt.isa);
    printf("prompt %d tokens, then %d decoded tokens (greedy, batch 1); best of 3 after a warm-up\n\n", P, N);
    printf("| model | params | weights | thr | prefill tok/s | torch | x | decode tok/s | torch | x | x torch fp32 | GB/s | "
           "bound tok/s | %% of bound | decode tok/s (CPU time) | %% of bound (CPU time) | decode tok/s, 8 sequences |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    hone_topology topo;
    long llc = threads_plan(&topo, NULL, 0, &err) == 0 && topo.l3 > 0 ? topo.l3 : 32L << 20; /* hwloc's L3 */
    for (int i = 0; i < 3; i++) {
        if (!bm[i].ok) continue;
        const hone_model_config *mc = &bm[i].m.cfg;
        size_t VC = (size_t)mc->vocab_size * mc->hidden_size;
        /* weights read per decoded token: all but the embedding table unless it is the head */
        double wfloats = (double)(bm[i].m.num_floats - (mc->tie_word_embeddings ? 0 : VC));
        double kv = 4.0 * 2 * mc->num_layers * (double)mc->num_kv_heads * mc->head_dim * (P + N / 2.0);
        for (int dt = 0; dt < NDT; dt++) {
            if (!bm[i].ran[dt]) continue;
            double wbytes = (dt == 1 ? 2.0 : 4.0) * wfloats;
            for (int t = 0; t < NTHR; t++) {
                double bound = bm[i].bw[dt][t] * 1e9 / (wbytes + kv);
                char tp[32] = "-", tx[32] = "-", dp[32] = "-", dx[32] = "-", d32[32] = "-";
                if (bm[i].have_ref[dt][t]) {
                    snprintf(tp, sizeof tp, "%.0f", bm[i].tpf[dt][t]);
                    snprintf(tx, sizeof tx, "%.1f", bm[i].pf[dt][t] / bm[i].tpf[dt][t]);
                    snprintf(dp, sizeof dp, "%.1f", bm[i].tdec[dt][t]);
                    snprintf(dx, sizeof dx, "%.1f", bm[i].dec[dt][t] / bm[i].tdec[dt][t]);
                }
                if (bm[i].have_ref[0][t]) snprintf(d32, sizeof d32, "%.1f", bm[i].dec[dt][t] / bm[i].tdec[0][t]);
                printf("| %s | %.1fM | %s | %d | %.0f | %s | %s | %.1f | %s | %s | %s | %.1f | %.1f%s | %.0f%% | %.1f | %.0f%% | %.1f |\n",
                       bm[i].name, bm[i].m.num_floats / 1e6, dt_name[dt], t + 1, bm[i].pf[dt][t], tp, tx, bm[i].dec[dt][t],
                       dp, dx, d32, bm[i].bw[dt][t], bound, wbytes < llc ? " (in LLC)" : "", 100.0 * bm[i].dec[dt][t] / bound,
                       bm[i].dec_cpu[dt][t], 100.0 * bm[i].dec_cpu[dt][t] / bound, bm[i].dec8[dt][t]);
            }
        }
    }
    for (int i = 0; i < 3; i++)
        if (bm[i].ok) model_free(&bm[i].m);
    hone_remove_tree(tmp, NULL);
    return 0;
}
