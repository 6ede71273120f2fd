//! How idgate authenticates as a provider's client wherever it calls the IdP as one: the token
//! endpoint (code exchange) and the pushed authorization request endpoint (`par.rs`); any later
//! client-authenticated call (introspection, revocation) goes through [`ClientAuth::authenticate`]
//! too.
//!
//! Four methods (`auth_method`): `client_secret_basic` (HTTP Basic, id and secret each
//! form-urlencoded first, RFC 6749 §2.3.1), `client_secret_post` (both in the form), and the two
//! client assertions of RFC 7523 / OpenID Connect Core §9 — `client_secret_jwt` (HS256 keyed with
//! the client secret) and `private_key_jwt` (RS256 or ES256 with `client_key_file`, `kid` in the
//! header). An assertion has `iss` = `sub` = the client id, `aud` = the token endpoint URL (for
//! every endpoint, as OpenID Connect Core §9 asks; RFC 9126 §2 lets the PAR endpoint accept it
//! too), a fresh random `jti` (the IdP refuses a replay), and lives [`ASSERTION_LIFETIME`]
//! seconds. A fresh one is signed for every request; none is ever logged.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::IdpError;
use crate::config::{AuthMethod, ClientKey, ProviderConfig};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Seconds from an assertion's `iat` to its `exp`.
pub const ASSERTION_LIFETIME: i64 = 60;

/// The claims of a client assertion.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssertionClaims {
    /// The client id.
    pub iss: String,
    /// The client id.
    pub sub: String,
    /// The token endpoint URL.
    pub aud: String,
    /// Random, used once.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry: `iat` + [`ASSERTION_LIFETIME`].
    pub exp: i64,
}

/// One provider's client credentials and how they are presented.
pub struct ClientAuth {
    /// The client id.
    client_id: String,
    /// `auth_method`.
    method: AuthMethod,
    /// The client secret (empty for `private_key_jwt`).
    secret: crate::crypto::Secret,
    /// `private_key_jwt`'s key.
    key: Option<Arc<ClientKey>>,
}

impl ClientAuth {
    /// The credentials `provider` configures.
    pub fn of(provider: &ProviderConfig) -> Self {
        Self {
            client_id: provider.client_id.clone(),
            method: provider.auth_method,
            secret: crate::crypto::Secret::new(provider.client_secret.expose()),
            key: provider.client_key.clone(),
        }
    }

    /// `client_secret_basic` with `client_id` and `secret` (tests of the callers).
    #[cfg(test)]
    pub(super) fn basic_for_tests(client_id: &str, secret: &str) -> Self {
        Self {
            client_id: client_id.into(),
            method: AuthMethod::ClientSecretBasic,
            secret: crate::crypto::Secret::new(secret),
            key: None,
        }
    }

