/* test_chat_template.c — chat templates against transformers: every case of
 * tests/fixtures/chat/chat_templates.json (made by tests/reference/chat_templates.py)
 * rendered by the C built-ins, by the Jinja subset from the same template source, and
 * for the ../shared tokenizer_config.json templates through `model`; assistant spans;
 * TRL's SFT prompt/completion and DPO layouts; hostile templates (issue 13), each
 * rendered in a forked child, end in an error, not a crash or a hang. */
#include "chat/template.h"
#include "test.h"
#include <jansson.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static json_t *fixture(void) {
    json_error_t je;
    json_t *j = json_load_file(test_src("tests/fixtures/chat/chat_templates.json"), 0, &je);
    CHECK(j != NULL, "fixture: %s line %d", je.text, je.line);
    return j;
}

/* Conversation i of the fixture as messages (pointing into the JSON). */
static int conv(json_t *fx, int i, hone_message *m) {
    json_t *c = json_array_get(json_object_get(fx, "conversations"), (size_t)i);
    size_t k;
    json_t *x;
    json_array_foreach(c, k, x) {
        m[k].role = json_string_value(json_object_get(x, "role"));
        m[k].content = json_string_value(json_object_get(x, "content"));
    }
    return (int)json_array_size(c);
}

/* Renders one case and compares text (or the error) with the fixture. Returns 1 on a match. */
static int check_case(const chat_template *t, json_t *fx, json_t *cs, const char *how) {
    hone_message m[16];
    int n = conv(fx, (int)json_integer_value(json_object_get(cs, "conversation")), m);
    int gen = json_is_true(json_object_get(cs, "add_generation_prompt"));
    chat_text out;
    hone_error err = {{0}};
    int rc = chat_render(t, m, n, gen, &out, &err);
    const char *want = json_string_value(json_object_get(cs, "expected"));
    const char *want_err = json_string_value(json_object_get(cs, "error"));
    int ok;
    if (want_err) {
        ok = rc != 0 && strstr(err.msg, want_err) != NULL;
        CHECK(ok, "%s %s conv %lld gen %d: want error '%s', got rc %d '%s'", how, json_string_value(json_object_get(cs, "template")),
              json_integer_value(json_object_get(cs, "conversation")), gen, want_err, rc, rc ? err.msg : out.text);
    } else {
        ok = rc == 0 && out.len == strlen(want) && !memcmp(out.text, want, out.len);
        CHECK(ok, "%s %s conv %lld gen %d:\n--- got (%s)\n%s\n--- want\n%s\n---", how, json_string_value(json_object_get(cs, "template")),
              json_integer_value(json_object_get(cs, "conversation")), gen, rc ? err.msg : "ok", rc ? "" : out.text, want);
        json_t *spans = json_object_get(cs, "spans");
        if (ok && spans) {
            CHECK((int)json_array_size(spans) == out.n_spans, "%s: %d spans, want %zu", how, out.n_spans, json_array_size(spans));
            for (int i = 0; i < out.n_spans && i < (int)json_array_size(spans); i++) {
                /* transformers' generation indices count code points: convert to bytes */
                json_t *s = json_array_get(spans, (size_t)i);
                size_t b[2];
                for (int k = 0; k < 2; k++) {
                    long long cps = json_integer_value(json_array_get(s, (size_t)k));
                    size_t o = 0;
                    for (; o < out.len && cps > 0; o++) cps -= ((unsigned char)out.text[o + 1] & 0xC0) != 0x80;
                    b[k] = o;
                }
                CHECK(out.spans[i].start == b[0] && out.spans[i].end == b[1], "%s: span %d [%zu,%zu) want [%zu,%zu)", how, i,
                      out.spans[i].start, out.spans[i].end, b[0], b[1]);
            }
        }
    }
    if (!rc) chat_text_free(&out);
    return ok;
}

static const char *tok_or_null(json_t *v) { return json_is_string(v) ? json_string_value(v) : NULL; }

