//! The client's own private key for `auth_method = "private_key_jwt"` (`client_key_file`): a
//! PEM file holding an RSA key (RS256; PKCS#8 or PKCS#1) or a P-256 key (ES256; PKCS#8 or
//! SEC1), the public JWK registered at the IdP, and its `kid`.
//!
//! The `kid` is `client_key_id` when given, else the key's RFC 7638 thumbprint (SHA-256 of the
//! public key's required members, base64url): the value `idgate keygen --public-jwk` prints, so
//! the JWK pasted into the IdP and the assertions idgate signs agree without configuring it.
//!
//! The file is a secret: errors name its path and what is wrong, never its content.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Largest key file read: an RSA 4096-bit PEM is about 3.3 KiB.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// Smallest RSA modulus accepted (RFC 7518 §3.3 asks for 2048 bits or more).
const MIN_RSA_BITS: usize = 2048;

/// A loaded client key, ready to sign client assertions.
pub struct ClientKey {
    /// RS256 or ES256.
    pub alg: Algorithm,
    /// The `kid` put in every assertion's header.
    pub kid: String,
    /// The private key, for jsonwebtoken.
    encoding: EncodingKey,
    /// The same key for AWS-LC, which signs an assertion in a fraction of jsonwebtoken's time
    /// (RS256 0.36 ms against 1.6 with the pure-Rust `rsa`, ES256 0.02 ms against 0.39 with
    /// `p256`, on the Xeon of docs/benchmarks.md: every token request of a login or a refresh
    /// signs one); `None` if AWS-LC refuses the key, which then signs through jsonwebtoken.
    native: Option<crate::jwt::NativeSigner>,
    /// Every assertion's header (`alg` and `kid`), and the same encoded.
    header: jsonwebtoken::Header,
    header_b64: String,
    /// The public JWK (`kty` and its members, `kid`, `alg`, `use: sig`).
    pub jwk: Value,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Reads the key at `path`; `kid` overrides the thumbprint. Errors name the path only.
    pub fn load(path: &Path, kid: Option<&str>) -> Result<Self, String> {
        use std::io::Read;
        let shown = path.display();
        let file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
        let mut bytes = Vec::new();
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{shown}: {e}"))?;
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(format!(
                "{shown}: over {MAX_KEY_FILE_BYTES} bytes, not a PEM private key"
            ));
        }
        Self::from_pem(&bytes, kid).map_err(|why| format!("{shown}: {why}"))
    }

    /// The key in `pem` (RSA or P-256 private key); `kid` overrides the thumbprint.
    pub fn from_pem(pem: &[u8], kid: Option<&str>) -> Result<Self, String> {
        let refused = "not an RSA (RS256) or P-256 (ES256) private key in PEM (PKCS#8, PKCS#1 \
                       or SEC1)";
        let text = std::str::from_utf8(pem).map_err(|_| refused.to_owned())?;
        let (alg, encoding, native, public) = if let Some(key) = rsa_key(text) {
            use rsa::pkcs8::EncodePrivateKey;
            use rsa::traits::PublicKeyParts;
            let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
            if n.len() * 8 < MIN_RSA_BITS {
                return Err(format!(
                    "an RSA key of {} bits: RS256 client keys need at least {MIN_RSA_BITS}",
                    n.len() * 8
                ));
            }
            let encoding = EncodingKey::from_rsa_pem(pem).map_err(|_| refused.to_owned())?;
            let native = key
                .to_pkcs8_der()
                .ok()
                .and_then(|der| crate::jwt::NativeSigner::rsa(der.as_bytes()));
            let public = json!({"e": b64(&e), "kty": "RSA", "n": b64(&n)});
            (Algorithm::RS256, encoding, native, public)
        } else if let Some(key) = p256_key(text) {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            use p256::pkcs8::EncodePrivateKey;
            let point = key.public_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(refused.to_owned());
            };
            // jsonwebtoken reads PKCS#8 only: a SEC1 file is converted first.
            let der = key.to_pkcs8_der().map_err(|_| refused.to_owned())?;
            let encoding = EncodingKey::from_ec_der(der.as_bytes());
            let native = crate::jwt::NativeSigner::es256(der.as_bytes());
            let public = json!({"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)});
            (Algorithm::ES256, encoding, native, public)
        } else {
            return Err(refused.to_owned());
        };
        let kid = match kid {
            Some(k) => k.to_owned(),
            None => thumbprint(&public),
        };
        let mut jwk = public;
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("kid".into(), kid.clone().into());
            obj.insert("alg".into(), alg_name(alg).into());
            obj.insert("use".into(), "sig".into());
        }
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.clone());
        let header_b64 = crate::jwt::encode_header(&header)?;
        Ok(Self {
            alg,
            kid,
            encoding,
            native,
            header,
            header_b64,
            jwk,
        })
    }

    /// A client assertion: `claims` signed under this key's header (`alg`, `kid`).
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, String> {
        match &self.native {
            Some(native) => native.sign_jws(&self.header_b64, claims),
            None => jsonwebtoken::encode(&self.header, claims, &self.encoding)
                .map_err(|e| e.to_string()),
        }
    }
}

