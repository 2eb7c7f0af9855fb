/* chat/jinja_eval.c — renders a parsed chat template (see jinja.h) with Python/Jinja2
 * value semantics: str() of values, truthiness, == across int/float, code-point
 * string slicing and len, Python's str.strip whitespace, tojson as transformers
 * defines it (ensure_ascii=False). All values of one render live in a scratch arena. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "chat/jinja_ast.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_FUNC, V_MACRO } vtype;

typedef struct jv jv;
typedef struct jlist {
    jv *v;
    int n, cap;
    int tuple; /* repr as (a, b) */
} jlist;
typedef struct jdict {
    const char **k;
    jv *v;
    int n, cap;
    int ns; /* a namespace(): attributes may be set */
} jdict;

enum {
    F_RANGE = 1, F_NAMESPACE, F_RAISE, F_STRFTIME, F_DICT,
    M_STRIP, M_LSTRIP, M_RSTRIP, M_STARTSWITH, M_ENDSWITH, M_SPLIT, M_UPPER, M_LOWER, M_TITLE, M_CAPITALIZE,
    M_REPLACE, M_FIND, M_JOIN, M_ITEMS, M_KEYS, M_VALUES, M_GET, M_COUNT,
};

struct jv {
    vtype t;
    union {
        int b;
        long long i;
        double f;
        struct { const char *s; size_t n; } s;
        jlist *l;
        jdict *d;
        struct { int id; jv *self; } fn;
        const jnode *macro;
    };
};

typedef struct scope {
    struct scope *parent;
    const char **names;
    jv *vals;
    int n, cap;
} scope;

typedef struct {
    hone_arena *a;
    char *out;
    size_t len, cap;
    jinja_span *spans;
    int nspans, capspans;
    hone_error *err;
    int failed;
    int flow;  /* 1 break, 2 continue */
    int depth;
    int line;        /* of the expression being evaluated, for errors raised by helpers */
    long long steps; /* work done, bounded by JINJA_MAX_STEPS */
    size_t bytes;    /* arena bytes handed out, bounded by JINJA_MAX_MEMORY */
    scope *root;
} R;

static const jv UNDEF = {.t = V_UNDEF};

static int rerr(R *r, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rerr(R *r, int line, const char *fmt, ...) {
    if (r->failed) return -1;
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    r->failed = 1;
    return hone_fail(r->err, "chat template line %d: %s", line, m);
}

/* ---------- bounds ----------
 * An error is sticky (r->failed): helpers that cannot return one set it, and eval and
 * exec_node turn it into a failed render at the next step. */

static int charge(R *r, long long n) {
    r->steps += n;
    if (r->steps <= JINJA_MAX_STEPS) return 0;
    return rerr(r, r->line, "the render takes more than %lld steps (a loop that does not end?)", JINJA_MAX_STEPS);
}

static void *ralloc(R *r, size_t n) {
    r->bytes += n;
    if (r->bytes > JINJA_MAX_MEMORY) rerr(r, r->line, "the render needs more than %zu MiB", JINJA_MAX_MEMORY >> 20);
    return arena_alloc(r->a, n); /* still handed out: callers go on until the next check */
}

static void *rzalloc(R *r, size_t n) {
    void *q = ralloc(r, n);
    if (q) memset(q, 0, n);
    return q;
}

static char *rstrndup(R *r, const char *s, size_t n) {
    char *q = ralloc(r, n + 1);
    if (q) memcpy(q, s, n), q[n] = 0;
    return q;
}

/* Operations on a string scan it (length, find, in, strip, indexing by code point):
 * charged by its size, so that a loop over a huge string cannot run for hours. */
static int charge_scan(R *r, jv v) {
    if (v.t == V_FUNC && v.fn.self) v = *v.fn.self;
    return v.t == V_STR ? charge(r, (long long)(v.s.n / 64)) : 0;
}

static int overflow(R *r, int line, const char *op) {
    return rerr(r, line, "integer overflow in '%s' (hone's integers are 64-bit)", op);
}

/* ---------- small constructors ---------- */

static jv vstr(const char *s, size_t n) { jv v = {.t = V_STR}; v.s.s = s, v.s.n = n; return v; }
static jv vcstr(const char *s) { return vstr(s, strlen(s)); }
static jv vint(long long i) { jv v = {.t = V_INT}; v.i = i; return v; }
static jv vbool(int b) { jv v = {.t = V_BOOL}; v.b = !!b; return v; }
static jv vfloat(double f) { jv v = {.t = V_FLOAT}; v.f = f; return v; }

static jlist *list_new(R *r, int cap) {
    jlist *l = rzalloc(r, sizeof *l);
    if (l && cap) l->v = ralloc(r, sizeof(jv) * (size_t)cap), l->cap = cap;
    return l;
}

static void list_push(R *r, jlist *l, jv v) {
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 8;
        jv *nv = ralloc(r, sizeof(jv) * (size_t)nc);
        if (l->n) memcpy(nv, l->v, sizeof(jv) * (size_t)l->n);
        l->v = nv, l->cap = nc;
    }
    l->v[l->n++] = v;
}

static jv vlist(jlist *l) { jv v = {.t = V_LIST}; v.l = l; return v; }
static jv vdict(jdict *d) { jv v = {.t = V_DICT}; v.d = d; return v; }

static jv *dict_find(jdict *d, const char *k, size_t kn) {
    for (int i = 0; i < d->n; i++)
        if (strlen(d->k[i]) == kn && !memcmp(d->k[i], k, kn)) return &d->v[i];
    return NULL;
}

static void dict_set(R *r, jdict *d, const char *k, size_t kn, jv v) {
    jv *slot = dict_find(d, k, kn);
    if (slot) { *slot = v; return; }
    if (d->n == d->cap) {
        int nc = d->cap ? d->cap * 2 : 8;
        const char **nk = ralloc(r, sizeof *nk * (size_t)nc);
        jv *nv = ralloc(r, sizeof *nv * (size_t)nc);
        if (d->n) memcpy(nk, d->k, sizeof *nk * (size_t)d->n), memcpy(nv, d->v, sizeof *nv * (size_t)d->n);
        d->k = nk, d->v = nv, d->cap = nc;
    }
    d->k[d->n] = rstrndup(r, k, kn);
    d->v[d->n++] = v;
}

/* ---------- output buffer ---------- */

static int emit(R *r, const char *s, size_t n) {
    if (r->failed) return -1;
    if (n > JINJA_MAX_OUTPUT - r->len) return rerr(r, r->line, "the output exceeds %zu MiB", JINJA_MAX_OUTPUT >> 20);
    if (r->len + n + 1 > r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 4096;
        while (nc < r->len + n + 1) nc *= 2;
        char *no = realloc(r->out, nc);
        if (!no) return rerr(r, 0, "out of memory");
        r->out = no, r->cap = nc;
    }
    memcpy(r->out + r->len, s, n);
    r->len += n;
    r->out[r->len] = 0;
    return 0;
}

/* A growable string in the arena-free malloc world, for building values. */
typedef struct {
    char *s;
    size_t n, cap;
    int bad;   /* 1: longer than JINJA_MAX_OUTPUT or out of memory, 2: nested too deep */
    int depth; /* repr's nesting */
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->bad) return;
    if (n > JINJA_MAX_OUTPUT - b->n) { b->bad = 1; return; }
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) { b->bad = 1; return; }
        b->s = ns, b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* An sbuf's failure as the render's error (0 when it has none). */
static int sb_check(R *r, const sbuf *b) {
    if (!b->bad) return 0;
    if (b->bad == 2) return rerr(r, r->line, "a value nested deeper than %d levels", JINJA_MAX_DEPTH);
    return rerr(r, r->line, "a string longer than %zu MiB", JINJA_MAX_OUTPUT >> 20);
}

/* Moves an sbuf into an arena string value. */
static jv sb_value(R *r, sbuf *b) {
    if (sb_check(r, b)) b->n = 0;
    jv v = vstr(rstrndup(r, b->s ? b->s : "", b->n), b->n);
    free(b->s);
    return v;
}

/* ---------- UTF-8 and Python string helpers ---------- */

static size_t u8len(const unsigned char *s, size_t left) {
    size_t n = *s < 0x80 ? 1 : *s >= 0xF0 ? 4 : *s >= 0xE0 ? 3 : *s >= 0xC0 ? 2 : 1;
    return n > left ? left : n;
}

