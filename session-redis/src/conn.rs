//! Connections: a few long-lived multiplexed connections taken from a deadpool-redis pool,
//! and the mapping of Redis errors to [`session_core::StoreError`].
//!
//! deadpool-redis recycles a connection on every checkout with `UNWATCH` + `PING` (one
//! extra network round trip per operation, and deadpool-redis has no setting to turn it
//! off). A [`MultiplexedConnection`] (and a cluster connection) is already safe to share
//! between tasks: requests from many tasks are pipelined over one socket. So the store
//! checks connections out of the pool only to (re)connect, takes them out of the pool
//! (`Connection::take`), and keeps `pool_size` of them in slots used round-robin. A slot
//! whose connection failed with a connection-level error is emptied and refilled from the
//! pool by the next operation that lands on it, so the store recovers by itself when the
//! server returns.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};
use session_core::{ConfigError, StoreError};

/// A connection of either kind; cloning it is cheap (a handle to a shared socket task).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Where new connections come from.
pub(crate) enum Source {
    Single(deadpool_redis::Pool),
    /// The master a set of sentinels names (asked again at every new connection).
    #[cfg(feature = "sentinel")]
    Sentinel(deadpool_redis::sentinel::Pool),
    #[cfg(feature = "cluster")]
    Cluster(deadpool_redis::cluster::Pool),
}

impl Source {
    pub(crate) fn is_cluster(&self) -> bool {
        match self {
            Self::Single(_) => false,
            #[cfg(feature = "sentinel")]
            Self::Sentinel(_) => false,
            #[cfg(feature = "cluster")]
            Self::Cluster(_) => true,
        }
    }

    async fn connect(&self, response_timeout: Duration) -> Result<Conn, StoreError> {
        match self {
            Self::Single(pool) => {
                let obj = pool.get().await.map_err(pool_error)?;
                let mut conn = deadpool_redis::Connection::take(obj);
                conn.set_response_timeout(response_timeout);
                Ok(Conn::Single(conn))
            }
            #[cfg(feature = "sentinel")]
            Self::Sentinel(pool) => {
                let obj = pool.get().await.map_err(pool_error)?;
                let mut conn = deadpool_redis::sentinel::Connection::take(obj);
                conn.set_response_timeout(response_timeout);
                Ok(Conn::Single(conn))
            }
            #[cfg(feature = "cluster")]
            Self::Cluster(pool) => {
                let obj = pool.get().await.map_err(pool_error)?;
                Ok(Conn::Cluster(deadpool_redis::cluster::Connection::take(
                    obj,
                )))
            }
        }
    }
}

struct Slot {
    conn: parking_lot::RwLock<Option<(u64, Conn)>>,
    connecting: tokio::sync::Mutex<()>,
    /// The next (or the last) `WAIT` on this slot's connection (see `ack_wait`).
    acking: parking_lot::Mutex<Option<PendingAck>>,
}

/// A shared `WAIT`: how many replicas acknowledged.
type AckWait = Shared<BoxFuture<'static, Result<i64, Arc<RedisError>>>>;

struct PendingAck {
    /// The connection it was sent on.
    generation: u64,
    /// Set just before the command is sent: writers answered later must not join.
    sent: Arc<AtomicBool>,
    wait: AckWait,
}

/// A connection lent to one operation, with what is needed to retire it on failure.
pub(crate) struct Lease {
    pub(crate) conn: Conn,
    slot: usize,
    generation: u64,
}

/// A write is acknowledged only once `replicas` replicas have it (`WAIT`, sent in the
/// same round trip as the write). When fewer answer within `timeout`, the sentinels (if
/// any) are asked whether this connection's server is still the master: a master that a
/// failover has replaced still accepts writes from the connections it has until Sentinel
/// reconfigures it, seconds later, and those writes are discarded when it resynchronises.
pub(crate) struct ReplicaAcks {
    pub(crate) replicas: usize,
    pub(crate) timeout: Duration,
    /// Sentinel URLs and the service name; `None`: a shortfall is always `Unavailable`.
    pub(crate) sentinels: Option<(Vec<String>, String)>,
    /// The last master address the sentinels agreed on, with when that check started
    /// (single flight: a writer reuses a check that started after its own `WAIT` ended).
    pub(crate) check: tokio::sync::Mutex<Option<(Instant, (String, u16))>>,
}

