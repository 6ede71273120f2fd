//! Header names idgate reads and writes, in one place. Nginx forwards request headers and the
//! shipped snippets copy the `mia-*` response headers (see `nginx/idgate-protect.conf`).

use http::HeaderName;

/// The original request's URI (`$request_uri`), set by the shipped snippet.
pub const ORIGINAL_URI: &str = "original-request-uri";
/// Also accepted, as oauth2-proxy and vouch-proxy configurations send it.
pub const X_ORIGINAL_URI: &str = "x-original-uri";
pub const ORIGINAL_METHOD: &str = "original-request-method";
pub const X_ORIGINAL_METHOD: &str = "x-original-method";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
/// Lets one Nginx location pick the app its anonymous browsers log in to.
pub const IDGATE_APP: &str = "idgate-app";

pub const MIA_ALLOWED: HeaderName = HeaderName::from_static("mia-allowed");
pub const MIA_USERID: HeaderName = HeaderName::from_static("mia-userid");
pub const MIA_GROUPS: HeaderName = HeaderName::from_static("mia-groups");
pub const MIA_USERPROPERTIES: HeaderName = HeaderName::from_static("mia-userproperties");

/// Security headers on every HTML page idgate serves.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
