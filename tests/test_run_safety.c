/* test_run_safety.c — a training run's safety, tested the way the CLI runs: the built
 * `hone` (HONE_BIN, set by `make check`; the cases skip without it) is spawned on
 * stories260K (../shared) converted to a model directory, with small generated data.
 *   SIGTERM / SIGINT mid-run: a checkpoint, exit status 143 / 130, within 10 s
 *   (the child is killed with SIGKILL past that, so a hang fails instead of hanging);
 *   a huge learning rate: an error naming the step, exit 1, no final/, and every
 *   checkpoint left has finite weights;
 *   checkpoint rotation keeps the checkpoint just written; a flat run warns once;
 *   output_dir: a fresh run refuses a directory with checkpoints, overwrite_output_dir
 *   clears the old run, a second run cannot write a locked directory, a resume with
 *   another configuration names what differs; stale temporary directories of dead
 *   processes go at start-up, and an interrupted replacement of final/ is undone;
 *   the log: SFT's truncation notice once, checkpoint saves with their time, a DPO
 *   warning with the share of pairs dropped for length; DPO's precomputed reference
 *   log-probs reused only by a run of the same configuration. */
#include "base/util.h"
#include "model/model.h"
#include "simd/kernels.h"
#include "train/rundir.h"
#include "train/train.h"
#include "spawn.h"
#include "test.h"
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- spawning hone ---- */

static char *slurp(const char *path) {
    char *text = NULL;
    size_t len;
    return hone_read_file(path, &text, &len, NULL) == 0 ? text : NULL;
}

static int file_has(const char *path, const char *needle) {
    char *text = slurp(path);
    int found = text && strstr(text, needle);
    free(text);
    return found;
}

static int count_lines(const char *path) {
    char *t = slurp(path);
    int n = 0;
    for (char *p = t; p && *p; p++) n += *p == '\n';
    free(t);
    return n;
}

static int exists_in(const char *dir, const char *name) {
    char p[4096];
    hone_path_join(p, sizeof p, dir, name);
    return access(p, F_OK) == 0;
}

/* highest N of dir/checkpoint-N, or -1 */
static int last_checkpoint(const char *dir) {
    DIR *d = opendir(dir);
    int best = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int n;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%d%c", &n, &tail) == 1 && n > best) best = n;
    }
    if (d) closedir(d);
    return best;
}

/* ---- the model, data and configuration of a run ---- */

static char g_root[256]; /* scratch root of this binary: model/, data.jsonl */

/* stories260K converted by `hone convert` once; NULL (and a skip) when impossible */
static const char *setup_root(void) {
    if (!test_hone_bin()) { test_skip("HONE_BIN is not set (make check sets it to the built hone)"); return NULL; }
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return NULL; }
    if (g_root[0]) return g_root;
    const char *r = test_tmpdir("safety");
    char model[512], data[512], log[512];
    snprintf(model, sizeof model, "%s/model", r);
    snprintf(data, sizeof data, "%s/data.jsonl", r);
    snprintf(log, sizeof log, "%s/convert.log", r);
    int rc = test_run_hone(log, 60, "convert", "llama2c", bin, model, "--tokenizer", spm, NULL);
    if (rc != 0) { CHECK(0, "hone convert failed (%d)", rc); return NULL; }
    FILE *f = fopen(data, "w");
    const char *words[] = {"Tom", "Lily", "the dog", "a cat", "Ben", "the sun", "mom"};
    const char *verbs[] = {"saw", "liked", "ran to", "found", "played with"};
    for (int i = 0; i < 96; i++)
        fprintf(f, "{\"text\": \"Once upon a time, %s %s %s. It was a happy day number %d.\"}\n", words[i % 7], verbs[i % 5],
                words[(i / 7) % 7], i);
    fclose(f);
    snprintf(g_root, sizeof g_root, "%s", r);
    return g_root;
}

