#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/): small valid and
nearly-valid inputs of each parser, so the fuzzer starts from the shapes idgate really reads.
Run from the repository root: python3 fuzz/make-seeds.py. The seeds are committed; the fuzzer
adds what it finds under the same folders (keep those it found worth keeping, e.g. with
`cargo fuzz cmin`)."""
import base64, hashlib, hmac, json, os, time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
NOW = int(time.time())


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, payload, key=None):
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    if key is None:
        return head + "." + b64(b"not-a-signature")
    sig = hmac.new(key, head.encode(), hashlib.sha256).digest()
    return head + "." + b64(sig)


def write(target, seeds):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    for seed in seeds:
        data = seed if isinstance(seed, bytes) else seed.encode()
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def lines(path, key):
    with open(path) as f:
        return [json.loads(l)[key] for l in f if l.strip()]


here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "tests", "fixtures")

write("expr", [
    "true", "false", "groups.admin", "groups.admin && isBackoffice",
    'groups.foo || clientType=="bar"', '["admin", "user"] in groups', '"admin" in groups',
    'permissions["write:orders"]', '["write:orders","view:orders"] in permissions',
    '!(groups.a || !groups.b) && clientType != "x"', "((((true))))", "!!!!false", "groups.",
])
write("path", [
    "/", "/a/b", "/a/b/", "/a/../b", "/a/./b", "//a", "/a%2e%2e/b", "/a%3Fb", "/a%23b",
    "/a;b", "/caf%C3%A9", "/%ff", "/a?x=1#f", "/a\\b", "/%2F", "relative",
])
write("rules", [bytes([m]) + p.encode() for m in range(5) for p in [
    "/", "/admin/x", "/public/../admin/x", "/public/%2e%2e/admin", "/api/v1/items", "/api/v1/items/",
    "/PUBLIC/x", "/admin;x",
]])
write("redirect", lines(os.path.join(fixtures, "redirect-payloads.jsonl"), "payload")[::9]
      + lines(os.path.join(fixtures, "redirect-accepted.jsonl"), "target"))
write("cookie", [
    "sid=abc", "sid=abc; idgate_renew=def; refresh_token=ghi",
    "idgate_login=" + ".".join(["A" * 43] * 5), 'sid="quoted"; sid=second', "=; ;=;sid", "mia_client_key=k",
])
write("authorization", ["Bearer abc.def.ghi", "bearer   x  ", "Basic dXNlcjpwYXNz", "Bearer ", "a-known-key"])
claims = {"iss": "https://app.example.com", "sub": "u1", "iat": NOW, "exp": NOW + 86400 * 3650,
          "jti": "j1", "sid": "s1", "user": {"userId": "u1", "groups": ["users"], "email": None, "name": None}}
key = b"fuzz-only-secret-0123456789abcdef"
write("session_jwt", [
    jwt({"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims, key),
    jwt({"alg": "HS256", "kid": "k1", "typ": "JWT"}, dict(claims, exp=NOW - 10), key),
    jwt({"alg": "none"}, claims), jwt({"alg": "RS256", "kid": "k1"}, claims), "a.b.c", "",
])
write("discovery", [json.dumps(d) for d in [
    {"issuer": "https://sso.example.com/realms/main",
     "authorization_endpoint": "https://sso.example.com/realms/main/auth",
     "token_endpoint": "https://sso.example.com/realms/main/token",
     "jwks_uri": "https://sso.example.com/realms/main/certs",
     "userinfo_endpoint": "https://sso.example.com/realms/main/userinfo",
     "end_session_endpoint": "https://sso.example.com/realms/main/logout",
     "response_types_supported": ["code"], "subject_types_supported": ["public"],
     "id_token_signing_alg_values_supported": ["RS256"]},
    {"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
     "authorization_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
     "jwks_uri": "https://login.microsoftonline.com/common/discovery/v2.0/keys",
     "response_types_supported": ["code"], "subject_types_supported": ["pairwise"],
     "id_token_signing_alg_values_supported": ["RS256"]},
]])
rsa_n = b64(bytes.fromhex("c1" * 256))
write("jwks", [json.dumps(d) for d in [
    {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": rsa_n, "e": "AQAB"}]},
    {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k2", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)},
              {"kty": "OKP", "crv": "Ed25519", "x": b64(b"\x03" * 32)}]},
    {"keys": []},
]])
tenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
write("id_token", [
    jwt({"alg": "RS256", "kid": "k1"}, {"iss": f"https://login.microsoftonline.com/{tenant}/v2.0",
        "tid": tenant, "aud": "idgate", "azp": "idgate", "sub": "s", "iat": NOW, "exp": NOW + 300,
        "email": "a@example.test", "email_verified": True, "groups": ["a", "b"]}),
    jwt({"alg": "RS256"}, {"iss": "https://sso.example.com", "aud": ["idgate", "other"],
        "email_verified": False, "email": "x@example.test", "groups": "solo"}),
])
write("userinfo", [json.dumps(d) for d in [
    {"id": 42, "login": "octo", "name": "Octo Cat", "email": "octo@example.test"},
    {"uuid": "{u-1}", "display_name": "B", "username": "b"},
    {"data": {"uid": 7, "full_name": "Ada", "mailVerified": "false"}, "mail": "ada@example.test"},
    [{"email": "a@example.test", "is_primary": True, "is_confirmed": True}],
    {"values": [{"name": "jsmith", "emailAddress": "j@example.test"}]},
]] + ["jsmith", ""])
write("logout_token", [
    jwt({"alg": "RS256", "typ": "logout+jwt", "kid": "k1"}, {"iss": "https://sso.example.com", "aud": "idgate",
        "iat": NOW, "jti": "j", "sid": "s",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
    jwt({"alg": "HS256", "typ": "JWT"}, {"iss": "x", "iat": 1e308, "nonce": "n"}),
])
write("token_body", [
    b"\x00" + json.dumps({"code": "c", "state": "s", "code_verifier": "v"}).encode(),
    b"\x01code=c&state=s", b"\x00" + json.dumps({"refreshToken": "r"}).encode(), b"\x00[1]",
    b"\x02x", b"\x00{\"code\": 1}",
])
write("query", [
    "/authorize?appId=web&providerId=dev&redirect=%2Fdocs%3Fx%3D1",
    "/web-login/oauth/callback?code=c&state=s&state=t", "/?a&b=&=c&%zz", "http://h/p?q",
])
with open(os.path.join(fixtures, "mia", "config.json")) as f:
    mia_config = f.read()
with open(os.path.join(fixtures, "mia", "auth.json")) as f:
    mia_auth = f.read()
with open(os.path.join(fixtures, "rules", "auth.json")) as f:
    rules_auth = f.read()
write("mia_config", [mia_config, '{"apps": {}}', "{}"])
write("mia_auth", [mia_auth, rules_auth, "{}", '{"/": {"ALL": {}}}'])
with open(os.path.join(here, "..", "packaging", "idgate.toml")) as f:
    toml = f.read()
write("toml_config", [toml, "[server]\nlisten = []\n"])
