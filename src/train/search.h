/* train/search.h — hyperparameter searches (docs/search.md): the `searcher:` and
 * `hyperparameters:` blocks of a training configuration, the trials they define (grid points
 * spaced as Determined AI spaces them, seeded random draws, a single trial), each trial as
 * the `--set key=value` overrides that make its configuration, a trial's results read back
 * from its run directory, the ranking, the printed table and output_dir/experiment.json.
 * Running the trials (processes, cores, signals) is the CLI's (cli/search_run.c).
 *
 * Ownership: hone_search owns its strings, hyperparameters and trials (search_free);
 * hone_trial_result owns its error string (search_results_free). */
#ifndef HONE_SEARCH_H
#define HONE_SEARCH_H
#include "base/error.h"
#include "train/train_config.h"
#include <jansson.h>
#include <stdio.h>

typedef enum { HP_CONST, HP_CATEGORICAL, HP_DOUBLE, HP_LOG, HP_INT } hone_hparam_type;

/* One searched value: a training key, or one entry (sub) of a mapping-valued key. */
typedef struct hone_hparam {
    char *key;              /* the training key (learning_rate, lr_scheduler_kwargs) */
    char *sub;              /* NULL, or the entry of key's mapping (min_lr) */
    char *name;             /* key, or key.sub: the name in tables and experiment.json */
    hone_hparam_type type;
    json_t *vals;           /* const: [val]; categorical: the values (owned) */
    double minval, maxval;  /* double, log (exponents), int */
    double base;            /* log: 10 unless given */
    long count;             /* double, log, int: grid points, -1 when not given */
} hone_hparam;

typedef struct hone_search {
    char name[16];          /* grid | random | single */
    char *metric;           /* the metrics.jsonl name that ranks trials */
    int smaller_is_better;  /* 1 (default) */
    long max_trials;        /* random: required; grid and single: the number of trials */
    int max_concurrent_trials; /* 1 (default) */
    long seed;              /* random and single: default the configuration's seed */
    hone_hparam *hp;        /* (n_hp) in file order */
    int n_hp;
    json_t *trials;         /* array (n_trials) of objects: each trial's hyperparameters, nested
                               groups as nested objects (experiment.json's "hyperparameters") */
    int n_trials;
} hone_search;

/* Reads the searcher: and hyperparameters: blocks of the YAML file at path and builds the
 * trials. base (the file's configuration with the command line's --sets) supplies the
 * default seed. Errors name file:line:col and the field ("hyperparameters.beta.vals: empty").
 * Returns 1 when the file has a searcher block, 0 when it has none (s left empty; a
 * hyperparameters block without a searcher is an error), -1 on error. */
int search_load(hone_search *s, const char *path, const hone_train_config *base, hone_error *err);
void search_free(hone_search *s);

/* Trial t's (0-based) overrides as "key=value" texts for config_set_arg, in file order: each
 * value in YAML flow form; a nested group's key gets base's mapping with the group's entries
 * set. *kv is a malloc'd array of malloc'd strings (search_sets_free). */
int search_trial_sets(const hone_search *s, int t, const hone_train_config *base, char ***kv, int *n, hone_error *err);
void search_sets_free(char **kv, int n);

/* A value as a short text: numbers in their shortest round-tripping form (5e-07), strings
 * bare, lists and mappings as compact JSON. malloc'd. */
char *search_value_text(const json_t *v);

typedef enum { TRIAL_PENDING, TRIAL_RUNNING, TRIAL_COMPLETED, TRIAL_STOPPED, TRIAL_FAILED } hone_trial_status;
const char *search_status_name(hone_trial_status st);

typedef struct hone_trial_result {
    hone_trial_status status;
    int exit_status;        /* -1: not ended */
    char *error;            /* failed: one line, owned; else NULL */
    int has_metric;
    double metric;          /* the last logged value of the searcher's metric */
    long steps;             /* the last logged step */
    int rank;               /* 1 = best; 0 = unranked */
} hone_trial_result;

/* Reads a trial's run directory: its manifest.json (status, exit status, error) and
 * metrics.jsonl (last step, last value of metric). A directory without a manifest is
 * PENDING; a manifest still "running" (its process killed) reads as STOPPED. */
int search_read_trial(const char *dir, const char *metric, hone_trial_result *r, hone_error *err);
void search_results_free(hone_trial_result *r, int n);

/* Ranks the completed trials with a metric, best first (ties: the lower trial number). */
void search_rank(hone_trial_result *r, int n, int smaller_is_better);

/* The searched hyperparameters' names (those with more than one value in the trials), as
 * experiment.json's hyperparameter_names: a new array reference. */
json_t *search_varied_names(const hone_search *s);

/* Trial t's value of a hyperparameter by its name (key or key.sub); borrowed, NULL if none. */
json_t *search_trial_value(const hone_search *s, int t, const char *name);

/* experiment.json (docs/search.md, format version 1), written atomically to path. */
int search_write_experiment(const hone_search *s, const char *path, const char *command, const char *config, const char *output_dir,
                            const char *status, const hone_trial_result *r, hone_error *err);

/* The ranked table: rank, trial, the searched hyperparameters, the metric, status, steps;
 * ranked trials first, best first, then the others in trial order. */
void search_print_table(const hone_search *s, const hone_trial_result *r, FILE *f);
#endif
