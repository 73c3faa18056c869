#!/usr/bin/env bash
# Start and stop the servers the test suite needs, on 127.0.0.1, with throwaway data
# directories:
#   - PostgreSQL (run as an unprivileged user), plus a second "outage" instance that the
#     outage test stops and restarts;
#   - MariaDB;
#   - Redis standalone, plus a second "outage" instance;
#   - Redis standalone over TLS only (a CA and a server certificate for 127.0.0.1 made
#     with openssl in the throwaway directory);
#   - Redis Sentinel: a master, a replica and three sentinels watching them (service
#     `session-test`, for the Sentinel tests and the failover test);
#   - a Redis Cluster of 3 masters, each with a replica (for the failover test).
#
# Usage:
#   scripts/services.sh install         # apt-get install what is missing
#   scripts/services.sh start [DIR]     # start all; writes DIR/env (export lines); prints DIR
#   scripts/services.sh stop DIR        # stop everything started in DIR and delete DIR
#
# Ports can be moved with SESSION_TEST_PORT_BASE (default 40000): Postgres BASE+5432 and
# BASE+5433, MariaDB BASE+3306, Redis BASE+6379 and BASE+6380, Redis TLS BASE+6381,
# cluster masters BASE+7001..7003 and replicas BASE+7004..7006 (cluster bus ports are
# these + 10000, so keep bases of two sets at least 10000 apart).
set -euo pipefail

BASE=${SESSION_TEST_PORT_BASE:-40000}
PG_PORT=$((BASE + 5432))
PG_OUTAGE_PORT=$((BASE + 5433))
MY_PORT=$((BASE + 3306))
MY_OUTAGE_PORT=$((BASE + 3307))
REDIS_PORT=$((BASE + 6379))
REDIS_OUTAGE_PORT=$((BASE + 6380))
REDIS_TLS_PORT=$((BASE + 6381))
SENTINEL_MASTER_PORT=$((BASE + 6390))
SENTINEL_REPLICA_PORT=$((BASE + 6391))
SENTINEL_PORTS=($((BASE + 6392)) $((BASE + 6393)) $((BASE + 6394)))
SENTINEL_SERVICE=session-test
CLUSTER_PORTS=($((BASE + 7001)) $((BASE + 7002)) $((BASE + 7003)))
CLUSTER_REPLICA_PORTS=($((BASE + 7004)) $((BASE + 7005)) $((BASE + 7006)))

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] || die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin)"
    echo "$dir"
}

# Runs a command as the unprivileged user that owns the Postgres data (Postgres refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

