/* base/util.c — allocation, file and directory helpers (util.h). */
#include "base/util.h"
#include <errno.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Buffers of at least this size are 2 MiB-aligned and asked for transparent huge
 * pages: weights and activations are streamed, and with 4 KiB pages every page is a
 * TLB miss and a point where the hardware prefetcher stops (decoding a 135M model
 * read its weights 25-30% faster with huge pages here). */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

/* Bytes actually allocated for a request (64-byte multiple, 2 MiB for huge buffers). */
static size_t alloc_size(size_t bytes) {
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (sz == 0) sz = 64;
    return sz >= HUGE_MIN ? (sz + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1) : sz;
}

void *hone_alloc_uninit(size_t bytes, hone_error *err) {
    void *p = NULL;
    size_t sz = alloc_size(bytes);
    int huge = sz >= HUGE_MIN;
    if (posix_memalign(&p, huge ? HUGE_ALIGN : 64, sz) != 0) {
        hone_fail(err, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    if (huge) madvise(p, sz, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#endif
    return p;
}

void hone_release_pages(const void *p, size_t bytes) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p, hi = lo + bytes;
    lo = (lo + page - 1) / page * page;
    hi = hi / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void *hone_alloc(size_t bytes, hone_error *err) {
    void *p = hone_alloc_uninit(bytes, err);
    if (!p) return NULL;
    size_t sz = alloc_size(bytes);
    int huge = sz >= HUGE_MIN;
#ifdef _OPENMP
    /* First touch: a large buffer is zeroed by the OpenMP threads in equal static
     * shares (threads_first_touch's split), so on a multi-node machine each share's
     * pages land on the NUMA node of the thread whose static share of a row loop
     * uses them. Inside a parallel region (or with one thread) the caller zeroes. */
    if (huge && !omp_in_parallel() && omp_get_max_threads() > 1) {
        int nt = omp_get_max_threads();
        size_t share = (sz / nt + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int t = 0; t < nt; t++) {
            size_t lo = share * t, hi = lo + share < sz ? lo + share : sz;
            if (lo < hi) memset((char *)p + lo, 0, hi - lo);
        }
        return p;
    }
#endif
    memset(p, 0, sz); /* also faults the pages in, on this thread */
    return p;
}

int hone_read_file(const char *path, char **out, size_t *len, hone_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return hone_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return hone_fail(err, "%s: cannot seek", path); }
    long n = ftell(f);
    if (n < 0) { fclose(f); return hone_fail(err, "%s: cannot tell size", path); }
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (!buf) { fclose(f); return hone_fail(err, "%s: out of memory (%ld bytes)", path, n); }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return hone_fail(err, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    if (len) *len = (size_t)n;
    return 0;
}

void hone_fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

int hone_write_file(const char *path, const void *data, size_t len, hone_error *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return hone_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return hone_fail(err, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) { unlink(tmp); return hone_fail(err, "%s: fsync/close failed", tmp); }
    if (rename(tmp, path) != 0) { unlink(tmp); return hone_fail(err, "%s: rename failed: %s", path, strerror(errno)); }
    return 0;
}

int hone_mkdirs(const char *path, hone_error *err) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return hone_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return hone_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
    return 0;
}

int hone_copy_file(const char *src, const char *dst, hone_error *err) {
    char *data;
    size_t len;
    if (hone_read_file(src, &data, &len, err) < 0) return -1;
    int rc = hone_write_file(dst, data, len, err);
    free(data);
    return rc;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }
int hone_remove_tree(const char *path, hone_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) != 0) return hone_fail(err, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

int hone_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
int hone_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
void hone_path_join(char *out, size_t n, const char *dir, const char *name) {
    size_t l = strlen(dir);
    snprintf(out, n, "%s%s%s", dir, (l && dir[l - 1] == '/') ? "" : "/", name);
}
double hone_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
