//! `POST /oauth/token`: the end of a login. Consumes the login state (single use, unexpired,
//! bound to this browser — or, for a client-state app, to the client's own state and PKCE
//! verifier: see `login`'s [`Binding`]), exchanges the code at the IdP, merges the user, stores
//! the session and answers with idgate's own tokens.
//!
//! Only the authorization-code grant exists: a `grant_type` other than `authorization_code`
//! is refused with 400, and `password` (Mia's legacy resource-owner password grant) by name.
//! That grant would have idgate take users' IdP passwords and replay them — every password
//! passing through one more service, no MFA or IdP login policy, and a grant OAuth 2.0
//! Security BCP (RFC 9700) says must not be used.
//!
//! The authorization response's `iss` (RFC 9207), posted with `code` and `state`, is checked
//! before the code goes to the IdP: see [`iss`].

use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument as _;

use http::header::LOCATION;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::audit::{Event, Outcome};
use crate::config::AppConfig;
use crate::cookie::Kind;
use crate::crypto::{constant_time_eq, hash_token};
use crate::error::ApiError;
use crate::http::client::ClientInfo;
use crate::http::{add_cookie, json_response, request_params, Request, Response};
use crate::idp::Asserted;
use crate::state::AppState;
use crate::store::{LoginState, SessionContext, StoreError};
use crate::users;

use super::login::Binding;

mod iss;

/// `POST /oauth/token`, in the protocol's steps: the grant and its parameters, the login state
/// (consumed once), the binding to this browser or client, the code at the IdP, the user merged
/// with the project's record, the session opened, idgate's tokens answered.
pub async fn exchange(
    state: &AppState,
    peer: &super::Peer,
    req: Request,
) -> Result<Response, ApiError> {
    // A body that cannot be read is a failed login too; its headers are kept for the event
    // only while the trail is on.
    let headers = state.audit.is_on().then(|| req.headers().clone());
    let (parts, params) = match request_params(req).await {
        Ok(read) => read,
        Err(e) => {
            state.audit.emit(|| {
                let headers = headers.unwrap_or_default();
                Event::login_failed("invalid_request").from(&peer.origin(&headers))
            });
            return Err(e.into());
        }
    };
    let mut seen = Seen {
        step: "invalid_request",
        ..Seen::default()
    };
    let result = steps(state, peer, &parts, &params, &mut seen).await;
    let origin = peer.origin(&parts.headers);
    state.audit.emit(|| {
        let event = match &result {
            Ok(_) => Event::login_ok(),
            Err(ApiError::Store(StoreError::Refused { .. })) => {
                Event::login_failed("user_inactive")
            }
            Err(_) => Event::login_failed(seen.step),
        };
        seen.describe(event).from(&origin)
    });
    if seen.stepping_up {
        // A step-up is a login, and an event of its own: what it reached, or why it failed.
        state.audit.emit(|| {
            let event = match &result {
                Ok(_) => Event::step_up(Outcome::Success, None, seen.acr.clone()),
                Err(_) => Event::step_up(Outcome::Failure, Some(seen.step), None),
            };
            seen.describe(event).from(&origin)
        });
    }
    result
}

/// How far a login got, for its audit event.
#[derive(Default)]
struct Seen {
    /// Why the login fails if the step under way does (an audit `reason`).
    step: &'static str,
    /// The app and provider of the login state, once it is taken.
    login: Option<(String, String)>,
    /// The user and the session id, once the session is open.
    session: Option<(String, String)>,
    /// A step-up login (its state asked the IdP for more than a plain login).
    stepping_up: bool,
    /// The `acr` the IdP asserted, once checked.
    acr: Option<String>,
}

impl Seen {
    /// `event` with the app, provider, user and session the login got as far as.
    fn describe(&self, event: Event) -> Event {
        let event = match &self.login {
            Some((app, provider)) => event.app(app).provider(provider),
            None => event,
        };
        match &self.session {
            Some((user, sid)) => event.user(user).session(sid),
            None => event,
        }
    }
}

