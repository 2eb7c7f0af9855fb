/* tokenizer/pretokenize.c — pre-tokenizers: ByteLevel (GPT-2 regex optional, add_prefix_space),
 * Split (regex or string, the five delimiter behaviors, invert), Metaspace, Digits,
 * Punctuation, Whitespace, WhitespaceSplit, Sequence. Each turns the piece list w->pa into a new one (via w->pb), following the
 * reference's split semantics: a list of (span, is_match) events covering the piece,
 * merged per behavior, empty pieces dropped. */
#include "tokenizer/components.h"
#include <string.h>

const uint16_t tok_byte_to_cp[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271,
    272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287,
    288, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289,
    290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305,
    306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321,
    322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

int tok_cp_to_byte(int32_t cp) {
    if (cp >= 256 && cp <= 323) {
        for (int b = 0; b < 256; b++)
            if (tok_byte_to_cp[b] == cp) return b;
        return -1;
    }
    if (cp < 0 || cp > 255) return -1;
    return tok_byte_to_cp[cp] == cp ? cp : -1;
}

static int ev_push(tok_ws *w, size_t *n, size_t s, size_t e, int m) {
    if (*n == w->cev) {
        size_t c = w->cev ? w->cev * 2 : 256;
        tok_ev *p = realloc(w->ev, c * sizeof *p);
        if (!p) return -1;
        w->ev = p;
        w->cev = c;
    }
    w->ev[(*n)++] = (tok_ev){(uint32_t)s, (uint32_t)e, m};
    return 0;
}

/* Applies invert + behavior to the events and pushes the non-empty pieces of s to out. */
static int emit_split(tok_ws *w, size_t nev, const char *s, int behavior, int invert, tok_pieces *out) {
    tok_ev *ev = w->ev;
    size_t k = 0; /* merged events written back in place */
    if (invert)
        for (size_t i = 0; i < nev; i++) ev[i].m = !ev[i].m;
    switch (behavior) {
    case SPLIT_REMOVED:
        for (size_t i = 0; i < nev; i++)
            if (!ev[i].m) ev[k++] = ev[i];
        break;
    case SPLIT_ISOLATED: k = nev; break;
    case SPLIT_MERGED_PREV: {
        int prev = 0;
        for (size_t i = 0; i < nev; i++) {
            tok_ev e = ev[i];
            if (e.m && !prev && k) ev[k - 1].e = e.e;
            else ev[k++] = e;
            prev = e.m;
        }
        break;
    }
    case SPLIT_MERGED_NEXT: {
        /* walk backwards, merging a match into the piece after it; then reverse */
        int prev = 0;
        size_t top = nev; /* merged events are written from the end downwards */
        for (size_t i = nev; i-- > 0;) {
            tok_ev e = ev[i];
            if (e.m && !prev && top < nev) ev[top].s = e.s;
            else ev[--top] = e;
            prev = e.m;
        }
        memmove(ev, ev + top, (nev - top) * sizeof *ev);
        k = nev - top;
        break;
    }
    case SPLIT_CONTIGUOUS: {
        int prev = 0;
        for (size_t i = 0; i < nev; i++) {
            tok_ev e = ev[i];
            if (e.m == prev && k) ev[k - 1].e = e.e;
            else ev[k++] = e;
            prev = e.m;
        }
        break;
    }
    }
    for (size_t i = 0; i < k; i++)
        if (ev[i].e > ev[i].s && tok_pieces_push(out, s + ev[i].s, ev[i].e - ev[i].s)) return -1;
    return 0;
}

/* Events of a regex over s: matches and the gaps between them. */
static int events_regex(const pcre2_code *re, tok_ws *w, const char *s, size_t n, size_t *nev, hone_error *err) {
    size_t off = 0, prev = 0;
    *nev = 0;
    while (off <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, w->md, w->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !w->jit) {
            /* the default 32 KiB JIT stack was too small for this text: retry with 16 MiB */
            w->mctx = pcre2_match_context_create(NULL);
            w->jit = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL);
            if (!w->mctx || !w->jit) return hone_fail(err, "out of memory");
            pcre2_jit_stack_assign(w->mctx, NULL, w->jit);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0 && rc != 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return hone_fail(err, "pre-tokenizer regex failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > prev && ev_push(w, nev, prev, ms, 0)) return hone_fail(err, "out of memory");
        if (ev_push(w, nev, ms, me, 1)) return hone_fail(err, "out of memory");
        prev = me;
        if (me == ms) {
            if (ms >= n) break;
            int l = tok_utf8_len((const unsigned char *)s + ms, n - ms);
            off = ms + (l ? (size_t)l : 1);
        } else {
            off = me;
        }
    }
    if (prev < n && ev_push(w, nev, prev, n, 0)) return hone_fail(err, "out of memory");
    return 0;
}

static int events_string(const char *pat, size_t pn, tok_ws *w, const char *s, size_t n, size_t *nev) {
    size_t i = 0;
    *nev = 0;
    if (!pn) return ev_push(w, nev, 0, n, 0);
    while (i < n) {
        const char *f = memmem(s + i, n - i, pat, pn);
        if (!f) break;
        size_t j = (size_t)(f - s);
        if (j > i && ev_push(w, nev, i, j, 0)) return -1;
        if (ev_push(w, nev, j, j + pn, 1)) return -1;
        i = j + pn;
    }
    if (i < n && ev_push(w, nev, i, n, 0)) return -1;
    return 0;
}

/* Events of a character predicate: each matching character is its own match. */
static int events_pred(tok_ws *w, const char *s, size_t n, int (*pred)(int32_t), size_t *nev) {
    const unsigned char *u = (const unsigned char *)s;
    size_t last = 0;
    *nev = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = tok_utf8_decode(u + i, n - i, &cp);
        if (!l) { l = 1; cp = -1; }
        if (cp >= 0 && pred(cp)) {
            if (last < i && ev_push(w, nev, last, i, 0)) return -1;
            if (ev_push(w, nev, i, i + (size_t)l, 1)) return -1;
            last = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (last < n && ev_push(w, nev, last, n, 0)) return -1;
    return 0;
}

/* ByteLevel: optional prefix space, optional GPT-2 split, then every byte becomes the
 * printable code point of the GPT-2 byte table. */
static int bytelevel(const tok_comp *c, tok_ws *w, const char *s, size_t n, tok_pieces *out, hone_error *err) {
    tok_buf *t = &w->norm2;
    t->n = 0;
    if (c->a && (n == 0 || s[0] != ' ')) {
        if (tok_buf_put(t, " ", 1)) return hone_fail(err, "out of memory");
    }
    if (tok_buf_put(t, s, n)) return hone_fail(err, "out of memory");
    size_t nev = 0;
    if (c->b) {
        if (events_regex(tok_comp_regex(c, t->p, t->n), w, t->p, t->n, &nev, err)) return -1;
    } else if (ev_push(w, &nev, 0, t->n, 0)) {
        return hone_fail(err, "out of memory");
    }
    for (size_t i = 0; i < nev; i++) {
        tok_ev e = w->ev[i];
        if (e.e == e.s) continue;
        size_t len = e.e - e.s;
        if (tok_buf_reserve(&out->b, len * 2 + 1) || tok_pieces_push(out, NULL, 0)) return hone_fail(err, "out of memory");
        char *o = out->b.p + out->b.n;
        for (size_t j = e.s; j < e.e; j++) {
            uint16_t cp = tok_byte_to_cp[(unsigned char)t->p[j]];
            if (cp < 0x80) *o++ = (char)cp;
            else { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3F)); }
        }
        size_t wrote = (size_t)(o - (out->b.p + out->b.n));
        out->s[out->n - 1].len = (uint32_t)wrote;
        out->b.n += wrote;
    }
    return 0;
}

