/* export/gguf_vocab.c — tokenizer.json -> GGUF tokenizer keys (vocab.h); the reverse is in
 * vocab_hf.c. */
#include "export/gguf_vocab.h"
#include "base/util.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pre-tokenizer regexes llama.cpp implements under a name (llama-vocab.cpp); gguf_vocab_hf.c writes them back */
const char gguf_re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char gguf_re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char gguf_re_o200k[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

void vocab_free(gguf_vocab *v) {
    if (v->tok)
        for (int i = 0; i < v->n; i++) free(v->tok[i]);
    for (size_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tok);
    free(v->scores);
    free(v->types);
    free(v->merges);
    free(v->chat_template);
    memset(v, 0, sizeof *v);
}

static const char *jtype(json_t *o) {
    json_t *t = json_is_object(o) ? json_object_get(o, "type") : NULL;
    return json_is_string(t) ? json_string_value(t) : "";
}
static int jbool(json_t *o, const char *k, int def) {
    json_t *b = json_object_get(o, k);
    return json_is_boolean(b) ? json_is_true(b) : def;
}

/* "gpt2" pre-tokenizer name of tokenizer.json's pre_tokenizer (and normalizer), or NULL */
static const char *gpt2_pre(json_t *pre, json_t *norm) {
    const char *nt = jtype(norm);
    if (!strcmp(jtype(pre), "ByteLevel") && jbool(pre, "use_regex", 1) && !norm) return "gpt-2";
    if (strcmp(jtype(pre), "Sequence")) return NULL;
    json_t *list = json_object_get(pre, "pretokenizers");
    if (json_array_size(list) != 2) return NULL;
    json_t *a = json_array_get(list, 0), *b = json_array_get(list, 1);
    if (strcmp(jtype(b), "ByteLevel")) return NULL;
    if (!strcmp(jtype(a), "Digits") && jbool(a, "individual_digits", 0) && jbool(b, "use_regex", 1) && !norm) return "smollm";
    if (strcmp(jtype(a), "Split") || jbool(b, "use_regex", 1)) return NULL;
    json_t *re = json_object_get(json_object_get(a, "pattern"), "Regex");
    if (!json_is_string(re)) return NULL;
    const char *r = json_string_value(re);
    if (!strcmp(r, gguf_re_llama3) && !norm) return "llama-bpe";
    if (!strcmp(r, gguf_re_qwen2) && (!norm || !strcmp(nt, "NFC"))) return "qwen2";
    if (!strcmp(r, gguf_re_o200k) && !norm && jbool(a, "invert", 0)) return "gpt-4o";
    return NULL;
}

/* SentencePiece-style: spaces become "▁" in the normalizer (Replace) or a Metaspace
 * pre-tokenizer; *prefix: a "▁" is prepended to the text */
static int is_spm(json_t *norm, json_t *pre, int *prefix, int *extra_ws) {
    int replace = 0;
    *prefix = *extra_ws = 0;
    json_t *list = !strcmp(jtype(norm), "Sequence") ? json_object_get(norm, "normalizers") : NULL;
    size_t n = list ? json_array_size(list) : (norm ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        json_t *e = list ? json_array_get(list, i) : norm;
        if (!strcmp(jtype(e), "Prepend")) *prefix = 1;
        else if (!strcmp(jtype(e), "Replace")) {
            json_t *pat = json_object_get(e, "pattern"), *to = json_object_get(e, "content");
            const char *ps = json_string_value(json_object_get(pat, "String")), *re = json_string_value(json_object_get(pat, "Regex"));
            const char *ts = json_string_value(to);
            if (ps && ts && !strcmp(ps, " ") && !strcmp(ts, "\xE2\x96\x81")) replace = 1;
            /* SentencePiece's remove_extra_whitespaces as hone's spm_convert writes it */
            else if (re && ts && ((!strcmp(re, " {2,}") && !strcmp(ts, " ")) || (!strcmp(re, "\\A \\z|\\A | \\z") && !*ts))) *extra_ws = 1;
            else return 0;
        } else return 0;
    }
    if (!strcmp(jtype(pre), "Metaspace")) {
        json_t *s = json_object_get(pre, "prepend_scheme");
        *prefix = json_is_string(s) ? strcmp(json_string_value(s), "never") != 0 : jbool(pre, "add_prefix_space", 1);
        return !norm;
    }
    if (pre && strcmp(jtype(pre), "Split")) return 0;
    return replace;
}

static int token_id(json_t *vocab, json_t *added, const char *s) {
    json_t *id = json_object_get(vocab, s);
    if (json_is_integer(id)) return (int)json_integer_value(id);
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *c = json_object_get(a, "content");
        if (json_is_string(c) && !strcmp(json_string_value(c), s)) return (int)json_integer_value(json_object_get(a, "id"));
    }
    return -1;
}

