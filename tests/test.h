/* test.h — the minimal test framework every tests/test_*.c uses.
 * A test binary registers cases with TEST_RUN(fn); each case PASSes unless a
 * CHECK fails, or SKIPs with test_skip(reason). The binary prints one line per
 * case and a final "RESULT p f s" line that tests/run.sh sums into
 * "N passed, N failed, N skipped". Every CHECK_CLOSE states its tolerance. */
#ifndef HONE_TEST_H
#define HONE_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tests' reproducible data: xorshift64 (13, 7, 17) on the caller's non-zero state, and a
 * float in [-1, 1) from its top 53 bits. */
static inline unsigned long long test_xorshift(unsigned long long *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}
static inline float test_uniform(unsigned long long *s) {
    return (float)((test_xorshift(s) >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}

static int test_n_pass, test_n_fail, test_n_skip;
static int test_cur_failed, test_cur_skipped;
static char test_skip_reason[512];

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "    %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            test_cur_failed = 1;                                                \
        }                                                                       \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_CLOSE(a, b, rtol, atol, what)                                     \
    do {                                                                        \
        double a_ = (a), b_ = (b);                                              \
        CHECK(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_), "%s: got %.9g want %.9g (rtol %g atol %g)", \
              what, a_, b_, (double)(rtol), (double)(atol));                    \
    } while (0)

static inline void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static inline void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(test_skip_reason, sizeof test_skip_reason, fmt, ap);
    va_end(ap);
    test_cur_skipped = 1;
}

static inline void test_run(const char *name, void (*fn)(void)) {
    test_cur_failed = 0;
    test_cur_skipped = 0;
    fn();
    if (test_cur_failed) {
        test_n_fail++;
        printf("FAIL %s\n", name);
    } else if (test_cur_skipped) {
        test_n_skip++;
        printf("SKIP %s: %s\n", name, test_skip_reason);
    } else {
        test_n_pass++;
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}
#define TEST_RUN(fn) test_run(#fn, fn)

static inline int test_finish(void) {
    printf("RESULT %d %d %d\n", test_n_pass, test_n_fail, test_n_skip);
    return test_n_fail ? 1 : 0;
}

/* Path of a file under ../shared (HONE_SHARED), or NULL when it is absent. */
static inline const char *test_shared(const char *rel) {
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("HONE_SHARED");
    if (!root) root = "../shared";
    char *p = buf[slot++ & 7];
    snprintf(p, 4096, "%s/%s", root, rel);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fclose(f);
    return p;
}

/* Path of a file in the source tree (HONE_SRCDIR), e.g. "tests/fixtures/x". */
static inline const char *test_src(const char *rel) {
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("HONE_SRCDIR");
    if (!root) root = ".";
    char *p = buf[slot++ & 7];
    snprintf(p, 4096, "%s/%s", root, rel);
    return p;
}

/* A fresh scratch directory for a test (removed by the caller if wanted). */
static inline const char *test_tmpdir(const char *tag) {
    static char buf[8][256];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 256, "/tmp/hone-test-%s-XXXXXX", tag);
    return mkdtemp(p);
}
#endif
