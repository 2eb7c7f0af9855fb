/* test_report.c — `hone report` (report/report.h, cli/cmd_report.c) on a hand-made 3x3
 * grid: nine DPO-like trials (beta x learning_rate) in trial-001..009 with metrics.jsonl,
 * manifest.json and hone_config.json, plus hone compare's compare.jsonl.
 *   the page is well-formed (this file's own tag checker: every element closed in order,
 *   attributes quoted, only known entities; and xmllint --noout where installed), self-contained (no script, no external URL:
 *   only the SVG namespace and #anchors), and every chart has one data-series path per
 *   trial, each with drawn points (no chart is empty); the expected charts are there;
 *   the ranked table's order follows the metric; the heatmap has nine cells;
 *   with experiment.json and without (hyperparameters inferred from the configurations);
 *   hone compare's answers embedded, escaped;
 *   errors name the directory (no metrics.jsonl) or file:line (bad JSON), and nothing is
 *   written then; the CLI (HONE_BIN) writes the same page;
 *   TensorBoard's smoothing (EMA with debias) against values worked by hand (tolerance
 *   1e-12 relative), nice ticks and their labels.
 * Tolerances: exact but for the smoothing (1e-12). */
#include "report/report.h"
#include "base/util.h"
#include "spawn.h"
#include "test.h"
#include <math.h>

static const double betas[3] = {0.1, 0.05, 0.01}, lrs[3] = {5e-7, 1e-7, 5e-8};

static double final_eval(int t) { return 0.69 - 0.05 * (t % 3) - 0.013 * (t / 3) + 0.001 * t; }

