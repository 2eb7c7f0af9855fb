/* train/train_config.c — YAML training configuration (see train_config.h): a table of keys with their
 * type, field offset and the commands (SFT/DPO) they belong to drives loading,
 * --set overrides, JSON dumping and docs/config.md alike. */
#include "train/train_config.h"
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef enum {
    T_STR,      /* string; null -> NULL */
    T_F64,      /* number */
    T_OPT_F64,  /* number or null (-1) */
    T_INT,      /* int */
    T_LONG,     /* long */
    T_OPT_LONG, /* long or null (-1) */
    T_BOOL,     /* true/false */
    T_OPT_BOOL, /* true/false/null (-1) */
    T_AUTO_BOOL,/* true/false/auto (-1) */
    T_ENUM,     /* one string of choices */
    T_ENUM_LIST,/* string or list of strings from choices */
    T_F64_LIST, /* list of numbers or null */
    T_RESUME,   /* string path or bool (true -> "last") or null */
    T_CHAT,     /* one of choices, or an inline Jinja template */
    T_DATASETS, /* list of sources */
    T_KWARGS,   /* a mapping of scalars (or its JSON text), kept as JSON text */
    T_PEFT,     /* a mapping of PEFT LoraConfig keys, applied to the lora_* keys */
} key_type;

enum { K_SFT = 1, K_DPO = 2, K_ALL = 3 };

typedef struct {
    const char *name;
    key_type type;
    size_t off, count_off; /* count_off: for list types, offset of the int count */
    int kinds;
    const char *const *choices;
    const char *alias_of;  /* this key is another name for alias_of */
} key_def;

static const char *const sched_choices[] = {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                                            "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau",
                                            "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay", NULL};
static const char *const eval_choices[] = {"no", "steps", "epoch", NULL};
static const char *const save_choices[] = {"steps", "no", NULL};
static const char *const sft_loss_choices[] = {"nll", "dft", "chunked_nll", NULL};
static const char *const pack_choices[] = {"bfd", "wrapped", "bfd_split", NULL};
static const char *const dtype_choices[] = {"float32", "bfloat16", "float16", "auto", NULL};
static const char *const sampling_choices[] = {"random", "sequential", NULL};
static const char *const trunc_choices[] = {"keep_start", "keep_end", NULL};
static const char *const fdiv_choices[] = {"reverse_kl", "forward_kl", "js_divergence", "alpha_divergence", NULL};
static const char *const chat_choices[] = {"auto", "chatml", "llama2", "llama3", "gemma", "zephyr", "model", NULL};
static const char *const loss_choices[] = {"sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust",
                                           "bco_pair", "sppo_hard", "aot", "aot_unpaired", "apo_zero",
                                           "apo_down", "discopop", "sft", "sigmoid_norm", NULL};
static const char *const report_choices[] = {"none", "jsonl", "tensorboard", "all", NULL};
static const char *const sft_formats[] = {"auto", "prompt_completion", "messages", "conversational",
                                          "sharegpt", "alpaca", "text", NULL};
static const char *const lora_target_choices[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                                  "all-linear", NULL};
static const char *const lora_save_choices[] = {"embed_tokens", "lm_head", NULL};
static const char *const lora_init_choices[] = {"true", "false", "gaussian", "True", "False", NULL};
static const char *const lora_bias_choices[] = {"none", NULL};
static const char *const quant_type_choices[] = {"nf4", "fp4", NULL};
static const char *const compute_dtype_choices[] = {"float32", "bfloat16", NULL};
static const char *const base_dtype_choices[] = {"auto", "float32", "bfloat16", NULL};
/* transformers' OptimizerNames hone runs: torch's AdamW (the fused and paged 32-bit ones are the same
 * update on CPU) and bitsandbytes' 8-bit AdamW (paged or not: the same on CPU) */
static const char *const optim_choices[] = {"adamw_torch", "adamw_torch_fused", "adamw_hf", "paged_adamw_32bit", "adamw_bnb_8bit",
                                            "adamw_8bit", "paged_adamw_8bit", NULL};
/* DeepSpeed's data_types.grad_accum_dtype, with the double hone defaults to */
static const char *const accum_dtype_choices[] = {"fp64", "fp32", NULL};
static const char *const dpo_formats[] = {"auto", "standard", "conversational", "implicit", "implicit_turn", "sharegpt", NULL};

#define F(field) offsetof(hone_train_config, field)
#define K(name, type, kinds) {#name, type, F(name), 0, kinds, NULL, NULL}
#define KC(name, type, kinds, ch) {#name, type, F(name), 0, kinds, ch, NULL}
#define KL(name, type, kinds, ch) {#name, type, F(name), F(n_##name), kinds, ch, NULL}
/* keys of the embedded data options (data/options.h) */
#define KD(name, type, kinds) {#name, type, F(data.name), 0, kinds, NULL, NULL}
#define KDL(name, type, kinds, ch) {#name, type, F(data.name), F(data.n_##name), kinds, ch, NULL}

