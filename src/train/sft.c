/* train/sft.c — batching, the SFT training loop and evaluation (sft.h). */
#include "train/sft.h"
#include "dist/dist.h"
#include "base/rng.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- rows ---- */

typedef struct { int len; long idx; } len_idx;
static int cmp_len_desc(const void *a, const void *b) {
    const len_idx *x = a, *y = b;
    if (x->len != y->len) return y->len - x->len;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Best-fit decreasing (TRL's "bfd") of examples [lo, hi) into rows appended at r->rows[r->n]
 * (indices laid out from pool + *o): longest first (ties: file order), each into the open
 * row with the least room that still fits it; among rows with equal room, the one that
 * reached that room first; else a new row. Empty examples are dropped (counted). */
static void bfd_group(sft_rows *r, const hone_tok_example *ex, long lo, long hi, int max_length, int32_t *pool, long *o,
                      len_idx *order, int *room, long *row_of, long *stamp) {
    long n = hi - lo;
    for (long i = 0; i < n; i++) order[i] = (len_idx){ex[lo + i].n < max_length ? ex[lo + i].n : max_length, lo + i};
    qsort(order, n, sizeof *order, cmp_len_desc);
    long nrows = 0;
    for (long k = 0; k < n; k++) {
        if (order[k].len == 0) { row_of[k] = -1; r->dropped++; continue; }
        long best = -1;
        for (long j = 0; j < nrows; j++)
            if (room[j] >= order[k].len &&
                (best < 0 || room[j] < room[best] || (room[j] == room[best] && stamp[j] < stamp[best])))
                best = j;
        if (best < 0) { best = nrows++; room[best] = max_length; }
        room[best] -= order[k].len;
        stamp[best] = k; /* when this row reached its current room */
        row_of[k] = best;
    }
    /* lay the indices out row by row, in placement order */
    for (long j = 0; j < nrows; j++) {
        sft_row *row = &r->rows[r->n + j];
        row->ex = pool + *o;
        for (long k = 0; k < n; k++)
            if (row_of[k] == j) {
                pool[(*o)++] = (int32_t)order[k].idx;
                row->n_ex++;
                row->len += order[k].len;
            }
        if (row->len > r->max_len) r->max_len = row->len;
    }
    r->n += nrows;
}

int sft_make_rows_grouped(sft_rows *r, const hone_tok_example *ex, long n, int max_length, int mode, const long *group_end,
                          long n_groups, hone_error *err) {
    memset(r, 0, sizeof *r);
    r->rows = calloc(n ? n : 1, sizeof(sft_row));
    int32_t *pool = malloc(sizeof(int32_t) * (n ? n : 1)); /* example indices, owned by rows[0].ex */
    if (!r->rows || !pool) { free(r->rows); free(pool); return hone_fail(err, "out of memory"); }
    r->max_length = max_length;
    if (mode != SFT_ROWS_BFD) {
        /* one row per example; SFT_ROWS_SINGLE drops rows with nothing to train on (as TRL
         * does when not packing) and counts the truncated ones */
        long k = 0;
        for (long i = 0; i < n; i++) {
            int len = ex[i].n < max_length ? ex[i].n : max_length, any = mode == SFT_ROWS_WHOLE;
            if (mode == SFT_ROWS_SINGLE && ex[i].n > max_length) r->truncated++;
            for (int j = 0; j < len && !any; j++) any = ex[i].mask[j] != 0;
            if (!any) { r->dropped++; continue; }
            pool[k] = (int32_t)i;
            r->rows[k].ex = pool + k;
            r->rows[k].n_ex = 1;
            r->rows[k].len = len;
            if (len > r->max_len) r->max_len = len;
            k++;
        }
        r->n = k;
        if (k == 0) free(pool);
        return 0;
    }
    for (long i = 0; i < n; i++)
        if (ex[i].n > max_length) r->truncated++;
    len_idx *order = malloc(sizeof(len_idx) * (n ? n : 1));
    int *room = malloc(sizeof(int) * (n ? n : 1));
    long *row_of = malloc(sizeof(long) * (n ? n : 1)), *stamp = malloc(sizeof(long) * (n ? n : 1));
    if (!order || !room || !row_of || !stamp) {
        free(order); free(room); free(row_of); free(stamp); free(r->rows); free(pool);
        memset(r, 0, sizeof *r);
        return hone_fail(err, "out of memory");
    }
    long o = 0, lo = 0;
    for (long g = 0; g < n_groups; g++) {
        bfd_group(r, ex, lo, group_end[g], max_length, pool, &o, order, room, row_of, stamp);
        lo = group_end[g];
    }
    if (r->n == 0) free(pool);
    free(order); free(room); free(row_of); free(stamp);
    return 0;
}

int sft_make_rows(sft_rows *r, const hone_tok_example *ex, long n, int max_length, int packing, hone_error *err) {
    /* TRL packs inside datasets.map batches of SFT_PACK_GROUP examples */
    long ng = (n + SFT_PACK_GROUP - 1) / SFT_PACK_GROUP;
    long *ends = malloc(sizeof(long) * (ng ? ng : 1));
    if (!ends) return hone_fail(err, "out of memory");
    for (long g = 0; g < ng; g++) ends[g] = (g + 1) * SFT_PACK_GROUP < n ? (g + 1) * SFT_PACK_GROUP : n;
    int rc = sft_make_rows_grouped(r, ex, n, max_length, packing ? SFT_ROWS_BFD : SFT_ROWS_SINGLE, ends, ng, err);
    free(ends);
    return rc;
}

int sft_pack_examples(const hone_tok_example *ex, long n, int max_length, int strategy, hone_tok_example **out, long *n_out,
                      long **group_end, long *n_groups, hone_error *err) {
    *out = NULL, *n_out = 0, *group_end = NULL, *n_groups = 0;
    if (strategy == SFT_PACK_BFD) return 0;
    long ng = (n + SFT_PACK_GROUP - 1) / SFT_PACK_GROUP, cap = 0;
    /* the pieces: wrapped, ceil(group tokens / L) per group; bfd_split, ceil(len / L) per example */
    for (long g = 0; g < ng; g++) {
        long lo = g * SFT_PACK_GROUP, hi = lo + SFT_PACK_GROUP < n ? lo + SFT_PACK_GROUP : n, tok = 0;
        for (long i = lo; i < hi; i++) {
            tok += ex[i].n;
            if (strategy == SFT_PACK_BFD_SPLIT) cap += (ex[i].n + max_length - 1) / max_length;
        }
        if (strategy == SFT_PACK_WRAPPED) cap += (tok + max_length - 1) / max_length;
    }
    hone_tok_example *o = calloc(cap ? cap : 1, sizeof *o);
    long *ends = malloc(sizeof(long) * (ng ? ng : 1)), k = 0;
    if (!o || !ends) { free(o); free(ends); return hone_fail(err, "out of memory"); }
    for (long g = 0; g < ng; g++) {
        long lo = g * SFT_PACK_GROUP, hi = lo + SFT_PACK_GROUP < n ? lo + SFT_PACK_GROUP : n;
        if (strategy == SFT_PACK_BFD_SPLIT) {
            for (long i = lo; i < hi; i++)
                for (int s = 0; s < ex[i].n; s += max_length) {
                    int len = ex[i].n - s < max_length ? ex[i].n - s : max_length;
                    o[k].ids = malloc(sizeof(int32_t) * len);
                    o[k].mask = malloc(len);
                    if (!o[k].ids || !o[k].mask) goto oom;
                    memcpy(o[k].ids, ex[i].ids + s, sizeof(int32_t) * len);
                    memcpy(o[k].mask, ex[i].mask + s, len);
                    o[k++].n = len;
                }
        } else {
            /* wrapped: the group's token stream, cut every max_length tokens */
            long i = lo;
            int pos = 0; /* position inside ex[i] */
            while (i < hi) {
                long avail = 0;
                for (long q = i; q < hi && avail < max_length; q++) avail += ex[q].n - (q == i ? pos : 0);
                int len = avail < max_length ? (int)avail : max_length;
                if (len == 0) break;
                o[k].ids = malloc(sizeof(int32_t) * len);
                o[k].mask = malloc(len);
                if (!o[k].ids || !o[k].mask) goto oom;
                for (int f = 0; f < len;) {
                    int take = ex[i].n - pos < len - f ? ex[i].n - pos : len - f;
                    memcpy(o[k].ids + f, ex[i].ids + pos, sizeof(int32_t) * take);
                    memcpy(o[k].mask + f, ex[i].mask + pos, take);
                    f += take, pos += take;
                    if (pos == ex[i].n) i++, pos = 0;
                }
                o[k++].n = len;
                while (i < hi && ex[i].n == 0) i++;
            }
        }
        ends[g] = k;
    }
    *out = o, *n_out = k, *group_end = ends, *n_groups = ng;
    return 0;
oom:
    sft_free_examples(o, cap);
    free(ends);
    return hone_fail(err, "out of memory");
}

void sft_free_examples(hone_tok_example *ex, long n) {
    for (long i = 0; ex && i < n; i++) { free(ex[i].ids); free(ex[i].mask); }
    free(ex);
}

void sft_rows_free(sft_rows *r) {
    if (r->rows && r->n) {
        /* rows[].ex point into one pool that starts at the smallest address */
        int32_t *base = r->rows[0].ex;
        for (long i = 0; i < r->n; i++)
            if (r->rows[i].ex < base) base = r->rows[i].ex;
        free(base);
    }
    free(r->rows);
    memset(r, 0, sizeof *r);
}

static int round_up(int n, int m) { return m > 1 ? (n + m - 1) / m * m : n; }

void sft_fill_batch(hone_batch *b, const sft_rows *R, const long *row_idx, int n, const hone_tok_example *ex, int keep_end,
                    int pad_id, int flat, int multiple) {
    int T = 1;
    if (flat) {
        T = 0;
        for (int i = 0; i < n; i++) T += R->rows[row_idx[i]].len;
        if (T < 1) T = 1;
    } else {
        for (int i = 0; i < n; i++)
            if (R->rows[row_idx[i]].len > T) T = R->rows[row_idx[i]].len;
    }
    b->B = flat ? 1 : n;
    b->T = round_up(T, multiple); /* pad_to_multiple_of: padding slots, ignored by the loss */
    batch_reset(b, pad_id);
    int32_t *lab = malloc(sizeof(int32_t) * (R->max_length + 1));
    int s = 0;
    for (int i = 0; i < n; i++) {
        const sft_row *row = &R->rows[row_idx[i]];
        if (!flat) s = 0;
        for (int k = 0; k < row->n_ex; k++) {
            const hone_tok_example *e = &ex[row->ex[k]];
            /* each example is cut to max_length on its own (start or end kept) */
            int len = e->n, want = len < R->max_length ? len : R->max_length;
            int off = keep_end && len > want ? len - want : 0;
            for (int j = 0; j < want; j++) {
                int nx = off + j + 1;
                lab[j] = (j + 1 < want && e->mask[nx]) ? e->ids[nx] : HONE_IGNORE_INDEX;
            }
            batch_put_doc(b, flat ? 0 : i, s, e->ids + off, want, 0, lab);
            s += want;
        }
    }
    free(lab);
}

/* ---- training ---- */

/* TRL's shuffle_dataset: the rows in one seeded order (hone's generator: not the order
 * of datasets.shuffle) before the epochs' own order */
static void shuffle_rows(sft_rows *R, uint64_t seed) {
    size_t *perm = malloc(sizeof(size_t) * R->n);
    sft_row *rows = malloc(sizeof(sft_row) * R->n);
    if (!perm || !rows) { free(perm); free(rows); return; }
    hone_rng r;
    uint64_t s = seed ^ 0x5348554646ULL; /* a stream of its own, apart from the epochs' */
    rng_splitmix64(&s);
    rng_seed(&r, s);
    for (long i = 0; i < R->n; i++) perm[i] = (size_t)i;
    rng_shuffle_indices(&r, perm, (size_t)R->n);
    for (long i = 0; i < R->n; i++) rows[i] = R->rows[perm[i]];
    memcpy(R->rows, rows, sizeof(sft_row) * R->n);
    free(rows);
    free(perm);
}

long sft_total_steps(const sft_opts *o, long n_rows) {
    long mb = trainer_batches_per_epoch(n_rows, o->batch_size, o->drop_last);
    long gacc = (long)o->accum * dist_size(); /* the global batch: accum micro-batches on each rank */
    long per_epoch = (mb + gacc - 1) / gacc;
    if (per_epoch < 1) per_epoch = 1;
    if (o->max_steps > 0) return o->max_steps;
    return (long)ceil(o->epochs * per_epoch);
}

/* Whether a batch is flattened into one row (padding_free), as TRL's collator does when
 * asked and always for bfd / bfd_split packing: no padding slots, the same numbers. */
static int sft_flat(const sft_opts *o, int packing) {
    return o->padding_free || (packing && o->packing_strategy != SFT_PACK_WRAPPED);
}

/* Rows for training or evaluation: with packing, the strategy's examples first (wrapped
 * chunks or split fragments, *packed: owned, to free with sft_free_examples; the rows index
 * them), else ex itself (*packed NULL). */
static int rows_for(const sft_opts *o, int packing, const hone_tok_example *ex, long n, sft_rows *R, hone_tok_example **packed,
                    long *n_packed, hone_error *err) {
    long *gend = NULL, ng = 0;
    *packed = NULL, *n_packed = 0;
    if (packing && sft_pack_examples(ex, n, o->max_length, o->packing_strategy, packed, n_packed, &gend, &ng, err) < 0) return -1;
    if (!*packed) return sft_make_rows(R, ex, n, o->max_length, packing, err);
    /* from here on the wrapped chunks / split fragments are the examples */
    int rc = sft_make_rows_grouped(R, *packed, *n_packed, o->max_length,
                                   o->packing_strategy == SFT_PACK_WRAPPED ? SFT_ROWS_WHOLE : SFT_ROWS_BFD, gend, ng, err);
    free(gend);
    if (rc < 0) { sft_free_examples(*packed, *n_packed); *packed = NULL; }
    return rc;
}

int sft_training_rows(const sft_opts *o, const hone_tok_example *ex, long n, long *rows, long *dropped, hone_error *err) {
    sft_rows R;
    hone_tok_example *packed;
    long n_packed;
    if (rows_for(o, o->packing, ex, n, &R, &packed, &n_packed, err) < 0) return -1;
    *rows = R.n;
    if (dropped) *dropped = R.dropped;
    sft_rows_free(&R);
    sft_free_examples(packed, n_packed);
    return 0;
}

int sft_evaluate(hone_model *m, const sft_opts *o, const hone_tok_example *ex, long n, double *loss, double *acc,
                 double *entropy, hone_error *err) {
    sft_rows R;
    /* eval_packing: TRL's default (None, 0 here) packs evaluation as training is */
    hone_tok_example *packed = NULL;
    long n_packed = 0;
    if (rows_for(o, o->eval_packing ? o->eval_packing > 0 : o->packing, ex, n, &R, &packed, &n_packed, err) < 0) return -1;
    if (packed) ex = packed;
    int bs = o->eval_batch_size > 0 ? o->eval_batch_size : o->batch_size;
    hone_acts a;
    hone_batch b;
    int cap = round_up(R.max_len > 0 ? R.max_len : 1, o->pad_to_multiple_of);
    if (acts_init_model(&a, m, bs, cap, 0, 0, err) < 0) {
        sft_rows_free(&R);
        sft_free_examples(packed, n_packed);
        return -1;
    }
    a.head_loss = o->head_loss;
    batch_alloc(&b, bs, cap);
    /* as transformers + TRL reduce: each batch's loss is its own token mean, and eval_loss
     * their mean weighted by the batch's rows (Trainer repeats a batch's loss per row and
     * accelerate trims the last batch's repeats to its rows); accuracy and entropy are
     * plain means of the per-batch token means (TRL's _metrics) */
    double loss_rows = 0, acc_sum = 0, ent_sum = 0;
    long rows = 0, batches = 0;
    long *idx = malloc(sizeof(long) * bs);
    for (long r0 = 0; r0 < R.n; r0 += bs) {
        int nb = (int)(R.n - r0 < bs ? R.n - r0 : bs);
        if (nb < bs && o->drop_last) break;
        if ((r0 / bs) % dist_size() != dist_rank()) continue; /* under mpirun: batch i on rank i mod N */
        for (int i = 0; i < nb; i++) idx[i] = r0 + i;
        sft_fill_batch(&b, &R, idx, nb, ex, o->truncate_keep_end, o->pad_id, sft_flat(o, o->eval_packing ? o->eval_packing > 0 : o->packing),
                       o->pad_to_multiple_of);
        model_forward(m, &a, &b);
        double tot = model_head(m, &a, &b, NULL, 1.0f, NULL), cor = 0, ent = 0;
        long nl = 0;
        for (int i = 0; i < b.B * b.T; i++)
            if (b.labels[i] >= 0) { cor += a.tok_correct[i]; ent += a.tok_entropy[i]; nl++; }
        loss_rows += nb * (tot / (nl > 0 ? nl : 1)); /* TRL clamps the token count at 1 */
        acc_sum += nl ? cor / nl : 0;
        ent_sum += nl ? ent / nl : 0;
        rows += nb;
        batches++;
    }
    free(idx);
    double part[5] = {loss_rows, acc_sum, ent_sum, (double)rows, (double)batches};
    dist_sum_f64(part, 5); /* every rank's batches, added in rank order */
    loss_rows = part[0], acc_sum = part[1], ent_sum = part[2], rows = (long)part[3], batches = (long)part[4];
    *loss = rows ? loss_rows / rows : NAN;
    *acc = batches ? acc_sum / batches : NAN;
    if (entropy) *entropy = batches ? ent_sum / batches : NAN;
    batch_free(&b);
    acts_free(&a);
    sft_rows_free(&R);
    sft_free_examples(packed, n_packed);
    return 0;
}

int sft_train(hone_trainer *t, const sft_opts *o, const hone_tok_example *train, long n_train, const hone_tok_example *eval,
              long n_eval, hone_error *err) {
    hone_model *m = t->model;
    sft_rows R;
    hone_tok_example *packed = NULL;
    long n_packed = 0;
    if (rows_for(o, o->packing, train, n_train, &R, &packed, &n_packed, err) < 0) return -1;
    if (packed) train = packed, n_train = n_packed;
    if (R.n == 0) { sft_rows_free(&R); sft_free_examples(packed, n_packed); return hone_fail(err, "no training rows"); }
    if (o->drop_last && R.n < o->batch_size) {
        sft_rows_free(&R);
        sft_free_examples(packed, n_packed);
        return hone_fail(err, "dataloader_drop_last: %ld training rows make no full batch of %d", R.n, o->batch_size);
    }
    if (o->shuffle_once) shuffle_rows(&R, o->seed);
    t->drop_last = o->drop_last;
    int bs = o->batch_size;
    hone_acts a;
    hone_batch b;
    int cap = round_up(R.max_len, o->pad_to_multiple_of);
    if (acts_init_model(&a, m, bs, cap, 1, o->grad_ckpt, err) < 0) { sft_rows_free(&R); sft_free_examples(packed, n_packed); return -1; }
    a.lora_seed = o->seed ^ 0x6c6f7261ULL; /* "lora": lora_dropout's stream */
    a.head_loss = o->head_loss;
    a.neftune_alpha = (float)(o->neftune_alpha > 0 ? o->neftune_alpha : 0);
    a.neftune_seed = o->seed ^ 0x6e6566746e756e65ULL; /* "neftune": a stream of its own */
    batch_alloc(&b, bs, cap);
    /* data-parallel: a step is accum micro-batches on each of the ranks, taken in order from
     * the one data order every rank computes; rank r trains its slice of them */
    int gacc = o->accum * dist_size();
    long *perm = malloc(sizeof(long) * R.n), *idx = malloc(sizeof(long) * bs), *mb_start = malloc(sizeof(long) * gacc);
    int *mb_n = malloc(sizeof(int) * gacc);
    uint64_t mb_before = 0; /* micro-batches of the steps before, every rank's: NEFTune's draws */
    long mb_per_epoch = trainer_batches_per_epoch(R.n, bs, o->drop_last);
    trainer_epoch_order(perm, R.n, o->seed, t->epoch, o->shuffle);
    const char *keys[8];
    double vals[8];
    double win_loss = 0, win_ent = 0, win_acc = 0;
    long win_steps = 0, win_lab = 0; /* win_lab: micro-batches in the window */
    int rc = 0;
    if (o->eval_on_start && n_eval && t->step == 0) {
        double el, ea, ee;
        if (sft_evaluate(m, o, eval, n_eval, &el, &ea, &ee, err) < 0) { rc = -1; goto done; }
        keys[0] = "eval_loss"; vals[0] = el; keys[1] = "eval_mean_token_accuracy"; vals[1] = ea;
        keys[2] = "eval_entropy"; vals[2] = ee;
        trainer_log(t, keys, vals, 3);
    }
    double t0 = hone_now();
    long tok_window = 0;
    while (t->step < t->total_steps) {
        /* the micro-batches of this step: up to accum, not crossing the epoch end */
        long n_lab = 0;
        int nmb = trainer_next_microbatches(t, perm, R.n, bs, gacc, o->seed, o->shuffle, mb_start, mb_n), k0, k1;
        trainer_rank_slice(t, nmb, &k0, &k1);
        /* labelled tokens of the whole step: the normaliser (as num_items_in_batch) */
        for (int k = 0; k < nmb; k++)
            for (int i = 0; i < mb_n[k]; i++) {
                const sft_row *row = &R.rows[perm[mb_start[k] + i]];
                for (int e = 0; e < row->n_ex; e++) {
                    const hone_tok_example *x = &train[row->ex[e]];
                    int keep = x->n > o->max_length ? o->max_length : x->n;
                    int off = o->truncate_keep_end && x->n > keep ? x->n - keep : 0;
                    for (int j = 1; j < keep; j++) n_lab += x->mask[off + j] != 0;
                }
            }
        trainer_zero_grad(t);
        double step_loss = 0, ent = 0, cor = 0; /* ent, cor: sums of per-micro-batch means (TRL) */
        long ntok = 0;
        float w = n_lab ? 1.0f / (float)n_lab : 0.f;
        for (int k = k0; k < k1; k++) {
            for (int i = 0; i < mb_n[k]; i++) idx[i] = perm[mb_start[k] + i];
            sft_fill_batch(&b, &R, idx, mb_n[k], train, o->truncate_keep_end, o->pad_id, sft_flat(o, o->packing), o->pad_to_multiple_of);
            /* lora_dropout's masks from (step, micro-batch), NEFTune's noise from the micro-batch
             * count: the same after a resume and on any rank */
            a.lora_calls = ((uint64_t)t->step << 16) + (uint64_t)k;
            a.neftune_calls = mb_before + (uint64_t)k;
            model_forward(m, &a, &b);
            step_loss += model_head(m, &a, &b, NULL, w, &t->g);
            if (k == k1 - 1) trainer_hook(t, &a); /* the gradient exchange overlaps the last backward */
            model_backward(m, &a, &b, &t->g);
            trainer_unhook(t, &a);
            double e1 = 0, c1 = 0;
            long l1 = 0;
            for (int s = 0; s < b.B * b.T; s++)
                if (b.labels[s] >= 0) { e1 += a.tok_entropy[s]; c1 += a.tok_correct[s]; l1++; }
            if (l1) { ent += e1 / l1; cor += c1 / l1; }
        }
        /* num_tokens as TRL counts it: the attention mask's ones (every slot of a real
         * document), or with padding-free batches the flattened row's length, which
         * includes pad_to_multiple_of's padding */
        int flat = sft_flat(o, o->packing);
        for (int k = 0; k < nmb; k++) {
            long mb = 0;
            for (int i = 0; i < mb_n[k]; i++) mb += R.rows[perm[mb_start[k] + i]].len;
            ntok += flat ? round_up((int)mb, o->pad_to_multiple_of) : mb;
        }
        mb_before += (uint64_t)nmb;
        trainer_sum(t, &step_loss, 1);
        double lr, gn;
        if (trainer_step(t, step_loss, &gn, &lr, err) < 0) { rc = -1; goto done; }
        t->tokens_seen += ntok;
        tok_window += ntok;
        win_loss += step_loss; win_ent += ent; win_acc += cor; win_lab += nmb; win_steps++;
        int last = t->step == t->total_steps;
        if (o->logging_steps > 0 && (t->step % o->logging_steps == 0 || last || (o->logging_first_step && t->step == 1))) {
            double el = hone_now() - t0, wsum[2] = {win_ent, win_acc};
            trainer_sum(t, wsum, 2); /* every rank's micro-batches' means */
            win_ent = wsum[0], win_acc = wsum[1];
            int k = 0;
            keys[k] = "loss"; vals[k++] = win_loss / win_steps;
            keys[k] = "grad_norm"; vals[k++] = gn;
            keys[k] = "learning_rate"; vals[k++] = lr; /* the rate this step used, as transformers logs it */
            keys[k] = "entropy"; vals[k++] = win_lab ? win_ent / win_lab : 0;
            keys[k] = "mean_token_accuracy"; vals[k++] = win_lab ? win_acc / win_lab : 0;
            keys[k] = "num_tokens"; vals[k++] = t->tokens_seen;
            keys[k] = "epoch"; vals[k++] = t->epoch + (double)t->epoch_pos / mb_per_epoch;
            keys[k] = "tokens_per_second"; vals[k++] = el > 0 ? tok_window / el : 0;
            trainer_log(t, keys, vals, k);
            if (!o->quiet) trainer_progress(t, win_loss / win_steps, lr, gn, el > 0 ? tok_window / el : 0);
            win_loss = win_ent = win_acc = 0;
            win_steps = win_lab = 0;
            t0 = hone_now();
            tok_window = 0;
        } else if (!o->quiet) {
            trainer_progress_tick(t, step_loss, lr, gn, tok_window, t0);
        }
        if (n_eval && o->eval_steps > 0 && (t->step % o->eval_steps == 0 || last)) {
            double el, ea, ee;
            if (sft_evaluate(m, o, eval, n_eval, &el, &ea, &ee, err) < 0) { rc = -1; goto done; }
            keys[0] = "eval_loss"; vals[0] = el; keys[1] = "eval_mean_token_accuracy"; vals[1] = ea;
            keys[2] = "eval_entropy"; vals[2] = ee;
            trainer_log(t, keys, vals, 3);
            trainer_eval_done(t, keys, vals, 3);
            if (!o->quiet) fprintf(stderr, "eval at step %ld: loss %.4f accuracy %.4f\n", t->step, el, ea);
        }
        if ((rc = trainer_end_step(t, o->save_steps, o->quiet, err)) != 0) goto done;
    }
done:
    free(perm); free(idx); free(mb_start); free(mb_n);
    batch_free(&b);
    acts_free(&a);
    sft_rows_free(&R);
    sft_free_examples(packed, n_packed);
    return rc;
}
