/* test_lora_e2e.c — the LoRA pipeline end to end through the built `hone` (HONE_BIN), on
 * stories260K (skipped without ../shared or HONE_BIN):
 *   1. `hone sft` with use_peft (lora_dropout 0.1, gradient checkpointing): final/ and the
 *      checkpoint are PEFT adapter directories; the same run at 1 and 2 threads writes the
 *      same adapter bytes (dropout masks and reductions independent of threads);
 *   2. `hone merge` of the SFT adapter: a HF model directory;
 *   3. `hone dpo` on the merged model with a fresh LoRA and no ref_model: the reference is the
 *      policy with its adapters off; on held-out pairs (eval split, evaluated at start and
 *      every 6 steps) rewards/margins rise from 0 and the final preference accuracy is >= 0.75;
 *   4. `hone eval` and `hone generate` take the DPO adapter directory;
 *   5. an adapter directory as model_name_or_path: DPO from the SFT adapter with fresh adapters
 *      (merged first; precomputed adapters-off reference) names the SFT adapter as its base and
 *      `hone merge` resolves that chain; SFT without use_peft trains the loaded adapter on;
 *   6. bad LoRA settings stop with an error naming the key;
 *   7. the QLoRA pipeline (test_qlora_pipeline): SFT on an NF4-held base, merge, DPO on the
 *      merged model held in nested NF4 with the adapters-off reference. */
#include "base/util.h"
#include "simd/kernels.h"
#include "spawn.h"
#include "test.h"
#include <jansson.h>

static char g_root[256];

static char *slurp(const char *path) {
    char *text = NULL;
    size_t len;
    return hone_read_file(path, &text, &len, NULL) == 0 ? text : NULL;
}

/* stories260K converted, the data written; NULL (and a skip) when impossible */
static const char *setup(void) {
    if (!test_hone_bin()) { test_skip("HONE_BIN is not set (make check sets it to the built hone)"); return NULL; }
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return NULL; }
    if (g_root[0]) return g_root;
    const char *r = test_tmpdir("lora-e2e");
    if (test_convert_stories(r, bin, spm) < 0) { CHECK(0, "hone convert failed"); return NULL; }
    test_story_data(r, 64, 60, 48); /* pairs 48.. are held out (another verb, other name/thing pairs) */
    snprintf(g_root, sizeof g_root, "%s", r);
    return g_root;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void sft_yaml(const char *path, const char *out, int threads) {
    char y[2048];
    snprintf(y, sizeof y,
             "model_name_or_path: %s/model\noutput_dir: %s\nuse_peft: true\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.1\n"
             "lora_target_modules: [q_proj, v_proj, o_proj, down_proj]\nlearning_rate: 5.0e-3\nmax_steps: 8\nsave_steps: 4\n"
             "per_device_train_batch_size: 8\nmax_length: 48\nlogging_steps: 4\nthreads: %d\nseed: 5\n"
             "gradient_checkpointing: true\ndatasets:\n  - path: %s/sft.jsonl\n",
             g_root, out, threads, g_root);
    write_file(path, y);
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (hone_read_file(a, &x, &nx, NULL) < 0) return 0;
    if (hone_read_file(b, &y, &ny, NULL) < 0) { free(x); return 0; }
    int same = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* the eval rewards/margins of a DPO run's metrics.jsonl: the first, the last and the last
 * preference accuracy; returns how many evaluations were logged */
static int eval_margins(const char *dout, double *first, double *last, double *acc) {
    char p[700];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dout);
    FILE *f = fopen(p, "r");
    int nev = 0;
    char *line = NULL;
    size_t cap = 0;
    *first = *last = *acc = NAN;
    while (f && getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *m = j ? json_object_get(j, "eval_rewards/margins") : NULL;
        if (m) {
            if (!nev++) *first = json_number_value(m);
            *last = json_number_value(m);
            *acc = json_number_value(json_object_get(j, "eval_rewards/accuracies"));
        }
        json_decref(j);
    }
    free(line);
    if (f) fclose(f);
    return nev;
}

