/* model/init_write.c — a randomly initialised model written straight to disk (model.h:
 * model_init_write): tensor by tensor, in chunks, in the configuration's dtype, as safetensors
 * shards with model.safetensors.index.json, so a 7B model (13 GB in bf16, 27 GB in fp32) is
 * written within a few MB of memory. The values are model_init_random's, in its order. */
#include "model/model.h"
#include "model/safetensors.h"
#include "simd/kernels.h"
#include "base/rng.h"
#include "base/util.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const hone_model_config *c;
    const hone_param *p;
    int n;
    uint64_t seed;
    float std;
    int st_dtype;
    size_t max_shard;
} init_ctx;

enum { CHUNK = 1 << 20 };

/* One shard: params [a, b) after its header; values drawn from r in order. */
static int write_shard(const init_ctx *x, const char *path, int a, int b, hone_rng *r, float *buf, uint16_t *hbuf,
                       hone_error *err) {
    int es = st_dtype_size(x->st_dtype);
    json_t *hdr = json_object();
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int i = a; i < b; i++) {
        const hone_param *p = &x->p[i];
        json_t *shape = p->ndim == 1 ? json_pack("[I]", (json_int_t)p->shape[0]) : json_pack("[II]", (json_int_t)p->shape[0], (json_int_t)p->shape[1]);
        json_object_set_new(hdr, p->name, json_pack("{s:s, s:o, s:[II]}", "dtype", st_dtype_name(x->st_dtype), "shape", shape,
                                                    "data_offsets", (json_int_t)off, (json_int_t)(off + p->numel * es)));
        off += p->numel * es;
    }
    char *htxt = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    if (!htxt) return hone_fail(err, "out of memory");
    size_t hlen = strlen(htxt), pad = (8 - hlen % 8) % 8;
    FILE *f = fopen(path, "wb");
    if (!f) { free(htxt); return hone_fail(err, "%s: cannot create", path); }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)(hlen + pad) >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(htxt, 1, hlen, f) == hlen && fwrite("        ", 1, pad, f) == pad;
    free(htxt);
    for (int i = a; i < b && ok; i++) {
        const hone_param *p = &x->p[i];
        int is_norm = strstr(p->name, "norm") != NULL;
        for (size_t s = 0; s < p->numel && ok; s += CHUNK) {
            size_t n = p->numel - s < CHUNK ? p->numel - s : CHUNK;
            /* as model_init_random: norms at their identity, biases 0, matrices N(0, std^2) */
            for (size_t j = 0; j < n; j++)
                buf[j] = is_norm ? (x->c->norm_offset ? 0.0f : 1.0f) : p->ndim == 1 ? 0.0f : x->std * rng_normal_f32(r);
            if (x->st_dtype == ST_F32) ok = fwrite(buf, 4, n, f) == n;
            else {
                if (x->st_dtype == ST_BF16) hone_kt.f32_to_bf16(hbuf, buf, n);
                else hone_kt.f32_to_f16(hbuf, buf, n);
                ok = fwrite(hbuf, 2, n, f) == n;
            }
        }
    }
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : hone_fail(err, "%s: write failed (disk full?)", path);
}

static int fill_init(const char *tmp, void *vctx, hone_error *err) {
    const init_ctx *x = vctx;
    char path[4096];
    hone_model_config written = *x->c;
    snprintf(written.torch_dtype, sizeof written.torch_dtype, "%s",
             x->st_dtype == ST_BF16 ? "bfloat16" : x->st_dtype == ST_F16 ? "float16" : "float32");
    char *cfg = model_config_to_json(&written);
    hone_path_join(path, sizeof path, tmp, "config.json");
    int rc = cfg ? hone_write_file(path, cfg, strlen(cfg), err) : hone_fail(err, "out of memory");
    free(cfg);
    if (rc) return rc;
    /* shard boundaries: consecutive tensors up to max_shard bytes (a larger tensor alone) */
    int es = st_dtype_size(x->st_dtype), n_shards = 0;
    int *start = malloc(sizeof(int) * (x->n + 1));
    size_t cur = 0, total = 0;
    for (int i = 0; i < x->n; i++) {
        size_t nb = x->p[i].numel * es;
        if (i == 0 || (cur > 0 && cur + nb > x->max_shard)) { start[n_shards++] = i; cur = 0; }
        cur += nb;
        total += nb;
    }
    start[n_shards] = x->n;
    float *buf = malloc(sizeof(float) * CHUNK);
    uint16_t *hbuf = malloc(sizeof(uint16_t) * CHUNK);
    json_t *wm = json_object();
    hone_rng r;
    rng_seed(&r, x->seed);
    if (!buf || !hbuf || !wm) rc = hone_fail(err, "out of memory");
    for (int s = 0; s < n_shards && rc == 0; s++) {
        char name[64];
        if (n_shards == 1) snprintf(name, sizeof name, "model.safetensors");
        else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        hone_path_join(path, sizeof path, tmp, name);
        rc = write_shard(x, path, start[s], start[s + 1], &r, buf, hbuf, err);
        for (int i = start[s]; i < start[s + 1]; i++) json_object_set_new(wm, x->p[i].name, json_string(name));
        if (rc == 0 && n_shards > 1) fprintf(stderr, "wrote %s\n", name);
    }
    if (rc == 0 && n_shards > 1) {
        json_t *idx = json_pack("{s:{s:I}, s:O}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        char *txt = idx ? json_dumps(idx, JSON_INDENT(2)) : NULL;
        hone_path_join(path, sizeof path, tmp, "model.safetensors.index.json");
        rc = txt ? hone_write_file(path, txt, strlen(txt), err) : hone_fail(err, "out of memory");
        free(txt);
        json_decref(idx);
    }
    json_decref(wm);
    free(start);
    free(buf);
    free(hbuf);
    return rc;
}

int model_init_write(const hone_model_config *c, const char *dir, const char *src_dir, uint64_t seed, float std, const char *dtype,
                     size_t max_shard_bytes, hone_error *err) {
    int st = !dtype || !*dtype || !strcmp(dtype, "float32") ? ST_F32 : !strcmp(dtype, "bfloat16") ? ST_BF16
             : !strcmp(dtype, "float16") ? ST_F16 : -1;
    if (st < 0) return hone_fail(err, "%s: dtype '%s' is not float32, bfloat16 or float16", dir, dtype);
    hone_param *p;
    int n;
    size_t nf;
    if (model_param_table(c, &p, &n, &nf, err) < 0) return -1;
    init_ctx x = {c, p, n, seed, std, st, max_shard_bytes ? max_shard_bytes : (size_t)2 << 30};
    int rc = model_write_dir(dir, src_dir, fill_init, &x, NULL, NULL, err);
    free(p);
    return rc;
}
