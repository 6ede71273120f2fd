//! Unit tests of `jwt`: keys, signing, verification, the published JWKS, the token bound.
use super::keys::b64;
use super::*;
use jsonwebtoken::EncodingKey;
use std::path::Path;

fn claims(exp_in: i64) -> Claims {
    let now = crate::now_secs();
    Claims {
        iss: "http://issuer".into(),
        sub: "u1".into(),
        iat: now,
        exp: now + exp_in,
        jti: "j".into(),
        sid: "s".into(),
        user: UserClaim {
            email: Some("a@b".into()),
            name: Some("A".into()),
            ..UserClaim::new("u1", vec!["users".into()])
        },
        acr: None,
        amr: Vec::new(),
        auth_time: None,

        ufp: None,
    }
}

fn hs_keys(secret: &str, kid: &str) -> (tempfile::TempDir, KeyMaterial) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    std::fs::write(&p, secret).unwrap();
    let k = KeyMaterial::load_signing("HS256", &p, kid).unwrap();
    (dir, k)
}

#[test]
fn round_trip_and_claim_names() {
    let (_d, k) = hs_keys("0123456789abcdef0123456789abcdef", "k1");
    let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
    let token = keys.sign(&claims(60)).unwrap();
    assert_eq!(keys.verify(&token).unwrap(), claims(60));
    let payload = token.split('.').nth(1).unwrap();
    let json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(json["user"]["userId"], "u1");
    assert!(json["user"].get("permissions").is_none());
    // HS256 secrets are never published.
    assert_eq!(keys.jwks()["keys"].as_array().map(Vec::len), Some(0));
}

/// How the IdP authenticated the login (`acr`, `amr`, `auth_time`, which step-up rules read)
/// goes into the session token and comes out of it whole; each of the three alone is something
/// said, none at all is nothing.
#[test]
fn how_the_idp_authenticated_rides_in_the_token() {
    let (_d, k) = hs_keys("0123456789abcdef0123456789abcdef", "k1");
    let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
    let said = Authn {
        acr: Some("urn:example:mfa".into()),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: Some(1_700_000_000),
    };
    let mut c = claims(60);
    assert!(c.authn().is_empty(), "{:?}", c.authn());
    c.set_authn(said.clone());
    assert_eq!(c.authn(), said);
    let back = keys.verify(&keys.sign(&c).unwrap()).unwrap();
    assert_eq!(back.authn(), said);
    assert!(!back.authn().is_empty());
    let alone = [
        Authn {
            acr: Some("1".into()),
            ..Authn::default()
        },
        Authn {
            amr: vec!["pwd".into()],
            ..Authn::default()
        },
        Authn {
            auth_time: Some(1),
            ..Authn::default()
        },
    ];
    for one in alone {
        assert!(!one.is_empty(), "{one:?}");
    }
    assert!(Authn::default().is_empty());
}

#[test]
fn rejects_expired_wrong_issuer_and_other_key() {
    let (_d, k) = hs_keys("0123456789abcdef0123456789abcdef", "k1");
    let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
    let expired = keys.sign(&claims(-60)).unwrap();
    assert!(matches!(keys.verify(&expired), Err(JwtError::Expired)));
    assert!(keys.verify_ignoring_expiry(&expired).is_ok());

    let other = JwtKeys::new(&k, &[], &["http://elsewhere".into()]).unwrap();
    assert!(other.verify(&keys.sign(&claims(60)).unwrap()).is_err());

    let (_d2, k2) = hs_keys("another-secret-another-secret-xx", "k1");
    let forged = JwtKeys::new(&k2, &[], &["http://issuer".into()]).unwrap();
    assert!(keys.verify(&forged.sign(&claims(60)).unwrap()).is_err());
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn the_published_jwks_verifies_what_idgate_signs() {
    for (alg, file, kty) in [
        ("RS256", "rs256.pem", "RSA"),
        ("ES256", "es256.pem", "EC"),
        ("EdDSA", "ed25519.pem", "OKP"),
    ] {
        let k = KeyMaterial::load_signing(alg, &fixture(file), "kid-1").unwrap();
        let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
        let c = claims(60);
        let token = keys.sign(&c).unwrap();
        let published = &keys.jwks()["keys"];
        assert_eq!(published.as_array().map(Vec::len), Some(1), "{alg}");
        let jwk = &published[0];
        assert_eq!(jwk["kid"], "kid-1", "{alg}");
        assert_eq!(jwk["alg"], alg, "{alg}");
        assert_eq!(jwk["use"], "sig", "{alg}");
        assert_eq!(jwk["kty"], kty, "{alg}");
        // What a relying party does with the JWKS: rebuild the key from it and verify.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = Validation::new(Algorithm::parse(alg).unwrap().jsonwebtoken());
        v.set_issuer(&["http://issuer"]);
        let got = jsonwebtoken::decode::<Claims>(&token, &key, &v).unwrap();
        assert_eq!(got.claims, c, "{alg}");
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("kid-1"));
        assert_eq!(format!("{:?}", header.alg), alg);
    }
}

