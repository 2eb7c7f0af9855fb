/* tokenizer/tokenizer.c — loading a tokenizer.json (+ tokenizer_config.json), the added-token
 * tries, and the encode / decode pipelines in the reference library's order:
 *   1. added tokens with normalized=false are cut out of the raw text (leftmost-longest,
 *      honoring single_word / lstrip / rstrip);
 *   2. every other piece is normalized, then added tokens with normalized=true are cut
 *      out of the normalized text;
 *   3. the remaining pieces are pre-tokenized and run through the BPE model;
 *   4. with add_special, the post-processor (TemplateProcessing: BOS...) is applied.
 * Invalid UTF-8 (see docs/tokenizer.md): each invalid byte splits the text like an added
 * token and becomes its own byte token (byte-level: the byte's character token; byte
 * fallback: <0xXX>); other vocabularies fail with the byte offset. */
#include "tokenizer/internal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the workspace pool ------------------------------------------------------------- */
tok_ws *tok_ws_get(const hone_tokenizer *ctok) {
    hone_tokenizer *tok = (hone_tokenizer *)ctok; /* only the pool is touched */
    tok_ws *w = NULL;
    pthread_mutex_lock(&tok->pool_mu);
    if (tok->npool) w = tok->pool[--tok->npool];
    pthread_mutex_unlock(&tok->pool_mu);
    if (w) return w;
    w = malloc(sizeof *w);
    if (w && tok_ws_init(w)) { free(w); w = NULL; }
    return w;
}

void tok_ws_put(const hone_tokenizer *ctok, tok_ws *w) {
    hone_tokenizer *tok = (hone_tokenizer *)ctok;
    if (!w) return;
    pthread_mutex_lock(&tok->pool_mu);
    if (tok->npool < TOK_POOL_MAX) { tok->pool[tok->npool++] = w; w = NULL; }
    pthread_mutex_unlock(&tok->pool_mu);
    if (w) { tok_ws_free(w); free(w); }
}

/* ---- added-token trie ----------------------------------------------------------------- */
static void trie_free(tok_trie *t) {
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

static void trie_init(tok_trie *t) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++) t->root[i] = -1;
}

static int trie_add(tok_trie *t, const unsigned char *s, size_t n, int32_t term) {
    if (!n) return 0;
    int32_t *link = &t->root[s[0]];
    int32_t node = -1;
    for (size_t i = 0; i < n; i++) {
        /* find the child with byte s[i] in the list starting at *link */
        int32_t c = *link;
        while (c >= 0 && t->nodes[c].byte != s[i]) c = t->nodes[c].sibling;
        if (c < 0) {
            if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 256;
                tok_trie_node *p = realloc(t->nodes, cap * sizeof *p);
                if (!p) return -1;
                t->nodes = p;
                t->cap = cap;
            }
            c = (int32_t)t->n++;
            t->nodes[c] = (tok_trie_node){-1, *link, -1, s[i]};
            *link = c;
        }
        node = c;
        link = &t->nodes[node].child;
    }
    if (t->nodes[node].term < 0) t->nodes[node].term = term; /* the first pattern wins */
    return 0;
}

/* Longest pattern starting at s[0], or -1. */
static int32_t trie_longest(const tok_trie *t, const unsigned char *s, size_t n, size_t *len) {
    int32_t best = -1;
    int32_t c = t->root[s[0]];
    for (size_t i = 0; c >= 0;) {
        if (t->nodes[c].term >= 0) { best = t->nodes[c].term; *len = i + 1; }
        if (++i >= n) break;
        c = t->nodes[c].child;
        while (c >= 0 && t->nodes[c].byte != s[i]) c = t->nodes[c].sibling;
    }
    return best;
}

static int32_t last_cp(const unsigned char *s, size_t n) {
    if (!n) return -1;
    size_t k = n - 1;
    while (k > 0 && (s[k] & 0xC0) == 0x80 && n - k < 4) k--;
    int32_t cp;
    return tok_utf8_decode(s + k, n - k, &cp) == (int)(n - k) ? cp : -1;
}

