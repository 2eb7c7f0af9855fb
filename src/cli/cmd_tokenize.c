/* cli/cmd_tokenize.c — `hone tokenize`: text in, ids or pieces out, for people; and with
 * --jsonl, {"text": ...} lines in, {"ids", "ids_special", "decoded"} lines out in the exact
 * form of the reference encodings (shared/tokenizers/<name>/expected.dev.jsonl), so any
 * corpus can be checked against the reference library with cmp. Also --convert, which
 * turns a SentencePiece .model into a tokenizer.json directory. */
#include "cli/commands.h"
#include "tokenizer/internal.h"
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "Usage: hone tokenize MODEL_DIR|tokenizer.json [--text T] [--pieces] [--no-special]\n"
               "       hone tokenize MODEL_DIR|tokenizer.json --jsonl  < {\"text\": ...} lines\n"
               "       hone tokenize --convert tokenizer.model OUTDIR\n"
               "Encodes T (or standard input) and prints the ids (or id<TAB>piece lines with --pieces).\n"
               "--no-special: no post-processor (no BOS). --jsonl: per input line prints\n"
               "{\"ids\": encode without special tokens, \"ids_special\": with, \"decoded\": decode of ids}.\n"
               "--convert: SentencePiece BPE model -> OUTDIR/tokenizer.json + tokenizer_config.json.\n");
}

static int run_jsonl(const hone_tokenizer *tok) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    tok_buf out = {0};
    int rc = 0;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &je);
        json_t *t = json_object_get(j, "text");
        hone_error err;
        if (!json_is_string(t)) {
            fprintf(stderr, "hone tokenize: stdin:%ld: expected {\"text\": \"...\"}\n", lineno);
            rc = 1;
        } else if (tok_jsonl_line(tok, json_string_value(t), json_string_length(t), &out, &err)) {
            fprintf(stderr, "hone tokenize: stdin:%ld: %s\n", lineno, err.msg);
            rc = 1;
        } else {
            fwrite(out.p, 1, out.n, stdout);
            fputc('\n', stdout);
        }
        json_decref(j);
        if (rc) break;
    }
    free(line);
    tok_buf_free(&out);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *text = NULL;
    int pieces = 0, special = 1, jsonl = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--convert")) {
            if (i + 2 >= argc) { usage(stderr); return 2; }
            hone_error err;
            if (spm_convert(argv[i + 1], argv[i + 2], &err)) { fprintf(stderr, "hone tokenize: %s\n", err.msg); return 1; }
            fprintf(stderr, "wrote %s/tokenizer.json and %s/tokenizer_config.json\n", argv[i + 2], argv[i + 2]);
            return 0;
        }
        if (!strcmp(argv[i], "--text") && i + 1 < argc) text = argv[++i];
        else if (!strcmp(argv[i], "--pieces")) pieces = 1;
        else if (!strcmp(argv[i], "--no-special")) special = 0;
        else if (!strcmp(argv[i], "--jsonl")) jsonl = 1;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else { fprintf(stderr, "hone tokenize: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    if (!path) { usage(stderr); return 2; }
    hone_tokenizer *tok;
    hone_error err;
    if (tokenizer_load(&tok, path, &err)) { fprintf(stderr, "hone tokenize: %s\n", err.msg); return 1; }
    int rc = 0;
    if (jsonl) {
        rc = run_jsonl(tok);
    } else {
        tok_buf in = {0};
        if (text) tok_buf_put(&in, text, strlen(text));
        else {
            char buf[65536];
            size_t k;
            while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) tok_buf_put(&in, buf, k);
        }
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(tok, in.p ? in.p : "", in.n, special, &ids, &n, &err)) {
            fprintf(stderr, "hone tokenize: %s\n", err.msg);
            rc = 1;
        } else {
            for (size_t i = 0; i < n; i++) {
                if (pieces) {
                    const char *p = tokenizer_id_to_token(tok, ids[i]);
                    printf("%d\t%s\n", ids[i], p ? p : "");
                } else {
                    printf(i ? " %d" : "%d", ids[i]);
                }
            }
            if (!pieces) printf("\n");
            free(ids);
        }
        tok_buf_free(&in);
    }
    tokenizer_free(tok);
    return rc;
}
