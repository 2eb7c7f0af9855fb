/* test_dpo.c — DPO on the tiny Llama fixture model:
 *   the shared-prompt layout equals the two-row layout (loss, metrics and every
 *   gradient within 1e-5 relative to the largest magnitude), for several loss types;
 *   precomputed reference log-probs equal a live reference model (bitwise);
 *   batch 4 x accumulation 1 == batch 2 x accumulation 2 (gradient 1e-6, weights
 *   after two steps 1e-5), 1 == 2 threads
 *   (bitwise), interrupted + resumed == uninterrupted (bitwise), and training
 *   raises rewards/accuracies and margins. */
#include "train/dpo.h"
#include "simd/kernels.h"
#include "test.h"
#include "base/util.h"
#include <omp.h>

static uint64_t lcg(uint64_t *s) { *s = *s * 6364136223846793005ULL + 1442695040888963407ULL; return *s >> 33; }

static hone_tok_pair *make_pairs(int n, uint64_t seed) {
    hone_tok_pair *p = calloc(n, sizeof *p);
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        p[i].np = 4 + (int)(lcg(&s) % 9);
        p[i].nc = 2 + (int)(lcg(&s) % 6);
        p[i].nr = 2 + (int)(lcg(&s) % 6);
        p[i].prompt = malloc(4 * p[i].np); p[i].chosen = malloc(4 * p[i].nc); p[i].rejected = malloc(4 * p[i].nr);
        for (int j = 0; j < p[i].np; j++) p[i].prompt[j] = 3 + (int)(lcg(&s) % 250);
        /* chosen continues the prompt's pattern; rejected is noise */
        for (int j = 0; j < p[i].nc; j++) p[i].chosen[j] = 3 + (p[i].prompt[0] + 5 * j) % 250;
        for (int j = 0; j < p[i].nr; j++) p[i].rejected[j] = 3 + (int)(lcg(&s) % 250);
    }
    return p;
}
static void free_pairs(hone_tok_pair *p, int n) {
    for (int i = 0; i < n; i++) { free(p[i].prompt); free(p[i].chosen); free(p[i].rejected); }
    free(p);
}

static dpo_opts base_opts(void) {
    dpo_opts o;
    memset(&o, 0, sizeof o);
    dpo_loss_opts_default(&o.loss);
    o.batch_size = 4; o.eval_batch_size = 4; o.accum = 1; o.shared_prompt = 1; o.shuffle = 1; o.seed = 5;
    o.epochs = 1; o.max_steps = 3; o.logging_steps = 1; o.quiet = 1;
    return o;
}

