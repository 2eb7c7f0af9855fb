/* train/tbevents.c — TensorBoard event files: CRC32C, the few protobuf fields an Event
 * with a scalar Summary needs, TFRecord framing and the writer (tbevents.h). */
#include "train/tbevents.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CRC32C table: entry i is the CRC of the byte i (polynomial 0x82F63B78, reflected) */
static const uint32_t crc32c_table[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
    0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
    0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
    0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
    0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
    0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
    0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
    0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
    0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
    0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
    0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
    0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
    0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
    0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
    0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
    0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
    0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
    0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
    0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
    0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
    0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
    0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
    0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
    0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
    0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
    0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
    0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
    0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
    0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
    0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
    0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
    0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
    0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t tb_crc32c(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t tb_crc_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

void tb_tag(const char *key, char *out, size_t n) {
    if (!strncmp(key, "eval_", 5)) snprintf(out, n, "eval/%s", key + 5);
    else if (!strncmp(key, "test_", 5)) snprintf(out, n, "test/%s", key + 5);
    else snprintf(out, n, "train/%s", key);
}

/* ---- protobuf wire format: (field << 3 | wire type), then the value ---- */

typedef struct { uint8_t *p; size_t n, cap; } pb;

static void pb_byte(pb *b, uint8_t v) {
    if (b->n < b->cap) b->p[b->n] = v;
    b->n++;
}
static void pb_varint(pb *b, uint64_t v) {
    for (; v >= 0x80; v >>= 7) pb_byte(b, (uint8_t)(v | 0x80));
    pb_byte(b, (uint8_t)v);
}
static void pb_le(pb *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) pb_byte(b, (uint8_t)(v >> (8 * i)));
}
static void pb_key(pb *b, int field, int wire) { pb_varint(b, (uint64_t)(field << 3 | wire)); }
static void pb_bytes(pb *b, int field, const void *s, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    for (size_t i = 0; i < n; i++) pb_byte(b, ((const uint8_t *)s)[i]);
}
static size_t varint_len(uint64_t v) {
    size_t k = 1;
    for (; v >= 0x80; v >>= 7) k++;
    return k;
}

size_t tb_encode_event(uint8_t *buf, size_t cap, double wall_time, long step, const char *tag, float value) {
    pb b = {buf, 0, cap};
    uint64_t u;
    memcpy(&u, &wall_time, 8);
    pb_key(&b, 1, 1); /* Event.wall_time: double */
    pb_le(&b, u, 8);
    if (step) { pb_key(&b, 2, 0); pb_varint(&b, (uint64_t)(int64_t)step); } /* proto3: 0 is left out */
    if (!tag) {
        pb_bytes(&b, 3, "brain.Event:2", 13); /* Event.file_version */
        return b.n <= cap ? b.n : 0;
    }
    size_t tl = strlen(tag);
    size_t value_len = 1 + varint_len(tl) + tl + 1 + 4;   /* Value: tag (1), simple_value (2, fixed32) */
    size_t summary_len = 1 + varint_len(value_len) + value_len; /* Summary: value (1) */
    pb_key(&b, 5, 2); /* Event.summary */
    pb_varint(&b, summary_len);
    pb_key(&b, 1, 2); /* Summary.value */
    pb_varint(&b, value_len);
    pb_bytes(&b, 1, tag, tl); /* Summary.Value.tag */
    uint32_t f;
    memcpy(&f, &value, 4);
    pb_key(&b, 2, 5); /* Summary.Value.simple_value: float */
    pb_le(&b, f, 4);
    return b.n <= cap ? b.n : 0;
}

size_t tb_encode_text_event(uint8_t *buf, size_t cap, double wall_time, long step, const char *tag, const char *text) {
    pb b = {buf, 0, cap};
    uint64_t u;
    memcpy(&u, &wall_time, 8);
    pb_key(&b, 1, 1);
    pb_le(&b, u, 8);
    if (step) { pb_key(&b, 2, 0); pb_varint(&b, (uint64_t)(int64_t)step); }
    char full[256];
    snprintf(full, sizeof full, "%s/text_summary", tag); /* SummaryWriter.add_text's tag */
    size_t tl = strlen(full), xl = strlen(text);
    /* SummaryMetadata { plugin_data (1): PluginData { plugin_name (1): "text" } } */
    size_t plugin_len = 1 + 1 + 4, meta_len = 1 + varint_len(plugin_len) + plugin_len;
    /* TensorProto { dtype (1): DT_STRING = 7, tensor_shape (2): { dim (2): { size (1): 1 } }, string_val (8): text } */
    size_t dim_len = 2, shape_len = 1 + 1 + dim_len, tensor_len = 2 + 1 + 1 + shape_len + 1 + varint_len(xl) + xl;
    size_t value_len = 1 + varint_len(tl) + tl + 1 + varint_len(meta_len) + meta_len + 1 + varint_len(tensor_len) + tensor_len;
    size_t summary_len = 1 + varint_len(value_len) + value_len;
    pb_key(&b, 5, 2);
    pb_varint(&b, summary_len);
    pb_key(&b, 1, 2);
    pb_varint(&b, value_len);
    pb_bytes(&b, 1, full, tl);
    pb_key(&b, 9, 2); /* Value.metadata */
    pb_varint(&b, meta_len);
    pb_key(&b, 1, 2);
    pb_varint(&b, plugin_len);
    pb_bytes(&b, 1, "text", 4);
    pb_key(&b, 8, 2); /* Value.tensor */
    pb_varint(&b, tensor_len);
    pb_key(&b, 1, 0);
    pb_varint(&b, 7);
    pb_key(&b, 2, 2);
    pb_varint(&b, shape_len);
    pb_key(&b, 2, 2);
    pb_varint(&b, dim_len);
    pb_key(&b, 1, 0);
    pb_varint(&b, 1);
    pb_bytes(&b, 8, text, xl);
    return b.n <= cap ? b.n : 0;
}

int tb_write_record(FILE *f, const uint8_t *data, size_t n) {
    uint8_t head[12];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)n >> (8 * i));
    uint32_t c = tb_crc_mask(tb_crc32c(0, head, 8));
    for (int i = 0; i < 4; i++) head[8 + i] = (uint8_t)(c >> (8 * i));
    uint8_t tail[4];
    c = tb_crc_mask(tb_crc32c(0, data, n));
    for (int i = 0; i < 4; i++) tail[i] = (uint8_t)(c >> (8 * i));
    return fwrite(head, 1, 12, f) == 12 && fwrite(data, 1, n, f) == n && fwrite(tail, 1, 4, f) == 4 ? 0 : -1;
}