static int32_t first_cp(const unsigned char *s, size_t n) {
    int32_t cp;
    return tok_utf8_decode(s, n, &cp) ? cp : -1;
}

/* The reference's find_matches: calls seg(ctx, start, end, added index or -1) for the
 * pieces covering s in order. */
typedef int (*seg_fn)(const hone_tokenizer *tok, tok_ws *w, const char *s, size_t n, int32_t added, size_t base,
                      int first, hone_error *err);

static int split_added(const hone_tokenizer *tok, const tok_trie *t, tok_ws *w, const char *str, size_t n, size_t base,
                       int first, seg_fn seg, hone_error *err) {
    const unsigned char *s = (const unsigned char *)str;
    size_t start_offset = 0, i = 0;
    if (t->n)
        while (i < n) {
            if (t->root[s[i]] < 0) { i++; continue; }
            size_t ml = 0;
            int32_t a = trie_longest(t, s + i, n - i, &ml);
            if (a < 0) { i++; continue; }
            size_t start = i, stop = i + ml;
            i = stop; /* the search goes on after the match, whatever becomes of it */
            const tok_added *ad = &tok->added[a];
            if (ad->single_word) {
                int32_t b = last_cp(s, start), f = stop < n ? first_cp(s + stop, n - stop) : -1;
                int start_space = start == 0 || b < 0 || !tok_is_word(b);
                int stop_space = stop == n || f < 0 || !tok_is_word(f);
                if (!start_space || !stop_space) continue;
            }
            if (ad->lstrip) {
                size_t ns = start;
                for (int32_t cp; ns > start_offset && (cp = last_cp(s, ns)) >= 0 && tok_is_whitespace(cp);) {
                    char u[4];
                    ns -= (size_t)tok_utf8_encode(cp, u);
                }
                start = ns;
            }
            if (ad->rstrip) {
                int32_t cp;
                int l;
                while (stop < n && (l = tok_utf8_decode(s + stop, n - stop, &cp)) && tok_is_whitespace(cp)) stop += (size_t)l;
                if (stop > i) i = stop;
            }
            if (start_offset < start && seg(tok, w, str + start_offset, start - start_offset, -1, base + start_offset, first && start_offset == 0, err))
                return -1;
            if (seg(tok, w, str + start, stop - start, a, base + start, 0, err)) return -1;
            start_offset = stop;
        }
    if (start_offset < n && seg(tok, w, str + start_offset, n - start_offset, -1, base + start_offset, first && start_offset == 0, err))
        return -1;
    return 0;
}

/* ---- encode --------------------------------------------------------------------------- */
static int seg_model(const hone_tokenizer *tok, tok_ws *w, const char *s, size_t n, int32_t added, size_t base,
                     int first, hone_error *err) {
    if (added >= 0) return tok_ws_emit(w, tok->added[added].id) ? hone_fail(err, "out of memory") : 0;
    tok_pieces_clear(&w->pa);
    if (tok_pieces_push(&w->pa, s, n)) return hone_fail(err, "out of memory");
    if (tok_pretokenize(&tok->pretok, w, first, err)) return -1;
    /* pa is not touched by the model, so its pieces stay valid while we encode them */
    for (size_t i = 0; i < w->pa.n; i++)
        if (tok_bpe_encode(&tok->bpe, w, w->pa.b.p + w->pa.s[i].off, w->pa.s[i].len, err)) return -1;
    return 0;
}

static int encode_valid(const hone_tokenizer *tok, tok_ws *w, const char *s, size_t n, size_t base, int first,
                        hone_error *err) {
    if (tok->normalizer.kind == TOKC_NONE) return split_added(tok, &tok->trie_norm, w, s, n, base, first, seg_model, err);
    /* w->norm holds the normalized text for the whole split; nothing below writes to it */
    if (tok_normalize(&tok->normalizer, s, n, &w->norm, err)) return -1;
    return split_added(tok, &tok->trie_norm, w, w->norm.p ? w->norm.p : "", w->norm.n, base, first, seg_model, err);
}

