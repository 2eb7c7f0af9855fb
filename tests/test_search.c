/* test_search.c — hyperparameter searches (docs/search.md).
 * Unit cases on train/search.h: Determined's grid spacing for double, log, int (rounding,
 * clamping) and categorical values, exact (no tolerance: the same formula in the same
 * order); the Cartesian order; nested groups merged into the base mapping; random draws
 * equal for equal seeds, different for others, inside their ranges (int inclusive); the
 * single searcher; bad searcher and hyperparameter blocks, each error naming its field;
 * ranking with ties.
 * End to end with the built `hone` (HONE_BIN, set by `make check`; skipped without it or
 * without ../shared/models/stories260K): a short SFT, then the first reference pipeline's
 * DPO grid (beta in {0.1, 0.05, 0.01} x learning_rate in {1e-7, 5e-7, 5e-8}: 9 trials, a few
 * steps each) run to the end, and again with 2 trials at a time stopped by SIGTERM after
 * some trials and resumed by the same command: every trial's final weights and
 * metrics.jsonl (timing fields aside) bitwise equal to the uninterrupted search's, the same
 * experiment.json ranking, and the printed table equal to what each trial's own
 * metrics.jsonl says. Plus a failing trial marked failed while the others complete. */
#include "spawn.h"
#include "test.h"
#include "train/search.h"
#include <jansson.h>

/* ---------- unit cases ---------- */

static char g_scratch[256];

/* writes yaml to a scratch file and loads its search over a DPO base configuration */
static int load_yaml(const char *yaml, hone_search *s, hone_train_config *base, hone_error *err) {
    if (!g_scratch[0]) snprintf(g_scratch, sizeof g_scratch, "%s", test_tmpdir("search-unit"));
    char path[512];
    snprintf(path, sizeof path, "%s/s.yaml", g_scratch);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    if (config_load(base, path, HONE_DPO, err) < 0) return -1;
    int rc = search_load(s, path, base, err);
    if (rc < 0) config_free(base);
    return rc;
}

static json_t *hp(const hone_search *s, int t, const char *key) { return json_object_get(json_array_get(s->trials, (size_t)t), key); }

