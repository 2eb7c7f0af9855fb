/* train/estimate.c — peak memory of a training run before it allocates (estimate.h). */
#include "train/estimate.h"
#include "dist/dist.h"
#include "train/optim.h"
#include "train/pipeline.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "simd/quant.h"
#include "model/qweight.h"
#include "base/util.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GB 1e9
/* program, libraries, threads, data rows: a stories260K SFT run (512-token vocabulary, tiny
 * model and activations) peaks at 23 MB RSS; the tokenizer takes a few times its file */
#define WORKSPACE_BYTES (24e6)
#define TOKENIZER_FACTOR 4.0

/* config.json of the run's model: model_name_or_path, or a PEFT adapter's base_model_name_or_path */
static int model_dir_of(const char *dir, char *out, size_t n, hone_error *err) {
    char p[4200];
    hone_path_join(p, sizeof p, dir, "config.json");
    if (hone_file_exists(p)) { snprintf(out, n, "%s", dir); return 0; }
    hone_path_join(p, sizeof p, dir, "adapter_config.json");
    json_error_t je;
    json_t *a = hone_file_exists(p) ? json_load_file(p, 0, &je) : NULL;
    const char *b = a ? json_string_value(json_object_get(a, "base_model_name_or_path")) : NULL;
    if (b) snprintf(out, n, "%s", b);
    json_decref(a);
    return b ? 0 : hone_fail(err, "%s: not a model directory (no config.json) nor a PEFT adapter", dir);
}

/* weights with the decoder linears held as `held` (HONE_Q_*, nested 4-bit absmax or not), their
 * bytes as qweight_bytes counts them; embeddings, head, norms and biases fp32 (model/qweight.h) */
static double weight_bytes(const hone_param *p, int n, int held, int nested) {
    double b = 0;
    for (int i = 0; i < n; i++) {
        int layer;
        b += held > 0 && qweight_module(p[i].name, &layer) >= 0 ? (double)qweight_bytes(held, nested, (long)p[i].shape[0], (long)p[i].shape[1])
                                                                : 4.0 * p[i].numel;
    }
    return b;
}

