/* cli/cmd_chat.c — `hone chat`: an interactive conversation. Each user line is added
 * to the history, the whole conversation is rendered with the chat template and the
 * reply streams as it is generated; Ctrl-D (end of input) leaves. The KV cache keeps
 * the conversation: a turn runs only the tokens after the longest prefix the cache
 * already holds (reuse_prefix), so the history is not recomputed. */
#include "cli/commands.h"
#include "cli/gen_cli.h"
#include "simd/kernels.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAT_MAX_NEW_TOKENS 256 /* longer than generate's default: answers in a conversation run on */

/* gen_args defaults for chat (used by the options and by --help alike). */
static void chat_defaults(gen_args *a) {
    gen_args_defaults(a);
    a->o.max_new_tokens = CHAT_MAX_NEW_TOKENS;
    a->chat_template = "auto";
}

static void usage(FILE *f) {
    fprintf(f, "Usage: hone chat MODEL_DIR [--system TEXT] [--stats] [options]\n\n"
               "Reads one user message per line, answers with the model (streamed), keeps the history.\n"
               "The chat template is the model's own (--chat-template auto, the default) or the one named.\n"
               "The KV cache keeps the conversation: each turn runs only its new tokens.\n"
               "When the conversation outgrows the context (--max-context, default the model's, at most\n"
               "4096), the oldest turns are dropped (the system message is kept); a note on standard\n"
               "error says so the first time.\n"
               "--stats prints, after each answer, the prompt tokens, how many came from the cache,\n"
               "the tokens generated and the time (on standard error).\n"
               "Ctrl-D leaves; an empty line is ignored; /reset clears the history.\n");
    gen_args d;
    chat_defaults(&d);
    gen_args_help(f, &d);
}

static void on_piece(void *ctx, int seq, const char *p, size_t n) {
    (void)ctx; (void)seq;
    fwrite(p, 1, n, stdout);
    fflush(stdout);
}

int cmd_chat(int argc, char **argv) {
    gen_args a;
    chat_defaults(&a);
    const char *model = NULL, *system = NULL;
    int stats = 0;
    hone_error err = {{0}};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        int r = gen_args_parse(&a, argc, argv, &i, &err);
        if (r < 0) { fprintf(stderr, "hone chat: %s\n", err.msg); return 2; }
        if (r) continue;
        if (!strcmp(argv[i], "--system") && i + 1 < argc) system = argv[++i];
        else if (!strcmp(argv[i], "--stats")) stats = 1;
        else if (argv[i][0] != '-' && !model) model = argv[i];
        else { fprintf(stderr, "hone chat: unexpected argument '%s' (see --help)\n", argv[i]); return 2; }
    }
    if (!model) { fprintf(stderr, "hone chat: need MODEL_DIR (see --help)\n"); return 2; }
    kernels_init();
    if (gen_threads_init(a.threads, &err) < 0) { fprintf(stderr, "hone chat: %s\n", err.msg); return 1; }
    gen_model g;
    if (gen_model_load(&g, model, a.chat_template, &err) < 0) { fprintf(stderr, "hone chat: %s\n", err.msg); return 1; }
    int ctx = g.m.cfg.max_position_embeddings > 0 ? g.m.cfg.max_position_embeddings : 2048;
    if (ctx > 4096) ctx = 4096;
    if (a.max_context) ctx = a.max_context;
    a.batch = 1;
    gen_args ea = a;
    ea.max_context = ctx;
    hone_engine e;
    if (gen_engine_init(&e, &g, &ea, 1, 1, &err) < 0) { fprintf(stderr, "hone chat: %s\n", err.msg); gen_model_free(&g); return 1; }
    hone_gen_options o;
    gen_options_for(&o, &a, &g);
    o.reuse_prefix = 1; /* each turn runs only what the cache lacks: the new messages */
    int cap = 64, n = 0, interactive = isatty(0), told_dropped = 0;
    gen_msg *hist = malloc(sizeof *hist * cap);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int rc = 0;
    if (system) hist[n++] = (gen_msg){"system", strdup(system)};
    int base = n;
    for (;;) {
        if (interactive) { fputs("> ", stdout); fflush(stdout); }
        if ((got = getline(&line, &lcap, stdin)) < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (!got) continue;
        if (!strcmp(line, "/reset")) {
            for (int i = base; i < n; i++) free((char *)hist[i].content);
            n = base;
            continue;
        }
        if (n + 2 > cap) {
            cap *= 2;
            gen_msg *h = realloc(hist, sizeof *hist * cap);
            if (!h) { fprintf(stderr, "hone chat: out of memory\n"); rc = 1; break; }
            hist = h;
        }
        hist[n++] = (gen_msg){"user", strdup(line)};
        int32_t *ids = NULL;
        int nid = 0;
        if (gen_encode_chat(&g, hist, n, &ids, &nid, &err) < 0) { fprintf(stderr, "hone chat: %s\n", err.msg); rc = 1; break; }
        /* forget the oldest turns when the conversation outgrows the context */
        while (nid + 16 >= e.max_T && n - base > 1) {
            if (!told_dropped++)
                fprintf(stderr, "hone chat: the conversation outgrew the context (%d tokens): dropping the oldest turns "
                                "(said once; --max-context sets the context)\n", e.max_T);
            free(ids);
            free((char *)hist[base].content);
            memmove(hist + base, hist + base + 1, sizeof *hist * (size_t)(n - base - 1));
            n--;
            if (gen_encode_chat(&g, hist, n, &ids, &nid, &err) < 0) { fprintf(stderr, "hone chat: %s\n", err.msg); return 1; }
        }
        if (nid >= e.max_T) {
            fprintf(stderr, "hone chat: the message is longer than the context (%d tokens)\n", e.max_T);
            free(ids);
            free((char *)hist[--n].content);
            continue;
        }
        hone_gen_output out;
        const int32_t *pp = ids;
        double t0 = hone_now();
        if (generate_run(&e, g.tok, &o, 1, &pp, &nid, on_piece, NULL, &out, &err) < 0) {
            fprintf(stderr, "hone chat: %s\n", err.msg);
            free(ids);
            rc = 1;
            break;
        }
        putchar('\n');
        fflush(stdout);
        if (stats)
            fprintf(stderr, "[prompt %d tokens, %d from the cache; %d generated; %.2f s]\n", out.prompt_tokens,
                    out.cached_tokens, out.n_tokens, hone_now() - t0);
        hist[n++] = (gen_msg){"assistant", strdup(out.text ? out.text : "")};
        gen_output_free(&out);
        free(ids);
    }
    if (interactive) putchar('\n');
    for (int i = 0; i < n; i++) free((char *)hist[i].content);
    free(hist);
    free(line);
    engine_free(&e);
    gen_model_free(&g);
    return rc;
}
