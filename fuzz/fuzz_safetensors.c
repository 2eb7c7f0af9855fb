/* fuzz_safetensors.c — libFuzzer target for the safetensors header parser:
 * arbitrary bytes must give either a valid file or an error, never a crash or
 * an out-of-bounds read. Build: make fuzz (clang -fsanitize=fuzzer,address);
 * run: bin/fuzz_safetensors -max_total_time=60 [corpus-dir]. */
#include "simd/kernels.h"
#include "model/safetensors.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy exactly `size` bytes long, so ASan sees any overread */
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    kernels_init();
    st_file f;
    hone_error err;
    if (st_open_buffer(&f, buf, size, "<fuzz>", &err) == 0) {
        float tmp[64];
        for (int i = 0; i < f.n; i++) {
            const st_tensor *t = &f.tensors[i];
            /* touch the first and last byte of every tensor's range */
            if (t->nbytes) {
                volatile uint8_t a = f.data[t->offset], b = f.data[t->offset + t->nbytes - 1];
                (void)a; (void)b;
            }
            if (st_numel(t) <= 64 && (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16)) st_read_f32(&f, t, tmp, &err);
        }
        st_close(&f);
    }
    free(buf);
    return 0;
}
