//! The audit trail (`[audit]`) through real Nginx (the shipped snippets), the real IdP and the
//! idgate binary: one JSON line per event with the documented fields, the client address Nginx
//! saw (not one the client claims), nothing secret in the file; the file reopened on SIGHUP
//! after logrotate renamed it; the revocations of an administrator (HTTP and CLI) and of the
//! IdP's back-channel logout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The user agent of the tests' browser: it must reach the trail as sent.
const AGENT: &str = "audit-test-agent/1.0";

/// `[audit]` into `audit.jsonl` next to the config, and a route rule refusing `/admin/` to
/// anyone outside `admins` (the users of the tests are in `users`).
const AUDIT_AND_RULES: &str =
    "[audit]\npath = \"audit.jsonl\"\n\n[authorization]\nstrict = false\n\
     [[authorization.routes]]\npath = \"/admin/\"\nexpression = \"groups.admin\"\n";

/// A browser that claims to come from 6.6.6.6 in every request (`X-Forwarded-For`), with its
/// own user agent.
fn spoofing_browser() -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
    headers.insert("user-agent", AGENT.parse().unwrap());
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Browser { client, jar }
}

/// The lines of the audit file at `path`, each parsed (a line that is not JSON fails the test).
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Waits until the audit file at `path` holds `n` lines; returns them.
fn wait_lines(path: &Path, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} audit lines in {}", path.display()),
        Duration::from_secs(10),
        || {
            let l = lines(path);
            (l.len() >= n).then(|| {
                // `--nocapture` shows them: docs/operations.md's samples are such lines.
                for line in &l {
                    println!("audit line: {line}");
                }
                l
            })
        },
    )
}

/// How the trail names a session: its public handle, the `id` of `/me/sessions`.
fn sid_hash(sid: &str) -> String {
    idgate::crypto::session_handle(sid)
}