impl ReplicaAcks {
    pub(crate) fn new(
        replicas: usize,
        timeout: Duration,
        sentinels: Option<(Vec<String>, String)>,
    ) -> Self {
        Self {
            replicas,
            timeout,
            sentinels,
            check: tokio::sync::Mutex::new(None),
        }
    }
}

/// Why a write was not acknowledged although the server ran it (the caller sees
/// [`StoreError::Unavailable`]; the write may be discarded by a failover).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotAcknowledged {
    #[error("only {got} of {want} replicas acknowledged the write within {timeout:?}")]
    Replicas {
        got: i64,
        want: usize,
        timeout: Duration,
    },
    #[error("the server {here} is no longer the master the sentinels name ({master})")]
    NotMaster { here: String, master: String },
    #[error(
        "the sentinels did not confirm a master (asked {asked}, {answered} answered; \
         a failover under way or answers differing)"
    )]
    NoConsensus { asked: usize, answered: usize },
}

/// The connection slots of one store.
pub(crate) struct Connections {
    source: Source,
    acks: Option<ReplicaAcks>,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    generation: AtomicU64,
    pub(crate) acquire_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// Bounds a whole store call ([`bounded`](Self::bounded)).
    pub(crate) operation_timeout: Duration,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("cluster", &self.source.is_cluster())
            .field("slots", &self.slots.len())
            .field("acquire_timeout", &self.acquire_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl Connections {
    pub(crate) fn new(
        source: Source,
        acks: Option<ReplicaAcks>,
        slots: usize,
        acquire_timeout: Duration,
        response_timeout: Duration,
        operation_timeout: Duration,
    ) -> Self {
        Self {
            source,
            acks,
            slots: (0..slots.max(1))
                .map(|_| Slot {
                    conn: parking_lot::RwLock::new(None),
                    connecting: tokio::sync::Mutex::new(()),
                    acking: parking_lot::Mutex::new(None),
                })
                .collect(),
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            acquire_timeout,
            response_timeout,
            operation_timeout,
        }
    }

    /// Runs one whole store call (`op` names it in the error) under the operation
    /// timeout: however its steps went (a connection awaited behind another task's
    /// connect, a command sent to a frozen server, a script reloaded, a `WAIT`), the caller
    /// has an answer by then. A call cut short may or may not have run its write, as with
    /// a response timeout; every write is one atomic command or script, so it ran whole or
    /// not at all.
    pub(crate) async fn bounded<T, F>(&self, op: &'static str, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        match tokio::time::timeout(self.operation_timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    op,
                    after_ms = self.operation_timeout.as_millis() as u64,
                    "session-redis: operation timed out"
                );
                Err(StoreError::unavailable(TimedOut {
                    what: op,
                    after: self.operation_timeout,
                    whole_call: true,
                }))
            }
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.source.is_cluster()
    }

