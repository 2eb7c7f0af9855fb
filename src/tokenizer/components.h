/* tokenizer/components.h — the pipeline components of a tokenizer.json: normalizers,
 * pre-tokenizers, decoders and post-processors parsed into tok_comp trees
 * (components.c, regex.c) and run by normalize.c, pretokenize.c and decode.c, each
 * mirroring the reference library's semantics. */
#ifndef HONE_TOK_COMPONENTS_H
#define HONE_TOK_COMPONENTS_H
#include "tokenizer/workspace.h"
#include <jansson.h>

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

int tok_comp_parse(tok_comp *c, json_t *j, int family, const char *what, hone_error *err);
void tok_comp_free(tok_comp *c);
/* tok_regex.c: compiles c->re and c->re_wide; tok_comp_regex picks the one text s needs. */
int tok_regex_compile(tok_comp *c, const char *pat, size_t n, const char *what, hone_error *err);
int tok_has_new_chars(const char *s, size_t n);
static inline const pcre2_code *tok_comp_regex(const tok_comp *c, const char *s, size_t n) {
    return c->re_wide && tok_has_new_chars(s, n) ? c->re_wide : c->re;
}

/* the stages */
int tok_normalize(const tok_comp *c, const char *s, size_t n, tok_buf *out, hone_error *err);
int tok_pretokenize(const tok_comp *c, tok_ws *w, int first, hone_error *err); /* w->pa in/out */
int tok_decode_chain(const tok_comp *c, tok_pieces *in, tok_pieces *tmp, hone_error *err);
extern const uint16_t tok_byte_to_cp[256];
int tok_cp_to_byte(int32_t cp); /* inverse of tok_byte_to_cp, -1 if none */

#endif
