/* export/import.c — GGUF -> hone model / Hugging Face directory (export.h): the architecture
 * keys back into a config.json, every tensor dequantised to fp32 under its Hugging Face name
 * (Llama's q/k rows back to rotate_half order, Gemma's norms back to w), the tokenizer keys
 * back into tokenizer.json (gguf_vocab_hf.c). */
#include "export/export.h"
#include "export/gguf.h"
#include "export/gguf_vocab.h"
#include "simd/ggml_quant.h"
#include "base/util.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Llama-3 RoPE scaling back from rope_freqs (one factor per frequency, as export writes it): the
 * factors depend on (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings)
 * only through factor and two ratios, so low_freq_factor is taken as 1 (Meta's value) and the
 * rest solved from the transitional factors (high_freq_factor 4 assumed when fewer than two);
 * the solution must reproduce every factor within 1e-5 or the file is refused. */
static void llama3_factors(float *out, int D, double theta, double factor, double lo, double hi, double old) {
    for (int i = 0; i < D / 2; i++) {
        float freq = (float)(1.0 / pow(theta, (double)(float)((float)(2 * i) / (float)D)));
        double wl = 2 * M_PI / freq;
        if (wl < old / hi) out[i] = 1.0f;
        else if (wl > old / lo) out[i] = (float)factor;
        else {
            double s = (old / wl - lo) / (hi - lo);
            out[i] = (float)(1.0 / ((1 - s) / factor + s));
        }
    }
}

static int llama3_params(json_t *o, const gguf_tensor *rf, int64_t D, double theta, const char *path, hone_error *err) {
    if (rf->type != GGML_T_F32 || rf->n_dims != 1 || rf->ne[0] != D / 2 || D > 1024)
        return hone_fail(err, "%s: tensor 'rope_freqs.weight' must be f32 of head_dim / 2 = %lld values", path, (long long)(D / 2));
    float f[512], g[512];
    memcpy(f, rf->data, sizeof(float) * (size_t)(D / 2));
    double factor = 1;
    for (int i = 0; i < D / 2; i++) factor = fmax(factor, f[i]);
    /* s = (1/f - 1/factor) / (1 - 1/factor) = A * freq + B on the transitional frequencies */
    double fr[2], sv[2];
    int nt = 0;
    for (int i = 0; i < D / 2 && nt < 2; i++)
        if (f[i] > 1.0f && f[i] < (float)factor) {
            fr[nt] = 1.0 / pow(theta, (double)(float)((float)(2 * i) / (float)D));
            sv[nt++] = (1 / f[i] - 1 / factor) / (1 - 1 / factor);
        }
    double lo = 1, hi = 4, old = 8192;
    if (nt == 2 && fr[0] != fr[1]) {
        double A = (sv[0] - sv[1]) / (fr[0] - fr[1]), B = sv[0] - A * fr[0];
        if (B < 0) { hi = 1 - 1 / B; old = A * 2 * M_PI * (hi - lo); }
    } else if (nt == 1) {
        double B = -lo / (hi - lo), A = (sv[0] - B) / fr[0];
        old = A * 2 * M_PI * (hi - lo);
    } else { /* no transition: any context between the two boundaries; the midpoint */
        double wl_hi = 0, wl_lo = 1e300;
        for (int i = 0; i < D / 2; i++) {
            double wl = 2 * M_PI * pow(theta, (double)(float)((float)(2 * i) / (float)D));
            if (f[i] == 1.0f) wl_hi = fmax(wl_hi, wl);
            else wl_lo = fmin(wl_lo, wl);
        }
        old = wl_lo < 1e300 ? 0.5 * (wl_hi * hi + wl_lo * lo) : 8192;
    }
    old = round(old);
    llama3_factors(g, (int)D, theta, factor, lo, hi, old);
    for (int i = 0; i < D / 2; i++)
        if (fabs(g[i] - f[i]) > 1e-5 * f[i])
            return hone_fail(err, "%s: tensor 'rope_freqs.weight': factor %d (%g) is not one of Llama-3 RoPE scaling", path, i, f[i]);
    json_object_set_new(o, "rope_scaling", json_pack("{s:s,s:f,s:f,s:f,s:i}", "rope_type", "llama3", "factor", factor, "low_freq_factor", lo,
                                                     "high_freq_factor", hi, "original_max_position_embeddings", (int)old));
    return 0;
}

/* config.json text for the file's architecture keys (model_config_parse validates it) */
static char *config_json(const gguf_file *f, const char *path, const char *arch, hone_error *err) {
    char k[128];
    int64_t C, L, F, H, KV, D, ctx, V;
    double eps, theta = 10000.0;
#define KEY(S) (snprintf(k, sizeof k, "%s." S, arch), k)
    if (gguf_get_int(f, KEY("embedding_length"), &C, path, err) || gguf_get_int(f, KEY("block_count"), &L, path, err) ||
        gguf_get_int(f, KEY("feed_forward_length"), &F, path, err) || gguf_get_int(f, KEY("attention.head_count"), &H, path, err) ||
        gguf_get_float(f, KEY("attention.layer_norm_rms_epsilon"), &eps, path, err))
        return NULL;
    if (H <= 0 || C <= 0) { hone_fail(err, "%s: %s: sizes must be positive", path, KEY("attention.head_count")); return NULL; }
    if (!(eps > 0 && eps < 1)) { hone_fail(err, "%s: %s = %g is not in (0, 1)", path, KEY("attention.layer_norm_rms_epsilon"), eps); return NULL; }
    if (gguf_find(f, KEY("attention.head_count_kv"))) { if (gguf_get_int(f, k, &KV, path, err)) return NULL; } else KV = H;
    if (gguf_find(f, KEY("attention.key_length"))) { if (gguf_get_int(f, k, &D, path, err)) return NULL; } else D = C / H;
    if (gguf_find(f, KEY("context_length"))) { if (gguf_get_int(f, k, &ctx, path, err)) return NULL; } else ctx = 2048;
    if (gguf_find(f, KEY("rope.freq_base")) && gguf_get_float(f, k, &theta, path, err)) return NULL;
    if (!(theta > 0 && theta < 1e30)) { hone_fail(err, "%s: %s = %g is not a RoPE base", path, KEY("rope.freq_base"), theta); return NULL; }
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2) { hone_fail(err, "%s: tensor 'token_embd.weight' is missing or not a matrix", path); return NULL; }
    V = emb->ne[1];
    json_t *o = json_object();
    const gguf_tensor *rf = gguf_find_tensor(f, "rope_freqs.weight");
    if (rf && llama3_params(o, rf, D, theta, path, err) < 0) { json_decref(o); return NULL; }
    const char *archs = !strcmp(arch, "gemma") ? "GemmaForCausalLM" : !strcmp(arch, "qwen2") ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
    json_object_set_new(o, "architectures", json_pack("[s]", archs));
    json_object_set_new(o, "model_type", json_string(arch));
    json_object_set_new(o, "vocab_size", json_integer(V));
    json_object_set_new(o, "hidden_size", json_integer(C));
    json_object_set_new(o, "intermediate_size", json_integer(F));
    json_object_set_new(o, "num_hidden_layers", json_integer(L));
    json_object_set_new(o, "num_attention_heads", json_integer(H));
    json_object_set_new(o, "num_key_value_heads", json_integer(KV));
    json_object_set_new(o, "head_dim", json_integer(D));
    json_object_set_new(o, "max_position_embeddings", json_integer(ctx));
    json_object_set_new(o, "rms_norm_eps", json_real((float)eps));
    json_object_set_new(o, "rope_theta", json_real((float)theta));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(!gguf_find_tensor(f, "output.weight")));
    if (!strcmp(arch, "llama"))
        json_object_set_new(o, "attention_bias", json_boolean(gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL));
    if (!strcmp(arch, "gemma")) json_object_set_new(o, "hidden_activation", json_string("gelu_pytorch_tanh"));
    if (gguf_find(f, KEY("rope.scaling.type"))) {
        char st[32];
        double fac;
        if (gguf_get_str(f, k, st, sizeof st, path, err)) { json_decref(o); return NULL; }
        if (!strcmp(st, "linear")) {
            if (gguf_get_float(f, KEY("rope.scaling.factor"), &fac, path, err)) { json_decref(o); return NULL; }
            if (!(fac > 0 && fac < 1e30)) { hone_fail(err, "%s: %s = %g is not a scaling factor", path, k, fac); json_decref(o); return NULL; }
            json_object_set_new(o, "rope_scaling", json_pack("{s:s,s:f}", "rope_type", "linear", "factor", fac));
        } else if (strcmp(st, "none")) {
            hone_fail(err, "%s: %s.rope.scaling.type '%s' is not supported (none, linear)", path, arch, st);
            json_decref(o);
            return NULL;
        }
    }
