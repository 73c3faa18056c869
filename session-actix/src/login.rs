//! Login required (Django's `login_required`): the [`AuthUser`] extractor yields the
//! logged-in user's id, or rejects the request with 401, or with a `303 See Other` to the
//! login URL configured with
//! [`SessionConfig::with_login_url`](session_core::SessionConfig::with_login_url)
//! (`?next=` the original path and query).
//!
//! Extracting it loads the session, and so checks its auth hash
//! ([`Session::login_with_auth_hash`](session_core::Session::login_with_auth_hash)): a
//! session logged out by a password change elsewhere is rejected like any anonymous one,
//! and the middleware removes its cookie.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use session_http::{LoginFailure, NotLoggedInResponse};

use crate::error::status_code;
use crate::extract::session_of;
use crate::{ActixSession, DefaultSession, MissingSessionMiddleware, SessionError};

pub use session_http::LOGIN_REQUIRED;

session_http::auth_user! {
    /// The logged-in user of the request, with the session of the
    /// [`SessionMiddleware`](crate::SessionMiddleware) tagged `T`.
    ///
    /// An extractor: a handler that takes it runs only for a logged-in user; otherwise the
    /// request is answered with a [`LoginRejection`] (401, or a redirect to the configured
    /// login URL). Use [`OptionalAuthUser`] for pages that also serve anonymous visitors
    /// (actix-web's own `Option<AuthUser>` also turns a store outage into `None`).
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::{web, App};
    /// use session_kit::actix::{AuthUser, SessionMiddleware};
    /// use session_kit::SessionConfig;
    ///
    /// async fn account(user: AuthUser) -> String {
    ///     format!("hello {}", user.user_id())
    /// }
    ///
    /// let sessions = SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_config(SessionConfig::default().with_login_url("/login"))
    ///     .build()?;
    /// let app = App::new().wrap(sessions).route("/account", web::get().to(account));
    /// # let _ = app;
    /// # Ok::<(), session_kit::actix::CookieConfigError>(())
    /// ```
    AuthUser, ActixSession, "session_kit::actix"
}

/// The logged-in user if there is one: `None` for an anonymous visitor, a rejection only
/// for session failures (a store outage is still a 503).
///
/// # Examples
///
/// ```
/// use session_kit::actix::OptionalAuthUser;
///
/// async fn home(OptionalAuthUser(user): OptionalAuthUser) -> String {
///     user.map_or_else(|| "hello stranger".to_owned(), |u| format!("hello {}", u.user_id()))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct OptionalAuthUser<T = DefaultSession>(pub Option<AuthUser<T>>);

session_http::login_rejection! {
    /// Why [`AuthUser`] rejected a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::ResponseError;
    /// use session_kit::actix::LoginRejection;
    ///
    /// let r = LoginRejection::NotLoggedIn { location: None };
    /// assert_eq!(r.status_code().as_u16(), 401);
    /// let r = LoginRejection::NotLoggedIn { location: Some("/login?next=/account".into()) };
    /// assert_eq!(r.status_code().as_u16(), 303);
    /// assert_eq!(r.error_response().headers().get("location").unwrap(), "/login?next=/account");
    /// ```
    LoginRejection, SessionError,
    /// No [`SessionMiddleware`](crate::SessionMiddleware) with this tag wraps the route
    /// (500).
    MissingMiddleware(MissingSessionMiddleware),
    "session_kit::actix", core = "session_kit"
}

impl LoginRejection {
    /// The session error inside, if that is what this is.
    pub(crate) fn session_error(&self) -> Option<&session_core::Error> {
        match self {
            Self::Session(err) => Some(&err.0),
            _ => None,
        }
    }
}

impl ResponseError for LoginRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotLoggedIn { location } => {
                status_code(session_http::not_logged_in_status(location.as_deref()))
            }
            Self::Session(err) => err.status_code(),
            Self::MissingMiddleware(err) => err.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::NotLoggedIn { location } => {
                let decided = NotLoggedInResponse::new(location.as_deref());
                let mut res = HttpResponse::new(status_code(decided.status));
                // `NotLoggedInResponse` checked the value with the `http` crate's own rule.
                if let Some(Ok(value)) = decided.location.as_deref().map(HeaderValue::from_str) {
                    res.headers_mut().insert(LOCATION, value);
                }
                if let Some(content_type) = decided.content_type {
                    res.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                }
                res.set_body(BoxBody::new(decided.body))
            }
            Self::Session(err) => err.error_response(),
            Self::MissingMiddleware(err) => err.error_response(),
        }
    }
}

/// The path and query of the request, for `next=` (actix-web scopes do not strip their
/// prefix from the URI, so this is the original one).
fn next_of(req: &HttpRequest) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned())
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

impl<T: 'static> FromRequest for AuthUser<T> {
    type Error = LoginRejection;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = session_of::<T>(req);
        let next = next_of(req);
        Box::pin(async move {
            let session = session?;
            let user_id = session_http::require_user(&session, &next).await?;
            Ok(Self::new(user_id, session))
        })
    }
}

impl<T: 'static> FromRequest for OptionalAuthUser<T> {
    type Error = LoginRejection;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = session_of::<T>(req);
        let next = next_of(req);
        Box::pin(async move {
            let session = session?;
            match session_http::require_user(&session, &next).await {
                Ok(user_id) => Ok(Self(Some(AuthUser::new(user_id, session)))),
                Err(LoginFailure::NotLoggedIn { .. }) => Ok(Self(None)),
                Err(failure) => Err(failure.into()),
            }
        })
    }
}
