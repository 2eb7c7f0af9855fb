/* generate/generate.c — the KV-cache inference engine (generate.h). The math is the
 * training forward's (transformer.c), row by row: the same layers.c ops for norms,
 * RoPE tables, GLU and embeddings, the same attn_fwd kernel over the cached keys
 * (so a query sums its keys in the training order), gemm for prompt chunks and
 * matrix-vector products for decoding. */
#include "generate/generate.h"
#include "simd/kernels.h"
#include "simd/quant.h"
#include "model/layers.h"
#include "base/util.h"
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MV_ROWS HONE_PANEL /* weight rows per matrix-vector task: one panel, contiguous streams per thread */
#define PAR_MIN_WORK (1 << 15) /* multiply-adds below which a parallel region costs more than it saves */

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

typedef struct { size_t off; char *base; } carver;
static void *carve(carver *cv, size_t bytes) {
    void *p = cv->base ? cv->base + cv->off : NULL;
    cv->off += (bytes + 63) / 64 * 64;
    return p;
}

static size_t engine_layout(hone_engine *e, char *base) {
    const hone_model_config *c = &e->m->cfg;
    size_t cap = e->cap, C = c->hidden_size, F = c->intermediate_size;
    size_t HD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t cache = (size_t)c->num_layers * e->max_B * e->slot_stride;
    carver cv = {0, base};
    e->kc = carve(&cv, cache * sizeof(float));
    e->vc = carve(&cv, cache * sizeof(float));
    e->x = carve(&cv, cap * C * sizeof(float));
    e->xm = carve(&cv, cap * C * sizeof(float));
    e->xb = carve(&cv, cap * C * sizeof(float));
    e->q = carve(&cv, cap * HD * sizeof(float));
    e->att = carve(&cv, cap * HD * sizeof(float));
    e->k = carve(&cv, cap * KD * sizeof(float));
    e->v = carve(&cv, cap * KD * sizeof(float));
    e->gate = carve(&cv, cap * F * sizeof(float));
    e->up = carve(&cv, cap * F * sizeof(float));
    size_t wide = F > C ? F : C;
    if (HD + 0u > wide) wide = HD;
    e->tmp = carve(&cv, cap * wide * sizeof(float));
    e->rstd = carve(&cv, cap * sizeof(float));
    e->cos = carve(&cv, cap * (c->head_dim / 2) * sizeof(float));
    e->sin = carve(&cv, cap * (c->head_dim / 2) * sizeof(float));
    e->lse = carve(&cv, (size_t)e->nthr * e->max_T * sizeof(float));
    e->zeros = carve(&cv, (size_t)e->max_T * sizeof(int32_t));
    e->rtok = carve(&cv, cap * sizeof(int32_t));
    e->rslot = carve(&cv, cap * sizeof(int32_t));
    e->rpos = carve(&cv, cap * sizeof(int32_t));
    e->rout = carve(&cv, cap * sizeof(int32_t));
    e->ctx_tok = carve(&cv, (size_t)e->max_B * e->max_T * sizeof(int32_t));
    e->ctx_len = carve(&cv, (size_t)e->max_B * sizeof(int32_t));
    return cv.off;
}

int engine_init(hone_engine *e, const hone_model *m, int max_B, int max_T, int cap, hone_error *err) {
    memset(e, 0, sizeof *e);
    const hone_model_config *c = &m->cfg;
    if (m->held) /* the engine multiplies fp32 / bf16 matrices of its own layout */
        return hone_fail(err, "engine: the model's linear weights are held as %s (a QLoRA base); generation loads the model in fp32",
                         quant_type_name(m->held));
    if (max_B < 1) return hone_fail(err, "engine: batch size %d must be at least 1", max_B);
    if (max_T < 2) return hone_fail(err, "engine: context length %d must be at least 2", max_T);
    if (c->max_position_embeddings > 0 && max_T > c->max_position_embeddings) max_T = c->max_position_embeddings;
    if (cap <= 0) cap = 256;
    if (cap < max_B) cap = max_B;
    e->m = m;
    e->max_B = max_B;
    e->max_T = max_T;
    e->cap = cap;
    e->nthr = max_threads();
    e->slot_stride = (size_t)max_T * c->num_kv_heads * c->head_dim;
    size_t bytes = engine_layout(e, NULL);
    e->mem = hone_alloc(bytes, err); /* zeroed: the zeros array and an empty cache */
    if (!e->mem)
        return hone_fail_prefix(err, "engine: KV cache and scratch for %d x %d tokens (%.1f MB)", max_B, max_T,
                                bytes / 1e6);
    engine_layout(e, e->mem);
    return 0;
}

void engine_free(hone_engine *e) {
    free(e->mem);
    free(e->w16);
    memset(e, 0, sizeof *e);
}

/* Permutes one matrix's full groups of 16 rows (rows x K) into panels, in place (a
 * group's rows are the panel's bytes); a last partial group stays row-major. */
