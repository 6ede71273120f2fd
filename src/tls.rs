//! Whom idgate trusts when it opens a TLS connection: the certificate authorities for the
//! identity providers, the CRUD service and Redis. It exists because those servers often sit
//! behind a project's private CA (Mia's `ADDITIONALS_CA_FOLDER` and `REDIS_TLS_CACERT`), which
//! the built-in roots do not know, and because every client must then trust it the same way.
//!
//! ```toml
//! [tls]                        # every client
//! ca_files = ["/etc/idgate/ca/corp-root.pem"]   # PEM files, one or more certificates each
//! ca_dirs = ["/etc/idgate/ca.d"]                # every non-hidden file in the folder
//! builtin_roots = true         # the Mozilla roots compiled into idgate (default true)
//! system_roots = false         # the operating system's trust store (default false)
//!
//! [tls.idp]                    # optional, per client: `idp`, `crud`, `redis`; a key set here
//! ca_dirs = ["/etc/idp-ca"]    # replaces the same key of [tls] for that client only
//! ```
//!
//! A file that is missing, unreadable, not PEM or holding no valid certificate stops startup,
//! naming it (`tls.idp.ca_dirs: /etc/idp-ca/x.pem: …`): a CA that silently failed to load would
//! only show up as failed logins. Hidden entries of a folder (`.` names, such as the `..data`
//! links of a Kubernetes volume) are skipped. A trust that would trust nothing (no built-in
//! roots, no system roots, no CA) is refused too.
//!
//! The system store is read once at startup (`SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else the
//! platform's usual bundle), like the files. Redis differs in one way: its client trusts either
//! its built-in roots or exactly the certificates it is given, so when the Redis trust names a
//! CA (or the system store) the built-in roots are not added to it — the Redis server's CA is
//! then the only one accepted, as with the original service's `REDIS_TLS_CACERT`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;

/// A `[tls]` setting idgate cannot use: the key (`tls.idp.ca_dirs`) and why. The config layer
/// reports it like any other invalid key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsConfigError {
    pub key: String,
    pub message: String,
}

/// The `[tls]` section as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    #[serde(default)]
    pub ca_files: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub ca_dirs: Option<Vec<PathBuf>>,
    pub builtin_roots: Option<bool>,
    pub system_roots: Option<bool>,
    /// Overrides for the identity providers' HTTP client.
    pub idp: Option<RawTrust>,
    /// Overrides for the CRUD service's HTTP client.
    pub crud: Option<RawTrust>,
    /// Overrides for the Redis connections.
    pub redis: Option<RawTrust>,
}

/// One client's overrides: each key set replaces the same key of `[tls]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrust {
    pub ca_files: Option<Vec<PathBuf>>,
    pub ca_dirs: Option<Vec<PathBuf>>,
    pub builtin_roots: Option<bool>,
    pub system_roots: Option<bool>,
}

/// The validated trust of every client.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    pub idp: Arc<TrustStore>,
    pub crud: Arc<TrustStore>,
    pub redis: Arc<TrustStore>,
}

/// What one client trusts, with the certificates already read and checked.
#[derive(Clone)]
pub struct TrustStore {
    /// The roots compiled into idgate (webpki-roots, Mozilla's list).
    pub builtin_roots: bool,
    /// Whether the operating system's store was loaded into `certs`.
    pub system_roots: bool,
    /// The private CAs and, with `system_roots`, the system's: DER certificates.
    certs: Vec<CertificateDer<'static>>,
    /// Where the private CAs came from (paths), for the startup log.
    sources: Vec<PathBuf>,
}

impl Default for TrustStore {
    /// The built-in roots only: what idgate trusts without a `[tls]` section.
    fn default() -> Self {
        Self {
            builtin_roots: true,
            system_roots: false,
            certs: Vec::new(),
            sources: Vec::new(),
        }
    }
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("builtin_roots", &self.builtin_roots)
            .field("system_roots", &self.system_roots)
            .field("certs", &self.certs.len())
            .field("sources", &self.sources)
            .finish()
    }
}

impl TrustStore {
    /// Whether anything beyond the built-in roots is trusted.
    pub fn is_default(&self) -> bool {
        self.builtin_roots && self.certs.is_empty()
    }

    /// The number of extra certificates (private CAs and system roots).
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// One line for the startup log: what this client trusts.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.builtin_roots {
            parts.push("built-in roots".to_owned());
        }
        if self.system_roots {
            parts.push("the system trust store".to_owned());
        }
        for s in &self.sources {
            parts.push(s.display().to_string());
        }
        parts.join(", ")
    }

    /// `builder` trusting exactly this store (reqwest with rustls).
    pub fn apply_to(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        let mut builder = builder.tls_built_in_root_certs(self.builtin_roots);
        for cert in &self.certs {
            builder = builder.add_root_certificate(reqwest::Certificate::from_der(cert.as_ref())?);
        }
        Ok(builder)
    }

    /// The certificates for a Redis TLS connection, or `None` to keep the Redis client's
    /// built-in roots (see the module doc).
    pub fn redis_certificates(&self) -> Option<redis::TlsCertificates> {
        if self.certs.is_empty() {
            return None;
        }
        let mut pem = String::new();
        for cert in &self.certs {
            pem.push_str(&pem_of(cert.as_ref()));
        }
        Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.into_bytes()),
        })
    }
}

