/* cli/search_run.c — a hyperparameter search's trials as child processes of hone itself
 * (fork + exec of /proc/self/exe): each in its own process group (a terminal's ^C reaches
 * the search, which passes it on once) and bound to its share of the cores (HONE_CPUSET);
 * the search waits for children and signals together (sigtimedwait), keeps
 * experiment.json current, and prints the ranked table at the end (search_run.h). Under
 * mpirun the ranks share the trials: trial t runs on rank t mod N (as a child process of that
 * rank, alone: no MPI), on the rank's own cores; rank 0 holds the lock, writes experiment.json
 * and, once every rank is done, reads the other ranks' trials back from their directories. */
#include "cli/search_run.h"
#include "dist/dist.h"
#include "base/threads.h"
#include "base/util.h"
#include "train/search.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

typedef struct {
    pid_t pid;      /* 0: free */
    int trial;
    double t0;
    char cpuset[THREADS_SET_LEN]; /* "" when the trial runs where the search runs */
} slot;

typedef struct {
    int kind;
    const char *name;           /* sft | dpo */
    const char *config;
    char *const *sets;
    int nsets;
    const hone_train_config *base;
    hone_search s;
    hone_trial_result *res;     /* (s.n_trials) */
    char **trial_json;          /* (s.n_trials) each trial's resolved configuration (config_json_text) */
    json_t *names;              /* search_varied_names: the values that tell trials apart */
    char exe[4096];
    char exp_path[4096];
    int threads_per_slot;       /* 0: the configuration's */
    int rank, size;             /* under mpirun: this rank runs the trials t with t % size == rank */
} search_ctx;

/* a trial is a run of its own, not a rank of this job: the launcher's variables stay out */
static void drop_mpi_env(void) {
    extern char **environ;
    static const char *const pre[] = {"OMPI_", "PMIX_", "PMI_", "OPAL_", "HYDRA_", "MPIR_"};
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; e && *e && !again; e++)
            for (size_t i = 0; i < sizeof pre / sizeof *pre; i++)
                if (!strncmp(*e, pre[i], strlen(pre[i]))) {
                    char name[256];
                    size_t n = strcspn(*e, "=");
                    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), *e);
                    unsetenv(name);
                    again = 1;
                    break;
                }
    }
}

static void trial_dir(const search_ctx *x, int t, char *out, size_t n) {
    char name[32];
    snprintf(name, sizeof name, "trial-%03d", t + 1);
    hone_path_join(out, n, x->base->output_dir, name);
}

/* "beta=0.1 learning_rate=5e-07": the trial's searched values */
static void trial_label(const search_ctx *x, int t, char *out, size_t n) {
    out[0] = 0;
    for (size_t i = 0; i < json_array_size(x->names); i++) {
        const char *name = json_string_value(json_array_get(x->names, i));
        char *txt = search_value_text(search_trial_value(&x->s, t, name));
        snprintf(out + strlen(out), n - strlen(out), "%s%s=%s", i ? " " : "", name, txt ? txt : "?");
        free(txt);
    }
}

/* every trial's configuration built and validated as its process will, before anything runs */
static int check_trials(search_ctx *x, hone_error *err) {
    for (int t = 0; t < x->s.n_trials; t++) {
        hone_train_config c;
        char **kv = NULL;
        int n = 0, rc = config_load(&c, x->config, x->kind, err);
        if (rc < 0) return -1;
        for (int i = 0; i < x->nsets && rc == 0; i++) rc = config_set_arg(&c, x->sets[i], err);
        if (rc == 0) rc = search_trial_sets(&x->s, t, x->base, &kv, &n, err);
        for (int i = 0; i < n && rc == 0; i++)
            if ((rc = config_set_arg(&c, kv[i], err)) < 0) hone_fail_prefix(err, "hyperparameters.%.*s", (int)strcspn(kv[i], "="), kv[i]);
        if (rc == 0) rc = config_validate(&c, err);
        if (rc == 0 && !(x->trial_json[t] = config_json_text(&c, err))) rc = -1;
        search_sets_free(kv, n);
        config_free(&c);
        if (rc < 0) {
            char label[1024];
            trial_label(x, t, label, sizeof label);
            return hone_fail_prefix(err, "trial-%03d (%s)", t + 1, label);
        }
    }
    if (!strncmp(x->s.metric, "eval_", 5) && !strcmp(x->base->eval_strategy, "no"))
        return hone_fail(err, "%s: searcher.metric %s needs evaluations (eval_strategy: steps or epoch, and eval data: test_size or a split: "
                              "eval source)", x->config, x->s.metric);
    return 0;
}

