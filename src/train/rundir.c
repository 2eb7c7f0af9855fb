/* train/rundir.c — output_dir: lock, stale temporaries, fresh-or-resume policy and the
 * configuration check (rundir.h). */
#include "train/rundir.h"
#include "dist/dist.h"
#include "base/util.h"
#include "train/train.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* 1 when process pid is known to be gone (a live pid of another user counts as alive) */
static int pid_gone(long pid) { return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH; }

/* "NAME<mark>PID" -> PID (NAME non-empty, PID all digits), else -1; *name_len: NAME's length */
static long marked_pid(const char *e, const char *mark, size_t *name_len) {
    const char *m = strstr(e, mark);
    if (!m || m == e) return -1;
    const char *d = m + strlen(mark);
    char *end;
    long pid = strtol(d, &end, 10);
    if (!*d || *end || pid <= 0) return -1;
    *name_len = (size_t)(m - e);
    return pid;
}

int rundir_clean_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int handled = 0;
    struct dirent *e;
    char names[256][256];
    int n = 0;
    /* collect first: renaming while reading a directory may skip or repeat entries */
    while ((e = readdir(d)) && n < 256)
        if (strlen(e->d_name) < sizeof names[0] && (strstr(e->d_name, ".tmp-") || strstr(e->d_name, ".old-") ||
                                                     !strncmp(e->d_name, ".hone-tokenizer-", 16)))
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i];
        char path[4096], orig[4096];
        size_t len;
        hone_path_join(path, sizeof path, dir, nm);
        long pid = !strncmp(nm, ".hone-tokenizer-", 16) ? strtol(nm + 16, NULL, 10) : marked_pid(nm, ".tmp-", &len);
        if (pid > 0) {
            if (!pid_gone(pid) || !hone_is_dir(path)) continue;
            hone_remove_tree(path, NULL);
            fprintf(stderr, "%s: removed %s, left by process %ld which is gone\n", dir, nm, pid);
            handled++;
            continue;
        }
        if ((pid = marked_pid(nm, ".old-", &len)) < 0 || !pid_gone(pid) || !hone_is_dir(path)) continue;
        /* NAME.old-PID is the previous NAME, set aside just before the new one was renamed in */
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)len, nm);
        hone_path_join(orig, sizeof orig, dir, base);
        if (!hone_is_dir(orig) && rename(path, orig) == 0)
            fprintf(stderr, "%s: restored %s from %s (its replacement by process %ld was interrupted)\n", dir, base, nm, pid);
        else {
            hone_remove_tree(path, NULL);
            fprintf(stderr, "%s: removed %s, left by process %ld which is gone\n", dir, nm, pid);
        }
        handled++;
    }
    return handled;
}

/* keys a resume may change without changing what was trained so far: where and how it runs,
 * logging, evaluation and saving, and the run's length (extending or shortening a run, as
 * transformers allows; the schedule follows the new total, and a checkpoint already past it
 * is refused when the trainer state is read) */
static const char *const resume_free_keys[] = {"output_dir", "resume_from_checkpoint", "overwrite_output_dir", "threads",
                                               "report_to", "logging_dir", "logging_steps", "logging_first_step", "eval_strategy", "eval_steps",
                                               "eval_on_start", "per_device_eval_batch_size", "save_steps", "save_total_limit",
                                               "max_steps", "num_train_epochs", "zero_stage",
                                               /* compared as their product, the global batch (below) */
                                               "gradient_accumulation_steps", "data_parallel_ranks", NULL};

/* gradient_accumulation_steps x data_parallel_ranks (1 when absent): the micro-batches of one
 * optimizer step over all ranks, which a resume at another rank count must keep */
static long global_accum(json_t *c) {
    json_t *a = json_object_get(c, "gradient_accumulation_steps"), *r = json_object_get(c, "data_parallel_ranks");
    return (json_is_integer(a) ? (long)json_integer_value(a) : 1) * (json_is_integer(r) ? (long)json_integer_value(r) : 1);
}