static void test_builtin_formats(void) {
    json_t *fx = fixture();
    if (!fx) return;
    json_t *cases = json_object_get(fx, "cases"), *tpls = json_object_get(fx, "templates"), *cs;
    size_t i;
    int checked = 0;
    json_array_foreach(cases, i, cs) {
        const char *name = json_string_value(json_object_get(cs, "template"));
        if (strncmp(name, "builtin:", 8)) continue;
        chat_template t;
        hone_error err = {{0}};
        CHECK(chat_template_load(&t, name + 8, NULL, &err) == 0, "%s", err.msg);
        check_case(&t, fx, cs, "builtin");
        chat_template_free(&t);
        checked++;
    }
    CHECK(checked == 60, "checked %d builtin cases", checked);
    (void)tpls;
    json_decref(fx);
}

static void test_jinja_matches_transformers(void) {
    json_t *fx = fixture();
    if (!fx) return;
    json_t *cases = json_object_get(fx, "cases"), *tpls = json_object_get(fx, "templates"), *cs;
    size_t i;
    int checked = 0, passed = 0;
    json_array_foreach(cases, i, cs) {
        const char *name = json_string_value(json_object_get(cs, "template"));
        json_t *td = json_object_get(tpls, name);
        const char *src = json_string_value(json_object_get(td, "source"));
        if (!src) continue;
        chat_template t;
        hone_error err = {{0}};
        int rc = chat_template_from_jinja(&t, src, tok_or_null(json_object_get(td, "bos_token")), tok_or_null(json_object_get(td, "eos_token")), &err);
        CHECK(rc == 0, "%s: %s", name, err.msg);
        if (rc) continue;
        passed += check_case(&t, fx, cs, "jinja");
        chat_template_free(&t);
        checked++;
    }
    CHECK(checked >= 84, "checked %d jinja cases", checked);
    printf("    jinja: %d/%d cases identical to transformers\n", passed, checked);
    json_decref(fx);
}

static void test_jinja_snippets(void) {
    json_t *fx = fixture();
    if (!fx) return;
    hone_message m[16];
    int n = conv(fx, 3, m), same = 0;
    size_t i;
    json_t *sn;
    json_array_foreach(json_object_get(fx, "snippets"), i, sn) {
        const char *src = json_string_value(json_object_get(sn, "source"));
        const char *want = json_string_value(json_object_get(sn, "expected"));
        chat_template t;
        hone_error err = {{0}};
        chat_text o;
        int rc = chat_template_from_jinja(&t, src, "<s>", "</s>", &err);
        if (!rc) {
            rc = chat_render(&t, m, n, 1, &o, &err);
            chat_template_free(&t);
        }
        int ok = want ? rc == 0 && !strcmp(o.text, want) : rc != 0;
        CHECK(ok, "snippet %zu %s:\n  got  %s\n  want %s", i, src, rc ? err.msg : o.text, want ? want : "an error");
        same += ok;
        if (!rc) chat_text_free(&o);
    }
    printf("    %d/%zu snippets identical to transformers\n", same, json_array_size(json_object_get(fx, "snippets")));
    json_decref(fx);
}

static void test_model_templates_from_shared(void) {
    json_t *fx = fixture();
    if (!fx) return;
    json_t *cases = json_object_get(fx, "cases"), *tpls = json_object_get(fx, "templates"), *cs;
    size_t i;
    int checked = 0, missing = 0;
    json_array_foreach(cases, i, cs) {
        const char *name = json_string_value(json_object_get(cs, "template"));
        const char *rel = json_string_value(json_object_get(json_object_get(tpls, name), "shared"));
        if (!rel) continue;
        const char *path = test_shared(rel);
        if (!path) { missing++; continue; }
        chat_template t;
        hone_error err = {{0}};
        int rc = chat_template_load(&t, "model", path, &err);
        CHECK(rc == 0, "%s: %s", rel, err.msg);
        if (rc) continue;
        check_case(&t, fx, cs, "model");
        chat_template_free(&t);
        checked++;
    }
    if (!checked && missing) test_skip("../shared/tokenizers absent");
    else printf("    model: %d cases from ../shared tokenizer_config.json templates\n", checked);
    json_decref(fx);
}

