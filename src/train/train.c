/* train/train.c — trainer state, checkpoints, metrics, progress, signals and the
 * step guards (train.h). */
#include "train/train.h"
#include "train/parallel.h"
#include "dist/dist.h"
#include "model/lora.h"
#include "base/rng.h"
#include "model/safetensors.h"
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int trainer_init(hone_trainer *t, hone_model *m, const char *output_dir, const char *src_dir, double lr, int sched,
                 long warmup, long total, double b1, double b2, double eps, double wd, double max_grad_norm, hone_error *err) {
    return trainer_init_dp(t, m, output_dir, src_dir, lr, sched, warmup, total, b1, b2, eps, wd, max_grad_norm, 0, err);
}

int trainer_init_dp(hone_trainer *t, hone_model *m, const char *output_dir, const char *src_dir, double lr, int sched,
                    long warmup, long total, double b1, double b2, double eps, double wd, double max_grad_norm, int zero_stage,
                    hone_error *err) {
    memset(t, 0, sizeof *t);
    t->rank = dist_rank();
    t->zero_stage = zero_stage;
    t->model = m;
    if (m->lora) {
        t->tparams = m->lora->params; t->n_tparams = m->lora->n_params;
        t->n_tfloats = m->lora->num_floats; t->tdata = m->lora->data;
    } else {
        t->tparams = m->params; t->n_tparams = m->n_params;
        t->n_tfloats = m->num_floats; t->tdata = m->data;
    }
    t->grad = hone_alloc(sizeof(float) * (t->n_tfloats ? t->n_tfloats : 1), err);
    if (!t->grad) return -1;
    int vrc = m->lora ? lora_grad_view(m->lora, m, t->grad, &t->g, err) : model_weights_view(m, t->grad, &t->g, err);
    if (vrc < 0) { trainer_free(t); return -1; }
    t->mlo = 0, t->mhi = t->n_tfloats;
    if (dist_size() > 1) {
        t->dp = calloc(1, sizeof *t->dp);
        if (!t->dp) { trainer_free(t); return hone_fail(err, "out of memory"); }
        if (dp_init(t->dp, t->tparams, t->n_tparams, t->n_tfloats, t->grad, zero_stage, err) < 0) {
            free(t->dp);
            t->dp = NULL;
            trainer_free(t);
            return -1;
        }
        if (zero_stage) t->mlo = dp_lo(t->dp), t->mhi = dp_hi(t->dp); /* ZeRO-1: this rank's moments only */
    }
    if (adamw_init(&t->opt, t->mhi - t->mlo, b1, b2, eps, wd, err) < 0) {
        trainer_free(t);
        return -1;
    }
    t->base_lr = lr; sched_init(&t->sched, sched, lr, warmup, total); t->warmup = warmup; t->total_steps = total; t->max_grad_norm = max_grad_norm;
    t->save_total_limit = -1;
    snprintf(t->output_dir, sizeof t->output_dir, "%s", output_dir ? output_dir : "");
    snprintf(t->src_dir, sizeof t->src_dir, "%s", src_dir ? src_dir : "");
    if (output_dir && output_dir[0] && t->rank == 0) { /* rank 0 writes what the run logs */
        if (hone_mkdirs(output_dir, err) < 0) { trainer_free(t); return -1; }
        char p[4096];
        hone_path_join(p, sizeof p, output_dir, "metrics.jsonl");
        t->metrics = fopen(p, "a");
        if (!t->metrics) { trainer_free(t); return hone_fail(err, "%s: cannot open for appending", p); }
    }
    t->progress_tty = isatty(2);
    t->t_start = hone_now();
    return 0;
}

void trainer_free(hone_trainer *t) {
    if (t->metrics) fclose(t->metrics);
    tb_writer_close(&t->tb);
    if (t->model && t->model->lora) lora_grad_view_free(&t->g);
    else weights_view_free(&t->g);
    adamw_free(&t->opt);
    if (t->dp) { dp_free(t->dp); free(t->dp); }
    free(t->grad);
    free(t->acc);
    memset(t, 0, sizeof *t);
}

int trainer_set_optim(hone_trainer *t, int kind, hone_error *err) {
    if (kind == t->opt.kind) return 0;
    if (t->mlo != 0 || t->mhi != t->n_tfloats)
        return hone_fail(err, "optim: the 8-bit AdamW state is not sharded: use zero_stage: 0 with adamw_8bit under mpirun");
    hone_adamw o = t->opt;
    int rc = kind == HONE_OPTIM_ADAMW_8BIT ? adamw_init_8bit(&t->opt, t->tparams, t->n_tparams, o.b1, o.b2, o.eps, o.wd, err)
                                           : adamw_init(&t->opt, t->n_tfloats, o.b1, o.b2, o.eps, o.wd, err);
    if (rc < 0) { t->opt = o; return -1; }
    adamw_free(&o);
    return 0;
}

void trainer_rank_slice(const hone_trainer *t, int nmb, int *k0, int *k1) {
    int N = dist_size(), r = dist_rank();
    if (!t->dp) { *k0 = 0, *k1 = nmb; return; }
    /* contiguous, balanced, rank 0 never empty (it logs): [ceil(nmb r / N), ceil(nmb (r+1) / N)) */
    *k0 = (int)(((long)nmb * r + N - 1) / N);
    *k1 = (int)(((long)nmb * (r + 1) + N - 1) / N);
}

void trainer_hook(hone_trainer *t, hone_acts *a) {
    if (t->dp) dp_hook(t->dp, a);
}

void trainer_unhook(hone_trainer *t, hone_acts *a) {
    /* a hooked backward added each bucket to acc as it posted it */
    int hooked = t->dp && a->layer_done != NULL;
    if (t->dp) dp_unhook(a);
    if (t->acc && !hooked) grad_accumulate_f64(t->acc, t->grad, t->n_tfloats);
}

