/* gemm.c — the blocked sgemm driver shared by every ISA (see gemm.h): packing,
 * cache blocking from the detected cache sizes, OpenMP over slabs of C.
 * Built without ISA flags; the per-ISA micro-kernel does the arithmetic.
 *
 * Packing buffers: one arena per thread (_Thread_local: the caller's and each
 * OpenMP worker's, which persist in the pool), grown monotonically to the
 * largest MC*KC + KC*NC seen (at most about 5 MB here), freed when its thread
 * exits, so a training loop allocates in its first step and never again. */
#include "config.h"
#include "simd/gemm.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local float *gemm_arena;
static _Thread_local size_t gemm_arena_cap; /* floats */
/* Frees a thread's arena when the thread exits (OpenMP may retire workers
 * when the team shrinks); set once, constant afterwards. */
static pthread_key_t gemm_arena_key;
static pthread_once_t gemm_arena_once = PTHREAD_ONCE_INIT;
static void arena_key_init(void) { pthread_key_create(&gemm_arena_key, free); }

static float *arena_get(size_t n) {
    if (n > gemm_arena_cap) {
        pthread_once(&gemm_arena_once, arena_key_init);
        free(gemm_arena);
        size_t cap = n + n / 4;
        gemm_arena = aligned_alloc(64, ((cap * sizeof(float)) + 63) / 64 * 64);
        gemm_arena_cap = gemm_arena ? cap : 0;
        pthread_setspecific(gemm_arena_key, gemm_arena);
    }
    return gemm_arena;
}

static long cache_bytes(int name, long fallback) {
    long v = sysconf(name);
    return v > 0 ? v : fallback;
}

/* KC: a KC x NR micro-panel of B is about 1.5x L1 (measured on Zen 4: a
 * longer K loop amortising the C update beats an L1-resident panel; L2 feeds
 * the rest), capped at 384, then balanced over K; MC: the MC x KC block of A takes half of L2,
 * balanced over M (measured: +4% on the vocabulary-sized product);
 * NC: the KC x NC panel of B takes a quarter of L3. KC depends on the
 * cache and NR only: it fixes the summation order, so it must not depend on
 * the thread count. */
static void cache_sizes(long *l1, long *l2, long *l3) {
#ifdef _SC_LEVEL1_DCACHE_SIZE
    *l1 = cache_bytes(_SC_LEVEL1_DCACHE_SIZE, 32768);
    *l2 = cache_bytes(_SC_LEVEL2_CACHE_SIZE, 512 * 1024);
    *l3 = cache_bytes(_SC_LEVEL3_CACHE_SIZE, 8 * 1024 * 1024);
#else
    *l1 = 32768, *l2 = 512 * 1024, *l3 = 8 * 1024 * 1024;
#endif
    if (*l1 < 16384) *l1 = 16384;
    if (*l2 < 256 * 1024) *l2 = 256 * 1024;
    if (*l3 < *l2) *l3 = 4 * *l2;
}

/* K blocks of at most cap, balanced (multiples of 4); K whole up to 5/3 of cap. */
static int balance_k(int cap, int K) {
    if (K <= cap * 5 / 3) return K;
    int nb = (K + cap - 1) / cap;
    return ((K + nb - 1) / nb + 3) / 4 * 4;
}

static void gemm_blocking(const gemm_arch *g, int M, int K, int *kc, int *mc, int *nc) {
    long l1, l2, l3;
    cache_sizes(&l1, &l2, &l3);
    int k = (int)(l1 * 3 / 2 / (g->nr * (long)sizeof(float)));
    k = k / 16 * 16;
    if (k < 64) k = 64;
    if (k > 384) k = 384;
    /* Balance the K blocks, and take K whole up to 5/3 of the cap: one block
     * means C is written once (never re-read when beta = 0); measured +3% on
     * K = 576 against 384 + 192. Depends on K and the cache only. */
    k = balance_k(k, K);
    int m = (int)(l2 / 2 / (k * (long)sizeof(float)));
    m = m / g->mr * g->mr;
    if (m < g->mr) m = g->mr;
    if (m > 1024) m = 1024 / g->mr * g->mr;
    if (M > m) { /* balanced blocks: no short last block */
        int nb = (M + m - 1) / m;
        m = ((M + nb - 1) / nb + g->mr - 1) / g->mr * g->mr;
    }
    int n = (int)(l3 / 4 / (k * (long)sizeof(float)));
    n = n / g->nr * g->nr;
    if (n < g->nr * 4) n = g->nr * 4;
    if (n > 8192) n = 8192 / g->nr * g->nr;
    *kc = k, *mc = m, *nc = n;
}

