//! One contract for every store: the rules behind the traits `Sessions`, `LoginStates` and
//! `Users`, checked the same way against every backend idgate ships, started for real.
//!
//! | trait | backends |
//! |---|---|
//! | `Sessions` | embedded (SQLite file), Redis standalone, Sentinel, Cluster, the MongoDB copy over Redis |
//! | `LoginStates` | embedded, Redis standalone, Sentinel, Cluster |
//! | `Users` | embedded, MongoDB, the CRUD service (the fake of `tests/py/crud_server.py`) |
//!
//! Each check is a plain async function over a fixture (`sessions.rs`, `feed.rs`,
//! `states.rs`, `users.rs`); the macros below make one `#[test]` of each check on each backend,
//! named `<trait>::<check>::<backend>`, each with a store of its own. So
//! `cargo test --test store_contract redis_cluster` runs the whole contract on the cluster, and
//! `cargo test --test store_contract graced_rotation` one check everywhere. What only one
//! backend does (Redis key expiry and scope, Sentinel failover, the SQLite readers, the CRUD
//! document shape, restoring from the MongoDB copy) stays with that backend's own tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

#[path = "../common/mod.rs"]
mod common;

mod backends;
mod feed;
mod sessions;
mod states;
mod users;

use backends::{SessionsBackend, UsersBackend};

/// One `#[test]` per check per backend of the sessions and login-states contracts.
macro_rules! sessions_contract {
    ($module:ident :: { $($check:ident),* $(,)? } on $backends:tt) => {
        $( sessions_check!($module::$check on $backends); )*
    };
}

macro_rules! sessions_check {
    ($module:ident :: $check:ident on [$($name:ident = $backend:ident),* $(,)?]) => {
        mod $check {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = SessionsBackend::$backend.start().await;
                    $module::$check(&f).await;
                }
            )*
        }
    };
}

/// One `#[test]` per check per backend of the users contract.
macro_rules! users_contract {
    ({ $($check:ident),* $(,)? } on $backends:tt) => {
        $( users_check!($check on $backends); )*
    };
}

macro_rules! users_check {
    ($check:ident on [$($name:ident = $backend:ident),* $(,)?]) => {
        mod $check {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    #[allow(unused_mut)]
                    let mut f = UsersBackend::$backend.start().await;
                    users::$check(&mut f).await;
                }
            )*
        }
    };
}

mod session {
    use super::*;
    sessions_contract!(sessions::{
        create_and_get,
        create_in_bulk,
        expired_sessions_are_not_alive,
        revoke_one,
        revoke_all_of_a_user,
        cap_evicts_the_oldest,
        listing,
        refresh_rotation,
        graced_rotation,
        activity,
        remember_once,
        purge_expired,
        context_round_trips,
    } on [
        embedded = Embedded,
        redis_standalone = RedisStandalone,
        redis_sentinel = RedisSentinel,
        redis_cluster = RedisCluster,
        mongo_copy = MongoCopy,
    ]);
    sessions_contract!(feed::{ revocation_feed } on [
        embedded = Embedded,
        redis_standalone = RedisStandalone,
        redis_sentinel = RedisSentinel,
        redis_cluster = RedisCluster,
        mongo_copy = MongoCopy,
    ]);
}

/// The MongoDB copy keeps sessions only: login states stay in Redis.
mod login_state {
    use super::*;
    sessions_contract!(states::{ single_use, concurrent_takes, expiry } on [
        embedded = Embedded,
        redis_standalone = RedisStandalone,
        redis_sentinel = RedisSentinel,
        redis_cluster = RedisCluster,
    ]);
}

mod user {
    use super::*;
    users_contract!({
        first_login_creates_then_finds,
        concurrent_first_logins,
        groups_updates,
        inactive_records,
        many_at_once,
    } on [embedded = Embedded, mongodb = Mongo, crud = Crud]);
    // The embedded store's unique constraint makes duplicates impossible (checked by
    // `concurrent_first_logins`): there is nothing to choose between.
    users_contract!({ duplicates_use_the_oldest } on [mongodb = Mongo, crud = Crud]);
}
