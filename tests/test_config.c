/* test_config.c — YAML training configuration: defaults, good files, every error
 * kind with its message, --set overrides and aliases. */
#include "test.h"
#include "train/pipeline.h"
#include "train/train_config.h"
#include <jansson.h>

static int has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

static void test_defaults_match_trl(void) {
    hone_train_config c;
    hone_error err = {{0}};
    CHECK(config_defaults(&c, HONE_SFT, &err) == 0, "%s", err.msg);
    CHECK(c.learning_rate == 2e-5, "sft lr %g", c.learning_rate);
    CHECK(!strcmp(c.lr_scheduler_type, "linear") && c.num_train_epochs == 3.0 && c.max_steps == -1, "sched");
    CHECK(c.per_device_train_batch_size == 8 && c.gradient_accumulation_steps == 1 && c.max_grad_norm == 1.0, "batch");
    CHECK(c.adam_beta1 == 0.9 && c.adam_beta2 == 0.999 && c.adam_epsilon == 1e-8 && c.weight_decay == 0, "adam");
    CHECK(c.seed == 42 && c.logging_steps == 10 && c.save_steps == 500 && c.max_length == 1024, "misc");
    CHECK(c.gradient_checkpointing == 1 && c.completion_only_loss == -1 && c.packing == 0, "flags");
    config_free(&c);
    CHECK(config_defaults(&c, HONE_DPO, &err) == 0, "%s", err.msg);
    CHECK(c.learning_rate == 1e-6 && c.beta == 0.1 && c.n_loss_type == 1 && !strcmp(c.loss_type[0], "sigmoid"), "dpo");
    CHECK(c.f_alpha_divergence_coef == 0.5 && c.discopop_tau == 0.05 && c.ref_model_mixup_alpha == 0.6, "dpo2");
    CHECK(c.ref_model_sync_steps == 512 && !strcmp(c.f_divergence_type, "reverse_kl") && c.shared_prompt == -1, "dpo3");
    config_free(&c);
}