/* a special token named in tokenizer_config.json: "bos_token": "<s>" or {"content": "<s>"} */
static int config_token(json_t *cfg, const char *key, json_t *vocab, json_t *added) {
    json_t *t = json_object_get(cfg, key);
    if (json_is_object(t)) t = json_object_get(t, "content");
    return json_is_string(t) ? token_id(vocab, added, json_string_value(t)) : -1;
}

static int is_byte_token(const char *s) {
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>' && strchr("0123456789ABCDEF", s[3]) &&
           strchr("0123456789ABCDEF", s[4]);
}

static int read_template(gguf_vocab *v, json_t *cfg, const char *dir) {
    json_t *t = json_object_get(cfg, "chat_template");
    if (json_is_array(t)) { /* [{"name": "default", "template": ...}, ...] */
        json_t *pick = NULL, *e;
        size_t i;
        json_array_foreach(t, i, e) {
            json_t *nm = json_object_get(e, "name");
            if (!pick || (json_is_string(nm) && !strcmp(json_string_value(nm), "default"))) pick = e;
        }
        t = pick ? json_object_get(pick, "template") : NULL;
    }
    if (json_is_string(t)) {
        v->chat_template = strdup(json_string_value(t));
        return v->chat_template ? 0 : -1;
    }
    char p[4096];
    hone_path_join(p, sizeof p, dir, "chat_template.jinja");
    if (hone_file_exists(p)) return hone_read_file(p, &v->chat_template, NULL, NULL);
    return 0;
}

