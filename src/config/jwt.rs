//! `[jwt]`: the key idgate signs its session tokens with, and the extra keys it still accepts
//! while they are rotated out. Loaded here, so a key that cannot be read or used stops startup
//! naming its key rather than failing at the first login.

use std::path::{Path, PathBuf};

use super::raw::RawJwt;
use super::ConfigError;
use crate::jwt::KeyMaterial;

#[derive(Debug)]
pub struct JwtConfig {
    pub signing: KeyMaterial,
    pub verification: Vec<KeyMaterial>,
}

/// The `[jwt]` section, keys loaded. It may be missing from the TOML only because the original
/// services' variables can supply it (see `env/`), so its absence names those too.
pub(super) fn validate(
    raw: Option<RawJwt>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<JwtConfig, ConfigError> {
    let jwt = raw.ok_or_else(|| {
        ConfigError::invalid(
            "jwt",
            "missing: add a [jwt] section (or set MIA_JWT_TOKEN_SIGN_KEY or \
             MIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH)",
        )
    })?;
    let signing = match (&jwt.secret, &jwt.private_key_file) {
        (Some(secret), _) => KeyMaterial::signing_from_bytes(
            &jwt.algorithm,
            secret.expose().as_bytes().to_vec(),
            "the value",
            &jwt.key_id,
        )
        .map_err(|m| ConfigError::invalid("jwt.secret", m))?,
        (None, Some(file)) => {
            KeyMaterial::load_signing(&jwt.algorithm, &resolve(file), &jwt.key_id)
                .map_err(|m| ConfigError::invalid("jwt.private_key_file", m))?
        }
        (None, None) => {
            return Err(ConfigError::invalid("jwt.private_key_file", "missing"));
        }
    };
    let mut verification = Vec::new();
    for (i, k) in jwt.verification_keys.iter().enumerate() {
        let key = KeyMaterial::load_verifying(&k.algorithm, &resolve(&k.key_file), &k.key_id)
            .map_err(|m| ConfigError::invalid(format!("jwt.verification_keys[{i}]"), m))?;
        verification.push(key);
    }
    Ok(JwtConfig {
        signing,
        verification,
    })
}
