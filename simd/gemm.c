/* gemm.c — the blocked sgemm driver shared by every ISA (see gemm.h): packing,
 * cache blocking from the detected cache sizes, OpenMP over output tiles.
 * Built without ISA flags; the per-ISA micro-kernel does the arithmetic.
 *
 * Packing buffers: one arena per calling thread (_Thread_local), grown
 * monotonically and never freed, so a training loop allocates once and never
 * again. Worker threads only write into the caller's arena (shared A block and
 * B panel), so they need no buffers of their own. */
#include "config.h"
#include "gemm.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local float *gemm_arena;
static _Thread_local size_t gemm_arena_cap; /* floats */

static float *arena_get(size_t n) {
    if (n > gemm_arena_cap) {
        free(gemm_arena);
        size_t cap = n + n / 4;
        gemm_arena = aligned_alloc(64, ((cap * sizeof(float)) + 63) / 64 * 64);
        gemm_arena_cap = gemm_arena ? cap : 0;
    }
    return gemm_arena;
}

static long cache_bytes(int name, long fallback) {
    long v = sysconf(name);
    return v > 0 ? v : fallback;
}

/* KC: a KC x NR micro-panel of B is about 1.5x L1 (measured on Zen 4: a
 * longer K loop amortising the C update beats an L1-resident panel; L2 feeds
 * the rest), capped at 384; MC: the MC x KC block of A takes a quarter of L2;
 * NC: the KC x NC panel of B takes a quarter of L3. KC depends on the
 * cache and NR only: it fixes the summation order, so it must not depend on
 * the thread count. */
static void gemm_blocking(const gemm_arch *g, int *kc, int *mc, int *nc) {
#ifdef _SC_LEVEL1_DCACHE_SIZE
    long l1 = cache_bytes(_SC_LEVEL1_DCACHE_SIZE, 32768);
    long l2 = cache_bytes(_SC_LEVEL2_CACHE_SIZE, 512 * 1024);
    long l3 = cache_bytes(_SC_LEVEL3_CACHE_SIZE, 8 * 1024 * 1024);
#else
    long l1 = 32768, l2 = 512 * 1024, l3 = 8 * 1024 * 1024;
#endif
    if (l1 < 16384) l1 = 16384;
    if (l2 < 256 * 1024) l2 = 256 * 1024;
    if (l3 < l2) l3 = 4 * l2;
    int k = (int)(l1 * 3 / 2 / (g->nr * (long)sizeof(float)));
    k = k / 16 * 16;
    if (k < 64) k = 64;
    if (k > 384) k = 384;
    int m = (int)(l2 / 4 / (k * (long)sizeof(float)));
    m = m / g->mr * g->mr;
    if (m < g->mr) m = g->mr;
    if (m > 1024) m = 1024 / g->mr * g->mr;
    int n = (int)(l3 / 4 / (k * (long)sizeof(float)));
    n = n / g->nr * g->nr;
    if (n < g->nr * 4) n = g->nr * 4;
    if (n > 8192) n = 8192 / g->nr * g->nr;
    *kc = k, *mc = m, *nc = n;
}

/* Packs op(A)(ic.., pc..) (mcur x kc) into MR-tall micro-panels, zero-padded
 * past M: panel p holds, for each k, its MR values contiguous. This thread
 * packs its share (tid of nth); the caller puts a barrier after. A stored
 * (K, M) (ta=1) is read row by row across the whole block, so each k reads one
 * contiguous run (not MR floats from each of kc far-apart rows: TLB misses). */
