/* tokenizer/json.h — the fast JSON scanner for tokenizer.json's big arrays and the JSON
 * writers used for saving and for --jsonl output (json.c). */
#ifndef HONE_TOK_JSON_H
#define HONE_TOK_JSON_H
#include "tokenizer/text.h"
#include "tokenizer/vocab.h"

const char *tok_json_skip_ws(const char *p, const char *e);
const char *tok_json_skip_value(const char *p, const char *e, int depth);
/* Parses a JSON string at p (at the opening quote), unescaped into out (reset first).
 * Returns the position after the closing quote, NULL when malformed. */
const char *tok_json_string(const char *p, const char *e, tok_buf *out);
/* Finds model.vocab and model.merges in a tokenizer.json text: spans [start, end). */
int tok_json_find_model_arrays(const char *js, size_t n, size_t span[4]);
/* Appends s as a JSON string literal the way Python's json.dumps(ensure_ascii=False) does. */
int tok_json_put_string(tok_buf *b, const char *s, size_t n);
/* Appends {"token": id, ...} in id order, one entry a line after `indent`. */
int tok_json_put_vocab(tok_buf *b, const tok_vocab *v, const char *indent);
#endif
