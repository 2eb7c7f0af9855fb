/* kernels_neon_bf16.c — Arm BF16 (FEAT_BF16) for aarch64, built with its own flags
 * (configure's NEON_BF16_FLAGS, -march=armv8.2-a+bf16) and filled by dispatch.c only
 * where the kernel reports HWCAP2_BF16: gemm_bf16_dot's micro-kernels on the shared
 * pair driver (gemm.h gemm_arch_bf16) and the peak probe of the one in use.
 * - BFDOT 8x12 (default): BFDOT's per-lane 2-way dot takes k in the pairs vdpbf16ps
 *   does, so the packs are the driver's own.
 * - BFMMLA 8x8 (HONE_BF16_GEMM=bfmmla): one BFMMLA multiplies a 2x4 block of A by a
 *   4x2 block of B (two pairs of k for two rows and two columns); the blocks are
 *   zipped from the same pair panels as they are loaded.
 *
 * Rounding: without FEAT_EBF16 (or with FPCR.EBF = 0, Linux's default) both compute
 * Arm's BFDotAdd per pair, s = RO(s + RO(a0*b0 + a1*b1)) (round to odd, products
 * exact, subnormal inputs and results flushed), BFMMLA two pairs in increasing k.
 * An odd count of pairs in a K block is followed by one +0 pair (BFMMLA's pad; the
 * BFDOT kernel adds the +0 it would add), which only turns a -0 sum into +0. So
 * both are bitwise gemm_bf16_bfdot_scalar (tests/test_kernels_bf16.c, under qemu
 * -cpu max), and choosing between them is a matter of speed only. */
#include "simd/kernels.h"
#include "simd/probe.h"
#include "simd/gemm.h"
#include "simd/ukr_neon.h"
#include <stdlib.h>
#include <string.h>

#define BF16_LOAD(p) vreinterpretq_bf16_u32(vld1q_u32(p))
/* the +0 pair after an odd count: RO(s + (+0)) */
#define BFDOT_FIN(v, kp) ((kp) & 1 ? vaddq_f32(v, vdupq_n_f32(0.f)) : (v))

/* 8x12 as the fp32 tile (simd/ukr_neon.h): each row's A pair is used through BFDOT by
 * element, one BFDOT per 4 columns adding that row's two products. */
GEMM_UKR_8X12_NEON(gemm_ukr_bfdot_8x12, uint32_t, bfloat16x8_t, BF16_LOAD, vbfdotq_laneq_f32, BFDOT_FIN)

/* 8x8 by BFMMLA: acc[r][q] holds rows 2r, 2r+1 x columns 2q, 2q+1 (lanes (2r,2q),
 * (2r,2q+1), (2r+1,2q), (2r+1,2q+1)). Two pairs p, p+1 of 4 rows are zipped into two
 * 2x4 blocks: zip1 of (x[p][i..i+3], x[p+1][i..i+3]) is rows i, i+1; zip2 rows i+2, i+3.
 * 16 accumulators + 4 A + 4 B blocks. */
static inline void zip_pairs(bfloat16x8_t *d, const uint32_t *x, uint32x4_t y0, uint32x4_t y1) {
    uint32x4_t x0 = vld1q_u32(x), x1 = vld1q_u32(x + 4);
    d[0] = vreinterpretq_bf16_u32(vzip1q_u32(x0, y0));
    d[1] = vreinterpretq_bf16_u32(vzip2q_u32(x0, y0));
    d[2] = vreinterpretq_bf16_u32(vzip1q_u32(x1, y1));
    d[3] = vreinterpretq_bf16_u32(vzip2q_u32(x1, y1));
}
static void gemm_ukr_bfmmla_8x8(int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc, int accum) {
    float32x4_t acc[4][4];
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = vdupq_n_f32(0.f);
    for (int p = 0; p < kp; p += 2, a += 16, b += 16) {
        bfloat16x8_t A[4], B[4];
        uint32x4_t z = vdupq_n_u32(0);
        int two = p + 1 < kp; /* the last of an odd count meets the +0 pair */
        zip_pairs(A, a, two ? vld1q_u32(a + 8) : z, two ? vld1q_u32(a + 12) : z);
        zip_pairs(B, b, two ? vld1q_u32(b + 8) : z, two ? vld1q_u32(b + 12) : z);
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = vbfmmlaq_f32(acc[r][q], A[r], B[q]);
    }
    for (int r = 0; r < 4; r++)
        for (int h = 0; h < 2; h++) { /* row 2r + h: the low (h = 0) or high halves of acc[r][*] */
            float *cr = c + (2 * r + h) * ldc;
            for (int q = 0; q < 4; q += 2) {
                uint64x2_t u0 = vreinterpretq_u64_f32(acc[r][q]), u1 = vreinterpretq_u64_f32(acc[r][q + 1]);
                float32x4_t v = vreinterpretq_f32_u64(h ? vzip2q_u64(u0, u1) : vzip1q_u64(u0, u1));
                if (accum) v = vaddq_f32(vld1q_f32(cr + 2 * q), v);
                vst1q_f32(cr + 2 * q, v);
            }
        }
}

