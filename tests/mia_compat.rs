//! The compatibility promise, end to end: a project's unmodified Mia configuration — the
//! authentication service's `config.json` (`apps → providers`) and the authorization service's
//! `auth.json`, committed under `tests/fixtures/mia/` — drives a full login through real Nginx,
//! with no `[apps]` in idgate's TOML; and the original services' environment variables are
//! read by the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::*;

fn mia_stack() -> Stack {
    common::mia::stack(None)
}

/// The claims of a JWT, unverified (the login flow tests check signatures).
fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmodified_mia_config_and_auth_json_drive_a_full_login() {
    let stack = mia_stack();
    let site = stack.site();

    // The providers API lists the Mia provider under its own id.
    let providers: serde_json::Value = reqwest::get(format!("{site}/apps/web/providers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers[0]["id"], "keycloak");
    assert_eq!(providers[0]["order"], 10);

    // First login: the user is created in the realm of config.json with its defaultGroups.
    let alice = Browser::new();
    let resp = login(&stack, &alice, "/", "alice").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let first = claims(body["accessToken"].as_str().unwrap());
    assert_eq!(first["iss"], "mia-compat-issuer");
    assert_eq!(first["user"]["groups"], serde_json::json!(["users"]));
    // includeProviderUserId: the IdP's subject is in the token.
    assert_eq!(first["user"]["providerUserId"], "alice");
    assert_eq!(
        first["user"]["userSettingsURL"],
        format!("{}/account/", stack.idp.issuer)
    );
    assert!(first["user"].get("metadata").is_none(), "{first}");

    // The project gives the user attributes in its users collection…
    let db = stack.dir.path().join("idgate.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let metadata = serde_json::json!({
        "tenant": "acme",
        "profile": {"team": "red", "phone": "555-0100"},
        "internalNote": "not for tokens"
    });
    let updated = conn
        .execute(
            "UPDATE users SET metadata = ?1 WHERE provider_user_id = 'alice' AND realm = 'test' \
             AND provider_id = 'keycloak'",
            [metadata.to_string()],
        )
        .unwrap();
    assert_eq!(updated, 1);
    drop(conn);

    // …and the next login's token carries only the fields metadataFieldsToInclude lists.
    let again = Browser::new();
    let resp = login(&stack, &again, "/", "alice").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let second = claims(body["accessToken"].as_str().unwrap());
    assert_eq!(second["sub"], first["sub"], "the same user");
    assert_eq!(
        second["user"]["metadata"],
        serde_json::json!({"tenant": "acme", "profile": {"team": "red"}})
    );

    // Upstreams get the Mia headers; mia-userproperties holds the token's metadata.
    let resp = again
        .client
        .get(format!("{site}/anything"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo = echoed(&resp.text().await.unwrap());
    assert_eq!(echo["miauserid"], second["sub"].as_str().unwrap());
    assert_eq!(echo["miausergroups"], "users");
    let props: serde_json::Value = serde_json::from_str(&echo["miauserproperties"]).unwrap();
    assert_eq!(
        props["metadata"],
        serde_json::json!({"tenant": "acme", "profile": {"team": "red"}})
    );

    // auth.json decides: `/admin/` needs the admin group.
    let resp = again
        .client
        .get(format!("{site}/admin/panel"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // The startup log says how the Mia provider is reached and notes the discovered endpoints.
    let log = stack.idgate.proc.log_text();
    assert!(
        log.contains(&format!(
            "apps.web.providers.keycloak: `keycloak` provider, discovered from {}",
            stack.idp.issuer
        )),
        "{log}"
    );
    assert!(log.contains("apps.web.providers.keycloak.tokenUrl: discovered from the issuer"));
    assert!(
        !log.contains(CLIENT_SECRET),
        "the client secret reached the log"
    );
}

/// A directory with a TOML naming the Mia files (no `[apps]`), for `check-config`.
fn check_config_dir(config_json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config_json).unwrap();
    let setup = Setup {
        extra: "mia_config = \"config.json\"",
        omit_apps: true,
        ..Setup::default()
    };
    let toml = config_toml(&setup, dir.path(), "http://127.0.0.1:8080", "unused");
    std::fs::write(dir.path().join("idgate.toml"), toml).unwrap();
    dir
}

/// Runs `idgate check-config` with exactly `env` (plus PATH): (exit code, stderr).
fn check_config(dir: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(idgate_bin())
        .arg("check-config")
        .arg("--config")
        .arg(dir.join("idgate.toml"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_reads_the_original_environment_and_names_bad_keys() {
    let committed = std::fs::read_to_string(fixture("mia/config.json")).unwrap();
    let dir = check_config_dir(&committed);

    // The committed fixture itself is valid as it is (placeholders and all), and every key
    // of it is accounted for: these are applied (the rest would be warnings or notes).
    let (code, stderr) = check_config(dir.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    for key in [
        "apps.web.redirectUrl",
        "apps.web.realm",
        "apps.web.providers.keycloak.clientSecret",
        "apps.web.providers.keycloak.logoutUrl",
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains("config.json: applied: "))
            .unwrap_or_else(|| panic!("no applied line: {stderr}"));
        assert!(line.contains(key), "{key} not listed as applied: {line}");
    }

    // The original variables are applied and reported by name, never by value.
    let (code, stderr) = check_config(
        dir.path(),
        &[
            ("USER_PROPERTIES_TO_PROXY", "name,email"),
            ("AUTHORIZATION_STRICT_MODE_ENABLED", "false"),
            ("HEADERS_TO_PROXY", "x-request-id,cookie,authorization"),
            ("PROVIDER_TOKEN_PASS_PHRASE", "a-pass-phrase-value"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("applied: USER_PROPERTIES_TO_PROXY, AUTHORIZATION_STRICT_MODE_ENABLED"),
        "{stderr}"
    );
    assert!(stderr.contains("recognised, no effect: "), "{stderr}");
    for name in ["HEADERS_TO_PROXY (", "PROVIDER_TOKEN_PASS_PHRASE ("] {
        assert!(stderr.contains(name), "{stderr}");
    }
    assert!(!stderr.contains("a-pass-phrase-value"), "{stderr}");

    // A bad variable: exit 78, naming it.
    let (code, stderr) = check_config(dir.path(), &[("REDIS_MODE", "bogus")]);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("REDIS_MODE: `bogus`"), "{stderr}");

    // A bad Mia file: exit 78, naming the file and the JSON path.
    let broken = committed.replace("\"clientId\": \"idgate\",", "");
    let dir = check_config_dir(&broken);
    let (code, stderr) = check_config(dir.path(), &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("config.json: apps.web.providers.keycloak.clientId: missing"),
        "{stderr}"
    );
    // Every Mia type is supported (github keeps its endpoints); an unknown one is named.
    let github = committed.replace("\"type\": \"keycloak\"", "\"type\": \"github\"");
    let dir = check_config_dir(&github);
    let (code, stderr) = check_config(dir.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let saml = committed.replace("\"type\": \"keycloak\"", "\"type\": \"saml\"");
    let dir = check_config_dir(&saml);
    let (code, stderr) = check_config(dir.path(), &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("config.json: apps.web.providers.keycloak.type: `saml`"),
        "{stderr}"
    );
}