static void test_grid_spacing(void) {
    hone_search s;
    hone_train_config base;
    hone_error err;
    int rc = load_yaml("model_name_or_path: m\ndatasets: [d.jsonl]\n"
                       "searcher: {name: grid, metric: eval_loss}\n"
                       "hyperparameters:\n"
                       "  weight_decay: {type: double, minval: 0, maxval: 1, count: 5}\n",
                       &s, &base, &err);
    CHECK(rc == 1 && s.n_trials == 5, "double grid: rc %d, %d trials: %s", rc, s.n_trials, err.msg);
    for (int i = 0; rc == 1 && i < 5; i++)
        CHECK(json_real_value(hp(&s, i, "weight_decay")) == i * 0.25, "double point %d: %g", i, json_real_value(hp(&s, i, "weight_decay")));
    if (rc == 1) search_free(&s), config_free(&base);

    rc = load_yaml("model_name_or_path: m\ndatasets: [d.jsonl]\nsearcher: {name: grid, metric: loss}\n"
                   "hyperparameters:\n  learning_rate: {type: log, minval: -7, maxval: -5, count: 3}\n"
                   "  adam_epsilon: {type: log, base: 2, minval: -10, maxval: -20, count: 1}\n",
                   &s, &base, &err);
    /* minval > maxval is an error even with count 1 */
    CHECK(rc < 0 && strstr(err.msg, "hyperparameters.adam_epsilon") && strstr(err.msg, "minval (-10) > maxval (-20)"), "%s", err.msg);
    rc = load_yaml("model_name_or_path: m\ndatasets: [d.jsonl]\nsearcher: {name: grid, metric: loss}\n"
                   "hyperparameters:\n  learning_rate: {type: log, minval: -7, maxval: -5, count: 3}\n"
                   "  adam_epsilon: {type: log, base: 2, minval: -20, maxval: -10, count: 1}\n",
                   &s, &base, &err);
    CHECK(rc == 1 && s.n_trials == 3, "log grid: %s", err.msg);
    for (int i = 0; rc == 1 && i < 3; i++) {
        CHECK(json_real_value(hp(&s, i, "learning_rate")) == pow(10, -7 + i), "log point %d: %g", i, json_real_value(hp(&s, i, "learning_rate")));
        CHECK(json_real_value(hp(&s, i, "adam_epsilon")) == pow(2, -15), "log count 1: the midpoint exponent");
    }
    if (rc == 1) search_free(&s), config_free(&base);

    /* int: rounding half away from zero, clamping count to the integers in range */
    rc = load_yaml("model_name_or_path: m\ndatasets: [d.jsonl]\nsearcher: {name: grid, metric: loss}\n"
                   "hyperparameters:\n  max_steps: {type: int, minval: 0, maxval: 5, count: 4}\n"
                   "  gradient_accumulation_steps: {type: int, minval: 1, maxval: 3, count: 10}\n"
                   "  per_device_train_batch_size: {type: int, minval: 2, maxval: 5, count: 1}\n",
                   &s, &base, &err);
    long want_steps[4] = {0, 2, 3, 5}; /* 0, 1.667, 3.333, 5 */
    CHECK(rc == 1 && s.n_trials == 12, "int grid: %d trials (4 x 3 x 1): %s", s.n_trials, err.msg);
    for (int i = 0; rc == 1 && i < 12; i++) {
        CHECK(json_integer_value(hp(&s, i, "max_steps")) == want_steps[i / 3], "trial %d max_steps %lld", i,
              (long long)json_integer_value(hp(&s, i, "max_steps")));
        CHECK(json_integer_value(hp(&s, i, "gradient_accumulation_steps")) == 1 + i % 3, "trial %d: the last hyperparameter varies fastest", i);
        CHECK(json_integer_value(hp(&s, i, "per_device_train_batch_size")) == 4, "int count 1: round(3.5) = 4");
    }
    if (rc == 1) search_free(&s), config_free(&base);

    /* categorical and constants; the pipeline's 3 x 3 grid in its order */
    rc = load_yaml("model_name_or_path: m\ndatasets: [d.jsonl]\nsearcher: {name: grid, metric: eval_loss}\n"
                   "hyperparameters:\n  beta: {type: categorical, vals: [0.1, 0.05, 0.01]}\n"
                   "  learning_rate: {type: categorical, vals: [1.0e-7, 5.0e-7, 5.0e-8]}\n"
                   "  loss_type: [sigmoid, sft]\n  warmup_steps: {type: const, val: 2}\n",
                   &s, &base, &err);
    CHECK(rc == 1 && s.n_trials == 9, "categorical grid: %s", err.msg);
    double betas[3] = {0.1, 0.05, 0.01}, lrs[3] = {1e-7, 5e-7, 5e-8};
    for (int i = 0; rc == 1 && i < 9; i++) {
        CHECK(json_real_value(hp(&s, i, "beta")) == betas[i / 3] && json_real_value(hp(&s, i, "learning_rate")) == lrs[i % 3],
              "trial %d: beta %g lr %g", i + 1, json_real_value(hp(&s, i, "beta")), json_real_value(hp(&s, i, "learning_rate")));
        CHECK(json_array_size(hp(&s, i, "loss_type")) == 2 && json_integer_value(hp(&s, i, "warmup_steps")) == 2, "constants");
    }
    if (rc == 1) {
        json_t *names = search_varied_names(&s);
        CHECK(json_array_size(names) == 2 && !strcmp(json_string_value(json_array_get(names, 1)), "learning_rate"), "varied names");
        json_decref(names);
        /* a trial's overrides, applied as --set applies them */
        char **kv;
        int n;
        CHECK(search_trial_sets(&s, 5, &base, &kv, &n, &err) == 0 && n == 4, "%s", err.msg);
        CHECK(n == 4 && !strcmp(kv[0], "beta=0.05") && !strcmp(kv[1], "learning_rate=5e-08") && !strcmp(kv[2], "loss_type=[\"sigmoid\",\"sft\"]") &&
                  !strcmp(kv[3], "warmup_steps=2"),
              "trial 6 sets: %s %s %s %s", n > 0 ? kv[0] : "", n > 1 ? kv[1] : "", n > 2 ? kv[2] : "", n > 3 ? kv[3] : "");
        for (int i = 0; i < n; i++) CHECK(config_set_arg(&base, kv[i], &err) == 0, "%s: %s", kv[i], err.msg);
        CHECK(base.beta == 0.05 && base.learning_rate == 5e-8 && base.n_loss_type == 2 && base.warmup_steps == 2, "applied");
        search_sets_free(kv, n);
        search_free(&s), config_free(&base);
    }
}