    /// A connection for one operation: the next slot's, or a new one from the pool
    /// (bounded by the acquire timeout: pool wait plus connect).
    pub(crate) async fn lease(&self) -> Result<Lease, StoreError> {
        let index = if self.slots.len() == 1 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()
        };
        let slot = &self.slots[index];
        if let Some((generation, conn)) = slot.conn.read().as_ref() {
            return Ok(Lease {
                conn: conn.clone(),
                slot: index,
                generation: *generation,
            });
        }
        // The slow path, boxed: its future holds the pool's connect future (a cluster
        // connect is many kilobytes), which every operation's future would otherwise carry
        // and copy, connected or not (`load`'s future: 22,272 bytes before, 1,376 after;
        // test `operation_futures_stay_small`).
        Box::pin(self.fill_slot(index)).await
    }

    /// Connects the slot `index` (once, whoever waits for it) under the acquire timeout.
    async fn fill_slot(&self, index: usize) -> Result<Lease, StoreError> {
        let slot = &self.slots[index];
        let fill = async {
            let _guard = slot.connecting.lock().await;
            if let Some((generation, conn)) = slot.conn.read().as_ref() {
                return Ok(Lease {
                    conn: conn.clone(),
                    slot: index,
                    generation: *generation,
                });
            }
            let conn = self.source.connect(self.response_timeout).await?;
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            *slot.conn.write() = Some((generation, conn.clone()));
            tracing::debug!(slot = index, "session-redis: connected");
            Ok(Lease {
                conn,
                slot: index,
                generation,
            })
        };
        match tokio::time::timeout(self.acquire_timeout, fill).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::unavailable(TimedOut {
                what: "getting a redis connection",
                after: self.acquire_timeout,
                whole_call: false,
            })),
        }
    }

    /// Empties the lease's slot if it still holds that connection.
    fn retire(&self, lease: &Lease) {
        let mut conn = self.slots[lease.slot].conn.write();
        if conn.as_ref().is_some_and(|(g, _)| *g == lease.generation) {
            *conn = None;
            tracing::warn!(
                slot = lease.slot,
                "session-redis: dropping a failed connection"
            );
        }
    }

    /// Runs `fut` on a lease under the response timeout, mapping errors; a connection-level
    /// failure retires the connection.
    pub(crate) async fn run<T, F>(&self, lease: &Lease, fut: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, RedisError>>,
    {
        match self.run_raw(lease, fut).await? {
            Ok(value) => Ok(value),
            Err(err) => Err(self.fail(lease, err)),
        }
    }

    /// Sends one command on `lease` (under the response timeout, errors mapped): the one
    /// way the store runs a plain command.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        lease: &Lease,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let mut c = lease.conn.clone();
        self.run(lease, cmd.query_async(&mut c)).await
    }

    /// Sends one write command on `lease`, as [`query`](Self::query) does, acknowledged
    /// only as [`ReplicaAcks`] says when the store waits for replicas.
    pub(crate) async fn write<T: redis::FromRedisValue>(
        &self,
        lease: &Lease,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        match self.write_raw(lease, cmd).await? {
            Ok(value) => Ok(value),
            Err(err) => Err(self.fail(lease, err)),
        }
    }

    /// [`write`](Self::write), handing a Redis error of the command back unmapped (as
    /// [`run_raw`](Self::run_raw) does) so the caller can react to `NOSCRIPT`.
    pub(crate) async fn write_raw<T: redis::FromRedisValue>(
        &self,
        lease: &Lease,
        cmd: &Cmd,
    ) -> Result<Result<T, RedisError>, StoreError> {
        let mut c = lease.conn.clone();
        let value = self.run_raw(lease, cmd.query_async::<T>(&mut c)).await?;
        let (Some(acks), Ok(_)) = (&self.acks, &value) else {
            return Ok(value);
        };
        let got = match self.ack_wait(lease, acks).await {
            Ok(got) => got,
            Err(err) => {
                if is_unavailable(&err) {
                    self.retire(lease);
                    return Err(StoreError::unavailable(err));
                }
                return Err(StoreError::backend(err));
            }
        };
        if got < 0 || (got as u64) < acks.replicas as u64 {
            self.confirm_master(lease, acks, got).await?;
        }
        Ok(value)
    }

    /// A `WAIT` on the lease's connection that covers every write answered on it before
    /// this call (group commit: `WAIT` blocks the connection on the server, and it counts
    /// the replicas that have *all* of this connection's writes, so one serves every
    /// writer whose reply had arrived before it was sent). Joins the next `WAIT` if it is
    /// not sent yet; otherwise queues a new one behind the one in flight.
    fn ack_wait(&self, lease: &Lease, acks: &ReplicaAcks) -> AckWait {
        let mut pending = self.slots[lease.slot].acking.lock();
        let previous = match pending.as_ref() {
            Some(p) if p.generation == lease.generation => {
                if !p.sent.load(Ordering::SeqCst) {
                    return p.wait.clone();
                }
                Some(p.wait.clone())
            }
            _ => None,
        };
        let sent = Arc::new(AtomicBool::new(false));
        let mut conn = lease.conn.clone();
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(acks.replicas)
            .arg(u64::try_from(acks.timeout.as_millis()).unwrap_or(u64::MAX));
        let wait = {
            let sent = Arc::clone(&sent);
            async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                // From here on, a writer can no longer join: its reply may come later.
                sent.store(true, Ordering::SeqCst);
                cmd.query_async::<i64>(&mut conn).await.map_err(Arc::new)
            }
            .boxed()
            .shared()
        };
        *pending = Some(PendingAck {
            generation: lease.generation,
            sent,
            wait: wait.clone(),
        });
        wait
    }

    /// After a replica shortfall: `Ok` only when the sentinels (all of them, agreeing,
    /// none running a failover) name this connection's server as the master; otherwise the connection is retired
    /// (a new one asks the sentinels) and the write is reported `Unavailable`.
    async fn confirm_master(
        &self,
        lease: &Lease,
        acks: &ReplicaAcks,
        got: i64,
    ) -> Result<(), StoreError> {
        let since = Instant::now();
        let Some((urls, service)) = &acks.sentinels else {
            return Err(StoreError::unavailable(NotAcknowledged::Replicas {
                got,
                want: acks.replicas,
                timeout: acks.timeout,
            }));
        };
        let mut c = lease.conn.clone();
        let info: String = self
            .run(lease, redis::cmd("CLIENT").arg("INFO").query_async(&mut c))
            .await?;
        let here = local_addr(&info);
        let master = {
            let mut last = acks.check.lock().await;
            match last.as_ref() {
                Some((started, master)) if *started >= since => Ok(master.clone()),
                _ => {
                    let started = Instant::now();
                    let found = self.sentinel_master(urls, service).await;
                    if let Ok(master) = &found {
                        *last = Some((started, master.clone()));
                    }
                    found
                }
            }
        };
        let master = match master {
            Ok(master) => master,
            Err(err) => {
                self.retire(lease);
                return Err(StoreError::unavailable(err));
            }
        };
        if here.as_ref() == Some(&master) {
            tracing::warn!(
                got,
                want = acks.replicas,
                "session-redis: write acknowledged by the master alone (too few replicas answered)"
            );
            return Ok(());
        }
        self.retire(lease);
        Err(StoreError::unavailable(NotAcknowledged::NotMaster {
            here: here.map_or_else(|| "?".to_owned(), |(h, p)| format!("{h}:{p}")),
            master: format!("{}:{}", master.0, master.1),
        }))
    }

    /// The master address every sentinel names, none of them running a failover of the
    /// service (`SENTINEL GET-MASTER-ADDR-BY-NAME` and the `flags` of `SENTINEL MASTER`).
    /// The sentinel leading a failover names the promoted replica only once it has seen it
    /// promoted; until the failover ends, a write that too few replicas acknowledged is
    /// not confirmed, wherever it ran.
    async fn sentinel_master(
        &self,
        urls: &[String],
        service: &str,
    ) -> Result<(String, u16), NotAcknowledged> {
        let asks = urls.iter().map(|url| async move {
            let ask = async {
                let client = redis::Client::open(url.as_str()).ok()?;
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                let (addr, master): ((String, u16), std::collections::HashMap<String, String>) =
                    redis::pipe()
                        .cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(service)
                        .cmd("SENTINEL")
                        .arg("MASTER")
                        .arg(service)
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                let failing_over = master
                    .get("flags")
                    .is_some_and(|f| f.contains("failover_in_progress"));
                Some((addr, failing_over))
            };
            tokio::time::timeout(self.response_timeout, ask)
                .await
                .ok()
                .flatten()
        });
        let answers: Vec<((String, u16), bool)> = futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        let no = NotAcknowledged::NoConsensus {
            asked: urls.len(),
            answered: answers.len(),
        };
        match answers.split_first() {
            Some(((first, _), _))
                if answers.len() == urls.len()
                    && answers.iter().all(|(a, failing)| a == first && !failing) =>
            {
                Ok(first.clone())
            }
            _ => Err(no),
        }
    }

    /// Sends one command to the cluster node `route` names (a `SCAN` or `CLUSTER NODES`
    /// on one node), as [`query`](Self::query) does; on a standalone lease it is sent to
    /// the server.
    #[cfg(feature = "cluster")]
    pub(crate) async fn query_routed<T: redis::FromRedisValue>(
        &self,
        lease: &Lease,
        cmd: Cmd,
        route: redis::cluster_routing::RoutingInfo,
    ) -> Result<T, StoreError> {
        let Conn::Cluster(c) = &lease.conn else {
            return self.query(lease, &cmd).await;
        };
        let mut c = c.clone();
        let value = self.run(lease, c.route_command(cmd, route)).await?;
        redis::FromRedisValue::from_redis_value(value)
            .map_err(|e| StoreError::backend(RedisError::from(e)))
    }

    /// Like [`run`](Self::run), but hands a Redis error back unmapped (a timeout is
    /// already mapped) so the caller can react to it (`NOSCRIPT`).
    pub(crate) async fn run_raw<T, F>(
        &self,
        lease: &Lease,
        fut: F,
    ) -> Result<Result<T, RedisError>, StoreError>
    where
        F: std::future::Future<Output = Result<T, RedisError>>,
    {
        // A standalone connection carries the response timeout itself (set when it was
        // taken from the pool), so no second timer per operation; a cluster connection
        // gets it here.
        let result = match lease.conn {
            Conn::Single(_) => Ok::<_, tokio::time::error::Elapsed>(fut.await),
            #[cfg(feature = "cluster")]
            Conn::Cluster(_) => tokio::time::timeout(self.response_timeout, fut).await,
        };
        result.map_err(|_| {
            self.retire(lease);
            StoreError::unavailable(TimedOut {
                what: "waiting for a redis response",
                after: self.response_timeout,
                whole_call: false,
            })
        })
    }

    /// Maps a Redis error of an operation on `lease`, retiring the connection when the
    /// error means it is unusable.
    pub(crate) fn fail(&self, lease: &Lease, err: RedisError) -> StoreError {
        let mapped = map_error(err);
        if mapped.is_unavailable() {
            self.retire(lease);
        }
        mapped
    }
}

