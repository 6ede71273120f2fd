//! Every key of the Mia file accounted for: applied (listed for the startup log and
//! `check-config`), known but handled differently (an info saying how), or unknown (a warning
//! naming its JSON path, since it may be a typo). The file was written for another program, so
//! an unknown key is reported, never refused.

use serde_json::Value;

use super::MiaNotices;

/// Keys of an app that idgate reads, and the ones it knows but handles elsewhere.
const APP_KEYS: &[&str] = &[
    "providers",
    "redirectUrl",
    "realm",
    "issuer",
    "defaultGroups",
    "isWebsiteApp",
    "allowedRedirectUrlsOnSuccessfulLogin",
    "customTokenClaims",
    "authorizeStateRequired",
    "defaultRedirectUrlOnSuccessfulLogin",
    "defaultRedirectUrlOnSuccessfullLogin",
    "sidCookieCustomAttributes",
    "refreshCookieCustomAttributes",
    "useProviderGroups",
];
const APP_KEYS_HANDLED_ELSEWHERE: &[(&str, &str)] = &[];
const CLAIMS_KEYS: &[&str] = &[
    "includeProviderUserId",
    "metadataFieldsToInclude",
    "metadataFieldsToIncluded",
];
const PROVIDER_KEYS: &[&str] = &[
    "type",
    "clientId",
    "clientSecret",
    "authUrl",
    "baseUrl",
    "scope",
    "order",
    "label",
    "userSettingsURL",
    "userSettingsUrl",
    "tenants",
    "logoutUrl",
    "providerToTokenClaims",
];
/// Provider keys read only for the plain OAuth2 types (`github`, `bitbucket`, `generic`).
const OAUTH2_PROVIDER_KEYS: &[&str] = &["tokenUrl", "userInfoUrl", "oidcKeys"];
const PROVIDER_KEYS_HANDLED_ELSEWHERE: &[(&str, &str)] = &[
    ("tokenUrl", "discovered from the issuer"),
    ("userInfoUrl", "discovered from the issuer"),
    ("skipRefreshProviderTokenOnMiaTokenRefresh", "no effect"),
    (
        "oidcKeys",
        "OIDC claims are read under their standard names (oidcKeys is for `generic`)",
    ),
];

/// Lists the keys idgate does not read, with their JSON paths.
pub(super) fn report_keys(value: &Value, shown: &str, notices: &mut MiaNotices) {
    let Some(top) = value.as_object() else {
        return;
    };
    for key in top.keys().filter(|k| *k != "apps") {
        notices
            .warnings
            .push(format!("{shown}: {key}: unknown key, ignored"));
    }
    let Some(apps) = top.get("apps").and_then(Value::as_object) else {
        return;
    };
    for (app_id, app) in apps {
        let Some(app) = app.as_object() else { continue };
        let base = format!("apps.{app_id}");
        check_object(
            app,
            &base,
            APP_KEYS,
            APP_KEYS_HANDLED_ELSEWHERE,
            shown,
            notices,
        );
        if let Some(claims) = app.get("customTokenClaims").and_then(Value::as_object) {
            check_object(
                claims,
                &format!("{base}.customTokenClaims"),
                CLAIMS_KEYS,
                &[],
                shown,
                notices,
            );
        }
        let providers = app.get("providers").and_then(Value::as_object);
        for (pid, p) in providers.into_iter().flatten() {
            if let Some(p) = p.as_object() {
                let path = format!("{base}.providers.{pid}");
                let oauth2 = matches!(
                    p.get("type").and_then(Value::as_str),
                    Some(
                        "github" | "bitbucket" | "bitbucket-cloud" | "bitbucket-server" | "generic"
                    )
                );
                let mut known = PROVIDER_KEYS.to_vec();
                if oauth2 {
                    known.extend_from_slice(OAUTH2_PROVIDER_KEYS);
                }
                check_object(
                    p,
                    &path,
                    &known,
                    PROVIDER_KEYS_HANDLED_ELSEWHERE,
                    shown,
                    notices,
                );
            }
        }
    }
}

fn check_object(
    object: &serde_json::Map<String, Value>,
    path: &str,
    known: &[&str],
    elsewhere: &[(&str, &str)],
    shown: &str,
    notices: &mut MiaNotices,
) {
    for key in object.keys() {
        if known.contains(&key.as_str()) {
            notices.applied.push(format!("{path}.{key}"));
            continue;
        }
        match elsewhere.iter().find(|(k, _)| k == key) {
            Some((_, how)) => notices.infos.push(format!("{shown}: {path}.{key}: {how}")),
            None => notices
                .warnings
                .push(format!("{shown}: {path}.{key}: unknown key, ignored")),
        }
    }
}
