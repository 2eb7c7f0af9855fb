/* generate/ — inference: the KV-cache engine on weight panels and transformers-compatible
 *   sampling (this header). May include base/, simd/, model/, tokenizer/, data/, chat/;
 *   not train/ (a sibling) or cli/.
 *
 * generate/generate.h — inference: a KV-cache engine and text generation.
 *
 *   engine    the model plus a KV cache of max_B sequence slots x max_T positions,
 *             allocated once. engine_forward runs any set of token rows (each row:
 *             a slot, a position, a token) through the model: prompts in batched
 *             chunks, decoding one token per slot, the weights streamed once per step
 *             for all slots. Matrices in 16-row panels (engine_set_weights: fp32 in
 *             place or a bf16 copy) serve both with the panel kernels; row-major fp32
 *             uses gemm for prompts and row dots for decoding.
 *   sampling  transformers' logits processors in transformers' order: repetition
 *             penalty, temperature, top-k, top-p, min-p; then argmax (greedy) or a
 *             draw from the softmax with a seeded hone_rng.
 *   generate  many prompts with continuous batching (a finished slot takes the next
 *             prompt), stop token ids, stop strings, streaming through a callback.
 *
 * Determinism: every row's logits depend only on its own tokens (row-independent
 * kernels), and sequence i samples from its own rng seeded with `seed`, so a prompt
 * generates the same text alone or in any batch, with any thread count.
 * Ownership: the engine borrows the model (must outlive it) and owns its cache. */
#ifndef HONE_GENERATE_H
#define HONE_GENERATE_H
#include "base/error.h"
#include "model/model.h"
#include "base/rng.h"
#include "tokenizer/tokenizer.h"
#include <stddef.h>
#include <stdint.h>

typedef struct hone_engine {
    const hone_model *m;
    int max_B, max_T;   /* cache capacity: slots x positions */
    int cap;            /* rows one engine_forward call may take */
    int nthr;           /* threads the lse scratch is sized for */
    size_t slot_stride; /* floats per (layer, slot) in the cache: max_T * KV * D */
    float *kc, *vc;     /* (L, max_B, max_T, KV*D) the KV cache */
    /* scratch, (cap, ...) rows */
    float *x, *xm, *xb; /* (cap, C) */
    float *q, *att;     /* (cap, H*D) */
    float *k, *v;       /* (cap, KV*D) */
    float *gate, *up;   /* (cap, F) */
    float *tmp;         /* (max(F, C, H*D), cap) transposed gemm output */
    float *rstd;        /* (cap) */
    float *cos, *sin;   /* (cap, D/2) */
    float *lse;         /* (nthr, max_T) attention log-sum-exp scratch */
    int32_t *zeros;     /* (max_T) empty key spans for attn_fwd */
    int32_t *rtok, *rslot, *rpos, *rout; /* (cap) row lists for callers of engine_forward */
    int32_t *ctx_tok;   /* (max_B, max_T) the token whose K/V each cache position holds */
    int32_t *ctx_len;   /* (max_B) positions of each slot filled by the last engine_forward rows */
    void *mem;          /* the one allocation the scratch is carved from */
    /* weight layout (engine_set_weights) */
    int panels;         /* the matrices are in 16-row panels (p[k*16 + j] = row j, col k): in w16
                         * (bf16), or in the model itself (fp32, m->panels); 0: row-major fp32 */
    uint16_t *w16;      /* (num_floats) bf16 copy of the parameters at the model's offsets, or NULL */
} hone_engine;

/* Weight formats of the engine's matrix products (prompt chunks and decoding alike):
 *   F32          the model's row-major fp32 matrices (prompt chunks by gemm, decoding by
 *                row dots); the model is not touched.
 *   F32_PANELS   the model's own matrices permuted in place into 16-row panels (no copy):
 *                prompt chunks and decoding both run the panel kernels, so a position's
 *                logits are bitwise the same whether its token came in a prompt chunk or
 *                was decoded; the model then serves only engines (m->panels).
 *   BF16         a bf16 copy of the matrices in panels, owned by the engine (rounded to
 *                nearest even; arithmetic stays fp32): half the bytes to stream.
 *   AUTO         BF16 exactly when rounding changes no matrix value (a model stored in
 *                bf16: the same weights, half the bytes), else F32.
 * Embeddings, norms and biases always use the model's fp32 values. */
enum { HONE_WEIGHTS_F32 = 0, HONE_WEIGHTS_BF16 = 1, HONE_WEIGHTS_AUTO = 2, HONE_WEIGHTS_F32_PANELS = 3 };
/* OR-ed into BF16 / AUTO: release each fp32 matrix as its bf16 copy is made (as
 * engine_drop_model_matrices, but the fp32 and bf16 matrices never coexist). */
#define HONE_WEIGHTS_RELEASE 16

/* max_T is clamped to the model's max_position_embeddings; cap <= 0 picks 256. */
int engine_init(hone_engine *e, const hone_model *m, int max_B, int max_T, int cap, hone_error *err);
void engine_free(hone_engine *e);
/* Chooses the weight format (HONE_WEIGHTS_*), once, right after engine_init. BF16
 * allocates the engine's copy (e->w16 != NULL afterwards); F32_PANELS rewrites the
 * model (and fails for F32 once a model is in panels). */
int engine_set_weights(hone_engine *e, int mode, hone_error *err);
/* With a bf16 copy in use: returns the physical memory of the model's fp32 matrices to
 * the OS (madvise MADV_DONTNEED on the pages inside them), since the engine never reads
 * them again; the model becomes engine-only (m->hollow). No-op otherwise. Generation
 * of a bf16-stored model then holds about 2 bytes per weight instead of 6. */
