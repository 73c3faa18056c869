//! The [`Session`] handle: what application code touches during a request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::codec::SessionMap;
use crate::config::{Expiry, EXPIRY_KEY};
use crate::{Error, Record, Result, SessionConfig, SessionKey, SessionStore};

/// What the HTTP layer should do with the session cookie after [`Session::save`].
///
/// # Examples
///
/// ```
/// use session_core::CookieAction;
///
/// fn apply(action: CookieAction) -> Option<String> {
///     match action {
///         CookieAction::Set { key, max_age } => Some(match max_age {
///             Some(age) => format!("id={}; Max-Age={}", key.as_str(), age.as_secs()),
///             None => format!("id={}", key.as_str()),
///         }),
///         CookieAction::Remove => Some("id=; Max-Age=0".to_owned()),
///         CookieAction::Unchanged => None,
///     }
/// }
/// assert_eq!(apply(CookieAction::Remove).as_deref(), Some("id=; Max-Age=0"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieAction {
    /// Set the cookie to this key. `max_age` is `None` for a browser-session cookie.
    Set {
        /// The session key to put in the cookie.
        key: SessionKey,
        /// The cookie's Max-Age, or `None` for a browser-session cookie.
        max_age: Option<Duration>,
    },
    /// The request sent a cookie and the session is now empty (or gone): remove the cookie.
    Remove,
    /// Leave the cookie as it is (send no `Set-Cookie`).
    Unchanged,
}

/// One change the request made, kept so it can be re-applied on fresh data after a
/// concurrent write (lost-update protection).
#[derive(Debug, Clone)]
enum Change {
    Set(String, Value),
    Remove(String),
    Clear,
}

#[derive(Debug, Default)]
struct State {
    /// The current key: `None` until created, after a flush, or when the cookie named no
    /// live session.
    key: Option<SessionKey>,
    /// Whether the store was consulted (or the session is keyless): `data` is meaningful.
    loaded: bool,
    data: SessionMap,
    /// Version of the stored record `data` came from.
    version: u64,
    /// The stored record's expiry, when loaded from or written to the store.
    stored_expires_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
    user_id: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    /// The request's changes since the last successful write, in order.
    changes: Vec<Change>,
    user_changed: bool,
    /// The key changed (created or cycled) and the cookie must say so.
    cookie_stale: bool,
    /// The latest cookie decision of any save in this request (for [`Session::finish`]).
    cookie_due: Option<CookieAction>,
}

impl State {
    /// Django's rule (no key and no data), extended to the user: a keyless session that
    /// was given a user is not empty.
    fn is_empty(&self) -> bool {
        self.key.is_none() && (!self.loaded || (self.data.is_empty() && self.user_id.is_none()))
    }

    fn record_change(&mut self, change: Change) {
        match &change {
            Change::Clear => self.changes.clear(),
            Change::Set(k, _) | Change::Remove(k) => self.changes.retain(|c| match c {
                Change::Set(ck, _) | Change::Remove(ck) => ck != k,
                Change::Clear => true,
            }),
        }
        self.changes.push(change);
    }

    fn expiry(&self) -> Expiry {
        Expiry::from_map(&self.data)
    }
}

struct Inner {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    cookie_sent: bool,
    accessed: AtomicBool,
    modified: AtomicBool,
    state: Mutex<State>,
}

