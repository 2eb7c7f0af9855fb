/* test_kernels_vec.c — checkasm-style tests of the vector kernels: every
 * entry of every ISA this CPU runs against the scalar reference, on odd sizes
 * (tails of every length), pointers offset by one float (unaligned), with
 * guard values after each output to catch stray writes.
 *
 * Tolerances (u = 2^-24, the fp32 unit roundoff):
 *  - exact (bitwise): axpy, scale, RoPE, AdamW, RMSNorm's dw and (given the
 *    row's scalar) its per-element pass, all conversions, the bf16 panel dot
 *    (fused multiply-adds in the reference's order), and dot_bf16_f32 / dot_rows_f32
 *    against the same ISA's dot_f32: the ISA code performs
 *    the reference's operations in the same order.
 *  - reductions (dot, sum of squares, softmax sums) are reassociated across
 *    lanes; both orders err by at most n*u*sum|terms| (the gamma_n bound), so
 *    they may differ by 2*n*u*sum|terms|.
 *  - exp/tanh are polynomials: exp within 2 ulp of the double-precision value
 *    (tested directly through ce_bwd with lse=0, coef=1), the activations within
 *    a few ulp of the scalar plus the absolute error 1 ulp of tanh near +-1
 *    makes in 0.5*g*(1+t). */
