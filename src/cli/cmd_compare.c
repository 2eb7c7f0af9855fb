/* cli/cmd_compare.c — `hone compare`: every prompt answered by every model with the
 * same sampling settings and seed, written side by side as a Markdown table and an
 * HTML page (one row per prompt, one column per model). Models are loaded one at a
 * time, so only one is in memory. */
#include "cli/commands.h"
#include "cli/gen_cli.h"
#include "simd/kernels.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 16

static void usage(FILE *f) {
    fprintf(f, "Usage: hone compare --models NAME=DIR [NAME=DIR...] --prompts FILE.jsonl [--out DIR] [options]\n\n"
               "Answers every {\"prompt\": ...} row with every model (same settings and seed) and writes\n"
               "DIR/compare.md, DIR/compare.html and DIR/compare.jsonl (default DIR: compare).\n"
               "Example: hone compare --models base=out/base sft=out/sft dpo=out/dpo --prompts p.jsonl\n");
    gen_args d;
    gen_args_defaults(&d);
    gen_args_help(f, &d);
}

/* Markdown table cell: pipes escaped, newlines as <br>, HTML specials escaped. */
static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n') fputs("<br>", f);
        else if (*s == '\r') continue;
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

static void html_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static int write_pages(const char *dir, char **names, int nm, char **prompts, int np, char **ans, hone_error *err) {
    if (hone_mkdirs(dir, err) < 0) return -1;
    char path[1100];
    hone_path_join(path, sizeof path, dir, "compare.md");
    FILE *f = fopen(path, "w");
    if (!f) return hone_fail(err, "%s: cannot write", path);
    fputs("| # | prompt |", f);
    for (int m = 0; m < nm; m++) { fputc(' ', f); md_cell(f, names[m]); fputs(" |", f); }
    fputs("\n|---|---|", f);
    for (int m = 0; m < nm; m++) fputs("---|", f);
    fputc('\n', f);
    for (int p = 0; p < np; p++) {
        fprintf(f, "| %d | ", p + 1);
        md_cell(f, prompts[p]);
        fputs(" |", f);
        for (int m = 0; m < nm; m++) { fputc(' ', f); md_cell(f, ans[(size_t)m * np + p]); fputs(" |", f); }
        fputc('\n', f);
    }
    if (fclose(f)) return hone_fail(err, "%s: write failed", path);
    hone_path_join(path, sizeof path, dir, "compare.html");
    f = fopen(path, "w");
    if (!f) return hone_fail(err, "%s: cannot write", path);
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hone compare</title>\n<style>\n"
          "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;width:100%}\n"
          "td,th{border:1px solid #ccc;padding:6px;vertical-align:top;white-space:pre-wrap}\n"
          "th{background:#f3f3f3}td.p{background:#fafafa;font-weight:bold}\n</style></head><body>\n"
          "<h1>hone compare</h1>\n<table>\n<tr><th>#</th><th>prompt</th>", f);
    for (int m = 0; m < nm; m++) { fputs("<th>", f); html_text(f, names[m]); fputs("</th>", f); }
    fputs("</tr>\n", f);
    for (int p = 0; p < np; p++) {
        fprintf(f, "<tr><td>%d</td><td class=\"p\">", p + 1);
        html_text(f, prompts[p]);
        fputs("</td>", f);
        for (int m = 0; m < nm; m++) { fputs("<td>", f); html_text(f, ans[(size_t)m * np + p]); fputs("</td>", f); }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n</body></html>\n", f);
    if (fclose(f)) return hone_fail(err, "%s: write failed", path);
    hone_path_join(path, sizeof path, dir, "compare.jsonl");
    f = fopen(path, "w");
    if (!f) return hone_fail(err, "%s: cannot write", path);
    for (int p = 0; p < np; p++) {
        fputs("{\"prompt\": ", f);
        gen_json_string(f, prompts[p], strlen(prompts[p]));
        for (int m = 0; m < nm; m++) {
            fputs(", ", f);
            gen_json_string(f, names[m], strlen(names[m]));
            fputs(": ", f);
            gen_json_string(f, ans[(size_t)m * np + p], strlen(ans[(size_t)m * np + p]));
        }
        fputs("}\n", f);
    }
    if (fclose(f)) return hone_fail(err, "%s: write failed", path);
    return 0;
}