static const key_def keys[] = {
    K(model_name_or_path, T_STR, K_ALL),
    K(output_dir, T_STR, K_ALL),
    K(resume_from_checkpoint, T_RESUME, K_ALL),
    K(overwrite_output_dir, T_BOOL, K_ALL),
    K(seed, T_LONG, K_ALL),
    K(threads, T_INT, K_ALL),
    K(zero_stage, T_INT, K_ALL),
    KC(grad_accum_dtype, T_ENUM, K_ALL, accum_dtype_choices),
    K(learning_rate, T_F64, K_ALL),
    KC(lr_scheduler_type, T_ENUM, K_ALL, sched_choices),
    K(lr_scheduler_kwargs, T_KWARGS, K_ALL),
    K(metric_for_best_model, T_STR, K_ALL),
    KL(report_to, T_ENUM_LIST, K_ALL, report_choices),
    K(logging_dir, T_STR, K_ALL),
    K(load_best_model_at_end, T_BOOL, K_ALL),
    K(greater_is_better, T_OPT_BOOL, K_ALL),
    K(warmup_steps, T_F64, K_ALL),
    K(warmup_ratio, T_F64, K_ALL),
    K(num_train_epochs, T_F64, K_ALL),
    K(max_steps, T_LONG, K_ALL),
    K(per_device_train_batch_size, T_INT, K_ALL),
    K(per_device_eval_batch_size, T_INT, K_ALL),
    K(gradient_accumulation_steps, T_INT, K_ALL),
    K(max_grad_norm, T_F64, K_ALL),
    K(weight_decay, T_F64, K_ALL),
    K(adam_beta1, T_F64, K_ALL),
    K(adam_beta2, T_F64, K_ALL),
    K(adam_epsilon, T_F64, K_ALL),
    K(gradient_checkpointing, T_BOOL, K_ALL),
    KC(optim, T_ENUM, K_ALL, optim_choices),
    K(bf16, T_BOOL, K_ALL),
    KC(train_sampling_strategy, T_ENUM, K_ALL, sampling_choices),
    K(data_seed, T_OPT_LONG, K_ALL),
    K(dataloader_drop_last, T_BOOL, K_ALL),
    K(shuffle_dataset, T_BOOL, K_SFT),
    K(logging_steps, T_F64, K_ALL),
    K(logging_first_step, T_BOOL, K_ALL),
    KC(eval_strategy, T_ENUM, K_ALL, eval_choices),
    K(eval_steps, T_OPT_F64, K_ALL),
    K(eval_on_start, T_BOOL, K_ALL),
    KC(save_strategy, T_ENUM, K_ALL, save_choices),
    K(save_steps, T_F64, K_ALL),
    K(save_total_limit, T_OPT_LONG, K_ALL),
    KC(save_dtype, T_ENUM, K_ALL, dtype_choices),
    KDL(datasets, T_DATASETS, K_ALL, NULL),
    KD(test_size, T_F64, K_ALL),
    KD(skip_invalid_rows, T_BOOL, K_ALL),
    KC(chat_template, T_CHAT, K_ALL, chat_choices),
    K(add_chat_tokens, T_BOOL, K_ALL),
    K(max_length, T_OPT_LONG, K_ALL),
    {"max_seq_length", T_OPT_LONG, F(max_length), 0, K_ALL, NULL, "max_length"},
    K(packing, T_BOOL, K_SFT),
    KC(packing_strategy, T_ENUM, K_SFT, pack_choices),
    K(eval_packing, T_OPT_BOOL, K_SFT),
    K(eos_token, T_STR, K_SFT),
    K(padding_free, T_BOOL, K_ALL),
    K(pad_to_multiple_of, T_OPT_LONG, K_SFT),
    K(chat_template_path, T_STR, K_SFT),
    K(completion_only_loss, T_OPT_BOOL, K_SFT),
    {"loss_type", T_ENUM, F(sft_loss_type), 0, K_SFT, sft_loss_choices, NULL}, /* DPO's loss_type is below */
    K(label_smoothing_factor, T_F64, K_SFT),
    K(neftune_noise_alpha, T_OPT_F64, K_SFT),
    K(assistant_only_loss, T_BOOL, K_SFT),
    KC(truncation_mode, T_ENUM, K_ALL, trunc_choices),
    K(beta, T_F64, K_DPO),
    KL(loss_type, T_ENUM_LIST, K_DPO, loss_choices),
    KL(loss_weights, T_F64_LIST, K_DPO, NULL),
    K(label_smoothing, T_F64, K_DPO),
    KC(f_divergence_type, T_ENUM, K_DPO, fdiv_choices),
    K(f_alpha_divergence_coef, T_F64, K_DPO),
    K(ld_alpha, T_OPT_F64, K_DPO),
    K(use_weighting, T_BOOL, K_DPO),
    K(rpo_alpha, T_OPT_F64, K_DPO),
    K(discopop_tau, T_F64, K_DPO),
    K(reference_free, T_BOOL, K_DPO),
    K(precompute_ref_log_probs, T_BOOL, K_DPO),
    K(precompute_ref_batch_size, T_OPT_LONG, K_DPO),
    K(ref_model_name_or_path, T_STR, K_DPO),
    K(sync_ref_model, T_BOOL, K_DPO),
    K(ref_model_mixup_alpha, T_F64, K_DPO),
    K(ref_model_sync_steps, T_LONG, K_DPO),
    K(max_prompt_length, T_OPT_LONG, K_DPO),
    K(max_completion_length, T_OPT_LONG, K_DPO),
    K(shared_prompt, T_AUTO_BOOL, K_DPO),
    K(use_peft, T_BOOL, K_ALL),
    K(lora_r, T_INT, K_ALL),
    K(lora_alpha, T_F64, K_ALL),
    K(lora_dropout, T_F64, K_ALL),
    KL(lora_target_modules, T_ENUM_LIST, K_ALL, lora_target_choices),
    KL(lora_modules_to_save, T_ENUM_LIST, K_ALL, lora_save_choices),
    K(use_rslora, T_BOOL, K_ALL),
    KC(init_lora_weights, T_ENUM, K_ALL, lora_init_choices),
    KC(lora_bias, T_ENUM, K_ALL, lora_bias_choices),
    K(use_dora, T_BOOL, K_ALL),
    K(load_in_4bit, T_BOOL, K_ALL),
    K(load_in_8bit, T_BOOL, K_ALL),
    KC(bnb_4bit_quant_type, T_ENUM, K_ALL, quant_type_choices),
    K(use_bnb_nested_quant, T_BOOL, K_ALL),
    KC(bnb_4bit_compute_dtype, T_ENUM, K_ALL, compute_dtype_choices),
    KC(base_dtype, T_ENUM, K_ALL, base_dtype_choices),
    {"peft", T_PEFT, F(peft_block), 0, K_ALL, NULL, NULL},
};
#define N_KEYS (sizeof keys / sizeof *keys)

static const char *kind_name(int kind) { return kind == HONE_DPO ? "dpo" : "sft"; }

/* ---------- small helpers ---------- */

int config_edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return 99;
    int d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            /* adjacent transposition counts as one edit ("leanring") */
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1;
            d[i][j] = c;
        }
    return d[n][m];
}

const char *config_closest(const char *s, const char *const *names) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (; *names; names++) {
        int d = config_edit_distance(s, *names);
        if (d < bd) bd = d, best = *names;
    }
    int tol = (int)strlen(s) / 3;
    if (tol < 2) tol = 2;
    return bd <= tol ? best : NULL;
}

static int set_str(char **dst, const char *v, hone_error *err) {
    char *n = NULL;
    if (v && !(n = strdup(v))) return hone_fail(err, "out of memory");
    free(*dst);
    *dst = n;
    return 0;
}

long config_steps(double v, long total) {
    if (v <= 0) return 0;
    if (v < 1) return (long)ceil(v * (double)total);
    return (long)v;
}

/* ---------- YAML node access ---------- */

typedef struct {
    yaml_document_t *doc;
    const char *name; /* file name, or "--set" */
    int from_set;
} ctx;

/* "file:line:col: " prefix of a node (or "--set: " for overrides). */
static void where(const ctx *x, const yaml_node_t *n, char *buf, size_t len) {
    if (x->from_set) snprintf(buf, len, "--set");
    else snprintf(buf, len, "%s:%zu:%zu", x->name, n->start_mark.line + 1, n->start_mark.column + 1);
}

static const char *scalar(const yaml_node_t *n) { return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL; }

static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = scalar(n);
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *node_desc(const yaml_node_t *n, char *buf, size_t len) {
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    snprintf(buf, len, "'%.200s'", scalar(n));
    return buf;
}

static int type_error(const ctx *x, const yaml_node_t *n, const char *key, const char *expected, hone_error *err) {
    char w[512], d[256];
    where(x, n, w, sizeof w);
    return hone_fail(err, "%s: %s: expected %s, got %s", w, key, expected, node_desc(n, d, sizeof d));
}

