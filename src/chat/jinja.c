/* chat/jinja.c — lexer and parser of the Jinja2 subset (see jinja.h). Whitespace rules are
 * transformers' environment: trim_blocks (drop the newline after a block or comment
 * tag) and lstrip_blocks (drop spaces before a block or comment tag at a line start),
 * plus '-' / '+' modifiers, implemented as jinja2/lexer.py does. The tree is built in
 * the template's arena; jinja_eval.c renders it. */
#include "chat/jinja_ast.h"
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- tokens inside a tag ---------- */

typedef enum { T_NAME, T_STR, T_INT, T_FLOAT, T_OP, T_EOF } tok_type;

typedef struct {
    tok_type t;
    const char *s; /* name / op / unescaped string (arena) */
    size_t n;
    long long i;
    double f;
} tok;

typedef enum { I_TEXT, I_OUT, I_STMT } item_type;

typedef struct {
    item_type t;
    int line;
    const char *text; /* I_TEXT */
    size_t len;
    tok *toks;        /* I_OUT, I_STMT: tokens then a T_EOF */
    int ntoks;
} item;

typedef struct {
    hone_arena *a;
    const char *src;
    item *items;
    int n, cap;
    int pos;          /* parser: current item */
    int tp;           /* parser: current token in items[pos] */
    hone_error *err;
    int failed;
    int depth;        /* nesting of expressions and blocks, bounded by JINJA_MAX_DEPTH */
    const char *lpos; /* line_at's memo: line number lline starts before lpos */
    int lline;
    jinja_template *t;
} P;

