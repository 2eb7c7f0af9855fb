/* model/batch.h — one training or scoring batch: B rows of T token slots.
 * Every token carries its RoPE position and its attention span, so padding,
 * packed documents (positions restart, no attention across documents) and
 * shared prompts (two completions attending to one prompt) are all the same
 * mechanism: query t of a row sees keys [pfx_start, pfx_end) ∪ [start, t]. */
#ifndef HONE_BATCH_H
#define HONE_BATCH_H
#include <stdint.h>

#define HONE_IGNORE_INDEX (-100)

typedef struct hone_batch {
    int B, T;
    int32_t *tokens;    /* (B, T) token ids (pad slots hold any valid id) */
    int32_t *pos;       /* (B, T) RoPE position */
    int32_t *start;     /* (B, T) first key of the token's own span (start <= t) */
    int32_t *pfx_start; /* (B, T) extra key range start (== pfx_end: none) */
    int32_t *pfx_end;   /* (B, T) */
    int32_t *labels;    /* (B, T) target predicted at each slot (already shifted), or HONE_IGNORE_INDEX */
} hone_batch;

/* Allocates the arrays for B x T (zeroed: every slot attends only from 0; call
 * batch_reset to mark all slots as padding). Free with batch_free. */
int batch_alloc(hone_batch *b, int B, int T);
void batch_free(hone_batch *b);
/* Marks every slot as padding: token pad_id, pos t, start t, no prefix, label ignored. */
void batch_reset(hone_batch *b, int pad_id);
/* Writes one document of n tokens into row r at slot s0 (positions 0..n-1 unless
 * pos0 says otherwise; span starts at s0). labels: per-token targets or NULL
 * (then labels[t] = tokens[t+1] within the document, last one ignored). */
void batch_put_doc(hone_batch *b, int r, int s0, const int32_t *tokens, int n, int pos0, const int32_t *labels);
#endif