#include "simd/kernels.h"
#include "test.h"
#include <stdint.h>

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd64(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((rnd64() >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f; }
static void fill(float *x, size_t n, float scale) { for (size_t i = 0; i < n; i++) x[i] = frand() * scale; }

/* The ISA under test: main() runs every case once per ISA of this
 * architecture; where the CPU lacks it the case reports SKIP. */
static hone_kernels cur;
static const char *cur_isa;
#define FOR_EACH_ISA(t) \
    t = cur;            \
    if (1)
static void skip_isa(void) { test_skip("%s not supported by this CPU/OS/build", cur_isa); }

static const int sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000, 1537};
#define NSIZES ((int)(sizeof sizes / sizeof *sizes))
#define GUARD 1234.5f

static float *buf(size_t n) { /* n floats at an odd offset, plus a guard after */
    float *p = malloc(sizeof(float) * (n + 2));
    p[n + 1] = GUARD;
    return p + 1;
}
static void unbuf(float *p) { free(p - 1); }
static int same_bits(const float *a, const float *b, size_t n) { return !memcmp(a, b, sizeof(float) * n); }

static hone_kernels ref;

static void test_dot_axpy_scale(void) {
    hone_kernels t;
    FOR_EACH_ISA(t) {
        for (int s = 0; s < NSIZES; s++) {
            int n = sizes[s];
            float *a = buf(n), *b = buf(n), *y0 = buf(n), *y1 = buf(n);
            fill(a, n, 1); fill(b, n, 1); fill(y0, n, 1);
            memcpy(y1, y0, sizeof(float) * n);
            double sabs = 0;
            for (int i = 0; i < n; i++) sabs += fabs(a[i] * b[i]);
            CHECK_CLOSE(t.dot_f32(a, b, n), ref.dot_f32(a, b, n), 0, 2 * n * 6e-8 * sabs, t.isa);
            /* bf16 weights (odd offset: unaligned): bitwise this ISA's dot_f32 of the widened values */
            uint16_t *h = (uint16_t *)malloc(sizeof(uint16_t) * (n + 1)) + 1;
            ref.f32_to_bf16(h, a, n);
            ref.bf16_to_f32(y0, h, n);
            float dh = t.dot_bf16_f32(h, b, n), dw = t.dot_f32(y0, b, n);
            CHECK(memcmp(&dh, &dw, 4) == 0, "%s dot_bf16_f32 n=%d: %.9g, dot_f32 of the widened values %.9g", t.isa, n, dh, dw);
            CHECK_CLOSE(dh, ref.dot_bf16_f32(h, b, n), 0, 2 * n * 6e-8 * sabs + 1e-30, t.isa);
            /* row kernels: 3 rows of stride n + 1, each bitwise the single dot */
            float *A = buf(3 * (n + 1)), rows_out[4] = {0, 0, 0, GUARD};
            uint16_t *Ah = malloc(sizeof(uint16_t) * 3 * (n + 1));
            fill(A, 3 * (n + 1), 1);
            ref.f32_to_bf16(Ah, A, 3 * (n + 1));
            t.dot_rows_f32(rows_out, A, n + 1, b, 3, n);
            for (int r = 0; r < 3; r++) {
                float d1 = t.dot_f32(A + r * (n + 1), b, n);
                CHECK(!memcmp(&d1, &rows_out[r], 4) && rows_out[3] == GUARD, "%s dot_rows_f32 n=%d row %d", t.isa, n, r);
            }
            /* a 16-row bf16 panel: bitwise the scalar reference (fused multiply-adds in
             * the same order), and within the dot bound of the plain products */
            uint16_t *P = (uint16_t *)malloc(sizeof(uint16_t) * (16 * (size_t)n + 1)) + 1; /* unaligned */
            float p0[17], p1[17];
            p1[16] = GUARD;
            for (size_t i = 0; i < 16 * (size_t)n; i++) P[i] = Ah[i % (3 * (size_t)(n + 1))] ^ (uint16_t)(i & 0x3);
            ref.dot_panel16_bf16_f32(p0, P, b, n);
            t.dot_panel16_bf16_f32(p1, P, b, n);
            CHECK(same_bits(p0, p1, 16) && p1[16] == GUARD, "%s dot_panel16_bf16_f32 n=%d not bitwise the reference", t.isa, n);
            for (int j = 0; j < 16; j++) {
                double exact = 0, mag = 0;
                for (int k = 0; k < n; k++) {
                    uint32_t u = (uint32_t)P[(size_t)k * 16 + j] << 16;
                    float w;
                    memcpy(&w, &u, 4);
                    exact += (double)w * b[k];
                    mag += fabs((double)w * b[k]);
                }
                CHECK(fabs(p1[j] - exact) <= n * 6e-8 * mag + 1e-30, "%s panel n=%d row %d: %.9g vs %.9g", t.isa, n, j, p1[j], exact);
            }
            /* fp32 panels, and the 4-input forms: each row bitwise the one-input kernel */
            float *Pf = buf(16 * (size_t)n), *X4 = buf(4 * (size_t)(n + 3)), o4[4 * 17], o1[16];
            for (size_t i = 0; i < 16 * (size_t)n; i++) { uint32_t u = (uint32_t)P[i] << 16; memcpy(&Pf[i], &u, 4); }
            fill(X4, 4 * (size_t)(n + 3), 1);
            ref.dot_panel16_f32(p0, Pf, b, n);
            t.dot_panel16_f32(p1, Pf, b, n);
            CHECK(same_bits(p0, p1, 16) && p1[16] == GUARD, "%s dot_panel16_f32 n=%d not bitwise the reference", t.isa, n);
            t.dot_panel16_bf16_f32(o1, P, b, n);
            CHECK(same_bits(o1, p1, 16), "%s panel n=%d: bf16 and its widened fp32 panel differ", t.isa, n);
            for (int w = 0; w < 2; w++) {
                for (int i = 0; i < 4 * 17; i++) o4[i] = GUARD;
                if (w) t.dot_panel16x4_bf16_f32(o4, 17, P, X4, n + 3, n);
                else t.dot_panel16x4_f32(o4, 17, Pf, X4, n + 3, n);
                for (int r = 0; r < 4; r++) {
                    if (w) t.dot_panel16_bf16_f32(o1, P, X4 + (size_t)r * (n + 3), n);
                    else t.dot_panel16_f32(o1, Pf, X4 + (size_t)r * (n + 3), n);
                    CHECK(same_bits(o1, o4 + r * 17, 16) && o4[r * 17 + 16] == GUARD, "%s dot_panel16x4 (%s) n=%d row %d",
                          t.isa, w ? "bf16" : "f32", n, r);
                }
            }
            unbuf(Pf);
            unbuf(X4);
            free(P - 1);
            unbuf(A);
            free(Ah);
            free(h - 1);
            fill(y0, n, 1);
            memcpy(y1, y0, sizeof(float) * n);
            ref.axpy_f32(y0, 0.37f, a, n);
            t.axpy_f32(y1, 0.37f, a, n);
            CHECK(same_bits(y0, y1, n) && y1[n] == GUARD, "%s axpy n=%d not bitwise the reference", t.isa, n);
            ref.scale_f32(y0, -1.7f, n);
            t.scale_f32(y1, -1.7f, n);
            CHECK(same_bits(y0, y1, n) && y1[n] == GUARD, "%s scale n=%d not bitwise the reference", t.isa, n);
            unbuf(a); unbuf(b); unbuf(y0); unbuf(y1);
        }
    }
}

static void test_rmsnorm(void) {
    hone_kernels t;
    FOR_EACH_ISA(t) {
        for (int s = 0; s < NSIZES; s++)
            for (int gemma = 0; gemma < 2; gemma++) {
                int n = sizes[s];
                float wo = gemma ? 1.f : 0.f;
                float *x = buf(n), *w = buf(n), *o0 = buf(n), *o1 = buf(n), *d = buf(n);
                float *dx0 = buf(n), *dx1 = buf(n), *dw0 = buf(n), *dw1 = buf(n);
                fill(x, n, 3); fill(w, n, 1); fill(d, n, 1); fill(dx0, n, 1); fill(dw0, n, 1);
                memcpy(dx1, dx0, sizeof(float) * n); memcpy(dw1, dw0, sizeof(float) * n);
                float r0 = ref.rmsnorm_fwd(o0, x, w, wo, 1e-5f, n), r1 = t.rmsnorm_fwd(o1, x, w, wo, 1e-5f, n);
                double tol = 2 * n * 6e-8 + 4e-7; /* sum of squares (positive terms) + sqrt/div */
                CHECK_CLOSE(r1, r0, tol, 0, t.isa);
                for (int i = 0; i < n; i++) CHECK_CLOSE(o1[i], o0[i], tol + 3e-7, 1e-30, t.isa);
                CHECK(o1[n] == GUARD, "%s rmsnorm_fwd wrote past n", t.isa);
                ref.rmsnorm_bwd(dx0, dw0, d, x, w, wo, r0, n);
                t.rmsnorm_bwd(dx1, dw1, d, x, w, wo, r0, n);
                CHECK(same_bits(dw0, dw1, n) && dw1[n] == GUARD, "%s rmsnorm_bwd dw not bitwise", t.isa);
                double S = 0; /* |error of the dot| <= 2 n u S, times rstd^3/n |x_i| */
                for (int i = 0; i < n; i++) S += fabs(d[i] * (wo + w[i]) * x[i]);
                for (int i = 0; i < n; i++)
                    CHECK_CLOSE(dx1[i], dx0[i], 1e-6,
                                2 * n * 6e-8 * S * r0 * r0 * r0 / n * fabs(x[i]) + 1e-7, t.isa);
                unbuf(x); unbuf(w); unbuf(o0); unbuf(o1); unbuf(d);
                unbuf(dx0); unbuf(dx1); unbuf(dw0); unbuf(dw1);
            }
    }
}

static void test_rope(void) {
    hone_kernels t;
    int Ds[] = {2, 6, 16, 30, 64, 96, 128};
    FOR_EACH_ISA(t) {
        for (int di = 0; di < 7; di++) {
            int D = Ds[di], nh = 3, n = nh * D;
            float *x0 = buf(n), *x1 = buf(n), *c = buf(D / 2), *sn = buf(D / 2);
            fill(x0, n, 2); fill(c, D / 2, 1); fill(sn, D / 2, 1);
            memcpy(x1, x0, sizeof(float) * n);
            for (int sign = -1; sign <= 1; sign += 2) {
                ref.rope(x0, c, sn, nh, D, (float)sign);
                t.rope(x1, c, sn, nh, D, (float)sign);
                CHECK(same_bits(x0, x1, n) && x1[n] == GUARD, "%s rope D=%d sign %d not bitwise", t.isa, D, sign);
            }
            unbuf(x0); unbuf(x1); unbuf(c); unbuf(sn);
        }
    }
}

static void test_glu(void) {
    hone_kernels t;
    const float special[] = {0.f, -0.f, 1e-5f, -1e-5f, 3e-4f, 0.5f, -0.5f, 3.f, -3.f, 7.9f, -7.9f, 9.f, -9.f,
                             20.f, -20.f, 60.f, -60.f, 87.f, -87.f, 100.f, -100.f};
    int nsp = sizeof special / sizeof *special;
    FOR_EACH_ISA(t) {
        for (int act = 0; act < 2; act++) {
            int n = 4099;
            float *g = buf(n), *u = buf(n), *dh = buf(n), *h0 = buf(n), *h1 = buf(n);
            float *dg0 = buf(n), *dg1 = buf(n), *du0 = buf(n), *du1 = buf(n);
            fill(g, n, 8); fill(u, n, 1); fill(dh, n, 1);
            for (int i = 0; i < nsp; i++) g[i] = special[i];
            ref.glu_fwd(h0, g, u, n, act);
            t.glu_fwd(h1, g, u, n, act);
            ref.glu_bwd(dg0, du0, dh, g, u, n, act);
            t.glu_bwd(dg1, du1, dh, g, u, n, act);
            CHECK(h1[n] == GUARD && dg1[n] == GUARD && du1[n] == GUARD, "%s glu wrote past n", t.isa);
            /* act(g) = g*s or 0.5 g (1+t): a few ulp, plus 1 ulp of tanh (6e-8)
             * times 0.5|g| where 1+t cancels; derivative terms likewise. silu' =
             * s (1 + g (1 - s)) cancels near g = -1.28: a few ulp of its terms,
             * at most (1 + |g|), absolutely. */
            int bad = 0;
            for (int i = 0; i < n && bad < 5; i++) {
                double ag = fabs(g[i]), au = fabs(u[i]), ad = fabs(dh[i]);
                double th = act ? 6e-8 * 0.5 * ag * (1 + 0.8 * (1 + 0.134 * ag * ag) * ag) : 0;
                double tol_h = 1e-6 * fabs(h0[i]) + (th + 1e-38) * au;
                double tol_u = 1e-6 * fabs(du0[i]) + (th + 1e-38) * ad;
                double tol_g = 2e-6 * fabs(dg0[i]) + (act ? 4 * th + 6e-8 : 2.4e-7 * (1 + ag)) * au * ad;
                if (!(fabs(h1[i] - h0[i]) <= tol_h) || !(fabs(du1[i] - du0[i]) <= tol_u) ||
                    !(fabs(dg1[i] - dg0[i]) <= tol_g)) {
                    CHECK(0, "%s glu act %d g=%.9g: h %.9g/%.9g dup %.9g/%.9g dgate %.9g/%.9g", t.isa, act, g[i],
                          h1[i], h0[i], du1[i], du0[i], dg1[i], dg0[i]);
                    bad++;
                }
            }
            unbuf(g); unbuf(u); unbuf(dh); unbuf(h0); unbuf(h1);
            unbuf(dg0); unbuf(dg1); unbuf(du0); unbuf(du1);
        }
    }
}

/* ce_bwd with lse=0, coef=1, no label is exp(x): its ulp error vs double exp. */
static void test_exp_accuracy(void) {
    hone_kernels t;
    int n = 200003;
    float *x = buf(n), *y = buf(n);
    for (int i = 0; i < n; i++) x[i] = -87.0f + 175.3f * i / (n - 1); /* [-87, 88.3] */
    FOR_EACH_ISA(t) {
        t.ce_bwd(y, x, n, 0.f, -1, 1.f);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double e = exp((double)x[i]), ulp = ldexp(1.0, ilogb(e) - 23);
            double err = fabs(y[i] - e) / ulp;
            if (err > worst) worst = err;
        }
        CHECK(worst <= 2.0, "%s exp: %.2f ulp (want <= 2)", t.isa, worst);
        printf("    %s vexp max error %.2f ulp over [-87, 88.3]\n", t.isa, worst);
    }
    unbuf(x); unbuf(y);
}

