//! The session cookie: its settings, their validation, reading it from `Cookie` headers and
//! writing the `Set-Cookie` and removal values.

use std::time::Duration;

use cookie::time::{Month, OffsetDateTime, Weekday};
use cookie::SameSite;
use session_core::SessionKey;

/// A cookie setting that was refused: it would produce a malformed `Set-Cookie` header, or
/// a cookie that browsers silently drop (a `__Host-` / `__Secure-` name without the
/// attributes its prefix demands).
///
/// # Examples
///
/// ```
/// use session_kit::{CookieConfigError, MemoryStore, SessionLayer};
///
/// let err = SessionLayer::new(MemoryStore::new()).with_cookie_name("bad name;").unwrap_err();
/// assert!(err.to_string().contains("cookie name"));
///
/// let err = SessionLayer::new(MemoryStore::new())
///     .with_domain(Some("example.com"))?
///     .with_cookie_name("__Host-id")
///     .unwrap_err();
/// assert!(matches!(err, CookieConfigError::HostPrefix { .. }));
/// assert!(err.to_string().contains("no Domain"));
/// # Ok::<(), CookieConfigError>(())
/// ```
///
/// With actix-web, the middleware's builder returns it from `build`
/// (`session_kit::actix::CookieConfigError` is the same type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieConfigError {
    /// The cookie name is empty or not an HTTP token.
    #[error("invalid cookie name {0:?}: it must be a non-empty HTTP token (letters, digits and !#$%&'*+-.^_`|~)")]
    Name(String),
    /// The path does not start with `/` or has a `;` or a control character.
    #[error("invalid cookie path {0:?}: it must start with '/' and contain no ';' or control characters")]
    Path(String),
    /// The domain is empty or has characters a domain cannot have.
    #[error("invalid cookie domain {0:?}")]
    Domain(String),
    /// A `__Host-` cookie name without `Secure`, with a path other than `/`, or with a
    /// `Domain`: browsers drop such a cookie without a word.
    #[error("cookie name {name:?}: the __Host- prefix needs Secure, Path=/ and no Domain, but {problem}; browsers silently drop such a cookie")]
    HostPrefix {
        /// The cookie name.
        name: String,
        /// What is wrong (`"Secure is off"`, `"the path is \"/app\""`,
        /// `"a Domain is set"`).
        problem: String,
    },
    /// A `__Secure-` cookie name without `Secure`: browsers drop such a cookie.
    #[error("cookie name {name:?}: the __Secure- prefix needs Secure, but Secure is off; browsers silently drop such a cookie")]
    SecurePrefix {
        /// The cookie name.
        name: String,
    },
}

/// The cookie name prefixes browsers enforce (RFC 6265bis), matched case-insensitively as
/// current browsers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookiePrefix {
    /// `__Host-`: Secure, `Path=/`, no `Domain`.
    Host,
    /// `__Secure-`: Secure.
    Secure,
}

impl CookiePrefix {
    /// The prefix of `name`, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_http::CookiePrefix;
    /// assert_eq!(CookiePrefix::of("__Host-id"), Some(CookiePrefix::Host));
    /// assert_eq!(CookiePrefix::of("__secure-id"), Some(CookiePrefix::Secure));
    /// assert_eq!(CookiePrefix::of("id"), None);
    /// ```
    pub fn of(name: &str) -> Option<Self> {
        let starts = |prefix: &str| {
            name.len() >= prefix.len()
                && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        };
        if starts("__Host-") {
            Some(Self::Host)
        } else if starts("__Secure-") {
            Some(Self::Secure)
        } else {
            None
        }
    }
}

