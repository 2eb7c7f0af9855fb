/* cli/cmd_convert.c — `hone convert`: import a llama2.c checkpoint as a Hugging
 * Face model directory (its SentencePiece tokenizer converted alongside). */
#include "cli/commands.h"
#include "model/convert.h"
#include "simd/kernels.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "base/util.h"
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "Usage: hone convert llama2c MODEL.bin OUTDIR [--tokenizer TOKENIZER.model]\n\n"
               "Imports a llama2.c checkpoint into a Hugging Face model directory (config.json,\n"
               "model.safetensors), loadable by transformers' from_pretrained and by hone. With\n"
               "--tokenizer, a SentencePiece BPE model is converted to tokenizer.json alongside.\n");
}

int cmd_convert(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(argc < 2 ? stderr : stdout); return argc < 2 ? 2 : 0; }
    if (strcmp(argv[1], "llama2c") || argc < 4) { usage(stderr); return 2; }
    const char *in = argv[2], *out = argv[3], *tok = NULL;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else { fprintf(stderr, "hone convert: unknown option '%s'\n", argv[i]); return 2; }
    }
    kernels_init();
    hone_error err = {{0}};
    hone_model m;
    if (convert_llama2c_load(&m, in, &err) < 0) { fprintf(stderr, "hone convert: %s\n", err.msg); return 1; }
    char staging[4096];
    snprintf(staging, sizeof staging, "%s.tok-%d", out, 0);
    const char *src_dir = NULL;
    if (tok) {
        if (spm_convert(tok, staging, &err) < 0) { fprintf(stderr, "hone convert: %s\n", err.msg); model_free(&m); return 1; }
        src_dir = staging;
    }
    int rc = model_save(&m, out, src_dir, &err);
    if (tok) hone_remove_tree(staging, NULL);
    model_free(&m);
    if (rc < 0) { fprintf(stderr, "hone convert: %s\n", err.msg); return 1; }
    printf("wrote %s\n", out);
    return 0;
}