static unsigned u8dec(const unsigned char *s, size_t n) {
    if (n == 1) return s[0];
    if (n == 2) return ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    if (n == 3) return ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    return ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}

static int py_space(unsigned c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Code points of s in set (NULL set: Python whitespace). */
static int in_set(unsigned c, const char *set, size_t setn) {
    if (!set) return py_space(c);
    const unsigned char *q = (const unsigned char *)set;
    for (size_t i = 0; i < setn;) {
        size_t l = u8len(q + i, setn - i);
        if (u8dec(q + i, l) == c) return 1;
        i += l;
    }
    return 0;
}

static void py_strip_set(const char *s, size_t n, const char *set, size_t setn, int left, int right, size_t *b, size_t *e) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, j = n;
    if (left)
        while (i < n) {
            size_t l = u8len(u + i, n - i);
            if (!in_set(u8dec(u + i, l), set, setn)) break;
            i += l;
        }
    if (right)
        while (j > i) {
            size_t k = j - 1;
            while (k > i && (u[k] & 0xC0) == 0x80) k--;
            if (!in_set(u8dec(u + k, j - k), set, setn)) break;
            j = k;
        }
    *b = i, *e = j;
}

void jinja_py_strip(const char *s, size_t n, size_t *start, size_t *end) { py_strip_set(s, n, NULL, 0, 1, 1, start, end); }

static long long cp_count(const char *s, size_t n) {
    long long c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Byte offset of code point k (0..count). */
static size_t cp_offset(const char *s, size_t n, long long k) {
    size_t i = 0;
    while (k > 0 && i < n) {
        i += u8len((const unsigned char *)s + i, n - i);
        k--;
    }
    return i;
}

/* ---------- str() and repr() ---------- */

static void fmt_float(double f, char *buf, size_t len) {
    if (isnan(f)) { snprintf(buf, len, "nan"); return; }
    if (isinf(f)) { snprintf(buf, len, f > 0 ? "inf" : "-inf"); return; }
    int p;
    char tmp[64];
    for (p = 1; p < 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
    int ex = atoi(strchr(tmp, 'e') + 1);
    if (ex >= -5 && ex < 16) {
        int dec = p - 1 - ex;
        snprintf(buf, len, "%.*f", dec > 0 ? dec : 0, f);
        if (!strchr(buf, '.')) strncat(buf, ".0", len - strlen(buf) - 1);
    } else {
        char *e = strchr(tmp, 'e');
        int x = atoi(e + 1);
        *e = 0;
        snprintf(buf, len, "%.30se%c%02d", tmp, x < 0 ? '-' : '+', abs(x));
    }
}

static void repr(sbuf *b, jv v, int top);

static void str_of(sbuf *b, jv v) {
    char tmp[64];
    switch (v.t) {
    case V_UNDEF: break;
    case V_NONE: sb_str(b, "None"); break;
    case V_BOOL: sb_str(b, v.b ? "True" : "False"); break;
    case V_INT: snprintf(tmp, sizeof tmp, "%lld", v.i), sb_str(b, tmp); break;
    case V_FLOAT: fmt_float(v.f, tmp, sizeof tmp), sb_str(b, tmp); break;
    case V_STR: sb_put(b, v.s.s, v.s.n); break;
    default: repr(b, v, 1); break;
    }
}

static void repr1(sbuf *b, jv v, int top);
static void repr(sbuf *b, jv v, int top) {
    if (++b->depth > JINJA_MAX_DEPTH) b->bad = 2;
    if (!b->bad) repr1(b, v, top);
    b->depth--;
}

static void repr1(sbuf *b, jv v, int top) {
    if (v.t == V_STR) {
        int dq = memchr(v.s.s, '\'', v.s.n) && !memchr(v.s.s, '"', v.s.n);
        char q = dq ? '"' : '\'';
        sb_put(b, &q, 1);
        for (size_t i = 0; i < v.s.n; i++) {
            char c = v.s.s[i];
            if (c == '\\') sb_str(b, "\\\\");
            else if (c == '\n') sb_str(b, "\\n");
            else if (c == '\r') sb_str(b, "\\r");
            else if (c == '\t') sb_str(b, "\\t");
            else if (c == q) sb_put(b, "\\", 1), sb_put(b, &c, 1);
            else if ((unsigned char)c < 0x20 || c == 0x7f) {
                char t[8];
                snprintf(t, sizeof t, "\\x%02x", (unsigned char)c);
                sb_str(b, t);
            } else sb_put(b, &c, 1);
        }
        sb_put(b, &q, 1);
    } else if (v.t == V_LIST) {
        sb_str(b, v.l->tuple ? "(" : "[");
        for (int i = 0; i < v.l->n; i++) {
            if (i) sb_str(b, ", ");
            repr(b, v.l->v[i], 0);
        }
        sb_str(b, v.l->tuple ? (v.l->n == 1 ? ",)" : ")") : "]");
    } else if (v.t == V_DICT) {
        if (v.d->ns) { sb_str(b, "<Namespace>"); return; }
        sb_str(b, "{");
        for (int i = 0; i < v.d->n; i++) {
            if (i) sb_str(b, ", ");
            repr(b, vcstr(v.d->k[i]), 0);
            sb_str(b, ": ");
            repr(b, v.d->v[i], 0);
        }
        sb_str(b, "}");
    } else if (v.t == V_FUNC || v.t == V_MACRO) {
        sb_str(b, "<function>");
    } else if (v.t == V_UNDEF && !top) {
        sb_str(b, "Undefined");
    } else {
        str_of(b, v);
    }
}

static jv to_str(R *r, jv v) {
    if (v.t == V_STR) return v;
    sbuf b = {0};
    str_of(&b, v);
    return sb_value(r, &b);
}

/* JSON as Python's json.dumps(ensure_ascii=False, indent=indent). */
static int to_json(R *r, sbuf *b, jv v, int indent, int level, int line) {
    char tmp[64];
    if (level > JINJA_MAX_DEPTH) return rerr(r, line, "tojson: a value nested deeper than %d levels", JINJA_MAX_DEPTH);
    if (b->bad) return sb_check(r, b);
    switch (v.t) {
    case V_NONE: sb_str(b, "null"); return 0;
    case V_BOOL: sb_str(b, v.b ? "true" : "false"); return 0;
    case V_INT: snprintf(tmp, sizeof tmp, "%lld", v.i), sb_str(b, tmp); return 0;
    case V_FLOAT:
        if (isnan(v.f)) sb_str(b, "NaN");
        else if (isinf(v.f)) sb_str(b, v.f > 0 ? "Infinity" : "-Infinity");
        else fmt_float(v.f, tmp, sizeof tmp), sb_str(b, tmp);
        return 0;
    case V_STR:
        sb_str(b, "\"");
        for (size_t i = 0; i < v.s.n; i++) {
            unsigned char c = (unsigned char)v.s.s[i];
            if (c == '"') sb_str(b, "\\\"");
            else if (c == '\\') sb_str(b, "\\\\");
            else if (c == '\n') sb_str(b, "\\n");
            else if (c == '\r') sb_str(b, "\\r");
            else if (c == '\t') sb_str(b, "\\t");
            else if (c == '\b') sb_str(b, "\\b");
            else if (c == '\f') sb_str(b, "\\f");
            else if (c < 0x20) snprintf(tmp, sizeof tmp, "\\u%04x", c), sb_str(b, tmp);
            else sb_put(b, (const char *)&c, 1);
        }
        sb_str(b, "\"");
        return 0;
    case V_LIST:
    case V_DICT: {
        int isl = v.t == V_LIST, n = isl ? v.l->n : v.d->n;
        sb_str(b, isl ? "[" : "{");
        for (int i = 0; i < n; i++) {
            if (i) sb_str(b, indent >= 0 ? "," : ", ");
            if (indent >= 0) {
                sb_str(b, "\n");
                for (int k = 0; k < indent * (level + 1); k++) sb_str(b, " ");
            }
            if (!isl) {
                if (to_json(r, b, vcstr(v.d->k[i]), indent, level + 1, line)) return -1;
                sb_str(b, ": ");
            }
            if (to_json(r, b, isl ? v.l->v[i] : v.d->v[i], indent, level + 1, line)) return -1;
        }
        if (indent >= 0 && n) {
            sb_str(b, "\n");
            for (int k = 0; k < indent * level; k++) sb_str(b, " ");
        }
        sb_str(b, isl ? "]" : "}");
        return 0;
    }
    default:
        return rerr(r, line, "tojson: value is not JSON serializable");
    }
}

/* ---------- truth, equality, order ---------- */

static int truthy(jv v) {
    switch (v.t) {
    case V_UNDEF: case V_NONE: return 0;
    case V_BOOL: return v.b;
    case V_INT: return v.i != 0;
    case V_FLOAT: return v.f != 0;
    case V_STR: return v.s.n > 0;
    case V_LIST: return v.l->n > 0;
    case V_DICT: return v.d->n > 0 || v.d->ns;
    default: return 1;
    }
}

static int is_num(jv v) { return v.t == V_INT || v.t == V_FLOAT || v.t == V_BOOL; }
static double num(jv v) { return v.t == V_FLOAT ? v.f : v.t == V_INT ? (double)v.i : (double)v.b; }

static int equal(R *r, jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) return (a.t == V_INT ? a.i : a.b) == (b.t == V_INT ? b.i : b.b);
        return num(a) == num(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case V_UNDEF: case V_NONE: return 1;
    case V_STR: return a.s.n == b.s.n && !memcmp(a.s.s, b.s.s, a.s.n);
    case V_LIST: case V_DICT: {
        int n = a.t == V_LIST ? a.l->n : a.d->n, eq = 1;
        if (n != (a.t == V_LIST ? b.l->n : b.d->n)) return 0;
        if (a.t == V_LIST ? a.l == b.l : a.d == b.d) return 1;
        /* a namespace can hold itself: bound the walk */
        if (++r->depth > JINJA_MAX_DEPTH) return rerr(r, r->line, "comparing values nested deeper than %d levels", JINJA_MAX_DEPTH), 0;
        for (int i = 0; i < n && eq && !charge(r, 1); i++) {
            if (a.t == V_LIST) eq = equal(r, a.l->v[i], b.l->v[i]);
            else {
                jv *o = dict_find(b.d, a.d->k[i], strlen(a.d->k[i]));
                eq = o && equal(r, a.d->v[i], *o);
            }
        }
        r->depth--;
        return eq && !r->failed;
    }
    case V_FUNC: return a.fn.id == b.fn.id;
    case V_MACRO: return a.macro == b.macro;
    default: return 0;
    }
}

/* -1/0/1, or -2 when not comparable. */
static int order(jv a, jv b) {
    if (is_num(a) && is_num(b)) return num(a) < num(b) ? -1 : num(a) > num(b);
    if (a.t == V_STR && b.t == V_STR) {
        size_t m = a.s.n < b.s.n ? a.s.n : b.s.n;
        int c = memcmp(a.s.s, b.s.s, m);
        return c ? (c < 0 ? -1 : 1) : (a.s.n < b.s.n ? -1 : a.s.n > b.s.n);
    }
    return -2;
}

static const char *type_name(jv v) {
    static const char *const names[] = {"undefined", "none", "bool", "int", "float", "str", "list", "dict", "function", "macro"};
    return names[v.t];
}

/* ---------- scopes ---------- */

static scope *scope_new(R *r, scope *parent) {
    scope *s = rzalloc(r, sizeof *s);
    if (s) s->parent = parent;
    return s;
}

static void scope_set(R *r, scope *s, const char *name, jv v) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) { s->vals[i] = v; return; }
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 8;
        const char **nn = ralloc(r, sizeof *nn * (size_t)nc);
        jv *nv = ralloc(r, sizeof *nv * (size_t)nc);
        if (s->n) memcpy(nn, s->names, sizeof *nn * (size_t)s->n), memcpy(nv, s->vals, sizeof *nv * (size_t)s->n);
        s->names = nn, s->vals = nv, s->cap = nc;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
}