/* d[k*W + i] = s[i*ld + k] for i < W, k < kc: a W-stream transposing copy
 * with W a compile-time constant, so the i loop unrolls and the W row
 * addresses stay in registers (4-6x faster than the generic loop). */
#define PACK_T(W)                                                                        \
    static void pack_t##W(const float *s, size_t ld, int kc, float *d) {                \
        const float *r[W];                                                               \
        for (int i = 0; i < W; i++) r[i] = s + i * ld;                                  \
        for (int k = 0; k < kc; k++, d += W) {                                           \
            _Pragma("GCC unroll 32") for (int i = 0; i < W; i++) d[i] = r[i][k];         \
        }                                                                                \
    }
PACK_T(6)
PACK_T(8)
PACK_T(12)
PACK_T(16)
PACK_T(24)
PACK_T(28)
PACK_T(32)

/* The transposing pack of one full panel; 0 when W has no specialisation. */
static int pack_t_fast(int w, const float *s, size_t ld, int kc, float *d) {
    switch (w) {
    case 6: pack_t6(s, ld, kc, d); return 1;
    case 8: pack_t8(s, ld, kc, d); return 1;
    case 12: pack_t12(s, ld, kc, d); return 1;
    case 16: pack_t16(s, ld, kc, d); return 1;
    case 24: pack_t24(s, ld, kc, d); return 1;
    case 28: pack_t28(s, ld, kc, d); return 1;
    case 32: pack_t32(s, ld, kc, d); return 1;
    }
    return 0;
}

/* d[0..w) = s[0..w) with constant-size copies for the micro-tile widths. */
static inline void copy_w(int w, float *d, const float *s) {
    switch (w) {
    case 6: memcpy(d, s, 6 * sizeof(float)); return;
    case 8: memcpy(d, s, 8 * sizeof(float)); return;
    case 12: memcpy(d, s, 12 * sizeof(float)); return;
    case 16: memcpy(d, s, 16 * sizeof(float)); return;
    case 24: memcpy(d, s, 24 * sizeof(float)); return;
    case 28: memcpy(d, s, 28 * sizeof(float)); return;
    case 32: memcpy(d, s, 32 * sizeof(float)); return;
    default: memcpy(d, s, (size_t)w * sizeof(float));
    }
}

/* d[0..w) = s[0..n), zero past n */
static inline void copy_pad(int w, int n, float *d, const float *s) {
    if (n == w) {
        copy_w(w, d, s);
        return;
    }
    for (int j = 0; j < n; j++) d[j] = s[j];
    for (int j = n; j < w; j++) d[j] = 0.f;
}

/* k-rows per step of the row-copy packs (A stored (K, M), B stored (K, N)):
 * 16 rows stay in L1 while they are dealt to every panel; +2% on dW. */
#define PACK_KB 16

/* Packs op(A)(ic.., pc..) (mcur x kc) into MR-tall micro-panels, zero-padded
 * past M: panel p holds, for each k, its MR values contiguous. (tid, nth)
 * select a share of the work; the serial driver passes (0, 1). A stored
 * (K, M) (ta=1) is read row by row across the whole block, so each k reads one
 * contiguous run (not MR floats from each of kc far-apart rows: TLB misses). */
static void pack_a_block(int mr, int mcur, int kc, const float *A, int lda, int ta, int ic, int pc,
                         float *dst, int tid, int nth, gemm_pack_fn pack_t) {
    int np = (mcur + mr - 1) / mr;
    if (ta) { /* 16 k-rows at a time, panel by panel: reads stay in L1, writes contiguous */
        int k0 = kc * tid / nth, k1 = kc * (tid + 1) / nth;
        for (int kb = k0; kb < k1; kb += PACK_KB) {
            int ke = kb + PACK_KB < k1 ? kb + PACK_KB : k1;
            for (int p = 0; p < np; p++) {
                int rows = mcur - p * mr < mr ? mcur - p * mr : mr;
                for (int k = kb; k < ke; k++) {
                    const float *s = A + (size_t)(pc + k) * lda + ic + p * mr;
                    float *d = dst + ((size_t)p * kc + k) * mr;
                    if (rows == mr) {
                        copy_w(mr, d, s);
                        continue;
                    }
                    for (int i = 0; i < rows; i++) d[i] = s[i];
                    for (int i = rows; i < mr; i++) d[i] = 0.f;
                }
            }
        }
    } else { /* rows of A are contiguous in k: read them as mr parallel streams */
        for (int p = np * tid / nth; p < np * (tid + 1) / nth; p++) {
            int rows = mcur - p * mr < mr ? mcur - p * mr : mr;
            if (rows == mr && pack_t) {
                pack_t(A + (size_t)(ic + p * mr) * lda + pc, lda, kc, dst + (size_t)p * kc * mr);
                continue;
            }
            if (rows == mr &&
                pack_t_fast(mr, A + (size_t)(ic + p * mr) * lda + pc, lda, kc, dst + (size_t)p * kc * mr))
                continue;
            const float *s[32];
            for (int i = 0; i < mr; i++) s[i] = A + (size_t)(ic + p * mr + (i < rows ? i : 0)) * lda + pc;
            float *d = dst + (size_t)p * kc * mr;
            for (int k = 0; k < kc; k++, d += mr)
                for (int i = 0; i < mr; i++) d[i] = i < rows ? s[i][k] : 0.f;
        }
    }
}