void engine_drop_model_matrices(hone_engine *e);
/* "bf16 panels", "fp32 panels" or "fp32 rows": what engine_set_weights chose. */
const char *engine_weights_name(const hone_engine *e);

/* Runs n <= e->cap token rows: row r is tokens[r] at position pos[r] of slot slots[r].
 * Rows of one slot come in increasing position and every earlier position of the slot
 * must already be in the cache (from earlier calls or earlier rows of this call): K and
 * V of all rows are written to the cache before attention. Writes the logits of rows
 * out_rows[0..n_out) to logits (n_out, V). use_gemm: blocked gemm (prompt processing);
 * else matrix-vector products (decoding a few rows; no weight packing). */
void engine_forward(hone_engine *e, int n, const int32_t *tokens, const int32_t *slots, const int32_t *pos,
                    int use_gemm, int n_out, const int32_t *out_rows, float *logits);

/* Processes n prompt tokens of one slot from position p0 (chunks of e->cap rows,
 * gemm) and writes the last token's logits (V) when logits is non-NULL. */
void engine_prefill(hone_engine *e, int slot, const int32_t *tokens, int n, int p0, float *logits);

typedef struct hone_sampling {
    float temperature;        /* <= 0: greedy (argmax) */
    int top_k;                /* 0: off */
    float top_p;              /* >= 1: off */
    float min_p;              /* <= 0: off */
    float repetition_penalty; /* 1: off (transformers' RepetitionPenaltyLogitsProcessor) */
} hone_sampling;

/* Greedy, no penalties. */
void sampling_defaults(hone_sampling *s);
/* Checks ranges; the message names the option. */
int sampling_check(const hone_sampling *s, hone_error *err);

/* Scratch for the processors over a vocabulary of V. */
typedef struct hone_sampler {
    int V;
    float *vals;   /* (V) */
    int32_t *idx;  /* (V) */
} hone_sampler;
int sampler_init(hone_sampler *sp, int V, hone_error *err);
void sampler_free(hone_sampler *sp);

/* Applies the processors to logits (V) in place, filtered entries become -INFINITY:
 * repetition penalty over the ids with seen[id] != 0 (seen may be NULL), temperature,
 * top-k, top-p, min-p — the order of transformers' generate. */
void sampling_process(const hone_sampling *s, hone_sampler *sp, float *logits, const uint8_t *seen);
/* Picks the next token from processed logits: argmax when greedy (first maximum),
 * else the inverse CDF of softmax(logits) at one rng_uniform_f64 draw. */
int32_t sampling_pick(const hone_sampling *s, const float *logits, int V, hone_rng *rng);

enum { HONE_FINISH_LENGTH = 0, HONE_FINISH_STOP_TOKEN = 1, HONE_FINISH_STOP_STRING = 2 };

typedef struct hone_gen_options {
    hone_sampling s;
    int max_new_tokens;                /* default 128 */
    uint64_t seed;
    const int32_t *stop_ids;           /* (n_stop_ids) ending tokens (not part of the text) */
    int n_stop_ids;
    const char *const *stop_strings;   /* (n_stop_strings) the text is cut before the first match */
    int n_stop_strings;
    int reuse_prefix;                  /* a prompt starts after the longest prefix its slot's cache
                                        * already holds (chat: the history is not recomputed). Off by
                                        * default: cached K/V of generated tokens came from matrix-vector
                                        * products, so results may differ from a fresh run in the last bits */
} hone_gen_options;

typedef struct hone_gen_output {
    int32_t *tokens;  /* (n_tokens) generated ids, the stop token included when one ended it */
    int n_tokens;
    char *text;       /* decoded completion, valid UTF-8 (special tokens skipped, cut at a stop string;
                       * decoded after the prompt's last token so a leading space is kept) */
    size_t text_len;
    int finish;       /* HONE_FINISH_* */
    int prompt_tokens;
    int cached_tokens; /* prompt tokens found in the cache (reuse_prefix), not recomputed */
} hone_gen_output;

/* Called with each new piece of completion text as it becomes final: whole UTF-8
 * characters only, held back while they could still change (an incomplete character,
 * a trailing run of byte-fallback pieces that a further byte would join) or turn into
 * a stop string; the pieces add up to the final text. seq indexes the prompts. */
typedef void (*hone_stream_fn)(void *ctx, int seq, const char *piece, size_t len);

void gen_options_defaults(hone_gen_options *o);
/* Generates a completion for each of n prompts (token ids, BOS included as wanted),
 * up to e->max_B at a time. tok may be NULL (no text, no stop strings). out (n)
 * is filled; free each with gen_output_free. */
int generate_run(hone_engine *e, const hone_tokenizer *tok, const hone_gen_options *o, int n,
                 const int32_t *const *prompts, const int *prompt_lens, hone_stream_fn stream, void *ctx,
                 hone_gen_output *out, hone_error *err);
void gen_output_free(hone_gen_output *o);

/* The length of the longest suffix of text[0..len) that is a proper prefix of one of
 * the stop strings (text that must be held back while streaming). */
size_t gen_stop_holdback(const char *text, size_t len, const char *const *stops, int n_stops);
/* Position of the earliest stop-string match in text, or -1. */
long gen_stop_find(const char *text, size_t len, const char *const *stops, int n_stops);
#endif
