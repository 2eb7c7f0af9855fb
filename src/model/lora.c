/* model/lora.c — LoRA adapters: the trainable table with PEFT's key names, PEFT's
 * initialisation, the adapter directory (adapter_config.json, adapter_model.safetensors)
 * and merge_and_unload (lora.h). The forward and backward math is in layers.c
 * (lora_forward / lora_backward), wired per linear in transformer.c. */
#include "model/lora.h"
#include "simd/quant.h"
#include "model/safetensors.h"
#include "simd/kernels.h"
#include "base/rng.h"
#include "base/util.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(LORA_NMOD == sizeof(((hone_lora_layer *)0)->mod) / sizeof(hone_lora_pair), "hone_lora_layer holds LORA_NMOD pairs");

static const char *const mod_names[LORA_NMOD] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

const char *lora_module_name(int mod) { return mod >= 0 && mod < LORA_NMOD ? mod_names[mod] : "?"; }

int lora_module_from_name(const char *name) {
    for (int i = 0; i < LORA_NMOD; i++)
        if (!strcmp(name, mod_names[i])) return i;
    return -1;
}

void lora_module_dims(const hone_model_config *c, int mod, int *in, int *out) {
    int C = c->hidden_size, F = c->intermediate_size, HD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim;
    switch (mod) {
    case LORA_Q: *in = C; *out = HD; break;
    case LORA_K: case LORA_V: *in = C; *out = KD; break;
    case LORA_O: *in = HD; *out = C; break;
    case LORA_GATE: case LORA_UP: *in = C; *out = F; break;
    default: *in = F; *out = C; break;
    }
}

/* PEFT's key of module mod in layer l, part "lora_A" or "lora_B" */
static void mod_key(char *out, size_t n, int l, int mod, const char *part) {
    snprintf(out, n, "base_model.model.model.layers.%d.%s.%s.%s.weight", l, mod <= LORA_O ? "self_attn" : "mlp", mod_names[mod],
             part);
}
#define KEY_EMBED "base_model.model.model.embed_tokens.weight"
#define KEY_LM_HEAD "base_model.model.lm_head.weight"