install() {
    local missing=()
    ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || missing+=(postgresql)
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
    if [ ${#missing[@]} -eq 0 ]; then
        log "servers already installed"
        return
    fi
    log "installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    # Debian's packages try to start their services; policy-rc.d may refuse that, which is
    # fine: we start our own instances.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

wait_for() { # description, tries, command...
    local what=$1 tries=$2
    shift 2
    for _ in $(seq "$tries"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$what did not come up"
}

start_postgres() { # port, dir
    local port=$1 dir=$2 bin
    bin=$(pg_bin)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$PG_USER" "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { cat "$dir/server.log" >&2; die "postgres on $port failed to start"; }
    log "postgres on 127.0.0.1:$port"
}

# The mariadbd command line for a data directory and port (also the outage instance's
# START command, so it must stay one line of plain words).
mariadbd_cmd() { # dir, port
    echo "/usr/sbin/mariadbd --no-defaults --datadir=$1/data --user=$(id -un) --port=$2" \
        "--bind-address=127.0.0.1 --socket=$1/mysql.sock --pid-file=$1/mysql.pid" \
        "--skip-name-resolve --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0" \
        "--max-connections=300 --log-error=$1/error.log"
}

start_mariadb() { # dir [port]
    local dir=$1 port=${2:-$MY_PORT}
    mkdir -p "$dir"
    local user
    user=$(id -un)
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
    # shellcheck disable=SC2046 # the command line is plain words
    ($(mariadbd_cmd "$dir" "$port") >/dev/null 2>&1 &)
    wait_for "mariadb" 240 mariadb --no-defaults -uroot --socket="$dir/mysql.sock" -e 'SELECT 1'
    mariadb --no-defaults -uroot --socket="$dir/mysql.sock" <<SQL
CREATE DATABASE sessions;
CREATE USER 'sessions'@'127.0.0.1' IDENTIFIED BY 'sessions';
GRANT ALL PRIVILEGES ON *.* TO 'sessions'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
    log "mariadb on 127.0.0.1:$port"
}

start_redis() { # port, dir, extra args...
    local port=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@" >/dev/null
    wait_for "redis on $port" 120 redis-cli -p "$port" ping
}

# A Redis that speaks TLS only (plain port off), with a throwaway CA and a certificate
# for 127.0.0.1 made here; clients check it against DIR/ca.crt, none presents its own.
start_redis_tls() { # port, dir
    local port=$1 dir=$2
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=session-test-ca" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" >/dev/null 2>&1
    chmod 644 "$dir"/*.key
    redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
        --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no >/dev/null
    wait_for "redis (TLS) on $port" 120 redis-cli --tls --cacert "$dir/ca.crt" -h 127.0.0.1 -p "$port" ping
}

# A master, its replica and three sentinels (quorum 2) watching them.
start_sentinel() { # dir
    local dir=$1 p
    start_redis "$SENTINEL_MASTER_PORT" "$dir/master"
    start_redis "$SENTINEL_REPLICA_PORT" "$dir/replica" --replicaof 127.0.0.1 "$SENTINEL_MASTER_PORT"
    wait_for "sentinel replica in sync" 240 sh -c \
        "redis-cli -p $SENTINEL_REPLICA_PORT info replication | grep -q master_link_status:up"
    for p in "${SENTINEL_PORTS[@]}"; do
        mkdir -p "$dir/$p"
        # Sentinel rewrites its configuration file: one per sentinel, in the throwaway dir.
        cat >"$dir/$p/sentinel.conf" <<CONF
port $p
bind 127.0.0.1
daemonize yes
dir $dir/$p
pidfile $dir/$p/sentinel.pid
logfile $dir/$p/sentinel.log
sentinel monitor $SENTINEL_SERVICE 127.0.0.1 $SENTINEL_MASTER_PORT 2
sentinel down-after-milliseconds $SENTINEL_SERVICE 1000
sentinel failover-timeout $SENTINEL_SERVICE 5000
sentinel parallel-syncs $SENTINEL_SERVICE 1
CONF
        redis-sentinel "$dir/$p/sentinel.conf" >/dev/null
    done
    for p in "${SENTINEL_PORTS[@]}"; do
        wait_for "sentinel on $p" 240 sh -c \
            "redis-cli -p $p sentinel master $SENTINEL_SERVICE | grep -q '^num-other-sentinels\$' && \
             redis-cli -p $p sentinel master $SENTINEL_SERVICE | grep -A1 '^num-other-sentinels\$' | grep -q '^2\$' && \
             redis-cli -p $p sentinel master $SENTINEL_SERVICE | grep -A1 '^num-slaves\$' | grep -q '^1\$'"
    done
    log "redis sentinel: master $SENTINEL_MASTER_PORT, replica $SENTINEL_REPLICA_PORT, sentinels ${SENTINEL_PORTS[*]}"
}

start_cluster() { # dir
    local dir=$1 p
    for p in "${CLUSTER_PORTS[@]}" "${CLUSTER_REPLICA_PORTS[@]}"; do
        start_redis "$p" "$dir/$p" --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
            --cluster-node-timeout 2000
    done
    local nodes=()
    for p in "${CLUSTER_PORTS[@]}" "${CLUSTER_REPLICA_PORTS[@]}"; do nodes+=("127.0.0.1:$p"); done
    # The first three nodes become the masters, the last three their replicas.
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
        || { cat "$dir/create.log" >&2; die "redis cluster create failed"; }
    wait_for "redis cluster" 120 sh -c "redis-cli -p ${CLUSTER_PORTS[0]} cluster info | grep -q cluster_state:ok"
    for p in "${CLUSTER_REPLICA_PORTS[@]}"; do
        wait_for "replica on $p in sync" 240 sh -c "redis-cli -p $p info replication | grep -q master_link_status:up"
    done
    log "redis cluster on 127.0.0.1:${CLUSTER_PORTS[*]} (replicas ${CLUSTER_REPLICA_PORTS[*]})"
}

start() {
    local dir=${1:-}
    if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/session-services.XXXXXX); fi
    mkdir -p "$dir"
    chmod 755 "$dir"
    : >"$dir/started"
    start_postgres "$PG_PORT" "$dir/pg" && echo pg >>"$dir/started"
    start_postgres "$PG_OUTAGE_PORT" "$dir/pg-outage" && echo pg-outage >>"$dir/started"
    start_mariadb "$dir/mysql" && echo mysql >>"$dir/started"
    start_mariadb "$dir/mysql-outage" "$MY_OUTAGE_PORT" && echo mysql-outage >>"$dir/started"
    start_redis "$REDIS_PORT" "$dir/redis" && echo redis >>"$dir/started"
    start_redis "$REDIS_OUTAGE_PORT" "$dir/redis-outage" && echo redis-outage >>"$dir/started"
    start_redis_tls "$REDIS_TLS_PORT" "$dir/redis-tls" && echo redis-tls >>"$dir/started"
    start_sentinel "$dir/sentinel" && echo sentinel >>"$dir/started"
    start_cluster "$dir/cluster" && echo cluster >>"$dir/started"
    local bin
    bin=$(pg_bin)
    local runas=""
    [ "$(id -u)" = 0 ] && runas="runuser -u $PG_USER -- "
    cat >"$dir/env" <<EOF
export SESSION_TEST_SERVICES_DIR='$dir'
export SESSION_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres'
export SESSION_TEST_MYSQL_URL='mysql://sessions:sessions@127.0.0.1:$MY_PORT/sessions'
export SESSION_TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
export SESSION_TEST_REDIS_CLUSTER_URLS='redis://127.0.0.1:${CLUSTER_PORTS[0]},redis://127.0.0.1:${CLUSTER_PORTS[1]},redis://127.0.0.1:${CLUSTER_PORTS[2]}'
export SESSION_TEST_POSTGRES_OUTAGE_URL='postgres://postgres@127.0.0.1:$PG_OUTAGE_PORT/postgres'
export SESSION_TEST_POSTGRES_OUTAGE_STOP='${runas}$bin/pg_ctl -D $dir/pg-outage/data -m immediate -w stop'
export SESSION_TEST_POSTGRES_OUTAGE_START='${runas}$bin/pg_ctl -D $dir/pg-outage/data -l $dir/pg-outage/server.log -w -t 60 -o "-h 127.0.0.1 -p $PG_OUTAGE_PORT -k $dir/pg-outage -c fsync=off" start'
export SESSION_TEST_MYSQL_OUTAGE_URL='mysql://sessions:sessions@127.0.0.1:$MY_OUTAGE_PORT/sessions'
export SESSION_TEST_MYSQL_OUTAGE_STOP='kill -9 \$(cat $dir/mysql-outage/mysql.pid) && rm -f $dir/mysql-outage/mysql.pid'
export SESSION_TEST_MYSQL_OUTAGE_START='($(mariadbd_cmd "$dir/mysql-outage" "$MY_OUTAGE_PORT") >/dev/null 2>&1 &); for i in \$(seq 240); do mariadb --no-defaults -uroot --socket=$dir/mysql-outage/mysql.sock -e "SELECT 1" >/dev/null 2>&1 && exit 0; sleep 0.25; done; exit 1'
export SESSION_TEST_REDIS_TLS_URL='rediss://127.0.0.1:$REDIS_TLS_PORT'
export SESSION_TEST_REDIS_TLS_CA='$dir/redis-tls/ca.crt'
export SESSION_TEST_REDIS_SENTINEL_URLS='redis://127.0.0.1:${SENTINEL_PORTS[0]},redis://127.0.0.1:${SENTINEL_PORTS[1]},redis://127.0.0.1:${SENTINEL_PORTS[2]}'
export SESSION_TEST_REDIS_SENTINEL_SERVICE='$SENTINEL_SERVICE'
export SESSION_TEST_REDIS_OUTAGE_URL='redis://127.0.0.1:$REDIS_OUTAGE_PORT'
export SESSION_TEST_REDIS_OUTAGE_STOP='redis-cli -p $REDIS_OUTAGE_PORT shutdown nosave'
export SESSION_TEST_REDIS_OUTAGE_START='redis-server --port $REDIS_OUTAGE_PORT --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --dir $dir/redis-outage --pidfile $dir/redis-outage/redis.pid --logfile $dir/redis-outage/redis.log'
EOF
    log "environment in $dir/env"
    echo "$dir"
}

stop() {
    local dir=${1:?usage: services.sh stop DIR}
    [ -d "$dir" ] || return 0
    local bin
    bin=$(pg_bin 2>/dev/null) || bin=""
    local p
    for p in "${SENTINEL_PORTS[@]}" "${CLUSTER_PORTS[@]}" "${CLUSTER_REPLICA_PORTS[@]}" "$REDIS_PORT" \
        "$REDIS_OUTAGE_PORT" "$SENTINEL_MASTER_PORT" "$SENTINEL_REPLICA_PORT"; do
        redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
    if [ -f "$dir/redis-tls/ca.crt" ]; then
        redis-cli --tls --cacert "$dir/redis-tls/ca.crt" -h 127.0.0.1 -p "$REDIS_TLS_PORT" \
            shutdown nosave >/dev/null 2>&1 || true
    fi
    for d in mysql mysql-outage; do
        if [ -f "$dir/$d/mysql.pid" ]; then
            kill "$(cat "$dir/$d/mysql.pid")" 2>/dev/null || true
            for _ in $(seq 80); do [ -f "$dir/$d/mysql.pid" ] || break; sleep 0.25; done
        fi
    done
    for d in pg pg-outage; do
        if [ -n "$bin" ] && [ -f "$dir/$d/data/postmaster.pid" ]; then
            as_pg "$bin/pg_ctl" -D "$dir/$d/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$dir"
    log "stopped and removed $dir"
}

PG_USER=${SESSION_TEST_PG_USER:-postgres}
# Postgres refuses to run as root. The Debian package creates the `postgres` user; create
# one only at start (never before `install`, which would confuse the package's own setup).
ensure_pg_user() {
    if [ "$(id -u)" = 0 ] && ! id "$PG_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home "$PG_USER"
    fi
}

case "${1:-}" in
install) install ;;
start) shift; ensure_pg_user; start "$@" ;;
stop) shift; stop "$@" ;;
*) die "usage: services.sh install | start [DIR] | stop DIR" ;;
esac
