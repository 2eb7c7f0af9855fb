/* bench_train_step.c — tokens/s, peak RSS and model-FLOPs utilisation of one
 * fp32 training step (issue 6), hone next to PyTorch/transformers/TRL:
 *   sft      causal-LM loss over 4 rows x 256 tokens, AdamW
 *   dpo_pre  sigmoid DPO, 4 pairs (prompt 128 + chosen 128 / rejected 128),
 *            reference log-probs precomputed (no reference model in memory)
 *   dpo_ref  the same with a live frozen reference model (forward each step)
 *   sft_lora the sft step with LoRA adapters (r 16, alpha 32, dropout 0.05, all linear layers:
 *            TRL's ModelConfig defaults on every linear) on the frozen model; PyTorch side: PEFT
 * for random-init models with SmolLM2-135M's config and a 15M llama2.c-style
 * config, on 1 and 2 threads. Every configuration runs in its own forked child
 * (hone) or its own Python process (benchmarks/train_step_ref.py), so the peak
 * RSS read from wait4() belongs to that configuration alone. DPO tokens count
 * chosen + rejected rows with the prompt in both (TRL's num_tokens), for both.
 *
 * MFU = model FLOPs / step time / GEMM peak, where model FLOPs = 6 x params x
 * tokens + causal attention (3 x forward: 4 * D * H * visible keys per query
 * and layer), counted on the tokens the layout actually runs (the shared-prompt
 * layout runs each prompt once); a live reference adds its forward (1/3 of
 * that). GEMM peak: best of a few 2048^3 hone_kt.gemm_f32 calls in the same
 * child just before the steps (this machine is shared, so both see one load).
 *
 * bf16 rows (BENCH_PREC): hone with `bf16: true` (backend_cpu_bf16, the gemm_bf16 path
 * kernels_select_bf16 picks, named in the header) next to PyTorch under torch.autocast("cpu",
 * bfloat16) (TRL's bf16=True); their MFU is still against the fp32 GEMM peak.
 *
 * Usage: bench_train_step [quick]        quick: 15M model only
 * Environment: BENCH_MODELS=15m,135m  BENCH_THREADS="1 2"  BENCH_MODES=sft,dpo_pre,dpo_ref,sft_lora
 *   BENCH_PREC=fp32,bf16 (default both)
 *   BENCH_STEPS (timed steps, default 3 for 15M, 2 for 135M; one warm-up step first)
 *   BENCH_DPO_SHARED=1|0 (hone's DPO layout, default 1: shared prompt)
 *   BENCH_PROFILE=1 (per-phase CPU seconds of the hone step)   BENCH_NO_PY=1   BENCH_NO_PIN=1 (threads not pinned)
 *   BENCH_COMPILE=0 (skip the torch.compile fp32 runs; default: run them and end with a table against the fastest PyTorch mode)
 *   HONE_PYTHON (else /work/venv/bin/python, else python3), HONE_SHARED, HONE_SRCDIR */

#include "train/dpo.h"
#include "simd/kernels.h"
#include "model/model.h"
#include "model/lora.h"
#include "base/rng.h"
#include "train/sft.h"
#include "base/threads.h"
#include "train/train.h"
#include "model/transformer.h"
#include "base/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROWS 4
#define SEQ 256
#define PROMPT 128
#define COMPL 128

static const char *CFG_15M =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 288,"
    " \"intermediate_size\": 768, \"num_hidden_layers\": 6, \"num_attention_heads\": 6, \"num_key_value_heads\": 6,"
    " \"vocab_size\": 32000, \"max_position_embeddings\": 2048, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0,"
    " \"tie_word_embeddings\": true, \"hidden_act\": \"silu\", \"bos_token_id\": 1, \"eos_token_id\": 2,"
    " \"attention_bias\": false, \"mlp_bias\": false, \"torch_dtype\": \"float32\"}";
