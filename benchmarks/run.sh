#!/bin/sh
# run.sh — runs the benchmark binaries given (make bench). Each prints its own
# table; a benchmark that needs the Python reference tooling skips itself when
# the venv is missing. Usage: run.sh BIN...
rc=0
for b in "$@"; do
  echo "== $b"
  "./$b" || rc=1
done
exit $rc
