/* cli/gen_cli.h — what `hone generate`, `chat`, `compare` and `eval` share: the
 * sampling options, loading a model with its tokenizer, chat template and stop
 * tokens, turning a prompt into ids, and reading string columns of JSONL files.
 * Ownership: a gen_model owns its model, tokenizer and template (gen_model_free). */
#ifndef HONE_GEN_CLI_H
#define HONE_GEN_CLI_H
#include "generate/generate.h"
#include <stdio.h>

#define GEN_MAX_STOPS 32

/* Options common to the generating commands. */
typedef struct gen_args {
    hone_gen_options o;
    const char *stops[GEN_MAX_STOPS]; /* --stop, repeatable */
    int n_stops;
    const char *chat_template;        /* --chat-template NAME or NULL (plain text prompts) */
    int batch;                        /* --batch N: sequences decoded together (0: gen_engine_init picks) */
    int max_context;                  /* --max-context N: cache positions (0: model's, at most 4096) */
    int threads;                      /* --threads N (0: HONE_THREADS or one per core) */
    int weights;                      /* --dtype: HONE_WEIGHTS_AUTO (default), _F32 or _BF16 */
} gen_args;

void gen_args_defaults(gen_args *a);
/* Consumes the option at argv[*i] (and its value) when it is one of gen_args';
 * returns 1 when consumed, 0 when not ours, -1 on a bad value (err set). */
int gen_args_parse(gen_args *a, int argc, char **argv, int *i, hone_error *err);
/* The help text of those options, with the command's defaults (after its own changes to
 * gen_args_defaults', so help and behaviour come from the same values). */
void gen_args_help(FILE *f, const gen_args *defaults);
/* Sets up the thread count (hwloc placement); warns on stderr when the count asked
 * for (threads, else HONE_THREADS) is above HONE_MAX_THREADS and was capped. */
int gen_threads_init(int threads, hone_error *err);

typedef struct gen_model {
    hone_model m;
    hone_tokenizer *tok;
    void *tmpl;             /* chat_template when one is in use, else NULL */
    const char *tmpl_stop;  /* the template's end-of-turn string, or NULL */
    int32_t stop_ids[16];   /* EOS ids (config, generation_config, tokenizer) and end-of-turn tokens */
    int n_stop_ids;
    const char *stops[GEN_MAX_STOPS + 1]; /* --stop strings + the template's end of turn (gen_options_for) */
    char dir[1024];
} gen_model;

/* Loads dir (config.json + safetensors + tokenizer.json). spec: NULL for
 * plain prompts, else a name for chat_template_load (chatml, llama2, llama3, gemma,
 * zephyr, model, auto, or inline Jinja). */
int gen_model_load(gen_model *g, const char *dir, const char *spec, hone_error *err);
void gen_model_free(gen_model *g);

/* An engine for n prompts, weights in the format of --dtype (float32: the model's
 * matrices permuted into panels in place, so g serves only this engine afterwards) of at most max_prompt tokens: min(batch, n) slots (batch 0:
 * up to 32 within a 512 MB cache), a cache of
 * max_prompt + max_new_tokens positions (or --max-context), clamped to the model's. */
int gen_engine_init(hone_engine *e, const gen_model *g, const gen_args *a, int n, int max_prompt, hone_error *err);

/* A conversation turn for gen_encode_chat. */
typedef struct gen_msg { const char *role, *content; } gen_msg;

/* Prompt ids: with a template, the rendered conversation plus the generation prompt
 * (tokenized without adding special tokens: the template writes BOS itself);
 * without, the text of the last message encoded with the tokenizer's BOS rule.
 * *ids malloc'd. */
int gen_encode_chat(const gen_model *g, const gen_msg *msgs, int n, int32_t **ids, int *n_ids, hone_error *err);
/* The same for one user prompt. */
int gen_encode_prompt(const gen_model *g, const char *prompt, int32_t **ids, int *n_ids, hone_error *err);

/* Fills o from args, with the model's stop ids and the stop strings (pointers into g and a). */
void gen_options_for(hone_gen_options *o, const gen_args *a, gen_model *g);

/* Reads string columns of a JSONL/JSON file: rows[r * nkeys + k] is row r's keys[k]
 * (malloc'd copies). A row without a key, or with a non-string one, is an error
 * "path:line: ..." unless optional[k]. *rows malloc'd; free with gen_rows_free. */
int gen_read_rows(const char *path, const char *const *keys, const int *optional, int nkeys, char ***rows, int *n_rows,
                  hone_error *err);
void gen_rows_free(char **rows, int n_rows, int nkeys);

/* Writes s as a JSON string (quoted, escaped) to f. */
void gen_json_string(FILE *f, const char *s, size_t len);
#endif
