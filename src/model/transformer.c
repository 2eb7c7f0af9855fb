/* model/transformer.c — forward, loss head and backward of the whole model
 * (transformer.h). Layer math is in layers.c; this file wires the layers and
 * owns the activation plan. */
#include "model/transformer.h"
#include "simd/kernels.h"
#include "model/backend.h"
#include "model/layers.h"
#include "model/lora.h"
#include "model/qweight.h"
#include "base/util.h"
#include "base/rng.h"
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { size_t off; char *base; } carver;
static float *carve(carver *cv, size_t nfloats) {
    float *p = cv->base ? (float *)(cv->base + cv->off) : NULL;
    cv->off += ((nfloats * sizeof(float) + 63) / 64) * 64;
    return p;
}

/* Rows of the loss head per chunk. Each chunk's products pack the whole (V, C) head
 * weight twice (forward and dX) and stream its (V, C) gradient once, so short chunks
 * pay that per few rows: SmolLM2-135M (V = 49152, C = 576), one Zen 4 core, share
 * of the GEMM time in the micro-kernel (the rest packing): 256 rows 88% / 86% / 93%
 * (forward, dX, dW), 512 rows 93% / 89% / 93%, 1024 rows 96% / 90% / 93%.
 * 512 rows and at most 128 MB of logits: +50 MB over 256 rows on that model. */
static int head_chunk_rows(const hone_model_config *c, int N) {
    long ch = (32L << 20) / c->vocab_size; /* at most 128 MB of logits at once */
    if (ch > 512) ch = 512;
    if (ch < 8) ch = 8;
    if (ch > N) ch = N;
    return (int)ch;
}

/* One pass computes the layout; with a NULL base it only measures. */
static size_t layout(hone_acts *a, const hone_model_config *c, int B, int T, int train, int ckpt, char *base) {
    const hone_backend *be = backend_cpu(); /* sizes only */
    carver cv = {0, base};
    size_t N = (size_t)B * T;
    int C = c->hidden_size, F = c->intermediate_size, HD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim,
        L = c->num_layers, D = c->head_dim, V = c->vocab_size, H = c->num_heads;
    int full = train && !ckpt;
    hone_layer_acts shared = {0};
    for (int l = 0; l < L; l++) {
        hone_layer_acts *la = &a->layers[l];
        la->x = (train || l == 0) ? carve(&cv, N * C) : a->layers[0].x;
        if (full || l == 0) {
            /* ln1, ln2 and h are cheap to recompute (a norm, an activation) from what
             * is kept: one set serves every layer, and layer_backward rebuilds them */
            la->rstd1 = carve(&cv, N); la->ln1 = l == 0 ? carve(&cv, N * C) : shared.ln1;
            la->q = carve(&cv, N * HD); la->k = carve(&cv, N * KD); la->v = carve(&cv, N * KD);
            la->att = carve(&cv, N * HD); la->lse = carve(&cv, (size_t)B * H * T);
            la->xm = carve(&cv, N * C); la->rstd2 = carve(&cv, N); la->ln2 = l == 0 ? carve(&cv, N * C) : shared.ln2;
            la->gate = carve(&cv, N * F); la->up = carve(&cv, N * F); la->h = l == 0 ? carve(&cv, N * F) : shared.h;
            if (l == 0) shared = *la;
        } else {
            float *x = la->x;
            *la = shared;
            la->x = x;
        }
    }
    a->x_final = carve(&cv, N * C);
    a->rstd_f = carve(&cv, N);
    a->xf = carve(&cv, N * C);
    a->cos = carve(&cv, N * (D / 2));
    a->sin = carve(&cv, N * (D / 2));
    a->tok_logp = carve(&cv, N);
    a->tok_entropy = carve(&cv, N);
    a->tok_correct = carve(&cv, N);
    a->tok_logit_sum = carve(&cv, N);
    a->tok_lssp = carve(&cv, N);
    a->tok_loss = carve(&cv, N);
    a->rows = (int32_t *)carve(&cv, N);
    a->row_labels = (int32_t *)carve(&cv, N);
    int ch = head_chunk_rows(c, (int)N);
    a->head_chunk = ch;
    a->head_x = carve(&cv, (size_t)ch * C);
    a->head_logits = carve(&cv, (size_t)ch * V);
    a->head_dx = carve(&cv, (size_t)ch * C);
    if (train) {
        a->dx = carve(&cv, N * C); a->dxf = carve(&cv, N * C); a->dln = carve(&cv, N * C);
        a->datt = carve(&cv, N * HD); a->dq = carve(&cv, N * HD);
        a->dk = carve(&cv, N * KD); a->dv = carve(&cv, N * KD);
        a->dgate = carve(&cv, N * F); a->dup = carve(&cv, N * F); a->dh = carve(&cv, N * F);
        a->red = carve(&cv, be->reduce_floats(C > F ? C : F));
    }
    return cv.off;
}

