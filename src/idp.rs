//! The identity providers: OIDC discovery, the authorization URL (state, nonce, PKCE S256), the
//! code exchange, id_token validation and userinfo — all through the `openidconnect` crate.
//!
//! Discovery is lazy and retried: idgate starts while an IdP is down and discovers it at the
//! first login. When an id_token names a signing key the cached JWKS does not hold (the IdP
//! rotated its keys), the JWKS is fetched again once and the check retried.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{AppConfig, ProviderConfig};

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Least time between two JWKS fetches triggered by an unknown `kid`.
const JWKS_REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(2);

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
    redirect_url: RedirectUrl,
    http: openidconnect::reqwest::Client,
    /// Discovered metadata; a std lock because it is only read or swapped, never held across
    /// an `.await`.
    metadata: RwLock<Option<Arc<ProviderMetadataWithLogout>>>,
    /// When an unknown `kid` last made us fetch the JWKS (rate limit).
    last_jwks_fetch: RwLock<Option<Instant>>,
}

impl IdpClient {
    fn new(
        app: &AppConfig,
        provider: Arc<ProviderConfig>,
        http: openidconnect::reqwest::Client,
    ) -> Result<Self, IdpError> {
        let redirect_url = RedirectUrl::new(app.redirect_url.to_string())
            .map_err(|e| IdpError::Protocol(format!("redirect_url: {e}")))?;
        Ok(Self {
            provider,
            redirect_url,
            http,
            metadata: RwLock::new(None),
            last_jwks_fetch: RwLock::new(None),
        })
    }

    pub fn provider(&self) -> &ProviderConfig {
        &self.provider
    }

    async fn metadata(&self) -> Result<Arc<ProviderMetadataWithLogout>, IdpError> {
        if let Some(m) = self.metadata.read().ok().and_then(|g| g.clone()) {
            return Ok(m);
        }
        self.discover().await
    }

    /// Fetches the discovery document now (and caches it): `/-/check-up` uses it to tell
    /// whether the provider answers.
    pub async fn discover(&self) -> Result<Arc<ProviderMetadataWithLogout>, IdpError> {
        let issuer = self
            .provider
            .issuer_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let discovery_err = |message: String| IdpError::Discovery {
            issuer: issuer.clone(),
            message,
        };
        let issuer_url =
            IssuerUrl::new(issuer.clone()).map_err(|e| discovery_err(e.to_string()))?;
        let meta = ProviderMetadataWithLogout::discover_async(issuer_url, &self.http)
            .await
            .map_err(|e| discovery_err(error_chain(&e)))?;
        let meta = Arc::new(meta);
        if let Ok(mut g) = self.metadata.write() {
            *g = Some(meta.clone());
        }
        Ok(meta)
    }

    fn client(&self, meta: &ProviderMetadataWithLogout) -> Client {
        CoreClient::from_provider_metadata(
            meta.clone(),
            ClientId::new(self.provider.client_id.clone()),
            Some(ClientSecret::new(
                self.provider.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect_url.clone())
    }

    /// Builds the authorization URL for `state` and `nonce`, with a fresh PKCE challenge.
    pub async fn start_login(&self, state: &str, nonce: &str) -> Result<LoginStart, IdpError> {
        let meta = self.metadata().await?;
        let client = self.client(&meta);
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
        let (url, _, _) = req.set_pkce_challenge(challenge).url();
        Ok(LoginStart {
            authorize_url: url,
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code, validates the id_token (signature, iss, aud, exp, nonce) and reads
    /// userinfo.
    pub async fn finish_login(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<(IdpUser, IdpTokens), IdpError> {
        let meta = self.metadata().await?;
        let mut client = self.client(&meta);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| IdpError::Protocol(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                IdpError::Protocol(format!("code exchange failed: {}", error_chain(&e)))
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| IdpError::IdToken("the token response has no id_token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let first = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .cloned();
        let claims: CoreIdTokenClaims = match first {
            Ok(c) => c,
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                // The IdP may have rotated its keys since discovery.
                client = self.refetch_jwks().await?;
                let verifier = client.id_token_verifier();
                let claims = id_token.claims(&verifier, &nonce).cloned();
                claims.map_err(|e| IdpError::IdToken(e.to_string()))?
            }
            Err(e) => return Err(IdpError::IdToken(e.to_string())),
        };
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| IdpError::IdToken(e.to_string()))?;
            let verifier = client.id_token_verifier();
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| IdpError::IdToken(e.to_string()))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|e| IdpError::IdToken(e.to_string()))?;
            if actual != *expected {
                return Err(IdpError::IdToken(
                    "at_hash does not match the access token".into(),
                ));
            }
        }
        let mut user = IdpUser {
            subject: claims.subject().to_string(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            email: claims.email().map(|e| e.to_string()),
            username: claims.preferred_username().map(|u| u.to_string()),
        };
        if let Ok(req) = client.user_info(
            response.access_token().clone(),
            Some(claims.subject().clone()),
        ) {
            let info: CoreUserInfoClaims = req
                .request_async(&self.http)
                .await
                .map_err(|e| IdpError::Protocol(format!("userinfo failed: {}", error_chain(&e))))?;
            if let Some(n) = info.name().and_then(|n| n.get(None)) {
                user.name = Some(n.to_string());
            }
            if let Some(e) = info.email() {
                user.email = Some(e.to_string());
            }
            if let Some(u) = info.preferred_username() {
                user.username = Some(u.to_string());
            }
        }
        let tokens = IdpTokens {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token: Some(id_token.to_string()),
            expires_at: response
                .expires_in()
                .map(|d| crate::now_secs() + d.as_secs() as i64),
        };
        Ok((user, tokens))
    }

    /// Fetches the JWKS again (at most once per [`JWKS_REFETCH_MIN_INTERVAL`]).
    async fn refetch_jwks(&self) -> Result<Client, IdpError> {
        let meta = self.metadata().await?;
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
        let jwks = openidconnect::JsonWebKeySet::fetch_async(meta.jwks_uri(), &self.http)
            .await
            .map_err(|e| IdpError::Protocol(format!("JWKS fetch failed: {}", error_chain(&e))))?;
        let mut updated = (*meta).clone();
        updated = updated.set_jwks(jwks);
        let updated = Arc::new(updated);
        if let Ok(mut g) = self.metadata.write() {
            *g = Some(updated.clone());
        }
        if let Ok(mut g) = self.last_jwks_fetch.write() {
            *g = Some(Instant::now());
        }
        Ok(self.client(&updated))
    }

    /// The IdP's RP-initiated logout endpoint, when it has one and discovery succeeded.
    pub async fn end_session_url(&self) -> Option<Url> {
        let meta = self.metadata().await.ok()?;
        meta.additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().clone())
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
    pub fn new(
        apps: &std::collections::BTreeMap<String, Arc<AppConfig>>,
    ) -> Result<Self, IdpError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a hostile response point us anywhere (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| IdpError::Protocol(format!("HTTP client: {e}")))?;
        let mut clients = HashMap::new();
        for app in apps.values() {
            for p in app.providers.values() {
                let client = IdpClient::new(app, p.clone(), http.clone())?;
                clients.insert((app.id.clone(), p.id.clone()), Arc::new(client));
            }
        }
        Ok(Self { clients })
    }

    pub fn get(&self, app: &str, provider: &str) -> Option<&Arc<IdpClient>> {
        self.clients.get(&(app.to_owned(), provider.to_owned()))
    }

    /// Every ((app, provider), client) pair, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&(String, String), &Arc<IdpClient>)> {
        self.clients.iter()
    }
}
