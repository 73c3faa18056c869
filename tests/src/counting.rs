//! A store wrapper that counts calls, for proving that something makes no store calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, Capabilities, ExpiredCleanup, Record, SessionKey, SessionStore, StoreResult,
    UserIndex,
};

/// Calls per operation seen by a [`CountingStore`].
#[derive(Debug, Default)]
pub struct StoreCalls {
    /// `create` calls.
    pub create: AtomicU64,
    /// `load` calls.
    pub load: AtomicU64,
    /// `update` calls.
    pub update: AtomicU64,
    /// `touch` calls.
    pub touch: AtomicU64,
    /// `delete` calls.
    pub delete: AtomicU64,
    /// Calls of `delete_at_version` (key rotation).
    pub delete_at_version: AtomicU64,
    /// `exists` calls.
    pub exists: AtomicU64,
    /// `delete_expired`, `list_for_user` and `delete_for_user` calls.
    pub other: AtomicU64,
}

impl StoreCalls {
    /// All calls so far.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_conformance::StoreCalls::default().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        [
            &self.create,
            &self.load,
            &self.update,
            &self.touch,
            &self.delete,
            &self.delete_at_version,
            &self.exists,
            &self.other,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }
}

/// Wraps a store and counts every call, passing each through unchanged.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::Error> {
/// use std::sync::Arc;
/// use session_core::{SessionKey, SessionStore};
/// use session_conformance::CountingStore;
///
/// let store = CountingStore::new(Arc::new(session_memory::MemoryStore::new()));
/// store.exists(&SessionKey::generate()).await?;
/// assert_eq!(store.calls().total(), 1);
/// # Ok(()) }
/// ```
pub struct CountingStore {
    inner: Arc<dyn SessionStore>,
    calls: Arc<StoreCalls>,
}

impl CountingStore {
    /// Wraps `inner`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let s = session_conformance::CountingStore::new(Arc::new(session_memory::MemoryStore::new()));
    /// assert_eq!(s.calls().total(), 0);
    /// ```
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            inner,
            calls: Arc::default(),
        }
    }

    /// The counters (shared: clone the `Arc` to watch them after moving the store).
    ///
    /// # Examples
    ///
    /// See [`CountingStore`].
    pub fn calls(&self) -> Arc<StoreCalls> {
        self.calls.clone()
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        bump(&self.calls.create);
        self.inner.create(record).await
    }
    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        bump(&self.calls.load);
        self.inner.load(key).await
    }
    async fn update(&self, record: &Record) -> StoreResult<u64> {
        bump(&self.calls.update);
        self.inner.update(record).await
    }
    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        bump(&self.calls.touch);
        self.inner.touch(key, expires_at).await
    }
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        bump(&self.calls.delete);
        self.inner.delete(key).await
    }
    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        bump(&self.calls.delete_at_version);
        self.inner.delete_at_version(key, version).await
    }
    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        bump(&self.calls.exists);
        self.inner.exists(key).await
    }
    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.inner.user_index().map(|_| self as &dyn UserIndex)
    }
    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        self.inner
            .expired_cleanup()
            .map(|_| self as &dyn ExpiredCleanup)
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

#[async_trait]
impl UserIndex for CountingStore {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        bump(&self.calls.other);
        self.inner.list_for_user(user_id).await
    }
    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        bump(&self.calls.other);
        self.inner.delete_for_user(user_id, except).await
    }
}

#[async_trait]
impl ExpiredCleanup for CountingStore {
    async fn delete_expired(&self) -> StoreResult<u64> {
        bump(&self.calls.other);
        self.inner.delete_expired().await
    }
}