int vocab_from_dir(gguf_vocab *v, const char *dir, const hone_model_config *c, hone_error *err) {
    memset(v, 0, sizeof *v);
    v->bos = v->eos = v->unk = v->pad = -1;
    char path[4096], cpath[4096];
    hone_path_join(path, sizeof path, dir, "tokenizer.json");
    hone_path_join(cpath, sizeof cpath, dir, "tokenizer_config.json");
    if (!hone_file_exists(path))
        return hone_fail(err, "%s: missing: a GGUF file carries its tokenizer, so the model directory needs tokenizer.json", path);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return hone_fail(err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    /* tokenizer_config.json may hold model_max_length 1e30 written as an integer */
    json_t *cfg = hone_file_exists(cpath) ? json_load_file(cpath, JSON_DECODE_INT_AS_REAL, &je) : json_object();
    if (!cfg) { json_decref(root); return hone_fail(err, "%s:%d:%d: %s", cpath, je.line, je.column, je.text); }
    int rc = -1;
    json_t *model = json_object_get(root, "model"), *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges"), *added = json_object_get(root, "added_tokens");
    json_t *norm = json_object_get(root, "normalizer"), *pre = json_object_get(root, "pre_tokenizer");
    if (json_is_null(norm)) norm = NULL;
    if (json_is_null(pre)) pre = NULL;
    if (strcmp(jtype(model), "BPE") || !json_is_object(vocab)) {
        hone_fail(err, "%s: model type '%s': llama.cpp represents BPE tokenizers only (SentencePiece-style or byte-level)", path,
                  jtype(model));
        goto out;
    }
    int prefix = 0;
    const char *gp = gpt2_pre(pre, norm);
    if (gp) {
        v->model = VOCAB_GPT2;
        snprintf(v->pre, sizeof v->pre, "%s", gp);
    } else if (is_spm(norm, pre, &prefix, &v->remove_extra_ws) && jbool(model, "byte_fallback", 0)) {
        v->model = VOCAB_LLAMA;
        snprintf(v->pre, sizeof v->pre, "default");
        v->add_space_prefix = prefix;
    } else {
        hone_fail(err, "%s: normalizer '%s' with pre_tokenizer '%s' has no llama.cpp equivalent (known: SentencePiece-style BPE "
                       "with byte fallback; byte-level BPE with the GPT-2, Llama-3, Qwen2, SmolLM or GPT-4o pre-tokenizer)",
                  path, norm ? jtype(norm) : "null", pre ? jtype(pre) : "null");
        goto out;
    }
    /* tokens by id */
    int n = c->vocab_size;
    v->n = n;
    v->tok = calloc(n, sizeof(char *));
    v->scores = calloc(n, sizeof(float));
    v->types = calloc(n, sizeof(int32_t));
    if (!v->tok || !v->scores || !v->types) { hone_fail(err, "out of memory"); goto out; }
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= n) {
            hone_fail(err, "%s: token '%s' has id %lld, outside the model's vocabulary of %d", path, key, (long long)id, n);
            goto out;
        }
        free(v->tok[id]);
        v->tok[id] = strdup(key);
        v->types[id] = TOK_NORMAL;
        if (v->model == VOCAB_LLAMA && is_byte_token(key)) v->types[id] = TOK_BYTE;
    }
    size_t i;
    json_array_foreach(added, i, val) {
        json_t *id = json_object_get(val, "id"), *content = json_object_get(val, "content");
        if (!json_is_integer(id) || !json_is_string(content)) { hone_fail(err, "%s: added_tokens[%zu]: needs id and content", path, i); goto out; }
        json_int_t k = json_integer_value(id);
        if (k < 0 || k >= n) {
            hone_fail(err, "%s: added token '%s' has id %lld, outside the model's vocabulary of %d", path, json_string_value(content),
                      (long long)k, n);
            goto out;
        }
        free(v->tok[k]);
        v->tok[k] = strdup(json_string_value(content));
        v->types[k] = jbool(val, "special", 0) ? TOK_CONTROL : TOK_USER_DEFINED;
    }
    if (v->model == VOCAB_LLAMA) {
        json_t *u = json_object_get(model, "unk_token");
        if (json_is_string(u)) v->unk = token_id(vocab, added, json_string_value(u));
        if (v->unk >= 0) v->types[v->unk] = TOK_UNKNOWN;
    }
    for (int k = 0; k < n; k++) {
        if (!v->tok[k]) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%d]", k);
            v->tok[k] = strdup(pad);
            v->types[k] = TOK_UNUSED;
            v->scores[k] = -1000.0f;
        }
        if (!v->tok[k]) { hone_fail(err, "out of memory"); goto out; }
    }
    /* merges: "a b" or ["a", "b"]; llama: scores from the rank of the first merge making a token */
    size_t nm = json_array_size(merges);
    if (v->model == VOCAB_GPT2) {
        v->merges = calloc(nm ? nm : 1, sizeof(char *));
        if (!v->merges) { hone_fail(err, "out of memory"); goto out; }
    } else {
        for (int k = 0; k < n; k++)
            if (v->types[k] == TOK_NORMAL) v->scores[k] = -1e9f; /* made by no merge: never preferred */
    }
    for (size_t r = 0; r < nm; r++) {
        json_t *m = json_array_get(merges, r);
        const char *a, *b;
        char *both = NULL;
        if (json_is_string(m)) {
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (!sp) { hone_fail(err, "%s: merges[%zu] '%s' is not 'a b'", path, r, s); goto out; }
            both = strdup(s);
            if (!both) { hone_fail(err, "out of memory"); goto out; }
            both[sp - s] = 0;
            a = both;
            b = both + (sp - s) + 1;
        } else if (json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
        } else {
            hone_fail(err, "%s: merges[%zu] is neither 'a b' nor a pair of strings", path, r);
            goto out;
        }
        if (strchr(a, ' ') || strchr(b, ' ')) {
            free(both);
            hone_fail(err, "%s: merges[%zu]: a token with a space cannot be written as a llama.cpp merge", path, r);
            goto out;
        }
        if (v->model == VOCAB_GPT2) {
            size_t la = strlen(a), lb = strlen(b);
            char *s = malloc(la + lb + 2);
            if (!s) { free(both); hone_fail(err, "out of memory"); goto out; }
            memcpy(s, a, la);
            s[la] = ' ';
            memcpy(s + la + 1, b, lb + 1);
            v->merges[v->n_merges++] = s;
        } else {
            size_t la = strlen(a), lb = strlen(b);
            char *s = malloc(la + lb + 1);
            if (!s) { free(both); hone_fail(err, "out of memory"); goto out; }
            memcpy(s, a, la);
            memcpy(s + la, b, lb + 1);
            int id = token_id(vocab, NULL, s);
            free(s);
            if (id >= 0 && id < n && v->types[id] == TOK_NORMAL && v->scores[id] == -1e9f) v->scores[id] = -(float)r;
        }
        free(both);
    }
    if (v->model == VOCAB_LLAMA) /* pieces no merge makes (characters) sit below every merged one */
        for (int k = 0; k < n; k++)
            if (v->types[k] == TOK_NORMAL && v->scores[k] == -1e9f) v->scores[k] = -(float)nm - 1.0f;
    for (int k = 0; k < n; k++)
        if (v->types[k] != TOK_NORMAL && v->types[k] != TOK_UNUSED) v->scores[k] = 0.0f;
    /* special ids: config.json's, else tokenizer_config.json's named tokens */
    v->bos = c->bos_token_id >= 0 ? c->bos_token_id : config_token(cfg, "bos_token", vocab, added);
    v->eos = c->eos_token_id >= 0 ? c->eos_token_id : config_token(cfg, "eos_token", vocab, added);
    v->pad = c->pad_token_id >= 0 ? c->pad_token_id : config_token(cfg, "pad_token", vocab, added);
    /* add_bos / add_eos: tokenizer_config.json, else the post-processor's template */
    json_t *pp = json_object_get(root, "post_processor");
    int tmpl_bos = 0, tmpl_eos = 0;
    if (!strcmp(jtype(pp), "TemplateProcessing")) {
        json_t *single = json_object_get(pp, "single");
        size_t ns = json_array_size(single);
        if (ns && json_object_get(json_array_get(single, 0), "SpecialToken")) tmpl_bos = 1;
        if (ns > 1 && json_object_get(json_array_get(single, ns - 1), "SpecialToken")) tmpl_eos = 1;
    }
    v->add_bos = jbool(cfg, "add_bos_token", tmpl_bos);
    v->add_eos = jbool(cfg, "add_eos_token", tmpl_eos);
    if (v->add_bos && v->bos < 0) { hone_fail(err, "%s: add_bos_token is set but no bos token is known", cpath); goto out; }
    if (read_template(v, cfg, dir) < 0) { hone_fail(err, "%s: cannot read the chat template", dir); goto out; }
    rc = 0;
out:
    json_decref(root);
    json_decref(cfg);
    if (rc < 0) vocab_free(v);
    return rc;
}

void vocab_put(const gguf_vocab *v, gguf_writer *w) {
    gguf_set_str(w, "tokenizer.ggml.model", v->model == VOCAB_GPT2 ? "gpt2" : "llama");
    gguf_set_str(w, "tokenizer.ggml.pre", v->pre);
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, NULL, (size_t)v->n);
    if (v->model == VOCAB_LLAMA) gguf_set_arr_f32(w, "tokenizer.ggml.scores", v->scores, (size_t)v->n);
    gguf_set_arr_i32(w, "tokenizer.ggml.token_type", v->types, (size_t)v->n);
    if (v->model == VOCAB_GPT2) gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, NULL, v->n_merges);
    if (v->bos >= 0) gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (v->eos >= 0) gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (v->unk >= 0) gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (v->pad >= 0) gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad);
    gguf_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    gguf_set_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos);
    if (v->model == VOCAB_LLAMA) gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
    if (v->remove_extra_ws) gguf_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces", 1);
    if (v->chat_template) gguf_set_str(w, "tokenizer.chat_template", v->chat_template);
}
