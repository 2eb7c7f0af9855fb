/* report/page.c — the `hone report` page (report.h): one HTML file with its CSS inline
 * and every chart as inline SVG, nothing fetched, no script; written atomically. The
 * markup is also well-formed XML (every element closed, attributes quoted), which the
 * tests check. Sections: per experiment the ranked trial table and, for a 2-D grid, the
 * heatmap; the charts (training, DPO, evaluation, the other logged metrics); the run
 * manifests; hone compare's answers when found. */
#include "report/report.h"
#include "base/util.h"
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void report_html_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') fputc(' ', f); /* not allowed in XML */
            else fputc(*s, f);
        }
    }
}
#define H report_html_text

static const char *const css =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}\n"
    "header{background:#23272f;color:#fff;padding:14px 28px}header h1{margin:0;font-size:22px}\n"
    "header p{margin:4px 0 0;color:#c9ccd3;font-size:13px}nav{padding:8px 28px;background:#fff;border-bottom:1px solid #ddd;font-size:14px}\n"
    "nav a{margin-right:16px;color:#1f5fbf;text-decoration:none}main{padding:8px 28px 40px}\n"
    "h2{font-size:18px;margin:26px 0 10px;border-bottom:1px solid #d8dbe0;padding-bottom:4px}h3{font-size:15px;margin:18px 0 8px}\n"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}\n"
    "figure{margin:0;background:#fff;border:1px solid #dfe2e6;border-radius:6px;padding:10px 12px}\n"
    "figcaption{font-weight:600;font-size:14px;margin-bottom:4px}figcaption code{font-weight:400;color:#666;font-size:12px}\n"
    "svg.chart{width:100%;height:auto;display:block}svg.heatmap{max-width:100%;height:auto;display:block;background:#fff}\n"
    "svg .grid{stroke:#eceef1;stroke-width:1}svg .frame{fill:none;stroke:#9aa0a8;stroke-width:1}\n"
    "svg .tick{font-size:11px;fill:#4a4f57}svg .axis{font-size:12px;fill:#333}svg .cellt{font-size:13px;font-weight:600}svg .cellr{font-size:11px}\n"
    "svg path.series{fill:none;stroke-width:1.8;stroke-linejoin:round}svg path.raw{fill:none;stroke-width:1;opacity:.28}\n"
    ".legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin-top:4px;color:#333}\n"
    ".legend span{white-space:nowrap}.legend i{display:inline-block;width:14px;height:3px;margin:0 5px 3px 0;vertical-align:middle}\n"
    "table{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0 12px}\n"
    "th,td{border:1px solid #dcdfe4;padding:4px 9px;text-align:left;vertical-align:top}th{background:#eef0f3}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}tr.best td{background:#fff7d6;font-weight:600}\n"
    "td.pre{white-space:pre-wrap;max-width:420px}code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}\n"
    ".note{color:#666;font-size:13px}.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}\n";

/* the legend label of run i: its name and, for a trial, its hyperparameter values */
static void run_label(FILE *f, const hone_report *r, int i) {
    const report_run *run = &r->runs[i];
    H(f, run->name);
    if (run->experiment < 0) return;
    const report_experiment *e = &r->ex[run->experiment];
    for (int k = 0; k < e->n_hp; k++) {
        char v[128];
        report_hparam_text(run, e->hp[k], v, sizeof v);
        fputs(k ? ", " : " (", f);
        H(f, e->hp[k]);
        fputc('=', f);
        H(f, v);
    }
    if (e->n_hp) fputc(')', f);
}

static int write_chart(FILE *f, const hone_report *r, const char *key, const char *title, double smooth) {
    report_chart c = {title, key, smooth};
    int any = 0;
    for (int i = 0; i < r->n_runs && !any; i++) any = report_find(&r->runs[i], key) != NULL;
    if (!any) return 0;
    fprintf(f, "<figure><figcaption>");
    H(f, title);
    fprintf(f, " <code>");
    H(f, key);
    fprintf(f, "</code></figcaption>\n");
    int n = report_svg_chart(f, r, &c);
    fprintf(f, "<div class=\"legend\">");
    for (int i = 0; i < r->n_runs; i++) {
        if (!report_find(&r->runs[i], key)) continue;
        fprintf(f, "<span><i style=\"background:%s\"></i>", report_color(i));
        run_label(f, r, i);
        fprintf(f, "</span>");
    }
    fprintf(f, "</div></figure>\n");
    return n > 0;
}

