/* model/layers.h — the transformer's layers as forward/backward pairs (CPU backend).
 * Each op threads over rows with one level of OpenMP and calls the kernel table
 * (simd/kernels.h) for the inner loops. Reductions over tokens (weight and bias
 * gradients) use a fixed partition of rows, so results are bitwise identical for
 * any thread count. Backward ops ACCUMULATE into parameter gradients. */
#ifndef HONE_LAYERS_H
#define HONE_LAYERS_H
#include "model/batch.h"
#include <stddef.h>

/* Scratch for order-fixed reductions: at least layers_reduce_floats(C) floats. */
size_t layers_reduce_floats(int C);

/* out (N, OC) = in (N, IC) @ W^T (W: (OC, IC)) + b (OC, or NULL) */
void matmul_forward(float *out, const float *in, const float *W, const float *b, int N, int IC, int OC);
/* din (N, IC) = (accumulate ? din : 0) + dout @ W;  dW (OC, IC) += dout^T @ in;  db (OC) += sum_rows dout.
 * din may be NULL (no input gradient), dW and db may be NULL (a frozen weight: no gradient). */
void matmul_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N, int IC,
                     int OC, int accumulate);
/* The same with W held (simd/quant.h): the CPU's simd/qgemm.c products, bitwise matmul_* of the
 * dequantised W; frozen, so only din. */
struct hone_qtensor;
void qmatmul_forward(float *out, const float *in, const struct hone_qtensor *W, const float *b, int N, int IC, int OC);
void qmatmul_backward(float *din, const float *dout, const struct hone_qtensor *W, int N, int IC, int OC, int accumulate);
/* bf16: true (torch CPU autocast's linear): the same with both operands of every product
 * rounded to bf16 and fp32 sums (kernels.h gemm_bf16); the forward's out is rounded to
 * bf16 after the bias (itself rounded) is added, as autocast returns linear's output in bf16.
 * The backward's products take bf16 operands too; din, dW and db stay fp32 sums. */
void matmul_forward_bf16(float *out, const float *in, const float *W, const float *b, int N, int IC, int OC);
void matmul_backward_bf16(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N,
                          int IC, int OC, int accumulate);
/* bf16: true with W held: the same autocast products on the dequantised W (simd/qgemm.c
 * qgemm_*_bf16: a bf16-held W enters the bf16 unit as stored), bitwise matmul_*_bf16 of it */
void qmatmul_forward_bf16(float *out, const float *in, const struct hone_qtensor *W, const float *b, int N, int IC, int OC);
void qmatmul_backward_bf16(float *din, const float *dout, const struct hone_qtensor *W, int N, int IC, int OC, int accumulate);

/* LoRA (PEFT's lora.Linear) on top of a linear layer: out += scale * dropout(x) A^T B^T.
 * lora_dropout: y (n) = x * mask / (1 - p), the mask a hash of (seed, element index), so it
 *   is the same at any thread count and can be rebuilt in the backward pass (y may be x's copy).
 * lora_forward: su (N, r) = scale * xd (N, IC) @ A^T (A: (r, IC)), kept for the backward;
 *   out (N, OC) += su @ B^T (B: (OC, r)).
 * lora_backward: dB (OC, r) += dout^T @ su;  du (N, r) = scale * dout @ B (scratch);
 *   dA (r, IC) += du^T @ xd;  din (N, IC) += mask(du @ A) / (1 - p) (dxd: (N, IC) scratch,
 *   used only when p > 0; din may be NULL). xd is the dropped-out input the forward used. */
void lora_dropout(float *y, const float *x, size_t n, float p, uint64_t seed);
void lora_forward(float *out, float *su, const float *xd, const float *A, const float *B, float scale, int N, int IC, int OC,
                  int r);
void lora_backward(float *din, float *dA, float *dB, float *du, float *dxd, const float *dout, const float *xd, const float *su,
                   const float *A, const float *B, float scale, int N, int IC, int OC, int r, float p, uint64_t seed);

/* out (N, C) = rmsnorm(x) * (off + w); rstd (N) saved for backward */
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, float off, float eps, int N, int C);
/* dx (N, C) += d/dx;  dw (C) += ... (dw may be NULL: frozen);  scratch: layers_reduce_floats(C) floats */
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, float off,
                      int N, int C, float *scratch);

/* cos, sin (N, D/2) from positions (N) and inv_freq (D/2) */
void rope_tables(float *cos, float *sin, const int32_t *pos, const float *inv_freq, int N, int D);
/* x (N, nh, D) rotated in place; backward applies the inverse rotation to the gradient */
void rope_forward(float *x, const float *cos, const float *sin, int N, int nh, int D);
void rope_backward(float *dx, const float *cos, const float *sin, int N, int nh, int D);

/* att (B, T, H*D), lse (B, H, T); q (B, T, H*D), k, v (B, T, KV*D); spans from the batch */
void attention_forward(float *att, float *lse, const float *q, const float *k, const float *v, const hone_batch *b, int H,
                       int KV, int D);
/* dq written; dk, dv written (zeroed first) */
void attention_backward(float *dq, float *dk, float *dv, const float *datt, const float *att, const float *lse,
                        const float *q, const float *k, const float *v, const hone_batch *b, int H, int KV, int D);

/* h (N, F) = act(gate) * up */
void glu_forward(float *h, const float *gate, const float *up, size_t n, int act);
void glu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n, int act);

/* x (N, C) = E[tokens] * scale */
void embedding_forward(float *x, const float *E, const int32_t *tokens, int N, int C, float scale);
/* dE (V, C) += scatter(dx * scale), in token order (deterministic); dE NULL: nothing (frozen) */
void embedding_backward(float *dE, const float *dx, const int32_t *tokens, int N, int C, float scale);

/* y (n) += x (n) */
void residual_add(float *y, const float *x, size_t n);
/* sum of squares in double, fixed order (for gradient norms) */
double layers_sumsq(const float *x, size_t n);
#endif
