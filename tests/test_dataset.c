/* test_dataset.c — every row format from small committed fixtures, the real files
 * in ../shared/data when present, TRL's implicit-prompt extraction (fixture made by
 * tests/reference/dataset_implicit.py), .gz reading, mixtures, ratios, shuffle
 * determinism, the eval split, and malformed rows reported as file:line. */
#include "data/dataset.h"
#include "train/train_config.h"
#include "test.h"
#include <jansson.h>
#include <unistd.h>

/* Loads with a config built from `sets` (key=value strings, NULL-terminated). */
static int load(hone_dataset *ds, int kind, hone_error *err, const char *const *sets) {
    hone_train_config c;
    if (config_defaults(&c, kind, err)) return -1;
    for (; *sets; sets++)
        if (config_set_arg(&c, *sets, err)) { config_free(&c); return -1; }
    int rc = dataset_load(ds, &c.data, c.kind, c.seed, err);
    config_free(&c);
    return rc;
}

static char fx_buf[8][1024];
static int fx_slot;
/* "datasets=[{path: <fixture>, ...extra}]" */
static const char *one_source(const char *file, const char *extra) {
    char *p = fx_buf[fx_slot++ & 7];
    snprintf(p, 1024, "datasets=[{path: '%s'%s%s}]", test_src(file), extra ? ", " : "", extra ? extra : "");
    return p;
}

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static void test_sft_prompt_completion_columns(void) {
    hone_dataset ds;
    hone_error err = {{0}};
    const char *sets[] = {one_source("tests/fixtures/data/sft_prompt_completion.jsonl",
                                     "format: prompt_completion, columns: {prompt: prompt, completion: text}"), NULL};
    int rc = load(&ds, HONE_SFT, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ds.n_train == 3 && ds.n_eval == 0, "n %ld %ld", ds.n_train, ds.n_eval);
    hone_sft_example *e = &ds.sft_train[1];
    /* string prompt and completion: TRL's standard form, kept as raw text (no template) */
    CHECK(e->is_text && e->completion && e->n_prompt == 0, "shape");
    CHECK(streq(e->text, "  Explain photosynthesis in one sentence.  "), "content kept as is");
    CHECK(ds.sft_train[2].line == 4, "line %ld (blank line counted)", ds.sft_train[2].line);
    CHECK(streq(ds.sft_train[2].completion, "Guten Morgen \xf0\x9f\x8c\x9e"), "utf-8");
    dataset_free(&ds);
    /* without the mapping, auto cannot tell the format from prompt/text/seed_data... it finds "text" */
    const char *sets2[] = {one_source("tests/fixtures/data/sft_prompt_completion.jsonl", NULL), NULL};
    rc = load(&ds, HONE_SFT, &err, sets2);
    CHECK(rc == 0 && ds.sources[0].format == FMT_TEXT, "auto picks text: %s", err.msg);
    if (!rc) dataset_free(&ds);
}

static void test_sft_messages_sharegpt_alpaca_text(void) {
    hone_dataset ds;
    hone_error err = {{0}};
    const char *sets[] = {"datasets=[]", NULL};
    char buf[2048];
    snprintf(buf, sizeof buf, "datasets=[{path: '%s'}, {path: '%s'}, {path: '%s'}, {path: '%s'}]",
             test_src("tests/fixtures/data/sft_messages.jsonl"), test_src("tests/fixtures/data/sft_sharegpt.json"),
             test_src("tests/fixtures/data/sft_alpaca.json"), test_src("tests/fixtures/data/sft_text.jsonl.gz"));
    sets[0] = buf;
    int rc = load(&ds, HONE_SFT, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ds.n_sources == 4 && ds.sources[0].format == FMT_MESSAGES && ds.sources[1].format == FMT_SHAREGPT &&
          ds.sources[2].format == FMT_ALPACA && ds.sources[3].format == FMT_TEXT, "auto formats");
    CHECK(ds.n_train == 2 + 2 + 3 + 3, "n_train %ld", ds.n_train);
    hone_sft_example *e = ds.sft_train;
    CHECK(e[0].conv.n == 3 && streq(e[0].conv.msgs[0].role, "system") && e[0].n_prompt == 0, "messages with system");
    CHECK(e[1].conv.n == 4 && streq(e[1].conv.msgs[0].content, "2+2?") && streq(e[1].conv.msgs[1].content, "4"), "content parts");
    CHECK(e[2].conv.n == 3 && streq(e[2].conv.msgs[0].role, "system") && streq(e[2].conv.msgs[0].content, "Be kind.") &&
          streq(e[2].conv.msgs[1].role, "user") && streq(e[2].conv.msgs[2].role, "assistant"), "sharegpt roles");
    CHECK(e[2].line == 2 && e[3].line == 9, "array element lines %ld %ld", e[2].line, e[3].line);
    CHECK(streq(e[4].conv.msgs[0].content, "Give three tips for staying healthy.") && e[4].n_prompt == 1, "alpaca no input");
    CHECK(streq(e[5].conv.msgs[0].content, "Translate to French.\ncheese"), "alpaca input joined by a newline");
    CHECK(e[6].conv.n == 5 && streq(e[6].conv.msgs[0].role, "system") && streq(e[6].conv.msgs[2].content, "fromage") &&
          e[6].n_prompt == 4, "alpaca history");
    CHECK(e[7].is_text && streq(e[7].text, "Once upon a time there was a little girl.") && e[9].line == 3, "gz text");
    dataset_free(&ds);
}

