//! idgate's own session tokens: signing, verification and the published JWKS.
//!
//! The signing key comes from a PEM file (RS256, ES256, EdDSA) or a shared secret file (HS256).
//! Extra verification keys let keys rotate: tokens signed by the previous key stay valid until
//! they expire. Verification selects the key by `kid` and accepts only that key's algorithm, so
//! `alg: none` and algorithm-confusion tokens fail before any signature check. Loading and
//! generating the keys is [`keys`]'s.

mod keys;
mod provider;
pub mod scoped;

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use keys::Signer;
pub use keys::{encode_header, keygen, Algorithm, KeyMaterial, NativeSigner};

/// The `user` claim: the merged identity (Mia's shape, camelCase).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserClaim {
    pub user_id: String,
    pub groups: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_user_id: Option<String>,
    #[serde(
        rename = "userSettingsURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_settings_url: Option<String>,
    /// Claims copied from the IdP at login by a provider's `claims_to_token` (Mia's
    /// `providerToTokenClaims`), under the names it gives; never one of the names above (the
    /// configuration refuses them).
    #[serde(flatten)]
    pub from_idp: std::collections::BTreeMap<String, Value>,
}

impl UserClaim {
    /// A user with `groups` and nothing else known (no e-mail, name, permissions…).
    pub fn new(user_id: impl Into<String>, groups: Vec<String>) -> Self {
        Self {
            user_id: user_id.into(),
            groups,
            email: None,
            name: None,
            username: None,
            permissions: None,
            metadata: None,
            provider_user_id: None,
            user_settings_url: None,
            from_idp: Default::default(),
        }
    }

    /// The member `name` of this claim as it serializes (`serde_json::to_value(self)[name]`),
    /// without serializing the rest: `/auth` picks the `user_properties` header's members so
    /// on every token's first use. `None` where serialization leaves the member out.
    pub fn member(&self, name: &str) -> Option<Value> {
        let text = |v: &str| Value::String(v.to_owned());
        let list = |v: &[String]| Value::Array(v.iter().map(|s| text(s)).collect());
        match name {
            "userId" => Some(text(&self.user_id)),
            "groups" => Some(list(&self.groups)),
            // Serialized as null when absent.
            "email" => Some(self.email.as_deref().map_or(Value::Null, text)),
            "name" => Some(self.name.as_deref().map_or(Value::Null, text)),
            "username" => self.username.as_deref().map(text),
            "permissions" => self.permissions.as_deref().map(list),
            "metadata" => self.metadata.clone(),
            "providerUserId" => self.provider_user_id.as_deref().map(text),
            "userSettingsURL" => self.user_settings_url.as_deref().map(text),
            other => self.from_idp.get(other).cloned(),
        }
    }
}

/// The session JWT's claims (SPEC §3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: String,
    pub user: UserClaim,
    /// The fingerprint of the users-store record the token was minted from
    /// (`users::fingerprint`, 16 hex digits): `/auth` compares it with the store's latest
    /// without reading the store (`session::refresh`). Absent from tokens minted before it
    /// existed and from those `idgate sessions mint` makes (their groups are the
    /// administrator's, not the store's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ufp: Option<String>,
    /// How the IdP authenticated the user at the session's login (OIDC's `acr`, `amr` and
    /// `auth_time`, as its id_token said), for the route rules that ask for more (step-up).
    /// Three plain fields rather than a flattened [`Authn`]: `flatten` would buffer every
    /// token's claims on the way to this struct, on the cold path of `/auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Claims {
    /// How the IdP authenticated the session's login.
    pub fn authn(&self) -> Authn {
        Authn {
            acr: self.acr.clone(),
            amr: self.amr.clone(),
            auth_time: self.auth_time,
        }
    }

    pub fn set_authn(&mut self, authn: Authn) {
        self.acr = authn.acr;
        self.amr = authn.amr;
        self.auth_time = authn.auth_time;
    }
}

/// How the identity provider authenticated the user at a login: the OIDC claims of the same
/// names, copied from its verified id_token. Empty for a provider that says nothing of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Authn {
    /// The authentication context class (`acr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods (`amr`), e.g. `pwd`, `otp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user authenticated at the IdP (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Authn {
    pub fn is_empty(&self) -> bool {
        self.acr.is_none() && self.amr.is_empty() && self.auth_time.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("token is malformed")]
    Malformed,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token has expired")]
    Expired,
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("token could not be signed: {0}")]
    Signing(String),
}

