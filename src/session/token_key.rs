//! The key under which a verified session token is cached (and the renewals, introspection and
//! scoped-token caches keyed the same way): 128 bits of SipHash-1-3 over the token, under a key
//! drawn at random when the process starts. 16 bytes whatever the token's length.
//!
//! A cache hit serves a session without verifying the token, so the key must never let one
//! token stand for another. It need not be a public hash: the keys never leave the process
//! (never logged, stored, sent or compared across instances), so a client that wants another
//! user's session must make a token whose key equals that of a token it does not know, under a
//! hash key it does not know either, with no output to learn from but "cached or not". That is
//! what a keyed pseudo-random function is for (SipHash was made so that clients who choose the
//! inputs cannot make collisions in a process's hash tables); at 128 bits, a guess hits one of a
//! hundred thousand cached sessions with probability 2⁻¹¹¹. It costs 0.2 µs for a 735-byte
//! token where SHA-256 cost 0.56 µs, on every `/auth` (docs/benchmarks.md).

use std::hash::Hasher;
use std::sync::OnceLock;

use siphasher::sip128::{Hasher128, SipHasher13};

/// The token cache's key for `token`.
pub type TokenDigest = u128;

/// This process's hash key: 128 bits from the operating system's random generator, drawn once.
pub(super) static HASH_KEY: OnceLock<[u8; 16]> = OnceLock::new();

fn hash_key() -> &'static [u8; 16] {
    HASH_KEY.get_or_init(|| {
        use rand::RngCore;
        let mut key = [0; 16];
        rand::rngs::OsRng.fill_bytes(&mut key);
        key
    })
}

/// Draws this process's hash key now, if it is not drawn yet: at start ([`super::Authenticator::new`]),
/// so that the operating system's random generator is asked before the first request, not
/// during it.
pub fn draw_hash_key() {
    hash_key();
}

/// A session token with its cache key ([`token_digest`]), computed once for the cache probe and
/// the cold path after it. The key can only come from the token itself: a session verified
/// from one token is never cached under another's key.
#[derive(Clone, Copy)]
pub struct KeyedToken<'a> {
    text: &'a str,
    digest: TokenDigest,
}

impl<'a> KeyedToken<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            digest: token_digest(text),
        }
    }

    /// The token itself.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Its cache key.
    pub fn digest(&self) -> &TokenDigest {
        &self.digest
    }
}

/// The key under which the verification of `token` is cached (see the module's doc).
pub fn token_digest(token: &str) -> TokenDigest {
    let mut hasher = SipHasher13::new_with_key(hash_key());
    hasher.write(token.as_bytes());
    hasher.finish128().as_u128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_keeps_its_key_and_any_byte_changed_changes_it() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWFsaWNl";
        let key = token_digest(token);
        assert_eq!(token_digest(token), key, "one token, one key");
        assert_eq!(KeyedToken::new(token).digest(), &key);
        // The whole token counts: its first byte, one in the middle, its last, and its length.
        for at in [0, token.len() / 2, token.len() - 1] {
            let mut other = token.as_bytes().to_vec();
            other[at] ^= 1;
            let other = String::from_utf8(other).unwrap();
            assert_ne!(token_digest(&other), key, "byte {at} changed");
        }
        assert_ne!(token_digest(&token[..token.len() - 1]), key);
        assert_ne!(token_digest(&format!("{token}=")), key);
    }

    #[test]
    fn the_hash_is_keyed_by_this_process() {
        // Not SipHash under the all-zero key, which anyone could compute offline.
        let mut public = SipHasher13::new_with_key(&[0; 16]);
        public.write(b"a.b.c");
        assert_ne!(token_digest("a.b.c"), public.finish128().as_u128());
    }
}
