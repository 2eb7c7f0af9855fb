/* export/export.c — hone export gguf / gguf-lora (export.h): the architecture keys, the
 * tensor plan (llama.cpp names, permutations, types) and the streaming write. */
#include "export/export.h"
#include "export/gguf.h"
#include "export/gguf_vocab.h"
#include "simd/ggml_quant.h"
#include "model/lora.h"
#include "base/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int export_ftype(const char *name) {
    static const struct { const char *n; int f; } t[] = {{"f32", FTYPE_F32},   {"f16", FTYPE_F16},   {"bf16", FTYPE_BF16},
                                                         {"q8_0", FTYPE_Q8_0}, {"q4_0", FTYPE_Q4_0}, {"q4_k_m", FTYPE_Q4_K_M}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(name, t[i].n)) return t[i].f;
    return -1;
}

const char *export_arch(const hone_model_config *c, hone_error *err) {
    const char *mt = c->model_type;
    const char *arch = NULL;
    if (c->arch == HONE_ARCH_GEMMA) arch = !strcmp(mt, "gemma") ? "gemma" : NULL;
    else if (!strcmp(mt, "llama") || !strcmp(mt, "mistral")) arch = "llama";
    else if (!strcmp(mt, "qwen2")) arch = "qwen2";
    if (!arch) {
        hone_fail(err, "model_type '%s' (%s): llama.cpp architectures hone exports are llama (and mistral), gemma and qwen2", mt,
                  c->architecture);
        return NULL;
    }
    const char *why = NULL;
    if (c->mlp_bias) why = "MLP biases";
    else if (c->arch == HONE_ARCH_GEMMA && (c->qkv_bias || c->o_bias)) why = "attention biases";
    else if (!strcmp(arch, "qwen2") && (!c->qkv_bias || c->o_bias)) why = "attention biases other than Qwen2's q/k/v ones";
    else if (strcmp(arch, "llama") && c->rope_type != HONE_ROPE_DEFAULT) why = "RoPE scaling";
    else if (strcmp(arch, "gemma") && (c->act != 0 || c->norm_offset != 0 || c->scale_embeddings)) why = "a Gemma-style layer";
    if (why) {
        hone_fail(err, "model_type '%s': llama.cpp's '%s' architecture has no %s", mt, arch, why);
        return NULL;
    }
    return arch;
}

/* llama-quantize's use_more_bits: the first and last eighth of the layers and every third between */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int export_tensor_type(int ftype, const char *name, int n_dims, int64_t ne0, int layer, int n_layer, int tied) {
    if (n_dims < 2) return GGML_T_F32;
    switch (ftype) {
    case FTYPE_F32: return GGML_T_F32;
    case FTYPE_F16: return GGML_T_F16;
    case FTYPE_BF16: return GGML_T_BF16;
    default: break;
    }
    int t = ftype == FTYPE_Q8_0 ? GGML_T_Q8_0 : ftype == FTYPE_Q4_0 ? GGML_T_Q4_0 : GGML_T_Q4_K;
    int is_out = !strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"));
    if (is_out) {
        if (ne0 % 256) t = GGML_T_Q8_0;
        else if (t != GGML_T_Q8_0) t = GGML_T_Q6_K;
    } else if (ftype == FTYPE_Q4_K_M && (strstr(name, "attn_v.weight") || strstr(name, "ffn_down")) &&
               use_more_bits(layer, n_layer)) {
        t = GGML_T_Q6_K;
    }
    if (ne0 % ggml_type_block(t)) { /* k-quants need rows of whole 256-blocks: llama.cpp's fallbacks */
        if (t == GGML_T_Q4_K) t = GGML_T_Q5_0;
        else if (t == GGML_T_Q6_K) t = GGML_T_Q8_0;
        if (ne0 % ggml_type_block(t)) t = GGML_T_F16;
    }
    return t;
}

/* ------------------------------------------------------------------ tensor plan */

