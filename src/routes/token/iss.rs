//! The authorization response's `iss` at `POST /oauth/token` (RFC 9207, the mix-up defence;
//! the rules are in `idp/oidc/response.rs`): checked after the login state is consumed and
//! before the code goes to any token endpoint. A refusal answers 400 naming `iss`, opens no
//! session, and is logged at warn with the login's provider and, when the `iss` is another
//! configured provider's, that provider too (never the code).

use crate::error::ApiError;
use crate::idp::{IdpClient, IssProblem};
use crate::state::AppState;
use crate::store::LoginState;

/// Refuses the login when its authorization response's `iss` (`None`: not posted) is not the
/// issuer of the provider `idp` the login state belongs to, or is missing where it is required.
pub(super) async fn check(
    state: &AppState,
    login: &LoginState,
    idp: &IdpClient,
    iss: Option<&str>,
) -> Result<(), ApiError> {
    // An empty value is what a form without the parameter may post: read as missing.
    let iss = iss.filter(|i| !i.is_empty());
    // Another configured provider whose issuer `iss` is (never this login's own).
    let foreign = || -> Option<String> {
        let iss = iss?;
        state
            .idps
            .iter()
            .filter(|((app, provider), _)| *app != login.app_id || *provider != login.provider_id)
            .find(|(_, client)| client.names_issuer(iss))
            .map(|((app, provider), _)| format!("{app}/{provider}"))
    };
    let (problem, other) = match idp.check_response_iss(iss).await? {
        Some(IssProblem::Mismatch) => (IssProblem::Mismatch, foreign()),
        Some(IssProblem::Missing) => (IssProblem::Missing, None),
        // A plain OAuth2 provider has no issuer of its own to compare: only another
        // provider's is refused.
        None => match foreign().filter(|_| !idp.provider().kind.is_oidc()) {
            Some(other) => (IssProblem::Mismatch, Some(other)),
            None => return Ok(()),
        },
    };
    let (app, provider) = (&login.app_id, &login.provider_id);
    let reason = match (problem, other) {
        (IssProblem::Mismatch, Some(other)) => {
            tracing::warn!(%app, %provider, other_provider = %other, "login refused: the authorization response carries another provider's issuer (mix-up)");
            "is the issuer of another identity provider than the one this login started at; \
             start the login again"
        }
        (IssProblem::Mismatch, None) => {
            tracing::warn!(%app, %provider, "login refused: the authorization response's iss is not the provider's issuer");
            "is not the issuer of the identity provider this login started at; start the login \
             again"
        }
        (IssProblem::Missing, _) => {
            tracing::warn!(%app, %provider, "login refused: the authorization response has no iss, which the provider says it sends (require_iss)");
            "is missing: the identity provider sends it with its authorization responses \
             (RFC 9207), and the callback must pass it on with code and state"
        }
    };
    Err(ApiError::InvalidParam {
        name: "iss",
        reason: reason.into(),
    })
}
