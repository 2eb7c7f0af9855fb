/* cli/cmd_train.c — `hone sft` and `hone dpo`: one YAML configuration (TRL names),
 * optional --set overrides, then load, tokenize, train, evaluate, checkpoint and
 * write output_dir/final. */
#include "cli/commands.h"
#include "cli/gen_cli.h"
#include "cli/search_run.h"
#include "simd/kernels.h"
#include "train/estimate.h"
#include "train/manifest.h"
#include "train/pipeline.h"
#include "train/parallel.h"
#include "train/rundir.h"
#include "base/threads.h"
#include "base/util.h"
#include "dist/dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f, const char *cmd) {
    fprintf(f,
            "Usage: hone %s CONFIG.yaml [--set key=value]...\n\n"
            "Runs %s with the keys of CONFIG.yaml (TRL / transformers names, see docs/config.md);\n"
            "each --set overrides one key with the same type checks, e.g. --set learning_rate=1e-4\n"
            "--set 'lr_scheduler_kwargs={min_lr: 1e-6}'. Progress goes to stderr, every logged value to\n"
            "output_dir/metrics.jsonl (report_to: tensorboard adds TensorBoard event files in output_dir/runs;\n"
            "hone report OUTPUT_DIR draws them), checkpoints to output_dir/checkpoint-N, and the trained model\n"
            "to output_dir/final; output_dir/manifest.json records what produced the run (version,\n"
            "configuration, sha256 of every input file, CPU, ISA, threads, times, exit status; see\n"
            "docs/reproducibility.md). SIGINT/SIGTERM finish the current step, save a checkpoint and exit\n"
            "with status 130/143; resume_from_checkpoint: true continues bitwise where it stopped, after\n"
            "checking that the checkpoint was trained with the same configuration. A fresh run refuses an\n"
            "output_dir that holds checkpoints unless overwrite_output_dir: true, and only one run at a\n"
            "time may write an output_dir. A non-finite loss or gradient norm stops the run (exit 1)\n"
            "without saving the diverged model.\n"
            "use_peft: true (or a peft: block) trains LoRA adapters on the frozen model: checkpoints and final are PEFT\n"
            "adapter directories (docs/lora.md); model_name_or_path may be one. With it, load_in_4bit: true\n"
            "(bnb_4bit_quant_type: nf4|fp4, use_bnb_nested_quant) or load_in_8bit: true holds the frozen base's\n"
            "linears quantised as bitsandbytes does (QLoRA; docs/quantization.md). optim: adamw_8bit keeps\n"
            "bitsandbytes' 8-bit Adam state. Before loading, the run's peak memory is estimated (hone estimate)\n"
            "and the run stops, naming settings that would fit, when it exceeds the memory available\n"
            "(HONE_NO_MEMORY_CHECK=1 skips the check; docs/memory.md).\n"
            "Under mpirun (or srun) each process is one rank of a data-parallel run: a step takes\n"
            "per_device_train_batch_size x gradient_accumulation_steps rows on every rank, gradients are summed in\n"
            "rank order (in double with grad_accum_dtype: fp64, the default: the same bits as one process with the\n"
            "same global batch), zero_stage: 1 shards the AdamW moments, rank 0 writes the outputs\n"
            "(docs/distributed.md).\n\n"
            "With a searcher: block (and hyperparameters:) CONFIG.yaml is a hyperparameter search: every trial\n"
            "runs as `hone %s` in output_dir/trial-NNN (up to searcher.max_concurrent_trials at once, on\n"
            "disjoint cores), the same command resumes an interrupted search, and it ends with a ranked table\n"
            "and output_dir/experiment.json (docs/search.md). " SEARCH_TRIAL_FLAG " marks a trial's own run.\n",
            cmd, strcmp(cmd, "sft") ? "Direct Preference Optimization (TRL's DPOTrainer)" : "supervised fine-tuning (TRL's SFTTrainer)", cmd);
}

/* Loads the configuration and applies the --sets; sets[0..*nsets) keeps their texts (for a
 * search's trials, argc entries at most) and *trial says whether this run is a search's trial. */
