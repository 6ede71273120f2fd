#!/usr/bin/env node
// idp.mjs — the development OpenID Connect provider for idgate's tests and demo.
//
// A real, OpenID-certified provider (oidc-provider 9) with one confidential client, its
// built-in development login form (any login and any password are accepted; the login typed
// in becomes the account id / `sub`) and no consent page (a grant for the requested scopes
// is created automatically). Not for production use: signing keys are generated at start
// and everything is kept in memory.
//
// Usage:
//   node tests/js/idp.mjs --port 0 --client-id idgate --client-secret secret \
//     --redirect-uri URL [--redirect-uri URL2 ...] \
//     [--post-logout-redirect-uri URL ...] [--issuer-path /realms/x]
//     [--token-auth-method client_secret_post] [--id-token-alg ES256] [--claims-in-id-token]
//     [--discovery-alias /tenant.onmicrosoft.com/B2C_1_signin/v2.0]
//     [--sign-endpoint] [--lie MODE ...] [--lie-endpoint] [--introspection] [--iss-auth-resp]
//
// Options:
//   --port N                       TCP port on 127.0.0.1 (0 = ephemeral; default 0)
//   --client-id ID                 client id (default idgate)
//   --client-secret S              client secret, client_secret_basic at the token endpoint
//                                  (default secret)
//   --redirect-uri URL             allowed redirect_uri, repeatable (at least one)
//   --post-logout-redirect-uri URL allowed post_logout_redirect_uri, repeatable
//   --backchannel-logout-uri URL   the client's OIDC back-channel logout endpoint
//   --issuer-path /p               mount the provider under this path (like a Keycloak realm):
//                                  the issuer becomes http://127.0.0.1:PORT/p
//   --token-auth-method M          the client's token_endpoint_auth_method: client_secret_basic
//                                  (default, like Keycloak and Okta) or client_secret_post (like
//                                  Google, Entra ID, Auth0, GitLab); the other one is refused
//                                  (see "Client authentication" below); or client_secret_jwt
//                                  (an HS256 assertion keyed with the secret) or private_key_jwt
//                                  (an assertion signed with a key of --client-jwks), checked
//                                  by oidc-provider itself (signature, iss, sub, aud, exp, and
//                                  jti replay)
//   --client-jwks JWKS             private_key_jwt: the client's public keys, a file or inline
//                                  JSON, either a JWK set or one JWK (what `idgate keygen
//                                  --public-jwk` prints)
//   --require-par                  Pushed Authorization Requests required (RFC 9126): for the
//                                  client (require_pushed_authorization_requests) and announced
//                                  in discovery; an authorization request not pushed first is
//                                  refused. PAR itself is on (POST /request) unless --no-par.
//   --no-par                       no PAR endpoint (an IdP without RFC 9126, like many)
//   --id-token-alg A               id_token signing algorithm: RS256 (default) or ES256 (an
//                                  Okta/Auth0 option); the JWKS then holds a P-256 key as well
//   --claims-in-id-token           put name, email, preferred_username in the id_token too
//                                  (like Google and Entra ID), not only in userinfo
//   --discovery-alias /p           also serve the discovery document at
//                                  /p/.well-known/openid-configuration, announcing the real
//                                  issuer: Azure AD B2C's per-policy discovery URL, whose issuer
//                                  is the tenant's, not the URL's
//   --multi-tenant-alias /p        Entra ID's multi-tenant endpoints (`/common/v2.0`): also
//                                  serve the discovery document at
//                                  /p/.well-known/openid-configuration, announcing the issuer
//                                  template with `{tenantid}` in place of the first segment of
//                                  --issuer-path (the tenant), and put that tenant in a `tid`
//                                  claim (in the id_token with --claims-in-id-token)
//   --log-logout-tokens            write every back-channel logout_token sent to stderr
//                                  (`idp.mjs: logout_token <jwt>`), so a test can replay one
//   --log-traceparent              write the W3C traceparent of every request that has one to
//                                  stderr (`idp.mjs: traceparent <method> <path> <value>`)
//   --sign-endpoint                POST /-/sign with {"header": {…}, "payload": {…}} answers
//                                  the payload signed with the IdP's current RS256 key (header
//                                  defaults: alg RS256 and that key's kid): tokens a real IdP
//                                  would never send (an old iat, another typ), made with the
//                                  key idgate trusts. With "key": "foreign" it is signed by a
//                                  foreign RSA key under the trusted kid; "hs256-public": HS256
//                                  keyed with the IdP's public key (PEM); "none": alg none, no
//                                  signature. "alg": "ES256" signs with the IdP's ES256 key
//                                  (with --id-token-alg ES256). Test use only.
//   --introspection                RFC 7662 introspection (/token/introspection), RFC 7009
//                                  revocation (/token/revocation) and the client_credentials
//                                  grant for the client: its access tokens are opaque (no
//                                  resource indicator), and a test can revoke one at the IdP
//   --lie MODE                     misbehave on purpose (repeatable; modes below); the real
//                                  login runs, then tests/js/liar.mjs rewrites the answer
//   --lie-endpoint                 POST /-/lie with {"modes": ["MODE", …]} replaces the active
//                                  lies from the next answer on ([] = honest again); answers
//                                  200 {"modes": […]}, 400 for an unknown mode. Test use only.
//   --iss-auth-resp                RFC 9207 as oidc-provider does it: authorization responses
//                                  carry `iss` and discovery says so
//                                  (`authorization_response_iss_parameter_supported: true`).
//                                  Without it both are removed, as from an IdP that predates
//                                  RFC 9207 (most tests post only code and state)
//
// Lies (--lie, /-/lie). Each changes one answer after oidc-provider made it, re-signing the
// id_token with the IdP's own key unless the mode says otherwise; the IdP writes
// `idp.mjs: lie MODE` on stderr each time it tells one:
//   id-token-nonce-wrong        the id_token's nonce is another value
//   id-token-nonce-missing      the id_token has no nonce
//   id-token-signature-foreign  the id_token is signed by a foreign key under the IdP's kid
//   id-token-kid-unknown        the id_token names a kid the JWKS never publishes
//   id-token-iss-wrong          the id_token's iss is another issuer
//   id-token-aud-wrong          the id_token's aud is another client
//   id-token-aud-extra          aud is [this client, another client], azp this client
//   id-token-azp-wrong          azp is another client (aud still this client)
//   id-token-exp-past           exp a minute ago
//   id-token-iat-future         iat ten minutes ahead (exp twenty)
//   id-token-at-hash-wrong      at_hash does not match the access token
//   id-token-alg-none           alg none, no signature
//   id-token-alg-hs256-public   HS256, keyed with the IdP's public key (the key-confusion attack)
//   id-token-alg-hs256-secret   HS256, keyed with the client secret (valid if HS256 is accepted)
//   id-token-sub-missing        the id_token has no sub
//   id-token-iat-missing        the id_token has no iat
//   id-token-aud-missing        the id_token has no aud (nor azp)
//   id-token-c-hash-wrong       c_hash does not match the code
//   id-token-kid-absent         the id_token's header names no kid
//   userinfo-sub                userinfo names another subject than the id_token
//   userinfo-jwt                userinfo answers a JWT signed by the IdP's key (iss, aud set)
//   userinfo-jwt-hs256-secret   userinfo answers a JWT signed HS256 with the client secret
//   discovery-issuer            the discovery document announces another issuer
//   discovery-algs-symmetric    discovery advertises HS256 and none for id_tokens as well
//   jwks-extra-key              the JWKS publishes a foreign RSA key besides the IdP's own
//   key-rotated                 id_tokens are signed with a new key (new kid), the only one the
//                               JWKS publishes: a rotation between discovery and the token
//
// Client authentication: oidc-provider itself accepts client_secret_basic and
// client_secret_post interchangeably; this IdP refuses, at the token, revocation,
// introspection and PAR endpoints, a request that does not use the registered
// --token-auth-method (401 invalid_client) and writes `idp.mjs: invalid_client: …` on stderr.
// The assertion methods are enforced by oidc-provider itself. Refused requests are written
// `idp.mjs: grant.error: …` (token endpoint), `pushed_authorization_request.error: …`, or
// `authorization.error: …` on stderr, with oidc-provider's reason.
//
// Accounts: any login is accepted and becomes `sub`; name, preferred_username and email
// (`<login>@example.test`) derive from it, with `email_verified: true` — except for logins
// starting with `unverified`, whose address is `email_verified: false`. With the `profile`
// scope come `groups` (`["idp-staff"]`, plus `g1`, `g2` for a login `name+g1+g2`) and
// `department` (`engineering`), in userinfo (and the id_token with --claims-in-id-token).
//
// Two assurance levels, as an IdP with optional MFA offers them: a login whose password is `otp`
// is level `urn:idgate:loa:2` with `amr: ["pwd", "otp"]` (a second factor), any other password
// `urn:idgate:loa:1` with `amr: ["pwd"]`. The id_token carries `acr` when the request asked for
// `acr_values`, `amr` always, and `auth_time` always (the client is registered with
// require_auth_time). `prompt=login` shows the form again even while the IdP's session lasts;
// `max_age` does when that session's login is older.
// Once listening, exactly one line is written to stdout:
//   {"issuer":"http://127.0.0.1:PORT[/p]"}
// Everything else (oidc-provider warnings and notices) goes to stderr.
//
// The client: grant types authorization_code and refresh_token, response type code,
// PKCE (S256) required. Scopes openid, profile (name, preferred_username), email (email).
// A refresh token is issued with every authorization code exchange (like Keycloak), without
// the offline_access scope. name/email are returned by the userinfo endpoint, not the
// id_token (oidc-provider's default). RP-initiated logout is at /session/end.
// Stops with exit code 0 on SIGTERM or SIGINT. SIGUSR2 rotates the signing key (see below).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { newPrivateKey } from './keys.mjs';
import { Liar, signJwt } from './liar.mjs';