static int metaspace(const tok_comp *c, tok_ws *w, const char *s, size_t n, int first, tok_pieces *out,
                     hone_error *err) {
    tok_buf *t = &w->norm2;
    t->n = 0;
    int starts = 0;
    /* replace ' ' first, then decide on the prepend on the replaced text */
    tok_buf r = {0};
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') { if (tok_buf_put(&r, c->s1, c->n1)) goto oom; }
        else if (tok_buf_put(&r, s + i, 1)) goto oom;
    }
    starts = r.n >= c->n1 && !memcmp(r.p, c->s1, c->n1);
    if (!starts && (c->a == PREPEND_ALWAYS || (c->a == PREPEND_FIRST && first)))
        if (tok_buf_put(t, c->s1, c->n1)) goto oom;
    if (tok_buf_put(t, r.p, r.n)) goto oom;
    tok_buf_free(&r);
    size_t nev;
    if (!c->b) return tok_pieces_push(out, t->p, t->n) ? hone_fail(err, "out of memory") : 0;
    if (events_string(c->s1, c->n1, w, t->p, t->n, &nev)) return hone_fail(err, "out of memory");
    return emit_split(w, nev, t->p, SPLIT_MERGED_NEXT, 0, out) ? hone_fail(err, "out of memory") : 0;
