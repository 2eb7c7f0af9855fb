/* train/manifest.c — output_dir/manifest.json (manifest.h): built as a jansson document and
 * rewritten atomically at each stage, so a reader always sees a whole file. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "train/manifest.h"
#include "base/sha256.h"
#include "base/threads.h"
#include "base/util.h"
#include "config.h"
#include "simd/kernels.h"
#include <dirent.h>
#include <errno.h>
#include <hwloc.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>
#include <yaml.h>
#include <zlib.h>

#ifndef HONE_REVISION /* a config.h from before configure recorded it */
#define HONE_REVISION "unknown"
#endif
#define ROOT(m) ((json_t *)(m)->root)

static void iso_utc(char out[32]) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int manifest_write(hone_manifest *m, hone_error *err) {
    char *txt = json_dumps(ROOT(m), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!txt) return hone_fail(err, "%s: out of memory", m->path);
    size_t n = strlen(txt);
    txt[n] = '\n'; /* json_dumps leaves room for its NUL: end the file with a newline instead */
    int rc = hone_write_file(m->path, txt, n + 1, err);
    free(txt);
    return rc < 0 ? hone_fail_prefix(err, "manifest") : 0;
}

int manifest_sha256_file(const char *path, char hex[65], long long *bytes, hone_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return hone_fail(err, "%s: %s", path, strerror(errno));
    enum { BLOCK = 1 << 20 }; /* model files run to gigabytes: never the whole file in memory */
    unsigned char *buf = malloc(BLOCK);
    if (!buf) { fclose(f); return hone_fail(err, "%s: out of memory", path); }
    hone_sha256 s;
    sha256_init(&s);
    size_t got;
    long long total = 0;
    while ((got = fread(buf, 1, BLOCK, f)) > 0) { sha256_update(&s, buf, got); total += (long long)got; }
    int bad = ferror(f);
    free(buf);
    fclose(f);
    if (bad) return hone_fail(err, "%s: read error", path);
    uint8_t d[32];
    sha256_final(&s, d);
    sha256_hex(d, hex);
    if (bytes) *bytes = total;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* the regular files of dir (sorted; NULL-terminated, caller frees each and the array);
 * model_files: only what a Hugging Face model directory's loaders read */
static char **list_files(const char *dir, int model_files) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (model_files && !ends_with(e->d_name, ".json") && !ends_with(e->d_name, ".safetensors") &&
            !ends_with(e->d_name, ".model") && !ends_with(e->d_name, ".txt") && !ends_with(e->d_name, ".jinja"))
            continue;
        char p[4096];
        struct stat st;
        hone_path_join(p, sizeof p, dir, e->d_name);
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) continue;
        if (n + 1 >= cap) {
            char **w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w) break;
            v = w;
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (!v) return NULL;
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v) {
    for (char **p = v; p && *p; p++) free(*p);
    free(v);
}

/* appends {"role", "path", "bytes", "sha256"} (or "error") for one file to arr */
static void add_file(json_t *arr, const char *role, const char *path) {
    char hex[65];
    long long bytes = 0;
    hone_error e = {{0}};
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(role));
    json_object_set_new(o, "path", json_string(path));
    if (manifest_sha256_file(path, hex, &bytes, &e) == 0) {
        json_object_set_new(o, "bytes", json_integer(bytes));
        json_object_set_new(o, "sha256", json_string(hex));
    } else {
        json_object_set_new(o, "sha256", json_null());
        json_object_set_new(o, "error", json_string(e.msg));
    }
    json_array_append_new(arr, o);
}

/* a path that is a directory: each of its model files; else the file itself */
static void add_path(json_t *arr, const char *role, const char *path) {
    if (!hone_is_dir(path)) { add_file(arr, role, path); return; }
    char **v = list_files(path, 1);
    for (char **f = v; f && *f; f++) {
        char p[4096];
        hone_path_join(p, sizeof p, path, *f);
        add_file(arr, role, p);
    }
    free_list(v);
}

static json_t *libraries(void) {
    json_t *o = json_object();
    char pcre_ver[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre_ver);
    char hw[32];
    unsigned hv = hwloc_get_api_version();
    snprintf(hw, sizeof hw, "%u.%u.%u", hv >> 16, (hv >> 8) & 0xff, hv & 0xff);
    json_object_set_new(o, "pcre2", json_string(pcre_ver));
    json_object_set_new(o, "hwloc", json_string(hw));
    json_object_set_new(o, "libyaml", json_string(yaml_get_version_string()));
    json_object_set_new(o, "jansson", json_string(jansson_version_str()));
    json_object_set_new(o, "utf8proc", json_string(utf8proc_version()));
    json_object_set_new(o, "zlib", json_string(zlibVersion()));
    return o;
}

