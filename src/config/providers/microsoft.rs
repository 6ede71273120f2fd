//! Microsoft's tenants: which tenant ids a `microsoft` provider accepts, read off its issuer's
//! endpoint (`common`, `organizations`, `consumers`, one tenant, B2C) and its `tenants` list.

use url::Url;

use super::MICROSOFT_CONSUMERS_TENANT;
use crate::config::ConfigError;

/// The tenant allow-list of a `microsoft` provider at `issuer` (see the module doc); `key`
/// names the setting in errors.
pub(super) fn microsoft_tenants(
    issuer: &str,
    given: Option<Vec<String>>,
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    let endpoint = microsoft_endpoint(issuer);
    let tenants = match given {
        Some(list) => list
            .into_iter()
            .map(|t| {
                if is_guid(&t) {
                    Ok(t.to_ascii_lowercase())
                } else {
                    Err(ConfigError::invalid(
                        key,
                        format!(
                            "`{t}` is not a tenant id: a GUID such as \
                             {MICROSOFT_CONSUMERS_TENANT} (tokens carry the tenant's id, not its \
                             domain name)"
                        ),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        None if endpoint == "consumers" => vec![MICROSOFT_CONSUMERS_TENANT.to_owned()],
        None => Vec::new(),
    };
    if tenants.is_empty() && matches!(endpoint.as_str(), "common" | "organizations") {
        return Err(ConfigError::invalid(
            key,
            format!(
                "required: the issuer `{issuer}` is Microsoft's multi-tenant `{endpoint}` \
                 endpoint, which signs in the accounts of every Entra ID tenant; list the \
                 tenant ids allowed to sign in (tenants = [\"<tenant id>\"]), or set issuer_url \
                 to one tenant's https://login.microsoftonline.com/<tenant id>/v2.0"
            ),
        ));
    }
    Ok(tenants)
}

/// The first path segment of a Microsoft issuer, lowercase: `common`, `organizations`,
/// `consumers`, a tenant id or domain, or a B2C tenant's name.
pub(in crate::config) fn microsoft_endpoint(issuer: &str) -> String {
    Url::parse(issuer)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_ascii_lowercase))
        })
        .unwrap_or_default()
}

/// Whether `s` is a GUID in its usual text form (8-4-4-4-12 hexadecimal digits).
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}