static int seg_raw(const hone_tokenizer *tok, tok_ws *w, const char *s, size_t n, int32_t added, size_t base,
                   int first, hone_error *err) {
    if (added >= 0) return tok_ws_emit(w, tok->added[added].id) ? hone_fail(err, "out of memory") : 0;
    size_t i = 0;
    while (i < n) {
        size_t v = tok_utf8_valid_prefix(s + i, n - i);
        if (v && encode_valid(tok, w, s + i, v, base + i, first && i == 0, err)) return -1;
        i += v;
        if (i >= n) break;
        unsigned char b = (unsigned char)s[i];
        int32_t id = -1;
        if (tok->byte_level) id = tok->bpe.cp_id[tok_byte_to_cp[b]];
        else if (tok->bpe.byte_fallback) id = tok->bpe.byte_id[b];
        if (id < 0) return hone_fail(err, "%s: input is not valid UTF-8 at byte offset %zu", tok->path, base + i);
        if (tok_ws_emit(w, id)) return hone_fail(err, "out of memory");
        i++;
    }
    return 0;
}

static int post_process(const tok_comp *c, tok_ws *w) {
    if (c->kind == TOKO_SEQUENCE) {
        for (int i = 0; i < c->nsub; i++)
            if (post_process(&c->sub[i], w)) return -1;
        return 0;
    }
    if (c->kind != TOKO_TEMPLATE) return 0;
    size_t n = w->nout;
    int32_t *seq = malloc((n + 1) * sizeof *seq);
    if (!seq) return -1;
    if (n) memcpy(seq, w->out, n * sizeof *seq);
    w->nout = 0;
    int rc = 0;
    for (int i = 0; i < c->nids && !rc; i++) {
        if (c->ids[i] >= 0) rc = tok_ws_emit(w, c->ids[i]);
        else
            for (size_t k = 0; k < n && !rc; k++) rc = tok_ws_emit(w, seq[k]);
    }
    free(seq);
    return rc;
}

static int encode_ws(const hone_tokenizer *tok, tok_ws *w, const char *text, size_t len, int add_special,
                     hone_error *err) {
    w->nout = 0;
    if (!text && len) return hone_fail(err, "tokenizer_encode: NULL text");
    if (split_added(tok, &tok->trie_raw, w, text ? text : "", len, 0, 1, seg_raw, err)) return -1;
    if (add_special && post_process(&tok->post, w)) return hone_fail(err, "out of memory");
    return 0;
}

int tokenizer_encode(const hone_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                     size_t *n, hone_error *err) {
    *ids = NULL;
    *n = 0;
    tok_ws *w = tok_ws_get(tok);
    if (!w) return hone_fail(err, "out of memory");
    int rc = encode_ws(tok, w, text, len, add_special, err);
    if (!rc) {
        *ids = malloc((w->nout + 1) * sizeof **ids);
        if (!*ids) rc = hone_fail(err, "out of memory");
        else {
            if (w->nout) memcpy(*ids, w->out, w->nout * sizeof **ids);
            *n = w->nout;
        }
    }
    tok_ws_put(tok, w);
    return rc;
}

