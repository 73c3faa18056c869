//! How session failures become HTTP responses: one [`ErrorPolicy`] decides the status and
//! the default body of every session error, whichever framework sends it.

/// The message of the 400 sent when a session was deleted while the request ran
/// (Django's `SessionInterrupted`).
///
/// # Examples
///
/// ```
/// // With `session-kit`, the constant is in the `actix` module (feature `actix`).
/// assert!(session_kit::actix::SESSION_INTERRUPTED.contains("session was deleted"));
/// ```
pub const SESSION_INTERRUPTED: &str = "The request's session was deleted before the request \
completed. The user may have logged out in a concurrent request, for example.";

/// The body of the 413 sent when the encoded session is over
/// [`SessionConfig::with_max_data_len`](session_core::SessionConfig::with_max_data_len).
///
/// # Examples
///
/// ```
/// assert!(session_http::SESSION_TOO_LARGE.contains("too large"));
/// ```
pub const SESSION_TOO_LARGE: &str = "The session data is too large.";

/// The body of the 503 sent on a store outage.
///
/// # Examples
///
/// ```
/// assert!(session_http::SESSION_UNAVAILABLE.contains("unavailable"));
/// ```
pub const SESSION_UNAVAILABLE: &str =
    "The session store is temporarily unavailable. Please try again.";

/// The body of the 500 sent for any other session error.
///
/// # Examples
///
/// ```
/// assert!(session_http::SESSION_FAILED.contains("session"));
/// ```
pub const SESSION_FAILED: &str = "Internal server error (session).";

/// The `Retry-After` value (seconds) sent with a 503.
///
/// # Examples
///
/// ```
/// assert_eq!(session_http::RETRY_AFTER_SECS, "5");
/// ```
pub const RETRY_AFTER_SECS: &str = "5";

/// The `Content-Type` of the default error bodies.
///
/// # Examples
///
/// ```
/// assert!(session_http::TEXT_PLAIN.starts_with("text/plain"));
/// ```
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The mapping from session errors to statuses:
///
/// | error | status | body |
/// |---|---|---|
/// | [`Error::Interrupted`](session_core::Error::Interrupted) (deleted or revoked meanwhile) | 400 | [`SESSION_INTERRUPTED`] |
/// | [`Error::TooLarge`](session_core::Error::TooLarge) | 413 (`too_large_status`) | [`SESSION_TOO_LARGE`] |
/// | [`is_unavailable`](session_core::Error::is_unavailable) (store outage) | 503 + `Retry-After` (`unavailable_status`) | [`SESSION_UNAVAILABLE`] |
/// | anything else | 500 | [`SESSION_FAILED`] |
///
/// `Retry-After` is sent whenever the status is 503.
///
/// # Examples
///
/// ```
/// use session_core::{Error, StoreError};
/// use session_http::ErrorPolicy;
///
/// let policy = ErrorPolicy::default();
/// let outage = Error::from(StoreError::unavailable(std::io::Error::other("down")));
/// let r = policy.response(&outage);
/// assert_eq!((r.status, r.retry_after), (503, Some("5")));
/// assert_eq!(policy.status(&Error::Interrupted), 400);
/// assert_eq!(policy.status(&Error::TooLarge { len: 9000, max: 4096 }), 413);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPolicy {
    /// The status for a store outage (default 503).
    pub unavailable_status: u16,
    /// The status for a session over the size limit (default 413).
    pub too_large_status: u16,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        Self {
            unavailable_status: 503,
            too_large_status: 413,
        }
    }
}

/// The default response for a session error, as [`ErrorPolicy::response`] decided it.
///
/// # Examples
///
/// ```
/// let r = session_http::ErrorPolicy::default().response(&session_core::Error::Interrupted);
/// assert_eq!(r.status, 400);
/// assert_eq!(r.body, session_http::SESSION_INTERRUPTED);
/// assert_eq!(r.content_type, session_http::TEXT_PLAIN);
/// assert_eq!(r.retry_after, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse {
    /// The status code.
    pub status: u16,
    /// The text body.
    pub body: &'static str,
    /// The `Content-Type` of the body.
    pub content_type: &'static str,
    /// The `Retry-After` header value, for a 503.
    pub retry_after: Option<&'static str>,
}

