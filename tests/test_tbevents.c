/* test_tbevents.c — TensorBoard event files (train/tbevents.h, report_to: tensorboard).
 *   CRC32C: the test vectors of RFC 3720 B.4 and "123456789", and the table against a
 *   bit-at-a-time CRC on random bytes; the TFRecord mask as TensorFlow's masked_crc32c;
 *   records written by the writer read back by this file's own decoder (length and data
 *   CRCs checked, the Event protobuf parsed field by field): file_version first, then
 *   every (tag, step, value) written, bitwise; a text event (plugin "text", DT_STRING [1]);
 *   tags as transformers' rewrite_logs;
 *   report_to in the configuration (lists, "all", an unknown integration refused);
 *   end to end (HONE_BIN and ../shared's stories260K; skips without): an SFT run with
 *   report_to: tensorboard writes output_dir/runs/<time>_<host>/events.out.tfevents.*:
 *   the configuration as text "args", then every scalar equal to float(metrics.jsonl's
 *   number) exactly, one per value, in order.
 * Tolerance: none anywhere (exact bytes and bits). */
#include "train/tbevents.h"
#include "train/train_config.h"
#include "base/util.h"
#include "spawn.h"
#include "test.h"
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>

/* ---- an independent reader: TFRecord framing and the Event fields hone writes ---- */

static uint32_t crc_bitwise(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}
static uint32_t mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }
static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

typedef struct {
    double wall_time;
    long step;
    char file_version[64];
    char tag[128];
    float value;
    int has_value;
    char plugin[32];  /* a text summary: metadata's plugin_name ("text") */
    int dtype, dims, dim0;
    char *text;       /* its string_val (points into the record buffer copy; freed by the reader's caller) */
} event;

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int s = 0; *p < end && s < 64; s += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* parses one protobuf message [p, end): calls back per field; nested ones by the caller */
static int parse_value(const uint8_t *p, const uint8_t *end, event *e) {
    while (p < end) {
        uint64_t key, len;
        if (varint(&p, end, &key)) return -1;
        if (key == (1 << 3 | 2)) {
            if (varint(&p, end, &len) || len >= sizeof e->tag || p + len > end) return -1;
            memcpy(e->tag, p, len);
            e->tag[len] = 0;
            p += len;
        } else if (key == (2 << 3 | 5)) {
            if (p + 4 > end) return -1;
            uint32_t u = (uint32_t)le(p, 4);
            memcpy(&e->value, &u, 4);
            e->has_value = 1;
            p += 4;
        } else if (key == (9 << 3 | 2)) { /* SummaryMetadata { plugin_data (1) { plugin_name (1) } } */
            uint64_t l1, k2, l2, k3, l3;
            if (varint(&p, end, &l1) || p + l1 > end) return -1;
            const uint8_t *q = p, *qe = p + l1;
            if (varint(&q, qe, &k2) || k2 != (1 << 3 | 2) || varint(&q, qe, &l2) || q + l2 != qe) return -1;
            if (varint(&q, qe, &k3) || k3 != (1 << 3 | 2) || varint(&q, qe, &l3) || q + l3 > qe || l3 >= sizeof e->plugin) return -1;
            memcpy(e->plugin, q, l3);
            p += l1;
        } else if (key == (8 << 3 | 2)) { /* TensorProto: dtype (1), tensor_shape (2), string_val (8) */
            uint64_t l1, k, v;
            if (varint(&p, end, &l1) || p + l1 > end) return -1;
            const uint8_t *q = p, *qe = p + l1;
            while (q < qe) {
                if (varint(&q, qe, &k)) return -1;
                if (k == (1 << 3 | 0)) { if (varint(&q, qe, &v)) return -1; e->dtype = (int)v; }
                else if (k == (2 << 3 | 2)) { /* TensorShapeProto { dim (2) { size (1) } } */
                    uint64_t ls, kd, ld, ks, sz;
                    if (varint(&q, qe, &ls) || q + ls > qe) return -1;
                    const uint8_t *r = q, *re = q + ls;
                    while (r < re) {
                        if (varint(&r, re, &kd) || kd != (2 << 3 | 2) || varint(&r, re, &ld) || r + ld > re) return -1;
                        const uint8_t *de = r + ld;
                        if (varint(&r, de, &ks) || ks != (1 << 3 | 0) || varint(&r, de, &sz) || r != de) return -1;
                        if (e->dims++ == 0) e->dim0 = (int)sz;
                    }
                    q = re;
                } else if (k == (8 << 3 | 2)) {
                    if (varint(&q, qe, &v) || q + v > qe) return -1;
                    free(e->text);
                    e->text = malloc(v + 1);
                    memcpy(e->text, q, v);
                    e->text[v] = 0;
                    q += v;
                } else return -1;
            }
            p += l1;
        } else return -1;
    }
    return 0;
}

