/* train/rundir.h — a training run's output_dir before anything is trained into it:
 * one run at a time (an flock on output_dir/.hone.lock, held until rundir_close),
 * temporary directories that dead processes left behind removed (and a final/
 * replacement interrupted half-way undone), a fresh run refused where an earlier
 * one left checkpoints unless overwrite_output_dir clears them, a resume checked
 * against the configuration its checkpoint was trained with (hone_config.json,
 * key by key), and the resolved configuration written as hone_config.json. */
#ifndef HONE_RUNDIR_H
#define HONE_RUNDIR_H
#include "base/error.h"
#include "train/train_config.h"
#include <stddef.h>

typedef struct hone_rundir {
    int lock_fd;        /* open and flock'ed while the run lives, -1 when closed */
    char resume[4096];  /* the checkpoint to resume from, or "" for a fresh run */
    char *config_json;  /* the resolved configuration (config_dump_json), owned */
} hone_rundir;

/* Prepares cfg->output_dir as above. On failure nothing is locked or changed
 * (apart from stale temporaries removed) and err says what to do. */
int rundir_open(hone_rundir *r, const hone_train_config *cfg, hone_error *err);
void rundir_close(hone_rundir *r);
/* The other ranks of a data-parallel run (rank 0 opened the directory): no lock, no changes,
 * the checkpoint rank 0 resolved and the same configuration text. */
int rundir_follow(hone_rundir *r, const hone_train_config *cfg, const char *resume, hone_error *err);
/* config_json_text plus "data_parallel_ranks" when the run has several ranks (a resume keeps
 * gradient_accumulation_steps x ranks, the global batch, not each alone). */
char *rundir_config_text(const hone_train_config *cfg, hone_error *err);

/* Removes dir's NAME.tmp-PID and .hone-tokenizer-PID directories whose process
 * is gone; a NAME.old-PID (the previous NAME, set aside while a new one was
 * renamed in) is renamed back when NAME is missing, else removed. Each action
 * is reported on stderr. Returns how many entries it handled. */
int rundir_clean_stale(const char *dir);

/* Compares two hone_config.json texts key by key, skipping the keys a resume may
 * change (output_dir, resume_from_checkpoint, overwrite_output_dir, threads and the
 * logging, evaluation and saving cadence) and keys only one side has (another
 * hone version). Writes "key: A there, B here; ..." into diff (empty when they
 * agree) and returns the number of differences, -1 when a text is not JSON. */
int rundir_config_diff(const char *saved, const char *current, char *diff, size_t n);
#endif
