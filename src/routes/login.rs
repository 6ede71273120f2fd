//! The start of a login: `/authorize` (to the IdP), `/web-login` (choose a provider) and the
//! callback pages the IdP sends the browser back to.
//!
//! A login is tied to whoever started it, and `/oauth/token` checks that tie ([`Binding`]):
//!
//! - **browser** (the default): `/authorize` sets a fresh random binding in the `idgate_login`
//!   cookie and keeps its hash with the login state; only a request carrying that cookie can
//!   finish the login. idgate makes the `state` the IdP sees.
//! - **client** (apps with `client_state`, Mia's `authorizeStateRequired`): the client makes the
//!   `state` (Mia: "hard to guess", at least [`MIN_CLIENT_STATE`] visible ASCII characters
//!   here), the IdP gets exactly it and hands it back unchanged to the client's own callback,
//!   which checks it and posts `{code, state}` to `/oauth/token` — from a mobile app or a CLI
//!   that never saw idgate's cookie. The client's state check replaces the cookie against
//!   login CSRF; a client that also sends a PKCE `code_challenge` (S256) to `/authorize` must
//!   show the matching `code_verifier` at `/oauth/token`, which ties the exchange to it even
//!   when its callback was intercepted. See docs/security.md.

use std::collections::HashMap;
use tracing::Instrument as _;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use http_body_util::Full;

use crate::config::AppConfig;
use crate::cookie::Kind;
use crate::crypto::{hash_token, random_token};
use crate::error::ApiError;
use crate::http::{
    add_cookie, encode_query_value, html_response, query_params, redirect, Request, Response,
};
use crate::pages;
use crate::state::AppState;
use crate::store::{LoginState, StepUpRequest};

mod cookie;
mod step_up;

pub(crate) use cookie::{back_element, bindings, login_cookie, Back, MAX_BINDINGS};

pub(crate) use step_up::step_up_query;
use step_up::{request_query, step_up_request};

/// Longest client `state` carried through a login.
const MAX_CLIENT_STATE: usize = 512;
/// Shortest `state` a client-state app's client may choose: the login is stored under it.
pub(crate) const MIN_CLIENT_STATE: usize = 16;

/// What ties a login state to the party that may finish it, as kept in
/// [`LoginState::binding_hash`]: the hash of a browser binding (43 base64url characters), or
/// `client` / `client-pkce:<S256 challenge>` for a client-state login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding<'a> {
    /// Hash of the `idgate_login` cookie's binding.
    Browser(&'a str),
    /// A client-state login; `Some` holds the client's PKCE S256 `code_challenge`.
    Client(Option<&'a str>),
}

const CLIENT_BINDING: &str = "client";
const CLIENT_PKCE_PREFIX: &str = "client-pkce:";

impl<'a> Binding<'a> {
    pub(crate) fn parse(stored: &'a str) -> Self {
        if stored == CLIENT_BINDING {
            Self::Client(None)
        } else if let Some(challenge) = stored.strip_prefix(CLIENT_PKCE_PREFIX) {
            Self::Client(Some(challenge))
        } else {
            Self::Browser(stored)
        }
    }

    fn stored(&self) -> String {
        match self {
            Self::Browser(hash) => (*hash).to_owned(),
            Self::Client(None) => CLIENT_BINDING.to_owned(),
            Self::Client(Some(c)) => format!("{CLIENT_PKCE_PREFIX}{c}"),
        }
    }
}

/// The S256 `code_challenge` of `verifier` (RFC 7636 §4.2).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    hash_token(verifier)
}

/// Whether `v` is an RFC 7636 value: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub(crate) fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
}

/// The client's `state` of a client-state login, checked: present, long enough to be hard to
/// guess, short enough to store, visible ASCII only (it travels in URLs and logs as is).
fn client_chosen_state(q: &HashMap<String, String>) -> Result<String, ApiError> {
    let s = required(q, "state")?;
    let bad = |reason: String| ApiError::InvalidParam {
        name: "state",
        reason,
    };
    if s.len() < MIN_CLIENT_STATE {
        return Err(bad(format!(
            "this app's clients make the state: at least {MIN_CLIENT_STATE} characters, hard \
             to guess (e.g. a UUID v4)"
        )));
    }
    if s.len() > MAX_CLIENT_STATE {
        return Err(bad(format!("longer than {MAX_CLIENT_STATE} characters")));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("only visible ASCII characters are allowed".into()));
    }
    Ok(s.to_owned())
}