static int perr(P *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(P *p, int line, const char *fmt, ...) {
    if (p->failed) return -1;
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    p->failed = 1;
    return hone_fail(p->err, "chat template line %d: %s", line, m);
}

/* Line of q; items are cut in source order, so counting goes on from the last call
 * (linear in the template, not quadratic). */
static int line_at(P *p, const char *q) {
    if (!p->lpos || q < p->lpos) p->lpos = p->src, p->lline = 1;
    for (; p->lpos < q; p->lpos++) p->lline += *p->lpos == '\n';
    return p->lline;
}

/* Bounds recursion: 10,000 nested parentheses must give an error, not overflow the stack. */
static int enter(P *p) {
    if (++p->depth <= JINJA_MAX_DEPTH) return 0;
    return perr(p, p->items[p->pos].line, "nested deeper than %d levels", JINJA_MAX_DEPTH);
}

static item *push_item(P *p) {
    if (p->n == p->cap) {
        int nc = p->cap ? p->cap * 2 : 64;
        item *ni = realloc(p->items, (size_t)nc * sizeof *ni);
        if (!ni) return NULL;
        p->items = ni, p->cap = nc;
    }
    item *it = &p->items[p->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* Tokenises from s up to the closing delimiter (close = '}' for "}}", '%' for "%}").
 * Returns the position after the delimiter; *strip_after when it was "-}}" / "-%}". */
static const char *lex_tag(P *p, const char *s, char close, int line, item *it, int *strip_after) {
    int cap = 16;
    it->toks = malloc((size_t)cap * sizeof(tok));
    if (!it->toks) { perr(p, line, "out of memory"); return NULL; }
    for (;;) {
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s) { perr(p, line, "unterminated tag"); return NULL; }
        /* end of tag? */
        if (s[0] == '-' && s[1] == close && s[2] == '}') { *strip_after = 1; s += 3; break; }
        if (s[0] == '+' && s[1] == close && s[2] == '}') { *strip_after = 0; s += 3; break; }
        if (s[0] == close && s[1] == '}') { *strip_after = 0; s += 2; break; }
        if (it->ntoks + 2 >= cap) {
            cap *= 2;
            tok *nt = realloc(it->toks, (size_t)cap * sizeof(tok));
            if (!nt) { perr(p, line, "out of memory"); return NULL; }
            it->toks = nt;
        }
        tok *k = &it->toks[it->ntoks++];
        memset(k, 0, sizeof *k);
        if (isalpha((unsigned char)*s) || *s == '_') {
            const char *b = s;
            while (isalnum((unsigned char)*s) || *s == '_') s++;
            k->t = T_NAME, k->s = arena_strndup(p->a, b, (size_t)(s - b)), k->n = (size_t)(s - b);
        } else if (isdigit((unsigned char)*s)) {
            /* jinja2's float needs digits after '.' or an exponent ("2." is 2 then '.') */
            const char *d = s;
            while (isdigit((unsigned char)*d)) d++;
            int is_float = (d[0] == '.' && isdigit((unsigned char)d[1])) ||
                           ((d[0] == 'e' || d[0] == 'E') && (isdigit((unsigned char)d[1]) ||
                            ((d[1] == '+' || d[1] == '-') && isdigit((unsigned char)d[2]))));
            char *e;
            if (is_float) k->t = T_FLOAT, k->f = strtod(s, &e), s = e;
            else {
                errno = 0;
                k->t = T_INT, k->i = strtoll(s, &e, 10), s = e;
                if (errno == ERANGE) { perr(p, line, "integer literal beyond 64 bits"); return NULL; }
            }
        } else if (*s == '"' || *s == '\'') {
            char q = *s++;
            const char *t = s; /* the literal's extent: escapes never grow, so it sizes the copy */
            while (*t && *t != q) t += t[0] == '\\' && t[1] ? 2 : 1;
            char *buf = arena_alloc(p->a, (size_t)(t - s) + 1), *o = buf;
            if (!buf) { perr(p, line, "out of memory"); return NULL; }
            while (*s && *s != q) {
                if (*s == '\\' && s[1]) {
                    s++;
                    switch (*s) {
                    case 'n': *o++ = '\n'; break;
                    case 't': *o++ = '\t'; break;
                    case 'r': *o++ = '\r'; break;
                    case '\\': *o++ = '\\'; break;
                    case '\'': *o++ = '\''; break;
                    case '"': *o++ = '"'; break;
                    case 'x': case 'u': case 'U': { /* \xNN, \uNNNN, \UNNNNNNNN as UTF-8 */
                        int nd = *s == 'x' ? 2 : *s == 'u' ? 4 : 8;
                        unsigned cp = 0;
                        int ok = 1;
                        for (int i = 1; i <= nd; i++) {
                            if (!isxdigit((unsigned char)s[i])) { ok = 0; break; }
                            cp = cp * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10));
                        }
                        if (!ok || cp > 0x10FFFF) { perr(p, line, "bad \\%c escape in a string literal", *s); return NULL; }
                        s += nd;
                        if (cp < 0x80) *o++ = (char)cp;
                        else if (cp < 0x800) *o++ = (char)(0xC0 | cp >> 6), *o++ = (char)(0x80 | (cp & 0x3F));
                        else if (cp < 0x10000) *o++ = (char)(0xE0 | cp >> 12), *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *o++ = (char)(0x80 | (cp & 0x3F));
                        else *o++ = (char)(0xF0 | cp >> 18), *o++ = (char)(0x80 | ((cp >> 12) & 0x3F)), *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *o++ = (char)(0x80 | (cp & 0x3F));
                        break;
                    }
                    default: *o++ = '\\', *o++ = *s; break; /* Python keeps unknown escapes */
                    }
                    s++;
                } else {
                    *o++ = *s++;
                }
            }
            if (*s != q) { perr(p, line, "unterminated string literal"); return NULL; }
            s++;
            *o = 0;
            k->t = T_STR, k->s = buf, k->n = (size_t)(o - buf);
        } else {
            static const char *const ops[] = {"**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ".", ",",
                                              ":", "|", "~", "+", "-", "*", "/", "%", "<", ">", "=", NULL};
            int found = 0;
            for (int i = 0; ops[i]; i++) {
                size_t l = strlen(ops[i]);
                if (!strncmp(s, ops[i], l)) {
                    k->t = T_OP, k->s = ops[i], k->n = l, s += l, found = 1;
                    break;
                }
            }
            if (!found) { perr(p, line, "unexpected character '%c'", *s); return NULL; }
        }
    }
    it->toks[it->ntoks].t = T_EOF;
    it->toks[it->ntoks].s = "end of tag";
    return s;
}

/* The {% endraw %} tag (with optional '-'/'+' modifiers) at or after s: its '{', and in
 * *after the position past its '%}'; NULL when there is none. */
static const char *find_endraw(const char *s, const char **after) {
    for (const char *q = s; (q = strstr(q, "{%")); q++) {
        const char *r = q + 2;
        if (*r == '-' || *r == '+') r++;
        while (isspace((unsigned char)*r)) r++;
        if (strncmp(r, "endraw", 6)) continue;
        r += 6;
        while (isspace((unsigned char)*r)) r++;
        if (*r == '-' || *r == '+') r++;
        if (r[0] != '%' || r[1] != '}') continue;
        *after = r + 2;
        return q;
    }
    return NULL;
}