/* /proc/cpuinfo's "model name" (x86; "CPU part" style ARM lines are left to "unknown") */
static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !c) continue;
        c += 1 + (c[1] == ' ');
        c[strcspn(c, "\n")] = 0;
        snprintf(out, n, "%s", c);
        break;
    }
    if (f) fclose(f);
}

/* the CPU, the kernels chosen and where the threads run (what `hone info` prints) */
static json_t *machine(const hone_train_config *cfg) {
    json_t *o = json_object();
    hone_topology topo;
    hone_error e = {{0}};
    /* the placement threads_init chose: planning again gives the same (no binding here) */
    int have = threads_plan(&topo, getenv("HONE_TOPOLOGY"), cfg->threads, &e) == 0;
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    json_object_set_new(o, "cpu_model", json_string(cpu));
    json_object_set_new(o, "arch", json_string(HONE_ARCH));
    json_object_set_new(o, "isa", json_string(hone_kt.isa ? hone_kt.isa : "unknown"));
    json_object_set_new(o, "openmp", json_boolean(HONE_HAVE_OPENMP));
    int nt = threads_count();
    json_object_set_new(o, "threads", json_integer(nt));
    /* threads_init pins one thread per core on the real machine (not a HONE_TOPOLOGY one) */
    const char *desc = getenv("HONE_TOPOLOGY");
    json_object_set_new(o, "pinned", json_boolean(have && HONE_HAVE_OPENMP && !(desc && *desc) && nt <= topo.cores));
    if (have) {
        json_t *cores = json_array(), *numa = json_array();
        for (int t = 0; t < topo.threads && t < HONE_MAX_THREADS; t++) {
            json_array_append_new(cores, json_integer(topo.core_of_thread[t]));
            json_array_append_new(numa, json_integer(topo.numa_of_thread[t]));
        }
        json_object_set_new(o, "core_of_thread", cores);
        json_object_set_new(o, "numa_of_thread", numa);
        json_object_set_new(o, "cores", json_integer(topo.cores));
        json_object_set_new(o, "numa_nodes", json_integer(topo.numa_nodes));
    }
    /* a trial of a concurrent search runs inside its share of the cores (core_of_thread indexes them) */
    const char *set = getenv("HONE_CPUSET");
    json_object_set_new(o, "cpuset", set && *set ? json_string(set) : json_null());
    return o;
}

int manifest_init(hone_manifest *m, const hone_train_config *cfg, const char *config_json, hone_error *err) {
    memset(m, 0, sizeof *m);
    hone_path_join(m->path, sizeof m->path, cfg->output_dir ? cfg->output_dir : ".", "manifest.json");
    json_error_t je;
    json_t *conf = config_json ? json_loads(config_json, 0, &je) : json_object();
    if (!conf) return hone_fail(err, "manifest: the resolved configuration is not JSON (%s)", je.text);
    json_t *r = json_object();
    m->root = r;
    m->t_start = hone_now();
    char now[32];
    iso_utc(now);
    json_object_set_new(r, "manifest_version", json_integer(1));
    json_object_set_new(r, "command", json_string(cfg->kind == HONE_DPO ? "dpo" : "sft"));
    json_object_set_new(r, "status", json_string("running"));
    json_object_set_new(r, "exit_status", json_null());
    json_object_set_new(r, "start_time", json_string(now));
    json_object_set_new(r, "end_time", json_null());
    json_object_set_new(r, "elapsed_seconds", json_null());
    json_object_set_new(r, "pid", json_integer(getpid()));
    json_object_set_new(r, "hone_version", json_string(HONE_VERSION));
    json_object_set_new(r, "source_revision", json_string(HONE_REVISION));
    json_object_set_new(r, "seed", json_integer(cfg->seed));
    json_object_set_new(r, "data_seed", json_integer((json_int_t)pipeline_data_seed(cfg)));
    json_object_set_new(r, "machine", machine(cfg));
    json_object_set_new(r, "libraries", libraries());
    json_object_set_new(r, "config", conf);
    json_object_set_new(r, "files", json_array());
    return manifest_write(m, err);
}

