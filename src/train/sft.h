/* train/sft.h — supervised fine-tuning on tokenized examples: batching (padding to
 * the longest row, or best-fit-decreasing packing into max_length rows with
 * positions restarting per example), the training loop with gradient
 * accumulation (loss normalised by the labelled tokens of the whole optimizer
 * step, as transformers does), evaluation, logging with TRL's metric names,
 * checkpoints and bitwise resume. Text -> tokens happens in cmd_sft.c. */
#ifndef HONE_SFT_H
#define HONE_SFT_H
#include "train/train.h"

typedef struct hone_tok_example {
    int32_t *ids;   /* (n) token ids */
    uint8_t *mask;  /* (n) 1: token is a training target (its logit row before it is scored) */
    int n;
} hone_tok_example;

typedef struct sft_opts {
    int batch_size, eval_batch_size, accum;
    int packing;
    int packing_strategy;   /* SFT_PACK_*: bfd (default), wrapped, bfd_split */
    int eval_packing;       /* evaluation rows: 0 = packed as training is (TRL's None), 1 = packed, -1 = not */
    int padding_free;       /* batches flattened into one row (also implied by bfd / bfd_split packing, as TRL) */
    int pad_to_multiple_of; /* > 1: batch lengths rounded up to a multiple (padding, no effect on the numbers) */
    int max_length;         /* rows are cut to this many tokens (counted in the log) */
    int truncate_keep_end;  /* keep the end instead of the start */
    int shuffle;            /* shuffle rows each epoch from the seed (1), or file order (0) */
    int shuffle_once;       /* shuffle the rows once before training, from the seed (TRL's shuffle_dataset) */
    int drop_last;          /* leave out each epoch's and the evaluation's last partial batch */
    uint64_t seed;          /* data order */
    double epochs;
    long max_steps;         /* > 0 overrides epochs */
    long logging_steps, eval_steps, save_steps; /* 0: never */
    int eval_on_start;
    int grad_ckpt;
    int pad_id;
    int quiet;
    int logging_first_step; /* also log after step 1 (transformers' logging_first_step) */
    hone_head_loss head_loss; /* loss_type nll | dft, label_smoothing_factor (training and evaluation, as TRL) */
    double neftune_alpha;   /* > 0: NEFTune noise on the embeddings during training (neftune_noise_alpha) */
} sft_opts;

/* A row is one example, or several packed ones. */
typedef struct sft_row {
    int32_t *ex;   /* (n_ex) example indices */
    int n_ex;
    int len;       /* total tokens after truncation */
} sft_row;

typedef struct sft_rows {
    sft_row *rows;  /* (n) owned */
    long n;
    long truncated; /* examples cut to max_length */
    long dropped;   /* examples with nothing to train on (or empty), left out */
    int max_len;    /* longest row */
    int max_length; /* the cut applied to each example */
} sft_rows;

/* Builds rows from examples: one per example, or BFD packing when packing (inside groups
 * of SFT_PACK_GROUP consecutive examples: TRL packs each datasets.map batch on its own). */
#define SFT_PACK_GROUP 1000
int sft_make_rows(sft_rows *r, const hone_tok_example *ex, long n, int max_length, int packing, hone_error *err);
/* Row modes: one row per example (dropping those with nothing to train on, as TRL without
 * packing), BFD inside each group [group_end[g-1], group_end[g]), or one row per example
 * keeping every one (wrapped chunks). */
enum { SFT_ROWS_SINGLE = 0, SFT_ROWS_BFD = 1, SFT_ROWS_WHOLE = 2 };
int sft_make_rows_grouped(sft_rows *r, const hone_tok_example *ex, long n, int max_length, int mode, const long *group_end,
                          long n_groups, hone_error *err);

/* packing_strategy (TRL's names) */
enum { SFT_PACK_BFD = 0, SFT_PACK_WRAPPED = 1, SFT_PACK_BFD_SPLIT = 2 };
/* The examples packing works on, for wrapped and bfd_split: wrapped concatenates each group's
 * examples (ids and masks) and cuts the stream into max_length chunks (the last of a group
 * shorter), each a document of its own; bfd_split cuts each example longer than max_length
 * into max_length fragments (the last shorter). *out (owned, free with sft_free_examples),
 * with *group_end (owned) the chunks' group bounds. For bfd (or no packing) *out is NULL. */
int sft_pack_examples(const hone_tok_example *ex, long n, int max_length, int strategy, hone_tok_example **out, long *n_out,
                      long **group_end, long *n_groups, hone_error *err);
void sft_free_examples(hone_tok_example *ex, long n);
void sft_rows_free(sft_rows *r);
/* Fills batch b (allocated for at least n rows x max len, rounded up to multiple) with rows
 * rows[0..n); flat: all of them one after the other in a single row (padding-free: B = 1,
 * T = their total length); T is rounded up to a multiple of `multiple` when > 1. */
void sft_fill_batch(hone_batch *b, const sft_rows *R, const long *row_idx, int n, const hone_tok_example *ex, int keep_end,
                    int pad_id, int flat, int multiple);


/* The training rows sft_train builds from these examples (packing strategy included) and
 * how many examples they leave out: what the step count is computed from. */
int sft_training_rows(const sft_opts *o, const hone_tok_example *ex, long n, long *rows, long *dropped, hone_error *err);
/* Total optimizer steps for these options and row count. */
long sft_total_steps(const sft_opts *o, long n_rows);
/* Runs training from t->step to the end (or until a stop signal, which saves a
 * checkpoint). Returns 0, -1 on error, 1 when stopped by a signal. */
int sft_train(hone_trainer *t, const sft_opts *o, const hone_tok_example *train, long n_train, const hone_tok_example *eval,
              long n_eval, hone_error *err);
/* Evaluation loss, token accuracy and entropy over examples (no gradients), in
 * batches of eval_batch_size, reduced as transformers + TRL do: loss = per-batch token
 * means weighted by the batch's rows; accuracy, entropy = plain means over batches. */
int sft_evaluate(hone_model *m, const sft_opts *o, const hone_tok_example *ex, long n, double *loss, double *acc,
                 double *entropy, hone_error *err);
#endif
