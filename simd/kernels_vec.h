/* kernels_vec.h — the vector kernels written once against a small vector
 * vocabulary (VF, V_LOAD, V_FMA, ...) that each ISA file defines before
 * including this header (kernels_avx2.c: 8 lanes, kernels_avx512.c: 16 lanes
 * with masked tails, kernels_neon.c: 4 lanes). The intrinsics stay in the ISA
 * files; this file holds only the algorithms. Every function is static and
 * named with VNAME() so each ISA gets its own copy, compiled with its flags.
 *
 * Required by the includer:
 *   VF (vector of VL floats), VM (lane mask), VNAME(x) (name suffix)
 *   V_LOAD(p) V_LOAD_BF16(p) (VL bf16 widened to fp32) V_STORE(p,v) V_LOADN(p,n,fill) V_STOREN(p,v,n)  (n < VL lanes)
 *   V_SET1(x) V_ADD V_SUB V_MUL V_DIV V_FMA(a,b,c)=a*b+c V_FNMA(a,b,c)=c-a*b
 *   V_MAX(a,b) V_MIN(a,b) (return b when a or b is NaN, as x86 maxps does)
 *   V_SQRT V_ABS V_ROUND (to nearest) V_LDEXP(p,n) (p*2^n, n integral float
 *   in [-126,127]) V_LT(a,b) V_SEL(m,a,b) (m ? a : b) V_HSUM V_HMAX
 *
 * Exactness: kernels whose scalar reference is a fixed per-element formula
 * (axpy, scale, RMSNorm's second pass, RoPE, AdamW) use the same operations in
 * the same order with no FMA contraction, so they match the scalar bitwise.
 * Reductions (dot, sums of squares, softmax sums) are reassociated across
 * lanes; exp and tanh are polynomial (about 1-2 ulp). */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* ---- math ---- */

/* exp(x) for a vector: Cephes-style range reduction x = n ln2 + r, degree-6
 * polynomial on |r| <= ln2/2 (about 1 ulp). Below ln(FLT_MIN) it returns 0
 * (the scalar expf would give a denormal < 1.2e-38); above 88.376 it returns
 * +inf (expf overflows at 88.72); NaN propagates. */
static inline VF VNAME(vexp)(VF x) {
    const VF hi = V_SET1(88.3762626647949f), lo = V_SET1(-87.3365478515625f);
    VM over = V_LT(hi, x), under = V_LT(x, lo);
    x = V_MIN(hi, V_MAX(lo, x));
    VF n = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
    VF r = V_FNMA(n, V_SET1(0.693359375f), x);
    r = V_FNMA(n, V_SET1(-2.12194440e-4f), r);
    VF p = V_SET1(1.9875691500E-4f);
    p = V_FMA(p, r, V_SET1(1.3981999507E-3f));
    p = V_FMA(p, r, V_SET1(8.3334519073E-3f));
    p = V_FMA(p, r, V_SET1(4.1665795894E-2f));
    p = V_FMA(p, r, V_SET1(1.6666665459E-1f));
    p = V_FMA(p, r, V_SET1(5.0000001201E-1f));
    VF y = V_FMA(V_MUL(p, r), r, V_ADD(r, V_SET1(1.f)));
    y = V_LDEXP(y, n);
    y = V_SEL(over, V_SET1(INFINITY), y);
    return V_SEL(under, V_SET1(0.f), y);
}

/* tanh(x): odd rational approximation p(x)/q(x) on [-7.905, 7.905] (the
 * Eigen coefficients, a few ulp); x itself below 4e-4 where tanh(x) = x in fp32. */
static inline VF VNAME(vtanh)(VF x0) {
    const VF c = V_SET1(7.90531110763549805f);
    VF x = V_MIN(c, V_MAX(V_SUB(V_SET1(0.f), c), x0));
    VM tiny = V_LT(V_ABS(x0), V_SET1(0.0004f));
    VF x2 = V_MUL(x, x);
    VF p = V_SET1(-2.76076847742355e-16f);
    p = V_FMA(x2, p, V_SET1(2.00018790482477e-13f));
    p = V_FMA(x2, p, V_SET1(-8.60467152213735e-11f));
    p = V_FMA(x2, p, V_SET1(5.12229709037114e-08f));
    p = V_FMA(x2, p, V_SET1(1.48572235717979e-05f));
    p = V_FMA(x2, p, V_SET1(6.37261928875436e-04f));
    p = V_FMA(x2, p, V_SET1(4.89352455891786e-03f));
    p = V_MUL(x, p);
    VF q = V_SET1(1.19825839466702e-06f);
    q = V_FMA(x2, q, V_SET1(1.18534705686654e-04f));
    q = V_FMA(x2, q, V_SET1(2.26843463243900e-03f));
    q = V_FMA(x2, q, V_SET1(4.89352518554385e-03f));
    return V_SEL(tiny, x0, V_DIV(p, q));
}

/* Loads r remaining elements (a full vector when r >= VL). */
static inline VF VNAME(ld)(const float *p, int r, float fill) { return r >= VL ? V_LOAD(p) : V_LOADN(p, r, fill); }
static inline void VNAME(st)(float *p, VF v, int r) {
    if (r >= VL) V_STORE(p, v);
    else V_STOREN(p, v, r);
}

/* ---- vector basics ---- */

/* bf16 a widened by the includer's V_LOAD_BF16 (a 16-bit shift: exact); the tail is
 * copied into a zeroed block so its lanes are +0, as the fp32 tail fill. */
static inline VF VNAME(ldh)(const uint16_t *p, int r) {
    if (r >= VL) return V_LOAD_BF16(p);
    uint16_t t[VL] = {0};
    memcpy(t, p, sizeof(uint16_t) * (size_t)r);
    return V_LOAD_BF16(t);
}
#define LDF(p) V_LOAD(p)
#define LDF_TAIL(p, r) VNAME(ld)(p, r, 0.f)
#define LDH_TAIL(p, r) VNAME(ldh)(p, r)

/* One loop for both dots, so the bf16 one keeps the fp32 one's accumulators and
 * order (bitwise dot_f32 of the widened values): LA / LA_TAIL load a. */
