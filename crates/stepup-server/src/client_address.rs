//! The client's network address, for per-client limits: the TCP peer, or — behind a reverse proxy the
//! configuration names — the last address of the proxy's header (`trusted_proxy_header`, e.g.
//! `X-Forwarded-For`).
//!
//! Why the last: a proxy appends the address it accepted the connection from, so the last entry is the one the
//! trusted proxy wrote; entries before it are whatever the client sent. The header is read only when configured:
//! a server reached directly would otherwise let every request name its own address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderName;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    /// The address of a request: the trusted header's last address when configured and present and valid, the
    /// TCP peer otherwise.
    #[must_use]
    pub fn of(parts: &Parts, trusted_header: Option<&HeaderName>) -> Option<Self> {
        let forwarded = trusted_header.and_then(|name| {
            let value = parts.headers.get_all(name).iter().next_back()?.to_str().ok()?;
            parse_address(value.rsplit(',').next()?.trim())
        });
        let peer = || parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        forwarded.or_else(peer).map(|ip| Self(ip.to_canonical()))
    }

    /// The address.
    #[must_use]
    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// The key per-client limits count under: the IPv4 address, or the IPv6 /64 network (one subscriber's
    /// share; counting single IPv6 addresses would give each client 2^64 buckets).
    #[must_use]
    pub fn rate_key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        }
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_address(value: &str) -> Option<IpAddr> {
    value.parse::<IpAddr>().ok().or_else(|| value.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Every connection the server accepts carries its peer; only a router driven without the listener
        // (no such caller today) would lack it.
        Self::of(parts, state.trusted_proxy_header()).ok_or_else(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
        parts
    }

    #[test]
    fn the_header_counts_only_when_configured_and_its_last_entry_wins() {
        let header = HeaderName::from_static("x-forwarded-for");
        let forged = parts(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        assert_eq!(ClientAddress::of(&forged, None).unwrap().ip().to_string(), "10.0.0.1");
        assert_eq!(ClientAddress::of(&forged, Some(&header)).unwrap().ip().to_string(), "203.0.113.7");
        let garbage = parts(&[("x-forwarded-for", "not an address")]);
        assert_eq!(ClientAddress::of(&garbage, Some(&header)).unwrap().ip().to_string(), "10.0.0.1");
        let with_port = parts(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(ClientAddress::of(&with_port, Some(&header)).unwrap().ip().to_string(), "2001:db8::1");
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let header = HeaderName::from_static("x-real-ip");
        let one = parts(&[("x-real-ip", "2001:db8:1:2:aaaa::1")]);
        let two = parts(&[("x-real-ip", "2001:db8:1:2:bbbb::9")]);
        let key = ClientAddress::of(&one, Some(&header)).unwrap().rate_key();
        assert_eq!(key, "2001:db8:1:2::/64");
        assert_eq!(ClientAddress::of(&two, Some(&header)).unwrap().rate_key(), key);
        let mapped = parts(&[("x-real-ip", "::ffff:192.0.2.5")]);
        assert_eq!(ClientAddress::of(&mapped, Some(&header)).unwrap().rate_key(), "192.0.2.5");
    }
}
