//! Header names idgate reads and writes, in one place. Nginx forwards request headers and the
//! shipped snippets copy the `mia-*` response headers (see `nginx/idgate-protect.conf`).

use std::borrow::Cow;

use http::HeaderName;
use serde::ser::{SerializeMap, Serializer as _};

/// The original request's URI (`$request_uri`), set by the shipped snippet.
pub const ORIGINAL_URI: HeaderName = HeaderName::from_static("original-request-uri");
/// Also accepted, as oauth2-proxy and vouch-proxy configurations send it.
pub const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
pub const ORIGINAL_METHOD: HeaderName = HeaderName::from_static("original-request-method");
pub const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
/// Lets one Nginx location pick the app its anonymous browsers log in to.
pub const IDGATE_APP: HeaderName = HeaderName::from_static("idgate-app");

/// `client-type` and `isbackoffice`, read by rule expressions.
pub const CLIENT_TYPE: HeaderName = HeaderName::from_static("client-type");
pub const IS_BACKOFFICE: HeaderName = HeaderName::from_static("isbackoffice");

/// Set by the shipped auth location from `$idgate_api_key_required`: the location refuses
/// requests without a valid API key.
pub const API_KEY_REQUIRED: HeaderName = HeaderName::from_static("idgate-api-key-required");
/// Set by the shipped auth location from `$idgate_forward_api_key`: `true` where the location
/// passes the client's API key on, so the `mia_client_key` cookie stays in
/// [`UPSTREAM_COOKIE`].
pub const FORWARD_API_KEY: HeaderName = HeaderName::from_static("idgate-forward-api-key");
/// `/auth`'s 200: the request's `Cookie` headers without idgate's own cookies (and without
/// `mia_client_key` unless [`FORWARD_API_KEY`] says `true`), which the snippets send upstream as
/// its `Cookie`; absent when nothing is left (`crate::cookie::for_upstream`).
pub const UPSTREAM_COOKIE: HeaderName = HeaderName::from_static("idgate-upstream-cookie");
/// `/auth`'s answer: the request's client type (the location's own, else its API key's), which
/// the snippets pass upstream as `client-type`.
pub const MIA_CLIENT_TYPE: HeaderName = HeaderName::from_static("mia-client-type");
/// `/auth`'s 401 for an API key refusal carries `api-key` here, so Nginx's 401 handler can say
/// so (a subrequest's body never reaches the client).
pub const IDGATE_REFUSAL: HeaderName = HeaderName::from_static("idgate-refusal");

pub const MIA_ALLOWED: HeaderName = HeaderName::from_static("mia-allowed");
pub const MIA_USERID: HeaderName = HeaderName::from_static("mia-userid");
pub const MIA_GROUPS: HeaderName = HeaderName::from_static("mia-groups");
pub const MIA_USERPROPERTIES: HeaderName = HeaderName::from_static("mia-userproperties");

/// Security headers on every HTML page idgate serves.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Set on the auth subrequest from the location's `$idgate_audience` (never the client's: the
/// shipped snippet overwrites it): the upstream audience `idgate-token` is minted for.
pub const IDGATE_AUDIENCE: HeaderName = HeaderName::from_static("idgate-audience");

/// Response header carrying the session JWT itself, when `[headers] pass_token` is on.
pub const IDGATE_TOKEN: HeaderName = HeaderName::from_static("idgate-token");

/// A user field that can be sent upstream in a header of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    UserId,
    Email,
    Name,
    Username,
    Groups,
    UserProperties,
}

impl Field {
    /// The `[headers.custom]` key naming this field.
    pub fn parse(key: &str) -> Option<Self> {
        Some(match key {
            "user_id" => Self::UserId,
            "email" => Self::Email,
            "name" => Self::Name,
            "username" => Self::Username,
            "groups" => Self::Groups,
            "user_properties" => Self::UserProperties,
            _ => return None,
        })
    }
}

