/* train/schedule.c — learning-rate schedules (schedule.h). Each lambda is written in the
 * order of operations of transformers' optimization.py (Python floats are doubles), so
 * base_lr * lambda(step) is the bits LambdaLR produces; kwargs are checked the way the
 * scheduler functions check them, with errors naming the key. */
#include "train/schedule.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const sched_names[] = {
    [HONE_SCHED_CONSTANT] = "constant",
    [HONE_SCHED_LINEAR] = "linear",
    [HONE_SCHED_COSINE] = "cosine",
    [HONE_SCHED_CONSTANT_WARMUP] = "constant_with_warmup",
    [HONE_SCHED_COSINE_RESTARTS] = "cosine_with_restarts",
    [HONE_SCHED_POLYNOMIAL] = "polynomial",
    [HONE_SCHED_INVERSE_SQRT] = "inverse_sqrt",
    [HONE_SCHED_PLATEAU] = "reduce_lr_on_plateau",
    [HONE_SCHED_COSINE_MIN_LR] = "cosine_with_min_lr",
    [HONE_SCHED_COSINE_WARMUP_MIN_LR] = "cosine_warmup_with_min_lr",
    [HONE_SCHED_WSD] = "warmup_stable_decay",
};
#define N_SCHED ((int)(sizeof sched_names / sizeof *sched_names))

int sched_from_name(const char *name, hone_error *err) {
    if (!name) return HONE_SCHED_LINEAR;
    for (int i = 0; i < N_SCHED; i++)
        if (!strcmp(name, sched_names[i])) return i;
    if (!strcmp(name, "greedy"))
        return hone_fail(err, "lr_scheduler_type: 'greedy' is not supported by hone (every other transformers schedule is)");
    return hone_fail(err, "lr_scheduler_type: '%s' is not one of linear, cosine, cosine_with_restarts, polynomial, constant, "
                          "constant_with_warmup, inverse_sqrt, reduce_lr_on_plateau, cosine_with_min_lr, "
                          "cosine_warmup_with_min_lr, warmup_stable_decay", name);
}

void sched_init(hone_sched *s, int kind, double base_lr, long warmup, long total) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->warmup = warmup;
    s->total = total;
    s->num_cycles = kind == HONE_SCHED_COSINE_RESTARTS ? 1.0 : 0.5;
    s->lr_end = 1e-7;
    s->power = 1.0;
    s->min_lr_rate = -1;       /* required by the *_min_lr kinds: checked in sched_set_kwargs */
    s->warmup_lr_rate = -1;
    s->num_decay_steps = -1;   /* required by wsd */
    s->num_stable_steps = -1;
    s->warmup_type = HONE_WSD_LINEAR;
    s->decay_type = HONE_WSD_COSINE;
    s->factor = 0.1;
    s->patience = 10;
    s->threshold = 1e-4;
    s->eps = 1e-8;
    s->cur_lr = base_lr;
    s->best = INFINITY;
}

/* ---- kwargs ---------------------------------------------------------------------------- */
enum { A_NUM, A_INT, A_STR };
typedef struct { const char *name; int type; } arg_def;

