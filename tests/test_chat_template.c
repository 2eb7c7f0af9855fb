/* test_chat_template.c — chat templates against transformers: every case of
 * tests/fixtures/chat/chat_templates.json (made by tests/reference/chat_templates.py)
 * rendered by the C built-ins, by the Jinja subset from the same template source, and
 * for the ../shared tokenizer_config.json templates through `model`; assistant spans;
 * TRL's SFT prompt/completion and DPO layouts. */
#include "chat/template.h"
#include "test.h"
#include <jansson.h>

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

int main(void) {
    TEST_RUN(test_builtin_formats);
    TEST_RUN(test_jinja_matches_transformers);
    TEST_RUN(test_jinja_snippets);
    TEST_RUN(test_model_templates_from_shared);
    TEST_RUN(test_auto_picks_model_template);
    TEST_RUN(test_builtin_spans_are_trl_completions);
    TEST_RUN(test_sft_and_dpo_layouts);
    TEST_RUN(test_errors);
    return test_finish();
}
