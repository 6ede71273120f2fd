//! Unit tests of `idp`.

use super::*;
use serde_json::json;

/// The first app and its `dev` provider of a TOML text, with `app_lines` in the app and
/// `provider_lines` in the provider.
fn configured(app_lines: &str, provider_lines: &str) -> Arc<AppConfig> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.secret"),
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[jwt]\nalgorithm = \"HS256\"\nprivate_key_file = \"k.secret\"\nkey_id = \"k1\"\n\
         [store]\nkind = \"embedded\"\npath = \"s.db\"\n[users]\nkind = \"embedded\"\n\
         [apps.web]\nrealm = \"web\"\nissuer = \"http://localhost\"\n\
         redirect_url = \"http://localhost/cb\"\n{app_lines}\n\
         [apps.web.providers.dev]\ntype = \"oidc\"\nissuer_url = \"http://127.0.0.1:9\"\n\
         client_id = \"c\"\nclient_secret = \"s\"\n{provider_lines}\n"
    );
    std::fs::write(dir.path().join("idgate.toml"), text).unwrap();
    let config = crate::config::Config::load(&dir.path().join("idgate.toml")).unwrap();
    config.apps["web"].clone()
}

fn user(claims: serde_json::Value) -> IdpUser {
    IdpUser {
        authn: Default::default(),
        subject: "alice".into(),
        name: None,
        email: None,
        username: None,
        claims: claims.as_object().cloned().unwrap_or_default(),
    }
}

#[test]
fn only_what_the_app_asks_for_is_kept() {
    let said = json!({"groups": ["a", "b", "a", ""], "department": "R&D", "secret": "x"});
    let app = configured("", "");
    let p = &app.providers["dev"];
    assert_eq!(
        Asserted::of(&app, p, &user(said.clone())),
        Ok(Asserted::default())
    );

    let app = configured(
        "use_provider_groups = true",
        "claims_to_token = { department = \"dept\", missing = \"m\" }",
    );
    let p = &app.providers["dev"];
    let kept = Asserted::of(&app, p, &user(said)).unwrap();
    assert_eq!(kept.groups, ["a", "b"]);
    assert_eq!(kept.claims, [("dept".to_string(), json!("R&D"))].into());
    // One group as a plain string; no claim at all.
    let one = Asserted::of(&app, p, &user(json!({"groups": "solo"}))).unwrap();
    assert_eq!(one.groups, ["solo"]);
    assert_eq!(
        Asserted::of(&app, p, &user(json!({}))),
        Ok(Asserted::default())
    );
}

#[test]
fn an_idp_asserting_too_much_or_nonsense_is_refused() {
    let app = configured(
        "use_provider_groups = true",
        "claims_to_token = { blob = \"blob\" }",
    );
    let p = &app.providers["dev"];
    let refused = |claims: serde_json::Value| Asserted::of(&app, p, &user(claims)).err();
    let many: Vec<String> = (0..=MAX_IDP_GROUPS).map(|i| format!("g{i}")).collect();
    assert!(refused(json!({ "groups": many })).is_some_and(|m| m.contains("over the limit")));
    let at_limit: Vec<String> = (0..MAX_IDP_GROUPS).map(|i| format!("g{i}")).collect();
    assert!(refused(json!({ "groups": at_limit })).is_none());
    let long = "x".repeat(MAX_IDP_GROUP_BYTES + 1);
    assert!(refused(json!({ "groups": [long] })).is_some());
    assert!(refused(json!({ "groups": ["x".repeat(MAX_IDP_GROUP_BYTES)] })).is_none());
    assert!(refused(json!({"groups": [1]})).is_some_and(|m| m.contains("not a string")));
    assert!(refused(json!({"groups": {"a": 1}})).is_some_and(|m| m.contains("neither")));
    assert!(refused(json!({ "blob": "y".repeat(MAX_IDP_CLAIMS_BYTES) }))
        .is_some_and(|m| m.contains("claims_to_token")));
    assert!(refused(json!({ "blob": "y".repeat(MAX_IDP_CLAIMS_BYTES - 20) })).is_none());
}

#[test]
fn sealed_tokens_of_older_sessions_read_with_nothing_asserted() {
    let old =
        json!({"access_token": "a", "refresh_token": null, "id_token": null, "expires_at": null});
    let tokens: IdpTokens = serde_json::from_value(old).unwrap();
    assert!(tokens.asserted.is_empty());
    let mut tokens = tokens;
    tokens.asserted.groups.push("g".into());
    let again: IdpTokens = serde_json::from_slice(&serde_json::to_vec(&tokens).unwrap()).unwrap();
    assert_eq!(again.asserted.groups, ["g"]);
}

#[tokio::test]
async fn an_authenticated_post_carries_the_providers_client_assertion() {
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/es256.pem");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.secret"),
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[jwt]\nalgorithm = \"HS256\"\nprivate_key_file = \"k.secret\"\nkey_id = \"k1\"\n\
         [store]\nkind = \"embedded\"\npath = \"s.db\"\n[users]\nkind = \"embedded\"\n\
         [apps.web]\nrealm = \"web\"\nissuer = \"http://localhost\"\n\
         redirect_url = \"http://localhost/cb\"\n\
         [apps.web.providers.dev]\ntype = \"generic\"\nauth_url = \"http://127.0.0.1:9/auth\"\n\
         token_url = \"http://127.0.0.1:9/token\"\nuserinfo_url = \"http://127.0.0.1:9/me\"\n\
         client_id = \"c\"\nauth_method = \"private_key_jwt\"\nclient_key_file = \"{}\"\n",
        key.display()
    );
    std::fs::write(dir.path().join("idgate.toml"), text).unwrap();
    let config = crate::config::Config::load(&dir.path().join("idgate.toml")).unwrap();
    let idps = Idps::new(&config.apps).unwrap();
    let client = idps.get("web", "dev").unwrap();
    let endpoint = Url::parse("http://127.0.0.1:9/introspect").unwrap();
    let req = client
        .authenticated_post(&endpoint, vec![("token".into(), "t".into())])
        .await
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(req.url(), &endpoint);
    let body = req.body().and_then(|b| b.as_bytes()).unwrap();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body).into_owned().collect();
    assert_eq!(form["token"], "t");
    assert_eq!(form["client_id"], "c");
    assert_eq!(
        form["client_assertion_type"],
        client_auth::CLIENT_ASSERTION_TYPE
    );
    let payload = form["client_assertion"].split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
    assert_eq!(claims["iss"], "c");
}
