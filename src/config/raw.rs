//! The configuration file exactly as written: serde structs with `deny_unknown_fields`, so a
//! misspelt key stops startup with the key's name and position. Nothing here is checked beyond
//! its type; [`super::Config::from_raw`] turns these into validated, typed values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    /// Optional only because the original services' environment variables can supply it
    /// (`MIA_JWT_TOKEN_*`, see `env/`); validation asks for it otherwise.
    pub jwt: Option<RawJwt>,
    #[serde(default)]
    pub session: RawSession,
    /// Optional only because `REDIS_HOSTS` can supply it.
    pub store: Option<RawStore>,
    /// Optional only because `USERS_CRUD_BASE_URL` can supply it.
    pub users: Option<RawUsers>,
    #[serde(default)]
    pub headers: RawHeaders,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub apps: BTreeMap<String, RawApp>,
    /// Mia's `auth.json` route rules, read unchanged.
    pub mia_auth: Option<PathBuf>,
    /// The Mia authentication service's configuration JSON (`apps → providers`), read
    /// unchanged; its apps join the `[apps]` of this file.
    pub mia_config: Option<PathBuf>,
    #[serde(default)]
    pub authorization: RawAuthorization,
    /// Static API keys (Mia's API gateway keys), each mapped to a client type.
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
    /// The certificate authorities the outbound TLS clients trust (see `tls.rs`).
    #[serde(default)]
    pub tls: crate::tls::RawTls,
    /// The audit trail (see `audit`); absent: none.
    pub audit: Option<RawAudit>,
    /// The login site's pages (see `config::pages`).
    pub pages: Option<super::pages::RawPages>,
    /// The rate limits on the login endpoints (see `config::limits`).
    pub login_limits: Option<RawLoginLimits>,
    /// OpenTelemetry traces (see `config::telemetry`).
    pub telemetry: Option<RawTelemetry>,
}

