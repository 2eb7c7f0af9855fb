/* test_layers.c — every layer's backward against central finite differences.
 * The scalar loss sum(out * R) (R random) is accumulated in double; the forward
 * runs in fp32, so the tolerance is |fd - analytic| <= 1e-2 * max|analytic| +
 * 1e-4, with h = 1e-2 (fp32 rounding / h and O(h^2) truncation both sit
 * below that). Also a whole-model check through model_forward/head/backward. */
#include "simd/kernels.h"
#include "model/layers.h"
#include "model/model.h"
#include "test.h"
#include "model/transformer.h"

static unsigned long long rs = 0x1234567ULL;
static float frand(void) { return test_uniform(&rs); }
static float *rnd(size_t n, float s) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = frand() * s;
    return x;
}
static float *zeros(size_t n) { return calloc(n, sizeof(float)); }
static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef double (*lossfn)(void *ctx);
static void fd_check(const char *what, float *x, const float *g, size_t n, lossfn f, void *ctx) {
    const double h = 1e-2;
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    size_t step = n > 40 ? n / 40 : 1;
    double worst = 0;
    size_t wi = 0;
    double wfd = 0;
    for (size_t i = 0; i < n; i += step) {
        float s = x[i];
        x[i] = (float)(s + h);
        double fp = f(ctx);
        x[i] = (float)(s - h);
        double fm = f(ctx);
        x[i] = s;
        double fd = (fp - fm) / (2 * h);
        double e = fabs(fd - g[i]);
        if (e > worst) { worst = e; wi = i; wfd = fd; }
    }
    CHECK(worst <= 1e-2 * gmax + 1e-4, "%s: index %zu: finite difference %.6g vs analytic %.6g (max|g| %.3g)", what, wi, wfd,
          g[wi], gmax);
}

/* ---- matmul ---- */
typedef struct { float *in, *W, *b, *out, *R; int N, IC, OC; } mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    matmul_forward(c->out, c->in, c->W, c->b, c->N, c->IC, c->OC);
    return dotd(c->out, c->R, (size_t)c->N * c->OC);
}
static void test_matmul(void) {
    mm_ctx c = {.N = 7, .IC = 13, .OC = 9};
    c.in = rnd(c.N * c.IC, 1); c.W = rnd(c.OC * c.IC, 1); c.b = rnd(c.OC, 1);
    c.out = zeros(c.N * c.OC); c.R = rnd(c.N * c.OC, 1);
    float *din = rnd(c.N * c.IC, 1), *dW = zeros(c.OC * c.IC), *db = zeros(c.OC);
    matmul_backward(din, dW, db, c.R, c.in, c.W, c.N, c.IC, c.OC, 0);
    fd_check("matmul d_in", c.in, din, c.N * c.IC, mm_loss, &c);
    fd_check("matmul dW", c.W, dW, c.OC * c.IC, mm_loss, &c);
    fd_check("matmul db", c.b, db, c.OC, mm_loss, &c);
    free(c.in); free(c.W); free(c.b); free(c.out); free(c.R); free(din); free(dW); free(db);
}

/* ---- rmsnorm ---- */
typedef struct { float *x, *w, *out, *rstd, *R; int N, C; float off; } rn_ctx;
static double rn_loss(void *p) {
    rn_ctx *c = p;
    rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->off, 1e-5f, c->N, c->C);
    return dotd(c->out, c->R, (size_t)c->N * c->C);
}
static void test_rmsnorm(void) {
    for (int g = 0; g < 2; g++) {
        rn_ctx c = {.N = 5, .C = 19, .off = (float)g};
        c.x = rnd(c.N * c.C, 1); c.w = rnd(c.C, 1); c.out = zeros(c.N * c.C); c.rstd = zeros(c.N); c.R = rnd(c.N * c.C, 1);
        rn_loss(&c);
        float *dx = zeros(c.N * c.C), *dw = zeros(c.C), *scr = zeros(layers_reduce_floats(c.C));
        rmsnorm_backward(dx, dw, c.R, c.x, c.w, c.rstd, c.off, c.N, c.C, scr);
        fd_check(g ? "rmsnorm(1+w) dx" : "rmsnorm dx", c.x, dx, c.N * c.C, rn_loss, &c);
        fd_check(g ? "rmsnorm(1+w) dw" : "rmsnorm dw", c.w, dw, c.C, rn_loss, &c);
        free(c.x); free(c.w); free(c.out); free(c.rstd); free(c.R); free(dx); free(dw); free(scr);
    }
}

