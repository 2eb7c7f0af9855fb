/* model/qweight.c — a frozen base held as bf16 / int8 / NF4 / FP4 (qweight.h). */
#include "model/qweight.h"
#include "base/util.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const mod_suffix[QWEIGHT_NMOD] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                                      "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                                      "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                                      "mlp.down_proj.weight"};

int qweight_module(const char *name, int *layer) {
    int l, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &l, &n) != 1 || n == 0) return -1;
    for (int k = 0; k < QWEIGHT_NMOD; k++)
        if (!strcmp(name + n, mod_suffix[k])) {
            if (layer) *layer = l;
            return k;
        }
    return -1;
}

size_t qweight_plan(hone_model *m, int held, int nested) {
    m->held = held;
    m->held_nested = held >= HONE_Q_NF4 ? nested : 0;
    size_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        hone_param *p = &m->params[i];
        int l, k = qweight_module(p->name, &l);
        if (k >= 0) {
            p->qidx = l * QWEIGHT_NMOD + k;
            p->offset = 0;
            continue;
        }
        p->offset = off;
        off += (p->numel + 15) & ~(size_t)15; /* 64-byte aligned, as model.c lays tensors out */
    }
    return off;
}

int qweight_alloc(hone_model *m, hone_error *err) {
    size_t n = (size_t)m->cfg.num_layers * QWEIGHT_NMOD;
    m->qw = calloc(n, sizeof(hone_qtensor));
    if (!m->qw) return hone_fail(err, "out of memory");
    for (int i = 0; i < m->n_params; i++) {
        const hone_param *p = &m->params[i];
        if (p->qidx < 0) continue;
        if (qtensor_alloc(&m->qw[p->qidx], m->held, m->held_nested, (int)p->shape[0], (int)p->shape[1]) < 0)
            return hone_fail(err, "out of memory for %s held as %s (%zu bytes)", p->name, quant_type_name(m->held),
                             qweight_bytes(m->held, m->held_nested, p->shape[0], p->shape[1]));
    }
    return 0;
}

void qweight_free(hone_model *m) {
    if (!m->qw) return;
    for (size_t i = 0; i < (size_t)m->cfg.num_layers * QWEIGHT_NMOD; i++) qtensor_free(&m->qw[i]);
    free(m->qw);
    m->qw = NULL;
}

static int check_values(const float *x, size_t n, const char *path, const char *name, hone_error *err) {
    for (size_t j = 0; j < n; j++)
        if (!isfinite(x[j])) return hone_fail(err, "%s: tensor '%s' holds a non-finite value at index %zu", path, name, j);
    return 0;
}

int qweight_load_tensor(hone_model *m, const hone_param *p, const st_file *f, const st_tensor *t, int check_finite,
                        hone_error *err) {
    hone_qtensor *q = &m->qw[p->qidx];
    if (q->type == HONE_Q_BF16 && t->dtype == ST_BF16) { /* lossless: the checkpoint's own bits */
        const uint16_t *src = (const uint16_t *)(f->data + t->offset);
        if (check_finite)
            for (size_t j = 0; j < p->numel; j++)
                if ((src[j] & 0x7f80) == 0x7f80)
                    return hone_fail(err, "%s: tensor '%s' holds a non-finite value at index %zu", f->path, t->name, j);
        memcpy(q->data, src, p->numel * 2);
        if (f->owns_map) hone_release_pages(src, p->numel * 2); /* as st_read_f32 does: the file's pages go */
        return 0;
    }
    float *x = hone_alloc(sizeof(float) * p->numel, err);
    if (!x) return hone_fail_prefix(err, "%s: converting '%s'", f->path, t->name);
    int rc = st_read_f32(f, t, x, err);
    if (rc == 0 && check_finite) rc = check_values(x, p->numel, f->path, t->name, err);
    if (rc == 0) qtensor_quantize(q, x);
    free(x);
    return rc;
}

int model_hold(hone_model *m, int held, int nested, hone_error *err) {
    if (!held) return 0;
    if (m->held) return hone_fail(err, "the model is already held as %s", quant_type_name(m->held));
    if (m->lora) return hone_fail(err, "a model is held before adapters are attached");
    hone_model n;
    if (model_init_held(&n, &m->cfg, held, nested, err) < 0) return -1;
    for (int i = 0; i < m->n_params; i++) {
        const hone_param *p = &m->params[i], *q = &n.params[i]; /* the same table, in the same order */
        if (q->qidx >= 0) qtensor_quantize(&n.qw[q->qidx], m->data + p->offset);
        else memcpy(n.data + q->offset, m->data + p->offset, sizeof(float) * p->numel);
    }
    memcpy(n.stored_dtype, m->stored_dtype, sizeof n.stored_dtype);
    model_free(m);
    *m = n;
    return 0;
}

void model_dir_dtype(const char *dir, char *out, size_t n) {
    char path[4200];
    snprintf(out, n, "%s", "");
    hone_path_join(path, sizeof path, dir, "model.safetensors");
    if (!hone_file_exists(path)) { /* a sharded checkpoint: its first shard */
        char idx[4200];
        hone_path_join(idx, sizeof idx, dir, "model.safetensors.index.json");
        json_t *o = json_load_file(idx, 0, NULL), *wm = o ? json_object_get(o, "weight_map") : NULL;
        const char *k;
        json_t *v;
        path[0] = 0;
        json_object_foreach(wm, k, v) {
            if (json_is_string(v) && !strchr(json_string_value(v), '/')) hone_path_join(path, sizeof path, dir, json_string_value(v));
            break;
        }
        json_decref(o);
        if (!path[0]) return;
    }
    st_file f;
    if (st_open(&f, path, NULL) < 0) return;
    for (int i = 0; i < f.n; i++) {
        int d = f.tensors[i].dtype;
        if (d == ST_F32 || d == ST_BF16 || d == ST_F16) {
            snprintf(out, n, "%s", d == ST_BF16 ? "bfloat16" : d == ST_F16 ? "float16" : "float32");
            break;
        }
    }
    st_close(&f);
}

size_t model_held_bytes(const hone_model *m) {
    size_t b = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].qidx >= 0)
            b += qweight_bytes(m->held, m->held_nested, m->params[i].shape[0], m->params[i].shape[1]);
    return b;
}

size_t model_weight_bytes(const hone_model *m) { return model_held_bytes(m) + sizeof(float) * m->num_floats; }
