//! The record a store keeps for one session.

use chrono::{DateTime, Utc};

use crate::SessionKey;

/// One stored session, as stores see it: opaque encoded data plus the columns a store
/// needs to expire, version and index it.
///
/// Stores never look inside [`Record::data`]; it is whatever the configured
/// [`Codec`](crate::Codec) produced.
///
/// # Examples
///
/// ```
/// use session_kit::chrono::{Duration, Utc};
/// use session_kit::{Record, SessionKey};
///
/// let record = Record::new(SessionKey::generate(), "v1:{}".to_owned(), Utc::now() + Duration::hours(1));
/// assert_eq!(record.version, 1);
/// assert!(record.is_live_at(Utc::now()));
/// ```
/// With the `serde` feature, `Record` (and [`SessionKey`]) implement `Serialize` and
/// `Deserialize`, so a custom store can write records as they are (a key that is not well
/// formed fails to deserialize).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Record {
    /// The session key (the store's primary key).
    pub key: SessionKey,
    /// The codec's output for the session map.
    pub data: String,
    /// When the session stops existing. A record is live while `expires_at > now`.
    pub expires_at: DateTime<Utc>,
    /// Optimistic-concurrency version: stores compare it in
    /// [`update`](crate::SessionStore::update) and store `version + 1`.
    pub version: u64,
    /// The user this session belongs to, for the user index.
    pub user_id: Option<String>,
    /// When the session was first created.
    pub created_at: DateTime<Utc>,
    /// When the session was last saved or touched by a request (device metadata).
    pub last_active_at: Option<DateTime<Utc>>,
    /// The client's User-Agent (device metadata).
    pub user_agent: Option<String>,
    /// The client's IP address, as text (device metadata).
    pub ip: Option<String>,
}

impl Record {
    /// A new record at version 1, created now, with no user and no device metadata.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::chrono::{Duration, Utc};
    /// use session_kit::{Record, SessionKey};
    /// let r = Record::new(SessionKey::generate(), String::new(), Utc::now() + Duration::minutes(5));
    /// assert!(r.user_id.is_none());
    /// ```
    pub fn new(key: SessionKey, data: String, expires_at: DateTime<Utc>) -> Self {
        Self {
            key,
            data,
            expires_at,
            version: 1,
            user_id: None,
            created_at: Utc::now(),
            last_active_at: None,
            user_agent: None,
            ip: None,
        }
    }

    /// Sets [`user_id`](Self::user_id) (builder style, for stores and tests).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::chrono::{Duration, Utc};
    /// use session_kit::{Record, SessionKey};
    /// let r = Record::new(SessionKey::generate(), String::new(), Utc::now() + Duration::minutes(5))
    ///     .with_user(Some("alice"))
    ///     .with_version(7);
    /// assert_eq!((r.user_id.as_deref(), r.version), (Some("alice"), 7));
    /// ```
    pub fn with_user(mut self, user_id: Option<impl Into<String>>) -> Self {
        self.user_id = user_id.map(Into::into);
        self
    }

    /// Sets [`version`](Self::version) (builder style).
    ///
    /// # Examples
    ///
    /// See [`with_user`](Self::with_user).
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// Sets [`created_at`](Self::created_at) (builder style).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::chrono::{Duration, Utc};
    /// use session_kit::{Record, SessionKey};
    /// let t = Utc::now() - Duration::days(1);
    /// let r = Record::new(SessionKey::generate(), String::new(), Utc::now()).with_created_at(t);
    /// assert_eq!(r.created_at, t);
    /// ```
    pub fn with_created_at(mut self, created_at: DateTime<Utc>) -> Self {
        self.created_at = created_at;
        self
    }

    /// Whether the record is live at `now`: `expires_at > now`. An expired record counts as
    /// absent in every store operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::chrono::{Duration, Utc};
    /// use session_kit::{Record, SessionKey};
    /// let now = Utc::now();
    /// let r = Record::new(SessionKey::generate(), String::new(), now);
    /// assert!(!r.is_live_at(now));
    /// assert!(r.is_live_at(now - Duration::milliseconds(1)));
    /// ```
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the data: it is the user's session.
        f.debug_struct("Record")
            .field("key", &self.key)
            .field("data_len", &self.data.len())
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .field("user_id", &self.user_id.as_ref().map(|_| "<set>"))
            .field("created_at", &self.created_at)
            .field("last_active_at", &self.last_active_at)
            .finish_non_exhaustive()
    }
}