static void pack_a_block(int mr, int mcur, int kc, const float *A, int lda, int ta, int ic, int pc,
                         float *dst, int tid, int nth) {
    int np = (mcur + mr - 1) / mr;
    if (ta) {
        int k0 = kc * tid / nth, k1 = kc * (tid + 1) / nth;
        for (int k = k0; k < k1; k++) {
            const float *s = A + (size_t)(pc + k) * lda + ic;
            for (int p = 0; p < np; p++) {
                float *d = dst + ((size_t)p * kc + k) * mr;
                int rows = mcur - p * mr < mr ? mcur - p * mr : mr;
                for (int i = 0; i < rows; i++) d[i] = s[p * mr + i];
                for (int i = rows; i < mr; i++) d[i] = 0.f;
            }
        }
    } else { /* rows of A are contiguous in k: read them as mr parallel streams */
        for (int p = np * tid / nth; p < np * (tid + 1) / nth; p++) {
            int rows = mcur - p * mr < mr ? mcur - p * mr : mr;
            const float *s[16];
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
        for (int k = k0; k < k1; k++) {
            const float *s = B + (size_t)(pc + k) * ldb + jc;
            for (int p = 0; p < np; p++) {
                float *d = dst + ((size_t)p * kc + k) * nr;
                int cols = ncur - p * nr < nr ? ncur - p * nr : nr;
                for (int j = 0; j < cols; j++) d[j] = s[p * nr + j];
                for (int j = cols; j < nr; j++) d[j] = 0.f;
            }
        }
    } else { /* rows of B (columns of op(B)) are contiguous in k */
        for (int p = np * tid / nth; p < np * (tid + 1) / nth; p++) {
            int cols = ncur - p * nr < nr ? ncur - p * nr : nr;
            const float *s[64];
            for (int j = 0; j < nr; j++) s[j] = B + (size_t)(jc + p * nr + (j < cols ? j : 0)) * ldb + pc;
            float *d = dst + (size_t)p * kc * nr;
            for (int k = 0; k < kc; k++, d += nr)
                for (int j = 0; j < nr; j++) d[j] = j < cols ? s[j][k] : 0.f;
        }
    }
}

static void gemm_run(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc, float *abuf, float *bbuf,
                     int KC, int MC, int NC, int nth, int tid) {
    const int mr = g->mr, nr = g->nr;
    float tile[16 * 64] __attribute__((aligned(64)));
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        int njr = (nc + nr - 1) / nr;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int accum = pc > 0 || beta != 0.f;
            pack_b_block(nr, nc, kc, B, ldb, tb, jc, pc, bbuf, tid, nth);
            for (int ic = 0; ic < M; ic += MC) {
                int mcur = M - ic < MC ? M - ic : MC;
                int nir = (mcur + mr - 1) / mr;
                pack_a_block(mr, mcur, kc, A, lda, ta, ic, pc, abuf, tid, nth);
#ifdef _OPENMP
#pragma omp barrier
#endif
                /* A block and B panel packed; each thread takes a contiguous tile range */
                long total = (long)njr * nir;
                long t0 = total * tid / nth, t1 = total * (tid + 1) / nth;
                for (long it = t0; it < t1; it++) {
                    int q = (int)(it / nir), p = (int)(it % nir);
                    int i0 = ic + p * mr, j0 = jc + q * nr;
                    int rows = M - i0 < mr ? M - i0 : mr, cols = N - j0 < nr ? N - j0 : nr;
                    const float *ap = abuf + (size_t)p * kc * mr, *bp = bbuf + (size_t)q * kc * nr;
                    float *c = C + (size_t)i0 * ldc + j0;
                    if (rows == mr && cols == nr) {
                        g->ukr(kc, ap, bp, c, ldc, accum);
                    } else {
                        g->ukr(kc, ap, bp, tile, nr, 0);
                        for (int i = 0; i < rows; i++)
                            for (int j = 0; j < cols; j++)
                                c[(size_t)i * ldc + j] =
                                    accum ? c[(size_t)i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
                    }
                }
#ifdef _OPENMP
#pragma omp barrier
#endif
            }
        }
    }
}

void gemm_f32_blocked(const gemm_arch *g, int ta, int tb, int M, int N, int K, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.f)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
        return;
    }
    int KC, MC, NC;
    gemm_blocking(g, &KC, &MC, &NC);
    int nth = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && 2.0 * M * N * K >= 4e6) nth = omp_get_max_threads();
#endif
    if (MC > (M + g->mr - 1) / g->mr * g->mr) MC = (M + g->mr - 1) / g->mr * g->mr;
    if (NC > (N + g->nr - 1) / g->nr * g->nr) NC = (N + g->nr - 1) / g->nr * g->nr;
    int kcmax = K < KC ? K : KC;
    size_t asz = (size_t)MC * kcmax, bsz = (size_t)NC * kcmax;
    float *buf = arena_get(asz + bsz + 16);
    if (!buf) return; /* out of memory: nothing sensible to do in a kernel */
    float *abuf = buf, *bbuf = buf + (asz + 15) / 16 * 16;
    if (nth == 1) {
        gemm_run(g, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, abuf, bbuf, KC, MC, NC, 1, 0);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nth)
    gemm_run(g, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, abuf, bbuf, KC, MC, NC,
             omp_get_num_threads(), omp_get_thread_num());
#endif
}
