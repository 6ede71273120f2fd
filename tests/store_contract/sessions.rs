//! The contract of [`Sessions`]: what every session store must do, whatever keeps the data.
//! Each check gets a store of its own (see `backends.rs`), so checks never see each other's
//! sessions; `f.other` is a second handle on the same store, as another idgate would hold.

use std::collections::BTreeSet;

use idgate::now_secs;
use idgate::store::{
    RefreshRotation, Rotation, SessionContext, SessionHead, SessionRecord, Sessions,
};

use crate::backends::SessionsFixture;

/// A live session of `user`, its refresh hash and IdP tokens derived from `sid`.
pub fn session(sid: &str, user: &str, created_at: i64) -> SessionRecord {
    SessionRecord {
        sid: sid.into(),
        user_id: user.into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        created_at,
        expires_at: now_secs() + 600,
        refresh_hash: format!("hash-of-{sid}"),
        // Every byte value a text encoding could mangle.
        idp_tokens: vec![0, 1, 127, 128, 255],
        revoked: false,
        context: SessionContext {
            client_addr: Some("192.0.2.7".into()),
            user_agent: Some(format!("agent of {sid}")),
            ..SessionContext::default()
        },
    }
}

async fn create(s: &dyn Sessions, rec: &SessionRecord, cap: usize) -> Vec<String> {
    s.create_session(rec, cap).await.unwrap()
}

async fn alive(s: &dyn Sessions, sid: &str) -> bool {
    s.get_session(sid)
        .await
        .unwrap()
        .is_some_and(|r| r.is_alive(now_secs()))
}

/// Asserts `sid` is kept, revoked: an instance that never saw the revocation still refuses it.
async fn assert_revoked(s: &dyn Sessions, sid: &str) {
    let rec = s.get_session(sid).await.unwrap();
    assert!(
        rec.as_ref().is_some_and(|r| r.revoked),
        "{sid} should be kept, revoked: {rec:?}"
    );
}

async fn live_ids(s: &dyn Sessions, user: &str) -> Vec<String> {
    let now = now_secs();
    s.list_sessions(Some(user))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.is_alive(now))
        .map(|r| r.sid)
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A session reads back whole, through either handle; an unknown id reads as none.
pub async fn create_and_get(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    s.ping_sessions().await.unwrap();
    let rec = session("s1", "alice", now_secs());
    assert!(create(s, &rec, 10).await.is_empty());
    assert_eq!(s.get_session("s1").await.unwrap(), Some(rec.clone()));
    assert_eq!(f.other.get_session("s1").await.unwrap(), Some(rec.clone()));
    assert_eq!(s.get_session("no-such-sid").await.unwrap(), None);
    // What `/auth` reads on a token's first use: the same record, cut.
    let head = Some(SessionHead::from(rec));
    assert_eq!(s.session_head("s1").await.unwrap(), head);
    assert_eq!(f.other.session_head("s1").await.unwrap(), head);
    assert_eq!(s.session_head("no-such-sid").await.unwrap(), None);
}

/// Sessions stored in bulk are whole and live, each under its own user: more than the
/// trait's default keeps in flight at once (`store::BULK_IN_FLIGHT`, 32: Redis and the
/// MongoDB-mirrored store use it), so every one is stored whether it went out first or waited
/// for a place.
pub async fn create_in_bulk(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    let before = s.count_live_sessions(now).await.unwrap();
    let records: Vec<SessionRecord> = (0..75)
        .map(|i| session(&format!("bulk{i}"), &format!("user{i}"), now))
        .collect();
    s.create_sessions(&records).await.unwrap();
    for rec in &records {
        assert_eq!(s.get_session(&rec.sid).await.unwrap().as_ref(), Some(rec));
        assert_eq!(live_ids(s, &rec.user_id).await, vec![rec.sid.clone()]);
    }
    assert_eq!(s.count_live_sessions(now).await.unwrap(), before + 75);
}

/// A session past its end is not alive: not counted, not refreshed, not listed as live.
pub async fn expired_sessions_are_not_alive(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    let before = s.count_live_sessions(now).await.unwrap();
    let mut rec = session("old", "alice", now - 600);
    rec.expires_at = now - 10;
    create(s, &rec, 10).await;
    if let Some(r) = s.get_session("old").await.unwrap() {
        assert!(!r.is_alive(now_secs()), "{r:?}");
    }
    if let Some(h) = s.session_head("old").await.unwrap() {
        assert!(!h.is_alive(now_secs()), "{h:?}");
    }
    assert_eq!(s.count_live_sessions(now_secs()).await.unwrap(), before);
    assert!(live_ids(s, "alice").await.is_empty());
    assert!(!s
        .rotate_refresh("old", &rec.refresh_hash, "h2")
        .await
        .unwrap());
}