/* writes dir/run.yaml for an SFT run into dir/out; extra: more YAML lines */
static void write_config(const char *dir, const char *extra, char *yaml, size_t n) {
    snprintf(yaml, n, "%s/run.yaml", dir);
    FILE *f = fopen(yaml, "w");
    fprintf(f,
            "model_name_or_path: %s/model\noutput_dir: %s/out\nlearning_rate: 1.0e-3\nper_device_train_batch_size: 4\n"
            "max_length: 64\nlogging_steps: 1\nseed: 7\nthreads: 1\ngradient_checkpointing: false\n"
            "datasets:\n  - path: %s/data.jsonl\n    format: text\n%s",
            g_root, dir, g_root, extra ? extra : "");
    fclose(f);
}

/* ---- signals ---- */

/* writes dir/run.yaml for a run that would go on for ever and starts `hone sft` on it
 * (log: dir/log), returning once it has logged a step (or after 120 s) */
static pid_t start_long_run(const char *dir, char *yaml, size_t n) {
    char log[600], metrics[700];
    write_config(dir, "max_steps: 1000000\nsave_steps: 1000000\n", yaml, n);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(metrics, sizeof metrics, "%s/out/metrics.jsonl", dir);
    char *argv[] = {(char *)test_hone_bin(), "sft", yaml, NULL};
    pid_t pid = test_spawn(argv, log);
    double t0 = hone_now();
    while (count_lines(metrics) < 1 && hone_now() - t0 < 120) usleep(50000);
    CHECK(count_lines(metrics) >= 1, "no training step logged within 120 s");
    return pid;
}

/* starts a long run, waits for its first logged step, sends sig and expects exit
 * status 128 + sig within 10 s and a checkpoint of the step it stopped at */