/// The session cookie's attributes, validated as they are set. Defaults: name `id`, path
/// `/`, no domain, `Secure`, `HttpOnly`, `SameSite=Lax`, not partitioned.
///
/// Both HTTP integrations (`session-tower`, `session-actix`) keep one of these; the
/// rules it applies live here once:
///
/// - names are HTTP tokens, paths start with `/`, domains are host names;
/// - a `__Host-` name needs Secure, `Path=/` and no `Domain`; a `__Secure-` name needs
///   Secure ([`CookieConfigError::HostPrefix`], [`CookieConfigError::SecurePrefix`]);
/// - `SameSite=None`, `Partitioned` and a prefixed name force `Secure` on the cookie sent;
/// - the removal cookie has the same path, domain and flags as the cookie it removes.
///
/// # Examples
///
/// ```
/// use session_http::{CookieSettings, SameSite};
///
/// let cookie = CookieSettings::default()
///     .with_name("__Host-sid")?
///     .with_same_site(Some(SameSite::Strict));
/// cookie.validate()?;
/// let removal = cookie.removal_cookie();
/// assert!(removal.starts_with("__Host-sid=;"));
/// assert!(removal.contains("Max-Age=0"));
/// # Ok::<(), session_http::CookieConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
    partitioned: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            name: "id".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: Some(SameSite::Lax),
            partitioned: false,
        }
    }
}

impl CookieSettings {
    /// The cookie name (default `id`).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Name`] unless `name` is a non-empty HTTP token;
    /// [`CookieConfigError::HostPrefix`] / [`CookieConfigError::SecurePrefix`] when the
    /// name's prefix does not fit the settings made so far (set the path, domain and
    /// `Secure` first, or check everything at the end with [`validate`](Self::validate)).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = session_http::CookieSettings::default().with_name("sid")?;
    /// assert_eq!(c.name(), "sid");
    /// assert!(session_http::CookieSettings::default().with_secure(false).with_name("__Secure-sid").is_err());
    /// # Ok::<(), session_http::CookieConfigError>(())
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Result<Self, CookieConfigError> {
        let name = name.into();
        if !is_token(&name) {
            return Err(CookieConfigError::Name(name));
        }
        self.name = name;
        self.validate_prefix()?;
        Ok(self)
    }

    /// The cookie path (default `/`).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Path`] unless it starts with `/` and has no `;` or control
    /// characters; [`CookieConfigError::HostPrefix`] for a path other than `/` on a
    /// `__Host-` cookie.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = session_http::CookieSettings::default().with_path("/app")?;
    /// assert_eq!(c.path(), "/app");
    /// assert!(session_http::CookieSettings::default().with_path("app").is_err());
    /// # Ok::<(), session_http::CookieConfigError>(())
    /// ```
    pub fn with_path(mut self, path: impl Into<String>) -> Result<Self, CookieConfigError> {
        let path = path.into();
        if !path.starts_with('/') || path.contains(';') || path.chars().any(char::is_control) {
            return Err(CookieConfigError::Path(path));
        }
        self.path = path;
        self.validate_prefix()?;
        Ok(self)
    }

