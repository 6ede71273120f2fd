//! Unit tests of the users-store refresher: a changed record expires the cached tokens made
//! from the old one, a user gone from the store loses every session, a store that fails changes
//! nothing, administrator-minted sessions are left alone, and the work of a round is bounded.

use std::sync::atomic::AtomicBool;

use async_trait::async_trait;

use super::*;
use crate::headers::IdentityHeaders;
use crate::jwt::{Claims, JwtError, JwtKeys, KeyMaterial, UserClaim};
use crate::session::AuthFailure;
use crate::store::embedded::EmbeddedStore;
use crate::store::{Identity, SessionRecord, Sessions};

const ISSUER: &str = "http://issuer";

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

/// The embedded users store, which can be made to fail every read.
struct Switchable {
    store: Arc<EmbeddedStore>,
    down: AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::unavailable("test users", "down"));
        }
        Ok(())
    }
}

#[async_trait]
impl Users for Switchable {
    async fn upsert_login(&self, id: &Identity, groups: &[String]) -> Result<User, StoreError> {
        self.store.upsert_login(id, groups).await
    }
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.check()?;
        self.store.get_user(user_id).await
    }
    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        (self.store.as_ref() as &dyn Users)
            .find_by_identity(realm, provider_id, provider_user_id)
            .await
    }
    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        (self.store.as_ref() as &dyn Users)
            .find_ids_by_identity(realm, provider_id, provider_user_id)
            .await
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.store.list_users().await
    }
    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError> {
        self.store.set_groups(user_id, groups).await
    }
    async fn ping_users(&self) -> Result<(), StoreError> {
        self.check()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    users: Arc<Switchable>,
    auth: Authenticator,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.db")).unwrap());
    let identity = IdentityHeaders {
        user_properties: vec![],
        extra: Vec::new(),
        pass_token: false,
        max_value_bytes: 4096,
    };
    let sessions: Arc<dyn Sessions> = store.clone();
    let users = Arc::new(Switchable {
        store: store.clone(),
        down: AtomicBool::new(false),
    });
    let auth = Authenticator::new(keys(), sessions, identity, 100, Duration::from_secs(30))
        .with_users(users.clone());
    // The feed vouches for the cache, as the follower does when the store is healthy.
    auth.on_feed_event(crate::store::FeedEvent::Healthy);
    Fixture {
        _dir: dir,
        users,
        store,
        auth,
    }
}

impl Fixture {
    /// A user in the users store with `groups`.
    async fn user(&self, login: &str, groups: &[&str]) -> User {
        let id = Identity {
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: login.into(),
            name: None,
            email: None,
            username: None,
        };
        let user = self.store.upsert_login(&id, &[]).await.unwrap();
        self.set_groups(&user.user_id, groups).await
    }

    async fn set_groups(&self, user_id: &str, groups: &[&str]) -> User {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        assert!(self.store.set_groups(user_id, &groups).await.unwrap());
        self.store.get_user(user_id).await.unwrap().unwrap()
    }

    /// Stores session `sid` of `user_id` (opened through `provider`, "" for one
    /// `idgate sessions mint` opened) and returns a token for it with fingerprint `ufp`.
    async fn session(&self, sid: &str, user_id: &str, provider: &str, ufp: Option<u64>) -> String {
        let now = crate::now_secs();
        let record = SessionRecord {
            sid: sid.into(),
            user_id: user_id.into(),
            app_id: "web".into(),
            provider_id: provider.into(),
            created_at: now,
            expires_at: now + 3600,
            refresh_hash: String::new(),
            idp_tokens: Vec::new(),
            revoked: false,
            context: Default::default(),
        };
        self.store.create_session(&record, 10).await.unwrap();
        self.token(sid, user_id, ufp)
    }

    fn token(&self, sid: &str, user_id: &str, ufp: Option<u64>) -> String {
        let now = crate::now_secs();
        keys()
            .sign(&Claims {
                iss: ISSUER.into(),
                sub: user_id.into(),
                iat: now,
                exp: now + 600,
                jti: format!("j-{sid}-{ufp:?}"),
                sid: sid.into(),
                user: UserClaim::new(user_id, vec![]),
                acr: None,
                amr: Vec::new(),
                auth_time: None,
                ufp: ufp.map(crate::users::fingerprint_claim),
            })
            .unwrap()
    }

    async fn round(&self, max: usize) -> Result<Round, StoreError> {
        refresh_round(&self.auth, self.users.as_ref(), max, crate::now_secs()).await
    }

    /// Whether `/auth` answers `token` from its cache.
    fn cached(&self, token: &str) -> bool {
        self.auth.cached(token, crate::now_secs()).is_some()
    }

