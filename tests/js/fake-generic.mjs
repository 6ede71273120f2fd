#!/usr/bin/env node
// fake-generic.mjs — a plain OAuth 2.0 authorization server without OpenID Connect, for
// idgate's `generic` provider type. It follows RFC 6749 (The OAuth 2.0 Authorization
// Framework): §4.1 authorization code grant (GET /oauth/authorize → 302 to the redirect_uri
// with code and state; POST /oauth/token with grant_type=authorization_code, code,
// redirect_uri), §2.3.1 client authentication by HTTP Basic (client_secret_basic; the form
// fields are refused, as the RFC lets a server do), §5.1/§5.2 JSON token and error responses;
// RFC 7636 (PKCE S256, required here); and RFC 6750 (Bearer tokens) for its profile endpoint.
//
// The profile endpoint, GET /api/me, answers in a non-OIDC shape, so idgate must be told
// where each field is (its `keys`, Mia's `oidcKeys`):
//   {"data": {"uid": <number>, "displayName": …, "handle": …}, "mail": …}
//
// Usage: node tests/js/fake-generic.mjs --client-id C --client-secret S --redirect-uri URL
//   [--uid 4242] [--handle ada] [--name "Ada Lovelace"] [--email ada@example.test]

import * as crypto from 'node:crypto';
import {
  options, Codes, body, clientCredentials, bearer, json, checkAuthorization, approve, serve, log,
} from './fake-common.mjs';

const NAME = 'fake-generic';
const args = options(NAME, {
  uid: { type: 'string', default: '4242' },
  handle: { type: 'string', default: 'ada' },
  name: { type: 'string', default: 'Ada Lovelace' },
  email: { type: 'string', default: 'ada@example.test' },
});
const codes = new Codes();
const tokens = new Set();

serve(NAME, args.port, async (req, res, url) => {
  if (req.method === 'GET' && url.pathname === '/oauth/authorize') {
    const check = checkAuthorization(res, args, url.searchParams);
    if (!check) return;
    if (!check.challenge) {
      json(res, 400, { error: 'invalid_request', error_description: 'code_challenge required' });
      return;
    }
    approve(res, codes, check, url.searchParams);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/oauth/token') {
    const form = new URLSearchParams(await body(req));
    const client = clientCredentials(req, form);
    if (client.how !== 'basic' || client.id !== args['client-id'] || client.secret !== args['client-secret']) {
      json(res, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="fake-generic"' });
      return;
    }
    const { grant, error } = codes.redeem(
      form.get('code'), form.get('redirect_uri') ?? undefined, form.get('code_verifier') ?? undefined);
    if (!grant) {
      log(NAME, `token request refused: ${error}`);
      json(res, 400, { error: 'invalid_grant', error_description: error });
      return;
    }
    const token = crypto.randomBytes(24).toString('base64url');
    tokens.add(token);
    json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 },
      { 'cache-control': 'no-store' });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/api/me') {
    if (!tokens.has(bearer(req))) {
      json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      return;
    }
    json(res, 200, {
      data: { uid: Number(args.uid), displayName: args.name, handle: args.handle },
      mail: args.email,
    });
    return;
  }
  json(res, 404, { error: 'not_found' });
});
