/* kernels_neon.c — NEON kernels for aarch64 (NEON is baseline there): the
 * 8x12 sgemm micro-kernel for the shared driver (gemm.c), the vector kernels
 * (kernels_vec.h on 4-lane float32x4_t) and exact conversions. */
#include "simd/kernels.h"
#include "simd/probe.h"
#include "simd/gemm.h"
#include "simd/ukr_neon.h"
#include <arm_neon.h>
#include <string.h>

/* the 8x12 sgemm micro-tile (simd/ukr_neon.h): FMLA by element */
GEMM_UKR_8X12_NEON(gemm_ukr_8x12, float, float32x4_t, vld1q_f32, vfmaq_laneq_f32, GEMM_UKR_NEON_NOFIN)

/* ---- the vector vocabulary of kernels_vec.h on 4-lane q registers ---- */
#define VF float32x4_t
#define VM uint32x4_t
#define VL 4
#define VNAME(x) x##_neon
static inline float32x4_t loadn_neon(const float *p, int n, float fill) {
    float t[4] = {fill, fill, fill, fill};
    memcpy(t, p, sizeof(float) * n);
    return vld1q_f32(t);
}
static inline void storen_neon(float *p, float32x4_t v, int n) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, sizeof(float) * n);
}
#define V_LOAD(p) vld1q_f32(p)
#define V_LOAD_BF16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))
#define V_STORE(p, v) vst1q_f32(p, v)
#define V_LOADN(p, n, fill) loadn_neon(p, n, fill)
#define V_STOREN(p, v, n) storen_neon(p, v, n)
#define V_SET1(x) vdupq_n_f32(x)
#define V_ADD(a, b) vaddq_f32(a, b)
#define V_SUB(a, b) vsubq_f32(a, b)
#define V_MUL(a, b) vmulq_f32(a, b)
#define V_DIV(a, b) vdivq_f32(a, b)
#define V_FMA(a, b, c) vfmaq_f32(c, a, b)
#define V_FNMA(a, b, c) vfmsq_f32(c, a, b)
/* x86 semantics (b when unordered): vmaxq would propagate NaN instead */
#define V_MAX(a, b) vbslq_f32(vcgtq_f32(a, b), a, b)
#define V_MIN(a, b) vbslq_f32(vcltq_f32(a, b), a, b)
#define V_SQRT(a) vsqrtq_f32(a)
#define V_ABS(a) vabsq_f32(a)
#define V_ROUND(a) vrndnq_f32(a)
#define V_LDEXP(p, n) \
    vmulq_f32(p, vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23)))
#define V_LT(a, b) vcltq_f32(a, b)
#define V_SEL(m, a, b) vbslq_f32(m, a, b)
#define V_HSUM(v) vaddvq_f32(v)
#define V_HMAX(v) vmaxvq_f32(v)
#include "simd/kernels_vec.h"

static const gemm_arch gemm_neon = {8, 12, gemm_ukr_8x12, NULL, dot_f32_neon, fmav_neon};