#define PANELIZE(T)                                                                               \
    static int panelize_##T(T *base, int rows, int K) {                                           \
        int bad = 0;                                                                              \
        _Pragma("omp parallel reduction(| : bad)")                                                 \
        {                                                                                         \
            T *tmp = malloc(sizeof(T) * HONE_PANEL * (size_t)K);                                 \
            if (!tmp) bad = 1;                                                                    \
            _Pragma("omp for schedule(static)")                                                    \
            for (int g = 0; g < rows / HONE_PANEL; g++) {                                         \
                if (!tmp) continue;                                                               \
                T *p = base + (size_t)g * HONE_PANEL * K;                                         \
                memcpy(tmp, p, sizeof(T) * HONE_PANEL * (size_t)K);                               \
                for (int k = 0; k < K; k++)                                                       \
                    for (int j = 0; j < HONE_PANEL; j++) p[(size_t)k * HONE_PANEL + j] = tmp[(size_t)j * K + k]; \
            }                                                                                     \
            free(tmp);                                                                            \
        }                                                                                         \
        return bad ? -1 : 0;                                                                      \
    }
PANELIZE(float)
PANELIZE(uint16_t)

/* The matrices the engine multiplies by, per layer q, k, v, o, gate, up, down, then
 * lm_head (== embed when tied): pointers into the model, rows, columns (malloc'd). */
typedef struct { int n; const float **w; int *rows, *cols; } mat_list;
static int mat_list_get(mat_list *l, const hone_model *m) {
    const hone_model_config *c = &m->cfg;
    int C = c->hidden_size, F = c->intermediate_size, HD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim;
    l->n = 7 * c->num_layers + 1;
    l->w = malloc(sizeof *l->w * l->n);
    l->rows = malloc(sizeof(int) * l->n);
    l->cols = malloc(sizeof(int) * l->n);
    if (!l->w || !l->rows || !l->cols) return -1;
    int n = 0;
    for (int i = 0; i < c->num_layers; i++) {
        const hone_layer_weights *W = &m->w.layers[i];
        const float *p[7] = {W->wq, W->wk, W->wv, W->wo, W->wg, W->wu, W->wd};
        int r[7] = {HD, KD, KD, C, F, F, C}, k[7] = {C, C, C, HD, C, C, F};
        for (int j = 0; j < 7; j++, n++) { l->w[n] = p[j]; l->rows[n] = r[j]; l->cols[n] = k[j]; }
    }
    l->w[n] = m->w.lm_head;
    l->rows[n] = c->vocab_size;
    l->cols[n] = C;
    return 0;
}
static void mat_list_free(mat_list *l) {
    free(l->w);
    free(l->rows);
    free(l->cols);
}

/* 1 when rounding the n floats at x to bf16 changes one of them. */
static int bf16_lossy(const float *x, size_t n) {
    const size_t BLK = 1 << 12;
    long nblk = (long)((n + BLK - 1) / BLK);
    int lossy = 0;
#pragma omp parallel for schedule(static) reduction(| : lossy)
    for (long b = 0; b < nblk; b++) {
        size_t i0 = (size_t)b * BLK, len = n - i0 < BLK ? n - i0 : BLK;
        uint16_t h[1 << 12];
        float back[1 << 12];
        if (lossy) continue;
        hone_kt.f32_to_bf16(h, x + i0, len);
        hone_kt.bf16_to_f32(back, h, len);
        if (memcmp(back, x + i0, len * sizeof(float))) lossy = 1;
    }
    return lossy;
}

