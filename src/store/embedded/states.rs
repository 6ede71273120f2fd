//! Login states in the embedded store: one row each, taken with `DELETE … RETURNING` (single
//! use, atomic), expired ones dropped by the periodic purge.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{read_err, unavailable, CachedStatements, EmbeddedStore};
use crate::store::{LoginState, LoginStates, StepUpRequest, StoreError};

#[async_trait]
impl LoginStates for EmbeddedStore {
    async fn put_state(&self, s: &LoginState) -> Result<(), StoreError> {
        let s = s.clone();
        let step_up = s
            .step_up
            .to_json()
            .map_err(|e| StoreError::corrupt("embedded store", e))?;
        self.run_short(move |c| {
            c.execute_cached(
                "INSERT INTO login_states (state, app_id, provider_id, redirect, client_state,
                 pkce_verifier, nonce, binding_hash, expires_at, step_up)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    s.state,
                    s.app_id,
                    s.provider_id,
                    s.redirect,
                    s.client_state,
                    s.pkce_verifier,
                    s.nonce,
                    s.binding_hash,
                    s.expires_at,
                    step_up
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn purge_expired_states(&self) -> Result<usize, StoreError> {
        self.run(|c| {
            c.execute_cached(
                "DELETE FROM login_states WHERE expires_at < ?1",
                [crate::now_secs()],
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn take_state(&self, state: &str) -> Result<Option<LoginState>, StoreError> {
        let state = state.to_owned();
        self.run_short(move |c| {
            c.query_row_cached(
                "DELETE FROM login_states WHERE state = ?1 RETURNING *",
                [&state],
                |row| {
                    let step_up: Option<String> = row.get("step_up")?;
                    let state = LoginState {
                        state: row.get("state")?,
                        app_id: row.get("app_id")?,
                        provider_id: row.get("provider_id")?,
                        redirect: row.get("redirect")?,
                        client_state: row.get("client_state")?,
                        pkce_verifier: row.get("pkce_verifier")?,
                        nonce: row.get("nonce")?,
                        binding_hash: row.get("binding_hash")?,
                        expires_at: row.get("expires_at")?,
                        step_up: StepUpRequest::default(),
                    };
                    Ok((state, step_up))
                },
            )
            .optional()
            .map_err(read_err)
        })
        .await?
        .map(|(mut state, step_up)| {
            state.step_up = StepUpRequest::from_json(step_up.as_deref())
                .map_err(|e| StoreError::corrupt("embedded store", e))?;
            Ok(state)
        })
        .transpose()
    }
}