/// A revocation happens once, reaches the other handle, and leaves other sessions alone.
pub async fn revoke_one(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    create(s, &session("s1", "alice", now), 10).await;
    create(s, &session("s2", "alice", now), 10).await;
    let before = s.count_live_sessions(now).await.unwrap();
    assert!(s.revoke_session("s1").await.unwrap());
    assert!(!s.revoke_session("s1").await.unwrap(), "revoked twice");
    assert!(
        !f.other.revoke_session("s1").await.unwrap(),
        "revoked twice"
    );
    assert!(!s.revoke_session("no-such-sid").await.unwrap());
    assert_revoked(s, "s1").await;
    assert_revoked(f.other.as_ref(), "s1").await;
    for handle in [s, f.other.as_ref()] {
        let head = handle.session_head("s1").await.unwrap();
        assert!(head.is_some_and(|h| h.revoked && !h.is_alive(now)));
    }
    assert!(alive(s, "s2").await);
    assert_eq!(live_ids(s, "alice").await, ids(&["s2"]));
    assert_eq!(s.count_live_sessions(now).await.unwrap(), before - 1);
}

/// Revoking a user's sessions ends every live one of that user and reports exactly those.
pub async fn revoke_all_of_a_user(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    for sid in ["a1", "a2", "a3"] {
        create(s, &session(sid, "alice", now), 10).await;
    }
    create(s, &session("b1", "bob", now), 10).await;
    assert!(s.revoke_session("a2").await.unwrap());
    let revoked = s.revoke_user_sessions("alice").await.unwrap();
    assert_eq!(sorted(revoked), ids(&["a1", "a3"]), "the live ones, once");
    for sid in ["a1", "a2", "a3"] {
        assert_revoked(s, sid).await;
    }
    assert!(live_ids(s, "alice").await.is_empty());
    assert!(alive(s, "b1").await, "another user's session is untouched");
    assert_eq!(live_ids(s, "bob").await, ids(&["b1"]));
    assert!(s.revoke_user_sessions("alice").await.unwrap().is_empty());
    assert!(s.revoke_user_sessions("nobody").await.unwrap().is_empty());
}

/// Past `max_per_user` live sessions, the oldest live ones are revoked and reported; revoked
/// sessions do not count, and the new session is never the one to go.
pub async fn cap_evicts_the_oldest(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    // All in the same second: the order of creation decides.
    let now = now_secs();
    for (i, sid) in ["s0", "s1", "s2"].iter().enumerate() {
        assert!(
            create(s, &session(sid, "alice", now), 3).await.is_empty(),
            "s{i}"
        );
    }
    create(s, &session("other", "bob", now), 3).await;
    assert_eq!(
        create(s, &session("s3", "alice", now), 3).await,
        ids(&["s0"])
    );
    assert_revoked(s, "s0").await;
    assert_eq!(live_ids(s, "alice").await, ids(&["s1", "s2", "s3"]));
    // A revoked session leaves room.
    assert!(s.revoke_session("s1").await.unwrap());
    assert!(create(s, &session("s4", "alice", now), 3).await.is_empty());
    assert_eq!(
        create(s, &session("s5", "alice", now), 3).await,
        ids(&["s2"])
    );
    // A cap of one keeps only the newest.
    assert_eq!(
        sorted(create(s, &session("s6", "alice", now), 1).await),
        ids(&["s3", "s4", "s5"])
    );
    assert_eq!(live_ids(s, "alice").await, ids(&["s6"]));
    assert!(
        alive(s, "other").await,
        "another user's sessions do not count"
    );
}

/// A user's sessions are listed oldest first; the full listing holds every user's.
pub async fn listing(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    let bob = session("bob1", "bob", now - 20);
    create(s, &session("late", "alice", now - 10), 10).await;
    create(s, &session("early", "alice", now - 30), 10).await;
    create(s, &bob, 10).await;
    let mine: Vec<String> = s
        .list_sessions(Some("alice"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.sid)
        .collect();
    assert_eq!(mine, ids(&["early", "late"]));
    let all: BTreeSet<String> = s
        .list_sessions(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.sid)
        .collect();
    assert_eq!(all, ["bob1", "early", "late"].map(String::from).into());
    assert_eq!(f.other.list_sessions(Some("bob")).await.unwrap(), vec![bob]);
}

/// The plain refresh: the current hash is replaced once; a used, unknown or dead one is not.
pub async fn refresh_rotation(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let rec = session("s1", "alice", now_secs());
    create(s, &rec, 10).await;
    assert!(s
        .rotate_refresh("s1", &rec.refresh_hash, "h1")
        .await
        .unwrap());
    assert!(
        !s.rotate_refresh("s1", &rec.refresh_hash, "h1b")
            .await
            .unwrap(),
        "used twice"
    );
    assert_eq!(
        s.get_session("s1").await.unwrap().unwrap().refresh_hash,
        "h1"
    );
    assert!(f.other.rotate_refresh("s1", "h1", "h2").await.unwrap());
    assert!(!s.rotate_refresh("s1", "never-issued", "h3").await.unwrap());
    assert!(!s.rotate_refresh("no-such-sid", "h2", "h3").await.unwrap());
    assert!(s.revoke_session("s1").await.unwrap());
    assert!(
        !s.rotate_refresh("s1", "h2", "h3").await.unwrap(),
        "revoked"
    );
}

fn rotation<'a>(old: &'a str, new: &'a str, pair: &'a [u8], now: i64) -> RefreshRotation<'a> {
    RefreshRotation {
        old_hash: old,
        new_hash: new,
        sealed_pair: pair,
        grace_until: now + 30,
        expires_at: None,
        now,
    }
}

