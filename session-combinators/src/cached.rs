//! [`CachedStore`]: a fast front store before a durable one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_core::chrono::{DateTime, TimeDelta, Utc};
use session_core::{
    async_trait, Capabilities, ExpiredCleanup, Record, SessionKey, SessionStore, StoreError,
    StoreResult, UserIndex,
};

use crate::front::{front_expiry, FrontStore, Read};

/// How long a per-process front may serve an entry after filling it: 5 seconds.
pub const DEFAULT_PER_PROCESS_TTL: Duration = Duration::from_secs(5);

/// How long a shared front keeps an entry after filling it: 5 minutes. Every process
/// invalidates a shared front on its writes, so this only bounds the life of an entry whose
/// invalidation failed (the front was down at that moment).
pub const DEFAULT_SHARED_TTL: Duration = Duration::from_secs(300);

/// How long a reader's lease lives if the reader never comes back.
const LEASE_TTL: TimeDelta = TimeDelta::seconds(30);

/// How many list-and-delete rounds `delete_for_user` runs before it hands the rest to the
/// durable store's own `delete_for_user` (sessions being created during the revocation).
const REVOKE_ROUNDS: usize = 8;

/// Who else uses the front store, and so what a [`CachedStore`] guarantees.
///
/// # Examples
///
/// ```
/// use session_kit::{Arrangement, CachedStore, MemoryStore};
///
/// let store = CachedStore::per_process(MemoryStore::new(), MemoryStore::new());
/// assert_eq!(store.arrangement(), Arrangement::PerProcess);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arrangement {
    /// One front shared by every process that writes the durable store (a Redis store).
    /// Every write, delete, rotation and revocation invalidates it, so no process reads a
    /// session another deleted or revoked once that call returned.
    Shared,
    /// A front of this process only (the memory store), which other processes' writes do not
    /// reach: an entry is served for at most the front TTL after it was filled, and no
    /// longer than the record lives.
    PerProcess,
}

/// A fast front store (memory, or Redis shared by every app process) before a durable one
/// (SQL): Django's `cached_db`.
///
/// - **Reads** ([`load`](SessionStore::load), [`exists`](SessionStore::exists)) come
///   from the front; on a miss they read the durable store and fill the front.
/// - **Writes** ([`update`](SessionStore::update), [`touch`](SessionStore::touch)) go to
///   the durable store first (its compare-and-swap decides), then update the front entry if
///   it holds the version that was written over, and otherwise remove it.
///   [`create`](SessionStore::create) writes the durable store only (the first read fills).
/// - **Deletes** ([`delete`](SessionStore::delete),
///   [`delete_at_version`](SessionStore::delete_at_version) for rotations,
///   `delete_for_user` for revocations) delete from the durable store, then from the front.
///   A failed compare-and-swap or compare-and-delete also removes the front entry, so a
///   stale entry never turns into a loop of conflicts.
/// - **The user index and expired-row cleanup** are the durable store's; the front keeps no
///   user index (`delete_for_user` removes the user's sessions one by one through the
///   durable store's index, invalidating each in the front).
/// - **A failing front** never fails a request: the operation goes on with the durable store,
///   logs a `tracing` warning and counts it in [`front_failures`](Self::front_failures).
///   Errors of the durable store are returned as they are.
///
/// # Fills cannot resurrect a deleted session
///
/// A reader that misses must not put back a session a deleter removed between the reader's
/// durable read and its fill. So a reader first puts a *lease* in the front (an insert-only
/// `create`, at a random version), then reads the durable store, then fills with a
/// compare-and-swap `update` at the lease's version. Every deleter and writer removes
/// whatever the front holds for the key *after* its durable write, which removes the lease
/// too, so the late fill fails and the front stays empty. A reader that finds someone
/// else's lease reads the durable store without filling.
///
/// # The two arrangements
///
/// - [`CachedStore::shared`]: the front is shared by every process (a
///   `RedisStore`, with its own key prefix). Because every process runs the protocol above
///   against the same front, a delete, rotation or revocation made by one process is seen by
///   every other at once: once the call returned, no process reads the session. The front
///   TTL ([`DEFAULT_SHARED_TTL`]) only bounds an entry whose invalidation failed because the
///   front was down.
/// - [`CachedStore::per_process`]: the front is this process's memory store. Other
///   processes' writes do not reach it, so it may serve an entry another process updated or
///   deleted for at most the front TTL after the fill ([`DEFAULT_PER_PROCESS_TTL`], 5 s;
///   set it with [`with_front_ttl`](Self::with_front_ttl)). That staleness never loses a
///   write: updates are the durable store's compare-and-swap, so a write based on a stale
///   entry fails with `Conflict` (and drops the entry), and the handle re-reads and replays.
///
/// In both, a front entry never outlives the record: its front expiry is the earlier of the
/// record's expiry and fill time + TTL.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use std::time::Duration;
/// use session_kit::chrono::{TimeDelta, Utc};
/// use session_kit::{CachedStore, MemoryStore, Record, SessionKey, SessionStore};
///
/// // In production the durable store is an SqlStore.
/// let store = CachedStore::per_process(MemoryStore::new(), MemoryStore::new())
///     .with_front_ttl(Duration::from_secs(2));
/// let record = Record::new(SessionKey::generate(), "j1:{}".into(), Utc::now() + TimeDelta::hours(1));
/// store.create(&record).await?;
/// assert!(store.load(&record.key).await?.is_some()); // a miss: read through, fill
/// assert!(store.load(&record.key).await?.is_some()); // a hit
/// assert_eq!(store.front_failures(), 0);
/// # Ok(()) }
/// ```
pub struct CachedStore<F, D> {
    front: F,
    durable: D,
    arrangement: Arrangement,
    ttl: TimeDelta,
    failures: AtomicU64,
}