/* Cuts the source into text / output / statement items with the whitespace rules. */
static int lex(P *p) {
    const char *s = p->src;
    int strip_next = 0, trim_nl = 0;
    for (;;) {
        const char *q = s;
        while ((q = strchr(q, '{')) && q[1] != '{' && q[1] != '%' && q[1] != '#') q++;
        const char *te = q ? q : s + strlen(s);
        const char *tb = s;
        if (strip_next) while (tb < te && isspace((unsigned char)*tb)) tb++;
        else if (trim_nl && tb < te && *tb == '\n') tb++;
        if (q) {
            char kind = q[1], mod = q[2];
            if (mod == '-') {
                while (te > tb && isspace((unsigned char)te[-1])) te--;
            } else if (mod != '+' && kind != '{') { /* lstrip_blocks */
                const char *nl = te;
                while (nl > tb && nl[-1] != '\n') nl--;
                int at_line = nl > tb || (tb > s ? tb[-1] == '\n' : s == p->src);
                const char *w = nl;
                while (w < te && (*w == ' ' || *w == '\t')) w++;
                if (at_line && w == te) te = nl;
            }
        }
        if (te > tb) {
            item *it = push_item(p);
            if (!it) return perr(p, 0, "out of memory");
            it->t = I_TEXT, it->text = tb, it->len = (size_t)(te - tb), it->line = line_at(p, tb);
        }
        if (!q) break;
        int line = line_at(p, q);
        const char *b = q + 2 + (q[2] == '-' || q[2] == '+');
        int strip_after = 0;
        if (q[1] == '#') {
            const char *e = strstr(b, "#}");
            if (!e) return perr(p, line, "unterminated comment");
            strip_after = e > b && e[-1] == '-';
            s = e + 2;
            trim_nl = 1;
        } else {
            /* {% raw %}...{% endraw %} is copied verbatim */
            const char *r = b;
            while (*r == ' ' || *r == '\t') r++;
            if (q[1] == '%' && !strncmp(r, "raw", 3) && !isalnum((unsigned char)r[3])) {
                const char *e = strstr(r, "%}"), *close = NULL, *open = e ? find_endraw(e + 2, &close) : NULL;
                if (!open) return perr(p, line, "unterminated raw block ('{%% raw %%}' without '{%% endraw %%}')");
                const char *rb = e + 2, *re = open;
                if (e[-1] == '-') while (rb < re && isspace((unsigned char)*rb)) rb++;
                if (open[2] == '-') while (re > rb && isspace((unsigned char)re[-1])) re--;
                item *it = push_item(p);
                if (!it) return perr(p, line, "out of memory");
                it->t = I_TEXT, it->text = rb, it->len = (size_t)(re - rb), it->line = line;
                s = close;
                trim_nl = 1, strip_next = close[-3] == '-';
                continue;
            }
            item *it = push_item(p);
            if (!it) return perr(p, line, "out of memory");
            it->t = q[1] == '{' ? I_OUT : I_STMT, it->line = line;
            s = lex_tag(p, b, q[1] == '{' ? '}' : '%', line, it, &strip_after);
            if (!s) return -1;
            trim_nl = q[1] == '%';
        }
        strip_next = strip_after;
    }
    return 0;
}

/* ---------- expressions ---------- */

static tok *cur(P *p) { return &p->items[p->pos].toks[p->tp]; }
static int cur_line(P *p) { return p->items[p->pos].line; }
static int is_op(P *p, const char *op) { return cur(p)->t == T_OP && !strcmp(cur(p)->s, op); }
static int is_name(P *p, const char *nm) { return cur(p)->t == T_NAME && !strcmp(cur(p)->s, nm); }
static void adv(P *p) { if (cur(p)->t != T_EOF) p->tp++; }
static int expect_op(P *p, const char *op) {
    if (!is_op(p, op)) return perr(p, cur_line(p), "expected '%s', got '%s'", op, cur(p)->s ? cur(p)->s : "?");
    adv(p);
    return 0;
}

static jexpr *mk(P *p, expr_kind k) {
    jexpr *e = arena_zalloc(p->a, sizeof *e);
    if (!e) { perr(p, cur_line(p), "out of memory"); return NULL; }
    e->kind = k, e->line = cur_line(p);
    return e;
}

static jexpr *parse_expr(P *p);
static jexpr *parse_or(P *p);
static jexpr *parse_unary(P *p, int with_filter);

/* Argument list after '(' up to ')': positional and name=value. */
static int parse_args(P *p, jexpr *e) {
    jexpr *args[32];
    const char *kw[32];
    int n = 0;
    while (!is_op(p, ")")) {
        if (n == 32) return perr(p, cur_line(p), "too many arguments");
        kw[n] = NULL;
        if (cur(p)->t == T_NAME && p->items[p->pos].toks[p->tp + 1].t == T_OP && !strcmp(p->items[p->pos].toks[p->tp + 1].s, "=")) {
            kw[n] = cur(p)->s;
            adv(p), adv(p);
        }
        if (!(args[n++] = parse_expr(p))) return -1;
        if (!is_op(p, ",")) break;
        adv(p);
    }
    if (expect_op(p, ")")) return -1;
    e->nargs = n;
    e->args = arena_alloc(p->a, sizeof *args * (size_t)(n + 1));
    e->kwnames = arena_alloc(p->a, sizeof *kw * (size_t)(n + 1));
    if (!e->args || !e->kwnames) return perr(p, cur_line(p), "out of memory");
    memcpy(e->args, args, sizeof *args * (size_t)n);
    memcpy(e->kwnames, kw, sizeof *kw * (size_t)n);
    return 0;
}