/// Signs with one key, verifies with all configured keys.
#[derive(Clone)]
pub struct JwtKeys {
    signing_header: Header,
    /// `signing_header` as it starts every token: base64url of its JSON.
    signing_header_b64: String,
    signing: Signer,
    verifying: HashMap<String, Verifying>,
    default_kid: String,
    jwks: Value,
}

/// One verification key, by `kid`.
#[derive(Clone)]
struct Verifying {
    algorithm: jsonwebtoken::Algorithm,
    key: DecodingKey,
    /// Signature, algorithm, `iss`, `exp` and the required claims.
    validation: Validation,
    /// The same without `exp` (`verify_ignoring_expiry`).
    validation_any_exp: Validation,
    /// The signature checked by a native library instead (see `NativeCheck`); then
    /// jsonwebtoken checks the claims only, with these (signature validation off).
    native: Option<(NativeCheck, Validation, Validation)>,
}

/// A signature check by a native library where it is faster than jsonwebtoken's pure-Rust
/// backend: RS256 with AWS-LC, on a key parsed once ([`aws_lc_rs::signature::ParsedPublicKey`]:
/// ring parsed the key again for every token, a third of each check in a profile of
/// `examples/cold.rs`), and ES256 with ring (three times jsonwebtoken's speed). The first
/// request of every session pays one. Other keys stay with jsonwebtoken: HS256, RSA moduli
/// outside 2048–8192 bits, and EdDSA (ed25519-dalek's vector backend verifies faster than ring
/// here; [`provider`] keeps its keys parsed).
#[derive(Clone)]
enum NativeCheck {
    Rsa(aws_lc_rs::signature::ParsedPublicKey),
    /// The uncompressed P-256 point.
    Es256(Vec<u8>),
}

