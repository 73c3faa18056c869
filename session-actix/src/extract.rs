//! The request's session as an actix-web extractor.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

pub use session_http::DefaultSession;

session_http::tagged_session! {
    /// The session of the current request: an extractor, filled in by the
    /// [`SessionMiddleware`](crate::SessionMiddleware) tagged `T`.
    ///
    /// It dereferences to [`session_core::Session`], so every handle method is available.
    /// Nothing is loaded from the store until the handler reads or writes the session.
    /// `Option<ActixSession>` gives `None` instead of a 500 when no middleware wraps the
    /// route.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::actix::{ActixSession, SessionError};
    ///
    /// async fn visits(session: ActixSession) -> Result<String, SessionError> {
    ///     let n = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
    ///     Ok(format!("visit number {n}"))
    /// }
    /// let app = actix_web::App::new()
    ///     .wrap(session_kit::actix::SessionMiddleware::new(session_kit::MemoryStore::new()))
    ///     .route("/", actix_web::web::get().to(visits));
    /// # let _ = app;
    /// ```
    ActixSession, "session_kit::actix", core = "session_kit"
}

impl<T: 'static> FromRequest for ActixSession<T> {
    type Error = MissingSessionMiddleware;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(session_of::<T>(req))
    }
}

/// The session the middleware tagged `T` put on `req`.
pub(crate) fn session_of<T: 'static>(
    req: &HttpRequest,
) -> Result<ActixSession<T>, MissingSessionMiddleware> {
    req.extensions()
        .get::<ActixSession<T>>()
        .cloned()
        .ok_or(MissingSessionMiddleware {
            tag: std::any::type_name::<T>(),
        })
}

/// The rejection when a handler asks for an [`ActixSession`] but no
/// [`SessionMiddleware`](crate::SessionMiddleware) with that tag wraps the route: a
/// programming error, answered with 500 and logged.
///
/// # Examples
///
/// ```
/// use actix_web::ResponseError;
/// let r = session_kit::actix::MissingSessionMiddleware { tag: "DefaultSession" };
/// assert!(r.to_string().contains("SessionMiddleware"));
/// assert_eq!(r.status_code().as_u16(), 500);
/// ```
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no SessionMiddleware (tag {tag}) wraps this route; add `.wrap(SessionMiddleware::new(..))` around it")]
pub struct MissingSessionMiddleware {
    /// The type name of the tag that was asked for.
    pub tag: &'static str,
}

impl ResponseError for MissingSessionMiddleware {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        tracing::error!(
            tag = self.tag,
            "ActixSession extractor used without its SessionMiddleware"
        );
        HttpResponse::InternalServerError()
            .content_type(session_http::TEXT_PLAIN)
            .body("Internal server error: session middleware missing.")
    }
}
