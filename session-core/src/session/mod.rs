//! The [`Session`] handle: what application code touches during a request.
//!
//! The handle is one state machine ([`Lifecycle`]): a cookie's key is `Unloaded` until the
//! first access; the loaded session is `Clean` until a change makes it `Dirty`; a key
//! rotation makes it `Renewing` until the save commits it; a logout leaves it `Flushed`.
//! Every decision about the store and the cookie is made in one place,
//! [`Session::save_locked`].

mod auth;
mod changes;
mod data;
mod hot;

pub use self::auth::{
    auth_hash_fn, login_redirect_url, AuthHashFn, AuthHashSource, NotLoggedIn, RequireUserError,
    AUTH_HASH_KEY, AUTH_USER_KEY,
};

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use self::changes::{typed_step, ChangeLog};
use self::data::{Data, Indexed};
use self::hot::WriteTurn;
use crate::codec::SessionMap;
use crate::config::{Expiry, EXPIRY_KEY};
use crate::observe::{emit, Observed};
use crate::{Error, Record, Result, SessionConfig, SessionKey, SessionStore, StoreError};

/// What the HTTP layer should do with the session cookie after [`Session::save`].
///
/// # Examples
///
/// ```
/// use session_kit::CookieAction;
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

/// Where a request's session stands. Exactly one of these at a time; [`Session::save`]
/// decides what to write by matching on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lifecycle {
    /// The request sent this key; the store has not been asked yet (data unknown).
    Unloaded(SessionKey),
    /// Loaded (or new and empty) and unchanged: a save at most extends the expiry.
    Clean,
    /// Changed: a save creates the record (no stored record yet) or compare-and-swaps it.
    Dirty,
    /// A key rotation is pending (with or without changes): a save deletes the old record
    /// at the version it was loaded at, then creates the new one.
    Renewing,
    /// Logged out during this request: the record is deleted and the cookie goes, unless
    /// something is written afterwards (a new session then starts).
    Flushed,
}

impl Lifecycle {
    fn name(&self) -> &'static str {
        match self {
            Self::Unloaded(_) => "unloaded",
            Self::Clean => "clean",
            Self::Dirty => "dirty",
            Self::Renewing => "renewing",
            Self::Flushed => "flushed",
        }
    }
}

/// The two compare-and-swap writes of a save (see [`Session::compare_and_write`]).
#[derive(Debug, Clone, Copy)]
enum CasWrite {
    /// Store the body at the next version.
    Update,
    /// Delete the record at its version (the first half of a key rotation).
    Retire,
}

/// The stored record the loaded data came from (or was last written as).
#[derive(Debug, Clone)]
struct Stored {
    key: SessionKey,
    version: u64,
    expires_at: DateTime<Utc>,
}

/// The loaded session: data, its parsed expiry, user and the request's change log.
#[derive(Debug, Default)]
struct Body {
    data: Data,
    /// `_session_expiry`, parsed once whenever `data` changes under that key.
    expiry: Expiry,
    user_id: Option<String>,
    created_at: Option<DateTime<Utc>>,
    stored: Option<Stored>,
    /// The device metadata the stored record had (kept when the request sends none).
    stored_device: Device,
    changes: ChangeLog,
}

impl Body {
    /// Django's rule (no key and no data), extended to the user: a keyless session that
    /// was given a user is not empty.
    fn is_empty(&self) -> bool {
        self.stored.is_none() && self.data.is_empty() && self.user_id.is_none()
    }

    fn reparse_expiry(&mut self, changed_key: Option<&str>) {
        if changed_key.is_none_or(|k| k == EXPIRY_KEY) {
            self.expiry = self.data.expiry();
        }
    }
}

/// Device metadata the HTTP layer sets; kept apart from the body because it is known
/// before (and without) loading.
#[derive(Debug, Default)]
struct Device {
    user_agent: Option<String>,
    ip: Option<String>,
}

#[derive(Debug)]
struct State {
    phase: Lifecycle,
    body: Body,
    device: Device,
    /// The latest cookie decision of any save in this request (for [`Session::finish`]).
    cookie_due: Option<CookieAction>,
}

impl State {
    /// Moves a loaded session to "has something to write".
    fn mark_dirty(&mut self) {
        if matches!(self.phase, Lifecycle::Clean | Lifecycle::Flushed) {
            self.phase = Lifecycle::Dirty;
        }
    }

