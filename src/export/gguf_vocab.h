/* export/gguf_vocab.h — a Hugging Face tokenizer as llama.cpp's GGUF tokenizer keys, and back.
 *
 * llama.cpp knows two families hone's tokenizers come in:
 *   "llama": SentencePiece-style BPE (tokenizer.json: BPE with byte_fallback, "▁" for spaces,
 *            Prepend/Replace normalizer or Metaspace): tokens, scores, token types; no
 *            merges — llama.cpp merges the adjacent pair whose result scores highest, so a
 *            token's score is minus the rank of the first merge that makes it (the merge
 *            order of tokenizer.json, which is the vocabulary's score order for converted
 *            SentencePiece models);
 *   "gpt2":  byte-level BPE: tokens in their byte-to-unicode spelling, merges "a b", and the
 *            pre-tokenizer by name (tokenizer.ggml.pre): "gpt-2", "llama-bpe" (Llama 3),
 *            "qwen2", "smollm" or "gpt-4o", recognised from tokenizer.json's pre_tokenizer.
 * Anything else (Unigram, WordPiece, other pre-tokenizer regexes, normalizers llama.cpp does
 * not run) is refused with an error naming the file and the field. */
#ifndef HONE_EXPORT_VOCAB_H
#define HONE_EXPORT_VOCAB_H
#include "export/gguf.h"
#include "model/model.h"

enum { VOCAB_LLAMA = 0, VOCAB_GPT2 = 1 };
/* llama.cpp's token types */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER_DEFINED = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

typedef struct gguf_vocab {
    int model;             /* VOCAB_* */
    char pre[32];          /* tokenizer.ggml.pre */
    int n;                 /* tokens, = the model's vocab_size (gaps and padding as [PAD<id>], unused) */
    char **tok;            /* (n) owned */
    float *scores;         /* (n) */
    int32_t *types;        /* (n) */
    char **merges;         /* (n_merges) "a b", gpt2 only */
    size_t n_merges;
    int bos, eos, unk, pad; /* -1 when absent */
    int add_bos, add_eos, add_space_prefix;
    int remove_extra_ws;   /* SentencePiece's remove_extra_whitespaces (runs of spaces collapsed, ends
                            * trimmed): written as tokenizer.ggml.remove_extra_whitespaces, which
                            * llama.cpp's SentencePiece-BPE tokenizer does not apply (docs/gguf.md) */
    char *chat_template;   /* or NULL */
} gguf_vocab;

/* Reads dir/tokenizer.json (+ tokenizer_config.json, chat_template.jinja) for model config c. */
int vocab_from_dir(gguf_vocab *v, const char *dir, const hone_model_config *c, hone_error *err);
/* Writes the tokenizer.* keys. */
void vocab_put(const gguf_vocab *v, gguf_writer *w);
/* The tokenizer keys of a GGUF file back into v (import). */
int vocab_from_gguf(gguf_vocab *v, const gguf_file *f, const char *path, hone_error *err);
/* tokenizer.json and tokenizer_config.json of v written into dir (import). */
int vocab_write_hf(const gguf_vocab *v, const char *dir, hone_error *err);
void vocab_free(gguf_vocab *v);
/* the pre-tokenizer regexes of llama.cpp's named byte-level pre-tokenizers (tokenizer.json's Split) */
extern const char gguf_re_llama3[], gguf_re_qwen2[], gguf_re_o200k[];
#endif