impl ErrorPolicy {
    /// The status and default body for `err`.
    fn classify(&self, err: &session_core::Error) -> (u16, &'static str) {
        match err {
            session_core::Error::Interrupted => (400, SESSION_INTERRUPTED),
            session_core::Error::TooLarge { .. } => (self.too_large_status, SESSION_TOO_LARGE),
            err if err.is_unavailable() => (self.unavailable_status, SESSION_UNAVAILABLE),
            _ => (500, SESSION_FAILED),
        }
    }

    /// The status `err` gets.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = session_http::ErrorPolicy { unavailable_status: 500, ..Default::default() };
    /// assert_eq!(p.status(&session_core::Error::KeyCollisions { attempts: 3 }), 500);
    /// ```
    pub fn status(&self, err: &session_core::Error) -> u16 {
        self.classify(err).0
    }

    /// The default response for `err`, and the log event for it (one per error: info for
    /// an interrupted session, warn for a size-limit hit or an outage, error otherwise).
    /// An integration with a custom error handler calls [`log_error`] and its handler
    /// instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = session_http::ErrorPolicy::default().response(&session_core::Error::TooLarge { len: 2, max: 1 });
    /// assert_eq!((r.status, r.body), (413, session_http::SESSION_TOO_LARGE));
    /// ```
    pub fn response(&self, err: &session_core::Error) -> ErrorResponse {
        log_error(err);
        self.decide(err)
    }

    /// The default response for `err`, without the log event (for a rendering that a
    /// middleware will replace).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = session_http::ErrorPolicy::default().decide(&session_core::Error::Interrupted);
    /// assert_eq!(r.status, 400);
    /// ```
    pub fn decide(&self, err: &session_core::Error) -> ErrorResponse {
        let (status, body) = self.classify(err);
        ErrorResponse {
            status,
            body,
            content_type: TEXT_PLAIN,
            retry_after: (status == 503).then_some(RETRY_AFTER_SECS),
        }
    }
}

/// The one log event for a session error answered by an integration (never the key or the
/// data).
///
/// # Examples
///
/// ```
/// session_http::log_error(&session_core::Error::Interrupted);
/// ```
pub fn log_error(err: &session_core::Error) {
    match err {
        session_core::Error::Interrupted => {
            tracing::info!("session deleted or revoked during the request; answering 400");
        }
        session_core::Error::TooLarge { len, max } => {
            tracing::warn!(len, max, "session over the size limit; nothing saved");
        }
        err if err.is_unavailable() => {
            tracing::warn!(error = %err, "session store unavailable");
        }
        err => tracing::error!(error = %err, "session error"),
    }
}

/// The body of the 401 sent to a visitor who is not logged in (a login-required extractor
/// without a configured login URL).
///
/// # Examples
///
/// ```
/// // With `session-kit`, the constant is in the `actix` module (feature `actix`).
/// assert_eq!(session_kit::actix::LOGIN_REQUIRED, "Login required.");
/// ```
pub const LOGIN_REQUIRED: &str = "Login required.";

/// The status for a visitor who is not logged in: `303 See Other` when there is a
/// redirect location (the configured login URL with `next=`, from
/// [`NotLoggedIn::redirect_location`](session_core::NotLoggedIn::redirect_location)) that is
/// a valid header value, 401 otherwise: the status of
/// [`NotLoggedInResponse::new`](crate::NotLoggedInResponse::new).
///
/// # Examples
///
/// ```
/// assert_eq!(session_http::not_logged_in_status(None), 401);
/// assert_eq!(session_http::not_logged_in_status(Some("/login?next=/")), 303);
/// assert_eq!(session_http::not_logged_in_status(Some("/login\n")), 401);
/// ```
pub fn not_logged_in_status(location: Option<&str>) -> u16 {
    if location.is_some_and(crate::is_header_value) {
        303
    } else {
        401
    }
}
