/* train/ — training: the YAML configuration, AdamW and schedules, the trainer (this
 *   header), SFT, the DPO losses and loop, and pipeline.h, which wires a run from a
 *   configuration. May include base/, simd/, model/, tokenizer/, data/, chat/; not
 *   generate/ (a sibling) or cli/.
 *
 * train/train.h — what SFT and DPO training share: the trainer state (model, gradients,
 * AdamW, schedule, step counter), checkpoints (a Hugging Face model directory
 * plus optimizer.safetensors and trainer_state.json, written atomically),
 * metrics.jsonl, the progress line, and clean stops on SIGINT/SIGTERM (the
 * signals are blocked and polled between steps, so a step always finishes). */
#ifndef HONE_TRAIN_H
#define HONE_TRAIN_H
#include "model/model.h"
#include "model/safetensors.h"
#include "train/optim.h"
#include "model/transformer.h"
#include <signal.h>
#include <stdio.h>

typedef struct hone_trainer {
    hone_model *model;       /* borrowed */
    float *grad;             /* (num_floats) gradient buffer, owned */
    hone_weights g;          /* view over grad */
    hone_adamw opt;
    int sched;               /* HONE_SCHED_* */
    double base_lr;
    long warmup, total_steps;
    double max_grad_norm;
    long step;               /* optimizer steps done */
    long epoch, epoch_pos;   /* data position: epoch and micro-batch index within it */
    double tokens_seen;      /* num_tokens metric: input tokens (non-padding) processed */
    char output_dir[2048];
    char src_dir[2048];      /* tokenizer files to copy into checkpoints */
    FILE *metrics;           /* output_dir/metrics.jsonl, appended */
    sigset_t stop_signals;
    int progress_tty;
    double t_start;
    long save_total_limit;
    /* opaque extra state saved with checkpoints (DPO running stats); caller-owned */
    const double *extra;
    int n_extra;
} hone_trainer;

int trainer_init(hone_trainer *t, hone_model *m, const char *output_dir, const char *src_dir, double lr, int sched,
                 long warmup, long total, double b1, double b2, double eps, double wd, double max_grad_norm, hone_error *err);
void trainer_free(hone_trainer *t);
void trainer_zero_grad(hone_trainer *t);
/* Clips, updates, advances the step; returns the pre-clip gradient norm and
 * stores the learning rate used in *lr. */
double trainer_apply(hone_trainer *t, double *lr);
/* Learning rate the next update will use / the one transformers logs after a step. */
double trainer_lr_at(const hone_trainer *t, long step);

/* Appends one JSON object line: {"step": s, key: value, ...}. keys/vals: n pairs. */
void trainer_log(hone_trainer *t, const char *const *keys, const double *vals, int n);
/* Progress line on stderr (bar on a TTY, plain line otherwise). */
void trainer_progress(hone_trainer *t, double loss, double lr, double gnorm, double tok_per_s);

/* Writes output_dir/checkpoint-<step> atomically and prunes to save_total_limit. */
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
/* Writes output_dir/final (model + tokenizer). */
int trainer_save_final(hone_trainer *t, hone_error *err);

/* Blocks SIGINT/SIGTERM (call before threads start) and reports whether one
 * arrived since (consuming it). */
void trainer_block_signals(hone_trainer *t);
int trainer_stop_requested(hone_trainer *t);
/* Row order of one epoch: a permutation seeded by (seed, epoch), or identity. */
void trainer_epoch_order(long *perm, long n, uint64_t seed, long epoch, int shuffle);
/* The micro-batches of the next optimizer step: up to accum of bs rows each,
 * never crossing the end of an epoch (a new epoch reorders perm). Writes each
 * one's first position in perm and its row count; returns how many. */
int trainer_next_microbatches(hone_trainer *t, long *perm, long n_rows, int bs, int accum, uint64_t seed, int shuffle,
                              long *start, int *count);
#endif