/* The same for op(B)(pc.., jc..) (kc x ncur) into NR-wide micro-panels. */
static void pack_b_block(int nr, int ncur, int kc, const float *B, int ldb, int tb, int jc, int pc,
                         float *dst, int tid, int nth) {
    int np = (ncur + nr - 1) / nr;
    if (!tb) {
        int k0 = kc * tid / nth, k1 = kc * (tid + 1) / nth;
        for (int kb = k0; kb < k1; kb += PACK_KB) {
            int ke = kb + PACK_KB < k1 ? kb + PACK_KB : k1;
            for (int p = 0; p < np; p++) {
                int cols = ncur - p * nr < nr ? ncur - p * nr : nr;
                for (int k = kb; k < ke; k++) {
                    const float *s = B + (size_t)(pc + k) * ldb + jc + p * nr;
                    float *d = dst + ((size_t)p * kc + k) * nr;
                    if (cols == nr) {
                        copy_w(nr, d, s);
                        continue;
                    }
                    for (int j = 0; j < cols; j++) d[j] = s[j];
                    for (int j = cols; j < nr; j++) d[j] = 0.f;
                }
            }
        }
    } else { /* rows of B (columns of op(B)) are contiguous in k */
        for (int p = np * tid / nth; p < np * (tid + 1) / nth; p++) {
            int cols = ncur - p * nr < nr ? ncur - p * nr : nr;
            if (cols == nr &&
                pack_t_fast(nr, B + (size_t)(jc + p * nr) * ldb + pc, ldb, kc, dst + (size_t)p * kc * nr))
                continue;
            const float *s[64];
            for (int j = 0; j < nr; j++) s[j] = B + (size_t)(jc + p * nr + (j < cols ? j : 0)) * ldb + pc;
            float *d = dst + (size_t)p * kc * nr;
            for (int k = 0; k < kc; k++, d += nr)
                for (int j = 0; j < nr; j++) d[j] = j < cols ? s[j][k] : 0.f;
        }
    }
}

/* pack_b_block with B read through a source (gemm.h gemm_bsrc): tb: the cols stored rows of a
 * panel (kc each) into tmp, then transposed into it as pack_t_fast does; !tb: one k-row
 * (ncur wide) into tmp at a time, dealt to every panel. The same packed values as
 * pack_b_block on the materialised B. tmp: nr * kc floats (tb) or ncur (!tb). */
static void pack_b_src(int nr, int ncur, int kc, const gemm_bsrc *bs, int tb, int jc, int pc, float *dst, float *tmp) {
    int np = (ncur + nr - 1) / nr;
    if (!tb) {
        for (int k = 0; k < kc; k++) {
            bs->row_f32(bs->ctx, bs->r0 + pc + k, bs->c0 + jc, ncur, tmp);
            for (int p = 0; p < np; p++) {
                int cols = ncur - p * nr < nr ? ncur - p * nr : nr;
                copy_pad(nr, cols, dst + ((size_t)p * kc + k) * nr, tmp + (size_t)p * nr);
            }
        }
        return;
    }
    for (int p = 0; p < np; p++) {
        int cols = ncur - p * nr < nr ? ncur - p * nr : nr;
        for (int j = 0; j < cols; j++) bs->row_f32(bs->ctx, bs->r0 + jc + p * nr + j, bs->c0 + pc, kc, tmp + (size_t)j * kc);
        float *d = dst + (size_t)p * kc * nr;
        if (cols == nr && pack_t_fast(nr, tmp, (size_t)kc, kc, d)) continue;
        for (int k = 0; k < kc; k++, d += nr)
            for (int j = 0; j < nr; j++) d[j] = j < cols ? tmp[(size_t)j * kc + k] : 0.f;
    }
}

/* x[i] = x rounded to bf16 (round to nearest even, NaN kept quiet), kept in fp32:
 * torch's fp32 -> bf16 conversion, the one kernels.h's f32_to_bf16 does. */
