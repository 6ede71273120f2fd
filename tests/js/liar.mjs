// liar.mjs — the lying modes of the development IdP (tests/js/idp.mjs).
//
// Why it exists: an honest IdP never exercises the checks a relying party makes on what an IdP
// sends, so removing one of them (the id_token nonce, its signature, `iss`, `aud`, …) would go
// unnoticed. With a lie switched on, oidc-provider still runs the real login; then, on the way
// out, this module rewrites one answer: the token endpoint's id_token (claims or header changed,
// re-signed with the IdP's own key — or a foreign one, or not at all), the userinfo answer or
// the discovery document. Lies are chosen with `idp.mjs --lie MODE` (repeatable) or at run time
// with `POST /-/lie {"modes": [...]}` (`--lie-endpoint`). Test use only.
//
// The modes (each documented in idp.mjs's header too):
//   id-token-nonce-wrong        nonce replaced by another value
//   id-token-nonce-missing      nonce removed
//   id-token-signature-foreign  signed by a foreign key, under the IdP's own `kid`
//   id-token-kid-unknown        signed by the IdP's key, under a `kid` the JWKS never publishes
//   id-token-iss-wrong          iss another issuer
//   id-token-aud-wrong          aud another client
//   id-token-aud-extra          aud [client, another], azp the client (OIDC Core 3.1.3.7 step 3)
//   id-token-azp-wrong          azp another client (aud still the client)
//   id-token-exp-past           exp a minute ago (iat two minutes ago)
//   id-token-iat-future         iat ten minutes ahead (exp twenty)
//   id-token-at-hash-wrong      at_hash the hash of another access token
//   id-token-alg-none           header alg none, no signature
//   id-token-alg-hs256-public   header alg HS256, HMAC keyed with the IdP's public key (PEM)
//   id-token-alg-hs256-secret   header alg HS256, HMAC keyed with the client secret: a token
//                               that verifies if (and only if) the client accepts HS256
//   id-token-sub-missing        sub removed
//   id-token-iat-missing        iat removed
//   id-token-aud-missing        aud (and azp) removed
//   id-token-c-hash-wrong       c_hash the hash of another code
//   id-token-kid-absent         no kid in the header (signed by the IdP's key)
//   userinfo-sub                userinfo names another subject
//   userinfo-jwt                userinfo answers a JWT (application/jwt) signed by the IdP's key,
//                               with iss and aud: an honest signed answer
//   userinfo-jwt-hs256-secret   the same, HS256 keyed with the client secret
//   discovery-issuer            the discovery document announces another issuer
//   discovery-algs-symmetric    discovery advertises HS256 and none as id_token algorithms too
//   jwks-extra-key              the JWKS publishes a foreign RSA key besides the IdP's
//   key-rotated                 the IdP has rotated its signing key: id_tokens are signed with a
//                               new RSA key (a new kid) and the JWKS publishes only that one
//
// The same signing tricks serve `POST /-/sign` (`--sign-endpoint`) for back-channel logout
// tokens: `"key": "idp"` (default), `"foreign"` (a foreign key under the IdP's kid),
// `"hs256-public"` or `"none"`.

import * as crypto from 'node:crypto';

import { newPrivateKey } from './keys.mjs';

export const LIES = [
  'id-token-nonce-wrong',
  'id-token-nonce-missing',
  'id-token-signature-foreign',
  'id-token-kid-unknown',
  'id-token-iss-wrong',
  'id-token-aud-wrong',
  'id-token-aud-extra',
  'id-token-azp-wrong',
  'id-token-exp-past',
  'id-token-iat-future',
  'id-token-at-hash-wrong',
  'id-token-alg-none',
  'id-token-alg-hs256-public',
  'id-token-alg-hs256-secret',
  'id-token-sub-missing',
  'id-token-iat-missing',
  'id-token-aud-missing',
  'id-token-c-hash-wrong',
  'id-token-kid-absent',
  'userinfo-sub',
  'userinfo-jwt',
  'userinfo-jwt-hs256-secret',
  'discovery-issuer',
  'discovery-algs-symmetric',
  'jwks-extra-key',
  'key-rotated',
];

const SIGNING_KEYS = ['idp', 'foreign', 'hs256-public', 'hs256-secret', 'none'];

const b64json = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const unb64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString());
const randomId = () => crypto.randomBytes(8).toString('hex');
// The left half of a SHA-256, base64url: an at_hash or c_hash of `s` for an RS256 token.
const halfHash = (s) => crypto.createHash('sha256').update(s).digest().subarray(0, 16).toString('base64url');