static void test_nested_group(void) {
    hone_search s;
    hone_train_config base;
    hone_error err;
    int rc = load_yaml("model_name_or_path: m\ndatasets: [d.jsonl]\nlr_scheduler_type: cosine_with_min_lr\n"
                       "lr_scheduler_kwargs: {min_lr: 1.0e-9, num_cycles: 0.5}\n"
                       "searcher: {name: grid, metric: loss}\n"
                       "hyperparameters:\n  lr_scheduler_kwargs:\n    min_lr: {type: categorical, vals: [1.0e-8, 1.0e-7]}\n",
                       &s, &base, &err);
    CHECK(rc == 1 && s.n_trials == 2 && !strcmp(s.hp[0].name, "lr_scheduler_kwargs.min_lr"), "nested: %s", err.msg);
    if (rc != 1) return;
    char **kv;
    int n;
    CHECK(search_trial_sets(&s, 1, &base, &kv, &n, &err) == 0 && n == 1, "%s", err.msg);
    if (n == 1) {
        CHECK(config_set_arg(&base, kv[0], &err) == 0, "%s: %s", kv[0], err.msg);
        CHECK(!strcmp(base.lr_scheduler_kwargs, "{\"min_lr\":1e-07,\"num_cycles\":0.5}"), "merged kwargs: %s", base.lr_scheduler_kwargs);
    }
    search_sets_free(kv, n);
    search_free(&s);
    config_free(&base);
}

static void test_random_determinism(void) {
    const char *yaml = "model_name_or_path: m\ndatasets: [d.jsonl]\nsearcher: {name: random, metric: loss, max_trials: 200, seed: %d}\n"
                       "hyperparameters:\n  beta: {type: double, minval: 0.01, maxval: 0.5}\n"
                       "  learning_rate: {type: log, minval: -8, maxval: -5}\n"
                       "  max_steps: {type: int, minval: 3, maxval: 5}\n"
                       "  loss_type: {type: categorical, vals: [sigmoid, ipo, hinge]}\n";
    char text[1024];
    hone_search a, b, c;
    hone_train_config ba, bb, bc;
    hone_error err;
    snprintf(text, sizeof text, yaml, 7);
    int ra = load_yaml(text, &a, &ba, &err), rb = load_yaml(text, &b, &bb, &err);
    snprintf(text, sizeof text, yaml, 8);
    int rc = load_yaml(text, &c, &bc, &err);
    CHECK(ra == 1 && rb == 1 && rc == 1 && a.n_trials == 200, "random: %s", err.msg);
    if (ra != 1 || rb != 1 || rc != 1) return;
    CHECK(json_equal(a.trials, b.trials), "the same seed drew other trials");
    CHECK(!json_equal(a.trials, c.trials), "another seed drew the same trials");
    int seen[3] = {0}, cats = 0;
    for (int t = 0; t < a.n_trials; t++) {
        double beta = json_real_value(hp(&a, t, "beta")), lr = json_real_value(hp(&a, t, "learning_rate"));
        long steps = (long)json_integer_value(hp(&a, t, "max_steps"));
        CHECK(beta >= 0.01 && beta < 0.5 && lr >= 1e-8 && lr < 1e-5 * (1 + 1e-12) && steps >= 3 && steps <= 5, "trial %d out of range", t);
        if (steps >= 3 && steps <= 5) seen[steps - 3] = 1;
        cats |= !strcmp(json_string_value(hp(&a, t, "loss_type")), "hinge");
    }
    CHECK(seen[0] && seen[1] && seen[2] && cats, "200 draws missed an int end or a category");
    search_free(&a), search_free(&b), search_free(&c);
    config_free(&ba), config_free(&bb), config_free(&bc);
    /* single: one trial, drawn as random draws it (Determined) */
    hone_search s;
    hone_train_config bs;
    CHECK(load_yaml("model_name_or_path: m\ndatasets: [d.jsonl]\nsearcher: {name: single, metric: loss}\nhyperparameters: {beta: 0.2}\n", &s,
                    &bs, &err) == 1 && s.n_trials == 1 && json_real_value(hp(&s, 0, "beta")) == 0.2,
          "single: %s", err.msg);
    search_free(&s), config_free(&bs);
}

