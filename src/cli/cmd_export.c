/* cli/cmd_export.c — `hone export gguf | gguf-lora` and `hone import gguf` (export/export.h,
 * docs/gguf.md). */
#include "cli/commands.h"
#include "export/export.h"
#include "simd/kernels.h"
#include <stdio.h>
#include <string.h>

static void export_usage(FILE *f) {
    fprintf(f, "Usage: hone export gguf MODEL_OR_ADAPTER_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0|q4_k_m]\n"
               "       hone export gguf-lora ADAPTER_DIR OUT.gguf\n\n"
               "gguf: writes the model (a PEFT adapter directory is merged into its base first) as a GGUF v3\n"
               "file llama.cpp and ollama load: llama.cpp's tensor names and layouts (Llama's q/k rows in\n"
               "interleaved RoPE order), the llama / gemma / qwen2 architecture keys, the tokenizer\n"
               "(tokenizer.json as llama.cpp's 'llama' or 'gpt2' model) and the chat template. --type (default\n"
               "f16): f32, f16 and bf16 as convert_hf_to_gguf.py writes them (norms in f32); q8_0, q4_0 and\n"
               "q4_k_m with llama-quantize's per-tensor choices and its block formats bit for bit.\n"
               "gguf-lora: a LoRA adapter (f32) that llama.cpp applies to the base model's GGUF with --lora.\n"
               "The file is written atomically; an unsupported architecture, type or tokenizer is an error\n"
               "before anything is written.\n");
}

int cmd_export(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { export_usage(stdout); return 0; }
    if (argc < 4) { export_usage(stderr); return 2; }
    const char *what = argv[1], *in = argv[2], *out = argv[3], *type = "f16";
    int lora = !strcmp(what, "gguf-lora");
    if (!lora && strcmp(what, "gguf")) {
        fprintf(stderr, "hone export: unknown format '%s' (gguf or gguf-lora)\n", what);
        return 2;
    }
    for (int i = 4; i < argc; i++) {
        if (!lora && !strcmp(argv[i], "--type") && i + 1 < argc) type = argv[++i];
        else { fprintf(stderr, "hone export: unknown option '%s'\n", argv[i]); return 2; }
    }
    kernels_init();
    hone_error err = {{0}};
    int rc = lora ? export_gguf_lora(in, out, &err) : export_gguf(in, out, type, &err);
    if (rc < 0) { fprintf(stderr, "hone export: %s\n", err.msg); return 1; }
    printf("wrote %s (%s)\n", out, lora ? "LoRA adapter, f32" : type);
    return 0;
}

static void import_usage(FILE *f) {
    fprintf(f, "Usage: hone import gguf FILE.gguf OUTDIR\n\n"
               "Reads a llama, gemma or qwen2 GGUF file (tensors in f32, f16, bf16 or q8_0; q4_0, q5_0, q4_K\n"
               "and q6_K are dequantised too) and writes OUTDIR as a Hugging Face model directory:\n"
               "config.json, model.safetensors (fp32), tokenizer.json and tokenizer_config.json (with the\n"
               "chat template), atomically.\n");
}

int cmd_import(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { import_usage(stdout); return 0; }
    if (argc != 4) { import_usage(stderr); return 2; }
    if (strcmp(argv[1], "gguf")) { fprintf(stderr, "hone import: unknown format '%s' (gguf)\n", argv[1]); return 2; }
    kernels_init();
    hone_error err = {{0}};
    if (import_gguf(argv[2], argv[3], &err) < 0) { fprintf(stderr, "hone import: %s\n", err.msg); return 1; }
    printf("wrote %s\n", argv[3]);
    return 0;
}
