//! Unit tests of the session authenticator: every check `/auth` relies on (signature, expiry,
//! the stored session, its user, revocation here and through the feed, the outage window, the
//! idle timeout and the sharing of activity), against the embedded store in a temporary file.

use super::*;
use crate::jwt::{KeyMaterial, UserClaim};
use crate::store::embedded::EmbeddedStore;
use crate::store::SessionRecord;

const ISSUER: &str = "http://issuer";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    auth: Authenticator,
    signer: JwtKeys,
}

fn keys() -> JwtKeys {
    let k = KeyMaterial::signing_from_bytes(
        "HS256",
        b"0123456789abcdef0123456789abcdef".to_vec(),
        "test",
        "k1",
    )
    .unwrap();
    JwtKeys::new(&k, &[], &[ISSUER.into()]).unwrap()
}

fn fixture(idle: Option<u64>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.db")).unwrap());
    let identity = IdentityHeaders {
        user_properties: vec!["name".into()],
        extra: Vec::new(),
        pass_token: false,
        max_value_bytes: 4096,
    };
    let sessions: Arc<dyn Sessions> = store.clone();
    let auth = Authenticator::new(keys(), sessions, identity, 100, Duration::from_secs(30))
        .with_idle_timeout(idle.map(Duration::from_secs));
    Fixture {
        _dir: dir,
        store,
        auth,
        signer: keys(),
    }
}

impl Fixture {
    /// Stores session `sid` of `user` (created `age` seconds ago, alive for an hour more) and
    /// returns a token for it, signed for `sub`, expiring in `exp_in` seconds.
    async fn session(&self, sid: &str, user: &str, sub: &str, age: i64, exp_in: i64) -> String {
        let now = crate::now_secs();
        let record = SessionRecord {
            sid: sid.into(),
            user_id: user.into(),
            app_id: "web".into(),
            provider_id: "p".into(),
            created_at: now - age,
            expires_at: now + 3600,
            refresh_hash: String::new(),
            idp_tokens: Vec::new(),
            revoked: false,
            context: Default::default(),
        };
        self.store.create_session(&record, 10).await.unwrap();
        self.token(sid, sub, exp_in)
    }

    fn token(&self, sid: &str, sub: &str, exp_in: i64) -> String {
        self.token_authn(sid, sub, exp_in, Authn::default())
    }

    /// [`Fixture::token`] saying how the IdP authenticated the login (`authn`).
    fn token_authn(&self, sid: &str, sub: &str, exp_in: i64, authn: Authn) -> String {
        let now = crate::now_secs();
        let mut claims = Claims {
            iss: ISSUER.into(),
            sub: sub.into(),
            iat: now,
            exp: now + exp_in,
            jti: format!("j-{sid}-{exp_in}"),
            sid: sid.into(),
            user: UserClaim {
                name: Some("N".into()),
                ..UserClaim::new(sub, vec!["g".into()])
            },
            acr: None,
            amr: Vec::new(),
            auth_time: None,

            ufp: None,
        };
        claims.set_authn(authn);
        self.signer.sign(&claims).unwrap()
    }
}

fn ended(r: Result<Arc<VerifiedSession>, AuthFailure>) -> bool {
    matches!(r, Err(AuthFailure::SessionEnded))
}

#[tokio::test]
async fn a_live_session_authenticates_and_carries_its_app() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", 0, 600).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    assert_eq!(v.app_id(), "web");
    assert_eq!(v.sid(), "s1");
    // Again, while the feed has not vouched for the cache: the slow path accepts it again.
    assert!(f.auth.authenticate(&t).await.is_ok());
    assert_eq!(f.auth.claims(&t).await.unwrap().sub, "u1");
    let headers: Vec<_> = f.auth.identity_headers(&v).unwrap().collect();
    assert!(headers.iter().any(|(n, v)| n == "mia-userid" && v == "u1"));
    assert!(matches!(
        f.auth.authenticate("not-a-token").await,
        Err(AuthFailure::Token(_))
    ));
}

/// How the IdP authenticated the login (what step-up rules and renewal read) comes with the
/// session from its token, on the first request and from the cache, and is empty for a token
/// that says nothing of it.
#[tokio::test]
async fn a_session_carries_how_its_login_was_authenticated() {
    let f = fixture(None);
    f.session("s1", "u1", "u1", 0, 600).await;
    let said = Authn {
        acr: Some("urn:mfa".into()),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: Some(crate::now_secs() - 30),
    };
    let t = f.token_authn("s1", "u1", 600, said.clone());
    let v = f.auth.authenticate(&t).await.unwrap();
    assert_eq!(v.authn(), &said);
    f.auth.on_feed_event(FeedEvent::Healthy);
    let cached = f
        .auth
        .cached(&t, crate::now_secs())
        .expect("served from the cache");
    assert_eq!(cached.authn(), &said);
    // A token without them: nothing is made up.
    let plain = f.session("s2", "u2", "u2", 0, 600).await;
    assert!(f
        .auth
        .authenticate(&plain)
        .await
        .unwrap()
        .authn()
        .is_empty());
}