static void events_free(event *ev, int n) {
    for (int i = 0; i < n; i++) free(ev[i].text);
}

static int parse_event(const uint8_t *p, size_t n, event *e) {
    const uint8_t *end = p + n;
    memset(e, 0, sizeof *e);
    while (p < end) {
        uint64_t key, len, v;
        if (varint(&p, end, &key)) return -1;
        switch (key) {
        case 1 << 3 | 1: {
            if (p + 8 > end) return -1;
            uint64_t u = le(p, 8);
            memcpy(&e->wall_time, &u, 8);
            p += 8;
            break;
        }
        case 2 << 3 | 0: if (varint(&p, end, &v)) return -1; e->step = (long)v; break;
        case 3 << 3 | 2:
            if (varint(&p, end, &len) || len >= sizeof e->file_version || p + len > end) return -1;
            memcpy(e->file_version, p, len);
            p += len;
            break;
        case 5 << 3 | 2: { /* Summary { repeated Value value = 1 }: exactly one here */
            if (varint(&p, end, &len) || p + len > end) return -1;
            const uint8_t *q = p, *qe = p + len;
            uint64_t k2, l2;
            if (varint(&q, qe, &k2) || k2 != (1 << 3 | 2) || varint(&q, qe, &l2) || q + l2 != qe) return -1;
            if (parse_value(q, qe, e)) return -1;
            p += len;
            break;
        }
        default: return -1;
        }
    }
    return 0;
}

/* reads every record of path into ev (up to cap); returns the count, -1 on a bad record */
static int read_events(const char *path, event *ev, int cap) {
    char *buf = NULL;
    size_t n = 0, o = 0;
    if (hone_read_file(path, &buf, &n, NULL) < 0) return -1;
    const uint8_t *b = (const uint8_t *)buf;
    int k = 0;
    while (o < n) {
        if (o + 12 > n) { k = -1; break; }
        uint64_t len = le(b + o, 8);
        if (le(b + o + 8, 4) != mask(crc_bitwise(b + o, 8)) || o + 12 + len + 4 > n ||
            le(b + o + 12 + len, 4) != mask(crc_bitwise(b + o + 12, len)) || k == cap || parse_event(b + o + 12, len, &ev[k])) {
            k = -1;
            break;
        }
        k++;
        o += 12 + len + 4;
    }
    free(buf);
    return k;
}

/* ---- cases ---- */

