//! Opaque API tokens (RFC 7662): an app with `[apps.X.introspection]` accepts, on `/auth`, a
//! bearer token its IdP issued and idgate did not mint — the IdP's introspection endpoint says
//! whether it is active and whose it is.
//!
//! - An active token with a `sub` (other than its `client_id`) is the user of the users store
//!   with that identity (realm, provider, `sub`), found as a back-channel logout finds it; a
//!   user who never logged in through idgate is refused (nothing is created from an API call).
//! - A token without `sub`, or whose `sub` is its `client_id` (client credentials), is the
//!   machine identity configured for that `client_id`; another client's is refused.
//! - `audience` and `client_ids`, when configured, must match the answer.
//!
//! The answer becomes a [`VerifiedSession`] (identity headers rendered), and the route rules
//! decide every request on it as on a session's. Answers are cached per app by the SHA-256 of
//! the token (the token itself is never kept), until the token's `exp` or `cache_ttl`,
//! whichever is first: a token revoked at the IdP is refused within `cache_ttl`. Refusals are
//! cached the same way (an inactive token does not become active); failures (the IdP or the
//! users store down) are not. Concurrent requests with the same token share one introspection.
//!
//! At most `max_in_flight` introspections of an app are at the IdP at once. A token with no
//! answer in the cache beyond that is not sent: it gets a 503 (never a pass), so a client
//! making up tokens cannot turn its requests into as many requests to the IdP, nor pile up
//! requests waiting on a slow IdP. Tokens with a cached answer are not held up.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{AppConfig, IntrospectionConfig};
use crate::idp::{IdpClient, IdpError, Introspection};
use crate::session::{token_digest, Authenticator, TokenDigest, VerifiedSession};
use crate::store::{StoreError, Users};

/// The session id an API token's identity carries (audit events name it).
pub const API_TOKEN_SID: &str = "api-token";

