/* model/safetensors.c — validated mmap reader and atomic writer (safetensors.h).
 * Format: u64 little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data section; offsets are relative to the data section. */
#include "model/safetensors.h"
#include "simd/kernels.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dtype_names[ST_NDTYPES] = {"F32", "F16", "BF16", "F64", "I32", "I64", "I16", "I8", "U8", "BOOL"};
static const int dtype_sizes[ST_NDTYPES] = {4, 2, 2, 8, 4, 8, 2, 1, 1, 1};

int st_dtype_size(int d) { return d >= 0 && d < ST_NDTYPES ? dtype_sizes[d] : 0; }
const char *st_dtype_name(int d) { return d >= 0 && d < ST_NDTYPES ? dtype_names[d] : "?"; }

size_t st_numel(const st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static int cmp_offset(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void free_tensors(st_file *f) {
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->n = 0;
}

/* Parses and validates the header of a buffer already in f->map / f->size. */
static int parse_header(st_file *f, hone_error *err) {
    const char *path = f->path;
    if (f->size < 8) return hone_fail(err, "%s: truncated: %zu bytes, a safetensors file needs at least 8", path, f->size);
    uint64_t hlen = 0;
    const uint8_t *b = f->map;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    if (hlen > f->size - 8)
        return hone_fail(err, "%s: header length %llu is longer than the file (%zu bytes)", path, (unsigned long long)hlen, f->size);
    if (hlen > (100u << 20)) return hone_fail(err, "%s: header length %llu exceeds 100 MB", path, (unsigned long long)hlen);
    json_error_t je;
    json_t *root = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) return hone_fail(err, "%s: header is not valid JSON (column %d: %s)", path, je.column, je.text);
    if (!json_is_object(root)) { json_decref(root); return hone_fail(err, "%s: header is not a JSON object", path); }
    f->data = b + 8 + hlen;
    f->data_size = f->size - 8 - hlen;
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof(st_tensor));
    if (!f->tensors) { json_decref(root); return hone_fail(err, "%s: out of memory", path); }
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        st_tensor *t = &f->tensors[f->n];
        if (!json_is_object(val)) { rc = hone_fail(err, "%s: tensor '%s': entry is not an object", path, key); break; }
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"), *jo = json_object_get(val, "data_offsets");
        if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2) {
            rc = hone_fail(err, "%s: tensor '%s': needs dtype (string), shape (array) and data_offsets ([begin, end])", path, key);
            break;
        }
        t->dtype = -1;
        for (int d = 0; d < ST_NDTYPES; d++)
            if (!strcmp(json_string_value(jd), dtype_names[d])) t->dtype = d;
        if (t->dtype < 0) { rc = hone_fail(err, "%s: tensor '%s': unknown dtype '%s'", path, key, json_string_value(jd)); break; }
        if (json_array_size(js) > 8) { rc = hone_fail(err, "%s: tensor '%s': more than 8 dimensions", path, key); break; }
        t->ndim = (int)json_array_size(js);
        size_t numel = 1;
        int bad = 0;
        for (int d = 0; d < t->ndim; d++) {
            json_t *x = json_array_get(js, d);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > (1LL << 40)) { bad = 1; break; }
            t->shape[d] = json_integer_value(x);
            if (t->shape[d] && numel > ((size_t)1 << 46) / (size_t)t->shape[d]) { bad = 1; break; }
            numel *= (size_t)t->shape[d];
        }
        if (bad) { rc = hone_fail(err, "%s: tensor '%s': invalid shape", path, key); break; }
        json_t *o0 = json_array_get(jo, 0), *o1 = json_array_get(jo, 1);
        if (!json_is_integer(o0) || !json_is_integer(o1) || json_integer_value(o0) < 0 ||
            json_integer_value(o1) < json_integer_value(o0)) {
            rc = hone_fail(err, "%s: tensor '%s': invalid data_offsets", path, key);
            break;
        }
        t->offset = (size_t)json_integer_value(o0);
        size_t end = (size_t)json_integer_value(o1);
        t->nbytes = end - t->offset;
        if (end > f->data_size) {
            rc = hone_fail(err, "%s: tensor '%s': data_offsets end %zu is past the end of the data (%zu bytes; file truncated?)",
                           path, key, end, f->data_size);
            break;
        }
        if (numel * (size_t)dtype_sizes[t->dtype] != t->nbytes) {
            rc = hone_fail(err, "%s: tensor '%s': shape needs %zu bytes of %s but data_offsets span %zu", path, key,
                           numel * (size_t)dtype_sizes[t->dtype], dtype_names[t->dtype], t->nbytes);
            break;
        }
        t->name = strdup(key);
        f->n++;
    }
    json_decref(root);
    if (rc < 0) { free_tensors(f); return -1; }
    /* no two tensors may share bytes */
    st_tensor **order = malloc(sizeof(st_tensor *) * (f->n ? f->n : 1));
    for (int i = 0; i < f->n; i++) order[i] = &f->tensors[i];
    qsort(order, f->n, sizeof *order, cmp_offset);
    for (int i = 1; i < f->n; i++)
        if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes && order[i]->nbytes && order[i - 1]->nbytes) {
            rc = hone_fail(err, "%s: tensors '%s' and '%s' overlap", path, order[i - 1]->name, order[i]->name);
            break;
        }
    free(order);
    if (rc < 0) free_tensors(f);
    return rc;
}

