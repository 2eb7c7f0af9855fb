/* test_sft.c — SFT training invariances on the tiny Llama fixture model:
 *   batch 8 x accumulation 1 == batch 2 x accumulation 4 (gradient: max|diff| <=
 *   1e-6 * max|g|; weights after 4 steps: 1e-5 * max|w|),
 *   1 thread == 2 threads (bitwise), interrupted + resumed == uninterrupted
 *   (bitwise weights and identical metrics.jsonl), packing rows by best-fit
 *   decreasing, shuffle_dataset and dataloader_drop_last, and the loss going down. */
#include "simd/kernels.h"
#include "train/sft.h"
#include "test.h"
#include "base/util.h"
#include <omp.h>

static hone_tok_example *make_examples(int n, uint64_t seed) {
    hone_tok_example *ex = calloc(n, sizeof *ex);
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int len = 6 + (int)((s >> 33) % 15);
        ex[i].n = len;
        ex[i].ids = malloc(sizeof(int32_t) * len);
        ex[i].mask = malloc(len);
        for (int j = 0; j < len; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            /* a learnable pattern: mostly an arithmetic progression mod 250 */
            ex[i].ids[j] = 3 + (int)(((s >> 40) % 4 == 0 ? (s >> 20) : (uint64_t)(i * 7 + j * 3)) % 250);
            ex[i].mask[j] = j >= len / 3;
        }
    }
    return ex;
}
static void free_examples(hone_tok_example *ex, int n) {
    for (int i = 0; i < n; i++) { free(ex[i].ids); free(ex[i].mask); }
    free(ex);
}

static sft_opts base_opts(void) {
    sft_opts o = {.batch_size = 8, .eval_batch_size = 8, .accum = 1, .max_length = 24, .shuffle = 1, .seed = 3, .epochs = 1,
                  .max_steps = 4, .logging_steps = 1, .pad_id = 0, .quiet = 1};
    return o;
}

/* 1: train_copy runs bf16: true (backend_cpu_bf16, hone_kt.gemm_bf16 as selected) */
static int train_bf16;

