/* cli/cmd_generate.c — `hone generate`: completions for one prompt (streamed) or for a
 * JSONL file of prompts (one JSON line out per prompt, batched). */
#include "cli/commands.h"
#include "cli/gen_cli.h"
#include "simd/kernels.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "Usage: hone generate MODEL_DIR (--prompt TEXT | --prompts FILE.jsonl) [options]\n\n"
               "Generates a completion with a KV cache. --prompt streams the text to standard output;\n"
               "--prompts reads {\"prompt\": ...} rows and prints one JSON line per prompt:\n"
               "{\"prompt\", \"completion\", \"prompt_tokens\", \"completion_tokens\", \"finish\"}.\n"
               "  --no-stream             print the completion once it is finished\n");
    gen_args d;
    gen_args_defaults(&d);
    gen_args_help(f, &d);
}

static void on_piece(void *ctx, int seq, const char *p, size_t n) {
    (void)ctx; (void)seq;
    fwrite(p, 1, n, stdout);
    fflush(stdout);
}

static const char *finish_name(int f) {
    return f == HONE_FINISH_STOP_TOKEN ? "stop_token" : f == HONE_FINISH_STOP_STRING ? "stop_string" : "length";
}

int cmd_generate(int argc, char **argv) {
    gen_args a;
    gen_args_defaults(&a);
    const char *model = NULL, *prompt = NULL, *prompts = NULL;
    int stream = 1;
    hone_error err = {{0}};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        int r = gen_args_parse(&a, argc, argv, &i, &err);
        if (r < 0) { fprintf(stderr, "hone generate: %s\n", err.msg); return 2; }
        if (r) continue;
        if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(argv[i], "--prompts") && i + 1 < argc) prompts = argv[++i];
        else if (!strcmp(argv[i], "--no-stream")) stream = 0;
        else if (argv[i][0] != '-' && !model) model = argv[i];
        else { fprintf(stderr, "hone generate: unexpected argument '%s' (see --help)\n", argv[i]); return 2; }
    }
    if (!model || (!prompt == !prompts)) {
        fprintf(stderr, "hone generate: need MODEL_DIR and exactly one of --prompt / --prompts (see --help)\n");
        return 2;
    }
    kernels_init();
    if (gen_threads_init(a.threads, &err) < 0) { fprintf(stderr, "hone generate: %s\n", err.msg); return 1; }
    gen_model g;
    if (gen_model_load(&g, model, a.chat_template, &err) < 0) { fprintf(stderr, "hone generate: %s\n", err.msg); return 1; }
    char **rows = NULL;
    int n = 1, rc = 1, max_prompt = 0;
    const char *key = "prompt";
    if (prompts && gen_read_rows(prompts, &key, NULL, 1, &rows, &n, &err) < 0) {
        fprintf(stderr, "hone generate: %s\n", err.msg);
        gen_model_free(&g);
        return 1;
    }
    int32_t **ids = calloc(n, sizeof *ids);
    int *lens = calloc(n, sizeof *lens);
    hone_gen_output *out = calloc(n, sizeof *out);
    hone_engine e = {0};
    if (!ids || !lens || !out) { fprintf(stderr, "hone generate: out of memory\n"); goto done; }
    for (int i = 0; i < n; i++) {
        if (gen_encode_prompt(&g, prompts ? rows[i] : prompt, &ids[i], &lens[i], &err) < 0) {
            fprintf(stderr, "hone generate: prompt %d: %s\n", i + 1, err.msg);
            goto done;
        }
        if (lens[i] > max_prompt) max_prompt = lens[i];
    }
    if (gen_engine_init(&e, &g, &a, n, max_prompt, &err) < 0) { fprintf(stderr, "hone generate: %s\n", err.msg); goto done; }
    hone_gen_options o;
    gen_options_for(&o, &a, &g);
    double t0 = hone_now();
    int streaming = stream && !prompts;
    if (generate_run(&e, g.tok, &o, n, (const int32_t *const *)ids, lens, streaming ? on_piece : NULL, NULL, out, &err) < 0) {
        fprintf(stderr, "hone generate: %s\n", err.msg);
        goto done;
    }
    double dt = hone_now() - t0;
    long ntok = 0;
    for (int i = 0; i < n; i++) {
        ntok += out[i].n_tokens;
        if (!prompts) {
            if (!streaming) fwrite(out[i].text, 1, out[i].text_len, stdout);
            putchar('\n');
            continue;
        }
        fputs("{\"prompt\": ", stdout);
        gen_json_string(stdout, rows[i], strlen(rows[i]));
        fputs(", \"completion\": ", stdout);
        gen_json_string(stdout, out[i].text ? out[i].text : "", out[i].text_len);
        printf(", \"prompt_tokens\": %d, \"completion_tokens\": %d, \"finish\": \"%s\"}\n", out[i].prompt_tokens,
               out[i].n_tokens, finish_name(out[i].finish));
    }
    fprintf(stderr, "hone generate: %d prompt(s), %ld tokens in %.2f s (%.1f tokens/s; weights: %s)\n", n, ntok, dt,
            ntok / (dt > 0 ? dt : 1e-9), engine_weights_name(&e));
    rc = 0;
done:
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    for (int i = 0; out && i < n; i++) gen_output_free(&out[i]);
    free(ids);
    free(lens);
    free(out);
    engine_free(&e);
    gen_rows_free(rows, n, 1);
    gen_model_free(&g);
    return rc;
}
