/* export/gguf.c — the GGUF v3 container (gguf.h): reader with bounds checks on every field,
 * streaming atomic writer. */
#include "export/gguf.h"
#include "simd/ggml_quant.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define MAX_DIMS 4

/* ---------------------------------------------------------------- reader */

typedef struct cur {
    const uint8_t *p, *end, *start;
    const char *path;
    hone_error *err;
} cur;

static int need(cur *c, uint64_t n, const char *what) {
    if ((uint64_t)(c->end - c->p) < n)
        return hone_fail(c->err, "%s: truncated GGUF file: %s needs %llu bytes at offset %zu, %zu left", c->path, what,
                         (unsigned long long)n, (size_t)(c->p - c->start), (size_t)(c->end - c->p));
    return 0;
}
static int rd_u32(cur *c, uint32_t *v, const char *what) {
    if (need(c, 4, what) < 0) return -1;
    *v = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[3] << 24;
    c->p += 4;
    return 0;
}
static int rd_u64(cur *c, uint64_t *v, const char *what) {
    uint32_t lo, hi;
    if (rd_u32(c, &lo, what) < 0 || rd_u32(c, &hi, what) < 0) return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}
static int rd_str(cur *c, gguf_str *s, const char *what) {
    uint64_t n;
    if (rd_u64(c, &n, what) < 0 || need(c, n, what) < 0) return -1;
    s->s = (const char *)c->p;
    s->n = n;
    c->p += n;
    return 0;
}

