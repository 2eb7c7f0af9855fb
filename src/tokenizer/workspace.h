/* tokenizer/workspace.h — per-call scratch of an encode (workspace.c): pre-token pieces,
 * normalizer buffers, PCRE2 match data, the BPE symbol list and heap, the output ids and
 * a word cache. One workspace serves one thread at a time; the tokenizer pools them. */
#ifndef HONE_TOK_WORKSPACE_H
#define HONE_TOK_WORKSPACE_H
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include "tokenizer/text.h"
#include <pcre2.h>

/* ---- per-call scratch ----------------------------------------------------------------- */
typedef struct { int32_t id, prev, next, len; } tok_sym;
typedef struct { int32_t rank, pos, id; } tok_heap_item;
typedef struct { uint32_t s, e; int m; } tok_ev; /* a split event: [s, e), is a match */

typedef struct {
    tok_pieces pa, pb;          /* pre-tokenization ping-pong */
    tok_buf norm, norm2;        /* normalizer output */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    tok_sym *syms; size_t csyms;
    tok_heap_item *heap; size_t cheap;
    tok_ev *ev; size_t cev;
    int32_t *out; size_t nout, cout;
    /* word cache: BPE results of recent words (same ids as recomputing them) */
    struct tok_cache_slot { uint64_t h; uint32_t koff, klen, ioff, nids; } *cache; /* (TOK_CACHE_SLOTS) */
    tok_buf ckeys; int32_t *cids; size_t ncids, ccids, cused;
} tok_ws;
#define TOK_CACHE_SLOTS 8192

int tok_ws_init(tok_ws *w);
void tok_ws_free(tok_ws *w);
int tok_ws_emit(tok_ws *w, int32_t id);

#endif
