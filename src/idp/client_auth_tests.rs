//! Unit tests of the client assertions (claims, lifetime, single-use `jti`, signature) and of
//! what each method puts on the wire.

use super::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn auth(method: AuthMethod, key: Option<&str>) -> ClientAuth {
    ClientAuth {
        client_id: "idgate".into(),
        method,
        secret: crate::crypto::Secret::new("a-client-secret-of-32-bytes-at-least"),
        key: key.map(|k| Arc::new(ClientKey::load(&fixture(k), None).unwrap())),
    }
}

const AUD: &str = "https://idp.example/token";

/// The claims of `jwt`, its signature checked with `key` and `alg`, `aud` with [`AUD`].
fn verified(
    jwt: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: jsonwebtoken::Algorithm,
) -> (jsonwebtoken::Header, AssertionClaims) {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_audience(&[AUD]);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let data = jsonwebtoken::decode::<AssertionClaims>(jwt, key, &v).unwrap();
    (data.header, data.claims)
}

#[test]
fn a_private_key_assertion_names_the_client_the_token_endpoint_and_lives_a_minute() {
    for (file, alg) in [
        ("es256.pem", jsonwebtoken::Algorithm::ES256),
        ("rs256.pem", jsonwebtoken::Algorithm::RS256),
    ] {
        let a = auth(AuthMethod::PrivateKeyJwt, Some(file));
        let key = a.key.clone().unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
        let public = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let now = crate::now_secs();
        let jwt = a.assertion(AUD, now).unwrap().unwrap();
        let (header, claims) = verified(&jwt, &public, alg);
        assert_eq!(header.alg, alg);
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(claims.iss, "idgate");
        assert_eq!(claims.sub, "idgate");
        assert_eq!(claims.aud, AUD);
        assert_eq!(claims.iat, now);
        assert_eq!(claims.exp - claims.iat, ASSERTION_LIFETIME);
        assert!(claims.jti.len() >= 32, "{}", claims.jti);
    }
}

const _: () = assert!(
    ASSERTION_LIFETIME <= 60,
    "RFC 7523 assertions are short-lived"
);

#[test]
fn every_assertion_has_its_own_jti() {
    let a = auth(AuthMethod::PrivateKeyJwt, Some("es256.pem"));
    let key = a.key.clone().unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
    let public = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let now = crate::now_secs();
    let jtis: std::collections::HashSet<String> = (0..20)
        .map(|_| {
            let jwt = a.assertion(AUD, now).unwrap().unwrap();
            verified(&jwt, &public, jsonwebtoken::Algorithm::ES256)
                .1
                .jti
        })
        .collect();
    assert_eq!(jtis.len(), 20);
}

#[test]
fn a_client_secret_assertion_is_hs256_keyed_with_the_secret() {
    let a = auth(AuthMethod::ClientSecretJwt, None);
    let jwt = a.assertion(AUD, crate::now_secs()).unwrap().unwrap();
    let key = jsonwebtoken::DecodingKey::from_secret(b"a-client-secret-of-32-bytes-at-least");
    let (header, claims) = verified(&jwt, &key, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.kid, None);
    assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("idgate", AUD));
    let wrong = jsonwebtoken::DecodingKey::from_secret(b"another-secret");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&[AUD]);
    assert!(jsonwebtoken::decode::<AssertionClaims>(&jwt, &wrong, &v).is_err());
}

#[test]
fn the_secret_methods_make_no_assertion() {
    for m in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
        let a = auth(m, None);
        assert_eq!(a.assertion(AUD, 0).unwrap(), None);
        assert!(a.extra_params(AUD).unwrap().is_empty());
        assert!(a.crate_secret().is_some());
    }
    for m in [AuthMethod::ClientSecretJwt, AuthMethod::PrivateKeyJwt] {
        let a = auth(m, Some("es256.pem"));
        assert_eq!(a.crate_secret(), None);
        let params = a.extra_params(AUD).unwrap();
        assert_eq!(
            params[0],
            ("client_assertion_type", CLIENT_ASSERTION_TYPE.into())
        );
        assert_eq!(params[1].0, "client_assertion");
    }
}

/// The form and the Authorization header `authenticate` produces.
fn on_the_wire(a: &ClientAuth, form: &[(&str, &str)]) -> (Vec<(String, String)>, Option<String>) {
    let form = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let req = a
        .authenticate(reqwest::Client::new().post(AUD), form, AUD)
        .unwrap()
        .build()
        .unwrap();
    let body = req.body().and_then(|b| b.as_bytes()).unwrap_or_default();
    let pairs = url::form_urlencoded::parse(body).into_owned().collect();
    let authz = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    (pairs, authz)
}

#[test]
fn each_method_puts_its_credentials_where_it_says_and_client_id_once() {
    let count = |pairs: &[(String, String)], k: &str| pairs.iter().filter(|(n, _)| n == k).count();
    let (pairs, authz) = on_the_wire(&auth(AuthMethod::ClientSecretBasic, None), &[("a", "1")]);
    assert!(authz.unwrap().starts_with("Basic "));
    assert_eq!(count(&pairs, "client_secret"), 0);
    assert_eq!(count(&pairs, "client_id"), 0);

    let (pairs, authz) = on_the_wire(&auth(AuthMethod::ClientSecretPost, None), &[("a", "1")]);
    assert_eq!(authz, None);
    assert_eq!(count(&pairs, "client_secret"), 1);
    assert_eq!(count(&pairs, "client_id"), 1);

    for m in [AuthMethod::ClientSecretJwt, AuthMethod::PrivateKeyJwt] {
        let (pairs, authz) = on_the_wire(&auth(m, Some("rs256.pem")), &[("client_id", "idgate")]);
        assert_eq!(authz, None);
        assert_eq!(
            count(&pairs, "client_secret"),
            0,
            "the secret never travels"
        );
        assert_eq!(count(&pairs, "client_id"), 1);
        assert_eq!(count(&pairs, "client_assertion"), 1);
        assert_eq!(count(&pairs, "client_assertion_type"), 1);
    }
}