static int setup(int argc, char **argv, int kind, hone_train_config *cfg, char **sets, int *nsets, int *trial, hone_error *err) {
    if (config_load(cfg, argv[1], kind, err) < 0) return -1;
    for (int i = 2; i < argc; i++) {
        const char *kv = !strcmp(argv[i], "--set") && i + 1 < argc ? argv[++i] : !strncmp(argv[i], "--set=", 6) ? argv[i] + 6 : NULL;
        if (kv) {
            if (config_set_arg(cfg, kv, err) < 0) { config_free(cfg); return -1; } /* its messages start with "--set" */
            sets[(*nsets)++] = (char *)kv;
        } else if (!strcmp(argv[i], SEARCH_TRIAL_FLAG)) {
            *trial = 1;
        } else {
            config_free(cfg);
            return hone_fail(err, "unknown option '%s' (see hone %s --help)", argv[i], kind == HONE_SFT ? "sft" : "dpo");
        }
    }
    if (config_validate(cfg, err) < 0) { config_free(cfg); return -1; }
    return 0;
}

/* The step intervals of a run of `total` steps (a value below 1 is a ratio of it): logging,
 * saving (0: save_strategy no) and evaluation (0: none, or no evaluation rows). */
static void intervals(const hone_train_config *cfg, long total, long n_eval, long *logging, long *save, long *eval, int *eval_on_start) {
    int eval_on = n_eval > 0 && cfg->eval_strategy && strcmp(cfg->eval_strategy, "no");
    *logging = config_steps(cfg->logging_steps, total);
    *save = strcmp(cfg->save_strategy, "no") ? config_steps(cfg->save_steps, total) : 0;
    *eval = eval_on ? config_steps(cfg->eval_steps > 0 ? cfg->eval_steps : cfg->logging_steps, total) : 0;
    if (!eval_on) *eval_on_start = 0;
}

/* "; 2 MPI ranks x ... zero_stage 1, reduces 12.3 MB per rank per step" for the start line */
static const char *dp_note(const hone_train_config *cfg, const hone_trainer *t) {
    static char note[200];
    note[0] = 0;
    if (dist_size() > 1 && t->dp)
        snprintf(note, sizeof note,
                 "; %d MPI ranks x gradient_accumulation_steps %d = %d micro-batches per step, zero_stage %d, reduces %.1f MB per rank "
                 "per step", dist_size(), cfg->gradient_accumulation_steps, dist_size() * cfg->gradient_accumulation_steps, cfg->zero_stage,
                 t->dp->bytes_reduced / 1e6);
    return note;
}

/* An error of a data-parallel run stops every rank, naming this one (dist_fail); alone it
 * is printed as usual. */
static void report_error(const char *name, const char *msg) {
    char line[1200];
    snprintf(line, sizeof line, "hone %s: %s", name, msg);
    if (dist_size() > 1) dist_fail(line, 1);
    else fprintf(stderr, "%s\n", line);
}

