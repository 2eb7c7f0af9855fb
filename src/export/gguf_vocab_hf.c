/* export/gguf_vocab_hf.c — GGUF tokenizer keys -> tokenizer.json + tokenizer_config.json
 * (gguf_vocab.h; import). "gpt2" files get the byte-level pipeline of their pre-tokenizer
 * name; "llama" files the SentencePiece-style one of Hugging Face's Llama conversion, with
 * merges rebuilt as transformers' SentencePieceExtractor does: for each piece in descending
 * score order, every split into two pieces of the vocabulary, by (left id, right id). */
#include "export/gguf_vocab.h"
#include "base/util.h"
#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(gguf_str s) {
    char *p = malloc(s.n + 1);
    if (p) { memcpy(p, s.s, s.n); p[s.n] = 0; }
    return p;
}

int vocab_from_gguf(gguf_vocab *v, const gguf_file *f, const char *path, hone_error *err) {
    memset(v, 0, sizeof *v);
    v->bos = v->eos = v->unk = v->pad = -1;
    char model[32];
    if (gguf_get_str(f, "tokenizer.ggml.model", model, sizeof model, path, err)) return -1;
    if (!strcmp(model, "gpt2")) v->model = VOCAB_GPT2;
    else if (!strcmp(model, "llama")) v->model = VOCAB_LLAMA;
    else return hone_fail(err, "%s: tokenizer.ggml.model '%s': hone reads 'llama' and 'gpt2' tokenizers", path, model);
    if (gguf_find(f, "tokenizer.ggml.pre")) {
        if (gguf_get_str(f, "tokenizer.ggml.pre", v->pre, sizeof v->pre, path, err)) return -1;
    } else snprintf(v->pre, sizeof v->pre, "default");
    const gguf_kv *tk = gguf_find(f, "tokenizer.ggml.tokens"), *sc = gguf_find(f, "tokenizer.ggml.scores");
    const gguf_kv *ty = gguf_find(f, "tokenizer.ggml.token_type"), *mg = gguf_find(f, "tokenizer.ggml.merges");
    if (!tk || tk->type != GGUF_ARRAY || tk->arr_type != GGUF_STRING || tk->n == 0 || tk->n > (1u << 24))
        return hone_fail(err, "%s: tokenizer.ggml.tokens is missing or not an array of strings", path);
    if ((sc && (sc->type != GGUF_ARRAY || sc->arr_type == GGUF_STRING || sc->n != tk->n)) ||
        (ty && (ty->type != GGUF_ARRAY || ty->arr_type == GGUF_STRING || ty->n != tk->n)))
        return hone_fail(err, "%s: tokenizer.ggml.scores / token_type must be numeric arrays of one entry per token", path);
    if (mg && (mg->type != GGUF_ARRAY || mg->arr_type != GGUF_STRING))
        return hone_fail(err, "%s: tokenizer.ggml.merges is not an array of strings", path);
    v->n = (int)tk->n;
    v->tok = calloc(v->n, sizeof(char *));
    v->scores = calloc(v->n, sizeof(float));
    v->types = calloc(v->n, sizeof(int32_t));
    if (!v->tok || !v->scores || !v->types) { vocab_free(v); return hone_fail(err, "out of memory"); }
    for (int i = 0; i < v->n; i++) {
        v->tok[i] = dup_str(tk->strs[i]);
        if (!v->tok[i]) { vocab_free(v); return hone_fail(err, "out of memory"); }
        if (strlen(v->tok[i]) != tk->strs[i].n) { vocab_free(v); return hone_fail(err, "%s: token %d contains a NUL byte", path, i); }
        double score = sc ? gguf_arr_num(sc, (uint64_t)i) : 0.0, type = ty ? gguf_arr_num(ty, (uint64_t)i) : TOK_NORMAL;
        if (!(fabs(score) <= FLT_MAX)) { vocab_free(v); return hone_fail(err, "%s: tokenizer.ggml.scores[%d] = %g is not a float", path, i, score); }
        if (!(type >= 0 && type <= TOK_BYTE && type == (int)type)) {
            vocab_free(v);
            return hone_fail(err, "%s: tokenizer.ggml.token_type[%d] = %g is not a llama.cpp token type (0 to 6)", path, i, type);
        }
        v->scores[i] = (float)score;
        v->types[i] = (int32_t)type;
    }
    if (mg && v->model == VOCAB_GPT2) {
        v->merges = calloc(mg->n ? mg->n : 1, sizeof(char *));
        if (!v->merges) { vocab_free(v); return hone_fail(err, "out of memory"); }
        for (uint64_t i = 0; i < mg->n; i++) {
            if (!(v->merges[i] = dup_str(mg->strs[i]))) { vocab_free(v); return hone_fail(err, "out of memory"); }
            v->n_merges = i + 1;
        }
    }
    static const char *ids[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                                "tokenizer.ggml.padding_token_id"};
    int *dst[] = {&v->bos, &v->eos, &v->unk, &v->pad};
    for (int i = 0; i < 4; i++) {
        int64_t id;
        if (gguf_find(f, ids[i]) && gguf_get_int(f, ids[i], &id, path, NULL) == 0 && id >= 0 && id < v->n) *dst[i] = (int)id;
    }
    int64_t b;
    v->add_bos = gguf_get_int(f, "tokenizer.ggml.add_bos_token", &b, path, NULL) == 0 ? (int)b : v->model == VOCAB_LLAMA;
    v->add_eos = gguf_get_int(f, "tokenizer.ggml.add_eos_token", &b, path, NULL) == 0 ? (int)b : 0;
    v->add_space_prefix = gguf_get_int(f, "tokenizer.ggml.add_space_prefix", &b, path, NULL) == 0 ? (int)b : v->model == VOCAB_LLAMA;
    v->remove_extra_ws = gguf_get_int(f, "tokenizer.ggml.remove_extra_whitespaces", &b, path, NULL) == 0 ? (int)b : 0;
    const gguf_kv *ct = gguf_find(f, "tokenizer.chat_template");
    if (ct && ct->type == GGUF_STRING && !(v->chat_template = dup_str(ct->str))) { vocab_free(v); return hone_fail(err, "out of memory"); }
    return 0;
}

