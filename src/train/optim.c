/* train/optim.c — AdamW, bitsandbytes' blockwise 8-bit AdamW, and clipping (optim.h). */
#include "train/optim.h"
#include "simd/kernels.h"
#include "model/layers.h"
#include "base/util.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int adamw_init(hone_adamw *o, size_t n, double b1, double b2, double eps, double wd, hone_error *err) {
    memset(o, 0, sizeof *o);
    o->n = n;
    o->m = hone_alloc(sizeof(float) * o->n, err);
    o->v = hone_alloc(sizeof(float) * o->n, err);
    if (!o->m || !o->v) { adamw_free(o); return -1; }
    o->b1 = b1; o->b2 = b2; o->eps = eps; o->wd = wd;
    return 0;
}

int adamw_8bit_eligible(const hone_param *p) {
    /* transformers' Trainer registers every nn.Embedding weight for 32-bit state (a PEFT
     * modules_to_save copy of embed_tokens is one too) */
    return p->numel >= OPTIM_8BIT_MIN_SIZE && !strstr(p->name, "embed_tokens");
}

static size_t nblocks_of(size_t n) { return (n + OPTIM_8BIT_BLOCK - 1) / OPTIM_8BIT_BLOCK; }

size_t adamw_state_bytes(int kind, const hone_param *params, int n_params) {
    size_t b = 0;
    for (int i = 0; i < n_params; i++) {
        size_t n = params[i].numel;
        b += kind == HONE_OPTIM_ADAMW_8BIT && adamw_8bit_eligible(&params[i]) ? 2 * n + 2 * sizeof(float) * nblocks_of(n)
                                                                              : 2 * sizeof(float) * n;
    }
    return b;
}

int adamw_init_8bit(hone_adamw *o, const hone_param *params, int n_params, double b1, double b2, double eps, double wd,
                    hone_error *err) {
    memset(o, 0, sizeof *o);
    o->kind = HONE_OPTIM_ADAMW_8BIT;
    o->b1 = b1; o->b2 = b2; o->eps = eps; o->wd = wd;
    o->n_params = n_params;
    int np = n_params > 0 ? n_params : 1;
    o->is8 = hone_alloc(np, err);
    o->soff = hone_alloc(sizeof(size_t) * np, err);
    o->boff = hone_alloc(sizeof(size_t) * np, err);
    if (!o->is8 || !o->soff || !o->boff) { adamw_free(o); return -1; }
    for (int i = 0; i < n_params; i++) {
        const hone_param *p = &params[i];
        o->n += p->numel;
        o->is8[i] = (uint8_t)adamw_8bit_eligible(p);
        if (o->is8[i]) {
            o->soff[i] = o->nq; o->boff[i] = o->nblocks;
            o->nq += p->numel; o->nblocks += nblocks_of(p->numel);
        } else {
            o->soff[i] = o->n32; o->boff[i] = 0;
            o->n32 += p->numel;
        }
    }
    /* state starts zero: bytes 0 with absmax 0 dequantise to 0 whatever code[0] is */
    o->m = hone_alloc(sizeof(float) * (o->n32 ? o->n32 : 1), err);
    o->v = hone_alloc(sizeof(float) * (o->n32 ? o->n32 : 1), err);
    o->q1 = hone_alloc(o->nq ? o->nq : 1, err);
    o->q2 = hone_alloc(o->nq ? o->nq : 1, err);
    o->absmax1 = hone_alloc(sizeof(float) * (o->nblocks ? o->nblocks : 1), err);
    o->absmax2 = hone_alloc(sizeof(float) * (o->nblocks ? o->nblocks : 1), err);
    if (!o->m || !o->v || !o->q1 || !o->q2 || !o->absmax1 || !o->absmax2) { adamw_free(o); return -1; }
    memset(o->m, 0, sizeof(float) * o->n32);
    memset(o->v, 0, sizeof(float) * o->n32);
    memset(o->q1, 0, o->nq);
    memset(o->q2, 0, o->nq);
    memset(o->absmax1, 0, sizeof(float) * o->nblocks);
    memset(o->absmax2, 0, sizeof(float) * o->nblocks);
    optim_dynamic_map(o->qmap1, 1);
    optim_dynamic_map(o->qmap2, 0);
    o->lut1 = hone_alloc(OPTIM_LUT_SIZE, err);
    o->lut2 = hone_alloc(OPTIM_LUT_SIZE, err);
    if (!o->lut1 || !o->lut2) { adamw_free(o); return -1; }
    optim_quantize_lut(o->qmap1, o->lut1);
    optim_quantize_lut(o->qmap2, o->lut2);
    return 0;
}

void adamw_free(hone_adamw *o) {
    free(o->m);
    free(o->v);
    free(o->is8);
    free(o->soff);
    free(o->boff);
    free(o->q1);
    free(o->q2);
    free(o->absmax1);
    free(o->absmax2);
    free(o->lut1);
    free(o->lut2);
    memset(o, 0, sizeof *o);
}

