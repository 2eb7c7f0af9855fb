/* bench_tokenize.c — tokenizer speed on shared/tokenizers/corpus.dev.jsonl: per tokenizer,
 * load time, single-threaded encode MB/s and tokens/s (no special tokens, best of 2 passes
 * after a warm-up; rates per CPU-second of the encoding thread), next to the reference `tokenizers` library timed in the same run by
 * benchmarks/tokenize_ref.py when a Python with `tokenizers` is available (HONE_PYTHON,
 * else /work/venv/bin/python, else python3). Then batch-encode scaling with threads.
 * Usage: bench_tokenize [name...]   (default: all nine) */
#include "tokenizer/internal.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time of this thread: single-thread rates are per CPU-second, so a busy shared machine
 * (time slicing) does not distort them; the reference script measures the same way. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct { char name[32]; double load, mbs, tps; long ntok; int have; } ref_row;

int main(int argc, char **argv) {
    static const char *const all[] = {"llama2", "mistral", "llama3", "gemma3", "qwen3", "gpt2", "smollm", "phi3", "gpt4o"};
    const char *const *names = all;
    int nn = 9;
    if (argc > 1) { names = (const char *const *)argv + 1; nn = argc - 1; }
    const char *shared = getenv("HONE_SHARED") ? getenv("HONE_SHARED") : "../shared";
    const char *srcdir = getenv("HONE_SRCDIR") ? getenv("HONE_SRCDIR") : ".";
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/corpus.dev.jsonl", shared);
    FILE *f = fopen(path, "r");
    if (!f) { printf("bench_tokenize: %s absent, skipped\n", path); return 0; }
    size_t cap = 4096, n = 0, bytes = 0;
    char **texts = malloc(cap * sizeof *texts);
    size_t *lens = malloc(cap * sizeof *lens);
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, JSON_ALLOW_NUL, &je);
        json_t *t = json_object_get(j, "text");
        if (!json_is_string(t)) { json_decref(j); continue; }
        if (n == cap) { cap *= 2; texts = realloc(texts, cap * sizeof *texts); lens = realloc(lens, cap * sizeof *lens); }
        lens[n] = json_string_length(t);
        texts[n] = malloc(lens[n] + 1);
        memcpy(texts[n], json_string_value(t), lens[n] + 1);
        bytes += lens[n];
        n++;
        json_decref(j);
    }
    free(line);
    fclose(f);

    /* the reference, in the same run */
    ref_row ref[16];
    memset(ref, 0, sizeof ref);
    const char *py = getenv("HONE_PYTHON");
    if (!py) py = access("/work/venv/bin/python", X_OK) == 0 ? "/work/venv/bin/python" : "python3";
    char cmd[8192];
    int k = snprintf(cmd, sizeof cmd, "%s %s/benchmarks/tokenize_ref.py %s", py, srcdir, shared);
    for (int i = 0; i < nn && i < 16; i++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %s", names[i]);
    snprintf(cmd + k, sizeof cmd - (size_t)k, " 2>/dev/null");
    FILE *p = popen(cmd, "r");
    if (p) {
        char buf[256];
        while (fgets(buf, sizeof buf, p)) {
            ref_row r;
            memset(&r, 0, sizeof r);
            if (sscanf(buf, "%31s %lf %lf %lf %ld", r.name, &r.load, &r.mbs, &r.tps, &r.ntok) != 5) continue;
            for (int i = 0; i < nn && i < 16; i++)
                if (!strcmp(names[i], r.name)) { ref[i] = r; ref[i].have = 1; }
        }
        pclose(p);
    }

    printf("tokenize: %zu texts, %.2f MB, single thread, rates per CPU-second (reference: HF tokenizers via %s)\n", n,
           bytes / 1e6, py);
    printf("%-8s %8s %8s %10s %12s | %8s %8s %12s | %7s\n", "name", "load_cpu", "MB/s", "tokens/s", "tokens", "ref_load", "ref_MB/s",
           "ref_tok/s", "speedup");
    hone_tokenizer *last = NULL;
    for (int i = 0; i < nn; i++) {
        snprintf(path, sizeof path, "%s/tokenizers/%s", shared, names[i]);
        hone_tokenizer *tok;
        hone_error err;
        /* load: CPU time of the whole process (merge lookups run on OpenMP threads) */
        struct timespec l0, l1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &l0);
        if (tokenizer_load(&tok, path, &err)) { printf("%-8s load failed: %s\n", names[i], err.msg); continue; }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &l1);
        double load = (double)(l1.tv_sec - l0.tv_sec) + 1e-9 * (double)(l1.tv_nsec - l0.tv_nsec), t0;
        long ntok = 0;
        double best = 1e30;
        for (int pass = 0; pass < 3; pass++) {
            t0 = cpu_now();
            ntok = 0;
            for (size_t j = 0; j < n; j++) {
                int32_t *ids;
                size_t m;
                if (tokenizer_encode(tok, texts[j], lens[j], 0, &ids, &m, &err)) { printf("encode failed: %s\n", err.msg); return 1; }
                ntok += (long)m;
                free(ids);
            }
            double dt = cpu_now() - t0;
            if (pass > 0 && dt < best) best = dt; /* pass 0 warms up */
        }
        printf("%-8s %8.3f %8.2f %10.0f %12ld |", names[i], load, bytes / best / 1e6, ntok / best, ntok);
        if (ref[i].have)
            printf(" %8.3f %8.2f %12.0f | %6.1fx%s\n", ref[i].load, ref[i].mbs, ref[i].tps, bytes / best / 1e6 / ref[i].mbs,
                   ref[i].ntok == ntok ? "" : "  (token counts differ!)");
        else
            printf(" %8s %8s %12s | %7s\n", "-", "-", "-", "-");
        if (last) tokenizer_free(last);
        last = tok;
    }
    /* batch scaling with the last tokenizer: the corpus repeated to give threads work */
    if (last) {
        int maxt = omp_get_max_threads();
        size_t rep = 4, nb = n * rep;
        const char **bt = malloc(nb * sizeof *bt);
        size_t *bl = malloc(nb * sizeof *bl), *ns = malloc(nb * sizeof *ns);
        int32_t **ids = malloc(nb * sizeof *ids);
        for (size_t j = 0; j < nb; j++) { bt[j] = texts[j % n]; bl[j] = lens[j % n]; }
        /* wall-clock MB/s and speedup, and MB per CPU-second summed over threads: when the
         * latter stays flat, threads do not slow each other and scaling is bounded only by the
         * idle cores the machine has (a busy shared machine shows little wall-clock speedup) */
        printf("batch encode (%s, corpus x%zu, %d cores online):\n", names[nn - 1], rep, (int)sysconf(_SC_NPROCESSORS_ONLN));
        double base = 0;
        for (int t = 1; t <= maxt; t *= 2) {
            omp_set_num_threads(t);
            hone_error err;
            struct timespec c0, c1;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
            double t0 = now();
            if (tokenizer_encode_batch(last, bt, bl, nb, 0, ids, ns, &err)) { printf(" failed: %s\n", err.msg); break; }
            double dt = now() - t0;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
            double cpu = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
            for (size_t j = 0; j < nb; j++) free(ids[j]);
            if (t == 1) base = dt;
            printf("  %2d threads: %7.2f MB/s wall (%.2fx), %6.2f MB per CPU-second\n", t, bytes * rep / dt / 1e6, base / dt,
                   bytes * rep / cpu / 1e6);
            if (t * 2 > maxt && t != maxt) t = maxt / 2; /* always end on maxt */
        }
        free(bt); free(bl); free(ns); free(ids);
        tokenizer_free(last);
    }
    for (size_t j = 0; j < n; j++) free(texts[j]);
    free(texts);
    free(lens);
    return 0;
}