int engine_set_weights(hone_engine *e, int mode, hone_error *err) {
    int release = mode & HONE_WEIGHTS_RELEASE;
    mode &= ~HONE_WEIGHTS_RELEASE;
    free(e->w16);
    e->w16 = NULL;
    e->panels = e->m->panels;
    if (mode == HONE_WEIGHTS_F32) {
        if (e->m->panels) return hone_fail(err, "engine: the model's matrices are already in panels (HONE_WEIGHTS_F32_PANELS)");
        return 0;
    }
    if (mode != HONE_WEIGHTS_BF16 && mode != HONE_WEIGHTS_AUTO && mode != HONE_WEIGHTS_F32_PANELS)
        return hone_fail(err, "engine: unknown weight format %d", mode);
    hone_model *m = (hone_model *)e->m; /* documented: F32_PANELS and RELEASE make the model engine-only */
    if (m->hollow) return hone_fail(err, "engine: the model's fp32 matrices were released");
    mat_list ml;
    if (mat_list_get(&ml, m) < 0) {
        mat_list_free(&ml);
        return hone_fail(err, "engine: out of memory");
    }
    int rc = 0;
    if (mode == HONE_WEIGHTS_F32_PANELS) {
        for (int i = 0; i < ml.n && !m->panels && rc == 0; i++)
            if (panelize_float((float *)ml.w[i], ml.rows[i], ml.cols[i]) < 0) rc = hone_fail(err, "engine: out of memory");
        if (rc == 0) m->panels = e->panels = 1;
        mat_list_free(&ml);
        return rc;
    }
    if (m->panels) {
        mat_list_free(&ml);
        return hone_fail(err, "engine: the model's matrices are in fp32 panels; bf16 needs them row-major");
    }
    /* auto: bf16 only when rounding changes no matrix value (norms, biases and untied
     * embeddings stay fp32 either way) */
    int lossy = 0;
    for (int i = 0; i < ml.n && mode == HONE_WEIGHTS_AUTO && !lossy; i++) lossy = bf16_lossy(ml.w[i], (size_t)ml.rows[i] * ml.cols[i]);
    if (lossy) {
        mat_list_free(&ml);
        return engine_set_weights(e, HONE_WEIGHTS_F32, err);
    }
    /* the copy holds only the matrices (at the model's offsets): unzeroed, so only the
     * pages written take memory, and with release each fp32 matrix goes as its copy is made */
    size_t n = m->num_floats;
    e->w16 = hone_alloc_uninit(n * sizeof(uint16_t), err);
    if (!e->w16) {
        mat_list_free(&ml);
        return hone_fail_prefix(err, "engine: bf16 copy of %zu parameters (%.1f MB)", n, n * 2 / 1e6);
    }
    for (int i = 0; i < ml.n && rc == 0; i++) {
        size_t cnt = (size_t)ml.rows[i] * ml.cols[i];
        uint16_t *dst = e->w16 + (ml.w[i] - m->data);
        const float *src = ml.w[i];
        long nb = (long)((cnt + 65535) / 65536);
#pragma omp parallel for schedule(static)
        for (long b = 0; b < nb; b++) {
            size_t i0 = (size_t)b * 65536, len = cnt - i0 < 65536 ? cnt - i0 : 65536;
            hone_kt.f32_to_bf16(dst + i0, src + i0, len);
        }
        if (panelize_uint16_t(dst, ml.rows[i], ml.cols[i]) < 0) rc = hone_fail(err, "engine: out of memory");
        if (release) hone_release_pages(src, cnt * sizeof(float)); /* a tied embedding is read from the copy too */
    }
    mat_list_free(&ml);
    if (rc < 0) {
        free(e->w16);
        e->w16 = NULL;
        return rc;
    }
    if (release) m->hollow = 1;
    e->panels = 1;
    return 0;
}

void engine_drop_model_matrices(hone_engine *e) {
    if (!e->w16) return;
    hone_model *m = (hone_model *)e->m; /* documented: the model becomes engine-only */
    mat_list ml;
    if (mat_list_get(&ml, m) == 0) {
        for (int i = 0; i < ml.n; i++) hone_release_pages(ml.w[i], sizeof(float) * (size_t)ml.rows[i] * ml.cols[i]);
        m->hollow = 1;
    }
    mat_list_free(&ml);
}

const char *engine_weights_name(const hone_engine *e) {
    return e->w16 ? "bf16 panels" : e->panels ? "fp32 panels" : "fp32 rows";
}

/* The bf16 copy of matrix w (a pointer into the model's block; panels of 16 rows), or NULL in fp32. */
static const uint16_t *w16_of(const hone_engine *e, const float *w) {
    return e->w16 && w ? e->w16 + (w - e->m->data) : NULL;
}

/* One matrix job: out (n, OC) = in (n, IC) @ W^T + b. Wh: W in bf16 panels, or NULL;
 * panels: W (fp32) itself in panels. */
typedef struct { float *out; const float *W, *b; int OC; const uint16_t *Wh; int panels; } mv_job;

/* out rows [0, n) at columns [o0, o1) of jb's matrix from row-major weight rows (fp32,
 * or the bf16 rows after the last full panel), one dot per output. */
static void row_dots(const mv_job *jb, int o0, int o1, const float *in, int n, int IC) {
    for (int o = o0; o < o1; o++) {
        float bias = jb->b ? jb->b[o] : 0.f;
        for (int r = 0; r < n; r++) {
            const float *x = in + (size_t)r * IC;
            float v = jb->Wh ? hone_kt.dot_bf16_f32(jb->Wh + (size_t)o * IC, x, IC) : hone_kt.dot_f32(jb->W + (size_t)o * IC, x, IC);
            jb->out[(size_t)r * jb->OC + o] = v + bias;
        }
    }
}

/* out rows [0, n) at the 16 columns of the panel starting at row o0 of jb's matrix:
 * four inputs per panel load (dot_panel16x4), the rest one by one, each row bitwise the
 * one-input kernel: a row's result does not depend on n. */
static void panel_rows(const mv_job *jb, int o0, const float *in, int n, int IC) {
    float acc[4 * HONE_PANEL];
    for (int r = 0; r < n; r += 4) {
        int nr = n - r < 4 ? n - r : 4;
        const float *x = in + (size_t)r * IC;
        if (nr == 4 && jb->Wh) hone_kt.dot_panel16x4_bf16_f32(acc, HONE_PANEL, jb->Wh + (size_t)o0 * IC, x, IC, IC);
        else if (nr == 4) hone_kt.dot_panel16x4_f32(acc, HONE_PANEL, jb->W + (size_t)o0 * IC, x, IC, IC);
        else
            for (int i = 0; i < nr; i++) {
                if (jb->Wh) hone_kt.dot_panel16_bf16_f32(acc + i * HONE_PANEL, jb->Wh + (size_t)o0 * IC, x + (size_t)i * IC, IC);
                else hone_kt.dot_panel16_f32(acc + i * HONE_PANEL, jb->W + (size_t)o0 * IC, x + (size_t)i * IC, IC);
            }
        for (int i = 0; i < nr; i++) {
            float *out = jb->out + (size_t)(r + i) * jb->OC + o0;
            for (int j = 0; j < HONE_PANEL; j++) out[j] = acc[i * HONE_PANEL + j] + (jb->b ? jb->b[o0 + j] : 0.f);
        }
    }
}

