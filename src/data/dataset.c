/* data/dataset.c — row formats, validation, mixtures and the eval split (see dataset.h).
 * Rows come from jsonrows.c; each is checked and normalised into arena-owned
 * examples; dataset_load then samples each source and splits the mixture. */
#include "data/dataset.h"
#include "base/arena.h"
#include "data/jsonrows.h"
#include "base/rng.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------- format names ---------- */

static const struct { const char *name; int fmt; int kinds; } formats[] = {
    {"auto", FMT_AUTO, 3},
    {"prompt_completion", FMT_PROMPT_COMPLETION, 1},
    {"messages", FMT_MESSAGES, 1},
    {"conversational", FMT_MESSAGES, 1},
    {"sharegpt", FMT_SHAREGPT, 3},
    {"alpaca", FMT_ALPACA, 1},
    {"text", FMT_TEXT, 1},
    {"standard", FMT_STANDARD, 2},
    {"conversational", FMT_CONVERSATIONAL, 2},
    {"implicit", FMT_IMPLICIT, 2},
    {"implicit_turn", FMT_IMPLICIT_TURN, 2},
};

int dataset_format_parse(const char *name, int kind) {
    int bit = kind == HONE_DPO ? 2 : 1;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if ((formats[i].kinds & bit) && !strcmp(formats[i].name, name)) return formats[i].fmt;
    return -1;
}

const char *dataset_format_name(int fmt) {
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (formats[i].fmt == fmt) return formats[i].name;
    return "?";
}

/* ---------- per-row parsing ---------- */

/* State of one source being read. */
typedef struct {
    hone_dataset *ds;
    const hone_data_source *src;
    int source_index, kind, fmt, skip_invalid;
    hone_source_report *rep;
    void *ex;          /* growable array of examples (malloc) */
    long n, cap;
    char why[600];     /* what is wrong with the current row */
    int identical;     /* the current row is a DPO pair with chosen == rejected */
} reader;

/* The row key for our field name, after the source's column mapping. */
static const char *col(const reader *r, const char *ours) {
    for (int i = 0; i < r->src->n_columns; i++)
        if (!strcmp(r->src->columns[i].ours, ours)) return r->src->columns[i].theirs;
    return ours;
}