static int parse_f64(const yaml_node_t *n, double *out) {
    const char *s = scalar(n);
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int parse_long(const yaml_node_t *n, long *out) {
    const char *s = scalar(n);
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const yaml_node_t *n, int *out) {
    const char *s = scalar(n);
    if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return -1;
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On", NULL};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "off", "Off", NULL};
    for (int i = 0; t[i]; i++) if (!strcmp(s, t[i])) return *out = 1, 0;
    for (int i = 0; f[i]; i++) if (!strcmp(s, f[i])) return *out = 0, 0;
    return -1;
}

static int in_choices(const char *s, const char *const *choices) {
    for (; *choices; choices++) if (!strcmp(s, *choices)) return 1;
    return 0;
}

static int choice_error(const ctx *x, const yaml_node_t *n, const char *key, const char *v,
                        const char *const *choices, hone_error *err) {
    char w[512], list[512] = "";
    where(x, n, w, sizeof w);
    for (const char *const *c = choices; *c; c++) {
        if (c != choices) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, *c, sizeof list - strlen(list) - 1);
    }
    const char *s = config_closest(v, choices);
    if (s) return hone_fail(err, "%s: %s: unknown value '%s' (did you mean '%s'?; one of %s)", w, key, v, s, list);
    return hone_fail(err, "%s: %s: unknown value '%s' (expected one of %s)", w, key, v, list);
}

/* ---------- datasets ---------- */

static void source_free(hone_data_source *s) {
    free(s->path);
    free(s->format);
    free(s->split);
    for (int i = 0; i < s->n_columns; i++) free(s->columns[i].ours), free(s->columns[i].theirs);
    free(s->columns);
    memset(s, 0, sizeof *s);
}

static void sources_free(hone_data_source *s, int n) {
    for (int i = 0; i < n; i++) source_free(&s[i]);
    free(s);
}

static int parse_source(const ctx *x, yaml_node_t *n, int kind, hone_data_source *s, hone_error *err) {
    char w[512];
    memset(s, 0, sizeof *s);
    s->number_of_samples = -1;
    s->ratio = -1;
    if (!x->from_set) s->line = (int)n->start_mark.line + 1, s->column = (int)n->start_mark.column + 1;
    if (n->type == YAML_SCALAR_NODE && !is_null(n)) { /* shorthand: just a path */
        if (!(s->path = strdup(scalar(n))) || !(s->format = strdup("auto"))) return hone_fail(err, "out of memory");
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE) return type_error(x, n, "datasets", "a mapping {path: ..., format: ...}", err);
    static const char *const skeys[] = {"path", "format", "columns", "number_of_samples", "ratio", "split", NULL};
    const char *const *formats = kind == HONE_DPO ? dpo_formats : sft_formats;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(x->doc, p->key), *v = yaml_document_get_node(x->doc, p->value);
        const char *ks = scalar(k);
        where(x, k, w, sizeof w);
        if (!ks) return hone_fail(err, "%s: datasets: keys must be strings", w);
        if (!strcmp(ks, "path") || !strcmp(ks, "format") || !strcmp(ks, "split")) {
            if (v->type != YAML_SCALAR_NODE || is_null(v)) return type_error(x, v, ks, "a string", err);
            const char *vs = scalar(v);
            if (!strcmp(ks, "format") && !in_choices(vs, formats)) return choice_error(x, v, "format", vs, formats, err);
            static const char *const splits[] = {"train", "eval", NULL};
            if (!strcmp(ks, "split") && !in_choices(vs, splits)) return choice_error(x, v, "split", vs, splits, err);
            char **dst = ks[0] == 'p' ? &s->path : ks[0] == 'f' ? &s->format : &s->split;
            if (set_str(dst, vs, err)) return -1;
        } else if (!strcmp(ks, "number_of_samples")) {
            if (parse_long(v, &s->number_of_samples) || s->number_of_samples < 0)
                return type_error(x, v, ks, "a non-negative integer", err);
        } else if (!strcmp(ks, "ratio")) {
            if (parse_f64(v, &s->ratio) || s->ratio <= 0) return type_error(x, v, ks, "a positive number", err);
        } else if (!strcmp(ks, "columns")) {
            if (v->type != YAML_MAPPING_NODE) return type_error(x, v, ks, "a mapping {our_name: their_name}", err);
            int m = (int)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
            if (!(s->columns = calloc(m ? m : 1, sizeof *s->columns))) return hone_fail(err, "out of memory");
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
                yaml_node_t *ck = yaml_document_get_node(x->doc, q->key), *cv = yaml_document_get_node(x->doc, q->value);
                if (!scalar(ck) || !scalar(cv) || is_null(cv)) return type_error(x, cv, "columns", "a string", err);
                hone_column_map *c = &s->columns[s->n_columns++];
                if (!(c->ours = strdup(scalar(ck))) || !(c->theirs = strdup(scalar(cv)))) return hone_fail(err, "out of memory");
            }
        } else {
            const char *sug = config_closest(ks, skeys);
            if (sug) return hone_fail(err, "%s: datasets: unknown key '%s' (did you mean '%s'?)", w, ks, sug);
            return hone_fail(err, "%s: datasets: unknown key '%s' (expected path, format, columns, number_of_samples, ratio, split)", w, ks);
        }
    }
    where(x, n, w, sizeof w);
    if (!s->path) return hone_fail(err, "%s: datasets: entry has no 'path'", w);
    if (s->number_of_samples >= 0 && s->ratio >= 0)
        return hone_fail(err, "%s: datasets: give number_of_samples or ratio, not both", w);
    if (!s->format && !(s->format = strdup("auto"))) return hone_fail(err, "out of memory");
    return 0;
}

/* ---------- ranges ---------- */

/* Numeric keys with a lower bound: checked where a key is read (with its file:line:col)
 * and again by config_validate (for values set in code). */
static const struct { const char *key; double min; int strict; const char *rule; } ranges[] = {
    {"threads", 0, 0, ">= 0 (0 = all cores)"},
    {"zero_stage", 0, 0, "0 or 1"},
    {"learning_rate", 0, 0, ">= 0"},
    {"lora_r", 0, 1, "> 0"},
    {"lora_dropout", 0, 0, ">= 0"},
    {"warmup_steps", 0, 0, ">= 0"},
    {"max_grad_norm", 0, 0, ">= 0 (0 disables clipping)"},
    {"weight_decay", 0, 0, ">= 0"},
    {"adam_epsilon", 0, 0, ">= 0"},
    {"logging_steps", 0, 1, "> 0 (a value below 1 is a ratio of the total steps)"},
    {"save_steps", 0, 1, "> 0 (a value below 1 is a ratio of the total steps)"},
};

static double key_number(const hone_train_config *c, const key_def *k) {
    const void *p = (const char *)c + k->off;
    return k->type == T_INT ? *(const int *)p : k->type == T_LONG ? (double)*(const long *)p : *(const double *)p;
}

/* The rule k's value in c breaks ("> 0 ..."), or NULL when it is in range (or k has none). */
static const char *range_broken(const hone_train_config *c, const key_def *k) {
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        if (strcmp(ranges[i].key, k->name)) continue;
        double v = key_number(c, k);
        return v < ranges[i].min || (ranges[i].strict && v == ranges[i].min) ? ranges[i].rule : NULL;
    }
    return NULL;
}

/* ---------- applying one key ---------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* A flat JSON object as compact text with sorted keys and each real in its shortest
 * round-tripping form (0.1, not 0.10000000000000001), as Python's json writes it; malloc'd. */