static inline uint32_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (u >> 16) | 0x40;
    return (u + 0x7fff + ((u >> 16) & 1)) >> 16;
}
static void round_bf16_inplace(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = bf16_bits(x[i]) << 16;
        memcpy(x + i, &u, 4);
    }
}

/* The serial blocked gemm on one (sub)problem; buffers from this thread's arena.
 * rnd: round the packed operands to bf16 (gemm_f32_rounded_blocked); bs: B read through
 * that source (B, ldb unused), with a run buffer after the packs. */
static void gemm_serial(const gemm_arch *g, int rnd, int ta, int tb, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, const gemm_bsrc *bs, float beta, float *C, int ldc) {
    const int mr = g->mr, nr = g->nr;
    int KC, MC, NC;
    gemm_blocking(g, M, K, &KC, &MC, &NC);
    if (MC > (M + mr - 1) / mr * mr) MC = (M + mr - 1) / mr * mr;
    if (NC > (N + nr - 1) / nr * nr) NC = (N + nr - 1) / nr * nr;
    int kcmax = K < KC ? K : KC;
    size_t asz = ((size_t)MC * kcmax + 15) / 16 * 16, bsz = ((size_t)NC * kcmax + 15) / 16 * 16;
    size_t tsz = !bs ? 0 : tb ? (size_t)nr * kcmax : (size_t)NC;
    float *abuf = arena_get(asz + bsz + tsz);
    if (!abuf) return; /* out of memory: nothing sensible to do in a kernel */
    float *bbuf = abuf + asz;
    float tile[32 * 64] __attribute__((aligned(64)));
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        int njr = (nc + nr - 1) / nr;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int accum = pc > 0 || beta != 0.f;
            if (bs) pack_b_src(nr, nc, kc, bs, tb, jc, pc, bbuf, bbuf + bsz);
            else pack_b_block(nr, nc, kc, B, ldb, tb, jc, pc, bbuf, 0, 1);
            if (rnd) round_bf16_inplace(bbuf, (size_t)njr * nr * kc);
            for (int ic = 0; ic < M; ic += MC) {
                int mcur = M - ic < MC ? M - ic : MC;
                int nir = (mcur + mr - 1) / mr;
                pack_a_block(mr, mcur, kc, A, lda, ta, ic, pc, abuf, 0, 1, g->pack_a_t);
                if (rnd) round_bf16_inplace(abuf, (size_t)nir * mr * kc);
                for (int q = 0; q < njr; q++) { /* B micro-panel q stays hot across ir */
                    const float *bp = bbuf + (size_t)q * kc * nr;
                    int j0 = jc + q * nr, cols = N - j0 < nr ? N - j0 : nr;
                    for (int p = 0; p < nir; p++) {
                        const float *ap = abuf + (size_t)p * kc * mr;
                        int i0 = ic + p * mr, rows = M - i0 < mr ? M - i0 : mr;
                        float *c = C + (size_t)i0 * ldc + j0;
                        if (rows == mr && cols == nr) {
                            g->ukr(kc, ap, bp, c, ldc, accum);
                            continue;
                        }
                        g->ukr(kc, ap, bp, tile, nr, 0); /* edge tile: same sums, partial copy */
                        for (int i = 0; i < rows; i++)
                            for (int j = 0; j < cols; j++)
                                c[(size_t)i * ldc + j] =
                                    accum ? c[(size_t)i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
                    }
                }
            }
        }
    }
}

/* Rows of C when op(A) has one or two rows (decoding, GEMV): packing B would
 * cost as much as the product, so each row is computed straight from B's
 * rows: dots with B's rows when B is stored (N, K), or K row updates of an
 * accumulator when B is stored (K, N). Columns [j0, j1) of every row; tmp
 * holds K + (j1 - j0) floats. Every element's sum runs over k in one fixed
 * order whatever the column range, so thread splits change no bit. */
static void gemv_rows(const gemm_arch *g, int ta, int tb, int M, int K, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc, int j0, int j1, float *tmp) {
    for (int i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        if (ta) { /* A stored (K, M): gather the row */
            for (int k = 0; k < K; k++) tmp[k] = A[(size_t)k * lda + i];
            a = tmp;
        }
        float *c = C + (size_t)i * ldc, *acc = tmp + K;
        if (tb) {
            for (int j = j0; j < j1; j++) acc[j - j0] = g->dot(a, B + (size_t)j * ldb, K);
        } else {
            memset(acc, 0, sizeof(float) * (j1 - j0));
            for (int k = 0; k < K; k++) g->fma_row(acc, a[k], B + (size_t)k * ldb + j0, j1 - j0);
        }
        for (int j = j0; j < j1; j++) c[j] = beta != 0.f ? c[j] + acc[j - j0] : acc[j - j0];
    }
}

