//! Device metadata: which User-Agent and client IP a session is stored with. The settings
//! are `session-http`'s ([`DeviceMetadata`], [`IpSource`]); the peer address comes from
//! axum's `ConnectInfo<SocketAddr>` or a plain [`SocketAddr`] request extension.

use std::net::{IpAddr, SocketAddr};

#[cfg(test)]
use http::header::USER_AGENT;
use http::Request;

pub use session_http::{DeviceMetadata, IpSource, MAX_USER_AGENT_LEN};

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
        let meta = DeviceMetadata::all().with_ip(IpSource::header("X-Forwarded-For"));
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