static void add(hone_lora *lo, const char *name, int64_t d0, int64_t d1) {
    hone_param *p = &lo->params[lo->n_params++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = 2;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)d1;
    p->offset = lo->num_floats;
    lo->num_floats += (p->numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
}

int lora_init(hone_lora *lo, const hone_model *m, const hone_lora_config *cfg, hone_error *err) {
    memset(lo, 0, sizeof *lo);
    const hone_model_config *c = &m->cfg;
    if (cfg->r <= 0) return hone_fail(err, "lora_r: must be > 0, got %d", cfg->r);
    if (!(cfg->dropout >= 0 && cfg->dropout < 1)) return hone_fail(err, "lora_dropout: must be in [0, 1), got %g", cfg->dropout);
    if (!(cfg->targets & LORA_ALL_LINEAR) && !cfg->save_embed && !cfg->save_lm_head)
        return hone_fail(err, "lora_target_modules: no module to adapt");
    lo->cfg = *cfg;
    lo->scale = (float)(cfg->rslora ? cfg->alpha / sqrt((double)cfg->r) : cfg->alpha / cfg->r);
    lo->num_layers = c->num_layers;
    int cap = 2 + 2 * LORA_NMOD * c->num_layers;
    lo->params = calloc(cap, sizeof(hone_param));
    if (!lo->params) return hone_fail(err, "out of memory");
    char n[128];
    if (cfg->save_embed) add(lo, KEY_EMBED, c->vocab_size, c->hidden_size);
    for (int l = 0; l < c->num_layers; l++)
        for (int mod = 0; mod < LORA_NMOD; mod++) {
            if (!(cfg->targets >> mod & 1)) continue;
            int in, out;
            lora_module_dims(c, mod, &in, &out);
            mod_key(n, sizeof n, l, mod, "lora_A");
            add(lo, n, cfg->r, in);
            mod_key(n, sizeof n, l, mod, "lora_B");
            add(lo, n, out, cfg->r);
        }
    if (cfg->save_lm_head) add(lo, KEY_LM_HEAD, c->vocab_size, c->hidden_size);
    lo->data = hone_alloc(sizeof(float) * (lo->num_floats ? lo->num_floats : 16), err);
    if (!lo->data) { lora_free(lo); return hone_fail_prefix(err, "LoRA adapters"); }
    if (lora_view(lo, lo->data, &lo->w, &lo->embed, &lo->lm_head, err) < 0) { lora_free(lo); return -1; }
    return 0;
}

void lora_free(hone_lora *lo) {
    free(lo->params);
    free(lo->data);
    free(lo->w);
    memset(lo, 0, sizeof *lo);
}

int lora_view(const hone_lora *lo, float *base, hone_lora_layer **layers, float **embed, float **lm_head, hone_error *err) {
    hone_lora_layer *w = calloc(lo->num_layers ? lo->num_layers : 1, sizeof *w);
    if (!w) return hone_fail(err, "out of memory");
    *embed = *lm_head = NULL;
    int i = 0;
    if (lo->cfg.save_embed) *embed = base + lo->params[i++].offset;
    for (int l = 0; l < lo->num_layers; l++)
        for (int mod = 0; mod < LORA_NMOD; mod++) {
            if (!(lo->cfg.targets >> mod & 1)) continue;
            w[l].mod[mod].A = base + lo->params[i++].offset;
            w[l].mod[mod].B = base + lo->params[i++].offset;
        }
    if (lo->cfg.save_lm_head) *lm_head = base + lo->params[i++].offset;
    *layers = w;
    return 0;
}

int lora_grad_view(const hone_lora *lo, const hone_model *m, float *base, hone_weights *g, hone_error *err) {
    memset(g, 0, sizeof *g);
    g->layers = calloc(m->cfg.num_layers ? m->cfg.num_layers : 1, sizeof(hone_layer_weights));
    if (!g->layers) return hone_fail(err, "out of memory");
    if (lora_view(lo, base, &g->lora, &g->lora_embed, &g->lora_lm_head, err) < 0) { lora_grad_view_free(g); return -1; }
    return 0;
}

void lora_grad_view_free(hone_weights *g) {
    free(g->layers);
    free(g->lora);
    memset(g, 0, sizeof *g);
}

void lora_init_weights(hone_lora *lo, const hone_model *m, uint64_t seed) {
    hone_rng r;
    rng_seed(&r, seed);
    const hone_model_config *c = &m->cfg;
    size_t vc = (size_t)c->vocab_size * c->hidden_size;
    if (lo->embed) memcpy(lo->embed, m->w.embed, sizeof(float) * vc);
    if (lo->lm_head) memcpy(lo->lm_head, m->w.lm_head, sizeof(float) * vc);
    for (int l = 0; l < lo->num_layers; l++)
        for (int mod = 0; mod < LORA_NMOD; mod++) {
            hone_lora_pair *p = &lo->w[l].mod[mod];
            if (!p->A) continue;
            int in, out, rk = lo->cfg.r;
            lora_module_dims(c, mod, &in, &out);
            /* kaiming_uniform_(a=sqrt(5)) on (r, in): U(-1/sqrt(in), 1/sqrt(in)) */
            float ba = (float)(1.0 / sqrt((double)in)), bb = (float)(1.0 / sqrt((double)rk));
            for (size_t j = 0; j < (size_t)rk * in; j++)
                p->A[j] = lo->cfg.init == LORA_INIT_GAUSSIAN ? rng_normal_f32(&r) / (float)rk : ba * (2.f * rng_uniform_f32(&r) - 1.f);
            for (size_t j = 0; j < (size_t)out * rk; j++)
                p->B[j] = lo->cfg.init == LORA_INIT_FALSE ? bb * (2.f * rng_uniform_f32(&r) - 1.f) : 0.f;
        }
}

void lora_attach(hone_model *m, hone_lora *lo) {
    m->lora = lo;
    m->w.lora = lo ? lo->w : NULL;
    m->w.lora_embed = lo ? lo->embed : NULL;
    m->w.lora_lm_head = lo ? lo->lm_head : NULL;
}

/* ---- adapter directories ---- */

int lora_is_adapter_dir(const char *dir) {
    char p[4096];
    hone_path_join(p, sizeof p, dir, "adapter_config.json");
    return hone_file_exists(p);
}

/* a field that must be absent, null, false, empty or equal to `ok` for hone to honour it */
static int check_unsupported(json_t *o, const char *field, const char *path, hone_error *err) {
    json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if ((json_is_object(v) && json_object_size(v) == 0) || (json_is_array(v) && json_array_size(v) == 0)) return 0;
    return hone_fail(err, "%s: field '%s': hone's LoRA does not support it (it must be unset)", path, field);
}

static int add_target(hone_lora_config *cfg, const char *name, const char *path, const char *field, hone_error *err) {
    if (!strcmp(name, "all-linear")) { cfg->targets |= LORA_ALL_LINEAR; return 0; }
    /* PEFT resolves all-linear into full module paths ("model.layers.1.mlp.down_proj"): the
     * module is the last component (a layer without it is then a missing tensor) */
    const char *dot = strrchr(name, '.');
    int mod = lora_module_from_name(dot ? dot + 1 : name);
    if (mod < 0)
        return hone_fail(err, "%s: field '%s': unknown target module '%s' (hone adapts q_proj, k_proj, v_proj, o_proj, gate_proj, "
                              "up_proj, down_proj or all-linear)", path, field, name);
    cfg->targets |= 1u << mod;
    return 0;
}

static int add_saved(hone_lora_config *cfg, const char *name, const char *path, hone_error *err) {
    if (!strcmp(name, "embed_tokens")) cfg->save_embed = 1;
    else if (!strcmp(name, "lm_head")) cfg->save_lm_head = 1;
    else return hone_fail(err, "%s: field 'modules_to_save': module '%s' is not embed_tokens or lm_head", path, name);
    return 0;
}

int lora_read_config(hone_lora_config *cfg, const char *dir, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, "adapter_config.json");
    char *text;
    size_t len;
    memset(cfg, 0, sizeof *cfg);
    if (hone_read_file(path, &text, &len, err) < 0) return -1;
    int rc = lora_parse_config(cfg, text, len, path, err);
    free(text);
    return rc;
}

