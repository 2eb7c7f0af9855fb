#!/bin/sh
# demo.sh — `make demo`: hone's whole pipeline on a task it generates itself.
#   1. data      bin/demo_gen writes a tokenizer, a model config and the data sets
#   2. base      a random tiny Llama (hone init) pretrained on plain text (hone sft, format text)
#   3. sft       instruction tuning in ChatML on a careless demonstrator (60% follow the instruction)
#   4. dpo       preference pairs: following the instruction is preferred to ignoring it
#   5. evaluate  each model on held-out words: task accuracy (sampled answers equal to the
#                instruction's result), preference accuracy and reward margin (hone eval), and a
#                side-by-side page of answers (hone compare)
# Everything is seeded; the run takes a few minutes on 2 cores. Output: demo-out/.
set -eu
HONE=${HONE_BIN:-./hone}
GEN=${DEMO_GEN:-./bin/demo_gen}
SRC=${HONE_SRCDIR:-.}
OUT=demo-out
SEED=${DEMO_SEED:-7}
t0=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
log() { printf '\n== %s (%ds)\n' "$1" $(( $(date +%s) - t0 )); }

log "data"
"$GEN" make "$OUT/data" "$SEED"
"$HONE" init "$OUT/data/model.json" "$OUT/init" --tokenizer "$OUT/data/tokenizer" --seed "$SEED"

log "base: pretraining on plain text"
"$HONE" sft "$SRC/data/demo_pretrain.yaml" 2>&1 | grep -v '^data:' || exit 1
mv "$OUT/base-run/final" "$OUT/base"

log "sft: instruction tuning"
"$HONE" sft "$SRC/data/demo_sft.yaml" 2>&1 | grep -v '^data:' || exit 1
mv "$OUT/sft-run/final" "$OUT/sft"

log "dpo: preference alignment"
"$HONE" dpo "$SRC/data/demo_dpo.yaml" 2>&1 | grep -v '^data:' || exit 1
mv "$OUT/dpo-run/final" "$OUT/dpo"

log "evaluation on held-out words"
for m in base sft dpo; do
  "$HONE" generate "$OUT/$m" --prompts "$OUT/data/eval_prompts.jsonl" --chat-template chatml \
      --temperature 1.0 --seed 1 --max-new-tokens 24 --batch 64 > "$OUT/$m.generated.jsonl" 2>/dev/null
  set -- $("$GEN" score "$OUT/data/eval_prompts.jsonl" "$OUT/$m.generated.jsonl")
  acc=$1 exact=$2
  "$HONE" eval "$OUT/$m" --pairs "$OUT/data/eval_pairs.jsonl" --ref none --beta 0.1 --chat-template chatml \
      --json > "$OUT/$m.eval.json"
  pacc=$(sed 's/.*"preference_accuracy": \([-0-9.e]*\).*/\1/' "$OUT/$m.eval.json")
  marg=$(sed 's/.*"mean_margin": \([-0-9.e]*\).*/\1/' "$OUT/$m.eval.json")
  echo "$m $acc $exact $pacc $marg" >> "$OUT/table.txt"
done
head -n 12 "$OUT/data/eval_prompts.jsonl" > "$OUT/compare_prompts.jsonl"
"$HONE" compare --models base="$OUT/base" sft="$OUT/sft" dpo="$OUT/dpo" --prompts "$OUT/compare_prompts.jsonl" \
    --chat-template chatml --max-new-tokens 24 --out "$OUT/compare" >/dev/null 2>&1

{
  echo "| model | task accuracy | exact answers | preference accuracy | reward margin |"
  echo "|---|---|---|---|---|"
  while read -r m acc exact pacc marg; do
    printf '| %s | %.3f | %.3f | %.3f | %.4f |\n' "$m" "$acc" "$exact" "$pacc" "$marg"
  done < "$OUT/table.txt"
} > "$OUT/summary.md"
log "done"
cat <<EXPLAIN

Held-out words ($(wc -l < "$OUT/data/eval_prompts.jsonl") prompts). Task accuracy: share of answers, sampled at
temperature 1 (seed 1), that follow the instruction (all capitals; the same word twice); exact
answers: also the right word. Preference accuracy: share of pairs where the model gives the
instruction-following answer a higher log-probability than ignoring it; reward margin: mean of
0.1 x that log-probability difference (hone eval --ref none).

EXPLAIN
cat "$OUT/summary.md"
echo
echo "side by side (greedy): $OUT/compare/compare.md, $OUT/compare/compare.html"
echo "training metrics: $OUT/base-run/metrics.jsonl $OUT/sft-run/metrics.jsonl $OUT/dpo-run/metrics.jsonl"
# the pipeline must improve at each stage
awk 'NR==1{b=$2;pb=$4} NR==2{s=$2;ps=$4} NR==3{d=$2;pd=$4}
     END{ if (!(s > b && d > s && ps > pb && pd > ps)) { print "demo: a stage did not improve on the one before"; exit 1 } }' "$OUT/table.txt"