/* dir/trial-NNN for t = 0..8 (and experiment.json when with_json) */
static void write_grid(const char *dir, int with_json) {
    FILE *ej = NULL;
    if (with_json) {
        char p[600];
        snprintf(p, sizeof p, "%s/experiment.json", dir);
        ej = fopen(p, "w");
        fprintf(ej, "{\"format\": \"hone-experiment\", \"version\": 1, \"command\": \"dpo\", \"output_dir\": \"%s\",\n"
                    " \"searcher\": {\"name\": \"grid\", \"metric\": \"eval_loss\", \"smaller_is_better\": true, \"max_trials\": 9},\n"
                    " \"hyperparameter_names\": [\"beta\", \"learning_rate\"], \"status\": \"completed\", \"trials\": [\n", dir);
    }
    /* ranks by final_eval ascending, ties by trial */
    int rank[9];
    for (int t = 0; t < 9; t++) {
        rank[t] = 1;
        for (int u = 0; u < 9; u++) rank[t] += final_eval(u) < final_eval(t) || (final_eval(u) == final_eval(t) && u < t);
    }
    for (int t = 0; t < 9; t++) {
        char td[600], p[700];
        snprintf(td, sizeof td, "%s/trial-%03d", dir, t + 1);
        hone_mkdirs(td, NULL);
        double b = betas[t / 3], lr = lrs[t % 3];
        snprintf(p, sizeof p, "%s/metrics.jsonl", td);
        FILE *f = fopen(p, "w");
        for (int s = 1; s <= 20; s++) {
            double k = 1 - exp(-s / (4.0 + t));
            fprintf(f, "{\"step\": %d, \"loss\": %.9g, \"grad_norm\": %.9g, \"learning_rate\": %.9g, \"rewards/chosen\": %.9g, "
                       "\"rewards/rejected\": %.9g, \"rewards/accuracies\": %.9g, \"rewards/margins\": %.9g, \"logps/chosen\": %.9g, "
                       "\"logps/rejected\": %.9g, \"num_tokens\": %d, \"epoch\": %.9g, \"tokens_per_second\": %.9g}\n",
                    s, 0.6931 - 0.3 * k * (1 + t % 3), 10.0 / s, lr * (1 - s / 21.0), b * k, -b * 2 * k, k > 0.5 ? 1.0 : 0.5, 3 * b * k,
                    -40 + k, -90 - 5 * k, 100 * s, s / 20.0, 15000.0 + 100 * t + (s % 3) * 50);
            if (s % 5 == 0)
                fprintf(f, "{\"step\": %d, \"eval_loss\": %.9g, \"eval_rewards/margins\": %.9g, \"eval_rewards/accuracies\": %.9g}\n", s,
                        s == 20 ? final_eval(t) : 0.69 - 0.001 * s, 2 * b * k, k);
        }
        if (t == 4) fprintf(f, "{\"step\": 21, \"loss\": null}\n"); /* a non-finite value: a gap, never a crash */
        fclose(f);
        snprintf(p, sizeof p, "%s/hone_config.json", td);
        f = fopen(p, "w");
        fprintf(f, "{\"command\": \"dpo\", \"output_dir\": \"%s\", \"seed\": 42, \"beta\": %.9g, \"learning_rate\": %.9g, \"max_steps\": 20}\n", td, b, lr);
        fclose(f);
        snprintf(p, sizeof p, "%s/manifest.json", td);
        f = fopen(p, "w");
        fprintf(f, "{\"manifest_version\": 1, \"command\": \"dpo\", \"status\": \"completed\", \"hone_version\": \"0.1.0\", "
                   "\"source_revision\": \"abc1234\", \"seed\": 42, \"elapsed_seconds\": 1.5, \"machine\": {\"cpu_model\": \"Test <CPU> & co\", "
                   "\"isa\": \"avx512\", \"threads\": 2, \"pinned\": true}, \"files\": [{\"role\": \"data\", \"path\": \"/d/pairs.jsonl\", "
                   "\"sha256\": \"0123456789abcdef0123\"}]}\n");
        fclose(f);
        if (ej)
            fprintf(ej, "  {\"id\": %d, \"name\": \"trial-%03d\", \"dir\": \"trial-%03d\", \"hyperparameters\": {\"beta\": %.9g, "
                        "\"learning_rate\": %.9g}, \"status\": \"completed\", \"exit_status\": 0, \"error\": null, \"metric\": %.9g, "
                        "\"steps\": 20, \"rank\": %d}%s\n",
                    t + 1, t + 1, t + 1, b, lr, final_eval(t), rank[t], t < 8 ? "," : "");
    }
    if (ej) {
        fprintf(ej, "]}\n");
        fclose(ej);
    }
    char c[600];
    snprintf(c, sizeof c, "%s/compare", dir);
    hone_mkdirs(c, NULL);
    snprintf(c, sizeof c, "%s/compare/compare.jsonl", dir);
    FILE *f = fopen(c, "w");
    fprintf(f, "{\"prompt\": \"Say <b>hi</b> & go\", \"base\": \"hi\", \"dpo\": \"Hello there\"}\n");
    fclose(f);
}

/* ---- a small well-formedness checker ---- */

static int name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ':'; }

