//! Session policy: expiry, codec, limits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Timelike, Utc};
use serde_json::Value;

use crate::codec::SessionMap;
use crate::{Codec, JsonCodec};

/// Django's default cookie age and idle timeout: two weeks.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The session map key under which a per-session expiry is kept, as Django does, so that an
/// expiry set by a Django app and by this library mean the same thing.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// A per-session expiry override, set with
/// [`Session::set_expiry`](crate::Session::set_expiry).
///
/// It is stored inside the session data under [`EXPIRY_KEY`] in Django's format: an integer
/// number of seconds of inactivity, `0` for "at browser close", or an ISO-8601 date string
/// for an absolute expiry.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_kit::Expiry;
///
/// let short = Expiry::Idle(Duration::from_secs(3600));
/// let at_close = Expiry::BrowserClose;
/// # let _ = (short, at_close);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// No override: the [`SessionConfig`] policy applies.
    #[default]
    Default,
    /// Expire after this much inactivity (sliding). Sub-second parts are dropped; zero means
    /// [`Expiry::BrowserClose`].
    Idle(Duration),
    /// Expire at this instant (absolute).
    At(DateTime<Utc>),
    /// A browser-session cookie (no Max-Age). The server still expires the row after the
    /// configured idle timeout.
    BrowserClose,
}

impl Expiry {
    /// Reads the override from a session map (Django's `_session_expiry`). Values of another
    /// shape are ignored (the policy applies), never an error.
    pub(crate) fn from_map(map: &SessionMap) -> Self {
        match map.get(EXPIRY_KEY) {
            None | Some(Value::Null) => Self::Default,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Self::BrowserClose,
                Some(secs) if secs > 0 => Self::Idle(Duration::from_secs(secs as u64)),
                // Negative seconds: already expired at the next save.
                Some(_) => Self::At(DateTime::<Utc>::MIN_UTC),
                None => Self::Default,
            },
            // Microseconds, as stored (`to_value`) and as Python keeps them: a value read
            // back after a save is the same `Expiry`.
            Some(Value::String(s)) => parse_iso(s)
                .map(|at| {
                    at.with_nanosecond(at.nanosecond() / 1000 * 1000)
                        .unwrap_or(at)
                })
                .map_or(Self::Default, Self::At),
            Some(_) => Self::Default,
        }
    }

    /// The JSON value to store under [`EXPIRY_KEY`], or `None` to remove it.
    pub(crate) fn to_value(self) -> Option<Value> {
        match self {
            Self::Default => None,
            Self::Idle(d) if d.as_secs() == 0 => Some(Value::from(0)),
            Self::Idle(d) => Some(Value::from(d.as_secs())),
            Self::BrowserClose => Some(Value::from(0)),
            Self::At(at) => Some(Value::from(format_iso(at))),
        }
    }
}

/// Formats like Python's `datetime.isoformat()` for an aware UTC datetime
/// (`2026-01-15T12:30:00+00:00`, microseconds when non-zero).
fn format_iso(at: DateTime<Utc>) -> String {
    let micros = at.timestamp_subsec_micros();
    let truncated = at.with_nanosecond(micros * 1000).unwrap_or(at);
    let format = if micros == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Micros
    };
    truncated.to_rfc3339_opts(format, false)
}

/// Parses an ISO-8601 date as Python's `datetime.fromisoformat` writes it: with an offset,
/// or naive (taken as UTC, as Django does with `USE_TZ`).
fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive.and_utc());
        }
    }
    None
}

