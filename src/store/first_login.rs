//! The login rule of a users collection whose records have states and which may lack a unique
//! index on the identity (MongoDB and the CRUD service: Mia's authentication service keeps
//! none, so such collections exist with duplicates): which record a login uses, when it
//! creates one, and what it does when it loses a race. The stores say how to read and write
//! their collection ([`LoginCollection`]); the rule is [`upsert_login`], once.
//!
//! A login looks for the identity's `PUBLIC` records, oldest first by
//! [`super::DUPLICATE_RULE`], and refreshes the first: a collection holding several records for
//! one person still logs that person in, always into the same record, and the identity is
//! logged once ([`DuplicateNotes`]). With no `PUBLIC` record, it inserts one, atomically (an
//! upsert filtered on the identity and `PUBLIC`), unless a record out of `PUBLIC` (TRASH,
//! DRAFT, DELETED in the console) holds the identity and `inactive_users = "refuse"`: that
//! login is refused rather than answered with a fresh record with the default groups, which
//! would silently undo a ban.
//!
//! Two simultaneous first logins of one person: with a unique index on the identity (for
//! `PUBLIC` records), the loser's insert is refused and it tries again, finding the winner's
//! record. The winner's insert may not be visible to the loser at once (seen with secantusdb),
//! hence a few short rounds. An older unique index that ignores `__STATE__` refuses
//! re-creating a user whose record is hidden: that login is refused with a message naming it.

use std::time::Duration;

use async_trait::async_trait;

use super::{DuplicateNotes, Identity, StoreError, User};
use crate::config::InactiveUsers;

/// Attempts of a login that lost a first-login race.
const RACE_ROUNDS: u32 = 5;

/// What the rule needs of a users collection.
#[async_trait]
pub(crate) trait LoginCollection: Send + Sync {
    /// A record as the store reads it, handed back to [`LoginCollection::refresh`].
    type Record: Send;

    /// The store's name, for errors and logs.
    fn store(&self) -> &'static str;

    /// The identity's `PUBLIC` records, oldest first by the duplicate rule, with their user
    /// ids: at most two, enough to tell whether there are duplicates.
    async fn active_holders(
        &self,
        id: &Identity,
    ) -> Result<Vec<(String, Self::Record)>, StoreError>;

    /// Refreshes what the IdP owns in the record `user_id` if it is still `PUBLIC`; `None`
    /// when it is not (a console edit got in between).
    async fn refresh(
        &self,
        id: &Identity,
        user_id: &str,
        record: Self::Record,
    ) -> Result<Option<User>, StoreError>;

    /// A record holding the identity outside `PUBLIC`, if any: its user id and state.
    async fn hidden_holder(&self, id: &Identity) -> Result<Option<(String, String)>, StoreError>;

