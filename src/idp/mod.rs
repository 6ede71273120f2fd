//! The identity providers. [`IdpClient`] is what the routes use — `start_login` (the
//! authorization URL), `finish_login` (code → the user and the IdP's tokens),
//! `end_session_url` (RP-initiated logout) — whatever the provider's type:
//!
//! - [`oidc`]: the OpenID Connect types (`oidc`, `keycloak`, `okta`, `microsoft`, `google`,
//!   `auth0`, `gitlab`) through the `openidconnect` crate: discovery, PKCE S256, nonce, id_token
//!   validation with a JWKS re-fetch on an unknown `kid`, userinfo.
//! - [`oauth2`]: plain OAuth2 (`github`, `bitbucket`, `generic`) through the `oauth2` crate —
//!   state and PKCE S256, the code exchange — then the vendor's user API ([`profiles`]).
//!
//! Per-type defaults (endpoints, scopes, token endpoint authentication, the user id) are listed
//! in `config/providers.rs`.

mod oauth2;
mod oidc;
mod profiles;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{AppConfig, Protocol, ProviderConfig};

#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("discovery at {issuer} failed: {message}")]
    Discovery { issuer: String, message: String },
    #[error("{0}")]
    Protocol(String),
    /// The IdP answered with an OAuth error (e.g. `invalid_grant` for a used or expired code).
    #[error("the identity provider refused: {0}")]
    Rejected(String),
    #[error("id_token rejected: {0}")]
    IdToken(String),
}

/// What the IdP returned about the user.
#[derive(Debug, Clone, PartialEq)]
pub struct IdpUser {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
}

/// The IdP's tokens, kept (encrypted) with the session for refresh and logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdpTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
}

/// The start of a login: where to send the browser, and the PKCE verifier to keep.
pub struct LoginStart {
    pub authorize_url: Url,
    pub pkce_verifier: String,
}

/// One provider of one app.
pub struct IdpClient {
    provider: Arc<ProviderConfig>,
    flow: Flow,
}

enum Flow {
    Oidc(oidc::OidcFlow),
    OAuth2(Box<self::oauth2::OAuth2Flow>),
}

impl IdpClient {
    fn new(
        app: &AppConfig,
        provider: Arc<ProviderConfig>,
        http: reqwest::Client,
    ) -> Result<Self, IdpError> {
        let flow = match &provider.protocol {
            Protocol::Oidc { .. } => Flow::Oidc(oidc::OidcFlow::new(app, provider.clone(), http)?),
            Protocol::OAuth2(_) => Flow::OAuth2(Box::new(self::oauth2::OAuth2Flow::new(
                app,
                provider.clone(),
                http,
            )?)),
        };
        Ok(Self { provider, flow })
    }

    pub fn provider(&self) -> &ProviderConfig {
        &self.provider
    }

    /// Builds the authorization URL for `state` (and `nonce`, OIDC only), with a fresh PKCE
    /// challenge.
    pub async fn start_login(&self, state: &str, nonce: &str) -> Result<LoginStart, IdpError> {
        match &self.flow {
            Flow::Oidc(f) => f.start_login(state, nonce).await,
            Flow::OAuth2(f) => f.start_login(state),
        }
    }

    /// Exchanges the code (with the PKCE verifier) and reads who the user is: from the
    /// validated id_token and userinfo (OIDC; `nonce` checked), or from the vendor's user API.
    pub async fn finish_login(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<(IdpUser, IdpTokens), IdpError> {
        let finished = match &self.flow {
            Flow::Oidc(f) => f.finish_login(code, pkce_verifier, nonce).await,
            Flow::OAuth2(f) => f.finish_login(code, pkce_verifier).await,
        };
        // Refusals answer 4xx, which the error mapping does not log: say here why.
        if let Err(e @ (IdpError::IdToken(_) | IdpError::Rejected(_))) = &finished {
            tracing::warn!(provider = %self.provider().id, error = %e, "login refused");
        }
        finished
    }

    /// The IdP's RP-initiated logout endpoint, when it has one (OIDC discovery says so).
    pub async fn end_session_url(&self) -> Option<Url> {
        match &self.flow {
            Flow::Oidc(f) => f.end_session_url().await,
            Flow::OAuth2(_) => None,
        }
    }

    /// Fetches the discovery document (and JWKS) now, replacing the cached one: `/-/check-up`
    /// uses it to tell whether the provider answers. Plain OAuth2 providers have nothing to
    /// discover.
    pub async fn discover(&self) -> Result<(), IdpError> {
        match &self.flow {
            Flow::Oidc(f) => f.rediscover().await,
            Flow::OAuth2(_) => Ok(()),
        }
    }

    /// Validates a back-channel logout token (OIDC providers only).
    pub async fn verify_logout_token(&self, token: &str) -> Result<oidc::LogoutClaims, IdpError> {
        match &self.flow {
            Flow::Oidc(f) => f.verify_logout_token(token).await,
            Flow::OAuth2(_) => Err(IdpError::Protocol(format!(
                "provider `{}` has no back-channel logout (not OpenID Connect)",
                self.provider().id
            ))),
        }
    }
}

/// `Display` of an error and its sources, for messages that tell the operator what failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Every configured (app, provider) pair's client.
pub struct Idps {
    clients: HashMap<(String, String), Arc<IdpClient>>,
}

impl Idps {
    /// The clients of every provider, trusting the built-in roots only.
    pub fn new(
        apps: &std::collections::BTreeMap<String, Arc<AppConfig>>,
    ) -> Result<Self, IdpError> {
        Self::with_trust(apps, &crate::tls::TrustStore::default())
    }

    /// The clients of every provider; their one HTTP client trusts `trust` (`[tls]`, the
    /// `idp` client), for discovery, JWKS, token, userinfo and the vendors' user APIs alike.
    pub fn with_trust(
        apps: &std::collections::BTreeMap<String, Arc<AppConfig>>,
        trust: &crate::tls::TrustStore,
    ) -> Result<Self, IdpError> {
        let builder = reqwest::Client::builder()
            // Following redirects would let a hostile response point us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            // GitHub's API refuses requests without a User-Agent.
            .user_agent(concat!("idgate/", env!("CARGO_PKG_VERSION")));
        let http = trust
            .apply_to(builder)
            .and_then(reqwest::ClientBuilder::build)
            .map_err(|e| IdpError::Protocol(format!("HTTP client: {}", error_chain(&e))))?;
        let mut clients = HashMap::new();
        for app in apps.values() {
            for p in app.providers.values() {
                let client = IdpClient::new(app, p.clone(), http.clone())?;
                clients.insert((app.id.clone(), p.id.clone()), Arc::new(client));
            }
        }
        Ok(Self { clients })
    }

    /// Every ((app, provider), client) pair, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&(String, String), &Arc<IdpClient>)> {
        self.clients.iter()
    }

    pub fn get(&self, app: &str, provider: &str) -> Option<&Arc<IdpClient>> {
        self.clients.get(&(app.to_owned(), provider.to_owned()))
    }
}
