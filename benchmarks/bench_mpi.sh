#!/bin/sh
# bench_mpi.sh — data-parallel scaling on this machine (issue 17): the SFT step time of one
# global batch (4 rows x 256 tokens: gradient_accumulation_steps x ranks = 4) run as
# 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread (mpirun --bind-to core), on a
# random-init model with SmolLM2-135M's config (and, BENCH_LORA=1, the same with LoRA r 16 on
# every linear), the bytes each rank reduces per step (hone's start line), and the scaling
# efficiency T(1 x 1) / (ranks x threads x T). Then the projection for 8 and 64 nodes on 25 and
# 100 Gb/s networks for the 135M, 2B (gemma-2b) and 7B (llama-2-7b) configs, with and without
# LoRA, from the measured per-core compute rate (docs/performance.md explains the model).
# Step time: the mean over the timed steps (all but the first) of tokens / tokens_per_second
# as metrics.jsonl logs them.
# Usage: bench_mpi.sh [BUILD_DIR]   Environment: HONE_BIN (else BUILD_DIR/hone), HONE_SHARED,
#   BENCH_STEPS (default 4: one warm-up + 3 timed), BENCH_LORA=1, BENCH_CORES_PER_NODE (64),
#   BENCH_CORE_GFLOPS (the per-core rate the projection uses; default: the 1 x 1 run's),
#   BENCH_PROJECT_ONLY=1 (with BENCH_CORE_GFLOPS: the projection alone)
set -u
build=${1:-.}
bin=${HONE_BIN:-$build/hone}
shared=${HONE_SHARED:-$(dirname "$0")/../../shared}
steps=${BENCH_STEPS:-4}
cores_node=${BENCH_CORES_PER_NODE:-64}
[ -x "$bin" ] || { echo "bench_mpi: no hone at $bin"; exit 1; }
if "$bin" info 2>/dev/null | grep -q '^mpi: *not built in'; then echo "bench_mpi: skipped: hone was built without MPI"; exit 0; fi
command -v mpirun >/dev/null 2>&1 || { echo "bench_mpi: skipped: no mpirun"; exit 0; }
[ -f "$shared/models/configs/smollm2-135m.json" ] || { echo "bench_mpi: skipped: $shared/models/configs is absent"; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
unset HONE_CPUSET
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hone-bench-mpi-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

if [ "${BENCH_PROJECT_ONLY:-0}" = 1 ]; then
  [ -n "${BENCH_CORE_GFLOPS:-}" ] || { echo "bench_mpi: BENCH_PROJECT_ONLY needs BENCH_CORE_GFLOPS"; exit 1; }
fi
if [ "${BENCH_PROJECT_ONLY:-0}" != 1 ]; then
"$bin" init "$shared/models/configs/smollm2-135m.json" "$tmp/model" --tokenizer "$shared/tokenizers/smollm" --seed 1 >/dev/null 2>&1 ||
  { echo "bench_mpi: hone init failed"; exit 1; }
# rows of ~300 tokens (cut to 256): the same text, numbered
i=0
while [ $i -lt 64 ]; do
  printf '{"text": "%d' $i
  j=0
  while [ $j -lt 40 ]; do printf ' the quick brown fox jumps over the lazy dog %d' $j; j=$((j + 1)); done
  printf '"}\n'
  i=$((i + 1))
done >"$tmp/rows.jsonl"

# run NAME RANKS THREADS ACCUM [--set ...]: prints "step_seconds bytes_per_step"
run() {
  name=$1 np=$2 th=$3 acc=$4; shift 4
  out=$tmp/$name
  set -- sft "$tmp/cfg.yaml" --set output_dir="$out" --set threads="$th" --set gradient_accumulation_steps="$acc" "$@"
  if [ "$np" -gt 1 ]; then
    mpirun -np "$np" --bind-to core --map-by core "$bin" "$@" >"$out.log" 2>&1
  else
    "$bin" "$@" >"$out.log" 2>&1
  fi || { echo "bench_mpi: $name failed:" >&2; tail -5 "$out.log" >&2; echo "- -"; return; }
  bytes=$(sed -n 's/.*reduces \([0-9.]*\) MB per rank per step.*/\1/p' "$out.log" | head -1)
  awk -v bytes="${bytes:-0}" '
    { t = $0; n = t; sub(/.*"num_tokens": /, "", n); sub(/,.*/, "", n); s = t; sub(/.*"tokens_per_second": /, "", s); sub(/[,}].*/, "", s)
      if (NR > 1 && s > 0) { sum += (n - prev) / s; k++ } prev = n }
    END { printf "%.3f %s\n", k ? sum / k : 0, bytes }' "$out/metrics.jsonl"
}

