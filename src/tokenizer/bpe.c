/* tokenizer/bpe.c — the BPE model: the merge table ((left id, right id) -> (rank, merged
 * id)) over the vocab (vocab.c) and the merge loop. The loop is the
 * reference's: a binary heap of candidate merges ordered by (rank, position) over a
 * doubly linked list of symbols, stale entries skipped when popped, so a piece of n
 * characters costs O(n log n) — whole paragraphs reach it for SentencePiece-style models. */
#include "tokenizer/bpe.h"
#include "tokenizer/json.h"
#include <stdio.h>
#include <string.h>

/* ---- loading -------------------------------------------------------------------------- */
int tok_bpe_load_vocab(tok_bpe *m, const char *js, size_t n, const char *what, hone_error *err) {
    const char *p = js, *e = js + n;
    tok_buf key = {0};
    /* rough entry count from the size keeps rehashing rare */
    /* entries <= commas + 1: sizing the hash table once avoids rehashing 262k entries */
    size_t commas = 1;
    for (const char *c = js; (c = memchr(c, ',', (size_t)(e - c))); c++) commas++;
    if (tok_vocab_init(&m->vocab, commas)) return hone_fail(err, "%s: out of memory", what);
    m->vocab.chars = malloc(n + 16); /* token bytes never exceed the JSON text (pages untouched until used) */
    if (!m->vocab.chars) return hone_fail(err, "%s: out of memory", what);
    m->vocab.capchars = n + 16;
    p = tok_json_skip_ws(p, e);
    if (p >= e || *p != '{') return hone_fail(err, "%s: model.vocab: expected an object", what);
    p = tok_json_skip_ws(p + 1, e);
    if (p < e && *p == '}') p = e;
    while (p < e) {
        p = tok_json_string(tok_json_skip_ws(p, e), e, &key);
        if (!p) goto bad;
        p = tok_json_skip_ws(p, e);
        if (p >= e || *p != ':') goto bad;
        p = tok_json_skip_ws(p + 1, e);
        long long id = 0;
        int digits = 0;
        while (p < e && *p >= '0' && *p <= '9' && id < (1LL << 31)) { id = id * 10 + (*p++ - '0'); digits++; }
        if (!digits || id >= TOK_MAX_ID) {
            hone_fail(err, "%s: model.vocab: token \"%.60s\" has no valid id (0 <= id < 2^24)", what, key.p ? key.p : "");
            free(key.p);
            return -1;
        }
        if (tok_vocab_set(&m->vocab, key.p ? key.p : "", key.n, (int32_t)id)) { free(key.p); return hone_fail(err, "%s: out of memory", what); }
        p = tok_json_skip_ws(p, e);
        if (p >= e) goto bad;
        if (*p == '}') break;
        if (*p != ',') goto bad;
        p++;
    }
    free(key.p);
    return 0;
bad:
    free(key.p);
    return hone_fail(err, "%s: model.vocab: malformed JSON near byte %zu of the vocab", what, (size_t)(p ? p - js : 0));
}

/* Builds the (left, right) -> (rank, merged id) table from the merge list in one go,
 * sized for a load factor <= 2/3; a repeated pair keeps its later rank, as a HashMap built
 * from the list does. */
static int merges_build_table(tok_bpe *m) {
    size_t cap = 1024;
    while (cap < m->nmerges + m->nmerges / 2) cap *= 2;
    m->mslots = malloc(cap * sizeof *m->mslots);
    if (!m->mslots) return -1;
    memset(m->mslots, 0xFF, cap * sizeof *m->mslots);
    m->mmask = cap - 1;
    for (size_t r = 0; r < m->nmerges; r++) {
        uint64_t key = (uint64_t)(uint32_t)m->merges[2 * r] << 32 | (uint32_t)m->merges[2 * r + 1];
        size_t i = (key * 0x9E3779B97F4A7C15ull >> 20) & m->mmask;
        while (m->mslots[i].key != UINT64_MAX && m->mslots[i].key != key) i = (i + 1) & m->mmask;
        if (m->mslots[i].key == UINT64_MAX) m->mcount++;
        m->mslots[i] = (tok_merge_slot){key, (int32_t)r, m->merged[r]};
    }
    return 0;
}

static inline const tok_merge_slot *merge_get(const tok_bpe *m, int32_t a, int32_t b) {
    if (!m->mslots) return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = (key * 0x9E3779B97F4A7C15ull >> 20) & m->mmask;
    for (;;) {
        const tok_merge_slot *s = &m->mslots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        i = (i + 1) & m->mmask;
    }
}

