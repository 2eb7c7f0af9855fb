/* fuzz_trainer_state.c — libFuzzer target for a checkpoint's trainer files, against a
 * tiny model (1 layer, hidden 4, vocab 8): first byte even, the rest is
 * trainer_state.json (trainer_read_state, 4 extra-state slots); odd, it is
 * optimizer.safetensors (trainer_read_optimizer: every exp_avg / exp_avg_sq tensor
 * of the model, checked for name and size). */
#include "train/train.h"
#include "simd/kernels.h"
#include "fuzz_input.h"

static const char tiny[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":4,"
    "\"intermediate_size\":4,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"max_position_embeddings\":32,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,\"tie_word_embeddings\":false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static hone_model m; /* built once; the trainer's state is overwritten by every input */
    static hone_trainer t;
    static int ready;
    hone_error err;
    if (!ready) {
        hone_model_config c;
        kernels_init();
        if (model_config_parse(&c, tiny, "tiny", &err) || model_init(&m, &c, &err) ||
            trainer_init(&t, &m, NULL, NULL, 1e-3, 0, 0, 10, 0.9, 0.999, 1e-8, 0, 1, &err)) {
            fprintf(stderr, "fuzz_trainer_state: %s\n", err.msg);
            abort();
        }
        ready = 1;
    }
    if (size < 1) return 0;
    if (!(data[0] & 1)) {
        double extra[4];
        char *text = fuzz_cstr(data + 1, size - 1); /* exact size: json_loadb must not read past it */
        trainer_read_state(&t, text, size - 1, "trainer_state.json", extra, 4, &err);
        free(text);
    } else {
        uint8_t *buf = malloc(size - 1 ? size - 1 : 1);
        if (size > 1) memcpy(buf, data + 1, size - 1);
        st_file f;
        if (st_open_buffer(&f, buf, size - 1, "optimizer.safetensors", &err) == 0) {
            trainer_read_optimizer(&t, &f, "optimizer.safetensors", &err);
            st_close(&f);
        }
        free(buf);
    }
    return 0;
}
