/* gemm.h — the shared BLIS-style blocked sgemm driver (simd/gemm.c) and the
 * per-ISA pieces it is parameterised by (private to simd/).
 *
 * Loop nest (Goto/BLIS): jc over N in NC columns -> pc over K in KC -> pack B
 * (KC x NC, NR-wide micro-panels) -> ic over M in MC rows -> pack A (MC x KC,
 * MR-tall micro-panels) -> jr over the NR micro-panels of B -> ir over the MR
 * micro-panels of A -> micro-kernel (MR x NR tile, KC rank-1 updates held in
 * registers). Threads each run this on their own slab of C (see gemm.c).
 *
 * Determinism: KC depends only on the cache sizes and NR, never on the thread
 * count, and threads split output tiles only, so every C element sums its K
 * products in the same order for any number of threads. */
#ifndef HONE_GEMM_H
#define HONE_GEMM_H
#include <stddef.h>
#include <stdint.h>

/* c (MR x NR, row stride ldc) = (accum ? c : 0) + sum_k a[k*MR + i] * b[k*NR + j];
 * a: packed A micro-panel (kc, MR); b: packed B micro-panel (kc, NR).
 * The sum over k starts from zero and is added to c once at the end. */
typedef void (*gemm_ukr_fn)(int kc, const float *a, const float *b, float *c, long ldc, int accum);

/* Optional transposing pack of one full A micro-panel: d[k*MR + i] =
 * s[i*ld + k] for i < MR, k < kc (A stored (M, K), the ta=0 case). */
typedef void (*gemm_pack_fn)(const float *s, size_t ld, int kc, float *d);

typedef struct gemm_arch {
    int mr, nr;             /* micro-tile; mr <= 32, nr <= 64 */
    gemm_ukr_fn ukr;
    gemm_pack_fn pack_a_t;  /* NULL: the generic C loop */
    /* For one-row products (GEMV): dot of n floats, and y += a*x with FMA. */
    float (*dot)(const float *a, const float *b, int n);
    void (*fma_row)(float *y, float a, const float *x, int n);
} gemm_arch;

/* The full gemm_f32 contract of kernels.h, for one ISA's micro-kernel. */
void gemm_f32_blocked(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The same with both operands rounded to bf16 (round to nearest even) as they are
 * packed: kernels.h's gemm_bf16 on a CPU without a faster bf16 unit. Bitwise
 * gemm_f32_blocked(g) on operands rounded beforehand. */
void gemm_f32_rounded_blocked(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A,
                              int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* --- bf16 pair products (vdpbf16ps semantics) ---
 * Packed operands hold k in pairs: one uint32 = bf16 of k = 2p (low half) and of
 * k = 2p + 1 (high half), RNE-rounded from fp32 as they are packed; an odd last
 * k is paired with +0. a: (kp, MR) pairs, b: (kp, NR) pairs.
 * c (MR x NR) = (accum ? c : 0) + s, where for each element s starts at +0 and for
 * p = 0 .. kp-1: s = fl(s + a1*b1), then s = fl(s + a0*b0) (a1, b1 the high halves;
 * each a product exact, each sum rounded to fp32 once, bf16 subnormal inputs and
 * fp32 subnormal sums flushed to zero): the order and rounding of AVX512-BF16
 * vdpbf16ps, which kernels_scalar.c emulates for the reference. Arm BF16's BFDOT
 * takes the same pairs with its own arithmetic (kernels.h gemm_bf16_bfdot_scalar). */
typedef void (*gemm_ukr_bf16_fn)(int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc, int accum);
typedef struct gemm_arch_bf16 {
    int mr, nr; /* mr <= 32, nr <= 64 */
    gemm_ukr_bf16_fn ukr;
    /* the ISA's fp32 -> bf16 of n floats (kernels.h f32_to_bf16: bitwise the scalar one),
     * which the packs run on runs of each operand */
    void (*cvt)(uint16_t *dst, const float *src, size_t n);
} gemm_arch_bf16;
/* kernels.h's gemm_bf16 on the pair micro-kernel. KC (which fixes each sum's order:
 * every KC block is summed from zero, then added to C) depends on K and the L1 size
 * only, not on MR, NR or threads, so every ISA's pair path is bitwise the scalar one. */
void gemm_bf16_blocked(const gemm_arch_bf16 *g, int ta, int tb, int M, int N, int K, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* --- B read through a source instead of an fp32 matrix (held weights, simd/qgemm.c) ---
 * The packs ask the source for runs of B's stored rows (tb=1: row n of B stored (N, K), columns
 * k; tb=0: row k of B stored (K, N), columns n) and write them straight into the packed
 * panels, so a bf16 / int8 / 4-bit weight is dequantised one short run at a time and never
 * exists in fp32 as a whole. The packed values are the ones packing the materialised B gives,
 * so each *_src driver is bitwise its plain twin on that B, at any thread count. */
typedef struct gemm_bsrc {
    const void *ctx;
    /* dst[0..n) = stored row r, columns [c, c + n), in fp32 */
    void (*row_f32)(const void *ctx, int r, int c, int n, float *dst);
    /* the same rounded to bf16 (kernels.h f32_to_bf16 of row_f32's values); NULL: row_f32,
     * then the pair arch's cvt */
    void (*row_bf16)(const void *ctx, int r, int c, int n, uint16_t *dst);
    int r0, c0; /* added to every r and c asked for (a thread's slab of B) */
} gemm_bsrc;
void gemm_f32_blocked_src(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                          const gemm_bsrc *B, float beta, float *C, int ldc);
void gemm_f32_rounded_blocked_src(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                                  const gemm_bsrc *B, float beta, float *C, int ldc);
void gemm_bf16_blocked_src(const gemm_arch_bf16 *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                           const gemm_bsrc *B, float beta, float *C, int ldc);
#endif