static const arg_def *args_of(int kind, int *n) {
    static const arg_def cosine[] = {{"num_cycles", A_NUM}};
    static const arg_def restarts[] = {{"num_cycles", A_INT}};
    static const arg_def poly[] = {{"lr_end", A_NUM}, {"power", A_NUM}};
    static const arg_def isqrt[] = {{"timescale", A_INT}};
    static const arg_def plateau[] = {{"mode", A_STR},     {"factor", A_NUM}, {"patience", A_INT}, {"threshold", A_NUM},
                                      {"threshold_mode", A_STR}, {"cooldown", A_INT}, {"min_lr", A_NUM}, {"eps", A_NUM}};
    static const arg_def minlr[] = {{"num_cycles", A_NUM}, {"min_lr", A_NUM}, {"min_lr_rate", A_NUM}};
    static const arg_def wminlr[] = {{"num_cycles", A_NUM}, {"min_lr", A_NUM}, {"min_lr_rate", A_NUM}, {"warmup_lr_rate", A_NUM}};
    static const arg_def wsd[] = {{"num_decay_steps", A_INT}, {"num_stable_steps", A_INT}, {"warmup_type", A_STR},
                                  {"decay_type", A_STR},      {"min_lr_ratio", A_NUM},     {"num_cycles", A_NUM}};
#define RET(a) return (*n = (int)(sizeof a / sizeof *a), a)
    switch (kind) {
    case HONE_SCHED_LINEAR: *n = 0; return NULL;
    case HONE_SCHED_COSINE: RET(cosine);
    case HONE_SCHED_COSINE_RESTARTS: RET(restarts);
    case HONE_SCHED_POLYNOMIAL: RET(poly);
    case HONE_SCHED_INVERSE_SQRT: RET(isqrt);
    case HONE_SCHED_PLATEAU: RET(plateau);
    case HONE_SCHED_COSINE_MIN_LR: RET(minlr);
    case HONE_SCHED_COSINE_WARMUP_MIN_LR: RET(wminlr);
    case HONE_SCHED_WSD: RET(wsd);
    }
#undef RET
    *n = -1; /* constant, constant_with_warmup: get_scheduler passes them no kwargs */
    return NULL;
}

static int wsd_type(const char *v) {
    return !strcmp(v, "linear") ? HONE_WSD_LINEAR : !strcmp(v, "cosine") ? HONE_WSD_COSINE : !strcmp(v, "1-sqrt") ? HONE_WSD_1SQRT : -1;
}

