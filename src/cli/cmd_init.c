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
    fprintf(f, "Usage: hone init CONFIG.json OUTDIR [--tokenizer DIR] [--seed N] [--std X] [--dtype D] [--max-shard-size GB]\n\n"
               "Writes OUTDIR (config.json, model.safetensors) with weights drawn from N(0, std^2)\n"
               "(default std: initializer_range of the config, else 0.02), norms at their identity and\n"
               "biases at zero, from the seed (default 0). Tokenizer files in DIR are copied along.\n"
               "The tensors are stored in D: float32, bfloat16 or float16 (default: the config's\n"
               "torch_dtype, else float32), written tensor by tensor without holding the model, so a\n"
               "7B model needs a few MB of memory; past --max-shard-size (default 2 GB) as shards\n"
               "model-0000k-of-0000n.safetensors with model.safetensors.index.json.\n");
}

int cmd_init(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { usage(stdout); return 0; }
    if (argc < 3) { usage(stderr); return 2; }
    const char *cfgp = argv[1], *out = argv[2], *tok = NULL;
    unsigned long long seed = 0;
    double std = -1, shard_gb = 2;
    const char *dtype = NULL;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--std") && i + 1 < argc) std = atof(argv[++i]);
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
        else if (!strcmp(argv[i], "--max-shard-size") && i + 1 < argc) shard_gb = atof(argv[++i]);
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
    if (!dtype) dtype = c.torch_dtype[0] && strcmp(c.torch_dtype, "auto") ? c.torch_dtype : "float32";
    if (strcmp(dtype, "float32") && strcmp(dtype, "bfloat16") && strcmp(dtype, "float16")) {
        fprintf(stderr, "hone init: --dtype (or torch_dtype in %s): '%s' is not float32, bfloat16 or float16\n", cfgp, dtype);
        return 2;
    }
    if (!(shard_gb > 0)) { fprintf(stderr, "hone init: --max-shard-size must be a positive number of GB\n"); return 2; }
    if (model_init_write(&c, out, tok, seed, (float)std, dtype, (size_t)(shard_gb * 1e9), &err) < 0) {
        fprintf(stderr, "hone init: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s (%zu parameters, %s)\n", out, model_config_num_params(&c), dtype);
    return 0;
}