int tb_writer_open(tb_writer *w, const char *logdir, double wall_time, hone_error *err) {
    memset(w, 0, sizeof *w);
    if (hone_mkdirs(logdir, err) < 0) return hone_fail_prefix(err, "report_to tensorboard");
    char host[256] = "localhost", name[512];
    if (gethostname(host, sizeof host) < 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    snprintf(name, sizeof name, "events.out.tfevents.%010ld.%s.%ld.0", (long)wall_time, host, (long)getpid());
    hone_path_join(w->path, sizeof w->path, logdir, name);
    /* "a": a second writer in one second with one pid (never in practice) appends, and
     * the file still reads as a stream of records */
    w->f = fopen(w->path, "ab");
    if (!w->f) return hone_fail(err, "%s: cannot create the TensorBoard event file", w->path);
    uint8_t buf[64];
    size_t n = tb_encode_event(buf, sizeof buf, wall_time, 0, NULL, 0);
    if (tb_write_record(w->f, buf, n) < 0 || fflush(w->f)) {
        tb_writer_close(w);
        return hone_fail(err, "%s: write failed", w->path);
    }
    return 0;
}

int tb_writer_scalars(tb_writer *w, long step, double wall_time, const char *const *tags, const float *vals, int n, hone_error *err) {
    if (!w->f) return 0;
    for (int i = 0; i < n; i++) {
        uint8_t buf[512];
        size_t len = tb_encode_event(buf, sizeof buf, wall_time, step, tags[i], vals[i]);
        if (!len) return hone_fail(err, "%s: tag '%s' is too long", w->path, tags[i]);
        if (tb_write_record(w->f, buf, len) < 0) return hone_fail(err, "%s: write failed", w->path);
    }
    if (fflush(w->f)) return hone_fail(err, "%s: write failed", w->path);
    return 0;
}

int tb_writer_text(tb_writer *w, long step, double wall_time, const char *tag, const char *text, hone_error *err) {
    if (!w->f) return 0;
    size_t cap = strlen(text) + strlen(tag) + 128;
    uint8_t *buf = malloc(cap);
    if (!buf) return hone_fail(err, "out of memory");
    size_t n = tb_encode_text_event(buf, cap, wall_time, step, tag, text);
    int rc = n && tb_write_record(w->f, buf, n) == 0 && fflush(w->f) == 0 ? 0 : hone_fail(err, "%s: write failed", w->path);
    free(buf);
    return rc;
}

void tb_writer_close(tb_writer *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
}

void tb_default_logdir(char *out, size_t n, const char *output_dir) {
    char host[256] = "localhost", stamp[64], rel[400];
    if (gethostname(host, sizeof host) < 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%b%d_%H-%M-%S", &tm);
    snprintf(rel, sizeof rel, "runs/%s_%s", stamp, host);
    hone_path_join(out, n, output_dir, rel);
}

double tb_wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
