//! The keys of idgate's session tokens: the algorithms, loading a signing key (PEM, or a shared
//! secret file for HS256) or a verification-only key, the JWK each publishes, and `idgate keygen`,
//! which writes a new one.

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
    EdDsa,
    Hs256,
}

impl Algorithm {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            "HS256" => Ok(Self::Hs256),
            other => Err(format!(
                "algorithm `{other}` is not one of RS256, ES256, EdDSA, HS256"
            )),
        }
    }

    pub(super) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
        }
    }
}

/// One key: what it signs with (when it is the signing key), what it verifies with, and the JWK
/// it publishes (none for HS256: a shared secret is never published).
pub struct KeyMaterial {
    pub algorithm: Algorithm,
    pub key_id: String,
    pub(super) encoding: Option<Signer>,
    pub(super) decoding: DecodingKey,
    pub(super) jwk: Option<Value>,
    /// The key file's bytes, from which the at-rest token key is derived when none is configured.
    secret_bytes: Vec<u8>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// What signs idgate's tokens: jsonwebtoken, or a native library where it is much faster (every
/// login, refresh and renewal signs a token, and so does a location asking for a scoped token):
///
/// - RS256 with AWS-LC's RSA (aws-lc-rs): a 2048-bit signature takes it about half the time it
///   takes ring and a tenth of what the pure-Rust `rsa` crate behind jsonwebtoken's
///   `rust_crypto` backend takes (`scripts/bench-peer`, `/oauth/token` own time). A key AWS-LC
///   refuses (under 2048 bits) signs through jsonwebtoken. PKCS#1 v1.5 is deterministic: both
///   give the same token.
/// - ES256 with AWS-LC's ECDSA, on a key parsed once: jsonwebtoken parses the PKCS#8 key for
///   every token and signs with the pure-Rust `p256`, about 390 µs a token here against 20.
///   ECDSA signatures are randomised: the tokens differ, and verify alike.
/// - EdDSA with ed25519-dalek, the crate jsonwebtoken signs with, on a key parsed once:
///   jsonwebtoken parses the key and derives its public half for every token (38 µs a token
///   here, against 17). Ed25519 is deterministic: both give the same token.
#[derive(Clone)]
pub(super) enum Signer {
    Jwt(EncodingKey),
    Native(NativeSigner),
}

/// A key a native library signs with (see [`Signer`]); client assertions
/// (`private_key_jwt`) sign with one too.
#[derive(Clone)]
pub enum NativeSigner {
    Rsa(Arc<aws_lc_rs::signature::RsaKeyPair>),
    Es256(Arc<aws_lc_rs::signature::EcdsaKeyPair>),
    Ed25519(Arc<ed25519_dalek::SigningKey>),
}

impl NativeSigner {
    /// An RS256 key from its PKCS#8 DER: `None` when AWS-LC refuses it (under 2048 bits).
    pub fn rsa(pkcs8_der: &[u8]) -> Option<Self> {
        aws_lc_rs::signature::RsaKeyPair::from_pkcs8(pkcs8_der)
            .ok()
            .map(|pair| Self::Rsa(Arc::new(pair)))
    }

    /// An ES256 (P-256) key from its PKCS#8 DER: `None` when AWS-LC refuses it.
    pub fn es256(pkcs8_der: &[u8]) -> Option<Self> {
        aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8_der,
        )
        .ok()
        .map(|pair| Self::Es256(Arc::new(pair)))
    }

    /// The compact JWS of `claims` under `header_b64` (a header [`encode_header`] made for this
    /// key's algorithm): `header.payload.signature`, as `jsonwebtoken::encode` writes it.
    pub fn sign_jws<T: serde::Serialize>(
        &self,
        header_b64: &str,
        claims: &T,
    ) -> Result<String, String> {
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut token = format!("{header_b64}.{}", b64(&payload));
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }

