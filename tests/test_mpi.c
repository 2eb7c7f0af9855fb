/* test_mpi.c — data-parallel training under mpirun through the built `hone` (HONE_BIN), on
 * stories260K, 2 and 3 local ranks (--oversubscribe; the CI machine has 2 cores). Skipped when
 * hone was built without MPI, mpirun is absent, or ../shared is. Every comparison is against
 * the single-process run with the same global batch (per_device_train_batch_size x
 * gradient_accumulation_steps x ranks):
 *   1. SFT at 1 process (accum 6), 2 ranks (accum 3), 3 ranks (accum 2), with the default
 *      grad_accum_dtype fp64: every logged loss and gradient norm within 1e-6 relative, the
 *      final weights within 1e-6 of each tensor's largest magnitude (measured: bitwise, which
 *      each line reports); with grad_accum_dtype fp32 (3 ranks) the looser bounds of float
 *      sums (near_run); a second 2-rank run gives the same bytes (bitwise);
 *   2. zero_stage 1 (3 ranks) writes the same final bytes as zero_stage 0, its checkpoint is one
 *      optimizer shard per rank, and resumes: at 3 ranks bitwise equal to the uninterrupted run,
 *      at 2 ranks and in one process within the tolerances of 1.; a missing shard stops the job
 *      with a message naming the rank that needed it;
 *   3. LoRA SFT, and DPO with every reference mode (live reference model, precomputed
 *      reference log-probs, two-row layout instead of the shared prompt, reference_free,
 *      sync_ref_model, LoRA with the adapters-off reference): 2 ranks against 1 process as in 1.; the DPO runs evaluate 12
 *      held-out pairs (3 batches shared out between the ranks) and eval_loss is compared too;
 *   3b. bf16: true (autocast): 2 ranks against one process as in 1., zero_stage 1 bitwise 0;
 *   4. a 3-trial grid search under 2 ranks ranks the trials as one process does, with the same
 *      metric values (each trial is a single-process run);
 *   5. `mpirun -np 2 hone info` lists both ranks' placements.
 * The ranks run with ASAN_OPTIONS=detect_leaks=0 (Open MPI's own allocations at exit are not
 * hone's leaks; every other ASan check stays on) and UBSAN_OPTIONS=halt_on_error=1 (so in the
 * sanitizer build undefined behaviour in a rank fails the run instead of scrolling by). */
#include "config.h"
#include "base/util.h"
#include "model/safetensors.h"
#include "simd/kernels.h"
#include "spawn.h"
#include "test.h"
#include <dirent.h>
#include <jansson.h>
#include <math.h>

static char g_root[256], g_mpirun[512];

static char *slurp(const char *path) {
    char *text = NULL;
    size_t len;
    return hone_read_file(path, &text, &len, NULL) == 0 ? text : NULL;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static int find_mpirun(void) {
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *d = strtok(buf, ":"); d; d = strtok(NULL, ":")) {
        snprintf(g_mpirun, sizeof g_mpirun, "%s/mpirun", d);
        if (access(g_mpirun, X_OK) == 0) return 1;
    }
    g_mpirun[0] = 0;
    return 0;
}

/* stories260K converted, the data written; NULL (and a skip) when impossible */
static const char *setup(void) {
    if (!HONE_HAVE_MPI) { test_skip("hone was built without MPI (./configure --with-mpi; apt-get install openmpi-bin libopenmpi-dev)"); return NULL; }
    if (!test_hone_bin()) { test_skip("HONE_BIN is not set (make check sets it to the built hone)"); return NULL; }
    if (!g_mpirun[0] && !find_mpirun()) { test_skip("mpirun is not on PATH (apt-get install openmpi-bin)"); return NULL; }
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return NULL; }
    if (g_root[0]) return g_root;
    /* mpirun as root (CI containers), ranks on more slots than cores, leaks of MPI itself */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1); /* no CMA: containers often forbid ptrace */
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1", 1); /* a sanitizer build: undefined behaviour in a rank fails its run */
    unsetenv("HONE_CPUSET");
    const char *r = test_tmpdir("mpi");
    char model[512], p[512];
    snprintf(model, sizeof model, "%s/model", r);
    if (test_convert_stories(r, bin, spm) < 0) { CHECK(0, "hone convert failed"); return NULL; }
    test_story_data(r, 48, 48, 48);
    snprintf(p, sizeof p, "%s/sft.yaml", r);
    char y[1024];
    snprintf(y, sizeof y,
             "model_name_or_path: %s\nlearning_rate: 1.0e-3\nmax_steps: 4\nsave_steps: 2\nper_device_train_batch_size: 2\n"
             "max_length: 48\nlogging_steps: 1\nthreads: 1\nseed: 5\ndatasets:\n  - path: %s/sft.jsonl\n", model, r);
    write_file(p, y);
    snprintf(p, sizeof p, "%s/dpo.yaml", r);
    snprintf(y, sizeof y,
             "model_name_or_path: %s\nlearning_rate: 1.0e-3\nbeta: 0.1\nmax_steps: 3\nper_device_train_batch_size: 2\n"
             "max_length: 48\nlogging_steps: 1\nthreads: 1\nseed: 5\ntest_size: 0.25\neval_strategy: steps\neval_steps: 3\n"
             "per_device_eval_batch_size: 4\ndatasets:\n  - path: %s/dpo.jsonl\n", model, r);
    write_file(p, y);
    snprintf(g_root, sizeof g_root, "%s", r);
    return g_root;
}

