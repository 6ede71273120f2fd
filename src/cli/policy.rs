//! `idgate check-policy`: how the route rules of a config decide one request, explained — the
//! same decision and explanation `/auth` logs at debug level, for an operator asking "why was
//! I refused?" without a session at hand. Prints one JSON object; exits 0 when the request
//! would pass, 1 when not.

use std::path::Path;

use serde_json::json;

use super::Failure;
use crate::config::Config;
use crate::policy::{Context, Decision};

/// Who asks, and for what (`idgate check-policy --help`).
#[derive(Debug, clap::Args)]
pub struct CheckPolicy {
    /// The request's method (GET, POST, …).
    #[arg(long)]
    method: String,
    /// The request's path, with its query if any, as Nginx receives it.
    #[arg(long)]
    path: String,
    /// The session's groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// The session's permissions, comma-separated.
    #[arg(long, value_delimiter = ',')]
    permissions: Vec<String>,
    /// The `acr` of the session's login.
    #[arg(long)]
    acr: Option<String>,
    /// The `amr` of the session's login, comma-separated.
    #[arg(long, value_delimiter = ',')]
    amr: Vec<String>,
    /// Seconds since the session's login at the IdP.
    #[arg(long)]
    auth_age: Option<i64>,
    /// The client type (of the location, or of an API key).
    #[arg(long)]
    client_type: Option<String>,
    /// A backoffice request (`isbackoffice: true`).
    #[arg(long)]
    backoffice: bool,
    /// No session at all.
    #[arg(long, conflicts_with_all = ["groups", "permissions", "acr", "amr", "auth_age"])]
    anonymous: bool,
}

/// Runs `check-policy`: prints the explanation; a request that would not pass is a
/// [`Failure::Refused`] (exit 1, the JSON already printed).
pub(super) fn check(config: &Path, args: &CheckPolicy) -> Result<(), Failure> {
    let config = Config::load(config)?;
    let explained = explain(&config.policy, args);
    println!("{explained}");
    if explained["decision"] == "allow" {
        Ok(())
    } else {
        Err(Failure::Refused)
    }
}

