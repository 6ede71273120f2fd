//! API keys as Mia-Platform's API gateway has them: a client sends a static key (header
//! `client-key` or `secret`, or cookie `mia_client_key`) and the gateway turns it into the
//! request's client type, which rules read as `clientType` and upstreams as `client-type`.
//!
//! Why a module of its own: the keys are secrets idgate must check without ever holding them in
//! clear longer than the configuration load, comparing them, or writing them anywhere.
//!
//! - **Stored hashed.** Each `[[api_keys]]` entry is kept as the SHA-256 of the key. API keys
//!   are long random strings (Mia's Console generates them), so a plain SHA-256 is enough: there
//!   is nothing to brute-force a salted slow hash would protect. (A short, guessable key would
//!   be weak whatever the hash; `check-config` warns about keys read from a file that are short.)
//! - **Compared in constant time.** A presented key is hashed, then compared with *every*
//!   configured hash with [`subtle`], without stopping at a match: the time taken depends on the
//!   number of keys configured, never on which one matched or how much of one did.
//! - **Never logged or echoed.** Nothing here formats a presented key; errors name the key's
//!   source (header or cookie), never its value, and `Debug` shows client types only.
//! - **Fail closed.** Every key a request presents must be valid and all must name the same
//!   client type; an unknown key, an oversized one, or two keys of different client types are a
//!   refusal, never "no key" — as in Mia, where a wrong `client-key` is refused even on an
//!   endpoint that does not need one.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The request headers Mia's gateway reads an API key from.
pub const KEY_HEADERS: [&str; 2] = ["client-key", "secret"];
/// The cookie Mia's gateway reads an API key from.
pub const KEY_COOKIE: &str = "mia_client_key";
/// Longest key idgate reads; a longer one is refused unread (Console keys are a few dozen bytes).
pub const MAX_KEY_BYTES: usize = 512;
/// Most key values one request may present (headers repeated, cookies repeated); more is refused.
pub const MAX_PRESENTED: usize = 8;
/// Longest client type accepted in the configuration (it travels in a header).
pub const MAX_CLIENT_TYPE_BYTES: usize = 128;

/// Why a request's API key is refused. The messages name no key value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("the API key sent in {0} is not valid")]
    Unknown(&'static str),
    #[error("the API key sent in {0} is larger than idgate reads")]
    TooLong(&'static str),
    #[error("the request sends more API keys than idgate reads")]
    TooMany,
    #[error("the request sends API keys of different client types")]
    Conflicting,
    #[error("this location requires an API key")]
    Missing,
}

/// One configured key: its SHA-256 and the client type it stands for.
struct Entry {
    hash: [u8; 32],
    client_type: String,
}

/// The configured keys, hashed. Empty when the config has no `[[api_keys]]`: then idgate reads
/// no key at all (a `secret` header meant for an upstream is left alone), and a location that
/// requires a key refuses every request.
#[derive(Default)]
pub struct ApiKeys {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.client_type))
            .finish()
    }
}