static void stop_with(int sig, const char *tag) {
    const char *dir = test_tmpdir(tag);
    char yaml[600], log[600], out[600];
    pid_t pid = start_long_run(dir, yaml, sizeof yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    kill(pid, sig);
    double took;
    int rc = test_wait(pid, 10, &took);
    CHECK(rc == 128 + sig, "%s: exit status %d after %.1f s (-1: still running, killed), want %d", strsignal(sig), rc, took, 128 + sig);
    int ck = last_checkpoint(out);
    CHECK(ck >= 1, "%s: no checkpoint written", strsignal(sig));
    char state[700];
    snprintf(state, sizeof state, "%s/checkpoint-%d/trainer_state.json", out, ck);
    char want[64];
    snprintf(want, sizeof want, "\"global_step\": %d", ck);
    CHECK(file_has(state, want), "%s lacks %s", state, want);
    CHECK(file_has(log, "stopped by"), "the log does not say why it stopped");
    printf("    %s: exit %d after %.2f s, checkpoint-%d\n", strsignal(sig), rc, took, ck);
    hone_remove_tree(dir, NULL);
}

static void test_sigterm_stops_cleanly(void) {
    if (!setup_root()) return;
    stop_with(SIGTERM, "sigterm");
}

static void test_sigint_stops_cleanly(void) {
    if (!setup_root()) return;
    stop_with(SIGINT, "sigint");
}

/* ---- non-finite values ---- */

/* 1 when every weight of the model directory is finite */
static int model_dir_finite(const char *dir) {
    hone_model m;
    hone_error err = {{0}};
    if (model_load(&m, dir, 0, &err) < 0) { CHECK(0, "%s", err.msg); return 0; }
    int ok = 1;
    for (size_t i = 0; i < m.num_floats && ok; i++) ok = isfinite(m.data[i]);
    model_free(&m);
    return ok;
}

/* learning_rate 1e30: the first update throws the weights to ~1e30 and the next
 * forward overflows; the run must stop there, naming the step, and save nothing bad */
static void test_huge_learning_rate_stops(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("nan");
    char yaml[600], log[600], out[600];
    write_config(dir, "max_steps: 8\nsave_steps: 1\nsave_total_limit: 1\n", yaml, sizeof yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    int rc = test_run_hone(log, 120, "sft", yaml, "--set", "learning_rate=1e30", NULL);
    CHECK(rc == 1, "exit status %d, want 1", rc);
    char *txt = slurp(log);
    const char *e = txt ? strstr(txt, "training diverged") : NULL;
    CHECK(e != NULL, "no divergence error in the log:\n%s", txt ? txt : "");
    int step = -1;
    const char *s = txt ? strstr(txt, "hone sft: step ") : NULL;
    CHECK(s && sscanf(s, "hone sft: step %d:", &step) == 1 && step >= 1 && step <= 8, "the error does not name the step:\n%s",
          txt ? txt : "");
    CHECK(!exists_in(out, "final"), "final/ was written for a diverged run");
    int ck = last_checkpoint(out);
    if (ck >= 0) {
        char p[700];
        snprintf(p, sizeof p, "%s/checkpoint-%d", out, ck);
        CHECK(model_dir_finite(p), "%s holds non-finite weights", p);
        CHECK(ck == step - 1, "the newest checkpoint is %d, the failing step %d", ck, step);
    }
    printf("    stopped at step %d, newest checkpoint %d\n", step, ck);
    free(txt);
    hone_remove_tree(dir, NULL);
}

static int load_tiny(hone_model *m) {
    hone_error err = {{0}};
    if (model_load(m, test_src("tests/fixtures/models/tiny-llama"), 0, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    return 0;
}

/* save_total_limit prunes the oldest, never the checkpoint just written, even when
 * higher-numbered ones of another run sit beside it; NaN weights are never saved */
static void test_checkpoint_rotation_and_finite_saves(void) {
    hone_model m;
    if (load_tiny(&m) < 0) return;
    const char *dir = test_tmpdir("rot");
    hone_error err = {{0}};
    hone_trainer t;
    CHECK(trainer_init(&t, &m, dir, NULL, 1e-3, HONE_SCHED_CONSTANT, 0, 100, 0.9, 0.999, 1e-8, 0, 1, &err) == 0, "%s", err.msg);
    t.save_total_limit = 2;
    char p[600];
    for (int n = 39; n <= 40; n++) {
        snprintf(p, sizeof p, "%s/checkpoint-%d", dir, n);
        hone_mkdirs(p, &err);
    }
    t.step = 10;
    CHECK(trainer_save_checkpoint(&t, &err) == 0, "%s", err.msg);
    CHECK(exists_in(dir, "checkpoint-10"), "save_total_limit deleted the checkpoint just written");
    CHECK(!exists_in(dir, "checkpoint-39") && exists_in(dir, "checkpoint-40"), "the oldest other checkpoint should go");
    t.step = 11;
    m.data[5] = NAN;
    CHECK(trainer_save_checkpoint(&t, &err) < 0 && strstr(err.msg, "step 11"), "a NaN weight was saved (%s)", err.msg);
    CHECK(!exists_in(dir, "checkpoint-11") && exists_in(dir, "checkpoint-10"), "a failed save must not prune or write");
    CHECK(trainer_save_final(&t, &err) < 0 && !exists_in(dir, "final"), "final/ written with a NaN weight");
    m.data[5] = 0;
    t.opt.v[7] = INFINITY;
    CHECK(trainer_save_checkpoint(&t, &err) < 0 && strstr(err.msg, "exp_avg_sq"), "an infinite moment was saved (%s)", err.msg);
    trainer_free(&t);
    model_free(&m);
    hone_remove_tree(dir, NULL);
}

/* trainer_step: a NaN loss or an infinite gradient norm fails naming the step and
 * leaves the weights alone; exactly-zero gradients with a flat loss warn once, after
 * TRAINER_FLAT_STEPS steps */
static void test_step_guards(void) {
    hone_model m;
    if (load_tiny(&m) < 0) return;
    hone_error err = {{0}};
    hone_trainer t;
    CHECK(trainer_init(&t, &m, NULL, NULL, 1e-3, HONE_SCHED_CONSTANT, 0, 100, 0.9, 0.999, 1e-8, 0, 1, &err) == 0, "%s", err.msg);
    double gn, lr;
    trainer_zero_grad(&t);
    for (int i = 0; i < TRAINER_FLAT_STEPS; i++) {
        CHECK(t.flat_warned == 0, "warned after %d flat steps", i);
        CHECK(trainer_step(&t, 2.5, &gn, &lr, &err) == 0 && gn == 0, "%s", err.msg);
    }
    CHECK(t.flat_warned == 1 && t.step == TRAINER_FLAT_STEPS, "no warning after %d flat steps", TRAINER_FLAT_STEPS);
    float w0 = m.data[0];
    CHECK(trainer_step(&t, NAN, &gn, &lr, &err) < 0 && strstr(err.msg, "step 11:"), "a NaN loss passed (%s)", err.msg);
    t.grad[3] = INFINITY;
    CHECK(trainer_step(&t, 1.0, &gn, &lr, &err) < 0 && strstr(err.msg, "step 11:") && strstr(err.msg, "gradient norm"),
          "an infinite gradient passed (%s)", err.msg);
    CHECK(t.step == TRAINER_FLAT_STEPS && m.data[0] == w0, "a failed step changed the model");
    trainer_free(&t);
    model_free(&m);
}

/* ---- output_dir ---- */

/* a pid that surely belongs to no process: a child that has exited and been reaped */
static long dead_pid(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return (long)pid;
}

static void make_dir_with(const char *dir, const char *name, const char *file) {
    char p[4096], f[4200];
    hone_path_join(p, sizeof p, dir, name);
    hone_error err;
    hone_mkdirs(p, &err);
    snprintf(f, sizeof f, "%s/%s", p, file);
    hone_write_file(f, "x", 1, &err);
}

/* start-up clean-up: temporaries of dead processes go, a live process's stay, and a
 * final/ whose replacement was interrupted (final missing, final.old-PID there) returns */
static void test_stale_temporaries(void) {
    const char *dir = test_tmpdir("stale");
    long dead = dead_pid(), live = (long)getppid();
    char n[9][128];
    snprintf(n[0], 128, "checkpoint-3.tmp-%ld", dead);
    snprintf(n[1], 128, "checkpoint-5.tmp-%ld", live);
    snprintf(n[2], 128, ".hone-tokenizer-%ld", dead);
    snprintf(n[3], 128, "final.old-%ld", dead);
    snprintf(n[4], 128, "checkpoint-7.old-%ld", dead);
    snprintf(n[5], 128, "final.tmp-%ld", dead);
    for (int i = 0; i < 6; i++) make_dir_with(dir, n[i], i == 3 ? "old-final" : "f");
    make_dir_with(dir, "checkpoint-7", "current");
    int k = rundir_clean_stale(dir);
    CHECK(k == 5, "handled %d entries, want 5", k);
    CHECK(!exists_in(dir, n[0]) && !exists_in(dir, n[2]) && !exists_in(dir, n[4]) && !exists_in(dir, n[5]),
          "a dead process's temporary directory was left");
    CHECK(exists_in(dir, n[1]), "a live process's %s was removed", n[1]);
    CHECK(exists_in(dir, "final/old-final") && !exists_in(dir, n[3]), "final/ was not restored from %s", n[3]);
    CHECK(exists_in(dir, "checkpoint-7/current"), "checkpoint-7 was touched");
    hone_remove_tree(dir, NULL);
}

/* replacing final/ leaves the new model and no temporaries */
static void test_final_replaced(void) {
    hone_model m;
    if (load_tiny(&m) < 0) return;
    const char *dir = test_tmpdir("final");
    hone_error err = {{0}};
    hone_trainer t;
    CHECK(trainer_init(&t, &m, dir, NULL, 1e-3, HONE_SCHED_CONSTANT, 0, 100, 0.9, 0.999, 1e-8, 0, 1, &err) == 0, "%s", err.msg);
    CHECK(trainer_save_final(&t, &err) == 0, "%s", err.msg);
    m.data[0] = 42.0f;
    CHECK(trainer_save_final(&t, &err) == 0, "%s", err.msg);
    char p[600];
    snprintf(p, sizeof p, "%s/final", dir);
    hone_model m2;
    CHECK(model_load(&m2, p, 0, &err) == 0, "%s", err.msg);
    CHECK(m2.data[0] == 42.0f, "final/ holds the old weights");
    model_free(&m2);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) CHECK(!strstr(e->d_name, ".old-") && !strstr(e->d_name, ".tmp-"), "left behind: %s", e->d_name);
    if (d) closedir(d);
    trainer_free(&t);
    model_free(&m);
    hone_remove_tree(dir, NULL);
}

/* rundir_config_diff: the keys a resume may change are skipped, 1 == 1.0, and the
 * differences are named with both values */
static void test_config_diff(void) {
    char diff[256];
    const char *a = "{\"learning_rate\": 0.001, \"seed\": 7, \"threads\": 1, \"max_steps\": 6, \"only_there\": 1}";
    const char *b = "{\"learning_rate\": 0.5, \"seed\": 7.0, \"threads\": 4, \"max_steps\": 6, \"only_here\": 2}";
    CHECK(rundir_config_diff(a, b, diff, sizeof diff) == 1 && !strcmp(diff, "learning_rate: 0.001 there, 0.5 here"), "diff '%s'",
          diff);
    CHECK(rundir_config_diff(a, a, diff, sizeof diff) == 0 && !diff[0], "same text differs: '%s'", diff);
    CHECK(rundir_config_diff("[1]", a, diff, sizeof diff) == -1, "not an object must be -1");
}

/* one output_dir, several runs: a fresh run refuses checkpoints, a resume with another
 * configuration is refused naming the key, the same one continues, and
 * overwrite_output_dir replaces the old run (its later checkpoints, its metrics) */
static void test_output_dir_reuse(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("reuse");
    char yaml[600], log[600], out[600], metrics[700], stale[128];
    write_config(dir, "max_steps: 6\nsave_steps: 2\n", yaml, sizeof yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    snprintf(stale, sizeof stale, "checkpoint-9.tmp-%ld", dead_pid());
    make_dir_with(out, stale, "f");
    int rc = test_run_hone(log, 120, "sft", yaml, NULL);
    CHECK(rc == 0, "first run: exit %d", rc);
    CHECK(!exists_in(out, stale), "the stale %s was not removed at start-up", stale);
    CHECK(exists_in(out, "checkpoint-4") && exists_in(out, "checkpoint-4/hone_config.json") && count_lines(metrics) == 6,
          "first run: checkpoint-4 with its hone_config.json, 6 metrics lines (got %d)", count_lines(metrics));
    rc = test_run_hone(log, 120, "sft", yaml, NULL);
    CHECK(rc == 1 && file_has(log, "overwrite_output_dir") && file_has(log, "checkpoint-4"), "a fresh run over checkpoints: exit %d",
          rc);
    CHECK(count_lines(metrics) == 6 && exists_in(out, "checkpoint-4"), "the refused run changed the directory");
    rc = test_run_hone(log, 120, "sft", yaml, "--set", "resume_from_checkpoint=true", "--set", "learning_rate=0.5", NULL);
    CHECK(rc == 1 && file_has(log, "another configuration") && file_has(log, "learning_rate: "), "resume with another lr: exit %d",
          rc);
    rc = test_run_hone(log, 120, "sft", yaml, "--set", "resume_from_checkpoint=true", "--set", "threads=2", NULL);
    CHECK(rc == 0 && file_has(log, "resumed from") && count_lines(metrics) == 6, "resume: exit %d, %d metrics lines", rc,
          count_lines(metrics));
    rc = test_run_hone(log, 120, "sft", yaml, "--set", "overwrite_output_dir=true", "--set", "max_steps=3", "--set", "save_steps=1",
                  NULL);
    CHECK(rc == 0, "overwrite: exit %d", rc);
    char *m = slurp(metrics);
    CHECK(count_lines(metrics) == 3 && m && !strncmp(m, "{\"step\": 1,", 11), "overwrite: metrics.jsonl is not the new run's:\n%s",
          m ? m : "");
    free(m);
    CHECK(exists_in(out, "checkpoint-2") && !exists_in(out, "checkpoint-4"), "overwrite kept the old run's checkpoint-4");
    hone_remove_tree(dir, NULL);
}

/* a second run on an output_dir in use stops at once, naming the first one's pid */
static void test_output_dir_locked(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("lock");
    char yaml[600], log2[600];
    pid_t first = start_long_run(dir, yaml, sizeof yaml);
    snprintf(log2, sizeof log2, "%s/log2", dir);
    int rc = test_run_hone(log2, 30, "sft", yaml, NULL);
    char want[64];
    snprintf(want, sizeof want, "in use by another hone run (pid %ld", (long)first);
    CHECK(rc == 1 && file_has(log2, want), "second run: exit %d (-1: it ran on), log lacks '%s'", rc, want);
    kill(first, SIGTERM);
    rc = test_wait(first, 20, NULL);
    CHECK(rc == 143, "the first run: exit %d", rc);
    hone_remove_tree(dir, NULL);
}

/* ---- what the log says ---- */

static int count_in(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* SFT: the truncation notice once; each checkpoint save logged with its time, and
 * the progress line whose window holds the save says so */
static void test_sft_log_lines(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("sftlog");
    char yaml[600], log[600];
    write_config(dir, "max_steps: 4\nsave_steps: 2\n", yaml, sizeof yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = test_run_hone(log, 120, "sft", yaml, "--set", "max_length=8", NULL);
    char *txt = slurp(log);
    CHECK(rc == 0, "exit %d", rc);
    CHECK(count_in(txt, "max_length") == 1, "the truncation notice appears %d times, want once:\n%s", count_in(txt, "max_length"),
          txt ? txt : "");
    CHECK(count_in(txt, "checkpoint-2 in ") == 1, "the save of checkpoint-2 is not logged with its time:\n%s", txt ? txt : "");
    const char *l3 = txt ? strstr(txt, "step 3/4") : NULL;
    const char *nl = l3 ? strchr(l3, '\n') : NULL;
    CHECK(l3 && nl && count_in(l3, "incl. checkpoint save") > 0 && strstr(l3, "incl. checkpoint save") < nl,
          "the progress line after the save does not mention it:\n%s", txt ? txt : "");
    free(txt);
    hone_remove_tree(dir, NULL);
}

/* DPO: pairs dropped for length give a warning with their share and the lengths that
 * would keep them; precomputed reference log-probs are reused by a fresh run of the
 * same configuration only, never by one with another */
static void test_dpo_drop_warning_and_ref_cache(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("dpolog");
    char yaml[600], log[600], data[600];
    snprintf(data, sizeof data, "%s/pairs.jsonl", dir);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 10; i++)
        fprintf(f, "{\"prompt\": \"%s\", \"chosen\": \" It was fun.\", \"rejected\": \" zq xv.\"}\n",
                i < 8 ? "Once upon a time there was a little girl named Lily who liked to play in the park with her dog" : "Tom");
    fclose(f);
    snprintf(yaml, sizeof yaml, "%s/dpo.yaml", dir);
    f = fopen(yaml, "w");
    fprintf(f, "model_name_or_path: %s/model\noutput_dir: %s/out\nmax_steps: 1\nmax_length: 12\nper_device_train_batch_size: 2\n"
               "threads: 1\ngradient_checkpointing: false\nprecompute_ref_log_probs: true\ndatasets:\n  - path: %s\n", g_root, dir, data);
    fclose(f);
    snprintf(log, sizeof log, "%s/log", dir);
    int rc = test_run_hone(log, 120, "dpo", yaml, NULL);
    char *txt = slurp(log);
    CHECK(rc == 0, "exit %d:\n%s", rc, txt ? txt : "");
    CHECK(txt && strstr(txt, "warning: dpo: 8 of 10 pairs (80.0%) dropped") && strstr(txt, "would keep them"),
          "no warning with the share dropped:\n%s", txt ? txt : "");
    free(txt);
    rc = test_run_hone(log, 120, "dpo", yaml, NULL);
    CHECK(rc == 0 && file_has(log, "reusing"), "the same configuration: exit %d, reference log-probs not reused", rc);
    rc = test_run_hone(log, 120, "dpo", yaml, "--set", "beta=0.2", NULL);
    CHECK(rc == 0 && !file_has(log, "reusing") && file_has(log, "removed ref_logps_train.safetensors"),
          "another configuration: exit %d, the earlier reference log-probs were reused", rc);
    hone_remove_tree(dir, NULL);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_sigterm_stops_cleanly);
    TEST_RUN(test_sigint_stops_cleanly);
    TEST_RUN(test_huge_learning_rate_stops);
    TEST_RUN(test_checkpoint_rotation_and_finite_saves);
    TEST_RUN(test_step_guards);
    TEST_RUN(test_stale_temporaries);
    TEST_RUN(test_final_replaced);
    TEST_RUN(test_config_diff);
    TEST_RUN(test_output_dir_reuse);
    TEST_RUN(test_output_dir_locked);
    TEST_RUN(test_sft_log_lines);
    TEST_RUN(test_dpo_drop_warning_and_ref_cache);
    if (g_root[0]) hone_remove_tree(g_root, NULL);
    return test_finish();
}
