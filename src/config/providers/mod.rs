//! Provider types (`type = …` under `[apps.<app>.providers.<id>]`) and their defaults: which
//! protocol each speaks, where its endpoints are, which scopes it asks for, how the client
//! authenticates at the token endpoint, and where the user id comes from.
//!
//! | type | protocol | endpoints (default) | scope (default) | token auth | user id |
//! |---|---|---|---|---|---|
//! | `oidc` | OIDC discovery | `issuer_url` (required) | `openid profile email` | basic | `sub` |
//! | `keycloak` | OIDC discovery | `issuer_url` = the realm, `https://host/realms/<realm>` (required) | `openid profile email` | basic | `sub` |
//! | `okta` | OIDC discovery | `issuer_url`, e.g. `https://<org>.okta.com/oauth2/default` (required) | `openid profile email` | basic | `sub` |
//! | `microsoft` | OIDC discovery | `issuer_url`, default `https://login.microsoftonline.com/common/v2.0` (then `tenants` is required, see below); a tenant: `…/<tenant>/v2.0`; B2C: `https://<t>.b2clogin.com/<t>.onmicrosoft.com/<policy>/v2.0` | `openid profile email` | post | `sub` |
//! | `google` | OIDC discovery | `issuer_url` = `https://accounts.google.com` | `openid profile email` | post | `sub` |
//! | `auth0` | OIDC discovery | `issuer_url` = `https://<tenant>.auth0.com/` (required) | `openid profile email` | post | `sub` |
//! | `gitlab` | OIDC discovery | `issuer_url` = `https://gitlab.com` (or the self-managed instance) | `openid profile email` | post | `sub` (the numeric user id) |
//! | `github` | OAuth2 | `auth_url` `https://github.com/login/oauth/authorize`, `token_url` `https://github.com/login/oauth/access_token`, `api_url` `https://api.github.com` | `read:user user:email` | post | `id` of `GET /user` (numeric, as a string) |
//! | `bitbucket-cloud` (TOML also `bitbucket`) | OAuth2 | `auth_url` `https://bitbucket.org/site/oauth2/authorize`, `token_url` `https://bitbucket.org/site/oauth2/access_token`, `api_url` `https://api.bitbucket.org/2.0` | `account email` | basic | `uuid` of `GET /user` |
//! | `bitbucket-server` (Server / Data Center; Mia's `bitbucket`) | OAuth2 | `base_url` (required); `auth_url` `{base_url}/rest/oauth2/latest/authorize`, `token_url` `{base_url}/rest/oauth2/latest/token` | `PUBLIC_REPOS` | post | the username `GET {base_url}/plugins/servlet/applinks/whoami` answers |
//! | `generic` | OAuth2 | `auth_url`, `token_url`, `userinfo_url` (all required) | none | basic | the userinfo key `keys.id` names (default `sub`) |
//!
//! `microsoft` on a multi-tenant endpoint — `…/common/v2.0` (the default) or
//! `…/organizations/v2.0`, on any Microsoft cloud — signs in accounts of every Entra ID tenant
//! (and, on `common`, personal accounts), all under the same signing keys: `tenants = ["<tenant
//! id>", …]` is then required, and an id_token (or a back-channel logout token) of a tenant not
//! listed is refused. The tenant is the `tid` claim and the one in `iss`, which must agree. On
//! `…/consumers/v2.0` the list defaults to the personal-accounts tenant
//! (`9188040d-6c67-4c5b-b112-36a304b66dad`); on a single tenant's endpoint or B2C it is optional
//! and, when given, checked against `tid`. Tenant ids are GUIDs (a tenant's domain name is not
//! what tokens carry).
//!
//! Two Bitbucket products: in idgate's TOML `bitbucket` has always meant Bitbucket Cloud and
//! still does (existing configurations keep working), `bitbucket-cloud` being its explicit
//! name; Bitbucket Server / Data Center is `bitbucket-server`, which Mia's configuration file
//! calls `bitbucket` (see `mia/providers.rs`). A TOML `bitbucket` provider pointed at a server's
//! `/rest/oauth2/` endpoints is refused, naming `bitbucket-server`, rather than run as Cloud.
//!
//! `auth_method = "client_secret_basic" | "client_secret_post"` overrides the column "token
//! auth"; so do the two methods without a shared secret on the wire (RFC 7523 client
//! assertions, see `idp/client_auth.rs`): `"client_secret_jwt"` (HS256 keyed with the client
//! secret) and `"private_key_jwt"` (the client's own key, `client_key_file`, RS256 or ES256;
//! `client_key_id` names its `kid`, default the RFC 7638 thumbprint — see [`client_key`]; no
//! `client_secret` then). `par = "auto" | "always" | "never"` (OIDC types) says whether the
//! login pushes its authorization request first (RFC 9126; see `idp/par.rs`). Endpoint keys belong to their protocol: `issuer_url` to the OIDC types, `auth_url`,
//! `token_url` and `api_url` to `github`/`bitbucket-cloud`, `base_url`, `auth_url` and
//! `token_url` to `bitbucket-server`, `auth_url`, `token_url`, `userinfo_url`
//! and `keys` to `generic`, `tenants` to `microsoft`; any other combination is a configuration
//! error naming the key, so a key that would be silently ignored never is.
//!
//! Two keys of the OIDC types harden what the IdP sends back: `require_iss` (default true; false
//! for the providers of a Mia file, whose login site posts only `code` and `state`) refuses an
//! authorization response without RFC 9207's `iss` when the IdP's discovery says it sends one;
//! `id_token_signing_algs` lists the JWS algorithms accepted on id_tokens and logout tokens
//! (default: what discovery advertises minus `none` and the symmetric `HS*`; `none` can never be
//! listed). Both are checked in `idp/oidc/`.

