/* model/layers.c — CPU forward/backward of every layer (layers.h). */
#include "model/layers.h"
#include "simd/kernels.h"
#include "simd/quant.h"
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Reductions over rows use RED_CHUNKS fixed row ranges whose partial sums are
 * added in chunk order: the partition depends on N only, never on threads. */
#define RED_CHUNKS 16
#define COL_BLOCK 64
#define ELT_BLOCK 4096

size_t layers_reduce_floats(int C) { return (size_t)RED_CHUNKS * C; }

/* db (OC) += column sums of dout (N, OC): each column block is owned by one
 * thread and summed over rows in order. */
static void colsum_accumulate(float *db, const float *dout, int N, int OC) {
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < OC; j0 += COL_BLOCK) {
        int j1 = j0 + COL_BLOCK < OC ? j0 + COL_BLOCK : OC;
        float acc[COL_BLOCK];
        for (int j = j0; j < j1; j++) acc[j - j0] = 0.f;
        for (int i = 0; i < N; i++) {
            const float *r = dout + (size_t)i * OC;
            for (int j = j0; j < j1; j++) acc[j - j0] += r[j];
        }
        for (int j = j0; j < j1; j++) db[j] += acc[j - j0];
    }
}

static void add_bias(float *out, const float *b, int N, int OC) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *o = out + (size_t)i * OC;
        for (int j = 0; j < OC; j++) o[j] += b[j];
    }
}

void matmul_forward(float *out, const float *in, const float *W, const float *b, int N, int IC, int OC) {
    hone_kt.gemm_f32(0, 1, N, OC, IC, in, IC, W, IC, 0.f, out, OC);
    if (b) add_bias(out, b, N, OC);
}

void qmatmul_forward(float *out, const float *in, const struct hone_qtensor *W, const float *b, int N, int IC, int OC) {
    qgemm_xwt(N, in, IC, W, 0.f, out, OC);
    if (b) add_bias(out, b, N, OC);
}

void qmatmul_backward(float *din, const float *dout, const struct hone_qtensor *W, int N, int IC, int OC, int accumulate) {
    if (din) qgemm_xw(N, dout, OC, W, accumulate ? 1.f : 0.f, din, IC);
}

/* x rounded to bf16 (nearest even), in fp32: as kernels.h's round_bf16 */
static inline float bf16_round1(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffff) > 0x7f800000) u |= 0x400000;
    else u += 0x7fff + ((u >> 16) & 1);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* autocast's linear output: out += bf16(b), then out = bf16(out) */
static void bf16_output(float *out, const float *b, int N, int OC) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *o = out + (size_t)i * OC;
        if (b)
            for (int j = 0; j < OC; j++) o[j] += bf16_round1(b[j]);
        hone_kt.round_bf16(o, (size_t)OC);
    }
}

void matmul_forward_bf16(float *out, const float *in, const float *W, const float *b, int N, int IC, int OC) {
    hone_kt.gemm_bf16(0, 1, N, OC, IC, in, IC, W, IC, 0.f, out, OC);
    bf16_output(out, b, N, OC);
}

void qmatmul_forward_bf16(float *out, const float *in, const struct hone_qtensor *W, const float *b, int N, int IC, int OC) {
    qgemm_xwt_bf16(N, in, IC, W, 0.f, out, OC);
    bf16_output(out, b, N, OC);
}

void qmatmul_backward_bf16(float *din, const float *dout, const struct hone_qtensor *W, int N, int IC, int OC, int accumulate) {
    if (din) qgemm_xw_bf16(N, dout, OC, W, accumulate ? 1.f : 0.f, din, IC);
}

void matmul_backward_bf16(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N,
                          int IC, int OC, int accumulate) {
    if (din) hone_kt.gemm_bf16(0, 0, N, IC, OC, dout, OC, W, IC, accumulate ? 1.f : 0.f, din, IC);
    if (dW) hone_kt.gemm_bf16(1, 0, OC, IC, N, dout, OC, in, IC, 1.f, dW, IC);
    if (db) colsum_accumulate(db, dout, N, OC);
}

void matmul_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N, int IC,
                     int OC, int accumulate) {
    if (din) hone_kt.gemm_f32(0, 0, N, IC, OC, dout, OC, W, IC, accumulate ? 1.f : 0.f, din, IC);
    if (dW) hone_kt.gemm_f32(1, 0, OC, IC, N, dout, OC, in, IC, 1.f, dW, IC);
    if (db) colsum_accumulate(db, dout, N, OC);
}

/* keep/drop of element i under seed: a counter-based hash (kernels.h dropout_f32), so the
 * mask depends on (seed, i) only, never on threads or visiting order */
void lora_dropout(float *y, const float *x, size_t n, float p, uint64_t seed) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += ELT_BLOCK)
        hone_kt.dropout_f32(y + i, x + i, i, n - i < ELT_BLOCK ? n - i : ELT_BLOCK, p, seed, 0);
}