/* Runs several jobs sharing one input in one parallel region. The weight rows of
 * all jobs form one index space cut into MV_ROWS blocks, handed out guided (long
 * contiguous runs first, down to 4 blocks: long streams per thread, and a thread the
 * OS deschedules does not hold back a fixed half of the work; measured on 2 threads
 * against runs of 4 blocks: 90-95 vs 82 tok/s for 135M fp32 when the VM gave two
 * threads 60 GB/s, the same when it gave 35). Each weight row is read once and applied to all n
 * input rows while it is in L1. Each output is one dot_f32: the result does not
 * depend on n, on the schedule or on the thread count. */
static void matvec_jobs(const mv_job *jobs, int nj, const float *in, int n, int IC) {
    int nblk = 0, first[8];
    size_t work = 0;
    for (int j = 0; j < nj; j++) {
        first[j] = nblk;
        nblk += (jobs[j].OC + MV_ROWS - 1) / MV_ROWS;
        work += (size_t)jobs[j].OC * IC * n;
    }
#pragma omp parallel for schedule(guided, 4) if (work >= PAR_MIN_WORK)
    for (int bi = 0; bi < nblk; bi++) {
        int j = nj - 1;
        while (first[j] > bi) j--;
        const mv_job *jb = &jobs[j];
        int o0 = (bi - first[j]) * MV_ROWS, o1 = o0 + MV_ROWS < jb->OC ? o0 + MV_ROWS : jb->OC;
        if ((jb->Wh || jb->panels) && o1 - o0 == HONE_PANEL) {
            panel_rows(jb, o0, in, n, IC);
            continue;
        }
        if (n == 1 && !jb->Wh) { /* one input, row-major: a row kernel streams the block (bitwise the per-row dots) */
            hone_kt.dot_rows_f32(jb->out + o0, jb->W + (size_t)o0 * IC, IC, in, o1 - o0, IC);
            if (jb->b)
                for (int o = o0; o < o1; o++) jb->out[o] += jb->b[o];
            continue;
        }
        row_dots(jb, o0, o1, in, n, IC);
    }
}

/* The element-wise ops of decoding run on the calling thread: a handful of rows
 * is less work than waking the team, and a loaded machine punishes every barrier.
 * Same kernels as layers.c, so the same results. */
static void rmsnorm_rows(float *out, float *rstd, const float *x, const float *w, float off, float eps, int n, int C,
                         int par) {
    if (par) { rmsnorm_forward(out, rstd, x, w, off, eps, n, C); return; }
    for (int i = 0; i < n; i++) rstd[i] = hone_kt.rmsnorm_fwd(out + (size_t)i * C, x + (size_t)i * C, w, off, eps, C);
}

static void rope_rows(float *x, const float *cos, const float *sin, int n, int nh, int D, int par) {
    if (par) { rope_forward(x, cos, sin, n, nh, D); return; }
    for (int i = 0; i < n; i++) hone_kt.rope(x + (size_t)i * nh * D, cos + (size_t)i * (D / 2), sin + (size_t)i * (D / 2), nh, D, 1.0f);
}

static void add_rows(float *y, const float *x, size_t n, int par) {
    if (par) { residual_add(y, x, n); return; }
    for (size_t j = 0; j < n; j++) y[j] += x[j];
}

static void glu_rows(float *h, const float *gate, const float *up, size_t n, int act, int par) {
    if (par) { glu_forward(h, gate, up, n, act); return; }
    hone_kt.glu_fwd(h, gate, up, (int)n, act);
}

/* Prompt chunks: out^T (OC, n) = W @ in^T with the weights as gemm's A operand (packed
 * row-wise, cheaper than packing them transposed as the B operand), then transposed
 * into out with the bias. tmp: (OC, n) scratch. */
static void linear_gemm(const mv_job *jb, const float *in, int n, int IC, float *tmp) {
    int OC = jb->OC;
    hone_kt.gemm_f32(0, 1, OC, n, IC, jb->W, IC, in, IC, 0.f, tmp, n);
#pragma omp parallel for schedule(static) if ((size_t)OC * n >= PAR_MIN_WORK)
    for (int o0 = 0; o0 < OC; o0 += 32) {
        int o1 = o0 + 32 < OC ? o0 + 32 : OC;
        for (int r = 0; r < n; r++)
            for (int o = o0; o < o1; o++) jb->out[(size_t)r * OC + o] = tmp[(size_t)o * n + r] + (jb->b ? jb->b[o] : 0.f);
    }
}

/* Prompt chunks on panel weights: each panel is applied to the inputs four at a time
 * (dot_panel16x4: one panel load for four rows) with the one-input order, so every
 * row's result is bitwise what decoding computes for it. Panels are split across
 * threads; the rows of a last partial group use row dots. */
