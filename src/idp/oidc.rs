//! The OpenID Connect types (`oidc`, `keycloak`, `okta`, `microsoft`, `google`, `auth0`,
//! `gitlab`): discovery, the authorization URL (state, nonce, PKCE S256), the code exchange,
//! id_token validation and userinfo — through the `openidconnect` crate.
//!
//! Discovery is lazy and retried: idgate starts while an IdP is down and discovers it at the
//! first login. When an id_token names a signing key the cached JWKS does not hold (the IdP
//! rotated its keys), the JWKS is fetched again once and the check retried.
//!
//! The discovery document is fetched here rather than by `openidconnect`, whose discovery
//! insists the announced issuer equals the configured one character for character. idgate
//! accepts, and then requires in every id_token, the issuer the document announces when:
//!
//! - it is the configured one, give or take a trailing slash (Auth0's issuer ends in `/`,
//!   Keycloak's and Google's do not; an operator may write either);
//! - for `microsoft`, it is on the same origin as the configured one. Azure AD B2C serves the
//!   discovery document per policy (`https://<t>.b2clogin.com/<t>.onmicrosoft.com/<policy>/v2.0`)
//!   while the issuer it announces, and puts in `iss`, is the tenant's
//!   (`https://<t>.b2clogin.com/<tenant-id>/v2.0/`, or `…/tfp/<tenant-id>/<policy>/v2.0/` when
//!   the tenant's user flow is set to the `tfp` form). Whichever form the tenant uses is the one
//!   the document announces, so that is the one required; the policy itself (`tfp`/`acr`
//!   claim) is not checked separately — the discovery document, hence the client's authorization
//!   endpoint, is already the policy's.
//! - for `microsoft`, it is the multi-tenant template `https://login.microsoftonline.com/{tenantid}/v2.0`
//!   (the `common`, `organizations` and `consumers` endpoints): then `iss` must be that URL with
//!   one tenant id in place of `{tenantid}`.
//!
//! Signing algorithms accepted for id_tokens and logout tokens: the provider's allow-list
//! (`id_token_signing_algs`, default what discovery advertises minus `none` and `HS*`), and
//! `at_hash`/`c_hash` when present — see [`algs`]. The authorization response's `iss`
//! (RFC 9207, mix-up defence) is checked in [`response`].
//!
//! A `microsoft` provider's `tenants` allow-list is checked on every id_token and logout token
//! (see `config/providers/`): Microsoft signs the tokens of every tenant with the same keys,
//! so on a multi-tenant endpoint the signature alone says nothing about whose user it is. A
//! multi-tenant issuer without a list is refused at login even if the configuration did not
//! recognise it as one.
//!
//! E-mail addresses an IdP marks unverified (`email_verified: false`, in the id_token or in
//! userinfo) are dropped: the user is stored and signed in without an address. An absent flag
//! keeps the address, as before (many IdPs never send it, e.g. Entra ID).
//!
//! Discovery and the JWKS are fetched in [`discovery`]; back-channel logout tokens are checked in
//! [`logout`]; the issuer rules (above) in [`issuer`];
//! userinfo is read (and a signed answer checked) in [`userinfo`].

use std::sync::{Arc, RwLock};
use std::time::Instant;

use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims};
use openidconnect::{
    AuthType, AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenVerifier, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl, Scope,
    TokenResponse,
};

mod algs;
mod checks;
mod discovery;
#[doc(hidden)]
pub mod fuzz;
pub mod introspection;
mod issuer;
mod jwk;
mod logout;
mod response;
mod userinfo;

pub use self::checks::LogoutClaims;
use self::checks::{
    check_azp, check_id_token_iat, check_tenant, verified_email, verified_payload,
    verified_payload_claim,
};
use self::discovery::{find_key, key_in, Discovered};
use self::issuer::{issuer_rule, matches_tenant, IssuerRule};
use self::jwk::FastJwk;
pub use self::response::IssProblem;
use super::{error_chain, request_failed, IdpError, IdpTokens, IdpUser, LoginStart};
use crate::config::{AppConfig, Protocol, ProviderConfig};
use crate::metrics::idp_call;
use crate::store::StepUpRequest;
use tracing::Instrument;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The claims of a userinfo answer beyond OIDC's standard ones (the IdP's `groups`, custom
/// claims), for `use_provider_groups` and `claims_to_token`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct OtherClaims(serde_json::Map<String, serde_json::Value>);
impl openidconnect::AdditionalClaims for OtherClaims {}

pub struct OidcFlow {
    provider: Arc<ProviderConfig>,
    /// The issuer as configured (discovery starts there).
    issuer: String,
    redirect_url: RedirectUrl,
    http: reqwest::Client,
    /// Discovered metadata; a std lock because it is only read or swapped, never held across
    /// an `.await`.
    discovered: RwLock<Option<Arc<Discovered>>>,
    /// When an unknown `kid` last made us fetch the JWKS (rate limit).
    last_jwks_fetch: RwLock<Option<Instant>>,
    /// How idgate authenticates as the client (token endpoint, PAR).
    auth: super::client_auth::ClientAuth,
}