int tokenizer_encode_batch(const hone_tokenizer *tok, const char **texts, const size_t *lens, size_t count,
                           int add_special, int32_t **ids, size_t *ns, hone_error *err) {
    for (size_t i = 0; i < count; i++) { ids[i] = NULL; ns[i] = 0; }
    long bad = -1; /* lowest failing index, so the reported error does not depend on threads */
    hone_error first = {{0}};
#pragma omp parallel
    {
        tok_ws *w = tok_ws_get(tok);
        int ok = w != NULL;
        hone_error e = {{0}};
#pragma omp for schedule(dynamic, 4)
        for (long i = 0; i < (long)count; i++) {
            int rc = ok ? encode_ws(tok, w, texts[i], lens[i], add_special, &e) : hone_fail(&e, "out of memory");
            if (!rc) {
                ids[i] = malloc((w->nout + 1) * sizeof **ids);
                if (ids[i]) { if (w->nout) memcpy(ids[i], w->out, w->nout * sizeof **ids); ns[i] = w->nout; }
                else rc = hone_fail(&e, "out of memory");
            }
            if (rc) {
#pragma omp critical(tok_batch_err)
                if (bad < 0 || i < bad) { bad = i; first = e; }
            }
        }
        tok_ws_put(tok, w);
    }
    if (bad >= 0) {
        for (size_t i = 0; i < count; i++) { free(ids[i]); ids[i] = NULL; ns[i] = 0; }
        if (err) *err = first;
        return hone_fail_prefix(err, "text %ld", bad);
    }
    return 0;
}

/* ---- decode --------------------------------------------------------------------------- */
static const tok_added *added_of(const hone_tokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->n_added_by_id || tok->added_by_id[id] < 0) return NULL;
    return &tok->added[tok->added_by_id[id]];
}

const char *tokenizer_id_to_token(const hone_tokenizer *tok, int32_t id) {
    const tok_added *a = added_of(tok, id);
    return a ? a->content : tok_vocab_str(&tok->bpe.vocab, id);
}

int tokenizer_decode(const hone_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, char **out,
                     size_t *len, hone_error *err) {
    tok_pieces a = {0}, b = {0};
    int rc = -1;
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const tok_added *ad = added_of(tok, ids[i]);
        const char *s = ad ? ad->content : tok_vocab_str(&tok->bpe.vocab, ids[i]);
        if (!s) continue; /* unknown ids are skipped, as the reference does */
        if (skip_special && tokenizer_is_special(tok, ids[i])) continue;
        if (tok->decoder.kind == TOKC_NONE && a.n && tok_pieces_push(&a, " ", 1)) goto oom;
        if (tok_pieces_push(&a, s, ad ? ad->len : tok->bpe.vocab.len[ids[i]])) goto oom;
    }
    if (tok_decode_chain(&tok->decoder, &a, &b, err)) goto done;
    *out = malloc(a.b.n + 1);
    if (!*out) goto oom;
    /* pieces are stored back to back in order: the buffer is their concatenation */
    size_t k = 0;
    for (size_t i = 0; i < a.n; i++) { memcpy(*out + k, a.b.p + a.s[i].off, a.s[i].len); k += a.s[i].len; }
    (*out)[k] = 0;
    if (len) *len = k;
    rc = 0;
    goto done;
oom:
    rc = hone_fail(err, "out of memory");
done:
    tok_pieces_free(&a);
    tok_pieces_free(&b);
    return rc;
}

/* ---- lookups -------------------------------------------------------------------------- */
int tokenizer_token_to_id(const hone_tokenizer *tok, const char *token) {
    size_t n = strlen(token);
    int a = tok_vocab_get(&tok->added_index, token, n);
    return a >= 0 ? tok->added[a].id : tok_vocab_get(&tok->bpe.vocab, token, n);
}

int tokenizer_vocab_size(const hone_tokenizer *tok) { return tok->vocab_size; }
int tokenizer_is_special(const hone_tokenizer *tok, int32_t id) {
    const tok_added *a = added_of(tok, id);
    return a && a->special;
}
int tokenizer_bos_id(const hone_tokenizer *tok) { return tok->bos_id; }
int tokenizer_eos_id(const hone_tokenizer *tok) { return tok->eos_id; }
int tokenizer_pad_id(const hone_tokenizer *tok) { return tok->pad_id; }
int tokenizer_add_bos(const hone_tokenizer *tok) { return tok->add_bos; }
const char *tokenizer_chat_template(const hone_tokenizer *tok) { return tok->chat_template; }

