/* model/qweight.h — the frozen base of a LoRA run held in fewer bytes (QLoRA, issue 14).
 *
 * Which tensors: every linear weight of the decoder blocks (q, k, v, o, gate, up, down
 * _proj), as transformers' bitsandbytes integration replaces every nn.Linear but the
 * lm_head; embed_tokens, lm_head, norms and biases stay fp32 in the model's buffer. The held
 * tensors are simd/quant.h's hone_qtensor (bf16, int8, NF4, FP4), one per (layer, module)
 * in m->qw; the model's fp32 view has NULL for them and the transformer multiplies through
 * the backend's qmatmul_* (simd/qgemm.c on the CPU), which never expands a whole weight.
 *
 * Loading streams: model_load_held converts each held tensor as its safetensors entry is
 * read (one tensor's fp32 scratch at a time); model_hold converts a model already loaded
 * in fp32 (the path when a base must first have adapters merged into it). */
#ifndef HONE_QWEIGHT_H
#define HONE_QWEIGHT_H
#include "model/model.h"
#include "model/safetensors.h"
#include "simd/quant.h"

#define QWEIGHT_NMOD 7 /* modules per layer, in model/lora.h's LORA_* order */

/* The module index (0..6, q k v o gate up down) of a held-able tensor name
 * ("model.layers.3.mlp.up_proj.weight") and its layer in *layer; -1 for any other tensor. */
int qweight_module(const char *name, int *layer);
/* For model_init_held: marks every held-able parameter (qidx = layer * 7 + module), lays the
 * others out again and returns their float count; sets m->held, m->held_nested. */
size_t qweight_plan(hone_model *m, int held, int nested);
/* Allocates m->qw for the marked parameters (zeroed); qweight_free releases them. */
int qweight_alloc(hone_model *m, hone_error *err);
void qweight_free(hone_model *m);
/* Converts safetensors tensor t of file f into the held parameter p (bf16 into bf16 is a copy;
 * anything else goes through one fp32 scratch of the tensor's size). check_finite: a
 * non-finite value is an error naming the file and tensor. */
int qweight_load_tensor(hone_model *m, const hone_param *p, const st_file *f, const st_tensor *t, int check_finite,
                        hone_error *err);
/* Converts an fp32 model in place to held `held` (needs the fp32 model plus the held copy
 * for a moment). held 0 does nothing. Refused with adapters attached. */
int model_hold(hone_model *m, int held, int nested, hone_error *err);
/* The dtype name ("float32", "bfloat16", "float16") of the first floating tensor of the model
 * directory dir (model.safetensors or the first shard of its index), read from the headers only;
 * "" when dir holds no safetensors (an adapter directory). */
void model_dir_dtype(const char *dir, char *out, size_t n);
/* Bytes of the held linears (0 for an fp32 model) and of the model's whole weights. */
size_t model_held_bytes(const hone_model *m);
size_t model_weight_bytes(const hone_model *m);
#endif
