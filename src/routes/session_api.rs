//! `/logout` and `/userinfo`: what a holder of a session token may do with it.

use http::StatusCode;
use serde_json::json;

use crate::audit::{Event, RevokedBy};
use crate::config::LogoutTarget;
use crate::cookie::Kind;
use crate::error::ApiError;
use crate::http::{add_cookie, json_response, query_params, redirect, Request, Response};
use crate::session::AuthFailure;
use crate::state::AppState;

/// `GET|POST /logout[?redirect=…]`: revokes the session (every instance sees it within a
/// second, this one at once) and clears the cookies. The session is the one of the session
/// token (cookie or bearer, expired or not), or — as Mia does — the one named by the
/// `refresh_token` cookie when that is all the request carries; a refresh token counts only
/// when idgate issued it (its MAC) and it is the session's current one, so a forged or stale
/// one ends nothing.
///
/// Then, for a browser (a navigation, or any request with `redirect`): when the session's
/// provider has a logout target (`logout_url`: Mia's `logoutUrl`, or the OIDC end-session
/// endpoint), there, with `id_token_hint` and `post_logout_redirect_uri` = `redirect` (made
/// absolute on the app's site), else the app's `post_logout_redirect_url`; without one, to
/// `redirect`. `redirect` goes through the redirect validator first, so an attacker's target is
/// refused (400) and never passed on. Otherwise the answer is `{"loggedOut": bool}`.
pub async fn logout(
    state: &AppState,
    peer: &super::Peer,
    req: Request,
) -> Result<Response, ApiError> {
    let q = query_params(req.uri());
    let navigation = super::is_navigation(req.method().as_str(), req.headers());
    let claims = super::session_token(req.headers(), &state.cookies)
        .and_then(|t| state.auth.keys().verify_ignoring_expiry(t).ok());
    let refresh_only = match &claims {
        Some(_) => None,
        None => session_of_refresh_cookie(state, req.headers()).await?,
    };
    let app = claims
        .as_ref()
        .and_then(|c| state.config.apps.values().find(|a| a.issuer == c.iss))
        .or_else(|| {
            refresh_only
                .as_ref()
                .and_then(|r| state.config.apps.values().find(|a| a.id == r.app_id))
        })
        .or_else(|| {
            state
                .config
                .server
                .default_app
                .as_deref()
                .and_then(|id| state.app(id))
        });
    let back = match q.get("redirect").filter(|r| !r.is_empty()) {
        Some(r) => Some(crate::redirect::validate(
            r,
            app.map_or(&[][..], |a| &a.allowed_redirects[..]),
        )?),
        None => None,
    };

    let ended = match (&claims, &refresh_only) {
        (Some(c), _) => Some((c.sid.clone(), c.sub.clone())),
        (None, Some(r)) => Some((r.sid.clone(), r.user_id.clone())),
        (None, None) => None,
    };
    let mut idp_logout = None;
    if let Some((sid, user)) = &ended {
        let record = match &refresh_only {
            Some(r) => Some(r.clone()),
            None => state.sessions.get_session(sid).await?,
        };
        state.auth.revoke(sid).await?;
        tracing::info!(user = %user, by_refresh_token = refresh_only.is_some(), "logout");
        state.audit.emit(|| {
            let event = Event::logout().user(user).session(sid);
            let event = match (&record, app) {
                (Some(r), _) => event.app(&r.app_id).provider(&r.provider_id),
                (None, Some(a)) => event.app(&a.id),
                (None, None) => event,
            };
            event.from(&peer.origin(req.headers()))
        });
        if navigation || back.is_some() {
            if let Some((app, r)) = app.zip(record) {
                idp_logout = idp_logout_url(state, app, &r, back.as_deref()).await;
            }
        }
    }

    let mut resp = match (idp_logout, back) {
        (Some(url), _) => redirect(url.as_str())?,
        (None, Some(back)) => redirect(&back)?,
        // A person's browser with nowhere else to go: the signed-out page.
        (None, None) if navigation => {
            super::site::signed_out(state, req.headers(), app.map(|a| a.as_ref()))
        }
        (None, None) => json_response(StatusCode::OK, &json!({ "loggedOut": ended.is_some() })),
    };
    // Cleared with the attributes they were set with (an app may have its own).
    let jar = app.map_or(&state.cookies, |a| state.cookies_for(&a.id));
    for kind in [Kind::Sid, Kind::Renew, Kind::Refresh] {
        add_cookie(&mut resp, &jar.clear(kind));
    }
    Ok(resp)
}