static int estimate_with(const hone_train_config *cfg, const hone_model_config *mc, const char *model_dir, hone_mem_estimate *e,
                         hone_error *err) {
    memset(e, 0, sizeof *e);
    char stored[16] = "";
    if (model_dir) model_dir_dtype(model_dir, stored, sizeof stored);
    int held = pipeline_held_type(cfg, stored);
    snprintf(e->held, sizeof e->held, "%s%s", quant_type_name(held), held >= HONE_Q_NF4 && cfg->use_bnb_nested_quant ? ", nested" : "");
    hone_param *p;
    int n;
    size_t nf;
    if (model_param_table(mc, &p, &n, &nf, err) < 0) return -1;
    e->n_params = model_config_num_params(mc);
    e->weights = weight_bytes(p, n, held, cfg->use_bnb_nested_quant);
    /* grad_accum_dtype fp64 with more than one micro-batch a step: a double per trained float */
    int acc64 = cfg->grad_accum_dtype && !strcmp(cfg->grad_accum_dtype, "fp64") && (long)cfg->gradient_accumulation_steps * dist_size() > 1;
    e->acc64 = acc64;
    int kind = config_optim_kind(cfg->optim);
    int lora = cfg->use_peft || cfg->peft_block;
    int dpo = cfg->kind == HONE_DPO;
    long T = cfg->max_length > 0 ? cfg->max_length : mc->max_position_embeddings;
    long B = dpo ? 2L * cfg->per_device_train_batch_size : cfg->per_device_train_batch_size;
    e->B = B; e->T = T;
    hone_lora lo;
    memset(&lo, 0, sizeof lo);
    if (lora) {
        pipeline_lora_config(cfg, &lo.cfg);
        /* the adapters' tensors: A (r, in) and B (out, r) per targeted module and layer, plus
         * modules_to_save copies */
        size_t nt = 0;
        int np = 0;
        hone_param *lp = calloc((size_t)mc->num_layers * LORA_NMOD * 2 + 2, sizeof *lp);
        if (!lp) { free(p); return hone_fail(err, "out of memory"); }
        for (int l = 0; l < mc->num_layers; l++)
            for (int mod = 0; mod < LORA_NMOD; mod++) {
                if (!(lo.cfg.targets >> mod & 1)) continue;
                int in, out;
                lora_module_dims(mc, mod, &in, &out);
                for (int ab = 0; ab < 2; ab++) {
                    hone_param *q = &lp[np++];
                    snprintf(q->name, sizeof q->name, "lora_%c", ab ? 'B' : 'A');
                    q->ndim = 2;
                    q->shape[0] = ab ? out : lo.cfg.r;
                    q->shape[1] = ab ? lo.cfg.r : in;
                    q->numel = (size_t)q->shape[0] * q->shape[1];
                    nt += q->numel;
                }
            }
        for (int s = 0; s < 2; s++)
            if (s ? lo.cfg.save_lm_head : lo.cfg.save_embed) {
                hone_param *q = &lp[np++];
                snprintf(q->name, sizeof q->name, "%s", s ? "lm_head" : "embed_tokens");
                q->ndim = 2; q->shape[0] = mc->vocab_size; q->shape[1] = mc->hidden_size;
                q->numel = (size_t)mc->vocab_size * mc->hidden_size;
                nt += q->numel;
            }
        e->n_trained = nt;
        e->lora = 4.0 * nt;
        e->grads = 4.0 * nt * (1 + 2 * acc64);
        e->optim = (double)adamw_state_bytes(kind, lp, np);
        free(lp);
    } else {
        e->n_trained = nf;
        e->grads = 4.0 * nf * (1 + 2 * acc64);
        e->optim = (double)adamw_state_bytes(kind, p, n);
    }
    e->acts_full = (double)acts_plan_bytes(mc, (int)B, (int)T, 1, 0) + (lora ? (double)acts_lora_bytes(mc, &lo, (int)B, (int)T, 1, 0) : 0);
    e->acts_ckpt = (double)acts_plan_bytes(mc, (int)B, (int)T, 1, 1) + (lora ? (double)acts_lora_bytes(mc, &lo, (int)B, (int)T, 1, 1) : 0);
    e->acts = cfg->gradient_checkpointing ? e->acts_ckpt : e->acts_full;
    /* DPO: a second model unless the reference is the policy with adapters off, or precomputed;
     * its forward needs inference activations while the policy's are live */
    double pre = 0; /* precompute_ref_log_probs: both models and the reference's activations, before training */
    if (dpo && !cfg->reference_free && (!lora || cfg->ref_model_name_or_path)) {
        double ref_acts = (double)acts_plan_bytes(mc, (int)B, (int)T, 0, 0);
        if (cfg->precompute_ref_log_probs) pre = 2 * e->weights + ref_acts;
        else e->ref = e->weights + ref_acts;
    }
    char tj[4200];
    struct stat st;
    hone_path_join(tj, sizeof tj, model_dir ? model_dir : ".", "tokenizer.json");
    double tok = model_dir && stat(tj, &st) == 0 ? TOKENIZER_FACTOR * (double)st.st_size : 0;
    e->workspace = WORKSPACE_BYTES + tok + 16.0 * B * T; /* plus the batch's ids, labels and masks */
    /* loading reads tensor after tensor and drops each one's file pages once converted
     * (st_read_f32, qweight_load_tensor): the weights plus the largest tensor's bytes in the file,
     * plus, for a held base, one linear's fp32 scratch */
    double es = !strcmp(stored, "bfloat16") || !strcmp(stored, "float16") ? 2 : 4, big = 0, bigl = 0;
    for (int i = 0, layer; i < n; i++) {
        if (es * p[i].numel > big) big = es * p[i].numel;
        if (held > 0 && qweight_module(p[i].name, &layer) >= 0 && 4.0 * p[i].numel > bigl) bigl = 4.0 * p[i].numel;
    }
    e->load_extra = big + bigl;
    free(p);
    double train = e->weights + e->lora + e->grads + e->optim + e->acts + e->ref + e->workspace;
    double load = e->weights + e->load_extra + WORKSPACE_BYTES + tok;
    e->total = train > load ? train : load;
    if (pre + e->workspace > e->total) e->total = pre + e->workspace;
    return 0;
}

