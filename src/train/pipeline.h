/* train/pipeline.h — the glue `hone sft` and `hone dpo` share: loading the model,
 * tokenizer and chat template named by a training configuration (adding chat
 * tokens and growing the embeddings when asked), turning dataset rows into
 * tokenized examples (with the trained-token masks TRL would build), and a
 * trainer set up from the configuration's optimisation keys. */
#ifndef HONE_PIPELINE_H
#define HONE_PIPELINE_H
#include "chat/template.h"
#include "data/dataset.h"
#include "train/dpo.h"
#include "train/sft.h"
#include "tokenizer/tokenizer.h"
#include "train/train_config.h"
#include "model/lora.h"

typedef struct hone_pipeline {
    hone_model model;       /* the base (a LoRA run: frozen, with lora attached) */
    hone_lora lora;         /* a LoRA run's adapters (use_peft, or a PEFT adapter dir as model_name_or_path) */
    int have_lora;
    char model_dir[4096];   /* the model directory loaded: model_name_or_path, or an adapter's base */
    hone_tokenizer *tok;
    chat_template tpl;
    int have_tpl;
    char tok_dir[4096];     /* staging dir holding the (possibly extended) tokenizer files */
    hone_dataset ds;
    int have_ds;
    int32_t eos_id;         /* the EOS rows end with: eos_token's id, else the tokenizer's (-1: none) */
} hone_pipeline;

/* Loads model, tokenizer, template (and datasets) for cfg; adds chat tokens. A PEFT adapter
 * directory as model_name_or_path loads its base_model_name_or_path, then the adapter: trained
 * further without use_peft, merged into the base when use_peft asks for fresh adapters. use_peft
 * builds adapters from the lora_* keys (PEFT's initialisation, seeded by seed) and attaches them. */
int pipeline_init(hone_pipeline *p, const hone_train_config *cfg, hone_error *err);
void pipeline_free(hone_pipeline *p);

/* Tokenized SFT examples of the train and eval splits (owned arrays; free with
 * pipeline_free_examples). Reports truncation/drops on stderr. */
int pipeline_sft_examples(hone_pipeline *p, const hone_train_config *cfg, hone_tok_example **train, long *n_train,
                          hone_tok_example **eval, long *n_eval, hone_error *err);
void pipeline_free_examples(hone_tok_example *ex, long n);
/* Tokenized DPO pairs with TRL's truncation (max_prompt_length keeps the prompt's
 * end, max_completion_length and max_length cut completions; prompts that alone
 * reach max_length are dropped); counts are reported. */
int pipeline_dpo_pairs(hone_pipeline *p, const hone_train_config *cfg, hone_tok_pair **train, long *n_train,
                       hone_tok_pair **eval, long *n_eval, hone_error *err);
void pipeline_free_pairs(hone_tok_pair *pairs, long n);

/* The lora_* keys (or peft: block) of cfg as an adapter configuration. */
void pipeline_lora_config(const hone_train_config *cfg, hone_lora_config *lc);
/* What a LoRA base stored as `stored` ("bfloat16", ...) is held in (simd/quant.h's HONE_Q_*;
 * HONE_Q_F32: fp32): load_in_4bit / load_in_8bit, else base_dtype (auto: bf16 for a bf16 checkpoint). */
int pipeline_held_type(const hone_train_config *cfg, const char *stored);
/* The seed of the data order and the eval split: data_seed, else seed (transformers). */
uint64_t pipeline_data_seed(const hone_train_config *cfg);
/* Whether each epoch reshuffles the rows: train_sampling_strategy random (not sequential). */
int pipeline_shuffle(const hone_train_config *cfg);
/* Warmup steps from warmup_steps (count, or ratio when < 1) / warmup_ratio. */
long pipeline_warmup(const hone_train_config *cfg, long total);
/* Trainer over p->model with cfg's optimiser, schedule and output_dir. */
int pipeline_trainer(hone_pipeline *p, const hone_train_config *cfg, long total, hone_trainer *t, hone_error *err);
/* Loads the checkpoint a run resumes from (rundir_open resolved and checked it);
 * NULL or "" for a fresh run. */
int pipeline_resume(hone_trainer *t, const char *checkpoint, double *extra, int n_extra, hone_error *err);
#endif
