/* fixture_read.h — reading a tensor of a safetensors fixture into a fresh buffer (tests only):
 * read_f32 converts any float dtype (NULL when the tensor is absent, *n its element count),
 * read_i32 any integer dtype. The caller frees. */
#ifndef HONE_FIXTURE_READ_H
#define HONE_FIXTURE_READ_H
#include "model/safetensors.h"
#include <stdlib.h>

static inline float *read_f32(st_file *f, const char *name, size_t *n) {
    const st_tensor *t = st_find(f, name);
    if (!t) return NULL;
    float *x = malloc(sizeof(float) * (st_numel(t) + 1));
    st_read_f32(f, t, x, NULL);
    if (n) *n = st_numel(t);
    return x;
}
static inline int32_t *read_i32(st_file *f, const char *name) {
    const st_tensor *t = st_find(f, name);
    if (!t) return NULL;
    int32_t *x = malloc(sizeof(int32_t) * (st_numel(t) + 1));
    st_read_i32(f, t, x, NULL);
    return x;
}
#endif