static void expect_row_error(const char *jsonl, int kind, const char *fmt, const char *want) {
    const char *dir = test_tmpdir("ds");
    char path[512], set[1024];
    snprintf(path, sizeof path, "%s/rows.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs(jsonl, f);
    fclose(f);
    snprintf(set, sizeof set, "datasets=[{path: '%s', format: %s}]", path, fmt);
    const char *sets[] = {set, NULL};
    hone_dataset ds;
    hone_error err = {{0}};
    int rc = load(&ds, kind, &err, sets);
    CHECK(rc != 0, "expected an error for %s", jsonl);
    CHECK(strstr(err.msg, path) && strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
    if (!rc) dataset_free(&ds);
    remove(path);
    rmdir(dir);
}

static void test_malformed_rows(void) {
    hone_dataset ds;
    hone_error err = {{0}};
    const char *sets[] = {one_source("tests/fixtures/data/sft_bad.jsonl", NULL), NULL};
    CHECK(load(&ds, HONE_SFT, &err, sets) != 0, "default stops");
    CHECK(strstr(err.msg, "sft_bad.jsonl:2: bad JSON at column") != NULL, "%s", err.msg);
    const char *sets2[] = {one_source("tests/fixtures/data/sft_bad.jsonl", NULL), "skip_invalid_rows=true", NULL};
    int rc = load(&ds, HONE_SFT, &err, sets2);
    CHECK(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK(ds.n_train == 2 && ds.n_skipped == 5 && ds.sources[0].rows_read == 7, "loaded %ld skipped %ld read %ld",
              ds.n_train, ds.n_skipped, ds.sources[0].rows_read);
        CHECK(ds.sft_train[1].line == 8, "line %ld", ds.sft_train[1].line);
        CHECK(strstr(ds.sources[0].first_error, "sft_bad.jsonl:2: bad JSON") != NULL, "%s", ds.sources[0].first_error);
        dataset_free(&ds);
    }
    expect_row_error("{\"prompt\": \"p\"}\n", HONE_SFT, "prompt_completion", "rows.jsonl:1: missing field 'completion'");
    expect_row_error("\n{\"prompt\": \"p\", \"completion\": 3}\n", HONE_SFT, "prompt_completion", ":2: field 'completion' must be a list of messages, got a number");
    expect_row_error("{\"text\": \"\"}\n", HONE_SFT, "text", ":1: field 'text' is empty");
    expect_row_error("{\"text\": 5}\n", HONE_SFT, "text", ":1: field 'text' must be a string, got a number");
    expect_row_error("{\"text\": \"a\"}\n[1]\n", HONE_SFT, "text", ":2: row must be a JSON object, got a list");
    expect_row_error("{\"messages\": [{\"role\": \"user\", \"content\": \"\"}]}\n", HONE_SFT, "messages", ":1: messages[0] (user): empty content");
    expect_row_error("{\"messages\": [{\"role\": \"user\"}]}\n", HONE_SFT, "messages", "messages[0]: missing 'content'");
    expect_row_error("{\"conversations\": [{\"from\": \"robot\", \"value\": \"x\"}]}\n", HONE_SFT, "sharegpt", "unknown ShareGPT role 'robot'");
    expect_row_error("{\"instruction\": \"i\", \"output\": \"\"}\n", HONE_SFT, "alpaca", "field 'output' is empty");
    expect_row_error("{\"a\": 1, \"b\": 2}\n", HONE_SFT, "auto", ":1: cannot tell the SFT format from the keys [a, b]");
    expect_row_error("{\"prompt\": \"p\", \"chosen\": \"\", \"rejected\": \"x\"}\n", HONE_DPO, "standard", "field 'chosen' is empty");
    expect_row_error("{\"chosen\": \"abc\", \"rejected\": \"xyz\"}\n", HONE_DPO, "implicit", "share no prompt");
    /* identical pairs are left out and counted, never fatal; a source of only those has no rows */
    expect_row_error("{\"chosen\": \"ab\", \"rejected\": \"ab\"}\n", HONE_DPO, "implicit", "no valid rows (1 read, 0 skipped, 1 identical pairs; first: ");
}

static void test_byte_order_mark(void) {
    const char *dir = test_tmpdir("bom");
    char path[512], set[1024];
    snprintf(path, sizeof path, "%s/bom.jsonl", dir);
    FILE *f = fopen(path, "wb");
    fputs("\xef\xbb\xbf{\"text\": \"a\"}\n{\"text\": \"b\"}\n", f);
    fclose(f);
    snprintf(set, sizeof set, "datasets=[{path: '%s'}]", path);
    const char *sets[] = {set, NULL};
    hone_dataset ds;
    hone_error err = {{0}};
    int rc = load(&ds, HONE_SFT, &err, sets);
    CHECK(rc == 0 && ds.n_train == 2 && streq(ds.sft_train[0].text, "a"), "%s", err.msg);
    if (!rc) dataset_free(&ds);
    remove(path);
    rmdir(dir);
}

static void test_dpo_formats_and_columns(void) {
    hone_dataset ds;
    hone_error err = {{0}};
    char buf[4096];
    snprintf(buf, sizeof buf,
             "datasets=[{path: '%s', format: standard}, {path: '%s'}, {path: '%s'}, "
             "{path: '%s', columns: {system: system, prompt: question}}, "
             "{path: '%s', columns: {prompt: question, chosen: response_j, rejected: response_k}}]",
             test_src("tests/fixtures/data/dpo_standard.jsonl"), test_src("tests/fixtures/data/dpo_conversational.jsonl"),
             test_src("tests/fixtures/data/dpo_sharegpt.json"), test_src("tests/fixtures/data/dpo_columns_system.jsonl"),
             test_src("tests/fixtures/data/dpo_columns_jk.jsonl"));
    const char *sets[] = {buf, "skip_invalid_rows=true", NULL};
    int rc = load(&ds, HONE_DPO, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ds.sources[0].rows_valid == 2 && ds.sources[0].rows_skipped == 0 && ds.sources[0].rows_identical == 1 &&
          ds.n_identical == 1 && strstr(ds.sources[0].first_identical, "dpo_standard.jsonl:3: 'chosen' and 'rejected' are identical"),
          "identical pair left out and counted: %s", ds.sources[0].first_identical);
    CHECK(ds.sources[1].format == FMT_CONVERSATIONAL && ds.sources[2].format == FMT_SHAREGPT &&
          ds.sources[3].format == FMT_STANDARD && ds.sources[4].format == FMT_STANDARD, "auto formats");
    CHECK(ds.n_train == 2 + 3 + 2 + 2 + 2, "n %ld", ds.n_train);
    hone_dpo_example *e = ds.dpo_train;
    CHECK(e[0].is_text && streq(e[0].prompt.msgs[0].content, "The sky is") && streq(e[0].chosen.msgs[0].content, " blue."), "standard");
    CHECK(!e[3].is_text && e[3].prompt.n == 4 && streq(e[3].prompt.msgs[0].role, "system") && streq(e[3].chosen.msgs[0].content, "Goodbye!"), "conversational");
    /* a conversational row without prompt in a conversational source: TRL's extract_prompt on messages */
    CHECK(e[4].prompt.n == 1 && streq(e[4].prompt.msgs[0].content, "Where is the sun?") && e[4].chosen.n == 1 &&
          streq(e[4].rejected.msgs[0].content, "In the sea."), "implicit messages");
    CHECK(e[5].prompt.n == 2 && streq(e[5].prompt.msgs[0].role, "system") && streq(e[5].chosen.msgs[0].role, "assistant") &&
          streq(e[5].chosen.msgs[0].content, "Hi!"), "sharegpt pair");
    CHECK(e[6].prompt.n == 3 && streq(e[6].prompt.msgs[1].role, "assistant") && streq(e[6].rejected.msgs[0].content, "22"), "sharegpt multi-turn");
    CHECK(!e[7].is_text && e[7].prompt.n == 2 && streq(e[7].prompt.msgs[0].content, "You are an AI assistant.") &&
          streq(e[7].prompt.msgs[1].content, "What is 2+2?") && streq(e[7].chosen.msgs[0].role, "assistant"), "system + question");
    CHECK(e[8].is_text && streq(e[8].prompt.msgs[0].content, "Capital of Italy?"), "empty system: standard");
    CHECK(e[9].is_text && streq(e[9].chosen.msgs[0].content, "Use lst[::-1] or lst.reverse().") &&
          streq(e[9].rejected.msgs[0].content, "You can't."), "response_j / response_k");
    dataset_free(&ds);
}

static json_t *expected_implicit(void) {
    json_error_t je;
    json_t *j = json_load_file(test_src("tests/fixtures/data/implicit_expected.json"), 0, &je);
    CHECK(j != NULL, "implicit_expected.json: %s", je.text);
    return j;
}

static void test_implicit_matches_trl_fixture(void) {
    json_t *want = expected_implicit();
    if (!want) return;
    hone_dataset ds;
    hone_error err = {{0}};
    const char *sets[] = {one_source("tests/fixtures/data/dpo_implicit.jsonl", NULL), NULL};
    int rc = load(&ds, HONE_DPO, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (!rc) {
        json_t *fx = json_object_get(want, "fixture");
        CHECK(ds.n_train == (long)json_array_size(fx), "rows");
        for (long i = 0; i < ds.n_train && i < (long)json_array_size(fx); i++) {
            json_t *w = json_array_get(fx, i);
            const hone_dpo_example *e = &ds.dpo_train[i];
            CHECK(e->is_text && streq(e->prompt.msgs[0].content, json_string_value(json_object_get(w, "prompt"))), "row %ld prompt '%s'", i, e->prompt.msgs[0].content);
            CHECK(streq(e->chosen.msgs[0].content, json_string_value(json_object_get(w, "chosen"))), "row %ld chosen '%s'", i, e->chosen.msgs[0].content);
            CHECK(streq(e->rejected.msgs[0].content, json_string_value(json_object_get(w, "rejected"))), "row %ld rejected", i);
        }
        dataset_free(&ds);
    }
    /* the turn-boundary variant cuts "Sure" back to "Assistant:" */
    CHECK(dataset_implicit_prompt_len("\n\nHuman: a\n\nAssistant: Sure! x", "\n\nHuman: a\n\nAssistant: Sure, y", 1) == 22, "turn");
    json_decref(want);
}

static void test_implicit_matches_trl_hh_rlhf(void) {
    const char *path = test_shared("data/hh-rlhf-harmless/pairs.dev.jsonl.gz");
    if (!path) { test_skip("../shared/data/hh-rlhf-harmless absent"); return; }
    json_t *want = expected_implicit();
    if (!want) return;
    json_t *lens = json_object_get(want, "hh_rlhf_harmless_lens");
    char set[1024];
    snprintf(set, sizeof set, "datasets=[{path: '%s', format: implicit}]", path);
    const char *sets[] = {set, NULL};
    hone_dataset ds;
    hone_error err = {{0}};
    int rc = load(&ds, HONE_DPO, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK(ds.n_train == 1156 && (long)json_array_size(lens) == 1156, "1156 pairs: %ld", ds.n_train);
        long mismatches = 0, not_turn = 0;
        for (long i = 0; i < ds.n_train && i < (long)json_array_size(lens); i++) {
            json_t *w = json_array_get(lens, i);
            const hone_dpo_example *e = &ds.dpo_train[i];
            size_t p = strlen(e->prompt.msgs[0].content);
            mismatches += p != (size_t)json_integer_value(json_array_get(w, 0)) ||
                          strlen(e->chosen.msgs[0].content) != (size_t)json_integer_value(json_array_get(w, 1)) ||
                          strlen(e->rejected.msgs[0].content) != (size_t)json_integer_value(json_array_get(w, 2));
            not_turn += p < 10 || strcmp(e->prompt.msgs[0].content + p - 10, "Assistant:");
        }
        CHECK(mismatches == 0, "%ld rows differ from TRL's extract_prompt", mismatches);
        CHECK(not_turn == json_integer_value(json_object_get(want, "hh_rlhf_harmless_not_at_turn")), "not at turn %ld", not_turn);
        dataset_free(&ds);
    }
    json_decref(want);
}

static void test_real_files(void) {
    const char *v1 = test_shared("data/llamafactory/v1_sft_demo.jsonl"), *al = test_shared("data/llamafactory/alpaca_en_demo.json"),
               *dp = test_shared("data/llamafactory/dpo_en_demo.json");
    if (!v1 || !al || !dp) { test_skip("../shared/data/llamafactory absent"); return; }
    char set[2048];
    snprintf(set, sizeof set, "datasets=[{path: '%s'}, {path: '%s'}]", v1, al);
    const char *sets[] = {set, NULL};
    hone_dataset ds;
    hone_error err = {{0}};
    int rc = load(&ds, HONE_SFT, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK(ds.sources[0].rows_valid == 500 && ds.sources[1].rows_valid == 999 && ds.n_train == 1499, "sft counts");
        dataset_free(&ds);
    }
    snprintf(set, sizeof set, "datasets=[{path: '%s'}]", dp);
    rc = load(&ds, HONE_DPO, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK(ds.n_train == 300 && ds.sources[0].format == FMT_SHAREGPT, "dpo counts %ld", ds.n_train);
        dataset_free(&ds);
    }
}

/* Line numbers of the train examples, for comparing orders. */
static void lines_of(const hone_dataset *ds, long *out, long n) {
    for (long i = 0; i < n; i++) out[i] = ds->sft_train[i].line * 10 + ds->sft_train[i].source;
}

static void test_mixtures_and_split(void) {
    char set[2048];
    snprintf(set, sizeof set, "datasets=[{path: '%s', number_of_samples: 2}, {path: '%s', ratio: 2.0}, {path: '%s', split: eval}]",
             test_src("tests/fixtures/data/sft_alpaca.json"), test_src("tests/fixtures/data/sft_text.jsonl.gz"),
             test_src("tests/fixtures/data/sft_messages.jsonl"));
    const char *sets[] = {set, NULL};
    hone_dataset ds;
    hone_error err = {{0}};
    int rc = load(&ds, HONE_SFT, &err, sets);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ds.sources[0].rows_selected == 2 && ds.sources[1].rows_selected == 6 && ds.n_train == 8 && ds.n_eval == 2, "counts");
    CHECK(ds.sft_train[0].line < ds.sft_train[1].line, "a subset keeps file order");
    CHECK(ds.sft_train[2].line == 1 && ds.sft_train[5].line == 1 && ds.sft_train[7].line == 3, "ratio 2 repeats the source");
    CHECK(ds.sft_eval[0].source == 2, "eval split source");
    dataset_free(&ds);

    /* test_size: fraction (ceil) and count; same seed same order, other seed another */
    long a[16], b[16], c[16];
    snprintf(set, sizeof set, "datasets=[{path: '%s'}, {path: '%s'}, {path: '%s', ratio: 3}]",
             test_src("tests/fixtures/data/sft_alpaca.json"), test_src("tests/fixtures/data/sft_sharegpt.json"),
             test_src("tests/fixtures/data/sft_text.jsonl.gz"));
    const char *s1[] = {set, "test_size=0.2", NULL};
    rc = load(&ds, HONE_SFT, &err, s1);
    CHECK(rc == 0 && ds.n_train == 11 && ds.n_eval == 3, "0.2 of 14 -> 3 eval: %ld %ld %s", ds.n_train, ds.n_eval, err.msg);
    if (rc) return;
    lines_of(&ds, a, 11);
    dataset_free(&ds);
    rc = load(&ds, HONE_SFT, &err, s1);
    if (rc) return;
    lines_of(&ds, b, 11);
    dataset_free(&ds);
    CHECK(!memcmp(a, b, sizeof(long) * 11), "same seed, same order");
    const char *s2[] = {set, "test_size=4", "seed=7", NULL};
    rc = load(&ds, HONE_SFT, &err, s2);
    CHECK(rc == 0 && ds.n_eval == 4 && ds.n_train == 10, "count split");
    if (rc) return;
    lines_of(&ds, c, 10);
    dataset_free(&ds);
    CHECK(memcmp(a, c, sizeof(long) * 10) != 0, "another seed, another order");
    const char *s3[] = {set, "test_size=14", NULL};
    CHECK(load(&ds, HONE_SFT, &err, s3) != 0 && strstr(err.msg, "leaves no training rows"), "%s", err.msg);
}

int main(void) {
    TEST_RUN(test_sft_prompt_completion_columns);
    TEST_RUN(test_sft_messages_sharegpt_alpaca_text);
    TEST_RUN(test_malformed_rows);
    TEST_RUN(test_byte_order_mark);
    TEST_RUN(test_dpo_formats_and_columns);
    TEST_RUN(test_implicit_matches_trl_fixture);
    TEST_RUN(test_implicit_matches_trl_hh_rlhf);
    TEST_RUN(test_real_files);
    TEST_RUN(test_mixtures_and_split);
    return test_finish();
}
