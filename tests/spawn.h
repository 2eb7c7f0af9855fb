/* tests/spawn.h — running the built `hone` from a test: a child with its output in a log
 * file, and its exit status within a time limit (so a hang fails instead of hanging).
 * Used by test_run_safety.c, test_manifest.c, test_search.c, test_lora_e2e.c and test_mpi.c; the
 * stories260K helpers at the end by test_lora_e2e.c and test_mpi.c. */
#ifndef HONE_TEST_SPAWN_H
#define HONE_TEST_SPAWN_H
#include "base/util.h"
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* the built hone (HONE_BIN, which `make check` sets), or NULL */
static inline const char *test_hone_bin(void) {
    const char *b = getenv("HONE_BIN");
    return b && access(b, X_OK) == 0 ? b : NULL;
}

/* whether two files hold the same bytes */
static inline int test_files_equal(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int eq = hone_read_file(a, &x, &nx, NULL) == 0 && hone_read_file(b, &y, &ny, NULL) == 0 && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return eq;
}

/* starts argv with stdout and stderr to log (stdin from /dev/null) */
static inline pid_t test_spawn(char *const argv[], const char *log) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644), in = open("/dev/null", O_RDONLY);
        if (fd < 0 || in < 0) _exit(126);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* exit status of pid within secs (128 + n when killed by signal n), or -1 after a
 * SIGKILL when it had not ended by then; took: the seconds waited (may be NULL) */
static inline int test_wait(pid_t pid, double secs, double *took) {
    double t0 = hone_now();
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (hone_now() - t0 > secs) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            if (took) *took = hone_now() - t0;
            return -1;
        }
        usleep(20000);
    }
    if (took) *took = hone_now() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* runs hone with args (NULL-terminated) to completion, output in log; exit status, -1 on timeout */
static inline int test_run_hone(const char *log, double secs, ...) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)test_hone_bin();
    va_list ap;
    va_start(ap, secs);
    char *a;
    while (n < 31 && (a = va_arg(ap, char *))) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return test_wait(test_spawn(argv, log), secs, NULL);
}

/* stories260K as a HF model directory root/model (hone convert); 0, or -1 with the log in
 * root/convert.log */
static inline int test_convert_stories(const char *root, const char *bin, const char *spm) {
    char model[512], log[512];
    snprintf(model, sizeof model, "%s/model", root);
    snprintf(log, sizeof log, "%s/convert.log", root);
    return test_run_hone(log, 60, "convert", "llama2c", bin, model, "--tokenizer", spm, NULL) == 0 ? 0 : -1;
}

/* The little story data sets the end-to-end tests train stories260K on: root/sft.jsonl (n_sft
 * prompt/completion rows) and root/dpo.jsonl (n_dpo pairs; those from n_dpo_found on use
 * another verb and name/thing pairs, to be held out). */
static inline void test_story_data(const char *root, int n_sft, int n_dpo, int n_dpo_found) {
    static const char *const names[] = {"Tom", "Lily", "Ben", "Sara", "Max", "Mia", "Sam", "Anna", "Tim", "Lucy", "Jack", "Emma"};
    static const char *const things[] = {"a red ball", "a big dog", "a little cat", "a shiny stone", "a blue car", "a tall tree",
                                         "a happy bird", "a small boat"};
    char p[512];
    snprintf(p, sizeof p, "%s/sft.jsonl", root);
    FILE *f = fopen(p, "w");
    for (int i = 0; f && i < n_sft; i++)
        fprintf(f, "{\"prompt\": \"%s saw %s.\", \"completion\": \" %s was very happy and played with it all day.\"}\n", names[i % 12],
                things[i % 8], names[i % 12]);
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/dpo.jsonl", root);
    f = fopen(p, "w");
    for (int i = 0; f && i < n_dpo; i++)
        fprintf(f, "{\"prompt\": \"%s %s %s.\", \"chosen\": \" %s was happy.\", \"rejected\": \" The %s ate the sun.\"}\n", names[i % 12],
                i < n_dpo_found ? "found" : "got", things[(i * 5) % 8], names[i % 12], things[(i * 3) % 8] + 2);
    if (f) fclose(f);
}
#endif