static json_t *bytelevel(int use_regex) {
    return json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", use_regex);
}
static json_t *split(const char *re, const char *behavior, int invert) {
    return json_pack("{s:s,s:{s:s},s:s,s:b}", "type", "Split", "pattern", "Regex", re, "behavior", behavior, "invert", invert);
}

static int id_of(json_t *vocab, const char *s) {
    json_t *id = json_object_get(vocab, s);
    return json_is_integer(id) ? (int)json_integer_value(id) : -1;
}

static const gguf_vocab *sort_v;
static int by_score(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_v->scores[i] != sort_v->scores[j]) return sort_v->scores[i] > sort_v->scores[j] ? -1 : 1;
    return i - j;
}
typedef struct { int l, r; } pair_id;
static int by_ids(const void *a, const void *b) {
    const pair_id *x = a, *y = b;
    return x->l != y->l ? x->l - y->l : x->r - y->r;
}

/* SentencePieceExtractor's merges of a "llama" vocabulary */
static int spm_merges(const gguf_vocab *v, json_t *vocab, json_t *merges) {
    int *order = malloc(sizeof(int) * v->n);
    if (!order) return -1;
    for (int i = 0; i < v->n; i++) order[i] = i;
    sort_v = v;
    qsort(order, v->n, sizeof(int), by_score);
    char *buf = NULL;
    pair_id *local = NULL;
    size_t cap = 0;
    for (int k = 0; k < v->n; k++) {
        int id = order[k];
        if (v->types[id] != TOK_NORMAL && v->types[id] != TOK_USER_DEFINED) continue;
        const char *s = v->tok[id];
        size_t len = strlen(s), nl = 0;
        if (len + 1 > cap) {
            cap = 2 * (len + 1);
            char *nb = realloc(buf, cap);
            pair_id *nlp = realloc(local, sizeof(pair_id) * cap);
            if (!nb || !nlp) { free(nb ? nb : buf); free(nlp ? nlp : local); free(order); return -1; }
            buf = nb;
            local = nlp;
        }
        for (size_t cut = 1; cut < len; cut++) {
            if (((unsigned char)s[cut] & 0xC0) == 0x80) continue; /* inside a UTF-8 sequence */
            memcpy(buf, s, cut);
            buf[cut] = 0;
            int l = id_of(vocab, buf), r = id_of(vocab, s + cut);
            if (l >= 0 && r >= 0) local[nl++] = (pair_id){l, r};
        }
        qsort(local, nl, sizeof(pair_id), by_ids);
        for (size_t i = 0; i < nl; i++) json_array_append_new(merges, json_pack("[s,s]", v->tok[local[i].l], v->tok[local[i].r]));
    }
    free(buf);
    free(local);
    free(order);
    return 0;
}

