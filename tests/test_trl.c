/* test_trl.c — per-step parity with TRL 1.16 (SFTTrainer and DPOTrainer) on the
 * committed cases of tests/fixtures/trl (tests/reference/sft_ref.py, dpo_ref.py):
 * hone trains the same model on the same pre-tokenized data with the same
 * hyperparameters and every logged metric is compared step by step.
 * Tolerances: loss, grad_norm, logps, entropy, nll_loss relative 1e-4;
 * rewards and logits (small differences of large sums) absolute 1e-5 or
 * relative 1e-4; learning_rate relative 1e-6; accuracies, num_tokens and epoch
 * absolute 1e-6.
 * bf16 cases (TRL bf16=True, CPU autocast; hone bf16: true on backend_cpu_bf16): the two
 * round in different places (hone keeps attention, RoPE and the activations between
 * products in fp32), so values agree to bf16 precision, not bitwise: loss, logps,
 * entropy relative BF16_TOL_REL; grad_norm relative BF16_TOL_GRAD; rewards and logits
 * absolute BF16_TOL_ABS or relative BF16_TOL_REL; accuracies absolute BF16_TOL_ACC. */
#define BF16_TOL_REL 1e-2
#define BF16_TOL_GRAD 5e-2
#define BF16_TOL_ABS 1e-2
#define BF16_TOL_ACC 0.05
#include "model/convert.h"
#include "model/lora.h"
#include "model/safetensors.h"
#include "train/dpo.h"
#include "simd/kernels.h"
#include "train/pipeline.h"
#include "train/sft.h"
#include "test.h"
#include "simd/quant.h"
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

/* bf16 cases (config "bf16": true, TRL's autocast): the model runs on backend_cpu_bf16 and the
 * metrics are compared at the looser tolerances of the file comment */
static int case_bf16;

