/* tokenizer/normalize.c — normalizers: Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD (utf8proc),
 * Lowercase, Strip, StripAccents. Each maps a whole (valid UTF-8) string to a new string; offsets are
 * never needed because hone only returns ids. */
#include "tokenizer/components.h"
#include <string.h>
#include <utf8proc.h>

/* Unicode-version gaps between utf8proc and the reference (checked code point by code point
 * over U+0001..U+2FFFF): lowercase mappings the reference's newer tables have, and code
 * points the reference's older normalization tables leave unchanged under NFD/NFKC/NFKD. */
static const int32_t lower_extra[][2] = {
    {0x1C89, 0x1C8A}, {0xA7CB, 0x264}, {0xA7CC, 0xA7CD}, {0xA7CE, 0xA7CF}, {0xA7D2, 0xA7D3},
    {0xA7D4, 0xA7D5}, {0xA7DA, 0xA7DB}, {0xA7DC, 0x19B}, {0x10D50, 0x10D70}, {0x10D51, 0x10D71},
    {0x10D52, 0x10D72}, {0x10D53, 0x10D73}, {0x10D54, 0x10D74}, {0x10D55, 0x10D75}, {0x10D56,
    0x10D76}, {0x10D57, 0x10D77}, {0x10D58, 0x10D78}, {0x10D59, 0x10D79}, {0x10D5A, 0x10D7A},
    {0x10D5B, 0x10D7B}, {0x10D5C, 0x10D7C}, {0x10D5D, 0x10D7D}, {0x10D5E, 0x10D7E}, {0x10D5F,
    0x10D7F}, {0x10D60, 0x10D80}, {0x10D61, 0x10D81}, {0x10D62, 0x10D82}, {0x10D63, 0x10D83},
    {0x10D64, 0x10D84}, {0x10D65, 0x10D85}, {0x16EA0, 0x16EBB}, {0x16EA1, 0x16EBC}, {0x16EA2,
    0x16EBD}, {0x16EA3, 0x16EBE}, {0x16EA4, 0x16EBF}, {0x16EA5, 0x16EC0}, {0x16EA6, 0x16EC1},
    {0x16EA7, 0x16EC2}, {0x16EA8, 0x16EC3}, {0x16EA9, 0x16EC4}, {0x16EAA, 0x16EC5}, {0x16EAB,
    0x16EC6}, {0x16EAC, 0x16EC7}, {0x16EAD, 0x16EC8}, {0x16EAE, 0x16EC9}, {0x16EAF, 0x16ECA},
    {0x16EB0, 0x16ECB}, {0x16EB1, 0x16ECC}, {0x16EB2, 0x16ECD}, {0x16EB3, 0x16ECE}, {0x16EB4,
    0x16ECF}, {0x16EB5, 0x16ED0}, {0x16EB6, 0x16ED1}, {0x16EB7, 0x16ED2}, {0x16EB8, 0x16ED3}
};
static const int32_t nf_unchanged[] = {
    0x32FF, 0xA7F2, 0xA7F3, 0xA7F4, 0xAB69, 0x10781, 0x10782, 0x10783, 0x10784, 0x10785, 0x10787,
    0x10788, 0x10789, 0x1078A, 0x1078B, 0x1078C, 0x1078D, 0x1078E, 0x1078F, 0x10790, 0x10791,
    0x10792, 0x10793, 0x10794, 0x10795, 0x10796, 0x10797, 0x10798, 0x10799, 0x1079A, 0x1079B,
    0x1079C, 0x1079D, 0x1079E, 0x1079F, 0x107A0, 0x107A1, 0x107A2, 0x107A3, 0x107A4, 0x107A5,
    0x107A6, 0x107A7, 0x107A8, 0x107A9, 0x107AA, 0x107AB, 0x107AC, 0x107AD, 0x107AE, 0x107AF,
    0x107B0, 0x107B2, 0x107B3, 0x107B4, 0x107B5, 0x107B6, 0x107B7, 0x107B8, 0x107B9, 0x107BA,
    0x11938, 0x1E030, 0x1E031, 0x1E032, 0x1E033, 0x1E034, 0x1E035, 0x1E036, 0x1E037, 0x1E038,
    0x1E039, 0x1E03A, 0x1E03B, 0x1E03C, 0x1E03D, 0x1E03E, 0x1E03F, 0x1E040, 0x1E041, 0x1E042,
    0x1E043, 0x1E044, 0x1E045, 0x1E046, 0x1E047, 0x1E048, 0x1E049, 0x1E04A, 0x1E04B, 0x1E04C,
    0x1E04D, 0x1E04E, 0x1E04F, 0x1E050, 0x1E051, 0x1E052, 0x1E053, 0x1E054, 0x1E055, 0x1E056,
    0x1E057, 0x1E058, 0x1E059, 0x1E05A, 0x1E05B, 0x1E05C, 0x1E05D, 0x1E05E, 0x1E05F, 0x1E060,
    0x1E061, 0x1E062, 0x1E063, 0x1E064, 0x1E065, 0x1E066, 0x1E067, 0x1E068, 0x1E069, 0x1E06A,
    0x1E06B, 0x1E06C, 0x1E06D, 0x1F16C, 0x1FBF0, 0x1FBF1, 0x1FBF2, 0x1FBF3, 0x1FBF4, 0x1FBF5,
    0x1FBF6, 0x1FBF7, 0x1FBF8, 0x1FBF9
};

