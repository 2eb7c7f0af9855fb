/* tokenizer/spm_convert.c — SentencePiece BPE `.model` (a protobuf ModelProto) → tokenizer.json +
 * tokenizer_config.json, the way transformers' LlamaConverter converts a slow Llama
 * tokenizer: vocab = the pieces by id; merges = every split of a piece into two pieces
 * of the vocab, ordered by (piece score descending, left id, right id); normalizer
 * Prepend("▁") + Replace(" " → "▁"); no pre-tokenizer; byte fallback; unk fused;
 * TemplateProcessing adding BOS; decoder Replace/ByteFallback/Fuse/Strip.
 * The protobuf reader knows only the fields it needs (field numbers from
 * sentencepiece_model.proto) and skips the rest. */
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/json.h"
#include "tokenizer/vocab.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct { const uint8_t *p, *e; } pb;

static int pb_varint(pb *b, uint64_t *v) {
    *v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (b->p >= b->e) return -1;
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7F) << s;
        if (!(c & 0x80)) return 0;
    }
    return -1;
}

/* Reads the next field: number, wire type, and for length-delimited ones the payload. */
static int pb_next(pb *b, uint32_t *field, uint32_t *wt, uint64_t *val, pb *sub) {
    uint64_t key;
    if (pb_varint(b, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (uint32_t)(key & 7);
    switch (*wt) {
    case 0: return pb_varint(b, val);
    case 1: if (b->e - b->p < 8) return -1; memcpy(val, b->p, 8); b->p += 8; return 0;
    case 5: { if (b->e - b->p < 4) return -1; uint32_t x; memcpy(&x, b->p, 4); *val = x; b->p += 4; return 0; }
    case 2:
        if (pb_varint(b, val) || *val > (uint64_t)(b->e - b->p)) return -1;
        sub->p = b->p;
        sub->e = b->p + *val;
        b->p += *val;
        return 0;
    default: return -1;
    }
}

enum { PIECE_NORMAL = 1, PIECE_UNKNOWN = 2, PIECE_CONTROL = 3, PIECE_USER = 4, PIECE_UNUSED = 5, PIECE_BYTE = 6 };

typedef struct {
    tok_vocab v;
    float *score; int *type; int32_t n, cap;
    int model_type, byte_fallback, add_dummy_prefix, remove_extra_ws;
    int32_t unk_id, bos_id, eos_id, pad_id;
} spm_model;

static int spm_parse(spm_model *m, const uint8_t *data, size_t n, const char *path, hone_error *err) {
    if (n == 0) return hone_fail(err, "%s: empty file, not a SentencePiece model", path); /* and data may be NULL */
    pb b = {data, data + n}, s;
    uint32_t f, wt;
    uint64_t v;
    m->model_type = 1; /* UNIGRAM unless said otherwise */
    m->add_dummy_prefix = 1;
    m->remove_extra_ws = 1;
    m->unk_id = 0; m->bos_id = 1; m->eos_id = 2; m->pad_id = -1;
    if (tok_vocab_init(&m->v, 1024)) return hone_fail(err, "out of memory");
    while (b.p < b.e) {
        if (pb_next(&b, &f, &wt, &v, &s)) return hone_fail(err, "%s: not a SentencePiece model (bad protobuf)", path);
        if (f == 1 && wt == 2) { /* SentencePiece piece */
            const char *piece = NULL;
            size_t plen = 0;
            float score = 0;
            int type = PIECE_NORMAL;
            pb q;
            while (s.p < s.e) {
                if (pb_next(&s, &f, &wt, &v, &q)) return hone_fail(err, "%s: bad piece %d", path, m->n);
                if (f == 1 && wt == 2) { piece = (const char *)q.p; plen = (size_t)(q.e - q.p); }
                else if (f == 2 && wt == 5) { uint32_t x = (uint32_t)v; memcpy(&score, &x, 4); }
                else if (f == 3 && wt == 0) type = (int)v;
            }
            if (!piece) return hone_fail(err, "%s: piece %d has no text", path, m->n);
            if (m->n == m->cap) {
                m->cap = m->cap ? m->cap * 2 : 1024;
                float *sc = realloc(m->score, (size_t)m->cap * sizeof *sc);
                int *ty = sc ? realloc(m->type, (size_t)m->cap * sizeof *ty) : NULL;
                if (sc) m->score = sc;
                if (!sc || !ty) return hone_fail(err, "out of memory");
                m->type = ty;
            }
            m->score[m->n] = score;
            m->type[m->n] = type;
            if (tok_vocab_set(&m->v, piece, plen, m->n)) return hone_fail(err, "out of memory");
            m->n++;
        } else if (f == 2 && wt == 2) { /* TrainerSpec */
            pb q;
            while (s.p < s.e) {
                if (pb_next(&s, &f, &wt, &v, &q)) return hone_fail(err, "%s: bad trainer_spec", path);
                if (wt != 0) continue;
                if (f == 3) m->model_type = (int)v;
                else if (f == 35) m->byte_fallback = v != 0;
                else if (f == 40) m->unk_id = (int32_t)v;
                else if (f == 41) m->bos_id = (int32_t)v;
                else if (f == 42) m->eos_id = (int32_t)v;
                else if (f == 43) m->pad_id = (int32_t)v;
            }
        } else if (f == 3 && wt == 2) { /* NormalizerSpec */
            pb q;
            while (s.p < s.e) {
                if (pb_next(&s, &f, &wt, &v, &q)) return hone_fail(err, "%s: bad normalizer_spec", path);
                if (wt == 0 && f == 3) m->add_dummy_prefix = v != 0;
                if (wt == 0 && f == 4) m->remove_extra_ws = v != 0;
            }
        }
    }
    if (m->n == 0) return hone_fail(err, "%s: not a SentencePiece model (it has no pieces)", path);
    if (m->model_type != 2)
        return hone_fail(err, "%s: SentencePiece model type %d is not BPE (2); only BPE models convert", path, m->model_type);
    return 0;
}

typedef struct { float score; int32_t l, r; } spm_merge;

static int merge_cmp(const void *a, const void *b) {
    const spm_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

static const char *id_piece(const spm_model *m, int32_t id) {
    return id >= 0 && id < m->n ? tok_vocab_str(&m->v, id) : NULL;
}

#define PUT(s) tok_buf_put(&o, s, strlen(s))
#define PUTS(s) tok_json_put_string(&o, s, strlen(s))

int spm_convert_mem(const char *model_path, tok_buf *json, tok_buf *config, hone_error *err) {
    spm_model m;
    memset(&m, 0, sizeof m);
    spm_merge *mg = NULL;
    size_t nmg = 0, cmg = 0;
    tok_buf o = {0}, data = {0};
    int rc = -1;
    FILE *f = fopen(model_path, "rb");
    if (!f) return hone_fail(err, "%s: %s", model_path, strerror(errno));
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (tok_buf_put(&data, chunk, k)) { fclose(f); free(data.p); return hone_fail(err, "out of memory"); }
    int read_errno = ferror(f) ? errno : 0; /* e.g. EISDIR: fopen accepts a directory */
    fclose(f);
    if (read_errno) { free(data.p); return hone_fail(err, "%s: cannot read: %s", model_path, strerror(read_errno)); }
    /* (an empty buffer has no bytes to point at: stop before the parser does arithmetic on NULL) */
    if (data.n == 0) return hone_fail(err, "%s: the file is empty, not a SentencePiece model", model_path);
    if (spm_parse(&m, (const uint8_t *)data.p, data.n, model_path, err)) goto out;
    const char *unk = id_piece(&m, m.unk_id), *bos = id_piece(&m, m.bos_id), *eos = id_piece(&m, m.eos_id);
    if (!unk) { hone_fail(err, "%s: unk_id %d is not a piece", model_path, m.unk_id); goto out; }

    /* merges: every split of a piece into two vocab pieces, at code point boundaries */
    for (int32_t id = 0; id < m.n; id++) {
        const char *s = tok_vocab_str(&m.v, id);
        size_t n = m.v.len[id];
        for (size_t i = 1; i < n; i++) {
            if (((unsigned char)s[i] & 0xC0) == 0x80) continue;
            int32_t l = tok_vocab_get(&m.v, s, i), r = tok_vocab_get(&m.v, s + i, n - i);
            if (l < 0 || r < 0) continue;
            if (nmg == cmg) {
                cmg = cmg ? cmg * 2 : 4096;
                spm_merge *p = realloc(mg, cmg * sizeof *p);
                if (!p) { hone_fail(err, "out of memory"); goto out; }
                mg = p;
            }
            /* LlamaConverter scores unk/bos/eos as 0 */
            float sc = (id == m.unk_id || id == m.bos_id || id == m.eos_id) ? 0.0f : m.score[id];
            mg[nmg++] = (spm_merge){sc, l, r};
        }
    }
    if (nmg) qsort(mg, nmg, sizeof *mg, merge_cmp); /* mg is NULL when no piece splits in two */

    /* tokenizer.json */
    PUT("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    int first = 1;
    for (int32_t id = 0; id < m.n; id++) {
        int special = m.type[id] == PIECE_CONTROL || m.type[id] == PIECE_UNKNOWN;
        if (!special && m.type[id] != PIECE_USER) continue;
        char head[64];
        snprintf(head, sizeof head, "%s\n    {\n      \"id\": %d,\n      \"content\": ", first ? "" : ",", id);
        PUT(head);
        tok_json_put_string(&o, tok_vocab_str(&m.v, id), m.v.len[id]);
        /* unk/bos/eos as the Llama-2 tokenizer.json has them: normalized, special */
        PUT(",\n      \"single_word\": false,\n      \"lstrip\": false,\n      \"rstrip\": false,\n      \"normalized\": ");
        PUT(special ? "true" : "false");
        PUT(",\n      \"special\": ");
        PUT(special ? "true" : "false");
        PUT("\n    }");
        first = 0;
    }
    PUT("\n  ],\n  \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [");
    /* SentencePiece's remove_extra_whitespaces: no leading/trailing spaces, runs become one */
    if (m.remove_extra_ws)
        PUT("{\"type\": \"Replace\", \"pattern\": {\"Regex\": \" {2,}\"}, \"content\": \" \"}, "
            "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"\\\\A \\\\z|\\\\A | \\\\z\"}, \"content\": \"\"}, ");
    if (m.add_dummy_prefix) PUT("{\"type\": \"Prepend\", \"prepend\": \"\xE2\x96\x81\"}, ");
    PUT("{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xE2\x96\x81\"}]},\n");
    PUT("  \"pre_tokenizer\": null,\n  \"post_processor\": ");
    if (bos) {
        PUT("{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": ");
        PUTS(bos);
        PUT(", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [{\"SpecialToken\": {\"id\": ");
        PUTS(bos);
        PUT(", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": ");
        PUTS(bos);
        PUT(", \"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": {");
        PUTS(bos);
        char ids[64];
        snprintf(ids, sizeof ids, ": {\"id\": ");
        PUT(ids);
        PUTS(bos);
        snprintf(ids, sizeof ids, ", \"ids\": [%d], \"tokens\": [", m.bos_id);
        PUT(ids);
        PUTS(bos);
        PUT("]}}},\n");
    } else {
        PUT("null,\n");
    }
    PUT("  \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"\xE2\x96\x81\"}, "
        "\"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}");
    if (m.add_dummy_prefix) PUT(", {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}");
    PUT("]},\n  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ");
    PUTS(unk);
    PUT(",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": true,\n"
        "    \"byte_fallback\": ");
    PUT(m.byte_fallback ? "true" : "false");
    PUT(",\n    \"ignore_merges\": false,\n    \"vocab\": ");
    if (tok_json_put_vocab(&o, &m.v, "    ")) { hone_fail(err, "out of memory"); goto out; }
    PUT(",\n    \"merges\": [");
    for (size_t i = 0; i < nmg; i++) {
        PUT(i ? ",\n      [" : "\n      [");
        tok_json_put_string(&o, tok_vocab_str(&m.v, mg[i].l), m.v.len[mg[i].l]);
        PUT(", ");
        tok_json_put_string(&o, tok_vocab_str(&m.v, mg[i].r), m.v.len[mg[i].r]);
        PUT("]");
    }
    PUT("\n    ]\n  }\n}\n");
    *json = o;
    memset(&o, 0, sizeof o);

    /* tokenizer_config.json */
    o.n = 0;
    PUT("{\n  \"add_bos_token\": ");
    PUT(bos ? "true" : "false");
    PUT(",\n  \"add_eos_token\": false,\n  \"bos_token\": ");
    if (bos) PUTS(bos); else PUT("null");
    PUT(",\n  \"eos_token\": ");
    if (eos) PUTS(eos); else PUT("null");
    PUT(",\n  \"unk_token\": ");
    PUTS(unk);
    PUT(",\n  \"pad_token\": ");
    if (id_piece(&m, m.pad_id)) PUTS(id_piece(&m, m.pad_id)); else PUT("null");
    /* the class that loads tokenizer.json as is: with "LlamaTokenizer", transformers 5 rebuilds the
     * pipeline from its own rules (repeated spaces, "</s>" inside text tokenize differently) */
    PUT(",\n  \"clean_up_tokenization_spaces\": false,\n  \"legacy\": true,\n  \"tokenizer_class\": \"" HONE_TOKENIZER_HF_CLASS "\"\n}\n");
    *config = o;
    memset(&o, 0, sizeof o);
    rc = 0;
out:
    tok_vocab_free(&m.v);
    free(m.score);
    free(m.type);
    free(mg);
    tok_buf_free(&o);
    tok_buf_free(&data);
    return rc;
}

int spm_convert(const char *model_path, const char *out_dir, hone_error *err) {
    tok_buf json = {0}, cfg = {0};
    int rc = spm_convert_mem(model_path, &json, &cfg, err);
    if (!rc) {
        if (mkdir(out_dir, 0755) && errno != EEXIST) rc = hone_fail(err, "%s: %s", out_dir, strerror(errno));
        else rc = tok_write_file(out_dir, "tokenizer.json", &json, err) || tok_write_file(out_dir, "tokenizer_config.json", &cfg, err) ? -1 : 0;
    }
    tok_buf_free(&json);
    tok_buf_free(&cfg);
    return rc;
}