/// The client's PKCE `code_challenge` for a client-state login, if it sent one: S256 only
/// (`plain` would hand the verifier to whoever reads the authorization URL).
fn client_challenge(q: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    let Some(challenge) = q.get("code_challenge").filter(|c| !c.is_empty()) else {
        if q.contains_key("code_challenge_method") {
            return Err(ApiError::MissingParam("code_challenge"));
        }
        return Ok(None);
    };
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Err(ApiError::InvalidParam {
            name: "code_challenge_method",
            reason: "only S256 is supported".into(),
        });
    }
    if challenge.len() != 43 || !is_pkce_value(challenge) {
        return Err(ApiError::InvalidParam {
            name: "code_challenge",
            reason: "an S256 challenge is 43 base64url characters".into(),
        });
    }
    Ok(Some(challenge.clone()))
}

fn required<'a>(q: &'a HashMap<String, String>, name: &'static str) -> Result<&'a str, ApiError> {
    q.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::MissingParam(name))
}

fn app<'a>(state: &'a AppState, q: &HashMap<String, String>) -> Result<&'a AppConfig, ApiError> {
    let id = required(q, "appId")?;
    state
        .app(id)
        .map(|a| a.as_ref())
        .ok_or_else(|| ApiError::InvalidParam {
            name: "appId",
            reason: format!("no app named `{id}` is configured"),
        })
}

/// Where the browser goes after the login: `redirect`, else `rd` (the name ingress-nginx's
/// `auth-signin` appends by default); validated by the caller like any target.
fn redirect_param(q: &HashMap<String, String>) -> Option<&String> {
    ["redirect", "rd"]
        .iter()
        .find_map(|name| q.get(*name).filter(|r| !r.is_empty()))
}

fn checked_redirect(app: &AppConfig, raw: &str) -> Result<String, ApiError> {
    Ok(crate::redirect::validate(raw, &app.allowed_redirects)?)
}

/// `GET /authorize?appId&providerId&redirect[&state]`: records a login state bound to this
/// browser and sends it to the IdP.
pub async fn authorize(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let q = query_params(req.uri());
    let app = app(state, &q)?;
    let provider_id = required(&q, "providerId")?;
    let idp = state
        .idps
        .get(&app.id, provider_id)
        .ok_or_else(|| ApiError::InvalidParam {
            name: "providerId",
            reason: format!("app `{}` has no provider `{provider_id}`", app.id),
        })?;
    // Without `redirect`: the app's default, else none (no `Location`), as Mia does.
    let redirect_to = match redirect_param(&q) {
        Some(r) => checked_redirect(app, r)?,
        None => app.default_redirect.clone().unwrap_or_default(),
    };

    let step_up = step_up_request(&q)?;
    if app.client_state {
        return authorize_for_client(state, app, provider_id, idp, &q, redirect_to, step_up).await;
    }
    let client_state = q.get("state").cloned();
    if client_state
        .as_ref()
        .is_some_and(|s| s.len() > MAX_CLIENT_STATE)
    {
        return Err(ApiError::InvalidParam {
            name: "state",
            reason: format!("longer than {MAX_CLIENT_STATE} characters"),
        });
    }

    // A fresh binding for every login: a value the client brought (perhaps planted by someone
    // else) is never bound to a new state. The cookie keeps the bindings of the browser's few
    // newest logins, so parallel logins in several tabs each complete.
    let binding = random_token();
    let kept: Vec<&str> = std::iter::once(binding.as_str())
        .chain(bindings(state.cookies.read(req.headers(), Kind::Login)).take(MAX_BINDINGS - 1))
        .collect();
    let back = Back {
        app_id: app.id.clone(),
        redirect: redirect_to.clone(),
    }
    .element();
    let cookie = login_cookie(state, &kept, back.as_deref());
    let mut step_up = step_up;
    if !step_up.is_empty() {
        step_up.replaces = stepped_up_session(state, app, req).await;
    }
    let pending = Pending {
        state: random_token(),
        client_state,
        redirect: redirect_to,
        binding_hash: hash_token(&binding),
        step_up,
    };
    let mut resp = start_login(state, app, provider_id, idp, pending).await?;
    add_cookie(&mut resp, &cookie);
    Ok(resp)
}

/// The session a step-up login steps up: this browser's live session of `app`, if it has one.
/// Its cookies stay while the login runs (a step-up that fails or is abandoned leaves the
/// session as it was); the login must then be of its user, and replaces it.
async fn stepped_up_session(state: &AppState, app: &AppConfig, req: &Request) -> Option<String> {
    let token = state
        .cookies
        .read(req.headers(), Kind::Sid)
        .filter(|t| !t.is_empty())?;
    let session = state.auth.authenticate(token).await.ok()?;
    (session.app_id() == app.id).then(|| session.sid().to_owned())
}

