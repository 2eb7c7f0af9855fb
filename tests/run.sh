#!/bin/sh
# run.sh — runs every test binary and sums their RESULT lines into the final
# "N passed, N failed, N skipped". A binary that crashes or prints no RESULT
# line counts as one failure. Usage: run.sh "QEMU-PREFIX" BIN... (a *.sh entry is a
# script run with the source directory as its argument).
qemu=$1; shift
# tests trim their largest shapes when emulated (test_kernels_quant)
[ -n "$qemu" ] && export HONE_TEST_QEMU=1
p=0; f=0; s=0
for t in "$@"; do
  echo "== $t"
  case $t in
    *.sh) out=$(sh "$t" "${HONE_SRCDIR:-.}" 2>&1); rc=$? ;;  # source checks (check_layers.sh)
    *) out=$($qemu "./$t" 2>&1); rc=$? ;;
  esac
  printf '%s\n' "$out" | grep -v '^RESULT ' | sed 's/^/  /'
  r=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1)
  if [ -z "$r" ]; then
    echo "  FAIL $t: exited with status $rc before its RESULT line"; f=$((f + 1)); continue
  fi
  read -r _ tp tf ts <<R
$r
R
  p=$((p + tp)); f=$((f + tf)); s=$((s + ts))
done
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