static void test_bad_blocks(void) {
    static const struct { const char *blocks, *want1, *want2; } cases[] = {
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  beta: {type: categorical, vals: []}\n", "hyperparameters.beta.vals", "empty"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  beta: {type: categorial, vals: [1]}\n", "hyperparameters.beta.type",
         "did you mean 'categorical'"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  beta: {type: double, minval: 0, maxval: 1}\n", "hyperparameters.beta",
         "count is required by the grid searcher"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  beta: {type: double, minval: 0, count: 2}\n", "hyperparameters.beta",
         "minval and maxval are required"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  max_steps: {type: int, minval: 0.5, maxval: 3, count: 2}\n",
         "hyperparameters.max_steps.minval", "expected an integer"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  beta: {type: double, minval: 0, maxval: 1, count: 0}\n",
         "hyperparameters.beta.count", "must be in [1,"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  learning_rate: {type: log, minval: -7, maxval: -5, count: 2, base: 1}\n",
         "hyperparameters.learning_rate.base", "not 1"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  beta: {type: categorical, valz: [1]}\n", "hyperparameters.beta",
         "unknown key 'valz' (did you mean 'vals'?)"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  output_dir: {type: categorical, vals: [a, b]}\n",
         "hyperparameters.output_dir", "cannot be searched over"},
        {"searcher: {name: grid, metric: loss}\nhyperparameters:\n  lr_scheduler_kwargs: {a: {b: 1}}\n",
         "hyperparameters.lr_scheduler_kwargs", "nested more than one level"},
        {"searcher: {name: random, metric: loss}\nhyperparameters: {beta: 0.1}\n", "searcher.max_trials", "required by the random searcher"},
        {"searcher: {name: grid, metric: loss, max_trials: 3}\nhyperparameters: {beta: 0.1}\n", "searcher.max_trials",
         "only the random searcher"},
        {"searcher: {name: grid, metric: loss, max_concurent_trials: 2}\n", "searcher", "did you mean 'max_concurrent_trials'"},
        {"searcher: {name: grid, metric: loss, max_concurrent_trials: 0}\n", "searcher.max_concurrent_trials", "must be >= 1"},
        {"searcher: {name: grid}\n", "searcher.metric", "required"},
        {"searcher: {metric: loss}\n", "searcher.name", "required"},
        {"searcher: {name: asha, metric: loss}\n", "searcher.name", "unknown searcher 'asha'"},
        {"searcher: {name: grid, metric: loss, smaller_is_better: maybe}\n", "searcher.smaller_is_better", "true or false"},
        {"hyperparameters: {beta: 0.1}\n", "hyperparameters", "needs a searcher"},
        {"searcher: [grid]\n", "searcher", "expected a mapping"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml, "model_name_or_path: m\ndatasets: [d.jsonl]\n%s", cases[i].blocks);
        hone_search s;
        hone_train_config base;
        hone_error err = {{0}};
        int rc = load_yaml(yaml, &s, &base, &err);
        CHECK(rc == -1 && strstr(err.msg, cases[i].want1) && strstr(err.msg, cases[i].want2) && strstr(err.msg, "s.yaml:"),
              "case %zu: rc %d, message '%s' (want '%s' ... '%s' with file:line:col)", i, rc, err.msg, cases[i].want1, cases[i].want2);
        if (rc == 1) search_free(&s);
        if (rc >= 0) config_free(&base);
    }
}

static void test_rank_ties(void) {
    hone_trial_result r[5];
    memset(r, 0, sizeof r);
    double m[5] = {0.5, 0.3, 0.5, 0.1, 0.2};
    for (int i = 0; i < 5; i++) r[i].status = TRIAL_COMPLETED, r[i].has_metric = 1, r[i].metric = m[i];
    r[3].status = TRIAL_FAILED; /* a failed trial is not ranked, however good its metric */
    search_rank(r, 5, 1);
    CHECK(r[4].rank == 1 && r[1].rank == 2 && r[0].rank == 3 && r[2].rank == 4 && r[3].rank == 0, "smaller: %d %d %d %d %d", r[0].rank,
          r[1].rank, r[2].rank, r[3].rank, r[4].rank);
    search_rank(r, 5, 0);
    CHECK(r[0].rank == 1 && r[2].rank == 2 && r[1].rank == 3 && r[4].rank == 4, "larger: %d %d %d %d", r[0].rank, r[1].rank, r[2].rank,
          r[4].rank);
}

/* ---------- end to end ---------- */

static pid_t start(const char *log, const char *a1, const char *a2, const char *a3) {
    char *argv[] = {(char *)test_hone_bin(), (char *)a1, (char *)a2, (char *)a3, NULL};
    return test_spawn(argv, log);
}

static char g_root[256]; /* model/, sft/final, prefs.jsonl */

