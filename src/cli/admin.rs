//! The administrator's commands: `users list | set-groups | doctor` and `sessions list | revoke |
//! mint`. Each opens the stores the config names, directly: they work while the daemon runs (a
//! revocation reaches running daemons through the store's feed).

use std::path::Path;
use std::sync::Arc;

use super::{Failure, SessionsAction, UsersAction};
use crate::config::Config;
use crate::state::{AppState, Stores};

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?
    );
    Ok(())
}

/// `idgate users …`.
pub(super) async fn users(config: &Path, action: UsersAction) -> Result<(), Failure> {
    match action {
        UsersAction::List => {
            let stores = Stores::open(&Config::load(config)?).await?;
            let list = stores
                .users
                .list_users()
                .await
                .map_err(anyhow::Error::from)?;
            print_json(&serde_json::to_value(list).map_err(anyhow::Error::from)?)
        }
        UsersAction::SetGroups { user_id, groups } => {
            let stores = Stores::open(&Config::load(config)?).await?;
            if !stores
                .users
                .set_groups(&user_id, &groups)
                .await
                .map_err(anyhow::Error::from)?
            {
                return Err(anyhow::anyhow!("no user with id `{user_id}`").into());
            }
            println!("{user_id}: groups = {}", groups.join(","));
            Ok(())
        }
        UsersAction::Doctor { merge } => doctor(config, merge).await,
    }
}

/// `idgate users doctor`: the JSON report on stdout, a one-line summary on stderr.
async fn doctor(config: &Path, merge: bool) -> Result<(), Failure> {
    use crate::users::doctor;
    let cfg = Config::load(config)?;
    let store = match &cfg.users {
        crate::config::UsersConfig::Embedded { .. } => "embedded store",
        crate::config::UsersConfig::Mongodb(_) => "mongodb",
        crate::config::UsersConfig::Crud(_) => "crud service",
    };
    let stores = Stores::open(&cfg).await?;
    let report = doctor::examine(stores.users.as_ref(), store)
        .await
        .map_err(anyhow::Error::from)?;
    let merged = if merge {
        Some(
            doctor::merge(stores.users.as_ref(), stores.sessions.as_ref(), &report)
                .await
                .map_err(anyhow::Error::from)?,
        )
    } else {
        None
    };
    eprintln!(
        "{store}: {} record(s), {} duplicated identit{}{}, {} record(s) that cannot log in, {} \
         identit{} only outside PUBLIC",
        report.scanned,
        report.duplicates.len(),
        if report.duplicates.len() == 1 {
            "y"
        } else {
            "ies"
        },
        match &merged {
            Some(m) => format!(" ({} merged)", m.len()),
            None if report.duplicates.is_empty() => String::new(),
            None => " (merge them with --merge)".into(),
        },
        report.incomplete.len(),
        report.inactive.len(),
        if report.inactive.len() == 1 {
            "y"
        } else {
            "ies"
        },
    );
    let mut value = serde_json::to_value(&report).map_err(anyhow::Error::from)?;
    if let (Some(merged), Some(object)) = (merged, value.as_object_mut()) {
        object.insert(
            "merged".into(),
            serde_json::to_value(merged).map_err(anyhow::Error::from)?,
        );
    }
    print_json(&value)
}

/// `idgate sessions …`.
pub(super) async fn sessions(config: &Path, action: SessionsAction) -> Result<(), Failure> {
    match action {
        SessionsAction::List { user } => {
            let stores = Stores::open(&Config::load(config)?).await?;
            let list = stores
                .sessions
                .list_sessions(user.as_deref())
                .await
                .map_err(anyhow::Error::from)?;
            let rows = session_rows(stores.sessions.as_ref(), &list).await?;
            print_json(&serde_json::Value::Array(rows))
        }
        SessionsAction::Revoke {
            session: sid,
            id,
            user,
        } => {
            let cfg = Config::load(config)?;
            let stores = Stores::open(&cfg).await?;
            // A public id names one of the user's sessions: its sid, when they have it.
            let (sid, user) = match (id, user) {
                (Some(id), Some(user)) => {
                    let theirs = stores
                        .sessions
                        .list_sessions(Some(&user))
                        .await
                        .map_err(anyhow::Error::from)?;
                    let found = theirs
                        .into_iter()
                        .find(|s| crate::crypto::is_handle_of(&id, &s.sid));
                    match found {
                        Some(s) => (Some(s.sid), None),
                        None => {
                            println!("revoked 0 session(s): {user} has no session {id}");
                            return Ok(());
                        }
                    }
                }
                (_, user) => (sid, user),
            };
            // Whose session it is, for the audit trail (read before it is revoked).
            let owner = match (&sid, cfg.audit.is_some()) {
                (Some(sid), true) => stores
                    .sessions
                    .get_session(sid)
                    .await
                    .map_err(anyhow::Error::from)?,
                _ => None,
            };
            let revoked = match (sid, user.clone()) {
                (Some(sid), _) => {
                    let done = stores
                        .sessions
                        .revoke_session(&sid)
                        .await
                        .map_err(anyhow::Error::from)?;
                    if done {
                        vec![sid]
                    } else {
                        vec![]
                    }
                }
                (None, Some(user)) => stores
                    .sessions
                    .revoke_user_sessions(&user)
                    .await
                    .map_err(anyhow::Error::from)?,
                (None, None) => vec![],
            };
            audit_revoked(&cfg, owner.as_ref(), user.as_deref(), &revoked).await?;
            println!("revoked {} session(s)", revoked.len());
            Ok(())
        }
        SessionsAction::Mint {
            user,
            groups,
            app,
            count,
            store_only,
        } => {
            let cfg = Config::load(config)?;
            let app_id = app
                .or_else(|| cfg.server.default_app.clone())
                .ok_or_else(|| {
                    anyhow::anyhow!("several apps are configured: name one with --app")
                })?;
            let state = AppState::build(cfg).await?;
            if store_only {
                store_sessions(&state, &app_id, &user, count).await?;
                println!("stored {count} session(s)");
                return Ok(());
            }
            if count == 1 {
                let token = mint(&state, &app_id, &user, &groups).await?;
                println!("{token}");
                return Ok(());
            }
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for i in 1..=count {
                let token = mint(&state, &app_id, &format!("{user}-{i}"), &groups).await?;
                writeln!(out, "{token}").map_err(anyhow::Error::from)?;
            }
            out.flush().map_err(anyhow::Error::from)?;
            Ok(())
        }
    }
}

