/* train/search.c — hyperparameter searches (search.h, docs/search.md): the searcher and
 * hyperparameters blocks (libyaml), Determined's grid spacing, seeded random draws, each
 * trial's --set overrides, results read from a trial's run directory, ranking, the table and
 * experiment.json. */
#include "train/search.h"
#include "base/rng.h"
#include "base/util.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SEARCH_MAX_TRIALS 100000

/* ---------- YAML nodes ---------- */

typedef struct {
    yaml_document_t *doc;
    const char *path;
} ydoc;

static const char *yscalar(const yaml_node_t *n) { return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL; }

static int yplain(const yaml_node_t *n) { return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE; }

static int yfail(const ydoc *d, const yaml_node_t *n, hone_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int yfail(const ydoc *d, const yaml_node_t *n, hone_error *err, const char *field, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hone_fail(err, "%s:%zu:%zu: %s: %s", d->path, n->start_mark.line + 1, n->start_mark.column + 1, field, msg);
}

/* A YAML node as JSON: plain scalars are null, booleans, integers or numbers where they read
 * as one (as --set reads them), other scalars strings; sequences arrays; mappings objects. */
static json_t *ynode_json(const ydoc *d, const yaml_node_t *n) {
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
            json_array_append_new(a, ynode_json(d, yaml_document_get_node(d->doc, *i)));
        return a;
    }
    if (n->type == YAML_MAPPING_NODE) {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            const char *k = yscalar(yaml_document_get_node(d->doc, p->key));
            json_object_set_new(o, k ? k : "", ynode_json(d, yaml_document_get_node(d->doc, p->value)));
        }
        return o;
    }
    const char *s = yscalar(n);
    if (!yplain(n)) return json_string(s);
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) return json_null();
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On", NULL};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "off", "Off", NULL};
    for (int i = 0; t[i]; i++) if (!strcmp(s, t[i])) return json_true();
    for (int i = 0; f[i]; i++) if (!strcmp(s, f[i])) return json_false();
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*end && !errno) return json_integer(v);
    errno = 0;
    double x = strtod(s, &end);
    if (!*end && !errno && isfinite(x)) return json_real(x);
    return json_string(s);
}

static int ynumber(const ydoc *d, const yaml_node_t *n, const char *field, int integer, double *out, hone_error *err) {
    const char *s = yscalar(n);
    char *end;
    errno = 0;
    double v = s && yplain(n) ? strtod(s, &end) : NAN;
    if (!s || !yplain(n) || !*s || *end || errno || !isfinite(v) || (integer && v != floor(v)))
        return yfail(d, n, err, field, "expected %s, got %s", integer ? "an integer" : "a number", s ? s : "a list or mapping");
    *out = v;
    return 0;
}

/* ---------- values as text ---------- */

/* the shortest %g form that reads back as the same double */
static void real_text(double v, char *buf, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

char *search_value_text(const json_t *v) {
    char buf[64];
    if (json_is_real(v)) { real_text(json_real_value(v), buf, sizeof buf); return strdup(buf); }
    if (json_is_string(v)) return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* A value as YAML flow text for config_set: strings single-quoted (so "true" stays a string),
 * numbers exact, lists and mappings as JSON (a YAML flow form). malloc'd. */
static char *yaml_text(const json_t *v) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s), q = 0;
        for (size_t i = 0; i < n; i++) q += s[i] == '\'';
        char *o = malloc(n + q + 3), *w = o;
        if (!o) return NULL;
        *w++ = '\'';
        for (size_t i = 0; i < n; i++) { if (s[i] == '\'') *w++ = '\''; *w++ = s[i]; }
        *w++ = '\'';
        *w = 0;
        return o;
    }
    if (json_is_real(v)) return search_value_text(v);
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

/* ---------- the blocks ---------- */

static const char *const searcher_keys[] = {"name", "metric", "smaller_is_better", "max_trials", "max_concurrent_trials", "seed", NULL};
static const char *const searcher_names[] = {"grid", "random", "single", NULL};
static const char *const hp_types[] = {"const", "categorical", "double", "log", "int", NULL};
static const char *const reserved_keys[] = {"output_dir", "resume_from_checkpoint", "overwrite_output_dir", "threads", NULL};

static int in_list(const char *s, const char *const *names) {
    for (; *names; names++) if (!strcmp(s, *names)) return 1;
    return 0;
}

