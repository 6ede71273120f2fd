//! `[authorization]` and `mia_auth`: the route rules, from the TOML and from Mia's `auth.json`.
//!
//! The file is read here rather than in `policy`, so that the policy layer does no I/O: it is
//! handed the file's text, and the name its messages use, and builds the [`RouteTable`] from
//! that.

use std::path::{Path, PathBuf};

use super::raw::RawAuthorization;
use super::ConfigError;
use crate::policy::{Matching, RouteTable};

/// The route table of `[authorization]` and the `auth.json` that `mia_auth` names. Its errors
/// name `mia_auth` when that file is configured, `authorization.routes` otherwise; the message
/// itself says which source, route and method is at fault.
pub(super) fn validate(
    raw: &RawAuthorization,
    mia_auth: Option<&Path>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<RouteTable, ConfigError> {
    let key = if mia_auth.is_some() {
        "mia_auth"
    } else {
        "authorization.routes"
    };
    let auth_json = match mia_auth {
        Some(path) => {
            Some(read_auth_json(&resolve(path)).map_err(|m| ConfigError::invalid(key, m))?)
        }
        None => None,
    };
    RouteTable::build_from(
        auth_json.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
        &raw.routes,
        Matching {
            strict: raw.strict.unwrap_or(true),
            case_insensitive: raw.case_insensitive.unwrap_or(false),
        },
    )
    .map_err(|e| ConfigError::invalid(key, e.to_string()))
}

/// Reads Mia's `auth.json` whole: the name its messages use (the path, resolved) and its text.
/// A file that cannot be read is `"{path}: {error}"`.
fn read_auth_json(path: &Path) -> Result<(String, String), String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    Ok((name, text))
}