static jexpr *parse_primary(P *p) {
    tok *k = cur(p);
    jexpr *e;
    switch (k->t) {
    case T_NAME:
        if (!strcmp(k->s, "true") || !strcmp(k->s, "True") || !strcmp(k->s, "false") || !strcmp(k->s, "False")) {
            if (!(e = mk(p, E_BOOL))) return NULL;
            e->i = k->s[0] == 't' || k->s[0] == 'T';
        } else if (!strcmp(k->s, "none") || !strcmp(k->s, "None")) {
            if (!(e = mk(p, E_NONE))) return NULL;
        } else {
            if (!(e = mk(p, E_NAME))) return NULL;
            e->name = k->s;
        }
        adv(p);
        return e;
    case T_STR: {
        if (!(e = mk(p, E_STR))) return NULL;
        /* adjacent string literals concatenate, as in Python */
        size_t tot = 0;
        for (int j = p->tp; p->items[p->pos].toks[j].t == T_STR; j++) tot += p->items[p->pos].toks[j].n;
        char *buf = arena_alloc(p->a, tot + 1), *o = buf;
        if (!buf) { perr(p, cur_line(p), "out of memory"); return NULL; }
        while (cur(p)->t == T_STR) memcpy(o, cur(p)->s, cur(p)->n), o += cur(p)->n, adv(p);
        *o = 0;
        e->name = buf, e->len = tot;
        return e;
    }
    case T_INT:
        if (!(e = mk(p, E_INT))) return NULL;
        e->i = k->i;
        adv(p);
        return e;
    case T_FLOAT:
        if (!(e = mk(p, E_FLOAT))) return NULL;
        e->f = k->f;
        adv(p);
        return e;
    case T_OP:
        if (is_op(p, "(")) {
            adv(p);
            if (is_op(p, ")")) { adv(p); return mk(p, E_LIST); } /* empty tuple */
            jexpr *x = parse_expr(p);
            if (!x) return NULL;
            if (is_op(p, ",")) { /* a tuple: treated as a list */
                jexpr *l = mk(p, E_LIST);
                jexpr *items[64];
                int n = 0;
                items[n++] = x;
                while (is_op(p, ",")) {
                    adv(p);
                    if (is_op(p, ")")) break;
                    if (n == 64) { perr(p, cur_line(p), "tuple too long"); return NULL; }
                    if (!(items[n++] = parse_expr(p))) return NULL;
                }
                l->nargs = n;
                l->negate = 1; /* a tuple: prints as (a, b) */
                l->args = arena_alloc(p->a, sizeof *items * (size_t)n);
                memcpy(l->args, items, sizeof *items * (size_t)n);
                x = l;
            }
            if (expect_op(p, ")")) return NULL;
            return x;
        }
        if (is_op(p, "[") || is_op(p, "{")) {
            int dict = is_op(p, "{");
            adv(p);
            jexpr *l = mk(p, dict ? E_DICT : E_LIST);
            jexpr *items[256], *keys[256];
            int n = 0;
            while (!is_op(p, dict ? "}" : "]")) {
                if (n == 256) { perr(p, cur_line(p), "literal too long"); return NULL; }
                if (dict) {
                    if (!(keys[n] = parse_expr(p)) || expect_op(p, ":")) return NULL;
                }
                if (!(items[n++] = parse_expr(p))) return NULL;
                if (!is_op(p, ",")) break;
                adv(p);
            }
            if (expect_op(p, dict ? "}" : "]")) return NULL;
            l->nargs = n;
            l->args = arena_alloc(p->a, sizeof *items * (size_t)(n + 1));
            memcpy(l->args, items, sizeof *items * (size_t)n);
            if (dict) {
                l->keys = arena_alloc(p->a, sizeof *keys * (size_t)(n + 1));
                memcpy(l->keys, keys, sizeof *keys * (size_t)n);
            }
            return l;
        }
        break;
    default:
        break;
    }
    perr(p, cur_line(p), "unexpected '%s' in expression", k->t == T_EOF ? "end of tag" : k->s ? k->s : "?");
    return NULL;
}