static int unknown_key(const ydoc *d, const yaml_node_t *k, const char *field, const char *const *names, hone_error *err) {
    const char *s = yscalar(k) ? yscalar(k) : "?", *c = config_closest(s, names);
    char list[256] = "";
    for (const char *const *n = names; *n; n++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", n == names ? "" : ", ", *n);
    if (c) return yfail(d, k, err, field, "unknown key '%s' (did you mean '%s'?)", s, c);
    return yfail(d, k, err, field, "unknown key '%s' (expected %s)", s, list);
}

static int parse_searcher(hone_search *s, const ydoc *d, yaml_node_t *n, int *have_max_trials, hone_error *err) {
    if (n->type != YAML_MAPPING_NODE) return yfail(d, n, err, "searcher", "expected a mapping {name: grid, metric: eval_loss, ...}");
    int have_name = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d->doc, p->key), *v = yaml_document_get_node(d->doc, p->value);
        const char *ks = yscalar(k);
        char field[96];
        snprintf(field, sizeof field, "searcher.%s", ks ? ks : "?");
        if (!ks || !in_list(ks, searcher_keys)) return unknown_key(d, k, "searcher", searcher_keys, err);
        double x;
        if (!strcmp(ks, "name")) {
            const char *vs = yscalar(v);
            if (!vs || !in_list(vs, searcher_names))
                return yfail(d, v, err, field, "unknown searcher '%s' (expected grid, random or single)", vs ? vs : "a list or mapping");
            snprintf(s->name, sizeof s->name, "%s", vs);
            have_name = 1;
        } else if (!strcmp(ks, "metric")) {
            const char *vs = yscalar(v);
            if (!vs || !*vs) return yfail(d, v, err, field, "expected a metric name (e.g. eval_loss)");
            free(s->metric);
            if (!(s->metric = strdup(vs))) return hone_fail(err, "out of memory");
        } else if (!strcmp(ks, "smaller_is_better")) {
            json_t *b = ynode_json(d, v);
            int ok = json_is_boolean(b);
            if (ok) s->smaller_is_better = json_is_true(b);
            json_decref(b);
            if (!ok) return yfail(d, v, err, field, "expected true or false");
        } else if (!strcmp(ks, "seed")) {
            if (ynumber(d, v, field, 1, &x, err) < 0) return -1;
            s->seed = (long)x;
        } else {
            if (ynumber(d, v, field, 1, &x, err) < 0) return -1;
            if (x < 1) return yfail(d, v, err, field, "must be >= 1, got %s", yscalar(v));
            if (!strcmp(ks, "max_trials")) s->max_trials = (long)x, *have_max_trials = 1;
            else s->max_concurrent_trials = x > 4096 ? 4096 : (int)x;
        }
    }
    if (!have_name) return yfail(d, n, err, "searcher.name", "required (grid, random or single)");
    if (!s->metric) return yfail(d, n, err, "searcher.metric", "required (a name metrics.jsonl logs, e.g. eval_loss)");
    return 0;
}

