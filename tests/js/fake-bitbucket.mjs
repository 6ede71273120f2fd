#!/usr/bin/env node
// fake-bitbucket.mjs — a local stand-in for Bitbucket Cloud's OAuth 2.0 consumer login, for
// idgate's tests (Bitbucket cannot be reached from the test machines). It implements exactly
// the endpoints idgate uses, with the checks and response shapes of Bitbucket's documentation:
//
// - "Bitbucket Cloud REST API — Authentication methods", OAuth 2.0, Authorization Code Grant
//   (RFC 6749 §4.1): GET /site/oauth2/authorize?client_id&response_type=code[&state]
//   → 302 to the consumer's callback with code (and state); POST /site/oauth2/access_token
//   with the consumer key and secret as HTTP Basic (`curl -X POST -u "key:secret" … -d
//   grant_type=authorization_code -d code=…`) → JSON {access_token, scopes, expires_in,
//   refresh_token, token_type: "bearer", state: "authorization_code"}; errors are RFC 6749
//   §5.2 JSON with status 400.
// - "Bitbucket Cloud REST API — Users": GET /2.0/user → {type: "user", uuid ("{…}" with braces),
//   account_id, display_name, nickname, links, …} (no address, and `username` only for older
//   accounts); GET /2.0/user/emails → a paginated list ("REST API — Pagination": pagelen,
//   page, size, values, next) of {type: "email", email, is_primary, is_confirmed}.
// The emails are served one per page, so a client must follow `next` to reach the primary one.
//
// Usage: node tests/js/fake-bitbucket.mjs --client-id C --client-secret S --redirect-uri URL
//   [--uuid {…}] [--nickname evzijst] [--name "Erik van Zijst"] [--email erik@example.test]

import * as crypto from 'node:crypto';
import {
  options, Codes, body, clientCredentials, bearer, json, checkAuthorization, approve, serve, log,
} from './fake-common.mjs';

const NAME = 'fake-bitbucket';
const args = options(NAME, {
  uuid: { type: 'string', default: '{d301aafa-d676-4ee0-88be-962be7417567}' },
  nickname: { type: 'string', default: 'evzijst' },
  name: { type: 'string', default: 'Erik van Zijst' },
  email: { type: 'string', default: 'erik@example.test' },
});
const codes = new Codes();
const tokens = new Set();

serve(NAME, args.port, async (req, res, url, base) => {
  if (req.method === 'GET' && url.pathname === '/site/oauth2/authorize') {
    if (url.searchParams.get('response_type') !== 'code') {
      json(res, 400, { error: 'unsupported_response_type' });
      return;
    }
    const check = checkAuthorization(res, args, url.searchParams);
    if (check) approve(res, codes, check, url.searchParams);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/site/oauth2/access_token') {
    const form = new URLSearchParams(await body(req));
    const client = clientCredentials(req, form);
    if (client.id !== args['client-id'] || client.secret !== args['client-secret']) {
      json(res, 400, { error: 'invalid_client', error_description: 'Invalid OAuth client credentials' });
      return;
    }
    if (form.get('grant_type') !== 'authorization_code') {
      json(res, 400, { error: 'unsupported_grant_type' });
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
    log(NAME, `token issued (${client.how})`);
    json(res, 200, {
      access_token: token,
      scopes: 'account email',
      expires_in: 7200,
      refresh_token: crypto.randomBytes(12).toString('base64url'),
      token_type: 'bearer',
      state: 'authorization_code',
    });
    return;
  }
  if (req.method === 'GET' && url.pathname.startsWith('/2.0/user')) {
    if (!tokens.has(bearer(req))) {
      json(res, 401, { type: 'error', error: { message: 'Access token expired or invalid.' } });
      return;
    }
    if (url.pathname === '/2.0/user') {
      json(res, 200, {
        type: 'user',
        uuid: args.uuid,
        account_id: '557058:c0b72ad0-1cb5-4018-9cdc-0cde8492c443',
        display_name: args.name,
        nickname: args.nickname,
        account_status: 'active',
        created_on: '2011-12-20T16:34:07.132459+00:00',
        links: { self: { href: `${base}/2.0/users/${encodeURIComponent(args.uuid)}` } },
      });
      return;
    }
    if (url.pathname === '/2.0/user/emails') {
      const all = [
        { type: 'email', email: `${args.nickname}-old@example.test`, is_primary: false, is_confirmed: true,
          links: { self: { href: `${base}/2.0/user/emails/old` } } },
        { type: 'email', email: args.email, is_primary: true, is_confirmed: true,
          links: { self: { href: `${base}/2.0/user/emails/primary` } } },
      ];
      const page = Number(url.searchParams.get('page') ?? '1');
      const answer = { pagelen: 1, size: all.length, page, values: all.slice(page - 1, page) };
      if (page < all.length) answer.next = `${base}/2.0/user/emails?page=${page + 1}`;
      json(res, 200, answer);
      return;
    }
  }
  json(res, 404, { type: 'error', error: { message: 'Resource not found' } });
});
