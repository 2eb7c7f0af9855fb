/* kernels_avx512.c — AVX-512 kernels (built with -mavx512f/bw/dq/vl -mfma).
 * Entries not set here keep the AVX2 ones (AVX-512 CPUs all have AVX2). */
#include "kernels.h"
#include <immintrin.h>

static void axpy_f32_avx512(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

void kernels_fill_avx512(hone_kernels *t) {
    t->isa = "avx512";
    t->axpy_f32 = axpy_f32_avx512;
}