mod claims;
pub mod client_key;
mod microsoft;
mod validate;

use std::collections::BTreeMap;

use url::Url;

pub(super) use microsoft::microsoft_endpoint;
pub(super) use validate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Oidc,
    Keycloak,
    Okta,
    Microsoft,
    Google,
    Auth0,
    Gitlab,
    Github,
    /// Bitbucket Cloud (bitbucket.org).
    BitbucketCloud,
    /// Bitbucket Server / Data Center, at the project's own base URL.
    BitbucketServer,
    Generic,
}

impl ProviderKind {
    pub const ALL: [Self; 11] = [
        Self::Oidc,
        Self::Keycloak,
        Self::Okta,
        Self::Microsoft,
        Self::Google,
        Self::Auth0,
        Self::Gitlab,
        Self::Github,
        Self::BitbucketCloud,
        Self::BitbucketServer,
        Self::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Keycloak => "keycloak",
            Self::Okta => "okta",
            Self::Microsoft => "microsoft",
            Self::Google => "google",
            Self::Auth0 => "auth0",
            Self::Gitlab => "gitlab",
            Self::Github => "github",
            Self::BitbucketCloud => "bitbucket-cloud",
            Self::BitbucketServer => "bitbucket-server",
            Self::Generic => "generic",
        }
    }

    /// The type named `s` in the TOML, where `bitbucket` is Bitbucket Cloud (see the module
    /// doc; the Mia file maps its own `bitbucket` itself).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bitbucket" => Some(Self::BitbucketCloud),
            _ => Self::ALL.into_iter().find(|k| k.as_str() == s),
        }
    }

    /// Whether the type signs in with OpenID Connect (discovery, id_token) rather than plain
    /// OAuth2 and a user API.
    pub fn is_oidc(self) -> bool {
        !matches!(
            self,
            Self::Github | Self::BitbucketCloud | Self::BitbucketServer | Self::Generic
        )
    }

    /// The issuer when the vendor has a fixed one.
    fn default_issuer(self) -> Option<&'static str> {
        match self {
            Self::Google => Some("https://accounts.google.com"),
            Self::Gitlab => Some("https://gitlab.com"),
            Self::Microsoft => Some("https://login.microsoftonline.com/common/v2.0"),
            _ => None,
        }
    }

    /// How the vendor's documentation has the client authenticate at the token endpoint.
    fn default_auth_method(self) -> AuthMethod {
        match self {
            // Bitbucket Server documents `client_id` and `client_secret` as token request
            // parameters, not HTTP Basic.
            Self::Microsoft
            | Self::Google
            | Self::Auth0
            | Self::Gitlab
            | Self::Github
            | Self::BitbucketServer => AuthMethod::ClientSecretPost,
            _ => AuthMethod::ClientSecretBasic,
        }
    }

    fn default_scope(self) -> Vec<String> {
        let list: &[&str] = match self {
            Self::Github => &["read:user", "user:email"],
            Self::BitbucketCloud => &["account", "email"],
            // The narrowest scope Bitbucket Server's OAuth 2.0 provider offers (what Mia's
            // documented example asks for); reading the user needs no more.
            Self::BitbucketServer => &["PUBLIC_REPOS"],
            Self::Generic => &[],
            _ => &["openid", "profile", "email"],
        };
        list.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A client assertion (RFC 7523) signed HS256 with the client secret.
    ClientSecretJwt,
    /// A client assertion signed with the client's private key (`client_key_file`).
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The name in the TOML and in the IdP's metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// Whether a login pushes its authorization request to the IdP first (RFC 9126, `par`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParMode {
    /// When discovery says `require_pushed_authorization_requests: true` (the default).
    Auto,
    /// Always; a login fails, naming the provider, when discovery has no PAR endpoint.
    Always,
    /// Never.
    Never,
}