static void linear_panels(const mv_job *jobs, int nj, const float *in, int n, int IC) {
    for (int j = 0; j < nj; j++) {
        const mv_job *jb = &jobs[j];
        int OC = jb->OC, ng = OC / HONE_PANEL;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)OC * IC * n >= PAR_MIN_WORK)
        for (int g = 0; g <= ng; g++) {
            int o0 = g * HONE_PANEL;
            if (g == ng) row_dots(jb, o0, OC, in, n, IC); /* the partial group: row-major rows */
            else panel_rows(jb, o0, in, n, IC);
        }
    }
}

static void linear(hone_engine *e, const mv_job *jobs, int nj, const float *in, int n, int IC, int use_gemm) {
    if (!use_gemm) { matvec_jobs(jobs, nj, in, n, IC); return; }
    if (e->panels) { linear_panels(jobs, nj, in, n, IC); return; }
    for (int j = 0; j < nj; j++) linear_gemm(&jobs[j], in, n, IC, e->tmp);
}

void engine_forward(hone_engine *e, int n, const int32_t *tokens, const int32_t *slots, const int32_t *pos,
                    int use_gemm, int n_out, const int32_t *out_rows, float *logits) {
    const hone_model *m = e->m;
    const hone_model_config *c = &m->cfg;
    int C = c->hidden_size, F = c->intermediate_size, H = c->num_heads, KV = c->num_kv_heads, D = c->head_dim;
    int HD = H * D, KD = KV * D, g = H / KV, V = c->vocab_size;
    float scale = 1.0f / sqrtf((float)D);
    assert(n <= e->cap && n_out <= e->cap);
    int nt = max_threads() < e->nthr ? max_threads() : e->nthr; /* the lse scratch has e->nthr rows */
    size_t att_work = 0;
    for (int r = 0; r < n; r++) att_work += (size_t)(pos[r] + 1) * HD * 2;
    /* element-wise ops in parallel only for big prompt chunks: a few rows are less work
     * than waking the team, and a loaded machine punishes every barrier */
    int par = use_gemm && (size_t)n * F >= PAR_MIN_WORK;
    float escale = c->scale_embeddings ? (float)sqrt((double)C) : 1.0f;
    /* tied embeddings are the head's panels: fp32 in the model, or the bf16 copy */
    int embed_panels = (m->panels || e->w16) && m->w.embed == m->w.lm_head;
    const uint16_t *embed16 = embed_panels ? w16_of(e, m->w.embed) : NULL;
    if (par && !embed_panels) {
        embedding_forward(e->x, m->w.embed, tokens, n, C, escale);
        rope_tables(e->cos, e->sin, pos, m->rope_inv_freq, n, D);
    } else {
        for (int r = 0; r < n; r++) {
            int t = tokens[r];
            float *xr = e->x + (size_t)r * C;
            size_t at = (size_t)t * C, step = 1; /* row t: row-major, or lane t % 16 of its panel */
            if (embed_panels && t < V / HONE_PANEL * HONE_PANEL) {
                at = (size_t)(t / HONE_PANEL) * HONE_PANEL * C + t % HONE_PANEL;
                step = HONE_PANEL;
            }
            if (embed16) {
                for (int j = 0; j < C; j++) {
                    uint32_t u = (uint32_t)embed16[at + (size_t)j * step] << 16;
                    float w;
                    memcpy(&w, &u, 4);
                    xr[j] = w * escale;
                }
            } else if (embed_panels) {
                for (int j = 0; j < C; j++) xr[j] = m->w.embed[at + (size_t)j * step] * escale;
            } else {
                const float *er = m->w.embed + (size_t)t * C;
                for (int j = 0; j < C; j++) xr[j] = er[j] * escale;
            }
            for (int j = 0; j < D / 2; j++) { /* as rope_tables: an fp32 product */
                float f = (float)pos[r] * m->rope_inv_freq[j];
                e->cos[(size_t)r * (D / 2) + j] = cosf(f);
                e->sin[(size_t)r * (D / 2) + j] = sinf(f);
            }
        }
    }
    for (int l = 0; l < c->num_layers; l++) {
        const hone_layer_weights *W = &m->w.layers[l];
        float *kc = e->kc + (size_t)l * e->max_B * e->slot_stride, *vc = e->vc + (size_t)l * e->max_B * e->slot_stride;
        rmsnorm_rows(e->xb, e->rstd, e->x, W->ln1, c->norm_offset, c->rms_norm_eps, n, C, par);
        int pf = e->panels && !e->w16; /* fp32 panels in the model */
        mv_job qkv[3] = {{e->q, W->wq, W->bq, HD, w16_of(e, W->wq), pf},
                         {e->k, W->wk, W->bk, KD, w16_of(e, W->wk), pf},
                         {e->v, W->wv, W->bv, KD, w16_of(e, W->wv), pf}};
        linear(e, qkv, 3, e->xb, n, C, use_gemm);
        rope_rows(e->q, e->cos, e->sin, n, H, D, par);
        rope_rows(e->k, e->cos, e->sin, n, KV, D, par);
        for (int r = 0; r < n && l == 0; r++) { /* what the cache now holds, for prefix reuse */
            e->ctx_tok[(size_t)slots[r] * e->max_T + pos[r]] = tokens[r];
            e->ctx_len[slots[r]] = pos[r] + 1;
        }
        for (int r = 0; r < n; r++) {
            size_t at = (size_t)slots[r] * e->slot_stride + (size_t)pos[r] * KD;
            memcpy(kc + at, e->k + (size_t)r * KD, sizeof(float) * KD);
            memcpy(vc + at, e->v + (size_t)r * KD, sizeof(float) * KD);
        }
        /* query (row r, head h) at position p sees cache rows [0, p] of its slot:
         * sq = so = 0 make attn_fwd's row index p address the single query row */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (att_work >= PAR_MIN_WORK)
        for (int t = 0; t < n * H; t++) {
            int r = t / H, h = t % H;
            const float *ks = kc + (size_t)slots[r] * e->slot_stride + (size_t)(h / g) * D;
            const float *vs = vc + (size_t)slots[r] * e->slot_stride + (size_t)(h / g) * D;
            hone_kt.attn_fwd(e->att + (size_t)r * HD + (size_t)h * D, e->lse + (size_t)thread_id() * e->max_T,
                             e->q + (size_t)r * HD + (size_t)h * D, ks, vs, pos[r], pos[r] + 1, D, 0, KD, 0, e->zeros,
                             e->zeros, e->zeros, scale);
        }
        mv_job o = {e->xm, W->wo, W->bo, C, w16_of(e, W->wo), pf};
        linear(e, &o, 1, e->att, n, HD, use_gemm);
        add_rows(e->xm, e->x, (size_t)n * C, par);
        rmsnorm_rows(e->xb, e->rstd, e->xm, W->ln2, c->norm_offset, c->rms_norm_eps, n, C, par);
        mv_job gu[2] = {{e->gate, W->wg, W->bg, F, w16_of(e, W->wg), pf}, {e->up, W->wu, W->bu, F, w16_of(e, W->wu), pf}};
        linear(e, gu, 2, e->xb, n, C, use_gemm);
        glu_rows(e->gate, e->gate, e->up, (size_t)n * F, c->act, par);
        mv_job d = {e->x, W->wd, W->bd, C, w16_of(e, W->wd), pf};
        linear(e, &d, 1, e->gate, n, F, use_gemm);
        add_rows(e->x, e->xm, (size_t)n * C, par);
    }
    if (n_out <= 0) return;
    /* final norm of the wanted rows only, then the head as matrix-vector products */
    for (int i = 0; i < n_out; i++)
        e->rstd[i] = hone_kt.rmsnorm_fwd(e->xb + (size_t)i * C, e->x + (size_t)out_rows[i] * C, m->w.norm, c->norm_offset,
                                         c->rms_norm_eps, C);
    mv_job head = {logits, m->w.lm_head, NULL, V, w16_of(e, m->w.lm_head), e->panels && !e->w16};
    matvec_jobs(&head, 1, e->xb, n_out, C);
}

