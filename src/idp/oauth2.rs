//! Plain OAuth2 providers (`github`, `bitbucket`, `generic`): the authorization URL with state
//! and PKCE S256, and the code exchange, through the `oauth2` crate; who the user is comes from
//! the vendor's user API afterwards ([`super::profiles`]). No nonce and no id_token: these
//! providers do not issue one.
//!
//! PKCE is sent to every provider. GitHub's and Bitbucket's OAuth documentation do not ask for
//! it; a server that does not implement PKCE ignores the parameters (RFC 7636 §5) and one that
//! does checks the verifier (the fakes in `tests/js` check it when a challenge was sent), so it
//! costs nothing and protects the code wherever the server supports it.
//!
//! Token responses are read the way the vendors send them: GitHub answers
//! `application/x-www-form-urlencoded` unless asked for JSON ("Authorizing OAuth apps", step 2 —
//! the `oauth2` crate asks, but a proxy or an Enterprise Server may not honour `Accept`), and
//! reports a refused code with **200** and an `error` field ("Troubleshooting OAuth app access
//! token request errors"). Both are normalised to the RFC 6749 shape before parsing, so a bad
//! code is a refusal, not a parse failure.

use std::sync::Arc;

use ::oauth2::basic::BasicClient;
use ::oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use http::header::CONTENT_TYPE;
use http::StatusCode;

use super::client_auth::ClientAuth;
use super::{profiles, request_failed, IdpError, IdpTokens, IdpUser, LoginStart};
use crate::config::{AppConfig, OAuth2Endpoints, Protocol, ProviderConfig};
use crate::metrics::idp_call;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct OAuth2Flow {
    provider: Arc<ProviderConfig>,
    endpoints: OAuth2Endpoints,
    client: Client,
    http: reqwest::Client,
    /// How idgate authenticates as the client at the token endpoint.
    auth: ClientAuth,
}

impl OAuth2Flow {
    pub fn new(
        app: &AppConfig,
        provider: Arc<ProviderConfig>,
        http: reqwest::Client,
    ) -> Result<Self, IdpError> {
        let Protocol::OAuth2(endpoints) = &provider.protocol else {
            return Err(IdpError::Protocol(format!(
                "provider `{}` is not a plain OAuth2 provider",
                provider.id
            )));
        };
        let auth = ClientAuth::of(&provider);
        let mut client = BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(endpoints.auth_url.clone()))
            .set_token_uri(TokenUrl::from_url(endpoints.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(app.redirect_url.clone()))
            .set_auth_type(if auth.uses_basic() {
                AuthType::BasicAuth
            } else {
                AuthType::RequestBody
            });
        if let Some(secret) = auth.crate_secret() {
            client = client.set_client_secret(ClientSecret::new(secret));
        }
        Ok(Self {
            auth,
            endpoints: (**endpoints).clone(),
            provider,
            client,
            http,
        })
    }

