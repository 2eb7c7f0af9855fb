/* kernels_neon_bf16.c — Arm BF16 (FEAT_BF16) for aarch64, built with its own flags
 * (configure's NEON_BF16_FLAGS, -march=armv8.2-a+bf16) and filled by dispatch.c only
 * where the kernel reports HWCAP2_BF16: gemm_bf16_dot's 8x12 BFDOT micro-kernel on the
 * shared pair driver (gemm.h gemm_arch_bf16: BFDOT's per-lane 2-way dot takes k in the
 * pairs vdpbf16ps does) and the BFDOT peak probe.
 *
 * Rounding: BFDOT without FEAT_EBF16 (or with FPCR.EBF = 0, Linux's default) is not
 * vdpbf16ps: per pair s = RO(s + RO(a0*b0 + a1*b1)), round to odd, products exact,
 * subnormal inputs and results flushed to zero. gemm_bf16_bfdot_scalar emulates it
 * and the kernel is bitwise that (tests/test_kernels_bf16.c, under qemu -cpu max). */
#include "simd/kernels.h"
#include "simd/probe.h"
#include "simd/gemm.h"
#include "simd/ukr_neon.h"
#include <arm_neon.h>

#define BF16_LOAD(p) vreinterpretq_bf16_u32(vld1q_u32(p))

/* 8x12 micro-tile as the fp32 one (simd/ukr_neon.h): each row's A pair is used
 * through BFDOT by element, one BFDOT per 4 columns adding that row's two products. */
GEMM_UKR_8X12_NEON(gemm_ukr_bf16_8x12, uint32_t, bfloat16x8_t, BF16_LOAD, vbfdotq_laneq_f32)

static const gemm_arch_bf16 gemm_bfdot_8x12 = {8, 12, gemm_ukr_bf16_8x12, f32_to_bf16_neon_packs};
static void gemm_bf16_dot_neon(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                               float beta, float *C, int ldc) {
    gemm_bf16_blocked(&gemm_bfdot_8x12, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* The probe's bf16 operand: GCC 12 turns a constant bf16 vector into an fp16 fmov (the
 * wrong value), so the splat goes through a register it cannot see into. */
static inline bfloat16x8_t bf16_splat(uint16_t u) {
    uint16x8_t v = vdupq_n_u16(u);
    __asm__("" : "+w"(v));
    return vreinterpretq_bf16_u16(v);
}
#define NEON_LANE0(v) vgetq_lane_f32(v, 0)
HONE_PROBE_DOT(probe_dot_bf16_neon, float32x4_t, bfloat16x8_t, vdupq_n_f32, bf16_splat, vbfdotq_f32, NEON_LANE0, 4)

void kernels_fill_neon_bf16(hone_kernels *t) {
    t->gemm_bf16_dot = t->gemm_bf16 = gemm_bf16_dot_neon;
    t->gemm_bf16_dot_name = t->gemm_bf16_path = "Arm BF16 BFDOT 8x12";
    t->gemm_bf16_dot_ref = gemm_bf16_bfdot_scalar;
    t->gemm_bf16_dot_arch = &gemm_bfdot_8x12; /* held weights (simd/qgemm.c) take the same micro-kernel */
    t->probe_dot_bf16 = probe_dot_bf16_neon;
    t->probe_bf16_unit = "Arm BF16 BFDOT q";
}
