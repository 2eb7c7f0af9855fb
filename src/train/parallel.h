/* train/parallel.h — data-parallel gradients over the ranks of an MPI job (dist/dist.h),
 * deterministic, with the optimizer state optionally sharded (ZeRO stage 1).
 *
 * The trained floats [0, n) (the model's parameters, or a LoRA run's adapters: only what
 * trains) are cut into one contiguous shard per rank, [shard_lo[r], shard_lo[r+1]), and into
 * buckets: one per layer (the trained tensors of model.layers.L.*, split at most every
 * DP_BUCKET_MAX floats) in the order the backward pass completes them (last layer first),
 * then the rest (embeddings, final norm, lm_head, modules_to_save copies). During the last
 * local micro-batch's backward, each bucket is handed to a nonblocking all-to-all as soon
 * as its layer is done (model_backward's layer_done hook), so communication overlaps the
 * rest of the backward, as PyTorch DDP's buckets do: each rank receives every rank's part
 * of its own shard. dp_reduce then adds those parts in rank order 0..N-1 — a fixed order
 * that does not depend on timing or the MPI library — and computes the global gradient
 * norm from per-shard sums of squares, also added in rank order. ZeRO 0 then all-gathers
 * the summed gradient and every rank updates everything; ZeRO 1 updates only its shard
 * (its AdamW moments are shard-sized) and all-gathers the parameters. Both give the same
 * bits: the same sums, the same element-wise update. */
#ifndef HONE_PARALLEL_H
#define HONE_PARALLEL_H
#include "dist/dist.h"
#include "model/model.h"
#include "model/transformer.h"

#define DP_BUCKET_MAX ((size_t)1 << 26) /* floats: 256 MiB */

typedef struct hone_dp_bucket {
    size_t lo, hi;  /* trained-float range */
    int layer;      /* the layer whose backward completes it, -1: the end of the backward */
    size_t rbase;   /* where this bucket's received parts start in recv */
    size_t mine;    /* floats of the bucket inside this rank's shard */
} hone_dp_bucket;

typedef struct hone_dp {
    int size, rank, zero;
    size_t n;              /* trained floats */
    size_t *shard_lo;      /* (size + 1) */
    size_t *counts, *displs; /* (size) shard sizes and starts, for the all-gathers */
    hone_dp_bucket *bk;    /* (nb) in posting order */
    int nb, posted;
    int *xc;               /* (nb, 4, size) per bucket: send counts, send displs, recv counts, recv displs */
    float *recv;           /* (size * shard) every rank's part of this rank's shard (fp32 sums) */
    double *recv64;        /* (size * shard) the same for fp64 sums (acc set), recv then NULL */
    double *acc;           /* the trainer's fp64 micro-batch sum (n), borrowed; NULL: grad is sent */
    dist_req *req;         /* (nb) */
    float *grad;           /* the trainer's gradient buffer (n), borrowed */
    double bytes_reduced;  /* gradient bytes each rank sends per step (all-to-all + all-gather) */
    int failed;            /* a post failed (out of memory): dp_reduce reports it */
    char fail_msg[256];
} hone_dp;

/* Plans shards and buckets over the n_tp trained tensors (offsets into grad, laid out in
 * order); zero: ZeRO stage (0 or 1). Needs dist_size() > 1 to be useful, works with 1. */
int dp_init(hone_dp *d, const hone_param *tp, int n_tp, size_t n, float *grad, int zero, hone_error *err);
void dp_free(hone_dp *d);
/* grad_accum_dtype fp64: the ranks exchange and add the fp64 sums in acc (n, borrowed) instead
 * of grad; each bucket is first completed with the last micro-batch's gradient
 * (grad_accumulate_f64), then posted; dp_reduce rounds the rank-order sum to float once. */
int dp_use_acc(hone_dp *d, double *acc, hone_error *err);
/* The hook (model_backward's layer_done): set it on the acts of the last local micro-batch
 * of a step (dp_hook), clear it after (dp_unhook). */
void dp_hook(hone_dp *d, hone_acts *a);
void dp_unhook(hone_acts *a);
/* After the local backward passes: posts the buckets not yet posted, waits, sums this
 * rank's shard in rank order into grad, and returns the global L2 norm of the summed
 * gradient (-1 with err on failure). With zero 0 the whole summed gradient is then on
 * every rank; with zero 1 only this rank's shard is valid. */
double dp_reduce(hone_dp *d, hone_error *err);
/* ZeRO 1, after the shard's update: every rank's shard of buf (the parameters) to all. */
void dp_gather(hone_dp *d, float *buf);
/* This rank's shard [lo, hi). */
static inline size_t dp_lo(const hone_dp *d) { return d->shard_lo[d->rank]; }
static inline size_t dp_hi(const hone_dp *d) { return d->shard_lo[d->rank + 1]; }
#endif
