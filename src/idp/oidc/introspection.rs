//! Token introspection (RFC 7662): what the IdP says of an access token idgate did not mint.
//!
//! The endpoint is the discovery document's `introspection_endpoint`; the request is a POST
//! of `token` (with `token_type_hint=access_token`), authenticated as the provider's client the
//! way its token endpoint is (`OidcFlow::authenticated_post`: any `auth_method`, signed
//! assertions included). The answer is bounded
//! ([`MAX_ANSWER`] bytes, the provider's `timeout`) and read strictly: `active` must be a
//! boolean, and an active answer's `iss`, when present, must be the discovered issuer.

use serde::Deserialize;
use url::Url;

use super::{request_failed, IdpError, OidcFlow};
use crate::metrics::idp_call;

/// Bytes of an introspection answer read at most: a few claims, not a document.
pub const MAX_ANSWER: usize = 16 * 1024;

/// What an active token's introspection answer says, reduced to what idgate reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Introspection {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    /// When the token expires (Unix seconds), if the IdP says.
    pub exp: Option<i64>,
    /// The token's audiences (`aud`, a string or a list).
    pub aud: Vec<String>,
}

/// The answer as sent; unknown members are ignored (RFC 7662 §2.2 allows any).
#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iss: Option<String>,
}

/// The discovery document's `introspection_endpoint`, if it announces one that is a URL.
pub(super) fn endpoint_of(discovery: &[u8]) -> Option<Url> {
    #[derive(Deserialize)]
    struct Endpoint {
        introspection_endpoint: Option<String>,
    }
    serde_json::from_slice::<Endpoint>(discovery)
        .ok()?
        .introspection_endpoint
        .and_then(|u| Url::parse(&u).ok())
}

impl OidcFlow {
    /// Asks the IdP about `token`: what it says of it when it is active, `None` when it is
    /// not (unknown, expired, revoked, another client's). An error when the IdP has no introspection endpoint, does
    /// not answer (in time), refuses idgate's client, or answers something that is not an
    /// introspection answer.
    #[tracing::instrument(target = "idgate::trace", name = "idp introspection", skip_all, fields(otel.kind = "client"))]
    pub async fn introspect(&self, token: &str) -> Result<Option<Introspection>, IdpError> {
        let d = self.discovered().await?;
        let url = d.introspection_endpoint.clone().ok_or_else(|| {
            IdpError::Protocol(format!(
                "provider `{}` announces no introspection_endpoint",
                self.provider.id
            ))
        })?;
        let form = vec![
            ("token".to_owned(), token.to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
        ];
        let req = self
            .authenticated_post(&url, form)
            .await?
            .header(reqwest::header::ACCEPT, "application/json");
        let failed = |m: String| IdpError::Protocol(format!("introspection at {url}: {m}"));
        let mut resp = idp_call(crate::telemetry::propagate(req).send())
            .await
            .map_err(|e| request_failed(&e, failed))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(failed(format!("answered {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = idp_call(resp.chunk())
            .await
            .map_err(|e| request_failed(&e, failed))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(failed(format!("answer longer than {MAX_ANSWER} bytes")));
            }
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("not an introspection answer: {e}")))?;
        read_answer(answer, d.meta.issuer().as_str()).map_err(failed)
    }
}

/// The answer's meaning (`None`: not active, whatever else it says); an active answer naming
/// another issuer is an error.
fn read_answer(answer: Answer, issuer: &str) -> Result<Option<Introspection>, String> {
    if !answer.active {
        return Ok(None);
    }
    if let Some(iss) = &answer.iss {
        if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(format!("the answer names another issuer, `{iss}`"));
        }
    }
    let aud = match answer.aud {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(a)) => vec![a],
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(a) => Ok(a),
                _ => Err("`aud` holds a value that is not a string".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`aud` is neither a string nor a list".into()),
    };
    Ok(Some(Introspection {
        sub: answer.sub.filter(|s| !s.is_empty()),
        client_id: answer.client_id.filter(|s| !s.is_empty()),
        exp: answer.exp,
        aud,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: serde_json::Value) -> Result<Option<Introspection>, String> {
        read_answer(serde_json::from_value(json).unwrap(), "https://idp.test/")
    }

    #[test]
    fn answers_are_read_strictly() {
        // Inactive is inactive, whatever else a careless IdP puts next to it.
        let inactive = answer(serde_json::json!({"active": false, "sub": "x", "client_id": "c"}));
        assert_eq!(inactive, Ok(None));
        let ok = answer(serde_json::json!({
            "active": true, "sub": "u", "client_id": "c", "exp": 5,
            "aud": ["a", "b"], "iss": "https://idp.test"
        }))
        .unwrap()
        .unwrap();
        assert_eq!(ok.aud, ["a", "b"]);
        assert_eq!(ok.sub.as_deref(), Some("u"));
        assert!(answer(serde_json::json!({"active": true, "iss": "https://other.test"})).is_err());
        assert!(answer(serde_json::json!({"active": true, "aud": 3})).is_err());
        assert!(serde_json::from_value::<Answer>(serde_json::json!({"active": "true"})).is_err());
        assert!(serde_json::from_value::<Answer>(serde_json::json!({})).is_err());
    }

    #[test]
    fn the_endpoint_comes_from_discovery() {
        let doc = br#"{"issuer":"x","introspection_endpoint":"https://idp.test/introspect"}"#;
        assert_eq!(
            endpoint_of(doc).unwrap().as_str(),
            "https://idp.test/introspect"
        );
        assert!(endpoint_of(br#"{"issuer":"x"}"#).is_none());
    }
}