/* ---- bitsandbytes' dynamic map and blockwise quantisation ---- */

/* torch.linspace(0.1, 1, steps) in float32 as ATen's CPU kernel computes it: halves from each
 * end, each value one fused multiply-add (checked bit for bit against torch 2.15) */
static float linspace_at(int i, int steps) {
    float start = 0.1f, end = 1.0f, step = (end - start) / (float)(steps - 1);
    return i < steps / 2 ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - i - 1), end);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void optim_dynamic_map(float code[256], int is_signed) {
    /* create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): for each exponent i, the
     * midpoints of a linear grid on [0.1, 1] scaled by 10^(i-6) (and negated when signed), then
     * 0 and 1, sorted */
    int n = 0;
    for (int i = 0; i < 7; i++) {
        int items = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
        float scale = (float)pow(10.0, -6 + i);
        for (int j = 0; j + 1 < items; j++) {
            float mean = (linspace_at(j, items) + linspace_at(j + 1, items)) / 2.0f;
            code[n++] = scale * mean;
            if (is_signed) code[n++] = -scale * mean;
        }
    }
    code[n++] = 0;
    code[n++] = 1.0f;
    while (n < 256) code[n++] = 0;
    qsort(code, 256, sizeof(float), cmp_float);
}

void optim_quantize_lut(const float code[256], uint8_t lut[OPTIM_LUT_SIZE]) {
    /* bitsandbytes' build_quantize_lut: 65536 points evenly over [-1, 1], each given the
     * nearest code by the midpoints between neighbouring codes */
    float mid[255];
    for (int i = 0; i < 255; i++) mid[i] = 0.5f * (code[i] + code[i + 1]);
    int c = 0;
    for (int i = 0; i < OPTIM_LUT_SIZE; i++) {
        float val = -1.0f + (2.0f * (float)i) / (float)(OPTIM_LUT_SIZE - 1);
        while (c < 255 && mid[c] < val) c++;
        lut[i] = (uint8_t)c;
    }
}

/* quantize_cpu_impl for one block: absmax (0 for an all-zero block, whose bytes are 0), the
 * value times 1/absmax clamped to [-1, 1], then the table */
static void quantize_block(const uint8_t *lut, const float *a, size_t n, uint8_t *out, float *absmax) {
    float am = 0.0f;
    for (size_t i = 0; i < n; i++) am = fmaxf(am, fabsf(a[i]));
    *absmax = am;
    if (am == 0.0f) { memset(out, 0, n); return; }
    float inv = 1.0f / am;
    for (size_t i = 0; i < n; i++) {
        float v = a[i] * inv;
        v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
        out[i] = lut[(uint16_t)((v + 1.0f) * 0.5f * (float)(OPTIM_LUT_SIZE - 1) + 0.5f)];
    }
}

void optim_quantize_blockwise(const uint8_t *lut, const float *a, size_t n, uint8_t *out, float *absmax) {
    for (size_t s = 0; s < n; s += OPTIM_8BIT_BLOCK)
        quantize_block(lut, a + s, n - s < OPTIM_8BIT_BLOCK ? n - s : OPTIM_8BIT_BLOCK, out + s, &absmax[s / OPTIM_8BIT_BLOCK]);
}

void optim_dequantize_blockwise(const float code[256], const uint8_t *q, const float *absmax, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = code[q[i]] * absmax[i / OPTIM_8BIT_BLOCK];
}

/* One 256-block of bitsandbytes' CPU 8-bit Adam (_optimizer_update_8bit_blockwise_cpu): dequantise,
 * update in fp32 with torch's op order (add with alpha is an FMA in ATen's vectorised path,
 * addcmul and addcdiv multiply the scalar first), update p, requantise. */
static void update_block_8bit(const hone_adamw *o, float *p, const float *g, uint8_t *q1, uint8_t *q2, float *a1, float *a2,
                              size_t n, float decay, float c2, float step_f, float gscale) {
    float m[OPTIM_8BIT_BLOCK], v[OPTIM_8BIT_BLOCK];
    float b1 = (float)o->b1, b2 = (float)o->b2, ob1 = (float)(1.0 - o->b1), ob2 = (float)(1.0 - o->b2), eps = (float)o->eps;
    for (size_t i = 0; i < n; i++) {
        float gr = g[i] * gscale;
        float mi = o->qmap1[q1[i]] * *a1, vi = o->qmap2[q2[i]] * *a2;
        mi = fmaf(gr, ob1, mi * b1);
        vi = vi * b2 + ob2 * gr * gr;
        float denom = sqrtf(vi) / c2 + eps;
        float pi = p[i];
        if (decay != 1.0f) pi = pi * decay;
        p[i] = pi + step_f * mi / denom;
        m[i] = mi; v[i] = vi;
    }
    quantize_block(o->lut1, m, n, q1, a1);
    quantize_block(o->lut2, v, n, q2, a2);
}