    /// The signature of `message` (the token's first two segments), as the JWS format wants it.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match self {
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut signature,
                )
                .map_err(|_| "RSA signing failed".to_owned())?;
                Ok(signature)
            }
            // The fixed encoding: r and s, 32 bytes each, as JWS's ES256 wants them.
            Self::Es256(pair) => pair
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_owned()),
            Self::Ed25519(key) => Ok(ed25519_dalek::Signer::sign(key.as_ref(), message)
                .to_bytes()
                .to_vec()),
        }
    }
}

pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The native signer when the native library took the key, else jsonwebtoken's `jwt()`.
fn native_or_jwt(
    native: Option<NativeSigner>,
    jwt: impl FnOnce() -> Result<EncodingKey, String>,
) -> Result<Signer, String> {
    match native {
        Some(native) => Ok(Signer::Native(native)),
        None => jwt().map(Signer::Jwt),
    }
}

/// A JWS header, encoded as `jsonwebtoken::encode` encodes it (its JSON, base64url).
pub fn encode_header(header: &jsonwebtoken::Header) -> Result<String, String> {
    serde_json::to_vec(header)
        .map(|json| b64(&json))
        .map_err(|e| format!("the token header: {e}"))
}

impl KeyMaterial {
    /// Loads a private key (or HS256 secret) able to sign.
    pub fn load_signing(alg: &str, path: &Path, key_id: &str) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::signing_from_bytes(alg, bytes, &path.display().to_string(), key_id)
    }

    /// A signing key given by value (`source` names where it came from, for messages), e.g. an
    /// HS256 secret from the original service's `MIA_JWT_TOKEN_SIGN_KEY`.
    pub fn signing_from_bytes(
        alg: &str,
        bytes: Vec<u8>,
        source: &str,
        key_id: &str,
    ) -> Result<Self, String> {
        let algorithm = Algorithm::parse(alg)?;
        let bad = |e: &dyn std::fmt::Display| {
            format!("{source} is not a {} private key: {e}", algorithm.name())
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(&e))?;
        let (encoding, decoding, jwk) = match algorithm {
            Algorithm::Rs256 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::DecodePrivateKey;
                use rsa::traits::PublicKeyParts;
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(text)
                    .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(text))
                    .map_err(|e| bad(&e))?;
                let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
                use rsa::pkcs8::EncodePrivateKey;
                let fast_key = key
                    .to_pkcs8_der()
                    .ok()
                    .and_then(|der| NativeSigner::rsa(der.as_bytes()));
                (
                    native_or_jwt(fast_key, || {
                        EncodingKey::from_rsa_pem(&bytes).map_err(|e| bad(&e))
                    })?,
                    DecodingKey::from_rsa_raw_components(&n, &e),
                    Some(json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)})),
                )
            }
            Algorithm::Es256 => {
                use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
                let key = p256::SecretKey::from_pkcs8_pem(text).map_err(|e| bad(&e))?;
                let (x, y) = ec_coordinates(&key.public_key());
                let fast_key = key
                    .to_pkcs8_der()
                    .ok()
                    .and_then(|der| NativeSigner::es256(der.as_bytes()));
                (
                    native_or_jwt(fast_key, || {
                        EncodingKey::from_ec_pem(&bytes).map_err(|e| bad(&e))
                    })?,
                    DecodingKey::from_ec_components(&x, &y).map_err(|e| bad(&e))?,
                    Some(json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})),
                )
            }
            Algorithm::EdDsa => {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(text).map_err(|e| bad(&e))?;
                let x = b64(key.verifying_key().as_bytes());
                (
                    Signer::Native(NativeSigner::Ed25519(Arc::new(key))),
                    DecodingKey::from_ed_components(&x).map_err(|e| bad(&e))?,
                    Some(json!({"kty": "OKP", "crv": "Ed25519", "x": x})),
                )
            }
            Algorithm::Hs256 => {
                let secret = text.trim().as_bytes();
                if secret.len() < 32 {
                    return Err(format!("{source}: an HS256 secret needs at least 32 bytes"));
                }
                (
                    Signer::Jwt(EncodingKey::from_secret(secret)),
                    DecodingKey::from_secret(secret),
                    None,
                )
            }
        };
        Ok(Self {
            algorithm,
            key_id: key_id.to_owned(),
            encoding: Some(encoding),
            decoding,
            jwk: jwk.map(|j| with_common(j, algorithm, key_id)),
            secret_bytes: bytes,
        })
    }

    /// Loads a public key (or HS256 secret) that only verifies.
    pub fn load_verifying(alg: &str, path: &Path, key_id: &str) -> Result<Self, String> {
        let algorithm = Algorithm::parse(alg)?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bad = |e: &dyn std::fmt::Display| {
            format!(
                "{} is not a {} public key: {e}",
                path.display(),
                algorithm.name()
            )
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(&e))?;
        let (decoding, jwk) = match algorithm {
            Algorithm::Rs256 => {
                use rsa::pkcs1::DecodeRsaPublicKey;
                use rsa::pkcs8::DecodePublicKey;
                use rsa::traits::PublicKeyParts;
                let key = rsa::RsaPublicKey::from_public_key_pem(text)
                    .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(text))
                    .map_err(|e| bad(&e))?;
                let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
                (
                    DecodingKey::from_rsa_raw_components(&n, &e),
                    Some(json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)})),
                )
            }
            Algorithm::Es256 => {
                use p256::pkcs8::DecodePublicKey;
                let key = p256::PublicKey::from_public_key_pem(text).map_err(|e| bad(&e))?;
                let (x, y) = ec_coordinates(&key);
                (
                    DecodingKey::from_ec_components(&x, &y).map_err(|e| bad(&e))?,
                    Some(json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})),
                )
            }
            Algorithm::EdDsa => {
                use ed25519_dalek::pkcs8::DecodePublicKey;
                let key =
                    ed25519_dalek::VerifyingKey::from_public_key_pem(text).map_err(|e| bad(&e))?;
                let x = b64(key.as_bytes());
                (
                    DecodingKey::from_ed_components(&x).map_err(|e| bad(&e))?,
                    Some(json!({"kty": "OKP", "crv": "Ed25519", "x": x})),
                )
            }
            Algorithm::Hs256 => (DecodingKey::from_secret(text.trim().as_bytes()), None),
        };
        Ok(Self {
            algorithm,
            key_id: key_id.to_owned(),
            encoding: None,
            decoding,
            jwk: jwk.map(|j| with_common(j, algorithm, key_id)),
            secret_bytes: Vec::new(),
        })
    }

    pub fn secret_bytes(&self) -> &[u8] {
        &self.secret_bytes
    }
}

