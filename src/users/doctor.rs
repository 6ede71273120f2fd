//! `idgate users doctor`: what an existing users collection holds that logins would trip over,
//! and the merge of duplicate records, for every users store that can list its records.
//!
//! It reports:
//! - **duplicates**: identities (realm, providerId, providerUserId) held by several `PUBLIC`
//!   records, each with the record logins use (the store's own choice, asked through
//!   [`Users::find_by_identity`], so the report and the logins cannot disagree: the rule is
//!   [`crate::store::DUPLICATE_RULE`]);
//! - **incomplete**: `PUBLIC` records that cannot be read as users (an identity field missing,
//!   a field of the wrong type): a login of theirs fails;
//! - **inactive**: identities held only by records outside `PUBLIC` (trashed, draft): their
//!   next login is refused or re-created, as `inactive_users` says.
//!
//! The merge (`--merge`) keeps the chosen record and gives it the **union** of the groups and
//! of the permissions of all the duplicates (the chosen record's own first, in their order;
//! nobody loses access they had through any record); its `name`, `email`, `username` and
//! `metadata` stay as they are (the IdP fields are refreshed at the next login anyway). Every
//! other duplicate is **moved to `TRASH`**, never deleted: the console can still read and
//! restore it, and copy anything from its `metadata`. Their sessions, if idgate holds any, are
//! revoked, since their tokens name a record that is no longer active.

use serde::Serialize;

use crate::store::{Sessions, StoreError, UserRecord, Users};

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("this users store ({0}) cannot list its records, so it cannot be examined")]
    Unsupported(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the store chose no active record among the {count} of realm `{realm}`, provider \
         `{provider}`, subject `{subject}` (the collection changed meanwhile?); run the doctor again"
    )]
    NoChoice {
        realm: String,
        provider: String,
        subject: String,
        count: usize,
    },
}

/// Several `PUBLIC` records of one identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Duplicate {
    pub realm: String,
    pub provider_id: String,
    pub provider_user_id: String,
    /// The record logins use, which a merge keeps.
    pub keep: String,
    /// The others, which a merge moves to TRASH.
    pub others: Vec<String>,
    /// What the kept record's groups become with a merge.
    pub groups: Vec<String>,
    /// What the kept record's permissions become with a merge.
    pub permissions: Vec<String>,
}

/// A `PUBLIC` record that cannot log in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Incomplete {
    pub user_id: String,
    pub problem: String,
}

/// An identity held only outside `PUBLIC`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inactive {
    pub realm: String,
    pub provider_id: String,
    pub provider_user_id: String,
    /// `(user id, state)` of each record.
    pub records: Vec<(String, String)>,
}

/// What the doctor saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Records read, in every state.
    pub scanned: usize,
    /// How the record logins use is chosen among duplicates.
    pub rule: &'static str,
    pub duplicates: Vec<Duplicate>,
    pub incomplete: Vec<Incomplete>,
    pub inactive: Vec<Inactive>,
}

impl Report {
    /// Whether anything would make a login fail or land on an arbitrary record.
    pub fn is_clean(&self) -> bool {
        self.duplicates.is_empty() && self.incomplete.is_empty()
    }
}

/// What a merge did to one duplicate identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Merged {
    pub keep: String,
    /// The records moved to TRASH.
    pub retired: Vec<String>,
    /// Sessions of the retired records that were revoked.
    pub sessions_revoked: usize,
}

type Key = (String, String, String);

fn key_of(r: &UserRecord) -> Option<Key> {
    Some((
        r.realm.clone()?,
        r.provider_id.clone()?,
        r.provider_user_id.clone()?,
    ))
}

/// Appends the items of `more` that `into` lacks, keeping their order.
fn union_into(into: &mut Vec<String>, more: &[String]) {
    for item in more {
        if !into.contains(item) {
            into.push(item.clone());
        }
    }
}