int trainer_accumulate_fp64(hone_trainer *t, hone_error *err) {
    if (t->acc) return 0;
    t->acc = hone_alloc(sizeof(double) * (t->n_tfloats ? t->n_tfloats : 1), err);
    if (!t->acc) return -1;
    memset(t->acc, 0, sizeof(double) * t->n_tfloats);
    if (t->dp && dp_use_acc(t->dp, t->acc, err) < 0) {
        free(t->acc);
        t->acc = NULL;
        return -1;
    }
    return 0;
}

void trainer_sum(const hone_trainer *t, double *v, int n) {
    if (t->dp) dist_sum_f64(v, n);
}

void trainer_zero_grad(hone_trainer *t) {
    memset(t->grad, 0, sizeof(float) * t->n_tfloats);
    if (t->acc) memset(t->acc, 0, sizeof(double) * t->n_tfloats);
}

double trainer_lr_at(const hone_trainer *t, long step) { return sched_lr(&t->sched, t->base_lr, step); }

void trainer_eval_done(hone_trainer *t, const char *const *keys, const double *vals, int n) {
    const char *want = t->plateau_metric[0] ? t->plateau_metric : "eval_loss";
    for (int i = 0; i < n; i++) {
        if (strcmp(keys[i], want)) continue;
        sched_plateau_step(&t->sched, vals[i]);
        /* transformers' _determine_best_metric: strictly better than the best so far */
        if (t->best_step == 0) t->best_metric = t->greater_is_better ? -INFINITY : INFINITY;
        if (t->greater_is_better ? vals[i] > t->best_metric : vals[i] < t->best_metric) {
            t->best_metric = vals[i];
            t->best_step = t->step;
        }
    }
}

static int ckpt_num(const char *name);
static int load_weights(hone_trainer *t, const char *dir, hone_error *err);

int trainer_load_best(hone_trainer *t, hone_error *err) {
    if (!t->load_best || !t->best_ckpt[0]) return 0;
    if (t->best_step != t->step) {
        if (load_weights(t, t->best_ckpt, err) < 0) return hone_fail_prefix(err, "load_best_model_at_end");
        fprintf(stderr, "load_best_model_at_end: loaded %s (%s %.6g)\n", t->best_ckpt, t->plateau_metric, t->best_metric);
    }
    if (t->save_total_limit == 1 && t->rank == 0) {
        /* transformers keeps only the best checkpoint when the limit is 1 */
        DIR *d = opendir(t->output_dir);
        struct dirent *e;
        char keep[64], old[4096];
        snprintf(keep, sizeof keep, "checkpoint-%ld", t->best_step);
        while (d && (e = readdir(d)))
            if (ckpt_num(e->d_name) >= 0 && strcmp(e->d_name, keep)) {
                hone_path_join(old, sizeof old, t->output_dir, e->d_name);
                hone_remove_tree(old, NULL);
            }
        if (d) closedir(d);
    }
    return 0;
}

/* clips by norm, updates, advances the step; returns the learning rate used. ZeRO-1: this
 * rank's shard, then every shard to every rank. */
static double update(hone_trainer *t, double norm) {
    double l = trainer_lr_at(t, t->step);
    float cs = grad_clip_scale(norm, t->max_grad_norm);
    if (t->dp && t->zero_stage) {
        adamw_update_range(&t->opt, t->tparams, t->n_tparams, t->tdata, t->grad, l, cs, t->mlo, t->mhi);
        dp_gather(t->dp, t->tdata);
    } else {
        adamw_update(&t->opt, t->tparams, t->n_tparams, t->tdata, t->grad, l, cs);
    }
    t->step++;
    return l;
}

/* the step's gradient norm: alone, over the local gradient; data-parallel, after summing the
 * ranks' gradients (NAN when the exchange failed: the step's guard stops the run) */
static double step_norm(hone_trainer *t) {
    if (!t->dp && t->acc) {
        /* the micro-batches' fp64 sum, rounded to float once */
#pragma omp parallel for schedule(static) if (t->n_tfloats > 65536)
        for (size_t i = 0; i < t->n_tfloats; i++) t->grad[i] = (float)t->acc[i];
    }
    if (!t->dp) return grad_global_norm(t->grad, t->n_tfloats);
    hone_error e;
    double n = dp_reduce(t->dp, &e);
    if (n < 0) { dist_fail(e.msg, 1); return NAN; }
    return n;
}

double trainer_apply(hone_trainer *t, double *lr) {
    double norm = step_norm(t);
    double l = update(t, norm);
    if (lr) *lr = l;
    return norm;
}

int trainer_step(hone_trainer *t, double loss, double *gnorm, double *lr, hone_error *err) {
    double norm = step_norm(t);
    *gnorm = norm;
    if (!isfinite(loss) || !isfinite(norm)) {
        char last[4096] = "";
        const char *since = t->output_dir[0] && trainer_find_last_checkpoint(t->output_dir, last, sizeof last) == 0 ? last : NULL;
        return hone_fail(err,
                         "step %ld: the %s is not finite (loss %g, grad norm %g): training diverged; stopped without saving "
                         "this model (%s%s); try a lower learning_rate or max_grad_norm",
                         t->step + 1, isfinite(loss) ? "gradient norm" : "loss", loss, norm,
                         since ? "the last good checkpoint is " : "no checkpoint was written", since ? since : "");
    }
    /* exactly zero gradients and a loss that does not move: nothing is being learned */
    if (norm == 0 && t->flat_steps > 0 && loss == t->flat_loss) t->flat_steps++;
    else t->flat_steps = norm == 0;
    t->flat_loss = loss;
    if (t->flat_steps == TRAINER_FLAT_STEPS && !t->flat_warned) {
        t->flat_warned = 1;
        fprintf(stderr,
                "%swarning: steps %ld-%ld: the gradient norm is exactly 0 and the loss stays %g: nothing is being learned "
                "(no trained tokens? a frozen or saturated loss?)\n",
                t->progress_tty ? "\n" : "", t->step + 2 - TRAINER_FLAT_STEPS, t->step + 1, loss);
    }
    *lr = update(t, norm);
    return 0;
}

