/* train/schedule.h — the learning-rate schedules of transformers' get_scheduler: every
 * SchedulerType but greedy, with lr_scheduler_kwargs, computed as its LambdaLR lambdas are
 * (checked against get_scheduler in tests/test_schedule.c), and reduce_lr_on_plateau as
 * torch's ReduceLROnPlateau, stepped by evaluations. */
#ifndef HONE_SCHEDULE_H
#define HONE_SCHEDULE_H
#include "base/error.h"

/* transformers' lr_scheduler_type values (SchedulerType), in get_scheduler's semantics. */
enum {
    HONE_SCHED_CONSTANT, HONE_SCHED_LINEAR, HONE_SCHED_COSINE, HONE_SCHED_CONSTANT_WARMUP,
    HONE_SCHED_COSINE_RESTARTS,     /* cosine_with_restarts */
    HONE_SCHED_POLYNOMIAL,
    HONE_SCHED_INVERSE_SQRT,
    HONE_SCHED_PLATEAU,             /* reduce_lr_on_plateau: driven by evaluations */
    HONE_SCHED_COSINE_MIN_LR,       /* cosine_with_min_lr */
    HONE_SCHED_COSINE_WARMUP_MIN_LR,/* cosine_warmup_with_min_lr */
    HONE_SCHED_WSD,                 /* warmup_stable_decay */
};
enum { HONE_WSD_LINEAR, HONE_WSD_COSINE, HONE_WSD_1SQRT };

/* A schedule: its kind, steps and lr_scheduler_kwargs (defaults as transformers'), plus
 * the running state of reduce_lr_on_plateau (saved with checkpoints). */
typedef struct hone_sched {
    int kind;
    long warmup, total;
    double num_cycles;        /* cosine, *_min_lr, wsd: 0.5; cosine_with_restarts: 1 */
    double lr_end, power;     /* polynomial: 1e-7, 1.0 */
    double timescale;         /* inverse_sqrt: 0 = num_warmup_steps or 10000 */
    double min_lr_rate;       /* *_min_lr: from min_lr / lr or min_lr_rate (one is required) */
    double warmup_lr_rate;    /* cosine_warmup_with_min_lr: < 0 = None */
    long num_decay_steps;     /* wsd: required */
    long num_stable_steps;    /* wsd: < 0 = total - warmup - decay */
    int warmup_type, decay_type; /* wsd: HONE_WSD_* (linear, cosine) */
    double min_lr_ratio;      /* wsd: 0 */
    /* reduce_lr_on_plateau (torch.optim.lr_scheduler.ReduceLROnPlateau's arguments) */
    int mode_max;             /* mode: min (0) | max (1) */
    double factor;            /* 0.1 */
    long patience;            /* 10 */
    double threshold;         /* 1e-4 */
    int threshold_abs;        /* threshold_mode: rel (0) | abs (1) */
    long cooldown;            /* 0 */
    double min_lr, eps;       /* 0, 1e-8 */
    /* its state */
    double cur_lr, best;      /* current learning rate; best metric so far (+-inf before the first) */
    long num_bad, cooldown_counter, evals;
} hone_sched;

/* Kind from an lr_scheduler_type name; -1 and err naming the choices when unknown. */
int sched_from_name(const char *name, hone_error *err);
/* Defaults of `kind` for warmup/total steps and base learning rate base_lr. */
void sched_init(hone_sched *s, int kind, double base_lr, long warmup, long total);
/* Applies lr_scheduler_kwargs given as a JSON object text (NULL or "{}": none), checking
 * names, types and the rules of transformers' scheduler functions; errors name the key. */
int sched_set_kwargs(hone_sched *s, const char *kwargs_json, double base_lr, hone_error *err);
/* Learning rate for optimizer step `step` (0-based: the lr used by the update that
 * makes step+1), as transformers' LambdaLR schedules compute it (base_lr * lambda(step));
 * reduce_lr_on_plateau: the current rate. */
double sched_lr(const hone_sched *s, double base_lr, long step);
/* reduce_lr_on_plateau: one evaluation's metric (ReduceLROnPlateau.step(metric)). No-op
 * for the other kinds. */
void sched_plateau_step(hone_sched *s, double metric);

#endif
