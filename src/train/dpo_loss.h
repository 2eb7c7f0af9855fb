/* train/dpo_loss.h — the DPO loss layer: every TRL 1.16 loss type and option as a pure function from
 * per-sequence log-probability sums to the batch loss, its gradient with respect to those sums, and
 * TRL's metrics. The model code computes per-token log-probs; this file never sees a token id.
 *
 * Data flow for one (micro-)batch of P preference pairs:
 *   1. for every pair p, the caller sums per-token values into the input struct, with
 *      dpo_loss_input_set_pair (policy) and dpo_loss_input_set_ref_pair, or by the formulas below;
 *   2. dpo_loss_compute gives the loss (averaged over the batch exactly as TRL's _compute_loss),
 *      dL/d(each per-sequence policy sum) and the metrics;
 *   3. dpo_loss_pair_token_grads turns those into dL/d(logp of every completion token), which the
 *      model backpropagates (logp_t = z_t[y_t] - logsumexp(z_t), so dL/dz_t = g_t * (onehot - softmax)).
 *
 * Per-token notation, for one sequence (prompt + completion): the completion tokens y_1..y_n are the
 * tokens whose TRL completion_mask is 1 and that the model predicts (all of them, since every TRL
 * sequence starts with at least one prompt token); logp_t = log pi(y_t | prompt, y_<t) under the
 * policy (temperature 1), lssp_t = log sum_v p_t(v)^2 = logsumexp(2 z_t) - 2 logsumexp(z_t) over the
 * vocabulary logits z_t of that prediction. For pair p, n_c and n_r are the chosen and rejected
 * completion lengths and k = min(n_c, n_r) (LD-DPO's "public" length). Then, per sequence:
 *   shared = sum_{t<=k} logp_t     tail = sum_{t>k} logp_t     (tail is 0 for the shorter one)
 *   len    = n                     wpo  = sum_{t<=n} (logp_t - lssp_t)    (only for use_weighting)
 * and TRL's sequence log-prob is logps = shared + a * tail with a = ld_alpha, or a = 1 when ld_alpha is
 * unset (None), i.e. the plain sum of the completion's token log-probs. The reference model's logps
 * are given already combined with the same formula (that is what TRL's precompute_ref_log_probs
 * stores), see dpo_loss_seq_logps. The gradient is uniform on each part: every token t <= k of a
 * sequence gets d_*_shared, every token t > k gets d_*_tail.
 *
 * Options TRL 1.16 no longer has, implemented as TRL 0.24.0 (trl/trainer/dpo_trainer.py) had them:
 * rpo_alpha (adds rpo_alpha * mean NLL of the chosen tokens, which 1.16 spells loss type "sft"),
 * reference_free (reference logps taken as 0), bco_pair_running_mean (0.24's bco_pair subtracted a
 * running mean of the rewards; 1.16's bco_pair does not). See docs/dpo.md for every formula.
 *
 * Ownership: dpo_loss_input_init / dpo_loss_output_init allocate the (P,) arrays once per batch
 * size, dpo_loss_*_free release them; dpo_loss_compute allocates nothing. The running-mean state is
 * the caller's (it must be checkpointed with the run to resume bitwise). */
#ifndef HONE_DPO_LOSS_H
#define HONE_DPO_LOSS_H
#include "base/error.h"

typedef enum dpo_loss_type {
    DPO_LOSS_SIGMOID,
    DPO_LOSS_HINGE,
    DPO_LOSS_IPO,
    DPO_LOSS_EXO_PAIR,
    DPO_LOSS_NCA_PAIR,
    DPO_LOSS_ROBUST,
    DPO_LOSS_BCO_PAIR,
    DPO_LOSS_SPPO_HARD,
    DPO_LOSS_AOT,
    DPO_LOSS_AOT_UNPAIRED,
    DPO_LOSS_APO_ZERO,
    DPO_LOSS_APO_DOWN,
    DPO_LOSS_DISCOPOP,
    DPO_LOSS_SFT,
    DPO_LOSS_SIGMOID_NORM,
    DPO_LOSS_N_TYPES
} dpo_loss_type;