static const char *setup_root(void) {
    if (!test_hone_bin()) { test_skip("HONE_BIN is not set (make check sets it to the built hone)"); return NULL; }
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return NULL; }
    if (g_root[0]) return g_root;
    const char *r = test_tmpdir("search");
    char model[512], log[512], p[512];
    snprintf(model, sizeof model, "%s/model", r);
    snprintf(log, sizeof log, "%s/convert.log", r);
    char *args[] = {(char *)test_hone_bin(), "convert", "llama2c", (char *)bin, model, "--tokenizer", (char *)spm, NULL};
    if (test_wait(test_spawn(args, log), 60, NULL) != 0) { CHECK(0, "hone convert failed (%s)", log); return NULL; }
    snprintf(p, sizeof p, "%s/sft.jsonl", r);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 32; i++) fprintf(f, "{\"text\": \"Once upon a time, Lily saw %d cats. It was a happy day.\"}\n", i);
    fclose(f);
    snprintf(p, sizeof p, "%s/prefs.jsonl", r);
    f = fopen(p, "w");
    for (int i = 0; i < 24; i++) fprintf(f, "{\"prompt\": \"Once upon a time\", \"chosen\": \" Lily ran %d times.\", \"rejected\": \" zq %d xv.\"}\n", i, i);
    fclose(f);
    /* the short SFT the pipeline's DPO starts from */
    snprintf(p, sizeof p, "%s/sft.yaml", r);
    f = fopen(p, "w");
    fprintf(f, "model_name_or_path: %s\noutput_dir: %s/sft\nlearning_rate: 1.0e-3\nper_device_train_batch_size: 4\nmax_length: 24\n"
               "max_steps: 4\nlogging_steps: 1\nseed: 11\nthreads: 1\ngradient_checkpointing: false\nsave_strategy: \"no\"\n"
               "datasets: [{path: %s/sft.jsonl, format: text}]\n", model, r, r);
    fclose(f);
    snprintf(log, sizeof log, "%s/sft.log", r);
    if (test_wait(start(log, "sft", p, NULL), 120, NULL) != 0) { CHECK(0, "the SFT failed (%s)", log); return NULL; }
    snprintf(g_root, sizeof g_root, "%s", r);
    return g_root;
}

/* dir/dpo.yaml: the pipeline's grid into dir/out; k trials at a time; extra YAML */
static void write_grid(const char *dir, int k, const char *hps, char *yaml, size_t n) {
    snprintf(yaml, n, "%s/dpo.yaml", dir);
    FILE *f = fopen(yaml, "w");
    fprintf(f,
            "model_name_or_path: %s/sft/final\noutput_dir: %s/out\nper_device_train_batch_size: 4\nper_device_eval_batch_size: 4\n"
            "max_length: 16\nmax_steps: 4\nlogging_steps: 1\neval_strategy: steps\neval_steps: 2\ntest_size: 0.25\nsave_steps: 2\n"
            "seed: 11\nthreads: 1\ngradient_checkpointing: false\ndatasets: [{path: %s/prefs.jsonl}]\n"
            "searcher:\n  name: grid\n  metric: eval_loss\n  smaller_is_better: true\n  max_concurrent_trials: %d\n"
            "hyperparameters:\n%s",
            g_root, dir, g_root, k,
            hps ? hps : "  beta: {type: categorical, vals: [0.1, 0.05, 0.01]}\n  learning_rate: {type: categorical, vals: [1.0e-7, 5.0e-7, 5.0e-8]}\n");
    fclose(f);
}

/* metrics.jsonl without its timing field (tokens_per_second), as one JSON array */
static json_t *metrics_without_timing(const char *path) {
    json_t *a = json_array();
    FILE *f = fopen(path, "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        json_object_del(o, "tokens_per_second");
        json_array_append_new(a, o ? o : json_null());
    }
    if (f) fclose(f);
    return a;
}

/* the last eval_loss of a trial's metrics.jsonl as metrics.jsonl writes it (%.9g), and its last step */
static void trial_truth(const char *out, int t, char *metric, size_t n, long *steps) {
    char p[600];
    snprintf(p, sizeof p, "%s/trial-%03d/metrics.jsonl", out, t);
    json_t *a = metrics_without_timing(p);
    snprintf(metric, n, "-");
    *steps = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *o = json_array_get(a, i), *v = json_object_get(o, "eval_loss");
        if (json_is_number(v)) snprintf(metric, n, "%.9g", json_number_value(v));
        *steps = (long)json_integer_value(json_object_get(o, "step"));
    }
    json_decref(a);
}

