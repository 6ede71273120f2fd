//! What a gateway tells the decision about the request it asks for: [`Described`], read from
//! the shipped Nginx snippets' headers for `/auth` (here), or from the forwarded headers and the
//! endpoint's query for `/forward-auth` (`routes::forward_auth`).

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
    ///
    /// One pass over the request's headers, each name taken at its first value (as
    /// `HeaderMap::get` would): nine lookups by name cost 3 % of idgate's CPU on a cached `/auth`
    /// (two idgates side by side, docs/benchmarks.md). The names are [`crate::headers`]'
    /// constants spelled out, so that one `match` finds each; the tests send the constants.
    pub(super) fn from_nginx<B>(req: &'a http::Request<B>) -> Self {
        let mut found: [Option<&'a http::HeaderValue>; 9] = [None; 9];
        for (name, value) in req.headers() {
            let at = match name.as_str() {
                "original-request-method" => 0,
                "x-original-method" => 1,
                "original-request-uri" => 2,
                "x-original-uri" => 3,
                "idgate-app" => 4,
                "client-type" => 5,
                "idgate-api-key-required" => 6,
                "isbackoffice" => 7,
                "idgate-audience" => 8,
                _ => continue,
            };
            found[at].get_or_insert(value);
        }
        let text = |at: usize| found[at].and_then(|v| v.to_str().ok());
        Self {
            method: text(0).or_else(|| text(1)).unwrap_or(req.method().as_str()),
            // The request as Nginx received it (`$request_uri`). Nginx passes raw bytes above
            // 0x7F through, so it is read as UTF-8, not as visible ASCII: a path that is not
            // UTF-8 becomes `""`, which no rule matches (refused), never `/`, which rules might
            // open. Absent (a caller that is not the shipped snippet), it is `/`.
            uri: match found[2].or(found[3]) {
                Some(v) => std::str::from_utf8(v.as_bytes()).unwrap_or(""),
                None => "/",
            },
            app: text(4).filter(|a| !a.is_empty()),
            client_type: text(5).filter(|v| !v.is_empty()),
            // Any value but empty, `false` or `0`: a typo requires one.
            api_key_required: found[6].is_some_and(|v| {
                let v = v.as_bytes();
                !v.is_empty() && !v.eq_ignore_ascii_case(b"false") && v != b"0"
            }),
            backoffice: text(7).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            audience: text(8).filter(|a| !a.is_empty()),
            rule_path: req.uri().path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers;

    #[test]
    fn every_header_is_read_under_its_constants_name() {
        let req = http::Request::builder()
            .header(headers::ORIGINAL_METHOD, "GET")
            .header(headers::ORIGINAL_URI, "/a")
            .header(headers::IDGATE_APP, "web")
            .header(headers::CLIENT_TYPE, "partner")
            .header(headers::API_KEY_REQUIRED, "true")
            .header(headers::IS_BACKOFFICE, "1")
            .header(headers::IDGATE_AUDIENCE, "orders")
            .body(())
            .expect("a valid request");
        let d = Described::from_nginx(&req);
        assert_eq!((d.method, d.uri, d.app), ("GET", "/a", Some("web")));
        assert_eq!(
            (d.client_type, d.audience),
            (Some("partner"), Some("orders"))
        );
        assert!(d.api_key_required && d.backoffice);
        let req = http::Request::builder()
            .header(headers::X_ORIGINAL_METHOD, "PUT")
            .header(headers::X_ORIGINAL_URI, "/old")
            .body(())
            .expect("a valid request");
        let d = Described::from_nginx(&req);
        assert_eq!((d.method, d.uri), ("PUT", "/old"));
    }

    fn described(headers: &[(&str, &[u8])], check: impl FnOnce(Described<'_>)) {
        let mut req = http::Request::builder().method("POST").uri("/auth/rule");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(()).expect("a valid request");
        check(Described::from_nginx(&req));
    }

    #[test]
    fn each_header_is_read_at_its_first_value_and_the_old_names_stand_in() {
        described(
            &[
                ("Original-Request-Method", b"GET"),
                ("original-request-method", b"DELETE"),
                ("X-Original-Method", b"PUT"),
                ("x-original-uri", b"/old"),
                ("Original-Request-Uri", b"/a?b"),
                ("idgate-app", b"web"),
                ("idgate-app", b"admin"),
                ("client-type", b"partner"),
                ("idgate-api-key-required", b"yes"),
                ("isbackoffice", b"TRUE"),
                ("idgate-audience", b"orders"),
            ],
            |d| {
                assert_eq!(d.method, "GET");
                assert_eq!(d.uri, "/a?b");
                assert_eq!(d.app, Some("web"));
                assert_eq!(d.client_type, Some("partner"));
                assert!(d.api_key_required);
                assert!(d.backoffice);
                assert_eq!(d.audience, Some("orders"));
                assert_eq!(d.rule_path, "/auth/rule");
            },
        );
        described(
            &[("X-Original-Method", b"PUT"), ("X-Original-URI", b"/old")],
            |d| {
                assert_eq!((d.method, d.uri), ("PUT", "/old"));
            },
        );
    }

    #[test]
    fn absent_empty_and_unreadable_values() {
        described(&[], |d| {
            assert_eq!((d.method, d.uri), ("POST", "/"));
            assert_eq!((d.app, d.client_type, d.audience), (None, None, None));
            assert!(!d.api_key_required && !d.backoffice);
        });
        described(
            &[
                ("idgate-app", b""),
                ("idgate-api-key-required", b"FALSE"),
                ("isbackoffice", b"yes"),
            ],
            |d| {
                assert_eq!(d.app, None);
                assert!(!d.api_key_required && !d.backoffice);
            },
        );
        // A path that is not UTF-8 matches no rule: "", never "/".
        described(&[("original-request-uri", &[b'/', 0xe9])], |d| {
            assert_eq!(d.uri, "")
        });
        described(&[("idgate-api-key-required", b"0")], |d| {
            assert!(!d.api_key_required)
        });
    }
}
