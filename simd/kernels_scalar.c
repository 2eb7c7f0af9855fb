/* kernels_scalar.c — the scalar reference for every kernel in the table.
 * Plain C in a fixed summation order; the ISA kernels are tested against these
 * (tests/test_kernels.c) and the model against PyTorch through them. */
#include "simd/kernels.h"
#include "simd/gemm.h"
#include "simd/quant.h"
#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

static void gemm_f32_scalar(int ta, int tb, int M, int N, int K, const float *A, int lda,
                            const float *B, int ldb, float beta, float *C, int ldc) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (tb) {
            for (int j = 0; j < N; j++) {
                const float *b = B + (size_t)j * ldb;
                float acc = 0.f;
                if (ta)
                    for (int k = 0; k < K; k++) acc += A[(size_t)k * lda + i] * b[k];
                else
                    for (int k = 0; k < K; k++) acc += A[(size_t)i * lda + k] * b[k];
                c[j] = beta != 0.f ? c[j] + acc : acc;
            }
        } else {
            if (beta == 0.f) memset(c, 0, sizeof(float) * N);
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float *b = B + (size_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}

static float dot_f32_scalar(const float *a, const float *b, int n) {
    float s = 0.f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static float dot_bf16_f32_scalar(const uint16_t *a, const float *b, int n) {
    float s = 0.f;
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)a[i] << 16;
        float w;
        memcpy(&w, &u, 4);
        s += w * b[i];
    }
    return s;
}
static void dot_rows_f32_scalar(float *out, const float *a, size_t lda, const float *b, int rows, int n) {
    for (int r = 0; r < rows; r++) out[r] = dot_f32_scalar(a + (size_t)r * lda, b, n);
}
static inline float bf16_widen(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float w;
    memcpy(&w, &u, 4);
    return w;
}
/* Panel dots: per lane j, four accumulators over k mod 4 with fused multiply-adds (the
 * vector kernels' order), the last n mod 4 columns into a0, then (a0 + a1) + (a2 + a3). */
#define PANEL_SCALAR(SUF, WT, WIDEN)                                                             \
    static void dot_panel16_##SUF##_scalar(float out[16], const WT *p, const float *x, int n) { \
        for (int j = 0; j < 16; j++) {                                                           \
            float a[4] = {0.f, 0.f, 0.f, 0.f};                                                   \
            int k = 0;                                                                           \
            for (; k + 4 <= n; k += 4)                                                           \
                for (int m = 0; m < 4; m++) a[m] = fmaf(WIDEN(p[(size_t)(k + m) * 16 + j]), x[k + m], a[m]); \
            for (; k < n; k++) a[0] = fmaf(WIDEN(p[(size_t)k * 16 + j]), x[k], a[0]);           \
            out[j] = (a[0] + a[1]) + (a[2] + a[3]);                                              \
        }                                                                                        \
    }                                                                                            \
    static void dot_panel16x4_##SUF##_scalar(float *out, int ldo, const WT *p, const float *x, int ldx, int n) { \
        for (int r = 0; r < 4; r++) dot_panel16_##SUF##_scalar(out + (size_t)r * ldo, p, x + (size_t)r * ldx, n); \
    }
#define WIDEN_F32(v) (v)
PANEL_SCALAR(f32, float, WIDEN_F32)
PANEL_SCALAR(bf16_f32, uint16_t, bf16_widen)
#undef WIDEN_F32
#undef PANEL_SCALAR
static void axpy_f32_scalar(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}
static void scale_f32_scalar(float *y, float a, int n) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