/* SmolLM2-135M's config.json, used when ../shared is absent */
static const char *CFG_135M =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 0, \"eos_token_id\": 0, \"hidden_act\": \"silu\", \"hidden_size\": 576,"
    " \"initializer_range\": 0.041666666666666664, \"intermediate_size\": 1536, \"max_position_embeddings\": 8192,"
    " \"model_type\": \"llama\", \"num_attention_heads\": 9, \"num_hidden_layers\": 30, \"num_key_value_heads\": 3,"
    " \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, \"rope_scaling\": null, \"rope_theta\": 100000,"
    " \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\", \"use_cache\": true, \"vocab_size\": 49152}";

enum { MODE_SFT, MODE_DPO_PRE, MODE_DPO_REF, MODE_SFT_LORA, MODE_GEMM, N_MODES };
static const char *MODE_NAME[] = {"sft", "dpo_pre", "dpo_ref", "sft_lora", "gemm"};

/* What a child sends back through its pipe. */
typedef struct result {
    int ok;
    double step_s;     /* median step time */
    double cpu_s;      /* median process CPU seconds per step (all threads) */
    double tokens;     /* tokens per step (TRL's count) */
    double flops;      /* model FLOPs per step */
    double gflops;     /* GEMM peak, GFLOP/s of wall time */
    double gflops_cpu; /* the same per CPU second (all threads) */
    double ph[6];      /* BENCH_PROFILE: per-phase CPU seconds (medians) */
    long maxrss_kb;    /* filled by the parent from wait4 */
    char isa[16];
    char msg[200];
} result;

static const char *PH_NAME[6] = {"ref fwd+head", "forward", "head fwd", "head bwd", "backward", "adamw"};

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Training FLOPs of causal attention over a batch: for each query, 4*D*H flops
 * (q.k and p.v) per visible key and layer, times 3 (forward + backward). */
static double attn_flops_fwd(const hone_model_config *c, const hone_batch *b) {
    double keys = 0;
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + t;
            keys += (double)(b->pfx_end[i] - b->pfx_start[i]) + (t - b->start[i] + 1);
        }
    return 4.0 * c->head_dim * c->num_heads * keys * c->num_layers;
}

static void random_ids(int32_t *ids, int n, int V, hone_rng *r) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(rng_below(r, (uint64_t)(V - 3))) + 3;
}

/* ---- the child: one configuration ---- */

static int run_gemm(result *res) {
    int n = 2048;
    float *A = malloc(sizeof(float) * n * n), *B = malloc(sizeof(float) * n * n), *C = malloc(sizeof(float) * n * n);
    for (long i = 0; i < (long)n * n; i++) { A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f; B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f; }
    hone_kt.gemm_f32(0, 1, n, n, n, A, n, B, n, 0.f, C, n);
    double best = 0, best_cpu = 0;
    for (int r = 0; r < 4; r++) {
        double c0 = cpu_now(), t0 = hone_now();
        hone_kt.gemm_f32(0, 1, n, n, n, A, n, B, n, 0.f, C, n);
        double g = 2.0 * n * n * n / (hone_now() - t0) / 1e9, gc = 2.0 * n * n * n / (cpu_now() - c0) / 1e9;
        if (g > best) best = g;
        if (gc > best_cpu) best_cpu = gc;
    }
    free(A); free(B); free(C);
    res->gflops = best;
    res->gflops_cpu = best_cpu;
    res->ok = 1;
    return 0;
}

