/* test_hf_files.c — the Hugging Face files hone writes, read back the way transformers reads
 * them (issue 12): tokenizer_config.json names the class that loads tokenizer.json as is, so
 * AutoTokenizer on a converted directory gives hone's ids; a trained final/ carries the chat
 * template trained with and a generation_config.json, so apply_chat_template on it gives the
 * ids hone trained on (fixtures of tests/reference/autotok_ref.py). Ids are compared exactly. */
#include "base/util.h"
#include "chat/template.h"
#include "cli/commands.h"
#include "model/convert.h"
#include "simd/kernels.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include <jansson.h>

static json_t *read_jsonl(const char *path) {
    json_t *arr = json_array();
    FILE *f = fopen(path, "r");
    if (!f) { CHECK(0, "%s missing", path); return arr; }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        if (j) json_array_append_new(arr, j);
    }
    free(line);
    fclose(f);
    return arr;
}

/* tokenizer_class of dir/tokenizer_config.json (caller frees), or NULL */
static char *tokenizer_class_of(const char *dir) {
    char p[4096];
    hone_path_join(p, sizeof p, dir, "tokenizer_config.json");
    json_t *c = json_load_file(p, 0, NULL);
    const char *s = json_string_value(json_object_get(c, "tokenizer_class"));
    char *r = s ? strdup(s) : NULL;
    json_decref(c);
    return r;
}

/* hone's ids (special tokens added) against AutoTokenizer's on a directory hone converted */
static void autotok_case(const char *name, const char *spm_rel) {
    const char *spm = test_shared(spm_rel), *corpus_path = test_shared("tokenizers/corpus.dev.jsonl");
    if (!spm || !corpus_path) { test_skip("../shared/%s or the corpus is absent", spm_rel); return; }
    hone_error err = {{0}};
    const char *dir = test_tmpdir("autotok");
    hone_tokenizer *tok = NULL;
    if (spm_convert(spm, dir, &err) < 0 || tokenizer_load(&tok, dir, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    char *cls = tokenizer_class_of(dir);
    CHECK(cls && !strcmp(cls, "PreTrainedTokenizerFast"), "%s: converted tokenizer_class is %s", name, cls ? cls : "(none)");
    free(cls);
    /* what tokenizer_save writes (training output's tokenizer) names the same class */
    char saved[4200];
    hone_path_join(saved, sizeof saved, dir, "saved");
    CHECK(tokenizer_save(tok, saved, &err) == 0, "%s", err.msg);
    cls = tokenizer_class_of(saved);
    CHECK(cls && !strcmp(cls, "PreTrainedTokenizerFast"), "%s: saved tokenizer_class is %s", name, cls ? cls : "(none)");
    free(cls);
    json_t *corpus = read_jsonl(corpus_path);
    char fx[256];
    snprintf(fx, sizeof fx, "tests/fixtures/hf_files/autotok_%s.jsonl", name);
    json_t *rows = read_jsonl(test_src(fx));
    int bad = 0, n = (int)json_array_size(rows);
    long nids = 0;
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i), *ln = json_object_get(r, "line"), *want = json_object_get(r, "ids");
        const char *text = ln ? json_string_value(json_object_get(json_array_get(corpus, json_integer_value(ln)), "text"))
                              : json_string_value(json_object_get(r, "text"));
        if (!text) { CHECK(0, "%s: row %d has no text", fx, i); continue; }
        int32_t *ids = NULL;
        size_t k = 0;
        if (tokenizer_encode(tok, text, strlen(text), 1, &ids, &k, &err) < 0) { CHECK(0, "%s", err.msg); continue; }
        int same = k == json_array_size(want);
        for (size_t j = 0; same && j < k; j++) same = ids[j] == json_integer_value(json_array_get(want, j));
        if (!same && bad++ < 3) CHECK(0, "%s: row %d (%s%.40s...): hone's %zu ids differ from AutoTokenizer's %zu", name, i,
                                      ln ? "corpus: " : "", text, k, json_array_size(want));
        nids += (long)k;
        free(ids);
    }
    CHECK(bad == 0 && n > 150, "%s: %d of %d texts differ", name, bad, n);
    printf("    %s: %d texts, %ld ids, equal to AutoTokenizer's on the converted directory\n", name, n, nids);
    json_decref(rows);
    json_decref(corpus);
    tokenizer_free(tok);
    hone_remove_tree(dir, NULL);
}

static void test_autotok_stories260K(void) { autotok_case("stories260K", "models/stories260K/tok512.model"); }
static void test_autotok_llama2(void) { autotok_case("llama2", "tokenizers/llama2/tokenizer.model"); }

/* hone's ids for one fixture rendering, through template t */
static int same_ids(const chat_template *t, const hone_tokenizer *tok, json_t *row, const char *what) {
    json_t *msgs = json_object_get(row, "messages"), *want = json_object_get(row, "ids");
    int n = (int)json_array_size(msgs);
    hone_message *m = calloc(n, sizeof *m);
    for (int i = 0; i < n; i++) {
        m[i].role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
        m[i].content = json_string_value(json_object_get(json_array_get(msgs, i), "content"));
    }
    hone_error err = {{0}};
    chat_text ct;
    int32_t *ids = NULL;
    size_t k = 0;
    int same = 0;
    if (chat_render(t, m, n, json_is_true(json_object_get(row, "add_generation_prompt")), &ct, &err) < 0) CHECK(0, "%s: %s", what, err.msg);
    else {
        /* rendered text carries its BOS where the template writes it: no special tokens added */
        if (tokenizer_encode(tok, ct.text, ct.len, 0, &ids, &k, &err) < 0) CHECK(0, "%s: %s", what, err.msg);
        same = k == json_array_size(want);
        for (size_t j = 0; same && j < k; j++) same = ids[j] == json_integer_value(json_array_get(want, j));
        CHECK(same, "%s: %zu ids, apply_chat_template gave %zu: %.60s", what, k, json_array_size(want), ct.text);
        free(ids);
        chat_text_free(&ct);
    }
    free(m);
    return same;
}

