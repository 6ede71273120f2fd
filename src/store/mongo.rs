//! MongoDB: the project's users collection (`users.rs`, its unique identity index in
//! `index.rs`) and the durable copy of sessions kept beside Redis (`sessions.rs`). What they
//! share lives here: a client with short timeouts that connects lazily, and the `Redactor`
//! every message goes through, so errors never carry the URI (it may hold a password).

mod index;
mod sessions;
mod users;

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::Client;

use super::{Sessions, StoreError, Users};
use crate::config::MongoConfig;

pub(crate) const STORE: &str = "mongodb";

/// Server selection and connect timeout: a MongoDB that is down answers within this, so a
/// login or `/-/ready` fails fast with a 503 instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The users collection.
pub async fn open_users(cfg: &MongoConfig) -> Result<Arc<dyn Users>, StoreError> {
    let (client, redactor) = connect(cfg).await?;
    let store = users::MongoUsers::new(
        client
            .database(&cfg.database)
            .collection::<Document>(&cfg.collection),
        redactor,
        cfg,
    );
    store.ensure_index_logged().await;
    Ok(Arc::new(store))
}

/// `primary` (Redis) with every session also written to MongoDB, and restored from it on a miss.
pub async fn mirror_sessions(
    primary: Arc<dyn Sessions>,
    cfg: &MongoConfig,
) -> Result<Arc<dyn Sessions>, StoreError> {
    let (client, redactor) = connect(cfg).await?;
    let mirror = sessions::MirroredSessions::new(
        primary,
        client
            .database(&cfg.database)
            .collection::<Document>(&cfg.sessions_collection),
        redactor,
    );
    mirror.ensure_indexes_logged().await;
    Ok(Arc::new(mirror))
}

/// A client for `cfg.uri`, with short timeouts. Connects lazily: a MongoDB that is down does not
/// fail this.
async fn connect(cfg: &MongoConfig) -> Result<(Client, Redactor), StoreError> {
    let redactor = Redactor::for_uri(cfg.uri.expose());
    let mut options = ClientOptions::parse(cfg.uri.expose())
        .await
        .map_err(|e| redactor.unavailable(format!("users.uri: {e}")))?;
    options.server_selection_timeout = Some(TIMEOUT);
    options.connect_timeout = Some(TIMEOUT);
    options.app_name.get_or_insert_with(|| "idgate".into());
    let client = Client::with_options(options).map_err(|e| redactor.unavailable(e))?;
    Ok((client, redactor))
}

/// Removes the URI and its password from error messages.
#[derive(Clone)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn for_uri(uri: &str) -> Self {
        let mut secrets = vec![uri.to_owned()];
        // mongodb://user:password@host…: the password alone may appear too.
        if let Some(rest) = uri.split_once("://").map(|(_, r)| r) {
            if let Some((userinfo, _)) = rest.split_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    if !password.is_empty() {
                        secrets.push(password.to_owned());
                        if let Ok(decoded) = percent_encoding::percent_decode_str(password)
                            .decode_utf8()
                            .map(|s| s.into_owned())
                        {
                            secrets.push(decoded);
                        }
                    }
                }
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub(crate) fn clean(&self, message: impl std::fmt::Display) -> String {
        let mut message = message.to_string();
        for secret in &self.secrets {
            message = message.replace(secret.as_str(), "***");
        }
        message
    }

    pub(crate) fn unavailable(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::unavailable(STORE, self.clean(e))
    }
}

/// The server's error code, when the error is a command or write error.
pub(crate) fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        _ => None,
    }
}

/// Seconds since the epoch → BSON date.
pub(crate) fn date(secs: i64) -> DateTime {
    DateTime::from_millis(secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_and_its_password_never_reach_a_message() {
        let r = Redactor::for_uri("mongodb://idgate:s%3Acret@db.example:27017/app");
        let msg = r.clean("failed mongodb://idgate:s%3Acret@db.example:27017/app: s:cret s%3Acret");
        assert!(!msg.contains("cret"), "{msg}");
    }
}
