//! [`AppState`]: the one shared value every request sees — configuration and handles to the
//! stores, the identity providers and the session cache. Handles are already cheap to share
//! (`Arc`s inside), so nothing here is behind a lock.

use std::sync::Arc;
use tracing::Instrument as _;

use bytes::Bytes;

use crate::config::{AppConfig, Config, StoreConfig, UsersConfig};
use crate::cookie::CookieJar;
use crate::crypto::{SessionMac, TokenCipher};
use crate::idp::Idps;
use crate::jwt::JwtKeys;
use crate::session::Authenticator;
use crate::store::embedded::EmbeddedStore;
use crate::store::{LoginStates, SessionContext, SessionRecord, Sessions, Users};

/// How often expired login states are removed from stores that keep them.
const STATE_PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

pub struct AppState {
    pub config: Config,
    pub auth: Arc<Authenticator>,
    pub states: Arc<dyn LoginStates>,
    pub sessions: Arc<dyn Sessions>,
    pub users: Arc<dyn Users>,
    pub idps: Idps,
    pub cookies: CookieJar,
    /// The jars of apps with cookie attributes of their own (see [`AppState::cookies_for`]).
    app_cookies: std::collections::HashMap<String, CookieJar>,
    pub cipher: TokenCipher,
    /// Renewal secrets and refresh-token authenticity (see `crypto::SessionMac`).
    pub macs: SessionMac,
    /// `/.well-known/jwks.json`, rendered once.
    pub jwks_body: Bytes,
    pub location_rules: crate::policy::LocationRules,
    /// Recent silent renewals by expired token, so a burst of requests renews once.
    /// Purged of entries older than `session::renewals::RENEWAL_REUSE_SECS` (see
    /// `spawn_background`).
    pub renewals: crate::session::renewals::Renewals,
    /// Counters and histograms for `/-/metrics` (atomic increments only on `/auth`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The audit trail (`[audit]`); off, it costs nothing.
    pub audit: Arc<crate::audit::Audit>,
    /// The login site's pages: templates, strings and assets.
    pub pages: crate::pages::Pages,
    /// Opaque API tokens' introspection caches (`[apps.X.introspection]`).
    pub introspector: crate::introspect::Introspector,
    /// Scoped tokens minted for upstreams (`[apps.X.audiences]`), by session token and audience.
    pub scoped: crate::jwt::scoped::ScopedTokens,
    /// The login endpoints' rate limits (`[login_limits]`).
    pub limits: crate::limits::LoginLimits,
}

/// The stores a config names, opened.
pub struct Stores {
    pub states: Arc<dyn LoginStates>,
    pub sessions: Arc<dyn Sessions>,
    pub users: Arc<dyn Users>,
}

impl Stores {
    /// Opens the stores the config names. Servers that are down do not stop this: their
    /// clients connect lazily, and `/-/ready` names what is unreachable.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (states, sessions, embedded): (Arc<dyn LoginStates>, Arc<dyn Sessions>, _) =
            match &config.store {
                StoreConfig::Embedded { path } => {
                    let store = EmbeddedStore::open(path)?;
                    (
                        Arc::new(store.clone()),
                        Arc::new(store.clone()),
                        Some((path.clone(), store)),
                    )
                }
                StoreConfig::Redis(redis) => {
                    let (states, sessions) =
                        crate::store::redis::open_with_trust(redis, &config.tls.redis).await?;
                    (states, sessions, None)
                }
            };
        let (users, sessions): (Arc<dyn Users>, Arc<dyn Sessions>) = match &config.users {
            UsersConfig::Embedded { path } => match &embedded {
                Some((store_path, store)) if store_path == path => {
                    (Arc::new(store.clone()), sessions)
                }
                _ => (Arc::new(EmbeddedStore::open(path)?), sessions),
            },
            UsersConfig::Mongodb(mongo) => {
                let users = crate::store::mongo::open_users(mongo).await?;
                let sessions = match &config.store {
                    StoreConfig::Redis(_) => {
                        crate::store::mongo::mirror_sessions(sessions, mongo).await?
                    }
                    StoreConfig::Embedded { .. } => sessions,
                };
                (users, sessions)
            }
            UsersConfig::Crud(crud) => (
                crate::store::crud::open_users_with_trust(crud, &config.tls.crud)?,
                sessions,
            ),
        };
        Ok(Self {
            states,
            sessions,
            users,
        })
    }
}

