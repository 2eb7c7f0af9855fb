/* train/train_config.h — the training configuration of `hone sft` and `hone dpo`.
 * (Named train_config.h because config.h is the header ./configure generates.)
 * One YAML file (libyaml) whose keys follow TRL's SFTConfig / DPOConfig and
 * transformers' TrainingArguments names, plus `--set key=value` overrides parsed with
 * the same type checks. Defaults equal TRL 1.16's where TRL has the key (see
 * docs/config.md for every key). Errors name file:line:column, suggest the closest
 * known key for an unknown one, and say what type was expected.
 *
 * Ownership: every string and array inside hone_train_config is owned by it and freed
 * by config_free; the struct itself is the caller's (stack or heap). Typical use:
 *     hone_train_config c;
 *     if (config_load(&c, path, HONE_SFT, &err)) ...           // defaults + file
 *     if (config_set(&c, "learning_rate", "1e-4", &err)) ...   // each --set
 *     if (config_validate(&c, &err)) ...                       // required keys, ranges
 *     ... config_free(&c); */
#ifndef HONE_TRAIN_CONFIG_H
#define HONE_TRAIN_CONFIG_H
#include "base/error.h"
#include "data/options.h"
#include <stdio.h>

typedef struct hone_train_config {
    int kind;                    /* HONE_SFT or HONE_DPO */
    char *source;                /* the YAML path it was loaded from, or NULL */
    char **ignored;              /* (n_ignored) TRL keys accepted for compatibility but without effect
                                    (report_to, run_name, fp16: false, ...): print them in the log */
    int n_ignored;
    int search_blocks;           /* the file has searcher: / hyperparameters: blocks: a search
                                    (train/search.h reads them; a trial run ignores them) */

    /* model and run */
    char *model_name_or_path;    /* required (config_validate) */
    char *output_dir;            /* "trainer_output" */
    char *resume_from_checkpoint;/* NULL, a checkpoint dir, or "last" (YAML `true`) */
    int overwrite_output_dir;    /* 0; 1: a fresh run may replace the checkpoints of an earlier one */
    long seed;                   /* 42 */
    int threads;                 /* 0 = all cores (HONE_THREADS / hwloc) */
    int zero_stage;              /* under mpirun: 0 every rank keeps all AdamW moments, 1 each its shard */
    char *grad_accum_dtype;      /* fp64 (default): a step's micro-batch gradients (every rank's) summed in
                                  * double, rounded once; fp32: summed in the float gradient */

    /* optimisation */
    double learning_rate;        /* SFT 2e-5, DPO 1e-6 (TRL) */
    char *lr_scheduler_type;     /* linear (default) or any of transformers' SchedulerType names but greedy */
    char *lr_scheduler_kwargs;   /* NULL or the JSON text of the mapping (schedule.h checks its keys) */
    char *metric_for_best_model; /* NULL = "loss": the metric reduce_lr_on_plateau and the best model watch (eval_ prefixed) */
    int load_best_model_at_end;  /* 0; final/ holds the best checkpoint's weights */
    int greater_is_better;       /* -1 = None: true unless the metric's name ends in "loss" */
    double warmup_steps;         /* 0; >= 1 steps, in (0,1) a ratio of total steps (transformers 5) */
    double warmup_ratio;         /* 0; kept for older configs, used when warmup_steps is 0 */
    double num_train_epochs;     /* 3.0 */
    long max_steps;              /* -1 = from epochs */
    int per_device_train_batch_size; /* 8 */
    int per_device_eval_batch_size;  /* 8 */
    int gradient_accumulation_steps; /* 1 */
    double max_grad_norm;        /* 1.0; 0 disables clipping */
    double weight_decay;         /* 0.0 */
    double adam_beta1, adam_beta2, adam_epsilon; /* 0.9, 0.999, 1e-8 */
    int gradient_checkpointing;  /* 1 (TRL's default) */
    char *optim;                 /* adamw_torch (default; also _fused, adamw_hf, paged_adamw_32bit) |
                                    adamw_8bit (also adamw_bnb_8bit, paged_adamw_8bit): bitsandbytes' 8-bit AdamW */
    int bf16;                    /* 0; 1: bf16 matrix products, fp32 accumulation, master weights and optimizer
                                  * (TRL's bf16=True, torch CPU autocast; backend_cpu_bf16) */

    /* data order (transformers' TrainingArguments, TRL's SFTConfig) */
    char *train_sampling_strategy; /* random (default: reshuffled each epoch) | sequential (file order) */
    long data_seed;              /* -1 = None: seed; seeds the data order and the test_size split */
    int dataloader_drop_last;    /* 0; 1: drop each epoch's (and the evaluation's) last partial batch */
    int shuffle_dataset;         /* 0 (SFT): 1 shuffles the prepared rows once, from seed (TRL) */

    /* logging, evaluation, checkpoints; a steps value < 1 is a ratio of total steps */
    char **report_to;            /* (n_report_to) ["none"] (transformers 5); none | jsonl | tensorboard | all:
                                    metrics.jsonl is written whatever it says; tensorboard (or all) adds event files */
    int n_report_to;
    char *logging_dir;           /* NULL: $TENSORBOARD_LOGGING_DIR, else output_dir/runs/<Mon DD_HH-MM-SS>_<host> (transformers) */
    double logging_steps;        /* 10 */
    int logging_first_step;      /* 0; also log after the first optimizer step */
    char *eval_strategy;         /* no (default) | steps | epoch */
    double eval_steps;           /* -1 = None: same as logging_steps */
    int eval_on_start;           /* 0 */
    char *save_strategy;         /* steps (default) | no: no checkpoints (a stop signal still saves one) */
    double save_steps;           /* 500 */
    long save_total_limit;       /* -1 = None: keep all */
    char *save_dtype;            /* final/'s tensors: float32 (default) | bfloat16 | float16 | auto (the base's stored dtype) */

    /* data */
    hone_data_options data;      /* datasets, test_size, skip_invalid_rows (data/options.h) */
    char *chat_template;         /* auto (default) | chatml | llama2 | llama3 | gemma | zephyr | model | inline Jinja */
    int add_chat_tokens;         /* 0 */
    long max_length;             /* 1024; alias max_seq_length; -1 = None */
    int packing;                 /* 0 */
    char *packing_strategy;      /* bfd (default) | wrapped | bfd_split (TRL's names) */
    int eval_packing;            /* -1 = None: as packing; 0, 1 */
    char *eos_token;             /* NULL: the tokenizer's; SFT: the token rows end with */
    char *chat_template_path;    /* NULL; SFT: a tokenizer directory or Jinja file whose template replaces chat_template */
    int padding_free;            /* 0; SFT: each micro-batch flattened into one row (no padding); DPO: no effect */
    long pad_to_multiple_of;     /* -1 = None (TRL's "auto" on CPU); SFT: batch lengths rounded up */
    int completion_only_loss;    /* -1 = None (TRL: on for prompt/completion data), 0, 1 */
    int assistant_only_loss;     /* 0 */
    char *truncation_mode;       /* keep_start (default) | keep_end */
    char *sft_loss_type;         /* SFT `loss_type`: nll (default) | dft (TRL's Dynamic Fine-Tuning); chunked_nll = nll */
    double label_smoothing_factor; /* 0; SFT: transformers' LabelSmoother epsilon */
    double neftune_noise_alpha;  /* -1 = None; SFT: NEFTune embedding noise alpha */

    /* DPO */
    double beta;                 /* 0.1 */
    char **loss_type;            /* (n_loss_type) default ["sigmoid"] */
    int n_loss_type;
    double *loss_weights;        /* (n_loss_weights) NULL = all 1.0 */
    int n_loss_weights;
    double label_smoothing;      /* 0 */
    char *f_divergence_type;     /* reverse_kl (default) | forward_kl | js_divergence | alpha_divergence */
    double f_alpha_divergence_coef; /* 0.5 */
    double ld_alpha;             /* -1 = None */
    int use_weighting;           /* 0 */
    double rpo_alpha;            /* -1 = None */
    double discopop_tau;         /* 0.05 */
    int reference_free;          /* 0 */
    int precompute_ref_log_probs;/* 0 */
    long precompute_ref_batch_size; /* -1 = None: the training (eval) batch size for the training (eval) pairs */
    char *ref_model_name_or_path;/* NULL = model_name_or_path */
    int sync_ref_model;          /* 0 */
    double ref_model_mixup_alpha;/* 0.6 */
    long ref_model_sync_steps;   /* 512 */
    long max_prompt_length;      /* -1 = None */
    long max_completion_length;  /* -1 = None */
    int shared_prompt;           /* -1 = auto (default), 0, 1: hone's one-pass prompt batching */

    /* LoRA (TRL ModelConfig names; a `peft:` block takes PEFT LoraConfig's names for the same) */
    int use_peft;                /* 0; 1: train LoRA adapters on the frozen model (model/lora.h) */
    int lora_r;                  /* 16 */
    double lora_alpha;           /* 32 */
    double lora_dropout;         /* 0.05 */
    char **lora_target_modules;  /* (n_lora_target_modules) NULL = q_proj, v_proj (PEFT's default for these models) */
    int n_lora_target_modules;
    char **lora_modules_to_save; /* (n_lora_modules_to_save) embed_tokens, lm_head; NULL = none */
    int n_lora_modules_to_save;
    int use_rslora;              /* 0 */
    char *init_lora_weights;     /* "true" (default: A kaiming-uniform, B 0) | gaussian | false */
    char *lora_bias;             /* "none" (the only one supported) */
    int use_dora;                /* 0; true is refused */
    int peft_block;              /* 1 when a `peft:` mapping was given (it implies use_peft) */

    /* the frozen base's held dtype (QLoRA; TRL ModelConfig names, model/qweight.h); use_peft only */
    int load_in_4bit;            /* 0; 1: decoder linears held as bnb_4bit_quant_type */
    int load_in_8bit;            /* 0; 1: held as int8 (LLM.int8-style absmax per row) */
    char *bnb_4bit_quant_type;   /* "nf4" | "fp4" */
    int use_bnb_nested_quant;    /* 0; 1: the 4-bit absmax quantised too (compress_statistics) */
    char *bnb_4bit_compute_dtype;/* "float32" | "bfloat16": accepted; hone computes in fp32 on the CPU either way */
    char *base_dtype;            /* hone: "auto" (bf16 when the checkpoint is bf16, else fp32) | float32 | bfloat16;
                                  * the held dtype of an unquantised LoRA base */
} hone_train_config;