static void test_ce(void) {
    hone_kernels t;
    int ns[] = {1, 5, 16, 17, 100, 1001, 49152, 49157};
    FOR_EACH_ISA(t) {
        for (int si = 0; si < 8; si++) {
            int n = ns[si];
            float *x = buf(n), *d0 = buf(n), *d1 = buf(n), s0[5], s1[5];
            fill(x, n, 12);
            if (n > 10) x[n / 3] = x[n - 2] = 20.f; /* a tied max: first index wins */
            ref.ce_fwd(x, n, s0);
            t.ce_fwd(x, n, s1);
            double sabs = 0;
            for (int i = 0; i < n; i++) sabs += fabs(x[i]);
            CHECK(s1[0] == s0[0] && s1[3] == s0[3], "%s ce_fwd n=%d max/argmax %g/%g vs %g/%g", t.isa, n, s1[0],
                  s1[3], s0[0], s0[3]);
            CHECK_CLOSE(s1[1], s0[1], 2e-6, 2e-6, t.isa);                 /* lse: sum of positive terms */
            CHECK_CLOSE(s1[2], s0[2], 1e-5, 2 * n * 6e-8 * 20 + 1e-5, t.isa); /* sum p x / sum p */
            CHECK_CLOSE(s1[4], s0[4], 0, 2 * n * 6e-8 * sabs, t.isa);         /* sum x */
            int label = n / 2;
            ref.ce_bwd(d0, x, n, s0[1], label, 0.25f);
            t.ce_bwd(d1, x, n, s0[1], label, 0.25f);
            CHECK(d1[n] == GUARD, "%s ce_bwd wrote past n", t.isa);
            for (int i = 0; i < n; i++) CHECK_CLOSE(d1[i], d0[i], 3e-7, 1e-9, t.isa); /* 2 ulp of exp */
            unbuf(x); unbuf(d0); unbuf(d1);
        }
    }
}

