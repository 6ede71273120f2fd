//! Small cryptographic helpers: unguessable tokens, hashes of tokens we must recognise but never
//! store, the redacting [`Secret`] wrapper, [`TokenCipher`], which keeps the IdP's tokens
//! encrypted at rest (AES-256-GCM), and [`SessionMac`], which makes a session's renewal secret
//! and its refresh tokens checkable without storing them.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A string that must never reach a log line or a response: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// 32 random bytes from the OS generator, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `value`, base64url: how refresh tokens and browser bindings are stored.
pub fn hash_token(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// The public handle of session `sid`: what a user sees of it (`/me/sessions`) and names it by.
/// A hash (SHA-256 under its own label, 128 bits, base64url), so the list never shows the
/// store's key of a session: nothing opens with the sid alone today (refresh tokens and renewal
/// secrets are keyed MACs, see [`SessionMac`]), and a handle keeps that true whatever comes.
pub fn session_handle(sid: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"idgate session handle v1\0")
        .chain_update(sid.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Whether `handle` is the public handle of `sid` ([`session_handle`]), compared in time
/// independent of where they differ: how a session named by its handle is found among a user's
/// (`/me/sessions`, `idgate sessions revoke --id`).
pub fn is_handle_of(handle: &str, sid: &str) -> bool {
    constant_time_eq(&session_handle(sid), handle)
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
#[error("stored IdP tokens cannot be decrypted (was the token key changed?)")]
pub struct DecryptError;

/// Encrypts the IdP's tokens before they are stored. The key comes from
/// `session.token_key_file`, or is derived (HKDF-SHA256) from the JWT signing key, so it never
/// sits in the same store as the data it protects.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl TokenCipher {
    pub fn from_key_material(material: &[u8]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"idgate idp-token key v1"), material);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(b"aes-256-gcm", &mut key);
        Self {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    /// Returns nonce ‖ ciphertext.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption only fails for inputs larger than GCM's 64 GiB limit.
        if let Ok(ct) = self.cipher.encrypt(&Nonce::from(nonce), plaintext) {
            out.extend_from_slice(&ct);
        }
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if sealed.len() < 12 {
            return Err(DecryptError);
        }
        let (nonce, ct) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| DecryptError)?;
        self.cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| DecryptError)
    }
}

/// Keyed MACs (HMAC-SHA256) over session ids and refresh tokens. The key comes from the same
/// material as [`TokenCipher`]'s (`session.token_key_file`, else the signing key), under its own
/// HKDF label, so every instance sharing the config agrees without storing anything.
///
/// - The **renewal secret** of a session is the MAC of its id. The browser receives it once, at
///   login, in its own HttpOnly cookie; `/auth` renews an expired session JWT only when the
///   request carries it. A JWT that leaked (it is in every request, logs, the token header
///   profile) therefore lives at most `access_ttl`: the session id in it is not enough.
/// - A **refresh token** is `<sid>.<random>.<mac>`. Its hash is what the session stores (the
///   current one); the MAC tells a refresh token idgate once issued (a replay: the session is
///   revoked) from one an attacker made up knowing the session id (refused, nothing changes).
#[derive(Clone)]
pub struct SessionMac {
    key: [u8; 32],
}

impl SessionMac {
    pub fn from_key_material(material: &[u8]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"idgate session-mac key v1"), material);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(b"hmac-sha256", &mut key);
        Self { key }
    }

    fn mac(&self, purpose: &str, data: &str) -> String {
        use hmac::Mac;
        // Any key length is valid for HMAC, so `new_from_slice` cannot fail.
        let Ok(mut m) = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return String::new();
        };
        m.update(purpose.as_bytes());
        m.update(b"\0");
        m.update(data.as_bytes());
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    }

    /// The renewal secret of session `sid`.
    pub fn renewal_secret(&self, sid: &str) -> String {
        self.mac("renew", sid)
    }

    /// Whether `presented` is the renewal secret of session `sid`.
    pub fn is_renewal_secret(&self, sid: &str, presented: &str) -> bool {
        constant_time_eq(&self.renewal_secret(sid), presented)
    }

    /// A new refresh token of session `sid`: `<sid>.<32 random bytes>.<mac>`.
    pub fn refresh_token(&self, sid: &str) -> String {
        let body = format!("{sid}.{}", random_token());
        let mac = self.mac("refresh", &body);
        format!("{body}.{mac}")
    }

    /// Whether idgate issued `token` as a refresh token (of any generation, current or not).
    pub fn is_issued_refresh_token(&self, token: &str) -> bool {
        token
            .rsplit_once('.')
            .is_some_and(|(body, mac)| constant_time_eq(&self.mac("refresh", body), mac))
    }
}