/* gemm_f32 on one slab of C per thread: C's rows (or its columns when it has few rows) cut on
 * multiples of 32. LoRA's rank-r products (tens of MFLOP) fall under gemm_f32's own threading
 * bound and would otherwise leave the other threads idle (about 1,700 of them per SmolLM2 step).
 * Every element is the sum gemm_f32 forms for the whole product: its order depends on K only,
 * and a slab of a product with more than 2 rows keeps more than 2 rows (the packed path), so the
 * result is bitwise the single call's at any thread count. */
static void gemm_slabs(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc) {
    int nth = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && 2.0 * M * N * K >= 2e6) nth = omp_get_max_threads();
#endif
    int split_m = M >= 64 * nth, len = split_m ? M : N;
    if (nth <= 1 || (!split_m && N < 64 * nth)) {
        hone_kt.gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel num_threads(nth)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), n = omp_get_num_threads();
#else
        int t = 0, n = 1;
#endif
        int lo = (int)((long)len * t / n) / 32 * 32, hi = t == n - 1 ? len : (int)((long)len * (t + 1) / n) / 32 * 32;
        if (hi > lo) {
            if (split_m)
                hone_kt.gemm_f32(ta, tb, hi - lo, N, K, ta ? A + lo : A + (size_t)lo * lda, lda, B, ldb, beta,
                                 C + (size_t)lo * ldc, ldc);
            else
                hone_kt.gemm_f32(ta, tb, M, hi - lo, K, A, lda, tb ? B + (size_t)lo * ldb : B + lo, ldb, beta, C + lo, ldc);
        }
    }
}

void lora_forward(float *out, float *su, const float *xd, const float *A, const float *B, float scale, int N, int IC, int OC,
                  int r) {
    gemm_slabs(0, 1, N, r, IC, xd, IC, A, IC, 0.f, su, r);
    size_t n = (size_t)N * r;
    for (size_t i = 0; i < n; i++) su[i] *= scale;
    gemm_slabs(0, 1, N, OC, r, su, r, B, r, 1.f, out, OC);
}

void lora_backward(float *din, float *dA, float *dB, float *du, float *dxd, const float *dout, const float *xd, const float *su,
                   const float *A, const float *B, float scale, int N, int IC, int OC, int r, float p, uint64_t seed) {
    gemm_slabs(1, 0, OC, r, N, dout, OC, su, r, 1.f, dB, r);
    gemm_slabs(0, 0, N, r, OC, dout, OC, B, r, 0.f, du, r);
    size_t n = (size_t)N * r;
    for (size_t i = 0; i < n; i++) du[i] *= scale;
    gemm_slabs(1, 0, r, IC, N, du, r, xd, IC, 1.f, dA, IC);
    if (!din) return;
    if (p <= 0.f) {
        gemm_slabs(0, 0, N, IC, r, du, r, A, IC, 1.f, din, IC);
        return;
    }
    gemm_slabs(0, 0, N, IC, r, du, r, A, IC, 0.f, dxd, IC);
    size_t m = (size_t)N * IC;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < m; i += ELT_BLOCK)
        hone_kt.dropout_f32(din + i, dxd + i, i, m - i < ELT_BLOCK ? m - i : ELT_BLOCK, p, seed, 1);
}

void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, float off, float eps, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) rstd[i] = hone_kt.rmsnorm_fwd(out + (size_t)i * C, x + (size_t)i * C, w, off, eps, C);
}

void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, float off,
                      int N, int C, float *scratch) {
    memset(scratch, 0, sizeof(float) * RED_CHUNKS * C);
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < RED_CHUNKS; ch++) {
        int i0 = (int)((long)N * ch / RED_CHUNKS), i1 = (int)((long)N * (ch + 1) / RED_CHUNKS);
        for (int i = i0; i < i1; i++)
            hone_kt.rmsnorm_bwd(dx + (size_t)i * C, scratch + (size_t)ch * C, dout + (size_t)i * C, x + (size_t)i * C, w, off,
                                rstd[i], C);
    }
    for (int ch = 0; ch < RED_CHUNKS && dw; ch++)
        for (int j = 0; j < C; j++) dw[j] += scratch[(size_t)ch * C + j];
}

void rope_tables(float *cos, float *sin, const int32_t *pos, const float *inv_freq, int N, int D) {
    int h = D / 2;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        for (int j = 0; j < h; j++) {
            float f = (float)pos[i] * inv_freq[j]; /* fp32 product, as transformers */
            cos[(size_t)i * h + j] = cosf(f);
            sin[(size_t)i * h + j] = sinf(f);
        }
}

void rope_forward(float *x, const float *cos, const float *sin, int N, int nh, int D) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        hone_kt.rope(x + (size_t)i * nh * D, cos + (size_t)i * (D / 2), sin + (size_t)i * (D / 2), nh, D, 1.0f);
}

void rope_backward(float *dx, const float *cos, const float *sin, int N, int nh, int D) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        hone_kt.rope(dx + (size_t)i * nh * D, cos + (size_t)i * (D / 2), sin + (size_t)i * (D / 2), nh, D, -1.0f);
}

