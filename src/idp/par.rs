//! Pushed Authorization Requests (RFC 9126): the whole authorization request is POSTed,
//! client-authenticated ([`ClientAuth::authenticate`]), to the IdP's
//! `pushed_authorization_request_endpoint`; the IdP answers a short-lived `request_uri`, and the
//! browser goes to the authorization endpoint with only `client_id` and `request_uri` (nothing
//! of the request — scopes, PKCE challenge, nonce, state — travels through it or its history).
//!
//! When (`par` of the provider): `auto` pushes when discovery says
//! `require_pushed_authorization_requests: true`; `always` pushes, and a login fails naming the
//! provider when discovery has no endpoint; `never` does not.
//!
//! Bounded: the provider's `timeout` applies (the IdP HTTP client), the answer is read up to
//! [`MAX_ANSWER_BYTES`], `request_uri` up to [`MAX_REQUEST_URI_BYTES`], and `expires_in` must be
//! 1 to [`MAX_EXPIRES_IN`] seconds. Any failure is an [`IdpError::Protocol`] naming the provider
//! (a 502 at `/authorize`), never a login sent on without PAR.

use serde::Deserialize;
use url::Url;

use super::client_auth::ClientAuth;
use super::{request_failed, IdpError};
use crate::config::ParMode;
use crate::metrics::idp_call;

/// Largest PAR answer read (a `request_uri` and `expires_in`, or an OAuth error).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Longest `request_uri` accepted.
pub const MAX_REQUEST_URI_BYTES: usize = 1024;
/// Longest `expires_in` accepted: RFC 9126 §2.2 expects "short", oidc-provider says 60 s,
/// Keycloak 60 s, Okta 60 s.
pub const MAX_EXPIRES_IN: u64 = 3600;

/// What discovery says about PAR.
#[derive(Debug, Clone, Default)]
pub struct ParMetadata {
    /// `pushed_authorization_request_endpoint`.
    pub endpoint: Option<String>,
    /// `require_pushed_authorization_requests`.
    pub required: Option<bool>,
}

impl ParMetadata {
    /// Read from a discovery document; members of the wrong type count as absent (a document
    /// the rest of discovery accepted is not refused for them).
    pub fn of_discovery(doc: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(doc).unwrap_or_default();
        Self {
            endpoint: v
                .get("pushed_authorization_request_endpoint")
                .and_then(|e| e.as_str())
                .map(str::to_owned),
            required: v
                .get("require_pushed_authorization_requests")
                .and_then(|r| r.as_bool()),
        }
    }
}

/// Whether a login of `provider` (whose `par` is `mode`) pushes its request, and where:
/// `None` for no push, an error naming the provider when it must push and the IdP has no
/// endpoint.
pub fn endpoint<'m>(
    mode: ParMode,
    meta: &'m ParMetadata,
    provider: &str,
) -> Result<Option<&'m str>, IdpError> {
    let wanted = match mode {
        ParMode::Never => return Ok(None),
        ParMode::Always => "par = \"always\"",
        ParMode::Auto if meta.required == Some(true) => {
            "its discovery document says require_pushed_authorization_requests"
        }
        ParMode::Auto => return Ok(None),
    };
    match meta.endpoint.as_deref() {
        Some(endpoint) => Ok(Some(endpoint)),
        None => Err(IdpError::Protocol(format!(
            "provider `{provider}`: {wanted}, but discovery names no \
             pushed_authorization_request_endpoint"
        ))),
    }
}

/// The IdP's answer (RFC 9126 §2.2).
#[derive(Deserialize)]
struct Pushed {
    request_uri: String,
    expires_in: u64,
}

/// An OAuth error answer.
#[derive(Deserialize)]
struct Refusal {
    error: String,
    error_description: Option<String>,
}

/// Pushes the request `authorize_url` carries (all of its query) to `endpoint` and returns the
/// URL the browser goes to instead: `authorize_url`'s endpoint with `client_id` and
/// `request_uri`. `audience` is the token endpoint (the client assertion's `aud`).
#[tracing::instrument(target = "idgate::trace", name = "idp par", skip_all, fields(otel.kind = "client"))]
pub async fn push(
    http: &reqwest::Client,
    provider: &str,
    auth: &ClientAuth,
    endpoint: &str,
    audience: &str,
    authorize_url: &Url,
) -> Result<Url, IdpError> {
    let fail = |what: String| {
        IdpError::Protocol(format!(
            "provider `{provider}`: pushed authorization request: {what}"
        ))
    };
    let endpoint = Url::parse(endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .ok_or_else(|| {
            fail("discovery's pushed_authorization_request_endpoint is not an http(s) URL".into())
        })?;
    let form: Vec<(String, String)> = authorize_url.query_pairs().into_owned().collect();
    let client_id = form
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| fail("the authorization request has no client_id".into()))?;
    let req = auth.authenticate(
        http.post(endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json"),
        form,
        audience,
    )?;
    let mut resp = idp_call(crate::telemetry::propagate(req).send())
        .await
        .map_err(|e| request_failed(&e, fail))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = idp_call(resp.chunk())
        .await
        .map_err(|e| request_failed(&e, fail))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(fail(format!("the answer is over {MAX_ANSWER_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(fail(match serde_json::from_slice::<Refusal>(&body) {
            Ok(r) => format!(
                "the identity provider refused ({status}): {}{}",
                printable(&r.error),
                r.error_description
                    .map(|d| format!(": {}", printable(&d)))
                    .unwrap_or_default()
            ),
            Err(_) => format!("{endpoint} answered {status}"),
        }));
    }
    let pushed: Pushed = serde_json::from_slice(&body).map_err(|e| {
        fail(format!(
            "the answer is not a request_uri and expires_in: {e}"
        ))
    })?;
    if pushed.request_uri.is_empty()
        || pushed.request_uri.len() > MAX_REQUEST_URI_BYTES
        || pushed.request_uri.chars().any(char::is_control)
    {
        return Err(fail(format!(
            "request_uri is empty, longer than {MAX_REQUEST_URI_BYTES} bytes or not printable"
        )));
    }
    if pushed.expires_in == 0 || pushed.expires_in > MAX_EXPIRES_IN {
        return Err(fail(format!(
            "expires_in {} is not between 1 and {MAX_EXPIRES_IN} seconds",
            pushed.expires_in
        )));
    }
    let mut url = authorize_url.clone();
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("request_uri", &pushed.request_uri);
    Ok(url)
}

/// `s` cut to 200 characters without control characters, for an error message.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
#[path = "par_tests.rs"]
mod tests;
