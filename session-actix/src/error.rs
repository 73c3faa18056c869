//! How session failures become actix-web responses.

use std::sync::Arc;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

pub use session_http::SESSION_INTERRUPTED;

session_http::session_error! {
    /// A session error returned by a handler.
    ///
    /// Handlers can use `?` on every [`Session`](session_core::Session) call and return
    /// `Result<_, SessionError>`. It implements [`ResponseError`]; the
    /// [`SessionMiddleware`](crate::SessionMiddleware) around the route renders it, once, with
    /// its own configuration, exactly like a failure of its own save:
    ///
    /// | error | status | body |
    /// |---|---|---|
    /// | [`Error::Interrupted`](session_core::Error::Interrupted) (deleted or revoked meanwhile) | 400 | [`SESSION_INTERRUPTED`] |
    /// | [`Error::TooLarge`](session_core::Error::TooLarge) | 413 ([`with_too_large_status`](crate::SessionMiddlewareBuilder::with_too_large_status)) | a short text |
    /// | [`is_unavailable`](session_core::Error::is_unavailable) (store outage) | 503 + `Retry-After` ([`with_unavailable_status`](crate::SessionMiddlewareBuilder::with_unavailable_status)) | a short text |
    /// | anything else | 500 | a short text |
    ///
    /// [`SessionMiddlewareBuilder::with_error_handler`](crate::SessionMiddlewareBuilder::with_error_handler)
    /// replaces the whole response. When a handler returns a `SessionError` the middleware
    /// saves nothing and sets no cookie.
    ///
    /// Outside a `SessionMiddleware`, the response is the default one of the table above.
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::ResponseError;
    /// use session_kit::{Error, StoreError};
    /// use session_kit::actix::SessionError;
    ///
    /// let err = SessionError::from(Error::from(StoreError::unavailable(std::io::Error::other("down"))));
    /// assert_eq!(err.status_code().as_u16(), 503);
    /// assert_eq!(SessionError::from(Error::Interrupted).status_code().as_u16(), 400);
    /// assert_eq!(SessionError::from(Error::TooLarge { len: 9000, max: 4096 }).status_code().as_u16(), 413);
    /// ```
    SessionError, "session_kit::actix", core = "session_kit"
}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        status_code(session_http::ErrorPolicy::default().status(&self.0))
    }

    fn error_response(&self) -> HttpResponse {
        // Without a middleware around the route: the default rendering. With one, the
        // middleware replaces this with its own (and logs the error once).
        default_response(session_http::ErrorPolicy::default().decide(&self.0))
    }
}

/// A custom mapping from a session error to a response.
pub(crate) type ErrorHandler =
    Arc<dyn Fn(&session_core::Error) -> HttpResponse + Send + Sync + 'static>;

/// A status code from the shared rules (always one a [`StatusCode`] came from).
pub(crate) fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The middleware's rendering of a session error: the custom handler's response, or the
/// default text response with the configured statuses. Logs the error once.
pub(crate) fn render(
    statuses: &session_http::ErrorPolicy,
    handler: Option<&ErrorHandler>,
    err: &session_core::Error,
) -> HttpResponse {
    if let Some(handler) = handler {
        session_http::log_error(err);
        return handler(err);
    }
    default_response(statuses.response(err))
}

fn default_response(decided: session_http::ErrorResponse) -> HttpResponse {
    let mut res = HttpResponse::with_body(status_code(decided.status), decided.body.to_owned());
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(decided.content_type));
    if let Some(after) = decided.retry_after {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(after));
    }
    res.map_into_boxed_body()
}
