/* simd/ — every numeric inner loop: the kernel table (this header), its scalar
 *   reference, one file per ISA built with its own flags (AVX2, AVX-512, NEON), the
 *   blocked GEMM driver and run-time dispatch. Below model/; may include base/ (today
 *   it needs nothing). Intrinsics live only here.
 *
 * simd/kernels.h — the kernel table: every numeric inner loop hone runs goes through
 * one of these function pointers. The table is filled once at start-up
 * (kernels_init) with the scalar reference, then overwritten by the best ISA the
 * CPU and OS support (CPUID + XGETBV); HONE_ISA=scalar|avx2|avx512|neon forces a
 * path. It is the only mutable global in hone.
 *
 * Conventions: row-major fp32; "row" kernels work on one row and are called by
 * the layers (src/model/layers.c) from inside their own OpenMP loops; gemm_f32 threads internally and must
 * never be called from inside a parallel region. Results never depend on the
 * number of threads. Pointers need not be aligned. */
#ifndef HONE_KERNELS_H
#define HONE_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#define HONE_PANEL 16 /* rows of a dot_panel16 panel */
#define HONE_PROBE_CHAINS 12 /* independent register chains of the peak probes */

enum { HONE_ACT_SILU = 0, HONE_ACT_GELU_TANH = 1 };

