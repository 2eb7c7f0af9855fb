/* cli/cmd_estimate.c — `hone estimate`: a training configuration's peak memory, broken down,
 * without loading or training anything (train/estimate.h), next to the memory available. */
#include "cli/commands.h"
#include "train/estimate.h"
#include "train/train_config.h"
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "Usage: hone estimate CONFIG.yaml [--sft|--dpo] [--set key=value]...\n\n"
               "Prints the peak memory a `hone sft` or `hone dpo` run of CONFIG.yaml would need, without\n"
               "loading the model (as accelerate's estimate-memory): the weights as held, gradients and\n"
               "optimizer state of the trained tensors (optim: adamw_8bit keeps about a quarter), activations\n"
               "for per_device_train_batch_size rows of max_length tokens with and without\n"
               "gradient_checkpointing, the DPO reference model (none with LoRA: the policy with adapters\n"
               "off), LoRA adapters, workspace, the load; and the memory available (cgroup limit or\n"
               "MemAvailable). The command is guessed from the keys (--sft / --dpo say it). hone sft and\n"
               "hone dpo run the same estimate first and stop when it does not fit (docs/memory.md).\n");
}

int cmd_estimate(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { usage(stdout); return 0; }
    if (argc < 2) { usage(stderr); return 2; }
    int kind = -1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--sft")) kind = HONE_SFT;
        else if (!strcmp(argv[i], "--dpo")) kind = HONE_DPO;
    }
    hone_train_config cfg;
    hone_error err = {{0}};
    int rc = -1;
    for (int k = kind < 0 ? HONE_SFT : kind; rc < 0 && (k == kind || (kind < 0 && (k == HONE_SFT || k == HONE_DPO))); k = k == HONE_SFT ? HONE_DPO : -2) {
        hone_error e = {{0}};
        rc = config_load(&cfg, argv[1], k, &e);
        for (int i = 2; rc == 0 && i < argc; i++) {
            if (!strcmp(argv[i], "--sft") || !strcmp(argv[i], "--dpo")) continue;
            const char *kv = !strcmp(argv[i], "--set") && i + 1 < argc ? argv[++i] : !strncmp(argv[i], "--set=", 6) ? argv[i] + 6 : NULL;
            if (!kv) { fprintf(stderr, "hone estimate: unknown option '%s'\n", argv[i]); config_free(&cfg); return 2; }
            if (config_set_arg(&cfg, kv, &e) < 0) { config_free(&cfg); rc = -1; }
        }
        if (rc == 0 && config_validate(&cfg, &e) < 0) { config_free(&cfg); rc = -1; }
        if (rc < 0 && (k == HONE_SFT || !err.msg[0])) err = e; /* report the first command's error */
        if (kind >= 0) break;
    }
    if (rc < 0) { fprintf(stderr, "hone estimate: %s\n", err.msg); return 1; }
    hone_mem_estimate e;
    if (estimate_run(&cfg, &e, &err) < 0) { fprintf(stderr, "hone estimate: %s\n", err.msg); config_free(&cfg); return 1; }
    char how[64];
    double avail = estimate_available(how, sizeof how);
    estimate_print(stdout, &cfg, &e, avail, how);
    if (avail > 0 && e.total > avail) {
        hone_error ce;
        if (estimate_check(&cfg, &ce) < 0) printf("%s\n", ce.msg);
    }
    config_free(&cfg);
    return 0;
}