static int load_model_file(hone_model *m, json_t *cfg);
static int load_model(hone_model *m, json_t *cfg) {
    int rc = load_model_file(m, cfg);
    case_bf16 = json_is_true(json_object_get(cfg, "bf16"));
    if (rc == 0 && case_bf16) {
        char why[256];
        kernels_select_bf16(&hone_kt, why, sizeof why);
        m->be = backend_cpu_bf16();
        printf("    bf16: %s\n", why);
    }
    return rc;
}
static int load_model_file(hone_model *m, json_t *cfg) {
    hone_error err;
    const char *path = json_string_value(json_object_get(cfg, "model"));
    if (path && strstr(path, "stories260K")) {
        const char *bin = test_shared("models/stories260K/stories260K.bin");
        if (!bin) { test_skip("../shared/models/stories260K is absent"); return -1; }
        if (convert_llama2c_load(m, bin, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
        return 0;
    }
    /* QLoRA cases (config "quant", BitsAndBytesConfig's arguments): the base held as bitsandbytes does */
    json_t *q = json_object_get(cfg, "quant");
    int held = 0;
    if (json_is_true(json_object_get(q, "load_in_4bit")))
        held = !strcmp(json_string_value(json_object_get(q, "bnb_4bit_quant_type")), "fp4") ? HONE_Q_FP4 : HONE_Q_NF4;
    int nested = json_is_true(json_object_get(q, "bnb_4bit_use_double_quant"));
    if (model_load_held(m, test_src(path), 0, held, nested, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    return 0;
}

/* LoRA cases (config "lora_adapter"): PEFT's initial adapter, exported by the reference script,
 * attached to the loaded model; only the adapters train */
static hone_lora case_lora;
static int case_has_lora;
static int load_model_case(hone_model *m, json_t *cfg, const char *name) {
    if (load_model(m, cfg) < 0) return -1;
    case_has_lora = 0;
    const char *ad = json_string_value(json_object_get(cfg, "lora_adapter"));
    if (!ad) return 0;
    char p[1024];
    hone_error err;
    snprintf(p, sizeof p, "tests/fixtures/trl/%s/%s", name, ad);
    if (lora_load(&case_lora, m, test_src(p), &err) < 0) { CHECK(0, "%s", err.msg); model_free(m); return -1; }
    lora_attach(m, &case_lora);
    case_has_lora = 1;
    return 0;
}
static void free_model_case(hone_model *m) {
    if (case_has_lora) lora_free(&case_lora);
    case_has_lora = 0;
    model_free(m);
}

static int sched_of(json_t *cfg) {
    hone_error err;
    return sched_from_name(json_string_value(json_object_get(cfg, "lr_scheduler_type")), &err);
}

/* the tolerance of one metric (the file comment) */
static void tolerance(const char *k, double *tol_abs, double *tol_rel) {
    *tol_abs = 0, *tol_rel = 1e-4;
    if (!strncmp(k, "eval_", 5)) k += 5;
    if (case_bf16) {
        *tol_rel = BF16_TOL_REL;
        if (!strncmp(k, "rewards/", 8) || !strncmp(k, "logits/", 7)) *tol_abs = BF16_TOL_ABS;
        if (!strcmp(k, "grad_norm")) *tol_rel = BF16_TOL_GRAD;
        if (!strcmp(k, "learning_rate")) { *tol_rel = 1e-6; *tol_abs = 1e-12; }
        if (!strcmp(k, "num_tokens") || !strcmp(k, "epoch")) { *tol_rel = 0; *tol_abs = 1e-6; }
        if (strstr(k, "accurac")) *tol_rel = 0, *tol_abs = BF16_TOL_ACC;
        return;
    }
    if (!strncmp(k, "rewards/", 8) || !strncmp(k, "logits/", 7)) *tol_abs = 1e-5;
    if (!strcmp(k, "learning_rate")) { *tol_rel = 1e-6; *tol_abs = 1e-12; }
    if (!strcmp(k, "num_tokens") || !strcmp(k, "epoch") || strstr(k, "accurac")) { *tol_rel = 0; *tol_abs = 1e-6; }
}

/* compares hone's metrics.jsonl with TRL's logged steps and, when the case has
 * them, its evaluations (eval_loss and every eval_ metric hone computes; TRL's
 * eval_num_tokens and epoch are bookkeeping hone's eval lines do not repeat) */
static void compare_metrics(const char *dir, const char *case_name, json_t *expected) {
    char p[1024];
    hone_path_join(p, sizeof p, dir, "metrics.jsonl");
    FILE *f = fopen(p, "r");
    if (!f) { CHECK(0, "%s: no metrics written", case_name); return; }
    json_t *steps = json_object_get(expected, "steps"), *evals = json_object_get(expected, "eval");
    char *line = NULL;
    size_t cap = 0;
    int matched = 0, matched_eval = 0;
    double worst = 0, worst_loss = 0;
    const char *worst_key = "";
    while (getline(&line, &cap, f) > 0) {
        json_t *got = json_loads(line, 0, NULL);
        if (!got) continue;
        long step = (long)json_integer_value(json_object_get(got, "step"));
        json_t *want = NULL;
        int is_eval = json_object_get(got, "eval_loss") != NULL;
        if (is_eval) {
            for (size_t i = 0; i < json_array_size(evals) && !want; i++)
                if ((long)json_number_value(json_object_get(json_array_get(evals, i), "step")) == step) want = json_array_get(evals, i);
        } else if (json_object_get(got, "loss")) {
            /* by step: logging_steps > 1 and logging_first_step log only some steps */
            for (size_t i = 0; i < json_array_size(steps) && !want; i++)
                if ((long)json_number_value(json_object_get(json_array_get(steps, i), "step")) == step) want = json_array_get(steps, i);
        }
        if (!want) { json_decref(got); continue; }
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v) {
            if (!strcmp(k, "step") || !json_is_number(v)) continue;
            if (is_eval && (!strcmp(k, "epoch") || !strcmp(k, "eval_num_tokens"))) continue;
            json_t *gv = json_object_get(got, k);
            CHECK(gv != NULL, "%s step %ld: hone does not log '%s'", case_name, step, k);
            if (!gv) continue;
            double a = json_number_value(gv), b = json_number_value(v), d = fabs(a - b), rel = d / fmax(fabs(b), 1e-30);
            double tol_abs, tol_rel;
            tolerance(k, &tol_abs, &tol_rel);
            CHECK(d <= tol_abs + tol_rel * fabs(b), "%s step %ld %s: hone %.9g TRL %.9g", case_name, step, k, a, b);
            if (tol_rel > 0 && (tol_rel <= 1e-4 || case_bf16) && tol_abs == 0 && rel > worst) { worst = rel; worst_key = k; }
            if (!strcmp(k, "loss") && rel > worst_loss) worst_loss = rel;
        }
        if (is_eval) matched_eval++;
        else matched++;
        json_decref(got);
    }
    free(line);
    fclose(f);
    CHECK(matched == (int)json_array_size(steps), "%s: %d of %zu steps compared", case_name, matched, json_array_size(steps));
    CHECK(matched_eval == (int)json_array_size(evals), "%s: %d of %zu evaluations compared", case_name, matched_eval,
          json_array_size(evals));
    printf("    %s: %d steps, %d evaluations, worst relative error %.2e (%s), of the loss %.2e\n", case_name, matched, matched_eval,
           worst, worst_key, worst_loss);
}

static hone_tok_example *sft_examples(json_t *data, int comp_only) {
    int n = (int)json_array_size(data);
    hone_tok_example *ex = calloc(n ? n : 1, sizeof *ex);
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(data, i);
        int nm;
        ex[i].ids = ids_of(json_object_get(r, "input_ids"), &ex[i].n);
        int32_t *cm = ids_of(json_object_get(r, "completion_mask"), &nm);
        ex[i].mask = malloc(ex[i].n + 1);
        for (int j = 0; j < ex[i].n; j++) ex[i].mask[j] = comp_only ? (uint8_t)cm[j] : 1;
        free(cm);
    }
    return ex;
}
static void free_examples(hone_tok_example *ex, int n) {
    for (int i = 0; ex && i < n; i++) { free(ex[i].ids); free(ex[i].mask); }
    free(ex);
}
/* eval batch size, steps and on-start from a case's config (0 when it has no eval) */
static void eval_opts(json_t *cfg, int *bs, long *steps, int *on_start) {
    int on = json_is_string(json_object_get(cfg, "eval_strategy")) && strcmp(json_string_value(json_object_get(cfg, "eval_strategy")), "no");
    *bs = on ? (int)num(cfg, "per_device_eval_batch_size", 0) : 0;
    *steps = on ? (long)num(cfg, "eval_steps", 0) : 0;
    *on_start = on && json_is_true(json_object_get(cfg, "eval_on_start"));
}
static int trainer_of(hone_trainer *t, hone_model *m, json_t *cfg, long max_steps, const char *dir, hone_error *err) {
    return trainer_init(t, m, dir, NULL, num(cfg, "learning_rate", 1e-3), sched_of(cfg), (long)num(cfg, "warmup_steps_resolved", 0),
                        max_steps, num(cfg, "adam_beta1", 0.9), num(cfg, "adam_beta2", 0.999), num(cfg, "adam_epsilon", 1e-8),
                        num(cfg, "weight_decay", 0), num(cfg, "max_grad_norm", 1), err);
}
/* trains m on the examples and compares every logged value with the case's */
static void sft_run(const char *name, json_t *cfg, json_t *exp, hone_model *m, const sft_opts *o, const hone_tok_example *ex, int n,
                    const hone_tok_example *eex, int ne) {
    const char *dir = test_tmpdir("trl");
    hone_trainer t;
    hone_error err;
    CHECK(trainer_of(&t, m, cfg, o->max_steps, dir, &err) == 0, "%s", err.msg);
    CHECK(sft_train(&t, o, ex, n, eex, ne, &err) == 0, "%s", err.msg);
    trainer_free(&t);
    compare_metrics(dir, name, exp);
    hone_remove_tree(dir, NULL);
}

/* the training options of a case's config (no evaluation) */
static sft_opts sft_opts_of(json_t *cfg) {
    sft_opts o = {.batch_size = (int)num(cfg, "per_device_train_batch_size", 2), .accum = (int)num(cfg, "gradient_accumulation_steps", 1),
                  .packing = json_is_true(json_object_get(cfg, "packing")), .max_length = (int)num(cfg, "max_length", 1024),
                  .shuffle = 0, .max_steps = (long)num(cfg, "max_steps", 1), .epochs = num(cfg, "num_train_epochs", 1),
                  .drop_last = json_is_true(json_object_get(cfg, "dataloader_drop_last")),
                  .logging_steps = (long)num(cfg, "logging_steps", 1), .logging_first_step = json_is_true(json_object_get(cfg, "logging_first_step")),
                  .pad_id = (int)num(cfg, "pad_token_id", 0), .quiet = 1};
    const char *ps = json_string_value(json_object_get(cfg, "packing_strategy"));
    o.packing_strategy = ps && !strcmp(ps, "wrapped") ? SFT_PACK_WRAPPED : ps && !strcmp(ps, "bfd_split") ? SFT_PACK_BFD_SPLIT : SFT_PACK_BFD;
    const char *lt = json_string_value(json_object_get(cfg, "loss_type"));
    o.head_loss.kind = lt && !strcmp(lt, "dft") ? HONE_LOSS_DFT : HONE_LOSS_NLL;
    o.head_loss.label_smoothing = (float)num(cfg, "label_smoothing_factor", 0);
    o.padding_free = json_is_true(json_object_get(cfg, "padding_free"));
    o.pad_to_multiple_of = (int)num(cfg, "pad_to_multiple_of", 0);
    json_t *ep = json_object_get(cfg, "eval_packing");
    o.eval_packing = json_is_boolean(ep) ? (json_is_true(ep) ? 1 : -1) : 0;
    o.eval_batch_size = o.batch_size;
    return o;
}

static void sft_case(const char *name) {
    json_t *cfg = load_json(name, "config.json"), *exp = load_json(name, "expected.json"), *data = load_jsonl(name, "data.jsonl");
    hone_model m;
    if (!cfg || !exp || load_model_case(&m, cfg, name) < 0) { json_decref(cfg); json_decref(exp); json_decref(data); return; }
    int n = (int)json_array_size(data), comp_only = json_is_true(json_object_get(cfg, "completion_only_loss"));
    hone_tok_example *ex = sft_examples(data, comp_only);
    json_t *edata = json_object_get(exp, "eval") ? load_jsonl(name, "eval.jsonl") : NULL;
    int ne = (int)json_array_size(edata);
    hone_tok_example *eex = ne ? sft_examples(edata, comp_only) : NULL;
    sft_opts o = sft_opts_of(cfg);
    eval_opts(cfg, &o.eval_batch_size, &o.eval_steps, &o.eval_on_start);
    if (!o.eval_batch_size) o.eval_batch_size = o.batch_size;
    long rows;
    hone_error err;
    if (o.max_steps <= 0 && sft_training_rows(&o, ex, n, &rows, NULL, &err) == 0) o.max_steps = sft_total_steps(&o, rows); /* from the epochs */
    sft_run(name, cfg, exp, &m, &o, ex, n, eex, ne);
    free_examples(ex, n);
    free_examples(eex, ne);
    free_model_case(&m);
    json_decref(cfg); json_decref(exp); json_decref(data); json_decref(edata);
}

/* pairs with TRL's truncation: prompts >= max_length dropped, rows cut at max_length */
static hone_tok_pair *dpo_pairs(json_t *data, int maxlen, int *count) {
    int n = (int)json_array_size(data), k = 0;
    hone_tok_pair *pairs = calloc(n ? n : 1, sizeof *pairs);
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
    *count = k;
    return pairs;
}
static void free_pairs(hone_tok_pair *pairs, int k) {
    for (int i = 0; pairs && i < k; i++) { free(pairs[i].prompt); free(pairs[i].chosen); free(pairs[i].rejected); }
    free(pairs);
}

/* A case whose rows are raw text (tests/reference/sft_ref.py's RAW cases): hone's own
 * pipeline (dataset, tokenizer, EOS, completion mask) must make TRL's token ids and
 * trained-token masks exactly (tokenized.jsonl, eval_tokenized.jsonl; rows cut at
 * max_length as TRL's preparation cuts them), then train and evaluate as TRL did. */
static void compare_tokenized(const char *name, const char *file, const hone_tok_example *ex, long n, int max_length) {
    json_t *want = load_jsonl(name, file);
    CHECK((long)json_array_size(want) == n, "%s %s: %ld rows, TRL %zu", name, file, n, json_array_size(want));
    for (long i = 0; i < n && i < (long)json_array_size(want); i++) {
        int nw, nm;
        int32_t *w = ids_of(json_object_get(json_array_get(want, i), "input_ids"), &nw);
        int32_t *m = ids_of(json_object_get(json_array_get(want, i), "completion_mask"), &nm);
        int len = ex[i].n < max_length ? ex[i].n : max_length, same = len == nw;
        for (int j = 0; same && j < nw; j++) same = ex[i].ids[j] == w[j] && ex[i].mask[j] == (uint8_t)m[j];
        CHECK(same, "%s %s row %ld: hone's %d tokens (last id %d) differ from TRL's %d (last id %d)", name, file, i, len,
              len ? ex[i].ids[len - 1] : -1, nw, nw ? w[nw - 1] : -1);
        free(w); free(m);
    }
    json_decref(want);
}

static void pipeline_case(const char *name) {
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return; }
    json_t *cfg = load_json(name, "config.json"), *exp = load_json(name, "expected.json");
    if (!cfg || !exp) { json_decref(cfg); json_decref(exp); return; }
    hone_error err = {{0}};
    hone_model m0;
    const char *dir = test_tmpdir("trlpipe");
    char mdir[600], yaml[8192], data[1100], edata[1200];
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    snprintf(data, sizeof data, "%s", test_src("tests/fixtures/trl/"));
    snprintf(edata, sizeof edata, "%s%s/eval.jsonl", data, name);
    snprintf(data + strlen(data), sizeof data - strlen(data), "%s/data.jsonl", name);
    if (convert_llama2c_load(&m0, bin, &err) < 0) { CHECK(0, "%s", err.msg); goto out; }
    int rc = model_save(&m0, mdir, NULL, &err);
    model_free(&m0);
    if (rc < 0 || spm_convert(spm, mdir, &err) < 0) { CHECK(0, "%s", err.msg); goto out; }
    int max_length = (int)num(cfg, "max_length", 1024);
    snprintf(yaml, sizeof yaml,
             "model_name_or_path: '%s'\noutput_dir: '%s/out'\nmax_length: %d\ntrain_sampling_strategy: sequential\n"
             "datasets:\n  - {path: '%s'}\n  - {path: '%s', split: eval}\n",
             mdir, dir, max_length, data, edata);
    hone_train_config c;
    if (config_load_string(&c, yaml, name, HONE_SFT, &err) < 0) { CHECK(0, "%s", err.msg); goto out; }
    hone_pipeline p;
    if (pipeline_init(&p, &c, &err) < 0) { CHECK(0, "%s", err.msg); config_free(&c); goto out; }
    hone_tok_example *ex = NULL, *eex = NULL;
    long n = 0, ne = 0;
    if (pipeline_sft_examples(&p, &c, &ex, &n, &eex, &ne, &err) < 0) CHECK(0, "%s", err.msg);
    else {
        compare_tokenized(name, "tokenized.jsonl", ex, n, max_length);
        compare_tokenized(name, "eval_tokenized.jsonl", eex, ne, max_length);
        sft_opts o = {.batch_size = (int)num(cfg, "per_device_train_batch_size", 2),
                      .accum = (int)num(cfg, "gradient_accumulation_steps", 1), .max_length = max_length,
                      .shuffle = pipeline_shuffle(&c), .seed = pipeline_data_seed(&c), /* sequential: TRL's batches */
                      .max_steps = (long)num(cfg, "max_steps", 1), .epochs = 1, .logging_steps = 1, .quiet = 1};
        eval_opts(cfg, &o.eval_batch_size, &o.eval_steps, &o.eval_on_start);
        sft_run(name, cfg, exp, &p.model, &o, ex, (int)n, eex, (int)ne);
        pipeline_free_examples(ex, n);
        pipeline_free_examples(eex, ne);
    }
    pipeline_free(&p);
    config_free(&c);
out:
    hone_remove_tree(dir, NULL);
    json_decref(cfg); json_decref(exp);
}

/* dtype of the first tensor of dir/model.safetensors, and config.json's torch_dtype */
static int saved_dtype(const char *dir, char *cfg_dtype, size_t n) {
    char p[4096];
    hone_path_join(p, sizeof p, dir, "model.safetensors");
    st_file f;
    hone_error err;
    if (st_open(&f, p, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    int dt = f.tensors[0].dtype;
    st_close(&f);
    hone_model_config c;
    hone_path_join(p, sizeof p, dir, "config.json");
    if (model_config_load(&c, p, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    snprintf(cfg_dtype, n, "%s", c.torch_dtype);
    return dt;
}

/* Trains a copy of base (loaded from base_dir) steps 1..3 in one run (checkpoint-2 on the way)
 * and again as checkpoint-2 + resume + step 3: the parameters after both must be bitwise equal.
 * Returns the uninterrupted run's final parameters (caller frees) and leaves its output in dir_a. */
static float *train_and_resume(const char *base_dir, json_t *cfg, hone_tok_example *ex, int n, const char *dir_a, const char *what) {
    hone_model a, b;
    hone_error err;
    hone_trainer t;
    sft_opts o = sft_opts_of(cfg);
    o.save_steps = 2;
    float *out = NULL;
    if (model_load(&a, base_dir, 0, &err) < 0) { CHECK(0, "%s", err.msg); return NULL; }
    if (trainer_of(&t, &a, cfg, o.max_steps, dir_a, &err) < 0) { CHECK(0, "%s", err.msg); model_free(&a); return NULL; }
    CHECK(sft_train(&t, &o, ex, n, NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(trainer_save_final(&t, &err) == 0, "%s", err.msg);
    trainer_free(&t);
    char ck[4096], dt[16];
    hone_path_join(ck, sizeof ck, dir_a, "checkpoint-2");
    CHECK(saved_dtype(ck, dt, sizeof dt) == ST_F32 && !strcmp(dt, "float32"), "%s: checkpoint-2 is not stored in float32 (%s)", what, dt);
    const char *dir_b = test_tmpdir("trl-resume");
    if (model_load(&b, base_dir, 0, &err) == 0) {
        if (trainer_of(&t, &b, cfg, o.max_steps, dir_b, &err) == 0) {
            CHECK(trainer_load_checkpoint(&t, ck, NULL, 0, &err) == 0, "%s", err.msg);
            CHECK(t.step == 2, "%s: resumed at step %ld", what, t.step);
            CHECK(sft_train(&t, &o, ex, n, NULL, 0, &err) == 0, "%s", err.msg);
            trainer_free(&t);
            size_t diff = 0;
            for (size_t i = 0; i < a.num_floats; i++) diff += memcmp(&a.data[i], &b.data[i], sizeof(float)) != 0;
            CHECK(diff == 0, "%s: 2 steps + resume + 1 step differs from 3 steps in %zu of %zu parameters", what, diff, a.num_floats);
            printf("    %s: 3 steps == 2 steps + resume + 1 step, bitwise (%zu parameters)\n", what, a.num_floats);
        }
        model_free(&b);
    } else CHECK(0, "%s", err.msg);
    hone_remove_tree(dir_b, NULL);
    out = malloc(sizeof(float) * a.num_floats);
    memcpy(out, a.data, sizeof(float) * a.num_floats);
    model_free(&a);
    return out;
}

/* A bf16-stored model (tests/reference/bf16_ref.py) trains on fp32 master weights: final/ is fp32
 * and its update (final - initial) equals TRL's fp32 run's within 1e-4 relative, per tensor in the
 * l2 norm (fp32 rounding of weights near 1 alone is ~2e-5 of a 3-step update of 3e-3; single
 * elements whose gradient nearly cancels reach ~1e-3 through Adam's g / sqrt(v)); checkpoints are fp32 and
 * resume is bitwise, for the bf16 base and for the same base stored as f16; save_dtype: auto writes
 * the base's dtype. */
static void sft_bf16_case(const char *name) {
    json_t *cfg = load_json(name, "config.json"), *exp = load_json(name, "expected.json"), *data = load_jsonl(name, "data.jsonl");
    hone_model m;
    hone_error err;
    if (!cfg || !exp || load_model(&m, cfg) < 0) { json_decref(cfg); json_decref(exp); json_decref(data); return; }
    CHECK(!strcmp(m.stored_dtype, "bfloat16"), "%s: the fixture model is stored as %s, not bfloat16", name, m.stored_dtype);
    const char *base = test_src(json_string_value(json_object_get(cfg, "model")));
    int n = (int)json_array_size(data);
    hone_tok_example *ex = sft_examples(data, json_is_true(json_object_get(cfg, "completion_only_loss")));
    const char *dir = test_tmpdir("trl-bf16");
    float *w = train_and_resume(base, cfg, ex, n, dir, name);
    compare_metrics(dir, name, exp);
    /* final/: fp32 by default, equal to TRL's weights */
    char fin[4096], p[1024], dt[16];
    hone_path_join(fin, sizeof fin, dir, "final");
    CHECK(saved_dtype(fin, dt, sizeof dt) == ST_F32 && !strcmp(dt, "float32"), "%s: final/ is not float32 (%s)", name, dt);
    hone_model f;
    snprintf(p, sizeof p, "tests/fixtures/trl/%s/update.safetensors", name);
    st_file u;
    if (w && model_load(&f, fin, 0, &err) == 0) {
        CHECK(st_open(&u, test_src(p), &err) == 0, "%s", err.msg);
        double worst = 0, worst_el = 0;
        const char *worst_name = "";
        for (int i = 0; i < m.n_params; i++) {
            const hone_param *q = &m.params[i];
            const st_tensor *ts = st_find(&u, q->name);
            if (!ts || st_numel(ts) != q->numel) { CHECK(0, "%s: update of '%s' missing", name, q->name); continue; }
            float *d = malloc(sizeof(float) * q->numel);
            st_read_f32(&u, ts, d, &err);
            double big = 0, dev = 0, bitdiff = 0, n2 = 0, e2 = 0;
            for (size_t j = 0; j < q->numel; j++) {
                float fin_w = f.data[q->offset + j], init = m.data[q->offset + j];
                double e = (double)(fin_w - init) - d[j];
                big = fmax(big, fabs(d[j]));
                dev = fmax(dev, fabs(e));
                n2 += (double)d[j] * d[j]; e2 += e * e;
                bitdiff += memcmp(&fin_w, &w[q->offset + j], sizeof(float)) != 0;
            }
            CHECK(bitdiff == 0, "%s: final/ '%s' differs from the trained weights", name, q->name);
            double rel = n2 > 0 ? sqrt(e2 / n2) : sqrt(e2);
            CHECK(rel <= 1e-4, "%s '%s': update differs from TRL's by %.3g relative (l2; largest element %.3g of %.3g)", name, q->name,
                  rel, dev, big);
            if (rel > worst) { worst = rel; worst_name = q->name; }
            worst_el = fmax(worst_el, big > 0 ? dev / big : 0);
            free(d);
        }
        st_close(&u);
        printf("    %s: final/ update vs TRL's, worst l2 relative %.2e (%s); worst element %.2e of the largest update\n", name, worst,
               worst_name, worst_el);
        model_free(&f);
    } else CHECK(0, "%s", err.msg);
    /* save_dtype: auto writes the base's dtype */
    hone_trainer t;
    if (trainer_of(&t, &m, cfg, 0, dir, &err) == 0) {
        snprintf(t.save_dtype, sizeof t.save_dtype, "auto");
        CHECK(trainer_save_final(&t, &err) == 0, "%s", err.msg);
        CHECK(saved_dtype(fin, dt, sizeof dt) == ST_BF16 && !strcmp(dt, "bfloat16"), "%s: save_dtype auto wrote %s", name, dt);
        trainer_free(&t);
    }
    hone_remove_tree(dir, NULL);
    /* the same base stored in f16: resume bitwise too */
    const char *d16 = test_tmpdir("trl-f16");
    char b16[4096];
    hone_path_join(b16, sizeof b16, d16, "base");
    CHECK(model_save_ex(&m, b16, NULL, "float16", NULL, NULL, &err) == 0, "%s", err.msg);
    char run[4096], what[160];
    hone_path_join(run, sizeof run, d16, "run");
    snprintf(what, sizeof what, "%s stored as f16", name);
    free(train_and_resume(b16, cfg, ex, n, run, what));
    hone_remove_tree(d16, NULL);
    free(w);
    for (int i = 0; i < n; i++) { free(ex[i].ids); free(ex[i].mask); }
    free(ex);
    model_free(&m);
    json_decref(cfg); json_decref(exp); json_decref(data);
}

static void dpo_case(const char *name) {
    json_t *cfg = load_json(name, "config.json"), *exp = load_json(name, "expected.json"), *data = load_jsonl(name, "data.jsonl");
    hone_model m, ref;
    if (!cfg || !exp || load_model_case(&m, cfg, name) < 0) { json_decref(cfg); json_decref(exp); json_decref(data); return; }
    int lora = case_has_lora;
    if (lora) { /* TRL with a PEFT model and no ref_model: the policy with its adapters off */
        ref = m;
        lora_attach(&ref, NULL);
    } else load_model(&ref, cfg);
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
    o.batch_size = (int)num(cfg, "per_device_train_batch_size", 2);
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
    int maxlen = (int)num(cfg, "max_length", 1 << 30), k, ke = 0;
    eval_opts(cfg, &o.eval_batch_size, &o.eval_steps, &o.eval_on_start);
    if (!o.eval_batch_size) o.eval_batch_size = o.batch_size;
    hone_tok_pair *pairs = dpo_pairs(data, maxlen, &k), *epairs = NULL;
    json_t *edata = json_object_get(exp, "eval") ? load_jsonl(name, "eval.jsonl") : NULL;
    if (edata) epairs = dpo_pairs(edata, maxlen, &ke);
    dpo_ref_logps refs = {0}, erefs = {0};
    if (ref_free) {
        refs.n = k;
        refs.chosen = calloc(k, sizeof(double));
        refs.rejected = calloc(k, sizeof(double));
        erefs.n = ke;
        erefs.chosen = calloc(ke + 1, sizeof(double));
        erefs.rejected = calloc(ke + 1, sizeof(double));
    } else if (pre) {
        CHECK(dpo_precompute_ref(&ref, &o, pairs, k, &refs, &err) == 0, "%s", err.msg);
        CHECK(dpo_precompute_ref(&ref, &o, epairs, ke, &erefs, &err) == 0, "%s", err.msg);
    }
    const char *dir = test_tmpdir("trl");
    hone_trainer t;
    CHECK(trainer_of(&t, &m, cfg, o.max_steps, dir, &err) == 0, "%s", err.msg);
    CHECK(dpo_train(&t, (ref_free || pre) ? NULL : &ref, &o, pairs, k, (ref_free || pre) ? &refs : NULL, epairs, ke,
                    (ref_free || pre) ? &erefs : NULL, &err) == 0, "%s", err.msg);
    trainer_free(&t);
    compare_metrics(dir, name, exp);
    hone_remove_tree(dir, NULL);
    dpo_ref_logps_free(&refs);
    dpo_ref_logps_free(&erefs);
    free_pairs(pairs, k);
    free_pairs(epairs, ke);
    free_model_case(&m);
    if (!lora) model_free(&ref);
    json_decref(cfg); json_decref(exp); json_decref(data); json_decref(edata);
}

static void test_sft_full(void) { sft_case("sft_full"); }
static void test_sft_completion_only(void) { sft_case("sft_completion_only"); }
static void test_sft_packing(void) { sft_case("sft_packing"); }
static void test_sft_packing_completion_only(void) { sft_case("sft_packing_completion_only"); }
static void test_sft_stories260K(void) { sft_case("sft_stories260K"); }
static void test_sft_dft(void) { sft_case("sft_dft"); }
static void test_sft_padding_free(void) { sft_case("sft_padding_free"); }
static void test_sft_packing_eval_unpacked(void) { sft_case("sft_packing_eval_unpacked"); }
static void test_sft_packing_wrapped(void) { sft_case("sft_packing_wrapped"); }
static void test_sft_packing_bfd_split(void) { sft_case("sft_packing_bfd_split"); }
static void test_sft_packing_groups(void) { sft_case("sft_packing_groups"); }
static void test_sft_label_smoothing(void) { sft_case("sft_label_smoothing"); }
static void test_sft_logging_first_step(void) { sft_case("sft_logging_first_step"); }
static void test_sft_bf16_llama32(void) { sft_bf16_case("sft_bf16_llama32"); }
static void test_sft_bf16_gemma(void) { sft_bf16_case("sft_bf16_gemma"); }
static void test_sft_autocast_bf16(void) { sft_case("sft_autocast_bf16"); }
static void test_sft_autocast_bf16_stories260K(void) { sft_case("sft_autocast_bf16_stories260K"); }
static void test_sft_epochs_partial_accum(void) { sft_case("sft_epochs_partial_accum"); }
static void test_sft_drop_last(void) { sft_case("sft_drop_last"); }
static void test_sft_lora(void) { sft_case("sft_lora"); }

/* LoRA checkpoints: PEFT adapter directories plus optimizer state (no base model files, moments
 * only for the adapters); 3 steps in one run == 2 steps + checkpoint + resume + 1 step, bitwise,
 * with lora_dropout 0.1 (the masks follow the step, not the process) */
static void test_sft_lora_resume(void) {
    const char *name = "sft_lora";
    json_t *cfg = load_json(name, "config.json"), *data = load_jsonl(name, "data.jsonl");
    hone_model a, b;
    hone_error err;
    if (!cfg || load_model_case(&a, cfg, name) < 0) { json_decref(cfg); json_decref(data); return; }
    case_lora.cfg.dropout = 0.1;
    int n = (int)json_array_size(data);
    hone_tok_example *ex = sft_examples(data, 1);
    sft_opts o = sft_opts_of(cfg);
    o.max_steps = 3;
    o.save_steps = 2;
    const char *dir_a = test_tmpdir("lora-a"), *dir_b = test_tmpdir("lora-b");
    hone_trainer t;
    CHECK(trainer_of(&t, &a, cfg, o.max_steps, dir_a, &err) == 0, "%s", err.msg);
    CHECK(t.n_tfloats == case_lora.num_floats && t.n_tfloats < a.num_floats, "trainer covers %zu floats, adapters %zu, model %zu",
          t.n_tfloats, case_lora.num_floats, a.num_floats);
    CHECK(sft_train(&t, &o, ex, n, NULL, 0, &err) == 0, "%s", err.msg);
    trainer_free(&t);
    size_t nf = case_lora.num_floats;
    float *wa = malloc(sizeof(float) * nf), *base_a = malloc(sizeof(float) * a.num_floats);
    memcpy(wa, case_lora.data, sizeof(float) * nf);
    memcpy(base_a, a.data, sizeof(float) * a.num_floats);
    char ck[4096], p[4200];
    hone_path_join(ck, sizeof ck, dir_a, "checkpoint-2");
    hone_path_join(p, sizeof p, ck, "adapter_model.safetensors");
    CHECK(hone_file_exists(p), "checkpoint-2 has no adapter_model.safetensors");
    hone_path_join(p, sizeof p, ck, "model.safetensors");
    CHECK(!hone_file_exists(p), "checkpoint-2 holds the base model");
    hone_path_join(p, sizeof p, ck, "optimizer.safetensors");
    st_file f;
    if (st_open(&f, p, &err) == 0) {
        CHECK(f.n == 2 * case_lora.n_params, "optimizer.safetensors holds %d tensors, want %d (adapters only)", f.n, 2 * case_lora.n_params);
        st_close(&f);
    } else CHECK(0, "%s", err.msg);
    free_model_case(&a);
    if (load_model_case(&b, cfg, name) == 0) {
        case_lora.cfg.dropout = 0.1;
        if (trainer_of(&t, &b, cfg, o.max_steps, dir_b, &err) == 0) {
            CHECK(trainer_load_checkpoint(&t, ck, NULL, 0, &err) == 0, "%s", err.msg);
            CHECK(t.step == 2, "resumed at step %ld", t.step);
            CHECK(sft_train(&t, &o, ex, n, NULL, 0, &err) == 0, "%s", err.msg);
            trainer_free(&t);
            CHECK(!memcmp(wa, case_lora.data, sizeof(float) * nf), "3 steps differ from 2 steps + resume + 1 step");
            CHECK(!memcmp(base_a, b.data, sizeof(float) * b.num_floats), "the frozen base differs");
            printf("    sft_lora: 3 steps == 2 steps + resume + 1 step, bitwise (%zu adapter floats)\n", nf);
        }
        free_model_case(&b);
    }
    free(wa); free(base_a);
    free_examples(ex, n);
    hone_remove_tree(dir_a, NULL);
    hone_remove_tree(dir_b, NULL);
    json_decref(cfg); json_decref(data);
}
static void test_sft_lora_stories260K(void) { sft_case("sft_lora_stories260K"); }
static void test_sft_qlora(void) { sft_case("sft_qlora"); }
static void test_sft_text_stories260K(void) { pipeline_case("sft_text_stories260K"); }
static void test_sft_prompt_completion_stories260K(void) { pipeline_case("sft_prompt_completion_stories260K"); }

static const char *dpo_cases[] = {"dpo_sigmoid", "dpo_hinge", "dpo_ipo", "dpo_exo_pair", "dpo_nca_pair", "dpo_robust",
    "dpo_bco_pair", "dpo_sppo_hard", "dpo_aot", "dpo_aot_unpaired", "dpo_apo_zero", "dpo_apo_down", "dpo_discopop", "dpo_sft",
    "dpo_sigmoid_norm", "dpo_mpo_combo", "dpo_f_forward_kl", "dpo_f_js_divergence", "dpo_f_alpha_divergence", "dpo_ld_alpha",
    "dpo_wpo_weighting", "dpo_precompute_ref", "dpo_reference_free", "dpo_sync_ref", "dpo_stories260K",
    "dpo_lora", "dpo_lora_precompute", "dpo_lora_dropout", "dpo_lora_stories260K", "dpo_autocast_bf16", "dpo_qlora"};

int main(void) {
    kernels_init();
    TEST_RUN(test_sft_full);
    TEST_RUN(test_sft_completion_only);
    TEST_RUN(test_sft_packing);
    TEST_RUN(test_sft_packing_completion_only);
    TEST_RUN(test_sft_stories260K);
    TEST_RUN(test_sft_dft);
    TEST_RUN(test_sft_padding_free);
    TEST_RUN(test_sft_packing_eval_unpacked);
    TEST_RUN(test_sft_packing_wrapped);
    TEST_RUN(test_sft_packing_bfd_split);
    TEST_RUN(test_sft_packing_groups);
    TEST_RUN(test_sft_label_smoothing);
    TEST_RUN(test_sft_logging_first_step);
    TEST_RUN(test_sft_bf16_llama32);
    TEST_RUN(test_sft_bf16_gemma);
    TEST_RUN(test_sft_autocast_bf16);
    TEST_RUN(test_sft_autocast_bf16_stories260K);
    TEST_RUN(test_sft_epochs_partial_accum);
    TEST_RUN(test_sft_drop_last);
    TEST_RUN(test_sft_lora);
    TEST_RUN(test_sft_lora_resume);
    TEST_RUN(test_sft_lora_stories260K);
    TEST_RUN(test_sft_qlora);
    TEST_RUN(test_sft_text_stories260K);
    TEST_RUN(test_sft_prompt_completion_stories260K);
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