/* an experiment.json already there must describe the same trials */
static int check_earlier(search_ctx *x, hone_error *err) {
    if (!hone_file_exists(x->exp_path)) return 0;
    json_error_t je;
    json_t *o = json_load_file(x->exp_path, 0, &je), *trials = json_object_get(o, "trials");
    const char *cmd = json_string_value(json_object_get(o, "command"));
    int parsed = o != NULL;
    int same = json_is_array(trials) && json_array_size(trials) == (size_t)x->s.n_trials && cmd && !strcmp(cmd, x->name), bad = -1;
    for (int t = 0; same && t < x->s.n_trials; t++)
        if (!json_equal(json_object_get(json_array_get(trials, (size_t)t), "hyperparameters"), json_array_get(x->s.trials, (size_t)t)))
            same = 0, bad = t;
    if (same) { json_decref(o); return 0; }
    json_decref(o);
    if (bad >= 0)
        return hone_fail(err, "output_dir %s holds the experiment.json of another search (trial-%03d had other hyperparameters): choose "
                              "another output_dir, or set overwrite_output_dir: true to start this search afresh there",
                         x->base->output_dir, bad + 1);
    return hone_fail(err, "output_dir %s holds an experiment.json of another search (%s): choose another output_dir, or set "
                          "overwrite_output_dir: true to start this search afresh there",
                     x->base->output_dir, parsed ? "other trials" : je.text);
}

/* a trial completed earlier is kept only when it ran the configuration it would run now (every
 * key but where and how it ran: output_dir, resume_from_checkpoint, overwrite_output_dir, threads) */
static int check_completed(const search_ctx *x, int t, const char *dir, hone_error *err) {
    char p[4200], diff[512] = "";
    hone_path_join(p, sizeof p, dir, "hone_config.json");
    if (!hone_file_exists(p)) return 0; /* nothing to compare: its manifest's word stands */
    json_t *saved = json_load_file(p, 0, NULL), *now = json_loads(x->trial_json[t], 0, NULL);
    static const char *const free_keys[] = {"output_dir", "resume_from_checkpoint", "overwrite_output_dir", "threads", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(now, key, v) {
        int skip = 0;
        for (int i = 0; free_keys[i]; i++) skip |= !strcmp(key, free_keys[i]);
        if (!skip && !json_equal(v, json_object_get(saved, key)))
            snprintf(diff + strlen(diff), sizeof diff - strlen(diff), "%s%s", diff[0] ? ", " : "", key);
    }
    int bad = !saved || diff[0];
    json_decref(saved);
    json_decref(now);
    if (!bad) return 0;
    return hone_fail(err, "output_dir %s: trial-%03d completed with another configuration (%s differ): choose another output_dir, or "
                          "set overwrite_output_dir: true to run this search afresh there",
                     x->base->output_dir, t + 1, diff[0] ? diff : "its hone_config.json is not JSON; all");
}

static const char *experiment_status(const search_ctx *x, int stopped, int running) {
    if (running) return "running";
    if (stopped) return "stopped";
    for (int t = 0; t < x->s.n_trials; t++) if (x->res[t].status == TRIAL_FAILED) return "failed";
    for (int t = 0; t < x->s.n_trials; t++) if (x->res[t].status != TRIAL_COMPLETED) return "stopped";
    return "completed";
}

static int write_experiment(search_ctx *x, const char *status, hone_error *err) {
    search_rank(x->res, x->s.n_trials, x->s.smaller_is_better);
    return search_write_experiment(&x->s, x->exp_path, x->name, x->config, x->base->output_dir, status, x->res, err);
}

static int start_trial(search_ctx *x, slot *sl, int t, const sigset_t *old, hone_error *err) {
    char dir[4096], log[4200];
    trial_dir(x, t, dir, sizeof dir);
    if (hone_mkdirs(dir, err) < 0) return -1;
    hone_path_join(log, sizeof log, dir, "trial.log");
    char **kv = NULL;
    int n = 0;
    if (search_trial_sets(&x->s, t, x->base, &kv, &n, err) < 0) return -1;
    char outdir[4200], threads[64], resume[64];
    snprintf(outdir, sizeof outdir, "output_dir=%s", dir);
    snprintf(threads, sizeof threads, "threads=%d", x->threads_per_slot);
    /* overwrite_output_dir: the search starts afresh, so does each trial; else each resumes if it can */
    snprintf(resume, sizeof resume, "resume_from_checkpoint=%s", x->base->overwrite_output_dir ? "false" : "true");
    int argc = 0, cap = 2 * (x->nsets + n) + 16;
    char **argv = calloc((size_t)cap, sizeof *argv);
    if (!argv) { search_sets_free(kv, n); return hone_fail(err, "out of memory"); }
    argv[argc++] = x->exe;
    argv[argc++] = (char *)x->name;
    argv[argc++] = (char *)x->config;
    for (int i = 0; i < x->nsets; i++) argv[argc++] = "--set", argv[argc++] = x->sets[i];
    for (int i = 0; i < n; i++) argv[argc++] = "--set", argv[argc++] = kv[i];
    argv[argc++] = "--set", argv[argc++] = outdir;
    argv[argc++] = "--set", argv[argc++] = resume;
    if (x->threads_per_slot) argv[argc++] = "--set", argv[argc++] = threads;
    argv[argc++] = SEARCH_TRIAL_FLAG;
    argv[argc] = NULL;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* a terminal's ^C goes to the search, which passes it on once */
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* the search killed: the trial checkpoints and stops */
        if (getppid() != parent) _exit(143);
#endif
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644), in = open("/dev/null", O_RDONLY);
        if (fd < 0 || in < 0) _exit(126);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (sl->cpuset[0]) setenv("HONE_CPUSET", sl->cpuset, 1);
        drop_mpi_env();
        sigprocmask(SIG_SETMASK, old, NULL);
        execv(x->exe, argv);
        dprintf(2, "hone search: cannot run %s: %s\n", x->exe, strerror(errno));
        _exit(127);
    }
    free(argv);
    search_sets_free(kv, n);
    if (pid < 0) return hone_fail(err, "cannot start trial-%03d: %s", t + 1, strerror(errno));
    sl->pid = pid;
    sl->trial = t;
    sl->t0 = hone_now();
    char label[1024];
    trial_label(x, t, label, sizeof label);
    char mpath[4200];
    hone_path_join(mpath, sizeof mpath, dir, "manifest.json");
    fprintf(stderr, "search: trial-%03d/%03d [%s] %s%s%s\n", t + 1, x->s.n_trials, label, hone_file_exists(mpath) ? "resumed" : "started",
            sl->cpuset[0] ? " on cpus " : "", sl->cpuset);
    x->res[t].status = TRIAL_RUNNING;
    return 0;
}