static int bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static int bad(reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Field named by our name (mapped); *out NULL when absent (or null) and !required. */
static int field(reader *r, json_t *row, const char *ours, int required, json_t **out) {
    const char *theirs = col(r, ours);
    json_t *v = json_object_get(row, theirs);
    const char *how = v ? "field '%s' is null" : "missing field '%s'";
    if (v && json_is_null(v)) v = NULL;
    *out = v;
    if (!v && required) {
        char what[300];
        snprintf(what, sizeof what, how, theirs);
        if (strcmp(theirs, ours)) return bad(r, "%s (mapped from %s)", what, ours);
        return bad(r, "%s", what);
    }
    return 0;
}

/* Arena copy of a string field, checked non-empty unless allow_empty. */
static const char *str_value(reader *r, json_t *v, const char *what, int allow_empty) {
    if (!json_is_string(v)) { bad(r, "field '%s' must be a string, got %s", what, json_type_name(v)); return NULL; }
    size_t n = json_string_length(v);
    if (!n && !allow_empty) { bad(r, "field '%s' is empty", what); return NULL; }
    char *s = arena_strndup(r->ds->arena, json_string_value(v), n);
    if (!s) bad(r, "out of memory");
    return s;
}

/* Message content: a string, or a list of parts whose text parts are joined
 * ({"type": "text", "text"|"value"|"content": ...}, as OpenAI and LLaMA-Factory write). */
static const char *content_value(reader *r, json_t *v, const char *what) {
    if (json_is_string(v)) return str_value(r, v, what, 1);
    if (!json_is_array(v)) { bad(r, "%s: content must be a string or a list of parts, got %s", what, json_type_name(v)); return NULL; }
    size_t total = 0, i;
    json_t *p;
    json_array_foreach(v, i, p) {
        json_t *t = json_is_object(p) ? json_object_get(p, "type") : NULL;
        json_t *x = json_is_object(p) ? json_object_get(p, "text") : NULL;
        if (!x && json_is_object(p)) x = json_object_get(p, "value");
        if (!x && json_is_object(p)) x = json_object_get(p, "content");
        if (json_is_string(p)) x = p;
        else if (t && (!json_is_string(t) || strcmp(json_string_value(t), "text"))) {
            bad(r, "%s: content part %zu is not text (type '%s')", what, i, json_is_string(t) ? json_string_value(t) : "?");
            return NULL;
        }
        if (!json_is_string(x)) { bad(r, "%s: content part %zu has no text", what, i); return NULL; }
        total += json_string_length(x);
    }
    char *s = arena_alloc(r->ds->arena, total + 1), *o = s;
    if (!s) { bad(r, "out of memory"); return NULL; }
    json_array_foreach(v, i, p) {
        json_t *x = json_is_string(p) ? p : json_object_get(p, "text");
        if (!x) x = json_object_get(p, "value");
        if (!x) x = json_object_get(p, "content");
        memcpy(o, json_string_value(x), json_string_length(x));
        o += json_string_length(x);
    }
    *o = 0;
    return s;
}

static const char *sharegpt_role(const char *from) {
    if (!strcmp(from, "human") || !strcmp(from, "user")) return "user";
    if (!strcmp(from, "gpt") || !strcmp(from, "assistant") || !strcmp(from, "chatgpt") || !strcmp(from, "bing") || !strcmp(from, "bard")) return "assistant";
    if (!strcmp(from, "system")) return "system";
    if (!strcmp(from, "observation") || !strcmp(from, "tool")) return "tool";
    if (!strcmp(from, "function_call")) return "assistant";
    return NULL;
}

/* One message object: {role, content} (sharegpt: {from, value}). */
static int message(reader *r, json_t *m, int sharegpt, const char *what, hone_message *out) {
    if (!json_is_object(m)) return bad(r, "%s must be a message object, got %s", what, json_type_name(m));
    const char *rk = sharegpt ? "from" : "role", *ck = sharegpt ? "value" : "content";
    json_t *role = json_object_get(m, rk), *content = json_object_get(m, ck);
    if (!role && !content && sharegpt) role = json_object_get(m, "role"), content = json_object_get(m, "content");
    if (!role && !content && !sharegpt) role = json_object_get(m, "from"), content = json_object_get(m, "value"), sharegpt = 1;
    if (!role) return bad(r, "%s: missing '%s'", what, rk);
    if (json_is_null(role)) return bad(r, "%s: '%s' is null", what, rk);
    if (!json_is_string(role)) return bad(r, "%s: '%s' must be a string, got %s", what, rk, json_type_name(role));
    if (!content) return bad(r, "%s: missing '%s'", what, ck);
    if (json_is_null(content)) return bad(r, "%s: '%s' is null", what, ck);
    const char *rs = json_string_value(role);
    if (sharegpt) {
        const char *mapped = sharegpt_role(rs);
        if (!mapped) return bad(r, "%s: unknown ShareGPT role '%s' (expected human, gpt or system)", what, rs);
        rs = mapped;
    }
    char w[96];
    snprintf(w, sizeof w, "%s (%s)", what, rs);
    out->role = arena_strndup(r->ds->arena, rs, strlen(rs));
    out->content = content_value(r, content, w);
    if (!out->role || !out->content) return -1;
    if (!*out->content && strcmp(rs, "system")) return bad(r, "%s: empty content", w);
    return 0;
}

/* A list of messages (or one message object, or a bare string taken as `role_for_str`). */
static int messages(reader *r, json_t *v, int sharegpt, const char *what, const char *role_for_str, hone_conv *out) {
    if (json_is_string(v) && role_for_str) {
        out->msgs = arena_alloc(r->ds->arena, sizeof *out->msgs);
        if (!out->msgs) return bad(r, "out of memory");
        out->n = 1;
        out->msgs[0].role = role_for_str;
        return (out->msgs[0].content = str_value(r, v, what, 0)) ? 0 : -1;
    }
    if (json_is_object(v)) {
        out->msgs = arena_alloc(r->ds->arena, sizeof *out->msgs);
        if (!out->msgs) return bad(r, "out of memory");
        out->n = 1;
        return message(r, v, sharegpt, what, &out->msgs[0]);
    }
    if (!json_is_array(v)) return bad(r, "field '%s' must be a list of messages, got %s", what, json_type_name(v));
    size_t n = json_array_size(v);
    if (!n) return bad(r, "field '%s' is an empty list", what);
    out->msgs = arena_alloc(r->ds->arena, n * sizeof *out->msgs);
    if (!out->msgs) return bad(r, "out of memory");
    out->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        char w[64];
        snprintf(w, sizeof w, "%s[%zu]", what, i);
        if (message(r, json_array_get(v, i), sharegpt, w, &out->msgs[i])) return -1;
    }
    return 0;
}