typedef enum dpo_f_divergence {
    DPO_FDIV_REVERSE_KL,
    DPO_FDIV_FORWARD_KL,
    DPO_FDIV_JS_DIVERGENCE,
    DPO_FDIV_ALPHA_DIVERGENCE,
    DPO_FDIV_N_TYPES
} dpo_f_divergence;

#define DPO_LOSS_MAX_TYPES 16

/* DPOConfig's loss options, same names and defaults (dpo_loss_opts_default). */
typedef struct dpo_loss_opts {
    double beta;                                  // 0.1
    int n_loss_types;                             // 1; entries of loss_type/loss_weights in use
    dpo_loss_type loss_type[DPO_LOSS_MAX_TYPES];  // {sigmoid}
    double loss_weights[DPO_LOSS_MAX_TYPES];      // 1.0 each (TRL: loss_weights=None)
    double label_smoothing;                       // 0.0: robust, exo_pair (epsilon), aot, aot_unpaired
    dpo_f_divergence f_divergence_type;           // reverse_kl
    double f_alpha_divergence_coef;               // 0.5
    double discopop_tau;                          // 0.05
    int use_weighting;                            // 0: WPO weights
    int ld_alpha_set;                             // 0: ld_alpha is None
    double ld_alpha;                              // LD-DPO weight of the tail, in [0, 1]
    /* not in TRL 1.16 (see above) */
    int rpo_alpha_set;                            // 0: rpo_alpha is None
    double rpo_alpha;
    int reference_free;                           // 0
    int bco_pair_running_mean;                    // 0: bco_pair as TRL 1.16 (no running mean)
} dpo_loss_opts;

void dpo_loss_opts_default(dpo_loss_opts *o);

/* "sigmoid" -> DPO_LOSS_SIGMOID, ...; an unknown name fails with a message listing the valid ones. */
int dpo_loss_type_from_name(const char *name, dpo_loss_type *out, hone_error *err);
const char *dpo_loss_type_name(dpo_loss_type t);
int dpo_f_divergence_from_name(const char *name, dpo_f_divergence *out, hone_error *err);
const char *dpo_f_divergence_name(dpo_f_divergence f);

/* Sets loss_type from n names and loss_weights from weights (NULL: all 1.0, as TRL's None). */
int dpo_loss_opts_set_loss_types(dpo_loss_opts *o, const char *const *names, int n, const double *weights,
                                 hone_error *err);

/* TRL's constructor checks (f-divergence only with the losses built on the reward difference,
 * use_weighting not with aot*, exo_pair needs label_smoothing > 0) plus ranges TRL documents but
 * does not check (ld_alpha in [0,1], discopop_tau != 0). dpo_loss_compute calls it too. */
int dpo_loss_opts_validate(const dpo_loss_opts *o, hone_error *err);

/* Per-batch inputs; every array is (P,), index p = pair p. See the top of this file for the
 * per-token formula of each field. */
typedef struct dpo_loss_input {
    int n_pairs;               // P
    double *chosen_shared;     // (P,) policy: sum of logp_t over chosen tokens t <= k
    double *chosen_tail;       // (P,) policy: sum of logp_t over chosen tokens t > k
    double *rejected_shared;   // (P,) same for the rejected completion
    double *rejected_tail;     // (P,)
    double *ref_chosen;        // (P,) reference logps, combined: shared + a*tail (unused if reference_free)
    double *ref_rejected;      // (P,)
    int *chosen_len;           // (P,) n_c, completion tokens scored
    int *rejected_len;         // (P,) n_r
    double *chosen_wpo;        // (P,) sum_t (logp_t - lssp_t) over all n_c tokens; only read if use_weighting
    double *rejected_wpo;      // (P,)
} dpo_loss_input;

int dpo_loss_input_init(dpo_loss_input *in, int n_pairs, hone_error *err);
void dpo_loss_input_free(dpo_loss_input *in);

/* Fills pair p's policy fields from its per-token completion values, in completion order:
 * logp_c (n_c,), logp_r (n_r,) policy log-probs; lssp_c (n_c,), lssp_r (n_r,) log sum_v p_v^2, or
 * NULL when use_weighting is off. Sums in double. */