typedef struct hone_kernels {
    const char *isa; /* "scalar", "avx2", "avx512", "neon" */

    /* C (M,N) = beta*C + op(A) @ op(B), op(A) (M,K), op(B) (K,N).
     * ta=0: A stored (M,K) with row stride lda; ta=1: A stored (K,M).
     * tb=0: B stored (K,N) with row stride ldb; tb=1: B stored (N,K).
     * beta is 0 or 1 (beta=0 never reads C, so C may hold NaN). */
    void (*gemm_f32)(int ta, int tb, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);

    /* --- bf16 matrix products (`bf16: true`; issue 15). All three have gemm_f32's
     * contract with both operands rounded to bf16 (round to nearest even, as torch's
     * fp32 -> bf16) and the products summed in fp32.
     * gemm_bf16_dot: the CPU's bf16 dot-product unit (AVX512-BF16 vdpbf16ps, Arm BF16
     *   BFDOT): k taken in pairs, the order and rounding gemm.h describes
     *   (gemm_arch_bf16); gemm_bf16_dot_ref emulates that unit in C, and the kernel is
     *   bitwise it. NULL where the CPU, OS or build has none.
     * gemm_bf16_rounded: the fp32 kernels on the rounded operands (bitwise gemm_f32 on
     *   operands rounded beforehand, for M > 2).
     * gemm_bf16: the one training uses, one of the two: the dot unit where there is one,
     *   until kernels_select_bf16 measures it slower than fp32 FMA; gemm_bf16_path says
     *   which. */
    void (*gemm_bf16)(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc);
    void (*gemm_bf16_dot)(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float beta, float *C, int ldc);
    void (*gemm_bf16_rounded)(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                              int ldb, float beta, float *C, int ldc);
    const char *gemm_bf16_path;         /* gemm_bf16's: one of the two below */
    const char *gemm_bf16_dot_name;     /* e.g. "AVX512-BF16 vdpbf16ps 12x32"; NULL with no dot unit */
    const char *gemm_bf16_rounded_name; /* e.g. "ymm FMA 6x16 on bf16-rounded operands" */
    /* the blocked driver's micro-kernels behind gemm_f32, gemm_bf16_rounded and gemm_bf16_dot
     * (simd/gemm.h), for the products that read B through a source (simd/qgemm.c: held weights
     * dequantised inside the packing) with the same sums; gemm_f32_arch is NULL where gemm_f32 is
     * not the blocked driver (scalar), gemm_bf16_dot_arch where there is no dot unit. */
    const struct gemm_arch *gemm_f32_arch;
    const struct gemm_arch *gemm_bf16_rounded_arch;
    const struct gemm_arch_bf16 *gemm_bf16_dot_arch;
    /* the scalar emulation gemm_bf16_dot is bitwise: gemm_bf16_dot_scalar (vdpbf16ps) by
     * default, gemm_bf16_bfdot_scalar on Arm BF16 (tests) */
    void (*gemm_bf16_dot_ref)(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                              float beta, float *C, int ldc);
    /* x = bf16(x) kept in fp32, in place (autocast's bf16 outputs of matrix products). */
    void (*round_bf16)(float *x, size_t n);

    /* --- vector basics --- */
    float (*dot_f32)(const float *a, const float *b, int n);
    /* dot of bf16 a (widened exactly to fp32) with fp32 b: the same lanes and order as
     * dot_f32, so bitwise dot_f32 of the widened a. Decoding streams bf16 weights with it. */
    float (*dot_bf16_f32)(const uint16_t *a, const float *b, int n);
    /* out[r] = dot(a + r*lda, b, n) for r < rows: matrix-vector products, each row
     * bitwise that ISA's dot_f32 (one call streams many rows). */
    void (*dot_rows_f32)(float *out, const float *a, size_t lda, const float *b, int rows, int n);
    /* 16 rows against one vector, the rows stored as a bf16 panel p[k*16 + j] = row j,
     * column k (HONE_PANEL rows interleaved: one pure stream, no per-row reduction).
     * out[j] = (a0 + a1) + (a2 + a3), a_m = fused multiply-adds over k = m mod 4 in
     * increasing k (the last n mod 4 columns go to a0): every ISA bitwise the scalar. */
    void (*dot_panel16_bf16_f32)(float out[16], const uint16_t *p, const float *x, int n);
    void (*dot_panel16_f32)(float out[16], const float *p, const float *x, int n); /* fp32 panel */
    /* Four inputs at once (rows of x, stride ldx; out rows stride ldo), one panel load
     * for all four: prompt chunks. Each row bitwise the one-input kernel. */
    void (*dot_panel16x4_f32)(float *out, int ldo, const float *p, const float *x, int ldx, int n);
    void (*dot_panel16x4_bf16_f32)(float *out, int ldo, const uint16_t *p, const float *x, int ldx, int n);
    void (*axpy_f32)(float *y, float a, const float *x, int n); /* y += a*x */
    void (*scale_f32)(float *y, float a, int n);                 /* y *= a */

    /* --- RMSNorm over one row of n: out = x * rstd * (w_off + w), rstd = 1/sqrt(mean(x^2)+eps).
     * w_off is 0 (Llama) or 1 (Gemma). Returns rstd. */
    float (*rmsnorm_fwd)(float *out, const float *x, const float *w, float w_off, float eps, int n);
    /* dx += d/dx, dw += dout * x * rstd (dw is a partial sum owned by the caller). */
    void (*rmsnorm_bwd)(float *dx, float *dw, const float *dout, const float *x, const float *w,
                        float w_off, float rstd, int n);

    /* --- RoPE (Hugging Face rotate_half layout) on one token: x is (nh, D) with
     * row stride D; cos/sin are (D/2). sign=+1 forward, -1 applies the inverse
     * rotation (the backward). In place. */
    void (*rope)(float *x, const float *cos, const float *sin, int nh, int D, float sign);

    /* --- gated MLP activation: h = act(gate) * up, act = silu or tanh-gelu */
    void (*glu_fwd)(float *h, const float *gate, const float *up, int n, int act);
    /* dgate = dh * up * act'(gate), dup = dh * act(gate) (both written) */
    void (*glu_bwd)(float *dgate, float *dup, const float *dh, const float *gate, const float *up,
                    int n, int act);

    /* --- cross-entropy / log-softmax over one row of logits x (n).
     * stats out: [0] max, [1] logsumexp, [2] sum_i p_i*x_i (entropy = lse - that),
     * [3] argmax (as float, first index of the max), [4] sum_i x_i. */
    void (*ce_fwd)(const float *x, int n, float stats[5]);
    /* dx = coef * (softmax(x) - onehot(label)); label < 0 means no one-hot term. */
    void (*ce_bwd)(float *dx, const float *x, int n, float lse, int label, float coef);

    /* --- attention for one query head over one row of tokens, flash style
     * (online softmax, nothing of size T x T kept). Queries q0..q1-1; query i sees
     * the keys [pfx_start[i], pfx_end[i]) and [start[i], i] (causal within its own
     * document; the prefix range lets two completions share one prompt).
     * q,o: rows with stride sq / so; k,v: rows with stride skv. lse (T) written
     * for the queries processed. scale multiplies q.k. Vector tables tile the queries
     * from q0 in groups of VL (one query alone takes a per-query kernel), so a query's
     * bits depend on the call's range; the same call gives the same bits. */
    void (*attn_fwd)(float *o, float *lse, const float *q, const float *k, const float *v,
                     int q0, int q1, int D, int sq, int skv, int so, const int32_t *start,
                     const int32_t *pfx_start, const int32_t *pfx_end, float scale);
    /* Backward of attn_fwd for queries q0..q1-1: dq written, dk and dv ACCUMULATED
     * (heads sharing a KV head add into the same rows; callers keep the order fixed). */
    void (*attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *o,
                     const float *lse, const float *q, const float *k, const float *v, int q0,
                     int q1, int D, int sq, int skv, int so, const int32_t *start,
                     const int32_t *pfx_start, const int32_t *pfx_end, float scale);

    /* --- AdamW on n parameters: g is scaled by gscale (clipping) first;
     * p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p), decoupled decay.
     * bc1 = 1 - b1^t, bc2 = 1 - b2^t. */
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                  float b2, float eps, float wd, float bc1, float bc2, float gscale);

    /* --- conversions (round to nearest even on the way down) */
    void (*bf16_to_f32)(float *dst, const uint16_t *src, size_t n);
    void (*f16_to_f32)(float *dst, const uint16_t *src, size_t n);
    void (*f32_to_bf16)(uint16_t *dst, const float *src, size_t n);
    void (*f32_to_f16)(uint16_t *dst, const float *src, size_t n);

    /* --- held (quantised) weights, simd/quant.h; plain products, no FMA, so every ISA is
     * bitwise the scalar reference.
     * dequant_4bit_f32: dst[k] = code[nibble(i0 + k)] * scale[(i0 + k) / 64 - i0 / 64] for
     *   k < n, nibble(i) = the high nibble of packed[i / 2] for even i, the low one for odd.
     * dequant_int8_f32: dst[k] = ((float)q[k] * s) * (float)(1 / 127). */
    void (*dequant_4bit_f32)(float *dst, const uint8_t *packed, size_t i0, int n, const float *code, const float *scale);
    void (*dequant_int8_f32)(float *dst, const int8_t *q, int n, float s);
    /* LoRA dropout of elements [i0, i0 + n) (model/layers.h lora_dropout): y[k] = (acc ? y[k] : 0)
     * + x[k] * keep(i0 + k), keep(i) = 1 / (1 - p) when u(i) >= p, else 0, where u(i) = (h >> 40) *
     * 2^-24 and h = splitmix64's finaliser of seed + 0x9e3779b97f4a7c15 * (i + 1): the mask of
     * element i depends on (seed, i) only. Integer hashing and one product (and sum) per element:
     * every ISA bitwise the scalar (quant.c dropout_f32_scalar). */
    void (*dropout_f32)(float *y, const float *x, size_t i0, size_t n, float p, uint64_t seed, int acc);
    /* --- GGML block quantisers (simd/ggml_quant.h; GGUF export): nb blocks of 32 values
     * of x into y, byte-identical to llama.cpp's quantize_row_q8_0_ref / q4_0_ref */
    void (*quant_q8_0)(const float *x, void *y, int64_t nb);
    void (*quant_q4_0)(const float *x, void *y, int64_t nb);

    /* --- register-only peak probes (hone info, bench_gemm; never on the training
     * path): iters iterations of HONE_PROBE_CHAINS independent chains that touch no
     * memory; each returns the FLOPs it did and writes lane 0 of chain c to out[c]
     * (so no chain is dead code). 12 chains cover FMA latency x pipes on the x86 and
     * Arm cores met (4 cycles x 2-3 pipes).
     * probe_fma_f32: chain c starts at c, a = a * 0.999999f + 1e-7f (one fused
     *   multiply-add per vector where the ISA has FMA; 2 FLOPs per lane).
     * probe_dot_bf16: chain c starts at c, a += 0.0625 * 0.0625 + 0.0625 * 0.0625 per
     *   fp32 lane (AVX512-BF16 vdpbf16ps, Arm BFDOT: 4 FLOPs per lane), so
     *   out[c] = c + iters / 128 exactly while below 2^17 (Arm BFMMLA: 32 FLOPs per
     *   instruction, each row (0.0625, 0.0625, 0, 0), the same sums). NULL where the CPU,
     *   OS or build has no bf16 dot-product unit; probe_bf16_unit then is NULL too. */
    double (*probe_fma_f32)(long iters, float *out);
    double (*probe_dot_bf16)(long iters, float *out);
    const char *probe_fma_unit;  /* what probe_fma_f32 runs, e.g. "zmm FMA" */
    const char *probe_bf16_unit; /* e.g. "vdpbf16ps zmm", NULL when none */
} hone_kernels;

