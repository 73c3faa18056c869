//! The storage seam: the required [`SessionStore`] trait every backend implements, and the
//! optional capabilities ([`UserIndex`], [`ExpiredCleanup`]) a store may add.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Record, SessionKey, StoreError, StoreResult};

/// What a store keeps besides the required columns. The conformance suite reads it and
/// reports every case a store opts out of, instead of passing it silently.
///
/// Whether a store has a user index or expired-row cleanup is not a flag: it is whether
/// [`SessionStore::user_index`] / [`SessionStore::expired_cleanup`] return `Some`.
///
/// # Examples
///
/// ```
/// use session_kit::Capabilities;
///
/// let caps = Capabilities::all();
/// assert!(caps.device_metadata && caps.exact_versions);
///
/// // A store over a legacy table without the extra columns:
/// let legacy = Capabilities::all().with_device_metadata(false);
/// assert!(legacy.exact_versions && !legacy.device_metadata);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `created_at`, `last_active_at`, `user_agent` and `ip` are stored and returned.
    pub device_metadata: bool,
    /// `version` is stored exactly (`update` stores `version + 1` and `load` returns it).
    /// A store over a layout without a version column may instead derive the version from
    /// the data (a fingerprint); updates are still compare-and-swap, but `load` does not
    /// return `previous + 1`.
    pub exact_versions: bool,
}

impl Capabilities {
    /// Every capability: what a native store supports.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_kit::Capabilities::all().device_metadata);
    /// ```
    pub const fn all() -> Self {
        Self {
            device_metadata: true,
            exact_versions: true,
        }
    }

    /// Sets [`device_metadata`](Self::device_metadata).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_kit::Capabilities::all().with_device_metadata(false).device_metadata);
    /// ```
    pub const fn with_device_metadata(mut self, yes: bool) -> Self {
        self.device_metadata = yes;
        self
    }

    /// Sets [`exact_versions`](Self::exact_versions).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_kit::Capabilities::all().with_exact_versions(false).exact_versions);
    /// ```
    pub const fn with_exact_versions(mut self, yes: bool) -> Self {
        self.exact_versions = yes;
        self
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::all()
    }
}

