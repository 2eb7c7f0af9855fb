/* tokenizer/vocab.c — the vocab hash: token string <-> id. Ids index two arrays into one
 * character store; strings are found through an open-addressing table. */
#include "tokenizer/vocab.h"
#include <stdlib.h>
#include <string.h>

/* ---- vocab ---------------------------------------------------------------------------- */

/* A table slot holds (upper 32 hash bits << 32 | id), so a probe rarely touches the
 * token bytes of a non-matching entry; UINT64_MAX is empty. */
#define SLOT_EMPTY UINT64_MAX
static inline uint64_t slot_make(uint64_t h, int32_t id) { return (h & 0xFFFFFFFF00000000ull) | (uint32_t)id; }
static inline int32_t slot_id(uint64_t s) { return (int32_t)(uint32_t)s; }

int tok_vocab_init(tok_vocab *v, size_t expect) {
    memset(v, 0, sizeof *v);
    size_t cap = 64;
    while (cap < expect + expect / 2) cap *= 2; /* load factor <= 2/3 */
    v->table = malloc(cap * sizeof *v->table);
    if (!v->table) return -1;
    memset(v->table, 0xFF, cap * sizeof *v->table);
    v->mask = cap - 1;
    return 0;
}

void tok_vocab_free(tok_vocab *v) {
    free(v->off); free(v->len); free(v->chars); free(v->table);
    memset(v, 0, sizeof *v);
}

int tok_vocab_get(const tok_vocab *v, const char *s, size_t n) {
    if (!v->table) return -1;
    uint64_t h = tok_hash_bytes(s, n), hi = h & 0xFFFFFFFF00000000ull;
    size_t i = h & v->mask;
    for (;;) {
        uint64_t e = v->table[i];
        if (e == SLOT_EMPTY) return -1;
        if ((e & 0xFFFFFFFF00000000ull) == hi) {
            int32_t id = slot_id(e);
            if (v->len[id] == n && !memcmp(v->chars + v->off[id], s, n)) return id;
        }
        i = (i + 1) & v->mask;
    }
}

static int vocab_grow_table(tok_vocab *v) {
    size_t cap = (v->mask + 1) * 2;
    uint64_t *t = malloc(cap * sizeof *t);
    if (!t) return -1;
    memset(t, 0xFF, cap * sizeof *t);
    for (size_t j = 0; j <= v->mask; j++) {
        uint64_t e = v->table[j];
        if (e == SLOT_EMPTY) continue;
        int32_t id = slot_id(e);
        uint64_t h = tok_hash_bytes(v->chars + v->off[id], v->len[id]);
        size_t i = h & (cap - 1);
        while (t[i] != SLOT_EMPTY) i = (i + 1) & (cap - 1);
        t[i] = e;
    }
    free(v->table);
    v->table = t;
    v->mask = cap - 1;
    return 0;
}

int tok_vocab_set(tok_vocab *v, const char *s, size_t n, int32_t id) {
    if (id < 0 || n >= UINT32_MAX) return -1;
    if ((size_t)id >= v->capids) {
        size_t cap = v->capids ? v->capids : 1024;
        while (cap <= (size_t)id) cap *= 2;
        uint32_t *o = realloc(v->off, cap * sizeof *o);
        if (!o) return -1;
        v->off = o;
        uint32_t *l = realloc(v->len, cap * sizeof *l);
        if (!l) return -1;
        v->len = l;
        for (size_t j = v->capids; j < cap; j++) v->len[j] = UINT32_MAX;
        v->capids = cap;
    }
    if (v->nchars + n + 1 > v->capchars) {
        size_t cap = v->capchars ? v->capchars : 65536;
        while (cap < v->nchars + n + 1) cap *= 2;
        if (cap > UINT32_MAX) return -1;
        char *c = realloc(v->chars, cap);
        if (!c) return -1;
        v->chars = c;
        v->capchars = cap;
    }
    if ((v->count + 1) * 3 > (v->mask + 1) * 2 && vocab_grow_table(v)) return -1;
    /* an id that already had a string: drop the old string from the table */
    if (id < v->n && v->len[id] != UINT32_MAX) {
        size_t i = tok_hash_bytes(v->chars + v->off[id], v->len[id]) & v->mask;
        while (v->table[i] != SLOT_EMPTY && slot_id(v->table[i]) != id) i = (i + 1) & v->mask;
        if (v->table[i] != SLOT_EMPTY) {
            /* backward-shift deletion keeps probe chains intact */
            size_t j = i;
            for (;;) {
                v->table[i] = SLOT_EMPTY;
                for (;;) {
                    j = (j + 1) & v->mask;
                    uint64_t o = v->table[j];
                    if (o == SLOT_EMPTY) goto deleted;
                    int32_t oid = slot_id(o);
                    size_t k = tok_hash_bytes(v->chars + v->off[oid], v->len[oid]) & v->mask;
                    if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j)) continue;
                    break;
                }
                v->table[i] = v->table[j];
                i = j;
            }
        deleted:
            v->count--;
        }
    }
    memcpy(v->chars + v->nchars, s, n);
    v->chars[v->nchars + n] = 0;
    v->off[id] = (uint32_t)v->nchars;
    v->len[id] = (uint32_t)n;
    v->nchars += n + 1;
    if (id >= v->n) v->n = id + 1;
    uint64_t h = tok_hash_bytes(s, n);
    size_t i = h & v->mask;
    while (v->table[i] != SLOT_EMPTY) {
        int32_t o = slot_id(v->table[i]);
        if (v->len[o] == n && !memcmp(v->chars + v->off[o], s, n)) { v->table[i] = slot_make(h, id); return 0; }
        i = (i + 1) & v->mask;
    }
    v->table[i] = slot_make(h, id);
    v->count++;
    return 0;
}