static size_t scalar_size(int t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

static int str_eq(gguf_str s, const char *z) { return strlen(z) == s.n && !memcmp(s.s, z, s.n); }

static int read_kv(cur *c, gguf_kv *kv, uint64_t i) {
    char what[64];
    snprintf(what, sizeof what, "key-value %llu", (unsigned long long)i);
    uint32_t t;
    if (rd_str(c, &kv->key, what) < 0 || rd_u32(c, &t, what) < 0) return -1;
    kv->type = (int)t;
    if (t == GGUF_STRING) return rd_str(c, &kv->str, what);
    if (t == GGUF_ARRAY) {
        uint32_t at;
        if (rd_u32(c, &at, what) < 0 || rd_u64(c, &kv->n, what) < 0) return -1;
        kv->arr_type = (int)at;
        if (at == GGUF_STRING) {
            if (kv->n > (uint64_t)(c->end - c->p) / 8) /* every string takes at least its 8-byte length */
                return hone_fail(c->err, "%s: key '%.*s': %llu strings cannot fit in the file", c->path, (int)kv->key.n,
                                 kv->key.s, (unsigned long long)kv->n);
            kv->strs = malloc(sizeof(gguf_str) * (kv->n ? kv->n : 1));
            if (!kv->strs) return hone_fail(c->err, "%s: out of memory", c->path);
            for (uint64_t k = 0; k < kv->n; k++)
                if (rd_str(c, &kv->strs[k], what) < 0) return -1;
            return 0;
        }
        size_t es = scalar_size((int)at);
        if (!es)
            return hone_fail(c->err, "%s: key '%.*s': array of unsupported element type %u", c->path, (int)kv->key.n,
                             kv->key.s, at);
        if (kv->n > (uint64_t)(c->end - c->p) / es) return need(c, UINT64_MAX, what);
        kv->p = c->p;
        c->p += kv->n * es;
        return 0;
    }
    size_t es = scalar_size((int)t);
    if (!es) return hone_fail(c->err, "%s: key '%.*s': unknown value type %u", c->path, (int)kv->key.n, kv->key.s, t);
    if (need(c, es, what) < 0) return -1;
    kv->p = c->p;
    c->p += es;
    return 0;
}

void gguf_close(gguf_file *f) {
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free(f->kv[i].strs);
    free(f->kv);
    free(f->t);
    free(f->owned_buf);
    memset(f, 0, sizeof *f);
}

int gguf_parse(gguf_file *f, const uint8_t *data, size_t len, const char *path, hone_error *err) {
    memset(f, 0, sizeof *f);
    cur c = {data, data + len, data, path, err};
    uint32_t magic;
    if (rd_u32(&c, &magic, "the magic") < 0) return -1;
    if (magic != GGUF_MAGIC) return hone_fail(err, "%s: not a GGUF file (magic %08x)", path, magic);
    if (rd_u32(&c, &f->version, "the version") < 0) return -1;
    if (f->version != 2 && f->version != 3)
        return hone_fail(err, "%s: GGUF version %u is not supported (2 and 3 are)", path, f->version);
    if (rd_u64(&c, &f->n_tensors, "the tensor count") < 0 || rd_u64(&c, &f->n_kv, "the key-value count") < 0) return -1;
    /* every key-value takes at least 12 bytes and every tensor info at least 24 */
    if (f->n_kv > len / 12 || f->n_tensors > len / 24)
        return hone_fail(err, "%s: %llu key-values and %llu tensors cannot fit in %zu bytes", path,
                         (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors, len);
    f->base = data;
    f->len = len;
    f->alignment = 32;
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof(gguf_kv));
    f->t = calloc(f->n_tensors ? f->n_tensors : 1, sizeof(gguf_tensor));
    if (!f->kv || !f->t) { gguf_close(f); return hone_fail(err, "%s: out of memory", path); } /* the message needs nothing freed */
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (read_kv(&c, &f->kv[i], i) < 0) { f->n_kv = i + 1; gguf_close(f); return -1; }
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32) { gguf_close(f); return hone_fail(err, "%s: general.alignment is not a u32", path); }
        uint32_t a = (uint32_t)al->p[0] | (uint32_t)al->p[1] << 8 | (uint32_t)al->p[2] << 16 | (uint32_t)al->p[3] << 24;
        if (a == 0 || (a & (a - 1)) || a > 65536) {
            hone_fail(err, "%s: general.alignment %u is not a power of two up to 65536", path, a);
            gguf_close(f);
            return -1;
        }
        f->alignment = a;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->t[i];
        char what[64];
        snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)i);
        uint32_t nd, ty;
        if (rd_str(&c, &t->name, what) < 0 || rd_u32(&c, &nd, what) < 0) { gguf_close(f); return -1; }
        if (nd < 1 || nd > MAX_DIMS) {
            hone_fail(err, "%s: tensor '%.*s': %u dimensions (1 to %d supported)", path, (int)t->name.n, t->name.s, nd, MAX_DIMS);
            gguf_close(f);
            return -1;
        }
        t->n_dims = (int)nd;
        uint64_t numel = 1;
        for (int d = 0; d < MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            if (rd_u64(&c, &ne, what) < 0) { gguf_close(f); return -1; }
            if (ne == 0 || ne > ((uint64_t)1 << 40) || numel > ((uint64_t)1 << 48) / ne) {
                hone_fail(err, "%s: tensor '%.*s': dimension %u of size %llu is out of range", path, (int)t->name.n,
                                 t->name.s, d, (unsigned long long)ne);
                gguf_close(f);
                return -1;
            }
            t->ne[d] = (int64_t)ne;
            numel *= ne;
        }
        if (rd_u32(&c, &ty, what) < 0 || rd_u64(&c, &t->offset, what) < 0) { gguf_close(f); return -1; }
        t->type = (int)ty;
        if (!ggml_type_name(t->type)) {
            hone_fail(err, "%s: tensor '%.*s': ggml type %u is not supported (f32, f16, bf16, q8_0, q4_0, q5_0, q4_K, q6_K are)",
                             path, (int)t->name.n, t->name.s, ty);
            gguf_close(f);
            return -1;
        }
        size_t row = ggml_row_bytes(t->type, t->ne[0]);
        if (row == 0) {
            hone_fail(err, "%s: tensor '%.*s': rows of %lld values are not whole %s blocks", path, (int)t->name.n,
                             t->name.s, (long long)t->ne[0], ggml_type_name(t->type));
            gguf_close(f);
            return -1;
        }
        t->nbytes = row * (size_t)(numel / (uint64_t)t->ne[0]);
        if (t->offset % f->alignment) {
            hone_fail(err, "%s: tensor '%.*s': offset %llu is not aligned to %u", path, (int)t->name.n, t->name.s,
                             (unsigned long long)t->offset, f->alignment);
            gguf_close(f);
            return -1;
        }
    }
    size_t hdr = (size_t)(c.p - data);
    size_t data_start = (hdr + f->alignment - 1) / f->alignment * f->alignment;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->t[i];
        if (data_start > len || t->offset > len - data_start || t->nbytes > len - data_start - t->offset) {
            hone_fail(err, "%s: tensor '%.*s': data (%zu bytes at %llu) runs past the end of the file", path,
                             (int)t->name.n, t->name.s, t->nbytes, (unsigned long long)t->offset);
            gguf_close(f);
            return -1;
        }
        t->data = data + data_start + t->offset;
        for (uint64_t k = 0; k < i; k++)
            if (f->t[k].name.n == t->name.n && !memcmp(f->t[k].name.s, t->name.s, t->name.n)) {
                hone_fail(err, "%s: tensor '%.*s' appears twice", path, (int)t->name.n, t->name.s);
                gguf_close(f);
                return -1;
            }
    }
    return 0;
}

