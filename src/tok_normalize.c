/* tok_normalize.c — normalizers: Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD (utf8proc),
 * Lowercase, Strip, StripAccents. Each maps a whole (valid UTF-8) string to a new string; offsets are
 * never needed because hone only returns ids. */
#include "tok_internal.h"
#include <string.h>
#include <utf8proc.h>

static int replace_all(const tok_comp *c, const char *s, size_t n, tok_buf *out, hone_error *err) {
    if (c->re) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(c->re, NULL);
        if (!md) return hone_fail(err, "out of memory");
        size_t off = 0, last = 0;
        while (off <= n) {
            int rc = pcre2_match(c->re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) { pcre2_match_data_free(md); return hone_fail(err, "Replace normalizer: regex match failed (%d)", rc); }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (tok_buf_put(out, s + last, ov[0] - last) || tok_buf_put(out, c->s2, c->n2)) {
                pcre2_match_data_free(md);
                return hone_fail(err, "out of memory");
            }
            last = ov[1];
            if (ov[1] == ov[0]) {
                if (ov[0] >= n) break;
                int l = tok_utf8_len((const unsigned char *)s + ov[0], n - ov[0]);
                off = ov[0] + (l ? (size_t)l : 1);
            } else {
                off = ov[1];
            }
        }
        pcre2_match_data_free(md);
        return tok_buf_put(out, s + last, n - last) ? hone_fail(err, "out of memory") : 0;
    }
    if (!c->n1) return tok_buf_put(out, s, n) ? hone_fail(err, "out of memory") : 0;
    size_t i = 0;
    while (i < n) {
        const char *f = memmem(s + i, n - i, c->s1, c->n1);
        size_t j = f ? (size_t)(f - s) : n;
        if (tok_buf_put(out, s + i, j - i)) return hone_fail(err, "out of memory");
        if (!f) break;
        if (tok_buf_put(out, c->s2, c->n2)) return hone_fail(err, "out of memory");
        i = j + c->n1;
    }
    return 0;
}

static int is_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

static int unicode_form(const tok_comp *c, const char *s, size_t n, tok_buf *out, hone_error *err) {
    /* ASCII text is invariant under every normalization form */
    if (is_ascii(s, n)) return tok_buf_put(out, s, n) ? hone_fail(err, "out of memory") : 0;
    int opt = UTF8PROC_STABLE;
    switch (c->kind) {
    case TOKN_NFC: opt |= UTF8PROC_COMPOSE; break;
    case TOKN_NFD: opt |= UTF8PROC_DECOMPOSE; break;
    case TOKN_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opt);
    if (r < 0) return hone_fail(err, "unicode normalization failed: %s", utf8proc_errmsg(r));
    int rc = tok_buf_put(out, dst, (size_t)r);
    free(dst);
    return rc ? hone_fail(err, "out of memory") : 0;
}

static int lowercase(const char *s, size_t n, tok_buf *out, hone_error *err) {
    const unsigned char *u = (const unsigned char *)s;
    if (tok_buf_reserve(out, n * 2 + 1)) return hone_fail(err, "out of memory");
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = tok_utf8_decode(u + i, n - i, &cp);
        if (!l) { cp = u[i]; l = 1; }
        char e[4];
        /* Rust's char::to_lowercase: U+0130 is the one unconditional multi-character mapping */
        if (cp == 0x130) {
            if (tok_buf_put(out, "i\xCC\x87", 3)) return hone_fail(err, "out of memory");
            i += (size_t)l;
            continue;
        }
        int k = tok_utf8_encode(utf8proc_tolower(cp), e);
        if (tok_buf_put(out, e, (size_t)k)) return hone_fail(err, "out of memory");
        i += (size_t)l;
    }
    return 0;
}

static int strip(const tok_comp *c, const char *s, size_t n, tok_buf *out, hone_error *err) {
    const unsigned char *u = (const unsigned char *)s;
    size_t b = 0, e = n;
    int32_t cp;
    if (c->a)
        for (int l; b < e && (l = tok_utf8_decode(u + b, e - b, &cp)) && tok_is_whitespace(cp);) b += (size_t)l;
    if (c->b)
        while (e > b) {
            size_t k = e - 1;
            while (k > b && (u[k] & 0xC0) == 0x80) k--;
            if (!tok_utf8_decode(u + k, e - k, &cp) || !tok_is_whitespace(cp)) break;
            e = k;
        }
    return tok_buf_put(out, s + b, e - b) ? hone_fail(err, "out of memory") : 0;
}

static int strip_accents(const char *s, size_t n, tok_buf *out, hone_error *err) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = tok_utf8_decode(u + i, n - i, &cp);
        if (!l) { cp = -1; l = 1; }
        if ((cp < 0 || !tok_is_mark(cp)) && tok_buf_put(out, s + i, (size_t)l)) return hone_fail(err, "out of memory");
        i += (size_t)l;
    }
    return 0;
}

int tok_normalize(const tok_comp *c, const char *s, size_t n, tok_buf *out, hone_error *err) {
    out->n = 0;
    switch (c->kind) {
    case TOKC_NONE: return tok_buf_put(out, s, n) ? hone_fail(err, "out of memory") : 0;
    case TOKN_SEQUENCE: {
        tok_buf a = {0}, b = {0};
        if (tok_buf_put(&a, s, n)) return hone_fail(err, "out of memory");
        for (int i = 0; i < c->nsub; i++) {
            if (tok_normalize(&c->sub[i], a.p, a.n, &b, err)) { tok_buf_free(&a); tok_buf_free(&b); return -1; }
            tok_buf t = a; a = b; b = t;
        }
        int rc = tok_buf_put(out, a.p, a.n);
        tok_buf_free(&a);
        tok_buf_free(&b);
        return rc ? hone_fail(err, "out of memory") : 0;
    }
    case TOKN_PREPEND:
        if (n && tok_buf_put(out, c->s1, c->n1)) return hone_fail(err, "out of memory");
        return tok_buf_put(out, s, n) ? hone_fail(err, "out of memory") : 0;
    case TOKN_REPLACE: return replace_all(c, s, n, out, err);
    case TOKN_NFC: case TOKN_NFD: case TOKN_NFKC: case TOKN_NFKD: return unicode_form(c, s, n, out, err);
    case TOKN_LOWERCASE: return lowercase(s, n, out, err);
    case TOKN_STRIP: return strip(c, s, n, out, err);
    case TOKN_STRIP_ACCENTS: return strip_accents(s, n, out, err);
    default: return hone_fail(err, "unsupported normalizer (kind %d)", c->kind);
    }
}