int sched_set_kwargs(hone_sched *s, const char *kwargs_json, double base_lr, hone_error *err) {
    const char *kn = sched_names[s->kind];
    json_error_t je;
    json_t *o = kwargs_json && *kwargs_json ? json_loads(kwargs_json, 0, &je) : json_object();
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return hone_fail(err, "lr_scheduler_kwargs: expected a mapping, got '%s'", kwargs_json);
    }
    int na;
    const arg_def *a = args_of(s->kind, &na);
    double min_lr = -1, min_lr_rate = -1;
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (na < 0) {
            /* transformers' get_scheduler drops kwargs for these two: say they have no effect */
            fprintf(stderr, "warning: lr_scheduler_kwargs: '%s' has no effect with lr_scheduler_type %s\n", key, kn);
            continue;
        }
        const arg_def *d = NULL;
        for (int i = 0; i < na; i++)
            if (!strcmp(a[i].name, key)) d = &a[i];
        if (!d) {
            char list[256] = "";
            for (int i = 0; i < na; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", a[i].name);
            rc = hone_fail(err, "lr_scheduler_kwargs: '%s' is not a parameter of %s (%s%s)", key, kn, na ? "it takes " : "it takes none",
                           list);
            break;
        }
        if (d->type == A_STR && !json_is_string(v)) { rc = hone_fail(err, "lr_scheduler_kwargs.%s: expected a string", key); break; }
        if (d->type != A_STR && !json_is_number(v)) { rc = hone_fail(err, "lr_scheduler_kwargs.%s: expected a number", key); break; }
        double x = d->type == A_STR ? 0 : json_number_value(v);
        if (d->type == A_INT && (x != floor(x) || fabs(x) > 1e15)) { rc = hone_fail(err, "lr_scheduler_kwargs.%s: expected an integer, got %g", key, x); break; }
        const char *sv = d->type == A_STR ? json_string_value(v) : NULL;
        if (!strcmp(key, "num_cycles")) s->num_cycles = x;
        else if (!strcmp(key, "lr_end")) s->lr_end = x;
        else if (!strcmp(key, "power")) s->power = x;
        else if (!strcmp(key, "timescale")) s->timescale = x;
        else if (!strcmp(key, "min_lr") && s->kind == HONE_SCHED_PLATEAU) s->min_lr = x;
        else if (!strcmp(key, "min_lr")) min_lr = x;
        else if (!strcmp(key, "min_lr_rate")) min_lr_rate = x;
        else if (!strcmp(key, "warmup_lr_rate")) s->warmup_lr_rate = x;
        else if (!strcmp(key, "num_decay_steps")) s->num_decay_steps = (long)x;
        else if (!strcmp(key, "num_stable_steps")) s->num_stable_steps = (long)x;
        else if (!strcmp(key, "min_lr_ratio")) s->min_lr_ratio = x;
        else if (!strcmp(key, "factor")) s->factor = x;
        else if (!strcmp(key, "patience")) s->patience = (long)x;
        else if (!strcmp(key, "threshold")) s->threshold = x;
        else if (!strcmp(key, "cooldown")) s->cooldown = (long)x;
        else if (!strcmp(key, "eps")) s->eps = x;
        else if (!strcmp(key, "warmup_type") || !strcmp(key, "decay_type")) {
            int t = wsd_type(sv);
            if (t < 0) { rc = hone_fail(err, "lr_scheduler_kwargs.%s: '%s' is not one of linear, cosine, 1-sqrt", key, sv); break; }
            *(key[0] == 'w' ? &s->warmup_type : &s->decay_type) = t;
        } else if (!strcmp(key, "mode")) {
            if (strcmp(sv, "min") && strcmp(sv, "max")) { rc = hone_fail(err, "lr_scheduler_kwargs.mode: '%s' is not min or max", sv); break; }
            s->mode_max = !strcmp(sv, "max");
        } else if (!strcmp(key, "threshold_mode")) {
            if (strcmp(sv, "rel") && strcmp(sv, "abs")) { rc = hone_fail(err, "lr_scheduler_kwargs.threshold_mode: '%s' is not rel or abs", sv); break; }
            s->threshold_abs = !strcmp(sv, "abs");
        }
    }
    json_decref(o);
    if (rc) return rc;
    /* the checks the scheduler functions make */
    switch (s->kind) {
    case HONE_SCHED_COSINE_MIN_LR:
    case HONE_SCHED_COSINE_WARMUP_MIN_LR:
        if (min_lr >= 0 && min_lr_rate >= 0) return hone_fail(err, "lr_scheduler_kwargs: give only one of min_lr and min_lr_rate (%s)", kn);
        if (min_lr < 0 && min_lr_rate < 0) return hone_fail(err, "lr_scheduler_kwargs: %s needs min_lr or min_lr_rate", kn);
        s->min_lr_rate = min_lr >= 0 ? min_lr / base_lr : min_lr_rate;
        break;
    case HONE_SCHED_POLYNOMIAL:
        if (!(base_lr > s->lr_end)) return hone_fail(err, "lr_scheduler_kwargs.lr_end (%g) must be smaller than learning_rate (%g)", s->lr_end, base_lr);
        if (s->total - s->warmup <= 0) return hone_fail(err, "polynomial: the training steps (%ld) must exceed the warmup steps (%ld)", s->total, s->warmup);
        break;
    case HONE_SCHED_INVERSE_SQRT:
        if (s->timescale == 0) s->timescale = s->warmup ? (double)s->warmup : 10000.0;
        break;
    case HONE_SCHED_WSD:
        if (s->num_decay_steps < 0) return hone_fail(err, "lr_scheduler_kwargs: warmup_stable_decay needs num_decay_steps");
        if (s->num_stable_steps < 0) s->num_stable_steps = s->total - s->warmup - s->num_decay_steps;
        break;
    case HONE_SCHED_PLATEAU:
        if (s->factor >= 1.0) return hone_fail(err, "lr_scheduler_kwargs.factor: should be < 1.0 (got %g)", s->factor);
        s->best = s->mode_max ? -INFINITY : INFINITY;
        break;
    }
    return 0;
}

/* ---- the lambdas --------------------------------------------------------------------- */
static double warmup_factor(long step, long warmup) { return (double)step / (double)(warmup > 1 ? warmup : 1); }

