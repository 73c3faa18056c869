//! # session-memory
//!
//! **Most users add `session-kit` with feature `memory`** (its default:
//! `session-kit = "0.1"`) **and reach [`MemoryStore`] as `session_kit::MemoryStore`.** The
//! examples on these pages use that path and are compiled against `session-kit`, so they can
//! be pasted into such an application; `session_kit::guide::stores` has more.
//!
//! [`MemoryStore`]: a [`SessionStore`] kept in process memory. Use it in tests (it passes
//! the same conformance suite as the SQL and Redis stores) and for single-process apps
//! whose sessions may vanish at restart.
//!
//! The map is split into shards, each behind its own read-write lock, so concurrent
//! requests on different sessions rarely wait for each other; there is no global lock.
//! Expired records are never returned and are freed by
//! [`delete_expired`](ExpiredCleanup::delete_expired).
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_kit::StoreError> {
//! use session_kit::chrono::{Duration, Utc};
//! use session_kit::{MemoryStore, Record, SessionKey, SessionStore};
//!
//! let store = MemoryStore::new();
//! let record = Record::new(SessionKey::generate(), "j1:{}".into(), Utc::now() + Duration::hours(1));
//! store.create(&record).await?;
//! assert!(store.exists(&record.key).await?);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use parking_lot::RwLock;
use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, ExpiredCleanup, Record, SessionKey, SessionStore, StoreError, StoreResult,
    UserIndex,
};

// foldhash (seeded per process) instead of SipHash: the keys in the map are random,
// server-generated session keys, so a fast non-cryptographic hash is safe here.
type Shard = RwLock<HashMap<SessionKey, Record, RandomState>>;
type UserShard = RwLock<HashMap<String, HashSet<SessionKey, RandomState>, RandomState>>;

/// An in-memory, sharded [`SessionStore`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use session_kit::{MemoryStore, SessionStore};
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_shards(16));
/// # let _ = store;
/// ```
pub struct MemoryStore {
    shards: Box<[Shard]>,
    users: Box<[UserShard]>,
    hasher: RandomState,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("sessions", &self.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with 64 shards, plenty for any core count this store is meant for.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::MemoryStore::new();
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_shards(64)
    }

    /// A store with `shards` shards (at least one).
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::MemoryStore::with_shards(1);
    /// assert!(store.is_empty());
    /// ```
    pub fn with_shards(shards: usize) -> Self {
        let n = shards.max(1);
        Self {
            shards: (0..n)
                .map(|_| RwLock::new(HashMap::with_hasher(RandomState::default())))
                .collect(),
            users: (0..n)
                .map(|_| RwLock::new(HashMap::with_hasher(RandomState::default())))
                .collect(),
            hasher: RandomState::default(),
        }
    }

