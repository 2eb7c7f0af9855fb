#!/bin/sh
# memory.sh — memory and speed of LoRA/QLoRA steps at real size (issue 14; make bench runs it, not a
# test). For each case: `hone estimate`, then one training step under /usr/bin/time -v: the
# estimated peak, the measured peak RSS, their ratio, tokens/s. Models are random-init weights
# from ../shared/models/configs written by `hone init` in the config's dtype into $BENCH_WORK
# (default /tmp/hone-bench-mem; the 7B one, 13.5 GB, only with BENCH_MEM_BIG=1 and 20 GB free,
# deleted afterwards unless BENCH_KEEP=1). The SmolLM2 case runs PEFT + PyTorch on the same
# threads next to hone (benchmarks/lora_step_ref.py). Cases needing base weights held in
# bf16/NF4 (load_in_4bit) are skipped while hone's configuration has no load_in_4bit key.
# Env: HONE_BIN, HONE_SHARED, HONE_SRCDIR (make bench sets them), BENCH_THREADS (default 2),
# BENCH_MEM_ONLY=smol (the SmolLM2 rows only).
set -u
HONE=${HONE_BIN:-./hone}
SH=${HONE_SHARED:-../shared}
SRC=${HONE_SRCDIR:-.}
W=${BENCH_WORK:-/tmp/hone-bench-mem}
TH=${BENCH_THREADS:-2}
PY=${BENCH_PYTHON:-/work/venv/bin/python}
mkdir -p "$W"
[ -d "$SH/models/configs" ] || { echo "memory.sh: $SH/models/configs missing: skipped"; exit 0; }
[ -x /usr/bin/time ] || { echo "memory.sh: /usr/bin/time missing: skipped"; exit 0; }
# held bases (load_in_4bit, base_dtype) are there when hone's configuration knows the key
printf 'model_name_or_path: %s\nuse_peft: true\nload_in_4bit: true\n' "$SH/models/configs" > "$W/q.yaml"
quant=0; "$HONE" estimate "$W/q.yaml" 2>&1 | grep -q "unknown key 'load_in_4bit'" || quant=1

model() { # name config tokenizer
  [ -f "$W/$1/config.json" ] || "$HONE" init "$SH/models/configs/$2.json" "$W/$1" --tokenizer "$SH/tokenizers/$3" >/dev/null || return 1
}
rss_gb() { awk '/Maximum resident/ {printf "%.2f", $6 * 1024 / 1e9}' "$1"; }  # kB (KiB) -> GB, the estimate's unit
est_gb() { awk '/^  peak / {print $2}' "$1"; }
toks() { grep -o '[0-9.][0-9.]* tok/s' "$1" | tail -1 | cut -d' ' -f1; }

cpus() { awk '/User time|System time/ {s += $4} END {printf "%.0f", s}' "$1"; }
printf '%-44s %9s %9s %7s %9s %7s\n' case "est GB" "peak GB" "est/rss" "tok/s" "cpu s"
row() { # label yaml command [--set ...]
  label=$1; y=$2; cmd=$3; shift 3
  "$HONE" estimate "$y" "$@" > "$W/est.txt" 2>&1
  HONE_THREADS=$TH /usr/bin/time -v "$HONE" "$cmd" "$y" "$@" > "$W/run.txt" 2>&1
  rc=$?
  e=$(est_gb "$W/est.txt"); r=$(rss_gb "$W/run.txt"); t=$(toks "$W/run.txt")
  ratio=$(awk -v e="${e:-0}" -v r="${r:-0}" 'BEGIN {if (r > 0) printf "%.2f", e / r; else print "-"}')
  [ $rc -eq 0 ] || t="exit $rc"
  printf '%-44s %9s %9s %7s %9s %7s\n' "$label" "${e:--}" "${r:--}" "$ratio" "${t:--}" "$(cpus "$W/run.txt")"
}

cat > "$W/smol_sft.yaml" <<Y
model_name_or_path: $W/smol
output_dir: $W/run-smol
learning_rate: 2.0e-4
max_steps: 2
per_device_train_batch_size: 4
max_length: 256
packing: true
use_peft: true
lora_r: 16
lora_target_modules: all-linear
gradient_checkpointing: true
logging_steps: 1
save_strategy: "no"
overwrite_output_dir: true
chat_template: chatml
datasets:
  - path: $SH/data/llamafactory/alpaca_en_demo.json
    format: alpaca
    number_of_samples: 200