void attention_forward(float *att, float *lse, const float *q, const float *k, const float *v, const hone_batch *b, int H,
                       int KV, int D) {
    int B = b->B, T = b->T, HD = H * D, KD = KV * D, g = H / KV;
    float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
        int r = bh / H, h = bh % H;
        size_t ro = (size_t)r * T;
        hone_kt.attn_fwd(att + ro * HD + (size_t)h * D, lse + (size_t)bh * T, q + ro * HD + (size_t)h * D,
                         k + ro * KD + (size_t)(h / g) * D, v + ro * KD + (size_t)(h / g) * D, 0, T, D, HD, KD, HD,
                         b->start + ro, b->pfx_start + ro, b->pfx_end + ro, scale);
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *datt, const float *att, const float *lse,
                        const float *q, const float *k, const float *v, const hone_batch *b, int H, int KV, int D) {
    int B = b->B, T = b->T, HD = H * D, KD = KV * D, g = H / KV;
    float scale = 1.0f / sqrtf((float)D);
    /* one (row, kv head) per task: the heads sharing it add into dk/dv in a fixed order */
#pragma omp parallel for schedule(dynamic, 1)
    for (int bk = 0; bk < B * KV; bk++) {
        int r = bk / KV, kh = bk % KV;
        size_t ro = (size_t)r * T;
        for (int t = 0; t < T; t++) {
            memset(dk + (ro + t) * KD + (size_t)kh * D, 0, sizeof(float) * D);
            memset(dv + (ro + t) * KD + (size_t)kh * D, 0, sizeof(float) * D);
        }
        for (int h = kh * g; h < (kh + 1) * g; h++)
            hone_kt.attn_bwd(dq + ro * HD + (size_t)h * D, dk + ro * KD + (size_t)kh * D, dv + ro * KD + (size_t)kh * D,
                             datt + ro * HD + (size_t)h * D, att + ro * HD + (size_t)h * D, lse + ((size_t)r * H + h) * T,
                             q + ro * HD + (size_t)h * D, k + ro * KD + (size_t)kh * D, v + ro * KD + (size_t)kh * D, 0, T, D,
                             HD, KD, HD, b->start + ro, b->pfx_start + ro, b->pfx_end + ro, scale);
    }
}

void glu_forward(float *h, const float *gate, const float *up, size_t n, int act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += ELT_BLOCK)
        hone_kt.glu_fwd(h + i, gate + i, up + i, (int)(n - i < ELT_BLOCK ? n - i : ELT_BLOCK), act);
}

void glu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n, int act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += ELT_BLOCK)
        hone_kt.glu_bwd(dgate + i, dup + i, dh + i, gate + i, up + i, (int)(n - i < ELT_BLOCK ? n - i : ELT_BLOCK), act);
}

void embedding_forward(float *x, const float *E, const int32_t *tokens, int N, int C, float scale) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *e = E + (size_t)tokens[i] * C;
        float *o = x + (size_t)i * C;
        for (int j = 0; j < C; j++) o[j] = e[j] * scale;
    }
}

void embedding_backward(float *dE, const float *dx, const int32_t *tokens, int N, int C, float scale) {
    if (!dE) return; /* a frozen embedding */
    /* columns are split across threads; tokens are visited in order within each */
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < C; j0 += COL_BLOCK) {
        int j1 = j0 + COL_BLOCK < C ? j0 + COL_BLOCK : C;
        for (int i = 0; i < N; i++) {
            float *d = dE + (size_t)tokens[i] * C;
            const float *g = dx + (size_t)i * C;
            for (int j = j0; j < j1; j++) d[j] += g[j] * scale;
        }
    }
}

void residual_add(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += ELT_BLOCK) {
        size_t e = i + ELT_BLOCK < n ? i + ELT_BLOCK : n;
        for (size_t j = i; j < e; j++) y[j] += x[j];
    }
}

double layers_sumsq(const float *x, size_t n) {
    /* fixed blocks, summed in order: independent of the thread count */
    size_t nb = (n + ELT_BLOCK - 1) / ELT_BLOCK;
    double total = 0.0;
    enum { MAXB = 1024 };
    double part[MAXB];
    for (size_t b0 = 0; b0 < nb; b0 += MAXB) {
        size_t b1 = b0 + MAXB < nb ? b0 + MAXB : nb;
#pragma omp parallel for schedule(static)
        for (size_t b = b0; b < b1; b++) {
            size_t s = b * ELT_BLOCK, e = s + ELT_BLOCK < n ? s + ELT_BLOCK : n;
            /* eight running sums (element j into sum (j - s) % 8), added pairwise at
             * the end: one chain of dependent adds ran at 4 cycles per element,
             * 1.2% of the 135M SFT step; the order is still fixed by n alone */
            double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            size_t j = s;
            for (; j + 8 <= e; j += 8)
                for (int l = 0; l < 8; l++) a[l] += (double)x[j + l] * x[j + l];
            for (int l = 0; j < e; j++, l++) a[l] += (double)x[j] * x[j];
            part[b - b0] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        }
        for (size_t b = b0; b < b1; b++) total += part[b - b0];
    }
    return total;
}