cat >"$tmp/cfg.yaml" <<YAML
model_name_or_path: $tmp/model
learning_rate: 1.0e-4
max_steps: $steps
per_device_train_batch_size: 1
max_length: 256
logging_steps: 1
save_strategy: "no"
gradient_checkpointing: false
seed: 1
datasets:
  - path: $tmp/rows.jsonl
YAML

echo "bench_mpi: SFT step of 4 x 256 tokens, SmolLM2-135M config (random init), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-7s | %-5s | %-7s | %-12s | %-16s | %-10s |\n' model ranks threads "step s" "MB reduced/rank" efficiency
printf '|---|---|---|---|---|---|\n'
bench() {
  label=$1; shift
  r11=$(run "$label-1x1" 1 1 4 "$@"); t11=${r11% *}
  r12=$(run "$label-1x2" 1 2 4 "$@"); t12=${r12% *}
  r21=$(run "$label-2x1" 2 1 2 "$@"); t21=${r21% *}; b21=${r21#* }
  for row in "1 1 $t11 0" "1 2 $t12 0" "2 1 $t21 $b21"; do
    set -- $row
    eff=$(awk -v a="$t11" -v t="$3" -v p=$(($1 * $2)) 'BEGIN { if (t > 0 && a > 0) printf "%.0f%%", 100 * a / (p * t); else print "-" }')
    printf '| %-7s | %-5s | %-7s | %-12s | %-16s | %-10s |\n' "$label" "$1" "$2" "$3" "$4" "$eff"
  done
  echo "$t11" >"$tmp/$label.t11"
}
bench 135m
if [ "${BENCH_LORA:-1}" = 1 ]; then
  bench 135m-lora --set use_peft=true --set lora_r=16 --set lora_alpha=32 --set lora_target_modules=all-linear
fi
fi # BENCH_PROJECT_ONLY

# Projection (docs/performance.md): per node, compute time C = 6 x P x tokens / (cores x the
# per-core rate of model FLOPs: measured above, or BENCH_CORE_GFLOPS), x 2/3 with LoRA (no weight
# gradients of the frozen base); the gradient exchange moves (N-1)/N x A x G bytes per node in the
# all-to-all of the shards (A = 2 with grad_accum_dtype fp64, the default: the sums go as
# doubles; 1 with fp32), then (N-1)/N x G in the all-gather, G = 4 bytes x trained parameters;
# the all-to-all overlaps the backward (2/3 of C), the all-gather does not. Efficiency = C / step time.
project() {
  awk -v rate_g="$1" -v cores="$cores_node" -v A="$2" 'BEGIN {
    rate = rate_g * 1e9
    printf "\nprojection: %.1f GFLOP/s of model FLOPs per core, a node = %d such cores, grad_accum_dtype %s\n", rate_g, cores, A == 2 ? "fp64" : "fp32"
    printf "| model | trained params | tokens/node/step | compute s | 25 Gb/s, 8 nodes | 25 Gb/s, 64 | 100 Gb/s, 8 | 100 Gb/s, 64 |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    split("135M 2B 7B", name, " "); split("134.5e6 2.51e9 6.74e9", P, " "); split("4.9e6 19.6e6 40.0e6", L, " ")
    for (m = 1; m <= 3; m++) for (lora = 0; lora <= 1; lora++) for (tk = 2048; tk <= 16384; tk *= 8) {
      C = 6 * P[m] * tk / (rate * cores)
      if (lora) C = C * 2 / 3
      G = 4 * (lora ? L[m] : P[m])
      line = sprintf("| %s%s | %.3g | %d | %.2f |", name[m], lora ? " LoRA" : "", lora ? L[m] : P[m], tk, C)
      for (bw = 25; bw <= 100; bw += 75) for (N = 8; N <= 64; N *= 8) {
        x = (N - 1) / N * G / (bw * 1e9 / 8) # seconds on the wire for G bytes
        rs = A * x - 2 * C / 3; if (rs < 0) rs = 0 # the all-to-all, past the backward it overlaps
        line = line sprintf(" %.0f%% |", 100 * C / (C + rs + x))
      }
      print line
    }
  }'
}
if [ -n "${BENCH_CORE_GFLOPS:-}" ]; then
  rate=$BENCH_CORE_GFLOPS
else
  rate=$(awk -v t="$(cat "$tmp/135m.t11")" 'BEGIN { printf "%.1f", 6 * 134.5e6 * 1024 / t / 1e9 }')
fi
project "$rate" 2
project "$rate" 1