/// A DER certificate as a PEM block.
fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> TlsConfigError {
    TlsConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Files of a CA folder read at most (a folder is a handful of CAs; a huge one is a mistake).
const MAX_DIR_ENTRIES: usize = 1000;
/// Bytes of one CA file read at most (a full system bundle is about 250 KB).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Validates `[tls]`; `resolve` turns relative paths into absolute ones.
pub fn validate(
    raw: RawTls,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<TlsConfig, TlsConfigError> {
    let base = RawTrust {
        ca_files: raw.ca_files,
        ca_dirs: raw.ca_dirs,
        builtin_roots: raw.builtin_roots,
        system_roots: raw.system_roots,
    };
    let one = |name: &str, over: Option<RawTrust>| -> Result<Arc<TrustStore>, TlsConfigError> {
        let over = over.unwrap_or_default();
        let key = |k: &str, set: bool| {
            if set {
                format!("tls.{name}.{k}")
            } else {
                format!("tls.{k}")
            }
        };
        let merged = Merged {
            ca_files: (
                key("ca_files", over.ca_files.is_some()),
                over.ca_files
                    .or_else(|| base.ca_files.clone())
                    .unwrap_or_default(),
            ),
            ca_dirs: (
                key("ca_dirs", over.ca_dirs.is_some()),
                over.ca_dirs
                    .or_else(|| base.ca_dirs.clone())
                    .unwrap_or_default(),
            ),
            builtin_roots: over.builtin_roots.or(base.builtin_roots).unwrap_or(true),
            system_roots: over.system_roots.or(base.system_roots).unwrap_or(false),
        };
        load(&format!("tls.{name}"), merged, resolve).map(Arc::new)
    };
    Ok(TlsConfig {
        idp: one("idp", raw.idp)?,
        crud: one("crud", raw.crud)?,
        redis: one("redis", raw.redis)?,
    })
}

/// One client's keys after the overrides, each list with the key that set it (for errors).
struct Merged {
    ca_files: (String, Vec<PathBuf>),
    ca_dirs: (String, Vec<PathBuf>),
    builtin_roots: bool,
    system_roots: bool,
}

fn load(
    name: &str,
    m: Merged,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<TrustStore, TlsConfigError> {
    let mut store = TrustStore {
        builtin_roots: m.builtin_roots,
        system_roots: m.system_roots,
        certs: Vec::new(),
        sources: Vec::new(),
    };
    let (files_key, files) = m.ca_files;
    for file in files {
        let path = resolve(&file);
        store
            .certs
            .extend(read_pem(&path).map_err(|e| invalid(&files_key, e))?);
        store.sources.push(path);
    }
    let (dirs_key, dirs) = m.ca_dirs;
    for dir in dirs {
        let dir = resolve(&dir);
        let files = dir_files(&dir).map_err(|e| invalid(&dirs_key, e))?;
        if files.is_empty() {
            return Err(invalid(
                &dirs_key,
                format!("{}: holds no certificate file", dir.display()),
            ));
        }
        for path in files {
            store
                .certs
                .extend(read_pem(&path).map_err(|e| invalid(&dirs_key, e))?);
        }
        store.sources.push(dir);
    }
    if m.system_roots {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let why = found
                .errors
                .first()
                .map(ToString::to_string)
                .unwrap_or_else(|| "no certificate found".into());
            return Err(invalid(
                format!("{name}.system_roots"),
                format!("the system trust store cannot be read: {why}"),
            ));
        }
        store.certs.extend(found.certs);
    }
    if !store.builtin_roots && store.certs.is_empty() {
        return Err(invalid(
            format!("{name}.builtin_roots"),
            "false with no CA and no system roots: this client would trust no server",
        ));
    }
    Ok(store)
}

/// The non-hidden regular files of `dir` (symbolic links followed), sorted.
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
            if files.len() > MAX_DIR_ENTRIES {
                return Err(format!(
                    "{}: more than {MAX_DIR_ENTRIES} files",
                    dir.display()
                ));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Every certificate of the PEM file at `path`, each checked to be usable as a trust anchor.
fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{shown}: larger than {MAX_FILE_BYTES} bytes"));
    }
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| format!("{shown}: not PEM: {e}"))?;
        webpki::anchor_from_trusted_cert(&cert).map_err(|e| {
            format!(
                "{shown}: certificate {}: not a valid X.509 certificate: {e}",
                i + 1
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!(
            "{shown}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests;