static jexpr *parse_postfix(P *p, jexpr *e) {
    while (e) {
        if (is_op(p, ".")) {
            adv(p);
            jexpr *x = mk(p, E_ATTR);
            if (!x) return NULL;
            if (cur(p)->t == T_NAME) x->name = cur(p)->s;
            else if (cur(p)->t == T_INT) { /* a.0 is a[0] */
                x->kind = E_ITEM;
                x->b = mk(p, E_INT);
                x->b->i = cur(p)->i;
            } else { perr(p, cur_line(p), "expected a name after '.'"); return NULL; }
            adv(p);
            x->a = e;
            e = x;
        } else if (is_op(p, "[")) {
            adv(p);
            jexpr *parts[3] = {NULL, NULL, NULL};
            int colons = 0;
            for (;;) {
                if (is_op(p, ":")) {
                    if (++colons > 2) { perr(p, cur_line(p), "bad slice"); return NULL; }
                    adv(p);
                    continue;
                }
                if (is_op(p, "]")) break;
                if (parts[colons]) { perr(p, cur_line(p), "bad subscript"); return NULL; }
                if (!(parts[colons] = parse_expr(p))) return NULL;
            }
            adv(p);
            jexpr *x = mk(p, colons ? E_SLICE : E_ITEM);
            if (!x) return NULL;
            x->a = e, x->b = parts[0], x->c = parts[1];
            if (colons) {
                x->args = arena_alloc(p->a, sizeof *x->args);
                x->args[0] = parts[2];
            } else if (!parts[0]) { perr(p, cur_line(p), "empty subscript"); return NULL; }
            e = x;
        } else if (is_op(p, "(")) {
            adv(p);
            jexpr *x = mk(p, E_CALL);
            if (!x) return NULL;
            x->a = e;
            if (parse_args(p, x)) return NULL;
            e = x;
        } else {
            break;
        }
    }
    return e;
}

/* Filters (| name(args)) and tests (is [not] name(args)) after a unary operand. */
static jexpr *parse_filter_expr(P *p, jexpr *e) {
    while (e) {
        if (is_op(p, "|")) {
            adv(p);
            if (cur(p)->t != T_NAME) { perr(p, cur_line(p), "expected a filter name after '|'"); return NULL; }
            jexpr *x = mk(p, E_FILTER);
            x->name = cur(p)->s;
            x->a = e;
            adv(p);
            if (is_op(p, "(")) {
                adv(p);
                if (parse_args(p, x)) return NULL;
            }
            e = x;
        } else if (is_name(p, "is")) {
            adv(p);
            jexpr *x = mk(p, E_TEST);
            if (is_name(p, "not")) x->negate = 1, adv(p);
            if (cur(p)->t != T_NAME) { perr(p, cur_line(p), "expected a test name after 'is'"); return NULL; }
            x->name = cur(p)->s;
            x->a = e;
            adv(p);
            if (is_op(p, "(")) {
                adv(p);
                if (parse_args(p, x)) return NULL;
            } else if (cur(p)->t == T_STR || cur(p)->t == T_INT || cur(p)->t == T_FLOAT ||
                       (cur(p)->t == T_NAME && !is_name(p, "else") && !is_name(p, "and") && !is_name(p, "or"))) {
                /* one bare argument: "is sameas false", "is divisibleby 3" */
                x->nargs = 1;
                x->args = arena_alloc(p->a, sizeof *x->args);
                x->kwnames = arena_zalloc(p->a, sizeof *x->kwnames);
                if (!(x->args[0] = parse_unary(p, 0))) return NULL;
            }
            e = x;
        } else {
            break;
        }
    }
    return e;
}

static jexpr *parse_unary(P *p, int with_filter) {
    jexpr *e;
    if (enter(p)) return NULL;
    if (is_op(p, "-") || is_op(p, "+")) {
        int neg = is_op(p, "-");
        adv(p);
        e = mk(p, neg ? E_NEG : E_POS);
        if (!e || !(e->a = parse_unary(p, 0))) return NULL;
    } else {
        e = parse_postfix(p, parse_primary(p));
    }
    p->depth--;
    return with_filter ? parse_filter_expr(p, e) : e;
}

static jexpr *bin(P *p, int op, jexpr *a, jexpr *b) {
    if (!a || !b) return NULL;
    jexpr *e = mk(p, E_BIN);
    if (e) e->op = op, e->a = a, e->b = b;
    return e;
}

static jexpr *parse_pow(P *p) {
    jexpr *e = parse_unary(p, 1);
    while (e && is_op(p, "**")) adv(p), e = bin(p, OP_POW, e, parse_unary(p, 1));
    return e;
}

static jexpr *parse_math2(P *p) {
    jexpr *e = parse_pow(p);
    for (;;) {
        int op = is_op(p, "*") ? OP_MUL : is_op(p, "/") ? OP_DIV : is_op(p, "//") ? OP_FLOORDIV : is_op(p, "%") ? OP_MOD : -1;
        if (op < 0 || !e) return e;
        adv(p);
        e = bin(p, op, e, parse_pow(p));
    }
}

static jexpr *parse_concat(P *p) {
    jexpr *e = parse_math2(p);
    while (e && is_op(p, "~")) adv(p), e = bin(p, OP_CONCAT, e, parse_math2(p));
    return e;
}

