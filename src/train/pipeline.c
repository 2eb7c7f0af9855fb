/* train/pipeline.c — configuration-driven setup shared by sft and dpo (pipeline.h). */
#include "train/pipeline.h"
#include "base/util.h"
#include "dist/dist.h"
#include "model/qweight.h"
#include "simd/kernels.h"
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes the staged tokenizer files a complete chat model for checkpoints and final/:
 * tokenizer_config.json's chat_template is the template trained with (chat_template_jinja:
 * a built-in as Jinja, a Jinja one as given; the base model's own is already there) and generation_config.json (the
 * base's, if any) gets bos / eos / pad as trained, eos listing the end-of-turn token too. */
static int write_chat_files(hone_pipeline *p, const hone_train_config *cfg, hone_error *err) {
    char path[4200];
    hone_path_join(path, sizeof path, p->tok_dir, "tokenizer_config.json");
    json_error_t je;
    json_t *tc = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!tc) return hone_fail(err, "%s:%d: %s", path, je.line, je.text);
    /* the base model's own template is already there (maybe with other named ones) */
    char *src = strcmp(p->tpl.name, "model") || cfg->chat_template_path ? chat_template_jinja(&p->tpl) : NULL;
    int rc = 0;
    if (src) {
        json_object_set_new(tc, "chat_template", json_string(src));
        char *txt = json_dumps(tc, JSON_INDENT(2));
        rc = txt ? hone_write_file(path, txt, strlen(txt), err) : hone_fail(err, "out of memory");
        free(txt);
        free(src);
    }
    json_decref(tc);
    if (rc) return rc;
    char base[4200];
    hone_path_join(base, sizeof base, p->model_dir, "generation_config.json");
    json_t *gc = hone_file_exists(base) ? json_load_file(base, 0, &je) : NULL;
    if (!gc) gc = json_object();
    int bos = tokenizer_bos_id(p->tok), eos = p->eos_id, pad = tokenizer_pad_id(p->tok);
    int stop = p->tpl.stop && p->tpl.stop[0] ? tokenizer_token_to_id(p->tok, p->tpl.stop) : -1;
    json_object_set_new(gc, "bos_token_id", bos >= 0 ? json_integer(bos) : json_null());
    if (stop >= 0 && stop != eos) {
        json_t *a = json_array();
        if (eos >= 0) json_array_append_new(a, json_integer(eos));
        json_array_append_new(a, json_integer(stop));
        json_object_set_new(gc, "eos_token_id", a);
    } else json_object_set_new(gc, "eos_token_id", eos >= 0 ? json_integer(eos) : json_null());
    json_object_set_new(gc, "pad_token_id", pad >= 0 ? json_integer(pad) : json_null());
    char *txt = json_dumps(gc, JSON_INDENT(2));
    json_decref(gc);
    hone_path_join(path, sizeof path, p->tok_dir, "generation_config.json");
    rc = txt ? hone_write_file(path, txt, strlen(txt), err) : hone_fail(err, "out of memory");
    free(txt);
    return rc;
}

/* The lora_* keys as an adapter configuration. */
void pipeline_lora_config(const hone_train_config *cfg, hone_lora_config *lc) {
    memset(lc, 0, sizeof *lc);
    lc->r = cfg->lora_r;
    lc->alpha = cfg->lora_alpha;
    lc->dropout = cfg->lora_dropout;
    lc->rslora = cfg->use_rslora;
    const char *in = cfg->init_lora_weights ? cfg->init_lora_weights : "true";
    lc->init = !strcmp(in, "gaussian") ? LORA_INIT_GAUSSIAN : (!strcmp(in, "false") || !strcmp(in, "False")) ? LORA_INIT_FALSE : LORA_INIT_DEFAULT;
    if (!cfg->lora_target_modules) lc->targets = (1u << LORA_Q) | (1u << LORA_V); /* PEFT's default for Llama, Gemma, Qwen2 */
    for (int i = 0; i < cfg->n_lora_target_modules; i++)
        lc->targets |= !strcmp(cfg->lora_target_modules[i], "all-linear") ? LORA_ALL_LINEAR
                                                                          : 1u << lora_module_from_name(cfg->lora_target_modules[i]);
    for (int i = 0; i < cfg->n_lora_modules_to_save; i++) {
        if (!strcmp(cfg->lora_modules_to_save[i], "embed_tokens")) lc->save_embed = 1;
        if (!strcmp(cfg->lora_modules_to_save[i], "lm_head")) lc->save_lm_head = 1;
    }
}

