//! Who the user is, for the plain OAuth2 types: the vendor's user API, called with the access
//! token, read into an [`IdpUser`].
//!
//! - `github` ("GitHub REST API — Users"): `GET /user` — the numeric `id` (as a string) is the
//!   provider user id, `login` the username, `name` the name (may be null); `email` is null when
//!   the user keeps it private, then `GET /user/emails` (scope `user:email`) gives the list and
//!   the primary, verified address is taken. An address never verified is never used: the
//!   profile's public address (which GitHub lets a user pick only among verified ones) is also
//!   looked up in that list, and dropped if the list says it is unverified; without the list
//!   (no `user:email` scope) the public address is kept.
//! - `bitbucket-cloud` ("Bitbucket Cloud REST API — Users"): `GET /user` — `uuid` (with its braces) is
//!   the provider user id, `display_name` the name, `username` (or `nickname` where Atlassian's
//!   privacy changes removed it) the username; the profile carries no address, so
//!   `GET /user/emails` (paginated: `values`, `next`) gives them and the primary, confirmed one
//!   is taken. `next` is followed only on the API's own origin, at most 10 pages.
//! - `bitbucket-server` (Bitbucket Server / Data Center): `GET {base}/plugins/servlet/applinks/whoami`
//!   answers the username of the token's user as plain text — the endpoint Mia's documentation
//!   configures as its `userInfoUrl`, and the provider user id here (the Mia service can only
//!   have stored that, so existing users collections keep matching). The name and address come
//!   from the REST API's users resource ("Bitbucket Data Center REST API — Users":
//!   `GET {base}/rest/api/latest/users?filter=<username>`, paged with `start`, `isLastPage`,
//!   `nextPageStart`): `filter` matches substrings of names and addresses, so only the entry whose
//!   `name` is the username is taken (`displayName`, `emailAddress`); without it (or when the
//!   token may not read it) the login goes on with the username alone. Bitbucket Server has no
//!   verified flag: the address is the account's. The whoami answer is read up to 1 KiB, must be
//!   one line of printable text, and an empty answer (an anonymous request) refuses the login.
//! - `generic`: `GET userinfo_url`, the fields read at the keys `keys` names (dotted paths reach
//!   into nested objects; a numeric id becomes a string). The address is dropped when the flag at
//!   `keys.email_verified` (default `email_verified`, as OIDC's userinfo) is `false` (or the
//!   string `"false"`); an absent flag keeps it.

use serde_json::Value;
use url::Url;

use super::{request_failed, IdpError, IdpUser};

#[doc(hidden)]
pub mod fuzz;
use crate::config::{OAuth2Endpoints, ProviderKind, UserKeys};
use crate::metrics::idp_call;

/// What GitHub documents as the media type of its REST API.
const GITHUB_ACCEPT: &str = "application/vnd.github+json";
/// Pages of a paginated list read at most.
const MAX_PAGES: usize = 10;

pub async fn fetch(
    kind: ProviderKind,
    http: &reqwest::Client,
    endpoints: &OAuth2Endpoints,
    access_token: &str,
) -> Result<IdpUser, IdpError> {
    match kind {
        ProviderKind::Github => {
            let profile = get_json(http, &endpoints.user_url, access_token, GITHUB_ACCEPT).await?;
            let mut user = github_user(&profile)?;
            if let Some(url) = &endpoints.emails_url {
                match get_json(http, url, access_token, GITHUB_ACCEPT).await {
                    Ok(list) => user.email = github_email(user.email.take(), &list),
                    // Without the user:email scope: the public address as it is, or none; not
                    // a failure.
                    Err(e) => tracing::warn!(error = %e, "GitHub /user/emails"),
                }
            }
            Ok(user)
        }
        ProviderKind::BitbucketServer => {
            let username = whoami(http, &endpoints.user_url, access_token).await?;
            let mut user = IdpUser {
                authn: Default::default(),
                subject: username.clone(),
                name: None,
                email: None,
                username: Some(username.clone()),
                claims: Default::default(),
            };
            if let Some(url) = &endpoints.users_url {
                match bitbucket_server_profile(http, url, access_token, &username).await {
                    Ok(Some(profile)) => {
                        user.name = string_at(&profile, "displayName").map(str::to_owned);
                        user.email = string_at(&profile, "emailAddress").map(str::to_owned);
                        user.claims = top_level(&profile);
                    }
                    Ok(None) => tracing::warn!(
                        %username,
                        "Bitbucket Server users API: no user of that name; name and email unknown"
                    ),
                    Err(e) => tracing::warn!(error = %e, "Bitbucket Server users API"),
                }
            }
            Ok(user)
        }
        ProviderKind::BitbucketCloud => {
            let profile =
                get_json(http, &endpoints.user_url, access_token, "application/json").await?;
            let mut user = bitbucket_user(&profile)?;
            if let Some(url) = &endpoints.emails_url {
                match bitbucket_emails(http, url, access_token).await {
                    Ok(values) => {
                        user.email =
                            primary_email(&Value::Array(values), "is_primary", "is_confirmed")
                    }
                    Err(e) => tracing::warn!(error = %e, "Bitbucket /user/emails"),
                }
            }
            Ok(user)
        }
        _ => {
            let profile =
                get_json(http, &endpoints.user_url, access_token, "application/json").await?;
            keyed_user(&profile, &endpoints.keys)
        }
    }
}