int estimate_run(const hone_train_config *cfg, hone_mem_estimate *e, hone_error *err) {
    char dir[4096], path[4200];
    if (!cfg->model_name_or_path) return hone_fail(err, "model_name_or_path is required");
    if (model_dir_of(cfg->model_name_or_path, dir, sizeof dir, err) < 0) return -1;
    hone_model_config mc;
    hone_path_join(path, sizeof path, dir, "config.json");
    if (model_config_load(&mc, path, err) < 0) return -1;
    return estimate_with(cfg, &mc, dir, e, err);
}

static double read_num_file(const char *path) {
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (!ok || !strncmp(buf, "max", 3)) return -1;
    return strtod(buf, NULL);
}

double estimate_available(char *how, size_t how_n) {
    double avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "MemAvailable:", 13)) avail = strtod(line + 13, NULL) * 1024;
    if (f) fclose(f);
    snprintf(how, how_n, "MemAvailable");
    /* cgroup v2, else v1: the limit less what the group holds (its page cache is reclaimable) */
    double lim = read_num_file("/sys/fs/cgroup/memory.max"), use = read_num_file("/sys/fs/cgroup/memory.current");
    if (lim < 0) { lim = read_num_file("/sys/fs/cgroup/memory/memory.limit_in_bytes"); use = read_num_file("/sys/fs/cgroup/memory/memory.usage_in_bytes"); }
    if (lim > 0 && lim < 1e18 && use >= 0) {
        double file = 0;
        FILE *s = fopen("/sys/fs/cgroup/memory.stat", "r");
        while (s && fgets(line, sizeof line, s))
            if (!strncmp(line, "file ", 5)) file = strtod(line + 5, NULL);
        if (s) fclose(s);
        double cg = lim - (use - file);
        if (avail <= 0 || cg < avail) { avail = cg; snprintf(how, how_n, "cgroup memory.max"); }
    }
    return avail;
}

void estimate_print(FILE *f, const hone_train_config *cfg, const hone_mem_estimate *e, double avail, const char *how) {
    int lora = cfg->use_peft || cfg->peft_block;
    fprintf(f, "%s %s, %zu parameters (%zu trained%s), batch %ld rows x %ld tokens, optim %s\n",
            cfg->kind == HONE_DPO ? "dpo" : "sft", cfg->model_name_or_path, e->n_params, e->n_trained, lora ? ": LoRA adapters" : "", e->B,
            e->T, cfg->optim);
    char wl[64];
    snprintf(wl, sizeof wl, "weights (linears held as %s)", e->held);
    fprintf(f, "  %-44s %9.2f GB\n", wl, e->weights / GB);
    if (lora) fprintf(f, "  %-44s %9.2f GB\n", "LoRA adapters", e->lora / GB);
    fprintf(f, "  %-44s %9.2f GB\n", e->acc64 ? "gradients (and their fp64 sums)" : "gradients", e->grads / GB);
    fprintf(f, "  %-44s %9.2f GB\n", "optimizer state", e->optim / GB);
    fprintf(f, "  %-44s %9.2f GB  (%s: %.2f GB, %s: %.2f GB)\n", "activations", e->acts / GB, "with gradient_checkpointing",
            e->acts_ckpt / GB, "without", e->acts_full / GB);
    if (cfg->kind == HONE_DPO)
        fprintf(f, "  %-44s %9.2f GB\n", lora && !cfg->ref_model_name_or_path ? "reference (policy with adapters off)" : "reference model",
                e->ref / GB);
    fprintf(f, "  %-44s %9.2f GB\n", "workspace", e->workspace / GB);
    fprintf(f, "  %-44s %9.2f GB\n", "loading (weights + largest tensor in flight)", (e->weights + e->load_extra) / GB);
    fprintf(f, "  %-44s %9.2f GB\n", "peak", e->total / GB);
    if (avail > 0) fprintf(f, "  %-44s %9.2f GB\n", how, avail / GB);
}