    /// The authorization URL for `state`, with a fresh PKCE challenge.
    pub fn start_login(&self, state: &str) -> Result<LoginStart, IdpError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut req = self.client.authorize_url(move || CsrfToken::new(state));
        for s in &self.provider.scope {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, _) = req.set_pkce_challenge(challenge).url();
        Ok(LoginStart {
            authorize_url: url,
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// See [`super::IdpClient::authenticated_post`]; the audience of an assertion is
    /// `token_url`.
    pub fn authenticated_post(
        &self,
        endpoint: &url::Url,
        form: Vec<(String, String)>,
    ) -> Result<reqwest::RequestBuilder, IdpError> {
        let req = self.http.post(endpoint.clone());
        self.auth
            .authenticate(req, form, self.endpoints.token_url.as_str())
    }

    /// Exchanges the code, then asks the vendor's user API who the user is.
    pub async fn finish_login(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<(IdpUser, IdpTokens), IdpError> {
        let http = self.http.clone();
        let send = move |req: HttpRequest| {
            let http = http.clone();
            async move { send_token_request(&http, req).await }
        };
        let mut exchange = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        for (name, value) in self.auth.extra_params(self.endpoints.token_url.as_str())? {
            exchange = exchange.add_extra_param(name, value);
        }
        let response = exchange
            .request_async(&send)
            .await
            .map_err(|e| self.auth.exchange_failure(&self.provider.id, &e))?;
        let access_token = response.access_token().secret();
        let user = profiles::fetch(
            self.provider.kind,
            &self.http,
            &self.endpoints,
            access_token,
        )
        .await?;
        let tokens = IdpTokens {
            access_token: access_token.clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token: None,
            expires_at: response
                .expires_in()
                .map(|d| crate::now_secs() + d.as_secs() as i64),
            asserted: Default::default(),
        };
        Ok((user, tokens))
    }
}

/// Sends a token request and normalises the answer (see the module doc).
#[tracing::instrument(target = "idgate::trace", name = "idp token", skip_all, fields(otel.kind = "client"))]
async fn send_token_request(
    http: &reqwest::Client,
    mut req: HttpRequest,
) -> Result<HttpResponse, IdpError> {
    crate::telemetry::inject(req.headers_mut());
    let protocol = |what: &str, e: &(dyn std::error::Error + 'static)| {
        request_failed(e, |m| {
            IdpError::Protocol(format!("token endpoint: {what}: {m}"))
        })
    };
    let req = reqwest::Request::try_from(req).map_err(|e| protocol("request", &e))?;
    let resp = idp_call(http.execute(req))
        .await
        .map_err(|e| protocol("send", &e))?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = idp_call(resp.bytes())
        .await
        .map_err(|e| protocol("read", &e))?;
    let (status, content_type, body) = normalize_token_response(status, &content_type, &body);
    http::Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .map_err(|e| protocol("response", &e))
}

/// A token endpoint's answer in the RFC 6749 shape: a form-encoded body becomes JSON (numbers
/// where RFC 6749 has numbers), and a 200 carrying `error` and no `access_token` becomes 400.
fn normalize_token_response(
    status: StatusCode,
    content_type: &str,
    body: &[u8],
) -> (StatusCode, String, Vec<u8>) {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json: Option<serde_json::Map<String, serde_json::Value>> = match mime.as_str() {
        "application/x-www-form-urlencoded" | "text/plain" if !body.starts_with(b"{") => Some(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| {
                    let value = match (k.as_ref(), v.parse::<u64>()) {
                        ("expires_in" | "refresh_token_expires_in", Ok(n)) => n.into(),
                        _ => serde_json::Value::String(v.into_owned()),
                    };
                    (k.into_owned(), value)
                })
                .collect(),
        ),
        _ => serde_json::from_slice(body).ok(),
    };
    let Some(json) = json else {
        return (status, content_type.to_owned(), body.to_vec());
    };
    let status = if status == StatusCode::OK
        && json.contains_key("error")
        && !json.contains_key("access_token")
    {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let body = serde_json::to_vec(&json).unwrap_or_default();
    (status, "application/json".to_owned(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(status: u16, ct: &str, body: &str) -> (u16, serde_json::Value) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        let (s, ct, body) = normalize_token_response(status, ct, body.as_bytes());
        assert_eq!(ct, "application/json");
        (
            s.as_u16(),
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[test]
    fn github_token_answers_become_rfc6749() {
        // "Authorizing OAuth apps": the default, form-encoded answer.
        let (s, v) = normalized(
            200,
            "application/x-www-form-urlencoded; charset=utf-8",
            "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer",
        );
        assert_eq!(s, 200);
        assert_eq!(
            v["access_token"],
            "gho_16C7e42F292c6912E7710c838347Ae178B4a"
        );
        assert_eq!(v["scope"], "repo,gist");
        // Expiring user tokens (GitHub Apps) carry numbers.
        let (_, v) = normalized(
            200,
            "application/x-www-form-urlencoded",
            "access_token=a&expires_in=28800&refresh_token=r&refresh_token_expires_in=15897600&token_type=bearer",
        );
        assert_eq!(v["expires_in"], 28800);
        // A refused code: 200 with an error is a 400 for the OAuth2 parser.
        let (s, v) = normalized(
            200,
            "application/json; charset=utf-8",
            r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#,
        );
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("bad_verification_code"))
        );
        let (s, _) = normalized(
            200,
            "application/x-www-form-urlencoded",
            "error=incorrect_client_credentials",
        );
        assert_eq!(s, 400);
        // A plain RFC 6749 answer passes through.
        let (s, v) = normalized(
            200,
            "application/json",
            r#"{"access_token":"a","token_type":"Bearer"}"#,
        );
        assert_eq!((s, v["access_token"].as_str()), (200, Some("a")));
    }
}