static void gemm_f32_neon(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                          int ldb, float beta, float *C, int ldc) {
    gemm_f32_blocked(&gemm_neon, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
/* bf16 on a CPU without Arm BF16 (and HONE_BF16_PATH=rounded): the fp32 kernel on
 * rounded operands; the BFDOT path is kernels_neon_bf16.c */
static void gemm_bf16_rounded_neon(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                                   int ldb, float beta, float *C, int ldc) {
    gemm_f32_rounded_blocked(&gemm_neon, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}


/* ---- conversions: exact, the scalar reference's rounding and NaN results ---- */

static inline void bf16x4_to_f32(float *d, const uint16_t *s) {
    vst1q_f32(d, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(s), 16)));
}
static inline uint32x4_t is_nan_u32(uint32x4_t u) {
    return vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
}
static inline void f32x4_to_bf16(uint16_t *d, const float *s) {
    uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(s));
    uint32x4_t r = vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1))));
    r = vbslq_u32(is_nan_u32(u), vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40)), vshrq_n_u32(r, 16));
    vst1_u16(d, vmovn_u32(r));
}
static inline void f16x4_to_f32(float *d, const uint16_t *s) {
    uint16x4_t h = vld1_u16(s);
    float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
    uint32x4_t w = vmovl_u16(h);
    uint32x4_t nan = vcgtq_u32(vandq_u32(w, vdupq_n_u32(0x7fff)), vdupq_n_u32(0x7c00));
    uint32x4_t nv = vorrq_u32(vorrq_u32(vshlq_n_u32(vandq_u32(w, vdupq_n_u32(0x8000)), 16), vdupq_n_u32(0x7f800000)),
                              vshlq_n_u32(vandq_u32(w, vdupq_n_u32(0x3ff)), 13));
    vst1q_f32(d, vbslq_f32(nan, vreinterpretq_f32_u32(nv), f));
}
static inline void f32x4_to_f16(uint16_t *d, const float *s) {
    float32x4_t x = vld1q_f32(s);
    uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(x));
    uint32x4_t u = vreinterpretq_u32_f32(x);
    uint32x4_t nv = vorrq_u32(vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x8000)), vdupq_n_u32(0x7e00));
    vst1_u16(d, vbsl_u16(vmovn_u32(is_nan_u32(u)), vmovn_u32(nv), h));
}

#define CONV_LOOP(name, dst_t, src_t, body)                                                  \
    static void name(dst_t *dst, const src_t *src, size_t n) {                               \
        size_t i = 0;                                                                        \
        for (; i + 4 <= n; i += 4) body(dst + i, src + i);                                   \
        if (i < n) {                                                                         \
            src_t s[4] = {0};                                                                \
            dst_t d[4];                                                                      \
            memcpy(s, src + i, (n - i) * sizeof(src_t));                                     \
            body(d, s);                                                                      \
            memcpy(dst + i, d, (n - i) * sizeof(dst_t));                                     \
        }                                                                                    \
    }
CONV_LOOP(bf16_to_f32_neon, float, uint16_t, bf16x4_to_f32)
CONV_LOOP(f16_to_f32_neon, float, uint16_t, f16x4_to_f32)
CONV_LOOP(f32_to_bf16_neon, uint16_t, float, f32x4_to_bf16)
CONV_LOOP(f32_to_f16_neon, uint16_t, float, f32x4_to_f16)
/* kernels_neon_bf16.c's packs convert with it too */
void f32_to_bf16_neon_packs(uint16_t *dst, const float *src, size_t n) { f32_to_bf16_neon(dst, src, n); }

#define NEON_LANE0(v) vgetq_lane_f32(v, 0)
#define NEON_FMA(a, x, y) vfmaq_f32(y, a, x) /* vfmaq_f32(acc, b, c) = acc + b*c */
HONE_PROBE_FMA(probe_fma_f32_neon, float32x4_t, vdupq_n_f32, NEON_FMA, NEON_LANE0, 4)
/* the BFDOT probe: kernels_neon_bf16.c */

void kernels_fill_neon(hone_kernels *t) {
    t->isa = "neon";
    t->gemm_f32 = gemm_f32_neon;
    t->gemm_bf16_rounded = t->gemm_bf16 = gemm_bf16_rounded_neon;
    t->gemm_f32_arch = t->gemm_bf16_rounded_arch = &gemm_neon;
    t->gemm_bf16_rounded_name = t->gemm_bf16_path = "NEON FMA 8x12 on bf16-rounded operands";
    fill_vec_neon(t);
    t->bf16_to_f32 = bf16_to_f32_neon;
    t->f16_to_f32 = f16_to_f32_neon;
    t->f32_to_bf16 = f32_to_bf16_neon;
    t->f32_to_f16 = f32_to_f16_neon;
    t->probe_fma_f32 = probe_fma_f32_neon;
    t->probe_fma_unit = "q-register FMA";
}