/* gemv_rows with B read through a source: each stored row of B once for all M rows of op(A)
 * (tb: row j, K wide; else row k, columns [j0, j1)), then the same dot / fma_row calls as
 * gemv_rows, so every element is bitwise gemv_rows'. tmp: M*K + M*(j1 - j0) + max(K, j1 - j0). */
static void gemv_rows_src(const gemm_arch *g, int ta, int tb, int M, int K, const float *A, int lda, const gemm_bsrc *bs,
                          float beta, float *C, int ldc, int j0, int j1, float *tmp) {
    int n = j1 - j0;
    const float *a[2];
    float *acc[2], *row = tmp + (size_t)M * K + (size_t)M * n;
    for (int i = 0; i < M; i++) {
        a[i] = A + (size_t)i * lda;
        if (ta) { /* A stored (K, M): gather the row */
            float *t = tmp + (size_t)i * K;
            for (int k = 0; k < K; k++) t[k] = A[(size_t)k * lda + i];
            a[i] = t;
        }
        acc[i] = tmp + (size_t)M * K + (size_t)i * n;
    }
    if (tb) {
        for (int j = j0; j < j1; j++) {
            bs->row_f32(bs->ctx, bs->r0 + j, bs->c0, K, row);
            for (int i = 0; i < M; i++) acc[i][j - j0] = g->dot(a[i], row, K);
        }
    } else {
        for (int i = 0; i < M; i++) memset(acc[i], 0, sizeof(float) * n);
        for (int k = 0; k < K; k++) {
            bs->row_f32(bs->ctx, bs->r0 + k, bs->c0 + j0, n, row);
            for (int i = 0; i < M; i++) g->fma_row(acc[i], a[i][k], row, n);
        }
    }
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = j0; j < j1; j++) c[j] = beta != 0.f ? c[j] + acc[i][j - j0] : acc[i][j - j0];
    }
}

/* columns [j0, j1) of the rows, B plain or (bs) from a source, with a buffer from this thread's arena */
static void gemv_part(const gemm_arch *g, int ta, int tb, int M, int K, const float *A, int lda, const float *B, int ldb,
                      const gemm_bsrc *bs, float beta, float *C, int ldc, int j0, int j1) {
    int n = j1 - j0;
    float *tmp = arena_get(bs ? (size_t)M * K + (size_t)M * n + (size_t)(K > n ? K : n) : (size_t)K + n);
    if (!tmp || n <= 0) return;
    if (bs) gemv_rows_src(g, ta, tb, M, K, A, lda, bs, beta, C, ldc, j0, j1, tmp);
    else gemv_rows(g, ta, tb, M, K, A, lda, B, ldb, beta, C, ldc, j0, j1, tmp);
}

static void gemv(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, const gemm_bsrc *bs, float beta, float *C, int ldc) {
    int nth = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && 2.0 * M * N * K >= 8e6) nth = omp_get_max_threads();
#endif
    int units = (N + 63) / 64; /* 64-column units */
    if (nth > units) nth = units;
    if (nth <= 1) {
        gemv_part(g, ta, tb, M, K, A, lda, B, ldb, bs, beta, C, ldc, 0, N);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nth)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int lo = (int)((long)units * t / n) * 64, hi = (int)((long)units * (t + 1) / n) * 64;
        if (hi > N) hi = N;
        gemv_part(g, ta, tb, M, K, A, lda, B, ldb, bs, beta, C, ldc, lo, hi);
    }
#endif
}

/* ---- bf16 pairs (gemm.h: gemm_arch_bf16) ---- */

/* Runs of the packs: at most the largest KC (768 * 5 / 3) or NR floats at a time. */
#define PAIR_RUN 1280

/* d[p*w + i] = pair(s_i[2p], s_i[2p + 1]) for i < w, p < (kc + 1) / 2, where s_i =
 * s + i*ld is contiguous in k (A stored (M, K); B stored (N, K)): each row converted
 * in one run (its bf16 values, read as uint32, are the pairs: low half k = 2p); rows
 * i >= rows are zero, an odd kc's last pair takes +0 as its high half. With bs, row i is the
 * source's stored row r + i, columns [c, c + kc) (s, ld unused). */
