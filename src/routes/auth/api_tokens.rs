//! The two token paths of `/auth` beside sessions: an opaque bearer token of the app's IdP,
//! checked by introspection (`crate::introspect`), and the scoped token a location asks for
//! its upstream (`crate::jwt::scoped`, `$idgate_audience` in Nginx). Neither runs for a request
//! that uses neither: the hot path of a cached session does not come here.

use std::sync::Arc;

use http::HeaderValue;

use crate::session::{KeyedToken, VerifiedSession};
use crate::state::AppState;

/// The identity an opaque bearer `token` stands for in `app_id`, `None` when it is refused;
/// the message of a 503 naming the IdP (or the users store) when it cannot be checked now.
pub(super) async fn introspected(
    state: &AppState,
    app_id: &str,
    token: &str,
    now: i64,
) -> Result<Option<Arc<VerifiedSession>>, String> {
    let Some(app) = state.app(app_id) else {
        return Ok(None);
    };
    let provider = app
        .introspection
        .as_ref()
        .map_or("", |c| c.provider.as_str());
    let idp = state.idps.get(app_id, provider).map(|c| c.as_ref());
    let found = state
        .introspector
        .resolve(app, idp, state.users.as_ref(), &state.auth, token, now)
        .await;
    found.map_err(|e| {
        // The error names the IdP or store and what failed, never the token. A refusal for
        // want of a permit is counted here and logged where it is decided, once a second at
        // most.
        if matches!(e, crate::introspect::IntrospectError::Busy { .. }) {
            state.metrics.introspection_refused.inc();
        } else {
            tracing::error!(app = app_id, error = %e, "cannot check an opaque bearer token");
        }
        match &e {
            crate::introspect::IntrospectError::Idp { provider, .. } => {
                format!("identity provider `{provider}` cannot check the token now")
            }
            crate::introspect::IntrospectError::Busy { provider, .. } => format!(
                "identity provider `{provider}` is checking as many tokens as it may at once; \
                 try again shortly"
            ),
            crate::introspect::IntrospectError::Store(s) => {
                format!("the {} cannot be read now", s.store())
            }
        }
    })
}

/// The token minted for `audience` (one of the session's app's `[apps.X.audiences]`) for the
/// session of `token`, from the cache (under the token's own cache key) while it has a quarter
/// of its life left. The message of a 403 when the audience is not configured (the location
/// asks for what the app does not allow) or the identity has no session token to mint from (an
/// opaque API token).
pub(super) fn scoped_token(
    state: &AppState,
    session: &VerifiedSession,
    token: &KeyedToken<'_>,
    audience: &str,
    now: i64,
) -> Result<HeaderValue, &'static str> {
    let shown = audience.get(..100).unwrap_or(audience);
    let Some((app, cfg)) = state
        .app(session.app_id())
        .and_then(|app| Some((app, app.audiences.get(audience)?)))
    else {
        tracing::error!(app = session.app_id(), audience = %shown.escape_debug(), "the Nginx location asks for an audience the app does not configure: refusing");
        return Err("this location's audience is not configured");
    };
    if session.sid() == crate::introspect::API_TOKEN_SID {
        return Err("this location's upstream token needs a session");
    }
    let digest = *token.digest();
    let lifetime = cfg.lifetime.as_secs() as i64;
    let minted = match state.scoped.get(&digest, audience, lifetime, now) {
        Some(t) => t,
        None => {
            // The session was checked already: its token is read again for the user claim
            // (an expired one that was just renewed included), its groups as checked.
            let mut claims = state
                .auth
                .keys()
                .verify_ignoring_expiry(token.text())
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot read the session token to mint a scoped token");
                    "no token can be minted for this session"
                })?;
            claims.user.groups.clone_from(&session.groups);
            claims.user.permissions = Some(session.permissions.clone());
            let (t, exp) = crate::jwt::scoped::mint(
                state.auth.keys(),
                &app.issuer,
                &claims.user,
                audience,
                crate::jwt::scoped::Scope {
                    claims: &cfg.claims,
                    lifetime_secs: lifetime,
                },
                now,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "cannot sign a scoped token");
                "no token can be minted for this session"
            })?;
            let t: Arc<str> = Arc::from(t);
            state.scoped.put(digest, audience, t.clone(), exp);
            t
        }
    };
    HeaderValue::from_str(&minted).map_err(|_| "no token can be minted for this session")
}
