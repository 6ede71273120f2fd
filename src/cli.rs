//! The command line: `serve`, `check-config`, `keygen`, `version`, and the `users` / `sessions`
//! commands that work on whatever store the config names (also while the daemon runs), among
//! them `users doctor` (see `users::doctor`).
//! `completions <shell>` (hidden) prints shell completions for the package.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage error (clap), 78 bad configuration
//! (`EX_CONFIG`, so package scripts and `ExecStartPre` can tell it apart).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::state::{AppState, Stores};

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "idgate",
    version,
    about = "Nginx auth_request companion with its own OIDC login"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
    },
    /// Validate the config (and the files it names) and exit: 0 when good, 78 when not.
    CheckConfig {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
    },
    /// Write a new signing key (PEM, or a random secret for HS256).
    Keygen {
        #[arg(long, default_value = "RS256")]
        algorithm: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the Nginx lines that hand the upstream the configured extra identity headers
    /// (`[headers] profile = "custom"` / `"oauth2-proxy"`, `pass_token`); include them after
    /// idgate-protect.conf.
    NginxHeaders {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
    },
    /// Print the version, the target and the enabled features, one `key: value` per line.
    Version,
    /// Print shell completions (the package ships them).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// List users or change their groups.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// List, revoke or mint sessions.
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Print every user as a JSON array.
    List {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
    },
    /// Replace a user's groups; the user's next login carries them.
    SetGroups {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
        user_id: String,
        groups: Vec<String>,
    },
    /// Examine the users collection: identities held by several active records (and which
    /// one logins use), records that cannot log in, identities held only by trashed records.
    /// Prints a JSON report; `--merge` also merges the duplicates (the kept record gets the
    /// union of their groups and permissions; the others move to TRASH, never deleted).
    Doctor {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
        /// Merge the duplicates the report lists.
        #[arg(long)]
        merge: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Print sessions (without tokens) as a JSON array.
    List {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke one session (`--sid`) or all of a user's (`--user`); running daemons drop them
    /// within a second.
    Revoke {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
        // Session ids are base64url: one in 64 starts with `-`, which is still a value here.
        #[arg(
            long,
            alias = "session",
            conflicts_with = "user",
            required_unless_present = "user",
            allow_hyphen_values = true
        )]
        sid: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Create a session for a user id without a login and print its JWT (for benchmarks and
    /// service accounts; needs read access to the signing key, like the daemon).
    Mint {
        #[arg(long, default_value = "/etc/idgate/idgate.toml")]
        config: PathBuf,
        #[arg(long)]
        user: String,
        /// Comma-separated groups for the token.
        #[arg(long, default_value = "")]
        groups: String,
        /// The app whose issuer signs it (default: the default app).
        #[arg(long)]
        app: Option<String>,
        /// How many sessions to mint, one token per line; with more than one, the user ids
        /// are `<user>-1` … `<user>-<count>` (a benchmark's many distinct sessions).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        count: u32,
        /// Store the sessions without signing or printing their tokens (fast: a benchmark's
        /// store filled with a million sessions in seconds); prints how many were stored.
        #[arg(long)]
        store_only: bool,
    },
}

/// Why a command failed, and so which exit code it gets.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("{0:#}")]
    Runtime(#[from] anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => EXIT_CONFIG,
            Self::Runtime(_) => EXIT_RUNTIME,
        }
    }
}

/// Sets up logging from the config (`RUST_LOG` wins).
pub fn init_tracing(config: Option<&Config>) {
    let level = config
        .map(|c| c.log.level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if config.is_some_and(|c| c.log.json) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::CheckConfig { config } => {
            let c = Config::load(&config)?;
            for line in &c.notices.infos {
                eprintln!("note: {line}");
            }
            for line in &c.notices.warnings {
                eprintln!("warning: {line}");
            }
            block_on(async move {
                AppState::build(c)
                    .await
                    .map(|_| ())
                    .map_err(Failure::Runtime)
            })?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Keygen { algorithm, out } => Ok(crate::jwt::keygen(&algorithm, &out)?),
        Command::NginxHeaders { config } => {
            print!(
                "{}",
                crate::headers::nginx_snippet(&Config::load(&config)?.headers)
            );
            Ok(())
        }
        Command::Version => {
            print!("{}", version_text());
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "idgate", &mut std::io::stdout());
            Ok(())
        }
        Command::Users { action } => block_on(users(action)),
        Command::Sessions { action } => block_on(sessions(action)),
    }
}

