//! The checks on what an OpenID Connect IdP signed, beyond the signature and the claims
//! `openidconnect` and `jsonwebtoken` verify: the id_token's `iat` (not ahead of our clock)
//! and `azp` (OIDC Core 3.1.3.7 steps 4, 5, 10), which `openidconnect` leaves to the
//! client; the back-channel logout token's header `typ`,
//! `iat` window and single use (its store key and how long to keep it); which e-mail address
//! may be passed on given `email_verified`; a `microsoft` provider's tenant allow-list. Pure
//! functions, so each rule is unit-tested on its own; `oidc` applies them.

use super::IssuerRule;

/// The event a back-channel logout token carries.
pub(super) const BACKCHANNEL_LOGOUT_EVENT: &str =
    "http://schemas.openid.net/event/backchannel-logout";

/// Oldest a back-channel logout token may be (seconds since its `iat`). The IdP sends it when
/// the user logs out; a few minutes cover slow deliveries and its retries.
pub const LOGOUT_TOKEN_MAX_AGE: i64 = 300;

/// How far ahead of our clock a logout token's `iat` may be, and how far behind its `exp`.
pub const LOGOUT_CLOCK_SKEW: i64 = 30;

/// How far ahead of our clock an id_token's `iat` may be: an IdP's clock a little fast is
/// normal, a token issued ten minutes from now is not.
pub const ID_TOKEN_CLOCK_SKEW: i64 = 60;

/// Checks an id_token's `iat` (seconds) against `now`: not more than [`ID_TOKEN_CLOCK_SKEW`]
/// ahead. How old it may be is `exp`'s business.
pub(super) fn check_id_token_iat(iat: i64, now: i64) -> Result<(), String> {
    if iat > now + ID_TOKEN_CLOCK_SKEW {
        return Err(format!(
            "iat is {}s in the future (more than the {ID_TOKEN_CLOCK_SKEW}s allowed)",
            iat - now
        ));
    }
    Ok(())
}

/// Checks an id_token's `azp` (OIDC Core 3.1.3.7 steps 4 and 5): when present it must be our
/// client id, and a token for several audiences must name us in it. (`openidconnect` already
/// refuses audiences besides ours; this holds even if that ever changes.)
pub(super) fn check_azp(
    azp: Option<&str>,
    audiences: usize,
    client_id: &str,
) -> Result<(), String> {
    match azp {
        Some(azp) if azp != client_id => {
            Err(format!("azp `{azp}` is not this client (`{client_id}`)"))
        }
        None if audiences > 1 => Err("several audiences and no azp".into()),
        _ => Ok(()),
    }
}

/// The claims of a back-channel logout token that idgate acts on.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LogoutClaims {
    pub iss: String,
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: Option<String>,
    /// A JSON NumericDate, which may have a fraction.
    pub iat: Option<f64>,
    #[serde(default)]
    pub events: serde_json::Map<String, serde_json::Value>,
    pub nonce: Option<String>,
    /// Microsoft's tenant id.
    pub tid: Option<String>,
}

impl LogoutClaims {
    /// The store key that makes this token single-use: issuer and `jti`, hashed (bounded length,
    /// no characters a store treats specially).
    pub fn replay_key(&self) -> String {
        let jti = self.jti.as_deref().unwrap_or_default();
        format!(
            "backchannel-jti:{}",
            // Length-prefixed, so no (issuer, jti) pair hashes like another.
            crate::crypto::hash_token(&format!("{}:{}{jti}", self.iss.len(), self.iss))
        )
    }

    /// Until when the `jti` must be remembered: the end of the token's acceptance window, after
    /// which the `iat` check refuses it anyway.
    pub fn remember_until(&self) -> i64 {
        self.iat.map_or(0, |iat| iat.ceil() as i64) + LOGOUT_TOKEN_MAX_AGE + 1
    }
}

/// Whether a logout token's header `typ` is acceptable: absent, `JWT`, or `logout+jwt` (the
/// media type Back-Channel Logout 1.0 §2.4 recommends), case-insensitively and with or without
/// the `application/` prefix (RFC 7515 §4.1.9). Anything else is another kind of token.
pub(super) fn logout_typ_ok(typ: Option<&str>) -> bool {
    let Some(typ) = typ else { return true };
    let typ = typ.to_ascii_lowercase();
    let typ = typ.strip_prefix("application/").unwrap_or(&typ);
    matches!(typ, "jwt" | "logout+jwt")
}

/// Checks a logout token's `iat` against `now` (see [`LOGOUT_TOKEN_MAX_AGE`]).
pub(super) fn check_logout_iat(iat: Option<f64>, now: i64) -> Result<(), &'static str> {
    let iat = iat.ok_or("iat is missing")?;
    if !iat.is_finite() {
        return Err("iat is not a date");
    }
    if iat > (now + LOGOUT_CLOCK_SKEW) as f64 {
        return Err("iat is in the future");
    }
    if iat < (now - LOGOUT_TOKEN_MAX_AGE) as f64 {
        return Err("the token is too old (iat)");
    }
    Ok(())
}