    fn store_down(&self, down: bool) {
        self.users.down.store(down, Ordering::Relaxed);
    }
}

fn expired(r: Result<Arc<crate::session::VerifiedSession>, AuthFailure>) -> bool {
    matches!(r, Err(AuthFailure::Token(JwtError::Expired)))
}

#[tokio::test]
async fn a_changed_record_expires_the_tokens_made_from_the_old_one() {
    let f = fixture();
    let alice = f.user("alice", &["a"]).await;
    let old = f
        .session(
            "s1",
            &alice.user_id,
            "dev",
            Some(crate::users::fingerprint(&alice)),
        )
        .await;
    assert_eq!(f.auth.authenticate(&old).await.unwrap().groups.len(), 0);
    assert!(f.cached(&old));

    // Unchanged: a round reads the record and leaves the token alone.
    let round = f.round(100).await.unwrap();
    assert_eq!((round.checked, round.changed, round.revoked), (1, 0, 0));
    assert!(f.cached(&old));

    // The groups change in the store: the next round makes the cached token expired (a
    // browser's is renewed by `/auth`, an API client refreshes), without `/auth` reading the
    // store.
    let changed = f.set_groups(&alice.user_id, &["b"]).await;
    assert!(f.cached(&old), "nothing changes before a round");
    let round = f.round(100).await.unwrap();
    assert_eq!((round.checked, round.changed, round.revoked), (1, 1, 0));
    assert!(!f.cached(&old));
    assert!(expired(f.auth.authenticate(&old).await));
    // A token made from the new record (a renewal's) passes; one of the old still does not,
    // even seen for the first time.
    let new = f.token(
        "s1",
        &alice.user_id,
        Some(crate::users::fingerprint(&changed)),
    );
    assert!(f.auth.authenticate(&new).await.is_ok());
    assert!(f.cached(&new));
    let other_old = f
        .session(
            "s2",
            &alice.user_id,
            "dev",
            Some(crate::users::fingerprint(&alice)),
        )
        .await;
    assert!(expired(f.auth.authenticate(&other_old).await));
    // The session itself lives on: nothing was revoked.
    assert!(f
        .store
        .get_session("s1")
        .await
        .unwrap()
        .unwrap()
        .is_alive(crate::now_secs()));
}

#[tokio::test]
async fn a_token_without_a_fingerprint_counts_as_changed_once_the_record_is_read() {
    let f = fixture();
    let bob = f.user("bob", &["a"]).await;
    // Read on its first cache miss: expired at once.
    let legacy = f.session("s1", &bob.user_id, "dev", None).await;
    assert!(expired(f.auth.authenticate(&legacy).await));
    // The store could not answer then: accepted until the next round reads it.
    let f = fixture();
    let bob = f.user("bob", &["a"]).await;
    let legacy = f.session("s1", &bob.user_id, "dev", None).await;
    f.store_down(true);
    assert!(f.auth.authenticate(&legacy).await.is_ok());
    f.store_down(false);
    let round = f.round(100).await.unwrap();
    assert_eq!(round.changed, 1);
    assert!(expired(f.auth.authenticate(&legacy).await));
}

#[tokio::test]
async fn a_user_not_known_here_is_read_on_a_cache_miss() {
    let f = fixture();
    let erin = f.user("erin", &["a"]).await;
    let old = f
        .session(
            "s1",
            &erin.user_id,
            "dev",
            Some(crate::users::fingerprint(&erin)),
        )
        .await;
    // Changed before this process saw the user: the first cache miss reads the record.
    let changed = f.set_groups(&erin.user_id, &["b"]).await;
    assert!(expired(f.auth.authenticate(&old).await));
    let new = f.token(
        "s1",
        &erin.user_id,
        Some(crate::users::fingerprint(&changed)),
    );
    assert!(f.auth.authenticate(&new).await.is_ok());
    // Forgotten (every token of the user left the cache): read again, so the old token does
    // not pass in between.
    f.auth.tokens.clear();
    f.auth.prune_flags();
    assert_eq!(f.auth.users_due(10).1, 0, "forgotten");
    assert!(expired(f.auth.authenticate(&old).await));
    // A user no longer in the store: the session ends at its first cache miss.
    let gone = f.session("s2", "gone", "dev", Some(7)).await;
    assert!(matches!(
        f.auth.authenticate(&gone).await,
        Err(AuthFailure::SessionEnded)
    ));
    assert!(!f
        .store
        .get_session("s2")
        .await
        .unwrap()
        .unwrap()
        .is_alive(crate::now_secs()));
}

