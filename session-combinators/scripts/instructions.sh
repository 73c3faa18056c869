#!/bin/sh
# Instructions per operation (callgrind) of each case of benches/instructions.rs:
# (count at N2 operations - count at N1) / (N2 - N1). Needs valgrind.
# Usage: scripts/instructions.sh [case...]   (build first:
#   cargo bench -p session-combinators --bench instructions --no-run)
set -eu
dir=${CARGO_TARGET_DIR:-$(dirname "$0")/../../target}/release/deps
bin=$(ls -t "$dir"/instructions-* | grep -v '\.d$' | head -n 1)
n1=${N1:-200}; n2=${N2:-2200}
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
cases=${*:-load_memory load_cached_memory load_cached_local update_sqlite update_cached_memory update_cached_local}
for c in $cases; do
    a=$(count "$c" "$n1"); b=$(count "$c" "$n2")
    echo "$c $(( (b - a) / (n2 - n1) )) instructions/op"
done