/// `/authorize` for a client-state app: the client's own `state` goes to the IdP and keys the
/// login; no binding cookie (the client's callback may never see idgate's cookies).
async fn authorize_for_client(
    state: &AppState,
    app: &AppConfig,
    provider_id: &str,
    idp: &crate::idp::IdpClient,
    q: &HashMap<String, String>,
    redirect_to: String,
    step_up: StepUpRequest,
) -> Result<Response, ApiError> {
    let login_state = client_chosen_state(q)?;
    let challenge = client_challenge(q)?;
    // A second login under the same state replaces the first, in every store alike.
    let _ = state.states.take_state(&login_state).await?;
    let pending = Pending {
        state: login_state.clone(),
        client_state: Some(login_state),
        redirect: redirect_to,
        binding_hash: Binding::Client(challenge.as_deref()).stored(),
        step_up,
    };
    start_login(state, app, provider_id, idp, pending).await
}

/// What a login start records beyond the IdP's part: the state keying it, the client's own
/// state, where the browser goes afterwards, and what binds the login to its finisher.
struct Pending {
    state: String,
    client_state: Option<String>,
    redirect: String,
    binding_hash: String,
    /// What the login asks the IdP for beyond a plain login.
    step_up: StepUpRequest,
}

/// Starts a login at the IdP (nonce, PKCE), records its state and answers the redirect to
/// the IdP; starting a login ends whatever session this browser had (no fixation across
/// logins), except for a step-up of it (see [`stepped_up_session`]).
async fn start_login(
    state: &AppState,
    app: &AppConfig,
    provider_id: &str,
    idp: &crate::idp::IdpClient,
    pending: Pending,
) -> Result<Response, ApiError> {
    let nonce = random_token();
    let stepping_up = pending.step_up.replaces.is_some();
    let start = idp
        .start_login(&pending.state, &nonce, &pending.step_up)
        .await?;
    let ttl = state.config.session.login_state_ttl.as_secs() as i64;
    state
        .states
        .put_state(&LoginState {
            state: pending.state,
            app_id: app.id.clone(),
            provider_id: provider_id.to_owned(),
            redirect: pending.redirect,
            client_state: pending.client_state,
            pkce_verifier: start.pkce_verifier,
            nonce,
            binding_hash: pending.binding_hash,
            expires_at: crate::now_secs() + ttl,
            step_up: pending.step_up,
        })
        .instrument(crate::telemetry::store_span("put_state"))
        .await?;
    let mut resp = redirect(start.authorize_url.as_str())?;
    if !stepping_up {
        for kind in [Kind::Sid, Kind::Renew, Kind::Refresh] {
            add_cookie(&mut resp, &state.cookies_for(&app.id).clear(kind));
        }
    }
    Ok(resp)
}

/// `GET /web-login?appId[&redirect]`: the app's providers, best `order` first.
pub fn chooser(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let q = query_params(req.uri());
    let app = app(state, &q)?;
    let back = match redirect_param(&q) {
        Some(r) => checked_redirect(app, r)?,
        None => "/".to_owned(),
    };
    // A step-up asked of the login goes on to whichever provider is chosen.
    let step_up = request_query(&step_up_request(&q)?);
    let mut providers: Vec<_> = app.providers.values().collect();
    providers.sort_by(|a, b| b.order.cmp(&a.order).then_with(|| a.id.cmp(&b.id)));
    let links: Vec<_> = providers
        .iter()
        .map(|p| pages::ProviderLink {
            label: &p.label,
            logo_url: p.logo_url.as_deref(),
            href: format!(
                "/authorize?appId={}&providerId={}&redirect={}{step_up}",
                encode_query_value(&app.id),
                encode_query_value(&p.id),
                encode_query_value(&back)
            ),
        })
        .collect();
    let chrome = super::site::chrome(state, req.headers(), Some(app));
    Ok(html_response(
        StatusCode::OK,
        state.pages.chooser(&chrome, &links),
    ))
}

/// `GET /web-login/callback.js`: the callback script under its unhashed name.
pub fn callback_script(state: &AppState) -> Response {
    let mut resp = http::Response::new(Full::new(Bytes::from_static(
        state.pages.assets.callback_js().as_bytes(),
    )));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_of(s: &str) -> Result<String, ApiError> {
        client_chosen_state(&HashMap::from([("state".to_owned(), s.to_owned())]))
    }

    #[test]
    fn a_client_state_is_long_enough_short_enough_and_visible() {
        let at_least = "s".repeat(MIN_CLIENT_STATE);
        assert_eq!(state_of(&at_least).ok(), Some(at_least.clone()));
        assert!(state_of(&at_least[1..]).is_err(), "one character short");
        let at_most = "s".repeat(MAX_CLIENT_STATE);
        assert!(state_of(&at_most).is_ok());
        assert!(
            state_of(&format!("{at_most}s")).is_err(),
            "one character long"
        );
        assert!(state_of(&format!("{at_least} x")).is_err(), "a space");
        assert!(state_of(&format!("{at_least}\u{e9}")).is_err(), "non-ASCII");
        assert!(client_chosen_state(&HashMap::new()).is_err(), "missing");
    }
}