#define DOT_BODY(LA, LA_TAIL)                                                             \
    VF s0 = V_SET1(0.f), s1 = s0, s2 = s0, s3 = s0;                                      \
    int i = 0;                                                                            \
    for (; i + 4 * VL <= n; i += 4 * VL) {                                                \
        s0 = V_FMA(LA(a + i), V_LOAD(b + i), s0);                                         \
        s1 = V_FMA(LA(a + i + VL), V_LOAD(b + i + VL), s1);                               \
        s2 = V_FMA(LA(a + i + 2 * VL), V_LOAD(b + i + 2 * VL), s2);                       \
        s3 = V_FMA(LA(a + i + 3 * VL), V_LOAD(b + i + 3 * VL), s3);                       \
    }                                                                                     \
    for (; i < n; i += VL) s0 = V_FMA(LA_TAIL(a + i, n - i), VNAME(ld)(b + i, n - i, 0.f), s0); \
    return V_HSUM(V_ADD(V_ADD(s0, s1), V_ADD(s2, s3)));

static inline float VNAME(dot_f32_in)(const float *a, const float *b, int n) { DOT_BODY(LDF, LDF_TAIL) }
static inline float VNAME(dot_bf16_f32_in)(const uint16_t *a, const float *b, int n) { DOT_BODY(V_LOAD_BF16, LDH_TAIL) }
#undef DOT_BODY
#undef LDF
#undef LDF_TAIL
#undef LDH_TAIL

static float VNAME(dot_f32)(const float *a, const float *b, int n) { return VNAME(dot_f32_in)(a, b, n); }
static float VNAME(dot_bf16_f32)(const uint16_t *a, const float *b, int n) { return VNAME(dot_bf16_f32_in)(a, b, n); }

/* Row loops with the dot inlined: no call per row, so decoding streams the weights
 * closer to the memory bandwidth. */
static void VNAME(dot_rows_f32)(float *out, const float *a, size_t lda, const float *b, int rows, int n) {
    for (int r = 0; r < rows; r++) out[r] = VNAME(dot_f32_in)(a + (size_t)r * lda, b, n);
}

/* Panels: 16 weight rows interleaved, p[k*16 + j] = row j, column k. Each k loads the
 * 16 weights (16/VL vectors) and broadcasts x[k]; four accumulator sets over k mod 4
 * hide the FMA latency; out[j] = (a0 + a1) + (a2 + a3). The x4 forms take 4 inputs
 * (rows of x with stride ldx) per panel load, each input in the one-input order, so
 * a row's result never depends on which kernel ran it (prompt chunks = decoding).
 * LW loads VL weights as fp32 (V_LOAD, or V_LOAD_BF16 widening bf16). */
#define PV (16 / VL)
#define PANEL_KERNELS(SUF, WT, LW)                                                                  \
    static void VNAME(dot_panel16_##SUF)(float out[16], const WT *p, const float *x, int n) {     \
        VF a0[PV], a1[PV], a2[PV], a3[PV];                                                          \
        for (int v = 0; v < PV; v++) a0[v] = a1[v] = a2[v] = a3[v] = V_SET1(0.f);                   \
        int k = 0;                                                                                  \
        for (; k + 4 <= n; k += 4, p += 64) {                                                       \
            VF x0 = V_SET1(x[k]), x1 = V_SET1(x[k + 1]), x2 = V_SET1(x[k + 2]), x3 = V_SET1(x[k + 3]); \
            for (int v = 0; v < PV; v++) {                                                          \
                a0[v] = V_FMA(LW(p + v * VL), x0, a0[v]);                                           \
                a1[v] = V_FMA(LW(p + 16 + v * VL), x1, a1[v]);                                      \
                a2[v] = V_FMA(LW(p + 32 + v * VL), x2, a2[v]);                                      \
                a3[v] = V_FMA(LW(p + 48 + v * VL), x3, a3[v]);                                      \
            }                                                                                       \
        }                                                                                           \
        for (; k < n; k++, p += 16) {                                                               \
            VF xk = V_SET1(x[k]);                                                                   \
            for (int v = 0; v < PV; v++) a0[v] = V_FMA(LW(p + v * VL), xk, a0[v]);                  \
        }                                                                                           \
        for (int v = 0; v < PV; v++) V_STORE(out + v * VL, V_ADD(V_ADD(a0[v], a1[v]), V_ADD(a2[v], a3[v]))); \
    }                                                                                               \
    static void VNAME(dot_panel16x4_##SUF)(float *out, int ldo, const WT *p, const float *x, int ldx, int n) { \
        if (PV > 1) { /* 16 lanes span several vectors: 4 inputs would not fit the registers */   \
            for (int r = 0; r < 4; r++) VNAME(dot_panel16_##SUF)(out + (size_t)r * ldo, p, x + (size_t)r * ldx, n); \
            return;                                                                                 \
        }                                                                                           \
        VF acc[4][4];                                                                               \
        for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = V_SET1(0.f);   \
        const float *xr[4] = {x, x + ldx, x + 2 * (size_t)ldx, x + 3 * (size_t)ldx};              \
        int k = 0;                                                                                  \
        for (; k + 4 <= n; k += 4, p += 64) {                                                       \
            VF w0 = LW(p), w1 = LW(p + 16), w2 = LW(p + 32), w3 = LW(p + 48);                       \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                   \
                acc[r][0] = V_FMA(w0, V_SET1(xr[r][k]), acc[r][0]);                                 \
                acc[r][1] = V_FMA(w1, V_SET1(xr[r][k + 1]), acc[r][1]);                             \
                acc[r][2] = V_FMA(w2, V_SET1(xr[r][k + 2]), acc[r][2]);                             \
                acc[r][3] = V_FMA(w3, V_SET1(xr[r][k + 3]), acc[r][3]);                             \
            }                                                                                       \
        }                                                                                           \
        for (; k < n; k++, p += 16) {                                                               \
            VF w = LW(p);                                                                           \
            for (int r = 0; r < 4; r++) acc[r][0] = V_FMA(w, V_SET1(xr[r][k]), acc[r][0]);          \
        }                                                                                           \
        for (int r = 0; r < 4; r++)                                                                 \
            V_STORE(out + (size_t)r * ldo, V_ADD(V_ADD(acc[r][0], acc[r][1]), V_ADD(acc[r][2], acc[r][3]))); \
    }
#define LW_F32(p) V_LOAD(p)
#define LW_BF16(p) V_LOAD_BF16(p)
PANEL_KERNELS(f32, float, LW_F32)
PANEL_KERNELS(bf16_f32, uint16_t, LW_BF16)
#undef LW_F32
#undef LW_BF16
#undef PANEL_KERNELS
#undef PV

