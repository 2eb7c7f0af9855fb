/* model/transformer.h — the model's forward and backward passes over a batch, with
 * an explicit activations struct planned and allocated once (llm.c style).
 *
 *   model_forward   tokens -> final normalized hidden states xf        (B, T, C)
 *   model_head      xf -> per-token log-probs of the labels, entropy,
 *                   accuracy; with grads, d(sum_t w_t * -logp_t) into the
 *                   lm_head/embedding gradient and into dxf, computed over the
 *                   labelled slots in row chunks so (B, T, V) logits never exist
 *   model_backward  dxf -> every parameter gradient (accumulated)
 *
 * Gradient checkpointing keeps only each layer's input and recomputes the
 * layer's activations during the backward pass. */
#ifndef HONE_TRANSFORMER_H
#define HONE_TRANSFORMER_H
#include "model/backend.h"
#include "model/batch.h"
#include "model/model.h"

typedef struct hone_layer_acts {
    float *x;     /* (N, C) layer input (the residual stream) */
    float *rstd1; /* (N) */
    float *ln1;   /* (N, C) */
    float *q;     /* (N, H*D) after RoPE */
    float *k;     /* (N, KV*D) after RoPE */
    float *v;     /* (N, KV*D) */
    float *att;   /* (N, H*D) attention output */
    float *lse;   /* (B, H, T) attention log-sum-exp */
    float *xm;    /* (N, C) residual after attention */
    float *rstd2; /* (N) */
    float *ln2;   /* (N, C) */
    float *gate;  /* (N, F) */
    float *up;    /* (N, F) */
    float *h;     /* (N, F) act(gate) * up */
    float *lora_su[7]; /* (N, r) per adapted module (LORA_*): scale * dropout(x) A^T, or NULL */
} hone_layer_acts;

typedef struct hone_acts {
    int B, T;               /* capacity: batches up to B x T */
    int train, ckpt;
    int head_chunk;         /* rows of logits computed at once */
    hone_layer_acts *layers; /* (L); with ckpt or !train all but x share one set */
    float *x_final;         /* (N, C) residual after the last layer */
    float *rstd_f;          /* (N) */
    float *xf;              /* (N, C) final norm output */
    float *cos, *sin;       /* (N, D/2) RoPE tables of the batch */
    /* per-slot outputs of model_head (valid where labels >= 0) */
    float *tok_logp;        /* (N) log p(label) */
    float *tok_entropy;     /* (N) entropy of the predictive distribution */
    float *tok_correct;     /* (N) 1 when argmax == label */
    float *tok_logit_sum;   /* (N) sum of the V logits */
    float *tok_lssp;        /* (N) logsumexp(2z) - 2 logsumexp(z), when want_lssp (WPO) */
    float *tok_loss;        /* (N) the per-token loss head_loss asks for (-logp by default) */
    int want_lssp;
    hone_head_loss head_loss;  /* zero: NLL; SFT's loss_type dft / label_smoothing_factor */
    float neftune_alpha;       /* > 0 (training acts): NEFTune noise added to the embeddings */
    uint64_t neftune_seed;     /* with neftune_calls, seeds each forward's noise (deterministic) */
    uint64_t neftune_calls;
    int32_t *rows;          /* (N) labelled slots, in order */
    int32_t *row_labels;    /* (N) their labels */
    float *head_x;          /* (chunk, C) gathered xf rows */
    float *head_logits;     /* (chunk, V) */
    float *head_dx;         /* (chunk, C) */
    /* backward scratch */
    float *dx;              /* (N, C) gradient of the residual stream */
    float *dxf;             /* (N, C) */
    float *dln;             /* (N, C) */
    float *datt;            /* (N, H*D) */
    float *dq;              /* (N, H*D) */
    float *dk, *dv;         /* (N, KV*D) */
    float *dgate, *dup, *dh; /* (N, F) */
    float *red;             /* reduction scratch */
    void *mem;              /* the one allocation everything above is carved from */
    size_t bytes;
    /* LoRA (model/lora.h), planned by acts_init_model when the model has adapters */
    int lora_off;           /* 1: run the base alone (adapters and modules_to_save off: DPO's reference) */
    int lora_no_dropout;    /* 1: lora_dropout off while training too (DPO: TRL's disable_dropout) */
    uint64_t lora_seed;     /* lora_dropout's masks: a hash of (seed, forward number, layer, module, element) */
    uint64_t lora_calls, lora_call; /* a training forward takes ++lora_calls as its number (trainers set lora_calls
                             * from the step and micro-batch first, so a resume draws the same masks); a
                             * checkpointed layer's recomputation reuses lora_call */
    float *lora_xd;         /* (N, max in) the dropped-out input of one linear (lora_dropout > 0) */
    float *lora_dxd;        /* (N, max in) its gradient (lora_dropout > 0, training) */
    float *lora_du;         /* (N, r) backward scratch */
    void *lora_mem;         /* the LoRA buffers' allocation */
    /* called by model_backward after layer l's gradients are complete (l = L-1 ... 0), then
     * with l = -1 once every gradient is: data-parallel training starts reducing them there */
    void (*layer_done)(void *ctx, int l);
    void *layer_done_ctx;
} hone_acts;

/* Plans and allocates activations for batches up to B x T. train: keep what
 * backward needs; ckpt: recompute per layer instead of keeping everything. */
int acts_init(hone_acts *a, const hone_model_config *c, int B, int T, int train, int ckpt, hone_error *err);
size_t acts_plan_bytes(const hone_model_config *c, int B, int T, int train, int ckpt);
/* acts_init plus what the model's LoRA adapters need (m->lora, or nothing without);
 * acts_add_lora adds that to activations acts_init planned (no-op without adapters). */
int acts_add_lora(hone_acts *a, const hone_model *m, hone_error *err);
int acts_init_model(hone_acts *a, const hone_model *m, int B, int T, int train, int ckpt, hone_error *err);
/* Bytes acts_init_model adds for LoRA adapters lo (r, targets, dropout) on config c. */
struct hone_lora;
size_t acts_lora_bytes(const hone_model_config *c, const struct hone_lora *lo, int B, int T, int train, int ckpt);
void acts_free(hone_acts *a);

void model_forward(const hone_model *m, hone_acts *a, const hone_batch *b);
/* Returns sum_t w_t * loss_t over labelled slots (w: (N) or NULL for the constant
 * wscale), loss_t = -logp_t unless a->head_loss asks for DFT or label smoothing.
 * g: NULL for forward only; else gradients are accumulated into g and a->dxf is
 * written for model_backward. */
double model_head(const hone_model *m, hone_acts *a, const hone_batch *b, const float *w, float wscale, hone_weights *g);
void model_backward(const hone_model *m, hone_acts *a, const hone_batch *b, hone_weights *g);
/* Full logits (n_rows, V) of the given slots (after model_forward). */
void model_logits(const hone_model *m, const hone_acts *a, const int32_t *slots, int n_rows, float *out);
#endif