/// `RS256` or `ES256`.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        _ => "RS256",
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA private key in PKCS#8 or PKCS#1 PEM.
fn rsa_key(text: &str) -> Option<rsa::RsaPrivateKey> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(text)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(text))
        .ok()
}

/// A P-256 private key in PKCS#8 or SEC1 (`EC PRIVATE KEY`) PEM.
fn p256_key(text: &str) -> Option<p256::SecretKey> {
    use p256::pkcs8::DecodePrivateKey;
    p256::SecretKey::from_pkcs8_pem(text)
        .or_else(|_| p256::SecretKey::from_sec1_pem(text))
        .ok()
}

/// RFC 7638: SHA-256 over the JSON of the required members, in lexicographic order, no
/// whitespace (serde_json's maps are ordered by key, and `public` holds only those members).
fn thumbprint(public: &Value) -> String {
    let canonical = public.to_string();
    b64(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_is_rfc_7638s_example() {
        // RFC 7638 §3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let public = json!({"e": "AQAB", "kty": "RSA", "n": n});
        assert_eq!(
            thumbprint(&public),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn rsa_and_p256_keys_load_with_their_public_jwk() {
        let rsa = ClientKey::load(&fixture("rs256.pem"), None).unwrap();
        assert_eq!(rsa.alg, Algorithm::RS256);
        assert_eq!(rsa.jwk["kty"], "RSA");
        assert_eq!(rsa.jwk["alg"], "RS256");
        assert_eq!(rsa.jwk["use"], "sig");
        assert_eq!(rsa.jwk["kid"], rsa.kid.as_str());
        assert!(
            rsa.jwk.get("d").is_none(),
            "the private exponent is never published"
        );
        let ec = ClientKey::load(&fixture("es256.pem"), Some("mine")).unwrap();
        assert_eq!(ec.alg, Algorithm::ES256);
        assert_eq!(ec.kid, "mine");
        assert_eq!(ec.jwk["crv"], "P-256");
        assert_eq!(ec.jwk["alg"], "ES256");
        assert!(ec.jwk.get("d").is_none());
        // What a log line shows of a key: its algorithm and id, never the key.
        let shown = format!("{ec:?}");
        assert!(shown.starts_with("ClientKey"), "{shown}");
        assert!(
            shown.contains("ES256") && shown.contains("\"mine\""),
            "{shown}"
        );
        assert!(
            !shown.contains("BEGIN") && !shown.contains("encoding"),
            "{shown}"
        );
    }

    /// A key file is read up to 16 KiB and judged on what it holds; one byte more is refused
    /// unread, with its size.
    #[test]
    fn a_key_file_is_read_up_to_16_kib_and_not_a_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let of_len = |len: usize| {
            let path = dir.path().join(format!("key-{len}.pem"));
            std::fs::write(&path, vec![b'x'; len]).unwrap();
            path
        };
        let bound = MAX_KEY_FILE_BYTES as usize;
        let at = ClientKey::load(&of_len(bound), None).unwrap_err();
        assert!(at.contains("not an RSA (RS256) or P-256 (ES256)"), "{at}");
        let over = ClientKey::load(&of_len(bound + 1), None).unwrap_err();
        assert!(
            over.ends_with("over 16384 bytes, not a PEM private key"),
            "{over}"
        );
    }

    /// Both kinds of key sign with AWS-LC. RS256 (PKCS#1 v1.5, deterministic) gives the very
    /// assertion jsonwebtoken gives; ES256 (randomised) one that jsonwebtoken verifies with the
    /// published JWK, its signature in JWS's fixed r‖s form.
    #[test]
    fn assertions_sign_with_aws_lc_as_jsonwebtoken_would() {
        let claims = json!({"iss": "idgate", "sub": "idgate", "aud": "https://idp/token", "exp": 4_000_000_000u64});
        for (file, alg) in [
            ("rs256.pem", Algorithm::RS256),
            ("es256.pem", Algorithm::ES256),
        ] {
            let key = ClientKey::load(&fixture(file), None).unwrap();
            assert!(key.native.is_some(), "{file}: AWS-LC refused it");
            let ours = key.sign(&claims).unwrap();
            let theirs = jsonwebtoken::encode(&key.header, &claims, &key.encoding).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
            let public = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(alg);
            validation.set_audience(&["https://idp/token"]);
            let verified = jsonwebtoken::decode::<Value>(&ours, &public, &validation).unwrap();
            assert_eq!(verified.claims, claims, "{file}");
            assert_eq!(verified.header.kid.as_deref(), Some(key.kid.as_str()));
            match alg {
                Algorithm::RS256 => assert_eq!(ours, theirs),
                _ => {
                    let (head, signature) = ours.rsplit_once('.').unwrap();
                    assert_eq!(head, theirs.rsplit_once('.').unwrap().0);
                    assert_eq!(URL_SAFE_NO_PAD.decode(signature).unwrap().len(), 64);
                }
            }
        }
    }

    #[test]
    fn a_sec1_p256_key_loads_like_its_pkcs8_form() {
        use p256::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(fixture("es256.pem")).unwrap();
        let key = p256::SecretKey::from_pkcs8_pem(&pem).unwrap();
        let sec1 = key.to_sec1_pem(Default::default()).unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let from_sec1 = ClientKey::from_pem(sec1.as_bytes(), None).unwrap();
        let from_pkcs8 = ClientKey::from_pem(pem.as_bytes(), None).unwrap();
        assert_eq!(from_sec1.jwk, from_pkcs8.jwk);
    }

    #[test]
    fn a_short_rsa_key_is_refused() {
        use rsa::pkcs8::EncodePrivateKey;
        let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pem = small.to_pkcs8_pem(Default::default()).unwrap();
        let e = ClientKey::from_pem(pem.as_bytes(), None).unwrap_err();
        assert_eq!(
            e,
            "an RSA key of 1024 bits: RS256 client keys need at least 2048"
        );
    }

    #[test]
    fn other_files_are_refused_by_path_without_their_content() {
        let e = ClientKey::load(&fixture("ed25519.pem"), None).unwrap_err();
        assert!(
            e.starts_with(&fixture("ed25519.pem").display().to_string()),
            "{e}"
        );
        assert!(
            e.contains("not an RSA (RS256) or P-256 (ES256) private key"),
            "{e}"
        );
        let public = ClientKey::load(&fixture("rs256.pub.pem"), None).unwrap_err();
        assert!(!public.contains("BEGIN"), "{public}");
        assert!(ClientKey::load(&fixture("no-such.pem"), None)
            .unwrap_err()
            .contains("no-such.pem"));
    }
}