/* y += a*x as mul then add (bitwise the scalar reference). */
static void VNAME(axpy_f32)(float *y, float a, const float *x, int n) {
    VF va = V_SET1(a);
    for (int i = 0; i < n; i += VL)
        VNAME(st)(y + i, V_ADD(VNAME(ld)(y + i, n - i, 0.f), V_MUL(va, VNAME(ld)(x + i, n - i, 0.f))), n - i);
}

static void VNAME(scale_f32)(float *y, float a, int n) {
    VF va = V_SET1(a);
    for (int i = 0; i < n; i += VL) VNAME(st)(y + i, V_MUL(VNAME(ld)(y + i, n - i, 0.f), va), n - i);
}

/* y += a*x with FMA (internal: attention accumulators). */
static inline void VNAME(fmav)(float *y, float a, const float *x, int n) {
    VF va = V_SET1(a);
    for (int i = 0; i < n; i += VL)
        VNAME(st)(y + i, V_FMA(va, VNAME(ld)(x + i, n - i, 0.f), VNAME(ld)(y + i, n - i, 0.f)), n - i);
}

/* ---- RMSNorm ---- */

static float VNAME(rmsnorm_fwd)(float *out, const float *x, const float *w, float w_off, float eps, int n) {
    float ss = VNAME(dot_f32)(x, x, n);
    float rstd = 1.0f / sqrtf(ss / n + eps);
    VF vr = V_SET1(rstd), vo = V_SET1(w_off);
    for (int i = 0; i < n; i += VL) {
        int r = n - i;
        VF y = V_MUL(V_MUL(VNAME(ld)(x + i, r, 0.f), vr), V_ADD(vo, VNAME(ld)(w + i, r, 0.f)));
        VNAME(st)(out + i, y, r);
    }
    return rstd;
}

static void VNAME(rmsnorm_bwd)(float *dx, float *dw, const float *dout, const float *x, const float *w,
                               float w_off, float rstd, int n) {
    VF vo = V_SET1(w_off), vr = V_SET1(rstd), acc = V_SET1(0.f), acc1 = acc;
    int i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        acc = V_FMA(V_MUL(V_LOAD(dout + i), V_ADD(vo, V_LOAD(w + i))), V_LOAD(x + i), acc);
        acc1 = V_FMA(V_MUL(V_LOAD(dout + i + VL), V_ADD(vo, V_LOAD(w + i + VL))), V_LOAD(x + i + VL), acc1);
    }
    for (; i < n; i += VL) {
        int r = n - i;
        acc = V_FMA(V_MUL(VNAME(ld)(dout + i, r, 0.f), V_ADD(vo, VNAME(ld)(w + i, r, 0.f))),
                    VNAME(ld)(x + i, r, 0.f), acc);
    }
    float dot = V_HSUM(V_ADD(acc, acc1));
    VF c = V_SET1(dot * rstd * rstd * rstd / n);
    for (i = 0; i < n; i += VL) {
        int r = n - i;
        VF d = VNAME(ld)(dout + i, r, 0.f), xv = VNAME(ld)(x + i, r, 0.f);
        VF t = V_SUB(V_MUL(V_MUL(d, V_ADD(vo, VNAME(ld)(w + i, r, 0.f))), vr), V_MUL(xv, c));
        VNAME(st)(dx + i, V_ADD(VNAME(ld)(dx + i, r, 0.f), t), r);
        VNAME(st)(dw + i, V_ADD(VNAME(ld)(dw + i, r, 0.f), V_MUL(V_MUL(d, xv), vr)), r);
    }
}

/* ---- RoPE (rotate_half layout), exact ---- */

static void VNAME(rope)(float *x, const float *cos, const float *sin, int nh, int D, float sign) {
    int h2 = D / 2;
    VF sg = V_SET1(sign);
    for (int h = 0; h < nh; h++) {
        float *r0 = x + (size_t)h * D, *r1 = r0 + h2;
        for (int i = 0; i < h2; i += VL) {
            int r = h2 - i;
            VF x1 = VNAME(ld)(r0 + i, r, 0.f), x2 = VNAME(ld)(r1 + i, r, 0.f);
            VF c = VNAME(ld)(cos + i, r, 0.f), s = V_MUL(sg, VNAME(ld)(sin + i, r, 0.f));
            VNAME(st)(r0 + i, V_SUB(V_MUL(x1, c), V_MUL(x2, s)), r);
            VNAME(st)(r1 + i, V_ADD(V_MUL(x2, c), V_MUL(x1, s)), r);
        }
    }
}

/* ---- gated activations ---- */

/* act(g) and, when d is set, act'(g): the scalar formulas with vexp/vtanh. */
static inline VF VNAME(act)(VF g, int act, VF *d) {
    const VF one = V_SET1(1.f), half = V_SET1(0.5f);
    if (act == HONE_ACT_SILU) {
        VF s = V_DIV(one, V_ADD(one, VNAME(vexp)(V_SUB(V_SET1(0.f), g))));
        if (d) *d = V_MUL(s, V_ADD(one, V_MUL(g, V_SUB(one, s))));
        return V_MUL(g, s);
    }
    const VF k = V_SET1(0.7978845608028654f), a = V_SET1(0.044715f);
    VF g2 = V_MUL(g, g);
    VF t = VNAME(vtanh)(V_MUL(k, V_ADD(g, V_MUL(V_MUL(a, g2), g))));
    if (d) {
        VF left = V_MUL(half, V_ADD(one, t));
        VF right = V_MUL(V_MUL(V_MUL(V_MUL(half, g), V_SUB(one, V_MUL(t, t))), k),
                         V_ADD(one, V_MUL(V_SET1(3.0f * 0.044715f), g2)));
        *d = V_ADD(left, right);
    }
    return V_MUL(V_MUL(half, g), V_ADD(one, t));
}

static void VNAME(glu_fwd)(float *h, const float *gate, const float *up, int n, int act) {
    for (int i = 0; i < n; i += VL) {
        int r = n - i;
        VF a = VNAME(act)(VNAME(ld)(gate + i, r, 0.f), act, NULL);
        VNAME(st)(h + i, V_MUL(a, VNAME(ld)(up + i, r, 0.f)), r);
    }
}