/// The server's own address of a connection, from `CLIENT INFO` (`laddr=host:port`).
fn local_addr(info: &str) -> Option<(String, u16)> {
    let laddr = info
        .split_whitespace()
        .find_map(|f| f.strip_prefix("laddr="))?;
    let (host, port) = laddr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

/// An operation did not finish within its configured time: one step of it (getting a
/// connection, one response) or the whole store call
/// ([`operation_timeout`](crate::RedisStoreBuilder::operation_timeout)).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct TimedOut {
    what: &'static str,
    after: Duration,
    whole_call: bool,
}

impl TimedOut {
    fn describe(&self) -> String {
        if self.whole_call {
            format!(
                "the redis {} did not finish within the operation timeout ({:?})",
                self.what, self.after
            )
        } else {
            format!("timed out after {:?} {}", self.after, self.what)
        }
    }
}

/// Whether a Redis error means the server could not be reached or answered in time.
pub(crate) fn is_unavailable(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        // A master demoted by a failover: this connection is to a
                        // replica now; a new one goes to the new master.
                        | ServerErrorKind::ReadOnly
                )
        )
}

/// `WRONGTYPE`: the key holds a value of another Redis type (a foreign value).
pub(crate) fn is_wrong_type(err: &RedisError) -> bool {
    err.code() == Some("WRONGTYPE")
}

