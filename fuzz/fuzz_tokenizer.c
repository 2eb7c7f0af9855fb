/* fuzz_tokenizer.c — libFuzzer target for the tokenizer (`make fuzz`, then
 * bin/fuzz_tokenizer [corpus_dir] -max_total_time=60). The first input byte picks what the
 * rest is: 0-1 a tokenizer.json text for the loader; otherwise bytes to encode (then decode)
 * with one of three built-in tokenizers covering byte-level, SentencePiece-style (byte
 * fallback, added tokens with lstrip/rstrip/single_word, normalized tokens) and a
 * Metaspace/Digits/NFKC/Lowercase/Strip/Split pipeline. Must never crash or leak. */
#include "tokenizer/tokenizer.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const builtin[3] = {
    /* byte-level, GPT-2 style */
    "{\"added_tokens\":[{\"id\":12,\"content\":\"<|endoftext|>\",\"special\":true,\"normalized\":false}],"
    "\"normalizer\":{\"type\":\"NFC\"},"
    "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
    "\"(?i:'s|'t)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s+(?!\\\\S)|\\\\s+\"},"
    "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":false}]},"
    "\"post_processor\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
    "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{\"a\":0,\"b\":1,\"\\u0120\":2,\"\\u0120a\":3,\"ab\":4,\"\\u010a\":5,"
    "\"c\":6,\"1\":7,\"2\":8,\"12\":9,\"abc\":10,\"\\u0120ab\":11},\"merges\":[\"\\u0120 a\",\"a b\",\"ab c\",[\"1\",\"2\"],\"\\u0120a b\"]}}",
    /* SentencePiece style */
    "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
    "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":true},"
    "{\"id\":5,\"content\":\"<X>\",\"lstrip\":true,\"rstrip\":true,\"normalized\":false},"
    "{\"id\":6,\"content\":\"word\",\"single_word\":true,\"normalized\":false}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]},\"pre_tokenizer\":null,"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
    "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
    "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"\\u2581\":2,\"a\":3,\"\\u2581a\":4,\"<X>\":5,\"word\":6,\"<0x41>\":7,\"<0xC3>\":8},"
    "\"merges\":[\"\\u2581 a\"]}}",
    /* Metaspace, Digits, NFKC, Lowercase, Strip, Split with invert, no unk */
    "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},{\"type\":\"Lowercase\"},"
    "{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true}]},"
    "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":false},"
    "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"MergedWithNext\",\"invert\":true},"
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x*\"},\"behavior\":\"Contiguous\",\"invert\":false},"
    "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\",\"split\":true}]},"
    "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\"},"
    "\"model\":{\"type\":\"BPE\",\"continuing_subword_prefix\":\"##\",\"end_of_word_suffix\":\"</w>\","
    "\"vocab\":{\"a\":0,\"##b\":1,\"ab\":2,\"b</w>\":3,\"##b</w>\":4,\"ab</w>\":5,\"\\u2581\":6},\"merges\":[\"a ##b\",\"a ##b</w>\"]}}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static hone_tokenizer *toks[3]; /* built once; read-only afterwards */
    hone_error err;
    if (!toks[0])
        for (int i = 0; i < 3; i++)
            if (tokenizer_load_json(&toks[i], builtin[i], strlen(builtin[i]), NULL, 0, "builtin", &err)) abort();
    if (size < 1) return 0;
    uint8_t mode = data[0] % 8;
    data++;
    size--;
    if (mode < 2) {
        hone_tokenizer *t;
        if (tokenizer_load_json(&t, (const char *)data, size, NULL, 0, "fuzz.json", &err) == 0) {
            int32_t *ids;
            size_t n;
            if (tokenizer_encode(t, "Hello, world! 123 \xC3\xA9", 18, 1, &ids, &n, &err) == 0) free(ids);
            tokenizer_free(t);
        }
        return 0;
    }
    const hone_tokenizer *t = toks[mode % 3];
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(t, (const char *)data, size, mode & 1, &ids, &n, &err) == 0) {
        char *s;
        size_t len;
        if (tokenizer_decode(t, ids, n, mode & 2, &s, &len, &err) == 0) free(s);
        free(ids);
    }
    /* random ids to the decoder */
    if (size >= 4) {
        int32_t rid[16];
        size_t k = size / 4 < 16 ? size / 4 : 16;
        memcpy(rid, data, k * 4);
        char *s;
        if (tokenizer_decode(t, rid, k, 0, &s, NULL, &err) == 0) free(s);
    }
    return 0;
}
