/* model/model.c — configuration parsing, the parameter table, and Hugging Face
 * checkpoint loading and saving (model.h). The math is in forward.c/backward.c. */
#include "model/model.h"
#include "model/backend.h"
#include "simd/kernels.h"
#include "base/rng.h"
#include "model/safetensors.h"
#include "model/qweight.h"
#include "base/threads.h"
#include "base/util.h"
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- config.json ---- */

static int get_int(json_t *o, const char *k, int def, int *out, const char *path, hone_error *err) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0); /* eos_token_id lists */
    if (!json_is_integer(v)) return hone_fail(err, "%s: field '%s': expected an integer", path, k);
    *out = (int)json_integer_value(v);
    return 0;
}
static int get_num(json_t *o, const char *k, double def, double *out, const char *path, hone_error *err) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_number(v)) return hone_fail(err, "%s: field '%s': expected a number", path, k);
    *out = json_number_value(v);
    return 0;
}
static int get_bool(json_t *o, const char *k, int def, int *out, const char *path, hone_error *err) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_boolean(v)) return hone_fail(err, "%s: field '%s': expected true or false", path, k);
    *out = json_is_true(v);
    return 0;
}

int model_check_token_ids(const json_t *o, int vocab_size, const char *path, hone_error *err) {
    static const char *const keys[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(o, keys[k]);
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
            if (!json_is_integer(x)) continue; /* absent or null: none; other types fail where read */
            json_int_t id = json_integer_value(x);
            /* -1 is the conventional "none" */
            if (id < -1 || id >= vocab_size)
                return hone_fail(err, "%s: field '%s': token id %lld is outside the vocabulary (0 to %d)", path, keys[k], (long long)id,
                                 vocab_size - 1);
        }
    }
    return 0;
}

