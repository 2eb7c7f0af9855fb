/* model/ — the model itself: config.json and the parameter table (this header),
 *   safetensors and llama2.c import, the batch layout, every layer as a forward/backward
 *   pair, the backend interface and its CPU implementation, the whole-model forward,
 *   loss head and backward. May include base/ and simd/; knows nothing of tokenizers,
 *   data or training loops.
 *
 * model/model.h — a decoder-only transformer of the Llama or Gemma family.
 * The configuration comes from a Hugging Face config.json; all parameters live
 * in one fp32 allocation carved into named tensors (HF names and layouts:
 * Linear weights are (out, in)). hone_weights is a typed view over any buffer of
 * that layout, so gradients and optimizer moments reuse the same carving. */
#ifndef HONE_MODEL_H
#define HONE_MODEL_H
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>

enum { HONE_ARCH_LLAMA = 0, HONE_ARCH_GEMMA = 1 };
enum { HONE_ROPE_DEFAULT = 0, HONE_ROPE_LLAMA3 = 1, HONE_ROPE_LINEAR = 2 };

typedef struct hone_model_config {
    int arch;                  /* HONE_ARCH_* */
    char architecture[64];     /* e.g. "LlamaForCausalLM" */
    char model_type[32];       /* e.g. "llama", "qwen2", "gemma" */
    int vocab_size;            /* V */
    int hidden_size;           /* C */
    int intermediate_size;     /* F */
    int num_layers;            /* L */
    int num_heads;             /* H */
    int num_kv_heads;          /* KV (H % KV == 0) */
    int head_dim;              /* D */
    int max_position_embeddings;
    float rms_norm_eps;
    double rope_theta;
    int rope_type;             /* HONE_ROPE_* */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    int tie_word_embeddings;
    int qkv_bias, o_bias, mlp_bias;
    int act;                   /* HONE_ACT_SILU or HONE_ACT_GELU_TANH */
    float norm_offset;         /* 0 (Llama) or 1 (Gemma: x * (1 + w)) */
    int scale_embeddings;      /* Gemma multiplies embeddings by sqrt(C) */
    int bos_token_id, eos_token_id, pad_token_id; /* -1 when absent */
    char torch_dtype[16];
} hone_model_config;

/* Parses config.json text; `path` names the file in errors. Refuses sizes <= 0,
 * rms_norm_eps / rope_theta <= 0, max_position_embeddings <= 0 and special token ids
 * outside the vocabulary. */
int model_config_parse(hone_model_config *c, const char *json_text, const char *path, hone_error *err);
int model_config_load(hone_model_config *c, const char *path, hone_error *err);
/* Checks bos_token_id, eos_token_id (an integer or a list) and pad_token_id of the JSON
 * object o (config.json, generation_config.json): each absent, null, -1 or in [0, vocab_size).
 * Returns 0, or -1 with "path: field 'eos_token_id': token id N is outside the vocabulary". */
struct json_t;
int model_check_token_ids(const struct json_t *o, int vocab_size, const char *path, hone_error *err);
/* Writes config.json text (caller frees) in Hugging Face form. */
char *model_config_to_json(const hone_model_config *c);
/* Number of parameters. */
size_t model_config_num_params(const hone_model_config *c);

typedef struct hone_layer_weights {
    float *ln1;          /* (C) input_layernorm */
    float *wq, *bq;      /* (H*D, C), (H*D) or NULL */
    float *wk, *bk;      /* (KV*D, C), (KV*D) */
    float *wv, *bv;      /* (KV*D, C), (KV*D) */
    float *wo, *bo;      /* (C, H*D), (C) */
    float *ln2;          /* (C) post_attention_layernorm */
    float *wg, *bg;      /* (F, C) gate_proj */
    float *wu, *bu;      /* (F, C) up_proj */
    float *wd, *bd;      /* (C, F) down_proj */
} hone_layer_weights;

/* LoRA adapters of one layer (model/lora.h), indexed by LORA_Q .. LORA_DOWN; A == NULL
 * where the module has no adapter */
typedef struct hone_lora_pair {
    float *A;            /* (r, in) lora_A */
    float *B;            /* (out, r) lora_B */
} hone_lora_pair;
typedef struct hone_lora_layer {
    hone_lora_pair mod[7];
} hone_lora_layer;

typedef struct hone_weights {
    float *embed;               /* (V, C); NULL in a gradient view: frozen */
    hone_layer_weights *layers; /* (L) owned by the view; NULL entries in a gradient view: frozen */
    float *norm;                /* (C) */
    float *lm_head;             /* (V, C); == embed when tied */
    hone_lora_layer *lora;      /* (L) LoRA adapters (or their gradients), NULL: none; not owned */
    float *lora_embed;          /* (V, C) modules_to_save copy of embed (its gradient), or NULL */
    float *lora_lm_head;        /* (V, C) modules_to_save copy of lm_head (its gradient), or NULL */
} hone_weights;

typedef struct hone_param {
    char name[96];   /* Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int ndim;
    int64_t shape[2];
    size_t offset;   /* in floats, into the parameter buffer */
    size_t numel;
    int no_decay;    /* norms and biases: no weight decay (TRL/transformers default) */
    int qidx;        /* >= 0: a decoder linear held in m->qw[qidx] (model/qweight.h), not in data
                      * (offset then means nothing); -1: in data */
} hone_param;

typedef struct hone_backend hone_backend;
struct hone_lora;
struct hone_qtensor;