Y
dpo_yaml() { # model out
cat <<Y
model_name_or_path: $1
output_dir: $2
learning_rate: 5.0e-6
max_steps: 1
per_device_train_batch_size: 1
max_prompt_length: 256
max_completion_length: 256
max_length: 512
use_peft: true
lora_r: 16
lora_target_modules: all-linear
gradient_checkpointing: true
logging_steps: 1
save_strategy: "no"
overwrite_output_dir: true
chat_template: chatml
datasets:
  - path: $W/long_pairs.jsonl
Y
}
# pairs whose prompt and completions each run past 256 tokens, so the step is the issue's
# "prompt 256 + completions 256" (truncated to those lengths) and not shorter real pairs
awk 'BEGIN {
  w = "the quick brown fox jumps over a lazy dog while seven wizards quietly hum about distant rivers"
  for (i = 0; i < 4; i++) {
    p = ""; c = ""; r = ""
    for (k = 0; k < 30; k++) { p = p w " " k " "; c = c "yes " w " " k " "; r = r "no " w " " k " " }
    printf "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", p, c, r
  }
}' > "$W/long_pairs.jsonl"

if model smol smollm2-135m smollm; then
  row "SmolLM2-135M LoRA SFT (hone fp32, $TH threads)" "$W/smol_sft.yaml" sft
  row "SmolLM2-135M LoRA SFT (hone bf16: true)" "$W/smol_sft.yaml" sft --set bf16=true
  # the QLoRA step next to the bf16-held one (issue 14: at most 1.25x its time)
  if [ $quant = 1 ]; then
    row "SmolLM2-135M QLoRA SFT (NF4 base, fp32)" "$W/smol_sft.yaml" sft --set load_in_4bit=true
    row "SmolLM2-135M QLoRA SFT (NF4 base, bf16: true)" "$W/smol_sft.yaml" sft --set load_in_4bit=true --set bf16=true
  fi
  # the peer in both of its configurations (fp32; TRL's bf16=True = autocast): the faster one counts
  if [ -x "$PY" ] && [ -f "$SRC/benchmarks/lora_step_ref.py" ]; then
    for prec in fp32 bf16; do
      OMP_NUM_THREADS=$TH /usr/bin/time -v "$PY" "$SRC/benchmarks/lora_step_ref.py" "$W/smol" "$SH/data/llamafactory/alpaca_en_demo.json" $TH $prec > "$W/peft.txt" 2>&1
      label="SmolLM2-135M LoRA SFT (PEFT+PyTorch $prec)"
      [ $prec = bf16 ] && label="SmolLM2-135M LoRA SFT (PEFT+PyTorch autocast)"
      printf '%-44s %9s %9s %7s %9s %7s\n' "$label" - "$(rss_gb "$W/peft.txt")" - "$(toks "$W/peft.txt")" "$(cpus "$W/peft.txt")"
    done
  fi
fi
if [ "${BENCH_MEM_ONLY:-}" = smol ]; then echo "Gemma-2B, Llama-2-7B: skipped (BENCH_MEM_ONLY=smol)"; exit 0; fi
if model gemma2b gemma-2b llama2; then  # Gemma-2B weights with the Llama-2 tokenizer: ids within its vocabulary
  dpo_yaml "$W/gemma2b" "$W/run-gemma" > "$W/gemma_dpo.yaml"
  if [ $quant = 1 ]; then row "Gemma-2B bf16-held LoRA DPO (target < 8 GB)" "$W/gemma_dpo.yaml" dpo
  else row "Gemma-2B LoRA DPO (fp32-held base)" "$W/gemma_dpo.yaml" dpo; fi
fi
if [ "${BENCH_MEM_BIG:-0}" = 1 ] && [ $quant = 1 ]; then
  free_gb=$(df -BG --output=avail "$W" | tail -1 | tr -dc 0-9)
  if [ "${free_gb:-0}" -ge 20 ] && model llama7b llama-2-7b llama2; then
    dpo_yaml "$W/llama7b" "$W/run-7b" > "$W/llama_dpo.yaml"
    echo "load_in_4bit: true" >> "$W/llama_dpo.yaml"
    row "Llama-2-7B QLoRA DPO (target < 10 GB)" "$W/llama_dpo.yaml" dpo
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$W/llama7b"
  else echo "Llama-2-7B QLoRA DPO: skipped (needs 20 GB free disk)"; fi
else echo "Llama-2-7B QLoRA DPO: skipped (BENCH_MEM_BIG=1 and load_in_4bit in hone needed)"; fi
echo "(peak GB: /usr/bin/time -v maximum RSS in 10^9 bytes; cpu s: user + system seconds of the whole process, startup"
echo " included: on a loaded machine tokens per CPU second compare better than tokens/s; hone SmolLM2 trains 2 steps of"
echo " 4 x 256 tokens, lora_step_ref.py 3 of which 2 are timed)"
