/* train/manifest.h — output_dir/manifest.json: what produced a run, for reproducibility
 * and benchmarking studies. Written atomically when the run starts (status "running"),
 * again once the inputs are hashed, and at the end (status "completed", "stopped" or
 * "failed", exit status, end time, the error). It holds hone's version and source
 * revision, the resolved configuration (hone_config.json's JSON), the sha256 of every
 * model, data, template and reference-model file the run reads (streamed), the hashes
 * of the tokenizer and chat template as trained with, the CPU, kernel ISA, threads and
 * their pinning, the libraries' versions, the seeds and the times. docs/reproducibility.md
 * says which fields decide the bits. */
#ifndef HONE_MANIFEST_H
#define HONE_MANIFEST_H
#include "base/error.h"
#include "train/pipeline.h"
#include "train/train_config.h"

typedef struct hone_manifest {
    char path[4096];   /* output_dir/manifest.json */
    void *root;        /* the document (a jansson json_t), owned; NULL after manifest_free */
    double t_start;
} hone_manifest;

/* Starts the manifest of a run of cfg (config_json: rundir's resolved configuration)
 * after kernels_init and threads_init, and writes it with status "running". */
int manifest_init(hone_manifest *m, const hone_train_config *cfg, const char *config_json, hone_error *err);
/* Adds the sha256 of the files cfg names (model, data, chat_template_path, reference
 * model) and rewrites the file. A file that cannot be read is recorded with its error
 * (loading it reports the failure). */
int manifest_hash_inputs(hone_manifest *m, const hone_train_config *cfg, hone_error *err);
/* Adds the hashes of the tokenizer files and chat template the pipeline trains with
 * (p->tok_dir, after chat tokens were added and the template written) and rewrites. */
int manifest_hash_pipeline(hone_manifest *m, const hone_pipeline *p, hone_error *err);
/* Ends the run: exit_status 0 "completed", 128 + signal "stopped", else "failed" with
 * error (may be NULL); end time; rewrites the file. Errors go to stderr (the run's own
 * exit status stands). */
void manifest_finish(hone_manifest *m, int exit_status, const char *error);
void manifest_free(hone_manifest *m);

/* sha256 of a file, read in blocks: 64 hex digits into hex; *bytes its size. */
int manifest_sha256_file(const char *path, char hex[65], long long *bytes, hone_error *err);
#endif