/* the printed table against the trials' own metrics.jsonl: ranks in metric order, values and steps equal */
static void check_table(const char *log, const char *out, int n_trials) {
    FILE *f = fopen(log, "r");
    char line[1024];
    int rows = 0, header = 0;
    double prev = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "rank  trial", 11)) { header = 1; continue; }
        int rank = 0, t = 0;
        char beta[32], lr[32], metric[64], status[32];
        long steps;
        if (!header || sscanf(line, "%d trial-%d %31s %31s %63s %31s %ld", &rank, &t, beta, lr, metric, status, &steps) != 7) continue;
        rows++;
        char want[64];
        long want_steps;
        trial_truth(out, t, want, sizeof want, &want_steps);
        CHECK(rank == rows && !strcmp(metric, want) && steps == want_steps && !strcmp(status, "completed"),
              "table row %d: trial-%03d rank %d eval_loss %s steps %ld %s; its metrics.jsonl: eval_loss %s steps %ld", rows, t, rank, metric,
              steps, status, want, want_steps);
        CHECK(atof(metric) >= prev, "table row %d: eval_loss %s below the row above (%g)", rows, metric, prev);
        prev = atof(metric);
    }
    if (f) fclose(f);
    CHECK(rows == n_trials, "%s: %d ranked rows, want %d", log, rows, n_trials);
}

static void test_pipeline_grid_interrupted_resumed(void) {
    if (!setup_root()) return;
    const char *a = test_tmpdir("search-full"), *b = test_tmpdir("search-stop");
    char ya[600], yb[600], la[600], lb[700], lb2[700], outa[600], outb[600], p[700];
    write_grid(a, 1, NULL, ya, sizeof ya);
    write_grid(b, 2, NULL, yb, sizeof yb);
    snprintf(la, sizeof la, "%s/search.log", a);
    snprintf(lb, sizeof lb, "%s/search.log", b);
    snprintf(lb2, sizeof lb2, "%s/resumed.log", b);
    snprintf(outa, sizeof outa, "%s/out", a);
    snprintf(outb, sizeof outb, "%s/out", b);
    double took;
    int rc = test_wait(start(la, "dpo", ya, NULL), 300, &took);
    CHECK(rc == 0, "the uninterrupted search: exit %d (%s)", rc, la);
    fprintf(stderr, "    9-trial grid, 1 at a time: %.1f s\n", took);
    check_table(la, outa, 9);

    /* 2 at a time, SIGTERM once the fourth trial runs, then the same command again */
    pid_t pid = start(lb, "dpo", yb, NULL);
    snprintf(p, sizeof p, "%s/trial-004/manifest.json", outb);
    for (int i = 0; i < 6000 && !hone_file_exists(p); i++) usleep(10000);
    usleep(200000);
    kill(pid, SIGTERM);
    rc = test_wait(pid, 120, NULL);
    CHECK(rc == 143, "the stopped search: exit %d, want 143 (%s)", rc, lb);
    json_error_t je;
    snprintf(p, sizeof p, "%s/experiment.json", outb);
    json_t *e = json_load_file(p, 0, &je);
    int done = 0, pending = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(e, "trials")); i++) {
        const char *st = json_string_value(json_object_get(json_array_get(json_object_get(e, "trials"), i), "status"));
        done += st && !strcmp(st, "completed");
        pending += st && !strcmp(st, "pending");
    }
    CHECK(e && !strcmp(json_string_value(json_object_get(e, "status")), "stopped") && done >= 2 && done < 9 && pending >= 1,
          "after SIGTERM: status %s, %d completed, %d pending", e ? json_string_value(json_object_get(e, "status")) : je.text, done, pending);
    json_decref(e);
    rc = test_wait(start(lb2, "dpo", yb, NULL), 300, &took);
    CHECK(rc == 0, "the resumed search: exit %d (%s)", rc, lb2);
    fprintf(stderr, "    resumed after %d completed trials, 2 at a time: %.1f s\n", done, took);
    check_table(lb2, outb, 9);

    /* bitwise: final weights and every logged value (timing aside) of every trial */
    for (int t = 1; t <= 9; t++) {
        char wa[700], wb[700];
        snprintf(wa, sizeof wa, "%s/trial-%03d/final/model.safetensors", outa, t);
        snprintf(wb, sizeof wb, "%s/trial-%03d/final/model.safetensors", outb, t);
        CHECK(test_files_equal(wa, wb), "trial-%03d: final weights differ between the uninterrupted and the resumed search", t);
        snprintf(wa, sizeof wa, "%s/trial-%03d/metrics.jsonl", outa, t);
        snprintf(wb, sizeof wb, "%s/trial-%03d/metrics.jsonl", outb, t);
        json_t *ma = metrics_without_timing(wa), *mb = metrics_without_timing(wb);
        CHECK(json_array_size(ma) > 4 && json_equal(ma, mb), "trial-%03d: metrics.jsonl differs (%zu vs %zu lines)", t, json_array_size(ma),
              json_array_size(mb));
        json_decref(ma);
        json_decref(mb);
    }
    /* the same ranking, metrics and steps in both experiment.json */
    snprintf(p, sizeof p, "%s/experiment.json", outa);
    json_t *ea = json_load_file(p, 0, &je);
    snprintf(p, sizeof p, "%s/experiment.json", outb);
    json_t *eb = json_load_file(p, 0, &je);
    CHECK(ea && eb && !strcmp(json_string_value(json_object_get(ea, "status")), "completed") &&
              json_integer_value(json_object_get(ea, "version")) == 1,
          "experiment.json");
    for (int t = 0; ea && eb && t < 9; t++) {
        json_t *x = json_array_get(json_object_get(ea, "trials"), (size_t)t), *y = json_array_get(json_object_get(eb, "trials"), (size_t)t);
        static const char *const keys[] = {"rank", "metric", "steps", "hyperparameters", "status"};
        for (int k = 0; k < 5; k++)
            CHECK(json_equal(json_object_get(x, keys[k]), json_object_get(y, keys[k])), "trial-%03d: experiment.json %s differs", t + 1, keys[k]);
    }
    json_decref(ea);
    json_decref(eb);

    /* again: nothing left to run; with another base configuration: refused, naming the key */
    char *text = NULL;
    rc = test_wait(start(lb2, "dpo", yb, NULL), 60, NULL);
    hone_read_file(lb2, &text, NULL, NULL);
    CHECK(rc == 0 && text && strstr(text, "(9 completed earlier)") && !strstr(text, "started"), "a finished search run again: exit %d: %s", rc,
          text ? text : "");
    free(text);
    text = NULL;
    rc = test_wait(start(lb2, "dpo", yb, "--set=max_steps=5"), 60, NULL);
    hone_read_file(lb2, &text, NULL, NULL);
    CHECK(rc == 1 && text && strstr(text, "trial-001 completed with another configuration (max_steps differ)"), "another max_steps: exit %d: %s",
          rc, text ? text : "");
    free(text);
}

