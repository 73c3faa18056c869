# Shared by scripts/faults and scripts/soak (sourced, not run): free loopback ports and a
# throwaway Redis Cluster of three masters with a replica each, in "$tmp/cluster/<port>".
# The caller sets `tmp` (a directory it removes) and kills "$tmp"/cluster/*/redis.pid.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A port for a Redis Cluster node: the node also listens on port + 10000 (its cluster bus),
# so both must be free and the port at most 55535 (a free_port above that makes the node
# refuse to start).
free_cluster_port() {
    python3 -c '
import random, socket
for _ in range(1000):
    p = random.randint(20000, 55535)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
else:
    raise SystemExit("no free port pair for a cluster node")'
}

# One node of the cluster (port $1), AOF with fsync always, its own directory.
start_cluster_node() {
    local p=$1 d=$tmp/cluster/$1
    mkdir -p "$d"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$d" --appendonly yes --appendfsync always \
        --save '' --cluster-enabled yes --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 \
        --daemonize no >>"$d/server.log" 2>&1 &
    echo $! >"$d/redis.pid"
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "cluster node $p did not start" >&2; return 1
}

# Three masters (cluster_ports[0..2]) and a replica each (cluster_ports[3..5]); waits until
# the cluster is ok and every replica has synced.
start_cluster() {
    local nodes=() p
    for p in "${cluster_ports[@]}"; do start_cluster_node "$p"; nodes+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$tmp/cluster/create.log" 2>&1
    for _ in $(seq 240); do
        redis-cli -p "${cluster_ports[0]}" cluster info | grep -q cluster_state:ok && break; sleep 0.25
    done
    for p in "${cluster_ports[@]:3}"; do
        for _ in $(seq 240); do
            redis-cli -p "$p" info replication | grep -q master_link_status:up && break; sleep 0.25
        done
    done
}

# Six ports for start_cluster, in the array cluster_ports.
pick_cluster_ports() {
    cluster_ports=()
    for _ in 1 2 3 4 5 6; do cluster_ports+=("$(free_cluster_port)"); done
}

# The store URL of the cluster's masters.
cluster_url() { echo "redis+cluster://$(printf '127.0.0.1:%s,' "${cluster_ports[@]:0:3}" | sed 's/,$//')"; }