/// The refresh with a grace window (`Sessions::rotate_refresh_graced`): rotated once, repeated
/// within the window with the pair it kept, refused otherwise; the lifetime slides when asked.
pub async fn graced_rotation(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    let rec = session("s1", "alice", now);
    create(s, &rec, 10).await;
    let h0 = rec.refresh_hash.as_str();
    let slid = RefreshRotation {
        expires_at: Some(now + 900),
        ..rotation(h0, "h1", b"pair-1", now)
    };
    assert_eq!(
        s.rotate_refresh_graced("s1", &slid).await.unwrap(),
        Rotation::Rotated
    );
    let after = s.get_session("s1").await.unwrap().unwrap();
    assert_eq!(
        (after.refresh_hash.as_str(), after.expires_at),
        ("h1", now + 900)
    );
    // The same token again, within the window, from any instance: the pair it was exchanged for.
    let again = rotation(h0, "h1-other", b"pair-other", now);
    let repeated = Rotation::Repeated(b"pair-1".to_vec());
    assert_eq!(
        s.rotate_refresh_graced("s1", &again).await.unwrap(),
        repeated
    );
    assert_eq!(
        f.other.rotate_refresh_graced("s1", &again).await.unwrap(),
        repeated
    );
    assert_eq!(
        s.get_session("s1").await.unwrap().unwrap().refresh_hash,
        "h1"
    );
    // At the window's end it is over.
    let late = rotation(h0, "h1-late", b"late", now + 30);
    assert_eq!(
        s.rotate_refresh_graced("s1", &late).await.unwrap(),
        Rotation::Refused
    );
    // The next rotation keeps no expiry change, and replaces the grace record.
    assert_eq!(
        s.rotate_refresh_graced("s1", &rotation("h1", "h2", b"pair-2", now))
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert_eq!(
        s.get_session("s1").await.unwrap().unwrap().expires_at,
        now + 900
    );
    assert_eq!(
        s.rotate_refresh_graced("s1", &again).await.unwrap(),
        Rotation::Refused
    );
    assert_eq!(
        s.rotate_refresh_graced("s1", &rotation("h1", "x", b"x", now))
            .await
            .unwrap(),
        Rotation::Repeated(b"pair-2".to_vec())
    );
    let never = rotation("never-issued", "x", b"x", now);
    assert_eq!(
        s.rotate_refresh_graced("s1", &never).await.unwrap(),
        Rotation::Refused
    );
    let unknown = rotation("h2", "x", b"x", now);
    assert_eq!(
        s.rotate_refresh_graced("nope", &unknown).await.unwrap(),
        Rotation::Refused
    );
    // Past the session's end, or revoked: refused, current hash or not.
    let ended = rotation("h2", "h3", b"x", now + 900);
    assert_eq!(
        s.rotate_refresh_graced("s1", &ended).await.unwrap(),
        Rotation::Refused
    );
    assert!(s.revoke_session("s1").await.unwrap());
    let current = rotation("h2", "h3", b"x", now);
    assert_eq!(
        s.rotate_refresh_graced("s1", &current).await.unwrap(),
        Rotation::Refused
    );
}

/// The last activity of a session only moves forward, and every handle sees it.
pub async fn activity(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    create(s, &session("s1", "alice", now_secs()), 10).await;
    assert_eq!(s.last_activity("s1").await.unwrap(), None);
    s.touch_session("s1", 1_000).await.unwrap();
    assert_eq!(s.last_activity("s1").await.unwrap(), Some(1_000));
    f.other.touch_session("s1", 900).await.unwrap();
    assert_eq!(
        s.last_activity("s1").await.unwrap(),
        Some(1_000),
        "never lowered"
    );
    s.touch_session("s1", 1_200).await.unwrap();
    assert_eq!(f.other.last_activity("s1").await.unwrap(), Some(1_200));
    assert_eq!(s.last_activity("other").await.unwrap(), None);
    // In a batch (what `/auth` sends): each session moves forward, none backward.
    create(s, &session("s2", "bob", now_secs()), 10).await;
    let batch = [("s1".to_owned(), 1_100), ("s2".to_owned(), 2_000)];
    s.touch_sessions(&batch).await.unwrap();
    assert_eq!(f.other.last_activity("s1").await.unwrap(), Some(1_200));
    assert_eq!(f.other.last_activity("s2").await.unwrap(), Some(2_000));
    let many: Vec<(String, i64)> = (0..300).map(|i| (format!("m{i}"), 3_000 + i)).collect();
    f.other.touch_sessions(&many).await.unwrap();
    for (sid, at) in &many {
        assert_eq!(s.last_activity(sid).await.unwrap(), Some(*at), "{sid}");
    }
}

/// A single-use key is accepted once in the whole deployment, however many callers race.
pub async fn remember_once(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let later = now_secs() + 60;
    assert!(s.remember_once("jti-1", later).await.unwrap());
    assert!(!s.remember_once("jti-1", later).await.unwrap());
    assert!(!f.other.remember_once("jti-1", later).await.unwrap());
    assert!(f.other.remember_once("jti-2", later).await.unwrap());
    let calls = (0..8).map(|i| {
        let store = if i % 2 == 0 { &f.sessions } else { &f.other };
        store.remember_once("race", later)
    });
    let wins = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);
}

