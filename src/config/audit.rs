//! `[audit]`: where the audit trail goes (see `audit`). Absent, there is no trail.

use std::path::{Path, PathBuf};

use super::raw::RawAudit;
use super::ConfigError;

/// The default `queue`: events waiting for the writer before new ones are dropped.
pub const DEFAULT_AUDIT_QUEUE: usize = 8192;

/// The largest `queue` accepted.
const MAX_AUDIT_QUEUE: usize = 1 << 20;

/// The validated `[audit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The file, or standard output.
    pub target: AuditTarget,
    /// Capacity of the queue in front of the writer.
    pub queue: usize,
}

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Appended to this file (resolved against the config's folder), reopened on SIGHUP.
    File(PathBuf),
    /// Standard output (`path = "stdout"`), for journald or a container's log.
    Stdout,
}

/// `[audit]`: `path` (a file, or `"stdout"`) and `queue` (1 to 1048576, default 8192).
pub(super) fn validate(
    raw: Option<RawAudit>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Option<AuditConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let target = match raw.path.as_str() {
        "" => return Err(ConfigError::invalid("audit.path", "must not be empty")),
        "stdout" => AuditTarget::Stdout,
        path if path.ends_with('/') => {
            return Err(ConfigError::invalid(
                "audit.path",
                format!(
                    "`{path}` names a folder; name the file (e.g. /var/log/idgate/audit.jsonl)"
                ),
            ))
        }
        path => AuditTarget::File(resolve(Path::new(path))),
    };
    let queue = raw.queue.unwrap_or(DEFAULT_AUDIT_QUEUE);
    if !(1..=MAX_AUDIT_QUEUE).contains(&queue) {
        return Err(ConfigError::invalid(
            "audit.queue",
            format!("{queue} is not between 1 and {MAX_AUDIT_QUEUE}"),
        ));
    }
    Ok(Some(AuditConfig { target, queue }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, queue: Option<usize>) -> Result<Option<AuditConfig>, ConfigError> {
        let raw = RawAudit {
            path: path.into(),
            queue,
        };
        validate(Some(raw), &|p: &Path| Path::new("/etc/idgate").join(p))
    }

    #[test]
    fn paths_queues_and_absence() {
        assert_eq!(validate(None, &|p: &Path| p.to_owned()).unwrap(), None);
        let c = check("audit.jsonl", None).unwrap().unwrap();
        assert_eq!(
            c.target,
            AuditTarget::File("/etc/idgate/audit.jsonl".into())
        );
        assert_eq!(c.queue, DEFAULT_AUDIT_QUEUE);
        let c = check("/var/log/idgate/audit.jsonl", Some(16))
            .unwrap()
            .unwrap();
        assert_eq!(
            c.target,
            AuditTarget::File("/var/log/idgate/audit.jsonl".into())
        );
        assert_eq!(c.queue, 16);
        assert_eq!(
            check("stdout", None).unwrap().unwrap().target,
            AuditTarget::Stdout
        );
        for (path, queue, key) in [
            ("", None, "audit.path"),
            ("/var/log/idgate/", None, "audit.path"),
            ("a.jsonl", Some(0), "audit.queue"),
            ("a.jsonl", Some(MAX_AUDIT_QUEUE + 1), "audit.queue"),
        ] {
            match check(path, queue) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{path:?} {queue:?}: {other:?}"),
            }
        }
    }
}