static jv lookup(scope *s, const char *name) {
    for (; s; s = s->parent)
        for (int i = s->n - 1; i >= 0; i--)
            if (!strcmp(s->names[i], name)) return s->vals[i];
    static const struct { const char *name; int id; } globals[] = {
        {"range", F_RANGE}, {"namespace", F_NAMESPACE}, {"raise_exception", F_RAISE},
        {"strftime_now", F_STRFTIME}, {"dict", F_DICT},
    };
    for (size_t i = 0; i < sizeof globals / sizeof *globals; i++)
        if (!strcmp(globals[i].name, name)) {
            jv f = {.t = V_FUNC};
            f.fn.id = globals[i].id, f.fn.self = NULL;
            return f;
        }
    return UNDEF;
}

/* ---------- attribute and item access ---------- */

static jv method(R *r, jv self, int id) {
    jv f = {.t = V_FUNC};
    f.fn.id = id;
    f.fn.self = ralloc(r, sizeof(jv));
    *f.fn.self = self;
    return f;
}

static jv get_attr(R *r, jv obj, const char *name) {
    if (obj.t == V_STR) {
        static const struct { const char *n; int id; } sm[] = {
            {"strip", M_STRIP}, {"lstrip", M_LSTRIP}, {"rstrip", M_RSTRIP}, {"startswith", M_STARTSWITH},
            {"endswith", M_ENDSWITH}, {"split", M_SPLIT}, {"upper", M_UPPER}, {"lower", M_LOWER}, {"title", M_TITLE},
            {"capitalize", M_CAPITALIZE}, {"replace", M_REPLACE}, {"find", M_FIND}, {"join", M_JOIN}, {"count", M_COUNT},
        };
        for (size_t i = 0; i < sizeof sm / sizeof *sm; i++)
            if (!strcmp(sm[i].n, name)) return method(r, obj, sm[i].id);
        return UNDEF;
    }
    if (obj.t == V_DICT) {
        if (!obj.d->ns) {
            static const struct { const char *n; int id; } dm[] = {{"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {"get", M_GET}};
            for (size_t i = 0; i < sizeof dm / sizeof *dm; i++)
                if (!strcmp(dm[i].n, name)) return method(r, obj, dm[i].id);
        }
        jv *v = dict_find(obj.d, name, strlen(name));
        return v ? *v : UNDEF;
    }
    return UNDEF;
}

static int get_item(R *r, jv obj, jv key, jv *out, int line) {
    *out = UNDEF;
    if (obj.t == V_DICT) {
        if (key.t == V_STR) {
            jv *v = dict_find(obj.d, key.s.s, key.s.n);
            if (v) *out = *v;
        }
        return 0;
    }
    if ((obj.t == V_LIST || obj.t == V_STR) && (key.t == V_INT || key.t == V_BOOL)) {
        long long i = key.t == V_INT ? key.i : key.b;
        long long n = obj.t == V_LIST ? obj.l->n : cp_count(obj.s.s, obj.s.n);
        if (i < 0) i += n;
        if (i < 0 || i >= n) return 0; /* Jinja: undefined, not an error */
        if (obj.t == V_LIST) *out = obj.l->v[i];
        else {
            size_t b = cp_offset(obj.s.s, obj.s.n, i), e = b + u8len((const unsigned char *)obj.s.s + b, obj.s.n - b);
            *out = vstr(obj.s.s + b, e - b);
        }
        return 0;
    }
    if (obj.t == V_STR && key.t == V_STR) { *out = get_attr(r, obj, rstrndup(r, key.s.s, key.s.n)); return 0; }
    if (obj.t == V_UNDEF) return 0;
    return 0;
}

/* Python slice indices for length n. */
static void slice_indices(long long n, jv a, jv b, jv c, long long *start, long long *stop, long long *step) {
    *step = c.t == V_INT ? c.i : 1;
    if (*step == 0) *step = 1;
    long long lo = *step > 0 ? 0 : -1, hi = *step > 0 ? n : n - 1;
    if (a.t == V_INT) {
        *start = a.i < 0 ? a.i + n : a.i;
        if (*start < lo) *start = lo;
        if (*start > hi) *start = hi;
    } else *start = *step > 0 ? 0 : n - 1;
    if (b.t == V_INT) {
        *stop = b.i < 0 ? b.i + n : b.i;
        if (*stop < lo) *stop = lo;
        if (*stop > hi) *stop = hi;
    } else *stop = *step > 0 ? n : -1;
}

static jv do_slice(R *r, jv obj, jv a, jv b, jv c) {
    long long start, stop, step;
    if (obj.t == V_LIST) {
        slice_indices(obj.l->n, a, b, c, &start, &stop, &step);
        jlist *l = list_new(r, 0);
        for (long long i = start; step > 0 ? i < stop : i > stop;) {
            if (charge(r, 1)) break;
            list_push(r, l, obj.l->v[i]);
            if (__builtin_add_overflow(i, step, &i)) break;
        }
        return vlist(l);
    }
    if (obj.t == V_STR) {
        long long n = cp_count(obj.s.s, obj.s.n);
        slice_indices(n, a, b, c, &start, &stop, &step);
        /* code point offsets once: linear, where cp_offset per character was quadratic */
        size_t *off = malloc(sizeof *off * (size_t)(n + 1));
        if (!off) { rerr(r, r->line, "out of memory"); return UNDEF; }
        for (long long k = 0, o = 0; k <= n; k++) off[k] = (size_t)o, o += k < n ? (long long)u8len((const unsigned char *)obj.s.s + o, obj.s.n - o) : 0;
        sbuf sb = {0};
        for (long long i = start; step > 0 ? i < stop : i > stop;) {
            if (charge(r, 1)) break;
            sb_put(&sb, obj.s.s + off[i], off[i + 1] - off[i]);
            if (__builtin_add_overflow(i, step, &i)) break;
        }
        free(off);
        return sb_value(r, &sb);
    }
    return UNDEF;
}

/* ---------- evaluation ---------- */

static int eval(R *r, scope *s, const jexpr *e, jv *out);
static int exec_body(R *r, scope *s, const jbody *b);
static int call_value(R *r, scope *s, jv f, jv *args, const char **kw, int n, int line, jv *out);

/* Iterable items of v as a list (dict: keys; str: characters). */
static int iter_list(R *r, jv v, jlist **out, int line) {
    /* every caller walks the items (join, select, map, for ...): charged here, so that a
     * loop over a long list that joins it each time is bounded too */
    if (v.t == V_LIST) { *out = v.l; return charge(r, v.l->n); }
    jlist *l = list_new(r, 0);
    if (v.t == V_DICT) for (int i = 0; i < v.d->n; i++) list_push(r, l, vcstr(v.d->k[i]));
    else if (v.t == V_STR) {
        for (size_t i = 0; i < v.s.n;) {
            size_t k = u8len((const unsigned char *)v.s.s + i, v.s.n - i);
            list_push(r, l, vstr(v.s.s + i, k));
            i += k;
        }
    } else if (v.t != V_UNDEF) return rerr(r, line, "'%s' object is not iterable", type_name(v));
    *out = l;
    return charge(r, l->n);
}

static int arith(R *r, int op, jv a, jv b, jv *out, int line) {
    if (op == OP_CONCAT) {
        jv sa = to_str(r, a), sb2 = to_str(r, b);
        if (sb2.s.n > JINJA_MAX_OUTPUT - sa.s.n) return rerr(r, line, "a string longer than %zu MiB", JINJA_MAX_OUTPUT >> 20);
        char *buf = ralloc(r, sa.s.n + sb2.s.n + 1);
        memcpy(buf, sa.s.s, sa.s.n), memcpy(buf + sa.s.n, sb2.s.s, sb2.s.n), buf[sa.s.n + sb2.s.n] = 0;
        *out = vstr(buf, sa.s.n + sb2.s.n);
        return 0;
    }
    if (op == OP_ADD && a.t == V_STR && b.t == V_STR) return arith(r, OP_CONCAT, a, b, out, line);
    if (op == OP_ADD && a.t == V_LIST && b.t == V_LIST) {
        jlist *l = list_new(r, a.l->n + b.l->n);
        for (int i = 0; i < a.l->n; i++) list_push(r, l, a.l->v[i]);
        for (int i = 0; i < b.l->n; i++) list_push(r, l, b.l->v[i]);
        *out = vlist(l);
        return 0;
    }
    if (op == OP_MUL && (a.t == V_STR || a.t == V_LIST) && b.t == V_INT) {
        long long each = a.t == V_STR ? (long long)a.s.n : a.l->n;
        if (b.i > 0 && each > 0 && b.i > (long long)(a.t == V_STR ? JINJA_MAX_OUTPUT : 1000000) / each)
            return rerr(r, line, "%s * %lld is too long", a.t == V_STR ? "string" : "list", b.i);
        if (each == 0 || b.i <= 0) { /* empty: no loop over a huge count */
            *out = a.t == V_STR ? vstr("", 0) : vlist(list_new(r, 0));
            return 0;
        }
        if (charge(r, a.t == V_STR ? b.i * each / 64 : b.i * each)) return -1;
        if (a.t == V_STR) {
            sbuf sb = {0};
            for (long long i = 0; i < b.i; i++) sb_put(&sb, a.s.s, a.s.n);
            *out = sb_value(r, &sb);
        } else {
            jlist *l = list_new(r, 0);
            for (long long i = 0; i < b.i; i++) for (int j = 0; j < a.l->n; j++) list_push(r, l, a.l->v[j]);
            *out = vlist(l);
        }
        return 0;
    }
    if (!is_num(a) || !is_num(b))
        return rerr(r, line, "unsupported operand types for arithmetic: '%s' and '%s'", type_name(a), type_name(b));
    int ints = a.t != V_FLOAT && b.t != V_FLOAT;
    long long x = a.t == V_INT ? a.i : a.b, y = b.t == V_INT ? b.i : b.b;
    double fx = num(a), fy = num(b);
    long long z;
    switch (op) {
    case OP_ADD:
        if (ints && __builtin_add_overflow(x, y, &z)) return overflow(r, line, "+");
        *out = ints ? vint(z) : vfloat(fx + fy);
        return 0;
    case OP_SUB:
        if (ints && __builtin_sub_overflow(x, y, &z)) return overflow(r, line, "-");
        *out = ints ? vint(z) : vfloat(fx - fy);
        return 0;
    case OP_MUL:
        if (ints && __builtin_mul_overflow(x, y, &z)) return overflow(r, line, "*");
        *out = ints ? vint(z) : vfloat(fx * fy);
        return 0;
    case OP_DIV:
        if (fy == 0) return rerr(r, line, "division by zero");
        *out = vfloat(fx / fy);
        return 0;
    case OP_FLOORDIV:
    case OP_MOD:
        if (fy == 0) return rerr(r, line, "division by zero");
        if (ints) {
            if (y == -1) { /* x / -1 traps for the smallest x */
                if (op == OP_FLOORDIV && x == LLONG_MIN) return overflow(r, line, "//");
                *out = vint(op == OP_MOD ? 0 : -x);
                return 0;
            }
            long long q = x / y, m = x % y;
            if (m && ((m < 0) != (y < 0))) q--, m += y;
            *out = vint(op == OP_MOD ? m : q);
        } else {
            double q = floor(fx / fy), m = fx - q * fy;
            *out = vfloat(op == OP_MOD ? m : q);
        }
        return 0;
    case OP_POW:
        if (ints && y >= 0) { /* by squaring: 2 ** 10**18 is 60 steps to an overflow, not 10**18 */
            long long p = 1, base = x;
            for (unsigned long long e = (unsigned long long)y; e; e >>= 1) {
                if ((e & 1) && __builtin_mul_overflow(p, base, &p)) return overflow(r, line, "**");
                if (e > 1 && __builtin_mul_overflow(base, base, &base)) return overflow(r, line, "**");
            }
            *out = vint(p);
        } else *out = vfloat(pow(fx, fy));
        return 0;
    }
    return rerr(r, line, "bad operator");
}

static int contains(jv hay, jv needle, int *res, int line, R *r) {
    *res = 0;
    if (hay.t == V_STR) {
        if (needle.t != V_STR) return rerr(r, line, "'in <string>' requires a string on the left");
        if (!needle.s.n) { *res = 1; return 0; }
        *res = memmem(hay.s.s, hay.s.n, needle.s.s, needle.s.n) != NULL;
        return 0;
    }
    if (hay.t == V_LIST) {
        if (charge(r, hay.l->n)) return -1;
        for (int i = 0; i < hay.l->n; i++) if (equal(r, hay.l->v[i], needle)) { *res = 1; break; }
        return 0;
    }
    if (hay.t == V_DICT) {
        *res = needle.t == V_STR && dict_find(hay.d, needle.s.s, needle.s.n);
        return 0;
    }
    if (hay.t == V_UNDEF) return 0;
    return rerr(r, line, "argument of type '%s' is not iterable", type_name(hay));
}

/* Positional argument i, or keyword `name`, or UNDEF. */
static jv arg(jv *args, const char **kw, int n, int i, const char *name) {
    for (int k = 0; k < n; k++) if (kw && kw[k] && name && !strcmp(kw[k], name)) return args[k];
    int pos = 0;
    for (int k = 0; k < n; k++) {
        if (kw && kw[k]) continue;
        if (pos++ == i) return args[k];
    }
    return UNDEF;
}

static int apply_test(R *r, const char *name, jv v, jv *args, const char **kw, int n, int *res, int line);

static int apply_filter(R *r, scope *s, const char *name, jv v, jv *args, const char **kw, int n, jv *out, int line) {
    jv a0 = arg(args, kw, n, 0, NULL);
    if (!strcmp(name, "trim") || !strcmp(name, "strip")) {
        if (v.t != V_STR) v = to_str(r, v);
        jv chars = arg(args, kw, n, 0, "chars");
        size_t b, e;
        py_strip_set(v.s.s, v.s.n, chars.t == V_STR ? chars.s.s : NULL, chars.t == V_STR ? chars.s.n : 0, 1, 1, &b, &e);
        *out = vstr(v.s.s + b, e - b);
        return 0;
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        if (v.t == V_STR) *out = vint(cp_count(v.s.s, v.s.n));
        else if (v.t == V_LIST) *out = vint(v.l->n);
        else if (v.t == V_DICT) *out = vint(v.d->n);
        else if (v.t == V_UNDEF) *out = vint(0);
        else return rerr(r, line, "object of type '%s' has no len()", type_name(v));
        return 0;
    }
    if (!strcmp(name, "tojson")) {
        jv ind = arg(args, kw, n, 0, "indent");
        if (ind.t == V_INT && (ind.i < 0 || ind.i > 64)) return rerr(r, line, "tojson: indent %lld is not in 0..64", ind.i);
        sbuf b = {0};
        if (to_json(r, &b, v, ind.t == V_INT ? (int)ind.i : -1, 0, line)) { free(b.s); return -1; }
        *out = sb_value(r, &b);
        return 0;
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jv boolean = arg(args, kw, n, 1, "boolean");
        *out = (v.t == V_UNDEF || (truthy(boolean) && !truthy(v))) ? (n ? arg(args, kw, n, 0, "default_value") : vcstr("")) : v;
        return 0;
    }
    if (!strcmp(name, "safe") || !strcmp(name, "e") || !strcmp(name, "escape")) { *out = v; return 0; }
    if (!strcmp(name, "string")) { *out = to_str(r, v); return 0; }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize")) {
        int id = name[0] == 'u' ? M_UPPER : name[0] == 'l' ? M_LOWER : name[0] == 't' ? M_TITLE : M_CAPITALIZE;
        return call_value(r, s, method(r, to_str(r, v), id), NULL, NULL, 0, line, out);
    }
    if (!strcmp(name, "replace")) return call_value(r, s, method(r, to_str(r, v), M_REPLACE), args, kw, n, line, out);
    if (!strcmp(name, "int")) { /* a string value may be a slice: parse a terminated copy */
        if (v.t == V_STR) *out = vint(strtoll(rstrndup(r, v.s.s, v.s.n), NULL, 10));
        else if (v.t == V_FLOAT && !(v.f > -9.2e18 && v.f < 9.2e18)) return rerr(r, line, "int of %g: beyond 64-bit integers", v.f);
        else *out = is_num(v) ? vint(v.t == V_FLOAT ? (long long)v.f : v.t == V_INT ? v.i : v.b) : vint(0);
        return 0;
    }
    if (!strcmp(name, "float")) {
        *out = v.t == V_STR ? vfloat(strtod(rstrndup(r, v.s.s, v.s.n), NULL)) : is_num(v) ? vfloat(num(v)) : vfloat(0);
        return 0;
    }
    if (!strcmp(name, "abs")) {
        if (!is_num(v)) return rerr(r, line, "abs of '%s'", type_name(v));
        if (v.t == V_INT && v.i == LLONG_MIN) return overflow(r, line, "abs");
        *out = v.t == V_FLOAT ? vfloat(fabs(v.f)) : vint(llabs(v.t == V_INT ? v.i : v.b));
        return 0;
    }
    jlist *l;
    if (!strcmp(name, "list")) {
        if (iter_list(r, v, &l, line)) return -1;
        *out = vlist(l);
        return 0;
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        if (iter_list(r, v, &l, line)) return -1;
        *out = l->n ? l->v[name[0] == 'f' ? 0 : l->n - 1] : UNDEF;
        return 0;
    }
    if (!strcmp(name, "reverse")) {
        if (v.t == V_STR) { *out = do_slice(r, v, UNDEF, UNDEF, vint(-1)); return 0; }
        if (iter_list(r, v, &l, line)) return -1;
        *out = do_slice(r, vlist(l), UNDEF, UNDEF, vint(-1));
        return 0;
    }
    if (!strcmp(name, "join")) {
        if (iter_list(r, v, &l, line)) return -1;
        jv sep = arg(args, kw, n, 0, "d"), attr = arg(args, kw, n, 1, "attribute");
        sbuf b = {0};
        for (int i = 0; i < l->n; i++) {
            if (i && sep.t == V_STR) sb_put(&b, sep.s.s, sep.s.n);
            jv it = l->v[i];
            if (attr.t == V_STR) it = get_attr(r, it, rstrndup(r, attr.s.s, attr.s.n));
            str_of(&b, it);
        }
        *out = sb_value(r, &b);
        return 0;
    }
    if (!strcmp(name, "items")) {
        if (v.t != V_DICT) return rerr(r, line, "items of '%s'", type_name(v));
        return call_value(r, s, method(r, v, M_ITEMS), NULL, NULL, 0, line, out);
    }
    if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr") || !strcmp(name, "select") || !strcmp(name, "reject")) {
        int attr = strstr(name, "attr") != NULL, want = name[0] == 's';
        if (iter_list(r, v, &l, line)) return -1;
        jlist *o = list_new(r, 0);
        int off = attr ? 1 : 0;
        for (int i = 0; i < l->n; i++) {
            jv it = l->v[i], x = it;
            if (attr) {
                if (a0.t != V_STR) return rerr(r, line, "%s needs an attribute name", name);
                x = get_attr(r, it, rstrndup(r, a0.s.s, a0.s.n));
            }
            int ok;
            jv tn = n > off ? args[off] : UNDEF;
            if (tn.t == V_STR) {
                if (apply_test(r, rstrndup(r, tn.s.s, tn.s.n), x, args + off + 1, NULL, n - off - 1, &ok, line)) return -1;
            } else ok = truthy(x);
            if (ok == want) list_push(r, o, it);
        }
        *out = vlist(o);
        return 0;
    }
    if (!strcmp(name, "map")) {
        if (iter_list(r, v, &l, line)) return -1;
        jlist *o = list_new(r, 0);
        jv attr = arg(args, kw, n, -1, "attribute");
        for (int i = 0; i < l->n; i++) {
            jv x;
            if (attr.t == V_STR) x = get_attr(r, l->v[i], rstrndup(r, attr.s.s, attr.s.n));
            else if (a0.t == V_STR) {
                if (apply_filter(r, s, rstrndup(r, a0.s.s, a0.s.n), l->v[i], args + 1, kw ? kw + 1 : NULL, n - 1, &x, line)) return -1;
            } else return rerr(r, line, "map needs a filter name or attribute=");
            list_push(r, o, x);
        }
        *out = vlist(o);
        return 0;
    }
    if (!strcmp(name, "unique")) {
        if (iter_list(r, v, &l, line)) return -1;
        jlist *o = list_new(r, 0);
        for (int i = 0; i < l->n; i++) {
            int dup = 0;
            if (charge(r, 1 + o->n)) return -1;
            for (int j = 0; j < o->n && !dup; j++) dup = equal(r, o->v[j], l->v[i]);
            if (!dup) list_push(r, o, l->v[i]);
        }
        *out = vlist(o);
        return 0;
    }
    return rerr(r, line, "unknown filter '%s'", name);
}

