//! Errors of stores, codecs and the session handle.

use crate::InvalidKey;

/// A boxed error source from a backend (a database driver, a connection pool, the OS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store operation or on the session handle.
///
/// Contract outcomes ([`KeyExists`](Error::KeyExists), [`NotFound`](Error::NotFound),
/// [`Conflict`](Error::Conflict)) are separate variants so callers can match on them;
/// backend failures keep their source error.
///
/// # Examples
///
/// ```
/// use session_core::Error;
///
/// let err = Error::unavailable(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
/// assert!(err.is_unavailable());
/// assert!(std::error::Error::source(&err).is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `create` found a live record with that key.
    #[error("a live session with this key already exists")]
    KeyExists,
    /// `update` or `touch` found no live record with that key (deleted or expired meanwhile).
    /// The HTTP layer maps it to 400, like Django's `SessionInterrupted`.
    #[error("the session no longer exists (deleted or expired meanwhile)")]
    NotFound,
    /// `update` found the record at another version than the one it was loaded at.
    #[error("the session was changed concurrently (version mismatch)")]
    Conflict,
    /// The store does not support this operation (see [`Capabilities`](crate::Capabilities)).
    #[error("this store does not support {operation}")]
    Unsupported {
        /// The operation that is not supported.
        operation: &'static str,
    },
    /// The backend could not be reached in time (connection refused or lost, pool timeout).
    /// The HTTP layer maps it to 503 by default.
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
    /// The codec could not encode the session map.
    #[error(transparent)]
    Codec(#[from] crate::CodecError),
    /// A value could not be converted to or from JSON for a typed `get`/`insert`.
    #[error("session value (de)serialization failed for key {key:?}: {source}")]
    Value {
        /// The session map key whose value failed.
        key: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The encoded session is larger than the configured limit; nothing was written.
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
    /// A save kept conflicting with concurrent writers beyond the configured retry limit.
    #[error("session save still conflicted after {attempts} attempts")]
    ConflictRetriesExhausted {
        /// How many updates were tried.
        attempts: u32,
    },
    /// A session key value was malformed.
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
}

impl Error {
    /// Wraps a backend error that means the store is unreachable right now.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_core::Error;
    /// let e = Error::unavailable(std::io::Error::other("connection reset"));
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
    /// use session_core::Error;
    /// let e = Error::backend(std::io::Error::other("syntax error"));
    /// assert!(!e.is_unavailable());
    /// ```
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend {
            source: source.into(),
        }
    }

    /// Whether the error means the store could not be reached (HTTP 503 territory).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_core::Error;
    /// assert!(!Error::NotFound.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}