int lora_parse_config(hone_lora_config *cfg, const char *text, size_t len, const char *path, hone_error *err) {
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *o = json_loadb(text, len, 0, &je);
    if (!o) return hone_fail(err, "%s:%d: %s", path, je.line, je.text);
    int rc = 0;
    const char *pt = json_string_value(json_object_get(o, "peft_type"));
    json_t *v;
    if (!json_is_object(o)) rc = hone_fail(err, "%s: not a JSON object", path);
    else if (!pt || strcmp(pt, "LORA"))
        rc = hone_fail(err, "%s: field 'peft_type': adapter type '%s' is not supported (hone trains and loads LORA adapters only)",
                       path, pt ? pt : "(missing)");
    else if (json_is_true(json_object_get(o, "use_dora")))
        rc = hone_fail(err, "%s: field 'use_dora': DoRA adapters are not supported (hone loads plain LoRA)", path);
    else if ((v = json_object_get(o, "bias")) && !(json_is_string(v) && !strcmp(json_string_value(v), "none")))
        rc = hone_fail(err, "%s: field 'bias': only \"none\" is supported", path);
    else if (!json_is_integer(json_object_get(o, "r")) || json_integer_value(json_object_get(o, "r")) <= 0 ||
             json_integer_value(json_object_get(o, "r")) > 65536)
        rc = hone_fail(err, "%s: field 'r': must be an integer in [1, 65536]", path);
    else if (!json_is_number(json_object_get(o, "lora_alpha")))
        rc = hone_fail(err, "%s: field 'lora_alpha': must be a number", path);
    static const char *const unsupported[] = {"fan_in_fan_out", "lora_bias", "layers_to_transform", "rank_pattern", "alpha_pattern",
                                              "exclude_modules", "trainable_token_indices", "layer_replication", "use_qalora",
                                              "target_parameters", NULL};
    for (int i = 0; rc == 0 && unsupported[i]; i++) rc = check_unsupported(o, unsupported[i], path, err);
    if (rc == 0) {
        cfg->r = (int)json_integer_value(json_object_get(o, "r"));
        cfg->alpha = json_number_value(json_object_get(o, "lora_alpha"));
        cfg->dropout = json_number_value(json_object_get(o, "lora_dropout"));
        cfg->rslora = json_is_true(json_object_get(o, "use_rslora"));
        v = json_object_get(o, "init_lora_weights");
        cfg->init = json_is_false(v) ? LORA_INIT_FALSE
                  : json_is_string(v) && !strcmp(json_string_value(v), "gaussian") ? LORA_INIT_GAUSSIAN : LORA_INIT_DEFAULT;
        v = json_object_get(o, "target_modules");
        if (json_is_string(v)) rc = add_target(cfg, json_string_value(v), path, "target_modules", err);
        else if (json_is_array(v)) {
            size_t i;
            json_t *it;
            json_array_foreach(v, i, it) {
                if (rc == 0 && !json_is_string(it)) rc = hone_fail(err, "%s: field 'target_modules': entries must be strings", path);
                if (rc == 0) rc = add_target(cfg, json_string_value(it), path, "target_modules", err);
            }
        } else if (!json_is_null(v) && v)
            rc = hone_fail(err, "%s: field 'target_modules': must be a list of module names or a string", path);
    }
    v = json_object_get(o, "modules_to_save");
    if (rc == 0 && json_is_array(v)) {
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it) {
            if (rc == 0 && !json_is_string(it)) rc = hone_fail(err, "%s: field 'modules_to_save': entries must be strings", path);
            if (rc == 0) rc = add_saved(cfg, json_string_value(it), path, err);
        }
    }
    if (rc == 0 && !(cfg->targets || cfg->save_embed || cfg->save_lm_head))
        rc = hone_fail(err, "%s: field 'target_modules': no module to adapt", path);
    if (rc == 0 && !(cfg->dropout >= 0 && cfg->dropout < 1)) rc = hone_fail(err, "%s: field 'lora_dropout': must be in [0, 1)", path);
    const char *base = json_string_value(json_object_get(o, "base_model_name_or_path"));
    if (rc == 0 && base) snprintf(cfg->base_model, sizeof cfg->base_model, "%s", base);
    json_decref(o);
    return rc;
}