/// A session store: moves opaque [`Record`]s, never sees session values.
///
/// The contract (checked case by case by the `session-conformance` crate):
///
/// | operation | contract |
/// | --- | --- |
/// | [`create`](Self::create) | insert only; a live row with that key gives [`StoreError::KeyExists`]; an expired row counts as absent and is replaced. Atomic: never check-then-insert |
/// | [`load`](Self::load) | the live record, or `None` when missing or expired |
/// | [`update`](Self::update) | compare-and-swap: succeeds only if the stored row is live and its version equals `record.version`, and stores it with `version + 1` (returned). Row gone or expired gives [`StoreError::NotFound`] (never re-create it); version moved gives [`StoreError::Conflict`] |
/// | [`touch`](Self::touch) | set `expires_at` of a live row without rewriting data or version; `false` if there is no live row |
/// | [`delete`](Self::delete) | idempotent; reports whether a live row was removed |
/// | [`delete_at_version`](Self::delete_at_version) | compare-and-delete: removes the row only if it is live at that version; otherwise `NotFound` / `Conflict` like `update` (key rotation is built on it) |
/// | [`exists`](Self::exists) | live rows only |
///
/// "Expired counts as absent" holds in every operation: a record is live while
/// `expires_at > now`.
///
/// Five methods are required. [`exists`](Self::exists) and
/// [`delete_at_version`](Self::delete_at_version) have correct default implementations
/// built on the required ones; override them when the engine can answer in one round trip.
/// The optional capabilities are traits of their own, reached through
/// [`user_index`](Self::user_index) and [`expired_cleanup`](Self::expired_cleanup), so a
/// store without them writes no stubs.
///
/// The trait is object safe; the handle holds stores as `Arc<dyn SessionStore>`.
///
/// # Implementing a store
///
/// ```
/// use session_kit::chrono::{DateTime, Utc};
/// use session_kit::{async_trait, Record, SessionKey, SessionStore, StoreError, StoreResult};
///
/// /// A store that is always down (for showing the signatures only).
/// struct Offline;
///
/// fn down() -> StoreError {
///     StoreError::unavailable(std::io::Error::other("offline"))
/// }
///
/// #[async_trait]
/// impl SessionStore for Offline {
///     async fn create(&self, _: &Record) -> StoreResult<()> { Err(down()) }
///     async fn load(&self, _: &SessionKey) -> StoreResult<Option<Record>> { Err(down()) }
///     async fn update(&self, _: &Record) -> StoreResult<u64> { Err(down()) }
///     async fn touch(&self, _: &SessionKey, _: DateTime<Utc>) -> StoreResult<bool> { Err(down()) }
///     async fn delete(&self, _: &SessionKey) -> StoreResult<bool> { Err(down()) }
/// }
///
/// let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(Offline);
/// assert!(store.user_index().is_none());
/// ```
///
/// Then run the conformance suite against it (see the `session-conformance` crate).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new record. Fails with [`StoreError::KeyExists`] if a live record has the
    /// key; replaces an expired one. Must be atomic.
    async fn create(&self, record: &Record) -> StoreResult<()>;

    /// Loads the live record for `key`, or `None` if it is missing or expired.
    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>>;

    /// Compare-and-swap update: stores `record` with version `record.version + 1` if the
    /// stored record is live and at `record.version`, and returns the new version.
    ///
    /// Fails with [`StoreError::NotFound`] when there is no live record (it is never
    /// re-created) and [`StoreError::Conflict`] when the version moved. The record's
    /// `expires_at` may lie in the past: the record is then stored expired, and so absent.
    async fn update(&self, record: &Record) -> StoreResult<u64>;

    /// Moves the expiry of a live record to `expires_at` without rewriting its data or
    /// version, and sets `last_active_at` to now where device metadata is stored.
    /// Returns `false` if there was no live record.
    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool>;

    /// Deletes the record if present (live or expired); returns whether a live record was
    /// removed. Deleting a missing key is not an error.
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool>;

    /// Compare-and-delete: removes the record only if it is live at `version`.
    ///
    /// Fails with [`StoreError::NotFound`] when there is no live record and
    /// [`StoreError::Conflict`] when its version moved; the record is then left as it was.
    /// Key rotation ([`Session::cycle_key`](crate::Session::cycle_key), `login`) deletes the
    /// old record with it before creating the new one, so a rotation can neither resurrect
    /// a session deleted meanwhile nor drop a write made meanwhile.
    ///
    /// The default implementation is a compare-and-swap [`update`](Self::update) to an
    /// already expired, empty record (dead at once, so absent to every operation),
    /// followed by a plain [`delete`](Self::delete) to free it. Stores override it with a
    /// one-round-trip conditional delete.
    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        let mut tombstone = Record::new(key.clone(), String::new(), DateTime::UNIX_EPOCH);
        tombstone.version = version;
        tombstone.created_at = DateTime::UNIX_EPOCH;
        self.update(&tombstone).await?;
        // The row is dead already; removing it only frees space, so a failure is harmless.
        if let Err(err) = self.delete(key).await {
            tracing::debug!(key = %key, %err, "could not free a retired session row");
        }
        Ok(())
    }

    /// Whether a live record exists for `key`. The default loads the record.
    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        Ok(self.load(key).await?.is_some())
    }

    /// The user index, if this store keeps one (`None` by default).
    fn user_index(&self) -> Option<&dyn UserIndex> {
        None
    }

    /// Removal of expired records, if this store needs it (`None` by default: a store
    /// whose engine expires records by itself needs none).
    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        None
    }

    /// What this store keeps. The default is [`Capabilities::all`].
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    /// A short, fixed name of the backend (`"memory"`, `"postgres"`, `"redis_cluster"`,
    /// ...), used as the `backend` field of the tracing spans and the `backend` label of
    /// the metrics the session handle emits per store operation. The default is
    /// `"custom"`. Keep it a constant: it becomes a metric label, so it must have few
    /// values and never contain a key, a URL or a secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::SessionStore;
    ///
    /// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
    /// assert_eq!(store.backend_name(), "memory");
    /// ```
    fn backend_name(&self) -> &'static str {
        "custom"
    }
}

