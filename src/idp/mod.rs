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
//! in `config/providers/`. How idgate authenticates as the client (secrets or RFC 7523
//! assertions) is [`client_auth`]; Pushed Authorization Requests (RFC 9126) are in `par`.

pub mod client_auth;
mod oauth2;
mod oidc;
mod par;
mod profiles;
pub mod step_up;

pub use self::oidc::introspection::Introspection;
pub use oidc::IssProblem;

/// Fuzz entry points for what identity providers send (see `crate::fuzz`).
#[doc(hidden)]
pub mod fuzz {
    pub use super::oidc::fuzz::{discovery, id_token, jwks, logout_token};
    pub use super::profiles::fuzz::userinfo;
}

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{AppConfig, Protocol, ProviderConfig};
use crate::store::StepUpRequest;

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
    /// A request to the IdP got no answer within the provider's `timeout`.
    #[error("the identity provider did not answer in time: {0}")]
    Timeout(String),
    /// A step-up was asked of a provider that cannot assert how it authenticated.
    #[error("provider `{0}` is plain OAuth2: it cannot be asked for acr_values or max_age")]
    StepUpUnsupported(String),
}

/// What the IdP returned about the user.
#[derive(Debug, Clone, PartialEq)]
pub struct IdpUser {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    /// Every claim the IdP asserted, as it sent them: the verified id_token's claims, then
    /// userinfo's for names the id_token lacks (OIDC), or the user API's top-level fields (plain
    /// OAuth2). Only `groups` (`use_provider_groups`) and the names a provider's
    /// `claims_to_token` lists are ever kept, through [`Asserted`].
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// How the IdP authenticated the user (`acr`, `amr`, `auth_time` of the verified
    /// id_token; empty for plain OAuth2).
    pub authn: crate::jwt::Authn,
}

/// The IdP's tokens, kept (encrypted) with the session for refresh and logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdpTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
    /// What the session token carries from the IdP, kept sealed with the tokens so that a
    /// renewal or a refresh issues the same (absent in sessions that carry nothing of it).
    #[serde(default, skip_serializing_if = "Asserted::is_empty")]
    pub asserted: Asserted,
}

/// The part of an IdP's assertion a session keeps for its token: the IdP's groups (apps with
/// `use_provider_groups`) and the claims a provider's `claims_to_token` copies, already renamed
/// and checked against the limits below. Frozen at login: a refresh or a renewal does not ask
/// the IdP again (README, "Groups and claims from the IdP").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Asserted {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub claims: std::collections::BTreeMap<String, serde_json::Value>,
    /// How the IdP authenticated the login (`acr`, `amr`, `auth_time`): every token of the
    /// session carries it, renewed or refreshed, for the routes that need a step-up.
    #[serde(default, skip_serializing_if = "crate::jwt::Authn::is_empty")]
    pub authn: crate::jwt::Authn,
}

/// At most this many groups from the IdP; a login asserting more is refused (a token that
/// grows without bound would not fit in headers, and silently dropping some would be a
/// guess).
pub const MAX_IDP_GROUPS: usize = 256;
/// At most this many bytes in one group name from the IdP.
pub const MAX_IDP_GROUP_BYTES: usize = 256;
/// At most this many bytes of JSON in the claims copied by `claims_to_token`, all together.
pub const MAX_IDP_CLAIMS_BYTES: usize = 4096;