int trainer_open_tensorboard(hone_trainer *t, const char *logdir, hone_error *err) {
    tb_writer_close(&t->tb);
    return tb_writer_open(&t->tb, logdir, tb_wall_time(), err);
}

#define LOG_MAX 64

void trainer_log(hone_trainer *t, const char *const *keys, const double *vals, int n) {
    if (!t->metrics) return;
    char tagbuf[LOG_MAX][128];
    const char *tags[LOG_MAX];
    float fv[LOG_MAX];
    int nt = 0;
    fprintf(t->metrics, "{\"step\": %ld", t->step);
    for (int i = 0; i < n; i++) {
        char num[40];
        snprintf(num, sizeof num, "%.9g", vals[i]);
        if (isfinite(vals[i])) fprintf(t->metrics, ", \"%s\": %s", keys[i], num);
        else fprintf(t->metrics, ", \"%s\": null", keys[i]);
        if (t->tb.f && nt < LOG_MAX) {
            tb_tag(keys[i], tagbuf[nt], sizeof tagbuf[nt]);
            tags[nt] = tagbuf[nt];
            /* the text just written, read back and rounded to float as a reader of both does */
            fv[nt++] = isfinite(vals[i]) ? (float)strtod(num, NULL) : (float)vals[i];
        }
    }
    fprintf(t->metrics, "}\n");
    fflush(t->metrics);
    hone_error e;
    if (t->tb.f && tb_writer_scalars(&t->tb, t->step, tb_wall_time(), tags, fv, nt, &e) < 0) {
        fprintf(stderr, "%swarning: %s; TensorBoard logging stops here (metrics.jsonl goes on)\n", t->progress_tty ? "\n" : "", e.msg);
        tb_writer_close(&t->tb);
    }
}

