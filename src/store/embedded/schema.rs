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
    expires_at INTEGER NOT NULL
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

/// Adds what later versions added to a file made before them: today the sessions' `context`
/// column. In one immediate transaction, so two processes opening an old file at once add it
/// once (the second sees it there).
pub(super) fn upgrade(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let has_context: i64 = tx.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'context'",
        [],
        |r| r.get(0),
    )?;
    if has_context == 0 {
        tx.execute_batch("ALTER TABLE sessions ADD COLUMN context TEXT NOT NULL DEFAULT '{}'")?;
    }
    tx.commit()
}
