//! Device metadata: which User-Agent and client IP a session is stored with.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, USER_AGENT};

use http::Request;

/// The longest User-Agent kept; longer values are cut (at a character boundary).
pub const MAX_USER_AGENT_LEN: usize = 512;

/// Where the client's IP address comes from.
///
/// # Examples
///
/// ```
/// use http::HeaderName;
/// use session_tower::IpSource;
///
/// // Behind a reverse proxy you trust, which sets `X-Real-IP`:
/// let source = IpSource::Header(HeaderName::from_static("x-real-ip"));
/// # let _ = source;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IpSource {
    /// Do not record an IP.
    None,
    /// The peer address of the connection: axum's `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`), or a plain
    /// [`SocketAddr`] request extension put there by your server.
    #[default]
    Connection,
    /// A header set by a reverse proxy you trust, such as `X-Real-IP` or
    /// `X-Forwarded-For`. With a comma-separated list the **last** entry is taken: the one
    /// your proxy appended (earlier entries are whatever the client claimed). Values that
    /// are not an IP address are ignored. Never use this without such a proxy: clients can
    /// send any header.
    Header(HeaderName),
}

/// Which device metadata the layer records with each session (off by default).
///
/// The values are handed to [`Session::set_user_agent`](session_core::Session::set_user_agent)
/// and [`Session::set_ip`](session_core::Session::set_ip) on every request, so they are
/// stored with the session's next write; the store keeps `last_active_at` itself on every
/// write and touch.
///
/// # Examples
///
/// ```
/// use session_tower::{DeviceMetadata, IpSource};
///
/// let meta = DeviceMetadata::default().with_user_agent(true).with_ip(IpSource::Connection);
/// assert!(meta.user_agent());
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
    /// use session_tower::{DeviceMetadata, IpSource};
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
    /// assert!(session_tower::DeviceMetadata::default().with_user_agent(true).user_agent());
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
    /// use session_tower::{DeviceMetadata, IpSource};
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
    pub fn user_agent(&self) -> bool {
        self.user_agent
    }

    /// Where the IP comes from, if it is recorded.
    pub fn ip(&self) -> Option<&IpSource> {
        self.ip.as_ref()
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.user_agent || self.ip.is_some()
    }

    /// The (User-Agent, IP) of a request, as configured.
    pub(crate) fn extract<B>(&self, req: &Request<B>) -> (Option<String>, Option<String>) {
        let user_agent = if self.user_agent {
            req.headers()
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(truncate_user_agent)
        } else {
            None
        };
        let ip = self.ip.as_ref().and_then(|source| client_ip(req, source));
        (user_agent, ip.map(|ip| ip.to_string()))
    }
}

fn truncate_user_agent(ua: &str) -> String {
    if ua.len() <= MAX_USER_AGENT_LEN {
        return ua.to_owned();
    }
    let mut end = MAX_USER_AGENT_LEN;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua[..end].to_owned()
}

/// The client IP of a request according to `source`.
fn client_ip<B>(req: &Request<B>, source: &IpSource) -> Option<IpAddr> {
    match source {
        IpSource::None => None,
        IpSource::Connection => connection_ip(req),
        IpSource::Header(name) => {
            // The last value of the last header line: what the nearest proxy appended.
            let value = req.headers().get_all(name).iter().next_back()?;
            let last = value.to_str().ok()?.rsplit(',').next()?.trim();
            parse_ip(last)
        }
    }
}

/// Accepts `1.2.3.4`, `1.2.3.4:port`, `::1`, `[::1]:port`.
fn parse_ip(value: &str) -> Option<IpAddr> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    tracing::debug!("client IP header value is not an IP address; ignored");
    None
}

fn connection_ip<B>(req: &Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0.ip());
    }
    req.extensions().get::<SocketAddr>().map(SocketAddr::ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_header_takes_the_last_entry() {
        let req = Request::builder()
            .header("x-forwarded-for", "6.6.6.6, 10.0.0.7")
            .body(())
            .expect("request");
        let source = IpSource::Header(HeaderName::from_static("x-forwarded-for"));
        assert_eq!(
            client_ip(&req, &source),
            Some("10.0.0.7".parse().expect("ip"))
        );
        let junk = Request::builder()
            .header("x-forwarded-for", "not an ip")
            .body(())
            .expect("request");
        assert_eq!(client_ip(&junk, &source), None);
    }

    #[test]
    fn long_user_agents_are_cut_on_a_char_boundary() {
        let ua = "é".repeat(MAX_USER_AGENT_LEN);
        let cut = truncate_user_agent(&ua);
        assert!(cut.len() <= MAX_USER_AGENT_LEN);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn plain_socket_addr_extension_is_read() {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert("[::1]:4000".parse::<SocketAddr>().expect("addr"));
        assert_eq!(connection_ip(&req), Some("::1".parse().expect("ip")));
        assert_eq!(parse_ip("[::1]:80"), Some("::1".parse().expect("ip")));
    }
}
