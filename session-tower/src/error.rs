//! How session failures become HTTP responses: one policy ([`ErrorPolicy`]) renders every
//! session error, whether the layer's own save failed or a handler returned a
//! [`SessionError`].

use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode};

pub use session_http::SESSION_INTERRUPTED;

session_http::session_error! {
    /// A session error returned by a handler.
    ///
    /// Handlers can use `?` on every [`Session`](session_core::Session) call and return
    /// `Result<_, SessionError>`. With the `axum` feature it implements `IntoResponse`; the
    /// [`SessionLayer`](crate::SessionLayer) around the route renders it, once, with its own
    /// configuration, exactly like a failure of its own save:
    ///
    /// | error | status | body |
    /// |---|---|---|
    /// | [`Error::Interrupted`](session_core::Error::Interrupted) (deleted or revoked meanwhile) | 400 | [`SESSION_INTERRUPTED`] |
    /// | [`Error::TooLarge`](session_core::Error::TooLarge) | 413 ([`with_too_large_status`](crate::SessionLayer::with_too_large_status)) | a short text |
    /// | [`is_unavailable`](session_core::Error::is_unavailable) (store outage) | 503 + `Retry-After` ([`with_unavailable_status`](crate::SessionLayer::with_unavailable_status)) | a short text |
    /// | anything else | 500 | a short text |
    ///
    /// [`SessionLayer::with_error_handler`](crate::SessionLayer::with_error_handler) replaces
    /// the whole response. When a handler returns a `SessionError` the layer saves nothing and
    /// sets no cookie.
    ///
    /// Outside a `SessionLayer` (a handler that built a [`Session`](session_core::Session)
    /// itself), the response is the status of the table above with an empty body.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{Error, SessionError, StoreError};
    ///
    /// let err = SessionError::from(Error::from(StoreError::unavailable(std::io::Error::other("down"))));
    /// assert_eq!(err.status().as_u16(), 503);
    /// assert_eq!(SessionError::from(Error::Interrupted).status().as_u16(), 400);
    /// assert_eq!(SessionError::from(Error::TooLarge { len: 9000, max: 4096 }).status().as_u16(), 413);
    /// ```
    SessionError, "session_kit", core = "session_kit"
}

impl SessionError {
    /// The status this error gets without a layer's configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionError;
    /// let err = SessionError(session_kit::Error::KeyCollisions { attempts: 3 });
    /// assert_eq!(err.status().as_u16(), 500);
    /// ```
    pub fn status(&self) -> StatusCode {
        ErrorPolicy::default().status(&self.0)
    }
}

/// Attached (as a response extension) to the bare response a [`SessionError`] became, so
/// the layer renders it with its own configuration.
#[derive(Clone)]
pub(crate) struct HandlerSessionError(pub(crate) Arc<session_core::Error>);

/// A custom mapping from a session error to a response (body as text).
pub(crate) type ErrorHandler =
    Arc<dyn Fn(&session_core::Error) -> Response<String> + Send + Sync + 'static>;

/// The layer's mapping from session errors to responses: the shared statuses
/// ([`session_http::ErrorPolicy`]) and an optional custom handler.
#[derive(Clone, Default)]
pub(crate) struct ErrorPolicy {
    pub(crate) statuses: session_http::ErrorPolicy,
    pub(crate) handler: Option<ErrorHandler>,
}

impl std::fmt::Debug for ErrorPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorPolicy")
            .field("unavailable_status", &self.statuses.unavailable_status)
            .field("too_large_status", &self.statuses.too_large_status)
            .field("custom_handler", &self.handler.is_some())
            .finish()
    }
}

/// A status code from the shared rules (always one a [`StatusCode`] came from).
pub(crate) fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ErrorPolicy {
    pub(crate) fn status(&self, err: &session_core::Error) -> StatusCode {
        status_code(self.statuses.status(err))
    }

    /// The response for `err`: the custom handler's, or the default text response. The one
    /// place where a session error becomes a response.
    pub(crate) fn response(&self, err: &session_core::Error) -> Response<String> {
        if let Some(handler) = &self.handler {
            session_http::log_error(err);
            return handler(err);
        }
        let decided = self.statuses.response(err);
        let mut res = Response::new(decided.body.to_owned());
        *res.status_mut() = status_code(decided.status);
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(decided.content_type),
        );
        if let Some(after) = decided.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(after));
        }
        res
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::response::IntoResponse for SessionError {
    // A bare response (status only) carrying the error; the layer renders it.
    fn into_response(self) -> axum::response::Response {
        let mut res = axum::response::Response::new(axum::body::Body::empty());
        *res.status_mut() = self.status();
        res.extensions_mut()
            .insert(HandlerSessionError(Arc::new(self.0)));
        res
    }
}