static int run_sft(hone_train_config *cfg, const hone_rundir *rd, hone_trainer *t, hone_pipeline *p, hone_error *err) {
    hone_tok_example *train = NULL, *eval = NULL;
    long ntr = 0, nev = 0;
    if (pipeline_sft_examples(p, cfg, &train, &ntr, &eval, &nev, err) < 0) return -1;
    sft_opts o = {.batch_size = cfg->per_device_train_batch_size, .eval_batch_size = cfg->per_device_eval_batch_size,
                  .accum = cfg->gradient_accumulation_steps, .packing = cfg->packing,
                  .max_length = cfg->max_length > 0 ? (int)cfg->max_length : 1 << 20,
                  .truncate_keep_end = cfg->truncation_mode && !strcmp(cfg->truncation_mode, "keep_end"),
                  .shuffle = pipeline_shuffle(cfg), .shuffle_once = cfg->shuffle_dataset, .drop_last = cfg->dataloader_drop_last,
                  .seed = pipeline_data_seed(cfg), .epochs = cfg->num_train_epochs, .max_steps = cfg->max_steps,
                  .eval_on_start = cfg->eval_on_start, .grad_ckpt = cfg->gradient_checkpointing,
                  .pad_id = tokenizer_pad_id(p->tok) >= 0 ? tokenizer_pad_id(p->tok) : 0,
                  .logging_first_step = cfg->logging_first_step,
                  .padding_free = cfg->padding_free,
                  .pad_to_multiple_of = cfg->pad_to_multiple_of > 1 ? (int)cfg->pad_to_multiple_of : 0,
                  .eval_packing = cfg->eval_packing < 0 ? 0 : cfg->eval_packing ? 1 : -1,
                  .packing_strategy = !strcmp(cfg->packing_strategy, "wrapped") ? SFT_PACK_WRAPPED
                                    : !strcmp(cfg->packing_strategy, "bfd_split") ? SFT_PACK_BFD_SPLIT : SFT_PACK_BFD,
                  .head_loss = {.kind = !strcmp(cfg->sft_loss_type, "dft") ? HONE_LOSS_DFT : HONE_LOSS_NLL,
                                .label_smoothing = (float)cfg->label_smoothing_factor},
                  .neftune_alpha = cfg->neftune_noise_alpha > 0 ? cfg->neftune_noise_alpha : 0,
                  .quiet = dist_rank() != 0}; /* rank 0 shows the progress */
    long rows, dropped;
    if (sft_training_rows(&o, train, ntr, &rows, &dropped, err) < 0) return -1;
    if (dropped) fprintf(stderr, "sft: %ld example(s) have no trained tokens and are left out\n", dropped);
    long total = sft_total_steps(&o, rows);
    intervals(cfg, total, nev, &o.logging_steps, &o.save_steps, &o.eval_steps, &o.eval_on_start);
    int rc = pipeline_trainer(p, cfg, total, t, err);
    if (rc == 0) t->config_json = rd->config_json;
    if (rc == 0) rc = pipeline_resume(t, rd->resume, NULL, 0, err);
    if (rc == 0) {
        fprintf(stderr, "sft: %ld training rows (%ld examples), %ld eval examples, %ld steps, %d thread(s), isa %s%s\n", rows, ntr, nev,
                total, threads_count(), hone_kt.isa, dp_note(cfg, t));
        rc = sft_train(t, &o, train, ntr, eval, nev, err);
    }
    pipeline_free_examples(train, ntr);
    pipeline_free_examples(eval, nev);
    return rc;
}