/* bitsandbytes' CPU 32-bit Adam (_optimizer_update_32bit_cpu), for the small tensors of an 8-bit optimizer */
static void update_32bit_bnb(const hone_adamw *o, float *p, const float *g, float *m, float *v, size_t n, float decay,
                             float eps_c2, float step_size, float gscale) {
    float b1 = (float)o->b1, b2 = (float)o->b2, ob1 = (float)(1.0 - o->b1), ob2 = (float)(1.0 - o->b2);
    for (size_t i = 0; i < n; i++) {
        float gr = g[i] * gscale;
        float mi = fmaf(gr, ob1, m[i] * b1);
        float vi = v[i] * b2 + ob2 * gr * gr;
        m[i] = mi; v[i] = vi;
        float pi = p[i];
        if (decay != 1.0f) pi = pi * decay;
        float u = mi / (sqrtf(vi) + eps_c2);
        p[i] = fmaf(u, step_size, pi);
    }
}

static void update_8bit(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale) {
    double c1 = 1.0 - pow(o->b1, (double)o->step), c2 = sqrt(1.0 - pow(o->b2, (double)o->step));
    for (int i = 0; i < n_params; i++) {
        const hone_param *p = &params[i];
        double wd = p->no_decay ? 0.0 : o->wd;
        float decay = wd > 0.0 ? (float)(1.0 - lr * wd) : 1.0f;
        size_t n = p->numel;
        float *pd = data + p->offset;
        const float *gd = g + p->offset;
        if (!o->is8[i]) {
            float *m = o->m + o->soff[i], *v = o->v + o->soff[i];
            float eps_c2 = (float)(o->eps * c2), step_size = (float)(-lr * c2 / c1);
            enum { BLOCK = 1 << 14 };
#pragma omp parallel for schedule(static)
            for (size_t s = 0; s < n; s += BLOCK)
                update_32bit_bnb(o, pd + s, gd + s, m + s, v + s, (s + BLOCK < n ? s + BLOCK : n) - s, decay, eps_c2, step_size, gscale);
            continue;
        }
        uint8_t *q1 = o->q1 + o->soff[i], *q2 = o->q2 + o->soff[i];
        float *a1 = o->absmax1 + o->boff[i], *a2 = o->absmax2 + o->boff[i];
        float step_f = (float)(-lr / c1), c2f = (float)c2;
        size_t nb = nblocks_of(n);
        /* each 256-block is independent: any thread split gives the same bits */
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            size_t s = b * OPTIM_8BIT_BLOCK, e = s + OPTIM_8BIT_BLOCK < n ? s + OPTIM_8BIT_BLOCK : n;
            update_block_8bit(o, pd + s, gd + s, q1 + s, q2 + s, a1 + b, a2 + b, e - s, decay, c2f, step_f, gscale);
        }
    }
}

void adamw_update(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale) {
    adamw_update_range(o, params, n_params, data, g, lr, gscale, 0, (size_t)-1);
}

void adamw_update_range(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale,
                        size_t lo, size_t hi) {
    o->step++;
    if (o->kind == HONE_OPTIM_ADAMW_8BIT) { update_8bit(o, params, n_params, data, g, lr, gscale); return; }
    float bc1 = (float)(1.0 - pow(o->b1, (double)o->step)), bc2 = (float)(1.0 - pow(o->b2, (double)o->step));
    enum { BLOCK = 1 << 14 };
    for (int i = 0; i < n_params; i++) {
        const hone_param *p = &params[i];
        float wd = p->no_decay ? 0.f : (float)o->wd;
        size_t a = p->offset > lo ? p->offset : lo, b = p->offset + p->numel < hi ? p->offset + p->numel : hi;
        if (b <= a) continue;
        size_t n = b - a;
        /* fixed blocks: element-wise, so any split (a ZeRO shard's too) gives the same bits */
#pragma omp parallel for schedule(static)
        for (size_t s = 0; s < n; s += BLOCK) {
            size_t e = s + BLOCK < n ? s + BLOCK : n, off = a + s;
            hone_kt.adamw(data + off, g + off, o->m + (off - lo), o->v + (off - lo), e - s, (float)lr, (float)o->b1, (float)o->b2,
                          (float)o->eps, wd, bc1, bc2, gscale);
        }
    }
}

double grad_global_norm(const float *g, size_t n) { return sqrt(layers_sumsq(g, n)); }

void grad_accumulate_f64(double *acc, float *g, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        acc[i] += (double)g[i];
        g[i] = 0.0f;
    }
}

float grad_clip_scale(double norm, double max_norm) {
    if (max_norm <= 0) return 1.0f;
    double c = max_norm / (norm + 1e-6); /* as clip_grad_norm_ */
    return c < 1.0 ? (float)c : 1.0f;
}