int lora_base_dir(const hone_lora_config *cfg, const char *adapter_dir, char *out, size_t n, hone_error *err) {
    if (!cfg->base_model[0])
        return hone_fail(err, "%s/adapter_config.json: field 'base_model_name_or_path' is missing: the base model is unknown",
                         adapter_dir);
    if (hone_is_dir(cfg->base_model)) { snprintf(out, n, "%s", cfg->base_model); return 0; }
    if (cfg->base_model[0] != '/') {
        hone_path_join(out, n, adapter_dir, cfg->base_model);
        if (hone_is_dir(out)) return 0;
    }
    return hone_fail(err, "%s/adapter_config.json: field 'base_model_name_or_path': '%s' is not a model directory here", adapter_dir,
                     cfg->base_model);
}

static const hone_param *find(const hone_lora *lo, const char *name) {
    for (int i = 0; i < lo->n_params; i++)
        if (!strcmp(lo->params[i].name, name)) return &lo->params[i];
    return NULL;
}

int lora_load_weights(hone_lora *lo, const char *dir, hone_error *err) {
    char path[4096];
    hone_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    st_file f;
    if (st_open(&f, path, err) < 0) return -1;
    int rc = 0;
    char *seen = calloc(lo->n_params ? lo->n_params : 1, 1);
    for (int i = 0; i < f.n && rc == 0; i++) {
        const st_tensor *t = &f.tensors[i];
        const hone_param *p = find(lo, t->name);
        if (!p) {
            rc = hone_fail(err, "%s: tensor '%s' is not an adapter of this configuration (adapter_config.json's target_modules, "
                                "modules_to_save and the base's layers)", path, t->name);
            break;
        }
        if (t->ndim != 2 || t->shape[0] != p->shape[0] || t->shape[1] != p->shape[1]) {
            rc = hone_fail(err, "%s: tensor '%s' has shape (%lld%s%lld) but the base model with r=%d implies (%lld, %lld): the adapter "
                                "does not fit this base", path, t->name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                           t->ndim > 1 ? (long long)t->shape[1] : 0LL, lo->cfg.r, (long long)p->shape[0], (long long)p->shape[1]);
            break;
        }
        rc = st_read_f32(&f, t, lo->data + p->offset, err);
        seen[p - lo->params] = 1;
    }
    for (int i = 0; rc == 0 && i < lo->n_params; i++)
        if (!seen[i]) rc = hone_fail(err, "%s: tensor '%s' is missing", path, lo->params[i].name);
    for (int i = 0; rc == 0 && i < lo->n_params; i++) {
        const float *x = lo->data + lo->params[i].offset;
        for (size_t j = 0; j < lo->params[i].numel; j++)
            if (!isfinite(x[j])) { rc = hone_fail(err, "%s: tensor '%s' holds %g at element %zu", path, lo->params[i].name, x[j], j); break; }
    }
    free(seen);
    st_close(&f);
    return rc;
}