/* Merge strings as parsed: offsets into one pool, "a\0b\0" per merge. */
typedef struct { uint32_t a, na, b, nb; } merge_str;
typedef struct { tok_buf pool; merge_str *ms; size_t n, cap; } merge_list;

static int collect(merge_list *l, const char *a, size_t na, const char *b, size_t nb) {
    if (l->pool.n + na + nb + 2 >= UINT32_MAX) return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        merge_str *p = realloc(l->ms, cap * sizeof *p);
        if (!p) return -1;
        l->ms = p;
        l->cap = cap;
    }
    merge_str *s = &l->ms[l->n++];
    s->a = (uint32_t)l->pool.n;
    s->na = (uint32_t)na;
    if (tok_buf_put(&l->pool, a, na) || tok_buf_put(&l->pool, "", 1)) return -1;
    s->b = (uint32_t)l->pool.n;
    s->nb = (uint32_t)nb;
    return tok_buf_put(&l->pool, b, nb) || tok_buf_put(&l->pool, "", 1);
}

/* Looks up (left, right, merged) ids of every merge: read-only on the vocab, so spread
 * over OpenMP threads (most of a big tokenizer's load time). Failures are reported for
 * the lowest merge index, whatever the thread count. */
static int resolve(tok_bpe *m, const merge_list *l, const char *what, hone_error *err) {
    size_t n = l->n, pl = m->prefix ? strlen(m->prefix) : 0;
    m->merges = malloc((n + 1) * 2 * sizeof *m->merges);
    m->merged = malloc((n + 1) * sizeof *m->merged);
    if (!m->merges || !m->merged) return hone_fail(err, "%s: out of memory", what);
    int oom = 0;
#pragma omp parallel
    {
        tok_buf tmp = {0};
#pragma omp for schedule(static, 4096)
        for (long r = 0; r < (long)n; r++) {
            const merge_str *s = &l->ms[r];
            const char *a = l->pool.p + s->a, *b = l->pool.p + s->b;
            int32_t ia = tok_vocab_get(&m->vocab, a, s->na), ib = tok_vocab_get(&m->vocab, b, s->nb), id = -1;
            size_t skip = pl < s->nb ? pl : s->nb;
            tmp.n = 0;
            if (tok_buf_put(&tmp, a, s->na) || tok_buf_put(&tmp, b + skip, s->nb - skip)) oom = 1;
            else if (ia >= 0 && ib >= 0) id = tok_vocab_get(&m->vocab, tmp.p, tmp.n);
            m->merges[2 * r] = ia;
            m->merges[2 * r + 1] = ib;
            m->merged[r] = id;
        }
        tok_buf_free(&tmp);
    }
    if (oom) return hone_fail(err, "%s: out of memory", what);
    for (size_t r = 0; r < n; r++) {
        if (m->merged[r] >= 0) continue;
        const merge_str *s = &l->ms[r];
        const char *a = l->pool.p + s->a, *b = l->pool.p + s->b;
        if (m->merges[2 * r] < 0 || m->merges[2 * r + 1] < 0) {
            int left = m->merges[2 * r] < 0;
            return hone_fail(err, "%s: model.merges[%zu]: token \"%.*s\" is not in the vocab", what, r,
                             (int)(left ? s->na : s->nb), left ? a : b);
        }
        size_t skip = pl < s->nb ? pl : s->nb;
        return hone_fail(err, "%s: model.merges[%zu]: merged token \"%.*s%.*s\" is not in the vocab", what, r, (int)s->na,
                         a, (int)(s->nb - skip), b + skip);
    }
    m->nmerges = n;
    return 0;
}