/// Sessions and API identities carry their own app among several configured, sharing the
/// configured id rather than copying it.
#[tokio::test]
async fn each_session_and_api_identity_carries_its_own_app() {
    let Fixture {
        _dir,
        store,
        auth,
        signer,
    } = fixture(None);
    let apps = ["api".to_owned(), "web".to_owned()];
    let f = Fixture {
        auth: auth.with_apps(&apps),
        _dir,
        store,
        signer,
    };
    let t = f.session("s1", "u1", "u1", 0, 600).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    assert_eq!(v.app_id(), "web");
    assert!(Arc::ptr_eq(&v.app_id, &f.auth.app_ids[1]));
    let user = UserClaim::new("svc", vec!["g".into()]);
    let now = crate::now_secs();
    for app in ["web", "api"] {
        let v = f.auth.api_identity(app, "api-token", &user, now + 60);
        assert_eq!(v.app_id(), app);
    }
    // An app no longer configured (a reload dropped it) is copied, not mistaken for another.
    let v = f.auth.api_identity("old", "api-token", &user, now + 60);
    assert_eq!(v.app_id(), "old");
}

/// The names `/forward-auth` sends empty for an anonymous request: every identity header a
/// session's answer carries, so that no gateway keeps a client's own.
#[test]
fn the_identity_header_names_are_those_of_a_session_answer() {
    let f = fixture(None);
    let names: Vec<_> = f.auth.identity_header_names().map(|n| n.as_str()).collect();
    assert_eq!(names, ["mia-userid", "mia-groups", "mia-userproperties"]);
}

#[tokio::test]
async fn a_session_of_another_user_or_unknown_or_revoked_is_refused() {
    let f = fixture(None);
    // The token names u2, the stored session belongs to u1.
    let t = f.session("s1", "u1", "u2", 0, 600).await;
    assert!(ended(f.auth.authenticate(&t).await));
    // No such session.
    assert!(ended(
        f.auth.authenticate(&f.token("nope", "u1", 600)).await
    ));
    // Revoked in the store by someone else: refused at the next slow path.
    let t = f.session("s2", "u1", "u1", 0, 600).await;
    assert!(f.auth.authenticate(&t).await.is_ok());
    f.store.revoke_session("s2").await.unwrap();
    let t2 = f.token("s2", "u1", 601);
    assert!(ended(f.auth.authenticate(&t2).await));
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", 0, -1).await;
    assert!(matches!(
        f.auth.authenticate(&t).await,
        Err(AuthFailure::Token(JwtError::Expired))
    ));
}

#[tokio::test]
async fn revoking_kills_every_cached_token_of_the_session_at_once() {
    let f = fixture(None);
    let a = f.session("s1", "u1", "u1", 0, 600).await;
    let b = f.token("s1", "u1", 601);
    let other = f.session("s2", "u1", "u1", 0, 600).await;
    for t in [&a, &b, &other] {
        f.auth.authenticate(t).await.unwrap();
    }
    f.auth.on_feed_event(FeedEvent::Healthy);
    let now = crate::now_secs();
    assert!(f.auth.cached(&a, now).is_some());
    assert!(f.auth.revoke("s1").await.unwrap());
    assert!(f.auth.cached(&a, now).is_none());
    assert!(f.auth.cached(&b, now).is_none());
    assert!(ended(f.auth.authenticate(&b).await));
    assert!(f.auth.cached(&other, now).is_some());
    assert_eq!(
        f.store.get_session("s1").await.unwrap().map(|r| r.revoked),
        Some(true)
    );
    // Revoked elsewhere, reported by the feed.
    f.auth.on_feed_event(FeedEvent::Revoked("s2".into()));
    assert!(f.auth.cached(&other, now).is_none());
    assert!(ended(f.auth.authenticate(&other).await));
}

