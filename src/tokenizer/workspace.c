/* tokenizer/workspace.c — an encode's scratch: created empty, grown on demand, freed whole. */
#include "tokenizer/workspace.h"
#include <string.h>

int tok_ws_init(tok_ws *w) {
    memset(w, 0, sizeof *w);
    w->md = pcre2_match_data_create(32, NULL);
    return w->md ? 0 : -1;
}

void tok_ws_free(tok_ws *w) {
    tok_pieces_free(&w->pa);
    tok_pieces_free(&w->pb);
    tok_buf_free(&w->norm);
    tok_buf_free(&w->norm2);
    if (w->md) pcre2_match_data_free(w->md);
    if (w->mctx) pcre2_match_context_free(w->mctx);
    if (w->jit) pcre2_jit_stack_free(w->jit);
    free(w->syms); free(w->heap); free(w->ev); free(w->out);
    free(w->cache); tok_buf_free(&w->ckeys); free(w->cids);
    memset(w, 0, sizeof *w);
}

int tok_ws_emit(tok_ws *w, int32_t id) {
    if (w->nout == w->cout) {
        size_t c = w->cout ? w->cout * 2 : 256;
        int32_t *p = realloc(w->out, c * sizeof *p);
        if (!p) return -1;
        w->out = p;
        w->cout = c;
    }
    w->out[w->nout++] = id;
    return 0;
}
