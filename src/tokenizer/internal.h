/* tokenizer/internal.h — the loaded tokenizer's structure (not public API), shared by
 * tokenizer.c (load, added tokens, encode orchestration, API), save.c and corpus.c, and
 * by the tokenizer's tests and benchmark. The pieces below it, bottom-up, each with its
 * own header: text.h (buffers, UTF-8) -> vocab.h -> json.h, workspace.h -> bpe.h,
 * components.h (normalizers, pre-tokenizers, decoders) -> spm.h (SentencePiece). */
#ifndef HONE_TOK_INTERNAL_H
#define HONE_TOK_INTERNAL_H
#include "tokenizer/tokenizer.h"
#include "tokenizer/bpe.h"
#include "tokenizer/components.h"
#include "tokenizer/json.h"
#include "tokenizer/spm.h"
#include <pthread.h>

#define TOK_POOL_MAX 64

/* ---- added tokens --------------------------------------------------------------------- */
typedef struct {
    char *content; size_t len;
    char *pattern; size_t plen; /* what the trie matches: content, normalized if `normalized` */
    int32_t id;
    uint8_t special, normalized, lstrip, rstrip, single_word;
} tok_added;

typedef struct { int32_t child, sibling, term; uint8_t byte; } tok_trie_node;
typedef struct {
    tok_trie_node *nodes; size_t n, cap;
    int32_t root[256];  /* first-level children by byte, -1 none */
} tok_trie;

/* ---- the tokenizer -------------------------------------------------------------------- */
struct hone_tokenizer {
    tok_bpe bpe;
    tok_comp normalizer, pretok, post, decoder; /* kind TOKC_NONE when null */
    tok_added *added; int nadded, capadded;
    int32_t *added_by_id; int32_t n_added_by_id; /* id -> index into added, -1 none */
    tok_vocab added_index;          /* content -> index into added */
    tok_trie trie_raw, trie_norm;   /* non-normalized / normalized added tokens */
    int32_t vocab_size;
    int32_t bos_id, eos_id, pad_id;
    int add_bos;
    int byte_level;                 /* a ByteLevel pre-tokenizer is present */
    char *chat_template;
    json_t *root;                   /* tokenizer.json without model.vocab/merges (for saving) */
    json_t *config;                 /* tokenizer_config.json or NULL */
    char path[512];
    /* scratch pool: encode borrows a tok_ws (with its word cache) and returns it, so calls
     * reuse memory and caches; the only mutable state of a loaded tokenizer, mutex-guarded */
    pthread_mutex_t pool_mu;
    tok_ws *pool[TOK_POOL_MAX]; int npool;
};
tok_ws *tok_ws_get(const hone_tokenizer *tok);
void tok_ws_put(const hone_tokenizer *tok, tok_ws *w);

/* tokenizer.c: added-token bookkeeping (also used by tok_save.c) */
int tok_add_token(hone_tokenizer *tok, const char *content, size_t len, int32_t id, int special, int normalized,
                  int lstrip, int rstrip, int single_word);
int tok_refresh_added(hone_tokenizer *tok, hone_error *err);

/* tokenizer.c: added-token bookkeeping (also used by save.c) */
int tok_add_token(hone_tokenizer *tok, const char *content, size_t len, int32_t id, int special, int normalized,
                  int lstrip, int rstrip, int single_word);
int tok_refresh_added(hone_tokenizer *tok, hone_error *err);

/* corpus.c: one --jsonl output line (no newline) for text s, as expected.dev.jsonl. */
int tok_jsonl_line(const hone_tokenizer *tok, const char *s, size_t n, tok_buf *out, hone_error *err);

#endif