/// The e-mail address to keep, from the id_token's and userinfo's `email` and
/// `email_verified`: userinfo's address wins when it has one; an address any source marks
/// unverified — or any `email_verified: false` sent without an address — is dropped; an absent
/// flag keeps the address.
pub(super) fn verified_email(
    id_token: (Option<String>, Option<bool>),
    userinfo: (Option<String>, Option<bool>),
) -> Option<String> {
    let email = userinfo.0.clone().or_else(|| id_token.0.clone())?;
    let refuses = |(address, verified): &(Option<String>, Option<bool>)| {
        *verified == Some(false) && address.as_ref().is_none_or(|a| *a == email)
    };
    if refuses(&id_token) || refuses(&userinfo) {
        return None;
    }
    Some(email)
}

/// Checks a token's tenant against a `microsoft` provider's allow-list. The tenant is the one
/// in `iss` under the multi-tenant issuer rule, and the `tid` claim; when both are there they
/// must agree.
pub(super) fn check_tenant(
    allowed: &[String],
    rule: &IssuerRule,
    iss: &str,
    tid: Option<&str>,
) -> Result<(), String> {
    let in_iss = match rule {
        IssuerRule::Tenant { prefix, suffix } => iss
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.strip_suffix(suffix.as_str())),
        IssuerRule::Exact => None,
    };
    if allowed.is_empty() {
        return match rule {
            IssuerRule::Exact => Ok(()),
            IssuerRule::Tenant { .. } => Err(
                "the issuer is multi-tenant and the provider lists no `tenants`: refused".into(),
            ),
        };
    }
    let tenant = match (in_iss, tid) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Err(format!("tid `{b}` is not the tenant of the issuer `{iss}`"))
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => return Err("the token names no tenant (no `tid` claim)".into()),
    };
    if allowed.iter().any(|t| t.eq_ignore_ascii_case(tenant)) {
        Ok(())
    } else {
        Err(format!(
            "tenant `{tenant}` is not one of the provider's `tenants`"
        ))
    }
}

/// A claim of a JWT whose signature was already checked, read from its payload (for claims the
/// `openidconnect` types do not carry, such as Microsoft's `tid`).
pub(super) fn verified_payload_claim(jwt: &str, name: &str) -> Option<serde_json::Value> {
    verified_payload(jwt)?.remove(name)
}