/* one hyperparameter value: a {type: ...} mapping, or a constant */
static int parse_hparam(hone_search *s, const ydoc *d, yaml_node_t *v, const char *key, const char *sub, hone_error *err) {
    hone_hparam *grown = realloc(s->hp, sizeof *grown * (size_t)(s->n_hp + 1));
    if (!grown) return hone_fail(err, "out of memory");
    s->hp = grown;
    hone_hparam *h = &s->hp[s->n_hp++];
    memset(h, 0, sizeof *h);
    h->count = -1;
    h->base = 10;
    size_t len = strlen(key) + (sub ? strlen(sub) + 1 : 0) + 1;
    if (!(h->key = strdup(key)) || (sub && !(h->sub = strdup(sub))) || !(h->name = malloc(len))) return hone_fail(err, "out of memory");
    snprintf(h->name, len, "%s%s%s", key, sub ? "." : "", sub ? sub : "");
    char field[256];
    snprintf(field, sizeof field, "hyperparameters.%s", h->name);
    yaml_node_t *type = NULL;
    if (v->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
            const char *ks = yscalar(yaml_document_get_node(d->doc, p->key));
            if (ks && !strcmp(ks, "type")) type = yaml_document_get_node(d->doc, p->value);
        }
    if (!type) { /* a constant */
        h->type = HP_CONST;
        h->vals = json_array();
        json_array_append_new(h->vals, ynode_json(d, v));
        return 0;
    }
    const char *ts = yscalar(type);
    char tf[300];
    snprintf(tf, sizeof tf, "%s.type", field);
    if (!ts || !in_list(ts, hp_types)) {
        const char *c = ts ? config_closest(ts, hp_types) : NULL;
        if (c) return yfail(d, type, err, tf, "unknown type '%s' (did you mean '%s'?)", ts, c);
        return yfail(d, type, err, tf, "unknown type '%s' (expected const, categorical, double, log or int)", ts ? ts : "a list");
    }
    h->type = !strcmp(ts, "const") ? HP_CONST : !strcmp(ts, "categorical") ? HP_CATEGORICAL : !strcmp(ts, "double") ? HP_DOUBLE
            : !strcmp(ts, "log") ? HP_LOG : HP_INT;
    static const char *const const_keys[] = {"type", "val", NULL}, *const cat_keys[] = {"type", "vals", NULL},
                             *const num_keys[] = {"type", "minval", "maxval", "count", NULL},
                             *const log_keys[] = {"type", "minval", "maxval", "count", "base", NULL};
    const char *const *allowed = h->type == HP_CONST ? const_keys : h->type == HP_CATEGORICAL ? cat_keys : h->type == HP_LOG ? log_keys : num_keys;
    int have_min = 0, have_max = 0, have_val = 0;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d->doc, p->key), *x = yaml_document_get_node(d->doc, p->value);
        const char *ks = yscalar(k);
        if (!ks || !in_list(ks, allowed)) return unknown_key(d, k, field, allowed, err);
        char f[320];
        snprintf(f, sizeof f, "%s.%s", field, ks);
        double num;
        if (!strcmp(ks, "type")) continue;
        if (!strcmp(ks, "val")) {
            h->vals = json_array();
            json_array_append_new(h->vals, ynode_json(d, x));
            have_val = 1;
        } else if (!strcmp(ks, "vals")) {
            if (x->type != YAML_SEQUENCE_NODE) return yfail(d, x, err, f, "expected a list of values");
            if (x->data.sequence.items.top == x->data.sequence.items.start) return yfail(d, x, err, f, "empty");
            h->vals = ynode_json(d, x);
            have_val = 1;
        } else if (!strcmp(ks, "count")) {
            if (ynumber(d, x, f, 1, &num, err) < 0) return -1;
            if (num < 1 || num > SEARCH_MAX_TRIALS) return yfail(d, x, err, f, "must be in [1, %d], got %s", SEARCH_MAX_TRIALS, yscalar(x));
            h->count = (long)num;
        } else if (!strcmp(ks, "base")) {
            if (ynumber(d, x, f, 0, &num, err) < 0) return -1;
            if (num <= 0 || num == 1) return yfail(d, x, err, f, "must be > 0 and not 1, got %s", yscalar(x));
            h->base = num;
        } else {
            if (ynumber(d, x, f, h->type == HP_INT, &num, err) < 0) return -1;
            if (ks[1] == 'i') h->minval = num, have_min = 1;
            else h->maxval = num, have_max = 1;
        }
    }
    if ((h->type == HP_CONST || h->type == HP_CATEGORICAL) && !have_val)
        return yfail(d, v, err, field, "%s required for type %s", h->type == HP_CONST ? "val" : "vals", ts);
    if (h->type >= HP_DOUBLE) {
        if (!have_min || !have_max) return yfail(d, v, err, field, "minval and maxval are required for type %s", ts);
        if (h->minval > h->maxval) return yfail(d, v, err, field, "minval (%g) > maxval (%g)", h->minval, h->maxval);
        if (!strcmp(s->name, "grid") && h->count < 0) return yfail(d, v, err, field, "count is required by the grid searcher");
    }
    return 0;
}

