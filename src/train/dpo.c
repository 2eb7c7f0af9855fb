/* train/dpo.c — DPO batches, reference log-probs, training loop (dpo.h). */
#include "train/dpo.h"
#include "dist/dist.h"
#include "model/safetensors.h"
#include "base/sha256.h"
#include "base/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int row_len(const dpo_opts *o, const hone_tok_pair *p) {
    if (o->shared_prompt) return p->np + p->nc + 1 + p->nr;
    return p->np + (p->nc > p->nr ? p->nc : p->nr);
}

int dpo_ws_init(dpo_ws *ws, const hone_model_config *c, const dpo_opts *o, int cap_pairs, const hone_tok_pair *pairs,
                long n, int with_ref, int train, hone_error *err) {
    memset(ws, 0, sizeof *ws);
    int T = 1, mc = 1;
    for (long i = 0; i < n; i++) {
        if (pairs[i].np < 1) return hone_fail(err, "pair %ld has an empty prompt (a BOS token at least is needed)", i);
        if (row_len(o, &pairs[i]) > T) T = row_len(o, &pairs[i]);
        if (pairs[i].nc > mc) mc = pairs[i].nc;
        if (pairs[i].nr > mc) mc = pairs[i].nr;
    }
    int B = o->shared_prompt ? cap_pairs : 2 * cap_pairs;
    ws->cap_pairs = cap_pairs;
    ws->max_c = mc;
    if (acts_init(&ws->acts, c, B, T, train, train ? o->grad_ckpt : 0, err) < 0) return -1;
    if (with_ref && acts_init(&ws->ref_acts, c, B, T, 0, 0, err) < 0) { dpo_ws_free(ws); return -1; }
    ws->acts.want_lssp = o->loss.use_weighting;
    batch_alloc(&ws->batch, B, T);
    ws->w = calloc((size_t)B * T, sizeof(float));
    ws->c_slot = calloc(cap_pairs, sizeof(int32_t));
    ws->r_slot = calloc(cap_pairs, sizeof(int32_t));
    ws->buf_c = calloc(mc, sizeof(float)); ws->buf_r = calloc(mc, sizeof(float));
    ws->buf_c2 = calloc(mc, sizeof(float)); ws->buf_r2 = calloc(mc, sizeof(float));
    if (dpo_loss_input_init(&ws->in, cap_pairs, err) < 0 || dpo_loss_output_init(&ws->out, cap_pairs, err) < 0) {
        dpo_ws_free(ws);
        return -1;
    }
    return 0;
}

void dpo_ws_free(dpo_ws *ws) {
    if (ws->acts.mem) acts_free(&ws->acts);
    if (ws->ref_acts.mem) acts_free(&ws->ref_acts);
    batch_free(&ws->batch);
    free(ws->w); free(ws->c_slot); free(ws->r_slot);
    free(ws->buf_c); free(ws->buf_r); free(ws->buf_c2); free(ws->buf_r2);
    dpo_loss_input_free(&ws->in);
    dpo_loss_output_free(&ws->out);
    memset(ws, 0, sizeof *ws);
}

