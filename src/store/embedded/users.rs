//! Users in the embedded store: one row per identity (a unique constraint, so never a
//! duplicate), groups, permissions and metadata as JSON text. There are no record states: every
//! user is active, and the doctor finds nothing to merge.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use super::{read_err, to_json, unavailable, CachedStatements, EmbeddedStore};
use crate::store::{Identity, Sessions, StoreError, User, UserRecord, Users};

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, col: &str) -> rusqlite::Result<T> {
        let text: String = row.get(col)?;
        serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    }
    Ok(User {
        user_id: row.get("user_id")?,
        realm: row.get("realm")?,
        provider_id: row.get("provider_id")?,
        provider_user_id: row.get("provider_user_id")?,
        name: row.get("name")?,
        email: row.get("email")?,
        username: row.get("username")?,
        groups: json(row, "groups")?,
        permissions: json(row, "permissions")?,
        metadata: json(row, "metadata")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

#[async_trait]
impl Users for EmbeddedStore {
    async fn upsert_login(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<User, StoreError> {
        let id = id.clone();
        let groups = to_json(&default_groups);
        self.run_short(move |c| {
            let now = crate::now_secs();
            c.query_row_cached(
                "INSERT INTO users (user_id, realm, provider_id, provider_user_id, name, email,
                 username, groups, permissions, metadata, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '[]', '{}', ?9, ?9)
                 ON CONFLICT (realm, provider_id, provider_user_id) DO UPDATE SET
                   name = excluded.name, email = excluded.email, username = excluded.username,
                   updated_at = excluded.updated_at
                 RETURNING *",
                params![
                    uuid::Uuid::new_v4().simple().to_string(),
                    id.realm,
                    id.provider_id,
                    id.provider_user_id,
                    id.name,
                    id.email,
                    id.username,
                    groups,
                    now
                ],
                user_from_row,
            )
            .map_err(read_err)
        })
        .await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let user_id = user_id.to_owned();
        self.run(move |c| {
            c.query_row_cached(
                "SELECT * FROM users WHERE user_id = ?1",
                [&user_id],
                user_from_row,
            )
            .optional()
            .map_err(read_err)
        })
        .await
    }

    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let key = (
            realm.to_owned(),
            provider_id.to_owned(),
            provider_user_id.to_owned(),
        );
        self.run(move |c| {
            c.query_row_cached("SELECT * FROM users WHERE realm = ?1 AND provider_id = ?2 AND provider_user_id = ?3", params![key.0, key.1, key.2],
                user_from_row)
            .optional()
            .map_err(read_err)
        })
        .await
    }

    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        // This store has no record states: every user is active.
        Ok(self
            .find_by_identity(realm, provider_id, provider_user_id)
            .await?
            .map(|u| u.user_id)
            .into_iter()
            .collect())
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.run(|c| {
            let mut stmt = c
                .prepare_cached("SELECT * FROM users ORDER BY created_at, user_id")
                .map_err(unavailable)?;
            let rows = stmt.query_map([], user_from_row).map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(read_err)
        })
        .await
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        let groups = to_json(&groups);
        self.run(move |c| {
            let n = c
                .execute_cached(
                    "UPDATE users SET groups = ?1, updated_at = ?2 WHERE user_id = ?3",
                    params![groups, crate::now_secs(), user_id],
                )
                .map_err(unavailable)?;
            Ok(n > 0)
        })
        .await
    }

    async fn ping_users(&self) -> Result<(), StoreError> {
        Sessions::ping_sessions(self).await
    }

    /// Every user: this store has no states (all are `PUBLIC`), and its unique constraint
    /// keeps one record per identity, so the doctor never finds duplicates here.
    async fn scan_records(&self) -> Result<Option<Vec<UserRecord>>, StoreError> {
        let users = self.list_users().await?;
        Ok(Some(
            users
                .into_iter()
                .map(|u| UserRecord {
                    user_id: u.user_id,
                    state: "PUBLIC".into(),
                    realm: Some(u.realm),
                    provider_id: Some(u.provider_id),
                    provider_user_id: Some(u.provider_user_id),
                    groups: u.groups,
                    permissions: u.permissions,
                    problem: None,
                })
                .collect(),
        ))
    }
}