/// Optional capability: a store that indexes sessions by [`Record::user_id`] ("your
/// devices", "log out everywhere else"). A store returns itself from
/// [`SessionStore::user_index`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use std::sync::Arc;
/// use session_kit::SessionStore;
///
/// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
/// if let Some(index) = store.user_index() {
///     assert!(index.list_for_user("alice").await?.is_empty());
/// }
/// // Or through the shortcut on `dyn SessionStore`, which answers `Unsupported` without one:
/// assert_eq!(store.delete_for_user("alice", None).await?, 0);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait UserIndex: Send + Sync {
    /// The live sessions of one user, oldest first.
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>>;

    /// Deletes the sessions of one user, except `except` if given ("log out everywhere
    /// else"), and returns how many live sessions were removed.
    async fn delete_for_user(&self, user_id: &str, except: Option<&SessionKey>)
        -> StoreResult<u64>;
}

/// Optional capability: removal of expired records, for stores whose engine keeps them
/// (SQL tables). [`spawn_cleanup`](crate::spawn_cleanup) calls it periodically.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use std::sync::Arc;
/// use session_kit::SessionStore;
///
/// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
/// assert_eq!(store.delete_expired().await?, 0);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ExpiredCleanup: Send + Sync {
    /// Removes expired records and returns how many it removed (a store with a secondary
    /// index may also count the stale index entries it removed).
    async fn delete_expired(&self) -> StoreResult<u64>;
}

impl dyn SessionStore {
    /// The live sessions of one user, through the store's [`UserIndex`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] when the store keeps no user index.
    ///
    /// # Examples
    ///
    /// See [`UserIndex`].
    pub async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        self.user_index()
            .ok_or(StoreError::Unsupported {
                operation: "list_for_user",
            })?
            .list_for_user(user_id)
            .await
    }

    /// Deletes the sessions of one user except `except`, through the store's [`UserIndex`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] when the store keeps no user index.
    ///
    /// # Examples
    ///
    /// See [`UserIndex`].
    pub async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        self.user_index()
            .ok_or(StoreError::Unsupported {
                operation: "delete_for_user",
            })?
            .delete_for_user(user_id, except)
            .await
    }

    /// Removes expired records through the store's [`ExpiredCleanup`]; a store without
    /// one (its engine expires records by itself) removes nothing and answers 0.
    ///
    /// # Examples
    ///
    /// See [`ExpiredCleanup`].
    pub async fn delete_expired(&self) -> StoreResult<u64> {
        match self.expired_cleanup() {
            Some(cleanup) => cleanup.delete_expired().await,
            None => Ok(0),
        }
    }
}

macro_rules! forward_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<S: SessionStore + ?Sized> SessionStore for $ptr {
            async fn create(&self, record: &Record) -> StoreResult<()> {
                (**self).create(record).await
            }
            async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
                (**self).load(key).await
            }
            async fn update(&self, record: &Record) -> StoreResult<u64> {
                (**self).update(record).await
            }
            async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
                (**self).touch(key, expires_at).await
            }
            async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
                (**self).delete(key).await
            }
            async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
                (**self).delete_at_version(key, version).await
            }
            async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
                (**self).exists(key).await
            }
            fn user_index(&self) -> Option<&dyn UserIndex> {
                (**self).user_index()
            }
            fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
                (**self).expired_cleanup()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn backend_name(&self) -> &'static str {
                (**self).backend_name()
            }
        }
    )*};
}

forward_store!(Arc<S>, Box<S>);