int lora_load(hone_lora *lo, const hone_model *m, const char *dir, hone_error *err) {
    hone_lora_config cfg;
    if (lora_read_config(&cfg, dir, err) < 0) return -1;
    if (lora_init(lo, m, &cfg, err) < 0) return hone_fail_prefix(err, "%s/adapter_config.json", dir);
    if (lora_load_weights(lo, dir, err) < 0) { lora_free(lo); return -1; }
    return 0;
}

typedef struct { const hone_lora *lo; const hone_model *m; } save_ctx;

static json_t *config_json(const hone_lora *lo) {
    const hone_lora_config *c = &lo->cfg;
    json_t *o = json_object(), *t = json_array(), *s = json_array();
    for (int i = 0; i < LORA_NMOD; i++)
        if (c->targets >> i & 1) json_array_append_new(t, json_string(mod_names[i]));
    if (c->save_embed) json_array_append_new(s, json_string("embed_tokens"));
    if (c->save_lm_head) json_array_append_new(s, json_string("lm_head"));
    json_object_set_new(o, "alpha_pattern", json_object());
    json_object_set_new(o, "auto_mapping", json_null());
    json_object_set_new(o, "base_model_name_or_path", c->base_model[0] ? json_string(c->base_model) : json_null());
    json_object_set_new(o, "bias", json_string("none"));
    json_object_set_new(o, "fan_in_fan_out", json_false());
    json_object_set_new(o, "inference_mode", json_true());
    json_object_set_new(o, "init_lora_weights",
                        c->init == LORA_INIT_GAUSSIAN ? json_string("gaussian") : json_boolean(c->init != LORA_INIT_FALSE));
    json_object_set_new(o, "layers_pattern", json_null());
    json_object_set_new(o, "layers_to_transform", json_null());
    json_object_set_new(o, "lora_alpha", c->alpha == floor(c->alpha) ? json_integer((json_int_t)c->alpha) : json_real(c->alpha));
    json_object_set_new(o, "lora_bias", json_false());
    json_object_set_new(o, "lora_dropout", json_real(c->dropout));
    json_object_set_new(o, "modules_to_save", json_array_size(s) ? s : (json_decref(s), json_null()));
    json_object_set_new(o, "peft_type", json_string("LORA"));
    json_object_set_new(o, "r", json_integer(c->r));
    json_object_set_new(o, "rank_pattern", json_object());
    json_object_set_new(o, "revision", json_null());
    json_object_set_new(o, "target_modules", t);
    json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(o, "use_dora", json_false());
    json_object_set_new(o, "use_rslora", json_boolean(c->rslora));
    return o;
}

static int fill_adapter(const char *tmp, void *vctx, hone_error *err) {
    const hone_lora *lo = ((save_ctx *)vctx)->lo;
    char path[4096];
    json_t *o = config_json(lo);
    char *txt = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(15)); /* 0.05, as PEFT writes it */
    json_decref(o);
    hone_path_join(path, sizeof path, tmp, "adapter_config.json");
    int rc = hone_write_file(path, txt, strlen(txt), err);
    free(txt);
    if (rc) return rc;
    st_entry *e = calloc(lo->n_params ? lo->n_params : 1, sizeof(st_entry));
    for (int i = 0; i < lo->n_params; i++) {
        e[i].name = lo->params[i].name;
        e[i].data = lo->data + lo->params[i].offset;
        e[i].ndim = 2;
        e[i].shape[0] = lo->params[i].shape[0];
        e[i].shape[1] = lo->params[i].shape[1];
    }
    hone_path_join(path, sizeof path, tmp, "adapter_model.safetensors");
    rc = st_write(path, e, lo->n_params, ST_F32, "{\"format\":\"pt\"}", err);
    free(e);
    return rc;
}