/* Lays out pairs idx[0..n) into ws->batch; records each pair's first target slot. */
static long fill_batch(dpo_ws *ws, const dpo_opts *o, const hone_tok_pair *pairs, const long *idx, int n, int pad_id) {
    hone_batch *b = &ws->batch;
    int T = 1;
    for (int i = 0; i < n; i++)
        if (row_len(o, &pairs[idx[i]]) > T) T = row_len(o, &pairs[idx[i]]);
    b->B = o->shared_prompt ? n : 2 * n;
    b->T = T;
    batch_reset(b, pad_id);
    long ntok = 0;
    for (int i = 0; i < n; i++) {
        const hone_tok_pair *p = &pairs[idx[i]];
        int P = p->np;
        for (int side = 0; side < 2; side++) {
            const int32_t *comp = side ? p->rejected : p->chosen;
            int nc = side ? p->nr : p->nc;
            if (!o->shared_prompt || side == 0) {
                int r = o->shared_prompt ? i : i + side * n;
                size_t base = (size_t)r * T;
                batch_put_doc(b, r, 0, p->prompt, P, 0, NULL);
                batch_put_doc(b, r, P, comp, nc, P, NULL);
                for (int t = 0; t < P + nc; t++) b->start[base + t] = 0; /* one causal document */
                for (int t = 0; t < P + nc; t++) b->labels[base + t] = HONE_IGNORE_INDEX;
                for (int j = 0; j < nc; j++) b->labels[base + P - 1 + j] = comp[j];
                (side ? ws->r_slot : ws->c_slot)[i] = (int32_t)(base + P - 1);
                ntok += P + nc;
            } else {
                /* shared: [copy of the prompt's last token, rejected...] after the chosen
                 * segment; sees the prompt's first P-1 tokens through the prefix span */
                size_t base = (size_t)i * T;
                int s0 = P + p->nc;
                batch_put_doc(b, i, s0, p->prompt + P - 1, 1, P - 1, NULL);
                batch_put_doc(b, i, s0 + 1, comp, nc, P, NULL);
                for (int t = s0; t < s0 + 1 + nc; t++) {
                    b->start[base + t] = s0;
                    b->pfx_start[base + t] = 0;
                    b->pfx_end[base + t] = P - 1;
                    b->labels[base + t] = HONE_IGNORE_INDEX;
                }
                for (int j = 0; j < nc; j++) b->labels[base + s0 + j] = comp[j];
                ws->r_slot[i] = (int32_t)(base + s0);
                ntok += P + nc; /* counted as TRL counts its rejected row */
            }
        }
    }
    return ntok;
}

static void gather(float *dst, const float *src, int32_t s0, int n) {
    for (int j = 0; j < n; j++) dst[j] = src[s0 + j];
}

int dpo_micro_batch(dpo_ws *ws, hone_model *m, hone_weights *g, hone_model *ref, const dpo_opts *o, dpo_loss_state *state,
                    const hone_tok_pair *pairs, const long *idx, int n, const dpo_ref_logps *refs, float scale,
                    dpo_step_result *res, hone_error *err) {
    const dpo_loss_opts *lo = &o->loss;
    memset(res, 0, sizeof *res);
    res->n_tokens = fill_batch(ws, o, pairs, idx, n, o->pad_id);
    hone_batch *b = &ws->batch;
    ws->in.n_pairs = n;
    ws->out.n_pairs = n;
    /* reference log-probs */
    if (!lo->reference_free) {
        if (refs) {
            for (int i = 0; i < n; i++) {
                ws->in.ref_chosen[i] = refs->chosen[idx[i]];
                ws->in.ref_rejected[i] = refs->rejected[idx[i]];
            }
        } else if (ref) {
            model_forward(ref, &ws->ref_acts, b);
            model_head(ref, &ws->ref_acts, b, NULL, 1.0f, NULL);
            for (int i = 0; i < n; i++) {
                const hone_tok_pair *p = &pairs[idx[i]];
                gather(ws->buf_c, ws->ref_acts.tok_logp, ws->c_slot[i], p->nc);
                gather(ws->buf_r, ws->ref_acts.tok_logp, ws->r_slot[i], p->nr);
                if (dpo_loss_input_set_ref_pair(&ws->in, lo, i, ws->buf_c, p->nc, ws->buf_r, p->nr, err) < 0) return -1;
            }
        } else return hone_fail(err, "DPO needs a reference model, precomputed reference log-probs, or reference_free");
    }
    /* policy forward and log-probs */
    hone_acts *a = &ws->acts;
    model_forward(m, a, b);
    model_head(m, a, b, NULL, 1.0f, NULL);
    double ent = 0, lsum_c = 0, lsum_r = 0, cor = 0;
    long ntok_c = 0, ntok_r = 0;
    int V = m->cfg.vocab_size;
    for (int i = 0; i < n; i++) {
        const hone_tok_pair *p = &pairs[idx[i]];
        gather(ws->buf_c, a->tok_logp, ws->c_slot[i], p->nc);
        gather(ws->buf_r, a->tok_logp, ws->r_slot[i], p->nr);
        if (lo->use_weighting) {
            gather(ws->buf_c2, a->tok_lssp, ws->c_slot[i], p->nc);
            gather(ws->buf_r2, a->tok_lssp, ws->r_slot[i], p->nr);
        }
        if (dpo_loss_input_set_pair(&ws->in, i, ws->buf_c, p->nc, ws->buf_r, p->nr, lo->use_weighting ? ws->buf_c2 : NULL,
                                    lo->use_weighting ? ws->buf_r2 : NULL, err) < 0)
            return -1;
        for (int j = 0; j < p->nc; j++) {
            int s = ws->c_slot[i] + j;
            ent += a->tok_entropy[s];
            lsum_c += a->tok_logit_sum[s];
            cor += a->tok_correct[s];
        }
        for (int j = 0; j < p->nr; j++) {
            int s = ws->r_slot[i] + j;
            ent += a->tok_entropy[s];
            lsum_r += a->tok_logit_sum[s];
        }
        ntok_c += p->nc;
        ntok_r += p->nr;
    }
    if (dpo_loss_compute(lo, state, &ws->in, &ws->out, err) < 0) return -1;
    res->loss = ws->out.loss;
    res->m = ws->out.metrics;
    res->entropy = (ntok_c + ntok_r) ? ent / (ntok_c + ntok_r) : 0;
    res->accuracy = ntok_c ? cor / ntok_c : 0;
    res->logits_chosen = ntok_c ? lsum_c / ((double)ntok_c * V) : 0;
    res->logits_rejected = ntok_r ? lsum_r / ((double)ntok_r * V) : 0;
    if (!g) return 0;
    /* backward: the head again with w = -scale * dL/dlogp on each completion slot */
    memset(ws->w, 0, sizeof(float) * (size_t)b->B * b->T);
    for (int i = 0; i < n; i++) {
        const hone_tok_pair *p = &pairs[idx[i]];
        dpo_loss_pair_token_grads(&ws->out, i, p->nc, p->nr, ws->buf_c, ws->buf_r);
        for (int j = 0; j < p->nc; j++) ws->w[ws->c_slot[i] + j] = -scale * ws->buf_c[j];
        for (int j = 0; j < p->nr; j++) ws->w[ws->r_slot[i] + j] = -scale * ws->buf_r[j];
    }
    model_head(m, a, b, ws->w, 0.f, g);
    model_backward(m, a, b, g);
    return 0;
}

