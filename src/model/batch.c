/* model/batch.c — building batches (batch.h). */
#include "model/batch.h"
#include <stdlib.h>
#include <string.h>

int batch_alloc(hone_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    size_t n = (size_t)B * T;
    b->tokens = calloc(n, 4); b->pos = calloc(n, 4); b->start = calloc(n, 4);
    b->pfx_start = calloc(n, 4); b->pfx_end = calloc(n, 4); b->labels = calloc(n, 4);
    if (!b->tokens || !b->pos || !b->start || !b->pfx_start || !b->pfx_end || !b->labels) { batch_free(b); return -1; }
    return 0;
}

void batch_free(hone_batch *b) {
    free(b->tokens); free(b->pos); free(b->start); free(b->pfx_start); free(b->pfx_end); free(b->labels);
    memset(b, 0, sizeof *b);
}

void batch_reset(hone_batch *b, int pad_id) {
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + t;
            b->tokens[i] = pad_id;
            b->pos[i] = t;
            b->start[i] = t;
            b->pfx_start[i] = b->pfx_end[i] = 0;
            b->labels[i] = HONE_IGNORE_INDEX;
        }
}

void batch_put_doc(hone_batch *b, int r, int s0, const int32_t *tokens, int n, int pos0, const int32_t *labels) {
    for (int j = 0; j < n; j++) {
        size_t i = (size_t)r * b->T + s0 + j;
        b->tokens[i] = tokens[j];
        b->pos[i] = pos0 + j;
        b->start[i] = s0;
        b->pfx_start[i] = b->pfx_end[i] = 0;
        b->labels[i] = labels ? labels[j] : (j + 1 < n ? tokens[j + 1] : HONE_IGNORE_INDEX);
    }
}
