/* fuzz_model_config.c — libFuzzer target for a model's config.json (model_config_parse),
 * then writing it back and counting its parameters. */
#include "model/model.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    hone_model_config c;
    hone_error err;
    if (model_config_parse(&c, text, "config.json", &err) == 0) {
        free(model_config_to_json(&c));
        volatile size_t n = model_config_num_params(&c);
        (void)n;
    }
    free(text);
    return 0;
}