static int parse_hparams(hone_search *s, const ydoc *d, yaml_node_t *n, hone_error *err) {
    if (n->type != YAML_MAPPING_NODE) return yfail(d, n, err, "hyperparameters", "expected a mapping of training keys");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d->doc, p->key), *v = yaml_document_get_node(d->doc, p->value);
        const char *ks = yscalar(k);
        if (!ks || !*ks) return yfail(d, k, err, "hyperparameters", "keys must be training keys");
        char field[160];
        snprintf(field, sizeof field, "hyperparameters.%s", ks);
        if (in_list(ks, reserved_keys))
            return yfail(d, k, err, field, "cannot be searched over (the search sets it for each trial in output_dir/trial-NNN)");
        for (int i = 0; i < s->n_hp; i++)
            if (!strcmp(s->hp[i].key, ks)) return yfail(d, k, err, field, "given twice");
        int typed = 0;
        if (v->type == YAML_MAPPING_NODE)
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
                const char *qs = yscalar(yaml_document_get_node(d->doc, q->key));
                typed |= qs && !strcmp(qs, "type");
            }
        if (v->type != YAML_MAPPING_NODE || typed) {
            if (parse_hparam(s, d, v, ks, NULL, err) < 0) return -1;
            continue;
        }
        /* a nested group: entries of a mapping-valued key (lr_scheduler_kwargs) */
        if (v->data.mapping.pairs.top == v->data.mapping.pairs.start) return yfail(d, v, err, field, "empty");
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            yaml_node_t *qk = yaml_document_get_node(d->doc, q->key), *qv = yaml_document_get_node(d->doc, q->value);
            const char *qs = yscalar(qk);
            if (!qs || !*qs) return yfail(d, qk, err, field, "keys must be strings");
            for (int i = 0; i < s->n_hp; i++)
                if (s->hp[i].sub && !strcmp(s->hp[i].key, ks) && !strcmp(s->hp[i].sub, qs)) return yfail(d, qk, err, field, "'%s' given twice", qs);
            int qtyped = 0;
            if (qv->type == YAML_MAPPING_NODE)
                for (yaml_node_pair_t *r = qv->data.mapping.pairs.start; r < qv->data.mapping.pairs.top; r++) {
                    const char *rs = yscalar(yaml_document_get_node(d->doc, r->key));
                    qtyped |= rs && !strcmp(rs, "type");
                }
            if (qv->type == YAML_MAPPING_NODE && !qtyped)
                return yfail(d, qv, err, field, "'%s': nested more than one level (a group's entries are values or {type: ...})", qs);
            if (parse_hparam(s, d, qv, ks, qs, err) < 0) return -1;
        }
    }
    return 0;
}

/* ---------- trials ---------- */

/* the grid points of h, as a new array */
static json_t *grid_points(const hone_hparam *h) {
    if (h->type == HP_CONST || h->type == HP_CATEGORICAL) return json_incref(h->vals);
    json_t *a = json_array();
    long count = h->count;
    double lo = h->minval, hi = h->maxval;
    if (h->type == HP_INT && count > (long)(hi - lo) + 1) count = (long)(hi - lo) + 1;
    for (long i = 0; i < count; i++) {
        /* Determined's grid.go: minval + i*(maxval-minval)/(count-1) (for int: i*(maxval-minval)
         * as an integer, then math.Round, half away from zero), the midpoint when count is 1 */
        double x = count == 1 ? (lo + hi) / 2.0
                 : h->type == HP_INT ? lo + (double)(i * (long)(hi - lo)) / (double)(count - 1)
                                     : lo + (double)i * (hi - lo) / (double)(count - 1);
        if (h->type == HP_INT) json_array_append_new(a, json_integer((json_int_t)round(x)));
        else json_array_append_new(a, json_real(h->type == HP_LOG ? pow(h->base, x) : x));
    }
    return a;
}

static json_t *draw(const hone_hparam *h, hone_rng *r) {
    switch (h->type) {
    case HP_CONST: return json_incref(json_array_get(h->vals, 0));
    case HP_CATEGORICAL: return json_incref(json_array_get(h->vals, rng_below(r, json_array_size(h->vals))));
    case HP_INT: return json_integer((json_int_t)h->minval + (json_int_t)rng_below(r, (uint64_t)(h->maxval - h->minval) + 1));
    case HP_DOUBLE: return json_real(h->minval + rng_uniform_f64(r) * (h->maxval - h->minval));
    case HP_LOG: return json_real(pow(h->base, h->minval + rng_uniform_f64(r) * (h->maxval - h->minval)));
    }
    return json_null();
}

/* sets h's value in a trial's object (nested groups as nested objects); steals v */
static void trial_set(json_t *trial, const hone_hparam *h, json_t *v) {
    if (!h->sub) { json_object_set_new(trial, h->key, v); return; }
    json_t *g = json_object_get(trial, h->key);
    if (!json_is_object(g)) { g = json_object(); json_object_set_new(trial, h->key, g); }
    json_object_set_new(g, h->sub, v);
}

