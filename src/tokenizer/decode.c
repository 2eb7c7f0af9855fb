/* tokenizer/decode.c — decoders: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip,
 * Sequence. Each maps a list of token strings to a new list (the reference's
 * decode_chain); the caller concatenates the final list. */
#include "tokenizer/components.h"
#include <string.h>

static int dec_bytelevel(tok_pieces *in, tok_pieces *out) {
    tok_buf raw = {0}, txt = {0};
    int rc = -1;
    for (size_t i = 0; i < in->n; i++) {
        const unsigned char *s = (const unsigned char *)in->b.p + in->s[i].off;
        size_t n = in->s[i].len, start = raw.n;
        int ok = 1;
        for (size_t j = 0; j < n && ok;) {
            int32_t cp;
            int l = tok_utf8_decode(s + j, n - j, &cp);
            int b = l ? tok_cp_to_byte(cp) : -1;
            if (b < 0) { ok = 0; break; }
            unsigned char c = (unsigned char)b;
            if (tok_buf_put(&raw, &c, 1)) goto out;
            j += (size_t)l;
        }
        if (!ok) { /* a token with a character outside the byte map is kept as is */
            raw.n = start;
            if (tok_buf_put(&raw, s, n)) goto out;
        }
    }
    if (tok_utf8_lossy(&txt, raw.p ? raw.p : "", raw.n)) goto out;
    tok_pieces_clear(out);
    rc = tok_pieces_push(out, txt.p, txt.n);
out:
    tok_buf_free(&raw);
    tok_buf_free(&txt);
    return rc;
}

static int replace_str(tok_buf *o, const char *s, size_t n, const char *pat, size_t pn, const char *rep, size_t rn) {
    size_t i = 0;
    if (!pn) return tok_buf_put(o, s, n);
    while (i < n) {
        const char *f = memmem(s + i, n - i, pat, pn);
        size_t j = f ? (size_t)(f - s) : n;
        if (tok_buf_put(o, s + i, j - i)) return -1;
        if (!f) break;
        if (tok_buf_put(o, rep, rn)) return -1;
        i = j + pn;
    }
    return 0;
}

static int hexbyte(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = (unsigned char)s[i], h;
        if (c >= '0' && c <= '9') h = c - '0';
        else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
        else return -1;
        v = v * 16 + h;
    }
    return v;
}

static int flush_bytes(tok_buf *bytes, tok_pieces *out) {
    if (!bytes->n) return 0;
    int rc = 0;
    if (tok_utf8_valid_prefix(bytes->p, bytes->n) == bytes->n) rc = tok_pieces_push(out, bytes->p, bytes->n);
    else
        for (size_t i = 0; i < bytes->n && !rc; i++) rc = tok_pieces_push(out, "\xEF\xBF\xBD", 3);
    bytes->n = 0;
    return rc;
}

static int dec_one(const tok_comp *c, tok_pieces *in, tok_pieces *out) {
    tok_pieces_clear(out);
    tok_buf t = {0};
    int rc = 0;
    switch (c->kind) {
    case TOKD_BYTELEVEL: return dec_bytelevel(in, out);
    case TOKD_FUSE:
        rc = tok_pieces_push(out, in->b.p, in->b.n); /* pieces are stored back to back */
        break;
    case TOKD_BYTEFALLBACK:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->b.p + in->s[i].off;
            int b = hexbyte(s, in->s[i].len);
            if (b >= 0) { unsigned char ch = (unsigned char)b; rc = tok_buf_put(&t, &ch, 1); }
            else rc = flush_bytes(&t, out) || tok_pieces_push(out, s, in->s[i].len);
        }
        if (!rc) rc = flush_bytes(&t, out);
        break;
    case TOKD_REPLACE:
    case TOKD_METASPACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            /* Metaspace: the replacement becomes ' ', except in the first token (unless the
             * prepend scheme is "never") where every replacement is dropped, as the reference does */
            int drop = c->kind == TOKD_METASPACE && i == 0 && c->a != PREPEND_NEVER;
            t.n = 0;
            rc = tok_buf_put(&t, "", 0) ||
                 replace_str(&t, in->b.p + in->s[i].off, in->s[i].len, c->s1, c->n1,
                             c->kind == TOKD_METASPACE ? " " : c->s2, c->kind == TOKD_METASPACE ? !drop : c->n2);
            if (!rc) rc = tok_pieces_push(out, t.p, t.n);
        }
        break;
    case TOKD_STRIP:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->b.p + in->s[i].off;
            size_t b = 0, e = in->s[i].len;
            for (int k = 0; k < c->a && b + c->n1 <= e && c->n1 && !memcmp(s + b, c->s1, c->n1); k++) b += c->n1;
            for (int k = 0; k < c->b && e >= b + c->n1 && c->n1 && !memcmp(s + e - c->n1, c->s1, c->n1); k++) e -= c->n1;
            rc = tok_pieces_push(out, s + b, e - b);
        }
        break;
    default: rc = -1;
    }
    tok_buf_free(&t);
    return rc;
}

int tok_decode_chain(const tok_comp *c, tok_pieces *in, tok_pieces *tmp, hone_error *err) {
    if (c->kind == TOKC_NONE) return 0;
    if (c->kind == TOKD_SEQUENCE) {
        for (int i = 0; i < c->nsub; i++)
            if (tok_decode_chain(&c->sub[i], in, tmp, err)) return -1;
        return 0;
    }
    if (dec_one(c, in, tmp)) return hone_fail(err, "decode failed (out of memory or unsupported decoder)");
    tok_pieces t = *in;
    *in = *tmp;
    *tmp = t;
    return 0;
}
