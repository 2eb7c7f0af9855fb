/* data/jsonrows.h — streams the rows of a JSONL file, a JSON array file, or either
 * gzipped (zlib reads plain files transparently), handing each row to a callback
 * with its 1-based line number. JSONL is read line by line (constant memory); a JSON
 * array is read whole and cut into elements with their start lines. */
#ifndef HONE_JSONROWS_H
#define HONE_JSONROWS_H
#include "base/error.h"
#include <jansson.h>

/* Called once per row. row is NULL when the row is not valid JSON; then why says what
 * is wrong (jansson's message). The callback owns nothing: row is freed after it
 * returns (json_incref to keep it). Return 0 to go on, -1 to stop (err filled). */
typedef int (*jsonrows_fn)(void *ud, json_t *row, long line, const char *why, hone_error *err);

/* Reads path and calls fn for each row. A JSON array element that is not valid JSON
 * ends the read with an error (the array cannot be resynchronised); a bad JSONL line
 * is passed to fn with row NULL so the caller may skip it. */
int jsonrows_read(const char *path, jsonrows_fn fn, void *ud, hone_error *err);

#endif