int lora_save(const hone_lora *lo, const hone_model *m, const char *dir, const char *src_dir,
              int (*extra)(const char *tmp_dir, void *ctx, hone_error *err), void *ctx, hone_error *err) {
    save_ctx sc = {lo, m};
    return model_write_dir(dir, src_dir, fill_adapter, &sc, extra, ctx, err);
}

int lora_merge(hone_model *m, const hone_lora *lo, hone_error *err) {
    const hone_model_config *c = &m->cfg;
    if (m->held) /* PEFT merges into a dequantised copy; hone merges into an fp32 load of the base */
        return hone_fail(err, "merge: the base is held quantised (%s); merge into a base loaded in fp32", quant_type_name(m->held));
    if (c->tie_word_embeddings && (lo->embed || lo->lm_head))
        return hone_fail(err, "merge: modules_to_save (embed_tokens, lm_head) on a model with tie_word_embeddings cannot be "
                              "merged into one tied matrix");
    int maxio = 0;
    for (int mod = 0; mod < LORA_NMOD; mod++) {
        int in, out;
        lora_module_dims(c, mod, &in, &out);
        if ((long)in * out > maxio) maxio = in * out;
    }
    float *delta = hone_alloc(sizeof(float) * (size_t)maxio, err);
    if (!delta) return hone_fail_prefix(err, "merge");
    for (int l = 0; l < lo->num_layers; l++) {
        hone_layer_weights *W = &m->w.layers[l];
        float *mats[LORA_NMOD] = {W->wq, W->wk, W->wv, W->wo, W->wg, W->wu, W->wd};
        for (int mod = 0; mod < LORA_NMOD; mod++) {
            const hone_lora_pair *p = &lo->w[l].mod[mod];
            if (!p->A) continue;
            int in, out;
            lora_module_dims(c, mod, &in, &out);
            /* PEFT: W += (B @ A) * scaling */
            hone_kt.gemm_f32(0, 0, out, in, lo->cfg.r, p->B, lo->cfg.r, p->A, in, 0.f, delta, in);
            float *w = mats[mod];
            for (size_t j = 0; j < (size_t)out * in; j++) w[j] += delta[j] * lo->scale;
        }
    }
    free(delta);
    size_t vc = (size_t)c->vocab_size * c->hidden_size;
    if (lo->embed) memcpy(m->w.embed, lo->embed, sizeof(float) * vc);
    if (lo->lm_head) memcpy(m->w.lm_head, lo->lm_head, sizeof(float) * vc);
    lora_attach(m, NULL);
    return 0;
}

static int load_merged(hone_model *m, const char *dir, int check_finite, int depth, hone_error *err) {
    if (!lora_is_adapter_dir(dir)) return model_load(m, dir, check_finite, err);
    if (depth > 8) return hone_fail(err, "%s: adapters name each other as base_model_name_or_path more than 8 deep", dir);
    hone_lora_config cfg;
    char base[4096];
    if (lora_read_config(&cfg, dir, err) < 0 || lora_base_dir(&cfg, dir, base, sizeof base, err) < 0) return -1;
    /* the base may itself be an adapter (hone's SFT adapter under a DPO one): merged first */
    if (load_merged(m, base, check_finite, depth + 1, err) < 0) return hone_fail_prefix(err, "%s: base model", dir);
    hone_lora lo;
    memset(&lo, 0, sizeof lo);
    if (lora_load(&lo, m, dir, err) < 0 || lora_merge(m, &lo, err) < 0) {
        if (lo.params) lora_free(&lo);
        model_free(m);
        return -1;
    }
    lora_free(&lo);
    return 0;
}

void lora_files_dir(const char *dir, char *out, size_t n) {
    snprintf(out, n, "%s", dir);
    for (int depth = 0; depth < 8 && lora_is_adapter_dir(out); depth++) {
        char p[4200], base[4096];
        hone_path_join(p, sizeof p, out, "tokenizer_config.json");
        if (hone_file_exists(p)) return;
        hone_path_join(p, sizeof p, out, "tokenizer.json");
        if (hone_file_exists(p)) return;
        hone_lora_config cfg;
        if (lora_read_config(&cfg, out, NULL) < 0 || lora_base_dir(&cfg, out, base, sizeof base, NULL) < 0) return;
        snprintf(out, n, "%s", base);
    }
}

int model_load_merged(hone_model *m, const char *dir, int check_finite, hone_error *err) {
    return load_merged(m, dir, check_finite, 0, err);
}
