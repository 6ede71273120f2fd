//! Login states in Redis: one string key each, `{scope}:state:{id}`, holding the state as JSON
//! with the state's TTL, and taken with `GETDEL` (single use, atomic in every mode).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{corrupt, unavailable, RedisStore};
use crate::store::{LoginState, LoginStates, StepUpRequest, StoreError};

/// A login state as stored (the id is in the key).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredState {
    app_id: String,
    provider_id: String,
    redirect: String,
    client_state: Option<String>,
    pkce_verifier: String,
    nonce: String,
    binding_hash: String,
    expires_at: i64,
    /// Absent in states stored before step-up existed, and when nothing more was asked.
    #[serde(default, skip_serializing_if = "StepUpRequest::is_empty")]
    step_up: StepUpRequest,
}

#[async_trait]
impl LoginStates for RedisStore {
    async fn spend(
        &self,
        key: &str,
        emission_ms: u64,
        tolerance_ms: u64,
    ) -> Result<Option<Result<(), u64>>, StoreError> {
        let wait: i64 = self
            .bounded("counting a login attempt", async {
                let mut conn = self.backend.conn().await?;
                super::scripts::SPEND
                    .key(format!("{}:limit:{key}", self.scope))
                    .arg(emission_ms)
                    .arg(tolerance_ms)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)
            })
            .await?;
        Ok(Some(if wait < 0 { Ok(()) } else { Err(wait as u64) }))
    }

    async fn put_state(&self, s: &LoginState) -> Result<(), StoreError> {
        let json = serde_json::to_string(&StoredState {
            app_id: s.app_id.clone(),
            provider_id: s.provider_id.clone(),
            redirect: s.redirect.clone(),
            client_state: s.client_state.clone(),
            pkce_verifier: s.pkce_verifier.clone(),
            nonce: s.nonce.clone(),
            binding_hash: s.binding_hash.clone(),
            expires_at: s.expires_at,
            step_up: s.step_up.clone(),
        })
        .map_err(|e| corrupt("login state", e))?;
        let ttl = (s.expires_at - crate::now_secs()).max(1);
        self.bounded("storing a login state", async {
            let mut conn = self.backend.conn().await?;
            redis::cmd("SET")
                .arg(self.state_key(&s.state))
                .arg(json)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    async fn take_state(&self, state: &str) -> Result<Option<LoginState>, StoreError> {
        let json: Option<String> = self
            .bounded("taking a login state", async {
                let mut conn = self.backend.conn().await?;
                redis::cmd("GETDEL")
                    .arg(self.state_key(state))
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)
            })
            .await?;
        let Some(json) = json else {
            return Ok(None);
        };
        let s: StoredState = serde_json::from_str(&json).map_err(|e| corrupt("login state", e))?;
        Ok(Some(LoginState {
            state: state.to_owned(),
            app_id: s.app_id,
            provider_id: s.provider_id,
            redirect: s.redirect,
            client_state: s.client_state,
            pkce_verifier: s.pkce_verifier,
            nonce: s.nonce,
            binding_hash: s.binding_hash,
            expires_at: s.expires_at,
            step_up: s.step_up,
        }))
    }
}
