//! # session-http
//!
//! The HTTP rules of the `session` crates, once, for every web framework: the tower/axum
//! layer (`session-tower`) and the actix-web middleware (`session-actix`) are thin
//! adapters over this crate. It has no HTTP library dependency (actix-web 4 and axum use
//! different `http` crate versions): requests are seen through [`RequestHead`] (header
//! values as `&str`, the peer IP) and decisions come back as strings, status codes and
//! small enums.
//!
//! Applications do not use this crate directly: `session-kit` does not re-export it; its
//! types reach an application through the integrations (`session_kit::CookieConfigError`,
//! `session_kit::DeviceMetadata`, `session_kit::IpSource`, `session_kit::SameSite`, and
//! `session_kit::actix::...`). This crate is for writing an integration for another
//! framework.
//!
//! - [`CookieSettings`]: the cookie's name, path, domain and flags, validated as they are
//!   set (HTTP token names, `/` paths, host-name domains, and the browsers' `__Host-` /
//!   `__Secure-` prefix rules); reading the session key from one or more `Cookie` header
//!   values (the first well-formed value under the name wins); the `Set-Cookie` and
//!   removal values (written exactly as the `cookie` crate writes them, without its
//!   general-purpose formatter).
//! - [`ErrorPolicy`]: session error → status (400 interrupted, 413 too large, 503 +
//!   `Retry-After` outage, 500) and the default bodies.
//! - [`cache_control`] and [`vary_with_cookie`]: `Cache-Control: private, no-store` on
//!   responses that set the cookie (unless the handler chose one), `Vary: Cookie` merged.
//! - [`DeviceMetadata`]: User-Agent (truncated) and client IP (connection or a trusted
//!   proxy header).
//! - Login required: [`require_user`] turns a session's
//!   [`Session::require_user`](session_core::Session::require_user) into a user id or a
//!   [`LoginFailure`], and [`NotLoggedInResponse`] is the 401 or `303 See Other` answer.
//! - [`tagged_session!`]: an integration's extractor type (a session handle tagged with
//!   the layer's tag type, [`DefaultSession`] by default).
//! - [`Rules`]: all of it together, as an integration uses it per request: [`Rules::start`]
//!   builds the lazy session, [`Rules::finish`] decides what the response gets.
//!
//! ## An integration in a few lines
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::net::IpAddr;
//! use session_http::{Finish, RequestHead, Rules};
//!
//! struct Req(Vec<(&'static str, String)>);
//! impl RequestHead for Req {
//!     fn header_values(&self, name: &str) -> Vec<&str> {
//!         self.0.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_str()).collect()
//!     }
//!     fn peer_ip(&self) -> Option<IpAddr> { None }
//! }
//!
//! let rules = Rules::new(session_memory::MemoryStore::new());
//! let session = rules.start(&Req(vec![])).await;
//! session.insert("n", 1).await.unwrap(); // the handler
//! let Finish { set_cookie, vary, error } = rules.finish(&session, 200).await;
//! assert!(set_cookie.unwrap().starts_with("id="));
//! assert!(vary && error.is_none());
//! # }
//! ```
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use session_core::{CookieAction, Session, SessionConfig, SessionStore};

mod cookie;
mod device;
mod headers;
mod login;
mod status;
mod tagged;

#[doc(hidden)]
pub mod __private {
    //! What [`tagged_session!`](crate::tagged_session) expands to; not an API.
    pub use session_core::{Error, RequireUserError, Session, StoreError};
}

pub use crate::cookie::{CookieConfigError, CookiePrefix, CookieSettings, SentCookie};
pub use crate::device::{
    ip_from_header, parse_ip, truncate_user_agent, DeviceMetadata, IpSource, MAX_USER_AGENT_LEN,
};
pub use crate::headers::{cache_control, vary_with_cookie, CacheControl, PRIVATE_NO_STORE};
pub use crate::login::{is_header_value, require_user, LoginFailure, NotLoggedInResponse};
pub use crate::status::{
    log_error, not_logged_in_status, ErrorPolicy, ErrorResponse, LOGIN_REQUIRED, RETRY_AFTER_SECS,
    SESSION_FAILED, SESSION_INTERRUPTED, SESSION_TOO_LARGE, SESSION_UNAVAILABLE, TEXT_PLAIN,
};
pub use crate::tagged::DefaultSession;
pub use ::cookie::SameSite;

