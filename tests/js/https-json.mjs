#!/usr/bin/env node
// https-json.mjs — a server behind a private CA, for idgate's trust tests (tests/private_ca.rs):
// HTTPS with the certificate and key given, answering every GET with the JSON `--body` (default
// `0`, what a CRUD service's `GET /<collection>/count` answers for an empty collection) and
// logging each request's path, so a test sees whether idgate's request got through the TLS
// handshake at all.
//
// Usage: node tests/js/https-json.mjs --tls-cert PEM --tls-key PEM [--body JSON] [--port 0]
// Prints one line when listening: {"url":"https://127.0.0.1:PORT"}.

import { parseArgs } from 'node:util';
import { serve, log, json, fail } from './fake-common.mjs';

const NAME = 'https-json';
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      body: { type: 'string', default: '0' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
    strict: true,
  }));
} catch (err) {
  fail(NAME, err.message);
}
if (!args['tls-cert'] || !args['tls-key']) fail(NAME, '--tls-cert and --tls-key are required');
const answer = JSON.parse(args.body);

serve(NAME, args.port, async (req, res, url) => {
  log(NAME, `${req.method} ${url.pathname}`);
  if (req.method !== 'GET') {
    json(res, 405, { error: 'method not allowed' });
    return;
  }
  json(res, 200, answer);
}, { cert: args['tls-cert'], key: args['tls-key'] });
