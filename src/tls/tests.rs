//! `[tls]` validation: which files are read, what stops startup, how overrides combine.

use super::*;

fn ca_pem() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/test-ca.pem");
    std::fs::read_to_string(path).unwrap_or_default()
}

fn parse(text: &str) -> RawTls {
    toml::from_str(text).unwrap_or_default()
}

fn validate_in(dir: &Path, text: &str) -> Result<TlsConfig, TlsConfigError> {
    let raw: RawTls = toml::from_str(text).map_err(|e| invalid("tls", e.to_string()))?;
    validate(raw, &|p: &Path| dir.join(p))
}

fn message(r: Result<TlsConfig, TlsConfigError>) -> String {
    match r {
        Ok(_) => "accepted".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn no_section_trusts_the_builtin_roots_only() -> Result<(), TlsConfigError> {
    let tls = validate(RawTls::default(), &|p: &Path| p.to_owned())?;
    for t in [&tls.idp, &tls.crud, &tls.redis] {
        assert!(t.is_default());
        assert!(t.redis_certificates().is_none());
    }
    Ok(())
}

#[test]
fn files_and_folders_are_read_and_overrides_apply_per_client() -> Result<(), TlsConfigError> {
    let dir = tempfile::tempdir().map_err(|e| invalid("tmp", e.to_string()))?;
    let pem = ca_pem();
    assert!(pem.contains("BEGIN CERTIFICATE"));
    std::fs::write(dir.path().join("root.pem"), &pem).ok();
    std::fs::create_dir(dir.path().join("cas")).ok();
    // Two CAs in one bundle, one file per CA, and the hidden entries of a Kubernetes volume.
    std::fs::write(dir.path().join("cas/a.crt"), format!("{pem}{pem}")).ok();
    std::fs::write(dir.path().join("cas/b.pem"), &pem).ok();
    std::fs::write(dir.path().join("cas/.hidden"), "not a certificate").ok();
    std::fs::create_dir(dir.path().join("cas/..data")).ok();
    let tls = validate_in(
        dir.path(),
        r#"
ca_files = ["root.pem"]
[idp]
ca_dirs = ["cas"]
[redis]
ca_files = []
"#,
    )?;
    assert_eq!(tls.crud.len(), 1);
    assert!(tls.crud.builtin_roots);
    assert_eq!(
        tls.idp.len(),
        4,
        "the [tls] file and the folder's three certificates"
    );
    assert!(
        tls.redis.is_default(),
        "[tls.redis] ca_files = [] replaces the list"
    );
    // Redis gets the CA as PEM, parsed back to the same certificate.
    let certs = tls.crud.redis_certificates().and_then(|c| c.root_cert);
    let again: Vec<_> = certs
        .iter()
        .flat_map(|b| CertificateDer::pem_slice_iter(b))
        .filter_map(Result::ok)
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again.first().map(|c| c.to_vec()),
        tls.crud.certs.first().map(|c| c.to_vec())
    );
    Ok(())
}

#[test]
fn a_missing_or_bad_ca_stops_startup_naming_it() {
    let dir = tempfile::tempdir().ok();
    let Some(dir) = dir else { return };
    let d = dir.path();
    let pem = ca_pem();
    std::fs::write(d.join("garbage.pem"), "hello").ok();
    // PEM armour around bytes that are not a certificate.
    std::fs::write(
        d.join("notx509.pem"),
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .ok();
    let broken = pem.replacen("MII", "MIJ", 1);
    std::fs::write(d.join("broken.pem"), broken).ok();
    std::fs::create_dir(d.join("empty")).ok();
    std::fs::create_dir(d.join("mixed")).ok();
    std::fs::write(d.join("mixed/ok.pem"), &pem).ok();
    std::fs::write(d.join("mixed/readme.txt"), "a note").ok();

    let m = message(validate_in(d, r#"ca_files = ["absent.pem"]"#));
    assert!(
        m.starts_with("tls.ca_files: ") && m.contains("absent.pem"),
        "{m}"
    );
    let m = message(validate_in(d, r#"ca_files = ["garbage.pem"]"#));
    assert!(
        m.contains("garbage.pem") && m.contains("no PEM certificate"),
        "{m}"
    );
    let m = message(validate_in(d, r#"ca_files = ["notx509.pem"]"#));
    assert!(
        m.contains("notx509.pem") && m.contains("not a valid X.509"),
        "{m}"
    );
    let m = message(validate_in(d, r#"ca_files = ["broken.pem"]"#));
    assert!(m.contains("broken.pem"), "{m}");
    let m = message(validate_in(d, "[crud]\nca_dirs = [\"empty\"]"));
    assert!(
        m.starts_with("tls.crud.ca_dirs: ") && m.contains("no certificate file"),
        "{m}"
    );
    let m = message(validate_in(d, r#"ca_dirs = ["mixed"]"#));
    assert!(m.contains("readme.txt"), "{m}");
    let m = message(validate_in(d, r#"ca_dirs = ["nowhere"]"#));
    assert!(m.contains("nowhere"), "{m}");
    // Trusting nothing is refused, naming the client.
    let m = message(validate_in(d, "[redis]\nbuiltin_roots = false"));
    assert!(m.starts_with("tls.redis.builtin_roots: "), "{m}");
    // Unknown keys are refused like everywhere in the TOML.
    assert!(toml::from_str::<RawTls>("ca_file = []").is_err());
    assert!(toml::from_str::<RawTls>("[idp]\nca = []").is_err());
    assert!(parse("builtin_roots = false").builtin_roots == Some(false));
}

#[test]
fn builtin_roots_off_with_a_ca_trusts_only_the_ca() -> Result<(), TlsConfigError> {
    let dir = tempfile::tempdir().map_err(|e| invalid("tmp", e.to_string()))?;
    std::fs::write(dir.path().join("ca.pem"), ca_pem()).ok();
    let tls = validate_in(dir.path(), "builtin_roots = false\nca_files = [\"ca.pem\"]")?;
    assert!(!tls.idp.builtin_roots);
    assert_eq!(tls.idp.len(), 1);
    assert!(
        tls.idp.describe().ends_with("ca.pem"),
        "{}",
        tls.idp.describe()
    );
    Ok(())
}