static void src_row_bf16(const gemm_arch_bf16 *g, const gemm_bsrc *bs, int r, int c, int n, uint16_t *dst);
static void pack_pairs_rows(const gemm_arch_bf16 *g, int w, int rows, const float *s, size_t ld, const gemm_bsrc *bs, int r,
                            int c, int kc, uint32_t *d) {
    int kp = (kc + 1) / 2;
    uint32_t t[PAIR_RUN / 2];
    for (int i = 0; i < w; i++) {
        uint32_t *o = d + i;
        if (i >= rows) {
            for (int p = 0; p < kp; p++) o[(size_t)p * w] = 0;
            continue;
        }
        t[kp - 1] = 0; /* the odd kc's high half */
        if (bs) src_row_bf16(g, bs, r + i, c, kc, (uint16_t *)t);
        else g->cvt((uint16_t *)t, s + (size_t)i * ld, (size_t)kc);
        for (int p = 0; p < kp; p++) o[(size_t)p * w] = t[p];
    }
}

/* Columns of the operand stored with k as its rows converted per run. */
#define PAIR_COLS 1024

/* pair p of cn columns (bf16 of row 2p in lo, of row 2p + 1 in hi) dealt to the w-wide panels
 * from d (panel stride psz): d[q*psz + j] = pair(lo[q*w + j], hi[q*w + j]), zero past cn */
static void pairs_deal(int w, int cn, const uint16_t *lo, const uint16_t *hi, uint32_t *d, size_t psz) {
    for (int q = 0; q * w < cn; q++, d += psz) {
        int n = cn - q * w < w ? cn - q * w : w;
        const uint16_t *l = lo + q * w, *h = hi + q * w;
        for (int j = 0; j < n; j++) d[j] = l[j] | (uint32_t)h[j] << 16;
        for (int j = n; j < w; j++) d[j] = 0;
    }
}

/* Packs op(X)(i0.., pc..) (ncur x kc, X stored transposed when trans) into w-wide
 * panels of pairs: A with (w, trans) = (MR, ta); B with (NR, !tb). Stored with k as its
 * rows (trans: A stored (K, M), B stored (K, N)), d[p*w + j] = pair(x[2p][j],
 * x[2p + 1][j]): rows 2p and 2p + 1 converted in runs across all the panels, then
 * interleaved; columns past ncur zero. With bs (B only), X's rows are the source's stored rows
 * (X, ld unused). */
static void pack_pairs_block(const gemm_arch_bf16 *g, int w, int ncur, int kc, const float *X, int ld, const gemm_bsrc *bs,
                             int trans, int i0, int pc, uint32_t *dst) {
    int np = (ncur + w - 1) / w, kp = (kc + 1) / 2;
    size_t psz = (size_t)w * kp;
    if (!trans) {
        for (int p = 0; p < np; p++) {
            int n = ncur - p * w < w ? ncur - p * w : w;
            if (bs) pack_pairs_rows(g, w, n, NULL, 0, bs, i0 + p * w, pc, kc, dst + p * psz);
            else pack_pairs_rows(g, w, n, X + (size_t)(i0 + p * w) * ld + pc, ld, NULL, 0, 0, kc, dst + p * psz);
        }
        return;
    }
    uint16_t lo[PAIR_COLS], hi[PAIR_COLS];
    int run = PAIR_COLS / w * w;
    for (int c0 = 0; c0 < ncur; c0 += run) {
        int cn = ncur - c0 < run ? ncur - c0 : run;
        for (int p = 0; p < kp; p++) {
            if (bs) {
                src_row_bf16(g, bs, pc + 2 * p, i0 + c0, cn, lo);
                if (2 * p + 1 < kc) src_row_bf16(g, bs, pc + 2 * p + 1, i0 + c0, cn, hi);
                else memset(hi, 0, sizeof(uint16_t) * cn);
            } else {
                const float *r0 = X + (size_t)(pc + 2 * p) * ld + i0 + c0;
                g->cvt(lo, r0, (size_t)cn);
                if (2 * p + 1 < kc) g->cvt(hi, r0 + ld, (size_t)cn);
                else memset(hi, 0, sizeof(uint16_t) * cn);
            }
            pairs_deal(w, cn, lo, hi, dst + (size_t)(c0 / w) * psz + (size_t)p * w, psz);
        }
    }
}

/* dst[0..n) = bf16 of stored row r, columns [c, c + n) of the source: its own bf16 run, or its
 * fp32 run converted by the arch's cvt (in pieces of PAIR_RUN) */
static void src_row_bf16(const gemm_arch_bf16 *g, const gemm_bsrc *bs, int r, int c, int n, uint16_t *dst) {
    if (bs->row_bf16) {
        bs->row_bf16(bs->ctx, bs->r0 + r, bs->c0 + c, n, dst);
        return;
    }
    float f[PAIR_RUN];
    for (int i = 0; i < n; i += PAIR_RUN) {
        int m = n - i < PAIR_RUN ? n - i : PAIR_RUN;
        bs->row_f32(bs->ctx, bs->r0 + r, bs->c0 + c + i, m, f);
        g->cvt(dst + i, f, (size_t)m);
    }
}

