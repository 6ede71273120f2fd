//! How every store reports a failure: which store, and what went wrong.

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or answered with an error; `store` names it.
    #[error("{store} is unavailable: {message}")]
    Unavailable {
        store: &'static str,
        message: String,
    },
    #[error("{store} holds a record it cannot read: {message}")]
    Corrupt {
        store: &'static str,
        message: String,
    },
    /// The store holds the user, but not as an active one (e.g. MongoDB `__STATE__` other than
    /// `PUBLIC`): the login is refused, not answered with a second user.
    #[error("{store} refused the login: {message}")]
    Refused {
        store: &'static str,
        message: String,
    },
}

impl StoreError {
    /// `store` could not be reached, or answered with an error: how every store says so.
    pub(crate) fn unavailable(store: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            store,
            message: message.to_string(),
        }
    }

    /// `store` holds a record that does not read as what it should be.
    pub(crate) fn corrupt(store: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            store,
            message: message.to_string(),
        }
    }

    /// Which store failed, for messages that must not carry more (response bodies).
    pub fn store(&self) -> &'static str {
        match self {
            Self::Unavailable { store, .. }
            | Self::Corrupt { store, .. }
            | Self::Refused { store, .. } => store,
        }
    }

    /// The same error, its store named by its role as well (`users store (mongodb)`): what a
    /// person refused at login, or an operator reading `/-/ready`, needs to know is down.
    pub fn of_users_store(self) -> Self {
        fn role(store: &'static str) -> &'static str {
            match store {
                "mongodb" => "users store (mongodb)",
                "crud service" => "users store (crud service)",
                "embedded store" => "users store (embedded)",
                other => other,
            }
        }
        match self {
            Self::Unavailable { store, message } => Self::Unavailable {
                store: role(store),
                message,
            },
            Self::Corrupt { store, message } => Self::Corrupt {
                store: role(store),
                message,
            },
            Self::Refused { store, message } => Self::Refused {
                store: role(store),
                message,
            },
        }
    }
}