typedef struct tplan {
    char name[96];
    const float *src;  /* (rows, cols) row-major, or (cols) */
    int64_t rows, cols;
    int n_dims;
    int perm_heads;    /* > 0: rows permuted from rotate_half to interleaved pairs in heads of rows / perm_heads */
    int add_one;       /* Gemma norm: 1 + w */
    int type;
    float *owned;      /* src when computed here (rope_freqs, B*A products), freed at the end */
} tplan;

typedef struct plan {
    tplan *t;
    int n, cap;
} plan;

static tplan *plan_add(plan *p, const char *name, const float *src, int64_t rows, int64_t cols, int n_dims) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        tplan *t = realloc(p->t, sizeof(tplan) * cap);
        if (!t) return NULL;
        p->t = t;
        p->cap = cap;
    }
    tplan *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->src = src;
    t->rows = rows;
    t->cols = cols;
    t->n_dims = n_dims;
    return t;
}

static void plan_free(plan *p) {
    for (int i = 0; i < p->n; i++) free(p->t[i].owned);
    free(p->t);
    memset(p, 0, sizeof *p);
}

/* source row of destination row r: Hugging Face keeps each head's rotary pairs as halves
 * (i, i + D/2), llama.cpp's Llama as neighbours (2i, 2i + 1) */
static int64_t src_row(const tplan *t, int64_t r) {
    if (t->perm_heads <= 0) return r;
    int64_t hd = t->rows / t->perm_heads, h = r / hd, k = r % hd;
    return h * hd + (k % 2) * (hd / 2) + k / 2;
}

static int produce(void *ctx, void *user, void *buf, size_t nbytes, hone_error *err) {
    (void)ctx;
    const tplan *t = user;
    size_t rb = ggml_row_bytes(t->type, t->cols);
    int bad = 0;
    #pragma omp parallel for schedule(dynamic, 16) reduction(| : bad)
    for (int64_t r = 0; r < t->rows; r++) {
        const float *s = t->src + src_row(t, r) * t->cols;
        float *tmp = NULL;
        if (t->add_one) {
            tmp = malloc(sizeof(float) * t->cols);
            if (!tmp) { bad = 1; continue; }
            for (int64_t j = 0; j < t->cols; j++) tmp[j] = s[j] + 1.0f;
            s = tmp;
        }
        if (ggml_quant_row(t->type, s, (uint8_t *)buf + r * rb, t->cols) < 0) bad = 1;
        free(tmp);
    }
    (void)nbytes;
    return bad ? hone_fail(err, "tensor '%s': cannot be written as %s", t->name, ggml_type_name(t->type)) : 0;
}

