/* base/arena.h — a bump allocator for data that lives and dies together (a dataset's rows,
 * one template render's values). Blocks of 1 MiB or more; everything is freed at once
 * by arena_free. Not thread-safe: one owner. */
#ifndef HONE_ARENA_H
#define HONE_ARENA_H
#include <stddef.h>

typedef struct hone_arena hone_arena;

hone_arena *arena_new(void);                    /* NULL on OOM */
void *arena_alloc(hone_arena *a, size_t n);     /* 16-byte aligned, uninitialised; NULL on OOM */
void *arena_zalloc(hone_arena *a, size_t n);    /* zeroed */
char *arena_strndup(hone_arena *a, const char *s, size_t n); /* NUL-terminated copy */
void arena_free(hone_arena *a);                 /* frees the arena and all it handed out */

#endif
