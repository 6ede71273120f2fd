//! Who sent a request, as far as idgate may believe it: the client's address, its user agent
//! and the request id, for the audit trail and the sessions a user sees.
//!
//! The address is the connection's peer, unless the peer is trusted (`server.trusted_peers`, the
//! Nginx in front): then it is the **last** entry of `X-Forwarded-For`, the one that Nginx
//! appended (`$proxy_add_x_forwarded_for` in the shipped snippets). Entries before it come from
//! the client and are never read. The user agent is cut to [`MAX_USER_AGENT`] bytes of
//! printable text. The request id is Nginx's `X-Request-Id` when it is short and plain, else a
//! local counter. So nothing a client sends lands in a log line or a store as it is.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// The longest user agent kept, in bytes.
pub const MAX_USER_AGENT: usize = 256;

/// What is known of a request's sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address, when one is known.
    pub addr: Option<IpAddr>,
    /// The `User-Agent`, cut and cleaned.
    pub user_agent: Option<String>,
    /// The request id (see [`request_id`]).
    pub request_id: String,
}

impl ClientInfo {
    /// The sender of a request that came over a connection from `peer` (`trusted` when it is
    /// in `server.trusted_peers` or on the unix socket).
    pub fn of(peer: Option<SocketAddr>, trusted: bool, headers: &HeaderMap) -> Self {
        let forwarded = trusted.then(|| forwarded_for(headers)).flatten();
        Self {
            addr: forwarded.or(peer.map(|p| p.ip())),
            user_agent: headers
                .get(http::header::USER_AGENT)
                .map(|v| printable(v.as_bytes(), MAX_USER_AGENT))
                .filter(|ua| !ua.is_empty()),
            request_id: request_id(headers),
        }
    }
}

/// The last address of the last `X-Forwarded-For` header: the one the trusted proxy appended.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry.parse().ok()
}

/// At most `max` bytes of `raw`, with every byte outside printable ASCII replaced by `?`.
fn printable(raw: &[u8], max: usize) -> String {
    raw.iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// `X-Request-Id` when it is short and plain (1–64 of `A-Z a-z 0-9 . _ -`, as Nginx's
/// `$request_id` is, which the shipped snippets send), else `local-<n>`: whatever a client
/// sends never lands in a log line as it is.
pub fn request_id(headers: &HeaderMap) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_plain_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("local-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn is_plain_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    use crate::http::test_headers as headers;

    const PEER: &str = "10.0.0.9:40000";

    #[test]
    fn a_trusted_peer_forwards_the_address_it_appended_and_nothing_before_it() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 192.0.2.7")]);
        let trusted = ClientInfo::of(PEER.parse().ok(), true, &h);
        assert_eq!(trusted.addr, "192.0.2.7".parse().ok());
        // Two headers: the proxy's is the last one.
        let h = headers(&[
            ("x-forwarded-for", "192.0.2.99"),
            ("x-forwarded-for", "6.6.6.6,2001:db8::1"),
        ]);
        assert_eq!(
            ClientInfo::of(PEER.parse().ok(), true, &h).addr,
            "2001:db8::1".parse().ok()
        );
    }

    #[test]
    fn an_untrusted_peer_or_a_garbled_header_gives_the_peer_address() {
        let h = headers(&[("x-forwarded-for", "192.0.2.7")]);
        let peer: Option<SocketAddr> = PEER.parse().ok();
        assert_eq!(ClientInfo::of(peer, false, &h).addr, peer.map(|p| p.ip()));
        let h = headers(&[("x-forwarded-for", "192.0.2.7, not-an-address")]);
        assert_eq!(ClientInfo::of(peer, true, &h).addr, peer.map(|p| p.ip()));
        assert_eq!(ClientInfo::of(None, true, &HeaderMap::new()).addr, None);
    }

    #[test]
    fn the_user_agent_is_cut_and_cleaned() {
        let mut h = HeaderMap::new();
        // Hyper lets obs-text (bytes 0x80–0xff) through in a header value.
        let long = format!("Mozilla/5.0 é{}", "x".repeat(400));
        h.insert(
            http::header::USER_AGENT,
            HeaderValue::from_bytes(long.as_bytes()).unwrap(),
        );
        let ua = ClientInfo::of(None, false, &h).user_agent.unwrap();
        assert_eq!(ua.len(), MAX_USER_AGENT);
        assert!(ua.starts_with("Mozilla/5.0 ??x"), "{ua}");
        assert_eq!(
            ClientInfo::of(None, false, &HeaderMap::new()).user_agent,
            None
        );
    }

    #[test]
    fn only_plain_request_ids_are_kept_as_sent() {
        for ok in ["0af7651916cd43dd8448eb211c80319c", "req-1.2_3"] {
            assert!(is_plain_request_id(ok), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            long.as_str(),
            "a b",
            "x\" user=admin",
            "id\u{1b}[31m",
            "a=b",
            "é",
        ] {
            assert!(!is_plain_request_id(bad), "{bad:?}");
        }
    }
}