static void VNAME(glu_bwd)(float *dgate, float *dup, const float *dh, const float *gate, const float *up,
                           int n, int act) {
    for (int i = 0; i < n; i += VL) {
        int r = n - i;
        VF d, a = VNAME(act)(VNAME(ld)(gate + i, r, 0.f), act, &d);
        VF dhv = VNAME(ld)(dh + i, r, 0.f);
        VNAME(st)(dgate + i, V_MUL(V_MUL(dhv, VNAME(ld)(up + i, r, 0.f)), d), r);
        VNAME(st)(dup + i, V_MUL(dhv, a), r);
    }
}

/* ---- cross-entropy over one row ---- */

static void VNAME(ce_fwd)(const float *x, int n, float stats[5]) {
    VF vm = V_SET1(-INFINITY);
    int i = 0;
    for (; i + VL <= n; i += VL) vm = V_MAX(V_LOAD(x + i), vm);
    float m = V_HMAX(vm);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    int am = 0;
    while (am < n && !(x[am] == m)) am++; /* first index of the max */
    if (am == n) am = 0, m = x[0];        /* all NaN: follow the scalar */
    VF s = V_SET1(0.f), spx = s, sx = s, mv = V_SET1(m);
    for (i = 0; i + VL <= n; i += VL) {
        VF xv = V_LOAD(x + i), e = VNAME(vexp)(V_SUB(xv, mv));
        s = V_ADD(s, e);
        spx = V_FMA(e, xv, spx);
        sx = V_ADD(sx, xv);
    }
    float ss = V_HSUM(s), sp = V_HSUM(spx), sxs = V_HSUM(sx);
    for (; i < n; i++) {
        float e = expf(x[i] - m);
        ss += e;
        sp += e * x[i];
        sxs += x[i];
    }
    stats[0] = m;
    stats[1] = m + logf(ss);
    stats[2] = sp / ss;
    stats[3] = (float)am;
    stats[4] = sxs;
}

static void VNAME(ce_bwd)(float *dx, const float *x, int n, float lse, int label, float coef) {
    VF vl = V_SET1(lse), vc = V_SET1(coef);
    for (int i = 0; i < n; i += VL) {
        int r = n - i;
        VNAME(st)(dx + i, V_MUL(vc, VNAME(vexp)(V_SUB(VNAME(ld)(x + i, r, 0.f), vl))), r);
    }
    if (label >= 0 && label < n) dx[label] -= coef;
}

/* ---- attention (flash style, one query head) ---- */

#define VATTN_MAX_D 512
#define VATTN_BK 16 /* keys per block: scores, one rescale, one vexp per block */

/* exp(s[j] - m) for j < nb, in place. */
static inline void VNAME(exp_block)(float *s, int nb, float m) {
    VF mv = V_SET1(m);
    for (int j = 0; j < nb; j += VL) VNAME(st)(s + j, VNAME(vexp)(V_SUB(VNAME(ld)(s + j, nb - j, 0.f), mv)), nb - j);
}

/* One query at a time (decoding calls attn_fwd with one query), register-resident
 * for the common head sizes (64, 128): q and the output accumulator live in
 * ND = D/VL vector registers, and scores are computed four keys at a time (four
 * independent FMA chains sharing the q registers). Calls with more queries take the
 * tiled kernels below. */
#define VATTN_FAST(DD)                                                                            \
    static void VNAME(attn_fwd_d##DD)(float *oi, float *lse_i, const float *qi, const float *k,      \
                                      const float *v, int skv, int nr, const int *r0, const int *r1, \
                                      float scale) {                                                 \
        enum { ND = DD / VL };                                                                       \
        VF qv[ND], acc[ND];                                                                          \
        float s[VATTN_BK], m = -INFINITY, l = 0.f;                                                   \
        _Pragma("GCC unroll 32") for (int d = 0; d < ND; d++) qv[d] = V_LOAD(qi + d * VL),           \
                                                              acc[d] = V_SET1(0.f);                  \
        for (int rg = 0; rg < nr; rg++)                                                              \
            for (int jb = r0[rg]; jb < r1[rg]; jb += VATTN_BK) {                                     \
                int nb = r1[rg] - jb < VATTN_BK ? r1[rg] - jb : VATTN_BK, j = 0;                     \
                const float *kb = k + (size_t)jb * skv, *vb = v + (size_t)jb * skv;                  \
                for (; j + 4 <= nb; j += 4) {                                                        \
                    const float *k0 = kb + (size_t)j * skv;                                          \
                    VF t0 = V_SET1(0.f), t1 = t0, t2 = t0, t3 = t0;                                  \
                    _Pragma("GCC unroll 32") for (int d = 0; d < ND; d++) {                          \
                        t0 = V_FMA(qv[d], V_LOAD(k0 + d * VL), t0);                                  \
                        t1 = V_FMA(qv[d], V_LOAD(k0 + skv + d * VL), t1);                            \
                        t2 = V_FMA(qv[d], V_LOAD(k0 + 2 * skv + d * VL), t2);                        \
                        t3 = V_FMA(qv[d], V_LOAD(k0 + 3 * skv + d * VL), t3);                        \
                    }                                                                                \
                    s[j] = V_HSUM(t0) * scale, s[j + 1] = V_HSUM(t1) * scale;                        \
                    s[j + 2] = V_HSUM(t2) * scale, s[j + 3] = V_HSUM(t3) * scale;                    \
                }                                                                                    \
                for (; j < nb; j++) {                                                                \
                    VF t0 = V_SET1(0.f);                                                             \
                    _Pragma("GCC unroll 32") for (int d = 0; d < ND; d++)                            \
                        t0 = V_FMA(qv[d], V_LOAD(kb + (size_t)j * skv + d * VL), t0);                \
                    s[j] = V_HSUM(t0) * scale;                                                       \
                }                                                                                    \
                float bm = -INFINITY;                                                                \
                for (j = 0; j < nb; j++) bm = s[j] > bm ? s[j] : bm;                                 \
                if (bm > m) {                                                                        \
                    float c = expf(m - bm);                                                          \
                    l *= c;                                                                          \
                    _Pragma("GCC unroll 32") for (int d = 0; d < ND; d++) acc[d] =                   \
                        V_MUL(acc[d], V_SET1(c));                                                    \
                    m = bm;                                                                          \
                }                                                                                    \
                VNAME(exp_block)(s, nb, m);                                                          \
                for (j = 0; j < nb; j++) {                                                           \
                    VF p = V_SET1(s[j]);                                                             \
                    l += s[j];                                                                       \
                    _Pragma("GCC unroll 32") for (int d = 0; d < ND; d++) acc[d] =                   \
                        V_FMA(p, V_LOAD(vb + (size_t)j * skv + d * VL), acc[d]);                     \
                }                                                                                    \
            }                                                                                        \
        VF inv = V_SET1(1.0f / l);                                                                   \
        _Pragma("GCC unroll 32") for (int d = 0; d < ND; d++) V_STORE(oi + d * VL, V_MUL(acc[d], inv)); \
        *lse_i = m + logf(l);                                                                        \
    }