/* What the frozen base's decoder linears are held in (model/qweight.h; HONE_Q_F32: fp32) for a
 * base whose tensors are stored as `stored`: load_in_4bit / load_in_8bit, else base_dtype (auto:
 * bf16 when the checkpoint is bf16, a lossless hold). Only LoRA runs hold anything. */
int pipeline_held_type(const hone_train_config *cfg, const char *stored) {
    if (!cfg->use_peft) return HONE_Q_F32;
    if (cfg->load_in_4bit) return !strcmp(cfg->bnb_4bit_quant_type, "fp4") ? HONE_Q_FP4 : HONE_Q_NF4;
    if (cfg->load_in_8bit) return HONE_Q_INT8;
    if (!strcmp(cfg->base_dtype, "bfloat16")) return HONE_Q_BF16;
    if (!strcmp(cfg->base_dtype, "auto") && !strcmp(stored, "bfloat16")) return HONE_Q_BF16;
    return HONE_Q_F32;
}

/* the base and adapters of a LoRA run, after the vocabulary is final */
static int setup_lora(hone_pipeline *p, const hone_train_config *cfg, int adapter, hone_error *err) {
    const char *dir = cfg->model_name_or_path;
    if (adapter) {
        if (lora_load(&p->lora, &p->model, dir, err) < 0) return hone_fail_prefix(err, "model_name_or_path");
        if (!cfg->use_peft) { /* continue training this adapter (is_trainable) */
            char *rp = realpath(p->model_dir, NULL);
            snprintf(p->lora.cfg.base_model, sizeof p->lora.cfg.base_model, "%s", rp ? rp : p->model_dir);
            free(rp);
            p->have_lora = 1;
            lora_attach(&p->model, &p->lora);
            return 0;
        }
        /* use_peft on an adapter: its adapters are folded into the base, fresh ones train on top */
        int rc = lora_merge(&p->model, &p->lora, err);
        lora_free(&p->lora);
        if (rc < 0) return hone_fail_prefix(err, "model_name_or_path %s", dir);
        /* the merged base is held only now (a held base cannot take a merge) */
        if (model_hold(&p->model, pipeline_held_type(cfg, p->model.stored_dtype), cfg->use_bnb_nested_quant, err) < 0)
            return hone_fail_prefix(err, "model_name_or_path %s", dir);
    }
    if (!cfg->use_peft) return 0;
    hone_lora_config lc;
    pipeline_lora_config(cfg, &lc);
    /* the new adapter's base is what was loaded: model_name_or_path itself (an adapter dir
     * then names a chain hone resolves, model_load_merged) */
    char *rp = realpath(dir, NULL);
    snprintf(lc.base_model, sizeof lc.base_model, "%s", rp ? rp : dir);
    free(rp);
    if (lora_init(&p->lora, &p->model, &lc, err) < 0) return -1;
    lora_init_weights(&p->lora, &p->model, (uint64_t)cfg->seed ^ 0x6c6f7261696e6974ULL /* "lorainit" */);
    p->have_lora = 1;
    lora_attach(&p->model, &p->lora);
    return 0;
}