#[tracing::instrument(target = "idgate::trace", name = "idp user api", skip_all, fields(otel.kind = "client"))]
async fn get_json(
    http: &reqwest::Client,
    url: &Url,
    access_token: &str,
    accept: &str,
) -> Result<Value, IdpError> {
    let resp = idp_call(
        crate::telemetry::propagate(
            http.get(url.clone())
                .bearer_auth(access_token)
                .header(reqwest::header::ACCEPT, accept),
        )
        .send(),
    )
    .await
    .map_err(|e| request_failed(&e, |m| IdpError::Protocol(format!("{url}: {m}"))))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(IdpError::Protocol(format!("{url} answered {status}")));
    }
    idp_call(resp.json())
        .await
        .map_err(|e| request_failed(&e, |m| IdpError::Protocol(format!("{url}: not JSON: {m}"))))
}

/// Every page of Bitbucket's paginated email list.
async fn bitbucket_emails(
    http: &reqwest::Client,
    first: &Url,
    access_token: &str,
) -> Result<Vec<Value>, IdpError> {
    let mut values = Vec::new();
    let mut next = Some(first.clone());
    for _ in 0..MAX_PAGES {
        let Some(url) = next.take() else { break };
        let page = get_json(http, &url, access_token, "application/json").await?;
        if let Some(list) = page.get("values").and_then(Value::as_array) {
            values.extend(list.iter().cloned());
        }
        next = page
            .get("next")
            .and_then(Value::as_str)
            .and_then(|n| Url::parse(n).ok())
            .filter(|n| n.origin() == first.origin());
    }
    Ok(values)
}

/// Bytes of a whoami answer read at most: a username, not a document.
const MAX_WHOAMI: usize = 1024;

