/* model/lora.h — LoRA adapters (PEFT's LoraModel) on a frozen base model.
 *
 * Per targeted linear of every layer an adapter pair A (r, in), B (out, r); the layer
 * computes y = W x + b + scale * B A dropout(x), scale = lora_alpha / r (lora_alpha /
 * sqrt(r) with rslora). modules_to_save (embed_tokens, lm_head) are trainable copies
 * of those matrices that replace them while the adapters are on (PEFT's
 * ModulesToSaveWrapper). All trainable tensors live in one fp32 allocation carved into
 * hone_param entries whose names are PEFT's safetensors keys
 * ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), so the trainer's
 * gradient and AdamW buffers cover exactly these tensors and nothing of the base.
 *
 * Files: a PEFT adapter directory (adapter_config.json + adapter_model.safetensors),
 * read and written here; lora_merge folds the adapters into the base (merge_and_unload).
 *
 * Ownership: hone_lora owns its table, data and layer view; a model points at an
 * attached hone_lora (m->lora) without owning it. */
#ifndef HONE_LORA_H
#define HONE_LORA_H
#include "model/model.h"

/* the linears an adapter can target, in a layer's order */
enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_NMOD };
enum { LORA_INIT_DEFAULT = 0, LORA_INIT_GAUSSIAN = 1, LORA_INIT_FALSE = 2 };
#define LORA_ALL_LINEAR ((1u << LORA_NMOD) - 1)

typedef struct hone_lora_config {
    int r;                 /* rank, > 0 */
    double alpha;          /* lora_alpha */
    double dropout;        /* lora_dropout in [0, 1) */
    unsigned targets;      /* bit (1 << LORA_*) per targeted module */
    int rslora;            /* use_rslora: scale = alpha / sqrt(r) */
    int init;              /* LORA_INIT_*: true (A kaiming-uniform, B 0), gaussian (A normal(0, 1/r), B 0),
                            * false (both as nn.Linear's default init) */
    int save_embed, save_lm_head; /* modules_to_save */
    char base_model[4096]; /* base_model_name_or_path ("" unknown) */
} hone_lora_config;

/* HF module name of LORA_* ("q_proj"), and back (-1 when not one) */
const char *lora_module_name(int mod);
int lora_module_from_name(const char *name);

/* Input and output size of module mod in model config c. */
void lora_module_dims(const hone_model_config *c, int mod, int *in, int *out);

typedef struct hone_lora {
    hone_lora_config cfg;
    float scale;              /* alpha / r or alpha / sqrt(r) */
    int num_layers;           /* L of the base */
    hone_param *params;       /* (n_params) owned; names are PEFT's keys */
    int n_params;
    size_t num_floats;
    float *data;              /* (num_floats) owned, 64-byte aligned */
    hone_lora_layer *w;       /* (L) view into data (model.h) */
    float *embed;             /* (V, C) modules_to_save copy of embed_tokens, or NULL */
    float *lm_head;           /* (V, C) modules_to_save copy of lm_head, or NULL */
} hone_lora;

/* Builds the table for base model m and allocates zeroed tensors. Fails on r <= 0, a
 * dropout outside [0, 1) or no target. */
int lora_init(hone_lora *lo, const hone_model *m, const hone_lora_config *cfg, hone_error *err);
void lora_free(hone_lora *lo);
/* Views over a buffer laid out like lo->data (gradients): layers (L) allocated into
 * *layers (free()), the modules_to_save copies into *embed, *lm_head (NULL when absent). */
int lora_view(const hone_lora *lo, float *base, hone_lora_layer **layers, float **embed, float **lm_head, hone_error *err);
/* The gradient view of a LoRA run over base (laid out like lo->data): every base tensor
 * NULL (frozen: no gradient), g->lora, g->lora_embed, g->lora_lm_head into base. Free with
 * lora_grad_view_free. */
int lora_grad_view(const hone_lora *lo, const hone_model *m, float *base, hone_weights *g, hone_error *err);
void lora_grad_view_free(hone_weights *g);
/* PEFT's initialisation from hone's PRNG: A per cfg.init, B zero (init true/gaussian);
 * modules_to_save copies take the base's values. */
void lora_init_weights(hone_lora *lo, const hone_model *m, uint64_t seed);
/* m->lora = lo (NULL detaches); m->w.lora follows. */
void lora_attach(hone_model *m, hone_lora *lo);

/* 1 when dir holds an adapter_config.json. */
int lora_is_adapter_dir(const char *dir);
/* Reads dir/adapter_config.json into cfg: peft_type LORA only (DoRA, IA3, ... are refused
 * naming the field), bias "none", r, lora_alpha, lora_dropout, target_modules (list,
 * "all-linear" or a name), modules_to_save, use_rslora, init_lora_weights,
 * base_model_name_or_path. */
int lora_read_config(hone_lora_config *cfg, const char *dir, hone_error *err);
/* The same from the file's text (path names it in errors; the fuzz target's entry point). */
int lora_parse_config(hone_lora_config *cfg, const char *text, size_t len, const char *path, hone_error *err);
/* The base directory an adapter names: base_model_name_or_path as given when it is a
 * directory, else relative to the adapter directory. */
int lora_base_dir(const hone_lora_config *cfg, const char *adapter_dir, char *out, size_t n, hone_error *err);
/* Reads dir/adapter_model.safetensors into an initialised lo (every tensor of lo must be
 * there, with lo's shape; an unknown tensor is an error naming the file and tensor). */
int lora_load_weights(hone_lora *lo, const char *dir, hone_error *err);
/* Reads the adapter config, builds lo on m and loads its weights. */
int lora_load(hone_lora *lo, const hone_model *m, const char *dir, hone_error *err);
/* Writes adapter_config.json + adapter_model.safetensors (fp32) atomically into dir with
 * the tokenizer files of src_dir; extra as in model_save_ex. */
int lora_save(const hone_lora *lo, const hone_model *m, const char *dir, const char *src_dir,
              int (*extra)(const char *tmp_dir, void *ctx, hone_error *err), void *ctx, hone_error *err);
/* merge_and_unload: W += scale * B A for every adapter, modules_to_save copies replace the
 * base's matrices (a tied lm_head copy unties the head). m is detached from lo. */
int lora_merge(hone_model *m, const hone_lora *lo, hone_error *err);
/* Where the tokenizer, chat template and generation_config of dir live: dir itself, or for an
 * adapter directory without tokenizer files (as PEFT writes them) its base's (recursively). */
void lora_files_dir(const char *dir, char *out, size_t n);
/* A model directory or a PEFT adapter directory (its base loaded, the adapter merged in
 * memory): what generate, chat, compare and eval load. */
int model_load_merged(hone_model *m, const char *dir, int check_finite, hone_error *err);
#endif
