//! The [`SessionStore`], [`UserIndex`] and [`ExpiredCleanup`] implementations.

use futures_util::future::join_all;
use redis::{Cmd, ErrorKind, Script, ServerErrorKind, Value};
use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, ExpiredCleanup, Record, SessionKey, SessionStore, StoreError, StoreResult,
    UserIndex,
};

use crate::conn::Lease;
use crate::format::{self, millis, ts_field};
use crate::scripts::{self, Code};
use crate::RedisStore;

/// Index keys and session keys handled per command in the multi-key steps.
const CHUNK: usize = 500;

/// The least grace (see `RedisStore::index_grace_ms`): one minute, which also absorbs
/// clock differences between application servers.
const INDEX_GRACE_MIN_MS: f64 = 60_000.0;

/// `EVALSHA <sha> <numkeys>`: add the keys, then the arguments.
fn evalsha(script: &Script, keys: usize) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys);
    cmd
}

fn now() -> (DateTime<Utc>, i64) {
    let now = Utc::now();
    (now, millis(now))
}

fn unexpected(what: &str, n: i64) -> StoreError {
    StoreError::backend(std::io::Error::other(format!(
        "session-redis: unexpected answer {n} from the {what} script"
    )))
}

fn code(what: &str, n: i64) -> StoreResult<Code> {
    Code::from_i64(n).ok_or_else(|| unexpected(what, n))
}

fn corrupt_at(key: &SessionKey) -> StoreError {
    tracing::warn!(key = %key, "session-redis: value at a session key is not a session record");
    StoreError::corrupt("redis value at the session key is not a session record")
}

/// One entry of a user's index: the session key and its score (when the entry was
/// written, in milliseconds), as read.
struct Entry {
    member: String,
    score: f64,
}

/// One read of a user's index: its entries as read, and the rule for which of them a
/// reader may prune. Shared by `list_for_user`, `delete_for_user` and `delete_expired`.
struct IndexScan<'a> {
    user: &'a str,
    index: String,
    entries: Vec<Entry>,
    now_at: DateTime<Utc>,
    now_ms: i64,
    grace_ms: f64,
}

/// One chunk of an [`IndexScan`]: the entries whose member parses as a session key, and
/// those that do not (stale at once).
struct ScanChunk<'e> {
    targets: Vec<(&'e Entry, SessionKey)>,
    unparsable: Vec<&'e Entry>,
}

impl<'a> IndexScan<'a> {
    /// Whether `entry` is old enough to be pruned when it points at a missing session or
    /// at another user's (entries younger than the grace may be mid-write in a cluster).
    fn settled(&self, entry: &Entry) -> bool {
        self.now_ms as f64 - entry.score >= self.grace_ms
    }

    /// The entries in chunks of [`CHUNK`], each with its members parsed; `except` is left
    /// out (neither a target nor stale).
    fn chunks<'s>(
        &'s self,
        except: Option<&'s SessionKey>,
    ) -> impl Iterator<Item = ScanChunk<'s>> + 's {
        self.entries.chunks(CHUNK).map(move |chunk| {
            let mut out = ScanChunk {
                targets: Vec::with_capacity(chunk.len()),
                unparsable: Vec::new(),
            };
            for e in chunk {
                match SessionKey::parse(&e.member) {
                    Ok(k) if Some(&k) == except => {}
                    Ok(k) => out.targets.push((e, k)),
                    Err(_) => out.unparsable.push(e),
                }
            }
            out
        })
    }
}

fn bulk_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn score_of(v: &Value) -> Option<f64> {
    match v {
        Value::Double(d) => Some(*d),
        Value::Int(i) => Some(*i as f64),
        other => bulk_text(other).and_then(|s| s.parse().ok()),
    }
}

