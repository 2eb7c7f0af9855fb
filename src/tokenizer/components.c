/* tokenizer/components.c — reads the normalizer, pre_tokenizer, post_processor and decoder
 * objects of a tokenizer.json into tok_comp trees. Anything hone does not implement is
 * an error naming the component and the file, never a silent fallback. */
#include "tokenizer/components.h"
#include <string.h>

enum { FAM_NORM, FAM_PRE, FAM_POST, FAM_DEC };
static const char *fam_name[] = {"normalizer", "pre_tokenizer", "post_processor", "decoder"};

/* GPT-2's pre-tokenizer regex, as the ByteLevel pre-tokenizer uses it. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int dupstr(char **dst, size_t *n, const char *s) {
    *n = strlen(s);
    *dst = malloc(*n + 1);
    if (!*dst) return -1;
    memcpy(*dst, s, *n + 1);
    return 0;
}

static int get_bool(json_t *o, const char *k, int dflt) {
    json_t *v = json_object_get(o, k);
    return v && json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* {"String": s} or {"Regex": r} */
static int parse_pattern(tok_comp *c, json_t *p, const char *what, hone_error *err) {
    json_t *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    if (json_is_string(s)) return dupstr(&c->s1, &c->n1, json_string_value(s)) ? hone_fail(err, "out of memory") : 0;
    if (json_is_string(r)) {
        return tok_regex_compile(c, json_string_value(r), json_string_length(r), what, err);
    }
    return hone_fail(err, "%s: pattern must be {\"String\": ...} or {\"Regex\": ...}", what);
}

static int parse_list(tok_comp *c, json_t *arr, int fam, const char *what, hone_error *err) {
    if (!json_is_array(arr)) return hone_fail(err, "%s: %s Sequence without a list", what, fam_name[fam]);
    c->nsub = (int)json_array_size(arr);
    c->sub = calloc((size_t)c->nsub + 1, sizeof *c->sub);
    if (!c->sub) return hone_fail(err, "out of memory");
    for (int i = 0; i < c->nsub; i++)
        if (tok_comp_parse(&c->sub[i], json_array_get(arr, (size_t)i), fam, what, err)) return -1;
    return 0;
}

static int parse_template(tok_comp *c, json_t *j, const char *what, hone_error *err) {
    json_t *single = json_object_get(j, "single"), *specials = json_object_get(j, "special_tokens");
    if (!json_is_array(single)) return hone_fail(err, "%s: TemplateProcessing without a \"single\" template", what);
    size_t cap = 16, n = 0;
    c->ids = malloc(cap * sizeof *c->ids);
    if (!c->ids) return hone_fail(err, "out of memory");
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *it = json_array_get(single, i), *sp = json_object_get(it, "SpecialToken");
        json_t *ids = NULL;
        if (sp) {
            const char *name = json_string_value(json_object_get(sp, "id"));
            json_t *st = name ? json_object_get(specials, name) : NULL;
            ids = json_object_get(st, "ids");
            if (!json_is_array(ids))
                return hone_fail(err, "%s: TemplateProcessing special token \"%s\" has no ids", what, name ? name : "?");
        } else if (!json_object_get(it, "Sequence")) {
            return hone_fail(err, "%s: TemplateProcessing item %zu is neither SpecialToken nor Sequence", what, i);
        }
        size_t add = ids ? json_array_size(ids) : 1;
        if (n + add > cap) {
            while (n + add > cap) cap *= 2;
            int32_t *p = realloc(c->ids, cap * sizeof *p);
            if (!p) return hone_fail(err, "out of memory");
            c->ids = p;
        }
        if (!ids) { c->ids[n++] = -1; continue; }
        for (size_t k = 0; k < add; k++) {
            json_int_t v = json_integer_value(json_array_get(ids, k));
            if (v < 0 || v > INT32_MAX) return hone_fail(err, "%s: TemplateProcessing: bad special token id", what);
            c->ids[n++] = (int32_t)v;
        }
    }
    c->nids = (int)n;
    return 0;
}