static jexpr *parse_math1(P *p) {
    jexpr *e = parse_concat(p);
    for (;;) {
        int op = is_op(p, "+") ? OP_ADD : is_op(p, "-") ? OP_SUB : -1;
        if (op < 0 || !e) return e;
        adv(p);
        e = bin(p, op, e, parse_concat(p));
    }
}

static jexpr *parse_compare(P *p) {
    jexpr *e = parse_math1(p);
    for (;;) {
        int op = is_op(p, "==") ? OP_EQ : is_op(p, "!=") ? OP_NE : is_op(p, "<") ? OP_LT : is_op(p, "<=") ? OP_LE
               : is_op(p, ">") ? OP_GT : is_op(p, ">=") ? OP_GE : is_name(p, "in") ? OP_IN : -1;
        if (op < 0 && is_name(p, "not") && p->items[p->pos].toks[p->tp + 1].t == T_NAME &&
            !strcmp(p->items[p->pos].toks[p->tp + 1].s, "in")) {
            adv(p);
            op = OP_NOTIN;
        }
        if (op < 0 || !e) return e;
        adv(p);
        e = bin(p, op, e, parse_math1(p));
    }
}

static jexpr *parse_not(P *p) {
    if (is_name(p, "not")) {
        adv(p);
        jexpr *e = mk(p, E_NOT);
        if (!e || enter(p) || !(e->a = parse_not(p))) return NULL;
        p->depth--;
        return e;
    }
    return parse_compare(p);
}

static jexpr *parse_and(P *p) {
    jexpr *e = parse_not(p);
    while (e && is_name(p, "and")) adv(p), e = bin(p, OP_AND, e, parse_not(p));
    return e;
}

static jexpr *parse_or(P *p) {
    jexpr *e = parse_and(p);
    while (e && is_name(p, "or")) adv(p), e = bin(p, OP_OR, e, parse_and(p));
    return e;
}

/* The conditional expression: a if c [else b]. */
static jexpr *parse_cond(P *p);
static jexpr *parse_expr(P *p) {
    if (enter(p)) return NULL;
    jexpr *e = parse_cond(p);
    p->depth--;
    return e;
}

static jexpr *parse_cond(P *p) {
    jexpr *e = parse_or(p);
    while (e && is_name(p, "if")) {
        adv(p);
        jexpr *x = mk(p, E_COND);
        if (!x) return NULL;
        x->b = e;
        if (!(x->a = parse_or(p))) return NULL;
        if (is_name(p, "else")) {
            adv(p);
            if (!(x->c = parse_expr(p))) return NULL;
        }
        e = x;
    }
    return e;
}

/* ---------- statements ---------- */

static int parse_body(P *p, const char *const *stops, jbody *out, const char **stopped);

static jnode *mknode(P *p, stmt_kind k) {
    jnode *n = arena_zalloc(p->a, sizeof *n);
    if (!n) { perr(p, cur_line(p), "out of memory"); return NULL; }
    n->kind = k, n->line = p->items[p->pos].line;
    return n;
}

static int end_of_tag(P *p) {
    if (cur(p)->t != T_EOF) return perr(p, cur_line(p), "unexpected '%s' at the end of the tag", cur(p)->s ? cur(p)->s : "?");
    return 0;
}

static int push_node(P *p, jbody *b, jnode *n, int *cap) {
    if (b->n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        jnode **nn = arena_alloc(p->a, sizeof *nn * (size_t)*cap);
        if (!nn) return perr(p, cur_line(p), "out of memory");
        if (b->n) memcpy(nn, b->nodes, sizeof *nn * (size_t)b->n);
        b->nodes = nn;
    }
    b->nodes[b->n++] = n;
    return 0;
}

static const char *stmt_name(P *p) {
    tok *k = &p->items[p->pos].toks[0];
    return k->t == T_NAME ? k->s : "";
}

static int parse_stmt1(P *p, jnode **out);
static int parse_stmt(P *p, jnode **out) {
    if (enter(p)) return -1;
    int rc = parse_stmt1(p, out);
    p->depth--;
    return rc;
}