int dpo_loss_input_set_pair(dpo_loss_input *in, int p, const float *logp_c, int n_c, const float *logp_r,
                            int n_r, const float *lssp_c, const float *lssp_r, hone_error *err);
/* Fills ref_chosen[p], ref_rejected[p] from the reference model's per-token log-probs. */
int dpo_loss_input_set_ref_pair(dpo_loss_input *in, const dpo_loss_opts *o, int p, const float *ref_c, int n_c,
                                const float *ref_r, int n_r, hone_error *err);
/* TRL's sequence log-prob from the two parts: shared + ld_alpha * tail, or shared + tail. */
double dpo_loss_seq_logps(const dpo_loss_opts *o, double shared, double tail);

/* TRL's metrics for the batch (names in dpo_loss_metrics_list). */
typedef struct dpo_loss_metrics {
    double rewards_chosen;      // rewards/chosen     mean_p beta*(logps_c - ref_c)
    double rewards_rejected;    // rewards/rejected   mean_p beta*(logps_r - ref_r)
    double rewards_accuracies;  // rewards/accuracies mean_p [reward_c > reward_r]
    double rewards_margins;     // rewards/margins    mean_p (reward_c - reward_r)
    double logps_chosen;        // logps/chosen       mean_p logps_c
    double logps_rejected;      // logps/rejected     mean_p logps_r
    int has_nll_loss;           // when "sft" is in the list or rpo_alpha is set (TRL 0.24 logged it)
    double nll_loss;            // nll_loss: mean -logp_t over every chosen token of the batch
    int has_bco_running_mean;   // bco_pair_running_mean on and bco_pair in the list
    double bco_running_mean;    // the delta subtracted this step
} dpo_loss_metrics;

/* Up to 9 (name, value) pairs in TRL's naming ("rewards/chosen", ...); returns the count. */
int dpo_loss_metrics_list(const dpo_loss_metrics *m, const char **names, double *values);

typedef struct dpo_loss_output {
    int n_pairs;               // P
    double loss;               // the scalar TRL's _compute_loss returns
    double *d_chosen_shared;   // (P,) dL/d chosen_shared[p] = dL/d logp_t for chosen tokens t <= k
    double *d_chosen_tail;     // (P,) dL/d chosen_tail[p]   = dL/d logp_t for chosen tokens t > k
    double *d_rejected_shared; // (P,)
    double *d_rejected_tail;   // (P,)
    dpo_loss_metrics metrics;
    double *sort_key;          // (2P,) scratch: sort keys for aot / aot_unpaired
    int *sort_idx;             // (2P,) scratch: sort order
} dpo_loss_output;

int dpo_loss_output_init(dpo_loss_output *out, int n_pairs, hone_error *err);
void dpo_loss_output_free(dpo_loss_output *out);

/* Running statistics kept across steps (TRL 0.24 RunningMoments, one scalar per update). Only
 * bco_pair with bco_pair_running_mean uses it; checkpoint all three fields. */
typedef struct dpo_loss_state {
    double mean;   // 0
    double var;    // 1
    double count;  // 1e-24
} dpo_loss_state;

void dpo_loss_state_init(dpo_loss_state *s);

/* Computes loss, gradients and metrics for the batch. state may be NULL unless bco_pair runs with
 * bco_pair_running_mean (then it is updated with this batch's mean reward before use, as TRL 0.24
 * did on every call, evaluation included: pass a copy to leave it untouched). in and out must have
 * the same n_pairs. Fails on invalid options or an "sft" term with no chosen token in the batch. */
int dpo_loss_compute(const dpo_loss_opts *o, dpo_loss_state *state, const dpo_loss_input *in,
                     dpo_loss_output *out, hone_error *err);

/* dL/dlogp_t for every completion token of pair p: g_c (n_c,), g_r (n_r,). */
void dpo_loss_pair_token_grads(const dpo_loss_output *out, int p, int n_c, int n_r, float *g_c, float *g_r);

#endif
