//! Errors of stores ([`StoreError`]), of configuration ([`ConfigError`]) and of the session
//! handle ([`Error`]).

use crate::InvalidKey;

/// A boxed error source from a backend (a database driver, a connection pool, the OS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of the session handle and of this crate's helpers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The result type of [`SessionStore`](crate::SessionStore) operations.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// What a store operation can answer besides success: the contract's outcomes
/// ([`KeyExists`](Self::KeyExists), [`NotFound`](Self::NotFound),
/// [`Conflict`](Self::Conflict)), which callers match on, and failures, which keep their
/// source error.
///
/// # Examples
///
/// ```
/// use session_kit::StoreError;
///
/// let err = StoreError::unavailable(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
/// assert!(err.is_unavailable());
/// assert!(std::error::Error::source(&err).is_some());
/// assert!(!StoreError::Conflict.is_unavailable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `create` found a live record with that key.
    #[error("a live session with this key already exists")]
    KeyExists,
    /// `update` or a versioned `delete` found no live record with that key (deleted or
    /// expired meanwhile).
    #[error("the session no longer exists (deleted or expired meanwhile)")]
    NotFound,
    /// `update` or a versioned `delete` found the record at another version than expected.
    #[error("the session was changed concurrently (version mismatch)")]
    Conflict,
    /// The store does not have this capability (see
    /// [`SessionStore::user_index`](crate::SessionStore::user_index)).
    #[error("this store does not support {operation}")]
    Unsupported {
        /// The operation that is not supported.
        operation: &'static str,
    },
    /// The backend could not be reached in time (connection refused or lost, pool timeout,
    /// operation timeout). The HTTP layers map it to 503 by default.
    #[error("session store unavailable: {source}")]
    Unavailable {
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// Any other backend failure (a query error, a protocol error).
    #[error("session store error: {source}")]
    Backend {
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A stored row could not be read back as a [`Record`](crate::Record).
    #[error("corrupt session record: {reason}")]
    CorruptRecord {
        /// What was wrong with the row (never its contents).
        reason: String,
    },
    /// The store was set up wrongly (a bad URL, a disabled feature, an invalid table name).
    /// Nothing was sent to a server.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl StoreError {
    /// Wraps a backend error that means the store is unreachable right now.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::StoreError;
    /// let e = StoreError::unavailable(std::io::Error::other("connection reset"));
    /// assert!(e.is_unavailable());
    /// ```
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            source: source.into(),
        }
    }

    /// Wraps any other backend error.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::StoreError;
    /// let e = StoreError::backend(std::io::Error::other("syntax error"));
    /// assert!(!e.is_unavailable());
    /// ```
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend {
            source: source.into(),
        }
    }

    /// A corrupt stored row, described without its contents.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::StoreError;
    /// let e = StoreError::corrupt("expires_at is not a timestamp");
    /// assert!(e.to_string().contains("expires_at"));
    /// ```
    pub fn corrupt(reason: impl Into<String>) -> Self {
        Self::CorruptRecord {
            reason: reason.into(),
        }
    }

    /// Whether the error means the store could not be reached (HTTP 503 territory).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::StoreError;
    /// assert!(!StoreError::NotFound.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A configuration mistake found before anything was sent to a server: a malformed URL, a
/// URL scheme whose feature is not compiled in, an invalid table name or setting.
///
/// # Examples
///
/// ```
/// use session_kit::ConfigError;
///
/// let err = ConfigError::feature_disabled("postgres://db/app", "postgres");
/// assert_eq!(err.feature(), Some("postgres"));
/// assert!(err.to_string().contains("feature `postgres`"));
///
/// let err = ConfigError::invalid("table name", "must not be empty");
/// assert!(err.to_string().contains("table name"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
    feature: Option<&'static str>,
    #[source]
    source: Option<BoxError>,
}

impl ConfigError {
    /// A setting `what` that is invalid, with the reason.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = session_kit::ConfigError::invalid("pool size", "must be at least 1");
    /// assert_eq!(e.to_string(), "invalid pool size: must be at least 1");
    /// ```
    pub fn invalid(what: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            message: format!("invalid {what}: {reason}"),
            feature: None,
            source: None,
        }
    }

    /// A setting that is invalid, keeping the parser's error as the source.
    ///
    /// # Examples
    ///
    /// ```
    /// let parse = "x".parse::<u32>().unwrap_err();
    /// let e = session_kit::ConfigError::invalid_with_source("port", parse);
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
    pub fn invalid_with_source(
        what: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: format!("invalid {what}: {source}"),
            feature: None,
            source: Some(Box::new(source)),
        }
    }

    /// `what` (a URL, a scheme) needs a crate feature that this build lacks.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = session_kit::ConfigError::feature_disabled("redis://localhost", "redis");
    /// assert_eq!(e.feature(), Some("redis"));
    /// ```
    pub fn feature_disabled(what: &str, feature: &'static str) -> Self {
        let shown: String = what.chars().take(40).collect();
        Self {
            message: format!("{shown:?} needs the feature `{feature}`, which is not enabled"),
            feature: Some(feature),
            source: None,
        }
    }

    /// The missing feature, for [`feature_disabled`](Self::feature_disabled) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::ConfigError::invalid("x", "y").feature(), None);
    /// ```
    pub fn feature(&self) -> Option<&'static str> {
        self.feature
    }
}

/// Everything that can go wrong on the [`Session`](crate::Session) handle.
///
/// The HTTP layers map [`Interrupted`](Self::Interrupted) to 400 (Django's
/// `SessionInterrupted`), an unavailable store to 503 and [`TooLarge`](Self::TooLarge) to
/// 413; everything else is a 500.
///
/// # Examples
///
/// ```
/// use session_kit::{Error, StoreError};
///
/// let err = Error::from(StoreError::unavailable(std::io::Error::other("refused")));
/// assert!(err.is_unavailable());
/// assert!(matches!(err, Error::Store(StoreError::Unavailable { .. })));
/// assert!(!Error::Interrupted.is_unavailable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed (see [`StoreError`]; the source is kept).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session was deleted, expired or revoked (a logout, "log out other devices") while
    /// this request used it; nothing was written. The HTTP layers answer 400.
    #[error("the session was deleted or revoked while this request used it")]
    Interrupted,
    /// The codec could not encode the session map.
    #[error(transparent)]
    Codec(#[from] crate::CodecError),
    /// A value could not be converted to or from JSON for a typed `get`/`insert`/`update`.
    #[error("session value (de)serialization failed for key {key:?}: {source}")]
    Value {
        /// The session map key whose value failed.
        key: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The encoded session is larger than the configured limit; nothing was written. The
    /// HTTP layers answer 413.
    #[error("encoded session is {len} bytes, over the configured limit of {max} bytes")]
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// No fresh key could be created after the configured number of attempts.
    #[error("could not create a session with a fresh key after {attempts} attempts")]
    KeyCollisions {
        /// How many keys were tried.
        attempts: u32,
    },
    /// A save kept conflicting with writers in other processes beyond the configured retry
    /// limit.
    #[error("session save still conflicted after {attempts} attempts")]
    ConflictRetriesExhausted {
        /// How many writes were tried.
        attempts: u32,
    },
    /// A session key value was malformed.
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
}

impl Error {
    /// Whether the store could not be reached (HTTP 503 territory).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{Error, StoreError};
    /// assert!(Error::from(StoreError::unavailable(std::io::Error::other("x"))).is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(store) if store.is_unavailable())
    }
}