impl Asserted {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.claims.is_empty() && self.authn.is_empty()
    }

    /// What a login through `provider` of `app` keeps of `user`'s claims; an error (saying
    /// which limit) when the IdP asserted more than a session may carry.
    pub fn of(app: &AppConfig, provider: &ProviderConfig, user: &IdpUser) -> Result<Self, String> {
        let mut out = Asserted {
            authn: user.authn.clone(),
            ..Asserted::default()
        };
        if app.use_provider_groups {
            out.groups = idp_groups(user.claims.get("groups"))?;
        }
        for (from, to) in &provider.claims_to_token {
            if let Some(value) = user.claims.get(from).filter(|v| !v.is_null()) {
                out.claims.insert(to.clone(), value.clone());
            }
        }
        let size = serde_json::to_vec(&out.claims).map_or(usize::MAX, |b| b.len());
        if size > MAX_IDP_CLAIMS_BYTES {
            return Err(format!(
                "the claims copied by claims_to_token are {size} bytes of JSON, over the \
                 {MAX_IDP_CLAIMS_BYTES}-byte limit"
            ));
        }
        Ok(out)
    }
}

/// The IdP's `groups` claim: an array of strings (Keycloak, Okta, Entra ID, GitLab) or a single
/// string; absent or `null` is no group. Anything else, and more than the limits allow, is an
/// error: a claim that does not say which groups cannot be read as "none".
fn idp_groups(claim: Option<&serde_json::Value>) -> Result<Vec<String>, String> {
    use serde_json::Value;
    let names: Vec<&str> = match claim {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => {
            if items.len() > MAX_IDP_GROUPS {
                return Err(format!(
                    "the IdP asserted {} groups, over the limit of {MAX_IDP_GROUPS}",
                    items.len()
                ));
            }
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or("the IdP's `groups` claim holds a value that is not a string")
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err("the IdP's `groups` claim is neither a string nor a list".into()),
    };
    let mut groups: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if name.len() > MAX_IDP_GROUP_BYTES {
            return Err(format!(
                "the IdP asserted a group name of {} bytes, over the limit of {MAX_IDP_GROUP_BYTES}",
                name.len()
            ));
        }
        if !name.is_empty() && !groups.iter().any(|g| g == name) {
            groups.push(name.to_owned());
        }
    }
    Ok(groups)
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
    Oidc(Box<oidc::OidcFlow>),
    OAuth2(Box<self::oauth2::OAuth2Flow>),
}

