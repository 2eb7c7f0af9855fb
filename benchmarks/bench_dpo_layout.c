/* bench_dpo_layout.c — DPO step time of the shared-prompt layout (one row
 * prompt | chosen | rejected, the prompt run once) against TRL's two-row layout
 * (prompt+chosen, prompt+rejected), dpo_opts.shared_prompt 1 vs 0, issue 5.
 * 15M llama2.c-style config (random init), 4 pairs per step, sigmoid loss,
 * reference log-probs precomputed (BENCH_LIVE_REF=1: a live reference model),
 * on HH-RLHF-like shapes: prompt 192 + completions 64, 128 + 128, and a short
 * prompt 32 + 224 where sharing saves less. When ../shared holds HH-RLHF
 * harmless pairs, their prompt/completion lengths (bytes / 4 as a token
 * estimate, split at the last "\n\nAssistant:") are summarised and the median
 * shape is timed too. The two layouts alternate step by step so a change of
 * machine load hits both alike; one warm-up step each, then the median.
 * Usage: bench_dpo_layout   Environment: BENCH_THREADS (default 2), BENCH_STEPS (default 5) */
#include "train/dpo.h"
#include "simd/kernels.h"
#include "model/model.h"
#include "base/rng.h"
#include "base/threads.h"
#include "train/train.h"
#include "base/util.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define PAIRS 4

static const char *CFG_15M =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 288,"
    " \"intermediate_size\": 768, \"num_hidden_layers\": 6, \"num_attention_heads\": 6, \"num_key_value_heads\": 6,"
    " \"vocab_size\": 32000, \"max_position_embeddings\": 2048, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0,"
    " \"tie_word_embeddings\": true, \"hidden_act\": \"silu\", \"bos_token_id\": 1, \"eos_token_id\": 2}";

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Layout state for one setting of shared_prompt. */
typedef struct lay {
    dpo_opts o;
    dpo_ws ws;
    dpo_ref_logps refs;
    double t[64], c[64]; /* wall and process-CPU seconds per step */
} lay;

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Median wall (t_*) and CPU (c_*) step seconds of both layouts on one shape; returns 0 or -1. */
static int time_shape(hone_model *m, hone_model *ref, hone_trainer *tr, int np, int nc, int steps, double *t_pairs,
                      double *t_shared, double *c_pairs, double *c_shared, hone_error *err) {
    const hone_model_config *c = &m->cfg;
    hone_rng rng;
    rng_seed(&rng, 7);
    hone_tok_pair pairs[PAIRS];
    int32_t *pool = malloc(sizeof(int32_t) * PAIRS * (np + 2 * nc));
    for (int i = 0; i < PAIRS; i++) {
        int32_t *p = pool + (size_t)i * (np + 2 * nc);
        for (int j = 0; j < np + 2 * nc; j++) p[j] = 3 + (int32_t)rng_below(&rng, (uint64_t)c->vocab_size - 3);
        pairs[i] = (hone_tok_pair){p, np, p + np, nc, p + np + nc, nc};
    }
    lay L[2];
    memset(L, 0, sizeof L);
    int rc = -1;
    for (int s = 0; s < 2; s++) {
        dpo_loss_opts_default(&L[s].o.loss);
        L[s].o.batch_size = L[s].o.eval_batch_size = PAIRS;
        L[s].o.accum = 1;
        L[s].o.shared_prompt = s;
        L[s].o.quiet = 1;
        if (!ref && dpo_precompute_ref(m, &L[s].o, pairs, PAIRS, &L[s].refs, err) < 0) goto out;
        if (dpo_ws_init(&L[s].ws, c, &L[s].o, PAIRS, pairs, PAIRS, ref != NULL, 1, err) < 0) goto out;
    }
    long idx[PAIRS] = {0, 1, 2, 3};
    dpo_loss_state st;
    dpo_loss_state_init(&st);
    for (int k = 0; k <= steps; k++)
        for (int s = 0; s < 2; s++) {
            dpo_step_result r;
            double c0 = cpu_now(), t0 = hone_now();
            trainer_zero_grad(tr);
            if (dpo_micro_batch(&L[s].ws, m, &tr->g, ref, &L[s].o, &st, pairs, idx, PAIRS, ref ? NULL : &L[s].refs, 1.0f, &r,
                                err) < 0)
                goto out;
            double lr;
            trainer_apply(tr, &lr);
            if (k > 0) { L[s].t[k - 1] = hone_now() - t0; L[s].c[k - 1] = cpu_now() - c0; }
        }
    for (int s = 0; s < 2; s++) {
        qsort(L[s].t, steps, sizeof(double), cmp_dbl);
        qsort(L[s].c, steps, sizeof(double), cmp_dbl);
    }
    *t_pairs = L[0].t[steps / 2];
    *t_shared = L[1].t[steps / 2];
    *c_pairs = L[0].c[steps / 2];
    *c_shared = L[1].c[steps / 2];
    rc = 0;
out:
    for (int s = 0; s < 2; s++) {
        dpo_ws_free(&L[s].ws);
        dpo_ref_logps_free(&L[s].refs);
    }
    free(pool);
    return rc;
}

