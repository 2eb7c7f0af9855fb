/* fuzz_adapter_config.c — libFuzzer target for a PEFT adapter's adapter_config.json
 * (lora_parse_config), then the adapter table it describes built on a tiny model. */
#include "model/lora.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hone_lora_config cfg;
    hone_error err;
    if (lora_parse_config(&cfg, (const char *)data, size, "adapter_config.json", &err) < 0) return 0;
    static const char *tiny = "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":32,\"hidden_size\":8,"
                              "\"intermediate_size\":12,\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1}";
    hone_model_config c;
    hone_model m;
    if (cfg.r > 64 || model_config_parse(&c, tiny, "tiny", &err) < 0 || model_init(&m, &c, &err) < 0) return 0;
    hone_lora lo;
    if (lora_init(&lo, &m, &cfg, &err) == 0) {
        lora_init_weights(&lo, &m, 1);
        lora_free(&lo);
    }
    model_free(&m);
    return 0;
}