/* seconds as H:MM:SS (tqdm and transformers write MM:SS under an hour; one shape is easier to read down a log) */
static void hms(double secs, char out[32]) {
    long s = secs > 0 && secs < 1e9 ? (long)(secs + 0.5) : 0;
    snprintf(out, 32, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* One line per logging step: on a terminal a live bar rewritten in place (\r, then the
 * rest of the line cleared), else a plain line, so a log file reads one step per line. */
void trainer_progress(hone_trainer *t, double loss, double lr, double gnorm, double tok_per_s) {
    double el = hone_now() - t->t_start;
    long done_here = t->step - t->start_step; /* steps of this process: a resumed run's clock starts at the resume */
    double eta = done_here > 0 ? el / done_here * (t->total_steps - t->step) : 0;
    char e1[32], e2[32];
    hms(el, e1);
    hms(eta, e2);
    int pct = t->total_steps > 0 ? (int)(100 * t->step / t->total_steps) : 0;
    if (t->progress_tty) {
        int w = 20, done = t->total_steps > 0 ? (int)(w * t->step / t->total_steps) : 0;
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < done ? '#' : ' ';
        bar[w] = 0;
        fprintf(stderr, "\r%3d%%|%s| %ld/%ld [%s<%s, %.0f tok/s, loss %.4f, lr %.3g, grad_norm %.3g]", pct, bar, t->step,
                t->total_steps, e1, e2, tok_per_s, loss, lr, gnorm);
    } else {
        fprintf(stderr, "step %ld/%ld (%d%%) loss %.4f lr %.3g grad_norm %.3g %.0f tok/s elapsed %s eta %s", t->step,
                t->total_steps, pct, loss, lr, gnorm, tok_per_s, e1, e2);
    }
    /* a window that held a checkpoint save is slower: say why */
    if (t->save_secs > 0) fprintf(stderr, " (incl. checkpoint save %.1fs)", t->save_secs);
    t->save_secs = 0;
    if (!t->progress_tty || t->step == t->total_steps) fputc('\n', stderr);
    else fputs("\033[K", stderr);
}

void trainer_progress_tick(hone_trainer *t, double loss, double lr, double gnorm, long tokens, double t0) {
    if (!t->progress_tty) return; /* plain logs stay at logging_steps */
    double el = hone_now() - t0;
    trainer_progress(t, loss, lr, gnorm, el > 0 ? tokens / el : 0);
}

/* ---- checkpoints ---- */

typedef struct { hone_trainer *t; int announced; } ckpt_ctx;

/* A ZeRO-1 rank's moments: optimizer.shard-LO-HI.safetensors holding exp_avg and exp_avg_sq of
 * the trained floats [LO, HI) as flat vectors; any rank count reads the ranges it needs. */
#define SHARD_FMT "optimizer.shard-%zu-%zu.safetensors"

static int write_moments(hone_trainer *t, const char *dir, hone_error *err) {
    if (t->mlo == 0 && t->mhi == t->n_tfloats) return 0; /* the whole moments: write_optimizer's optimizer.safetensors */
    char name[128], path[4096], meta[160];
    snprintf(name, sizeof name, SHARD_FMT, t->mlo, t->mhi);
    hone_path_join(path, sizeof path, dir, name);
    snprintf(meta, sizeof meta, "{\"first\": \"%zu\", \"end\": \"%zu\", \"trained_floats\": \"%zu\"}", t->mlo, t->mhi, t->n_tfloats);
    st_entry e[2] = {{.name = "exp_avg", .data = t->opt.m, .ndim = 1, .shape = {(int64_t)(t->mhi - t->mlo)}},
                     {.name = "exp_avg_sq", .data = t->opt.v, .ndim = 1, .shape = {(int64_t)(t->mhi - t->mlo)}}};
    return st_write(path, e, 2, ST_F32, meta, err);
}

/* The moments' entries for optimizer.safetensors: exp_avg.<name> / exp_avg_sq.<name> (fp32) per
 * tensor; with the 8-bit optimizer its 8-bit tensors as state1/state2.<name> (U8, the tensor's
 * shape) and absmax1/absmax2.<name> (fp32, one per block of 256), bitsandbytes' state names. */
static int optimizer_entries(const hone_trainer *t, st_entry *e, char **names) {
    const hone_adamw *o = &t->opt;
    int k = 0, n = t->n_tparams;
    for (int pass = 0; pass < 2; pass++) /* fp32 entries first, bytes last (keeps floats aligned) */
        for (int j = 0; j < 2 * n; j++) {
            int i = j % n, second = j >= n, is8 = o->kind == HONE_OPTIM_ADAMW_8BIT && o->is8[i];
            const hone_param *p = &t->tparams[i];
            size_t nb = (p->numel + OPTIM_8BIT_BLOCK - 1) / OPTIM_8BIT_BLOCK;
            if (pass == 0 && is8) { /* absmax */
                names[k] = malloc(strlen(p->name) + 16);
                sprintf(names[k], "absmax%d.%s", second + 1, p->name);
                e[k] = (st_entry){.name = names[k], .data = (second ? o->absmax2 : o->absmax1) + o->boff[i], .ndim = 1, .shape = {(int64_t)nb}};
                k++;
                continue;
            }
            if (pass == 0 || is8) {
                names[k] = malloc(strlen(p->name) + 16);
                const void *d;
                if (is8) {
                    sprintf(names[k], "state%d.%s", second + 1, p->name);
                    d = (second ? o->q2 : o->q1) + o->soff[i];
                } else {
                    sprintf(names[k], "%s.%s", second ? "exp_avg_sq" : "exp_avg", p->name);
                    size_t off = o->kind == HONE_OPTIM_ADAMW_8BIT ? o->soff[i] : p->offset;
                    d = (second ? o->v : o->m) + off;
                }
                e[k] = (st_entry){.name = names[k], .data = d, .ndim = p->ndim, .shape = {p->shape[0], p->shape[1]}, .is_u8 = is8};
                k++;
            }
        }
    return k;
}

static int write_optimizer(const char *dir, void *ctx, hone_error *err) {
    ckpt_ctx *cx = ctx;
    hone_trainer *t = cx->t;
    if (t->dp) { /* the other ranks write their parts into this directory before it is renamed into place */
        char tmp[4096] = {0};
        snprintf(tmp, sizeof tmp, "%s", dir);
        dist_bcast(tmp, sizeof tmp, 0);
        cx->announced = 1;
    }
    int whole = t->mlo == 0 && t->mhi == t->n_tfloats; /* else a ZeRO-1 shard (fp32 moments only) */
    int rc = whole ? 0 : write_moments(t, dir, err);
    int n = whole ? t->n_tparams : 0, k = 0;
    st_entry *e = calloc(4 * n + 1, sizeof(st_entry));
    char **names = calloc(4 * n + 1, sizeof(char *));
    if (!e || !names) rc = hone_fail(err, "out of memory");
    else if (whole) k = optimizer_entries(t, e, names);
    char path[4096];
    hone_path_join(path, sizeof path, dir, "optimizer.safetensors");
    if (rc == 0 && whole) rc = st_write(path, e, k, ST_F32, t->opt.kind == HONE_OPTIM_ADAMW_8BIT ? "{\"optim\": \"adamw_8bit\"}" : NULL, err);
    for (int i = 0; i < k; i++) free(names[i]);
    free(names);
    free(e);
    if (t->dp) {
        /* the checkpoint counts only when every rank's part is on disk */
        int first = dist_first_failed(rc == 0);
        if (first >= 0 && rc == 0) rc = hone_fail(err, "%s: rank %d could not write its part of the checkpoint", dir, first);
    }
    if (rc) return rc;
    json_t *s = json_object();
    json_object_set_new(s, "global_step", json_integer(t->step));
    json_object_set_new(s, "optimizer_step", json_integer(t->opt.step));
    json_object_set_new(s, "epoch", json_integer(t->epoch));
    json_object_set_new(s, "epoch_position", json_integer(t->epoch_pos));
    json_object_set_new(s, "num_tokens", json_real(t->tokens_seen));
    json_object_set_new(s, "max_steps", json_integer(t->total_steps));
    json_t *ex = json_array();
    for (int i = 0; i < t->n_extra; i++) {
        /* exact: doubles as their bit patterns */
        uint64_t u;
        memcpy(&u, &t->extra[i], 8);
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)u);
        json_array_append_new(ex, json_string(hex));
    }
    json_object_set_new(s, "extra_state", ex);
    if (t->best_step > 0) {
        char bm[32];
        uint64_t u;
        memcpy(&u, &t->best_metric, 8);
        snprintf(bm, sizeof bm, "%016llx", (unsigned long long)u);
        json_object_set_new(s, "best_metric", json_real(t->best_metric));
        json_object_set_new(s, "best_metric_bits", json_string(bm));
        json_object_set_new(s, "best_global_step", json_integer(t->best_step));
        json_object_set_new(s, "best_model_checkpoint", t->best_ckpt[0] ? json_string(t->best_ckpt) : json_null());
    }
    if (t->sched.kind == HONE_SCHED_PLATEAU) {
        /* reduce_lr_on_plateau's running state: the rate and best metric as exact bits */
        char lr[32], best[32];
        uint64_t u;
        memcpy(&u, &t->sched.cur_lr, 8);
        snprintf(lr, sizeof lr, "%016llx", (unsigned long long)u);
        memcpy(&u, &t->sched.best, 8);
        snprintf(best, sizeof best, "%016llx", (unsigned long long)u);
        json_object_set_new(s, "lr_scheduler", json_pack("{s:s, s:s, s:I, s:I, s:I}", "lr", lr, "best", best, "num_bad_epochs",
                                                         (json_int_t)t->sched.num_bad, "cooldown_counter",
                                                         (json_int_t)t->sched.cooldown_counter, "evaluations", (json_int_t)t->sched.evals));
    }
    char *txt = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(s);
    hone_path_join(path, sizeof path, dir, "trainer_state.json");
    rc = hone_write_file(path, txt, strlen(txt), err);
    free(txt);
    /* the configuration travels with the checkpoint, so a resume can check it (rundir.h) */
    if (rc == 0 && t->config_json) {
        hone_path_join(path, sizeof path, dir, "hone_config.json");
        rc = hone_write_file(path, t->config_json, strlen(t->config_json), err);
    }
    return rc;
}