int vocab_write_hf(const gguf_vocab *v, const char *dir, hone_error *err) {
    json_t *root = json_object(), *vocab = json_object(), *merges = json_array(), *added = json_array();
    for (int i = 0; i < v->n; i++) {
        json_object_set_new(vocab, v->tok[i], json_integer(i));
        if (v->types[i] == TOK_CONTROL || v->types[i] == TOK_USER_DEFINED || v->types[i] == TOK_UNKNOWN)
            json_array_append_new(added, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", i, "content", v->tok[i], "single_word", 0,
                                                   "lstrip", 0, "rstrip", 0, "normalized", v->types[i] == TOK_USER_DEFINED,
                                                   "special", v->types[i] != TOK_USER_DEFINED));
    }
    json_t *norm = json_null(), *pre = json_null(), *dec, *model;
    const char *unk = v->unk >= 0 ? v->tok[v->unk] : NULL;
    if (v->model == VOCAB_GPT2) {
        for (size_t i = 0; i < v->n_merges; i++) json_array_append_new(merges, json_string(v->merges[i]));
        const char *p = v->pre;
        if (!strcmp(p, "gpt-2") || !strcmp(p, "default")) pre = bytelevel(1);
        else if (!strcmp(p, "llama-bpe") || !strcmp(p, "llama3")) pre = json_pack("{s:s,s:[o,o]}", "type", "Sequence", "pretokenizers", split(gguf_re_llama3, "Isolated", 0), bytelevel(0));
        else if (!strcmp(p, "qwen2")) {
            pre = json_pack("{s:s,s:[o,o]}", "type", "Sequence", "pretokenizers", split(gguf_re_qwen2, "Isolated", 0), bytelevel(0));
            norm = json_pack("{s:s}", "type", "NFC");
        } else if (!strcmp(p, "smollm"))
            pre = json_pack("{s:s,s:[{s:s,s:b},o]}", "type", "Sequence", "pretokenizers", "type", "Digits", "individual_digits", 1, bytelevel(1));
        else if (!strcmp(p, "gpt-4o")) pre = json_pack("{s:s,s:[o,o]}", "type", "Sequence", "pretokenizers", split(gguf_re_o200k, "Removed", 1), bytelevel(0));
        else {
            json_decref(root); json_decref(vocab); json_decref(merges); json_decref(added); json_decref(norm);
            return hone_fail(err, "tokenizer.ggml.pre '%s': hone knows gpt-2, llama-bpe, qwen2, smollm and gpt-4o", p);
        }
        dec = bytelevel(1);
        model = json_pack("{s:s,s:n,s:n,s:n,s:n,s:b,s:b,s:b}", "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix",
                          "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", !strcmp(p, "llama-bpe"));
    } else {
        if (spm_merges(v, vocab, merges) < 0) {
            json_decref(root); json_decref(vocab); json_decref(merges); json_decref(added);
            return hone_fail(err, "out of memory");
        }
        norm = json_pack("{s:s,s:[]}", "type", "Sequence", "normalizers");
        if (v->remove_extra_ws) {
            json_array_append_new(json_object_get(norm, "normalizers"), json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "Regex", " {2,}", "content", " "));
            json_array_append_new(json_object_get(norm, "normalizers"),
                                  json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "Regex", "\\A \\z|\\A | \\z", "content", ""));
        }
        if (v->add_space_prefix) json_array_append_new(json_object_get(norm, "normalizers"), json_pack("{s:s,s:s}", "type", "Prepend", "prepend", "\xE2\x96\x81"));
        json_array_append_new(json_object_get(norm, "normalizers"),
                              json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "String", " ", "content", "\xE2\x96\x81"));
        dec = json_pack("{s:s,s:[{s:s,s:{s:s},s:s},{s:s},{s:s}]}", "type", "Sequence", "decoders", "type", "Replace", "pattern", "String",
                        "\xE2\x96\x81", "content", " ", "type", "ByteFallback", "type", "Fuse");
        if (v->add_space_prefix)
            json_array_append_new(json_object_get(dec, "decoders"), json_pack("{s:s,s:s,s:i,s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
        model = json_pack("{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:b}", "type", "BPE", "dropout", "unk_token", unk ? json_string(unk) : json_null(),
                          "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1, "byte_fallback", 1, "ignore_merges", 0);
    }
    json_object_set(model, "vocab", vocab);
    json_object_set(model, "merges", merges);
    /* the post-processor adds bos / eos as the GGUF says */
    json_t *single = json_array(), *pair = json_array(), *special = json_object();
    if (v->add_bos && v->bos >= 0) {
        json_array_append_new(single, json_pack("{s:{s:s,s:i}}", "SpecialToken", "id", v->tok[v->bos], "type_id", 0));
        json_array_append_new(pair, json_pack("{s:{s:s,s:i}}", "SpecialToken", "id", v->tok[v->bos], "type_id", 0));
        json_object_set_new(special, v->tok[v->bos], json_pack("{s:s,s:[i],s:[s]}", "id", v->tok[v->bos], "ids", v->bos, "tokens", v->tok[v->bos]));
    }
    json_array_append_new(single, json_pack("{s:{s:s,s:i}}", "Sequence", "id", "A", "type_id", 0));
    json_array_append_new(pair, json_pack("{s:{s:s,s:i}}", "Sequence", "id", "A", "type_id", 0));
    json_array_append_new(pair, json_pack("{s:{s:s,s:i}}", "Sequence", "id", "B", "type_id", 1));
    if (v->add_eos && v->eos >= 0) {
        json_array_append_new(single, json_pack("{s:{s:s,s:i}}", "SpecialToken", "id", v->tok[v->eos], "type_id", 0));
        json_object_set_new(special, v->tok[v->eos], json_pack("{s:s,s:[i],s:[s]}", "id", v->tok[v->eos], "ids", v->eos, "tokens", v->tok[v->eos]));
    }
    json_t *post = json_pack("{s:s,s:o,s:o,s:o}", "type", "TemplateProcessing", "single", single, "pair", pair, "special_tokens", special);
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", norm);
    json_object_set_new(root, "pre_tokenizer", pre);
    json_object_set_new(root, "post_processor", post);
    json_object_set_new(root, "decoder", dec);
    json_object_set_new(root, "model", model);
    json_decref(vocab);
    json_decref(merges);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    json_t *cfg = json_pack("{s:b,s:b,s:s}", "add_bos_token", v->add_bos, "add_eos_token", v->add_eos, "tokenizer_class", "PreTrainedTokenizerFast");
    if (v->bos >= 0) json_object_set_new(cfg, "bos_token", json_string(v->tok[v->bos]));
    if (v->eos >= 0) json_object_set_new(cfg, "eos_token", json_string(v->tok[v->eos]));
    if (unk) json_object_set_new(cfg, "unk_token", json_string(unk));
    if (v->pad >= 0) json_object_set_new(cfg, "pad_token", json_string(v->tok[v->pad]));
    if (v->chat_template) json_object_set_new(cfg, "chat_template", json_string(v->chat_template));
    char *ctext = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(cfg);
    int rc;
    if (!text || !ctext) rc = hone_fail(err, "out of memory (or a token that is not UTF-8)");
    else {
        char p[4096];
        hone_path_join(p, sizeof p, dir, "tokenizer.json");
        rc = hone_write_file(p, text, strlen(text), err);
        hone_path_join(p, sizeof p, dir, "tokenizer_config.json");
        if (rc == 0) rc = hone_write_file(p, ctext, strlen(ctext), err);
    }
    free(text);
    free(ctext);
    return rc;
}