/* 0 when the markup is well-formed; else writes what is wrong into why */
static int check_xml(const char *s, char *why, size_t n) {
    char stack[256][32];
    int depth = 0, line = 1;
    for (const char *p = s; *p; p++) {
        if (*p == '\n') line++;
        if (*p == '&') {
            static const char *const ents[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&#39;", NULL};
            int ok = 0;
            for (int i = 0; ents[i]; i++) ok |= !strncmp(p, ents[i], strlen(ents[i]));
            if (!ok) { snprintf(why, n, "line %d: a bare or unknown entity '%.8s'", line, p); return -1; }
            continue;
        }
        if (*p == '>') { snprintf(why, n, "line %d: a '>' outside a tag", line); return -1; }
        if (*p != '<') continue;
        if (!strncmp(p, "<!DOCTYPE", 9)) { p = strchr(p, '>'); if (!p) return -1; continue; }
        int closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[32];
        int k = 0;
        while (name_char(*q) && k < 31) name[k++] = *q++;
        name[k] = 0;
        if (!k) { snprintf(why, n, "line %d: a '<' that starts no tag", line); return -1; }
        /* attributes: name="value" with no '<' inside */
        int self = 0;
        while (*q && *q != '>') {
            if (*q == ' ' || *q == '\n') { if (*q == '\n') line++; q++; continue; }
            if (*q == '/' && q[1] == '>') { self = 1; q++; continue; }
            if (closing) { snprintf(why, n, "line %d: </%s> with attributes", line, name); return -1; }
            while (name_char(*q)) q++;
            if (q[0] != '=' || q[1] != '"') { snprintf(why, n, "line %d: <%s>: an attribute without a quoted value", line, name); return -1; }
            q += 2;
            while (*q && *q != '"') {
                if (*q == '<') { snprintf(why, n, "line %d: '<' in an attribute of <%s>", line, name); return -1; }
                q++;
            }
            if (!*q) return -1;
            q++;
        }
        if (!*q) { snprintf(why, n, "line %d: unterminated tag <%s", line, name); return -1; }
        if (closing) {
            if (!depth || strcmp(stack[depth - 1], name)) {
                snprintf(why, n, "line %d: </%s> closes <%s>", line, name, depth ? stack[depth - 1] : "(nothing)");
                return -1;
            }
            depth--;
        } else if (!self) {
            if (depth == 256) return -1;
            snprintf(stack[depth++], 32, "%s", name);
        }
        p = q;
    }
    if (depth) { snprintf(why, n, "<%s> is never closed", stack[depth - 1]); return -1; }
    return 0;
}

static int count(const char *s, const char *end, const char *what) {
    int k = 0;
    for (const char *p = strstr(s, what); p && p < end; p = strstr(p + 1, what)) k++;
    return k;
}

/* every <svg class="chart">: n_series data-series paths, each drawing points; returns the chart count */
static int check_charts(const char *html, int n_series) {
    int charts = 0;
    for (const char *p = strstr(html, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\""); p;
         p = strstr(p + 1, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\"")) {
        const char *end = strstr(p, "</svg>");
        char key[128] = "";
        const char *k = strstr(p, "data-key=\"");
        if (k) sscanf(k + 10, "%127[^\"]", key);
        int ns = count(p, end, "data-series=");
        CHECK(ns == n_series, "chart %s: %d series, want %d", key, ns, n_series);
        /* each series path has a d with at least one point */
        for (const char *s = strstr(p, "data-series="); s && s < end; s = strstr(s + 1, "data-series=")) {
            const char *d = strstr(s, " d=\"");
            double x, y;
            CHECK(d && d < end && sscanf(d + 4, "M%lf %lf", &x, &y) == 2, "chart %s: a series with no points", key);
        }
        charts++;
    }
    return charts;
}

static char *build(char *const *dirs, int n, double smooth, const char *out) {
    hone_report r;
    hone_error err = {{0}};
    if (report_load(&r, dirs, n, NULL, &err) < 0) { CHECK(0, "report_load: %s", err.msg); return NULL; }
    int rc = report_write(&r, out, smooth, "test <report>", &err);
    CHECK(rc == 0, "report_write: %s", err.msg);
    report_free(&r);
    char *txt = NULL;
    size_t len;
    if (rc == 0) hone_read_file(out, &txt, &len, NULL);
    return txt;
}

static void check_page(const char *html) {
    char why[256] = "";
    CHECK(check_xml(html, why, sizeof why) == 0, "not well-formed: %s", why);
    CHECK(!strstr(html, "<script") && !strstr(html, "<link") && !strstr(html, "<img") && !strstr(html, "<iframe"), "no script or fetched resource");
    for (const char *p = strstr(html, "http"); p; p = strstr(p + 1, "http"))
        CHECK(!strncmp(p, "http://www.w3.org/2000/svg\"", 27), "an external URL: %.40s", p);
    int charts = check_charts(html, 9);
    /* loss, eval_loss, lr, grad_norm, tokens/s; 6 DPO; eval margins and accuracies */
    CHECK(charts == 13, "%d charts", charts);
    static const char *const keys[] = {"loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_second", "rewards/chosen",
                                       "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected",
                                       "eval_rewards/margins", "eval_rewards/accuracies", NULL};
    for (int i = 0; keys[i]; i++) {
        char a[160];
        snprintf(a, sizeof a, "data-key=\"%s\"", keys[i]);
        CHECK(strstr(html, a) != NULL, "no chart of %s", keys[i]);
    }
    CHECK(!strstr(html, "data-key=\"epoch\"") && !strstr(html, "data-key=\"num_tokens\""), "bookkeeping keys charted");
    /* the heatmap: 9 coloured cells, ranks 1..9 */
    const char *hm = strstr(html, "class=\"heatmap\"");
    CHECK(hm && count(hm, strstr(hm, "</svg>"), "class=\"cell\"") == 9, "heatmap cells");
    /* the ranked table: trial names in the order of final_eval */
    int order[9];
    for (int t = 0; t < 9; t++) order[t] = t;
    for (int a = 1; a < 9; a++)
        for (int b = a; b > 0 && final_eval(order[b - 1]) > final_eval(order[b]); b--) { int x = order[b]; order[b] = order[b - 1]; order[b - 1] = x; }
    const char *tab = strstr(html, "<table class=\"trials\">"), *prev = tab;
    for (int i = 0; tab && i < 9; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, ">trial-%03d</td>", order[i] + 1);
        const char *at = strstr(tab, nm);
        CHECK(at && at > prev, "rank %d should be %s", i + 1, nm);
        prev = at ? at : prev;
    }
    CHECK(strstr(html, "<tr class=\"best\">") != NULL, "best row marked");
    CHECK(tab && strstr(tab, "<th>last eval_rewards/accuracies</th><th>last eval_rewards/margins</th></tr>"), "eval DPO columns");
    /* manifests and compare, escaped */
    CHECK(strstr(html, "Test &lt;CPU&gt; &amp; co") && strstr(html, "pairs.jsonl 0123456789ab</code>"), "manifest summary");
    CHECK(strstr(html, "Say &lt;b&gt;hi&lt;/b&gt; &amp; go") && strstr(html, "Hello there"), "compare answers");
    CHECK(strstr(html, "<title>test &lt;report&gt;</title>") != NULL, "title escaped");
}

