#!/usr/bin/env bash
# End-to-end HTTP benchmark: the same axum app on our layer (session-tower) and on
# tower-sessions 0.14, over each backend, driven by benches/http's load generator
# (keep-alive HTTP/1.1 on loopback, one session per connection, closed loop, interleaved
# rounds, medians). Prints a markdown section for BENCHMARKS.md on stdout.
#
#   scripts/bench-http.sh            # memory, SQLite, PostgreSQL, Redis; 3 rounds of 2 s cells
#   scripts/bench-http.sh --quick    # memory and SQLite; 3 rounds of 0.6 s cells (~2 minutes)
#
# BACKENDS="memory sqlite" / ROUNDS / SECS override the defaults; SKIP_BUILD=1 skips the builds. PostgreSQL and Redis come
# from SESSION_TEST_POSTGRES_URL / SESSION_TEST_REDIS_URL (scripts/services.sh starts them);
# a backend whose URL is missing is skipped with a note.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

backends="${BACKENDS:-memory sqlite postgres redis}"
rounds="${ROUNDS:-3}"
secs="${SECS:-2}"
if [[ "${1:-}" == "--quick" ]]; then
    backends="${BACKENDS:-memory sqlite}"
    secs="${SECS:-0.6}"
fi

# SKIP_BUILD=1 runs the binaries already built.
if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release -q -p session-bench-http --target-dir "$target" >&2
    # tower-sessions' SQL store needs sqlx 0.8: its own workspace (benches/peer-http).
    cargo build --release -q --manifest-path benches/peer-http/Cargo.toml --target-dir "$target" >&2
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME BIN BACKEND URL: starts a server, sets $addr and $pid.
start() {
    local name="$1" bin="$2" backend="$3" url="$4"
    "$bin" "$backend" "$url" >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        if grep -q '^listening ' "$work/$name.out" 2>/dev/null; then
            addr="$(sed -n 's/^listening //p' "$work/$name.out")"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "$name ($backend) did not start: $(cat "$work/$name.err")" >&2
    return 1
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
out="$work/tables.md"
: >"$out"
notes=()
for backend in $backends; do
    case "$backend" in
        memory) url="" ;;
        sqlite) mkdir -p "$work/$backend"; url="$work/$backend" ;;
        postgres) url="${SESSION_TEST_POSTGRES_URL:-}" ;;
        redis) url="${SESSION_TEST_REDIS_URL:-}" ;;
        *) echo "unknown backend $backend" >&2; exit 2 ;;
    esac
    if [[ "$backend" != memory && -z "$url" ]]; then
        notes+=("$backend: skipped (no URL in the environment)")
        continue
    fi
    ours_url="$url"; peer_url="$url"
    if [[ "$backend" == sqlite ]]; then ours_url="$url/ours.db"; peer_url="$url/peer.db"; fi
    start ours "$target/release/bench-http-server" "$backend" "$ours_url"
    ours="ours=$addr@$pid"
    start peer "$target/release/peer-http-server" "$backend" "$peer_url"
    peer="tower-sessions=$addr@$pid"
    "$target/release/bench-http-load" --backend "$backend" --rounds "$rounds" --secs "$secs" \
        --target "$ours" --target "$peer" >>"$out"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    pids=()
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

rustc_v="$(rustc --version)"
ts_v="$(grep -A1 '^name = "tower-sessions"$' benches/peer-http/Cargo.lock 2>/dev/null | sed -n 's/^version = "\(.*\)"/\1/p')"
cat <<MD
### HTTP, end to end (scripts/bench-http.sh${1:+ $1})

Run $started on $(nproc) cores ($rustc_v), load average $load_before at the start and
$load_after at the end (the benchmark's own load included). The same axum 0.8 app on our
\`session-tower\` layer and on tower-sessions $ts_v; keep-alive HTTP/1.1 on loopback, one
session per connection (cookies handled by the load generator), closed loop, $rounds interleaved
rounds of ${secs} s per cell, medians; CPU is the server process's utime + stime from
/proc per request. Lost writes: after each mixed / hot cell the stored counter of every session is
read back and compared with the writes the server acknowledged (tower-sessions has no atomic
update: its \`/update\` is a get then an insert, so on a hot session it loses updates by design).

MD
cat "$out"
for n in "${notes[@]}"; do echo "- $n"; done
