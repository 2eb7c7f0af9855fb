/* test_sft_options.c — SFT options whose numbers TRL cannot fix bit for bit, and the
 * configuration side of the SFTConfig options (the TRL parity of loss_type dft,
 * label_smoothing_factor and logging_first_step is in test_trl.c).
 *   NEFTune (neftune_noise_alpha): the noise on the embeddings is uniform within
 *   alpha / sqrt(T * C) (times Gemma-style embedding scale when present: none for this
 *   model), its mean |noise| is half of that within 3%, evaluation sees none, and a run is
 *   bitwise the same at 1 and 2 threads and different from a run without noise.
 *   eos_token: text rows end with its id instead of the tokenizer's EOS (stories260K:
 *   <unk> = 0 instead of </s> = 2); a token outside the vocabulary is an error naming it.
 *   chat_template_path: a Jinja file, or a tokenizer directory, replaces chat_template.
 *   Keys: SFT's loss_type (nll | dft) next to DPO's list-valued loss_type,
 *   label_smoothing_factor / neftune_noise_alpha only for sft, their ranges. */
#include "simd/kernels.h"
#include "train/sft.h"
#include "train/train_config.h"
#include "train/pipeline.h"
#include "model/convert.h"
#include "test.h"
#include "base/util.h"
#include <jansson.h>
#include <omp.h>

static hone_tok_example *make_examples(int n) {
    hone_tok_example *ex = calloc(n, sizeof *ex);
    for (int i = 0; i < n; i++) {
        int len = 8 + i % 9;
        ex[i].n = len;
        ex[i].ids = malloc(sizeof(int32_t) * len);
        ex[i].mask = malloc(len);
        for (int j = 0; j < len; j++) { ex[i].ids[j] = 3 + (i * 7 + j * 3) % 250; ex[i].mask[j] = j >= 2; }
    }
    return ex;
}
static void free_examples(hone_tok_example *ex, int n) {
    for (int i = 0; i < n; i++) { free(ex[i].ids); free(ex[i].mask); }
    free(ex);
}