static void test_pipeline(void) {
    if (!setup()) return;
    char y1[600], y2[600], o1[600], o2[600], log[600], p[700], q[700];
    snprintf(y1, sizeof y1, "%s/sft1.yaml", g_root);
    snprintf(y2, sizeof y2, "%s/sft2.yaml", g_root);
    snprintf(o1, sizeof o1, "%s/sft-1", g_root);
    snprintf(o2, sizeof o2, "%s/sft-2", g_root);
    snprintf(log, sizeof log, "%s/log", g_root);
    sft_yaml(y1, o1, 1);
    sft_yaml(y2, o2, 2);
    int rc = test_run_hone(log, 180, "sft", y1, NULL);
    char *txt = slurp(log);
    CHECK(rc == 0, "hone sft (1 thread): exit %d\n%s", rc, txt ? txt : "");
    CHECK(txt && strstr(txt, "lora: r 8"), "no LoRA line in the log");
    free(txt);
    CHECK(test_run_hone(log, 180, "sft", y2, NULL) == 0, "hone sft (2 threads) failed");
    const char *files[] = {"final/adapter_config.json", "final/adapter_model.safetensors", "final/tokenizer.json",
                           "checkpoint-4/adapter_model.safetensors", "checkpoint-4/optimizer.safetensors"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", o1, files[i]);
        CHECK(hone_file_exists(p), "%s missing", p);
    }
    snprintf(p, sizeof p, "%s/final/model.safetensors", o1);
    CHECK(!hone_file_exists(p), "final/ holds a whole model, not an adapter");
    snprintf(p, sizeof p, "%s/final/adapter_model.safetensors", o1);
    snprintf(q, sizeof q, "%s/final/adapter_model.safetensors", o2);
    CHECK(same_file(p, q), "the adapter trained at 1 thread differs from the one at 2 threads");
    /* merge */
    char merged[600], fin[700];
    snprintf(merged, sizeof merged, "%s/sft-merged", g_root);
    snprintf(fin, sizeof fin, "%s/final", o1);
    CHECK(test_run_hone(log, 60, "merge", fin, merged, NULL) == 0, "hone merge failed");
    snprintf(p, sizeof p, "%s/model.safetensors", merged);
    CHECK(hone_file_exists(p), "merge wrote no model.safetensors");
    /* DPO with a fresh LoRA, adapters-off reference, held-out pairs */
    char dy[600], dout[600], y[2048];
    snprintf(dy, sizeof dy, "%s/dpo.yaml", g_root);
    snprintf(dout, sizeof dout, "%s/dpo", g_root);
    snprintf(y, sizeof y,
             "model_name_or_path: %s\noutput_dir: %s\npeft:\n  r: 8\n  lora_alpha: 16\n  lora_dropout: 0.0\n  target_modules: all-linear\n"
             "  task_type: CAUSAL_LM\nlearning_rate: 2.0e-3\nbeta: 0.1\nmax_steps: 12\nper_device_train_batch_size: 8\n"
             "per_device_eval_batch_size: 12\nmax_length: 48\nlogging_steps: 4\neval_strategy: steps\neval_steps: 6\n"
             "eval_on_start: true\nthreads: 2\ntest_size: 0.2\ntrain_sampling_strategy: sequential\n"
             "datasets:\n  - path: %s/dpo.jsonl\n",
             merged, dout, g_root);
    write_file(dy, y);
    rc = test_run_hone(log, 180, "dpo", dy, NULL);
    txt = slurp(log);
    CHECK(rc == 0, "hone dpo: exit %d\n%s", rc, txt ? txt : "");
    CHECK(txt && strstr(txt, "reference policy with adapters off"), "the reference is not the adapters-off policy:\n%s", txt ? txt : "");
    free(txt);
    double first, last, acc;
    int nev = eval_margins(dout, &first, &last, &acc);
    CHECK(nev == 3, "%d evaluations logged, want 3 (start, 6, 12)", nev);
    CHECK(first == 0 && last > 0.05 && acc >= 0.75, "held-out rewards/margins %g -> %g, accuracy %g", first, last, acc);
    printf("    held-out pairs: rewards/margins %.4f -> %.4f, accuracy %.2f\n", first, last, acc);
    /* the adapter directory where a model is expected */
    char dfin[700];
    snprintf(dfin, sizeof dfin, "%s/final", dout);
    snprintf(p, sizeof p, "%s/dpo.jsonl", g_root);
    CHECK(test_run_hone(log, 60, "eval", dfin, "--pairs", p, "--ref", merged, "--json", NULL) == 0, "hone eval on the adapter dir failed");
    txt = slurp(log);
    CHECK(txt && strstr(txt, "\"preference_accuracy\""), "hone eval printed no summary:\n%s", txt ? txt : "");
    free(txt);
    CHECK(test_run_hone(log, 60, "generate", dfin, "--prompt", "Tom found a red ball.", "--max-new-tokens", "8", "--temperature", "0", NULL) == 0,
          "hone generate on the adapter dir failed");
}

/* The second reference pipeline (QLoRA): SFT with the base held in NF4 (load_in_4bit, LoRA on
 * q_proj, v_proj, gradient checkpointing) at 1 and 2 threads (same adapter bytes), `hone merge`
 * (the base loaded in fp32), DPO with a fresh LoRA on the merged model loaded in 4 bits (nested
 * absmax) with the adapters-off reference: held-out rewards/margins rise from 0. */
