/* tokenizer/internal.h — data structures shared by the tokenizer's files (not public API).
 * tokenizer.c: load, added tokens, encode orchestration, API; tok_json.c: fast JSON
 * scanner for the big vocab/merges arrays and JSON writing; tok_bpe.c: vocab hash, merge
 * table and the BPE merge loop; tok_normalize.c, tok_pretokenize.c, tok_decode.c: the
 * pipeline components, each mirroring the reference library's semantics. */
#ifndef HONE_TOK_INTERNAL_H
#define HONE_TOK_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tokenizer.h"
#include <jansson.h>
#include <pthread.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>

/* Ids are below 2^24 (the largest real vocabularies have ~262k): bounds the arrays a
 * malformed file can make hone allocate. */
#define TOK_MAX_ID (1 << 24)

/* ---- growable buffers ---------------------------------------------------------------- */
typedef struct { char *p; size_t n, cap; } tok_buf;
typedef struct { uint32_t off, len; } tok_span;
/* A list of strings stored back to back in one buffer: pre-token pieces, decoder tokens. */
typedef struct { tok_buf b; tok_span *s; size_t n, cap; } tok_pieces;

int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_put(tok_buf *b, const void *p, size_t n);
void tok_buf_free(tok_buf *b);
void tok_pieces_clear(tok_pieces *l);
int tok_pieces_push(tok_pieces *l, const char *p, size_t n); /* copies the bytes */
void tok_pieces_free(tok_pieces *l);

/* ---- UTF-8 helpers ------------------------------------------------------------------- */
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0..] is not valid UTF-8. */
int tok_utf8_len(const unsigned char *s, size_t n);
int tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp); /* returns length, 0 invalid */
int tok_utf8_encode(int32_t cp, char *out);                       /* returns 1..4 */
size_t tok_utf8_valid_prefix(const char *s, size_t n);             /* bytes of valid UTF-8 */
int tok_is_whitespace(int32_t cp);                                 /* Unicode White_Space */
int tok_is_word(int32_t cp);                                       /* regex \w */
int tok_is_numeric(int32_t cp);                                    /* Rust char::is_numeric */
int tok_is_punctuation(int32_t cp);  /* Rust is_ascii_punctuation || is_punctuation (P*) */
int tok_is_mark(int32_t cp);         /* general category M* (combining marks) */
/* String.from_utf8_lossy: appends s to out replacing each maximal invalid subpart by U+FFFD. */
int tok_utf8_lossy(tok_buf *out, const char *s, size_t n);

/* ---- vocab: string <-> id ------------------------------------------------------------- */
typedef struct {
    int32_t n;            /* id slots: max id + 1 */
    uint32_t *off, *len;  /* (n) into chars; len == UINT32_MAX: no token with that id */
    char *chars;          /* token bytes, each NUL-terminated */
    size_t nchars, capchars, capids;
    uint64_t *table;      /* open addressing: hash bits << 32 | id; (mask + 1) */
    size_t mask, count;
} tok_vocab;

int tok_vocab_init(tok_vocab *v, size_t expect);
void tok_vocab_free(tok_vocab *v);
int tok_vocab_get(const tok_vocab *v, const char *s, size_t n); /* -1 if absent */
int tok_vocab_set(tok_vocab *v, const char *s, size_t n, int32_t id); /* -1 on OOM */
static inline const char *tok_vocab_str(const tok_vocab *v, int32_t id) {
    return (id >= 0 && id < v->n && v->len[id] != UINT32_MAX) ? v->chars + v->off[id] : NULL;
}

/* ---- BPE model ------------------------------------------------------------------------ */
typedef struct { uint64_t key; int32_t rank, id; } tok_merge_slot;

typedef struct {
    tok_vocab vocab;
    tok_merge_slot *mslots; size_t mmask, mcount; /* (a,b) -> (rank, merged id) */
    int32_t *merges; size_t nmerges;             /* (nmerges, 2) pairs in rank order, for saving */
    int32_t *merged;                             /* (nmerges) merged id of each pair */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;                              /* -1 when no unk_token */
    char *unk_token, *prefix, *suffix;           /* NULL when unset or empty */
    int32_t byte_id[256];                        /* <0xXX> tokens, -1 if absent */
    int32_t *cp_id;                              /* (65536) id of the 1-char token per code point */
    /* SentencePiece-style vocabularies: when no merge joins "x" + "\u2581..." (except after
     * the code points in nosplit), BPE can run word by word, split before each \u2581 that
     * follows another character, with the same result and much less work on long pieces. */
    int word_split;
    int32_t *nosplit; int nnosplit;
} tok_bpe;

