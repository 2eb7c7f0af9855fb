/* tokenizer/save.c — adding special tokens (e.g. ChatML's <|im_start|>, <|im_end|>) and saving a
 * tokenizer back as tokenizer.json + tokenizer_config.json. The saved JSON is the loaded
 * one with added_tokens rebuilt and model.vocab / model.merges written back by hone (merges
 * as ["a", "b"] pairs, which the reference library reads and which allow spaces). */
#include "tokenizer/internal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int tokenizer_add_special_tokens(hone_tokenizer *tok, const char *const *tokens, int n, hone_error *err) {
    int added = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(tokens[i]);
        if (!len) continue;
        if (tok_vocab_get(&tok->added_index, tokens[i], len) >= 0) continue; /* already an added token */
        /* a token the model already has keeps its id; others get the next free id */
        int32_t id = tok_vocab_get(&tok->bpe.vocab, tokens[i], len);
        if (id < 0) id = tok->vocab_size++;
        if (tok_add_token(tok, tokens[i], len, id, 1, 0, 0, 0, 0) ||
            tok_vocab_set(&tok->added_index, tokens[i], len, tok->nadded - 1)) /* repeats in `tokens` */
            return hone_fail(err, "out of memory");
        added++;
    }
    return tok_refresh_added(tok, err) ? -1 : added;
}

static json_t *added_json(const tok_added *a, int with_id) {
    json_t *o = json_object();
    if (with_id) json_object_set_new(o, "id", json_integer(a->id));
    json_object_set_new(o, "content", json_stringn(a->content, a->len));
    json_object_set_new(o, "single_word", json_boolean(a->single_word));
    json_object_set_new(o, "lstrip", json_boolean(a->lstrip));
    json_object_set_new(o, "rstrip", json_boolean(a->rstrip));
    json_object_set_new(o, "normalized", json_boolean(a->normalized));
    json_object_set_new(o, "special", json_boolean(a->special));
    return o;
}

static int by_id(const void *x, const void *y) {
    const tok_added *a = *(const tok_added *const *)x, *b = *(const tok_added *const *)y;
    return (a->id > b->id) - (a->id < b->id);
}

/* Replaces the JSON string "marker" in text by repl. */
static int splice(tok_buf *out, const char *text, const char *marker, const tok_buf *repl) {
    const char *m = strstr(text, marker);
    if (!m) return -1;
    out->n = 0;
    return tok_buf_put(out, text, (size_t)(m - text)) || tok_buf_put(out, repl->p, repl->n) ||
           tok_buf_put(out, m + strlen(marker), strlen(m + strlen(marker)));
}

int tokenizer_save(const hone_tokenizer *tok, const char *dir, hone_error *err) {
    const tok_bpe *m = &tok->bpe;
    json_t *root = json_deep_copy(tok->root), *cfg = tok->config ? json_deep_copy(tok->config) : json_object();
    const tok_added **order = malloc(((size_t)tok->nadded + 1) * sizeof *order);
    tok_buf vocab = {0}, merges = {0}, a = {0}, b = {0};
    char *text = NULL;
    int rc = -1;
    if (!root || !cfg || !order) { hone_fail(err, "out of memory"); goto out; }
    if (mkdir(dir, 0755) && errno != EEXIST) { hone_fail(err, "%s: %s", dir, strerror(errno)); goto out; }
    for (int i = 0; i < tok->nadded; i++) order[i] = &tok->added[i];
    qsort(order, (size_t)tok->nadded, sizeof *order, by_id);

    json_t *arr = json_array(), *dec = json_object();
    for (int i = 0; i < tok->nadded; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", order[i]->id);
        json_array_append_new(arr, added_json(order[i], 1));
        json_object_set_new(dec, key, added_json(order[i], 0));
    }
    json_object_set_new(root, "added_tokens", arr);
    json_object_set_new(cfg, "added_tokens_decoder", dec);
    /* tokenizer.json is hone's tokenizer exactly; a model-specific class would make transformers
     * rebuild it from that class's rules instead */
    json_object_set_new(cfg, "tokenizer_class", json_string(HONE_TOKENIZER_HF_CLASS));
    if (tok->chat_template && !json_object_get(cfg, "chat_template")) /* e.g. read from chat_template.jinja */
        json_object_set_new(cfg, "chat_template", json_string(tok->chat_template));
    json_t *model = json_object_get(root, "model");
    json_object_set_new(model, "vocab", json_string("@@HONE_VOCAB@@"));
    json_object_set_new(model, "merges", json_string("@@HONE_MERGES@@"));

    if (tok_json_put_vocab(&vocab, &m->vocab, "    ") || tok_buf_put(&merges, "[", 1)) { hone_fail(err, "out of memory"); goto out; }
    for (size_t i = 0; i < m->nmerges; i++) {
        int32_t l = m->merges[2 * i], r = m->merges[2 * i + 1];
        if (tok_buf_put(&merges, i ? ",\n      [" : "\n      [", i ? 9 : 8) ||
            tok_json_put_string(&merges, tok_vocab_str(&m->vocab, l), m->vocab.len[l]) || tok_buf_put(&merges, ", ", 2) ||
            tok_json_put_string(&merges, tok_vocab_str(&m->vocab, r), m->vocab.len[r]) || tok_buf_put(&merges, "]", 1)) {
            hone_fail(err, "out of memory");
            goto out;
        }
    }
    if (tok_buf_put(&merges, "\n    ]", 6)) { hone_fail(err, "out of memory"); goto out; }

    text = json_dumps(root, JSON_INDENT(2));
    if (!text || splice(&a, text, "\"@@HONE_VOCAB@@\"", &vocab) || splice(&b, a.p, "\"@@HONE_MERGES@@\"", &merges) ||
        tok_buf_put(&b, "\n", 1)) {
        hone_fail(err, "%s: could not serialize tokenizer.json", dir);
        goto out;
    }
    if (tok_write_file(dir, "tokenizer.json", &b, err)) goto out;
    free(text);
    text = json_dumps(cfg, JSON_INDENT(2));
    a.n = 0;
    if (!text || tok_buf_put(&a, text, strlen(text)) || tok_buf_put(&a, "\n", 1)) { hone_fail(err, "out of memory"); goto out; }
    if (tok_write_file(dir, "tokenizer_config.json", &a, err)) goto out;
    rc = 0;
out:
    free(text);
    free(order);
    tok_buf_free(&vocab);
    tok_buf_free(&merges);
    tok_buf_free(&a);
    tok_buf_free(&b);
    if (root) json_decref(root);
    if (cfg) json_decref(cfg);
    return rc;
}
