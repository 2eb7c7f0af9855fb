/* tokenizer/vocab.h — the vocab hash (vocab.c): token string <-> id, open addressing,
 * shared by the BPE model, the added-token index and the SentencePiece converter. */
#ifndef HONE_TOK_VOCAB_H
#define HONE_TOK_VOCAB_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Ids are below 2^24 (the largest real vocabularies have ~262k): bounds the arrays a
 * malformed file can make hone allocate. */
#define TOK_MAX_ID (1 << 24)

/* ---- vocab: string <-> id ------------------------------------------------------------- */
typedef struct {
    int32_t n;            /* id slots: max id + 1 */
    uint32_t *off, *len;  /* (n) into chars; len == UINT32_MAX: no token with that id */
    char *chars;          /* token bytes, each NUL-terminated */
    size_t nchars, capchars, capids;
    uint64_t *table;      /* open addressing: hash bits << 32 | id; (mask + 1) */
    size_t mask, count;
} tok_vocab;

int tok_vocab_init(tok_vocab *v, size_t expect);
void tok_vocab_free(tok_vocab *v);
int tok_vocab_get(const tok_vocab *v, const char *s, size_t n); /* -1 if absent */
int tok_vocab_set(tok_vocab *v, const char *s, size_t n, int32_t id); /* -1 on OOM */
static inline const char *tok_vocab_str(const tok_vocab *v, int32_t id) {
    return (id >= 0 && id < v->n && v->len[id] != UINT32_MAX) ? v->chars + v->off[id] : NULL;
}

/* The hash of the vocab table, also keying BPE's word cache. */
static inline uint64_t tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        h = (h ^ x) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t x = 0;
    memcpy(&x, s, n);
    h = (h ^ x) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 32);
}

#endif
