/* tokenizer/regex.c — compiling the tokenizer's regexes on PCRE2 (UTF, UCP, JIT). The reference
 * runs them on Oniguruma with newer Unicode tables: characters assigned in Unicode 15-16 are
 * unassigned for this PCRE2, so \p{X} for the general categories the pre-tokenizer patterns
 * use is widened with the code points the reference puts in X and PCRE2 does not (found code
 * point by code point over U+0001..U+3FFFF at development time). */
#include "tokenizer/components.h"
#include <string.h>

static const struct { const char *name, *extra; } class_extra[] = {
    {"L",
     "\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CD}\\x{A7DA}-\\x{A7DC}\\x{105C0}-\\x{105F3}"
     "\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}\\x{1123F}-\\x{11240}"
     "\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}"
     "\\x{113D3}\\x{11BC0}-\\x{11BE0}\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}"
     "\\x{1342F}\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}"
     "\\x{16D40}-\\x{16D6C}\\x{18CFF}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}"
     "\\x{1E030}-\\x{1E06D}\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}\\x{2B739}"
     "\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}"},
    {"Lu",
     "\\x{1C89}\\x{A7CB}-\\x{A7CC}\\x{A7DA}\\x{A7DC}\\x{10D50}-\\x{10D65}"},
    {"Ll",
     "\\x{1C8A}\\x{A7CD}\\x{A7DB}\\x{10D70}-\\x{10D85}\\x{1DF25}-\\x{1DF2A}"},
    {"Lm",
     "\\x{10D4E}\\x{10D6F}\\x{16D40}-\\x{16D42}\\x{16D6B}-\\x{16D6C}\\x{1E030}-\\x{1E06D}"
     "\\x{1E4EB}"},
    {"Lo",
     "\\x{105C0}-\\x{105F3}\\x{10D4A}-\\x{10D4D}\\x{10D4F}\\x{10EC2}-\\x{10EC4}"
     "\\x{1123F}-\\x{11240}\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}\\x{11390}-\\x{113B5}"
     "\\x{113B7}\\x{113D1}\\x{113D3}\\x{11BC0}-\\x{11BE0}\\x{11F02}\\x{11F04}-\\x{11F10}"
     "\\x{11F12}-\\x{11F33}\\x{1342F}\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}"
     "\\x{16100}-\\x{1611D}\\x{16D43}-\\x{16D6A}\\x{18CFF}\\x{1B132}\\x{1B155}"
     "\\x{1E4D0}-\\x{1E4EA}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}\\x{2B739}\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}"},
    {"M",
     "\\x{897}\\x{CF3}\\x{ECE}\\x{10D69}-\\x{10D6D}\\x{10EFC}-\\x{10EFF}\\x{11241}"
     "\\x{113B8}-\\x{113C0}\\x{113C2}\\x{113C5}\\x{113C7}-\\x{113CA}\\x{113CC}-\\x{113D0}"
     "\\x{113D2}\\x{113E1}-\\x{113E2}\\x{11F00}-\\x{11F01}\\x{11F03}\\x{11F34}-\\x{11F3A}"
     "\\x{11F3E}-\\x{11F42}\\x{11F5A}\\x{13440}\\x{13447}-\\x{13455}\\x{1611E}-\\x{1612F}"
     "\\x{1E08F}\\x{1E4EC}-\\x{1E4EF}\\x{1E5EE}-\\x{1E5EF}"},
    {"Mn",
     "\\x{897}\\x{ECE}\\x{10D69}-\\x{10D6D}\\x{10EFC}-\\x{10EFF}\\x{11241}"
     "\\x{113BB}-\\x{113C0}\\x{113CE}\\x{113D0}\\x{113D2}\\x{113E1}-\\x{113E2}"
     "\\x{11F00}-\\x{11F01}\\x{11F36}-\\x{11F3A}\\x{11F40}\\x{11F42}\\x{11F5A}\\x{13440}"
     "\\x{13447}-\\x{13455}\\x{1611E}-\\x{16129}\\x{1612D}-\\x{1612F}\\x{1E08F}"
     "\\x{1E4EC}-\\x{1E4EF}\\x{1E5EE}-\\x{1E5EF}"},
    {"Mc",
     "\\x{CF3}\\x{113B8}-\\x{113BA}\\x{113C2}\\x{113C5}\\x{113C7}-\\x{113CA}"
     "\\x{113CC}-\\x{113CD}\\x{113CF}\\x{1171E}\\x{11F03}\\x{11F34}-\\x{11F35}"
     "\\x{11F3E}-\\x{11F3F}\\x{11F41}\\x{1612A}-\\x{1612C}"},
    {"N",
     "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}\\x{11F50}-\\x{11F59}"
     "\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}"
     "\\x{1E4F0}-\\x{1E4F9}\\x{1E5F1}-\\x{1E5FA}"},
    {"Nd",
     "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}\\x{11F50}-\\x{11F59}"
     "\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}\\x{1CCF0}-\\x{1CCF9}\\x{1E4F0}-\\x{1E4F9}"
     "\\x{1E5F1}-\\x{1E5FA}"},
    {"No",
     "\\x{1D2C0}-\\x{1D2D3}"},
    {"P",
     "\\x{1B4E}-\\x{1B4F}\\x{1B7F}\\x{10D6E}\\x{113D4}-\\x{113D5}\\x{113D7}-\\x{113D8}"
     "\\x{11B00}-\\x{11B09}\\x{11BE1}\\x{11F43}-\\x{11F4F}\\x{16D6D}-\\x{16D6F}\\x{1E5FF}"},
    {"S",
     "\\x{2427}-\\x{2429}\\x{2FFC}-\\x{2FFF}\\x{31E4}-\\x{31E5}\\x{31EF}\\x{10D8E}-\\x{10D8F}"
     "\\x{1CC00}-\\x{1CCEF}\\x{1CD00}-\\x{1CEB3}\\x{1F6DC}\\x{1F774}-\\x{1F776}"
     "\\x{1F77B}-\\x{1F77F}\\x{1F7D9}\\x{1F8B2}-\\x{1F8BB}\\x{1F8C0}-\\x{1F8C1}"
     "\\x{1FA75}-\\x{1FA77}\\x{1FA87}-\\x{1FA89}\\x{1FA8F}\\x{1FAAD}-\\x{1FAAF}"
     "\\x{1FABB}-\\x{1FABF}\\x{1FAC6}\\x{1FACE}-\\x{1FACF}\\x{1FADA}-\\x{1FADC}\\x{1FADF}"
     "\\x{1FAE8}-\\x{1FAE9}\\x{1FAF7}-\\x{1FAF8}\\x{1FBCB}-\\x{1FBEF}"},
};