static char *kwargs_text(json_t *o) {
    if (!o) return NULL;
    size_t n = json_object_size(o), cap = 64, len = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    char *out = malloc(cap);
    if (!names || !out) { free(names); free(out); return NULL; }
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(o, key, v) names[i++] = key;
    qsort(names, n, sizeof *names, cmp_str);
    out[len++] = '{';
    for (i = 0; i < n; i++) {
        v = json_object_get(o, names[i]);
        char num[40];
        json_t *ks = json_string(names[i]);
        char *kt = json_dumps(ks, JSON_ENCODE_ANY), *vt = NULL;
        json_decref(ks);
        if (json_is_real(v)) {
            double d = json_real_value(v);
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(num, sizeof num, "%.*g", prec, d);
                if (strtod(num, NULL) == d) break;
            }
            vt = strdup(num);
        } else {
            vt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        }
        size_t need = len + (kt ? strlen(kt) : 0) + (vt ? strlen(vt) : 0) + 4;
        char *grown = need > cap ? realloc(out, cap = need * 2) : out;
        if (!kt || !vt || !grown) { free(kt); free(vt); free(names); free(grown ? grown : out); return NULL; }
        out = grown;
        len += (size_t)sprintf(out + len, "%s%s:%s", i ? "," : "", kt, vt);
        free(kt);
        free(vt);
    }
    out[len++] = '}';
    out[len] = 0;
    free(names);
    return out;
}

static int apply(hone_train_config *c, const key_def *k, const ctx *x, yaml_node_t *n, hone_error *err);

static int apply_value(hone_train_config *c, const key_def *k, const ctx *x, yaml_node_t *n, hone_error *err) {
    void *p = (char *)c + k->off;
    const char *key = k->name;
    int b;
    switch (k->type) {
    case T_STR:
        if (is_null(n)) return set_str(p, NULL, err);
        if (n->type != YAML_SCALAR_NODE) return type_error(x, n, key, "a string", err);
        return set_str(p, scalar(n), err);
    case T_F64:
        if (parse_f64(n, p)) return type_error(x, n, key, "a number", err);
        return 0;
    case T_OPT_F64:
        if (is_null(n)) return *(double *)p = -1, 0;
        if (parse_f64(n, p)) return type_error(x, n, key, "a number or null", err);
        return 0;
    case T_INT: {
        long v;
        if (parse_long(n, &v) || v < -2147483647L || v > 2147483647L) return type_error(x, n, key, "an integer", err);
        *(int *)p = (int)v;
        return 0;
    }
    case T_LONG:
        if (parse_long(n, p)) return type_error(x, n, key, "an integer", err);
        return 0;
    case T_OPT_LONG:
        if (is_null(n)) return *(long *)p = -1, 0;
        if (parse_long(n, p)) return type_error(x, n, key, "an integer or null", err);
        return 0;
    case T_BOOL:
        if (parse_bool(n, &b)) return type_error(x, n, key, "true or false", err);
        *(int *)p = b;
        return 0;
    case T_OPT_BOOL:
        if (is_null(n)) return *(int *)p = -1, 0;
        if (parse_bool(n, &b)) return type_error(x, n, key, "true, false or null", err);
        *(int *)p = b;
        return 0;
    case T_AUTO_BOOL:
        if (scalar(n) && !strcmp(scalar(n), "auto")) return *(int *)p = -1, 0;
        if (parse_bool(n, &b)) return type_error(x, n, key, "true, false or auto", err);
        *(int *)p = b;
        return 0;
    case T_ENUM:
        if (n->type != YAML_SCALAR_NODE || is_null(n)) return type_error(x, n, key, "a string", err);
        if (!in_choices(scalar(n), k->choices)) return choice_error(x, n, key, scalar(n), k->choices, err);
        return set_str(p, scalar(n), err);
    case T_CHAT:
        if (n->type != YAML_SCALAR_NODE || is_null(n)) return type_error(x, n, key, "a string", err);
        /* an inline Jinja template is recognised by its delimiters */
        if (!strstr(scalar(n), "{{") && !strstr(scalar(n), "{%") && !in_choices(scalar(n), k->choices))
            return choice_error(x, n, key, scalar(n), k->choices, err);
        return set_str(p, scalar(n), err);
    case T_RESUME:
        if (is_null(n)) return set_str(p, NULL, err);
        if (!parse_bool(n, &b)) return set_str(p, b ? "last" : NULL, err);
        if (n->type != YAML_SCALAR_NODE) return type_error(x, n, key, "a checkpoint path or true/false", err);
        return set_str(p, scalar(n), err);
    case T_ENUM_LIST: {
        int *cnt = (int *)((char *)c + k->count_off);
        if (is_null(n) && k->off != F(loss_type)) { /* the lora_* lists: null = PEFT's default */
            char ***dst = p;
            for (int j = 0; j < *cnt; j++) free((*dst)[j]);
            free(*dst);
            *dst = NULL;
            *cnt = 0;
            return 0;
        }
        int m = n->type == YAML_SEQUENCE_NODE ? (int)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;
        if (n->type == YAML_MAPPING_NODE || is_null(n) || m == 0)
            return type_error(x, n, key, "a string or a non-empty list of strings", err);
        char **list = calloc(m, sizeof *list);
        if (!list) return hone_fail(err, "out of memory");
        for (int i = 0; i < m; i++) {
            yaml_node_t *it = n->type == YAML_SEQUENCE_NODE ? yaml_document_get_node(x->doc, n->data.sequence.items.start[i]) : n;
            int bad = it->type != YAML_SCALAR_NODE ? type_error(x, it, key, "a string", err)
                    : !in_choices(scalar(it), k->choices) ? choice_error(x, it, key, scalar(it), k->choices, err) : 0;
            if (bad || !(list[i] = strdup(scalar(it)))) {
                for (int j = 0; j < i; j++) free(list[j]);
                free(list);
                return bad ? -1 : hone_fail(err, "out of memory");
            }
        }
        char ***dst = p;
        for (int j = 0; j < *cnt; j++) free((*dst)[j]);
        free(*dst);
        *dst = list;
        *cnt = m;
        return 0;
    }
    case T_F64_LIST: {
        int *cnt = (int *)((char *)c + k->count_off);
        double **dst = p;
        if (is_null(n)) { free(*dst); *dst = NULL; *cnt = 0; return 0; }
        if (n->type != YAML_SEQUENCE_NODE) return type_error(x, n, key, "a list of numbers", err);
        int m = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
        double *v = calloc(m ? m : 1, sizeof *v);
        if (!v) return hone_fail(err, "out of memory");
        for (int i = 0; i < m; i++)
            if (parse_f64(yaml_document_get_node(x->doc, n->data.sequence.items.start[i]), &v[i])) {
                free(v);
                return type_error(x, yaml_document_get_node(x->doc, n->data.sequence.items.start[i]), key, "a number", err);
            }
        free(*dst);
        *dst = v;
        *cnt = m;
        return 0;
    }
    case T_KWARGS: {
        json_t *o = NULL;
        if (is_null(n)) return set_str(p, NULL, err);
        if (n->type == YAML_SCALAR_NODE) {
            /* transformers also takes the JSON text of the mapping */
            json_error_t je;
            o = json_loads(scalar(n), 0, &je);
            if (!o || !json_is_object(o)) { json_decref(o); return type_error(x, n, key, "a mapping (or its JSON text)", err); }
        } else if (n->type == YAML_MAPPING_NODE) {
            o = json_object();
            for (yaml_node_pair_t *it = n->data.mapping.pairs.start; o && it < n->data.mapping.pairs.top; it++) {
                yaml_node_t *kn = yaml_document_get_node(x->doc, it->key), *vn = yaml_document_get_node(x->doc, it->value);
                if (!scalar(kn) || !scalar(vn)) { json_decref(o); return type_error(x, vn, key, "a mapping of numbers and strings", err); }
                double d;
                int b;
                json_t *v = is_null(vn) ? json_null()
                          : !parse_bool(vn, &b) ? json_boolean(b)
                          : vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !parse_f64(vn, &d)
                              ? (d == floor(d) && fabs(d) < 1e15 && !strpbrk(scalar(vn), ".eE") ? json_integer((json_int_t)d) : json_real(d))
                              : json_string(scalar(vn));
                json_object_set_new(o, scalar(kn), v);
            }
        } else {
            return type_error(x, n, key, "a mapping", err);
        }
        char *txt = kwargs_text(o);
        json_decref(o);
        if (!txt) return hone_fail(err, "out of memory");
        int rc = set_str(p, txt, err);
        free(txt);
        return rc;
    }
    case T_PEFT: {
        /* PEFT's LoraConfig names -> the lora_* keys (same types and checks) */
        static const char *const map[][2] = {{"r", "lora_r"}, {"lora_alpha", "lora_alpha"}, {"lora_dropout", "lora_dropout"},
                                             {"target_modules", "lora_target_modules"}, {"modules_to_save", "lora_modules_to_save"},
                                             {"use_rslora", "use_rslora"}, {"init_lora_weights", "init_lora_weights"},
                                             {"bias", "lora_bias"}, {"use_dora", "use_dora"}};
        if (is_null(n)) return 0;
        if (n->type != YAML_MAPPING_NODE) return type_error(x, n, key, "a mapping of LoraConfig keys", err);
        for (yaml_node_pair_t *it = n->data.mapping.pairs.start; it < n->data.mapping.pairs.top; it++) {
            yaml_node_t *kn = yaml_document_get_node(x->doc, it->key), *vn = yaml_document_get_node(x->doc, it->value);
            const char *name = scalar(kn);
            char w[512];
            where(x, kn, w, sizeof w);
            if (!name) return hone_fail(err, "%s: peft: keys must be strings", w);
            if (!strcmp(name, "peft_type") || !strcmp(name, "task_type")) {
                const char *want = name[0] == 'p' ? "LORA" : "CAUSAL_LM", *got = scalar(vn);
                if (!got || strcmp(got, want))
                    return hone_fail(err, "%s: peft.%s: '%s' is not supported (hone trains %s)", w, name, got ? got : "?",
                                     name[0] == 'p' ? "LoRA adapters: peft_type LORA" : "causal LMs: task_type CAUSAL_LM");
                continue;
            }
            const char *ours = NULL;
            for (size_t i = 0; i < sizeof map / sizeof *map; i++)
                if (!strcmp(map[i][0], name)) ours = map[i][1];
            if (!ours)
                return hone_fail(err, "%s: peft.%s: not a LoraConfig key hone supports (r, lora_alpha, lora_dropout, target_modules, "
                                      "modules_to_save, use_rslora, init_lora_weights, bias, use_dora, task_type, peft_type)", w, name);
            const key_def *kd = NULL;
            for (size_t i = 0; i < N_KEYS; i++)
                if (!strcmp(keys[i].name, ours)) kd = &keys[i];
            if (apply(c, kd, x, vn, err) < 0) return -1;
        }
        *(int *)p = 1;
        c->use_peft = 1;
        return 0;
    }
    case T_DATASETS: {
        if (n->type != YAML_SEQUENCE_NODE) return type_error(x, n, key, "a list of {path, format, ...}", err);
        int m = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
        hone_data_source *s = calloc(m ? m : 1, sizeof *s);
        if (!s) return hone_fail(err, "out of memory");
        for (int i = 0; i < m; i++)
            if (parse_source(x, yaml_document_get_node(x->doc, n->data.sequence.items.start[i]), c->kind, &s[i], err)) {
                sources_free(s, i + 1);
                return -1;
            }
        sources_free(c->data.datasets, c->data.n_datasets);
        c->data.datasets = s;
        c->data.n_datasets = m;
        return 0;
    }
    }
    return hone_fail(err, "internal: bad key type");
}

