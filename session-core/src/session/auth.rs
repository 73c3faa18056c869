//! Login helpers with Django's rules: the session auth hash (`_auth_user_hash`, so that a
//! password change logs out the user's other sessions, `update_session_auth_hash`) and
//! "login required" (`login_required`, `LOGIN_URL`).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{Body, Lifecycle, Session, State};
use crate::observe::emit;
use crate::{Error, Result, SessionConfig, StoreResult};

/// The session map key under which [`Session::login_with_auth_hash`] keeps the user id,
/// as Django's `SESSION_KEY`.
pub const AUTH_USER_KEY: &str = "_auth_user_id";

/// The session map key under which [`Session::login_with_auth_hash`] keeps the user's
/// auth hash, as Django's `HASH_SESSION_KEY`.
pub const AUTH_HASH_KEY: &str = "_auth_user_hash";

/// Where the *current* auth hash of a user comes from: the application's user table.
///
/// The hash is any string that changes when the user's credentials change, and that an
/// attacker cannot compute: Django uses an HMAC of the password hash
/// (`get_session_auth_hash`); a random "security stamp" column renewed at every password
/// change works as well. Never return the password hash itself.
///
/// When a session that carries a hash ([`Session::login_with_auth_hash`]) is loaded, the
/// handle asks the source configured with [`SessionConfig::with_auth_hash_source`] for
/// the user's current hash and compares them in constant time. On a mismatch, or when the
/// source answers `Ok(None)` (the user no longer exists), the session is flushed: its
/// record is deleted, the request sees an empty session and the HTTP layer removes the
/// cookie (Django's `get_user`). Sessions without a hash never call the source.
///
/// An error (use [`StoreError::unavailable`](crate::StoreError::unavailable) for an outage
/// of the user database, which the HTTP layers answer with 503) fails the access that
/// loaded the session; the session stays unloaded, so the next access checks again.
///
/// A closure works too, through [`auth_hash_fn`].
///
/// # Examples
///
/// ```
/// use session_kit::{async_trait, AuthHashSource, SessionConfig, StoreResult};
///
/// struct Users; // your user table
///
/// #[async_trait]
/// impl AuthHashSource for Users {
///     async fn current_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
///         // SELECT security_stamp FROM users WHERE id = $1
///         Ok((user_id == "alice").then(|| "stamp-1".to_owned()))
///     }
/// }
///
/// let config = SessionConfig::default().with_auth_hash_source(Users);
/// assert!(config.auth_hash_source().is_some());
/// ```
#[async_trait]
pub trait AuthHashSource: Send + Sync + 'static {
    /// The current auth hash of `user_id`, or `None` if the user no longer exists.
    async fn current_hash(&self, user_id: &str) -> StoreResult<Option<String>>;
}

/// An [`AuthHashSource`] made from an async closure; see [`auth_hash_fn`].
pub struct AuthHashFn<F>(F);

impl<F> std::fmt::Debug for AuthHashFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthHashFn")
    }
}

/// Wraps an async closure `user_id -> current hash` as an [`AuthHashSource`].
///
/// # Examples
///
/// ```
/// use session_kit::{auth_hash_fn, SessionConfig};
///
/// let config = SessionConfig::default().with_auth_hash_source(auth_hash_fn(|user_id: String| async move {
///     Ok(Some(format!("stamp-of-{user_id}")))
/// }));
/// # let _ = config;
/// ```
pub fn auth_hash_fn<F, Fut>(f: F) -> AuthHashFn<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StoreResult<Option<String>>> + Send + 'static,
{
    AuthHashFn(f)
}

#[async_trait]
impl<F, Fut> AuthHashSource for AuthHashFn<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StoreResult<Option<String>>> + Send + 'static,
{
    async fn current_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        (self.0)(user_id.to_owned()).await
    }
}

/// The "not logged in" outcome of [`Session::require_user`]: the HTTP layers answer it
/// with 401, or with a redirect to the configured login URL
/// ([`SessionConfig::with_login_url`], Django's `LOGIN_URL`).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use session_kit::{RequireUserError, Session, SessionConfig};
///
/// let config = Arc::new(SessionConfig::default().with_login_url("/accounts/login/"));
/// let s = Session::new(Arc::new(session_kit::MemoryStore::new()), config, None);
/// let Err(RequireUserError::NotLoggedIn(not)) = s.require_user().await else { unreachable!() };
/// assert_eq!(
///     not.redirect_location("/orders?page=2").as_deref(),
///     Some("/accounts/login/?next=/orders%3Fpage%3D2")
/// );
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("login required")]
pub struct NotLoggedIn {
    login_url: Option<String>,
}