static double lambda(const hone_sched *s, double base_lr, long step) {
    long w = s->warmup, t = s->total;
    double span = (double)(t - w > 1 ? t - w : 1);
    switch (s->kind) {
    case HONE_SCHED_CONSTANT:
        return 1.0;
    case HONE_SCHED_CONSTANT_WARMUP:
        return step < w ? warmup_factor(step, w) : 1.0;
    case HONE_SCHED_LINEAR:
        if (step < w) return warmup_factor(step, w);
        return fmax(0.0, (double)(t - step) / span);
    case HONE_SCHED_COSINE: {
        if (step < w) return warmup_factor(step, w);
        double progress = (double)(step - w) / span;
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress)));
    }
    case HONE_SCHED_COSINE_RESTARTS: {
        if (step < w) return warmup_factor(step, w);
        double progress = (double)(step - w) / span;
        if (progress >= 1.0) return 0.0;
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * fmod(s->num_cycles * progress, 1.0))));
    }
    case HONE_SCHED_POLYNOMIAL: {
        if (step < w) return warmup_factor(step, w);
        if (step > t) return s->lr_end / base_lr;
        double range = base_lr - s->lr_end;
        double pct = 1 - (double)(step - w) / (double)(t - w);
        double decay = range * pow(pct, s->power) + s->lr_end;
        return decay / base_lr;
    }
    case HONE_SCHED_INVERSE_SQRT: {
        if (step < w) return warmup_factor(step, w);
        double shift = s->timescale - (double)w;
        return 1.0 / sqrt(((double)step + shift) / s->timescale);
    }
    case HONE_SCHED_COSINE_MIN_LR: {
        if (step < w) return warmup_factor(step, w);
        double progress = (double)(step - w) / span;
        double f = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
        f = f * (1 - s->min_lr_rate) + s->min_lr_rate;
        return f > 0 ? f : 0;
    }
    case HONE_SCHED_COSINE_WARMUP_MIN_LR: {
        double cs = (double)step, nw = (double)w, nt = (double)t;
        if (cs < nw) {
            if (s->warmup_lr_rate < 0) return (cs + 1.0) / fmax(1.0, nw);
            return s->warmup_lr_rate + (1.0 - s->warmup_lr_rate) * cs / fmax(1.0, nw - 1);
        }
        double progress = (cs - nw + 1.0) / fmax(1.0, nt - nw);
        double f = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
        f = f * (1 - s->min_lr_rate) + s->min_lr_rate;
        return f > 0 ? f : 0;
    }
    case HONE_SCHED_WSD: {
        double f, r = s->min_lr_ratio;
        if (step < w) {
            double progress = warmup_factor(step, w);
            f = s->warmup_type == HONE_WSD_LINEAR ? progress
              : s->warmup_type == HONE_WSD_COSINE ? 0.5 * (1.0 - cos(M_PI * progress))
                                                  : 1.0 - sqrt(1.0 - progress);
            f = f * (1.0 - r) + r;
            return fmax(0.0, f);
        }
        long st = s->num_stable_steps, d = s->num_decay_steps;
        if (step < w + st) return 1.0;
        if (step < w + st + d) {
            double progress = (double)(step - w - st) / (double)(d > 1 ? d : 1);
            f = s->decay_type == HONE_WSD_LINEAR ? 1.0 - progress
              : s->decay_type == HONE_WSD_COSINE ? 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress))
                                                 : 1.0 - sqrt(progress);
            f = f * (1.0 - r) + r;
            return fmax(0.0, f);
        }
        return r;
    }
    }
    return 1.0;
}

double sched_lr(const hone_sched *s, double base_lr, long step) {
    if (s->kind == HONE_SCHED_PLATEAU) return s->cur_lr;
    return base_lr * lambda(s, base_lr, step);
}

void sched_plateau_step(hone_sched *s, double current) {
    if (s->kind != HONE_SCHED_PLATEAU) return;
    s->evals++;
    int better = s->mode_max ? (s->threshold_abs ? current > s->best + s->threshold : current > s->best * (s->threshold + 1.0))
                             : (s->threshold_abs ? current < s->best - s->threshold : current < s->best * (1.0 - s->threshold));
    if (better) {
        s->best = current;
        s->num_bad = 0;
    } else {
        s->num_bad++;
    }
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->num_bad = 0; /* bad evaluations in cooldown do not count */
    }
    if (s->num_bad > s->patience) {
        double old = s->cur_lr, nw = fmax(old * s->factor, s->min_lr);
        if (old - nw > s->eps) s->cur_lr = nw;
        s->cooldown_counter = s->cooldown;
        s->num_bad = 0;
    }
}
