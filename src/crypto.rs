//! Small cryptographic helpers: unguessable tokens, hashes of tokens we must recognise but never
//! store, the redacting [`Secret`] wrapper, and [`TokenCipher`], which keeps the IdP's tokens
//! encrypted at rest (AES-256-GCM).

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