static void test_failed_trial_others_go_on(void) {
    if (!setup_root()) return;
    const char *d = test_tmpdir("search-fail");
    char y[600], log[600], p[700];
    /* a data file that does not exist for one trial: it fails when it loads, the other completes */
    char hps[1024];
    snprintf(hps, sizeof hps, "  datasets: {type: categorical, vals: [[{path: %s/prefs.jsonl}], [{path: %s/missing.jsonl}]]}\n", g_root, g_root);
    write_grid(d, 1, hps, y, sizeof y);
    snprintf(log, sizeof log, "%s/search.log", d);
    int rc = test_wait(start(log, "dpo", y, NULL), 120, NULL);
    CHECK(rc == 1, "a search with a failed trial: exit %d, want 1 (%s)", rc, log);
    snprintf(p, sizeof p, "%s/out/experiment.json", d);
    json_error_t je;
    json_t *e = json_load_file(p, 0, &je), *tr = json_object_get(e, "trials");
    json_t *t1 = json_array_get(tr, 0), *t2 = json_array_get(tr, 1);
    CHECK(e && !strcmp(json_string_value(json_object_get(e, "status")), "failed"), "experiment status");
    CHECK(t1 && !strcmp(json_string_value(json_object_get(t1, "status")), "completed") && json_integer_value(json_object_get(t1, "rank")) == 1,
          "trial-001 should complete and rank 1");
    const char *msg = t2 ? json_string_value(json_object_get(t2, "error")) : NULL;
    CHECK(t2 && !strcmp(json_string_value(json_object_get(t2, "status")), "failed") && msg && strstr(msg, "missing.jsonl") &&
              json_is_null(json_object_get(t2, "rank")),
          "trial-002: status %s, error %s", t2 ? json_string_value(json_object_get(t2, "status")) : "?", msg ? msg : "null");
    json_decref(e);
    /* a value --set would refuse stops the search before any trial runs, naming trial and key */
    write_grid(d, 1, "  beta: {type: categorical, vals: [0.1, high]}\n", y, sizeof y);
    rc = test_wait(start(log, "dpo", y, NULL), 60, NULL);
    char *text = NULL;
    hone_read_file(log, &text, NULL, NULL);
    CHECK(rc == 1 && text && strstr(text, "trial-002") && strstr(text, "hyperparameters.beta") && strstr(text, "expected a number"),
          "a bad value: exit %d, log: %s", rc, text ? text : "");
    free(text);
}

