// fake-common.mjs — plumbing shared by the fake OAuth2 providers (fake-github.mjs,
// fake-bitbucket.mjs, fake-generic.mjs): command line, one-time authorization codes with their
// PKCE challenge, form and Basic-auth parsing, JSON answers, and the one stdout line.
//
// Follows RFC 6749 (The OAuth 2.0 Authorization Framework) §4.1 for codes — single use, bound
// to the client and the redirect_uri — and RFC 7636 (PKCE) §4.6 for the S256 check; each fake
// adds its vendor's documented endpoints and response shapes on top.
//
// Common options:
//   --port N              TCP port on 127.0.0.1 (0 = ephemeral; default 0)
//   --client-id ID        the registered client (default idgate)
//   --client-secret S     its secret (default secret)
//   --redirect-uri URL    registered callback, repeatable (at least one)
// Once listening, exactly one line goes to stdout: {"url":"http://127.0.0.1:PORT"}.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { parseArgs } from 'node:util';

export function fail(name, msg) {
  process.stderr.write(`${name}: ${msg}\n`);
  process.exit(2);
}

/** Parses the common options plus `extra` (parseArgs option specs). */
export function options(name, extra) {
  try {
    const { values } = parseArgs({
      options: {
        port: { type: 'string', default: '0' },
        'client-id': { type: 'string', default: 'idgate' },
        'client-secret': { type: 'string', default: 'secret' },
        'redirect-uri': { type: 'string', multiple: true },
        ...extra,
      },
      strict: true,
    });
    if (!(values['redirect-uri'] ?? []).length) fail(name, 'at least one --redirect-uri is required');
    return values;
  } catch (err) {
    return fail(name, err.message);
  }
}

/** One-time authorization codes (RFC 6749 §4.1.2, §10.5). */
export class Codes {
  #codes = new Map();

  /** A code for this authorization request; `pkce` is {challenge, method} or undefined. */
  issue(grant) {
    const code = crypto.randomBytes(16).toString('hex');
    this.#codes.set(code, { ...grant, expires: Date.now() + 60_000 });
    return code;
  }

  /** The grant of `code`, consumed; an error string when it is unknown, used or expired. */
  redeem(code, redirectUri, verifier) {
    const grant = this.#codes.get(code);
    this.#codes.delete(code);
    if (!grant || grant.expires < Date.now()) return { error: 'unknown, used or expired code' };
    if (grant.redirectUri && grant.redirectUri !== redirectUri) {
      return { error: 'redirect_uri does not match the authorization request' };
    }
    if (grant.challenge) {
      // RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge.
      const computed = crypto.createHash('sha256').update(verifier ?? '').digest('base64url');
      if (computed !== grant.challenge) return { error: 'PKCE verification failed' };
    }
    return { grant };
  }
}

/** Reads the request body as a string. */
export function body(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { data += c; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

/** The client credentials of a token request: HTTP Basic (RFC 6749 §2.3.1) or form fields. */
export function clientCredentials(req, form) {
  const auth = req.headers.authorization ?? '';
  if (auth.startsWith('Basic ')) {
    const [id, secret] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
    return { id: decodeURIComponent(id ?? ''), secret: decodeURIComponent(secret ?? ''), how: 'basic' };
  }
  return { id: form.get('client_id'), secret: form.get('client_secret'), how: 'post' };
}

export function bearer(req) {
  const auth = req.headers.authorization ?? '';
  const m = /^(?:Bearer|token) (.+)$/i.exec(auth);
  return m ? m[1] : undefined;
}

export function json(res, status, value, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(value));
}

export function redirect(res, location) {
  res.writeHead(302, { location });
  res.end();
}

/** The authorization endpoint's checks; answers and returns undefined when they fail. */
export function checkAuthorization(res, args, query) {
  if (query.get('client_id') !== args['client-id']) {
    json(res, 400, { error: 'invalid_client', error_description: 'unknown client_id' });
    return undefined;
  }
  const registered = args['redirect-uri'];
  const redirectUri = query.get('redirect_uri') ?? registered[0];
  if (!registered.includes(redirectUri)) {
    json(res, 400, { error: 'invalid_request', error_description: 'redirect_uri not registered' });
    return undefined;
  }
  const challenge = query.get('code_challenge') ?? undefined;
  if (challenge && query.get('code_challenge_method') !== 'S256') {
    json(res, 400, { error: 'invalid_request', error_description: 'only S256' });
    return undefined;
  }
  return { redirectUri, explicitRedirect: query.has('redirect_uri'), challenge };
}

/** Auto-approves: 302 back to the redirect_uri with code and state (RFC 6749 §4.1.2). */
export function approve(res, codes, check, query, extra = {}) {
  const code = codes.issue({
    redirectUri: check.explicitRedirect ? check.redirectUri : undefined,
    challenge: check.challenge,
    ...extra,
  });
  const back = new URL(check.redirectUri);
  back.searchParams.set('code', code);
  if (query.has('state')) back.searchParams.set('state', query.get('state'));
  redirect(res, back.toString());
}

/**
 * Starts the server with `handler(req, res, url, base)` and prints the one stdout line. With
 * `tls` ({cert, key}: PEM file paths) it serves HTTPS and the line says `https://`.
 */
export function serve(name, port, handler, tls = undefined) {
  const scheme = tls ? 'https' : 'http';
  const listener = (req, res) => {
    const url = new URL(req.url, 'http://fake');
    const base = `${scheme}://127.0.0.1:${server.address().port}`;
    Promise.resolve(handler(req, res, url, base)).catch((err) => {
      process.stderr.write(`${name}: ${err.stack ?? err}\n`);
      if (!res.headersSent) json(res, 500, { error: 'server_error' });
    });
  };
  const server = tls
    ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, listener)
    : http.createServer(listener);
  server.listen(Number(port), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ url: `${scheme}://127.0.0.1:${server.address().port}` })}\n`);
  });
  server.on('error', (err) => fail(name, err.message));
  const stop = () => {
    server.closeAllConnections?.();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

export function log(name, line) {
  process.stderr.write(`${name}: ${line}\n`);
}
