#!/usr/bin/env node
// fake-github.mjs — a local stand-in for GitHub's OAuth app login, for idgate's tests (GitHub
// cannot be reached from the test machines). It implements exactly the endpoints idgate uses,
// with the request checks and response shapes of GitHub's documentation:
//
// - "Authorizing OAuth apps" (docs.github.com, web application flow):
//   GET /login/oauth/authorize (client_id, redirect_uri optional but registered, scope, state)
//   → 302 to the redirect_uri with code and state (the user approves at once here);
//   POST /login/oauth/access_token (client_id, client_secret, code, redirect_uri as form
//   fields) → by default `application/x-www-form-urlencoded`
//   (`access_token=…&scope=…&token_type=bearer`), JSON only with `Accept: application/json`.
// - "Troubleshooting OAuth app access token request errors": errors come back with status 200
//   and `error` (`incorrect_client_credentials`, `redirect_uri_mismatch`,
//   `bad_verification_code`), `error_description`, `error_uri`.
// - "GitHub REST API — Users" (Get the authenticated user): GET /user with
//   `Authorization: Bearer <token>` → the user's `login`, numeric `id`, `name`, and `email` —
//   null when the user keeps the address private. Requests without a User-Agent are refused
//   ("REST API — Getting started": 403).
// - "GitHub REST API — Emails" (List email addresses for the authenticated user): GET
//   /user/emails, needs the `user:email` (or `user`) scope → [{email, primary, verified,
//   visibility}].
// PKCE: when the authorization request carries a code_challenge, the verifier is checked
// (RFC 7636); without one, none is asked for.
//
// Usage: node tests/js/fake-github.mjs --client-id C --client-secret S --redirect-uri URL
//   [--user-id 583231] [--login octocat] [--name "Mona Octocat"] [--email mona@example.test]
//   [--email-private]   (GET /user answers "email": null; the address is in /user/emails)
// The API is served on the same origin (idgate's api_url = the printed url).

import * as crypto from 'node:crypto';
import {
  options, Codes, body, clientCredentials, bearer, json, checkAuthorization, approve, serve, log,
} from './fake-common.mjs';

const NAME = 'fake-github';
const args = options(NAME, {
  'user-id': { type: 'string', default: '583231' },
  login: { type: 'string', default: 'octocat' },
  name: { type: 'string', default: 'Mona Octocat' },
  email: { type: 'string', default: 'mona@example.test' },
  'email-private': { type: 'boolean', default: false },
});
const codes = new Codes();
const tokens = new Map(); // access token → scopes

function tokenError(res, wantsJson, error, description) {
  const value = {
    error,
    error_description: description,
    error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors',
  };
  // Documented: errors are answered with 200.
  if (wantsJson) return json(res, 200, value);
  res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
  return res.end(new URLSearchParams(value).toString());
}

serve(NAME, args.port, async (req, res, url) => {
  if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
    const check = checkAuthorization(res, args, url.searchParams);
    if (!check) return;
    const scopes = (url.searchParams.get('scope') ?? '').split(/[ ,]+/).filter(Boolean);
    approve(res, codes, check, url.searchParams, { scopes });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
    const form = new URLSearchParams(await body(req));
    const wantsJson = (req.headers.accept ?? '').includes('application/json');
    const client = clientCredentials(req, form);
    if (client.id !== args['client-id'] || client.secret !== args['client-secret']) {
      tokenError(res, wantsJson, 'incorrect_client_credentials',
        'The client_id and/or client_secret passed are incorrect.');
      return;
    }
    const { grant, error } = codes.redeem(
      form.get('code'), form.get('redirect_uri') ?? undefined, form.get('code_verifier') ?? undefined);
    if (!grant) {
      log(NAME, `token request refused: ${error}`);
      tokenError(res, wantsJson, error.startsWith('redirect_uri') ? 'redirect_uri_mismatch' : 'bad_verification_code',
        'The code passed is incorrect or expired.');
      return;
    }
    const token = `gho_${crypto.randomBytes(18).toString('base64url')}`;
    tokens.set(token, grant.scopes);
    const answer = { access_token: token, scope: grant.scopes.join(','), token_type: 'bearer' };
    log(NAME, `token issued (${client.how}, answered as ${wantsJson ? 'JSON' : 'form'})`);
    if (wantsJson) {
      json(res, 200, answer);
    } else {
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
      res.end(new URLSearchParams(answer).toString());
    }
    return;
  }
  if (req.method === 'GET' && (url.pathname === '/user' || url.pathname === '/user/emails')) {
    if (!req.headers['user-agent']) {
      json(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header' });
      return;
    }
    const scopes = tokens.get(bearer(req));
    if (!scopes) {
      json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      return;
    }
    if (url.pathname === '/user') {
      json(res, 200, {
        login: args.login,
        id: Number(args['user-id']),
        node_id: 'MDQ6VXNlcjE=',
        avatar_url: `https://avatars.githubusercontent.com/u/${args['user-id']}?v=4`,
        type: 'User',
        site_admin: false,
        name: args.name,
        company: null,
        email: args['email-private'] ? null : args.email,
        created_at: '2011-01-25T18:44:36Z',
      });
      return;
    }
    if (!scopes.includes('user:email') && !scopes.includes('user')) {
      json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/users/emails' });
      return;
    }
    json(res, 200, [
      { email: `${args.login}-old@example.test`, verified: true, primary: false, visibility: null },
      { email: `${args.login}-unverified@example.test`, verified: false, primary: false, visibility: null },
      { email: args.email, verified: true, primary: true, visibility: 'private' },
    ]);
    return;
  }
  json(res, 404, { message: 'Not Found' });
});