// oidc-provider prints some notices with console.info (stdout): keep stdout for the issuer line.
console.info = console.warn;
console.log = console.warn;

// The assurance levels (see the header).
const LOA1 = 'urn:idgate:loa:1';
const LOA2 = 'urn:idgate:loa:2';

function fail(msg) {
  process.stderr.write(`idp.mjs: ${msg}\n`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'client-id': { type: 'string', default: 'idgate' },
      'client-secret': { type: 'string', default: 'secret' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      'backchannel-logout-uri': { type: 'string' },
      'issuer-path': { type: 'string', default: '' },
      'token-auth-method': { type: 'string', default: 'client_secret_basic' },
      'client-jwks': { type: 'string' },
      'require-par': { type: 'boolean', default: false },
      'no-par': { type: 'boolean', default: false },
      'id-token-alg': { type: 'string', default: 'RS256' },
      'claims-in-id-token': { type: 'boolean', default: false },
      'discovery-alias': { type: 'string', default: '' },
      'multi-tenant-alias': { type: 'string', default: '' },
      'log-logout-tokens': { type: 'boolean', default: false },
      'log-traceparent': { type: 'boolean', default: false },
      'sign-endpoint': { type: 'boolean', default: false },
      lie: { type: 'string', multiple: true },
      'lie-endpoint': { type: 'boolean', default: false },
      introspection: { type: 'boolean', default: false },
      'iss-auth-resp': { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (err) {
  fail(err.message);
}

const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${args.port}`);
const redirectUris = args['redirect-uri'] ?? [];
if (redirectUris.length === 0) fail('at least one --redirect-uri is required');
const postLogoutRedirectUris = args['post-logout-redirect-uri'] ?? [];
const tokenAuthMethod = args['token-auth-method'];
const SECRET_METHODS = ['client_secret_basic', 'client_secret_post'];
if (![...SECRET_METHODS, 'client_secret_jwt', 'private_key_jwt'].includes(tokenAuthMethod)) {
  fail(`bad --token-auth-method ${tokenAuthMethod}`);
}
// --client-jwks: a file or inline JSON; a JWK set or a single JWK.
let clientJwks;
if (args['client-jwks'] !== undefined) {
  const text = args['client-jwks'].trimStart().startsWith('{')
    ? args['client-jwks']
    : fs.readFileSync(args['client-jwks'], 'utf8');
  try {
    const parsed = JSON.parse(text);
    clientJwks = parsed.keys ? parsed : { keys: [parsed] };
  } catch (err) {
    fail(`bad --client-jwks: ${err.message}`);
  }
}
if (tokenAuthMethod === 'private_key_jwt' && !clientJwks) fail('private_key_jwt needs --client-jwks');
const idTokenAlg = args['id-token-alg'];
if (!['RS256', 'ES256'].includes(idTokenAlg)) fail(`bad --id-token-alg ${idTokenAlg}`);
const discoveryAlias = args['discovery-alias'].replace(/\/+$/, '');
const multiTenantAlias = args['multi-tenant-alias'].replace(/\/+$/, '');
let liar;
try {
  liar = new Liar({ clientId: args['client-id'], clientSecret: args['client-secret'], modes: args.lie ?? [] });
} catch (err) {
  fail(err.message);
}

const { default: Provider } = await import('oidc-provider');

let issuerPath = args['issuer-path'];
if (issuerPath) {
  if (!issuerPath.startsWith('/')) issuerPath = `/${issuerPath}`;
  issuerPath = issuerPath.replace(/\/+$/, '');
}

function titleCase(login) {
  return String(login)
    .split(/([\s._-]+)/)
    .map((part) => (part ? part[0].toUpperCase() + part.slice(1) : part))
    .join('');
}

// A fresh signing key per process: tokens of one IdP instance never verify against another.
function newJwk(alg) {
  return {
    ...newPrivateKey(alg).export({ format: 'jwk' }),
    kid: crypto.randomBytes(8).toString('hex'),
    alg,
    use: 'sig',
  };
}
// The RS256 key is always there (oidc-provider's defaults use it); an ES256 key joins it when
// id_tokens are signed ES256.
function newSigningJwks() {
  return idTokenAlg === 'ES256' ? [newJwk('ES256'), newJwk('RS256')] : [newJwk('RS256')];
}

// --sign-endpoint: `payload` signed with the current RS256 key (or as `how` says, see
// liar.mjs), header fields merged in.
function signWith(keys, header, payload, how, alg = 'RS256') {
  const jwk = keys.find((k) => k.alg === alg);
  if (!jwk) throw new Error(`no ${alg} key (start with --id-token-alg ${alg})`);
  return signJwt(jwk, header, payload, how);
}

// The client-authentication method a token-endpoint request uses, from its headers alone:
// oidc-provider refuses a request carrying both an Authorization header and a client_secret,
// so without the header it is client_secret_post (or no authentication at all).
function authMethodOf(req) {
  return req.headers.authorization !== undefined ? 'client_secret_basic' : 'client_secret_post';
}
const CLIENT_AUTH_PATHS = ['/token', '/token/revocation', '/token/introspection', '/request'];

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

function htmlEscape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// RP-initiated logout page. Like Keycloak: with a valid id_token_hint the logout is carried out
// without asking (the form submits itself); without one, the user is asked to confirm.
async function logoutSource(ctx, form) {
  const auto = Boolean(ctx.oidc.params.id_token_hint);
  const body = auto
    ? `<h1>Signing out…</h1>
    ${form.replace('</form>', '<input type="hidden" name="logout" value="yes"/><noscript><button type="submit">Sign out</button></noscript></form>')}
    <script>document.getElementById('op.logoutForm').submit();</script>`
    : `<h1>Do you want to sign-out from ${htmlEscape(ctx.host)}?</h1>
    ${form}
    <button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
    <button type="submit" form="op.logoutForm">No, stay signed in</button>`;
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Logout Request</title></head>
<body>
  ${body}
</body>
</html>`;
}

const configuration = {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      token_endpoint_auth_method: tokenAuthMethod,
      id_token_signed_response_alg: idTokenAlg,
      require_auth_time: true,
      grant_types: args.introspection
        ? ['authorization_code', 'refresh_token', 'client_credentials']
        : ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogoutRedirectUris,
      ...(clientJwks ? { jwks: clientJwks } : {}),
      ...(args['require-par'] ? { require_pushed_authorization_requests: true } : {}),
      ...(args['backchannel-logout-uri']
        ? { backchannel_logout_uri: args['backchannel-logout-uri'], backchannel_logout_session_required: true }
        : {}),
    },
  ],
  jwks: { keys: newSigningJwks() },
  acrValues: [LOA1, LOA2],
  conformIdTokenClaims: !args['claims-in-id-token'],
  cookies: {
    keys: ['idgate-dev-idp-cookie-key-1', 'idgate-dev-idp-cookie-key-0'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    // `acr` and `amr` (the assurance levels, see the header) in every id_token.
    openid: multiTenantAlias ? ['sub', 'tid', 'acr', 'amr'] : ['sub', 'acr', 'amr'],
    // `groups` and `department` as Keycloak, Okta or Entra ID send them once configured to:
    // idgate keeps them only when told to (use_provider_groups, claims_to_token).
    profile: ['name', 'preferred_username', 'groups', 'department'],
    email: ['email', 'email_verified'],
  },
  // oidc-provider 9 requires PKCE only for public clients by default: require it for every client.
  pkce: {
    required: () => true,
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource },
    // With --backchannel-logout-uri: a logout here POSTs a logout_token to the client.
    backchannelLogout: { enabled: true },
    // --introspection: opaque API tokens a relying party checks at the IdP, and revokes.
    introspection: { enabled: args.introspection },
    revocation: { enabled: args.introspection },
    clientCredentials: { enabled: args.introspection },

    // PAR is on (oidc-provider's default); --require-par requires it and says so in discovery.
    pushedAuthorizationRequests: {
      enabled: !args['no-par'],
      requirePushedAuthorizationRequests: args['require-par'],
    },
  },
  // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection); this
  // development IdP talks to idgate on loopback (back-channel logout), so it lets them through.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    if (args['log-logout-tokens'] && rest.body instanceof URLSearchParams && rest.body.has('logout_token')) {
      process.stderr.write(`idp.mjs: logout_token ${rest.body.get('logout_token')}\n`);
    }
    return globalThis.fetch(url, rest);
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: titleCase(id),
          email: `${id}@example.test`,
          email_verified: !String(id).startsWith('unverified'),
          preferred_username: id,
          // `idp-staff`, and for a login `name+g1+g2` the groups g1 and g2 as well.
          groups: ['idp-staff', ...String(id).split('+').slice(1)],
          department: 'engineering',
          ...(multiTenantAlias ? { tid: issuerPath.split('/')[1] } : {}),
        };
      },
    };
  },
  // No consent page: grant whatever OIDC scopes/claims the authorization request asks for.
  async loadExistingGrant(ctx) {
    const { provider, client, account } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(client.clientId);
    let grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (grant && grant.accountId !== account.accountId) grant = undefined;
    if (!grant) {
      grant = new provider.Grant({ clientId: client.clientId, accountId: account.accountId });
    }
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
    const claims = [...ctx.oidc.requestParamClaims];
    if (claims.length) grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
};