/// The SHA-256 of a key, as configured with `key_sha256`.
pub fn hash_key(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// Parses the 64 hex digits of a `key_sha256` value.
pub fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

impl ApiKeys {
    /// Builds the set from `(sha256, client_type)` pairs, already validated by the config.
    pub fn new(keys: impl IntoIterator<Item = ([u8; 32], String)>) -> Self {
        Self {
            entries: keys
                .into_iter()
                .map(|(hash, client_type)| Entry { hash, client_type })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The client type of `key`, if it is a configured key. Constant time in the key and in
    /// which entry matches: every entry is compared, and the match is selected without a branch.
    pub fn lookup(&self, key: &[u8]) -> Option<&str> {
        let presented = hash_key(key);
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u32;
        for (i, entry) in self.entries.iter().enumerate() {
            let hit = entry.hash[..].ct_eq(&presented[..]);
            // At most one entry matches: the config refuses two entries with one hash.
            index.conditional_assign(&u32::try_from(i).unwrap_or(u32::MAX), hit);
            found |= hit;
        }
        if bool::from(found) {
            self.entries
                .get(usize::try_from(index).ok()?)
                .map(|e| e.client_type.as_str())
        } else {
            None
        }
    }

    /// The client type the request's API keys stand for: `Ok(None)` when it sends none (or no
    /// key is configured), an error when any key it sends is refused.
    pub fn from_request(&self, headers: &HeaderMap) -> Result<Option<&str>, ApiKeyError> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let mut presented: Vec<(&'static str, &[u8])> = Vec::new();
        for name in KEY_HEADERS {
            for value in headers.get_all(name) {
                let source = if name == "secret" {
                    "the `secret` header"
                } else {
                    "the `client-key` header"
                };
                presented.push((source, value.as_bytes()));
            }
        }
        for cookie in headers.get_all(http::header::COOKIE) {
            for pair in cookie.as_bytes().split(|b| *b == b';') {
                let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                    continue;
                };
                let (name, value) = (&pair[..eq], &pair[eq + 1..]);
                if name.trim_ascii() == KEY_COOKIE.as_bytes() {
                    presented.push(("the `mia_client_key` cookie", value.trim_ascii()));
                }
            }
        }
        let mut client_type: Option<&str> = None;
        let mut count = 0;
        for (source, value) in presented {
            // An empty value is no key (Nginx, and Mia's gateway, treat it as unset).
            if value.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_PRESENTED {
                return Err(ApiKeyError::TooMany);
            }
            if value.len() > MAX_KEY_BYTES {
                return Err(ApiKeyError::TooLong(source));
            }
            let found = self.lookup(value).ok_or(ApiKeyError::Unknown(source))?;
            match client_type {
                Some(seen) if seen != found => return Err(ApiKeyError::Conflicting),
                _ => client_type = Some(found),
            }
        }
        Ok(client_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new([
            (hash_key(b"partner-key-0123456789"), "partner".to_owned()),
            (hash_key(b"cms-key-0123456789abcdef"), "cms".to_owned()),
        ])
    }

    use crate::http::test_headers as headers;

    #[test]
    fn lookup_finds_each_key_and_nothing_else() {
        let k = keys();
        assert_eq!(k.lookup(b"partner-key-0123456789"), Some("partner"));
        assert_eq!(k.lookup(b"cms-key-0123456789abcdef"), Some("cms"));
        for wrong in [
            &b""[..],
            b"partner-key-012345678",
            b"partner-key-01234567890",
            b"PARTNER-KEY-0123456789",
            b" partner-key-0123456789",
        ] {
            assert_eq!(k.lookup(wrong), None, "{wrong:?}");
        }
        assert_eq!(ApiKeys::default().lookup(b"anything"), None);
    }

    #[test]
    fn the_last_entry_matches_too() {
        // The selection is branch-free: an off-by-one there would pick the wrong entry.
        let many = ApiKeys::new(
            (0..20).map(|i| (hash_key(format!("key-{i}").as_bytes()), format!("type-{i}"))),
        );
        for i in 0..20 {
            assert_eq!(
                many.lookup(format!("key-{i}").as_bytes()),
                Some(format!("type-{i}").as_str())
            );
        }
    }

    #[test]
    fn keys_are_read_where_mia_reads_them() {
        let k = keys();
        for h in [
            headers(&[("client-key", "partner-key-0123456789")]),
            headers(&[("secret", "partner-key-0123456789")]),
            headers(&[("cookie", "a=b; mia_client_key=partner-key-0123456789; c=d")]),
            headers(&[("cookie", "mia_client_key=partner-key-0123456789")]),
            // The same key twice is one key.
            headers(&[
                ("client-key", "partner-key-0123456789"),
                ("secret", "partner-key-0123456789"),
            ]),
        ] {
            assert_eq!(k.from_request(&h), Ok(Some("partner")), "{h:?}");
        }
        for h in [
            headers(&[]),
            headers(&[("client-key", "")]),
            headers(&[("cookie", "sid=x; other_mia_client_key=nope")]),
            headers(&[("authorization", "Bearer partner-key-0123456789")]),
        ] {
            assert_eq!(k.from_request(&h), Ok(None), "{h:?}");
        }
    }

    #[test]
    fn any_bad_key_refuses_the_request() {
        let k = keys();
        let cases: &[(&[(&'static str, &str)], ApiKeyError)] = &[
            (
                &[("client-key", "wrong")],
                ApiKeyError::Unknown("the `client-key` header"),
            ),
            (
                &[
                    ("secret", "partner-key-0123456789"),
                    ("client-key", "wrong"),
                ],
                ApiKeyError::Unknown("the `client-key` header"),
            ),
            (
                &[("cookie", "mia_client_key=wrong")],
                ApiKeyError::Unknown("the `mia_client_key` cookie"),
            ),
            (
                &[
                    ("secret", "partner-key-0123456789"),
                    ("client-key", "cms-key-0123456789abcdef"),
                ],
                ApiKeyError::Conflicting,
            ),
        ];
        for (h, expected) in cases {
            assert_eq!(k.from_request(&headers(h)), Err(expected.clone()), "{h:?}");
        }
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            k.from_request(&headers(&[("secret", &long)])),
            Err(ApiKeyError::TooLong("the `secret` header"))
        );
        let many: Vec<(&'static str, &str)> = (0..=MAX_PRESENTED)
            .map(|_| ("client-key", "partner-key-0123456789"))
            .collect();
        assert_eq!(k.from_request(&headers(&many)), Err(ApiKeyError::TooMany));
    }

    #[test]
    fn without_configured_keys_nothing_is_read() {
        let h = headers(&[("secret", "meant-for-the-upstream")]);
        assert_eq!(ApiKeys::default().from_request(&h), Ok(None));
    }

    #[test]
    fn errors_and_debug_never_show_a_key() {
        let k = keys();
        let err = k
            .from_request(&headers(&[("client-key", "wrong-key-value")]))
            .unwrap_err();
        assert!(!err.to_string().contains("wrong-key-value"));
        let shown = format!("{k:?}");
        assert!(!shown.contains("partner-key"), "{shown}");
        assert!(shown.contains("partner"), "{shown}");
    }

    #[test]
    fn sha256_hex_parses_both_cases_and_nothing_else() {
        let hash = hash_key(b"abc");
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_sha256_hex(&hex), Some(hash));
        assert_eq!(parse_sha256_hex(&hex.to_uppercase()), Some(hash));
        assert_eq!(parse_sha256_hex(&hex[..62]), None);
        assert_eq!(parse_sha256_hex(&format!("{}zz", &hex[..62])), None);
        assert_eq!(parse_sha256_hex(&format!("{hex}00")), None);
        assert_eq!(parse_sha256_hex(&format!("+{}", &hex[1..])), None);
    }
}