/* ---- reference log-probs ---- */

int dpo_precompute_ref(hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n, dpo_ref_logps *out,
                       hone_error *err) {
    memset(out, 0, sizeof *out);
    out->n = n;
    out->chosen = calloc(n ? n : 1, sizeof(double));
    out->rejected = calloc(n ? n : 1, sizeof(double));
    int bs = o->precompute_batch_size > 0 ? o->precompute_batch_size : o->eval_batch_size > 0 ? o->eval_batch_size : o->batch_size;
    dpo_ws ws;
    if (dpo_ws_init(&ws, &ref->cfg, o, bs, pairs, n, 0, 0, err) < 0) return -1;
    long *idx = malloc(sizeof(long) * bs);
    int rc = 0;
    for (long r0 = 0; r0 < n && !rc; r0 += bs) {
        int nb = (int)(n - r0 < bs ? n - r0 : bs);
        for (int i = 0; i < nb; i++) idx[i] = r0 + i;
        fill_batch(&ws, o, pairs, idx, nb, o->pad_id);
        model_forward(ref, &ws.acts, &ws.batch);
        model_head(ref, &ws.acts, &ws.batch, NULL, 1.0f, NULL);
        for (int i = 0; i < nb && !rc; i++) {
            const hone_tok_pair *p = &pairs[idx[i]];
            gather(ws.buf_c, ws.acts.tok_logp, ws.c_slot[i], p->nc);
            gather(ws.buf_r, ws.acts.tok_logp, ws.r_slot[i], p->nr);
            rc = dpo_loss_input_set_ref_pair(&ws.in, &o->loss, i, ws.buf_c, p->nc, ws.buf_r, p->nr, err);
            out->chosen[r0 + i] = ws.in.ref_chosen[i];
            out->rejected[r0 + i] = ws.in.ref_rejected[i];
        }
    }
    free(idx);
    dpo_ws_free(&ws);
    return rc;
}

