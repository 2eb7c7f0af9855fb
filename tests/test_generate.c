/* test_generate.c — the inference engine and sampling (src/generate/generate.h):
 * KV-cache logits equal the training forward's, greedy stories260K text, seeded
 * sampling is reproducible, the logits processors equal transformers' (fixture from
 * tests/reference/sampling_ref.py), stop strings and streaming, byte-fallback pieces
 * stream as whole UTF-8 characters, batched generation equals one prompt at a time,
 * bf16 weights equal fp32 on the same values. */
#include "cli/commands.h"
#include "model/convert.h"
#include "cli/gen_cli.h"
#include "generate/generate.h"
#include "simd/kernels.h"
#include "base/rng.h"
#include "test.h"
#include "model/transformer.h"
#include "base/util.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load_fixture_model(hone_model *m, const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/models/%s", name);
    hone_error err = {{0}};
    if (model_load(m, test_src(rel), 1, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    return 0;
}

/* Two sequences in two slots, interleaved: a prompt chunk by gemm, then one token
 * per step by matrix-vector products; every position's logits against
 * model_forward + model_logits on the whole sequence. */
static void check_kv_logits(const hone_model *m, const char *name) {
    const hone_model_config *c = &m->cfg;
    enum { T = 14, P = 5, S = 2 };
    int V = c->vocab_size;
    hone_rng r;
    rng_seed(&r, 42);
    int32_t toks[S][T];
    for (int s = 0; s < S; s++)
        for (int t = 0; t < T; t++) toks[s][t] = (int32_t)rng_below(&r, V);
    /* reference */
    hone_batch b;
    batch_alloc(&b, S, T);
    batch_reset(&b, 0);
    for (int s = 0; s < S; s++) batch_put_doc(&b, s, 0, toks[s], T, 0, NULL);
    hone_acts a;
    hone_error err = {{0}};
    if (acts_init(&a, c, S, T, 0, 0, &err) < 0) { CHECK(0, "%s", err.msg); batch_free(&b); return; }
    model_forward(m, &a, &b);
    int32_t slots_all[S * T];
    for (int i = 0; i < S * T; i++) slots_all[i] = i;
    float *ref = malloc(sizeof(float) * S * T * V), *got = malloc(sizeof(float) * S * T * V);
    model_logits(m, &a, slots_all, S * T, ref);
    /* engine */
    hone_engine e;
    if (engine_init(&e, m, 3, 32, 16, &err) < 0) { CHECK(0, "%s", err.msg); goto out; }
    int32_t tk[16], sl[16], ps[16], orow[16];
    int n = 0;
    for (int s = 0; s < S; s++) /* slots 2 and 0: slot numbers need not be dense */
        for (int t = 0; t < P; t++) { tk[n] = toks[s][t]; sl[n] = s ? 0 : 2; ps[n] = t; orow[n] = n; n++; }
    float *tmp = malloc(sizeof(float) * 16 * V);
    engine_forward(&e, n, tk, sl, ps, 1, n, orow, tmp);
    for (int s = 0; s < S; s++)
        memcpy(got + ((size_t)s * T) * V, tmp + (size_t)s * P * V, sizeof(float) * P * V);
    for (int t = P; t < T; t++) {
        for (int s = 0; s < S; s++) { tk[s] = toks[s][t]; sl[s] = s ? 0 : 2; ps[s] = t; orow[s] = s; }
        engine_forward(&e, S, tk, sl, ps, 0, S, orow, tmp);
        for (int s = 0; s < S; s++) memcpy(got + ((size_t)s * T + t) * V, tmp + (size_t)s * V, sizeof(float) * V);
    }
    free(tmp);
    double mx = 0, worst = 0;
    for (size_t i = 0; i < (size_t)S * T * V; i++) {
        mx = fmax(mx, fabs(ref[i]));
        worst = fmax(worst, fabs(ref[i] - got[i]));
    }
    CHECK(worst <= 1e-5 * mx, "%s: KV-cache logits differ by %g (max |logit| %g)", name, worst, mx);
    engine_free(&e);
out:
    free(ref);
    free(got);
    acts_free(&a);
    batch_free(&b);
}

static void test_kv_logits_match_forward(void) {
    const char *names[] = {"tiny-llama", "tiny-llama3-gqa", "tiny-qwen2", "tiny-gemma"};
    for (int i = 0; i < 4; i++) {
        hone_model m;
        if (load_fixture_model(&m, names[i]) < 0) return;
        check_kv_logits(&m, names[i]);
        model_free(&m);
    }
}

/* stories260K + its tokenizer converted from tok512.model; returns 0 when loaded. */
static int load_stories(hone_model *m, hone_tokenizer **tok) {
    const char *bin = test_shared("models/stories260K/stories260K.bin");
    const char *spm = test_shared("models/stories260K/tok512.model");
    if (!bin || !spm) { test_skip("../shared/models/stories260K is absent"); return -1; }
    hone_error err = {{0}};
    if (convert_llama2c_load(m, bin, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    const char *dir = test_tmpdir("gen");
    if (spm_convert(spm, dir, &err) < 0 || tokenizer_load(tok, dir, &err) < 0) {
        CHECK(0, "%s", err.msg);
        model_free(m);
        return -1;
    }
    hone_remove_tree(dir, NULL);
    return 0;
}

typedef struct { char buf[4096]; size_t len; int calls; } stream_buf;
static void on_piece(void *ctx, int seq, const char *p, size_t n) {
    stream_buf *sb = ctx;
    (void)seq;
    if (sb->len + n < sizeof sb->buf) { memcpy(sb->buf + sb->len, p, n); sb->len += n; sb->buf[sb->len] = 0; }
    sb->calls++;
}

static void test_stories_greedy_and_stop_strings(void) {
    hone_model m;
    hone_tokenizer *tok = NULL;
    if (load_stories(&m, &tok) < 0) return;
    hone_error err = {{0}};
    hone_engine e;
    if (engine_init(&e, &m, 2, 256, 0, &err) < 0) { CHECK(0, "%s", err.msg); goto out; }
    hone_gen_options o;
    gen_options_defaults(&o);
    o.max_new_tokens = 40;
    int32_t bos = 1, eos = 2;
    o.stop_ids = &eos;
    o.n_stop_ids = 1;
    const int32_t *pr[1] = {&bos};
    int pl[1] = {1};
    hone_gen_output g;
    stream_buf sb = {{0}, 0, 0};
    CHECK(generate_run(&e, tok, &o, 1, pr, pl, on_piece, &sb, &g, &err) == 0, "%s", err.msg);
    const char *want = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    CHECK(g.text && !strncmp(g.text, want, strlen(want)), "greedy text: '%s'", g.text ? g.text : "(null)");
    CHECK(sb.len == g.text_len && !memcmp(sb.buf, g.text, sb.len), "streamed '%s' != final '%s'", sb.buf, g.text);
    CHECK(sb.calls > 5, "streamed in %d pieces", sb.calls);
    CHECK(g.finish == HONE_FINISH_LENGTH && g.n_tokens == 40, "finish %d after %d tokens", g.finish, g.n_tokens);
    gen_output_free(&g);
    /* a stop string: the text ends right before it, nothing of it is streamed */
    const char *stops[2] = {"zzz", "little girl"};
    o.stop_strings = stops;
    o.n_stop_strings = 2;
    memset(&sb, 0, sizeof sb);
    CHECK(generate_run(&e, tok, &o, 1, pr, pl, on_piece, &sb, &g, &err) == 0, "%s", err.msg);
    CHECK(g.text && !strcmp(g.text, "Once upon a time, there was a "), "stopped text: '%s'", g.text ? g.text : "");
    CHECK(!strcmp(sb.buf, "Once upon a time, there was a "), "streamed: '%s'", sb.buf);
    CHECK(g.finish == HONE_FINISH_STOP_STRING, "finish %d", g.finish);
    gen_output_free(&g);
    engine_free(&e);
out:
    tokenizer_free(tok);
    model_free(&m);
}

/* Whole UTF-8 characters only (no stray continuation byte, no cut sequence). */
static int utf8_whole(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return 0;
        i += k;
    }
    return 1;
}

typedef struct { stream_buf sb; int bad; } utf8_stream;
static void on_piece_utf8(void *ctx, int seq, const char *p, size_t n) {
    utf8_stream *u = ctx;
    if (!utf8_whole(p, n)) u->bad++;
    on_piece(&u->sb, seq, p, n);
}

/* A "bigram" model that must produce a given chain of tokens greedily: one layer with
 * zero weights (attention and MLP add nothing), so the logits depend on the current
 * token only; embedding row chain[i] is one-hot on dim i and lm_head row chain[i+1]
 * reads that dim. */
static int chain_model(hone_model *m, int V, const int32_t *chain, int n, hone_error *err) {
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": %d, \"hidden_size\": 64,"
             " \"intermediate_size\": 64, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 4,"
             " \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": false}", V);
    hone_model_config c;
    if (model_config_parse(&c, cfg, "chain", err) < 0 || model_init(m, &c, err) < 0) return -1;
    for (int i = 0; i < 64; i++) m->w.norm[i] = 1.0f;
    for (int i = 0; i + 1 < n; i++) {
        m->w.embed[(size_t)chain[i] * 64 + i] = 1.0f;
        m->w.lm_head[(size_t)chain[i + 1] * 64 + i] = 10.0f;
    }
    return 0;
}

/* Byte-fallback pieces forced after a prompt that ends in a byte token (<0x0A>, as a
 * ChatML prompt does): "—" (<0xE2><0x80><0x94>), " and", "é" (<0xC3><0xA9>), "🙂"
 * (<0xF0><0x9F><0x99><0x82>). The completion is the characters exactly, every streamed
 * piece is whole UTF-8, the pieces add up to the text; cut inside a character by
 * max_new_tokens, the text still is valid UTF-8 (U+FFFD for the incomplete bytes). */
static void check_byte_stream(hone_tokenizer *tok, const char *what) {
    const char *pieces[] = {"<0x0A>", "<0xE2>", "<0x80>", "<0x94>", "\xE2\x96\x81" "and", "<0xC3>", "<0xA9>",
                            "<0xF0>", "<0x9F>", "<0x99>", "<0x82>", "</s>"};
    enum { N = sizeof pieces / sizeof *pieces };
    int32_t chain[N + 1];
    chain[0] = tokenizer_token_to_id(tok, "<s>");
    for (int i = 0; i < N; i++) {
        chain[i + 1] = tokenizer_token_to_id(tok, pieces[i]);
        if (chain[i + 1] < 0) { CHECK(0, "%s: no token '%s'", what, pieces[i]); return; }
    }
    hone_error err = {{0}};
    hone_model m;
    if (chain_model(&m, tokenizer_vocab_size(tok), chain, N + 1, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    hone_engine e;
    if (engine_init(&e, &m, 1, 64, 0, &err) < 0) { CHECK(0, "%s", err.msg); model_free(&m); return; }
    hone_gen_options o;
    gen_options_defaults(&o);
    o.max_new_tokens = 20;
    o.stop_ids = &chain[N];
    o.n_stop_ids = 1;
    const int32_t *pr[1] = {chain};
    int pl[1] = {2}; /* <s> <0x0A> */
    const char *want = "\xE2\x80\x94 and\xC3\xA9\xF0\x9F\x99\x82";
    for (int cut = 0; cut < 2; cut++) {
        hone_gen_output g;
        utf8_stream u = {{{0}, 0, 0}, 0};
        if (cut) o.max_new_tokens = 9; /* ends after <0xF0><0x9F> */
        CHECK(generate_run(&e, tok, &o, 1, pr, pl, on_piece_utf8, &u, &g, &err) == 0, "%s", err.msg);
        CHECK(g.n_tokens == (cut ? 9 : N - 1), "%s: %d tokens", what, g.n_tokens);
        if (!cut) CHECK(g.text && !strcmp(g.text, want), "%s: text '%s', want '%s'", what, g.text ? g.text : "", want);
        else CHECK(g.text && !strncmp(g.text, want, 7) && utf8_whole(g.text, g.text_len), "%s: cut text '%s'", what, g.text ? g.text : "");
        CHECK(u.bad == 0, "%s: %d streamed pieces are not whole UTF-8 characters", what, u.bad);
        CHECK(u.sb.len == g.text_len && !memcmp(u.sb.buf, g.text, g.text_len), "%s: streamed '%s' != final '%s'", what, u.sb.buf,
              g.text ? g.text : "");
        gen_output_free(&g);
    }
    engine_free(&e);
    model_free(&m);
}

static void test_byte_fallback_utf8_stream(void) {
    const char *spm = test_shared("models/stories260K/tok512.model"), *l2 = test_shared("tokenizers/llama2/tokenizer.json");
    if (!spm || !l2) { test_skip("../shared tokenizers are absent"); return; }
    hone_error err = {{0}};
    hone_tokenizer *tok = NULL;
    if (tokenizer_load(&tok, spm, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    check_byte_stream(tok, "stories260K");
    tokenizer_free(tok);
    if (tokenizer_load(&tok, l2, &err) < 0) { CHECK(0, "%s", err.msg); return; }
    check_byte_stream(tok, "llama2");
    tokenizer_free(tok);
}

static void test_stop_string_helpers(void) {
    const char *st[2] = {"</s>", "User:"};
    CHECK(gen_stop_find("abc User: x</s>", 15, st, 2) == 4, "earliest match");
    CHECK(gen_stop_find("abc", 3, st, 2) == -1, "no match");
    CHECK(gen_stop_holdback("hello </", 8, st, 2) == 2, "holds back '</'");
    CHECK(gen_stop_holdback("hello Use", 9, st, 2) == 3, "holds back 'Use'");
    CHECK(gen_stop_holdback("hello", 5, st, 2) == 0, "nothing held");
}

/* Five prompts of different lengths through 2 slots (continuous batching) give the
 * same tokens as each prompt alone; a sampled run repeats bitwise with its seed. */
static void test_batched_equals_single_and_seed(void) {
    hone_model m;
    if (load_fixture_model(&m, "tiny-llama3-gqa") < 0) return;
    hone_error err = {{0}};
    enum { NP = 5 };
    int32_t pbuf[NP][12];
    const int32_t *pr[NP];
    int pl[NP];
    hone_rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < NP; i++) {
        pl[i] = 1 + 2 * i;
        for (int j = 0; j < pl[i]; j++) pbuf[i][j] = (int32_t)rng_below(&r, m.cfg.vocab_size);
        pr[i] = pbuf[i];
    }
    hone_gen_options o;
    gen_options_defaults(&o);
    o.max_new_tokens = 12;
    o.s.temperature = 0.9f;
    o.s.top_k = 40;
    o.s.top_p = 0.95f;
    o.s.repetition_penalty = 1.1f;
    o.seed = 1234;
    int32_t stop = 7;
    o.stop_ids = &stop;
    o.n_stop_ids = 1;
    hone_engine eb, e1;
    if (engine_init(&eb, &m, 2, 64, 8, &err) < 0 || engine_init(&e1, &m, 1, 64, 0, &err) < 0) {
        CHECK(0, "%s", err.msg);
        model_free(&m);
        return;
    }
    hone_gen_output gb[NP], g1, g2;
    CHECK(generate_run(&eb, NULL, &o, NP, pr, pl, NULL, NULL, gb, &err) == 0, "%s", err.msg);
    for (int i = 0; i < NP; i++) {
        CHECK(generate_run(&e1, NULL, &o, 1, &pr[i], &pl[i], NULL, NULL, &g1, &err) == 0, "%s", err.msg);
        CHECK(g1.n_tokens == gb[i].n_tokens && !memcmp(g1.tokens, gb[i].tokens, sizeof(int32_t) * g1.n_tokens),
              "prompt %d: batched and single generations differ", i);
        CHECK(generate_run(&e1, NULL, &o, 1, &pr[i], &pl[i], NULL, NULL, &g2, &err) == 0, "%s", err.msg);
        CHECK(g2.n_tokens == g1.n_tokens && !memcmp(g1.tokens, g2.tokens, sizeof(int32_t) * g1.n_tokens),
              "prompt %d: same seed, different tokens", i);
        gen_output_free(&g1);
        gen_output_free(&g2);
    }
    /* another seed gives another sample (12 tokens over 256 ids) */
    o.seed = 99;
    CHECK(generate_run(&e1, NULL, &o, 1, &pr[4], &pl[4], NULL, NULL, &g1, &err) == 0, "%s", err.msg);
    CHECK(g1.n_tokens != gb[4].n_tokens || memcmp(g1.tokens, gb[4].tokens, sizeof(int32_t) * g1.n_tokens),
          "seed 99 repeats seed 1234");
    gen_output_free(&g1);
    for (int i = 0; i < NP; i++) gen_output_free(&gb[i]);
    /* bad input: an empty prompt and an id outside the vocabulary are errors */
    int zero = 0, big = 100000;
    const int32_t *bp = &big;
    int one = 1;
    CHECK(generate_run(&e1, NULL, &o, 1, pr, &zero, NULL, NULL, &g1, &err) < 0 && strstr(err.msg, "empty"), "%s", err.msg);
    CHECK(generate_run(&e1, NULL, &o, 1, &bp, &one, NULL, NULL, &g1, &err) < 0 && strstr(err.msg, "vocabulary"), "%s",
          err.msg);
    engine_free(&eb);
    engine_free(&e1);
    model_free(&m);
}

/* The two models of the weight-format tests: k = 0 the tied fixture with MLP biases
 * and GQA; k = 1 a random untied one whose every matrix has a row count that is not a
 * multiple of 16 (a partial panel stays row-major). */
static int load_panel_test_model(hone_model *m, int k) {
    static const char *odd_json =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 40, "
        "\"intermediate_size\": 72, \"num_hidden_layers\": 2, \"num_attention_heads\": 5, \"num_key_value_heads\": 1, "
        "\"vocab_size\": 101, \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": false}";
    if (!k) return load_fixture_model(m, "tiny-llama3-gqa");
    hone_error err = {{0}};
    hone_model_config c;
    if (model_config_parse(&c, odd_json, "odd", &err) < 0 || model_init(m, &c, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    model_init_random(m, 3, 0.5f);
    return 0;
}

/* The test sequence on engine e (slot 0 from position 0): 11 tokens, the first 6 as one
 * prompt chunk when chunked (else every token decoded alone); logits (11, V) into out. */
static void run_sequence(hone_engine *e, int chunked, float *out) {
    int V = e->m->cfg.vocab_size;
    int32_t tk[11] = {3, 17, 5, 120, 9, 44};
    for (int t = 0; t < 11; t++) tk[t] = t < 6 ? tk[t] % V : (int32_t)(((t - 6) * 37 + 11) % V); /* ids in every vocabulary */
    int t0 = 0;
    if (chunked) {
        int32_t sl[6] = {0}, ps[6] = {0, 1, 2, 3, 4, 5}, rows[6] = {0, 1, 2, 3, 4, 5};
        engine_forward(e, 6, tk, sl, ps, 1, 6, rows, out);
        t0 = 6;
    }
    for (int t = t0; t < 11; t++) {
        int32_t slot = 0, pos = t, row = 0;
        engine_forward(e, 1, &tk[t], &slot, &pos, 0, 1, &row, out + (size_t)t * V);
    }
}

/* An engine of 1 slot x 16 positions in weight format fmt; 0 when ready. */
static int open_engine(hone_engine *e, const hone_model *m, int fmt) {
    hone_error err = {{0}};
    if (engine_init(e, m, 1, 16, 8, &err) < 0) { CHECK(0, "%s", err.msg); return -1; }
    if (engine_set_weights(e, fmt, &err) < 0) { CHECK(0, "%s", err.msg); engine_free(e); return -1; }
    return 0;
}

/* Logits of run_sequence (chunked: a 6-token prompt chunk, then 5 decoded) for an engine
 * in weight format fmt; (11, V) into out. */
static int engine_logits(const hone_model *m, int fmt, float *out, int *w16_used) {
    hone_engine e;
    if (open_engine(&e, m, fmt) < 0) return -1;
    *w16_used = e.w16 != NULL;
    run_sequence(&e, 1, out);
    engine_free(&e);
    return 0;
}

/* bf16 engine: engine_logits' sequence, then the model's fp32 matrices released
 * (engine_drop_model_matrices) and the same sequence again on the same engine (the
 * cache positions rewritten): 0 when both equal want bitwise; the model must then
 * refuse to be saved. Leaves the model hollow. */
static int engine_logits_hollowed(hone_model *m, const float *want) {
    hone_error err = {{0}};
    hone_engine e;
    int V = m->cfg.vocab_size, rc = -1;
    if (open_engine(&e, m, HONE_WEIGHTS_AUTO) < 0) return -1;
    float *out = malloc(sizeof(float) * 11 * V);
    for (int pass = 0; pass < 2 && e.w16; pass++) {
        if (pass) engine_drop_model_matrices(&e);
        run_sequence(&e, 1, out);
        if (memcmp(out, want, sizeof(float) * 11 * V)) goto done;
    }
    const char *dir = test_tmpdir("hollow");
    rc = e.w16 && m->hollow && model_save(m, dir, NULL, &err) < 0 && strstr(err.msg, "released") ? 0 : -1;
    hone_remove_tree(dir, NULL);
done:
    free(out);
    engine_free(&e);
    return rc;
}

/* bf16 weights: every matrix product (prompt chunks, decoding, the LM head) runs on
 * bf16 panels. Auto picks bf16 only for a model whose parameters are all bf16 values,
 * where the logits differ from fp32 rows by summation order alone (limit 1e-5 of max
 * |logit|, greedy tokens equal); forcing bf16 on an fp32 model moves them, but by less
 * than 2% of max |logit| (10% for the random model with std 0.5 weights).
 * Models: the fixture with MLP biases and GQA, and a random one whose every matrix
 * has a row count that is not a multiple of 16 (a partial panel stays row-major). */
static void test_bf16_weights(void) {
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "odd-shaped random" : "tiny-llama3-gqa";
        hone_model m;
        if (load_panel_test_model(&m, k) < 0) return;
        size_t V = m.cfg.vocab_size, nl = 11 * V;
        float *a = malloc(sizeof(float) * nl), *b = malloc(sizeof(float) * nl);
        uint16_t *h = malloc(sizeof(uint16_t) * m.num_floats);
        int u32, u16;
        double mx = 0, d = 0;
        /* fp32 model: auto stays fp32; forced bf16 keeps the prompt's logits, moves the rest a little */
        if (engine_logits(&m, HONE_WEIGHTS_F32, a, &u32) < 0 || engine_logits(&m, HONE_WEIGHTS_AUTO, b, &u16) < 0) goto next;
        CHECK(!u32 && !u16 && !memcmp(a, b, sizeof(float) * nl), "%s: auto on fp32 weights must stay fp32", name);
        if (engine_logits(&m, HONE_WEIGHTS_BF16, b, &u16) < 0) goto next;
        for (size_t i = 0; i < nl; i++) { mx = fmax(mx, fabs(a[i])); d = fmax(d, fabs(a[i] - b[i])); }
        /* the odd model's random weights (std 0.5) amplify rounding layer after layer: 10% */
        double lim = k ? 0.1 : 2e-2;
        CHECK(d > 0 && d <= lim * mx, "%s: bf16 logits differ from fp32 by %g (max |logit| %g; limit %g)", name, d, mx, lim);
        /* every parameter a bf16 value: auto picks bf16, same weights, summation order only */
        hone_kt.f32_to_bf16(h, m.data, m.num_floats);
        hone_kt.bf16_to_f32(m.data, h, m.num_floats);
        if (engine_logits(&m, HONE_WEIGHTS_F32, a, &u32) < 0 || engine_logits(&m, HONE_WEIGHTS_AUTO, b, &u16) < 0) goto next;
        mx = d = 0;
        for (size_t i = 0; i < nl; i++) { mx = fmax(mx, fabs(a[i])); d = fmax(d, fabs(a[i] - b[i])); }
        CHECK(u16 && d <= 1e-5 * mx,
              "%s: auto on bf16 values: %s, decoded logits differ by %g (max |logit| %g; limit 1e-5)", name,
              u16 ? "bf16" : "did not pick bf16", d, mx);
        /* the fp32 matrices released after the copy is made, then as it is made: the same logits */
        float *keep = malloc(sizeof(float) * m.num_floats), *c = malloc(sizeof(float) * nl);
        memcpy(keep, m.data, sizeof(float) * m.num_floats);
        CHECK(engine_logits_hollowed(&m, b) == 0, "%s: logits after releasing the fp32 matrices differ", name);
        memcpy(m.data, keep, sizeof(float) * m.num_floats);
        m.hollow = 0;
        CHECK(engine_logits(&m, HONE_WEIGHTS_AUTO | HONE_WEIGHTS_RELEASE, c, &u16) == 0 && u16 && m.hollow &&
                  !memcmp(b, c, sizeof(float) * nl),
              "%s: auto with the fp32 matrices released as they are copied: other logits", name);
        {
            hone_engine e;
            hone_error err = {{0}};
            if (engine_init(&e, &m, 1, 8, 0, &err) == 0) {
                CHECK(engine_set_weights(&e, HONE_WEIGHTS_AUTO, &err) < 0 && strstr(err.msg, "released"),
                      "%s: a second copy from released matrices", name);
                engine_free(&e);
            }
        }
        free(keep);
        free(c);
        for (int t = 6; t < 11; t++) { /* greedy picks agree */
            int i32 = 0, i16 = 0;
            for (size_t v = 1; v < V; v++) {
                if (a[t * V + v] > a[t * V + i32]) i32 = (int)v;
                if (b[t * V + v] > b[t * V + i16]) i16 = (int)v;
            }
            CHECK(i32 == i16, "%s: position %d: greedy token %d (fp32) vs %d (bf16)", name, t, i32, i16);
        }
    next:
        free(a);
        free(b);
        free(h);
        model_free(&m);
    }
}

/* Logits of run_sequence with every token decoded alone. */
static int engine_logits_decoded(const hone_model *m, int fmt, float *out) {
    hone_engine e;
    if (open_engine(&e, m, fmt) < 0) return -1;
    run_sequence(&e, 0, out);
    engine_free(&e);
    return 0;
}

/* fp32 panels (the model's matrices permuted in place): logits within 1e-5 of max
 * |logit| of the row-major engine, a prompt chunk's logits bitwise those of the same
 * tokens decoded one by one, and the permuted model refuses to be saved or to serve a
 * row-major engine. The tied fixture (embedding lookups from the head's panels) and the
 * odd-shaped untied model (partial panels). */
static void test_f32_panels(void) {
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "odd-shaped random" : "tiny-llama3-gqa";
        hone_model m;
        hone_error err = {{0}};
        if (load_panel_test_model(&m, k) < 0) return;
        size_t V = m.cfg.vocab_size, nl = 11 * V;
        float *a = malloc(sizeof(float) * nl), *b = malloc(sizeof(float) * nl), *c1 = malloc(sizeof(float) * nl);
        int u;
        double mx = 0, d = 0;
        if (engine_logits(&m, HONE_WEIGHTS_F32, a, &u) < 0 || engine_logits(&m, HONE_WEIGHTS_F32_PANELS, b, &u) < 0 ||
            engine_logits_decoded(&m, HONE_WEIGHTS_F32_PANELS, c1) < 0)
            goto next;
        for (size_t i = 0; i < nl; i++) { mx = fmax(mx, fabs(a[i])); d = fmax(d, fabs(a[i] - b[i])); }
        CHECK(m.panels && d <= 1e-5 * mx, "%s: panels vs rows: %g (max |logit| %g; limit 1e-5)", name, d, mx);
        CHECK(!memcmp(b, c1, sizeof(float) * nl), "%s: prompt-chunk and decoded logits differ", name);
        { /* five prompts decoded together (four inputs per panel load) = each alone, bitwise */
            enum { NP = 5 };
            int32_t pb[NP][4];
            const int32_t *pr[NP];
            int pl[NP];
            for (int i = 0; i < NP; i++) {
                pl[i] = 1 + i % 4;
                for (int j = 0; j < pl[i]; j++) pb[i][j] = (int32_t)((7 * i + 3 * j + 1) % V);
                pr[i] = pb[i];
            }
            hone_gen_options o;
            gen_options_defaults(&o);
            o.max_new_tokens = 6;
            o.s.temperature = 0.8f;
            o.seed = 5;
            hone_engine eb, e1;
            hone_gen_output gb[NP], g1;
            if (engine_init(&eb, &m, NP, 32, 0, &err) == 0 && engine_set_weights(&eb, HONE_WEIGHTS_F32_PANELS, &err) == 0 &&
                engine_init(&e1, &m, 1, 32, 0, &err) == 0 && engine_set_weights(&e1, HONE_WEIGHTS_F32_PANELS, &err) == 0 &&
                generate_run(&eb, NULL, &o, NP, pr, pl, NULL, NULL, gb, &err) == 0) {
                for (int i = 0; i < NP; i++) {
                    CHECK(generate_run(&e1, NULL, &o, 1, &pr[i], &pl[i], NULL, NULL, &g1, &err) == 0, "%s", err.msg);
                    CHECK(g1.n_tokens == gb[i].n_tokens && !memcmp(g1.tokens, gb[i].tokens, sizeof(int32_t) * g1.n_tokens),
                          "%s: prompt %d batched and alone differ", name, i);
                    gen_output_free(&g1);
                    gen_output_free(&gb[i]);
                }
                engine_free(&eb);
                engine_free(&e1);
            } else {
                CHECK(0, "%s: %s", name, err.msg);
            }
        }
        const char *dir = test_tmpdir("panels");
        CHECK(model_save(&m, dir, NULL, &err) < 0 && strstr(err.msg, "permuted"), "saving a permuted model: %s", err.msg);
        hone_remove_tree(dir, NULL);
        hone_engine e;
        if (engine_init(&e, &m, 1, 8, 0, &err) == 0) {
            CHECK(engine_set_weights(&e, HONE_WEIGHTS_F32, &err) < 0, "row-major engine on a permuted model");
            engine_free(&e);
        }
    next:
        free(a);
        free(b);
        free(c1);
        model_free(&m);
    }
}

/* reuse_prefix: a prompt that extends what the slot's cache holds (the previous
 * prompt and the tokens generated for it) runs only the new tokens, and greedy
 * decoding gives the tokens of a fresh engine. */
static void test_prefix_reuse(void) {
    hone_model m;
    if (load_fixture_model(&m, "tiny-llama3-gqa") < 0) return;
    hone_error err = {{0}};
    hone_engine e1, e2;
    if (engine_init(&e1, &m, 1, 64, 0, &err) < 0 || engine_init(&e2, &m, 1, 64, 0, &err) < 0) {
        CHECK(0, "%s", err.msg);
        model_free(&m);
        return;
    }
    hone_gen_options o;
    gen_options_defaults(&o);
    o.max_new_tokens = 8;
    o.reuse_prefix = 1;
    int32_t p[32] = {5, 9, 200, 31, 77};
    int pl = 5;
    const int32_t *pp = p;
    hone_gen_output g1, g2, g3;
    CHECK(generate_run(&e1, NULL, &o, 1, &pp, &pl, NULL, NULL, &g1, &err) == 0, "%s", err.msg);
    CHECK(g1.cached_tokens == 0 && g1.n_tokens == 8, "first run: cached %d, %d tokens", g1.cached_tokens, g1.n_tokens);
    int ql = 5;
    for (int i = 0; i < g1.n_tokens; i++) p[ql++] = g1.tokens[i];
    p[ql++] = 11;
    p[ql++] = 12;
    CHECK(generate_run(&e1, NULL, &o, 1, &pp, &ql, NULL, NULL, &g2, &err) == 0, "%s", err.msg);
    /* the last generated token was never fed back: 5 + 7 positions are reusable */
    CHECK(g2.cached_tokens == 12, "extended prompt: %d tokens cached, want 12", g2.cached_tokens);
    o.reuse_prefix = 0;
    CHECK(generate_run(&e2, NULL, &o, 1, &pp, &ql, NULL, NULL, &g3, &err) == 0, "%s", err.msg);
    CHECK(g3.cached_tokens == 0 && g3.n_tokens == g2.n_tokens && !memcmp(g2.tokens, g3.tokens, sizeof(int32_t) * g2.n_tokens),
          "reused-prefix and fresh greedy generations differ");
    gen_output_free(&g2);
    /* the same prompt again: everything but its last token is cached */
    o.reuse_prefix = 1;
    CHECK(generate_run(&e1, NULL, &o, 1, &pp, &ql, NULL, NULL, &g2, &err) == 0, "%s", err.msg);
    CHECK(g2.cached_tokens == ql - 1 && !memcmp(g2.tokens, g3.tokens, sizeof(int32_t) * g3.n_tokens),
          "repeated prompt: cached %d of %d, tokens %s", g2.cached_tokens, ql, memcmp(g2.tokens, g3.tokens, 4) ? "differ" : "equal");
    /* a different first token: nothing to reuse */
    p[0] = 6;
    gen_output_free(&g2);
    CHECK(generate_run(&e1, NULL, &o, 1, &pp, &ql, NULL, NULL, &g2, &err) == 0 && g2.cached_tokens == 0, "changed prompt: cached %d",
          g2.cached_tokens);
    gen_output_free(&g1);
    gen_output_free(&g2);
    gen_output_free(&g3);
    engine_free(&e1);
    engine_free(&e2);
    model_free(&m);
}

static void test_processors_match_transformers(void) {
    json_error_t je;
    json_t *root = json_load_file(test_src("tests/fixtures/sampling.json"), 0, &je);
    if (!root) { CHECK(0, "sampling.json: %s", je.text); return; }
    int V = (int)json_integer_value(json_object_get(root, "V"));
    hone_sampler sp;
    hone_error err = {{0}};
    sampler_init(&sp, V, &err);
    float *lg = malloc(sizeof(float) * V);
    uint8_t *seen = calloc(V, 1);
    size_t ci;
    json_t *cs;
    json_array_foreach(json_object_get(root, "cases"), ci, cs) {
        json_t *st = json_object_get(cs, "settings");
        hone_sampling s;
        s.temperature = (float)json_real_value(json_object_get(st, "temperature"));
        s.top_k = (int)json_integer_value(json_object_get(st, "top_k"));
        s.top_p = (float)json_number_value(json_object_get(st, "top_p"));
        s.min_p = (float)json_number_value(json_object_get(st, "min_p"));
        s.repetition_penalty = (float)json_number_value(json_object_get(st, "repetition_penalty"));
        memset(seen, 0, V);
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(cs, "history"), i, x) seen[json_integer_value(x)] = 1;
        json_array_foreach(json_object_get(cs, "logits"), i, x) lg[i] = (float)json_real_value(x);
        sampling_process(&s, &sp, lg, seen);
        int kept = 0;
        json_array_foreach(json_object_get(cs, "expected"), i, x) {
            if (json_is_null(x)) {
                CHECK(lg[i] == -INFINITY, "case %zu token %zu: kept (%g) but transformers removes it", ci, i, lg[i]);
            } else {
                kept++;
                CHECK_CLOSE(lg[i], json_real_value(x), 1e-6, 1e-6, "processed logit");
            }
        }
        /* a draw only ever picks a kept token */
        hone_rng r;
        rng_seed(&r, ci);
        for (int d = 0; d < 50; d++) {
            int32_t t = sampling_pick(&s, lg, V, &r);
            CHECK(!json_is_null(json_array_get(json_object_get(cs, "expected"), t)), "case %zu drew removed token %d", ci, t);
        }
        (void)kept;
    }
    /* greedy ignores the warpers but applies the repetition penalty */
    hone_sampling g;
    sampling_defaults(&g);
    g.repetition_penalty = 2.0f;
    for (int i = 0; i < V; i++) lg[i] = 0.f;
    lg[3] = 1.0f;
    lg[5] = 0.8f;
    memset(seen, 0, V);
    seen[3] = 1;
    sampling_process(&g, &sp, lg, seen);
    CHECK(sampling_pick(&g, lg, V, NULL) == 5, "penalised argmax");
    free(lg);
    free(seen);
    sampler_free(&sp);
    json_decref(root);
}

/* The commands' JSONL reader names file:line on bad rows; JSON strings are escaped. */
static void test_cli_rows_and_json(void) {
    const char *dir = test_tmpdir("genrows");
    char path[512];
    snprintf(path, sizeof path, "%s/p.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"prompt\": \"a\\nb\", \"x\": 1}\n\n{\"prompt\": 5}\n", f);
    fclose(f);
    const char *key = "prompt";
    char **rows = NULL;
    int n = 0;
    hone_error err = {{0}};
    CHECK(gen_read_rows(path, &key, NULL, 1, &rows, &n, &err) < 0 && strstr(err.msg, "p.jsonl:3") &&
              strstr(err.msg, "must be a string"),
          "error: %s", err.msg);
    f = fopen(path, "w");
    fputs("{\"prompt\": \"a\\nb\\\"c\"}\n", f);
    fclose(f);
    CHECK(gen_read_rows(path, &key, NULL, 1, &rows, &n, &err) == 0 && n == 1 && !strcmp(rows[0], "a\nb\"c"), "%s", err.msg);
    char buf[64] = {0};
    FILE *m = fmemopen(buf, sizeof buf, "w");
    gen_json_string(m, rows[0], strlen(rows[0]));
    fclose(m);
    CHECK(!strcmp(buf, "\"a\\nb\\\"c\""), "escaped: %s", buf);
    gen_rows_free(rows, n, 1);
    hone_remove_tree(dir, NULL);
}

static int file_has(const char *path, const char *needle) {
    char *t = NULL;
    if (hone_read_file(path, &t, NULL, NULL) < 0) return 0;
    int r = strstr(t, needle) != NULL;
    free(t);
    return r;
}

/* hone compare and hone eval on a stories260K directory: escaped pages, same seed
 * gives the same answers, per-pair lines; bad arguments exit non-zero. */
static void test_commands_end_to_end(void) {
    hone_model m;
    hone_tokenizer *tok = NULL;
    if (load_stories(&m, &tok) < 0) return;
    tokenizer_free(tok);
    hone_error err = {{0}};
    const char *dir = test_tmpdir("gencmd");
    char mdir[600], prompts[600], pairs[600], out[600], pp[600], path[700];
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    snprintf(prompts, sizeof prompts, "%s/p.jsonl", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    snprintf(out, sizeof out, "%s/cmp", dir);
    snprintf(pp, sizeof pp, "%s/pp.jsonl", dir);
    const char *spm = test_shared("models/stories260K/tok512.model");
    if (model_save(&m, mdir, NULL, &err) < 0 || spm_convert(spm, mdir, &err) < 0) { CHECK(0, "%s", err.msg); goto out; }
    FILE *f = fopen(prompts, "w");
    fputs("{\"prompt\": \"Tom <b>&\"}\n{\"prompt\": \"Lily | Ben\"}\n", f);
    fclose(f);
    f = fopen(pairs, "w");
    fputs("{\"prompt\": \"Once upon a time,\", \"chosen\": \" there was a girl.\", \"rejected\": \" zq xv.\"}\n", f);
    fclose(f);
    char a0[700], a1[700];
    snprintf(a0, sizeof a0, "a=%s", mdir);
    snprintf(a1, sizeof a1, "b=%s", mdir);
    char *cargv[] = {"compare", "--models", a0, a1, "--prompts", prompts, "--out", out, "--max-new-tokens", "8",
                     "--temperature", "0.8", "--seed", "3", NULL};
    CHECK(cmd_compare(14, cargv) == 0, "hone compare failed");
    snprintf(path, sizeof path, "%s/compare.md", out);
    CHECK(file_has(path, "Tom &lt;b&gt;&amp;") && file_has(path, "Lily \\| Ben"), "compare.md escaping");
    snprintf(path, sizeof path, "%s/compare.html", out);
    CHECK(file_has(path, "Tom &lt;b&gt;&amp;</td>"), "compare.html escaping");
    snprintf(path, sizeof path, "%s/compare.jsonl", out);
    char *t = NULL;
    if (hone_read_file(path, &t, NULL, NULL) == 0) { /* same model, same seed: the two answers agree */
        json_t *row = json_loads(t, JSON_DISABLE_EOF_CHECK, NULL);
        const char *x = json_string_value(json_object_get(row, "a")), *y = json_string_value(json_object_get(row, "b"));
        CHECK(x && y && !strcmp(x, y) && *x, "answers '%s' vs '%s'", x ? x : "", y ? y : "");
        json_decref(row);
        free(t);
    }
    /* chat: two turns from standard input; the second finds the first turn in the cache */
    char in[620], so[620], se[620];
    snprintf(in, sizeof in, "%s/chat.in", dir);
    snprintf(so, sizeof so, "%s/chat.out", dir);
    snprintf(se, sizeof se, "%s/chat.err", dir);
    f = fopen(in, "w");
    fputs("Tom went to the park.\nWhat did he see?\n", f);
    fclose(f);
    fflush(stdout);
    fflush(stderr);
    int o0 = dup(0), o1 = dup(1), o2 = dup(2);
    int chat_rc = -1;
    if (freopen(in, "r", stdin) && freopen(so, "w", stdout) && freopen(se, "w", stderr)) {
        char *chargv[] = {"chat", mdir, "--chat-template", "chatml", "--max-new-tokens", "6", "--stats", NULL};
        chat_rc = cmd_chat(7, chargv);
    }
    fflush(stdout);
    fflush(stderr);
    dup2(o0, 0), dup2(o1, 1), dup2(o2, 2);
    close(o0), close(o1), close(o2);
    clearerr(stdin);
    CHECK(chat_rc == 0, "hone chat failed");
    char *st = NULL;
    int p1 = 0, c1 = -1, p2 = 0, c2 = -1;
    if (hone_read_file(se, &st, NULL, NULL) == 0) {
        const char *l2 = strchr(st, '\n');
        CHECK(sscanf(st, "[prompt %d tokens, %d from the cache", &p1, &c1) == 2 && l2 &&
                  sscanf(l2 + 1, "[prompt %d tokens, %d from the cache", &p2, &c2) == 2,
              "chat --stats: '%s'", st);
        CHECK(c1 == 0 && p2 > p1 && c2 > p1 / 2 && c2 < p2, "turn 1: %d tokens (%d cached), turn 2: %d (%d cached)", p1, c1, p2,
              c2);
        free(st);
    }
    char *eargv[] = {"eval", mdir, "--pairs", pairs, "--ref", mdir, "--out", pp, NULL};
    CHECK(cmd_eval(8, eargv) == 0, "hone eval failed");
    CHECK(file_has(pp, "\"margin\": 0.000000"), "same model and reference: zero margin");
    char *bad1[] = {"eval", mdir, "--pairs", pairs, NULL};
    CHECK(cmd_eval(4, bad1) != 0, "eval without --ref must fail");
    char *bad2[] = {"generate", mdir, "--prompt", "x", "--top-p", "0", NULL};
    CHECK(cmd_generate(6, bad2) != 0, "top-p 0 must fail");
    char *bad3[] = {"compare", "--models", "nodir", "--prompts", prompts, NULL};
    CHECK(cmd_compare(5, bad3) != 0, "NAME=DIR required");
out:
    hone_remove_tree(dir, NULL);
    model_free(&m);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_kv_logits_match_forward);
    TEST_RUN(test_bf16_weights);
    TEST_RUN(test_f32_panels);
    TEST_RUN(test_prefix_reuse);
    TEST_RUN(test_processors_match_transformers);
    TEST_RUN(test_stop_string_helpers);
    TEST_RUN(test_batched_equals_single_and_seed);
    TEST_RUN(test_stories_greedy_and_stop_strings);
    TEST_RUN(test_byte_fallback_utf8_stream);
    TEST_RUN(test_cli_rows_and_json);
    TEST_RUN(test_commands_end_to_end);
    return test_finish();
}