oom:
    tok_buf_free(&r);
    return hone_fail(err, "out of memory");
}

static int pretok_one(const tok_comp *c, tok_ws *w, const char *s, size_t n, int first, tok_pieces *out,
                      hone_error *err) {
    size_t nev = 0;
    switch (c->kind) {
    case TOKP_BYTELEVEL: return bytelevel(c, w, s, n, out, err);
    case TOKP_METASPACE: return metaspace(c, w, s, n, first, out, err);
    case TOKP_SPLIT:
        if (c->re) {
            if (events_regex(tok_comp_regex(c, s, n), w, s, n, &nev, err)) return -1;
        } else if (events_string(c->s1, c->n1, w, s, n, &nev)) {
            return hone_fail(err, "out of memory");
        }
        return emit_split(w, nev, s, c->a, c->b, out) ? hone_fail(err, "out of memory") : 0;
    case TOKP_DIGITS:
        if (events_pred(w, s, n, tok_is_numeric, &nev)) return hone_fail(err, "out of memory");
        return emit_split(w, nev, s, c->a ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, 0, out) ? hone_fail(err, "out of memory") : 0;
    case TOKP_PUNCTUATION:
        if (events_pred(w, s, n, tok_is_punctuation, &nev)) return hone_fail(err, "out of memory");
        return emit_split(w, nev, s, c->a, 0, out) ? hone_fail(err, "out of memory") : 0;
    case TOKP_WHITESPACE_SPLIT:
        if (events_pred(w, s, n, tok_is_whitespace, &nev)) return hone_fail(err, "out of memory");
        return emit_split(w, nev, s, SPLIT_REMOVED, 0, out) ? hone_fail(err, "out of memory") : 0;
    case TOKP_WHITESPACE: /* the matches of \w+|[^\w\s]+ are the pieces */
        if (events_regex(tok_comp_regex(c, s, n), w, s, n, &nev, err)) return -1;
        return emit_split(w, nev, s, SPLIT_REMOVED, 1, out) ? hone_fail(err, "out of memory") : 0;
    default: return hone_fail(err, "unsupported pre-tokenizer (kind %d)", c->kind);
    }
}

int tok_pretokenize(const tok_comp *c, tok_ws *w, int first, hone_error *err) {
    if (c->kind == TOKC_NONE) return 0;
    if (c->kind == TOKP_SEQUENCE) {
        for (int i = 0; i < c->nsub; i++)
            if (tok_pretokenize(&c->sub[i], w, first, err)) return -1;
        return 0;
    }
    tok_pieces_clear(&w->pb);
    for (size_t i = 0; i < w->pa.n; i++)
        if (pretok_one(c, w, w->pa.b.p + w->pa.s[i].off, w->pa.s[i].len, first && i == 0, &w->pb, err)) return -1;
    tok_pieces t = w->pa;
    w->pa = w->pb;
    w->pb = t;
    return 0;
}