static int apply_test(R *r, const char *name, jv v, jv *args, const char **kw, int n, int *res, int line) {
    jv a0 = arg(args, kw, n, 0, NULL);
    if (!strcmp(name, "defined")) *res = v.t != V_UNDEF;
    else if (!strcmp(name, "undefined")) *res = v.t == V_UNDEF;
    else if (!strcmp(name, "none")) *res = v.t == V_NONE;
    else if (!strcmp(name, "string")) *res = v.t == V_STR;
    else if (!strcmp(name, "number")) *res = v.t == V_INT || v.t == V_FLOAT;
    else if (!strcmp(name, "integer")) *res = v.t == V_INT;
    else if (!strcmp(name, "float")) *res = v.t == V_FLOAT;
    else if (!strcmp(name, "boolean")) *res = v.t == V_BOOL;
    else if (!strcmp(name, "true")) *res = v.t == V_BOOL && v.b;
    else if (!strcmp(name, "false")) *res = v.t == V_BOOL && !v.b;
    else if (!strcmp(name, "mapping")) *res = v.t == V_DICT;
    else if (!strcmp(name, "iterable")) *res = v.t == V_LIST || v.t == V_DICT || v.t == V_STR;
    else if (!strcmp(name, "sequence")) *res = v.t == V_LIST || v.t == V_DICT || v.t == V_STR;
    else if (!strcmp(name, "callable")) *res = v.t == V_FUNC || v.t == V_MACRO;
    else if (!strcmp(name, "even") || !strcmp(name, "odd")) {
        if (v.t != V_INT) return rerr(r, line, "'%s' test needs an integer", name);
        *res = (v.i % 2 == 0) == (name[0] == 'e');
    } else if (!strcmp(name, "divisibleby")) {
        if (v.t != V_INT || a0.t != V_INT || !a0.i) return rerr(r, line, "divisibleby needs integers");
        *res = a0.i == -1 || v.i % a0.i == 0; /* LLONG_MIN % -1 traps */
    } else if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==") || !strcmp(name, "sameas")) *res = equal(r, v, a0);
    else if (!strcmp(name, "ne") || !strcmp(name, "!=")) *res = !equal(r, v, a0);
    else if (!strcmp(name, "lt") || !strcmp(name, "gt") || !strcmp(name, "le") || !strcmp(name, "ge")) {
        int o = order(v, a0);
        if (o == -2) return rerr(r, line, "'%s' not supported between '%s' and '%s'", name, type_name(v), type_name(a0));
        *res = name[0] == 'l' ? (name[1] == 't' ? o < 0 : o <= 0) : (name[1] == 't' ? o > 0 : o >= 0);
    } else if (!strcmp(name, "in")) return contains(a0, v, res, line, r);
    else if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        *res = v.t == V_STR;
        for (size_t i = 0; *res && i < v.s.n; i++)
            if (name[0] == 'l' ? (v.s.s[i] >= 'A' && v.s.s[i] <= 'Z') : (v.s.s[i] >= 'a' && v.s.s[i] <= 'z')) *res = 0;
    } else return rerr(r, line, "unknown test '%s'", name);
    return 0;
}

