/* test_trl.c — per-step parity with TRL 1.16 (SFTTrainer and DPOTrainer) on the
 * committed cases of tests/fixtures/trl (tests/reference/sft_ref.py, dpo_ref.py):
 * hone trains the same model on the same pre-tokenized data with the same
 * hyperparameters and every logged metric is compared step by step.
 * Tolerances: loss, grad_norm, logps, entropy, nll_loss relative 1e-4;
 * rewards and logits (small differences of large sums) absolute 1e-5 or
 * relative 1e-4; learning_rate relative 1e-6; accuracies, num_tokens and epoch
 * absolute 1e-6. */
#include "model/convert.h"
#include "train/dpo.h"
#include "simd/kernels.h"
#include "train/sft.h"
#include "test.h"
#include "base/util.h"
#include <jansson.h>

static json_t *load_json(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "tests/fixtures/trl/%s/%s", dir, name);
    json_error_t e;
    json_t *j = json_load_file(test_src(p), 0, &e);
    CHECK(j != NULL, "%s: %s", p, e.text);
    return j;
}
static json_t *load_jsonl(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "tests/fixtures/trl/%s/%s", dir, name);
    FILE *f = fopen(test_src(p), "r");
    json_t *arr = json_array();
    if (!f) { CHECK(0, "%s missing", p); return arr; }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        if (j) json_array_append_new(arr, j);
    }
    free(line);
    fclose(f);
    return arr;
}
static int32_t *ids_of(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *x = malloc(sizeof(int32_t) * (*n + 1));
    for (int i = 0; i < *n; i++) x[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return x;
}
static double num(json_t *o, const char *k, double def) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

static int load_model(hone_model *m, json_t *cfg) {
    hone_error err;
    const char *path = json_string_value(json_object_get(cfg, "model"));
    if (path && strstr(path, "stories260K")) {
        const char *bin = test_shared("models/stories260K/stories260K.bin");
        if (!bin) { test_skip("../shared/models/stories260K is absent"); return -1; }
        if (convert_llama2c_load(m, bin, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
        return 0;
    }
    if (model_load(m, test_src(path), 0, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    return 0;
}

static int sched_of(json_t *cfg) {
    hone_error err;
    return sched_from_name(json_string_value(json_object_get(cfg, "lr_scheduler_type")), &err);
}

/* compares hone's metrics.jsonl with TRL's logged steps */
static void compare_metrics(const char *dir, const char *case_name, json_t *expected) {
    char p[1024];
    hone_path_join(p, sizeof p, dir, "metrics.jsonl");
    FILE *f = fopen(p, "r");
    if (!f) { CHECK(0, "%s: no metrics written", case_name); return; }
    json_t *steps = json_object_get(expected, "steps");
    char *line = NULL;
    size_t cap = 0;
    int matched = 0;
    double worst = 0;
    const char *worst_key = "";
    while (getline(&line, &cap, f) > 0) {
        json_t *got = json_loads(line, 0, NULL);
        if (!got) continue;
        long step = (long)json_integer_value(json_object_get(got, "step"));
        json_t *want = NULL, *e;
        size_t ei;
        json_array_foreach(steps, ei, e) if (json_integer_value(json_object_get(e, "step")) == step) want = e;
        if (!want || !json_object_get(got, "loss")) { json_decref(got); continue; }
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v) {
            if (!strcmp(k, "step") || !json_is_number(v)) continue;
            json_t *gv = json_object_get(got, k);
            CHECK(gv != NULL, "%s step %ld: hone does not log '%s'", case_name, step, k);
            if (!gv) continue;
            double a = json_number_value(gv), b = json_number_value(v), d = fabs(a - b), rel = d / fmax(fabs(b), 1e-30);
            double tol_abs = 0, tol_rel = 1e-4;
            if (!strncmp(k, "rewards/", 8) || !strncmp(k, "logits/", 7)) tol_abs = 1e-5;
            if (!strcmp(k, "learning_rate")) { tol_rel = 1e-6; tol_abs = 1e-12; }
            if (!strcmp(k, "num_tokens") || !strcmp(k, "epoch") || strstr(k, "accurac")) { tol_rel = 0; tol_abs = 1e-6; }
            CHECK(d <= tol_abs + tol_rel * fabs(b), "%s step %ld %s: hone %.9g TRL %.9g", case_name, step, k, a, b);
            if (tol_rel > 0 && tol_abs == 0 && rel > worst) { worst = rel; worst_key = k; }
        }
        matched++;
        json_decref(got);
    }
    free(line);
    fclose(f);
    CHECK(matched == (int)json_array_size(steps), "%s: %d of %zu steps compared", case_name, matched, json_array_size(steps));
    printf("    %s: %d steps, worst relative error %.2e (%s)\n", case_name, matched, worst, worst_key);
}

static void sft_case(const char *name) {
    json_t *cfg = load_json(name, "config.json"), *exp = load_json(name, "expected.json"), *data = load_jsonl(name, "data.jsonl");
    hone_model m;
    if (!cfg || !exp || load_model(&m, cfg) < 0) { json_decref(cfg); json_decref(exp); json_decref(data); return; }
    int n = (int)json_array_size(data), comp_only = json_is_true(json_object_get(cfg, "completion_only_loss"));
    hone_tok_example *ex = calloc(n, sizeof *ex);
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(data, i);
        int nm;
        ex[i].ids = ids_of(json_object_get(r, "input_ids"), &ex[i].n);
        int32_t *cm = ids_of(json_object_get(r, "completion_mask"), &nm);
        ex[i].mask = malloc(ex[i].n + 1);
        for (int j = 0; j < ex[i].n; j++) ex[i].mask[j] = comp_only ? (uint8_t)cm[j] : 1;
        free(cm);
    }
    sft_opts o = {.batch_size = (int)num(cfg, "per_device_train_batch_size", 2), .accum = (int)num(cfg, "gradient_accumulation_steps", 1),
                  .packing = json_is_true(json_object_get(cfg, "packing")), .max_length = (int)num(cfg, "max_length", 1024),
                  .shuffle = 0, .max_steps = (long)num(cfg, "max_steps", 1), .epochs = 1,
                  .logging_steps = (long)num(cfg, "logging_steps", 1), .logging_first_step = json_is_true(json_object_get(cfg, "logging_first_step")),
                  .pad_id = (int)num(cfg, "pad_token_id", 0), .quiet = 1};
    const char *ps = json_string_value(json_object_get(cfg, "packing_strategy"));
    o.packing_strategy = ps && !strcmp(ps, "wrapped") ? SFT_PACK_WRAPPED : ps && !strcmp(ps, "bfd_split") ? SFT_PACK_BFD_SPLIT : SFT_PACK_BFD;
    const char *lt = json_string_value(json_object_get(cfg, "loss_type"));
    o.head_loss.kind = lt && !strcmp(lt, "dft") ? HONE_LOSS_DFT : HONE_LOSS_NLL;
    o.head_loss.label_smoothing = (float)num(cfg, "label_smoothing_factor", 0);
    o.eval_batch_size = o.batch_size;
    const char *dir = test_tmpdir("trl");
    hone_trainer t;
    hone_error err;
    CHECK(trainer_init(&t, &m, dir, NULL, num(cfg, "learning_rate", 1e-3), sched_of(cfg), (long)num(cfg, "warmup_steps_resolved", 0),
                       o.max_steps, num(cfg, "adam_beta1", 0.9), num(cfg, "adam_beta2", 0.999), num(cfg, "adam_epsilon", 1e-8),
                       num(cfg, "weight_decay", 0), num(cfg, "max_grad_norm", 1), &err) == 0, "%s", err.msg);
    CHECK(sft_train(&t, &o, ex, n, NULL, 0, &err) == 0, "%s", err.msg);
    trainer_free(&t);
    compare_metrics(dir, name, exp);
    hone_remove_tree(dir, NULL);
    for (int i = 0; i < n; i++) { free(ex[i].ids); free(ex[i].mask); }
    free(ex);
    model_free(&m);
    json_decref(cfg); json_decref(exp); json_decref(data);
}

static void dpo_case(const char *name) {
    json_t *cfg = load_json(name, "config.json"), *exp = load_json(name, "expected.json"), *data = load_jsonl(name, "data.jsonl");
    hone_model m, ref;
    if (!cfg || !exp || load_model(&m, cfg) < 0) { json_decref(cfg); json_decref(exp); json_decref(data); return; }
    load_model(&ref, cfg);
    hone_error err;
    dpo_opts o;
    memset(&o, 0, sizeof o);
    dpo_loss_opts_default(&o.loss);
    o.loss.beta = num(cfg, "beta", 0.1);
    json_t *lt = json_object_get(cfg, "loss_type"), *lw = json_object_get(cfg, "loss_weights");
    const char *names[16];
    double weights[16];
    int nl = 0;
    if (json_is_string(lt)) names[nl++] = json_string_value(lt);
    else for (size_t i = 0; i < json_array_size(lt) && nl < 16; i++) names[nl++] = json_string_value(json_array_get(lt, i));
    for (int i = 0; i < nl; i++) weights[i] = json_is_array(lw) ? json_number_value(json_array_get(lw, i)) : 1.0;
    CHECK(dpo_loss_opts_set_loss_types(&o.loss, names, nl, weights, &err) == 0, "%s", err.msg);
    o.loss.label_smoothing = num(cfg, "label_smoothing", 0);
    const char *fd = json_string_value(json_object_get(cfg, "f_divergence_type"));
    if (fd) dpo_f_divergence_from_name(fd, &o.loss.f_divergence_type, &err);
    o.loss.f_alpha_divergence_coef = num(cfg, "f_alpha_divergence_coef", 0.5);
    o.loss.discopop_tau = num(cfg, "discopop_tau", 0.05);
    o.loss.use_weighting = json_is_true(json_object_get(cfg, "use_weighting"));
    if (json_is_number(json_object_get(cfg, "ld_alpha"))) { o.loss.ld_alpha_set = 1; o.loss.ld_alpha = num(cfg, "ld_alpha", 0); }
    int ref_free = json_is_true(json_object_get(cfg, "reference_free")), pre = json_is_true(json_object_get(cfg, "precompute_ref_log_probs"));
    o.loss.reference_free = 0;
    o.batch_size = o.eval_batch_size = (int)num(cfg, "per_device_train_batch_size", 2);
    o.accum = (int)num(cfg, "gradient_accumulation_steps", 1);
    o.shared_prompt = 1;
    o.max_steps = (long)num(cfg, "max_steps", 1);
    o.epochs = 1;
    o.logging_steps = 1;
    o.quiet = 1;
    o.sync_ref_model = json_is_true(json_object_get(cfg, "sync_ref_model"));
    o.ref_model_mixup_alpha = num(cfg, "ref_model_mixup_alpha", 0.6);
    o.ref_model_sync_steps = (long)num(cfg, "ref_model_sync_steps", 512);
    CHECK(dpo_loss_opts_validate(&o.loss, &err) == 0, "%s", err.msg);
    /* data with TRL's truncation: prompts >= max_length dropped, rows cut at max_length */
    int n = (int)json_array_size(data), maxlen = (int)num(cfg, "max_length", 1 << 30), k = 0;
    hone_tok_pair *pairs = calloc(n, sizeof *pairs);
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(data, i);
        hone_tok_pair *p = &pairs[k];
        p->prompt = ids_of(json_object_get(r, "prompt_input_ids"), &p->np);
        p->chosen = ids_of(json_object_get(r, "chosen_input_ids"), &p->nc);
        p->rejected = ids_of(json_object_get(r, "rejected_input_ids"), &p->nr);
        if (p->np >= maxlen) { free(p->prompt); free(p->chosen); free(p->rejected); continue; }
        if (p->np + p->nc > maxlen) p->nc = maxlen - p->np;
        if (p->np + p->nr > maxlen) p->nr = maxlen - p->np;
        k++;
    }
    dpo_ref_logps refs = {0};
    if (ref_free) {
        refs.n = k;
        refs.chosen = calloc(k, sizeof(double));
        refs.rejected = calloc(k, sizeof(double));
    } else if (pre) CHECK(dpo_precompute_ref(&ref, &o, pairs, k, &refs, &err) == 0, "%s", err.msg);
    const char *dir = test_tmpdir("trl");
    hone_trainer t;
    CHECK(trainer_init(&t, &m, dir, NULL, num(cfg, "learning_rate", 1e-3), sched_of(cfg), (long)num(cfg, "warmup_steps_resolved", 0),
                       o.max_steps, num(cfg, "adam_beta1", 0.9), num(cfg, "adam_beta2", 0.999), num(cfg, "adam_epsilon", 1e-8),
                       num(cfg, "weight_decay", 0), num(cfg, "max_grad_norm", 1), &err) == 0, "%s", err.msg);
    CHECK(dpo_train(&t, (ref_free || pre) ? NULL : &ref, &o, pairs, k, (ref_free || pre) ? &refs : NULL, NULL, 0, NULL, &err) == 0,
          "%s", err.msg);
    trainer_free(&t);
    compare_metrics(dir, name, exp);
    hone_remove_tree(dir, NULL);
    dpo_ref_logps_free(&refs);
    for (int i = 0; i < k; i++) { free(pairs[i].prompt); free(pairs[i].chosen); free(pairs[i].rejected); }
    free(pairs);
    model_free(&m);
    model_free(&ref);
    json_decref(cfg); json_decref(exp); json_decref(data);
}

static void test_sft_full(void) { sft_case("sft_full"); }
static void test_sft_completion_only(void) { sft_case("sft_completion_only"); }
static void test_sft_packing(void) { sft_case("sft_packing"); }
static void test_sft_packing_completion_only(void) { sft_case("sft_packing_completion_only"); }
static void test_sft_stories260K(void) { sft_case("sft_stories260K"); }
static void test_sft_dft(void) { sft_case("sft_dft"); }
static void test_sft_packing_wrapped(void) { sft_case("sft_packing_wrapped"); }
static void test_sft_packing_bfd_split(void) { sft_case("sft_packing_bfd_split"); }
static void test_sft_packing_groups(void) { sft_case("sft_packing_groups"); }
static void test_sft_label_smoothing(void) { sft_case("sft_label_smoothing"); }
static void test_sft_logging_first_step(void) { sft_case("sft_logging_first_step"); }

static const char *dpo_cases[] = {"dpo_sigmoid", "dpo_hinge", "dpo_ipo", "dpo_exo_pair", "dpo_nca_pair", "dpo_robust",
    "dpo_bco_pair", "dpo_sppo_hard", "dpo_aot", "dpo_aot_unpaired", "dpo_apo_zero", "dpo_apo_down", "dpo_discopop", "dpo_sft",
    "dpo_sigmoid_norm", "dpo_mpo_combo", "dpo_f_forward_kl", "dpo_f_js_divergence", "dpo_f_alpha_divergence", "dpo_ld_alpha",
    "dpo_wpo_weighting", "dpo_precompute_ref", "dpo_reference_free", "dpo_sync_ref", "dpo_stories260K"};

int main(void) {
    kernels_init();
    TEST_RUN(test_sft_full);
    TEST_RUN(test_sft_completion_only);
    TEST_RUN(test_sft_packing);
    TEST_RUN(test_sft_packing_completion_only);
    TEST_RUN(test_sft_stories260K);
    TEST_RUN(test_sft_dft);
    TEST_RUN(test_sft_packing_wrapped);
    TEST_RUN(test_sft_packing_bfd_split);
    TEST_RUN(test_sft_packing_groups);
    TEST_RUN(test_sft_label_smoothing);
    TEST_RUN(test_sft_logging_first_step);
    for (size_t i = 0; i < sizeof dpo_cases / sizeof *dpo_cases; i++) {
        char name[128];
        snprintf(name, sizeof name, "test_%s", dpo_cases[i]);
        test_cur_failed = test_cur_skipped = 0;
        dpo_case(dpo_cases[i]);
        if (test_cur_failed) { test_n_fail++; printf("FAIL %s\n", name); }
        else if (test_cur_skipped) { test_n_skip++; printf("SKIP %s: %s\n", name, test_skip_reason); }
        else { test_n_pass++; printf("PASS %s\n", name); }
    }
    return test_finish();
}