/// The session policy shared by every [`Session`](crate::Session) of an application:
/// codec, expiry rules and limits.
///
/// Defaults follow Django: a two-week idle timeout, no absolute limit, persistent cookies.
/// On top of Django, reads extend an idle session with a cheap
/// [`touch`](crate::SessionStore::touch) at most once per [`touch_interval`](Self::with_touch_interval).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_kit::SessionConfig;
///
/// let config = SessionConfig::default()
///     .with_idle_timeout(Duration::from_secs(30 * 60))
///     .with_absolute_timeout(Some(Duration::from_secs(12 * 3600)));
/// assert_eq!(config.idle_timeout(), Duration::from_secs(1800));
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) codec: Arc<dyn Codec>,
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) expire_at_browser_close: bool,
    pub(crate) touch_interval: Option<Duration>,
    pub(crate) save_every_request: bool,
    pub(crate) max_conflict_retries: u32,
    pub(crate) max_create_attempts: u32,
    pub(crate) max_data_len: usize,
    /// Where the current auth hash of a user comes from (see `session/auth.rs`).
    pub(crate) auth_hash_source: Option<Arc<dyn crate::AuthHashSource>>,
    /// Django's `LOGIN_URL`: where "login required" redirects (`None`: answer 401).
    pub(crate) login_url: Option<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            codec: Arc::new(JsonCodec),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            absolute_timeout: None,
            expire_at_browser_close: false,
            touch_interval: Some(Duration::from_secs(60)),
            save_every_request: false,
            max_conflict_retries: 16,
            max_create_attempts: 10,
            max_data_len: 4 << 20,
            auth_hash_source: None,
            login_url: None,
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("expire_at_browser_close", &self.expire_at_browser_close)
            .field("touch_interval", &self.touch_interval)
            .field("save_every_request", &self.save_every_request)
            .field("max_conflict_retries", &self.max_conflict_retries)
            .field("max_create_attempts", &self.max_create_attempts)
            .field("max_data_len", &self.max_data_len)
            .field("auth_hash_source", &self.auth_hash_source.is_some())
            .field("login_url", &self.login_url)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// The codec for session data (default [`JsonCodec`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{JsonCodec, SessionConfig};
    /// let config = SessionConfig::default().with_codec(JsonCodec);
    /// # let _ = config;
    /// ```
    pub fn with_codec(mut self, codec: impl Codec) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    /// The same, for a codec already behind an `Arc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::{JsonCodec, SessionConfig};
    /// let config = SessionConfig::default().with_shared_codec(Arc::new(JsonCodec));
    /// # let _ = config;
    /// ```
    pub fn with_shared_codec(mut self, codec: Arc<dyn Codec>) -> Self {
        self.codec = codec;
        self
    }

    /// Idle (sliding) timeout, also the cookie's Max-Age (Django's `SESSION_COOKIE_AGE`).
    /// Default two weeks. A zero duration is raised to one second.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_idle_timeout(Duration::from_secs(600));
    /// assert_eq!(c.idle_timeout().as_secs(), 600);
    /// ```
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle.max(Duration::from_secs(1));
        self
    }

    /// Absolute timeout counted from the session's creation; the stored expiry is the
    /// earlier of the idle and the absolute limit. Default none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_absolute_timeout(Some(Duration::from_secs(8 * 3600)));
    /// assert!(c.absolute_timeout().is_some());
    /// ```
    pub fn with_absolute_timeout(mut self, absolute: Option<Duration>) -> Self {
        self.absolute_timeout = absolute;
        self
    }

    /// Browser-session cookies by default (Django's `SESSION_EXPIRE_AT_BROWSER_CLOSE`).
    /// The row still expires after the idle timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_expire_at_browser_close(true);
    /// # let _ = c;
    /// ```
    pub fn with_expire_at_browser_close(mut self, yes: bool) -> Self {
        self.expire_at_browser_close = yes;
        self
    }

    /// How far a read-only request must be able to push an idle session's expiry before it
    /// spends a [`touch`](crate::SessionStore::touch) on it (default one minute). `None`
    /// disables touching: expiry then only moves when the session is saved, as in Django.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_touch_interval(Some(Duration::from_secs(300)));
    /// # let _ = c;
    /// ```
    pub fn with_touch_interval(mut self, interval: Option<Duration>) -> Self {
        self.touch_interval = interval;
        self
    }

    /// Refresh the expiry and the cookie on every request with a session, even when nothing
    /// changed (Django's `SESSION_SAVE_EVERY_REQUEST`); uses a cheap touch, not a rewrite.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_save_every_request(true);
    /// # let _ = c;
    /// ```
    pub fn with_save_every_request(mut self, yes: bool) -> Self {
        self.save_every_request = yes;
        self
    }

    /// How many times a save replays its changes after a write by another process
    /// (default 16). Each retry reloads the record, after a jittered exponential backoff
    /// (100 µs doubling, at most 10 ms). Saves inside one process take turns and do not
    /// conflict with each other.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_max_conflict_retries(16);
    /// # let _ = c;
    /// ```
    pub fn with_max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }

    /// How many fresh keys `create` tries before giving up (default 10).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_max_create_attempts(3);
    /// # let _ = c;
    /// ```
    pub fn with_max_create_attempts(mut self, attempts: u32) -> Self {
        self.max_create_attempts = attempts.max(1);
        self
    }

    /// The largest encoded session accepted by a save (default 4 MiB); larger ones fail with
    /// [`Error::TooLarge`](crate::Error::TooLarge) and nothing is written.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionConfig;
    /// let c = SessionConfig::default().with_max_data_len(64 * 1024);
    /// # let _ = c;
    /// ```
    pub fn with_max_data_len(mut self, max: usize) -> Self {
        self.max_data_len = max;
        self
    }

    /// The codec in use.
    pub fn codec(&self) -> &Arc<dyn Codec> {
        &self.codec
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The absolute timeout, if any.
    pub fn absolute_timeout(&self) -> Option<Duration> {
        self.absolute_timeout
    }

    /// The expiry instant for a session with this override, created at `created_at`,
    /// saved at `now`: the earlier of the idle (or override) limit and the absolute limit.
    pub(crate) fn expiry_date(
        &self,
        expiry: Expiry,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let sliding = match expiry {
            Expiry::At(at) => at,
            Expiry::Idle(d) if d.as_secs() > 0 => add(now, d),
            _ => add(now, self.idle_timeout),
        };
        match self.absolute_timeout {
            Some(abs) => sliding.min(add(created_at, abs)),
            None => sliding,
        }
    }

    /// Whether the cookie is a browser-session cookie for this override.
    pub(crate) fn browser_close(&self, expiry: Expiry) -> bool {
        match expiry {
            Expiry::Default => self.expire_at_browser_close,
            Expiry::BrowserClose => true,
            Expiry::Idle(d) => d.as_secs() == 0,
            Expiry::At(_) => false,
        }
    }
}