static int run_sft(hone_model *m, int lora, int steps, int profile, result *res, hone_error *err) {
    const hone_model_config *c = &m->cfg;
    hone_trainer t;
    hone_lora lo;
    memset(&lo, 0, sizeof lo);
    if (lora) {
        hone_lora_config lc = {.r = 16, .alpha = 32, .dropout = 0.05, .targets = LORA_ALL_LINEAR};
        if (lora_init(&lo, m, &lc, err) < 0) return -1;
        lora_init_weights(&lo, m, 7);
        lora_attach(m, &lo);
    }
    if (trainer_init(&t, m, NULL, NULL, 1e-5, HONE_SCHED_CONSTANT, 0, 1000000, 0.9, 0.999, 1e-8, 0.0, 1.0, err) < 0) return -1;
    hone_acts a;
    hone_batch b;
    if (acts_init_model(&a, m, ROWS, SEQ, 1, 0, err) < 0) { trainer_free(&t); return -1; }
    batch_alloc(&b, ROWS, SEQ);
    batch_reset(&b, 0);
    hone_rng rng;
    rng_seed(&rng, 1234);
    int32_t ids[SEQ];
    for (int r = 0; r < ROWS; r++) {
        random_ids(ids, SEQ, c->vocab_size, &rng);
        batch_put_doc(&b, r, 0, ids, SEQ, 0, NULL);
    }
    long n_lab = 0;
    for (int i = 0; i < ROWS * SEQ; i++) n_lab += b.labels[i] >= 0;
    double *ts = calloc(steps + 1, sizeof(double)), *cs = calloc(steps + 1, sizeof(double)), *ph[6];
    for (int k = 0; k < 6; k++) ph[k] = calloc(steps + 1, sizeof(double));
    for (int s = 0; s <= steps; s++) { /* step 0: warm-up */
        double t0 = hone_now(), c0 = cpu_now();
        trainer_zero_grad(&t);
        model_forward(m, &a, &b);
        double c1 = cpu_now();
        model_head(m, &a, &b, NULL, 1.0f / (float)n_lab, &t.g);
        double c2 = cpu_now();
        model_backward(m, &a, &b, &t.g);
        double c3 = cpu_now();
        double lr;
        trainer_apply(&t, &lr);
        double c4 = cpu_now();
        if (s > 0) {
            ts[s - 1] = hone_now() - t0;
            cs[s - 1] = c4 - c0;
            ph[1][s - 1] = c1 - c0; ph[3][s - 1] = c2 - c1; ph[4][s - 1] = c3 - c2; ph[5][s - 1] = c4 - c3;
        }
    }
    res->step_s = median(ts, steps);
    res->cpu_s = median(cs, steps);
    if (profile)
        for (int k = 0; k < 6; k++) res->ph[k] = median(ph[k], steps);
    res->tokens = ROWS * SEQ;
    res->flops = 6.0 * (double)m->num_floats * ROWS * SEQ + 3.0 * attn_flops_fwd(c, &b);
    if (lora) /* no weight gradient for the frozen matrices: forward + input gradient, plus the adapters' 6 */
        res->flops = 4.0 * (double)m->num_floats * ROWS * SEQ + 6.0 * (double)lo.num_floats * ROWS * SEQ + 3.0 * attn_flops_fwd(c, &b);
    res->ok = 1;
    for (int k = 0; k < 6; k++) free(ph[k]);
    free(ts);
    free(cs);
    batch_free(&b);
    acts_free(&a);
    trainer_free(&t);
    if (lora) { lora_attach(m, NULL); lora_free(&lo); }
    return 0;
}