#undef KEY
    static const char *ids[][2] = {{"tokenizer.ggml.bos_token_id", "bos_token_id"}, {"tokenizer.ggml.eos_token_id", "eos_token_id"},
                                   {"tokenizer.ggml.padding_token_id", "pad_token_id"}};
    for (int i = 0; i < 3; i++) {
        int64_t id;
        if (gguf_find(f, ids[i][0]) && gguf_get_int(f, ids[i][0], &id, path, NULL) == 0 && id >= 0 && id < V)
            json_object_set_new(o, ids[i][1], json_integer(id));
    }
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) hone_fail(err, "out of memory");
    return s;
}

/* tensor name (GGUF) of Hugging Face parameter hf, with the transform it needs */
static int gguf_name(const char *hf, char *out, size_t n, const char **what) {
    static const struct { const char *hf, *g; } map[] = {
        {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"self_attn.o_proj.bias", "attn_output.bias"},
        {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"}};
    *what = NULL;
    if (!strcmp(hf, "model.embed_tokens.weight")) return snprintf(out, n, "token_embd.weight"), 0;
    if (!strcmp(hf, "model.norm.weight")) return snprintf(out, n, "output_norm.weight"), 0;
    if (!strcmp(hf, "lm_head.weight")) return snprintf(out, n, "output.weight"), 0;
    int l, pos = 0;
    if (sscanf(hf, "model.layers.%d.%n", &l, &pos) != 1 || !pos) return -1;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(hf + pos, map[i].hf)) {
            snprintf(out, n, "blk.%d.%s", l, map[i].g);
            *what = map[i].hf;
            return 0;
        }
    return -1;
}

int import_gguf_model(hone_model *m, const char *path, hone_error *err) {
    gguf_file f;
    if (gguf_load(&f, path, err) < 0) return -1;
    int rc = -1;
    char arch[32];
    char *cj = NULL;
    float *row = NULL;
    memset(m, 0, sizeof *m);
    if (gguf_get_str(&f, "general.architecture", arch, sizeof arch, path, err)) goto out;
    if (strcmp(arch, "llama") && strcmp(arch, "gemma") && strcmp(arch, "qwen2")) {
        hone_fail(err, "%s: general.architecture '%s': hone imports llama, gemma and qwen2", path, arch);
        goto out;
    }
    if (!(cj = config_json(&f, path, arch, err))) goto out;
    hone_model_config c;
    if (model_config_parse(&c, cj, path, err) < 0) goto out;
    /* every parameter is in the file at 4.5 bits or more: keys claiming more than the bytes can
     * hold are refused before the parameters are allocated */
    if (model_config_num_params(&c) > 2 * f.len) {
        hone_fail(err, "%s: the architecture keys describe %zu parameters, more than the file's %zu bytes can hold", path,
                  model_config_num_params(&c), f.len);
        goto out;
    }
    if (model_init(m, &c, err) < 0) goto out;
    int llama = !strcmp(arch, "llama"), gemma = !strcmp(arch, "gemma");
    uint64_t used = 0;
    for (int i = 0; i < m->n_params; i++) {
        const hone_param *p = &m->params[i];
        char gn[128];
        const char *what;
        if (gguf_name(p->name, gn, sizeof gn, &what) < 0) { hone_fail(err, "%s: no GGUF tensor for parameter '%s'", path, p->name); goto fail; }
        const gguf_tensor *t = gguf_find_tensor(&f, gn);
        if (!t && !strcmp(gn, "output.weight")) continue; /* tied */
        if (!t) { hone_fail(err, "%s: tensor '%s' is missing", path, gn); goto fail; }
        used++;
        int64_t rows = p->ndim == 2 ? p->shape[0] : 1, cols = p->ndim == 2 ? p->shape[1] : p->shape[0];
        if (t->n_dims != p->ndim || t->ne[0] != cols || (p->ndim == 2 && t->ne[1] != rows)) {
            hone_fail(err, "%s: tensor '%s': shape (%lld, %lld), the configuration needs (%lld, %lld)", path, gn, (long long)t->ne[0],
                      (long long)t->ne[1], (long long)cols, (long long)rows);
            goto fail;
        }
        float *dst = m->data + p->offset;
        if (ggml_dequant_row(t->type, t->data, dst, rows * cols) < 0) {
            hone_fail(err, "%s: tensor '%s': cannot dequantise %s", path, gn, ggml_type_name(t->type));
            goto fail;
        }
        if (gemma && strstr(gn, "norm.weight"))
            for (int64_t j = 0; j < cols; j++) dst[j] -= 1.0f;
        int heads = 0;
        if (llama && what && !strncmp(what, "self_attn.q_proj", 16)) heads = c.num_heads;
        if (llama && what && !strncmp(what, "self_attn.k_proj", 16)) heads = c.num_kv_heads;
        if (heads) { /* interleaved pairs back to rotate_half halves: GGUF row h*hd + 2i + j is HF row h*hd + j*hd/2 + i */
            int64_t R = p->ndim == 2 ? rows : cols, W = p->ndim == 2 ? cols : 1, hd = R / heads;
            row = realloc(row, sizeof(float) * R * W);
            if (!row) { hone_fail(err, "out of memory"); goto fail; }
            memcpy(row, dst, sizeof(float) * R * W);
            for (int64_t r = 0; r < R; r++) {
                int64_t h = r / hd, k = r % hd;
                memcpy(dst + (h * hd + (k % 2) * (hd / 2) + k / 2) * W, row + r * W, sizeof(float) * W);
            }
        }
    }
    if (used + (gguf_find_tensor(&f, "rope_freqs.weight") != NULL) != f.n_tensors) {
        for (uint64_t i = 0; i < f.n_tensors; i++) {
            const gguf_tensor *t = &f.t[i];
            int known = t->name.n == 17 && !memcmp(t->name.s, "rope_freqs.weight", 17);
            for (int j = 0; j < m->n_params && !known; j++) {
                char gn[128];
                const char *what;
                known = gguf_name(m->params[j].name, gn, sizeof gn, &what) == 0 && t->name.n == strlen(gn) && !memcmp(gn, t->name.s, t->name.n);
            }
            if (!known) { hone_fail(err, "%s: tensor '%.*s' has no place in a %s model", path, (int)t->name.n, t->name.s, arch); goto fail; }
        }
    }
    rc = 0;
    goto out;
fail:
    model_free(m);
out:
    free(row);
    free(cj);
    gguf_close(&f);
    return rc;
}

static int write_tokenizer(const char *tmp_dir, void *ctx, hone_error *err) { return vocab_write_hf(ctx, tmp_dir, err); }

int import_gguf(const char *path, const char *out_dir, hone_error *err) {
    hone_model m;
    if (import_gguf_model(&m, path, err) < 0) return -1;
    gguf_file f;
    gguf_vocab v;
    int rc = gguf_load(&f, path, err);
    if (rc == 0) {
        rc = vocab_from_gguf(&v, &f, path, err);
        gguf_close(&f);
    }
    if (rc == 0) {
        rc = model_save_ex(&m, out_dir, NULL, "float32", write_tokenizer, &v, err);
        vocab_free(&v);
    }
    model_free(&m);
    return rc;
}