size_t acts_plan_bytes(const hone_model_config *c, int B, int T, int train, int ckpt) {
    hone_acts a = {0};
    a.layers = calloc(c->num_layers, sizeof(hone_layer_acts));
    size_t n = layout(&a, c, B, T, train, ckpt, NULL);
    free(a.layers);
    return n;
}

int acts_init(hone_acts *a, const hone_model_config *c, int B, int T, int train, int ckpt, hone_error *err) {
    memset(a, 0, sizeof *a);
    a->B = B; a->T = T; a->train = train; a->ckpt = ckpt;
    a->layers = calloc(c->num_layers, sizeof(hone_layer_acts));
    if (!a->layers) return hone_fail(err, "out of memory");
    a->bytes = layout(a, c, B, T, train, ckpt, NULL);
    a->mem = backend_cpu()->alloc(a->bytes, err);
    if (!a->mem) { free(a->layers); a->layers = NULL; return hone_fail_prefix(err, "activations for batch %dx%d", B, T); }
    layout(a, c, B, T, train, ckpt, a->mem);
    return 0;
}

/* The LoRA buffers: su per adapted module (per layer when the training keeps every
 * layer's activations, else one set recomputed per layer), dropout scratch, du. */
static size_t lora_layout(hone_acts *a, const hone_model_config *c, const hone_lora *lo, int B, int T, int train, int ckpt,
                          char *base) {
    carver cv = {0, base};
    size_t N = (size_t)B * T;
    int maxin = 0, r = lo->cfg.r;
    for (int mod = 0; mod < LORA_NMOD; mod++) {
        int in, out;
        lora_module_dims(c, mod, &in, &out);
        if (in > maxin) maxin = in;
    }
    for (int l = 0; l < c->num_layers; l++)
        for (int mod = 0; mod < LORA_NMOD; mod++) {
            if (!(lo->cfg.targets >> mod & 1)) continue;
            float *p = (train && !ckpt) || l == 0 ? carve(&cv, N * r) : base ? a->layers[0].lora_su[mod] : NULL; /* planning: no layers yet */
            if (base) a->layers[l].lora_su[mod] = p;
        }
    float *xd = lo->cfg.dropout > 0 ? carve(&cv, N * maxin) : NULL;
    float *dxd = lo->cfg.dropout > 0 && train ? carve(&cv, N * maxin) : NULL;
    float *du = train ? carve(&cv, N * r) : NULL;
    if (base) { a->lora_xd = xd; a->lora_dxd = dxd; a->lora_du = du; }
    return cv.off;
}

size_t acts_lora_bytes(const hone_model_config *c, const hone_lora *lo, int B, int T, int train, int ckpt) {
    if (!lo) return 0;
    hone_acts a = {0};
    return lora_layout(&a, c, lo, B, T, train, ckpt, NULL);
}

int acts_add_lora(hone_acts *a, const hone_model *m, hone_error *err) {
    if (!m->lora || a->lora_mem) return 0;
    size_t n = lora_layout(a, &m->cfg, m->lora, a->B, a->T, a->train, a->ckpt, NULL);
    a->lora_mem = backend_cpu()->alloc(n ? n : 64, err);
    if (!a->lora_mem) return hone_fail_prefix(err, "LoRA activations for batch %dx%d", a->B, a->T);
    lora_layout(a, &m->cfg, m->lora, a->B, a->T, a->train, a->ckpt, a->lora_mem);
    return 0;
}

