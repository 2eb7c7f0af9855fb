/* model/backend_cpu.c — the CPU backend: host memory, layers.c operations, the kernel
 * table for the loss head (backend.h). */
#include "model/backend.h"
#include "config.h"
#include "simd/kernels.h"
#include "model/layers.h"
#include "base/util.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t bytes, hone_error *err) { return hone_alloc(bytes, err); }
static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
static void cpu_zero(void *p, size_t n) { memset(p, 0, n); }

static void cpu_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc) {
    hone_kt.gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc) {
    hone_kt.gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
static void cpu_round_bf16(float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 4096) hone_kt.round_bf16(x + i, n - i < 4096 ? n - i : 4096);
}

static void cpu_gather_rows(float *dst, const float *src, const int32_t *rows, int n, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * C, src + (size_t)rows[i] * C, sizeof(float) * C);
}
static void cpu_scatter_rows(float *dst, const float *src, const int32_t *rows, int n, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)rows[i] * C, src + (size_t)i * C, sizeof(float) * C);
}

static void cpu_ce_rows(float *logits, int n, int V, const int32_t *labels, const int32_t *out_idx, const float *coef,
                        float coef_const, float *logp, float *entropy, float *correct, float *logit_sum, float *lssp,
                        const hone_head_loss *loss, float *loss_term) {
    int dft = loss && loss->kind == HONE_LOSS_DFT;
    float eps = loss ? loss->label_smoothing : 0.f;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        int s = out_idx[i], lab = labels[i];
        float *lg = logits + (size_t)i * V;
        float st[5];
        hone_kt.ce_fwd(lg, V, st);
        logp[s] = lg[lab] - st[1];
        entropy[s] = st[1] - st[2];
        correct[s] = (int)st[3] == lab ? 1.f : 0.f;
        logit_sum[s] = st[4];
        if (lssp) {
            double m2 = 2.0 * st[0], acc = 0;
            for (int v = 0; v < V; v++) acc += exp(2.0 * lg[v] - m2);
            lssp[s] = (float)(m2 + log(acc) - 2.0 * st[1]);
        }
        float c = coef ? coef[s] : coef_const, lt = -logp[s];
        if (dft) {
            /* TRL's DFT: -logp * exp(logp).detach(): the NLL gradient scaled by p */
            float p = expf(logp[s]);
            lt = lt * p;
            c *= p;
        } else if (eps > 0.f) {
            /* LabelSmoother: (1 - eps) * nll + eps * sum_v(-log p_v) / V, and
             * sum_v -log p_v = V * lse - sum_v z_v */
            lt = (1.f - eps) * lt + eps * (st[1] - st[4] / (float)V);
        }
        if (loss_term) loss_term[s] = lt;
        if (coef || coef_const != 0.f) {
            hone_kt.ce_bwd(lg, lg, V, st[1], lab, c);
            if (eps > 0.f && !dft) {
                /* gradient of the smoothing term: c * (softmax - 1/V) - the NLL part was scaled by (1 - eps) */
                float u = c * eps / (float)V;
                lg[lab] += c * eps;
                for (int v = 0; v < V; v++) lg[v] -= u;
            }
        }
    }
}

static const hone_backend cpu = {
    .name = "cpu",
    .device_memory = 0,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .matmul_forward = matmul_forward,
    .matmul_backward = matmul_backward,
    .qmatmul_forward = qmatmul_forward,
    .qmatmul_backward = qmatmul_backward,
    .lora_dropout = lora_dropout,
    .lora_forward = lora_forward,
    .lora_backward = lora_backward,
    .rmsnorm_forward = rmsnorm_forward,
    .rmsnorm_backward = rmsnorm_backward,
    .reduce_floats = layers_reduce_floats,
    .rope_tables = rope_tables,
    .rope_forward = rope_forward,
    .rope_backward = rope_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .glu_forward = glu_forward,
    .glu_backward = glu_backward,
    .embedding_forward = embedding_forward,
    .embedding_backward = embedding_backward,
    .residual_add = residual_add,
    .gemm = cpu_gemm,
    .gather_rows = cpu_gather_rows,
    .scatter_rows = cpu_scatter_rows,
    .ce_rows = cpu_ce_rows,
};

const hone_backend *backend_cpu(void) { return &cpu; }

/* cpu with the bf16 entries; built once, constant afterwards */
static hone_backend cpu_bf16;
static void cpu_bf16_build(void) {
    cpu_bf16 = cpu;
    cpu_bf16.name = "cpu-bf16";
    cpu_bf16.matmul_forward = matmul_forward_bf16;
    cpu_bf16.matmul_backward = matmul_backward_bf16;
    cpu_bf16.qmatmul_forward = qmatmul_forward_bf16;
    cpu_bf16.qmatmul_backward = qmatmul_backward_bf16;
    cpu_bf16.gemm = cpu_gemm_bf16;
    cpu_bf16.round_bf16 = cpu_round_bf16;
}

const hone_backend *backend_cpu_bf16(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cpu_bf16_build);
    return &cpu_bf16;
}

const hone_backend *backend_select(const char *name, hone_error *err) {
    if (!name || !strcmp(name, "auto") || !strcmp(name, "cpu")) return &cpu;
    if (!strcmp(name, "cuda")) {
        hone_fail(err, "backend 'cuda': this build has no CUDA backend yet (gpu/README.md); use cpu");
        return NULL;
    }
    hone_fail(err, "backend '%s' is not one of auto, cpu, cuda", name);
    return NULL;
}