/// Parses `ZRANGE ... WITHSCORES` in RESP2 (flat) or RESP3 (pairs) shape.
fn parse_entries(v: Value) -> StoreResult<Vec<Entry>> {
    let bad = || {
        StoreError::backend(std::io::Error::other(
            "session-redis: malformed ZRANGE reply",
        ))
    };
    let Value::Array(items) = v else {
        return match v {
            Value::Nil => Ok(Vec::new()),
            _ => Err(bad()),
        };
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    if items.iter().all(|i| matches!(i, Value::Array(_))) {
        for item in items {
            let Value::Array(pair) = item else {
                return Err(bad());
            };
            let [m, s] = pair.as_slice() else {
                return Err(bad());
            };
            out.push(Entry {
                member: bulk_text(m).ok_or_else(bad)?,
                score: score_of(s).ok_or_else(bad)?,
            });
        }
    } else {
        for pair in items.chunks(2) {
            let [m, s] = pair else { return Err(bad()) };
            out.push(Entry {
                member: bulk_text(m).ok_or_else(bad)?,
                score: score_of(s).ok_or_else(bad)?,
            });
        }
    }
    Ok(out)
}

/// Escapes glob characters for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisStore {
    /// How old an index entry must be before a reader may prune it for pointing at a
    /// missing session or at another user's session. In a cluster, `create` and a
    /// user-changing `update` write the index entry *before* the session (other slot), so
    /// a reader can see the entry first; pruning it then would lose a live session from
    /// the index. In standalone mode both are written by one script: no grace needed.
    fn index_grace_ms(&self) -> f64 {
        if self.inner.conns.is_cluster() {
            let ops = self.inner.conns.acquire_timeout + self.inner.conns.response_timeout * 2;
            (ops.as_millis() as f64 * 2.0).max(INDEX_GRACE_MIN_MS)
        } else {
            0.0
        }
    }

    /// Runs a script built by [`evalsha`] with `EVALSHA`; when the server's script cache
    /// does not have it (`NOSCRIPT`: after a restart or `SCRIPT FLUSH`), loads it and
    /// retries once. (Built by hand rather than through `ScriptInvocation`, which copies
    /// every argument twice more.)
    async fn script(&self, lease: &Lease, script: &Script, cmd: &Cmd) -> StoreResult<i64> {
        let conns = &self.inner.conns;
        match conns.write_raw::<i64>(lease, cmd).await? {
            Ok(n) => Ok(n),
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                tracing::debug!("session-redis: script not cached on the server; loading it");
                let mut c = lease.conn.clone();
                let _: String = conns.run(lease, script.load_async(&mut c)).await?;
                conns.write(lease, cmd).await
            }
            Err(err) => Err(conns.fail(lease, err)),
        }
    }

    /// [`script`](Self::script), read as a [`Code`].
    async fn script_code(
        &self,
        lease: &Lease,
        what: &str,
        script: &Script,
        cmd: &Cmd,
    ) -> StoreResult<Code> {
        code(what, self.script(lease, script, cmd).await?)
    }

    async fn index_add(
        &self,
        lease: &Lease,
        user: &str,
        key: &SessionKey,
        score: i64,
    ) -> StoreResult<()> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.user_index_key(user))
            .arg(score)
            .arg(key.as_str());
        let _: i64 = self.inner.conns.write(lease, &cmd).await?;
        Ok(())
    }

    async fn index_entries(&self, lease: &Lease, index: &str) -> StoreResult<Vec<Entry>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(index).arg(0).arg(-1).arg("WITHSCORES");
        parse_entries(self.inner.conns.query(lease, &cmd).await?)
    }

    /// Removes `stale` entries from `index` unless they were rewritten meanwhile.
    async fn prune(&self, lease: &Lease, index: &str, stale: &[&Entry]) -> StoreResult<u64> {
        let mut removed = 0u64;
        for chunk in stale.chunks(CHUNK) {
            let mut cmd = evalsha(&scripts::PRUNE, 1);
            cmd.arg(index);
            for e in chunk {
                cmd.arg(e.member.as_str()).arg(e.score);
            }
            let n = self.script(lease, &scripts::PRUNE, &cmd).await?;
            removed += u64::try_from(n).map_err(|_| unexpected("prune", n))?;
        }
        if removed > 0 {
            tracing::debug!(removed, "session-redis: pruned stale user-index entries");
        }
        Ok(removed)
    }

    /// Reads `user`'s index (`ZRANGE`).
    async fn scan_index<'u>(&self, lease: &Lease, user: &'u str) -> StoreResult<IndexScan<'u>> {
        let index = self.user_index_key(user);
        let entries = self.index_entries(lease, &index).await?;
        let (now_at, now_ms) = now();
        Ok(IndexScan {
            user,
            index,
            entries,
            now_at,
            now_ms,
            grace_ms: self.index_grace_ms(),
        })
    }

    /// Reads one user's index, loads the sessions, prunes what is stale and returns the
    /// live sessions of `user` with the number of entries pruned.
    async fn index_pass(&self, lease: &Lease, user: &str) -> StoreResult<(Vec<Record>, u64)> {
        let scan = self.scan_index(lease, user).await?;
        let mut live = Vec::new();
        let mut stale: Vec<&Entry> = Vec::new();
        for chunk in scan.chunks(None) {
            stale.extend(chunk.unparsable);
            if chunk.targets.is_empty() {
                continue;
            }
            let keys: Vec<String> = chunk
                .targets
                .iter()
                .map(|(_, k)| self.session_key(k))
                .collect();
            let mut cmd = redis::cmd("MGET");
            cmd.arg(&keys);
            let values: Vec<Option<Vec<u8>>> = self.inner.conns.query(lease, &cmd).await?;
            for ((e, k), v) in chunk.targets.into_iter().zip(values) {
                let Some(v) = v else {
                    if scan.settled(e) {
                        stale.push(e);
                    }
                    continue;
                };
                match format::decode(&k, v) {
                    // Expired records never come back: prune at once.
                    Ok(r) if !r.is_live_at(scan.now_at) => stale.push(e),
                    Ok(r) if r.user_id.as_deref() == Some(scan.user) => live.push(r),
                    Ok(_) => {
                        if scan.settled(e) {
                            stale.push(e);
                        }
                    }
                    Err(_) => {
                        tracing::warn!(key = %k, "session-redis: corrupt record in a user index");
                        if scan.settled(e) {
                            stale.push(e);
                        }
                    }
                }
            }
        }
        let pruned = if stale.is_empty() {
            0
        } else {
            self.prune(lease, &scan.index, &stale).await?
        };
        Ok((live, pruned))
    }

    /// The user ids that have an index, by `SCAN` (on every master in a cluster).
    async fn indexed_users(&self, lease: &Lease) -> StoreResult<Vec<String>> {
        let head = format!("{}u:", self.inner.prefix);
        let pattern = format!("{}*", glob_escape(&head));
        let keys = match &lease.conn {
            crate::conn::Conn::Single(_) => self.scan_node(lease, &pattern, None).await?,
            #[cfg(feature = "cluster")]
            crate::conn::Conn::Cluster(_) => {
                let mut all = Vec::new();
                for node in self.masters(lease).await? {
                    all.extend(self.scan_node(lease, &pattern, Some(node)).await?);
                }
                all
            }
        };
        let mut users: Vec<String> = keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&head).map(str::to_owned))
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }

    #[cfg(feature = "cluster")]
    async fn masters(&self, lease: &Lease) -> StoreResult<Vec<(String, u16)>> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let cmd = redis::cmd("CLUSTER").arg("NODES").to_owned();
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        let v: Value = self.inner.conns.query_routed(lease, cmd, route).await?;
        let text = bulk_text(&v).ok_or_else(|| {
            StoreError::backend(std::io::Error::other(
                "session-redis: malformed CLUSTER NODES reply",
            ))
        })?;
        Ok(parse_cluster_nodes(&text))
    }

    async fn scan_node(
        &self,
        lease: &Lease,
        pattern: &str,
        #[allow(unused_variables)] node: Option<(String, u16)>,
    ) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let cmd = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .to_owned();
            let (next, keys): (u64, Vec<String>) = match &node {
                #[cfg(feature = "cluster")]
                Some((host, port)) => {
                    use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    self.inner.conns.query_routed(lease, cmd, route).await?
                }
                _ => self.inner.conns.query(lease, &cmd).await?,
            };
            out.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(out)
    }
}