fn ec_coordinates(key: &p256::PublicKey) -> (String, String) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = key.to_encoded_point(false);
    let x = point.x().map(|x| b64(x)).unwrap_or_default();
    let y = point.y().map(|y| b64(y)).unwrap_or_default();
    (x, y)
}

fn with_common(mut jwk: Value, alg: Algorithm, kid: &str) -> Value {
    if let Some(obj) = jwk.as_object_mut() {
        obj.insert("kid".into(), kid.into());
        obj.insert("alg".into(), alg.name().into());
        obj.insert("use".into(), "sig".into());
    }
    jwk
}

/// Writes a new signing key to `out` (mode 0600), refusing to overwrite an existing file.
pub fn keygen(alg: &str, out: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut rng = rand::rngs::OsRng;
    let text = match Algorithm::parse(alg).map_err(anyhow::Error::msg)? {
        Algorithm::Rs256 => {
            use rsa::pkcs8::EncodePrivateKey;
            rsa::RsaPrivateKey::new(&mut rng, 2048)?
                .to_pkcs8_pem(Default::default())?
                .to_string()
        }
        Algorithm::Es256 => {
            use p256::pkcs8::EncodePrivateKey;
            p256::SecretKey::random(&mut rng)
                .to_pkcs8_pem(Default::default())?
                .to_string()
        }
        Algorithm::EdDsa => {
            use ed25519_dalek::pkcs8::EncodePrivateKey;
            ed25519_dalek::SigningKey::generate(&mut rng)
                .to_pkcs8_pem(Default::default())?
                .to_string()
        }
        Algorithm::Hs256 => format!("{}\n", crate::crypto::random_token()),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
