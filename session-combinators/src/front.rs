//! The fronts a [`CachedStore`](crate::CachedStore) can use: any [`SessionStore`] (entries
//! encoded into its data column, see `entry.rs`), or a [`LocalFront`] (typed, this process
//! only, no encoding).

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};

use foldhash::fast::RandomState;
use parking_lot::RwLock;
use session_core::chrono::{DateTime, TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore, StoreError, StoreResult};

use crate::entry::{self, Front, LEASE};

/// When a front entry for `record`, filled at `filled`, must stop being served: the earlier
/// of the record's expiry and `filled + ttl`.
pub(crate) fn front_expiry(
    ttl: TimeDelta,
    record: &Record,
    filled: DateTime<Utc>,
) -> DateTime<Utc> {
    let bound = filled.checked_add_signed(ttl).unwrap_or(record.expires_at);
    bound.min(record.expires_at)
}

/// What a front holds for a key, as [`FrontStore::front_get`] reads it.
#[doc(hidden)]
#[derive(Debug)]
pub enum Read {
    /// Nothing (or nothing live).
    Missing,
    /// A reader's lease: someone is filling this key.
    Lease,
    /// A copy of the durable record.
    Entry(Record),
    /// Something this crate did not write, or damaged: to be removed.
    Unknown,
}

mod sealed {
    pub trait Sealed {}
    impl<S: session_core::SessionStore> Sealed for S {}
    impl Sealed for super::LocalFront {}
}

/// A store a [`CachedStore`](crate::CachedStore) can use as its front: every
/// [`SessionStore`] (the cache's entries are encoded into its data, so a Redis store can be
/// shared by every process), and [`LocalFront`] (this process only, records kept as they
/// are: the fastest per-process front).
///
/// The trait is sealed: its methods are the cache's protocol (leases, fills, refreshes) and
/// are not part of the public API.
///
/// # Examples
///
/// ```
/// use session_kit::{CachedStore, FrontStore, LocalFront, MemoryStore};
///
/// fn front_of<F: FrontStore, D: session_kit::SessionStore>(store: &CachedStore<F, D>) -> &F {
///     store.front()
/// }
/// let store = CachedStore::per_process(LocalFront::new(), MemoryStore::new());
/// assert!(front_of(&store).is_empty());
/// ```
pub trait FrontStore: sealed::Sealed + Send + Sync {
    /// Reads what the front holds for `key`.
    #[doc(hidden)]
    fn front_get(&self, key: &SessionKey) -> impl Future<Output = StoreResult<Read>> + Send;

