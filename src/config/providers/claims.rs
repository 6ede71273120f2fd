//! `claims_to_token` (Mia's `providerToTokenClaims`): which IdP claims a provider copies into
//! the token's `user` claim, checked so that an IdP can never fill what idgate vouches for.

use std::collections::BTreeMap;

use crate::config::ConfigError;

/// Names of the token's `user` claim idgate fills itself: `claims_to_token` may not write them
/// (an IdP would then decide the user id, the groups or the permissions).
const RESERVED_USER_CLAIMS: &[&str] = &[
    "userId",
    "groups",
    "email",
    "name",
    "username",
    "permissions",
    "metadata",
    "providerUserId",
    "userSettingsURL",
];
/// At most this many entries in one provider's `claims_to_token`.
const MAX_CLAIMS_TO_TOKEN: usize = 32;

/// Validates `claims_to_token` (`key` names it in errors): IdP claim names that are not empty,
/// token claim names of letters, digits and `_` (at most 64, starting with a letter) that are
/// neither reserved nor written twice.
pub(super) fn claims_to_token(
    raw: BTreeMap<String, String>,
    key: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    if raw.len() > MAX_CLAIMS_TO_TOKEN {
        return Err(ConfigError::invalid(
            key,
            format!("at most {MAX_CLAIMS_TO_TOKEN} claims"),
        ));
    }
    let mut targets = std::collections::BTreeSet::new();
    for (from, to) in &raw {
        if from.is_empty() || from.len() > 128 {
            return Err(ConfigError::invalid(
                key,
                "an IdP claim name must have 1 to 128 characters",
            ));
        }
        let well_formed = to.len() <= 64
            && to.starts_with(|c: char| c.is_ascii_alphabetic())
            && to.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "`{from}` → `{to}`: `{to}` is not a token claim name (a letter, then \
                     letters, digits or `_`; at most 64)"
                ),
            ));
        }
        if RESERVED_USER_CLAIMS.contains(&to.as_str()) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "`{from}` → `{to}`: `{to}` is filled by idgate itself and cannot come from \
                     the IdP"
                ),
            ));
        }
        if !targets.insert(to.as_str()) {
            return Err(ConfigError::invalid(
                key,
                format!("`{from}` → `{to}`: `{to}` is written by two IdP claims"),
            ));
        }
    }
    Ok(raw)
}