/* ---- loading -------------------------------------------------------------------------- */
void tokenizer_free(hone_tokenizer *tok) {
    if (!tok) return;
    tok_bpe_free(&tok->bpe);
    tok_comp_free(&tok->normalizer);
    tok_comp_free(&tok->pretok);
    tok_comp_free(&tok->post);
    tok_comp_free(&tok->decoder);
    for (int i = 0; i < tok->nadded; i++) {
        if (tok->added[i].pattern != tok->added[i].content) free(tok->added[i].pattern);
        free(tok->added[i].content);
    }
    free(tok->added);
    free(tok->added_by_id);
    tok_vocab_free(&tok->added_index);
    trie_free(&tok->trie_raw);
    trie_free(&tok->trie_norm);
    free(tok->chat_template);
    if (tok->root) json_decref(tok->root);
    if (tok->config) json_decref(tok->config);
    for (int i = 0; i < tok->npool; i++) { tok_ws_free(tok->pool[i]); free(tok->pool[i]); }
    pthread_mutex_destroy(&tok->pool_mu);
    free(tok);
}

/* Rebuilds the id index and both tries from tok->added (after load or additions). */
int tok_refresh_added(hone_tokenizer *tok, hone_error *err) {
    int32_t maxid = tok->bpe.vocab.n - 1;
    for (int i = 0; i < tok->nadded; i++)
        if (tok->added[i].id > maxid) maxid = tok->added[i].id;
    tok->vocab_size = maxid + 1;
    free(tok->added_by_id);
    tok->n_added_by_id = maxid + 1;
    tok->added_by_id = malloc(((size_t)maxid + 1) * sizeof *tok->added_by_id);
    if (!tok->added_by_id) return hone_fail(err, "out of memory");
    memset(tok->added_by_id, 0xFF, ((size_t)maxid + 1) * sizeof *tok->added_by_id);
    trie_free(&tok->trie_raw);
    trie_free(&tok->trie_norm);
    tok_vocab_free(&tok->added_index);
    if (tok_vocab_init(&tok->added_index, (size_t)tok->nadded + 1)) return hone_fail(err, "out of memory");
    for (int i = 0; i < tok->nadded; i++)
        if (tok_vocab_get(&tok->added_index, tok->added[i].content, tok->added[i].len) < 0 &&
            tok_vocab_set(&tok->added_index, tok->added[i].content, tok->added[i].len, i))
            return hone_fail(err, "out of memory");
    trie_init(&tok->trie_raw);
    trie_init(&tok->trie_norm);
    /* the reference orders the patterns: special tokens first, then the others */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < tok->nadded; i++) {
            tok_added *a = &tok->added[i];
            if (a->special != (pass == 0)) continue;
            tok->added_by_id[a->id] = i;
            if (!a->pattern) {
                a->pattern = a->content;
                a->plen = a->len;
                if (a->normalized && tok->normalizer.kind != TOKC_NONE) {
                    tok_buf nb = {0};
                    if (tok_normalize(&tok->normalizer, a->content, a->len, &nb, err)) { tok_buf_free(&nb); return -1; }
                    if (tok_buf_put(&nb, "", 0)) return hone_fail(err, "out of memory");
                    a->pattern = nb.p;
                    a->plen = nb.n;
                }
            }
            tok_trie *t = a->normalized ? &tok->trie_norm : &tok->trie_raw;
            if (trie_add(t, (const unsigned char *)a->pattern, a->plen, i)) return hone_fail(err, "out of memory");
        }
    return 0;
}

int tok_add_token(hone_tokenizer *tok, const char *content, size_t len, int32_t id, int special, int normalized,
                  int lstrip, int rstrip, int single_word) {
    if (tok->nadded == tok->capadded) {
        int cap = tok->capadded ? tok->capadded * 2 : 64;
        tok_added *p = realloc(tok->added, (size_t)cap * sizeof *p);
        if (!p) return -1;
        tok->added = p;
        tok->capadded = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, content, len);
    c[len] = 0;
    tok->added[tok->nadded++] = (tok_added){c, len, NULL, 0, id, (uint8_t)special, (uint8_t)normalized,
                                            (uint8_t)lstrip, (uint8_t)rstrip, (uint8_t)single_word};
    return 0;
}