// One foreign key pair per algorithm, made when first needed (key generation is slow).
const foreignKeys = new Map();
function foreignKey(alg) {
  if (!foreignKeys.has(alg)) {
    foreignKeys.set(alg, newPrivateKey(alg));
  }
  return foreignKeys.get(alg);
}

function asymmetricSignature(alg, input, privateKey) {
  const opts = alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey;
  return crypto.sign('sha256', Buffer.from(input), opts).toString('base64url');
}

/// The rotated signing key of `key-rotated` (private JWK), made when first needed.
let rotatedKey;
function rotated() {
  if (!rotatedKey) {
    rotatedKey = { ...newPrivateKey('RS256').export({ format: 'jwk' }), kid: `rotated-${randomId()}`, alg: 'RS256', use: 'sig' };
  }
  return rotatedKey;
}

/// The public half of a private JWK, as a JWKS publishes it.
function publicJwk({ kty, n, e, crv, x, y, kid, alg, use }) {
  return JSON.parse(JSON.stringify({ kty, n, e, crv, x, y, kid, alg, use }));
}

/// The public half of the foreign RSA key, as the JWKS of `jwks-extra-key` publishes it.
function foreignPublicJwk() {
  const pub = crypto.createPublicKey(foreignKey('RS256')).export({ format: 'jwk' });
  return { ...pub, kid: 'foreign-key', alg: 'RS256', use: 'sig' };
}

/// `payload` as a JWS: `header` over the defaults (the IdP key's alg and kid; a header field
/// set to undefined is left out), signed the way `how` says: the IdP's key, a foreign key,
/// HS256 keyed with the IdP's public key or with `secret` (the client secret), or not at all.
export function signJwt(jwk, header, payload, how = 'idp', secret = '') {
  if (!SIGNING_KEYS.includes(how)) throw new Error(`unknown key ${how}; one of ${SIGNING_KEYS}`);
  const alg = { 'hs256-public': 'HS256', 'hs256-secret': 'HS256', none: 'none' }[how] ?? jwk.alg;
  const full = JSON.parse(JSON.stringify({ alg, kid: jwk.kid, ...header }));
  const input = `${b64json(full)}.${b64json(payload)}`;
  const idpKey = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  switch (how) {
    case 'foreign':
      return `${input}.${asymmetricSignature(jwk.alg, input, foreignKey(jwk.alg))}`;
    case 'hs256-public': {
      const pem = crypto.createPublicKey(idpKey).export({ type: 'spki', format: 'pem' });
      return `${input}.${crypto.createHmac('sha256', pem).update(input).digest('base64url')}`;
    }
    case 'hs256-secret':
      return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
    case 'none':
      return `${input}.`;
    default:
      return `${input}.${asymmetricSignature(jwk.alg, input, idpKey)}`;
  }
}

/// The lie applied to a decoded id_token: returns [header, payload, how it is signed].
function lieInIdToken(mode, header, payload, clientId) {
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'id-token-nonce-wrong':
      return [header, { ...payload, nonce: randomId() }, 'idp'];
    case 'id-token-nonce-missing': {
      const { nonce, ...rest } = payload;
      return [header, rest, 'idp'];
    }
    case 'id-token-signature-foreign':
      return [header, payload, 'foreign'];
    case 'id-token-kid-unknown':
      return [{ ...header, kid: randomId() }, payload, 'idp'];
    case 'id-token-iss-wrong':
      return [header, { ...payload, iss: `${payload.iss}/another` }, 'idp'];
    case 'id-token-aud-wrong':
      return [header, { ...payload, aud: 'another-client' }, 'idp'];
    case 'id-token-aud-extra':
      return [header, { ...payload, aud: [clientId, 'another-client'], azp: clientId }, 'idp'];
    case 'id-token-azp-wrong':
      return [header, { ...payload, azp: 'another-client' }, 'idp'];
    case 'id-token-exp-past':
      return [header, { ...payload, iat: now - 120, exp: now - 60 }, 'idp'];
    case 'id-token-iat-future':
      return [header, { ...payload, iat: now + 600, exp: now + 1200 }, 'idp'];
    case 'id-token-at-hash-wrong':
      return [header, { ...payload, at_hash: halfHash(randomId()) }, 'idp'];
    case 'id-token-alg-none':
      return [{ ...header, alg: 'none' }, payload, 'none'];
    case 'id-token-alg-hs256-public':
      return [{ ...header, alg: 'HS256' }, payload, 'hs256-public'];
    case 'id-token-alg-hs256-secret':
      return [{ ...header, alg: 'HS256', kid: undefined }, payload, 'hs256-secret'];
    case 'id-token-sub-missing': {
      const { sub, ...rest } = payload;
      return [header, rest, 'idp'];
    }
    case 'id-token-iat-missing': {
      const { iat, ...rest } = payload;
      return [header, rest, 'idp'];
    }
    case 'id-token-aud-missing': {
      const { aud, azp, ...rest } = payload;
      return [header, rest, 'idp'];
    }
    case 'id-token-c-hash-wrong':
      return [header, { ...payload, c_hash: halfHash(randomId()) }, 'idp'];
    case 'id-token-kid-absent':
      return [{ ...header, kid: undefined }, payload, 'idp'];
    default:
      return undefined;
  }
}