/* one line on what a LoRA run trains */
static void report_lora(const hone_pipeline *p, int bf16) {
    if (!p->have_lora) return;
    const hone_lora *lo = &p->lora;
    char mods[160] = "";
    for (int i = 0; i < LORA_NMOD; i++)
        if (lo->cfg.targets >> i & 1) snprintf(mods + strlen(mods), sizeof mods - strlen(mods), "%s%s", mods[0] ? "," : "", lora_module_name(i));
    size_t n = 0;
    for (int i = 0; i < lo->n_params; i++) n += lo->params[i].numel;
    size_t total = model_config_num_params(&p->model.cfg);
    fprintf(stderr, "lora: r %d, alpha %g (scale %g%s) on %s%s%s; %zu trainable of %zu parameters (%.2f%%), base frozen\n", lo->cfg.r,
            lo->cfg.alpha, lo->scale, lo->cfg.rslora ? ", rslora" : "", mods[0] ? mods : "no linear", lo->embed ? " + embed_tokens" : "",
            lo->lm_head ? " + lm_head" : "", n, total, 100.0 * n / (double)total);
    /* the products through the held base follow `bf16` (fp32, or autocast's bf16 operands);
     * bnb_4bit_compute_dtype only names what PyTorch would use */
    if (p->model.held)
        fprintf(stderr, "lora: base linears held as %s%s: %.1f MB (fp32: %.1f MB), weights %.1f MB in all; %s\n",
                quant_type_name(p->model.held), p->model.held_nested ? " (nested absmax)" : "", model_held_bytes(&p->model) / 1e6,
                (double)(total - p->model.num_floats) * 4 / 1e6, model_weight_bytes(&p->model) / 1e6,
                bf16 ? "products with the base in bf16 (dequantised inside the GEMM's packing)"
                                                  : "products in fp32 (dequantised inside the GEMM's packing)");
}