impl OidcFlow {
    pub fn new(
        app: &AppConfig,
        provider: Arc<ProviderConfig>,
        http: reqwest::Client,
    ) -> Result<Self, IdpError> {
        let redirect_url = RedirectUrl::new(app.redirect_url.to_string())
            .map_err(|e| IdpError::Protocol(format!("redirect_url: {e}")))?;
        let issuer = match &provider.protocol {
            Protocol::Oidc { issuer } => issuer.clone(),
            Protocol::OAuth2(_) => {
                return Err(IdpError::Protocol(format!(
                    "provider `{}` is not an OpenID Connect provider",
                    provider.id
                )))
            }
        };
        Ok(Self {
            auth: super::client_auth::ClientAuth::of(&provider),
            provider,
            issuer,
            redirect_url,
            http,
            discovered: RwLock::new(None),
            last_jwks_fetch: RwLock::new(None),
        })
    }

    fn client(&self, meta: &ProviderMetadataWithLogout) -> Client {
        CoreClient::from_provider_metadata(
            meta.clone(),
            ClientId::new(self.provider.client_id.clone()),
            self.auth.crate_secret().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect_url.clone())
        .set_auth_type(if self.auth.uses_basic() {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        })
    }

    /// The audience of client assertions: the token endpoint (the issuer if discovery named
    /// none, when the code exchange cannot happen anyway).
    fn token_audience(d: &Discovered) -> String {
        d.meta
            .token_endpoint()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_else(|| d.meta.issuer().as_str().to_owned())
    }

    /// See [`super::IdpClient::authenticated_post`]; the audience of an assertion is the
    /// discovered token endpoint.
    pub async fn authenticated_post(
        &self,
        endpoint: &url::Url,
        form: Vec<(String, String)>,
    ) -> Result<reqwest::RequestBuilder, IdpError> {
        let d = self.discovered().await?;
        let req = self.http.post(endpoint.clone());
        self.auth.authenticate(req, form, &Self::token_audience(&d))
    }