int tok_bpe_load_merges(tok_bpe *m, const char *js, size_t n, const char *what, hone_error *err) {
    const char *p = js, *e = js + n;
    tok_buf s1 = {0}, s2 = {0};
    merge_list l;
    memset(&l, 0, sizeof l);
    int rc = -1;
    size_t rank = 0;
    p = tok_json_skip_ws(p, e);
    if (p >= e || *p != '[') { hone_fail(err, "%s: model.merges: expected an array", what); goto out; }
    p = tok_json_skip_ws(p + 1, e);
    if (p < e && *p == ']') p = e; /* empty */
    while (p < e) {
        p = tok_json_skip_ws(p, e);
        if (p < e && *p == '"') {
            p = tok_json_string(p, e, &s1);
            if (!p) goto bad;
            char *sp = s1.p ? memchr(s1.p, ' ', s1.n) : NULL;
            if (!sp || memchr(sp + 1, ' ', s1.n - (size_t)(sp + 1 - s1.p))) {
                hone_fail(err, "%s: model.merges[%zu]: \"%.60s\" is not two tokens separated by one space", what,
                          rank, s1.p ? s1.p : "");
                goto out;
            }
            if (collect(&l, s1.p, (size_t)(sp - s1.p), sp + 1, s1.n - (size_t)(sp + 1 - s1.p))) goto oom;
        } else if (p < e && *p == '[') {
            p = tok_json_string(tok_json_skip_ws(p + 1, e), e, &s1);
            if (!p) goto bad;
            p = tok_json_skip_ws(p, e);
            if (p >= e || *p != ',') goto bad;
            p = tok_json_string(tok_json_skip_ws(p + 1, e), e, &s2);
            if (!p) goto bad;
            p = tok_json_skip_ws(p, e);
            if (p >= e || *p != ']') goto bad;
            p++;
            if (collect(&l, s1.p ? s1.p : "", s1.n, s2.p ? s2.p : "", s2.n)) goto oom;
        } else {
            goto bad;
        }
        rank++;
        p = tok_json_skip_ws(p, e);
        if (p >= e) goto bad;
        if (*p == ']') break;
        if (*p != ',') goto bad;
        p++;
    }
    if (resolve(m, &l, what, err)) goto out;
    rc = merges_build_table(m) ? hone_fail(err, "%s: out of memory", what) : 0;
    goto out;
oom:
    hone_fail(err, "%s: out of memory", what);
    goto out;
bad:
    hone_fail(err, "%s: model.merges[%zu]: malformed JSON", what, rank);
out:
    free(s1.p); free(s2.p);
    tok_buf_free(&l.pool);
    free(l.ms);
    return rc;
}

int tok_bpe_finish(tok_bpe *m, const char *what, hone_error *err) {
    if (m->vocab.count == 0) return hone_fail(err, "%s: model.vocab is empty", what);
    char name[8];
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_id[b] = tok_vocab_get(&m->vocab, name, 6);
    }
    m->unk_id = -1;
    if (m->unk_token) {
        m->unk_id = tok_vocab_get(&m->vocab, m->unk_token, strlen(m->unk_token));
        if (m->unk_id < 0) return hone_fail(err, "%s: model.unk_token \"%s\" is not in the vocab", what, m->unk_token);
    }
    /* word splitting (see tok_internal.h): find the left ends of merges "x" + "\u2581..." */
    int32_t sp = tok_vocab_get(&m->vocab, "\xE2\x96\x81", 3);
    m->word_split = sp >= 0 && !m->prefix && !m->suffix;
    for (size_t i = 0; m->word_split && i < m->nmerges; i++) {
        const char *a = tok_vocab_str(&m->vocab, m->merges[2 * i]), *b = tok_vocab_str(&m->vocab, m->merges[2 * i + 1]);
        size_t na = m->vocab.len[m->merges[2 * i]];
        if (strncmp(b, "\xE2\x96\x81", 3)) continue;
        size_t k = 0;
        while (k + 3 <= na && !memcmp(a + k, "\xE2\x96\x81", 3)) k += 3;
        if (k == na) continue; /* all \u2581: "\u2581\u2581" runs merge freely, never split inside them */
        int32_t cp;
        size_t j = na - 1;
        while (j > 0 && ((unsigned char)a[j] & 0xC0) == 0x80) j--;
        if (!tok_utf8_decode((const unsigned char *)a + j, na - j, &cp)) { m->word_split = 0; break; }
        int32_t *p = realloc(m->nosplit, (size_t)(m->nnosplit + 1) * sizeof *p);
        if (!p) return hone_fail(err, "%s: out of memory", what);
        m->nosplit = p;
        m->nosplit[m->nnosplit++] = cp;
        if (m->nnosplit > 64) m->word_split = 0; /* not a SentencePiece-style vocabulary */
    }
    m->cp_id = malloc(65536 * sizeof *m->cp_id);
    if (!m->cp_id) return hone_fail(err, "%s: out of memory", what);
    char u[4];
    for (int32_t cp = 0; cp < 65536; cp++) {
        m->cp_id[cp] = -1;
        if (cp >= 0xD800 && cp < 0xE000) continue;
        m->cp_id[cp] = tok_vocab_get(&m->vocab, u, (size_t)tok_utf8_encode(cp, u));
    }
    return 0;
}