void dpo_ref_logps_free(dpo_ref_logps *r) {
    free(r->chosen);
    free(r->rejected);
    memset(r, 0, sizeof *r);
}

static void hash_i32(hone_sha256 *h, const int32_t *x, int n) {
    int32_t k = n;
    sha256_update(h, &k, sizeof k);
    if (n > 0) sha256_update(h, x, sizeof(int32_t) * (size_t)n);
}

void dpo_ref_cache_key(const hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n, uint8_t key[32]) {
    hone_sha256 h;
    sha256_init(&h);
    sha256_update(&h, "hone-ref-logps-v1", 17);
    /* the reference model: its config.json and every parameter as loaded (vocabulary growth included) */
    char *cfg = model_config_to_json(&ref->cfg);
    if (cfg) sha256_update(&h, cfg, strlen(cfg));
    free(cfg);
    sha256_update(&h, ref->data, sizeof(float) * ref->num_floats);
    /* the rows as the reference sees them: tokenizer, template, data and max lengths all act through these ids */
    sha256_update(&h, &n, sizeof n);
    for (long i = 0; i < n; i++) {
        hash_i32(&h, pairs[i].prompt, pairs[i].np);
        hash_i32(&h, pairs[i].chosen, pairs[i].nc);
        hash_i32(&h, pairs[i].rejected, pairs[i].nr);
    }
    /* how they are summed and batched (ld_alpha weighs the tail; layout and batch size fix the rounding) */
    double ld = o->loss.ld_alpha_set ? o->loss.ld_alpha : 1.0;
    int lay[3] = {o->shared_prompt, o->eval_batch_size > 0 ? o->eval_batch_size : o->batch_size, o->pad_id};
    sha256_update(&h, &ld, sizeof ld);
    sha256_update(&h, lay, sizeof lay);
    sha256_final(&h, key);
}

int dpo_ref_logps_save(const dpo_ref_logps *r, const char *path, const uint8_t key[32], hone_error *err) {
    /* doubles stored as pairs of floats would lose bits: store as two F32 views of the same bytes */
    char meta[160], hex[65];
    sha256_hex(key, hex);
    snprintf(meta, sizeof meta, "{\"format\":\"hone-ref-logps\",\"encoding\":\"f64-as-i32-pairs\",\"key_sha256\":\"%s\"}", hex);
    st_entry e[3] = {{.name = "ref_chosen_logps_f64", .data = r->chosen, .ndim = 1, .shape = {2 * r->n}, .is_int = 1},
                     {.name = "ref_rejected_logps_f64", .data = r->rejected, .ndim = 1, .shape = {2 * r->n}, .is_int = 1},
                     {.name = "key_sha256", .data = key, .ndim = 1, .shape = {8}, .is_int = 1}};
    return st_write(path, e, 3, ST_F32, meta, err);
}

int dpo_ref_logps_load(dpo_ref_logps *r, const char *path, long n, const uint8_t key[32], hone_error *err) {
    st_file f;
    if (st_open(&f, path, err) < 0) return -1;
    const st_tensor *c = st_find(&f, "ref_chosen_logps_f64"), *j = st_find(&f, "ref_rejected_logps_f64"), *k = st_find(&f, "key_sha256");
    if (!k || k->nbytes != 32 || memcmp(f.data + k->offset, key, 32)) {
        st_close(&f);
        return hone_fail(err, "%s: computed for another reference model, data set, tokenizer, template or length settings", path);
    }
    if (!c || !j || st_numel(c) != (size_t)(2 * n) || st_numel(j) != (size_t)(2 * n)) {
        st_close(&f);
        return hone_fail(err, "%s: reference log-probs do not match this data set (%ld pairs expected)", path, n);
    }
    r->n = n;
    r->chosen = malloc(sizeof(double) * (n ? n : 1));
    r->rejected = malloc(sizeof(double) * (n ? n : 1));
    memcpy(r->chosen, f.data + c->offset, sizeof(double) * n);
    memcpy(r->rejected, f.data + j->offset, sizeof(double) * n);
    st_close(&f);
    return 0;
}