/* Joins a (optional) system message, prompt messages and completion messages. */
static int concat(reader *r, const char *system, const hone_conv *a, const hone_conv *b, hone_conv *out) {
    int n = (system ? 1 : 0) + a->n + (b ? b->n : 0);
    out->msgs = arena_alloc(r->ds->arena, (size_t)n * sizeof *out->msgs);
    if (!out->msgs) return bad(r, "out of memory");
    int k = 0;
    if (system) out->msgs[k].role = "system", out->msgs[k++].content = system;
    for (int i = 0; i < a->n; i++) out->msgs[k++] = a->msgs[i];
    for (int i = 0; b && i < b->n; i++) out->msgs[k++] = b->msgs[i];
    out->n = n;
    return 0;
}

static int one(reader *r, const char *role, const char *content, hone_conv *out) {
    out->msgs = arena_alloc(r->ds->arena, sizeof *out->msgs);
    if (!out->msgs) return bad(r, "out of memory");
    out->n = 1;
    out->msgs[0].role = role, out->msgs[0].content = content;
    return 0;
}

static int optional_system(reader *r, json_t *row, const char **system) {
    json_t *v;
    *system = NULL;
    field(r, row, "system", 0, &v);
    if (!v) return 0;
    *system = str_value(r, v, col(r, "system"), 1);
    if (!*system) return -1;
    if (!**system) *system = NULL;
    return 0;
}

static int has(reader *r, json_t *row, const char *ours) {
    json_t *v = json_object_get(row, col(r, ours));
    return v && !json_is_null(v);
}

/* Format from the keys of the first row (after column mapping). */
static int detect(reader *r, json_t *row) {
    if (r->kind == HONE_DPO) {
        if (!has(r, row, "chosen") || !has(r, row, "rejected")) return -1;
        if (has(r, row, "conversations")) return FMT_SHAREGPT;
        if (has(r, row, "prompt")) {
            json_t *p = json_object_get(row, col(r, "prompt")), *c = json_object_get(row, col(r, "chosen"));
            return json_is_string(p) && json_is_string(c) ? FMT_STANDARD : FMT_CONVERSATIONAL;
        }
        return FMT_IMPLICIT;
    }
    if (has(r, row, "messages")) return FMT_MESSAGES;
    if (has(r, row, "conversations")) return FMT_SHAREGPT;
    if (has(r, row, "instruction") && has(r, row, "output")) return FMT_ALPACA;
    if (has(r, row, "prompt") && has(r, row, "completion")) return FMT_PROMPT_COMPLETION;
    if (has(r, row, "text")) return FMT_TEXT;
    return -1;
}

