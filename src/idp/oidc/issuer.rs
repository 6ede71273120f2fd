//! Which issuer an OpenID provider's id_tokens must carry, given the configured one and the one
//! its discovery document announces (the rules are in `oidc`'s module doc): exactly the announced
//! one, or, for Microsoft's multi-tenant endpoints, the template with one tenant id in it.

use crate::config::ProviderKind;

/// How the id_token's `iss` is checked against the discovered issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IssuerRule {
    /// Exactly the announced issuer (checked by `openidconnect`).
    Exact,
    /// Microsoft's multi-tenant template: `prefix`, one tenant id, `suffix`.
    Tenant { prefix: String, suffix: String },
}

/// Which issuer the id_tokens must carry, given the configured one and the one the discovery
/// document announces (see the module doc); an error says why the document is refused.
pub(super) fn issuer_rule(
    kind: ProviderKind,
    configured: &str,
    announced: &str,
) -> Result<IssuerRule, String> {
    if configured.trim_end_matches('/') == announced.trim_end_matches('/') {
        return Ok(IssuerRule::Exact);
    }
    if kind == ProviderKind::Microsoft {
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        if origin(configured).is_some() && origin(configured) == origin(announced) {
            if let Some((prefix, suffix)) = announced.split_once("{tenantid}") {
                return Ok(IssuerRule::Tenant {
                    prefix: prefix.to_owned(),
                    suffix: suffix.to_owned(),
                });
            }
            return Ok(IssuerRule::Exact);
        }
    }
    Err(format!(
        "the discovery document announces the issuer `{announced}`, not `{configured}`"
    ))
}

/// Whether `iss` is `prefix` + one tenant id (no `/`) + `suffix`.
pub(super) fn matches_tenant(iss: &str, prefix: &str, suffix: &str) -> bool {
    iss.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}