impl<F, D> std::fmt::Debug for CachedStore<F, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("arrangement", &self.arrangement)
            .field("front_ttl", &self.ttl)
            .field("front_failures", &self.failures.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn delta(ttl: Duration) -> TimeDelta {
    TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX)
}

impl<F: FrontStore, D: SessionStore> CachedStore<F, D> {
    /// A cache whose front is shared by every process writing `durable` (a Redis store),
    /// with front TTL [`DEFAULT_SHARED_TTL`]. See [`Arrangement::Shared`].
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{Arrangement, CachedStore, MemoryStore};
    ///
    /// // In production: CachedStore::shared(redis_store, sql_store).
    /// let store = CachedStore::shared(MemoryStore::new(), MemoryStore::new());
    /// assert_eq!(store.arrangement(), Arrangement::Shared);
    /// ```
    pub fn shared(front: F, durable: D) -> Self {
        Self::new(front, durable, Arrangement::Shared, DEFAULT_SHARED_TTL)
    }

    /// A cache whose front belongs to this process (a memory store), with front TTL
    /// [`DEFAULT_PER_PROCESS_TTL`]: the bound on how stale a read may be. See
    /// [`Arrangement::PerProcess`].
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{CachedStore, MemoryStore};
    ///
    /// let store = CachedStore::per_process(MemoryStore::new(), MemoryStore::new());
    /// assert_eq!(store.front_ttl(), session_kit::DEFAULT_PER_PROCESS_TTL);
    /// ```
    pub fn per_process(front: F, durable: D) -> Self {
        Self::new(
            front,
            durable,
            Arrangement::PerProcess,
            DEFAULT_PER_PROCESS_TTL,
        )
    }

    fn new(front: F, durable: D, arrangement: Arrangement, ttl: Duration) -> Self {
        Self {
            front,
            durable,
            arrangement,
            ttl: delta(ttl),
            failures: AtomicU64::new(0),
        }
    }

