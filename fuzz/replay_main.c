/* fuzz/replay_main.c — make check's replay of the fuzz inputs, no clang needed: linked
 * with one fuzz_T.c (FUZZ_TARGET "T"), it feeds every file of fuzz/corpus/T (the seed
 * corpus, which must exist) and fuzz/crashes/T (inputs that once crashed, if any) to
 * LLVMFuzzerTestOneInput, each as a malloc'd copy of exactly its size. A crash, a
 * sanitizer report (UBSan's too) or a hang kills the binary, which tests/run.sh counts as a failure;
 * the file being replayed is named on stderr first. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Under ./configure --enable-sanitize, undefined behaviour fails the replay as it fails
 * the fuzzer (UBSan reads this hook; other builds never call it). */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) { return "halt_on_error=1:print_stacktrace=1"; }

static char current[4096];

static void on_fatal(int sig) {
    static const char m[] = "replay: died on ";
    ssize_t k = write(2, m, sizeof m - 1);
    k = write(2, current, strlen(current));
    k = write(2, "\n", 1);
    (void)k;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays every regular file of dir in name order; returns how many, -1 when dir is absent. */
static long replay_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) abort();
            names = nn;
        }
        if (!(names[n++] = strdup(e->d_name))) abort();
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    long done = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(current, sizeof current, "%s/%s", dir, names[i]);
        FILE *f = fopen(current, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
        if (!buf || (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size)) abort();
        fclose(f);
        alarm(120); /* a hang is a failure too */
        LLVMFuzzerTestOneInput(buf, (size_t)size);
        alarm(0);
        free(buf);
        done++;
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return done;
}

int main(void) {
    const char *root = getenv("HONE_SRCDIR");
    if (!root) root = ".";
    signal(SIGSEGV, on_fatal), signal(SIGFPE, on_fatal), signal(SIGABRT, on_fatal), signal(SIGALRM, on_fatal);
    signal(SIGBUS, on_fatal), signal(SIGILL, on_fatal);
    char dir[4096];
    int pass = 0, fail = 0;
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", root, FUZZ_TARGET);
    long nc = replay_dir(dir);
    if (nc <= 0) printf("FAIL replay_%s_corpus: %s has no seed inputs\n", FUZZ_TARGET, dir), fail++;
    else printf("PASS replay_%s_corpus: %ld inputs\n", FUZZ_TARGET, nc), pass++;
    snprintf(dir, sizeof dir, "%s/fuzz/crashes/%s", root, FUZZ_TARGET);
    long nx = replay_dir(dir);
    printf("PASS replay_%s_crashes: %ld inputs that once crashed\n", FUZZ_TARGET, nx < 0 ? 0 : nx), pass++;
    printf("RESULT %d %d 0\n", pass, fail);
    return fail != 0;
}
