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

/* Builds rows from examples: one per example, or BFD packing when packing. */
int sft_make_rows(sft_rows *r, const hone_tok_example *ex, long n, int max_length, int packing, hone_error *err);
void sft_rows_free(sft_rows *r);
/* Fills batch b (allocated for at least n rows x max len) with rows rows[0..n). */
void sft_fill_batch(hone_batch *b, const sft_rows *R, const long *row_idx, int n, const hone_tok_example *ex, int keep_end,
                    int pad_id);


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