/* Parses model.vocab / model.merges JSON texts (the spans the scanner found) into m. */
int tok_bpe_load_vocab(tok_bpe *m, const char *js, size_t n, const char *what, hone_error *err);
int tok_bpe_load_merges(tok_bpe *m, const char *js, size_t n, const char *what, hone_error *err);
int tok_bpe_finish(tok_bpe *m, const char *what, hone_error *err);
void tok_bpe_free(tok_bpe *m);

/* ---- pipeline components -------------------------------------------------------------- */
enum {
    TOKC_NONE,
    /* normalizers */
    TOKN_SEQUENCE, TOKN_PREPEND, TOKN_REPLACE, TOKN_NFC, TOKN_NFD, TOKN_NFKC, TOKN_NFKD,
    TOKN_LOWERCASE, TOKN_STRIP, TOKN_STRIP_ACCENTS,
    /* pre-tokenizers */
    TOKP_SEQUENCE, TOKP_BYTELEVEL, TOKP_SPLIT, TOKP_METASPACE, TOKP_DIGITS, TOKP_WHITESPACE_SPLIT, TOKP_WHITESPACE, TOKP_PUNCTUATION,
    /* decoders */
    TOKD_SEQUENCE, TOKD_BYTELEVEL, TOKD_METASPACE, TOKD_REPLACE, TOKD_BYTEFALLBACK, TOKD_FUSE,
    TOKD_STRIP,
    /* post-processors */
    TOKO_SEQUENCE, TOKO_TEMPLATE, TOKO_BYTELEVEL,
};
enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

typedef struct tok_comp {
    int kind;
    /* kind-specific flags:
     *   STRIP(norm): a=left b=right; BYTELEVEL(pre): a=add_prefix_space b=use_regex;
     *   SPLIT, PUNCTUATION: a=behavior b=invert; METASPACE: a=prepend_scheme b=split; DIGITS: a=individual;
     *   STRIP(dec): a=start b=stop; TEMPLATE: ids = flattened single template, -1 = sequence */
    int a, b;
    char *s1, *s2; size_t n1, n2; /* pattern / content / prepend / replacement */
    pcre2_code *re;               /* regex patterns (UTF|UCP, JIT) */
    pcre2_code *re_wide;          /* re with Unicode 15-16 letters etc. added, NULL if the same */
    struct tok_comp *sub; int nsub;
    int32_t *ids; int nids;
    json_t *src;                  /* the component's JSON (for saving) */
} tok_comp;

int tok_comp_parse(tok_comp *c, json_t *j, int family, const char *what, const struct hone_tokenizer *tok,
                   hone_error *err);
void tok_comp_free(tok_comp *c);
/* tok_regex.c: compiles c->re and c->re_wide; tok_comp_regex picks the one text s needs. */
int tok_regex_compile(tok_comp *c, const char *pat, size_t n, const char *what, hone_error *err);
int tok_has_new_chars(const char *s, size_t n);
static inline const pcre2_code *tok_comp_regex(const tok_comp *c, const char *s, size_t n) {
    return c->re_wide && tok_has_new_chars(s, n) ? c->re_wide : c->re;
}

/* ---- added tokens --------------------------------------------------------------------- */
typedef struct {
    char *content; size_t len;
    char *pattern; size_t plen; /* what the trie matches: content, normalized if `normalized` */
    int32_t id;
    uint8_t special, normalized, lstrip, rstrip, single_word;
} tok_added;

typedef struct { int32_t child, sibling, term; uint8_t byte; } tok_trie_node;
typedef struct {
    tok_trie_node *nodes; size_t n, cap;
    int32_t root[256];  /* first-level children by byte, -1 none */
} tok_trie;

/* ---- per-call scratch ----------------------------------------------------------------- */
typedef struct { int32_t id, prev, next, len; } tok_sym;
typedef struct { int32_t rank, pos, id; } tok_heap_item;
typedef struct { uint32_t s, e; int m; } tok_ev; /* a split event: [s, e), is a match */