/// Every line has the same fields, and its time is RFC 3339 in UTC.
fn assert_shape(line: &Value) {
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
        assert!(line.get(key).is_some(), "{key} missing: {line}");
    }
    let time = line["time"].as_str().unwrap();
    assert!(time.ends_with('Z'), "{time}");
    assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_a_refusal_and_a_logout_each_make_one_line_with_nothing_secret() {
    let stack = Stack::start_with(Setup {
        extra: AUDIT_AND_RULES,
        ..Setup::default()
    });
    let site = stack.site();
    let file = stack.dir.path().join("audit.jsonl");
    let browser = spoofing_browser();

    // A login that fails: a state idgate never issued.
    let resp = browser
        .client
        .post(format!("{site}/oauth/token"))
        .json(&serde_json::json!({ "code": "made-up", "state": "made-up-state" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // One whose body idgate does not read.
    let resp = browser
        .client
        .post(format!("{site}/oauth/token"))
        .header("content-type", "text/plain")
        .body("code=made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    // A login that succeeds, a page the rules allow, one they refuse, a logout.
    assert_eq!(login(&stack, &browser, "/", "alice").await.status(), 200);
    let jwt = browser.cookie(&site, "sid").unwrap();
    let refresh = browser
        .cookie(&format!("{site}/refreshtoken"), "refresh_token")
        .unwrap();
    let renew = browser.cookie(&site, "idgate_renew").unwrap();
    let claims = jwt_claims(&jwt);
    let (user_id, sid) = (
        claims["sub"].as_str().unwrap().to_owned(),
        claims["sid"].as_str().unwrap().to_owned(),
    );
    assert_eq!(browser.navigate(&format!("{site}/x")).await.status(), 200);
    assert_eq!(
        browser.navigate(&format!("{site}/admin/x")).await.status(),
        403
    );
    let resp = browser
        .client
        .post(format!("{site}/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let all = wait_lines(&file, 5);
    assert_eq!(all.len(), 5, "{all:#?}");
    let events: Vec<_> = all.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["login", "login", "login", "deny", "logout"]);
    for line in &all {
        assert_shape(line);
        assert_eq!(line["client_addr"], "127.0.0.1", "Nginx's view: {line}");
        assert_eq!(line["user_agent"], AGENT);
        let id = line["request_id"].as_str().unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "Nginx's $request_id: {line}"
        );
    }
    let (ok, deny, logout) = (&all[2], &all[3], &all[4]);
    for (failed, reason) in [(&all[0], "invalid_state"), (&all[1], "invalid_request")] {
        assert_eq!(failed["outcome"], "failure");
        assert_eq!(failed["reason"], reason);
        // A state idgate never issued names no app, provider or user.
        for key in ["user_id", "app", "provider", "session_hash"] {
            assert_eq!(failed[key], Value::Null, "{failed}");
        }
    }
    assert_eq!(ok["outcome"], "success");
    assert_eq!(ok["reason"], Value::Null);
    assert_eq!(deny["reason"], "policy");
    // The refusing rule's id: its source, path and method as written (never sent to the client).
    assert_eq!(deny["route"], "authorization.routes /admin/ ALL");
    println!("deny event: {deny}");
    for line in [ok, deny, logout] {
        assert_eq!(line["app"], "web", "{line}");
        assert_eq!(line["user_id"], user_id.as_str(), "{line}");
        assert_eq!(line["session_hash"], sid_hash(&sid).as_str(), "{line}");
    }
    assert_eq!(ok["provider"], "dev");
    assert_eq!(logout["provider"], "dev");
    let ids: std::collections::BTreeSet<_> = all
        .iter()
        .map(|l| l["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "one request id per request");

    // Nothing secret or personal, and not the address the client made up.
    let text = std::fs::read_to_string(&file).unwrap();
    for needle in [
        "alice@example.test",
        "Alice",
        jwt.as_str(),
        refresh.as_str(),
        renew.as_str(),
        sid.as_str(),
        "made-up",
        "6.6.6.6",
        CLIENT_SECRET,
    ] {
        assert!(
            !text.contains(needle),
            "{needle} is in the audit file:\n{text}"
        );
    }
    assert_eq!(metric(&stack.idgate, "idgate_audit_dropped_total").await, 0);
}

/// Logrotate's `create` mode: the file is renamed, then idgate gets SIGHUP. The trail goes on in
/// a new file at the path — even when the reload itself is refused (a broken config), since the
/// writer reopens before the config is read. Renewals and refreshes are recorded on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_after_a_rename_writes_on_to_a_new_file() {
    let stack = Stack::start_with(Setup {
        extra: AUDIT_AND_RULES,
        access_ttl: "2s",
        ..Setup::default()
    });
    let site = stack.site();
    let file = stack.dir.path().join("audit.jsonl");
    let rotated = stack.dir.path().join("audit.jsonl.1");
    let browser = spoofing_browser();
    assert_eq!(login(&stack, &browser, "/", "bob").await.status(), 200);
    let jwt = browser.cookie(&site, "sid").unwrap();
    assert_eq!(wait_lines(&file, 1)[0]["event"], "login");

    std::fs::rename(&file, &rotated).unwrap();
    let config = std::fs::read_to_string(&stack.idgate.config).unwrap();
    std::fs::write(&stack.idgate.config, format!("{config}\nnot toml at all [")).unwrap();
    stack.idgate.proc.signal("HUP");
    stack.idgate.proc.wait_log(&["reload refused"]);
    std::fs::write(&stack.idgate.config, &config).unwrap();
    // The reopen was logged before the reload was refused.
    stack.idgate.proc.wait_log(&["audit file reopened"]);

    // The session token expires; /auth renews it silently.
    let exp = jwt_claims(&jwt)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(browser.navigate(&format!("{site}/x")).await.status(), 200);
    assert_ne!(browser.cookie(&site, "sid").unwrap(), jwt, "renewed");
    // A refresh, then the logout.
    let resp = browser
        .client
        .post(format!("{site}/refreshtoken"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = browser
        .client
        .post(format!("{site}/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let new = wait_lines(&file, 3);
    let events: Vec<_> = new.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["renewal", "refresh", "logout"]);
    for line in &new {
        assert_shape(line);
        assert_eq!(line["client_addr"], "127.0.0.1");
        assert_eq!(line["session_hash"], new[0]["session_hash"]);
        assert_eq!(line["provider"], "dev");
    }
    let old = lines(&rotated);
    assert_eq!(old.len(), 1, "{old:#?}");
    assert_eq!(old[0]["session_hash"], new[0]["session_hash"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_revocations_name_the_administrator() {
    let stack = Stack::start_with(Setup {
        extra: AUDIT_AND_RULES,
        extra_server: ADMIN_TOKEN_LINE,
        ..Setup::default()
    });
    let site = stack.site();
    let file = stack.dir.path().join("audit.jsonl");
    let first = spoofing_browser();
    assert_eq!(login(&stack, &first, "/", "carol").await.status(), 200);
    let first_sid = jwt_claims(&first.cookie(&site, "sid").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_id = stack.idgate.first_user_id();

    // Over HTTP: every session of the user.
    let resp = Browser::new()
        .client
        .delete(stack.idgate.url(&format!("/sessions/{user_id}")))
        .bearer_auth(ADMIN_TOKEN)
        .header("user-agent", "admin-console/2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let all = wait_lines(&file, 2);
    let revoke = &all[1];
    assert_shape(revoke);
    assert_eq!(revoke["event"], "revoke");
    assert_eq!(revoke["by"], "admin");
    assert_eq!(revoke["user_id"], user_id.as_str());
    assert_eq!(revoke["session_hash"], sid_hash(&first_sid).as_str());
    assert_eq!(revoke["user_agent"], "admin-console/2");
    assert_eq!(revoke["client_addr"], "127.0.0.1");

    // From the command line: one session by id; no client address, no request id.
    let second = spoofing_browser();
    assert_eq!(login(&stack, &second, "/", "carol").await.status(), 200);
    let second_sid = jwt_claims(&second.cookie(&site, "sid").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = stack.idgate.config.to_str().unwrap();
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "revoke",
        "--config",
        config,
        "--sid",
        &second_sid,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 1"), "{out}");
    let all = wait_lines(&file, 4);
    let revoke = &all[3];
    assert_shape(revoke);
    assert_eq!(revoke["event"], "revoke");
    assert_eq!(revoke["by"], "admin");
    assert_eq!(revoke["user_id"], user_id.as_str());
    assert_eq!(revoke["app"], "web");
    assert_eq!(revoke["provider"], "dev");
    assert_eq!(revoke["session_hash"], sid_hash(&second_sid).as_str());
    assert_eq!(revoke["client_addr"], Value::Null);
    assert_eq!(revoke["request_id"], Value::Null);
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains(&second_sid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_channel_logout_is_a_revocation_by_the_idp() {
    let stack = Stack::start_with(Setup {
        extra: AUDIT_AND_RULES,
        ..Setup::default()
    });
    let site = stack.site();
    let file = stack.dir.path().join("audit.jsonl");
    let browser = spoofing_browser();
    assert_eq!(login(&stack, &browser, "/", "rita").await.status(), 200);
    let sid = jwt_claims(&browser.cookie(&site, "sid").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The user signs out at the IdP itself, which tells idgate by back channel.
    let resp = browser
        .confirm_idp_logout(&format!("{}/session/end", stack.idp.issuer))
        .await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let all = wait_lines(&file, 2);
    let revoke = &all[1];
    assert_shape(revoke);
    assert_eq!(revoke["event"], "revoke");
    assert_eq!(revoke["by"], "backchannel");
    assert_eq!(revoke["user_id"], all[0]["user_id"]);
    assert_eq!(revoke["app"], "web");
    assert_eq!(revoke["provider"], "dev");
    assert_eq!(revoke["session_hash"], sid_hash(&sid).as_str());
    assert_eq!(revoke["client_addr"], "127.0.0.1", "the IdP, through Nginx");
}

/// `path = "stdout"`: the lines go to standard output (here the CLI's, which the test reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_takes_the_trail_as_well() {
    let (_dir, idgate) = start_idgate_alone(Setup {
        extra: "[audit]\npath = \"stdout\"\n",
        ..Setup::default()
    });
    let token = mint(&idgate, "dora", "users");
    let sid = jwt_claims(&token)["sid"].as_str().unwrap().to_owned();
    let config = idgate.config.to_str().unwrap();
    let (code, out, err) = idgate_cmd(&["sessions", "revoke", "--config", config, "--sid", &sid]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let event: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_shape(&event);
    assert_eq!(event["event"], "revoke");
    assert_eq!(event["by"], "admin");
    assert_eq!(event["user_id"], "dora");
    assert_eq!(event["session_hash"], sid_hash(&sid).as_str());
    assert_eq!(
        event["provider"],
        Value::Null,
        "a minted session has no provider"
    );
    assert_eq!(lines.next(), Some("revoked 1 session(s)"));
}

/// The id the trail names a session by (`session_hash`, the `id` of `sessions list`) is enough
/// to end it: `sessions revoke --user U --id ID` ends that session of U's and no other; an id
/// U has no session under (another user's, or none at all) ends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_the_trail_names_revokes_that_session_of_that_user_only() {
    let (_dir, idgate) = start_idgate_alone(Setup {
        extra: "[audit]\npath = \"stdout\"\n",
        ..Setup::default()
    });
    let sid_of = |token: &str| jwt_claims(token)["sid"].as_str().unwrap().to_owned();
    let first = mint(&idgate, "dora", "users");
    let second = mint(&idgate, "dora", "users");
    let eves = mint(&idgate, "eve", "users");
    let config = idgate.config.to_str().unwrap();
    let revoke = |user: &str, id: &str| {
        let (code, out, err) = idgate_cmd(&[
            "sessions", "revoke", "--config", config, "--user", user, "--id", id,
        ]);
        assert_eq!(code, 0, "{err}");
        out
    };
    for id in [sid_hash(&sid_of(&eves)), sid_hash("no-such-session")] {
        let out = revoke("dora", &id);
        assert!(out.starts_with("revoked 0 session(s)"), "{out}");
        assert!(
            !out.contains("\"event\""),
            "nothing ended, nothing audited: {out}"
        );
    }

    let out = revoke("dora", &sid_hash(&sid_of(&first)));
    let mut lines = out.lines();
    let event: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(event["event"], "revoke");
    assert_eq!(event["by"], "admin");
    assert_eq!(event["user_id"], "dora");
    assert_eq!(event["session_hash"], sid_hash(&sid_of(&first)).as_str());
    assert_eq!(lines.next(), Some("revoked 1 session(s)"));
    assert_eq!(lines.next(), None, "{out}");
    // The daemon learns of it from the store's revocation log; the others live on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while auth_status(&idgate, &first).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked session still passes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(auth_status(&idgate, &second).await, 200);
    assert_eq!(auth_status(&idgate, &eves).await, 200);
}

/// A used refresh token presented again ends its session: a revocation by idgate itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_refresh_token_is_a_revocation_by_refresh_reuse() {
    let stack = Stack::start_with(Setup {
        extra: AUDIT_AND_RULES,
        extra_session: "refresh_grace = \"0s\"",
        ..Setup::default()
    });
    let site = stack.site();
    let file = stack.dir.path().join("audit.jsonl");
    let browser = spoofing_browser();
    assert_eq!(login(&stack, &browser, "/", "eve").await.status(), 200);
    let used = browser
        .cookie(&format!("{site}/refreshtoken"), "refresh_token")
        .unwrap();
    let refresh = |token: String| {
        browser
            .client
            .post(format!("{site}/refreshtoken"))
            .json(&serde_json::json!({ "refreshToken": token }))
            .send()
    };
    assert_eq!(refresh(used.clone()).await.unwrap().status(), 200);
    assert_eq!(refresh(used.clone()).await.unwrap().status(), 401);
    let all = wait_lines(&file, 3);
    let events: Vec<_> = all.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["login", "refresh", "revoke"]);
    assert_eq!(all[2]["by"], "refresh_reuse");
    assert_eq!(all[2]["session_hash"], all[0]["session_hash"]);
    assert_eq!(all[2]["user_id"], all[0]["user_id"]);
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&used));
}

/// A user ending one of their own sessions (`DELETE /me/sessions/{id}`) is a revocation by the
/// user, naming the session by the same handle the user saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_by_its_user_is_a_revocation_by_the_user() {
    let stack = Stack::start_with(Setup {
        extra: AUDIT_AND_RULES,
        ..Setup::default()
    });
    let site = stack.site();
    let file = stack.dir.path().join("audit.jsonl");
    let (laptop, phone) = (spoofing_browser(), spoofing_browser());
    assert_eq!(login(&stack, &laptop, "/", "ursula").await.status(), 200);
    assert_eq!(login(&stack, &phone, "/", "ursula").await.status(), 200);
    let listed: serde_json::Value = laptop
        .client
        .get(format!("{site}/me/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .expect("the phone's session")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = laptop
        .client
        .delete(format!("{site}/me/sessions/{other}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let all = wait_lines(&file, 3);
    let revoke = all
        .iter()
        .find(|l| l["event"] == "revoke")
        .expect("a revoke");
    assert_eq!(revoke["by"], "user");
    assert_eq!(revoke["session_hash"], other.as_str());
    assert_eq!(revoke["client_addr"], "127.0.0.1");
    assert_eq!(revoke["user_agent"], AGENT);
}
