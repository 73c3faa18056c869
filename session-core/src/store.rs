//! The storage seam: the [`SessionStore`] trait every backend implements.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Record, Result, SessionKey};

/// What a store can and cannot do. The conformance suite reads it and reports every case a
/// store opts out of, instead of passing it silently.
///
/// # Examples
///
/// ```
/// use session_core::Capabilities;
///
/// let caps = Capabilities::all();
/// assert!(caps.user_index && caps.device_metadata && caps.exact_versions);
///
/// // A store over a legacy table without the extra columns:
/// let legacy = Capabilities::all().with_user_index(false).with_device_metadata(false);
/// assert!(legacy.exact_versions && !legacy.user_index);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `list_for_user` and `delete_for_user` work, and `user_id` is stored.
    /// Without it they return [`Error::Unsupported`](crate::Error::Unsupported).
    pub user_index: bool,
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
    /// assert!(session_core::Capabilities::all().user_index);
    /// ```
    pub const fn all() -> Self {
        Self {
            user_index: true,
            device_metadata: true,
            exact_versions: true,
        }
    }
}

impl Capabilities {
    /// Sets [`user_index`](Self::user_index).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_core::Capabilities::all().with_user_index(false).user_index);
    /// ```
    pub const fn with_user_index(mut self, yes: bool) -> Self {
        self.user_index = yes;
        self
    }

    /// Sets [`device_metadata`](Self::device_metadata).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_core::Capabilities::all().with_device_metadata(false).device_metadata);
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
    /// assert!(!session_core::Capabilities::all().with_exact_versions(false).exact_versions);
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
/// | [`create`](Self::create) | insert only; a live row with that key gives [`Error::KeyExists`](crate::Error::KeyExists); an expired row counts as absent and is replaced. Atomic: never check-then-insert |
/// | [`load`](Self::load) | the live record, or `None` when missing or expired |
/// | [`update`](Self::update) | compare-and-swap: succeeds only if the stored row is live and its version equals `record.version`, and stores it with `version + 1` (returned). Row gone or expired gives [`NotFound`](crate::Error::NotFound) (never re-create it); version moved gives [`Conflict`](crate::Error::Conflict) |
/// | [`touch`](Self::touch) | set `expires_at` of a live row without rewriting data or version; `false` if there is no live row |
/// | [`delete`](Self::delete) | idempotent; reports whether a row was removed |
/// | [`exists`](Self::exists) | live rows only |
/// | [`delete_expired`](Self::delete_expired) | removes expired rows, returns how many; TTL stores may return 0 |
/// | [`list_for_user`](Self::list_for_user) / [`delete_for_user`](Self::delete_for_user) | the user index: live sessions of one user, and "log out everywhere (else)" |
///
/// "Expired counts as absent" holds in every operation: a record is live while
/// `expires_at > now`.
///
/// The trait is object safe; the handle holds stores as `Arc<dyn SessionStore>`.
///
/// # Implementing a store
///
/// ```
/// use async_trait::async_trait;
/// use chrono::{DateTime, Utc};
/// use session_core::{Error, Record, Result, SessionKey, SessionStore};
///
/// /// A store that is always down (for showing the signature only).
/// struct Offline;
///
/// fn down() -> Error {
///     Error::unavailable(std::io::Error::other("offline"))
/// }
///
/// #[async_trait]
/// impl SessionStore for Offline {
///     async fn create(&self, _: &Record) -> Result<()> { Err(down()) }
///     async fn load(&self, _: &SessionKey) -> Result<Option<Record>> { Err(down()) }
///     async fn update(&self, _: &Record) -> Result<u64> { Err(down()) }
///     async fn touch(&self, _: &SessionKey, _: DateTime<Utc>) -> Result<bool> { Err(down()) }
///     async fn delete(&self, _: &SessionKey) -> Result<bool> { Err(down()) }
///     async fn exists(&self, _: &SessionKey) -> Result<bool> { Err(down()) }
///     async fn delete_expired(&self) -> Result<u64> { Err(down()) }
///     async fn list_for_user(&self, _: &str) -> Result<Vec<Record>> { Err(down()) }
///     async fn delete_for_user(&self, _: &str, _: Option<&SessionKey>) -> Result<u64> { Err(down()) }
/// }
///
/// let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(Offline);
/// # let _ = store;
/// ```
///
/// Then run the conformance suite against it (see the `session-conformance` crate).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new record. Fails with [`Error::KeyExists`](crate::Error::KeyExists) if a
    /// live record has the key; replaces an expired one. Must be atomic.
    async fn create(&self, record: &Record) -> Result<()>;

    /// Loads the live record for `key`, or `None` if it is missing or expired.
    async fn load(&self, key: &SessionKey) -> Result<Option<Record>>;

    /// Compare-and-swap update: stores `record` with version `record.version + 1` if the
    /// stored record is live and at `record.version`, and returns the new version.
    ///
    /// Fails with [`Error::NotFound`](crate::Error::NotFound) when there is no live record
    /// (it is never re-created) and [`Error::Conflict`](crate::Error::Conflict) when the
    /// version moved.
    async fn update(&self, record: &Record) -> Result<u64>;

    /// Moves the expiry of a live record to `expires_at` without rewriting its data or
    /// version, and sets `last_active_at` to now where device metadata is stored.
    /// Returns `false` if there was no live record.
    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> Result<bool>;

    /// Deletes the record if present (live or expired); returns whether a live record was
    /// removed. Deleting a missing key is not an error.
    async fn delete(&self, key: &SessionKey) -> Result<bool>;

    /// Whether a live record exists for `key`.
    async fn exists(&self, key: &SessionKey) -> Result<bool>;

    /// Removes expired records and returns how many it removed. Stores whose engine expires
    /// records by itself may return 0 (or the number of stale index entries removed).
    async fn delete_expired(&self) -> Result<u64>;

    /// The live sessions of one user.
    async fn list_for_user(&self, user_id: &str) -> Result<Vec<Record>>;

    /// Deletes the sessions of one user, except `except` if given ("log out everywhere else"),
    /// and returns how many live sessions were removed.
    async fn delete_for_user(&self, user_id: &str, except: Option<&SessionKey>) -> Result<u64>;

    /// What this store supports. The default is [`Capabilities::all`].
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }
}

macro_rules! forward_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<S: SessionStore + ?Sized> SessionStore for $ptr {
            async fn create(&self, record: &Record) -> Result<()> {
                (**self).create(record).await
            }
            async fn load(&self, key: &SessionKey) -> Result<Option<Record>> {
                (**self).load(key).await
            }
            async fn update(&self, record: &Record) -> Result<u64> {
                (**self).update(record).await
            }
            async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> Result<bool> {
                (**self).touch(key, expires_at).await
            }
            async fn delete(&self, key: &SessionKey) -> Result<bool> {
                (**self).delete(key).await
            }
            async fn exists(&self, key: &SessionKey) -> Result<bool> {
                (**self).exists(key).await
            }
            async fn delete_expired(&self) -> Result<u64> {
                (**self).delete_expired().await
            }
            async fn list_for_user(&self, user_id: &str) -> Result<Vec<Record>> {
                (**self).list_for_user(user_id).await
            }
            async fn delete_for_user(&self, user_id: &str, except: Option<&SessionKey>) -> Result<u64> {
                (**self).delete_for_user(user_id, except).await
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
        }
    )*};
}

forward_store!(Arc<S>, Box<S>);
