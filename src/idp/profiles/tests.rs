//! Unit tests of `profiles`.

use super::*;
use serde_json::json;

#[test]
fn github_profile_and_emails() {
    // "GitHub REST API — Users: Get the authenticated user" (abridged).
    let profile = json!({"login": "octocat", "id": 583231, "name": null, "email": null});
    let user = github_user(&profile).ok();
    assert_eq!(user.as_ref().map(|u| u.subject.as_str()), Some("583231"));
    assert_eq!(
        user.as_ref().and_then(|u| u.username.as_deref()),
        Some("octocat")
    );
    assert_eq!(user.and_then(|u| u.name), None);
    assert!(github_user(&json!({"id": "583231"})).is_err());
    // "List email addresses for the authenticated user".
    let list = json!([
        {"email": "old@example.test", "verified": true, "primary": false, "visibility": null},
        {"email": "unverified@example.test", "verified": false, "primary": true, "visibility": "public"},
    ]);
    assert_eq!(primary_email(&list, "primary", "verified"), None);
    let list = json!([
        {"email": "octocat@github.com", "verified": true, "primary": true, "visibility": "private"}
    ]);
    assert_eq!(
        primary_email(&list, "primary", "verified").as_deref(),
        Some("octocat@github.com")
    );
    // A public address the list marks unverified is replaced by the primary verified one;
    // one the list confirms, or does not mention, is kept.
    let list = json!([
        {"email": "Octo@Example.test", "verified": false, "primary": false},
        {"email": "octocat@github.com", "verified": true, "primary": true},
    ]);
    let public = |a: &str| Some(a.to_owned());
    assert_eq!(
        github_email(public("octo@example.test"), &list).as_deref(),
        Some("octocat@github.com")
    );
    assert_eq!(
        github_email(public("octocat@github.com"), &list).as_deref(),
        Some("octocat@github.com")
    );
    assert_eq!(
        github_email(public("other@example.test"), &list).as_deref(),
        Some("other@example.test")
    );
    assert_eq!(
        github_email(None, &list).as_deref(),
        Some("octocat@github.com")
    );
    let only_unverified = json!([{"email": "o@x", "verified": false, "primary": true}]);
    assert_eq!(github_email(public("o@x"), &only_unverified), None);
}

#[test]
fn bitbucket_profile() {
    let profile = json!({"uuid": "{d301aafa-d676-4ee0-88be-962be7417567}",
        "account_id": "557058:…", "display_name": "Evan Bitbucket", "nickname": "evzijst",
        "type": "user"});
    let user = bitbucket_user(&profile).ok();
    assert_eq!(
        user.as_ref().map(|u| u.subject.as_str()),
        Some("{d301aafa-d676-4ee0-88be-962be7417567}")
    );
    assert_eq!(user.and_then(|u| u.username).as_deref(), Some("evzijst"));
}

#[test]
fn bitbucket_server_whoami_and_users_page() {
    assert_eq!(whoami_name(b"jsmith\n").as_deref(), Some("jsmith"));
    assert_eq!(whoami_name(b"  \n"), None);
    assert_eq!(whoami_name(b""), None);
    assert_eq!(whoami_name(b"a\nb"), None);
    assert_eq!(whoami_name(&[0xff, 0xfe]), None);
    // "Bitbucket Data Center REST API — Users: Get users" (abridged): `filter` matched a
    // longer name first.
    let page = json!({"size": 2, "limit": 25, "isLastPage": true, "start": 0, "values": [
        {"name": "jsmith-admin", "emailAddress": "admin@example.test", "id": 2,
         "displayName": "J. Smith (admin)", "active": true, "slug": "jsmith-admin", "type": "NORMAL"},
        {"name": "JSmith", "emailAddress": "jsmith@example.test", "id": 101,
         "displayName": "Jane Smith", "active": true, "slug": "jsmith", "type": "NORMAL"},
    ]});
    let found = same_name(&page, "jsmith");
    assert_eq!(
        found.as_ref().and_then(|u| string_at(u, "emailAddress")),
        Some("jsmith@example.test")
    );
    assert!(same_name(&page, "smith").is_none());
    assert!(same_name(&json!({"values": "x"}), "jsmith").is_none());
}

#[test]
fn generic_keys_and_paths() {
    let keys = UserKeys {
        id: "data.uid".into(),
        name: "data.full_name".into(),
        username: "preferred_username".into(),
        email: "mail".into(),
        email_verified: "data.mailVerified".into(),
    };
    let profile = json!({"data": {"uid": 42, "full_name": "Ada"}, "mail": "ada@example.test"});
    let user = keyed_user(&profile, &keys).ok();
    assert_eq!(
        user,
        Some(IdpUser {
            authn: Default::default(),
            subject: "42".into(),
            name: Some("Ada".into()),
            email: Some("ada@example.test".into()),
            username: None,
            claims: top_level(&profile),
        })
    );
    assert!(keyed_user(&json!({"sub": 1}), &keys).is_err());
    assert!(keyed_user(&json!({"sub": "s"}), &UserKeys::default()).is_ok());
    // The verification flag: `false` (or "false") drops the address, anything else keeps it.
    let email_of = |profile: serde_json::Value, keys: &UserKeys| {
        keyed_user(&profile, keys).ok().and_then(|u| u.email)
    };
    let with = |flag: serde_json::Value| json!({"data": {"uid": 1, "mailVerified": flag}, "mail": "ada@example.test"});
    assert_eq!(email_of(with(json!(false)), &keys), None);
    assert_eq!(email_of(with(json!("FALSE")), &keys), None);
    assert_eq!(
        email_of(with(json!(true)), &keys).as_deref(),
        Some("ada@example.test")
    );
    assert_eq!(
        email_of(with(json!(null)), &keys).as_deref(),
        Some("ada@example.test")
    );
    let oidc_like = json!({"sub": "s", "email": "e@x", "email_verified": false});
    assert_eq!(email_of(oidc_like, &UserKeys::default()), None);
    let oidc_like = json!({"sub": "s", "email": "e@x"});
    assert_eq!(
        email_of(oidc_like, &UserKeys::default()).as_deref(),
        Some("e@x")
    );
}
