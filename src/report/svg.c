/* report/svg.c — the report's charts as inline SVG (report.h): line charts of one metric
 * with every run overlaid (nice ticks, a log axis when the values span decades,
 * TensorBoard's smoothing over the faint raw line), and the heatmap of a 2-D grid's
 * metric. No script: values show as SVG <title> tooltips on hover. */
#include "report/report.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLORS 10

const char *report_color(int i) { return palette[i % N_COLORS]; }

void report_smooth(const double *v, double *out, int n, double w) {
    /* TensorBoard's scalar card: last = last*w + (1-w)*v, divided by 1 - w^k (k finite points so far) */
    double last = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) { out[i] = v[i]; continue; }
        last = last * w + (1 - w) * v[i];
        k++;
        double debias = w > 0 ? 1 - pow(w, k) : 1;
        out[i] = last / debias;
    }
}

static double nice_num(double x, int round_it) {
    double e = floor(log10(x)), f = x / pow(10, e), nf;
    if (round_it) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10, e);
}

int report_ticks(double lo, double hi, int want, int log_axis, double *out, int max) {
    int n = 0;
    if (!(hi > lo) || want < 2 || !isfinite(lo) || !isfinite(hi) || (log_axis && !(lo > 0))) return 0;
    if (log_axis) {
        int e0 = (int)floor(log10(lo)), e1 = (int)ceil(log10(hi));
        for (int pass = 0; pass < 2 && n < 3; pass++) {
            n = 0;
            static const double mult1[] = {1}, mult2[] = {1, 2, 5};
            const double *m = pass ? mult2 : mult1;
            int nm = pass ? 3 : 1;
            for (int e = e0; e <= e1; e++)
                for (int j = 0; j < nm; j++) {
                    double v = m[j] * pow(10, e);
                    if (v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12) && n < max) out[n++] = v;
                }
        }
        return n;
    }
    double d = nice_num(nice_num(hi - lo, 0) / (want - 1), 1);
    if (!(d > 0) || !isfinite(d) || fabs(lo) / d > 1e15) { /* no room for a tick between (a range below double precision) */
        out[n++] = lo;
        if (n < max) out[n++] = hi;
        return n;
    }
    double first = ceil(lo / d - 1e-9) * d;
    for (int i = 0; n < max; i++) {
        double v = first + i * d;
        if (v > hi + d * 1e-9) break;
        out[n++] = fabs(v) < d * 1e-9 ? 0 : v;
    }
    return n;
}

void report_tick_label(double v, double step, int log_axis, char *out, size_t n) {
    if (v == 0) { snprintf(out, n, "0"); return; }
    if (log_axis || !isfinite(v) || !(step > 0) || !isfinite(step)) { snprintf(out, n, "%g", v); return; }
    double a = fabs(v) > step ? fabs(v) : step;
    int ev = (int)floor(log10(fabs(v)) + 1e-9), es = (int)floor(log10(step) + 1e-9);
    if (a >= 1e-4 && a < 1e6) {
        int dec = es < 0 ? -es : 0;
        snprintf(out, n, "%.*f", dec, v);
    } else {
        int prec = ev - es > 0 ? ev - es : 0;
        snprintf(out, n, "%.*e", prec > 6 ? 6 : prec, v);
    }
}

/* chart geometry (SVG user units) */
#define CW 600
#define CH 300
#define PL 72
#define PR 16
#define PT 16
#define PB 44

typedef struct { double lo, hi; int log_axis; double p0, p1; } axis;

static double ax_map(const axis *a, double v) {
    double t = a->log_axis ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

static void svg_text(FILE *f, const char *s) { report_html_text(f, s); }

static void fmt_value(double v, char *out, size_t n) {
    if (!isfinite(v)) snprintf(out, n, "%s", isnan(v) ? "null" : v > 0 ? "inf" : "-inf");
    else snprintf(out, n, "%.6g", v);
}

/* the path of one series: M at the start and after every gap (non-finite value) */
static void write_path(FILE *f, const axis *x, const axis *y, const long *steps, const double *v, int n) {
    int pen = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (y->log_axis && v[i] <= 0)) { pen = 0; continue; }
        fprintf(f, "%s%.1f %.1f", pen ? " L" : (i ? " M" : "M"), ax_map(x, (double)steps[i]), ax_map(y, v[i]));
        pen = 1;
    }
}