int gguf_load(gguf_file *f, const char *path, hone_error *err) {
    memset(f, 0, sizeof *f);
    if (hone_is_dir(path)) return hone_fail(err, "%s: a directory, not a GGUF file", path);
    char *buf;
    size_t len;
    if (hone_read_file(path, &buf, &len, err) < 0) return -1;
    if (gguf_parse(f, (const uint8_t *)buf, len, path, err) < 0) { free(buf); return -1; }
    f->owned_buf = buf;
    return 0;
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (str_eq(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static double num_at(int type, const uint8_t *p) {
    uint64_t u = le(p, (int)scalar_size(type));
    switch (type) {
    case GGUF_U8: case GGUF_BOOL: case GGUF_U16: case GGUF_U32: case GGUF_U64: return (double)u;
    case GGUF_I8: return (double)(int8_t)u;
    case GGUF_I16: return (double)(int16_t)u;
    case GGUF_I32: return (double)(int32_t)u;
    case GGUF_I64: return (double)(int64_t)u;
    case GGUF_F32: { uint32_t b = (uint32_t)u; float x; memcpy(&x, &b, 4); return x; }
    case GGUF_F64: { double x; memcpy(&x, &u, 8); return x; }
    default: return 0;
    }
}

double gguf_arr_num(const gguf_kv *kv, uint64_t i) { return num_at(kv->arr_type, kv->p + i * scalar_size(kv->arr_type)); }

int gguf_get_int(const gguf_file *f, const char *key, int64_t *v, const char *path, hone_error *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return hone_fail(err, "%s: key '%s' is missing", path, key);
    if (kv->type == GGUF_STRING || kv->type == GGUF_ARRAY || kv->type == GGUF_F32 || kv->type == GGUF_F64)
        return hone_fail(err, "%s: key '%s' is not an integer", path, key);
    uint64_t u = le(kv->p, (int)scalar_size(kv->type));
    if (kv->type == GGUF_I8) *v = (int8_t)u;
    else if (kv->type == GGUF_I16) *v = (int16_t)u;
    else if (kv->type == GGUF_I32) *v = (int32_t)u;
    else *v = (int64_t)u;
    return 0;
}

int gguf_get_float(const gguf_file *f, const char *key, double *v, const char *path, hone_error *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return hone_fail(err, "%s: key '%s' is missing", path, key);
    if (kv->type == GGUF_STRING || kv->type == GGUF_ARRAY) return hone_fail(err, "%s: key '%s' is not a number", path, key);
    *v = num_at(kv->type, kv->p);
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, char *out, size_t n, const char *path, hone_error *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return hone_fail(err, "%s: key '%s' is missing", path, key);
    if (kv->type != GGUF_STRING) return hone_fail(err, "%s: key '%s' is not a string", path, key);
    if (kv->str.n >= n) return hone_fail(err, "%s: key '%s': string of %llu bytes is too long", path, key, (unsigned long long)kv->str.n);
    memcpy(out, kv->str.s, kv->str.n);
    out[kv->str.n] = 0;
    return 0;
}

/* ---------------------------------------------------------------- writer */

typedef struct wtensor {
    char *name;
    int type, n_dims;
    int64_t ne[MAX_DIMS];
    size_t nbytes;
    void *user;
} wtensor;

struct gguf_writer {
    uint8_t *kv;   /* the serialised key-values */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    wtensor *t;
    int n_t, cap_t;
    int oom;
};

gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w->kv);
    free(w);
}

int gguf_writer_failed(const gguf_writer *w) { return w->oom; }

static void put(gguf_writer *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *q = realloc(w->kv, cap);
        if (!q) { w->oom = 1; return; }
        w->kv = q;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}
static void put_u32(gguf_writer *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}
static void put_u64(gguf_writer *w, uint64_t v) { put_u32(w, (uint32_t)v); put_u32(w, (uint32_t)(v >> 32)); }
static void put_strn(gguf_writer *w, const char *s, size_t n) { put_u64(w, n); put(w, s, n); }
static void put_key(gguf_writer *w, const char *key, int type) {
    put_strn(w, key, strlen(key));
    put_u32(w, (uint32_t)type);
    w->n_kv++;
}
static void put_f32(gguf_writer *w, float v) { uint32_t u; memcpy(&u, &v, 4); put_u32(w, u); }

void gguf_set_str(gguf_writer *w, const char *key, const char *v) { put_key(w, key, GGUF_STRING); put_strn(w, v, strlen(v)); }
void gguf_set_u32(gguf_writer *w, const char *key, uint32_t v) { put_key(w, key, GGUF_U32); put_u32(w, v); }
void gguf_set_i32(gguf_writer *w, const char *key, int32_t v) { put_key(w, key, GGUF_I32); put_u32(w, (uint32_t)v); }
void gguf_set_f32(gguf_writer *w, const char *key, float v) { put_key(w, key, GGUF_F32); put_f32(w, v); }
void gguf_set_bool(gguf_writer *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    put_key(w, key, GGUF_BOOL);
    put(w, &b, 1);
}
void gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *v, const size_t *len, size_t n) {
    put_key(w, key, GGUF_ARRAY);
    put_u32(w, GGUF_STRING);
    put_u64(w, n);
    for (size_t i = 0; i < n; i++) put_strn(w, v[i], len ? len[i] : strlen(v[i]));
}
void gguf_set_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n) {
    put_key(w, key, GGUF_ARRAY);
    put_u32(w, GGUF_F32);
    put_u64(w, n);
    for (size_t i = 0; i < n; i++) put_f32(w, v[i]);
}
void gguf_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    put_key(w, key, GGUF_ARRAY);
    put_u32(w, GGUF_I32);
    put_u64(w, n);
    for (size_t i = 0; i < n; i++) put_u32(w, (uint32_t)v[i]);
}