float rmsnorm_fwd_scalar(float *out, const float *x, const float *w, float w_off, float eps, int n) {
    float ss = 0.f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float rstd = 1.0f / sqrtf(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * rstd * (w_off + w[i]);
    return rstd;
}

/* y = x*rstd*(o+w); dy/dx_j = rstd*(o+w_j) - x_j*rstd^3/n * sum_i dout_i (o+w_i) x_i */
static void rmsnorm_bwd_scalar(float *dx, float *dw, const float *dout, const float *x, const float *w,
                               float w_off, float rstd, int n) {
    float dot = 0.f;
    for (int i = 0; i < n; i++) dot += dout[i] * (w_off + w[i]) * x[i];
    float c = dot * rstd * rstd * rstd / n;
    for (int i = 0; i < n; i++) {
        dx[i] += dout[i] * (w_off + w[i]) * rstd - x[i] * c;
        dw[i] += dout[i] * x[i] * rstd;
    }
}

static void rope_scalar(float *x, const float *cos, const float *sin, int nh, int D, float sign) {
    int h2 = D / 2;
    for (int h = 0; h < nh; h++) {
        float *r = x + (size_t)h * D;
        for (int i = 0; i < h2; i++) {
            float x1 = r[i], x2 = r[i + h2], c = cos[i], s = sign * sin[i];
            r[i] = x1 * c - x2 * s;
            r[i + h2] = x2 * c + x1 * s;
        }
    }
}

static inline float act_scalar(float g, int act, float *deriv) {
    if (act == HONE_ACT_SILU) {
        float s = 1.0f / (1.0f + expf(-g));
        if (deriv) *deriv = s * (1.0f + g * (1.0f - s));
        return g * s;
    }
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    float u = k * (g + 0.044715f * g * g * g);
    float t = tanhf(u);
    if (deriv) *deriv = 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * g * g);
    return 0.5f * g * (1.0f + t);
}

static void glu_fwd_scalar(float *h, const float *gate, const float *up, int n, int act) {
    for (int i = 0; i < n; i++) h[i] = act_scalar(gate[i], act, NULL) * up[i];
}
static void glu_bwd_scalar(float *dgate, float *dup, const float *dh, const float *gate, const float *up,
                           int n, int act) {
    for (int i = 0; i < n; i++) {
        float d;
        float a = act_scalar(gate[i], act, &d);
        dgate[i] = dh[i] * up[i] * d;
        dup[i] = dh[i] * a;
    }
}

static void ce_fwd_scalar(const float *x, int n, float stats[5]) {
    float m = x[0];
    int am = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > m) { m = x[i]; am = i; }
    float s = 0.f, spx = 0.f, sx = 0.f;
    for (int i = 0; i < n; i++) {
        float e = expf(x[i] - m);
        s += e;
        spx += e * x[i];
        sx += x[i];
    }
    stats[0] = m;
    stats[1] = m + logf(s);
    stats[2] = spx / s;
    stats[3] = (float)am;
    stats[4] = sx;
}

static void ce_bwd_scalar(float *dx, const float *x, int n, float lse, int label, float coef) {
    for (int i = 0; i < n; i++) dx[i] = coef * expf(x[i] - lse);
    if (label >= 0 && label < n) dx[label] -= coef;
}

#define ATTN_MAX_D 512

static void attn_fwd_scalar(float *o, float *lse, const float *q, const float *k, const float *v, int q0,
                            int q1, int D, int sq, int skv, int so, const int32_t *start,
                            const int32_t *pfx_start, const int32_t *pfx_end, float scale) {
    assert(D <= ATTN_MAX_D);
    float acc[ATTN_MAX_D];
    for (int i = q0; i < q1; i++) {
        const float *qi = q + (size_t)i * sq;
        float m = -INFINITY, l = 0.f;
        memset(acc, 0, sizeof(float) * D);
        for (int pass = 0; pass < 2; pass++) {
            int j0 = pass ? start[i] : pfx_start[i], j1 = pass ? i + 1 : pfx_end[i];
            for (int j = j0; j < j1; j++) {
                const float *kj = k + (size_t)j * skv, *vj = v + (size_t)j * skv;
                float s = 0.f;
                for (int d = 0; d < D; d++) s += qi[d] * kj[d];
                s *= scale;
                if (s > m) {
                    float c = expf(m - s);
                    l *= c;
                    for (int d = 0; d < D; d++) acc[d] *= c;
                    m = s;
                }
                float p = expf(s - m);
                l += p;
                for (int d = 0; d < D; d++) acc[d] += p * vj[d];
            }
        }
        float *oi = o + (size_t)i * so;
        float inv = 1.0f / l;
        for (int d = 0; d < D; d++) oi[d] = acc[d] * inv;
        lse[i] = m + logf(l);
    }
}