/// The live session the request's `refresh_token` cookie is the current refresh token of:
/// issued by idgate (MAC checked before the store is asked) and matching the stored hash.
async fn session_of_refresh_cookie(
    state: &AppState,
    headers: &http::HeaderMap,
) -> Result<Option<crate::store::SessionRecord>, ApiError> {
    let Some(token) = state
        .cookies
        .read(headers, Kind::Refresh)
        .filter(|t| !t.is_empty() && t.len() <= super::refresh::MAX_REFRESH_TOKEN)
    else {
        return Ok(None);
    };
    let Some(sid) = crate::crypto::refresh_token_sid(token) else {
        return Ok(None);
    };
    if !state.macs.is_issued_refresh_token(token) {
        tracing::warn!("logout with a refresh token idgate never issued: nothing revoked");
        return Ok(None);
    }
    let now = crate::now_secs();
    let record = state.sessions.get_session(sid).await?.filter(|r| {
        r.is_alive(now)
            && crate::crypto::constant_time_eq(&r.refresh_hash, &crate::crypto::hash_token(token))
    });
    if record.is_none() {
        tracing::info!("logout with a refresh token that is no longer current: nothing revoked");
    }
    Ok(record)
}

/// Where the IdP ends its own session for this session's provider, if it has a logout target.
/// Mia's `logoutUrl` gets exactly what Mia appends (`post_logout_redirect_uri` when there is a
/// redirect, `id_token_hint`); the discovered end-session endpoint gets `client_id` too.
async fn idp_logout_url(
    state: &AppState,
    app: &crate::config::AppConfig,
    record: &crate::store::SessionRecord,
    back: Option<&str>,
) -> Option<url::Url> {
    let idp = state.idps.get(&app.id, &record.provider_id)?;
    let (mut url, with_client_id) = match &idp.provider().logout {
        LogoutTarget::None => return None,
        LogoutTarget::Url(u) => (u.clone(), false),
        LogoutTarget::Discovered => (idp.end_session_url().await?, true),
    };
    // OIDC RP-Initiated Logout: the id_token identifies the session to end at the IdP (which
    // then skips its confirmation page).
    let id_token = state
        .cipher
        .open(&record.idp_tokens)
        .ok()
        .and_then(|plain| serde_json::from_slice::<crate::idp::IdpTokens>(&plain).ok())
        .and_then(|t| t.id_token);
    // The IdP needs an absolute URL; a relative `redirect` is a path on the app's site.
    let post = match back {
        Some(b) => app.redirect_url.join(b).ok(),
        None => app.post_logout_redirect_url.clone(),
    };
    {
        let mut pairs = url.query_pairs_mut();
        if with_client_id {
            pairs.append_pair("client_id", &idp.provider().client_id);
        }
        if let Some(post) = &post {
            pairs.append_pair("post_logout_redirect_uri", post.as_str());
        }
        if let Some(hint) = &id_token {
            pairs.append_pair("id_token_hint", hint);
        }
    }
    Some(url)
}

/// `GET /userinfo`: the `user` claim of a live session.
pub async fn userinfo(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let token = super::session_token(req.headers(), &state.cookies)
        .ok_or_else(|| ApiError::Unauthorized("no session token".into()))?;
    match state.auth.claims(token).await {
        Ok(claims) => Ok(json_response(
            StatusCode::OK,
            &serde_json::to_value(&claims.user).unwrap_or_default(),
        )),
        Err(AuthFailure::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Unauthorized(e.to_string())),
    }
}

/// Whether the request may use an administrative endpoint: its peer is in
/// `server.admin_peers`, or it carries `server.admin_token_file`'s token as a bearer token.
/// Being a trusted peer is not enough: Nginx is one, and may ask `/auth` but not administer.
pub(super) fn is_admin(state: &AppState, peer: &super::Peer, headers: &http::HeaderMap) -> bool {
    let token = super::bearer_token(headers);
    peer.admin
        || state
            .config
            .server
            .admin_token
            .as_ref()
            .zip(token)
            .is_some_and(|(want, got)| crate::crypto::constant_time_eq(want.expose(), got))
}