static int load_added(hone_tokenizer *tok, json_t *arr, const char *what, hone_error *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return hone_fail(err, "%s: added_tokens is not a list", what);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *t = json_array_get(arr, i), *c = json_object_get(t, "content"), *id = json_object_get(t, "id");
        if (!json_is_string(c) || !json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= TOK_MAX_ID)
            return hone_fail(err, "%s: added_tokens[%zu] needs a string content and an id", what, i);
        if (!json_string_length(c)) continue;
#define B(k, d) (json_is_boolean(json_object_get(t, k)) ? json_is_true(json_object_get(t, k)) : (d))
        int special = B("special", 0);
        if (tok_add_token(tok, json_string_value(c), json_string_length(c), (int32_t)json_integer_value(id), special,
                          B("normalized", !special), B("lstrip", 0), B("rstrip", 0), B("single_word", 0)))
            return hone_fail(err, "out of memory");
#undef B
    }
    return 0;
}

static int has_bytelevel(const tok_comp *c) {
    if (c->kind == TOKP_BYTELEVEL) return 1;
    for (int i = 0; i < c->nsub; i++)
        if (has_bytelevel(&c->sub[i])) return 1;
    return 0;
}

static const tok_comp *find_template(const tok_comp *c) {
    if (c->kind == TOKO_TEMPLATE) return c;
    for (int i = 0; i < c->nsub; i++)
        if (find_template(&c->sub[i])) return find_template(&c->sub[i]);
    return NULL;
}

static int config_token_id(const hone_tokenizer *tok, const char *key) {
    json_t *v = json_object_get(tok->config, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? tokenizer_token_to_id(tok, json_string_value(v)) : -2; /* -2: not given */
}

static int first_present(const hone_tokenizer *tok, const char *const *names) {
    for (; *names; names++) {
        int id = tokenizer_token_to_id(tok, *names);
        if (id >= 0) return id;
    }
    return -1;
}

static int load_config(hone_tokenizer *tok, hone_error *err) {
    static const char *const eos_names[] = {"</s>", "<eos>", "<|endoftext|>", "<|end_of_text|>", NULL};
    static const char *const pad_names[] = {"<pad>", "[PAD]", "<|pad|>", NULL};
    const tok_comp *tpl = find_template(&tok->post);
    int tpl_bos = tpl && tpl->nids > 0 && tpl->ids[0] >= 0 ? tpl->ids[0] : -1;
    tok->bos_id = tok->eos_id = tok->pad_id = -1;
    if (tok->config) {
        int b = config_token_id(tok, "bos_token"), e = config_token_id(tok, "eos_token"), p = config_token_id(tok, "pad_token");
        tok->bos_id = b >= 0 ? b : -1;
        tok->eos_id = e >= 0 ? e : -1;
        tok->pad_id = p >= 0 ? p : -1;
        if (b == -2) tok->bos_id = tpl_bos;
        if (e == -2) tok->eos_id = first_present(tok, eos_names);
        json_t *ct = json_object_get(tok->config, "chat_template");
        if (json_is_array(ct)) { /* [{"name": ..., "template": ...}]: the default one */
            json_t *pick = json_array_get(ct, 0);
            for (size_t i = 0; i < json_array_size(ct); i++)
                if (json_is_string(json_object_get(json_array_get(ct, i), "name")) &&
                    !strcmp(json_string_value(json_object_get(json_array_get(ct, i), "name")), "default"))
                    pick = json_array_get(ct, i);
            ct = json_object_get(pick, "template");
        }
        if (json_is_string(ct) && !(tok->chat_template = strdup(json_string_value(ct)))) return hone_fail(err, "out of memory");
    } else {
        tok->bos_id = tpl_bos;
        tok->eos_id = first_present(tok, eos_names);
        tok->pad_id = first_present(tok, pad_names);
    }
    tok->add_bos = tpl_bos >= 0 && (tok->bos_id < 0 || tpl_bos == tok->bos_id);
    return 0;
}

static int load_model(hone_tokenizer *tok, json_t *model, const char *js, const size_t span[4], const char *what,
                      hone_error *err) {
    tok_bpe *m = &tok->bpe;
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(model)) return hone_fail(err, "%s: no \"model\" object", what);
    if (type && strcmp(type, "BPE")) return hone_fail(err, "%s: unsupported model type \"%s\" (hone supports BPE)", what, type);
    if (!type && !span[3]) return hone_fail(err, "%s: model has no type and no merges; only BPE is supported", what);
    json_t *d = json_object_get(model, "dropout");
    if (d && !json_is_null(d) && json_number_value(d) != 0.0)
        return hone_fail(err, "%s: model.dropout %g is not supported (only null)", what, json_number_value(d));
    m->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    m->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    m->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    const char *keys[3] = {"unk_token", "continuing_subword_prefix", "end_of_word_suffix"};
    char **dst[3] = {&m->unk_token, &m->prefix, &m->suffix};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(model, keys[i]);
        if (json_is_string(v) && json_string_length(v) && !(*dst[i] = strdup(json_string_value(v))))
            return hone_fail(err, "out of memory");
    }
    if (!span[1]) return hone_fail(err, "%s: model.vocab is missing", what);
    if (tok_bpe_load_vocab(m, js + span[0], span[1] - span[0], what, err)) return -1;
    if (span[3] && tok_bpe_load_merges(m, js + span[2], span[3] - span[2], what, err)) return -1;
    return tok_bpe_finish(m, what, err);
}

