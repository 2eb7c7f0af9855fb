/* test_schedule.c — the learning-rate schedules (src/train/schedule.c) against transformers'
 * get_scheduler (tests/fixtures/schedule/schedules.json, written by
 * tests/reference/schedule_ref.py): every lr_scheduler_type with and without
 * lr_scheduler_kwargs, 24 steps each (past the end too), and reduce_lr_on_plateau fed a
 * fixed metric sequence. Tolerance: 1e-15 relative (the lambdas are computed in Python's
 * order of operations on doubles; the worst difference seen is printed). Also the
 * configuration side: lr_scheduler_kwargs as a YAML mapping, as JSON text and through
 * --set, and the errors for unknown or missing parameters. */
#include "test.h"
#include "train/schedule.h"
#include "train/train.h"
#include "train/train_config.h"
#include "base/util.h"
#include "simd/kernels.h"
#include <unistd.h>
#include <jansson.h>

static json_t *fixture(void) {
    json_error_t je;
    json_t *j = json_load_file(test_src("tests/fixtures/schedule/schedules.json"), 0, &je);
    CHECK(j != NULL, "schedules.json: %s", je.text);
    return j;
}

static double worst;

static void check_lr(double got, double want, const char *what, int step) {
    double d = fabs(got - want), rel = want != 0 ? d / fabs(want) : d;
    if (rel > worst) worst = rel;
    CHECK(d <= 1e-15 * fabs(want) + 1e-300, "%s step %d: got %.17g want %.17g", what, step, got, want);
}

static void test_every_schedule(void) {
    json_t *j = fixture();
    if (!j) return;
    double base = json_number_value(json_object_get(j, "base_lr"));
    long total = (long)json_integer_value(json_object_get(j, "total"));
    json_t *cases = json_object_get(j, "cases"), *c;
    size_t i;
    int n = 0;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        char *kw = json_dumps(json_object_get(c, "kwargs"), JSON_COMPACT);
        hone_error err = {0};
        int kind = sched_from_name(name, &err);
        CHECK(kind >= 0, "%s", err.msg);
        hone_sched s;
        sched_init(&s, kind, base, (long)json_integer_value(json_object_get(c, "warmup")), total);
        CHECK(sched_set_kwargs(&s, kw, base, &err) == 0, "%s %s: %s", name, kw, err.msg);
        char what[256];
        snprintf(what, sizeof what, "%s %s warmup %lld", name, kw, (long long)json_integer_value(json_object_get(c, "warmup")));
        json_t *lrs = json_object_get(c, "lrs"), *v;
        size_t k;
        json_array_foreach(lrs, k, v) check_lr(sched_lr(&s, base, (long)k), json_number_value(v), what, (int)k);
        free(kw);
        n++;
    }
    CHECK(n >= 20, "only %d schedules in the fixture", n);
    json_t *pl = json_object_get(j, "plateau"), *metrics = json_object_get(pl, "metrics");
    json_array_foreach(json_object_get(pl, "cases"), i, c) {
        char *kw = json_dumps(json_object_get(c, "kwargs"), JSON_COMPACT);
        hone_error err = {0};
        hone_sched s;
        sched_init(&s, HONE_SCHED_PLATEAU, base, 0, total);
        CHECK(sched_set_kwargs(&s, kw, base, &err) == 0, "plateau %s: %s", kw, err.msg);
        json_t *lrs = json_object_get(c, "lrs"), *v;
        size_t k;
        int changed = 0;
        json_array_foreach(lrs, k, v) {
            sched_plateau_step(&s, json_number_value(json_array_get(metrics, k)));
            check_lr(sched_lr(&s, base, 0), json_number_value(v), kw, (int)k);
            changed |= json_number_value(v) != base;
        }
        CHECK(changed, "plateau case %s never lowers the rate: the fixture tests nothing", kw);
        free(kw);
    }
    printf("    %d schedules + %zu plateau cases, worst relative difference %.3g (limit 1e-15)\n", n,
           json_array_size(json_object_get(pl, "cases")), worst);
    json_decref(j);
}