int st_open(st_file *f, const char *path, hone_error *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return hone_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return hone_fail(err, "%s: cannot stat", path); }
    f->size = (size_t)st.st_size;
    if (f->size == 0) { close(fd); return hone_fail(err, "%s: empty file", path); }
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) { f->map = NULL; return hone_fail(err, "%s: cannot mmap: %s", path, strerror(errno)); }
    if (parse_header(f, err) < 0) {
        munmap(f->map, f->size);
        f->map = NULL;
        return -1;
    }
    f->owns_map = 1;
    return 0;
}

int st_open_buffer(st_file *f, const void *buf, size_t size, const char *label, hone_error *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", label);
    f->map = (void *)buf;
    f->size = size;
    int rc = parse_header(f, err);
    if (rc < 0) f->map = NULL;
    f->size = rc < 0 ? 0 : size;
    return rc;
}

void st_close(st_file *f) {
    free_tensors(f);
    if (f->map && f->owns_map) munmap(f->map, f->size);
    f->map = NULL;
    f->owns_map = 0;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *dst, hone_error *err) {
    const uint8_t *src = f->data + t->offset;
    size_t n = st_numel(t);
    switch (t->dtype) {
    case ST_F32: memcpy(dst, src, n * 4); break;
    case ST_F16:
    case ST_BF16: { /* through an aligned block: the file's 2-byte values need not be aligned */
        uint16_t tmp[1 << 14];
        for (size_t i = 0; i < n; i += 1 << 14) {
            size_t len = n - i < (1 << 14) ? n - i : (1 << 14);
            memcpy(tmp, src + 2 * i, len * 2);
            if (t->dtype == ST_F16) hone_kt.f16_to_f32(dst + i, tmp, len);
            else hone_kt.bf16_to_f32(dst + i, tmp, len);
        }
        break;
    }
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    default: return hone_fail(err, "%s: tensor '%s': dtype %s is not a float type", f->path, t->name, dtype_names[t->dtype]);
    }
    /* drop the file pages once read: a loader converting tensor after tensor never holds
     * the whole file and the model at once (only for maps the reader owns) */
    if (f->owns_map) hone_release_pages(src, n * (size_t)st_dtype_size(t->dtype));
    return 0;
}

int st_read_i32(const st_file *f, const st_tensor *t, int32_t *dst, hone_error *err) {
    const uint8_t *src = f->data + t->offset;
    size_t n = st_numel(t);
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ST_I32: memcpy(&dst[i], src + 4 * i, 4); break;
        case ST_I64: { int64_t v; memcpy(&v, src + 8 * i, 8); dst[i] = (int32_t)v; break; }
        case ST_I16: { int16_t v; memcpy(&v, src + 2 * i, 2); dst[i] = v; break; }
        case ST_I8: dst[i] = ((const int8_t *)src)[i]; break;
        case ST_U8: case ST_BOOL: dst[i] = src[i]; break;
        default: return hone_fail(err, "%s: tensor '%s': dtype %s is not an integer type", f->path, t->name, dtype_names[t->dtype]);
        }
    }
    return 0;
}

int st_write(const char *path, const st_entry *e, int n, int float_dtype, const char *metadata_json, hone_error *err) {
    json_t *hdr = json_object();
    if (metadata_json) {
        json_error_t je;
        json_t *m = json_loads(metadata_json, 0, &je);
        if (m) json_object_set_new(hdr, "__metadata__", m);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < e[i].ndim; d++) {
            numel *= (size_t)e[i].shape[d];
            json_array_append_new(shape, json_integer(e[i].shape[d]));
        }
        int dt = e[i].is_u8 ? ST_U8 : e[i].is_int ? ST_I32 : float_dtype;
        size_t nb = numel * (size_t)dtype_sizes[dt];
        json_t *t = json_object();
        json_object_set_new(t, "dtype", json_string(dtype_names[dt]));
        json_object_set_new(t, "shape", shape);
        json_object_set_new(t, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + nb)));
        json_object_set_new(hdr, e[i].name, t);
        off += nb;
    }
    char *htxt = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    size_t hlen = strlen(htxt);
    size_t pad = (8 - hlen % 8) % 8; /* keep the data section 8-byte aligned */
    /* streamed into path.tmp, then fsync and rename (atomic): never a second copy of the
     * tensors in memory, only a chunk of converted halves */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { free(htxt); return hone_fail(err, "%s: cannot create: %s", tmp, strerror(errno)); }
    uint8_t len8[8];
    uint64_t hl = hlen + pad;
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(hl >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(htxt, 1, hlen, f) == hlen && fwrite("        ", 1, pad, f) == pad;
    free(htxt);
    enum { CH = 1 << 20 };
    uint16_t *h = NULL;
    for (int i = 0; i < n && ok; i++) {
        size_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) numel *= (size_t)e[i].shape[d];
        if (e[i].is_u8) ok = fwrite(e[i].data, 1, numel, f) == numel;
        else if (e[i].is_int || float_dtype == ST_F32) ok = fwrite(e[i].data, 4, numel, f) == numel;
        else {
            if (!h && !(h = malloc(sizeof(uint16_t) * CH))) { ok = 0; break; }
            for (size_t s0 = 0; s0 < numel && ok; s0 += CH) {
                size_t m = numel - s0 < CH ? numel - s0 : CH;
                const float *src = (const float *)e[i].data + s0;
                if (float_dtype == ST_BF16) hone_kt.f32_to_bf16(h, src, m);
                else hone_kt.f32_to_f16(h, src, m);
                ok = fwrite(h, 2, m, f) == m;
            }
        }
    }
    free(h);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok) { unlink(tmp); return hone_fail(err, "%s: write failed (disk full?)", tmp); }
    if (rename(tmp, path) != 0) { unlink(tmp); return hone_fail(err, "%s: rename failed: %s", path, strerror(errno)); }
    return 0;
}
