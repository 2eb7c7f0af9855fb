/* tokenizer/text.c — growable buffers and the UTF-8 / Unicode predicates the tokenizer needs,
 * each matching the Rust definition the reference library uses (char::is_whitespace,
 * regex \w, char::is_numeric, String::from_utf8_lossy). */
#include "tokenizer/text.h"
#include "base/util.h"
#include <string.h>
#include <utf8proc.h>

int tok_buf_reserve(tok_buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int tok_buf_put(tok_buf *b, const void *p, size_t n) {
    if (tok_buf_reserve(b, n + 1)) return -1;
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

void tok_buf_free(tok_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void tok_pieces_clear(tok_pieces *l) {
    l->b.n = 0;
    l->n = 0;
}

int tok_pieces_push(tok_pieces *l, const char *p, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        tok_span *s = realloc(l->s, cap * sizeof *s);
        if (!s) return -1;
        l->s = s;
        l->cap = cap;
    }
    if (tok_buf_reserve(&l->b, n + 1)) return -1;
    l->s[l->n].off = (uint32_t)l->b.n;
    l->s[l->n].len = (uint32_t)n;
    if (n) memcpy(l->b.p + l->b.n, p, n);
    l->b.n += n;
    l->n++;
    return 0;
}

void tok_pieces_free(tok_pieces *l) {
    tok_buf_free(&l->b);
    free(l->s);
    memset(l, 0, sizeof *l);
}

int tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp) {
    if (!n) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = (int32_t)c; return 1; }
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        *cp = (int32_t)(((c & 0x1F) << 6) | (s[1] & 0x3F));
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        *cp = (int32_t)(((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F));
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] >= 0x90) return 0;
        *cp = (int32_t)(((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F));
        return 4;
    }
    return 0;
}

int tok_utf8_len(const unsigned char *s, size_t n) {
    int32_t cp;
    return tok_utf8_decode(s, n, &cp);
}

int tok_utf8_encode(int32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, u + i, 8);
            if (x & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (u[i] < 0x80) { i++; continue; }
        int l = tok_utf8_len(u + i, n - i);
        if (!l) return i;
        i += (size_t)l;
    }
    return n;
}

/* Unicode-version gaps between utf8proc and the reference, found code point by code point
 * over U+0001..U+2FFFF: the reference's punctuation table is older (Unicode 9 era), its
 * numeric table newer (Unicode 16). Ranges are inclusive. */
static const int32_t punct_not[][2] = {
    {0x61D, 0x61D}, {0x9FD, 0x9FD}, {0xA76, 0xA76}, {0xC77, 0xC77}, {0xC84, 0xC84}, {0x1B7D,
    0x1B7E}, {0x2E43, 0x2E4F}, {0x2E52, 0x2E5D}, {0x10EAD, 0x10EAD}, {0x10F55, 0x10F59}, {0x10F86,
    0x10F89}, {0x1144B, 0x1144F}, {0x1145A, 0x1145B}, {0x1145D, 0x1145D}, {0x11660, 0x1166C},
    {0x116B9, 0x116B9}, {0x1183B, 0x1183B}, {0x11944, 0x11946}, {0x119E2, 0x119E2}, {0x11A3F,
    0x11A46}, {0x11A9A, 0x11A9C}, {0x11A9E, 0x11AA2}, {0x11B00, 0x11B09}, {0x11C41, 0x11C45},
    {0x11C70, 0x11C71}, {0x11EF7, 0x11EF8}, {0x11F43, 0x11F4F}, {0x11FFF, 0x11FFF}, {0x12FF1,
    0x12FF2}, {0x16E97, 0x16E9A}, {0x16FE2, 0x16FE2}, {0x1E95E, 0x1E95F}
};
static const int32_t punct_also[][2] = {
    {0x166D, 0x166D}, {0x111C9, 0x111C9}
};
static const int32_t numeric_also[][2] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11DE0, 0x11DE9}, {0x16130,
    0x16139}, {0x16D70, 0x16D79}, {0x16FF4, 0x16FF6}, {0x1CCF0, 0x1CCF9}, {0x1E5F1, 0x1E5FA}
};

static int in_ranges(const int32_t (*r)[2], size_t n, int32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0]) hi = mid;
        else if (c > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}
#define IN_RANGES(t, c) in_ranges(t, sizeof t / sizeof *t, c)

int tok_is_whitespace(int32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

int tok_is_word(int32_t c) {
    /* Rust regex \w: Alphabetic (letters, Nl, Other_Alphabetic), marks, Nd, Pc, join controls */
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    utf8proc_category_t k = utf8proc_category(c);
    switch (k) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default: /* joiners; circled / squared Latin letters are Other_Alphabetic symbols */
        return c == 0x200C || c == 0x200D || (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
               (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
    }
}

int tok_is_numeric(int32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO || IN_RANGES(numeric_also, c);
}

/* Rust's Utf8Chunks: an invalid sequence is replaced by one U+FFFD per "maximal subpart":
 * the longest prefix of a well-formed sequence, or one byte when none. */
int tok_utf8_lossy(tok_buf *out, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (tok_buf_reserve(out, n * 3 + 1)) return -1;
    size_t i = 0;
    while (i < n) {
        size_t v = tok_utf8_valid_prefix(s + i, n - i);
        memcpy(out->p + out->n, s + i, v);
        out->n += v;
        i += v;
        if (i >= n) break;
        /* length of the maximal subpart at i */
        unsigned c = u[i];
        size_t k = 1;
        unsigned lo = 0x80, hi = 0xBF;
        int need = 0;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        for (int j = 0; j < need && i + k < n; j++) {
            unsigned d = u[i + k];
            if (d < lo || d > hi) break;
            lo = 0x80; hi = 0xBF;
            k++;
        }
        memcpy(out->p + out->n, "\xEF\xBF\xBD", 3);
        out->n += 3;
        i += k;
    }
    out->p[out->n] = 0;
    return 0;
}

int tok_is_punctuation(int32_t c) {
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
    if (IN_RANGES(punct_also, c)) return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO && !IN_RANGES(punct_not, c);
}

int tok_is_mark(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

int tok_write_file(const char *dir, const char *name, const tok_buf *b, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, name);
    return hone_write_file(path, b->p, b->n, err); /* atomic: a killed save leaves the old file */
}
