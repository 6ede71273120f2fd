//! `[[api_keys]]`: validates the static API keys and turns them into [`ApiKeys`] (hashes and
//! client types only). A key is read in clear only from its `key_file`, hashed, and dropped.
//!
//! Why the checks: a client type travels in a header (`client-type`) and is compared in rules,
//! so it must be a non-empty token without spaces (Mia's Console refuses blanks too); a key must
//! be something a client can send in a header; two entries with one key would make the client
//! type depend on the entries' order, so they stop startup.

use std::path::{Path, PathBuf};

use super::raw::RawApiKey;
use super::ConfigError;
use crate::apikeys::{self, ApiKeys, MAX_CLIENT_TYPE_BYTES, MAX_KEY_BYTES};

/// Keys read from a file shorter than this get a warning: a short key can be guessed.
const SHORT_KEY_BYTES: usize = 16;

/// The validated keys, and the notices (warnings, inactive keys) for `check-config` and the log.
pub(super) fn validate(
    raw: &[RawApiKey],
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<(ApiKeys, Vec<String>), ConfigError> {
    let mut entries: Vec<([u8; 32], String)> = Vec::new();
    let mut notices = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let key = |k: &str| format!("api_keys[{i}].{k}");
        let client_type = entry.client_type.as_str();
        if client_type.is_empty()
            || client_type.len() > MAX_CLIENT_TYPE_BYTES
            || !client_type.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ConfigError::invalid(
                key("client_type"),
                format!(
                    "must be 1 to {MAX_CLIENT_TYPE_BYTES} visible ASCII characters, without \
                     spaces"
                ),
            ));
        }
        let hash = match (&entry.key_sha256, &entry.key_file) {
            (Some(hex), None) => {
                let hash = apikeys::parse_sha256_hex(hex.trim()).ok_or_else(|| {
                    ConfigError::invalid(
                        key("key_sha256"),
                        "must be the 64 hex digits of the key's SHA-256 \
                         (printf %s \"$KEY\" | sha256sum)",
                    )
                })?;
                if hash == apikeys::hash_key(b"") {
                    return Err(ConfigError::invalid(
                        key("key_sha256"),
                        "is the SHA-256 of an empty key",
                    ));
                }
                hash
            }
            (None, Some(file)) => {
                let path = resolve(file);
                let bytes = std::fs::read(&path).map_err(|e| {
                    ConfigError::invalid(key("key_file"), format!("{}: {e}", path.display()))
                })?;
                let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                if text.is_empty()
                    || text.len() > MAX_KEY_BYTES
                    || !text.iter().all(u8::is_ascii_graphic)
                {
                    // The message never quotes the file's content.
                    return Err(ConfigError::invalid(
                        key("key_file"),
                        format!(
                            "{}: must hold one key of 1 to {MAX_KEY_BYTES} visible ASCII \
                             characters, without spaces",
                            path.display()
                        ),
                    ));
                }
                if text.len() < SHORT_KEY_BYTES {
                    notices.push(format!(
                        "api_keys[{i}] (client type `{client_type}`): the key is shorter than \
                         {SHORT_KEY_BYTES} characters and could be guessed; generate a long \
                         random one"
                    ));
                }
                apikeys::hash_key(text)
            }
            _ => {
                return Err(ConfigError::invalid(
                    format!("api_keys[{i}]"),
                    "give exactly one of key_sha256 and key_file",
                ))
            }
        };
        if let Some(pos) = entries.iter().position(|(h, _)| *h == hash) {
            return Err(ConfigError::invalid(
                format!("api_keys[{i}]"),
                format!("has the same key as api_keys[{pos}]; one key maps to one client type"),
            ));
        }
        if entry.active == Some(false) {
            notices.push(format!(
                "api_keys[{i}] (client type `{client_type}`) is inactive: requests sending it are \
                 refused like those sending an unknown key"
            ));
            // An empty client type keeps it out of the set (so it is refused as unknown) while
            // later entries are still checked against it for duplicates.
            entries.push((hash, String::new()));
            continue;
        }
        entries.push((hash, client_type.to_owned()));
    }
    Ok((
        ApiKeys::new(entries.into_iter().filter(|(_, ct)| !ct.is_empty())),
        notices,
    ))
}