static int str_method(R *r, int id, jv self, jv *args, const char **kw, int n, jv *out, int line) {
    jv a0 = arg(args, kw, n, 0, NULL), a1 = arg(args, kw, n, 1, NULL);
    const char *s = self.s.s;
    size_t len = self.s.n;
    switch (id) {
    case M_STRIP: case M_LSTRIP: case M_RSTRIP: {
        size_t b, e;
        py_strip_set(s, len, a0.t == V_STR ? a0.s.s : NULL, a0.t == V_STR ? a0.s.n : 0, id != M_RSTRIP, id != M_LSTRIP, &b, &e);
        *out = vstr(s + b, e - b);
        return 0;
    }
    case M_STARTSWITH: case M_ENDSWITH: {
        jlist one = {&a0, 1, 1, 0};
        jlist *cands = a0.t == V_LIST ? a0.l : &one;
        int res = 0;
        for (int i = 0; i < cands->n && !res; i++) {
            jv c = cands->v[i];
            if (c.t != V_STR) return rerr(r, line, "startswith/endswith needs a string");
            res = c.s.n <= len && !memcmp(id == M_STARTSWITH ? s : s + len - c.s.n, c.s.s, c.s.n);
        }
        *out = vbool(res);
        return 0;
    }
    case M_SPLIT: {
        jlist *l = list_new(r, 0);
        long long maxsplit = a1.t == V_INT ? a1.i : -1;
        if (a0.t == V_STR) {
            if (!a0.s.n) return rerr(r, line, "empty separator");
            size_t i = 0;
            const char *hit;
            while ((maxsplit < 0 || l->n < maxsplit) && (hit = memmem(s + i, len - i, a0.s.s, a0.s.n))) {
                list_push(r, l, vstr(s + i, (size_t)(hit - (s + i))));
                i = (size_t)(hit - s) + a0.s.n;
            }
            list_push(r, l, vstr(s + i, len - i));
        } else { /* whitespace runs, no empty strings */
            size_t i = 0;
            while (i < len) {
                while (i < len && py_space((unsigned char)s[i])) i++;
                if (i >= len) break;
                size_t j = i;
                if (maxsplit >= 0 && l->n == maxsplit) {
                    size_t e = len;
                    while (e > i && py_space((unsigned char)s[e - 1])) e--;
                    list_push(r, l, vstr(s + i, e - i));
                    break;
                }
                while (j < len && !py_space((unsigned char)s[j])) j++;
                list_push(r, l, vstr(s + i, j - i));
                i = j;
            }
        }
        *out = vlist(l);
        return 0;
    }
    case M_UPPER: case M_LOWER: case M_TITLE: case M_CAPITALIZE: {
        char *o = rstrndup(r, s, len);
        int start = 1;
        for (size_t i = 0; i < len; i++) {
            char c = o[i];
            int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            if (id == M_UPPER || ((id == M_TITLE || id == M_CAPITALIZE) && start && alpha)) { if (c >= 'a' && c <= 'z') o[i] = (char)(c - 32); }
            else if (c >= 'A' && c <= 'Z' && (id == M_LOWER || id == M_TITLE || id == M_CAPITALIZE)) o[i] = (char)(c + 32);
            if (id == M_TITLE) start = !alpha;
            else if (id == M_CAPITALIZE) start = 0;
        }
        *out = vstr(o, len);
        return 0;
    }
    case M_REPLACE: {
        if (a0.t != V_STR || a1.t != V_STR) return rerr(r, line, "replace needs two strings");
        jv cnt = arg(args, kw, n, 2, "count");
        long long left = cnt.t == V_INT ? cnt.i : -1;
        sbuf b = {0};
        size_t i = 0;
        const char *hit;
        if (!a0.s.n) { *out = self; return 0; }
        while (left != 0 && (hit = memmem(s + i, len - i, a0.s.s, a0.s.n))) {
            sb_put(&b, s + i, (size_t)(hit - (s + i)));
            sb_put(&b, a1.s.s, a1.s.n);
            i = (size_t)(hit - s) + a0.s.n;
            if (left > 0) left--;
        }
        sb_put(&b, s + i, len - i);
        *out = sb_value(r, &b);
        return 0;
    }
    case M_FIND: case M_COUNT: {
        if (a0.t != V_STR) return rerr(r, line, "find/count needs a string");
        if (id == M_FIND) {
            const char *hit = a0.s.n ? memmem(s, len, a0.s.s, a0.s.n) : s;
            *out = vint(hit ? cp_count(s, (size_t)(hit - s)) : -1);
        } else {
            long long c = 0;
            for (size_t i = 0; a0.s.n && i + a0.s.n <= len;) {
                const char *hit = memmem(s + i, len - i, a0.s.s, a0.s.n);
                if (!hit) break;
                c++, i = (size_t)(hit - s) + a0.s.n;
            }
            *out = vint(c);
        }
        return 0;
    }
    case M_JOIN: {
        jlist *l;
        if (iter_list(r, a0, &l, line)) return -1;
        sbuf b = {0};
        for (int i = 0; i < l->n; i++) {
            if (i) sb_put(&b, s, len);
            str_of(&b, l->v[i]);
        }
        *out = sb_value(r, &b);
        return 0;
    }
    }
    return rerr(r, line, "bad string method");
}

