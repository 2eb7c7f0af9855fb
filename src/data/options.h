/* data/options.h — what the data layer takes from a run's configuration: the sources
 * (`datasets:` entries), the eval split and how malformed rows are handled. The training
 * configuration (train/train_config.h) embeds a hone_data_options and fills it from the
 * YAML keys of the same names; the data layer knows nothing else of training.
 *
 * Ownership: the strings and arrays are owned by whoever fills the struct (config_free
 * frees those of a training configuration); dataset_load only reads them. */
#ifndef HONE_DATA_OPTIONS_H
#define HONE_DATA_OPTIONS_H

/* What the rows are for: SFT examples or DPO pairs. */
enum { HONE_SFT = 0, HONE_DPO = 1 };

/* One entry of `columns:`: our field name -> the row's key (e.g. completion -> text). */
typedef struct hone_column_map {
    char *ours, *theirs;
} hone_column_map;

/* One entry of `datasets:`. */
typedef struct hone_data_source {
    char *path;                  /* .jsonl, .json, or either + .gz; required */
    char *format;                /* "auto" (default) or a format name, see dataset.h */
    char *split;                 /* "train" (default: goes through test_size) or "eval" (eval only) */
    hone_column_map *columns;    /* (n_columns) */
    int n_columns;
    long number_of_samples;      /* -1 = unset (all rows) */
    double ratio;                /* -1 = unset; fraction of the source's rows (may exceed 1: repeats) */
    int line, column;            /* where the entry starts in the YAML file (1-based), 0 for --set */
} hone_data_source;

/* The data keys of a configuration. */
typedef struct hone_data_options {
    hone_data_source *datasets;  /* (n_datasets) */
    int n_datasets;
    double test_size;            /* 0 = no split; < 1 fraction, >= 1 row count */
    int skip_invalid_rows;       /* 0: stop on the first malformed row */
} hone_data_options;

#endif