typedef struct hone_model {
    hone_model_config cfg;
    const hone_backend *be; /* where the model's tensors live and its operations run (backend.h) */
    hone_param *params; /* (n_params) owned */
    int n_params;
    size_t num_floats;  /* total parameter count */
    float *data;        /* (num_floats) owned, 64-byte aligned */
    hone_weights w;     /* view into data */
    float *rope_inv_freq; /* (D/2) owned */
    int panels;         /* 1: an inference engine permuted the matrices into 16-row panels
                         * (engine_set_weights, HONE_WEIGHTS_F32_PANELS); only engines may use
                         * the model then: model_forward and model_save refuse it */
    int hollow;         /* 1: an engine with its own bf16 copy released the memory of these fp32
                         * matrices (engine_drop_model_matrices): likewise engine-only */
    struct hone_lora *lora; /* attached LoRA adapters (lora_attach), or NULL; not owned */
    char stored_dtype[16]; /* what model_load read: "float32", "bfloat16" or "float16" (the first
                         * floating tensor's dtype); "float32" for a model built in memory.
                         * The parameters themselves are always fp32 (master weights). */
    int held;           /* HONE_Q_* (simd/quant.h) the decoder blocks' linear weights are held in;
                         * 0 (HONE_Q_F32): in data like every tensor. Otherwise (a frozen LoRA base,
                         * model/qweight.h) they live in qw and their w.layers pointers are NULL */
    int held_nested;    /* NF4/FP4 with the absmax quantised too (use_bnb_nested_quant) */
    struct hone_qtensor *qw; /* (L * 7) layer l's q,k,v,o,gate,up,down at l * 7 + LORA_* order; owned */
} hone_model;

/* Builds the parameter table and allocates zeroed parameters. */
int model_init(hone_model *m, const hone_model_config *c, hone_error *err);
/* The same with the decoder's linear weights held as `held` (HONE_Q_*; model/qweight.h), allocated
 * zeroed in m->qw; everything else in data. held 0 is model_init. */
int model_init_held(hone_model *m, const hone_model_config *c, int held, int nested, hone_error *err);
void model_free(hone_model *m);
/* Typed view over a buffer laid out like m->data (grads, moments). Free with weights_view_free. */
int model_weights_view(const hone_model *m, float *base, hone_weights *w, hone_error *err);
void weights_view_free(hone_weights *w);
/* Grows the vocabulary (embedding and untied lm_head rows) to new_vocab; new rows
 * are the mean of the existing ones. */
int model_resize_vocab(hone_model *m, int new_vocab, hone_error *err);
const hone_param *model_find_param(const hone_model *m, const char *name);
/* Random init (transformers-like: normal(0, std) for matrices, ones/zeros for norms). */
void model_init_random(hone_model *m, uint64_t seed, float std);
/* The parameter table of c without allocating the parameters (owned *params; offsets as
 * model_init lays them out). */
int model_param_table(const hone_model_config *c, hone_param **params, int *n, size_t *num_floats, hone_error *err);
/* model_init_random's weights written to dir without holding the model (init_write.c): tensor
 * by tensor in dtype ("float32" or NULL, "bfloat16", "float16"), one model.safetensors or, past
 * max_shard_bytes (0: 2 GiB), shards model-0000k-of-0000n.safetensors with
 * model.safetensors.index.json; config.json (its torch_dtype = dtype) and src_dir's tokenizer
 * files along; atomic like model_save. */
int model_init_write(const hone_model_config *c, const char *dir, const char *src_dir, uint64_t seed, float std, const char *dtype,
                     size_t max_shard_bytes, hone_error *err);

/* Loads a Hugging Face model directory (config.json + model.safetensors or a
 * sharded index). check_finite: reject NaN/Inf weights. */
int model_load(hone_model *m, const char *dir, int check_finite, hone_error *err);
/* The same with the decoder's linear weights held as `held` (model/qweight.h): each such tensor
 * is converted as it is read (one tensor's fp32 scratch at a time), so no fp32 copy of the
 * whole model is ever made. */
int model_load_held(hone_model *m, const char *dir, int check_finite, int held, int nested, hone_error *err);
/* Writes config.json + model.safetensors in fp32 into dir (created); tokenizer files
 * present in src_dir are copied along. The directory appears atomically (written as
 * dir.tmp-*, then renamed). */
int model_save(const hone_model *m, const char *dir, const char *src_dir, hone_error *err);
/* Same, with the tensors stored as dtype: "float32" (or NULL), "bfloat16", "float16", or
 * "auto" (m->stored_dtype, the dtype the model was loaded in); config.json's torch_dtype
 * names what was written. extra (or NULL) is called with the temporary directory to add
 * files (optimizer state, ...) before it is renamed into place. */
int model_save_ex(const hone_model *m, const char *dir, const char *src_dir, const char *dtype,
                  int (*extra)(const char *tmp_dir, void *ctx, hone_error *err), void *ctx, hone_error *err);
/* Writes a directory atomically: fill(tmp, fill_ctx) writes the main files into dir.tmp-PID,
 * the tokenizer files of src_dir (when not NULL) are copied, extra (or NULL) adds more, and
 * the directory is renamed into place (an existing one set aside until then). */
int model_write_dir(const char *dir, const char *src_dir, int (*fill)(const char *tmp_dir, void *ctx, hone_error *err),
                    void *fill_ctx, int (*extra)(const char *tmp_dir, void *ctx, hone_error *err), void *ctx, hone_error *err);
/* The ST_* dtype a save dtype name stands for (see model_save_ex), or -1 when unknown. */
int model_save_dtype(const hone_model *m, const char *dtype);
#endif