/* apply_value, then the key's range: a value out of range is an error at its
 * file:line:col, and the key keeps its previous value. */
static int apply(hone_train_config *c, const key_def *k, const ctx *x, yaml_node_t *n, hone_error *err) {
    if (k->type != T_INT && k->type != T_LONG && k->type != T_F64) return apply_value(c, k, x, n, err);
    char old[sizeof(double) > sizeof(long) ? sizeof(double) : sizeof(long)];
    void *p = (char *)c + k->off;
    size_t size = k->type == T_INT ? sizeof(int) : k->type == T_LONG ? sizeof(long) : sizeof(double);
    memcpy(old, p, size);
    if (apply_value(c, k, x, n, err)) return -1;
    const char *rule = range_broken(c, k);
    if (!rule) return 0;
    memcpy(p, old, size);
    char w[512];
    where(x, n, w, sizeof w);
    return hone_fail(err, "%s: %s: must be %s, got %s", w, k->name, rule, scalar(n));
}

/* TRL / transformers keys that configs written for TRL carry but that change nothing
 * in hone: accepted (and listed in c->ignored for the log) when their value is the one
 * hone's behaviour matches, or any value where `value` is NULL. */
static const struct { const char *name, *value; } compat_keys[] = {
    {"run_name", NULL}, {"logging_strategy", "steps"},
    {"push_to_hub", "false"}, {"hub_model_id", NULL}, {"dataset_num_proc", NULL},
    {"dataloader_num_workers", NULL}, {"dataloader_pin_memory", NULL}, {"remove_unused_columns", NULL},
    {"disable_tqdm", NULL}, {"do_train", NULL}, {"do_eval", NULL},
    {"log_level", NULL}, {"fp16", "false"}, {"tf32", NULL},
    {"use_liger_kernel", "false"}, {"torch_compile", "false"}, {"dataset_text_field", "text"},
    {"include_tokens_per_second", NULL}, {"save_safetensors", "true"}, {"ddp_find_unused_parameters", NULL},
    {"disable_dropout", "true"}, {"trust_remote_code", "false"},
};

/* 1: an ignorable compatibility key (recorded), 0: not one, -1: one with a value hone cannot honour. */
static int compat_key(hone_train_config *c, const char *name, const yaml_node_t *v, const char *w, hone_error *err) {
    for (size_t i = 0; i < sizeof compat_keys / sizeof *compat_keys; i++) {
        if (strcmp(compat_keys[i].name, name)) continue;
        const char *want = compat_keys[i].value, *got = scalar(v);
        int b;
        if (want && (!got || (strcmp(got, want) && !(!parse_bool(v, &b) && b == !strcmp(want, "true") && (!strcmp(want, "true") || !strcmp(want, "false"))))))
            return hone_fail(err, "%s: %s: hone supports only '%s' here (got %s)", w, name, want, got ? got : "a list or mapping");
        char **nk = realloc(c->ignored, sizeof *nk * (size_t)(c->n_ignored + 1));
        if (!nk) return hone_fail(err, "out of memory");
        c->ignored = nk;
        if (!(c->ignored[c->n_ignored] = strdup(name))) return hone_fail(err, "out of memory");
        c->n_ignored++;
        return 1;
    }
    return 0;
}

