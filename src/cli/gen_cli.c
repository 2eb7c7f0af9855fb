/* cli/gen_cli.c — shared parts of the generation and evaluation commands (gen_cli.h). */
#include "cli/gen_cli.h"
#include "model/lora.h"
#include "chat/template.h"
#include "data/jsonrows.h"
#include "base/threads.h"
#include "base/util.h"
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void gen_args_defaults(gen_args *a) {
    memset(a, 0, sizeof *a);
    gen_options_defaults(&a->o);
    a->batch = 0; /* gen_engine_init picks */
    a->weights = HONE_WEIGHTS_AUTO;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out, hone_error *err) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || x < lo || x > hi)
        return hone_fail(err, "%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, v ? v : "(nothing)");
    *out = x;
    return 0;
}

static int parse_float(const char *opt, const char *v, float *out, hone_error *err) {
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end) return hone_fail(err, "%s: expected a number, got '%s'", opt, v ? v : "(nothing)");
    *out = (float)x;
    return 0;
}

int gen_args_parse(gen_args *a, int argc, char **argv, int *i, hone_error *err) {
    const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long x;
    if (!strcmp(o, "--max-new-tokens")) {
        if (parse_int(o, v, 1, 1 << 20, &x, err) < 0) return -1;
        a->o.max_new_tokens = (int)x;
    } else if (!strcmp(o, "--temperature")) {
        if (parse_float(o, v, &a->o.s.temperature, err) < 0) return -1;
    } else if (!strcmp(o, "--top-k")) {
        if (parse_int(o, v, 0, INT_MAX, &x, err) < 0) return -1;
        a->o.s.top_k = (int)x;
    } else if (!strcmp(o, "--top-p")) {
        if (parse_float(o, v, &a->o.s.top_p, err) < 0) return -1;
    } else if (!strcmp(o, "--min-p")) {
        if (parse_float(o, v, &a->o.s.min_p, err) < 0) return -1;
    } else if (!strcmp(o, "--repetition-penalty")) {
        if (parse_float(o, v, &a->o.s.repetition_penalty, err) < 0) return -1;
    } else if (!strcmp(o, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long s = v ? strtoull(v, &end, 10) : 0;
        if (!v || errno || end == v || *end) return hone_fail(err, "--seed: expected an unsigned integer, got '%s'", v ? v : "(nothing)");
        a->o.seed = s;
    } else if (!strcmp(o, "--stop")) {
        if (!v || !*v) return hone_fail(err, "--stop: expected a non-empty string");
        if (a->n_stops == GEN_MAX_STOPS) return hone_fail(err, "--stop: at most %d stop strings", GEN_MAX_STOPS);
        a->stops[a->n_stops++] = v;
    } else if (!strcmp(o, "--chat-template")) {
        if (!v) return hone_fail(err, "--chat-template: expected a name (chatml, llama2, llama3, gemma, zephyr, model, auto)");
        a->chat_template = v;
    } else if (!strcmp(o, "--batch")) {
        if (parse_int(o, v, 1, 1024, &x, err) < 0) return -1;
        a->batch = (int)x;
    } else if (!strcmp(o, "--max-context")) {
        if (parse_int(o, v, 2, 1 << 20, &x, err) < 0) return -1;
        a->max_context = (int)x;
    } else if (!strcmp(o, "--dtype")) {
        if (v && !strcmp(v, "auto")) a->weights = HONE_WEIGHTS_AUTO;
        else if (v && (!strcmp(v, "float32") || !strcmp(v, "fp32"))) a->weights = HONE_WEIGHTS_F32;
        else if (v && (!strcmp(v, "bfloat16") || !strcmp(v, "bf16"))) a->weights = HONE_WEIGHTS_BF16;
        else return hone_fail(err, "--dtype: expected auto, float32 or bfloat16, got '%s'", v ? v : "(nothing)");
    } else if (!strcmp(o, "--threads")) {
        if (parse_int(o, v, 1, HONE_MAX_THREADS, &x, err) < 0) return -1;
        a->threads = (int)x;
    } else {
        return 0;
    }
    *i += 1;
    return sampling_check(&a->o.s, err) < 0 ? -1 : 1;
}

void gen_args_help(FILE *f, const gen_args *defaults) {
    fprintf(f, "Generation options:\n"
               "  --max-new-tokens N      tokens to generate at most (default %d)\n", defaults->o.max_new_tokens);
    fprintf(f, 
               "  --temperature T         0 = greedy (default); > 0 samples\n"
               "  --top-k K               keep the K most likely tokens (0 = off)\n"
               "  --top-p P               keep the smallest set with probability >= P (1 = off)\n"
               "  --min-p P               drop tokens below P x the top probability (0 = off)\n"
               "  --repetition-penalty R  transformers' repetition penalty (1 = off)\n"
               "  --seed S                sampling seed (every prompt samples from its own rng seeded with S)\n"
               "  --stop STR              stop before this text (repeatable); EOS and end-of-turn tokens always stop\n"
               "  --chat-template NAME    chatml|llama2|llama3|gemma|zephyr|model|auto or inline Jinja\n"
               "  --batch N               prompts decoded together (default: up to 32, KV cache <= 512 MB)\n"
               "  --max-context N         KV-cache positions (default: the model's, at most 4096)\n"
               "  --threads N             threads (default: HONE_THREADS or one per core)\n"
               "  --dtype D               weights for generation: auto (bfloat16 when that is exact, i.e. the\n"
               "                          model is stored in bf16; else float32), float32, or bfloat16 (rounds\n"
               "                          the matrices: half the memory traffic; arithmetic stays fp32)\n");
}

int gen_threads_init(int threads, hone_error *err) {
    hone_topology topo;
    if (threads_init(&topo, threads, 1, err) < 0) return -1;
    if (topo.requested != topo.threads)
        fprintf(stderr, "warning: %d threads requested, using %d (hone runs at most %d)\n", topo.requested, topo.threads,
                HONE_MAX_THREADS);
    return 0;
}

static void add_stop_id(gen_model *g, int id) {
    if (id < 0 || id >= g->m.cfg.vocab_size) return;
    for (int i = 0; i < g->n_stop_ids; i++)
        if (g->stop_ids[i] == id) return;
    if (g->n_stop_ids < 16) g->stop_ids[g->n_stop_ids++] = id;
}

/* eos_token_id of generation_config.json: an integer or a list. A special token id
 * outside the vocabulary is an error (it would never be produced, so generation would
 * never stop on it, or start from a token the model has no row for). */
static int add_generation_config_eos(gen_model *g, hone_error *err) {
    char path[1100];
    hone_path_join(path, sizeof path, g->dir, "generation_config.json");
    json_t *root = json_load_file(path, 0, NULL);
    if (!root) return 0;
    if (model_check_token_ids(root, g->m.cfg.vocab_size, path, err) < 0) {
        json_decref(root);
        return -1;
    }
    json_t *e = json_object_get(root, "eos_token_id");
    if (json_is_integer(e)) add_stop_id(g, (int)json_integer_value(e));
    size_t i;
    json_t *x;
    if (json_is_array(e)) json_array_foreach(e, i, x) if (json_is_integer(x)) add_stop_id(g, (int)json_integer_value(x));
    json_decref(root);
    return 0;
}

int gen_model_load(gen_model *g, const char *dir, const char *spec, hone_error *err) {
    memset(g, 0, sizeof *g);
    if (!hone_is_dir(dir)) return hone_fail(err, "%s: not a model directory", dir);
    /* a PEFT adapter directory: its base with the adapters merged in memory */
    if (model_load_merged(&g->m, dir, 1, err) < 0) return -1;
    lora_files_dir(dir, g->dir, sizeof g->dir); /* tokenizer, template, generation_config */
    dir = g->dir;
    if (tokenizer_load(&g->tok, dir, err) < 0) {
        model_free(&g->m);
        return hone_fail_prefix(err, "%s: the model's tokenizer", dir);
    }
    add_stop_id(g, g->m.cfg.eos_token_id);
    add_stop_id(g, tokenizer_eos_id(g->tok));
    if (add_generation_config_eos(g, err) < 0) {
        gen_model_free(g);
        return -1;
    }
    /* end-of-turn tokens of the common chat formats, when the vocabulary has them as special tokens */
    const char *eot[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<|eom_id|>"};
    for (size_t i = 0; i < sizeof eot / sizeof *eot; i++) {
        int id = tokenizer_token_to_id(g->tok, eot[i]);
        if (id >= 0 && tokenizer_is_special(g->tok, id)) add_stop_id(g, id);
    }
    if (spec) {
        chat_template *t = calloc(1, sizeof *t);
        if (!t || chat_template_load(t, spec, dir, err) < 0) {
            free(t);
            gen_model_free(g);
            return -1;
        }
        g->tmpl = t;
        g->tmpl_stop = t->stop;
        if (t->stop) {
            int id = tokenizer_token_to_id(g->tok, t->stop);
            if (id >= 0) add_stop_id(g, id);
        }
    }
    return 0;
}

void gen_model_free(gen_model *g) {
    if (g->tmpl) chat_template_free(g->tmpl);
    free(g->tmpl);
    tokenizer_free(g->tok);
    model_free(&g->m);
    memset(g, 0, sizeof *g);
}

int gen_engine_init(hone_engine *e, const gen_model *g, const gen_args *a, int n, int max_prompt, hone_error *err) {
    long T = a->max_context ? a->max_context : (long)max_prompt + a->o.max_new_tokens;
    int mp = g->m.cfg.max_position_embeddings;
    if (mp > 0 && T > mp) T = mp;
    if (max_prompt >= T)
        return hone_fail(err, "a prompt has %d tokens; the context holds %ld (model max %d)", max_prompt, T, mp);
    int B = a->batch;
    if (B <= 0) { /* default: up to 32 sequences, the KV cache within 512 MB */
        const hone_model_config *c = &g->m.cfg;
        double slot = 2.0 * sizeof(float) * c->num_layers * (double)c->num_kv_heads * c->head_dim * T;
        B = (int)((512.0 * (1 << 20)) / slot);
        if (B > 32) B = 32;
    }
    if (B > n) B = n;
    if (engine_init(e, &g->m, B < 1 ? 1 : B, (int)T, 0, err) < 0) return -1;
    /* float32 (and auto on an fp32 model) permutes the model's own matrices into panels:
     * the model serves only this engine here, and panels stream faster than rows */
    /* bf16: each fp32 matrix is released as its copy is made (never read again) */
    int w = a->weights == HONE_WEIGHTS_F32 ? HONE_WEIGHTS_F32_PANELS : a->weights | HONE_WEIGHTS_RELEASE;
    if (engine_set_weights(e, w, err) < 0 ||
        (a->weights == HONE_WEIGHTS_AUTO && !e->w16 && engine_set_weights(e, HONE_WEIGHTS_F32_PANELS, err) < 0)) {
        engine_free(e);
        return -1;
    }
    return 0;
}

static int encode_ids(const gen_model *g, const char *text, size_t len, int add_special, int32_t **ids, int *n_ids,
                      hone_error *err) {
    size_t n = 0;
    if (tokenizer_encode(g->tok, text, len, add_special, ids, &n, err) < 0) return -1;
    *n_ids = (int)n;
    return 0;
}

int gen_encode_chat(const gen_model *g, const gen_msg *msgs, int n, int32_t **ids, int *n_ids, hone_error *err) {
    if (!g->tmpl) {
        const char *t = n > 0 ? msgs[n - 1].content : "";
        return encode_ids(g, t, strlen(t), 1, ids, n_ids, err);
    }
    hone_message *hm = malloc(sizeof *hm * (n > 0 ? n : 1));
    if (!hm) return hone_fail(err, "out of memory");
    for (int i = 0; i < n; i++) { hm[i].role = msgs[i].role; hm[i].content = msgs[i].content; }
    chat_text ct;
    memset(&ct, 0, sizeof ct);
    int rc = chat_render(g->tmpl, hm, n, 1, &ct, err);
    free(hm);
    if (rc < 0) return -1;
    rc = encode_ids(g, ct.text, ct.len, 0, ids, n_ids, err);
    chat_text_free(&ct);
    return rc;
}

int gen_encode_prompt(const gen_model *g, const char *prompt, int32_t **ids, int *n_ids, hone_error *err) {
    gen_msg m = {"user", prompt};
    return gen_encode_chat(g, &m, 1, ids, n_ids, err);
}

void gen_options_for(hone_gen_options *o, const gen_args *a, gen_model *g) {
    *o = a->o;
    o->stop_ids = g->stop_ids;
    o->n_stop_ids = g->n_stop_ids;
    int n = 0;
    for (int i = 0; i < a->n_stops; i++) g->stops[n++] = a->stops[i];
    /* the template's end of turn, as text when the vocabulary has no such token */
    if (g->tmpl_stop && *g->tmpl_stop && tokenizer_token_to_id(g->tok, g->tmpl_stop) < 0) g->stops[n++] = g->tmpl_stop;
    o->stop_strings = g->stops;
    o->n_stop_strings = n;
}

typedef struct {
    const char *path;
    const char *const *keys;
    const int *optional;
    int nkeys, n, cap;
    char **rows;
} rows_ctx;

static int on_row(void *ud, json_t *row, long line, const char *why, hone_error *err) {
    rows_ctx *c = ud;
    if (!row) return hone_fail(err, "%s:%ld: not valid JSON: %s", c->path, line, why);
    if (!json_is_object(row)) return hone_fail(err, "%s:%ld: expected a JSON object", c->path, line);
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        char **r = realloc(c->rows, sizeof(char *) * (size_t)cap * c->nkeys);
        if (!r) return hone_fail(err, "out of memory");
        c->rows = r;
        c->cap = cap;
    }
    char **dst = c->rows + (size_t)c->n * c->nkeys;
    for (int k = 0; k < c->nkeys; k++) dst[k] = NULL;
    c->n++;
    for (int k = 0; k < c->nkeys; k++) {
        json_t *v = json_object_get(row, c->keys[k]);
        if (!v && c->optional && c->optional[k]) continue;
        if (!v) return hone_fail(err, "%s:%ld: missing \"%s\"", c->path, line, c->keys[k]);
        if (!json_is_string(v)) return hone_fail(err, "%s:%ld: \"%s\" must be a string", c->path, line, c->keys[k]);
        dst[k] = strdup(json_string_value(v));
        if (!dst[k]) return hone_fail(err, "out of memory");
    }
    return 0;
}

int gen_read_rows(const char *path, const char *const *keys, const int *optional, int nkeys, char ***rows, int *n_rows,
                  hone_error *err) {
    rows_ctx c = {path, keys, optional, nkeys, 0, 0, NULL};
    if (jsonrows_read(path, on_row, &c, err) < 0) {
        gen_rows_free(c.rows, c.n, nkeys);
        return -1;
    }
    if (c.n == 0) {
        gen_rows_free(c.rows, c.n, nkeys);
        return hone_fail(err, "%s: no rows", path);
    }
    *rows = c.rows;
    *n_rows = c.n;
    return 0;
}

void gen_rows_free(char **rows, int n_rows, int nkeys) {
    if (!rows) return;
    for (size_t i = 0; i < (size_t)n_rows * nkeys; i++) free(rows[i]);
    free(rows);
}

void gen_json_string(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch == '\r') fputs("\\r", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}
