/* test_manifest.c — output_dir/manifest.json, tested the way the CLI writes it: the built
 * `hone` (HONE_BIN, set by `make check`; the cases skip without it) runs a tiny SFT on
 * stories260K (../shared) converted to a model directory.
 *   the same configuration twice: manifests equal but for times, pid and elapsed time,
 *   final weights bitwise equal, status "completed", exit status 0;
 *   every file hash in the manifest equals sha256sum's (an independent implementation;
 *   the in-memory sha256 of the whole file where sha256sum is missing);
 *   a run stopped by SIGTERM: "running" while it trains, then "stopped", exit status 143;
 *   a run failing on a bad data row: "failed", exit status 1, the error naming the file;
 *   DPO with a reference model elsewhere: its files listed and hashed;
 *   the progress line's H:MM:SS elapsed and ETA in the log. */
#include "base/sha256.h"
#include "base/util.h"
#include "spawn.h"
#include "test.h"
#include <jansson.h>

/* starts hone with args (NULL-terminated; stdout and stderr to log) */
static pid_t start(const char *log, char *const args[]) {
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)test_hone_bin();
    while (args[n - 1] && n < 15) { argv[n] = args[n - 1]; n++; }
    argv[n] = NULL;
    return test_spawn(argv, log);
}

static int finish(pid_t pid, double secs) { return test_wait(pid, secs, NULL); }

static int run(const char *log, double secs, char *const args[]) { return finish(start(log, args), secs); }

static char g_root[256]; /* model/, data.jsonl */

static const char *setup_root(void) {
    if (!test_hone_bin()) { test_skip("HONE_BIN is not set (make check sets it to the built hone)"); return NULL; }
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return NULL; }
    if (g_root[0]) return g_root;
    const char *r = test_tmpdir("manifest");
    char model[512], data[512], log[512];
    snprintf(model, sizeof model, "%s/model", r);
    snprintf(data, sizeof data, "%s/data.jsonl", r);
    snprintf(log, sizeof log, "%s/convert.log", r);
    char *args[] = {"convert", "llama2c", (char *)bin, model, "--tokenizer", (char *)spm, NULL};
    if (run(log, 60, args) != 0) { CHECK(0, "hone convert failed"); return NULL; }
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 64; i++) fprintf(f, "{\"text\": \"Once upon a time, Lily saw %d cats. It was a happy day.\"}\n", i);
    fclose(f);
    snprintf(g_root, sizeof g_root, "%s", r);
    return g_root;
}

/* dir/run.yaml: SFT into dir/out on data (NULL: the shared data.jsonl); extra YAML lines */
static void write_config(const char *dir, const char *data, const char *extra, char *yaml, size_t n) {
    snprintf(yaml, n, "%s/run.yaml", dir);
    FILE *f = fopen(yaml, "w");
    fprintf(f,
            "model_name_or_path: %s/model\noutput_dir: %s/out\nlearning_rate: 1.0e-3\nper_device_train_batch_size: 4\n"
            "max_length: 32\nlogging_steps: 1\nseed: 11\nthreads: 1\ngradient_checkpointing: false\nsave_strategy: \"no\"\n"
            "overwrite_output_dir: true\ndatasets:\n  - path: %s%s\n    format: text\n%s",
            g_root, dir, data ? data : g_root, data ? "" : "/data.jsonl", extra ? extra : "");
    fclose(f);
}

static json_t *load_manifest(const char *dir) {
    char p[600];
    snprintf(p, sizeof p, "%s/out/manifest.json", dir);
    json_error_t je;
    json_t *m = json_load_file(p, 0, &je);
    CHECK(m != NULL, "%s: %s", p, je.text);
    return m;
}

static const char *str_of(json_t *m, const char *key) {
    const char *s = json_string_value(json_object_get(m, key));
    return s ? s : "";
}

/* whether m says status with exit status code (-1: null) */
static int has_status(json_t *m, const char *status, long long code) {
    json_t *c = json_object_get(m, "exit_status");
    return m && !strcmp(str_of(m, "status"), status) && (code < 0 ? json_is_null(c) : json_is_integer(c) && json_integer_value(c) == code);
}

/* sha256 of path: sha256sum's, else hone's over the whole file read at once */
static void reference_sha256(const char *path, char hex[65]) {
    hex[0] = 0;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sha256sum '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fscanf(p, "%64s", hex) != 1) hex[0] = 0;
        pclose(p);
    }
    if (strlen(hex) == 64) return;
    char *text = NULL;
    size_t len = 0;
    if (hone_read_file(path, &text, &len, NULL) < 0) return;
    hone_sha256 s;
    uint8_t d[32];
    sha256_init(&s);
    sha256_update(&s, text, len);
    sha256_final(&s, d);
    sha256_hex(d, hex);
    free(text);
}

