//! The step-up a login asks the IdP for, as query parameters of `/authorize` and `/web-login`
//! (`acr_values`, `max_age`, `prompt=login`): read with limits from the client, and written by
//! `/auth` into the login URL of a route that needs more (see `policy::StepUp`).

use std::collections::HashMap;

use crate::error::ApiError;
use crate::http::encode_query_value;
use crate::policy::{MAX_ACR_VALUES, MAX_ACR_VALUE_BYTES};
use crate::store::StepUpRequest;

/// The largest `max_age` a login may ask for, in seconds (a year).
const MAX_MAX_AGE: u64 = 366 * 24 * 3600;

/// The step-up a login asks the IdP for (`acr_values`, `max_age`, `prompt=login`), as `/auth`
/// writes them into the login URL for a route that needs more. A client may also write them:
/// they can only make the IdP ask more of the user, and what the route needs is checked again
/// on the session at `/auth`. Anything else in `prompt` is refused, and so are values past the
/// limits.
pub(super) fn step_up_request(q: &HashMap<String, String>) -> Result<StepUpRequest, ApiError> {
    let mut asked = StepUpRequest::default();
    if let Some(values) = q.get("acr_values").filter(|v| !v.is_empty()) {
        asked.acr_values = values
            .split(' ')
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        if asked.acr_values.len() > MAX_ACR_VALUES
            || !asked
                .acr_values
                .iter()
                .all(|v| crate::policy::is_acr_value(v))
        {
            return Err(ApiError::InvalidParam {
                name: "acr_values",
                reason: format!(
                    "at most {MAX_ACR_VALUES} space-separated values of at most \
                     {MAX_ACR_VALUE_BYTES} visible ASCII characters but `\"` and `\\`"
                ),
            });
        }
    }
    if let Some(max_age) = q.get("max_age").filter(|v| !v.is_empty()) {
        asked.max_age = Some(
            max_age
                .parse::<u64>()
                .ok()
                .filter(|a| *a <= MAX_MAX_AGE)
                .ok_or_else(|| ApiError::InvalidParam {
                    name: "max_age",
                    reason: format!("a whole number of seconds up to {MAX_MAX_AGE}"),
                })?,
        );
    }
    match q.get("prompt").map(String::as_str) {
        None | Some("") => {}
        Some("login") => asked.prompt_login = true,
        Some(_) => {
            return Err(ApiError::InvalidParam {
                name: "prompt",
                reason: "only `login` is accepted".into(),
            })
        }
    }
    Ok(asked)
}

/// The query parameters (`&acr_values=…&max_age=…&prompt=login`) of a login that asks the IdP
/// for what `step_up` needs; `prompt_login` when the IdP must log the user in again rather than
/// reuse its own session (which would keep the weaker `acr`).
pub(crate) fn step_up_query(step_up: &crate::policy::StepUp, prompt_login: bool) -> String {
    let asked = StepUpRequest {
        acr_values: step_up.acr_values.clone(),
        max_age: step_up.max_age,
        prompt_login,
        replaces: None,
    };
    request_query(&asked)
}

/// `asked` as query parameters to append (each starting with `&`).
pub(super) fn request_query(asked: &StepUpRequest) -> String {
    let mut query = String::new();
    if !asked.acr_values.is_empty() {
        query.push_str("&acr_values=");
        query.push_str(&encode_query_value(&asked.acr_values.join(" ")));
    }
    if let Some(max_age) = asked.max_age {
        query.push_str(&format!("&max_age={max_age}"));
    }
    if asked.prompt_login {
        query.push_str("&prompt=login");
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<StepUpRequest, ApiError> {
        step_up_request(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_step_up_is_read_and_written_back_the_same() {
        let asked = parse(&[
            ("acr_values", "urn:example:loa:2  loa3"),
            ("max_age", "600"),
            ("prompt", "login"),
        ])
        .unwrap();
        assert_eq!(asked.acr_values, ["urn:example:loa:2", "loa3"]);
        assert_eq!(asked.max_age, Some(600));
        assert!(asked.prompt_login);
        assert_eq!(
            request_query(&asked),
            "&acr_values=urn%3Aexample%3Aloa%3A2+loa3&max_age=600&prompt=login"
        );
        // Nothing asked, nothing written; empty values ask nothing.
        let none = parse(&[("acr_values", ""), ("max_age", ""), ("prompt", "")]).unwrap();
        assert!(none.is_empty());
        assert_eq!(request_query(&none), "");
    }

    #[test]
    fn hostile_step_up_parameters_are_refused_by_name() {
        let many = vec!["a"; MAX_ACR_VALUES + 1].join(" ");
        let long = "a".repeat(MAX_ACR_VALUE_BYTES + 1);
        let too_old = (MAX_MAX_AGE + 1).to_string();
        let cases: &[(&str, &str, &str)] = &[
            ("acr_values", &many, "acr_values"),
            ("acr_values", &long, "acr_values"),
            ("acr_values", "loa\u{7f}", "acr_values"),
            ("acr_values", "lo\"a", "acr_values"),
            ("max_age", "-1", "max_age"),
            ("max_age", "10m", "max_age"),
            ("max_age", &too_old, "max_age"),
            ("max_age", "99999999999999999999999", "max_age"),
            ("prompt", "none", "prompt"),
            ("prompt", "login consent", "prompt"),
        ];
        for (name, value, named) in cases {
            match parse(&[(name, value)]) {
                Err(ApiError::InvalidParam { name, .. }) => assert_eq!(name, *named, "{value:?}"),
                other => panic!("{name}={value:?}: {other:?}"),
            }
        }
        // At the limits: accepted.
        let at_most = vec!["a"; MAX_ACR_VALUES].join(" ");
        assert!(parse(&[("acr_values", &at_most)]).is_ok());
        assert!(parse(&[("max_age", &MAX_MAX_AGE.to_string())]).is_ok());
    }
}
