//! [`HashedKeys`]: session keys hashed at rest.

use hmac::{Hmac, Mac};
use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, Capabilities, ConfigError, ExpiredCleanup, Record, SessionKey, SessionStore,
    StoreError, StoreResult, UserIndex, KEY_ALPHABET,
};
use sha2::Sha256;

/// The shortest secret [`HashedKeys::new`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Domain separation: the secret may be shared with other uses.
const CONTEXT: &[u8] = b"session-combinators.HashedKeys.v1:";

/// A wrapper over any store that stores a keyed hash of the session key instead of the key,
/// so a leaked table or Redis dump cannot be replayed as cookies.
///
/// The stored key is HMAC-SHA256(secret, key), mapped into a valid 32-character
/// `[a-z0-9]` [`SessionKey`] (each of the 32 bytes of the MAC modulo 36, about 165 bits), so
/// every store accepts it. Without the secret, the stored keys give no cookie; with it they
/// still give none (the hash is one-way), but they can be matched against a known cookie.
/// The cookie keeps carrying the random key; only the store sees the hash. Records loaded
/// through the wrapper carry the cookie key, as with any store.
///
/// # Devices
///
/// The user index keeps working, and [`list_for_user`](UserIndex::list_for_user) returns
/// records whose `key` is the **stored (hashed) key: the device identifier**. Show it (or
/// a prefix) in a "your devices" page: it is not a cookie value and cannot log anyone in.
/// [`device_id`](Self::device_id) gives the current request's identifier (to mark "this
/// device"), and [`revoke_device`](Self::revoke_device) ends one device by its identifier.
/// `delete_for_user(user, except)` takes the cookie key in `except`, as with any store.
///
/// # Not for shared layouts
///
/// Do not use it over the Django or Plain table layouts (`TableLayout::Django`/`Plain` of
/// the SQL store): their key column is shared with the Python application, which looks rows
/// up by the cookie value and would find none. Changing or losing the secret logs everyone
/// out (the stored keys no longer match any cookie).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use session_kit::chrono::{TimeDelta, Utc};
/// use session_kit::{HashedKeys, MemoryStore, Record, SessionKey, SessionStore, UserIndex};
///
/// let store = HashedKeys::new(MemoryStore::new(), b"0123456789abcdef0123456789abcdef")?;
/// let cookie = SessionKey::generate();
/// let record = Record::new(cookie.clone(), "j1:{}".into(), Utc::now() + TimeDelta::hours(1))
///     .with_user(Some("alice"));
/// store.create(&record).await?;
///
/// assert_eq!(store.load(&cookie).await?.map(|r| r.key), Some(cookie.clone()));
/// // The inner store only knows the hash:
/// assert!(store.inner().load(&cookie).await?.is_none());
///
/// // "Your devices": identifiers, not cookies.
/// let (index, this_device) = (store.list_for_user("alice").await?, store.device_id(&cookie));
/// assert_eq!(index[0].key, this_device);
/// assert!(store.revoke_device("alice", &this_device).await?);
/// assert!(store.load(&cookie).await?.is_none());
/// # Ok(()) }
/// ```
pub struct HashedKeys<S> {
    inner: S,
    mac: Hmac<Sha256>,
}

impl<S> std::fmt::Debug for HashedKeys<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashedKeys")
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> HashedKeys<S> {
    /// Wraps `inner`, hashing keys with `secret` (at least [`MIN_SECRET_LEN`] bytes; keep
    /// it in your secret store, apart from the database).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the secret is shorter than [`MIN_SECRET_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{HashedKeys, MemoryStore};
    ///
    /// assert!(HashedKeys::new(MemoryStore::new(), b"short").is_err());
    /// assert!(HashedKeys::new(MemoryStore::new(), [7u8; 32]).is_ok());
    /// ```
    pub fn new(inner: S, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::invalid(
                "HashedKeys secret",
                format_args!(
                    "must be at least {MIN_SECRET_LEN} bytes, got {}",
                    secret.len()
                ),
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|err| ConfigError::invalid("HashedKeys secret", err))?;
        Ok(Self { inner, mac })
    }

    /// The stored key of a cookie key: the identifier of that device in
    /// [`list_for_user`](UserIndex::list_for_user) (mark "this device" with it).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{HashedKeys, MemoryStore, SessionKey};
    ///
    /// let store = HashedKeys::new(MemoryStore::new(), [7u8; 32]).unwrap();
    /// let cookie = SessionKey::generate();
    /// assert_eq!(store.device_id(&cookie), store.device_id(&cookie));
    /// assert_ne!(store.device_id(&cookie), cookie);
    /// ```
    pub fn device_id(&self, key: &SessionKey) -> SessionKey {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(key.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let text: String = digest
            .iter()
            .map(|&b| KEY_ALPHABET[usize::from(b) % KEY_ALPHABET.len()] as char)
            .collect();
        // 32 bytes of SHA-256 output, each mapped into the key alphabet: always a valid key.
        #[allow(clippy::expect_used)]
        SessionKey::parse(&text).expect("an HMAC-SHA256 maps to a well-formed session key")
    }

    /// Ends one device of `user_id` by its identifier (a key from
    /// [`list_for_user`](UserIndex::list_for_user)), and returns whether a live session was
    /// removed. A device of another user is left alone (`false`).
    ///
    /// # Errors
    ///
    /// The store's errors.
    ///
    /// # Examples
    ///
    /// See [`HashedKeys`].
    pub async fn revoke_device(&self, user_id: &str, device_id: &SessionKey) -> StoreResult<bool> {
        loop {
            let Some(record) = self.inner.load(device_id).await? else {
                return Ok(false);
            };
            if record.user_id.as_deref() != Some(user_id) {
                return Ok(false);
            }
            match self
                .inner
                .delete_at_version(device_id, record.version)
                .await
            {
                Ok(()) => return Ok(true),
                Err(StoreError::NotFound) => return Ok(false),
                // Written meanwhile: check the owner again.
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The wrapped store (it sees hashed keys only).
    ///
    /// # Examples
    ///
    /// See [`HashedKeys`].
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn hashed(&self, record: &Record) -> Record {
        let mut stored = record.clone();
        stored.key = self.device_id(&record.key);
        stored
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for HashedKeys<S> {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        self.inner.create(&self.hashed(record)).await
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        Ok(self.inner.load(&self.device_id(key)).await?.map(|mut r| {
            r.key = key.clone();
            r
        }))
    }

    async fn update(&self, record: &Record) -> StoreResult<u64> {
        self.inner.update(&self.hashed(record)).await
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        self.inner.touch(&self.device_id(key), expires_at).await
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.inner.delete(&self.device_id(key)).await
    }

    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        self.inner
            .delete_at_version(&self.device_id(key), version)
            .await
    }

    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.inner.exists(&self.device_id(key)).await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.inner.user_index().map(|_| self as &dyn UserIndex)
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        self.inner.expired_cleanup()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
}

#[async_trait]
impl<S: SessionStore> UserIndex for HashedKeys<S> {
    /// The user's live sessions; each record's `key` is its device identifier (the stored
    /// key), never the cookie value.
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        self.index()?.list_for_user(user_id).await
    }

    /// Deletes the user's sessions except `except` (a cookie key, hashed here).
    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        let except = except.map(|k| self.device_id(k));
        self.index()?
            .delete_for_user(user_id, except.as_ref())
            .await
    }
}

impl<S: SessionStore> HashedKeys<S> {
    fn index(&self) -> StoreResult<&dyn UserIndex> {
        self.inner.user_index().ok_or(StoreError::Unsupported {
            operation: "list_for_user",
        })
    }
}