/// One `[[api_keys]]` entry. The key itself is never written in this file: give its SHA-256
/// (`key_sha256`, 64 hex digits) or a file holding it (`key_file`), exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// The client type the key stands for (`clientType` in rules, `client-type` upstream).
    pub client_type: String,
    /// SHA-256 of the key, hex (`printf %s "$KEY" | sha256sum`).
    pub key_sha256: Option<String>,
    /// A file holding the key (one trailing newline is ignored); read and hashed at load.
    pub key_file: Option<PathBuf>,
    /// Mia's "Active" flag: an inactive key is refused like an unknown one; default true.
    pub active: Option<bool>,
    /// Free text for the operator (Mia's "Description"); never used.
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorization {
    /// Routes no rule covers answer 401 (Mia's `AUTHORIZATION_STRICT_MODE_ENABLED`); default true.
    pub strict: Option<bool>,
    #[serde(default)]
    pub routes: Vec<crate::policy::RawRoute>,
    /// Request and route paths are lowercased before matching, for upstreams that serve paths
    /// case-insensitively; default false.
    pub case_insensitive: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `"127.0.0.1:4280"` or `"unix:/run/idgate/idgate.sock"`.
    pub listen: Vec<String>,
    /// CIDRs whose `/auth` requests are believed; `None` means loopback only.
    pub trusted_peers: Option<Vec<String>>,
    /// The app `/auth` sends anonymous browsers to when several apps are configured.
    pub default_app: Option<String>,
    /// How long in-flight requests may run after SIGTERM, e.g. `"10s"`.
    pub shutdown_grace: Option<String>,
    /// Permissions of the unix sockets, octal, e.g. `"0660"` (the default).
    pub socket_mode: Option<String>,
    /// Group of the unix sockets (name or number), e.g. `"www-data"`; default: the process's.
    pub socket_group: Option<String>,
    /// CIDRs allowed to use the administrative endpoints (`DELETE /sessions/…`) without a
    /// token; default none. Never the address Nginx connects from.
    pub admin_peers: Option<Vec<String>>,
    /// A file holding the bearer token of the administrative endpoints.
    pub admin_token_file: Option<PathBuf>,
    /// Connections served at once; more wait in the listen backlog (default 4096).
    pub max_connections: Option<usize>,
    /// The time a connection has to send each request's head, e.g. `"30s"` (the default).
    pub header_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub algorithm: String,
    pub private_key_file: Option<PathBuf>,
    pub key_id: String,
    /// An HS256 secret given by value (`MIA_JWT_TOKEN_SIGN_KEY`); never read from the TOML, so
    /// a secret is never written into a config file.
    #[serde(skip)]
    pub secret: Option<crate::crypto::Secret>,
    /// Extra keys accepted when verifying (keys being rotated out).
    #[serde(default)]
    pub verification_keys: Vec<RawVerificationKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerificationKey {
    pub algorithm: String,
    pub key_id: String,
    /// Public key PEM (RS256, ES256, EdDSA) or the shared secret file (HS256).
    pub key_file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub access_ttl: Option<String>,
    /// The session's absolute lifetime (`absolute_timeout` is the same key).
    #[serde(alias = "absolute_timeout")]
    pub lifetime: Option<String>,
    /// Sessions unused this long end (checked by `/auth`); none by default.
    pub idle_timeout: Option<String>,
    pub login_state_ttl: Option<String>,
    pub cookie_secure: Option<bool>,
    pub cookie_domain: Option<String>,
    pub cookie_path: Option<String>,
    pub cookie_same_site: Option<String>,
    /// Name the cookies `__Host-sid`, `__Host-idgate_renew`, `__Host-idgate_login` and
    /// `__Secure-refresh_token` (needs `cookie_secure`, no `cookie_domain`, `cookie_path` "/").
    pub host_prefix: Option<bool>,
    pub token_cache_entries: Option<usize>,
    pub token_key_file: Option<PathBuf>,
    /// Live sessions kept per user; the oldest is revoked beyond it (Mia's
    /// `STORED_ACCESS_TOKEN_NUMBER`).
    pub max_per_user: Option<usize>,
    /// How long sessions already verified keep working while the revocation feed (Redis) is
    /// unreachable.
    pub outage_grace: Option<String>,
    /// Count `lifetime` from the last refresh instead of from the login: a session lives as
    /// long as it is refreshed within `lifetime` (Mia's refresh-token lifetime,
    /// `MIA_REFRESH_TOKEN_VALID_DURATION_SEC`). Default false: `lifetime` is absolute.
    pub sliding_lifetime: Option<bool>,
    /// How long a refresh token just used may be presented again and get the same new pair
    /// (two tabs refreshing at once) instead of revoking the session; "0s" turns it off.
    /// Default "5s", at most "60s".
    pub refresh_grace: Option<String>,
    /// Whether `/refreshtoken` clears the session cookies when it refuses a refresh token
    /// (Mia's `INVALID_REFRESH_TOKEN_WIPES_COOKIES`). Default false.
    pub invalid_refresh_wipes_cookies: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawStore {
    Embedded {
        path: PathBuf,
    },
    Redis {
        /// `standalone` (default), `sentinel` or `cluster`.
        mode: Option<String>,
        /// `redis://` or `rediss://` (TLS) URLs: the server, the sentinels, or cluster seeds;
        /// in standalone mode also the server's unix socket (`unix:///path`).
        urls: Vec<String>,
        master_name: Option<String>,
        /// Key namespace (Mia's `REDIS_SESSION_SCOPE`).
        scope: Option<String>,
        username: Option<String>,
        password: Option<String>,
        password_file: Option<PathBuf>,
        pool_size: Option<u32>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawUsers {
    Embedded {
        path: Option<PathBuf>,
        /// How often the records of the users with live sessions here are read again, so a
        /// change of their groups reaches those sessions (default "60s", at least "1s").
        refresh_interval: Option<String>,
    },
    Mongodb {
        uri: String,
        database: String,
        collection: Option<String>,
        /// Where the durable copy of sessions goes when `[store]` is Redis.
        sessions_collection: Option<String>,
        /// Create the partial unique identity index when the collection allows it (default
        /// true); `false` leaves the collection's indexes alone.
        create_index: Option<bool>,
        /// `refuse` (default) or `recreate` (Mia's behaviour): a login whose identity only
        /// non-PUBLIC documents hold.
        inactive_users: Option<String>,
        /// How often the records of the users with live sessions here are read again, so a
        /// change of their groups reaches those sessions (default "60s", at least "1s").
        refresh_interval: Option<String>,
    },
    Crud {
        /// e.g. `http://crud-service/users` (Mia's `USERS_CRUD_BASE_URL`).
        base_url: String,
        /// Headers sent with every request (e.g. an API key or `secret`).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        timeout: Option<String>,
        /// The fields the collection accepts, which idgate may write (default: those of Mia's
        /// users collection without `permissions` and `metadata`).
        fields: Option<Vec<String>>,
        /// `refuse` (default) or `recreate` (Mia's behaviour), as for MongoDB.
        inactive_users: Option<String>,
        /// How often the records of the users with live sessions here are read again, so a
        /// change of their groups reaches those sessions (default "60s", at least "1s").
        refresh_interval: Option<String>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// User fields copied into `mia-userproperties` (Mia's `USER_PROPERTIES_TO_PROXY`).
    pub user_properties: Option<Vec<String>>,
    /// `mia` (default), `oauth2-proxy` or `custom`: extra names `/auth` answers with.
    pub profile: Option<String>,
    /// With `profile = "custom"`: field (`user_id`, `email`, `name`, `username`, `groups`,
    /// `user_properties`) → response header name.
    pub custom: Option<BTreeMap<String, String>>,
    /// Also answer with the session JWT (`idgate-token`), for upstreams that verify it.
    pub pass_token: Option<bool>,
    /// Largest identity header value; a larger one refuses the request (403) with a log line.
    pub max_value_bytes: Option<usize>,
}

/// `[audit]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// The file the events are appended to (`/var/log/idgate/audit.jsonl`), or `"stdout"`.
    pub path: String,
    /// Events waiting for the writer before new ones are dropped (default 8192).
    pub queue: Option<usize>,
}

/// `[login_limits]`: `"N/s"`, `"N/min"`, `"N/h"` or `"off"` each.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoginLimits {
    /// Per client address (default `120/min`).
    pub per_address: Option<String>,
    /// Per browser binding (default `20/min`).
    pub per_binding: Option<String>,
}

/// `[telemetry]`: OpenTelemetry traces, off without `otlp_endpoint`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// The OTLP/HTTP collector's base URL (`http://collector:4318`).
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans (default `idgate`).
    pub service_name: Option<String>,
    /// The share of new traces recorded, 0.0 to 1.0 (default 1.0).
    pub sample_ratio: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `plain` (default) or `json`.
    pub format: Option<String>,
    /// A tracing filter such as `info` or `idgate=debug`; `RUST_LOG` wins when set.
    pub level: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub realm: String,
    pub issuer: String,
    pub redirect_url: String,
    #[serde(default)]
    pub website: bool,
    #[serde(default)]
    pub default_groups: Vec<String>,
    pub default_provider: Option<String>,
    #[serde(default)]
    pub allowed_redirects: Vec<String>,
    /// Where the IdP sends the browser back after RP-initiated logout (must be registered there).
    pub post_logout_redirect_url: Option<String>,
    /// Add the user's id at the provider to the token as `user.providerUserId` (Mia's
    /// `customTokenClaims.includeProviderUserId`).
    #[serde(default)]
    pub include_provider_user_id: bool,
    /// Only these `metadata` fields (dotted paths such as `a.b.c`) go into the token; unset
    /// means all of it (Mia's `customTokenClaims.metadataFieldsToInclude`).
    pub metadata_fields: Option<Vec<String>>,
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    /// The client makes the login's `state` (Mia's `authorizeStateRequired`): `/authorize`
    /// requires it, the IdP gets it and hands it back unchanged to the app's `redirect_url`,
    /// and `/oauth/token` takes `{code, state}` without idgate's browser-binding cookie (for
    /// clients with a callback of their own). See docs/security.md.
    #[serde(default)]
    pub client_state: bool,
    /// Where `/oauth/token`'s `Location` points when `/authorize` had no `redirect` (Mia's
    /// `defaultRedirectUrlOnSuccessfulLogin`); checked against `allowed_redirects` at startup.
    pub default_redirect: Option<String>,
    /// This app's session cookies (`sid`, `idgate_renew`): Domain, Path, SameSite in place of
    /// `[session]`'s (Mia's `sidCookieCustomAttributes`).
    pub cookie: Option<RawCookieAttributes>,
    /// This app's `refresh_token` cookie (Mia's `refreshCookieCustomAttributes`); its path
    /// defaults to `/refreshtoken`.
    pub refresh_cookie: Option<RawCookieAttributes>,
    /// The session's groups are the users collection's plus those in the IdP's `groups` claim
    /// at login (Mia's `useProviderGroups`).
    #[serde(default)]
    pub use_provider_groups: bool,
    /// The app's brand on its pages (see `config::pages`).
    pub pages: Option<super::pages::RawAppPages>,
    /// Opaque bearer tokens of the app's IdP, checked by introspection (see
    /// `config::api_tokens`).
    pub introspection: Option<super::api_tokens::RawIntrospection>,
    /// The upstream audiences the app mints scoped tokens for, by name.
    #[serde(default)]
    pub audiences: BTreeMap<String, super::api_tokens::RawAudience>,
}

/// Cookie attributes an app sets for itself; unset ones keep `[session]`'s.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawCookieAttributes {
    pub domain: Option<String>,
    pub path: Option<String>,
    /// `lax` or `strict` (Mia allows these two; `none` is refused: it would send the session
    /// on cross-site requests).
    pub same_site: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    #[serde(rename = "type")]
    pub kind: String,
    /// OIDC types: where discovery starts (Google, GitLab and Microsoft have a default).
    pub issuer_url: Option<String>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scope: Option<Vec<String>>,
    pub label: Option<String>,
    /// A same-site path to a small logo shown beside the label on the chooser.
    pub logo_url: Option<String>,
    #[serde(default)]
    pub order: i64,
    pub user_settings_url: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `client_secret_jwt` or `private_key_jwt`;
    /// default per type.
    pub auth_method: Option<String>,
    /// Plain OAuth2 types: the authorization endpoint (GitHub and Bitbucket have a default).
    pub auth_url: Option<String>,
    /// Plain OAuth2 types: the token endpoint (GitHub and Bitbucket have a default).
    pub token_url: Option<String>,
    /// `generic`: the endpoint answering the user's profile as JSON.
    pub userinfo_url: Option<String>,
    /// `github`, `bitbucket`: the REST API's base URL (its `/user` and `/user/emails`).
    pub api_url: Option<String>,
    /// `generic`: which userinfo keys hold the user's fields (Mia's `oidcKeys`).
    pub keys: Option<RawUserKeys>,
    /// `microsoft`: the tenant ids whose users may sign in; required on the multi-tenant
    /// `common` and `organizations` endpoints.
    pub tenants: Option<Vec<String>>,
    /// Where `/logout` sends the browser to end the IdP's session: an URL (Mia's `logoutUrl`),
    /// `"discovery"` (the IdP's `end_session_endpoint`; the default of the OIDC types) or
    /// `"none"` (the IdP's session is left alone; the default of the plain OAuth2 types).
    #[serde(default)]
    pub logout_url: Option<String>,
    /// `bitbucket-server`: the server's base URL (`https://host[/context]`), under which its
    /// OAuth 2.0, whoami and REST endpoints are.
    pub base_url: Option<String>,
    /// IdP claim name → name under the token's `user` claim: the IdP's value at login is
    /// copied there (Mia's `providerToTokenClaims`).
    #[serde(default)]
    pub claims_to_token: BTreeMap<String, String>,
    /// How long one request to the IdP (discovery, JWKS, token, userinfo, user APIs) may take.
    pub timeout: Option<String>,
    /// `private_key_jwt`: the client's private key (PEM, RS256 or ES256) signing its assertions.
    pub client_key_file: Option<PathBuf>,
    /// `private_key_jwt`: the `kid` of the client's key as registered at the IdP (default: its
    /// RFC 7638 thumbprint, what `idgate keygen --public-jwk` prints).
    pub client_key_id: Option<String>,
    /// Pushed Authorization Requests (RFC 9126): `auto` (default), `always` or `never`.
    pub par: Option<String>,
    /// OIDC types (RFC 9207): whether an authorization response without `iss` is refused when
    /// the IdP's discovery advertises `authorization_response_iss_parameter_supported`
    /// (default true; false for the providers of a Mia file).
    pub require_iss: Option<bool>,
    /// OIDC types: the JWS algorithms accepted on id_tokens (and logout tokens); default what
    /// discovery advertises minus `none` and the symmetric `HS*`.
    pub id_token_signing_algs: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUserKeys {
    pub id: Option<String>,
    pub name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    /// Where the flag saying the address was verified is; `false` there drops the address.
    pub email_verified: Option<String>,
}
