/* fuzz_gguf.c — libFuzzer target for the GGUF reader (src/export/gguf.h) and what import
 * reads from it: arbitrary bytes must give either a parsed file or an error, never a crash,
 * an out-of-bounds read or unbounded memory. Every tensor of up to 4096 values is
 * dequantised, and the tokenizer keys are read as import reads them.
 * Build: make fuzz; run: bin/fuzz_gguf -max_total_time=60 [corpus-dir]. */
#include "simd/kernels.h"
#include "simd/ggml_quant.h"
#include "export/gguf.h"
#include "export/gguf_vocab.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1); /* exactly `size` bytes, so ASan sees any overread */
    if (size) memcpy(buf, data, size);
    kernels_init();
    gguf_file f;
    hone_error err;
    if (gguf_parse(&f, buf, size, "<fuzz>", &err) == 0) {
        float tmp[4096];
        for (uint64_t i = 0; i < f.n_tensors; i++) {
            const gguf_tensor *t = &f.t[i];
            int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            if (n <= 4096) ggml_dequant_row(t->type, t->data, tmp, n);
        }
        int64_t v;
        double d;
        char s[64];
        gguf_get_int(&f, "llama.block_count", &v, "<fuzz>", &err);
        gguf_get_float(&f, "llama.rope.freq_base", &d, "<fuzz>", &err);
        gguf_get_str(&f, "general.architecture", s, sizeof s, "<fuzz>", &err);
        gguf_vocab voc;
        if (vocab_from_gguf(&voc, &f, "<fuzz>", &err) == 0) vocab_free(&voc);
        gguf_close(&f);
    }
    free(buf);
    return 0;
}
