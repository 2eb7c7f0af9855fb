#!/bin/sh
# run.sh — runs every benchmark binary given on the command line (make bench).
# Benchmarks that need ../shared or a Python reference skip those parts themselves.
for b in "$@"; do
  echo "== $b"
  "./$b" || echo "  ($b exited with status $?)"
done
