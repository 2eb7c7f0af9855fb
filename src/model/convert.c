/* model/convert.c — llama2.c checkpoint import (convert.h). */
#include "model/convert.h"
#include "base/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rows of one (n_heads*hd, cols) matrix: (h, i, j) -> (h, j, i) with i < hd/2, j < 2 */
static void permute_rows(float *dst, const float *src, int n_heads, int hd, int cols) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++) {
                const float *s = src + ((size_t)h * hd + i * 2 + j) * cols;
                float *d = dst + ((size_t)h * hd + j * (hd / 2) + i) * cols;
                memcpy(d, s, sizeof(float) * cols);
            }
}

int convert_llama2c_load(hone_model *m, const char *path, hone_error *err) {
    char *buf;
    size_t len;
    if (hone_read_file(path, &buf, &len, err) < 0) return -1;
    if (len < 28) { free(buf); return hone_fail(err, "%s: truncated: %zu bytes, a llama2.c header needs 28", path, len); }
    int32_t h[7];
    memcpy(h, buf, sizeof h);
    int dim = h[0], hidden = h[1], L = h[2], nh = h[3], nkv = h[4], V = abs(h[5]), seq = h[6];
    int shared = h[5] > 0;
    if (dim <= 0 || hidden <= 0 || L <= 0 || nh <= 0 || nkv <= 0 || V <= 0 || seq <= 0 || dim % nh || nh % nkv || dim > 65536 ||
        hidden > 1 << 20 || L > 1024 || V > 1 << 22 || seq > 1 << 22) {
        free(buf);
        return hone_fail(err, "%s: not a llama2.c checkpoint (header dim=%d hidden=%d layers=%d heads=%d kv_heads=%d vocab=%d seq=%d)",
                         path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    }
    int hd = dim / nh, kvd = nkv * hd;
    size_t need = (size_t)V * dim + (size_t)L * dim + (size_t)L * dim * dim + 2 * (size_t)L * kvd * dim + (size_t)L * dim * dim +
                  (size_t)L * dim + 3 * (size_t)L * dim * hidden + dim + (size_t)seq * hd + (shared ? 0 : (size_t)V * dim);
    if (len - 28 != need * 4) {
        free(buf);
        return hone_fail(err, "%s: size %zu bytes does not match its header (expected %zu)", path, len, 28 + need * 4);
    }
    hone_model_config c;
    memset(&c, 0, sizeof c);
    c.arch = HONE_ARCH_LLAMA;
    snprintf(c.architecture, sizeof c.architecture, "LlamaForCausalLM");
    snprintf(c.model_type, sizeof c.model_type, "llama");
    c.vocab_size = V; c.hidden_size = dim; c.intermediate_size = hidden; c.num_layers = L;
    c.num_heads = nh; c.num_kv_heads = nkv; c.head_dim = hd; c.max_position_embeddings = seq;
    c.rms_norm_eps = 1e-5f; c.rope_theta = 10000.0; c.tie_word_embeddings = shared;
    c.act = 0; c.bos_token_id = 1; c.eos_token_id = 2; c.pad_token_id = -1;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "float32");
    if (model_init(m, &c, err) < 0) { free(buf); return -1; }
    const float *p = (const float *)(buf + 28);
    hone_weights *w = &m->w;
    memcpy(w->embed, p, sizeof(float) * V * dim); p += (size_t)V * dim;
    for (int l = 0; l < L; l++) memcpy(w->layers[l].ln1, p + (size_t)l * dim, sizeof(float) * dim);
    p += (size_t)L * dim;
    for (int l = 0; l < L; l++) permute_rows(w->layers[l].wq, p + (size_t)l * dim * dim, nh, hd, dim);
    p += (size_t)L * dim * dim;
    for (int l = 0; l < L; l++) permute_rows(w->layers[l].wk, p + (size_t)l * kvd * dim, nkv, hd, dim);
    p += (size_t)L * kvd * dim;
    for (int l = 0; l < L; l++) memcpy(w->layers[l].wv, p + (size_t)l * kvd * dim, sizeof(float) * kvd * dim);
    p += (size_t)L * kvd * dim;
    for (int l = 0; l < L; l++) memcpy(w->layers[l].wo, p + (size_t)l * dim * dim, sizeof(float) * dim * dim);
    p += (size_t)L * dim * dim;
    for (int l = 0; l < L; l++) memcpy(w->layers[l].ln2, p + (size_t)l * dim, sizeof(float) * dim);
    p += (size_t)L * dim;
    for (int l = 0; l < L; l++) memcpy(w->layers[l].wg, p + (size_t)l * hidden * dim, sizeof(float) * hidden * dim);
    p += (size_t)L * hidden * dim;
    for (int l = 0; l < L; l++) memcpy(w->layers[l].wd, p + (size_t)l * dim * hidden, sizeof(float) * dim * hidden);
    p += (size_t)L * dim * hidden;
    for (int l = 0; l < L; l++) memcpy(w->layers[l].wu, p + (size_t)l * hidden * dim, sizeof(float) * hidden * dim);
    p += (size_t)L * hidden * dim;
    memcpy(w->norm, p, sizeof(float) * dim); p += dim;
    p += (size_t)seq * hd; /* freq_cis_real and _imag: recomputed from rope_theta */
    if (!shared) memcpy(w->lm_head, p, sizeof(float) * V * dim);
    free(buf);
    return 0;
}
