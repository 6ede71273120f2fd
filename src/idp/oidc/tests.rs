//! Unit tests of the parent module, kept apart so the module itself stays readable.
use super::*;

#[test]
fn issuers_accepted_from_discovery() {
    use crate::config::ProviderKind::*;
    assert_eq!(
        issuer_rule(Auth0, "https://t.auth0.com", "https://t.auth0.com/"),
        Ok(IssuerRule::Exact)
    );
    assert!(issuer_rule(Keycloak, "https://a/realms/x", "https://a/realms/y").is_err());
    // B2C: the policy's discovery document announces the tenant's issuer.
    assert_eq!(
        issuer_rule(
            Microsoft,
            "https://c.b2clogin.com/c.onmicrosoft.com/B2C_1_signin/v2.0",
            "https://c.b2clogin.com/775527ff-9a37-4307-8b3d-cc311f58d925/v2.0/"
        ),
        Ok(IssuerRule::Exact)
    );
    // …but never another origin, and only for microsoft.
    assert!(issuer_rule(
        Microsoft,
        "https://c.b2clogin.com/c.onmicrosoft.com/B2C_1_signin/v2.0",
        "https://evil.example.com/v2.0/"
    )
    .is_err());
    assert!(issuer_rule(Oidc, "https://a/x", "https://a/y").is_err());
    let rule = issuer_rule(
        Microsoft,
        "https://login.microsoftonline.com/common/v2.0",
        "https://login.microsoftonline.com/{tenantid}/v2.0",
    );
    assert_eq!(
        rule,
        Ok(IssuerRule::Tenant {
            prefix: "https://login.microsoftonline.com/".into(),
            suffix: "/v2.0".into()
        })
    );
    let ok = |iss| matches_tenant(iss, "https://login.microsoftonline.com/", "/v2.0");
    assert!(ok(
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
    ));
    assert!(!ok("https://login.microsoftonline.com//v2.0"));
    assert!(!ok("https://login.microsoftonline.com/a/b/v2.0"));
    assert!(!ok("https://login.example.com/t/v2.0"));
}
