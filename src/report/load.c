/* report/load.c — reading run and experiment directories back for `hone report`
 * (report.h): metrics.jsonl into per-key series, manifest.json, experiment.json (format
 * "hone-experiment" version 1, docs/search.md) or, without it, trial-* children whose
 * differing configuration keys are taken as the hyperparameters; hone compare's rows. */
#include "report/report.h"
#include "base/util.h"
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int oom(hone_error *err) { return hone_fail(err, "out of memory"); }

static char *dup_str(const char *s) { return strdup(s ? s : ""); }

/* the last path component of dir (trailing slashes ignored) into out */
static void base_name(const char *dir, char *out, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(out, n, "%.*s", (int)(len - b), dir + b);
}

static report_series *series_get(report_run *run, const char *key) {
    for (int i = 0; i < run->ns; i++)
        if (!strcmp(run->s[i].key, key)) return &run->s[i];
    report_series *s = realloc(run->s, sizeof *s * (size_t)(run->ns + 1));
    if (!s) return NULL;
    run->s = s;
    s = &run->s[run->ns];
    memset(s, 0, sizeof *s);
    if (!(s->key = strdup(key))) return NULL;
    run->ns++;
    return s;
}

static int series_add(report_series *s, long step, double v) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        long *st = realloc(s->step, sizeof *st * (size_t)cap);
        if (!st) return -1;
        s->step = st;
        double *va = realloc(s->val, sizeof *va * (size_t)cap);
        if (!va) return -1;
        s->val = va;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->val[s->n++] = v;
    return 0;
}

/* metrics.jsonl text (len bytes, path for messages) into run's series */
static int parse_metrics(report_run *run, const char *txt, size_t len, const char *path, hone_error *err) {
    int line = 0, rc = 0;
    for (const char *p = txt; rc == 0 && p < txt + len;) {
        const char *nl = memchr(p, '\n', (size_t)(txt + len - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(txt + len - p);
        line++;
        size_t k = 0;
        while (k < ll && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k < ll) {
            json_error_t je;
            json_t *o = json_loadb(p, ll, 0, &je);
            json_t *st = o ? json_object_get(o, "step") : NULL;
            if (!o && !nl) break; /* an unterminated last line: a running trainer is writing it */
            if (!o || !json_is_object(o)) rc = hone_fail(err, "%s:%d: bad JSON line: %s", path, line, o ? "not an object" : je.text);
            else if (!json_is_integer(st)) rc = hone_fail(err, "%s:%d: no integer \"step\"", path, line);
            else {
                long step = (long)json_integer_value(st);
                const char *key;
                json_t *v;
                json_object_foreach(o, key, v) {
                    if (!strcmp(key, "step") || !(json_is_number(v) || json_is_null(v))) continue;
                    report_series *s = series_get(run, key);
                    if (!s || series_add(s, step, json_is_null(v) ? NAN : json_number_value(v)) < 0) { rc = oom(err); break; }
                }
                if (step > run->steps) run->steps = step;
            }
            json_decref(o);
        }
        p += ll + 1;
    }
    return rc;
}

/* dir/metrics.jsonl into run's series; 1 when the file is absent (nothing read) */
static int load_metrics(report_run *run, const char *dir, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, "metrics.jsonl");
    if (!hone_file_exists(path)) return 1;
    char *txt;
    size_t len;
    if (hone_read_file(path, &txt, &len, err) < 0) return -1;
    int rc = parse_metrics(run, txt, len, path, err);
    free(txt);
    return rc;
}

/* dir/name as JSON (NULL, no error, when absent) */
static int load_json(const char *dir, const char *name, json_t **out, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, name);
    *out = NULL;
    if (!hone_file_exists(path)) return 0;
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    if (!*out) return hone_fail(err, "%s:%d: bad JSON: %s", path, je.line, je.text);
    return 0;
}

/* a new, empty run appended to r (NULL when out of memory) */
static report_run *new_run(hone_report *r, const char *dir, const char *name, int experiment) {
    report_run *runs = realloc(r->runs, sizeof *runs * (size_t)(r->n_runs + 1));
    if (!runs) return NULL;
    r->runs = runs;
    report_run *run = &r->runs[r->n_runs];
    memset(run, 0, sizeof *run);
    run->metric = NAN;
    run->experiment = experiment;
    if (!(run->dir = dup_str(dir)) || !(run->name = dup_str(name))) { free(run->dir); free(run->name); return NULL; }
    r->n_runs++;
    return run;
}

int report_add_metrics_text(hone_report *r, const char *name, const char *text, size_t len, const char *path, hone_error *err) {
    report_run *run = new_run(r, "", name, -1);
    return run ? parse_metrics(run, text, len, path, err) : oom(err);
}

