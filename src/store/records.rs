//! The records the stores keep and hand back: a login in progress, a session (and the head
//! `/auth` reads of it), a user as the project owns it, and what the IdP says of one.

use serde::Serialize;

/// A login in progress, from `/authorize` to `/oauth/token`: single use, short-lived.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginState {
    pub state: String,
    pub app_id: String,
    pub provider_id: String,
    pub redirect: String,
    /// The `state` the client passed to `/authorize`, handed back untouched.
    pub client_state: Option<String>,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Hash of the `idgate_login` cookie of the browser that started the login.
    pub binding_hash: String,
    pub expires_at: i64,
    /// What the login asked the IdP for beyond a plain login (step-up), to check its answer.
    pub step_up: StepUpRequest,
}

/// What a login asks the identity provider for beyond a plain login, for a route that needs a
/// stronger or more recent authentication (step-up, RFC 9470; OIDC Core §3.1.2.1): the
/// `acr_values` (any of), a `max_age` in seconds, and `prompt=login`. The IdP's id_token must
/// then show an `acr` among the values and an `auth_time` within the age.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StepUpRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prompt_login: bool,
    /// The session this login steps up (the browser's, live when the login started): the
    /// login must be of the same user, and its new session replaces this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl StepUpRequest {
    pub fn is_empty(&self) -> bool {
        self.acr_values.is_empty()
            && self.max_age.is_none()
            && !self.prompt_login
            && self.replaces.is_none()
    }

    /// As a store keeps it: JSON, or nothing when nothing more was asked.
    pub fn to_json(&self) -> Result<Option<String>, serde_json::Error> {
        if self.is_empty() {
            return Ok(None);
        }
        serde_json::to_string(self).map(Some)
    }

    /// Read back from [`StepUpRequest::to_json`]'s form. Unreadable is an error, never
    /// "nothing asked": the login's answer would then be checked against less than was asked.
    pub fn from_json(stored: Option<&str>) -> Result<Self, serde_json::Error> {
        stored.map_or(Ok(Self::default()), serde_json::from_str)
    }
}

/// A session as stored: what `/auth` needs to know it is alive, and the IdP's tokens (sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub sid: String,
    pub user_id: String,
    pub app_id: String,
    pub provider_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub refresh_hash: String,
    pub idp_tokens: Vec<u8>,
    pub revoked: bool,
    /// Who opened the session and how the IdP authenticated them: what the user sees of their
    /// sessions (`/me/sessions`) and what step-up rules read. Empty for a record written
    /// before it existed.
    pub context: SessionContext,
}

/// What is known of a session's login beside the user: the client that logged in (shown back
/// to the user among their sessions) and the IdP's statement about the authentication
/// (`acr`, `amr`, `auth_time`). Every store keeps it with the session; a record stored before
/// this existed reads as the default (all empty), so a missing field is never an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SessionContext {
    /// The client's address at login, as the trusted proxy forwarded it (see
    /// `http::client::ClientInfo`).
    pub client_addr: Option<String>,
    /// The client's `User-Agent` at login, cut and cleaned (see `http::client`).
    pub user_agent: Option<String>,
    /// The authentication context class the IdP asserted (`acr` of the id_token).
    pub acr: Option<String>,
    /// The authentication methods the IdP asserted (`amr` of the id_token).
    pub amr: Vec<String>,
    /// When the user authenticated at the IdP (`auth_time`, seconds since the epoch).
    pub auth_time: Option<i64>,
}

impl SessionRecord {
    pub fn is_alive(&self, now: i64) -> bool {
        !self.revoked && now < self.expires_at
    }
}

/// The part of a [`SessionRecord`] that decides whether a token of the session is accepted:
/// what `/auth` reads on a token's first use (`session::Authenticator::authenticate`), without
/// the IdP's tokens, the refresh hash or the context, which it never looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHead {
    pub user_id: String,
    pub app_id: String,
    pub provider_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

impl SessionHead {
    pub fn is_alive(&self, now: i64) -> bool {
        !self.revoked && now < self.expires_at
    }
}

impl From<SessionRecord> for SessionHead {
    fn from(r: SessionRecord) -> Self {
        Self {
            user_id: r.user_id,
            app_id: r.app_id,
            provider_id: r.provider_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked: r.revoked,
        }
    }
}

/// The order of [`Sessions::list_sessions`](super::Sessions::list_sessions) for stores that gather sessions from several
/// places: oldest first, then by id.
pub(crate) fn sort_oldest_first(sessions: &mut [SessionRecord]) {
    sessions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.sid.cmp(&b.sid)));
}

/// How many of `sessions` are alive at `now`.
pub(crate) fn count_alive(sessions: &[SessionRecord], now: i64) -> u64 {
    sessions.iter().filter(|s| s.is_alive(now)).count() as u64
}

/// A user of the project: identity from the IdP, everything else owned by the project.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: String,
    pub realm: String,
    pub provider_id: String,
    pub provider_user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub groups: Vec<String>,
    pub permissions: Vec<String>,
    pub metadata: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One record of the users collection as `idgate users doctor` sees it: any state, with
/// whatever identity fields it has (a record without them cannot log in).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub user_id: String,
    /// `__STATE__` (`PUBLIC` in stores without states).
    pub state: String,
    pub realm: Option<String>,
    pub provider_id: Option<String>,
    pub provider_user_id: Option<String>,
    pub groups: Vec<String>,
    pub permissions: Vec<String>,
    /// Why the record cannot be read as a user, if it cannot.
    pub problem: Option<String>,
}

/// What the IdP says about the user at login.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub realm: String,
    pub provider_id: String,
    pub provider_user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
}