/* Llama-3 rope scaling as convert_hf_to_gguf.py writes it: one factor per rotary frequency */
static float *llama3_rope_factors(const hone_model_config *c) {
    int D = c->head_dim;
    float *f = malloc(sizeof(float) * (D / 2));
    if (!f) return NULL;
    double factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
    double old = c->rope_original_max_pos, lo_wl = old / lo, hi_wl = old / hi;
    for (int i = 0; i < D / 2; i++) {
        /* torch: 1 / base ** (arange(0, dim, 2, float32) / dim) in float32 */
        float freq = (float)(1.0 / pow(c->rope_theta, (double)(float)((float)(2 * i) / (float)D)));
        double wl = 2 * M_PI / freq;
        if (wl < hi_wl) f[i] = 1.0f;
        else if (wl > lo_wl) f[i] = (float)factor;
        else {
            double smooth = (old / wl - lo) / (hi - lo);
            f[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
    return f;
}

/* the model's tensors under llama.cpp's names, in layer order */
static int plan_model(plan *p, const hone_model *m, const char *arch, hone_error *err) {
    const hone_model_config *c = &m->cfg;
    const hone_weights *w = &m->w;
    int C = c->hidden_size, F = c->intermediate_size, D = c->head_dim, H = c->num_heads, KV = c->num_kv_heads;
    int llama = !strcmp(arch, "llama"), gemma = !strcmp(arch, "gemma");
    char nm[96];
    tplan *t;
#define ADD(NAME, SRC, ROWS, COLS, ND) \
    if (!(t = plan_add(p, NAME, SRC, ROWS, COLS, ND))) return hone_fail(err, "out of memory")
    ADD("token_embd.weight", w->embed, c->vocab_size, C, 2);
    if (llama && c->rope_type == HONE_ROPE_LLAMA3) {
        float *f = llama3_rope_factors(c);
        if (!f) return hone_fail(err, "out of memory");
        ADD("rope_freqs.weight", f, 1, D / 2, 1);
        t->owned = f;
    }
    for (int l = 0; l < c->num_layers; l++) {
        const hone_layer_weights *lw = &w->layers[l];
#define LNAME(S) (snprintf(nm, sizeof nm, "blk.%d." S, l), nm)
        ADD(LNAME("attn_norm.weight"), lw->ln1, 1, C, 1);
        t->add_one = gemma;
        ADD(LNAME("attn_q.weight"), lw->wq, (int64_t)H * D, C, 2);
        t->perm_heads = llama ? H : 0;
        if (lw->bq) { ADD(LNAME("attn_q.bias"), lw->bq, (int64_t)H * D, 1, 1); t->perm_heads = llama ? H : 0; }
        ADD(LNAME("attn_k.weight"), lw->wk, (int64_t)KV * D, C, 2);
        t->perm_heads = llama ? KV : 0;
        if (lw->bk) { ADD(LNAME("attn_k.bias"), lw->bk, (int64_t)KV * D, 1, 1); t->perm_heads = llama ? KV : 0; }
        ADD(LNAME("attn_v.weight"), lw->wv, (int64_t)KV * D, C, 2);
        if (lw->bv) ADD(LNAME("attn_v.bias"), lw->bv, (int64_t)KV * D, 1, 1);
        ADD(LNAME("attn_output.weight"), lw->wo, C, (int64_t)H * D, 2);
        if (lw->bo) ADD(LNAME("attn_output.bias"), lw->bo, C, 1, 1);
        ADD(LNAME("ffn_norm.weight"), lw->ln2, 1, C, 1);
        t->add_one = gemma;
        ADD(LNAME("ffn_gate.weight"), lw->wg, F, C, 2);
        ADD(LNAME("ffn_up.weight"), lw->wu, F, C, 2);
        ADD(LNAME("ffn_down.weight"), lw->wd, C, F, 2);
#undef LNAME
    }
    ADD("output_norm.weight", w->norm, 1, C, 1);
    t->add_one = gemma;
    if (!c->tie_word_embeddings && !gemma) ADD("output.weight", w->lm_head, c->vocab_size, C, 2);
#undef ADD
    /* a bias is a 1-D tensor of rows values: (1, rows) */
    for (int i = 0; i < p->n; i++)
        if (p->t[i].n_dims == 1 && p->t[i].cols == 1) { p->t[i].cols = p->t[i].rows; p->t[i].rows = 1; }
    return 0;
}

/* 1-D tensors that carry a head permutation (a Llama q/k bias) permute values, not rows */
static int permute_biases(plan *p, hone_error *err) {
    for (int i = 0; i < p->n; i++) {
        tplan *t = &p->t[i];
        if (t->n_dims != 1 || t->perm_heads <= 0) continue;
        float *b = malloc(sizeof(float) * t->cols);
        if (!b) return hone_fail(err, "out of memory");
        tplan rows = *t;
        rows.rows = t->cols;
        for (int64_t r = 0; r < t->cols; r++) b[r] = t->src[src_row(&rows, r)];
        free(t->owned);
        t->owned = b;
        t->src = b;
        t->perm_heads = 0;
    }
    return 0;
}

/* llama.cpp's weight_name_comparer: by layer number (tensors outside the blocks first), then name */
static int by_name(const void *a, const void *b) {
    const char *x = ((const tplan *)a)->name, *y = ((const tplan *)b)->name;
    int lx = -1, ly = -1;
    sscanf(x, "blk.%d.", &lx);
    sscanf(y, "blk.%d.", &ly);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

static void put_arch_keys(gguf_writer *w, const hone_model_config *c, const char *arch, const char *name, int ftype) {
    char k[128];
#define KEY(S) (snprintf(k, sizeof k, "%s." S, arch), k)
    gguf_set_str(w, "general.architecture", arch);
    gguf_set_str(w, "general.type", "model");
    gguf_set_str(w, "general.name", name);
    gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_position_embeddings);
    gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->hidden_size);
    gguf_set_u32(w, KEY("block_count"), (uint32_t)c->num_layers);
    gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->intermediate_size);
    gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->num_heads);
    gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->num_kv_heads);
    gguf_set_f32(w, KEY("rope.freq_base"), (float)c->rope_theta);
    gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_norm_eps);
    gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
    gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
    if (c->rope_type == HONE_ROPE_LINEAR) {
        gguf_set_str(w, KEY("rope.scaling.type"), "linear");
        gguf_set_f32(w, KEY("rope.scaling.factor"), (float)c->rope_factor);
    }