/* KC of the pair path: a KC x 32 panel of bf16 B is 1.5x L1 (the fp32 rule at NR = 16,
 * the same bytes), capped at 768, even, balanced over K as gemm_blocking does; it
 * depends on K and L1 only, so every ISA's pair kernel sums in the same order.
 * MC: the MC x KC block of A takes half of L2; NC: the KC x NC block of B a quarter of L3. */
static void gemm_blocking_bf16(const gemm_arch_bf16 *g, int K, int *kc, int *mc, int *nc) {
    long l1, l2, l3;
    cache_sizes(&l1, &l2, &l3);
    int k = (int)(l1 * 3 / 2 / (32 * 2));
    k = k / 32 * 32;
    if (k < 128) k = 128;
    if (k > 768) k = 768;
    k = balance_k(k, K);
    long kb = (long)(k + 1) / 2 * 4; /* bytes of one row's pairs */
    int m = (int)(l2 / 2 / kb);
    m = m / g->mr * g->mr;
    if (m < g->mr) m = g->mr;
    if (m > 2048) m = 2048 / g->mr * g->mr;
    int n = (int)(l3 / 4 / kb);
    n = n / g->nr * g->nr;
    if (n < g->nr * 4) n = g->nr * 4;
    if (n > 16384) n = 16384 / g->nr * g->nr;
    *kc = k, *mc = m, *nc = n;
}

static void gemm_serial_bf16(const gemm_arch_bf16 *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                             const float *B, int ldb, const gemm_bsrc *bs, float beta, float *C, int ldc) {
    const int mr = g->mr, nr = g->nr;
    int KC, MC, NC;
    gemm_blocking_bf16(g, K, &KC, &MC, &NC);
    if (M > MC) { /* balanced blocks: no short last block */
        int nb = (M + MC - 1) / MC;
        MC = ((M + nb - 1) / nb + mr - 1) / mr * mr;
    }
    if (MC > (M + mr - 1) / mr * mr) MC = (M + mr - 1) / mr * mr;
    if (NC > (N + nr - 1) / nr * nr) NC = (N + nr - 1) / nr * nr;
    int kpmax = ((K < KC ? K : KC) + 1) / 2;
    size_t asz = ((size_t)MC * kpmax + 15) / 16 * 16, bsz = (size_t)NC * kpmax;
    uint32_t *abuf = (uint32_t *)arena_get(asz + bsz); /* floats and uint32 have one size */
    if (!abuf) return;
    uint32_t *bbuf = abuf + asz;
    float tile[32 * 64] __attribute__((aligned(64)));
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        int njr = (nc + nr - 1) / nr;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC, kp = (kc + 1) / 2;
            int accum = pc > 0 || beta != 0.f;
            pack_pairs_block(g, nr, nc, kc, B, ldb, bs, !tb, jc, pc, bbuf);
            for (int ic = 0; ic < M; ic += MC) {
                int mcur = M - ic < MC ? M - ic : MC;
                int nir = (mcur + mr - 1) / mr;
                pack_pairs_block(g, mr, mcur, kc, A, lda, NULL, ta, ic, pc, abuf);
                for (int q = 0; q < njr; q++) {
                    const uint32_t *bp = bbuf + (size_t)q * kp * nr;
                    int j0 = jc + q * nr, cols = N - j0 < nr ? N - j0 : nr;
                    for (int p = 0; p < nir; p++) {
                        const uint32_t *ap = abuf + (size_t)p * kp * mr;
                        int i0 = ic + p * mr, rows = M - i0 < mr ? M - i0 : mr;
                        float *c = C + (size_t)i0 * ldc + j0;
                        if (rows == mr && cols == nr) {
                            g->ukr(kp, ap, bp, c, ldc, accum);
                            continue;
                        }
                        g->ukr(kp, ap, bp, tile, nr, 0);
                        for (int i = 0; i < rows; i++)
                            for (int j = 0; j < cols; j++)
                                c[(size_t)i * ldc + j] =
                                    accum ? c[(size_t)i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
                    }
                }
            }
        }
    }
}

enum { KIND_F32, KIND_F32_ROUNDED, KIND_BF16 };

/* One slab of C, serially, by the driver of kind (B from bs when not NULL). */
static void gemm_slab(int kind, const void *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                      const float *B, int ldb, const gemm_bsrc *bs, float beta, float *C, int ldc) {
    if (kind == KIND_BF16) gemm_serial_bf16(g, ta, tb, M, N, K, A, lda, B, ldb, bs, beta, C, ldc);
    else gemm_serial(g, kind == KIND_F32_ROUNDED, ta, tb, M, N, K, A, lda, B, ldb, bs, beta, C, ldc);
}