// The built-in pages (login form, errors, logout) @import a web font from the internet:
// strip it so a browser test never tries to reach outside this machine.
function installFontStripper(provider) {
  provider.use(async (ctx, next) => {
    await next();
    if (typeof ctx.body === 'string' && ctx.body.includes('@import url(http')) {
      ctx.body = ctx.body.replace(/@import url\(https?:[^)]*\);?/g, '');
    }
  });
}

// The login form's answer with its assurance level: devInteractions records only the account,
// so its submission is finished here, with `acr` and `amr` from the password (see the header).
function installAssuranceLevels(provider) {
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || !/^\/interaction\/[^/]+$/.test(ctx.path)) return next();
    const form = new URLSearchParams(await readBody(ctx.req));
    if (form.get('prompt') !== 'login' || !form.get('login')) return next();
    const otp = form.get('password') === 'otp';
    await provider.interactionFinished(ctx.req, ctx.res, {
      login: {
        accountId: form.get('login'),
        acr: otp ? LOA2 : LOA1,
        amr: otp ? ['pwd', 'otp'] : ['pwd'],
      },
    }, { mergeWithLastSubmission: false });
    ctx.respond = false;
  });
}

// oidc-provider 9 always sends RFC 9207's `iss` and advertises it; without --iss-auth-resp this
// IdP behaves like one that predates RFC 9207: neither in discovery nor in the redirect.
function installIssAuthResp(provider) {
  if (args['iss-auth-resp']) return;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
      const { authorization_response_iss_parameter_supported: _, ...rest } = ctx.body;
      ctx.body = rest;
    }
    const location = ctx.response.get('location');
    if (ctx.status >= 300 && ctx.status < 400 && location
        && redirectUris.some((r) => location.startsWith(`${r}?`))) {
      const { status } = ctx;
      const url = new URL(location);
      url.searchParams.delete('iss');
      ctx.redirect(url.href);
      ctx.status = status;
    }
  });
}

