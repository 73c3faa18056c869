//! The request's session as a framework's extractor type: the tag, and the wrapper type
//! every integration defines once with [`tagged_session!`](crate::tagged_session) (the
//! wrapper must be the integration's own type so that it can implement the framework's
//! extractor trait).

/// The tag of a session layer or middleware built without a tag of its own. Give a second
/// layer (middleware) its own tag type so both sessions can be reached in one handler.
///
/// # Examples
///
/// ```
/// use session_kit::{DefaultSession, HttpSession}; // also `session_kit::actix::DefaultSession`
///
/// // The session of the layer built without a tag.
/// fn untagged(session: HttpSession) -> HttpSession<DefaultSession> { session }
/// assert_eq!(DefaultSession, DefaultSession::default());
/// # let _ = untagged;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DefaultSession;

/// Defines an integration's session extractor type: `$name<T = DefaultSession>`, a
/// [`Session`](session_core::Session) handle tagged with the layer's tag type `T`, with
/// `new` (crate-private), `session`, `into_inner`, `Clone`, `Debug`, `Deref<Target =
/// Session>` and `AsRef<Session>`. The framework's extractor impl stays in the
/// integration.
///
/// The string parameters are paths for the examples generated on the type's methods, as an
/// application writes them: `$krate` is where the application finds `$name` (the
/// integration's crate, or a facade's module re-exporting it), and the optional
/// `core = "..."` is where it finds `session-core`'s items (default `"session_core"`; the
/// workspace's integrations pass `"session_kit"`).
///
/// # Examples
///
/// ```
/// session_http::tagged_session! {
///     /// The session of the current request.
///     MySession, "rust_out", core = "session_core"
/// }
/// struct Admin;
/// let s: MySession<Admin> = MySession::new(session_core::Session::new(
///     std::sync::Arc::new(session_memory::MemoryStore::new()),
///     std::sync::Arc::new(session_core::SessionConfig::default()),
///     None,
/// ));
/// assert!(!s.is_accessed());
/// ```
#[macro_export]
macro_rules! tagged_session {
    ($(#[$attr:meta])* $name:ident, $krate:literal) => {
        $crate::tagged_session! { $(#[$attr])* $name, $krate, core = "session_core" }
    };
    ($(#[$attr:meta])* $name:ident, $krate:literal, core = $core:literal) => {
        $(#[$attr])*
        pub struct $name<T = $crate::DefaultSession> {
            session: $crate::__private::Session,
            _tag: ::core::marker::PhantomData<fn() -> T>,
        }

        impl<T> $name<T> {
            #[allow(dead_code)]
            pub(crate) fn new(session: $crate::__private::Session) -> Self {
                Self {
                    session,
                    _tag: ::core::marker::PhantomData,
                }
            }

            /// The session handle.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("fn handle(s: &", $krate, "::", stringify!($name), ") -> &", $core, "::Session { s.session() }")]
            /// ```
            pub fn session(&self) -> &$crate::__private::Session {
                &self.session
            }

            /// The session handle, by value (it is a cheap shared handle).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("fn handle(s: ", $krate, "::", stringify!($name), ") -> ", $core, "::Session { s.into_inner() }")]
            /// ```
            pub fn into_inner(self) -> $crate::__private::Session {
                self.session
            }
        }

        impl<T> ::core::clone::Clone for $name<T> {
            fn clone(&self) -> Self {
                Self::new(self.session.clone())
            }
        }

        impl<T> ::core::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("tag", &::core::any::type_name::<T>())
                    .field("session", &self.session)
                    .finish()
            }
        }

        impl<T> ::core::ops::Deref for $name<T> {
            type Target = $crate::__private::Session;
            fn deref(&self) -> &$crate::__private::Session {
                &self.session
            }
        }

        impl<T> ::core::convert::AsRef<$crate::__private::Session> for $name<T> {
            fn as_ref(&self) -> &$crate::__private::Session {
                &self.session
            }
        }
    };
}

/// Defines an integration's handler error type: `$name(pub session_core::Error)`, whose
/// `Display` and `source` are the core error's, with `From<session_core::Error>`,
/// `From<session_core::StoreError>` (so `?` works on direct store calls in a handler)
/// and `into_inner`. The framework's response impl stays in the integration, rendering
/// with [`ErrorPolicy`](crate::ErrorPolicy). The string parameters are paths for the
/// generated examples, as in [`tagged_session!`](crate::tagged_session).
///
/// # Examples
///
/// ```
/// session_http::session_error! {
///     /// A session error returned by a handler.
///     MyError, "rust_out", core = "session_core"
/// }
/// let err = MyError::from(session_core::StoreError::unavailable(std::io::Error::other("down")));
/// assert!(err.0.is_unavailable());
/// assert!(matches!(MyError::from(session_core::Error::Interrupted).into_inner(), session_core::Error::Interrupted));
/// ```
#[macro_export]
macro_rules! session_error {
    ($(#[$attr:meta])* $name:ident, $krate:literal) => {
        $crate::session_error! { $(#[$attr])* $name, $krate, core = "session_core" }
    };
    ($(#[$attr:meta])* $name:ident, $krate:literal, core = $core:literal) => {
        $(#[$attr])*
        #[derive(Debug)]
        pub struct $name(pub $crate::__private::Error);

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::error::Error for $name {
            fn source(&self) -> ::core::option::Option<&(dyn ::std::error::Error + 'static)> {
                ::std::error::Error::source(&self.0)
            }
        }

        impl ::core::convert::From<$crate::__private::Error> for $name {
            fn from(err: $crate::__private::Error) -> Self {
                Self(err)
            }
        }

        /// A store error from a direct store call in a handler (a "your devices" page's
        /// `session.store().list_for_user(..)`, "log out other devices"), so `?` works on it
        /// too.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let err = ", $krate, "::", stringify!($name), "::from(", $core, "::StoreError::unavailable(std::io::Error::other(\"down\")));")]
        /// assert!(err.0.is_unavailable());
        /// ```
        impl ::core::convert::From<$crate::__private::StoreError> for $name {
            fn from(err: $crate::__private::StoreError) -> Self {
                Self(err.into())
            }
        }

        impl $name {
            /// The wrapped core error.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let err = ", $krate, "::", stringify!($name), "(", $core, "::Error::Interrupted);")]
            #[doc = concat!("assert!(matches!(err.into_inner(), ", $core, "::Error::Interrupted));")]
            /// ```
            pub fn into_inner(self) -> $crate::__private::Error {
                self.0
            }
        }
    };
}

/// Defines an integration's login-required extractor type: `$name<T = DefaultSession>`,
/// the logged-in user's id with the request's `$session<T>` (a type made with
/// [`tagged_session!`](crate::tagged_session)), with `new` (crate-private), `user_id`,
/// `into_user_id`, `session`, `Clone` and a `Debug` that leaves the user id out. The
/// extractor impl stays in the integration and uses [`require_user`](crate::require_user).
/// The string parameters are paths for the generated examples, as in
/// [`tagged_session!`](crate::tagged_session) (`$krate` also names the integration's
/// `SessionError`).
///
/// # Examples
///
/// ```
/// session_http::tagged_session! {
///     /// The session.
///     MySession, "rust_out"
/// }
/// session_http::auth_user! {
///     /// The logged-in user.
///     MyUser, MySession, "rust_out", core = "session_core"
/// }
/// let session = MySession::<session_http::DefaultSession>::new(session_core::Session::new(
///     std::sync::Arc::new(session_memory::MemoryStore::new()),
///     std::sync::Arc::new(session_core::SessionConfig::default()),
///     None,
/// ));
/// let user = MyUser::new("alice".to_owned(), session);
/// assert_eq!(user.user_id(), "alice");
/// assert!(!format!("{user:?}").contains("alice"));
/// ```
#[macro_export]
macro_rules! auth_user {
    ($(#[$attr:meta])* $name:ident, $session:ident, $krate:literal) => {
        $crate::auth_user! { $(#[$attr])* $name, $session, $krate, core = "session_core" }
    };
    ($(#[$attr:meta])* $name:ident, $session:ident, $krate:literal, core = $core:literal) => {
        $(#[$attr])*
        pub struct $name<T = $crate::DefaultSession> {
            user_id: ::std::string::String,
            session: $session<T>,
        }

        impl<T> $name<T> {
            #[allow(dead_code)]
            pub(crate) fn new(user_id: ::std::string::String, session: $session<T>) -> Self {
                Self { user_id, session }
            }

            /// The logged-in user's id.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("fn greet(user: &", $krate, "::", stringify!($name), ") -> String { format!(\"hi {}\", user.user_id()) }")]
            /// ```
            pub fn user_id(&self) -> &str {
                &self.user_id
            }

            /// The user id, by value.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("fn id(user: ", $krate, "::", stringify!($name), ") -> String { user.into_user_id() }")]
            /// ```
            pub fn into_user_id(self) -> ::std::string::String {
                self.user_id
            }

            /// The request's session (to call
            /// [`update_auth_hash`](session_core::Session::update_auth_hash) after a
            /// password change, or [`logout`](session_core::Session::logout)).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("async fn logout(user: ", $krate, "::", stringify!($name), ") -> Result<&'static str, ", $krate, "::SessionError> {")]
            ///     user.session().logout().await?;
            ///     Ok("bye")
            /// }
            /// ```
            pub fn session(&self) -> &$session<T> {
                &self.session
            }
        }

        impl<T> ::core::clone::Clone for $name<T> {
            fn clone(&self) -> Self {
                Self {
                    user_id: self.user_id.clone(),
                    session: self.session.clone(),
                }
            }
        }

        impl<T> ::core::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                // The user id is not a secret, but keep logs of extractors terse.
                f.debug_struct(stringify!($name))
                    .field("session", &self.session)
                    .finish_non_exhaustive()
            }
        }
    };
}

/// Defines an integration's login rejection: `$name::NotLoggedIn { location }` (401, or
/// `303 See Other` to `location`: answer it with
/// [`NotLoggedInResponse`](crate::NotLoggedInResponse)), `$name::Session($error)` (a
/// session failure, rendered like any session error) and a third variant for a missing
/// layer, with `Display`/`Error`, `From` each inner error, `From<LoginFailure>` and
/// `from_outcome`. The framework's response impl stays in the integration. The string
/// parameters are paths for the generated examples, as in
/// [`tagged_session!`](crate::tagged_session).
///
/// # Examples
///
/// ```
/// session_http::session_error! {
///     /// A session error.
///     MyError, "rust_out"
/// }
/// #[derive(Debug, thiserror::Error)]
/// #[error("no layer")]
/// struct NoLayer;
/// session_http::login_rejection! {
///     /// Why the login-required extractor rejected a request.
///     MyRejection, MyError,
///     /// No layer wraps the route.
///     MissingLayer(NoLayer),
///     "rust_out", core = "session_core"
/// }
/// let r = MyRejection::from(session_http::LoginFailure::NotLoggedIn { location: None });
/// assert_eq!(r.to_string(), "login required");
/// assert!(matches!(MyRejection::from(NoLayer), MyRejection::MissingLayer(_)));
/// ```
#[macro_export]
macro_rules! login_rejection {
    (
        $(#[$attr:meta])* $name:ident, $error:ident,
        $(#[$mattr:meta])* $missing:ident($missing_ty:ty),
        $krate:literal
    ) => {
        $crate::login_rejection! {
            $(#[$attr])* $name, $error,
            $(#[$mattr])* $missing($missing_ty),
            $krate, core = "session_core"
        }
    };
    (
        $(#[$attr:meta])* $name:ident, $error:ident,
        $(#[$mattr:meta])* $missing:ident($missing_ty:ty),
        $krate:literal, core = $core:literal
    ) => {
        $(#[$attr])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $name {
            /// No user is logged in: 401, or `303 See Other` to `location` (the login URL
            /// with `next=`) when a login URL is configured.
            NotLoggedIn {
                /// Where to redirect, if a login URL is configured.
                location: ::core::option::Option<::std::string::String>,
            },
            /// The session could not be loaded (rendered like any session error: 503 on
            /// an outage, ...).
            Session($error),
            $(#[$mattr])*
            $missing($missing_ty),
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    Self::NotLoggedIn { .. } => f.write_str("login required"),
                    Self::Session(err) => ::core::fmt::Display::fmt(err, f),
                    Self::$missing(err) => ::core::fmt::Display::fmt(err, f),
                }
            }
        }

        impl ::std::error::Error for $name {
            fn source(&self) -> ::core::option::Option<&(dyn ::std::error::Error + 'static)> {
                match self {
                    Self::NotLoggedIn { .. } => None,
                    Self::Session(err) => ::std::error::Error::source(err),
                    Self::$missing(err) => ::std::error::Error::source(err),
                }
            }
        }

        impl ::core::convert::From<$error> for $name {
            fn from(err: $error) -> Self {
                Self::Session(err)
            }
        }

        impl ::core::convert::From<$missing_ty> for $name {
            fn from(err: $missing_ty) -> Self {
                Self::$missing(err)
            }
        }

        impl ::core::convert::From<$crate::LoginFailure> for $name {
            fn from(failure: $crate::LoginFailure) -> Self {
                match failure {
                    $crate::LoginFailure::NotLoggedIn { location } => Self::NotLoggedIn { location },
                    $crate::LoginFailure::Session(err) => Self::Session($error(err)),
                }
            }
        }

        impl $name {
            /// The rejection for `outcome`, for a request to `next` (its original path and
            /// query).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $core, "::{NotLoggedIn, RequireUserError};")]
            #[doc = concat!("use ", $krate, "::", stringify!($name), ";")]
            ///
            /// let outcome = RequireUserError::from(NotLoggedIn::new(Some("/login".into())));
            #[doc = concat!("let r = ", stringify!($name), "::from_outcome(outcome, \"/cart?x=1\");")]
            #[doc = concat!("assert!(matches!(r, ", stringify!($name), "::NotLoggedIn { location: Some(ref l) } if l == \"/login?next=/cart%3Fx%3D1\"));")]
            /// ```
            pub fn from_outcome(outcome: $crate::__private::RequireUserError, next: &str) -> Self {
                $crate::LoginFailure::new(outcome, next).into()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    //! The forms without `core = "..."` still expand (their examples name `session_core`).
    // The generated API is not all used here.
    #![allow(dead_code)]

    /// The missing-layer error of the test rejection.
    #[derive(Debug, thiserror::Error)]
    #[error("no layer")]
    pub struct NoLayer;

    crate::tagged_session! {
        /// A session.
        ShortSession, "short"
    }
    crate::session_error! {
        /// An error.
        ShortError, "short"
    }
    crate::auth_user! {
        /// A user.
        ShortUser, ShortSession, "short"
    }
    crate::login_rejection! {
        /// A rejection.
        ShortRejection, ShortError,
        /// No layer.
        MissingLayer(NoLayer),
        "short"
    }

    #[test]
    fn short_forms_expand() {
        let err = ShortError::from(session_core::Error::Interrupted);
        let rejection = ShortRejection::from(err);
        assert!(matches!(rejection, ShortRejection::Session(_)));
        assert!(matches!(
            ShortRejection::from(NoLayer),
            ShortRejection::MissingLayer(_)
        ));
        let _: Option<ShortUser> = None;
    }
}
