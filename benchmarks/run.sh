#!/bin/sh
# run.sh — runs the benchmark binaries given (make bench). Each prints its own
# table; a benchmark that needs the Python reference tooling skips itself when
# the venv is missing. Usage: run.sh BIN...
# bench_train_step: hone vs PyTorch (train_step_ref.py) SFT/DPO steps, 15M + 135M, 1 + 2 threads; BENCH_MODELS/THREADS/STEPS narrow it
# bench_attention: causal attention forward / backward on the 135M and 7B heads vs PyTorch's scaled_dot_product_attention (fp32, bf16), 1 + 2 threads
# bench_dpo_layout: DPO shared-prompt vs two-row layout step time on the 15M config (BENCH_THREADS, BENCH_STEPS)
# bench_qgemm: products with a held (bf16/int8/NF4) weight vs the fp32 GEMM, 3 QLoRA shapes (BENCH_N, BENCH_REPS)
# bench_mpi.sh: data-parallel step time and scaling, 1 x 1, 1 x 2, 2 x 1 ranks x threads, and the projection
rc=0
# memory.sh: LoRA/QLoRA memory and speed (estimate vs peak RSS), hone vs PEFT + PyTorch; BENCH_MEM_BIG=1 adds the 7B case
for b in "$@"; do
  echo "== $b"
  case $b in
    *.sh) sh "$b" . || rc=1 ;;
    *) "./$b" || rc=1 ;;
  esac
done
echo "== memory.sh"
sh "${HONE_SRCDIR:-.}/benchmarks/memory.sh" || rc=1
exit $rc