int rundir_config_diff(const char *saved, const char *current, char *diff, size_t n) {
    json_t *a = json_loads(saved, 0, NULL), *b = json_loads(current, 0, NULL);
    diff[0] = 0;
    if (!a || !b || !json_is_object(a) || !json_is_object(b)) { json_decref(a); json_decref(b); return -1; }
    int k = 0;
    size_t o = 0;
    const char *key;
    json_t *va;
    json_object_foreach(a, key, va) {
        json_t *vb = json_object_get(b, key);
        int free_key = 0;
        for (int i = 0; resume_free_keys[i]; i++) free_key |= !strcmp(key, resume_free_keys[i]);
        if (free_key || !vb || json_equal(va, vb)) continue;
        /* json_equal treats 1 and 1.0 as different types; compare numbers by value */
        if (json_is_number(va) && json_is_number(vb) && json_number_value(va) == json_number_value(vb)) continue;
        size_t fl = JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15); /* 2e-05, not 2.0000000000000002e-5 */
        char *ta = json_dumps(va, fl), *tb = json_dumps(vb, fl);
        if (o < n) {
            int w = snprintf(diff + o, n - o, "%s%s: %.60s there, %.60s here", k ? "; " : "", key, ta ? ta : "?", tb ? tb : "?");
            o += w > 0 ? (size_t)w : 0;
        }
        free(ta);
        free(tb);
        k++;
    }
    if (global_accum(a) != global_accum(b) && o < n) {
        int w = snprintf(diff + o, n - o, "%sgradient_accumulation_steps x ranks (the global batch): %ld there, %ld here", k ? "; " : "",
                         global_accum(a), global_accum(b));
        o += w > 0 ? (size_t)w : 0;
        k++;
    }
    if (o >= n && n > 4) memcpy(diff + n - 4, "...", 4);
    json_decref(a);
    json_decref(b);
    return k;
}


/* removes dir/name when it is there; 1 when it was */
static int remove_entry(const char *dir, const char *name) {
    char p[4096];
    hone_path_join(p, sizeof p, dir, name);
    if (access(p, F_OK) != 0) return 0;
    hone_remove_tree(p, NULL);
    return 1;
}

/* the checkpoint-N entries of dir: their count, the highest in *last (or "") */
static int list_checkpoints(const char *dir, int remove, char *last, size_t n) {
    DIR *d = opendir(dir);
    int k = 0, best = -1;
    struct dirent *e;
    char names[1024][64];
    while (d && (e = readdir(d))) {
        int v;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%d%c", &v, &tail) != 1 || v < 0) continue;
        if (v > best) best = v;
        if (k < 1024) snprintf(names[k], sizeof names[k], "%.63s", e->d_name);
        k++;
    }
    if (d) closedir(d);
    if (last && best >= 0) snprintf(last, n, "checkpoint-%d", best);
    else if (last) last[0] = 0;
    for (int i = 0; remove && i < k && i < 1024; i++) remove_entry(dir, names[i]);
    return k;
}

static int check_resume(hone_rundir *r, hone_error *err) {
    char p[4096], *saved = NULL;
    size_t len;
    hone_path_join(p, sizeof p, r->resume, "hone_config.json");
    if (hone_read_file(p, &saved, &len, NULL) < 0) {
        /* checkpoints of older hone versions: the copy in the run directory that holds it */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", r->resume);
        char *sl = strrchr(parent, '/');
        if (sl) *sl = 0;
        else snprintf(parent, sizeof parent, ".");
        hone_path_join(p, sizeof p, parent, "hone_config.json");
        if (hone_read_file(p, &saved, &len, NULL) < 0) {
            fprintf(stderr, "warning: resume_from_checkpoint: neither %s nor %s has a hone_config.json: cannot check that it "
                            "belongs to this configuration\n", r->resume, parent);
            return 0;
        }
    }
    char diff[640];
    int k = rundir_config_diff(saved, r->config_json, diff, sizeof diff);
    free(saved);
    if (k < 0) return hone_fail(err, "%s: not a JSON object; cannot check the resume against it", p);
    if (k > 0)
        return hone_fail(err, "resume_from_checkpoint: %s was trained with another configuration (%s, per %s); resume with "
                              "those settings, or start fresh with overwrite_output_dir: true or another output_dir",
                         r->resume, diff, p);
    return 0;
}