int model_config_parse(hone_model_config *c, const char *text, const char *path, hone_error *err) {
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    if (!o) return hone_fail(err, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column, je.text);
    int rc = -1;
    if (!json_is_object(o)) { hone_fail(err, "%s: not a JSON object", path); goto out; }
    json_t *arch = json_object_get(o, "architectures");
    const char *a = json_is_array(arch) && json_is_string(json_array_get(arch, 0)) ? json_string_value(json_array_get(arch, 0)) : NULL;
    json_t *mt = json_object_get(o, "model_type");
    snprintf(c->model_type, sizeof c->model_type, "%s", json_is_string(mt) ? json_string_value(mt) : "");
    if (!a) {
        if (!strcmp(c->model_type, "llama")) a = "LlamaForCausalLM";
        else if (!strcmp(c->model_type, "gemma")) a = "GemmaForCausalLM";
        else if (!strcmp(c->model_type, "qwen2")) a = "Qwen2ForCausalLM";
        else if (!strcmp(c->model_type, "mistral")) a = "MistralForCausalLM";
        else { hone_fail(err, "%s: field 'architectures' is missing and model_type '%s' is not one hone knows", path, c->model_type); goto out; }
    }
    snprintf(c->architecture, sizeof c->architecture, "%s", a);
    int qwen2 = 0;
    if (!strcmp(a, "LlamaForCausalLM") || !strcmp(a, "MistralForCausalLM")) c->arch = HONE_ARCH_LLAMA;
    else if (!strcmp(a, "Qwen2ForCausalLM")) { c->arch = HONE_ARCH_LLAMA; qwen2 = 1; }
    else if (!strcmp(a, "GemmaForCausalLM")) c->arch = HONE_ARCH_GEMMA;
    else {
        hone_fail(err, "%s: field 'architectures': '%s' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                  "Qwen2ForCausalLM, GemmaForCausalLM)", path, a);
        goto out;
    }
    if (!c->model_type[0]) snprintf(c->model_type, sizeof c->model_type, "%s", c->arch == HONE_ARCH_GEMMA ? "gemma" : qwen2 ? "qwen2" : "llama");
    const char *req[] = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"};
    for (int i = 0; i < 5; i++)
        if (!json_is_integer(json_object_get(o, req[i]))) { hone_fail(err, "%s: field '%s': missing or not an integer", path, req[i]); goto out; }
    double theta = 0, eps = 0;
    if (get_int(o, "vocab_size", 0, &c->vocab_size, path, err) || get_int(o, "hidden_size", 0, &c->hidden_size, path, err) ||
        get_int(o, "intermediate_size", 0, &c->intermediate_size, path, err) ||
        get_int(o, "num_hidden_layers", 0, &c->num_layers, path, err) || get_int(o, "num_attention_heads", 0, &c->num_heads, path, err) ||
        get_int(o, "num_key_value_heads", c->num_heads, &c->num_kv_heads, path, err) ||
        get_int(o, "max_position_embeddings", 2048, &c->max_position_embeddings, path, err) ||
        get_num(o, "rms_norm_eps", 1e-6, &eps, path, err) || get_num(o, "rope_theta", 10000.0, &theta, path, err) ||
        get_bool(o, "tie_word_embeddings", c->arch == HONE_ARCH_GEMMA, &c->tie_word_embeddings, path, err) ||
        get_bool(o, "mlp_bias", 0, &c->mlp_bias, path, err) ||
        get_int(o, "bos_token_id", -1, &c->bos_token_id, path, err) || get_int(o, "eos_token_id", -1, &c->eos_token_id, path, err) ||
        get_int(o, "pad_token_id", -1, &c->pad_token_id, path, err))
        goto out;
    c->rms_norm_eps = (float)eps;
    c->rope_theta = theta;
    if (c->num_kv_heads <= 0) c->num_kv_heads = c->num_heads;
    if (get_int(o, "head_dim", c->num_heads ? c->hidden_size / c->num_heads : 0, &c->head_dim, path, err)) goto out;
    if (c->vocab_size <= 0 || c->hidden_size <= 0 || c->intermediate_size <= 0 || c->num_layers <= 0 || c->num_heads <= 0 ||
        c->head_dim <= 0 || c->num_kv_heads <= 0) { hone_fail(err, "%s: sizes must be positive", path); goto out; }
    /* far above any released model; a hostile file must not size the parameter table */
    if (c->num_layers > 4096 || c->num_heads > 4096 || c->vocab_size > 1 << 24 || c->hidden_size > 1 << 18 ||
        c->intermediate_size > 1 << 20) {
        hone_fail(err, "%s: sizes beyond hone's limits (num_hidden_layers %d <= 4096, num_attention_heads %d <= 4096, "
                  "vocab_size %d <= 2^24, hidden_size %d <= 2^18, intermediate_size %d <= 2^20)", path, c->num_layers,
                  c->num_heads, c->vocab_size, c->hidden_size, c->intermediate_size);
        goto out;
    }
    if (c->num_heads % c->num_kv_heads) {
        hone_fail(err, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", path, c->num_heads, c->num_kv_heads);
        goto out;
    }
    if (c->head_dim % 2 || c->head_dim > 512) { hone_fail(err, "%s: head_dim %d must be even and at most 512", path, c->head_dim); goto out; }
    /* values that would give NaN / inf activations or an empty context, or special
     * tokens the embedding has no row for: refused here rather than at generation */
    if (!(eps > 0)) { hone_fail(err, "%s: field 'rms_norm_eps': must be > 0, got %g", path, eps); goto out; }
    if (c->max_position_embeddings <= 0) {
        hone_fail(err, "%s: field 'max_position_embeddings': must be > 0, got %d", path, c->max_position_embeddings);
        goto out;
    }
    if (model_check_token_ids(o, c->vocab_size, path, err) < 0) goto out;
    int attn_bias = 0;
    if (get_bool(o, "attention_bias", 0, &attn_bias, path, err)) goto out;
    c->qkv_bias = qwen2 ? 1 : attn_bias;
    c->o_bias = qwen2 ? 0 : attn_bias;
    if (c->arch == HONE_ARCH_GEMMA) {
        c->norm_offset = 1.0f;
        c->scale_embeddings = 1;
        c->act = HONE_ACT_GELU_TANH;
        json_t *ha = json_object_get(o, "hidden_activation");
        if (!json_is_string(ha)) ha = json_object_get(o, "hidden_act");
        if (json_is_string(ha) && strcmp(json_string_value(ha), "gelu_pytorch_tanh") && strcmp(json_string_value(ha), "gelu")) {
            hone_fail(err, "%s: field 'hidden_activation': '%s' is not supported (gelu_pytorch_tanh)", path, json_string_value(ha));
            goto out;
        }
    } else {
        c->act = HONE_ACT_SILU;
        json_t *ha = json_object_get(o, "hidden_act");
        if (json_is_string(ha) && strcmp(json_string_value(ha), "silu")) {
            hone_fail(err, "%s: field 'hidden_act': '%s' is not supported (silu)", path, json_string_value(ha));
            goto out;
        }
    }
    /* transformers 5 writes "rope_parameters" {rope_type, rope_theta, ...}; older
     * files write rope_theta and rope_scaling at the top level: read both */
    json_t *rs = json_object_get(o, "rope_scaling");
    json_t *rp = json_object_get(o, "rope_parameters");
    if (json_is_object(rp)) {
        if (get_num(rp, "rope_theta", c->rope_theta, &c->rope_theta, path, err)) goto out;
        if (!json_is_object(rs)) rs = rp;
    }
    if (!(c->rope_theta > 0)) { hone_fail(err, "%s: field 'rope_theta': must be > 0, got %g", path, c->rope_theta); goto out; }
    c->rope_type = HONE_ROPE_DEFAULT;
    if (json_is_object(rs)) {
        json_t *t = json_object_get(rs, "rope_type");
        if (!t) t = json_object_get(rs, "type");
        const char *ty = json_is_string(t) ? json_string_value(t) : "default";
        if (get_num(rs, "factor", 1.0, &c->rope_factor, path, err)) goto out;
        if (!strcmp(ty, "llama3")) {
            c->rope_type = HONE_ROPE_LLAMA3;
            if (get_num(rs, "low_freq_factor", 1.0, &c->rope_low_freq_factor, path, err) ||
                get_num(rs, "high_freq_factor", 4.0, &c->rope_high_freq_factor, path, err) ||
                get_int(rs, "original_max_position_embeddings", 8192, &c->rope_original_max_pos, path, err))
                goto out;
        } else if (!strcmp(ty, "linear")) c->rope_type = HONE_ROPE_LINEAR;
        else if (strcmp(ty, "default")) {
            hone_fail(err, "%s: field 'rope_scaling.rope_type': '%s' is not supported (default, linear, llama3)", path, ty);
            goto out;
        }
    }
    json_t *dt = json_object_get(o, "torch_dtype");
    if (!json_is_string(dt)) dt = json_object_get(o, "dtype");
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", json_is_string(dt) ? json_string_value(dt) : "float32");
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int model_config_load(hone_model_config *c, const char *path, hone_error *err) {
    char *text;
    if (hone_read_file(path, &text, NULL, err) < 0) return -1;
    int rc = model_config_parse(c, text, path, err);
    free(text);
    return rc;
}

char *model_config_to_json(const hone_model_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", c->architecture));
    json_object_set_new(o, "model_type", json_string(c->model_type));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->num_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->num_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->num_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_norm_eps));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    if (strcmp(c->model_type, "qwen2")) json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
    if (c->arch == HONE_ARCH_LLAMA && strcmp(c->model_type, "qwen2")) json_object_set_new(o, "mlp_bias", json_boolean(c->mlp_bias));
    if (c->arch == HONE_ARCH_GEMMA) {
        json_object_set_new(o, "hidden_activation", json_string("gelu_pytorch_tanh"));
        json_object_set_new(o, "hidden_act", json_string("gelu_pytorch_tanh"));
    } else json_object_set_new(o, "hidden_act", json_string("silu"));
    if (c->rope_type == HONE_ROPE_LLAMA3)
        json_object_set_new(o, "rope_scaling", json_pack("{s:s,s:f,s:f,s:f,s:i}", "rope_type", "llama3", "factor", c->rope_factor,
                                                         "low_freq_factor", c->rope_low_freq_factor, "high_freq_factor",
                                                         c->rope_high_freq_factor, "original_max_position_embeddings",
                                                         c->rope_original_max_pos));
    else if (c->rope_type == HONE_ROPE_LINEAR)
        json_object_set_new(o, "rope_scaling", json_pack("{s:s,s:f}", "rope_type", "linear", "factor", c->rope_factor));
    else json_object_set_new(o, "rope_scaling", json_null());
    if (c->bos_token_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_token_id));
    if (c->eos_token_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_token_id));
    if (c->pad_token_id >= 0) json_object_set_new(o, "pad_token_id", json_integer(c->pad_token_id));
    json_object_set_new(o, "torch_dtype", json_string(c->torch_dtype[0] ? c->torch_dtype : "float32"));
    json_object_set_new(o, "attention_dropout", json_real(0.0));
    json_object_set_new(o, "use_cache", json_true());
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* ---- parameter table ---- */

