/* model/backend.h — where tensors live and how the model's operations run.
 * The transformer (transformer.c) reaches memory and every operation through a
 * hone_backend, so a backend whose tensors live in device memory (CUDA, in gpu/)
 * plugs in without touching the model code. The CPU backend (backend_cpu.c) maps
 * the operations onto layers.c and the kernel table.
 *
 * Boundary: parameters, gradients and activations are backend memory; batches
 * (token ids, positions, spans, labels) and the per-token outputs of the loss
 * head (log-probs, entropy, ...) are small host arrays the backend copies as it
 * needs. All operations have the semantics documented in layers.h. */
#ifndef HONE_BACKEND_H
#define HONE_BACKEND_H
#include "model/batch.h"
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>

struct hone_qtensor;

/* The per-token loss the LM head computes (SFTConfig.loss_type, label_smoothing_factor). */
enum { HONE_LOSS_NLL = 0, HONE_LOSS_DFT = 1 };
typedef struct hone_head_loss {
    int kind;               /* HONE_LOSS_NLL or HONE_LOSS_DFT */
    float label_smoothing;  /* transformers' LabelSmoother epsilon (NLL only); 0 = off */
} hone_head_loss;

typedef struct hone_backend {
    const char *name;   /* "cpu", "cuda" */
    int device_memory;  /* 1: tensors are not addressable from the host */

    void *(*alloc)(size_t bytes, hone_error *err); /* zeroed, 64-byte aligned */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);

    /* layers (layers.h) */
    void (*matmul_forward)(float *out, const float *in, const float *W, const float *b, int N, int IC, int OC);
    void (*matmul_backward)(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N,
                            int IC, int OC, int accumulate);
    /* the same products with a held (quantised, frozen) W (simd/quant.h): out = in W^T + b, and
     * din = (accumulate ? din : 0) + dout W (no weight gradient: the held base is frozen) */
    void (*qmatmul_forward)(float *out, const float *in, const struct hone_qtensor *W, const float *b, int N, int IC, int OC);
    void (*qmatmul_backward)(float *din, const float *dout, const struct hone_qtensor *W, int N, int IC, int OC, int accumulate);
    void (*lora_dropout)(float *y, const float *x, size_t n, float p, uint64_t seed);
    void (*lora_forward)(float *out, float *su, const float *xd, const float *A, const float *B, float scale, int N, int IC,
                         int OC, int r);
    void (*lora_backward)(float *din, float *dA, float *dB, float *du, float *dxd, const float *dout, const float *xd,
                          const float *su, const float *A, const float *B, float scale, int N, int IC, int OC, int r, float p,
                          uint64_t seed);
    void (*rmsnorm_forward)(float *out, float *rstd, const float *x, const float *w, float off, float eps, int N, int C);
    void (*rmsnorm_backward)(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                             float off, int N, int C, float *scratch);
    size_t (*reduce_floats)(int C);
    void (*rope_tables)(float *cos, float *sin, const int32_t *pos, const float *inv_freq, int N, int D);
    void (*rope_forward)(float *x, const float *cos, const float *sin, int N, int nh, int D);
    void (*rope_backward)(float *dx, const float *cos, const float *sin, int N, int nh, int D);
    void (*attention_forward)(float *att, float *lse, const float *q, const float *k, const float *v, const hone_batch *b,
                              int H, int KV, int D);
    void (*attention_backward)(float *dq, float *dk, float *dv, const float *datt, const float *att, const float *lse,
                               const float *q, const float *k, const float *v, const hone_batch *b, int H, int KV, int D);
    void (*glu_forward)(float *h, const float *gate, const float *up, size_t n, int act);
    void (*glu_backward)(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n, int act);
    void (*embedding_forward)(float *x, const float *E, const int32_t *tokens, int N, int C, float scale);
    void (*embedding_backward)(float *dE, const float *dx, const int32_t *tokens, int N, int C, float scale);
    void (*residual_add)(float *y, const float *x, size_t n);

    /* bf16: true (matmul_* and gemm then take bf16 operands): x = bf16(x) in place, for the
     * outputs autocast returns in bf16 (the head's logits); NULL on the fp32 backend */
    void (*round_bf16)(float *x, size_t n);

    /* the loss head, a chunk of rows at a time */
    void (*gemm)(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                 int ldc);
    void (*gather_rows)(float *dst, const float *src, const int32_t *rows, int n, int C);  /* dst[i] = src[rows[i]] */
    void (*scatter_rows)(float *dst, const float *src, const int32_t *rows, int n, int C); /* dst[rows[i]] = src[i] */
    /* Per row i of logits (n, V) with label labels[i]: log p(label), entropy, argmax == label,
     * sum of logits, and (lssp non-NULL) logsumexp(2z) - 2 logsumexp(z), into host arrays
     * at index out_idx[i]; with coef non-NULL the row is replaced by
     * coef[out_idx[i]] * (softmax - onehot(label)) — the gradient of coef * -logp.
     * loss: the per-token loss (head.h's HONE_LOSS_*: -logp; DFT -logp * p with p detached;
     * label smoothing (1 - eps) * -logp + eps * mean_v(-log p_v)) into loss_term[out_idx[i]],
     * and the row's gradient is that loss's. */
    void (*ce_rows)(float *logits, int n, int V, const int32_t *labels, const int32_t *out_idx, const float *coef,
                    float coef_const, float *logp, float *entropy, float *correct, float *logit_sum, float *lssp,
                    const hone_head_loss *loss, float *loss_term);
} hone_backend;

const hone_backend *backend_cpu(void);
/* The CPU backend with `bf16: true`'s matrix products (torch CPU autocast to bf16):
 * matmul_forward/backward and gemm on kernels.h's gemm_bf16, linear outputs and the
 * head's logits rounded to bf16; everything else (norms, RoPE, attention, softmax,
 * losses, LoRA adapters, the optimizer) as backend_cpu, in fp32. */
const hone_backend *backend_cpu_bf16(void);
/* "auto" (the CUDA backend when built and a device is present, else CPU), "cpu", "cuda". */
const hone_backend *backend_select(const char *name, hone_error *err);
#endif