/* Threads: C is cut into nth slabs along M (or along N when N > M), on
 * micro-tile boundaries, and each thread runs the serial blocked gemm on its
 * slab with its own packing buffers. No barriers at all: on a busy machine a
 * barrier per block lets one descheduled thread stall the other, and spinning
 * waits steal the cycles it needs. The price is that each thread packs the
 * shared operand itself (K x N, or K x M), small next to the 2MNK/nth flops.
 * The slab boundaries fall on tile boundaries and KC does not depend on them,
 * so every element is the same sum in the same order as on one thread. */
static void gemm_threads(int kind, const void *g, int mr, int nr, int ta, int tb, int M, int N, int K, const float *A,
                         int lda, const float *B, int ldb, const gemm_bsrc *bs, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.f)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
        return;
    }
    int nth = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && 2.0 * M * N * K >= 64e6) nth = omp_get_max_threads();
#endif
    int split_n = N > M;
    int unit = split_n ? nr : mr, units = ((split_n ? N : M) + unit - 1) / unit;
    if (nth > units) nth = units;
    if (nth <= 1) {
        gemm_slab(kind, g, ta, tb, M, N, K, A, lda, B, ldb, bs, beta, C, ldc);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nth)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int lo = (int)((long)units * t / n) * unit, hi = (int)((long)units * (t + 1) / n) * unit;
        int len = split_n ? N : M;
        if (hi > len) hi = len;
        gemm_bsrc bt = {NULL, NULL, NULL, 0, 0}; /* the slab's columns of a source B */
        if (bs) {
            bt = *bs;
            if (split_n) *(tb ? &bt.r0 : &bt.c0) += lo;
        }
        if (hi > lo) {
            if (split_n)
                gemm_slab(kind, g, ta, tb, M, hi - lo, K, A, lda, bs ? NULL : tb ? B + (size_t)lo * ldb : B + lo, ldb,
                          bs ? &bt : NULL, beta, C + lo, ldc);
            else
                gemm_slab(kind, g, ta, tb, hi - lo, N, K, ta ? A + lo : A + (size_t)lo * lda, lda, B, ldb,
                          bs ? &bt : NULL, beta, C + (size_t)lo * ldc, ldc);
        }
    }
#endif
}

void gemm_f32_blocked(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M > 0 && N > 0 && K > 0 && M <= 2 && g->dot) {
        gemv(g, ta, tb, M, N, K, A, lda, B, ldb, NULL, beta, C, ldc);
        return;
    }
    gemm_threads(KIND_F32, g, g->mr, g->nr, ta, tb, M, N, K, A, lda, B, ldb, NULL, beta, C, ldc);
}

/* One or two rows take the packed path too (the GEMV path reads B unpacked). */
void gemm_f32_rounded_blocked(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A,
                              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_threads(KIND_F32_ROUNDED, g, g->mr, g->nr, ta, tb, M, N, K, A, lda, B, ldb, NULL, beta, C, ldc);
}

void gemm_bf16_blocked(const gemm_arch_bf16 *g, int ta, int tb, int M, int N, int K, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_threads(KIND_BF16, g, g->mr, g->nr, ta, tb, M, N, K, A, lda, B, ldb, NULL, beta, C, ldc);
}

/* ---- the same three with B from a source (gemm.h gemm_bsrc) ---- */
void gemm_f32_blocked_src(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                          const gemm_bsrc *B, float beta, float *C, int ldc) {
    if (M > 0 && N > 0 && K > 0 && M <= 2 && g->dot) {
        gemv(g, ta, tb, M, N, K, A, lda, NULL, 0, B, beta, C, ldc);
        return;
    }
    gemm_threads(KIND_F32, g, g->mr, g->nr, ta, tb, M, N, K, A, lda, NULL, 0, B, beta, C, ldc);
}

void gemm_f32_rounded_blocked_src(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                                  const gemm_bsrc *B, float beta, float *C, int ldc) {
    gemm_threads(KIND_F32_ROUNDED, g, g->mr, g->nr, ta, tb, M, N, K, A, lda, NULL, 0, B, beta, C, ldc);
}

void gemm_bf16_blocked_src(const gemm_arch_bf16 *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                           const gemm_bsrc *B, float beta, float *C, int ldc) {
    gemm_threads(KIND_BF16, g, g->mr, g->nr, ta, tb, M, N, K, A, lda, NULL, 0, B, beta, C, ldc);
}