static void attn_bwd_scalar(float *dq, float *dk, float *dv, const float *dout, const float *o,
                            const float *lse, const float *q, const float *k, const float *v, int q0,
                            int q1, int D, int sq, int skv, int so, const int32_t *start,
                            const int32_t *pfx_start, const int32_t *pfx_end, float scale) {
    for (int i = q0; i < q1; i++) {
        const float *qi = q + (size_t)i * sq, *doi = dout + (size_t)i * so, *oi = o + (size_t)i * so;
        float *dqi = dq + (size_t)i * sq;
        float Di = 0.f;
        for (int d = 0; d < D; d++) Di += doi[d] * oi[d];
        memset(dqi, 0, sizeof(float) * D);
        for (int pass = 0; pass < 2; pass++) {
            int j0 = pass ? start[i] : pfx_start[i], j1 = pass ? i + 1 : pfx_end[i];
            for (int j = j0; j < j1; j++) {
                const float *kj = k + (size_t)j * skv, *vj = v + (size_t)j * skv;
                float s = 0.f, dp = 0.f;
                for (int d = 0; d < D; d++) {
                    s += qi[d] * kj[d];
                    dp += doi[d] * vj[d];
                }
                float p = expf(s * scale - lse[i]);
                float ds = p * (dp - Di) * scale;
                float *dkj = dk + (size_t)j * skv, *dvj = dv + (size_t)j * skv;
                for (int d = 0; d < D; d++) {
                    dqi[d] += ds * kj[d];
                    dkj[d] += ds * qi[d];
                    dvj[d] += p * doi[d];
                }
            }
        }
    }
}

static void adamw_scalar(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                         float b2, float eps, float wd, float bc1, float bc2, float gscale) {
    float step = lr / bc1, bc2s = sqrtf(bc2), decay = 1.0f - lr * wd;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        p[i] *= decay;
        m[i] += (1.0f - b1) * (gi - m[i]);
        v[i] = v[i] * b2 + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2s + eps;
        p[i] -= step * m[i] / denom;
    }
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void bf16_to_f32_scalar(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = u2f((uint32_t)src[i] << 16);
}
static void f32_to_bf16_scalar(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f2u(src[i]);
        if ((u & 0x7fffffff) > 0x7f800000) { dst[i] = (uint16_t)((u >> 16) | 0x40); continue; } /* quiet NaN */
        u += 0x7fff + ((u >> 16) & 1);
        dst[i] = (uint16_t)(u >> 16);
    }
}
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        float f = ldexpf((float)man, -24); /* subnormal */
        return sign ? -f : f;
    }
    if (exp == 31) return u2f(sign | 0x7f800000 | (man << 13));
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}
static uint16_t float_to_half(float f) {
    uint32_t u = f2u(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffff;
    if (a > 0x7f800000) return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (a < 0x38800000) {                                /* below the smallest normal */
        float v = u2f(a) * 16777216.0f;                  /* in units of 2^-24 */
        uint32_t r = (uint32_t)lrintf(v);                /* ties to even under the default mode */
        return (uint16_t)(sign | r);
    }
    uint32_t e = (a >> 23) - 112, m = a & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}
static void f16_to_f32_scalar(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = half_to_float(src[i]);
}
static void f32_to_f16_scalar(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
}

/* The scalar probe: one multiply and one add per chain step (no FMA is assumed
 * without ISA flags), kept scalar (GCC would otherwise vectorize the chains). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
static double probe_fma_f32_scalar(long iters, float *out) {
    float a[HONE_PROBE_CHAINS], x = 0.999999f, y = 1e-7f;
    for (int c = 0; c < HONE_PROBE_CHAINS; c++) a[c] = (float)c;
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int c = 0; c < HONE_PROBE_CHAINS; c++) a[c] = a[c] * x + y;
    for (int c = 0; c < HONE_PROBE_CHAINS; c++) out[c] = a[c];
    return (double)iters * HONE_PROBE_CHAINS * 2;
}

/* ---- bf16 matrix products (kernels.h gemm_bf16_*) ---- */

static void round_bf16_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f2u(x[i]);
        if ((u & 0x7fffffff) > 0x7f800000) u |= 0x400000; /* quiet NaN, as f32_to_bf16 */
        else u += 0x7fff + ((u >> 16) & 1);
        x[i] = u2f(u & 0xffff0000u);
    }
}