    /// Inserts a `PUBLIC` record for the identity with the project's defaults, in one atomic
    /// step that finds, rather than duplicates, a record inserted meanwhile.
    async fn insert(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<Inserted, StoreError>;
}

/// What [`LoginCollection::insert`] did.
pub(crate) enum Inserted {
    /// The record, inserted or found (boxed: it is large, `Taken` is nothing).
    User(Box<User>),
    /// The collection refused a record for the identity (a unique index): another login
    /// inserted first, or an index ignoring `__STATE__` blocks re-creating a hidden user.
    Taken,
}

/// Finds the identity's user or creates it with `default_groups`, by the rule of the module
/// doc; `inactive` is `inactive_users` of the config.
pub(crate) async fn upsert_login<C: LoginCollection + ?Sized>(
    collection: &C,
    inactive: InactiveUsers,
    notes: &DuplicateNotes,
    id: &Identity,
    default_groups: &[String],
) -> Result<User, StoreError> {
    let store = collection.store();
    // Each round: the active record if there is one, else an insert. A round ends without an
    // answer when a concurrent login or console edit got in between; the next sees it.
    for round in 0..RACE_ROUNDS {
        let mut holders = collection.active_holders(id).await?;
        if !holders.is_empty() {
            let (user_id, record) = holders.swap_remove(0);
            if !holders.is_empty() {
                notes.note(store, id, &user_id);
            }
            if let Some(user) = collection.refresh(id, &user_id, record).await? {
                return Ok(user);
            }
        } else {
            let hidden = collection.hidden_holder(id).await?;
            if let (Some((user_id, state)), InactiveUsers::Refuse) = (&hidden, inactive) {
                return Err(not_public(store, id, user_id, state));
            }
            match collection.insert(id, default_groups).await? {
                Inserted::User(user) => return Ok(*user),
                Inserted::Taken => {
                    if let Some((user_id, _)) = hidden {
                        if collection.active_holders(id).await?.is_empty() {
                            return Err(recreate_blocked(store, id, &user_id));
                        }
                    }
                    tracing::debug!(store, realm = %id.realm, provider = %id.provider_id,
                        "identity taken meanwhile; retrying");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10 << round)).await;
    }
    Err(StoreError::unavailable(
        store,
        "two logins of the same user collided and the winner's record never became visible; \
         retry the login",
    ))
}

/// The refusal of a login whose record exists but is not `PUBLIC`.
fn not_public(store: &'static str, id: &Identity, user_id: &str, state: &str) -> StoreError {
    StoreError::Refused {
        store,
        message: format!(
            "user {user_id} (realm `{}`, provider `{}`, subject `{}`) is in state {state}, not \
             PUBLIC: the login is refused rather than creating a second document; restore the \
             user to PUBLIC (or delete the document) in the users collection",
            id.realm, id.provider_id, id.provider_user_id
        ),
    }
}

/// The refusal of a re-creation (`inactive_users = "recreate"`) the collection does not allow.
fn recreate_blocked(store: &'static str, id: &Identity, user_id: &str) -> StoreError {
    StoreError::Refused {
        store,
        message: format!(
            "user {user_id} (realm `{}`, provider `{}`, subject `{}`) is not PUBLIC, and the \
             collection refuses a new record for the identity (a unique index on it that \
             ignores __STATE__), so inactive_users = \"recreate\" cannot apply; replace that \
             index with a partial one (PUBLIC records only) or restore the user",
            id.realm, id.provider_id, id.provider_user_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    /// A collection whose answers are scripted call by call; it records the calls.
    #[derive(Default)]
    struct Scripted {
        /// The user ids each `active_holders` call finds, in turn (none once used up).
        holders: Mutex<VecDeque<Vec<&'static str>>>,
        hidden: Option<(&'static str, &'static str)>,
        /// Whether each `insert` succeeds (else `Taken`), in turn (`Taken` once used up).
        inserts: Mutex<VecDeque<bool>>,
        /// Whether each `refresh` finds its record still `PUBLIC`, in turn (yes once used up).
        refreshes: Mutex<VecDeque<bool>>,
        calls: Mutex<Vec<String>>,
    }

    fn user(user_id: &str) -> User {
        User {
            user_id: user_id.into(),
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: "alice".into(),
            name: None,
            email: None,
            username: None,
            groups: vec![],
            permissions: vec![],
            metadata: serde_json::json!({}),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn identity() -> Identity {
        Identity {
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: "alice".into(),
            name: None,
            email: None,
            username: None,
        }
    }

    impl Scripted {
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        async fn login(&self, inactive: InactiveUsers) -> Result<User, StoreError> {
            let notes = DuplicateNotes::default();
            upsert_login(self, inactive, &notes, &identity(), &[]).await
        }
    }

    #[async_trait]
    impl LoginCollection for Scripted {
        type Record = ();

        fn store(&self) -> &'static str {
            "scripted"
        }

        async fn active_holders(&self, _: &Identity) -> Result<Vec<(String, ())>, StoreError> {
            let found = self.holders.lock().unwrap().pop_front().unwrap_or_default();
            self.log(format!("holders {found:?}"));
            Ok(found.into_iter().map(|id| (id.to_owned(), ())).collect())
        }

        async fn refresh(&self, _: &Identity, id: &str, _: ()) -> Result<Option<User>, StoreError> {
            self.log(format!("refresh {id}"));
            let public = self.refreshes.lock().unwrap().pop_front().unwrap_or(true);
            Ok(public.then(|| user(id)))
        }

        async fn hidden_holder(
            &self,
            _: &Identity,
        ) -> Result<Option<(String, String)>, StoreError> {
            self.log("hidden".into());
            Ok(self.hidden.map(|(id, state)| (id.into(), state.into())))
        }

        async fn insert(&self, _: &Identity, _: &[String]) -> Result<Inserted, StoreError> {
            self.log("insert".into());
            let created = self.inserts.lock().unwrap().pop_front().unwrap_or(false);
            Ok(if created {
                Inserted::User(Box::new(user("new")))
            } else {
                Inserted::Taken
            })
        }
    }

    fn script(holders: Vec<Vec<&'static str>>, inserts: Vec<bool>) -> Scripted {
        Scripted {
            holders: Mutex::new(holders.into()),
            inserts: Mutex::new(inserts.into()),
            ..Scripted::default()
        }
    }

    #[tokio::test]
    async fn the_first_of_several_records_is_used() {
        let c = script(vec![vec!["oldest", "newer"]], vec![]);
        assert_eq!(
            c.login(InactiveUsers::Refuse).await.unwrap().user_id,
            "oldest"
        );
        assert_eq!(
            c.calls(),
            ["holders [\"oldest\", \"newer\"]", "refresh oldest"]
        );
    }

    #[tokio::test]
    async fn a_lost_race_is_retried_until_the_winner_shows() {
        // Taken, and the winner not visible yet; then it is.
        let c = script(vec![vec![], vec![], vec!["winner"]], vec![false, false]);
        assert_eq!(
            c.login(InactiveUsers::Refuse).await.unwrap().user_id,
            "winner"
        );
        let inserts = c.calls().iter().filter(|c| *c == "insert").count();
        assert_eq!(inserts, 2);
    }

    #[tokio::test]
    async fn a_record_leaving_public_meanwhile_sends_the_login_round_again() {
        let c = script(vec![vec!["gone"]], vec![true]);
        c.refreshes.lock().unwrap().push_back(false);
        assert_eq!(c.login(InactiveUsers::Refuse).await.unwrap().user_id, "new");
    }

    #[tokio::test]
    async fn a_hidden_record_refuses_the_login_or_is_recreated() {
        let hidden = Some(("u9", "TRASH"));
        let c = Scripted {
            hidden,
            ..script(vec![], vec![true])
        };
        let err = c.login(InactiveUsers::Refuse).await.unwrap_err();
        assert!(matches!(
            err,
            StoreError::Refused {
                store: "scripted",
                ..
            }
        ));
        assert!(err.to_string().contains("u9") && err.to_string().contains("TRASH"));
        assert!(
            !c.calls().contains(&"insert".to_string()),
            "nothing written"
        );
        assert_eq!(
            c.login(InactiveUsers::Recreate).await.unwrap().user_id,
            "new"
        );
        // An index ignoring the state refuses the new record: refused, naming the index.
        let blocked = Scripted {
            hidden,
            ..script(vec![], vec![false])
        };
        let err = blocked.login(InactiveUsers::Recreate).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");
        assert!(err.to_string().contains("unique index"), "{err}");
    }

    #[tokio::test]
    async fn a_race_never_resolved_gives_up_as_unavailable() {
        let c = script(vec![], vec![]);
        let err = c.login(InactiveUsers::Refuse).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Unavailable {
                    store: "scripted",
                    ..
                }
            ),
            "{err:?}"
        );
        let inserts = c.calls().iter().filter(|c| *c == "insert").count();
        assert_eq!(inserts, RACE_ROUNDS as usize);
    }
}