    /// The id_token verifier: `openidconnect`'s, as its client would make it, with the JWKS
    /// whose RSA signatures ring checks ([`jwk`]).
    fn verifier(&self, d: &Discovered) -> IdTokenVerifier<'static, FastJwk> {
        let client_id = ClientId::new(self.provider.client_id.clone());
        let issuer = d.meta.issuer().clone();
        let keys = d.keys.clone();
        match self.auth.crate_secret() {
            Some(secret) => IdTokenVerifier::new_confidential_client(
                client_id,
                ClientSecret::new(secret),
                issuer,
                keys,
            ),
            None => IdTokenVerifier::new_public_client(client_id, issuer, keys),
        }
        .set_allowed_algs(d.algs.iter().cloned())
        .require_issuer_match(d.rule == IssuerRule::Exact)
        // openidconnect accepts any `iat` unless told otherwise.
        .set_issue_time_verifier_fn(|iat| check_id_token_iat(iat.timestamp(), crate::now_secs()))
    }

    /// Builds the authorization URL for `state` and `nonce`, with a fresh PKCE challenge and
    /// what `step_up` asks (`acr_values`, `max_age`, `prompt=login`).
    pub async fn start_login(
        &self,
        state: &str,
        nonce: &str,
        step_up: &StepUpRequest,
    ) -> Result<LoginStart, IdpError> {
        let d = self.discovered().await?;
        let client = self.client(&d.meta);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for s in self
            .provider
            .scope
            .iter()
            .filter(|s| s.as_str() != "openid")
        {
            req = req.add_scope(Scope::new(s.clone()));
        }
        for acr in &step_up.acr_values {
            req = req.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        if let Some(max_age) = step_up.max_age {
            req = req.set_max_age(std::time::Duration::from_secs(max_age));
        }
        if step_up.prompt_login {
            req = req.add_prompt(CoreAuthPrompt::Login);
        }
        let (mut url, _, _) = req.set_pkce_challenge(challenge).url();
        if let Some(endpoint) = super::par::endpoint(self.provider.par, &d.par, &self.provider.id)?
        {
            url = super::par::push(
                &self.http,
                &self.provider.id,
                &self.auth,
                endpoint,
                &Self::token_audience(&d),
                &url,
            )
            .await?;
        }
        Ok(LoginStart {
            authorize_url: url,
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code, validates the id_token (signature, alg, iss, aud, azp, exp, iat,
    /// nonce, at_hash) and reads userinfo (whose `sub` must be the id_token's).
    pub async fn finish_login(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<(IdpUser, IdpTokens), IdpError> {
        let mut d = self.discovered().await?;
        let client = self.client(&d.meta);
        let code = AuthorizationCode::new(code.to_owned());
        let exchange = client
            .exchange_code(code.clone())
            .map_err(|e| IdpError::Protocol(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let mut exchange = exchange;
        for (name, value) in self.auth.extra_params(&Self::token_audience(&d))? {
            exchange = exchange.add_extra_param(name, value);
        }
        let response =
            idp_call(exchange.request_async(&crate::telemetry::Traced(self.http.clone())))
                .instrument(
                    tracing::info_span!(target: "idgate::trace", "idp token", otel.kind = "client"),
                )
                .await
                .map_err(|e| self.auth.exchange_failure(&self.provider.id, &e))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| IdpError::IdToken("the token response has no id_token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let mut verifier = self.verifier(&d);
        let first = id_token.claims(&verifier, &nonce).cloned();
        let claims: CoreIdTokenClaims = match first {
            Ok(c) => c,
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                // The IdP may have rotated its keys since discovery.
                d = self.refetch_jwks().await?;
                verifier = self.verifier(&d);
                let claims = id_token.claims(&verifier, &nonce).cloned();
                claims.map_err(|e| match e {
                    openidconnect::ClaimsVerificationError::SignatureVerification(
                        openidconnect::SignatureVerificationError::NoMatchingKey,
                    ) => IdpError::IdToken("signed by a key the IdP does not publish".into()),
                    e => IdpError::IdToken(error_chain(&e)),
                })?
            }
            Err(e) => return Err(IdpError::IdToken(error_chain(&e))),
        };
        check_azp(
            claims.authorized_party().map(|azp| azp.as_str()),
            claims.audiences().len(),
            &self.provider.client_id,
        )
        .map_err(IdpError::IdToken)?;
        if let IssuerRule::Tenant { prefix, suffix } = &d.rule {
            if !matches_tenant(claims.issuer().as_str(), prefix, suffix) {
                return Err(IdpError::IdToken(format!(
                    "issuer `{}` is not a tenant of `{prefix}{{tenantid}}{suffix}`",
                    claims.issuer().as_str()
                )));
            }
        }
        let id_token_text = id_token.to_string();
        let tid = verified_payload_claim(&id_token_text, "tid");
        check_tenant(
            &self.provider.tenants,
            &d.rule,
            claims.issuer().as_str(),
            tid.as_ref().and_then(|t| t.as_str()),
        )
        .map_err(|m| {
            tracing::warn!(provider = %self.provider.id, error = %m, "login refused: tenant not allowed");
            IdpError::IdToken(m)
        })?;
        algs::check_hashes(
            id_token,
            &claims,
            &verifier,
            algs::Hashed {
                access_token: response.access_token(),
                code: &code,
            },
        )?;
        let authn = crate::idp::step_up::authn_of(
            claims.auth_context_ref().map(|a| a.as_str()),
            claims
                .auth_method_refs()
                .map(|m| m.iter().map(|m| m.as_str().to_owned()).collect())
                .unwrap_or_default(),
            claims.auth_time().map(|t| t.timestamp()),
        )
        .map_err(|m| IdpError::IdToken(format!("the id_token is refused: {m}")))?;
        let mut user = IdpUser {
            authn,
            subject: claims.subject().to_string(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            email: None,
            username: claims.preferred_username().map(|u| u.to_string()),
            claims: verified_payload(&id_token_text).unwrap_or_default(),
        };
        let from_id_token = (
            claims.email().map(|e| e.to_string()),
            claims.email_verified(),
        );
        let mut from_userinfo = (None, None);
        if let Some(info) = self
            .userinfo(&d, response.access_token(), claims.subject())
            .await?
        {
            if let Some(n) = info.name().and_then(|n| n.get(None)) {
                user.name = Some(n.to_string());
            }
            from_userinfo = (info.email().map(|e| e.to_string()), info.email_verified());
            if let Some(u) = info.preferred_username() {
                user.username = Some(u.to_string());
            }
            // The id_token's claims win: they are signed; userinfo fills in the others.
            for (name, value) in &info.additional_claims().0 {
                user.claims
                    .entry(name.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        user.email = verified_email(from_id_token.clone(), from_userinfo.clone());
        if user.email.is_none() && (from_id_token.0.is_some() || from_userinfo.0.is_some()) {
            tracing::info!(provider = %self.provider.id, "the IdP marks the e-mail address unverified: not passed on");
        }
        let tokens = IdpTokens {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token: Some(id_token_text),
            expires_at: response
                .expires_in()
                .map(|d| crate::now_secs() + d.as_secs() as i64),
            asserted: Default::default(),
        };
        Ok((user, tokens))
    }
}

#[cfg(test)]
mod tests;