int pipeline_init(hone_pipeline *p, const hone_train_config *cfg, hone_error *err) {
    memset(p, 0, sizeof *p);
    const char *dir = cfg->model_name_or_path, *tdir = dir;
    int adapter = lora_is_adapter_dir(dir);
    snprintf(p->model_dir, sizeof p->model_dir, "%s", dir);
    if (adapter) {
        hone_lora_config ac;
        if (lora_read_config(&ac, dir, err) < 0 || lora_base_dir(&ac, dir, p->model_dir, sizeof p->model_dir, err) < 0)
            return hone_fail_prefix(err, "model_name_or_path");
        /* the adapter's own tokenizer files when it has them (hone writes them), else the base's */
        char tp[4200];
        hone_path_join(tp, sizeof tp, dir, "tokenizer_config.json");
        if (!hone_file_exists(tp)) tdir = p->model_dir;
    }
    /* a held base streams from a plain checkpoint (each linear converted as it is read); a base
     * that must first take adapters is loaded in fp32, then held (setup_lora when it merges) */
    char stored[16];
    model_dir_dtype(p->model_dir, stored, sizeof stored);
    int held = pipeline_held_type(cfg, stored), nested = cfg->use_bnb_nested_quant;
    int stream = held && !lora_is_adapter_dir(p->model_dir) && !(adapter && cfg->use_peft);
    int lrc = stream ? model_load_held(&p->model, p->model_dir, 1, held, nested, err) : model_load_merged(&p->model, p->model_dir, 1, err);
    if (lrc == 0 && held && !stream && !(adapter && cfg->use_peft)) {
        lrc = model_hold(&p->model, pipeline_held_type(cfg, p->model.stored_dtype), nested, err);
        if (lrc < 0) model_free(&p->model);
    }
    if (lrc < 0) return adapter ? hone_fail_prefix(err, "%s: base model", dir) : -1;
    if (tokenizer_load(&p->tok, tdir, err) < 0) { model_free(&p->model); return hone_fail_prefix(err, "model_name_or_path"); }
    if (cfg->add_chat_tokens) {
        const char *toks[2] = {"<|im_start|>", "<|im_end|>"};
        if (tokenizer_add_special_tokens(p->tok, toks, 2, err) < 0) { pipeline_free(p); return -1; }
        int V = tokenizer_vocab_size(p->tok);
        if (V > p->model.cfg.vocab_size && model_resize_vocab(&p->model, V, err) < 0) { pipeline_free(p); return -1; }
    }
    if (setup_lora(p, cfg, adapter, err) < 0) { pipeline_free(p); return -1; }
    report_lora(p, cfg->bf16);
    if (cfg->bf16) {
        /* TRL's bf16=True on CPU: autocast's bf16 matrix products over fp32 weights */
        char why[256];
        kernels_select_bf16(&hone_kt, why, sizeof why);
        p->model.be = backend_cpu_bf16();
        fprintf(stderr, "bf16: matrix products on %s; weights, gradients, optimizer, norms, softmax and losses in fp32\n", why);
    }
    /* the tokenizer as trained (maybe extended) is what checkpoints carry */
    const char *out = cfg->output_dir ? cfg->output_dir : ".";
    snprintf(p->tok_dir, sizeof p->tok_dir, "%s/.hone-tokenizer-%d", out, (int)getpid());
    if (hone_mkdirs(p->tok_dir, err) < 0) { /* name the directory the user gave, not our staging one */
        int e = errno;
        p->tok_dir[0] = 0;
        pipeline_free(p);
        return hone_fail(err, "output_dir '%s': cannot create files there: %s", out, strerror(e));
    }
    if (tokenizer_save(p->tok, p->tok_dir, err) < 0) { pipeline_free(p); return hone_fail_prefix(err, "output_dir '%s'", out); }
    /* eos_token (TRL): the token rows end with, instead of the tokenizer's EOS */
    p->eos_id = tokenizer_eos_id(p->tok);
    if (cfg->eos_token) {
        p->eos_id = tokenizer_token_to_id(p->tok, cfg->eos_token);
        if (p->eos_id < 0) {
            pipeline_free(p);
            return hone_fail(err, "eos_token: '%s' is not a token of %s's tokenizer (add it, e.g. with add_chat_tokens, or pick "
                                  "one of its tokens)", cfg->eos_token, dir);
        }
    }
    if (cfg->chat_template_path) {
        /* TRL's chat_template_path: a tokenizer directory (its tokenizer_config.json's
         * template) or a Jinja file; it takes the place of chat_template */
        const char *cp = cfg->chat_template_path;
        int rc;
        if (hone_is_dir(cp)) {
            rc = chat_template_load(&p->tpl, "model", cp, err);
        } else {
            char *src = NULL;
            int b = tokenizer_bos_id(p->tok);
            rc = hone_read_file(cp, &src, NULL, err);
            if (rc == 0)
                rc = chat_template_from_jinja(&p->tpl, src, b >= 0 ? tokenizer_id_to_token(p->tok, b) : NULL,
                                              p->eos_id >= 0 ? tokenizer_id_to_token(p->tok, p->eos_id) : NULL, err);
            free(src);
        }
        if (rc < 0) { pipeline_free(p); return hone_fail_prefix(err, "chat_template_path %s", cp); }
    } else {
        const char *spec = cfg->chat_template ? cfg->chat_template : "auto";
        if (chat_template_load(&p->tpl, spec, tdir, err) < 0) { pipeline_free(p); return hone_fail_prefix(err, "chat_template"); }
    }
    p->have_tpl = 1;
    if (write_chat_files(p, cfg, err) < 0) { pipeline_free(p); return -1; }
    if (dataset_load(&p->ds, &cfg->data, cfg->kind, (long)pipeline_data_seed(cfg), err) < 0) { pipeline_free(p); return -1; }
    p->have_ds = 1;
    return 0;
}

void pipeline_free(hone_pipeline *p) {
    if (p->have_ds) dataset_free(&p->ds);
    if (p->have_tpl) chat_template_free(&p->tpl);
    if (p->tok) tokenizer_free(p->tok);
    if (p->tok_dir[0]) hone_remove_tree(p->tok_dir, NULL);
    if (p->have_lora) lora_free(&p->lora);
    if (p->model.data) model_free(&p->model);
    memset(p, 0, sizeof *p);
}

/* number of tokens of text[0..len) */
static int count_tokens(const hone_tokenizer *tok, const char *text, size_t len, hone_error *err) {
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(tok, text, len, 0, &ids, &n, err) < 0) return -1;
    free(ids);
    return (int)n;
}

/* Encodes text[0..len) (with BOS when the tokenizer adds it) and appends the EOS id.
 * TRL appends the EOS *text* unless the text already ends with it; the id is appended
 * here since a tokenizer whose EOS is a normalized added token (Llama-2, stories260K)
 * would read "</s>" back as the pieces "</", "s", ">" rather than the token. */