/// The steps of [`exchange`], noting in `seen` how far they got.
async fn steps(
    state: &AppState,
    peer: &super::Peer,
    parts: &http::request::Parts,
    params: &HashMap<String, String>,
    seen: &mut Seen,
) -> Result<Response, ApiError> {
    check_grant(params)?;
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or(ApiError::MissingParam("code"))?;
    let state_id = params
        .get("state")
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::MissingParam("state"))?;
    let now = crate::now_secs();
    seen.step = "invalid_state";
    let (login, app) = take_login(state, state_id, now).await?;
    seen.login = Some((login.app_id.clone(), login.provider_id.clone()));
    seen.stepping_up = !login.step_up.is_empty();
    let login_cookie = state.cookies.read(&parts.headers, Kind::Login);
    seen.step = "binding_mismatch";
    let binding = check_binding(&login, &app, login_cookie, params)?;
    seen.step = "invalid_state";
    let idp = state
        .idps
        .get(&login.app_id, &login.provider_id)
        .ok_or_else(|| bad_state("belongs to a provider that is no longer configured"))?;
    // Discovery failing on the way is the IdP's error; a refused `iss` a mix-up.
    seen.step = "idp_error";
    iss::check(state, &login, idp, params.get("iss").map(String::as_str))
        .await
        .inspect_err(|e| {
            if matches!(e, ApiError::InvalidParam { name: "iss", .. }) {
                seen.step = "issuer_mismatch";
            }
        })?;
    let started = std::time::Instant::now();
    let finished = idp
        .finish_login(code, &login.pkce_verifier, &login.nonce)
        .await;
    crate::metrics::Metrics::observe(&state.metrics.idp_latency, started.elapsed());
    state
        .metrics
        .login(&login.app_id, &login.provider_id, finished.is_ok());
    let (idp_user, mut idp_tokens) = finished?;
    seen.step = "step_up_refused";
    crate::idp::step_up::check(&login.step_up, &idp_user.authn, crate::now_secs()).map_err(|m| {
        tracing::warn!(app = %app.id, provider = %login.provider_id, error = %m, "step-up login refused");
        ApiError::Forbidden(format!("login refused: {m}"))
    })?;
    seen.acr = idp_user.authn.acr.clone();
    seen.step = "claims_refused";
    idp_tokens.asserted = Asserted::of(&app, idp.provider(), &idp_user).map_err(|m| {
        tracing::warn!(app = %app.id, provider = %login.provider_id, error = %m, "login refused");
        ApiError::Forbidden(format!("login refused: {m}"))
    })?;
    seen.step = "store_error";
    let read = state.auth.user_read();
    let user = state
        .users
        .upsert_login(
            &users::identity(&app, idp.provider(), &idp_user),
            &app.default_groups,
        )
        .instrument(crate::telemetry::store_span("upsert_login"))
        .await
        .map_err(StoreError::of_users_store)?;
    seen.step = "step_up_other_user";
    let replaced = stepped_up(state, &login, &user.user_id).await?;
    seen.step = "store_error";
    tracing::info!(user = %user.user_id, app = %app.id, provider = %login.provider_id, step_up = replaced.is_some(), "login");
    let fingerprint = users::fingerprint(&user);
    state.auth.learn_user(&user.user_id, fingerprint, read);

    // Who logged in, as the user will see it among their sessions.
    let client = ClientInfo::of(peer.addr, peer.trusted, &parts.headers);
    let authn = &idp_tokens.asserted.authn;
    let context = SessionContext {
        client_addr: client.addr.map(|a| a.to_string()),
        user_agent: client.user_agent,
        acr: authn.acr.clone(),
        amr: authn.amr.clone(),
        auth_time: authn.auth_time,
    };
    let (session, refresh_token) = state
        .open_session(
            &app.id,
            &user.user_id,
            &login.provider_id,
            Some(&idp_tokens),
            context,
            now,
        )
        .await?;
    if let Some(old) = replaced {
        // The stepped-up session's successor is open: the browser holds only the new one.
        if let Err(e) = state.auth.revoke(&old).await {
            tracing::warn!(error = %e, "the stepped-up session could not be ended");
        }
    }
    seen.session = Some((user.user_id.clone(), session.sid.clone()));
    seen.step = "internal_error";
    let user_claim = users::user_claim(
        &user,
        Some(idp.provider()),
        &app.token_claims,
        &idp_tokens.asserted,
    );
    let ttl = state.config.session.access_ttl.as_secs() as i64;
    let mut claims =
        users::session_claims(&app, user_claim, Some(fingerprint), &session.sid, now, ttl);
    claims.set_authn(idp_tokens.asserted.authn.clone());
    let jwt = state
        .auth
        .keys()
        .sign(&claims)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = respond(
        state,
        &app,
        Signed {
            jwt: &jwt,
            exp: claims.exp,
            sid: &session.sid,
            refresh_token: &refresh_token,
        },
        now,
        session.expires_at,
    );
    // No redirect (none asked for, no default): no `Location`, as Mia does.
    if !login.redirect.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&login.redirect) {
            resp.headers_mut().insert(LOCATION, v);
        }
    }
    if let Some(binding) = binding {
        // The other logins this browser has in progress keep their bindings.
        let others: Vec<&str> = super::login::bindings(login_cookie)
            .filter(|b| *b != binding)
            .collect();
        let back = super::login::back_element(login_cookie);
        add_cookie(&mut resp, &super::login::login_cookie(state, &others, back));
    }
    Ok(resp)
}

/// The session a step-up login replaces, checked: a login that steps up a session must be of
/// that session's user (else someone else's login would inherit the browser's place). `None`
/// for a plain login, or when the stepped-up session has ended meanwhile.
async fn stepped_up(
    state: &AppState,
    login: &LoginState,
    user_id: &str,
) -> Result<Option<String>, ApiError> {
    let Some(sid) = &login.step_up.replaces else {
        return Ok(None);
    };
    let Some(old) = state
        .sessions
        .get_session(sid)
        .await?
        .filter(|r| r.is_alive(crate::now_secs()))
    else {
        return Ok(None);
    };
    if old.user_id != user_id {
        tracing::warn!(session_user = %old.user_id, login_user = %user_id, "step-up login refused: another user than the session's");
        return Err(ApiError::Forbidden(
            "login refused: the step-up login is of another user than the session it steps up; \
             log out first to change users"
                .into(),
        ));
    }
    Ok(Some(old.sid))
}