/* Packed rows: a 10-token prompt, then two completions sharing it through the
 * prefix range (the second completion's own document starts after the first),
 * then an unrelated document. */
static void test_attention(void) {
    hone_kernels t;
    int T = 61, Ds[] = {64, 17, 8, 128};
    int32_t start[61], ps[61], pe[61];
    for (int i = 0; i < T; i++) {
        if (i < 10) start[i] = 0, ps[i] = pe[i] = 0;
        else if (i < 30) start[i] = 0, ps[i] = pe[i] = 0;    /* prompt + completion 1: one document */
        else if (i < 48) start[i] = 30, ps[i] = 0, pe[i] = 10; /* completion 2 sees the prompt */
        else start[i] = 48, ps[i] = pe[i] = 0;
    }
    FOR_EACH_ISA(t) {
        for (int di = 0; di < 4; di++) {
            int D = Ds[di], st = D + 3; /* row stride larger than D */
            size_t n = (size_t)T * st;
            float *q = buf(n), *k = buf(n), *v = buf(n), *dout = buf(n), *o0 = buf(n), *o1 = buf(n);
            float *l0 = buf(T), *l1 = buf(T), *dq0 = buf(n), *dq1 = buf(n), *dk0 = buf(n), *dk1 = buf(n);
            float *dv0 = buf(n), *dv1 = buf(n);
            fill(q, n, 1); fill(k, n, 1); fill(v, n, 1); fill(dout, n, 1);
            fill(dk0, n, 1); fill(dv0, n, 1);
            memcpy(dk1, dk0, sizeof(float) * n); memcpy(dv1, dv0, sizeof(float) * n);
            memcpy(o1, o0, sizeof(float) * n); memcpy(dq1, dq0, sizeof(float) * n);
            float scale = 1.0f / sqrtf((float)D) * 3.f; /* peaky softmax */
            ref.attn_fwd(o0, l0, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            t.attn_fwd(o1, l1, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            /* o is a convex combination of v rows (|v| <= 1): reassociated
             * dot products and softmax sums, errors ~ D u and T u. */
            int bad = 0;
            for (int i = 0; i < T; i++) {
                if (!(fabs(l1[i] - l0[i]) <= 1e-5 + 1e-6 * fabs(l0[i]))) bad++;
                for (int d = 0; d < D; d++)
                    if (!(fabs(o1[i * st + d] - o0[i * st + d]) <= 1e-5)) bad++;
            }
            CHECK(!bad, "%s attn_fwd D=%d: %d values off", t.isa, D, bad);
            ref.attn_bwd(dq0, dk0, dv0, dout, o0, l0, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            t.attn_bwd(dq1, dk1, dv1, dout, o0, l0, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            bad = 0;
            for (int i = 0; i < T; i++)
                for (int d = 0; d < D; d++) {
                    size_t o = (size_t)i * st + d;
                    if (!(fabs(dq1[o] - dq0[o]) <= 1e-5 * (1 + fabs(dq0[o])))) bad++;
                    if (!(fabs(dk1[o] - dk0[o]) <= 1e-5 * (1 + fabs(dk0[o])))) bad++;
                    if (!(fabs(dv1[o] - dv0[o]) <= 1e-5 * (1 + fabs(dv0[o])))) bad++;
                }
            CHECK(!bad, "%s attn_bwd D=%d: %d values off", t.isa, D, bad);
            CHECK(dk1[n] == GUARD && dv1[n] == GUARD && l1[T] == GUARD, "%s attn wrote past its rows", t.isa);
            /* The same call twice: the same bits (the tiled kernels keep a fixed order). */
            memcpy(dk0, dk1, sizeof(float) * n); memcpy(dv0, dv1, sizeof(float) * n);
            memcpy(dq0, dq1, sizeof(float) * n);
            t.attn_bwd(dq1, dk1, dv1, dout, o0, l0, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            t.attn_bwd(dq0, dk0, dv0, dout, o0, l0, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            CHECK(same_bits(dq0, dq1, n) && same_bits(dk0, dk1, n) && same_bits(dv0, dv1, n),
                  "%s attn_bwd D=%d: two equal calls differ", t.isa, D);
            t.attn_fwd(o1, l1, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            memcpy(o0, o1, sizeof(float) * n); memcpy(l0, l1, sizeof(float) * T);
            t.attn_fwd(o1, l1, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            CHECK(same_bits(o0, o1, n) && same_bits(l0, l1, T), "%s attn_fwd D=%d: two equal calls differ", t.isa, D);
            /* Other tilings of the query range (one query: the decoding kernel; ranges
             * starting mid-tile) agree with the scalar reference to the same bounds. */
            ref.attn_fwd(o0, l0, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            bad = 0;
            for (int i = 0; i < T; i++) {
                t.attn_fwd(o1, l1, q, k, v, i, i + 1, D, st, st, st, start, ps, pe, scale);
                if (i % 7 == 3) t.attn_fwd(o1, l1, q, k, v, i, T - (i % 3), D, st, st, st, start, ps, pe, scale);
                if (!(fabs(l1[i] - l0[i]) <= 1e-5 + 1e-6 * fabs(l0[i]))) bad++;
                for (int d = 0; d < D; d++)
                    if (!(fabs(o1[i * st + d] - o0[i * st + d]) <= 1e-5)) bad++;
            }
            CHECK(!bad, "%s attn_fwd D=%d split calls: %d values off", t.isa, D, bad);
            fill(dk0, n, 1); fill(dv0, n, 1);
            memcpy(dk1, dk0, sizeof(float) * n); memcpy(dv1, dv0, sizeof(float) * n);
            ref.attn_bwd(dq0, dk0, dv0, dout, o0, l0, q, k, v, 0, T, D, st, st, st, start, ps, pe, scale);
            for (int i = 0; i < T; i += 5)
                t.attn_bwd(dq1, dk1, dv1, dout, o0, l0, q, k, v, i, i + 5 < T ? i + 5 : T, D, st, st, st, start, ps, pe,
                           scale);
            bad = 0;
            for (size_t o = 0; o < n; o++) {
                if (o % st >= (size_t)D) continue;
                if (!(fabs(dq1[o] - dq0[o]) <= 1e-5 * (1 + fabs(dq0[o])))) bad++;
                if (!(fabs(dk1[o] - dk0[o]) <= 1e-5 * (1 + fabs(dk0[o])))) bad++;
                if (!(fabs(dv1[o] - dv0[o]) <= 1e-5 * (1 + fabs(dv0[o])))) bad++;
            }
            CHECK(!bad, "%s attn_bwd D=%d in calls of 5 queries: %d values off", t.isa, D, bad);
            float *all[] = {q, k, v, dout, o0, o1, l0, l1, dq0, dq1, dk0, dk1, dv0, dv1};
            for (int a = 0; a < 14; a++) unbuf(all[a]);
        }
    }
}

static void test_adamw(void) {
    hone_kernels t;
    FOR_EACH_ISA(t) {
        for (int s = 0; s < NSIZES; s++) {
            int n = sizes[s];
            float *p0 = buf(n), *p1 = buf(n), *g = buf(n), *m0 = buf(n), *m1 = buf(n), *v0 = buf(n), *v1 = buf(n);
            fill(p0, n, 1); fill(g, n, 1); fill(m0, n, 0.1f); fill(v0, n, 0.01f);
            for (int i = 0; i < n; i++) v0[i] = fabsf(v0[i]);
            memcpy(p1, p0, 4 * n); memcpy(m1, m0, 4 * n); memcpy(v1, v0, 4 * n);
            for (int step = 1; step <= 3; step++) {
                float bc1 = 1 - powf(0.9f, step), bc2 = 1 - powf(0.999f, step);
                ref.adamw(p0, g, m0, v0, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, bc1, bc2, 0.5f);
                t.adamw(p1, g, m1, v1, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, bc1, bc2, 0.5f);
            }
            CHECK(same_bits(p0, p1, n) && same_bits(m0, m1, n) && same_bits(v0, v1, n), "%s adamw n=%d not bitwise",
                  t.isa, n);
            CHECK(p1[n] == GUARD && m1[n] == GUARD && v1[n] == GUARD, "%s adamw wrote past n", t.isa);
            float *all[] = {p0, p1, g, m0, m1, v0, v1};
            for (int a = 0; a < 7; a++) unbuf(all[a]);
        }
    }
}

/* Conversions are exact: every 16-bit pattern up, and 2^20 random plus
 * boundary fp32 patterns (ties, overflow, subnormals, NaNs) down. */
static void test_conversions(void) {
    hone_kernels t;
    size_t n16 = 65536 + 3, n32 = (1 << 20) + 64;
    uint16_t *h = malloc(2 * (n16 + 1)), *o0 = malloc(2 * (n32 + 2)), *o1 = malloc(2 * (n32 + 2));
    float *f0 = malloc(4 * (n16 + 2)), *f1 = malloc(4 * (n16 + 2)), *x = malloc(4 * (n32 + 1));
    for (size_t i = 0; i < n16; i++) h[i + 1] = (uint16_t)i;
    uint32_t edge[] = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345,
                       0x7f7fffff, 0x477fe000, 0x477ff000, 0x477fefff, 0x47800000, 0x38800000, 0x387fffff,
                       0x33000000, 0x33000001, 0x32ffffff, 0x00000001, 0x3f808000, 0x3f818000, 0x3f807fff,
                       0x3f800fff, 0x3f801000, 0x3f803000, 0x7f7f8000, 0x33800000, 0x337fffff, 0x387fe000};
    int ne = sizeof edge / sizeof *edge;
    for (size_t i = 0; i < n32; i++) {
        uint32_t u = i < (size_t)ne ? edge[i] : (uint32_t)rnd64();
        if (i >= (size_t)ne && i % 3 == 0) u = (u & 0x8fffffff) | 0x30000000; /* many in the f16 range */
        memcpy(&x[i + 1], &u, 4);
    }
    FOR_EACH_ISA(t) {
        ref.bf16_to_f32(f0 + 1, h + 1, n16);
        f1[n16 + 1] = GUARD;
        t.bf16_to_f32(f1 + 1, h + 1, n16);
        CHECK(!memcmp(f0 + 1, f1 + 1, 4 * n16) && f1[n16 + 1] == GUARD, "%s bf16_to_f32 not exact", t.isa);
        ref.f16_to_f32(f0 + 1, h + 1, n16);
        t.f16_to_f32(f1 + 1, h + 1, n16);
        CHECK(!memcmp(f0 + 1, f1 + 1, 4 * n16) && f1[n16 + 1] == GUARD, "%s f16_to_f32 not exact", t.isa);
        for (int kind = 0; kind < 2; kind++) {
            o1[n32 + 1] = 0xabcd;
            if (kind) ref.f32_to_f16(o0 + 1, x + 1, n32), t.f32_to_f16(o1 + 1, x + 1, n32);
            else ref.f32_to_bf16(o0 + 1, x + 1, n32), t.f32_to_bf16(o1 + 1, x + 1, n32);
            size_t bad = 0, first = 0;
            for (size_t i = 1; i <= n32; i++)
                if (o0[i] != o1[i] && !bad++) first = i;
            uint32_t fu = 0;
            if (bad) memcpy(&fu, &x[first], 4);
            CHECK(!bad && o1[n32 + 1] == 0xabcd, "%s f32_to_%s: %zu differ (first 0x%08x: 0x%04x want 0x%04x)",
                  t.isa, kind ? "f16" : "bf16", bad, fu, bad ? o1[first] : 0, bad ? o0[first] : 0);
        }
    }
    free(h); free(o0); free(o1); free(f0); free(f1); free(x);
}

int main(void) {
    kernels_get("scalar", &ref);
#if defined(__x86_64__)
    const char *isas[] = {"avx2", "avx512"};
#elif defined(__aarch64__)
    const char *isas[] = {"neon"};
#else
    const char *isas[] = {"none"};
#endif
    static const struct { const char *name; void (*fn)(void); } cases[] = {
        {"dot_axpy_scale", test_dot_axpy_scale}, {"rmsnorm", test_rmsnorm},   {"rope", test_rope},
        {"glu", test_glu},                       {"exp_accuracy", test_exp_accuracy}, {"ce", test_ce},
        {"attention", test_attention},           {"adamw", test_adamw},       {"conversions", test_conversions}};
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        cur_isa = isas[i];
        int ok = kernels_get(cur_isa, &cur) == 0;
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            char name[64];
            snprintf(name, sizeof name, "%s %s", cur_isa, cases[c].name);
            test_run(name, ok ? cases[c].fn : skip_isa);
        }
    }
    return test_finish();
}