/* ---- rope ---- */
typedef struct { float *x, *y, *cos, *sin, *R; int N, nh, D; } rp_ctx;
static double rp_loss(void *p) {
    rp_ctx *c = p;
    size_t n = (size_t)c->N * c->nh * c->D;
    memcpy(c->y, c->x, n * sizeof(float));
    rope_forward(c->y, c->cos, c->sin, c->N, c->nh, c->D);
    return dotd(c->y, c->R, n);
}
static void test_rope(void) {
    rp_ctx c = {.N = 6, .nh = 3, .D = 8};
    size_t n = (size_t)c.N * c.nh * c.D;
    int32_t pos[6] = {0, 1, 2, 0, 1, 7};
    float inv[4] = {1.f, 0.1f, 0.01f, 0.001f};
    c.cos = zeros(c.N * 4); c.sin = zeros(c.N * 4);
    rope_tables(c.cos, c.sin, pos, inv, c.N, c.D);
    c.x = rnd(n, 1); c.y = zeros(n); c.R = rnd(n, 1);
    float *dx = malloc(n * sizeof(float));
    memcpy(dx, c.R, n * sizeof(float));
    rope_backward(dx, c.cos, c.sin, c.N, c.nh, c.D);
    fd_check("rope dx", c.x, dx, n, rp_loss, &c);
    free(c.x); free(c.y); free(c.cos); free(c.sin); free(c.R); free(dx);
}

/* ---- attention with padding, packing and a shared prefix ---- */
typedef struct { float *q, *k, *v, *att, *lse, *R; hone_batch *b; int H, KV, D; } at_ctx;
static double at_loss(void *p) {
    at_ctx *c = p;
    attention_forward(c->att, c->lse, c->q, c->k, c->v, c->b, c->H, c->KV, c->D);
    return dotd(c->att, c->R, (size_t)c->b->B * c->b->T * c->H * c->D);
}
static void test_attention(void) {
    hone_batch b;
    batch_alloc(&b, 2, 10);
    batch_reset(&b, 0);
    int32_t toks[10] = {0};
    batch_put_doc(&b, 0, 0, toks, 4, 0, NULL); /* two packed documents + padding */
    batch_put_doc(&b, 0, 4, toks, 4, 0, NULL);
    batch_put_doc(&b, 1, 0, toks, 5, 0, NULL); /* prompt 0..4, completion A 5..7, completion B 8..9 */
    batch_put_doc(&b, 1, 5, toks, 3, 5, NULL);
    batch_put_doc(&b, 1, 8, toks, 2, 5, NULL);
    for (int t = 5; t < 10; t++) { b.pfx_start[10 + t] = 0; b.pfx_end[10 + t] = 5; }
    at_ctx c = {.b = &b, .H = 4, .KV = 2, .D = 6};
    size_t nq = 20 * 4 * 6, nk = 20 * 2 * 6;
    c.q = rnd(nq, 1); c.k = rnd(nk, 1); c.v = rnd(nk, 1); c.att = zeros(nq); c.lse = zeros(2 * 4 * 10); c.R = rnd(nq, 1);
    at_loss(&c);
    float *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk);
    attention_backward(dq, dk, dv, c.R, c.att, c.lse, c.q, c.k, c.v, &b, c.H, c.KV, c.D);
    fd_check("attention dq", c.q, dq, nq, at_loss, &c);
    fd_check("attention dk", c.k, dk, nk, at_loss, &c);
    fd_check("attention dv", c.v, dv, nk, at_loss, &c);
    free(c.q); free(c.k); free(c.v); free(c.att); free(c.lse); free(c.R); free(dq); free(dk); free(dv);
    batch_free(&b);
}

/* ---- gated activations ---- */
typedef struct { float *g, *u, *h, *R; int n, act; } gl_ctx;
static double gl_loss(void *p) {
    gl_ctx *c = p;
    glu_forward(c->h, c->g, c->u, c->n, c->act);
    return dotd(c->h, c->R, c->n);
}
static void test_glu(void) {
    for (int act = 0; act < 2; act++) {
        gl_ctx c = {.n = 37, .act = act};
        c.g = rnd(c.n, 3); c.u = rnd(c.n, 1); c.h = zeros(c.n); c.R = rnd(c.n, 1);
        float *dg = zeros(c.n), *du = zeros(c.n);
        glu_backward(dg, du, c.R, c.g, c.u, c.n, act);
        fd_check(act ? "geglu dgate" : "swiglu dgate", c.g, dg, c.n, gl_loss, &c);
        fd_check(act ? "geglu dup" : "swiglu dup", c.u, du, c.n, gl_loss, &c);
        free(c.g); free(c.u); free(c.h); free(c.R); free(dg); free(du);
    }
}