    fn is_empty(&self) -> bool {
        match self.phase {
            Lifecycle::Unloaded(_) | Lifecycle::Renewing => false,
            _ => self.body.is_empty(),
        }
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
/// [`Error::Interrupted`] instead of resurrecting it.
///
/// # Concurrency
///
/// - Writes are compare-and-swap on the record's version. When another request wrote the
///   session meanwhile, the handle reloads and replays *this request's changes* on the
///   fresh data: two requests that change different keys both persist.
/// - [`insert`](Self::insert) of a key is last-writer-wins. For read-modify-write (a
///   counter, appending to a list) use [`update`](Self::update): its closure is re-run on
///   the fresh value, so no increment is lost.
/// - Saves of one session inside one process take turns (a process-wide striped lock), so
///   concurrent requests on a hot session do not fail each other's compare-and-swap;
///   conflicts remain only between processes, retried with backoff up to
///   [`SessionConfig::with_max_conflict_retries`].
/// - Key rotation ([`cycle_key`](Self::cycle_key), [`login`](Self::login)) takes effect at
///   save, atomically with respect to the old record: if it was deleted or revoked after it
///   was loaded, the save fails with [`Error::Interrupted`] and nothing exists under a new
///   key; changes written to it meanwhile are carried into the new record; after the
///   rotation, saves on the old key fail with [`Error::Interrupted`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::Error> {
/// use std::sync::Arc;
/// use session_kit::{CookieAction, MemoryStore, Session, SessionConfig, SessionStore};
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
        let phase = self
            .inner
            .state
            .try_lock()
            .map_or("busy", |state| state.phase.name());
        f.debug_struct("Session")
            .field("phase", &phase)
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
    /// use session_kit::{MemoryStore, Session, SessionConfig};
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

    /// A session for an already parsed key (an HTTP layer that parsed the cookie passes it
    /// here, so it is not parsed twice). `cookie_sent` says whether the request carried a
    /// session cookie at all (it decides whether an empty session removes the cookie).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use session_kit::{MemoryStore, Session, SessionConfig, SessionKey};
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
        let phase = key.map_or(Lifecycle::Clean, Lifecycle::Unloaded);
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                cookie_sent,
                accessed: AtomicBool::new(false),
                modified: AtomicBool::new(false),
                state: Mutex::new(State {
                    phase,
                    body: Body::default(),
                    device: Device::default(),
                    cookie_due: None,
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
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
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
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
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
    /// # use session_kit::{Session, SessionConfig};
    /// let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), Some("junk"));
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
    /// # use session_kit::{Session, SessionConfig};
    /// let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.store().user_index().is_some());
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
    /// # use session_kit::{Session, SessionConfig};
    /// let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.config().idle_timeout().as_secs(), 14 * 24 * 3600);
    /// ```
    pub fn config(&self) -> &Arc<SessionConfig> {
        &self.inner.config
    }

    /// The current key, if the session has one. Does not load. A pending rotation
    /// ([`cycle_key`](Self::cycle_key)) shows its new key only after the save.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.key().await.is_none());
    /// s.insert("k", 1).await?;
    /// s.save().await?;
    /// assert!(s.key().await.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn key(&self) -> Option<SessionKey> {
        let state = self.inner.state.lock().await;
        match &state.phase {
            Lifecycle::Unloaded(key) => Some(key.clone()),
            _ => state.body.stored.as_ref().map(|s| s.key.clone()),
        }
    }

    fn mark_modified(&self) {
        self.inner.modified.store(true, Ordering::Relaxed);
    }

    /// The store, with every operation traced (and counted with the `metrics` feature).
    fn ops(&self) -> Observed<'_> {
        Observed(&*self.inner.store)
    }

    /// The one way in for every accessor: the state, with the record loaded if the request
    /// named a key that was not looked up yet.
    async fn loaded(&self) -> Result<MutexGuard<'_, State>> {
        self.inner.accessed.store(true, Ordering::Relaxed);
        let mut state = self.inner.state.lock().await;
        if let Lifecycle::Unloaded(key) = &state.phase {
            // The key is read in place (no copy): the phase changes only after the load.
            match self.ops().load(key).await? {
                Some(record) => {
                    self.take_record(&mut state.body, record);
                    state.phase = Lifecycle::Clean;
                    self.verify_auth_hash(&mut state).await?;
                }
                None => {
                    // Missing or expired: a write creates a fresh key (never adopt a key
                    // the client sent).
                    tracing::debug!(key = %key, "session cookie names no live session");
                    state.phase = Lifecycle::Clean;
                }
            }
        }
        Ok(state)
    }

    /// Makes `record` the body's base (data, user, version), keeping the change log. The
    /// record is taken apart, not copied: its data becomes the body's (indexed in place).
    fn take_record(&self, body: &mut Body, record: Record) {
        let Record {
            key,
            data,
            expires_at,
            version,
            user_id,
            created_at,
            user_agent,
            ip,
            ..
        } = record;
        body.data = self.decode(&key, data);
        body.user_id = user_id;
        body.created_at = Some(created_at);
        body.stored_device = Device { user_agent, ip };
        body.stored = Some(Stored {
            key,
            version,
            expires_at,
        });
        body.reparse_expiry(None);
    }

