/* tokenizer/ — text <-> ids: tokenizer.json pipelines (normalizers, pre-tokenizers,
 *   BPE, decoders, post-processors), added tokens, saving, SentencePiece conversion.
 *   This header is the public API; internal.h and the headers under it are the folder's
 *   own. May include base/ only.
 *
 * tokenizer/tokenizer.h — Hugging Face `tokenizer.json` tokenizers (BPE models), token-for-token
 * equal to the reference `tokenizers` library. See docs/tokenizer.md for the supported
 * components and the rule for bytes that are not valid UTF-8.
 *
 * Ownership: tokenizer_load returns a tokenizer the caller frees with tokenizer_free.
 * A loaded tokenizer is read-only for encode/decode/lookups, so any number of threads
 * may use it at once; tokenizer_add_special_tokens mutates it (no concurrent use then).
 * Arrays and strings returned through `**out` parameters are malloc'd; the caller frees
 * them. Strings returned directly (id_to_token, chat_template) belong to the tokenizer. */
#ifndef HONE_TOKENIZER_H
#define HONE_TOKENIZER_H
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>

typedef struct hone_tokenizer hone_tokenizer;

/* path: a tokenizer.json file or a directory holding tokenizer.json
 * (+ tokenizer_config.json if present). A SentencePiece BPE `.model` file, or a directory
 * with tokenizer.model and no tokenizer.json, is converted in memory as spm_convert does. */
int tokenizer_load(hone_tokenizer **out, const char *path, hone_error *err);
/* Same from a JSON text in memory (config_json may be NULL); `what` names it in errors. */
int tokenizer_load_json(hone_tokenizer **out, const char *json, size_t len, const char *config_json,
                        size_t config_len, const char *what, hone_error *err);
void tokenizer_free(hone_tokenizer *tok);

/* add_special: apply the post-processor (e.g. BOS). *ids malloc'd (n ids), caller frees. */
int tokenizer_encode(const hone_tokenizer *tok, const char *text, size_t len, int add_special,
                     int32_t **ids, size_t *n, hone_error *err);
/* Batch encode across OpenMP threads; results identical to serial encodes.
 * ids[i] (ns[i] ids) malloc'd per text; on failure every ids[i] is NULL. */
int tokenizer_encode_batch(const hone_tokenizer *tok, const char **texts, const size_t *lens,
                           size_t count, int add_special, int32_t **ids, size_t *ns, hone_error *err);
/* *out malloc'd, NUL-terminated, *len bytes (len may be NULL). */
int tokenizer_decode(const hone_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                     char **out, size_t *len, hone_error *err);

int tokenizer_token_to_id(const hone_tokenizer *tok, const char *token); /* -1 if absent */
const char *tokenizer_id_to_token(const hone_tokenizer *tok, int32_t id); /* NULL if out of range */
int tokenizer_vocab_size(const hone_tokenizer *tok); /* base vocab + added tokens (max id + 1) */
int tokenizer_is_special(const hone_tokenizer *tok, int32_t id);
/* -1 when none; from tokenizer_config.json, else the post-processor / added tokens */
int tokenizer_bos_id(const hone_tokenizer *tok);
int tokenizer_eos_id(const hone_tokenizer *tok);
int tokenizer_pad_id(const hone_tokenizer *tok);
int tokenizer_add_bos(const hone_tokenizer *tok); /* whether add_special prepends BOS */
/* tokenizer_config.json's chat_template (else chat_template.jinja beside it) or NULL */
const char *tokenizer_chat_template(const hone_tokenizer *tok);

/* Adds special tokens (normalized=false, special=true). Tokens that already are added
 * tokens are skipped; a token already in the model vocab becomes a special added token
 * with its existing id; others get new ids from vocab_size up. Returns the number of
 * tokens newly registered, or -1. */
int tokenizer_add_special_tokens(hone_tokenizer *tok, const char *const *tokens, int n, hone_error *err);
/* The tokenizer_class hone writes into tokenizer_config.json: the class transformers loads
 * tokenizer.json with as is (TokenizersBackend in transformers 5, which maps this name to it). */
#define HONE_TOKENIZER_HF_CLASS "PreTrainedTokenizerFast"
/* Writes dir/tokenizer.json and dir/tokenizer_config.json (loadable by HF `tokenizers` and hone). */
int tokenizer_save(const hone_tokenizer *tok, const char *dir, hone_error *err);

/* SentencePiece BPE .model → dir/tokenizer.json + dir/tokenizer_config.json, converted as
 * transformers' LlamaConverter converts a slow Llama tokenizer (tokenizer_class
 * HONE_TOKENIZER_HF_CLASS, so that transformers reads the tokenizer.json written). */
int spm_convert(const char *model_path, const char *out_dir, hone_error *err);

#endif
