//! Fuzz entry point for the user APIs of the plain OAuth2 providers (see `crate::fuzz`): any JSON
//! answer becomes a user or an error, never a panic, and a user always has an id.

// Fuzz entry points fail by panicking: that is how libFuzzer and the replay test see a bug.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use super::{
    bitbucket_user, github_email, github_user, keyed_user, primary_email, same_name, whoami_name,
};
use crate::config::UserKeys;

pub fn userinfo(data: &[u8]) {
    let _ = whoami_name(data);
    let Ok(profile) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let keys = UserKeys {
        id: "data.uid".into(),
        name: "data.full_name".into(),
        username: "preferred_username".into(),
        email: "mail".into(),
        email_verified: "data.mailVerified".into(),
    };
    for user in [
        github_user(&profile),
        bitbucket_user(&profile),
        keyed_user(&profile, &UserKeys::default()),
        keyed_user(&profile, &keys),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!user.subject.is_empty(), "a user without an id");
    }
    if let Some(address) = primary_email(&profile, "is_primary", "is_confirmed") {
        assert!(!address.is_empty());
    }
    let _ = github_email(Some("a@example.test".into()), &profile);
    let _ = same_name(&profile, "jsmith");
}
