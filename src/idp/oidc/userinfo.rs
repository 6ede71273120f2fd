//! The userinfo request (OIDC Core 5.3), read here rather than by `openidconnect`, whose
//! verifier of signed answers accepts RS256 only, whatever the provider's allow-list says.
//!
//! A JSON answer is read as is. A signed one (`application/jwt`, OIDC Core 5.3.2) must be signed
//! with an algorithm of the provider's allow-list (`id_token_signing_algs`, see [`super::algs`];
//! `HS*` keyed with the client secret, when listed) by a key the IdP's JWKS publishes; its `exp`,
//! `iss` and `aud`, when present, must be unexpired, the IdP's issuer and our client id. Either
//! way its `sub` must be the id_token's (502 otherwise: the IdP contradicts itself); a signed
//! answer refused is a refused login (401), its log line naming the algorithm.

use openidconnect::core::CoreGenderClaim;
use openidconnect::{AccessToken, SubjectIdentifier, UserInfoClaims};

use super::algs::jwt_alg_accepted;
use super::{
    error_chain, find_key, matches_tenant, request_failed, Discovered, IdpError, IssuerRule,
    OidcFlow, OtherClaims,
};
use crate::metrics::idp_call;

/// What userinfo says about the user.
pub(super) type Info = UserInfoClaims<OtherClaims, CoreGenderClaim>;

/// Most bytes of a userinfo answer read: a profile, not a download.
const MAX_USERINFO_BYTES: usize = 256 * 1024;

impl OidcFlow {
    /// Asks the IdP's userinfo endpoint about the holder of `token`, who must be `subject`;
    /// `None` when the IdP has no userinfo endpoint.
    #[tracing::instrument(target = "idgate::trace", name = "idp userinfo", skip_all, fields(otel.kind = "client"))]
    pub(super) async fn userinfo(
        &self,
        d: &Discovered,
        token: &AccessToken,
        subject: &SubjectIdentifier,
    ) -> Result<Option<Info>, IdpError> {
        let Some(url) = d.meta.userinfo_endpoint() else {
            return Ok(None);
        };
        let failed = |m: String| IdpError::Protocol(format!("userinfo failed: {m}"));
        let resp = idp_call(
            crate::telemetry::propagate(
                self.http
                    .get(url.url().clone())
                    .bearer_auth(token.secret())
                    .header(reqwest::header::ACCEPT, "application/json"),
            )
            .send(),
        )
        .await
        .map_err(|e| request_failed(&e, failed))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(failed(format!("the endpoint answered {}", resp.status())));
        }
        let signed = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/jwt"));
        let body = idp_call(resp.bytes())
            .await
            .map_err(|e| request_failed(&e, failed))?;
        if body.len() > MAX_USERINFO_BYTES {
            return Err(failed(format!(
                "an answer of {} bytes, over {MAX_USERINFO_BYTES}",
                body.len()
            )));
        }
        let json = if signed {
            self.verified_userinfo_jwt(d, &body)?
        } else {
            body.to_vec()
        };
        Info::from_json::<std::io::Error>(&json, Some(subject))
            .map(Some)
            .map_err(|e| failed(error_chain(&e)))
    }

    /// The claims of a signed userinfo answer, as JSON, once its signature, `exp`, `iss` and
    /// `aud` are checked (see the module doc).
    fn verified_userinfo_jwt(&self, d: &Discovered, body: &[u8]) -> Result<Vec<u8>, IdpError> {
        let bad = |m: &str| IdpError::IdToken(format!("signed userinfo: {m}"));
        let token = std::str::from_utf8(body)
            .map_err(|_| bad("not a JWT"))?
            .trim();
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("not a JWT"))?;
        if !jwt_alg_accepted(header.alg, &d.algs) {
            return Err(bad(&format!(
                "signed with {:?}, not an algorithm of id_token_signing_algs",
                header.alg
            )));
        }
        let symmetric = matches!(
            header.alg,
            jsonwebtoken::Algorithm::HS256
                | jsonwebtoken::Algorithm::HS384
                | jsonwebtoken::Algorithm::HS512
        );
        let key = if symmetric {
            jsonwebtoken::DecodingKey::from_secret(self.provider.client_secret.expose().as_bytes())
        } else {
            find_key(d, header.kid.as_deref())
                .ok_or_else(|| bad("signed by a key the IdP does not publish"))?
        };
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        let claims: serde_json::Map<String, serde_json::Value> =
            jsonwebtoken::decode(token, &key, &validation)
                .map_err(|e| bad(&format!("{:?}", e.kind())))?
                .claims;
        if let Some(iss) = claims.get("iss") {
            let iss = iss.as_str().unwrap_or_default();
            let ours = match &d.rule {
                IssuerRule::Exact => iss == d.meta.issuer().as_str(),
                IssuerRule::Tenant { prefix, suffix } => matches_tenant(iss, prefix, suffix),
            };
            if !ours {
                return Err(bad("iss is not the IdP's issuer"));
            }
        }
        if let Some(aud) = claims.get("aud") {
            let client = self.provider.client_id.as_str();
            let ours = match aud {
                serde_json::Value::String(a) => a == client,
                serde_json::Value::Array(list) => list.iter().any(|a| a == client),
                _ => false,
            };
            if !ours {
                return Err(bad("aud is not this client"));
            }
        }
        serde_json::to_vec(&claims).map_err(|e| bad(&e.to_string()))
    }
}
