#!/bin/sh
# check_layers.sh — keeps the source tree's layering true (run by `make check`).
# Reads every #include "..." line of src/*/ and simd/ and fails on:
#   - an include that goes up or sideways: a folder may include only itself and
#     the folders listed for it below (the architecture, bottom-up);
#   - an include that is not folder-qualified ("model/model.h"; only the
#     generated "config.h" stands alone);
#   - intrinsics headers outside simd/ (<immintrin.h>, <arm_neon.h>, ...);
#   - two .c files with one basename (libhone.a's members are named by it).
# Before the real tree it checks itself on a planted tree that breaks each rule,
# so a checker that stopped seeing violations fails too.
# Usage: check_layers.sh SRCDIR. Prints test-framework lines ending in RESULT.

# May include (besides itself). Keep in step with docs/architecture.md.
ALLOWED='
base:
dist: base
simd: base
model: base simd
tokenizer: base
data: base
chat: base data
train: base dist simd model tokenizer data chat
generate: base simd model tokenizer data chat
report: base
export: base simd model
cli: base dist simd model tokenizer data chat train generate report export
'

# check ROOT: sets $out to one "ROOT/file:line: what" line per violation and $bad to their count.
check() {
    root=$1
    bad=0
    out=$(
        for dir in "$root"/src/*/ "$root"/simd/; do
            [ -d "$dir" ] || continue
            folder=$(basename "$dir")
            allowed=$(printf '%s\n' "$ALLOWED" | sed -n "s/^$folder:\(.*\)$/\1/p")
            if ! printf '%s\n' "$ALLOWED" | grep -q "^$folder:"; then
                echo "$dir: folder '$folder' has no entry in check_layers.sh's table (say what it may include)"
                continue
            fi
            for f in "$dir"*.c "$dir"*.h "$dir"*.cu; do
                [ -f "$f" ] || continue
                awk -v folder="$folder" -v allowed=" $allowed " -v file="$f" '
                    folder != "simd" && /^[ \t]*#[ \t]*include[ \t]*<(immintrin|x86intrin|arm_neon|arm_sve)\.h>/ {
                        printf "%s:%d: intrinsics belong in simd/, behind the kernel table\n", file, NR; next
                    }
                    /^[ \t]*#[ \t]*include[ \t]*"/ {
                        s = $0; sub(/^[^"]*"/, "", s); sub(/".*$/, "", s)
                        if (s == "config.h") next
                        if (index(s, "/") == 0) { printf "%s:%d: include \"%s\" is not folder-qualified\n", file, NR, s; next }
                        to = s; sub(/\/.*$/, "", to)
                        if (to != folder && index(allowed, " " to " ") == 0) {
                            list = allowed; gsub(/^ +| +$/, "", list); gsub(/ +/, "/, ", list)
                            printf "%s:%d: %s/ includes \"%s\": %s/ may include only %sitself\n", file, NR, folder, s, folder, (list == "" ? "" : list "/ and ")
                        }
                    }' "$f"
            done
        done
        # one basename per .c file across the library
        for f in "$root"/src/*/*.c "$root"/simd/*.c; do [ -f "$f" ] && basename "$f"; done | sort | uniq -d |
            sed 's/^/duplicate source basename (libhone.a members collide): /'
    )
    [ -n "$out" ] && bad=$(printf '%s\n' "$out" | wc -l)
    return 0
}

pass=0; fail=0

# 1. the checker sees each kind of violation in a planted tree
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hone-layers-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/base" "$tmp/src/model" "$tmp/src/data" "$tmp/src/train" "$tmp/simd"
printf '#include "model/model.h"\n' > "$tmp/src/base/up.c"          # up
printf '#include "tokenizer/x.h"\n' > "$tmp/src/data/side.c"        # sideways
printf '#include "train/train.h"\n' > "$tmp/simd/k.c"               # up from simd
printf '#include "util.h"\n#include "config.h"\n' > "$tmp/src/model/bare.c"  # unqualified (config.h allowed)
printf '#include "base/error.h"\n#include "model/model.h"\n' > "$tmp/src/train/ok.c"
printf '#include <immintrin.h>\n' > "$tmp/src/train/fast.c"          # intrinsics outside simd/
printf '#include <immintrin.h>\n' > "$tmp/simd/k_avx2.c"
printf '\n' > "$tmp/src/train/up.c"                                 # duplicate basename
check "$tmp"
if [ "$bad" -eq 6 ]; then
    echo "PASS check_layers_self_test (6 planted violations found)"; pass=$((pass + 1))
else
    echo "FAIL check_layers_self_test: expected 6 planted violations, found $bad:"; printf '%s\n' "$out"
    fail=$((fail + 1))
fi

# 2. the real tree
src=${1:-.}
check "$src"
if [ "$bad" -eq 0 ]; then
    echo "PASS check_layers (src/ and simd/: every include goes down or stays in its folder)"; pass=$((pass + 1))
else
    printf '%s\n' "$out"; echo "FAIL check_layers: $bad violation(s)"; fail=$((fail + 1))
fi
echo "RESULT $pass $fail 0"
[ "$fail" -eq 0 ]
