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
use session_http::NotLoggedInResponse;

use crate::{HttpSession, MissingSessionLayer, SessionError};

pub use session_http::LOGIN_REQUIRED;

session_http::auth_user! {
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
    /// use session_kit::{AuthUser, MemoryStore, SessionConfig, SessionLayer};
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
    AuthUser, HttpSession, "session_kit"
}

session_http::login_rejection! {
    /// Why [`AuthUser`] rejected a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::LoginRejection;
    ///
    /// let r = LoginRejection::NotLoggedIn { location: None };
    /// assert_eq!(r.status().as_u16(), 401);
    /// let r = LoginRejection::NotLoggedIn { location: Some("/login?next=/account".into()) };
    /// assert_eq!(r.status().as_u16(), 303);
    /// ```
    LoginRejection, SessionError,
    /// No [`SessionLayer`](crate::SessionLayer) with this tag wraps the route (500).
    MissingLayer(MissingSessionLayer),
    "session_kit", core = "session_kit"
}

impl LoginRejection {
    /// The status this rejection answers with.
    ///
    /// # Examples
    ///
    /// See [`LoginRejection`].
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotLoggedIn { location } => {
                StatusCode::from_u16(session_http::not_logged_in_status(location.as_deref()))
                    .unwrap_or(StatusCode::UNAUTHORIZED)
            }
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
    /// use session_kit::LoginRejection;
    /// let r = LoginRejection::NotLoggedIn { location: Some("/login?next=/".into()) };
    /// let res = r.not_logged_in_response().unwrap();
    /// assert_eq!(res.status().as_u16(), 303);
    /// assert_eq!(res.headers()["location"], "/login?next=/");
    /// ```
    pub fn not_logged_in_response(&self) -> Option<Response<String>> {
        let Self::NotLoggedIn { location } = self else {
            return None;
        };
        let decided = NotLoggedInResponse::new(location.as_deref());
        let mut res = Response::new(decided.body.to_owned());
        *res.status_mut() =
            StatusCode::from_u16(decided.status).unwrap_or(StatusCode::UNAUTHORIZED);
        // `NotLoggedInResponse` checked both values with the `http` crate's own rule.
        if let Some(Ok(value)) = decided.location.as_deref().map(HeaderValue::from_str) {
            res.headers_mut().insert(header::LOCATION, value);
        }
        if let Some(content_type) = decided.content_type {
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        Some(res)
    }
}

#[cfg(feature = "axum")]
mod axum_impl {
    use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;
    use session_http::LoginFailure;

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
            let user_id = session_http::require_user(&session, &next_of(parts)).await?;
            Ok(Self::new(user_id, session))
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
            match session_http::require_user(&session, &next_of(parts)).await {
                Ok(user_id) => Ok(Some(Self::new(user_id, session))),
                Err(LoginFailure::NotLoggedIn { .. }) => Ok(None),
                Err(failure) => Err(failure.into()),
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
