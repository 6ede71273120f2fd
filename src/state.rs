//! [`AppState`]: the one shared value every request sees — configuration and handles to the
//! stores, the identity providers and the session cache. Handles are already cheap to share
//! (`Arc`s inside), so nothing here is behind a lock.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::{AppConfig, Config, StoreConfig, UsersConfig};
use crate::cookie::CookieJar;
use crate::crypto::TokenCipher;
use crate::idp::Idps;
use crate::jwt::JwtKeys;
use crate::session::Authenticator;
use crate::store::embedded::EmbeddedStore;
use crate::store::{LoginStates, Sessions, Users};

pub struct AppState {
    pub config: Config,
    pub auth: Arc<Authenticator>,
    pub states: Arc<dyn LoginStates>,
    pub sessions: Arc<dyn Sessions>,
    pub users: Arc<dyn Users>,
    pub idps: Idps,
    pub cookies: CookieJar,
    pub cipher: TokenCipher,
    /// `/.well-known/jwks.json`, rendered once.
    pub jwks_body: Bytes,
}

/// The stores a config names, opened.
pub struct Stores {
    pub states: Arc<dyn LoginStates>,
    pub sessions: Arc<dyn Sessions>,
    pub users: Arc<dyn Users>,
}

impl Stores {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let StoreConfig::Embedded { path } = &config.store;
        let embedded = EmbeddedStore::open(path)?;
        let users: Arc<dyn Users> = match &config.users {
            UsersConfig::Embedded { path: users_path } if users_path == path => {
                Arc::new(embedded.clone())
            }
            UsersConfig::Embedded { path: users_path } => {
                Arc::new(EmbeddedStore::open(users_path)?)
            }
        };
        Ok(Self {
            states: Arc::new(embedded.clone()),
            sessions: Arc::new(embedded),
            users,
        })
    }
}

impl AppState {
    pub fn build(config: Config) -> anyhow::Result<Arc<Self>> {
        let stores = Stores::open(&config)?;
        let issuers: Vec<String> = config.apps.values().map(|a| a.issuer.clone()).collect();
        let keys = JwtKeys::new(&config.jwt.signing, &config.jwt.verification, &issuers)
            .map_err(|m| anyhow::anyhow!("jwt: {m}"))?;
        let jwks_body = Bytes::from(keys.jwks().to_string());
        let auth = Arc::new(Authenticator::new(
            keys,
            stores.sessions.clone(),
            config.headers.user_properties.clone(),
            config.session.token_cache_entries,
        ));
        let cipher = TokenCipher::from_key_material(
            config
                .session
                .token_key
                .as_deref()
                .unwrap_or(config.jwt.signing.secret_bytes()),
        );
        Ok(Arc::new(Self {
            idps: Idps::new(&config.apps)?,
            cookies: CookieJar::new(&config.session),
            auth,
            states: stores.states,
            sessions: stores.sessions,
            users: stores.users,
            cipher,
            jwks_body,
            config,
        }))
    }

    /// Starts the background tasks (the revocation follower).
    pub fn spawn_background(self: &Arc<Self>) {
        crate::session::spawn_revocation_follower(self.auth.clone(), self.sessions.clone());
    }

    pub fn app(&self, id: &str) -> Option<&Arc<AppConfig>> {
        self.config.apps.get(id)
    }
}
