//! Client authentication without a shared secret on the wire (RFC 7523), against the real
//! IdP (`oidc-provider`, which checks the assertion's signature, `iss`, `sub`, `aud`, `exp` and
//! refuses a replayed `jti`) configured for each method: `private_key_jwt` with a key made by
//! `idgate keygen` and registered with the public JWK `idgate keygen --public-jwk` prints, and
//! `client_secret_jwt`. A key or secret the IdP does not know is refused (400, the IdP's
//! `invalid_client`), and idgate says so, naming the provider and the method. The key file
//! never reaches a log line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::path::Path;

use common::*;

/// The harness's `web` app with the `dev` provider's credentials given by `credentials`.
fn app_with(credentials: &str) -> String {
    web_app(&[], credentials)
}

/// A new private key made by `idgate keygen --alg ALG --out`, and the public JWK
/// `idgate keygen --public-jwk` prints for it.
fn new_key(dir: &Path, alg: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(format!("client-{alg}.pem"));
    let (code, _, err) = idgate_cmd(&["keygen", "--alg", alg, "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    (key.clone(), public_jwk(&key))
}

fn public_jwk(key: &Path) -> String {
    let (code, out, err) = idgate_cmd(&["keygen", "--public-jwk", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let jwk: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(jwk["use"], "sig");
    assert!(jwk["kid"].as_str().is_some_and(|k| !k.is_empty()), "{jwk}");
    assert!(jwk.get("d").is_none(), "no private part: {jwk}");
    out.trim().to_owned()
}

/// A stack whose `dev` provider authenticates with `private_key_jwt` and `key`, at an IdP that
/// registered `registered_jwk`.
fn private_key_stack(key: &Path, registered_jwk: &str, extra: &str) -> Stack {
    let credentials = format!(
        "auth_method = \"private_key_jwt\"\nclient_key_file = \"{}\"\n{extra}",
        key.display()
    );
    Stack::start_with_idp(
        Setup {
            apps: Some(app_with(&credentials)),
            ..Setup::default()
        },
        &[
            "--token-auth-method",
            "private_key_jwt",
            "--client-jwks",
            registered_jwk,
        ],
    )
}

/// The key's PEM body never reaches idgate's log.
fn assert_key_not_logged(stack: &Stack, key: &Path) {
    let pem = std::fs::read_to_string(key).unwrap();
    let log = stack.idgate.proc.log_text();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "a line of the key file is in the log");
    }
    assert!(!log.contains("PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_es256_logs_in_with_par_and_every_assertion_is_used_once() {
    let keys = tempfile::tempdir().unwrap();
    let (key, jwk) = new_key(keys.path(), "ES256");
    // PAR too: the pushed request is authenticated the same way, with an assertion of its own.
    let stack = private_key_stack(&key, &jwk, "par = \"always\"");
    // Two logins: four assertions (PAR and token endpoint each), each with its own jti, or the
    // IdP would refuse the later ones as replays.
    for user in ["alice", "bob"] {
        let browser = Browser::new();
        let resp = login(&stack, &browser, "/", user).await;
        let status = resp.status();
        assert_eq!(
            status,
            200,
            "{}\nidgate:\n{}\nidp:\n{}",
            resp.text().await.unwrap(),
            stack.idgate.proc.log_tail(),
            stack.idp.proc.log_tail()
        );
        let page = browser.navigate(&format!("{}/", stack.site())).await;
        assert_eq!(page.status(), 200);
    }
    let idp_log = stack.idp.proc.log_text();
    assert!(!idp_log.contains(".error:"), "{idp_log}");
    assert_key_not_logged(&stack, &key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_rs256_logs_in() {
    let keys = tempfile::tempdir().unwrap();
    let (key, jwk) = new_key(keys.path(), "RS256");
    // Registered from a file this time, as a JWK set.
    let jwks = keys.path().join("client-jwks.json");
    std::fs::write(&jwks, format!("{{\"keys\": [{jwk}]}}")).unwrap();
    let stack = private_key_stack(&key, jwks.to_str().unwrap(), "par = \"never\"");
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "carol").await.status(), 200);
    assert_key_not_logged(&stack, &key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_idp_does_not_know_is_refused_and_idgate_says_why() {
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = new_key(keys.path(), "ES256");
    let (_, other_jwk) = new_key(keys.path(), "RS256");
    let stack = private_key_stack(&key, &other_jwk, "");
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "dave").await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("invalid_client")
            && message.contains("idgate authenticates to provider `dev` with private_key_jwt"),
        "{body}"
    );
    let log = stack.idgate.proc.wait_log(&[
        "login refused",
        "invalid_client",
        "idgate authenticates to provider `dev` with private_key_jwt",
    ]);
    assert!(browser.cookie(&stack.site(), "sid").is_none());
    stack.idp.proc.wait_log(&["grant.error: invalid_client"]);
    assert!(!log.contains("PRIVATE KEY"));
    assert_key_not_logged(&stack, &key);
}

/// A stack whose `dev` provider authenticates with `client_secret_jwt`, at an IdP whose client
/// secret is `idp_secret`.
fn secret_jwt_stack(idp_secret: &str, extra: &'static str) -> Stack {
    Stack::start_with_idp(
        Setup {
            extra_provider: extra,
            ..Setup::default()
        },
        &[
            "--token-auth-method",
            "client_secret_jwt",
            "--client-secret",
            idp_secret,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_jwt_logs_in_and_the_secret_never_travels() {
    let stack = secret_jwt_stack(CLIENT_SECRET, "auth_method = \"client_secret_jwt\"");
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "erin").await;
    assert_eq!(resp.status(), 200, "{}", stack.idp.proc.log_tail());
    assert!(!stack.idp.proc.log_text().contains(".error:"));
    assert!(!stack.idgate.proc.log_text().contains(CLIENT_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_jwt_with_another_secret_is_refused_and_idgate_says_why() {
    let stack = secret_jwt_stack(
        "another-client-secret-of-32-bytes!",
        "auth_method = \"client_secret_jwt\"",
    );
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "frank").await;
    assert_eq!(resp.status(), 400);
    stack.idgate.proc.wait_log(&[
        "login refused",
        "invalid_client",
        "idgate authenticates to provider `dev` with client_secret_jwt",
    ]);
    stack.idp.proc.wait_log(&["grant.error: invalid_client"]);
}

#[test]
fn a_bad_client_key_file_stops_startup_naming_the_path_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let wrong_type = fixture("ed25519.pem");
    let content = std::fs::read_to_string(&wrong_type).unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, why) in [
        (
            wrong_type.clone(),
            "not an RSA (RS256) or P-256 (ES256) private key",
        ),
        (missing.clone(), "No such file"),
        // A directory: unreadable as a file, even for root.
        (dir.path().to_owned(), "directory"),
    ] {
        let credentials = format!(
            "auth_method = \"private_key_jwt\"\nclient_key_file = \"{}\"",
            file.display()
        );
        let setup = Setup {
            apps: Some(app_with(&credentials)),
            ..Setup::default()
        };
        let config = config_toml(
            &setup,
            dir.path(),
            "http://127.0.0.1:8080",
            "http://127.0.0.1:1",
        );
        let path = dir.path().join("idgate.toml");
        std::fs::write(&path, config).unwrap();
        let (code, out, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 78, "{out}{err}");
        let text = format!("{out}{err}");
        assert!(
            text.contains("apps.web.providers.dev.client_key_file")
                && text.contains(&file.display().to_string())
                && text.contains(why),
            "{text}"
        );
        for line in content.lines() {
            assert!(
                !text.contains(line),
                "the key file's content is printed: {text}"
            );
        }
    }
}
