//! A gateway configured only by a project's unmodified Mia files: the authentication service's
//! `config.json` and the authorization service's `auth.json` (committed under
//! `tests/fixtures/mia/`), the test IdP mounted like a Keycloak realm, idgate without `[apps]`
//! in its TOML, and Nginx. Shared by `tests/mia_compat.rs` and `tests/mia_contract.rs`.

use std::path::{Path, PathBuf};

use super::{config_toml, fixture, free_port, Idgate, Idp, Nginx, Setup, Stack, CLIENT_SECRET};

/// Where the test IdP mounts itself, like a Keycloak realm (the fixture's URLs use this realm).
pub const REALM_PATH: &str = "/auth/realms/test";

/// The committed `config.json` stays byte for byte as a project would have it, with the
/// Console-style placeholders `{{KEYCLOAK_URL}}`, `{{MY_HOST}}` and `{{KEYCLOAK_CLIENT_SECRET}}`
/// (the IdP's and Nginx's addresses are only known at runtime). Like the Console, the test
/// interpolates them into a copy; the placeholders sit after `https://` as in the original
/// documentation, and the test servers speak plain http, so the scheme goes with them.
pub fn interpolate_config(dir: &Path, site: &str, idp_issuer: &str) -> PathBuf {
    let keycloak = idp_issuer
        .strip_suffix(REALM_PATH)
        .expect("IdP mounted under the realm path");
    let text = std::fs::read_to_string(fixture("mia/config.json"))
        .unwrap()
        .replace("https://{{KEYCLOAK_URL}}", keycloak)
        .replace("https://{{MY_HOST}}", site)
        .replace("{{KEYCLOAK_CLIENT_SECRET}}", CLIENT_SECRET);
    assert!(!text.contains("{{"), "a placeholder was left: {text}");
    let path = dir.join("config.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// IdP (as a Keycloak realm), idgate configured by the Mia files, Nginx: the whole gateway.
/// `users`: the `[users]` section (the embedded store when `None`).
pub fn stack(users: Option<String>) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(
        &[format!("{site}/web-login/oauth/callback")],
        &["--issuer-path", REALM_PATH],
    );
    let config_json = interpolate_config(dir.path(), &site, &idp.issuer);
    // `extra` is written before `[server]`: the two top-level keys, then a `[headers]` table.
    let extra = format!(
        "mia_config = \"{}\"\nmia_auth = \"{}\"\n\n[headers]\nuser_properties = [\"name\", \"metadata\"]\n",
        config_json.display(),
        fixture("mia/auth.json").display()
    );
    let setup = Setup {
        extra: Box::leak(extra.into_boxed_str()),
        omit_apps: true,
        users,
        ..Setup::default()
    };
    let config = config_toml(&setup, dir.path(), &site, &idp.issuer);
    assert!(!config.contains("[apps"), "{config}");
    let idgate = Idgate::start(dir.path(), &config);
    let nginx = Nginx::start(&dir.path().join("nginx"), port, idgate.addr);
    Stack {
        dir,
        nginx,
        idgate,
        idp,
    }
}
