//! Fuzz entry points for what an OpenID Connect provider sends (see `crate::fuzz`): the
//! discovery document, the JWKS, an id_token's claims and a back-channel `logout_token`. Each
//! runs the parsing and the checks idgate applies to the real thing, after the network and the
//! signature (which the fuzzer cannot produce), and asserts what the checks promise.

// Fuzz entry points fail by panicking: that is how libFuzzer and the replay test see a bug.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use openidconnect::ProviderMetadataWithLogout;

use super::checks::{
    check_azp, check_id_token_iat, check_logout_iat, check_tenant, logout_typ_ok, verified_email,
    verified_payload, verified_payload_claim, LogoutClaims,
};
use super::{issuer_rule, key_in, matches_tenant, IssuerRule};
use crate::config::ProviderKind;

const CONFIGURED: &[(ProviderKind, &str)] = &[
    (
        ProviderKind::Keycloak,
        "https://sso.example.com/realms/main",
    ),
    (
        ProviderKind::Microsoft,
        "https://login.microsoftonline.com/common/v2.0",
    ),
];

fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin())
}

/// A discovery document: whatever issuer it announces, idgate either refuses it or accepts
/// exactly the configured issuer, or (Microsoft) a tenant template on the configured origin
/// whose every matching issuer stays on that origin.
pub fn discovery(data: &[u8]) {
    let Ok(meta) = serde_json::from_slice::<ProviderMetadataWithLogout>(data) else {
        return;
    };
    let announced = meta.issuer().as_str();
    for &(kind, configured) in CONFIGURED {
        match issuer_rule(kind, configured, announced) {
            Err(_) => {}
            Ok(IssuerRule::Exact) => assert!(
                configured.trim_end_matches('/') == announced.trim_end_matches('/')
                    || (kind == ProviderKind::Microsoft
                        && origin(announced).is_some()
                        && origin(announced) == origin(configured)),
                "{announced} accepted for {configured}"
            ),
            Ok(IssuerRule::Tenant { prefix, suffix }) => {
                assert_eq!(kind, ProviderKind::Microsoft);
                for tenant in [
                    "9188040d-6c67-4c5b-b112-36a304b66dad",
                    "a",
                    "x.y",
                    "@evil.test",
                ] {
                    let iss = format!("{prefix}{tenant}{suffix}");
                    if matches_tenant(&iss, &prefix, &suffix) {
                        assert_eq!(
                            origin(&iss),
                            origin(configured),
                            "tenant issuer {iss} leaves {configured}'s origin"
                        );
                    }
                }
            }
        }
    }
}

/// A JWKS: any set parses or is refused without a panic; a key is found by its `kid` only.
pub fn jwks(data: &[u8]) {
    let _ = serde_json::from_slice::<openidconnect::core::CoreJsonWebKeySet>(data);
    let Ok(set) = serde_json::from_slice::<jsonwebtoken::jwk::JwkSet>(data) else {
        return;
    };
    for kid in ["k1", ""] {
        if key_in(&set, Some(kid)).is_some() {
            assert!(set
                .keys
                .iter()
                .any(|k| k.common.key_id.as_deref() == Some(kid)));
        }
    }
    if key_in(&set, None).is_some() {
        assert_eq!(
            set.keys.len(),
            1,
            "no kid picks a key only from a one-key set"
        );
    }
}

/// An id_token (its signature taken as checked): the claims idgate reads from its payload, the
/// tenant, `azp`, `iat` and e-mail checks, and the IdP's groups (`use_provider_groups`).
pub fn id_token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = verified_payload_claim(&text, "tid");
    let Some(claims) = verified_payload(&text) else {
        return;
    };
    let str_of = |name: &str| claims.get(name).and_then(|v| v.as_str());
    let iss = str_of("iss").unwrap_or_default();
    let rule = IssuerRule::Tenant {
        prefix: "https://login.microsoftonline.com/".into(),
        suffix: "/v2.0".into(),
    };
    let allowed = vec!["9188040d-6c67-4c5b-b112-36a304b66dad".to_string()];
    if check_tenant(&allowed, &rule, iss, str_of("tid")).is_ok() {
        // Accepted: the issuer's tenant or the `tid` is on the list, and they do not disagree.
        let in_iss = iss
            .strip_prefix("https://login.microsoftonline.com/")
            .and_then(|r| r.strip_suffix("/v2.0"));
        let tenant = in_iss.or(str_of("tid"));
        assert!(tenant.is_some_and(|t| t.eq_ignore_ascii_case(&allowed[0])));
    }
    assert!(check_tenant(&[], &rule, iss, str_of("tid")).is_err());
    let audiences = match claims.get("aud") {
        Some(serde_json::Value::Array(a)) => a.len(),
        Some(_) => 1,
        None => 0,
    };
    if check_azp(str_of("azp"), audiences, "idgate").is_ok() {
        assert!(str_of("azp").is_none_or(|a| a == "idgate"));
    }
    if let Some(iat) = claims.get("iat").and_then(|v| v.as_i64()) {
        let _ = check_id_token_iat(iat, crate::now_secs());
    }
    let email = (
        str_of("email").map(str::to_owned),
        claims.get("email_verified").and_then(|v| v.as_bool()),
    );
    if let Some(kept) = verified_email(email.clone(), (None, None)) {
        assert_eq!(Some(kept), email.0);
        assert_ne!(email.1, Some(false), "an unverified address is never kept");
    }
    if let Ok(groups) = crate::idp::idp_groups(claims.get("groups")) {
        assert!(groups.len() <= crate::idp::MAX_IDP_GROUPS);
        for (i, g) in groups.iter().enumerate() {
            assert!(!g.is_empty() && g.len() <= crate::idp::MAX_IDP_GROUP_BYTES);
            assert!(!groups[..i].contains(g), "a group kept twice");
        }
    }
}

/// A back-channel `logout_token` (its signature taken as checked): the header's `typ`, the
/// claims idgate reads, the `iat` window and the replay key.
pub fn logout_token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(header) = jsonwebtoken::decode_header(text.as_bytes()) {
        let ok = logout_typ_ok(header.typ.as_deref());
        if let Some(typ) = header.typ.as_deref() {
            let t = typ.to_ascii_lowercase();
            assert_eq!(
                ok,
                matches!(
                    t.as_str(),
                    "jwt" | "logout+jwt" | "application/jwt" | "application/logout+jwt"
                )
            );
        }
    }
    let Some(payload) = verified_payload(&text) else {
        return;
    };
    let Ok(claims) = serde_json::from_value::<LogoutClaims>(serde_json::Value::Object(payload))
    else {
        return;
    };
    let now = crate::now_secs();
    if check_logout_iat(claims.iat, now).is_ok() {
        let iat = claims.iat.unwrap_or(f64::NAN);
        assert!(iat.is_finite() && iat <= (now + super::checks::LOGOUT_CLOCK_SKEW) as f64);
        // Only a token that passed the checks is remembered.
        assert!(claims.remember_until() > now);
    }
    let key = claims.replay_key();
    assert!(key.starts_with("backchannel-jti:") && key.len() < 128);
}