/// Masters from `CLUSTER NODES` text: `<id> <ip:port@cport[,host]> <flags> ...`.
#[cfg(feature = "cluster")]
fn parse_cluster_nodes(text: &str) -> Vec<(String, u16)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let _id = parts.next()?;
            let addr = parts.next()?;
            let flags = parts.next()?;
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

#[async_trait]
impl SessionStore for RedisStore {
    /// `SET NX PXAT` when no index entry must be written with it (no user, or a cluster,
    /// where the entry goes first); the script only when that is refused (to tell a live
    /// record from an expired or foreign value) or, in standalone mode with a user, to
    /// write the session and its index entry atomically.
    async fn create(&self, record: &Record) -> StoreResult<()> {
        self.inner
            .conns
            .bounded("create", async {
                let conns = &self.inner.conns;
                let (_, now_ms) = now();
                let exp_ms = millis(record.expires_at);
                let value = format::encode(record, record.version);
                let lease = conns.lease().await?;
                let user = record.user_id.as_deref();
                let cluster = conns.is_cluster();
                let session_key = self.session_key(&record.key);
                if cluster && exp_ms > now_ms {
                    if let Some(user) = user {
                        // The index entry goes first: a live session is never missing from it.
                        self.index_add(&lease, user, &record.key, now_ms).await?;
                    }
                }
                let index = match (cluster, user) {
                    (false, Some(user)) => Some(self.user_index_key(user)),
                    _ => None,
                };
                if index.is_none() && exp_ms > now_ms {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&session_key)
                        .arg(value.as_str())
                        .arg("NX")
                        .arg("PXAT")
                        .arg(exp_ms);
                    let set: Option<String> = conns.write(&lease, &cmd).await?;
                    if set.is_some() {
                        return Ok(());
                    }
                }
                let mut cmd = evalsha(&scripts::CREATE, 1 + usize::from(index.is_some()));
                cmd.arg(&session_key);
                if let Some(index) = &index {
                    cmd.arg(index);
                }
                cmd.arg(now_ms)
                    .arg(value)
                    .arg(exp_ms)
                    .arg(record.key.as_str())
                    .arg(now_ms);
                match self
                    .script_code(&lease, "create", &scripts::CREATE, &cmd)
                    .await?
                {
                    Code::Ok => Ok(()),
                    Code::Refused => Err(StoreError::KeyExists),
                    Code::Corrupt => Err(corrupt_at(&record.key)),
                    other => Err(unexpected("create", other.as_i64())),
                }
            })
            .await
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        self.inner
            .conns
            .bounded("load", async {
                let conns = &self.inner.conns;
                let lease = conns.lease().await?;
                let mut cmd = redis::cmd("GET");
                cmd.arg(self.session_key(key));
                let value: Option<Vec<u8>> = conns.query(&lease, &cmd).await?;
                let Some(value) = value else { return Ok(None) };
                let record = format::decode(key, value).inspect_err(|_| {
                    tracing::warn!(key = %key, "session-redis: corrupt session record");
                })?;
                Ok(record.is_live_at(Utc::now()).then_some(record))
            })
            .await
    }

    async fn update(&self, record: &Record) -> StoreResult<u64> {
        self.inner
            .conns
            .bounded("update", async {
                let conns = &self.inner.conns;
                let version = record.version.checked_add(1).ok_or_else(|| {
                    StoreError::backend(std::io::Error::other("session version overflow"))
                })?;
                let value = format::encode(record, version);
                let expected = format::version_field(record.version);
                let fingerprint = format::user_fingerprint(record.user_id.as_deref());
                let exp_ms = millis(record.expires_at);
                let lease = conns.lease().await?;
                let cluster = conns.is_cluster();
                let user = record.user_id.as_deref();
                let index = match (cluster, user) {
                    (false, Some(user)) => Some(self.user_index_key(user)),
                    _ => None,
                };
                let session_key = self.session_key(&record.key);
                let member = if user.is_some() {
                    record.key.as_str()
                } else {
                    ""
                };
                let mut index_done = false;
                loop {
                    let (_, now_ms) = now();
                    let mut cmd = evalsha(&scripts::UPDATE, 1 + usize::from(index.is_some()));
                    cmd.arg(&session_key);
                    if let Some(index) = &index {
                        cmd.arg(index);
                    }
                    cmd.arg(now_ms)
                        .arg(expected.as_str())
                        .arg(value.as_str())
                        .arg(fingerprint.as_str())
                        .arg(exp_ms)
                        .arg(member)
                        .arg(if index_done { "1" } else { "0" });
                    match self
                        .script_code(&lease, "update", &scripts::UPDATE, &cmd)
                        .await?
                    {
                        Code::Ok => return Ok(version),
                        Code::Refused => return Err(StoreError::NotFound),
                        Code::Conflict => return Err(StoreError::Conflict),
                        Code::Corrupt => return Err(corrupt_at(&record.key)),
                        Code::NeedIndex if !index_done => {
                            if let Some(user) = user {
                                // Cluster, user changed: index entry first, then the session.
                                self.index_add(&lease, user, &record.key, now_ms).await?;
                            }
                            index_done = true;
                        }
                        other => return Err(unexpected("update", other.as_i64())),
                    }
                }
            })
            .await
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        self.inner
            .conns
            .bounded("touch", async {
                let conns = &self.inner.conns;
                let (_, now_ms) = now();
                let exp_ms = millis(expires_at);
                let lease = conns.lease().await?;
                let mut cmd = evalsha(&scripts::TOUCH, 1);
                cmd.arg(self.session_key(key))
                    .arg(now_ms)
                    .arg(ts_field(exp_ms))
                    .arg(ts_field(now_ms))
                    .arg(exp_ms);
                match self
                    .script_code(&lease, "touch", &scripts::TOUCH, &cmd)
                    .await?
                {
                    Code::Ok => Ok(true),
                    Code::Refused => Ok(false),
                    Code::Corrupt => Err(corrupt_at(key)),
                    other => Err(unexpected("touch", other.as_i64())),
                }
            })
            .await
    }

    /// One native `DEL`: every record is stored with a Redis expiry at its `expires_at`
    /// (`PXAT`), so a key Redis still has is a live record, and `DEL`'s count is the
    /// answer.
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.inner
            .conns
            .bounded("delete", async {
                let conns = &self.inner.conns;
                let lease = conns.lease().await?;
                let mut cmd = redis::cmd("DEL");
                cmd.arg(self.session_key(key));
                let removed: i64 = conns.write(&lease, &cmd).await?;
                Ok(removed > 0)
            })
            .await
    }

    /// One `EVALSHA` (one round trip, in a cluster too: it touches the session key only).
    /// Like [`delete`](Self::delete) it leaves the user index alone; the entry goes
    /// stale and is pruned by the next read of that index.
    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        self.inner
            .conns
            .bounded("delete at version", async {
                let conns = &self.inner.conns;
                let (_, now_ms) = now();
                let lease = conns.lease().await?;
                let mut cmd = evalsha(&scripts::DELETE_AT_VERSION, 1);
                cmd.arg(self.session_key(key))
                    .arg(now_ms)
                    .arg(format::version_field(version));
                let answer = self
                    .script_code(
                        &lease,
                        "delete-at-version",
                        &scripts::DELETE_AT_VERSION,
                        &cmd,
                    )
                    .await?;
                match answer {
                    Code::Ok => Ok(()),
                    Code::Refused => Err(StoreError::NotFound),
                    Code::Conflict => Err(StoreError::Conflict),
                    Code::Corrupt => Err(corrupt_at(key)),
                    other => Err(unexpected("delete-at-version", other.as_i64())),
                }
            })
            .await
    }

    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.inner
            .conns
            .bounded("exists", async {
                let conns = &self.inner.conns;
                let lease = conns.lease().await?;
                let mut cmd = redis::cmd("GETRANGE");
                cmd.arg(self.session_key(key))
                    .arg(0)
                    .arg((format::EXP_OFFSET + format::TS_WIDTH - 1) as i64);
                let head: Vec<u8> = conns.query(&lease, &cmd).await?;
                if head.is_empty() {
                    return Ok(false);
                }
                let expires_at = format::decode_expiry(&head).map_err(|_| corrupt_at(key))?;
                Ok(expires_at > Utc::now())
            })
            .await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        Some(self)
    }

    fn backend_name(&self) -> &'static str {
        if self.inner.conns.is_cluster() {
            "redis_cluster"
        } else {
            "redis"
        }
    }
}