/// The `oauth2-proxy` profile: the names oauth2-proxy's `auth_request` mode answers with.
pub const OAUTH2_PROXY_PROFILE: &[(&str, Field)] = &[
    ("x-auth-request-user", Field::UserId),
    ("x-auth-request-email", Field::Email),
    ("x-auth-request-groups", Field::Groups),
    ("x-auth-request-preferred-username", Field::Username),
];

/// A header value the identity would need is larger than `[headers] max_value_bytes`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("identity header `{header}` would be {size} bytes, over the {limit}-byte limit ([headers] max_value_bytes)")]
pub struct OversizedHeader {
    /// Whose identity it is (for the log line).
    pub user_id: String,
    pub header: HeaderName,
    pub size: usize,
    pub limit: usize,
}

/// How a session's identity is rendered into `/auth`'s response headers: always the `mia-*`
/// headers the shipped snippets read, plus the configured profile's names, plus the token
/// itself when asked. Rendered once per verified token, never per request.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user_properties: Vec<String>,
    pub extra: Vec<(HeaderName, Field)>,
    pub pass_token: bool,
    pub max_value_bytes: usize,
}

/// A session's identity header values, rendered: in the order of [`IdentityHeaders::names`],
/// joined by `\n` (which [`visible`] never lets into a value). One allocation per cached token:
/// with a hundred thousand sessions cached, every word of an entry counts (README "Memory").
#[derive(Debug)]
pub struct RenderedIdentity(Box<str>);

impl IdentityHeaders {
    /// The names of the headers [`IdentityHeaders::render`] gives values for, in order.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        static STANDARD: [HeaderName; 3] = [MIA_USERID, MIA_GROUPS, MIA_USERPROPERTIES];
        static TOKEN: HeaderName = IDGATE_TOKEN;
        STANDARD
            .iter()
            .chain(self.extra.iter().map(|(n, _)| n))
            .chain(self.pass_token.then_some(&TOKEN))
    }

    /// Renders `user` (and `token`, when the profile passes it on) once, straight into the
    /// one string a cache entry keeps: each value is checked against the size limit and made
    /// [`visible`] on its way in, with no per-header allocation (this runs on every session's
    /// first request, `examples/cold.rs`).
    pub fn render(
        &self,
        user: &crate::jwt::UserClaim,
        token: &str,
    ) -> Result<RenderedIdentity, OversizedHeader> {
        let standard = [Field::UserId, Field::Groups, Field::UserProperties];
        let fields = standard
            .into_iter()
            .chain(self.extra.iter().map(|(_, f)| *f));
        let values = fields
            .map(|f| self.field_value(user, f))
            .chain(self.pass_token.then_some(Cow::Borrowed(token)));
        let mut joined = String::new();
        for (i, (name, value)) in self.names().zip(values).enumerate() {
            if value.len() > self.max_value_bytes {
                return Err(OversizedHeader {
                    user_id: user.user_id.clone(),
                    header: name.clone(),
                    size: value.len(),
                    limit: self.max_value_bytes,
                });
            }
            if i > 0 {
                joined.push('\n');
            }
            joined.push_str(&visible(&value));
        }
        Ok(RenderedIdentity(joined.into_boxed_str()))
    }

    /// The headers of `rendered` (made by this same profile), ready to be sent.
    pub fn headers<'a>(
        &'a self,
        rendered: &'a RenderedIdentity,
    ) -> impl Iterator<Item = (HeaderName, http::HeaderValue)> + 'a {
        // `visible` guarantees a valid header value; the fallback is unreachable.
        self.names()
            .zip(rendered.0.split('\n'))
            .map(|(name, value)| {
                let value = http::HeaderValue::from_str(value)
                    .unwrap_or_else(|_| http::HeaderValue::from_static(""));
                (name.clone(), value)
            })
    }

    fn field_value<'u>(&self, user: &'u crate::jwt::UserClaim, field: Field) -> Cow<'u, str> {
        let text = |v: &'u Option<String>| Cow::Borrowed(v.as_deref().unwrap_or_default());
        match field {
            Field::UserId => Cow::Borrowed(&user.user_id),
            Field::Email => text(&user.email),
            Field::Name => text(&user.name),
            Field::Username => text(&user.username),
            Field::Groups => {
                let mut joined = String::new();
                for g in &user.groups {
                    let ok =
                        !g.is_empty() && g.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b',');
                    if !ok {
                        tracing::warn!(user = %user.user_id, "a group name with characters a header cannot carry was left out");
                        continue;
                    }
                    if !joined.is_empty() {
                        joined.push(',');
                    }
                    joined.push_str(g);
                }
                Cow::Owned(joined)
            }
            Field::UserProperties => Cow::Owned(self.user_properties_json(user)),
        }
    }

    /// The configured members of `user`, as one JSON object in the configured order (a member
    /// named twice appears once, where first named; one the user lacks, not at all), in ASCII.
    fn user_properties_json(&self, user: &crate::jwt::UserClaim) -> String {
        let mut out = Vec::with_capacity(128);
        let mut json = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
        let mut object = json.serialize_map(None).ok();
        for (i, name) in self.user_properties.iter().enumerate() {
            if self.user_properties[..i].contains(name) {
                continue;
            }
            if let (Some(object), Some(value)) = (object.as_mut(), user.member(name)) {
                // Writing to a Vec cannot fail; an unwritable value would be left out.
                let _ = object.serialize_entry(name, &value);
            }
        }
        if let Some(object) = object {
            let _ = object.end();
        }
        // The formatter writes ASCII only.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Compact JSON, with every character beyond ASCII, and DEL, escaped (`\uXXXX`, as UTF-16),
/// so the text is a valid header value that parses back to the same JSON.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut plain = 0;
        for (at, c) in fragment.char_indices() {
            if c.is_ascii() && c != '\u{7f}' {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[plain..at])?;
            for unit in c.encode_utf16(&mut [0; 2]) {
                write!(writer, "\\u{unit:04x}")?;
            }
            plain = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[plain..])
    }
}