/// Writes an administrator's revocation of `revoked` into the audit trail (when `[audit]` is
/// set) and waits until it is written: a `revoke` event by `admin` per session, without a client
/// address or a request id. `owner` is the record of a session revoked by id.
async fn audit_revoked(
    cfg: &Config,
    owner: Option<&crate::store::SessionRecord>,
    user: Option<&str>,
    revoked: &[String],
) -> anyhow::Result<()> {
    use crate::audit::{Audit, Event, RevokedBy};
    let (audit, writer) = Audit::start(cfg.audit.as_ref(), Default::default())?;
    if !audit.is_on() {
        return Ok(());
    }
    for sid in revoked {
        let event = Event::revoke(RevokedBy::Admin).session(sid);
        let event = match (owner, user) {
            (Some(r), _) => event
                .user(&r.user_id)
                .app(&r.app_id)
                .provider(&r.provider_id),
            (None, Some(u)) => event.user(u),
            (None, None) => event,
        };
        audit.record_waiting(event).await;
    }
    drop(audit);
    if let Some(writer) = writer {
        writer.await?;
    }
    Ok(())
}

/// `sessions list`'s rows: what a user sees of their sessions at `/me/sessions` (`id` is the
/// same public handle), plus the session id, the user and whether the session is alive. The
/// last activity is read a few sessions at a time.
async fn session_rows(
    sessions: &dyn crate::store::Sessions,
    list: &[crate::store::SessionRecord],
) -> Result<Vec<serde_json::Value>, Failure> {
    use futures_util::StreamExt;
    let now = crate::now_secs();
    let activity: Vec<_> = futures_util::stream::iter(list)
        .map(|s| sessions.last_activity(&s.sid))
        .buffered(16)
        .collect()
        .await;
    list.iter()
        .zip(activity)
        .map(|(s, seen)| {
            let seen = seen.map_err(anyhow::Error::from)?;
            Ok(serde_json::json!({
                "sid": s.sid, "id": crate::crypto::session_handle(&s.sid),
                "userId": s.user_id, "appId": s.app_id, "providerId": s.provider_id,
                "createdAt": s.created_at,
                "lastSeenAt": seen.unwrap_or(s.created_at).max(s.created_at),
                "expiresAt": s.expires_at, "alive": s.is_alive(now),
                "clientAddr": s.context.client_addr, "userAgent": s.context.user_agent,
            }))
        })
        .collect()
}

/// Stores `count` sessions of users `<user>-1` … `<user>-<count>`, in batches of ten thousand,
/// a few batches at a time (a store over the network takes them in parallel).
async fn store_sessions(
    state: &Arc<AppState>,
    app_id: &str,
    user: &str,
    count: u32,
) -> anyhow::Result<()> {
    const BATCH: u32 = 10_000;
    let now = crate::now_secs();
    let batches = (1..=count).step_by(BATCH as usize).map(|first| {
        let last = first.saturating_add(BATCH - 1).min(count);
        let records: Vec<_> = (first..=last)
            .map(|i| {
                state
                    .new_session(
                        app_id,
                        &format!("{user}-{i}"),
                        "",
                        None,
                        Default::default(),
                        now,
                    )
                    .0
            })
            .collect();
        async move { state.sessions.create_sessions(&records).await }
    });
    use futures_util::StreamExt;
    let mut in_flight = futures_util::stream::iter(batches).buffer_unordered(8);
    while let Some(stored) = in_flight.next().await {
        stored?;
    }
    Ok(())
}

/// Creates a stored session for `user_id` with `groups` and returns its signed JWT.
pub async fn mint(
    state: &Arc<AppState>,
    app_id: &str,
    user_id: &str,
    groups: &str,
) -> anyhow::Result<String> {
    mint_at(state, app_id, user_id, groups, None, crate::now_secs()).await
}

/// [`mint`], the session created at `now` and holding `idp_tokens` (the cold-path benchmark,
/// `examples/cold.rs`, mints sessions as if logged in a while ago through an IdP).
pub async fn mint_at(
    state: &Arc<AppState>,
    app_id: &str,
    user_id: &str,
    groups: &str,
    idp_tokens: Option<&crate::idp::IdpTokens>,
    now: i64,
) -> anyhow::Result<String> {
    let app = state
        .app(app_id)
        .ok_or_else(|| anyhow::anyhow!("no app named `{app_id}`"))?
        .clone();
    let lifetime = state.config.session.lifetime.as_secs() as i64;
    let (session, _refresh_token) = state
        .open_session(app_id, user_id, "", idp_tokens, Default::default(), now)
        .await?;
    let user = crate::jwt::UserClaim::new(
        user_id,
        groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
    );
    let claims = crate::users::session_claims(&app, user, None, &session.sid, now, lifetime);
    Ok(state.auth.keys().sign(&claims)?)
}