static int call_value(R *r, scope *s, jv f, jv *args, const char **kw, int n, int line, jv *out) {
    *out = UNDEF;
    if (f.t == V_MACRO) {
        const jnode *m = f.macro;
        scope *ms = scope_new(r, r->root);
        for (int i = 0; i < m->nparams; i++) {
            jv v = arg(args, kw, n, i, m->params[i]);
            if (v.t == V_UNDEF && m->defaults[i] && eval(r, ms, m->defaults[i], &v)) return -1;
            scope_set(r, ms, m->params[i], v);
        }
        /* render the body into a fresh buffer, then restore */
        char *so = r->out;
        size_t sl = r->len, sc = r->cap;
        r->out = NULL, r->len = r->cap = 0;
        int rc = exec_body(r, ms, &m->body);
        jv res = vstr(rstrndup(r, r->out ? r->out : "", r->len), r->len);
        free(r->out);
        r->out = so, r->len = sl, r->cap = sc;
        if (rc) return -1;
        *out = res;
        return 0;
    }
    if (f.t != V_FUNC) return rerr(r, line, "'%s' object is not callable", type_name(f));
    jv a0 = arg(args, kw, n, 0, NULL);
    switch (f.fn.id) {
    case F_RAISE: {
        jv m = to_str(r, a0);
        return rerr(r, line, "raise_exception: %.*s", (int)m.s.n, m.s.s);
    }
    case F_STRFTIME: {
        if (a0.t != V_STR) return rerr(r, line, "strftime_now needs a format string");
        char buf[256];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t k = strftime(buf, sizeof buf, rstrndup(r, a0.s.s, a0.s.n), &tm);
        *out = vstr(rstrndup(r, buf, k), k);
        return 0;
    }
    case F_NAMESPACE:
    case F_DICT: {
        jdict *d = rzalloc(r, sizeof *d);
        d->ns = f.fn.id == F_NAMESPACE;
        for (int i = 0; i < n; i++)
            if (kw && kw[i]) dict_set(r, d, kw[i], strlen(kw[i]), args[i]);
            else if (args[i].t == V_DICT)
                for (int k = 0; k < args[i].d->n; k++) dict_set(r, d, args[i].d->k[k], strlen(args[i].d->k[k]), args[i].d->v[k]);
        *out = vdict(d);
        return 0;
    }
    case F_RANGE: {
        jv a1 = arg(args, kw, n, 1, NULL), a2 = arg(args, kw, n, 2, NULL);
        long long lo = 0, hi, st = 1;
        if (a1.t == V_UNDEF) hi = a0.t == V_INT ? a0.i : 0;
        else lo = a0.t == V_INT ? a0.i : 0, hi = a1.t == V_INT ? a1.i : 0;
        if (a2.t == V_INT && a2.i) st = a2.i;
        jlist *l = list_new(r, 0);
        for (long long i = lo; st > 0 ? i < hi : i > hi;) {
            if (l->n > 1000000) return rerr(r, line, "range too large");
            if (charge(r, 1)) return -1;
            list_push(r, l, vint(i));
            if (__builtin_add_overflow(i, st, &i)) break;
        }
        *out = vlist(l);
        return 0;
    }
    case M_ITEMS: case M_KEYS: case M_VALUES: {
        jdict *d = f.fn.self->d;
        jlist *l = list_new(r, d->n);
        for (int i = 0; i < d->n; i++) {
            if (f.fn.id == M_KEYS) list_push(r, l, vcstr(d->k[i]));
            else if (f.fn.id == M_VALUES) list_push(r, l, d->v[i]);
            else {
                jlist *p = list_new(r, 2);
                list_push(r, p, vcstr(d->k[i]));
                list_push(r, p, d->v[i]);
                list_push(r, l, vlist(p));
            }
        }
        *out = vlist(l);
        return 0;
    }
    case M_GET: {
        jv *v = a0.t == V_STR ? dict_find(f.fn.self->d, a0.s.s, a0.s.n) : NULL;
        jv dflt = arg(args, kw, n, 1, NULL);
        *out = v ? *v : (dflt.t == V_UNDEF ? (jv){.t = V_NONE} : dflt);
        return 0;
    }
    default:
        return str_method(r, f.fn.id, *f.fn.self, args, kw, n, out, line);
    }
}

