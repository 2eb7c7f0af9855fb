/* fuzz_spm.c — libFuzzer target for SentencePiece `.model` files (protobuf): converted
 * in memory (spm_convert_mem); a converted model is then loaded as a tokenizer and
 * encodes and decodes a short text. */
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    tok_buf json = {0}, config = {0};
    hone_error err;
    if (spm_convert_mem(path, &json, &config, &err) == 0) {
        hone_tokenizer *t;
        if (tokenizer_load_json(&t, json.p, json.n, config.p, config.n, "fuzz.model", &err) == 0) {
            int32_t *ids;
            size_t n;
            if (tokenizer_encode(t, "Hello, world! 12 \xC3\xA9", 19, 1, &ids, &n, &err) == 0) {
                char *s;
                if (tokenizer_decode(t, ids, n, 0, &s, NULL, &err) == 0) free(s);
                free(ids);
            }
            tokenizer_free(t);
        }
    }
    tok_buf_free(&json);
    tok_buf_free(&config);
    close(fd);
    return 0;
}
