/* test_messages.c — what a user is told when a setting or a file is wrong (issue 13,
 * defects 6 and 7, and the smaller things): each case runs the `hone` binary
 * (HONE_BIN, set by `make check`) the way a user would, on a stories260K model
 * directory made here, and checks the exit status and the words of the message.
 * Library-level checks of the same rules (config.json, threads, SentencePiece) sit
 * beside them. */
#include "cli/gen_cli.h"
#include "model/convert.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "base/threads.h"
#include "base/util.h"
#include "test.h"
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char work[256];      /* scratch directory of this binary */
static char model_dir[512]; /* stories260K in HF form, or "" when ../shared is absent */
static char out_text[65536];

/* Runs `$HONE_BIN args` (a shell command tail) from `work` with stdout and stderr in
 * out_text. Returns the exit status, or -1 when HONE_BIN is unset (the case skips). */
static int hone(const char *env, const char *args) {
    const char *bin = getenv("HONE_BIN");
    out_text[0] = 0;
    if (!bin) { test_skip("HONE_BIN is unset (make check sets it)"); return -1; }
    char cmd[8192], log[400];
    snprintf(log, sizeof log, "%s/out.txt", work);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s %s </dev/null >%s 2>&1", work, env ? env : "", bin, args, log);
    int st = system(cmd);
    FILE *f = fopen(log, "rb");
    if (f) {
        size_t n = fread(out_text, 1, sizeof out_text - 1, f);
        out_text[n] = 0;
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void put(const char *rel, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", work, rel);
    FILE *f = fopen(p, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static int has(const char *part) { return strstr(out_text, part) != NULL; }

/* `hone args` must fail (non-zero exit) saying `want`. Returns -1 when skipped. */
static int refuses(const char *args, const char *want) {
    int rc = hone(NULL, args);
    if (rc >= 0) CHECK(rc != 0 && has(want), "hone %s: want '%s', exit %d:\n%s", args, want, rc, out_text);
    return rc;
}

static int count(const char *part) {
    int n = 0;
    for (const char *p = out_text; (p = strstr(p, part)); p += strlen(part)) n++;
    return n;
}

/* An SFT configuration on the stories260K directory; `extra` adds or overrides keys. Every
 * case writes to run/, so each fresh run replaces the previous case's (overwrite_output_dir). */
static void sft_config(const char *name, const char *extra) {
    char y[4096];
    snprintf(y, sizeof y,
             "model_name_or_path: %s\noutput_dir: run\ndatasets: [rows.jsonl]\nmax_length: 64\n"
             "per_device_train_batch_size: 2\nchat_template: chatml\nlogging_steps: 1\noverwrite_output_dir: true\n%s",
             model_dir, extra);
    put(name, y);
}

static int need_model(void) {
    if (model_dir[0]) return 1;
    test_skip("../shared/models/stories260K is absent");
    return 0;
}

/* ---- defect 6: bad settings ---- */

static void test_bad_settings_cli(void) {
    if (!need_model()) return;
    static const struct { const char *yaml, *want; } cases[] = {
        {"logging_steps: 0\n", "bad.yaml:7:16: logging_steps: must be > 0"},
        {"save_steps: -5\n", "save_steps: must be > 0"},
        {"threads: -2\n", "threads: must be >= 0"},
        {"adam_epsilon: -1e-8\n", "adam_epsilon: must be >= 0"},
        {"weight_decay: -0.1\n", "weight_decay: must be >= 0"},
        {"max_grad_norm: -1\n", "max_grad_norm: must be >= 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char y[4096];
        /* the key first, so its line is fixed whatever sft_config writes */
        snprintf(y, sizeof y, "model_name_or_path: %s\noutput_dir: run\ndatasets: [rows.jsonl]\nmax_length: 64\n"
                              "per_device_train_batch_size: 2\nchat_template: chatml\n%s", model_dir, cases[i].yaml);
        put("bad.yaml", y);
        int rc = hone(NULL, "sft bad.yaml");
        if (rc < 0) return;
        CHECK(rc != 0 && has(cases[i].want), "%s: exit %d, output:\n%s", cases[i].yaml, rc, out_text);
    }
    /* --set reports the override */
    sft_config("ok.yaml", "max_steps: 1\n");
    refuses("sft ok.yaml --set logging_steps=0", "--set: logging_steps: must be > 0");
}

static void test_threads_capped_with_warning(void) {
    hone_topology t;
    hone_error err = {{0}};
    CHECK(threads_plan(&t, "pack:1 core:2 pu:1", 300, &err) == 0, "%s", err.msg);
    CHECK(t.requested == 300 && t.threads == HONE_MAX_THREADS, "requested %d, threads %d", t.requested, t.threads);
    CHECK(threads_plan(&t, "pack:1 core:2 pu:1", 3, &err) == 0 && t.requested == 3 && t.threads == 3, "uncapped");
    if (!need_model()) return;
    char args[700];
    snprintf(args, sizeof args, "generate %s --prompt Once --max-new-tokens 2", model_dir);
    int rc = hone("HONE_THREADS=300", args);
    if (rc < 0) return;
    CHECK(rc == 0 && has("warning: 300 threads requested, using 256"), "exit %d:\n%s", rc, out_text);
    rc = hone("HONE_THREADS=2", args);
    CHECK(rc == 0 && !has("warning"), "no warning when not capped: exit %d:\n%s", rc, out_text);
}

/* A checkpoint at step 2, then: resumed by a run of 1 step; with a trainer_state of {}. */
static void test_resume_checks(void) {
    if (!need_model()) return;
    sft_config("three.yaml", "max_steps: 3\nsave_steps: 1\n");
    int rc = hone(NULL, "sft three.yaml");
    if (rc < 0) return;
    CHECK(rc == 0, "training run: exit %d:\n%s", rc, out_text);
    sft_config("short.yaml", "max_steps: 1\nresume_from_checkpoint: run/checkpoint-2\n");
    refuses("sft short.yaml", "run/checkpoint-2/trainer_state.json: the checkpoint is at step 2, beyond the 1 step(s) of this run");
    put("run/checkpoint-1/trainer_state.json", "{}\n");
    sft_config("empty.yaml", "max_steps: 3\nresume_from_checkpoint: run/checkpoint-1\n");
    refuses("sft empty.yaml", "run/checkpoint-1/trainer_state.json: field 'global_step' is missing");
    put("run/checkpoint-1/trainer_state.json", "{\"global_step\": 1, \"optimizer_step\": 1, \"epoch\": \"x\"}\n");
    refuses("sft empty.yaml", "field 'epoch' must be a non-negative integer");
}

/* config.json values that would make NaN, an empty context or unreachable tokens. */
static void test_model_config_values(void) {
    static const struct { const char *extra, *want; } cases[] = {
        {"\"rms_norm_eps\": 0", "c.json: field 'rms_norm_eps': must be > 0, got 0"},
        {"\"rms_norm_eps\": -1e-5", "field 'rms_norm_eps': must be > 0"},
        {"\"rope_theta\": 0", "c.json: field 'rope_theta': must be > 0, got 0"},
        {"\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": -1}", "field 'rope_theta': must be > 0, got -1"},
        {"\"max_position_embeddings\": 0", "c.json: field 'max_position_embeddings': must be > 0, got 0"},
        {"\"bos_token_id\": 32", "c.json: field 'bos_token_id': token id 32 is outside the vocabulary (0 to 31)"},
        {"\"eos_token_id\": [2, 40]", "field 'eos_token_id': token id 40 is outside the vocabulary"},
        {"\"pad_token_id\": -7", "field 'pad_token_id': token id -7 is outside the vocabulary"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[1024];
        snprintf(text, sizeof text, "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 32, \"hidden_size\": 8, "
                                    "\"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, %s}", cases[i].extra);
        hone_model_config c;
        hone_error err = {{0}};
        CHECK(model_config_parse(&c, text, "c.json", &err) != 0 && strstr(err.msg, cases[i].want), "%s: '%s'", cases[i].extra, err.msg);
    }
    hone_model_config c;
    hone_error err = {{0}};
    CHECK(model_config_parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 32, \"hidden_size\": 8, "
                                 "\"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                                 "\"bos_token_id\": 0, \"eos_token_id\": [31, -1], \"pad_token_id\": null}", "c.json", &err) == 0,
          "valid ids refused: %s", err.msg);
}

/* The same through `hone generate`, which used to print nothing and exit 0. */
static void test_special_ids_cli(void) {
    if (!need_model()) return;
    char cmd[4000], args[700], bad[600];
    snprintf(bad, sizeof bad, "%s/badids", work);
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && sed -i 's/\"eos_token_id\": *[0-9]*/\"eos_token_id\": 9999/' %s/config.json",
             bad, model_dir, bad, bad);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(args, sizeof args, "generate %s --prompt Once --max-new-tokens 4", bad);
    int rc = hone(NULL, args);
    if (rc < 0) return;
    CHECK(rc != 0 && has("badids/config.json: field 'eos_token_id': token id 9999 is outside the vocabulary (0 to 511)"),
          "exit %d:\n%s", rc, out_text);
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && echo '{\"eos_token_id\": [2, 512]}' > %s/generation_config.json", bad,
             model_dir, bad, bad);
    CHECK(system(cmd) == 0, "%s", cmd);
    refuses(args, "badids/generation_config.json: field 'eos_token_id': token id 512 is outside the vocabulary");
}

/* ---- defect 7: unclear messages ---- */

static void test_dataset_is_directory(void) {
    if (!need_model()) return;
    char d[400];
    snprintf(d, sizeof d, "%s/adir", work);
    mkdir(d, 0755);
    sft_config("dir.yaml", "max_steps: 1\n");
    int rc = hone(NULL, "sft dir.yaml --set 'datasets=[adir]'");
    if (rc < 0) return;
    CHECK(rc != 0 && has("adir: is a directory, not a data file") && !has("gzip"), "exit %d:\n%s", rc, out_text);
}

static void test_null_field(void) {
    if (!need_model()) return;
    put("nulls.jsonl", "{\"prompt\": \"Once\", \"completion\": null}\n");
    sft_config("nulls.yaml", "max_steps: 1\n");
    int rc = hone(NULL, "sft nulls.yaml --set 'datasets=[{path: nulls.jsonl, format: prompt_completion}]'");
    if (rc < 0) return;
    CHECK(rc != 0 && has("nulls.jsonl:1: field 'completion' is null") && !has("missing"), "exit %d:\n%s", rc, out_text);
    put("nulls.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": null}]}\n");
    refuses("sft nulls.yaml --set 'datasets=[nulls.jsonl]'", "nulls.jsonl:1: messages[0]: 'content' is null");
    put("nulls.jsonl", "{\"messages\": [{\"role\": null, \"content\": \"hi\"}]}\n");
    refuses("sft nulls.yaml --set 'datasets=[nulls.jsonl]'", "nulls.jsonl:1: messages[0]: 'role' is null");
}

static void test_empty_sentencepiece(void) {
    char p[400], out[400];
    snprintf(p, sizeof p, "%s/empty.model", work);
    snprintf(out, sizeof out, "%s/spm-out", work);
    put("empty.model", "");
    hone_error err = {{0}};
    CHECK(spm_convert(p, out, &err) != 0 && strstr(err.msg, "empty.model: the file is empty, not a SentencePiece model"), "'%s'",
          err.msg);
    /* protobuf that parses but holds no pieces (a lone trainer_spec-less field) */
    put("nopieces.model", "\x20\x01");
    snprintf(p, sizeof p, "%s/nopieces.model", work);
    CHECK(spm_convert(p, out, &err) != 0 && strstr(err.msg, "not a SentencePiece model (it has no pieces)"), "'%s'", err.msg);
    snprintf(p, sizeof p, "%s", work); /* a directory */
    CHECK(spm_convert(p, out, &err) != 0 && strstr(err.msg, "Is a directory"), "'%s'", err.msg);
}

/* output_dir that cannot hold files: the message names it, not hone's staging directory. */
static void test_output_dir_unwritable(void) {
    if (!need_model()) return;
    put("afile", "x\n");
    sft_config("out.yaml", "max_steps: 1\n");
    int rc = hone(NULL, "sft out.yaml --set output_dir=afile");
    if (rc < 0) return;
    CHECK(rc != 0 && has("output_dir 'afile': cannot create files there: Not a directory") && !has(".hone-tokenizer"),
          "exit %d:\n%s", rc, out_text);
    if (geteuid() == 0) return; /* root writes anywhere: the permission case needs a user */
    char d[400];
    snprintf(d, sizeof d, "%s/ro", work);
    mkdir(d, 0555);
    chmod(d, 0555);
    rc = hone(NULL, "sft out.yaml --set output_dir=ro");
    CHECK(rc != 0 && has("output_dir 'ro': cannot create files there: Permission denied") && !has(".hone-tokenizer"),
          "exit %d:\n%s", rc, out_text);
    chmod(d, 0755);
}

/* ---- smaller things ---- */

/* hone chat on the stories260K directory reading turns.txt; stderr in out_text. */
static int chat_run(const char *opts) {
    char cmd[1500], p[400];
    snprintf(cmd, sizeof cmd, "cd %s && %s chat %s --chat-template chatml --max-new-tokens 4 %s <turns.txt >chat.out 2>chat.err", work,
             getenv("HONE_BIN"), model_dir, opts);
    int st = system(cmd), rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    snprintf(p, sizeof p, "%s/chat.err", work);
    char *t = NULL;
    out_text[0] = 0;
    if (hone_read_file(p, &t, NULL, NULL) == 0) { snprintf(out_text, sizeof out_text, "%s", t); free(t); }
    CHECK(rc == 0, "hone chat %s: exit %d:\n%s", opts, rc, out_text);
    return rc;
}

static void test_chat_help_and_dropped_turns(void) {
    int rc = hone(NULL, "chat --help");
    if (rc < 0) return;
    CHECK(rc == 0 && has("--max-new-tokens N      tokens to generate at most (default 256)"), "chat --help:\n%s", out_text);
    CHECK(has("the oldest turns are dropped"), "chat --help documents dropped turns:\n%s", out_text);
    rc = hone(NULL, "generate --help");
    CHECK(rc == 0 && has("(default 128)"), "generate --help:\n%s", out_text);
    if (!need_model()) return;
    /* six turns of ~25 tokens each (chatml spelled out by a 512-piece vocabulary) in a
     * context of 128: from the third turn on old turns must go, said once */
    put("turns.txt", "Tom went to the park with his dog.\nLily saw a big red ball.\nThey played all day.\n"
                     "The sun was hot.\nThey went home.\nMom made soup.\n");
    if (chat_run("--max-context 128") < 0) return;
    CHECK(count("dropping the oldest turns") == 1 && !has("longer than the context"), "want the note once:\n%s", out_text);
    /* a message alone longer than the context is refused and the chat goes on (and frees it) */
    CHECK(chat_run("--max-context 24") == 0 && has("the message is longer than the context (24 tokens)"), "%s", out_text);
}

static void test_eval_progress(void) {
    if (!need_model()) return;
    put("pairs.jsonl", "{\"prompt\": \"Once upon a time,\", \"chosen\": \" there was a girl.\", \"rejected\": \" zq xv.\"}\n"
                       "{\"prompt\": \"Tom\", \"chosen\": \" ran.\", \"rejected\": \" qq.\"}\n"
                       "{\"prompt\": \"Lily\", \"chosen\": \" sang.\", \"rejected\": \" zz.\"}\n");
    char args[1400];
    snprintf(args, sizeof args, "eval %s --pairs pairs.jsonl --ref %s --batch-size 2", model_dir, model_dir);
    int rc = hone(NULL, args);
    if (rc < 0) return;
    CHECK(rc == 0 && has("eval: model 3/3 pairs, ") && has("eval: reference 3/3 pairs, ") && has(" elapsed, ETA "),
          "exit %d:\n%s", rc, out_text);
    put("texts.jsonl", "{\"text\": \"Once upon a time\"}\n");
    snprintf(args, sizeof args, "eval %s --perplexity texts.jsonl", model_dir);
    rc = hone(NULL, args);
    CHECK(rc == 0 && has("eval: perplexity 1/1 sequences, "), "exit %d:\n%s", rc, out_text);
}

/* configure says what it found and what it builds: with an nvcc that works but no
 * .cu file in gpu/, "found; no CUDA backend", never a bare "cuda yes". */
static void test_configure_cuda_line(void) {
    const char *src = getenv("HONE_SRCDIR");
    if (!src || !getenv("HONE_BIN")) { test_skip("HONE_SRCDIR / HONE_BIN unset (make check sets them)"); return; }
    char abs_src[4096];
    if (!realpath(src, abs_src)) { CHECK(0, "realpath %s", src); return; }
    char d[400], cmd[12000];
    snprintf(d, sizeof d, "%s/conf", work);
    mkdir(d, 0755);
    /* a stand-in nvcc: compiles nothing, succeeds, as a working toolkit would */
    snprintf(cmd, sizeof cmd, "printf '#!/bin/sh\\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && : > \"$2\"; shift; done\\n' > %s/nvcc && chmod +x %s/nvcc", d, d);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "cd %s && NVCC=%s/nvcc sh %s/configure > summary.txt 2>&1 && ls %s/gpu/*.cu >/dev/null 2>&1", d, d, abs_src, abs_src);
    int has_cu = system(cmd) == 0;
    char p[500];
    snprintf(p, sizeof p, "%s/summary.txt", d);
    char *t = NULL;
    out_text[0] = 0;
    if (hone_read_file(p, &t, NULL, NULL) == 0) { snprintf(out_text, sizeof out_text, "%s", t); free(t); }
    const char *want = has_cu ? "cuda          nvcc + cuBLAS found; CUDA backend built"
                              : "cuda          nvcc + cuBLAS found; no CUDA backend in this version (CPU only)";
    CHECK(has(want) && !has("cuda          yes"), "configure summary lacks '%s':\n%s", want, out_text);
    snprintf(cmd, sizeof cmd, "cd %s && sh %s/configure --disable-cuda > summary.txt 2>&1", d, abs_src);
    CHECK(system(cmd) == 0, "configure --disable-cuda");
    if (hone_read_file(p, &t, NULL, NULL) == 0) { snprintf(out_text, sizeof out_text, "%s", t); free(t); }
    CHECK(has("cuda          disabled (--disable-cuda); CPU only"), "configure --disable-cuda:\n%s", out_text);
}

