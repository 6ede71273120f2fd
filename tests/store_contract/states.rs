//! The contract of `LoginStates`: a login in progress is handed back once, by whichever
//! instance finishes the login, and not after it has expired.

use std::time::Duration;

use idgate::now_secs;
use idgate::store::LoginState;

use crate::backends::SessionsFixture;

fn state(id: &str, expires_at: i64) -> LoginState {
    LoginState {
        step_up: Default::default(),
        state: id.into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        redirect: "/after?x=1&y=2".into(),
        client_state: Some("client's state".into()),
        pkce_verifier: "verifier".into(),
        nonce: "nonce".into(),
        binding_hash: "binding".into(),
        expires_at,
    }
}

/// Put through one handle, taken whole through the other, then gone for both.
pub async fn single_use(f: &SessionsFixture) {
    let (a, b) = f.states();
    let st = state("st1", now_secs() + 60);
    a.put_state(&st).await.unwrap();
    let mut bare = state("st2", now_secs() + 60);
    bare.client_state = None;
    // A step-up login's demand comes back whole: the token exchange checks the IdP against it.
    let mut stepping_up = state("st3", now_secs() + 60);
    stepping_up.step_up = idgate::store::StepUpRequest {
        acr_values: vec!["urn:example:loa:2".into(), "loa3".into()],
        max_age: Some(600),
        prompt_login: true,
        replaces: Some("the-old-sid".into()),
    };
    a.put_state(&stepping_up).await.unwrap();
    assert_eq!(b.take_state("st3").await.unwrap(), Some(stepping_up));
    a.put_state(&bare).await.unwrap();
    assert_eq!(b.take_state("st1").await.unwrap(), Some(st));
    assert_eq!(a.take_state("st1").await.unwrap(), None);
    assert_eq!(b.take_state("st1").await.unwrap(), None);
    assert_eq!(a.take_state("st2").await.unwrap(), Some(bare));
    assert_eq!(a.take_state("never-stored").await.unwrap(), None);
}

/// Of simultaneous takes of one state, exactly one gets it.
pub async fn concurrent_takes(f: &SessionsFixture) {
    let (a, b) = f.states();
    a.put_state(&state("raced", now_secs() + 60)).await.unwrap();
    let takes = (0..8).map(|i| if i % 2 == 0 { a } else { b }.take_state("raced"));
    let got = futures_util::future::join_all(takes)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_some())
        .count();
    assert_eq!(got, 1);
}

/// Once its expiry has passed (and the purge that stores without expiring records run on a
/// timer has run), a state is gone; a state still valid is not touched.
pub async fn expiry(f: &SessionsFixture) {
    let (a, _) = f.states();
    let soon = now_secs() + 1;
    a.put_state(&state("brief", soon)).await.unwrap();
    a.put_state(&state("long", now_secs() + 600)).await.unwrap();
    // The clock must pass the expiry: this waits for it, it measures nothing.
    while now_secs() <= soon + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.purge_expired_states().await.unwrap();
    assert_eq!(a.take_state("brief").await.unwrap(), None);
    assert!(a.take_state("long").await.unwrap().is_some());
}