static void write_axes(FILE *f, const axis *x, const axis *y) {
    double t[64];
    char lab[64];
    int n = report_ticks(y->lo, y->hi, 6, y->log_axis, t, 64);
    double step = n > 1 ? t[1] - t[0] : (y->hi - y->lo);
    for (int i = 0; i < n; i++) {
        double py = ax_map(y, t[i]);
        report_tick_label(t[i], step, y->log_axis, lab, sizeof lab);
        fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, py, CW - PR, py);
        fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", PL - 6, py + 4, lab);
    }
    n = report_ticks(x->lo, x->hi, 7, 0, t, 64);
    double xs = n > 1 ? t[1] - t[0] : 1;
    for (int i = 0; i < n; i++) {
        if (xs < 1 && t[i] != floor(t[i])) continue; /* steps are integers */
        double px = ax_map(x, t[i]);
        report_tick_label(t[i], xs < 1 ? 1 : xs, 0, lab, sizeof lab);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", px, PT, px, CH - PB);
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px, CH - PB + 16, lab);
    }
    fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", PL, PT, CW - PL - PR, CH - PT - PB);
    fprintf(f, "<text class=\"axis\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n", PL + (CW - PL - PR) / 2, CH - 8);
    if (y->log_axis) fprintf(f, "<text class=\"axis\" x=\"%d\" y=\"%d\" text-anchor=\"start\">log scale</text>\n", 4, CH - 8);
}

int report_svg_chart(FILE *f, const hone_report *r, const report_chart *c) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int nseries = 0, all_pos = 1, maxn = 0;
    for (int i = 0; i < r->n_runs; i++) {
        const report_series *s = report_find(&r->runs[i], c->key);
        if (!s) continue;
        nseries++;
        if (s->n > maxn) maxn = s->n;
        for (int k = 0; k < s->n; k++) {
            if (!isfinite(s->val[k])) continue;
            if (s->step[k] < xlo) xlo = (double)s->step[k];
            if (s->step[k] > xhi) xhi = (double)s->step[k];
            if (s->val[k] < ylo) ylo = s->val[k];
            if (s->val[k] > yhi) yhi = s->val[k];
            all_pos &= s->val[k] > 0;
        }
    }
    if (!nseries) return 0;
    if (!isfinite(xlo)) { xlo = 0; xhi = 1; ylo = 0; yhi = 1; all_pos = 0; } /* every value null: an empty frame, said so below */
    axis x = {xlo, xhi, 0, PL, CW - PR}, y = {ylo, yhi, 0, CH - PB, PT};
    if (x.hi <= x.lo) { x.lo -= 1; x.hi += 1; }
    else if (x.lo > 0 && x.lo <= 0.25 * x.hi) x.lo = 0; /* the axis starts at step 0 when the data nearly does */
    y.log_axis = all_pos && yhi / ylo > 100;
    if (y.log_axis) { y.lo = ylo / 1.25; y.hi = yhi * 1.25; }
    else if (yhi <= ylo) { double d = fabs(ylo) > 0 ? fabs(ylo) * 0.05 : 1; y.lo = ylo - d; y.hi = yhi + d; }
    else { double d = (yhi - ylo) * 0.06; y.lo = ylo - d; y.hi = yhi + d; }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 %d %d\" data-key=\"", CW, CH);
    svg_text(f, c->key);
    fprintf(f, "\" role=\"img\"><title>");
    svg_text(f, c->title);
    fprintf(f, "</title>\n");
    write_axes(f, &x, &y);
    double *sm = NULL;
    for (int i = 0, j = 0; i < r->n_runs; i++) {
        const report_series *s = report_find(&r->runs[i], c->key);
        if (!s) continue;
        const char *col = report_color(i);
        const char *dash = i >= N_COLORS ? " stroke-dasharray=\"6 3\"" : "";
        fprintf(f, "<g class=\"run\">");
        const double *line = s->val;
        if (c->smooth > 0 && s->n > 1) {
            double *t = realloc(sm, sizeof *t * (size_t)s->n);
            if (t) {
                sm = t;
                report_smooth(s->val, sm, s->n, c->smooth);
                fprintf(f, "<path class=\"raw\" stroke=\"%s\" d=\"", col);
                write_path(f, &x, &y, s->step, s->val, s->n);
                fprintf(f, "\"/>");
                line = sm;
            }
        }
        fprintf(f, "<path class=\"series\" data-series=\"");
        svg_text(f, r->runs[i].name);
        fprintf(f, "\" stroke=\"%s\"%s d=\"", col, dash);
        write_path(f, &x, &y, s->step, line, s->n);
        fprintf(f, "\"><title>");
        svg_text(f, r->runs[i].name);
        fprintf(f, "</title></path>");
        if (s->n <= 40)
            for (int k = 0; k < s->n; k++) {
                if (!isfinite(s->val[k]) || (y.log_axis && s->val[k] <= 0)) continue;
                char v[64];
                fmt_value(s->val[k], v, sizeof v);
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\"><title>", ax_map(&x, (double)s->step[k]),
                        ax_map(&y, s->val[k]), col);
                svg_text(f, r->runs[i].name);
                fprintf(f, " step %ld: %s</title></circle>", s->step[k], v);
            }
        fprintf(f, "</g>\n");
        j++;
    }
    free(sm);
    fprintf(f, "</svg>\n");
    return nseries;
}

