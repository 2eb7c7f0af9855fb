/* train/ — training: the YAML configuration, AdamW and schedules, the trainer (this
 *   header), SFT, the DPO losses and loop, and pipeline.h, which wires a run from a
 *   configuration. May include base/, simd/, model/, tokenizer/, data/, chat/; not
 *   generate/ (a sibling) or cli/.
 *
 * train/train.h — what SFT and DPO training share: the trainer state (model, gradients,
 * AdamW, schedule, step counter), checkpoints (a Hugging Face model directory
 * plus optimizer.safetensors and trainer_state.json, written atomically),
 * metrics.jsonl, the progress line, clean stops on SIGINT/SIGTERM (the
 * signals are blocked and polled between steps, so a step always finishes), and
 * the guards of a step: a non-finite loss or gradient norm stops the run, a
 * non-finite model is never saved, and a run that learns nothing is pointed out. */
#ifndef HONE_TRAIN_H
#define HONE_TRAIN_H
#include "model/model.h"
#include "model/safetensors.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "model/transformer.h"
#include "train/tbevents.h"
#include <signal.h> /* SIGINT, SIGTERM: what trainer_stop_requested returns */
#include <stdio.h>

typedef struct hone_trainer {
    hone_model *model;       /* borrowed; with model->lora set (a LoRA run) only the adapters train */
    /* the trained tensors: the model's parameters, or the LoRA adapters (and modules_to_save
     * copies) — gradients, moments, checkpoints' optimizer state and the finite checks cover these */
    const hone_param *tparams; /* (n_tparams) borrowed from the model or its LoRA */
    int n_tparams;
    size_t n_tfloats;
    float *tdata;            /* (n_tfloats) the trained values */
    float *grad;             /* (n_tfloats) gradient buffer, owned */
    hone_weights g;          /* view over grad (a LoRA run: the base's entries NULL, frozen) */
    double *acc;             /* (n_tfloats) grad_accum_dtype fp64: the step's micro-batch gradients summed
                              * in double (each micro-batch's backward writes grad, then is added here),
                              * so the sum does not depend on how the micro-batches are grouped over
                              * ranks; owned, NULL: the micro-batches accumulate in grad itself */
    hone_adamw opt;
    hone_sched sched;        /* the lr schedule (and reduce_lr_on_plateau's state) */
    double base_lr;
    long warmup, total_steps;
    double max_grad_norm;
    long step;               /* optimizer steps done */
    long epoch, epoch_pos;   /* data position: epoch and micro-batch index within it */
    int drop_last;           /* an epoch ends before its last partial micro-batch (dataloader_drop_last) */
    double tokens_seen;      /* num_tokens metric: input tokens (non-padding) processed */
    char output_dir[2048];
    char src_dir[2048];      /* tokenizer files to copy into checkpoints */
    FILE *metrics;           /* output_dir/metrics.jsonl, appended */
    tb_writer tb;            /* report_to tensorboard: the event file (tb.f NULL when off), owned */
    int stop_signal;         /* the signal that stopped the run (trainer_stop_requested), or 0 */
    int progress_tty;
    double t_start;
    long start_step;         /* the step this process started (or resumed) at: ETA counts from it */
    double save_secs;        /* checkpoint time since the last progress line (shown there) */
    long save_total_limit;
    const char *config_json; /* resolved configuration, copied into each checkpoint as
                                hone_config.json (resume checks it); borrowed, may be NULL */
    long flat_steps;         /* consecutive steps with grad norm 0 and an unchanged loss */
    double flat_loss;
    int flat_warned;
    char save_dtype[16];     /* final/'s tensors: float32 (default, also when empty), bfloat16, float16
                              * or auto (the base's stored dtype); checkpoints are always float32 */
    /* opaque extra state saved with checkpoints (DPO running stats); caller-owned */
    const double *extra;
    int n_extra;
    char plateau_metric[64];  /* metric_for_best_model as logged ("eval_loss"): reduce_lr_on_plateau's and the best model's */
    int greater_is_better;    /* for the best model: 1 when a higher metric is better */
    int load_best;            /* load_best_model_at_end: trainer_load_best before final/ */
    double best_metric;       /* best evaluation so far (+-inf before the first) */
    long best_step;           /* the step it was at, 0: none yet */
    char best_ckpt[4096];     /* checkpoint-<best_step> once saved (transformers' best_model_checkpoint), "" none */
    /* data-parallel training under mpirun (parallel.h), NULL alone: gradients are summed over
     * the ranks before the update; with zero_stage 1 the moments hold only [mlo, mhi) */
    struct hone_dp *dp;
    int zero_stage;
    size_t mlo, mhi;          /* the trained floats opt.m / opt.v hold: [0, n_tfloats) unless ZeRO-1 */
    int rank;                 /* dist_rank(): only rank 0 writes metrics, checkpoints' shared files and final/ */
} hone_trainer;