/// The start signs a token and verifies it: a signing key whose public half is another key's
/// (RSA, EC, Ed25519, HMAC) is refused with a message naming it, before any request.
#[test]
fn a_signing_key_its_public_half_refuses_stops_the_start() {
    let pairs = [
        ("RS256", "rs256.pem", "rs256-other.pem"),
        ("ES256", "es256.pem", "es256-other.pem"),
        ("EdDSA", "ed25519.pem", "ed25519-other.pem"),
    ];
    for (alg, key, other) in pairs {
        let mut k = KeyMaterial::load_signing(alg, &fixture(key), "k1").unwrap();
        assert!(
            JwtKeys::new(&k, &[], &["http://issuer".into()]).is_ok(),
            "{alg}"
        );
        k.decoding = KeyMaterial::load_signing(alg, &fixture(other), "k1")
            .unwrap()
            .decoding;
        let e = JwtKeys::new(&k, &[], &["http://issuer".into()]).err();
        let e = e.unwrap_or_else(|| panic!("{alg}: a mismatched key pair was accepted"));
        assert!(e.contains("`k1`") && e.contains("refuses"), "{alg}: {e}");
    }
    let (_d, mut k) = hs_keys("0123456789abcdef0123456789abcdef", "k1");
    let (_e, other) = hs_keys("fedcba9876543210fedcba9876543210", "k1");
    k.decoding = other.decoding;
    let e = JwtKeys::new(&k, &[], &["http://issuer".into()]).err();
    assert!(e.is_some_and(|e| e.contains("refuses")), "HS256");
}

/// A key kept for verification only (the previous signing key, after a rotation) accepts what
/// its private key signed and nothing else, and cannot sign. The ES256 one is written with its
/// point compressed (as `openssl ec -conv_form compressed` writes it): the key is read by its
/// coordinates, so the native check, which takes only the uncompressed form, gets that form
/// whatever the file's.
#[test]
fn a_verification_only_key_accepts_its_private_key_tokens_and_no_others() {
    let cases = [
        ("RS256", "rs256.pem", "rs256-other.pem", "rs256.pub.pem"),
        (
            "ES256",
            "es256.pem",
            "es256-other.pem",
            "es256.compressed.pub.pem",
        ),
    ];
    for (alg, private, other, public) in cases {
        let old = KeyMaterial::load_signing(alg, &fixture(private), "old").unwrap();
        let old_keys = JwtKeys::new(&old, &[], &["http://issuer".into()]).unwrap();
        let new = KeyMaterial::load_signing(alg, &fixture(other), "new").unwrap();
        let old_public = KeyMaterial::load_verifying(alg, &fixture(public), "old").unwrap();
        assert!(old_public.secret_bytes().is_empty(), "{alg}");
        let keys = JwtKeys::new(&new, &[old_public], &["http://issuer".into()]).unwrap();
        assert_eq!(
            keys.jwks()["keys"].as_array().map(Vec::len),
            Some(2),
            "{alg}"
        );
        assert_eq!(keys.jwks()["keys"][1]["kid"], "old", "{alg}");
        let c = claims(60);
        assert_eq!(
            keys.verify(&old_keys.sign(&c).unwrap()).unwrap(),
            c,
            "{alg}"
        );
        // Signed by the new key but claiming the old key's id: refused.
        let liar = KeyMaterial::load_signing(alg, &fixture(other), "old").unwrap();
        let liar = JwtKeys::new(&liar, &[], &["http://issuer".into()]).unwrap();
        assert!(
            keys.verify(&liar.sign(&claims(60)).unwrap()).is_err(),
            "{alg}"
        );
        // A verification-only key cannot sign.
        let public = KeyMaterial::load_verifying(alg, &fixture(public), "p").unwrap();
        assert!(
            JwtKeys::new(&public, &[], &["http://issuer".into()]).is_err(),
            "{alg}"
        );
    }
}