int tokenizer_load_json(hone_tokenizer **out, const char *js, size_t len, const char *config_json, size_t config_len,
                        const char *what, hone_error *err) {
    *out = NULL;
    hone_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return hone_fail(err, "out of memory");
    pthread_mutex_init(&tok->pool_mu, NULL);
    snprintf(tok->path, sizeof tok->path, "%s", what);
    size_t span[4];
    if (tok_json_find_model_arrays(js, len, span)) {
        /* let jansson name the syntax error */
        json_error_t je;
        json_t *j = json_loadb(js, len, 0, &je);
        if (j) { json_decref(j); hone_fail(err, "%s: no \"model\" object", what); }
        else hone_fail(err, "%s:%d:%d: malformed JSON: %s", what, je.line, je.column, je.text);
        goto fail;
    }
    /* jansson parses everything but the two big arrays, which are cut out ({} and [] left);
     * line numbers in its messages are those of the text without them */
    char *rest = malloc(len + 5);
    if (!rest) { hone_fail(err, "out of memory"); goto fail; }
    size_t rn = 0, from = 0;
    int order = span[2] && span[2] < span[0]; /* merges before vocab in the file */
    for (int q = 0; q < 2; q++) {
        int k = order ? 1 - q : q;
        size_t s = span[2 * k], e = span[2 * k + 1];
        if (!e) continue;
        memcpy(rest + rn, js + from, s - from);
        rn += s - from;
        memcpy(rest + rn, k ? "[]" : "{}", 2);
        rn += 2;
        from = e;
    }
    memcpy(rest + rn, js + from, len - from);
    rn += len - from;
    json_error_t je;
    tok->root = json_loadb(rest, rn, 0, &je);
    free(rest);
    if (!tok->root || !json_is_object(tok->root)) {
        if (tok->root) hone_fail(err, "%s: top level is not an object", what);
        else hone_fail(err, "%s:%d:%d: malformed JSON: %s", what, je.line, je.column, je.text);
        goto fail;
    }
    if (config_json) {
        tok->config = json_loadb(config_json, config_len, JSON_DECODE_INT_AS_REAL, &je); /* model_max_length can be 1e30 */
        if (!tok->config || !json_is_object(tok->config)) {
            hone_fail(err, "%s: tokenizer_config.json:%d:%d: malformed JSON: %s", what, je.line, je.column, je.text);
            goto fail;
        }
    }
    if (load_model(tok, json_object_get(tok->root, "model"), js, span, what, err)) goto fail;
    if (tok_comp_parse(&tok->normalizer, json_object_get(tok->root, "normalizer"), 0, what, err) ||
        tok_comp_parse(&tok->pretok, json_object_get(tok->root, "pre_tokenizer"), 1, what, err) ||
        tok_comp_parse(&tok->post, json_object_get(tok->root, "post_processor"), 2, what, err) ||
        tok_comp_parse(&tok->decoder, json_object_get(tok->root, "decoder"), 3, what, err))
        goto fail;
    if (load_added(tok, json_object_get(tok->root, "added_tokens"), what, err) || tok_refresh_added(tok, err)) goto fail;
    tok->byte_level = has_bytelevel(&tok->pretok);
    if (load_config(tok, err)) goto fail;
    *out = tok;
    return 0;
fail:
    tokenizer_free(tok);
    return -1;
}