static int is_compat_key(const char *name) {
    for (size_t i = 0; i < sizeof compat_keys / sizeof *compat_keys; i++)
        if (!strcmp(compat_keys[i].name, name)) return 1;
    return 0;
}

/* Finds key for kind; on failure writes "unknown key" with a suggestion. */
static const key_def *find_key(const char *name, int kind, const char *w, hone_error *err) {
    int mask = kind == HONE_DPO ? K_DPO : K_SFT;
    int other = 0; /* the name exists for the other command only (a name may have one entry per command) */
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].name, name)) {
            if (keys[i].kinds & mask) return &keys[i];
            other = 1;
        }
    if (other) {
        hone_fail(err, "%s: key '%s' is for hone %s, not hone %s", w, name, kind_name(kind == HONE_DPO ? HONE_SFT : HONE_DPO), kind_name(kind));
        return NULL;
    }
    const char *names[N_KEYS + 1];
    int m = 0;
    for (size_t i = 0; i < N_KEYS; i++) if (keys[i].kinds & mask) names[m++] = keys[i].name;
    names[m] = NULL;
    const char *s = config_closest(name, names);
    if (s) hone_fail(err, "%s: unknown key '%s' (did you mean '%s'?)", w, name, s);
    else hone_fail(err, "%s: unknown key '%s' (see docs/config.md)", w, name);
    return NULL;
}

/* ---------- public API ---------- */

int config_defaults(hone_train_config *c, int kind, hone_error *err) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->seed = 42;
    c->learning_rate = kind == HONE_DPO ? 1e-6 : 2e-5;
    c->num_train_epochs = 3.0;
    c->max_steps = -1;
    c->per_device_train_batch_size = 8;
    c->per_device_eval_batch_size = 8;
    c->gradient_accumulation_steps = 1;
    c->max_grad_norm = 1.0;
    c->adam_beta1 = 0.9;
    c->adam_beta2 = 0.999;
    c->adam_epsilon = 1e-8;
    c->gradient_checkpointing = 1;
    c->data_seed = -1;
    c->logging_steps = 10;
    c->eval_steps = -1;
    c->save_steps = 500;
    c->save_total_limit = -1;
    c->max_length = 1024;
    c->completion_only_loss = -1;
    c->beta = 0.1;
    c->f_alpha_divergence_coef = 0.5;
    c->ld_alpha = -1;
    c->neftune_noise_alpha = -1;
    c->eval_packing = -1;
    c->greater_is_better = -1;
    c->pad_to_multiple_of = -1;
    c->precompute_ref_batch_size = -1;
    c->rpo_alpha = -1;
    c->discopop_tau = 0.05;
    c->ref_model_mixup_alpha = 0.6;
    c->ref_model_sync_steps = 512;
    c->max_prompt_length = -1;
    c->max_completion_length = -1;
    c->shared_prompt = -1;
    c->lora_r = 16;
    c->lora_alpha = 32;
    c->lora_dropout = 0.05;
    c->n_loss_type = 1;
    c->loss_type = calloc(1, sizeof *c->loss_type);
    c->n_report_to = 1;
    c->report_to = calloc(1, sizeof *c->report_to);
    if (!c->loss_type || !(c->loss_type[0] = strdup("sigmoid")) || !c->report_to || !(c->report_to[0] = strdup("none")) || !(c->output_dir = strdup("trainer_output")) ||
        !(c->lr_scheduler_type = strdup("linear")) || !(c->sft_loss_type = strdup("nll")) || !(c->packing_strategy = strdup("bfd")) || !(c->eval_strategy = strdup("no")) || !(c->train_sampling_strategy = strdup("random")) || !(c->save_strategy = strdup("steps")) ||
        !(c->chat_template = strdup("auto")) || !(c->save_dtype = strdup("float32")) || !(c->truncation_mode = strdup("keep_start")) ||
        !(c->f_divergence_type = strdup("reverse_kl")) || !(c->init_lora_weights = strdup("true")) || !(c->lora_bias = strdup("none")) ||
        !(c->bnb_4bit_quant_type = strdup("nf4")) || !(c->bnb_4bit_compute_dtype = strdup("float32")) || !(c->base_dtype = strdup("auto")) ||
        !(c->optim = strdup("adamw_torch")) || !(c->grad_accum_dtype = strdup("fp64"))) {
        config_free(c);
        return hone_fail(err, "out of memory");
    }
    return 0;
}

int config_optim_kind(const char *optim) {
    return optim && strstr(optim, "8bit") ? 1 : 0; /* HONE_OPTIM_ADAMW_8BIT : HONE_OPTIM_ADAMW */
}

int config_reports_to(const hone_train_config *c, const char *integration) {
    for (int i = 0; i < c->n_report_to; i++)
        if (!strcmp(c->report_to[i], integration) || (!strcmp(c->report_to[i], "all") && strcmp(integration, "none"))) return 1;
    return 0;
}

void config_free(hone_train_config *c) {
    if (!c) return;
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->alias_of) continue;
        void *p = (char *)c + k->off;
        switch (k->type) {
        case T_STR: case T_ENUM: case T_CHAT: case T_RESUME: case T_KWARGS: free(*(char **)p); break;
        case T_F64_LIST: free(*(double **)p); break;
        case T_ENUM_LIST: {
            char **l = *(char ***)p;
            int cnt = *(int *)((char *)c + k->count_off);
            for (int j = 0; l && j < cnt; j++) free(l[j]);
            free(l);
            break;
        }
        case T_DATASETS: sources_free(c->data.datasets, c->data.n_datasets); break;
        default: break;
        }
    }
    free(c->source);
    for (int i = 0; i < c->n_ignored; i++) free(c->ignored[i]);
    free(c->ignored);
    memset(c, 0, sizeof *c);
}

static int load_doc(hone_train_config *c, yaml_parser_t *parser, const char *name, hone_error *err) {
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc))
        return hone_fail(err, "%s:%zu:%zu: YAML syntax error: %s%s%s", name, parser->problem_mark.line + 1,
                         parser->problem_mark.column + 1, parser->problem ? parser->problem : "unknown",
                         parser->context ? " " : "", parser->context ? parser->context : "");
    int rc = 0;
    ctx x = {&doc, name, 0};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    char w[512];
    if (!root) goto done; /* empty file: all defaults */
    if (root->type != YAML_MAPPING_NODE) {
        where(&x, root, w, sizeof w);
        rc = hone_fail(err, "%s: expected a mapping of key: value at the top level", w);
        goto done;
    }
    const key_def *seen[N_KEYS] = {0};
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top && !rc; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key), *v = yaml_document_get_node(&doc, p->value);
        where(&x, k, w, sizeof w);
        if (!scalar(k)) { rc = hone_fail(err, "%s: keys must be strings", w); break; }
        if (!strcmp(scalar(k), "searcher") || !strcmp(scalar(k), "hyperparameters")) {
            c->search_blocks = 1; /* a search's blocks: train/search.h reads them */
            continue;
        }
        int compat = compat_key(c, scalar(k), v, w, err);
        if (compat) { rc = compat < 0 ? -1 : 0; continue; }
        const key_def *kd = find_key(scalar(k), c->kind, w, err);
        if (!kd) { rc = -1; break; }
        /* a key given twice (or a key and its alias) is almost always a mistake */
        size_t slot = 0;
        for (size_t i = 0; i < N_KEYS; i++) if (keys[i].off == kd->off) { slot = i; break; }
        if (seen[slot]) { rc = hone_fail(err, "%s: key '%s' given twice (also as '%s')", w, scalar(k), seen[slot]->name); break; }
        seen[slot] = kd;
        rc = apply(c, kd, &x, v, err);
    }
