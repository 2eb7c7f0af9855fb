/* tokenizer/corpus.c — one line of the reference encodings' format
 * (shared/tokenizers/<name>/expected.dev.jsonl): {"ids", "ids_special", "decoded"} for a
 * text, byte for byte as the reference script writes it, so any corpus can be checked
 * against the `tokenizers` library with cmp (`hone tokenize --jsonl`, the tests). */
#include "tokenizer/internal.h"
#include <stdio.h>

static int put_ids(tok_buf *b, const int32_t *ids, size_t n) {
    char num[16];
    if (tok_buf_put(b, "[", 1)) return -1;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(num, sizeof num, i ? ",%d" : "%d", ids[i]);
        if (tok_buf_put(b, num, (size_t)k)) return -1;
    }
    return tok_buf_put(b, "]", 1);
}

int tok_jsonl_line(const hone_tokenizer *tok, const char *s, size_t n, tok_buf *out, hone_error *err) {
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, nd = 0;
    char *dec = NULL;
    int rc = -1;
    out->n = 0;
    if (tokenizer_encode(tok, s, n, 0, &a, &na, err) || tokenizer_encode(tok, s, n, 1, &b, &nb, err) ||
        tokenizer_decode(tok, a, na, 0, &dec, &nd, err))
        goto done;
    if (tok_buf_put(out, "{\"ids\":", 7) || put_ids(out, a, na) || tok_buf_put(out, ",\"ids_special\":", 15) ||
        put_ids(out, b, nb) || tok_buf_put(out, ",\"decoded\":", 11) || tok_json_put_string(out, dec, nd) ||
        tok_buf_put(out, "}", 1)) {
        hone_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    free(a); free(b); free(dec);
    return rc;
}
