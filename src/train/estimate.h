/* train/estimate.h — a training run's peak memory, planned before anything is allocated
 * (`hone estimate`, and the pre-flight check of `hone sft` / `hone dpo`), and the memory this
 * process may use (the cgroup limit, MemAvailable).
 *
 * The plan adds what the run allocates: the weights as held (hone keeps fp32 parameters), the
 * gradients and optimizer state of the trained tensors (the whole model, or the LoRA adapters),
 * the activations of the configured batch at max_length (with and without gradient
 * checkpointing: acts_plan_bytes, acts_lora_bytes), a DPO reference model and its activations
 * when it is a second model (no LoRA, no precompute_ref_log_probs), and a fixed workspace. The
 * peak is the larger of that and the load (the weights plus the largest tensor as stored, whose
 * file pages are in memory while it is converted, and a held linear's fp32 scratch). */
#ifndef HONE_ESTIMATE_H
#define HONE_ESTIMATE_H
#include "train/train_config.h"
#include "model/model.h"

typedef struct hone_mem_estimate {
    double weights;        /* bytes of the model's weights as held */
    double grads;          /* gradients of the trained tensors (and their fp64 sums when acc64) */
    int acc64;             /* grad_accum_dtype fp64 with more than one micro-batch a step */
    double optim;          /* optimizer state (optim: 8-bit state about a quarter) */
    double acts;           /* activations with the configured gradient_checkpointing */
    double acts_ckpt, acts_full; /* activations with / without gradient checkpointing */
    double lora;           /* adapter weights (LoRA runs) */
    double ref;            /* DPO reference model + its activations (0: adapters off, or precomputed) */
    double load_extra;     /* loading: the largest tensor as stored (+ a held linear's fp32 scratch) */
    double workspace;      /* program, tokenizer, data, buffers */
    double total;          /* the peak: max(load, training) */
    long B, T;             /* the batch rows and length planned for */
    size_t n_params, n_trained;
    char held[32];         /* what the decoder linears are held in (simd/quant.h names) */
} hone_mem_estimate;

/* The estimate for cfg (its model directory's config.json, or an adapter's base). */
int estimate_run(const hone_train_config *cfg, hone_mem_estimate *e, hone_error *err);
/* Bytes this process may still allocate: min(MemAvailable, cgroup memory.max - usage); 0 unknown. */
double estimate_available(char *how, size_t how_n);
/* Prints the breakdown (as accelerate's estimate-memory: one table, sizes in GB). */
void estimate_print(FILE *f, const hone_train_config *cfg, const hone_mem_estimate *e, double avail, const char *how);
/* The pre-flight check: 0 when the estimate fits (or HONE_NO_MEMORY_CHECK=1), else -1 with a
 * message giving the estimate, what is available and the settings that would fit. */
int estimate_check(const hone_train_config *cfg, hone_error *err);
#endif
