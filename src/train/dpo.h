/* train/dpo.h — Direct Preference Optimization on tokenized (prompt, chosen,
 * rejected) triples: the batch layouts, reference log-probabilities (a frozen
 * reference model, precomputed once, synced, or none), the loss through
 * dpo_loss.h with every TRL loss type, backpropagation through per-token
 * log-probs, and TRL's metrics.
 *
 * Two layouts give the same numbers (tests/test_dpo.c):
 *   pairs:   rows prompt+chosen and prompt+rejected, as TRL builds them;
 *   shared:  one row prompt | chosen | p_last rejected — the prompt is run once;
 *            the rejected segment attends to the prompt through the batch's
 *            prefix span, and starts with a copy of the prompt's last token (same
 *            position, same keys) whose logits predict the first rejected token. */
#ifndef HONE_DPO_H
#define HONE_DPO_H
#include "train/dpo_loss.h"
#include "train/train.h"

typedef struct hone_tok_pair {
    int32_t *prompt; int np;    /* (np) */
    int32_t *chosen; int nc;    /* (nc) completion tokens, scored */
    int32_t *rejected; int nr;  /* (nr) */
} hone_tok_pair;

typedef struct dpo_opts {
    dpo_loss_opts loss;
    int batch_size, eval_batch_size, accum;
    int shared_prompt;     /* 1: shared layout, 0: pairs */
    int shuffle;           /* shuffle pairs each epoch from the seed (1), or file order (0) */
    int drop_last;         /* leave out each epoch's and the evaluation's last partial batch */
    uint64_t seed;         /* data order */
    double epochs;
    long max_steps;
    long logging_steps, eval_steps, save_steps;
    int logging_first_step;   /* also log after step 1 */
    int precompute_batch_size; /* > 0: rows per batch of dpo_precompute_ref (else the eval batch size) */
    int eval_on_start;
    int grad_ckpt;
    int pad_id;
    int sync_ref_model;
    double ref_model_mixup_alpha;
    long ref_model_sync_steps;
    int quiet;
} dpo_opts;

/* Reference log-probs per pair, each side "shared + ld_alpha * tail" as the loss
 * wants them (dpo_loss_input_set_ref_pair). */
typedef struct dpo_ref_logps {
    double *chosen, *rejected; /* (n) */
    long n;
} dpo_ref_logps;

/* Computes ref log-probs of every pair with model ref (forward only). */
int dpo_precompute_ref(hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n, dpo_ref_logps *out,
                       hone_error *err);
void dpo_ref_logps_free(dpo_ref_logps *r);
/* The key of precomputed reference log-probs: SHA-256 of everything they depend on — the
 * reference model (config and parameters), the tokenized pairs (so the data, tokenizer, chat
 * template and length settings), ld_alpha and the batch layout. */
void dpo_ref_cache_key(const hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n, uint8_t key[32]);
/* Saves / loads precomputed reference log-probs (safetensors, with their key) so a run keeps
 * them; loading fails, saying why, unless the stored key and pair count match. */
int dpo_ref_logps_save(const dpo_ref_logps *r, const char *path, const uint8_t key[32], hone_error *err);
int dpo_ref_logps_load(dpo_ref_logps *r, const char *path, long n, const uint8_t key[32], hone_error *err);
/* Reuses path when its key matches, else computes the log-probs with ref and (re)writes path;
 * stderr says which, and why a present file was not reused. */
int dpo_ref_logps_cached(hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n, const char *path,
                         dpo_ref_logps *out, hone_error *err);

typedef struct dpo_step_result {
    double loss;
    dpo_loss_metrics m;
    double logits_chosen, logits_rejected; /* mean logit over completion tokens and the vocabulary */
    double entropy, accuracy;              /* over completion tokens */
    long n_tokens;                          /* non-padding input tokens (prompt counted per row, as TRL) */
} dpo_step_result;

/* Buffers for micro-batches of up to batch_size pairs from `pairs` (sized from
 * their longest prompt and completions), allocated once. */
typedef struct dpo_ws {
    hone_acts acts;        /* policy activations (train) */
    hone_acts ref_acts;    /* reference forward (inference), when a ref model is used */
    hone_batch batch;
    float *w;              /* (N) per-slot loss weights for the backward head pass */
    int32_t *c_slot, *r_slot; /* (P) first target slot of each pair's chosen / rejected tokens */
    float *buf_c, *buf_r, *buf_c2, *buf_r2; /* (max completion) per-token scratch */
    dpo_loss_input in;
    dpo_loss_output out;
    int cap_pairs, max_c;
} dpo_ws;
int dpo_ws_init(dpo_ws *ws, const hone_model_config *c, const dpo_opts *o, int cap_pairs, const hone_tok_pair *pairs,
                long n, int with_ref, int train, hone_error *err);
void dpo_ws_free(dpo_ws *ws);

/* One micro-batch of pairs idx[0..n): fills res; with g, accumulates the
 * gradient of scale * loss. ref: a reference model (NULL: refs or reference_free). */
int dpo_micro_batch(dpo_ws *ws, hone_model *m, hone_weights *g, hone_model *ref, const dpo_opts *o, dpo_loss_state *state,
                    const hone_tok_pair *pairs, const long *idx, int n, const dpo_ref_logps *refs, float scale,
                    dpo_step_result *res, hone_error *err);

long dpo_total_steps(const dpo_opts *o, long n_pairs);
/* Training loop (same conventions as sft_train). refs may be NULL when ref != NULL or reference_free. */
int dpo_train(hone_trainer *t, hone_model *ref, const dpo_opts *o, const hone_tok_pair *train, long n_train,
              const dpo_ref_logps *train_refs, const hone_tok_pair *eval, long n_eval, const dpo_ref_logps *eval_refs,
              hone_error *err);
/* Evaluation over pairs in batches of eval_batch_size: the loss averaged over batches
 * weighted by their pairs, the metrics plain means over batches (transformers + TRL). */
int dpo_evaluate(hone_model *m, hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n,
                 const dpo_ref_logps *refs, dpo_step_result *res, hone_error *err);
#endif