static int build_trials(hone_search *s, hone_error *err) {
    s->trials = json_array();
    if (!strcmp(s->name, "grid")) {
        json_t **pts = calloc((size_t)s->n_hp + 1, sizeof *pts);
        if (!pts) return hone_fail(err, "out of memory");
        double total = 1;
        for (int i = 0; i < s->n_hp; i++) pts[i] = grid_points(&s->hp[i]), total *= (double)json_array_size(pts[i]);
        if (total > SEARCH_MAX_TRIALS) {
            for (int i = 0; i < s->n_hp; i++) json_decref(pts[i]);
            free(pts);
            return hone_fail(err, "hyperparameters: the grid has %.0f points, more than %d", total, SEARCH_MAX_TRIALS);
        }
        for (long t = 0; t < (long)total; t++) {
            json_t *trial = json_object();
            long rest = t;
            size_t *idx = calloc((size_t)s->n_hp + 1, sizeof *idx);
            for (int i = s->n_hp - 1; i >= 0; i--) { /* the first hyperparameter varies slowest */
                size_t m = json_array_size(pts[i]);
                idx[i] = (size_t)(rest % (long)m);
                rest /= (long)m;
            }
            for (int i = 0; i < s->n_hp; i++) trial_set(trial, &s->hp[i], json_deep_copy(json_array_get(pts[i], idx[i])));
            free(idx);
            json_array_append_new(s->trials, trial);
        }
        for (int i = 0; i < s->n_hp; i++) json_decref(pts[i]);
        free(pts);
    } else {
        hone_rng r;
        rng_seed(&r, (uint64_t)s->seed);
        for (long t = 0; t < s->max_trials; t++) {
            json_t *trial = json_object();
            for (int i = 0; i < s->n_hp; i++) trial_set(trial, &s->hp[i], draw(&s->hp[i], &r));
            json_array_append_new(s->trials, trial);
        }
    }
    s->n_trials = (int)json_array_size(s->trials);
    s->max_trials = s->n_trials;
    return 0;
}

int search_load(hone_search *s, const char *path, const hone_train_config *base, hone_error *err) {
    memset(s, 0, sizeof *s);
    s->smaller_is_better = 1;
    s->max_concurrent_trials = 1;
    s->seed = base->seed;
    FILE *f = fopen(path, "rb");
    if (!f) return hone_fail(err, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) { fclose(f); return hone_fail(err, "out of memory"); }
    yaml_parser_set_input_file(&parser, f);
    int ok = yaml_parser_load(&parser, &doc);
    yaml_parser_delete(&parser);
    fclose(f);
    if (!ok) return hone_fail(err, "%s: YAML syntax error", path);
    ydoc d = {&doc, path};
    yaml_node_t *root = yaml_document_get_root_node(&doc), *sn = NULL, *hn = NULL;
    if (root && root->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
            const char *ks = yscalar(yaml_document_get_node(&doc, p->key));
            if (ks && !strcmp(ks, "searcher")) sn = yaml_document_get_node(&doc, p->value);
            if (ks && !strcmp(ks, "hyperparameters")) hn = yaml_document_get_node(&doc, p->value);
        }
    int rc = 0, have_max_trials = 0;
    if (!sn) {
        if (hn) rc = yfail(&d, hn, err, "hyperparameters", "needs a searcher: block (name: grid, random or single; metric: ...)");
        yaml_document_delete(&doc);
        return rc;
    }
    rc = parse_searcher(s, &d, sn, &have_max_trials, err);
    if (rc == 0 && !strcmp(s->name, "random") && !have_max_trials)
        rc = yfail(&d, sn, err, "searcher.max_trials", "required by the random searcher");
    if (rc == 0 && strcmp(s->name, "random") && have_max_trials)
        rc = yfail(&d, sn, err, "searcher.max_trials", "only the random searcher takes max_trials (%s runs %s)", s->name,
                   !strcmp(s->name, "grid") ? "every grid point" : "one trial");
    if (rc == 0 && !strcmp(s->name, "single")) s->max_trials = 1; /* Determined: a random search of one trial */
    if (rc == 0 && hn) rc = parse_hparams(s, &d, hn, err);
    yaml_document_delete(&doc);
    if (rc == 0) rc = build_trials(s, err);
    if (rc < 0) { search_free(s); return -1; }
    return 1;
}