impl AppState {
    /// The jar that sets and clears app `app_id`'s cookies: its own attributes where it has
    /// some, `[session]`'s otherwise. Reading cookies works with either (the names are shared).
    pub fn cookies_for(&self, app_id: &str) -> &CookieJar {
        self.app_cookies.get(app_id).unwrap_or(&self.cookies)
    }

    pub async fn build(config: Config) -> anyhow::Result<Arc<Self>> {
        let stores = Stores::open(&config).await?;
        let issuers: Vec<String> = config.apps.values().map(|a| a.issuer.clone()).collect();
        let keys = JwtKeys::new(&config.jwt.signing, &config.jwt.verification, &issuers)
            .map_err(|m| anyhow::anyhow!("jwt: {m}"))?;
        let jwks_body = Bytes::from(keys.jwks().to_string());
        let metrics = Arc::new(crate::metrics::Metrics::new());
        // The writer task ends by itself once this state (the last sender) is dropped.
        let (audit, _writer) =
            crate::audit::Audit::start(config.audit.as_ref(), metrics.audit_dropped.clone())?;
        let audit = Arc::new(audit);
        let auth = Arc::new(
            Authenticator::new(
                keys,
                stores.sessions.clone(),
                config.headers.clone(),
                config.session.token_cache_entries,
                config.session.outage_grace,
            )
            .with_idle_timeout(config.session.idle_timeout)
            .with_apps(config.apps.keys())
            .with_users(stores.users.clone())
            .with_audit(audit.clone()),
        );
        let key_material = config
            .session
            .token_key
            .as_deref()
            .unwrap_or(config.jwt.signing.secret_bytes());
        let cipher = TokenCipher::from_key_material(key_material);
        let macs = SessionMac::from_key_material(key_material);
        Ok(Arc::new(Self {
            introspector: crate::introspect::Introspector::new(&config.apps),
            scoped: crate::jwt::scoped::ScopedTokens::new(config.session.token_cache_entries),
            idps: Idps::with_trust(&config.apps, &config.tls.idp)?,
            cookies: CookieJar::new(&config.session),
            app_cookies: config
                .apps
                .iter()
                .filter(|(_, a)| !a.cookie_attributes.is_empty())
                .map(|(id, a)| {
                    let jar = CookieJar::new(&config.session).for_app(&a.cookie_attributes);
                    (id.clone(), jar)
                })
                .collect(),
            auth,
            states: stores.states,
            sessions: stores.sessions,
            users: stores.users,
            cipher,
            macs,
            jwks_body,
            location_rules: Default::default(),
            renewals: quick_cache::sync::Cache::new(4096),
            metrics,
            audit,
            limits: crate::limits::LoginLimits::new(config.login_limits),
            pages: crate::pages::Pages::new(
                &config.pages.templates,
                &config
                    .apps
                    .values()
                    .filter_map(|a| Some((a.id.clone(), a.pages.stylesheet()?)))
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| anyhow::anyhow!("pages: {e}"))?
            .with_form_targets(&form_targets(&config)),
            config,
        }))
    }