static char *read_file(const char *path, size_t *n, hone_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { hone_fail(err, "%s: %s", path, strerror(errno)); return NULL; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        fclose(f);
        hone_fail(err, "%s: read failed", path);
        return NULL;
    }
    fclose(f);
    b[sz] = 0;
    *n = (size_t)sz;
    return b;
}

/* A SentencePiece .model, converted in memory (see spm_convert). */
static int load_spm(hone_tokenizer **out, const char *path, hone_error *err) {
    tok_buf js = {0}, cfg = {0};
    int rc = spm_convert_mem(path, &js, &cfg, err);
    if (!rc) rc = tokenizer_load_json(out, js.p, js.n, cfg.p, cfg.n, path, err);
    tok_buf_free(&js);
    tok_buf_free(&cfg);
    return rc;
}

int tokenizer_load(hone_tokenizer **out, const char *path, hone_error *err) {
    char file[4096], cfg[4096];
    struct stat st;
    *out = NULL;
    if (stat(path, &st)) return hone_fail(err, "%s: %s", path, strerror(errno));
    size_t pl = strlen(path);
    if (S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", path);
        if (stat(file, &st)) { /* a directory with only a SentencePiece model */
            snprintf(file, sizeof file, "%s/tokenizer.model", path);
            if (!stat(file, &st)) return load_spm(out, file, err);
            snprintf(file, sizeof file, "%s/tokenizer.json", path);
        }
    } else if (pl > 6 && !strcmp(path + pl - 6, ".model")) {
        return load_spm(out, path, err);
    } else {
        snprintf(file, sizeof file, "%s", path);
        const char *slash = strrchr(path, '/');
        snprintf(cfg, sizeof cfg, "%.*stokenizer_config.json", slash ? (int)(slash - path + 1) : 0, path);
    }
    size_t cn = 0;
    /* the big file is mapped, not read: no 33 MB copy to fault in */
    int fd = open(file, O_RDONLY);
    if (fd < 0) return hone_fail(err, "%s: %s", file, strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) { close(fd); return hone_fail(err, "%s: not a regular file", file); }
    size_t n = (size_t)st.st_size;
    void *map = n ? mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return hone_fail(err, "%s: %s", file, n ? strerror(errno) : "empty file");
    char *cj = NULL;
    if (!stat(cfg, &st) && S_ISREG(st.st_mode) && !(cj = read_file(cfg, &cn, err))) { munmap(map, n); return -1; }
    int rc = tokenizer_load_json(out, map, n, cj, cn, file, err);
    munmap(map, n);
    free(cj);
    if (!rc && !(*out)->chat_template) { /* newer transformers save the template beside the config */
        char tpl[4096];
        size_t tn;
        snprintf(tpl, sizeof tpl, "%.*schat_template.jinja", (int)(strlen(cfg) - strlen("tokenizer_config.json")), cfg);
        char *t = stat(tpl, &st) == 0 ? read_file(tpl, &tn, NULL) : NULL;
        if (t && strlen(t) == tn) (*out)->chat_template = t;
        else free(t);
    }
    return rc;
}
