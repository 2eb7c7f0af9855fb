/* base/ — the ground floor, with no model knowledge: errors (this header is the
 *   folder's main one), files and atomic writes, arenas, the one seeded PRNG, threads,
 *   hwloc topology and NUMA placement, SHA-256. May include nothing of hone (system libraries only);
 *   every other folder builds on it.
 *
 * base/error.h — how library code reports failure.
 * Every fallible function takes a `hone_error *` (may be NULL) and returns 0 on
 * success or -1 on failure after writing a one-line message naming the file,
 * field or line and what is wrong. Only main() prints and exits. */
#ifndef HONE_ERROR_H
#define HONE_ERROR_H
#include <stddef.h>

typedef struct hone_error {
    char msg[1024];
} hone_error;

/* Formats the message into e (if non-NULL) and returns -1, so callers can
 * `return hone_fail(e, "%s: ...", path);`. */
int hone_fail(hone_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "prefix: old message". Returns -1. */
int hone_fail_prefix(hone_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