/// The decision for `args` under `policy`, as the JSON object `check-policy` prints.
fn explain(policy: &crate::policy::RouteTable, args: &CheckPolicy) -> serde_json::Value {
    let ctx = Context {
        session: !args.anonymous,
        groups: &args.groups,
        permissions: &args.permissions,
        client_type: args.client_type.as_deref(),
        is_backoffice: args.backoffice,
        acr: args.acr.as_deref(),
        amr: &args.amr,
        auth_age: args.auth_age,
    };
    let method = args.method.to_ascii_uppercase();
    let verdict = policy.judge(&method, &args.path, None, &ctx);
    let decision = match verdict.decision {
        Decision::Allow | Decision::Unchecked => "allow",
        Decision::Forbidden => "forbidden",
        Decision::Unauthenticated | Decision::StepUp => "unauthenticated",
    };
    let mut out = json!({
        "decision": decision,
        "reason": verdict.reason.describe(),
        "route": null,
        "method": null,
        "expression": null,
    });
    if let Some(rule) = verdict.rule {
        let o = &rule.origin;
        out["route"] = json!(o.path);
        out["method"] = json!(o.method);
        out["expression"] = json!(o.expression);
        out["source"] = json!(o.source);
        out["backoffice"] = json!(o.backoffice);
        out["public"] = json!(rule.public);
        if let Some(step_up) = &rule.step_up {
            out["step_up"] = json!({
                "acr_values": step_up.acr_values,
                "max_age": step_up.max_age,
                "met": verdict.decision != Decision::StepUp,
            });
        }
    }
    if verdict.decision == Decision::Unchecked {
        // Lenient mode: the upstream gets the request marked `mia-allowed: 0`, and decides.
        out["unchecked"] = json!(true);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{RawRoute, RouteTable};
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        args: CheckPolicy,
    }

    fn args(line: &[&str]) -> CheckPolicy {
        Args::parse_from(std::iter::once("check-policy").chain(line.iter().copied())).args
    }

    fn table() -> RouteTable {
        let route = |path: &str, expression: &str, acr: &[&str], max_age: Option<&str>| RawRoute {
            path: path.into(),
            methods: vec!["GET".into(), "POST".into()],
            expression: expression.into(),
            public: false,
            backoffice_expression: None,
            backoffice_public: false,
            acr_values: acr.iter().map(|a| a.to_string()).collect(),
            max_age: max_age.map(str::to_owned),
        };
        RouteTable::build(
            None,
            &[
                route("/admin/", "groups.admin", &[], None),
                route("/pay/", "true", &["loa2"], Some("10m")),
                route("/otp/", r#""otp" in amr && authAge < 300"#, &[], None),
            ],
            true,
        )
        .unwrap()
    }

    #[test]
    fn every_decision_is_explained() {
        let t = table();
        let allow = explain(
            &t,
            &args(&[
                "--method", "get", "--path", "/admin/x", "--groups", "admin,x",
            ]),
        );
        assert_eq!(allow["decision"], "allow");
        assert_eq!(allow["route"], "/admin/");
        assert_eq!(allow["method"], "GET");
        assert_eq!(allow["expression"], "groups.admin");
        let forbidden = explain(
            &t,
            &args(&["--method", "GET", "--path", "/admin/x", "--groups", "x"]),
        );
        assert_eq!(forbidden["decision"], "forbidden");
        assert_eq!(forbidden["route"], "/admin/");
        let anonymous = explain(
            &t,
            &args(&["--method", "GET", "--path", "/admin/x", "--anonymous"]),
        );
        assert_eq!(anonymous["decision"], "unauthenticated");
        let method = explain(
            &t,
            &args(&[
                "--method", "DELETE", "--path", "/admin/x", "--groups", "admin",
            ]),
        );
        assert_eq!(method["decision"], "forbidden");
        assert_eq!(method["route"], serde_json::Value::Null);
        assert_eq!(
            method["reason"],
            "the deciding route has no rule for this method"
        );
        let uncovered = explain(&t, &args(&["--method", "GET", "--path", "/elsewhere"]));
        assert_eq!(uncovered["decision"], "unauthenticated");
        assert_eq!(uncovered["reason"], "no route rule covers this path");
    }

    #[test]
    fn step_up_and_login_strength_are_explained() {
        let t = table();
        let weak = explain(
            &t,
            &args(&[
                "--method",
                "GET",
                "--path",
                "/pay/1",
                "--acr",
                "loa1",
                "--auth-age",
                "5",
            ]),
        );
        assert_eq!(weak["decision"], "unauthenticated");
        assert_eq!(weak["step_up"]["acr_values"], json!(["loa2"]));
        assert_eq!(weak["step_up"]["max_age"], 600);
        assert_eq!(weak["step_up"]["met"], false);
        let old = explain(
            &t,
            &args(&[
                "--method",
                "GET",
                "--path",
                "/pay/1",
                "--acr",
                "loa2",
                "--auth-age",
                "601",
            ]),
        );
        assert_eq!(old["decision"], "unauthenticated");
        let strong = explain(
            &t,
            &args(&[
                "--method",
                "GET",
                "--path",
                "/pay/1",
                "--acr",
                "loa2",
                "--auth-age",
                "600",
            ]),
        );
        assert_eq!(strong["decision"], "allow");
        assert_eq!(strong["step_up"]["met"], true);
        let unknown_age = explain(
            &t,
            &args(&["--method", "GET", "--path", "/pay/1", "--acr", "loa2"]),
        );
        assert_eq!(
            unknown_age["decision"], "unauthenticated",
            "an unknown age never meets max_age"
        );
        // In the expression language: `amr` and `authAge`, a plain 403 when they fall short.
        let otp = explain(
            &t,
            &args(&[
                "--method",
                "GET",
                "--path",
                "/otp/",
                "--amr",
                "pwd,otp",
                "--auth-age",
                "10",
            ]),
        );
        assert_eq!(otp["decision"], "allow");
        let no_otp = explain(
            &t,
            &args(&[
                "--method",
                "GET",
                "--path",
                "/otp/",
                "--amr",
                "pwd",
                "--auth-age",
                "10",
            ]),
        );
        assert_eq!(no_otp["decision"], "forbidden");
        let stale = explain(
            &t,
            &args(&[
                "--method",
                "GET",
                "--path",
                "/otp/",
                "--amr",
                "otp",
                "--auth-age",
                "300",
            ]),
        );
        assert_eq!(stale["decision"], "forbidden");
    }
}