static void test_crc32c_vectors(void) {
    uint8_t b[48];
    memset(b, 0, 32);
    CHECK(tb_crc32c(0, b, 32) == 0x8a9136aau, "32 zero bytes: %08x", tb_crc32c(0, b, 32));
    memset(b, 0xff, 32);
    CHECK(tb_crc32c(0, b, 32) == 0x62a8ab43u, "32 0xff bytes: %08x", tb_crc32c(0, b, 32));
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
    CHECK(tb_crc32c(0, b, 32) == 0x46dd794eu, "0..31: %08x", tb_crc32c(0, b, 32));
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
    CHECK(tb_crc32c(0, b, 32) == 0x113fdb5cu, "31..0: %08x", tb_crc32c(0, b, 32));
    /* RFC 3720 B.4: an iSCSI read command PDU */
    static const uint8_t pdu[48] = {0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0,
                                    0, 0, 0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0};
    CHECK(tb_crc32c(0, pdu, 48) == 0xd9963a56u, "iSCSI PDU: %08x", tb_crc32c(0, pdu, 48));
    CHECK(tb_crc32c(0, "123456789", 9) == 0xe3069283u, "123456789: %08x", tb_crc32c(0, "123456789", 9));
    /* incremental equals one pass */
    CHECK(tb_crc32c(tb_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u, "incremental");
    /* the table against the bit-at-a-time definition on pseudo-random bytes of every length to 64 */
    uint8_t r[64];
    uint32_t s = 12345;
    for (int i = 0; i < 64; i++) { s = s * 1103515245u + 12345u; r[i] = (uint8_t)(s >> 16); }
    for (size_t n = 0; n <= 64; n++) CHECK(tb_crc32c(0, r, n) == crc_bitwise(r, n), "length %zu", n);
    CHECK(tb_crc_mask(0) == 0xa282ead8u && tb_crc_mask(0x80000000u) == 0xa282ead8u + 0x00010000u, "mask");
}

static void test_tags(void) {
    char t[128];
    tb_tag("loss", t, sizeof t);
    CHECK(!strcmp(t, "train/loss"), "%s", t);
    tb_tag("eval_loss", t, sizeof t);
    CHECK(!strcmp(t, "eval/loss"), "%s", t);
    tb_tag("eval_rewards/margins", t, sizeof t);
    CHECK(!strcmp(t, "eval/rewards/margins"), "%s", t);
    tb_tag("rewards/chosen", t, sizeof t);
    CHECK(!strcmp(t, "train/rewards/chosen"), "%s", t);
    tb_tag("test_loss", t, sizeof t);
    CHECK(!strcmp(t, "test/loss"), "%s", t);
}

/* the first event file found under dir (recursively) into out */
static int find_event_file(const char *dir, char *out, size_t n) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        hone_path_join(p, sizeof p, dir, e->d_name);
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) { snprintf(out, n, "%s", p); found = 1; }
        else if (hone_is_dir(p)) found = find_event_file(p, out, n);
    }
    if (d) closedir(d);
    return found;
}

