/* tokenizer/spm.h — SentencePiece `.model` conversion into memory (spm_convert.c), below
 * the loader that uses it for a directory holding only tokenizer.model. */
#ifndef HONE_TOK_SPM_H
#define HONE_TOK_SPM_H
#include "tokenizer/text.h"

/* The conversion into memory (json and config malloc'd, caller frees). */
int spm_convert_mem(const char *model_path, tok_buf *json, tok_buf *config, hone_error *err);

#endif
