/* model/convert.h — importing checkpoints of other formats into Hugging Face form. */
#ifndef HONE_CONVERT_H
#define HONE_CONVERT_H
#include "model/model.h"

/* Reads a llama2.c checkpoint (7 int32 header fields, then fp32 tensors; a
 * negative vocab_size means an untied classifier follows) into *m, permuting the
 * q/k rows from llama2.c's interleaved RoPE pairs to Hugging Face's rotate_half
 * layout, exactly as transformers' convert_llama_weights_to_hf does. */
int convert_llama2c_load(hone_model *m, const char *path, hone_error *err);
#endif