typedef struct { const char *key, *title; } chart_def;

static const chart_def training[] = {
    {"loss", "Training loss"}, {"eval_loss", "Eval loss"}, {"learning_rate", "Learning rate"},
    {"grad_norm", "Gradient norm (before clipping)"}, {"tokens_per_second", "Throughput (tokens/s)"}, {NULL, NULL}};
static const chart_def dpo[] = {
    {"rewards/chosen", "Rewards: chosen"}, {"rewards/rejected", "Rewards: rejected"}, {"rewards/margins", "Rewards: margins"},
    {"rewards/accuracies", "Rewards: accuracies"}, {"logps/chosen", "Log-probs: chosen"}, {"logps/rejected", "Log-probs: rejected"},
    {NULL, NULL}};
static const char *const skipped[] = {"epoch", "num_tokens", NULL}; /* bookkeeping, not worth a chart */

static int listed(const char *key, const chart_def *defs) {
    for (int i = 0; defs[i].key; i++)
        if (!strcmp(defs[i].key, key)) return 1;
    return 0;
}

static int write_charts(FILE *f, const hone_report *r, double smooth) {
    int n = 0;
    fprintf(f, "<h2 id=\"training\">Training</h2>\n");
    if (smooth > 0) fprintf(f, "<p class=\"note\">Lines smoothed as TensorBoard does (EMA %.3g, debiased); the raw values are the faint lines and the dots.</p>\n", smooth);
    fprintf(f, "<div class=\"charts\">\n");
    for (int i = 0; training[i].key; i++) n += write_chart(f, r, training[i].key, training[i].title, smooth);
    fprintf(f, "</div>\n");
    int have_dpo = 0, have_eval_dpo = 0;
    for (int i = 0; i < r->n_runs; i++) {
        have_dpo |= report_find(&r->runs[i], "rewards/margins") != NULL;
        have_eval_dpo |= report_find(&r->runs[i], "eval_rewards/margins") != NULL;
    }
    char key[128], title[160];
    if (have_dpo) {
        fprintf(f, "<h2 id=\"dpo\">DPO (training batches)</h2>\n<div class=\"charts\">\n");
        for (int i = 0; dpo[i].key; i++) n += write_chart(f, r, dpo[i].key, dpo[i].title, smooth);
        fprintf(f, "</div>\n");
    }
    if (have_eval_dpo) {
        fprintf(f, "<h2 id=\"dpo-eval\">DPO (evaluation)</h2>\n<div class=\"charts\">\n");
        for (int i = 0; dpo[i].key; i++) {
            snprintf(key, sizeof key, "eval_%s", dpo[i].key);
            snprintf(title, sizeof title, "Eval %s", dpo[i].title);
            n += write_chart(f, r, key, title, smooth);
        }
        fprintf(f, "</div>\n");
    }
    /* every other key some run logged, in first-seen order */
    int header = 0;
    for (int i = 0; i < r->n_runs; i++)
        for (int k = 0; k < r->runs[i].ns; k++) {
            const char *kk = r->runs[i].s[k].key;
            int seen = listed(kk, training) || listed(kk, dpo) || (!strncmp(kk, "eval_", 5) && listed(kk + 5, dpo));
            for (int s = 0; skipped[s]; s++) seen |= !strcmp(kk, skipped[s]);
            for (int j = 0; j < i && !seen; j++) seen = report_find(&r->runs[j], kk) != NULL;
            for (int q = 0; q < k && !seen; q++) seen = !strcmp(r->runs[i].s[q].key, kk);
            if (seen || !report_find(&r->runs[i], kk)) continue;
            if (!header) { fprintf(f, "<h2 id=\"other\">Other logged metrics</h2>\n<div class=\"charts\">\n"); header = 1; }
            n += write_chart(f, r, kk, kk, smooth);
        }
    if (header) fprintf(f, "</div>\n");
    return n;
}

static void fmt_metric(double v, char *out, size_t n) {
    if (isfinite(v)) snprintf(out, n, "%.6g", v);
    else snprintf(out, n, "—");
}

static double last_value(const report_run *run, const char *key) {
    const report_series *s = report_find(run, key);
    for (int k = s ? s->n - 1 : -1; k >= 0; k--)
        if (isfinite(s->val[k])) return s->val[k];
    return NAN;
}

