/* chat/template.c — built-in chat formats, tokenizer_config.json templates through the
 * Jinja subset, assistant spans, and TRL's SFT / DPO text layouts (see chat_template.h). */
#include "chat/template.h"
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------- a growable output string with spans ---------- */

typedef struct {
    char *s;
    size_t n, cap;
    chat_span *sp;
    int nsp, capsp;
    int oom;
} out_buf;

static void put(out_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) { b->oom = 1; return; }
        b->s = ns, b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void puts_(out_buf *b, const char *s) { put(b, s, strlen(s)); }

/* Python's str.strip() of s appended. */
static void put_stripped(out_buf *b, const char *s) {
    size_t i, j;
    jinja_py_strip(s, strlen(s), &i, &j);
    put(b, s + i, j - i);
}

static void span(out_buf *b, size_t start) {
    if (b->oom || b->n == start) return;
    if (b->nsp == b->capsp) {
        int nc = b->capsp ? b->capsp * 2 : 8;
        chat_span *ns = realloc(b->sp, sizeof *ns * (size_t)nc);
        if (!ns) { b->oom = 1; return; }
        b->sp = ns, b->capsp = nc;
    }
    b->sp[b->nsp++] = (chat_span){start, b->n};
}

static int finish(out_buf *b, chat_text *out, hone_error *err) {
    if (!b->s && !b->oom) put(b, "", 0);
    if (b->oom) {
        free(b->s), free(b->sp);
        return hone_fail(err, "out of memory");
    }
    out->text = b->s, out->len = b->n, out->spans = b->sp, out->n_spans = b->nsp;
    return 0;
}

static int fail_buf(out_buf *b, hone_error *err, const char *fmt, const char *arg) {
    free(b->s), free(b->sp);
    return hone_fail(err, fmt, arg);
}

static const char *const ALTERNATE = "chat template: Conversation roles must alternate user/assistant/user/assistant/...";

/* ---------- built-in formats ---------- */

