//! The cryptography jsonwebtoken runs on: its RustCrypto provider, except that an EdDSA
//! verifier reuses the public key it parsed for an earlier token instead of parsing it again.
//!
//! jsonwebtoken asks its process-wide provider for a verifier on every `decode`, and its
//! RustCrypto EdDSA verifier builds an `ed25519_dalek::VerifyingKey` from the key's 32 bytes
//! each time: the point's decompression, a square root in the field, about a tenth of each
//! EdDSA verification (`new_verifier`, 9 % of the samples of `examples/cold.rs` with EdDSA on
//! Redis). It is paid also where signature validation is off. Here each thread keeps the keys
//! it has parsed ([`KEPT`] at most, by their exact bytes); the verification itself is the same
//! call of the same crate (`VerifyingKey::verify`, as jsonwebtoken's verifier makes it). Every
//! other algorithm, and any key this cannot parse, goes to jsonwebtoken's own factory, which
//! answers as it always has.

use std::cell::RefCell;
use std::sync::LazyLock;

use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// Parsed keys a thread keeps: idgate's own (one, or a few while keys rotate) and the IdPs'
/// EdDSA keys that sign logout tokens and signed userinfo. The oldest goes first.
const KEPT: usize = 16;

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    verifier_factory: verifier,
    ..rust_crypto::DEFAULT_PROVIDER.clone()
});

thread_local! {
    static PARSED: RefCell<Vec<([u8; 32], VerifyingKey)>> = const { RefCell::new(Vec::new()) };
}

/// Makes this module's provider jsonwebtoken's for the process. It must run before
/// jsonwebtoken signs or verifies anything (the first use fixes the provider for good);
/// [`super::JwtKeys::new`] calls it first thing. Later calls do nothing.
pub(super) fn install() {
    // Err: a provider is in place already: this one, from an earlier call (or jsonwebtoken's
    // own, should something have used it first: it verifies the same, only slower).
    let _ = LazyLock::force(&PROVIDER).install_default();
}

fn verifier(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *algorithm == Algorithm::EdDSA && key.family() == AlgorithmFamily::Ed {
        // The first 32 bytes, as jsonwebtoken's own EdDSA verifier reads the key.
        if let Some(parsed) = key.as_bytes().get(..32).and_then(parsed_ed25519) {
            return Ok(Box::new(Ed25519(parsed)));
        }
    }
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

/// The key `bytes` encode, parsed on this thread before or now; `None` when they are not a
/// point of the curve.
fn parsed_ed25519(bytes: &[u8]) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    PARSED.with_borrow_mut(|kept| {
        if let Some((_, key)) = kept.iter().find(|(b, _)| *b == bytes) {
            return Some(*key);
        }
        let key = VerifyingKey::from_bytes(&bytes).ok()?;
        if kept.len() >= KEPT {
            kept.remove(0);
        }
        kept.push((bytes, key));
        Some(key)
    })
}

/// An EdDSA verifier on a parsed key.
struct Ed25519(VerifyingKey);

impl jsonwebtoken::signature::Verifier<Vec<u8>> for Ed25519 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> Result<(), jsonwebtoken::signature::Error> {
        // RFC 8032's check as jsonwebtoken's own EdDSA verifier makes it (not `verify_strict`).
        ed25519_dalek::Verifier::verify(&self.0, message, &Signature::from_slice(signature)?)
    }
}

impl JwtVerifier for Ed25519 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

/// The keys this thread holds parsed (tests).
#[cfg(test)]
pub(super) fn parsed_on_this_thread() -> Vec<[u8; 32]> {
    PARSED.with_borrow(|kept| kept.iter().map(|(bytes, _)| *bytes).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: fail loudly

    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;

    fn key(seed: u8) -> (SigningKey, DecodingKey) {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let public = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        (signing, public)
    }

    fn accepts(key: &DecodingKey, message: &[u8], signature: &[u8]) -> bool {
        verifier(&Algorithm::EdDSA, key)
            .unwrap()
            .verify(message, &signature.to_vec())
            .is_ok()
    }

    #[test]
    fn a_parsed_key_is_reused_and_never_stands_for_another() {
        let (signing_a, a) = key(1);
        let (signing_b, b) = key(2);
        let message = b"header.payload";
        let (by_a, by_b) = (signing_a.sign(message), signing_b.sign(message));
        for _ in 0..2 {
            // Each key accepts its own signature only, parsed now or reused.
            assert!(accepts(&a, message, &by_a.to_bytes()));
            assert!(!accepts(&a, message, &by_b.to_bytes()));
            assert!(accepts(&b, message, &by_b.to_bytes()));
            assert!(!accepts(&b, message, &by_a.to_bytes()));
            assert!(!accepts(&a, b"header.other", &by_a.to_bytes()));
            // Not a signature's 64 bytes.
            assert!(!accepts(&a, message, &by_a.to_bytes()[..63]));
        }
        // Each parsed once, and kept.
        let kept = parsed_on_this_thread();
        assert_eq!(
            kept,
            [a.as_bytes(), b.as_bytes()].map(|k| <[u8; 32]>::try_from(k).unwrap())
        );
    }

    #[test]
    fn a_thread_keeps_sixteen_keys_the_oldest_going_first() {
        let keys: Vec<_> = (1..=KEPT as u8 + 2).map(key).collect();
        for (signing, public) in &keys {
            assert!(accepts(public, b"m", &signing.sign(b"m").to_bytes()));
        }
        let kept = parsed_on_this_thread();
        assert_eq!(kept.len(), KEPT);
        // The first two went; the last is the newest.
        assert_eq!(kept[0], keys[2].0.verifying_key().to_bytes());
        assert_eq!(kept[KEPT - 1], keys[KEPT + 1].0.verifying_key().to_bytes());
    }

    #[test]
    fn other_keys_and_algorithms_are_jsonwebtokens_as_before() {
        // Not a point of the curve: refused by jsonwebtoken's own factory, as it always was,
        // and not kept.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(VerifyingKey::from_bytes(&not_a_point).is_err());
        let bad = DecodingKey::from_ed_der(&not_a_point);
        assert!(verifier(&Algorithm::EdDSA, &bad).is_err());
        assert!(parsed_on_this_thread().is_empty());
        // An RSA key: jsonwebtoken's RSA verifier.
        let rsa = DecodingKey::from_rsa_pem(include_bytes!("../../tests/fixtures/rs256.pub.pem"))
            .unwrap();
        let rs256 = verifier(&Algorithm::RS256, &rsa).unwrap();
        assert_eq!(rs256.algorithm(), Algorithm::RS256);
        // An Ed25519 key asked for another algorithm, and the bytes of one that are not an
        // Ed25519 key (an HMAC secret) asked for EdDSA: refused, as jsonwebtoken refuses them.
        let (_, ed) = key(7);
        assert!(verifier(&Algorithm::RS256, &ed).is_err());
        let secret = DecodingKey::from_secret(ed.as_bytes());
        assert!(verifier(&Algorithm::EdDSA, &secret).is_err());
        assert!(parsed_on_this_thread().is_empty());
    }
}