static void write_experiment(FILE *f, const hone_report *r, int ei) {
    const report_experiment *e = &r->ex[ei];
    fprintf(f, "<h2 id=\"exp-%d\">Experiment <code>", ei);
    H(f, e->dir);
    fprintf(f, "</code></h2>\n<p class=\"note\">%d trial(s), ranked by <code>", e->n);
    H(f, e->metric);
    fprintf(f, "</code> (%s is better, the last value logged)%s.</p>\n", e->smaller_is_better ? "smaller" : "larger",
            e->from_json ? ", from experiment.json" : "; no experiment.json: the hyperparameters are the configuration keys that differ between trials");
    fprintf(f, "<table class=\"trials\">\n<tr><th>rank</th><th>trial</th>");
    for (int k = 0; k < e->n_hp; k++) { fputs("<th>", f); H(f, e->hp[k]); fputs("</th>", f); }
    fputs("<th>", f);
    H(f, e->metric);
    fprintf(f, "</th><th>status</th><th>steps</th><th>last train loss</th>");
    /* what the DPO pipeline also judges trials by: the last evaluation's accuracies and margins */
    static const char *const extra[] = {"eval_rewards/accuracies", "eval_rewards/margins"};
    int has[2] = {0, 0};
    for (int x = 0; x < 2; x++) {
        for (int i = 0; i < e->n && strcmp(extra[x], e->metric); i++) has[x] |= report_find(&r->runs[e->first + i], extra[x]) != NULL;
        if (has[x]) { fputs("<th>last ", f); H(f, extra[x]); fputs("</th>", f); }
    }
    fputs("</tr>\n", f);
    /* ranked trials first (by rank), then the rest in trial order */
    for (int pass = 0; pass < 2; pass++)
        for (int want = 1; want <= (pass ? 1 : e->n); want++)
            for (int i = 0; i < e->n; i++) {
                const report_run *run = &r->runs[e->first + i];
                if (pass == 0 ? run->rank != want : run->rank > 0 && run->rank <= e->n) continue;
                char v[64];
                fprintf(f, "<tr%s><td class=\"num\">", run->rank == 1 ? " class=\"best\"" : "");
                if (run->rank > 0) fprintf(f, "%d", run->rank);
                fprintf(f, "</td><td><span class=\"swatch\" style=\"background:%s\"></span>", report_color(e->first + i));
                H(f, run->name);
                fputs("</td>", f);
                for (int k = 0; k < e->n_hp; k++) {
                    report_hparam_text(run, e->hp[k], v, sizeof v);
                    fputs("<td class=\"num\">", f);
                    H(f, v);
                    fputs("</td>", f);
                }
                fmt_metric(run->metric, v, sizeof v);
                fprintf(f, "<td class=\"num\">%s</td><td>", v);
                H(f, run->status[0] ? run->status : "?");
                fmt_metric(last_value(run, "loss"), v, sizeof v);
                fprintf(f, "</td><td class=\"num\">%ld</td><td class=\"num\">%s</td>", run->steps, v);
                for (int x = 0; x < 2; x++) {
                    if (!has[x]) continue;
                    fmt_metric(last_value(run, extra[x]), v, sizeof v);
                    fprintf(f, "<td class=\"num\">%s</td>", v);
                }
                fputs("</tr>\n", f);
            }
    fprintf(f, "</table>\n");
    if (e->n_hp == 2) {
        fprintf(f, "<h3>");
        H(f, e->metric);
        fprintf(f, " over the grid</h3>\n");
        if (!report_svg_heatmap(f, r, e)) fprintf(f, "<p class=\"note\">Not enough trials for a heatmap.</p>\n");
    }
}