    /// Sets how long after a fill the front may serve an entry (never past the record's
    /// expiry). A zero TTL turns the cache off (every read goes to the durable store).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_kit::{CachedStore, MemoryStore};
    ///
    /// let store = CachedStore::per_process(MemoryStore::new(), MemoryStore::new())
    ///     .with_front_ttl(Duration::from_millis(500));
    /// assert_eq!(store.front_ttl(), Duration::from_millis(500));
    /// ```
    pub fn with_front_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = delta(ttl);
        self
    }

    /// The front TTL.
    ///
    /// # Examples
    ///
    /// See [`with_front_ttl`](Self::with_front_ttl).
    pub fn front_ttl(&self) -> Duration {
        self.ttl.to_std().unwrap_or(Duration::MAX)
    }

    /// The arrangement this cache was built for.
    ///
    /// # Examples
    ///
    /// See [`Arrangement`].
    pub fn arrangement(&self) -> Arrangement {
        self.arrangement
    }

    /// How many front operations failed since this store was built (each was logged and the
    /// request went on with the durable store). Export it as a metric.
    ///
    /// # Examples
    ///
    /// See [`CachedStore`].
    pub fn front_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The front store.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{CachedStore, MemoryStore};
    ///
    /// let store = CachedStore::per_process(MemoryStore::new(), MemoryStore::new());
    /// assert!(store.front().is_empty());
    /// ```
    pub fn front(&self) -> &F {
        &self.front
    }

    /// The durable store.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{CachedStore, MemoryStore};
    ///
    /// let store = CachedStore::per_process(MemoryStore::new(), MemoryStore::new());
    /// assert!(store.durable().is_empty());
    /// ```
    pub fn durable(&self) -> &D {
        &self.durable
    }

    fn failed(&self, operation: &'static str, key: &SessionKey, err: &StoreError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(operation, key = %key, %err, "session cache front failed; using the durable store");
    }

    /// Removes whatever the front holds for `key` (entry or lease).
    async fn invalidate(&self, key: &SessionKey) {
        if let Err(err) = self.front.front_remove(key).await {
            self.failed("invalidate", key, &err);
        }
    }

    /// Reads the durable store for a key the front does not serve, filling the front when
    /// this reader holds the lease. `take_lease`: whether to try to take one (false when
    /// the front already holds someone else's, or is failing).
    async fn read_through(
        &self,
        key: &SessionKey,
        take_lease: bool,
    ) -> StoreResult<Option<Record>> {
        let lease = if take_lease && self.ttl > TimeDelta::zero() {
            self.take_lease(key).await
        } else {
            None
        };
        let loaded = match self.durable.load(key).await {
            Ok(loaded) => loaded,
            Err(err) => {
                if let Some(version) = lease {
                    self.drop_lease(key, version).await;
                }
                return Err(err);
            }
        };
        if let Some(version) = lease {
            match &loaded {
                Some(record) => self.fill(record, version).await,
                None => self.drop_lease(key, version).await,
            }
        }
        Ok(loaded)
    }

    async fn take_lease(&self, key: &SessionKey) -> Option<u64> {
        // A random version, so that a fill can only replace this reader's own lease.
        let version = match getrandom::u64() {
            Ok(n) => (n >> 24).max(1),
            Err(err) => {
                self.failed(
                    "lease",
                    key,
                    &StoreError::unavailable(std::io::Error::other(err.to_string())),
                );
                return None;
            }
        };
        match self
            .front
            .front_lease(key, version, Utc::now() + LEASE_TTL)
            .await
        {
            Ok(true) => Some(version),
            // Someone else's lease (or an entry that appeared meanwhile): read, do not fill.
            Ok(false) => None,
            Err(err) => {
                self.failed("lease", key, &err);
                None
            }
        }
    }

    async fn drop_lease(&self, key: &SessionKey, version: u64) {
        if let Err(err) = self.front.front_drop_lease(key, version).await {
            self.failed("drop lease", key, &err);
        }
    }

    /// Replaces this reader's lease with the record; does nothing if a writer or deleter
    /// removed the lease meanwhile.
    async fn fill(&self, record: &Record, lease_version: u64) {
        let now = Utc::now();
        let expires = front_expiry(self.ttl, record, now);
        if expires <= now {
            self.drop_lease(&record.key, lease_version).await;
            return;
        }
        if let Err(err) = self
            .front
            .front_fill(record, lease_version, now, expires)
            .await
        {
            self.failed("fill", &record.key, &err);
        }
    }

    /// After a durable write: rewrites the front entry with `write(previous)` if it holds
    /// the record at `expected` version, and otherwise removes whatever is there.
    async fn refresh<W>(&self, key: &SessionKey, expected: Option<u64>, write: W)
    where
        W: FnOnce(Record, DateTime<Utc>) -> (Record, DateTime<Utc>) + Send,
    {
        if let Err(err) = self
            .front
            .front_refresh(key, expected, self.ttl, write)
            .await
        {
            self.failed("refresh", key, &err);
            self.invalidate(key).await;
        }
    }
}

