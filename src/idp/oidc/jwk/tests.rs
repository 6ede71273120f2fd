//! Unit tests of the parent module: ring's check agrees with `openidconnect`'s own, refuses what
//! that one refuses, and only takes the keys it is meant to.
use super::*;
use crate::jwt::{JwtKeys, KeyMaterial};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// A token signed with the RS256 test key, and that key's JWK (with `kid`, `alg`, `use`).
fn signed() -> (String, Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rs256.pem");
    let material = KeyMaterial::load_signing("RS256", &path, "k1").unwrap();
    let keys = JwtKeys::new(&material, &[], &["http://issuer".into()]).unwrap();
    let token = keys
        .sign_any(&json!({"sub": "someone", "iss": "http://issuer"}))
        .unwrap();
    (token, keys.jwks()["keys"][0].clone())
}

/// The signed part and the signature of `token`.
fn parts(token: &str) -> (&[u8], Vec<u8>) {
    let (message, signature) = token.rsplit_once('.').unwrap();
    (
        message.as_bytes(),
        URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
}

fn key(jwk: &Value) -> FastJwk {
    serde_json::from_value(jwk.clone()).unwrap()
}

const RS256: CoreJwsSigningAlgorithm = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;

#[test]
fn ring_checks_an_rs256_signature_as_openidconnect_does() {
    let (token, jwk) = signed();
    let fast = key(&jwk);
    assert!(fast.rsa.is_some(), "a 2048-bit key goes to ring");
    let (message, signature) = parts(&token);
    assert!(fast.verify_signature(&RS256, message, &signature).is_ok());
    assert!(fast
        .core
        .verify_signature(&RS256, message, &signature)
        .is_ok());

    // One bit of the signature, or of the message, changed: both refuse.
    let mut forged = signature.clone();
    forged[100] ^= 1;
    assert!(fast.verify_signature(&RS256, message, &forged).is_err());
    assert!(fast
        .core
        .verify_signature(&RS256, message, &forged)
        .is_err());
    let mut altered = message.to_vec();
    altered[10] ^= 1;
    assert!(fast.verify_signature(&RS256, &altered, &signature).is_err());
    // A signature one byte short (ring and the `rsa` crate both want the modulus' length).
    assert!(fast
        .verify_signature(&RS256, message, &signature[1..])
        .is_err());
    // The same key and signature under another hash.
    let rs512 = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512;
    let mut any_alg = jwk.clone();
    any_alg.as_object_mut().unwrap().remove("alg");
    assert!(key(&any_alg)
        .verify_signature(&rs512, message, &signature)
        .is_err());
}

#[test]
fn a_key_not_for_this_signature_is_refused_before_ring_looks_at_it() {
    let (token, jwk) = signed();
    let (message, signature) = parts(&token);
    let refused = |changed: Value| {
        let fast = key(&changed);
        assert!(fast.rsa.is_some());
        let ours = fast.verify_signature(&RS256, message, &signature);
        let theirs = fast.core.verify_signature(&RS256, message, &signature);
        assert!(
            matches!(ours, Err(SignatureVerificationError::InvalidKey(_))),
            "{changed}: {ours:?}"
        );
        assert!(theirs.is_err(), "{changed}");
    };
    let mut encryption = jwk.clone();
    encryption["use"] = json!("enc");
    refused(encryption);
    let mut other_alg = jwk.clone();
    other_alg["alg"] = json!("RS384");
    refused(other_alg);
    let mut not_signing = jwk.clone();
    not_signing["alg"] = json!("A256GCM");
    refused(not_signing);
}

#[test]
fn a_modulus_with_a_leading_zero_is_the_same_key() {
    let (token, jwk) = signed();
    let (message, signature) = parts(&token);
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let mut padded = jwk.clone();
    padded["n"] = json!(URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat()));
    let fast = key(&padded);
    assert_eq!(fast.rsa.as_ref().unwrap().n, n);
    assert!(fast.verify_signature(&RS256, message, &signature).is_ok());
}

#[test]
fn keys_ring_would_not_take_as_they_stand_stay_with_openidconnect() {
    let rsa = |n: Vec<u8>, e: &[u8]| {
        let jwk =
            json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)});
        key(&jwk).rsa
    };
    let modulus = |bytes: usize| {
        let mut n = vec![0xC5; bytes];
        n[bytes - 1] |= 1;
        n
    };
    assert!(rsa(modulus(256), &[1, 0, 1]).is_some());
    assert!(rsa(modulus(512), &[1, 0, 1]).is_some());
    assert!(rsa(modulus(513), &[1, 0, 1]).is_none(), "over 4096 bits");
    assert!(rsa(modulus(128), &[1, 0, 1]).is_none(), "1024 bits");
    let mut short = modulus(256);
    short[0] = 0x7F;
    assert!(rsa(short, &[1, 0, 1]).is_none(), "2047 bits");
    assert!(rsa(modulus(256), &[2]).is_none(), "an even exponent");
    assert!(rsa(modulus(256), &[1]).is_none(), "an exponent under 3");
    assert!(rsa(modulus(256), &[1, 0, 0, 0, 1]).is_none(), "2³² + 1");
    assert_eq!(rsa(modulus(256), &[0, 1, 0, 1]).unwrap().e, [1, 0, 1]);
    assert!(
        key(&json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}))
            .rsa
            .is_none()
    );
}

#[test]
fn the_key_reads_and_writes_as_openidconnect_does() {
    let (_, jwk) = signed();
    let fast = key(&jwk);
    let core: CoreJsonWebKey = serde_json::from_value(jwk.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&fast).unwrap(),
        serde_json::to_value(&core).unwrap()
    );
    assert_eq!(fast.key_id().map(|k| k.as_str()), Some("k1"));
}