impl NativeCheck {
    fn for_key(algorithm: jsonwebtoken::Algorithm, key: &DecodingKey) -> Option<Self> {
        use jsonwebtoken::{Algorithm as A, DecodingKeyKind as K};
        match (algorithm, key.kind()) {
            (A::RS256, K::RsaModulusExponent { n, e }) => {
                let n = n.strip_prefix(&[0]).unwrap_or(n);
                if !(2048..=8192).contains(&(n.len() * 8)) {
                    return None;
                }
                aws_lc_rs::signature::RsaPublicKeyComponents { n, e: e.as_slice() }
                    .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
                    .ok()
                    .map(Self::Rsa)
            }
            (A::ES256, K::SecretOrDer(point)) if point.len() == 65 && point[0] == 4 => {
                Some(Self::Es256(point.clone()))
            }
            _ => None,
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature as sig;
        match self {
            Self::Rsa(key) => key.verify_sig(message, signature).is_ok(),
            Self::Es256(point) => sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

impl JwtKeys {
    /// `issuers` are the `iss` values accepted (one per app).
    pub fn new(
        signing: &KeyMaterial,
        extra: &[KeyMaterial],
        issuers: &[String],
    ) -> Result<Self, String> {
        provider::install();
        let encoding = signing
            .encoding
            .clone()
            .ok_or_else(|| "the signing key has no private part".to_owned())?;
        let mut header = Header::new(signing.algorithm.jsonwebtoken());
        header.kid = Some(signing.key_id.clone());
        let mut verifying = HashMap::new();
        let mut keys = Vec::new();
        for key in std::iter::once(signing).chain(extra) {
            let mut validation = Validation::new(key.algorithm.jsonwebtoken());
            validation.set_issuer(issuers);
            validation.set_required_spec_claims(&["exp", "sub", "iss"]);
            validation.validate_aud = false;
            validation.leeway = 5;
            let mut validation_any_exp = validation.clone();
            validation_any_exp.validate_exp = false;
            let algorithm = key.algorithm.jsonwebtoken();
            // jsonwebtoken marks this deprecated in favour of `insecure_decode`, which checks no
            // claim at all; here the native check has checked the signature (`verify_inner`)
            // and the claims must still be checked exactly as before.
            #[allow(deprecated)]
            let native = NativeCheck::for_key(algorithm, &key.decoding).map(|check| {
                let mut claims_only = validation.clone();
                claims_only.insecure_disable_signature_validation();
                let mut claims_only_any_exp = validation_any_exp.clone();
                claims_only_any_exp.insecure_disable_signature_validation();
                (check, claims_only, claims_only_any_exp)
            });
            let entry = Verifying {
                algorithm,
                key: key.decoding.clone(),
                validation,
                validation_any_exp,
                native,
            };
            if verifying.insert(key.key_id.clone(), entry).is_some() {
                return Err(format!("key id `{}` is configured twice", key.key_id));
            }
            keys.extend(key.jwk.clone());
        }
        let keys = Self {
            signing_header_b64: encode_header(&header)?,
            signing_header: header,
            signing: encoding,
            verifying,
            default_kid: signing.key_id.clone(),
            jwks: json!({ "keys": keys }),
        };
        keys.self_check(issuers)?;
        Ok(keys)
    }

    /// Signs a token and verifies it, before any request: a signing key that cannot sign, or
    /// whose token its own public half refuses, stops the start with a clear message. It also
    /// makes the crypto libraries' first use here: AWS-LC set itself up in the first login's
    /// signature (26–40 ms of that login's own time, `scripts/bench-peer`).
    fn self_check(&self, issuers: &[String]) -> Result<(), String> {
        let now = crate::now_secs();
        let probe = Claims {
            iss: issuers.first().cloned().unwrap_or_default(),
            sub: "idgate-self-check".into(),
            iat: now,
            exp: now + 60,
            jti: String::new(),
            sid: String::new(),
            user: UserClaim::new("idgate-self-check", Vec::new()),
            ufp: None,
            acr: None,
            amr: Vec::new(),
            auth_time: None,
        };
        let token = self
            .sign(&probe)
            .map_err(|e| format!("the signing key `{}`: {e}", self.default_kid))?;
        if issuers.is_empty() {
            // No app, no issuer to accept: nothing this process verifies.
            return Ok(());
        }
        self.verify(&token).map(drop).map_err(|e| {
            format!(
                "the signing key `{}` signs tokens its own public key refuses ({e})",
                self.default_kid
            )
        })
    }

    /// Signs a session token's `claims` with the signing key.
    pub fn sign(&self, claims: &Claims) -> Result<String, JwtError> {
        self.sign_any(claims)
    }

    /// Signs any claims with the signing key (a scoped token's, see [`scoped`]).
    pub fn sign_any<T: Serialize>(&self, claims: &T) -> Result<String, JwtError> {
        match &self.signing {
            Signer::Jwt(key) => jsonwebtoken::encode(&self.signing_header, claims, key)
                .map_err(|e| JwtError::Signing(e.to_string())),
            Signer::Native(native) => native
                .sign_jws(&self.signing_header_b64, claims)
                .map_err(JwtError::Signing),
        }
    }

    /// The same keys with every native check off: jsonwebtoken alone (tests compare the two).
    #[cfg(test)]
    fn without_native(keys: &JwtKeys) -> JwtKeys {
        let mut copy = keys.clone();
        for v in copy.verifying.values_mut() {
            v.native = None;
        }
        copy
    }

    /// Verifies signature, `iss` and `exp`.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify_inner(token, true)
    }

    /// Verifies signature and `iss` but accepts an expired token (logout of an expired session).
    pub fn verify_ignoring_expiry(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify_inner(token, false)
    }

    fn verify_inner(&self, token: &str, check_exp: bool) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let kid = header.kid.as_deref().unwrap_or(&self.default_kid);
        let v = self.verifying.get(kid).ok_or(JwtError::UnknownKey)?;
        let validation = match &v.native {
            Some((check, claims_only, claims_only_any_exp)) => {
                // What jsonwebtoken would check before the signature: the key's algorithm only,
                // then the signature over the first two segments, split as it splits them.
                if header.alg != v.algorithm {
                    return Err(JwtError::Invalid("InvalidAlgorithm".into()));
                }
                let (message, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
                let signature = URL_SAFE_NO_PAD
                    .decode(signature)
                    .map_err(|_| JwtError::Malformed)?;
                if !check.verify(message.as_bytes(), &signature) {
                    return Err(JwtError::Invalid("InvalidSignature".into()));
                }
                if check_exp {
                    claims_only
                } else {
                    claims_only_any_exp
                }
            }
            None if check_exp => &v.validation,
            None => &v.validation_any_exp,
        };
        let data = jsonwebtoken::decode::<Claims>(token, &v.key, validation);
        data.map(|d| d.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
            other => JwtError::Invalid(format!("{other:?}")),
        })
    }

    /// `{"keys": [...]}` with every public verification key.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }
}

/// Longest session token idgate verifies; a longer one is refused unread (a browser cannot
/// even store a cookie of half this size).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

#[cfg(test)]
mod tests;

/// The `sub` of a token this process has already verified (its signature is not checked
/// again: only its payload is read). For `/auth`'s audit events, which hold a token's cached
/// verification, not its claims. `None` for anything that is not a JWT with a string `sub`.
pub fn verified_subject(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: String,
    }
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Subject>(&bytes)
        .ok()
        .map(|s| s.sub)
}