void engine_prefill(hone_engine *e, int slot, const int32_t *tokens, int n, int p0, float *logits) {
    int32_t *slots = e->rslot, *pos = e->rpos;
    for (int i0 = 0; i0 < n; i0 += e->cap) {
        int nc = n - i0 < e->cap ? n - i0 : e->cap;
        for (int i = 0; i < nc; i++) { slots[i] = slot; pos[i] = p0 + i0 + i; }
        int last = nc - 1, want = logits && i0 + nc == n;
        engine_forward(e, nc, tokens + i0, slots, pos, 1, want, &last, logits);
    }
}

void gen_options_defaults(hone_gen_options *o) {
    memset(o, 0, sizeof *o);
    sampling_defaults(&o->s);
    o->max_new_tokens = 128;
}

void gen_output_free(hone_gen_output *o) {
    free(o->tokens);
    free(o->text);
    memset(o, 0, sizeof *o);
}

/* One sequence being generated in a cache slot. */
typedef struct {
    int prompt;       /* index into the prompts, -1 when the slot is free */
    int pos;          /* tokens in the cache */
    int fed;          /* prompt tokens already in the cache */
    hone_rng rng;
    uint8_t *seen;    /* (V) ids in prompt + completion, for the repetition penalty */
    size_t emitted;   /* text bytes already streamed */
    int32_t *dec;     /* (max_new_tokens + 1) the prompt's last token, then the completion */
} gen_seq;

static int is_stop_id(const hone_gen_options *o, int32_t t) {
    for (int i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids[i] == t) return 1;
    return 0;
}

/* Streams text[emitted..end) */
static void stream_to(gen_seq *s, hone_gen_output *out, size_t end, hone_stream_fn stream, void *ctx) {
    if (stream && end > s->emitted) stream(ctx, s->prompt, out->text + s->emitted, end - s->emitted);
    if (end > s->emitted) s->emitted = end;
}