/// A request's session: a lazily loaded map of JSON values behind a cookie key.
///
/// Cheap to clone (clones share state), `Send + Sync`. Nothing touches the store until the
/// first read or write; [`save`](Self::save) writes only what is needed and says what the
/// cookie should become. It follows Django's lifecycle: a brand-new session gets a fresh key
/// from the store's atomic `create` (a key sent by the client is never adopted), an empty
/// keyless session is not stored, and saving a session deleted meanwhile fails with
/// [`Error::NotFound`] instead of resurrecting it.
///
/// Concurrent requests on one session do not lose updates: the handle remembers what this
/// request changed and, when the store reports a concurrent write, reloads, re-applies those
/// changes and tries again.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::Error> {
/// use std::sync::Arc;
/// use session_core::{CookieAction, Session, SessionConfig, SessionStore};
/// use session_memory::MemoryStore;
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
/// let config = Arc::new(SessionConfig::default());
///
/// // First request: no cookie.
/// let session = Session::new(store.clone(), config.clone(), None);
/// session.insert("cart_items", 3).await?;
/// let CookieAction::Set { key, .. } = session.save().await? else { unreachable!() };
///
/// // Next request carries the cookie.
/// let session = Session::new(store, config, Some(key.as_str()));
/// assert_eq!(session.get::<u32>("cart_items").await?, Some(3));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cookie_sent", &self.inner.cookie_sent)
            .field("accessed", &self.is_accessed())
            .field("modified", &self.is_modified())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for one request. `cookie` is the raw cookie value, if the request sent one;
    /// a value that is not a well-formed key is dropped here and never reaches the store.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use session_core::{Session, SessionConfig};
    /// use session_memory::MemoryStore;
    ///
    /// let s = Session::new(Arc::new(MemoryStore::new()), Arc::new(SessionConfig::default()), Some("../etc/passwd"));
    /// assert!(s.key().await.is_none());
    /// # }
    /// ```
    pub fn new(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
        cookie: Option<&str>,
    ) -> Self {
        let key = cookie.and_then(|value| match SessionKey::parse(value) {
            Ok(key) => Some(key),
            Err(err) => {
                tracing::debug!(%err, "malformed session cookie ignored");
                None
            }
        });
        Self::with_key(store, config, key, cookie.is_some())
    }

    /// A session for an already parsed key. `cookie_sent` says whether the request carried
    /// a session cookie at all (it decides whether an empty session removes the cookie).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use session_core::{Session, SessionConfig, SessionKey};
    /// use session_memory::MemoryStore;
    ///
    /// let key = SessionKey::generate();
    /// let s = Session::with_key(Arc::new(MemoryStore::new()), Arc::new(SessionConfig::default()), Some(key.clone()), true);
    /// assert_eq!(s.key().await, Some(key));
    /// # }
    /// ```
    pub fn with_key(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
        key: Option<SessionKey>,
        cookie_sent: bool,
    ) -> Self {
        let loaded = key.is_none();
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                cookie_sent,
                accessed: AtomicBool::new(false),
                modified: AtomicBool::new(false),
                state: Mutex::new(State {
                    key,
                    loaded,
                    ..State::default()
                }),
            }),
        }
    }

    /// Whether the session was read or written during this request (the HTTP layer then
    /// adds `Vary: Cookie`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(!s.is_accessed());
    /// let _ = s.get::<String>("name").await?;
    /// assert!(s.is_accessed());
    /// # Ok(()) }
    /// ```
    pub fn is_accessed(&self) -> bool {
        self.inner.accessed.load(Ordering::Relaxed)
    }

    /// Whether the session has unsaved changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("k", 1).await?;
    /// assert!(s.is_modified());
    /// s.save().await?;
    /// assert!(!s.is_modified());
    /// # Ok(()) }
    /// ```
    pub fn is_modified(&self) -> bool {
        self.inner.modified.load(Ordering::Relaxed)
    }

    /// Whether the request carried a session cookie (well-formed or not).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), Some("junk"));
    /// assert!(s.cookie_sent());
    /// ```
    pub fn cookie_sent(&self) -> bool {
        self.inner.cookie_sent
    }

    /// The store this session uses.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.store().capabilities().user_index);
    /// ```
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The policy this session follows.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.config().idle_timeout().as_secs(), 14 * 24 * 3600);
    /// ```
    pub fn config(&self) -> &Arc<SessionConfig> {
        &self.inner.config
    }

    /// The current key, if the session has one. Does not load.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.key().await.is_none());
    /// s.insert("k", 1).await?;
    /// s.save().await?;
    /// assert!(s.key().await.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn key(&self) -> Option<SessionKey> {
        self.inner.state.lock().await.key.clone()
    }

    fn mark_accessed(&self) {
        self.inner.accessed.store(true, Ordering::Relaxed);
    }

    fn mark_modified(&self) {
        self.inner.accessed.store(true, Ordering::Relaxed);
        self.inner.modified.store(true, Ordering::Relaxed);
    }

    /// Loads the record once, if the session has a key and was not loaded yet.
    async fn ensure_loaded(&self, state: &mut State) -> Result<()> {
        if state.loaded {
            return Ok(());
        }
        let Some(key) = state.key.clone() else {
            state.loaded = true;
            return Ok(());
        };
        match self.inner.store.load(&key).await? {
            Some(record) => {
                state.data = self.decode(&record);
                apply_record_meta(state, &record);
            }
            None => {
                // Missing or expired: drop the key so a write creates a fresh one
                // (never adopt a key the client sent).
                tracing::debug!(key = %key, "session cookie names no live session");
                state.key = None;
                state.data = SessionMap::new();
            }
        }
        state.loaded = true;
        Ok(())
    }

    fn decode(&self, record: &Record) -> SessionMap {
        match self.inner.config.codec.decode(&record.data) {
            Ok(map) => map,
            Err(err) if err.is_suspicious() => {
                tracing::warn!(key = %record.key, %err, "session data corrupted (suspicious); using an empty session");
                SessionMap::new()
            }
            Err(err) => {
                tracing::warn!(key = %record.key, %err, "session data could not be decoded; using an empty session");
                SessionMap::new()
            }
        }
    }

    /// Loads the session now, if it was not loaded yet. Reads do this by themselves; an
    /// explicit load lets a handler surface a store outage early.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.load().await?;
    /// assert!(s.is_accessed());
    /// # Ok(()) }
    /// ```
    pub async fn load(&self) -> Result<()> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await
    }

    /// The value under `key`, deserialized as `T`; `None` if absent.
    ///
    /// # Errors
    ///
    /// A store error while loading, or [`Error::Value`] if the stored value is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("theme", "dark").await?;
    /// assert_eq!(s.get::<String>("theme").await?.as_deref(), Some("dark"));
    /// assert!(s.get::<u32>("theme").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get_value(key).await? {
            None => Ok(None),
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|source| Error::Value {
                    key: key.to_owned(),
                    source,
                }),
        }
    }

    /// The raw JSON value under `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert_value("n", serde_json::json!(5)).await?;
    /// assert_eq!(s.get_value("n").await?, Some(serde_json::json!(5)));
    /// # Ok(()) }
    /// ```
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(state.data.get(key).cloned())
    }

    /// Whether `key` is present.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(!s.contains_key("csrf").await?);
    /// # Ok(()) }
    /// ```
    pub async fn contains_key(&self, key: &str) -> Result<bool> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(state.data.contains_key(key))
    }

    /// A copy of the whole session map.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("a", 1).await?;
    /// assert_eq!(s.data().await?.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn data(&self) -> Result<SessionMap> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(state.data.clone())
    }

    /// Stores `value` (serialized to JSON) under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if `value` cannot be serialized; a store error while loading.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct Cart { items: Vec<String> }
    /// s.insert("cart", Cart { items: vec!["apple".into()] }).await?;
    /// assert_eq!(s.get::<Cart>("cart").await?.unwrap().items, ["apple"]);
    /// # Ok(()) }
    /// ```
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|source| Error::Value {
            key: key.to_owned(),
            source,
        })?;
        self.insert_value(key, value).await
    }

    /// Stores a raw JSON value under `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert_value("flags", serde_json::json!(["beta"])).await?;
    /// # Ok(()) }
    /// ```
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<()> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        self.mark_modified();
        state.data.insert(key.to_owned(), value.clone());
        state.record_change(Change::Set(key.to_owned(), value));
        Ok(())
    }

    /// Removes `key` and returns its value deserialized as `T`.
    ///
    /// Marks the session modified only if the key was present (as Django's `pop`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("flash", "saved!").await?;
    /// assert_eq!(s.remove::<String>("flash").await?.as_deref(), Some("saved!"));
    /// assert_eq!(s.remove::<String>("flash").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.remove_value(key).await? {
            None => Ok(None),
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|source| Error::Value {
                    key: key.to_owned(),
                    source,
                }),
        }
    }

    /// Removes `key` and returns its raw value.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.remove_value("missing").await?, None);
    /// assert!(!s.is_modified());
    /// # Ok(()) }
    /// ```
    pub async fn remove_value(&self, key: &str) -> Result<Option<Value>> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        let old = state.data.shift_remove(key);
        if old.is_some() {
            self.mark_modified();
            state.record_change(Change::Remove(key.to_owned()));
        }
        Ok(old)
    }

    /// Empties the session map but keeps the key: the empty map is saved under the same key
    /// (Django's `clear`). Use [`flush`](Self::flush) to log out.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("a", 1).await?;
    /// s.clear().await;
    /// assert!(s.data().await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn clear(&self) {
        let mut state = self.inner.state.lock().await;
        self.mark_modified();
        state.data.clear();
        // No load is needed to know the result; a later load must not bring data back.
        state.loaded = true;
        state.record_change(Change::Clear);
    }

    /// Logs out: empties the session, deletes its record and drops the key. The next save
    /// removes the cookie; a value inserted afterwards starts a new session with a new key.
    ///
    /// # Errors
    ///
    /// A store error from the delete; the session is then left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{CookieAction, Session, SessionConfig, SessionStore};
    /// # let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    /// # let config = Arc::new(SessionConfig::default());
    /// # let s = Session::new(store.clone(), config.clone(), None);
    /// # s.insert("user", 1).await?;
    /// # let CookieAction::Set { key, .. } = s.save().await? else { unreachable!() };
    /// let s = Session::new(store.clone(), config, Some(key.as_str()));
    /// s.flush().await?;
    /// assert_eq!(s.save().await?, CookieAction::Remove);
    /// assert!(!store.exists(&key).await?);
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        if let Some(key) = state.key.clone() {
            self.inner.store.delete(&key).await?;
        }
        *state = State {
            loaded: true,
            ..State::default()
        };
        self.mark_modified();
        Ok(())
    }

    /// Gives the session a new key, keeping its data, and deletes the old record. Call it at
    /// login (and at any privilege change) against session fixation.
    ///
    /// # Errors
    ///
    /// A store error; on failure the old key stays in use.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig, SessionStore};
    /// # let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    /// let s = Session::new(store.clone(), Arc::new(SessionConfig::default()), None);
    /// s.insert("cart", 2).await?;
    /// s.save().await?;
    /// let before = s.key().await.unwrap();
    /// s.cycle_key().await?;
    /// let after = s.key().await.unwrap();
    /// assert_ne!(before, after);
    /// assert!(!store.exists(&before).await?);
    /// assert_eq!(s.get::<u32>("cart").await?, Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn cycle_key(&self) -> Result<()> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        let old = state.key.take();
        if let Err(err) = self.create(&mut state, Utc::now()).await {
            state.key = old;
            return Err(err);
        }
        // Everything the request changed so far is in the new record.
        self.inner.modified.store(false, Ordering::Relaxed);
        if let Some(old) = old {
            if let Err(err) = self.inner.store.delete(&old).await {
                // The new row exists; the old one will expire. Report it, since a stale
                // pre-login key staying live is what cycle_key exists to prevent.
                tracing::warn!(key = %old, %err, "could not delete the old session after cycle_key");
                return Err(err);
            }
        }
        Ok(())
    }

    /// The user this session belongs to (for the user index), if set.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_user(Some("42")).await?;
    /// assert_eq!(s.user_id().await?.as_deref(), Some("42"));
    /// # Ok(()) }
    /// ```
    pub async fn user_id(&self) -> Result<Option<String>> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(state.user_id.clone())
    }

    /// Sets (or with `None` clears) the user this session belongs to, so the store's user
    /// index can list and revoke it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_user(Some("alice")).await?;
    /// s.set_user(None::<String>).await?;
    /// assert_eq!(s.user_id().await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn set_user(&self, user_id: Option<impl Into<String>>) -> Result<()> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        self.mark_modified();
        state.user_id = user_id.map(Into::into);
        state.user_changed = true;
        Ok(())
    }

    /// Records the client's User-Agent; stored with the next write (it does not by itself
    /// cause a write).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_user_agent(Some("Mozilla/5.0")).await;
    /// assert!(!s.is_modified());
    /// # }
    /// ```
    pub async fn set_user_agent(&self, user_agent: Option<impl Into<String>>) {
        self.inner.state.lock().await.user_agent = user_agent.map(Into::into);
    }

    /// Records the client's IP address; stored with the next write.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_ip(Some("203.0.113.7")).await;
    /// # }
    /// ```
    pub async fn set_ip(&self, ip: Option<impl Into<String>>) {
        self.inner.state.lock().await.ip = ip.map(Into::into);
    }

    /// Overrides this session's expiry (stored in the session data as Django's
    /// `_session_expiry`, so a Django app sharing the session sees the same rule).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::{sync::Arc, time::Duration};
    /// # use session_core::{CookieAction, Expiry, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_expiry(Expiry::Idle(Duration::from_secs(3600))).await?;
    /// let CookieAction::Set { max_age, .. } = s.save().await? else { unreachable!() };
    /// assert_eq!(max_age, Some(Duration::from_secs(3600)));
    /// # Ok(()) }
    /// ```
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<()> {
        match expiry.to_value() {
            Some(value) => self.insert_value(EXPIRY_KEY, value).await,
            None => self.remove_value(EXPIRY_KEY).await.map(drop),
        }
    }

    /// This session's expiry override ([`Expiry::Default`] when the policy applies).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Expiry, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.expiry().await?, Expiry::Default);
    /// # Ok(()) }
    /// ```
    pub async fn expiry(&self) -> Result<Expiry> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(state.expiry())
    }

    /// When the session would expire if saved now (Django's `get_expiry_date`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.expiry_date().await? > chrono::Utc::now());
    /// # Ok(()) }
    /// ```
    pub async fn expiry_date(&self) -> Result<DateTime<Utc>> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        let now = Utc::now();
        Ok(self.expiry_at(&state, now))
    }

    /// Time left until [`expiry_date`](Self::expiry_date), in whole seconds; negative when an
    /// absolute expiry has passed (Django's `get_expiry_age`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.expiry_age().await?.num_seconds(), 14 * 24 * 3600);
    /// # Ok(()) }
    /// ```
    pub async fn expiry_age(&self) -> Result<TimeDelta> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        let now = Utc::now();
        let age = self.expiry_at(&state, now) - now;
        // Whole seconds, floored, like Django.
        Ok(TimeDelta::seconds(age.num_milliseconds().div_euclid(1000)))
    }

    /// Whether the cookie is a browser-session cookie (no Max-Age).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{Expiry, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_expiry(Expiry::BrowserClose).await?;
    /// assert!(s.expire_at_browser_close().await?);
    /// # Ok(()) }
    /// ```
    pub async fn expire_at_browser_close(&self) -> Result<bool> {
        self.mark_accessed();
        let mut state = self.inner.state.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(self.inner.config.browser_close(state.expiry()))
    }

    /// Whether the session is empty: no key and no data (a keyed session with an empty map is
    /// not empty, as in Django).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::sync::Arc;
    /// # use session_core::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.is_empty().await);
    /// # }
    /// ```
    pub async fn is_empty(&self) -> bool {
        self.inner.state.lock().await.is_empty()
    }

    fn expiry_at(&self, state: &State, now: DateTime<Utc>) -> DateTime<Utc> {
        self.inner
            .config
            .expiry_date(state.expiry(), state.created_at.unwrap_or(now), now)
    }

    fn cookie_for(&self, state: &State, key: SessionKey, now: DateTime<Utc>) -> CookieAction {
        let max_age = if self.inner.config.browser_close(state.expiry()) {
            None
        } else {
            let left = self.expiry_at(state, now) - now;
            Some(left.to_std().unwrap_or(Duration::ZERO))
        };
        CookieAction::Set { key, max_age }
    }

    fn encode(&self, data: &SessionMap) -> Result<String> {
        let encoded = self.inner.config.codec.encode(data)?;
        if encoded.len() > self.inner.config.max_data_len {
            return Err(Error::TooLarge {
                len: encoded.len(),
                max: self.inner.config.max_data_len,
            });
        }
        Ok(encoded)
    }

    fn record_from(
        &self,
        state: &State,
        key: SessionKey,
        data: String,
        now: DateTime<Utc>,
    ) -> Record {
        Record {
            key,
            data,
            expires_at: self.expiry_at(state, now),
            version: state.version,
            user_id: state.user_id.clone(),
            created_at: state.created_at.unwrap_or(now),
            last_active_at: Some(now),
            user_agent: state.user_agent.clone(),
            ip: state.ip.clone(),
        }
    }

    /// Inserts the current data under a fresh key, retrying on collisions.
    async fn create(&self, state: &mut State, now: DateTime<Utc>) -> Result<()> {
        let data = self.encode(&state.data)?;
        if state.created_at.is_none() {
            state.created_at = Some(now);
        }
        state.version = 1;
        let attempts = self.inner.config.max_create_attempts;
        for _ in 0..attempts {
            let key = SessionKey::generate();
            let record = self.record_from(state, key.clone(), data.clone(), now);
            match self.inner.store.create(&record).await {
                Ok(()) => {
                    tracing::debug!(key = %key, "session created");
                    state.key = Some(key);
                    state.stored_expires_at = Some(record.expires_at);
                    state.changes.clear();
                    state.user_changed = false;
                    state.cookie_stale = true;
                    return Ok(());
                }
                Err(Error::KeyExists) => {
                    tracing::warn!("session key collision on create; trying a fresh key");
                }
                Err(err) => return Err(err),
            }
        }
        Err(Error::KeyCollisions { attempts })
    }

    /// Compare-and-swap update with reload-and-reapply on conflict.
    async fn update(&self, state: &mut State, key: SessionKey) -> Result<()> {
        let max = self.inner.config.max_conflict_retries;
        let mut attempt = 0u32;
        loop {
            let now = Utc::now();
            let data = self.encode(&state.data)?;
            let record = self.record_from(state, key.clone(), data, now);
            match self.inner.store.update(&record).await {
                Ok(version) => {
                    state.version = version;
                    state.stored_expires_at = Some(record.expires_at);
                    state.changes.clear();
                    state.user_changed = false;
                    return Ok(());
                }
                Err(Error::Conflict) if attempt < max => {
                    attempt += 1;
                    tracing::debug!(key = %key, attempt, "concurrent session write; re-applying this request's changes");
                    let Some(fresh) = self.inner.store.load(&key).await? else {
                        return Err(Error::NotFound);
                    };
                    self.reapply(state, &fresh);
                    if attempt > 2 {
                        // Back off a little, with jitter, under heavy contention so writers
                        // interleave instead of colliding in lockstep.
                        let jitter = u64::from(getrandom::u32().unwrap_or(0) % 200);
                        let step = 50 * u64::from(attempt.min(20));
                        tokio::time::sleep(Duration::from_micros(step + jitter)).await;
                    }
                }
                Err(Error::Conflict) => {
                    return Err(Error::ConflictRetriesExhausted {
                        attempts: attempt + 1,
                    })
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Replaces the state with a freshly loaded record plus this request's changes.
    fn reapply(&self, state: &mut State, fresh: &Record) {
        let mut data = self.decode(fresh);
        for change in &state.changes {
            match change {
                Change::Set(k, v) => {
                    data.insert(k.clone(), v.clone());
                }
                Change::Remove(k) => {
                    data.shift_remove(k);
                }
                Change::Clear => data.clear(),
            }
        }
        state.data = data;
        let user_id = state.user_id.take();
        apply_record_meta(state, fresh);
        if state.user_changed {
            state.user_id = user_id;
        }
    }

    /// Writes what this request changed and says what the cookie should become.
    ///
    /// - modified and keyless with data: `create` under a fresh key;
    /// - modified with a key: compare-and-swap `update`, re-applying this request's changes
    ///   on a concurrent write; [`Error::NotFound`] if the session was deleted meanwhile
    ///   (never re-created);
    /// - unmodified but loaded: a cheap `touch` when the idle expiry can move forward by at
    ///   least the configured touch interval;
    /// - empty: nothing is stored, and the cookie is removed if the request sent one.
    ///
    /// # Errors
    ///
    /// Store errors, [`Error::NotFound`], [`Error::TooLarge`]; on error the request's changes
    /// stay in the handle (nothing is lost) and the stored session is as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{CookieAction, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// // Untouched, cookie-less: nothing to do.
    /// assert_eq!(s.save().await?, CookieAction::Unchanged);
    /// s.insert("k", "v").await?;
    /// assert!(matches!(s.save().await?, CookieAction::Set { .. }));
    /// # Ok(()) }
    /// ```
    pub async fn save(&self) -> Result<CookieAction> {
        let mut state = self.inner.state.lock().await;
        let action = self.save_locked(&mut state).await?;
        if action != CookieAction::Unchanged {
            state.cookie_due = Some(action.clone());
        }
        Ok(action)
    }

    /// Saves like [`save`](Self::save), and returns what the cookie must become for the
    /// whole request: if this save changes nothing but an earlier `save` in the same request
    /// (for example one the handler called itself) set or removed the cookie, that decision
    /// is returned. This is what an HTTP layer calls after the handler.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// # use std::sync::Arc;
    /// # use session_core::{CookieAction, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_memory::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("k", 1).await?;
    /// let by_handler = s.save().await?;          // the handler saves early
    /// assert!(matches!(by_handler, CookieAction::Set { .. }));
    /// assert_eq!(s.save().await?, CookieAction::Unchanged);
    /// assert_eq!(s.finish().await?, by_handler); // the layer still sets the cookie
    /// # Ok(()) }
    /// ```
    pub async fn finish(&self) -> Result<CookieAction> {
        let mut state = self.inner.state.lock().await;
        let action = self.save_locked(&mut state).await?;
        if action != CookieAction::Unchanged {
            state.cookie_due = Some(action.clone());
        }
        Ok(state.cookie_due.clone().unwrap_or(CookieAction::Unchanged))
    }

    async fn save_locked(&self, state: &mut State) -> Result<CookieAction> {
        let now = Utc::now();
        if state.is_empty() {
            self.inner.modified.store(false, Ordering::Relaxed);
            state.changes.clear();
            return Ok(if self.inner.cookie_sent {
                CookieAction::Remove
            } else {
                CookieAction::Unchanged
            });
        }
        if self.is_modified() {
            match state.key.clone() {
                None => self.create(state, now).await?,
                Some(key) => self.update(state, key).await?,
            }
            self.inner.modified.store(false, Ordering::Relaxed);
            state.cookie_stale = false;
            let key = state.key.clone().ok_or(Error::NotFound)?;
            return Ok(self.cookie_for(state, key, now));
        }
        // Not modified: a touch can extend an idle session cheaply.
        let Some(key) = state.key.clone() else {
            return Ok(CookieAction::Unchanged);
        };
        let save_every = self.inner.config.save_every_request;
        if save_every {
            self.ensure_loaded(state).await?;
            if state.key.is_none() {
                return Ok(if self.inner.cookie_sent {
                    CookieAction::Remove
                } else {
                    CookieAction::Unchanged
                });
            }
        }
        let cookie_stale = std::mem::take(&mut state.cookie_stale);
        if !state.loaded {
            return Ok(if cookie_stale {
                self.cookie_for(state, key, now)
            } else {
                CookieAction::Unchanged
            });
        }
        let target = self.expiry_at(state, now);
        let sliding = !matches!(state.expiry(), Expiry::At(_));
        let due = match (self.inner.config.touch_interval, state.stored_expires_at) {
            _ if save_every => true,
            (Some(interval), Some(stored)) => {
                sliding
                    && target - stored >= TimeDelta::from_std(interval).unwrap_or(TimeDelta::MAX)
            }
            _ => false,
        };
        if due {
            if !self.inner.store.touch(&key, target).await? {
                tracing::debug!(key = %key, "session vanished before touch");
                *state = State {
                    loaded: true,
                    ..State::default()
                };
                return Ok(if self.inner.cookie_sent {
                    CookieAction::Remove
                } else {
                    CookieAction::Unchanged
                });
            }
            state.stored_expires_at = Some(target);
            return Ok(self.cookie_for(state, key, now));
        }
        Ok(if cookie_stale {
            self.cookie_for(state, key, now)
        } else {
            CookieAction::Unchanged
        })
    }
}

/// Takes the stored record's columns into the state. Device metadata the request set
/// (user agent, IP) wins over the stored values.
fn apply_record_meta(state: &mut State, record: &Record) {
    state.version = record.version;
    state.stored_expires_at = Some(record.expires_at);
    state.created_at = Some(record.created_at);
    state.user_id.clone_from(&record.user_id);
    if state.user_agent.is_none() {
        state.user_agent.clone_from(&record.user_agent);
    }
    if state.ip.is_none() {
        state.ip.clone_from(&record.ip);
    }
}
