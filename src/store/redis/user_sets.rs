//! Each user's sorted set of live session ids, `{scope}:user:{uid}:sessions` (Mia's "user
//! queues"): what the per-user cap counts, what revoking a user's sessions goes through, and
//! what the purge of expired sessions cleans. A session leaves its user's set when revoked, so
//! the set holds live sessions only, plus, for a while, members whose session expired (their
//! keys go by themselves, the members do not), pruned by the cap check and the purge.

use super::backend::Conn;
use super::scripts::ADD_TO_USER;
use super::sessions::decode_head;
use super::{escape_glob, unavailable, RedisStore};
use crate::store::{SessionRecord, StoreError};

impl RedisStore {
    /// The members of the set `key`, oldest first.
    pub(super) async fn members(
        &self,
        conn: &mut Conn,
        key: &str,
    ) -> Result<Vec<String>, StoreError> {
        redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(conn)
            .await
            .map_err(unavailable)
    }

    /// Drops `sid` from the set `key`; how many members went (0 or 1).
    pub(super) async fn forget_member(
        &self,
        conn: &mut Conn,
        key: &str,
        sid: &str,
    ) -> Result<usize, StoreError> {
        redis::cmd("ZREM")
            .arg(key)
            .arg(sid)
            .query_async(conn)
            .await
            .map_err(unavailable)
    }

    /// Adds the session `s`, just stored, to its user's set, then revokes the oldest live
    /// sessions beyond `max_per_user` (never `s`) and returns them: the set is read in
    /// creation order (the script gives each member a strictly increasing score, so sessions
    /// created in the same second keep their order) and dead members are pruned on the way.
    pub(super) async fn add_within_cap(
        &self,
        conn: &mut Conn,
        s: &SessionRecord,
        max_per_user: usize,
    ) -> Result<Vec<String>, StoreError> {
        let key = self.user_key(&s.user_id);
        let members: Vec<String> = ADD_TO_USER
            .key(&key)
            .arg(s.created_at)
            .arg(&s.sid)
            .arg(s.expires_at)
            .arg(crate::now_secs())
            .invoke_async(conn)
            .await
            .map_err(unavailable)?;
        if members.len() <= max_per_user {
            return Ok(Vec::new());
        }
        // Over the cap, perhaps only because of dead members: look at each. At most a few
        // more than the cap, and only on logins, so one read each is fine. Each read is the
        // member's head, as `/auth` reads it (its record and flag), never its IdP tokens:
        // kilobytes each, and whether they decode is no business of the cap.
        let now = crate::now_secs();
        let others: Vec<&String> = members.iter().filter(|m| **m != s.sid).collect();
        let mut live = Vec::new();
        for sid in others {
            let alive = match self.read_stored(conn, sid).await? {
                Some((record, revoked)) => decode_head(&record, revoked)?.is_alive(now),
                None => false,
            };
            if alive {
                live.push(sid.clone());
            } else {
                self.forget_member(conn, &key, sid).await?;
            }
        }
        let excess = (live.len() + 1).saturating_sub(max_per_user);
        let mut evicted = Vec::new();
        for sid in live.into_iter().take(excess) {
            if self.revoke_in(conn, &sid).await? {
                evicted.push(sid);
            }
        }
        Ok(evicted)
    }

    /// Revokes every session in the user's set; returns those this call revoked.
    pub(super) async fn revoke_members(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        self.bounded("revoking a user's sessions", async {
            let mut conn = self.backend.conn().await?;
            let key = self.user_key(user_id);
            let mut revoked = Vec::new();
            for sid in self.members(&mut conn, &key).await? {
                if self.revoke_in(&mut conn, &sid).await? {
                    revoked.push(sid);
                } else {
                    // Expired or already revoked: only its membership was left.
                    self.forget_member(&mut conn, &key, &sid).await?;
                }
            }
            Ok(revoked)
        })
        .await
    }

    /// Removes the members whose session key is gone from the set of `user_id`, or of every
    /// user; returns how many went. One user at a time and deliberately not atomically, as
    /// Mia does, so a long clean-up never blocks Redis.
    pub(super) async fn purge_sets(&self, user_id: Option<&str>) -> Result<usize, StoreError> {
        let user_keys = match user_id {
            Some(u) => vec![self.user_key(u)],
            None => {
                self.bounded("listing the users' session sets", async {
                    let mut conn = self.backend.conn().await?;
                    let pattern = format!("{}:user:*:sessions", escape_glob(&self.scope));
                    self.scan_keys(&mut conn, &pattern).await
                })
                .await?
            }
        };
        let mut removed = 0;
        for key in user_keys {
            removed += self
                .bounded("cleaning a user's session set", async {
                    let mut conn = self.backend.conn().await?;
                    let mut gone = 0;
                    for sid in self.members(&mut conn, &key).await? {
                        let exists: bool = redis::cmd("EXISTS")
                            .arg(self.session_key(&sid))
                            .query_async(&mut conn)
                            .await
                            .map_err(unavailable)?;
                        if !exists {
                            gone += self.forget_member(&mut conn, &key, &sid).await?;
                        }
                    }
                    Ok(gone)
                })
                .await?;
        }
        Ok(removed)
    }
}