static int sft_row(reader *r, json_t *row, hone_sft_example *ex) {
    json_t *v, *w;
    const char *system;
    switch (r->fmt) {
    case FMT_TEXT:
        if (field(r, row, "text", 1, &v)) return -1;
        ex->is_text = 1;
        return (ex->text = str_value(r, v, col(r, "text"), 0)) ? 0 : -1;
    case FMT_MESSAGES:
    case FMT_SHAREGPT: {
        int sg = r->fmt == FMT_SHAREGPT;
        const char *name = sg ? "conversations" : "messages";
        hone_conv c;
        if (field(r, row, name, 1, &v) || optional_system(r, row, &system)) return -1;
        if (!json_is_array(v)) return bad(r, "field '%s' must be a list of messages, got %s", col(r, name), json_type_name(v));
        if (messages(r, v, sg, col(r, name), NULL, &c)) return -1;
        return concat(r, system, &c, NULL, &ex->conv);
    }
    case FMT_PROMPT_COMPLETION: {
        hone_conv p, c;
        if (field(r, row, "prompt", 1, &v) || field(r, row, "completion", 1, &w) || optional_system(r, row, &system)) return -1;
        if (json_is_string(v) && json_is_string(w) && !system) { /* TRL's standard form: raw text, no template */
            ex->is_text = 1;
            return (ex->text = str_value(r, v, col(r, "prompt"), 0)) && (ex->completion = str_value(r, w, col(r, "completion"), 0))
                       ? 0 : -1;
        }
        if (messages(r, v, 0, col(r, "prompt"), "user", &p) || messages(r, w, 0, col(r, "completion"), "assistant", &c)) return -1;
        if (concat(r, system, &p, &c, &ex->conv)) return -1;
        ex->n_prompt = ex->conv.n - c.n;
        return 0;
    }
    case FMT_ALPACA: {
        json_t *in, *hist;
        const char *ins, *input = "", *out;
        if (field(r, row, "instruction", 1, &v) || field(r, row, "output", 1, &w) || field(r, row, "input", 0, &in) ||
            field(r, row, "history", 0, &hist) || optional_system(r, row, &system))
            return -1;
        if (!(ins = str_value(r, v, col(r, "instruction"), 0)) || !(out = str_value(r, w, col(r, "output"), 0))) return -1;
        if (in && !(input = str_value(r, in, col(r, "input"), 1))) return -1;
        /* LLaMA-Factory's alpaca converter: the query is instruction + "\n" + input */
        const char *query = ins;
        if (*input) {
            size_t a = strlen(ins), b = strlen(input);
            char *q = arena_alloc(r->ds->arena, a + b + 2);
            if (!q) return bad(r, "out of memory");
            memcpy(q, ins, a), q[a] = '\n', memcpy(q + a + 1, input, b + 1);
            query = q;
        }
        /* optional history: [[query, response], ...] before this turn */
        int nh = 0;
        if (hist) {
            if (!json_is_array(hist)) return bad(r, "field '%s' must be a list of [query, response] pairs", col(r, "history"));
            nh = (int)json_array_size(hist);
        }
        hone_conv h = {arena_alloc(r->ds->arena, (size_t)(2 * nh + 2) * sizeof(hone_message)), 0};
        if (!h.msgs) return bad(r, "out of memory");
        for (int i = 0; i < nh; i++) {
            json_t *pr = json_array_get(hist, i);
            if (!json_is_array(pr) || json_array_size(pr) != 2) return bad(r, "history[%d] must be a [query, response] pair", i);
            h.msgs[h.n].role = "user";
            if (!(h.msgs[h.n++].content = str_value(r, json_array_get(pr, 0), "history query", 0))) return -1;
            h.msgs[h.n].role = "assistant";
            if (!(h.msgs[h.n++].content = str_value(r, json_array_get(pr, 1), "history response", 0))) return -1;
        }
        h.msgs[h.n].role = "user", h.msgs[h.n++].content = query;
        h.msgs[h.n].role = "assistant", h.msgs[h.n++].content = out;
        if (concat(r, system, &h, NULL, &ex->conv)) return -1;
        ex->n_prompt = ex->conv.n - 1;
        return 0;
    }
    }
    return bad(r, "format %s is not an SFT format", dataset_format_name(r->fmt));
}

static int conv_equal(const hone_conv *a, const hone_conv *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->msgs[i].role, b->msgs[i].role) || strcmp(a->msgs[i].content, b->msgs[i].content)) return 0;
    return 1;
}

static int msg_equal(const hone_message *a, const hone_message *b) {
    return !strcmp(a->role, b->role) && !strcmp(a->content, b->content);
}

/* Length in bytes of the UTF-8 code point starting at s (1 for a stray byte). */
static size_t utf8_len(const unsigned char *s) {
    if (*s < 0x80) return 1;
    size_t n = *s >= 0xF0 ? 4 : *s >= 0xE0 ? 3 : *s >= 0xC0 ? 2 : 1;
    for (size_t i = 1; i < n; i++) if ((s[i] & 0xC0) != 0x80) return 1;
    return n;
}