static void test_grid_with_experiment_json(void) {
    const char *dir = test_tmpdir("report");
    write_grid(dir, 1);
    char out[600];
    snprintf(out, sizeof out, "%s/report.html", dir);
    char *d[] = {(char *)dir};
    char *html = build(d, 1, 0.6, out);
    if (html) check_page(html);
    /* a second opinion on well-formedness where libxml2's xmllint is installed */
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", out);
        CHECK(system(cmd) == 0, "%s failed", cmd);
    }
    CHECK(html && count(html, html + strlen(html), "class=\"raw\"") == 13 * 9, "smoothing: a raw line under every series");
    free(html);
    hone_remove_tree(dir, NULL);
}

static void test_grid_inferred(void) {
    const char *dir = test_tmpdir("report-noexp");
    write_grid(dir, 0);
    char out[600];
    snprintf(out, sizeof out, "%s/report.html", dir);
    char *d[] = {(char *)dir};
    hone_report r;
    hone_error err = {{0}};
    CHECK(report_load(&r, d, 1, NULL, &err) == 0, "%s", err.msg);
    if (r.n_ex == 1) {
        CHECK(r.ex[0].n == 9 && r.ex[0].n_hp == 2 && !strcmp(r.ex[0].hp[0], "beta") && !strcmp(r.ex[0].hp[1], "learning_rate") &&
                  !strcmp(r.ex[0].metric, "eval_loss"),
              "inferred: %d trials, %d hyperparameters", r.ex[0].n, r.ex[0].n_hp);
        for (int t = 0; t < 9; t++) CHECK(fabs(r.runs[t].metric - final_eval(t)) < 1e-8, "trial %d metric", t);
    }
    report_free(&r);
    char *html = build(d, 1, 0, out);
    if (html) check_page(html);
    CHECK(html && !strstr(html, "class=\"raw\""), "no smoothing: no raw lines");
    free(html);
    hone_remove_tree(dir, NULL);
}