VATTN_FAST(64)
VATTN_FAST(128)

/* One query, the generic head size: the same algorithm with a scratch row. */
static void VNAME(attn_fwd_one)(float *oi, float *lse_i, const float *qi, const float *k, const float *v, int D,
                                int skv, const int r0[2], const int r1[2], float scale) {
    float acc[VATTN_MAX_D], s[VATTN_BK];
    float m = -INFINITY, l = 0.f;
    memset(acc, 0, sizeof(float) * D);
    for (int pass = 0; pass < 2; pass++)
        for (int jb = r0[pass]; jb < r1[pass]; jb += VATTN_BK) {
            int nb = r1[pass] - jb < VATTN_BK ? r1[pass] - jb : VATTN_BK;
            float bm = -INFINITY;
            for (int j = 0; j < nb; j++) {
                s[j] = VNAME(dot_f32)(qi, k + (size_t)(jb + j) * skv, D) * scale;
                bm = s[j] > bm ? s[j] : bm;
            }
            if (bm > m) { /* new running max: rescale once per block */
                float c = expf(m - bm);
                l *= c;
                VNAME(scale_f32)(acc, c, D);
                m = bm;
            }
            VNAME(exp_block)(s, nb, m);
            for (int j = 0; j < nb; j++) {
                l += s[j];
                VNAME(fmav)(acc, s[j], v + (size_t)(jb + j) * skv, D);
            }
        }
    float inv = 1.0f / l;
    for (int d = 0; d < D; d += VL) VNAME(st)(oi + d, V_MUL(VNAME(ld)(acc + d, D - d, 0.f), V_SET1(inv)), D - d);
    *lse_i = m + logf(l);
}

/* ---- attention over a tile of queries: VL consecutive queries are the vector lanes ----
 *
 * The per-query kernels above compute each score as a dot product (a horizontal
 * sum per key) and stream every key and value row once per query: about 40% of
 * the FMA peak. Here a tile of VL queries is transposed once (qt[d*VL + l] = q of
 * query l, dimension d), so a block of KB keys costs D x KB lane-wise FMAs for the
 * scores (each key element broadcast), KB x D for P.V, and no horizontal sums: the
 * softmax statistics are per-lane vectors. The backward adds dP = dO.V^T and
 * dQ the same way, and dK / dV rows are updated once per tile (the VL queries in
 * ascending order) instead of once per query.
 *
 * Key blocks are aligned to multiples of KB; a lane masks the keys outside its two
 * ranges (prefix, own document up to itself) to -inf before the max and to p = 0
 * after the exp. Every operation on a lane is that query's own arithmetic, in a
 * fixed order: for a given call, the same bits on every run and thread count (a
 * query's bits may differ from those of a call that tiles it differently). */
#define VATTN_KB 8                    /* keys per block */
#define VATTN_G (VL >= 16 ? 8 : 4)    /* d rows per group in the lane-wise P.V / dS.K products */

static const float VNAME(attn_zero_row)[VATTN_MAX_D]; /* stands in for rows past the tile's last key */

typedef struct {
    int nq;                        /* active lanes: queries i0 .. i0 + nq - 1 */
    unsigned all;                  /* their lane bits */
    int ps[VL], pe[VL], st[VL], ii[VL]; /* per lane: prefix [ps, pe), own [st, ii] */
    int jlo, jhi;                  /* keys any lane sees: [jlo, jhi) */
    int fa, fb, pa, pb;            /* every lane sees [fa, fb) (own) and [pa, pb) (prefix) */
} VNAME(atile);

static void VNAME(atile_init)(VNAME(atile) *t, int i0, int nq, const int32_t *start, const int32_t *pfx_start,
                              const int32_t *pfx_end) {
    t->nq = nq, t->all = (1u << nq) - 1, t->jlo = INT_MAX, t->jhi = 0;
    t->fa = 0, t->fb = INT_MAX, t->pa = 0, t->pb = INT_MAX;
    for (int l = 0; l < nq; l++) {
        int i = i0 + l, ps = pfx_start[i], pe = pfx_end[i], st = start[i];
        t->ps[l] = ps, t->pe[l] = pe, t->st[l] = st, t->ii[l] = i;
        int lo = st <= i ? st : INT_MAX, hi = st <= i ? i + 1 : 0;
        if (pe > ps) lo = ps < lo ? ps : lo, hi = pe > hi ? pe : hi;
        t->jlo = lo < t->jlo ? lo : t->jlo, t->jhi = hi > t->jhi ? hi : t->jhi;
        t->fa = st > t->fa ? st : t->fa, t->fb = i + 1 < t->fb ? i + 1 : t->fb;
        t->pa = ps > t->pa ? ps : t->pa, t->pb = pe < t->pb ? pe : t->pb;
    }
}

/* Block [jb, jb + KB): okm[j] = the lanes that see key jb + j; 2 when every active lane
 * sees every key, else 1 with ok[j][l] (1.f / 0.f) set too, or 0 when no lane sees any. */
static int VNAME(atile_block)(const VNAME(atile) *t, int jb, float ok[VATTN_KB][VL], unsigned okm[VATTN_KB]) {
    int je = jb + VATTN_KB, full = je <= t->jhi;
    if (full && !((jb >= t->fa && je <= t->fb) || (jb >= t->pa && je <= t->pb))) /* no range shared by all: lane by lane */
        for (int l = 0; l < t->nq && full; l++)
            full = (jb >= t->st[l] && je <= t->ii[l] + 1) || (jb >= t->ps[l] && je <= t->pe[l]);
    if (full) {
        for (int j = 0; j < VATTN_KB; j++) okm[j] = t->all;
        return 2;
    }
    unsigned any = 0;
    for (int j = 0; j < VATTN_KB; j++) {
        int jj = jb + j;
        unsigned m = 0;
        for (int l = 0; l < VL; l++) {
            int in = l < t->nq && jj < t->jhi &&
                     ((jj >= t->ps[l] && jj < t->pe[l]) || (jj >= t->st[l] && jj <= t->ii[l]));
            ok[j][l] = in ? 1.f : 0.f;
            m |= (unsigned)in << l;
        }
        okm[j] = m, any |= m;
    }
    return any != 0;
}

