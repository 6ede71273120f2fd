//! What the tests of a lying IdP share (`tests/idp_lies.rs`, `tests/rp_plans.rs`): switching the
//! development IdP's lies at run time, reading idgate's log since a point, counting sessions,
//! and the login that must succeed.

use super::*;

/// The log lines of `proc` written since `from` (a line count).
pub fn log_since(proc: &Proc, from: usize) -> Vec<String> {
    proc.log.lock().unwrap()[from..].to_vec()
}

/// How many log lines `proc` has written so far.
pub fn log_len(proc: &Proc) -> usize {
    proc.log.lock().unwrap().len()
}

/// Waits (up to 10 s) for a log line written since `from` holding every one of `needles`.
pub fn wait_line(proc: &Proc, from: usize, needles: &[&str]) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = log_since(proc, from)
            .into_iter()
            .find(|l| needles.iter().all(|n| l.contains(n)));
        if found.is_some() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sets the IdP's active lies (`idp.mjs --lie-endpoint`).
pub async fn lie(idp: &Idp, modes: &[&str]) {
    let mut url = reqwest::Url::parse(&idp.issuer).unwrap();
    url.set_path("/-/lie");
    let resp = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({ "modes": modes }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// How many sessions idgate's store holds (`idgate sessions list`).
pub fn sessions(stack: &Stack) -> usize {
    let config = stack.idgate.config.to_str().unwrap();
    let (code, out, err) = idgate_cmd(&["sessions", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

/// A login that must succeed: the IdP tells the truth (or a truth idgate must accept).
pub async fn honest_login(stack: &Stack, who: &str) -> Browser {
    let browser = Browser::new();
    let resp = login(stack, &browser, "/", who).await;
    assert_eq!(resp.status(), 200, "{who}: {}", resp.text().await.unwrap());
    assert_eq!(
        browser
            .navigate(&format!("{}/x", stack.site()))
            .await
            .status(),
        200
    );
    browser
}