/* ---- embedding ---- */
typedef struct { float *E, *x, *R; int32_t *tok; int N, C; float scale; } em_ctx;
static double em_loss(void *p) {
    em_ctx *c = p;
    embedding_forward(c->x, c->E, c->tok, c->N, c->C, c->scale);
    return dotd(c->x, c->R, (size_t)c->N * c->C);
}
static void test_embedding(void) {
    int32_t tok[6] = {3, 1, 3, 0, 4, 3};
    em_ctx c = {.N = 6, .C = 7, .scale = 2.5f, .tok = tok};
    c.E = rnd(5 * 7, 1); c.x = zeros(6 * 7); c.R = rnd(6 * 7, 1);
    float *dE = zeros(5 * 7);
    embedding_backward(dE, c.R, tok, c.N, c.C, c.scale);
    fd_check("embedding dE", c.E, dE, 5 * 7, em_loss, &c);
    free(c.E); free(c.x); free(c.R); free(dE);
}

/* ---- whole model: forward + loss head + backward ---- */
typedef struct { hone_model *m; hone_acts *a; hone_batch *b; float ws; } md_ctx;
static double md_loss(void *p) {
    md_ctx *c = p;
    model_forward(c->m, c->a, c->b);
    return model_head(c->m, c->a, c->b, NULL, c->ws, NULL);
}
static void model_fd(const char *json, int ckpt) {
    hone_error err;
    hone_model_config cfg;
    CHECK(model_config_parse(&cfg, json, "test", &err) == 0, "%s", err.msg);
    hone_model m;
    model_init(&m, &cfg, &err);
    model_init_random(&m, 7, 0.3f);
    for (int i = 0; i < m.n_params; i++) /* non-trivial norms and biases */
        if (m.params[i].ndim == 1)
            for (size_t j = 0; j < m.params[i].numel; j++) m.data[m.params[i].offset + j] += 0.2f * frand();
    hone_batch b;
    batch_alloc(&b, 2, 9);
    batch_reset(&b, 0);
    int32_t t0[9] = {1, 5, 9, 2, 30, 7, 7, 3, 11}, t1[6] = {4, 8, 15, 16, 23, 42};
    batch_put_doc(&b, 0, 0, t0, 9, 0, NULL);
    batch_put_doc(&b, 1, 0, t1, 3, 0, NULL);
    batch_put_doc(&b, 1, 3, t1 + 3, 3, 0, NULL);
    hone_acts a;
    CHECK(acts_init(&a, &cfg, 2, 9, 1, ckpt, &err) == 0, "%s", err.msg);
    float *gbuf = zeros(m.num_floats);
    hone_weights g;
    model_weights_view(&m, gbuf, &g, &err);
    md_ctx c = {&m, &a, &b, 1.0f / 12};
    model_forward(&m, &a, &b);
    model_head(&m, &a, &b, NULL, c.ws, &g);
    model_backward(&m, &a, &b, &g);
    for (int i = 0; i < m.n_params; i++)
        fd_check(m.params[i].name, m.data + m.params[i].offset, gbuf + m.params[i].offset, m.params[i].numel, md_loss, &c);
    free(gbuf);
    weights_view_free(&g);
    acts_free(&a);
    batch_free(&b);
    model_free(&m);
}
static const char *llama_json = "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":50,\"hidden_size\":16,"
    "\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"attention_bias\":true,\"mlp_bias\":true,\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-5}";
static const char *gemma_json = "{\"architectures\":[\"GemmaForCausalLM\"],\"vocab_size\":50,\"hidden_size\":16,"
    "\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"head_dim\":12,\"rms_norm_eps\":1e-6}";
static void test_model_llama_bias_gqa(void) { model_fd(llama_json, 0); }
static void test_model_llama_checkpointing(void) { model_fd(llama_json, 1); }
static void test_model_gemma_mqa(void) { model_fd(gemma_json, 0); }

int main(void) {
    kernels_init();
    TEST_RUN(test_matmul);
    TEST_RUN(test_rmsnorm);
    TEST_RUN(test_rope);
    TEST_RUN(test_attention);
    TEST_RUN(test_glu);
    TEST_RUN(test_embedding);
    TEST_RUN(test_model_llama_bias_gqa);
    TEST_RUN(test_model_llama_checkpointing);
    TEST_RUN(test_model_gemma_mqa);
    return test_finish();
}
