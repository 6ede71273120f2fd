// A new private key for the development IdP and its lies, made so that it cannot hang Node.
//
// Node 20's `generateKeyPairSync` returns KeyObjects that share their key data, and its lock,
// with the generation job. When a garbage collection runs while such a key is being exported
// (`export({ format: 'jwk' })` holds the lock and allocates), it may destroy the finished job,
// whose destructor takes the same lock: the process stops for good, idle. Measured here:
// generating and exporting P-256 keys in a loop hung within 300 to 4 200 keys in each of three
// runs; asking for PEM text and making a KeyObject of it, 40 000 keys in each of three runs,
// none hung. The test harness had seen it as an IdP that sometimes never printed its address.

import * as crypto from 'node:crypto';

/// A new RS256 (RSA-2048) or ES256 (P-256) private key, a KeyObject of its own.
export function newPrivateKey(alg) {
  const encoding = {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  };
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256', ...encoding })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048, ...encoding });
  return crypto.createPrivateKey(privateKey);
}