/* Prompt / completion token estimates (bytes / 4) of HH-RLHF pairs; returns the count. */
static int hh_lengths(const char *path, int **prompt, int **compl) {
    gzFile f = gzopen(path, "rb");
    if (!f) return 0;
    int cap = 4096, n = 0;
    *prompt = malloc(sizeof(int) * cap);
    *compl = malloc(sizeof(int) * 2 * cap);
    static char line[1 << 20];
    while (n < cap && gzgets(f, line, sizeof line)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *ch = j ? json_string_value(json_object_get(j, "chosen")) : NULL;
        const char *rj = j ? json_string_value(json_object_get(j, "rejected")) : NULL;
        if (ch && rj) {
            /* the prompt ends after the last "\n\nAssistant:" of the chosen dialogue */
            const char *k = "\n\nAssistant:", *last = NULL;
            for (const char *p = strstr(ch, k); p; p = strstr(p + 1, k)) last = p;
            if (last) {
                size_t pl = (size_t)(last - ch) + strlen(k);
                size_t rl = strlen(rj) > pl ? strlen(rj) - pl : 0;
                (*prompt)[n] = (int)(pl / 4);
                (*compl)[2 * n] = (int)((strlen(ch) - pl) / 4);
                (*compl)[2 * n + 1] = (int)(rl / 4);
                n++;
            }
        }
        json_decref(j);
    }
    gzclose(f);
    return n;
}

int main(void) {
    int nth = getenv("BENCH_THREADS") ? atoi(getenv("BENCH_THREADS")) : 2;
    int steps = getenv("BENCH_STEPS") ? atoi(getenv("BENCH_STEPS")) : 5;
    int live = getenv("BENCH_LIVE_REF") && atoi(getenv("BENCH_LIVE_REF"));
    if (steps < 1) steps = 1;
    if (steps > 64) steps = 64;
    hone_error err = {0};
    hone_topology topo;
    kernels_init();
    if (threads_init(&topo, nth, 1, &err) < 0) { fprintf(stderr, "bench_dpo_layout: %s\n", err.msg); return 1; }
    hone_model_config c;
    hone_model m, ref;
    if (model_config_parse(&c, CFG_15M, "(15M config)", &err) < 0 || model_init(&m, &c, &err) < 0) {
        fprintf(stderr, "bench_dpo_layout: %s\n", err.msg);
        return 1;
    }
    model_init_random(&m, 42, 0.02f);
    if (live) {
        if (model_init(&ref, &c, &err) < 0) { fprintf(stderr, "bench_dpo_layout: %s\n", err.msg); return 1; }
        memcpy(ref.data, m.data, sizeof(float) * m.num_floats);
    }
    hone_trainer tr;
    if (trainer_init(&tr, &m, NULL, NULL, 1e-6, HONE_SCHED_CONSTANT, 0, 1000000, 0.9, 0.999, 1e-8, 0.0, 1.0, &err) < 0) {
        fprintf(stderr, "bench_dpo_layout: %s\n", err.msg);
        return 1;
    }
    printf("DPO layout benchmark: 15M config (6 x 288, vocab 32000), %d pairs per step, %d thread(s), ISA %s, %s, "
           "median of %d steps\n",
           PAIRS, topo.threads, hone_kt.isa, live ? "live reference model" : "precomputed reference log-probs", steps);
    int shapes[8][2] = {{192, 64}, {128, 128}, {32, 224}}, ns = 3;
    const char *label[8] = {"HH-like, long prompt", "prompt = completion", "short prompt", "", "", "", "", ""};
    /* optional: the HH-RLHF length distribution */
    const char *sh = getenv("HONE_SHARED") ? getenv("HONE_SHARED") : "../shared";
    char path[4096];
    snprintf(path, sizeof path, "%s/data/hh-rlhf-harmless/pairs.dev.jsonl.gz", sh);
    int *pl = NULL, *cl = NULL, n = hh_lengths(path, &pl, &cl);
    if (n > 0) {
        int ge = 0;
        for (int i = 0; i < n; i++) ge += pl[i] >= (cl[2 * i] > cl[2 * i + 1] ? cl[2 * i] : cl[2 * i + 1]);
        qsort(pl, n, sizeof(int), cmp_int);
        qsort(cl, 2 * n, sizeof(int), cmp_int);
        printf("HH-RLHF harmless dev (%d pairs, tokens ~ bytes/4): prompt median %d (p25 %d, p75 %d), completion median %d "
               "(p25 %d, p75 %d); prompt >= longer completion in %.0f%% of pairs\n",
               n, pl[n / 2], pl[n / 4], pl[3 * n / 4], cl[n], cl[n / 2], cl[3 * n / 2], 100.0 * ge / n);
        shapes[ns][0] = pl[n / 2] > 0 ? pl[n / 2] : 1;
        shapes[ns][1] = cl[n] > 0 ? cl[n] : 1;
        label[ns++] = "HH-RLHF medians";
    }
    free(pl);
    free(cl);
    printf("\n%-22s %6s %6s | %9s %9s %8s | %9s %9s %8s | %6s\n", "shape", "prompt", "compl", "two-row s", "shared s",
           "speed-up", "2-row cpu", "shrd cpu", "cpu gain", "saved");
    for (int i = 0; i < ns; i++) {
        double tp, ts, cp, cs;
        if (time_shape(&m, live ? &ref : NULL, &tr, shapes[i][0], shapes[i][1], steps, &tp, &ts, &cp, &cs, &err) < 0) {
            fprintf(stderr, "bench_dpo_layout: %s\n", err.msg);
            return 1;
        }
        int P = shapes[i][0], C = shapes[i][1];
        double saved = 1.0 - (double)(P + 2 * C + 1) / (2.0 * (P + C));
        printf("%-22s %6d %6d | %9.3f %9.3f %7.2fx | %9.3f %9.3f %7.2fx | %5.0f%%\n", label[i], P, C, tp, ts, tp / ts, cp, cs,
               cp / cs, 100 * saved);
        fflush(stdout);
    }
    printf("\nspeed-up = two-row step time / shared-prompt step time (wall); cpu gain: the same on process CPU seconds "
           "(robust to a shared machine's load); saved: tokens the shared layout does not run, 1 - (P + 2C + 1) / (2(P + C))\n");
    trainer_free(&tr);
    if (live) model_free(&ref);
    model_free(&m);
    return 0;
}