/// Nginx lines (for a protected location, after idgate-protect.conf) copying the extra identity
/// headers of `profile` to the upstream under the same names.
pub fn nginx_snippet(profile: &IdentityHeaders) -> String {
    let mut out = String::from(
        "# Generated by `idgate nginx-headers`: include after idgate-protect.conf in each protected location.\n",
    );
    let mut names: Vec<String> = profile
        .extra
        .iter()
        .map(|(n, _)| n.as_str().to_owned())
        .collect();
    if profile.pass_token {
        names.push(IDGATE_TOKEN.as_str().to_owned());
    }
    for name in &names {
        let var = name.replace('-', "_");
        out.push_str(&format!(
            "auth_request_set $idgate_h_{var} $upstream_http_{var};\n"
        ));
    }
    for name in &names {
        let var = name.replace('-', "_");
        out.push_str(&format!("proxy_set_header {name} $idgate_h_{var};\n"));
    }
    out
}

/// `text` with every byte a header must not carry visibly — controls (CR, LF, NUL…), DEL and
/// non-ASCII — and `%` itself percent-encoded, so the value reads back unambiguously.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let ok = |b: u8| (0x20..0x7f).contains(&b) && b != b'%';
    if text.bytes().all(ok) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if ok(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_escape_what_headers_cannot_carry_and_parse_back() {
        let v = serde_json::json!({"name": "Zoë 😀", "x": "a\u{7f}b\r\n", "nested": {"é": ["ü"]}});
        let mut profile = profile(&[], 4096);
        profile.user_properties = vec!["metadata".into()];
        let mut u = user();
        u.metadata = Some(v.clone());
        let rendered = profile.render(&u, "t").unwrap();
        let (_, header) = profile.headers(&rendered).nth(2).unwrap();
        let s = header.to_str().unwrap();
        assert!(s.bytes().all(|b| (0x20..0x7f).contains(&b)), "{s}");
        let back: serde_json::Value = serde_json::from_str(s).unwrap();
        assert_eq!(back, serde_json::json!({ "metadata": v }));
    }

    fn user() -> crate::jwt::UserClaim {
        crate::jwt::UserClaim {
            user_id: "u1".into(),
            groups: vec![
                "users".into(),
                "bad\r\ngroup".into(),
                "a,b".into(),
                "admins".into(),
            ],
            email: Some("zoë@example.test".into()),
            name: Some("Evil\r\nSet-Cookie: x=1".into()),
            username: Some("zoe".into()),
            permissions: None,
            metadata: None,
            provider_user_id: None,
            user_settings_url: None,
            from_idp: Default::default(),
        }
    }

    fn profile(extra: &[(&'static str, Field)], max: usize) -> IdentityHeaders {
        IdentityHeaders {
            user_properties: vec!["name".into(), "email".into()],
            extra: extra
                .iter()
                .map(|(n, f)| (HeaderName::from_static(n), *f))
                .collect(),
            pass_token: true,
            max_value_bytes: max,
        }
    }

    #[test]
    fn values_never_carry_control_or_invisible_characters() {
        let profile = profile(OAUTH2_PROXY_PROFILE, 4096);
        let rendered = profile.render(&user(), "tok.en.x").unwrap();
        let h: Vec<_> = profile.headers(&rendered).collect();
        assert_eq!(h.len(), 3 + OAUTH2_PROXY_PROFILE.len() + 1);
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
                .unwrap()
        };
        assert_eq!(get("mia-userid"), "u1");
        assert_eq!(get("mia-groups"), "users,admins");
        assert_eq!(get("x-auth-request-groups"), "users,admins");
        assert_eq!(get("x-auth-request-email"), "zo%C3%AB@example.test");
        assert_eq!(get("idgate-token"), "tok.en.x");
        let props = get("mia-userproperties");
        assert!(!props.contains('\r') && !props.contains('\n'), "{props}");
        let back: serde_json::Value = serde_json::from_str(&props).unwrap();
        assert_eq!(back["name"], "Evil\r\nSet-Cookie: x=1");
        for (_, v) in &h {
            assert!(
                v.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)),
                "{v:?}"
            );
        }
    }

    #[test]
    fn empty_values_keep_every_header_in_its_place() {
        let profile = profile(OAUTH2_PROXY_PROFILE, 4096);
        let mut u = user();
        u.email = None;
        u.username = None;
        let rendered = profile.render(&u, "t.o.k").unwrap();
        let h: Vec<(String, String)> = profile
            .headers(&rendered)
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-auth-request-email"), Some(""));
        assert_eq!(get("x-auth-request-preferred-username"), Some(""));
        assert_eq!(get("x-auth-request-groups"), Some("users,admins"));
        assert_eq!(get("idgate-token"), Some("t.o.k"));
    }

    /// The user-properties header's exact text: the configured members in the configured order
    /// (a member named twice appears once, where first named; one the user lacks, not at all),
    /// compact JSON with everything beyond visible ASCII escaped.
    #[test]
    fn user_properties_keep_the_configured_order_once_each() {
        let mut profile = profile(&[], 4096);
        profile.user_properties = ["email", "name", "email", "groups", "nope"]
            .map(String::from)
            .to_vec();
        let mut u = user();
        u.name = Some("Zoë\u{7f} 😀 100%".into());
        let rendered = profile.render(&u, "t").unwrap();
        let h: Vec<_> = profile.headers(&rendered).collect();
        assert_eq!(
            h[2].1.to_str().unwrap(),
            r#"{"email":"zo\u00eb@example.test","name":"Zo\u00eb\u007f \ud83d\ude00 100%25","groups":["users","bad\r\ngroup","a,b","admins"]}"#
        );
        profile.user_properties = vec!["nope".into()];
        let rendered = profile.render(&u, "t").unwrap();
        assert_eq!(profile.headers(&rendered).nth(2).unwrap().1, "{}");
    }

    #[test]
    fn oversized_values_are_refused() {
        let err = profile(&[], 10).render(&user(), "t").unwrap_err();
        assert_eq!(err.limit, 10);
        assert!(err.to_string().contains("max_value_bytes"));
    }
}