#undef KEY
    gguf_set_u32(w, "general.file_type", (uint32_t)ftype);
    gguf_set_u32(w, "general.quantization_version", 2);
}

static void base_name(const char *dir, char *out, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t s = len;
    while (s > 0 && dir[s - 1] != '/') s--;
    snprintf(out, n, "%.*s", (int)(len - s), dir + s);
}

int export_gguf(const char *dir, const char *out, const char *type, hone_error *err) {
    int ftype = export_ftype(type);
    if (ftype < 0) return hone_fail(err, "--type '%s': one of f32, f16, bf16, q8_0, q4_0, q4_k_m", type);
    hone_model m;
    if (model_load_merged(&m, dir, 1, err) < 0) return -1;
    const char *arch = export_arch(&m.cfg, err);
    if (!arch) { hone_fail_prefix(err, "%s", dir); model_free(&m); return -1; }
    char files[4096];
    lora_files_dir(dir, files, sizeof files);
    gguf_vocab v;
    if (vocab_from_dir(&v, files, &m.cfg, err) < 0) { model_free(&m); return -1; }
    plan p = {0};
    gguf_writer *w = gguf_writer_new();
    int rc = w ? plan_model(&p, &m, arch, err) : hone_fail(err, "out of memory");
    if (rc == 0) rc = permute_biases(&p, err);
    if (rc == 0) {
        int tied = m.cfg.tie_word_embeddings || !strcmp(arch, "gemma");
        char name[256];
        base_name(dir, name, sizeof name);
        put_arch_keys(w, &m.cfg, arch, name, ftype);
        vocab_put(&v, w);
        /* llama-quantize walks the tensors in its loader's order (layer, then name), counting
         * attn_v and ffn_down as it goes: the same order here, in the file too */
        qsort(p.t, p.n, sizeof(tplan), by_name);
        int i_attn_v = 0, i_ffn_down = 0;
        for (int i = 0; rc == 0 && i < p.n; i++) {
            tplan *t = &p.t[i];
            int layer = strstr(t->name, "attn_v.weight") ? i_attn_v++ : strstr(t->name, "ffn_down") ? i_ffn_down++ : 0;
            t->type = export_tensor_type(ftype, t->name, t->n_dims, t->cols, layer, m.cfg.num_layers, tied);
            int64_t ne[2] = {t->cols, t->rows};
            rc = gguf_add_tensor(w, t->name, t->type, t->n_dims, ne, t, err);
        }
    }
    if (rc == 0) rc = gguf_write(w, out, produce, NULL, err);
    gguf_writer_free(w);
    plan_free(&p);
    vocab_free(&v);
    model_free(&m);
    return rc;
}

/* ------------------------------------------------------------------ LoRA adapters */