/* Built-in spans are exactly TRL's completion: after render(prefix, gen) through render(prefix + turn). */
static void test_auto_picks_model_template(void) {
    const char *q = test_shared("tokenizers/qwen3/tokenizer_config.json"), *g = test_shared("tokenizers/gpt2/tokenizer_config.json");
    if (!q || !g) { test_skip("../shared/tokenizers absent"); return; }
    chat_template t;
    hone_error err = {{0}};
    CHECK(chat_template_load(&t, "auto", q, &err) == 0 && t.kind == CHAT_JINJA && !strcmp(t.name, "model") &&
          !strcmp(t.generation_prompt, "<|im_start|>assistant\n") && !strcmp(t.eos_token, "<|im_end|>"), "qwen3 auto: %s", err.msg);
    chat_template_free(&t);
    CHECK(chat_template_load(&t, "auto", g, &err) == 0 && t.kind == CHAT_CHATML, "gpt2 has no template: chatml");
    chat_template_free(&t);
    CHECK(chat_template_load(&t, "model", g, &err) != 0 && strstr(err.msg, "has no chat_template"), "%s", err.msg);
    const char *l3 = test_shared("tokenizers/llama3/tokenizer_config.json");
    if (l3) {
        CHECK(chat_template_load(&t, "model", l3, &err) == 0 && !strcmp(t.bos_token, "<|begin_of_text|>"), "%s", err.msg);
        chat_template_free(&t);
    }
}

static void test_builtin_spans_are_trl_completions(void) {
    json_t *fx = fixture();
    if (!fx) return;
    static const char *const names[] = {"chatml", "llama2", "llama3", "gemma", "zephyr"};
    for (int k = 0; k < 5; k++) {
        chat_template t;
        hone_error err = {{0}};
        CHECK(chat_template_load(&t, names[k], NULL, &err) == 0, "%s", err.msg);
        for (int c = 0; c < 5; c++) {
            hone_message m[16];
            int n = conv(fx, c, m), a = 0;
            chat_text full, pre, thru;
            if (chat_render(&t, m, n, 0, &full, &err)) continue; /* (alternation errors) */
            for (int i = 0; i < n; i++) {
                if (strcmp(m[i].role, "assistant")) continue;
                CHECK(chat_render(&t, m, i, 1, &pre, &err) == 0 && chat_render(&t, m, i + 1, 0, &thru, &err) == 0, "%s", err.msg);
                CHECK(a < full.n_spans && full.spans[a].start == pre.len && full.spans[a].end == thru.len,
                      "%s conv %d turn %d: span [%zu,%zu) want [%zu,%zu)", names[k], c, i, a < full.n_spans ? full.spans[a].start : 0,
                      a < full.n_spans ? full.spans[a].end : 0, pre.len, thru.len);
                a++;
                chat_text_free(&pre), chat_text_free(&thru);
            }
            CHECK(full.n_spans == a, "%s conv %d: %d spans for %d assistant turns", names[k], c, full.n_spans, a);
            chat_text_free(&full);
        }
        chat_template_free(&t);
    }
    json_decref(fx);
}

