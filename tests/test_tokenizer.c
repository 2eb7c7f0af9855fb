/* test_tokenizer.c — the tokenizer against the reference library: every line of
 * shared/tokenizers/<name>/expected.dev.jsonl must be reproduced byte for byte (ids,
 * ids_special, decoded), batch encoding must equal serial encoding, malformed inputs must
 * fail with clear messages, and small hand-made tokenizers pin the BPE details. */
#include "test.h"
#include "tokenizer/internal.h"
#include <sys/stat.h>
#include <unistd.h>

static const char *const names[] = {"llama2", "mistral", "llama3", "gemma3", "qwen3", "gpt2", "smollm", "phi3", "gpt4o"};
/* bos, eos, pad, add_bos, vocab size, has chat template: from tokenizer_config.json (phi3 has
 * none: BOS from the post-processor, EOS from well-known added tokens) */
static const int meta[9][6] = {
    {1, 2, -1, 1, 32000, 0},            {1, 2, -1, 1, 32000, 0},       {128000, 128001, -1, 0, 128256, 1},
    {2, 106, 0, 1, 262145, 1},          {-1, 151645, 151643, 0, 151669, 1}, {50256, 50256, -1, 0, 50257, 0},
    {0, 0, -1, 0, 49152, 0},            {-1, 2, -1, 0, 32011, 0},      {199999, 199999, -1, 0, 200019, 0},
};

/* Reads a whole file; NULL if absent. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[sz] = 0; *n = (size_t)sz; }
    return b;
}

/* Splits a buffer into lines in place. */
static size_t lines_of(char *buf, size_t n, char ***out) {
    size_t cap = 2048, k = 0;
    char **l = malloc(cap * sizeof *l);
    for (char *p = buf; p < buf + n;) {
        char *e = memchr(p, '\n', (size_t)(buf + n - p));
        if (!e) e = buf + n;
        *e = 0;
        if (k == cap) l = realloc(l, (cap *= 2) * sizeof *l);
        l[k++] = p;
        p = e + 1;
    }
    *out = l;
    return k;
}

typedef struct { char **text; size_t *len; size_t n; json_t **keep; } corpus;

static int corpus_load(corpus *c) {
    const char *p = test_shared("tokenizers/corpus.dev.jsonl");
    if (!p) return -1;
    size_t n;
    char *buf = slurp(p, &n), **lines;
    c->n = lines_of(buf, n, &lines);
    c->text = malloc(c->n * sizeof *c->text);
    c->len = malloc(c->n * sizeof *c->len);
    c->keep = malloc(c->n * sizeof *c->keep);
    for (size_t i = 0; i < c->n; i++) {
        json_error_t je;
        c->keep[i] = json_loads(lines[i], JSON_ALLOW_NUL, &je);
        json_t *t = json_object_get(c->keep[i], "text");
        c->text[i] = (char *)json_string_value(t);
        c->len[i] = json_string_length(t);
    }
    free(lines);
    free(buf);
    return 0;
}

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->n; i++) json_decref(c->keep[i]);
    free(c->text); free(c->len); free(c->keep);
}

