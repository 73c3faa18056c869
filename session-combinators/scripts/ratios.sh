#!/bin/sh
# Prints the combinator benchmark's estimates (criterion's slope, else mean) and ratios from criterion's estimates.
# Usage: scripts/ratios.sh [criterion dir]   (default: $CARGO_TARGET_DIR or ../target, /criterion)
set -eu
dir=${1:-${CARGO_TARGET_DIR:-$(dirname "$0")/../../target}/criterion}
mean() { python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print((e.get("slope") or e["mean"])["point_estimate"])' "$dir/$1/$2/new/estimates.json"; }
ratio() { # group, baseline, candidate: throughput of candidate relative to baseline
    b=$(mean "$1" "$2"); c=$(mean "$1" "$3")
    python3 -c 'import sys; b,c=float(sys.argv[1]),float(sys.argv[2]); print(f"{sys.argv[3]:14} {sys.argv[4]:>26} {b/1000:9.2f} us  {sys.argv[5]:>26} {c/1000:9.2f} us  throughput ratio {b/c:.2f}x")' "$b" "$c" "$1" "$2" "$3"
}
ratio load memory_alone cached_memory_over_sqlite
ratio load memory_alone cached_local_over_sqlite
ratio load sqlite_alone cached_memory_over_sqlite
ratio update sqlite_alone cached_memory_over_sqlite
ratio update sqlite_alone cached_local_over_sqlite
ratio hashed_load memory_alone hashed_over_memory
ratio hashed_update memory_alone hashed_over_memory
