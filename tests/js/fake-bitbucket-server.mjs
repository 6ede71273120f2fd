#!/usr/bin/env node
// fake-bitbucket-server.mjs — a local stand-in for Bitbucket Server / Data Center as an OAuth 2.0
// provider, for idgate's tests (no Bitbucket Server can run on the test machines). It implements
// exactly the endpoints idgate uses, under the server's base URL (with a context path, as a
// server installed under e.g. https://host/bitbucket has), with the checks and answers of:
//
// - "Bitbucket OAuth 2.0 provider API" (Bitbucket Data Center and Server documentation):
//   GET {base}/rest/oauth2/latest/authorize?client_id&redirect_uri&response_type=code&scope
//   [&state][&code_challenge&code_challenge_method=S256] → 302 to redirect_uri with code (and
//   state); POST {base}/rest/oauth2/latest/token with client_id, client_secret, code,
//   grant_type=authorization_code, redirect_uri (and code_verifier) as request parameters —
//   the documented examples put them in the query string, a form body is read too; client
//   credentials in an HTTP Basic header are not part of the documented API and are refused —
//   → JSON {scope, access_token, expires_in, token_type: "bearer", refresh_token}. Scopes:
//   PUBLIC_REPOS, REPO_READ, REPO_WRITE, REPO_ADMIN, PROJECT_ADMIN, ADMIN, SYSTEM_ADMIN.
// - the application links "whoami" servlet that Mia's documentation configures as the user
//   info URL: GET {base}/plugins/servlet/applinks/whoami → the username as text/plain for an
//   authenticated request (401 otherwise);
// - "Bitbucket Data Center REST API — Users": GET {base}/rest/api/latest/users?filter=&start=
//   &limit= → a paged list ("Paged APIs": size, limit, isLastPage, values, start,
//   nextPageStart) of {name, emailAddress, id, displayName, active, slug, type}; `filter`
//   matches names, display names and addresses containing it, case-insensitively.
//
// A decoy account whose name contains the user's (`<username>-admin`) comes first, one user per
// page, so a client must page and must match the name exactly.
//
// Usage: node tests/js/fake-bitbucket-server.mjs --client-id C --client-secret S
//   --redirect-uri URL [--context /bitbucket] [--username jsmith] [--name "Jane Smith"]
//   [--email jsmith@example.test] [--tls-cert PEM --tls-key PEM]

import * as crypto from 'node:crypto';
import {
  options, Codes, body, bearer, json, checkAuthorization, approve, serve, log,
} from './fake-common.mjs';

const NAME = 'fake-bitbucket-server';
const args = options(NAME, {
  context: { type: 'string', default: '/bitbucket' },
  username: { type: 'string', default: 'jsmith' },
  name: { type: 'string', default: 'Jane Smith' },
  email: { type: 'string', default: 'jsmith@example.test' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
});
const SCOPES = ['PUBLIC_REPOS', 'REPO_READ', 'REPO_WRITE', 'REPO_ADMIN', 'PROJECT_ADMIN', 'ADMIN',
  'SYSTEM_ADMIN'];
const ctx = args.context.replace(/\/$/, '');
const codes = new Codes();
const tokens = new Map();
const users = [
  { name: `${args.username}-admin`, emailAddress: `admin-${args.email}`, id: 2,
    displayName: `${args.name} (admin)`, active: true, slug: `${args.username}-admin`, type: 'NORMAL' },
  { name: args.username, emailAddress: args.email, id: 101, displayName: args.name, active: true,
    slug: args.username.toLowerCase(), type: 'NORMAL' },
];

serve(NAME, args.port, async (req, res, url, base) => {
  const path = url.pathname;
  if (req.method === 'GET' && path === `${ctx}/rest/oauth2/latest/authorize`) {
    const q = url.searchParams;
    if (q.get('response_type') !== 'code') {
      json(res, 400, { error: 'unsupported_response_type' });
      return;
    }
    const scopes = (q.get('scope') ?? '').split(/[ +]/).filter(Boolean);
    if (!q.get('redirect_uri') || !scopes.length || scopes.some((s) => !SCOPES.includes(s))) {
      json(res, 400, { error: 'invalid_request', error_description: 'redirect_uri and a known scope are required' });
      return;
    }
    const check = checkAuthorization(res, args, q);
    if (check) approve(res, codes, check, q, { scope: scopes.join(' ') });
    return;
  }
  if (req.method === 'POST' && path === `${ctx}/rest/oauth2/latest/token`) {
    if ((req.headers.authorization ?? '').startsWith('Basic ')) {
      log(NAME, 'token request refused: client credentials in a Basic header');
      json(res, 401, { error: 'invalid_client', error_description: 'client_id and client_secret are request parameters' });
      return;
    }
    const form = new URLSearchParams(await body(req));
    const param = (k) => form.get(k) ?? url.searchParams.get(k);
    if (param('client_id') !== args['client-id'] || param('client_secret') !== args['client-secret']) {
      json(res, 401, { error: 'invalid_client' });
      return;
    }
    if (param('grant_type') !== 'authorization_code') {
      json(res, 400, { error: 'unsupported_grant_type' });
      return;
    }
    if (!param('redirect_uri')) {
      json(res, 400, { error: 'invalid_request', error_description: 'redirect_uri is required' });
      return;
    }
    const { grant, error } = codes.redeem(param('code'), param('redirect_uri'), param('code_verifier') ?? undefined);
    if (!grant) {
      log(NAME, `token request refused: ${error}`);
      json(res, 400, { error: 'invalid_grant', error_description: error });
      return;
    }
    const token = crypto.randomBytes(24).toString('base64url');
    tokens.set(token, args.username);
    log(NAME, `token issued (${form.has('client_secret') ? 'form' : 'query'})`);
    json(res, 200, {
      scope: grant.scope,
      access_token: token,
      expires_in: 7200,
      token_type: 'bearer',
      refresh_token: crypto.randomBytes(24).toString('base64url'),
    });
    return;
  }
  const who = tokens.get(bearer(req));
  if (req.method === 'GET' && path === `${ctx}/plugins/servlet/applinks/whoami`) {
    if (!who) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain;charset=UTF-8' });
    res.end(who);
    return;
  }
  if (req.method === 'GET' && path === `${ctx}/rest/api/latest/users`) {
    if (!who) {
      json(res, 401, { errors: [{ message: 'Authentication failed. Please check your credentials and try again.' }] });
      return;
    }
    const filter = (url.searchParams.get('filter') ?? '').toLowerCase();
    const all = users.filter((u) => [u.name, u.displayName, u.emailAddress]
      .some((v) => v.toLowerCase().includes(filter)));
    const start = Number(url.searchParams.get('start') ?? '0');
    const limit = 1;
    const values = all.slice(start, start + limit).map((u) => ({
      ...u, links: { self: [{ href: `${base}${ctx}/users/${u.slug}` }] },
    }));
    const isLastPage = start + limit >= all.length;
    const page = { size: values.length, limit, isLastPage, values, start };
    if (!isLastPage) page.nextPageStart = start + limit;
    json(res, 200, page);
    return;
  }
  json(res, 404, { errors: [{ message: `${path} does not exist` }] });
}, args['tls-cert'] ? { cert: args['tls-cert'], key: args['tls-key'] } : undefined);
