//! The backends the contract runs against, each started from nothing for one test (real Redis,
//! Sentinel, Cluster, secantusdb and the CRUD fake, from `tests/common`) and opened through the
//! library's public API only, as `state.rs` opens them. A fixture holds the running
//! components: dropping it stops them.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use idgate::config::{CrudConfig, InactiveUsers, MongoConfig, RedisConfig, RedisMode};
use idgate::crypto::Secret;
use idgate::store::embedded::EmbeddedStore;
use idgate::store::{LoginStates, Sessions, Users};
use mongodb::bson::Document;

use crate::common::mongo::{CrudFake, Mongo};
use crate::common::redis::{Cluster, RedisServer, SentinelSetup};

/// What a fixture keeps alive: temporary folders and running components.
type Running = Vec<Box<dyn Any + Send>>;

/// Where login states and sessions can live.
#[derive(Debug, Clone, Copy)]
pub enum SessionsBackend {
    Embedded,
    RedisStandalone,
    RedisSentinel,
    RedisCluster,
    /// `store::mongo::mirror_sessions` over Redis standalone, as production runs it.
    MongoCopy,
}

/// Two handles on one store, as two idgate processes sharing it would hold: what one writes,
/// the other must see (revocations above all).
pub struct SessionsFixture {
    pub sessions: Arc<dyn Sessions>,
    pub other: Arc<dyn Sessions>,
    /// `None` for the MongoDB copy, which keeps sessions only.
    pub states: Option<(Arc<dyn LoginStates>, Arc<dyn LoginStates>)>,
    _running: Running,
}

impl SessionsFixture {
    /// The login states of a backend that keeps them.
    pub fn states(&self) -> (&dyn LoginStates, &dyn LoginStates) {
        let (a, b) = self
            .states
            .as_ref()
            .expect("this backend keeps no login states: not in the states matrix");
        (a.as_ref(), b.as_ref())
    }
}

fn redis_config(mode: RedisMode, urls: &[String]) -> RedisConfig {
    RedisConfig {
        mode,
        urls: urls.iter().map(|u| Secret::new(u.clone())).collect(),
        master_name: (mode == RedisMode::Sentinel).then(|| "mymaster".to_owned()),
        scope: "contract".into(),
        username: None,
        password: None,
        pool_size: 4,
    }
}

async fn open_redis(cfg: &RedisConfig) -> (Arc<dyn LoginStates>, Arc<dyn Sessions>) {
    idgate::store::redis::open(cfg)
        .await
        .expect("the Redis store opens without connecting")
}

fn mongo_config(uri: &str, database: &str) -> MongoConfig {
    MongoConfig {
        uri: Secret::new(uri),
        database: database.into(),
        collection: "users".into(),
        sessions_collection: "idgate_sessions".into(),
        create_index: true,
        inactive_users: InactiveUsers::Refuse,
    }
}

impl SessionsBackend {
    pub async fn start(self) -> SessionsFixture {
        let dir = tempfile::tempdir().unwrap();
        let mut running: Running = Vec::new();
        let (states, sessions, other_states, other) = match self {
            SessionsBackend::Embedded => {
                let path = dir.path().join("idgate.db");
                let a = Arc::new(EmbeddedStore::open(&path).unwrap());
                let b = Arc::new(EmbeddedStore::open(&path).unwrap());
                (
                    a.clone() as Arc<dyn LoginStates>,
                    a as Arc<dyn Sessions>,
                    b.clone() as Arc<dyn LoginStates>,
                    b as Arc<dyn Sessions>,
                )
            }
            SessionsBackend::RedisStandalone | SessionsBackend::MongoCopy => {
                let redis = RedisServer::start(dir.path(), &[]);
                let cfg = redis_config(RedisMode::Standalone, &[redis.url()]);
                running.push(Box::new(redis));
                let (states, sessions) = open_redis(&cfg).await;
                let (other_states, other) = open_redis(&cfg).await;
                (states, sessions, other_states, other)
            }
            SessionsBackend::RedisSentinel => {
                let setup = SentinelSetup::start(dir.path());
                let cfg = redis_config(RedisMode::Sentinel, &[setup.url()]);
                running.push(Box::new(setup));
                let (states, sessions) = open_redis(&cfg).await;
                let (other_states, other) = open_redis(&cfg).await;
                (states, sessions, other_states, other)
            }
            SessionsBackend::RedisCluster => {
                let cluster = Cluster::start(dir.path());
                let urls = cluster.urls();
                running.push(Box::new(cluster));
                let (states, sessions) = open_redis(&redis_config(RedisMode::Cluster, &urls)).await;
                // Seeded with another node: the slot map, not the seed, routes every key.
                let (other_states, other) =
                    open_redis(&redis_config(RedisMode::Cluster, &urls[2..])).await;
                (states, sessions, other_states, other)
            }
        };
        running.push(Box::new(dir));
        if let SessionsBackend::MongoCopy = self {
            let mongo = Mongo::start();
            let cfg = mongo_config(&mongo.uri(), "contract");
            running.push(Box::new(mongo));
            let mirror = |primary| idgate::store::mongo::mirror_sessions(primary, &cfg);
            return SessionsFixture {
                sessions: mirror(sessions).await.unwrap(),
                other: mirror(other).await.unwrap(),
                states: None,
                _running: running,
            };
        }
        SessionsFixture {
            sessions,
            other,
            states: Some((states, other_states)),
            _running: running,
        }
    }
}

