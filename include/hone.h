/* hone.h — the public interface of libhone.a.
 *
 * hone is a CPU-first trainer for Llama- and Gemma-family models in Hugging Face
 * format: supervised fine-tuning and DPO with TRL's semantics, deterministic and
 * measured against PyTorch. This header gathers the library's modules for
 * programs that embed it (link with libhone.a and the libraries `configure`
 * found: -lpcre2-8 -lhwloc -lyaml -ljansson -lutf8proc -lz -lm -fopenmp).
 *
 * Compile with -I$(PREFIX)/include -I$(PREFIX)/include/hone (make install puts the
 * module headers there). Call kernels_init() once before anything numeric. Every fallible function
 * returns 0 on success or -1 with a message in its hone_error. Ownership is
 * documented in each module's header. */
#ifndef HONE_H
#define HONE_H
#ifdef __cplusplus
extern "C" {
#endif
#include "base/error.h"         /* hone_error */
#include "simd/kernels.h"       /* kernels_init, the SIMD kernel table */
#include "base/threads.h"       /* threads_init: hwloc placement */
#include "model/model.h"         /* hone_model: config.json, load/save Hugging Face directories */
#include "model/backend.h"       /* where tensors live, how operations run */
#include "model/batch.h"         /* hone_batch: tokens, positions, attention spans, labels */
#include "model/transformer.h"   /* model_forward / model_head / model_backward */
#include "model/lora.h"          /* LoRA adapters: PEFT adapter directories, merge */
#include "train/optim.h"         /* AdamW, schedules, clipping */
#include "train/train.h"         /* trainer: checkpoints, metrics, resume */
#include "train/sft.h"           /* supervised fine-tuning */
#include "train/dpo_loss.h"      /* every TRL DPO loss */
#include "train/dpo.h"           /* DPO training */
#include "tokenizer/tokenizer.h"     /* Hugging Face tokenizer.json */
#include "chat/template.h" /* chat formats and the Jinja subset */
#include "data/dataset.h"       /* SFT / DPO data sets */
#include "train/train_config.h"  /* YAML training configuration */
#include "generate/generate.h"      /* KV-cache generation and sampling */
#include "report/report.h"          /* hone report: runs and experiments read back, the HTML page */
#ifdef __cplusplus
}
#endif
#endif