/// Expired leftovers go, of one user or of all; live and revoked-but-unexpired sessions stay.
pub async fn purge_expired(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    for (sid, user) in [("gone-a", "alice"), ("gone-b", "bob")] {
        let mut rec = session(sid, user, now - 600);
        rec.expires_at = now - 10;
        create(s, &rec, 10).await;
    }
    create(s, &session("live", "alice", now), 10).await;
    create(s, &session("revoked", "alice", now), 10).await;
    assert!(s.revoke_session("revoked").await.unwrap());
    assert!(s.purge_expired_sessions(Some("alice")).await.unwrap() >= 1);
    assert_eq!(s.purge_expired_sessions(Some("alice")).await.unwrap(), 0);
    assert_eq!(s.get_session("gone-a").await.unwrap(), None);
    assert!(alive(s, "live").await);
    assert_revoked(s, "revoked").await;
    // Bob's leftovers were not Alice's to purge; purging everyone's takes them.
    assert!(s.purge_expired_sessions(None).await.unwrap() >= 1);
    assert_eq!(s.purge_expired_sessions(None).await.unwrap(), 0);
    assert_eq!(s.get_session("gone-b").await.unwrap(), None);
    assert!(alive(s, "live").await);
    assert_eq!(live_ids(s, "alice").await, ids(&["live"]));
}

/// What is known of a session's login reads back whole — empty or full, through either
/// handle, in a listing, and after the refresh rotations and the revocation that rewrite the
/// record (a store that re-encodes it must keep the context as it was).
pub async fn context_round_trips(f: &SessionsFixture) {
    let s = f.sessions.as_ref();
    let now = now_secs();
    let full = SessionRecord {
        context: SessionContext {
            client_addr: Some("2001:db8::7".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) \"quoted\" / slashes".into()),
            acr: Some("urn:idgate:mfa".into()),
            amr: vec!["pwd".into(), "otp".into()],
            auth_time: Some(now - 30),
        },
        ..session("full", "alice", now)
    };
    let empty = SessionRecord {
        context: SessionContext::default(),
        ..session("empty", "alice", now)
    };
    for rec in [&full, &empty] {
        create(s, rec, 10).await;
        assert_eq!(s.get_session(&rec.sid).await.unwrap().as_ref(), Some(rec));
        assert_eq!(
            f.other.get_session(&rec.sid).await.unwrap().as_ref(),
            Some(rec)
        );
    }
    let listed = s.list_sessions(Some("alice")).await.unwrap();
    for rec in [&full, &empty] {
        let got = listed.iter().find(|r| r.sid == rec.sid).unwrap();
        assert_eq!(got.context, rec.context);
    }
    for rec in [&full, &empty] {
        let h0 = rec.refresh_hash.as_str();
        assert!(s.rotate_refresh(&rec.sid, h0, "plain").await.unwrap());
        let graced = rotation("plain", "graced", b"pair", now);
        assert_eq!(
            s.rotate_refresh_graced(&rec.sid, &graced).await.unwrap(),
            Rotation::Rotated
        );
        let after = s.get_session(&rec.sid).await.unwrap().unwrap();
        assert_eq!(after.context, rec.context, "{}", rec.sid);
        assert!(s.revoke_session(&rec.sid).await.unwrap());
        let revoked = f.other.get_session(&rec.sid).await.unwrap().unwrap();
        assert_eq!(revoked.context, rec.context, "{}", rec.sid);
    }
}