static void load(hone_model *m, float noise) {
    hone_error err;
    if (model_load(m, test_src("tests/fixtures/models/tiny-llama"), 0, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    uint64_t s = 99;
    for (size_t i = 0; i < m->num_floats; i++) m->data[i] += noise * ((float)(lcg(&s) % 2001) / 1000.f - 1.f);
}

static double rel(const float *a, const float *b, size_t n) {
    double d = 0, mx = 0;
    for (size_t i = 0; i < n; i++) { d = fmax(d, fabs((double)a[i] - b[i])); mx = fmax(mx, fabs(b[i])); }
    return mx > 0 ? d / mx : d;
}

static void layout_case(const char *loss_name, int weighting) {
    hone_model pol, ref;
    load(&pol, 0.05f);
    load(&ref, 0.f);
    hone_tok_pair *pairs = make_pairs(5, 21);
    long idx[5] = {0, 1, 2, 3, 4};
    float *g[2];
    dpo_step_result r[2];
    hone_error err;
    for (int shared = 0; shared < 2; shared++) {
        dpo_opts o = base_opts();
        o.batch_size = 5;
        o.shared_prompt = shared;
        const char *names[1] = {loss_name};
        dpo_loss_opts_set_loss_types(&o.loss, names, 1, NULL, &err);
        o.loss.use_weighting = weighting;
        dpo_ws ws;
        CHECK(dpo_ws_init(&ws, &pol.cfg, &o, 5, pairs, 5, 1, 1, &err) == 0, "%s", err.msg);
        g[shared] = calloc(pol.num_floats, sizeof(float));
        hone_weights gw;
        model_weights_view(&pol, g[shared], &gw, &err);
        dpo_loss_state st;
        dpo_loss_state_init(&st);
        CHECK(dpo_micro_batch(&ws, &pol, &gw, &ref, &o, &st, pairs, idx, 5, NULL, 1.0f, &r[shared], &err) == 0, "%s", err.msg);
        weights_view_free(&gw);
        dpo_ws_free(&ws);
    }
    CHECK_CLOSE(r[1].loss, r[0].loss, 1e-5, 1e-7, "loss");
    CHECK_CLOSE(r[1].m.rewards_margins, r[0].m.rewards_margins, 1e-5, 1e-7, "rewards/margins");
    CHECK_CLOSE(r[1].m.logps_rejected, r[0].m.logps_rejected, 1e-5, 1e-7, "logps/rejected");
    CHECK_CLOSE(r[1].logits_rejected, r[0].logits_rejected, 1e-5, 1e-7, "logits/rejected");
    CHECK_CLOSE(r[1].entropy, r[0].entropy, 1e-5, 1e-7, "entropy");
    CHECK(r[1].n_tokens == r[0].n_tokens, "num_tokens %ld vs %ld", r[1].n_tokens, r[0].n_tokens);
    double d = rel(g[1], g[0], pol.num_floats);
    CHECK(d <= 1e-5, "%s: gradients differ between layouts: %.3g", loss_name, d);
    printf("    %s%s: loss %.6f, shared vs pairs gradient diff %.2e\n", loss_name, weighting ? "+wpo" : "", r[1].loss, d);
    free(g[0]); free(g[1]);
    free_pairs(pairs, 5);
    model_free(&pol);
    model_free(&ref);
}
static void test_shared_prompt_equivalence(void) {
    layout_case("sigmoid", 0);
    layout_case("ipo", 0);
    layout_case("apo_zero", 0);
    layout_case("sigmoid", 1);
}

/* trains a copy; returns weights */
static float *run(dpo_opts *o, hone_tok_pair *pairs, int n, int precompute, const char *dir, const char *resume, size_t *nf,
                  dpo_step_result *eval_before, dpo_step_result *eval_after) {
    hone_model pol, ref;
    hone_error err;
    load(&pol, 0.f);
    load(&ref, 0.f);
    dpo_ref_logps refs = {0};
    if (precompute) CHECK(dpo_precompute_ref(&ref, o, pairs, n, &refs, &err) == 0, "%s", err.msg);
    if (eval_before) dpo_evaluate(&pol, &ref, o, pairs, n, NULL, eval_before, &err);
    hone_trainer t;
    trainer_init(&t, &pol, dir, NULL, 5e-3, HONE_SCHED_LINEAR, 0, dpo_total_steps(o, n), 0.9, 0.999, 1e-8, 0.0, 1.0, &err);
    if (resume) CHECK(trainer_load_checkpoint(&t, resume, NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(dpo_train(&t, precompute ? NULL : &ref, o, pairs, n, precompute ? &refs : NULL, NULL, 0, NULL, &err) == 0, "%s", err.msg);
    if (eval_after) dpo_evaluate(&pol, &ref, o, pairs, n, NULL, eval_after, &err);
    float *w = malloc(sizeof(float) * pol.num_floats);
    memcpy(w, pol.data, sizeof(float) * pol.num_floats);
    *nf = pol.num_floats;
    dpo_ref_logps_free(&refs);
    trainer_free(&t);
    model_free(&pol);
    model_free(&ref);
    return w;
}

static void test_precomputed_reference(void) {
    hone_tok_pair *pairs = make_pairs(8, 31);
    dpo_opts o = base_opts();
    size_t n;
    float *a = run(&o, pairs, 8, 0, NULL, NULL, &n, NULL, NULL), *b = run(&o, pairs, 8, 1, NULL, NULL, &n, NULL, NULL);
    CHECK(!memcmp(a, b, n * sizeof(float)), "precomputed reference log-probs give other weights (rel %.3g)", rel(b, a, n));
    free(a); free(b);
    free_pairs(pairs, 8);
}

static void test_accumulation_and_threads(void) {
    hone_tok_pair *pairs = make_pairs(8, 41);
    dpo_opts a = base_opts(), b = base_opts();
    a.shuffle = b.shuffle = 0;
    b.batch_size = 2;
    b.accum = 2;
    a.max_steps = b.max_steps = 2;
    size_t n;
    float *wa = run(&a, pairs, 8, 1, NULL, NULL, &n, NULL, NULL), *wb = run(&b, pairs, 8, 1, NULL, NULL, &n, NULL, NULL);
    /* after two Adam steps tiny gradient entries amplify rounding, so weights are
     * compared at 1e-5; the accumulated gradient itself at 1e-6 */
    double d = rel(wb, wa, n);
    CHECK(d <= 1e-5, "4x1 vs 2x2 weights: %.3g", d);
    {
        hone_model pol, ref;
        hone_error err;
        load(&pol, 0.05f);
        load(&ref, 0.f);
        float *g1 = calloc(pol.num_floats, 4), *g2 = calloc(pol.num_floats, 4);
        hone_weights v1, v2;
        model_weights_view(&pol, g1, &v1, &err);
        model_weights_view(&pol, g2, &v2, &err);
        dpo_ws ws;
        dpo_ws_init(&ws, &pol.cfg, &a, 4, pairs, 8, 1, 1, &err);
        dpo_loss_state st;
        dpo_loss_state_init(&st);
        dpo_step_result r;
        long idx[4] = {0, 1, 2, 3};
        dpo_micro_batch(&ws, &pol, &v1, &ref, &a, &st, pairs, idx, 4, NULL, 1.0f, &r, &err);
        dpo_micro_batch(&ws, &pol, &v2, &ref, &a, &st, pairs, idx, 2, NULL, 0.5f, &r, &err);
        dpo_micro_batch(&ws, &pol, &v2, &ref, &a, &st, pairs, idx + 2, 2, NULL, 0.5f, &r, &err);
        double dg = rel(g2, g1, pol.num_floats);
        CHECK(dg <= 1e-6, "4x1 vs 2x2 gradient: %.3g", dg);
        printf("    4x1 vs 2x2: gradient diff %.2e, weights after 2 steps %.2e\n", dg, d);
        dpo_ws_free(&ws);
        weights_view_free(&v1);
        weights_view_free(&v2);
        free(g1); free(g2);
        model_free(&pol);
        model_free(&ref);
    }
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    float *w1 = run(&a, pairs, 8, 0, NULL, NULL, &n, NULL, NULL);
    omp_set_num_threads(2);
    float *w2 = run(&a, pairs, 8, 0, NULL, NULL, &n, NULL, NULL);
    omp_set_num_threads(saved);
    CHECK(!memcmp(w1, w2, n * sizeof(float)), "1 and 2 threads differ");
    free(wa); free(wb); free(w1); free(w2);
    free_pairs(pairs, 8);
}

static void test_resume(void) {
    hone_tok_pair *pairs = make_pairs(12, 51);
    dpo_opts o = base_opts();
    o.max_steps = 3;
    const char *d1 = test_tmpdir("dfull"), *d2 = test_tmpdir("dpart");
    size_t n;
    float *full = run(&o, pairs, 12, 1, d1, NULL, &n, NULL, NULL);
    hone_model pol, ref;
    hone_error err;
    load(&pol, 0.f);
    load(&ref, 0.f);
    dpo_ref_logps refs;
    dpo_precompute_ref(&ref, &o, pairs, 12, &refs, &err);
    hone_trainer t;
    trainer_init(&t, &pol, d2, NULL, 5e-3, HONE_SCHED_LINEAR, 0, 3, 0.9, 0.999, 1e-8, 0.0, 1.0, &err);
    trainer_block_signals();
    raise(SIGINT);
    int rc = dpo_train(&t, NULL, &o, pairs, 12, &refs, NULL, 0, NULL, &err);
    CHECK(rc == 1 && t.step == 1, "stop: rc %d step %ld", rc, t.step);
    trainer_free(&t);
    model_free(&pol);
    model_free(&ref);
    dpo_ref_logps_free(&refs);
    char ck[1024];
    hone_path_join(ck, sizeof ck, d2, "checkpoint-1");
    float *res = run(&o, pairs, 12, 1, d2, ck, &n, NULL, NULL);
    CHECK(!memcmp(full, res, n * sizeof(float)), "resumed DPO differs");
    free(full); free(res);
    hone_remove_tree(d1, NULL);
    hone_remove_tree(d2, NULL);
    free_pairs(pairs, 12);
}

static void test_training_improves(void) {
    hone_tok_pair *pairs = make_pairs(16, 61);
    dpo_opts o = base_opts();
    o.max_steps = 20;
    o.loss.beta = 0.5;
    size_t n;
    dpo_step_result before, after;
    float *w = run(&o, pairs, 16, 1, NULL, NULL, &n, &before, &after);
    CHECK(after.m.rewards_margins > before.m.rewards_margins + 0.1, "margin %.4f -> %.4f", before.m.rewards_margins,
          after.m.rewards_margins);
    CHECK(after.m.rewards_accuracies >= 0.9, "accuracy %.3f", after.m.rewards_accuracies);
    printf("    20 steps: loss %.4f -> %.4f, rewards/accuracies %.2f -> %.2f, margins %.4f -> %.4f\n", before.loss, after.loss,
           before.m.rewards_accuracies, after.m.rewards_accuracies, before.m.rewards_margins, after.m.rewards_margins);
    free(w);
    free_pairs(pairs, 16);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_shared_prompt_equivalence);
    TEST_RUN(test_precomputed_reference);
    TEST_RUN(test_accumulation_and_threads);
    TEST_RUN(test_resume);
    TEST_RUN(test_training_improves);
    return test_finish();
}