static int ckpt_num(const char *name) {
    if (strncmp(name, "checkpoint-", 11)) return -1;
    char *end;
    long v = strtol(name + 11, &end, 10);
    return *end || v < 0 ? -1 : (int)v;
}

int trainer_find_last_checkpoint(const char *output_dir, char *out, size_t n) {
    DIR *d = opendir(output_dir);
    if (!d) return -1;
    int best = -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (ckpt_num(e->d_name) > best) best = ckpt_num(e->d_name);
    closedir(d);
    if (best < 0) return -1;
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%d", best);
    hone_path_join(out, n, output_dir, name);
    return 0;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* -1 naming the first non-finite value of x, laid out like the trained floats [lo, hi) */
static int check_finite(const hone_trainer *t, const float *x, size_t lo, size_t hi, const char *what, const char *dir,
                        hone_error *err) {
    for (int i = 0; i < t->n_tparams; i++) {
        const hone_param *p = &t->tparams[i];
        size_t a = p->offset > lo ? p->offset : lo, b = p->offset + p->numel < hi ? p->offset + p->numel : hi;
        for (size_t j = a; j < b; j++)
            if (!isfinite(x[j - lo]))
                return hone_fail(err, "step %ld: %s of '%s' holds %g at element %zu: %s is not saved", t->step, what, p->name, x[j - lo],
                                 j - p->offset, dir);
    }
    return 0;
}

/* ranks other than 0 in a checkpoint save: their moment shard into rank 0's directory */
static int save_part(hone_trainer *t, const char *dir, hone_error *err) {
    char tmp[4096];
    dist_bcast(tmp, sizeof tmp, 0);
    if (!tmp[0]) return hone_fail(err, "%s: rank 0 could not write the checkpoint", dir);
    int rc = write_moments(t, tmp, err);
    int first = dist_first_failed(rc == 0), final_rc = 0;
    dist_bcast(&final_rc, sizeof final_rc, 0);
    if (rc) return rc;
    if (first >= 0) return hone_fail(err, "%s: rank %d could not write its part of the checkpoint", dir, first);
    if (final_rc) return hone_fail(err, "%s: rank 0 could not write the checkpoint", dir);
    return 0;
}

int trainer_save_checkpoint(hone_trainer *t, hone_error *err) {
    char name[64], dir[4096];
    snprintf(name, sizeof name, "checkpoint-%ld", t->step);
    hone_path_join(dir, sizeof dir, t->output_dir, name);
    int bad = check_finite(t, t->tdata, 0, t->n_tfloats, "the weight", dir, err) < 0;
    if (!bad && t->opt.kind == HONE_OPTIM_ADAMW_8BIT) {
        /* the 8-bit state (never sharded): its fp32 moments and block scales (bytes are always finite) */
        const hone_adamw *o = &t->opt;
        for (size_t i = 0; !bad && i < o->n32; i++)
            if (!isfinite(o->m[i]) || !isfinite(o->v[i]))
                bad = 1, hone_fail(err, "step %ld: an Adam moment is not finite: %s is not saved", t->step, dir);
        for (size_t i = 0; !bad && i < o->nblocks; i++)
            if (!isfinite(o->absmax1[i]) || !isfinite(o->absmax2[i]))
                bad = 1, hone_fail(err, "step %ld: an 8-bit Adam state scale is not finite: %s is not saved", t->step, dir);
    } else if (!bad)
        bad = check_finite(t, t->opt.m, t->mlo, t->mhi, "the Adam moment exp_avg", dir, err) < 0 ||
              check_finite(t, t->opt.v, t->mlo, t->mhi, "the Adam moment exp_avg_sq", dir, err) < 0;
    if (t->dp) {
        int first = dist_first_failed(!bad);
        if (first >= 0 && !bad) return hone_fail(err, "%s: rank %d holds non-finite values: the checkpoint is not saved", dir, first);
    }
    if (bad) return -1;
    if (t->best_step > 0) {
        /* transformers: the best step's checkpoint, once it exists, is best_model_checkpoint */
        char bn[64], bd[4096];
        snprintf(bn, sizeof bn, "checkpoint-%ld", t->best_step);
        hone_path_join(bd, sizeof bd, t->output_dir, bn);
        if (t->best_step == t->step || hone_is_dir(bd)) snprintf(t->best_ckpt, sizeof t->best_ckpt, "%s", bd);
    }
    double t0 = hone_now();
    ckpt_ctx c = {t, 0};
    if (t->dp && t->rank != 0) return save_part(t, dir, err);
    /* fp32 whatever the base's dtype: these are the master weights resume continues from; a
     * LoRA run's checkpoint is a PEFT adapter directory plus the optimizer and trainer state */
    const char *src = t->src_dir[0] ? t->src_dir : NULL;
    int rc = t->model->lora ? lora_save(t->model->lora, t->model, dir, src, write_optimizer, &c, err)
                            : model_save_ex(t->model, dir, src, "float32", write_optimizer, &c, err);
    if (t->dp) { /* tell the other ranks how it ended (an empty directory: before their part was asked for) */
        if (!c.announced) {
            char none[4096] = {0};
            dist_bcast(none, sizeof none, 0);
        } else {
            int final_rc = rc;
            dist_bcast(&final_rc, sizeof final_rc, 0);
        }
    }
    if (rc < 0) return -1;
    if (t->save_total_limit > 0) {
        /* the oldest go first; the one just written (the newest good one) always stays,
         * even when stale higher-numbered ones from elsewhere sit beside it */
        DIR *d = opendir(t->output_dir);
        int nums[4096], k = 0;
        struct dirent *e;
        while (d && (e = readdir(d)) && k < 4096)
            if (ckpt_num(e->d_name) >= 0 && ckpt_num(e->d_name) != t->step &&
                !(t->best_ckpt[0] && ckpt_num(e->d_name) == t->best_step)) /* the best one stays too (transformers) */
                nums[k++] = ckpt_num(e->d_name);
        if (d) closedir(d);
        qsort(nums, k, sizeof(int), cmp_int);
        int keep = (int)t->save_total_limit - 1 - (t->best_ckpt[0] && t->best_step != t->step);
        if (keep < 0) keep = 0; /* limit 1 and a best checkpoint: the best and the newest stay */
        for (int i = 0; i + keep < k; i++) {
            char old[4096];
            snprintf(name, sizeof name, "checkpoint-%d", nums[i]);
            hone_path_join(old, sizeof old, t->output_dir, name);
            hone_remove_tree(old, NULL);
        }
    }
    double dt = hone_now() - t0;
    t->save_secs += dt;
    fprintf(stderr, "%ssaved %s in %.1fs\n", t->progress_tty ? "\n" : "", dir, dt);
    return 0;
}

int trainer_save_final(hone_trainer *t, hone_error *err) {
    char dir[4096];
    hone_path_join(dir, sizeof dir, t->output_dir, "final");
    if (t->rank != 0) return 0; /* every rank holds the same weights: rank 0 writes them */
    if (check_finite(t, t->tdata, 0, t->n_tfloats, "the weight", dir, err) < 0) return -1;
    if (t->model->lora) return lora_save(t->model->lora, t->model, dir, t->src_dir[0] ? t->src_dir : NULL, NULL, NULL, err);
    return model_save_ex(t->model, dir, t->src_dir[0] ? t->src_dir : NULL, t->save_dtype[0] ? t->save_dtype : "float32", NULL, NULL,
                         err);
}

int trainer_end_step(hone_trainer *t, long save_steps, int quiet, hone_error *err) {
    int last = t->step == t->total_steps;
    int stop = trainer_stop_requested(t);
    if (t->dp) {
        /* a signal reaches the ranks at different moments: they stop together, after the
         * same step, when any of them got one */
        int first = dist_first_failed(!stop);
        if (first >= 0 && !stop) stop = t->stop_signal = SIGTERM;
    }
    if (t->output_dir[0] && ((save_steps > 0 && t->step % save_steps == 0 && !last) || stop))
        if (trainer_save_checkpoint(t, err) < 0) return -1;
    if (!stop) return 0;
    if (!quiet)
        fprintf(stderr, "stopped by %s after step %ld%s\n", stop == SIGINT ? "SIGINT" : "SIGTERM", t->step,
                t->output_dir[0] ? "; checkpoint saved" : "");
    return 1;
}

/* keeps only metrics lines whose "step" is <= step */
static void truncate_metrics(hone_trainer *t, long step) {
    if (!t->metrics) return;
    char p[4096];
    hone_path_join(p, sizeof p, t->output_dir, "metrics.jsonl");
    fclose(t->metrics);
    t->metrics = NULL;
    char *txt;
    size_t len;
    if (hone_read_file(p, &txt, &len, NULL) == 0) {
        char *out = malloc(len + 1);
        size_t o = 0;
        for (char *line = txt; *line;) {
            char *nl = strchr(line, '\n');
            size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
            long s = -1;
            sscanf(line, "{\"step\": %ld", &s);
            if (s >= 0 && s <= step) { memcpy(out + o, line, ll); o += ll; }
            line += ll;
        }
        hone_write_file(p, out, o, NULL);
        free(out);
        free(txt);
    }
    t->metrics = fopen(p, "a");
}

int trainer_read_optimizer(hone_trainer *t, const st_file *f, const char *path, hone_error *err) {
    int n = t->n_tparams, rc = 0;
    st_entry *e = calloc(4 * n + 1, sizeof(st_entry));
    char **names = calloc(4 * n + 1, sizeof(char *));
    if (!e || !names) { free(e); free(names); return hone_fail(err, "out of memory"); }
    int k = optimizer_entries(t, e, names);
    for (int i = 0; i < k && rc == 0; i++) {
        const st_tensor *ts = st_find(f, e[i].name);
        size_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) numel *= (size_t)e[i].shape[d];
        if (!ts || st_numel(ts) != numel)
            rc = hone_fail(err, "%s: tensor '%s' missing or of the wrong size (a checkpoint of another optim?)", path, e[i].name);
        else if (e[i].is_u8) {
            if (ts->dtype != ST_U8) rc = hone_fail(err, "%s: tensor '%s' must be U8", path, e[i].name);
            else memcpy((void *)e[i].data, f->data + ts->offset, numel); /* e[i].data points into the trainer's own state */
        } else rc = st_read_f32(f, ts, (float *)e[i].data, err);
    }
    for (int i = 0; i < k; i++) free(names[i]);
    free(names);
    free(e);
    return rc;
}

