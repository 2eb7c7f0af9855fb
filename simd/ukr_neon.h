/* simd/ukr_neon.h — the 8x12 NEON micro-kernel body, written once for the fp32 sgemm
 * (kernels_neon.c: FMLA by element) and the bf16 pair path (kernels_neon_bf16.c: BFDOT
 * by element). 24 accumulators + 3 B vectors + 2 A vectors of the 32 q registers;
 * each A element (a float, or a row's bf16 pair) is used through the by-lane form
 * OP(acc, b, a, lane), so there are no broadcasts. One step of k (or of a k pair)
 * reads 8 A and 12 B elements of type T as vectors V (LOAD). */
#ifndef HONE_UKR_NEON_H
#define HONE_UKR_NEON_H
#include <arm_neon.h>

#define GEMM_UKR_8X12_NEON(name, T, V, LOAD, OP)                                              \
    static void name(int kc, const T *a, const T *b, float *c, long ldc, int accum) {         \
        float32x4_t acc[8][3];                                                                \
        for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.f);     \
        for (int k = 0; k < kc; k++, a += 8, b += 12) {                                       \
            V b0 = LOAD(b), b1 = LOAD(b + 4), b2 = LOAD(b + 8);                               \
            V a0 = LOAD(a), a1 = LOAD(a + 4);                                                 \
            GEMM_UKR_NEON_ROW(OP, 0, a0, 0) GEMM_UKR_NEON_ROW(OP, 1, a0, 1)                   \
            GEMM_UKR_NEON_ROW(OP, 2, a0, 2) GEMM_UKR_NEON_ROW(OP, 3, a0, 3)                   \
            GEMM_UKR_NEON_ROW(OP, 4, a1, 0) GEMM_UKR_NEON_ROW(OP, 5, a1, 1)                   \
            GEMM_UKR_NEON_ROW(OP, 6, a1, 2) GEMM_UKR_NEON_ROW(OP, 7, a1, 3)                   \
        }                                                                                     \
        for (int i = 0; i < 8; i++) {                                                         \
            float *cr = c + i * ldc;                                                          \
            for (int j = 0; j < 3; j++) {                                                     \
                float32x4_t v = acc[i][j];                                                    \
                if (accum) v = vaddq_f32(vld1q_f32(cr + 4 * j), v);                           \
                vst1q_f32(cr + 4 * j, v);                                                     \
            }                                                                                 \
        }                                                                                     \
    }
#define GEMM_UKR_NEON_ROW(OP, i, av, l)            \
    acc[i][0] = OP(acc[i][0], b0, av, l);          \
    acc[i][1] = OP(acc[i][1], b1, av, l);          \
    acc[i][2] = OP(acc[i][2], b2, av, l);
#endif