int gguf_add_tensor(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne, void *user, hone_error *err) {
    if (n_dims < 1 || n_dims > MAX_DIMS) return hone_fail(err, "tensor '%s': %d dimensions", name, n_dims);
    size_t row = ggml_row_bytes(type, ne[0]);
    if (row == 0)
        return hone_fail(err, "tensor '%s': rows of %lld values are not whole %s blocks", name, (long long)ne[0],
                         ggml_type_name(type) ? ggml_type_name(type) : "?");
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, sizeof(wtensor) * cap);
        if (!t) return hone_fail(err, "out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return hone_fail(err, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    size_t rows = 1;
    for (int d = 0; d < MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    for (int d = 1; d < n_dims; d++) rows *= (size_t)ne[d];
    t->nbytes = row * rows;
    t->user = user;
    w->n_t++;
    return 0;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static int write_all(int fd, const void *p, size_t n, const char *tmp, hone_error *err) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return hone_fail(err, "%s: write failed: %s", tmp, strerror(errno));
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int gguf_write(gguf_writer *w, const char *path, gguf_produce_fn produce, void *ctx, hone_error *err) {
    if (w->oom) return hone_fail(err, "%s: out of memory while building the header", path);
    /* header + key-values + tensor infos in one buffer (the key-value buffer grown) */
    gguf_writer h = {0};
    put_u32(&h, GGUF_MAGIC);
    put_u32(&h, 3);
    put_u64(&h, (uint64_t)w->n_t);
    put_u64(&h, w->n_kv);
    put(&h, w->kv, w->kv_len);
    size_t off = 0, maxb = 0;
    for (int i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        put_strn(&h, t->name, strlen(t->name));
        put_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, (uint32_t)t->type);
        put_u64(&h, off);
        off = align_up(off + t->nbytes, 32);
        if (t->nbytes > maxb) maxb = t->nbytes;
    }
    static const uint8_t zeros[32];
    put(&h, zeros, align_up(h.kv_len, 32) - h.kv_len);
    if (h.oom) { free(h.kv); return hone_fail(err, "%s: out of memory", path); }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { free(h.kv); return hone_fail(err, "%s: cannot create: %s", tmp, strerror(errno)); }
    uint8_t *buf = malloc(align_up(maxb, 32) + 32);
    int rc = buf ? write_all(fd, h.kv, h.kv_len, tmp, err) : hone_fail(err, "%s: out of memory", path);
    free(h.kv);
    for (int i = 0; rc == 0 && i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        size_t padded = align_up(t->nbytes, 32);
        memset(buf + t->nbytes, 0, padded - t->nbytes);
        rc = produce(ctx, t->user, buf, t->nbytes, err);
        if (rc == 0) rc = write_all(fd, buf, padded, tmp, err); /* padded after the last one too, as ggml writes */
    }
    free(buf);
    if (rc == 0 && fsync(fd) != 0) rc = hone_fail(err, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0) rc = hone_fail(err, "%s: close failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0) rc = hone_fail(err, "%s: rename failed: %s", path, strerror(errno));
    if (rc < 0) unlink(tmp);
    return rc;
}