int trainer_read_state(hone_trainer *t, const char *json_text, size_t len, const char *path, double *extra, int n_extra,
                       hone_error *err) {
    int rc = 0;
    json_error_t je;
    json_t *s = json_loadb(json_text, len, 0, &je);
    if (!s) return hone_fail(err, "%s:%d: %s", path, je.line, je.text);
    /* every field this resume reads must be there: a default of 0 would silently restart */
    static const char *const fields[] = {"global_step", "optimizer_step", "epoch", "epoch_position"};
    long *dst[] = {&t->step, &t->opt.step, &t->epoch, &t->epoch_pos};
    for (int i = 0; i < 4 && rc == 0; i++) {
        json_t *v = json_is_object(s) ? json_object_get(s, fields[i]) : NULL;
        if (!v) rc = hone_fail(err, "%s: field '%s' is missing", path, fields[i]);
        else if (!json_is_integer(v) || json_integer_value(v) < 0)
            rc = hone_fail(err, "%s: field '%s' must be a non-negative integer", path, fields[i]);
        else *dst[i] = (long)json_integer_value(v);
    }
    json_t *ex = json_object_get(s, "extra_state");
    if (rc == 0 && !json_is_number(json_object_get(s, "num_tokens")))
        rc = hone_fail(err, "%s: field 'num_tokens' is missing or not a number", path);
    if (rc == 0 && n_extra > 0 && (int)json_array_size(ex) < n_extra)
        rc = hone_fail(err, "%s: field 'extra_state' must list %d values", path, n_extra);
    if (rc == 0 && t->total_steps > 0 && t->step > t->total_steps)
        rc = hone_fail(err, "%s: the checkpoint is at step %ld, beyond the %ld step(s) of this run (max_steps or num_train_epochs)", path,
                       t->step, t->total_steps);
    if (rc == 0) t->tokens_seen = json_number_value(json_object_get(s, "num_tokens"));
    for (int i = 0; rc == 0 && i < n_extra; i++) {
        const char *hex = json_string_value(json_array_get(ex, i));
        if (!hex) { rc = hone_fail(err, "%s: extra_state[%d] is not a hex string", path, i); break; }
        unsigned long long u = strtoull(hex, NULL, 16);
        memcpy(&extra[i], &u, 8);
    }
    json_t *bs = json_object_get(s, "best_metric_bits"), *bg = json_object_get(s, "best_global_step");
    if (rc == 0 && json_is_string(bs) && json_is_integer(bg)) {
        uint64_t u = strtoull(json_string_value(bs), NULL, 16);
        memcpy(&t->best_metric, &u, 8);
        t->best_step = (long)json_integer_value(bg);
        const char *bc = json_string_value(json_object_get(s, "best_model_checkpoint"));
        snprintf(t->best_ckpt, sizeof t->best_ckpt, "%s", bc && hone_is_dir(bc) ? bc : "");
    }
    json_t *ls = json_object_get(s, "lr_scheduler");
    if (rc == 0 && t->sched.kind == HONE_SCHED_PLATEAU && ls) {
        const char *lr = json_string_value(json_object_get(ls, "lr")), *best = json_string_value(json_object_get(ls, "best"));
        if (!lr || !best) { json_decref(s); return hone_fail(err, "%s: lr_scheduler: lr and best must be hex strings", path); }
        uint64_t u = strtoull(lr, NULL, 16);
        memcpy(&t->sched.cur_lr, &u, 8);
        u = strtoull(best, NULL, 16);
        memcpy(&t->sched.best, &u, 8);
        t->sched.num_bad = (long)json_integer_value(json_object_get(ls, "num_bad_epochs"));
        t->sched.cooldown_counter = (long)json_integer_value(json_object_get(ls, "cooldown_counter"));
        t->sched.evals = (long)json_integer_value(json_object_get(ls, "evaluations"));
    }
    json_decref(s);
    return rc;
}

