/* test_ref_cache.c — precomputed DPO reference log-probs are keyed on what determines them
 * (issue 12, defect 7): between two `hone dpo` runs in one output_dir, change the reference
 * model, the data or max_length; the second run must recompute, so its step-1 sigmoid loss
 * with policy == reference is ln 2 (tolerance 1e-6; a stale cache gives another value), and an
 * unchanged run reuses the file. Runs cmd_dpo in process on stories260K (skipped without ../shared). */
#include "base/util.h"
#include "cli/commands.h"
#include "model/convert.h"
#include "simd/kernels.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>

static char root[512];

/* stories260K as an HF directory at root/name, its weights scaled by `scale` */
static int write_model(const char *name, float scale) {
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    hone_error err = {{0}};
    hone_model m;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    if (convert_llama2c_load(&m, bin, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    for (size_t i = 0; i < m.num_floats; i++) m.data[i] *= scale;
    int rc = model_save(&m, dir, NULL, &err) < 0 || spm_convert(spm, dir, &err) < 0 ? -1 : 0;
    CHECK(rc == 0, "%s", err.msg);
    model_free(&m);
    return rc;
}

static void write_data(const char *name, const char *const *pairs, int n) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", root, name);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", pairs[3 * i], pairs[3 * i + 1], pairs[3 * i + 2]);
    fclose(f);
}

/* one `hone dpo` step in root/out; returns its step-1 loss (NaN on failure) */
static double dpo_step1(const char *model, const char *data, int max_length) {
    char yaml[700], out[600], p[700];
    snprintf(yaml, sizeof yaml, "%s/dpo.yaml", root);
    snprintf(out, sizeof out, "%s/out", root);
    FILE *f = fopen(yaml, "w");
    fprintf(f, "model_name_or_path: %s/%s\nref_model_name_or_path: %s/%s\noutput_dir: %s\ndatasets:\n  - path: %s/%s\n"
               "precompute_ref_log_probs: true\nmax_length: %d\nmax_steps: 1\nper_device_train_batch_size: 2\n"
               "per_device_eval_batch_size: 2\nlogging_steps: 1\nsave_strategy: \"no\"\nlearning_rate: 1.0e-4\nseed: 1\n",
            root, model, root, model, out, root, data, max_length);
    fclose(f);
    char *argv[] = {"dpo", yaml, NULL};
    if (cmd_dpo(2, argv) != 0) { CHECK(0, "hone dpo failed (%s, %s, max_length %d)", model, data, max_length); return NAN; }
    snprintf(p, sizeof p, "%s/metrics.jsonl", out);
    json_t *j = json_load_file(p, JSON_DISABLE_EOF_CHECK, NULL);
    double loss = json_number_value(json_object_get(j, "loss"));
    json_decref(j);
    remove(p); /* the next run starts its own metrics */
    return j ? loss : NAN;
}

static ino_t cache_inode(void) {
    char p[700];
    struct stat st;
    snprintf(p, sizeof p, "%s/out/ref_logps_train.safetensors", root);
    return stat(p, &st) == 0 ? st.st_ino : 0;
}

static const char *const pairs1[] = {
    "Lily had a red ball.", " She threw it to her dog.", " Blue sky cat.",
    "Tom saw a big tree.", " He wanted to climb it.", " Fish the of.",
    "The cat was hungry.", " It ate some fish.", " Park went big.",
    "Sara found a shiny stone.", " She put it in her pocket.", " Tree happy ran.",
};
static const char *const pairs2[] = {
    "The sun was hot.", " Ben went to swim in the lake.", " Doll the sang.",
    "Mia had a little doll.", " She loved it very much.", " Lake hot dog.",
    "The bird sang a song.", " Everyone was happy.", " Stone pocket blue.",
    "Max lost his toy car.", " His mom helped him find it.", " Song a ball.",
};

static void check_ln2(double loss, const char *what) {
    CHECK(fabs(loss - log(2.0)) <= 1e-6, "%s: step-1 loss %.9g, a fresh run's is ln 2 = 0.693147181 (stale reference log-probs?)", what,
          loss);
    printf("    %s: step-1 loss %.9f\n", what, loss);
}

static void test_stale_cache_is_recomputed(void) {
    if (!test_shared("models/stories260K/stories260K.bin") || !test_shared("models/stories260K/tok512.model")) {
        test_skip("../shared/models/stories260K is absent");
        return;
    }
    snprintf(root, sizeof root, "%s", test_tmpdir("refcache"));
    if (write_model("a", 1.0f) < 0 || write_model("b", 0.8f) < 0) return;
    write_data("d1.jsonl", pairs1, 4);
    write_data("d2.jsonl", pairs2, 4);
    check_ln2(dpo_step1("a", "d1.jsonl", 64), "first run (model a, data 1, max_length 64)");
    ino_t ino = cache_inode();
    check_ln2(dpo_step1("a", "d1.jsonl", 64), "same run again");
    CHECK(ino != 0 && cache_inode() == ino, "an unchanged run did not reuse ref_logps_train.safetensors");
    check_ln2(dpo_step1("b", "d1.jsonl", 64), "reference (and policy) model b");
    check_ln2(dpo_step1("b", "d2.jsonl", 64), "other data, same pair count");
    check_ln2(dpo_step1("b", "d2.jsonl", 16), "max_length 16");
    hone_remove_tree(root, NULL);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_stale_cache_is_recomputed);
    return test_finish();
}