static void test_sft_and_dpo_layouts(void) {
    chat_template t;
    hone_error err = {{0}};
    CHECK(chat_template_load(&t, "chatml", NULL, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(t.generation_prompt, "<|im_start|>assistant\n") && !strcmp(t.stop, "<|im_end|>"), "chatml strings");
    CHECK(t.special_tokens && !strcmp(t.special_tokens[0], "<|im_start|>") && !strcmp(t.special_tokens[1], "<|im_end|>") &&
          !t.special_tokens[2], "chatml special tokens");
    hone_message pc[2] = {{"user", "  Write a poem.\n"}, {"assistant", " Roses are red.\n"}};
    hone_sft_example ex = {.conv = {pc, 2}, .n_prompt = 1};
    chat_text o;
    CHECK(chat_render_sft(&t, &ex, NULL, &o, &err) == 0, "%s", err.msg);
    const char *want = "<|im_start|>user\nWrite a poem.<|im_end|>\n<|im_start|>assistant\n Roses are red.\n<|im_end|>\n";
    CHECK(!strcmp(o.text, want), "seed chatml: %s", o.text);
    CHECK(o.n_spans == 1 && !strcmp(o.text + o.spans[0].start, " Roses are red.\n<|im_end|>\n") && o.prompt_len == o.spans[0].start, "completion span");
    chat_text_free(&o);
    hone_sft_example tx = {.is_text = 1, .text = "plain story"};
    CHECK(chat_render_sft(&t, &tx, NULL, &o, &err) == 0 && o.n_spans == 1 && o.spans[0].end == 11 && !strcmp(o.text, "plain story"), "text");
    chat_text_free(&o);
    CHECK(chat_render_sft(&t, &tx, "</s>", &o, &err) == 0 && o.spans[0].end == 15 && !strcmp(o.text, "plain story</s>"), "text + eos");
    chat_text_free(&o);

    hone_message p[1] = {{"user", "Sky?"}}, c[1] = {{"assistant", "Blue."}}, r[1] = {{"assistant", "Green."}};
    hone_dpo_example d = {.prompt = {p, 1}, .chosen = {c, 1}, .rejected = {r, 1}};
    chat_dpo_text dt;
    CHECK(chat_render_dpo(&t, &d, NULL, &dt, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(dt.prompt, "<|im_start|>user\nSky?<|im_end|>\n<|im_start|>assistant\n") && dt.common_len == dt.prompt_len, "dpo prompt");
    CHECK(!strcmp(dt.chosen + dt.prompt_len, "Blue.<|im_end|>\n") && !strcmp(dt.rejected + dt.prompt_len, "Green.<|im_end|>\n"), "dpo completions");
    chat_dpo_text_free(&dt);
    hone_message tp[1] = {{"text", "\n\nHuman: hi\n\nAssistant:"}}, tc[1] = {{"text", " hello"}}, tr[1] = {{"text", " go</s>"}};
    hone_dpo_example dx = {.is_text = 1, .prompt = {tp, 1}, .chosen = {tc, 1}, .rejected = {tr, 1}};
    CHECK(chat_render_dpo(&t, &dx, "</s>", &dt, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(dt.chosen, "\n\nHuman: hi\n\nAssistant: hello</s>") && !strcmp(dt.rejected, "\n\nHuman: hi\n\nAssistant: go</s>"), "eos added once");
    chat_dpo_text_free(&dt);
    chat_template_free(&t);
}

static void test_errors(void) {
    chat_template t;
    hone_error err = {{0}};
    CHECK(chat_template_load(&t, "chatmk", NULL, &err) != 0 && strstr(err.msg, "unknown template 'chatmk'"), "%s", err.msg);
    CHECK(chat_template_load(&t, "{% for m in messages %}{{ m.content }}", NULL, &err) != 0 && strstr(err.msg, "'for' without 'endfor'"), "%s", err.msg);
    CHECK(chat_template_load(&t, "{{ 1 +* 2 }}", NULL, &err) != 0 && strstr(err.msg, "line 1"), "%s", err.msg);
    CHECK(chat_template_load(&t, "\n{% frobnicate %}", NULL, &err) != 0 && strstr(err.msg, "line 2: unknown or unsupported tag 'frobnicate'"), "%s", err.msg);
    CHECK(chat_template_load(&t, "model", test_src("tests/fixtures/config"), &err) != 0 && strstr(err.msg, "tokenizer_config.json"), "%s", err.msg);
    CHECK(chat_template_load(&t, "{{ raise_exception('no ' ~ messages[0].role) }}", NULL, &err) == 0, "%s", err.msg);
    hone_message m = {"user", "x"};
    chat_text o;
    CHECK(chat_render(&t, &m, 1, 0, &o, &err) != 0 && strstr(err.msg, "raise_exception: no user"), "%s", err.msg);
    chat_template_free(&t);
    CHECK(chat_template_load(&t, "{{ strftime_now('%Y') }}", NULL, &err) == 0 && chat_render(&t, &m, 1, 0, &o, &err) == 0 &&
          o.len == 4 && o.text[0] == '2', "strftime_now");
    chat_text_free(&o);
    chat_template_free(&t);
}

/* Loads and renders src in a forked child, so that a crash or a hang on the old code
 * fails the check instead of killing this binary. Returns 0 when the child rendered,
 * 1 when it reported an error (its message in msg), -1 when it died or hung (what
 * happened in msg). */
static int render_isolated(const char *src, char *out, size_t cap, double *secs) {
    int fd[2];
    if (pipe(fd)) return snprintf(out, cap, "pipe failed"), -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        alarm(60); /* a hang on the old code: the child dies of SIGALRM */
#ifndef __SANITIZE_ADDRESS__ /* ASan reserves terabytes of address space */
        struct rlimit lim = {(rlim_t)3 << 30, (rlim_t)3 << 30}; /* and unbounded memory: it fails to allocate */
        setrlimit(RLIMIT_AS, &lim);
#endif
        chat_template t;
        hone_error err = {{0}};
        hone_message m[2] = {{"user", "hi"}, {"assistant", "yo"}};
        chat_text o;
        int rc = chat_template_from_jinja(&t, src, "<s>", "</s>", &err);
        if (!rc) {
            rc = chat_render(&t, m, 2, 0, &o, &err);
            chat_template_free(&t);
        }
        char buf[1024];
        int n = snprintf(buf, sizeof buf, "%d%s", rc ? 1 : 0, rc ? err.msg : (o.len < 900 ? o.text : "(long)"));
        if (write(fd[1], buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1)) < 0) _exit(3);
        if (!rc) chat_text_free(&o);
        _exit(0);
    }
    close(fd[1]);
    char buf[1024];
    ssize_t n = 0, k;
    while (n < (ssize_t)sizeof buf - 1 && (k = read(fd[0], buf + n, sizeof buf - 1 - (size_t)n)) > 0) n += k;
    close(fd[0]);
    buf[n] = 0;
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (secs) *secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!WIFEXITED(st) || WEXITSTATUS(st) || n < 1) {
        snprintf(out, cap, "child %s %d", WIFSIGNALED(st) ? "killed by signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        return -1;
    }
    snprintf(out, cap, "%s", buf + 1);
    return buf[0] - '0';
}

/* Expects src to fail with an error containing want (and naming the chat template). */
static void expect_error(const char *src, const char *want) {
    char msg[1024];
    double secs = 0;
    int rc = render_isolated(src, msg, sizeof msg, &secs);
    CHECK(rc == 1 && strstr(msg, want) && strstr(msg, "chat template line"), "%.80s: want an error with '%s', got rc %d '%s' (%.1f s)",
          src, want, rc, msg, secs);
}

static void expect_text(const char *src, const char *want) {
    char msg[1024];
    int rc = render_isolated(src, msg, sizeof msg, NULL);
    CHECK(rc == 0 && !strcmp(msg, want), "%.80s: want '%s', got rc %d '%s'", src, want, rc, msg);
}

/* issue 13 defect 2: {% raw %} whose endraw has no '{' before it computed a negative length. */
static void test_hostile_raw_block(void) {
    expect_error("{% raw %}abc endraw %}", "unterminated raw block");
    expect_error("{% raw %}", "unterminated raw block");
    expect_error("{% raw %}{{ x }}{% endraw", "unterminated raw block");
    expect_text("a{% raw %}{{ x }}{% endraw %}b", "a{{ x }}b");
    /* as jinja2 3.1: '-' strips the body's whitespace and the text after the tag */
    expect_text("a{% raw -%}  x {{y}}  {%- endraw %} b", "ax {{y}} b");
    expect_text("a{% raw %} x {%- endraw -%}  b", "a xb");
}

/* issue 13 defect 2: integer arithmetic traps (SIGFPE) and overflow are errors. */
static void test_hostile_integers(void) {
    expect_error("{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow in '//'");
    expect_text("{{ (-9223372036854775807 - 1) % -1 }}", "0"); /* Python: 0 */
    expect_text("{{ 7 // -1 }} {{ -7 // 2 }} {{ -7 % 3 }}", "-7 -4 2");
    expect_error("{{ 9223372036854775807 + 1 }}", "integer overflow in '+'");
    expect_error("{{ -9223372036854775807 - 2 }}", "integer overflow in '-'");
    expect_error("{{ 4294967296 * 4294967296 }}", "integer overflow in '*'");
    expect_error("{{ -(-9223372036854775807 - 1) }}", "integer overflow in '-'");
    expect_error("{{ (-9223372036854775807 - 1) | abs }}", "integer overflow in 'abs'");
    expect_text("{{ (-9223372036854775807 - 1) is divisibleby(-1) }}", "True");
    expect_error("{{ 99999999999999999999 }}", "integer literal beyond 64 bits");
    expect_error("{{ 1e300 | int }}", "beyond 64-bit");
}

/* issue 13 defect 2: 2 ** 10**18 looped for ever; now squaring, with overflow an error. */
static void test_hostile_power(void) {
    double secs = 0;
    char msg[1024];
    int rc = render_isolated("{{ 2 ** 1000000000000000000 }}", msg, sizeof msg, &secs);
    CHECK(rc == 1 && strstr(msg, "integer overflow in '**'") && secs < 10, "rc %d '%s' after %.1f s", rc, msg, secs);
    expect_text("{{ 2 ** 62 }} {{ 3 ** 39 }} {{ (-1) ** 1000000000000000001 }} {{ 0 ** 0 }} {{ 2 ** -1 }}",
                "4611686018427387904 4052555153018976267 -1 1 0.5");
    expect_error("{{ 3 ** 40 }}", "integer overflow in '**'");
}

/* issue 13 defect 2: 10,000 nested parentheses overflowed the parser's stack. */
static void test_hostile_nesting(void) {
    static char src[2 * 10000 + 16];
    char *o = src;
    o += sprintf(o, "{{ ");
    for (int i = 0; i < 10000; i++) *o++ = '(';
    *o++ = '1';
    for (int i = 0; i < 10000; i++) *o++ = ')';
    sprintf(o, " }}");
    expect_error(src, "nested deeper than 200 levels");
    o = src;
    o += sprintf(o, "{{ ");
    for (int i = 0; i < 10000; i++) *o++ = '-';
    sprintf(o, "1 }}");
    expect_error(src, "nested deeper than 200 levels");
    o = src;
    for (int i = 0; i < 2000; i++) o += sprintf(o, "{%% if 1 %%}");
    expect_error(src, "nested deeper than 200 levels");
    expect_text("{{ ((((((((((1)))))))))) }}", "1");
    /* the renderer: a macro that calls itself, a value that holds itself */
    expect_error("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "nested deeper than 200 levels");
    expect_error("{% set ns = namespace(x=1) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
                 "a value nested deeper than 200 levels");
    expect_error("{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns | tojson }}", "tojson: a value nested deeper than 200 levels");
    expect_error("{% set a = namespace() %}{% set b = namespace() %}{% set a.x = a %}{% set b.x = b %}{{ a == b }}",
                 "comparing values nested deeper than 200 levels");
}

/* issue 13: loop iterations, output size and memory are bounded per render. */
static void test_hostile_bounds(void) {
    expect_error("{% set l = range(100000) %}{% for i in l %}{% for j in l %}{% endfor %}{% endfor %}", "more than 10000000 steps");
    expect_error("{% for i in range(1000) %}{{ 'x' * 1000000 }}{% endfor %}", "the output exceeds 64 MiB");
    expect_error("{{ 'x' * 100000000 }}", "is too long");
    expect_text("{{ ('' * 1000000000000000000) | length }}{{ ([] * 1000000000000000000) | length }}", "00");
    expect_error("{% set ns = namespace(s='') %}{% for i in range(1000000) %}{% set ns.s = ns.s ~ ('x' * 100000) %}{% endfor %}",
                 "the render needs more than 512 MiB");
    expect_error("{{ range(3) | tojson(indent=100000) }}", "indent 100000");
    /* walking a long list inside a loop, with nothing built: was 10^12 steps uncounted */
    expect_error("{% set l = [''] * 1000000 %}{% for i in l %}{{ l | join }}{{ l | select | list | length }}{% endfor %}",
                 "more than 10000000 steps");
}

int main(void) {
    TEST_RUN(test_builtin_formats);
    TEST_RUN(test_jinja_matches_transformers);
    TEST_RUN(test_jinja_snippets);
    TEST_RUN(test_model_templates_from_shared);
    TEST_RUN(test_auto_picks_model_template);
    TEST_RUN(test_builtin_spans_are_trl_completions);
    TEST_RUN(test_sft_and_dpo_layouts);
    TEST_RUN(test_errors);
    TEST_RUN(test_hostile_raw_block);
    TEST_RUN(test_hostile_integers);
    TEST_RUN(test_hostile_power);
    TEST_RUN(test_hostile_nesting);
    TEST_RUN(test_hostile_bounds);
    return test_finish();
}