/* the trained tensors of checkpoint dir into the model (or its adapters) */
static int load_weights(hone_trainer *t, const char *dir, hone_error *err) {
    if (t->model->lora) return lora_load_weights(t->model->lora, dir, err);
    hone_model m2;
    if (model_load(&m2, dir, 0, err) < 0) return -1;
    if (m2.num_floats != t->model->num_floats) { model_free(&m2); return hone_fail(err, "%s: checkpoint does not match the model", dir); }
    memcpy(t->model->data, m2.data, sizeof(float) * m2.num_floats);
    model_free(&m2);
    return 0;
}

/* copies floats [a, b) of the trained layout from tensor ts (holding floats [first, ...)) into
 * the moments m (holding [t->mlo, ...)) */
static int copy_range(const hone_trainer *t, const st_file *f, const st_tensor *ts, size_t first, size_t a, size_t b, float *m,
                      const char *path, hone_error *err) {
    if (ts->dtype != ST_F32) return hone_fail(err, "%s: tensor '%s' is %s, not F32", path, ts->name, st_dtype_name(ts->dtype));
    memcpy(m + (a - t->mlo), f->data + ts->offset + sizeof(float) * (a - first), sizeof(float) * (b - a));
    return 0;
}

/* this rank's moments [mlo, mhi) from optimizer.safetensors (one tensor pair per trained
 * tensor) or from ZeRO-1 shard files written at any rank count */
