/* base/util.h — small shared helpers: checked allocation, whole-file reads,
 * atomic file and directory writes, directory creation. */
#ifndef HONE_UTIL_H
#define HONE_UTIL_H
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>

/* 64-byte aligned, zeroed allocation; NULL (and err set) on failure. Free with free(). */
void *hone_alloc(size_t bytes, hone_error *err);
/* The same without zeroing or first touch: contents undefined, and a page takes memory only
 * once written (a buffer filled piece by piece). free() releases it. */
void *hone_alloc_uninit(size_t bytes, hone_error *err);
/* Returns the whole pages inside [p, p + bytes) to the OS (madvise MADV_DONTNEED; the pages
 * at the edges, shared with neighbours, stay). Anonymous memory reads back as zeros, a
 * private file mapping as the file. */
void hone_release_pages(const void *p, size_t bytes);
/* Reads a whole file (NUL-terminated); *len may be NULL. Caller frees. */
int hone_read_file(const char *path, char **out, size_t *len, hone_error *err);
/* Writes bytes to path atomically: path.tmp, fsync, rename. */
int hone_write_file(const char *path, const void *data, size_t len, hone_error *err);
/* mkdir -p */
int hone_mkdirs(const char *path, hone_error *err);
/* Copies a file (used to carry tokenizer files along). */
int hone_copy_file(const char *src, const char *dst, hone_error *err);
/* Removes a directory tree (rm -rf); missing is fine. */
int hone_remove_tree(const char *path, hone_error *err);
/* fsyncs a directory so a rename inside it is durable. */
void hone_fsync_dir(const char *path);
int hone_file_exists(const char *path);
int hone_is_dir(const char *path);
/* Joins dir and name into out (size n). */
void hone_path_join(char *out, size_t n, const char *dir, const char *name);
/* Monotonic seconds. */
double hone_now(void);
#endif