int manifest_hash_inputs(hone_manifest *m, const hone_train_config *cfg, hone_error *err) {
    json_t *files = json_object_get(ROOT(m), "files");
    add_path(files, "model", cfg->model_name_or_path);
    for (int i = 0; i < cfg->data.n_datasets; i++) add_path(files, "data", cfg->data.datasets[i].path);
    if (cfg->chat_template_path) add_path(files, "chat_template", cfg->chat_template_path);
    /* DPO's reference: another model directory, else the policy's own files (listed once) */
    if (cfg->kind == HONE_DPO && !cfg->reference_free && cfg->ref_model_name_or_path &&
        strcmp(cfg->ref_model_name_or_path, cfg->model_name_or_path))
        add_path(files, "ref_model", cfg->ref_model_name_or_path);
    return manifest_write(m, err);
}

int manifest_hash_pipeline(hone_manifest *m, const hone_pipeline *p, hone_error *err) {
    /* the tokenizer as trained with (chat tokens added, template written in): its staged
     * files, hashed together as "name NUL sha256 LF" per file in name order */
    json_t *tok = json_object(), *tfiles = json_array();
    hone_sha256 all;
    sha256_init(&all);
    char **v = list_files(p->tok_dir, 0);
    for (char **f = v; f && *f; f++) {
        char path[4096], hex[65];
        long long bytes;
        hone_path_join(path, sizeof path, p->tok_dir, *f);
        if (manifest_sha256_file(path, hex, &bytes, err) < 0) { free_list(v); json_decref(tok); json_decref(tfiles); return -1; }
        sha256_update(&all, *f, strlen(*f) + 1);
        sha256_update(&all, hex, 64);
        sha256_update(&all, "\n", 1);
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(*f));
        json_object_set_new(o, "bytes", json_integer(bytes));
        json_object_set_new(o, "sha256", json_string(hex));
        json_array_append_new(tfiles, o);
    }
    free_list(v);
    uint8_t d[32];
    char hex[65];
    sha256_final(&all, d);
    sha256_hex(d, hex);
    json_object_set_new(tok, "sha256", json_string(hex));
    json_object_set_new(tok, "files", tfiles);
    json_object_set_new(ROOT(m), "tokenizer", tok);

    /* the chat template: the Jinja source the staged tokenizer_config.json carries (built-ins
     * are written there as Jinja), else the format's name */
    char path[4200];
    hone_path_join(path, sizeof path, p->tok_dir, "tokenizer_config.json");
    json_t *tc = json_load_file(path, 0, NULL), *src = tc ? json_object_get(tc, "chat_template") : NULL;
    char *text = src ? (json_is_string(src) ? strdup(json_string_value(src)) : json_dumps(src, JSON_COMPACT)) : NULL;
    const char *name = p->have_tpl && p->tpl.name ? p->tpl.name : "none";
    const char *h = text ? text : name;
    hone_sha256 s;
    sha256_init(&s);
    sha256_update(&s, h, strlen(h));
    sha256_final(&s, d);
    sha256_hex(d, hex);
    json_t *t = json_object();
    json_object_set_new(t, "name", json_string(name));
    json_object_set_new(t, "source", json_string(text ? "tokenizer_config.json chat_template" : "name"));
    json_object_set_new(t, "sha256", json_string(hex));
    json_object_set_new(ROOT(m), "chat_template", t);
    free(text);
    json_decref(tc);
    return manifest_write(m, err);
}

void manifest_finish(hone_manifest *m, int exit_status, const char *error) {
    if (!m->root) return;
    json_t *r = ROOT(m);
    char now[32];
    iso_utc(now);
    const char *status = exit_status == 0 ? "completed" : exit_status > 128 ? "stopped" : "failed";
    json_object_set_new(r, "status", json_string(status));
    json_object_set_new(r, "exit_status", json_integer(exit_status));
    json_object_set_new(r, "end_time", json_string(now));
    json_object_set_new(r, "elapsed_seconds", json_real(hone_now() - m->t_start));
    if (exit_status != 0 && exit_status <= 128 && error && *error) json_object_set_new(r, "error", json_string(error));
    hone_error e = {{0}};
    if (manifest_write(m, &e) < 0) fprintf(stderr, "warning: %s\n", e.msg);
}

void manifest_free(hone_manifest *m) {
    if (m->root) json_decref(ROOT(m));
    m->root = NULL;
}