#[async_trait]
impl<F: FrontStore + 'static, D: SessionStore> SessionStore for CachedStore<F, D> {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        // The first read fills the front (under a lease), so a create needs no front call.
        self.durable.create(record).await
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let take_lease = match self.front.front_get(key).await {
            // The front returns live entries only, and an entry's front expiry is never
            // past the record's: a hit is live without looking at the clock.
            Ok(Read::Entry(record)) => return Ok(Some(record)),
            // Not ours or damaged: drop it and read through.
            Ok(Read::Unknown) => {
                self.invalidate(key).await;
                true
            }
            Ok(Read::Lease) => false,
            Ok(Read::Missing) => true,
            Err(err) => {
                self.failed("load", key, &err);
                false
            }
        };
        self.read_through(key, take_lease).await
    }

    async fn update(&self, record: &Record) -> StoreResult<u64> {
        match self.durable.update(record).await {
            Ok(version) => {
                let written = record.clone().with_version(version);
                self.refresh(&record.key, Some(record.version), move |previous, _| {
                    let mut next = written;
                    // `update` keeps created_at (the durable store does too).
                    next.created_at = previous.created_at;
                    (next, Utc::now())
                })
                .await;
                Ok(version)
            }
            Err(err) => {
                // Conflict / NotFound: the front may be stale; an unavailable durable store
                // may have applied the write. Either way the entry cannot be trusted.
                self.invalidate(&record.key).await;
                Err(err)
            }
        }
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        match self.durable.touch(key, expires_at).await {
            Ok(true) => {
                // Keep the fill time: a touch must not extend a stale entry's life.
                let metadata = self.durable.capabilities().device_metadata;
                self.refresh(key, None, move |mut previous, filled| {
                    previous.expires_at = expires_at;
                    if metadata {
                        previous.last_active_at = Some(Utc::now());
                    }
                    (previous, filled)
                })
                .await;
                Ok(true)
            }
            other => {
                self.invalidate(key).await;
                other
            }
        }
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        let result = self.durable.delete(key).await;
        self.invalidate(key).await;
        result
    }

    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        let result = self.durable.delete_at_version(key, version).await;
        self.invalidate(key).await;
        result
    }

    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        match self.front.front_get(key).await {
            Ok(Read::Entry(_)) => return Ok(true),
            Ok(_) => {}
            Err(err) => self.failed("exists", key, &err),
        }
        self.durable.exists(key).await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.durable.user_index().map(|_| self as &dyn UserIndex)
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        self.durable.expired_cleanup()
    }

    fn capabilities(&self) -> Capabilities {
        self.durable.capabilities()
    }

    fn backend_name(&self) -> &'static str {
        "cached"
    }
}

#[async_trait]
impl<F: FrontStore + 'static, D: SessionStore> UserIndex for CachedStore<F, D> {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        self.index()?.list_for_user(user_id).await
    }

    /// Lists the user's sessions in the durable store and deletes them one by one (durable
    /// store, then front), until the list is empty, so that no front keeps a revoked
    /// session; after a few rounds (sessions being created during the revocation), the rest
    /// goes to the durable store's own `delete_for_user` (those late sessions may then stay
    /// in a front until its TTL; a warning is logged when it happens).
    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        let index = self.index()?;
        let mut removed = 0;
        for _ in 0..REVOKE_ROUNDS {
            let keys: Vec<SessionKey> = index
                .list_for_user(user_id)
                .await?
                .into_iter()
                .map(|r| r.key)
                .filter(|k| Some(k) != except)
                .collect();
            if keys.is_empty() {
                return Ok(removed);
            }
            for key in keys {
                if self.durable.delete(&key).await? {
                    removed += 1;
                }
                self.invalidate(&key).await;
            }
        }
        tracing::warn!(
            rounds = REVOKE_ROUNDS,
            "sessions kept appearing during delete_for_user; deleting the rest in one call"
        );
        Ok(removed + index.delete_for_user(user_id, except).await?)
    }
}

impl<F: FrontStore, D: SessionStore> CachedStore<F, D> {
    fn index(&self) -> StoreResult<&dyn UserIndex> {
        self.durable.user_index().ok_or(StoreError::Unsupported {
            operation: "list_for_user",
        })
    }
}
