/* train/optim.h — AdamW (decoupled weight decay, bias correction, as torch.optim.AdamW),
 * bitsandbytes' blockwise 8-bit AdamW (optim: adamw_8bit / paged_adamw_8bit), and global-norm
 * gradient clipping (torch.nn.utils.clip_grad_norm_).
 *
 * 32-bit moments are laid out like the trained parameters (model.h, or a LoRA run's adapters:
 * model/lora.h). The 8-bit state follows bitsandbytes 0.50's CPU path: per tensor of at least
 * 4096 elements (min_8bit_size), m and v as one byte each, quantised in blocks of 256 with the
 * block's absmax (fp32) against the dynamic map (signed for m, unsigned for v,
 * create_dynamic_map); smaller tensors, and embeddings (transformers registers nn.Embedding
 * weights for 32-bit state), keep fp32 moments and bitsandbytes' 32-bit update. State memory
 * is then about 2 bytes + 8/256 per element instead of 8. */
#ifndef HONE_OPTIM_H
#define HONE_OPTIM_H
#include "model/model.h"
#include <stdint.h>

enum { HONE_OPTIM_ADAMW = 0, HONE_OPTIM_ADAMW_8BIT = 1 };
#define OPTIM_8BIT_BLOCK 256
#define OPTIM_8BIT_MIN_SIZE 4096
#define OPTIM_LUT_SIZE 65536

typedef struct hone_adamw {
    int kind;          /* HONE_OPTIM_ADAMW or HONE_OPTIM_ADAMW_8BIT */
    float *m, *v;      /* fp32 moments, owned: (n) laid out like the parameters (adamw), or (n32)
                        * packed for the 32-bit tensors of an 8-bit optimizer (at soff[i]) */
    size_t n;
    long step;         /* optimizer steps taken */
    double b1, b2, eps, wd;
    /* 8-bit only; per trained tensor i (n_params): */
    int n_params;
    uint8_t *is8;      /* (n_params) 1: 8-bit state */
    size_t *soff;      /* (n_params) offset into m/v (32-bit tensors) or q1/q2 (8-bit ones) */
    size_t *boff;      /* (n_params) first block in absmax1/absmax2 (8-bit tensors) */
    size_t n32, nq, nblocks;
    uint8_t *q1, *q2;  /* (nq) quantised m and v */
    float *absmax1, *absmax2; /* (nblocks) */
    float qmap1[256], qmap2[256]; /* signed and unsigned dynamic maps */
    uint8_t *lut1, *lut2;         /* (OPTIM_LUT_SIZE) their quantisation tables */
} hone_adamw;

/* Moments for n floats: the trained tensors' buffer (the model's, or a LoRA run's adapters). */
int adamw_init(hone_adamw *o, size_t n, double b1, double b2, double eps, double wd, hone_error *err);
/* bitsandbytes' 8-bit AdamW over the n_params tensors of params (zeroed state). */
int adamw_init_8bit(hone_adamw *o, const hone_param *params, int n_params, double b1, double b2, double eps, double wd,
                    hone_error *err);
void adamw_free(hone_adamw *o);
/* Bytes of optimizer state: kind for n_params tensors (estimates, before allocating). */
size_t adamw_state_bytes(int kind, const hone_param *params, int n_params);
/* Which tensors bitsandbytes keeps in 8 bits (numel >= 4096, not an embedding). */
int adamw_8bit_eligible(const hone_param *p);
/* One update of the n_params tensors of params (offsets into data, g and the moments) with
 * gradient g, after scaling g by gscale. Tensors marked no_decay get no weight decay. */
void adamw_update(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale);
/* The same over the floats [lo, hi) of the tensors only, with moments m, v holding just that
 * range (m[0] is float lo): a ZeRO-1 shard. Element-wise, so the same bits as adamw_update. */
void adamw_update_range(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale,
                        size_t lo, size_t hi);

/* bitsandbytes' create_dynamic_map(signed) (sorted, 256 entries). */
void optim_dynamic_map(float code[256], int is_signed);
/* bitsandbytes' CPU quantisation table for code: [-1, 1] in 65536 steps to the nearest code. */
void optim_quantize_lut(const float code[256], uint8_t lut[OPTIM_LUT_SIZE]);
/* Blockwise quantisation of n floats (blocks of OPTIM_8BIT_BLOCK) as quantize_cpu (lut from
 * optim_quantize_lut) / its dequantisation: bytes and absmax per block. */
void optim_quantize_blockwise(const uint8_t *lut, const float *a, size_t n, uint8_t *out, float *absmax);
void optim_dequantize_blockwise(const float code[256], const uint8_t *q, const float *absmax, size_t n, float *out);

/* L2 norm over all gradients (double accumulation, fixed order) and the factor
 * clip_grad_norm_ would scale them by (1 when max_norm <= 0 or within bounds). */
double grad_global_norm(const float *g, size_t n);
float grad_clip_scale(double norm, double max_norm);
/* acc[i] += g[i] in double, then g[i] = 0: one micro-batch's gradient into the step's fp64 sum
 * (grad_accum_dtype fp64), g cleared for the next backward. Element-wise: any thread count. */
void grad_accumulate_f64(double *acc, float *g, size_t n);
#endif