#[tokio::test]
async fn revoking_a_user_ends_all_their_sessions_here_and_in_the_store() {
    let f = fixture(None);
    let a = f.session("s1", "u1", "u1", 0, 600).await;
    let b = f.session("s2", "u1", "u1", 0, 600).await;
    let c = f.session("s3", "u9", "u9", 0, 600).await;
    for t in [&a, &b, &c] {
        f.auth.authenticate(t).await.unwrap();
    }
    let mut revoked = f.auth.revoke_user("u1").await.unwrap();
    revoked.sort();
    assert_eq!(revoked, ["s1", "s2"]);
    f.auth.on_feed_event(FeedEvent::Healthy);
    let now = crate::now_secs();
    assert!(f.auth.cached(&a, now).is_none());
    assert!(f.auth.cached(&b, now).is_none());
    assert!(f.auth.cached(&c, now).is_some());
}

#[tokio::test]
async fn the_cache_counts_only_while_the_feed_is_trusted_and_the_token_unexpired() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", 0, 600).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    let now = crate::now_secs();
    // Never heard from the feed: every request takes the slow path.
    assert!(f.auth.cached(&t, now).is_none());
    f.auth.on_feed_event(FeedEvent::Healthy);
    let until = f.auth.feed_trusted_until.load(Ordering::Acquire);
    assert!((now + 30..=now + 31).contains(&until), "{until} vs {now}");
    assert!(f.auth.cached(&t, until).is_some());
    assert!(f.auth.cached(&t, until + 1).is_none());
    // Expiry of the token itself, to the second.
    let exp = v.exp();
    assert!(v.is_valid(exp - 1));
    assert!(!v.is_valid(exp));
    // The feed lost: the cache is emptied.
    f.auth.on_feed_event(FeedEvent::Lost);
    f.auth.on_feed_event(FeedEvent::Healthy);
    assert!(f.auth.cached(&t, now).is_none());
}

#[tokio::test]
async fn a_token_cached_as_expired_or_revoked_stays_refused() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", 0, 1).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    // Wait for its second to pass: from the cache it is now expired, not re-verified.
    while crate::now_secs() < v.exp() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        f.auth.authenticate(&t).await,
        Err(AuthFailure::Token(JwtError::Expired))
    ));
    let t2 = f.session("s2", "u1", "u1", 0, 600).await;
    f.auth.authenticate(&t2).await.unwrap();
    f.auth.forget_session("s2");
    assert!(ended(f.auth.authenticate(&t2).await));
}

#[tokio::test]
async fn idle_sessions_end_unless_activity_was_seen_here_or_elsewhere() {
    let f = fixture(Some(10));
    // Created 100 s ago, never used: idle.
    let t = f.session("s1", "u1", "u1", 100, 600).await;
    assert!(ended(f.auth.authenticate(&t).await));
    assert_eq!(
        f.store.get_session("s1").await.unwrap().map(|r| r.revoked),
        Some(true)
    );
    // Created 5 s ago: fine.
    let t = f.session("s2", "u1", "u1", 5, 600).await;
    assert!(f.auth.authenticate(&t).await.is_ok());
    // Created 100 s ago, used 3 s ago on another instance: fine.
    let t = f.session("s3", "u1", "u1", 100, 600).await;
    let now = crate::now_secs();
    f.store.touch_session("s3", now - 3).await.unwrap();
    assert!(f.auth.authenticate(&t).await.is_ok());
    // Used 9 s ago elsewhere: still fine; 12 s ago: ended.
    let t = f.session("s4", "u1", "u1", 100, 600).await;
    f.store.touch_session("s4", now - 9).await.unwrap();
    assert!(f.auth.authenticate(&t).await.is_ok());
    let t = f.session("s5", "u1", "u1", 100, 600).await;
    f.store.touch_session("s5", now - 12).await.unwrap();
    assert!(ended(f.auth.authenticate(&t).await));
}

