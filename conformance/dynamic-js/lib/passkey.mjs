// A software passkey for Dynamic's client in Node (its `PasskeyService`: register / authenticate /
// isSupported), with real WebCrypto P-256 keys: the server's WebAuthn check (webauthn-rs) verifies real
// attestations and assertions. User verification is always reported, as a phone's biometrics would.
import { createHash, randomBytes, webcrypto } from 'node:crypto';

import { encode } from './cbor.mjs';

const subtle = webcrypto.subtle;
const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const sha256 = (data) => createHash('sha256').update(data).digest();

/** Flags of the authenticator data: user present, user verified, attested credential data included. */
const UP = 0x01;
const UV = 0x04;
const AT = 0x40;

/** A raw P1363 ECDSA signature (r || s) as the DER sequence WebAuthn's ES256 uses. */
function der(p1363) {
  const integer = (bytes) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i += 1;
    let value = bytes.subarray(i);
    if (value[0] & 0x80) value = Buffer.concat([Buffer.from([0]), value]);
    return Buffer.concat([Buffer.from([0x02, value.length]), value]);
  };
  const raw = Buffer.from(p1363);
  const body = Buffer.concat([integer(raw.subarray(0, 32)), integer(raw.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

export function softwarePasskey({ origin }) {
  const credentials = new Map();
  let counter = 0;
  const clientData = (type, challenge) =>
    Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  const counterBytes = () => {
    counter += 1;
    const out = Buffer.alloc(4);
    out.writeUInt32BE(counter);
    return out;
  };
  return {
    credentials,
    isSupported: () => true,
    async register({ optionsJSON }) {
      const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const jwk = await subtle.exportKey('jwk', pair.publicKey);
      const id = randomBytes(32);
      credentials.set(b64url(id), { privateKey: pair.privateKey, userHandle: optionsJSON.user.id });
      const cose = new Map([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x, 'base64url')],
        [-3, Buffer.from(jwk.y, 'base64url')],
      ]);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(id.length);
      const authData = Buffer.concat([
        sha256(optionsJSON.rp.id),
        Buffer.from([UP | UV | AT]),
        counterBytes(),
        Buffer.alloc(16), // AAGUID: none
        length,
        id,
        encode(cose),
      ]);
      const attestationObject = encode(new Map([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
      return {
        id: b64url(id),
        rawId: b64url(id),
        type: 'public-key',
        response: {
          clientDataJSON: b64url(clientData('webauthn.create', optionsJSON.challenge)),
          attestationObject: b64url(attestationObject),
          transports: ['internal'],
        },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      };
    },
    async authenticate({ optionsJSON }) {
      const allowed = (optionsJSON.allowCredentials ?? []).map((c) => c.id);
      const id = allowed.find((candidate) => credentials.has(candidate));
      if (!id) throw new Error('this authenticator holds none of the allowed credentials');
      const credential = credentials.get(id);
      const authData = Buffer.concat([sha256(optionsJSON.rpId), Buffer.from([UP | UV]), counterBytes()]);
      const clientDataJSON = clientData('webauthn.get', optionsJSON.challenge);
      const signed = Buffer.concat([authData, sha256(clientDataJSON)]);
      const signature = await subtle.sign({ name: 'ECDSA', hash: { name: 'SHA-256' } }, credential.privateKey, signed);
      return {
        id,
        rawId: id,
        type: 'public-key',
        response: {
          clientDataJSON: b64url(clientDataJSON),
          authenticatorData: b64url(authData),
          signature: b64url(der(signature)),
          userHandle: credential.userHandle,
        },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      };
    },
  };
}