/* a new run read from dir; must_have_metrics: a missing metrics.jsonl is an error */
static int add_run(hone_report *r, const char *dir, const char *name, int experiment, int must_have_metrics, hone_error *err) {
    report_run *run = new_run(r, dir, name, experiment);
    if (!run) return oom(err);
    int rc = load_metrics(run, dir, err);
    if (rc < 0) return -1;
    if (rc == 1 && must_have_metrics) return hone_fail(err, "%s: no metrics.jsonl (not a hone run directory)", dir);
    if (load_json(dir, "manifest.json", &run->manifest, err) < 0) return -1;
    const char *st = json_string_value(json_object_get(run->manifest, "status"));
    if (st) snprintf(run->status, sizeof run->status, "%s", st);
    return 0;
}

static int add_experiment(hone_report *r, const char *dir, hone_error *err) {
    report_experiment *ex = realloc(r->ex, sizeof *ex * (size_t)(r->n_ex + 1));
    if (!ex) return oom(err);
    r->ex = ex;
    ex = &r->ex[r->n_ex];
    memset(ex, 0, sizeof *ex);
    ex->smaller_is_better = 1;
    ex->first = r->n_runs;
    if (!(ex->dir = dup_str(dir))) return oom(err);
    r->n_ex++;
    return 0;
}

static int add_hp(report_experiment *ex, const char *name) {
    char **hp = realloc(ex->hp, sizeof *hp * (size_t)(ex->n_hp + 1));
    if (!hp) return -1;
    ex->hp = hp;
    if (!(hp[ex->n_hp] = strdup(name))) return -1;
    ex->n_hp++;
    return 0;
}

