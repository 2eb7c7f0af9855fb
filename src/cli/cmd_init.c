/* cli/cmd_init.c — `hone init`: a randomly initialised model directory from a
 * config.json (for pretraining from scratch, tests and benchmarks). */
#include "cli/commands.h"
#include "simd/kernels.h"
#include "model/model.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "Usage: hone init CONFIG.json OUTDIR [--tokenizer DIR] [--seed N] [--std X]\n\n"
               "Writes OUTDIR (config.json, model.safetensors) with weights drawn from N(0, std^2)\n"
               "(default std: initializer_range of the config, else 0.02), norms at their identity and\n"
               "biases at zero, from the seed (default 0). Tokenizer files in DIR are copied along.\n");
}

int cmd_init(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { usage(stdout); return 0; }
    if (argc < 3) { usage(stderr); return 2; }
    const char *cfgp = argv[1], *out = argv[2], *tok = NULL;
    unsigned long long seed = 0;
    double std = -1;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--std") && i + 1 < argc) std = atof(argv[++i]);
        else { fprintf(stderr, "hone init: unknown option '%s'\n", argv[i]); return 2; }
    }
    kernels_init();
    hone_error err = {{0}};
    hone_model_config c;
    if (model_config_load(&c, cfgp, &err) < 0) { fprintf(stderr, "hone init: %s\n", err.msg); return 1; }
    if (std <= 0) {
        char *txt;
        std = 0.02;
        if (hone_read_file(cfgp, &txt, NULL, NULL) == 0) {
            char *p = strstr(txt, "\"initializer_range\"");
            if (p && (p = strchr(p, ':'))) std = atof(p + 1);
            free(txt);
        }
    }
    hone_model m;
    if (model_init(&m, &c, &err) < 0) { fprintf(stderr, "hone init: %s\n", err.msg); return 1; }
    model_init_random(&m, seed, (float)std);
    int rc = model_save(&m, out, tok, &err);
    model_free(&m);
    if (rc < 0) { fprintf(stderr, "hone init: %s\n", err.msg); return 1; }
    printf("wrote %s (%zu parameters)\n", out, model_config_num_params(&c));
    return 0;
}