static int run_dpo(hone_train_config *cfg, const hone_rundir *rd, hone_trainer *t, hone_pipeline *p, hone_error *err) {
    hone_tok_pair *train = NULL, *eval = NULL;
    long ntr = 0, nev = 0;
    hone_model ref;
    memset(&ref, 0, sizeof ref);
    int have_ref = 0, have_refs = 0;
    dpo_ref_logps rtr = {0}, rev = {0};
    if (pipeline_dpo_pairs(p, cfg, &train, &ntr, &eval, &nev, err) < 0) return -1;
    if (ntr == 0) return hone_fail(err, "no training pairs left after truncation");
    dpo_opts o;
    memset(&o, 0, sizeof o);
    dpo_loss_opts_default(&o.loss);
    o.loss.beta = cfg->beta;
    int rc = dpo_loss_opts_set_loss_types(&o.loss, (const char *const *)cfg->loss_type, cfg->n_loss_type, cfg->loss_weights, err);
    if (rc < 0) goto out;
    o.loss.label_smoothing = cfg->label_smoothing;
    if (cfg->f_divergence_type && (rc = dpo_f_divergence_from_name(cfg->f_divergence_type, &o.loss.f_divergence_type, err)) < 0) goto out;
    o.loss.f_alpha_divergence_coef = cfg->f_alpha_divergence_coef;
    o.loss.discopop_tau = cfg->discopop_tau;
    o.loss.use_weighting = cfg->use_weighting;
    if (cfg->ld_alpha >= 0) { o.loss.ld_alpha_set = 1; o.loss.ld_alpha = cfg->ld_alpha; }
    if (cfg->rpo_alpha >= 0) { o.loss.rpo_alpha_set = 1; o.loss.rpo_alpha = cfg->rpo_alpha; }
    if ((rc = dpo_loss_opts_validate(&o.loss, err)) < 0) goto out;
    o.batch_size = cfg->per_device_train_batch_size;
    o.eval_batch_size = cfg->per_device_eval_batch_size;
    o.accum = cfg->gradient_accumulation_steps;
    o.shared_prompt = cfg->shared_prompt != 0; /* auto: on (never more work than two rows per pair) */
    o.shuffle = pipeline_shuffle(cfg);
    o.drop_last = cfg->dataloader_drop_last;
    o.seed = pipeline_data_seed(cfg);
    o.epochs = cfg->num_train_epochs;
    o.max_steps = cfg->max_steps;
    o.eval_on_start = cfg->eval_on_start;
    o.grad_ckpt = cfg->gradient_checkpointing;
    o.pad_id = tokenizer_pad_id(p->tok) >= 0 ? tokenizer_pad_id(p->tok) : 0;
    o.sync_ref_model = cfg->sync_ref_model;
    o.ref_model_mixup_alpha = cfg->ref_model_mixup_alpha;
    o.ref_model_sync_steps = cfg->ref_model_sync_steps;
    o.logging_first_step = cfg->logging_first_step;
    o.quiet = dist_rank() != 0; /* rank 0 shows the progress */
    if (dist_size() > 1 && o.loss.bco_pair_running_mean) {
        rc = hone_fail(err, "bco_pair_running_mean: the running mean of the rewards is not shared between MPI ranks; run it in one "
                            "process");
        goto out;
    }
    long total = dpo_total_steps(&o, ntr);
    intervals(cfg, total, nev, &o.logging_steps, &o.save_steps, &o.eval_steps, &o.eval_on_start);
    /* the reference: none, precomputed once (then freed), or a frozen model */
    if (cfg->reference_free) {
        rtr.n = ntr; rtr.chosen = calloc(ntr, sizeof(double)); rtr.rejected = calloc(ntr, sizeof(double));
        rev.n = nev; rev.chosen = calloc(nev ? nev : 1, sizeof(double)); rev.rejected = calloc(nev ? nev : 1, sizeof(double));
        have_refs = 1;
    } else if (p->have_lora && !cfg->ref_model_name_or_path) {
        /* TRL with a PEFT model: the reference is the policy with its adapters off — a view of
         * the same frozen base (shared tensors, no second model in memory) */
        ref = p->model;
        lora_attach(&ref, NULL);
        have_ref = 2;
    } else {
        const char *rp = cfg->ref_model_name_or_path ? cfg->ref_model_name_or_path : cfg->model_name_or_path;
        if ((rc = model_load_merged(&ref, rp, 1, err)) < 0) { hone_fail_prefix(err, "ref_model_name_or_path"); goto out; }
        if (ref.cfg.vocab_size < p->model.cfg.vocab_size && (rc = model_resize_vocab(&ref, p->model.cfg.vocab_size, err)) < 0) goto out;
        ref.be = p->model.be; /* bf16: true runs the reference under autocast too, as TRL */
        have_ref = 1;
    }
    if (have_ref && !cfg->reference_free) {
        if (cfg->precompute_ref_log_probs) {
            char path[4096];
            hone_path_join(path, sizeof path, cfg->output_dir, "ref_logps_train.safetensors");
            fprintf(stderr, "dpo: precomputing reference log-probs of %ld + %ld pairs\n", ntr, nev);
            /* TRL: precompute_ref_batch_size, else the training batch size for training pairs */
            o.precompute_batch_size = cfg->precompute_ref_batch_size > 0 ? (int)cfg->precompute_ref_batch_size : o.batch_size;
            /* rank 0 computes and caches them; the other ranks then read its file */
            if (dist_rank() == 0 && (rc = dpo_ref_logps_cached(&ref, &o, train, ntr, path, &rtr, err)) < 0) goto out;
            dist_barrier();
            if (dist_rank() != 0 && (rc = dpo_ref_logps_cached(&ref, &o, train, ntr, path, &rtr, err)) < 0) goto out;
            o.precompute_batch_size = cfg->precompute_ref_batch_size > 0 ? (int)cfg->precompute_ref_batch_size : o.eval_batch_size;
            if ((rc = dpo_precompute_ref(&ref, &o, eval, nev, &rev, err)) < 0) goto out;
            if (have_ref == 1) model_free(&ref);
            have_ref = 0;
            have_refs = 1;
        }
    }
    if ((rc = pipeline_trainer(p, cfg, total, t, err)) < 0) goto out;
    t->config_json = rd->config_json;
    if ((rc = pipeline_resume(t, rd->resume, NULL, 0, err)) < 0) goto out;
    fprintf(stderr, "dpo: %ld training pairs, %ld eval pairs, %ld steps, %s layout, reference %s, %d thread(s), isa %s%s\n", ntr, nev,
            total, o.shared_prompt ? "shared-prompt" : "two-row",
            cfg->reference_free ? "none" : have_refs ? "precomputed" : have_ref == 2 ? "policy with adapters off" : "model",
            threads_count(), hone_kt.isa, dp_note(cfg, t));
    rc = dpo_train(t, have_ref ? &ref : NULL, &o, train, ntr, have_refs ? &rtr : NULL, eval, nev, have_refs ? &rev : NULL, err);
out:
    if (have_ref == 1) model_free(&ref);
    dpo_ref_logps_free(&rtr);
    dpo_ref_logps_free(&rev);
    pipeline_free_pairs(train, ntr);
    pipeline_free_pairs(eval, nev);
    return rc;
}

