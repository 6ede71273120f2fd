//! What a gateway tells the decision about the request it asks for: [`Described`], read from
//! the shipped Nginx snippets' headers for `/auth` (here), or from the forwarded headers and the
//! endpoint's query for `/forward-auth` (`routes::forward_auth`).

use super::{header, original_uri};
use crate::headers;
use crate::http::Request;

/// The request a gateway asks about, as the gateway describes it, and what the operator's
/// gateway configuration states about its location. `/auth` reads it from the headers the
/// shipped Nginx snippets set ([`Described::from_nginx`]); `/forward-auth` from the forwarded
/// headers and its own query (`super::forward_auth`). Everything else the decision reads (the
/// session token, the renewal cookie, an API key, `Accept`) is the client's own.
#[derive(Debug, Clone, Copy)]
pub(in crate::routes) struct Described<'a> {
    /// The method of the request being decided.
    pub(in crate::routes) method: &'a str,
    /// Its request target (path and query) as the gateway received it; `""` (which no rule
    /// matches) when it could not be read.
    pub(in crate::routes) uri: &'a str,
    /// The app the location belongs to, as stated (checked against the configuration here);
    /// `None`: `[server] default_app`.
    pub(in crate::routes) app: Option<&'a str>,
    /// The location's own client type, when stated.
    pub(in crate::routes) client_type: Option<&'a str>,
    /// The location requires an API key.
    pub(in crate::routes) api_key_required: bool,
    /// The location is a back-office one (`isBackOffice` of the rules).
    pub(in crate::routes) backoffice: bool,
    /// The upstream audience a scoped token is minted for (`jwt::scoped`).
    pub(in crate::routes) audience: Option<&'a str>,
    /// The path carrying a location rule (`/auth/{rule}`; `/auth` for none).
    pub(in crate::routes) rule_path: &'a str,
}

impl<'a> Described<'a> {
    /// The description the shipped Nginx snippets send to `/auth` (`Original-Request-*` or
    /// `X-Original-*`, `idgate-app`, …), believed because only trusted peers get this far.
    pub(super) fn from_nginx(req: &'a Request) -> Self {
        let headers = req.headers();
        Self {
            method: header(headers, headers::ORIGINAL_METHOD)
                .or_else(|| header(headers, headers::X_ORIGINAL_METHOD))
                .unwrap_or(req.method().as_str()),
            uri: original_uri(headers),
            app: header(headers, headers::IDGATE_APP).filter(|a| !a.is_empty()),
            client_type: header(headers, headers::CLIENT_TYPE).filter(|v| !v.is_empty()),
            // Any value but empty, `false` or `0`: a typo requires one.
            api_key_required: headers.get(headers::API_KEY_REQUIRED).is_some_and(|v| {
                let v = v.as_bytes();
                !v.is_empty() && !v.eq_ignore_ascii_case(b"false") && v != b"0"
            }),
            backoffice: header(headers, headers::IS_BACKOFFICE)
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            audience: header(headers, headers::IDGATE_AUDIENCE).filter(|a| !a.is_empty()),
            rule_path: req.uri().path(),
        }
    }
}
