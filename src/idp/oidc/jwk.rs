//! The IdP's signing keys as the id_token verifier holds them: `openidconnect`'s own key type,
//! with RSA PKCS#1 v1.5 signatures (RS256, RS384, RS512: what Keycloak, Okta, Entra ID, Google
//! and Auth0 sign with by default) checked by ring instead of the pure-Rust `rsa` crate behind
//! `openidconnect`. Every login checks one id_token: ring takes about a tenth of the time
//! (`scripts/bench-peer`, `/oauth/token` own time).
//!
//! Nothing else changes: which keys a token may be checked with, and every claim check, stay
//! `openidconnect`'s. A key ring does not take as it stands (a modulus under 2048 or over 4096
//! bits, an unusual exponent) and every other algorithm go to `openidconnect`'s own check, as
//! before.

use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm,
    SignatureVerificationError,
};

/// A JWKS key: `openidconnect`'s, plus its RSA public key in the form ring checks with.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(from = "CoreJsonWebKey", into = "CoreJsonWebKey")]
pub(super) struct FastJwk {
    core: CoreJsonWebKey,
    /// The RSA key for ring, when the key is one ring takes (see [`RsaKey::of`]).
    rsa: Option<RsaKey>,
}

/// An RSA public key's modulus and exponent, big-endian without leading zeros (ring refuses
/// them; some IdPs publish `n` with one).
#[derive(Clone, Debug)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

/// Bounds of the modulus ring checks here: ring's own lower bound, and the `rsa` crate's upper
/// one (`openidconnect` refused larger keys before, and still does).
const MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

impl RsaKey {
    /// The RSA key of `core`, if it is one and ring takes it as it stands: a modulus of
    /// [`MODULUS_BITS`], an odd exponent from 3 to 2³² − 1.
    fn of(core: &CoreJsonWebKey) -> Option<Self> {
        if *core.key_type() != CoreJsonWebKeyType::RSA {
            return None;
        }
        let json = serde_json::to_value(core).ok()?;
        let component = |name: &str| -> Option<Vec<u8>> {
            use base64::Engine as _;
            let text = json.get(name)?.as_str()?;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .ok()?;
            let first = bytes.iter().position(|b| *b != 0)?;
            Some(bytes[first..].to_vec())
        };
        let (n, e) = (component("n")?, component("e")?);
        let bits = n.len() * 8 - n[0].leading_zeros() as usize;
        let exponent = e.iter().try_fold(0u64, |acc, b| {
            (acc < 1 << 32).then(|| acc << 8 | u64::from(*b))
        })?;
        let exponent_ok = (3..1 << 32).contains(&exponent) && exponent % 2 == 1;
        (MODULUS_BITS.contains(&bits) && exponent_ok).then_some(Self { n, e })
    }
}

impl From<CoreJsonWebKey> for FastJwk {
    fn from(core: CoreJsonWebKey) -> Self {
        let rsa = RsaKey::of(&core);
        Self { core, rsa }
    }
}

impl From<FastJwk> for CoreJsonWebKey {
    fn from(key: FastJwk) -> Self {
        key.core
    }
}

/// The checks `openidconnect` makes before using a key for `alg` (its
/// `check_key_compatibility`, which it does not export): a key for signatures, of `alg`'s type,
/// announced for `alg` or for no algorithm.
fn compatible(key: &FastJwk, alg: &CoreJwsSigningAlgorithm) -> Result<(), &'static str> {
    if key.key_use().is_some_and(|u| !u.allows_signature()) {
        return Err("key usage not permitted for digital signatures");
    }
    if alg.key_type().as_ref() != Some(key.key_type()) {
        return Err("key type does not match signature algorithm");
    }
    match key.signing_alg() {
        JsonWebKeyAlgorithm::Unspecified => Ok(()),
        JsonWebKeyAlgorithm::Algorithm(a) if a == alg => Ok(()),
        JsonWebKeyAlgorithm::Algorithm(_) => Err("incompatible key algorithm"),
        JsonWebKeyAlgorithm::Unsupported => Err("key algorithm is not a signing algorithm"),
    }
}

impl JsonWebKey for FastJwk {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        CoreJsonWebKey::new_symmetric(key).into()
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        use ring::signature as sig;
        let ring_alg = match alg {
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            _ => return self.core.verify_signature(alg, message, signature),
        };
        let Some(rsa) = &self.rsa else {
            return self.core.verify_signature(alg, message, signature);
        };
        compatible(self, alg).map_err(|e| SignatureVerificationError::InvalidKey(e.into()))?;
        sig::RsaPublicKeyComponents {
            n: &rsa.n,
            e: &rsa.e,
        }
        .verify(ring_alg, message, signature)
        .map_err(|_| SignatureVerificationError::CryptoError("bad signature".into()))
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests;
