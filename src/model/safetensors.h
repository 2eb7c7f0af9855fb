/* model/safetensors.h — reading and writing Hugging Face .safetensors files.
 * Reading mmaps the file and validates the header completely before any
 * tensor is touched: header length within the file, known dtypes, shape
 * times dtype size equal to the byte range, ranges inside the data section and
 * not overlapping. Writing is atomic (temp file, fsync, rename). */
#ifndef HONE_SAFETENSORS_H
#define HONE_SAFETENSORS_H
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>

enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I32, ST_I64, ST_I16, ST_I8, ST_U8, ST_BOOL, ST_NDTYPES };

typedef struct st_tensor {
    char *name;
    int dtype;
    int ndim;
    int64_t shape[8];
    size_t offset; /* into the data section */
    size_t nbytes;
} st_tensor;

typedef struct st_file {
    char path[4096];
    void *map; /* whole file, read-only mapping (owned) */
    size_t size;
    int owns_map;
    const uint8_t *data; /* start of the data section */
    size_t data_size;
    st_tensor *tensors; /* (n) owned */
    int n;
} st_file;

/* Opens and validates; on failure nothing is left open. */
int st_open(st_file *f, const char *path, hone_error *err);
/* Same, over a caller-owned buffer (for fuzzing); buf must outlive f. */
int st_open_buffer(st_file *f, const void *buf, size_t size, const char *label, hone_error *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
size_t st_numel(const st_tensor *t);
int st_dtype_size(int dtype);
const char *st_dtype_name(int dtype);
/* Converts a float tensor (F32/F16/BF16/F64) to fp32 into dst (numel floats). */
int st_read_f32(const st_file *f, const st_tensor *t, float *dst, hone_error *err);
/* Converts an integer tensor (I32/I64/...) to int32 into dst. */
int st_read_i32(const st_file *f, const st_tensor *t, int32_t *dst, hone_error *err);

/* One tensor to write: fp32 data, int32 when is_int, bytes (U8) when is_u8. */
typedef struct st_entry {
    const char *name;
    const void *data;
    int ndim;
    int64_t shape[4];
    int is_int;
    int is_u8;
} st_entry;
/* Writes entries (F32 or, with dtype ST_BF16 / ST_F16, converted) atomically.
 * metadata_json: NULL or a JSON object text for "__metadata__". */
int st_write(const char *path, const st_entry *e, int n, int float_dtype, const char *metadata_json, hone_error *err);
#endif
