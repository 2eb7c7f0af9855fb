/* fuzz_llama2c.c — libFuzzer target for llama2.c `.bin` checkpoints
 * (convert_llama2c_load): a header of 7 int32 fields, then fp32 tensors. A header
 * that promises more than the file holds must be an error before any allocation. */
#include "model/convert.h"
#include "simd/kernels.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kernels_init();
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    hone_model m;
    hone_error err;
    if (convert_llama2c_load(&m, path, &err) == 0) model_free(&m);
    close(fd);
    return 0;
}
