/* cli/main.c — the hone command line: dispatches to one cmd_* function per command.
 * Only this file exits the process; commands return a status. */
#include "config.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"info", cmd_info, "print the CPU, chosen ISA, cores, NUMA nodes, threads, backends, libraries"},
    {"convert", cmd_convert, "import a llama2.c checkpoint (and its SentencePiece tokenizer) as a HF model directory"},
    {"init", cmd_init, "write a randomly initialised model directory from a config.json"},
    {"sft", cmd_sft, "supervised fine-tuning with a chat template (TRL SFTTrainer semantics)"},
    {"dpo", cmd_dpo, "preference alignment on chosen/rejected pairs (TRL DPOTrainer semantics)"},
    {"estimate", cmd_estimate, "peak memory of a sft/dpo configuration, broken down, before running it"},
    {"tokenize", cmd_tokenize, "encode text with a model's tokenizer (ids, pieces, --jsonl checks)"},
    {"generate", cmd_generate, "complete prompts with a model (KV cache, sampling, streaming, JSONL batches)"},
    {"chat", cmd_chat, "talk with a model interactively (chat template, history, streaming)"},
    {"compare", cmd_compare, "answer the same prompts with several models, side by side (Markdown + HTML)"},
    {"merge", cmd_merge, "fold a LoRA adapter directory into its base model (PEFT merge_and_unload) as a HF directory"},
    {"export", cmd_export, "write a model (or LoRA adapter) as a GGUF file for llama.cpp / ollama (f32 ... q4_k_m)"},
    {"import", cmd_import, "read a GGUF file (llama, gemma, qwen2) back into a HF model directory"},
    {"eval", cmd_eval, "preference accuracy and reward margin on held-out pairs; perplexity on text"},
    {"report", cmd_report, "one self-contained HTML page of runs and experiments: charts, ranked trials, manifests"},
};

static void usage(FILE *f) {
    fprintf(f, "hone %s — CPU-first SFT and DPO trainer for Llama and Gemma models\n\n"
               "Usage: hone <command> [options]   (hone <command> --help for details)\n\nCommands:\n",
            HONE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nEnvironment: HONE_ISA=scalar|avx2|avx512|neon forces a kernel path;"
               " HONE_THREADS=N sets the thread count.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("hone %s\n", HONE_VERSION); return 0; }
    /* under mpirun / srun: this process is one rank of a job (dist/dist.h) */
    hone_error err = {{0}};
    if (dist_init(&err) < 0) { fprintf(stderr, "hone: %s\n", err.msg); return 1; }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "hone: unknown command '%s' (see hone --help)\n", argv[1]);
    return 2;
}
