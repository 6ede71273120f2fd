//! Step-up at the identity provider: what a login asks beyond a plain login (`acr_values`,
//! `max_age`, `prompt=login`; OIDC Core §3.1.2.1, RFC 9470) and the check that the id_token's
//! answer (`acr`, `amr`, `auth_time`) is what was asked. The route rules decide when a session
//! falls short (`policy::StepUp`); this is the IdP's side of it.

use crate::jwt::Authn;
use crate::store::StepUpRequest;

/// The most `amr` entries a login may assert, and the longest `acr` or `amr` entry, in bytes:
/// they travel in every token of the session.
pub const MAX_AMR: usize = 16;
pub const MAX_AUTHN_VALUE_BYTES: usize = 256;

/// How far an `auth_time` may be in the future (the IdP's clock ahead of ours), in seconds.
const AUTH_TIME_SKEW: i64 = 60;

/// `acr`, `amr` and `auth_time` of a verified id_token, checked for size: a login asserting
/// more is refused, as one asserting too many groups is.
pub fn authn_of(
    acr: Option<&str>,
    amr: Vec<String>,
    auth_time: Option<i64>,
) -> Result<Authn, String> {
    if acr.is_some_and(|a| a.len() > MAX_AUTHN_VALUE_BYTES) {
        return Err(format!(
            "its acr is longer than {MAX_AUTHN_VALUE_BYTES} bytes"
        ));
    }
    if amr.len() > MAX_AMR || amr.iter().any(|m| m.len() > MAX_AUTHN_VALUE_BYTES) {
        return Err(format!(
            "its amr has more than {MAX_AMR} entries or one longer than {MAX_AUTHN_VALUE_BYTES} bytes"
        ));
    }
    Ok(Authn {
        acr: acr.map(str::to_owned),
        amr,
        auth_time,
    })
}

/// Whether the IdP's answer `got` meets what the login `asked`, at `now`: an `acr` among the
/// asked values, and an `auth_time` within `max_age` (OIDC Core §3.1.2.1: with `max_age` the
/// id_token must carry `auth_time`). The error says what fell short, for the log and the
/// person's error page.
pub fn check(asked: &StepUpRequest, got: &Authn, now: i64) -> Result<(), String> {
    if !asked.acr_values.is_empty() {
        match &got.acr {
            Some(acr) if asked.acr_values.iter().any(|v| v == acr) => {}
            Some(acr) => {
                return Err(format!(
                "the identity provider authenticated at level `{acr}`, not one of the asked `{}`",
                asked.acr_values.join(" ")
            ))
            }
            None => {
                return Err(
                    "the identity provider did not say how it authenticated (no acr)".into(),
                )
            }
        }
    }
    if let Some(max_age) = asked.max_age {
        let Some(auth_time) = got.auth_time else {
            return Err(
                "the identity provider did not say when it authenticated (no auth_time)".into(),
            );
        };
        if auth_time > now + AUTH_TIME_SKEW {
            return Err("the identity provider's auth_time is in the future".into());
        }
        if now - auth_time > max_age as i64 + AUTH_TIME_SKEW {
            return Err(format!(
                "the identity provider's login is {}s old, more than the asked {max_age}s",
                now - auth_time
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(acr: &[&str], max_age: Option<u64>) -> StepUpRequest {
        StepUpRequest {
            acr_values: acr.iter().map(|a| a.to_string()).collect(),
            max_age,
            prompt_login: false,
            replaces: None,
        }
    }

    fn got(acr: Option<&str>, auth_time: Option<i64>) -> Authn {
        Authn {
            acr: acr.map(str::to_owned),
            amr: vec![],
            auth_time,
        }
    }

    #[test]
    fn the_acr_must_be_one_asked_for() {
        let a = asked(&["loa1", "loa2"], None);
        assert!(check(&a, &got(Some("loa2"), None), 0).is_ok());
        assert!(check(&a, &got(Some("loa1"), None), 0).is_ok());
        assert!(check(&a, &got(Some("loa0"), None), 0).is_err());
        assert!(check(&a, &got(None, None), 0).is_err());
        // Nothing asked: anything goes.
        assert!(check(&asked(&[], None), &got(None, None), 0).is_ok());
    }

    #[test]
    fn the_login_must_be_recent_and_say_when() {
        let now = 1_000_000;
        let a = asked(&[], Some(600));
        assert!(check(&a, &got(None, Some(now - 600)), now).is_ok());
        assert!(check(&a, &got(None, Some(now - 600 - AUTH_TIME_SKEW)), now).is_ok());
        assert!(check(&a, &got(None, Some(now - 601 - AUTH_TIME_SKEW)), now).is_err());
        assert!(check(&a, &got(None, None), now).is_err(), "no auth_time");
        assert!(
            check(&a, &got(None, Some(now + AUTH_TIME_SKEW + 1)), now).is_err(),
            "in the future"
        );
    }

    #[test]
    fn oversized_assertions_are_refused() {
        let long = "x".repeat(MAX_AUTHN_VALUE_BYTES + 1);
        assert!(authn_of(Some(&long), vec![], None).is_err());
        assert!(authn_of(None, vec![long], None).is_err());
        assert!(authn_of(None, vec!["otp".into(); MAX_AMR + 1], None).is_err());
        let ok = authn_of(Some("loa2"), vec!["pwd".into(), "otp".into()], Some(5)).unwrap();
        assert_eq!(ok.acr.as_deref(), Some("loa2"));
        assert_eq!(ok.amr, ["pwd", "otp"]);
    }
}