#[test]
fn hs256_secrets_need_32_bytes_and_are_kept_for_key_derivation() {
    let short = b"0123456789abcdef0123456789abcde".to_vec();
    assert!(KeyMaterial::signing_from_bytes("HS256", short, "s", "k").is_err());
    let exact = b"0123456789abcdef0123456789abcdef\n".to_vec();
    let k = KeyMaterial::signing_from_bytes("HS256", exact.clone(), "s", "k").unwrap();
    assert_eq!(k.secret_bytes(), exact.as_slice());
    // Debug names the key, never its material.
    let debug = format!("{k:?}");
    assert!(
        debug.contains("Hs256") && debug.contains("\"k\""),
        "{debug}"
    );
    assert!(!debug.contains("0123456789"), "{debug}");
}

#[test]
fn algorithm_names_are_exact() {
    for name in ["RS256", "ES256", "EdDSA", "HS256"] {
        assert_eq!(Algorithm::parse(name).unwrap().name(), name);
    }
    for bad in ["none", "hs256", "RS512", "EDDSA", ""] {
        assert!(Algorithm::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(MAX_TOKEN_LEN, 16384);
}

/// Keys and a valid token of theirs of exactly `len` bytes. base64 without padding never
/// yields a length of 4k+1, so the key id (in the header) varies as well as the payload.
fn token_of_len(len: usize) -> (Vec<tempfile::TempDir>, JwtKeys, String) {
    let mut dirs = Vec::new();
    for kid in ["k", "kk", "kkk"] {
        let (d, k) = hs_keys("0123456789abcdef0123456789abcdef", kid);
        dirs.push(d);
        let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
        let mut c = claims(60);
        c.user.name = Some(String::new());
        // Every 3 bytes of name add 4 characters: start just below the estimate.
        let base = keys.sign(&c).unwrap().len();
        let estimate = len.saturating_sub(base) * 3 / 4;
        for n in estimate.saturating_sub(8)..len {
            c.user.name = Some("n".repeat(n));
            let t = keys.sign(&c).unwrap();
            if t.len() == len {
                return (dirs, keys, t);
            }
            if t.len() > len {
                break;
            }
        }
    }
    panic!("no token of {len} bytes");
}

#[test]
fn tokens_longer_than_16_kib_are_refused_unread() {
    let (_d, keys, at_limit) = token_of_len(16384);
    assert!(keys.verify(&at_limit).is_ok());
    let (_d, keys, over) = token_of_len(16385);
    assert!(matches!(keys.verify(&over), Err(JwtError::Malformed)));
    assert!(matches!(
        keys.verify_ignoring_expiry(&over),
        Err(JwtError::Malformed)
    ));
}

#[test]
fn keygen_writes_a_private_loadable_key_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for alg in ["ES256", "EdDSA", "HS256"] {
        let out = dir.path().join(alg);
        keygen(alg, &out).unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{alg}");
        let k = KeyMaterial::load_signing(alg, &out, "k").unwrap();
        let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
        assert!(keys.verify(&keys.sign(&claims(60)).unwrap()).is_ok());
        let before = std::fs::read(&out).unwrap();
        assert!(keygen(alg, &out).is_err(), "{alg} must not overwrite");
        assert_eq!(std::fs::read(&out).unwrap(), before);
    }
    assert!(keygen("none", &dir.path().join("x")).is_err());
}

#[test]
fn rejects_alg_none() {
    let (_d, k) = hs_keys("0123456789abcdef0123456789abcdef", "k1");
    let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
    let header = b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let body = b64(serde_json::to_string(&claims(60)).unwrap().as_bytes());
    assert!(keys.verify(&format!("{header}.{body}.")).is_err());
}

/// RS256 signs with AWS-LC where it can: PKCS#1 v1.5 is deterministic, so the token must be
/// byte for byte the one jsonwebtoken's own RSA gives, and the key must be AWS-LC's.
#[test]
fn rs256_signs_with_aws_lc_exactly_as_jsonwebtoken_would() {
    let k = KeyMaterial::load_signing("RS256", &fixture("rs256.pem"), "kid-1").unwrap();
    assert!(
        matches!(k.encoding, Some(Signer::Native(NativeSigner::Rsa(_)))),
        "AWS-LC refused the fixture key"
    );
    let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
    let c = claims(60);
    let ours = keys.sign(&c).unwrap();
    let pem = std::fs::read(fixture("rs256.pem")).unwrap();
    let theirs = jsonwebtoken::encode(
        &keys.signing_header,
        &c,
        &EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(keys.verify(&ours).unwrap(), c);
}

/// ES256 signs with AWS-LC and EdDSA with ed25519-dalek, each on a key parsed once. Ed25519 is
/// deterministic: the token must be byte for byte jsonwebtoken's. ECDSA is randomised: the token
/// must be one jsonwebtoken alone accepts (its signature in JWS's fixed form, r and s), and
/// jsonwebtoken's token one the keys accept.
#[test]
fn es256_and_eddsa_sign_natively_as_jsonwebtoken_would() {
    for (alg, file) in [("ES256", "es256.pem"), ("EdDSA", "ed25519.pem")] {
        let k = KeyMaterial::load_signing(alg, &fixture(file), "kid-1").unwrap();
        assert!(
            matches!(k.encoding, Some(Signer::Native(_))),
            "{alg}: not signed natively"
        );
        let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
        let c = claims(60);
        let ours = keys.sign(&c).unwrap();
        let pem = std::fs::read(fixture(file)).unwrap();
        let theirs_key = match alg {
            "ES256" => EncodingKey::from_ec_pem(&pem).unwrap(),
            _ => EncodingKey::from_ed_pem(&pem).unwrap(),
        };
        let theirs = jsonwebtoken::encode(&keys.signing_header, &c, &theirs_key).unwrap();
        if alg == "EdDSA" {
            assert_eq!(ours, theirs, "{alg}");
        } else {
            let (head, rest) = ours.rsplit_once('.').unwrap();
            assert_eq!(
                head,
                theirs.rsplit_once('.').unwrap().0,
                "{alg}: header and claims"
            );
            assert_eq!(
                URL_SAFE_NO_PAD.decode(rest).unwrap().len(),
                64,
                "{alg}: r and s"
            );
        }
        let jsonwebtoken_alone = JwtKeys::without_native(&keys);
        assert_eq!(jsonwebtoken_alone.verify(&ours).unwrap(), c, "{alg}");
        assert_eq!(keys.verify(&ours).unwrap(), c, "{alg}");
        assert_eq!(keys.verify(&theirs).unwrap(), c, "{alg}");
    }
}

/// A key ring does not sign with (under 2048 bits) still signs, through jsonwebtoken.
#[test]
fn rs256_keys_ring_refuses_sign_through_jsonwebtoken() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let small = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
    let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
    let k =
        KeyMaterial::signing_from_bytes("RS256", pem.as_bytes().to_vec(), "small", "s").unwrap();
    assert!(matches!(k.encoding, Some(Signer::Jwt(_))));
    let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
    let c = claims(60);
    assert_eq!(keys.verify(&keys.sign(&c).unwrap()).unwrap(), c);
}

/// Tokens, good and bad, that a key of `alg` is asked to verify: its own token, expired,
/// tampered in payload, signature and header, signed by another key under the same `kid`.
fn verification_cases(alg: &str, keys: &JwtKeys, other: &JwtKeys) -> Vec<(&'static str, String)> {
    let good = keys.sign(&claims(60)).unwrap();
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut elevated = claims(60);
    elevated.user.groups = vec!["admins".into()];
    let elevated = b64(serde_json::to_string(&elevated).unwrap().as_bytes());
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[10] ^= 1;
    let swapped =
        b64(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"kid-1","was":"{alg}"}}"#).as_bytes());
    vec![
        ("good", good.clone()),
        ("expired", keys.sign(&claims(-60)).unwrap()),
        ("payload changed", format!("{head}.{elevated}.{signature}")),
        (
            "signature changed",
            format!("{head}.{payload}.{}", b64(&sig)),
        ),
        (
            "header alg changed",
            format!("{swapped}.{payload}.{signature}"),
        ),
        ("signature missing", format!("{head}.{payload}.")),
        (
            "four segments",
            format!("{head}.{payload}.{signature}.{signature}"),
        ),
        ("another key", other.sign(&claims(60)).unwrap()),
    ]
}

