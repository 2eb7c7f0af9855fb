/* data/ — training rows: JSONL/JSON(.gz) reading, the row formats of TRL, ShareGPT and
 *   Alpaca, mixtures, ratios and the seeded eval split (this header), with options.h for
 *   what it takes from a configuration. May include base/ only: it neither tokenizes
 *   nor renders templates, and knows nothing of the training configuration.
 *
 * data/dataset.h — training rows for `hone sft` and `hone dpo`, read from JSONL, JSON
 * arrays, or either gzipped, in the row shapes of TRL, ShareGPT and Alpaca, and
 * normalised to one in-memory form:
 *   conversation  = list of (role, content) messages
 *   SFT example   = a conversation (prompt/completion and alpaca rows become
 *                   user/assistant, with n_prompt marking where the completion
 *                   starts), or a plain text (format text, no chat template)
 *   DPO example   = prompt conversation + chosen messages + rejected messages, or the
 *                   same three as raw strings (is_text: TRL's standard form, HH-RLHF).
 * A mixture of sources (number_of_samples / ratio each) is drawn deterministically
 * from the seed, then split by test_size. Malformed rows stop loading with
 * "file:line: what is wrong", or are skipped and counted with skip_invalid_rows.
 * Text is still text here: rendering is chat_template.h, tokenizing is the caller's.
 *
 * Ownership: every example, message and string lives in the hone_dataset (an arena)
 * and is freed by dataset_free; pointers stay valid until then. */
#ifndef HONE_DATASET_H
#define HONE_DATASET_H
#include "base/error.h"
#include "data/options.h"
#include <stdio.h>

/* Row formats (the `format:` names of the config). */
typedef enum {
    FMT_AUTO = 0,
    FMT_PROMPT_COMPLETION, /* SFT: prompt + completion (strings or message lists) */
    FMT_MESSAGES,          /* SFT: messages [{role, content}] (also "conversational") */
    FMT_SHAREGPT,          /* SFT: conversations [{from, value}]; DPO: + chosen/rejected {from, value} */
    FMT_ALPACA,            /* SFT: instruction, input, output (+ system) */
    FMT_TEXT,              /* SFT: text, trained on whole */
    FMT_STANDARD,          /* DPO: prompt, chosen, rejected strings (+ system) */
    FMT_CONVERSATIONAL,    /* DPO: prompt, chosen, rejected message lists */
    FMT_IMPLICIT,          /* DPO: chosen, rejected sharing a prefix, split exactly as TRL's extract_prompt */
    FMT_IMPLICIT_TURN,     /* DPO: same, but the prompt is cut back to end at the last "Assistant:" turn marker */
} hone_format;

/* Parses a format name (as in the config) for kind; -1 when unknown. */
int dataset_format_parse(const char *name, int kind);
const char *dataset_format_name(int fmt);

typedef struct hone_message {
    const char *role;     /* "system", "user", "assistant" (ShareGPT's human/gpt mapped), or as given */
    const char *content;  /* UTF-8; list-of-parts content is joined (text parts only) */
} hone_message;

typedef struct hone_conv {
    hone_message *msgs;   /* (n) */
    int n;
} hone_conv;

typedef struct hone_sft_example {
    int is_text;          /* 1: raw text, no chat template, EOS appended (TRL's non-conversational forms):
                             `text` alone (format text, every token trained), or `text` + `completion`
                             (string prompt/completion rows: the completion follows the prompt as is) */
    const char *text;     /* is_text only: the text, or the prompt when completion is set */
    const char *completion; /* is_text only: NULL, or the completion of a string prompt/completion row */
    hone_conv conv;       /* !is_text */
    int n_prompt;         /* > 0: conv.msgs[0..n_prompt) is the prompt and the rest the completion
                             (TRL's prompt-completion: completion_only_loss masks the prompt);
                             0: a whole conversation (TRL's language-modelling `messages`) */
    int source;           /* index into the config's datasets */
    long line;            /* 1-based line of the row in its file (JSON arrays: the element's first line) */
} hone_sft_example;

typedef struct hone_dpo_example {
    int is_text;          /* 1: TRL's standard form: prompt, chosen, rejected each hold one message
                             with role "text" and are concatenated as is, no chat template */
    hone_conv prompt;     /* (system, user, assistant, ..., user) or one "text" message */
    hone_conv chosen;     /* usually one assistant message */
    hone_conv rejected;
    int source;
    long line;
} hone_dpo_example;

/* What loading did to each source, for the log. */
typedef struct hone_source_report {
    const char *path;
    int format;           /* resolved (auto detected) */
    long rows_read;       /* rows (lines / array elements) seen, blank JSONL lines excluded */
    long rows_valid;      /* rows that parsed into an example */
    long rows_skipped;    /* invalid rows skipped (skip_invalid_rows) */
    long rows_identical;  /* DPO pairs with chosen == rejected: always left out, counted here */
    long rows_selected;   /* after number_of_samples / ratio (may exceed rows_valid: repeated) */
    char first_error[512];/* the first skipped row's message, "" if none */
    char first_identical[512]; /* the first identical pair's file:line, "" if none */
} hone_source_report;

typedef struct hone_dataset {
    int kind;                         /* HONE_SFT or HONE_DPO */
    long n_train, n_eval;
    hone_sft_example *sft_train;      /* (n_train) kind SFT, training order before epoch shuffling */
    hone_sft_example *sft_eval;       /* (n_eval) */
    hone_dpo_example *dpo_train;      /* (n_train) kind DPO */
    hone_dpo_example *dpo_eval;       /* (n_eval) */
    hone_source_report *sources;      /* (n_sources) one per config dataset */
    int n_sources;
    long n_skipped;                   /* total invalid rows skipped */
    long n_identical;                 /* total DPO pairs left out because chosen == rejected */
    struct hone_arena *arena;         /* owns everything above */
} hone_dataset;

/* Loads every source of o->datasets (format, columns, number_of_samples/ratio, split)
 * as rows of `kind` (HONE_SFT or HONE_DPO),
 * mixes them, and splits test_size off for evaluation. Order: each source's selected
 * rows in file order, sources in list order; when test_size > 0 the mixture is
 * shuffled with the seed (Fisher-Yates, rng.h) and the first part becomes train, the
 * rest eval (as datasets' train_test_split: n_eval = ceil(test_size * n) for a
 * fraction, or test_size rows). Sources with split: eval go to eval whole.
 * Relative paths are taken from the working directory. */
int dataset_load(hone_dataset *ds, const hone_data_options *o, int kind, long seed, hone_error *err);
void dataset_free(hone_dataset *ds);
/* Prints one line per source (path, format, read/valid/skipped/selected) and the
 * train/eval totals, for the run log. */
void dataset_report(const hone_dataset *ds, FILE *f);

/* Lower level, used by dataset_load and tests: reads one source file into `ds`'s
 * arena and returns its valid examples in file order (*out_ex: hone_sft_example* or
 * hone_dpo_example* depending on kind, arena-owned; *out_n rows). Fills rep. */
int dataset_read_source(hone_dataset *ds, const hone_data_source *src, int source_index,
                        int skip_invalid, void **out_ex, long *out_n, hone_source_report *rep, hone_error *err);

/* TRL's extract_prompt on two strings: the shared prefix, stepping back over one
 * space, in code points. Returns the prompt's byte length, or -1 when chosen and
 * rejected are empty. turn_boundary: cut back to just after the last "Assistant:"
 * inside the shared prefix when there is one (FMT_IMPLICIT_TURN). */
long dataset_implicit_prompt_len(const char *chosen, const char *rejected, int turn_boundary);

#endif
