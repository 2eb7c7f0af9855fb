/* kernels_neon.c — NEON kernels for aarch64 (NEON is baseline there).
 * Entries not set here keep their scalar reference. */
#include "kernels.h"
#include <arm_neon.h>

static void axpy_f32_neon(float *y, float a, const float *x, int n) {
    float32x4_t va = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

void kernels_fill_neon(hone_kernels *t) {
    t->isa = "neon";
    t->axpy_f32 = axpy_f32_neon;
}