static void test_good_sft_file(void) {
    hone_train_config c;
    hone_error err = {{0}};
    int rc = config_load(&c, test_src("tests/fixtures/config/sft.yaml"), HONE_SFT, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(c.learning_rate == 2e-4, "lr %g", c.learning_rate);
    CHECK(!strcmp(c.lr_scheduler_type, "cosine") && c.warmup_ratio == 0.1, "sched");
    CHECK(c.max_length == 256, "alias max_seq_length -> max_length: %ld", c.max_length);
    CHECK(c.completion_only_loss == 1 && c.gradient_checkpointing == 0 && c.add_chat_tokens == 1, "bools");
    CHECK(c.eval_steps == 20 && c.save_total_limit == 2 && c.seed == 1234 && c.data.test_size == 0.2, "ints");
    CHECK(c.data.n_datasets == 2, "n_datasets %d", c.data.n_datasets);
    if (c.data.n_datasets == 2) {
        CHECK(!strcmp(c.data.datasets[0].format, "alpaca") && c.data.datasets[0].number_of_samples == 500 && c.data.datasets[0].ratio == -1, "ds0");
        CHECK(c.data.datasets[1].n_columns == 2 && !strcmp(c.data.datasets[1].columns[1].ours, "completion") &&
              !strcmp(c.data.datasets[1].columns[1].theirs, "text") && c.data.datasets[1].ratio == 0.5, "ds1 columns");
        CHECK(c.data.datasets[1].line == 26, "ds1 line %d", c.data.datasets[1].line);
    }
    CHECK(config_validate(&c, &err) == 0, "%s", err.msg);
    FILE *f = tmpfile();
    CHECK(config_dump_json(&c, f, &err) == 0, "%s", err.msg);
    rewind(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CHECK(has(buf, "\"learning_rate\": 0.0002") && has(buf, "\"max_length\": 256") && has(buf, "\"text\""), "json: %s", buf);
    CHECK(!has(buf, "\"beta\""), "dpo keys not in sft dump");
    config_free(&c);
}

static void test_good_dpo_file(void) {
    hone_train_config c;
    hone_error err = {{0}};
    int rc = config_load(&c, test_src("tests/fixtures/config/dpo.yaml"), HONE_DPO, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(c.beta == 0.2 && c.n_loss_type == 2 && !strcmp(c.loss_type[1], "sft"), "loss_type");
    CHECK(c.n_loss_weights == 2 && c.loss_weights[1] == 0.5, "weights");
    CHECK(c.precompute_ref_log_probs == 1 && c.max_prompt_length == 384 && !strcmp(c.truncation_mode, "keep_end"), "dpo");
    CHECK(c.shared_prompt == -1 && c.data.n_datasets == 2 && !strcmp(c.data.datasets[1].split, "eval"), "ds");
    CHECK(config_validate(&c, &err) == 0, "%s", err.msg);
    /* a single string is a one-element list */
    CHECK(config_set(&c, "loss_type", "ipo", &err) == 0 && c.n_loss_type == 1 && !strcmp(c.loss_type[0], "ipo"), "%s", err.msg);
    CHECK(config_validate(&c, &err) != 0 && has(err.msg, "loss_weights has 2 entries but loss_type has 1"), "%s", err.msg);
    config_free(&c);
}

/* Loads `yaml` expecting failure with a message containing `want`. */
static void expect_error(const char *yaml, int kind, const char *want) {
    hone_train_config c;
    hone_error err = {{0}};
    int rc = config_load_string(&c, yaml, "t.yaml", kind, &err);
    CHECK(rc != 0, "expected failure for: %s", yaml);
    CHECK(has(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
    if (rc == 0) config_free(&c);
}

static void test_errors(void) {
    expect_error("learning_rate: 1e-4\nlearnin_rate: 3\n", HONE_SFT, "t.yaml:2:1: unknown key 'learnin_rate' (did you mean 'learning_rate'?)");
    expect_error("seed: 1\nlearning_rate: abc\n", HONE_SFT, "t.yaml:2:16: learning_rate: expected a number, got 'abc'");
    expect_error("max_steps: 1.5\n", HONE_SFT, "t.yaml:1:12: max_steps: expected an integer, got '1.5'");
    expect_error("packing: maybe\n", HONE_SFT, "t.yaml:1:10: packing: expected true or false, got 'maybe'");
    expect_error("lr_scheduler_type: cosin\n", HONE_SFT, "unknown value 'cosin' (did you mean 'cosine'?");
    expect_error("beta: 0.1\n", HONE_SFT, "t.yaml:1:1: key 'beta' is for hone dpo, not hone sft");
    expect_error("loss_type: [sigmoid, hinj]\n", HONE_DPO, "t.yaml:1:22: loss_type: unknown value 'hinj' (did you mean 'hinge'?");
    expect_error("seed: 1\nseed: 2\n", HONE_SFT, "t.yaml:2:1: key 'seed' given twice");
    expect_error("max_length: 10\nmax_seq_length: 20\n", HONE_SFT, "given twice (also as 'max_length')");
    expect_error("seed: [1\n", HONE_SFT, "t.yaml:2:1: YAML syntax error");
    expect_error("- a\n- b\n", HONE_SFT, "expected a mapping of key: value");
    expect_error("datasets:\n  - path: a.jsonl\n    ratoi: 0.5\n", HONE_SFT, "t.yaml:3:5: datasets: unknown key 'ratoi' (did you mean 'ratio'?)");
    expect_error("datasets:\n  - format: alpaca\n", HONE_SFT, "t.yaml:2:5: datasets: entry has no 'path'");
    expect_error("datasets:\n  - {path: a, ratio: 0.5, number_of_samples: 3}\n", HONE_SFT, "not both");
    expect_error("datasets:\n  - {path: a, format: implicit}\n", HONE_SFT, "format: unknown value 'implicit'");
    expect_error("datasets:\n  - {path: a, number_of_samples: -3}\n", HONE_SFT, "number_of_samples: expected a non-negative integer, got '-3'");
    expect_error("model_name_or_path: [a]\n", HONE_SFT, "model_name_or_path: expected a string, got a list");
    expect_error("zzzzzzzzzzzz: 1\n", HONE_SFT, "unknown key 'zzzzzzzzzzzz' (see docs/config.md)");
    expect_error("fp16: true\n", HONE_SFT, "t.yaml:1:1: fp16: hone supports only 'false' here (got true)");
    expect_error("bf16: maybe\n", HONE_SFT, "bf16");
    expect_error("optim: sgd\n", HONE_SFT, "t.yaml:1:8: optim: unknown value 'sgd' (expected one of adamw_torch, adamw_torch_fused");
}

/* Settings out of range are errors at the value's file:line:col (issue 13), and a
 * failed --set leaves the key as it was; config_validate checks the same rules for
 * values set in code. */
static void test_ranges(void) {
    expect_error("seed: 1\nlogging_steps: 0\n", HONE_SFT, "t.yaml:2:16: logging_steps: must be > 0 (a value below 1 is a ratio of the total steps), got 0");
    expect_error("logging_steps: -3\n", HONE_DPO, "t.yaml:1:16: logging_steps: must be > 0");
    expect_error("save_steps: 0\n", HONE_SFT, "t.yaml:1:13: save_steps: must be > 0");
    expect_error("threads: -1\n", HONE_SFT, "t.yaml:1:10: threads: must be >= 0 (0 = all cores), got -1");
    expect_error("adam_epsilon: -1.0e-8\n", HONE_SFT, "t.yaml:1:15: adam_epsilon: must be >= 0, got -1.0e-8");
    expect_error("weight_decay: -0.01\n", HONE_DPO, "t.yaml:1:15: weight_decay: must be >= 0, got -0.01");
    expect_error("max_grad_norm: -1\n", HONE_SFT, "t.yaml:1:16: max_grad_norm: must be >= 0 (0 disables clipping), got -1");
    expect_error("learning_rate: -1e-5\n", HONE_SFT, "t.yaml:1:16: learning_rate: must be >= 0");
    hone_train_config c;
    hone_error err = {{0}};
    CHECK(config_load_string(&c, "model_name_or_path: m\ndatasets: [a.jsonl]\nmax_grad_norm: 0\nadam_epsilon: 0\nthreads: 0\n"
                                 "logging_steps: 0.1\nsave_steps: 0.5\n", "t.yaml", HONE_SFT, &err) == 0,
          "boundary values refused: %s", err.msg);
    CHECK(config_validate(&c, &err) == 0, "%s", err.msg);
    CHECK(config_set(&c, "save_steps", "-1", &err) != 0 && has(err.msg, "--set: save_steps: must be > 0"), "%s", err.msg);
    CHECK(c.save_steps == 0.5, "save_steps after a refused --set: %g", c.save_steps);
    c.logging_steps = 0; /* set in code: config_validate catches it */
    CHECK(config_validate(&c, &err) != 0 && has(err.msg, "t.yaml: logging_steps must be > 0"), "%s", err.msg);
    c.logging_steps = 1;
    c.threads = -4;
    CHECK(config_validate(&c, &err) != 0 && has(err.msg, "threads must be >= 0 (0 = all cores), got -4"), "%s", err.msg);
    config_free(&c);
}

static void test_compat_keys(void) {
    hone_train_config c;
    hone_error err = {{0}};
    int rc = config_load_string(&c, "push_to_hub: false\ntf32: false\nfp16: no\nrun_name: x\nlearning_rate: 1.0e-5\nbf16: true\n", "t.yaml", HONE_SFT, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(c.n_ignored == 4 && !strcmp(c.ignored[1], "tf32") && c.learning_rate == 1e-5, "ignored %d", c.n_ignored);
    CHECK(c.bf16 == 1, "bf16: true is a key of its own (issue 15), got %d", c.bf16);
    config_free(&c);
}

static void test_set_overrides(void) {
    hone_train_config c;
    hone_error err = {{0}};
    CHECK(config_load_string(&c, "model_name_or_path: m\ndatasets: [a.jsonl]\n", "t.yaml", HONE_SFT, &err) == 0, "%s", err.msg);
    CHECK(config_set_arg(&c, "learning_rate=1e-3", &err) == 0 && c.learning_rate == 1e-3, "%s", err.msg);
    CHECK(config_set_arg(&c, "max_seq_length=64", &err) == 0 && c.max_length == 64, "alias via --set");
    CHECK(config_set_arg(&c, "max_length=null", &err) == 0 && c.max_length == -1, "null");
    CHECK(config_set_arg(&c, "packing=true", &err) == 0 && c.packing == 1, "bool");
    CHECK(config_set_arg(&c, "resume_from_checkpoint=true", &err) == 0 && !strcmp(c.resume_from_checkpoint, "last"), "resume");
    CHECK(config_set_arg(&c, "output_dir=", &err) == 0 && c.output_dir == NULL, "empty -> null");
    CHECK(config_set_arg(&c, "datasets=[{path: b.json, format: alpaca, ratio: 2}]", &err) == 0 && c.data.n_datasets == 1 &&
          !strcmp(c.data.datasets[0].path, "b.json") && c.data.datasets[0].ratio == 2, "%s", err.msg);
    CHECK(config_set_arg(&c, "chat_template={% for m in messages %}{{ m.content }}{% endfor %}", &err) == 0, "inline jinja: %s", err.msg);
    CHECK(config_set_arg(&c, "chat_template={{ messages[0].content }}", &err) == 0 && !strcmp(c.chat_template, "{{ messages[0].content }}"), "%s", err.msg);
    CHECK(config_set_arg(&c, "learning_rate=abc", &err) != 0 && has(err.msg, "--set: learning_rate: expected a number, got 'abc'"), "%s", err.msg);
    CHECK(c.learning_rate == 1e-3, "unchanged after a failed --set");
    CHECK(config_set_arg(&c, "learning_rat=1", &err) != 0 && has(err.msg, "did you mean 'learning_rate'?"), "%s", err.msg);
    CHECK(config_set_arg(&c, "noequals", &err) != 0 && has(err.msg, "expected key=value"), "%s", err.msg);
    CHECK(config_set_arg(&c, "seed=[1", &err) != 0 && has(err.msg, "not a valid YAML value"), "%s", err.msg);
    config_free(&c);
}

/* --set takes every key a file takes: each key of the resolved configuration (its
 * JSON dump) set back to its own value, and the ignorable TRL keys (fp16=false). */
static void set_every_key(int kind) {
    hone_train_config c;
    hone_error err = {{0}};
    CHECK(config_load_string(&c, "model_name_or_path: m\ndatasets: [{path: a.jsonl, columns: {prompt: q}}]\n", "t.yaml", kind, &err) == 0,
          "%s", err.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(config_dump_json(&c, f, &err) == 0, "%s", err.msg);
    fclose(f);
    json_t *j = json_loads(buf, 0, NULL);
    free(buf);
    CHECK(j != NULL && json_object_size(j) > 35, "dump has %zu keys", json_object_size(j));
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(j, k, v) {
        if (!strcmp(k, "command")) continue; /* which command it was, not a key */
        char *val = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        CHECK(config_set(&c, k, val, &err) == 0, "--set %s=%s: %s", k, val, err.msg);
        free(val);
        n++;
    }
    json_decref(j);
    const char *compat[] = {"tf32=false", "fp16=false", "push_to_hub=false", "dataset_text_field=text",
                            "disable_dropout=true", "run_name=x"};
    for (size_t i = 0; i < sizeof compat / sizeof *compat; i++)
        CHECK(config_set_arg(&c, compat[i], &err) == 0, "--set %s: %s", compat[i], err.msg);
    CHECK(c.n_ignored == 6, "%d ignored keys recorded", c.n_ignored);
    CHECK(config_set_arg(&c, "optim=paged_adamw_8bit", &err) == 0 && config_optim_kind(c.optim) == 1 &&
              config_set_arg(&c, "optim=adamw_torch_fused", &err) == 0 && config_optim_kind(c.optim) == 0,
          "optim: %s", err.msg);
    CHECK(config_set_arg(&c, "fp16=true", &err) != 0 && has(err.msg, "--set: fp16: hone supports only 'false' here (got true)"), "%s", err.msg);
    CHECK(config_set_arg(&c, "bf16=true", &err) == 0 && c.bf16 == 1, "--set bf16=true: %s", err.msg);
    printf("    %s: %d keys set back through --set\n", kind == HONE_SFT ? "sft" : "dpo", n);
    config_free(&c);
}
static void test_set_accepts_every_key(void) {
    set_every_key(HONE_SFT);
    set_every_key(HONE_DPO);
}

/* the data-order keys (transformers / TRL names) */
static void test_data_order_keys(void) {
    hone_train_config c;
    hone_error err = {{0}};
    CHECK(config_defaults(&c, HONE_SFT, &err) == 0 && !strcmp(c.train_sampling_strategy, "random") && c.data_seed == -1 &&
          c.dataloader_drop_last == 0 && c.shuffle_dataset == 0, "defaults");
    config_free(&c);
    int rc = config_load_string(&c, "train_sampling_strategy: sequential\ndata_seed: 7\ndataloader_drop_last: true\nshuffle_dataset: true\n",
                                "t.yaml", HONE_SFT, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK(!strcmp(c.train_sampling_strategy, "sequential") && c.data_seed == 7 && c.dataloader_drop_last == 1 && c.shuffle_dataset == 1 &&
              c.n_ignored == 0, "values");
        CHECK(pipeline_shuffle(&c) == 0 && pipeline_data_seed(&c) == 7, "sequential: no shuffling; data_seed seeds the data");
        config_set(&c, "train_sampling_strategy", "random", &err);
        config_set(&c, "data_seed", "null", &err);
        CHECK(pipeline_shuffle(&c) == 1 && pipeline_data_seed(&c) == 42, "random: shuffled; data_seed null: seed");
        config_free(&c);
    }
    expect_error("train_sampling_strategy: sequentail\n", HONE_SFT, "did you mean 'sequential'?");
    expect_error("shuffle_dataset: true\n", HONE_DPO, "key 'shuffle_dataset' is for hone sft, not hone dpo");
}

static void test_validate(void) {
    hone_train_config c;
    hone_error err = {{0}};
    CHECK(config_load_string(&c, "datasets: [a.jsonl]\n", "t.yaml", HONE_SFT, &err) == 0, "%s", err.msg);
    CHECK(config_validate(&c, &err) != 0 && has(err.msg, "model_name_or_path is required"), "%s", err.msg);
    config_set(&c, "model_name_or_path", "m", &err);
    config_set(&c, "gradient_accumulation_steps", "0", &err);
    CHECK(config_validate(&c, &err) != 0 && has(err.msg, "gradient_accumulation_steps"), "%s", err.msg);
    config_free(&c);
    CHECK(config_steps(0.1, 95) == 10 && config_steps(20, 95) == 20 && config_steps(0, 95) == 0, "steps");
    CHECK(config_edit_distance("leanring_rate", "learning_rate") == 1, "transposition");
}

int main(void) {
    TEST_RUN(test_defaults_match_trl);
    TEST_RUN(test_good_sft_file);
    TEST_RUN(test_good_dpo_file);
    TEST_RUN(test_errors);
    TEST_RUN(test_ranges);
    TEST_RUN(test_compat_keys);
    TEST_RUN(test_set_overrides);
    TEST_RUN(test_set_accepts_every_key);
    TEST_RUN(test_data_order_keys);
    TEST_RUN(test_validate);
    return test_finish();
}