int acts_init_model(hone_acts *a, const hone_model *m, int B, int T, int train, int ckpt, hone_error *err) {
    if (acts_init(a, &m->cfg, B, T, train, ckpt, err) < 0) return -1;
    if (acts_add_lora(a, m, err) < 0) { acts_free(a); return -1; }
    return 0;
}

void acts_free(hone_acts *a) {
    free(a->layers);
    free(a->lora_mem);
    free(a->mem);
    memset(a, 0, sizeof *a);
}

_Static_assert(QWEIGHT_NMOD == LORA_NMOD, "held weights are indexed in LoRA's module order");

/* The adapter of module mod in layer l while adapters are on, else NULL. */
static const hone_lora_pair *lora_pair(const hone_model *m, const hone_acts *a, int l, int mod) {
    if (!m->lora || a->lora_off || !m->w.lora) return NULL;
    const hone_lora_pair *p = &m->w.lora[l].mod[mod];
    return p->A ? p : NULL;
}

static uint64_t lora_seed(const hone_acts *a, int l, int mod) {
    uint64_t s = a->lora_seed ^ (a->lora_call * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)(l * LORA_NMOD + mod + 1) << 40);
    return rng_splitmix64(&s);
}

/* lora_dropout's p for this pass: 0 outside training and where the trainer turns it off */
static float lora_p(const hone_model *m, const hone_acts *a) {
    return a->train && !a->lora_no_dropout ? (float)m->lora->cfg.dropout : 0.f;
}

/* the input the adapter sees: x, or lora_dropout(x) in scratch */
static const float *lora_input(const hone_model *m, hone_acts *a, int l, int mod, const float *in, size_t n) {
    float p = lora_p(m, a);
    if (p <= 0.f) return in;
    m->be->lora_dropout(a->lora_xd, in, n, p, lora_seed(a, l, mod));
    return a->lora_xd;
}

/* One linear of layer l: out = in W^T + b, plus the LoRA path of module mod when it has one.
 * The product through the frozen W is this one call (and its twin in linear_backward):
 * the place where a base held in another dtype (bf16, int8, NF4) plugs in. */
static void linear_forward(const hone_model *m, hone_acts *a, int l, int mod, float *out, const float *in, const float *W,
                           const float *b, int N, int IC, int OC) {
    if (W) m->be->matmul_forward(out, in, W, b, N, IC, OC);
    else m->be->qmatmul_forward(out, in, &m->qw[l * QWEIGHT_NMOD + mod], b, N, IC, OC); /* a held base */
    const hone_lora_pair *p = lora_pair(m, a, l, mod);
    if (!p) return;
    const float *xd = lora_input(m, a, l, mod, in, (size_t)N * IC);
    m->be->lora_forward(out, a->layers[l].lora_su[mod], xd, p->A, p->B, m->lora->scale, N, IC, OC, m->lora->cfg.r);
}

/* din = (accumulate ? din : 0) + the input gradient of linear_forward's out; weight
 * gradients into dW, db (NULL: frozen) and the adapter's into g's LoRA view */
static void linear_backward(const hone_model *m, hone_acts *a, const hone_weights *g, int l, int mod, float *din, float *dW,
                            float *db, const float *dout, const float *in, const float *W, int N, int IC, int OC, int accumulate) {
    if (W) m->be->matmul_backward(din, dW, db, dout, in, W, N, IC, OC, accumulate);
    else { /* a held base is frozen: only the input gradient flows through it */
        assert(!dW && !db);
        m->be->qmatmul_backward(din, dout, &m->qw[l * QWEIGHT_NMOD + mod], N, IC, OC, accumulate);
    }
    const hone_lora_pair *p = lora_pair(m, a, l, mod);
    if (!p) return;
    assert(g->lora); /* adapters on: the gradient view must hold theirs (lora_grad_view) */
    hone_lora_pair *gp = &g->lora[l].mod[mod];
    const float *xd = lora_input(m, a, l, mod, in, (size_t)N * IC);
    float pd = lora_p(m, a);
    m->be->lora_backward(din, gp->A, gp->B, a->lora_du, a->lora_dxd, dout, xd, a->layers[l].lora_su[mod], p->A, p->B,
                         m->lora->scale, N, IC, OC, m->lora->cfg.r, pd, lora_seed(a, l, mod));
}