static void test_qlora_pipeline(void) {
    if (!setup()) return;
    char y[600], out[600], out2[600], log[600], text[2048], p[700], q[700];
    snprintf(log, sizeof log, "%s/qlog", g_root);
    for (int th = 1; th <= 2; th++) {
        snprintf(y, sizeof y, "%s/qsft%d.yaml", g_root, th);
        snprintf(out, sizeof out, "%s/qsft-%d", g_root, th);
        snprintf(text, sizeof text,
                 "model_name_or_path: %s/model\noutput_dir: %s\nuse_peft: true\nload_in_4bit: true\nbnb_4bit_quant_type: nf4\n"
                 "bnb_4bit_compute_dtype: float32\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.05\n"
                 "lora_target_modules: [q_proj, v_proj]\nlearning_rate: 5.0e-3\nmax_steps: 8\nsave_steps: 8\n"
                 "per_device_train_batch_size: 8\nmax_length: 48\nlogging_steps: 4\nthreads: %d\nseed: 5\n"
                 "gradient_checkpointing: true\ndatasets:\n  - path: %s/sft.jsonl\n", g_root, out, th, g_root);
        write_file(y, text);
        int rc = test_run_hone(log, 180, "sft", y, NULL);
        char *txt = slurp(log);
        CHECK(rc == 0, "QLoRA sft (%d threads): exit %d\n%s", th, rc, txt ? txt : "");
        CHECK(txt && strstr(txt, "held as nf4"), "the log does not say the base is held in NF4:\n%s", txt ? txt : "");
        free(txt);
    }
    snprintf(out, sizeof out, "%s/qsft-1", g_root);
    snprintf(out2, sizeof out2, "%s/qsft-2", g_root);
    snprintf(p, sizeof p, "%s/final/adapter_model.safetensors", out);
    snprintf(q, sizeof q, "%s/final/adapter_model.safetensors", out2);
    CHECK(same_file(p, q), "the QLoRA adapter trained at 1 thread differs from the one at 2 threads");
    char merged[600], fin[700];
    snprintf(merged, sizeof merged, "%s/qsft-merged", g_root);
    snprintf(fin, sizeof fin, "%s/final", out);
    CHECK(test_run_hone(log, 60, "merge", fin, merged, NULL) == 0, "hone merge of the QLoRA adapter failed");
    char dout[600];
    snprintf(y, sizeof y, "%s/qdpo.yaml", g_root);
    snprintf(dout, sizeof dout, "%s/qdpo", g_root);
    snprintf(text, sizeof text,
             "model_name_or_path: %s\noutput_dir: %s\nuse_peft: true\nload_in_4bit: true\nuse_bnb_nested_quant: true\n"
             "lora_r: 8\nlora_alpha: 16\nlora_dropout: 0.0\nlora_target_modules: [q_proj, v_proj]\n"
             "learning_rate: 4.0e-3\nbeta: 0.1\nmax_steps: 12\nper_device_train_batch_size: 8\n"
             "per_device_eval_batch_size: 12\nmax_length: 48\nlogging_steps: 4\neval_strategy: steps\neval_steps: 6\n"
             "eval_on_start: true\nthreads: 2\ntest_size: 0.2\ntrain_sampling_strategy: sequential\n"
             "datasets:\n  - path: %s/dpo.jsonl\n", merged, dout, g_root);
    write_file(y, text);
    int rc = test_run_hone(log, 180, "dpo", y, NULL);
    char *txt = slurp(log);
    CHECK(rc == 0, "QLoRA dpo: exit %d\n%s", rc, txt ? txt : "");
    CHECK(txt && strstr(txt, "reference policy with adapters off") && strstr(txt, "held as nf4 (nested absmax)"),
          "not a nested-NF4 base with the adapters-off reference:\n%s", txt ? txt : "");
    free(txt);
    double first, last, acc;
    int nev = eval_margins(dout, &first, &last, &acc);
    CHECK(nev == 3, "%d evaluations logged, want 3 (start, 6, 12)", nev);
    CHECK(first == 0 && last > 0.02 && acc >= 0.75, "held-out rewards/margins %g -> %g, accuracy %g", first, last, acc);
    printf("    QLoRA held-out pairs: rewards/margins %.4f -> %.4f, accuracy %.2f\n", first, last, acc);
}