/// `delete_expired` prunes the user index: Redis expires the sessions by itself, but not
/// the index entries that point at them.
#[async_trait]
impl ExpiredCleanup for RedisStore {
    async fn delete_expired(&self) -> StoreResult<u64> {
        let lease = self.inner.conns.lease().await?;
        let mut removed = 0u64;
        for user in self.indexed_users(&lease).await? {
            removed += self.index_pass(&lease, &user).await?.1;
        }
        if removed > 0 {
            tracing::info!(
                removed,
                "session-redis: delete_expired pruned stale user-index entries"
            );
        }
        Ok(removed)
    }
}

/// The user index: one sorted set per user (see the crate docs for its consistency).
#[async_trait]
impl UserIndex for RedisStore {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        self.inner
            .conns
            .bounded("list for user", async {
                let lease = self.inner.conns.lease().await?;
                let (mut live, _) = self.index_pass(&lease, user_id).await?;
                live.sort_by_key(|r| r.created_at);
                Ok(live)
            })
            .await
    }

    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        self.inner
            .conns
            .bounded("delete for user", async {
                let lease = self.inner.conns.lease().await?;
                let scan = self.scan_index(&lease, user_id).await?;
                let mut removed = 0u64;
                let mut stale: Vec<&Entry> = Vec::new();
                let mut first_error = None;
                for chunk in scan.chunks(except) {
                    stale.extend(chunk.unparsable);
                    // One script per session (each in its own slot), sent concurrently: the
                    // connection pipelines them.
                    let lease = &lease;
                    let now_ms = scan.now_ms;
                    let results = join_all(chunk.targets.iter().map(|(_, k)| async move {
                        let mut cmd = evalsha(&scripts::DELETE_IF_OWNED, 1);
                        cmd.arg(self.session_key(k)).arg(now_ms).arg(user_id);
                        self.script_code(lease, "delete-for-user", &scripts::DELETE_IF_OWNED, &cmd)
                            .await
                    }))
                    .await;
                    for ((e, _), result) in chunk.targets.iter().zip(results) {
                        match result {
                            Ok(Code::Ok) => {
                                removed += 1;
                                stale.push(e);
                            }
                            Ok(Code::RemovedExpired) => stale.push(e),
                            Ok(Code::Refused | Code::Corrupt | Code::NotOwned) => {
                                if scan.settled(e) {
                                    stale.push(e);
                                }
                            }
                            Ok(other) => {
                                first_error
                                    .get_or_insert(unexpected("delete-for-user", other.as_i64()));
                            }
                            Err(err) => {
                                first_error.get_or_insert(err);
                            }
                        }
                    }
                }
                if !stale.is_empty() {
                    self.prune(&lease, &scan.index, &stale).await?;
                }
                if let Some(err) = first_error {
                    return Err(err);
                }
                tracing::debug!(removed, "session-redis: delete_for_user");
                Ok(removed)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `async_trait` boxes each operation's future, copying it on every call. The slow path
    /// of a lease (a connect, whose cluster future alone is kilobytes) is boxed apart, so
    /// that the common path stays small: `load`'s future was 22,272 bytes before that
    /// (14,496 with the default features) and 1,376 after (1,152), rustc 1.95; the largest
    /// now is `update`'s, 3,200. The bound leaves room for other compilers; nothing is
    /// sent (the futures are never polled).
    #[tokio::test]
    async fn operation_futures_stay_small() {
        let store = RedisStore::builder()
            .url("redis://127.0.0.1:1")
            .build()
            .expect("a store builds without connecting");
        let key = SessionKey::generate();
        let record = Record::new(key.clone(), "j1:{}".into(), Utc::now());
        let sizes = [
            ("load", std::mem::size_of_val(&*store.load(&key))),
            ("create", std::mem::size_of_val(&*store.create(&record))),
            ("update", std::mem::size_of_val(&*store.update(&record))),
            (
                "touch",
                std::mem::size_of_val(&*store.touch(&key, Utc::now())),
            ),
            ("delete", std::mem::size_of_val(&*store.delete(&key))),
        ];
        for (operation, size) in sizes {
            assert!(size <= 6 * 1024, "{operation}'s future is {size} bytes");
        }
    }

    #[test]
    fn zrange_replies_parse_in_both_protocols() {
        let resp2 = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"1700000000000".to_vec()),
            Value::BulkString(b"b".to_vec()),
            Value::BulkString(b"-5".to_vec()),
        ]);
        let e = parse_entries(resp2).expect("resp2");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].member.as_str(), e[0].score), ("a", 1.7e12));
        assert_eq!((e[1].member.as_str(), e[1].score), ("b", -5.0));
        let resp3 = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::Double(3.0),
        ])]);
        assert_eq!(parse_entries(resp3).expect("resp3")[0].score, 3.0);
        assert!(parse_entries(Value::Int(3)).is_err());
        assert!(parse_entries(Value::Array(vec![Value::Int(1)])).is_err());
        assert!(parse_entries(Value::Nil).expect("nil").is_empty());
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn cluster_nodes_lists_live_masters() {
        let text = "\
07c3 127.0.0.1:30004@31004,host slave e7d1 0 1 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1 2 connected 5461-10922
292f 127.0.0.1:30003@31003 master,fail - 0 1 3 connected
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            parse_cluster_nodes(text),
            vec![
                ("127.0.0.1".to_owned(), 30002),
                ("127.0.0.1".to_owned(), 30001)
            ]
        );
    }
}