static int eval_args(R *r, scope *s, const jexpr *e, jv **out) {
    *out = ralloc(r, sizeof(jv) * (size_t)(e->nargs + 1));
    for (int i = 0; i < e->nargs; i++)
        if (eval(r, s, e->args[i], &(*out)[i])) return -1;
    return 0;
}

static int eval(R *r, scope *s, const jexpr *e, jv *out) {
    jv a, b, c, *args;
    int res;
    if (++r->depth > JINJA_MAX_DEPTH) return rerr(r, e->line, "calls or expressions nested deeper than %d levels", JINJA_MAX_DEPTH);
    r->line = e->line;
    int rc = charge(r, 1);
    if (rc) return -1;
    switch (e->kind) {
    case E_STR: *out = vstr(e->name, e->len); break;
    case E_INT: *out = vint(e->i); break;
    case E_FLOAT: *out = vfloat(e->f); break;
    case E_BOOL: *out = vbool((int)e->i); break;
    case E_NONE: out->t = V_NONE; break;
    case E_NAME: *out = lookup(s, e->name); break;
    case E_ATTR:
        if ((rc = eval(r, s, e->a, &a))) break;
        *out = get_attr(r, a, e->name); /* a missing attribute is undefined, as in jinja2 */
        break;
    case E_ITEM:
        if ((rc = eval(r, s, e->a, &a)) || (rc = eval(r, s, e->b, &b)) || (rc = charge_scan(r, a))) break;
        rc = get_item(r, a, b, out, e->line);
        break;
    case E_SLICE:
        a = b = c = UNDEF;
        jv st = UNDEF;
        if ((rc = eval(r, s, e->a, &a)) || (e->b && (rc = eval(r, s, e->b, &b))) || (e->c && (rc = eval(r, s, e->c, &c))) ||
            (e->args[0] && (rc = eval(r, s, e->args[0], &st))))
            break;
        *out = do_slice(r, a, b, c, st);
        break;
    case E_CALL:
        if ((rc = eval(r, s, e->a, &a)) || (rc = eval_args(r, s, e, &args)) || (rc = charge_scan(r, a))) break;
        rc = call_value(r, s, a, args, e->kwnames, e->nargs, e->line, out);
        break;
    case E_FILTER:
        if ((rc = eval(r, s, e->a, &a)) || (rc = eval_args(r, s, e, &args)) || (rc = charge_scan(r, a))) break;
        rc = apply_filter(r, s, e->name, a, args, e->kwnames, e->nargs, out, e->line);
        break;
    case E_TEST:
        if ((rc = eval(r, s, e->a, &a)) || (rc = eval_args(r, s, e, &args)) || (rc = charge_scan(r, a))) break;
        if (!(rc = apply_test(r, e->name, a, args, e->kwnames, e->nargs, &res, e->line))) *out = vbool(res != e->negate);
        break;
    case E_NOT:
        if (!(rc = eval(r, s, e->a, &a))) *out = vbool(!truthy(a));
        break;
    case E_NEG:
    case E_POS:
        if ((rc = eval(r, s, e->a, &a))) break;
        if (!is_num(a)) { rc = rerr(r, e->line, "bad operand type for unary %c: '%s'", e->kind == E_NEG ? '-' : '+', type_name(a)); break; }
        if (e->kind == E_NEG && a.t == V_INT && a.i == LLONG_MIN) { rc = overflow(r, e->line, "-"); break; }
        *out = e->kind == E_POS ? a : a.t == V_FLOAT ? vfloat(-a.f) : vint(-(a.t == V_INT ? a.i : a.b));
        break;
    case E_COND:
        if ((rc = eval(r, s, e->a, &a))) break;
        if (truthy(a)) rc = eval(r, s, e->b, out);
        else if (e->c) rc = eval(r, s, e->c, out);
        else *out = UNDEF;
        break;
    case E_LIST: {
        jlist *l = list_new(r, e->nargs);
        l->tuple = e->negate;
        for (int i = 0; i < e->nargs && !rc; i++)
            if (!(rc = eval(r, s, e->args[i], &a))) list_push(r, l, a);
        *out = vlist(l);
        break;
    }
    case E_DICT: {
        jdict *d = rzalloc(r, sizeof *d);
        for (int i = 0; i < e->nargs && !rc; i++) {
            if ((rc = eval(r, s, e->keys[i], &a)) || (rc = eval(r, s, e->args[i], &b))) break;
            a = to_str(r, a);
            dict_set(r, d, a.s.s, a.s.n, b);
        }
        *out = vdict(d);
        break;
    }
    case E_BIN:
        if (e->op == OP_AND || e->op == OP_OR) {
            if ((rc = eval(r, s, e->a, &a))) break;
            if (truthy(a) == (e->op == OP_OR)) *out = a;
            else rc = eval(r, s, e->b, out);
            break;
        }
        if ((rc = eval(r, s, e->a, &a)) || (rc = eval(r, s, e->b, &b)) || (rc = charge_scan(r, a)) || (rc = charge_scan(r, b))) break;
        switch (e->op) {
        case OP_EQ: *out = vbool(equal(r, a, b)); break;
        case OP_NE: *out = vbool(!equal(r, a, b)); break;
        case OP_LT: case OP_LE: case OP_GT: case OP_GE: {
            int o = order(a, b);
            if (o == -2) { rc = rerr(r, e->line, "cannot compare '%s' and '%s'", type_name(a), type_name(b)); break; }
            *out = vbool(e->op == OP_LT ? o < 0 : e->op == OP_LE ? o <= 0 : e->op == OP_GT ? o > 0 : o >= 0);
            break;
        }
        case OP_IN: case OP_NOTIN:
            if (!(rc = contains(b, a, &res, e->line, r))) *out = vbool(res != (e->op == OP_NOTIN));
            break;
        default:
            rc = arith(r, e->op, a, b, out, e->line);
        }
        break;
    }
    r->depth--;
    r->line = e->line;
    return rc || r->failed ? -1 : 0;
}