static int run_dpo(hone_model *m, int live_ref, int shared, int steps, int profile, result *res, hone_error *err) {
    const hone_model_config *c = &m->cfg;
    hone_rng rng;
    rng_seed(&rng, 4321);
    hone_tok_pair pairs[ROWS];
    int32_t *pool = malloc(sizeof(int32_t) * ROWS * (PROMPT + 2 * COMPL));
    for (int i = 0; i < ROWS; i++) {
        int32_t *p = pool + (size_t)i * (PROMPT + 2 * COMPL);
        random_ids(p, PROMPT + 2 * COMPL, c->vocab_size, &rng);
        pairs[i] = (hone_tok_pair){p, PROMPT, p + PROMPT, COMPL, p + PROMPT + COMPL, COMPL};
    }
    dpo_opts o;
    memset(&o, 0, sizeof o);
    dpo_loss_opts_default(&o.loss);
    o.batch_size = o.eval_batch_size = ROWS;
    o.accum = 1;
    o.shared_prompt = shared;
    o.quiet = 1;
    dpo_ref_logps refs = {0};
    hone_model ref = {0};
    int rc = -1;
    if (live_ref) {
        if (model_init(&ref, c, err) < 0) { free(pool); return -1; }
        memcpy(ref.data, m->data, sizeof(float) * m->num_floats);
        ref.be = m->be; /* bf16: the reference under autocast too */
    } else if (dpo_precompute_ref(m, &o, pairs, ROWS, &refs, err) < 0) { /* the policy is its own reference, as TRL */
        free(pool);
        return -1;
    }
    hone_trainer t;
    dpo_ws ws;
    memset(&ws, 0, sizeof ws);
    if (trainer_init(&t, m, NULL, NULL, 1e-6, HONE_SCHED_CONSTANT, 0, 1000000, 0.9, 0.999, 1e-8, 0.0, 1.0, err) < 0) goto out;
    if (dpo_ws_init(&ws, c, &o, ROWS, pairs, ROWS, live_ref, 1, err) < 0) { trainer_free(&t); goto out; }
    dpo_loss_state st;
    dpo_loss_state_init(&st);
    long idx[ROWS] = {0, 1, 2, 3};
    double *ts = calloc(steps + 1, sizeof(double)), *cs = calloc(steps + 1, sizeof(double)), *ph[6];
    for (int k = 0; k < 6; k++) ph[k] = calloc(steps + 1, sizeof(double));
    dpo_step_result r;
    for (int s = 0; s <= steps; s++) {
        double c0 = cpu_now(), t0 = hone_now();
        trainer_zero_grad(&t);
        if (dpo_micro_batch(&ws, m, &t.g, live_ref ? &ref : NULL, &o, &st, pairs, idx, ROWS, live_ref ? NULL : &refs, 1.0f, &r,
                            err) < 0) {
            trainer_free(&t);
            goto out;
        }
        double lr;
        trainer_apply(&t, &lr);
        if (s > 0) { ts[s - 1] = hone_now() - t0; cs[s - 1] = cpu_now() - c0; }
    }
    res->step_s = median(ts, steps);
    res->cpu_s = median(cs, steps);
    res->tokens = (double)r.n_tokens;
    /* tokens the layout runs: rows x T slots (equal-length pairs leave no padding) */
    double tok_exec;
    tok_exec = (double)ws.batch.B * ws.batch.T;
    double fw = 2.0 * (double)m->num_floats * tok_exec + attn_flops_fwd(c, &ws.batch);
    res->flops = 3.0 * fw + (live_ref ? fw : 0.0);
    if (profile) {
        /* phases, re-run on the batch the last step laid out (same work as inside dpo_micro_batch) */
        hone_batch *b = &ws.batch;
        hone_acts *a = &ws.acts;
        for (int s = 0; s < steps; s++) {
            double t0 = cpu_now();
            if (live_ref) { model_forward(&ref, &ws.ref_acts, b); model_head(&ref, &ws.ref_acts, b, NULL, 1.0f, NULL); }
            double t1 = cpu_now();
            model_forward(m, a, b);
            double t2 = cpu_now();
            model_head(m, a, b, NULL, 1.0f, NULL);
            double t3 = cpu_now();
            model_head(m, a, b, ws.w, 0.f, &t.g);
            double t4 = cpu_now();
            model_backward(m, a, b, &t.g);
            double t5 = cpu_now();
            double lr;
            trainer_apply(&t, &lr);
            double t6 = cpu_now();
            ph[0][s] = t1 - t0; ph[1][s] = t2 - t1; ph[2][s] = t3 - t2; ph[3][s] = t4 - t3; ph[4][s] = t5 - t4; ph[5][s] = t6 - t5;
        }
        for (int k = 0; k < 6; k++) res->ph[k] = median(ph[k], steps);
    }
    res->ok = 1;
    rc = 0;
    for (int k = 0; k < 6; k++) free(ph[k]);
    free(ts);
    free(cs);
    trainer_free(&t);
out:
    dpo_ws_free(&ws);
    if (live_ref) model_free(&ref);
    else dpo_ref_logps_free(&refs);
    free(pool);
    return rc;
}