    /// Puts a lease at `version` if the front holds nothing live for `key`; `false` if it
    /// holds something.
    #[doc(hidden)]
    fn front_lease(
        &self,
        key: &SessionKey,
        version: u64,
        expires: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Removes the lease at `version`, if it is still there.
    #[doc(hidden)]
    fn front_drop_lease(
        &self,
        key: &SessionKey,
        version: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Replaces the lease at `lease_version` with `record` (filled at `filled`, served
    /// until `expires`); does nothing if the lease is gone.
    #[doc(hidden)]
    fn front_fill(
        &self,
        record: &Record,
        lease_version: u64,
        filled: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// If the front holds an entry for `key` whose record is at `expected` (any, for
    /// `None`), replaces it with `write(record, filled)` (served until
    /// [`front_expiry`] with `ttl`); otherwise removes whatever is there.
    #[doc(hidden)]
    fn front_refresh<W>(
        &self,
        key: &SessionKey,
        expected: Option<u64>,
        ttl: TimeDelta,
        write: W,
    ) -> impl Future<Output = StoreResult<()>> + Send
    where
        W: FnOnce(Record, DateTime<Utc>) -> (Record, DateTime<Utc>) + Send;

    /// Removes whatever the front holds for `key`.
    #[doc(hidden)]
    fn front_remove(&self, key: &SessionKey) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Any store as a front, the cache's entries encoded into its data column.
impl<S: SessionStore> FrontStore for S {
    async fn front_get(&self, key: &SessionKey) -> StoreResult<Read> {
        Ok(match self.load(key).await? {
            None => Read::Missing,
            Some(stored) => match entry::decode(stored) {
                Front::Entry(record, _) => Read::Entry(record),
                Front::Lease => Read::Lease,
                Front::Unknown => Read::Unknown,
            },
        })
    }

    async fn front_lease(
        &self,
        key: &SessionKey,
        version: u64,
        expires: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let lease = Record::new(key.clone(), LEASE.to_owned(), expires).with_version(version);
        match self.create(&lease).await {
            Ok(()) => Ok(true),
            Err(StoreError::KeyExists) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn front_drop_lease(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        match self.delete_at_version(key, version).await {
            Ok(()) | Err(StoreError::NotFound | StoreError::Conflict) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn front_fill(
        &self,
        record: &Record,
        lease_version: u64,
        filled: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<()> {
        let entry = Record::new(record.key.clone(), entry::encode(record, filled), expires)
            .with_version(lease_version);
        match self.update(&entry).await {
            Ok(_) | Err(StoreError::NotFound | StoreError::Conflict) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn front_refresh<W>(
        &self,
        key: &SessionKey,
        expected: Option<u64>,
        ttl: TimeDelta,
        write: W,
    ) -> StoreResult<()>
    where
        W: FnOnce(Record, DateTime<Utc>) -> (Record, DateTime<Utc>) + Send,
    {
        let Some(stored) = self.load(key).await? else {
            return Ok(());
        };
        let front_version = stored.version;
        let Front::Entry(previous, filled) = entry::decode(stored) else {
            return self.front_remove(key).await;
        };
        if expected.is_some_and(|v| v != previous.version) {
            return self.front_remove(key).await;
        }
        let (next, filled) = write(previous, filled);
        let expires = front_expiry(ttl, &next, filled);
        if expires <= Utc::now() {
            return self.front_remove(key).await;
        }
        let replacement = Record::new(key.clone(), entry::encode(&next, filled), expires)
            .with_version(front_version);
        match self.update(&replacement).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound | StoreError::Conflict) => self.front_remove(key).await,
            Err(err) => Err(err),
        }
    }

    async fn front_remove(&self, key: &SessionKey) -> StoreResult<()> {
        self.delete(key).await.map(|_| ())
    }
}

enum Held {
    Lease,
    Entry(Record, DateTime<Utc>),
}

struct Slot {
    version: u64,
    expires: DateTime<Utc>,
    held: Held,
}

impl Slot {
    fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires > now
    }
}

struct Shard {
    slots: HashMap<SessionKey, Slot, RandomState>,
    /// Inserts since the last sweep of expired slots.
    inserts: usize,
}

/// How many inserts a shard takes before it may sweep its expired slots (then at least as
/// many as it holds, so sweeping costs O(1) per insert).
const SWEEP_AFTER: usize = 64;

/// A per-process front for [`CachedStore::per_process`](crate::CachedStore::per_process)
/// that keeps the cache's records as they are (no encoding, no second store call): a front
/// hit costs a map lookup and a clone of the record, like the memory store alone.
///
/// It behaves as a memory store used as a per-process front does (the same staleness bound,
/// leases and version checks); only the representation differs. It is not a
/// [`SessionStore`] and cannot be shared between processes: for a shared front, use a Redis
/// store with [`CachedStore::shared`](crate::CachedStore::shared). Expired entries are
/// swept as new ones come in, so its size follows the sessions read in the last front TTL.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use session_kit::chrono::{TimeDelta, Utc};
/// use session_kit::{CachedStore, LocalFront, MemoryStore, Record, SessionKey, SessionStore};
///
/// // In production the durable store is an SqlStore.
/// let store = CachedStore::per_process(LocalFront::new(), MemoryStore::new());
/// let record = Record::new(SessionKey::generate(), "j1:{}".into(), Utc::now() + TimeDelta::hours(1));
/// store.create(&record).await?;
/// assert!(store.load(&record.key).await?.is_some()); // a miss: read through, fill
/// assert_eq!(store.front().len(), 1);
/// assert!(store.load(&record.key).await?.is_some()); // a hit
/// # Ok(()) }
/// ```
pub struct LocalFront {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    entries: AtomicUsize,
}

impl std::fmt::Debug for LocalFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFront")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Default for LocalFront {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalFront {
    /// An empty front with 64 shards.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_kit::LocalFront::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_shards(64)
    }

    /// An empty front with `shards` shards (at least one), each behind its own lock.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::LocalFront::with_shards(4).len(), 0);
    /// ```
    pub fn with_shards(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| {
                    RwLock::new(Shard {
                        slots: HashMap::with_hasher(RandomState::default()),
                        inserts: 0,
                    })
                })
                .collect(),
            hasher: RandomState::default(),
            entries: AtomicUsize::new(0),
        }
    }

    /// How many entries and leases it holds, live or expired-but-not-yet-swept.
    ///
    /// # Examples
    ///
    /// See [`LocalFront`].
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Whether it holds nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_kit::LocalFront::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &SessionKey) -> &RwLock<Shard> {
        let i = self.hasher.hash_one(key.as_str()) as usize % self.shards.len();
        &self.shards[i]
    }

    fn remove_in(&self, shard: &mut Shard, key: &SessionKey) {
        if shard.slots.remove(key).is_some() {
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Inserts or replaces a slot, sweeping the shard's expired slots now and then.
    fn put_in(&self, shard: &mut Shard, key: &SessionKey, slot: Slot, now: DateTime<Utc>) {
        if shard.slots.insert(key.clone(), slot).is_none() {
            self.entries.fetch_add(1, Ordering::Relaxed);
            shard.inserts += 1;
            if shard.inserts >= SWEEP_AFTER.max(shard.slots.len()) {
                shard.inserts = 0;
                let before = shard.slots.len();
                shard.slots.retain(|_, s| s.is_live_at(now));
                self.entries
                    .fetch_sub(before - shard.slots.len(), Ordering::Relaxed);
            }
        }
    }
}

impl FrontStore for LocalFront {
    async fn front_get(&self, key: &SessionKey) -> StoreResult<Read> {
        let shard = self.shard(key).read();
        Ok(match shard.slots.get(key) {
            Some(slot) if slot.is_live_at(Utc::now()) => match &slot.held {
                Held::Entry(record, _) => Read::Entry(record.clone()),
                Held::Lease => Read::Lease,
            },
            _ => Read::Missing,
        })
    }

    async fn front_lease(
        &self,
        key: &SessionKey,
        version: u64,
        expires: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut shard = self.shard(key).write();
        let now = Utc::now();
        if shard.slots.get(key).is_some_and(|s| s.is_live_at(now)) {
            return Ok(false);
        }
        let slot = Slot {
            version,
            expires,
            held: Held::Lease,
        };
        self.put_in(&mut shard, key, slot, now);
        Ok(true)
    }

    async fn front_drop_lease(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        let mut shard = self.shard(key).write();
        if shard
            .slots
            .get(key)
            .is_some_and(|s| s.version == version && matches!(s.held, Held::Lease))
        {
            self.remove_in(&mut shard, key);
        }
        Ok(())
    }

    async fn front_fill(
        &self,
        record: &Record,
        lease_version: u64,
        filled: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut shard = self.shard(&record.key).write();
        let now = Utc::now();
        match shard.slots.get_mut(&record.key) {
            Some(slot)
                if slot.version == lease_version
                    && slot.is_live_at(now)
                    && matches!(slot.held, Held::Lease) =>
            {
                slot.expires = expires;
                slot.held = Held::Entry(record.clone(), filled);
            }
            _ => {}
        }
        Ok(())
    }

    async fn front_refresh<W>(
        &self,
        key: &SessionKey,
        expected: Option<u64>,
        ttl: TimeDelta,
        write: W,
    ) -> StoreResult<()>
    where
        W: FnOnce(Record, DateTime<Utc>) -> (Record, DateTime<Utc>) + Send,
    {
        let mut shard = self.shard(key).write();
        let now = Utc::now();
        let Some(slot) = shard.slots.remove(key) else {
            return Ok(());
        };
        let (Held::Entry(previous, filled), true) = (slot.held, slot.expires > now) else {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            return Ok(());
        };
        if expected.is_some_and(|v| v != previous.version) {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            return Ok(());
        }
        let (next, filled) = write(previous, filled);
        let expires = front_expiry(ttl, &next, filled);
        if expires <= now {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            return Ok(());
        }
        let slot = Slot {
            version: slot.version,
            expires,
            held: Held::Entry(next, filled),
        };
        // Back in the place just emptied: no sweep, no count change.
        shard.slots.insert(key.clone(), slot);
        Ok(())
    }

    async fn front_remove(&self, key: &SessionKey) -> StoreResult<()> {
        let mut shard = self.shard(key).write();
        self.remove_in(&mut shard, key);
        Ok(())
    }
}
