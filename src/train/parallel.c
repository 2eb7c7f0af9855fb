/* train/parallel.c — deterministic data-parallel gradient reduction and ZeRO-1 shards
 * (parallel.h). */
#include "train/parallel.h"
#include "model/layers.h"
#include "train/optim.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the layer a trained tensor belongs to ("...layers.12.self_attn..."), -1 for the rest */
static int layer_of(const char *name) {
    const char *p = strstr(name, "layers.");
    if (!p) return -1;
    char *end;
    long l = strtol(p + 7, &end, 10);
    return end != p + 7 && *end == '.' ? (int)l : -1;
}

static int add_bucket(hone_dp *d, int *cap, size_t lo, size_t hi, int layer) {
    while (lo < hi) {
        size_t e = hi - lo > DP_BUCKET_MAX ? lo + DP_BUCKET_MAX : hi;
        if (d->nb == *cap) {
            int nc = *cap ? 2 * *cap : 64;
            hone_dp_bucket *b = realloc(d->bk, sizeof *b * (size_t)nc);
            if (!b) return -1;
            d->bk = b, *cap = nc;
        }
        d->bk[d->nb++] = (hone_dp_bucket){.lo = lo, .hi = e, .layer = layer};
        lo = e;
    }
    return 0;
}

static size_t overlap(size_t a0, size_t a1, size_t b0, size_t b1) {
    size_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

int dp_init(hone_dp *d, const hone_param *tp, int n_tp, size_t n, float *grad, int zero, hone_error *err) {
    memset(d, 0, sizeof *d);
    d->size = dist_size(), d->rank = dist_rank(), d->zero = zero, d->n = n, d->grad = grad;
    int N = d->size;
    d->shard_lo = calloc((size_t)N + 1, sizeof(size_t));
    d->counts = calloc((size_t)N, sizeof(size_t));
    d->displs = calloc((size_t)N, sizeof(size_t));
    if (!d->shard_lo || !d->counts || !d->displs) { dp_free(d); return hone_fail(err, "out of memory"); }
    /* equal shards (the first n % N ranks one float more): a pure function of (n, N), so a
     * checkpoint's shard files name ranges any rank count can read */
    for (int r = 0; r <= N; r++) d->shard_lo[r] = (size_t)((unsigned __int128)n * (unsigned)r / (unsigned)N);
    for (int r = 0; r < N; r++) d->counts[r] = d->shard_lo[r + 1] - d->shard_lo[r], d->displs[r] = d->shard_lo[r];
    /* buckets: layer by layer from the last, then the tensors outside the layers, each a run
     * of consecutive tensors; tensors must tile [0, n) in order (else one bucket for all) */
    int tiled = 1, maxl = -1, cap = 0;
    for (int i = 0; i < n_tp; i++) {
        if (tp[i].offset != (i ? tp[i - 1].offset + tp[i - 1].numel : 0)) tiled = 0;
        int l = layer_of(tp[i].name);
        if (l > maxl) maxl = l;
    }
    if (n_tp && tp[n_tp - 1].offset + tp[n_tp - 1].numel != n) tiled = 0;
    int rc = 0;
    if (!tiled) rc = add_bucket(d, &cap, 0, n, -1);
    for (int l = tiled ? maxl : -2; l >= -1 && rc == 0; l--)
        for (int i = 0; i < n_tp && rc == 0; i++) {
            if (layer_of(tp[i].name) != l) continue;
            int j = i;
            while (j + 1 < n_tp && layer_of(tp[j + 1].name) == l) j++;
            rc = add_bucket(d, &cap, tp[i].offset, tp[j].offset + tp[j].numel, l);
            i = j;
        }
    if (rc == 0 && d->nb == 0) rc = add_bucket(d, &cap, 0, n > 0 ? n : 0, -1); /* nothing trains: an empty exchange */
    d->xc = calloc((size_t)(d->nb ? d->nb : 1) * 4 * N, sizeof(int));
    d->req = calloc((size_t)(d->nb ? d->nb : 1), sizeof(dist_req));
    size_t shard = d->counts[d->rank];
    d->recv = malloc(sizeof(float) * (shard > 0 ? shard * N : 1));
    if (rc || !d->xc || !d->req || !d->recv) { dp_free(d); return hone_fail(err, "out of memory"); }
    size_t rb = 0, lo = dp_lo(d), hi = dp_hi(d);
    for (int b = 0; b < d->nb; b++) {
        hone_dp_bucket *k = &d->bk[b];
        int *sc = d->xc + (size_t)b * 4 * N, *sd = sc + N, *rcn = sd + N, *rd = rcn + N;
        for (int q = 0; q < N; q++) {
            size_t o = overlap(k->lo, k->hi, d->shard_lo[q], d->shard_lo[q + 1]);
            sc[q] = (int)o;
            sd[q] = o ? (int)((k->lo > d->shard_lo[q] ? k->lo : d->shard_lo[q]) - k->lo) : 0;
        }
        k->mine = overlap(k->lo, k->hi, lo, hi);
        k->rbase = rb;
        for (int q = 0; q < N; q++) rcn[q] = (int)k->mine, rd[q] = (int)((size_t)q * k->mine);
        rb += k->mine * N;
    }
    /* bytes each rank sends per step: its gradient minus its own part (all-to-all), then
     * its shard to every other rank (all-gather of gradients or parameters) */
    d->bytes_reduced = 4.0 * ((double)(n - shard) + (double)shard * (N - 1));
    return 0;
}

void dp_free(hone_dp *d) {
    dist_wait_all(d->req, d->nb);
    free(d->shard_lo); free(d->counts); free(d->displs); free(d->bk); free(d->xc); free(d->recv); free(d->recv64); free(d->req);
    memset(d, 0, sizeof *d);
}

int dp_use_acc(hone_dp *d, double *acc, hone_error *err) {
    size_t shard = d->counts[d->rank];
    double *r = malloc(sizeof(double) * (shard > 0 ? shard * d->size : 1));
    if (!r) return hone_fail(err, "out of memory");
    free(d->recv);
    d->recv = NULL, d->recv64 = r, d->acc = acc;
    /* the all-to-all now carries doubles; the all-gather (gradients or parameters) floats */
    d->bytes_reduced = 8.0 * (double)(d->n - shard) + 4.0 * (double)shard * (d->size - 1);
    return 0;
}

static void post(hone_dp *d, int b) {
    const hone_dp_bucket *k = &d->bk[b];
    int N = d->size, *sc = d->xc + (size_t)b * 4 * N, *sd = sc + N, *rcn = sd + N, *rd = rcn + N;
    hone_error e;
    int rc;
    if (d->acc) {
        /* the bucket's last contribution, then its fp64 sum goes out */
        grad_accumulate_f64(d->acc + k->lo, d->grad + k->lo, k->hi - k->lo);
        rc = dist_ialltoallv_f64(d->acc + k->lo, sc, sd, d->recv64 + k->rbase, rcn, rd, &d->req[b], &e);
    } else {
        rc = dist_ialltoallv_f32(d->grad + k->lo, sc, sd, d->recv + k->rbase, rcn, rd, &d->req[b], &e);
    }
    if (rc < 0 && !d->failed) {
        d->failed = 1;
        snprintf(d->fail_msg, sizeof d->fail_msg, "%.200s", e.msg);
    }
}

static void layer_done(void *ctx, int l) {
    hone_dp *d = ctx;
    /* buckets are in completion order: post those this layer completed */
    while (d->posted < d->nb && (d->bk[d->posted].layer == l || l == -1)) post(d, d->posted++);
    dist_progress(d->req, d->posted);
}

void dp_hook(hone_dp *d, hone_acts *a) {
    d->posted = 0;
    a->layer_done = layer_done;
    a->layer_done_ctx = d;
}

void dp_unhook(hone_acts *a) {
    a->layer_done = NULL;
    a->layer_done_ctx = NULL;
}

double dp_reduce(hone_dp *d, hone_error *err) {
    /* a rank without a micro-batch this step (the end of an epoch) posts everything here */
    while (d->posted < d->nb) post(d, d->posted++);
    dist_wait_all(d->req, d->nb);
    d->posted = 0;
    if (d->failed) { d->failed = 0; return hone_fail(err, "gradient exchange: %s", d->fail_msg); }
    int N = d->size;
    size_t lo = dp_lo(d);
    for (int b = 0; b < d->nb; b++) {
        const hone_dp_bucket *k = &d->bk[b];
        if (!k->mine) continue;
        float *dst = d->grad + (k->lo > lo ? k->lo : lo);
        size_t m = k->mine;
        /* rank order, element by element: the same bits on every run */
        if (d->acc) {
            const double *src = d->recv64 + k->rbase;
#pragma omp parallel for schedule(static)
            for (size_t j = 0; j < m; j++) {
                double s = src[j];
                for (int q = 1; q < N; q++) s += src[(size_t)q * m + j];
                dst[j] = (float)s; /* the step's one rounding to float */
            }
        } else {
            const float *src = d->recv + k->rbase;
#pragma omp parallel for schedule(static)
            for (size_t j = 0; j < m; j++) {
                float s = src[j];
                for (int q = 1; q < N; q++) s += src[(size_t)q * m + j];
                dst[j] = s;
            }
        }
    }
    double ss = layers_sumsq(d->grad + lo, d->counts[d->rank]);
    dist_sum_f64(&ss, 1);
    if (!d->zero) dist_allgatherv_f32(d->grad, d->counts, d->displs);
    return sqrt(ss);
}

void dp_gather(hone_dp *d, float *buf) { dist_allgatherv_f32(buf, d->counts, d->displs); }