static int render_builtin(const chat_template *t, const hone_message *m, int n, int gen, chat_text *out, hone_error *err) {
    out_buf b = {0};
    const char *bos = t->bos_token ? t->bos_token : "", *eos = t->eos_token ? t->eos_token : "";
    switch (t->kind) {
    case CHAT_CHATML:
        for (int i = 0; i < n; i++) {
            int asst = !strcmp(m[i].role, "assistant");
            puts_(&b, "<|im_start|>"), puts_(&b, m[i].role), puts_(&b, "\n");
            size_t s0 = b.n;
            if (asst) puts_(&b, m[i].content);
            else put_stripped(&b, m[i].content);
            puts_(&b, "<|im_end|>\n");
            if (asst) span(&b, s0);
        }
        if (gen) puts_(&b, "<|im_start|>assistant\n");
        break;
    case CHAT_LLAMA2: {
        int k = 0, has_sys = n > 0 && !strcmp(m[0].role, "system");
        for (int i = has_sys; i < n; i++, k++) {
            int user = !strcmp(m[i].role, "user");
            if (user != (k % 2 == 0)) return fail_buf(&b, err, "%s", ALTERNATE);
            if (user) {
                puts_(&b, bos), puts_(&b, "[INST] ");
                if (k == 0 && has_sys) { /* "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content, then .strip() */
                    out_buf c = {0};
                    puts_(&c, "<<SYS>>\n"), puts_(&c, m[0].content), puts_(&c, "\n<</SYS>>\n\n"), puts_(&c, m[i].content);
                    if (c.oom) return fail_buf(&b, err, "%s", "out of memory");
                    put_stripped(&b, c.s);
                    free(c.s);
                } else put_stripped(&b, m[i].content);
                puts_(&b, " [/INST]");
            } else if (!strcmp(m[i].role, "assistant")) {
                size_t s0 = b.n;
                puts_(&b, " ");
                if (k == 0 && has_sys) return fail_buf(&b, err, "%s", ALTERNATE);
                put_stripped(&b, m[i].content);
                puts_(&b, " "), puts_(&b, eos);
                span(&b, s0);
            }
        }
        break;
    }
    case CHAT_LLAMA3:
        for (int i = 0; i < n; i++) {
            if (i == 0) puts_(&b, bos);
            puts_(&b, "<|start_header_id|>"), puts_(&b, m[i].role), puts_(&b, "<|end_header_id|>\n\n");
            size_t s0 = b.n;
            put_stripped(&b, m[i].content);
            puts_(&b, "<|eot_id|>");
            if (!strcmp(m[i].role, "assistant")) span(&b, s0);
        }
        if (gen) puts_(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_GEMMA: {
        int has_sys = n > 0 && !strcmp(m[0].role, "system");
        puts_(&b, bos);
        for (int i = has_sys, k = 0; i < n; i++, k++) {
            int user = !strcmp(m[i].role, "user"), asst = !strcmp(m[i].role, "assistant");
            if (user != (k % 2 == 0)) return fail_buf(&b, err, "%s", ALTERNATE);
            puts_(&b, "<start_of_turn>"), puts_(&b, asst ? "model" : m[i].role), puts_(&b, "\n");
            if (k == 0 && has_sys) puts_(&b, m[0].content), puts_(&b, "\n\n");
            size_t s0 = b.n;
            put_stripped(&b, m[i].content);
            puts_(&b, "<end_of_turn>\n");
            if (asst) span(&b, s0);
        }
        if (gen) puts_(&b, "<start_of_turn>model\n");
        break;
    }
    case CHAT_ZEPHYR:
        for (int i = 0; i < n; i++) {
            int asst = !strcmp(m[i].role, "assistant");
            if (asst || !strcmp(m[i].role, "user") || !strcmp(m[i].role, "system")) {
                puts_(&b, "<|"), puts_(&b, m[i].role), puts_(&b, "|>\n");
                size_t s0 = b.n;
                puts_(&b, m[i].content), puts_(&b, eos), puts_(&b, "\n");
                if (asst) span(&b, s0);
            }
            if (i == n - 1 && gen) puts_(&b, "<|assistant|>\n");
        }
        break;
    default:
        return fail_buf(&b, err, "%s", "internal: not a built-in template");
    }
    return finish(&b, out, err);
}

/* ---------- Jinja templates ---------- */

static int render_jinja(const chat_template *t, const hone_message *m, int n, int gen, char **text, size_t *len,
                        jinja_span **sp, int *nsp, hone_error *err) {
    jinja_message stack[16], *jm = n <= 16 ? stack : malloc(sizeof *jm * (size_t)n);
    if (!jm) return hone_fail(err, "out of memory");
    for (int i = 0; i < n; i++) jm[i].role = m[i].role, jm[i].content = m[i].content;
    jinja_chat_vars v = {jm, n, gen, t->bos_token, t->eos_token};
    int rc = jinja_render_chat(t->jinja, &v, text, len, sp, nsp, err);
    if (jm != stack) free(jm);
    return rc;
}

static size_t common_prefix(const char *a, size_t na, const char *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

int chat_render(const chat_template *t, const hone_message *msgs, int n, int gen, chat_text *out, hone_error *err) {
    memset(out, 0, sizeof *out);
    if (t->kind != CHAT_JINJA) return render_builtin(t, msgs, n, gen, out, err);
    jinja_span *sp = NULL;
    int nsp = 0;
    if (render_jinja(t, msgs, n, gen, &out->text, &out->len, jinja_has_generation(t->jinja) ? &sp : NULL, &nsp, err)) return -1;
    out_buf b = {.s = out->text, .n = out->len, .cap = out->len + 1};
    if (jinja_has_generation(t->jinja)) {
        for (int i = 0; i < nsp; i++) {
            size_t keep = b.n;
            b.n = sp[i].end;
            span(&b, sp[i].start);
            b.n = keep;
        }
        free(sp);
    } else {
        /* each assistant turn: from where the prompt before it (with the generation
         * prompt) stops matching to where the conversation through it stops matching */
        for (int i = 0; i < n; i++) {
            if (strcmp(msgs[i].role, "assistant")) continue;
            char *pre = NULL, *thru = NULL;
            size_t npre = 0, nthru = 0;
            hone_error ignored;
            /* a template may reject a partial conversation (e.g. one that starts with an
             * assistant turn): then that turn has no span, the render itself stands */
            if (render_jinja(t, msgs, i, 1, &pre, &npre, NULL, NULL, &ignored) ||
                render_jinja(t, msgs, i + 1, 0, &thru, &nthru, NULL, NULL, &ignored)) {
                free(pre);
                continue;
            }
            size_t s0 = common_prefix(pre, npre, b.s, b.n), s1 = common_prefix(thru, nthru, b.s, b.n);
            free(pre), free(thru);
            if (s1 > s0) {
                size_t keep = b.n;
                b.n = s1;
                span(&b, s0);
                b.n = keep;
            }
        }
    }
    if (b.oom) { free(b.s), free(b.sp); memset(out, 0, sizeof *out); return hone_fail(err, "out of memory"); }
    out->spans = b.sp, out->n_spans = b.nsp;
    return 0;
}

void chat_text_free(chat_text *o) {
    if (!o) return;
    free(o->text);
    free(o->spans);
    memset(o, 0, sizeof *o);
}

/* ---------- loading ---------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static const char *token_text(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

/* The generation prompt of a Jinja template: what add_generation_prompt adds after one user turn. */
static char *probe_generation_prompt(const chat_template *t) {
    hone_message u = {"user", "x"};
    char *a = NULL, *g = NULL;
    size_t na = 0, ng = 0;
    hone_error e;
    char *res = NULL;
    if (!render_jinja(t, &u, 1, 0, &a, &na, NULL, NULL, &e) && !render_jinja(t, &u, 1, 1, &g, &ng, NULL, NULL, &e) &&
        ng >= na && !memcmp(a, g, na))
        res = strdup(g + na);
    else
        res = strdup(""); /* a template that rejects a lone user turn has no probe-able prompt */
    free(a), free(g);
    return res;
}

int chat_template_from_jinja(chat_template *t, const char *source, const char *bos, const char *eos, hone_error *err) {
    memset(t, 0, sizeof *t);
    t->kind = CHAT_JINJA;
    if (jinja_parse(&t->jinja, source, err)) return -1;
    t->bos_token = dup_or_null(bos), t->eos_token = dup_or_null(eos);
    t->stop = dup_or_null(eos);
    t->name = strdup("inline");
    t->source = strdup(source);
    t->generation_prompt = probe_generation_prompt(t);
    if ((bos && !t->bos_token) || (eos && !t->eos_token) || !t->name || !t->source || !t->generation_prompt) {
        chat_template_free(t);
        return hone_fail(err, "out of memory");
    }
    return 0;
}

static const char *const chatml_tokens[] = {"<|im_start|>", "<|im_end|>", NULL};
static const char *const llama2_tokens[] = {"<s>", "</s>", NULL};
static const char *const llama3_tokens[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", NULL};
static const char *const gemma_tokens[] = {"<bos>", "<start_of_turn>", "<end_of_turn>", NULL};
static const char *const zephyr_tokens[] = {"</s>", NULL}; /* <|user|> etc. are plain text to Zephyr's tokenizer */

static const struct {
    const char *name;
    chat_kind kind;
    const char *bos, *eos, *gen, *stop;
    const char *const *tokens;
} builtins[] = {
    {"chatml", CHAT_CHATML, NULL, "<|im_end|>", "<|im_start|>assistant\n", "<|im_end|>", chatml_tokens},
    {"llama2", CHAT_LLAMA2, "<s>", "</s>", "", "</s>", llama2_tokens},
    {"llama3", CHAT_LLAMA3, "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", llama3_tokens},
    {"gemma", CHAT_GEMMA, "<bos>", "<eos>", "<start_of_turn>model\n", "<end_of_turn>", gemma_tokens},
    {"zephyr", CHAT_ZEPHYR, "<s>", "</s>", "<|assistant|>\n", "</s>", zephyr_tokens},
};

int chat_template_load(chat_template *t, const char *spec, const char *model_path, hone_error *err) {
    memset(t, 0, sizeof *t);
    if (strstr(spec, "{{") || strstr(spec, "{%")) return chat_template_from_jinja(t, spec, NULL, NULL, err);
    /* the model's tokenizer_config.json, when there is one */
    json_t *cfg = NULL;
    char path[4096] = "";
    if (model_path) {
        struct stat st;
        if (!stat(model_path, &st) && S_ISDIR(st.st_mode)) snprintf(path, sizeof path, "%s/tokenizer_config.json", model_path);
        else snprintf(path, sizeof path, "%s", model_path);
        json_error_t je;
        FILE *f = fopen(path, "rb");
        if (f) {
            cfg = json_loadf(f, JSON_DECODE_INT_AS_REAL, &je); /* token ids beyond 2^63 occur */
            fclose(f);
            if (!cfg) return hone_fail(err, "%s:%d: bad JSON: %s", path, je.line, je.text);
        } else if (!strcmp(spec, "model")) {
            return hone_fail(err, "%s: cannot open: %s", path, strerror(errno));
        }
    }
    const char *mbos = cfg ? token_text(json_object_get(cfg, "bos_token")) : NULL;
    const char *meos = cfg ? token_text(json_object_get(cfg, "eos_token")) : NULL;
    json_t *ct = cfg ? json_object_get(cfg, "chat_template") : NULL;
    if (json_is_array(ct)) { /* [{name, template}, ...]: the "default" one */
        size_t i;
        json_t *e, *pick = NULL;
        json_array_foreach(ct, i, e) {
            const char *nm = json_string_value(json_object_get(e, "name"));
            if (nm && !strcmp(nm, "default")) pick = e;
        }
        ct = pick ? json_object_get(pick, "template") : NULL;
    }
    int rc;
    if (!strcmp(spec, "model") || (!strcmp(spec, "auto") && json_is_string(ct))) {
        if (!json_is_string(ct)) {
            json_decref(cfg);
            return hone_fail(err, "%s: has no chat_template; set chat_template: chatml, llama2, llama3, gemma or zephyr",
                             path[0] ? path : "model_name_or_path");
        }
        rc = chat_template_from_jinja(t, json_string_value(ct), mbos, meos, err);
        if (rc) hone_fail_prefix(err, "%s: chat_template", path);
        else {
            free(t->name);
            t->name = strdup("model");
        }
        json_decref(cfg);
        return rc;
    }
    const char *name = !strcmp(spec, "auto") ? "chatml" : spec;
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
        if (strcmp(builtins[i].name, name)) continue;
        t->kind = builtins[i].kind;
        t->name = strdup(name);
        /* the model's own special-token spellings win (e.g. a Llama-2 tokenizer's "<s>") */
        t->bos_token = dup_or_null(mbos && builtins[i].bos ? mbos : builtins[i].bos);
        t->eos_token = dup_or_null(meos && t->kind == CHAT_ZEPHYR ? meos : builtins[i].eos);
        t->generation_prompt = strdup(builtins[i].gen);
        t->stop = strdup(builtins[i].stop);
        t->special_tokens = builtins[i].tokens;
        json_decref(cfg);
        if (!t->name || !t->generation_prompt || !t->stop) {
            chat_template_free(t);
            return hone_fail(err, "out of memory");
        }
        return 0;
    }
    json_decref(cfg);
    return hone_fail(err, "chat_template: unknown template '%s' (chatml, llama2, llama3, gemma, zephyr, model, auto, or a Jinja string)", spec);
}

/* The built-in formats as Jinja, for tokenizer_config.json's chat_template: the templates
 * tests/reference/chat_templates.py renders and test_chat_template.c checks the C built-ins
 * against, with @BOS@ / @EOS@ standing for the template's own bos / eos spelling. */
static const struct { const char *name, *jinja; } builtin_jinja[] = {
    {"chatml",
     "{% for m in messages %}<|im_start|>{{ m.role }}"
     "\n{{ m.content if m.role == 'assistant' else m.content.strip() }}<|im_end|>\n{% endfor %}"
     "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"},
    {"llama2",
     "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
     "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
     "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
     "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
     "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
     "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
     "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
     "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
     "{{ @BOS@ + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
     "{{ ' '  + content.strip() + ' ' + @EOS@ }}{% endif %}{% endfor %}"},
    {"llama3",
     "{% set loop_messages = messages %}{% for message in loop_messages %}"
     "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
     "{% if loop.index0 == 0 %}{% set content = @BOS@ + content %}{% endif %}{{ content }}"
     "{% endfor %}{% if add_generation_prompt %}"
     "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"},
    {"gemma",
     "{{ @BOS@ }}{% if messages[0]['role'] == 'system' %}"
     "{% set first_user_prefix = messages[0]['content'] + '\n\n' %}"
     "{% set loop_messages = messages[1:] %}{% else %}{% set first_user_prefix = '' %}"
     "{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}"
     "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
     "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
     "{% endif %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}"
     "{% set role = message['role'] %}{% endif %}"
     "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
     "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}"
     "{{ '<start_of_turn>model\n' }}{% endif %}"},
    {"zephyr",
     "{% for message in messages %}\n{% if message['role'] == 'user' %}"
     "\n{{ '<|user|>\n' + message['content'] + @EOS@ }}\n{% elif message['role'] == 'system' %}"
     "\n{{ '<|system|>\n' + message['content'] + @EOS@ }}\n{% elif message['role'] == 'assistant' %}"
     "\n{{ '<|assistant|>\n'  + message['content'] + @EOS@ }}\n{% endif %}"
     "\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"},
};

/* s with each @BOS@ / @EOS@ replaced by a Jinja string literal of bos / eos (caller frees) */
static char *jinja_with_tokens(const char *s, const char *bos, const char *eos) {
    size_t lb = bos ? strlen(bos) : 0, le = eos ? strlen(eos) : 0, n = 0;
    /* at most one placeholder per 5 bytes, each a quoted literal of at most twice its length */
    char *o = malloc(strlen(s) + (strlen(s) / 5 + 1) * (2 * (lb > le ? lb : le) + 2) + 1);
    if (!o) return NULL;
    while (*s) {
        int is_bos = !strncmp(s, "@BOS@", 5), is_eos = !strncmp(s, "@EOS@", 5);
        if (is_bos || is_eos) {
            const char *tk = is_bos ? bos : eos;
            o[n++] = '\'';
            for (const char *c = tk ? tk : ""; *c; c++) {
                if (*c == '\'' || *c == '\\') o[n++] = '\\';
                o[n++] = *c;
            }
            o[n++] = '\'';
            s += 5;
        } else o[n++] = *s++;
    }
    o[n] = 0;
    return o;
}

char *chat_template_jinja(const chat_template *t) {
    if (t->kind == CHAT_JINJA) return t->source ? strdup(t->source) : NULL;
    for (size_t i = 0; i < sizeof builtin_jinja / sizeof *builtin_jinja; i++)
        if (!strcmp(t->name, builtin_jinja[i].name)) return jinja_with_tokens(builtin_jinja[i].jinja, t->bos_token, t->eos_token);
    return NULL;
}

void chat_template_free(chat_template *t) {
    if (!t) return;
    jinja_free(t->jinja);
    free(t->bos_token), free(t->eos_token), free(t->generation_prompt), free(t->stop), free(t->name), free(t->source);
    memset(t, 0, sizeof *t);
}

/* ---------- TRL layouts ---------- */

static char *join3(const char *a, const char *b, const char *eos, size_t *len);

int chat_render_sft(const chat_template *t, const hone_sft_example *ex, const char *eos, chat_text *out, hone_error *err) {
    memset(out, 0, sizeof *out);
    if (ex->is_text) {
        size_t n;
        out->text = join3("", ex->text, eos, &n);
        out->spans = malloc(sizeof *out->spans);
        if (!out->text || !out->spans) { chat_text_free(out); return hone_fail(err, "out of memory"); }
        out->len = n, out->n_spans = 1, out->spans[0] = (chat_span){0, n};
        return 0;
    }
    if (chat_render(t, ex->conv.msgs, ex->conv.n, 0, out, err)) return -1;
    if (ex->n_prompt <= 0) return 0;
    chat_text p;
    if (chat_render(t, ex->conv.msgs, ex->n_prompt, 1, &p, err)) { chat_text_free(out); return -1; }
    out->prompt_len = common_prefix(p.text, p.len, out->text, out->len);
    chat_text_free(&p);
    free(out->spans);
    out->spans = NULL, out->n_spans = 0;
    if (out->prompt_len < out->len) {
        if (!(out->spans = malloc(sizeof *out->spans))) { chat_text_free(out); return hone_fail(err, "out of memory"); }
        out->spans[0] = (chat_span){out->prompt_len, out->len};
        out->n_spans = 1;
    }
    return 0;
}

static char *join3(const char *a, const char *b, const char *eos, size_t *len) {
    size_t na = strlen(a), nb = strlen(b), ne = eos ? strlen(eos) : 0;
    if (ne && nb >= ne && !memcmp(b + nb - ne, eos, ne)) ne = 0; /* already ends with EOS */
    char *s = malloc(na + nb + ne + 1);
    if (!s) return NULL;
    memcpy(s, a, na), memcpy(s + na, b, nb);
    if (ne) memcpy(s + na + nb, eos, ne);
    s[na + nb + ne] = 0;
    *len = na + nb + ne;
    return s;
}

int chat_render_dpo(const chat_template *t, const hone_dpo_example *ex, const char *eos, chat_dpo_text *out, hone_error *err) {
    memset(out, 0, sizeof *out);
    if (ex->is_text) {
        if (!eos) eos = t ? t->eos_token : NULL;
        const char *p = ex->prompt.msgs[0].content;
        out->prompt = strdup(p);
        out->prompt_len = strlen(p);
        out->chosen = join3(p, ex->chosen.msgs[0].content, eos, &out->chosen_len);
        out->rejected = join3(p, ex->rejected.msgs[0].content, eos, &out->rejected_len);
        if (!out->prompt || !out->chosen || !out->rejected) { chat_dpo_text_free(out); return hone_fail(err, "out of memory"); }
        out->common_len = out->prompt_len;
        return 0;
    }
    if (!t) return hone_fail(err, "a conversational DPO example needs a chat template");
    int n = ex->prompt.n + (ex->chosen.n > ex->rejected.n ? ex->chosen.n : ex->rejected.n);
    hone_message *m = malloc(sizeof *m * (size_t)n);
    if (!m) return hone_fail(err, "out of memory");
    memcpy(m, ex->prompt.msgs, sizeof *m * (size_t)ex->prompt.n);
    chat_text p = {0}, c = {0}, r = {0};
    int rc = chat_render(t, m, ex->prompt.n, 1, &p, err);
    if (!rc) {
        memcpy(m + ex->prompt.n, ex->chosen.msgs, sizeof *m * (size_t)ex->chosen.n);
        rc = chat_render(t, m, ex->prompt.n + ex->chosen.n, 0, &c, err);
    }
    if (!rc) {
        memcpy(m + ex->prompt.n, ex->rejected.msgs, sizeof *m * (size_t)ex->rejected.n);
        rc = chat_render(t, m, ex->prompt.n + ex->rejected.n, 0, &r, err);
    }
    free(m);
    if (rc) { chat_text_free(&p), chat_text_free(&c), chat_text_free(&r); return -1; }
    out->prompt = p.text, out->prompt_len = p.len, free(p.spans);
    out->chosen = c.text, out->chosen_len = c.len, free(c.spans);
    out->rejected = r.text, out->rejected_len = r.len, free(r.spans);
    size_t a = common_prefix(out->prompt, out->prompt_len, out->chosen, out->chosen_len);
    size_t b = common_prefix(out->prompt, out->prompt_len, out->rejected, out->rejected_len);
    out->common_len = a < b ? a : b;
    return 0;
}

void chat_dpo_text_free(chat_dpo_text *o) {
    if (!o) return;
    free(o->prompt), free(o->chosen), free(o->rejected);
    memset(o, 0, sizeof *o);
}