static void test_errors(void) {
    const char *dir = test_tmpdir("report-bad");
    char run[600], out[600], p[700];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(out, sizeof out, "%s/report.html", dir);
    hone_mkdirs(run, NULL);
    hone_report r;
    hone_error err = {{0}};
    char *d[] = {run};
    CHECK(report_load(&r, d, 1, NULL, &err) < 0 && strstr(err.msg, run) && strstr(err.msg, "no metrics.jsonl"), "%s", err.msg);
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"loss\": 0.5}\n{\"step\": 3, \"loss\": \n");
    fclose(f);
    CHECK(report_load(&r, d, 1, NULL, &err) < 0 && strstr(err.msg, "metrics.jsonl:3: bad JSON"), "%s", err.msg);
    f = fopen(p, "w"); /* a last line still being written (no newline yet) is left out, not an error */
    fprintf(f, "{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"lo");
    fclose(f);
    CHECK(report_load(&r, d, 1, NULL, &err) == 0 && r.n_runs == 1 && r.runs[0].steps == 1, "partial last line: %s", err.msg);
    report_free(&r);
    f = fopen(p, "w");
    fprintf(f, "{\"loss\": 1}\n");
    fclose(f);
    CHECK(report_load(&r, d, 1, NULL, &err) < 0 && strstr(err.msg, "metrics.jsonl:1: no integer \"step\""), "%s", err.msg);
    /* the CLI: an error, exit status 1, nothing written */
    const char *bin = getenv("HONE_BIN");
    if (bin && !access(bin, X_OK)) {
        char log[700];
        snprintf(log, sizeof log, "%s/log", dir);
        char *argv[] = {(char *)bin, "report", run, "-o", out, NULL};
        int rc = test_wait(test_spawn(argv, log), 30, NULL);
        CHECK(rc == 1 && !hone_file_exists(out), "hone report on a bad run: exit %d", rc);
    }
    hone_remove_tree(dir, NULL);
}

