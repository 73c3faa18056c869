//! Device metadata: which User-Agent and client IP a session is stored with, decided from
//! plain header strings and the peer address.

use std::net::{IpAddr, SocketAddr};

use crate::RequestHead;

/// The longest User-Agent kept; longer values are cut (at a character boundary).
///
/// # Examples
///
/// ```
/// // With `session-kit`, the constant is in the `actix` module (feature `actix`).
/// assert_eq!(session_kit::actix::MAX_USER_AGENT_LEN, 512);
/// ```
pub const MAX_USER_AGENT_LEN: usize = 512;

/// Where the client's IP address comes from.
///
/// # Examples
///
/// ```
/// use session_kit::IpSource; // `session_kit::actix::IpSource` is the same type
///
/// // Behind a reverse proxy you trust, which sets `X-Real-IP`:
/// let source = IpSource::header("X-Real-IP");
/// assert_eq!(source, IpSource::Header("x-real-ip".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IpSource {
    /// Do not record an IP.
    None,
    /// The peer address of the connection.
    #[default]
    Connection,
    /// A header set by a reverse proxy you trust, such as `X-Real-IP` or
    /// `X-Forwarded-For` (the lower-case header name). With a comma-separated list the
    /// **last** entry of the last line is taken: the one your proxy appended (earlier
    /// entries are whatever the client claimed). Values that are not an IP address are
    /// ignored. Never use this without such a proxy: clients can send any header.
    Header(String),
}

impl IpSource {
    /// [`IpSource::Header`] for `name` (stored lower-case, as HTTP header names compare).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::IpSource;
    /// assert_eq!(IpSource::header("X-Forwarded-For"), IpSource::Header("x-forwarded-for".into()));
    /// ```
    pub fn header(name: impl AsRef<str>) -> Self {
        Self::Header(name.as_ref().to_ascii_lowercase())
    }
}

/// Which device metadata an integration records with each session (off by default).
///
/// The values are handed to [`Session::set_user_agent`](session_core::Session::set_user_agent)
/// and [`Session::set_ip`](session_core::Session::set_ip) on every request, so they are
/// stored with the session's next write; the store keeps `last_active_at` itself on every
/// write and touch.
///
/// # Examples
///
/// ```
/// use session_kit::{DeviceMetadata, IpSource}; // also in `session_kit::actix`
///
/// let meta = DeviceMetadata::default().with_user_agent(true).with_ip(IpSource::Connection);
/// assert!(meta.user_agent());
/// assert!(meta.is_enabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceMetadata {
    user_agent: bool,
    ip: Option<IpSource>,
}

impl DeviceMetadata {
    /// User-Agent and the connection's peer address: what a "your devices" page needs when
    /// the application faces clients directly.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{DeviceMetadata, IpSource};
    /// assert_eq!(DeviceMetadata::all().ip(), Some(&IpSource::Connection));
    /// ```
    pub fn all() -> Self {
        Self {
            user_agent: true,
            ip: Some(IpSource::Connection),
        }
    }

    /// Record the `User-Agent` header.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_kit::DeviceMetadata::default().with_user_agent(true).user_agent());
    /// ```
    pub fn with_user_agent(mut self, yes: bool) -> Self {
        self.user_agent = yes;
        self
    }

    /// Record the client IP from `source` ([`IpSource::None`] turns it off).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{DeviceMetadata, IpSource};
    /// assert_eq!(DeviceMetadata::all().with_ip(IpSource::None).ip(), None);
    /// ```
    pub fn with_ip(mut self, source: IpSource) -> Self {
        self.ip = match source {
            IpSource::None => None,
            other => Some(other),
        };
        self
    }

    /// Whether the User-Agent is recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_kit::DeviceMetadata::default().user_agent());
    /// ```
    pub fn user_agent(&self) -> bool {
        self.user_agent
    }

    /// Where the IP comes from, if it is recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::DeviceMetadata::default().ip(), None);
    /// ```
    pub fn ip(&self) -> Option<&IpSource> {
        self.ip.as_ref()
    }

    /// Whether anything is recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!session_kit::DeviceMetadata::default().is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.user_agent || self.ip.is_some()
    }

    /// The (User-Agent, IP) of a request, as configured. The session layer or middleware
    /// calls it; [`RequestHead`] is `session-http`'s view of a request, for writing an
    /// integration (`session-kit` does not re-export it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use session_http::RequestHead;
    /// use session_kit::{DeviceMetadata, IpSource};
    ///
    /// struct Req;
    /// impl RequestHead for Req {
    ///     fn header_values(&self, name: &str) -> Vec<&str> {
    ///         match name { "user-agent" => vec!["Browser/1"], "x-real-ip" => vec!["203.0.113.9"], _ => vec![] }
    ///     }
    ///     fn peer_ip(&self) -> Option<IpAddr> { "127.0.0.1".parse().ok() }
    /// }
    /// let (ua, ip) = DeviceMetadata::all().extract(&Req);
    /// assert_eq!((ua.as_deref(), ip.as_deref()), (Some("Browser/1"), Some("127.0.0.1")));
    /// let (_, ip) = DeviceMetadata::all().with_ip(IpSource::header("x-real-ip")).extract(&Req);
    /// assert_eq!(ip.as_deref(), Some("203.0.113.9"));
    /// ```
    pub fn extract(&self, req: &dyn RequestHead) -> (Option<String>, Option<String>) {
        let user_agent = if self.user_agent {
            req.header_values("user-agent")
                .first()
                .map(|ua| truncate_user_agent(ua))
        } else {
            None
        };
        let ip = match &self.ip {
            None | Some(IpSource::None) => None,
            Some(IpSource::Connection) => req.peer_ip(),
            Some(IpSource::Header(name)) => ip_from_header(&req.header_values(name)),
        };
        (user_agent, ip.map(|ip| ip.to_string()))
    }
}

/// A User-Agent cut to [`MAX_USER_AGENT_LEN`] bytes at a character boundary.
///
/// # Examples
///
/// ```
/// let ua = "é".repeat(600);
/// let cut = session_http::truncate_user_agent(&ua);
/// assert!(cut.len() <= session_http::MAX_USER_AGENT_LEN && cut.chars().all(|c| c == 'é'));
/// ```
pub fn truncate_user_agent(ua: &str) -> String {
    if ua.len() <= MAX_USER_AGENT_LEN {
        return ua.to_owned();
    }
    let mut end = MAX_USER_AGENT_LEN;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua[..end].to_owned()
}

/// The client IP from a trusted proxy header's values: the last entry of the last line
/// (what the nearest proxy appended); `None` if it is not an IP address.
///
/// # Examples
///
/// ```
/// use session_http::ip_from_header;
/// assert_eq!(ip_from_header(&["6.6.6.6, 10.0.0.7"]), "10.0.0.7".parse().ok());
/// assert_eq!(ip_from_header(&["not an ip"]), None);
/// assert_eq!(ip_from_header(&[]), None);
/// ```
pub fn ip_from_header(values: &[&str]) -> Option<IpAddr> {
    let last = values.last()?.rsplit(',').next()?.trim();
    parse_ip(last)
}

/// Accepts `1.2.3.4`, `1.2.3.4:port`, `::1`, `[::1]:port`.
///
/// # Examples
///
/// ```
/// assert_eq!(session_http::parse_ip("[::1]:80"), "::1".parse().ok());
/// assert_eq!(session_http::parse_ip("1.2.3.4"), "1.2.3.4".parse().ok());
/// ```
pub fn parse_ip(value: &str) -> Option<IpAddr> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    tracing::debug!("client IP header value is not an IP address; ignored");
    None
}
