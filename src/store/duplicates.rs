//! Identities held by several active (`PUBLIC`) records of a users collection: which one a
//! login uses, and the warning that says so once. MongoDB and the CRUD service apply the same
//! rule (the embedded store's unique index makes duplicates impossible); `idgate users doctor`
//! lists and merges them.

use std::collections::HashSet;
use std::sync::Mutex;

use super::Identity;

/// The rule that picks one record among several `PUBLIC` ones of an identity, in words (for
/// logs and the doctor's report).
pub const DUPLICATE_RULE: &str =
    "the oldest by createdAt (none counts as oldest), then the smallest _id";

/// Most identities [`DuplicateNotes`] remembers; past it, it starts over (an identity may then
/// be logged a second time, never on every login).
const NOTES_LIMIT: usize = 10_000;

/// Remembers which identities with duplicate records were already logged, so each is logged
/// once per process instead of on every login. A std mutex: held for one set operation, never
/// across an `.await`.
#[derive(Debug, Default)]
pub struct DuplicateNotes {
    seen: Mutex<HashSet<(String, String, String)>>,
}

impl DuplicateNotes {
    /// Logs (once per identity) that `chosen` was picked among several records of `id`.
    pub fn note(&self, store: &'static str, id: &Identity, chosen: &str) {
        let key = (
            id.realm.clone(),
            id.provider_id.clone(),
            id.provider_user_id.clone(),
        );
        let first = match self.seen.lock() {
            Ok(mut seen) => {
                if seen.len() >= NOTES_LIMIT {
                    seen.clear();
                }
                seen.insert(key)
            }
            // A panic elsewhere poisoned it: logging again is harmless.
            Err(_) => true,
        };
        if first {
            tracing::warn!(
                store,
                realm = %id.realm,
                provider = %id.provider_id,
                subject = %id.provider_user_id,
                user_id = %chosen,
                rule = DUPLICATE_RULE,
                "several active records hold this identity; logins use one of them (run \
                 `idgate users doctor` to list and merge them)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_noted_once_per_identity() {
        let notes = DuplicateNotes::default();
        let id = Identity {
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: "alice".into(),
            name: None,
            email: None,
            username: None,
        };
        notes.note("test", &id, "u1");
        notes.note("test", &id, "u1");
        assert_eq!(notes.seen.lock().unwrap().len(), 1);
    }
}