static int prepend_scheme(json_t *j) {
    const char *s = json_string_value(json_object_get(j, "prepend_scheme"));
    if (s) return !strcmp(s, "first") ? PREPEND_FIRST : !strcmp(s, "never") ? PREPEND_NEVER : PREPEND_ALWAYS;
    return get_bool(j, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
}

int tok_comp_parse(tok_comp *c, json_t *j, int fam, const char *what, hone_error *err) {
    memset(c, 0, sizeof *c);
    if (!j || json_is_null(j)) return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return hone_fail(err, "%s: %s without a \"type\"", what, fam_name[fam]);
    c->src = j;
    json_t *v;
    if (fam == FAM_NORM) {
        if (!strcmp(type, "Sequence")) { c->kind = TOKN_SEQUENCE; return parse_list(c, json_object_get(j, "normalizers"), fam, what, err); }
        if (!strcmp(type, "Prepend")) {
            c->kind = TOKN_PREPEND;
            v = json_object_get(j, "prepend");
            if (!json_is_string(v)) return hone_fail(err, "%s: Prepend normalizer without \"prepend\"", what);
            return dupstr(&c->s1, &c->n1, json_string_value(v)) ? hone_fail(err, "out of memory") : 0;
        }
        if (!strcmp(type, "Replace")) {
            c->kind = TOKN_REPLACE;
            v = json_object_get(j, "content");
            if (!json_is_string(v)) return hone_fail(err, "%s: Replace normalizer without \"content\"", what);
            if (dupstr(&c->s2, &c->n2, json_string_value(v))) return hone_fail(err, "out of memory");
            return parse_pattern(c, json_object_get(j, "pattern"), what, err);
        }
        if (!strcmp(type, "NFC")) { c->kind = TOKN_NFC; return 0; }
        if (!strcmp(type, "NFD")) { c->kind = TOKN_NFD; return 0; }
        if (!strcmp(type, "NFKC")) { c->kind = TOKN_NFKC; return 0; }
        if (!strcmp(type, "NFKD")) { c->kind = TOKN_NFKD; return 0; }
        if (!strcmp(type, "Lowercase")) { c->kind = TOKN_LOWERCASE; return 0; }
        if (!strcmp(type, "StripAccents")) { c->kind = TOKN_STRIP_ACCENTS; return 0; }
        if (!strcmp(type, "Strip")) {
            c->kind = TOKN_STRIP;
            c->a = get_bool(j, "strip_left", 1);
            c->b = get_bool(j, "strip_right", 1);
            return 0;
        }
    } else if (fam == FAM_PRE) {
        if (!strcmp(type, "Sequence")) { c->kind = TOKP_SEQUENCE; return parse_list(c, json_object_get(j, "pretokenizers"), fam, what, err); }
        if (!strcmp(type, "ByteLevel")) {
            c->kind = TOKP_BYTELEVEL;
            c->a = get_bool(j, "add_prefix_space", 1);
            c->b = get_bool(j, "use_regex", 1);
            return c->b ? tok_regex_compile(c, gpt2_pattern, sizeof gpt2_pattern - 1, what, err) : 0;
        }
        if (!strcmp(type, "Split") || !strcmp(type, "Punctuation")) {
            int split = type[0] == 'S';
            c->kind = split ? TOKP_SPLIT : TOKP_PUNCTUATION;
            const char *b = json_string_value(json_object_get(j, "behavior"));
            if (!b && split) return hone_fail(err, "%s: Split pre-tokenizer without \"behavior\"", what);
            if (!b || !strcmp(b, "Isolated")) c->a = SPLIT_ISOLATED;
            else if (!strcmp(b, "Removed")) c->a = SPLIT_REMOVED;
            else if (!strcmp(b, "MergedWithPrevious")) c->a = SPLIT_MERGED_PREV;
            else if (!strcmp(b, "MergedWithNext")) c->a = SPLIT_MERGED_NEXT;
            else if (!strcmp(b, "Contiguous")) c->a = SPLIT_CONTIGUOUS;
            else return hone_fail(err, "%s: %s pre-tokenizer: unsupported behavior \"%s\"", what, type, b);
            if (!split) return 0;
            c->b = get_bool(j, "invert", 0);
            return parse_pattern(c, json_object_get(j, "pattern"), what, err);
        }
        if (!strcmp(type, "Metaspace")) {
            c->kind = TOKP_METASPACE;
            v = json_object_get(j, "replacement");
            if (dupstr(&c->s1, &c->n1, json_is_string(v) ? json_string_value(v) : "\xE2\x96\x81")) return hone_fail(err, "out of memory");
            c->a = prepend_scheme(j);
            c->b = get_bool(j, "split", 1);
            return 0;
        }
        if (!strcmp(type, "Digits")) { c->kind = TOKP_DIGITS; c->a = get_bool(j, "individual_digits", 0); return 0; }
        if (!strcmp(type, "WhitespaceSplit")) { c->kind = TOKP_WHITESPACE_SPLIT; return 0; }
        if (!strcmp(type, "Whitespace")) {
            /* \w+|[^\w\s]+ with Rust's \w (Alphabetic, marks, Nd, Pc, joiners) and \s (White_Space):
             * PCRE2's UCP \w also takes No and leaves out marks */
            static const char ws_pattern[] =
                "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|"
                "[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}"
                "\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]+";
            c->kind = TOKP_WHITESPACE;
            return tok_regex_compile(c, ws_pattern, sizeof ws_pattern - 1, what, err);
        }
    } else if (fam == FAM_POST) {
        if (!strcmp(type, "Sequence")) { c->kind = TOKO_SEQUENCE; return parse_list(c, json_object_get(j, "processors"), fam, what, err); }
        if (!strcmp(type, "ByteLevel")) { c->kind = TOKO_BYTELEVEL; return 0; }
        if (!strcmp(type, "TemplateProcessing")) { c->kind = TOKO_TEMPLATE; return parse_template(c, j, what, err); }
    } else {
        if (!strcmp(type, "Sequence")) { c->kind = TOKD_SEQUENCE; return parse_list(c, json_object_get(j, "decoders"), fam, what, err); }
        if (!strcmp(type, "ByteLevel")) { c->kind = TOKD_BYTELEVEL; return 0; }
        if (!strcmp(type, "ByteFallback")) { c->kind = TOKD_BYTEFALLBACK; return 0; }
        if (!strcmp(type, "Fuse")) { c->kind = TOKD_FUSE; return 0; }
        if (!strcmp(type, "Metaspace")) {
            c->kind = TOKD_METASPACE;
            v = json_object_get(j, "replacement");
            if (dupstr(&c->s1, &c->n1, json_is_string(v) ? json_string_value(v) : "\xE2\x96\x81")) return hone_fail(err, "out of memory");
            c->a = prepend_scheme(j);
            return 0;
        }
        if (!strcmp(type, "Replace")) {
            c->kind = TOKD_REPLACE;
            v = json_object_get(j, "content");
            json_t *p = json_object_get(j, "pattern"), *s = json_object_get(p, "String");
            if (!json_is_string(v) || !json_is_string(s))
                return hone_fail(err, "%s: decoder Replace needs a String pattern and a content (Regex patterns are not supported)", what);
            if (dupstr(&c->s1, &c->n1, json_string_value(s)) || dupstr(&c->s2, &c->n2, json_string_value(v)))
                return hone_fail(err, "out of memory");
            return 0;
        }
        if (!strcmp(type, "Strip")) {
            c->kind = TOKD_STRIP;
            v = json_object_get(j, "content");
            if (dupstr(&c->s1, &c->n1, json_is_string(v) ? json_string_value(v) : " ")) return hone_fail(err, "out of memory");
            c->a = (int)json_integer_value(json_object_get(j, "start"));
            c->b = (int)json_integer_value(json_object_get(j, "stop"));
            return 0;
        }
    }
    return hone_fail(err, "%s: unsupported %s \"%s\"", what, fam_name[fam], type);
}

void tok_comp_free(tok_comp *c) {
    for (int i = 0; i < c->nsub; i++) tok_comp_free(&c->sub[i]);
    free(c->sub);
    free(c->s1);
    free(c->s2);
    free(c->ids);
    if (c->re) pcre2_code_free(c->re);
    if (c->re_wide) pcre2_code_free(c->re_wide);
    memset(c, 0, sizeof *c);
}