/// `at + d`, saturating at the largest representable instant.
pub(crate) fn add(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_values_round_trip_in_django_format() {
        let at = DateTime::parse_from_rfc3339("2026-01-15T12:30:00+00:00")
            .expect("date")
            .with_timezone(&Utc);
        let cases = [
            (
                Expiry::Idle(Duration::from_secs(3600)),
                serde_json::json!(3600),
            ),
            (Expiry::BrowserClose, serde_json::json!(0)),
            (
                Expiry::At(at),
                serde_json::json!("2026-01-15T12:30:00+00:00"),
            ),
        ];
        for (expiry, value) in cases {
            assert_eq!(expiry.to_value(), Some(value.clone()));
            let mut map = SessionMap::new();
            map.insert(EXPIRY_KEY.into(), value);
            assert_eq!(Expiry::from_map(&map), expiry);
        }
        assert_eq!(Expiry::Default.to_value(), None);
    }

    #[test]
    fn python_isoformat_variants_parse() {
        for s in [
            "2026-01-15T12:30:00.123456+00:00",
            "2026-01-15T14:30:00+02:00",
            "2026-01-15T12:30:00",
            "2026-01-15 12:30:00.5",
        ] {
            assert!(parse_iso(s).is_some(), "{s}");
        }
        assert!(parse_iso("next tuesday").is_none());
        let micros = DateTime::parse_from_rfc3339("2026-01-15T12:30:00.123456789Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(format_iso(micros), "2026-01-15T12:30:00.123456+00:00");
    }

    #[test]
    fn absolute_limit_caps_idle_expiry() {
        let now = Utc::now();
        let c = SessionConfig::default()
            .with_idle_timeout(Duration::from_secs(3600))
            .with_absolute_timeout(Some(Duration::from_secs(7200)));
        let created = now - TimeDelta::seconds(7000);
        assert_eq!(
            c.expiry_date(Expiry::Default, created, now),
            created + TimeDelta::seconds(7200)
        );
        assert_eq!(
            c.expiry_date(Expiry::Default, now, now),
            now + TimeDelta::seconds(3600)
        );
    }

    #[test]
    fn odd_expiry_values_fall_back_to_policy() {
        for v in [
            serde_json::json!(true),
            serde_json::json!("soon"),
            serde_json::json!(1.5),
        ] {
            let mut map = SessionMap::new();
            map.insert(EXPIRY_KEY.into(), v);
            assert_eq!(Expiry::from_map(&map), Expiry::Default);
        }
    }
}
