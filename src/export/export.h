/* export/export.h — hone models and LoRA adapters as GGUF files llama.cpp loads, and GGUF
 * files back into Hugging Face directories (docs/gguf.md).
 *
 * Export: llama.cpp's tensor names (token_embd, blk.N.attn_q, ..., output_norm, output),
 * ggml's (cols, rows) shapes, the q/k rows of Llama permuted from Hugging Face's rotate_half
 * order back to interleaved pairs (llama.cpp runs Llama's RoPE on adjacent pairs; Qwen2 and
 * Gemma use the NeoX order and keep theirs), Gemma's norms stored as 1 + w, Llama-3 rope
 * scaling as the rope_freqs tensor. The tensor types follow what llama.cpp itself writes:
 * f32/f16/bf16 as convert_hf_to_gguf.py (1-D tensors in f32), q8_0/q4_0/q4_k_m as
 * llama-quantize applied to that file (see export_tensor_type). */
#ifndef HONE_EXPORT_H
#define HONE_EXPORT_H
#include "base/error.h"
#include "model/model.h"

/* llama.cpp's file types (general.file_type) hone writes */
enum { FTYPE_F32 = 0, FTYPE_F16 = 1, FTYPE_Q4_0 = 2, FTYPE_Q8_0 = 7, FTYPE_Q4_K_M = 15, FTYPE_BF16 = 32 };

/* "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m" -> FTYPE_*, or -1 */
int export_ftype(const char *name);
/* llama.cpp's architecture name of model config c ("llama", "gemma", "qwen2"), or NULL with an
 * error naming the model type when llama.cpp has no matching architecture hone can fill. */
const char *export_arch(const hone_model_config *c, hone_error *err);
/* The ggml type llama.cpp gives tensor `name` (GGUF name) of ne0 columns under ftype; layer:
 * how many tensors of its kind (attn_v / ffn_down) came before it in llama-quantize's walk (layer,
 * then name), of n_layer; n_dims 1 tensors stay f32. tied: the model has no output.weight. */
int export_tensor_type(int ftype, const char *name, int n_dims, int64_t ne0, int layer, int n_layer, int tied);

/* hone export gguf: model_or_adapter_dir (an adapter directory is merged into its base first)
 * to out (written atomically; nothing is written when the architecture, type or tokenizer
 * cannot be represented). */
int export_gguf(const char *dir, const char *out, const char *type, hone_error *err);
/* hone export gguf-lora: a PEFT adapter directory as a llama.cpp LoRA adapter GGUF (f32). */
int export_gguf_lora(const char *adapter_dir, const char *out, hone_error *err);
/* hone import gguf: a llama / gemma / qwen2 GGUF (f32, f16, bf16, q8_0; also q4_0, q5_0,
 * q4_K, q6_K, dequantised) into a Hugging Face directory out_dir (config.json, fp32
 * model.safetensors, tokenizer.json, tokenizer_config.json), written atomically. */
int import_gguf(const char *path, const char *out_dir, hone_error *err);
/* The same into memory: m initialised from the file (import and tests). */
int import_gguf_model(hone_model *m, const char *path, hone_error *err);
#endif
