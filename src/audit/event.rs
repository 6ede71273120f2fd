//! One audit event and its JSON line.
//!
//! Every line has the same fields, `null` when not known: `time` (RFC 3339, UTC, milliseconds),
//! `event`, `user_id`, `app`, `provider`, `session_hash`, `client_addr`, `user_agent`,
//! `request_id`; and the fields of its kind of event:
//!
//! | `event` | its own fields |
//! |---|---|
//! | `login` | `outcome` (`success`, `failure`), `reason` (a failure's, see [`Event::login_failed`]) |
//! | `renewal`, `refresh`, `logout` | — |
//! | `revoke` | `by` (see [`RevokedBy`]) |
//! | `deny` | `reason` (`policy` for a route rule, else why `/auth` refused), `route` (the rule's id) |
//! | `step_up` | `outcome`, `reason`, `acr` |
//! | `rate_limited` | `bucket` (`address`, `binding`), `endpoint` (see `limits`; at most one a minute per bucket) |
//!
//! No field is free text a client or an identity provider chose, except the user agent
//! (printable ASCII, cut: see `http::client`): reasons are fixed words, so nothing else a
//! request carries — no e-mail, name, token or cookie — can land in the trail.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::http::client::ClientInfo;

/// One security event, as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When it happened (not when it was written).
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// What happened: `event` and its own fields.
    #[serde(flatten)]
    pub kind: Kind,
    /// idgate's id of the user (never their e-mail or name).
    pub user_id: Option<String>,
    /// The app (`[apps.<id>]`).
    pub app: Option<String>,
    /// The provider the session logged in through.
    pub provider: Option<String>,
    /// [`session_hash`] of the session's id.
    pub session_hash: Option<String>,
    /// The client's address (a trusted proxy's last `X-Forwarded-For` entry, else the peer).
    pub client_addr: Option<IpAddr>,
    /// The client's `User-Agent`, cut and cleaned.
    pub user_agent: Option<String>,
    /// The request id (Nginx's `$request_id` through the shipped snippets); `null` for the CLI.
    pub request_id: Option<String>,
}

/// What happened, with the fields of that kind of event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Kind {
    /// The end of a login (`POST /oauth/token`).
    Login {
        outcome: Outcome,
        reason: Option<&'static str>,
    },
    /// `/auth` renewed an expired session token (see `renewal`).
    Renewal,
    /// `POST /refreshtoken` gave a new pair (a repeat within the grace window included).
    Refresh,
    /// `/logout` ended a session.
    Logout,
    /// A session ended by someone other than its holder's logout.
    Revoke { by: RevokedBy },
    /// `/auth` answered 403.
    Deny {
        /// `policy` (a route rule refused the session) or the refusal's cause.
        reason: &'static str,
        /// The id of the route rule that refused, when known.
        route: Option<String>,
    },
    /// A login endpoint answered 429 (`[login_limits]`): the first refusal of a bucket in a
    /// minute, not each one (a flood does not flood the trail).
    RateLimited {
        /// `address` or `binding`.
        bucket: &'static str,
        /// The endpoint's path.
        endpoint: &'static str,
    },
    /// A step-up of a session's authentication.
    StepUp {
        outcome: Outcome,
        reason: Option<&'static str>,
        /// The authentication context reached (or asked for, for a failure).
        acr: Option<String>,
    },
}

/// How a login or a step-up ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedBy {
    /// The session's user, from their list of sessions.
    User,
    /// An administrator: `DELETE /sessions/{userId}` (with a client address) or
    /// `idgate sessions revoke` (without).
    Admin,
    /// The identity provider, by OIDC back-channel logout.
    Backchannel,
    /// idgate, because a used refresh token was presented again (a sign it was stolen).
    RefreshReuse,
    /// idgate, because the user is no longer active in the users store (deleted, or not
    /// `PUBLIC`): see `session::refresh`.
    UsersStore,
}

/// A session as the trail names it: its public handle ([`crate::crypto::session_handle`], a
/// hash), the `id` a user sees at `/me/sessions` and `idgate sessions list` prints beside the
/// session id. Enough to follow one session through the trail and to find it from either,
/// useless to anyone who wants to use the session.
pub fn session_hash(sid: &str) -> String {
    crate::crypto::session_handle(sid)
}

fn rfc3339<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*time))
}

impl Event {
    /// An event of `kind`, now, with nothing else known yet.
    pub fn new(kind: Kind) -> Self {
        Self {
            time: SystemTime::now(),
            kind,
            user_id: None,
            app: None,
            provider: None,
            session_hash: None,
            client_addr: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// A login that opened a session.
    pub fn login_ok() -> Self {
        Self::new(Kind::Login {
            outcome: Outcome::Success,
            reason: None,
        })
    }

    /// A login that failed, and why, in a fixed word: `invalid_request`, `invalid_state`,
    /// `binding_mismatch`, `idp_error`, `claims_refused`, `user_inactive`, `store_error`, …
    pub fn login_failed(reason: &'static str) -> Self {
        Self::new(Kind::Login {
            outcome: Outcome::Failure,
            reason: Some(reason),
        })
    }

    pub fn renewal() -> Self {
        Self::new(Kind::Renewal)
    }

    pub fn refresh() -> Self {
        Self::new(Kind::Refresh)
    }

    pub fn logout() -> Self {
        Self::new(Kind::Logout)
    }

    pub fn revoke(by: RevokedBy) -> Self {
        Self::new(Kind::Revoke { by })
    }

    /// A 403 from `/auth`: `reason` is `policy` when a route rule refused, `route` the rule's id.
    pub fn deny(reason: &'static str, route: Option<String>) -> Self {
        Self::new(Kind::Deny { reason, route })
    }

    /// A step-up that reached `acr` (`Outcome::Success`), or failed for `reason`.
    pub fn step_up(outcome: Outcome, reason: Option<&'static str>, acr: Option<String>) -> Self {
        Self::new(Kind::StepUp {
            outcome,
            reason,
            acr,
        })
    }

    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    pub fn app(mut self, app_id: &str) -> Self {
        self.app = Some(app_id.to_owned());
        self
    }

    /// The provider, unless empty (a session an administrator minted has none).
    pub fn provider(mut self, provider_id: &str) -> Self {
        self.provider = (!provider_id.is_empty()).then(|| provider_id.to_owned());
        self
    }

    /// The session, by its id: only its [`session_hash`] is kept.
    pub fn session(mut self, sid: &str) -> Self {
        self.session_hash = Some(session_hash(sid));
        self
    }

    /// Who sent the request.
    pub fn client(mut self, client: ClientInfo) -> Self {
        self.client_addr = client.addr;
        self.user_agent = client.user_agent;
        self.request_id = Some(client.request_id);
        self
    }

    /// Who sent the request, from its [`super::Origin`].
    pub fn from(self, origin: &super::Origin<'_>) -> Self {
        self.client(origin.client())
    }

    /// The JSON line, with its newline (`None` only if serde could not write it, which these
    /// types never make it do).
    pub fn to_line(&self) -> Option<Vec<u8>> {
        let mut line = serde_json::to_vec(self).ok()?;
        line.push(b'\n');
        Some(line)
    }
}
