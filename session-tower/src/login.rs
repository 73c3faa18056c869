//! Login required (Django's `login_required`): the [`AuthUser`] extractor yields the
//! logged-in user's id, or rejects the request with 401, or with a `303 See Other` to the
//! login URL configured with
//! [`SessionConfig::with_login_url`](session_core::SessionConfig::with_login_url)
//! (`?next=` the original path and query, encoded as Django does).
//!
//! Extracting it loads the session, and so checks its auth hash
//! ([`Session::login_with_auth_hash`](session_core::Session::login_with_auth_hash)): a
//! session logged out by a password change elsewhere is rejected like any anonymous one,
//! and the layer removes its cookie.

use http::{header, HeaderValue, Response, StatusCode};
use session_core::{NotLoggedIn, RequireUserError};

use crate::{DefaultSession, HttpSession, MissingSessionLayer, SessionError};

/// The body of the 401 sent to a visitor who is not logged in.
pub const LOGIN_REQUIRED: &str = "Login required.";

/// The logged-in user of the request, with the session of the
/// [`SessionLayer`](crate::SessionLayer) tagged `T`.
///
/// With the `axum` feature it is an extractor: a handler that takes it runs only for a
/// logged-in user; otherwise the request is answered with a [`LoginRejection`] (401, or a
/// redirect to the configured login URL). `Option<AuthUser>` never rejects a visitor who
/// is not logged in (it is `None`), only session failures.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::{routing::get, Router};
/// use session_core::SessionConfig;
/// use session_memory::MemoryStore;
/// use session_tower::{AuthUser, SessionLayer};
///
/// async fn account(user: AuthUser) -> String {
///     format!("hello {}", user.user_id())
/// }
///
/// let layer = SessionLayer::new(MemoryStore::new())
///     .with_config(SessionConfig::default().with_login_url("/login"));
/// let app: Router = Router::new().route("/account", get(account)).layer(layer);
/// # let _ = app; }
/// ```
pub struct AuthUser<T = DefaultSession> {
    user_id: String,
    session: HttpSession<T>,
}

impl<T> AuthUser<T> {
    /// The logged-in user's id.
    ///
    /// # Examples
    ///
    /// ```
    /// fn greet(user: &session_tower::AuthUser) -> String { format!("hi {}", user.user_id()) }
    /// ```
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The user id, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// fn id(user: session_tower::AuthUser) -> String { user.into_user_id() }
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
    /// async fn logout(user: session_tower::AuthUser) -> Result<&'static str, session_tower::SessionError> {
    ///     user.session().logout().await?;
    ///     Ok("bye")
    /// }
    /// ```
    pub fn session(&self) -> &HttpSession<T> {
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
        // The user id is not a secret, but keep logs of extractors terse.
        f.debug_struct("AuthUser")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Why [`AuthUser`] rejected a request.
///
/// # Examples
///
/// ```
/// use session_tower::LoginRejection;
///
/// let r = LoginRejection::NotLoggedIn { location: None };
/// assert_eq!(r.status().as_u16(), 401);
/// let r = LoginRejection::NotLoggedIn { location: Some("/login?next=/account".into()) };
/// assert_eq!(r.status().as_u16(), 303);
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
    /// The session could not be loaded (rendered by the layer, like any [`SessionError`]:
    /// 503 on an outage, ...).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No [`SessionLayer`](crate::SessionLayer) with this tag wraps the route (500).
    #[error(transparent)]
    MissingLayer(#[from] MissingSessionLayer),
}

impl LoginRejection {
    /// The rejection for `outcome`, for a request to `next` (its original path and
    /// query).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_core::{NotLoggedIn, RequireUserError};
    /// use session_tower::LoginRejection;
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

    /// The status this rejection answers with.
    ///
    /// # Examples
    ///
    /// See [`LoginRejection`].
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotLoggedIn { location: None } => StatusCode::UNAUTHORIZED,
            Self::NotLoggedIn { location: Some(_) } => StatusCode::SEE_OTHER,
            Self::Session(err) => err.status(),
            Self::MissingLayer(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response for "not logged in" (401 with a short text, or the redirect), for a
    /// plain tower service to send; `None` for the other rejections (a [`SessionError`]
    /// is rendered by the layer).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::LoginRejection;
    /// let r = LoginRejection::NotLoggedIn { location: Some("/login?next=/".into()) };
    /// let res = r.not_logged_in_response().unwrap();
    /// assert_eq!(res.status().as_u16(), 303);
    /// assert_eq!(res.headers()["location"], "/login?next=/");
    /// ```
    pub fn not_logged_in_response(&self) -> Option<Response<String>> {
        let Self::NotLoggedIn { location } = self else {
            return None;
        };
        let mut res = Response::new(String::new());
        *res.status_mut() = self.status();
        match location.as_deref().map(HeaderValue::from_str) {
            Some(Ok(value)) => {
                res.headers_mut().insert(header::LOCATION, value);
            }
            Some(Err(_)) | None => {
                // A login URL that is not a valid header value cannot be redirected to.
                if location.is_some() {
                    tracing::error!(
                        "the configured login URL is not a valid Location header; answering 401"
                    );
                }
                *res.status_mut() = StatusCode::UNAUTHORIZED;
                *res.body_mut() = LOGIN_REQUIRED.to_owned();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
        }
        Some(res)
    }
}

#[cfg(feature = "axum")]
mod axum_impl {
    use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;
    use session_core::RequireUserError;

    use super::{AuthUser, LoginRejection};
    use crate::HttpSession;

    /// The original path and query (before any `nest` stripped a prefix).
    fn next_of(parts: &Parts) -> String {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        uri.path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    impl<S, T> FromRequestParts<S> for AuthUser<T>
    where
        S: Send + Sync,
        T: Send + Sync + 'static,
    {
        type Rejection = LoginRejection;

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
            let session =
                <HttpSession<T> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
            match session.require_user().await {
                Ok(user_id) => Ok(Self { user_id, session }),
                Err(outcome) => Err(LoginRejection::from_outcome(outcome, &next_of(parts))),
            }
        }
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    impl<S, T> OptionalFromRequestParts<S> for AuthUser<T>
    where
        S: Send + Sync,
        T: Send + Sync + 'static,
    {
        type Rejection = LoginRejection;

        async fn from_request_parts(
            parts: &mut Parts,
            state: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            let session =
                <HttpSession<T> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
            match session.require_user().await {
                Ok(user_id) => Ok(Some(Self { user_id, session })),
                Err(RequireUserError::NotLoggedIn(_)) => Ok(None),
                Err(outcome) => Err(LoginRejection::from_outcome(outcome, &next_of(parts))),
            }
        }
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    impl IntoResponse for LoginRejection {
        fn into_response(self) -> Response {
            if let Some(res) = self.not_logged_in_response() {
                return res.into_response();
            }
            match self {
                Self::Session(err) => err.into_response(),
                Self::MissingLayer(err) => err.into_response(),
                Self::NotLoggedIn { .. } => http::StatusCode::UNAUTHORIZED.into_response(),
            }
        }
    }
}