/* stories260K as a Hugging Face directory (config.json, safetensors, tokenizer.json). */
static void make_model(void) {
    const char *bin = test_shared("models/stories260K/stories260K.bin");
    const char *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) return;
    hone_model m;
    hone_error err = {{0}};
    snprintf(model_dir, sizeof model_dir, "%s/stories", work);
    if (convert_llama2c_load(&m, bin, &err) < 0) { model_dir[0] = 0; fprintf(stderr, "%s\n", err.msg); return; }
    if (model_save(&m, model_dir, NULL, &err) < 0 || spm_convert(spm, model_dir, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        model_dir[0] = 0;
    }
    model_free(&m);
}

int main(void) {
    const char *w = test_tmpdir("msg");
    if (!w) { fprintf(stderr, "no scratch directory\n"); return 1; }
    snprintf(work, sizeof work, "%s", w);
    make_model();
    put("rows.jsonl", "{\"prompt\": \"Once upon\", \"completion\": \" a time\"}\n{\"prompt\": \"Tom\", \"completion\": \" ran home.\"}\n"
                      "{\"prompt\": \"Lily\", \"completion\": \" sang.\"}\n{\"prompt\": \"The dog\", \"completion\": \" barked.\"}\n");
    TEST_RUN(test_bad_settings_cli);
    TEST_RUN(test_threads_capped_with_warning);
    TEST_RUN(test_resume_checks);
    TEST_RUN(test_model_config_values);
    TEST_RUN(test_special_ids_cli);
    TEST_RUN(test_dataset_is_directory);
    TEST_RUN(test_null_field);
    TEST_RUN(test_empty_sentencepiece);
    TEST_RUN(test_output_dir_unwritable);
    TEST_RUN(test_chat_help_and_dropped_turns);
    TEST_RUN(test_eval_progress);
    TEST_RUN(test_configure_cuda_line);
    chmod(work, 0755);
    hone_remove_tree(work, NULL);
    return test_finish();
}
