/* fuzz_config.c — libFuzzer target for the YAML training configuration: the input after
 * the first byte is a config file (config_load_string, then validate and dump) or, with
 * bit 1 set, one --set argument (config_set_arg). Bit 0 picks SFT or DPO. */
#include "train/train_config.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int kind = data[0] & 1 ? HONE_DPO : HONE_SFT;
    char *text = fuzz_cstr(data + 1, size - 1);
    hone_train_config c;
    hone_error err;
    int ok = data[0] & 2 ? config_defaults(&c, kind, &err) == 0 && (config_set_arg(&c, text, &err), 1)
                         : config_load_string(&c, text, "fuzz.yaml", kind, &err) == 0;
    if (ok) {
        config_validate(&c, &err);
        FILE *f = fopen("/dev/null", "w");
        if (f) config_dump_json(&c, f, &err), fclose(f);
        config_free(&c);
    }
    free(text);
    return 0;
}