/// RS256 and ES256 signatures are checked natively (AWS-LC, ring), and every token of every
/// algorithm gets the same answer it gets from jsonwebtoken alone: the native check changes the
/// speed, never a decision.
#[test]
fn native_checks_give_asymmetric_keys_jsonwebtokens_answers() {
    let dir = tempfile::tempdir().unwrap();
    for (alg, file) in [
        ("RS256", "rs256.pem"),
        ("ES256", "es256.pem"),
        ("EdDSA", "ed25519.pem"),
    ] {
        let k = KeyMaterial::load_signing(alg, &fixture(file), "kid-1").unwrap();
        let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
        assert_eq!(
            keys.verifying["kid-1"].native.is_some(),
            alg != "EdDSA",
            "{alg}: a native check where it is faster"
        );
        let other_file = dir.path().join(format!("other-{alg}.pem"));
        keygen(alg, &other_file).unwrap();
        let other = KeyMaterial::load_signing(alg, &other_file, "kid-1").unwrap();
        let other = JwtKeys::new(&other, &[], &["http://issuer".into()]).unwrap();
        let slow = JwtKeys::without_native(&keys);
        for (case, token) in verification_cases(alg, &keys, &other) {
            let fast_answer = format!("{:?}", keys.verify(&token));
            assert_eq!(
                fast_answer,
                format!("{:?}", slow.verify(&token)),
                "{alg}, {case}"
            );
            assert_eq!(
                format!("{:?}", keys.verify_ignoring_expiry(&token)),
                format!("{:?}", slow.verify_ignoring_expiry(&token)),
                "{alg}, {case}, expiry ignored"
            );
            assert_eq!(
                fast_answer.starts_with("Ok("),
                case == "good",
                "{alg}, {case}: {fast_answer}"
            );
        }
    }
    // HS256 stays with jsonwebtoken.
    let (_d, hs) = hs_keys("0123456789abcdef0123456789abcdef", "k1");
    let keys = JwtKeys::new(&hs, &[], &["http://issuer".into()]).unwrap();
    assert!(keys.verifying["k1"].native.is_none());
}

