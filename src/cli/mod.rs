//! The command line: what `idgate` accepts (the clap definitions, here) and where each command
//! runs: `serve` and `check-config` in [`daemon`], the `users` / `sessions` commands that work on
//! whatever store the config names (also while the daemon runs) in [`admin`]. One global
//! `--config` (default `/etc/idgate/idgate.toml`) serves every command that reads a config, before
//! or after the command's name. `completions <shell>` and `manpage` (hidden) print the shell
//! completions and the man page the package ships, both generated from these definitions.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage error (clap), 78 bad configuration
//! (`EX_CONFIG`, so package scripts and `ExecStartPre` can tell it apart).

mod admin;
mod daemon;
mod manpage;
mod policy;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

pub use admin::{mint, mint_at};
pub use daemon::init_tracing;

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "idgate",
    version,
    about = "Nginx auth_request companion with its own OIDC login"
)]
pub struct Cli {
    /// The configuration file (TOML), for every command that reads one.
    #[arg(long, global = true, default_value = "/etc/idgate/idgate.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve,
    /// Validate the config (and the files it names) and exit: 0 when good, 78 when not.
    CheckConfig,
    /// Explain how the route rules decide one request: prints a JSON object (`decision`:
    /// `allow`, `forbidden` or `unauthenticated`; the deciding `route`, `method` and
    /// `expression`, or the `reason` none decided); exits 0 for allow, 1 otherwise.
    CheckPolicy(policy::CheckPolicy),
    /// Write a new signing key (PEM, or a random secret for HS256), and/or print the public
    /// JWK of a private key file (a provider's `client_key_file` for `private_key_jwt`), to
    /// register at the IdP.
    Keygen {
        /// RS256, ES256, EdDSA or HS256 (a `client_key_file`: RS256 or ES256).
        #[arg(long, visible_alias = "alg", default_value = "RS256")]
        algorithm: String,
        /// Write the new key here (mode 0600; an existing file is never replaced).
        #[arg(long, required_unless_present = "public_jwk")]
        out: Option<PathBuf>,
        /// Print this RS256/ES256 private key's public JWK (`kid`, `alg`, `use: sig`) as one
        /// line of JSON; the key itself is never printed.
        #[arg(long, value_name = "KEY_FILE")]
        public_jwk: Option<PathBuf>,
        /// The printed JWK's `kid` (default: its RFC 7638 thumbprint, which is also what
        /// idgate puts in its assertions unless the provider sets `client_key_id`).
        #[arg(long, requires = "public_jwk")]
        key_id: Option<String>,
    },
    /// Print the Nginx lines that hand the upstream the configured extra identity headers
    /// (`[headers] profile = "custom"` / `"oauth2-proxy"`, `pass_token`); include them after
    /// idgate-protect.conf.
    NginxHeaders,
    /// Print the version, the target and the enabled features, one `key: value` per line.
    Version,
    /// Print shell completions (the package ships them).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Print the man page, idgate(1) (the package ships it).
    #[command(hide = true)]
    Manpage,
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
    List,
    /// Replace a user's groups; live sessions carry them within `[users] refresh_interval`.
    SetGroups {
        user_id: String,
        groups: Vec<String>,
    },
    /// Examine the users collection: identities held by several active records (and which
    /// one logins use), records that cannot log in, identities held only by trashed records.
    /// Prints a JSON report; `--merge` also merges the duplicates (the kept record gets the
    /// union of their groups and permissions; the others move to TRASH, never deleted).
    Doctor {
        /// Merge the duplicates the report lists.
        #[arg(long)]
        merge: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Print sessions (without tokens) as a JSON array: ids, app, times (created, last seen,
    /// expiry), the client address and user agent of the login, whether alive.
    List {
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke one session (`--session`, its `sid` in `sessions list`; or `--id` with
    /// `--user`, the public id `sessions list`, `/me/sessions` and the audit trail's
    /// `session_hash` show) or all of a user's (`--user` alone); running daemons drop them
    /// within a second.
    Revoke {
        // Session ids are base64url: one in 64 starts with `-`, which is still a value here.
        #[arg(
            long,
            alias = "sid",
            conflicts_with_all = ["user", "id"],
            required_unless_present = "user",
            allow_hyphen_values = true
        )]
        session: Option<String>,
        /// Only the session of `--user` with this public id (the audit trail's
        /// `session_hash`), not all of theirs.
        #[arg(long, requires = "user", allow_hyphen_values = true)]
        id: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Create a session for a user id without a login and print its JWT (for benchmarks and
    /// service accounts; needs read access to the signing key, like the daemon).
    Mint {
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
    /// `check-policy`: the request would not pass (its JSON is printed).
    #[error("the request would not pass (see the decision above)")]
    Refused,
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => EXIT_CONFIG,
            Self::Runtime(_) | Self::Refused => EXIT_RUNTIME,
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve => daemon::serve(&cli.config),
        Command::CheckConfig => daemon::check_config(&cli.config),
        Command::CheckPolicy(args) => policy::check(&cli.config, &args),
        Command::Keygen {
            algorithm,
            out,
            public_jwk,
            key_id,
        } => {
            if let Some(out) = out {
                crate::jwt::keygen(&algorithm, &out)?;
            }
            if let Some(file) = public_jwk {
                let key = crate::config::ClientKey::load(&file, key_id.as_deref())
                    .map_err(anyhow::Error::msg)?;
                println!("{}", key.jwk);
            }
            Ok(())
        }
        Command::NginxHeaders => {
            print!(
                "{}",
                crate::headers::nginx_snippet(&Config::load(&cli.config)?.headers)
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
        Command::Manpage => {
            manpage::render(&mut std::io::stdout().lock()).map_err(anyhow::Error::from)?;
            Ok(())
        }
        Command::Users { action } => block_on(admin::users(&cli.config, action)),
        Command::Sessions { action } => block_on(admin::sessions(&cli.config, action)),
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

pub(crate) fn block_on<F: std::future::Future<Output = Result<(), Failure>>>(
    f: F,
) -> Result<(), Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?
        .block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_public_id_revokes_one_of_the_named_users_sessions_and_needs_the_user() {
        let revoke = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["idgate", "sessions", "revoke"][..], args].concat())?;
            match cli.command {
                Command::Sessions {
                    action: SessionsAction::Revoke { session, id, user },
                } => Ok::<_, clap::Error>((session, id, user)),
                other => panic!("not parsed as a revocation: {other:?}"),
            }
        };
        let (session, id, user) = revoke(&["--user", "dora", "--id", "-Xq2"]).unwrap();
        assert_eq!(
            (session, id.as_deref(), user.as_deref()),
            (None, Some("-Xq2"), Some("dora"))
        );
        // Alone, it names no user's session; beside a session id, it is one too many.
        assert!(revoke(&["--id", "Xq2"]).is_err());
        assert!(revoke(&["--session", "s1", "--id", "Xq2"]).is_err());
        assert!(revoke(&["--session", "s1", "--user", "dora"]).is_err());
    }

    #[test]
    fn a_session_id_starting_with_a_hyphen_is_a_value_under_either_name() {
        for flag in ["--session", "--sid"] {
            let cli = Cli::try_parse_from(["idgate", "sessions", "revoke", flag, "-k3x_9"]);
            let Ok(Cli {
                command:
                    Command::Sessions {
                        action: SessionsAction::Revoke { session, .. },
                    },
                ..
            }) = cli
            else {
                panic!("not parsed as a revocation: {cli:?}");
            };
            assert_eq!(session.as_deref(), Some("-k3x_9"), "{flag}");
        }
    }

    #[test]
    fn one_config_option_serves_every_command_before_or_after_its_name() {
        for args in [
            &["idgate", "--config", "/x.toml", "users", "list"][..],
            &["idgate", "users", "list", "--config", "/x.toml"][..],
            &["idgate", "users", "--config", "/x.toml", "list"][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.config, PathBuf::from("/x.toml"), "{args:?}");
        }
        let cli = Cli::try_parse_from(["idgate", "serve"]).unwrap();
        assert_eq!(cli.config, PathBuf::from("/etc/idgate/idgate.toml"));
    }
}