void search_free(hone_search *s) {
    for (int i = 0; i < s->n_hp; i++) {
        free(s->hp[i].key);
        free(s->hp[i].sub);
        free(s->hp[i].name);
        json_decref(s->hp[i].vals);
    }
    free(s->hp);
    free(s->metric);
    json_decref(s->trials);
    memset(s, 0, sizeof *s);
}

/* ---------- a trial's configuration ---------- */

static int push(char ***kv, int *n, const char *key, char *text, hone_error *err) {
    if (!text) return hone_fail(err, "out of memory");
    size_t len = strlen(key) + strlen(text) + 2;
    char *e = malloc(len), **grown = realloc(*kv, sizeof *grown * (size_t)(*n + 1));
    if (!e || !grown) { free(e); free(text); if (grown) *kv = grown; return hone_fail(err, "out of memory"); }
    snprintf(e, len, "%s=%s", key, text);
    free(text);
    *kv = grown;
    (*kv)[(*n)++] = e;
    return 0;
}

int search_trial_sets(const hone_search *s, int t, const hone_train_config *base, char ***kv, int *n, hone_error *err) {
    *kv = NULL;
    *n = 0;
    json_t *trial = json_array_get(s->trials, (size_t)t), *conf = NULL;
    if (!trial) return hone_fail(err, "no trial %d", t + 1);
    for (int i = 0; i < s->n_hp; i++) {
        const hone_hparam *h = &s->hp[i];
        int first = 1;
        for (int j = 0; j < i; j++) first &= strcmp(s->hp[j].key, h->key) != 0;
        if (!first) continue;
        json_t *v = json_object_get(trial, h->key), *merged = NULL;
        if (h->sub) {
            /* the base configuration's mapping, with the group's entries set */
            if (!conf) {
                char *txt = config_json_text(base, err);
                conf = txt ? json_loads(txt, 0, NULL) : NULL;
                free(txt);
                if (!conf) { search_sets_free(*kv, *n); *kv = NULL; *n = 0; return hone_fail(err, "cannot read the base configuration"); }
            }
            json_t *b = json_object_get(conf, h->key);
            merged = json_is_object(b) ? json_deep_copy(b) : json_object();
            json_object_update(merged, v);
            v = merged;
        }
        char *text = json_is_object(v) ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) : yaml_text(v);
        json_decref(merged);
        if (push(kv, n, h->key, text, err) < 0) { json_decref(conf); search_sets_free(*kv, *n); *kv = NULL; *n = 0; return -1; }
    }
    json_decref(conf);
    return 0;
}

void search_sets_free(char **kv, int n) {
    for (int i = 0; i < n; i++) free(kv[i]);
    free(kv);
}

/* ---------- results ---------- */

const char *search_status_name(hone_trial_status st) {
    static const char *const names[] = {"pending", "running", "completed", "stopped", "failed"};
    return names[st];
}

int search_read_trial(const char *dir, const char *metric, hone_trial_result *r, hone_error *err) {
    free(r->error);
    memset(r, 0, sizeof *r);
    r->exit_status = -1;
    char p[4096];
    hone_path_join(p, sizeof p, dir, "manifest.json");
    json_t *m = hone_file_exists(p) ? json_load_file(p, 0, NULL) : NULL;
    if (m) {
        const char *st = json_string_value(json_object_get(m, "status"));
        json_t *es = json_object_get(m, "exit_status"), *e = json_object_get(m, "error");
        r->status = !st ? TRIAL_STOPPED : !strcmp(st, "completed") ? TRIAL_COMPLETED : !strcmp(st, "failed") ? TRIAL_FAILED : TRIAL_STOPPED;
        if (json_is_integer(es)) r->exit_status = (int)json_integer_value(es);
        if (r->status == TRIAL_FAILED && json_is_string(e) && !(r->error = strdup(json_string_value(e)))) {
            json_decref(m);
            return hone_fail(err, "out of memory");
        }
        json_decref(m);
    }
    hone_path_join(p, sizeof p, dir, "metrics.jsonl");
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!json_is_object(o)) { json_decref(o); continue; }
        json_t *st = json_object_get(o, "step"), *v = json_object_get(o, metric);
        if (json_is_integer(st)) r->steps = (long)json_integer_value(st);
        if (json_is_number(v)) r->metric = json_number_value(v), r->has_metric = 1;
        json_decref(o);
    }
    free(line);
    fclose(f);
    return 0;
}