/// Seals what a refresh answered for its grace window (see `routes::refresh`), under a key
/// derived (HKDF-SHA256, its own label) from the refresh token that was exchanged. The store
/// keeps that token's SHA-256 only, from which the key cannot be derived: a reader of the store
/// cannot open the pair; the holder of the token can, and only within the window.
pub fn seal_for_token(token: &str, plaintext: &[u8]) -> Vec<u8> {
    grace_cipher(token).seal(plaintext)
}

/// Opens what [`seal_for_token`] sealed with the same token.
pub fn open_for_token(token: &str, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
    grace_cipher(token).open(sealed)
}

fn grace_cipher(token: &str) -> TokenCipher {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"idgate refresh-grace key v1"), token.as_bytes());
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
    let _ = hk.expand(b"aes-256-gcm", &mut key);
    TokenCipher {
        cipher: Aes256Gcm::new(&key.into()),
    }
}

/// The session id a refresh token names (its first part).
pub fn refresh_token_sid(token: &str) -> Option<&str> {
    token
        .split_once('.')
        .map(|(sid, _)| sid)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_macs_tell_issued_secrets_from_made_up_ones() {
        let m = SessionMac::from_key_material(b"signing key");
        let secret = m.renewal_secret("sid-1");
        assert!(m.is_renewal_secret("sid-1", &secret));
        assert!(!m.is_renewal_secret("sid-2", &secret));
        assert!(!m.is_renewal_secret("sid-1", ""));
        let t = m.refresh_token("sid-1");
        assert_eq!(refresh_token_sid(&t), Some("sid-1"));
        assert!(m.is_issued_refresh_token(&t));
        let (body, _) = t.rsplit_once('.').unwrap();
        assert!(!m.is_issued_refresh_token(&format!("{body}.forged")));
        assert!(!m.is_issued_refresh_token("sid-1.anything"));
        assert!(!m.is_issued_refresh_token("sid-1"));
        let other = SessionMac::from_key_material(b"another key");
        assert!(!other.is_issued_refresh_token(&t));
        assert_ne!(other.renewal_secret("sid-1"), secret);
    }

    #[test]
    fn a_grace_pair_opens_only_with_its_refresh_token() {
        let sealed = seal_for_token("s1.token.mac", b"pair");
        assert_eq!(open_for_token("s1.token.mac", &sealed).unwrap(), b"pair");
        assert!(open_for_token("s1.token.mad", &sealed).is_err());
        // Not with the hash the store keeps either.
        assert!(open_for_token(&hash_token("s1.token.mac"), &sealed).is_err());
        assert!(!sealed.windows(4).any(|w| w == b"pair"));
    }

    #[test]
    fn session_handles_are_stable_short_and_not_the_sid() {
        let h = session_handle("sid-1");
        assert_eq!(h, session_handle("sid-1"));
        assert_ne!(h, session_handle("sid-2"));
        assert_eq!(h.len(), 22);
        assert!(!h.contains("sid-1"));
        assert_ne!(h, hash_token("sid-1"));
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn tokens_are_random_and_url_safe() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn cipher_round_trips_and_detects_tampering() {
        let c = TokenCipher::from_key_material(b"some signing key bytes");
        let sealed = c.seal(b"idp access token");
        assert!(!sealed.windows(6).any(|w| w == b"access"));
        assert_eq!(
            c.open(&sealed).ok().as_deref(),
            Some(&b"idp access token"[..])
        );
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(c.open(&bad).is_err());
        let other = TokenCipher::from_key_material(b"another key");
        assert!(other.open(&sealed).is_err());
    }

    #[test]
    fn sealed_input_shorter_than_a_nonce_is_refused_without_panic() {
        let c = TokenCipher::from_key_material(b"k");
        for len in [0, 1, 11, 12, 27] {
            assert!(c.open(&vec![0u8; len]).is_err(), "{len}");
        }
    }

    #[test]
    fn refresh_tokens_name_their_session_and_nothing_else() {
        assert_eq!(refresh_token_sid("s1.abc.def"), Some("s1"));
        assert_eq!(refresh_token_sid(".abc.def"), None);
        assert_eq!(refresh_token_sid("no-dot"), None);
        let m = SessionMac::from_key_material(b"k");
        let t = m.refresh_token("s1");
        let parts: Vec<_> = t.split('.').collect();
        assert_eq!(parts.len(), 3, "{t}");
        assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("s1", 43, 43));
        // Two tokens of one session differ (each has its own random part).
        assert_ne!(m.refresh_token("s1"), t);
    }

    #[test]
    fn token_hashes_are_sha256_base64url() {
        assert_eq!(
            hash_token("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