/// What an integration shows of a request: its header values and the peer address.
///
/// # Examples
///
/// ```
/// use std::net::IpAddr;
/// use session_http::RequestHead;
///
/// struct NoHeaders;
/// impl RequestHead for NoHeaders {
///     fn header_values(&self, _name: &str) -> Vec<&str> { Vec::new() }
///     fn peer_ip(&self) -> Option<IpAddr> { None }
/// }
/// assert!(NoHeaders.header_values("cookie").is_empty());
/// ```
pub trait RequestHead {
    /// Every value of header `name` (lower-case) that is valid text, in the order
    /// received.
    fn header_values(&self, name: &str) -> Vec<&str>;
    /// The IP address of the connection's peer, if known.
    fn peer_ip(&self) -> Option<IpAddr>;
}

/// The store, the session policy, the cookie settings, the error statuses and the device
/// metadata of one session integration (one layer or middleware).
///
/// # Examples
///
/// ```
/// use session_http::{CookieSettings, Rules};
///
/// let mut rules = Rules::new(session_memory::MemoryStore::new());
/// rules.cookie = CookieSettings::default().with_name("sid")?;
/// assert_eq!(rules.cookie.name(), "sid");
/// # Ok::<(), session_http::CookieConfigError>(())
/// ```
#[derive(Clone)]
pub struct Rules {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// The session policy (expiry, codec, always-save, limits).
    pub config: Arc<SessionConfig>,
    /// The cookie.
    pub cookie: CookieSettings,
    /// The error statuses.
    pub errors: ErrorPolicy,
    /// Which device metadata to record.
    pub device: DeviceMetadata,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("config", &self.config)
            .field("cookie", &self.cookie)
            .field("errors", &self.errors)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// What the response gets, as [`Rules::finish`] decided it.
///
/// # Examples
///
/// ```
/// let f = session_http::Finish::default();
/// assert!(f.set_cookie.is_none() && !f.vary && f.error.is_none());
/// ```
#[derive(Debug, Default)]
pub struct Finish {
    /// A `Set-Cookie` value to append; then also apply [`cache_control`] to the response.
    pub set_cookie: Option<String>,
    /// Merge `Vary: Cookie` ([`vary_with_cookie`]): the session was used.
    pub vary: bool,
    /// The save failed: replace the response with this error's rendering
    /// ([`ErrorPolicy::response`] or the integration's custom handler); no cookie is sent.
    pub error: Option<session_core::Error>,
}

impl Rules {
    /// Rules over `store` with the default policy, cookie, statuses and no device metadata.
    ///
    /// # Examples
    ///
    /// ```
    /// let rules = session_http::Rules::new(session_memory::MemoryStore::new());
    /// assert_eq!(rules.cookie.name(), "id");
    /// ```
    pub fn new(store: impl SessionStore) -> Self {
        Self::from_shared_store(Arc::new(store))
    }

    /// Rules over a store that is already shared.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::SessionStore;
    /// let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    /// let rules = session_http::Rules::from_shared_store(store.clone());
    /// assert!(Arc::ptr_eq(&rules.store, &store));
    /// ```
    pub fn from_shared_store(store: Arc<dyn SessionStore>) -> Self {
        Self {
            store,
            config: Arc::new(SessionConfig::default()),
            cookie: CookieSettings::default(),
            errors: ErrorPolicy::default(),
            device: DeviceMetadata::default(),
        }
    }

    /// The lazy session of a request: the cookie parsed once (no store call until the
    /// handler touches the session), the device metadata handed over.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::net::IpAddr;
    /// # struct Req;
    /// # impl session_http::RequestHead for Req {
    /// #     fn header_values(&self, name: &str) -> Vec<&str> { if name == "cookie" { vec!["id=short"] } else { vec![] } }
    /// #     fn peer_ip(&self) -> Option<IpAddr> { None }
    /// # }
    /// let rules = session_http::Rules::new(session_memory::MemoryStore::new());
    /// let session = rules.start(&Req).await;
    /// assert!(session.cookie_sent());
    /// assert!(!session.is_accessed());
    /// # }
    /// ```
    ///
    /// The request is read before this returns; the future holds no borrow of it.
    pub fn start(&self, req: &dyn RequestHead) -> impl Future<Output = Session> + Send + 'static {
        let cookie = self.cookie.find(req.header_values("cookie"));
        let session = Session::with_key(
            self.store.clone(),
            self.config.clone(),
            cookie.key,
            cookie.sent,
        );
        let (user_agent, ip) = if self.device.is_enabled() {
            self.device.extract(req)
        } else {
            (None, None)
        };
        async move {
            if user_agent.is_some() {
                session.set_user_agent(user_agent).await;
            }
            if ip.is_some() {
                session.set_ip(ip).await;
            }
            session
        }
    }