int trainer_init(hone_trainer *t, hone_model *m, const char *output_dir, const char *src_dir, double lr, int sched,
                 long warmup, long total, double b1, double b2, double eps, double wd, double max_grad_norm, hone_error *err);
/* The same, data-parallel when the process is one of several MPI ranks (dist_size() > 1):
 * zero_stage 0 keeps every moment on every rank, 1 only this rank's shard of them. */
int trainer_init_dp(hone_trainer *t, hone_model *m, const char *output_dir, const char *src_dir, double lr, int sched,
                    long warmup, long total, double b1, double b2, double eps, double wd, double max_grad_norm, int zero_stage,
                    hone_error *err);
void trainer_free(hone_trainer *t);
/* Replaces the (fresh) optimizer by kind: HONE_OPTIM_ADAMW or HONE_OPTIM_ADAMW_8BIT (optim.h),
 * same hyperparameters. Checkpoints then hold that optimizer's state. */
int trainer_set_optim(hone_trainer *t, int kind, hone_error *err);
/* Data-parallel runs: the micro-batches [*k0, *k1) of a step's nmb (all ranks') this rank
 * computes (all of them alone); hooks the gradient exchange onto acts a for the last of them
 * (trainer_unhook after the step's backward passes). */
void trainer_rank_slice(const hone_trainer *t, int nmb, int *k0, int *k1);
void trainer_hook(hone_trainer *t, hone_acts *a);
/* After every micro-batch's backward (hooked or not): clears the hook and, with acc, adds the
 * micro-batch's gradient to it (the hooked last one's buckets were added as they were posted). */
void trainer_unhook(hone_trainer *t, hone_acts *a);
/* v[0..n) summed over the ranks in rank order (nothing alone). */
void trainer_sum(const hone_trainer *t, double *v, int n);
void trainer_zero_grad(hone_trainer *t);
/* grad_accum_dtype fp64 (trainer->acc) for a run whose steps sum more than one micro-batch
 * gradient (gradient_accumulation_steps x ranks > 1); alone with one micro-batch a step the
 * fp32 gradient is already exact and nothing is allocated. */
int trainer_accumulate_fp64(hone_trainer *t, hone_error *err);
/* Clips, updates, advances the step; returns the pre-clip gradient norm and
 * stores the learning rate used in *lr. No guards (benchmarks); see trainer_step. */
double trainer_apply(hone_trainer *t, double *lr);
/* The guarded update after a step's gradients are in: fails (-1, naming the step,
 * leaving the weights untouched) when loss or gradient norm is not finite; else
 * applies like trainer_apply, storing the norm in *gnorm and the rate in *lr, and
 * warns once when the gradient norm has been exactly 0 and the loss unchanged
 * for TRAINER_FLAT_STEPS steps in a row. */
#define TRAINER_FLAT_STEPS 10
int trainer_step(hone_trainer *t, double loss, double *gnorm, double *lr, hone_error *err);
/* After a step's logging and evaluation: polls for SIGINT/SIGTERM, saves a
 * checkpoint when save_steps says so (not after the last step: final/ follows) or
 * when stopping. Returns 0 to go on, 1 when stopped by a signal, -1 on error. */
int trainer_end_step(hone_trainer *t, long save_steps, int quiet, hone_error *err);
/* Learning rate the next update will use / the one transformers logs after a step. */
double trainer_lr_at(const hone_trainer *t, long step);
/* After an evaluation: feeds reduce_lr_on_plateau its metric (eval_<metric_name>, from
 * the n logged keys/vals); no-op for the other schedules. */
