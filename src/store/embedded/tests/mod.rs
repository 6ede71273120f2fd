//! Unit tests of what only the embedded store does, by concern: what it keeps and reads back
//! (`records`), the file and its log (`files`), and waiting for connections and locks without
//! holding a runtime worker (`waiting`). What every store does is the contract's
//! (`tests/store_contract`).

use super::*;
use crate::store::{SessionRecord, Sessions};

mod files;
mod records;
mod waiting;

/// A numeric pragma's value on the connection the store's writes go through.
async fn pragma(store: &EmbeddedStore, name: &'static str) -> i64 {
    store
        .run(move |c| {
            c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(unavailable)
        })
        .await
        .unwrap()
}

/// How SQLite would run `sql` on `c` (the detail column of `EXPLAIN QUERY PLAN`); parameters
/// left unbound.
fn query_plan(c: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    plan
}

/// `n` live sessions of distinct users, `{prefix}0` to `{prefix}{n-1}`, each with a few hundred
/// bytes of sealed tokens: enough pages for a checkpoint to show in the file's size.
fn many_sessions(prefix: &str, n: usize) -> Vec<SessionRecord> {
    let now = crate::now_secs();
    (0..n)
        .map(|i| SessionRecord {
            sid: format!("{prefix}{i}"),
            user_id: format!("u{i}"),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: now,
            expires_at: now + 600,
            refresh_hash: format!("h{i}"),
            idp_tokens: vec![7; 200],
            revoked: false,
            context: Default::default(),
        })
        .collect()
}