/* xt[d*VL + l] = x[(i0 + l)*sx + d] for the nq rows, zero lanes past them */
static void VNAME(atile_pack)(float *xt, const float *x, int i0, int nq, int D, int sx) {
    if (nq < VL) memset(xt, 0, sizeof(float) * (size_t)D * VL);
    for (int l = 0; l < nq; l++) {
        const float *r = x + (size_t)(i0 + l) * sx;
        for (int d = 0; d < D; d++) xt[(size_t)d * VL + l] = r[d];
    }
}

/* acc[j] = sum over d (in order) of xt[d] * rows[j][d]: KB independent chains */
static inline void VNAME(atile_scores)(VF acc[VATTN_KB], const float *xt, const float *const rows[VATTN_KB], int D) {
    _Pragma("GCC unroll 8") for (int j = 0; j < VATTN_KB; j++) acc[j] = V_SET1(0.f);
    for (int d = 0; d < D; d++) {
        VF x = V_LOAD(xt + (size_t)d * VL);
        _Pragma("GCC unroll 8") for (int j = 0; j < VATTN_KB; j++) acc[j] = V_FMA(x, V_SET1(rows[j][d]), acc[j]);
    }
}

/* yt[d] = yt[d] * c (when c is given) + sum over j (in order) of w[j] * rows[j][d]:
 * G rows of yt at a time, so G independent chains */
static inline void VNAME(atile_accum)(float *yt, const VF w[VATTN_KB], const float *const rows[VATTN_KB], int D,
                                      const VF *c) {
    int d = 0;
    for (; d + VATTN_G <= D; d += VATTN_G) {
        VF a[VATTN_G];
        _Pragma("GCC unroll 8") for (int g = 0; g < VATTN_G; g++) {
            a[g] = V_LOAD(yt + (size_t)(d + g) * VL);
            if (c) a[g] = V_MUL(a[g], *c);
        }
        _Pragma("GCC unroll 8") for (int j = 0; j < VATTN_KB; j++)
            _Pragma("GCC unroll 8") for (int g = 0; g < VATTN_G; g++) a[g] = V_FMA(w[j], V_SET1(rows[j][d + g]), a[g]);
        _Pragma("GCC unroll 8") for (int g = 0; g < VATTN_G; g++) V_STORE(yt + (size_t)(d + g) * VL, a[g]);
    }
    for (; d < D; d++) {
        VF a = V_LOAD(yt + (size_t)d * VL);
        if (c) a = V_MUL(a, *c);
        _Pragma("GCC unroll 8") for (int j = 0; j < VATTN_KB; j++) a = V_FMA(w[j], V_SET1(rows[j][d]), a);
        V_STORE(yt + (size_t)d * VL, a);
    }
}

static inline void VNAME(atile_rows)(const float *kr[VATTN_KB], const float *vr[VATTN_KB], const VNAME(atile) *t,
                                     int jb, const float *k, const float *v, int skv) {
    for (int j = 0; j < VATTN_KB; j++) {
        int in = jb + j < t->jhi;
        kr[j] = in ? k + (size_t)(jb + j) * skv : VNAME(attn_zero_row);
        vr[j] = in ? v + (size_t)(jb + j) * skv : VNAME(attn_zero_row);
    }
}

static void VNAME(attn_fwd_tile)(float *o, float *lse, const float *q, const float *k, const float *v, int i0, int nq,
                                 int D, int sq, int skv, int so, const int32_t *start, const int32_t *pfx_start,
                                 const int32_t *pfx_end, float scale) {
    VNAME(atile) t;
    VNAME(atile_init)(&t, i0, nq, start, pfx_start, pfx_end);
    float qt[(size_t)D * VL], ot[(size_t)D * VL], ok[VATTN_KB][VL], mm[VL], ll[VL];
    unsigned okm[VATTN_KB];
    VNAME(atile_pack)(qt, q, i0, nq, D, sq);
    memset(ot, 0, sizeof ot);
    VF m = V_SET1(-INFINITY), lsum = V_SET1(0.f), vs = V_SET1(scale), half = V_SET1(0.5f);
    for (int jb = t.jlo / VATTN_KB * VATTN_KB; jb < t.jhi; jb += VATTN_KB) {
        int cls = VNAME(atile_block)(&t, jb, ok, okm);
        if (!cls) continue;
        const float *kr[VATTN_KB], *vr[VATTN_KB];
        VNAME(atile_rows)(kr, vr, &t, jb, k, v, skv);
        VF s[VATTN_KB], bm = V_SET1(-INFINITY);
        VNAME(atile_scores)(s, qt, kr, D);
        for (int j = 0; j < VATTN_KB; j++) {
            s[j] = V_MUL(s[j], vs);
            if (cls == 1) s[j] = V_SEL(V_LT(half, V_LOAD(ok[j])), s[j], V_SET1(-INFINITY));
            bm = V_MAX(bm, s[j]);
        }
        VF mn = V_MAX(m, bm);
        VF c = V_SEL(V_LT(m, mn), VNAME(vexp)(V_SUB(m, mn)), V_SET1(1.f)); /* exactly 1 where the max stays */
        m = mn;
        lsum = V_MUL(lsum, c);
        for (int j = 0; j < VATTN_KB; j++) {
            VF p = VNAME(vexp)(V_SUB(s[j], m));
            if (cls == 1) p = V_SEL(V_LT(half, V_LOAD(ok[j])), p, V_SET1(0.f));
            s[j] = p;
            lsum = V_ADD(lsum, p);
        }
        VNAME(atile_accum)(ot, s, vr, D, &c);
    }
    V_STORE(mm, m);
    V_STORE(ll, lsum);
    for (int l = 0; l < nq; l++) {
        float inv = 1.0f / ll[l], *oi = o + (size_t)(i0 + l) * so;
        for (int d = 0; d < D; d++) oi[d] = ot[(size_t)d * VL + l] * inv;
        lse[i0 + l] = mm[l] + logf(ll[l]);
    }
}