/* The 4x16 fp32 micro-kernel of the driver (gemm.h) in plain C: the rounded path's
 * reference (k in increasing order, separate multiply and add). */
static void gemm_ukr_4x16_scalar(int kc, const float *a, const float *b, float *c, long ldc, int accum) {
    float acc[4][16] = {{0}};
    for (int k = 0; k < kc; k++, a += 4, b += 16)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 16; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++) c[i * ldc + j] = accum ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}
static const gemm_arch gemm_scalar = {4, 16, gemm_ukr_4x16_scalar, NULL, NULL, NULL};
static void gemm_bf16_rounded_scalar(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                                     int ldb, float beta, float *C, int ldc) {
    gemm_f32_rounded_blocked(&gemm_scalar, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* vdpbf16ps in C: a bf16 subnormal input reads as zero (DAZ), each product is exact
 * and enters one fused add (fmaf: no rounding of the product, so no overflow or
 * underflow of it either, as the hardware), a subnormal sum is flushed (FTZ). */
static inline float bf16_daz(uint32_t h) {
    if (!(h & 0x7f80)) h &= 0x8000;
    return u2f(h << 16);
}
static inline float f32_ftz(float x) {
    uint32_t u = f2u(x);
    return (u & 0x7f800000) ? x : u2f(u & 0x80000000u);
}
static void gemm_ukr_bf16_4x16_scalar(int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc, int accum) {
    float acc[4][16] = {{0}};
    for (int p = 0; p < kp; p++, a += 4, b += 16)
        for (int i = 0; i < 4; i++) {
            float a0 = bf16_daz(a[i] & 0xffff), a1 = bf16_daz(a[i] >> 16);
            for (int j = 0; j < 16; j++) {
                float b0 = bf16_daz(b[j] & 0xffff), b1 = bf16_daz(b[j] >> 16);
                float s = f32_ftz(fmaf(a1, b1, acc[i][j])); /* the high (odd k) pair first */
                acc[i][j] = f32_ftz(fmaf(a0, b0, s));
            }
        }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++) c[i * ldc + j] = accum ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}
static const gemm_arch_bf16 gemm_bf16_scalar_arch = {4, 16, gemm_ukr_bf16_4x16_scalar, f32_to_bf16_scalar};
void gemm_bf16_dot_scalar(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                 float beta, float *C, int ldc) {
    gemm_bf16_blocked(&gemm_bf16_scalar_arch, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* Arm BF16's BFDotAdd (BFDOT, BFMMLA; FEAT_EBF16 absent or FPCR.EBF = 0) in C:
 * s = RO(s + RO(a0*b0 + a1*b1)). Products of bf16 values are exact in fp32 unless they
 * leave its range: below 2^-126 flushed to a signed zero, past FLT_MAX infinity. RO is
 * round to odd: truncate, then set the last bit when inexact; the error comes from
 * TwoSum (exact under round to nearest), whose sign says on which side of the nearest
 * sum the exact one lies. A subnormal sum is flushed to a signed zero (an exact one:
 * sums of normals below 2^-126 are representable). NaN results read as NaN only (the
 * hardware gives the default NaN). */
static inline float bf16_ftz_prod(uint32_t x, uint32_t y) {
    double p = (double)bf16_daz(x) * (double)bf16_daz(y);
    if (fabs(p) < 0x1p-126) return (float)copysign(0.0, p);
    return (float)p; /* exact, or infinity (a 16-bit product past FLT_MAX is 2^128 or more) */
}
static inline float add_round_odd_ftz(float a, float b) {
    float s = a + b;
    if (!isfinite(s)) { /* round to odd never rounds up: below 2^128 the sum stays FLT_MAX */
        if (isinf(s) && isfinite(a) && isfinite(b) && fabs((double)a + b) < 0x1p128) return copysignf(FLT_MAX, s);
        return s;
    }
    float bb = s - a, e = (a - (s - bb)) + (b - bb);
    uint32_t u = f2u(s);
    if (e != 0.f) {
        if ((e < 0) != (s < 0)) u -= 1; /* |exact| < |s|: truncation is the float below */
        u |= 1;
    }
    if (!(u & 0x7f800000)) u &= 0x80000000u;
    return u2f(u);
}
static inline float bfdot_add(float s, uint32_t a, uint32_t b) {
    float p = add_round_odd_ftz(bf16_ftz_prod(a & 0xffff, b & 0xffff), bf16_ftz_prod(a >> 16, b >> 16));
    return add_round_odd_ftz(s, p);
}
static void gemm_ukr_bfdot_4x16_scalar(int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc, int accum) {
    float acc[4][16] = {{0}};
    for (int p = 0; p < kp; p++, a += 4, b += 16)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 16; j++) acc[i][j] = bfdot_add(acc[i][j], a[i], b[j]);
    if (kp & 1) /* the +0 pair BFMMLA pads an odd count with: -0 becomes +0 */
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 16; j++) acc[i][j] = bfdot_add(acc[i][j], 0, 0);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++) c[i * ldc + j] = accum ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}
static const gemm_arch_bf16 gemm_bfdot_scalar_arch = {4, 16, gemm_ukr_bfdot_4x16_scalar, f32_to_bf16_scalar};
void gemm_bf16_bfdot_scalar(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                            float beta, float *C, int ldc) {
    gemm_bf16_blocked(&gemm_bfdot_scalar_arch, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void kernels_fill_scalar(hone_kernels *t) {
    t->isa = "scalar";
    t->gemm_f32 = gemm_f32_scalar;
    t->dot_f32 = dot_f32_scalar;
    t->dot_bf16_f32 = dot_bf16_f32_scalar;
    t->dot_rows_f32 = dot_rows_f32_scalar;
    t->dot_panel16_bf16_f32 = dot_panel16_bf16_f32_scalar;
    t->dot_panel16_f32 = dot_panel16_f32_scalar;
    t->dot_panel16x4_f32 = dot_panel16x4_f32_scalar;
    t->dot_panel16x4_bf16_f32 = dot_panel16x4_bf16_f32_scalar;
    t->axpy_f32 = axpy_f32_scalar;
    t->scale_f32 = scale_f32_scalar;
    t->rmsnorm_fwd = rmsnorm_fwd_scalar;
    t->rmsnorm_bwd = rmsnorm_bwd_scalar;
    t->rope = rope_scalar;
    t->glu_fwd = glu_fwd_scalar;
    t->glu_bwd = glu_bwd_scalar;
    t->ce_fwd = ce_fwd_scalar;
    t->ce_bwd = ce_bwd_scalar;
    t->attn_fwd = attn_fwd_scalar;
    t->attn_bwd = attn_bwd_scalar;
    t->adamw = adamw_scalar;
    t->bf16_to_f32 = bf16_to_f32_scalar;
    t->f16_to_f32 = f16_to_f32_scalar;
    t->f32_to_bf16 = f32_to_bf16_scalar;
    t->f32_to_f16 = f32_to_f16_scalar;
    t->dequant_4bit_f32 = dequant_4bit_scalar; /* simd/quant.c */
    t->dequant_int8_f32 = dequant_int8_scalar;
    t->dropout_f32 = dropout_f32_scalar;
    t->probe_fma_f32 = probe_fma_f32_scalar;
    t->probe_fma_unit = "scalar multiply-add";
    /* no bf16 unit: the pair emulation (gemm_bf16_dot_scalar) is the tests' reference */
    t->gemm_bf16_dot = NULL;
    t->gemm_bf16_dot_ref = gemm_bf16_dot_scalar;
    t->gemm_bf16_rounded = t->gemm_bf16 = gemm_bf16_rounded_scalar;
    t->gemm_f32_arch = NULL; /* gemm_f32_scalar is a plain loop, not the blocked driver */
    t->gemm_bf16_rounded_arch = &gemm_scalar;
    t->gemm_bf16_dot_arch = NULL;
    t->gemm_bf16_rounded_name = t->gemm_bf16_path = "scalar multiply-add on bf16-rounded operands";
    t->gemm_bf16_dot_name = NULL;
    t->round_bf16 = round_bf16_scalar;
}
