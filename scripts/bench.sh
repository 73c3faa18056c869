#!/usr/bin/env bash
# Runs every benchmark in one go and writes BENCHMARKS.md at the workspace root:
# starts the servers it needs (scripts/services.sh), builds the harness and the
# tower-sessions peer process in release mode, runs the harness, stops the servers.
#
# Usage: scripts/bench.sh [session-bench options]   (see: scripts/bench.sh --help)
#   e.g. scripts/bench.sh --quick                   a short development run
#        scripts/bench.sh --backends memory         one backend
#        scripts/bench.sh --hot-only --hot-ms 5000  only the hot scenario (32 requests on one
#                                                   session, issue 10): writes its section to
#                                                   target/hot-session.md, not BENCHMARKS.md
# The full run includes the hot scenario (--hot-backends, --hot-ms, --hot-tasks) and then
# the end-to-end HTTP benchmark (scripts/bench-http.sh, about 15 minutes; with --quick its
# quick form), whose section replaces the one between <!-- http:begin --> and
# <!-- http:end -->; BENCH_HTTP=0 skips it and keeps the previous section.
# Sections that other commands write (each names its command) are kept from the previous
# BENCHMARKS.md: every <!-- kept:begin --> ... <!-- kept:end --> block goes back, in order,
# after the HTTP section and before "## Findings".
# Set SESSION_BENCH_USE_RUNNING=1 to use already running servers (`source DIR/env` first)
# instead of starting a fresh set (which uses SESSION_TEST_PORT_BASE, default 43000).
# The default run takes about 25-30 minutes on 2 cores; --quick takes about 4.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '[bench.sh] %s\n' "$*" >&2; }

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    cargo run --quiet --release -p session-benches --bin session-bench -- --help
    exit 0
fi

hot_only=0
for arg in "$@"; do
    [ "$arg" = "--hot-only" ] && hot_only=1
done
out="$root/BENCHMARKS.md"
[ "$hot_only" = 1 ] && out="$root/target/hot-session.md"

log "building (release)"
cargo build --release -p session-benches --bin session-bench
if [ "$hot_only" != 1 ]; then
    # The peer is a workspace of its own (sqlx 0.8 and 0.9 cannot share one graph); it
    # shares the target directory.
    cargo build --release --manifest-path benches/peer/Cargo.toml --target-dir "$root/target"
fi

if [ "${SESSION_BENCH_USE_RUNNING:-0}" != 1 ]; then
    # Own ports, so a development or test set of servers can keep running meanwhile.
    export SESSION_TEST_PORT_BASE=${SESSION_TEST_PORT_BASE:-43000}
    # A directory of our own name, so that cleanups of other test runs' directories
    # (/tmp/session-services.*) do not take these servers down mid-run.
    dir=$(mktemp -d /tmp/session-bench-services.XXXXXX)
    scripts/services.sh start "$dir" >/dev/null
    trap 'scripts/services.sh stop "$dir"' EXIT
    # shellcheck disable=SC1091
    source "$dir/env"
fi

# blocks FILE NAME: the <!-- NAME:begin --> ... <!-- NAME:end --> blocks of FILE, in order.
blocks() {
    python3 - "$1" "$2" <<'PY'
import re, sys
path, name = sys.argv[1], sys.argv[2]
try:
    text = open(path, encoding="utf-8").read()
except FileNotFoundError:
    sys.exit(0)
for m in re.finditer(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->\n", text, re.S):
    sys.stdout.write(m.group(0) + "\n")
PY
}
quick=0
for arg in "$@"; do [ "$arg" = "--quick" ] && quick=1; done
previous_http=$(mktemp); kept=$(mktemp); http=$(mktemp)
if [ "$hot_only" != 1 ]; then
    blocks "$out" http >"$previous_http"
    blocks "$out" kept >"$kept"
fi

export SESSION_BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
"$root/target/release/session-bench" --peer-bin "$root/target/release/session-benches-peer" \
    --out "$out" --findings "$root/benches/FINDINGS.md" "$@"

if [ "$hot_only" != 1 ]; then
    if [ "${BENCH_HTTP:-1}" != 0 ]; then
        http_args=()
        [ "$quick" = 1 ] && http_args=(--quick)
        log "the HTTP benchmark (scripts/bench-http.sh ${http_args[*]})"
        {
            echo "<!-- http:begin -->"
            scripts/bench-http.sh "${http_args[@]}"
            echo "<!-- http:end -->"
            echo
        } >"$http"
    else
        cp "$previous_http" "$http"
    fi
    # The HTTP section, then the kept blocks, before "## Findings" (or at the end).
    python3 - "$out" "$http" "$kept" <<'PY'
import sys
out, http, kept = sys.argv[1:]
text = open(out, encoding="utf-8").read()
extra = open(http, encoding="utf-8").read() + open(kept, encoding="utf-8").read()
at = text.find("\n## Findings")
if at < 0:
    text = text.rstrip("\n") + "\n\n" + extra
else:
    text = text[: at + 1] + extra + text[at + 1 :]
open(out, "w", encoding="utf-8").write(text)
PY
fi
rm -f "$previous_http" "$kept" "$http"
log "done: $out"