static void test_same_config_same_manifest_same_bits(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("manifest-twice");
    char yaml[600], log[600], w1[700], w2[700], cmd[1600];
    write_config(dir, NULL, "max_steps: 3\n", yaml, sizeof yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    char *args[] = {"sft", yaml, NULL};
    int rc = run(log, 120, args);
    CHECK(rc == 0, "first run: exit %d", rc);
    json_t *a = load_manifest(dir);
    snprintf(w1, sizeof w1, "%s/out/final/model.safetensors", dir);
    snprintf(w2, sizeof w2, "%s/first.safetensors", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", w1, w2);
    CHECK(system(cmd) == 0, "%s", cmd);
    rc = run(log, 120, args);
    CHECK(rc == 0, "second run: exit %d", rc);
    json_t *b = load_manifest(dir);
    if (!a || !b) { json_decref(a); json_decref(b); return; }
    CHECK(has_status(a, "completed", 0), "status %s", str_of(a, "status"));
    CHECK(strlen(str_of(a, "end_time")) == 20 && str_of(a, "end_time")[19] == 'Z', "end_time '%s' is not ISO 8601 UTC",
          str_of(a, "end_time"));
    CHECK(strlen(str_of(a, "hone_version")) > 0 && strlen(str_of(a, "source_revision")) > 0, "version or revision missing");
    json_t *mach = json_object_get(a, "machine");
    CHECK(json_integer_value(json_object_get(mach, "threads")) == 1 &&
              strlen(json_string_value(json_object_get(mach, "isa")) ? json_string_value(json_object_get(mach, "isa")) : "") > 0,
          "machine: threads or isa missing");
    CHECK(json_object_size(json_object_get(a, "libraries")) == 6, "not six library versions");
    CHECK(json_integer_value(json_object_get(json_object_get(a, "config"), "seed")) == 11, "config.seed is not 11");
    CHECK(json_integer_value(json_object_get(a, "data_seed")) == 11, "data_seed is not the seed");
    CHECK(strlen(str_of(json_object_get(a, "tokenizer"), "sha256")) == 64, "no tokenizer hash");
    CHECK(strlen(str_of(json_object_get(a, "chat_template"), "sha256")) == 64, "no chat template hash");
    const char *vary[] = {"start_time", "end_time", "elapsed_seconds", "pid"};
    for (int i = 0; i < 4; i++) {
        json_object_del(a, vary[i]);
        json_object_del(b, vary[i]);
    }
    char *ta = json_dumps(a, JSON_SORT_KEYS | JSON_INDENT(1)), *tb = json_dumps(b, JSON_SORT_KEYS | JSON_INDENT(1));
    CHECK(json_equal(a, b), "the manifests of two runs of one configuration differ beyond times and pid:\n%s\n---\n%s", ta, tb);
    free(ta);
    free(tb);
    CHECK(test_files_equal(w1, w2), "equal manifests, but the final weights differ");

    /* every input file: its hash recomputed independently; model and data both listed */
    json_t *files = json_object_get(a, "files");
    size_t i;
    json_t *f;
    int model = 0, data = 0;
    json_array_foreach(files, i, f) {
        const char *path = str_of(f, "path"), *role = str_of(f, "role");
        char want[65];
        reference_sha256(path, want);
        CHECK(!strcmp(want, str_of(f, "sha256")), "%s: manifest %s, sha256sum %s", path, str_of(f, "sha256"), want);
        model += !strcmp(role, "model") && (strstr(path, "model.safetensors") || strstr(path, "config.json"));
        data += !strcmp(role, "data") && strstr(path, "data.jsonl");
    }
    CHECK(model >= 2 && data == 1, "files lack model.safetensors + config.json (%d) or data.jsonl (%d)", model, data);
    json_decref(a);
    json_decref(b);
    hone_remove_tree(dir, NULL);
}

static void test_sigterm_recorded(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("manifest-sigterm");
    char yaml[600], log[600], metrics[700];
    write_config(dir, NULL, "max_steps: 1000000\n", yaml, sizeof yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(metrics, sizeof metrics, "%s/out/metrics.jsonl", dir);
    char *args[] = {"sft", yaml, NULL};
    pid_t pid = start(log, args);
    double t0 = hone_now();
    while (!hone_file_exists(metrics) && hone_now() - t0 < 60) usleep(20000);
    usleep(100000);
    json_t *m = load_manifest(dir);
    CHECK(has_status(m, "running", -1),
          "while training: status '%s'", m ? str_of(m, "status") : "");
    json_decref(m);
    kill(pid, SIGTERM);
    int rc = finish(pid, 30);
    CHECK(rc == 143, "exit status %d, want 143", rc);
    m = load_manifest(dir);
    CHECK(has_status(m, "stopped", 143), "after SIGTERM: status '%s'", m ? str_of(m, "status") : "");
    json_decref(m);
    /* the log is not a terminal: plain lines with elapsed and ETA as H:MM:SS */
    char *text = NULL;
    hone_read_file(log, &text, NULL, NULL);
    CHECK(text && strstr(text, "elapsed 0:00:") && strstr(text, " eta ") && !strchr(text, '\r'),
          "no plain progress line with elapsed H:MM:SS:\n%.2000s", text ? text : "");
    free(text);
    hone_remove_tree(dir, NULL);
}

static void test_failure_recorded(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("manifest-fail");
    char yaml[600], log[600], data[600];
    snprintf(data, sizeof data, "%s/bad.jsonl", dir);
    FILE *f = fopen(data, "w");
    fprintf(f, "{\"text\": \"Once upon a time.\"}\n{\"text\": \"unterminated\n");
    fclose(f);
    write_config(dir, data, "max_steps: 2\n", yaml, sizeof yaml);
    snprintf(log, sizeof log, "%s/log", dir);
    char *args[] = {"sft", yaml, NULL};
    int rc = run(log, 60, args);
    CHECK(rc == 1, "a bad data row: exit %d, want 1", rc);
    json_t *m = load_manifest(dir);
    const char *e = m ? str_of(m, "error") : "";
    CHECK(has_status(m, "failed", 1) && strstr(e, "bad.jsonl") && strstr(e, ":2"),
          "status '%s', error '%s' (want failed, naming bad.jsonl:2)", m ? str_of(m, "status") : "", e);
    /* the data file that failed is still hashed */
    json_t *files = json_object_get(m, "files"), *x;
    size_t i;
    int hashed = 0;
    json_array_foreach(files, i, x) hashed += strstr(str_of(x, "path"), "bad.jsonl") && strlen(str_of(x, "sha256")) == 64;
    CHECK(hashed == 1, "bad.jsonl is not hashed in the manifest");
    json_decref(m);
    hone_remove_tree(dir, NULL);
}

/* DPO with a reference model in another directory: its files are listed and hashed too */
static void test_dpo_reference_hashed(void) {
    if (!setup_root()) return;
    const char *dir = test_tmpdir("manifest-dpo");
    char yaml[600], log[600], data[600], cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -r '%s/model' '%s/ref'", g_root, dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(data, sizeof data, "%s/pairs.jsonl", dir);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 4; i++) fprintf(f, "{\"prompt\": \"Once upon a time\", \"chosen\": \" Lily ran.\", \"rejected\": \" zq %d.\"}\n", i);
    fclose(f);
    snprintf(yaml, sizeof yaml, "%s/dpo.yaml", dir);
    f = fopen(yaml, "w");
    fprintf(f, "model_name_or_path: %s/model\nref_model_name_or_path: %s/ref\noutput_dir: %s/out\nmax_steps: 1\nmax_length: 16\n"
               "per_device_train_batch_size: 2\nthreads: 1\ngradient_checkpointing: false\ndatasets:\n  - path: %s\n",
            g_root, dir, dir, data);
    fclose(f);
    snprintf(log, sizeof log, "%s/log", dir);
    char *args[] = {"dpo", yaml, NULL};
    int rc = run(log, 60, args);
    CHECK(rc == 0, "hone dpo: exit %d", rc);
    json_t *m = load_manifest(dir), *x;
    CHECK(has_status(m, "completed", 0) && !strcmp(str_of(m, "command"), "dpo"), "status '%s'", m ? str_of(m, "status") : "");
    size_t i;
    int ref = 0, pairs = 0;
    json_array_foreach(json_object_get(m, "files"), i, x) {
        char want[65];
        reference_sha256(str_of(x, "path"), want);
        int ok = !strcmp(want, str_of(x, "sha256"));
        ref += ok && !strcmp(str_of(x, "role"), "ref_model") && strstr(str_of(x, "path"), "/ref/model.safetensors") != NULL;
        pairs += ok && !strcmp(str_of(x, "role"), "data") && strstr(str_of(x, "path"), "pairs.jsonl") != NULL;
    }
    CHECK(ref == 1 && pairs == 1, "the reference's model.safetensors (%d) or pairs.jsonl (%d) is not hashed correctly", ref, pairs);
    json_decref(m);
    hone_remove_tree(dir, NULL);
}

int main(void) {
    TEST_RUN(test_same_config_same_manifest_same_bits);
    TEST_RUN(test_sigterm_recorded);
    TEST_RUN(test_failure_recorded);
    TEST_RUN(test_dpo_reference_hashed);
    if (g_root[0]) hone_remove_tree(g_root, NULL);
    return test_finish();
}
