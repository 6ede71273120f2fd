//! The cache of recent silent renewals (`crate::renewal`), by expired token: a burst of a
//! page's requests carrying one expired cookie renews it once, and the requests after the first
//! reuse its answer.

use std::sync::Arc;

use http::HeaderValue;

use super::{TokenDigest, VerifiedSession};

/// How long a silent renewal (`renewal`) is kept for the requests that still carry the old
/// token (Unix seconds): the burst of a page's parallel requests, sent before its browser stored
/// the new cookie. A request later than that renews again, into the same token.
pub const RENEWAL_REUSE_SECS: i64 = 30;

/// A renewed session: its verification and the `Set-Cookie` that hands it to the browser.
pub struct Renewed {
    pub session: Arc<VerifiedSession>,
    pub set_cookie: HeaderValue,
    /// When it was renewed (Unix seconds).
    at: i64,
}

impl Renewed {
    pub fn new(session: Arc<VerifiedSession>, set_cookie: HeaderValue, at: i64) -> Self {
        Self {
            session,
            set_cookie,
            at,
        }
    }
}

/// Recent silent renewals by expired token, so that a burst of requests renews once (see
/// `renewal`).
pub type Renewals = quick_cache::sync::Cache<TokenDigest, Arc<Renewed>>;

/// Forgets the renewals older than [`RENEWAL_REUSE_SECS`], so that the cache holds the last
/// seconds' renewals (each carries a whole cookie), not the last few thousand.
pub fn purge_renewals(renewals: &Renewals, now: i64) {
    renewals.retain(|_, r| now - r.at < RENEWAL_REUSE_SECS);
}
