//! `[headers]`: what `/auth` answers with besides Mia's own headers (a profile of extra names,
//! or the operator's own), which user fields go into `mia-userproperties`, and how large a
//! value may be. The names and the encoding themselves live in `crate::headers`.

use http::HeaderName;

use super::raw::RawHeaders;
use super::ConfigError;
use crate::headers::{Field, IdentityHeaders, OAUTH2_PROXY_PROFILE};

/// The `[headers]` section: `profile` is `mia` (the default), `oauth2-proxy`, or `custom` with
/// its `[headers.custom]` table, which no other profile may have.
pub(super) fn validate(raw: RawHeaders) -> Result<IdentityHeaders, ConfigError> {
    let extra: Vec<(HeaderName, Field)> =
        match (raw.profile.as_deref().unwrap_or("mia"), raw.custom) {
            ("mia", None) => Vec::new(),
            ("oauth2-proxy", None) => OAUTH2_PROXY_PROFILE
                .iter()
                .map(|(n, f)| (HeaderName::from_static(n), *f))
                .collect(),
            ("custom", Some(map)) => {
                let mut out = Vec::new();
                for (field, name) in map {
                    let f = Field::parse(&field).ok_or_else(|| {
                        ConfigError::invalid(
                            format!("headers.custom.{field}"),
                            "not one of user_id, email, name, username, groups, user_properties",
                        )
                    })?;
                    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        ConfigError::invalid(
                            format!("headers.custom.{field}"),
                            format!("`{name}` is not a header name"),
                        )
                    })?;
                    out.push((n, f));
                }
                out
            }
            ("custom", None) => {
                return Err(ConfigError::invalid(
                    "headers.custom",
                    "profile = \"custom\" needs [headers.custom]",
                ))
            }
            (_, Some(_)) => {
                return Err(ConfigError::invalid(
                    "headers.custom",
                    "only with profile = \"custom\"",
                ))
            }
            (other, None) => {
                return Err(ConfigError::invalid(
                    "headers.profile",
                    format!("`{other}` is not one of mia, oauth2-proxy, custom"),
                ))
            }
        };
    Ok(IdentityHeaders {
        user_properties: raw
            .user_properties
            .unwrap_or_else(|| vec!["name".into(), "email".into()]),
        extra,
        pass_token: raw.pass_token.unwrap_or(false),
        max_value_bytes: raw.max_value_bytes.unwrap_or(4096).max(64),
    })
}