static int encode_with_eos(const hone_tokenizer *tok, int eos, const char *text, size_t len, int32_t **ids, size_t *n,
                           hone_error *err) {
    const char *et = eos >= 0 ? tokenizer_id_to_token(tok, eos) : NULL;
    size_t ne = et ? strlen(et) : 0;
    if (ne && len >= ne && !memcmp(text + len - ne, et, ne)) len -= ne; /* already ends with EOS: not twice */
    if (tokenizer_encode(tok, text, len, 1, ids, n, err) < 0) return -1;
    if (eos < 0) return 0;
    int32_t *g = realloc(*ids, sizeof(int32_t) * (*n + 1));
    if (!g) { free(*ids); *ids = NULL; return hone_fail(err, "out of memory"); }
    *ids = g;
    (*ids)[(*n)++] = eos;
    return 0;
}

/* TRL's non-conversational rows: `text` (language modelling, every token trained) or a
 * string prompt + completion concatenated as is; the completion starts where the tokens
 * of the prompt alone and of the whole row first differ (TRL's common_prefix_length) */
static int tokenize_sft_text(hone_pipeline *p, const hone_train_config *cfg, const hone_sft_example *e, hone_tok_example *out,
                             hone_error *err) {
    size_t nt = strlen(e->text), nc = e->completion ? strlen(e->completion) : 0, n;
    char *s = malloc(nt + nc + 1);
    if (!s) return hone_fail(err, "out of memory");
    memcpy(s, e->text, nt);
    if (nc) memcpy(s + nt, e->completion, nc);
    s[nt + nc] = 0;
    int rc = encode_with_eos(p->tok, p->eos_id, s, nt + nc, &out->ids, &n, err);
    free(s);
    if (rc < 0) return -1;
    out->n = (int)n;
    out->mask = malloc(n + 1);
    if (!out->mask) { free(out->ids); out->ids = NULL; return hone_fail(err, "out of memory"); }
    memset(out->mask, 1, n);
    if (e->completion && cfg->completion_only_loss != 0) {
        int32_t *pi;
        size_t np, k = 0;
        if (tokenizer_encode(p->tok, e->text, nt, 1, &pi, &np, err) < 0) { free(out->ids); free(out->mask); return -1; }
        while (k < np && k < n && pi[k] == out->ids[k]) k++;
        memset(out->mask, 0, k);
        free(pi);
    }
    return 0;
}

static int tokenize_sft(hone_pipeline *p, const hone_train_config *cfg, const hone_sft_example *e, hone_tok_example *out,
                        hone_error *err) {
    chat_text ct;
    memset(out, 0, sizeof *out);
    if (e->is_text) return tokenize_sft_text(p, cfg, e, out, err);
    if (chat_render_sft(&p->tpl, e, NULL, &ct, err) < 0) return -1;
    size_t n;
    int rc = 0;
    if (tokenizer_encode(p->tok, ct.text, ct.len, 0, &out->ids, &n, err) < 0) { chat_text_free(&ct); return -1; }
    out->n = (int)n;
    out->mask = calloc(n + 1, 1);
    int train_spans = cfg->assistant_only_loss || (e->n_prompt > 0 && cfg->completion_only_loss != 0) || cfg->completion_only_loss == 1;
    if (!train_spans) memset(out->mask, 1, n);
    else {
        /* tokens between the token counts of text[:start] and text[:end] (TRL: the
         * prompt's tokenization is a prefix of the full one) */
        for (int s = 0; s < ct.n_spans && rc == 0; s++) {
            int a = count_tokens(p->tok, ct.text, ct.spans[s].start, err), b = count_tokens(p->tok, ct.text, ct.spans[s].end, err);
            if (a < 0 || b < 0) { rc = -1; break; }
            for (int j = a; j < b && j < (int)n; j++) out->mask[j] = 1;
        }
    }
    chat_text_free(&ct);
    if (rc) { free(out->ids); free(out->mask); }
    return rc;
}