extern hone_kernels hone_kt;

/* Fills hone_kt: scalar first, then the best supported ISA (or HONE_ISA).
 * Returns 0, or -1 when HONE_ISA names an ISA this CPU/OS/build cannot run
 * (the table then stays on the best supported one). Idempotent. */
int kernels_init(void);

/* What the CPU and OS support (independent of what was chosen). */
int kernels_cpu_has(const char *isa); /* also "avx512bf16" (CPUID.(7,1):EAX bit 5) and "amx-bf16" (CPUID, XCR0,
                                       * arch_prctl granting the tiles: reported by hone info; no AMX kernel yet);
                                       * on aarch64 "neon-bf16" (HWCAP2_BF16) */
/* Fills *t with the kernels of one ISA (scalar entries where the ISA has none).
 * Returns -1 if that ISA is not built or not supported here. Used by tests. */
int kernels_get(const char *isa, hone_kernels *t);

/* Measured peak of one probe of t, in GFLOP/s. */
typedef struct hone_peak {
    double cpu;  /* sum over threads of FLOPs / that thread's CPU time: the cores' own peak,
                    which a busy (shared) machine does not lower */
    double wall; /* all threads' FLOPs / wall time */
    int threads; /* threads that ran (1 without OpenMP) */
} hone_peak;
/* Runs t's probe (bf16 = 0: probe_fma_f32, 1: probe_dot_bf16) on nthreads threads,
 * each its own loop: a short calibration, then the best of 3 runs of ~25 ms
 * (~0.1 s in all). Returns -1 (and zeroes *p) when t has no such probe. */