#[tokio::test]
async fn the_cache_honours_the_idle_timeout_and_reports_activity_every_quarter() {
    let f = fixture(Some(40));
    let t = f.session("s1", "u1", "u1", 0, 3600).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    f.auth.on_feed_event(FeedEvent::Healthy);
    f.auth.feed_trusted_until.store(i64::MAX, Ordering::Release);
    let seen = v.live.last_seen.load(Ordering::Relaxed);
    let touched = v.live.last_touch.load(Ordering::Relaxed);
    assert!(seen > 0 && touched > 0);
    // Used within the idle timeout here: served from the cache, and the use is remembered.
    assert!(f.auth.cached(&t, seen + 30).is_some());
    assert_eq!(v.live.last_seen.load(Ordering::Relaxed), seen + 30);
    assert!(f.auth.cached(&t, seen + 70).is_some());
    assert!(f.auth.cached(&t, seen + 70 + 40).is_some());
    // Past the timeout since the last use here: the slow path must ask the store.
    assert!(f.auth.cached(&t, seen + 70 + 40 + 41).is_none());

    // Activity reports: the first use at once (another instance must learn of it), then not
    // within a quarter of the timeout (10 s) of the last report, then once.
    let f = fixture(Some(40));
    let t = f.session("s2", "u1", "u1", 10, 3600).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    f.auth.feed_trusted_until.store(i64::MAX, Ordering::Release);
    let touched = v.live.last_touch.load(Ordering::Relaxed);
    let settle = || async {
        for _ in 0..20 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    settle().await;
    assert_eq!(f.store.last_activity("s2").await.unwrap(), Some(touched));
    assert!(f.auth.cached(&t, touched + 9).is_some());
    settle().await;
    assert_eq!(f.store.last_activity("s2").await.unwrap(), Some(touched));
    assert!(f.auth.cached(&t, touched + 10).is_some());
    settle().await;
    assert_eq!(
        f.store.last_activity("s2").await.unwrap(),
        Some(touched + 10)
    );
}

/// Without an idle timeout, activity still reaches the store ("last seen" of `/me/sessions`),
/// in the background and at most once a minute per session.
#[tokio::test]
async fn activity_is_reported_every_minute_without_an_idle_timeout() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", ACTIVITY_EVERY_SECS, 3600).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    f.auth.feed_trusted_until.store(i64::MAX, Ordering::Release);
    let touched = v.live.last_touch.load(Ordering::Relaxed);
    assert!(touched > 0, "the first use is reported at once");
    let settle = || async {
        for _ in 0..20 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    settle().await;
    assert_eq!(f.store.last_activity("s1").await.unwrap(), Some(touched));
    assert!(f
        .auth
        .cached(&t, touched + ACTIVITY_EVERY_SECS - 1)
        .is_some());
    settle().await;
    assert_eq!(f.store.last_activity("s1").await.unwrap(), Some(touched));
    let later = touched + ACTIVITY_EVERY_SECS;
    assert!(f.auth.cached(&t, later).is_some());
    settle().await;
    assert_eq!(f.store.last_activity("s1").await.unwrap(), Some(later));
}

/// The first use of a session created less than a reporting interval ago writes nothing: its
/// creation already counts as activity wherever activity is read.
#[tokio::test]
async fn the_first_use_of_a_new_session_writes_no_activity() {
    let f = fixture(None);
    let young = f
        .session("young", "u1", "u1", ACTIVITY_EVERY_SECS - 5, 3600)
        .await;
    let old = f
        .session("old", "u1", "u1", ACTIVITY_EVERY_SECS, 3600)
        .await;
    f.auth.authenticate(&young).await.unwrap();
    f.auth.authenticate(&old).await.unwrap();
    for _ in 0..20 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(f.store.last_activity("old").await.unwrap().is_some());
    assert_eq!(f.store.last_activity("young").await.unwrap(), None);
}

#[tokio::test]
async fn liveness_flags_are_dropped_once_no_cached_token_uses_them() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", 0, 600).await;
    let v = f.auth.authenticate(&t).await.unwrap();
    let count = |a: &Authenticator| a.flags.lock().unwrap().len();
    // The user's record of changes, made for a session with a provider, goes with its flags.
    let users = |a: &Authenticator| a.users.lock().unwrap().len();
    f.auth.prune_flags();
    assert_eq!((count(&f.auth), users(&f.auth)), (1, 1));
    f.auth.on_feed_event(FeedEvent::Lost);
    drop(v);
    f.auth.prune_flags();
    assert_eq!((count(&f.auth), users(&f.auth)), (0, 0));
}