/* ---------- statements ---------- */

static int exec_for(R *r, scope *s, const jnode *n) {
    jv it;
    jlist *l;
    if (eval(r, s, n->e, &it) || iter_list(r, it, &l, n->line)) return -1;
    scope *ls = scope_new(r, s);
    /* the inline filter runs before the loop so loop.length counts kept items */
    if (n->filter) {
        jlist *kept = list_new(r, 0);
        for (int i = 0; i < l->n; i++) {
            jv c;
            scope_set(r, ls, n->targets[0], l->v[i]);
            if (eval(r, ls, n->filter, &c)) return -1;
            if (truthy(c)) list_push(r, kept, l->v[i]);
        }
        l = kept;
    }
    if (l->n == 0) return exec_body(r, s, &n->els);
    jdict *loop = NULL;
    for (int i = 0; i < l->n; i++) {
        jv item = l->v[i];
        if (charge(r, 1)) return -1;
        if (n->ntargets == 1) scope_set(r, ls, n->targets[0], item);
        else {
            jlist *parts;
            if (iter_list(r, item, &parts, n->line)) return -1;
            if (parts->n != n->ntargets) return rerr(r, n->line, "cannot unpack %d values into %d names", parts->n, n->ntargets);
            for (int k = 0; k < n->ntargets; k++) scope_set(r, ls, n->targets[k], parts->v[k]);
        }
        if (!loop) loop = rzalloc(r, sizeof *loop); /* one object updated in place, as jinja2's */
        dict_set(r, loop, "index", 5, vint(i + 1));
        dict_set(r, loop, "index0", 6, vint(i));
        dict_set(r, loop, "revindex", 8, vint(l->n - i));
        dict_set(r, loop, "revindex0", 9, vint(l->n - i - 1));
        dict_set(r, loop, "first", 5, vbool(i == 0));
        dict_set(r, loop, "last", 4, vbool(i == l->n - 1));
        dict_set(r, loop, "length", 6, vint(l->n));
        dict_set(r, loop, "previtem", 8, i > 0 ? l->v[i - 1] : UNDEF);
        dict_set(r, loop, "nextitem", 8, i + 1 < l->n ? l->v[i + 1] : UNDEF);
        scope_set(r, ls, "loop", vdict(loop));
        if (exec_body(r, ls, &n->body)) return -1;
        if (r->flow == 1) { r->flow = 0; break; }
        r->flow = 0;
    }
    return 0;
}

static int exec_node(R *r, scope *s, const jnode *n) {
    jv v;
    if (r->failed) return -1;
    r->line = n->line;
    switch (n->kind) {
    case S_TEXT: return emit(r, n->text, n->len);
    case S_OUT: {
        if (eval(r, s, n->e, &v)) return -1;
        sbuf b = {0};
        str_of(&b, v);
        int rc = sb_check(r, &b) ? -1 : emit(r, b.s ? b.s : "", b.n);
        free(b.s);
        return rc;
    }
    case S_IF:
        for (int i = 0; i < n->nconds; i++) {
            if (eval(r, s, n->conds[i], &v)) return -1;
            if (truthy(v)) return exec_body(r, s, &n->bodies[i]);
        }
        return exec_body(r, s, &n->els);
    case S_FOR: return exec_for(r, s, n);
    case S_SET:
        if (eval(r, s, n->e, &v)) return -1;
        if (n->attr) {
            jv ns = lookup(s, n->targets[0]);
            if (ns.t != V_DICT || !ns.d->ns) return rerr(r, n->line, "'%s' is not a namespace", n->targets[0]);
            dict_set(r, ns.d, n->attr, strlen(n->attr), v);
            return 0;
        }
        if (n->ntargets > 1) {
            jlist *parts;
            if (iter_list(r, v, &parts, n->line)) return -1;
            if (parts->n != n->ntargets) return rerr(r, n->line, "cannot unpack %d values into %d names", parts->n, n->ntargets);
            for (int k = 0; k < n->ntargets; k++) scope_set(r, s, n->targets[k], parts->v[k]);
            return 0;
        }
        scope_set(r, s, n->targets[0], v);
        return 0;
    case S_SETBLOCK: {
        char *so = r->out;
        size_t sl = r->len, sc = r->cap;
        r->out = NULL, r->len = r->cap = 0;
        int rc = exec_body(r, s, &n->body);
        v = vstr(rstrndup(r, r->out ? r->out : "", r->len), r->len);
        free(r->out);
        r->out = so, r->len = sl, r->cap = sc;
        if (rc) return -1;
        scope_set(r, s, n->targets[0], v);
        return 0;
    }
    case S_GEN: {
        size_t start = r->len;
        if (exec_body(r, s, &n->body)) return -1;
        if (r->nspans == r->capspans) {
            int nc = r->capspans ? r->capspans * 2 : 8;
            jinja_span *ns = realloc(r->spans, sizeof *ns * (size_t)nc);
            if (!ns) return rerr(r, n->line, "out of memory");
            r->spans = ns, r->capspans = nc;
        }
        r->spans[r->nspans++] = (jinja_span){start, r->len};
        return 0;
    }
    case S_BREAK: r->flow = 1; return 0;
    case S_CONTINUE: r->flow = 2; return 0;
    case S_MACRO:
        v.t = V_MACRO, v.macro = n;
        scope_set(r, s, n->name, v);
        return 0;
    case S_CALLBLOCK: {
        /* caller() inside the macro renders this block's body */
        return rerr(r, n->line, "{%% call %%} blocks are not supported");
    }
    }
    return 0;
}

static int exec_body(R *r, scope *s, const jbody *b) {
    for (int i = 0; i < b->n; i++) {
        if (exec_node(r, s, b->nodes[i]) || r->failed) return -1;
        if (r->flow) return 0;
    }
    return 0;
}

int jinja_render_chat(const jinja_template *t, const jinja_chat_vars *v, char **out, size_t *out_len,
                      jinja_span **spans, int *n_spans, hone_error *err) {
    R r = {.err = err};
    *out = NULL;
    if (spans) *spans = NULL, *n_spans = 0;
    if (!(r.a = arena_new())) return hone_fail(err, "out of memory");
    r.root = scope_new(&r, NULL);
    jlist *msgs = list_new(&r, v->n_messages);
    for (int i = 0; i < v->n_messages; i++) {
        jdict *d = arena_zalloc(r.a, sizeof *d);
        dict_set(&r, d, "role", 4, vcstr(v->messages[i].role));
        dict_set(&r, d, "content", 7, vcstr(v->messages[i].content));
        list_push(&r, msgs, vdict(d));
    }
    scope_set(&r, r.root, "messages", vlist(msgs));
    scope_set(&r, r.root, "add_generation_prompt", vbool(v->add_generation_prompt));
    if (v->bos_token) scope_set(&r, r.root, "bos_token", vcstr(v->bos_token));
    if (v->eos_token) scope_set(&r, r.root, "eos_token", vcstr(v->eos_token));
    int rc = exec_body(&r, r.root, &t->root);
    if (!rc && !r.out) rc = emit(&r, "", 0);
    if (r.failed) rc = -1;
    arena_free(r.a);
    if (rc) {
        free(r.out);
        free(r.spans);
        return -1;
    }
    *out = r.out;
    *out_len = r.len;
    if (spans) *spans = r.spans, *n_spans = r.nspans;
    else free(r.spans);
    return 0;
}
