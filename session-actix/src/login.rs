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

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use session_core::{NotLoggedIn, RequireUserError};

use crate::error::status_code;
use crate::extract::session_of;
use crate::{ActixSession, DefaultSession, MissingSessionMiddleware, SessionError};

pub use session_http::LOGIN_REQUIRED;

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
/// use session_actix::{AuthUser, SessionMiddleware};
/// use session_core::SessionConfig;
///
/// async fn account(user: AuthUser) -> String {
///     format!("hello {}", user.user_id())
/// }
///
/// let sessions = SessionMiddleware::builder(session_memory::MemoryStore::new())
///     .with_config(SessionConfig::default().with_login_url("/login"))
///     .build()?;
/// let app = App::new().wrap(sessions).route("/account", web::get().to(account));
/// # let _ = app;
/// # Ok::<(), session_actix::CookieConfigError>(())
/// ```
pub struct AuthUser<T = DefaultSession> {
    user_id: String,
    session: ActixSession<T>,
}

impl<T> AuthUser<T> {
    /// The logged-in user's id.
    ///
    /// # Examples
    ///
    /// ```
    /// fn greet(user: &session_actix::AuthUser) -> String { format!("hi {}", user.user_id()) }
    /// ```
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The user id, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// fn id(user: session_actix::AuthUser) -> String { user.into_user_id() }
    /// ```
    pub fn into_user_id(self) -> String {
        self.user_id
    }

    /// The request's session (to call
    /// [`update_auth_hash`](session_core::Session::update_auth_hash) after a password
    /// change, or [`logout`](session_core::Session::logout)).
    ///
    /// # Examples
    ///
    /// ```
    /// async fn logout(user: session_actix::AuthUser) -> Result<&'static str, session_actix::SessionError> {
    ///     user.session().logout().await?;
    ///     Ok("bye")
    /// }
    /// ```
    pub fn session(&self) -> &ActixSession<T> {
        &self.session
    }
}

impl<T> Clone for AuthUser<T> {
    fn clone(&self) -> Self {
        Self {
            user_id: self.user_id.clone(),
            session: self.session.clone(),
        }
    }
}

impl<T> std::fmt::Debug for AuthUser<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthUser")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The logged-in user if there is one: `None` for an anonymous visitor, a rejection only
/// for session failures (a store outage is still a 503).
///
/// # Examples
///
/// ```
/// use session_actix::OptionalAuthUser;
///
/// async fn home(OptionalAuthUser(user): OptionalAuthUser) -> String {
///     user.map_or_else(|| "hello stranger".to_owned(), |u| format!("hello {}", u.user_id()))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct OptionalAuthUser<T = DefaultSession>(pub Option<AuthUser<T>>);

/// Why [`AuthUser`] rejected a request.
///
/// # Examples
///
/// ```
/// use actix_web::ResponseError;
/// use session_actix::LoginRejection;
///
/// let r = LoginRejection::NotLoggedIn { location: None };
/// assert_eq!(r.status_code().as_u16(), 401);
/// let r = LoginRejection::NotLoggedIn { location: Some("/login?next=/account".into()) };
/// assert_eq!(r.status_code().as_u16(), 303);
/// assert_eq!(r.error_response().headers().get("location").unwrap(), "/login?next=/account");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginRejection {
    /// No user is logged in: 401, or `303 See Other` to `location` (the login URL with
    /// `next=`) when a login URL is configured.
    #[error("login required")]
    NotLoggedIn {
        /// Where to redirect, if a login URL is configured.
        location: Option<String>,
    },
    /// The session could not be loaded (rendered by the middleware, like any
    /// [`SessionError`]: 503 on an outage, ...).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No [`SessionMiddleware`](crate::SessionMiddleware) with this tag wraps the route
    /// (500).
    #[error(transparent)]
    MissingMiddleware(#[from] MissingSessionMiddleware),
}

impl LoginRejection {
    /// The rejection for `outcome`, for a request to `next` (its path and query).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_core::{NotLoggedIn, RequireUserError};
    /// use session_actix::LoginRejection;
    ///
    /// let outcome = RequireUserError::from(NotLoggedIn::new(Some("/login".into())));
    /// let r = LoginRejection::from_outcome(outcome, "/cart?x=1");
    /// assert!(matches!(r, LoginRejection::NotLoggedIn { location: Some(ref l) } if l == "/login?next=/cart%3Fx%3D1"));
    /// ```
    pub fn from_outcome(outcome: RequireUserError, next: &str) -> Self {
        match outcome {
            RequireUserError::NotLoggedIn(not) => Self::not_logged_in(&not, next),
            RequireUserError::Session(err) => Self::Session(err.into()),
            other => Self::Session(SessionError(session_core::Error::Store(
                session_core::StoreError::backend(other),
            ))),
        }
    }

    fn not_logged_in(not: &NotLoggedIn, next: &str) -> Self {
        Self::NotLoggedIn {
            location: not.redirect_location(next),
        }
    }

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
                match location.as_deref().map(HeaderValue::from_str) {
                    Some(Ok(value)) => HttpResponse::SeeOther()
                        .insert_header((LOCATION, value))
                        .finish(),
                    other => {
                        if matches!(other, Some(Err(_))) {
                            tracing::error!("the configured login URL is not a valid Location header; answering 401");
                        }
                        HttpResponse::Unauthorized()
                            .content_type(session_http::TEXT_PLAIN)
                            .body(LOGIN_REQUIRED)
                    }
                }
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
            match session.require_user().await {
                Ok(user_id) => Ok(Self { user_id, session }),
                Err(outcome) => Err(LoginRejection::from_outcome(outcome, &next)),
            }
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
            match session.require_user().await {
                Ok(user_id) => Ok(Self(Some(AuthUser { user_id, session }))),
                Err(RequireUserError::NotLoggedIn(_)) => Ok(Self(None)),
                Err(outcome) => Err(LoginRejection::from_outcome(outcome, &next)),
            }
        })
    }
}