int kernels_peak(const hone_kernels *t, int bf16, int nthreads, hone_peak *p);

/* Chooses t->gemm_bf16: the dot unit (gemm_bf16_dot) when t has one and its probe
 * peak is above the fp32 FMA probe's (one thread), else gemm_bf16_rounded.
 * HONE_BF16_PATH=dot|rounded forces it (dot where there is one). Runs both probes
 * (~0.2 s) unless forced; writes a line saying what was chosen and why to why.
 * Called once before training starts, never while kernels run. */
void kernels_select_bf16(hone_kernels *t, char *why, size_t why_size);

/* Per-ISA fillers (each in its own file, built with its own flags). */
void kernels_fill_scalar(hone_kernels *t);
void kernels_fill_avx2(hone_kernels *t);
void kernels_fill_avx512(hone_kernels *t);
void kernels_fill_neon(hone_kernels *t);
void kernels_fill_neon_bf16(hone_kernels *t); /* Arm BF16 (BFDOT): after kernels_fill_neon, where HWCAP2_BF16 */
void f32_to_bf16_neon_packs(uint16_t *dst, const float *src, size_t n); /* kernels_neon.c's f32_to_bf16 */
/* the held-weight kernels of quant_avx2.c / quant_avx512.c / quant_neon.c (dispatch.c calls
 * them after the ISA's own filler) */
void quant_fill_avx2(hone_kernels *t);
void quant_fill_avx512(hone_kernels *t);
void quant_fill_neon(hone_kernels *t);

/* Scalar references, callable directly by tests. */
float rmsnorm_fwd_scalar(float *out, const float *x, const float *w, float w_off, float eps, int n);
/* gemm_bf16_dot's order and rounding in C (gemm.h, gemm_arch_bf16): what every ISA's
 * dot path is tested bitwise against. */
void gemm_bf16_dot_scalar(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float beta, float *C, int ldc);
/* The same pair layout and order with Arm BF16's arithmetic (BFDOT / BFMMLA without
 * FEAT_EBF16 or with FPCR.EBF = 0): per pair s = RO(s + RO(a0*b0 + a1*b1)), products
 * exact, RO = round to odd (overflow to infinity), bf16 subnormal inputs and fp32
 * subnormal results flushed to zero; an odd count of pairs in a K block is followed by
 * a +0 pair (BFMMLA takes pairs two at a time), turning a -0 sum into +0. */
void gemm_bf16_bfdot_scalar(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                            float beta, float *C, int ldc);
#endif