/* dK / dV rows of NK (1 or 2) keys: dk[j] = fma(ds[j][l], q_l, dk[j]) and dv[j] = fma(p[j][l], dO_l, dv[j])
 * for the lanes of mask in ascending order; d in chunks of four vectors (full chunks with
 * plain loads, so the 2 x NK x 4 accumulators stay in registers), then the tail vectors. */
#define VATTN_KV(NK)                                                                                            \
    static void VNAME(atile_kv##NK)(float *const dkr[2], float *const dvr[2], const float *const dsr[2],       \
                                    const float *const pr[2], unsigned mask, const float *q, int sq,          \
                                    const float *g, int so, int i0, int D) {                                  \
        int d0 = 0;                                                                                           \
        for (; d0 + 4 * VL <= D; d0 += 4 * VL) {                                                              \
            VF ak[NK][4], av[NK][4];                                                                          \
            _Pragma("GCC unroll 2") for (int j = 0; j < NK; j++)                                              \
                _Pragma("GCC unroll 4") for (int x = 0; x < 4; x++) {                                         \
                    ak[j][x] = V_LOAD(dkr[j] + d0 + x * VL);                                                  \
                    av[j][x] = V_LOAD(dvr[j] + d0 + x * VL);                                                  \
                }                                                                                             \
            for (unsigned b = mask; b; b &= b - 1) {                                                          \
                int l = __builtin_ctz(b);                                                                     \
                const float *ql = q + (size_t)(i0 + l) * sq + d0, *gl = g + (size_t)(i0 + l) * so + d0;       \
                VF qv[4], gv[4];                                                                              \
                _Pragma("GCC unroll 4") for (int x = 0; x < 4; x++) qv[x] = V_LOAD(ql + x * VL),              \
                                                                    gv[x] = V_LOAD(gl + x * VL);              \
                _Pragma("GCC unroll 2") for (int j = 0; j < NK; j++) {                                        \
                    VF ds = V_SET1(dsr[j][l]), pp = V_SET1(pr[j][l]);                                         \
                    _Pragma("GCC unroll 4") for (int x = 0; x < 4; x++) {                                     \
                        ak[j][x] = V_FMA(ds, qv[x], ak[j][x]);                                                \
                        av[j][x] = V_FMA(pp, gv[x], av[j][x]);                                                \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
            _Pragma("GCC unroll 2") for (int j = 0; j < NK; j++)                                              \
                _Pragma("GCC unroll 4") for (int x = 0; x < 4; x++) {                                         \
                    V_STORE(dkr[j] + d0 + x * VL, ak[j][x]);                                                  \
                    V_STORE(dvr[j] + d0 + x * VL, av[j][x]);                                                  \
                }                                                                                             \
        }                                                                                                     \
        for (; d0 < D; d0 += VL) { /* tail: one vector at a time */                                           \
            int r = D - d0;                                                                                   \
            for (int j = 0; j < NK; j++) {                                                                    \
                VF ak = VNAME(ld)(dkr[j] + d0, r, 0.f), av = VNAME(ld)(dvr[j] + d0, r, 0.f);                  \
                for (unsigned b = mask; b; b &= b - 1) {                                                      \
                    int l = __builtin_ctz(b);                                                                 \
                    ak = V_FMA(V_SET1(dsr[j][l]), VNAME(ld)(q + (size_t)(i0 + l) * sq + d0, r, 0.f), ak);     \
                    av = V_FMA(V_SET1(pr[j][l]), VNAME(ld)(g + (size_t)(i0 + l) * so + d0, r, 0.f), av);      \
                }                                                                                             \
                VNAME(st)(dkr[j] + d0, ak, r);                                                                \
                VNAME(st)(dvr[j] + d0, av, r);                                                                \
            }                                                                                                 \
        }                                                                                                     \
    }
VATTN_KV(1)
VATTN_KV(2)

static void VNAME(attn_bwd_tile)(float *dq, float *dk, float *dv, const float *dout, const float *o, const float *lse,
                                 const float *q, const float *k, const float *v, int i0, int nq, int D, int sq, int skv,
                                 int so, const int32_t *start, const int32_t *pfx_start, const int32_t *pfx_end,
                                 float scale) {
    VNAME(atile) t;
    VNAME(atile_init)(&t, i0, nq, start, pfx_start, pfx_end);
    float qt[(size_t)D * VL], gt[(size_t)D * VL], dqt[(size_t)D * VL];
    float ok[VATTN_KB][VL], pT[VATTN_KB][VL], dsT[VATTN_KB][VL], di[VL], ls[VL];
    unsigned okm[VATTN_KB];
    VNAME(atile_pack)(qt, q, i0, nq, D, sq);
    VNAME(atile_pack)(gt, dout, i0, nq, D, so);
    memset(dqt, 0, sizeof dqt);
    for (int l = 0; l < VL; l++) {
        di[l] = l < nq ? VNAME(dot_f32)(dout + (size_t)(i0 + l) * so, o + (size_t)(i0 + l) * so, D) : 0.f;
        ls[l] = l < nq ? lse[i0 + l] : 0.f;
    }
    VF vdi = V_LOAD(di), vl = V_LOAD(ls), vs = V_SET1(scale), half = V_SET1(0.5f);
    for (int jb = t.jlo / VATTN_KB * VATTN_KB; jb < t.jhi; jb += VATTN_KB) {
        int cls = VNAME(atile_block)(&t, jb, ok, okm);
        if (!cls) continue;
        const float *kr[VATTN_KB], *vr[VATTN_KB];
        VNAME(atile_rows)(kr, vr, &t, jb, k, v, skv);
        VF s[VATTN_KB], dp[VATTN_KB];
        VNAME(atile_scores)(s, qt, kr, D);
        VNAME(atile_scores)(dp, gt, vr, D);
        for (int j = 0; j < VATTN_KB; j++) {
            VF p = VNAME(vexp)(V_SUB(V_MUL(s[j], vs), vl));
            if (cls == 1) p = V_SEL(V_LT(half, V_LOAD(ok[j])), p, V_SET1(0.f));
            VF ds = V_MUL(V_MUL(p, V_SUB(dp[j], vdi)), vs);
            V_STORE(pT[j], p);
            V_STORE(dsT[j], ds);
            s[j] = ds;
        }
        VNAME(atile_accum)(dqt, s, kr, D, NULL);
        int nk = t.jhi - jb < VATTN_KB ? t.jhi - jb : VATTN_KB;
        for (int j = 0; j < nk;) {
            unsigned mj = okm[j];
            float *dkr[2] = {dk + (size_t)(jb + j) * skv, dk + (size_t)(jb + j + 1) * skv};
            float *dvr[2] = {dv + (size_t)(jb + j) * skv, dv + (size_t)(jb + j + 1) * skv};
            const float *dsr[2] = {dsT[j], dsT[j + 1 < VATTN_KB ? j + 1 : j]};
            const float *pr[2] = {pT[j], pT[j + 1 < VATTN_KB ? j + 1 : j]};
            if (j + 1 < nk && mj && mj == okm[j + 1]) { /* two keys, one pass over the lanes */
                VNAME(atile_kv2)(dkr, dvr, dsr, pr, mj, q, sq, dout, so, i0, D);
                j += 2;
                continue;
            }
            if (mj) VNAME(atile_kv1)(dkr, dvr, dsr, pr, mj, q, sq, dout, so, i0, D);
            j++;
        }
    }
    for (int l = 0; l < nq; l++) {
        float *dqi = dq + (size_t)(i0 + l) * sq;
        for (int d = 0; d < D; d++) dqi[d] = dqt[(size_t)d * VL + l];
    }
}

static void VNAME(attn_fwd)(float *o, float *lse, const float *q, const float *k, const float *v, int q0,
                            int q1, int D, int sq, int skv, int so, const int32_t *start,
                            const int32_t *pfx_start, const int32_t *pfx_end, float scale) {
    assert(D <= VATTN_MAX_D); /* the scalar reference's limit too */
    if (q1 - q0 == 1) { /* one query (decoding): the per-query kernels, no lanes left idle */
        int i = q0, r0[2] = {pfx_start[i], start[i]}, r1[2] = {pfx_end[i], i + 1};
        const float *qi = q + (size_t)i * sq;
        float *oi = o + (size_t)i * so;
        if (D == 64) VNAME(attn_fwd_d64)(oi, lse + i, qi, k, v, skv, 2, r0, r1, scale);
        else if (D == 128) VNAME(attn_fwd_d128)(oi, lse + i, qi, k, v, skv, 2, r0, r1, scale);
        else VNAME(attn_fwd_one)(oi, lse + i, qi, k, v, D, skv, r0, r1, scale);
        return;
    }
    for (int i0 = q0; i0 < q1; i0 += VL)
        VNAME(attn_fwd_tile)(o, lse, q, k, v, i0, q1 - i0 < VL ? q1 - i0 : VL, D, sq, skv, so, start, pfx_start,
                             pfx_end, scale);
}

static void VNAME(attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *o,
                            const float *lse, const float *q, const float *k, const float *v, int q0,
                            int q1, int D, int sq, int skv, int so, const int32_t *start,
                            const int32_t *pfx_start, const int32_t *pfx_end, float scale) {
    assert(D <= VATTN_MAX_D);
    for (int i0 = q0; i0 < q1; i0 += VL)
        VNAME(attn_bwd_tile)(dq, dk, dv, dout, o, lse, q, k, v, i0, q1 - i0 < VL ? q1 - i0 : VL, D, sq, skv, so, start,
                             pfx_start, pfx_end, scale);
}


/* ---- AdamW: the scalar operation order exactly ---- */

static void VNAME(adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
                         float eps, float wd, float bc1, float bc2, float gscale) {
    float step = lr / bc1, bc2s = sqrtf(bc2), decay = 1.0f - lr * wd;
    const VF vs = V_SET1(step), vbs = V_SET1(bc2s), vd = V_SET1(decay), ve = V_SET1(eps), vb2 = V_SET1(b2),
             vgs = V_SET1(gscale), c1 = V_SET1(1.0f - b1), c2 = V_SET1(1.0f - b2);
    for (size_t i = 0; i < n; i += VL) {
        int r = n - i > (size_t)VL ? VL : (int)(n - i);
        VF gi = V_MUL(VNAME(ld)(g + i, r, 0.f), vgs);
        VF pv = V_MUL(VNAME(ld)(p + i, r, 0.f), vd);
        VF mv = VNAME(ld)(m + i, r, 0.f), vv = VNAME(ld)(v + i, r, 0.f);
        mv = V_ADD(mv, V_MUL(c1, V_SUB(gi, mv)));
        vv = V_ADD(V_MUL(vv, vb2), V_MUL(V_MUL(c2, gi), gi));
        VF denom = V_ADD(V_DIV(V_SQRT(vv), vbs), ve);
        pv = V_SUB(pv, V_DIV(V_MUL(vs, mv), denom));
        VNAME(st)(p + i, pv, r);
        VNAME(st)(m + i, mv, r);
        VNAME(st)(v + i, vv, r);
    }
}

/* Sets every table entry this header implements. */
static void VNAME(fill_vec)(hone_kernels *t) {
    t->dot_f32 = VNAME(dot_f32);
    t->dot_bf16_f32 = VNAME(dot_bf16_f32);
    t->dot_rows_f32 = VNAME(dot_rows_f32);
    t->dot_panel16_bf16_f32 = VNAME(dot_panel16_bf16_f32);
    t->dot_panel16_f32 = VNAME(dot_panel16_f32);
    t->dot_panel16x4_f32 = VNAME(dot_panel16x4_f32);
    t->dot_panel16x4_bf16_f32 = VNAME(dot_panel16x4_bf16_f32);
    t->axpy_f32 = VNAME(axpy_f32);
    t->scale_f32 = VNAME(scale_f32);
    t->rmsnorm_fwd = VNAME(rmsnorm_fwd);
    t->rmsnorm_bwd = VNAME(rmsnorm_bwd);
    t->rope = VNAME(rope);
    t->glu_fwd = VNAME(glu_fwd);
    t->glu_bwd = VNAME(glu_bwd);
    t->ce_fwd = VNAME(ce_fwd);
    t->ce_bwd = VNAME(ce_bwd);
    t->attn_fwd = VNAME(attn_fwd);
    t->attn_bwd = VNAME(attn_bwd);
    t->adamw = VNAME(adamw);
}