long dataset_implicit_prompt_len(const char *chosen, const char *rejected, int turn_boundary) {
    /* TRL: for idx in range(min(len(c), len(r))): if c[idx] != r[idx]: (step back over a
     * space) break — on code points. Without a mismatch the loop variable keeps its last
     * value, so the prompt is one code point short of the shorter string. */
    const unsigned char *c = (const unsigned char *)chosen, *r = (const unsigned char *)rejected;
    size_t i = 0, prev = 0;
    int any = 0, mismatch = 0;
    while (c[i] && r[i]) {
        size_t lc = utf8_len(c + i), lr = utf8_len(r + i);
        any = 1;
        if (lc != lr || memcmp(c + i, r + i, lc)) { mismatch = 1; break; }
        prev = i;
        i += lc;
    }
    if (!any) return -1;
    long idx;
    if (mismatch) {
        idx = (long)i;
        if (i > 0 && c[prev] == ' ') idx = (long)prev; /* "remove space before the prompt" */
        /* TRL at idx 0 looks at c[-1], the last character; a prompt that is empty is kept empty */
    } else {
        idx = (long)prev; /* the last index the loop visited */
    }
    if (turn_boundary) {
        /* cut back to just after the last "Assistant:" marker inside the prefix */
        long best = -1;
        for (const char *p = chosen; (p = strstr(p, "Assistant:")) && p + 10 - chosen <= idx; p++) best = (long)(p + 10 - chosen);
        if (best >= 0) idx = best;
    }
    return idx;
}

static int text_conv(reader *r, const char *s, size_t n, hone_conv *out) {
    const char *t = arena_strndup(r->ds->arena, s, n);
    if (!t) return bad(r, "out of memory");
    return one(r, "text", t, out);
}

static int dpo_row(reader *r, json_t *row, hone_dpo_example *ex) {
    json_t *p = NULL, *c, *j, *v;
    const char *system;
    if (field(r, row, "chosen", 1, &c) || field(r, row, "rejected", 1, &j) || optional_system(r, row, &system)) return -1;
    const char *cn = col(r, "chosen"), *rn = col(r, "rejected");
    switch (r->fmt) {
    case FMT_STANDARD: {
        if (field(r, row, "prompt", 1, &p)) return -1;
        const char *ps = str_value(r, p, col(r, "prompt"), 0), *cs, *rs;
        if (!ps || !(cs = str_value(r, c, cn, 0)) || !(rs = str_value(r, j, rn, 0))) return -1;
        if (system) { /* a system column makes it a conversation: the template gives it a place */
            hone_conv u;
            if (one(r, "user", ps, &u) || concat(r, system, &u, NULL, &ex->prompt) ||
                one(r, "assistant", cs, &ex->chosen) || one(r, "assistant", rs, &ex->rejected))
                return -1;
        } else {
            ex->is_text = 1;
            if (one(r, "text", ps, &ex->prompt) || one(r, "text", cs, &ex->chosen) || one(r, "text", rs, &ex->rejected)) return -1;
        }
        break;
    }
    case FMT_CONVERSATIONAL: {
        hone_conv pc;
        if (field(r, row, "prompt", 0, &p)) return -1;
        if (!p) goto implicit; /* whole dialogues: TRL's maybe_extract_prompt */
        if (messages(r, p, 0, col(r, "prompt"), "user", &pc) || concat(r, system, &pc, NULL, &ex->prompt) ||
            messages(r, c, 0, cn, "assistant", &ex->chosen) || messages(r, j, 0, rn, "assistant", &ex->rejected))
            return -1;
        break;
    }
    case FMT_SHAREGPT: {
        hone_conv pc;
        if (field(r, row, "conversations", 1, &v)) return -1;
        if (!json_is_array(v)) return bad(r, "field '%s' must be a list of messages, got %s", col(r, "conversations"), json_type_name(v));
        if (messages(r, v, 1, col(r, "conversations"), NULL, &pc) || concat(r, system, &pc, NULL, &ex->prompt) ||
            messages(r, c, 1, cn, "assistant", &ex->chosen) || messages(r, j, 1, rn, "assistant", &ex->rejected))
            return -1;
        break;
    }
    case FMT_IMPLICIT:
    case FMT_IMPLICIT_TURN:
    implicit:
        if (json_is_string(c) && json_is_string(j)) {
            const char *cs = json_string_value(c), *rs = json_string_value(j);
            if (!*cs || !*rs) return bad(r, "field '%s' is empty", !*cs ? cn : rn);
            long k = dataset_implicit_prompt_len(cs, rs, r->fmt == FMT_IMPLICIT_TURN);
            if (k <= 0) return bad(r, "'%s' and '%s' share no prompt", cn, rn);
            ex->is_text = 1;
            if (text_conv(r, cs, (size_t)k, &ex->prompt) || text_conv(r, cs + k, strlen(cs + k), &ex->chosen) ||
                text_conv(r, rs + k, strlen(rs + k), &ex->rejected))
                return -1;
            if (!*ex->chosen.msgs[0].content || !*ex->rejected.msgs[0].content)
                return bad(r, "'%s' is a prefix of '%s': empty completion after the shared prompt",
                           !*ex->chosen.msgs[0].content ? cn : rn, !*ex->chosen.msgs[0].content ? rn : cn);
        } else {
            hone_conv a, b;
            if (messages(r, c, 0, cn, NULL, &a) || messages(r, j, 0, rn, NULL, &b)) return -1;
            int m = a.n < b.n ? a.n : b.n, k = 0;
            while (k < m && msg_equal(&a.msgs[k], &b.msgs[k])) k++;
            if (k == m) k = m - 1; /* TRL's loop without a mismatch stops one short */
            if (k == 0) return bad(r, "'%s' and '%s' share no prompt messages", cn, rn);
            hone_conv pc = {a.msgs, k};
            if (concat(r, system, &pc, NULL, &ex->prompt)) return -1;
            ex->chosen = (hone_conv){a.msgs + k, a.n - k};
            ex->rejected = (hone_conv){b.msgs + k, b.n - k};
        }
        break;
    default:
        return bad(r, "format %s is not a DPO format", dataset_format_name(r->fmt));
    }
    if (conv_equal(&ex->chosen, &ex->rejected)) {
        /* well-formed but useless (zero gradient): always left out and counted, never fatal */
        r->identical = 1;
        return bad(r, "'%s' and '%s' are identical", cn, rn);
    }
    return 0;
}

