/* cli/cmd_merge.c — `hone merge`: a PEFT adapter directory folded into its base model
 * (PEFT's merge_and_unload) and written as a Hugging Face model directory. */
#include "cli/commands.h"
#include "simd/kernels.h"
#include "model/lora.h"
#include "model/model.h"
#include "base/util.h"
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "Usage: hone merge ADAPTER_DIR OUTDIR [--dtype float32|bfloat16|float16|auto]\n\n"
               "Loads ADAPTER_DIR's base (adapter_config.json's base_model_name_or_path), adds every\n"
               "adapter's scale * B A to its linear weight and the modules_to_save copies in place of\n"
               "embed_tokens / lm_head (PEFT's merge_and_unload), and writes OUTDIR (config.json,\n"
               "model.safetensors, the adapter's tokenizer files) atomically. --dtype: the tensors'\n"
               "dtype (default float32; auto: the base's stored dtype).\n");
}

int cmd_merge(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { usage(stdout); return 0; }
    if (argc < 3) { usage(stderr); return 2; }
    const char *adir = argv[1], *out = argv[2], *dtype = "float32";
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
        else { fprintf(stderr, "hone merge: unknown option '%s'\n", argv[i]); return 2; }
    }
    if (!lora_is_adapter_dir(adir)) {
        fprintf(stderr, "hone merge: %s: not a PEFT adapter directory (no adapter_config.json)\n", adir);
        return 1;
    }
    kernels_init();
    hone_error err = {{0}};
    hone_model m;
    if (model_load_merged(&m, adir, 1, &err) < 0) { fprintf(stderr, "hone merge: %s\n", err.msg); return 1; }
    char files[4096];
    lora_files_dir(adir, files, sizeof files);
    int rc = model_save_ex(&m, out, files, dtype, NULL, NULL, &err);
    size_t n = m.num_floats;
    model_free(&m);
    if (rc < 0) { fprintf(stderr, "hone merge: %s\n", err.msg); return 1; }
    printf("wrote %s (%zu parameters, adapters of %s merged)\n", out, n, adir);
    return 0;
}