/* Answers of one model for every prompt into ans[0..np). */
static int run_model(const char *dir, const gen_args *a, char **prompts, int np, char **ans, hone_error *err) {
    gen_model g;
    if (gen_model_load(&g, dir, a->chat_template, err) < 0) return -1;
    int32_t **ids = calloc(np, sizeof *ids);
    int *lens = calloc(np, sizeof *lens), rc = -1, maxp = 0;
    hone_gen_output *out = calloc(np, sizeof *out);
    hone_engine e = {0};
    if (!ids || !lens || !out) { hone_fail(err, "out of memory"); goto done; }
    for (int p = 0; p < np; p++) {
        if (gen_encode_prompt(&g, prompts[p], &ids[p], &lens[p], err) < 0) goto done;
        if (lens[p] > maxp) maxp = lens[p];
    }
    if (gen_engine_init(&e, &g, a, np, maxp, err) < 0) goto done;
    hone_gen_options o;
    gen_options_for(&o, a, &g);
    if (generate_run(&e, g.tok, &o, np, (const int32_t *const *)ids, lens, NULL, NULL, out, err) < 0) goto done;
    for (int p = 0; p < np; p++) {
        ans[p] = out[p].text ? strdup(out[p].text) : strdup("");
        if (!ans[p]) { hone_fail(err, "out of memory"); goto done; }
    }
    rc = 0;
done:
    for (int p = 0; ids && p < np; p++) free(ids[p]);
    for (int p = 0; out && p < np; p++) gen_output_free(&out[p]);
    free(ids);
    free(lens);
    free(out);
    engine_free(&e);
    gen_model_free(&g);
    return rc < 0 ? hone_fail_prefix(err, "%s", dir) : 0;
}

int cmd_compare(int argc, char **argv) {
    gen_args a;
    gen_args_defaults(&a);
    const char *prompts_path = NULL, *outdir = "compare";
    char *names[MAX_MODELS], *dirs[MAX_MODELS];
    int nm = 0;
    hone_error err = {{0}};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        int r = gen_args_parse(&a, argc, argv, &i, &err);
        if (r < 0) { fprintf(stderr, "hone compare: %s\n", err.msg); return 2; }
        if (r) continue;
        if (!strcmp(argv[i], "--prompts") && i + 1 < argc) prompts_path = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) outdir = argv[++i];
        else if (!strcmp(argv[i], "--models")) {
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                char *spec = argv[++i], *eq = strchr(spec, '=');
                if (!eq || eq == spec || !eq[1]) {
                    fprintf(stderr, "hone compare: --models: expected NAME=DIR, got '%s'\n", spec);
                    return 2;
                }
                if (nm == MAX_MODELS) { fprintf(stderr, "hone compare: at most %d models\n", MAX_MODELS); return 2; }
                *eq = 0;
                names[nm] = spec;
                dirs[nm++] = eq + 1;
            }
        } else { fprintf(stderr, "hone compare: unexpected argument '%s' (see --help)\n", argv[i]); return 2; }
    }
    if (!nm || !prompts_path) { fprintf(stderr, "hone compare: need --models NAME=DIR... and --prompts FILE (see --help)\n"); return 2; }
    kernels_init();
    if (gen_threads_init(a.threads, &err) < 0) { fprintf(stderr, "hone compare: %s\n", err.msg); return 1; }
    char **prompts = NULL;
    int np = 0, rc = 1;
    const char *key = "prompt";
    if (gen_read_rows(prompts_path, &key, NULL, 1, &prompts, &np, &err) < 0) { fprintf(stderr, "hone compare: %s\n", err.msg); return 1; }
    char **ans = calloc((size_t)nm * np, sizeof *ans);
    if (!ans) { fprintf(stderr, "hone compare: out of memory\n"); goto done; }
    for (int m = 0; m < nm; m++) {
        double t0 = hone_now();
        if (run_model(dirs[m], &a, prompts, np, ans + (size_t)m * np, &err) < 0) {
            fprintf(stderr, "hone compare: model %s: %s\n", names[m], err.msg);
            goto done;
        }
        fprintf(stderr, "hone compare: %s answered %d prompt(s) in %.2f s\n", names[m], np, hone_now() - t0);
    }
    if (write_pages(outdir, names, nm, prompts, np, ans, &err) < 0) { fprintf(stderr, "hone compare: %s\n", err.msg); goto done; }
    printf("wrote %s/compare.md, %s/compare.html and %s/compare.jsonl (%d prompts x %d models)\n", outdir, outdir, outdir,
           np, nm);
    rc = 0;
done:
    for (size_t i = 0; ans && i < (size_t)nm * np; i++) free(ans[i]);
    free(ans);
    gen_rows_free(prompts, np, 1);
    return rc;
}
