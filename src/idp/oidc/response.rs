//! The authorization response's `iss` (RFC 9207), idgate's defence against mix-up attacks
//! (RFC 9700 §4.4) when one instance talks to several IdPs: an attacker who controls, or
//! impersonates, one of them could otherwise have the browser bring another IdP's code to the
//! login it started, and idgate would redeem it at the wrong token endpoint.
//!
//! The callback pages pass `iss` on to `/oauth/token` with `code` and `state`. There, before
//! the code goes anywhere:
//!
//! - an `iss` that is present must be the issuer of the provider the login state belongs to,
//!   compared the way the id_token's `iss` is (exactly the discovered issuer; for Microsoft's
//!   multi-tenant template, one tenant of it, and a listed one);
//! - a missing `iss` is refused when the provider's discovery advertises
//!   `authorization_response_iss_parameter_supported: true`, unless the provider sets
//!   `require_iss = false` (frontends that post only `code` and `state`, such as an unchanged
//!   Mia login site; that is the default of the providers of a Mia file).
//!
//! Plain OAuth2 providers have no issuer identifier to compare; the route still refuses an
//! `iss` that names another configured provider.

use super::checks::check_tenant;
use super::{matches_tenant, IdpError, IssuerRule, OidcFlow};

/// Why an authorization response's `iss` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssProblem {
    /// `iss` is present and is not this provider's issuer.
    Mismatch,
    /// `iss` is missing although the provider says it sends it (and `require_iss` holds).
    Missing,
}

impl OidcFlow {
    /// Checks the authorization response's `iss` (see the module doc): `Some` problem when it
    /// is refused. Discovery has run for the login to start; it runs again here if it has been
    /// dropped since (an error then is the IdP's).
    pub async fn check_response_iss(
        &self,
        iss: Option<&str>,
    ) -> Result<Option<IssProblem>, IdpError> {
        let d = self.discovered().await?;
        let ok = match (iss, &d.rule) {
            (None, _) => !(d.iss_parameter_supported && self.provider.require_iss),
            (Some(iss), IssuerRule::Exact) => iss == d.meta.issuer().as_str(),
            (Some(iss), IssuerRule::Tenant { prefix, suffix }) => {
                matches_tenant(iss, prefix, suffix)
                    && check_tenant(&self.provider.tenants, &d.rule, iss, None).is_ok()
            }
        };
        Ok(match (ok, iss) {
            (true, _) => None,
            (false, None) => Some(IssProblem::Missing),
            (false, Some(_)) => Some(IssProblem::Mismatch),
        })
    }

    /// Whether `iss` is this provider's issuer: the discovered one when discovery has run, else
    /// the configured one (give or take a trailing slash). For naming the provider a mixed-up
    /// response came from.
    pub fn names_issuer(&self, iss: &str) -> bool {
        let discovered = self.discovered.read().ok().and_then(|g| g.clone());
        match discovered.as_ref().map(|d| &d.rule) {
            Some(IssuerRule::Exact) => discovered
                .as_ref()
                .is_some_and(|d| d.meta.issuer().as_str() == iss),
            Some(IssuerRule::Tenant { prefix, suffix }) => matches_tenant(iss, prefix, suffix),
            None => self.issuer.trim_end_matches('/') == iss.trim_end_matches('/'),
        }
    }
}