/* The completion's text: decoded after the prompt's last token, then that token's own
 * text removed, so that the completion keeps the leading space a SentencePiece decoder
 * strips at the start of a text. When the two do not split cleanly (that token is a byte
 * that merges with the completion's first byte-fallback pieces, or decodes to U+FFFD
 * alone), the completion is decoded alone, as transformers does. Always valid UTF-8. */
static int completion_text(const hone_tokenizer *tok, const int32_t *dec, int n, char **text, size_t *len, hone_error *err) {
    char *pre = NULL, *full = NULL;
    size_t np = 0, nf = 0;
    if (tokenizer_decode(tok, dec, 1, 1, &pre, &np, err) < 0) return -1;
    if (tokenizer_decode(tok, dec, (size_t)n + 1, 1, &full, &nf, err) < 0) { free(pre); return -1; }
    int clean = nf >= np && !memcmp(full, pre, np) && !memmem(pre, np, "\xEF\xBF\xBD", 3);
    free(pre);
    if (clean) {
        memmove(full, full + np, nf - np + 1);
        *text = full, *len = nf - np;
        return 0;
    }
    free(full);
    return tokenizer_decode(tok, dec + 1, (size_t)n, 1, text, len, err);
}

/* Whether id is a byte-fallback piece "<0xNN>": a run of them decodes as one group
 * (valid UTF-8, or one U+FFFD per byte), so the text of a trailing run may still change. */
static int is_byte_token(const hone_tokenizer *tok, int32_t id) {
    const char *p = tokenizer_id_to_token(tok, id);
    return p && strlen(p) == 6 && !strncmp(p, "<0x", 3) && isxdigit((unsigned char)p[3]) && isxdigit((unsigned char)p[4]) && p[5] == '>';
}

/* Bytes at the end of the text that are not final yet (held back while streaming, as
 * transformers' TextStreamer holds back text that may still change): trailing U+FFFD
 * (an incomplete character whose bytes are still to come) and the text of a trailing
 * run of k byte-fallback pieces (k bytes when they form whole characters: a further
 * byte would join their group and change it). The result ends on a character boundary. */
static size_t unsettled_tail(const hone_tokenizer *tok, const hone_gen_output *out, size_t end) {
    const char *t = out->text;
    size_t hold = 0, k = 0;
    while (end - hold >= 3 && !memcmp(t + end - hold - 3, "\xEF\xBF\xBD", 3)) hold += 3;
    for (int i = out->n_tokens - 1; i >= 0 && is_byte_token(tok, out->tokens[i]); i--) k++;
    if (k > hold) hold = k < end ? k : end;
    while (hold < end && ((unsigned char)t[end - hold] & 0xC0) == 0x80) hold++; /* never inside a character */
    return hold;
}

/* Appends token t chosen for s; returns 1 when the sequence is finished. */
static int gen_accept(hone_engine *e, const hone_tokenizer *tok, const hone_gen_options *o, gen_seq *s,
                      hone_gen_output *out, int32_t t, hone_stream_fn stream, void *ctx, hone_error *err) {
    out->tokens[out->n_tokens++] = t;
    int done = 0;
    if (is_stop_id(o, t)) {
        out->finish = HONE_FINISH_STOP_TOKEN;
        done = 1;
    } else {
        s->seen[t] = 1;
        if (tok) {
            char *text = NULL;
            size_t len = 0;
            s->dec[out->n_tokens] = t;
            if (completion_text(tok, s->dec, out->n_tokens, &text, &len, err) < 0) return -1;
            free(out->text);
            out->text = text;
            out->text_len = len;
            long at = gen_stop_find(text, len, o->stop_strings, o->n_stop_strings);
            if (at >= 0) {
                out->text_len = (size_t)at;
                text[at] = 0;
                out->finish = HONE_FINISH_STOP_STRING;
                done = 1;
            }
        }
        if (!done && (out->n_tokens >= o->max_new_tokens || s->pos >= e->max_T)) {
            out->finish = HONE_FINISH_LENGTH;
            done = 1;
        }
    }
    if (!out->text) return done;
    size_t end = out->text_len;
    if (!done) {
        size_t hold = gen_stop_holdback(out->text, end, o->stop_strings, o->n_stop_strings), u = unsettled_tail(tok, out, end);
        end -= hold > u ? hold : u;
        while (end > s->emitted && ((unsigned char)out->text[end] & 0xC0) == 0x80) end--;
    }
    stream_to(s, out, end, stream, ctx);
    return done;
}