static void test_cli(void) {
    const char *bin = getenv("HONE_BIN");
    if (!bin || access(bin, X_OK)) { test_skip("HONE_BIN is not set (make check sets it to the built hone)"); return; }
    const char *dir = test_tmpdir("report-cli");
    write_grid(dir, 1);
    char out[600], log[600];
    snprintf(out, sizeof out, "%s/r.html", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    char *argv[] = {(char *)bin, "report", (char *)dir, "-o", out, "--smooth", "0.6", "--title", "test <report>", NULL};
    int rc = test_wait(test_spawn(argv, log), 30, NULL);
    CHECK(rc == 0, "hone report: exit %d (%s)", rc, log);
    char *html = NULL;
    size_t len;
    if (rc == 0 && hone_read_file(out, &html, &len, NULL) == 0) check_page(html);
    free(html);
    char *bad[] = {(char *)bin, "report", (char *)dir, "--smooth", "1.5", NULL};
    CHECK(test_wait(test_spawn(bad, log), 30, NULL) == 2, "--smooth 1.5 refused");
    hone_remove_tree(dir, NULL);
}

static void test_hparam_names(void) {
    report_run run = {0};
    run.hparams = json_loads("{\"beta\": 0.1, \"lr_scheduler_kwargs\": {\"min_lr\": 1e-06}, \"a.b\": \"flat\", \"loss_type\": [\"sigmoid\", \"sft\"]}", 0, NULL);
    char v[64];
    report_hparam_text(&run, "beta", v, sizeof v);
    CHECK(!strcmp(v, "0.1"), "'%s'", v);
    report_hparam_text(&run, "lr_scheduler_kwargs.min_lr", v, sizeof v);
    CHECK(!strcmp(v, "1e-06"), "nested: '%s'", v);
    report_hparam_text(&run, "a.b", v, sizeof v);
    CHECK(!strcmp(v, "flat"), "flat dotted: '%s'", v);
    report_hparam_text(&run, "loss_type", v, sizeof v);
    CHECK(!strcmp(v, "[\"sigmoid\",\"sft\"]"), "list: '%s'", v);
    report_hparam_text(&run, "nope.x", v, sizeof v);
    CHECK(!strcmp(v, ""), "absent: '%s'", v);
    json_decref(run.hparams);
}

static void test_smoothing_and_ticks(void) {
    double v[4] = {1, 2, NAN, 3}, o[4];
    report_smooth(v, o, 4, 0.6);
    /* last = 0.4; 0.4/0.4 | 0.4*0.6 + 0.4*2 = 1.04; /0.64 | NaN passed through | 1.04*0.6 + 1.2 = 1.824; /0.784 */
    CHECK_CLOSE(o[0], 1.0, 1e-12, 0, "smooth[0]");
    CHECK_CLOSE(o[1], 1.625, 1e-12, 0, "smooth[1]");
    CHECK(isnan(o[2]), "a NaN stays");
    CHECK_CLOSE(o[3], 1.824 / 0.784, 1e-12, 0, "smooth[3]");
    report_smooth(v, o, 2, 0);
    CHECK(o[0] == 1 && o[1] == 2, "weight 0: raw");
    double t[64];
    int n = report_ticks(0.0, 1.0, 6, 0, t, 64);
    CHECK(n == 6 && t[0] == 0 && fabs(t[5] - 1) < 1e-12 && fabs(t[1] - 0.2) < 1e-12, "linear ticks: %d", n);
    n = report_ticks(0.6902, 0.6931, 6, 0, t, 64);
    CHECK(n >= 3 && n <= 8 && t[0] >= 0.6902 && t[n - 1] <= 0.6931, "narrow ticks: %d", n);
    char lab[64], prev[64] = "";
    for (int i = 0; i < n; i++) { /* labels tell neighbours apart and read back as the tick */
        report_tick_label(t[i], t[1] - t[0], 0, lab, sizeof lab);
        CHECK(strcmp(lab, prev) && fabs(strtod(lab, NULL) - t[i]) < (t[1] - t[0]) * 1e-6, "narrow label '%s' for %.9g", lab, t[i]);
        snprintf(prev, sizeof prev, "%s", lab);
    }
    n = report_ticks(1e-5, 0.2, 6, 1, t, 64);
    CHECK(n == 5 && t[0] == 1e-5 && fabs(t[4] - 0.1) < 1e-15, "log ticks: %d", n);
    n = report_ticks(0.3, 2.5, 6, 1, t, 64);
    CHECK(n >= 3, "log ticks within one decade: %d", n);
    report_tick_label(2e-7, 1e-7, 0, lab, sizeof lab);
    CHECK(!strcmp(lab, "2e-07"), "'%s'", lab);
    report_tick_label(15000, 5000, 0, lab, sizeof lab);
    CHECK(!strcmp(lab, "15000"), "'%s'", lab);
}

int main(void) {
    TEST_RUN(test_smoothing_and_ticks);
    TEST_RUN(test_hparam_names);
    TEST_RUN(test_grid_with_experiment_json);
    TEST_RUN(test_grid_inferred);
    TEST_RUN(test_errors);
    TEST_RUN(test_cli);
    return test_finish();
}
