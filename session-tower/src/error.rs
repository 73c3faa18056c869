//! How session failures become HTTP responses.

use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode};

/// The message of the 400 sent when a session was deleted while the request ran
/// (Django's `SessionInterrupted`).
pub const SESSION_INTERRUPTED: &str = "The request's session was deleted before the request \
completed. The user may have logged out in a concurrent request, for example.";

/// A session error returned by a handler.
///
/// Handlers can use `?` on every [`Session`](session_core::Session) call and return
/// `Result<_, SessionError>`. With the `axum` feature it implements `IntoResponse`: a
/// session deleted meanwhile becomes **400**, a store outage **503** (or what the layer was
/// configured with, see [`SessionLayer::with_unavailable_status`](crate::SessionLayer::with_unavailable_status)
/// and [`SessionLayer::with_error_handler`](crate::SessionLayer::with_error_handler)),
/// anything else **500**. The session layer recognises these responses and applies its own
/// configuration to them.
///
/// # Examples
///
/// ```
/// use session_tower::SessionError;
///
/// let err = SessionError::from(session_core::Error::unavailable(std::io::Error::other("down")));
/// assert_eq!(err.status().as_u16(), 503);
/// assert_eq!(SessionError::from(session_core::Error::NotFound).status().as_u16(), 400);
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SessionError(#[from] pub session_core::Error);

impl SessionError {
    /// The status this error gets without a layer's configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::SessionError;
    /// assert_eq!(SessionError(session_core::Error::KeyExists).status().as_u16(), 500);
    /// ```
    pub fn status(&self) -> StatusCode {
        ErrorPolicy::default().status(&self.0)
    }

    /// The wrapped core error.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::SessionError;
    /// assert!(matches!(SessionError(session_core::Error::NotFound).into_inner(), session_core::Error::NotFound));
    /// ```
    pub fn into_inner(self) -> session_core::Error {
        self.0
    }
}

/// Attached (as a response extension) to the response a [`SessionError`] became, so the
/// layer can re-map it with its own configuration.
#[derive(Clone)]
pub(crate) struct HandlerSessionError(pub(crate) Arc<session_core::Error>);

/// A custom mapping from a session error to a response (body as text).
pub(crate) type ErrorHandler =
    Arc<dyn Fn(&session_core::Error) -> Response<String> + Send + Sync + 'static>;

#[derive(Clone)]
pub(crate) struct ErrorPolicy {
    pub(crate) unavailable_status: StatusCode,
    pub(crate) handler: Option<ErrorHandler>,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        Self {
            unavailable_status: StatusCode::SERVICE_UNAVAILABLE,
            handler: None,
        }
    }
}

impl std::fmt::Debug for ErrorPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorPolicy")
            .field("unavailable_status", &self.unavailable_status)
            .field("custom_handler", &self.handler.is_some())
            .finish()
    }
}

impl ErrorPolicy {
    pub(crate) fn status(&self, err: &session_core::Error) -> StatusCode {
        match err {
            session_core::Error::NotFound => StatusCode::BAD_REQUEST,
            err if err.is_unavailable() => self.unavailable_status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response for `err`: the custom handler's, or the default text response.
    pub(crate) fn response(&self, err: &session_core::Error) -> Response<String> {
        if let Some(handler) = &self.handler {
            return handler(err);
        }
        let status = self.status(err);
        let body = match err {
            session_core::Error::NotFound => SESSION_INTERRUPTED.to_owned(),
            err if err.is_unavailable() => {
                "The session store is temporarily unavailable. Please try again.".to_owned()
            }
            _ => "Internal server error (session).".to_owned(),
        };
        let mut res = Response::new(body);
        *res.status_mut() = status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::response::IntoResponse for SessionError {
    fn into_response(self) -> axum::response::Response {
        let err = Arc::new(self.0);
        let mut res = ErrorPolicy::default()
            .response(&err)
            .map(axum::body::Body::from);
        res.extensions_mut().insert(HandlerSessionError(err));
        res
    }
}