int generate_run(hone_engine *e, const hone_tokenizer *tok, const hone_gen_options *o, int n,
                 const int32_t *const *prompts, const int *prompt_lens, hone_stream_fn stream, void *ctx,
                 hone_gen_output *out, hone_error *err) {
    const hone_model_config *c = &e->m->cfg;
    int V = c->vocab_size, B = e->max_B;
    if (sampling_check(&o->s, err) < 0) return -1;
    if (o->max_new_tokens < 1) return hone_fail(err, "max_new_tokens %d: must be at least 1", o->max_new_tokens);
    for (int i = 0; i < n; i++) {
        if (prompt_lens[i] < 1) return hone_fail(err, "prompt %d is empty (no tokens)", i + 1);
        if (prompt_lens[i] >= e->max_T)
            return hone_fail(err, "prompt %d has %d tokens; the context holds %d", i + 1, prompt_lens[i], e->max_T);
        for (int j = 0; j < prompt_lens[i]; j++)
            if (prompts[i][j] < 0 || prompts[i][j] >= V)
                return hone_fail(err, "prompt %d: token id %d outside the vocabulary (%d)", i + 1, prompts[i][j], V);
    }
    memset(out, 0, sizeof *out * (size_t)n);
    hone_sampler sp = {0};
    gen_seq *seqs = calloc(B, sizeof *seqs);
    uint8_t *seen = calloc((size_t)B, V);
    int32_t *dec = malloc(sizeof(int32_t) * (size_t)B * (o->max_new_tokens + 1));
    float *logits = hone_alloc(sizeof(float) * (size_t)B * V, err);
    int rc = -1;
    if (!seqs || !seen || !dec || !logits || sampler_init(&sp, V, err) < 0) { hone_fail(err, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        out[i].tokens = malloc(sizeof(int32_t) * (size_t)(o->max_new_tokens + 1));
        out[i].prompt_tokens = prompt_lens[i];
        if (!out[i].tokens) { hone_fail(err, "out of memory"); goto done; }
    }
    for (int b = 0; b < B; b++) { seqs[b].prompt = -1; seqs[b].seen = seen + (size_t)b * V; }
    int next = 0;
    for (;;) {
        /* admit prompts into free slots, then process their prompts in gemm chunks */
        for (int b = 0; b < B && next < n; b++) {
            gen_seq *s = &seqs[b];
            if (s->prompt >= 0) continue;
            memset(s, 0, sizeof *s);
            s->seen = seen + (size_t)b * V;
            memset(s->seen, 0, V);
            s->prompt = next++;
            s->dec = dec + (size_t)b * (o->max_new_tokens + 1);
            s->dec[0] = prompts[s->prompt][prompt_lens[s->prompt] - 1];
            rng_seed(&s->rng, o->seed);
            for (int j = 0; j < prompt_lens[s->prompt]; j++) s->seen[prompts[s->prompt][j]] = 1;
            if (o->reuse_prefix) { /* skip what the slot's cache already holds; the last token is always run */
                const int32_t *p = prompts[s->prompt], *ct = e->ctx_tok + (size_t)b * e->max_T;
                int pl = prompt_lens[s->prompt], k = 0;
                while (k < pl - 1 && k < e->ctx_len[b] && ct[k] == p[k]) k++;
                s->fed = k;
                out[s->prompt].cached_tokens = k;
            }
        }
        for (;;) {
            int nr = 0, n_out = 0;
            for (int b = 0; b < B && nr < e->cap; b++) {
                gen_seq *s = &seqs[b];
                int pl = s->prompt >= 0 ? prompt_lens[s->prompt] : 0;
                while (s->prompt >= 0 && s->fed < pl && nr < e->cap) {
                    e->rtok[nr] = prompts[s->prompt][s->fed];
                    e->rslot[nr] = b;
                    e->rpos[nr] = s->fed++;
                    if (s->fed == pl) e->rout[n_out++] = nr;
                    nr++;
                }
            }
            if (!nr) break;
            engine_forward(e, nr, e->rtok, e->rslot, e->rpos, 1, n_out, e->rout, logits);
            for (int i = 0; i < n_out; i++) {
                int b = e->rslot[e->rout[i]];
                gen_seq *s = &seqs[b];
                s->pos = s->fed;
                float *lg = logits + (size_t)i * V;
                sampling_process(&o->s, &sp, lg, s->seen);
                int d = gen_accept(e, tok, o, s, &out[s->prompt], sampling_pick(&o->s, lg, V, &s->rng), stream, ctx, err);
                if (d < 0) goto done;
                if (d) s->prompt = -1;
            }
        }
        /* one decoding step for every active slot */
        int nb = 0;
        for (int b = 0; b < B; b++) {
            gen_seq *s = &seqs[b];
            if (s->prompt < 0) continue;
            hone_gen_output *so = &out[s->prompt];
            e->rtok[nb] = so->tokens[so->n_tokens - 1];
            e->rslot[nb] = b;
            e->rpos[nb] = s->pos;
            e->rout[nb] = nb;
            nb++;
        }
        if (!nb) {
            if (next >= n) break;
            continue;
        }
        engine_forward(e, nb, e->rtok, e->rslot, e->rpos, 0, nb, e->rout, logits);
        for (int i = 0; i < nb; i++) {
            gen_seq *s = &seqs[e->rslot[i]];
            s->pos++;
            float *lg = logits + (size_t)i * V;
            sampling_process(&o->s, &sp, lg, s->seen);
            int d = gen_accept(e, tok, o, s, &out[s->prompt], sampling_pick(&o->s, lg, V, &s->rng), stream, ctx, err);
            if (d < 0) goto done;
            if (d) s->prompt = -1;
        }
    }
    rc = 0;
done:
    if (rc < 0)
        for (int i = 0; i < n; i++) gen_output_free(&out[i]);
    sampler_free(&sp);
    free(seqs);
    free(seen);
    free(dec);
    free(logits);
    return rc;
}