int dpo_ref_logps_cached(hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n, const char *path,
                         dpo_ref_logps *out, hone_error *err) {
    uint8_t key[32];
    dpo_ref_cache_key(ref, o, pairs, n, key);
    if (hone_file_exists(path)) {
        hone_error why = {{0}};
        if (dpo_ref_logps_load(out, path, n, key, &why) == 0) {
            fprintf(stderr, "dpo: reusing reference log-probs from %s\n", path);
            return 0;
        }
        fprintf(stderr, "dpo: recomputing reference log-probs: %s\n", why.msg);
    }
    if (dpo_precompute_ref(ref, o, pairs, n, out, err) < 0) return -1;
    return dpo_ref_logps_save(out, path, key, err);
}

/* ---- training ---- */

long dpo_total_steps(const dpo_opts *o, long n_pairs) {
    long mb = trainer_batches_per_epoch(n_pairs, o->batch_size, o->drop_last);
    long gacc = (long)o->accum * dist_size(); /* the global batch: accum micro-batches on each rank */
    long per_epoch = (mb + gacc - 1) / gacc;
    if (per_epoch < 1) per_epoch = 1;
    if (o->max_steps > 0) return o->max_steps;
    return (long)ceil(o->epochs * per_epoch);
}

typedef struct { double v[24]; int n; long count; } metric_acc;

static int result_metrics(const dpo_step_result *r, const char **names, double *vals) {
    int k = dpo_loss_metrics_list(&r->m, names, vals);
    names[k] = "logits/chosen"; vals[k++] = r->logits_chosen;
    names[k] = "logits/rejected"; vals[k++] = r->logits_rejected;
    names[k] = "entropy"; vals[k++] = r->entropy;
    names[k] = "mean_token_accuracy"; vals[k++] = r->accuracy;
    return k;
}

int dpo_evaluate(hone_model *m, hone_model *ref, const dpo_opts *o, const hone_tok_pair *pairs, long n,
                 const dpo_ref_logps *refs, dpo_step_result *res, hone_error *err) {
    int bs = o->eval_batch_size > 0 ? o->eval_batch_size : o->batch_size;
    dpo_ws ws;
    if (dpo_ws_init(&ws, &m->cfg, o, bs, pairs, n, ref != NULL && !refs, 0, err) < 0) return -1;
    if (acts_add_lora(&ws.acts, m, err) < 0) { dpo_ws_free(&ws); return -1; }
    long *idx = malloc(sizeof(long) * bs);
    const char *names[24];
    double vals[24], sum[24] = {0}, loss = 0;
    int k = 0, rc = 0;
    long nb_total = 0, rows = 0;
    dpo_loss_state st;
    dpo_loss_state_init(&st);
    dpo_step_result r;
    for (long r0 = 0; r0 < n && !rc; r0 += bs) {
        int nb = (int)(n - r0 < bs ? n - r0 : bs);
        if (nb < bs && o->drop_last) break;
        if ((r0 / bs) % dist_size() != dist_rank()) continue; /* under mpirun: batch i on rank i mod N */
        for (int i = 0; i < nb; i++) idx[i] = r0 + i;
        rc = dpo_micro_batch(&ws, m, NULL, ref, o, &st, pairs, idx, nb, refs, 1.0f, &r, err);
        if (rc) break;
        k = result_metrics(&r, names, vals);
        for (int i = 0; i < k; i++) sum[i] += vals[i];
        loss += nb * r.loss;
        rows += nb;
        nb_total++;
    }
    /* every rank's batches, added in rank order (rank 0 holds batch 0, so its k is the list's) */
    double part[27];
    memcpy(part, sum, sizeof sum);
    part[24] = loss, part[25] = (double)rows, part[26] = (double)nb_total;
    dist_sum_f64(part, 27);
    memcpy(sum, part, sizeof sum);
    loss = part[24], rows = (long)part[25], nb_total = (long)part[26];
    memset(res, 0, sizeof *res);
    if (!rc && nb_total) {
        /* the metrics: plain averages over eval batches (TRL's _metrics); the loss: the
         * batches' losses weighted by their rows (transformers repeats each batch's loss
         * per row and accelerate trims the last batch's repeats to its rows) */
        res->loss = loss / rows;
        res->m.rewards_chosen = sum[0] / nb_total;
        res->m.rewards_rejected = sum[1] / nb_total;
        res->m.rewards_accuracies = sum[2] / nb_total;
        res->m.rewards_margins = sum[3] / nb_total;
        res->m.logps_chosen = sum[4] / nb_total;
        res->m.logps_rejected = sum[5] / nb_total;
        res->logits_chosen = sum[k - 4] / nb_total;
        res->logits_rejected = sum[k - 3] / nb_total;
        res->entropy = sum[k - 2] / nb_total;
        res->accuracy = sum[k - 1] / nb_total;
    }
    free(idx);
    dpo_ws_free(&ws);
    return rc;
}

