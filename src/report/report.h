/* report/ — `hone report`: run and experiment directories read back (metrics.jsonl,
 *   manifest.json, experiment.json, hone compare's output) and turned into one
 *   self-contained HTML page with inline SVG charts. Reads files only, so it sits low:
 *   may include base/ (and jansson); cli/ includes it.
 *
 * report/report.h — what the page is built from (loaded by report_load, load.c), the
 * chart primitives (svg.c) and the page writer (page.c).
 * Ownership: a hone_report owns every string, series and JSON object inside it;
 * report_free releases them. */
#ifndef HONE_REPORT_H
#define HONE_REPORT_H
#include "base/error.h"
#include <jansson.h>
#include <stdio.h>

/* one metric of one run: its logged (step, value) points in file order; a null value
 * (non-finite when logged) is NAN */
typedef struct {
    char *key;    /* metrics.jsonl's name: "loss", "eval_loss", "rewards/margins", ... */
    long *step;   /* (n) */
    double *val;  /* (n) */
    int n, cap;
} report_series;

typedef struct {
    char *name;          /* legend label: "trial-001", or the run directory's name */
    char *dir;           /* the directory as found */
    report_series *s;    /* (ns) one per metrics key, in first-seen order */
    int ns;
    json_t *manifest;    /* manifest.json, or NULL when absent */
    json_t *hparams;     /* a trial's hyperparameters (object), or NULL */
    char status[32];     /* experiment.json's trial status, or the manifest's, or "" */
    double metric;       /* the searcher metric (NAN: none) */
    int rank;            /* 1 = best; 0 = unranked */
    long steps;          /* last logged step */
    int experiment;      /* index into hone_report.ex, -1 for a plain run */
} report_run;

typedef struct {
    char *dir;
    char *metric;        /* searcher.metric ("eval_loss" when unknown) */
    int smaller_is_better;
    char **hp;           /* (n_hp) hyperparameter names (experiment.json's, or the keys that differ between trials) */
    int n_hp;
    int first, n;        /* its trials: runs[first .. first+n) */
    int from_json;       /* 1: experiment.json was read; 0: found as trial-*\/metrics.jsonl */
} report_experiment;

typedef struct {
    report_run *runs;
    int n_runs;
    report_experiment *ex;
    int n_ex;
    json_t *compare;     /* hone compare's compare.jsonl rows (array of objects), or NULL */
    char *compare_src;   /* where it came from */
} hone_report;

/* Reads each path: a run directory (has metrics.jsonl) or an experiment directory
 * (experiment.json, or trial-* children with metrics.jsonl); compare_dir (may be NULL)
 * names a hone compare output directory (else DIR/compare/ of the first path is used when
 * present). Errors name the directory or file and line: a missing metrics.jsonl, bad
 * JSON on line N, an experiment.json of another format. */
int report_load(hone_report *r, char *const *paths, int n, const char *compare_dir, hone_error *err);
void report_free(hone_report *r);
/* Appends a run named name parsed from metrics.jsonl text (len bytes; path names it in
 * errors) to r, which may start zeroed (the fuzz target's entry point). */
int report_add_metrics_text(hone_report *r, const char *name, const char *text, size_t len, const char *path, hone_error *err);
const report_series *report_find(const report_run *run, const char *key);
/* The run's hyperparameter value as display text into out ("" when absent). */
void report_hparam_text(const report_run *run, const char *name, char *out, size_t n);

/* ---- svg.c: charts ---- */

typedef struct {
    const char *title, *key;   /* the chart's title and the metrics key it draws */
    double smooth;             /* TensorBoard's EMA weight in [0, 1) (0: raw only) */
} report_chart;

/* Writes one <svg> line chart of key for every run that logged it (one path with
 * data-series per run; raw points faint under the smoothed line when smooth > 0): nice
 * ticks, a log y axis when every value is positive and they span over two decades.
 * Returns the number of series drawn (0: nothing written). */
int report_svg_chart(FILE *f, const hone_report *r, const report_chart *c);
/* The heatmap of experiment e's metric over its two hyperparameters (n_hp == 2). Returns 1
 * when written, 0 when the experiment is not a 2-D grid. */
int report_svg_heatmap(FILE *f, const hone_report *r, const report_experiment *e);
/* The colour of run i (legend and lines agree). */
const char *report_color(int i);
/* TensorBoard's smoothing: EMA with weight w and debiasing, non-finite points passed through. */
void report_smooth(const double *v, double *out, int n, double w);
/* Tick positions between lo and hi: about want "nice" values (1, 2, 5 x 10^k) for a linear
 * axis, powers of ten (and 2, 5 x when few) for a log axis. Returns the count (<= max). */
int report_ticks(double lo, double hi, int want, int log_axis, double *out, int max);
/* A tick label: as few digits as tell ticks spaced by step apart. */
void report_tick_label(double v, double step, int log_axis, char *out, size_t n);

/* ---- page.c ---- */

/* Writes the whole page (title, charts, trial tables, heatmaps, manifests, compare) to path
 * atomically (temp + rename). */
int report_write(const hone_report *r, const char *path, double smooth, const char *title, hone_error *err);
/* The page into f (report_write's body). */
void report_render(FILE *f, const hone_report *r, double smooth, const char *title);
/* HTML text escaping (&, <, >, ", '). */
void report_html_text(FILE *f, const char *s);
#endif