/// Every claim of a JWT whose signature and claims were already verified (see
/// [`verified_payload_claim`]).
pub(super) fn verified_payload(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_token_iat_and_azp() {
        let now = 1_700_000_000;
        assert_eq!(check_id_token_iat(now, now), Ok(()));
        assert_eq!(check_id_token_iat(now - 3600, now), Ok(()));
        assert_eq!(check_id_token_iat(now + ID_TOKEN_CLOCK_SKEW, now), Ok(()));
        assert!(check_id_token_iat(now + ID_TOKEN_CLOCK_SKEW + 1, now).is_err());
        assert_eq!(check_azp(None, 1, "idgate"), Ok(()));
        assert_eq!(check_azp(Some("idgate"), 1, "idgate"), Ok(()));
        assert_eq!(check_azp(Some("idgate"), 2, "idgate"), Ok(()));
        assert!(check_azp(Some("other"), 1, "idgate").is_err());
        assert!(check_azp(Some("Idgate"), 1, "idgate").is_err());
        assert!(check_azp(None, 2, "idgate").is_err());
    }

    #[test]
    fn logout_token_typ_and_iat_window() {
        for typ in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("logout+jwt"),
            Some("application/logout+JWT"),
        ] {
            assert!(logout_typ_ok(typ), "{typ:?}");
        }
        for typ in [
            "at+jwt",
            "secevent+jwt",
            "id_token+jwt",
            "",
            "logout+jwt;x",
            "JOSE",
        ] {
            assert!(!logout_typ_ok(Some(typ)), "{typ}");
        }
        let now = 1_700_000_000;
        assert_eq!(check_logout_iat(Some(now as f64), now), Ok(()));
        assert_eq!(
            check_logout_iat(Some((now - LOGOUT_TOKEN_MAX_AGE) as f64), now),
            Ok(())
        );
        assert_eq!(
            check_logout_iat(Some((now + LOGOUT_CLOCK_SKEW) as f64), now),
            Ok(())
        );
        assert!(check_logout_iat(Some((now - LOGOUT_TOKEN_MAX_AGE - 1) as f64), now).is_err());
        assert!(check_logout_iat(Some((now + LOGOUT_CLOCK_SKEW + 1) as f64), now).is_err());
        assert!(check_logout_iat(None, now).is_err());
        assert!(check_logout_iat(Some(f64::NAN), now).is_err());
    }

    #[test]
    fn logout_tokens_are_remembered_by_issuer_and_jti_for_their_window() {
        let claims = |iss: &str, jti: &str| LogoutClaims {
            iss: iss.into(),
            sub: Some("u".into()),
            sid: None,
            jti: Some(jti.into()),
            iat: Some(1_700_000_000.5),
            events: serde_json::Map::new(),
            nonce: None,
            tid: None,
        };
        let a = claims("https://idp.example", "j1");
        assert_eq!(
            a.replay_key(),
            claims("https://idp.example", "j1").replay_key()
        );
        assert_ne!(
            a.replay_key(),
            claims("https://other.example", "j1").replay_key()
        );
        assert_ne!(
            a.replay_key(),
            claims("https://idp.example", "j2").replay_key()
        );
        // No ambiguity where the issuer ends and the jti starts.
        assert_ne!(
            claims("a", "b\nc").replay_key(),
            claims("a\nb", "c").replay_key()
        );
        assert!(a.replay_key().len() < 80 && !a.replay_key().contains(['*', '?', '[', ' ']));
        // Remembered until the window ends: past that, the iat check refuses the token.
        let until = a.remember_until();
        assert_eq!(until, 1_700_000_001 + LOGOUT_TOKEN_MAX_AGE + 1);
        assert!(check_logout_iat(a.iat, until).is_err());
        assert!(check_logout_iat(a.iat, until - 2).is_ok());
    }

    #[test]
    fn unverified_emails_are_dropped() {
        let some = |s: &str| Some(s.to_owned());
        // Absent flags keep the address, userinfo's winning.
        assert_eq!(
            verified_email((some("a@x"), None), (None, None)),
            some("a@x")
        );
        assert_eq!(
            verified_email((some("a@x"), None), (some("b@x"), None)),
            some("b@x")
        );
        assert_eq!(
            verified_email((some("a@x"), Some(true)), (None, None)),
            some("a@x")
        );
        // `false` in the id_token, in userinfo, or a bare `false`: dropped.
        assert_eq!(
            verified_email((some("a@x"), Some(false)), (None, None)),
            None
        );
        assert_eq!(
            verified_email((some("a@x"), None), (some("a@x"), Some(false))),
            None
        );
        assert_eq!(
            verified_email((some("a@x"), Some(true)), (some("b@x"), Some(false))),
            None
        );
        assert_eq!(
            verified_email((some("a@x"), Some(false)), (some("a@x"), None)),
            None
        );
        assert_eq!(
            verified_email((some("a@x"), None), (None, Some(false))),
            None
        );
        // userinfo verifies another address than the id_token's unverified one: that one is kept.
        assert_eq!(
            verified_email((some("a@x"), Some(false)), (some("b@x"), Some(true))),
            some("b@x")
        );
        assert_eq!(verified_email((None, None), (None, None)), None);
    }

    #[test]
    fn microsoft_tenants_are_checked() {
        let t1 = "775527ff-9a37-4307-8b3d-cc311f58d925";
        let t2 = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let multi = IssuerRule::Tenant {
            prefix: "https://login.microsoftonline.com/".into(),
            suffix: "/v2.0".into(),
        };
        let iss = |t: &str| format!("https://login.microsoftonline.com/{t}/v2.0");
        let allowed = [t1.to_owned()];
        assert_eq!(check_tenant(&allowed, &multi, &iss(t1), Some(t1)), Ok(()));
        assert_eq!(check_tenant(&allowed, &multi, &iss(t1), None), Ok(()));
        assert_eq!(
            check_tenant(&allowed, &multi, &iss(&t1.to_uppercase()), None),
            Ok(())
        );
        assert!(check_tenant(&allowed, &multi, &iss(t2), Some(t2)).is_err());
        assert!(check_tenant(&allowed, &multi, &iss(t2), None).is_err());
        // tid and iss disagree: refused, whichever is listed.
        assert!(check_tenant(&allowed, &multi, &iss(t1), Some(t2)).is_err());
        assert!(check_tenant(&allowed, &multi, &iss(t2), Some(t1)).is_err());
        // A multi-tenant issuer without a list: refused.
        assert!(check_tenant(&[], &multi, &iss(t1), Some(t1)).is_err());
        // One tenant's issuer: no list, no check; a list: `tid` must be there and listed.
        assert_eq!(
            check_tenant(&[], &IssuerRule::Exact, &iss(t2), None),
            Ok(())
        );
        assert_eq!(
            check_tenant(&allowed, &IssuerRule::Exact, &iss(t1), Some(t1)),
            Ok(())
        );
        assert!(check_tenant(&allowed, &IssuerRule::Exact, &iss(t2), Some(t2)).is_err());
        assert!(check_tenant(&allowed, &IssuerRule::Exact, &iss(t1), None).is_err());
    }

    #[test]
    fn payload_claims_are_read_from_the_jwt() {
        use base64::Engine as _;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"tid":"t-1","sub":"s"}"#)
        );
        assert_eq!(
            verified_payload_claim(&jwt, "tid"),
            Some(serde_json::json!("t-1"))
        );
        assert_eq!(verified_payload_claim(&jwt, "nope"), None);
        assert_eq!(verified_payload_claim("garbage", "tid"), None);
    }
}
