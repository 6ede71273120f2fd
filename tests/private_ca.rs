//! Servers behind a private certificate authority (`[tls]`, `src/tls.rs`), with a CA and
//! server certificates made by `openssl` for each test:
//!
//! - an identity provider over HTTPS — Bitbucket Server, configured by an unmodified Mia
//!   `config.json` — through Nginx: the login fails without the CA and succeeds when Mia's own
//!   `ADDITIONALS_CA_FOLDER` names a folder holding it; a folder without a certificate stops
//!   startup naming the variable;
//! - the CRUD service over HTTPS (`tests/js/https-json.mjs` standing for it): unreachable without
//!   the CA, reachable with `[tls] ca_files`;
//! - Redis over TLS (`redis-server --tls-port`): refused without the CA, reachable with
//!   `[tls.redis]`, and with Mia's `REDIS_TLS` + `REDIS_TLS_CACERT`, which also drop the public
//!   roots for Redis (a server certificate from another CA is then refused).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::redis::RedisServer;
use common::*;
use idgate::config::{Config, StoreConfig, UsersConfig};

/// A CA and a server certificate it signed for 127.0.0.1 and localhost, in `dir`.
struct TestCa {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `<name>-ca.pem` and a server certificate (`<name>-server.pem`, `-server.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> TestCa {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let key = format!("{name}-server.key");
    let csr = format!("{name}-server.csr");
    let cert = format!("{name}-server.pem");
    let subject = format!("/CN=idgate test CA {name}");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-subj",
        &subject,
        "-days",
        "2",
        "-out",
        &ca,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-subj", "/CN=127.0.0.1", "-out", &csr]);
    openssl(dir, &args);
    let ext = format!("{name}-ext.cnf");
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
    TestCa {
        ca: dir.join(ca),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A node script of `tests/js` over HTTPS with `ca`'s server certificate; returns it and its URL.
fn https_fake(script: &str, ca: &TestCa, extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/js").join(script))
        .arg("--tls-cert")
        .arg(&ca.cert)
        .arg("--tls-key")
        .arg(&ca.key)
        .args(extra);
    let mut proc = Proc::spawn(script, &mut cmd);
    let line = proc.first_stdout_line();
    let v: serde_json::Value = serde_json::from_str(&line).expect("the fake prints JSON");
    let url = v["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with("https://"), "{url}");
    (proc, url)
}

/// idgate started like `Idgate::start`, with `env` added to its environment.
fn idgate_with_env(dir: &Path, config_toml: &str, env: &[(&str, &Path)]) -> Idgate {
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    Idgate::start_with_env(Path::new(idgate_bin()), dir, config_toml, &env)
}

/// Mia's documented Bitbucket Server example, pointed at `server` (the fake, context `/bitbucket`).
fn mia_config_json(dir: &Path, site: &str, server: &str) -> PathBuf {
    let base = format!("{server}/bitbucket");
    let json = serde_json::json!({"apps": {"web": {
        "providers": {"bitbucket": {
            "type": "bitbucket",
            "clientId": "idgate",
            "clientSecret": CLIENT_SECRET,
            "authUrl": format!("{base}/rest/oauth2/latest/authorize"),
            "tokenUrl": format!("{base}/rest/oauth2/latest/token"),
            "userInfoUrl": format!("{base}/plugins/servlet/applinks/whoami"),
            "baseUrl": format!("{base}/rest/oauth2/latest"),
            "scope": ["PUBLIC_REPOS"],
            "order": 10,
            "userSettingsURL": format!("{base}/profile/")
        }},
        "redirectUrl": format!("{site}/web-login/oauth/callback"),
        "realm": "web",
        "issuer": site,
        "isWebsiteApp": true,
        "defaultGroups": ["users"],
        "allowedRedirectUrlsOnSuccessfulLogin": [format!("{site}/")]
    }}});
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    path
}

/// Logs in at the site through the Bitbucket Server provider; the person's browser trusts the
/// test CA (idgate is what is under test). Returns the `/oauth/token` status.
async fn login_through_bitbucket(site: &str, ca: &TestCa) -> u16 {
    let browser = Browser::new();
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=bitbucket&redirect=%2Fdocs%2F"
        ))
        .await;
    assert_eq!(resp.status(), 302);
    let at_idp = location(&resp);
    assert!(at_idp.starts_with("https://127.0.0.1:"), "{at_idp}");
    let person = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.ca).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = person.get(&at_idp).send().await.unwrap();
    assert_eq!(resp.status(), 302, "the fake approves");
    let callback = location(&resp);
    assert!(
        callback.starts_with(&format!("{site}/web-login/")),
        "{callback}"
    );
    browser.exchange(site, &callback).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_behind_a_private_ca_is_trusted_through_mias_ca_folder() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "idp");
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let (server, server_url) = https_fake(
        "fake-bitbucket-server.mjs",
        &ca,
        &[
            "--client-id",
            "idgate",
            "--client-secret",
            CLIENT_SECRET,
            "--redirect-uri",
            &format!("{site}/web-login/oauth/callback"),
        ],
    );
    let config_json = mia_config_json(dir.path(), &site, &server_url);
    let extra = format!("mia_config = \"{}\"\n", config_json.display());
    let setup = Setup {
        extra: Box::leak(extra.into_boxed_str()),
        omit_apps: true,
        ..Setup::default()
    };
    let cas = dir.path().join("cas");
    std::fs::create_dir(&cas).unwrap();
    std::fs::copy(&ca.ca, cas.join("corp-root.crt")).unwrap();

    // Without the CA: the code exchange fails the TLS handshake, and the login with it.
    {
        let run = dir.path().join("without");
        std::fs::create_dir(&run).unwrap();
        let config = config_toml(&setup, &run, &site, "http://127.0.0.1:1");
        let idgate = idgate_with_env(&run, &config, &[]);
        let _nginx = Nginx::start(&run.join("nginx"), port, idgate.addr);
        let status = login_through_bitbucket(&site, &ca).await;
        assert_ne!(
            status, 200,
            "a server the CA store does not know is refused"
        );
        idgate.proc.wait_log(&["UnknownIssuer"]);
        assert!(
            !server.log_text().contains("token issued"),
            "{}",
            server.log_text()
        );
    }

    // With Mia's ADDITIONALS_CA_FOLDER naming the folder: the same login succeeds.
    let run = dir.path().join("with");
    std::fs::create_dir(&run).unwrap();
    let config = config_toml(&setup, &run, &site, "http://127.0.0.1:1");
    let idgate = idgate_with_env(&run, &config, &[("ADDITIONALS_CA_FOLDER", &cas)]);
    idgate
        .proc
        .wait_log(&["ADDITIONALS_CA_FOLDER", "tls.idp: trusting built-in roots"]);
    let _nginx = Nginx::start(&run.join("nginx"), port, idgate.addr);
    assert_eq!(login_through_bitbucket(&site, &ca).await, 200);
    server.wait_log(&["token issued (form)"]);
    let users = idgate.users();
    assert_eq!(users[0]["providerId"], "bitbucket", "{users}");
    assert_eq!(users[0]["providerUserId"], "jsmith", "{users}");
    assert_eq!(users[0]["email"], "jsmith@example.test", "{users}");

    // A CA folder holding no certificate stops startup, naming the variable and the folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = idgate_command(Path::new(idgate_bin()))
        .args(["check-config", "--config"])
        .arg(run.join("idgate.toml"))
        .env("ADDITIONALS_CA_FOLDER", &empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("tls.idp.ca_dirs (from ADDITIONALS_CA_FOLDER)")
            && stderr.contains(&empty.display().to_string()),
        "{stderr}"
    );
}

/// A config with the CRUD service at `crud_url` and `tls` appended; validated in-process.
fn crud_config(dir: &Path, crud_url: &str, tls: &str) -> Config {
    let setup = Setup {
        users: Some(format!(
            "[users]\nkind = \"crud\"\nbase_url = \"{crud_url}/users\"\ntimeout = \"3s\""
        )),
        ..Setup::default()
    };
    let toml = config_toml(&setup, dir, "http://127.0.0.1:9", "http://127.0.0.1:1") + tls;
    let path = dir.join("idgate.toml");
    std::fs::write(&path, toml).unwrap();
    Config::load_with_env(&path, &HashMap::new()).unwrap()
}

async fn ping_crud(config: &Config) -> Result<(), String> {
    let UsersConfig::Crud(crud) = &config.users else {
        panic!("users is not crud")
    };
    let users = idgate::store::crud::open_users_with_trust(crud, &config.tls.crud)
        .map_err(|e| e.to_string())?;
    users.ping_users().await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crud_service_behind_a_private_ca_is_trusted_with_tls_ca_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "crud");
    let (crud, url) = https_fake("https-json.mjs", &ca, &[]);

    let without = crud_config(dir.path(), &url, "");
    let err = ping_crud(&without)
        .await
        .expect_err("an unknown CA is refused");
    assert!(err.contains("crud service"), "{err}");
    assert!(
        !crud.log_text().contains("GET /users/count"),
        "no request got through"
    );

    let with = crud_config(
        dir.path(),
        &url,
        &format!("\n[tls]\nca_files = [\"{}\"]\n", ca.ca.display()),
    );
    ping_crud(&with).await.unwrap();
    crud.wait_log(&["GET /users/count"]);
    // The IdP client of the same config trusts the CA too ([tls] is every client's default).
    assert_eq!(with.tls.idp.len(), 1);
}

/// A Redis server with a TLS port whose certificate `ca` signed; returns it and the TLS port.
fn tls_redis(dir: &Path, ca: &TestCa) -> (RedisServer, u16) {
    let tls_port = free_port();
    let tls_port_s = tls_port.to_string();
    let server = RedisServer::start(
        dir,
        &[
            "--tls-port",
            &tls_port_s,
            "--tls-cert-file",
            ca.cert.to_str().unwrap(),
            "--tls-key-file",
            ca.key.to_str().unwrap(),
            "--tls-ca-cert-file",
            ca.ca.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
        ],
    );
    (server, tls_port)
}

async fn ping_redis(config: &Config) -> Result<(), String> {
    let StoreConfig::Redis(redis) = &config.store else {
        panic!("store is not redis")
    };
    let (_, sessions) = idgate::store::redis::open_with_trust(redis, &config.tls.redis)
        .await
        .map_err(|e| e.to_string())?;
    sessions.ping_sessions().await.map_err(|e| e.to_string())
}

fn redis_config(dir: &Path, env: &[(&str, String)], toml_extra: &str) -> Config {
    let setup = Setup {
        store: Some("".into()),
        users: Some("[users]\nkind = \"embedded\"\npath = \"users.db\"".into()),
        ..Setup::default()
    };
    let toml = config_toml(&setup, dir, "http://127.0.0.1:9", "http://127.0.0.1:1") + toml_extra;
    let path = dir.join("idgate.toml");
    std::fs::write(&path, toml).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Config::load_with_env(&path, &env).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_behind_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "redis");
    let other = make_ca(dir.path(), "other");
    let (_redis, tls_port) = tls_redis(dir.path(), &ca);
    let hosts = format!("127.0.0.1:{tls_port}");

    // Mia's variables, without the CA: the public roots do not know it.
    let plain = [("REDIS_HOSTS", hosts.clone()), ("REDIS_TLS", "true".into())];
    let err = ping_redis(&redis_config(dir.path(), &plain, ""))
        .await
        .expect_err("an unknown CA is refused");
    assert!(err.contains("redis"), "{err}");

    // REDIS_TLS_CACERT: trusted.
    let mut mia = plain.to_vec();
    mia.push(("REDIS_TLS_CACERT", ca.ca.display().to_string()));
    let config = redis_config(dir.path(), &mia, "");
    assert!(!config.tls.redis.builtin_roots);
    ping_redis(&config).await.unwrap();

    // The TOML's own [tls.redis], on a rediss:// URL.
    let toml = format!("\n[tls.redis]\nca_files = [\"{}\"]\n", ca.ca.display());
    let store = format!("rediss://127.0.0.1:{tls_port}");
    ping_redis(&redis_config(
        dir.path(),
        &[("REDIS_HOSTS", store.clone())],
        &toml,
    ))
    .await
    .unwrap();

    // Another CA's certificate is not this server's: refused, built-in roots or not.
    let mut wrong = plain.to_vec();
    wrong.push(("REDIS_TLS_CACERT", other.ca.display().to_string()));
    ping_redis(&redis_config(dir.path(), &wrong, ""))
        .await
        .expect_err("only the named CA is trusted");
}