/* the embedding and LM head the forward uses: modules_to_save copies while adapters are on */
static const float *embed_of(const hone_model *m, const hone_acts *a) {
    return m->w.lora_embed && !a->lora_off ? m->w.lora_embed : m->w.embed;
}
static const float *lm_head_of(const hone_model *m, const hone_acts *a) {
    return m->w.lora_lm_head && !a->lora_off ? m->w.lora_lm_head : m->w.lm_head;
}

/* x_out = layer(la->x) */
static void layer_forward(const hone_model *m, hone_acts *a, const hone_batch *b, int l, hone_layer_acts *la, float *x_out) {
    const hone_backend *be = m->be;
    const hone_model_config *c = &m->cfg;
    const hone_layer_weights *W = &m->w.layers[l];
    int N = b->B * b->T, C = c->hidden_size, F = c->intermediate_size, H = c->num_heads, KV = c->num_kv_heads, D = c->head_dim;
    int HD = H * D, KD = KV * D;
    be->rmsnorm_forward(la->ln1, la->rstd1, la->x, W->ln1, c->norm_offset, c->rms_norm_eps, N, C);
    linear_forward(m, a, l, LORA_Q, la->q, la->ln1, W->wq, W->bq, N, C, HD);
    linear_forward(m, a, l, LORA_K, la->k, la->ln1, W->wk, W->bk, N, C, KD);
    linear_forward(m, a, l, LORA_V, la->v, la->ln1, W->wv, W->bv, N, C, KD);
    be->rope_forward(la->q, a->cos, a->sin, N, H, D);
    be->rope_forward(la->k, a->cos, a->sin, N, KV, D);
    be->attention_forward(la->att, la->lse, la->q, la->k, la->v, b, H, KV, D);
    linear_forward(m, a, l, LORA_O, la->xm, la->att, W->wo, W->bo, N, HD, C);
    be->residual_add(la->xm, la->x, (size_t)N * C);
    be->rmsnorm_forward(la->ln2, la->rstd2, la->xm, W->ln2, c->norm_offset, c->rms_norm_eps, N, C);
    linear_forward(m, a, l, LORA_GATE, la->gate, la->ln2, W->wg, W->bg, N, C, F);
    linear_forward(m, a, l, LORA_UP, la->up, la->ln2, W->wu, W->bu, N, C, F);
    be->glu_forward(la->h, la->gate, la->up, (size_t)N * F, c->act);
    linear_forward(m, a, l, LORA_DOWN, x_out, la->h, W->wd, W->bd, N, F, C);
    be->residual_add(x_out, la->xm, (size_t)N * C);
}

/* NEFTune (transformers' neftune_post_forward_hook): uniform noise in +-alpha / sqrt(T * C)
 * on the embedding module's output, during training only. T is the batch's padded length, as
 * the hook's output.size(1); the embeddings are already multiplied by Gemma's sqrt(C), which
 * the hook's noise precedes, so the noise is scaled too. The draws come from hone's PRNG in
 * slot order (the same bits at any thread count), a new stream for every forward. */
static void neftune_noise(hone_acts *a, int N, int T, int C, float scale) {
    hone_rng r;
    rng_seed(&r, a->neftune_seed + 0x9e3779b97f4a7c15ULL * ++a->neftune_calls);
    float mag = (float)(a->neftune_alpha / sqrt((double)T * C));
    float *x = a->layers[0].x;
    for (size_t i = 0; i < (size_t)N * C; i++) x[i] += scale * (mag * (2.f * rng_uniform_f32(&r) - 1.f));
}

