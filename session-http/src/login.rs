//! Login required (Django's `login_required`), decided once for every framework: what a
//! login-required extractor does with [`Session::require_user`], and what the answer to
//! a visitor who is not logged in is made of. The adapters only turn a
//! [`NotLoggedInResponse`] into their framework's response type.

use session_core::{RequireUserError, Session};

use crate::status::{LOGIN_REQUIRED, TEXT_PLAIN};

/// Why a login-required extractor did not get a user id.
///
/// # Examples
///
/// ```
/// use session_core::{NotLoggedIn, RequireUserError};
/// use session_http::LoginFailure;
///
/// let outcome = RequireUserError::from(NotLoggedIn::new(Some("/login".into())));
/// let f = LoginFailure::new(outcome, "/cart?x=1");
/// assert_eq!(f, LoginFailure::NotLoggedIn { location: Some("/login?next=/cart%3Fx%3D1".into()) });
/// ```
#[derive(Debug)]
pub enum LoginFailure {
    /// No user is logged in (or the session was logged out by an auth hash mismatch):
    /// redirect to `location` (the login URL with `next=`) when a login URL is
    /// configured, else 401.
    NotLoggedIn {
        /// Where to redirect, if a login URL is configured.
        location: Option<String>,
    },
    /// The session could not be loaded; render it like any session error.
    Session(session_core::Error),
}

impl PartialEq for LoginFailure {
    /// Equal "not logged in" outcomes; session errors never compare equal.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::NotLoggedIn { location: a }, Self::NotLoggedIn { location: b }) => a == b,
            _ => false,
        }
    }
}

impl LoginFailure {
    /// The failure for `outcome`, for a request to `next` (its original path and query).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_core::{Error, RequireUserError};
    /// use session_http::LoginFailure;
    /// let f = LoginFailure::new(RequireUserError::from(Error::Interrupted), "/");
    /// assert!(matches!(f, LoginFailure::Session(Error::Interrupted)));
    /// ```
    pub fn new(outcome: RequireUserError, next: &str) -> Self {
        match outcome {
            RequireUserError::NotLoggedIn(not) => Self::NotLoggedIn {
                location: not.redirect_location(next),
            },
            RequireUserError::Session(err) => Self::Session(err),
            other => Self::Session(session_core::Error::Store(
                session_core::StoreError::backend(other),
            )),
        }
    }
}

/// The logged-in user's id of `session`, or why there is none, for a request to `next`
/// (its original path and query, for the login URL's `next=`). Loads the session, and so
/// checks its auth hash.
///
/// # Errors
///
/// [`LoginFailure::NotLoggedIn`] for an anonymous visitor, [`LoginFailure::Session`] when
/// the session cannot be loaded.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::Error> {
/// use std::sync::Arc;
/// use session_core::{Session, SessionConfig};
/// use session_http::{require_user, LoginFailure};
///
/// let config = Arc::new(SessionConfig::default().with_login_url("/login"));
/// let session = Session::new(Arc::new(session_memory::MemoryStore::new()), config, None);
/// let anonymous = require_user(&session, "/account").await.unwrap_err();
/// assert_eq!(anonymous, LoginFailure::NotLoggedIn { location: Some("/login?next=/account".into()) });
/// session.login("alice").await?;
/// assert_eq!(require_user(&session, "/account").await.ok().as_deref(), Some("alice"));
/// # Ok(()) }
/// ```
pub async fn require_user(session: &Session, next: &str) -> Result<String, LoginFailure> {
    session
        .require_user()
        .await
        .map_err(|outcome| LoginFailure::new(outcome, next))
}

/// The answer to a visitor who is not logged in: `303 See Other` with `Location` when a
/// login URL is configured, otherwise (or when the login URL is not a valid header value,
/// logged as an error) 401 with a short text body ([`LOGIN_REQUIRED`]).
///
/// # Examples
///
/// ```
/// use session_http::NotLoggedInResponse;
///
/// let r = NotLoggedInResponse::new(Some("/login?next=/"));
/// assert_eq!((r.status, r.location.as_deref(), r.body), (303, Some("/login?next=/"), ""));
/// let r = NotLoggedInResponse::new(None);
/// assert_eq!((r.status, r.location, r.body), (401, None, session_http::LOGIN_REQUIRED));
/// assert_eq!(r.content_type, Some(session_http::TEXT_PLAIN));
/// let r = NotLoggedInResponse::new(Some("/login\n"));
/// assert_eq!(r.status, 401, "not a valid Location header");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLoggedInResponse {
    /// 303 or 401.
    pub status: u16,
    /// The `Location` header (a valid header value), with a 303.
    pub location: Option<String>,
    /// The text body (empty for the redirect).
    pub body: &'static str,
    /// The `Content-Type` of a non-empty body.
    pub content_type: Option<&'static str>,
}

impl NotLoggedInResponse {
    /// The answer for a rejection redirecting to `location` (`None`: no login URL).
    ///
    /// # Examples
    ///
    /// See [`NotLoggedInResponse`].
    pub fn new(location: Option<&str>) -> Self {
        match location {
            Some(location) if is_header_value(location) => Self {
                status: 303,
                location: Some(location.to_owned()),
                body: "",
                content_type: None,
            },
            other => {
                if other.is_some() {
                    tracing::error!(
                        "the configured login URL is not a valid Location header; answering 401"
                    );
                }
                Self {
                    status: 401,
                    location: None,
                    body: LOGIN_REQUIRED,
                    content_type: Some(TEXT_PLAIN),
                }
            }
        }
    }
}

/// Whether `value` is a valid HTTP header value, by the rule of the `http` crate (0.2 and
/// 1.x alike): tab, or any byte from 32 up except DEL.
///
/// # Examples
///
/// ```
/// assert!(session_http::is_header_value("/login?next=/caf%C3%A9"));
/// assert!(!session_http::is_header_value("/login\r\nSet-Cookie: x"));
/// ```
pub fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= 32 && b != 127))
}
