#!/usr/bin/env bash
# End-to-end HTTP benchmark: the same app on our axum layer (session-tower) and on
# tower-sessions 0.14, and on our actix-web middleware (session-actix) and on actix-session
# 0.11, over each backend, driven by benches/http's load generator (keep-alive HTTP/1.1 on
# loopback, one session per connection, closed loop, interleaved rounds over all the servers
# of a backend, medians). Prints a markdown section for BENCHMARKS.md on stdout.
#
#   scripts/bench-http.sh            # memory, SQLite, PostgreSQL, Redis; 3 rounds of 2 s cells
#   scripts/bench-http.sh --quick    # memory and SQLite; 3 rounds of 0.6 s cells
#
# BACKENDS="memory sqlite" / ROUNDS / SECS override the defaults; STACKS="axum actix" (the
# default) chooses the stacks: axum (ours vs tower-sessions), actix (ours vs actix-session);
# SKIP_BUILD=1 skips the builds. PostgreSQL and Redis come from SESSION_TEST_POSTGRES_URL /
# SESSION_TEST_REDIS_URL (scripts/services.sh starts them); a backend whose URL is missing is
# skipped with a note.
#
# actix-session has a Redis store and a cookie store (CookieSessionStore: the session data
# is in the cookie, nothing is stored on the server), no in-memory or SQL store: on memory,
# SQLite and PostgreSQL its cells read "no peer"; its cookie store is measured next to our
# actix server on the memory store (the other store that needs no server), labelled as such.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

backends="${BACKENDS:-memory sqlite postgres redis}"
rounds="${ROUNDS:-3}"
secs="${SECS:-2}"
stacks="${STACKS:-axum actix}"
if [[ "${1:-}" == "--quick" ]]; then
    backends="${BACKENDS:-memory sqlite}"
    secs="${SECS:-0.6}"
fi
axum=""; actix=""
for stack in $stacks; do
    case "$stack" in
        axum) axum=1 ;;
        actix) actix=1 ;;
        *) echo "unknown stack $stack (STACKS: axum, actix)" >&2; exit 2 ;;
    esac
done
if [[ -z "$axum$actix" ]]; then echo "STACKS is empty" >&2; exit 2; fi

# SKIP_BUILD=1 runs the binaries already built.
if [[ -z "${SKIP_BUILD:-}" ]]; then
    # Our servers (axum and actix) and the load generator.
    cargo build --release -q -p session-bench-http --target-dir "$target" >&2
    if [[ -n "$axum" ]]; then
        # tower-sessions' SQL store needs sqlx 0.8: its own workspace (benches/peer-http).
        cargo build --release -q --manifest-path benches/peer-http/Cargo.toml --target-dir "$target" >&2
    fi
    if [[ -n "$actix" ]]; then
        # actix-session: its own workspace too (benches/peer-actix).
        cargo build --release -q --manifest-path benches/peer-actix/Cargo.toml --target-dir "$target" >&2
    fi
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME BIN BACKEND URL: starts a server, sets $addr and $pid. Its output goes to a
# file of its own per backend (a file reused from the previous backend could still show
# the old server's line before the new one's shell truncates it).
start() {
    local name="$1" bin="$2" backend="$3" url="$4"
    local log="$work/$name-$backend"
    "$bin" "$backend" "$url" >"$log.out" 2>"$log.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        addr="$(sed -n 's/^listening //p' "$log.out" 2>/dev/null || true)"
        if [[ -n "$addr" ]]; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "$name ($backend) did not start: $(cat "$log.err")" >&2
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
    # Every server of a backend runs at once; the load generator drives one at a time.
    args=()
    if [[ -n "$axum" ]]; then
        ours_url="$url"; peer_url="$url"
        if [[ "$backend" == sqlite ]]; then ours_url="$url/ours.db"; peer_url="$url/peer.db"; fi
        start ours-axum "$target/release/bench-http-server" "$backend" "$ours_url"
        args+=(--target "ours-axum=$addr@$pid")
        start tower-sessions "$target/release/peer-http-server" "$backend" "$peer_url"
        args+=(--target "tower-sessions=$addr@$pid" --compare "ours-axum=tower-sessions")
    fi
    if [[ -n "$actix" ]]; then
        # Its own SQLite file, SQL table (bench_http_ours_actix) and Redis key prefix.
        ours_url="$url"
        if [[ "$backend" == sqlite ]]; then ours_url="$url/ours-actix.db"; fi
        start ours-actix "$target/release/bench-http-actix-server" "$backend" "$ours_url"
        args+=(--target "ours-actix=$addr@$pid")
        case "$backend" in
            redis)
                start actix-session "$target/release/peer-actix-server" redis "$url"
                args+=(--target "actix-session=$addr@$pid" --compare "ours-actix=actix-session")
                ;;
            memory)
                start actix-session-cookie "$target/release/peer-actix-server" cookie ""
                args+=(--target "actix-session cookie store=$addr@$pid"
                    --no-peer "ours-actix=actix-session"
                    --compare "ours-actix=actix-session cookie store"
                    --note "actix-session has no in-memory store: no peer. Its cookie store (CookieSessionStore) keeps the whole session in the cookie, encrypted, and nothing on the server; it is compared with our actix server on the memory store, as a reference, not as a like-for-like store.")
                ;;
            *)
                args+=(--no-peer "ours-actix=actix-session"
                    --note "actix-session has no SQL store: no peer for ours-actix.")
                ;;
        esac
    fi
    "$target/release/bench-http-load" --backend "$backend" --rounds "$rounds" --secs "$secs" \
        "${args[@]}" >>"$out"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    pids=()
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

