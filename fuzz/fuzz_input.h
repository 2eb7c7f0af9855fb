/* fuzz/fuzz_input.h — helpers shared by the fuzz targets: the input as a NUL-terminated
 * copy of exactly its size (so ASan sees any overread), and as a file for parsers that
 * take a path (an anonymous memfd named by /proc/self/fd, no disk traffic). */
#ifndef HONE_FUZZ_INPUT_H
#define HONE_FUZZ_INPUT_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* Writes data to a fresh memfd and its path into path; returns the fd (close it after). */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) abort();
    for (size_t o = 0; o < size;) {
        ssize_t k = write(fd, data + o, size - o);
        if (k <= 0) abort();
        o += (size_t)k;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}
#endif
