//! The merge at the heart of idgate: `id`, `name`, `email` and `username` come from the identity
//! provider; `groups`, `permissions` and `metadata` come only from the project's users store.

use crate::config::{AppConfig, ProviderConfig};
use crate::idp::IdpUser;
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

/// The JWT's `user` claim for a stored user.
pub fn user_claim(user: &User, provider: Option<&ProviderConfig>) -> UserClaim {
    let metadata = match &user.metadata {
        serde_json::Value::Object(m) if m.is_empty() => None,
        serde_json::Value::Null => None,
        other => Some(other.clone()),
    };
    UserClaim {
        user_id: user.user_id.clone(),
        groups: user.groups.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        username: user.username.clone(),
        permissions: (!user.permissions.is_empty()).then(|| user.permissions.clone()),
        metadata,
        provider_user_id: None,
        user_settings_url: provider.and_then(|p| p.user_settings_url.clone()),
    }
}

/// Claims of a new session token.
pub fn session_claims(
    app: &AppConfig,
    user: UserClaim,
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
        let claim = user_claim(&user, None);
        assert_eq!(claim.groups, vec!["admins".to_string()]);
        assert_eq!(claim.name.as_deref(), Some("Alice"));
        assert!(claim.permissions.is_none() && claim.metadata.is_none());
    }
}