typedef struct {
    tok_pieces pa, pb;          /* pre-tokenization ping-pong */
    tok_buf norm, norm2;        /* normalizer output */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    tok_sym *syms; size_t csyms;
    tok_heap_item *heap; size_t cheap;
    tok_ev *ev; size_t cev;
    int32_t *out; size_t nout, cout;
    /* word cache: BPE results of recent words (same ids as recomputing them) */
    struct tok_cache_slot { uint64_t h; uint32_t koff, klen, ioff, nids; } *cache; /* (TOK_CACHE_SLOTS) */
    tok_buf ckeys; int32_t *cids; size_t ncids, ccids, cused;
} tok_ws;
#define TOK_CACHE_SLOTS 8192
#define TOK_POOL_MAX 64

int tok_ws_init(tok_ws *w);
void tok_ws_free(tok_ws *w);
int tok_ws_emit(tok_ws *w, int32_t id);

/* ---- the tokenizer -------------------------------------------------------------------- */
struct hone_tokenizer {
    tok_bpe bpe;
    tok_comp normalizer, pretok, post, decoder; /* kind TOKC_NONE when null */
    tok_added *added; int nadded, capadded;
    int32_t *added_by_id; int32_t n_added_by_id; /* id -> index into added, -1 none */
    tok_vocab added_index;          /* content -> index into added */
    tok_trie trie_raw, trie_norm;   /* non-normalized / normalized added tokens */
    int32_t vocab_size;
    int32_t bos_id, eos_id, pad_id;
    int add_bos;
    int byte_level;                 /* a ByteLevel pre-tokenizer is present */
    char *chat_template;
    json_t *root;                   /* tokenizer.json without model.vocab/merges (for saving) */
    json_t *config;                 /* tokenizer_config.json or NULL */
    char path[512];
    /* scratch pool: encode borrows a tok_ws (with its word cache) and returns it, so calls
     * reuse memory and caches; the only mutable state of a loaded tokenizer, mutex-guarded */
    pthread_mutex_t pool_mu;
    tok_ws *pool[TOK_POOL_MAX]; int npool;
};
tok_ws *tok_ws_get(const hone_tokenizer *tok);
void tok_ws_put(const hone_tokenizer *tok, tok_ws *w);

/* tokenizer.c: added-token bookkeeping (also used by tok_save.c) */
int tok_add_token(hone_tokenizer *tok, const char *content, size_t len, int32_t id, int special, int normalized,
                  int lstrip, int rstrip, int single_word);
int tok_refresh_added(hone_tokenizer *tok, hone_error *err);

/* pipeline stages (tok_normalize.c / tok_pretokenize.c / tok_decode.c / tok_bpe.c) */
int tok_normalize(const tok_comp *c, const char *s, size_t n, tok_buf *out, hone_error *err);
int tok_pretokenize(const tok_comp *c, tok_ws *w, int first, hone_error *err); /* w->pa in/out */
int tok_bpe_encode(const tok_bpe *m, tok_ws *w, const char *s, size_t n, hone_error *err);
int tok_decode_chain(const tok_comp *c, tok_pieces *in, tok_pieces *tmp, hone_error *err);
extern const uint16_t tok_byte_to_cp[256];
int tok_cp_to_byte(int32_t cp); /* inverse of tok_byte_to_cp, -1 if none */

/* tok_json.c: the fast scanner */
const char *tok_json_skip_ws(const char *p, const char *e);
const char *tok_json_skip_value(const char *p, const char *e, int depth);
/* Parses a JSON string at p (at the opening quote), unescaped into out (reset first).
 * Returns the position after the closing quote, NULL when malformed. */
const char *tok_json_string(const char *p, const char *e, tok_buf *out);
/* Finds model.vocab and model.merges in a tokenizer.json text: spans [start, end). */
int tok_json_find_model_arrays(const char *js, size_t n, size_t span[4]);
/* Appends s as a JSON string literal the way Python's json.dumps(ensure_ascii=False) does. */
int tok_json_put_string(tok_buf *b, const char *s, size_t n);
/* Appends {"token": id, ...} in id order, one entry a line after `indent`. */
int tok_json_put_vocab(tok_buf *b, const tok_vocab *v, const char *indent);
/* spm_convert.c: the conversion into memory (json and config malloc'd, caller frees). */
int spm_convert_mem(const char *model_path, tok_buf *json, tok_buf *config, hone_error *err);
/* spm_convert.c: writes b to dir/name. */
int tok_write_file(const char *dir, const char *name, const tok_buf *b, hone_error *err);

/* cmd_tokenize.c: one --jsonl output line (no newline) for text s, as expected.dev.jsonl. */
int tok_jsonl_line(const hone_tokenizer *tok, const char *s, size_t n, tok_buf *out, hone_error *err);

#endif
