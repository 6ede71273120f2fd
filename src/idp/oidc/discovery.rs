//! Discovery of an OpenID provider (the rules of which issuer it may announce are in
//! [`super::issuer`]) and its JWKS: fetched lazily at the first login and kept, fetched again
//! when an id_token names a key the cached JWKS lacks (the IdP rotated its keys), at most once per
//! [`JWKS_REFETCH_MIN_INTERVAL`]. With the document come the signing algorithms accepted
//! ([`super::algs`]) and whether the IdP sends RFC 9207's `iss` ([`super::response`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::CoreJsonWebKeySet;
use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{JsonWebKeySet, ProviderMetadataWithLogout};

use super::jwk::FastJwk;
use super::{algs, issuer_rule, request_failed, IdpError, IssuerRule, OidcFlow};
use crate::metrics::idp_call;
use tracing::Instrument;

/// Least time between two JWKS fetches triggered by an unknown `kid`.
const JWKS_REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(2);

/// What discovery found, with the JWKS.
#[derive(Clone)]
pub(super) struct Discovered {
    /// The discovery document, with the JWKS fetched from its `jwks_uri`.
    pub(super) meta: ProviderMetadataWithLogout,
    /// The same JWKS, as the id_token verifier checks signatures with it (see [`super::jwk`]).
    pub(super) keys: JsonWebKeySet<FastJwk>,
    /// Which issuer the id_tokens must carry (see `issuer.rs`).
    pub(super) rule: IssuerRule,
    /// The signing algorithms accepted (see [`algs`]).
    pub(super) algs: Vec<CoreJwsSigningAlgorithm>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): the IdP says its
    /// authorization responses carry `iss`.
    pub(super) iss_parameter_supported: bool,
    /// RFC 8414's `introspection_endpoint`, when the IdP announces one (see `introspection`).
    pub(super) introspection_endpoint: Option<url::Url>,
    /// The PAR endpoint and whether the IdP requires PAR.
    pub(super) par: crate::idp::par::ParMetadata,
}

/// The discovery fields `openidconnect`'s metadata type does not keep.
#[derive(serde::Deserialize)]
struct MoreMetadata {
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// `jwks` for the id_token verifier.
fn fast_keys(jwks: &CoreJsonWebKeySet) -> JsonWebKeySet<FastJwk> {
    JsonWebKeySet::new(jwks.keys().iter().cloned().map(FastJwk::from).collect())
}

/// The JWKS key with `kid` (or the only key when the token names none), for jsonwebtoken.
pub(super) fn find_key(d: &Discovered, kid: Option<&str>) -> Option<jsonwebtoken::DecodingKey> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::to_value(d.meta.jwks())
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())?;
    key_in(&set, kid)
}

/// The key of `set` with `kid` (or its only key when the token names none).
pub(super) fn key_in(
    set: &jsonwebtoken::jwk::JwkSet,
    kid: Option<&str>,
) -> Option<jsonwebtoken::DecodingKey> {
    let jwk = match kid {
        Some(kid) => set.find(kid)?.clone(),
        None if set.keys.len() == 1 => set.keys[0].clone(),
        None => return None,
    };
    jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()
}

impl OidcFlow {
    /// What discovery found: the cached copy, or a fresh one at the first call (or after a
    /// failure, which caches nothing).
    pub(super) async fn discovered(&self) -> Result<Arc<Discovered>, IdpError> {
        if let Some(d) = self.discovered.read().ok().and_then(|g| g.clone()) {
            return Ok(d);
        }
        self.discover_fresh().await
    }

    /// Discovers again, replacing what was cached (logins in flight keep their copy).
    pub async fn rediscover(&self) -> Result<(), IdpError> {
        self.discover_fresh().await.map(|_| ())
    }

    #[tracing::instrument(target = "idgate::trace", name = "idp discovery", skip_all, fields(otel.kind = "client"))]
    async fn discover_fresh(&self) -> Result<Arc<Discovered>, IdpError> {
        let discovery_err = |message: String| IdpError::Discovery {
            issuer: self.issuer.clone(),
            message,
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let resp = idp_call(
            crate::telemetry::propagate(
                self.http
                    .get(&url)
                    .header(reqwest::header::ACCEPT, "application/json"),
            )
            .send(),
        )
        .await
        .map_err(|e| request_failed(&e, discovery_err))?;
        if !resp.status().is_success() {
            return Err(discovery_err(format!("{url} answered {}", resp.status())));
        }
        let body = idp_call(resp.bytes())
            .await
            .map_err(|e| request_failed(&e, discovery_err))?;
        let meta: ProviderMetadataWithLogout = serde_json::from_slice(&body)
            .map_err(|e| discovery_err(format!("{url}: not a discovery document: {e}")))?;
        let rule = issuer_rule(self.provider.kind, &self.issuer, meta.issuer().as_str())
            .map_err(discovery_err)?;
        let more: MoreMetadata = serde_json::from_slice(&body)
            .map_err(|e| discovery_err(format!("{url}: not a discovery document: {e}")))?;
        let algs = algs::accepted_algs(
            self.provider.id_token_signing_algs.as_deref(),
            meta.id_token_signing_alg_values_supported(),
        )
        .map_err(discovery_err)?;
        let jwks = idp_call(openidconnect::JsonWebKeySet::fetch_async(
            meta.jwks_uri(),
            &crate::telemetry::Traced(self.http.clone()),
        ))
        .instrument(tracing::info_span!(target: "idgate::trace", "idp jwks", otel.kind = "client"))
        .await
        .map_err(|e| request_failed(&e, |m| discovery_err(format!("JWKS: {m}"))))?;
        let discovered = Arc::new(Discovered {
            keys: fast_keys(&jwks),
            meta: meta.set_jwks(jwks),
            rule,
            algs,
            iss_parameter_supported: more.authorization_response_iss_parameter_supported,
            introspection_endpoint: super::introspection::endpoint_of(&body),
            par: crate::idp::par::ParMetadata::of_discovery(&body),
        });
        if let Ok(mut g) = self.discovered.write() {
            *g = Some(discovered.clone());
        }
        Ok(discovered)
    }

    /// Fetches the JWKS again (at most once per [`JWKS_REFETCH_MIN_INTERVAL`]).
    #[tracing::instrument(target = "idgate::trace", name = "idp jwks", skip_all, fields(otel.kind = "client"))]
    pub(super) async fn refetch_jwks(&self) -> Result<Arc<Discovered>, IdpError> {
        let d = self.discovered().await?;
        let recent = self
            .last_jwks_fetch
            .read()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|t| t.elapsed() < JWKS_REFETCH_MIN_INTERVAL);
        if recent {
            return Err(IdpError::IdToken(
                "signed by a key the IdP does not publish".into(),
            ));
        }
        let jwks = idp_call(openidconnect::JsonWebKeySet::fetch_async(
            d.meta.jwks_uri(),
            &crate::telemetry::Traced(self.http.clone()),
        ))
        .await
        .map_err(|e| {
            request_failed(&e, |m| {
                IdpError::Protocol(format!("JWKS fetch failed: {m}"))
            })
        })?;
        let updated = Arc::new(Discovered {
            keys: fast_keys(&jwks),
            meta: d.meta.clone().set_jwks(jwks),
            ..(*d).clone()
        });
        if let Ok(mut g) = self.discovered.write() {
            *g = Some(updated.clone());
        }
        if let Ok(mut g) = self.last_jwks_fetch.write() {
            *g = Some(Instant::now());
        }
        Ok(updated)
    }
}
