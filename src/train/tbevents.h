/* train/tbevents.h — TensorBoard event files (`report_to: tensorboard`), written the way
 * torch.utils.tensorboard's SummaryWriter writes them for transformers' TensorBoardCallback,
 * so TensorBoard and its EventAccumulator read hone runs as they read TRL's:
 *   file  events.out.tfevents.<unix seconds>.<host>.<pid>.0 in the logging directory;
 *   each record: uint64 length, uint32 masked CRC32C of those 8 bytes, the data, uint32
 *         masked CRC32C of the data (little-endian; mask: ((c >> 15) | (c << 17)) + 0xa282ead8);
 *   data  an Event protobuf: wall_time (1, double), step (2, int64), and either file_version
 *         (3, "brain.Event:2", the first record) or summary (5) holding one Value with tag (1)
 *         and simple_value (2, float) — one event per scalar, as add_scalar writes; or, for
 *         text (add_text: transformers' "args"), tag "<tag>/text_summary", metadata (9) naming
 *         the "text" plugin and a DT_STRING tensor (8) of shape [1] holding the text.
 * Tags are transformers' rewrite_logs names: "eval_x" -> "eval/x", "test_x" -> "test/x", any
 * other key k -> "train/k". The protobuf wire format and CRC32C are written here by hand (a
 * few dozen lines; no protobuf library). Ownership: a tb_writer owns its open file. */
#ifndef HONE_TBEVENTS_H
#define HONE_TBEVENTS_H
#include "base/error.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char path[4096]; /* the event file */
} tb_writer;

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven; crc continues an
 * earlier value (start with 0). */
uint32_t tb_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's mask of a CRC. */
uint32_t tb_crc_mask(uint32_t crc);
/* transformers' rewrite_logs name of a metrics.jsonl key (see above) into out (n bytes). */
void tb_tag(const char *key, char *out, size_t n);
/* One Event's protobuf bytes into buf (cap bytes): a scalar summary when tag is non-NULL,
 * else the file_version event. Returns the length, or 0 when cap is too small. */
size_t tb_encode_event(uint8_t *buf, size_t cap, double wall_time, long step, const char *tag, float value);
/* The Event of a text summary (add_text) into buf; 0 when cap is too small. */
size_t tb_encode_text_event(uint8_t *buf, size_t cap, double wall_time, long step, const char *tag, const char *text);
/* One TFRecord around data into f. */
int tb_write_record(FILE *f, const uint8_t *data, size_t n);
/* Creates logdir (and parents) and a new event file in it starting with the file_version
 * event; wall_time: seconds since the epoch. */
int tb_writer_open(tb_writer *w, const char *logdir, double wall_time, hone_error *err);
/* One scalar event per (tag, value) at step, then a flush (a crash loses nothing logged). */
int tb_writer_scalars(tb_writer *w, long step, double wall_time, const char *const *tags, const float *vals, int n, hone_error *err);
/* One text event (transformers writes the run's arguments as "args" at step 0). */
int tb_writer_text(tb_writer *w, long step, double wall_time, const char *tag, const char *text, hone_error *err);
void tb_writer_close(tb_writer *w);
/* transformers' default logging directory: dir/runs/<Mon DD_HH-MM-SS>_<hostname> (local time). */
void tb_default_logdir(char *out, size_t n, const char *output_dir);
/* Seconds since the epoch (wall clock, as Event.wall_time). */
double tb_wall_time(void);
#endif