static int32_t find_lower_extra(int32_t cp) {
    size_t lo = 0, hi = sizeof lower_extra / sizeof *lower_extra;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (lower_extra[mid][0] == cp) return lower_extra[mid][1];
        if (lower_extra[mid][0] < cp) lo = mid + 1; else hi = mid;
    }
    return -1;
}

static int is_nf_unchanged(int32_t cp) {
    size_t lo = 0, hi = sizeof nf_unchanged / sizeof *nf_unchanged;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (nf_unchanged[mid] == cp) return 1;
        if (nf_unchanged[mid] < cp) lo = mid + 1; else hi = mid;
    }
    return 0;
}

static int replace_all(const tok_comp *c, const char *s, size_t n, tok_buf *out, hone_error *err) {
    if (c->re) {
        const pcre2_code *re = tok_comp_regex(c, s, n);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md) return hone_fail(err, "out of memory");
        size_t off = 0, last = 0;
        while (off <= n) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, md, NULL);
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

static int map_form(int opt, const char *s, size_t n, tok_buf *out, hone_error *err) {
    if (!n) return 0;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opt);
    if (r < 0) return hone_fail(err, "unicode normalization failed: %s", utf8proc_errmsg(r));
    int rc = tok_buf_put(out, dst, (size_t)r);
    free(dst);
    return rc ? hone_fail(err, "out of memory") : 0;
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
    /* code points the reference leaves alone are copied, the text between them normalized */
    const unsigned char *u = (const unsigned char *)s;
    size_t seg = 0;
    if (c->kind != TOKN_NFC)
        for (size_t i = 0; i < n;) {
            int32_t cp;
            int l = tok_utf8_decode(u + i, n - i, &cp);
            if (!l) { i++; continue; }
            if (cp >= 0x32FF && is_nf_unchanged(cp)) {
                if (map_form(opt, s + seg, i - seg, out, err) || tok_buf_put(out, s + i, (size_t)l)) return -1;
                seg = i + (size_t)l;
            }
            i += (size_t)l;
        }
    return map_form(opt, s + seg, n - seg, out, err);
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
        int32_t lo = cp >= 0x1C89 ? find_lower_extra(cp) : -1;
        int k = tok_utf8_encode(lo >= 0 ? lo : utf8proc_tolower(cp), e);
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