// Back-channel logout runs after the user's logout answer; say on stderr how it went.
// Refused client authentications and requests, with oidc-provider's reason, on stderr (a test
// reads why: a replayed assertion, a wrong key, a request not pushed).
function logRefusals(provider) {
  for (const event of ['grant.error', 'pushed_authorization_request.error', 'authorization.error']) {
    provider.on(event, (ctx, err) => process.stderr.write(`idp.mjs: ${event}: ${err?.error ?? ''}: ${err?.error_description ?? ''} ${err?.error_detail ?? err?.cause?.message ?? ''}\n`));
  }
}

function logBackchannel(provider) {
  provider.on('backchannel.success', (ctx, client) => process.stderr.write(`idp.mjs: back-channel logout sent to ${client.clientId}\n`));
  provider.on('backchannel.error', (ctx, err, client) => process.stderr.write(`idp.mjs: back-channel logout to ${client?.clientId} failed: ${err?.message} ${err?.cause?.code ?? ""} ${err?.cause?.message ?? ""}\n`));
}

// The port is known only once listening; the issuer must be known before the provider exists.
const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}${issuerPath}`;
  let provider = new Provider(issuer, configuration);
  installFontStripper(provider);
  installAssuranceLevels(provider);
  installIssAuthResp(provider);
  logBackchannel(provider);
  logRefusals(provider);
  let signingKeys = configuration.jwks.keys;
  provider.use(liar.middleware(() => signingKeys));
  let callback = provider.callback();
  // SIGUSR2 rotates the signing key, as an IdP does on schedule: from then on id_tokens carry a
  // `kid` the relying party has not seen, and the JWKS publishes only the new key. Sessions,
  // grants and codes survive (oidc-provider's in-memory adapter is shared by instances).
  process.on('SIGUSR2', () => {
    signingKeys = newSigningJwks();
    provider = new Provider(issuer, { ...configuration, jwks: { keys: signingKeys } });
    installFontStripper(provider);
    installAssuranceLevels(provider);
    installIssAuthResp(provider);
    logBackchannel(provider);
    logRefusals(provider);
    provider.use(liar.middleware(() => signingKeys));
    callback = provider.callback();
    process.stderr.write('idp.mjs: signing key rotated\n');
  });

  server.on('request', async (req, res) => {
    if (args['log-traceparent'] && req.headers.traceparent) {
      const path = req.url.split('?')[0];
      process.stderr.write(`idp.mjs: traceparent ${req.method} ${path} ${req.headers.traceparent}\n`);
    }
    if (args['sign-endpoint'] && req.method === 'POST' && req.url === '/-/sign') {
      try {
        const { header = {}, payload, key = 'idp', alg } = JSON.parse(await readBody(req));
        const jwt = signWith(signingKeys, header, payload, key, alg);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(jwt);
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`${err.message}\n`);
      }
      return;
    }
    if (args['lie-endpoint'] && req.method === 'POST' && req.url === '/-/lie') {
      try {
        const { modes } = JSON.parse(await readBody(req));
        liar.set(modes);
        process.stderr.write(`idp.mjs: lies now [${[...liar.modes].join(', ')}]\n`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ modes: [...liar.modes] }));
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`${err.message}\n`);
      }
      return;
    }
    if (multiTenantAlias && req.url === `${multiTenantAlias}/.well-known/openid-configuration`) {
      // Entra ID's `common` document: the real one, announcing the tenant-templated issuer.
      const doc = await (await globalThis.fetch(`${issuer}/.well-known/openid-configuration`)).json();
      const tenant = issuerPath.split('/')[1];
      doc.issuer = issuer.replace(`/${tenant}/`, '/{tenantid}/');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc));
      return;
    }
    if (discoveryAlias && req.url === `${discoveryAlias}/.well-known/openid-configuration`) {
      req.url = `${issuerPath}/.well-known/openid-configuration`;
    }
    if (issuerPath) {
      const url = req.url;
      if (url === issuerPath || url.startsWith(`${issuerPath}/`) || url.startsWith(`${issuerPath}?`)) {
        // Same convention as express' app.use(prefix, ...): oidc-provider derives its
        // mount path from originalUrl minus url.
        req.originalUrl = url;
        let rest = url.slice(issuerPath.length);
        if (!rest.startsWith('/')) rest = `/${rest}`;
        req.url = rest;
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
        return;
      }
    }
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && CLIENT_AUTH_PATHS.includes(path) && SECRET_METHODS.includes(tokenAuthMethod)
      && authMethodOf(req) !== tokenAuthMethod) {
      process.stderr.write(`idp.mjs: invalid_client: ${path} request authenticated with ${authMethodOf(req)}, the client is registered for ${tokenAuthMethod}\n`);
      res.writeHead(401, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'invalid_client', error_description: `client authentication must use ${tokenAuthMethod}` }));
      return;
    }
    callback(req, res);
  });

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

server.on('error', (err) => fail(err.message));

function stop() {
  server.closeAllConnections?.();
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