void model_forward(const hone_model *m, hone_acts *a, const hone_batch *b) {
    assert(!m->panels && !m->hollow); /* an engine's layout, or released matrices */
    assert(!m->lora || a->lora_off || a->lora_mem); /* adapters need acts_init_model / acts_add_lora */
    const hone_backend *be = m->be;
    const hone_model_config *c = &m->cfg;
    int N = b->B * b->T, C = c->hidden_size, L = c->num_layers;
    float scale = c->scale_embeddings ? (float)sqrt((double)C) : 1.0f;
    if (a->train) a->lora_call = ++a->lora_calls; /* dropout masks: new for every training forward */
    be->embedding_forward(a->layers[0].x, embed_of(m, a), b->tokens, N, C, scale);
    if (a->train && a->neftune_alpha > 0) neftune_noise(a, N, b->T, C, scale);
    be->rope_tables(a->cos, a->sin, b->pos, m->rope_inv_freq, N, c->head_dim);
    for (int l = 0; l < L; l++) {
        float *out = l + 1 < L ? a->layers[l + 1].x : a->x_final;
        if (!a->train && l + 1 < L) out = a->x_final; /* inference: ping-pong through x_final */
        if (!a->train && l > 0) {
            /* the previous layer wrote x_final; move it into the shared input */
            be->upload(a->layers[l].x, a->x_final, sizeof(float) * (size_t)N * C); /* device-to-device on a GPU */
        }
        layer_forward(m, a, b, l, &a->layers[l], out);
    }
    be->rmsnorm_forward(a->xf, a->rstd_f, a->x_final, m->w.norm, c->norm_offset, c->rms_norm_eps, N, C);
}

double model_head(const hone_model *m, hone_acts *a, const hone_batch *b, const float *w, float wscale, hone_weights *g) {
    const hone_backend *be = m->be;
    const hone_model_config *c = &m->cfg;
    int N = b->B * b->T, C = c->hidden_size, V = c->vocab_size;
    int nr = 0;
    for (int i = 0; i < N; i++)
        if (b->labels[i] >= 0) {
            a->rows[nr] = i;
            a->row_labels[nr++] = b->labels[i];
        }
    if (g) be->zero(a->dxf, sizeof(float) * (size_t)N * C);
    /* the head's gradient: the modules_to_save copy's while adapters are on; NULL: frozen */
    float *dlm = !g ? NULL : m->w.lora_lm_head && !a->lora_off ? g->lora_lm_head : g->lm_head;
    double loss = 0.0;
    for (int r0 = 0; r0 < nr; r0 += a->head_chunk) {
        int nc = nr - r0 < a->head_chunk ? nr - r0 : a->head_chunk;
        const int32_t *rows = a->rows + r0;
        be->gather_rows(a->head_x, a->xf, rows, nc, C);
        be->gemm(0, 1, nc, V, C, a->head_x, C, lm_head_of(m, a), C, 0.f, a->head_logits, V);
        if (be->round_bf16) be->round_bf16(a->head_logits, (size_t)nc * V); /* autocast: lm_head's output is bf16 */
        be->ce_rows(a->head_logits, nc, V, a->row_labels + r0, rows, g ? w : NULL, g && !w ? wscale : 0.f, a->tok_logp,
                    a->tok_entropy, a->tok_correct, a->tok_logit_sum, a->want_lssp ? a->tok_lssp : NULL, &a->head_loss,
                    a->tok_loss);
        for (int i = 0; i < nc; i++) loss += (double)(w ? w[rows[i]] : wscale) * a->tok_loss[rows[i]];
        if (g) {
            be->gemm(0, 0, nc, C, V, a->head_logits, V, lm_head_of(m, a), C, 0.f, a->head_dx, C);
            be->scatter_rows(a->dxf, a->head_dx, rows, nc, C);
            if (dlm) be->gemm(1, 0, V, C, nc, a->head_logits, V, a->head_x, C, 1.f, dlm, C);
        }
    }
    return loss;
}

void model_logits(const hone_model *m, const hone_acts *a, const int32_t *slots, int n, float *out) {
    const hone_backend *be = m->be;
    const hone_model_config *c = &m->cfg;
    int C = c->hidden_size, V = c->vocab_size;
    for (int r0 = 0; r0 < n; r0 += a->head_chunk) {
        int nc = n - r0 < a->head_chunk ? n - r0 : a->head_chunk;
        be->gather_rows(a->head_x, a->xf, slots + r0, nc, C);
        be->gemm(0, 1, nc, V, C, a->head_x, C, lm_head_of(m, a), C, 0.f, out + (size_t)r0 * V, V);
        if (be->round_bf16) be->round_bf16(out + (size_t)r0 * V, (size_t)nc * V);
    }
}