/* Union of the code points above: only text containing one needs the widened regex, which
 * runs up to 30% slower (so both are compiled). */
static const int32_t new_chars[][2] = {
    {0x897, 0x897}, {0xCF3, 0xCF3}, {0xECE, 0xECE}, {0x1B4E, 0x1B4F}, {0x1B7F, 0x1B7F},
    {0x1C89, 0x1C8A}, {0x2427, 0x2429}, {0x2FFC, 0x2FFF}, {0x31E4, 0x31E5}, {0x31EF, 0x31EF},
    {0xA7CB, 0xA7CD}, {0xA7DA, 0xA7DC}, {0x105C0, 0x105F3}, {0x10D40, 0x10D65}, {0x10D69, 0x10D85},
    {0x10D8E, 0x10D8F}, {0x10EC2, 0x10EC4}, {0x10EFC, 0x10EFF}, {0x1123F, 0x11241},
    {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5},
    {0x113B7, 0x113C0}, {0x113C2, 0x113C2}, {0x113C5, 0x113C5}, {0x113C7, 0x113CA},
    {0x113CC, 0x113D5}, {0x113D7, 0x113D8}, {0x113E1, 0x113E2}, {0x116D0, 0x116E3},
    {0x1171E, 0x1171E}, {0x11B00, 0x11B09}, {0x11BC0, 0x11BE1}, {0x11BF0, 0x11BF9},
    {0x11F00, 0x11F10}, {0x11F12, 0x11F3A}, {0x11F3E, 0x11F5A}, {0x1342F, 0x1342F},
    {0x13440, 0x13455}, {0x13460, 0x143FA}, {0x16100, 0x16139}, {0x16D40, 0x16D79},
    {0x18CFF, 0x18CFF}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1CC00, 0x1CCF9},
    {0x1CD00, 0x1CEB3}, {0x1D2C0, 0x1D2D3}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D},
    {0x1E08F, 0x1E08F}, {0x1E4D0, 0x1E4F9}, {0x1E5D0, 0x1E5FA}, {0x1E5FF, 0x1E5FF},
    {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F}, {0x1F7D9, 0x1F7D9},
    {0x1F8B2, 0x1F8BB}, {0x1F8C0, 0x1F8C1}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA89},
    {0x1FA8F, 0x1FA8F}, {0x1FAAD, 0x1FAAF}, {0x1FABB, 0x1FABF}, {0x1FAC6, 0x1FAC6},
    {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADC}, {0x1FADF, 0x1FADF}, {0x1FAE8, 0x1FAE9},
    {0x1FAF7, 0x1FAF8}, {0x1FBCB, 0x1FBEF}, {0x2B739, 0x2B739}, {0x2EBF0, 0x2EE5D},
    {0x31350, 0x323AF},
};