static void child_main(int fd, const char *cfg_json, int mode, int nth, int steps, int shared, int profile, int bf16) {
    result res;
    memset(&res, 0, sizeof res);
    hone_error err = {0};
    hone_topology topo;
    kernels_init();
    snprintf(res.isa, sizeof res.isa, "%s", hone_kt.isa);
    int pin = !(getenv("BENCH_NO_PIN") && atoi(getenv("BENCH_NO_PIN")));
    if (threads_init(&topo, nth, pin, &err) < 0) goto fail;
    run_gemm(&res); /* the peak under the same conditions as the steps that follow */
    if (mode == MODE_GEMM) goto done;
    hone_model_config c;
    hone_model m;
    if (model_config_parse(&c, cfg_json, "(config)", &err) < 0 || model_init(&m, &c, &err) < 0) goto fail;
    model_init_random(&m, 42, 0.02f);
    if (bf16) {
        kernels_select_bf16(&hone_kt, NULL, 0);
        m.be = backend_cpu_bf16();
    }
    int rc = mode == MODE_SFT || mode == MODE_SFT_LORA ? run_sft(&m, mode == MODE_SFT_LORA, steps, profile, &res, &err)
                              : run_dpo(&m, mode == MODE_DPO_REF, shared, steps, profile, &res, &err);
    model_free(&m);
    if (rc < 0) goto fail;
done:
    if (write(fd, &res, sizeof res) != (ssize_t)sizeof res) _exit(3);
    _exit(0);
fail:
    res.ok = 0;
    snprintf(res.msg, sizeof res.msg, "%.190s", err.msg);
    if (write(fd, &res, sizeof res) != (ssize_t)sizeof res) _exit(3);
    _exit(1);
}

/* Forks a child for one hone configuration; fills res (with its peak RSS). */
static void run_hone(const char *cfg_json, int mode, int nth, int steps, int shared, int profile, int bf16, result *res) {
    memset(res, 0, sizeof *res);
    int fds[2];
    if (pipe(fds) < 0) { snprintf(res->msg, sizeof res->msg, "pipe failed"); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_main(fds[1], cfg_json, mode, nth, steps, shared, profile, bf16);
    }
    close(fds[1]);
    result r;
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    wait4(pid, &status, 0, &ru);
    if (got == (ssize_t)sizeof r) *res = r;
    else snprintf(res->msg, sizeof res->msg, "child died (status %d)", status);
    res->maxrss_kb = ru.ru_maxrss;
}

/* Runs the PyTorch script for one configuration in its own process. */
static void run_torch(const char *py, const char *script, const char *cfg_path, int mode, int nth, int steps, int bf16,
                      int compile, result *res) {
    memset(res, 0, sizeof *res);
    int fds[2];
    if (pipe(fds) < 0) return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        close(fds[1]);
        char th[16], st[16];
        snprintf(th, sizeof th, "%d", nth);
        snprintf(st, sizeof st, "%d", steps);
        const char *argv[16] = {py, script, "--config", cfg_path, "--mode", MODE_NAME[mode], "--threads", th, "--steps", st};
        int n = 10;
        if (bf16) argv[n++] = "--bf16";
        if (compile) argv[n++] = "--compile";
        argv[n] = NULL;
        execv(py, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "RESULT ", 7)) continue;
        char *p;
        if ((p = strstr(line, "step_s="))) res->step_s = atof(p + 7);
        if ((p = strstr(line, "cpu_s="))) res->cpu_s = atof(p + 6);
        if ((p = strstr(line, "tokens="))) res->tokens = atof(p + 7);
        res->ok = res->step_s > 0;
    }
    if (f) fclose(f);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    wait4(pid, &status, 0, &ru);
    res->maxrss_kb = ru.ru_maxrss;
    if (!res->ok) snprintf(res->msg, sizeof res->msg, "python exit status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static int python_ok(const char *py) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch, transformers, trl' >/dev/null 2>&1", py);
    return access(py, X_OK) == 0 && system(cmd) == 0;
}