/* `hone CMD ROOT/YAML --set output_dir=ROOT/OUT --set accum --set extra...` in np ranks (0: no
 * mpirun); the exit status, the output in ROOT/OUT.log */
static int run(int np, const char *cmd, const char *yaml, const char *out, int accum, const char *const *extra) {
    char *argv[48], ys[600], os[600], as[64], nps[16], log[700];
    int n = 0;
    if (np > 0) {
        snprintf(nps, sizeof nps, "%d", np);
        argv[n++] = g_mpirun, argv[n++] = "-np", argv[n++] = nps, argv[n++] = "--oversubscribe";
    }
    snprintf(ys, sizeof ys, "%s/%s", g_root, yaml);
    snprintf(os, sizeof os, "output_dir=%s/%s", g_root, out);
    snprintf(as, sizeof as, "gradient_accumulation_steps=%d", accum);
    snprintf(log, sizeof log, "%s/%s.log", g_root, out);
    argv[n++] = (char *)test_hone_bin(), argv[n++] = (char *)cmd, argv[n++] = ys;
    argv[n++] = "--set", argv[n++] = os, argv[n++] = "--set", argv[n++] = as;
    for (int i = 0; extra && extra[i] && n < 44; i++) argv[n++] = "--set", argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    int rc = test_wait(test_spawn(argv, log), 120, NULL);
    if (rc != 0) {
        char *t = slurp(log);
        CHECK(0, "%s %s (%d ranks) -> %s: exit %d\n%s", cmd, yaml, np, out, rc, t ? t : "");
        free(t);
    }
    return rc;
}

/* the largest |a - b| / max |a| over the tensors of two safetensors files (-1: unreadable or
 * of other tensors), and whether every byte of every tensor agrees */
static double weights_diff(const char *a, const char *b, int *bitwise) {
    st_file fa, fb;
    char pa[800], pb[800];
    snprintf(pa, sizeof pa, "%s/%s", g_root, a);
    snprintf(pb, sizeof pb, "%s/%s", g_root, b);
    *bitwise = 0;
    if (st_open(&fa, pa, NULL) < 0) return -1;
    if (st_open(&fb, pb, NULL) < 0) { st_close(&fa); return -1; }
    double worst = fa.n == fb.n ? 0 : -1;
    int same = fa.n == fb.n;
    for (int i = 0; i < fa.n && worst >= 0; i++) {
        const st_tensor *x = &fa.tensors[i], *y = st_find(&fb, x->name);
        size_t n = st_numel(x);
        if (!y || st_numel(y) != n || x->dtype != ST_F32 || y->dtype != ST_F32) { worst = -1; break; }
        float *u = malloc(sizeof(float) * n), *v = malloc(sizeof(float) * n);
        st_read_f32(&fa, x, u, NULL);
        st_read_f32(&fb, y, v, NULL);
        double big = 0, d = 0;
        for (size_t j = 0; j < n; j++) {
            big = fmax(big, fabs(u[j]));
            d = fmax(d, fabs((double)u[j] - v[j]));
        }
        same &= !memcmp(u, v, sizeof(float) * n);
        worst = fmax(worst, big > 0 ? d / big : d);
        free(u);
        free(v);
    }
    st_close(&fa);
    st_close(&fb);
    *bitwise = same && worst == 0;
    return worst;
}