/* experiment.json (docs/search.md, format version 1) */
static int load_experiment_json(hone_report *r, const char *dir, json_t *j, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, "experiment.json");
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *ver = json_object_get(j, "version"), *trials = json_object_get(j, "trials");
    if (!json_is_object(j) || (fmt && strcmp(fmt, "hone-experiment")) || (ver && json_integer_value(ver) != 1))
        return hone_fail(err, "%s: not a hone experiment of format version 1 (format \"%s\", version %lld)", path, fmt ? fmt : "?",
                         (long long)json_integer_value(ver));
    if (!json_is_array(trials)) return hone_fail(err, "%s: \"trials\" is missing or not a list", path);
    if (add_experiment(r, dir, err) < 0) return -1;
    int e = r->n_ex - 1;
    json_t *s = json_object_get(j, "searcher");
    const char *metric = json_string_value(json_object_get(s, "metric"));
    if (!(r->ex[e].metric = dup_str(metric ? metric : "eval_loss"))) return oom(err);
    json_t *sib = json_object_get(s, "smaller_is_better");
    if (json_is_boolean(sib)) r->ex[e].smaller_is_better = json_is_true(sib);
    r->ex[e].from_json = 1;
    size_t i;
    json_t *h, *t;
    json_array_foreach(json_object_get(j, "hyperparameter_names"), i, h)
        if (json_is_string(h) && add_hp(&r->ex[e], json_string_value(h)) < 0) return oom(err);
    json_array_foreach(trials, i, t) {
        const char *name = json_string_value(json_object_get(t, "name")), *tdir = json_string_value(json_object_get(t, "dir"));
        char nbuf[64], full[4096];
        if (!name) { snprintf(nbuf, sizeof nbuf, "trial-%03lld", (long long)json_integer_value(json_object_get(t, "id"))); name = nbuf; }
        if (tdir && tdir[0] == '/') snprintf(full, sizeof full, "%s", tdir); /* absolute: as it is */
        else hone_path_join(full, sizeof full, dir, tdir ? tdir : name);
        if (add_run(r, full, name, e, 0, err) < 0) return -1;
        report_run *run = &r->runs[r->n_runs - 1];
        const char *st = json_string_value(json_object_get(t, "status"));
        if (st) snprintf(run->status, sizeof run->status, "%s", st);
        json_t *m = json_object_get(t, "metric"), *rk = json_object_get(t, "rank"), *hp = json_object_get(t, "hyperparameters");
        if (json_is_number(m)) run->metric = json_number_value(m);
        if (json_is_integer(rk)) run->rank = (int)json_integer_value(rk);
        if (json_is_object(hp)) run->hparams = json_incref(hp);
        r->ex[e].n++;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* keys a search sets per trial: never hyperparameters */
static int per_trial_key(const char *k) {
    static const char *const keys[] = {"output_dir", "resume_from_checkpoint", "overwrite_output_dir", "threads", "logging_dir", "command", NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(k, keys[i])) return 1;
    return 0;
}

/* the trial's resolved configuration: hone_config.json, else the manifest's "config" */
static json_t *trial_config(const report_run *run) {
    json_t *c = NULL;
    if (load_json(run->dir, "hone_config.json", &c, NULL) == 0 && c) return c;
    c = json_object_get(run->manifest, "config");
    return c ? json_incref(c) : NULL;
}

/* an experiment without experiment.json: trial-* children with metrics.jsonl, sorted by
 * name; hyperparameters: the configuration keys whose values differ; the metric eval_loss
 * (loss when no trial evaluates), ranked smallest first among trials that logged it */
static int load_trial_dirs(hone_report *r, const char *dir, char **names, int nn, hone_error *err) {
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    if (add_experiment(r, dir, err) < 0) return -1;
    int e = r->n_ex - 1;
    for (int i = 0; i < nn; i++) {
        char full[4096];
        hone_path_join(full, sizeof full, dir, names[i]);
        if (add_run(r, full, names[i], e, 1, err) < 0) return -1;
        r->ex[e].n++;
    }
    report_experiment *ex = &r->ex[e];
    int have_eval = 0;
    for (int i = 0; i < ex->n; i++) have_eval |= report_find(&r->runs[ex->first + i], "eval_loss") != NULL;
    if (!(ex->metric = strdup(have_eval ? "eval_loss" : "loss"))) return oom(err);
    json_t **cfg = calloc((size_t)ex->n, sizeof *cfg);
    if (!cfg) return oom(err);
    for (int i = 0; i < ex->n; i++) cfg[i] = trial_config(&r->runs[ex->first + i]);
    const char *key;
    json_t *v;
    int rc = 0;
    if (cfg[0])
        json_object_foreach(cfg[0], key, v) {
            if (per_trial_key(key)) continue;
            int differs = 0;
            for (int i = 1; i < ex->n; i++) differs |= !cfg[i] || !json_equal(v, json_object_get(cfg[i], key));
            if (differs && add_hp(ex, key) < 0) { rc = oom(err); break; }
        }
    for (int i = 0; rc == 0 && i < ex->n; i++) {
        report_run *run = &r->runs[ex->first + i];
        run->hparams = json_object();
        for (int k = 0; k < ex->n_hp; k++) {
            json_t *x = cfg[i] ? json_object_get(cfg[i], ex->hp[k]) : NULL;
            json_object_set(run->hparams, ex->hp[k], x ? x : json_null());
        }
        const report_series *s = report_find(run, ex->metric);
        for (int k = s ? s->n - 1 : -1; k >= 0; k--)
            if (isfinite(s->val[k])) { run->metric = s->val[k]; break; }
    }
    for (int i = 0; i < ex->n; i++) json_decref(cfg[i]);
    free(cfg);
    /* rank: best first, ties by trial order */
    for (int i = 0; i < ex->n; i++) {
        report_run *a = &r->runs[ex->first + i];
        if (!isfinite(a->metric)) continue;
        a->rank = 1;
        for (int k = 0; k < ex->n; k++) {
            const report_run *b = &r->runs[ex->first + k];
            if (k != i && isfinite(b->metric) && (b->metric < a->metric || (b->metric == a->metric && k < i))) a->rank++;
        }
    }
    return rc;
}

static int load_path(hone_report *r, const char *dir, hone_error *err) {
    char p[4096], name[512];
    if (!hone_is_dir(dir)) return hone_fail(err, "%s: not a directory (give a run or experiment directory)", dir);
    hone_path_join(p, sizeof p, dir, "metrics.jsonl");
    base_name(dir, name, sizeof name);
    if (hone_file_exists(p)) return add_run(r, dir, name, -1, 1, err);
    json_t *j;
    if (load_json(dir, "experiment.json", &j, err) < 0) return -1;
    if (j) {
        int rc = load_experiment_json(r, dir, j, err);
        json_decref(j);
        return rc;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    int nn = 0, rc = 0;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "trial-", 6)) continue;
        char m[4096];
        hone_path_join(p, sizeof p, dir, e->d_name);
        hone_path_join(m, sizeof m, p, "metrics.jsonl");
        if (!hone_file_exists(m)) continue;
        char **nx = realloc(names, sizeof *nx * (size_t)(nn + 1));
        if (!nx || !(nx[nn] = strdup(e->d_name))) { free(nx ? nx : names); names = NULL; rc = oom(err); break; }
        names = nx;
        nn++;
    }
    if (d) closedir(d);
    if (rc == 0 && nn) rc = load_trial_dirs(r, dir, names, nn, err);
    else if (rc == 0)
        rc = hone_fail(err, "%s: no metrics.jsonl (a run directory has one), no experiment.json and no trial-*/metrics.jsonl (an experiment)", dir);
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    return rc;
}