/* the last non-empty line of path (a failed trial's error when its manifest has none) */
static char *last_line(const char *path) {
    char *text = NULL;
    size_t len = 0;
    if (hone_read_file(path, &text, &len, NULL) < 0) return NULL;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = 0;
    char *nl = strrchr(text, '\n'), *out = strdup(nl ? nl + 1 : text);
    free(text);
    return out;
}

static void end_trial(search_ctx *x, slot *sl, int st, int stopping) {
    int t = sl->trial;
    hone_trial_result *r = &x->res[t];
    char dir[4096], log[4200];
    trial_dir(x, t, dir, sizeof dir);
    hone_error e = {{0}};
    search_read_trial(dir, x->s.metric, r, &e);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->exit_status = code;
    if (code == 0) r->status = TRIAL_COMPLETED;
    else if (stopping && (code == 130 || code == 143 || WIFSIGNALED(st))) r->status = TRIAL_STOPPED;
    else {
        r->status = TRIAL_FAILED;
        if (!r->error) {
            hone_path_join(log, sizeof log, dir, "trial.log");
            r->error = WIFSIGNALED(st) ? NULL : last_line(log);
            if (!r->error) {
                char m[64];
                snprintf(m, sizeof m, WIFSIGNALED(st) ? "killed by signal %d" : "exit status %d", WIFSIGNALED(st) ? WTERMSIG(st) : code);
                r->error = strdup(m);
            }
        }
    }
    char metric[64] = "no value";
    if (r->has_metric) snprintf(metric, sizeof metric, "%.9g", r->metric);
    fprintf(stderr, "search: trial-%03d %s after %.1f s: %s %s at step %ld%s%s\n", t + 1, search_status_name(r->status), hone_now() - sl->t0,
            x->s.metric, metric, r->steps, r->error ? ": " : "", r->error ? r->error : "");
    sl->pid = 0;
}