/* the largest relative difference of "loss" and "grad_norm" two runs logged, at step 1 (*first:
 * the same weights, so this is the gradient reduction alone) and over every step (returned);
 * -1 when the steps differ */
static double metrics_diff(const char *a, const char *b, double *first) {
    char pa[800], pb[800];
    snprintf(pa, sizeof pa, "%s/%s/metrics.jsonl", g_root, a);
    snprintf(pb, sizeof pb, "%s/%s/metrics.jsonl", g_root, b);
    FILE *fa = fopen(pa, "r"), *fb = fopen(pb, "r");
    double worst = fa && fb ? 0 : -1;
    if (first) *first = -1;
    char la[4096], lb[4096];
    int lines = 0;
    while (worst >= 0 && fa && fb && fgets(la, sizeof la, fa)) {
        if (!fgets(lb, sizeof lb, fb)) { worst = -1; break; }
        json_t *x = json_loads(la, 0, NULL), *y = json_loads(lb, 0, NULL);
        long step = (long)json_integer_value(json_object_get(x, "step"));
        if (step != json_integer_value(json_object_get(y, "step"))) worst = -1;
        const char *keys[] = {"loss", "grad_norm", "eval_loss"};
        double here = 0;
        for (int k = 0; k < 3 && worst >= 0; k++) {
            json_t *u = json_object_get(x, keys[k]), *v = json_object_get(y, keys[k]);
            if (!u && !v) continue;
            if (!json_is_number(u) || !json_is_number(v)) { worst = -1; break; }
            double p = json_number_value(u), q = json_number_value(v);
            here = fmax(here, fabs(p - q) / fmax(fabs(p), 1e-30));
        }
        if (worst >= 0) worst = fmax(worst, here);
        if (first && step == 1 && json_object_get(x, "loss")) *first = here;
        json_decref(x);
        json_decref(y);
        lines++;
    }
    if (fb && fgets(lb, sizeof lb, fb)) worst = -1;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return lines ? worst : -1;
}

/* b (ranks) against a (one process), with the default grad_accum_dtype fp64: every micro-batch
 * gradient is added in double and the sum rounded to float once, so the grouping over ranks
 * does not show (the sums of a few floats in double are exact but for spans of magnitudes over
 * 2^26). The bound, 1e-6 relative, holds for every logged loss and gradient norm, step
 * by step, and for the final weights (relative to each tensor's largest value); the line says
 * "bitwise" when every byte agrees, as it did on every run measured (docs/distributed.md). */
static void same_run(const char *a, const char *b, const char *file) {
    char fa[300], fb[300];
    snprintf(fa, sizeof fa, "%s/final/%s", a, file);
    snprintf(fb, sizeof fb, "%s/final/%s", b, file);
    int bit;
    double m1, m = metrics_diff(a, b, &m1), w = weights_diff(fa, fb, &bit);
    printf("#   %s vs %s: loss / grad_norm rel diff %.3g at step 1, %.3g over all steps; weights rel diff %.3g%s\n", b, a, m1, m, w,
           bit ? " (bitwise)" : "");
    CHECK(m1 >= 0 && m >= 0 && m <= 1e-6, "%s vs %s: logged loss / grad_norm differ by %g relative (tolerance 1e-6)", b, a, m);
    CHECK(w >= 0 && w <= 1e-6, "%s vs %s: final weights differ by %g of the tensor's largest value (tolerance 1e-6)", b, a, w);
}

/* grad_accum_dtype fp32: each rank sums its micro-batches in the float gradient, so the
 * grouping shows as rounding: step 1 (the same weights: the reduction alone) within 1e-6, later
 * steps within 1e-5 (AdamW divides by sqrt(v): rounding in tiny gradients moves updates more
 * than the gradients), the weights within 1e-5 */
static void near_run(const char *a, const char *b) {
    int bit;
    double m1, m = metrics_diff(a, b, &m1), w;
    char fa[300], fb[300];
    snprintf(fa, sizeof fa, "%s/final/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/final/model.safetensors", b);
    w = weights_diff(fa, fb, &bit);
    printf("#   %s vs %s (fp32 sums): loss / grad_norm rel diff %.3g at step 1, %.3g over all steps; weights rel diff %.3g%s\n", b,
           a, m1, m, w, bit ? " (bitwise)" : "");
    CHECK(m1 >= 0 && m1 <= 1e-6, "%s vs %s: step 1's loss / grad_norm differ by %g relative (tolerance 1e-6)", b, a, m1);
    CHECK(m >= 0 && m <= 1e-5, "%s vs %s: logged loss / grad_norm differ by %g relative (tolerance 1e-5)", b, a, m);
    CHECK(w >= 0 && w <= 1e-5, "%s vs %s: final weights differ by %g of the tensor's largest value (tolerance 1e-5)", b, a, w);
}