/* a fresh run: refuse an earlier run's checkpoints unless overwriting; start metrics anew */
static int prepare_fresh(hone_rundir *r, const hone_train_config *cfg, hone_error *err) {
    const char *dir = cfg->output_dir;
    char last[64], p[4096];
    int nck = list_checkpoints(dir, 0, last, sizeof last);
    if (nck && !cfg->overwrite_output_dir)
        return hone_fail(err, "output_dir %s holds %d checkpoint(s) of an earlier run (the newest %s): set resume_from_checkpoint: "
                              "true to continue it, overwrite_output_dir: true to replace it, or choose another output_dir",
                         dir, nck, last);
    int same = 0;
    char *saved = NULL;
    size_t len;
    hone_path_join(p, sizeof p, dir, "hone_config.json");
    if (hone_read_file(p, &saved, &len, NULL) == 0) {
        char diff[64];
        same = rundir_config_diff(saved, r->config_json, diff, sizeof diff) == 0;
        free(saved);
    }
    if (cfg->overwrite_output_dir) {
        nck = list_checkpoints(dir, 1, NULL, 0);
        int fin = remove_entry(dir, "final");
        if (nck || fin) fprintf(stderr, "overwrite_output_dir: removed %d checkpoint(s)%s of the earlier run in %s\n", nck, fin ? " and final/" : "", dir);
        same = 0;
    }
    remove_entry(dir, "metrics.jsonl"); /* a fresh run's log starts empty */
    /* precomputed reference log-probs are kept only for the very same configuration */
    if (!same && remove_entry(dir, "ref_logps_train.safetensors"))
        fprintf(stderr, "%s: removed ref_logps_train.safetensors of an earlier run with another configuration\n", dir);
    return 0;
}

char *rundir_config_text(const hone_train_config *cfg, hone_error *err) {
    char *txt = config_json_text(cfg, err);
    if (!txt || dist_size() <= 1) return txt;
    /* a data-parallel run records its rank count after the last key: "...\n}" */
    char *end = strrchr(txt, '}'), *out = NULL;
    if (end && asprintf(&out, "%.*s,\n  \"data_parallel_ranks\": %d\n}\n", (int)(end - txt), txt, dist_size()) < 0) out = NULL;
    while (out && (end = strstr(out, "\n,\n"))) memmove(end, end + 1, strlen(end)); /* no blank line before the comma */
    free(txt);
    if (!out) hone_fail(err, "out of memory");
    return out;
}

int rundir_follow(hone_rundir *r, const hone_train_config *cfg, const char *resume, hone_error *err) {
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
    snprintf(r->resume, sizeof r->resume, "%s", resume ? resume : "");
    return (r->config_json = rundir_config_text(cfg, err)) ? 0 : -1;
}

int rundir_open(hone_rundir *r, const hone_train_config *cfg, hone_error *err) {
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
    const char *dir = cfg->output_dir;
    if (hone_mkdirs(dir, err) < 0) return -1;
    char p[4096];
    hone_path_join(p, sizeof p, dir, ".hone.lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return hone_fail(err, "output_dir '%s': cannot create files there: %s", dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = {0};
        ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
        if (got > 0 && pid[got - 1] == '\n') pid[got - 1] = 0;
        close(fd);
        return hone_fail(err, "output_dir %s is in use by another hone run (pid %s holds %s): wait for it to end, or choose another "
                              "output_dir", dir, pid[0] ? pid : "unknown", p);
    }
    char me[32];
    int w = snprintf(me, sizeof me, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, me, (size_t)w, 0) != w) { /* the pid is only for the message above */ }
    r->lock_fd = fd;
    rundir_clean_stale(dir);
    if (!(r->config_json = rundir_config_text(cfg, err))) goto fail;
    const char *res = cfg->resume_from_checkpoint;
    if (res && (!strcmp(res, "last") || !strcmp(res, "true"))) {
        if (trainer_find_last_checkpoint(dir, r->resume, sizeof r->resume) < 0)
            fprintf(stderr, "resume_from_checkpoint: no checkpoint in %s, starting fresh\n", dir);
    } else if (res && *res) {
        if (!hone_is_dir(res)) { hone_fail(err, "resume_from_checkpoint: %s is not a checkpoint directory", res); goto fail; }
        snprintf(r->resume, sizeof r->resume, "%s", res);
    }
    if (r->resume[0] ? check_resume(r, err) < 0 : prepare_fresh(r, cfg, err) < 0) goto fail;
    hone_path_join(p, sizeof p, dir, "hone_config.json");
    if (hone_write_file(p, r->config_json, strlen(r->config_json), err) < 0) goto fail;
    return 0;
fail:
    rundir_close(r);
    return -1;
}

void rundir_close(hone_rundir *r) {
    if (r->lock_fd >= 0) close(r->lock_fd); /* closing drops the flock */
    free(r->config_json);
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
}