/// The lies told by one IdP process, switchable at run time.
export class Liar {
  constructor({ clientId, clientSecret = '', modes = [] }) {
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.set(modes);
  }

  /// Replaces the active lies; throws on an unknown mode.
  set(modes) {
    if (!Array.isArray(modes)) throw new Error('modes must be an array');
    for (const m of modes) {
      if (!LIES.includes(m)) throw new Error(`unknown lie ${m}; one of ${LIES.join(', ')}`);
    }
    this.modes = new Set(modes);
  }

  /// A koa middleware for oidc-provider (`provider.use`): rewrites the answers the active lies
  /// name after oidc-provider made them. `keys()` gives the IdP's current private JWKs.
  middleware(keys) {
    return async (ctx, next) => {
      await next();
      if (this.modes.size === 0 || !ctx.body || typeof ctx.body !== 'object') return;
      const route = ctx.oidc?.route;
      if (route === 'token' && typeof ctx.body.id_token === 'string') {
        if (this.modes.has('key-rotated')) this.say('key-rotated');
        ctx.body = { ...ctx.body, id_token: this.rewriteIdToken(ctx.body.id_token, keys()) };
      } else if (route === 'userinfo') {
        if (this.modes.has('userinfo-sub')) {
          ctx.body = { ...ctx.body, sub: `${ctx.body.sub}-someone-else` };
          this.say('userinfo-sub');
        }
        const signed = ['userinfo-jwt', 'userinfo-jwt-hs256-secret'].find((m) => this.modes.has(m));
        if (signed) {
          const all = this.modes.has('key-rotated') ? [rotated()] : keys();
          const jwk = all.find((k) => k.alg === 'RS256') ?? all[0];
          const claims = { ...ctx.body, iss: ctx.oidc.issuer, aud: this.clientId };
          const how = signed === 'userinfo-jwt' ? 'idp' : 'hs256-secret';
          const header = how === 'idp' ? {} : { kid: undefined };
          ctx.body = signJwt(jwk, header, claims, how, this.clientSecret);
          ctx.type = 'application/jwt';
          this.say(signed);
        }
      } else if (route === 'discovery') {
        if (this.modes.has('discovery-issuer')) {
          ctx.body = { ...ctx.body, issuer: `${ctx.body.issuer}/another` };
          this.say('discovery-issuer');
        }
        if (this.modes.has('discovery-algs-symmetric')) {
          const algs = ctx.body.id_token_signing_alg_values_supported ?? [];
          ctx.body = { ...ctx.body, id_token_signing_alg_values_supported: [...algs, 'HS256', 'none'] };
          this.say('discovery-algs-symmetric');
        }
      } else if (route === 'jwks') {
        if (this.modes.has('key-rotated')) {
          ctx.body = { ...ctx.body, keys: [publicJwk(rotated())] };
        }
        if (this.modes.has('jwks-extra-key')) {
          ctx.body = { ...ctx.body, keys: [...ctx.body.keys, foreignPublicJwk()] };
          this.say('jwks-extra-key');
        }
      }
    };
  }

  rewriteIdToken(idToken, idpKeys) {
    const [h, p] = idToken.split('.');
    let header = unb64json(h);
    let payload = unb64json(p);
    let how;
    let keys = idpKeys;
    if (this.modes.has('key-rotated')) {
      keys = [rotated()];
      header = { ...header, kid: keys[0].kid };
      how = 'idp';
    }
    for (const mode of this.modes) {
      const lied = lieInIdToken(mode, header, payload, this.clientId);
      if (!lied) continue;
      [header, payload] = lied;
      how = lied[2] === 'idp' ? how ?? 'idp' : lied[2];
      this.say(mode);
    }
    if (!how) return idToken;
    const jwk = keys.find((k) => k.kid === unb64json(h).kid) ?? keys[0];
    return signJwt(jwk, header, payload, how, this.clientSecret);
  }

  say(mode) {
    process.stderr.write(`idp.mjs: lie ${mode}\n`);
  }
}