rustc_v="$(rustc --version)"
# lock_version LOCKFILE CRATE: the version of CRATE in LOCKFILE.
lock_version() {
    grep -A1 "^name = \"$2\"\$" "$1" 2>/dev/null | sed -n 's/^version = "\(.*\)"/\1/p' | head -1
}
apps=""
if [[ -n "$axum" ]]; then
    ts_v="$(lock_version benches/peer-http/Cargo.lock tower-sessions)"
    axum_v="$(lock_version Cargo.lock axum)"
    apps="the same axum $axum_v app on our \`session-tower\` layer and on tower-sessions $ts_v"
fi
if [[ -n "$actix" ]]; then
    as_v="$(lock_version benches/peer-actix/Cargo.lock actix-session)"
    aw_v="$(lock_version Cargo.lock actix-web)"
    [[ -n "$apps" ]] && apps="$apps; "
    apps="${apps}the same actix-web $aw_v app on our \`session-actix\` middleware and on actix-session $as_v
(its Redis store, \`RedisSessionStore::new\`: one multiplexed connection; and its cookie store; it has
no in-memory or SQL store: \"no peer\"). Each actix server runs actix-web's default workers (one per
core), as many as the axum servers' tokio threads"
fi
peers=()
[[ -n "$axum" ]] && peers+=("tower-sessions")
[[ -n "$actix" ]] && peers+=("actix-session")
lossy="${peers[*]}"; lossy="${lossy// / and }"
cookie_note=""
if [[ -n "$actix" ]]; then
    cookie_note="; with actix-session's cookie store each connection keeps its own copy of the data,
and the best copy is counted"
fi
cat <<MD
## HTTP, end to end (scripts/bench-http.sh${1:+ $1})

Run $started on $(nproc) cores ($rustc_v), load average $load_before at the start and
$load_after at the end (the benchmark's own load included). Stacks: $stacks; $apps.
Keep-alive HTTP/1.1 on loopback, one session per connection (cookies handled by the load
generator), closed loop, $rounds interleaved rounds (every server of a backend in turn) of
${secs} s per cell, medians; CPU is the server process's utime + stime from /proc per request.
Lost writes: after each mixed / hot cell the stored counter of every session is read back
and compared with the writes the server acknowledged (no atomic update in $lossy: the peer's
\`/update\` is a get then an insert, so on a hot session it loses updates by design$cookie_note).

MD
cat "$out"
for n in "${notes[@]}"; do echo "- $n"; done
