/* tokenizer/text.h — the tokenizer's lowest layer (text.c): growable byte buffers, lists of
 * pieces, the UTF-8 / Unicode predicates of the reference library, and writing a buffer
 * to a file. Every other tokenizer file builds on it; it includes nothing of the folder. */
#ifndef HONE_TOK_TEXT_H
#define HONE_TOK_TEXT_H
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- growable buffers ---------------------------------------------------------------- */
typedef struct { char *p; size_t n, cap; } tok_buf;
typedef struct { uint32_t off, len; } tok_span;
/* A list of strings stored back to back in one buffer: pre-token pieces, decoder tokens. */
typedef struct { tok_buf b; tok_span *s; size_t n, cap; } tok_pieces;

int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_put(tok_buf *b, const void *p, size_t n);
void tok_buf_free(tok_buf *b);
void tok_pieces_clear(tok_pieces *l);
int tok_pieces_push(tok_pieces *l, const char *p, size_t n); /* copies the bytes */
void tok_pieces_free(tok_pieces *l);

/* ---- UTF-8 helpers ------------------------------------------------------------------- */
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0..] is not valid UTF-8. */
int tok_utf8_len(const unsigned char *s, size_t n);
int tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp); /* returns length, 0 invalid */
int tok_utf8_encode(int32_t cp, char *out);                       /* returns 1..4 */
size_t tok_utf8_valid_prefix(const char *s, size_t n);             /* bytes of valid UTF-8 */
int tok_is_whitespace(int32_t cp);                                 /* Unicode White_Space */
int tok_is_word(int32_t cp);                                       /* regex \w */
int tok_is_numeric(int32_t cp);                                    /* Rust char::is_numeric */
int tok_is_punctuation(int32_t cp);  /* Rust is_ascii_punctuation || is_punctuation (P*) */
int tok_is_mark(int32_t cp);         /* general category M* (combining marks) */
/* String.from_utf8_lossy: appends s to out replacing each maximal invalid subpart by U+FFFD. */
int tok_utf8_lossy(tok_buf *out, const char *s, size_t n);

/* Writes b to dir/name atomically (base/util.h's hone_write_file). */
int tok_write_file(const char *dir, const char *name, const tok_buf *b, hone_error *err);

#endif
