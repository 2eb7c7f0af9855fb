/* test_hf_files.c — the Hugging Face files hone writes, read back the way transformers reads
 * them (issue 12): tokenizer_config.json names the class that loads tokenizer.json as is, so
 * AutoTokenizer on a converted directory gives hone's ids (fixtures of
 * tests/reference/autotok_ref.py). Ids are compared exactly. */
#include "base/util.h"
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

int main(void) {
    TEST_RUN(test_autotok_stories260K);
    TEST_RUN(test_autotok_llama2);
    return test_finish();
}