static void test_neftune_noise(void) {
    hone_model m;
    hone_error err = {0};
    if (model_load(&m, test_src("tests/fixtures/models/tiny-llama"), 0, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    int B = 2, T = 16, C = m.cfg.hidden_size, N = B * T;
    hone_batch b;
    batch_alloc(&b, B, T);
    int32_t toks[16];
    batch_reset(&b, 0);
    for (int r = 0; r < B; r++) {
        for (int t = 0; t < T; t++) toks[t] = 3 + (r * T + t) * 11 % 200;
        batch_put_doc(&b, r, 0, toks, T, 0, NULL);
    }
    hone_acts plain, noisy, ev;
    CHECK(acts_init(&plain, &m.cfg, B, T, 1, 0, &err) == 0 && acts_init(&noisy, &m.cfg, B, T, 1, 0, &err) == 0 &&
              acts_init(&ev, &m.cfg, B, T, 0, 0, &err) == 0, "%s", err.msg);
    noisy.neftune_alpha = ev.neftune_alpha = 5.0f;
    noisy.neftune_seed = ev.neftune_seed = 7;
    model_forward(&m, &plain, &b);
    model_forward(&m, &noisy, &b);
    model_forward(&m, &ev, &b);
    double mag = 5.0 / sqrt((double)T * C), sum = 0, mx = 0;
    for (size_t i = 0; i < (size_t)N * C; i++) {
        double d = fabs((double)noisy.layers[0].x[i] - plain.layers[0].x[i]);
        sum += d;
        if (d > mx) mx = d;
    }
    double mean = sum / ((double)N * C);
    CHECK(mx <= mag * (1 + 1e-5), "noise %g exceeds alpha/sqrt(T*C) = %g", mx, mag);
    CHECK(fabs(mean - mag / 2) <= 0.03 * mag / 2, "mean |noise| %g, want %g (uniform in +-%g) within 3%%", mean, mag / 2, mag);
    /* evaluation (acts without training buffers) adds nothing */
    int same = 1;
    for (size_t i = 0; i < (size_t)N * C; i++) same &= ev.xf[i] == plain.xf[i];
    CHECK(same, "evaluation forward was changed by neftune_noise_alpha");
    printf("    max |noise| %.4g, mean %.4g (bound %.4g)\n", mx, mean, mag);
    acts_free(&plain);
    acts_free(&noisy);
    acts_free(&ev);
    batch_free(&b);
    model_free(&m);
}

/* trains tiny-llama 3 steps with the given alpha and thread count; returns its weights */
static float *train(double alpha, int threads, size_t *nf) {
    hone_model m;
    hone_error err = {0};
    if (model_load(&m, test_src("tests/fixtures/models/tiny-llama"), 0, &err) < 0) { CHECK(0, "%s", err.msg); return NULL; }
    int n = 24;
    hone_tok_example *ex = make_examples(n);
    sft_opts o = {.batch_size = 4, .eval_batch_size = 4, .accum = 2, .max_length = 24, .shuffle = 1, .seed = 3, .epochs = 1,
                  .max_steps = 3, .logging_steps = 1, .pad_id = 0, .quiet = 1, .neftune_alpha = alpha};
    hone_trainer t;
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    CHECK(trainer_init(&t, &m, NULL, NULL, 1e-2, HONE_SCHED_CONSTANT, 0, 3, 0.9, 0.999, 1e-8, 0.0, 1.0, &err) == 0, "%s", err.msg);
    CHECK(sft_train(&t, &o, ex, n, NULL, 0, &err) == 0, "%s", err.msg);
    omp_set_num_threads(saved);
    trainer_free(&t);
    *nf = m.num_floats;
    float *w = malloc(sizeof(float) * m.num_floats);
    memcpy(w, m.data, sizeof(float) * m.num_floats);
    free_examples(ex, n);
    model_free(&m);
    return w;
}

static void test_neftune_training(void) {
    size_t n1, n2, n3;
    float *a = train(5.0, 1, &n1), *b = train(5.0, 2, &n2), *c = train(0, 2, &n3);
    if (!a || !b || !c) { free(a); free(b); free(c); return; }
    CHECK(!memcmp(a, b, sizeof(float) * n1), "NEFTune run differs between 1 and 2 threads");
    CHECK(memcmp(a, c, sizeof(float) * n1), "NEFTune run equals the run without noise");
    free(a); free(b); free(c);
}

/* The step count comes from the rows the packing strategy makes: 24 examples of 8..16
 * tokens are ceil(total / 32) wrapped rows of 32, and 24 BFD rows when each is cut to 12
 * (no two fit); splitting the overflow into fragments never needs fewer rows. */
static void test_training_rows(void) {
    hone_tok_example *ex = make_examples(24);
    hone_error err = {0};
    long tot = 0, rows = 0;
    for (int i = 0; i < 24; i++) tot += ex[i].n;
    sft_opts o = {.packing = 1, .max_length = 32, .packing_strategy = SFT_PACK_WRAPPED};
    CHECK(sft_training_rows(&o, ex, 24, &rows, NULL, &err) == 0 && rows == (tot + 31) / 32, "wrapped: %ld rows of %ld tokens", rows, tot);
    o.max_length = 12;
    o.packing_strategy = SFT_PACK_BFD;
    long bfd = 0, split = 0;
    CHECK(sft_training_rows(&o, ex, 24, &bfd, NULL, &err) == 0 && bfd == 24, "bfd at 12: %ld rows", bfd);
    o.packing_strategy = SFT_PACK_BFD_SPLIT;
    CHECK(sft_training_rows(&o, ex, 24, &split, NULL, &err) == 0 && split >= bfd, "bfd_split at 12: %ld rows (bfd %ld)", split, bfd);
    free_examples(ex, 24);
}

static void test_option_keys(void) {
    hone_train_config c;
    hone_error err = {0};
    CHECK(config_defaults(&c, HONE_SFT, &err) == 0 && !strcmp(c.sft_loss_type, "nll") && c.label_smoothing_factor == 0 &&
              c.neftune_noise_alpha == -1 && !c.logging_first_step, "SFT defaults");
    CHECK(config_set_arg(&c, "loss_type=dft", &err) == 0 && !strcmp(c.sft_loss_type, "dft"), "%s", err.msg);
    CHECK(config_set_arg(&c, "loss_type=sigmoid", &err) < 0 && strstr(err.msg, "nll"), "sft loss_type sigmoid: %s", err.msg);
    CHECK(config_set_arg(&c, "label_smoothing_factor=0.1", &err) == 0, "%s", err.msg);
    CHECK(config_set_arg(&c, "model_name_or_path=m", &err) == 0 && config_set_arg(&c, "datasets=[{path: a.jsonl}]", &err) == 0, "%s", err.msg);
    CHECK(config_validate(&c, &err) < 0 && strstr(err.msg, "no effect with loss_type dft"), "%s", err.msg);
    CHECK(config_set_arg(&c, "loss_type=nll", &err) == 0 && config_validate(&c, &err) == 0, "%s", err.msg);
    CHECK(config_set_arg(&c, "label_smoothing_factor=1.5", &err) == 0 && config_validate(&c, &err) < 0 &&
              strstr(err.msg, "label_smoothing_factor"), "%s", err.msg);
    CHECK(config_set_arg(&c, "neftune_noise_alpha=5", &err) == 0 && c.neftune_noise_alpha == 5, "%s", err.msg);
    CHECK(config_set_arg(&c, "logging_first_step=true", &err) == 0 && c.logging_first_step == 1, "%s", err.msg);
    config_free(&c);
    CHECK(config_defaults(&c, HONE_DPO, &err) == 0, "%s", err.msg);
    CHECK(config_set_arg(&c, "loss_type=[sigmoid, sft]", &err) == 0 && c.n_loss_type == 2, "DPO loss_type list: %s", err.msg);
    CHECK(config_set_arg(&c, "label_smoothing_factor=0.1", &err) < 0 && strstr(err.msg, "is for hone sft"), "%s", err.msg);
    CHECK(config_set_arg(&c, "logging_first_step=true", &err) == 0, "%s", err.msg);
    config_free(&c);
}

/* stories260K as a Hugging Face directory under dir/model; 0 when ../shared is absent */
static int stories_dir(const char *dir, char *mdir, size_t n) {
    const char *bin = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return 0; }
    hone_model m;
    hone_error err = {0};
    snprintf(mdir, n, "%s/model", dir);
    if (convert_llama2c_load(&m, bin, &err) < 0) { CHECK(0, "%s", err.msg); return 0; }
    int rc = model_save(&m, mdir, NULL, &err);
    model_free(&m);
    if (rc < 0 || spm_convert(spm, mdir, &err) < 0) { CHECK(0, "%s", err.msg); return 0; }
    return 1;
}

/* the last id of the first training example of a text-format run, or -1 on error (err) */
static int last_id(const char *dir, const char *mdir, const char *extra, hone_error *err) {
    char yaml[4096], data[1100];
    snprintf(data, sizeof data, "%s/rows.jsonl", dir);
    FILE *f = fopen(data, "w");
    fputs("{\"text\": \"Lily had a red ball.\"}\n{\"text\": \"Tom saw a big tree.\"}\n", f);
    fclose(f);
    snprintf(yaml, sizeof yaml, "model_name_or_path: '%s'\noutput_dir: '%s/out'\ndatasets:\n  - {path: '%s', format: text}\n%s", mdir, dir,
             data, extra);
    hone_train_config c;
    if (config_load_string(&c, yaml, "t.yaml", HONE_SFT, err) < 0) return -1;
    hone_pipeline p;
    int id = -1;
    if (pipeline_init(&p, &c, err) == 0) {
        hone_tok_example *ex = NULL, *eex = NULL;
        long n = 0, ne = 0;
        if (pipeline_sft_examples(&p, &c, &ex, &n, &eex, &ne, err) == 0 && n > 0) id = ex[0].ids[ex[0].n - 1];
        pipeline_free_examples(ex, n);
        pipeline_free_examples(eex, ne);
        pipeline_free(&p);
    }
    config_free(&c);
    return id;
}

static void test_eos_token(void) {
    const char *dir = test_tmpdir("eostok");
    char mdir[600];
    if (!stories_dir(dir, mdir, sizeof mdir)) return;
    hone_error err = {0};
    int a = last_id(dir, mdir, "", &err);
    CHECK(a == 2, "default: last id %d, want </s> = 2 (%s)", a, err.msg);
    int b = last_id(dir, mdir, "eos_token: '<unk>'\n", &err);
    CHECK(b == 0, "eos_token <unk>: last id %d, want 0 (%s)", b, err.msg);
    int c = last_id(dir, mdir, "eos_token: '<nope>'\n", &err);
    CHECK(c < 0 && strstr(err.msg, "eos_token: '<nope>' is not a token"), "unknown eos_token: %d, '%s'", c, err.msg);
    hone_remove_tree(dir, NULL);
}

#define JINJA "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
static void test_chat_template_path(void) {
    const char *dir = test_tmpdir("tplpath");
    char mdir[600], jf[700], yaml[4096], data[700];
    if (!stories_dir(dir, mdir, sizeof mdir)) return;
    snprintf(data, sizeof data, "%s/rows.jsonl", dir);
    FILE *f = fopen(data, "w");
    fputs("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n", f);
    fclose(f);
    snprintf(jf, sizeof jf, "%s/t.jinja", dir);
    f = fopen(jf, "w");
    fputs(JINJA, f);
    fclose(f);
    hone_error err = {0};
    hone_message msgs[2] = {{"user", "hi"}, {"assistant", "yo"}};
    for (int k = 0; k < 2; k++) {
        snprintf(yaml, sizeof yaml, "model_name_or_path: '%s'\noutput_dir: '%s/out'\nchat_template: chatml\nchat_template_path: '%s'\n"
                 "datasets:\n  - {path: '%s'}\n", mdir, dir, k == 0 ? jf : "/nonexistent.jinja", data);
        hone_train_config c;
        CHECK(config_load_string(&c, yaml, "t.yaml", HONE_SFT, &err) == 0, "%s", err.msg);
        hone_pipeline p;
        int rc = pipeline_init(&p, &c, &err);
        if (k == 0) {
            chat_text t;
            CHECK(rc == 0 && chat_render(&p.tpl, msgs, 2, 0, &t, &err) == 0 && !strcmp(t.text, "<user>hi<assistant>yo"),
                  "chat_template_path file: rc %d, '%s'", rc, rc == 0 ? t.text : err.msg);
            if (rc == 0) {
                /* and it is the template checkpoints and final/ carry */
                char tc[4300];
                snprintf(tc, sizeof tc, "%s/tokenizer_config.json", p.tok_dir);
                json_t *j = json_load_file(tc, 0, NULL);
                const char *ct = json_string_value(json_object_get(j, "chat_template"));
                CHECK(ct && !strcmp(ct, JINJA), "staged tokenizer_config.json's chat_template: '%s'", ct ? ct : "(none)");
                json_decref(j);
                chat_text_free(&t);
                pipeline_free(&p);
            }
        } else {
            CHECK(rc < 0 && strstr(err.msg, "chat_template_path /nonexistent.jinja"), "missing file: %s", err.msg);
        }
        config_free(&c);
    }
    hone_remove_tree(dir, NULL);
}

/* load_best_model_at_end: the best evaluation (lowest eval_loss) is tracked, its checkpoint
 * survives save_total_limit 2, and final weights are that checkpoint's, bit for bit; with
 * greater_is_better on accuracy the choice follows the other metric. */
static void test_load_best(void) {
    hone_model m;
    hone_error err = {0};
    if (model_load(&m, test_src("tests/fixtures/models/tiny-llama"), 0, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    int n = 48;
    hone_tok_example *ex = make_examples(n);
    const char *dir = test_tmpdir("loadbest");
    /* a learning rate high enough that evaluation loss turns up again */
    sft_opts o = {.batch_size = 4, .eval_batch_size = 4, .accum = 1, .max_length = 24, .shuffle = 1, .seed = 3, .epochs = 1,
                  .max_steps = 12, .logging_steps = 1, .eval_steps = 2, .save_steps = 2, .pad_id = 0, .quiet = 1};
    hone_trainer t;
    CHECK(trainer_init(&t, &m, dir, NULL, 0.3, HONE_SCHED_CONSTANT, 0, 12, 0.9, 0.999, 1e-8, 0.0, 0.0, &err) == 0, "%s", err.msg);
    t.save_total_limit = 2;
    t.load_best = 1;
    snprintf(t.plateau_metric, sizeof t.plateau_metric, "eval_loss");
    CHECK(sft_train(&t, &o, ex, n, ex + 40, 8, &err) == 0, "%s", err.msg);
    /* the best eval_loss in metrics.jsonl, and its step */
    char p[4096], line[4096];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    double best = INFINITY;
    long best_step = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *e = strstr(line, "\"eval_loss\": ");
        long st;
        if (e && sscanf(line, "{\"step\": %ld", &st) == 1) {
            double v = strtod(e + 13, NULL);
            if (v < best) best = v, best_step = st;
        }
    }
    if (f) fclose(f);
    CHECK(t.best_step == best_step && fabs(t.best_metric - best) <= 1e-6 * fabs(best),
          "best step %ld (%g), metrics.jsonl says %ld (%g)", t.best_step, t.best_metric, best_step, best);
    CHECK(best_step < 12, "the best evaluation is the last one (%ld): this run does not test loading", best_step);
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/checkpoint-%ld", dir, best_step);
    CHECK(hone_is_dir(ck) && !strcmp(t.best_ckpt, ck), "best checkpoint %s kept? recorded '%s'", ck, t.best_ckpt);
    CHECK(trainer_load_best(&t, &err) == 0, "%s", err.msg);
    hone_model b;
    if (model_load(&b, ck, 0, &err) == 0) {
        CHECK(!memcmp(b.data, m.data, sizeof(float) * m.num_floats), "final weights are not checkpoint-%ld's", best_step);
        model_free(&b);
    } else CHECK(0, "%s", err.msg);
    printf("    best eval_loss %.5f at step %ld of 12 (checkpoint kept under save_total_limit 2)\n", best, best_step);
    trainer_free(&t);
    hone_remove_tree(dir, NULL);
    free_examples(ex, n);
    model_free(&m);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_neftune_noise);
    TEST_RUN(test_neftune_training);
    TEST_RUN(test_option_keys);
    TEST_RUN(test_training_rows);
    TEST_RUN(test_eos_token);
    TEST_RUN(test_chat_template_path);
    TEST_RUN(test_load_best);
    return test_finish();
}