static const gemm_arch_bf16 gemm_bfdot_8x12 = {8, 12, gemm_ukr_bfdot_8x12, f32_to_bf16_neon_packs};
static const gemm_arch_bf16 gemm_bfmmla_8x8 = {8, 8, gemm_ukr_bfmmla_8x8, f32_to_bf16_neon_packs};
static void gemm_bf16_bfdot_neon(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                 float beta, float *C, int ldc) {
    gemm_bf16_blocked(&gemm_bfdot_8x12, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
static void gemm_bf16_bfmmla_neon(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                  float beta, float *C, int ldc) {
    gemm_bf16_blocked(&gemm_bfmmla_8x8, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* The probes' bf16 operands: GCC 12 turns a constant bf16 vector into an fp16 fmov (the
 * wrong value), so the splat goes through a register it cannot see into. */
static inline bfloat16x8_t bf16_splat64(uint64_t u) {
    uint64x2_t v = vdupq_n_u64(u);
    __asm__("" : "+w"(v));
    return vreinterpretq_bf16_u64(v);
}
#define NEON_LANE0(v) vgetq_lane_f32(v, 0)
/* BFDOT: 0.0625 * 0.0625 twice per lane, 1/128 a step (probe.h) */
#define BFDOT_SPLAT(u) bf16_splat64((uint64_t)(u) * 0x0001000100010001ull)
HONE_PROBE_DOT(probe_bfdot_neon, float32x4_t, bfloat16x8_t, vdupq_n_f32, BFDOT_SPLAT, vbfdotq_f32, NEON_LANE0, 4)
/* BFMMLA: 2x4 by 4x2 per instruction (32 FLOPs); each row is the pair (0.0625, 0.0625)
 * then a +0 pair, so each lane also gains 0.0625 * 0.0625 twice, 1/128 a step. */
HONE_PROBE(probe_bfmmla_neon, float32x4_t, vdupq_n_f32, bfloat16x8_t x = bf16_splat64(0x3d803d80u),
           vbfmmlaq_f32(a[c], x, x), NEON_LANE0, 32)

void kernels_fill_neon_bf16(hone_kernels *t) {
    const char *e = getenv("HONE_BF16_GEMM"); /* bfdot (default) | bfmmla: tuning and tests */
    int mmla = e && !strcmp(e, "bfmmla");
    t->gemm_bf16_dot = t->gemm_bf16 = mmla ? gemm_bf16_bfmmla_neon : gemm_bf16_bfdot_neon;
    t->gemm_bf16_dot_name = t->gemm_bf16_path = mmla ? "Arm BF16 BFMMLA 8x8" : "Arm BF16 BFDOT 8x12";
    t->gemm_bf16_dot_ref = gemm_bf16_bfdot_scalar;
    t->gemm_bf16_dot_arch = mmla ? &gemm_bfmmla_8x8 : &gemm_bfdot_8x12; /* held weights (simd/qgemm.c) take it too */
    t->probe_dot_bf16 = mmla ? probe_bfmmla_neon : probe_bfdot_neon;
    t->probe_bf16_unit = mmla ? "Arm BF16 BFMMLA" : "Arm BF16 BFDOT q";
}