static int listed(const char *list, const char *name) {
    if (!list) return 1;
    char buf[256];
    snprintf(buf, sizeof buf, ",%s,", list);
    char key[64];
    snprintf(key, sizeof key, ",%s,", name);
    return strstr(buf, key) != NULL;
}

int main(int argc, char **argv) {
    int quick = argc > 1 && !strcmp(argv[1], "quick");
    const char *models_env = getenv("BENCH_MODELS"), *modes_env = getenv("BENCH_MODES");
    const char *thr_env = getenv("BENCH_THREADS"), *prec_env = getenv("BENCH_PREC");
    int shared = getenv("BENCH_DPO_SHARED") ? atoi(getenv("BENCH_DPO_SHARED")) : 1;
    int profile = getenv("BENCH_PROFILE") && atoi(getenv("BENCH_PROFILE"));
    /* torch.compile fp32 as a third PyTorch mode (default on; its warm-up step compiles) */
    int compile = !(getenv("BENCH_COMPILE") && !atoi(getenv("BENCH_COMPILE")));
    static result hres[2][MODE_GEMM][4][2], tres[2][MODE_GEMM][4][3]; /* [model][mode][threads][hone fp32, bf16 | torch fp32, autocast, compile] */
    int steps_env = getenv("BENCH_STEPS") ? atoi(getenv("BENCH_STEPS")) : 0;
    int threads[4], nthr = 0;
    {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", thr_env ? thr_env : "1 2");
        for (char *tok = strtok(buf, " ,"); tok && nthr < 4; tok = strtok(NULL, " ,")) threads[nthr++] = atoi(tok);
    }
    /* model configs: 135M from ../shared when present, else inline */
    const char *shared_dir = getenv("HONE_SHARED") ? getenv("HONE_SHARED") : "../shared";
    char p135[4096], p15[] = "/tmp/hone_bench_15m_XXXXXX", p135tmp[] = "/tmp/hone_bench_135m_XXXXXX";
    snprintf(p135, sizeof p135, "%s/models/configs/smollm2-135m.json", shared_dir);
    char *json135 = NULL;
    hone_error err = {0};
    if (hone_read_file(p135, &json135, NULL, &err) < 0) {
        json135 = strdup(CFG_135M);
        int fd = mkstemp(p135tmp);
        if (fd >= 0) { if (write(fd, CFG_135M, strlen(CFG_135M)) < 0) p135tmp[0] = 0; close(fd); }
        snprintf(p135, sizeof p135, "%s", p135tmp);
    }
    {
        int fd = mkstemp(p15);
        if (fd >= 0) { if (write(fd, CFG_15M, strlen(CFG_15M)) < 0) p15[0] = 0; close(fd); }
    }
    struct { const char *name, *json, *path; int steps; } models[2] = {
        {"15m", CFG_15M, p15, 3}, {"135m", json135, p135, 2}};
    /* PyTorch reference */
    const char *py = getenv("HONE_PYTHON");
    if (!py) py = access("/work/venv/bin/python", X_OK) == 0 ? "/work/venv/bin/python" : "python3";
    char script[4096];
    snprintf(script, sizeof script, "%s/benchmarks/train_step_ref.py", getenv("HONE_SRCDIR") ? getenv("HONE_SRCDIR") : ".");
    int have_py = !(getenv("BENCH_NO_PY") && atoi(getenv("BENCH_NO_PY"))) && access(script, R_OK) == 0 && python_ok(py);

    hone_topology topo;
    threads_plan(&topo, NULL, 0, &err);
    kernels_init();
    char cpu[128] = "unknown";
    {
        FILE *f = fopen("/proc/cpuinfo", "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) { c += 2; c[strcspn(c, "\n")] = 0; snprintf(cpu, sizeof cpu, "%s", c); }
                break;
            }
        if (f) fclose(f);
    }
    printf("hone training-step benchmark: CPU %s, %d core(s), ISA %s; batch %d x %d (DPO: %d pairs, prompt %d + "
           "completions %d, %s layout)\n",
           cpu, topo.cores, hone_kt.isa, ROWS, SEQ, ROWS, PROMPT, COMPL, shared ? "shared-prompt" : "two-row");
    printf("PyTorch reference: %s\n", have_py ? py : "not available (skipped)");
    if (listed(prec_env, "bf16")) {
        char why[256];
        hone_kernels kb = hone_kt;
        kernels_select_bf16(&kb, why, sizeof why);
        printf("bf16 rows: hone bf16: true, products on %s; PyTorch under torch.autocast(cpu, bfloat16)\n", why);
    }
    double la[3] = {0};
    if (getloadavg(la, 3) > 0) printf("load average at start: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    printf("\n%-5s %-13s %3s | %10s %7s %7s %7s %7s %5s %5s | %11s %7s %7s | %6s %6s %6s\n", "model", "step", "thr",
           "hone tok/s", "step s", "cpu s", "RSS MB", "GEMM GF", "MFU%", "cMFU%", "torch tok/s", "cpu s", "RSS MB", "speed", "cpu",
           "RSS");
    for (int mi = 0; mi < 2; mi++) {
        if (!listed(models_env, models[mi].name) || (quick && mi == 1)) continue;
        int steps = steps_env > 0 ? steps_env : models[mi].steps;
        for (int mode = 0; mode < MODE_GEMM; mode++) {
            if (!listed(modes_env, MODE_NAME[mode])) continue;
            for (int bf = 0; bf < 2; bf++)
            for (int ti = 0; ti < nthr; ti++) {
                if (!listed(prec_env, bf ? "bf16" : "fp32")) continue;
                char label[32];
                snprintf(label, sizeof label, "%s%s", MODE_NAME[mode], bf ? "/bf16" : "");
                result h, t;
                run_hone(models[mi].json, mode, threads[ti], steps, shared, profile, bf, &h);
                memset(&t, 0, sizeof t);
                if (have_py) run_torch(py, script, models[mi].path, mode, threads[ti], steps, bf, 0, &t);
                hres[mi][mode][ti][bf] = h, tres[mi][mode][ti][bf] = t;
                if (have_py && compile && !bf) /* torch.compile fp32: the summary's third PyTorch mode */
                    run_torch(py, script, models[mi].path, mode, threads[ti], steps, 0, 1, &tres[mi][mode][ti][2]);
                if (!h.ok) { printf("%-5s %-13s %3d | hone failed: %s\n", models[mi].name, label, threads[ti], h.msg); continue; }
                double htok = h.tokens / h.step_s, mfu = 100.0 * h.flops / h.step_s / 1e9 / h.gflops;
                double cmfu = 100.0 * h.flops / h.cpu_s / 1e9 / h.gflops_cpu;
                printf("%-5s %-13s %3d | %10.0f %7.3f %7.3f %7.0f %7.1f %5.1f %5.1f |", models[mi].name, label,
                       threads[ti], htok, h.step_s, h.cpu_s, h.maxrss_kb / 1024.0, h.gflops, mfu, cmfu);
                if (t.ok) {
                    double ttok = t.tokens / t.step_s;
                    /* cpu: the same ratio on CPU seconds per token (robust to a shared machine's load) */
                    double hc = h.cpu_s / h.tokens, tc = t.cpu_s / t.tokens;
                    printf(" %11.0f %7.3f %7.0f | %5.2fx %5.2fx %5.2fx\n", ttok, t.cpu_s, t.maxrss_kb / 1024.0, htok / ttok,
                           tc / hc, (double)h.maxrss_kb / (double)t.maxrss_kb);
                } else printf(" %11s %7s %7s |\n", have_py ? "failed" : "-", "-", "-");
                if (have_py && compile && !bf) {
                    result *c = &tres[mi][mode][ti][2];
                    if (c->ok) printf("      torch.compile fp32: %.0f tok/s, %.3f CPU s, %.0f MB\n", c->tokens / c->step_s, c->cpu_s,
                                      c->maxrss_kb / 1024.0);
                    else printf("      torch.compile fp32: %s\n", c->msg);
                }
                if (profile) {
                    printf("      phases (CPU s):");
                    for (int k = 0; k < 6; k++)
                        if (h.ph[k] > 0) printf(" %s %.3f", PH_NAME[k], h.ph[k]);
                    printf("\n");
                }
                fflush(stdout);
            }
        }
    }
    if (have_py) { /* the comparison: hone against the fastest PyTorch mode of the same step */
        static const char *TNAME[3] = {"fp32", "autocast", "compile"};
        printf("\nagainst the fastest PyTorch mode (fp32 eager, bf16 autocast, torch.compile fp32) of each step:\n");
        printf("%-5s %-9s %3s | %-8s %9s %7s | %9s %6s %6s | %9s %6s %6s\n", "model", "step", "thr", "fastest", "tok/s",
               "RSS MB", "hone fp32", "speed", "RSS", "hone bf16", "speed", "RSS");
        for (int mi = 0; mi < 2; mi++)
            for (int mode = 0; mode < MODE_GEMM; mode++)
                for (int ti = 0; ti < nthr; ti++) {
                    int b = -1;
                    double bt = 0;
                    for (int k = 0; k < 3; k++) {
                        result *t = &tres[mi][mode][ti][k];
                        if (t->ok && t->tokens / t->step_s > bt) bt = t->tokens / t->step_s, b = k;
                    }
                    if (b < 0) continue;
                    result *t = &tres[mi][mode][ti][b];
                    printf("%-5s %-9s %3d | %-8s %9.0f %7.0f |", models[mi].name, MODE_NAME[mode], threads[ti], TNAME[b], bt,
                           t->maxrss_kb / 1024.0);
                    for (int p = 0; p < 2; p++) {
                        result *h = &hres[mi][mode][ti][p];
                        if (h->ok)
                            printf(" %9.0f %5.2fx %5.2fx%s", h->tokens / h->step_s, h->tokens / h->step_s / bt,
                                   (double)h->maxrss_kb / (double)t->maxrss_kb, p ? "\n" : " |");
                        else printf(" %9s %6s %6s%s", "-", "-", "-", p ? "\n" : " |");
                    }
                }
    }
    if (getloadavg(la, 3) > 0) printf("load average at end: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    printf("\nspeed = hone tok/s / torch tok/s; cpu = torch CPU s per token / hone CPU s per token; RSS = hone peak RSS / torch peak RSS (each configuration in its own "
           "process); GEMM GF: 2048^3 hone_kt.gemm_f32 GFLOP/s measured in the same process just before the steps; "
           "MFU%% = model FLOPs / step time / that; cMFU%%: the same on CPU seconds (step and GEMM), robust to load\n");
    if (p15[0]) unlink(p15);
    if (p135tmp[0] && strncmp(p135tmp, "/tmp/hone_bench_135m_XXXXXX", 27)) unlink(p135tmp);
    free(json135);
    return 0;
}
