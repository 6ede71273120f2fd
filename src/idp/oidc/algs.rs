//! Which JWS algorithms an OpenID provider's tokens may be signed with, and the hashes an
//! id_token binds to the rest of the token response.
//!
//! The allow-list is the provider's `id_token_signing_algs` when configured; otherwise what
//! discovery advertises (`id_token_signing_alg_values_supported`) minus `none` and the
//! symmetric `HS*`, which are keyed with the client secret: an IdP that signs with them must be
//! named explicitly, so a key-confusion attack (an HMAC keyed with the IdP's *public* key) finds
//! no door open by default. The list applies to id_tokens (through `openidconnect`'s verifier),
//! to signed userinfo answers and to back-channel logout tokens. An id_token signed outside it is refused, and the refusal
//! logged names the algorithm.
//!
//! `at_hash` and `c_hash` (OIDC Core 3.1.3.8, 3.3.2.11) are checked whenever the id_token
//! carries them: `at_hash` against the access token of the same response, `c_hash` against the
//! code just exchanged. In the code flow an IdP need not send either (c_hash belongs to hybrid
//! responses), but one that does and gets it wrong is refused: a hash that does not match says
//! the id_token was issued with another response.

use openidconnect::core::{CoreIdTokenClaims, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, AuthorizationCodeHash, IdTokenVerifier,
};

use super::IdpError;

/// The algorithms accepted for a provider: `configured` (validated names), or the `advertised`
/// ones without `none` and `HS*`. An error when nothing is left (an IdP that advertises only
/// symmetric algorithms must be configured explicitly).
pub(super) fn accepted_algs(
    configured: Option<&[String]>,
    advertised: &[CoreJwsSigningAlgorithm],
) -> Result<Vec<CoreJwsSigningAlgorithm>, String> {
    let algs: Vec<CoreJwsSigningAlgorithm> = match configured {
        Some(names) => names.iter().filter_map(|n| alg_of(n)).collect(),
        None => advertised
            .iter()
            .filter(|a| !is_symmetric(a) && **a != CoreJwsSigningAlgorithm::None)
            .cloned()
            .collect(),
    };
    if algs.is_empty() {
        let shown: Vec<String> = advertised.iter().map(alg_name).collect();
        return Err(format!(
            "the IdP advertises no asymmetric id_token signing algorithm ([{}]): set \
             id_token_signing_algs to accept a symmetric one",
            shown.join(", ")
        ));
    }
    Ok(algs)
}

/// The algorithm named `name` (a JWS `alg` value), if `openidconnect` knows it.
fn alg_of(name: &str) -> Option<CoreJwsSigningAlgorithm> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// The JWS name of `alg` (`RS256`, …).
pub(super) fn alg_name(alg: &CoreJwsSigningAlgorithm) -> String {
    match serde_json::to_value(alg) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{alg:?}"),
    }
}

/// Whether `alg` is an HMAC (keyed with a shared secret).
fn is_symmetric(alg: &CoreJwsSigningAlgorithm) -> bool {
    matches!(
        alg,
        CoreJwsSigningAlgorithm::HmacSha256
            | CoreJwsSigningAlgorithm::HmacSha384
            | CoreJwsSigningAlgorithm::HmacSha512
    )
}

/// Whether a logout token's or a signed userinfo answer's header `alg` (as `jsonwebtoken` names
/// it) is in `accepted`.
pub(super) fn jwt_alg_accepted(
    alg: jsonwebtoken::Algorithm,
    accepted: &[CoreJwsSigningAlgorithm],
) -> bool {
    let name = match serde_json::to_value(alg) {
        Ok(serde_json::Value::String(s)) => s,
        _ => return false,
    };
    accepted.iter().any(|a| alg_name(a) == name)
}

/// What the id_token's hashes are checked against.
pub(super) struct Hashed<'a> {
    pub access_token: &'a AccessToken,
    pub code: &'a AuthorizationCode,
}

/// Checks the id_token's `at_hash` and `c_hash`, each when present (see the module doc).
pub(super) fn check_hashes(
    id_token: &openidconnect::core::CoreIdToken,
    claims: &CoreIdTokenClaims,
    verifier: &IdTokenVerifier<'_, super::jwk::FastJwk>,
    hashed: Hashed<'_>,
) -> Result<(), IdpError> {
    if claims.access_token_hash().is_none() && claims.code_hash().is_none() {
        return Ok(());
    }
    let bad = |e: &dyn std::fmt::Display| IdpError::IdToken(e.to_string());
    let alg = id_token.signing_alg().map_err(|e| bad(&e))?;
    let key = id_token.signing_key(verifier).map_err(|e| bad(&e))?;
    if let Some(expected) = claims.access_token_hash() {
        let actual =
            AccessTokenHash::from_token(hashed.access_token, alg, key).map_err(|e| bad(&e))?;
        if actual != *expected {
            return Err(IdpError::IdToken(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    if let Some(expected) = claims.code_hash() {
        let actual =
            AuthorizationCodeHash::from_code(hashed.code, alg, key).map_err(|e| bad(&e))?;
        if actual != *expected {
            return Err(IdpError::IdToken(
                "c_hash does not match the authorization code".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use CoreJwsSigningAlgorithm as A;

    #[test]
    fn the_default_list_is_the_advertised_one_without_none_and_hmac() {
        let advertised = [
            A::RsaSsaPkcs1V15Sha256,
            A::HmacSha256,
            A::None,
            A::EcdsaP256Sha256,
        ];
        assert_eq!(
            accepted_algs(None, &advertised).unwrap(),
            vec![A::RsaSsaPkcs1V15Sha256, A::EcdsaP256Sha256]
        );
        let only_hmac = [A::HmacSha256, A::None];
        let e = accepted_algs(None, &only_hmac).unwrap_err();
        assert!(
            e.contains("HS256, none") && e.contains("id_token_signing_algs"),
            "{e}"
        );
    }

    #[test]
    fn a_configured_list_replaces_what_discovery_advertises() {
        let advertised = [A::RsaSsaPkcs1V15Sha256, A::EcdsaP256Sha256];
        let configured = vec!["ES256".to_owned(), "HS256".to_owned()];
        assert_eq!(
            accepted_algs(Some(&configured), &advertised).unwrap(),
            vec![A::EcdsaP256Sha256, A::HmacSha256]
        );
    }

    #[test]
    fn logout_token_algorithms_are_held_to_the_same_list() {
        let accepted = [A::RsaSsaPkcs1V15Sha256];
        assert!(jwt_alg_accepted(jsonwebtoken::Algorithm::RS256, &accepted));
        assert!(!jwt_alg_accepted(jsonwebtoken::Algorithm::ES256, &accepted));
        assert!(!jwt_alg_accepted(jsonwebtoken::Algorithm::HS256, &accepted));
        assert_eq!(alg_name(&A::EdDsa), "EdDSA");
    }
}