/// The username Bitbucket Server's whoami answers for `access_token`.
#[tracing::instrument(target = "idgate::trace", name = "idp user api", skip_all, fields(otel.kind = "client"))]
async fn whoami(http: &reqwest::Client, url: &Url, access_token: &str) -> Result<String, IdpError> {
    let mut resp = idp_call(
        crate::telemetry::propagate(
            http.get(url.clone())
                .bearer_auth(access_token)
                .header(reqwest::header::ACCEPT, "text/plain"),
        )
        .send(),
    )
    .await
    .map_err(|e| request_failed(&e, |m| IdpError::Protocol(format!("{url}: {m}"))))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(IdpError::Protocol(format!("{url} answered {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = idp_call(resp.chunk())
        .await
        .map_err(|e| request_failed(&e, |m| IdpError::Protocol(format!("{url}: {m}"))))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_WHOAMI {
            return Err(IdpError::Protocol(format!(
                "{url}: answer longer than {MAX_WHOAMI} bytes, not a username"
            )));
        }
    }
    whoami_name(&body).ok_or_else(|| {
        IdpError::Protocol(format!(
            "{url} answered no username (an anonymous request: the access token was not accepted)"
        ))
    })
}

/// The username of a whoami answer: one line of printable text, trimmed; `None` otherwise.
fn whoami_name(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

/// The entry of Bitbucket Server's users API whose `name` is `username`, if the token may read
/// it.
async fn bitbucket_server_profile(
    http: &reqwest::Client,
    users: &Url,
    access_token: &str,
    username: &str,
) -> Result<Option<Value>, IdpError> {
    let mut start: u64 = 0;
    for _ in 0..MAX_PAGES {
        let mut url = users.clone();
        url.query_pairs_mut()
            .append_pair("filter", username)
            .append_pair("start", &start.to_string());
        let page = get_json(http, &url, access_token, "application/json").await?;
        if let Some(found) = same_name(&page, username) {
            return Ok(Some(found));
        }
        let next = page.get("nextPageStart").and_then(Value::as_u64);
        match next {
            // A next page strictly after this one; anything else ends the walk.
            Some(n) if page.get("isLastPage") == Some(&Value::Bool(false)) && n > start => {
                start = n
            }
            _ => break,
        }
    }
    Ok(None)
}

/// The `values` entry of a users page whose `name` is `username` (case-insensitively, as
/// Bitbucket Server compares usernames).
fn same_name(page: &Value, username: &str) -> Option<Value> {
    page.get("values")?
        .as_array()?
        .iter()
        .find(|u| string_at(u, "name").is_some_and(|n| n.eq_ignore_ascii_case(username)))
        .cloned()
}

fn string_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn github_user(profile: &Value) -> Result<IdpUser, IdpError> {
    let id = match profile.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(IdpError::Protocol(
                "GitHub /user has no numeric `id`".into(),
            ))
        }
    };
    Ok(IdpUser {
        authn: Default::default(),
        subject: id,
        name: string_at(profile, "name").map(str::to_owned),
        email: string_at(profile, "email").map(str::to_owned),
        username: string_at(profile, "login").map(str::to_owned),
        claims: top_level(profile),
    })
}

fn bitbucket_user(profile: &Value) -> Result<IdpUser, IdpError> {
    let uuid = string_at(profile, "uuid")
        .ok_or_else(|| IdpError::Protocol("Bitbucket /user has no `uuid`".into()))?;
    Ok(IdpUser {
        authn: Default::default(),
        subject: uuid.to_owned(),
        name: string_at(profile, "display_name").map(str::to_owned),
        email: None,
        username: string_at(profile, "username")
            .or_else(|| string_at(profile, "nickname"))
            .map(str::to_owned),
        claims: top_level(profile),
    })
}

/// The address of a list entry flagged `primary` and `verified` (the flags' names differ by
/// vendor).
fn primary_email(list: &Value, primary: &str, verified: &str) -> Option<String> {
    let flag = |e: &Value, k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(false);
    list.as_array()?
        .iter()
        .find(|e| flag(e, primary) && flag(e, verified))
        .and_then(|e| string_at(e, "email"))
        .map(str::to_owned)
}

/// GitHub's address: the profile's public one unless the email list marks it unverified, else
/// the primary verified one of the list.
fn github_email(public: Option<String>, list: &Value) -> Option<String> {
    let unverified = |address: &str| {
        list.as_array().into_iter().flatten().any(|e| {
            string_at(e, "email").is_some_and(|a| a.eq_ignore_ascii_case(address))
                && e.get("verified").and_then(Value::as_bool) == Some(false)
        })
    };
    match public {
        Some(address) if !unverified(&address) => Some(address),
        _ => primary_email(list, "primary", "verified"),
    }
}

/// The profile's top-level fields, the claims `claims_to_token` and `use_provider_groups` read
/// (an answer that is not an object has none).
fn top_level(profile: &Value) -> serde_json::Map<String, Value> {
    profile.as_object().cloned().unwrap_or_default()
}

/// The value at a dotted path.
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn keyed_user(profile: &Value, keys: &UserKeys) -> Result<IdpUser, IdpError> {
    let text = |path: &str| match at_path(profile, path) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let subject = text(&keys.id).ok_or_else(|| {
        IdpError::Protocol(format!(
            "the userinfo answer has no `{}` (the provider's keys.id)",
            keys.id
        ))
    })?;
    let unverified = match at_path(profile, &keys.email_verified) {
        Some(Value::Bool(verified)) => !verified,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("false"),
        _ => false,
    };
    Ok(IdpUser {
        authn: Default::default(),
        subject,
        name: text(&keys.name),
        email: text(&keys.email).filter(|_| !unverified),
        username: text(&keys.username),
        claims: top_level(profile),
    })
}

#[cfg(test)]
mod tests;
