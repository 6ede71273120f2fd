//! Back-channel logout tokens (Back-Channel Logout 1.0 §2.4, §2.6) are checked beyond the
//! signature: its `alg` in the provider's allow-list (`id_token_signing_algs`, never `HS*`),
//! header `typ` absent, `JWT` or `logout+jwt`; `iat` at most
//! [`super::checks::LOGOUT_TOKEN_MAX_AGE`] (5 minutes) old and not ahead of our clock by more than
//! [`super::checks::LOGOUT_CLOCK_SKEW`] (30 s); `exp`, when present, not past; `jti` present. The
//! route remembers each accepted `jti` (scoped by issuer) in the shared store until the token's
//! acceptance window ends ([`LogoutClaims::replay_key`], [`LogoutClaims::remember_until`]), so a
//! replay is refused by every instance; once it is forgotten, the `iat` check refuses it. The
//! rules themselves are in [`super::checks`].

use super::algs::jwt_alg_accepted;
use super::checks::{
    check_logout_iat, check_tenant, logout_typ_ok, LogoutClaims, BACKCHANNEL_LOGOUT_EVENT,
    LOGOUT_CLOCK_SKEW,
};
use super::{find_key, matches_tenant, IdpError, IssuerRule, OidcFlow};

impl OidcFlow {
    /// Validates an OIDC Back-Channel Logout token (Back-Channel Logout 1.0 §2.6): signed by a
    /// key of the IdP's JWKS (fetched again once for an unknown `kid`), header `typ`, `iss` the
    /// IdP (one of its tenants for Microsoft's multi-tenant issuer, and a listed tenant), `aud`
    /// our client id, `iat` within the window, `exp` not past, the back-channel logout event,
    /// `sub` and/or `sid`, `jti`, no `nonce` (see the module doc). Whether the `jti` was seen
    /// before is the caller's check.
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutClaims, IdpError> {
        let bad = |m: &str| IdpError::IdToken(format!("logout_token: {m}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("not a JWT"))?;
        if !logout_typ_ok(header.typ.as_deref()) {
            return Err(bad("the header's typ is not JWT or logout+jwt"));
        }
        if matches!(
            header.alg,
            jsonwebtoken::Algorithm::HS256
                | jsonwebtoken::Algorithm::HS384
                | jsonwebtoken::Algorithm::HS512
        ) {
            return Err(bad("symmetric signatures are not accepted"));
        }
        let mut d = self.discovered().await?;
        if !jwt_alg_accepted(header.alg, &d.algs) {
            return Err(bad(&format!(
                "signed with {:?}, not an algorithm of id_token_signing_algs",
                header.alg
            )));
        }
        let mut key = find_key(&d, header.kid.as_deref());
        if key.is_none() {
            d = self.refetch_jwks().await?;
            key = find_key(&d, header.kid.as_deref());
        }
        let key = key.ok_or_else(|| bad("signed by a key the IdP does not publish"))?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[&self.provider.client_id]);
        // `iat` is checked below: jsonwebtoken does not check it, even when told it is required.
        validation.set_required_spec_claims(&["iss", "aud"]);
        // `exp` is optional in a logout token; when present it must not be past.
        validation.validate_exp = true;
        validation.leeway = LOGOUT_CLOCK_SKEW as u64;
        if d.rule == IssuerRule::Exact {
            validation.set_issuer(&[d.meta.issuer().as_str()]);
        }
        let claims: LogoutClaims = jsonwebtoken::decode(token, &key, &validation)
            .map_err(|e| bad(&format!("{:?}", e.kind())))?
            .claims;
        if let IssuerRule::Tenant { prefix, suffix } = &d.rule {
            if !matches_tenant(&claims.iss, prefix, suffix) {
                return Err(bad("iss is not a tenant of the IdP's issuer"));
            }
        }
        check_tenant(
            &self.provider.tenants,
            &d.rule,
            &claims.iss,
            claims.tid.as_deref(),
        )
        .map_err(|m| bad(&m))?;
        check_logout_iat(claims.iat, crate::now_secs()).map_err(bad)?;
        if claims.nonce.is_some() {
            return Err(bad("a nonce is not allowed"));
        }
        if !claims
            .events
            .get(BACKCHANNEL_LOGOUT_EVENT)
            .is_some_and(|e| e.is_object())
        {
            return Err(bad("the back-channel logout event is missing"));
        }
        if claims.sub.is_none() && claims.sid.is_none() {
            return Err(bad("neither sub nor sid"));
        }
        if claims.jti.is_none() {
            return Err(bad("jti is missing"));
        }
        Ok(claims)
    }

    /// The IdP's RP-initiated logout endpoint, when it has one and discovery succeeded.
    pub async fn end_session_url(&self) -> Option<url::Url> {
        let d = self.discovered().await.ok()?;
        d.meta
            .additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().clone())
    }
}
