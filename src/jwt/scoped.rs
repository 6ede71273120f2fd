//! Scoped tokens for upstreams: a JWT minted for one upstream audience (`aud`), living at most
//! five minutes whatever the session, with only the claims `[apps.X.audiences.NAME]` lists,
//! signed with idgate's own keys (so the JWKS already publishes the key to check it with).
//!
//! A scoped token is never a session token: it has no `sid` and no `user` claim, which every
//! session token must have, so `/auth` refuses one presented as a session. An upstream that
//! checks `aud` refuses the token minted for another upstream.
//!
//! Minted tokens are cached per (session token, audience) until a quarter of their lifetime is
//! left, so a location's requests cost one cache lookup, not a signature.

use serde::Serialize;

use super::{JwtError, JwtKeys, UserClaim};

/// A scoped token's claims; the optional ones only when the audience lists them.
#[derive(Debug, Serialize)]
struct ScopedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<&'a [String]>,
}

/// What an audience's token holds: its `claims` (named as `[apps.X.audiences]` lists them)
/// and its lifetime.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub claims: &'a [String],
    pub lifetime_secs: i64,
}

/// A token for `audience` (`scope` says what it holds) of `user`, issued by `iss` at `now`,
/// and its `exp`.
pub fn mint(
    keys: &JwtKeys,
    iss: &str,
    user: &UserClaim,
    audience: &str,
    scope: Scope<'_>,
    now: i64,
) -> Result<(String, i64), JwtError> {
    let has = |c: &str| scope.claims.iter().any(|x| x == c);
    let exp = now + scope.lifetime_secs;
    let claims = ScopedClaims {
        iss,
        aud: audience,
        iat: now,
        exp,
        jti: crate::crypto::random_token(),
        sub: has("sub").then_some(user.user_id.as_str()),
        email: user.email.as_deref().filter(|_| has("email")),
        name: user.name.as_deref().filter(|_| has("name")),
        username: user.username.as_deref().filter(|_| has("username")),
        groups: has("groups").then_some(user.groups.as_slice()),
        permissions: has("permissions").then(|| user.permissions.as_deref().unwrap_or_default()),
    };
    Ok((keys.sign_any(&claims)?, exp))
}

/// Minted tokens by (the session token's cache key, `session::token_digest`, audience), with
/// their `exp`.
pub struct ScopedTokens {
    cache: quick_cache::sync::Cache<(u128, String), (std::sync::Arc<str>, i64)>,
}

impl ScopedTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// The cached token of (`session`, `audience`) while more than a quarter of its lifetime
    /// (`lifetime_secs`) is left.
    pub fn get(
        &self,
        session: &u128,
        audience: &str,
        lifetime_secs: i64,
        now: i64,
    ) -> Option<std::sync::Arc<str>> {
        let (token, exp) = self.cache.get(&(*session, audience.to_owned()))?;
        (exp - now > lifetime_secs / 4).then_some(token)
    }

    pub fn put(&self, session: u128, audience: &str, token: std::sync::Arc<str>, exp: i64) {
        self.cache
            .insert((session, audience.to_owned()), (token, exp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn only_the_listed_claims_are_minted_and_never_pass_for_a_session() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "a-secret-of-at-least-32-bytes-0123456789").unwrap();
        let k = super::super::KeyMaterial::load_signing("HS256", &p, "k1").unwrap();
        let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
        let claims = ["sub".to_owned(), "groups".to_owned()];
        let cfg = Scope {
            claims: &claims,
            lifetime_secs: 120,
        };
        let user = UserClaim {
            email: Some("u1@example.test".into()),
            name: Some("U".into()),
            ..UserClaim::new("u1", vec!["g".into()])
        };
        let (token, exp) = mint(&keys, "http://issuer", &user, "orders", cfg, 1000).unwrap();
        assert_eq!(exp, 1120);
        let payload = token.split('.').nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        let mut names: Vec<&String> = v.as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(names, ["aud", "exp", "groups", "iat", "iss", "jti", "sub"]);
        assert_eq!(v["aud"], "orders");
        assert_eq!(v["sub"], "u1");
        // Signed by the session key, yet no session token.
        let (fresh, _) = mint(
            &keys,
            "http://issuer",
            &user,
            "orders",
            cfg,
            crate::now_secs(),
        )
        .unwrap();
        assert!(keys.verify(&fresh).is_err());
    }

    #[test]
    fn cached_tokens_are_renewed_before_they_expire() {
        let tokens = ScopedTokens::new(8);
        tokens.put(1, "a", "t".into(), 400);
        assert_eq!(tokens.get(&1, "a", 300, 100).as_deref(), Some("t"));
        assert!(tokens.get(&1, "a", 300, 330).is_none());
        assert!(tokens.get(&1, "b", 300, 100).is_none());
        assert!(tokens.get(&2, "a", 300, 100).is_none());
    }
}
