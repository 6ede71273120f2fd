//! The audit trail's lines, its queue that never waits, its reopening, and its cost when off.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::*;
use crate::config::{AuditConfig, AuditTarget};

const SID: &str = "s3cr3t-session-id-that-must-never-be-written";

fn line(event: &Event) -> Value {
    let bytes = event.to_line().unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'));
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
    serde_json::from_slice(&bytes).unwrap()
}

fn origin_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        HeaderValue::from_static("6.6.6.6, 192.0.2.7"),
    );
    h.insert("user-agent", HeaderValue::from_static("Mozilla/5.0 (X11)"));
    h.insert("x-request-id", HeaderValue::from_static("0af7651916cd43dd"));
    h
}

#[test]
fn a_line_has_every_common_field_and_the_kinds_own() {
    let headers = origin_headers();
    let origin = Origin {
        peer: "127.0.0.1:5000".parse::<SocketAddr>().ok(),
        trusted: true,
        headers: &headers,
    };
    let v = line(
        &Event::login_ok()
            .user("u-1")
            .app("web")
            .provider("dev")
            .session(SID)
            .from(&origin),
    );
    assert_eq!(v["event"], "login");
    assert_eq!(v["outcome"], "success");
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["user_id"], "u-1");
    assert_eq!(v["app"], "web");
    assert_eq!(v["provider"], "dev");
    assert_eq!(
        v["client_addr"], "192.0.2.7",
        "the proxy's entry, not the client's"
    );
    assert_eq!(v["user_agent"], "Mozilla/5.0 (X11)");
    assert_eq!(v["request_id"], "0af7651916cd43dd");
    // The session's public handle (what `/me/sessions` shows), never its id.
    let hash = v["session_hash"].as_str().unwrap();
    assert_eq!(hash, crate::crypto::session_handle(SID), "{v}");
    assert_eq!(session_hash("abc"), crate::crypto::session_handle("abc"));
    assert!(!session_hash("abc").contains("abc"));
    let time = v["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
    let text = String::from_utf8(Event::login_ok().session(SID).to_line().unwrap()).unwrap();
    assert!(!text.contains(SID), "{text}");

    // Unknown fields are there, as null: every line has the same keys.
    let v = line(&Event::revoke(RevokedBy::Backchannel));
    for key in [
        "time",
        "event",
        "user_id",
        "app",
        "provider",
        "session_hash",
        "client_addr",
        "user_agent",
        "request_id",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(v["by"], "backchannel");

    let cases = [
        (
            Event::login_failed("invalid_state"),
            r#""event":"login","outcome":"failure","reason":"invalid_state""#,
        ),
        (Event::renewal(), r#""event":"renewal","user_id""#),
        (Event::refresh(), r#""event":"refresh","user_id""#),
        (Event::logout(), r#""event":"logout","user_id""#),
        (
            Event::revoke(RevokedBy::Admin),
            r#""event":"revoke","by":"admin""#,
        ),
        (Event::revoke(RevokedBy::User), r#""by":"user""#),
        (
            Event::revoke(RevokedBy::RefreshReuse),
            r#""by":"refresh_reuse""#,
        ),
        (
            Event::deny("policy", Some("r-admin".into())),
            r#""event":"deny","reason":"policy","route":"r-admin""#,
        ),
        (
            Event::deny("untrusted_peer", None),
            r#""reason":"untrusted_peer","route":null"#,
        ),
        (
            Event::step_up(Outcome::Success, None, Some("mfa".into())),
            r#""event":"step_up","outcome":"success","reason":null,"acr":"mfa""#,
        ),
    ];
    for (event, expected) in cases {
        let text = String::from_utf8(event.to_line().unwrap()).unwrap();
        assert!(text.contains(expected), "{expected} not in {text}");
        assert!(text.starts_with(r#"{"time":""#), "{text}");
    }
    // An administrator-minted session has no provider: null, not "".
    assert_eq!(line(&Event::logout().provider(""))["provider"], Value::Null);
}

fn config(path: &std::path::Path, queue: usize) -> AuditConfig {
    AuditConfig {
        target: AuditTarget::File(path.to_owned()),
        queue,
    }
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// On this single-threaded runtime the writer cannot run before the test yields: a queue of two
/// takes two events, and `emit` (a plain function: it cannot wait) drops and counts the rest.
#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let dropped = Counter::default();
    let (audit, writer) = Audit::start(Some(&config(&path, 2)), dropped.clone()).unwrap();
    for user in ["a", "b", "c", "d", "e"] {
        audit.emit(|| Event::logout().user(user));
    }
    assert_eq!(dropped.get(), 3);
    drop(audit);
    writer.unwrap().await.unwrap();
    let written = lines(&path);
    let users: Vec<_> = written.iter().map(|v| v["user_id"].clone()).collect();
    assert_eq!(users, ["a", "b"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[tokio::test]
async fn off_builds_nothing() {
    let (audit, writer) = Audit::start(None, Counter::default()).unwrap();
    assert!(writer.is_none() && !audit.is_on());
    audit.emit(|| unreachable!("an event built while the trail is off"));
    audit.reopen();
}

#[tokio::test]
async fn reopen_writes_on_to_a_new_file_at_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let (audit, writer) = Audit::start(Some(&config(&path, 16)), Counter::default()).unwrap();
    audit.emit(|| Event::logout().user("before"));
    for _ in 0..500 {
        if !lines(&path).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::rename(&path, &rotated).unwrap();
    audit.reopen();
    audit.emit(|| Event::logout().user("after"));
    drop(audit);
    writer.unwrap().await.unwrap();
    assert_eq!(lines(&rotated).len(), 1);
    assert_eq!(lines(&rotated)[0]["user_id"], "before");
    assert_eq!(lines(&path).len(), 1);
    assert_eq!(lines(&path)[0]["user_id"], "after");
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-folder/audit.jsonl");
    let err = Audit::start(Some(&config(&path, 16)), Counter::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("missing-folder"), "{err}");
}