/// Only the authorization-code grant (the default when none is named).
fn check_grant(params: &HashMap<String, String>) -> Result<(), ApiError> {
    match params.get("grant_type").map(String::as_str) {
        None | Some("authorization_code") => {}
        Some("password") => {
            return Err(ApiError::BadRequest(
                "grant_type `password` is not supported: idgate logs users in only through \
                 their identity provider (authorization code); it never takes their passwords"
                    .into(),
            ))
        }
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(ApiError::BadRequest(format!(
                "grant_type `{shown}` is not supported: use authorization_code (or /refreshtoken)"
            )));
        }
    }
    Ok(())
}

/// An [`ApiError`] about the `state` parameter.
fn bad_state(why: &str) -> ApiError {
    ApiError::InvalidParam {
        name: "state",
        reason: why.to_owned(),
    }
}

/// Consumes the login state `state_id` (single use: a second exchange finds nothing) and
/// returns it with its app, refusing an expired one and one whose app is no longer configured.
async fn take_login(
    state: &AppState,
    state_id: &str,
    now: i64,
) -> Result<(LoginState, Arc<AppConfig>), ApiError> {
    let login = state
        .states
        .take_state(state_id)
        .instrument(crate::telemetry::store_span("take_state"))
        .await?
        .ok_or_else(|| bad_state("unknown or already used; start the login again"))?;
    if login.expires_at <= now {
        return Err(bad_state("expired; start the login again"));
    }
    let app = state
        .app(&login.app_id)
        .ok_or_else(|| bad_state("belongs to an app that is no longer configured"))?
        .clone();
    Ok((login, app))
}

/// Checks that this exchange comes from whoever started the login: the browser holding the
/// binding (returned, so the answer can give up only that one), or, for a client-state login,
/// the client holding the PKCE verifier of its own challenge.
fn check_binding<'a>(
    login: &LoginState,
    app: &AppConfig,
    login_cookie: Option<&'a str>,
    params: &HashMap<String, String>,
) -> Result<Option<&'a str>, ApiError> {
    // The browser binding this exchange consumed (`None` for a client-state login).
    Ok(match Binding::parse(&login.binding_hash) {
        Binding::Browser(hash) => Some(
            super::login::bindings(login_cookie)
                .find(|b| constant_time_eq(&hash_token(b), hash))
                .ok_or_else(|| {
                    bad_state("was not issued to this browser; start the login again")
                })?,
        ),
        // The app's setting is read again: an app switched back to browser logins since
        // `/authorize` does not finish a login without the cookie.
        Binding::Client(_) if !app.client_state => {
            return Err(bad_state(
                "was started for a client-state login, which this app no longer allows",
            ))
        }
        Binding::Client(None) => None,
        Binding::Client(Some(challenge)) => {
            let verifier = params
                .get("code_verifier")
                .filter(|v| !v.is_empty())
                .ok_or(ApiError::MissingParam("code_verifier"))?;
            if !super::login::is_pkce_value(verifier)
                || !constant_time_eq(&super::login::pkce_challenge(verifier), challenge)
            {
                return Err(ApiError::InvalidParam {
                    name: "code_verifier",
                    reason: "does not match the code_challenge of this login".into(),
                });
            }
            None
        }
    })
}

/// A session token just signed (a login's first, or a refresh's), with what its answer carries.
pub(super) struct Signed<'a> {
    pub jwt: &'a str,
    /// The token's `exp`.
    pub exp: i64,
    pub sid: &'a str,
    pub refresh_token: &'a str,
}

/// Answers `{accessToken, refreshToken, expiresAt}` for `signed`, with the `sid`, renewal and
/// `refresh_token` cookies for website apps (living until `session_expires_at`): a login's
/// answer, and a refresh's.
pub(super) fn respond(
    state: &AppState,
    app: &AppConfig,
    signed: Signed<'_>,
    now: i64,
    session_expires_at: i64,
) -> Response {
    let Signed {
        jwt,
        exp,
        sid,
        refresh_token,
    } = signed;
    let mut resp = json_response(
        StatusCode::OK,
        &json!({ "accessToken": jwt, "refreshToken": refresh_token, "expiresAt": exp }),
    );
    if app.website {
        let max_age = (session_expires_at - now).max(1);
        let renewal = state.macs.renewal_secret(sid);
        for (kind, value) in [
            (Kind::Sid, jwt),
            (Kind::Renew, renewal.as_str()),
            (Kind::Refresh, refresh_token),
        ] {
            add_cookie(
                &mut resp,
                &state.cookies_for(&app.id).set(kind, value, max_age),
            );
        }
    }
    resp
}