static int read_moments(hone_trainer *t, const char *dir, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, "optimizer.safetensors");
    st_file f;
    int rc = 0;
    if (hone_file_exists(path)) {
        if (st_open(&f, path, err) < 0) return -1;
        if (t->mlo == 0 && t->mhi == t->n_tfloats) rc = trainer_read_optimizer(t, &f, path, err);
        for (int i = 0; rc == 0 && !(t->mlo == 0 && t->mhi == t->n_tfloats) && i < 2 * t->n_tparams; i++) {
            const hone_param *p = &t->tparams[i % t->n_tparams];
            size_t a = p->offset > t->mlo ? p->offset : t->mlo, b = p->offset + p->numel < t->mhi ? p->offset + p->numel : t->mhi;
            if (b <= a) continue;
            char name[160];
            snprintf(name, sizeof name, "%s.%s", i < t->n_tparams ? "exp_avg" : "exp_avg_sq", p->name);
            const st_tensor *ts = st_find(&f, name);
            if (!ts || st_numel(ts) != p->numel) rc = hone_fail(err, "%s: tensor '%s' missing or of the wrong size", path, name);
            else rc = copy_range(t, &f, ts, p->offset, a, b, i < t->n_tparams ? t->opt.m : t->opt.v, path, err);
        }
        st_close(&f);
        return rc;
    }
    DIR *d = opendir(dir);
    if (!d) return hone_fail(err, "%s: cannot read the directory", dir);
    struct dirent *e;
    size_t covered = 0, n_files = 0;
    while (rc == 0 && (e = readdir(d))) {
        size_t lo, hi;
        char tail[64];
        if (sscanf(e->d_name, "optimizer.shard-%zu-%zu.%63s", &lo, &hi, tail) != 3 || strcmp(tail, "safetensors")) continue;
        n_files++;
        size_t a = lo > t->mlo ? lo : t->mlo, b = hi < t->mhi ? hi : t->mhi;
        if (hi <= lo || hi > t->n_tfloats) { rc = hone_fail(err, "%s/%s: range %zu-%zu is not inside the %zu trained floats", dir, e->d_name, lo, hi, t->n_tfloats); break; }
        if (b <= a) continue;
        hone_path_join(path, sizeof path, dir, e->d_name);
        if (st_open(&f, path, err) < 0) { rc = -1; break; }
        const st_tensor *m = st_find(&f, "exp_avg"), *v = st_find(&f, "exp_avg_sq");
        if (!m || !v || st_numel(m) != hi - lo || st_numel(v) != hi - lo)
            rc = hone_fail(err, "%s: exp_avg / exp_avg_sq missing or not of %zu floats", path, hi - lo);
        if (rc == 0) rc = copy_range(t, &f, m, lo, a, b, t->opt.m, path, err);
        if (rc == 0) rc = copy_range(t, &f, v, lo, a, b, t->opt.v, path, err);
        st_close(&f);
        covered += b - a;
    }
    closedir(d);
    if (rc == 0 && covered != t->mhi - t->mlo)
        rc = hone_fail(err, "%s: %s (the optimizer state of floats %zu-%zu is %s)", dir,
                       n_files ? "the optimizer shard files do not cover this rank's part" : "optimizer.safetensors is missing", t->mlo,
                       t->mhi, n_files ? "incomplete" : "absent");
    return rc;
}

int trainer_load_checkpoint(hone_trainer *t, const char *dir, double *extra, int n_extra, hone_error *err) {
    if (load_weights(t, dir, err) < 0) return hone_fail_prefix(err, "resume_from_checkpoint");
    char path[4096];
    int rc = read_moments(t, dir, err);
    if (rc) return rc;
    hone_path_join(path, sizeof path, dir, "trainer_state.json");
    size_t len;
    char *txt;
    if (hone_read_file(path, &txt, &len, err) < 0) return -1;
    rc = trainer_read_state(t, txt, len, path, extra, n_extra, err);
    free(txt);
    if (rc) return rc;
    truncate_metrics(t, t->step);
    t->start_step = t->step; /* progress and ETA count from here */
    t->t_start = hone_now();
    return 0;
}

/* The set is built where it is used, never kept in the trainer: trainer_init
 * zeroes the trainer, and a zeroed set made the old sigwait wait for ever. */
static void stop_set(sigset_t *s) {
    sigemptyset(s);
    sigaddset(s, SIGINT);
    sigaddset(s, SIGTERM);
}

void trainer_block_signals(void) {
    sigset_t s;
    stop_set(&s);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
}

int trainer_stop_requested(hone_trainer *t) {
    sigset_t s;
    stop_set(&s);
    struct timespec zero = {0, 0};
    int sig;
    /* a zero timeout: takes a pending one, never waits */
    while ((sig = sigtimedwait(&s, NULL, &zero)) < 0 && errno == EINTR) {}
    if (sig > 0) t->stop_signal = sig;
    return sig > 0 ? sig : 0;
}

void trainer_epoch_order(long *perm, long n, uint64_t seed, long epoch, int shuffle) {
    for (long i = 0; i < n; i++) perm[i] = i;
    if (!shuffle) return;
    hone_rng r;
    uint64_t s = seed;
    for (long e = 0; e <= epoch; e++) rng_splitmix64(&s);
    rng_seed(&r, s);
    rng_shuffle_indices(&r, (size_t *)perm, (size_t)n);
}

long trainer_batches_per_epoch(long n_rows, int bs, int drop_last) {
    return drop_last ? n_rows / bs : (n_rows + bs - 1) / bs;
}

int trainer_next_microbatches(hone_trainer *t, long *perm, long n_rows, int bs, int accum, uint64_t seed, int shuffle,
                              long *start, int *count) {
    long per_epoch = trainer_batches_per_epoch(n_rows, bs, t->drop_last);
    int n = 0;
    while (n < accum) {
        if (t->epoch_pos >= per_epoch) {
            if (n > 0) break; /* a step never spans two epochs */
            t->epoch++;
            t->epoch_pos = 0;
            trainer_epoch_order(perm, n_rows, seed, t->epoch, shuffle);
        }
        start[n] = t->epoch_pos * bs;
        count[n] = (int)(n_rows - start[n] < bs ? n_rows - start[n] : bs);
        n++;
        t->epoch_pos++;
    }
    return n;
}
