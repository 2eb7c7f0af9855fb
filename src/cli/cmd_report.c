/* cli/cmd_report.c — `hone report DIR... -o report.html`: run and experiment directories
 * turned into one self-contained HTML page (report/report.h, docs/report.md). */
#include "cli/commands.h"
#include "report/report.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "Usage: hone report RUN_OR_EXPERIMENT_DIR... [-o report.html] [--smooth W] [--title TEXT] [--compare DIR]\n\n"
               "Writes one self-contained HTML page (inline SVG charts and CSS, no script, no network; opens from file://):\n"
               "training and eval loss, learning rate, gradient norm, tokens/s, and for DPO the rewards (chosen, rejected,\n"
               "margins, accuracies) and log-probs, every run or trial overlaid; per experiment (experiment.json, or trial-*\n"
               "directories) the ranked trial table and, for a 2-D grid, a heatmap of its metric; each run's manifest; hone\n"
               "compare's answers when DIR/compare/compare.jsonl (or --compare DIR) is there.\n\n"
               "  -o, --output FILE  the page (default report.html), written atomically\n"
               "  --smooth W         TensorBoard's smoothing, an EMA weight in [0, 1) (default 0: raw values only)\n"
               "  --title TEXT       the page title (default \"hone report\")\n"
               "  --compare DIR      a hone compare --out directory to embed\n"
               "Example: hone report runs/sft runs/dpo-grid -o report.html --smooth 0.6\n");
}

int cmd_report(int argc, char **argv) {
    const char *out = "report.html", *title = "hone report", *compare = NULL;
    double smooth = 0;
    char **dirs = calloc((size_t)argc, sizeof *dirs);
    int nd = 0;
    if (!dirs) { fprintf(stderr, "hone report: out of memory\n"); return 1; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); free(dirs); return 0; }
        int has = i + 1 < argc;
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out = argv[++i];
        else if (!strcmp(a, "--title") && has) title = argv[++i];
        else if (!strcmp(a, "--compare") && has) compare = argv[++i];
        else if (!strcmp(a, "--smooth") && has) {
            char *end;
            smooth = strtod(argv[++i], &end);
            if (*end || !(smooth >= 0 && smooth < 1)) {
                fprintf(stderr, "hone report: --smooth: expected a number in [0, 1), got '%s'\n", argv[i]);
                free(dirs);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hone report: unexpected argument '%s' (see --help)\n", a);
            free(dirs);
            return 2;
        } else dirs[nd++] = argv[i];
    }
    if (!nd) { fprintf(stderr, "hone report: need at least one run or experiment directory (see --help)\n"); free(dirs); return 2; }
    hone_report r;
    hone_error err = {{0}};
    int rc = 1;
    if (report_load(&r, dirs, nd, compare, &err) < 0) { fprintf(stderr, "hone report: %s\n", err.msg); free(dirs); return 1; }
    if (report_write(&r, out, smooth, title, &err) < 0) fprintf(stderr, "hone report: %s\n", err.msg);
    else {
        printf("wrote %s (%d run(s), %d experiment(s)%s)\n", out, r.n_runs, r.n_ex, r.compare ? ", hone compare's answers" : "");
        rc = 0;
    }
    report_free(&r);
    free(dirs);
    return rc;
}