static int parse_stmt1(P *p, jnode **out) {
    const char *kw = stmt_name(p);
    int line = cur_line(p);
    p->tp = 1;
    jnode *n = NULL;
    if (!strcmp(kw, "if")) {
        jexpr *conds[64];
        jbody bodies[64];
        int k = 0;
        if (!(n = mknode(p, S_IF))) return -1;
        if (!(conds[0] = parse_expr(p)) || end_of_tag(p)) return -1;
        for (;;) {
            static const char *const stops[] = {"elif", "else", "endif", NULL};
            const char *st;
            p->pos++;
            if (parse_body(p, stops, &bodies[k++], &st)) return -1;
            if (!st) return perr(p, line, "'if' without 'endif'");
            p->tp = 1;
            if (!strcmp(st, "endif")) { if (end_of_tag(p)) return -1; break; }
            if (!strcmp(st, "else")) {
                static const char *const stops2[] = {"endif", NULL};
                if (end_of_tag(p)) return -1;
                p->pos++;
                if (parse_body(p, stops2, &n->els, &st)) return -1;
                if (!st) return perr(p, line, "'if' without 'endif'");
                break;
            }
            if (k == 64) return perr(p, line, "too many elif");
            if (!(conds[k] = parse_expr(p)) || end_of_tag(p)) return -1;
        }
        n->nconds = k;
        n->conds = arena_alloc(p->a, sizeof *conds * (size_t)k);
        n->bodies = arena_alloc(p->a, sizeof *bodies * (size_t)k);
        memcpy(n->conds, conds, sizeof *conds * (size_t)k);
        memcpy(n->bodies, bodies, sizeof *bodies * (size_t)k);
    } else if (!strcmp(kw, "for")) {
        if (!(n = mknode(p, S_FOR))) return -1;
        while (n->ntargets < 4) {
            if (cur(p)->t != T_NAME) return perr(p, line, "expected a loop variable");
            n->targets[n->ntargets++] = cur(p)->s;
            adv(p);
            if (!is_op(p, ",")) break;
            adv(p);
        }
        if (!is_name(p, "in")) return perr(p, line, "expected 'in' in for");
        adv(p);
        if (!(n->e = parse_or(p))) return -1; /* no conditional expression: 'if' filters */
        if (is_name(p, "if")) {
            adv(p);
            if (!(n->filter = parse_expr(p))) return -1;
        }
        if (is_name(p, "recursive")) return perr(p, line, "recursive loops are not supported");
        if (end_of_tag(p)) return -1;
        static const char *const stops[] = {"else", "endfor", NULL};
        const char *st;
        p->pos++;
        if (parse_body(p, stops, &n->body, &st)) return -1;
        if (!st) return perr(p, line, "'for' without 'endfor'");
        if (!strcmp(st, "else")) {
            static const char *const stops2[] = {"endfor", NULL};
            p->pos++;
            if (parse_body(p, stops2, &n->els, &st)) return -1;
            if (!st) return perr(p, line, "'for' without 'endfor'");
        }
    } else if (!strcmp(kw, "set")) {
        if (!(n = mknode(p, S_SET))) return -1;
        while (n->ntargets < 4) {
            if (cur(p)->t != T_NAME) return perr(p, line, "expected a name after 'set'");
            n->targets[n->ntargets++] = cur(p)->s;
            adv(p);
            if (is_op(p, ".") && n->ntargets == 1) {
                adv(p);
                if (cur(p)->t != T_NAME) return perr(p, line, "expected an attribute name");
                n->attr = cur(p)->s;
                adv(p);
                break;
            }
            if (!is_op(p, ",")) break;
            adv(p);
        }
        if (cur(p)->t == T_EOF) { /* {% set x %}...{% endset %} */
            static const char *const stops[] = {"endset", NULL};
            const char *st;
            n->kind = S_SETBLOCK;
            p->pos++;
            if (parse_body(p, stops, &n->body, &st)) return -1;
            if (!st) return perr(p, line, "'set' block without 'endset'");
        } else {
            if (expect_op(p, "=") || !(n->e = parse_expr(p))) return -1;
            if (is_op(p, ",")) { /* set a, b = x, y: the value is a tuple */
                jexpr *items[16];
                int k = 0;
                items[k++] = n->e;
                while (is_op(p, ",") && k < 16) {
                    adv(p);
                    if (!(items[k++] = parse_expr(p))) return -1;
                }
                jexpr *l = mk(p, E_LIST);
                if (!l) return -1;
                l->negate = 1, l->nargs = k;
                l->args = arena_alloc(p->a, sizeof *items * (size_t)k);
                memcpy(l->args, items, sizeof *items * (size_t)k);
                n->e = l;
            }
            if (end_of_tag(p)) return -1;
        }
    } else if (!strcmp(kw, "generation")) {
        static const char *const stops[] = {"endgeneration", NULL};
        const char *st;
        if (!(n = mknode(p, S_GEN)) || end_of_tag(p)) return -1;
        p->t->has_generation = 1;
        p->pos++;
        if (parse_body(p, stops, &n->body, &st)) return -1;
        if (!st) return perr(p, line, "'generation' without 'endgeneration'");
    } else if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        if (!(n = mknode(p, kw[0] == 'b' ? S_BREAK : S_CONTINUE)) || end_of_tag(p)) return -1;
    } else if (!strcmp(kw, "macro")) {
        if (!(n = mknode(p, S_MACRO))) return -1;
        if (cur(p)->t != T_NAME) return perr(p, line, "expected a macro name");
        n->name = cur(p)->s;
        adv(p);
        if (expect_op(p, "(")) return -1;
        const char *params[32];
        jexpr *defs[32];
        int k = 0;
        while (!is_op(p, ")")) {
            if (k == 32 || cur(p)->t != T_NAME) return perr(p, line, "bad macro parameters");
            params[k] = cur(p)->s, defs[k] = NULL;
            adv(p);
            if (is_op(p, "=")) {
                adv(p);
                if (!(defs[k] = parse_expr(p))) return -1;
            }
            k++;
            if (!is_op(p, ",")) break;
            adv(p);
        }
        if (expect_op(p, ")") || end_of_tag(p)) return -1;
        n->nparams = k;
        n->params = arena_alloc(p->a, sizeof *params * (size_t)(k + 1));
        n->defaults = arena_alloc(p->a, sizeof *defs * (size_t)(k + 1));
        memcpy(n->params, params, sizeof *params * (size_t)k);
        memcpy(n->defaults, defs, sizeof *defs * (size_t)k);
        static const char *const stops[] = {"endmacro", NULL};
        const char *st;
        p->pos++;
        if (parse_body(p, stops, &n->body, &st)) return -1;
        if (!st) return perr(p, line, "'macro' without 'endmacro'");
    } else if (!strcmp(kw, "call")) {
        if (!(n = mknode(p, S_CALLBLOCK))) return -1;
        if (!(n->e = parse_expr(p)) || end_of_tag(p)) return -1;
        if (n->e->kind != E_CALL) return perr(p, line, "'call' needs a macro call");
        static const char *const stops[] = {"endcall", NULL};
        const char *st;
        p->pos++;
        if (parse_body(p, stops, &n->body, &st)) return -1;
        if (!st) return perr(p, line, "'call' without 'endcall'");
    } else {
        return perr(p, line, "unknown or unsupported tag '%s'", *kw ? kw : "?");
    }
    *out = n;
    return 0;
}