    /// The secret the `oauth2`/`openidconnect` clients are given: none for the assertion
    /// methods, which then send only `client_id` in the form, and [`Self::extra_params`] add
    /// the assertion.
    pub fn crate_secret(&self) -> Option<String> {
        match self.method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                Some(self.secret.expose().to_owned())
            }
            AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt => None,
        }
    }

    /// Whether the secret goes in HTTP Basic (else in the form).
    pub fn uses_basic(&self) -> bool {
        self.method == AuthMethod::ClientSecretBasic
    }

    /// The form parameters that authenticate a request beyond what the `oauth2` crate sends:
    /// the client assertion for `audience`, or nothing for the secret methods.
    pub fn extra_params(&self, audience: &str) -> Result<Vec<(&'static str, String)>, IdpError> {
        Ok(match self.assertion(audience, crate::now_secs())? {
            Some(jwt) => vec![
                ("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()),
                ("client_assertion", jwt),
            ],
            None => Vec::new(),
        })
    }

    /// Authenticates the form POST `req` carrying `form`, as the client, for an IdP whose token
    /// endpoint is `audience`: the one function every client-authenticated call to an IdP uses
    /// (PAR, and introspection or revocation when they come). `client_id` is added to the form
    /// unless it is there already or Basic carries it.
    pub fn authenticate(
        &self,
        req: reqwest::RequestBuilder,
        mut form: Vec<(String, String)>,
        audience: &str,
    ) -> Result<reqwest::RequestBuilder, IdpError> {
        let has_id = form.iter().any(|(k, _)| k == "client_id");
        let req = match self.method {
            AuthMethod::ClientSecretBasic => {
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                let (id, secret): (String, String) =
                    (enc(&self.client_id), enc(self.secret.expose()));
                req.basic_auth(id, Some(secret))
            }
            AuthMethod::ClientSecretPost => {
                form.push(("client_secret".into(), self.secret.expose().to_owned()));
                req
            }
            AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt => {
                for (k, v) in self.extra_params(audience)? {
                    form.push((k.to_owned(), v));
                }
                req
            }
        };
        if !has_id && !self.uses_basic() {
            form.push(("client_id".into(), self.client_id.clone()));
        }
        Ok(req.form(&form))
    }

    /// What a failed authorization-code exchange at `provider`'s token endpoint becomes: the
    /// IdP's OAuth error as a [`Self::refusal`], or, when no such answer came, a timeout or a
    /// protocol error saying why. The same for plain OAuth 2 and OpenID Connect providers,
    /// whose clients fail with the same error type.
    pub fn exchange_failure<RE, T>(
        &self,
        provider: &str,
        e: &::oauth2::RequestTokenError<RE, ::oauth2::StandardErrorResponse<T>>,
    ) -> IdpError
    where
        RE: std::error::Error + 'static,
        T: ::oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
    {
        match e {
            ::oauth2::RequestTokenError::ServerResponse(r) => self.refusal(
                provider,
                r.error().as_ref(),
                r.error_description().map(String::as_str),
            ),
            _ => super::request_failed(e, |m| {
                IdpError::Protocol(format!("code exchange failed: {m}"))
            }),
        }
    }

    /// What an OAuth `error` answered to this client at an endpoint becomes: a refusal
    /// ([`IdpError::Rejected`], 400, logged as a refused login), which for `invalid_client` —
    /// idgate's method, secret or key not matching the IdP's registration — also says which
    /// provider and method, for the operator.
    pub fn refusal(&self, provider: &str, error: &str, description: Option<&str>) -> IdpError {
        let description: String = description
            .map(|d| {
                format!(
                    ": {}",
                    d.chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect::<String>()
                )
            })
            .unwrap_or_default();
        let hint = if error == "invalid_client" {
            format!(
                " (idgate authenticates to provider `{provider}` with {}: the IdP must have \
                 registered that method and this client's secret or key)",
                self.method.as_str()
            )
        } else {
            String::new()
        };
        IdpError::Rejected(format!("{error}{description}{hint}"))
    }

    /// The client assertion for `audience` issued at `now`: `None` for the secret methods.
    pub fn assertion(&self, audience: &str, now: i64) -> Result<Option<String>, IdpError> {
        let claims = AssertionClaims {
            iss: self.client_id.clone(),
            sub: self.client_id.clone(),
            aud: audience.to_owned(),
            jti: crate::crypto::random_token(),
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        let signed = match (self.method, &self.key) {
            (AuthMethod::ClientSecretJwt, _) => jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(self.secret.expose().as_bytes()),
            )
            .map_err(|e| e.to_string()),
            (AuthMethod::PrivateKeyJwt, Some(key)) => key.sign(&claims),
            (AuthMethod::PrivateKeyJwt, None) => {
                return Err(IdpError::Protocol(
                    "private_key_jwt without a client key".into(),
                ))
            }
            (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, _) => return Ok(None),
        };
        signed
            .map(Some)
            .map_err(|e| IdpError::Protocol(format!("signing the client assertion failed: {e}")))
    }
}

#[cfg(test)]
#[path = "client_auth_tests.rs"]
mod tests;