static void layer_backward(const hone_model *m, hone_acts *a, const hone_batch *b, int l, hone_layer_acts *la,
                           const hone_weights *g) {
    hone_layer_weights *G = &g->layers[l];
    const hone_backend *be = m->be;
    const hone_model_config *c = &m->cfg;
    const hone_layer_weights *W = &m->w.layers[l];
    int N = b->B * b->T, C = c->hidden_size, F = c->intermediate_size, H = c->num_heads, KV = c->num_kv_heads, D = c->head_dim;
    int HD = H * D, KD = KV * D;
    float off = c->norm_offset;
    /* ln1, ln2 and h are shared by all layers (see layout): rebuilt here from the
     * kept inputs with the forward's kernels, so bitwise what the forward used
     * (with ckpt the whole layer was just recomputed) */
    if (!a->ckpt) be->glu_forward(la->h, la->gate, la->up, (size_t)N * F, c->act);
    /* MLP: a->dx holds d(x_out) and becomes d(xm) */
    linear_backward(m, a, g, l, LORA_DOWN, a->dh, G->wd, G->bd, a->dx, la->h, W->wd, N, F, C, 0);
    be->glu_backward(a->dgate, a->dup, a->dh, la->gate, la->up, (size_t)N * F, c->act);
    if (!a->ckpt) be->rmsnorm_forward(la->ln2, la->rstd2, la->xm, W->ln2, off, c->rms_norm_eps, N, C);
    linear_backward(m, a, g, l, LORA_GATE, a->dln, G->wg, G->bg, a->dgate, la->ln2, W->wg, N, C, F, 0);
    linear_backward(m, a, g, l, LORA_UP, a->dln, G->wu, G->bu, a->dup, la->ln2, W->wu, N, C, F, 1);
    be->rmsnorm_backward(a->dx, G->ln2, a->dln, la->xm, W->ln2, la->rstd2, off, N, C, a->red);
    /* attention: a->dx becomes d(x) */
    linear_backward(m, a, g, l, LORA_O, a->datt, G->wo, G->bo, a->dx, la->att, W->wo, N, HD, C, 0);
    be->attention_backward(a->dq, a->dk, a->dv, a->datt, la->att, la->lse, la->q, la->k, la->v, b, H, KV, D);
    be->rope_backward(a->dq, a->cos, a->sin, N, H, D);
    be->rope_backward(a->dk, a->cos, a->sin, N, KV, D);
    if (!a->ckpt) be->rmsnorm_forward(la->ln1, la->rstd1, la->x, W->ln1, off, c->rms_norm_eps, N, C);
    linear_backward(m, a, g, l, LORA_Q, a->dln, G->wq, G->bq, a->dq, la->ln1, W->wq, N, C, HD, 0);
    linear_backward(m, a, g, l, LORA_K, a->dln, G->wk, G->bk, a->dk, la->ln1, W->wk, N, C, KD, 1);
    linear_backward(m, a, g, l, LORA_V, a->dln, G->wv, G->bv, a->dv, la->ln1, W->wv, N, C, KD, 1);
    be->rmsnorm_backward(a->dx, G->ln1, a->dln, la->x, W->ln1, la->rstd1, off, N, C, a->red);
}

void model_backward(const hone_model *m, hone_acts *a, const hone_batch *b, hone_weights *g) {
    const hone_backend *be = m->be;
    const hone_model_config *c = &m->cfg;
    int N = b->B * b->T, C = c->hidden_size, L = c->num_layers;
    be->zero(a->dx, sizeof(float) * (size_t)N * C);
    be->rmsnorm_backward(a->dx, g->norm, a->dxf, a->x_final, m->w.norm, a->rstd_f, c->norm_offset, N, C, a->red);
    for (int l = L - 1; l >= 0; l--) {
        hone_layer_acts *la = &a->layers[l];
        if (a->ckpt) {
            /* recompute this layer's activations from its saved input; the output
             * goes to scratch (x_final's value is no longer needed) */
            layer_forward(m, a, b, l, la, a->dln);
        }
        layer_backward(m, a, b, l, la, g);
        if (a->layer_done) a->layer_done(a->layer_done_ctx, l);
    }
    float scale = c->scale_embeddings ? (float)sqrt((double)C) : 1.0f;
    be->embedding_backward(m->w.lora_embed && !a->lora_off ? g->lora_embed : g->embed, a->dx, b->tokens, N, C, scale);
    if (a->layer_done) a->layer_done(a->layer_done_ctx, -1);
}