static int cmd_train(int argc, char **argv, int kind) {
    const char *name = kind == HONE_SFT ? "sft" : "dpo";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout, name);
        return argc < 2 ? 2 : 0;
    }
    hone_error err = {{0}};
    hone_train_config cfg;
    char **sets = calloc((size_t)argc, sizeof *sets);
    int nsets = 0, trial = 0;
    if (!sets || setup(argc, argv, kind, &cfg, sets, &nsets, &trial, &err) < 0) {
        report_error(name, sets ? err.msg : "out of memory");
        free(sets);
        return 1;
    }
    if (cfg.search_blocks && !trial) { /* a search: its trials are runs of this command (docs/search.md) */
        int status = search_run(kind, argv[1], sets, nsets, &cfg);
        free(sets);
        config_free(&cfg);
        return status;
    }
    free(sets);
    /* output_dir first: locked, cleaned, checked against a resume, before any slow loading */
    hone_rundir rd;
    int rank = dist_rank();
    if (rank == 0 && rundir_open(&rd, &cfg, &err) < 0) { report_error(name, err.msg); config_free(&cfg); return 1; }
    if (dist_size() > 1) { /* the other ranks follow rank 0's directory: the same checkpoint to resume */
        char resume[4096];
        snprintf(resume, sizeof resume, "%s", rank == 0 ? rd.resume : "");
        dist_bcast(resume, sizeof resume, 0);
        if (rank != 0 && rundir_follow(&rd, &cfg, resume, &err) < 0) { report_error(name, err.msg); config_free(&cfg); return 1; }
    }
    kernels_init();
    hone_trainer t;
    memset(&t, 0, sizeof t);
    trainer_block_signals(); /* before any thread exists, so every thread inherits it */
    hone_pipeline p;
    /* manifest.json says "running" before the slow loading, and records how every run ends */
    hone_manifest man = {0};
    if (gen_threads_init(cfg.threads, &err) < 0 || (rank == 0 && manifest_init(&man, &cfg, rd.config_json, &err) < 0) ||
        (rank == 0 && manifest_hash_inputs(&man, &cfg, &err) < 0) || estimate_check(&cfg, &err) < 0 || pipeline_init(&p, &cfg, &err) < 0) {
        report_error(name, err.msg);
        manifest_finish(&man, 1, err.msg);
        manifest_free(&man);
        rundir_close(&rd);
        config_free(&cfg);
        return 1;
    }
    dataset_report(&p.ds, stderr);
    int rc = rank == 0 ? manifest_hash_pipeline(&man, &p, &err) : 0;
    if (rc == 0) rc = kind == HONE_SFT ? run_sft(&cfg, &rd, &t, &p, &err) : run_dpo(&cfg, &rd, &t, &p, &err);
    int stopped_by = rc == 1 ? t.stop_signal : 0;
    if (rc == 0 && t.model) {
        if (trainer_load_best(&t, &err) < 0 || trainer_save_final(&t, &err) < 0) rc = -1;
        else if (rank == 0) fprintf(stderr, "%s: wrote %s/final\n", name, cfg.output_dir);
    }
    if (rc < 0) {
        if (dist_size() > 1) manifest_finish(&man, 1, err.msg); /* before every rank is stopped */
        report_error(name, err.msg);
    }
    /* stopped by a signal: 128 + its number, as a shell reports it (130 SIGINT, 143 SIGTERM) */
    int status = rc < 0 ? 1 : stopped_by ? 128 + stopped_by : 0;
    manifest_finish(&man, status, rc < 0 ? err.msg : NULL);
    manifest_free(&man);
    if (t.model) trainer_free(&t);
    pipeline_free(&p);
    rundir_close(&rd);
    config_free(&cfg);
    return status;
}

int cmd_sft(int argc, char **argv) { return cmd_train(argc, argv, HONE_SFT); }
int cmd_dpo(int argc, char **argv) { return cmd_train(argc, argv, HONE_DPO); }
