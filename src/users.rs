//! The merge at the heart of idgate: `id`, `name`, `email` and `username` come from the identity
//! provider; `groups`, `permissions` and `metadata` come only from the project's users store.
//!
//! # Several records for one identity
//!
//! Mia's authentication service keeps no unique index, so an existing users collection may hold
//! several `PUBLIC` records for one (realm, providerId, providerUserId). Every store resolves
//! them by one rule, [`crate::store::DUPLICATE_RULE`]: the **oldest** record by `createdAt` (a record without
//! it counts as oldest), ties broken by the smaller `_id`. A login uses that record and never
//! fails because of the others; [`crate::store::DuplicateNotes`] logs the identity once. `idgate users
//! doctor` ([`doctor`]) lists such identities and merges them by the same rule.

pub mod doctor;

use crate::config::{AppConfig, ProviderConfig, TokenClaims};
use crate::idp::{Asserted, IdpUser};
use crate::jwt::{Claims, UserClaim};
use crate::store::{Identity, User};

/// The store key and IdP-owned fields of a login.
pub fn identity(app: &AppConfig, provider: &ProviderConfig, idp: &IdpUser) -> Identity {
    Identity {
        realm: app.realm.clone(),
        provider_id: provider.id.clone(),
        provider_user_id: idp.subject.clone(),
        name: idp.name.clone(),
        email: idp.email.clone(),
        username: idp.username.clone(),
    }
}

/// The `user` claim of `user` for a session of `app` through `provider_id`, with what the IdP
/// asserted at login.
pub fn claim_for(
    app: &AppConfig,
    user: &User,
    provider_id: &str,
    asserted: &Asserted,
) -> UserClaim {
    user_claim(
        user,
        app.providers.get(provider_id).map(|p| p.as_ref()),
        &app.token_claims,
        asserted,
    )
}

/// The JWT's `user` claim for a stored user, shaped by the app's `claims` (Mia's
/// `customTokenClaims`): `providerUserId` only when asked for, and `metadata` reduced to the
/// listed dotted paths when a list is configured. The IdP's groups (`use_provider_groups`)
/// follow the users collection's; the claims `claims_to_token` copied sit beside the others.
pub fn user_claim(
    user: &User,
    provider: Option<&ProviderConfig>,
    claims: &TokenClaims,
    asserted: &Asserted,
) -> UserClaim {
    let mut groups = user.groups.clone();
    for g in &asserted.groups {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    let metadata = match &claims.metadata_fields {
        None => user.metadata.clone(),
        Some(paths) => pick(&user.metadata, paths),
    };
    let metadata = match metadata {
        serde_json::Value::Object(m) if m.is_empty() => None,
        serde_json::Value::Null => None,
        other => Some(other),
    };
    UserClaim {
        user_id: user.user_id.clone(),
        groups,
        email: user.email.clone(),
        name: user.name.clone(),
        username: user.username.clone(),
        permissions: (!user.permissions.is_empty()).then(|| user.permissions.clone()),
        metadata,
        provider_user_id: claims
            .include_provider_user_id
            .then(|| user.provider_user_id.clone()),
        user_settings_url: provider.and_then(|p| p.user_settings_url.clone()),
        from_idp: asserted.claims.clone(),
    }
}

/// The parts of `metadata` at `paths` (each a dotted path, split), nested as they were, like
/// lodash's `pick` the original uses: `["a","b"]` of `{"a":{"b":1,"c":2}}` is `{"a":{"b":1}}`.
/// Paths that lead nowhere are left out.
fn pick(metadata: &serde_json::Value, paths: &[Vec<String>]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for path in paths {
        let found = path
            .iter()
            .try_fold(metadata, |value, segment| value.get(segment.as_str()));
        if let Some(value) = found {
            insert_at(&mut out, path, value);
        }
    }
    serde_json::Value::Object(out)
}

fn insert_at(
    node: &mut serde_json::Map<String, serde_json::Value>,
    path: &[String],
    value: &serde_json::Value,
) {
    match path {
        [] => {}
        [last] => {
            node.insert(last.clone(), value.clone());
        }
        [first, rest @ ..] => {
            let entry = node
                .entry(first.clone())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            // Not an object: a shorter path already took the whole value.
            if let serde_json::Value::Object(map) = entry {
                insert_at(map, rest, value);
            }
        }
    }
}

/// What the users store contributes to a session token — the record's `groups`,
/// `permissions` and `metadata` — as one number, never 0 (which stands for "not known"). Tokens
/// carry it (the `ufp` claim, [`fingerprint_claim`]); the refresher (`session::refresh`) reads
/// the active users' records again and compares. `name`, `email` and `username` are left out:
/// they are the IdP's, refreshed by every login. Metadata objects count by content, whatever
/// the order of their keys.
pub fn fingerprint(user: &User) -> u64 {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for list in [&user.groups, &user.permissions] {
        hash.update((list.len() as u64).to_be_bytes());
        for item in list {
            hash.update((item.len() as u64).to_be_bytes());
            hash.update(item.as_bytes());
        }
    }
    hash.update(serde_json::to_vec(&canonical(&user.metadata)).unwrap_or_default());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first).max(1)
}