/* ---- heatmap ---- */

static const unsigned char viridis[5][3] = {{0x44, 0x01, 0x54}, {0x3b, 0x52, 0x8b}, {0x21, 0x91, 0x8c}, {0x5e, 0xc9, 0x62}, {0xfd, 0xe7, 0x25}};

static void color_at(double t, char out[8]) {
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double p = t * 4;
    int k = p >= 4 ? 3 : (int)p;
    double u = p - k;
    int rgb[3];
    for (int c = 0; c < 3; c++) rgb[c] = (int)(viridis[k][c] + u * (viridis[k + 1][c] - viridis[k][c]) + 0.5);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

/* the distinct values of hyperparameter h over the experiment's trials: numeric ascending
 * when every one is a number, else in trial order */
static int distinct_values(const hone_report *r, const report_experiment *e, const char *h, char vals[][64], int max) {
    int n = 0, numeric = 1;
    for (int i = 0; i < e->n; i++) {
        char v[64];
        report_hparam_text(&r->runs[e->first + i], h, v, sizeof v);
        int seen = 0;
        for (int k = 0; k < n; k++) seen |= !strcmp(vals[k], v);
        if (seen || n == max) continue;
        char *end;
        strtod(v, &end);
        numeric &= v[0] && !*end;
        snprintf(vals[n++], 64, "%s", v);
    }
    for (int a = 1; numeric && a < n; a++) /* insertion sort by value */
        for (int b = a; b > 0 && strtod(vals[b - 1], NULL) > strtod(vals[b], NULL); b--) {
            char t[64];
            memcpy(t, vals[b], 64);
            memcpy(vals[b], vals[b - 1], 64);
            memcpy(vals[b - 1], t, 64);
        }
    return n;
}

int report_svg_heatmap(FILE *f, const hone_report *r, const report_experiment *e) {
    if (e->n_hp != 2 || e->n < 2) return 0;
    char rows[32][64], cols[32][64];
    int nr = distinct_values(r, e, e->hp[0], rows, 32), nc = distinct_values(r, e, e->hp[1], cols, 32);
    if (nr < 1 || nc < 1 || nr * nc < 2) return 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < e->n; i++) {
        double m = r->runs[e->first + i].metric;
        if (isfinite(m)) { lo = m < lo ? m : lo; hi = m > hi ? m : hi; }
    }
    /* colours on a log scale when the metric is positive and spans over two decades (as the charts' axes) */
    int log_c = lo > 0 && hi / lo > 100;
    int cw = nc <= 4 ? 120 : 480 / nc < 72 ? 72 : 480 / nc, chh = 48, left = 150, top = 56;
    int W = left + nc * cw + 24, H = top + nr * chh + 70;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" viewBox=\"0 0 %d %d\" width=\"%d\" data-metric=\"", W, H, W);
    svg_text(f, e->metric);
    fprintf(f, "\" role=\"img\"><title>");
    svg_text(f, e->metric);
    fprintf(f, " over ");
    svg_text(f, e->hp[0]);
    fprintf(f, " and ");
    svg_text(f, e->hp[1]);
    fprintf(f, "</title>\n<text class=\"axis\" x=\"%d\" y=\"18\" text-anchor=\"middle\">", left + nc * cw / 2);
    svg_text(f, e->hp[1]);
    fprintf(f, "</text>\n<text class=\"axis\" x=\"12\" y=\"%d\" text-anchor=\"start\">", top - 8);
    svg_text(f, e->hp[0]);
    fprintf(f, "</text>\n");
    for (int c = 0; c < nc; c++) {
        fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", left + c * cw + cw / 2, top - 10);
        svg_text(f, cols[c]);
        fprintf(f, "</text>");
    }
    fputc('\n', f);
    for (int rr = 0; rr < nr; rr++) {
        fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, top + rr * chh + chh / 2 + 4);
        svg_text(f, rows[rr]);
        fprintf(f, "</text>\n");
        for (int c = 0; c < nc; c++) {
            const report_run *cell = NULL;
            for (int i = 0; i < e->n && !cell; i++) {
                char a[64], b[64];
                report_hparam_text(&r->runs[e->first + i], e->hp[0], a, sizeof a);
                report_hparam_text(&r->runs[e->first + i], e->hp[1], b, sizeof b);
                if (!strcmp(a, rows[rr]) && !strcmp(b, cols[c])) cell = &r->runs[e->first + i];
            }
            int x0 = left + c * cw, y0 = top + rr * chh;
            if (!cell || !isfinite(cell->metric)) {
                fprintf(f, "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#e0e0e0\"/>", x0, y0, cw - 2, chh - 2);
                fprintf(f, "<text class=\"cellt\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">%s</text>\n", x0 + cw / 2,
                        y0 + chh / 2 + 4, cell ? (cell->status[0] ? cell->status : "no metric") : "no trial");
                continue;
            }
            double t = hi > lo ? (log_c ? log(cell->metric / lo) / log(hi / lo) : (cell->metric - lo) / (hi - lo)) : 1;
            if (e->smaller_is_better) t = 1 - t; /* bright = better, whichever way the metric points */
            char col[8], v[64];
            color_at(t, col);
            snprintf(v, sizeof v, "%.5g", cell->metric);
            fprintf(f, "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>", x0, y0, cw - 2, chh - 2, col);
            svg_text(f, cell->name);
            fprintf(f, ": %s %s</title></rect>", e->metric, v);
            const char *ink = t > 0.55 ? "#111" : "#fff";
            fprintf(f, "<text class=\"cellt\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">%s</text>", x0 + cw / 2, y0 + chh / 2 - 2,
                    ink, v);
            if (cell->rank > 0)
                fprintf(f, "<text class=\"cellr\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">#%d</text>", x0 + cw / 2, y0 + chh / 2 + 13,
                        ink, cell->rank);
            fputc('\n', f);
        }
    }
    /* the colour scale: worst to best */
    int gy = top + nr * chh + 18, gw = nc * cw - 2;
    int id = (int)(e - r->ex);
    fprintf(f, "<defs><linearGradient id=\"hm-scale-%d\">", id);
    for (int k = 0; k <= 4; k++) {
        char col[8];
        color_at(k / 4.0, col);
        fprintf(f, "<stop offset=\"%d%%\" stop-color=\"%s\"/>", k * 25, col);
    }
    fprintf(f, "</linearGradient></defs>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"12\" fill=\"url(#hm-scale-%d)\"/>\n", left, gy, gw, id);
    char a[64], b[64];
    snprintf(a, sizeof a, "%.5g", e->smaller_is_better ? hi : lo);
    snprintf(b, sizeof b, "%.5g", e->smaller_is_better ? lo : hi);
    fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"start\">%s (worst)</text>", left, gy + 28, isfinite(lo) ? a : "");
    fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%s (best)</text>\n", left + gw, gy + 28, isfinite(lo) ? b : "");
    if (log_c) fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">log scale</text>\n", left + gw / 2, gy + 28);
    fprintf(f, "</svg>\n");
    return 1;
}