static void test_sft_ranks(void) {
    if (!setup()) return;
    if (run(0, "sft", "sft.yaml", "p1", 6, NULL) || run(2, "sft", "sft.yaml", "r2", 3, NULL) || run(3, "sft", "sft.yaml", "r3", 2, NULL) ||
        run(2, "sft", "sft.yaml", "r2b", 3, NULL))
        return;
    same_run("p1", "r2", "model.safetensors");
    same_run("p1", "r3", "model.safetensors");
    const char *f32[] = {"grad_accum_dtype=fp32", NULL};
    if (run(0, "sft", "sft.yaml", "q1", 6, f32) == 0 && run(3, "sft", "sft.yaml", "q3", 2, f32) == 0) near_run("q1", "q3");
    int bit;
    double w = weights_diff("r2/final/model.safetensors", "r2b/final/model.safetensors", &bit);
    CHECK(bit, "two 2-rank runs differ (by %g)", w);
    weights_diff("r2/checkpoint-2/optimizer.safetensors", "r2b/checkpoint-2/optimizer.safetensors", &bit);
    CHECK(bit, "two 2-rank runs' checkpoint-2 optimizer states differ");
    CHECK(metrics_diff("r2", "r2b", NULL) == 0, "two 2-rank runs logged different losses");
    char p[700], *log;
    snprintf(p, sizeof p, "%s/r2.log", g_root);
    log = slurp(p);
    CHECK(log && strstr(log, "2 MPI ranks x gradient_accumulation_steps 3 = 6 micro-batches per step"), "no data-parallel line:\n%s",
          log ? log : "");
    free(log);
}

/* ROOT/from/checkpoint-2 (a flat directory) and metrics.jsonl copied to ROOT/to */
static int copy_checkpoint(const char *from, const char *to) {
    char src[700], dst[700], a[1200], b[1200];
    snprintf(src, sizeof src, "%s/%s/checkpoint-2", g_root, from);
    snprintf(dst, sizeof dst, "%s/%s/checkpoint-2", g_root, to);
    if (hone_mkdirs(dst, NULL) < 0) return -1;
    DIR *d = opendir(src);
    struct dirent *e;
    int rc = d ? 0 : -1;
    while (d && rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        rc = hone_copy_file(a, b, NULL);
    }
    if (d) closedir(d);
    /* and the run's metrics (a resume keeps the lines up to its step) */
    snprintf(a, sizeof a, "%s/%s/metrics.jsonl", g_root, from);
    snprintf(b, sizeof b, "%s/%s/metrics.jsonl", g_root, to);
    return rc < 0 ? rc : hone_copy_file(a, b, NULL);
}