    /// Number of records held, live or expired-but-not-yet-removed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::MemoryStore::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Whether the store holds no records at all.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_kit::MemoryStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.read().is_empty())
    }

    fn shard(&self, key: &SessionKey) -> &Shard {
        let i = self.hasher.hash_one(key.as_str()) as usize % self.shards.len();
        &self.shards[i]
    }

    fn user_shard(&self, user_id: &str) -> &UserShard {
        let i = self.hasher.hash_one(user_id) as usize % self.users.len();
        &self.users[i]
    }

    /// Adds `key` to the index of `user_id`. Called with the record's shard lock held;
    /// user locks are always taken after record locks, never the other way round.
    fn index_add(&self, user_id: &str, key: &SessionKey) {
        self.user_shard(user_id)
            .write()
            .entry(user_id.to_owned())
            .or_insert_with(|| HashSet::with_hasher(RandomState::default()))
            .insert(key.clone());
    }

    fn index_remove(&self, user_id: &str, key: &SessionKey) {
        let mut users = self.user_shard(user_id).write();
        if let Some(keys) = users.get_mut(user_id) {
            keys.remove(key);
            if keys.is_empty() {
                users.remove(user_id);
            }
        }
    }

    fn reindex(&self, old: Option<&str>, new: Option<&str>, key: &SessionKey) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.index_remove(old, key);
        }
        if let Some(new) = new {
            self.index_add(new, key);
        }
    }

    fn keys_of(&self, user_id: &str) -> Vec<SessionKey> {
        self.user_shard(user_id)
            .read()
            .get(user_id)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        let mut shard = self.shard(&record.key).write();
        let now = now();
        let old_user = match shard.get(&record.key) {
            Some(existing) if existing.is_live_at(now) => return Err(StoreError::KeyExists),
            Some(expired) => expired.user_id.clone(),
            None => None,
        };
        self.reindex(old_user.as_deref(), record.user_id.as_deref(), &record.key);
        shard.insert(record.key.clone(), record.clone());
        Ok(())
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let shard = self.shard(key).read();
        Ok(shard.get(key).filter(|r| r.is_live_at(now())).cloned())
    }

    async fn update(&self, record: &Record) -> StoreResult<u64> {
        let mut shard = self.shard(&record.key).write();
        let stored = match shard.get_mut(&record.key) {
            Some(stored) if stored.is_live_at(now()) => stored,
            _ => return Err(StoreError::NotFound),
        };
        if stored.version != record.version {
            return Err(StoreError::Conflict);
        }
        let version = record.version + 1;
        let old_user = std::mem::replace(&mut stored.user_id, record.user_id.clone());
        stored.data.clone_from(&record.data);
        stored.expires_at = record.expires_at;
        stored.version = version;
        stored.last_active_at = record.last_active_at;
        stored.user_agent.clone_from(&record.user_agent);
        stored.ip.clone_from(&record.ip);
        // created_at is fixed at create.
        self.reindex(old_user.as_deref(), record.user_id.as_deref(), &record.key);
        Ok(version)
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        let mut shard = self.shard(key).write();
        let now = now();
        match shard.get_mut(key) {
            Some(stored) if stored.is_live_at(now) => {
                stored.expires_at = expires_at;
                stored.last_active_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        let mut shard = self.shard(key).write();
        match shard.remove(key) {
            Some(old) => {
                if let Some(user) = old.user_id.as_deref() {
                    self.index_remove(user, key);
                }
                Ok(old.is_live_at(now()))
            }
            None => Ok(false),
        }
    }

    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        let mut shard = self.shard(key).write();
        match shard.get(key) {
            Some(stored) if stored.is_live_at(now()) => {
                if stored.version != version {
                    return Err(StoreError::Conflict);
                }
            }
            _ => return Err(StoreError::NotFound),
        }
        if let Some(old) = shard.remove(key) {
            if let Some(user) = old.user_id.as_deref() {
                self.index_remove(user, key);
            }
        }
        Ok(())
    }

    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        let shard = self.shard(key).read();
        Ok(shard.get(key).is_some_and(|r| r.is_live_at(now())))
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        Some(self)
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }
}

#[async_trait]
impl ExpiredCleanup for MemoryStore {
    async fn delete_expired(&self) -> StoreResult<u64> {
        let mut removed = 0u64;
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            let now = now();
            let expired: Vec<SessionKey> = shard
                .iter()
                .filter(|(_, r)| !r.is_live_at(now))
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                if let Some(old) = shard.remove(&key) {
                    removed += 1;
                    if let Some(user) = old.user_id.as_deref() {
                        self.index_remove(user, &key);
                    }
                }
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl UserIndex for MemoryStore {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        let now = now();
        let mut out = Vec::new();
        for key in self.keys_of(user_id) {
            let shard = self.shard(&key).read();
            if let Some(record) = shard.get(&key) {
                if record.is_live_at(now) && record.user_id.as_deref() == Some(user_id) {
                    out.push(record.clone());
                }
            }
        }
        out.sort_by_key(|r| r.created_at);
        Ok(out)
    }

    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        let now = now();
        let mut removed = 0u64;
        for key in self.keys_of(user_id) {
            if Some(&key) == except {
                continue;
            }
            let mut shard = self.shard(&key).write();
            let owned = shard
                .get(&key)
                .is_some_and(|r| r.user_id.as_deref() == Some(user_id));
            if owned {
                if let Some(old) = shard.remove(&key) {
                    if old.is_live_at(now) {
                        removed += 1;
                    }
                }
            }
            // Owned or stale, the key no longer belongs in this user's index.
            self.index_remove(user_id, &key);
        }
        Ok(removed)
    }
}