void tok_bpe_free(tok_bpe *m) {
    tok_vocab_free(&m->vocab);
    free(m->mslots); free(m->merges); free(m->merged); free(m->unk_token); free(m->prefix); free(m->suffix); free(m->cp_id); free(m->nosplit);
    memset(m, 0, sizeof *m);
}

/* ---- encoding ------------------------------------------------------------------------- */
static inline int heap_less(const tok_heap_item *a, const tok_heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(tok_heap_item *h, size_t *n, tok_heap_item it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static tok_heap_item heap_pop(tok_heap_item *h, size_t *n) {
    tok_heap_item top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* Looks up one character (with the continuing-subword prefix / end-of-word suffix). */
static int32_t char_id(const tok_bpe *m, const char *s, size_t l, int first, int last, tok_buf *tmp) {
    const char *pre = first ? NULL : m->prefix, *suf = last ? m->suffix : NULL;
    if (!pre && !suf) {
        int32_t cp;
        if (l <= 3 && tok_utf8_decode((const unsigned char *)s, l, &cp) == (int)l && cp < 65536) return m->cp_id[cp];
        return tok_vocab_get(&m->vocab, s, l);
    }
    tmp->n = 0;
    if ((pre && tok_buf_put(tmp, pre, strlen(pre))) || tok_buf_put(tmp, s, l) ||
        (suf && tok_buf_put(tmp, suf, strlen(suf))))
        return -2;
    return tok_vocab_get(&m->vocab, tmp->p, tmp->n);
}

static int ws_grow(void **p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int bpe_word(const tok_bpe *m, tok_ws *w, const char *s, size_t n, hone_error *err) {
    if (ws_grow((void **)&w->syms, &w->csyms, n + 1, sizeof *w->syms)) return hone_fail(err, "out of memory");
    tok_sym *sy = w->syms;
    int32_t ns = 0;
    int32_t unk = -1, unk_len = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int l = tok_utf8_len(u + i, n - i);
        if (!l) l = 1; /* a stray byte is its own character (only via the invalid-UTF-8 rule) */
        int32_t id = char_id(m, s + i, (size_t)l, i == 0, i + (size_t)l == n, &w->norm2);
        if (id == -2) return hone_fail(err, "out of memory");
        if (id >= 0) {
            if (unk >= 0) { sy[ns] = (tok_sym){unk, ns - 1, ns + 1, unk_len}; ns++; unk = -1; }
            sy[ns] = (tok_sym){id, ns - 1, ns + 1, l};
            ns++;
        } else {
            int ok = m->byte_fallback;
            for (int k = 0; ok && k < l; k++) ok = m->byte_id[u[i + k]] >= 0;
            if (ok) {
                for (int k = 0; k < l; k++) { sy[ns] = (tok_sym){m->byte_id[u[i + k]], ns - 1, ns + 1, 1}; ns++; }
            } else if (m->unk_id >= 0) {
                if (unk >= 0 && m->fuse_unk) unk_len += l;
                else {
                    if (unk >= 0) { sy[ns] = (tok_sym){unk, ns - 1, ns + 1, unk_len}; ns++; }
                    unk = m->unk_id;
                    unk_len = l;
                }
            }
        }
        i += (size_t)l;
    }
    if (unk >= 0) { sy[ns] = (tok_sym){unk, ns - 1, ns + 1, unk_len}; ns++; }
    if (!ns) return 0;
    sy[ns - 1].next = -1;

    if (ws_grow((void **)&w->heap, &w->cheap, (size_t)ns * 3 + 8, sizeof *w->heap)) return hone_fail(err, "out of memory");
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < ns; i++) {
        const tok_merge_slot *ms = merge_get(m, sy[i].id, sy[i + 1].id);
        if (ms) heap_push(w->heap, &nh, (tok_heap_item){ms->rank, i, ms->id});
    }
    while (nh) {
        tok_heap_item top = heap_pop(w->heap, &nh);
        tok_sym *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t nx = cur->next;
        const tok_merge_slot *ms = merge_get(m, cur->id, sy[nx].id);
        if (!ms || ms->id != top.id) continue;
        cur->id = top.id;
        cur->len += sy[nx].len;
        cur->next = sy[nx].next;
        sy[nx].len = 0;
        if (cur->next >= 0) sy[cur->next].prev = top.pos;
        if (ws_grow((void **)&w->heap, &w->cheap, nh + 2, sizeof *w->heap)) return hone_fail(err, "out of memory");
        if (cur->prev >= 0) {
            ms = merge_get(m, sy[cur->prev].id, cur->id);
            if (ms) heap_push(w->heap, &nh, (tok_heap_item){ms->rank, cur->prev, ms->id});
        }
        if (cur->next >= 0) {
            ms = merge_get(m, cur->id, sy[cur->next].id);
            if (ms) heap_push(w->heap, &nh, (tok_heap_item){ms->rank, top.pos, ms->id});
        }
    }
    for (int32_t i = 0; i >= 0; i = sy[i].next)
        if (tok_ws_emit(w, sy[i].id)) return hone_fail(err, "out of memory");
    return 0;
}

/* bpe_word through the word cache of w. Words longer than 48 bytes are not cached. */
static int bpe_word_cached(const tok_bpe *m, tok_ws *w, const char *s, size_t n, hone_error *err) {
    if (n > 48) return bpe_word(m, w, s, n, err);
    if (!w->cache) {
        w->cache = malloc(TOK_CACHE_SLOTS * sizeof *w->cache);
        if (!w->cache) return bpe_word(m, w, s, n, err);
        memset(w->cache, 0, TOK_CACHE_SLOTS * sizeof *w->cache);
    }
    uint64_t h = tok_hash_bytes(s, n) | 1; /* 0 marks an empty slot */
    size_t i = h & (TOK_CACHE_SLOTS - 1);
    for (int probe = 0; probe < 8; probe++, i = (i + 1) & (TOK_CACHE_SLOTS - 1)) {
        struct tok_cache_slot *c = &w->cache[i];
        if (!c->h) break;
        if (c->h == h && c->klen == n && !memcmp(w->ckeys.p + c->koff, s, n)) {
            for (uint32_t k = 0; k < c->nids; k++)
                if (tok_ws_emit(w, w->cids[c->ioff + k])) return hone_fail(err, "out of memory");
            return 0;
        }
    }
    size_t start = w->nout;
    if (bpe_word(m, w, s, n, err)) return -1;
    size_t nids = w->nout - start;
    if (!nids) return 0; /* nothing worth caching (e.g. all characters unknown without unk) */
    /* full (or a long probe chain): start over rather than evict one by one */
    if (w->cused >= TOK_CACHE_SLOTS / 2 || w->cache[i].h) {
        memset(w->cache, 0, TOK_CACHE_SLOTS * sizeof *w->cache);
        w->ckeys.n = 0;
        w->ncids = 0;
        w->cused = 0;
        i = h & (TOK_CACHE_SLOTS - 1);
    }
    if (w->ncids + nids > w->ccids) {
        size_t c = w->ccids ? w->ccids * 2 : 16384;
        while (c < w->ncids + nids) c *= 2;
        int32_t *p = realloc(w->cids, c * sizeof *p);
        if (!p) return 0; /* the cache is an optimization: skip it */
        w->cids = p;
        w->ccids = c;
    }
    size_t koff = w->ckeys.n;
    if (tok_buf_put(&w->ckeys, s, n)) return 0;
    memcpy(w->cids + w->ncids, w->out + start, nids * sizeof *w->cids);
    w->cache[i] = (struct tok_cache_slot){h, (uint32_t)koff, (uint32_t)n, (uint32_t)w->ncids, (uint32_t)nids};
    w->ncids += nids;
    w->cused++;
    return 0;
}

int tok_bpe_encode(const tok_bpe *m, tok_ws *w, const char *s, size_t n, hone_error *err) {
    if (!n) return 0;
    if (m->ignore_merges) {
        int id = tok_vocab_get(&m->vocab, s, n);
        if (id >= 0) return tok_ws_emit(w, id);
    }
    if (!m->word_split || n < 16) return bpe_word_cached(m, w, s, n, err);
    /* split before each \u2581 whose preceding character is not \u2581 nor in nosplit */
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if (u[i] != 0xE2 || u[i + 1] != 0x96 || u[i + 2] != 0x81) continue;
        size_t j = i - 1;
        while (j > start && (u[j] & 0xC0) == 0x80) j--;
        int32_t cp;
        if (tok_utf8_decode(u + j, i - j, &cp) != (int)(i - j) || cp == 0x2581) continue;
        int ok = 1;
        for (int k = 0; k < m->nnosplit && ok; k++) ok = m->nosplit[k] != cp;
        if (!ok) continue;
        if (bpe_word_cached(m, w, s + start, i - start, err)) return -1;
        start = i;
        i += 2;
    }
    return bpe_word_cached(m, w, s + start, n - start, err);
}