static int tokenize_split(hone_pipeline *p, const hone_train_config *cfg, const hone_sft_example *ex, long n, hone_tok_example **out,
                          hone_error *err) {
    *out = calloc(n ? n : 1, sizeof(hone_tok_example));
    for (long i = 0; i < n; i++)
        if (tokenize_sft(p, cfg, &ex[i], &(*out)[i], err) < 0) {
            const char *path = cfg->data.datasets[ex[i].source].path;
            hone_fail_prefix(err, "%s:%ld", path, ex[i].line);
            pipeline_free_examples(*out, i);
            *out = NULL;
            return -1;
        }
    return 0;
}

int pipeline_sft_examples(hone_pipeline *p, const hone_train_config *cfg, hone_tok_example **train, long *n_train,
                          hone_tok_example **eval, long *n_eval, hone_error *err) {
    if (tokenize_split(p, cfg, p->ds.sft_train, p->ds.n_train, train, err) < 0) return -1;
    if (tokenize_split(p, cfg, p->ds.sft_eval, p->ds.n_eval, eval, err) < 0) { pipeline_free_examples(*train, p->ds.n_train); return -1; }
    *n_train = p->ds.n_train;
    *n_eval = p->ds.n_eval;
    long cut = 0;
    for (long i = 0; i < *n_train; i++) cut += cfg->max_length > 0 && (*train)[i].n > cfg->max_length;
    if (cut) fprintf(stderr, "sft: %ld of %ld training examples are longer than max_length %ld and will be truncated (%s)\n", cut,
                     *n_train, cfg->max_length, cfg->truncation_mode ? cfg->truncation_mode : "keep_start");
    return 0;
}

void pipeline_free_examples(hone_tok_example *ex, long n) {
    for (long i = 0; ex && i < n; i++) { free(ex[i].ids); free(ex[i].mask); }
    free(ex);
}

static int32_t *dup_ids(const int32_t *x, int n) {
    int32_t *y = malloc(sizeof(int32_t) * (n > 0 ? n : 1));
    if (n > 0) memcpy(y, x, sizeof(int32_t) * n);
    return y;
}

/* counts of what TRL's truncation did to the pairs */
typedef struct {
    long dropped_len;   /* the prompt alone reaches max_length */
    long longest_plen;  /* the longest such prompt (after max_prompt_length) */
    long dropped_empty; /* an empty completion */
    long truncated;     /* sequences cut */
} pair_cuts;