typedef struct { hone_param *p; int n, cap; size_t off; } ptab;

static void add_param(ptab *t, const char *name, int64_t d0, int64_t d1, int no_decay) {
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->p = realloc(t->p, sizeof(hone_param) * t->cap);
    }
    hone_param *p = &t->p[t->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = d1 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    p->offset = t->off;
    p->no_decay = no_decay;
    p->qidx = -1;
    t->off += (p->numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
}

static void build_table(const hone_model_config *c, ptab *t) {
    int C = c->hidden_size, F = c->intermediate_size, HD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim;
    char n[128];
    add_param(t, "model.embed_tokens.weight", c->vocab_size, C, 0);
    for (int l = 0; l < c->num_layers; l++) {
#define P(suffix, d0, d1, nd) do { snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix); add_param(t, n, d0, d1, nd); } while (0)
        P("input_layernorm.weight", C, 0, 1);
        P("self_attn.q_proj.weight", HD, C, 0);
        if (c->qkv_bias) P("self_attn.q_proj.bias", HD, 0, 1);
        P("self_attn.k_proj.weight", KD, C, 0);
        if (c->qkv_bias) P("self_attn.k_proj.bias", KD, 0, 1);
        P("self_attn.v_proj.weight", KD, C, 0);
        if (c->qkv_bias) P("self_attn.v_proj.bias", KD, 0, 1);
        P("self_attn.o_proj.weight", C, HD, 0);
        if (c->o_bias) P("self_attn.o_proj.bias", C, 0, 1);
        P("post_attention_layernorm.weight", C, 0, 1);
        P("mlp.gate_proj.weight", F, C, 0);
        if (c->mlp_bias) P("mlp.gate_proj.bias", F, 0, 1);
        P("mlp.up_proj.weight", F, C, 0);
        if (c->mlp_bias) P("mlp.up_proj.bias", F, 0, 1);
        P("mlp.down_proj.weight", C, F, 0);
        if (c->mlp_bias) P("mlp.down_proj.bias", C, 0, 1);
#undef P
    }
    add_param(t, "model.norm.weight", C, 0, 1);
    if (!c->tie_word_embeddings) add_param(t, "lm_head.weight", c->vocab_size, C, 0);
}

size_t model_config_num_params(const hone_model_config *c) {
    ptab t = {0};
    build_table(c, &t);
    size_t n = 0;
    for (int i = 0; i < t.n; i++) n += t.p[i].numel;
    free(t.p);
    return n;
}

const hone_param *model_find_param(const hone_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

int model_weights_view(const hone_model *m, float *base, hone_weights *w, hone_error *err) {
    const hone_model_config *c = &m->cfg;
    memset(w, 0, sizeof *w);
    w->layers = calloc(c->num_layers, sizeof(hone_layer_weights));
    if (!w->layers) return hone_fail(err, "out of memory");
    char n[128];
    /* held (quantised) linears are not in the buffer: NULL, their product goes through m->qw */
#define G(name) (model_find_param(m, name) && model_find_param(m, name)->qidx < 0 ? base + model_find_param(m, name)->offset : NULL)
    w->embed = G("model.embed_tokens.weight");
    for (int l = 0; l < c->num_layers; l++) {
        hone_layer_weights *L = &w->layers[l];
#define LG(field, suffix) do { snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix); L->field = G(n); } while (0)
        LG(ln1, "input_layernorm.weight");
        LG(wq, "self_attn.q_proj.weight"); LG(bq, "self_attn.q_proj.bias");
        LG(wk, "self_attn.k_proj.weight"); LG(bk, "self_attn.k_proj.bias");
        LG(wv, "self_attn.v_proj.weight"); LG(bv, "self_attn.v_proj.bias");
        LG(wo, "self_attn.o_proj.weight"); LG(bo, "self_attn.o_proj.bias");
        LG(ln2, "post_attention_layernorm.weight");
        LG(wg, "mlp.gate_proj.weight"); LG(bg, "mlp.gate_proj.bias");
        LG(wu, "mlp.up_proj.weight"); LG(bu, "mlp.up_proj.bias");
        LG(wd, "mlp.down_proj.weight"); LG(bd, "mlp.down_proj.bias");
#undef LG
    }
    w->norm = G("model.norm.weight");
    w->lm_head = c->tie_word_embeddings ? w->embed : G("lm_head.weight");
#undef G
    return 0;
}

void weights_view_free(hone_weights *w) {
    free(w->layers);
    w->layers = NULL;
}

static void compute_inv_freq(const hone_model_config *c, float *inv) {
    int D = c->head_dim;
    for (int i = 0; i < D / 2; i++) {
        /* as transformers: float32 base ** (2i/D), then 1/x */
        float e = (float)(2 * i) / (float)D;
        float f = 1.0f / powf((float)c->rope_theta, e);
        if (c->rope_type == HONE_ROPE_LINEAR) f /= (float)c->rope_factor;
        else if (c->rope_type == HONE_ROPE_LLAMA3) {
            float factor = (float)c->rope_factor, lo = (float)c->rope_low_freq_factor, hi = (float)c->rope_high_freq_factor;
            float old = (float)c->rope_original_max_pos;
            float low_wl = old / lo, high_wl = old / hi;
            float wl = 2.0f * (float)M_PI / f;
            float g = wl > low_wl ? f / factor : f;
            float smooth = (old / wl - lo) / (hi - lo);
            float smoothed = (1.0f - smooth) * g / factor + smooth * g;
            int medium = !(wl < high_wl) && !(wl > low_wl);
            f = medium ? smoothed : g;
        }
        inv[i] = f;
    }
}

int model_param_table(const hone_model_config *c, hone_param **params, int *n, size_t *num_floats, hone_error *err) {
    ptab t = {0};
    build_table(c, &t);
    if (!t.p) return hone_fail(err, "out of memory");
    *params = t.p;
    *n = t.n;
    *num_floats = t.off;
    return 0;
}

int model_init_held(hone_model *m, const hone_model_config *c, int held, int nested, hone_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->be = backend_cpu();
    ptab t = {0};
    build_table(c, &t);
    m->params = t.p;
    m->n_params = t.n;
    m->num_floats = t.off;
    if (held) m->num_floats = qweight_plan(m, held, nested); /* the linears leave data */
    m->data = hone_alloc(sizeof(float) * (m->num_floats ? m->num_floats : 1), err);
    /* every thread reads every weight: spread them over the NUMA nodes (no-op on one) */
    if (m->data && sizeof(float) * m->num_floats >= ((size_t)4 << 20)) {
        hone_error ignore = {{0}};
        threads_interleave(m->data, sizeof(float) * m->num_floats, &ignore); /* placement only: failure is harmless */
    }
    m->rope_inv_freq = hone_alloc(sizeof(float) * (c->head_dim / 2), err);
    if (!m->data || !m->rope_inv_freq) { model_free(m); return -1; }
    compute_inv_freq(c, m->rope_inv_freq);
    if (model_weights_view(m, m->data, &m->w, err) < 0) { model_free(m); return -1; }
    if (held && qweight_alloc(m, err) < 0) { model_free(m); return -1; }
    return 0;
}

int model_init(hone_model *m, const hone_model_config *c, hone_error *err) { return model_init_held(m, c, 0, 0, err); }

void model_free(hone_model *m) {
    qweight_free(m);
    weights_view_free(&m->w);
    free(m->params);
    free(m->data);
    free(m->rope_inv_freq);
    memset(m, 0, sizeof *m);
}

void model_init_random(hone_model *m, uint64_t seed, float std) {
    hone_rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m->n_params; i++) {
        hone_param *p = &m->params[i];
        if (p->qidx >= 0) continue; /* held linears: random init is for fp32 models */
        float *x = m->data + p->offset;
        int is_norm = strstr(p->name, "norm") != NULL;
        for (size_t j = 0; j < p->numel; j++) {
            if (is_norm) x[j] = m->cfg.norm_offset ? 0.0f : 1.0f;
            else if (p->ndim == 1) x[j] = 0.0f;
            else x[j] = std * rng_normal_f32(&r);
        }
    }
}

/* ---- loading ---- */

static int load_from_file(hone_model *m, const char *path, char *seen, int check_finite, hone_error *err) {
    st_file f;
    if (st_open(&f, path, err) < 0) return -1;
    int rc = 0;
    for (int i = 0; i < f.n && rc == 0; i++) {
        const st_tensor *t = &f.tensors[i];
        const hone_param *p = model_find_param(m, t->name);
        if (!p) {
            if (!strcmp(t->name, "lm_head.weight") && m->cfg.tie_word_embeddings) continue; /* tied copy */
            if (strstr(t->name, "rotary_emb.inv_freq")) continue;
            rc = hone_fail(err, "%s: tensor '%s' is not a parameter of a %s with this config.json", path, t->name, m->cfg.architecture);
            break;
        }
        int ok = (t->ndim == p->ndim) && t->shape[0] == p->shape[0] && (p->ndim == 1 || t->shape[1] == p->shape[1]);
        if (!ok) {
            char got[128] = "", want[128];
            for (int d = 0; d < t->ndim; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            if (p->ndim == 1) snprintf(want, sizeof want, "%lld", (long long)p->shape[0]);
            else snprintf(want, sizeof want, "%lld, %lld", (long long)p->shape[0], (long long)p->shape[1]);
            rc = hone_fail(err, "%s: tensor '%s' has shape (%s) but config.json implies (%s)", path, t->name, got, want);
            break;
        }
        if (p->qidx >= 0) { /* a held linear: converted as it is read */
            if (qweight_load_tensor(m, p, &f, t, check_finite, err) < 0) { rc = -1; break; }
        } else if (st_read_f32(&f, t, m->data + p->offset, err) < 0) { rc = -1; break; }
        if (!m->stored_dtype[0]) /* the stored precision, for save_dtype: auto */
            snprintf(m->stored_dtype, sizeof m->stored_dtype, "%s",
                     t->dtype == ST_BF16 ? "bfloat16" : t->dtype == ST_F16 ? "float16" : "float32");
        seen[p - m->params] = 1;
    }
    st_close(&f);
    return rc;
}

int model_load(hone_model *m, const char *dir, int check_finite, hone_error *err) {
    return model_load_held(m, dir, check_finite, 0, 0, err);
}

int model_load_held(hone_model *m, const char *dir, int check_finite, int held, int nested, hone_error *err) {
    char path[4096];
    hone_model_config c;
    hone_path_join(path, sizeof path, dir, "config.json");
    if (!hone_file_exists(path)) return hone_fail(err, "%s: not a model directory (no config.json)", dir);
    if (model_config_load(&c, path, err) < 0) return -1;
    if (model_init_held(m, &c, held, nested, err) < 0) return -1;
    char *seen = calloc(m->n_params, 1);
    int rc = 0;
    hone_path_join(path, sizeof path, dir, "model.safetensors");
    if (hone_file_exists(path)) rc = load_from_file(m, path, seen, check_finite, err);
    else {
        hone_path_join(path, sizeof path, dir, "model.safetensors.index.json");
        char *text;
        if (hone_read_file(path, &text, NULL, err) < 0) {
            rc = hone_fail(err, "%s: no model.safetensors or model.safetensors.index.json", dir);
        } else {
            json_error_t je;
            json_t *idx = json_loads(text, 0, &je);
            free(text);
            json_t *wm = idx ? json_object_get(idx, "weight_map") : NULL;
            if (!json_is_object(wm)) rc = hone_fail(err, "%s: missing 'weight_map' object", path);
            else {
                /* each shard once, in order of first appearance */
                const char *k;
                json_t *v;
                char **done = calloc(json_object_size(wm) + 1, sizeof(char *));
                int nd = 0;
                json_object_foreach(wm, k, v) {
                    if (rc) break;
                    if (!json_is_string(v)) { rc = hone_fail(err, "%s: weight_map['%s'] is not a file name", path, k); break; }
                    const char *fn = json_string_value(v);
                    if (strchr(fn, '/')) { rc = hone_fail(err, "%s: weight_map['%s'] = '%s' leaves the directory", path, k, fn); break; }
                    int dup = 0;
                    for (int i = 0; i < nd; i++) dup |= !strcmp(done[i], fn);
                    if (dup) continue;
                    done[nd++] = strdup(fn);
                    char shard[4096];
                    hone_path_join(shard, sizeof shard, dir, fn);
                    rc = load_from_file(m, shard, seen, check_finite, err);
                }
                for (int i = 0; i < nd; i++) free(done[i]);
                free(done);
            }
            json_decref(idx);
        }
    }
    for (int i = 0; i < m->n_params && rc == 0; i++)
        if (!seen[i]) rc = hone_fail(err, "%s: tensor '%s' is missing from the checkpoint", dir, m->params[i].name);
    free(seen);
    if (rc == 0 && check_finite) {
        for (int i = 0; i < m->n_params && rc == 0; i++) {
            if (m->params[i].qidx >= 0) continue; /* checked as it was converted */
            const float *x = m->data + m->params[i].offset;
            for (size_t j = 0; j < m->params[i].numel; j++)
                if (!isfinite(x[j])) { rc = hone_fail(err, "%s: tensor '%s' holds a non-finite value at index %zu", dir, m->params[i].name, j); break; }
        }
    }
    if (rc) model_free(m);
    else if (!m->stored_dtype[0]) snprintf(m->stored_dtype, sizeof m->stored_dtype, "float32");
    return rc;
}

/* ---- saving ---- */

static const char *tokenizer_files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "tokenizer.model", "generation_config.json", "chat_template.jinja"};

int model_save(const hone_model *m, const char *dir, const char *src_dir, hone_error *err) {
    return model_save_ex(m, dir, src_dir, "float32", NULL, NULL, err);
}

int model_save_dtype(const hone_model *m, const char *dtype) {
    if (dtype && !strcmp(dtype, "auto")) dtype = m->stored_dtype[0] ? m->stored_dtype : "float32";
    if (!dtype || !strcmp(dtype, "float32")) return ST_F32;
    if (!strcmp(dtype, "bfloat16")) return ST_BF16;
    if (!strcmp(dtype, "float16")) return ST_F16;
    return -1;
}

typedef struct { const hone_model *m; int st_dtype; } save_ctx;

static int fill_model(const char *tmp, void *vctx, hone_error *err) {
    save_ctx *sc = vctx;
    const hone_model *m = sc->m;
    char path[4096];
    hone_model_config written = m->cfg; /* config.json names the dtype of the tensors written */
    snprintf(written.torch_dtype, sizeof written.torch_dtype, "%s",
             sc->st_dtype == ST_BF16 ? "bfloat16" : sc->st_dtype == ST_F16 ? "float16" : "float32");
    char *cfg = model_config_to_json(&written);
    hone_path_join(path, sizeof path, tmp, "config.json");
    int rc = hone_write_file(path, cfg, strlen(cfg), err);
    free(cfg);
    if (rc) return rc;
    st_entry *e = calloc(m->n_params, sizeof(st_entry));
    for (int i = 0; i < m->n_params; i++) {
        e[i].name = m->params[i].name;
        e[i].data = m->data + m->params[i].offset;
        e[i].ndim = m->params[i].ndim;
        e[i].shape[0] = m->params[i].shape[0];
        e[i].shape[1] = m->params[i].shape[1];
    }
    hone_path_join(path, sizeof path, tmp, "model.safetensors");
    rc = st_write(path, e, m->n_params, sc->st_dtype, "{\"format\":\"pt\"}", err);
    free(e);
    return rc;
}

int model_save_ex(const hone_model *m, const char *dir, const char *src_dir, const char *dtype,
                  int (*extra)(const char *tmp_dir, void *ctx, hone_error *err), void *ctx, hone_error *err) {
    if (m->panels || m->hollow)
        return hone_fail(err, "%s: this model's matrices were %s for an inference engine; it cannot be saved", dir,
                         m->panels ? "permuted" : "released");
    if (m->held)
        return hone_fail(err, "%s: this model's linear weights are held as %s (a frozen QLoRA base); a full model is saved "
                              "from an fp32 load (hone merge loads its base in fp32)", dir, quant_type_name(m->held));
    int st_dtype = model_save_dtype(m, dtype);
    if (st_dtype < 0) return hone_fail(err, "%s: save dtype '%s' is not float32, bfloat16, float16 or auto", dir, dtype);
    save_ctx sc = {m, st_dtype};
    return model_write_dir(dir, src_dir, fill_model, &sc, extra, ctx, err);
}

int model_write_dir(const char *dir, const char *src_dir, int (*fill)(const char *tmp_dir, void *ctx, hone_error *err),
                    void *fill_ctx, int (*extra)(const char *tmp_dir, void *ctx, hone_error *err), void *ctx, hone_error *err) {
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", dir, (int)getpid());
    hone_remove_tree(tmp, NULL);
    if (hone_mkdirs(tmp, err) < 0) return -1;
    int rc = fill(tmp, fill_ctx, err);
    for (size_t i = 0; rc == 0 && src_dir && i < sizeof tokenizer_files / sizeof *tokenizer_files; i++) {
        char src[4096];
        hone_path_join(src, sizeof src, src_dir, tokenizer_files[i]);
        if (!hone_file_exists(src)) continue;
        hone_path_join(path, sizeof path, tmp, tokenizer_files[i]);
        rc = hone_copy_file(src, path, err);
    }
    if (rc == 0 && extra) rc = extra(tmp, ctx, err);
    if (rc == 0) {
        hone_fsync_dir(tmp);
        /* an existing dir is set aside, not deleted, until the new one is in place: a
         * crash in between leaves dir.old-PID, which the next training run renames back
         * (train/rundir.c) */
        char old[4096];
        snprintf(old, sizeof old, "%s.old-%d", dir, (int)getpid());
        hone_remove_tree(old, NULL);
        int aside = rename(dir, old) == 0;
        if (rename(tmp, dir) != 0) {
            rc = hone_fail(err, "%s: cannot rename the finished directory into place", dir);
            if (aside) rename(old, dir);
        } else {
            char parent[4096];
            snprintf(parent, sizeof parent, "%s", dir);
            char *sl = strrchr(parent, '/');
            if (sl) { *sl = 0; hone_fsync_dir(parent[0] ? parent : "/"); }
            if (aside) hone_remove_tree(old, NULL);
        }
    }
    if (rc) hone_remove_tree(tmp, NULL);
    return rc;
}

int model_resize_vocab(hone_model *m, int new_vocab, hone_error *err) {
    if (new_vocab <= m->cfg.vocab_size) return 0;
    hone_model_config c = m->cfg;
    int oldV = c.vocab_size, C = c.hidden_size;
    c.vocab_size = new_vocab;
    hone_model n;
    if (model_init_held(&n, &c, m->held, m->held_nested, err) < 0) return -1;
    for (int i = 0; i < m->n_params; i++) {
        const hone_param *p = &m->params[i];
        const hone_param *q = model_find_param(&n, p->name);
        if (p->qidx >= 0) { /* held linears move over (the new model's zeroed ones are freed with m) */
            hone_qtensor t = n.qw[q->qidx];
            n.qw[q->qidx] = m->qw[p->qidx];
            m->qw[p->qidx] = t;
            continue;
        }
        memcpy(n.data + q->offset, m->data + p->offset, sizeof(float) * p->numel);
    }
    /* new rows: the mean of the old rows (transformers' mean resizing samples around
     * that mean with covariance 1e-9 * cov; hone takes the mean itself, deterministic) */
    float *mats[2] = {n.w.embed, c.tie_word_embeddings ? NULL : n.w.lm_head};
    for (int k = 0; k < 2; k++) {
        if (!mats[k]) continue;
        double *mean = calloc(C, sizeof(double));
        for (int r = 0; r < oldV; r++)
            for (int j = 0; j < C; j++) mean[j] += mats[k][(size_t)r * C + j];
        for (int r = oldV; r < new_vocab; r++)
            for (int j = 0; j < C; j++) mats[k][(size_t)r * C + j] = (float)(mean[j] / oldV);
        free(mean);
    }
    memcpy(n.stored_dtype, m->stored_dtype, sizeof n.stored_dtype);
    model_free(m);
    *m = n;
    /* the weights view points into n's data; it moved with the struct copy */
    return 0;
}
