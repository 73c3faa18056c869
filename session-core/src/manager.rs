//! A direct API over a store, mirroring Plain's and Django's `SessionManager`: for admin
//! tools, scripts and tests that read or write sessions outside a request.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::codec::SessionMap;
use crate::observe::{emit, Observed};
use crate::{Codec, Error, Record, Result, SessionKey, SessionStore, StoreError};

/// Encodes, saves and loads whole session maps by key.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::Error> {
/// use std::sync::Arc;
/// use session_kit::chrono::{Duration, Utc};
/// use session_kit::{JsonCodec, MemoryStore, SessionKey, SessionManager, SessionMap};
///
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), Arc::new(JsonCodec));
/// let key = SessionKey::generate();
/// let mut map = SessionMap::new();
/// map.insert("user_id".into(), 7.into());
/// manager.save(&key, &map, Utc::now() + Duration::hours(1)).await?;
/// assert_eq!(manager.load(&key).await?, Some(map));
///
/// // An empty map deletes the session, as in Django.
/// manager.save(&key, &SessionMap::new(), Utc::now() + Duration::hours(1)).await?;
/// assert_eq!(manager.load(&key).await?, None);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SessionManager {
    store: Arc<dyn SessionStore>,
    codec: Arc<dyn Codec>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager").finish_non_exhaustive()
    }
}

impl SessionManager {
    /// A manager over `store`, encoding with `codec`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::{JsonCodec, SessionManager};
    /// let m = SessionManager::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(JsonCodec));
    /// # let _ = m;
    /// ```
    pub fn new(store: Arc<dyn SessionStore>, codec: Arc<dyn Codec>) -> Self {
        Self { store, codec }
    }

    /// The store, with every operation traced (and counted with the `metrics` feature).
    fn ops(&self) -> Observed<'_> {
        Observed(&*self.store)
    }

    /// Encodes a session map with the configured codec.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::{JsonCodec, SessionManager, SessionMap};
    /// let m = SessionManager::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(JsonCodec));
    /// assert_eq!(m.encode(&SessionMap::new()).unwrap(), "j1:{}");
    /// ```
    pub fn encode(&self, map: &SessionMap) -> Result<String> {
        Ok(self.codec.encode(map)?)
    }

    /// Decodes record data with the configured codec.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::{JsonCodec, SessionManager};
    /// let m = SessionManager::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(JsonCodec));
    /// assert!(m.decode("j1:{}").unwrap().is_empty());
    /// assert!(m.decode("nonsense").is_err());
    /// ```
    pub fn decode(&self, data: &str) -> Result<SessionMap> {
        Ok(self.codec.decode(data)?)
    }

    /// Saves `map` under `key` with the given expiry: insert or update (retrying on a
    /// concurrent write), or delete the session if `map` is empty.
    ///
    /// # Examples
    ///
    /// See [`SessionManager`].
    pub async fn save(
        &self,
        key: &SessionKey,
        map: &SessionMap,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        if map.is_empty() {
            self.ops().delete(key).await?;
            return Ok(());
        }
        let data = self.encode(map)?;
        for _ in 0..16 {
            match self.ops().load(key).await? {
                Some(mut record) => {
                    record.data.clone_from(&data);
                    record.expires_at = expires_at;
                    match self.ops().update(&record).await {
                        Ok(_) => return Ok(()),
                        Err(StoreError::Conflict | StoreError::NotFound) => {
                            emit::conflict(self.ops().backend());
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
                None => {
                    let record = Record::new(key.clone(), data.clone(), expires_at);
                    match self.ops().create(&record).await {
                        Ok(()) => return Ok(()),
                        Err(StoreError::KeyExists) => {
                            emit::create_collision(self.ops().backend());
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
        Err(Error::ConflictRetriesExhausted { attempts: 16 })
    }

    /// Loads and decodes the live session under `key`. Undecodable data is an error here
    /// (unlike the request handle, which treats it as an empty session).
    ///
    /// # Examples
    ///
    /// See [`SessionManager`].
    pub async fn load(&self, key: &SessionKey) -> Result<Option<SessionMap>> {
        match self.ops().load(key).await? {
            Some(record) => Ok(Some(self.decode(&record.data)?)),
            None => Ok(None),
        }
    }
}
