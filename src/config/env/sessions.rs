//! The variables of the session tokens: the signing key and method (`MIA_JWT_TOKEN_*`) and the
//! lifetimes and limits of sessions (`MIA_JWT_TOKEN_VALID_DURATION_SEC`,
//! `MIA_REFRESH_TOKEN_VALID_DURATION_SEC`, `STORED_ACCESS_TOKEN_NUMBER`, …).

use std::path::{Path, PathBuf};

use super::{bool_var, number_var, Env, EnvReport};
use crate::config::raw::{RawConfig, RawJwt};
use crate::config::ConfigError;

pub(super) fn apply_jwt(
    raw: &mut RawConfig,
    env: &dyn Env,
    dir: &Path,
    report: &mut EnvReport,
) -> Result<(), ConfigError> {
    if env.var("MIA_JWT_TOKEN_PRIVATE_KEY_PASSWORD").is_some() {
        return Err(ConfigError::invalid(
            "MIA_JWT_TOKEN_PRIVATE_KEY_PASSWORD",
            "password-protected keys are not supported: decrypt the key once \
             (openssl pkey -in key.pem -out plain.pem) and protect the file's permissions instead",
        ));
    }
    let method = env.var("MIA_JWT_TOKEN_SIGNING_METHOD");
    let key_file = env.var("MIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH");
    let kid = env.var("MIA_JWT_TOKEN_PRIVATE_KEY_KID");
    let sign_key = env.var("MIA_JWT_TOKEN_SIGN_KEY");
    if method.is_none() && key_file.is_none() && kid.is_none() && sign_key.is_none() {
        return Ok(());
    }
    // Without a [jwt] section, the original's default: HS256, or RS256 when a key file is named.
    let jwt = raw.jwt.get_or_insert_with(|| RawJwt {
        algorithm: if key_file.is_some() { "RS256" } else { "HS256" }.into(),
        private_key_file: None,
        key_id: "mia".into(),
        verification_keys: Vec::new(),
        secret: None,
    });
    if let Some(m) = method {
        jwt.algorithm = m.to_ascii_uppercase();
        report.used("MIA_JWT_TOKEN_SIGNING_METHOD", "jwt.algorithm");
    }
    if let Some(f) = key_file {
        jwt.private_key_file = Some(key_path(&f, dir));
        jwt.secret = None;
        report.used(
            "MIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH",
            "jwt.private_key_file",
        );
    }
    if let Some(k) = kid {
        jwt.key_id = k;
        report.used("MIA_JWT_TOKEN_PRIVATE_KEY_KID", "jwt.key_id");
    }
    if let Some(secret) = sign_key {
        if jwt.algorithm == "HS256" {
            jwt.secret = Some(crate::crypto::Secret::new(secret));
            report.used("MIA_JWT_TOKEN_SIGN_KEY", "jwt.secret");
        } else {
            report.no_effect(
                "MIA_JWT_TOKEN_SIGN_KEY",
                "the signing algorithm is not HS256",
            );
        }
    }
    Ok(())
}

/// The original documents the key path both with and without its extension: take the path as
/// written when it exists, else the same path with `.pem`.
fn key_path(value: &str, dir: &Path) -> PathBuf {
    let written = PathBuf::from(value);
    let resolved = if written.is_absolute() {
        written.clone()
    } else {
        dir.join(&written)
    };
    let with_pem = PathBuf::from(format!("{value}.pem"));
    let resolved_pem = dir.join(&with_pem);
    if !resolved.exists() && resolved_pem.exists() {
        with_pem
    } else {
        written
    }
}

pub(super) fn apply_session(
    raw: &mut RawConfig,
    env: &dyn Env,
    report: &mut EnvReport,
) -> Result<(), ConfigError> {
    if let Some(n) = number_var(env, "MIA_JWT_TOKEN_VALID_DURATION_SEC")? {
        raw.session.access_ttl = Some(format!("{n}s"));
        report.used("MIA_JWT_TOKEN_VALID_DURATION_SEC", "session.access_ttl");
    }
    if let Some(n) = number_var(env, "MIA_REFRESH_TOKEN_VALID_DURATION_SEC")? {
        raw.session.lifetime = Some(format!("{n}s"));
        // Mia gives every refresh token it issues (at login and at each refresh) this lifetime:
        // a session lives as long as it is refreshed in time.
        raw.session.sliding_lifetime = Some(true);
        report.used("MIA_REFRESH_TOKEN_VALID_DURATION_SEC", "session.lifetime");
    }
    if let Some(wipe) = bool_var(env, "INVALID_REFRESH_TOKEN_WIPES_COOKIES")? {
        raw.session.invalid_refresh_wipes_cookies = Some(wipe);
        report.used(
            "INVALID_REFRESH_TOKEN_WIPES_COOKIES",
            "session.invalid_refresh_wipes_cookies",
        );
    }
    if let Some(n) = number_var(env, "STATE_MANAGER_EXPIRATION_TIME_MINUTES")? {
        raw.session.login_state_ttl = Some(format!("{n}m"));
        report.used(
            "STATE_MANAGER_EXPIRATION_TIME_MINUTES",
            "session.login_state_ttl",
        );
    }
    if let Some(n) = number_var(env, "STORED_ACCESS_TOKEN_NUMBER")? {
        raw.session.max_per_user = Some(n as usize);
        report.used("STORED_ACCESS_TOKEN_NUMBER", "session.max_per_user");
    }
    Ok(())
}