/// `value` with every object's keys in order (whatever order the store kept them in).
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(canonical).collect())
        }
        other => other.clone(),
    }
}

/// [`fingerprint`] as the token's `ufp` claim: 16 hex digits.
pub fn fingerprint_claim(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// A token's `ufp` claim read back; 0 (not known: counts as changed) when absent or malformed.
pub fn claimed_fingerprint(claim: Option<&str>) -> u64 {
    claim
        .filter(|c| c.len() == 16)
        .and_then(|c| u64::from_str_radix(c, 16).ok())
        .unwrap_or(0)
}

/// Claims of a new session token; `fingerprint` is the users-store record's it was made from
/// ([`fingerprint`]), `None` for a token whose claims are not the store's (`sessions mint`).
pub fn session_claims(
    app: &AppConfig,
    user: UserClaim,
    fingerprint: Option<u64>,
    sid: &str,
    now: i64,
    ttl_secs: i64,
) -> Claims {
    Claims {
        iss: app.issuer.clone(),
        sub: user.user_id.clone(),
        iat: now,
        exp: now + ttl_secs,
        jti: crate::crypto::random_token(),
        sid: sid.to_owned(),
        user,
        acr: None,
        amr: Vec::new(),
        auth_time: None,

        ufp: fingerprint.map(fingerprint_claim),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_from_the_store_and_identity_from_the_idp() {
        let user = User {
            user_id: "u1".into(),
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: "alice".into(),
            name: Some("Alice".into()),
            email: Some("alice@example.test".into()),
            username: None,
            groups: vec!["admins".into()],
            permissions: vec![],
            metadata: serde_json::json!({}),
            created_at: 0,
            updated_at: 0,
        };
        let claim = user_claim(&user, None, &TokenClaims::default(), &Asserted::default());
        assert_eq!(claim.groups, vec!["admins".to_string()]);
        assert_eq!(claim.name.as_deref(), Some("Alice"));
        assert!(claim.permissions.is_none() && claim.metadata.is_none());
        assert!(claim.provider_user_id.is_none());
    }

    #[test]
    fn the_idps_groups_follow_the_stores_and_its_claims_sit_beside_them() {
        let mut user = user_with(serde_json::json!({}));
        user.groups = vec!["admins".into(), "ops".into()];
        let asserted = Asserted {
            authn: Default::default(),
            groups: vec!["ops".into(), "idp-staff".into()],
            claims: [("dept".to_string(), serde_json::json!("R&D"))].into(),
        };
        let claim = user_claim(&user, None, &TokenClaims::default(), &asserted);
        assert_eq!(claim.groups, ["admins", "ops", "idp-staff"]);
        let json = serde_json::to_value(&claim).unwrap();
        assert_eq!(json["dept"], "R&D");
        assert_eq!(json["userId"], "u1");
        // And it reads back the same (the token is verified into this type).
        let back: UserClaim = serde_json::from_value(json).unwrap();
        assert_eq!(back, claim);
        // Nothing asserted: the store's groups alone, no extra claim.
        let plain = user_claim(&user, None, &TokenClaims::default(), &Asserted::default());
        assert_eq!(plain.groups, ["admins", "ops"]);
        assert!(plain.from_idp.is_empty());
    }

    #[test]
    fn the_fingerprint_follows_groups_permissions_and_metadata_only() {
        let base = user_with(serde_json::json!({"a": 1, "b": {"x": [1, 2], "y": "z"}}));
        let fp = fingerprint(&base);
        assert_ne!(fp, 0);
        // The IdP's fields and the timestamps do not count; the order of metadata keys neither.
        let mut same = base.clone();
        same.name = Some("Renamed".into());
        same.email = Some("new@example.test".into());
        same.updated_at = 99;
        same.metadata = serde_json::json!({"b": {"y": "z", "x": [1, 2]}, "a": 1});
        assert_eq!(fingerprint(&same), fp);
        // Each of the store's own fields counts.
        let mut changes = Vec::new();
        let mut c = base.clone();
        c.groups = vec!["admins".into()];
        changes.push(c);
        let mut c = base.clone();
        c.permissions = vec!["admins".into()];
        changes.push(c);
        let mut c = base.clone();
        c.metadata["b"]["x"] = serde_json::json!([2, 1]);
        changes.push(c);
        let mut c = base.clone();
        c.groups = vec!["a".into(), "b".into()];
        let mut d = base.clone();
        d.groups = vec!["ab".into()];
        // Boundaries count: ["a","b"] is not ["ab"].
        assert_ne!(fingerprint(&c), fingerprint(&d));
        changes.push(c);
        for changed in &changes {
            assert_ne!(fingerprint(changed), fp, "{changed:?}");
        }
        // As a claim and back; anything else reads as 0 (not known: counts as changed).
        let claim = fingerprint_claim(fp);
        assert_eq!(claim.len(), 16);
        assert_eq!(claimed_fingerprint(Some(&claim)), fp);
        assert_eq!(claimed_fingerprint(Some(&fingerprint_claim(1))), 1);
        for bad in [None, Some(""), Some("xyz"), Some("0123456789abcdef0")] {
            assert_eq!(claimed_fingerprint(bad), 0, "{bad:?}");
        }
    }

    fn user_with(metadata: serde_json::Value) -> User {
        User {
            user_id: "u1".into(),
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: "alice-at-idp".into(),
            name: None,
            email: None,
            username: None,
            groups: vec![],
            permissions: vec![],
            metadata,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn paths(list: &[&str]) -> Option<Vec<Vec<String>>> {
        Some(
            list.iter()
                .map(|p| p.split('.').map(str::to_owned).collect())
                .collect(),
        )
    }

    #[test]
    fn custom_token_claims_shape_the_user_claim() {
        let user = user_with(serde_json::json!({
            "tenant": "acme",
            "profile": {"team": "red", "phone": "123", "address": {"city": "Rome", "zip": "00100"}},
            "secret": "not for tokens"
        }));
        let claims = TokenClaims {
            include_provider_user_id: true,
            metadata_fields: paths(&["tenant", "profile.team", "profile.address.city", "nope.x"]),
        };
        let claim = user_claim(&user, None, &claims, &Asserted::default());
        assert_eq!(claim.provider_user_id.as_deref(), Some("alice-at-idp"));
        assert_eq!(
            claim.metadata,
            Some(serde_json::json!({
                "tenant": "acme",
                "profile": {"team": "red", "address": {"city": "Rome"}}
            }))
        );
        // An empty list (Mia without metadataFieldsToInclude): no metadata at all.
        let claims = TokenClaims {
            include_provider_user_id: false,
            metadata_fields: Some(vec![]),
        };
        assert_eq!(
            user_claim(&user, None, &claims, &Asserted::default()).metadata,
            None
        );
        // No list (a TOML app without metadata_fields): all of it.
        let claim = user_claim(&user, None, &TokenClaims::default(), &Asserted::default());
        assert_eq!(claim.metadata, Some(user.metadata.clone()));
        // A path and its parent: the parent wins, whole.
        let claims = TokenClaims {
            include_provider_user_id: false,
            metadata_fields: paths(&["profile", "profile.team"]),
        };
        let claim = user_claim(&user, None, &claims, &Asserted::default());
        assert_eq!(
            claim.metadata,
            Some(serde_json::json!({"profile": user.metadata["profile"].clone()}))
        );
    }
}