    /// The cookie domain (default none: host-only).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Domain`] for an empty value or one with characters other than
    /// letters, digits, `-` and `.`; [`CookieConfigError::HostPrefix`] for any domain on a
    /// `__Host-` cookie.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = session_http::CookieSettings::default().with_domain(Some("example.com"))?;
    /// assert_eq!(c.domain(), Some("example.com"));
    /// assert!(session_http::CookieSettings::default().with_domain(Some("a b")).is_err());
    /// # Ok::<(), session_http::CookieConfigError>(())
    /// ```
    pub fn with_domain(
        mut self,
        domain: Option<impl Into<String>>,
    ) -> Result<Self, CookieConfigError> {
        let domain = domain.map(Into::into);
        if let Some(d) = &domain {
            let ok = !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(CookieConfigError::Domain(d.clone()));
            }
        }
        self.domain = domain;
        self.validate_prefix()?;
        Ok(self)
    }

    /// The `Secure` flag (default on). Turn it off only for plain-HTTP development.
    /// `SameSite=None`, `Partitioned` and a `__Host-`/`__Secure-` name still force it on
    /// the cookie sent; [`validate`](Self::validate) reports the prefixed-name case as an
    /// error.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_http::CookieSettings::default().with_secure(false).secure());
    /// ```
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The `HttpOnly` flag (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_http::CookieSettings::default().with_http_only(false).http_only());
    /// ```
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The `SameSite` attribute (default `Lax`; `None` omits the attribute).
    /// `SameSite=None` forces `Secure`, as browsers require.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_http::{CookieSettings, SameSite};
    /// let c = CookieSettings::default().with_same_site(Some(SameSite::Strict));
    /// assert_eq!(c.same_site(), Some(SameSite::Strict));
    /// ```
    pub fn with_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.same_site = same_site;
        self
    }

    /// The `Partitioned` attribute (CHIPS; default off). Forces `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_http::CookieSettings::default().with_partitioned(true).partitioned());
    /// ```
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// Checks every rule at once (a builder calls this when it is built): the name, path
    /// and domain syntax and the `__Host-`/`__Secure-` prefix requirements, including
    /// `Secure`.
    ///
    /// # Errors
    ///
    /// The first [`CookieConfigError`] found.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_http::{CookieConfigError, CookieSettings};
    /// let c = CookieSettings::default().with_name("__Host-id")?.with_secure(false);
    /// let err = c.validate().unwrap_err();
    /// assert!(err.to_string().contains("Secure is off"), "{err}");
    /// # Ok::<(), CookieConfigError>(())
    /// ```
    pub fn validate(&self) -> Result<(), CookieConfigError> {
        Self::default()
            .with_secure(self.secure)
            .with_path(self.path.clone())?
            .with_domain(self.domain.clone())?
            .with_name(self.name.clone())?;
        Ok(())
    }

    /// The prefix rules against the settings as they are now.
    fn validate_prefix(&self) -> Result<(), CookieConfigError> {
        match CookiePrefix::of(&self.name) {
            None => Ok(()),
            Some(CookiePrefix::Secure) if !self.secure => Err(CookieConfigError::SecurePrefix {
                name: self.name.clone(),
            }),
            Some(CookiePrefix::Secure) => Ok(()),
            Some(CookiePrefix::Host) => {
                let problem = if !self.secure {
                    Some("Secure is off".to_owned())
                } else if self.path != "/" {
                    Some(format!("the path is {:?}", self.path))
                } else if self.domain.is_some() {
                    Some("a Domain is set".to_owned())
                } else {
                    None
                };
                match problem {
                    Some(problem) => Err(CookieConfigError::HostPrefix {
                        name: self.name.clone(),
                        problem,
                    }),
                    None => Ok(()),
                }
            }
        }
    }

    /// The cookie name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_http::CookieSettings::default().name(), "id");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cookie path.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_http::CookieSettings::default().path(), "/");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cookie domain, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_http::CookieSettings::default().domain(), None);
    /// ```
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The configured `Secure` flag (see [`effective_secure`](Self::effective_secure) for
    /// what is sent).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_http::CookieSettings::default().secure());
    /// ```
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Whether the cookie sent carries `Secure`: the flag, or forced by `SameSite=None`,
    /// `Partitioned` or a `__Host-`/`__Secure-` name.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_http::{CookieSettings, SameSite};
    /// let c = CookieSettings::default().with_secure(false);
    /// assert!(!c.effective_secure());
    /// assert!(c.with_same_site(Some(SameSite::None)).effective_secure());
    /// ```
    pub fn effective_secure(&self) -> bool {
        self.secure
            || self.partitioned
            || matches!(self.same_site, Some(SameSite::None))
            || CookiePrefix::of(&self.name).is_some()
    }

    /// The `HttpOnly` flag.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_http::CookieSettings::default().http_only());
    /// ```
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// The `SameSite` attribute.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_http::SameSite;
    /// assert_eq!(session_http::CookieSettings::default().same_site(), Some(SameSite::Lax));
    /// ```
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// The `Partitioned` attribute.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_http::CookieSettings::default().partitioned());
    /// ```
    pub fn partitioned(&self) -> bool {
        self.partitioned
    }

    /// The `Set-Cookie` value: `name=value`, then the attributes in the order (and with the
    /// spelling) the `cookie` crate's `Display` writes them, straight into one string of the
    /// exact length (so the header value takes it without a copy). `max_age` is the
    /// `Max-Age` in seconds and the `Expires` date, if any.
    fn render(&self, value: &str, max_age: Option<(u64, Option<OffsetDateTime>)>) -> String {
        let same_site = self.same_site.map(|s| match s {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        });
        // The cookie crate writes the domain without a leading dot.
        let domain = self
            .domain
            .as_deref()
            .map(|d| d.strip_prefix('.').unwrap_or(d));
        let secure = self.effective_secure();
        let flag = |on: bool, text: &str| if on { text.len() } else { 0 };
        let len = self.name.len()
            + 1
            + value.len()
            + flag(self.http_only, "; HttpOnly")
            + same_site.map_or(0, |s| "; SameSite=".len() + s.len())
            + flag(self.partitioned, "; Partitioned")
            + flag(secure, "; Secure")
            + "; Path=".len()
            + self.path.len()
            + domain.map_or(0, |d| "; Domain=".len() + d.len())
            + max_age.map_or(0, |(secs, expires)| {
                "; Max-Age=".len()
                    + digits(secs)
                    + expires.map_or(0, |at| "; Expires=".len() + http_date_len(at))
            });
        let mut out = String::with_capacity(len);
        out.push_str(&self.name);
        out.push('=');
        out.push_str(value);
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if let Some(same_site) = same_site {
            out.push_str("; SameSite=");
            out.push_str(same_site);
        }
        if self.partitioned {
            out.push_str("; Partitioned");
        }
        if secure {
            out.push_str("; Secure");
        }
        out.push_str("; Path=");
        out.push_str(&self.path);
        if let Some(domain) = domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if let Some((secs, expires)) = max_age {
            out.push_str("; Max-Age=");
            push_decimal(&mut out, secs);
            if let Some(at) = expires {
                out.push_str("; Expires=");
                push_http_date(&mut out, at);
            }
        }
        out
    }

    /// The `Set-Cookie` value for a session key: `Max-Age` and `Expires` from `max_age`
    /// (neither for a browser-close session, `None`), and the configured attributes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::SessionKey;
    ///
    /// let key = SessionKey::generate();
    /// let v = session_http::CookieSettings::default().set_cookie(&key, Some(Duration::from_secs(60)));
    /// assert!(v.starts_with(&format!("id={}", key.as_str())));
    /// assert!(v.contains("Max-Age=60") && v.contains("HttpOnly") && v.contains("Secure"));
    /// ```
    pub fn set_cookie(&self, key: &SessionKey, max_age: Option<Duration>) -> String {
        let max_age = max_age.map(|age| {
            let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX / 2);
            let expires =
                OffsetDateTime::now_utc().checked_add(cookie::time::Duration::seconds(secs));
            (secs.unsigned_abs(), expires)
        });
        self.render(key.as_str(), max_age)
    }

    /// The `Set-Cookie` value that removes the cookie (same path, domain and flags, empty
    /// value, `Max-Age=0`, `Expires` in 1970).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = session_http::CookieSettings::default().with_path("/app")?.removal_cookie();
    /// assert!(v.starts_with("id=;") && v.contains("Path=/app") && v.contains("Max-Age=0"));
    /// # Ok::<(), session_http::CookieConfigError>(())
    /// ```
    pub fn removal_cookie(&self) -> String {
        self.render("", Some((0, Some(OffsetDateTime::UNIX_EPOCH))))
    }

    /// This cookie in a request's `Cookie` header values (one or more header lines), parsed
    /// once: whether the request sent it at all, and the first well-formed session key
    /// among the values sent under the name.
    ///
    /// Browsers send cookies with longer paths first, so with two cookies of one name on
    /// nested paths the more specific one wins, and a stale malformed value never shadows
    /// a good one.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_core::SessionKey;
    /// use session_http::CookieSettings;
    ///
    /// let key = SessionKey::generate();
    /// let line = format!("id=junk; id={}; other=1", key.as_str());
    /// let sent = CookieSettings::default().find([line.as_str()]);
    /// assert!(sent.sent);
    /// assert_eq!(sent.key, Some(key));
    /// assert!(!CookieSettings::default().find(["a=1"]).sent);
    /// ```
    pub fn find<'a>(&self, cookie_headers: impl IntoIterator<Item = &'a str>) -> SentCookie {
        let mut sent = false;
        let values = cookie_headers
            .into_iter()
            .flat_map(cookie_pairs)
            .filter(|(name, _)| *name == self.name);
        for (_, value) in values {
            sent = true;
            match SessionKey::parse(value) {
                Ok(key) => {
                    return SentCookie {
                        sent,
                        key: Some(key),
                    }
                }
                Err(err) => tracing::debug!(%err, "malformed session cookie ignored"),
            }
        }
        SentCookie { sent, key: None }
    }
}

