/* base/arena.c — bump allocator (see arena.h). */
#include "base/arena.h"
#include <stdlib.h>
#include <string.h>

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct hone_arena {
    arena_block *head;
};

hone_arena *arena_new(void) { return calloc(1, sizeof(hone_arena)); }

void *arena_alloc(hone_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        arena_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head, b->used = 0, b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

void *arena_zalloc(hone_arena *a, size_t n) {
    void *p = arena_alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

char *arena_strndup(hone_arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    if (p) memcpy(p, s, n), p[n] = 0;
    return p;
}

void arena_free(hone_arena *a) {
    if (!a) return;
    for (arena_block *b = a->head, *nx; b; b = nx) nx = b->next, free(b);
    free(a);
}