static void test_corpus_exact(void) {
    corpus c;
    if (corpus_load(&c)) { test_skip("../shared/tokenizers absent"); return; }
    for (size_t t = 0; t < sizeof names / sizeof *names; t++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tokenizers/%s/expected.dev.jsonl", names[t]);
        const char *ep = test_shared(rel);
        snprintf(rel, sizeof rel, "tokenizers/%s/tokenizer.json", names[t]);
        const char *tp = test_shared(rel);
        CHECK(ep && tp, "%s: missing files", names[t]);
        if (!ep || !tp) continue;
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(tp, '/') - tp), tp);
        hone_tokenizer *tok;
        hone_error err;
        int rc = tokenizer_load(&tok, dir, &err);
        CHECK(rc == 0, "%s: %s", names[t], err.msg);
        if (rc) continue;
        const int *mt = meta[t];
        CHECK(tokenizer_bos_id(tok) == mt[0] && tokenizer_eos_id(tok) == mt[1] && tokenizer_pad_id(tok) == mt[2] &&
                  tokenizer_add_bos(tok) == mt[3] && tokenizer_vocab_size(tok) == mt[4] &&
                  (tokenizer_chat_template(tok) != NULL) == mt[5],
              "%s: bos %d eos %d pad %d add_bos %d vocab %d", names[t], tokenizer_bos_id(tok), tokenizer_eos_id(tok),
              tokenizer_pad_id(tok), tokenizer_add_bos(tok), tokenizer_vocab_size(tok));
        size_t n;
        char *buf = slurp(ep, &n), **exp;
        size_t ne = lines_of(buf, n, &exp), ok = 0, shown = 0;
        CHECK(ne == c.n, "%s: %zu expected lines for %zu texts", names[t], ne, c.n);
        tok_buf line = {0};
        for (size_t i = 0; i < ne && i < c.n; i++) {
            if (tok_jsonl_line(tok, c.text[i], c.len[i], &line, &err)) { CHECK(0, "%s line %zu: %s", names[t], i + 1, err.msg); continue; }
            if (!strcmp(line.p, exp[i])) ok++;
            else if (shown++ < 2) CHECK(0, "%s line %zu differs:\n      got  %.300s\n      want %.300s", names[t], i + 1, line.p, exp[i]);
        }
        printf("    %-8s %zu / %zu lines exact\n", names[t], ok, ne);
        CHECK(ok == ne, "%s: %zu mismatches", names[t], ne - ok);
        tok_buf_free(&line);
        free(exp);
        free(buf);
        tokenizer_free(tok);
    }
    corpus_free(&c);
}

static void test_batch_equals_serial(void) {
    corpus c;
    const char *tp = test_shared("tokenizers/llama3/tokenizer.json");
    if (!tp || corpus_load(&c)) { test_skip("../shared/tokenizers absent"); return; }
    hone_tokenizer *tok;
    hone_error err;
    CHECK(tokenizer_load(&tok, tp, &err) == 0, "%s", err.msg);
    int32_t **ids = malloc(c.n * sizeof *ids);
    size_t *ns = malloc(c.n * sizeof *ns);
    CHECK(tokenizer_encode_batch(tok, (const char **)c.text, c.len, c.n, 1, ids, ns, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < c.n; i++) {
        int32_t *s;
        size_t n;
        CHECK(tokenizer_encode(tok, c.text[i], c.len[i], 1, &s, &n, &err) == 0, "%s", err.msg);
        CHECK(n == ns[i] && !memcmp(s, ids[i], n * sizeof *s), "text %zu: batch differs from serial", i);
        free(s);
        free(ids[i]);
    }
    free(ids);
    free(ns);
    tokenizer_free(tok);
    corpus_free(&c);
}

/* A tiny byte-fallback tokenizer: vocab a b c ab abc <unk> <0x..> for 0xFF only. */
static const char tiny_json[] =
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
    "{\"id\":7,\"content\":\"<X>\",\"special\":false,\"normalized\":false,\"lstrip\":true,\"rstrip\":true}],"
    "\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
    "\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"c\":3,\"ab\":4,\"abc\":5,\"<0xFF>\":6,\"<X>\":7,\" \":8},"
    "\"merges\":[\"a b\",[\"ab\",\"c\"]]}}";

static void test_tiny_bpe(void) {
    hone_tokenizer *tok;
    hone_error err;
    CHECK(tokenizer_load_json(&tok, tiny_json, sizeof tiny_json - 1, NULL, 0, "tiny", &err) == 0, "%s", err.msg);
    if (!tok) return;
    int32_t *ids;
    size_t n;
    /* "abcab" -> abc ab; "xx" -> one fused <unk>; 0xFF (invalid UTF-8) -> <0xFF> */
    CHECK(tokenizer_encode(tok, "abcabxx\xff", 8, 0, &ids, &n, &err) == 0, "%s", err.msg);
    int32_t want[] = {5, 4, 0, 6};
    CHECK(n == 4 && !memcmp(ids, want, sizeof want), "got %zu ids", n);
    free(ids);
    /* lstrip/rstrip: spaces around <X> are absorbed by it */
    CHECK(tokenizer_encode(tok, "a  <X>  b", 9, 0, &ids, &n, &err) == 0, "%s", err.msg);
    int32_t want2[] = {1, 7, 2};
    CHECK(n == 3 && !memcmp(ids, want2, sizeof want2), "lstrip/rstrip: got %zu ids", n);
    free(ids);
    char *s;
    size_t len;
    int32_t dec[] = {5, 6, 1};
    CHECK(tokenizer_decode(tok, dec, 3, 0, &s, &len, &err) == 0, "%s", err.msg);
    CHECK(len == 7 && !memcmp(s, "abc\xEF\xBF\xBD" "a", 7), "decode: %s", s);
    free(s);
    int32_t dec2[] = {0, 1, 7, 2};
    CHECK(tokenizer_decode(tok, dec2, 4, 1, &s, &len, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(s, "a<X>b"), "skip_special drops <unk> only (<X> is not special): \"%s\"", s);
    free(s);
    CHECK(tokenizer_token_to_id(tok, "abc") == 5, "token_to_id");
    CHECK(tokenizer_id_to_token(tok, 99) == NULL, "id_to_token out of range");
    CHECK(tokenizer_vocab_size(tok) == 9, "vocab size %d", tokenizer_vocab_size(tok));
    CHECK(tokenizer_is_special(tok, 0) && !tokenizer_is_special(tok, 7), "is_special");
    tokenizer_free(tok);
}

static void expect_error(const char *json, const char *needle) {
    hone_tokenizer *tok = NULL;
    hone_error err = {{0}};
    int rc = tokenizer_load_json(&tok, json, strlen(json), NULL, 0, "bad.json", &err);
    CHECK(rc == -1 && tok == NULL, "loaded: %s", json);
    CHECK(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needle);
    CHECK(strstr(err.msg, "bad.json") != NULL, "message \"%s\" does not name the file", err.msg);
}

static void test_errors(void) {
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}}}", "malformed");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a q\"]}}", "\"q\" is not in the vocab");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "empty");
    expect_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "Unigram");
    expect_error("{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                 "BertNormalizer");
    expect_error("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"},"
                 " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "regex");
    expect_error("{\"model\": ", "malformed");
    expect_error("[1, 2]", "model");
    /* a vocabulary without byte fallback or byte-level reports the offset of invalid UTF-8 */
    const char *plain = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}";
    hone_tokenizer *tok;
    hone_error err;
    CHECK(tokenizer_load_json(&tok, plain, strlen(plain), NULL, 0, "plain", &err) == 0, "%s", err.msg);
    int32_t *ids;
    size_t n;
    CHECK(tokenizer_encode(tok, "aa\xC3", 3, 0, &ids, &n, &err) == -1, "invalid UTF-8 accepted");
    CHECK(strstr(err.msg, "offset 2") != NULL, "message: %s", err.msg);
    tokenizer_free(tok);
}