/* hone sft with a random searcher: an int, a log value and a nested lr_scheduler_kwargs entry reach
 * each trial's resolved configuration (hone_config.json) exactly as experiment.json lists them */
static void test_sft_random_nested(void) {
    if (!setup_root()) return;
    const char *d = test_tmpdir("search-sft");
    char y[600], log[600], p[700];
    snprintf(y, sizeof y, "%s/sft.yaml", d);
    FILE *f = fopen(y, "w");
    fprintf(f, "model_name_or_path: %s/model\noutput_dir: %s/out\nper_device_train_batch_size: 4\nmax_length: 24\nlogging_steps: 1\n"
               "seed: 11\nthreads: 1\ngradient_checkpointing: false\nsave_strategy: \"no\"\nlr_scheduler_type: cosine_with_min_lr\n"
               "lr_scheduler_kwargs: {num_cycles: 0.5, min_lr: 1.0e-9}\ndatasets: [{path: %s/sft.jsonl, format: text}]\n"
               "searcher: {name: random, metric: loss, max_trials: 2, seed: 5}\n"
               "hyperparameters:\n  max_steps: {type: int, minval: 2, maxval: 4}\n  learning_rate: {type: log, minval: -4, maxval: -2}\n"
               "  lr_scheduler_kwargs:\n    min_lr: {type: categorical, vals: [1.0e-6, 1.0e-5]}\n",
            g_root, d, g_root);
    fclose(f);
    snprintf(log, sizeof log, "%s/search.log", d);
    int rc = test_wait(start(log, "sft", y, NULL), 120, NULL);
    CHECK(rc == 0, "the SFT search: exit %d (%s)", rc, log);
    snprintf(p, sizeof p, "%s/out/experiment.json", d);
    json_error_t je;
    json_t *e = json_load_file(p, 0, &je), *tr = json_object_get(e, "trials");
    CHECK(json_array_size(tr) == 2 && !strcmp(json_string_value(json_object_get(e, "command")), "sft"), "experiment.json: %s", e ? "" : je.text);
    for (size_t t = 0; t < json_array_size(tr); t++) {
        json_t *h = json_object_get(json_array_get(tr, t), "hyperparameters");
        snprintf(p, sizeof p, "%s/out/trial-%03zu/hone_config.json", d, t + 1);
        json_t *c = json_load_file(p, 0, &je), *kw = json_object_get(c, "lr_scheduler_kwargs");
        double want_min_lr = json_real_value(json_object_get(json_object_get(h, "lr_scheduler_kwargs"), "min_lr"));
        CHECK(c && json_equal(json_object_get(c, "max_steps"), json_object_get(h, "max_steps")) &&
                  json_real_value(json_object_get(c, "learning_rate")) == json_real_value(json_object_get(h, "learning_rate")) &&
                  json_real_value(json_object_get(kw, "min_lr")) == want_min_lr && json_real_value(json_object_get(kw, "num_cycles")) == 0.5,
              "trial-%03zu: its hone_config.json does not hold its hyperparameters", t + 1);
        CHECK(json_integer_value(json_object_get(json_array_get(tr, t), "steps")) == json_integer_value(json_object_get(h, "max_steps")),
              "trial-%03zu: ran %lld steps", t + 1, (long long)json_integer_value(json_object_get(json_array_get(tr, t), "steps")));
        json_decref(c);
    }
    json_decref(e);
}

int main(void) {
    TEST_RUN(test_grid_spacing);
    TEST_RUN(test_nested_group);
    TEST_RUN(test_random_determinism);
    TEST_RUN(test_bad_blocks);
    TEST_RUN(test_rank_ties);
    TEST_RUN(test_pipeline_grid_interrupted_resumed);
    TEST_RUN(test_failed_trial_others_go_on);
    TEST_RUN(test_sft_random_nested);
    return test_finish();
}