/// The startup line saying what configured keys change at `/auth`; none without keys.
pub(super) fn summary(keys: &ApiKeys) -> Option<String> {
    (!keys.is_empty()).then(|| {
        format!(
            "{} API key(s) configured: /auth reads the `client-key` and `secret` headers and \
             the `mia_client_key` cookie, and refuses a request whose key is not one of them",
            keys.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<RawApiKey> {
        #[derive(serde::Deserialize)]
        struct Doc {
            api_keys: Vec<RawApiKey>,
        }
        toml::from_str::<Doc>(text).unwrap().api_keys
    }

    fn hex(key: &str) -> String {
        apikeys::hash_key(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn run(text: &str, dir: &Path) -> Result<(ApiKeys, Vec<String>), ConfigError> {
        let dir = dir.to_owned();
        validate(&parse(text), &move |p: &Path| dir.join(p))
    }

    #[test]
    fn hashes_and_files_give_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cms.key"), "cms-key-0123456789abcdef\n").unwrap();
        let text = format!(
            "[[api_keys]]\nclient_type = \"partner\"\nkey_sha256 = \"{}\"\n\
             [[api_keys]]\nclient_type = \"cms\"\nkey_file = \"cms.key\"\ndescription = \"CMS\"\n\
             [[api_keys]]\nclient_type = \"old\"\nkey_sha256 = \"{}\"\nactive = false\n",
            hex("partner-key-0123456789").to_uppercase(),
            hex("old-key-0123456789abc"),
        );
        let (keys, notices) = run(&text, dir.path()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.lookup(b"partner-key-0123456789"), Some("partner"));
        // The file's trailing newline is not part of the key.
        assert_eq!(keys.lookup(b"cms-key-0123456789abcdef"), Some("cms"));
        assert_eq!(keys.lookup(b"cms-key-0123456789abcdef\n"), None);
        // Inactive: refused like an unknown key.
        assert_eq!(keys.lookup(b"old-key-0123456789abc"), None);
        assert!(notices
            .iter()
            .any(|n| n.contains("api_keys[2]") && n.contains("inactive")));
    }

    #[test]
    fn bad_entries_stop_startup_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spaced.key"), "has a space\n").unwrap();
        std::fs::write(dir.path().join("empty.key"), "\n").unwrap();
        std::fs::write(dir.path().join("dup.key"), "partner-key-0123456789").unwrap();
        let partner = hex("partner-key-0123456789");
        let cases = [
            (
                "[[api_keys]]\nclient_type = \"a b\"\nkey_sha256 = \"{P}\"".to_owned(),
                "api_keys[0].client_type",
            ),
            (
                "[[api_keys]]\nclient_type = \"\"\nkey_sha256 = \"{P}\"".to_owned(),
                "api_keys[0].client_type",
            ),
            (
                "[[api_keys]]\nclient_type = \"a\"".to_owned(),
                "api_keys[0]: give exactly one",
            ),
            (
                "[[api_keys]]\nclient_type = \"a\"\nkey_sha256 = \"{P}\"\nkey_file = \"dup.key\""
                    .to_owned(),
                "api_keys[0]: give exactly one",
            ),
            (
                "[[api_keys]]\nclient_type = \"a\"\nkey_sha256 = \"abc\"".to_owned(),
                "api_keys[0].key_sha256",
            ),
            (
                format!(
                    "[[api_keys]]\nclient_type = \"a\"\nkey_sha256 = \"{}\"",
                    hex("")
                ),
                "empty key",
            ),
            (
                "[[api_keys]]\nclient_type = \"a\"\nkey_file = \"spaced.key\"".to_owned(),
                "api_keys[0].key_file",
            ),
            (
                "[[api_keys]]\nclient_type = \"a\"\nkey_file = \"empty.key\"".to_owned(),
                "api_keys[0].key_file",
            ),
            (
                "[[api_keys]]\nclient_type = \"a\"\nkey_file = \"missing.key\"".to_owned(),
                "api_keys[0].key_file",
            ),
            (
                "[[api_keys]]\nclient_type = \"a\"\nkey_sha256 = \"{P}\"\n\
                 [[api_keys]]\nclient_type = \"b\"\nkey_file = \"dup.key\""
                    .to_owned(),
                "api_keys[1]: has the same key as api_keys[0]",
            ),
        ];
        for (text, expected) in cases {
            let text = text.replace("{P}", &partner);
            let err = run(&text, dir.path()).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}\n→ {err}");
            // A key file's content is never quoted.
            assert!(!err.contains("has a space"), "{err}");
            assert!(!err.contains("partner-key"), "{err}");
        }
        // An unknown field is a typo, not an ignored line (and a key in clear has no field).
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            api_keys: Vec<RawApiKey>,
        }
        assert!(
            toml::from_str::<Doc>("[[api_keys]]\nclient_type = \"a\"\nkey = \"clear\"").is_err()
        );
    }

    #[test]
    fn short_keys_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("short.key"), "abc123").unwrap();
        let (keys, notices) = run(
            "[[api_keys]]\nclient_type = \"a\"\nkey_file = \"short.key\"",
            dir.path(),
        )
        .unwrap();
        assert_eq!(keys.lookup(b"abc123"), Some("a"));
        assert!(
            notices.iter().any(|n| n.contains("shorter than")),
            "{notices:?}"
        );
        assert!(!notices.iter().any(|n| n.contains("abc123")));
    }
}