int estimate_check(const hone_train_config *cfg, hone_error *err) {
    const char *off = getenv("HONE_NO_MEMORY_CHECK");
    if (off && *off && strcmp(off, "0")) return 0;
    hone_mem_estimate e;
    hone_error ignore;
    if (estimate_run(cfg, &e, &ignore) < 0) return 0; /* the load reports what is wrong with the model */
    char how[64];
    double avail = estimate_available(how, sizeof how);
    if (avail <= 0 || e.total <= avail) return 0;
    /* what would fit: each change alone, then together */
    char fits[1024] = "";
    hone_train_config v = *cfg;
    hone_mem_estimate w;
    char dir[4096], path[4200];
    hone_model_config mc;
    int have = model_dir_of(cfg->model_name_or_path, dir, sizeof dir, &ignore) == 0;
    hone_path_join(path, sizeof path, dir, "config.json");
    have = have && model_config_load(&mc, path, &ignore) == 0;
    struct { int ckpt, peft, nf4; } tries[] = {{1, 0, 0}, {0, 1, 0}, {1, 1, 0}, {1, 1, 1}};
    int lora = cfg->use_peft || cfg->peft_block, seen[8] = {0};
    for (size_t i = 0; have && i < sizeof tries / sizeof *tries; i++) {
        /* only what changes this configuration, each combination once */
        int ck = tries[i].ckpt && !cfg->gradient_checkpointing, pe = tries[i].peft && !lora, q = tries[i].nf4 && !cfg->load_in_4bit;
        if (!(ck || pe || q) || seen[ck | pe << 1 | q << 2]++) continue;
        v = *cfg;
        if (ck) v.gradient_checkpointing = 1;
        if (pe) v.use_peft = 1;
        if (q) v.load_in_4bit = 1;
        if (estimate_with(&v, &mc, dir, &w, &ignore) == 0 && w.total <= avail)
            snprintf(fits + strlen(fits), sizeof fits - strlen(fits), "%s%s%s%s%s%s (%.1f GB)", fits[0] ? "; " : "", pe ? "use_peft: true" : "",
                     pe && (q || ck) ? ", " : "", q ? "load_in_4bit: true" : "", q && ck ? ", " : "", ck ? "gradient_checkpointing: true" : "",
                     w.total / GB);
    }
    for (int bs = cfg->per_device_train_batch_size / 2; have && bs >= 1; bs /= 2) {
        v = *cfg;
        v.per_device_train_batch_size = bs;
        if (estimate_with(&v, &mc, dir, &w, &ignore) == 0 && w.total <= avail) {
            snprintf(fits + strlen(fits), sizeof fits - strlen(fits), "%sper_device_train_batch_size: %d with gradient_accumulation_steps: %d (%.1f GB)",
                     fits[0] ? "; " : "", bs, cfg->gradient_accumulation_steps * (cfg->per_device_train_batch_size / bs), w.total / GB);
            break;
        }
    }
    return hone_fail(err,
                     "not enough memory: this run needs about %.1f GB at its peak (weights %.1f, gradients %.1f, optimizer %.1f, "
                     "activations %.1f, reference %.1f GB; see hone estimate) but %.1f GB are available (%s). %s%s. "
                     "HONE_NO_MEMORY_CHECK=1 runs anyway",
                     e.total / GB, e.weights / GB, e.grads / GB, e.optim / GB, e.acts / GB, e.ref / GB, avail / GB, how,
                     fits[0] ? "Settings that would fit: " : "No single setting tried fits (gradient_checkpointing, use_peft, load_in_4bit, a smaller batch or max_length)",
                     fits);
}