/* Parses items into out until a statement named in stops (left current, its name in
 * *stopped) or the end (*stopped NULL). */
static int parse_body(P *p, const char *const *stops, jbody *out, const char **stopped) {
    int cap = 0;
    memset(out, 0, sizeof *out);
    *stopped = NULL;
    for (; p->pos < p->n; p->pos++) {
        item *it = &p->items[p->pos];
        jnode *n = NULL;
        p->tp = 0;
        if (it->t == I_TEXT) {
            if (!(n = mknode(p, S_TEXT))) return -1;
            n->text = it->text, n->len = it->len;
        } else if (it->t == I_OUT) {
            if (!(n = mknode(p, S_OUT)) || !(n->e = parse_expr(p)) || end_of_tag(p)) return -1;
        } else {
            const char *kw = stmt_name(p);
            for (int i = 0; stops && stops[i]; i++)
                if (!strcmp(kw, stops[i])) { *stopped = stops[i]; return 0; }
            if (!strncmp(kw, "end", 3) || !strcmp(kw, "elif") || !strcmp(kw, "else"))
                return perr(p, it->line, "unexpected '%s'", kw);
            if (parse_stmt(p, &n)) return -1;
        }
        if (push_node(p, out, n, &cap)) return -1;
    }
    return 0;
}

int jinja_parse(jinja_template **out, const char *source, hone_error *err) {
    *out = NULL;
    jinja_template *t = calloc(1, sizeof *t);
    if (!t || !(t->arena = arena_new())) { free(t); return hone_fail(err, "out of memory"); }
    /* as jinja2's lexer: \r\n and \r become \n, and one trailing newline is dropped */
    size_t n = strlen(source), k = 0;
    char *src = arena_alloc(t->arena, n + 1);
    for (size_t i = 0; src && i < n; i++) {
        if (source[i] == '\r') {
            src[k++] = '\n';
            if (source[i + 1] == '\n') i++;
        } else src[k++] = source[i];
    }
    if (src) {
        if (k && src[k - 1] == '\n') k--;
        src[k] = 0;
    }
    P p = {.a = t->arena, .src = src, .err = err, .t = t};
    int rc = p.src ? lex(&p) : hone_fail(err, "out of memory");
    if (!rc) {
        const char *st;
        rc = parse_body(&p, NULL, &t->root, &st);
    }
    for (int i = 0; i < p.n; i++) free(p.items[i].toks);
    free(p.items);
    if (rc) { jinja_free(t); return -1; }
    *out = t;
    return 0;
}

void jinja_free(jinja_template *t) {
    if (!t) return;
    arena_free(t->arena);
    free(t);
}

int jinja_has_generation(const jinja_template *t) { return t->has_generation; }