static void check_ids(const hone_tokenizer *tok, const char *text, const int32_t *want, size_t nwant) {
    int32_t *ids;
    size_t n;
    hone_error err;
    CHECK(tokenizer_encode(tok, text, strlen(text), 0, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(n == nwant && !memcmp(ids, want, n * sizeof *ids), "\"%s\": got %zu ids", text, n);
    free(ids);
}

static void test_add_special_and_save(void) {
    hone_tokenizer *tok, *back;
    hone_error err;
    CHECK(tokenizer_load_json(&tok, tiny_json, sizeof tiny_json - 1, NULL, 0, "tiny", &err) == 0, "%s", err.msg);
    if (!tok) return;
    const char *const extra[] = {"<|im_start|>", "<|im_end|>", "abc", "<X>", "", "<|im_end|>"};
    CHECK(tokenizer_add_special_tokens(tok, extra, 6, &err) == 3, "added count");
    CHECK(tokenizer_vocab_size(tok) == 11, "vocab size %d", tokenizer_vocab_size(tok));
    int32_t want[] = {9, 5, 10, 4};
    check_ids(tok, "<|im_start|>abc<|im_end|>ab", want, 4);
    CHECK(tokenizer_is_special(tok, 9) && tokenizer_is_special(tok, 5), "new tokens are special");
    const char *dir = test_tmpdir("save");
    CHECK(tokenizer_save(tok, dir, &err) == 0, "%s", err.msg);
    CHECK(tokenizer_load(&back, dir, &err) == 0, "reload: %s", err.msg);
    if (back) {
        check_ids(back, "<|im_start|>abc<|im_end|>ab", want, 4);
        CHECK(tokenizer_vocab_size(back) == 11 && tokenizer_token_to_id(back, "<|im_end|>") == 10, "reloaded vocab");
        tokenizer_free(back);
    }
    tokenizer_free(tok);
    /* a real one: gpt2 with ChatML tokens, saved, reloaded, same ids on the corpus */
    const char *gp = test_shared("tokenizers/gpt2/tokenizer.json");
    corpus c;
    if (gp && !corpus_load(&c)) {
        CHECK(tokenizer_load(&tok, gp, &err) == 0, "%s", err.msg);
        CHECK(tokenizer_add_special_tokens(tok, extra, 2, &err) == 2, "gpt2 add");
        CHECK(tokenizer_save(tok, dir, &err) == 0, "%s", err.msg);
        CHECK(tokenizer_load(&back, dir, &err) == 0, "reload gpt2: %s", err.msg);
        size_t same = 0;
        for (size_t i = 0; back && i < c.n; i += 4) {
            int32_t *x, *y;
            size_t nx, ny;
            CHECK(tokenizer_encode(tok, c.text[i], c.len[i], 1, &x, &nx, &err) == 0, "%s", err.msg);
            CHECK(tokenizer_encode(back, c.text[i], c.len[i], 1, &y, &ny, &err) == 0, "%s", err.msg);
            same += nx == ny && !memcmp(x, y, nx * sizeof *x);
            CHECK(nx == ny && !memcmp(x, y, nx * sizeof *x), "text %zu differs after save", i);
            free(x);
            free(y);
        }
        int32_t chat[] = {50257, 5303, 50258};
        if (back) check_ids(back, "<|im_start|>hi<|im_end|>", chat, 3);
        tokenizer_free(back);
        tokenizer_free(tok);
        corpus_free(&c);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static int same_ids(const int32_t *ids, size_t n, json_t *want) {
    if (n != json_array_size(want)) return 0;
    for (size_t k = 0; k < n; k++)
        if (ids[k] != json_integer_value(json_array_get(want, k))) return 0;
    return 1;
}

/* Synthetic tokenizers made with the reference library (tests/reference/tok_synth.py) for the
 * components the nine real ones do not use; committed with the reference's encodings. */
static void test_synthetic_components(void) {
    static const char *const synth[] = {"metaspace", "splits", "bytelevel", "punct", "wsregex"};
    for (int t = 0; t < 5; t++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/fixtures/tokenizers/%s", synth[t]);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", test_src(rel));
        hone_tokenizer *tok;
        hone_error err;
        CHECK(tokenizer_load(&tok, dir, &err) == 0, "%s: %s", synth[t], err.msg);
        if (!tok) continue;
        snprintf(rel, sizeof rel, "tests/fixtures/tokenizers/%s/expected.jsonl", synth[t]);
        size_t n, ok = 0;
        char *buf = slurp(test_src(rel), &n), **lines;
        size_t nl = buf ? lines_of(buf, n, &lines) : 0;
        for (size_t i = 0; i < nl; i++) {
            json_error_t je;
            json_t *j = json_loads(lines[i], 0, &je), *tx = json_object_get(j, "text");
            int32_t *a = NULL, *b = NULL;
            size_t na = 0, nb = 0, nd = 0;
            char *d = NULL;
            int good = tokenizer_encode(tok, json_string_value(tx), json_string_length(tx), 0, &a, &na, &err) == 0 &&
                       tokenizer_encode(tok, json_string_value(tx), json_string_length(tx), 1, &b, &nb, &err) == 0 &&
                       tokenizer_decode(tok, a, na, 0, &d, &nd, &err) == 0;
            good = good && same_ids(a, na, json_object_get(j, "ids")) && same_ids(b, nb, json_object_get(j, "ids_special")) &&
                   !strcmp(d, json_string_value(json_object_get(j, "decoded")));
            CHECK(good, "%s line %zu (\"%.60s\"): differs from the reference (decoded \"%.80s\")", synth[t], i + 1,
                  json_string_value(tx), d ? d : "");
            ok += good;
            free(a); free(b); free(d);
            json_decref(j);
        }
        printf("    synthetic %-9s %zu / %zu lines exact\n", synth[t], ok, nl);
        if (t == 2) { /* invalid UTF-8 with a byte-level vocabulary: the byte's own token */
            int32_t *ids;
            size_t m;
            CHECK(tokenizer_encode(tok, "\xff", 1, 0, &ids, &m, &err) == 0, "%s", err.msg);
            CHECK(m == 1 && ids[0] == tokenizer_token_to_id(tok, "\xC3\xBF"), "0xFF -> the token of U+00FF");
            free(ids);
        }
        CHECK(nl > 0, "%s: no fixture lines", synth[t]);
        if (buf) { free(lines); free(buf); }
        tokenizer_free(tok);
    }
}

/* Pre-tokenizes s with the pre-tokenizer JSON js; returns the number of pieces. */
static size_t pieces_of(const char *js, const char *s) {
    json_error_t je;
    json_t *j = json_loads(js, 0, &je);
    tok_comp c;
    hone_error err;
    tok_ws w;
    size_t n = 0;
    CHECK(j && tok_comp_parse(&c, j, 1, "t", &err) == 0, "%s", js);
    tok_ws_init(&w);
    tok_pieces_push(&w.pa, s, strlen(s));
    if (tok_pretokenize(&c, &w, 1, &err) == 0) n = w.pa.n;
    tok_ws_free(&w);
    tok_comp_free(&c);
    json_decref(j);
    return n;
}

/* Spot checks of the Unicode-version patches (the full per-code-point comparison with the
 * reference is a development-time check, see docs/tokenizer.md). */
static void test_unicode_tables(void) {
    tok_comp c = {0};
    tok_buf o = {0};
    hone_error err;
    c.kind = TOKN_LOWERCASE;
    CHECK(tok_normalize(&c, "\xE1\xB2\x89\xC4\xB0", 5, &o, &err) == 0 && o.n == 6 &&
              !memcmp(o.p, "\xE1\xB2\x8A" "i\xCC\x87", 6), "Lowercase U+1C89, U+0130");
    c.kind = TOKN_NFKC;
    CHECK(tok_normalize(&c, "\xE3\x8B\xBF\xEF\xAC\x81", 6, &o, &err) == 0 && o.n == 5 && !memcmp(o.p, "\xE3\x8B\xBF" "fi", 5),
          "NFKC keeps U+32FF, maps U+FB01");
    tok_buf_free(&o);
    CHECK(pieces_of("{\"type\": \"Punctuation\"}", "a\xD8\x9D" "b,c") == 3, "U+061D is not punctuation for the reference");
    CHECK(pieces_of("{\"type\": \"Digits\", \"individual_digits\": true}", "a\xF0\x90\xB5\x80" "b") == 3, "U+10D40 is a digit");
    /* U+2EBF0 (CJK extension I, Unicode 15.1) is a letter: "x" + it is one \p{L}+ piece */
    const char *l3 = "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+\"},"
                     " \"behavior\": \"Isolated\", \"invert\": false}";
    CHECK(pieces_of(l3, "x\xF0\xAE\xAF\xB0") == 1, "U+2EBF0 is a letter");
    CHECK(pieces_of(l3, "x1") == 2, "regex sanity");
}

/* Compares hone's converted tokenizer with SentencePiece's own ids from the fixture. */
static void check_spm_fixture(const hone_tokenizer *tok, const char *model) {
    size_t n;
    char *buf = slurp(test_src("tests/fixtures/spm_reference.jsonl"), &n), **lines;
    CHECK(buf != NULL, "tests/fixtures/spm_reference.jsonl missing");
    if (!buf) return;
    size_t nl = lines_of(buf, n, &lines), checked = 0;
    for (size_t i = 0; i < nl; i++) {
        json_error_t je;
        json_t *j = json_loads(lines[i], 0, &je);
        if (!j || strcmp(json_string_value(json_object_get(j, "model")), model)) { json_decref(j); continue; }
        json_t *t = json_object_get(j, "text"), *want = json_object_get(j, "ids");
        int32_t *ids;
        size_t m;
        hone_error err;
        CHECK(tokenizer_encode(tok, json_string_value(t), json_string_length(t), 0, &ids, &m, &err) == 0, "%s", err.msg);
        int same = m == json_array_size(want);
        for (size_t k = 0; same && k < m; k++) same = ids[k] == json_integer_value(json_array_get(want, k));
        CHECK(same, "%s: \"%s\": %zu ids differ from SentencePiece's %zu", model, json_string_value(t), m, json_array_size(want));
        checked++;
        free(ids);
        json_decref(j);
    }
    CHECK(checked > 0, "no fixture lines for %s", model);
    printf("    %s: %zu SentencePiece reference texts checked\n", model, checked);
    free(lines);
    free(buf);
}

static void test_spm_stories260k(void) {
    const char *mp = test_shared("models/stories260K/tok512.model");
    if (!mp) { test_skip("../shared/models/stories260K absent"); return; }
    const char *dir = test_tmpdir("spm");
    hone_error err;
    CHECK(spm_convert(mp, dir, &err) == 0, "%s", err.msg);
    hone_tokenizer *tok;
    CHECK(tokenizer_load(&tok, dir, &err) == 0, "%s", err.msg);
    if (!tok) return;
    CHECK(tokenizer_vocab_size(tok) == 512, "vocab %d", tokenizer_vocab_size(tok));
    CHECK(tokenizer_bos_id(tok) == 1 && tokenizer_eos_id(tok) == 2 && tokenizer_add_bos(tok), "bos/eos");
    check_spm_fixture(tok, "stories260K");
    int32_t *ids;
    size_t n;
    CHECK(tokenizer_encode(tok, "Once upon a time", 16, 1, &ids, &n, &err) == 0 && n > 1 && ids[0] == 1, "BOS first");
    free(ids);
    tokenizer_free(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* llama2's tokenizer.model converts into a tokenizer that encodes every corpus line
 * (all 1651) as llama2/tokenizer.json does, the 45 lines with U+00A0 included: the
 * shared tokenizer.json spells the four U+00A0 pieces (ids 8655, 17891, 20246, 30081)
 * and their three merges as tokenizer.model does (../shared/README.md), so nothing is
 * left out. The SentencePiece fixture is checked as well. */
static void test_spm_llama2(void) {
    const char *mp = test_shared("tokenizers/llama2/tokenizer.model"), *ep = test_shared("tokenizers/llama2/expected.dev.jsonl");
    corpus c;
    if (!mp || !ep || corpus_load(&c)) { test_skip("../shared/tokenizers/llama2 absent"); return; }
    const char *dir = test_tmpdir("spm2");
    hone_error err;
    CHECK(spm_convert(mp, dir, &err) == 0, "%s", err.msg);
    hone_tokenizer *tok;
    CHECK(tokenizer_load(&tok, dir, &err) == 0, "%s", err.msg);
    if (tok) {
        size_t n, ok = 0, nbsp = 0, nbsp_ok = 0;
        char *buf = slurp(ep, &n), **exp;
        size_t ne = lines_of(buf, n, &exp);
        tok_buf line = {0};
        CHECK(ne == c.n && ne == 1651, "expected.dev.jsonl has %zu lines, the corpus %zu (want 1651 each)", ne, c.n);
        for (size_t i = 0; i < ne && i < c.n; i++) {
            int has_nbsp = memmem(c.text[i], c.len[i], "\xC2\xA0", 2) != NULL;
            nbsp += has_nbsp;
            CHECK(tok_jsonl_line(tok, c.text[i], c.len[i], &line, &err) == 0, "%s", err.msg);
            if (!strcmp(line.p, exp[i])) ok++, nbsp_ok += has_nbsp;
            else CHECK(0, "line %zu%s differs:\n      got  %.200s\n      want %.200s", i + 1, has_nbsp ? " (U+00A0)" : "", line.p, exp[i]);
        }
        printf("    converted llama2: %zu / %zu lines exact (%zu / %zu of the lines with U+00A0)\n", ok, ne, nbsp_ok, nbsp);
        CHECK(nbsp == 45, "the corpus has %zu lines with U+00A0 (want 45, ../shared/README.md)", nbsp);
        check_spm_fixture(tok, "llama2");
        tok_buf_free(&line);
        free(exp);
        free(buf);
        tokenizer_free(tok);
    }
    corpus_free(&c);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    TEST_RUN(test_tiny_bpe);
    TEST_RUN(test_errors);
    TEST_RUN(test_add_special_and_save);
    TEST_RUN(test_synthetic_components);
    TEST_RUN(test_unicode_tables);
    TEST_RUN(test_corpus_exact);
    TEST_RUN(test_batch_equals_serial);
    TEST_RUN(test_spm_stories260k);
    TEST_RUN(test_spm_llama2);
    return test_finish();
}