done:
    yaml_document_delete(&doc);
    return rc;
}

int config_load_string(hone_train_config *c, const char *yaml, const char *name, int kind, hone_error *err) {
    if (config_defaults(c, kind, err)) return -1;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) { config_free(c); return hone_fail(err, "out of memory"); }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    int rc = load_doc(c, &parser, name, err);
    yaml_parser_delete(&parser);
    if (rc) config_free(c);
    else if (!(c->source = strdup(name))) { config_free(c); return hone_fail(err, "out of memory"); }
    return rc;
}

int config_load(hone_train_config *c, const char *path, int kind, hone_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return hone_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (config_defaults(c, kind, err)) { fclose(f); return -1; }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) { fclose(f); config_free(c); return hone_fail(err, "out of memory"); }
    yaml_parser_set_input_file(&parser, f);
    int rc = load_doc(c, &parser, path, err);
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc) config_free(c);
    else if (!(c->source = strdup(path))) { config_free(c); return hone_fail(err, "out of memory"); }
    return rc;
}

int config_set(hone_train_config *c, const char *key, const char *value, hone_error *err) {
    char w[512];
    snprintf(w, sizeof w, "--set %s", key);
    /* the keys a file accepts, the ignorable TRL ones included (fp16=false) */
    int compat = is_compat_key(key);
    const key_def *kd = compat ? NULL : find_key(key, c->kind, "--set", err);
    if (!compat && !kd) return -1;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return hone_fail(err, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)value, strlen(value));
    int ok = yaml_parser_load(&parser, &doc);
    int stringy = kd && (kd->type == T_STR || kd->type == T_CHAT || kd->type == T_RESUME);
    if (ok && stringy && yaml_document_get_root_node(&doc) &&
        yaml_document_get_root_node(&doc)->type != YAML_SCALAR_NODE) {
        yaml_document_delete(&doc);
        ok = 0;
    }
    if (!ok && stringy) { /* not YAML (e.g. an inline Jinja template): take the text as it is */
        yaml_document_initialize(&doc, NULL, NULL, NULL, 1, 1);
        yaml_document_add_scalar(&doc, NULL, (yaml_char_t *)value, (int)strlen(value), YAML_SINGLE_QUOTED_SCALAR_STYLE);
        ok = 1;
    }
    if (!ok) {
        hone_fail(err, "--set %s=%s: not a valid YAML value: %s", key, value, parser.problem ? parser.problem : "?");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc;
    if (!root) { /* empty value: a null scalar */
        yaml_document_delete(&doc);
        yaml_document_initialize(&doc, NULL, NULL, NULL, 1, 1);
        yaml_document_add_scalar(&doc, NULL, (yaml_char_t *)"", 0, YAML_PLAIN_SCALAR_STYLE);
        root = yaml_document_get_root_node(&doc);
    }
    ctx x = {&doc, "--set", 1};
    rc = kd ? apply(c, kd, &x, root, err) : compat_key(c, key, root, "--set", err) < 0 ? -1 : 0;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int config_set_arg(hone_train_config *c, const char *kv, hone_error *err) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return hone_fail(err, "--set %s: expected key=value", kv);
    char key[128];
    size_t n = (size_t)(eq - kv);
    if (n >= sizeof key) return hone_fail(err, "--set: key too long");
    memcpy(key, kv, n);
    key[n] = 0;
    return config_set(c, key, eq + 1, err);
}