#[test]
fn a_user_member_reads_as_the_serialized_claim_does() {
    let full = UserClaim {
        user_id: "u1".into(),
        groups: vec!["users".into(), "admins".into()],
        email: Some("a@b".into()),
        name: Some("A".into()),
        username: Some("a".into()),
        permissions: Some(vec!["read".into()]),
        metadata: Some(json!({"team": "x"})),
        provider_user_id: Some("p1".into()),
        user_settings_url: Some("https://idp/settings".into()),
        from_idp: [("department".to_owned(), json!("R&D"))].into(),
    };
    let bare = UserClaim::new("u2", vec![]);
    for user in [full, bare] {
        let all = serde_json::to_value(&user).unwrap();
        let mut names: Vec<String> = all.as_object().unwrap().keys().cloned().collect();
        names.extend(["username", "metadata", "nothing", "user_id"].map(String::from));
        for name in &names {
            assert_eq!(
                user.member(name),
                all.get(name).cloned(),
                "{name} of {user:?}"
            );
        }
    }
}

/// The audit trail's subject of a token already verified: read from its payload, for a token up
/// to the verifier's bound and not a byte longer, `None` for anything that is not a JWT with a
/// string `sub`.
#[test]
fn the_verified_subject_is_the_payloads_sub_within_the_token_bound() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","exp":1}"#);
    let of_len = |len: usize| {
        let signature = "s".repeat(len - header.len() - payload.len() - 2);
        format!("{header}.{payload}.{signature}")
    };
    assert_eq!(verified_subject(&of_len(100)).as_deref(), Some("alice"));
    let at_bound = of_len(MAX_TOKEN_LEN);
    assert_eq!(at_bound.len(), MAX_TOKEN_LEN);
    assert_eq!(verified_subject(&at_bound).as_deref(), Some("alice"));
    assert_eq!(verified_subject(&of_len(MAX_TOKEN_LEN + 1)), None);
    let no_sub = URL_SAFE_NO_PAD.encode(br#"{"sub":7}"#);
    assert_eq!(verified_subject(&format!("{header}.{no_sub}.s")), None);
    assert_eq!(verified_subject("not a token"), None);
}

/// From the first `JwtKeys` on, jsonwebtoken verifies EdDSA tokens on a key each thread parsed
/// once (`provider`): the start's own check parses the signing key, and a token verified after
/// it parses nothing more.
#[test]
fn eddsa_tokens_are_verified_on_a_key_parsed_once() {
    let k = KeyMaterial::load_signing("EdDSA", &fixture("ed25519.pem"), "kid-1").unwrap();
    let keys = JwtKeys::new(&k, &[], &["http://issuer".into()]).unwrap();
    let parsed = provider::parsed_on_this_thread();
    assert_eq!(parsed.len(), 1, "the start verified one token");
    let token = keys.sign(&claims(60)).unwrap();
    assert!(keys.verify(&token).is_ok());
    assert!(keys.verify(&format!("{token}x")).is_err());
    assert_eq!(provider::parsed_on_this_thread(), parsed);
}