/// Reads every record of `users` and reports; `store` names it in errors.
pub async fn examine(users: &dyn Users, store: &'static str) -> Result<Report, DoctorError> {
    let records = users
        .scan_records()
        .await?
        .ok_or(DoctorError::Unsupported(store))?;
    let scanned = records.len();
    // Identity → its records, in the store's order (oldest first), grouped without sorting
    // the identities themselves: the first seen comes first in the report.
    let mut active: Vec<(Key, Vec<UserRecord>)> = Vec::new();
    let mut hidden: Vec<(Key, Vec<UserRecord>)> = Vec::new();
    let mut incomplete = Vec::new();
    for record in records {
        let public = record.state == "PUBLIC";
        if public {
            if let Some(problem) = &record.problem {
                incomplete.push(Incomplete {
                    user_id: record.user_id.clone(),
                    problem: problem.clone(),
                });
            }
        }
        let Some(key) = key_of(&record) else {
            continue;
        };
        let groups = if public { &mut active } else { &mut hidden };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(record),
            None => groups.push((key, vec![record])),
        }
    }
    let mut duplicates = Vec::new();
    for ((realm, provider_id, provider_user_id), list) in &active {
        if list.len() < 2 {
            continue;
        }
        let chosen = users
            .find_by_identity(realm, provider_id, provider_user_id)
            .await?
            .map(|u| u.user_id)
            .filter(|id| list.iter().any(|r| &r.user_id == id))
            .ok_or_else(|| DoctorError::NoChoice {
                realm: realm.clone(),
                provider: provider_id.clone(),
                subject: provider_user_id.clone(),
                count: list.len(),
            })?;
        let mut groups = Vec::new();
        let mut permissions = Vec::new();
        let kept = list.iter().filter(|r| r.user_id == chosen);
        let rest = list.iter().filter(|r| r.user_id != chosen);
        for r in kept.chain(rest) {
            union_into(&mut groups, &r.groups);
            union_into(&mut permissions, &r.permissions);
        }
        duplicates.push(Duplicate {
            realm: realm.clone(),
            provider_id: provider_id.clone(),
            provider_user_id: provider_user_id.clone(),
            others: list
                .iter()
                .filter(|r| r.user_id != chosen)
                .map(|r| r.user_id.clone())
                .collect(),
            keep: chosen,
            groups,
            permissions,
        });
    }
    let inactive = hidden
        .into_iter()
        .filter(|(key, _)| !active.iter().any(|(k, _)| k == key))
        .map(|((realm, provider_id, provider_user_id), list)| Inactive {
            realm,
            provider_id,
            provider_user_id,
            records: list.into_iter().map(|r| (r.user_id, r.state)).collect(),
        })
        .collect();
    Ok(Report {
        scanned,
        rule: crate::store::DUPLICATE_RULE,
        duplicates,
        incomplete,
        inactive,
    })
}

/// Merges every duplicate of `report` (see the module doc for what is kept); `sessions` loses
/// the sessions of the retired records.
pub async fn merge(
    users: &dyn Users,
    sessions: &dyn Sessions,
    report: &Report,
) -> Result<Vec<Merged>, DoctorError> {
    let mut done = Vec::new();
    for dup in &report.duplicates {
        // Groups first: if a step fails midway, the person has at least the access of every
        // record on the kept one before any record leaves PUBLIC.
        if !users
            .merge_into(&dup.keep, &dup.groups, &dup.permissions)
            .await?
        {
            return Err(DoctorError::NoChoice {
                realm: dup.realm.clone(),
                provider: dup.provider_id.clone(),
                subject: dup.provider_user_id.clone(),
                count: dup.others.len() + 1,
            });
        }
        let mut retired = Vec::new();
        let mut sessions_revoked = 0;
        for other in &dup.others {
            if users.retire_user(other).await? {
                retired.push(other.clone());
            }
            sessions_revoked += sessions.revoke_user_sessions(other).await?.len();
        }
        tracing::info!(keep = %dup.keep, retired = ?retired, sessions_revoked,
            "merged duplicate user records");
        done.push(Merged {
            keep: dup.keep.clone(),
            retired,
            sessions_revoked,
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_keeps_the_first_order_and_drops_repeats() {
        let mut groups = vec!["admins".to_string(), "users".to_string()];
        union_into(&mut groups, &["users".into(), "auditors".into()]);
        assert_eq!(groups, vec!["admins", "users", "auditors"]);
    }
}