/* start: the evaluation before training, which (as in transformers) does not step
 * reduce_lr_on_plateau. */
static void log_eval(hone_trainer *t, const dpo_step_result *r, int start) {
    const char *names[24];
    double vals[24];
    int k = result_metrics(r, names, vals);
    char buf[24][64];
    const char *keys[25];
    double v2[25];
    keys[0] = "eval_loss";
    v2[0] = r->loss;
    for (int i = 0; i < k; i++) {
        snprintf(buf[i], sizeof buf[i], "eval_%s", names[i]);
        keys[i + 1] = buf[i];
        v2[i + 1] = vals[i];
    }
    trainer_log(t, keys, v2, k + 1);
    if (!start) trainer_eval_done(t, keys, v2, k + 1);
}

int dpo_train(hone_trainer *t, hone_model *ref, const dpo_opts *o, const hone_tok_pair *train, long n_train,
              const dpo_ref_logps *train_refs, const hone_tok_pair *eval, long n_eval, const dpo_ref_logps *eval_refs,
              hone_error *err) {
    hone_model *m = t->model;
    int bs = o->batch_size;
    if (o->drop_last && n_train < bs)
        return hone_fail(err, "dataloader_drop_last: %ld training pairs make no full batch of %d", n_train, bs);
    dpo_ws ws;
    if (dpo_ws_init(&ws, &m->cfg, o, bs, train, n_train, ref != NULL && !train_refs, 1, err) < 0) return -1;
    if (acts_add_lora(&ws.acts, m, err) < 0) { dpo_ws_free(&ws); return -1; }
    /* TRL's DPOTrainer with disable_dropout (its default, the only value hone takes) sets every
     * nn.Dropout's p to 0, LoRA's included: lora_dropout stays in the adapter config, unused */
    ws.acts.lora_no_dropout = 1;
    /* data-parallel: a step is accum micro-batches on each rank, rank r training its slice */
    int gacc = o->accum * dist_size();
    long *perm = malloc(sizeof(long) * (n_train ? n_train : 1)), *starts = malloc(sizeof(long) * gacc);
    int *counts = malloc(sizeof(int) * gacc);
    long mb_per_epoch = trainer_batches_per_epoch(n_train, bs, o->drop_last);
    t->drop_last = o->drop_last;
    trainer_epoch_order(perm, n_train, o->seed, t->epoch, o->shuffle);
    dpo_loss_state state;
    dpo_loss_state_init(&state);
    double extra[3] = {state.mean, state.var, state.count};
    if (t->extra == NULL && t->n_extra == 0) { t->extra = extra; t->n_extra = 3; }
    const char *names[32];
    double vals[32], win[32] = {0}, win_loss = 0;
    long win_steps = 0; /* optimizer steps since the last log (since the start, or a resume) */
    long win_mb = 0;
    int rc = 0, k = 0;
    if (o->eval_on_start && n_eval && t->step == 0) {
        dpo_step_result r;
        if (dpo_evaluate(m, ref, o, eval, n_eval, eval_refs, &r, err) < 0) { rc = -1; goto done; }
        log_eval(t, &r, 1);
    }
    double t0 = hone_now();
    long tok_window = 0;
    while (t->step < t->total_steps) {
        int nmb = trainer_next_microbatches(t, perm, n_train, bs, gacc, o->seed, o->shuffle, starts, counts), j0, j1;
        trainer_rank_slice(t, nmb, &j0, &j1);
        trainer_zero_grad(t);
        double step_loss = 0, step_tok = 0;
        for (int j = j0; j < j1; j++) {
            dpo_step_result r;
            ws.acts.lora_calls = ((uint64_t)t->step << 16) + (uint64_t)j; /* lora_dropout's masks: the same after a resume */
            if (j == j1 - 1) trainer_hook(t, &ws.acts); /* the gradient exchange overlaps the last backward */
            int mrc = dpo_micro_batch(&ws, m, &t->g, ref, o, &state, train, perm + starts[j], counts[j], train_refs, 1.0f / nmb, &r, err);
            trainer_unhook(t, &ws.acts);
            if (mrc < 0) {
                rc = -1;
                goto done;
            }
            k = result_metrics(&r, names, vals);
            for (int i = 0; i < k; i++) win[i] += vals[i];
            step_loss += r.loss / nmb;
            step_tok += r.n_tokens;
        }
        /* every rank's micro-batches: the loss and the tokens of the whole step */
        double sums[2] = {step_loss, step_tok};
        trainer_sum(t, sums, 2);
        step_loss = sums[0];
        win_mb += nmb;
        t->tokens_seen += sums[1];
        tok_window += (long)sums[1];
        extra[0] = state.mean; extra[1] = state.var; extra[2] = state.count;
        win_loss += step_loss;
        double lr, gn;
        if (trainer_step(t, step_loss, &gn, &lr, err) < 0) { rc = -1; goto done; }
        if (o->sync_ref_model && ref && o->ref_model_sync_steps > 0 && t->step % o->ref_model_sync_steps == 0) {
            /* TRL's SyncRefModelCallback: ref = alpha * policy + (1 - alpha) * ref */
            float al = (float)o->ref_model_mixup_alpha;
            for (size_t i = 0; i < m->num_floats; i++) ref->data[i] = ref->data[i] * (1.0f - al) + m->data[i] * al;
        }
        int last = t->step == t->total_steps;
        long steps_in_window = ++win_steps;
        if (o->logging_steps > 0 && (t->step % o->logging_steps == 0 || last || (o->logging_first_step && t->step == 1))) {
            const char *keys[36];
            double v[36];
            int q = 0;
            double el = hone_now() - t0;
            trainer_sum(t, win, (int)(sizeof win / sizeof *win)); /* every rank's micro-batch metrics */
            keys[q] = "loss"; v[q++] = win_loss / steps_in_window;
            keys[q] = "grad_norm"; v[q++] = gn;
            keys[q] = "learning_rate"; v[q++] = lr; /* the rate this step used, as transformers logs it */
            for (int i = 0; i < k; i++) { keys[q] = names[i]; v[q++] = win[i] / win_mb; }
            keys[q] = "num_tokens"; v[q++] = t->tokens_seen;
            keys[q] = "epoch"; v[q++] = t->epoch + (double)t->epoch_pos / mb_per_epoch;
            keys[q] = "tokens_per_second"; v[q++] = el > 0 ? tok_window / el : 0;
            trainer_log(t, keys, v, q);
            if (!o->quiet) trainer_progress(t, win_loss / steps_in_window, lr, gn, el > 0 ? tok_window / el : 0);
            memset(win, 0, sizeof win);
            win_loss = 0;
            win_steps = 0;
            win_mb = 0;
            t0 = hone_now();
            tok_window = 0;
        } else if (!o->quiet) {
            trainer_progress_tick(t, step_loss, lr, gn, tok_window, t0);
        }
        if (n_eval && o->eval_steps > 0 && (t->step % o->eval_steps == 0 || last)) {
            dpo_step_result r;
            if (dpo_evaluate(m, ref, o, eval, n_eval, eval_refs, &r, err) < 0) { rc = -1; goto done; }
            log_eval(t, &r, 0);
            if (!o->quiet)
                fprintf(stderr, "eval at step %ld: loss %.4f rewards/accuracies %.3f rewards/margins %.4f\n", t->step, r.loss,
                        r.m.rewards_accuracies, r.m.rewards_margins);
        }
        if ((rc = trainer_end_step(t, o->save_steps, o->quiet, err)) != 0) goto done;
    }
done:
    if (t->extra == extra) { t->extra = NULL; t->n_extra = 0; }
    free(perm); free(starts); free(counts);
    dpo_ws_free(&ws);
    return rc;
}