static const char *lora_gguf_name(int mod) {
    static const char *n[LORA_NMOD] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    return n[mod];
}

int export_gguf_lora(const char *adir, const char *out, hone_error *err) {
    if (!lora_is_adapter_dir(adir)) return hone_fail(err, "%s: not a PEFT adapter directory (no adapter_config.json)", adir);
    hone_lora_config lc;
    if (lora_read_config(&lc, adir, err) < 0) return -1;
    if (lc.save_embed || lc.save_lm_head)
        return hone_fail(err, "%s: modules_to_save (embed_tokens / lm_head copies) cannot be a llama.cpp LoRA adapter; export "
                              "the merged model with `hone export gguf %s OUT.gguf` instead", adir, adir);
    char base[4096];
    if (lora_base_dir(&lc, adir, base, sizeof base, err) < 0) return -1;
    hone_model m;
    if (model_load(&m, base, 1, err) < 0) return -1;
    const char *arch = export_arch(&m.cfg, err);
    hone_lora lo;
    if (!arch || lora_load(&lo, &m, adir, err) < 0) {
        if (!arch) hone_fail_prefix(err, "%s", base);
        model_free(&m);
        return -1;
    }
    int llama = !strcmp(arch, "llama");
    plan p = {0};
    gguf_writer *w = gguf_writer_new();
    int rc = w ? 0 : hone_fail(err, "out of memory");
    for (int l = 0; rc == 0 && l < m.cfg.num_layers; l++)
        for (int mod = 0; rc == 0 && mod < LORA_NMOD; mod++) {
            const hone_lora_pair *pr = &lo.w[l].mod[mod];
            if (!pr->A) continue;
            int in, outd;
            lora_module_dims(&m.cfg, mod, &in, &outd);
            char nm[96];
            /* lora_a (r, in) as is; lora_b (out, r) with the q/k output rows permuted like the base */
            snprintf(nm, sizeof nm, "blk.%d.%s.weight.lora_a", l, lora_gguf_name(mod));
            tplan *t = plan_add(&p, nm, pr->A, lo.cfg.r, in, 2);
            snprintf(nm, sizeof nm, "blk.%d.%s.weight.lora_b", l, lora_gguf_name(mod));
            tplan *u = t ? plan_add(&p, nm, pr->B, outd, lo.cfg.r, 2) : NULL;
            if (!u) { rc = hone_fail(err, "out of memory"); break; }
            if (llama && mod == LORA_Q) u->perm_heads = m.cfg.num_heads;
            if (llama && mod == LORA_K) u->perm_heads = m.cfg.num_kv_heads;
        }
    if (rc == 0) {
        char name[256];
        base_name(adir, name, sizeof name);
        gguf_set_str(w, "general.architecture", arch);
        gguf_set_str(w, "general.type", "adapter");
        gguf_set_str(w, "general.name", name);
        gguf_set_str(w, "adapter.type", "lora");
        /* llama.cpp scales by alpha / r: the alpha that gives PEFT's scale (alpha / sqrt(r) with rslora) */
        gguf_set_f32(w, "adapter.lora.alpha", lo.scale * (float)lo.cfg.r);
        gguf_set_u32(w, "general.file_type", FTYPE_F32);
        gguf_set_u32(w, "general.quantization_version", 2);
        for (int i = 0; rc == 0 && i < p.n; i++) {
            p.t[i].type = GGML_T_F32;
            int64_t ne[2] = {p.t[i].cols, p.t[i].rows};
            rc = gguf_add_tensor(w, p.t[i].name, GGML_T_F32, 2, ne, &p.t[i], err);
        }
    }
    if (rc == 0 && p.n == 0) rc = hone_fail(err, "%s: the adapter has no LoRA tensors", adir);
    if (rc == 0) rc = gguf_write(w, out, produce, NULL, err);
    gguf_writer_free(w);
    plan_free(&p);
    lora_free(&lo);
    model_free(&m);
    return rc;
}