/* jsonrows callback: one row. */
static int on_row(void *ud, json_t *row, long line, const char *why, hone_error *err) {
    reader *r = ud;
    r->rep->rows_read++;
    r->why[0] = 0;
    r->identical = 0;
    if (!row) snprintf(r->why, sizeof r->why, "%s", why);
    else if (!json_is_object(row)) bad(r, "row must be a JSON object, got %s", json_type_name(row));
    else if (r->fmt == FMT_AUTO && (r->fmt = detect(r, row)) < 0) {
        char keys[300] = "";
        const char *k;
        json_t *v;
        json_object_foreach(row, k, v) {
            if (keys[0]) strncat(keys, ", ", sizeof keys - strlen(keys) - 1);
            strncat(keys, k, sizeof keys - strlen(keys) - 1);
        }
        r->fmt = FMT_AUTO;
        /* a format that cannot be told is a configuration problem: never skipped */
        return hone_fail(err, "%s:%ld: cannot tell the %s format from the keys [%s]; set format: and columns:",
                         r->src->path, line, r->kind == HONE_DPO ? "DPO" : "SFT", keys);
    }
    if (!r->why[0]) {
        if (r->n == r->cap) {
            long nc = r->cap ? r->cap * 2 : 1024;
            size_t sz = r->kind == HONE_DPO ? sizeof(hone_dpo_example) : sizeof(hone_sft_example);
            void *nx = realloc(r->ex, (size_t)nc * sz);
            if (!nx) return hone_fail(err, "%s:%ld: out of memory", r->src->path, line);
            r->ex = nx, r->cap = nc;
        }
        if (r->kind == HONE_DPO) {
            hone_dpo_example *e = (hone_dpo_example *)r->ex + r->n;
            memset(e, 0, sizeof *e);
            e->source = r->source_index, e->line = line;
            if (!dpo_row(r, row, e)) r->n++;
        } else {
            hone_sft_example *e = (hone_sft_example *)r->ex + r->n;
            memset(e, 0, sizeof *e);
            e->source = r->source_index, e->line = line;
            if (!sft_row(r, row, e)) r->n++;
        }
    }
    if (r->why[0] && r->identical) {
        if (!r->rep->first_identical[0])
            snprintf(r->rep->first_identical, sizeof r->rep->first_identical, "%.200s:%ld: %.290s", r->src->path, line, r->why);
        r->rep->rows_identical++;
        return 0;
    }
    if (r->why[0]) {
        if (!r->skip_invalid)
            return hone_fail(err, "%s:%ld: %s (skip_invalid_rows: true skips such rows)", r->src->path, line, r->why);
        if (!r->rep->first_error[0]) snprintf(r->rep->first_error, sizeof r->rep->first_error, "%.200s:%ld: %.290s", r->src->path, line, r->why);
        r->rep->rows_skipped++;
        return 0;
    }
    r->rep->rows_valid++;
    return 0;
}