void search_results_free(hone_trial_result *r, int n) {
    for (int i = 0; i < n; i++) free(r[i].error);
    free(r);
}

void search_rank(hone_trial_result *r, int n, int smaller) {
    for (int i = 0; i < n; i++) {
        r[i].rank = 0;
        if (r[i].status != TRIAL_COMPLETED || !r[i].has_metric) continue;
        int rank = 1;
        for (int j = 0; j < n; j++) {
            if (j == i || r[j].status != TRIAL_COMPLETED || !r[j].has_metric) continue;
            double a = r[j].metric, b = r[i].metric;
            int better = smaller ? a < b : a > b;
            rank += better || (a == b && j < i);
        }
        r[i].rank = rank;
    }
}

json_t *search_varied_names(const hone_search *s) {
    json_t *a = json_array();
    for (int i = 0; i < s->n_hp; i++) {
        const hone_hparam *h = &s->hp[i];
        int varied = 0;
        json_t *first = NULL;
        for (int t = 0; t < s->n_trials; t++) {
            json_t *tr = json_array_get(s->trials, (size_t)t), *v = json_object_get(tr, h->key);
            if (h->sub) v = json_object_get(v, h->sub);
            if (!first) first = v;
            else varied |= !json_equal(first, v);
        }
        if (varied) json_array_append_new(a, json_string(h->name));
    }
    return a;
}

json_t *search_trial_value(const hone_search *s, int t, const char *name) {
    json_t *v = json_array_get(s->trials, (size_t)t);
    const char *dot = strchr(name, '.');
    if (!dot) return json_object_get(v, name);
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(dot - name), name);
    return json_object_get(json_object_get(v, key), dot + 1);
}

/* ---------- experiment.json ---------- */

/* JSON text with reals in their shortest round-tripping form (5e-07, not 4.9999999999999998e-07) */
static void emit(FILE *f, json_t *v, int indent) {
    char buf[64];
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        size_t i = 0, n = json_object_size(v);
        if (!n) { fputs("{}", f); return; }
        int flat = indent < 0;
        fputs(flat ? "{" : "{\n", f);
        json_object_foreach(v, k, x) {
            json_t *ks = json_string(k);
            char *kt = json_dumps(ks, JSON_ENCODE_ANY);
            fprintf(f, "%*s%s: ", flat ? 0 : indent + 2, "", kt);
            free(kt);
            json_decref(ks);
            emit(f, x, flat || indent >= 4 ? -1 : indent + 2);
            fputs(++i < n ? (flat ? ", " : ",\n") : "", f);
        }
        fprintf(f, flat ? "}" : "\n%*s}", indent, "");
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v);
        int flat = indent < 0 || !n || !json_is_object(json_array_get(v, 0));
        fputs(flat ? "[" : "[\n", f);
        for (size_t i = 0; i < n; i++) {
            if (!flat) fprintf(f, "%*s", indent + 2, "");
            emit(f, json_array_get(v, i), flat ? -1 : indent + 2);
            fputs(i + 1 < n ? (flat ? ", " : ",\n") : "", f);
        }
        fprintf(f, flat ? "]" : "\n%*s]", indent, "");
    } else if (json_is_real(v)) {
        real_text(json_real_value(v), buf, sizeof buf);
        fputs(buf, f);
        if (!strpbrk(buf, ".eEn")) fputs(".0", f);
    } else {
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        fputs(t ? t : "null", f);
        free(t);
    }
}

