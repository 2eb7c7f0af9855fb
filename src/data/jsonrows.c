/* data/jsonrows.c — row streaming for dataset files (see jsonrows.h). */
#include "data/jsonrows.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Reads one line of any length into *buf (grown as needed). Returns its length
 * without the newline, or -1 at end of file. */
static long gz_getline(gzFile g, char **buf, size_t *cap, int *gzerr) {
    size_t len = 0;
    *gzerr = 0;
    for (;;) {
        if (*cap - len < 2) {
            size_t nc = *cap ? *cap * 2 : 1 << 16;
            char *nb = realloc(*buf, nc);
            if (!nb) { *gzerr = Z_MEM_ERROR; return -1; }
            *buf = nb, *cap = nc;
        }
        if (!gzgets(g, *buf + len, (int)(*cap - len))) {
            int e;
            gzerror(g, &e);
            if (e != Z_OK && e != Z_STREAM_END) *gzerr = e;
            return len ? (long)len : -1;
        }
        len += strlen(*buf + len);
        if (len && (*buf)[len - 1] == '\n') {
            (*buf)[--len] = 0;
            if (len && (*buf)[len - 1] == '\r') (*buf)[--len] = 0;
            return (long)len;
        }
        if (gzeof(g)) return (long)len;
    }
}

static int blank(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return !*s;
}

static int read_jsonl(gzFile g, const char *path, char *first, size_t first_cap, jsonrows_fn fn, void *ud, hone_error *err) {
    char *buf = first;
    size_t cap = first_cap;
    long line = 0, n;
    int gzerr, rc = 0;
    while ((n = gz_getline(g, &buf, &cap, &gzerr)) >= 0) {
        line++;
        if (blank(buf)) continue;
        json_error_t je;
        json_t *row = json_loadb(buf, (size_t)n, JSON_DECODE_ANY, &je);
        char why[300];
        if (!row) snprintf(why, sizeof why, "bad JSON at column %d: %s", je.column, je.text);
        rc = fn(ud, row, line, row ? NULL : why, err);
        json_decref(row);
        if (rc) break;
    }
    if (!rc && gzerr) rc = hone_fail(err, "%s:%ld: read error (%s)", path, line + 1, gzerr == Z_MEM_ERROR ? "out of memory" : "corrupt gzip data");
    free(buf);
    return rc;
}

static int read_array(gzFile g, const char *path, jsonrows_fn fn, void *ud, hone_error *err) {
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) return hone_fail(err, "out of memory");
    for (;;) {
        if (cap - len < (1 << 16)) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); return hone_fail(err, "%s: out of memory", path); }
            buf = nb, cap *= 2;
        }
        int got = gzread(g, buf + len, (unsigned)(cap - len - 1));
        if (got < 0) { free(buf); return hone_fail(err, "%s: read error (corrupt gzip data?)", path); }
        if (got == 0) break;
        len += (size_t)got;
    }
    buf[len] = 0;
    size_t pos = 0, counted = 0;
    long line = 1;
    /* advance the line count up to pos */
#define SKIP_WS() do { while (pos < len && strchr(" \t\r\n", buf[pos])) pos++; \
                       for (; counted < pos; counted++) line += buf[counted] == '\n'; } while (0)
    SKIP_WS();
    pos++; /* the '[' checked by the caller */
    SKIP_WS();
    if (pos < len && buf[pos] == ']') goto done;
    for (;;) {
        SKIP_WS();
        if (pos >= len) { rc = hone_fail(err, "%s:%ld: unexpected end of file inside the JSON array", path, line); break; }
        json_error_t je;
        long row_line = line;
        json_t *row = json_loadb(buf + pos, len - pos, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
        if (!row) {
            rc = hone_fail(err, "%s:%ld: bad JSON in array element: %s", path, row_line + (je.line > 0 ? je.line - 1 : 0), je.text);
            break;
        }
        pos += (size_t)je.position;
        rc = fn(ud, row, row_line, NULL, err);
        json_decref(row);
        if (rc) break;
        SKIP_WS();
        if (pos < len && buf[pos] == ',') { pos++; continue; }
        if (pos < len && buf[pos] == ']') break;
        rc = hone_fail(err, "%s:%ld: expected ',' or ']' after an array element", path, line);
        break;
    }
#undef SKIP_WS
done:
    free(buf);
    return rc;
}

int jsonrows_read(const char *path, jsonrows_fn fn, void *ud, hone_error *err) {
    /* zlib opens a directory and then fails on the first read, which reads as corrupt data */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return hone_fail(err, "%s: is a directory, not a data file (expected .jsonl, .json or .jsonl.gz)", path);
    gzFile g = gzopen(path, "rb");
    if (!g) return hone_fail(err, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(g, 1 << 17);
    /* peek at the first non-blank byte to tell an array from JSONL */
    int c, bom = 0;
    while ((c = gzgetc(g)) == ' ' || c == '\t' || c == '\r' || c == '\n') {}
    if (c == 0xEF && gzgetc(g) == 0xBB && gzgetc(g) == 0xBF) { /* a UTF-8 byte order mark */
        bom = 1;
        while ((c = gzgetc(g)) == ' ' || c == '\t' || c == '\r' || c == '\n') {}
    }
    int rc;
    if (c == -1) {
        int e;
        gzerror(g, &e);
        rc = e != Z_OK && e != Z_STREAM_END ? hone_fail(err, "%s: read error (corrupt gzip data?)", path) : 0;
    } else {
        gzrewind(g);
        if (bom) gzseek(g, 3, SEEK_SET);
        if (c == '[') rc = read_array(g, path, fn, ud, err);
        else rc = read_jsonl(g, path, NULL, 0, fn, ud, err);
    }
    gzclose(g);
    return rc;
}