int dataset_read_source(hone_dataset *ds, const hone_data_source *src, int source_index, int skip_invalid,
                        void **out_ex, long *out_n, hone_source_report *rep, hone_error *err) {
    int fmt = dataset_format_parse(src->format ? src->format : "auto", ds->kind);
    if (fmt < 0) return hone_fail(err, "%s: unknown %s format '%s'", src->path, ds->kind == HONE_DPO ? "dpo" : "sft", src->format);
    if (!ds->arena && !(ds->arena = arena_new())) return hone_fail(err, "out of memory");
    reader r = {.ds = ds, .src = src, .source_index = source_index, .kind = ds->kind, .fmt = fmt,
                .skip_invalid = skip_invalid, .rep = rep};
    memset(rep, 0, sizeof *rep);
    rep->path = arena_strndup(ds->arena, src->path, strlen(src->path));
    int rc = jsonrows_read(src->path, on_row, &r, err);
    rep->format = r.fmt;
    if (rc) { free(r.ex); return -1; }
    *out_ex = r.ex; /* malloc-owned, the caller frees (dataset_load copies into the arena) */
    *out_n = r.n;
    return 0;
}

/* ---------- mixture and split ---------- */

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Picks k of n rows: whole copies when k >= n, then a random subset of the rest, each
 * copy in file order. Returns a malloc'd index list of length k. */