/// The session cookie of a request, as [`CookieSettings::find`] parsed it.
///
/// # Examples
///
/// ```
/// let sent = session_http::CookieSettings::default().find(["id=short"]);
/// assert_eq!(sent, session_http::SentCookie { sent: true, key: None });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCookie {
    /// The request carried the cookie (well-formed or not).
    pub sent: bool,
    /// Its first well-formed value.
    pub key: Option<SessionKey>,
}

/// The `(name, value)` pairs of one `Cookie` header line, read in place (no copy), exactly
/// as `cookie::Cookie::split_parse` reads them, with the value as its `value_trimmed`: the
/// line is split at every `;`; a piece that is blank, has no `=` or an empty name is skipped;
/// name and value are trimmed of whitespace, then the value of one pair of surrounding
/// double quotes.
fn cookie_pairs(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split(';').filter_map(|piece| {
        let (name, value) = piece.trim().split_once('=')?;
        let name = name.trim();
        let value = value.trim();
        let value = match value.as_bytes() {
            [b'"', .., b'"'] => &value[1..value.len() - 1],
            _ => value,
        };
        (!name.is_empty()).then_some((name, value))
    })
}

/// The number of decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// Appends `n` (below 100) as two digits.
fn push_two_digits(out: &mut String, n: u8) {
    out.push(char::from(b'0' + n / 10 % 10));
    out.push(char::from(b'0' + n % 10));
}