#[tokio::test]
async fn the_follower_brings_revocations_made_through_another_store_handle() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", 0, 600).await;
    let auth = Arc::new(f.auth);
    let sessions: Arc<dyn Sessions> = f.store.clone();
    let tasks = spawn_revocation_follower(auth.clone(), sessions);
    auth.authenticate(&t).await.unwrap();
    // The follower reports the feed healthy: the token is then served from the cache.
    let wait = |want_cached: bool| {
        let (auth, t) = (auth.clone(), t.clone());
        async move {
            for _ in 0..100 {
                if auth.cached(&t, crate::now_secs()).is_some() == want_cached {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(wait(true).await, "the follower never made the feed trusted");
    // Another process (a second handle on the same database, as the CLI or another instance
    // would be) revokes the session: the follower drops the cached token.
    let other = EmbeddedStore::open(&f._dir.path().join("s.db")).unwrap();
    assert!(other.revoke_session("s1").await.unwrap());
    assert!(wait(false).await, "the revocation never reached the cache");
    assert!(ended(auth.authenticate(&t).await));
    for task in tasks {
        task.abort();
    }
}

#[tokio::test]
async fn a_session_younger_than_the_idle_timeout_is_served_without_reading_its_activity() {
    // The first request after a login cannot find the session idle: its activity is never
    // older than its creation. The store's activity table is dropped, so any read of it fails
    // the request (proved by the older session, which must ask).
    let f = fixture(Some(30));
    let young = f.session("young", "u1", "u1", 20, 600).await;
    let old = f.session("old", "u1", "u1", 100, 600).await;
    rusqlite::Connection::open(f._dir.path().join("s.db"))
        .unwrap()
        .execute_batch("DROP TABLE session_activity")
        .unwrap();
    if let Err(e) = f.auth.authenticate(&young).await {
        panic!("the young session was refused (its activity read?): {e}");
    }
    assert!(matches!(
        f.auth.authenticate(&old).await,
        Err(AuthFailure::Store(_))
    ));
}

#[tokio::test]
async fn idle_for_exactly_the_timeout_is_not_yet_idle() {
    // The slow path's idle check, with the clock passed in: last activity (in the store)
    // exactly `idle_timeout` ago still counts; one second more ends the session.
    let f = fixture(Some(10));
    let now = crate::now_secs();
    f.session("s1", "u1", "u1", 100, 600).await;
    f.store.touch_session("s1", now - 50).await.unwrap();
    let live = SessionLive {
        sid: Arc::from("s1"),
        alive: AtomicBool::new(true),
        last_seen: AtomicI64::new(0),
        last_touch: AtomicI64::new(0),
        user: OnceLock::new(),
    };
    let created = now - 100;
    assert!(!f
        .auth
        .idle_expired(&live, "s1", created, now - 40)
        .await
        .unwrap());
    assert!(f
        .auth
        .idle_expired(&live, "s1", created, now - 39)
        .await
        .unwrap());
}

#[tokio::test]
async fn the_purge_keeps_live_tokens_and_drops_expired_revoked_and_forgotten_ones() {
    let f = fixture(None);
    let live = f.session("s1", "u1", "u1", 0, 600).await;
    let short = f.session("s2", "u1", "u1", 0, 5).await;
    let revoked = f.session("s3", "u1", "u1", 0, 600).await;
    let renewed = f.session("s4", "u1", "u1", 0, 600).await;
    for t in [&live, &short, &revoked, &renewed] {
        f.auth.authenticate(t).await.unwrap();
    }
    assert_eq!(f.auth.tokens.len(), 4);
    f.auth.forget_session("s3");
    f.auth.forget_token(&renewed);
    assert_eq!(f.auth.tokens.len(), 3, "a forgotten token leaves at once");
    // Ten seconds on: `short` has expired, `s3` was revoked; only `live` stays.
    f.auth.purge(crate::now_secs() + 10);
    assert_eq!(f.auth.tokens.len(), 1);
    f.auth.on_feed_event(FeedEvent::Healthy);
    assert!(f.auth.cached(&live, crate::now_secs()).is_some());
    // The flags of the sessions no cached token refers to are gone with them.
    let flags = f.auth.flags.lock().unwrap();
    assert!(flags.contains_key("s1"));
    assert!(!flags.contains_key("s2") && !flags.contains_key("s3"));
}

#[tokio::test]
async fn the_full_claims_are_read_again_only_for_a_live_session() {
    let f = fixture(None);
    let t = f.session("s1", "u1", "u1", 0, 600).await;
    let claims = f.auth.claims(&t).await.unwrap();
    assert_eq!(
        (claims.sid.as_str(), claims.user.name.as_deref()),
        ("s1", Some("N"))
    );
    f.auth.revoke("s1").await.unwrap();
    assert!(matches!(
        f.auth.claims(&t).await,
        Err(AuthFailure::SessionEnded)
    ));
}

/// The token cache's hash key is drawn when the authenticator is built, at start, not by the
/// first request (which would then wait on the OS's random generator, or fail there).
/// cargo-nextest runs each test in a process of its own (tests/common), so nothing drew it
/// before this test.
#[tokio::test]
async fn the_token_hash_key_is_drawn_when_the_authenticator_is_built() {
    assert!(
        super::token_key::HASH_KEY.get().is_none(),
        "drawn before the test: run the tests with cargo-nextest, one process each"
    );
    let _f = fixture(None);
    assert!(super::token_key::HASH_KEY.get().is_some());
}