static void test_kwargs_errors(void) {
    static const struct { const char *name, *kw, *msg; } bad[] = {
        {"cosine", "{\"num_cycle\": 1}", "'num_cycle' is not a parameter of cosine"},
        {"linear", "{\"num_cycles\": 1}", "is not a parameter of linear (it takes none)"},
        {"cosine_with_min_lr", "{}", "needs min_lr or min_lr_rate"},
        {"cosine_with_min_lr", "{\"min_lr\": 1e-5, \"min_lr_rate\": 0.1}", "only one of min_lr and min_lr_rate"},
        {"warmup_stable_decay", "{}", "needs num_decay_steps"},
        {"warmup_stable_decay", "{\"num_decay_steps\": 3, \"decay_type\": \"exp\"}", "'exp' is not one of linear, cosine, 1-sqrt"},
        {"polynomial", "{\"lr_end\": 0.01}", "must be smaller than learning_rate"},
        {"cosine_with_restarts", "{\"num_cycles\": 1.5}", "expected an integer"},
        {"reduce_lr_on_plateau", "{\"factor\": 1.0}", "should be < 1.0"},
        {"reduce_lr_on_plateau", "{\"mode\": \"up\"}", "'up' is not min or max"},
        {"cosine", "[1, 2]", "expected a mapping"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hone_error err = {0};
        hone_sched s;
        sched_init(&s, sched_from_name(bad[i].name, &err), 1e-3, 2, 10);
        CHECK(sched_set_kwargs(&s, bad[i].kw, 1e-3, &err) < 0 && strstr(err.msg, bad[i].msg), "%s %s: got '%s', want '%s'",
              bad[i].name, bad[i].kw, err.msg, bad[i].msg);
    }
    hone_error err = {0};
    CHECK(sched_from_name("cosine_annealing", &err) < 0 && strstr(err.msg, "warmup_stable_decay"), "%s", err.msg);
    CHECK(sched_from_name("greedy", &err) < 0 && strstr(err.msg, "not supported"), "%s", err.msg);
}

static void test_config_kwargs(void) {
    hone_train_config c;
    hone_error err = {0};
    const char *yaml = "model_name_or_path: m\nlr_scheduler_type: warmup_stable_decay\n"
                       "lr_scheduler_kwargs:\n  num_decay_steps: 5\n  decay_type: '1-sqrt'\n  min_lr_ratio: 0.1\n"
                       "datasets:\n  - path: a.jsonl\n";
    CHECK(config_load_string(&c, yaml, "t.yaml", HONE_SFT, &err) == 0, "%s", err.msg);
    CHECK(c.lr_scheduler_kwargs && !strcmp(c.lr_scheduler_kwargs, "{\"decay_type\":\"1-sqrt\",\"min_lr_ratio\":0.1,\"num_decay_steps\":5}"),
          "kwargs as JSON: %s", c.lr_scheduler_kwargs ? c.lr_scheduler_kwargs : "(null)");
    hone_sched s;
    sched_init(&s, HONE_SCHED_WSD, 1e-3, 2, 20);
    CHECK(sched_set_kwargs(&s, c.lr_scheduler_kwargs, 1e-3, &err) == 0 && s.num_decay_steps == 5 && s.decay_type == HONE_WSD_1SQRT &&
              s.min_lr_ratio == 0.1 && s.num_stable_steps == 13, "%s", err.msg);
    /* --set, flow mapping and JSON text forms */
    CHECK(config_set_arg(&c, "lr_scheduler_kwargs={num_cycles: 2}", &err) == 0 && !strcmp(c.lr_scheduler_kwargs, "{\"num_cycles\":2}"),
          "--set mapping: %s %s", err.msg, c.lr_scheduler_kwargs);
    CHECK(config_set_arg(&c, "lr_scheduler_kwargs='{\"min_lr\": 1e-6}'", &err) == 0 && !strcmp(c.lr_scheduler_kwargs, "{\"min_lr\":1e-06}"),
          "--set JSON text: %s %s", err.msg, c.lr_scheduler_kwargs);
    CHECK(config_set_arg(&c, "lr_scheduler_kwargs=[1]", &err) < 0 && strstr(err.msg, "lr_scheduler_kwargs"), "%s", err.msg);
    CHECK(config_set_arg(&c, "lr_scheduler_type=cosine_with_min_lr", &err) == 0, "%s", err.msg);
    CHECK(config_set_arg(&c, "lr_scheduler_type=cosine_annealing", &err) < 0, "unknown schedule accepted");
    /* reduce_lr_on_plateau needs evaluations, as transformers says */
    CHECK(config_set_arg(&c, "lr_scheduler_type=reduce_lr_on_plateau", &err) == 0, "%s", err.msg);
    CHECK(config_validate(&c, &err) < 0 && strstr(err.msg, "needs evaluations"), "%s", err.msg);
    CHECK(config_set_arg(&c, "eval_strategy=steps", &err) == 0 && config_validate(&c, &err) == 0, "%s", err.msg);
    config_free(&c);
}

/* The trainer's side of reduce_lr_on_plateau: evaluations step it through the configured
 * metric (eval_ prefixed), the evaluation before training does not, and its state
 * survives a checkpoint bit for bit. */
static void test_plateau_in_trainer(void) {
    hone_model m;
    hone_error err = {0};
    if (model_load(&m, test_src("tests/fixtures/models/tiny-llama"), 0, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    char dir[] = "/tmp/hone-test-sched-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    hone_trainer t;
    CHECK(trainer_init(&t, &m, dir, NULL, 1e-3, HONE_SCHED_PLATEAU, 0, 100, 0.9, 0.999, 1e-8, 0.0, 1.0, &err) == 0, "%s", err.msg);
    CHECK(sched_set_kwargs(&t.sched, "{\"patience\": 1, \"factor\": 0.5}", 1e-3, &err) == 0, "%s", err.msg);
    snprintf(t.plateau_metric, sizeof t.plateau_metric, "eval_loss");
    const char *keys[2] = {"eval_mean_token_accuracy", "eval_loss"};
    double worse[2] = {0.5, 3.0}, better[2] = {0.6, 2.0}, flat[2] = {0.6, 2.5};
    trainer_eval_done(&t, keys, better, 2);
    trainer_eval_done(&t, keys, flat, 2);
    CHECK(trainer_lr_at(&t, 5) == 1e-3, "one bad evaluation within patience 1: lr %g", trainer_lr_at(&t, 5));
    trainer_eval_done(&t, keys, worse, 2);
    CHECK(trainer_lr_at(&t, 5) == 5e-4, "two bad evaluations: lr %g, want 5e-4", trainer_lr_at(&t, 5));
    t.step = 3;
    CHECK(trainer_save_checkpoint(&t, &err) == 0, "%s", err.msg);
    hone_trainer u;
    CHECK(trainer_init(&u, &m, dir, NULL, 1e-3, HONE_SCHED_PLATEAU, 0, 100, 0.9, 0.999, 1e-8, 0.0, 1.0, &err) == 0, "%s", err.msg);
    CHECK(sched_set_kwargs(&u.sched, "{\"patience\": 1, \"factor\": 0.5}", 1e-3, &err) == 0, "%s", err.msg);
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/checkpoint-3", dir);
    CHECK(trainer_load_checkpoint(&u, ck, NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(u.sched.cur_lr == t.sched.cur_lr && u.sched.best == t.sched.best && u.sched.num_bad == t.sched.num_bad &&
              u.sched.cooldown_counter == t.sched.cooldown_counter && u.sched.evals == 3,
          "resumed plateau state: lr %g best %g bad %ld evals %ld", u.sched.cur_lr, u.sched.best, u.sched.num_bad, u.sched.evals);
    trainer_free(&u);
    trainer_free(&t);
    hone_remove_tree(dir, NULL);
    model_free(&m);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_every_schedule);
    TEST_RUN(test_kwargs_errors);
    TEST_RUN(test_config_kwargs);
    TEST_RUN(test_plateau_in_trainer);
    return test_finish();
}
