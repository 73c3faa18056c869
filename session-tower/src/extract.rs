//! The request's session, as a request extension and an axum extractor.

pub use session_http::DefaultSession;

session_http::tagged_session! {
    /// The session of the current request, put into the request's extensions by the
    /// [`SessionLayer`](crate::SessionLayer) tagged `T` (a second layer gets its own tag
    /// type with [`SessionLayer::with_tag`](crate::SessionLayer::with_tag), so both
    /// sessions can be reached in one handler; the default tag is [`DefaultSession`]).
    ///
    /// It dereferences to [`session_core::Session`], so every handle method is available. With
    /// the `axum` feature it is an extractor; without it, read it from the request extensions
    /// (`req.extensions().get::<HttpSession>()`).
    ///
    /// Nothing is loaded from the store until the handler reads or writes the session.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::HttpSession;
    ///
    /// async fn visits(session: HttpSession) -> Result<String, session_kit::SessionError> {
    ///     let n = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
    ///     Ok(format!("visit number {n}"))
    /// }
    /// ```
    HttpSession, "session_kit", core = "session_kit"
}

/// The rejection when a handler asks for an [`HttpSession`] but no
/// [`SessionLayer`](crate::SessionLayer) with that tag wraps the route: a programming
/// error, answered with 500 and logged.
///
/// # Examples
///
/// ```
/// let r = session_kit::MissingSessionLayer { tag: "DefaultSession" };
/// assert!(r.to_string().contains("SessionLayer"));
/// ```
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "no SessionLayer (tag {tag}) wraps this route; add `.layer(SessionLayer::new(..))` around it"
)]
pub struct MissingSessionLayer {
    /// The type name of the tag that was asked for.
    pub tag: &'static str,
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::response::IntoResponse for MissingSessionLayer {
    fn into_response(self) -> axum::response::Response {
        tracing::error!(
            tag = self.tag,
            "HttpSession extractor used without its SessionLayer"
        );
        (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error: session layer missing.",
        )
            .into_response()
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S, T> axum::extract::FromRequestParts<S> for HttpSession<T>
where
    S: Send + Sync,
    T: Send + Sync + 'static,
{
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<HttpSession<T>>()
            .cloned()
            .ok_or(MissingSessionLayer {
                tag: std::any::type_name::<T>(),
            })
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S, T> axum::extract::OptionalFromRequestParts<S> for HttpSession<T>
where
    S: Send + Sync,
    T: Send + Sync + 'static,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<HttpSession<T>>().cloned())
    }
}
