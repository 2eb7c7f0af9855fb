/* kernels_vec.h — the vector kernels written once against a small vector
 * vocabulary (VF, V_LOAD, V_FMA, ...) that each ISA file defines before
 * including this header (kernels_avx2.c: 8 lanes, kernels_avx512.c: 16 lanes
 * with masked tails, kernels_neon.c: 4 lanes). The intrinsics stay in the ISA
 * files; this file holds only the algorithms. Every function is static and
 * named with VNAME() so each ISA gets its own copy, compiled with its flags.
 *
 * Required by the includer:
 *   VF (vector of VL floats), VM (lane mask), VNAME(x) (name suffix)
 *   V_LOAD(p) V_STORE(p,v) V_LOADN(p,n,fill) V_STOREN(p,v,n)  (n < VL lanes)
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

static float VNAME(dot_f32)(const float *a, const float *b, int n) {
    VF s0 = V_SET1(0.f), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
        s0 = V_FMA(V_LOAD(a + i), V_LOAD(b + i), s0);
        s1 = V_FMA(V_LOAD(a + i + VL), V_LOAD(b + i + VL), s1);
        s2 = V_FMA(V_LOAD(a + i + 2 * VL), V_LOAD(b + i + 2 * VL), s2);
        s3 = V_FMA(V_LOAD(a + i + 3 * VL), V_LOAD(b + i + 3 * VL), s3);
    }
    for (; i < n; i += VL) s0 = V_FMA(VNAME(ld)(a + i, n - i, 0.f), VNAME(ld)(b + i, n - i, 0.f), s0);
    return V_HSUM(V_ADD(V_ADD(s0, s1), V_ADD(s2, s3)));
}

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

static void VNAME(attn_fwd)(float *o, float *lse, const float *q, const float *k, const float *v, int q0,
                            int q1, int D, int sq, int skv, int so, const int32_t *start,
                            const int32_t *pfx_start, const int32_t *pfx_end, float scale) {
    float acc[VATTN_MAX_D], s[VATTN_BK];
    for (int i = q0; i < q1; i++) {
        const float *qi = q + (size_t)i * sq;
        float m = -INFINITY, l = 0.f;
        memset(acc, 0, sizeof(float) * D);
        for (int pass = 0; pass < 2; pass++) {
            int j0 = pass ? start[i] : pfx_start[i], j1 = pass ? i + 1 : pfx_end[i];
            for (int jb = j0; jb < j1; jb += VATTN_BK) {
                int nb = j1 - jb < VATTN_BK ? j1 - jb : VATTN_BK;
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
        }
        float *oi = o + (size_t)i * so;
        float inv = 1.0f / l;
        for (int d = 0; d < D; d += VL) VNAME(st)(oi + d, V_MUL(VNAME(ld)(acc + d, D - d, 0.f), V_SET1(inv)), D - d);
        lse[i] = m + logf(l);
    }
}

static void VNAME(attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *o,
                            const float *lse, const float *q, const float *k, const float *v, int q0,
                            int q1, int D, int sq, int skv, int so, const int32_t *start,
                            const int32_t *pfx_start, const int32_t *pfx_end, float scale) {
    float p[VATTN_BK], dp[VATTN_BK];
    for (int i = q0; i < q1; i++) {
        const float *qi = q + (size_t)i * sq, *doi = dout + (size_t)i * so, *oi = o + (size_t)i * so;
        float *dqi = dq + (size_t)i * sq;
        float Di = VNAME(dot_f32)(doi, oi, D);
        memset(dqi, 0, sizeof(float) * D);
        for (int pass = 0; pass < 2; pass++) {
            int j0 = pass ? start[i] : pfx_start[i], j1 = pass ? i + 1 : pfx_end[i];
            for (int jb = j0; jb < j1; jb += VATTN_BK) {
                int nb = j1 - jb < VATTN_BK ? j1 - jb : VATTN_BK;
                for (int j = 0; j < nb; j++) {
                    p[j] = VNAME(dot_f32)(qi, k + (size_t)(jb + j) * skv, D) * scale;
                    dp[j] = VNAME(dot_f32)(doi, v + (size_t)(jb + j) * skv, D);
                }
                VNAME(exp_block)(p, nb, lse[i]);
                for (int j = 0; j < nb; j++) {
                    size_t off = (size_t)(jb + j) * skv;
                    float ds = p[j] * (dp[j] - Di) * scale;
                    VNAME(fmav)(dqi, ds, k + off, D);
                    VNAME(fmav)(dk + off, ds, qi, D);
                    VNAME(fmav)(dv + off, p[j], doi, D);
                }
            }
        }
    }
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