    /// Rebases the body on a fresher record and replays this request's changes on it.
    fn rebase(&self, body: &mut Body, fresh: Record) -> Result<()> {
        self.take_record(body, fresh);
        let mut data = std::mem::take(body.data.map_mut());
        body.changes.replay(&mut data, &mut body.user_id)?;
        body.data = Data::from_map(data);
        body.reparse_expiry(None);
        Ok(())
    }

    fn decode(&self, key: &SessionKey, data: String) -> Data {
        let codec = &self.inner.config.codec;
        // Plain JSON: index it (one validating pass, no values built, the text taken over);
        // single reads then deserialize straight from the text, and the map is built only
        // on a change. The JSON must be the end of the data, behind the codec's prefix.
        let json_start = codec.json_object(&data).and_then(|json| {
            let start = data.len().checked_sub(json.len())?;
            (data.get(start..) == Some(json)).then_some(start)
        });
        let data = match json_start {
            Some(start) => match Indexed::parse(data, start) {
                Ok(indexed) => return Data::from_indexed(indexed),
                Err(data) => data,
            },
            None => data,
        };
        Data::from_map(match codec.decode(&data) {
            Ok(map) => map,
            Err(err) if err.is_suspicious() => {
                tracing::warn!(key = %key, %err, "session data corrupted (suspicious); using an empty session");
                SessionMap::new()
            }
            Err(err) => {
                tracing::warn!(key = %key, %err, "session data could not be decoded; using an empty session");
                SessionMap::new()
            }
        })
    }

    /// Loads the session now, if it was not loaded yet. Reads do this by themselves; an
    /// explicit load lets a handler surface a store outage early.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.load().await?;
    /// assert!(s.is_accessed());
    /// # Ok(()) }
    /// ```
    pub async fn load(&self) -> Result<()> {
        self.loaded().await.map(drop)
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
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("theme", "dark").await?;
    /// assert_eq!(s.get::<String>("theme").await?.as_deref(), Some("dark"));
    /// assert!(s.get::<u32>("theme").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let state = self.loaded().await?;
        // Deserialize from the stored text (or the map) in place: no clone of the value.
        match state.body.data.get_as::<T>(key) {
            None => Ok(None),
            Some(value) => value.map(Some).map_err(|source| Error::Value {
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
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert_value("n", session_kit::serde_json::json!(5)).await?;
    /// assert_eq!(s.get_value("n").await?, Some(session_kit::serde_json::json!(5)));
    /// # Ok(()) }
    /// ```
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>> {
        Ok(self.loaded().await?.body.data.get(key).map(Cow::into_owned))
    }

    /// Whether `key` is present.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(!s.contains_key("csrf").await?);
    /// # Ok(()) }
    /// ```
    pub async fn contains_key(&self, key: &str) -> Result<bool> {
        Ok(self.loaded().await?.body.data.contains_key(key))
    }

    /// A copy of the whole session map.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("a", 1).await?;
    /// assert_eq!(s.data().await?.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn data(&self) -> Result<SessionMap> {
        Ok(self.loaded().await?.body.data.to_map())
    }

    /// Stores `value` (serialized to JSON) under `key`. Last writer wins: when two requests
    /// insert the same key, the later save's value stays. For read-modify-write use
    /// [`update`](Self::update).
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if `value` cannot be serialized; a store error while loading.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
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

    /// Stores a raw JSON value under `key` (last writer wins, like [`insert`](Self::insert)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert_value("flags", session_kit::serde_json::json!(["beta"])).await?;
    /// # Ok(()) }
    /// ```
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<()> {
        let mut state = self.loaded().await?;
        state.body.changes.set(key, value.clone());
        state.body.data.insert(key, value);
        state.body.reparse_expiry(Some(key));
        state.mark_dirty();
        self.mark_modified();
        Ok(())
    }

    /// Atomic read-modify-write of one value: `f` gets the current value (`None` when
    /// absent) and returns the new one, which is stored under `key` and returned.
    ///
    /// If another request writes the session before this one saves, the save reloads and
    /// runs `f` again on the fresh value, so concurrent updates compose: 64 requests that
    /// each add one to a counter leave it 64 higher. `f` may therefore run more than once
    /// and should only compute (no side effects). The value returned here is the one
    /// computed on the data this request saw; call [`save`](Self::save) and read it again
    /// to see the committed value.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if the stored value is not a `T` (at this call, or when the save
    /// replays `f` on fresh data); a store error while loading.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// let visits = s.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
    /// assert_eq!(visits, 1);
    /// let cart = s
    ///     .update("cart", |items: Option<Vec<String>>| {
    ///         let mut items = items.unwrap_or_default();
    ///         items.push("apple".into());
    ///         items
    ///     })
    ///     .await?;
    /// assert_eq!(cart, ["apple"]);
    /// # Ok(()) }
    /// ```
    pub async fn update<T, F>(&self, key: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        let step = typed_step(key, f);
        let mut state = self.loaded().await?;
        let new = step(state.body.data.get(key).as_deref())?;
        let typed = T::deserialize(&new).map_err(|source| Error::Value {
            key: key.to_owned(),
            source,
        })?;
        state.body.changes.update(key, step);
        state.body.data.insert(key, new);
        state.body.reparse_expiry(Some(key));
        state.mark_dirty();
        self.mark_modified();
        Ok(typed)
    }

    /// Removes `key` and returns its value deserialized as `T`.
    ///
    /// Marks the session modified only if the key was present (as Django's `pop`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
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
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.remove_value("missing").await?, None);
    /// assert!(!s.is_modified());
    /// # Ok(()) }
    /// ```
    pub async fn remove_value(&self, key: &str) -> Result<Option<Value>> {
        let mut state = self.loaded().await?;
        let old = state.body.data.map_mut().shift_remove(key);
        if old.is_some() {
            state.body.changes.remove(key);
            state.body.reparse_expiry(Some(key));
            state.mark_dirty();
            self.mark_modified();
        }
        Ok(old)
    }

    /// Empties the session map but keeps the key: the empty map is saved under the same key
    /// (Django's `clear`). Use [`logout`](Self::logout) to log out.
    ///
    /// # Errors
    ///
    /// A store error while loading.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("a", 1).await?;
    /// s.clear().await?;
    /// assert!(s.data().await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn clear(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        state.body.changes.clear();
        state.body.data = Data::default();
        state.body.reparse_expiry(None);
        state.mark_dirty();
        self.mark_modified();
        Ok(())
    }

    /// Ends the session now: deletes its record, empties the data and drops the key
    /// (Django's `flush`). The next save removes the cookie; a value inserted afterwards
    /// starts a new session with a new key. [`logout`](Self::logout) is the same.
    ///
    /// # Errors
    ///
    /// A store error from the delete; the session is then left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{CookieAction, Session, SessionConfig, SessionStore};
    /// # let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
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
        self.inner.accessed.store(true, Ordering::Relaxed);
        let mut state = self.inner.state.lock().await;
        self.flush_locked(&mut state).await
    }