/// What the `cookie` crate writes in `Expires` for any later date (it caps dates at the
/// end of year 9999, as RFC 6265 requires).
const LAST_EXPIRES: &str = "Fri, 31 Dec 9999 23:59:59 GMT";

/// The length of what [`push_http_date`] appends for `at`.
fn http_date_len(at: OffsetDateTime) -> usize {
    let year = at.year();
    if year > 9999 {
        LAST_EXPIRES.len()
    } else {
        "Thu, 01 Jan ".len()
            + usize::from(year < 0)
            + digits(u64::from(year.unsigned_abs()))
            + " 00:00:00 GMT".len()
    }
}

/// Appends `at` (a UTC date) as the `cookie` crate writes `Expires`:
/// `Thu, 01 Jan 1970 00:00:00 GMT` (its `[weekday repr:short], [day] [month repr:short]
/// [year padding:none] [hour]:[minute]:[second] GMT`), without its general-purpose
/// formatter.
fn push_http_date(out: &mut String, at: OffsetDateTime) {
    if at.year() > 9999 {
        out.push_str(LAST_EXPIRES);
        return;
    }
    out.push_str(match at.weekday() {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    });
    out.push_str(", ");
    push_two_digits(out, at.day());
    out.push(' ');
    out.push_str(match at.month() {
        Month::January => "Jan",
        Month::February => "Feb",
        Month::March => "Mar",
        Month::April => "Apr",
        Month::May => "May",
        Month::June => "Jun",
        Month::July => "Jul",
        Month::August => "Aug",
        Month::September => "Sep",
        Month::October => "Oct",
        Month::November => "Nov",
        Month::December => "Dec",
    });
    out.push(' ');
    if at.year() < 0 {
        out.push('-');
    }
    push_decimal(out, u64::from(at.year().unsigned_abs()));
    out.push(' ');
    push_two_digits(out, at.hour());
    out.push(':');
    push_two_digits(out, at.minute());
    out.push(':');
    push_two_digits(out, at.second());
    out.push_str(" GMT");
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cookie::Cookie;

    #[test]
    fn cookie_lines_are_read_exactly_as_the_cookie_crate_reads_them() {
        let crate_pairs = |line: &str| -> Vec<(String, String)> {
            Cookie::split_parse(line)
                .filter_map(Result::ok)
                .map(|c| (c.name().to_owned(), c.value_trimmed().to_owned()))
                .collect()
        };
        let ours = |line: &str| -> Vec<(String, String)> {
            cookie_pairs(line)
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        };
        let mut lines: Vec<String> = [
            "",
            ";",
            " ; ;",
            "id=abc",
            "id=abc; other=1",
            " id = \"abc\" ;other=\"",
            "id=\"",
            "id=\"\"",
            "=x; id=; id==; id=a=b",
            "novalue; id",
            "\u{a0}id\u{a0}=\u{a0}v\u{3000}; \u{2003}",
            "a=1;;b=2;",
            "\tid\t=\t\"q\"\t",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Pseudo-random lines over the characters that matter.
        let alphabet = ['i', 'd', '=', ';', ' ', '\t', '"', 'x', '\u{a0}', 'é'];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..5000 {
            let mut line = String::new();
            for _ in 0..(seed % 13) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                line.push(alphabet[usize::try_from(seed % 10).unwrap()]);
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            lines.push(line);
        }
        for line in &lines {
            assert_eq!(ours(line), crate_pairs(line), "{line:?}");
        }
    }

    #[test]
    fn cookie_lookup_takes_the_first_match_across_headers() {
        let c = CookieSettings::default();
        // Neither value is a well-formed key: sent, but no key.
        assert_eq!(
            c.find(["a=1; idx=2", "id=first; id=second"]),
            SentCookie {
                sent: true,
                key: None
            }
        );
        assert_eq!(
            c.find([]),
            SentCookie {
                sent: false,
                key: None
            }
        );
        // A well-formed key is preferred over a stale malformed value.
        let key = SessionKey::generate();
        let line = format!(
            "id=junk; id={}; id={}",
            key.as_str(),
            SessionKey::generate().as_str()
        );
        assert_eq!(c.find([line.as_str()]).key, Some(key.clone()));
        // Two well-formed keys in two headers: the first one sent wins.
        let first = format!("id={}", key.as_str());
        let second = format!("id={}", SessionKey::generate().as_str());
        assert_eq!(
            c.find(["a=1", first.as_str(), second.as_str()]).key,
            Some(key.clone())
        );
        // Quoted values and spacing.
        let quoted = format!("a=1;  id=\"{}\"", key.as_str());
        assert_eq!(c.find([quoted.as_str()]).key, Some(key));
    }

    /// The value as the `cookie` crate writes it for these settings (what `set_cookie` and
    /// `removal_cookie` built with it before they wrote the value themselves).
    fn with_the_cookie_crate(
        c: &CookieSettings,
        value: &str,
        max_age: Option<(u64, Option<OffsetDateTime>)>,
    ) -> String {
        let mut b = Cookie::build((c.name.clone(), value.to_owned()))
            .path(c.path.clone())
            .http_only(c.http_only);
        if let Some(domain) = &c.domain {
            b = b.domain(domain.clone());
        }
        if c.effective_secure() {
            b = b.secure(true);
        }
        if let Some(same_site) = c.same_site {
            b = b.same_site(same_site);
        }
        if c.partitioned {
            b = b.partitioned(true);
        }
        if let Some((secs, expires)) = max_age {
            b = b.max_age(cookie::time::Duration::seconds(
                i64::try_from(secs).unwrap(),
            ));
            if let Some(at) = expires {
                b = b.expires(at);
            }
        }
        b.build().to_string()
    }

    #[test]
    fn values_are_written_exactly_as_the_cookie_crate_writes_them() {
        let base = CookieSettings::default();
        let settings = [
            base.clone(),
            base.clone().with_secure(false),
            base.clone().with_http_only(false),
            base.clone().with_same_site(None),
            base.clone().with_same_site(Some(SameSite::Strict)),
            base.clone()
                .with_secure(false)
                .with_same_site(Some(SameSite::None)),
            base.clone().with_secure(false).with_partitioned(true),
            base.clone().with_path("/app").unwrap(),
            base.clone().with_domain(Some("example.com")).unwrap(),
            base.clone().with_domain(Some(".example.com")).unwrap(),
            base.clone()
                .with_name("__Host-sid")
                .unwrap()
                .with_secure(false),
            base.clone()
                .with_secure(false)
                .with_http_only(false)
                .with_same_site(None),
        ];
        let start = OffsetDateTime::from_unix_timestamp(1_764_547_200).unwrap();
        let mut dates = vec![
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap(), // 9999-12-31 23:59:59
            OffsetDateTime::from_unix_timestamp(946_684_799).unwrap(),
        ];
        // Every weekday, month, day and hour: steps of 37 h 13 min 7 s over four years.
        dates.extend((0..950).map(|i| start + cookie::time::Duration::seconds(i * 133_987)));
        let key = SessionKey::generate();
        for c in &settings {
            for max_age in [
                None,
                Some((0, Some(OffsetDateTime::UNIX_EPOCH))),
                Some((u64::try_from(i64::MAX / 2).unwrap(), None)),
                Some((1_209_600, Some(start))),
                Some((7, None)),
            ] {
                let ours = c.render(key.as_str(), max_age);
                assert_eq!(ours, with_the_cookie_crate(c, key.as_str(), max_age));
                assert_eq!(ours.len(), ours.capacity(), "{ours}");
            }
            assert_eq!(
                c.removal_cookie(),
                with_the_cookie_crate(c, "", Some((0, Some(OffsetDateTime::UNIX_EPOCH))))
            );
        }
        for at in dates {
            let max_age = Some((60, Some(at)));
            let ours = base.render(key.as_str(), max_age);
            assert_eq!(ours, with_the_cookie_crate(&base, key.as_str(), max_age));
            assert_eq!(ours.len(), ours.capacity(), "{ours}");
        }
        // The cap the cookie crate applies, for dates past year 9999.
        let last = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        assert!(base
            .render("v", Some((1, Some(last))))
            .ends_with(&format!("; Expires={LAST_EXPIRES}")));
        // A real Set-Cookie: Max-Age from the duration, Expires that far from now.
        let v = base.set_cookie(&key, Some(Duration::from_secs(3600)));
        assert!(
            v.starts_with(&format!(
                "id={}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=3600; Expires=",
                key.as_str()
            )),
            "{v}"
        );
        assert_eq!(v.len(), v.capacity());
        assert!(!base
            .set_cookie(&key, Some(Duration::from_secs(u64::MAX)))
            .contains("Expires"));
    }

    #[test]
    fn removal_cookie_keeps_path_domain_and_flags() {
        let c = CookieSettings::default()
            .with_path("/app")
            .unwrap()
            .with_domain(Some("example.com"))
            .unwrap();
        let v = c.removal_cookie();
        for part in [
            "id=",
            "Path=/app",
            "Domain=example.com",
            "Secure",
            "Max-Age=0",
            "SameSite=Lax",
            "HttpOnly",
        ] {
            assert!(v.contains(part), "{v} lacks {part}");
        }
    }

    #[test]
    fn prefixes_are_validated_in_any_order() {
        let host = CookieSettings::default().with_name("__Host-id").unwrap();
        assert!(host.validate().is_ok());
        assert!(matches!(
            host.clone().with_path("/app"),
            Err(CookieConfigError::HostPrefix { .. })
        ));
        assert!(matches!(
            host.clone().with_domain(Some("example.com")),
            Err(CookieConfigError::HostPrefix { .. })
        ));
        assert!(host.clone().with_secure(false).validate().is_err());
        // Forced Secure on the wire even when the flag was turned off afterwards.
        assert!(host
            .with_secure(false)
            .set_cookie(&SessionKey::generate(), None)
            .contains("Secure"));
        // Case-insensitive, like browsers.
        assert!(CookieSettings::default()
            .with_path("/x")
            .unwrap()
            .with_name("__HOST-id")
            .is_err());
        let secure = CookieSettings::default()
            .with_path("/x")
            .unwrap()
            .with_domain(Some("example.com"))
            .unwrap()
            .with_name("__Secure-id")
            .unwrap();
        assert!(secure.validate().is_ok());
        let err = secure.with_secure(false).validate().unwrap_err();
        assert!(
            matches!(err, CookieConfigError::SecurePrefix { .. }),
            "{err}"
        );
        // Syntax errors still come first.
        assert!(matches!(
            CookieSettings::default().with_name(""),
            Err(CookieConfigError::Name(_))
        ));
    }
}
