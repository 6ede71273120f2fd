//! The tables of the embedded store's SQLite file, created at open when missing: login states,
//! sessions with their refresh grace records and last activity, the revocation log, users, and
//! the single-use keys of `remember_once`. Indexes are there for the queries that would
//! otherwise scan a table on a hot or periodic path. A file made by an earlier version is
//! brought up to date at open by [`upgrade`].

use rusqlite::{Connection, TransactionBehavior};

/// Every table but the single-use keys.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS login_states (
    state TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    redirect TEXT NOT NULL,
    client_state TEXT,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    binding_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    step_up TEXT
);
CREATE INDEX IF NOT EXISTS login_states_by_expiry ON login_states (expires_at);
CREATE TABLE IF NOT EXISTS sessions (
    sid TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    refresh_hash TEXT NOT NULL,
    idp_tokens BLOB NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    -- `SessionContext` as JSON (added by `upgrade` to files made before it).
    context TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
-- Every new session clears the long-expired ones: without this, a scan of all sessions.
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
-- The cold read of `/auth` (`SESSION_HEAD` in sessions.rs) answered from the index alone: one
-- B-tree to descend instead of two (the key's index, then the table). Built at the first open
-- of a file made before it.
CREATE INDEX IF NOT EXISTS sessions_head
    ON sessions (sid, user_id, app_id, provider_id, created_at, expires_at, revoked);
CREATE TABLE IF NOT EXISTS refresh_grace (
    sid TEXT PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    grace_until INTEGER NOT NULL,
    pair BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS session_activity (
    sid TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sid TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    name TEXT,
    email TEXT,
    username TEXT,
    groups TEXT NOT NULL,
    permissions TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (realm, provider_id, provider_user_id)
);
";

/// Keys recorded by `Sessions::remember_once`, kept in a table of their own (created beside
/// [`SCHEMA`]) with an index on the expiry, so expired keys are found without a scan.
pub(super) const ONCE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS once_keys (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS once_keys_by_expiry ON once_keys (expires_at);
";

/// Columns added to a table after it was first released: `(table, column, declaration)`. A
/// file made by an older idgate gets each it lacks when opened ([`upgrade`]), so an upgrade
/// keeps its sessions and users.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("login_states", "step_up", "TEXT"),
    ("sessions", "context", "TEXT NOT NULL DEFAULT '{}'"),
];

/// Adds the [`ADDED_COLUMNS`] a file lacks, in one immediate transaction, so two processes
/// opening an old file at once add each once (the second sees it there).
pub(super) fn upgrade(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (table, column, declaration) in ADDED_COLUMNS {
        let present: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            [table, column],
            |row| row.get(0),
        )?;
        if !present {
            // Names from the constant above, never from input.
            tx.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
            ))?;
        }
    }
    tx.commit()
}