    /// Logs out (Django's `logout()`): the same as [`flush`](Self::flush).
    ///
    /// # Errors
    ///
    /// A store error from the delete; the session is then left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{CookieAction, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.login("alice").await?;
    /// s.save().await?;
    /// s.logout().await?;
    /// assert_eq!(s.user_id().await?, None);
    /// assert_eq!(s.save().await?, CookieAction::Remove); // the cookie set above goes
    /// # Ok(()) }
    /// ```
    pub async fn logout(&self) -> Result<()> {
        self.flush().await
    }

    async fn flush_locked(&self, state: &mut State) -> Result<()> {
        let key = match &state.phase {
            Lifecycle::Unloaded(key) => Some(key.clone()),
            _ => state.body.stored.as_ref().map(|s| s.key.clone()),
        };
        if let Some(key) = key {
            // In this process's turn for the key, so a save queued behind sees it gone.
            let mut turn = WriteTurn::take(self.store_id(), &key).await;
            self.ops().delete(&key).await?;
            turn.forget();
            tracing::debug!(key = %key, "session flushed");
        }
        state.body = Body::default();
        state.phase = Lifecycle::Flushed;
        self.mark_modified();
        Ok(())
    }

    /// Gives the session a new key, keeping its data, against session fixation; call it at
    /// any privilege change ([`login`](Self::login) does).
    ///
    /// The rotation takes effect at [`save`](Self::save): the old record is deleted at the
    /// version this request loaded (changes written to it meanwhile are replayed first),
    /// then the new record is created — two store writes. If the old record was deleted or
    /// revoked meanwhile, the save fails with [`Error::Interrupted`] and no new record
    /// exists. A session that has no stored record yet needs no rotation: it gets a fresh
    /// key when first saved.
    ///
    /// # Errors
    ///
    /// A store error while loading.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig, SessionStore};
    /// # let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
    /// let s = Session::new(store.clone(), Arc::new(SessionConfig::default()), None);
    /// s.insert("cart", 2).await?;
    /// s.save().await?;
    /// let before = s.key().await.unwrap();
    /// s.cycle_key().await?;
    /// s.save().await?;
    /// let after = s.key().await.unwrap();
    /// assert_ne!(before, after);
    /// assert!(!store.exists(&before).await?);
    /// assert_eq!(s.get::<u32>("cart").await?, Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn cycle_key(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        self.cycle_locked(&mut state);
        Ok(())
    }

    fn cycle_locked(&self, state: &mut State) {
        if state.body.stored.is_some() {
            state.phase = Lifecycle::Renewing;
            self.mark_modified();
        }
    }

    /// Logs `user_id` in, with Django's rules: when another user was logged in, the
    /// session is flushed (its record deleted now, data emptied: the next user sees nothing
    /// of the previous one's); otherwise the key is rotated and the data kept. Either way
    /// the session is then owned by `user_id` (for the user index), and the save writes the
    /// new record: a login costs two store writes (one for a session with no record yet).
    ///
    /// "Another user" is the user stored with the record ([`Record::user_id`]). A store that
    /// keeps no user column (the Django and Plain table layouts) cannot tell, so there a
    /// login always rotates and keeps the data: call [`flush`](Self::flush) first when the
    /// application knows a different user was logged in.
    ///
    /// # Errors
    ///
    /// A store error while loading or flushing.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("cart", vec!["apple"]).await?;
    /// s.login("alice").await?;                 // same browser, first login: cart kept
    /// s.save().await?;
    /// assert_eq!(s.get::<Vec<String>>("cart").await?.map(|c| c.len()), Some(1));
    ///
    /// s.login("bob").await?;                   // another user on alice's cookie: flushed
    /// s.save().await?;
    /// assert_eq!(s.get::<Vec<String>>("cart").await?, None);
    /// assert_eq!(s.user_id().await?.as_deref(), Some("bob"));
    /// # Ok(()) }
    /// ```
    pub async fn login(&self, user_id: impl Into<String>) -> Result<()> {
        self.login_with(user_id.into(), None).await
    }

    /// The user this session belongs to (for the user index), if set.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_user(Some("42")).await?;
    /// assert_eq!(s.user_id().await?.as_deref(), Some("42"));
    /// # Ok(()) }
    /// ```
    pub async fn user_id(&self) -> Result<Option<String>> {
        Ok(self.loaded().await?.body.user_id.clone())
    }

    /// Sets (or with `None` clears) the user this session belongs to, so the store's user
    /// index can list and revoke it. Prefer [`login`](Self::login) at login, which also
    /// rotates the key.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_user(Some("alice")).await?;
    /// s.set_user(None::<String>).await?;
    /// assert_eq!(s.user_id().await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn set_user(&self, user_id: Option<impl Into<String>>) -> Result<()> {
        let mut state = self.loaded().await?;
        self.set_user_locked(&mut state, user_id.map(Into::into));
        Ok(())
    }

    fn set_user_locked(&self, state: &mut State, user_id: Option<String>) {
        state.body.changes.set_user(user_id.clone());
        state.body.user_id = user_id;
        state.mark_dirty();
        self.mark_modified();
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
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_user_agent(Some("Mozilla/5.0")).await;
    /// assert!(!s.is_modified());
    /// # }
    /// ```
    pub async fn set_user_agent(&self, user_agent: Option<impl Into<String>>) {
        self.inner.state.lock().await.device.user_agent = user_agent.map(Into::into);
    }

    /// Records the client's IP address; stored with the next write.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_ip(Some("203.0.113.7")).await;
    /// # }
    /// ```
    pub async fn set_ip(&self, ip: Option<impl Into<String>>) {
        self.inner.state.lock().await.device.ip = ip.map(Into::into);
    }

    /// Overrides this session's expiry (stored in the session data as Django's
    /// `_session_expiry`, so a Django app sharing the session sees the same rule).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::{sync::Arc, time::Duration};
    /// # use session_kit::{CookieAction, Expiry, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
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
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Expiry, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.expiry().await?, Expiry::Default);
    /// # Ok(()) }
    /// ```
    pub async fn expiry(&self) -> Result<Expiry> {
        Ok(self.loaded().await?.body.expiry)
    }

    /// When the session would expire if saved now (Django's `get_expiry_date`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.expiry_date().await? > session_kit::chrono::Utc::now());
    /// # Ok(()) }
    /// ```
    pub async fn expiry_date(&self) -> Result<DateTime<Utc>> {
        let state = self.loaded().await?;
        Ok(self.expiry_at(&state.body, Utc::now()))
    }

    /// Time left until [`expiry_date`](Self::expiry_date), in whole seconds; negative when an
    /// absolute expiry has passed (Django's `get_expiry_age`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert_eq!(s.expiry_age().await?.num_seconds(), 14 * 24 * 3600);
    /// # Ok(()) }
    /// ```
    pub async fn expiry_age(&self) -> Result<TimeDelta> {
        let state = self.loaded().await?;
        let now = Utc::now();
        let age = self.expiry_at(&state.body, now) - now;
        // Whole seconds, floored, like Django.
        Ok(TimeDelta::seconds(age.num_milliseconds().div_euclid(1000)))
    }

    /// Whether the cookie is a browser-session cookie (no Max-Age).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{Expiry, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.set_expiry(Expiry::BrowserClose).await?;
    /// assert!(s.expire_at_browser_close().await?);
    /// # Ok(()) }
    /// ```
    pub async fn expire_at_browser_close(&self) -> Result<bool> {
        let state = self.loaded().await?;
        Ok(self.inner.config.browser_close(state.body.expiry))
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
    /// # use session_kit::{Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(s.is_empty().await);
    /// # }
    /// ```
    pub async fn is_empty(&self) -> bool {
        self.inner.state.lock().await.is_empty()
    }

    fn expiry_at(&self, body: &Body, now: DateTime<Utc>) -> DateTime<Utc> {
        self.inner
            .config
            .expiry_date(body.expiry, body.created_at.unwrap_or(now), now)
    }

    /// The cookie for the stored record `key`, with Max-Age from the expiry policy.
    fn set_cookie(&self, body: &Body, key: SessionKey, now: DateTime<Utc>) -> CookieAction {
        let max_age = if self.inner.config.browser_close(body.expiry) {
            None
        } else {
            let left = self.expiry_at(body, now) - now;
            Some(left.to_std().unwrap_or(Duration::ZERO))
        };
        CookieAction::Set { key, max_age }
    }

    /// The cookie when there is nothing to keep: removed if the request sent one or an
    /// earlier save in this request set one.
    fn removal(&self, state: &State) -> CookieAction {
        if self.inner.cookie_sent || matches!(state.cookie_due, Some(CookieAction::Set { .. })) {
            CookieAction::Remove
        } else {
            CookieAction::Unchanged
        }
    }

    fn encode(&self, data: &Data) -> Result<String> {
        let encoded = match data.spliced_json() {
            // Still as loaded (plus inserts): splice, no stored value parsed or encoded again.
            Some(json) => json.map_err(crate::CodecError::from)?,
            None => self.inner.config.codec.encode(&data.as_map())?,
        };
        if encoded.len() > self.inner.config.max_data_len {
            return Err(Error::TooLarge {
                len: encoded.len(),
                max: self.inner.config.max_data_len,
            });
        }
        Ok(encoded)
    }

    fn record_for(
        &self,
        state: &State,
        key: SessionKey,
        data: String,
        version: u64,
        now: DateTime<Utc>,
    ) -> Record {
        // Field by field: `Record::new` would read the clock for a `created_at` set here.
        Record {
            key,
            data,
            expires_at: self.expiry_at(&state.body, now),
            version,
            user_id: state.body.user_id.clone(),
            created_at: state.body.created_at.unwrap_or(now),
            last_active_at: Some(now),
            // What the request sent wins; otherwise the stored values stay.
            user_agent: (state.device.user_agent.as_ref())
                .or(state.body.stored_device.user_agent.as_ref())
                .cloned(),
            ip: (state.device.ip.as_ref())
                .or(state.body.stored_device.ip.as_ref())
                .cloned(),
        }
    }

    /// The address of the store object: identifies "this store" in the hot-session table.
    fn store_id(&self) -> usize {
        Arc::as_ptr(&self.inner.store).cast::<()>() as usize
    }

    /// Sleeps before the `attempt`-th retry of a write that conflicted with another
    /// process: exponential from 100 µs, capped at 10 ms, with full jitter.
    async fn back_off(attempt: u32) {
        let cap_us = (100u64 << attempt.min(7)).min(10_000);
        let jitter = u64::from(getrandom::u32().unwrap_or(0)) % cap_us.max(1);
        tokio::time::sleep(Duration::from_micros(jitter)).await;
    }

    /// Reloads after a conflict and rebases the body; `Interrupted` if the record is gone.
    async fn reload_and_rebase(&self, state: &mut State, key: &SessionKey) -> Result<()> {
        let Some(fresh) = self.ops().load(key).await? else {
            return Err(Error::Interrupted);
        };
        self.rebase(&mut state.body, fresh)
    }

    /// Inserts the body under a fresh key, retrying on collisions. The body then describes
    /// the new record.
    async fn create(&self, state: &mut State, now: DateTime<Utc>) -> Result<SessionKey> {
        let data = self.encode(&state.body.data)?;
        state.body.created_at.get_or_insert(now);
        let attempts = self.inner.config.max_create_attempts;
        for _ in 0..attempts {
            let key = SessionKey::generate();
            let record = self.record_for(state, key.clone(), data.clone(), 1, now);
            match self.ops().create(&record).await {
                Ok(()) => {
                    tracing::debug!(key = %key, "session created");
                    state.body.stored = Some(Stored {
                        key: key.clone(),
                        version: 1,
                        expires_at: record.expires_at,
                    });
                    return Ok(key);
                }
                Err(StoreError::KeyExists) => {
                    emit::create_collision(self.ops().backend());
                    tracing::warn!("session key collision on create; trying a fresh key");
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::KeyCollisions { attempts })
    }

    /// Writes the body's change under `key` with compare-and-swap semantics, in this
    /// process's turn for the key: `Update` stores the body at the next version, `Retire`
    /// deletes the record at its version (the first half of a key rotation). After a write
    /// by another process (`Conflict`) it reloads, replays this request's changes and tries
    /// again, with backoff, up to the configured limit; a record gone meanwhile is
    /// [`Error::Interrupted`].
    async fn compare_and_write(
        &self,
        state: &mut State,
        key: &SessionKey,
        write: CasWrite,
    ) -> Result<()> {
        let mut turn = WriteTurn::take(self.store_id(), key).await;
        if let Some(latest) = turn.latest(key) {
            if state.body.stored.as_ref().map(|s| s.version) != Some(latest.version) {
                let latest = latest.clone();
                self.rebase(&mut state.body, latest)?;
            }
        }
        let max = self.inner.config.max_conflict_retries;
        let mut attempt = 0u32;
        loop {
            let version = state.body.stored.as_ref().map_or(0, |s| s.version);
            let outcome = match write {
                CasWrite::Update => {
                    let now = Utc::now();
                    let data = self.encode(&state.body.data)?;
                    let mut record = self.record_for(state, key.clone(), data, version, now);
                    self.ops().update(&record).await.map(|new_version| {
                        record.version = new_version;
                        Some(record)
                    })
                }
                CasWrite::Retire => self
                    .ops()
                    .delete_at_version(key, version)
                    .await
                    .map(|()| None),
            };
            match outcome {
                Ok(Some(record)) => {
                    match state.body.stored.as_mut() {
                        // Same key: only the version and expiry move (the key is not copied).
                        Some(stored) if stored.key == *key => {
                            stored.version = record.version;
                            stored.expires_at = record.expires_at;
                        }
                        _ => {
                            state.body.stored = Some(Stored {
                                key: key.clone(),
                                version: record.version,
                                expires_at: record.expires_at,
                            });
                        }
                    }
                    turn.remember(record);
                    return Ok(());
                }
                Ok(None) => {
                    turn.forget();
                    return Ok(());
                }
                Err(StoreError::NotFound) => {
                    turn.forget();
                    tracing::debug!(key = %key, "session deleted or revoked before its save");
                    return Err(Error::Interrupted);
                }
                Err(StoreError::Conflict) if attempt < max => {
                    attempt += 1;
                    emit::conflict(self.ops().backend());
                    emit::retry(self.ops().backend());
                    turn.forget();
                    tracing::debug!(key = %key, attempt, "session written by another process; replaying this request's changes");
                    self.reload_and_rebase(state, key).await?;
                    if attempt > 1 {
                        Self::back_off(attempt).await;
                    }
                }
                Err(StoreError::Conflict) => {
                    turn.forget();
                    emit::conflict(self.ops().backend());
                    return Err(Error::ConflictRetriesExhausted {
                        attempts: attempt + 1,
                    });
                }
                Err(err) => {
                    turn.forget();
                    return Err(err.into());
                }
            }
        }
    }

    /// Commits a pending rotation: deletes the old record at the version the body is based
    /// on (replaying changes written meanwhile), then creates the new record.
    async fn rotate(
        &self,
        state: &mut State,
        old: &SessionKey,
        now: DateTime<Utc>,
    ) -> Result<SessionKey> {
        // Check the size before anything is deleted: a failing encode must lose nothing.
        self.encode(&state.body.data)?;
        self.compare_and_write(state, old, CasWrite::Retire).await?;
        // The old record is gone: from here the body is an unsaved session, so a failed
        // create below is retried by the next save as a plain create.
        state.body.stored = None;
        state.phase = Lifecycle::Dirty;
        tracing::debug!(key = %old, "session key rotated");
        self.create(state, now).await
    }

    /// Extends an idle session's expiry when it moved by at least the touch interval (or
    /// on every request when so configured); returns the cookie to send.
    async fn touch_if_due(&self, state: &mut State, now: DateTime<Utc>) -> Result<CookieAction> {
        let Some(expires_at) = state.body.stored.as_ref().map(|s| s.expires_at) else {
            return Ok(self.removal(state));
        };
        let config = &self.inner.config;
        let target = self.expiry_at(&state.body, now);
        let sliding = !matches!(state.body.expiry, Expiry::At(_));
        let due = config.save_every_request
            || (sliding
                && config.touch_interval.is_some_and(|interval| {
                    target - expires_at >= TimeDelta::from_std(interval).unwrap_or(TimeDelta::MAX)
                }));
        if !due {
            // Most requests: decided without a copy of the stored key.
            return Ok(CookieAction::Unchanged);
        }
        let Some(key) = state.body.stored.as_ref().map(|s| s.key.clone()) else {
            return Ok(self.removal(state));
        };
        if !self.ops().touch(&key, target).await? {
            tracing::debug!(key = %key, "session vanished before touch");
            state.body = Body::default();
            return Ok(self.removal(state));
        }
        if let Some(s) = state.body.stored.as_mut() {
            s.expires_at = target;
        }
        Ok(self.set_cookie(&state.body, key, now))
    }

    /// The one save decision: what to write, given where the session stands. A decision
    /// about the cookie is left in `state.cookie_due` (moved there, not copied); returns
    /// whether this save made one.
    async fn save_locked(&self, state: &mut State) -> Result<bool> {
        let now = Utc::now();
        if self.inner.config.save_every_request && matches!(state.phase, Lifecycle::Unloaded(_)) {
            self.reload_unloaded(state).await?;
        }
        // Matched in place: an `Unloaded` phase's key is not copied.
        let action = match state.phase {
            // Never looked at: nothing to write, the cookie stays.
            Lifecycle::Unloaded(_) => CookieAction::Unchanged,
            Lifecycle::Flushed => self.removal(state),
            Lifecycle::Clean => self.touch_if_due(state, now).await?,
            Lifecycle::Dirty | Lifecycle::Renewing if state.body.is_empty() => {
                state.phase = Lifecycle::Clean;
                self.removal(state)
            }
            Lifecycle::Dirty => {
                let key = match state.body.stored.clone() {
                    None => self.create(state, now).await?,
                    Some(stored) => {
                        self.compare_and_write(state, &stored.key, CasWrite::Update)
                            .await?;
                        stored.key
                    }
                };
                self.set_cookie(&state.body, key, now)
            }
            Lifecycle::Renewing => {
                let old = state
                    .body
                    .stored
                    .clone()
                    .map(|s| s.key)
                    .ok_or(Error::Interrupted)?;
                let key = self.rotate(state, &old, now).await?;
                self.set_cookie(&state.body, key, now)
            }
        };
        if matches!(state.phase, Lifecycle::Dirty | Lifecycle::Renewing) {
            state.phase = Lifecycle::Clean;
        }
        state.body.changes.reset();
        self.inner.modified.store(false, Ordering::Relaxed);
        let decided = action != CookieAction::Unchanged;
        if decided {
            state.cookie_due = Some(action);
        }
        Ok(decided)
    }

    /// Loads an `Unloaded` session in place (for always-save configurations).
    async fn reload_unloaded(&self, state: &mut State) -> Result<()> {
        if let Lifecycle::Unloaded(key) = &state.phase {
            let key = key.clone();
            if let Some(record) = self.ops().load(&key).await? {
                self.take_record(&mut state.body, record);
                state.phase = Lifecycle::Clean;
                self.verify_auth_hash(state).await?;
            }
            if matches!(state.phase, Lifecycle::Unloaded(_)) {
                state.phase = Lifecycle::Clean;
            }
        }
        Ok(())
    }

    /// Writes what this request changed and says what the cookie should become.
    ///
    /// - changed and keyless with data: `create` under a fresh key;
    /// - changed with a key: compare-and-swap `update`, replaying this request's changes
    ///   on a concurrent write; [`Error::Interrupted`] if the session was deleted meanwhile
    ///   (never re-created);
    /// - a pending rotation: the old record is deleted at its version, the new one created;
    /// - unchanged but loaded: a cheap `touch` when the idle expiry can move forward by at
    ///   least the configured touch interval;
    /// - empty or logged out: nothing is stored, and the cookie is removed if the request
    ///   sent one.
    ///
    /// # Errors
    ///
    /// Store errors, [`Error::Interrupted`], [`Error::TooLarge`]; on error the request's
    /// changes stay in the handle (nothing is lost) and the stored session is as it was
    /// (for a rotation, at worst the old record is deleted and the new one not yet
    /// created: the next save creates it).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{CookieAction, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// // Untouched, cookie-less: nothing to do.
    /// assert_eq!(s.save().await?, CookieAction::Unchanged);
    /// s.insert("k", "v").await?;
    /// assert!(matches!(s.save().await?, CookieAction::Set { .. }));
    /// # Ok(()) }
    /// ```
    pub async fn save(&self) -> Result<CookieAction> {
        let mut state = self.inner.state.lock().await;
        if self.save_locked(&mut state).await? {
            Ok(state.cookie_due.clone().unwrap_or(CookieAction::Unchanged))
        } else {
            Ok(CookieAction::Unchanged)
        }
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
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{CookieAction, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.insert("k", 1).await?;
    /// let by_handler = s.save().await?;          // the handler saves early
    /// assert!(matches!(by_handler, CookieAction::Set { .. }));
    /// assert_eq!(s.save().await?, CookieAction::Unchanged);
    /// assert_eq!(s.finish().await?, by_handler); // the layer still sets the cookie
    /// # Ok(()) }
    /// ```
    pub async fn finish(&self) -> Result<CookieAction> {
        let mut state = self.inner.state.lock().await;
        self.save_locked(&mut state).await?;
        Ok(state.cookie_due.clone().unwrap_or(CookieAction::Unchanged))
    }
}
