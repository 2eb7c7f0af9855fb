/* train/optim.c — AdamW and clipping (optim.h). */
#include "train/optim.h"
#include "simd/kernels.h"
#include "model/layers.h"
#include "base/util.h"
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

void adamw_free(hone_adamw *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

void adamw_update(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale) {
    adamw_update_range(o, params, n_params, data, g, lr, gscale, 0, (size_t)-1);
}

void adamw_update_range(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale,
                        size_t lo, size_t hi) {
    o->step++;
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

float grad_clip_scale(double norm, double max_norm) {
    if (max_norm <= 0) return 1.0f;
    double c = max_norm / (norm + 1e-6); /* as clip_grad_norm_ */
    return c < 1.0 ? (float)c : 1.0f;
}