static int tokenize_pairs(hone_pipeline *p, const hone_train_config *cfg, const hone_dpo_example *ex, long n, hone_tok_pair **out,
                          long *nout, pair_cuts *cuts, hone_error *err) {
    *out = calloc(n ? n : 1, sizeof(hone_tok_pair));
    long k = 0;
    for (long i = 0; i < n; i++) {
        chat_dpo_text dt;
        /* text-form pairs end with EOS as TRL appends it; appended here as the EOS id, since
         * a tokenizer whose EOS is a normalized added token would not read "</s>" text back */
        if (chat_render_dpo(&p->tpl, &ex[i], ex[i].is_text ? "" : NULL, &dt, err) < 0)
            return hone_fail_prefix(err, "%s:%ld", cfg->data.datasets[ex[i].source].path, ex[i].line);
        int32_t *pi, *ci, *ri;
        size_t np, nc, nr;
        int add = tokenizer_add_bos(p->tok) && ex[i].is_text; /* rendered templates carry their BOS text */
        if (tokenizer_encode(p->tok, dt.prompt, dt.prompt_len, add, &pi, &np, err) < 0 ||
            tokenizer_encode(p->tok, dt.chosen, dt.chosen_len, add, &ci, &nc, err) < 0 ||
            tokenizer_encode(p->tok, dt.rejected, dt.rejected_len, add, &ri, &nr, err) < 0) {
            chat_dpo_text_free(&dt);
            return -1;
        }
        chat_dpo_text_free(&dt);
        int eos = p->eos_id;
        if (ex[i].is_text && eos >= 0) {
            if (nc == 0 || ci[nc - 1] != eos) { ci = realloc(ci, sizeof(int32_t) * (nc + 1)); ci[nc++] = eos; }
            if (nr == 0 || ri[nr - 1] != eos) { ri = realloc(ri, sizeof(int32_t) * (nr + 1)); ri[nr++] = eos; }
        }
        /* the prompt: the longest common token prefix of prompt, chosen and rejected (TRL) */
        size_t P = 0;
        while (P < np && P < nc && P < nr && pi[P] == ci[P] && pi[P] == ri[P]) P++;
        hone_tok_pair *q = &(*out)[k];
        long mp = cfg->max_prompt_length, mcl = cfg->max_completion_length, ml = cfg->max_length;
        int pstart = 0, plen = (int)P;
        if (mp > 0 && plen > mp) { pstart = plen - (int)mp; plen = (int)mp; cuts->truncated++; } /* keep the prompt's end */
        int lc = (int)(nc - P), lr = (int)(nr - P);
        if (mcl > 0) { if (lc > mcl) { lc = (int)mcl; cuts->truncated++; } if (lr > mcl) { lr = (int)mcl; cuts->truncated++; } }
        if (ml > 0 && plen >= ml) {
            cuts->dropped_len++;
            if (plen > cuts->longest_plen) cuts->longest_plen = plen;
            free(pi); free(ci); free(ri);
            continue;
        }
        if (ml > 0) {
            if (plen + lc > ml) { lc = (int)ml - plen; cuts->truncated++; }
            if (plen + lr > ml) { lr = (int)ml - plen; cuts->truncated++; }
        }
        if (lc <= 0 || lr <= 0) {
            fprintf(stderr, "dpo: %s:%ld: empty %s completion, pair skipped\n", cfg->data.datasets[ex[i].source].path, ex[i].line,
                    lc <= 0 ? "chosen" : "rejected");
            cuts->dropped_empty++;
            free(pi); free(ci); free(ri);
            continue;
        }
        if (lc == lr && !memcmp(ci + P, ri + P, sizeof(int32_t) * lc))
            fprintf(stderr, "dpo: %s:%ld: chosen equals rejected (the pair carries no preference)\n", cfg->data.datasets[ex[i].source].path,
                    ex[i].line);
        q->prompt = dup_ids(pi + pstart, plen);
        q->np = plen;
        q->chosen = dup_ids(ci + P, lc);
        q->nc = lc;
        q->rejected = dup_ids(ri + P, lr);
        q->nr = lr;
        free(pi); free(ci); free(ri);
        k++;
    }
    *nout = k;
    return 0;
}

int pipeline_dpo_pairs(hone_pipeline *p, const hone_train_config *cfg, hone_tok_pair **train, long *n_train,
                       hone_tok_pair **eval, long *n_eval, hone_error *err) {
    pair_cuts c = {0};
    if (tokenize_pairs(p, cfg, p->ds.dpo_train, p->ds.n_train, train, n_train, &c, err) < 0) return -1;
    if (tokenize_pairs(p, cfg, p->ds.dpo_eval, p->ds.n_eval, eval, n_eval, &c, err) < 0) return -1;
    long all = p->ds.n_train + p->ds.n_eval;
    if (c.dropped_len)
        fprintf(stderr,
                "warning: dpo: %ld of %ld pairs (%.1f%%) dropped because the prompt alone reaches max_length %ld; max_length %ld "
                "(the longest such prompt + 1) or max_prompt_length %ld would keep them\n",
                c.dropped_len, all, 100.0 * c.dropped_len / (all ? all : 1), cfg->max_length, c.longest_plen + 1, cfg->max_length - 1);
    if (c.dropped_empty || c.truncated)
        fprintf(stderr, "dpo: %ld pair(s) dropped for an empty completion, %ld sequence(s) truncated\n", c.dropped_empty, c.truncated);
    return 0;
}

void pipeline_free_pairs(hone_tok_pair *pairs, long n) {
    for (long i = 0; pairs && i < n; i++) { free(pairs[i].prompt); free(pairs[i].chosen); free(pairs[i].rejected); }
    free(pairs);
}

uint64_t pipeline_data_seed(const hone_train_config *cfg) {
    return (uint64_t)(cfg->data_seed >= 0 ? cfg->data_seed : cfg->seed);
}

int pipeline_shuffle(const hone_train_config *cfg) {
    return !cfg->train_sampling_strategy || strcmp(cfg->train_sampling_strategy, "sequential") != 0;
}