    /// The cookie rules after the handler, for a response with `status` (the handler did
    /// not return a session error; an integration renders that itself, with `vary`):
    ///
    /// - **5xx**: nothing is saved and no cookie is sent (`vary` still, if the session was
    ///   used);
    /// - otherwise the session is saved if modified (or touched, with always-save), and
    ///   `set_cookie` is the key's `Set-Cookie` or the removal cookie;
    /// - a failed save comes back as `error`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # struct Req;
    /// # impl session_http::RequestHead for Req {
    /// #     fn header_values(&self, _: &str) -> Vec<&str> { vec![] }
    /// #     fn peer_ip(&self) -> Option<std::net::IpAddr> { None }
    /// # }
    /// let rules = session_http::Rules::new(session_memory::MemoryStore::new());
    /// let session = rules.start(&Req).await;
    /// session.insert("n", 1).await.unwrap();
    /// let f = rules.finish(&session, 500).await;
    /// assert!(f.set_cookie.is_none() && f.vary, "a 5xx saves nothing");
    /// # }
    /// ```
    pub async fn finish(&self, session: &Session, status: u16) -> Finish {
        let mut out = Finish {
            vary: session.is_accessed(),
            ..Finish::default()
        };
        if (500..600).contains(&status) {
            tracing::debug!(status, "server error response: session not saved");
            return out;
        }
        // `finish` also returns the cookie an earlier save of this request made due (a
        // handler that called `save` itself).
        match session.finish().await {
            Ok(CookieAction::Set { key, max_age }) => {
                out.set_cookie = Some(self.cookie.set_cookie(&key, max_age));
                out.vary = true;
            }
            Ok(CookieAction::Remove) => {
                out.set_cookie = Some(self.cookie.removal_cookie());
                out.vary = true;
            }
            Ok(CookieAction::Unchanged) => {}
            Err(err) => {
                out.error = Some(err);
                out.vary = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Req(Vec<(&'static str, String)>, Option<IpAddr>);
    impl RequestHead for Req {
        fn header_values(&self, name: &str) -> Vec<&str> {
            self.0
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        }
        fn peer_ip(&self) -> Option<IpAddr> {
            self.1
        }
    }

    #[tokio::test]
    async fn start_and_finish_apply_the_rules() {
        let mut rules = Rules::new(session_memory::MemoryStore::new());
        rules.device = DeviceMetadata::all();
        let peer = "127.0.0.1".parse().ok();
        let session = rules
            .start(&Req(vec![("user-agent", "UA/1".into())], peer))
            .await;
        session.insert("n", 1).await.unwrap();
        let f = rules.finish(&session, 200).await;
        let set = f.set_cookie.unwrap();
        let key = set.split(';').next().unwrap()["id=".len()..].to_owned();
        let record = rules
            .store
            .load(&session_core::SessionKey::parse(&key).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.user_agent.as_deref(), Some("UA/1"));
        assert_eq!(record.ip.as_deref(), Some("127.0.0.1"));

        // Untouched: nothing, no Vary.
        let cookie = format!("id={key}");
        let session = rules.start(&Req(vec![("cookie", cookie)], None)).await;
        let f = rules.finish(&session, 200).await;
        assert!(f.set_cookie.is_none() && !f.vary && f.error.is_none());

        // A malformed cookie: removed.
        let session = rules
            .start(&Req(vec![("cookie", "id=short".into())], None))
            .await;
        let f = rules.finish(&session, 404).await;
        assert!(f.set_cookie.unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn vary_merges_and_is_not_duplicated() {
        assert_eq!(
            vary_with_cookie(&["Accept-Encoding", "Origin"]).as_deref(),
            Some("Accept-Encoding, Origin, Cookie")
        );
        assert_eq!(vary_with_cookie(&["Accept-Encoding, Origin, Cookie"]), None);
        assert_eq!(vary_with_cookie(&["*"]), None);
    }

    #[test]
    fn cache_control_keeps_the_handlers_value() {
        assert_eq!(cache_control(&[]), CacheControl::Insert(PRIVATE_NO_STORE));
        assert_eq!(cache_control(&["no-cache"]), CacheControl::Keep);
        assert_eq!(cache_control(&["public", "max-age=5"]), CacheControl::Keep);
    }

    #[test]
    fn trusted_header_takes_the_last_entry_of_the_last_line() {
        assert_eq!(
            ip_from_header(&["1.1.1.1", "6.6.6.6, 10.0.0.7"]),
            "10.0.0.7".parse().ok()
        );
    }
}
