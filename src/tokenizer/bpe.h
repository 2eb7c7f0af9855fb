/* tokenizer/bpe.h — the BPE model (bpe.c): vocab, merge table and the merge loop. */
#ifndef HONE_TOK_BPE_H
#define HONE_TOK_BPE_H
#include "tokenizer/vocab.h"
#include "tokenizer/workspace.h"

/* ---- BPE model ------------------------------------------------------------------------ */
typedef struct { uint64_t key; int32_t rank, id; } tok_merge_slot;

typedef struct {
    tok_vocab vocab;
    tok_merge_slot *mslots; size_t mmask, mcount; /* (a,b) -> (rank, merged id) */
    int32_t *merges; size_t nmerges;             /* (nmerges, 2) pairs in rank order, for saving */
    int32_t *merged;                             /* (nmerges) merged id of each pair */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;                              /* -1 when no unk_token */
    char *unk_token, *prefix, *suffix;           /* NULL when unset or empty */
    int32_t byte_id[256];                        /* <0xXX> tokens, -1 if absent */
    int32_t *cp_id;                              /* (65536) id of the 1-char token per code point */
    /* SentencePiece-style vocabularies: when no merge joins "x" + "\u2581..." (except after
     * the code points in nosplit), BPE can run word by word, split before each \u2581 that
     * follows another character, with the same result and much less work on long pieces. */
    int word_split;
    int32_t *nosplit; int nnosplit;
} tok_bpe;

/* Parses model.vocab / model.merges JSON texts (the spans the scanner found) into m. */
int tok_bpe_load_vocab(tok_bpe *m, const char *js, size_t n, const char *what, hone_error *err);
int tok_bpe_load_merges(tok_bpe *m, const char *js, size_t n, const char *what, hone_error *err);
int tok_bpe_finish(tok_bpe *m, const char *what, hone_error *err);
void tok_bpe_free(tok_bpe *m);

int tok_bpe_encode(const tok_bpe *m, tok_ws *w, const char *s, size_t n, hone_error *err);

#endif