int tok_has_new_chars(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (u[i] < 0xE0) continue; /* all the code points are >= U+0897 (3- and 4-byte forms) */
        int32_t cp;
        int l = tok_utf8_decode(u + i, n - i, &cp);
        if (!l) continue;
        size_t lo = 0, hi = sizeof new_chars / sizeof *new_chars;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cp < new_chars[mid][0]) hi = mid;
            else if (cp > new_chars[mid][1]) lo = mid + 1;
            else return 1;
        }
        i += (size_t)l - 1;
    }
    return 0;
}

static const char *extra_for(const char *name, size_t n) {
    if (n == 10 && !memcmp(name, "Alphabetic", 10)) name = "L", n = 1; /* the new ones are all letters */
    for (size_t i = 0; i < sizeof class_extra / sizeof *class_extra; i++)
        if (strlen(class_extra[i].name) == n && !memcmp(class_extra[i].name, name, n)) return class_extra[i].extra;
    return NULL;
}

/* Rewrites \p{X} as [\p{X}<extra>] outside character classes and \p{X}<extra> inside them,
 * \P{X} (outside classes) as [^\p{X}<extra>]. Everything else is copied. */
static int widen(const char *p, size_t n, tok_buf *o) {
    int in_class = 0;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char k = p[i + 1];
            if ((k == 'p' || k == 'P') && i + 2 < n && p[i + 2] == '{') {
                const char *close = memchr(p + i + 3, '}', n - i - 3);
                const char *extra = close ? extra_for(p + i + 3, (size_t)(close - (p + i + 3))) : NULL;
                if (extra && (k == 'p' || !in_class)) {
                    size_t len = (size_t)(close + 1 - (p + i));
                    int wrap = !in_class;
                    if ((wrap && tok_buf_put(o, k == 'P' ? "[^" : "[", k == 'P' ? 2 : 1)) || tok_buf_put(o, "\\p", 2) ||
                        tok_buf_put(o, p + i + 2, len - 2) || tok_buf_put(o, extra, strlen(extra)) ||
                        (wrap && tok_buf_put(o, "]", 1)))
                        return -1;
                    i += len;
                    continue;
                }
            }
            if (tok_buf_put(o, p + i, 2)) return -1;
            i += 2;
            continue;
        }
        if (!in_class && c == '[') {
            /* a class: "[", optional "^", and a "]" right after is literal */
            size_t j = i + 1;
            if (j < n && p[j] == '^') j++;
            if (j < n && p[j] == ']') j++;
            if (tok_buf_put(o, p + i, j - i)) return -1;
            i = j;
            in_class = 1;
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') { /* [:posix:] */
            const char *e = memmem(p + i + 2, n - i - 2, ":]", 2);
            size_t len = e ? (size_t)(e + 2 - (p + i)) : 1;
            if (tok_buf_put(o, p + i, len)) return -1;
            i += len;
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        if (tok_buf_put(o, &c, 1)) return -1;
        i++;
    }
    return 0;
}

static pcre2_code *compile(const char *pat, size_t n, const char *shown, const char *what, hone_error *err) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        hone_fail(err, "%s: regex /%.80s/ does not compile at offset %zu: %s", what, shown, (size_t)eo, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    return re;
}

int tok_regex_compile(tok_comp *c, const char *pat, size_t n, const char *what, hone_error *err) {
    tok_buf w = {0};
    if (!(c->re = compile(pat, n, pat, what, err))) return -1;
    if (widen(pat, n, &w) || tok_buf_put(&w, "", 0)) {
        tok_buf_free(&w);
        return hone_fail(err, "out of memory");
    }
    int widened = w.n != n;
    if (widened) c->re_wide = compile(w.p, w.n, pat, what, err);
    tok_buf_free(&w);
    return widened && !c->re_wide ? -1 : 0;
}