static size_t *select_rows(long n, long k, hone_rng *rng) {
    size_t *sel = malloc((size_t)(k ? k : 1) * sizeof *sel), *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    if (!sel || !perm) { free(sel); free(perm); return NULL; }
    long o = 0;
    while (k - o >= n && n > 0)
        for (long i = 0; i < n; i++) sel[o++] = (size_t)i;
    long rest = k - o;
    if (rest > 0) {
        for (long i = 0; i < n; i++) perm[i] = (size_t)i;
        /* partial Fisher-Yates: the first `rest` slots become a uniform random subset */
        for (long i = 0; i < rest; i++) {
            long j = i + (long)rng_below(rng, (uint64_t)(n - i));
            size_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        qsort(perm, (size_t)rest, sizeof *perm, cmp_size);
        memcpy(sel + o, perm, (size_t)rest * sizeof *sel);
    }
    free(perm);
    return sel;
}

int dataset_load(hone_dataset *ds, const hone_data_options *o, int kind, long seed, hone_error *err) {
    memset(ds, 0, sizeof *ds);
    ds->kind = kind;
    size_t esz = kind == HONE_DPO ? sizeof(hone_dpo_example) : sizeof(hone_sft_example);
    if (o->n_datasets == 0) return hone_fail(err, "datasets: no sources given");
    if (!(ds->arena = arena_new()) ||
        !(ds->sources = arena_alloc(ds->arena, (size_t)o->n_datasets * sizeof *ds->sources))) {
        dataset_free(ds);
        return hone_fail(err, "out of memory");
    }
    ds->n_sources = o->n_datasets;
    /* pools: train-split rows, eval-split rows (selected, as example copies) */
    unsigned char *pool[2] = {NULL, NULL};
    long npool[2] = {0, 0};
    int rc = 0;
    for (int s = 0; s < o->n_datasets && !rc; s++) {
        const hone_data_source *src = &o->datasets[s];
        hone_source_report *rep = &ds->sources[s];
        void *ex = NULL;
        long n = 0;
        if (dataset_read_source(ds, src, s, o->skip_invalid_rows, &ex, &n, rep, err)) { rc = -1; break; }
        ds->n_skipped += rep->rows_skipped;
        ds->n_identical += rep->rows_identical;
        if (n == 0) {
            free(ex);
            rc = hone_fail(err, "%s: no valid rows (%ld read, %ld skipped, %ld identical pairs%s%s)", src->path, rep->rows_read,
                           rep->rows_skipped, rep->rows_identical,
                           rep->first_error[0] || rep->first_identical[0] ? "; first: " : "",
                           rep->first_error[0] ? rep->first_error : rep->first_identical);
            break;
        }
        long k = src->number_of_samples >= 0 ? src->number_of_samples
               : src->ratio >= 0 ? (long)llround(src->ratio * (double)n) : n;
        /* each source draws from its own stream so adding a source leaves the others' picks alone */
        hone_rng rng;
        rng_seed(&rng, (uint64_t)seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(s + 1)));
        size_t *sel = select_rows(n, k, &rng);
        int which = src->split && !strcmp(src->split, "eval");
        unsigned char *np = realloc(pool[which], (size_t)(npool[which] + k + 1) * esz);
        if (!sel || !np) {
            free(sel), free(ex);
            if (np) pool[which] = np;
            rc = hone_fail(err, "out of memory");
            break;
        }
        pool[which] = np;
        for (long i = 0; i < k; i++) memcpy(np + (size_t)(npool[which] + i) * esz, (unsigned char *)ex + sel[i] * esz, esz);
        npool[which] += k;
        rep->rows_selected = k;
        free(sel), free(ex);
    }
    long n = npool[0], n_eval = 0;
    if (!rc && o->test_size > 0) {
        n_eval = o->test_size < 1 ? (long)ceil(o->test_size * (double)n) : (long)o->test_size;
        if (n_eval >= n) rc = hone_fail(err, "test_size %g leaves no training rows out of %ld", o->test_size, n);
        else {
            size_t *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
            unsigned char *sh = malloc((size_t)(n ? n : 1) * esz);
            if (!perm || !sh) rc = hone_fail(err, "out of memory");
            else {
                hone_rng rng;
                rng_seed(&rng, (uint64_t)seed);
                for (long i = 0; i < n; i++) perm[i] = (size_t)i;
                rng_shuffle_indices(&rng, perm, (size_t)n);
                for (long i = 0; i < n; i++) memcpy(sh + (size_t)i * esz, pool[0] + perm[i] * esz, esz);
                free(pool[0]);
                pool[0] = sh, sh = NULL;
            }
            free(perm), free(sh);
        }
    }
    if (!rc) {
        ds->n_train = n - n_eval;
        ds->n_eval = n_eval + npool[1];
        unsigned char *tr = arena_alloc(ds->arena, (size_t)ds->n_train * esz + 1);
        unsigned char *ev = arena_alloc(ds->arena, (size_t)ds->n_eval * esz + 1);
        if (!tr || !ev) rc = hone_fail(err, "out of memory");
        else {
            if (ds->n_train) memcpy(tr, pool[0], (size_t)ds->n_train * esz);
            if (n_eval) memcpy(ev, pool[0] + (size_t)ds->n_train * esz, (size_t)n_eval * esz);
            if (npool[1]) memcpy(ev + (size_t)n_eval * esz, pool[1], (size_t)npool[1] * esz);
            if (kind == HONE_DPO) ds->dpo_train = (void *)tr, ds->dpo_eval = (void *)ev;
            else ds->sft_train = (void *)tr, ds->sft_eval = (void *)ev;
        }
    }
    free(pool[0]), free(pool[1]);
    if (rc) dataset_free(ds);
    return rc;
}

void dataset_free(hone_dataset *ds) {
    if (!ds) return;
    arena_free(ds->arena);
    memset(ds, 0, sizeof *ds);
}

void dataset_report(const hone_dataset *ds, FILE *f) {
    for (int i = 0; i < ds->n_sources; i++) {
        const hone_source_report *r = &ds->sources[i];
        fprintf(f, "data: %s [%s]: %ld rows read, %ld valid, %ld skipped, %ld used\n", r->path,
                dataset_format_name(r->format), r->rows_read, r->rows_valid, r->rows_skipped, r->rows_selected);
        if (r->first_error[0]) fprintf(f, "data:   first skipped row: %s\n", r->first_error);
        if (r->rows_identical)
            fprintf(f, "data:   %ld pairs with chosen == rejected left out (first: %s)\n", r->rows_identical, r->first_identical);
    }
    fprintf(f, "data: %ld training and %ld evaluation %s, %ld invalid rows skipped\n", ds->n_train, ds->n_eval,
            ds->kind == HONE_DPO ? "pairs" : "examples", ds->n_skipped);
}