/* trains a fresh copy of tiny-llama; returns its weights (caller frees) */
static float *train_copy(const sft_opts *o, hone_tok_example *ex, int n, const char *outdir, size_t *nf, float **grad_out,
                         const char *resume) {
    hone_model m;
    hone_error err;
    if (model_load(&m, test_src("tests/fixtures/models/tiny-llama"), 0, &err) < 0) { CHECK(0, "%s", err.msg); return NULL; }
    if (train_bf16) m.be = backend_cpu_bf16();
    sft_rows R;
    sft_make_rows(&R, ex, n, o->max_length, o->packing, &err);
    long total = sft_total_steps(o, R.n);
    sft_rows_free(&R);
    hone_trainer t;
    CHECK(trainer_init(&t, &m, outdir, NULL, 1e-2, HONE_SCHED_LINEAR, 1, total, 0.9, 0.999, 1e-8, 0.01, 1.0, &err) == 0, "%s", err.msg);
    if (resume) CHECK(trainer_load_checkpoint(&t, resume, NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(sft_train(&t, o, ex, n, NULL, 0, &err) == 0, "%s", err.msg);
    if (grad_out) {
        *grad_out = malloc(sizeof(float) * m.num_floats);
        memcpy(*grad_out, t.grad, sizeof(float) * m.num_floats);
    }
    float *w = malloc(sizeof(float) * m.num_floats);
    memcpy(w, m.data, sizeof(float) * m.num_floats);
    *nf = m.num_floats;
    trainer_free(&t);
    model_free(&m);
    return w;
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, mx = 0;
    for (size_t i = 0; i < n; i++) { d = fmax(d, fabs((double)a[i] - b[i])); mx = fmax(mx, fabs(b[i])); }
    return d / mx;
}

static void test_accumulation_equivalence(void) {
    hone_tok_example *ex = make_examples(32, 11);
    sft_opts a = base_opts(), b = base_opts();
    b.batch_size = 2;
    b.accum = 4;
    a.shuffle = b.shuffle = 0; /* same rows in the same steps */
    size_t n1, n2;
    /* the accumulated gradient of one step within 1e-6; the weights after 4 Adam
     * steps (which amplify rounding in tiny gradient entries) within 1e-5 */
    float *g1, *g2;
    a.max_steps = b.max_steps = 1;
    float *w1 = train_copy(&a, ex, 32, NULL, &n1, &g1, NULL), *w2 = train_copy(&b, ex, 32, NULL, &n2, &g2, NULL);
    double rg = rel_diff(g2, g1, n1);
    CHECK(rg <= 1e-6, "8x1 vs 2x4 gradient: max diff / max|g| = %.3g", rg);
    free(w1); free(w2); free(g1); free(g2);
    a.max_steps = b.max_steps = 4;
    w1 = train_copy(&a, ex, 32, NULL, &n1, NULL, NULL);
    w2 = train_copy(&b, ex, 32, NULL, &n2, NULL, NULL);
    double r = rel_diff(w2, w1, n1);
    CHECK(r <= 1e-5, "8x1 vs 2x4 weights: max diff / max|w| = %.3g", r);
    printf("    8x1 vs 2x4: gradient diff %.2e, weights after 4 steps %.2e\n", rg, r);
    free(w1); free(w2);
    free_examples(ex, 32);
}

static void test_threads_bitwise(void) {
    hone_tok_example *ex = make_examples(32, 12);
    sft_opts o = base_opts();
    o.packing = 1;
    size_t n;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    float *w1 = train_copy(&o, ex, 32, NULL, &n, NULL, NULL);
    omp_set_num_threads(2);
    float *w2 = train_copy(&o, ex, 32, NULL, &n, NULL, NULL);
    omp_set_num_threads(3);
    float *w3 = train_copy(&o, ex, 32, NULL, &n, NULL, NULL);
    omp_set_num_threads(saved);
    CHECK(!memcmp(w1, w2, n * sizeof(float)), "1 thread and 2 threads differ");
    CHECK(!memcmp(w1, w3, n * sizeof(float)), "1 thread and 3 threads differ");
    free(w1); free(w2); free(w3);
    free_examples(ex, 32);
}

/* bf16: true, both paths (the dot unit where there is one, the rounded operands): bitwise
 * across 1, 2 and 3 threads, and not the fp32 result (the path really ran) but near it */
static void test_threads_bitwise_bf16(void) {
    hone_tok_example *ex = make_examples(32, 12);
    sft_opts o = base_opts();
    o.packing = 1;
    size_t n;
    int saved = omp_get_max_threads();
    float *w32 = train_copy(&o, ex, 32, NULL, &n, NULL, NULL);
    const char *paths[] = {"dot", "rounded"};
    hone_kernels keep = hone_kt;
    for (int p = 0; p < 2; p++) {
        char why[256];
        setenv("HONE_BF16_PATH", paths[p], 1);
        kernels_select_bf16(&hone_kt, why, sizeof why);
        unsetenv("HONE_BF16_PATH");
        train_bf16 = 1;
        omp_set_num_threads(1);
        float *w1 = train_copy(&o, ex, 32, NULL, &n, NULL, NULL);
        omp_set_num_threads(2);
        float *w2 = train_copy(&o, ex, 32, NULL, &n, NULL, NULL);
        omp_set_num_threads(3);
        float *w3 = train_copy(&o, ex, 32, NULL, &n, NULL, NULL);
        omp_set_num_threads(saved);
        train_bf16 = 0;
        CHECK(!memcmp(w1, w2, n * sizeof(float)), "%s: 1 thread and 2 threads differ", why);
        CHECK(!memcmp(w1, w3, n * sizeof(float)), "%s: 1 thread and 3 threads differ", why);
        double r = rel_diff(w1, w32, n);
        /* AdamW moves a weight by about lr (1e-2) per step at most, and bf16 rounding decides the
         * sign of tiny gradient entries: up to 4e-2 after 4 steps; anything more is a broken path */
        CHECK(r > 0 && r < 4e-2, "%s: bf16 vs fp32 weights after 4 steps: max diff / max|w| = %.3g", why, r);
        printf("    %s: bitwise on 1, 2, 3 threads; vs fp32 %.2e\n", why, r);
        free(w1); free(w2); free(w3);
    }
    hone_kt = keep;
    free(w32);
    free_examples(ex, 32);
}

static char *slurp(const char *dir, const char *name) {
    char p[1024];
    hone_path_join(p, sizeof p, dir, name);
    char *s = NULL;
    hone_read_file(p, &s, NULL, NULL);
    return s;
}

/* strips the "tokens_per_second" values (timing) from metrics text */
static void strip_timing(char *s) {
    char *p;
    while (s && (p = strstr(s, ", \"tokens_per_second\": "))) {
        char *e = strchr(p + 2, '}');
        memmove(p, e, strlen(e) + 1);
    }
}

static void test_resume_bitwise(void) {
    hone_tok_example *ex = make_examples(40, 13);
    sft_opts o = base_opts();
    o.batch_size = 4;
    o.accum = 2;
    o.max_steps = 6;
    const char *d1 = test_tmpdir("full"), *d2 = test_tmpdir("part");
    size_t n;
    float *full = train_copy(&o, ex, 40, d1, &n, NULL, NULL);
    /* the interrupted run: a SIGTERM is pending, so it stops after step 1 and saves */
    hone_model m;
    hone_error err;
    model_load(&m, test_src("tests/fixtures/models/tiny-llama"), 0, &err);
    hone_trainer t;
    trainer_init(&t, &m, d2, NULL, 1e-2, HONE_SCHED_LINEAR, 1, 6, 0.9, 0.999, 1e-8, 0.01, 1.0, &err);
    trainer_block_signals();
    raise(SIGTERM);
    int rc = sft_train(&t, &o, ex, 40, NULL, 0, &err);
    CHECK(rc == 1 && t.step == 1, "expected a stop after step 1, got rc %d at step %ld", rc, t.step);
    trainer_free(&t);
    model_free(&m);
    char ck[1024];
    hone_path_join(ck, sizeof ck, d2, "checkpoint-1");
    CHECK(hone_is_dir(ck), "checkpoint-1 was not written on SIGTERM");
    float *res = train_copy(&o, ex, 40, d2, &n, NULL, ck);
    CHECK(res && !memcmp(full, res, n * sizeof(float)), "resumed weights differ from the uninterrupted run");
    char *m1 = slurp(d1, "metrics.jsonl"), *m2 = slurp(d2, "metrics.jsonl");
    strip_timing(m1);
    strip_timing(m2);
    CHECK(m1 && m2 && !strcmp(m1, m2), "metrics.jsonl differs:\n%s\nvs\n%s", m1 ? m1 : "(none)", m2 ? m2 : "(none)");
    free(m1); free(m2); free(full); free(res);
    hone_remove_tree(d1, NULL);
    hone_remove_tree(d2, NULL);
    free_examples(ex, 40);
}

static void test_packing_rows(void) {
    int lens[] = {9, 3, 7, 5, 2, 8, 1};
    hone_tok_example ex[7];
    for (int i = 0; i < 7; i++) { ex[i].n = lens[i]; ex[i].ids = calloc(lens[i], 4); ex[i].mask = calloc(lens[i], 1); }
    sft_rows R;
    hone_error err;
    sft_make_rows(&R, ex, 7, 10, 1, &err);
    /* best fit decreasing into 10: [9,1] [8,2] [7,3] [5] */
    CHECK(R.n == 4, "rows %ld", R.n);
    int want[4][2] = {{0, 6}, {5, 4}, {2, 1}, {3, -1}};
    for (int r = 0; r < 4 && r < R.n; r++)
        for (int k = 0; k < 2; k++)
            if (want[r][k] >= 0) CHECK(k < R.rows[r].n_ex && R.rows[r].ex[k] == want[r][k], "row %d slot %d", r, k);
    sft_rows_free(&R);
    for (int i = 0; i < 7; i++) { free(ex[i].ids); free(ex[i].mask); }
}

/* shuffle_dataset: the rows in one seeded order before training (another first
 * batch than file order, the same on every run); dataloader_drop_last: an epoch of
 * 42 rows in batches of 8 is 5 micro-batches, not 6. */
static void test_shuffle_once_and_drop_last(void) {
    hone_tok_example *ex = make_examples(42, 21);
    sft_opts o = base_opts();
    o.shuffle = 0;
    o.max_steps = 2; /* step 1 is the warmup's (learning rate 0) */
    const char *d = test_tmpdir("shuf");
    size_t n;
    float *plain = train_copy(&o, ex, 42, d, &n, NULL, NULL);
    o.shuffle_once = 1;
    float *a = train_copy(&o, ex, 42, d, &n, NULL, NULL), *b = train_copy(&o, ex, 42, d, &n, NULL, NULL);
    CHECK(plain && a && b && memcmp(plain, a, n * sizeof(float)) != 0, "shuffle_dataset changed nothing");
    CHECK(a && b && !memcmp(a, b, n * sizeof(float)), "shuffle_dataset is not reproducible");
    free(plain); free(a); free(b);
    o.max_steps = -1;
    CHECK(sft_total_steps(&o, 42) == 6, "6 steps without drop_last, got %ld", sft_total_steps(&o, 42));
    o.drop_last = 1;
    CHECK(sft_total_steps(&o, 42) == 5, "5 steps with drop_last, got %ld", sft_total_steps(&o, 42));
    hone_remove_tree(d, NULL);
    free_examples(ex, 42);
}

static void test_loss_decreases(void) {
    hone_tok_example *ex = make_examples(32, 14);
    sft_opts o = base_opts();
    hone_model m;
    hone_error err;
    model_load(&m, test_src("tests/fixtures/models/tiny-llama"), 0, &err);
    double l0, a0, l1, a1;
    sft_evaluate(&m, &o, ex, 32, &l0, &a0, NULL, &err);
    hone_trainer t;
    o.max_steps = 30;
    trainer_init(&t, &m, NULL, NULL, 1e-2, HONE_SCHED_CONSTANT, 0, 30, 0.9, 0.999, 1e-8, 0.0, 1.0, &err);
    sft_train(&t, &o, ex, 32, NULL, 0, &err);
    sft_evaluate(&m, &o, ex, 32, &l1, &a1, NULL, &err);
    CHECK(l1 < l0 - 0.5, "loss %.4f -> %.4f", l0, l1);
    printf("    30 steps: loss %.4f -> %.4f, token accuracy %.3f -> %.3f\n", l0, l1, a0, a1);
    trainer_free(&t);
    model_free(&m);
    free_examples(ex, 32);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_packing_rows);
    TEST_RUN(test_accumulation_equivalence);
    TEST_RUN(test_threads_bitwise);
    TEST_RUN(test_threads_bitwise_bf16);
    TEST_RUN(test_resume_bitwise);
    TEST_RUN(test_shuffle_once_and_drop_last);
    TEST_RUN(test_loss_decreases);
    return test_finish();
}