/* one SFT step with a built-in template (the configuration autotok_ref.py ran): final/ holds that
 * template as chat_template and a generation_config.json; apply_chat_template there gives hone's ids */
static void chat_case(const char *name) {
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return; }
    hone_error err = {{0}};
    hone_model m;
    const char *dir = test_tmpdir("chatfinal");
    char base[512], out[512], yaml[512], final[600], p[700], fx[256];
    snprintf(base, sizeof base, "%s/stories260K", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(yaml, sizeof yaml, "%s/sft.yaml", dir);
    snprintf(final, sizeof final, "%s/final", out);
    if (convert_llama2c_load(&m, bin, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    int rc = model_save(&m, base, NULL, &err) < 0 || spm_convert(spm, base, &err) < 0 ? -1 : 0;
    model_free(&m);
    if (rc) { CHECK(0, "%s", err.msg); return; }
    FILE *f = fopen(yaml, "w");
    /* chatml_added: chatml with add_chat_tokens (the saved tokenizer gains two special tokens) */
    int added = strstr(name, "_added") != NULL;
    const char *tpl = added ? "chatml" : name;
    fprintf(f, "model_name_or_path: %s\noutput_dir: %s\ndatasets:\n  - path: %s\nchat_template: %s\nmax_steps: 1\n"
               "per_device_train_batch_size: 2\nsave_strategy: \"no\"\nseed: 1\n%s", base, out, test_src("tests/fixtures/hf_files/chat_train.jsonl"), tpl,
            added ? "add_chat_tokens: true\n" : "");
    fclose(f);
    char *argv[] = {"sft", yaml, NULL};
    CHECK(cmd_sft(2, argv) == 0, "%s: hone sft failed", name);
    snprintf(fx, sizeof fx, "tests/fixtures/hf_files/chat_%s.jsonl", name);
    json_t *rows = read_jsonl(test_src(fx)), *head = json_array_get(rows, 0);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", final);
    json_t *tc = json_load_file(p, 0, NULL);
    const char *ct = json_string_value(json_object_get(tc, "chat_template"));
    CHECK(ct && !strcmp(ct, json_string_value(json_object_get(head, "chat_template"))),
          "%s: final/tokenizer_config.json's chat_template is not the one the fixture was made from: %.80s", name, ct ? ct : "(none)");
    snprintf(p, sizeof p, "%s/generation_config.json", final);
    json_t *gc = json_load_file(p, 0, NULL);
    CHECK(gc != NULL, "%s: final/ has no generation_config.json", name);
    const char *keys[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    for (int i = 0; i < 3 && gc; i++) {
        json_t *a = json_object_get(gc, keys[i]), *b = json_object_get(head, keys[i]);
        CHECK(json_equal(a, b) || (json_is_null(b) && (!a || json_is_null(a))), "%s: generation_config %s differs", name, keys[i]);
    }
    /* hone's ids: the template as trained (the built-in) and as written (final/'s Jinja) */
    hone_tokenizer *tok = NULL;
    chat_template trained, written;
    if (tokenizer_load(&tok, final, &err) < 0 || chat_template_load(&trained, tpl, final, &err) < 0) { CHECK(0, "%s", err.msg); goto out; }
    if (chat_template_load(&written, "model", final, &err) < 0) { CHECK(0, "%s", err.msg); chat_template_free(&trained); goto out; }
    int n = (int)json_array_size(rows), ok = 0;
    for (int i = 1; i < n; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s rendering %d", name, i);
        ok += same_ids(&trained, tok, json_array_get(rows, i), what);
        snprintf(what, sizeof what, "%s rendering %d (final/'s Jinja)", name, i);
        same_ids(&written, tok, json_array_get(rows, i), what);
    }
    printf("    %s: %d of %d apply_chat_template renderings on final/ equal hone's ids\n", name, ok, n - 1);
    chat_template_free(&trained);
    chat_template_free(&written);
out:
    if (tok) tokenizer_free(tok);
    json_decref(tc);
    json_decref(gc);
    json_decref(rows);
    hone_remove_tree(dir, NULL);
}

static void test_chat_chatml(void) { chat_case("chatml"); }
static void test_chat_chatml_added(void) { chat_case("chatml_added"); }
static void test_chat_llama2(void) { chat_case("llama2"); }
static void test_chat_llama3(void) { chat_case("llama3"); }
static void test_chat_gemma(void) { chat_case("gemma"); }
static void test_chat_zephyr(void) { chat_case("zephyr"); }

int main(void) {
    kernels_init();
    TEST_RUN(test_autotok_stories260K);
    TEST_RUN(test_autotok_llama2);
    TEST_RUN(test_chat_chatml);
    TEST_RUN(test_chat_chatml_added);
    TEST_RUN(test_chat_llama2);
    TEST_RUN(test_chat_llama3);
    TEST_RUN(test_chat_gemma);
    TEST_RUN(test_chat_zephyr);
    return test_finish();
}