void trainer_eval_done(hone_trainer *t, const char *const *keys, const double *vals, int n);
/* load_best_model_at_end: loads the weights of the best checkpoint (best_ckpt) into the
 * model, unless the model is already the best (best at the last step) or there is none;
 * with save_total_limit 1, removes every other checkpoint (as transformers). */
int trainer_load_best(hone_trainer *t, hone_error *err);

/* report_to tensorboard: every later trainer_log also goes to a new event file in logdir
 * (tbevents.h). */
int trainer_open_tensorboard(hone_trainer *t, const char *logdir, hone_error *err);
/* Appends one JSON object line: {"step": s, key: value, ...}. keys/vals: n pairs. With
 * TensorBoard on, the same values as scalars: each is the float nearest the number written
 * to metrics.jsonl (so a reader comparing the two sees equal values), tags as tbevents.h. */
void trainer_log(hone_trainer *t, const char *const *keys, const double *vals, int n);
/* Progress line on stderr (bar on a TTY, plain line otherwise). */
void trainer_progress(hone_trainer *t, double loss, double lr, double gnorm, double tok_per_s);
/* Between logging steps: on a terminal the bar moves every step, as tqdm's (tokens since
 * time t0 give the rate); elsewhere nothing. */
void trainer_progress_tick(hone_trainer *t, double loss, double lr, double gnorm, long tokens, double t0);

/* Writes output_dir/checkpoint-<step> atomically (refusing non-finite weights or
 * moments), logs it and its time on stderr, and prunes to save_total_limit: the
 * oldest go, never the one just written. */
int trainer_save_checkpoint(hone_trainer *t, hone_error *err);
/* Restores weights, moments, step, data position and extra state from a
 * checkpoint directory; truncates metrics.jsonl to the entries up to that step. */
int trainer_load_checkpoint(hone_trainer *t, const char *dir, double *extra, int n_extra, hone_error *err);
/* Its two readers of outside input besides the model (also the fuzz targets' entry
 * points): the AdamW moments from optimizer.safetensors (f; path names it in errors),
 * and the step, data position and extra state from trainer_state.json text. */
int trainer_read_optimizer(hone_trainer *t, const st_file *f, const char *path, hone_error *err);
int trainer_read_state(hone_trainer *t, const char *json_text, size_t len, const char *path, double *extra, int n_extra,
                       hone_error *err);
/* Finds output_dir's newest checkpoint-N (for resume_from_checkpoint: true/last). */
int trainer_find_last_checkpoint(const char *output_dir, char *out, size_t n);
/* Writes output_dir/final (model + tokenizer) in t->save_dtype, refusing non-finite weights. */
int trainer_save_final(hone_trainer *t, hone_error *err);

/* Blocks SIGINT/SIGTERM in the calling thread (call before threads start, so
 * every thread inherits the mask). Needs no trainer: the set is fixed. */
void trainer_block_signals(void);
/* Whether SIGINT/SIGTERM arrived since (consuming it, never waiting): returns
 * the signal number, also kept in t->stop_signal, or 0. */
int trainer_stop_requested(hone_trainer *t);
/* Row order of one epoch: a permutation seeded by (seed, epoch), or identity. */
void trainer_epoch_order(long *perm, long n, uint64_t seed, long epoch, int shuffle);
/* Micro-batches per epoch of n_rows in batches of bs: the last partial one counted,
 * or dropped with drop_last (as a DataLoader's drop_last). */
long trainer_batches_per_epoch(long n_rows, int bs, int drop_last);
/* The micro-batches of the next optimizer step: up to accum of bs rows each,
 * never crossing the end of an epoch (a new epoch reorders perm; t->drop_last
 * leaves out its last partial micro-batch). Writes each
 * one's first position in perm and its row count; returns how many. */
int trainer_next_microbatches(hone_trainer *t, long *perm, long n_rows, int bs, int accum, uint64_t seed, int shuffle,
                              long *start, int *count);
#endif