/// What `idgate version` prints: enough for a bug report.
pub fn version_text() -> String {
    format!(
        "idgate {}\ntarget: {}-{}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    )
}

fn block_on<F: std::future::Future<Output = Result<(), Failure>>>(f: F) -> Result<(), Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?
        .block_on(f)
}

fn serve(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path)?;
    init_tracing(Some(&config));
    config.notices.log();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    runtime.block_on(async move {
        let listeners = crate::server::bind_with(&config.server.listen, &config.server.socket)
            .await
            .map_err(anyhow::Error::from)?;
        let state = AppState::build(config).await?;
        let background = state.spawn_background();
        let shared: crate::server::SharedState = Arc::new(arc_swap::ArcSwap::new(state));
        tokio::spawn(crate::reload::on_sighup(
            path.to_owned(),
            shared.clone(),
            background,
        ));
        crate::systemd::ready();
        let stop = async {
            let how = crate::signal::shutdown().await;
            crate::systemd::stopping();
            how
        };
        crate::server::run_shared(listeners, shared, stop).await;
        Ok(())
    })
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?
    );
    Ok(())
}

async fn users(action: UsersAction) -> Result<(), Failure> {
    match action {
        UsersAction::List { config } => {
            let stores = Stores::open(&Config::load(&config)?).await?;
            let list = stores
                .users
                .list_users()
                .await
                .map_err(anyhow::Error::from)?;
            print_json(&serde_json::to_value(list).map_err(anyhow::Error::from)?)
        }
        UsersAction::SetGroups {
            config,
            user_id,
            groups,
        } => {
            let stores = Stores::open(&Config::load(&config)?).await?;
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
        UsersAction::Doctor { config, merge } => doctor(&config, merge).await,
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

async fn sessions(action: SessionsAction) -> Result<(), Failure> {
    match action {
        SessionsAction::List { config, user } => {
            let stores = Stores::open(&Config::load(&config)?).await?;
            let list = stores
                .sessions
                .list_sessions(user.as_deref())
                .await
                .map_err(anyhow::Error::from)?;
            let now = crate::now_secs();
            let rows: Vec<_> = list
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "sid": s.sid, "userId": s.user_id, "appId": s.app_id,
                        "providerId": s.provider_id, "createdAt": s.created_at,
                        "expiresAt": s.expires_at, "alive": s.is_alive(now),
                    })
                })
                .collect();
            print_json(&serde_json::Value::Array(rows))
        }
        SessionsAction::Revoke { config, sid, user } => {
            let stores = Stores::open(&Config::load(&config)?).await?;
            let revoked = match (sid, user) {
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
            println!("revoked {} session(s)", revoked.len());
            Ok(())
        }
        SessionsAction::Mint {
            config,
            user,
            groups,
            app,
            count,
            store_only,
        } => {
            let cfg = Config::load(&config)?;
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
                    .new_session(app_id, &format!("{user}-{i}"), "", None, now)
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
    let app = state
        .app(app_id)
        .ok_or_else(|| anyhow::anyhow!("no app named `{app_id}`"))?
        .clone();
    let now = crate::now_secs();
    let lifetime = state.config.session.lifetime.as_secs() as i64;
    let (session, _refresh_token) = state.open_session(app_id, user_id, "", None, now).await?;
    let user = crate::jwt::UserClaim {
        user_id: user_id.to_owned(),
        groups: groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        email: None,
        name: None,
        username: None,
        permissions: None,
        metadata: None,
        provider_user_id: None,
        user_settings_url: None,
        from_idp: Default::default(),
    };
    let claims = crate::users::session_claims(&app, user, &session.sid, now, lifetime);
    Ok(state.auth.keys().sign(&claims)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_session_id_starting_with_a_hyphen_is_a_value() {
        let cli = Cli::try_parse_from(["idgate", "sessions", "revoke", "--sid", "-k3x_9"]);
        let Ok(Cli {
            command:
                Command::Sessions {
                    action: SessionsAction::Revoke { sid, .. },
                },
        }) = cli
        else {
            panic!("not parsed as a revocation: {cli:?}");
        };
        assert_eq!(sid.as_deref(), Some("-k3x_9"));
    }
}