/* the trials, up to `k` at once; returns the signal that stopped the search, or 0 */
static int run_trials(search_ctx *x, slot *slots, int k, hone_error *err) {
    sigset_t ss, old;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGCHLD);
    sigprocmask(SIG_BLOCK, &ss, &old);
    int next = 0, running = 0, stop = 0, rc = 0;
    for (;;) {
        while (!stop && rc == 0 && running < k && next < x->s.n_trials) {
            int t = next++;
            if (x->res[t].status == TRIAL_COMPLETED || t % x->size != x->rank) continue;
            slot *sl = NULL;
            for (int i = 0; i < k && !sl; i++) if (!slots[i].pid) sl = &slots[i];
            if (start_trial(x, sl, t, &old, err) < 0) { rc = -1; break; }
            running++;
            hone_error e = {{0}};
            if (x->rank == 0 && write_experiment(x, "running", &e) < 0) fprintf(stderr, "search: %s\n", e.msg);
        }
        if (!running) break;
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&ss, NULL, &ts);
        if ((sig == SIGINT || sig == SIGTERM) && !stop) {
            stop = sig;
            fprintf(stderr, "search: %s: stopping the running trial(s) at their next step (they save a checkpoint); run the same command "
                            "again to resume\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            for (int i = 0; i < k; i++) if (slots[i].pid) kill(slots[i].pid, sig);
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            for (int i = 0; i < k; i++) {
                if (slots[i].pid != p) continue;
                end_trial(x, &slots[i], st, stop);
                running--;
                hone_error e = {{0}};
                if (x->rank == 0 && write_experiment(x, running ? "running" : experiment_status(x, stop, 0), &e) < 0)
                    fprintf(stderr, "search: %s\n", e.msg);
            }
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc < 0 ? -1 : stop;
}

/* one search per output_dir at a time: the flock a run takes there (held until exit) */
static int lock_output_dir(const char *dir, hone_error *err) {
    char p[4200];
    hone_path_join(p, sizeof p, dir, ".hone.lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return hone_fail(err, "output_dir '%s': cannot create files there: %s", dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return hone_fail(err, "output_dir %s is in use by another hone run or search (%s is locked)", dir, p);
    }
    return fd;
}

int search_run(int kind, const char *config_path, char *const *sets, int nsets, const hone_train_config *base) {
    search_ctx x;
    memset(&x, 0, sizeof x);
    x.kind = kind;
    x.name = kind == HONE_SFT ? "sft" : "dpo";
    x.config = config_path;
    x.sets = sets;
    x.nsets = nsets;
    x.base = base;
    hone_error err = {{0}};
    int lock = -1, status = 1;
    slot *slots = NULL;
    if (search_load(&x.s, config_path, base, &err) <= 0) {
        if (!err.msg[0]) hone_fail(&err, "%s: no searcher block", config_path);
        fprintf(stderr, "hone %s: %s\n", x.name, err.msg);
        return 1;
    }
    if (!(x.res = calloc((size_t)x.s.n_trials + 1, sizeof *x.res)) || !(x.trial_json = calloc((size_t)x.s.n_trials + 1, sizeof(char *)))) {
        hone_fail(&err, "out of memory");
        goto out;
    }
    for (int t = 0; t < x.s.n_trials; t++) x.res[t].exit_status = -1;
    x.names = search_varied_names(&x.s);
    if (check_trials(&x, &err) < 0) goto out;
    ssize_t n = readlink("/proc/self/exe", x.exe, sizeof x.exe - 1);
    if (n <= 0) { hone_fail(&err, "cannot find the hone executable (/proc/self/exe) to run the trials"); goto out; }
    x.exe[n] = 0;
    x.rank = dist_rank(), x.size = dist_size();
    hone_path_join(x.exp_path, sizeof x.exp_path, base->output_dir, "experiment.json");
    /* rank 0 takes the directory and reads where an earlier run of this search left each
     * trial; the other ranks learn which trials are done from it */
    int ok = 1;
    if (x.rank == 0) {
        ok = hone_mkdirs(base->output_dir, &err) == 0 && (lock = lock_output_dir(base->output_dir, &err)) >= 0 &&
             (base->overwrite_output_dir || check_earlier(&x, &err) == 0);
        for (int t = 0; ok && t < x.s.n_trials; t++) {
            char dir[4096];
            trial_dir(&x, t, dir, sizeof dir);
            if (!base->overwrite_output_dir && search_read_trial(dir, x.s.metric, &x.res[t], &err) < 0) ok = 0;
            else if (x.res[t].status == TRIAL_COMPLETED && check_completed(&x, t, dir, &err) < 0) ok = 0;
        }
    }
    if (x.size > 1) {
        int *st = calloc((size_t)x.s.n_trials + 1, sizeof(int));
        if (!st) { dist_fail("out of memory", 1); goto out; }
        st[x.s.n_trials] = ok;
        for (int t = 0; x.rank == 0 && t < x.s.n_trials; t++) st[t] = x.res[t].status == TRIAL_COMPLETED;
        dist_bcast(st, sizeof(int) * ((size_t)x.s.n_trials + 1), 0);
        for (int t = 0; x.rank != 0 && t < x.s.n_trials; t++) if (st[t]) x.res[t].status = TRIAL_COMPLETED;
        ok = st[x.s.n_trials];
        free(st);
    }
    if (!ok) goto out; /* rank 0 says why */
    int todo = 0, done = 0;
    for (int t = 0; t < x.s.n_trials; t++) {
        if (x.res[t].status == TRIAL_COMPLETED) done++;
        else if (t % x.size == x.rank) todo++;
    }
    int k = x.s.max_concurrent_trials < todo ? x.s.max_concurrent_trials : todo;
    if (k < 1) k = 1;
    if (!(slots = calloc((size_t)k, sizeof *slots))) { hone_fail(&err, "out of memory"); goto out; }
    if (k > 1) {
        char (*sets_)[THREADS_SET_LEN] = calloc((size_t)k, sizeof *sets_);
        int got = sets_ ? threads_partition(NULL, k, sets_, &x.threads_per_slot, &err) : hone_fail(&err, "out of memory");
        if (got < 0) { free(sets_); goto out; }
        if (got < k) fprintf(stderr, "search: max_concurrent_trials %d lowered to %d, the number of cores\n", k, got);
        k = got;
        for (int i = 0; i < k; i++) snprintf(slots[i].cpuset, sizeof slots[i].cpuset, "%s", sets_[i]);
        free(sets_);
    }
    char ranks[96] = "";
    if (x.size > 1) snprintf(ranks, sizeof ranks, " on each of %d MPI ranks (trial t on rank t mod %d)", x.size, x.size);
    fprintf(stderr, "search: %s searcher, %d trial(s) of hone %s (%d completed earlier), %d at a time%s%s, ranked by %s (%s is better), in %s/\n",
            x.s.name, x.s.n_trials, x.name, done, k, k > 1 ? " on disjoint cores" : "", ranks, x.s.metric,
            x.s.smaller_is_better ? "smaller" : "larger", base->output_dir);
    int stop = run_trials(&x, slots, k, &err);
    if (stop < 0) {
        /* trials already running end on their own; the search stops them and waits */
        for (int i = 0; i < k; i++) if (slots[i].pid) { kill(slots[i].pid, SIGTERM); waitpid(slots[i].pid, NULL, 0); }
        if (x.size > 1) { char line[1200]; snprintf(line, sizeof line, "hone %s: %s", x.name, err.msg); dist_fail(line, 1); }
        goto out;
    }
    if (x.size > 1) {
        /* every rank's trials are done (or stopped): rank 0 reads the others' from their directories */
        double sig = stop;
        dist_sum_f64(&sig, 1);
        if (sig > 0 && !stop) stop = SIGTERM;
        for (int t = 0; x.rank == 0 && t < x.s.n_trials; t++) {
            char dir[4096];
            trial_dir(&x, t, dir, sizeof dir);
            hone_error e = {{0}};
            if (t % x.size != 0 && x.res[t].status != TRIAL_COMPLETED && search_read_trial(dir, x.s.metric, &x.res[t], &e) < 0)
                fprintf(stderr, "search: %s\n", e.msg);
        }
        if (x.rank != 0) { status = 0; goto out; } /* rank 0 reports, and its exit status is the search's */
    }
    const char *st = experiment_status(&x, stop != 0, 0);
    if (write_experiment(&x, st, &err) < 0) goto out;
    search_print_table(&x.s, x.res, stdout);
    fflush(stdout);
    int failed = 0;
    for (int t = 0; t < x.s.n_trials; t++) {
        failed += x.res[t].status == TRIAL_FAILED;
        if (x.res[t].status == TRIAL_COMPLETED && !x.res[t].has_metric)
            fprintf(stderr, "search: warning: trial-%03d never logged searcher.metric '%s' (see its metrics.jsonl): it is not ranked\n", t + 1,
                    x.s.metric);
    }
    fprintf(stderr, "search: %s; %d failed; wrote %s\n", st, failed, x.exp_path);
    status = stop ? 128 + stop : failed ? 1 : 0;
    err.msg[0] = 0;
out:
    if (err.msg[0]) fprintf(stderr, "hone %s: %s\n", x.name, err.msg);
    if (lock >= 0) close(lock);
    free(slots);
    if (x.res) search_results_free(x.res, x.s.n_trials);
    for (int t = 0; x.trial_json && t < x.s.n_trials; t++) free(x.trial_json[t]);
    free(x.trial_json);
    json_decref(x.names);
    search_free(&x.s);
    return status;
}
