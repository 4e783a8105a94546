// The app's own backend: it signs a short JWT that vouches for the user and the scopes (external auth), with an
// Ed25519 key whose public half the environment trusts (the server's configuration).
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

const b64url = (data) => Buffer.from(data).toString('base64url');

export function backend({ keyPath, issuer, audience }) {
  const key = createPrivateKey(readFileSync(keyPath));
  return {
    /** A JWT for `userId` granting `scope` (space-delimited), valid for a minute, single use (`jti`). */
    vouch(userId, scope) {
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' }));
      const claims = { iss: issuer, sub: userId, aud: audience, scope, jti: randomUUID(), iat: now, exp: now + 60 };
      const input = `${header}.${b64url(JSON.stringify(claims))}`;
      return `${input}.${b64url(sign(null, Buffer.from(input), key))}`;
    },
  };
}