/// Why a token could not be checked (never a refusal: those are answers).
#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("identity provider `{provider}` could not introspect the token: {source}")]
    Idp {
        provider: String,
        #[source]
        source: IdpError,
    },
    #[error(
        "identity provider `{provider}` is already checking {limit} tokens of this app \
         (introspection max_in_flight): refused without asking"
    )]
    Busy { provider: String, limit: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one token's introspection concluded.
#[derive(Clone)]
enum Outcome {
    Identity(Arc<VerifiedSession>),
    /// Refused, and why (for the log line).
    Refused(&'static str),
}

/// A cached conclusion, good until `until` (Unix seconds).
#[derive(Clone)]
struct Entry {
    until: i64,
    outcome: Outcome,
}

/// One app's introspection cache, and the introspections it has at the IdP.
struct AppIntrospection {
    cache: quick_cache::sync::Cache<TokenDigest, Entry>,
    /// A permit per introspection at the IdP (`max_in_flight` of them).
    in_flight: tokio::sync::Semaphore,
    /// The second a token was last refused for want of a permit, logged once a second at most
    /// (a flood of made-up tokens must not become a flood of log lines).
    busy_logged: std::sync::atomic::AtomicI64,
}

/// The introspection caches of every app that has one.
pub struct Introspector {
    apps: HashMap<String, AppIntrospection>,
}

impl Introspector {
    pub fn new(apps: &std::collections::BTreeMap<String, Arc<AppConfig>>) -> Self {
        let apps = apps
            .values()
            .filter_map(|app| {
                let cfg = app.introspection.as_ref()?;
                Some((
                    app.id.clone(),
                    AppIntrospection {
                        cache: quick_cache::sync::Cache::new(cfg.cache_entries),
                        in_flight: tokio::sync::Semaphore::new(cfg.max_in_flight),
                        busy_logged: Default::default(),
                    },
                ))
            })
            .collect();
        Self { apps }
    }

    /// Whether `app_id` accepts opaque tokens at all (no hashing, no lock).
    pub fn enabled(&self, app_id: &str) -> bool {
        self.apps.contains_key(app_id)
    }

    /// The identity `token` stands for in `app`, `None` when it is refused. Answered from the
    /// cache while an entry for this very token lives; else the IdP is asked.
    pub async fn resolve(
        &self,
        app: &AppConfig,
        idp: Option<&IdpClient>,
        users: &dyn Users,
        auth: &Authenticator,
        token: &str,
        now: i64,
    ) -> Result<Option<Arc<VerifiedSession>>, IntrospectError> {
        let (Some(cfg), Some(introspection)) = (&app.introspection, self.apps.get(&app.id)) else {
            return Ok(None);
        };
        let AppIntrospection {
            cache,
            in_flight,
            busy_logged,
        } = introspection;
        let digest = token_digest(token);
        let ask = || async {
            // Held until the IdP has answered (or failed to).
            let Ok(_permit) = in_flight.try_acquire() else {
                let busy = IntrospectError::Busy {
                    provider: cfg.provider.clone(),
                    limit: cfg.max_in_flight,
                };
                let ordering = std::sync::atomic::Ordering::Relaxed;
                if busy_logged.swap(now, ordering) < now {
                    tracing::warn!(app = %app.id, error = %busy, "opaque bearer tokens refused (logged once a second)");
                }
                return Err(busy);
            };
            let Some(idp) = idp else {
                return Err(IntrospectError::Idp {
                    provider: cfg.provider.clone(),
                    source: IdpError::Protocol("the provider is not configured".into()),
                });
            };
            let answer = idp
                .introspect(token)
                .await
                .map_err(|source| IntrospectError::Idp {
                    provider: cfg.provider.clone(),
                    source,
                })?;
            conclude(app, cfg, answer.as_ref(), users, auth, now).await
        };
        let mut entry = cache.get_or_insert_async(&digest, ask()).await?;
        if entry.until <= now {
            // Past its bound: ask again (concurrent requests may each do so once).
            cache.remove(&digest);
            entry = cache.get_or_insert_async(&digest, ask()).await?;
        }
        match entry.outcome {
            Outcome::Identity(identity) if identity.is_valid(now) => Ok(Some(identity)),
            Outcome::Identity(_) => Ok(None),
            Outcome::Refused(reason) => {
                tracing::info!(app = %app.id, reason, "opaque bearer token refused");
                Ok(None)
            }
        }
    }
}

/// What `answer` means for `app`, and until when that holds.
async fn conclude(
    app: &AppConfig,
    cfg: &IntrospectionConfig,
    answer: Option<&Introspection>,
    users: &dyn Users,
    auth: &Authenticator,
    now: i64,
) -> Result<Entry, IntrospectError> {
    let bound = now + cfg.cache_ttl.as_secs() as i64;
    let refused = |reason| Entry {
        until: bound,
        outcome: Outcome::Refused(reason),
    };
    let Some(answer) = answer else {
        return Ok(refused("the IdP says the token is not active"));
    };
    let until = answer.exp.map_or(bound, |exp| exp.min(bound));
    if until <= now {
        return Ok(refused("the token has expired"));
    }
    if let Some(aud) = &cfg.audience {
        if !answer.aud.iter().any(|a| a == aud) {
            return Ok(refused("the token is not meant for this app's audience"));
        }
    }
    if let Some(allowed) = &cfg.client_ids {
        if !answer
            .client_id
            .as_ref()
            .is_some_and(|c| allowed.contains(c))
        {
            return Ok(refused("the token's client is not one of client_ids"));
        }
    }
    let machine = match (&answer.sub, &answer.client_id) {
        (None, _) => true,
        (Some(sub), Some(client)) => sub == client,
        (Some(_), None) => false,
    };
    let user = if machine {
        let Some(m) = answer.client_id.as_ref().and_then(|c| cfg.machines.get(c)) else {
            return Ok(refused(
                "a client-credentials token of a client with no machine identity",
            ));
        };
        crate::jwt::UserClaim::new(m.user_id.clone(), m.groups.clone())
    } else {
        let sub = answer.sub.as_deref().unwrap_or_default();
        let found = users
            .find_by_identity(&app.realm, &cfg.provider, sub)
            .await
            .map_err(StoreError::of_users_store)?;
        let Some(user) = found else {
            return Ok(refused("the token's subject never signed in to this app"));
        };
        crate::users::user_claim(
            &user,
            app.providers.get(&cfg.provider).map(|p| p.as_ref()),
            &app.token_claims,
            &Default::default(),
        )
    };
    Ok(Entry {
        until,
        outcome: Outcome::Identity(auth.api_identity(&app.id, API_TOKEN_SID, &user, until)),
    })
}