impl IdpClient {
    fn new(
        app: &AppConfig,
        provider: Arc<ProviderConfig>,
        http: reqwest::Client,
    ) -> Result<Self, IdpError> {
        let flow = match &provider.protocol {
            Protocol::Oidc { .. } => {
                Flow::Oidc(Box::new(oidc::OidcFlow::new(app, provider.clone(), http)?))
            }
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
    /// challenge, asking what `step_up` says beyond a plain login (OIDC only: a plain OAuth2
    /// provider cannot be asked, and such a login is refused here).
    pub async fn start_login(
        &self,
        state: &str,
        nonce: &str,
        step_up: &StepUpRequest,
    ) -> Result<LoginStart, IdpError> {
        match &self.flow {
            Flow::Oidc(f) => f.start_login(state, nonce, step_up).await,
            Flow::OAuth2(_) if !step_up.is_empty() => {
                Err(IdpError::StepUpUnsupported(self.provider.id.clone()))
            }
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

    /// Checks the authorization response's `iss` (RFC 9207, see `oidc/response.rs`): `Some`
    /// problem when it is refused. Plain OAuth2 providers have no issuer to compare: `None`
    /// (the route refuses an `iss` naming another configured provider for them too).
    pub async fn check_response_iss(
        &self,
        iss: Option<&str>,
    ) -> Result<Option<IssProblem>, IdpError> {
        match &self.flow {
            Flow::Oidc(f) => f.check_response_iss(iss).await,
            Flow::OAuth2(_) => Ok(None),
        }
    }

    /// Whether `iss` is this provider's issuer (OIDC; never for plain OAuth2), to name the
    /// provider a mixed-up authorization response came from.
    pub fn names_issuer(&self, iss: &str) -> bool {
        match &self.flow {
            Flow::Oidc(f) => f.names_issuer(iss),
            Flow::OAuth2(_) => false,
        }
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

    /// Asks the IdP's introspection endpoint about `token` (RFC 7662; OIDC providers only):
    /// `None` when the IdP says it is not active.
    pub async fn introspect(&self, token: &str) -> Result<Option<Introspection>, IdpError> {
        match &self.flow {
            Flow::Oidc(f) => f.introspect(token).await,
            Flow::OAuth2(_) => Err(IdpError::Protocol(format!(
                "provider `{}` has no introspection endpoint (not OpenID Connect)",
                self.provider().id
            ))),
        }
    }

    /// A form POST of `form` to `endpoint` (an endpoint of this IdP: introspection,
    /// revocation…), authenticated as the client the way the token endpoint is
    /// ([`client_auth::ClientAuth::authenticate`]), on this provider's HTTP client (its
    /// `timeout`, no redirects, `[tls]`); the caller sends it and reads the answer.
    pub async fn authenticated_post(
        &self,
        endpoint: &Url,
        form: Vec<(String, String)>,
    ) -> Result<reqwest::RequestBuilder, IdpError> {
        match &self.flow {
            Flow::Oidc(f) => f.authenticated_post(endpoint, form).await,
            Flow::OAuth2(f) => f.authenticated_post(endpoint, form),
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

/// A failed request to the IdP: [`IdpError::Timeout`] when it (or an error it wraps) timed out,
/// else what `otherwise` makes of the whole chain's message.
fn request_failed(
    e: &(dyn std::error::Error + 'static),
    otherwise: impl FnOnce(String) -> IdpError,
) -> IdpError {
    if timed_out(e) {
        IdpError::Timeout(error_chain(e))
    } else {
        otherwise(error_chain(e))
    }
}

/// Whether `e` or one of its sources is an HTTP request that timed out.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        // `openidconnect` wraps the client's error boxed, so it is a source of that type.
        let reqwest_error = e
            .downcast_ref::<reqwest::Error>()
            .or_else(|| e.downcast_ref::<Box<reqwest::Error>>().map(|b| &**b));
        if reqwest_error.is_some_and(reqwest::Error::is_timeout)
            || matches!(e.downcast_ref::<IdpError>(), Some(IdpError::Timeout(_)))
        {
            return true;
        }
        next = e.source();
    }
    false
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

/// The HTTP client for IdP requests: no redirects followed, each request bounded by `timeout`
/// (connecting included), trusting `trust`.
fn http_client(
    timeout: Duration,
    trust: &crate::tls::TrustStore,
) -> Result<reqwest::Client, IdpError> {
    let builder = reqwest::Client::builder()
        // Following redirects would let a hostile response point us anywhere (SSRF).
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        // GitHub's API refuses requests without a User-Agent.
        .user_agent(concat!("idgate/", env!("CARGO_PKG_VERSION")));
    trust
        .apply_to(builder)
        .and_then(reqwest::ClientBuilder::build)
        .map_err(|e| IdpError::Protocol(format!("HTTP client: {}", error_chain(&e))))
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

    /// The clients of every provider; their HTTP clients trust `trust` (`[tls]`, the
    /// `idp` client), for discovery, JWKS, token, userinfo and the vendors' user APIs alike.
    pub fn with_trust(
        apps: &std::collections::BTreeMap<String, Arc<AppConfig>>,
        trust: &crate::tls::TrustStore,
    ) -> Result<Self, IdpError> {
        // One HTTP client (and connection pool) per distinct provider `timeout`.
        let mut http_by_timeout: HashMap<Duration, reqwest::Client> = HashMap::new();
        let mut clients = HashMap::new();
        for app in apps.values() {
            for p in app.providers.values() {
                let http = match http_by_timeout.get(&p.timeout) {
                    Some(http) => http.clone(),
                    None => {
                        let http = http_client(p.timeout, trust)?;
                        http_by_timeout.insert(p.timeout, http.clone());
                        http
                    }
                };
                let client = IdpClient::new(app, p.clone(), http)?;
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

#[cfg(test)]
mod tests;
