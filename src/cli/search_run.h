/* cli/search_run.h — running a hyperparameter search (docs/search.md): every trial of a
 * hone_search as a child `hone sft|dpo` process in output_dir/trial-NNN, up to
 * max_concurrent_trials at once on disjoint cores, SIGINT/SIGTERM passed on, resumable,
 * ending with the ranked table and experiment.json. */
#ifndef HONE_SEARCH_RUN_H
#define HONE_SEARCH_RUN_H
#include "train/train_config.h"

/* The flag a trial's command line carries: its configuration's searcher and
 * hyperparameters blocks are ignored (the trial's values come as --set). */
#define SEARCH_TRIAL_FLAG "--search-trial"

/* Runs the search of config_path (whose configuration with the command line's sets is base;
 * sets[0..nsets) are those `key=value` texts, passed on to each trial). Prints progress to
 * stderr and the ranked table to stdout. Returns the exit status: 0 every trial completed,
 * 1 an error or a failed trial, 128 + signal when stopped by SIGINT / SIGTERM. */
int search_run(int kind, const char *config_path, char *const *sets, int nsets, const hone_train_config *base);
#endif