    /// Starts the background tasks (the revocation follower, the users-store refresher, the
    /// purges of expired login states and of past renewals) and returns their handles.
    pub fn spawn_background(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks =
            crate::session::spawn_revocation_follower(self.auth.clone(), self.sessions.clone());
        tasks.push(crate::session::spawn_user_refresher(
            self.auth.clone(),
            self.users.clone(),
            self.config.users_refresh_interval,
            self.metrics.clone(),
        ));
        let states = self.states.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(STATE_PURGE_INTERVAL).await;
                match states.purge_expired_states().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired login states removed"),
                    Err(e) => tracing::warn!(error = %e, "cannot purge expired login states"),
                }
            }
        }));
        let state = Arc::downgrade(self);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(STATE_PURGE_INTERVAL).await;
                let Some(state) = state.upgrade() else { return };
                crate::session::renewals::purge_renewals(&state.renewals, crate::now_secs());
            }
        }));
        tasks
    }

    pub fn app(&self, id: &str) -> Option<&Arc<AppConfig>> {
        self.config.apps.get(id)
    }

    /// A new live session of `user_id` on `app_id`, logged in through `provider_id` (empty for
    /// a session an administrator minted), starting `now`, with what is known of its login
    /// (`context`): its record, with `idp_tokens` sealed, and the refresh token whose hash it
    /// holds (handed out once, by whoever opens it).
    pub fn new_session(
        &self,
        app_id: &str,
        user_id: &str,
        provider_id: &str,
        idp_tokens: Option<&crate::idp::IdpTokens>,
        context: SessionContext,
        now: i64,
    ) -> (SessionRecord, String) {
        let sid = crate::crypto::random_token();
        let refresh_token = self.macs.refresh_token(&sid);
        let idp_tokens = idp_tokens.map_or_else(Vec::new, |t| {
            self.cipher.seal(&serde_json::to_vec(t).unwrap_or_default())
        });
        let record = SessionRecord {
            sid,
            user_id: user_id.to_owned(),
            app_id: app_id.to_owned(),
            provider_id: provider_id.to_owned(),
            created_at: now,
            expires_at: now + self.config.session.lifetime.as_secs() as i64,
            refresh_hash: crate::crypto::hash_token(&refresh_token),
            idp_tokens,
            revoked: false,
            context,
        };
        (record, refresh_token)
    }

    /// Opens a session: the one way for a login (`/oauth/token`) and `idgate sessions mint`.
    /// Stores [`AppState::new_session`]'s record; the user's oldest sessions beyond
    /// `session.max_per_user` end, in the store and in this process's token cache. Returns the
    /// record and its refresh token.
    pub async fn open_session(
        &self,
        app_id: &str,
        user_id: &str,
        provider_id: &str,
        idp_tokens: Option<&crate::idp::IdpTokens>,
        context: SessionContext,
        now: i64,
    ) -> Result<(SessionRecord, String), crate::store::StoreError> {
        let (record, refresh_token) =
            self.new_session(app_id, user_id, provider_id, idp_tokens, context, now);
        let evicted = self
            .sessions
            .create_session(&record, self.config.session.max_per_user)
            .instrument(crate::telemetry::store_span("create_session"))
            .await?;
        for sid in &evicted {
            self.auth.forget_session(sid);
        }
        Ok((record, refresh_token))
    }

    /// What the IdP asserted at the login of `record`'s session (kept sealed with its tokens),
    /// for a new token of it. `None` when the sealed part cannot be read (sealed under another
    /// key) and `app` takes groups or claims from the IdP: the session cannot be reissued as it
    /// was, and is not. An app that takes nothing from the IdP still gets the login's `authn`
    /// when it can be read (step-up routes), and none when it cannot.
    pub fn asserted(
        &self,
        app: &AppConfig,
        record: &crate::store::SessionRecord,
    ) -> Option<crate::idp::Asserted> {
        let wanted = app.use_provider_groups
            || app
                .providers
                .get(&record.provider_id)
                .is_some_and(|p| !p.claims_to_token.is_empty());
        if record.idp_tokens.is_empty() {
            // A session an administrator minted: nothing was asserted.
            return Some(crate::idp::Asserted::default());
        }
        let opened = self
            .cipher
            .open(&record.idp_tokens)
            .ok()
            .and_then(|plain| serde_json::from_slice::<crate::idp::IdpTokens>(&plain).ok())
            .map(|t| t.asserted);
        match opened {
            Some(asserted) if wanted => Some(asserted),
            Some(asserted) => Some(crate::idp::Asserted {
                authn: asserted.authn,
                ..Default::default()
            }),
            None if wanted => None,
            None => Some(crate::idp::Asserted::default()),
        }
    }
}

/// The origins of every app's absolute `allowed_redirects`, once each, sorted: where the
/// callback page's form may lead (see [`crate::pages::Pages::with_form_targets`]).
fn form_targets(config: &Config) -> Vec<String> {
    let origins: std::collections::BTreeSet<String> = config
        .apps
        .values()
        .flat_map(|a| a.allowed_redirects.iter().map(|t| t.origin()))
        .collect();
    origins.into_iter().collect()
}