static void test_zero1(void) {
    if (!setup()) return;
    const char *z1[] = {"zero_stage=1", NULL}, *res[] = {"zero_stage=1", "resume_from_checkpoint=true", NULL};
    const char *res0[] = {"resume_from_checkpoint=true", NULL};
    if (run(3, "sft", "sft.yaml", "z3", 2, z1)) return;
    /* its checkpoint-2, copied into four fresh output_dirs to resume from */
    const char *copies[] = {"za", "zb", "zc", "zd"};
    for (int i = 0; i < 4; i++) CHECK(copy_checkpoint("z3", copies[i]) == 0, "cannot copy z3/checkpoint-2 to %s", copies[i]);
    int bit;
    double w = weights_diff("r3/final/model.safetensors", "z3/final/model.safetensors", &bit);
    CHECK(bit, "zero_stage 1 differs from zero_stage 0 at 3 ranks (by %g)", w);
    char p[800];
    snprintf(p, sizeof p, "%s/z3/checkpoint-2/optimizer.safetensors", g_root);
    CHECK(!hone_file_exists(p), "a ZeRO-1 checkpoint holds a whole optimizer.safetensors");
    int shards = 0;
    DIR *d;
    struct dirent *e;
    snprintf(p, sizeof p, "%s/z3/checkpoint-2", g_root);
    if ((d = opendir(p))) {
        while ((e = readdir(d))) shards += !strncmp(e->d_name, "optimizer.shard-", 16);
        closedir(d);
    }
    CHECK(shards == 3, "checkpoint-2 of a 3-rank ZeRO-1 run holds %d optimizer shards, not 3", shards);
    /* resume from checkpoint-2: the same rank count, another, one process */
    if (run(3, "sft", "sft.yaml", "za", 2, res) || run(2, "sft", "sft.yaml", "zb", 3, res) || run(0, "sft", "sft.yaml", "zc", 6, res0)) return;
    w = weights_diff("z3/final/model.safetensors", "za/final/model.safetensors", &bit);
    CHECK(bit, "resumed at 3 ranks, the run differs from the uninterrupted one (by %g)", w);
    same_run("p1", "zb", "model.safetensors");
    same_run("p1", "zc", "model.safetensors");
    /* a lost shard: the rank whose part it held stops the job, named */
    snprintf(p, sizeof p, "%s/zd/checkpoint-2", g_root);
    if ((d = opendir(p))) {
        char name[300] = "";
        size_t lo = 0, hi = 0, best = 0;
        while ((e = readdir(d))) /* the middle shard: rank 1 of 3 needs it */
            if (sscanf(e->d_name, "optimizer.shard-%zu-%zu", &lo, &hi) == 2 && lo > 0 && (!best || lo < best)) {
                best = lo;
                snprintf(name, sizeof name, "%s", e->d_name);
            }
        closedir(d);
        char f[1200];
        snprintf(f, sizeof f, "%s/%s", p, name);
        CHECK(name[0] && remove(f) == 0, "cannot remove a shard from %s", p);
    }
    char ys[600], os[600], log[700], *argv[20];
    snprintf(ys, sizeof ys, "%s/sft.yaml", g_root);
    snprintf(os, sizeof os, "output_dir=%s/zd", g_root);
    snprintf(log, sizeof log, "%s/zd-fail.log", g_root);
    int n = 0;
    argv[n++] = g_mpirun, argv[n++] = "-np", argv[n++] = "3", argv[n++] = "--oversubscribe", argv[n++] = (char *)test_hone_bin();
    argv[n++] = "sft", argv[n++] = ys, argv[n++] = "--set", argv[n++] = os, argv[n++] = "--set", argv[n++] = "gradient_accumulation_steps=2";
    argv[n++] = "--set", argv[n++] = "zero_stage=1", argv[n++] = "--set", argv[n++] = "resume_from_checkpoint=true", argv[n] = NULL;
    int rc = test_wait(test_spawn(argv, log), 120, NULL);
    char *txt = slurp(log);
    CHECK(rc != 0 && txt && strstr(txt, "rank 1 of 3") && strstr(txt, "optimizer shard files do not cover"),
          "a missing shard: exit %d, the output does not name rank 1 and the cause:\n%s", rc, txt ? txt : "");
    free(txt);
}

/* bf16: true (autocast matrix products; the fp32 weights are the masters): 2 ranks against one
 * process, and zero_stage 1 (each rank updates its shard of the masters) bitwise zero_stage 0 */
static void test_bf16(void) {
    if (!setup()) return;
    const char *b0[] = {"bf16=true", NULL}, *b1[] = {"bf16=true", "zero_stage=1", NULL};
    if (run(0, "sft", "sft.yaml", "bp1", 6, b0) || run(2, "sft", "sft.yaml", "br2", 3, b0) || run(2, "sft", "sft.yaml", "bz2", 3, b1)) return;
    same_run("bp1", "br2", "model.safetensors");
    int bit;
    double w = weights_diff("br2/final/model.safetensors", "bz2/final/model.safetensors", &bit);
    CHECK(bit, "bf16: zero_stage 1 differs from zero_stage 0 at 2 ranks (by %g)", w);
}