/// Where users can live.
#[derive(Debug, Clone, Copy)]
pub enum UsersBackend {
    Embedded,
    Mongo,
    Crud,
}

pub struct UsersFixture {
    pub users: Arc<dyn Users>,
    /// The store's name in its errors.
    pub name: &'static str,
    /// Whether records have states (`__STATE__`): a retired record stays, hidden from logins.
    pub has_states: bool,
    backend: UsersBackend,
    /// The MongoDB behind the store, if any.
    mongo: Option<Mongo>,
    running: Running,
}

impl UsersBackend {
    pub async fn start(self) -> UsersFixture {
        let mut running: Running = Vec::new();
        let (users, name, has_states, mongo) = match self {
            UsersBackend::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let store = EmbeddedStore::open(&dir.path().join("idgate.db")).unwrap();
                running.push(Box::new(dir));
                (
                    Arc::new(store) as Arc<dyn Users>,
                    "embedded store",
                    false,
                    None,
                )
            }
            UsersBackend::Mongo => {
                let mongo = Mongo::start();
                let users =
                    idgate::store::mongo::open_users(&mongo_config(&mongo.uri(), "contract"))
                        .await
                        .unwrap();
                (users, "mongodb", true, Some(mongo))
            }
            UsersBackend::Crud => {
                let mongo = Mongo::start();
                // The collection as a definition with a unique identity index leaves it.
                let crud = CrudFake::start(&mongo, "contract", "secret:contract-key");
                let users = idgate::store::crud::open_users(&crud_config(&crud.url)).unwrap();
                running.push(Box::new(crud));
                (users, "crud service", true, Some(mongo))
            }
        };
        UsersFixture {
            users,
            name,
            has_states,
            backend: self,
            mongo,
            running,
        }
    }
}

fn crud_config(url: &str) -> CrudConfig {
    CrudConfig {
        base_url: url.parse().unwrap(),
        headers: vec![("secret".into(), Secret::new("contract-key"))],
        timeout: Duration::from_secs(5),
        // Every field, as a collection defined with permissions and metadata accepts.
        fields: idgate::config::CRUD_FIELDS.map(String::from).to_vec(),
        inactive_users: InactiveUsers::Refuse,
    }
}

impl UsersFixture {
    /// A second users store of the same kind over a fresh collection that already holds
    /// `docs` and has no unique identity index (as Mia's authentication service leaves one),
    /// so it may hold several active records of one identity.
    pub async fn seeded(&mut self, docs: Vec<Document>) -> Arc<dyn Users> {
        let mongo = self
            .mongo
            .as_ref()
            .expect("only the stores with states can hold duplicates: not in this matrix");
        mongo
            .client()
            .await
            .database("seeded")
            .collection::<Document>("users")
            .insert_many(docs)
            .await
            .unwrap();
        match self.backend {
            UsersBackend::Mongo => {
                // The index cannot be built over duplicates; the logins go on without it.
                idgate::store::mongo::open_users(&mongo_config(&mongo.uri(), "seeded"))
                    .await
                    .unwrap()
            }
            UsersBackend::Crud => {
                let crud = CrudFake::start_with_args(
                    mongo,
                    "seeded",
                    "secret:contract-key",
                    &["--identity-index", "none"],
                );
                let users = idgate::store::crud::open_users(&crud_config(&crud.url)).unwrap();
                self.running.push(Box::new(crud));
                users
            }
            UsersBackend::Embedded => unreachable!("no MongoDB behind the embedded store"),
        }
    }
}