impl NotLoggedIn {
    /// The outcome for a session configured with `login_url` (`None`: answer 401).
    ///
    /// # Examples
    ///
    /// ```
    /// let n = session_kit::NotLoggedIn::new(None);
    /// assert_eq!(n.login_url(), None);
    /// ```
    pub fn new(login_url: Option<String>) -> Self {
        Self { login_url }
    }

    /// The configured login URL, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = session_kit::NotLoggedIn::new(Some("/login".into()));
    /// assert_eq!(n.login_url(), Some("/login"));
    /// ```
    pub fn login_url(&self) -> Option<&str> {
        self.login_url.as_deref()
    }

    /// Where to redirect: the login URL with `next=` the original path and query
    /// (see [`login_redirect_url`]); `None` when no login URL is configured (answer 401).
    ///
    /// # Examples
    ///
    /// ```
    /// let n = session_kit::NotLoggedIn::new(Some("/login".into()));
    /// assert_eq!(n.redirect_location("/a b").as_deref(), Some("/login?next=/a%20b"));
    /// ```
    pub fn redirect_location(&self, next: &str) -> Option<String> {
        self.login_url
            .as_deref()
            .map(|url| login_redirect_url(url, next))
    }
}

/// What [`Session::require_user`] answers besides a user id.
///
/// # Examples
///
/// ```
/// use session_kit::{Error, NotLoggedIn, RequireUserError};
/// let e = RequireUserError::from(Error::Interrupted);
/// assert!(matches!(e, RequireUserError::Session(Error::Interrupted)));
/// let e = RequireUserError::from(NotLoggedIn::new(None));
/// assert_eq!(e.to_string(), "login required");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequireUserError {
    /// No user is logged in on this session (or it was logged out by an auth hash
    /// mismatch).
    #[error(transparent)]
    NotLoggedIn(#[from] NotLoggedIn),
    /// The session could not be loaded.
    #[error(transparent)]
    Session(#[from] Error),
}

/// The login URL with `next=` set to `next` (the original path and query), as Django's
/// `redirect_to_login`: `next` is percent-encoded except for `/` and the unreserved
/// characters (Python's `quote(next, safe="/")`), and appended with `&` when the login
/// URL already has a query.
///
/// # Examples
///
/// ```
/// use session_kit::login_redirect_url;
/// assert_eq!(login_redirect_url("/login/", "/a/b?x=1&y=é"), "/login/?next=/a/b%3Fx%3D1%26y%3D%C3%A9");
/// assert_eq!(login_redirect_url("/login?lang=fr", "/"), "/login?lang=fr&next=/");
/// ```
pub fn login_redirect_url(login_url: &str, next: &str) -> String {
    let mut out = String::with_capacity(login_url.len() + next.len() + 8);
    out.push_str(login_url);
    match login_url.find('?') {
        None => out.push('?'),
        Some(_) if login_url.ends_with(['?', '&']) => {}
        Some(_) => out.push('&'),
    }
    out.push_str("next=");
    for byte in next.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn same_hash(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl SessionConfig {
    /// Where the current auth hash of a user comes from; see [`AuthHashSource`]. Without
    /// one, the hash a session carries is not checked.
    ///
    /// # Examples
    ///
    /// See [`AuthHashSource`].
    pub fn with_auth_hash_source(self, source: impl AuthHashSource) -> Self {
        self.with_shared_auth_hash_source(Arc::new(source))
    }

    /// The same, for a source already behind an `Arc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::{auth_hash_fn, AuthHashSource, SessionConfig};
    /// let source: Arc<dyn AuthHashSource> = Arc::new(auth_hash_fn(|_user: String| async { Ok(None) }));
    /// let config = SessionConfig::default().with_shared_auth_hash_source(source);
    /// # let _ = config;
    /// ```
    pub fn with_shared_auth_hash_source(mut self, source: Arc<dyn AuthHashSource>) -> Self {
        self.auth_hash_source = Some(source);
        self
    }

    /// The configured [`AuthHashSource`], if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_kit::SessionConfig::default().auth_hash_source().is_none());
    /// ```
    pub fn auth_hash_source(&self) -> Option<&Arc<dyn AuthHashSource>> {
        self.auth_hash_source.as_ref()
    }

    /// Where "login required" sends a visitor who is not logged in (Django's
    /// `LOGIN_URL`, e.g. `"/accounts/login/"`); the original path goes in `next=`. Without
    /// one (the default), the HTTP layers answer 401.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_login_url("/accounts/login/");
    /// assert_eq!(c.login_url(), Some("/accounts/login/"));
    /// assert_eq!(SessionConfig::default().login_url(), None);
    /// ```
    pub fn with_login_url(mut self, url: impl Into<String>) -> Self {
        self.login_url = Some(url.into());
        self
    }

    /// The configured login URL, if any.
    ///
    /// # Examples
    ///
    /// See [`with_login_url`](Self::with_login_url).
    pub fn login_url(&self) -> Option<&str> {
        self.login_url.as_deref()
    }
}

impl Session {
    /// Logs `user_id` in like [`login`](Self::login), and stores `auth_hash`, a hash of
    /// the user's credential state, with the session (under [`AUTH_HASH_KEY`], with the
    /// user id under [`AUTH_USER_KEY`], as Django's `login` does). Every later load of the
    /// session compares it with the user's current hash from the configured
    /// [`AuthHashSource`] and logs the session out on a mismatch: changing the password
    /// (and so the hash) ends every session of the user, except the one that calls
    /// [`update_auth_hash`](Self::update_auth_hash).
    ///
    /// Django's rule on an already logged-in session: it is flushed (data dropped) when
    /// another user was logged in, or the same user with another hash; otherwise the key
    /// is rotated and the data kept.
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
    /// use std::sync::{Arc, Mutex};
    /// use session_kit::{auth_hash_fn, CookieAction, Session, SessionConfig, SessionStore};
    ///
    /// // The user table: alice's current stamp.
    /// let stamp = Arc::new(Mutex::new("v1".to_owned()));
    /// let users = stamp.clone();
    /// let config = Arc::new(SessionConfig::default().with_auth_hash_source(auth_hash_fn(
    ///     move |_user: String| {
    ///         let current = users.lock().unwrap().clone();
    ///         async move { Ok(Some(current)) }
    ///     },
    /// )));
    /// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
    ///
    /// let s = Session::new(store.clone(), config.clone(), None);
    /// s.login_with_auth_hash("alice", "v1").await?;
    /// let CookieAction::Set { key, .. } = s.save().await? else { unreachable!() };
    ///
    /// // The password changes elsewhere: the stamp moves, this session is logged out.
    /// *stamp.lock().unwrap() = "v2".to_owned();
    /// let later = Session::new(store.clone(), config, Some(key.as_str()));
    /// assert_eq!(later.user_id().await?, None);
    /// assert_eq!(later.save().await?, CookieAction::Remove);
    /// assert!(!store.exists(&key).await?);
    /// # Ok(()) }
    /// ```
    pub async fn login_with_auth_hash(
        &self,
        user_id: impl Into<String>,
        auth_hash: impl Into<String>,
    ) -> Result<()> {
        self.login_with(user_id.into(), Some(auth_hash.into()))
            .await
    }

    /// Stores the user's new auth hash after they changed their own password, so this
    /// session stays logged in while the others are logged out (Django's
    /// `update_session_auth_hash`); the key is rotated as well. Returns `false`, changing
    /// nothing, when no user is logged in.
    ///
    /// Load the session (for example with [`require_user`](Self::require_user)) *before*
    /// changing the password: a session first loaded after the change carries the old
    /// hash and is logged out by that load.
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
    /// # use session_kit::{Session, SessionConfig, AUTH_HASH_KEY};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// s.login_with_auth_hash("alice", "v1").await?;
    /// s.save().await?;
    /// // ... the password is changed in the user table, its hash is now "v2" ...
    /// assert!(s.update_auth_hash("v2").await?);
    /// s.save().await?;
    /// assert_eq!(s.get::<String>(AUTH_HASH_KEY).await?.as_deref(), Some("v2"));
    /// # Ok(()) }
    /// ```
    #[doc(alias = "update_session_auth_hash")]
    pub async fn update_auth_hash(&self, auth_hash: impl Into<String>) -> Result<bool> {
        let mut state = self.loaded().await?;
        let Some(user_id) = state.body.user_id.clone() else {
            return Ok(false);
        };
        self.cycle_locked(&mut state);
        self.set_locked(&mut state, AUTH_USER_KEY, Value::from(user_id));
        self.set_locked(&mut state, AUTH_HASH_KEY, Value::from(auth_hash.into()));
        Ok(true)
    }

    /// The logged-in user's id, or [`RequireUserError::NotLoggedIn`] (Django's
    /// `login_required`), which the HTTP layers answer with 401 or a redirect to the
    /// configured [login URL](SessionConfig::with_login_url). Loads the session, and so
    /// checks its auth hash.
    ///
    /// # Errors
    ///
    /// [`RequireUserError::NotLoggedIn`], or [`RequireUserError::Session`] when the session
    /// cannot be loaded.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::Error> {
    /// # use std::sync::Arc;
    /// # use session_kit::{RequireUserError, Session, SessionConfig};
    /// # let s = Session::new(Arc::new(session_kit::MemoryStore::new()), Arc::new(SessionConfig::default()), None);
    /// assert!(matches!(s.require_user().await, Err(RequireUserError::NotLoggedIn(_))));
    /// s.login("alice").await?;
    /// assert_eq!(s.require_user().await.ok().as_deref(), Some("alice"));
    /// # Ok(()) }
    /// ```
    pub async fn require_user(&self) -> std::result::Result<String, RequireUserError> {
        match self.user_id().await? {
            Some(user_id) => Ok(user_id),
            None => Err(NotLoggedIn::new(self.inner.config.login_url.clone()).into()),
        }
    }

    /// `login` and `login_with_auth_hash`: Django's `login()`.
    pub(super) async fn login_with(&self, user_id: String, hash: Option<String>) -> Result<()> {
        let mut state = self.loaded().await?;
        let flush = match &state.body.user_id {
            Some(current) if *current != user_id => true,
            Some(_) => hash.as_deref().is_some_and(|new| {
                let stored = state.body.data.get(AUTH_HASH_KEY);
                !same_hash(stored.as_deref().and_then(Value::as_str).unwrap_or(""), new)
            }),
            None => false,
        };
        if flush {
            self.flush_locked(&mut state).await?;
        } else {
            self.cycle_locked(&mut state);
        }
        self.set_user_locked(&mut state, Some(user_id.clone()));
        match hash {
            Some(hash) => {
                self.set_locked(&mut state, AUTH_USER_KEY, Value::from(user_id));
                self.set_locked(&mut state, AUTH_HASH_KEY, Value::from(hash));
            }
            None => {
                // A login without a hash leaves no stale hash behind.
                for key in [AUTH_HASH_KEY, AUTH_USER_KEY] {
                    if state.body.data.map_mut().shift_remove(key).is_some() {
                        state.body.changes.remove(key);
                    }
                }
            }
        }
        Ok(())
    }

    fn set_locked(&self, state: &mut State, key: &str, value: Value) {
        state.body.changes.set(key, value.clone());
        state.body.data.insert(key, value);
        state.mark_dirty();
        self.mark_modified();
    }

    /// Called right after a record was loaded into `state`: when it carries an auth hash
    /// and a source is configured, compares it with the user's current hash and flushes
    /// the session on a mismatch. Sessions without a hash cost nothing.
    pub(super) async fn verify_auth_hash(&self, state: &mut State) -> Result<()> {
        // Without a source there is nothing to check against: the data is not searched.
        let Some(source) = self.inner.config.auth_hash_source.clone() else {
            return Ok(());
        };
        let stored = match state.body.data.get(AUTH_HASH_KEY) {
            None => return Ok(()),
            Some(stored) => stored.as_str().map(str::to_owned),
        };
        let user = state.body.user_id.clone().or_else(|| {
            (state.body.data.get(AUTH_USER_KEY))
                .as_deref()
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let current = match &user {
            Some(user) => match source.current_hash(user).await {
                Ok(current) => current,
                Err(err) => {
                    self.unload(state);
                    return Err(err.into());
                }
            },
            None => None,
        };
        let valid = matches!((&stored, &current), (Some(s), Some(c)) if same_hash(s, c));
        if valid {
            return Ok(());
        }
        tracing::info!(
            user_known = current.is_some(),
            "session auth hash no longer matches the user's (credentials changed); session logged out"
        );
        emit::auth_hash_logout();
        if let Err(err) = self.flush_locked(state).await {
            self.unload(state);
            return Err(err);
        }
        Ok(())
    }

    /// Puts a just loaded session back to "not loaded" (after a failed auth hash check),
    /// so that the next access loads and checks it again instead of using it unchecked.
    fn unload(&self, state: &mut State) {
        if let Some(stored) = state.body.stored.take() {
            state.phase = Lifecycle::Unloaded(stored.key);
        }
        state.body = Body::default();
    }
}
