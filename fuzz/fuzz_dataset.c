/* fuzz_dataset.c — libFuzzer target for training data files: the input after the first
 * byte is a JSONL / JSON array file (or gzip of either), read by dataset_read_source as
 * SFT or DPO rows (bit 0) in a format picked by the first byte (auto, each named
 * format), skipping or stopping at bad rows (bit 4), with a column map
 * (bit 5). */
#include "data/dataset.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *const formats[] = {"auto", "prompt_completion", "messages", "sharegpt", "alpaca", "text",
                                          "standard", "conversational", "implicit", "implicit_turn"};
    char path[64];
    int fd = fuzz_file(data + 1, size - 1, path, sizeof path);
    hone_column_map cols[2] = {{"prompt", "question"}, {"completion", "answer"}};
    hone_data_source src = {.path = path, .format = (char *)formats[(data[0] >> 1) % 10], .split = "train",
                            .columns = data[0] & 32 ? cols : NULL, .n_columns = data[0] & 32 ? 2 : 0,
                            .number_of_samples = -1, .ratio = -1};
    hone_dataset ds = {.kind = data[0] & 1 ? HONE_DPO : HONE_SFT};
    hone_source_report rep;
    hone_error err;
    void *ex = NULL;
    long n = 0;
    if (dataset_read_source(&ds, &src, 0, data[0] & 16, &ex, &n, &rep, &err) == 0) free(ex);
    dataset_free(&ds);
    close(fd);
    return 0;
}