/// Where a provider's endpoints are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Discovered from `{issuer}/.well-known/openid-configuration`. The issuer is kept as
    /// written (a trailing slash matters to Auth0), validated as a URL.
    Oidc { issuer: String },
    /// Plain OAuth2 with explicit endpoints and a user API.
    OAuth2(Box<OAuth2Endpoints>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Endpoints {
    pub auth_url: Url,
    pub token_url: Url,
    /// `GET` with the access token: the user's profile.
    pub user_url: Url,
    /// The user's addresses when the profile hides them (GitHub, Bitbucket Cloud).
    pub emails_url: Option<Url>,
    /// Bitbucket Server: its users API (`{base}/rest/api/latest/users`), where the name
    /// `user_url` (whoami) answers is looked up for the display name and address.
    pub users_url: Option<Url>,
    /// Which keys of the profile hold what (`generic`; fixed for the vendors).
    pub keys: UserKeys,
}

/// Which keys of a userinfo answer hold the user's fields (Mia's `oidcKeys`); dotted paths
/// reach into nested objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    pub id: String,
    pub name: String,
    pub username: String,
    pub email: String,
    /// The flag saying the address is verified: `false` (or `"false"`) there drops the
    /// address; absent, the address is kept.
    pub email_verified: String,
}

impl Default for UserKeys {
    fn default() -> Self {
        Self {
            id: "sub".into(),
            name: "name".into(),
            username: "preferred_username".into(),
            email: "email".into(),
            email_verified: "email_verified".into(),
        }
    }
}

/// The tenant of Microsoft's personal accounts, the only one the `consumers` endpoint serves.
pub const MICROSOFT_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

pub struct ProviderConfig {
    pub id: String,
    pub kind: ProviderKind,
    pub protocol: Protocol,
    pub auth_method: AuthMethod,
    pub client_id: String,
    pub client_secret: crate::crypto::Secret,
    pub scope: Vec<String>,
    pub label: String,
    /// A same-site path to a logo shown beside the label on the chooser.
    pub logo_url: Option<String>,
    pub order: i64,
    pub user_settings_url: Option<String>,
    /// `microsoft`: the tenant ids (lowercase GUIDs) whose tokens are accepted; empty means
    /// no check, which only a single-tenant or B2C issuer allows (see the module doc).
    pub tenants: Vec<String>,
    /// Where `/logout` sends a browser to end the IdP's session too.
    pub logout: LogoutTarget,
    /// IdP claim name → name under the token's `user` claim (`claims_to_token`, Mia's
    /// `providerToTokenClaims`), validated in `claims.rs`.
    pub claims_to_token: BTreeMap<String, String>,
    /// How long one request to the IdP may take (`timeout`, default 10 s, at most
    /// [`MAX_IDP_TIMEOUT`]): a login waiting on an IdP that does not answer fails after it.
    pub timeout: std::time::Duration,
    /// `private_key_jwt`: the key signing the client's assertions.
    pub client_key: Option<std::sync::Arc<client_key::ClientKey>>,
    /// Pushed Authorization Requests (`par`).
    pub par: ParMode,
    /// OIDC types (RFC 9207, `require_iss`, default true): an authorization response without
    /// `iss` is refused when discovery advertises `authorization_response_iss_parameter_supported`.
    pub require_iss: bool,
    /// OIDC types (`id_token_signing_algs`): the JWS algorithms accepted on id_tokens and logout
    /// tokens, validated names from [`SIGNING_ALGS`]; `None` takes what discovery advertises
    /// minus `none` and `HS*`.
    pub id_token_signing_algs: Option<Vec<String>>,
}

/// The JWS algorithms `id_token_signing_algs` may name (`none` never: an unsigned token proves
/// nothing). The `HS*` ones are keyed with the client secret and only accepted when listed.
pub const SIGNING_ALGS: [&str; 12] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

/// Longest `timeout` a provider may have: a login holds a connection while it waits.
pub const MAX_IDP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where `/logout` sends a browser after ending idgate's session (`logout_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutTarget {
    /// Nowhere at the IdP: the browser goes to `redirect` (Mia without `logoutUrl`).
    None,
    /// The IdP's discovered `end_session_endpoint` (OIDC types).
    Discovered,
    /// This URL (Mia's `logoutUrl`), with `post_logout_redirect_uri` and `id_token_hint`.
    Url(url::Url),
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("protocol", &self.protocol)
            .field("auth_method", &self.auth_method)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("tenants", &self.tenants)
            .field("timeout", &self.timeout)
            .field("client_key", &self.client_key)
            .field("par", &self.par)
            .field("require_iss", &self.require_iss)
            .field("id_token_signing_algs", &self.id_token_signing_algs)
            .finish()
    }
}

#[cfg(test)]
mod tests;
