/* fuzz_report.c — libFuzzer target for `hone report`'s reader of metrics.jsonl and the
 * page drawn from it: byte 0 picks the smoothing weight (0, 0.6, 0.99) and whether the
 * text is split into two runs at its middle; the rest is metrics.jsonl text
 * (report_add_metrics_text), then the whole page is rendered (report_render) to a
 * memory stream: any numbers — huge, tiny, negative, null, repeated or backwards steps —
 * must give a page or an error, never a crash or a hang. */
#include "report/report.h"
#include "fuzz_input.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const double smooth[3] = {0, 0.6, 0.99};
    double w = smooth[data[0] % 3];
    int two = (data[0] >> 2) & 1;
    char *text = fuzz_cstr(data + 1, size - 1);
    size_t n = size - 1, half = two ? n / 2 : n;
    hone_report r = {0};
    hone_error err;
    if (report_add_metrics_text(&r, "a", text, half, "a/metrics.jsonl", &err) == 0 &&
        (!two || report_add_metrics_text(&r, "b", text + half, n - half, "b/metrics.jsonl", &err) == 0)) {
        char *page = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&page, &len);
        if (f) {
            report_render(f, &r, w, "fuzz");
            fclose(f);
        }
        free(page);
    }
    report_free(&r);
    free(text);
    return 0;
}