#[tokio::test]
async fn a_user_gone_from_the_store_loses_every_session() {
    let f = fixture();
    // Sessions of a user the users store does not return (deleted, or not `PUBLIC`).
    let t1 = f.session("s1", "gone", "dev", Some(7)).await;
    let t2 = f.session("s2", "gone", "dev", Some(7)).await;
    // Cached while the store could not say (else the first cache miss ends them).
    f.store_down(true);
    for t in [&t1, &t2] {
        assert!(f.auth.authenticate(t).await.is_ok());
    }
    f.store_down(false);
    let round = f.round(100).await.unwrap();
    assert_eq!((round.checked, round.revoked), (1, 1));
    for (sid, t) in [("s1", &t1), ("s2", &t2)] {
        assert!(!f.cached(t));
        assert!(matches!(
            f.auth.authenticate(t).await,
            Err(AuthFailure::SessionEnded)
        ));
        // Ended in the store, so on every instance.
        let record = f.store.get_session(sid).await.unwrap();
        assert!(
            record.is_none_or(|r| !r.is_alive(crate::now_secs())),
            "{sid}"
        );
    }
}

#[tokio::test]
async fn a_store_that_fails_changes_nothing_and_revokes_nothing() {
    let f = fixture();
    let carol = f.user("carol", &["a"]).await;
    let token = f
        .session(
            "s1",
            &carol.user_id,
            "dev",
            Some(crate::users::fingerprint(&carol)),
        )
        .await;
    let orphan = f.session("s2", "gone", "dev", Some(7)).await;
    assert!(f.auth.authenticate(&token).await.is_ok());
    f.set_groups(&carol.user_id, &["b"]).await;
    f.store_down(true);
    assert!(
        f.auth.authenticate(&orphan).await.is_ok(),
        "the store cannot say: it passes"
    );
    assert!(f.round(100).await.is_err());
    // Both tokens still pass, and both sessions live in the store.
    for (sid, t) in [("s1", &token), ("s2", &orphan)] {
        assert!(f.cached(t), "{sid}");
        assert!(f
            .store
            .get_session(sid)
            .await
            .unwrap()
            .unwrap()
            .is_alive(crate::now_secs()));
    }
    // Back up: the next round does what the failed one could not.
    f.store_down(false);
    let round = f.round(100).await.unwrap();
    assert_eq!((round.changed, round.revoked), (1, 1));
    assert!(!f.cached(&token) && !f.cached(&orphan));
}

#[tokio::test]
async fn sessions_an_administrator_minted_are_not_followed() {
    let f = fixture();
    // `idgate sessions mint`: no provider, no fingerprint, a user the store may not know.
    let minted = f.session("s1", "service-account", "", None).await;
    assert!(f.auth.authenticate(&minted).await.is_ok());
    let round = f.round(100).await.unwrap();
    assert_eq!(round, Round::default());
    assert!(f.cached(&minted));
}

#[tokio::test]
async fn a_round_reads_at_most_its_cap_the_least_recently_checked_first() {
    let f = fixture();
    let mut tokens = Vec::new();
    for (i, login) in ["u1", "u2", "u3"].iter().enumerate() {
        let user = f.user(login, &["a"]).await;
        let t = f
            .session(
                &format!("s{i}"),
                &user.user_id,
                "dev",
                Some(crate::users::fingerprint(&user)),
            )
            .await;
        assert!(f.auth.authenticate(&t).await.is_ok());
        tokens.push(user.user_id);
    }
    let first = f.round(2).await.unwrap();
    assert_eq!((first.checked, first.active), (2, 3));
    // The one left out goes first next time, with the oldest-checked of the others.
    let (due, _) = f.auth.users_due(1);
    let unchecked: Vec<_> = tokens
        .iter()
        .filter(|id| f.auth.user_live(id).checked_at.load(Ordering::Relaxed) == 0)
        .collect();
    assert_eq!(unchecked.len(), 1);
    assert_eq!(due[0].id(), unchecked[0].as_str());
    let second = f.round(2).await.unwrap();
    assert_eq!(second.checked, 2);
    assert!(tokens
        .iter()
        .all(|id| f.auth.user_live(id).checked_at.load(Ordering::Relaxed) > 0));
}

#[test]
fn an_older_read_never_undoes_a_later_one() {
    let user = UserLive::new("u1");
    assert!(user.accepts(5), "nothing known: every token passes");
    assert_eq!(user.learn(5, 10), Some(0));
    assert!(user.accepts(5) && !user.accepts(6) && !user.accepts(0));
    // A renewal that read the store later (read 12) learnt 6 first...
    assert_eq!(user.learn(6, 12), Some(5));
    // ...then a refresher round that began earlier (read 11) ends: it is ignored.
    assert_eq!(user.learn(5, 11), None);
    assert!(user.accepts(6) && !user.accepts(5));
}