/// `DELETE /sessions/{userId}` (administrators only, see [`is_admin`]): revokes every session of the user. Each
/// instance drops them through the revocation feed; this one at once. Answers `{"count": n}`,
/// the shape of Mia's endpoint.
pub async fn revoke_user(
    state: &AppState,
    peer: &super::Peer,
    headers: &http::HeaderMap,
    path: &str,
) -> Result<Response, ApiError> {
    if !is_admin(state, peer, headers) {
        tracing::warn!(peer = ?peer.addr, "administrative request refused");
        return Err(ApiError::Forbidden(
            "administrative endpoints need the admin token (Authorization: Bearer) or an admin peer"
                .into(),
        ));
    }
    let user_id = path
        .strip_prefix("/sessions/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| ApiError::NotFound(format!("no endpoint at {path}")))?;
    let user_id = percent_encoding::percent_decode_str(user_id).decode_utf8_lossy();
    let revoked = state.auth.revoke_user(&user_id).await?;
    tracing::info!(user = %user_id, sessions = revoked.len(), "sessions revoked by an administrator");
    for sid in &revoked {
        state.audit.emit(|| {
            Event::revoke(RevokedBy::Admin)
                .user(&user_id)
                .session(sid)
                .from(&peer.origin(headers))
        });
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "count": revoked.len() }),
    ))
}

/// `POST /backchannel-logout/{appId}/{providerId}` (register it at the IdP as the client's
/// `backchannel_logout_uri`): OIDC Back-Channel Logout 1.0. A valid `logout_token` revokes every
/// session of the user it names (`sub`), on every instance — whatever state the user's record is
/// in (a user trashed in the users store has sessions to end too). Answers 200, or 400 with an
/// OAuth error body as the spec asks.
///
/// The token is read only from an `application/x-www-form-urlencoded` body (§2.5): one in the
/// query string would sit in access logs, so such a request is refused whatever its body holds.
/// Each token is accepted once: its `jti` is remembered in the shared store for the token's
/// acceptance window (see `idp::oidc`), and a replay is refused with a warning and changes
/// nothing. The users store is read before the `jti` is spent, so a users store that is down
/// fails the request (the IdP may retry) without burning the token.
pub async fn backchannel_logout(
    state: &AppState,
    peer: &super::Peer,
    req: Request,
    path: &str,
) -> Result<Response, ApiError> {
    let (app_id, provider_id) = path
        .strip_prefix("/backchannel-logout/")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| ApiError::NotFound(format!("no endpoint at {path}")))?;
    let app = state
        .app(app_id)
        .ok_or_else(|| ApiError::NotFound(format!("no app named `{app_id}`")))?
        .clone();
    let idp = state
        .idps
        .get(app_id, provider_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!("app `{app_id}` has no provider `{provider_id}`"))
        })?
        .clone();
    let invalid = |description: String| {
        tracing::warn!(app = %app_id, provider = %provider_id, error = %description, "back-channel logout refused");
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "invalid_request", "error_description": description }),
        )
    };
    if query_params(req.uri()).contains_key("logout_token") {
        return Ok(invalid(
            "logout_token must be sent in the POST body, not in the query string".into(),
        ));
    }
    let (parts, body) = req.into_parts();
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Ok(invalid(
            "send logout_token as application/x-www-form-urlencoded".into(),
        ));
    }
    let body = crate::http::read_body(body).await?;
    let mut tokens = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v);
    let token = match (tokens.next(), tokens.next()) {
        (Some(t), None) if !t.is_empty() => t,
        (Some(_), Some(_)) => return Ok(invalid("logout_token is repeated".into())),
        _ => return Ok(invalid("logout_token is required".into())),
    };
    let claims = match idp.verify_logout_token(&token).await {
        Ok(c) => c,
        Err(e) => return Ok(invalid(e.to_string())),
    };
    let Some(sub) = claims.sub.clone() else {
        return Ok(invalid(
            "logout tokens without sub are not supported".into(),
        ));
    };
    let user_ids = state
        .users
        .find_ids_by_identity(&app.realm, provider_id, &sub)
        .await?;
    if !state
        .sessions
        .remember_once(&claims.replay_key(), claims.remember_until())
        .await?
    {
        tracing::warn!(app = %app_id, provider = %provider_id, issuer = %claims.iss,
            "back-channel logout refused: this logout token (jti) was already used; nothing revoked");
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "invalid_request", "error_description": "logout_token was already used" }),
        ));
    }
    let mut revoked = 0;
    for user_id in &user_ids {
        let sessions = state.auth.revoke_user(user_id).await?;
        revoked += sessions.len();
        for sid in &sessions {
            state.audit.emit(|| {
                Event::revoke(RevokedBy::Backchannel)
                    .user(user_id)
                    .app(app_id)
                    .provider(provider_id)
                    .session(sid)
                    .from(&peer.origin(&parts.headers))
            });
        }
        tracing::info!(user = %user_id, sessions = sessions.len(), "back-channel logout");
    }
    if user_ids.is_empty() {
        tracing::info!(app = %app_id, provider = %provider_id, "back-channel logout for a subject with no user here");
    }
    let mut resp = json_response(StatusCode::OK, &json!({ "revoked": revoked }));
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}
