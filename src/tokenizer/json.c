/* tokenizer/json.c — a small bounds-checked JSON scanner for the two big arrays of a
 * tokenizer.json (model.vocab, model.merges: 262k + 515k entries for Gemma), which
 * jansson parses too slowly for a sub-second load; everything else goes through jansson.
 * Also the JSON string writer used for --jsonl output and for saving. */
#include "tokenizer/json.h"
#include <stddef.h>
#include <stdio.h>
#include <string.h>

const char *tok_json_skip_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, const char *e) {
    if (e - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

const char *tok_json_string(const char *p, const char *e, tok_buf *out) {
    out->n = 0;
    if (p >= e || *p != '"') return NULL;
    p++;
    for (;;) {
        const char *q = p;
        while (q < e && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
        if (tok_buf_put(out, p, (size_t)(q - p))) return NULL;
        p = q;
        if (p >= e || (unsigned char)*p < 0x20) return NULL;
        if (*p == '"') return p + 1;
        /* escape */
        if (e - p < 2) return NULL;
        char c = p[1], ch;
        p += 2;
        switch (c) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            int v = hex4(p, e);
            if (v < 0) return NULL;
            p += 4;
            int32_t cp = v;
            if (v >= 0xD800 && v <= 0xDBFF) {
                int lo = (e - p >= 6 && p[0] == '\\' && p[1] == 'u') ? hex4(p + 2, e) : -1;
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else {
                    cp = 0xFFFD; /* lone surrogate, as serde_json's lossy mode would */
                }
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                cp = 0xFFFD;
            }
            char u[4];
            if (tok_buf_put(out, u, (size_t)tok_utf8_encode(cp, u))) return NULL;
            continue;
        }
        default: return NULL;
        }
        if (tok_buf_put(out, &ch, 1)) return NULL;
    }
}

static const char *skip_string(const char *p, const char *e) {
    if (p >= e || *p != '"') return NULL;
    for (p++;;) {
        const char *q = memchr(p, '"', (size_t)(e - p));
        if (!q) return NULL;
        /* the quote is escaped when an odd number of backslashes precede it */
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\') bs++;
        if (!(bs & 1)) return q + 1;
        p = q + 1;
    }
}

const char *tok_json_skip_value(const char *p, const char *e, int depth) {
    p = tok_json_skip_ws(p, e);
    if (p >= e || depth > 256) return NULL;
    switch (*p) {
    case '"': return skip_string(p, e);
    case '{': case '[': {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = tok_json_skip_ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (obj) {
                p = skip_string(tok_json_skip_ws(p, e), e);
                if (!p) return NULL;
                p = tok_json_skip_ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            p = tok_json_skip_value(p, e, depth + 1);
            if (!p) return NULL;
            p = tok_json_skip_ws(p, e);
            if (p >= e) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p++;
        }
    }
    default: {
        const char *q = p;
        while (q < e && (((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z') || (*q >= '0' && *q <= '9') ||
                         *q == '-' || *q == '+' || *q == '.'))
            q++;
        return q > p ? q : NULL;
    }
    }
}

/* Walks the members of the object at p; for each key calls back with the value span. */
static int scan_object(const char *p, const char *e, const char *want, const char **vs, const char **ve) {
    p = tok_json_skip_ws(p, e);
    if (p >= e || *p != '{') return -1;
    p = tok_json_skip_ws(p + 1, e);
    if (p < e && *p == '}') return 0;
    size_t wl = strlen(want);
    for (;;) {
        p = tok_json_skip_ws(p, e);
        const char *ks = p;
        p = skip_string(p, e);
        if (!p) return -1;
        int match = (size_t)(p - ks) == wl + 2 && !memcmp(ks + 1, want, wl);
        p = tok_json_skip_ws(p, e);
        if (p >= e || *p != ':') return -1;
        const char *v = tok_json_skip_ws(p + 1, e);
        p = tok_json_skip_value(v, e, 1);
        if (!p) return -1;
        if (match) { *vs = v; *ve = p; return 1; }
        p = tok_json_skip_ws(p, e);
        if (p >= e) return -1;
        if (*p == '}') return 0;
        if (*p != ',') return -1;
        p++;
    }
}

int tok_json_find_model_arrays(const char *js, size_t n, size_t span[4]) {
    const char *e = js + n, *ms, *me, *vs, *ve;
    memset(span, 0, 4 * sizeof *span);
    if (scan_object(js, e, "model", &ms, &me) != 1) return -1;
    if (scan_object(ms, me, "vocab", &vs, &ve) == 1) { span[0] = (size_t)(vs - js); span[1] = (size_t)(ve - js); }
    if (scan_object(ms, me, "merges", &vs, &ve) == 1) { span[2] = (size_t)(vs - js); span[3] = (size_t)(ve - js); }
    return 0;
}

int tok_json_put_string(tok_buf *b, const char *s, size_t n) {
    if (tok_buf_reserve(b, n * 6 + 3)) return -1;
    char *o = b->p + b->n;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default: {
            static const char hx[] = "0123456789abcdef";
            *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hx[c >> 4]; *o++ = hx[c & 15];
        }
        }
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    b->p[b->n] = 0;
    return 0;
}

int tok_json_put_vocab(tok_buf *b, const tok_vocab *v, const char *indent) {
    char num[32];
    int first = 1;
    if (tok_buf_put(b, "{", 1)) return -1;
    for (int32_t id = 0; id < v->n; id++) {
        if (v->len[id] == UINT32_MAX) continue;
        if (tok_buf_put(b, first ? "\n" : ",\n", first ? 1 : 2) || tok_buf_put(b, indent, strlen(indent)) ||
            tok_buf_put(b, "  ", 2) || tok_json_put_string(b, v->chars + v->off[id], v->len[id]))
            return -1;
        int k = snprintf(num, sizeof num, ": %d", id);
        if (tok_buf_put(b, num, (size_t)k)) return -1;
        first = 0;
    }
    if (tok_buf_put(b, "\n", 1) || tok_buf_put(b, indent, strlen(indent))) return -1;
    return tok_buf_put(b, "}", 1);
}