long pipeline_warmup(const hone_train_config *cfg, long total) {
    if (cfg->warmup_steps >= 1) return (long)cfg->warmup_steps;
    if (cfg->warmup_steps > 0) return (long)ceil(cfg->warmup_steps * total);
    if (cfg->warmup_ratio > 0) return (long)ceil(cfg->warmup_ratio * total);
    return 0;
}

int pipeline_trainer(hone_pipeline *p, const hone_train_config *cfg, long total, hone_trainer *t, hone_error *err) {
    int sched = sched_from_name(cfg->lr_scheduler_type, err);
    if (sched < 0) return -1;
    if (trainer_init_dp(t, &p->model, cfg->output_dir, p->tok_dir, cfg->learning_rate, sched, pipeline_warmup(cfg, total), total,
                        cfg->adam_beta1, cfg->adam_beta2, cfg->adam_epsilon, cfg->weight_decay, cfg->max_grad_norm, cfg->zero_stage,
                        err) < 0)
        return -1;
    t->save_total_limit = cfg->save_total_limit;
    if (trainer_set_optim(t, config_optim_kind(cfg->optim), err) < 0) { trainer_free(t); return -1; }
    /* more than one micro-batch gradient a step: their sum in double unless asked otherwise */
    if ((long)cfg->gradient_accumulation_steps * dist_size() > 1 && cfg->grad_accum_dtype && !strcmp(cfg->grad_accum_dtype, "fp64") &&
        trainer_accumulate_fp64(t, err) < 0) {
        trainer_free(t);
        return -1;
    }
    if (sched_set_kwargs(&t->sched, cfg->lr_scheduler_kwargs, cfg->learning_rate, err) < 0) { trainer_free(t); return -1; }
    /* transformers: metric_for_best_model defaults to "loss"; evaluations log it as eval_<name> */
    const char *mb = cfg->metric_for_best_model ? cfg->metric_for_best_model : "loss";
    snprintf(t->plateau_metric, sizeof t->plateau_metric, "%s%s", strncmp(mb, "eval_", 5) ? "eval_" : "", mb);
    size_t ml = strlen(mb);
    t->greater_is_better = cfg->greater_is_better >= 0 ? cfg->greater_is_better : !(ml >= 4 && !strcmp(mb + ml - 4, "loss"));
    t->load_best = cfg->load_best_model_at_end;
    snprintf(t->save_dtype, sizeof t->save_dtype, "%s", cfg->save_dtype ? cfg->save_dtype : "float32");
    if (config_reports_to(cfg, "tensorboard") && t->output_dir[0] && t->rank == 0) {
        /* transformers' TensorBoardCallback: logging_dir, else $TENSORBOARD_LOGGING_DIR, else output_dir/runs/<time>_<host> */
        char dir[4096];
        const char *env = getenv("TENSORBOARD_LOGGING_DIR");
        if (cfg->logging_dir && cfg->logging_dir[0]) snprintf(dir, sizeof dir, "%s", cfg->logging_dir);
        else if (env && env[0]) snprintf(dir, sizeof dir, "%s", env);
        else tb_default_logdir(dir, sizeof dir, cfg->output_dir);
        if (trainer_open_tensorboard(t, dir, err) < 0) { trainer_free(t); return -1; }
        /* as transformers' on_train_begin: the run's arguments as text "args" (here the resolved configuration) */
        char *args = NULL;
        size_t alen = 0;
        FILE *mf = open_memstream(&args, &alen);
        int rc = mf ? config_dump_json(cfg, mf, err) : hone_fail(err, "out of memory");
        if (mf) fclose(mf);
        if (rc == 0) rc = tb_writer_text(&t->tb, 0, tb_wall_time(), "args", args, err);
        free(args);
        if (rc < 0) { trainer_free(t); return -1; }
    }
    return 0;
}

int pipeline_resume(hone_trainer *t, const char *checkpoint, double *extra, int n_extra, hone_error *err) {
    if (!checkpoint || !*checkpoint) return 0;
    if (trainer_load_checkpoint(t, checkpoint, extra, n_extra, err) < 0) return -1;
    fprintf(stderr, "resumed from %s at step %ld\n", checkpoint, t->step);
    return 0;
}