int config_validate(const hone_train_config *c, hone_error *err) {
    const char *src = c->source ? c->source : "config";
    if (!c->model_name_or_path || !*c->model_name_or_path)
        return hone_fail(err, "%s: model_name_or_path is required", src);
    if (c->data.n_datasets == 0) return hone_fail(err, "%s: datasets: at least one source is required", src);
    if (c->per_device_train_batch_size < 1 || c->per_device_eval_batch_size < 1)
        return hone_fail(err, "%s: per_device_*_batch_size must be >= 1", src);
    if (c->gradient_accumulation_steps < 1) return hone_fail(err, "%s: gradient_accumulation_steps must be >= 1", src);
    if (c->zero_stage != 0 && c->zero_stage != 1)
        return hone_fail(err, "%s: zero_stage must be 0 or 1 (stage 1 shards the AdamW moments over the MPI ranks), got %d", src, c->zero_stage);
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *rule = keys[i].kinds & (c->kind == HONE_DPO ? K_DPO : K_SFT) ? range_broken(c, &keys[i]) : NULL;
        if (rule) return hone_fail(err, "%s: %s must be %s, got %g", src, keys[i].name, rule, key_number(c, &keys[i]));
    }
    if (c->max_steps <= 0 && c->max_steps != -1) return hone_fail(err, "%s: max_steps must be > 0 or -1", src);
    if (c->max_steps == -1 && c->num_train_epochs <= 0) return hone_fail(err, "%s: num_train_epochs must be > 0 when max_steps is -1", src);
    if (c->data.test_size < 0) return hone_fail(err, "%s: test_size must be >= 0", src);
    if (c->warmup_steps < 0 || c->warmup_ratio < 0 || c->warmup_ratio > 1)
        return hone_fail(err, "%s: warmup_steps must be >= 0 and warmup_ratio in [0, 1]", src);
    if (c->load_best_model_at_end) {
        /* transformers' rules: the best model must be a checkpoint of an evaluated step */
        if (strcmp(c->eval_strategy, "steps") || strcmp(c->save_strategy, "steps"))
            return hone_fail(err, "%s: load_best_model_at_end needs eval_strategy and save_strategy both 'steps' (got %s and %s)", src,
                             c->eval_strategy, c->save_strategy);
        double ev = c->eval_steps > 0 ? c->eval_steps : c->logging_steps;
        if (ev >= 1 && c->save_steps >= 1 && fmod(c->save_steps, ev) != 0)
            return hone_fail(err, "%s: load_best_model_at_end needs save_steps (%g) to be a multiple of eval_steps (%g)", src,
                             c->save_steps, ev);
    }
    if (c->lr_scheduler_type && !strcmp(c->lr_scheduler_type, "reduce_lr_on_plateau") && !strcmp(c->eval_strategy, "no"))
        return hone_fail(err, "%s: lr_scheduler_type reduce_lr_on_plateau needs evaluations (eval_strategy steps or epoch)", src);
    if (c->adam_beta1 < 0 || c->adam_beta1 >= 1 || c->adam_beta2 < 0 || c->adam_beta2 >= 1)
        return hone_fail(err, "%s: adam_beta1 and adam_beta2 must be in [0, 1)", src);
    if (c->max_length == 0 || c->max_length < -1) return hone_fail(err, "%s: max_length must be > 0 or null", src);
    if (c->packing && c->max_length < 0) return hone_fail(err, "%s: packing needs max_length", src);
    if (c->kind == HONE_SFT) {
        if (c->pad_to_multiple_of == 0 || c->pad_to_multiple_of < -1 || c->pad_to_multiple_of > 65536)
            return hone_fail(err, "%s: pad_to_multiple_of must be in [1, 65536] or null", src);
        if (c->label_smoothing_factor < 0 || c->label_smoothing_factor >= 1)
            return hone_fail(err, "%s: label_smoothing_factor must be in [0, 1)", src);
        if (c->label_smoothing_factor > 0 && !strcmp(c->sft_loss_type, "dft"))
            return hone_fail(err, "%s: label_smoothing_factor has no effect with loss_type dft (TRL applies it to nll only)", src);
        if (c->neftune_noise_alpha != -1 && c->neftune_noise_alpha < 0) return hone_fail(err, "%s: neftune_noise_alpha must be >= 0 or null", src);
    }
    if (c->kind == HONE_DPO) {
        if (c->loss_weights && c->n_loss_weights != c->n_loss_type)
            return hone_fail(err, "%s: loss_weights has %d entries but loss_type has %d", src, c->n_loss_weights, c->n_loss_type);
        if (c->ld_alpha != -1 && (c->ld_alpha < 0 || c->ld_alpha > 1)) return hone_fail(err, "%s: ld_alpha must be in [0, 1]", src);
        if (c->label_smoothing < 0 || c->label_smoothing >= 0.5) return hone_fail(err, "%s: label_smoothing must be in [0, 0.5)", src);
        if (c->beta <= 0 && !(c->n_loss_type == 1 && !strcmp(c->loss_type[0], "sft")))
            return hone_fail(err, "%s: beta must be > 0", src);
        if (c->precompute_ref_log_probs && c->sync_ref_model)
            return hone_fail(err, "%s: precompute_ref_log_probs and sync_ref_model cannot be used together", src);
        if (c->precompute_ref_batch_size == 0 || c->precompute_ref_batch_size < -1)
            return hone_fail(err, "%s: precompute_ref_batch_size must be >= 1 or null", src);
        if (c->reference_free && c->sync_ref_model)
            return hone_fail(err, "%s: reference_free and sync_ref_model cannot be used together", src);
        if (c->use_peft && c->sync_ref_model)
            return hone_fail(err, "%s: sync_ref_model cannot be used with use_peft (the reference is the policy with its adapters off; "
                                  "TRL refuses it too)", src);
    }
    if (c->use_dora) return hone_fail(err, "%s: use_dora: DoRA adapters are not supported (hone trains plain LoRA)", src);
    if (c->load_in_4bit && c->load_in_8bit) return hone_fail(err, "%s: load_in_4bit and load_in_8bit: choose one", src);
    if ((c->load_in_4bit || c->load_in_8bit) && !c->use_peft)
        return hone_fail(err, "%s: %s: quantisation holds the frozen base of a LoRA run (QLoRA); set use_peft: true (a quantised "
                              "model cannot be trained in full)", src, c->load_in_4bit ? "load_in_4bit" : "load_in_8bit");
    if (c->base_dtype && !strcmp(c->base_dtype, "bfloat16") && !c->use_peft)
        return hone_fail(err, "%s: base_dtype: bfloat16 holds the frozen base of a LoRA run; set use_peft: true", src);
    if (c->lora_dropout >= 1) return hone_fail(err, "%s: lora_dropout must be in [0, 1), got %g", src, c->lora_dropout);
    return 0;
}

int config_dump_json(const hone_train_config *c, FILE *f, hone_error *err) {
    json_t *o = json_object();
    if (!o) return hone_fail(err, "out of memory");
    json_object_set_new(o, "command", json_string(kind_name(c->kind)));
    int mask = c->kind == HONE_DPO ? K_DPO : K_SFT;
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->alias_of || !(k->kinds & mask)) continue;
        const void *p = (const char *)c + k->off;
        json_t *v = NULL;
        switch (k->type) {
        case T_STR: case T_ENUM: case T_CHAT: case T_RESUME: {
            const char *s = *(char *const *)p;
            v = s ? json_string(s) : json_null();
            break;
        }
        case T_KWARGS: {
            const char *s = *(char *const *)p;
            v = s ? json_loads(s, 0, NULL) : json_object();
            break;
        }
        case T_F64: v = json_real(*(const double *)p); break;
        case T_OPT_F64: v = *(const double *)p == -1 ? json_null() : json_real(*(const double *)p); break;
        case T_INT: v = json_integer(*(const int *)p); break;
        case T_LONG: v = json_integer(*(const long *)p); break;
        case T_OPT_LONG: v = *(const long *)p == -1 ? json_null() : json_integer(*(const long *)p); break;
        case T_BOOL: v = json_boolean(*(const int *)p); break;
        case T_OPT_BOOL: v = *(const int *)p == -1 ? json_null() : json_boolean(*(const int *)p); break;
        case T_AUTO_BOOL: v = *(const int *)p == -1 ? json_string("auto") : json_boolean(*(const int *)p); break;
        case T_ENUM_LIST: {
            char *const *l = *(char *const *const *)p;
            int cnt = *(const int *)((const char *)c + k->count_off);
            if (!l) { v = json_null(); break; }
            v = json_array();
            for (int j = 0; j < cnt; j++) json_array_append_new(v, json_string(l[j]));
            break;
        }
        case T_PEFT: v = json_null(); break; /* its values are in the lora_* keys */
        case T_F64_LIST:
            if (!c->loss_weights) { v = json_null(); break; }
            v = json_array();
            for (int j = 0; j < c->n_loss_weights; j++) json_array_append_new(v, json_real(c->loss_weights[j]));
            break;
        case T_DATASETS:
            v = json_array();
            for (int j = 0; j < c->data.n_datasets; j++) {
                const hone_data_source *s = &c->data.datasets[j];
                json_t *d = json_object(), *cols = json_object();
                json_object_set_new(d, "path", json_string(s->path));
                json_object_set_new(d, "format", json_string(s->format));
                json_object_set_new(d, "split", json_string(s->split ? s->split : "train"));
                for (int q = 0; q < s->n_columns; q++) json_object_set_new(cols, s->columns[q].ours, json_string(s->columns[q].theirs));
                json_object_set_new(d, "columns", cols);
                if (s->number_of_samples >= 0) json_object_set_new(d, "number_of_samples", json_integer(s->number_of_samples));
                if (s->ratio >= 0) json_object_set_new(d, "ratio", json_real(s->ratio));
                json_array_append_new(v, d);
            }
            break;
        }
        json_object_set_new(o, k->name, v ? v : json_null());
    }
    int rc = json_dumpf(o, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    fputc('\n', f);
    json_decref(o);
    if (rc) return hone_fail(err, "cannot write config JSON");
    return 0;
}

char *config_json_text(const hone_train_config *c, hone_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) { hone_fail(err, "out of memory"); return NULL; }
    int rc = config_dump_json(c, f, err);
    fclose(f);
    if (rc < 0) { free(buf); return NULL; }
    return buf;
}