int search_write_experiment(const hone_search *s, const char *path, const char *command, const char *config, const char *output_dir,
                            const char *status, const hone_trial_result *r, hone_error *err) {
    json_t *o = json_object(), *sr = json_object(), *trials = json_array();
    json_object_set_new(o, "format", json_string("hone-experiment"));
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "command", json_string(command));
    json_object_set_new(o, "config", json_string(config));
    json_object_set_new(o, "output_dir", json_string(output_dir));
    json_object_set_new(sr, "name", json_string(s->name));
    json_object_set_new(sr, "metric", json_string(s->metric));
    json_object_set_new(sr, "smaller_is_better", json_boolean(s->smaller_is_better));
    json_object_set_new(sr, "max_trials", json_integer(s->max_trials));
    json_object_set_new(sr, "max_concurrent_trials", json_integer(s->max_concurrent_trials));
    if (strcmp(s->name, "grid")) json_object_set_new(sr, "seed", json_integer(s->seed));
    json_object_set_new(o, "searcher", sr);
    json_object_set_new(o, "hyperparameter_names", search_varied_names(s));
    json_object_set_new(o, "status", json_string(status));
    for (int t = 0; t < s->n_trials; t++) {
        json_t *e = json_object();
        char name[32];
        snprintf(name, sizeof name, "trial-%03d", t + 1);
        json_object_set_new(e, "id", json_integer(t + 1));
        json_object_set_new(e, "name", json_string(name));
        json_object_set_new(e, "dir", json_string(name));
        json_object_set(e, "hyperparameters", json_array_get(s->trials, (size_t)t));
        json_object_set_new(e, "status", json_string(search_status_name(r[t].status)));
        json_object_set_new(e, "exit_status", r[t].exit_status >= 0 ? json_integer(r[t].exit_status) : json_null());
        json_object_set_new(e, "error", r[t].error ? json_string(r[t].error) : json_null());
        json_object_set_new(e, "metric", r[t].has_metric ? json_real(r[t].metric) : json_null());
        json_object_set_new(e, "steps", json_integer(r[t].steps));
        json_object_set_new(e, "rank", r[t].rank ? json_integer(r[t].rank) : json_null());
        json_array_append_new(trials, e);
    }
    json_object_set_new(o, "trials", trials);
    char *txt = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&txt, &len);
    if (!f) { json_decref(o); return hone_fail(err, "out of memory"); }
    emit(f, o, 0);
    fputc('\n', f);
    fclose(f);
    json_decref(o);
    int rc = hone_write_file(path, txt, len, err);
    free(txt);
    return rc;
}

/* ---------- the table ---------- */

void search_print_table(const hone_search *s, const hone_trial_result *r, FILE *f) {
    json_t *names = search_varied_names(s);
    int nn = (int)json_array_size(names), *w = calloc((size_t)nn + 1, sizeof *w), *order = calloc((size_t)s->n_trials + 1, sizeof *order);
    int mw = (int)strlen(s->metric) > 15 ? (int)strlen(s->metric) : 15; /* %.9g values: up to 15 characters */
    if (!w || !order) { free(w); free(order); json_decref(names); return; }
    /* each column as wide as its name and its widest value */
    char **cell = calloc((size_t)(s->n_trials * nn) + 1, sizeof *cell);
    for (int c = 0; c < nn; c++) {
        const char *name = json_string_value(json_array_get(names, (size_t)c));
        w[c] = (int)strlen(name);
        for (int t = 0; t < s->n_trials && cell; t++) {
            cell[t * nn + c] = search_value_text(search_trial_value(s, t, name));
            if (cell[t * nn + c] && (int)strlen(cell[t * nn + c]) > w[c]) w[c] = (int)strlen(cell[t * nn + c]);
        }
    }
    int n = 0;
    for (int rank = 1; rank <= s->n_trials; rank++)
        for (int t = 0; t < s->n_trials; t++) if (r[t].rank == rank) order[n++] = t;
    for (int t = 0; t < s->n_trials; t++) if (!r[t].rank) order[n++] = t;
    fprintf(f, "%4s  %-9s", "rank", "trial");
    for (int c = 0; c < nn; c++) fprintf(f, "  %-*s", w[c], json_string_value(json_array_get(names, (size_t)c)));
    fprintf(f, "  %*s  %-9s  %7s\n", mw, s->metric, "status", "steps");
    for (int i = 0; i < n; i++) {
        int t = order[i];
        char rank[16] = "-", metric[64] = "-";
        if (r[t].rank) snprintf(rank, sizeof rank, "%d", r[t].rank);
        if (r[t].has_metric) snprintf(metric, sizeof metric, "%.9g", r[t].metric); /* as metrics.jsonl has it */
        fprintf(f, "%4s  trial-%03d", rank, t + 1);
        for (int c = 0; c < nn; c++) fprintf(f, "  %-*s", w[c], cell && cell[t * nn + c] ? cell[t * nn + c] : "?");
        fprintf(f, "  %*s  %-9s  %7ld\n", mw, metric, search_status_name(r[t].status), r[t].steps);
    }
    for (int i = 0; cell && i < s->n_trials * nn; i++) free(cell[i]);
    free(cell);
    free(w);
    free(order);
    json_decref(names);
}