/// A client-side configuration mistake the `redis` crate found only when connecting (an
/// option it cannot honour, such as `rediss://` without a TLS feature): nothing reached a
/// server, so it is a [`ConfigError`], not a backend failure.
pub(crate) fn is_config(err: &RedisError) -> bool {
    err.kind() == ErrorKind::InvalidClientConfig
}

/// Maps a Redis error: configuration mistake -> `Config`, unreachable -> `Unavailable`,
/// foreign value -> `CorruptRecord`, anything else -> `Backend`; the source is kept.
pub(crate) fn map_error(err: RedisError) -> StoreError {
    if is_wrong_type(&err) {
        StoreError::corrupt("redis value of another type at the session key")
    } else if is_config(&err) {
        StoreError::Config(ConfigError::invalid_with_source(
            "redis client configuration",
            err,
        ))
    } else if is_unavailable(&err) {
        StoreError::unavailable(err)
    } else {
        StoreError::backend(err)
    }
}

fn pool_error(err: deadpool_redis::PoolError) -> StoreError {
    use deadpool_redis::PoolError;
    match err {
        PoolError::Backend(e) => map_error(e),
        PoolError::Timeout(_) | PoolError::Closed => StoreError::unavailable(err),
        // A caller's pool built without a runtime but with timeouts: a setup mistake.
        PoolError::NoRuntimeSpecified => StoreError::Config(ConfigError::invalid_with_source(
            "redis connection pool",
            err,
        )),
        other => StoreError::backend(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_info_gives_the_server_address() {
        let info = "id=3 addr=127.0.0.1:53412 laddr=127.0.0.1:46390 fd=8 name= db=0";
        assert_eq!(local_addr(info), Some(("127.0.0.1".to_owned(), 46390)));
        assert_eq!(
            local_addr("id=1 laddr=[::1]:6379 fd=9"),
            Some(("::1".to_owned(), 6379))
        );
        assert_eq!(local_addr("id=1 addr=x:1"), None);
    }

    #[test]
    fn client_config_errors_map_to_config() {
        let err = RedisError::from((ErrorKind::InvalidClientConfig, "bad option"));
        assert!(matches!(map_error(err), StoreError::Config(_)));
        let err = RedisError::from((ErrorKind::Io, "reset"));
        assert!(map_error(err).is_unavailable());
        let err = pool_error(deadpool_redis::PoolError::NoRuntimeSpecified);
        assert!(matches!(err, StoreError::Config(_)), "{err}");
    }

    /// A TLS address in a caller's pool, without a TLS feature of `redis`: the mistake
    /// surfaces at the first operation, as a configuration error (nothing was sent).
    #[cfg(not(any(feature = "tls-rustls", feature = "tls-native-tls")))]
    #[tokio::test]
    async fn tls_without_the_feature_is_a_config_error_at_the_first_operation() {
        use session_core::{SessionKey, SessionStore};
        let info = deadpool_redis::ConnectionInfo {
            addr: deadpool_redis::ConnectionAddr::TcpTls {
                host: "127.0.0.1".into(),
                port: 1,
                insecure: false,
            },
            redis: Default::default(),
        };
        let pool = deadpool_redis::Config::from_connection_info(info)
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .expect("pool");
        let store = crate::RedisStore::builder()
            .pool(pool)
            .build()
            .expect("build");
        let err = store
            .load(&SessionKey::generate())
            .await
            .expect_err("no TLS support compiled in");
        assert!(matches!(err, StoreError::Config(_)), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