static void test_writer_roundtrip(void) {
    const char *dir = test_tmpdir("tb");
    char logdir[512];
    snprintf(logdir, sizeof logdir, "%s/a/b", dir);
    tb_writer w;
    hone_error err = {{0}};
    CHECK(tb_writer_open(&w, logdir, 1234567890.25, &err) == 0, "%s", err.msg);
    const char *tags[] = {"train/loss", "eval/rewards/margins", "train/a_rather_long_tag_name_to_need_a_two_byte_length_varint_"
                                                                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    float vals[] = {2.5f, -1.0e-7f, NAN};
    CHECK(tb_writer_scalars(&w, 1, 1234567891.5, tags, vals, 3, &err) == 0, "%s", err.msg);
    CHECK(tb_writer_scalars(&w, 300, 1234567892.0, tags, vals, 2, &err) == 0, "%s", err.msg);
    tb_writer_close(&w);
    char path[4096];
    CHECK(find_event_file(logdir, path, sizeof path), "no event file in %s", logdir);
    CHECK(strstr(path, "events.out.tfevents.1234567890.") != NULL, "file name %s", path);
    event ev[8];
    int k = read_events(path, ev, 8);
    CHECK(k == 6, "read %d events", k);
    if (k == 6) {
        CHECK(!strcmp(ev[0].file_version, "brain.Event:2") && ev[0].wall_time == 1234567890.25 && !ev[0].has_value, "first event");
        for (int i = 1; i < 6; i++) {
            int j = (i - 1) % 3;
            long step = i <= 3 ? 1 : 300;
            CHECK(ev[i].step == step && ev[i].wall_time == (i <= 3 ? 1234567891.5 : 1234567892.0), "event %d step %ld", i, ev[i].step);
            CHECK(!strcmp(ev[i].tag, tags[j]) && ev[i].has_value, "event %d tag '%s'", i, ev[i].tag);
            CHECK(!memcmp(&ev[i].value, &vals[j], 4), "event %d value %g, wrote %g", i, ev[i].value, vals[j]);
        }
    }
    /* a text event (transformers' "args"): text plugin, DT_STRING tensor of shape [1] */
    snprintf(logdir, sizeof logdir, "%s/c", dir);
    CHECK(tb_writer_open(&w, logdir, 1234567893.0, &err) == 0, "%s", err.msg);
    CHECK(tb_writer_text(&w, 0, 1234567893.5, "args", "{\"a\": \"x y\"}", &err) == 0, "%s", err.msg);
    tb_writer_close(&w);
    CHECK(find_event_file(logdir, path, sizeof path), "no event file in %s", logdir);
    k = read_events(path, ev, 8);
    CHECK(k == 2 && !strcmp(ev[1].tag, "args/text_summary") && !strcmp(ev[1].plugin, "text") && ev[1].dtype == 7 && ev[1].dims == 1 &&
              ev[1].dim0 == 1 && ev[1].text && !strcmp(ev[1].text, "{\"a\": \"x y\"}") && !ev[1].has_value && ev[1].step == 0,
          "text event: %d events", k);
    if (k > 0) events_free(ev, k);
    /* a too-small buffer is refused, not overrun */
    uint8_t small[8];
    CHECK(tb_encode_event(small, sizeof small, 1.0, 5, "train/loss", 1.0f) == 0, "small buffer");
    hone_remove_tree(dir, NULL);
}

static void test_config_report_to(void) {
    hone_train_config c;
    hone_error err = {{0}};
    CHECK(config_load_string(&c, "learning_rate: 1.0e-5\n", "t.yaml", HONE_SFT, &err) == 0, "%s", err.msg);
    CHECK(!config_reports_to(&c, "tensorboard") && c.n_report_to == 1 && !strcmp(c.report_to[0], "none"), "default none");
    config_free(&c);
    CHECK(config_load_string(&c, "report_to: [jsonl, tensorboard]\nlogging_dir: tb\n", "t.yaml", HONE_DPO, &err) == 0, "%s", err.msg);
    CHECK(config_reports_to(&c, "tensorboard") && config_reports_to(&c, "jsonl") && !strcmp(c.logging_dir, "tb"), "list");
    config_free(&c);
    CHECK(config_load_string(&c, "report_to: all\n", "t.yaml", HONE_SFT, &err) == 0, "%s", err.msg);
    CHECK(config_reports_to(&c, "tensorboard") && !config_reports_to(&c, "none"), "all");
    CHECK(config_set(&c, "report_to", "tensorboard", &err) == 0 && config_reports_to(&c, "tensorboard"), "--set: %s", err.msg);
    config_free(&c);
    int rc = config_load_string(&c, "report_to: wandb\n", "t.yaml", HONE_SFT, &err);
    CHECK(rc < 0 && strstr(err.msg, "t.yaml:1") && strstr(err.msg, "wandb") && strstr(err.msg, "tensorboard"), "wandb: %s", err.msg);
}

/* an SFT run with report_to: tensorboard: the event file holds exactly metrics.jsonl's values */
static void test_sft_run_events_equal_metrics(void) {
    const char *bin = getenv("HONE_BIN");
    if (!bin || access(bin, X_OK)) { test_skip("HONE_BIN is not set (make check sets it to the built hone)"); return; }
    const char *sb = test_shared("models/stories260K/stories260K.bin"), *spm = test_shared("models/stories260K/tok512.model");
    if (!sb || !spm) { test_skip("../shared/models/stories260K is absent"); return; }
    const char *dir = test_tmpdir("tb-run");
    char model[512], data[512], yaml[512], log[512], out[512];
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(data, sizeof data, "%s/data.jsonl", dir);
    snprintf(yaml, sizeof yaml, "%s/run.yaml", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char *conv[] = {(char *)bin, "convert", "llama2c", (char *)sb, model, "--tokenizer", (char *)spm, NULL};
    CHECK(test_wait(test_spawn(conv, log), 60, NULL) == 0, "hone convert failed (%s)", log);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 40; i++) fprintf(f, "{\"text\": \"Once upon a time, Lily saw %d cats.\"}\n", i);
    fclose(f);
    f = fopen(yaml, "w");
    fprintf(f, "model_name_or_path: %s\noutput_dir: %s\nlearning_rate: 1.0e-3\nper_device_train_batch_size: 4\nmax_length: 32\n"
               "max_steps: 6\nlogging_steps: 2\neval_strategy: steps\neval_steps: 3\ntest_size: 0.2\nthreads: 1\n"
               "gradient_checkpointing: false\nsave_strategy: \"no\"\nreport_to: tensorboard\ndatasets:\n  - path: %s\n    format: text\n",
            model, out, data);
    fclose(f);
    char *sft[] = {(char *)bin, "sft", yaml, NULL};
    int rc = test_wait(test_spawn(sft, log), 120, NULL);
    CHECK(rc == 0, "hone sft: exit %d (%s)", rc, log);
    char runs[600], path[4096];
    snprintf(runs, sizeof runs, "%s/runs", out);
    CHECK(find_event_file(runs, path, sizeof path), "no event file under %s", runs);
    event ev[256];
    int k = read_events(path, ev, 256);
    CHECK(k > 2 && !strcmp(ev[0].file_version, "brain.Event:2"), "%s: %d events", path, k);
    /* then the configuration as text "args", as transformers' on_train_begin */
    CHECK(k > 2 && !strcmp(ev[1].tag, "args/text_summary") && ev[1].text && strstr(ev[1].text, "\"report_to\": [") && strstr(ev[1].text, out),
          "args text event");
    /* every number of metrics.jsonl, in order, is the next event */
    char mp[600];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", out);
    FILE *m = fopen(mp, "r");
    char line[4096];
    int e = 2, values = 0;
    while (m && fgets(line, sizeof line, m) && k > 0) {
        json_t *o = json_loads(line, 0, NULL), *v;
        const char *key;
        long step = (long)json_integer_value(json_object_get(o, "step"));
        json_object_foreach(o, key, v) {
            if (!strcmp(key, "step")) continue;
            char tag[128];
            tb_tag(key, tag, sizeof tag);
            float want = (float)json_number_value(v);
            int ok = e < k && ev[e].step == step && !strcmp(ev[e].tag, tag) && ev[e].value == want;
            CHECK(ok, "metrics.jsonl step %ld %s = %.9g; event %d: step %ld %s = %.9g", step, key, want, e, e < k ? ev[e].step : -1,
                  e < k ? ev[e].tag : "(none)", e < k ? ev[e].value : 0.f);
            e++;
            values++;
        }
        json_decref(o);
    }
    if (m) fclose(m);
    CHECK(values > 20 && e == k, "%d metrics values, %d events after file_version and args", values, k - 2);
    if (k > 0) events_free(ev, k);
    if (!test_cur_failed) hone_remove_tree(dir, NULL);
}

int main(void) {
    TEST_RUN(test_crc32c_vectors);
    TEST_RUN(test_tags);
    TEST_RUN(test_writer_roundtrip);
    TEST_RUN(test_config_report_to);
    TEST_RUN(test_sft_run_events_equal_metrics);
    return test_finish();
}