/* DIR/compare.jsonl of hone compare: one object per prompt */
static int load_compare(hone_report *r, const char *dir, int required, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, "compare.jsonl");
    if (!hone_file_exists(path)) return required ? hone_fail(err, "%s: no compare.jsonl (hone compare --out DIR writes it)", dir) : 0;
    char *txt;
    size_t len;
    if (hone_read_file(path, &txt, &len, err) < 0) return -1;
    json_t *rows = json_array();
    int line = 0, rc = 0;
    for (char *p = txt; rc == 0 && p < txt + len;) {
        char *nl = memchr(p, '\n', (size_t)(txt + len - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(txt + len - p);
        line++;
        if (ll) {
            json_error_t je;
            json_t *o = json_loadb(p, ll, 0, &je);
            if (!json_is_object(o)) rc = hone_fail(err, "%s:%d: bad JSON line: %s", path, line, o ? "not an object" : je.text);
            else json_array_append(rows, o);
            json_decref(o);
        }
        p += ll + 1;
    }
    free(txt);
    if (rc) { json_decref(rows); return -1; }
    r->compare = rows;
    if (!(r->compare_src = strdup(path))) return oom(err);
    return 0;
}

int report_load(hone_report *r, char *const *paths, int n, const char *compare_dir, hone_error *err) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++)
        if (load_path(r, paths[i], err) < 0) { report_free(r); return -1; }
    int rc = 0;
    if (compare_dir) rc = load_compare(r, compare_dir, 1, err);
    for (int i = 0; !compare_dir && rc == 0 && !r->compare && i < n; i++) {
        char c[4096];
        hone_path_join(c, sizeof c, paths[i], "compare");
        rc = load_compare(r, c, 0, err);
    }
    if (rc < 0) { report_free(r); return -1; }
    /* one name per run: trials of several experiments get the experiment's name in front */
    for (int i = 0; i < r->n_runs && r->n_ex > 1; i++) {
        report_run *run = &r->runs[i];
        if (run->experiment < 0) continue;
        char ex[512], full[1100];
        base_name(r->ex[run->experiment].dir, ex, sizeof ex);
        snprintf(full, sizeof full, "%s/%s", ex, run->name);
        char *s = strdup(full);
        if (s) { free(run->name); run->name = s; }
    }
    return 0;
}

void report_free(hone_report *r) {
    for (int i = 0; i < r->n_runs; i++) {
        report_run *run = &r->runs[i];
        for (int k = 0; k < run->ns; k++) { free(run->s[k].key); free(run->s[k].step); free(run->s[k].val); }
        free(run->s);
        free(run->name);
        free(run->dir);
        json_decref(run->manifest);
        json_decref(run->hparams);
    }
    free(r->runs);
    for (int i = 0; i < r->n_ex; i++) {
        for (int k = 0; k < r->ex[i].n_hp; k++) free(r->ex[i].hp[k]);
        free(r->ex[i].hp);
        free(r->ex[i].dir);
        free(r->ex[i].metric);
    }
    free(r->ex);
    json_decref(r->compare);
    free(r->compare_src);
    memset(r, 0, sizeof *r);
}

const report_series *report_find(const report_run *run, const char *key) {
    for (int i = 0; i < run->ns; i++)
        if (!strcmp(run->s[i].key, key) && run->s[i].n > 0) return &run->s[i];
    return NULL;
}

/* name in o: as one key, else split at a dot into a nested group's key and the rest
 * (experiment.json's flattened names such as lr_scheduler_kwargs.min_lr) */
static json_t *hp_lookup(json_t *o, const char *name) {
    json_t *v = json_object_get(o, name);
    for (const char *dot = strchr(name, '.'); !v && dot; dot = strchr(dot + 1, '.')) {
        char part[256];
        snprintf(part, sizeof part, "%.*s", (int)(dot - name), name);
        json_t *sub = json_object_get(o, part);
        if (json_is_object(sub)) v = hp_lookup(sub, dot + 1);
    }
    return v;
}

void report_hparam_text(const report_run *run, const char *name, char *out, size_t n) {
    out[0] = 0;
    json_t *v = run->hparams ? hp_lookup(run->hparams, name) : NULL;
    if (!v) return;
    if (json_is_string(v)) snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v)) snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(out, n, "%.6g", json_real_value(v));
    else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(out, n, "%s", s ? s : "");
        free(s);
    }
}