static void test_lora_dpo(void) {
    if (!setup()) return;
    const char *lora[] = {"use_peft=true", "lora_r=4", "lora_target_modules=[q_proj,v_proj,down_proj]", NULL};
    if (run(0, "sft", "sft.yaml", "lp1", 6, lora) || run(2, "sft", "sft.yaml", "lr2", 3, lora)) return;
    same_run("lp1", "lr2", "adapter_model.safetensors");
    const char *pre[] = {"precompute_ref_log_probs=true", NULL}, *two[] = {"shared_prompt=false", NULL};
    const char *none[] = {"reference_free=true", NULL}, *sync[] = {"sync_ref_model=true", "ref_model_sync_steps=2", NULL};
    struct { const char *name; const char *const *sets; const char *file; } modes[] = {
        {"live", NULL, "model.safetensors"},
        {"pre", pre, "model.safetensors"},
        {"tworow", two, "model.safetensors"},
        {"free", none, "model.safetensors"},
        {"sync", sync, "model.safetensors"},
        {"lora", lora, "adapter_model.safetensors"},
    };
    for (int i = 0; i < 6; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "d1-%s", modes[i].name);
        snprintf(b, sizeof b, "d2-%s", modes[i].name);
        if (run(0, "dpo", "dpo.yaml", a, 4, modes[i].sets) || run(2, "dpo", "dpo.yaml", b, 2, modes[i].sets)) continue;
        same_run(a, b, modes[i].file);
    }
    char p[700], *log;
    snprintf(p, sizeof p, "%s/d2-lora.log", g_root);
    log = slurp(p);
    CHECK(log && strstr(log, "reference policy with adapters off"), "the LoRA DPO reference is not the adapters-off policy:\n%s", log ? log : "");
    free(log);
    snprintf(p, sizeof p, "%s/d2-pre/ref_logps_train.safetensors", g_root);
    CHECK(hone_file_exists(p), "precompute_ref_log_probs under 2 ranks left no cache file");
}

/* experiment.json's trials as "rank:metric" text, in trial order */
static void ranking(const char *dir, char *out, size_t n) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s/experiment.json", g_root, dir);
    json_t *e = json_load_file(p, 0, NULL), *t;
    size_t i;
    out[0] = 0;
    json_array_foreach(json_object_get(e, "trials"), i, t) {
        size_t o = strlen(out);
        snprintf(out + o, n - o, "%s%lld:%.9g:%s", i ? " " : "", (long long)json_integer_value(json_object_get(t, "rank")),
                 json_number_value(json_object_get(t, "metric")), json_string_value(json_object_get(t, "status")));
    }
    json_decref(e);
}

static void test_search(void) {
    if (!setup()) return;
    char p[700], y[1400];
    snprintf(p, sizeof p, "%s/search.yaml", g_root);
    snprintf(y, sizeof y,
             "model_name_or_path: %s/model\nlearning_rate: 1.0e-3\nmax_steps: 3\nper_device_train_batch_size: 2\n"
             "gradient_accumulation_steps: 2\nmax_length: 48\nlogging_steps: 1\nthreads: 1\nseed: 5\ndatasets:\n  - path: %s/sft.jsonl\n"
             "searcher: {name: grid, metric: loss}\nhyperparameters:\n  learning_rate: {type: categorical, vals: [1.0e-3, 5.0e-3, 2.0e-4]}\n",
             g_root, g_root);
    write_file(p, y);
    if (run(0, "sft", "search.yaml", "s1", 2, NULL) || run(2, "sft", "search.yaml", "s2", 2, NULL)) return;
    char a[512], b[512];
    ranking("s1", a, sizeof a);
    ranking("s2", b, sizeof b);
    printf("#   search ranking, 1 process: %s\n#   2 ranks: %s\n", a, b);
    CHECK(a[0] && !strcmp(a, b), "the 2-rank search ranks differently: '%s' vs '%s'", b, a);
    CHECK(strstr(a, "1:") && strstr(a, "2:") && strstr(a, "3:"), "not every trial was ranked: %s", a);
}

static void test_info(void) {
    if (!setup()) return;
    char log[700], *argv[8];
    snprintf(log, sizeof log, "%s/info.log", g_root);
    int n = 0;
    argv[n++] = g_mpirun, argv[n++] = "-np", argv[n++] = "2", argv[n++] = "--oversubscribe", argv[n++] = (char *)test_hone_bin();
    argv[n++] = "info", argv[n] = NULL;
    int rc = test_wait(test_spawn(argv, log), 60, NULL);
    char *t = slurp(log);
    CHECK(rc == 0 && t && strstr(t, "2 rank(s)") && strstr(t, "rank 0 of 2 on") && strstr(t, "rank 1 of 2 on"),
          "mpirun -np 2 hone info: exit %d, no placement of both ranks:\n%s", rc, t ? t : "");
    free(t);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_sft_ranks);
    TEST_RUN(test_zero1);
    TEST_RUN(test_bf16);
    TEST_RUN(test_lora_dpo);
    TEST_RUN(test_search);
    TEST_RUN(test_info);
    if (g_root[0]) hone_remove_tree(g_root, NULL);
    return test_finish();
}
