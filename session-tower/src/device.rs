//! Device metadata: which User-Agent and client IP a session is stored with.

use std::net::{IpAddr, SocketAddr};

use http::header::HeaderName;
#[cfg(test)]
use http::header::USER_AGENT;
use http::Request;

pub use session_http::MAX_USER_AGENT_LEN;

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

    /// The same settings for the framework-agnostic rules.
    pub(crate) fn to_rules(&self) -> session_http::DeviceMetadata {
        let ip = match &self.ip {
            None | Some(IpSource::None) => session_http::IpSource::None,
            Some(IpSource::Connection) => session_http::IpSource::Connection,
            Some(IpSource::Header(name)) => session_http::IpSource::header(name.as_str()),
        };
        session_http::DeviceMetadata::default()
            .with_user_agent(self.user_agent)
            .with_ip(ip)
    }
}

/// A request as the shared rules see it: header values and the peer address (axum's
/// `ConnectInfo<SocketAddr>`, or a plain [`SocketAddr`] extension).
pub(crate) struct Head<'a, B>(pub(crate) &'a Request<B>);

impl<B> session_http::RequestHead for Head<'_, B> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.0
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        connection_ip(self.0)
    }
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
    use session_http::RequestHead;

    #[test]
    fn trusted_header_takes_the_last_entry() {
        let req = Request::builder()
            .header("x-forwarded-for", "6.6.6.6, 10.0.0.7")
            .header(USER_AGENT, "UA/1")
            .body(())
            .expect("request");
        let meta = DeviceMetadata::all()
            .with_ip(IpSource::Header(HeaderName::from_static("x-forwarded-for")))
            .to_rules();
        assert_eq!(
            meta.extract(&Head(&req)),
            (Some("UA/1".to_owned()), Some("10.0.0.7".to_owned()))
        );
        let junk = Request::builder()
            .header("x-forwarded-for", "not an ip")
            .body(())
            .expect("request");
        assert_eq!(meta.extract(&Head(&junk)).1, None);
    }

    #[test]
    fn plain_socket_addr_extension_is_read() {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert("[::1]:4000".parse::<SocketAddr>().expect("addr"));
        assert_eq!(Head(&req).peer_ip(), Some("::1".parse().expect("ip")));
    }
}