/* an adapter directory as model_name_or_path (after test_pipeline: sft-1/final exists) */
static void test_adapter_as_model(void) {
    if (!setup()) return;
    char sft[600], y[600], out[600], log[600], text[2048], p[700];
    snprintf(sft, sizeof sft, "%s/sft-1/final", g_root);
    if (!hone_is_dir(sft)) { test_skip("test_pipeline did not leave sft-1/final"); return; }
    snprintf(y, sizeof y, "%s/dpo2.yaml", g_root);
    snprintf(out, sizeof out, "%s/dpo2", g_root);
    snprintf(log, sizeof log, "%s/log2", g_root);
    snprintf(text, sizeof text,
             "model_name_or_path: %s\noutput_dir: %s\nuse_peft: true\nlora_r: 4\nlora_dropout: 0.0\nlearning_rate: 2.0e-3\n"
             "max_steps: 2\nper_device_train_batch_size: 8\nmax_length: 48\nprecompute_ref_log_probs: true\nthreads: 2\n"
             "datasets:\n  - path: %s/dpo.jsonl\n", sft, out, g_root);
    write_file(y, text);
    int rc = test_run_hone(log, 120, "dpo", y, NULL);
    char *txt = slurp(log);
    CHECK(rc == 0, "dpo from an adapter dir: exit %d\n%s", rc, txt ? txt : "");
    free(txt);
    snprintf(p, sizeof p, "%s/final/adapter_config.json", out);
    txt = slurp(p);
    CHECK(txt && strstr(txt, "sft-1/final"), "the DPO adapter does not name the SFT adapter as its base:\n%s", txt ? txt : "");
    free(txt);
    char fin[700], merged[700];
    snprintf(fin, sizeof fin, "%s/final", out);
    snprintf(merged, sizeof merged, "%s/dpo2-merged", g_root);
    CHECK(test_run_hone(log, 60, "merge", fin, merged, NULL) == 0, "hone merge of an adapter on an adapter failed");
    /* SFT on the adapter itself (no use_peft): the same adapter configuration trains on */
    snprintf(y, sizeof y, "%s/sft3.yaml", g_root);
    snprintf(out, sizeof out, "%s/sft3", g_root);
    snprintf(text, sizeof text, "model_name_or_path: %s\noutput_dir: %s\nlearning_rate: 1.0e-3\nmax_steps: 2\n"
             "per_device_train_batch_size: 8\nmax_length: 48\nthreads: 2\ndatasets:\n  - path: %s/sft.jsonl\n", sft, out, g_root);
    write_file(y, text);
    rc = test_run_hone(log, 120, "sft", y, NULL);
    txt = slurp(log);
    CHECK(rc == 0 && txt && strstr(txt, "lora: r 8"), "sft on an adapter dir: exit %d\n%s", rc, txt ? txt : "");
    free(txt);
    snprintf(p, sizeof p, "%s/final/adapter_model.safetensors", out);
    CHECK(hone_file_exists(p), "sft on an adapter dir wrote no adapter");
}

/* bad LoRA settings: a clear error naming the key, non-zero exit */
static void bad(const char *extra, const char *want) {
    char y[600], log[600], text[2048];
    snprintf(y, sizeof y, "%s/bad.yaml", g_root);
    snprintf(log, sizeof log, "%s/badlog", g_root);
    snprintf(text, sizeof text, "model_name_or_path: %s/model\noutput_dir: %s/bad\nmax_steps: 1\nthreads: 1\n"
             "datasets:\n  - path: %s/sft.jsonl\n%s", g_root, g_root, g_root, extra);
    write_file(y, text);
    int rc = test_run_hone(log, 60, "sft", y, NULL);
    char *txt = slurp(log);
    CHECK(rc != 0 && txt && strstr(txt, want), "'%s': exit %d, output lacks '%s':\n%s", extra, rc, want, txt ? txt : "");
    free(txt);
}
static void test_bad_settings(void) {
    if (!setup()) return;
    bad("use_peft: true\nlora_target_modules: [c_attn]\n", "lora_target_modules");
    bad("use_peft: true\nuse_dora: true\n", "use_dora");
    bad("peft:\n  peft_type: IA3\n", "peft.peft_type");
    bad("use_peft: true\nlora_bias: all\n", "lora_bias");
    bad("use_peft: true\ninit_lora_weights: pissa\n", "init_lora_weights");
    bad("load_in_4bit: true\n", "load_in_4bit");
    bad("use_peft: true\nload_in_4bit: true\nbnb_4bit_quant_type: int4\n", "bnb_4bit_quant_type");
    bad("use_peft: true\nload_in_4bit: true\nload_in_8bit: true\n", "load_in_8bit");
    bad("use_peft: true\nbase_dtype: float16\n", "base_dtype");
}

int main(void) {
    kernels_init();
    TEST_RUN(test_pipeline);
    TEST_RUN(test_adapter_as_model);
    TEST_RUN(test_qlora_pipeline);
    TEST_RUN(test_bad_settings);
    if (g_root[0]) hone_remove_tree(g_root, NULL);
    return test_finish();
}
