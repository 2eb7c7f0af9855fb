/* export/ — GGUF files, llama.cpp's model format: the container (this header), the export
 *   of a hone model or LoRA adapter into it (export.h) and the import back into a Hugging Face
 *   directory. May include base/, simd/ (the block quantisers) and model/.
 *
 * export/gguf.h — the GGUF v3 container: a validated reader over bytes in memory and a
 * streaming writer.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 key-value count; the
 * key-values (string key, u32 value type, value; strings are u64 length + bytes, arrays u32
 * element type + u64 count + elements); the tensor infos (name, u32 n_dims, u64 ne[n_dims]
 * innermost first, u32 ggml type, u64 offset into the data section); padding to
 * general.alignment (32 by default); the data section, each tensor at an aligned offset. */
#ifndef HONE_GGUF_H
#define HONE_GGUF_H
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>

enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6,
    GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12
};

typedef struct gguf_str {
    const char *s; /* not NUL-terminated when read from a file; n bytes */
    uint64_t n;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    int type;          /* GGUF_* */
    int arr_type;      /* element type when type == GGUF_ARRAY */
    uint64_t n;        /* element count of an array */
    const uint8_t *p;  /* the value's bytes (scalars, numeric arrays) in the file */
    gguf_str str;      /* a string value */
    gguf_str *strs;    /* (n) the elements of a string array, owned by the gguf_file */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    int n_dims;
    int64_t ne[4];     /* innermost first (ne[0] = columns of a matrix) */
    int type;          /* GGML_T_* (simd/ggml_quant.h) */
    uint64_t offset;   /* into the data section */
    size_t nbytes;
    const uint8_t *data;
} gguf_tensor;

typedef struct gguf_file {
    uint32_t version;
    uint32_t alignment;
    gguf_kv *kv;       /* (n_kv) owned */
    uint64_t n_kv;
    gguf_tensor *t;    /* (n_tensors) owned */
    uint64_t n_tensors;
    const uint8_t *base; /* the bytes parsed (not owned unless owned_buf) */
    size_t len;
    void *owned_buf;   /* gguf_load's copy of the file, freed by gguf_close */
} gguf_file;

/* Parses len bytes (kept by the caller while f is used): every length, count, type and
 * offset is checked against the buffer; tensors must be of a type simd/ggml_quant.h knows,
 * 1 to 4 dimensions, rows a whole number of blocks, inside the data section. path names the
 * file in errors ("path: tensor 'x': ..."). */
int gguf_parse(gguf_file *f, const uint8_t *data, size_t len, const char *path, hone_error *err);
/* Reads the file and parses it. */
int gguf_load(gguf_file *f, const char *path, hone_error *err);
void gguf_close(gguf_file *f);

/* Lookups: NULL when absent. */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
/* A key as an integer / float / string of whichever numeric type it has; -1 with an error
 * naming the key when absent or of another kind. */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *v, const char *path, hone_error *err);
int gguf_get_float(const gguf_file *f, const char *key, double *v, const char *path, hone_error *err);
/* copies a string value into out (size n, truncation is an error) */
int gguf_get_str(const gguf_file *f, const char *key, char *out, size_t n, const char *path, hone_error *err);
/* element i of a numeric array as a double */
double gguf_arr_num(const gguf_kv *kv, uint64_t i);

/* --- writer: key-values and tensor infos are collected first, then gguf_write streams
 * the file (header, infos, each tensor's bytes from produce) to path.tmp-PID, fsyncs and
 * renames it into place; on any failure nothing is left at path. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
void gguf_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_set_f32(gguf_writer *w, const char *key, float v);
void gguf_set_bool(gguf_writer *w, const char *key, int v);
void gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *v, const size_t *len, size_t n);
void gguf_set_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n);
void gguf_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* A tensor of shape ne (innermost first) and ggml type; user is handed back to produce. */
int gguf_add_tensor(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne, void *user,
                    hone_error *err);
/* produce(ctx, user, buf, nbytes, err) fills buf with one tensor's bytes (0 / -1). */
typedef int (*gguf_produce_fn)(void *ctx, void *user, void *buf, size_t nbytes, hone_error *err);
int gguf_write(gguf_writer *w, const char *path, gguf_produce_fn produce, void *ctx, hone_error *err);
/* An out-of-memory during the set / add calls, reported here (then gguf_write fails too). */
int gguf_writer_failed(const gguf_writer *w);
#endif