/* HONE_OPTIM_ADAMW_8BIT (train/optim.h) for the bitsandbytes 8-bit names, else HONE_OPTIM_ADAMW. */
int config_optim_kind(const char *optim);
/* Fills c with the defaults of `kind` (owned strings allocated). Returns 0, -1 on OOM. */
int config_defaults(hone_train_config *c, int kind, hone_error *err);
/* config_defaults then the keys of the YAML file at path. On failure c is freed. */
int config_load(hone_train_config *c, const char *path, int kind, hone_error *err);
/* Same, from an in-memory YAML string; `name` is used in messages in place of a path. */
int config_load_string(hone_train_config *c, const char *yaml, const char *name, int kind, hone_error *err);
/* One override: value is parsed as a YAML scalar / flow sequence / flow mapping
 * ("1e-4", "true", "[sigmoid, sft]", "[{path: a.jsonl, ratio: 0.5}]") and type-checked
 * like the file. On failure c is unchanged apart from nothing; returns -1. */
int config_set(hone_train_config *c, const char *key, const char *value, hone_error *err);
/* Parses "key=value" (the --set argument form) and calls config_set. */
int config_set_arg(hone_train_config *c, const char *key_eq_value, hone_error *err);
/* Checks what can only be checked once all keys are in: model_name_or_path and at
 * least one dataset present, positive batch sizes, loss_weights length, etc. */
int config_validate(const hone_train_config *c, hone_error *err);
/* Writes every key (resolved values) as one pretty JSON object (for output_dir/hone_config.json). */
int config_dump_json(const hone_train_config *c, FILE *f, hone_error *err);
/* The same JSON as a malloc'd string (the caller frees), or NULL with err set. */
char *config_json_text(const hone_train_config *c, hone_error *err);
void config_free(hone_train_config *c);
/* Whether report_to names integration ("tensorboard", "jsonl"), directly or through "all". */
int config_reports_to(const hone_train_config *c, const char *integration);

/* Resolves a *_steps value (< 1 = ratio of total) to a step count: ceil(v * total) or (long)v. */
long config_steps(double v, long total_steps);
/* Levenshtein distance, exported for suggestions elsewhere (CLI flags, formats). */
int config_edit_distance(const char *a, const char *b);
/* The closest of names (NULL-terminated) to s within a tolerance that grows with its length
 * (a third of it, at least 2 edits), or NULL: the "did you mean" of every key error. */
const char *config_closest(const char *s, const char *const *names);

#endif