static const char *jstr(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void write_manifests(FILE *f, const hone_report *r) {
    fprintf(f, "<h2 id=\"manifests\">Run manifests</h2>\n<p class=\"note\">From each run's manifest.json (docs/reproducibility.md): "
               "equal manifests give equal bits. Data hashes: sha256, first 12 hex digits.</p>\n"
               "<table class=\"manifests\">\n<tr><th>run</th><th>command</th><th>status</th><th>hone</th><th>revision</th>"
               "<th>CPU</th><th>ISA</th><th>threads</th><th>seed</th><th>elapsed</th><th>data</th></tr>\n");
    for (int i = 0; i < r->n_runs; i++) {
        const report_run *run = &r->runs[i];
        json_t *m = run->manifest, *mach = json_object_get(m, "machine");
        fprintf(f, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span>", report_color(i));
        H(f, run->name);
        fputs("</td>", f);
        if (!m) { fprintf(f, "<td colspan=\"10\" class=\"note\">no manifest.json</td></tr>\n"); continue; }
        const char *cells[] = {jstr(m, "command"), jstr(m, "status"), jstr(m, "hone_version"), jstr(m, "source_revision"),
                               jstr(mach, "cpu_model"), jstr(mach, "isa")};
        for (int k = 0; k < 6; k++) { fputs("<td>", f); H(f, cells[k]); fputs("</td>", f); }
        json_t *th = json_object_get(mach, "threads"), *seed = json_object_get(m, "seed"), *el = json_object_get(m, "elapsed_seconds");
        fprintf(f, "<td class=\"num\">%lld%s</td>", (long long)json_integer_value(th), json_is_true(json_object_get(mach, "pinned")) ? " pinned" : "");
        fprintf(f, "<td class=\"num\">%lld</td><td class=\"num\">%.1f s</td><td>", (long long)json_integer_value(seed), json_number_value(el));
        size_t k;
        json_t *file;
        int nd = 0;
        json_array_foreach(json_object_get(m, "files"), k, file) {
            if (strcmp(jstr(file, "role"), "data")) continue;
            const char *p = jstr(file, "path"), *b = strrchr(p, '/');
            fprintf(f, "%s<code>", nd++ ? "<br/>" : "");
            H(f, b ? b + 1 : p);
            fprintf(f, " %.12s</code>", jstr(file, "sha256"));
        }
        fputs("</td></tr>\n", f);
    }
    fprintf(f, "</table>\n");
}

static void write_compare(FILE *f, const hone_report *r) {
    json_t *rows = r->compare, *first = json_array_get(rows, 0);
    fprintf(f, "<h2 id=\"compare\">Answers side by side (hone compare)</h2>\n<p class=\"note\">From <code>");
    H(f, r->compare_src);
    fprintf(f, "</code>: every prompt answered by every model with the same settings and seed.</p>\n<table class=\"compare\">\n<tr><th>#</th>");
    const char *key;
    json_t *v;
    json_object_foreach(first, key, v) { fputs("<th>", f); H(f, key); fputs("</th>", f); }
    fputs("</tr>\n", f);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        fprintf(f, "<tr><td class=\"num\">%zu</td>", i + 1);
        json_object_foreach(first, key, v) {
            fputs("<td class=\"pre\">", f);
            H(f, jstr(row, key));
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fprintf(f, "</table>\n");
}

void report_render(FILE *f, const hone_report *r, double smooth, const char *title) {
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>");
    H(f, title);
    fprintf(f, "</title>\n<style>\n%s</style></head>\n<body>\n<header><h1>", css);
    H(f, title);
    fprintf(f, "</h1><p>%d run(s)", r->n_runs);
    if (r->n_ex) fprintf(f, " in %d experiment(s)", r->n_ex);
    fprintf(f, " · written %s by hone %s</p></header>\n<nav>", when, HONE_VERSION);
    for (int i = 0; i < r->n_ex; i++) fprintf(f, "<a href=\"#exp-%d\">experiment %d</a>", i, i + 1);
    fprintf(f, "<a href=\"#training\">charts</a><a href=\"#manifests\">manifests</a>%s</nav>\n<main>\n",
            r->compare ? "<a href=\"#compare\">compare</a>" : "");
    for (int i = 0; i < r->n_ex; i++) write_experiment(f, r, i);
    write_charts(f, r, smooth);
    write_manifests(f, r);
    if (r->compare && json_array_size(r->compare)) write_compare(f, r);
    fprintf(f, "</main>\n</body></html>\n");
}

int report_write(const hone_report *r, const char *path, double smooth, const char *title, hone_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return hone_fail(err, "out of memory");
    report_render(f, r, smooth, title);
    if (fclose(f)) { free(buf); return hone_fail(err, "%s: cannot build the page", path); }
    int rc = hone_write_file(path, buf, len, err);
    free(buf);
    return rc;
}
