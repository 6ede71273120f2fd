//! Scoped tokens for upstreams end to end through the real Nginx: two locations name two
//! audiences (`set $idgate_audience …` with idgate-headers-token.conf); the upstream (the echo
//! app, this test verifying what it received as an upstream would, with idgate's JWKS and its
//! own `aud`) accepts the token minted for it and refuses the other's; lifetimes stay within
//! 5 minutes, claims within the audience's list; a client cannot choose an audience by sending
//! the header itself; an audience the app does not configure is refused; a scoped token is no
//! session.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
use serde_json::Value;

fn location(path: &str, audience: Option<&str>) -> String {
    let nginx = repo().join("nginx");
    let set = audience.map_or(String::new(), |a| {
        format!("        set $idgate_audience \"{a}\";\n")
    });
    format!(
        "    location {path} {{\n{set}        include {n}/idgate-protect.conf;\n        include {n}/idgate-headers-token.conf;\n        proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
        n = nginx.display()
    )
}

/// What the upstream of `audience` does with the bearer token it received: verify it with
/// idgate's JWKS, requiring its own audience. The claims, or the verifier's refusal.
fn verify_as(jwks: &JwkSet, token: &str, audience: &str) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let jwk = jwks
        .find(header.kid.as_deref().ok_or("no kid")?)
        .ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_upstream_gets_a_token_for_itself_alone() {
    let locations = [
        location("/orders/", Some("orders")),
        location("/billing/", Some("billing")),
        location("/plain/", None),
        location("/nowhere/", Some("unlisted")),
    ]
    .concat();
    let stack = Stack::start_with(Setup {
        extra_app:
            "[apps.web.audiences.orders]\nclaims = [\"sub\", \"groups\"]\nlifetime = \"2m\"\n\
                    [apps.web.audiences.billing]\nclaims = [\"sub\"]\n",
        nginx_locations: locations,
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "rita").await.status(), 200);
    let id = stack.idgate.first_user_id();
    let jwks: JwkSet = reqwest::get(format!("{site}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = |path: &'static str, forged: Option<&'static str>| {
        let browser = &browser;
        let site = &site;
        async move {
            let mut req = browser.client.get(format!("{site}{path}"));
            if let Some(aud) = forged {
                req = req.header("idgate-audience", aud);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let echo = echoed(&resp.text().await.unwrap());
            let token = echo
                .get("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_owned();
            (status, token)
        }
    };

    let (status, orders) = bearer("/orders/list", None).await;
    assert_eq!(status, 200);
    let claims =
        verify_as(&jwks, &orders, "orders").expect("the orders upstream accepts its token");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["groups"], serde_json::json!(["users"]));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 120);
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["aud", "exp", "groups", "iat", "iss", "jti", "sub"],
        "only the listed claims"
    );

    let (status, billing) = bearer("/billing/invoices", None).await;
    assert_eq!(status, 200);
    let claims = verify_as(&jwks, &billing, "billing").expect("billing accepts its token");
    assert!(
        claims.get("groups").is_none() && claims.get("email").is_none(),
        "{claims}"
    );
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime <= 300, "{lifetime}");

    // Each upstream refuses the other's token.
    let refused = verify_as(&jwks, &orders, "billing").unwrap_err();
    assert!(refused.contains("InvalidAudience"), "{refused}");
    assert!(verify_as(&jwks, &billing, "orders").is_err());

    // Minted once, then served from the cache while it is fresh.
    assert_eq!(bearer("/orders/list", None).await.1, orders);

    // The audience is the Nginx configuration's alone: a client naming one gets nothing for it.
    let (status, plain) = bearer("/plain/x", Some("orders")).await;
    assert_eq!(status, 200);
    assert!(
        verify_as(&jwks, &plain, "orders").is_err(),
        "a client chose the audience"
    );
    let (status, forged) = bearer("/billing/x", Some("orders")).await;
    assert_eq!(status, 200);
    assert!(verify_as(&jwks, &forged, "billing").is_ok());
    assert!(
        verify_as(&jwks, &forged, "orders").is_err(),
        "a client chose the audience"
    );

    // An audience the app does not list: refused, not minted.
    assert_eq!(bearer("/nowhere/x", None).await.0, 403);

    // A scoped token is no session.
    let resp = reqwest::Client::new()
        .get(format!("{site}/orders/list"))
        .bearer_auth(&orders)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
